/* twilio_rest.c - backend.h over Twilio's TaskRouter and Sync REST API (libcurl).
 *
 * Design notes.
 *
 * Connection reuse: a libcurl multi handle owns the cache of the connections its transfers
 * opened, so multi handles are kept in a small pool and checked out for one request at a time;
 * a thread never shares one. Each request runs on a fresh easy handle added to the checked-out
 * multi handle and freed after it: an easy handle that carried an earlier reply is never used
 * again, because libcurl 7.88.1 then reads freed memory when the next reply folds its first
 * header line (fuzz finding T1, curl issue #11101, fixed in 8.1), so any server at the
 * configured URLs could crash tassa. The pool's mutex covers only the checkout and the
 * return, never I/O. The handles share DNS and TLS sessions through a CURLSH; the connection
 * cache itself is not shared, because libcurl documents a shared connection cache as unsafe
 * between concurrent threads (known bug 11.11).
 *
 * Retries: 429, 5xx and transport failures are retried with full-jitter exponential back-off
 * (as twilio-node's autoRetry does). A POST retried after a timeout may already have landed:
 * the retry then meets a 409 (create) or a 412 (update), which this file reports as
 * TASSA_EDUPNAME / TASSA_EREVISION, and update_sync_doc re-reads and re-applies its change,
 * so nothing is lost or written twice.
 *
 * Paging: lists follow meta.next_page_url. The next URL's origin is replaced by the configured
 * base URL's, so the credentials only ever go to the configured host, also when the server
 * builds its links from a Host header that differs (a proxy, a stand-in).
 *
 * Layer: backend.
 */
#include "backend/twilio_rest.h"

#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/params.h"
#include "base/metrics.h"

#define POOL_IDLE_MAX          16                  /* idle multi handles kept for reuse */
#define BACKOFF_BASE_MS        100                 /* first retry waits up to this */
#define BACKOFF_CAP_MS         3000                /* no wait is longer, Retry-After included */
#define CONNECT_TIMEOUT_MAX_MS 5000                /* TCP + TLS set-up, within the total */
#define RESPONSE_MAX_BYTES     (64u * 1024 * 1024) /* a 1000-task page with big attributes fits */
#define USER_AGENT             "tassa/0.1 (twilio back end)"

typedef struct {
    const config_t *config; /* borrowed, outlives us */
    char *sync_base;        /* {sync_url}/v1/Services/{service}/Documents */
    char *tr_base;          /* {taskrouter_url}/v1/Workspaces/{workspace} */
    CURLSH *share;          /* DNS cache and TLS sessions of all handles */
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t lock;       /* guards idle, nidle and rng; held without I/O */
    CURLM *idle[POOL_IDLE_MAX]; /* each with the connections it keeps, no transfer */
    size_t nidle;
    uint64_t rng; /* xorshift state for the back-off jitter */
} twilio_t;

/* One request as the operations describe it. */
typedef struct {
    const char *method; /* "GET" or "POST" */
    const char *url;    /* absolute */
    const char *form;   /* form-encoded body of a POST, else NULL */
    const char *if_match;
    bool create;         /* a create: a 409 means the unique name is taken */
    long handled_status; /* a status the caller expects and handles (404, 409, 412) */
    log_level_t handled_level;
} call_t;

/* What one attempt brought back. */
typedef struct {
    buf_t body; /* body.failed: out of memory */
    bool too_big;
    long retry_after_ms; /* -1 when the response had no usable Retry-After */
} reply_t;

/* The implementation behind the interface (set once at construction, read-only after). */
static twilio_t *impl(backend_t *b)
{
    return b->impl;
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* Percent-encodes s (base/buf.h's encoder), for a path segment or a form value alike.
 * Returns a malloc'd string, or NULL when out of memory. */
static char *escape(const char *s)
{
    buf_t b = BUF_INIT;
    buf_add_encoded(&b, s);
    return buf_take(&b);
}

/* base + prefix + id percent-encoded + suffix: a resource's URL. Malloc'd; NULL when out of
 * memory. */
static char *url_for(const char *base, const char *prefix, const char *id, const char *suffix)
{
    buf_t u = BUF_INIT;
    buf_adds(&u, base);
    buf_adds(&u, prefix);
    buf_add_encoded(&u, id);
    buf_adds(&u, suffix);
    return buf_take(&u);
}

/* A malloc'd printf result, or NULL when out of memory. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* Copies base without trailing slashes: "https://sync.twilio.com/" -> "...com". */
static char *trim_base(const char *base)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    return strndup(base, n);
}

/* Length of the "scheme://authority" part of url, 0 when url is not absolute. */
static size_t origin_len(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep || sep == url)
        return 0;
    for (const char *c = url; c < sep; c++) {
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.", *c))
            return 0;
    }
    const char *path = sep + 3;
    path += strcspn(path, "/?#");
    return (size_t)(path - url);
}

/* Writes url into out for a log line, without any user:password@ it may carry. */
static void redact_url(const char *url, char *out, size_t len)
{
    size_t olen = origin_len(url);
    const char *sep = strstr(url, "://");
    const char *at = olen ? memchr(url, '@', olen) : NULL;
    if (!at || !sep) {
        snprintf(out, len, "%s", url);
        return;
    }
    snprintf(out, len, "%.*s://***@%s", (int)(sep - url), url, at + 1);
}

/* Copies a message from the network into out for a log value in quotes: no quotes, no
 * backslashes, no control characters (one log line per event). */
static void log_safe(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (; in && *in && o + 1 < len; in++)
        out[o++] = (*in == '"' || *in == '\\' || (unsigned char)*in < 0x20) ? '\'' : *in;
    out[o] = '\0';
}

/* Waits ms milliseconds in the calling thread (a back-off; no lock is held). */
static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- the handle pool -------------------------------------------------------------------- */

/* libcurl asks for a lock per kind of shared data; one mutex each (see the share docs). */
static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
    twilio_t *t = user;
    pthread_mutex_lock(&t->share_locks[data]);
}

/* The counterpart of share_lock. */
static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
    twilio_t *t = user;
    pthread_mutex_unlock(&t->share_locks[data]);
}

/* An idle multi handle (no transfer, connections kept) or a new one. NULL when out of
 * memory. */
static CURLM *checkout(twilio_t *t)
{
    CURLM *h = NULL;
    pthread_mutex_lock(&t->lock);
    if (t->nidle)
        h = t->idle[--t->nidle];
    pthread_mutex_unlock(&t->lock);
    if (!h)
        h = curl_multi_init();
    return h;
}

/* Returns h to the pool, or closes it (outside the lock: closing may write) when full. */
static void checkin(twilio_t *t, CURLM *h)
{
    pthread_mutex_lock(&t->lock);
    if (t->nidle < POOL_IDLE_MAX) {
        t->idle[t->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&t->lock);
    if (h)
        curl_multi_cleanup(h);
}

/* Full jitter: a uniform wait in [0, min(cap, base * 2^(attempt-1))] ms. */
static long backoff_ms(twilio_t *t, int attempt)
{
    long ceiling = BACKOFF_BASE_MS;
    for (int i = 1; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    pthread_mutex_lock(&t->lock);
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    pthread_mutex_unlock(&t->lock);
    return (long)((x * 0x2545F4914F6CDD1DULL) % (uint64_t)(ceiling + 1));
}

/* ---- one request ------------------------------------------------------------------------ */

/* Collects the response body, refusing more than RESPONSE_MAX_BYTES so that a broken or hostile
 * server cannot exhaust memory. */
static size_t on_body(char *ptr, size_t size, size_t n, void *user)
{
    reply_t *r = user;
    size_t add = size * n;
    if (r->body.len + add > RESPONSE_MAX_BYTES) {
        r->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return buf_add(&r->body, ptr, add) ? 0 : add;
}

long twilio_rest_retry_after_ms(const char *line, size_t len)
{
    static const char name[] = "retry-after:";
    if (len <= sizeof name - 1 || strncasecmp(line, name, sizeof name - 1) != 0)
        return -1;
    /* The field value without the optional white space around it and the line end. */
    const char *v = line + sizeof name - 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    /* delay-seconds is 1*DIGIT (RFC 9110 10.2.3): a sign, a space inside or anything else
     * refuses it. The HTTP-date form is ignored on purpose (-1, the back-off applies): the
     * wait is capped at 3 s anyway, and reading a date would trust the server's clock. */
    size_t vlen = (size_t)(e - v);
    for (size_t i = 0; i < vlen; i++)
        if (v[i] < '0' || v[i] > '9')
            return -1;
    if (vlen == 0)
        return -1;
    char value[32];
    long secs;
    if (vlen >= sizeof value)
        return BACKOFF_CAP_MS; /* digits only, but past a long: longer than the cap */
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    if (!params_parse_long(value, 0, LONG_MAX, &secs))
        return BACKOFF_CAP_MS; /* the same, 19 or 20 digits */
    return secs > BACKOFF_CAP_MS / 1000 ? BACKOFF_CAP_MS : secs * 1000;
}

/* Picks Retry-After (delta seconds; an HTTP date counts as "unknown") out of the headers. */
static size_t on_header(char *ptr, size_t size, size_t n, void *user)
{
    reply_t *r = user;
    size_t len = size * n;
    if (len > 5 && !strncmp(ptr, "HTTP/", 5)) {
        r->retry_after_ms = -1; /* a new response (after a 100 Continue) starts afresh */
    } else {
        long ms = twilio_rest_retry_after_ms(ptr, len);
        if (ms >= 0)
            r->retry_after_ms = ms;
    }
    return len;
}

/* Transport failures worth another try: the request may not have reached the server, or its
 * answer got lost. Malformed URLs, TLS verification failures and the like are final. */
static bool transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
    }
}

/* Runs the one transfer curl on multi until it ends. Returns its libcurl code. */
static CURLcode run_transfer(CURLM *multi, CURL *curl)
{
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    int running = 1, left;
    CURLMcode mc = curl_multi_add_handle(multi, curl);
    while (mc == CURLM_OK && running) {
        mc = curl_multi_perform(multi, &running);
        if (mc == CURLM_OK && running)
            mc = curl_multi_poll(multi, NULL, 0, 1000, NULL); /* CURLOPT_TIMEOUT_MS bounds it */
    }
    if (mc == CURLM_OK) {
        CURLMsg *m;
        cc = CURLE_RECV_ERROR; /* ended without a result: treated as a lost answer */
        while ((m = curl_multi_info_read(multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE && m->easy_handle == curl)
                cc = m->data.result;
    } else if (mc != CURLM_OUT_OF_MEMORY) {
        cc = CURLE_FAILED_INIT;
    }
    curl_multi_remove_handle(multi, curl);
    return cc;
}

/* Performs one attempt of c on a fresh easy handle run by a pooled multi handle (see the
 * design notes: connection reuse). Returns the libcurl code; *status is the HTTP status (0
 * without a response), errbuf libcurl's detail. */
static CURLcode perform(twilio_t *t, const call_t *c, reply_t *r, long *status,
                        char errbuf[CURL_ERROR_SIZE])
{
    const config_t *cfg = t->config;
    struct curl_slist *headers = NULL, *h;
    char if_match[160];
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    *status = 0;
    errbuf[0] = '\0';
    CURLM *multi = checkout(t);
    CURL *curl = multi ? curl_easy_init() : NULL;
    if (!curl)
        goto out;
    const char *lines[4];
    size_t nlines = 0;
    lines[nlines++] = "Accept: application/json";
    lines[nlines++] = "Expect:"; /* no 100-continue round trip before a POST body */
    if (c->if_match) {
        snprintf(if_match, sizeof if_match, "If-Match: %s", c->if_match);
        lines[nlines++] = if_match;
    }
    if (c->form)
        lines[nlines++] = "Content-Type: application/x-www-form-urlencoded";
    for (size_t i = 0; i < nlines; i++) {
        h = curl_slist_append(headers, lines[i]);
        if (!h)
            goto out;
        headers = h;
    }
    long connect_ms = cfg->http_timeout_ms < CONNECT_TIMEOUT_MAX_MS ? cfg->http_timeout_ms
                                                                    : CONNECT_TIMEOUT_MAX_MS;
    curl_easy_setopt(curl, CURLOPT_SHARE, t->share);
    curl_easy_setopt(curl, CURLOPT_URL, c->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)cfg->http_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, cfg->api_key);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, cfg->api_secret);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    if (c->form) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->form);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->form));
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    cc = run_transfer(multi, curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
out:
    /* The easy handle (options, credentials, pointers to this call's buffers) goes; the multi
     * handle keeps only the connections. */
    curl_easy_cleanup(curl);
    if (multi)
        checkin(t, multi);
    curl_slist_free_all(headers);
    return cc;
}

/* Reads Twilio's error body {code, message, more_info, status}; code 0 and the start of the
 * raw body as message when it is not one. */
static void parse_error(const reply_t *r, int *code, char *msg, size_t len)
{
    *code = 0;
    msg[0] = '\0';
    json_t *j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "message")); /* borrowed */
    if (json_is_object(j)) {
        *code = (int)json_integer_value(json_object_get(j, "code"));
        if (!m)
            m = json_string_value(json_object_get(j, "detail"));
    }
    log_safe(m ? m : buf_str(&r->body), msg, len > 161 ? 161 : len);
    json_decref(j);
}

/* The tassa error for a final HTTP status, as the embedded back end would report it. */
static tassa_err map_status(const call_t *c, long status, int code)
{
    if (status == 409 && (c->create || code == 54301))
        return TASSA_EDUPNAME;
    if (status == 412 || code == 54103)
        return TASSA_EREVISION;
    return tassa_err_from_status((int)status);
}

/* Runs c with the retry policy and parses the JSON answer into *out (an empty object for an
 * empty 2xx body). On failure *out stays NULL and em says what Twilio (or the network)
 * said. */
static tassa_err call(twilio_t *t, const call_t *c, json_t **out, errmsg_t *em)
{
    const int attempts = 1 + (t->config->http_retries > 0 ? t->config->http_retries : 0);
    char url[512], msg[162], errbuf[CURL_ERROR_SIZE];
    tassa_err err = TASSA_OK;
    *out = NULL;
    redact_url(c->url, url, sizeof url);
    for (int attempt = 1;; attempt++) {
        reply_t r = {.retry_after_ms = -1};
        long status;
        int code = 0;
        CURLcode cc = perform(t, c, &r, &status, errbuf);
        if (cc == CURLE_OK && status >= 200 && status < 300) {
            json_error_t jerr;
            /* An earlier attempt's failure is no longer the answer. */
            err = TASSA_OK;
            if (em)
                em->text[0] = '\0';
            *out = r.body.len ? json_loadb(r.body.data, r.body.len, 0, &jerr) : json_object();
            if (!*out && !r.body.len)
                err = err_set(em, TASSA_ENOMEM, "out of memory");
            else if (!*out)
                err = err_set(em, TASSA_EUPSTREAM, "twilio %ld: %s %s answered invalid JSON (%s)",
                              status, c->method, url, jerr.text);
            buf_free(&r.body);
            metrics_add(M_BACKEND_CALLS, 1, "outcome", err ? "bad_answer" : "ok", NULL);
            return err;
        }
        bool retry;
        if (cc != CURLE_OK) {
            if (cc == CURLE_OUT_OF_MEMORY || r.body.failed) {
                buf_free(&r.body);
                return err_set(em, TASSA_ENOMEM, "out of memory");
            }
            retry = transient(cc);
            log_safe(r.too_big ? "response too large"
                               : (errbuf[0] ? errbuf : curl_easy_strerror(cc)),
                     msg, sizeof msg);
            err = cc == CURLE_OPERATION_TIMEDOUT ? TASSA_ETIMEOUT : TASSA_EUPSTREAM;
            err_set(em, err, "twilio %s %s failed after %d attempt%s: %s", c->method, url, attempt,
                    attempt > 1 ? "s" : "", msg);
        } else {
            retry = status == 429 || status >= 500;
            parse_error(&r, &code, msg, sizeof msg);
            err = map_status(c, status, code);
            err_set(em, err, "twilio %ld %d: %s", status, code, msg);
        }
        retry = retry && attempt < attempts;
        long wait = 0;
        if (retry)
            wait = r.retry_after_ms >= 0 ? r.retry_after_ms : backoff_ms(t, attempt);
        buf_free(&r.body);
        bool handled = !retry && cc == CURLE_OK && status == c->handled_status;
        char next[48];
        if (retry)
            snprintf(next, sizeof next, "retry retry_in_ms=%ld", wait);
        else
            snprintf(next, sizeof next, "%s", handled ? "caller_handles" : "give_up");
        log_msg(handled ? c->handled_level : LOG_WARN,
                "event=twilio_request_failed method=%s url=%s status=%ld code=%d attempt=%d/%d "
                "next=%s message=\"%s\"",
                c->method, url, status, code, attempt, attempts, next, msg);
        if (retry)
            metrics_add(M_BACKEND_RETRIES, 1, NULL);
        else
            metrics_add(M_BACKEND_CALLS, 1, "outcome", handled ? "handled_error" : "failed", NULL);
        if (!retry)
            return err;
        sleep_ms(wait);
    }
}

/* GETs every page of a TaskRouter list starting at first_url and gathers the items of key (or
 * of meta.key, as twilio-node reads them) into *items. */
static tassa_err list_all(twilio_t *t, const char *first_url, const char *key, json_t **items,
                          errmsg_t *em)
{
    tassa_err err = TASSA_OK;
    json_t *all = json_array(), *page = NULL;
    char *url = strdup(first_url);
    size_t base_origin = origin_len(t->tr_base);
    *items = NULL;
    if (!all || !url) {
        err = err_set(em, TASSA_ENOMEM, "out of memory");
        goto out;
    }
    for (int pages = 0; url; pages++) {
        if (pages == TWILIO_REST_PAGE_CAP) {
            err = err_set(em, TASSA_EUPSTREAM, "twilio list %s has more than %d pages; gave up",
                          key, TWILIO_REST_PAGE_CAP);
            goto out;
        }
        call_t c = {.method = "GET", .url = url};
        err = call(t, &c, &page, em);
        if (err)
            goto out;
        const json_t *meta = json_object_get(page, "meta"); /* borrowed, as below */
        const char *k = json_string_value(json_object_get(meta, "key"));
        json_t *list = json_object_get(page, k ? k : key);
        if (!json_is_array(list)) {
            err = err_set(em, TASSA_EUPSTREAM, "twilio list page has no \"%s\" array", key);
            goto out;
        }
        if (json_array_extend(all, list)) {
            err = err_set(em, TASSA_ENOMEM, "out of memory");
            goto out;
        }
        const char *next = json_string_value(json_object_get(meta, "next_page_url"));
        free(url);
        url = NULL;
        if (next && *next) {
            /* Our origin, the server's path and query (see the note atop this file). */
            url = format("%.*s%s", (int)base_origin, t->tr_base, next + origin_len(next));
            if (!url) {
                err = err_set(em, TASSA_ENOMEM, "out of memory");
                goto out;
            }
        }
        json_decref(page);
        page = NULL;
    }
    *items = all;
    all = NULL;
out:
    json_decref(page);
    json_decref(all);
    free(url);
    return err;
}

/* GETs url (malloc'd, freed here; NULL reports out of memory) into *out (see call);
 * handled_status and level as in call_t. */
static tassa_err get(twilio_t *t, char *url, long handled_status, log_level_t level, json_t **out,
                     errmsg_t *em)
{
    if (!url)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    call_t c = {
        .method = "GET", .url = url, .handled_status = handled_status, .handled_level = level};
    tassa_err err = call(t, &c, out, em);
    free(url);
    return err;
}

/* ---- Sync documents --------------------------------------------------------------------- */

/* Why: a document name may hold any character; it goes into the path percent-encoded. */
static tassa_err doc_fetch(backend_t *b, const char *name, json_t **doc, errmsg_t *em)
{
    twilio_t *t = impl(b);
    *doc = NULL;
    /* A missing document is the normal first step of update_sync_doc: logged at debug. */
    return get(t, url_for(t->sync_base, "/", name, ""), 404, LOG_DEBUG, doc, em);
}

/* Why one function: create and update differ only in the URL, UniqueName and If-Match. */
static tassa_err doc_write(backend_t *b, const char *name, const json_t *data, const char *if_match,
                           bool create, json_t **doc, errmsg_t *em)
{
    twilio_t *t = impl(b);
    tassa_err err = TASSA_OK;
    char *text = NULL, *url = NULL, *form = NULL;
    *doc = NULL;
    if (!json_is_object(data))
        return err_set(em, TASSA_EINVAL, "document data must be a JSON object");
    if (if_match && (strlen(if_match) > 120 || strpbrk(if_match, "\r\n")))
        return err_set(em, TASSA_EINVAL, "If-Match revision is malformed");
    text = json_dumps(data, JSON_COMPACT);
    buf_t f = BUF_INIT;
    if (create) {
        url = strdup(t->sync_base);
        buf_adds(&f, "UniqueName=");
        buf_add_encoded(&f, name);
        buf_adds(&f, "&");
    } else {
        url = url_for(t->sync_base, "/", name, "");
    }
    buf_adds(&f, "Data=");
    buf_add_encoded(&f, text ? text : "");
    form = buf_take(&f);
    if (!text || !url || !form) {
        err = err_set(em, TASSA_ENOMEM, "out of memory");
        goto out;
    }
    /* A 409 on create and a 412 on update are races update_sync_doc resolves. */
    call_t c = {.method = "POST",
                .url = url,
                .form = form,
                .if_match = if_match,
                .create = create,
                .handled_status = create ? 409 : 412,
                .handled_level = LOG_INFO};
    err = call(t, &c, doc, em);
out:
    free(form);
    free(url);
    free(text);
    return err;
}

/* Why: POST .../Documents with UniqueName; see doc_write. */
static tassa_err doc_create(backend_t *b, const char *name, const json_t *data, json_t **doc,
                            errmsg_t *em)
{
    return doc_write(b, name, data, NULL, true, doc, em);
}

/* Why: POST .../Documents/{name} with If-Match; see doc_write. */
static tassa_err doc_update(backend_t *b, const char *name, const json_t *data,
                            const char *if_match, json_t **doc, errmsg_t *em)
{
    return doc_write(b, name, data, if_match, false, doc, em);
}

/* Why: Twilio's UpdateDocumentPermission (POST .../Documents/{name}/Permissions/{identity})
 * creates or replaces the permission and needs all three flags. */
static tassa_err doc_grant_read(backend_t *b, const char *name, const char *identity, errmsg_t *em)
{
    twilio_t *t = impl(b);
    json_t *answer = NULL;
    tassa_err err;
    char *doc = url_for(t->sync_base, "/", name, "/Permissions/");
    char *url = doc ? url_for(doc, "", identity, "") : NULL;
    free(doc);
    if (!url) {
        err = err_set(em, TASSA_ENOMEM, "out of memory");
        goto out;
    }
    call_t c = {.method = "POST", .url = url, .form = "Read=true&Write=false&Manage=false"};
    err = call(t, &c, &answer, em);
out:
    json_decref(answer);
    free(url);
    return err;
}

/* ---- TaskRouter reads ------------------------------------------------------------------- */

/* Why: AssignmentStatus is a repeated query parameter, as twilio-node sends it. */
static tassa_err tasks_list(backend_t *b, const char *const *statuses, size_t n, json_t **tasks,
                            errmsg_t *em)
{
    twilio_t *t = impl(b);
    buf_t q = BUF_INIT;
    *tasks = NULL;
    buf_printf(&q, "%s/Tasks?", t->tr_base);
    for (size_t i = 0; i < n; i++) {
        buf_adds(&q, "AssignmentStatus=");
        buf_add_encoded(&q, statuses[i]);
        buf_adds(&q, "&");
    }
    buf_adds(&q, "PageSize=1000");
    char *query = buf_take(&q);
    if (!query)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    tassa_err err = list_all(t, query, "tasks", tasks, em);
    free(query);
    return err;
}

/* Why: one GET of a task; TASSA_ENOTFOUND (with Twilio's message) when unknown. */
static tassa_err task_fetch(backend_t *b, const char *task_sid, json_t **task, errmsg_t *em)
{
    twilio_t *t = impl(b);
    *task = NULL;
    return get(t, url_for(t->tr_base, "/Tasks/", task_sid, ""), 0, LOG_INFO, task, em);
}

/* Why: lists of a whole workspace can run over many pages; list_all follows them. */
static tassa_err list_resource(backend_t *b, const char *path, const char *key, json_t **items,
                               errmsg_t *em)
{
    twilio_t *t = impl(b);
    *items = NULL;
    char *url = format("%s/%s?PageSize=1000", t->tr_base, path);
    if (!url)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    tassa_err err = list_all(t, url, key, items, em);
    free(url);
    return err;
}

/* Why: see list_resource. */
static tassa_err workers_list(backend_t *b, json_t **workers, errmsg_t *em)
{
    return list_resource(b, "Workers", "workers", workers, em);
}

/* Why: see list_resource. */
static tassa_err queues_list(backend_t *b, json_t **queues, errmsg_t *em)
{
    return list_resource(b, "TaskQueues", "task_queues", queues, em);
}

/* Why: two resources of one queue; either both or neither is returned. */
static tassa_err queue_stats(backend_t *b, const char *queue_sid, int minutes, json_t **realtime,
                             json_t **cumulative, errmsg_t *em)
{
    twilio_t *t = impl(b);
    char cumulative_path[64] = "/CumulativeStatistics";
    *realtime = *cumulative = NULL;
    if (minutes > 0)
        snprintf(cumulative_path, sizeof cumulative_path, "/CumulativeStatistics?Minutes=%d",
                 minutes);
    tassa_err err = get(t, url_for(t->tr_base, "/TaskQueues/", queue_sid, "/RealTimeStatistics"), 0,
                        LOG_INFO, realtime, em);
    if (!err)
        err = get(t, url_for(t->tr_base, "/TaskQueues/", queue_sid, cumulative_path), 0, LOG_INFO,
                  cumulative, em);
    if (err) {
        json_decref(*realtime);
        *realtime = NULL;
    }
    return err;
}

/* ---- life cycle ------------------------------------------------------------------------- */

/* Why: the pool's handles hold connections; the share is freed only after them. */
static void destroy(backend_t *b)
{
    if (!b)
        return;
    twilio_t *t = impl(b);
    if (t) {
        for (size_t i = 0; i < t->nidle; i++)
            curl_multi_cleanup(t->idle[i]);
        if (t->share)
            curl_share_cleanup(t->share);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&t->share_locks[i]);
        pthread_mutex_destroy(&t->lock);
        free(t->sync_base);
        free(t->tr_base);
        free(t);
    }
    free(b);
}

static const backend_ops_t OPS = {
    .name = "twilio",
    .doc_fetch = doc_fetch,
    .doc_create = doc_create,
    .doc_update = doc_update,
    .doc_grant_read = doc_grant_read,
    .tasks_list = tasks_list,
    .task_fetch = task_fetch,
    .workers_list = workers_list,
    .queues_list = queues_list,
    .queue_stats = queue_stats,
    .destroy = destroy,
};

/* The first setting the back end cannot work without, or NULL when all are there. */
static const char *missing_setting(const config_t *c)
{
    if (!c->api_key || !*c->api_key)
        return "API_KEY";
    if (!c->api_secret || !*c->api_secret)
        return "API_SECRET";
    if (!c->workspace_sid || !*c->workspace_sid)
        return "WORKSPACE_SID";
    if (!c->sync_service_sid || !*c->sync_service_sid)
        return "SYNC_SERVICE_SID";
    if (!c->taskrouter_url || !origin_len(c->taskrouter_url) ||
        (strncmp(c->taskrouter_url, "https://", 8) && strncmp(c->taskrouter_url, "http://", 7)))
        return "TWILIO_TASKROUTER_URL (an http:// or https:// URL)";
    if (!c->sync_url || !origin_len(c->sync_url) ||
        (strncmp(c->sync_url, "https://", 8) && strncmp(c->sync_url, "http://", 7)))
        return "TWILIO_SYNC_URL (an http:// or https:// URL)";
    return NULL;
}

/* Why: validates what the requests need once, so that no request fails on configuration. */
backend_t *backend_twilio_new(const config_t *c, errmsg_t *em)
{
    backend_t *b = NULL;
    twilio_t *t = NULL;
    char *sync_url = NULL, *tr_url = NULL, *svc = NULL, *ws = NULL;
    const char *missing = c ? missing_setting(c) : "a configuration";
    if (missing) {
        err_set(em, TASSA_EINVAL, "the twilio back end needs %s", missing);
        return NULL;
    }
    if (c->http_timeout_ms <= 0) {
        err_set(em, TASSA_EINVAL, "TASSA_HTTP_TIMEOUT_MS must be a positive number");
        return NULL;
    }
    b = calloc(1, sizeof *b);
    t = calloc(1, sizeof *t);
    if (!b || !t)
        goto oom;
    t->config = c;
    pthread_mutex_init(&t->lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&t->share_locks[i], NULL);
    b->ops = &OPS;
    b->impl = t;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    t->rng =
        ((uint64_t)now.tv_sec * 1000000007ULL) ^ (uint64_t)now.tv_nsec ^ (uint64_t)(uintptr_t)t;
    if (!t->rng)
        t->rng = 0x9E3779B97F4A7C15ULL;
    sync_url = trim_base(c->sync_url);
    tr_url = trim_base(c->taskrouter_url);
    svc = escape(c->sync_service_sid);
    ws = escape(c->workspace_sid);
    if (!sync_url || !tr_url || !svc || !ws)
        goto oom;
    t->sync_base = format("%s/v1/Services/%s/Documents", sync_url, svc);
    t->tr_base = format("%s/v1/Workspaces/%s", tr_url, ws);
    if (!t->sync_base || !t->tr_base)
        goto oom;
    t->share = curl_share_init();
    if (!t->share || curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(t->share, CURLSHOPT_USERDATA, t) != CURLSHE_OK ||
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        goto oom;
    goto out;
oom:
    err_set(em, TASSA_ENOMEM, "out of memory while setting up the twilio back end");
    if (b && b->impl)
        destroy(b);
    else {
        free(t);
        free(b);
    }
    b = NULL;
out:
    free(sync_url);
    free(tr_url);
    free(svc);
    free(ws);
    return b;
}

tassa_err twilio_rest_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? TASSA_OK : TASSA_EINTERNAL;
}

void twilio_rest_global_cleanup(void)
{
    curl_global_cleanup();
}

void twilio_rest_lib_versions(char *out, size_t n)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    snprintf(out, n, "libcurl %s (built with %s)", cv ? cv->version : "?", LIBCURL_VERSION);
}
