/* config.c - settings from defaults, `.env`, the environment and flags. */
#include "config.h"

#include "sid.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

static tassa_err set_str(char **slot, const char *v)
{
    char *copy = strdup(v);
    if (!copy)
        return TASSA_ENOMEM;
    free(*slot);
    *slot = copy;
    return TASSA_OK;
}

static tassa_err parse_int(const char *name, const char *v, long lo, long hi, long *out,
                           errmsg_t *em)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return err_set(em, TASSA_EINVAL, "%s must be a number from %ld to %ld", name, lo, hi);
    *out = n;
    return TASSA_OK;
}

static tassa_err parse_bool(const char *name, const char *v, bool *out, errmsg_t *em)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on")) {
        *out = true;
    } else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
               !strcasecmp(v, "off")) {
        *out = false;
    } else {
        return err_set(em, TASSA_EINVAL, "%s must be true or false", name);
    }
    return TASSA_OK;
}

/* Applies one named setting; unknown names are ignored (the environment holds many). */
static tassa_err apply(config_t *c, const char *name, const char *v, errmsg_t *em)
{
    long n = 0;
    tassa_err err = TASSA_OK;
    struct {
        const char *name;
        char **slot;
    } strs[] = {
        {"ACCOUNT_SID", &c->account_sid},     {"API_KEY", &c->api_key},
        {"API_SECRET", &c->api_secret},       {"AUTH_TOKEN", &c->auth_token},
        {"JWT_SECRET", &c->jwt_secret},       {"SYNC_SERVICE_SID", &c->sync_service_sid},
        {"WORKSPACE_SID", &c->workspace_sid}, {"TWILIO_TASKROUTER_URL", &c->taskrouter_url},
        {"TWILIO_SYNC_URL", &c->sync_url},    {"CORS_ALLOWED_ORIGINS", &c->cors_origins},
        {"PUBLIC_URL", &c->public_url},       {"TASSA_DATA", &c->data_path},
        {"TASSA_STORE", &c->data_path},       {"TASSA_BIND", &c->bind_addr},
        {"TASSA_WEB_DIR", &c->web_dir},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(name, strs[i].name) == 0) {
            if (!*v)
                return TASSA_OK; /* an empty line in .env means unset */
            if (strlen(v) > 4096)
                return err_set(em, TASSA_EINVAL, "%s is longer than 4096 bytes", name);
            return set_str(strs[i].slot, v) ? err_set(em, TASSA_ENOMEM, "out of memory") : 0;
        }
    }
    if (!strcmp(name, "PORT")) {
        err = parse_int(name, v, 0, 65535, &n, em); /* 0: any free port */
        if (!err)
            c->port = (int)n;
    } else if (!strcmp(name, "TASSA_BACKEND")) {
        if (!strcmp(v, "embedded"))
            c->backend = BACKEND_EMBEDDED;
        else if (!strcmp(v, "twilio"))
            c->backend = BACKEND_TWILIO;
        else
            err = err_set(em, TASSA_EINVAL, "TASSA_BACKEND must be embedded or twilio");
    } else if (!strcmp(name, "TASSA_VERIFY_SIGNATURE")) {
        err = parse_bool(name, v, &c->verify_signature, em);
    } else if (!strcmp(name, "TASSA_MAX_BODY")) {
        err = parse_int(name, v, 1024, 64L << 20, &n, em);
        if (!err)
            c->max_body = (size_t)n;
    } else if (!strcmp(name, "TASSA_THREADS")) {
        err = parse_int(name, v, 1, 64, &n, em);
        if (!err)
            c->threads = (int)n;
    } else if (!strcmp(name, "TASSA_QUEUE_STATUS_MAX")) {
        err = parse_int(name, v, 1, 10000, &n, em);
        if (!err)
            c->queue_status_max_entries = (int)n;
    } else if (!strcmp(name, "TASSA_MAX_STREAMS")) {
        err = parse_int(name, v, 1, 1000000, &n, em);
        if (!err)
            c->max_streams = (int)n;
    } else if (!strcmp(name, "TASSA_MAX_STREAMS_PER_IDENTITY")) {
        err = parse_int(name, v, 1, 1000000, &n, em);
        if (!err)
            c->max_streams_per_identity = (int)n;
    } else if (!strcmp(name, "TASSA_STREAM_HEARTBEAT_MS")) {
        err = parse_int(name, v, 100, 3600000, &n, em);
        if (!err)
            c->stream_heartbeat_ms = (int)n;
    } else if (!strcmp(name, "TASSA_HTTP_TIMEOUT_MS")) {
        err = parse_int(name, v, 100, 600000, &n, em);
        if (!err)
            c->http_timeout_ms = (int)n;
    } else if (!strcmp(name, "TASSA_HTTP_RETRIES")) {
        err = parse_int(name, v, 0, 10, &n, em);
        if (!err)
            c->http_retries = (int)n;
    } else if (!strcmp(name, "TASSA_QUIET")) {
        err = parse_bool(name, v, &c->quiet_access_log, em);
    }
    return err;
}

/* Trims spaces at both ends in place and strips one pair of matching quotes. */
static char *trim_value(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

#define DOTENV_LINE_MAX 8192

/* Reads KEY=VALUE lines (with optional `export `, # comments and quotes) from path, skipping
 * names the environment already sets. A missing file is fine. A line longer than
 * DOTENV_LINE_MAX or holding a NUL byte is refused by number: read in pieces or cut at the
 * NUL, its tail would count as a line of its own and could set another setting. */
static tassa_err load_dotenv(config_t *c, const char *path, errmsg_t *em)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return TASSA_OK;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    tassa_err err = TASSA_OK;
    while (!err) {
        ssize_t len = getline(&line, &cap, f);
        if (len < 0)
            break; /* end of file (or a read error: what was read counts) */
        lineno++;
        if (len > DOTENV_LINE_MAX || memchr(line, '\0', (size_t)len)) {
            err = err_set(em, TASSA_EINVAL, "%s line %d is longer than %d bytes or holds a NUL",
                          path, lineno, DOTENV_LINE_MAX);
            break;
        }
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '#' || *s == '\0')
            continue;
        if (!strncmp(s, "export ", 7))
            s += 7;
        char *eq = strchr(s, '=');
        if (!eq) {
            err = err_set(em, TASSA_EINVAL, "%s line %d: expected NAME=VALUE", path, lineno);
            break;
        }
        *eq = '\0';
        char *name = trim_value(s);
        if (getenv(name))
            continue;
        err = apply(c, name, trim_value(eq + 1), em);
    }
    free(line);
    fclose(f);
    return err;
}

config_t *config_load(const char *dotenv_path, errmsg_t *em)
{
    config_t *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    c->backend = BACKEND_EMBEDDED;
    c->port = 3000;
    c->max_body = 1 << 20;
    c->threads = 16; /* handlers block until their write is durable (group commit) */
    c->verify_signature = true;
    c->queue_status_max_entries = 50;
    c->max_streams = 10000;
    c->max_streams_per_identity = 20;
    c->stream_heartbeat_ms = 15000;
    c->http_timeout_ms = 3000; /* 4 tries stay within the 15 s Twilio waits for a callback */
    c->http_retries = 3;
    if (set_str(&c->sync_service_sid, "default") ||
        set_str(&c->taskrouter_url, "https://taskrouter.twilio.com") ||
        set_str(&c->sync_url, "https://sync.twilio.com") || set_str(&c->cors_origins, "*") ||
        set_str(&c->data_path, "./tassa.db") || set_str(&c->bind_addr, "127.0.0.1")) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        goto fail;
    }
    if (!dotenv_path)
        dotenv_path = ".env";
    if (*dotenv_path && load_dotenv(c, dotenv_path, em))
        goto fail;
    for (char **e = environ; e && *e; e++) { /* environ is NULL after clearenv() */
        const char *eq = strchr(*e, '=');
        if (!eq || eq - *e >= 64)
            continue;
        char name[64];
        memcpy(name, *e, (size_t)(eq - *e));
        name[eq - *e] = '\0';
        if (apply(c, name, eq + 1, em))
            goto fail;
    }
    return c;
fail:
    config_free(c);
    return NULL;
}

tassa_err config_apply_flag(config_t *c, const char *name, const char *value, errmsg_t *em)
{
    static const struct {
        const char *flag, *setting;
    } map[] = {{"--port", "PORT"},
               {"--data", "TASSA_DATA"},
               {"--backend", "TASSA_BACKEND"},
               {"--bind", "TASSA_BIND"},
               {"--threads", "TASSA_THREADS"}};
    if (!strcmp(name, "--demo")) {
        c->demo = true;
        return TASSA_OK;
    }
    if (!strcmp(name, "--quiet")) {
        c->quiet_access_log = true;
        return TASSA_OK;
    }
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (!strcmp(name, map[i].flag)) {
            if (!value || !*value)
                return err_set(em, TASSA_EINVAL, "%s needs a value", name);
            return apply(c, map[i].setting, value, em);
        }
    }
    return err_set(em, TASSA_EINVAL, "unknown flag %s (try tassa --help)", name);
}

tassa_err config_validate(const config_t *c, errmsg_t *em)
{
    if (c->backend != BACKEND_TWILIO)
        return TASSA_OK;
    static const struct {
        const char *name, *prefix;
        size_t off;
    } need[] = {
        {"ACCOUNT_SID", "AC", offsetof(config_t, account_sid)},
        {"API_KEY", "SK", offsetof(config_t, api_key)},
        {"API_SECRET", NULL, offsetof(config_t, api_secret)},
        {"WORKSPACE_SID", "WS", offsetof(config_t, workspace_sid)},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const char *v = *(char *const *)((const char *)c + need[i].off);
        if (!v)
            return err_set(em, TASSA_EINVAL, "%s is required with TASSA_BACKEND=twilio",
                           need[i].name);
        if (need[i].prefix && !sid_valid(v, need[i].prefix))
            return err_set(em, TASSA_EINVAL, "%s must be %s followed by 32 hex digits",
                           need[i].name, need[i].prefix);
    }
    if (!c->jwt_secret)
        return err_set(em, TASSA_EINVAL, "JWT_SECRET is required with TASSA_BACKEND=twilio");
    if (!c->auth_token && c->verify_signature)
        return err_set(em, TASSA_EINVAL,
                       "AUTH_TOKEN is required with TASSA_BACKEND=twilio to "
                       "check X-Twilio-Signature (or set "
                       "TASSA_VERIFY_SIGNATURE=false)");
    if (strcmp(c->sync_service_sid, "default") && !sid_valid(c->sync_service_sid, "IS"))
        return err_set(em, TASSA_EINVAL, "SYNC_SERVICE_SID must be default or IS + 32 hex");
    return TASSA_OK;
}

tassa_err config_fill_secret(char **slot, const char *value)
{
    return set_str(slot, value);
}

void config_free(config_t *c)
{
    if (!c)
        return;
    char **strs[] = {&c->account_sid, &c->api_key,          &c->api_secret,    &c->auth_token,
                     &c->jwt_secret,  &c->sync_service_sid, &c->workspace_sid, &c->taskrouter_url,
                     &c->sync_url,    &c->cors_origins,     &c->public_url,    &c->data_path,
                     &c->bind_addr,   &c->web_dir};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    free(c);
}
