/* fuzz_twilio_rest.c - libFuzzer driver for what Twilio's REST API (or anything at its URL)
 * answers the twilio back end (src/backend/twilio_rest.c): whole HTTP replies through
 * libcurl, and the Retry-After header (twilio_rest_retry_after_ms).
 *
 * A raw TCP server thread on a loopback port answers every request with the bytes the input
 * chose and closes; the back end points its TaskRouter and Sync URLs at it (no retries, so no
 * back-off sleeps). Input: an operation byte, a mode byte, then either a raw reply (mode 0) or
 * a status choice and a JSON body sent with a correct Content-Length (mode 1). Invariants:
 *   - any reply gives TASSA_OK with a result, or an error with no result, and no crash;
 *   - mode 1: a 2xx JSON object comes back equal (a fetch), an empty 2xx body is {}, invalid
 *     JSON in a 2xx is an upstream error, 404 is TASSA_ENOTFOUND, 412 TASSA_EREVISION, and no
 *     other non-2xx status is success;
 *   - Retry-After: -1 or 0..3000 ms, delay-seconds read as themselves (capped), nothing but
 *     the Retry-After header counts, and (issue 9 defect 10, once fixed) no sign is taken. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend/twilio_rest.h"
#include "fuzz_common.h"
#include "base/log.h"

#define WS "WS0123456789abcdef0123456789abcdef"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *reply;
static size_t reply_len;
static int listen_fd;
static char base_url[64];
static config_t config;
static backend_t *backend;

/* Reads one request (headers, then Content-Length bytes of body) and answers the reply. */
static void *serve(void *arg)
{
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        char buf[16384];
        size_t got = 0;
        if (fd < 0)
            continue;
        for (;;) {
            ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end) {
                const char *cl = strcasestr(buf, "\r\nContent-Length:");
                size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
                if (got >= want || got == sizeof buf - 1)
                    break;
            }
            if (got == sizeof buf - 1)
                break;
        }
        pthread_mutex_lock(&lock);
        for (size_t sent = 0; sent < reply_len;) {
            ssize_t w = send(fd, reply + sent, reply_len - sent, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
        pthread_mutex_unlock(&lock);
        close(fd);
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    pthread_t t;
    errmsg_t em = {{0}};

    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(listen_fd, 64) || getsockname(listen_fd, (struct sockaddr *)&a, &alen) ||
        pthread_create(&t, NULL, serve, NULL))
        abort();
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    config = (config_t){.account_sid = "AC0123456789abcdef0123456789abcdef",
                        .api_key = "SK0123456789abcdef0123456789abcdef",
                        .api_secret = "s3cret",
                        .workspace_sid = WS,
                        .sync_service_sid = "default",
                        .taskrouter_url = base_url,
                        .sync_url = base_url,
                        .http_timeout_ms = 2000,
                        .http_retries = 0};
    if (!(backend = backend_twilio_new(&config, &em))) {
        fprintf(stderr, "no back end: %s\n", em.text);
        abort();
    }
    return 0; /* server thread and back end live as long as the process */
}

static void set_reply(const char *bytes, size_t len)
{
    pthread_mutex_lock(&lock);
    free(reply);
    reply = malloc(len + 1);
    if (!reply)
        abort();
    memcpy(reply, bytes, len);
    reply_len = len;
    pthread_mutex_unlock(&lock);
}

static void check_retry_after(const uint8_t *data, size_t size)
{
    char line[96];
    long ms = twilio_rest_retry_after_ms((const char *)data, size);
    FUZZ_CHECK(ms == -1 || (ms >= 0 && ms <= 3000), "Retry-After wait %ld", ms);
    if (ms >= 0) {
        const char *v = (const char *)data + 12, *e = (const char *)data + size;
        FUZZ_CHECK(size > 12 && !strncasecmp((const char *)data, "retry-after:", 12),
                   "a wait from another header");
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        FUZZ_CHECK(FUZZ_KNOWN_LOOSE_NUMBERS || (v < e && *v >= '0' && *v <= '9'),
                   "Retry-After with a sign accepted");
    }
    /* delay-seconds as Twilio sends them */
    unsigned secs = size ? data[0] % 8 : 0;
    int n = snprintf(line, sizeof line, "Retry-After: %u\r\n", secs);
    FUZZ_CHECK(twilio_rest_retry_after_ms(line, (size_t)n) == (secs > 3 ? 3000 : secs * 1000L),
               "Retry-After: %u read wrong", secs);
    n = snprintf(line, sizeof line, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n");
    FUZZ_CHECK(twilio_rest_retry_after_ms(line, (size_t)n) == -1, "HTTP date read as seconds");
}

/* Runs operation op; returns its error and sets *out (NULL on failure). */
static tassa_err run(int op, json_t **out)
{
    static const char *const waiting[] = {"pending", "reserved"};
    json_t *data, *rt = NULL, *cum = NULL;
    tassa_err err;
    errmsg_t em = {{0}};
    *out = NULL;
    switch (op) {
    case 0: return backend->ops->doc_fetch(backend, "customer-42", out, &em);
    case 1:
        return backend->ops->task_fetch(backend, "WT0123456789abcdef0123456789abcdef", out, &em);
    case 2: return backend->ops->tasks_list(backend, waiting, 2, out, &em);
    case 3: return backend->ops->workers_list(backend, out, &em);
    case 4:
        data = json_pack("{s:s}", "status", "waiting");
        err = backend->ops->doc_update(backend, "customer-42", data, "3", out, &em);
        json_decref(data);
        return err;
    default:
        err = backend->ops->queue_stats(backend, "WQ0123456789abcdef0123456789abcdef", 15, &rt,
                                        &cum, &em);
        FUZZ_CHECK(err ? !rt && !cum : rt && cum, "queue_stats results and error disagree");
        *out = rt;
        json_decref(cum);
        return err;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 201, 400, 401, 403, 404, 409, 412, 429, 500, 503};
    int op, status = 0;
    json_t *out = NULL, *want = NULL;
    tassa_err err;

    check_retry_after(data, size);
    if (size < 3 || size > 65536)
        return 0;
    op = data[0] % 6;
    if (data[1] % 2 == 0) {
        char *raw = malloc(size);
        if (!raw)
            abort();
        memcpy(raw, data + 2, size - 2);
        /* Finding T1 (fuzz/README.md): a folded header line (obs-fold) in a reply to a reused
         * libcurl 7.88.1 handle is a use-after-free inside libcurl; while the back end reuses
         * handles, folds are unfolded here so that the rest stays fuzzed. */
        for (size_t i = 0; FUZZ_KNOWN_CURL_FOLD && i + 1 < size - 2; i++)
            if (raw[i] == '\n' && (raw[i + 1] == ' ' || raw[i + 1] == '\t'))
                raw[i + 1] = 'X';
        set_reply(raw, size - 2);
        free(raw);
    } else {
        const char *body = (const char *)data + 3;
        size_t blen = size - 3;
        char *r = malloc(blen + 256);
        int n;
        if (!r)
            abort();
        status = statuses[data[2] % (sizeof statuses / sizeof statuses[0])];
        n = snprintf(r, 256,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nRetry-After: 0\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, blen);
        memcpy(r + n, body, blen);
        set_reply(r, (size_t)n + blen);
        free(r);
        want = blen ? json_loadb(body, blen, 0, NULL) : json_object();
    }
    err = run(op, &out);
    FUZZ_CHECK(err == TASSA_OK ? out != NULL : out == NULL, "error %d and result disagree", err);
    if (status >= 200 && status < 300) {
        if (!want)
            FUZZ_CHECK(err == TASSA_EUPSTREAM, "invalid JSON in a %d gave %d", status, err);
        else if ((op == 0 || op == 1 || op == 4) && json_is_object(want))
            FUZZ_CHECK(err == TASSA_OK && json_equal(out, want), "2xx object not returned as is");
    } else if (status) {
        FUZZ_CHECK(err != TASSA_OK, "status %d taken as success", status);
        if (status == 404)
            FUZZ_CHECK(err == TASSA_ENOTFOUND, "404 gave %d", err);
        if (status == 412)
            FUZZ_CHECK(err == TASSA_EREVISION, "412 gave %d", err);
    }
    json_decref(out);
    json_decref(want);
    return 0;
}
