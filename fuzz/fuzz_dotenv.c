/* fuzz_dotenv.c - libFuzzer driver for `.env` files and setting values (config_load and
 * config_apply_flag in src/config.c).
 *
 * Input: the `.env` text, written to a file in /tmp (the environment is emptied once, so
 * only the file counts). Invariants:
 *   - a loaded configuration has every number in its documented range and every string
 *     setting set (defaults) and at most 4096 bytes;
 *   - reference: for every plain line NAME=VALUE (no quotes, spaces, `#` or `export`) of a
 *     string setting, the last one wins and is loaded byte for byte; a line that is not one
 *     of them never changes such a setting (so a long line cannot smuggle in another one);
 *   - a refusal names the problem; --port and --threads with the same values obey the same
 *     ranges. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "fuzz_common.h"

static char path[64];

static void cleanup(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    clearenv();
    snprintf(path, sizeof path, "/tmp/tassa-fuzz-env-%d", (int)getpid());
    atexit(cleanup);
    return 0;
}

static const struct {
    const char *name;
    size_t off;
} STRS[] = {
    {"ACCOUNT_SID", offsetof(config_t, account_sid)},
    {"API_KEY", offsetof(config_t, api_key)},
    {"API_SECRET", offsetof(config_t, api_secret)},
    {"AUTH_TOKEN", offsetof(config_t, auth_token)},
    {"PUBLIC_URL", offsetof(config_t, public_url)},
    {"TASSA_BIND", offsetof(config_t, bind_addr)},
};

static const char *field(const config_t *c, size_t off)
{
    return *(char *const *)((const char *)c + off);
}

/* The value the reference expects for name: the last plain line "name=value", or NULL. The
 * lines of text are split on '\n' only. Returns a malloc'd copy or NULL. */
static char *expected(const char *text, size_t len, const char *name, bool *other_line)
{
    char *want = NULL;
    size_t nl = strlen(name);
    *other_line = false;
    for (size_t i = 0; i < len;) {
        const char *line = text + i;
        const char *end = memchr(line, '\n', len - i);
        size_t ll = end ? (size_t)(end - line) : len - i;
        if (ll > nl && !memcmp(line, name, nl) && line[nl] == '=') {
            const char *v = line + nl + 1;
            size_t vl = ll - nl - 1;
            bool plain = vl > 0 && vl <= 4096 && memchr(v, '\0', vl) == NULL;
            for (size_t k = 0; plain && k < vl; k++)
                plain = v[k] > ' ' && v[k] < 0x7f && !strchr("\"'#=", v[k]);
            if (plain) {
                free(want);
                want = strndup(v, vl);
            } else {
                *other_line = true;
            }
        } else {
            /* another spelling of the setting (spaces, quotes, export): not modelled; the
             * name anywhere else on a line must change nothing */
            const char *eq = memchr(line, '=', ll);
            if (eq && memmem(line, (size_t)(eq - line), name, nl))
                *other_line = true;
        }
        i += ll + 1;
    }
    return want;
}

static void check_ranges(const config_t *c)
{
    FUZZ_CHECK(c->port >= 0 && c->port <= 65535, "port %d", c->port);
    FUZZ_CHECK(c->max_body >= 1024 && c->max_body <= (64u << 20), "max_body %zu", c->max_body);
    FUZZ_CHECK(c->threads >= 0 && c->threads <= 64, "threads %d", c->threads);  /* 0: per core */
    FUZZ_CHECK(c->writers >= 0 && c->writers <= 256, "writers %d", c->writers); /* 0: per core */
    FUZZ_CHECK(c->queue_status_max_entries >= 1 && c->queue_status_max_entries <= 10000,
               "queue status max %d", c->queue_status_max_entries);
    FUZZ_CHECK(c->max_streams >= 1 && c->max_streams_per_identity >= 1, "stream limits");
    FUZZ_CHECK(c->stream_heartbeat_ms >= 100 && c->stream_heartbeat_ms <= 3600000, "heartbeat");
    FUZZ_CHECK(c->http_timeout_ms >= 100 && c->http_timeout_ms <= 600000, "timeout");
    FUZZ_CHECK(c->http_retries >= 0 && c->http_retries <= 10, "retries");
    FUZZ_CHECK(c->backend == BACKEND_EMBEDDED || c->backend == BACKEND_TWILIO, "backend");
    FUZZ_CHECK(c->sync_service_sid && c->data_path && c->bind_addr && c->cors_origins &&
                   c->taskrouter_url && c->sync_url,
               "a defaulted setting is unset");
    for (size_t i = 0; i < sizeof STRS / sizeof STRS[0]; i++) {
        const char *v = field(c, STRS[i].off);
        FUZZ_CHECK(!v || strlen(v) <= 4096, "%s of %zu bytes", STRS[i].name, strlen(v));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "w");
    config_t *c;
    errmsg_t em = {{0}};

    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    c = config_load(path, &em);
    if (!c) {
        FUZZ_CHECK(em.text[0] != '\0', "refused without a detail");
        goto out;
    }
    check_ranges(c);
    for (size_t i = 0; i < sizeof STRS / sizeof STRS[0]; i++) {
        bool other;
        char *want = expected((const char *)data, size, STRS[i].name, &other);
        const char *got = field(c, STRS[i].off);
        if (!other && strcmp(STRS[i].name, "TASSA_BIND") != 0)
            FUZZ_CHECK(want ? got && !strcmp(got, want) : got == NULL,
                       "%s loaded as \"%.60s\", the file says \"%.60s\"", STRS[i].name,
                       got ? got : "(unset)", want ? want : "(unset)");
        else if (!other && want)
            FUZZ_CHECK(got && !strcmp(got, want), "TASSA_BIND loaded as %.60s", got);
        free(want);
    }
    {
        /* the same values through the flags obey the same ranges */
        char v[32];
        snprintf(v, sizeof v, "%.*s", (int)(size < 31 ? size : 31), (const char *)data);
        if (config_apply_flag(c, "--port", v, NULL) == TASSA_OK)
            FUZZ_CHECK(strlen(v) > 0, "--port accepted an empty value");
        (void)config_apply_flag(c, "--threads", v, NULL);
        check_ranges(c);
    }
out:
    config_free(c);
    return 0;
}
