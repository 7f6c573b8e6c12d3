/* config.h - tassa's settings: environment, then `.env`, then command-line flags.
 *
 * Precedence: a flag beats an environment variable, which beats a `.env` line (as dotenv
 * never overrides the environment). Built once at start-up by main and passed everywhere as
 * `const config_t *`; nothing else reads the environment. The embedded back end fills the
 * generated credentials (config_fill_secret) before the server starts.
 *
 * Every setting is one row of config_settings (config.c): its name, flag, default, meaning
 * and example. config_load parses by it, and help, tassa.1, tassa.env and the README table
 * are printed from it (help.h). A new setting is a new row and a field, nothing else.
 *
 * Layer: base.
 */
#ifndef TASSA_CONFIG_H
#define TASSA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

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
    int threads;     /* libmicrohttpd worker threads (0: one per core) */
    int writers;     /* threads of the TaskRouter writes (http_server_offload) */
    bool verify_signature;
    /* storage */
    char *data_path;
    /* engine */
    bool demo;
    int queue_status_max_entries; /* list length cap in queue-status */
    int max_streams, max_streams_per_identity;
    int stream_heartbeat_ms; /* idle live streams get a comment line this often */
    int ws_max_connections, ws_max_per_identity; /* WebSocket connection limits */
    size_t ws_max_message, ws_queue_bytes;       /* WebSocket message and send-queue bounds */
    int ws_ping_ms;                              /* WebSocket ping interval (pong deadline) */
    int header_timeout_ms; /* a request's headers must arrive within this (slowloris) */
    bool quiet_access_log;
    int http_timeout_ms; /* twilio back end: per request */
    int http_retries;    /* twilio back end: on 429 and 5xx */
    /* Sync access control */
    int sync_acl;               /* TASSA_SYNC_ACL: -1 unset (keep stored), 0 off, 1 on */
    char *queue_status_readers; /* TASSA_QUEUE_STATUS_READERS: identities, comma list */
    /* operations */
    char *metrics_token;  /* bearer token of /metrics; NULL = loopback clients only */
    int drain_timeout_ms; /* SIGTERM: longest wait for requests in flight */
    int drain_delay_ms;   /* SIGTERM: healthz says "draining" this long before closing */
    int log_level;        /* log_level_t: the lowest level written */
} config_t;

/* What kind of value a setting takes (and how config_load parses it). */
typedef enum {
    SETTING_STR,  /* any text up to 4096 bytes; "" in .env means unset */
    SETTING_INT,  /* a decimal number from lo to hi */
    SETTING_SIZE, /* a decimal number of bytes from lo to hi */
    SETTING_BOOL, /* true/false, 1/0, yes/no, on/off; a `serve` flag of it is a switch */
    SETTING_ENUM, /* one of choices ("embedded|twilio"), stored as its index */
} setting_kind_t;

#define CONFIG_UNWIRED ((size_t)-1) /* a setting parsed and checked but not yet stored */

/* One setting: the single table from which config_load parses, `tassa --help` and
 * `tassa settings` (man page, tassa.env, README table) are printed. */
typedef struct {
    const char *name;    /* environment and tassa.env name */
    const char *flag;    /* `tassa serve` flag, or NULL */
    const char *def;     /* default as text; "" = unset */
    const char *meaning; /* one line, no trailing period */
    const char *example; /* a sample value */
    setting_kind_t kind;
    long lo, hi;         /* SETTING_INT / SETTING_SIZE bounds */
    const char *choices; /* SETTING_ENUM: values separated by '|' */
    size_t off;          /* offset of the field in config_t, or CONFIG_UNWIRED */
    bool secret;         /* a credential: printed as an empty line in tassa.env */
} config_setting_t;

/* The settings, in the order help shows them, and their count. Immutable; any thread. */
extern const config_setting_t config_settings[];
extern const size_t config_nsettings;

/* The setting named name (environment name, or `serve` flag when it starts with "--"), or
 * NULL. */
const config_setting_t *config_setting_find(const char *name);

/* The candidate closest to word by edit distance when it is close enough to be what was
 * meant (at most a third of its length, at least 1), else NULL. Borrowed from cands. */
const char *config_suggest(const char *word, const char *const *cands, size_t n);

/* Loads the defaults, then `.env` in the working directory (if dotenv_path is NULL; skipped
 * when it is ""), then the environment. Returns NULL and writes one clear line into em on a
 * malformed value (e.g. "PORT must be a number from 1 to 65535"). Caller frees. */
config_t *config_load(const char *dotenv_path, errmsg_t *em);

/* Applies one `serve` flag (`--port N`, `--data F`, `--backend B`, `--demo`, ...) given as
 * name and value (value NULL for switches: the flags of SETTING_BOOL settings). TASSA_EINVAL
 * with a detail for a bad flag; an unknown one names the closest known flag. */
tassa_err config_apply_flag(config_t *c, const char *name, const char *value, errmsg_t *em);

/* Checks what the chosen back end requires (twilio: ACCOUNT_SID, API_KEY, API_SECRET,
 * WORKSPACE_SID present and well-formed). On failure em names the first problem. */
tassa_err config_validate(const config_t *c, errmsg_t *em);

/* Replaces *slot (a field of c) with a copy of value. TASSA_ENOMEM on failure. */
tassa_err config_fill_secret(char **slot, const char *value);

/* Frees c and its strings. Accepts NULL. */
void config_free(config_t *c);

#endif
