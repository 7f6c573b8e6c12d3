/* config.c - settings from defaults, `.env`, the environment and flags.
 *
 * Layer: base. */
#include "base/config.h"

#include "base/sid.h"

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
    /* strict, as params_parse_long: strtol alone would take " 50" and "+50" */
    bool digits = (v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9');
    if (!digits || errno || end == v || *end || n < lo || n > hi)
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

#define F(field) offsetof(config_t, field)
#define STR(name, flag, def, field, meaning, example)                                              \
    {                                                                                              \
        name, flag, def, meaning, example, SETTING_STR, 0, 0, NULL, F(field), false                \
    }
#define SECRET(name, field, meaning, example)                                                      \
    {                                                                                              \
        name, NULL, "", meaning, example, SETTING_STR, 0, 0, NULL, F(field), true                  \
    }
#define INT(name, flag, def, lo, hi, field, meaning, example)                                      \
    {                                                                                              \
        name, flag, def, meaning, example, SETTING_INT, lo, hi, NULL, field, false                 \
    }
#define BOOL(name, flag, def, field, meaning)                                                      \
    {                                                                                              \
        name, flag, def, meaning, "true", SETTING_BOOL, 0, 0, NULL, field, false                   \
    }

const config_setting_t config_settings[] = {
    SECRET("ACCOUNT_SID", account_sid,
           "account SID (AC...); embedded: generated once and kept in the data file",
           "AC0123456789abcdef0123456789abcdef"),
    SECRET("API_KEY", api_key, "API key SID (SK...); embedded: generated",
           "SK0123456789abcdef0123456789abcdef"),
    SECRET("API_SECRET", api_secret, "API key secret, signs access tokens; embedded: generated",
           "s3cr3t"),
    SECRET("AUTH_TOKEN", auth_token,
           "checks X-Twilio-Signature on /general/router, and Basic auth with ACCOUNT_SID; "
           "embedded: generated",
           "0123456789abcdef0123456789abcdef"),
    SECRET("JWT_SECRET", jwt_secret,
           "HS256 secret of the callers' own JWTs (verifyToken); embedded: generated",
           "a-long-random-string"),
    STR("SYNC_SERVICE_SID", NULL, "default", sync_service_sid,
        "Sync service of the documents and of the grants", "IS0123456789abcdef0123456789abcdef"),
    STR("WORKSPACE_SID", NULL, "", workspace_sid,
        "TaskRouter workspace; embedded: the one made at first start",
        "WS0123456789abcdef0123456789abcdef"),
    {"TASSA_BACKEND", "--backend", "embedded", "back end: the embedded engine or real Twilio",
     "twilio", SETTING_ENUM, 0, 0, "embedded|twilio", F(backend), false},
    STR("TWILIO_TASKROUTER_URL", NULL, "https://taskrouter.twilio.com", taskrouter_url,
        "TaskRouter REST base URL of the twilio back end", "http://127.0.0.1:4000"),
    STR("TWILIO_SYNC_URL", NULL, "https://sync.twilio.com", sync_url,
        "Sync REST base URL of the twilio back end", "http://127.0.0.1:4000"),
    STR("CORS_ALLOWED_ORIGINS", NULL, "*", cors_origins, "* or a comma list of origins",
        "https://app.example.com"),
    STR("PUBLIC_URL", NULL, "", public_url,
        "the URL Twilio calls us at, for signatures behind a proxy (unset: from Host and "
        "X-Forwarded-*)",
        "https://tassa.example.com"),
    INT("PORT", "--port", "3000", 0, 65535, F(port), "listen port (0: any free port)", "8080"),
    STR("TASSA_BIND", "--bind", "127.0.0.1", bind_addr, "listen IPv4 address", "0.0.0.0"),
    STR("TASSA_DATA", "--data", "./tassa.db", data_path,
        "where the data lives: a SQLite file path, or a postgres:// URL shared by several nodes",
        "/var/lib/tassa/tassa.db"),
    STR("TASSA_STORE", NULL, "", data_path, "another name of TASSA_DATA",
        "postgres://tassa:PASSWORD@db.example.com:5432/tassa"),
    BOOL("TASSA_VERIFY_SIGNATURE", NULL, "true", F(verify_signature),
         "check X-Twilio-Signature on /general/router (false is logged at start)"),
    {"TASSA_MAX_BODY", NULL, "1048576", "request body limit in bytes (413 past it)", "65536",
     SETTING_SIZE, 1024, 64L << 20, NULL, F(max_body), false},
    INT("TASSA_THREADS", "--threads", "0", 0, 64, F(threads),
        "HTTP threads; 0 = one per core, at least 2 (no write waits in one for its commit)", "8"),
    INT("TASSA_WRITERS", NULL, "0", 0, 256, F(writers),
        "threads for TaskRouter writes (their connection is suspended meanwhile, and the answer "
        "waits for the group commit without them); 0 = one per core, at least 2",
        "4"),
    INT("TASSA_HEADER_TIMEOUT_MS", NULL, "10000", 100, 600000, F(header_timeout_ms),
        "a request's headers must arrive within this many milliseconds of the connection's "
        "start or its previous response (slow clients are closed; live streams are not)",
        "5000"),
    INT("TASSA_QUEUE_STATUS_MAX", NULL, "50", 1, 10000, F(queue_status_max_entries),
        "entries per list in queue-status (counts are always complete)", "100"),
    {"TASSA_QUEUE_STATUS_READERS", NULL, "",
     "comma list of identities granted read on queue-status (--demo: dashboard)",
     "dashboard,supervisor", SETTING_STR, 0, 0, NULL, F(queue_status_readers), false},
    {"TASSA_SYNC_ACL", NULL, "",
     "Sync ACL of the service, set at start-up: tokens read only documents granted to them "
     "(unset: keep what the data file holds, on for a new one)",
     "false", SETTING_ENUM, 0, 0, "false|true", F(sync_acl), false},
    INT("TASSA_MAX_STREAMS", NULL, "10000", 1, 1000000, F(max_streams),
        "live streams at once, over all identities", "50000"),
    INT("TASSA_MAX_STREAMS_PER_IDENTITY", NULL, "20", 1, 1000000, F(max_streams_per_identity),
        "live streams at once per identity", "5"),
    INT("TASSA_STREAM_HEARTBEAT_MS", NULL, "15000", 100, 3600000, F(stream_heartbeat_ms),
        "heartbeat (: ping) of idle live streams, in milliseconds", "30000"),
    INT("TASSA_WS_MAX_CONNECTIONS", NULL, "10000", 1, 1000000, F(ws_max_connections),
        "WebSocket connections at once (/v3/wsconnect), over all identities", "50000"),
    INT("TASSA_WS_MAX_PER_IDENTITY", NULL, "10", 1, 1000000, F(ws_max_per_identity),
        "WebSocket connections at once per token identity", "3"),
    {"TASSA_WS_MAX_MESSAGE", NULL, "131072",
     "largest WebSocket message accepted, in bytes (the connection closes with 1009 past it)",
     "65536", SETTING_SIZE, 1024, 16L << 20, NULL, F(ws_max_message), false},
    {"TASSA_WS_QUEUE_BYTES", NULL, "1048576",
     "bytes queued for one slow WebSocket client before it is dropped", "262144", SETTING_SIZE,
     4096, 256L << 20, NULL, F(ws_queue_bytes), false},
    INT("TASSA_WS_PING_MS", NULL, "20000", 100, 3600000, F(ws_ping_ms),
        "WebSocket ping interval in milliseconds; no pong by the next ping closes the "
        "connection",
        "30000"),
    INT("TASSA_HTTP_TIMEOUT_MS", NULL, "3000", 100, 600000, F(http_timeout_ms),
        "twilio back end: timeout of one REST request, in milliseconds", "5000"),
    INT("TASSA_HTTP_RETRIES", NULL, "3", 0, 10, F(http_retries),
        "twilio back end: retries on 429 and 5xx", "1"),
    STR("TASSA_WEB_DIR", NULL, "", web_dir,
        "serve the web pages from this folder instead of the copies built into the binary",
        "./web"),
    SECRET("TASSA_METRICS_TOKEN", metrics_token,
           "bearer token that may read /metrics from anywhere (unset: loopback clients only)",
           "a-long-random-string"),
    INT("TASSA_DRAIN_DELAY_MS", NULL, "0", 0, 600000, F(drain_delay_ms),
        "on SIGTERM, /healthz answers draining this long before the listener closes", "5000"),
    INT("TASSA_DRAIN_TIMEOUT_MS", NULL, "10000", 100, 600000, F(drain_timeout_ms),
        "on SIGTERM, the longest wait for requests in flight before exiting", "20000"),
    {"TASSA_LOG_LEVEL", NULL, "info", "the lowest level of log line written", "warn", SETTING_ENUM,
     0, 0, "debug|info|warn|error", F(log_level), false},
    BOOL("TASSA_QUIET", "--quiet", "false", F(quiet_access_log), "no access-log lines"),
    BOOL("TASSA_DEMO", "--demo", "false", F(demo),
         "add demo queues, tellers and simulated customers, and print the pages' URLs"),
};
const size_t config_nsettings = sizeof config_settings / sizeof config_settings[0];

const config_setting_t *config_setting_find(const char *name)
{
    bool is_flag = !strncmp(name, "--", 2);
    for (size_t i = 0; i < config_nsettings; i++) {
        const config_setting_t *s = &config_settings[i];
        if (is_flag ? s->flag && !strcmp(s->flag, name) : !strcmp(s->name, name))
            return s;
    }
    return NULL;
}

/* Levenshtein distance of a and b, both at most 63 bytes (longer: a large number). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 1000;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best =
                diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *config_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(word, cands[i]);
        /* a prefix ("--por") is a typo too */
        if (strlen(word) >= 3 && !strncmp(cands[i], word, strlen(word)))
            d = 1;
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    size_t limit = strlen(word) / 3;
    return best && best_d <= (limit ? limit : 1) ? best : NULL;
}

/* Parses v as the setting s and stores it in c (unless s is unwired). */
static tassa_err apply_setting(config_t *c, const config_setting_t *s, const char *v, errmsg_t *em)
{
    long n = 0;
    bool b = false;
    tassa_err err = TASSA_OK;
    void *slot = s->off == CONFIG_UNWIRED ? NULL : (char *)c + s->off;
    switch (s->kind) {
    case SETTING_STR:
        if (!*v)
            return TASSA_OK; /* an empty line in .env means unset */
        if (strlen(v) > 4096)
            return err_set(em, TASSA_EINVAL, "%s is longer than 4096 bytes", s->name);
        if (slot && set_str(slot, v))
            return err_set(em, TASSA_ENOMEM, "out of memory");
        return TASSA_OK;
    case SETTING_INT:
    case SETTING_SIZE:
        err = parse_int(s->name, v, s->lo, s->hi, &n, em);
        if (!err && slot && s->kind == SETTING_INT)
            *(int *)slot = (int)n;
        else if (!err && slot)
            *(size_t *)slot = (size_t)n;
        return err;
    case SETTING_BOOL:
        err = parse_bool(s->name, v, &b, em);
        if (!err && slot)
            *(bool *)slot = b;
        return err;
    case SETTING_ENUM: {
        const char *p = s->choices;
        size_t len = strlen(v);
        for (int i = 0; *p; i++) {
            const char *bar = strchr(p, '|');
            size_t plen = bar ? (size_t)(bar - p) : strlen(p);
            if (plen == len && !strncmp(p, v, len)) {
                if (slot)
                    *(int *)slot = i;
                return TASSA_OK;
            }
            p += plen + (bar ? 1 : 0);
        }
        char alt[128];
        snprintf(alt, sizeof alt, "%s", s->choices);
        for (char *q = strchr(alt, '|'); q; q = strchr(q, '|'))
            *q = '/';
        return err_set(em, TASSA_EINVAL, "%s must be one of %s", s->name, alt);
    }
    }
    return TASSA_OK;
}

/* Applies one named setting; unknown names are ignored (the environment holds many). */
static tassa_err apply(config_t *c, const char *name, const char *v, errmsg_t *em)
{
    const config_setting_t *s = config_setting_find(name);
    return s ? apply_setting(c, s, v, em) : TASSA_OK;
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
    c->sync_acl = -1; /* unset: the data file keeps its own */
    for (size_t i = 0; i < config_nsettings; i++) {
        const config_setting_t *s = &config_settings[i];
        if (*s->def && apply_setting(c, s, s->def, em))
            goto fail; /* only out of memory: the defaults are checked by a unit test */
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
    const config_setting_t *s = config_setting_find(name);
    if (!s || !s->flag) {
        const char *flags[64];
        size_t n = 0;
        for (size_t i = 0; i < config_nsettings && n < 64; i++) {
            if (config_settings[i].flag)
                flags[n++] = config_settings[i].flag;
        }
        const char *near = config_suggest(name, flags, n);
        if (near)
            return err_set(em, TASSA_EINVAL, "unknown flag %s; did you mean %s?", name, near);
        return err_set(em, TASSA_EINVAL, "unknown flag %s (try tassa serve --help)", name);
    }
    if (s->kind == SETTING_BOOL)
        return apply_setting(c, s, value ? value : "true", em);
    if (!value || !*value)
        return err_set(em, TASSA_EINVAL, "%s needs a value, e.g. %s %s", name, name, s->example);
    return apply_setting(c, s, value, em);
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
    char **strs[] = {
        &c->account_sid, &c->api_key,          &c->api_secret,    &c->auth_token,
        &c->jwt_secret,  &c->sync_service_sid, &c->workspace_sid, &c->taskrouter_url,
        &c->sync_url,    &c->cors_origins,     &c->public_url,    &c->data_path,
        &c->bind_addr,   &c->web_dir,          &c->metrics_token, &c->queue_status_readers};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    free(c);
}
