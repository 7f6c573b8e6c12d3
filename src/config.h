/* config.h - tassa's settings: environment, then `.env`, then command-line flags.
 *
 * Precedence: a flag beats an environment variable, which beats a `.env` line (as dotenv
 * never overrides the environment). Built once at start-up by main and passed everywhere as
 * `const config_t *`; nothing else reads the environment. The embedded back end fills the
 * generated credentials (config_fill_secret) before the server starts. */
#ifndef TASSA_CONFIG_H
#define TASSA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef enum { BACKEND_EMBEDDED, BACKEND_TWILIO } backend_kind_t;

typedef struct {
    /* credentials (owned strings; NULL when unset) */
    char *account_sid, *api_key, *api_secret, *auth_token, *jwt_secret;
    char *sync_service_sid; /* "default" unless set */
    char *workspace_sid;
    /* back end */
    backend_kind_t backend;
    char *taskrouter_url, *sync_url; /* REST base URLs for the twilio back end */
    /* HTTP */
    char *cors_origins; /* comma list or "*" */
    char *public_url;   /* how Twilio reaches us (signature URL), NULL = from the request */
    char *bind_addr;    /* listen address, default 127.0.0.1 */
    char *web_dir;      /* static pages; NULL = ./web, else next to the binary */
    int port;
    size_t max_body; /* bytes, 413 past it */
    int threads;     /* libmicrohttpd worker threads */
    bool verify_signature;
    /* storage */
    char *data_path;
    /* engine */
    bool demo;
    int queue_status_max_entries; /* list length cap in queue-status */
    int max_streams, max_streams_per_identity;
    int stream_heartbeat_ms; /* idle live streams get a comment line this often */
    int header_timeout_ms;   /* a request's headers must arrive within this (slowloris) */
    bool quiet_access_log;
    int http_timeout_ms; /* twilio back end: per request */
    int http_retries;    /* twilio back end: on 429 and 5xx */
} config_t;

/* Loads the defaults, then `.env` in the working directory (if dotenv_path is NULL; skipped
 * when it is ""), then the environment. Returns NULL and writes one clear line into em on a
 * malformed value (e.g. "PORT must be a number from 1 to 65535"). Caller frees. */
config_t *config_load(const char *dotenv_path, errmsg_t *em);

/* Applies one `serve` flag (`--port N`, `--data F`, `--backend B`, `--demo`, ...) given as
 * name and value (value NULL for switches). TASSA_EINVAL with a detail for a bad flag. */
tassa_err config_apply_flag(config_t *c, const char *name, const char *value, errmsg_t *em);

/* Checks what the chosen back end requires (twilio: ACCOUNT_SID, API_KEY, API_SECRET,
 * WORKSPACE_SID present and well-formed). On failure em names the first problem. */
tassa_err config_validate(const config_t *c, errmsg_t *em);

/* Replaces *slot (a field of c) with a copy of value. TASSA_ENOMEM on failure. */
tassa_err config_fill_secret(char **slot, const char *value);

/* Frees c and its strings. Accepts NULL. */
void config_free(config_t *c);

#endif
