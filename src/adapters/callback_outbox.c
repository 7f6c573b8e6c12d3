/* callback_outbox.c - durable, signed, retried delivery of EventCallbackUrl POSTs.
 *
 * Several nodes may deliver from one shared table. A delivery thread claims due rows in one
 * critical section (SELECT ... FOR UPDATE SKIP LOCKED, then next_at pushed past the POST's
 * timeout and claimed_by set to this process), so no other node posts them meanwhile; the
 * store serializes critical sections, and the SQLite store drops the FOR UPDATE words. A row
 * whose claimer died becomes due again once its claim runs out. Enqueueing is idempotent by
 * (event_sid, url): an event the dispatcher delivers again after a crash is stored once.
 *
 * Layer: adapters. */
#include "adapters/callback_outbox.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

#include "auth/signature.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "store/migrate.h"

#define BATCH          16
#define MAX_BACKOFF_MS 600000
#define CLAIM_SLACK_MS 5000 /* a claim outlives the POST's timeout by this much */

struct outbox {
    store_t *store;
    char *auth_token;
    int timeout_ms;
    char node[40]; /* claimed_by: "pid-random", unique per process */
    pthread_t thread;
    bool started, stopping, kicked; /* kicked: an enqueue since the last look */
    pthread_mutex_t lock; /* guards stopping and the wake-up; the table has the store lock */
    pthread_cond_t wake;
};

/* The outbox schema, one migration step per version (store/migrate.h); version 1 is the schema
 * from before versioned migrations. */
static const migrate_step_t MIGRATIONS[] = {
    {"CREATE TABLE IF NOT EXISTS callback_outbox ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, body TEXT NOT NULL,"
     "  event_sid TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,"
     "  failed INTEGER NOT NULL DEFAULT 0, last_error TEXT, created INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS callback_outbox_due ON callback_outbox (failed, next_at);",
     NULL},
    /* 2: one row per (event, url), so a replayed event is stored once; the copies an older
     * file may hold are removed first (the oldest stays). claimed_by: the node posting it. */
    {"DELETE FROM callback_outbox WHERE event_sid IS NOT NULL AND id NOT IN (SELECT min(id)"
     "  FROM callback_outbox WHERE event_sid IS NOT NULL GROUP BY event_sid, url);"
     "ALTER TABLE callback_outbox ADD COLUMN claimed_by TEXT;"
     "CREATE UNIQUE INDEX IF NOT EXISTS callback_outbox_event ON callback_outbox (event_sid, url);",
     /* the step adds the column and the index in one transaction: one implies the other */
     "SELECT claimed_by FROM callback_outbox LIMIT 0"},
};

outbox_t *outbox_new(store_t *s, const char *auth_token, int timeout_ms, errmsg_t *em)
{
    outbox_t *o = calloc(1, sizeof *o);
    if (!o || !(o->auth_token = strdup(auth_token ? auth_token : ""))) {
        free(o);
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    o->store = s;
    o->timeout_ms = timeout_ms;
    unsigned int r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = (unsigned int)store_now_ms();
    snprintf(o->node, sizeof o->node, "%ld-%08x", (long)getpid(), r);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    if (store_migrate(s, "outbox", MIGRATIONS, sizeof MIGRATIONS / sizeof MIGRATIONS[0], em)) {
        outbox_free(o);
        return NULL;
    }
    return o;
}

bool outbox_filter_match(const char *filter, const char *event_type)
{
    if (!filter || !*filter)
        return true;
    size_t n = strlen(event_type);
    for (const char *p = filter; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t len = (size_t)(end - p);
        while (len && p[len - 1] == ' ')
            len--;
        if (len == n && len && strncmp(p, event_type, n) == 0)
            return true;
        p = end;
    }
    return false;
}

/* Form-encodes params in their order (base/buf.h's RFC 3986 encoder). NULL when out of memory. */
static char *form_encode(const params_t *p)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < p->len; i++) {
        buf_adds(&b, i ? "&" : "");
        buf_add_encoded(&b, p->items[i].key);
        buf_adds(&b, "=");
        buf_add_encoded(&b, p->items[i].value);
    }
    return buf_take(&b);
}

tassa_err outbox_enqueue(outbox_t *o, const char *url, const params_t *event)
{
    char *body = form_encode(event);
    if (!body)
        return TASSA_ENOMEM;
    tassa_err err = TASSA_OK;
    store_lock(o->store);
    bool added = false;
    store_stmt_t *st = store_prepare(o->store, "INSERT INTO callback_outbox (url, body, event_sid,"
                                               " next_at, created) VALUES (?, ?, ?, ?, ?)"
                                               " ON CONFLICT DO NOTHING");
    if (st) {
        int64_t now = store_now_ms();
        store_bind_text(st, 1, url);
        store_bind_text(st, 2, body);
        store_bind_text(st, 3, params_get(event, "Sid"));
        store_bind_int64(st, 4, now);
        store_bind_int64(st, 5, now);
        err = store_step(st) == STORE_DONE ? TASSA_OK : TASSA_ESTORE;
        added = !err && store_changes(o->store) > 0; /* 0: this event is stored already */
        store_release(o->store, st);
    } else {
        err = TASSA_ESTORE;
    }
    if (store_unlock(o->store))
        err = TASSA_ESTORE;
    free(body);
    if (added) {
        metrics_add(M_OUTBOX_DEPTH, 1, NULL);
        pthread_mutex_lock(&o->lock);
        o->kicked = true;
        pthread_cond_signal(&o->wake);
        pthread_mutex_unlock(&o->lock);
    }
    return err;
}

long outbox_pending(outbox_t *o)
{
    long n = -1;
    store_lock(o->store);
    store_stmt_t *st =
        store_prepare(o->store, "SELECT count(*) FROM callback_outbox WHERE failed = 0");
    if (st && store_step(st) == STORE_ROW)
        n = (long)store_col_int64(st, 0);
    store_release(o->store, st);
    store_unlock(o->store);
    return n;
}

typedef struct {
    int64_t id;
    int attempts;
    char *url, *body;
} entry_t;

/* libcurl's write callback: appends the answer's bytes to the buf_t at user, or drops them
 * when user is NULL. */
static size_t collect(void *ptr, size_t size, size_t n, void *user)
{
    if (user)
        buf_add((buf_t *)user, ptr, size * n);
    return size * n;
}

/* POSTs body (the form encoding of p) to url on curl, signed with auth_token over url and p,
 * and waits at most timeout_ms (0: no limit). *status is the answer's status (0 when none
 * came); the answer's body goes to reply when non-NULL. Returns 0 when an answer came, else
 * fills why with libcurl's reason. No lock is held; curl is the caller's. */
static int post_signed(CURL *curl, const char *url, const char *auth_token, const params_t *p,
                       const char *body, long timeout_ms, long *status, buf_t *reply, char *why,
                       size_t why_len)
{
    char *sig = signature_compute(auth_token, url, p);
    char header[128];
    snprintf(header, sizeof header, "X-Twilio-Signature: %s", sig ? sig : "");
    free(sig);
    struct curl_slist *h = curl_slist_append(NULL, header);
    h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
    h = curl_slist_append(h, "User-Agent: TwilioProxy/1.1 (tassa)");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(curl);
    *status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    if (cc != CURLE_OK) {
        snprintf(why, why_len, "%s", curl_easy_strerror(cc));
        return -1;
    }
    return 0;
}

/* POSTs one entry; returns 0 on a 2xx answer, else fills why. No lock is held. */
static int post(outbox_t *o, CURL *curl, const entry_t *e, char *why, size_t why_len)
{
    params_t *p = params_new();
    if (!p || params_parse_form(p, e->body, strlen(e->body), NULL)) {
        params_free(p);
        snprintf(why, why_len, "stored body unreadable");
        return -1;
    }
    long status = 0;
    int rc = post_signed(curl, e->url, o->auth_token, p, e->body, o->timeout_ms, &status, NULL, why,
                         why_len);
    params_free(p);
    if (rc)
        return -1;
    if (status < 200 || status > 299) {
        snprintf(why, why_len, "HTTP %ld", status);
        return -1;
    }
    return 0;
}

tassa_err outbox_post_signed(const char *url, const char *auth_token, const params_t *params,
                             int timeout_ms, long *status, char **reply, errmsg_t *em)
{
    *status = 0;
    if (reply)
        *reply = NULL;
    char *body = form_encode(params);
    CURL *curl = curl_easy_init();
    buf_t answer = BUF_INIT;
    tassa_err err = TASSA_OK;
    char why[256] = "";
    if (!body || !curl) {
        err = err_set(em, TASSA_ENOMEM, "out of memory");
        goto out;
    }
    if (post_signed(curl, url, auth_token, params, body, timeout_ms, status, reply ? &answer : NULL,
                    why, sizeof why)) {
        err = err_set(em, TASSA_EUPSTREAM, "%s: %s", url, why);
        goto out;
    }
    if (reply && !(*reply = buf_take(&answer)))
        err = err_set(em, TASSA_ENOMEM, "out of memory");
out:
    buf_free(&answer);
    curl_easy_cleanup(curl);
    free(body);
    return err;
}

/* Claims up to BATCH due entries for this node in one critical section: their next_at moves
 * past the POST's timeout and claimed_by names this node, so that no other node (nor this one)
 * posts them until settle() or the claim runs out. *next_due: when the earliest entry not yet
 * due is (0: none, or not known). Returns how many were claimed; none when the claim does not
 * commit (the store is down). */
static int claim_due(outbox_t *o, entry_t *out, int64_t *next_due)
{
    int n = 0;
    *next_due = 0;
    int64_t now = store_now_ms();
    int64_t until = now + (o->timeout_ms > 0 ? o->timeout_ms : 60000) + CLAIM_SLACK_MS;
    store_lock(o->store);
    store_stmt_t *st = store_prepare(o->store, "SELECT id, attempts, url, body FROM "
                                               "callback_outbox WHERE failed = 0 AND next_at <= ? "
                                               "ORDER BY next_at, id LIMIT ? "
                                               "FOR UPDATE SKIP LOCKED");
    if (st) {
        store_bind_int64(st, 1, now);
        store_bind_int64(st, 2, BATCH);
        while (n < BATCH && store_step(st) == STORE_ROW) {
            out[n].id = store_col_int64(st, 0);
            out[n].attempts = (int)store_col_int64(st, 1);
            out[n].url = strdup(store_col_text(st, 2));
            out[n].body = strdup(store_col_text(st, 3));
            n++;
        }
    }
    store_release(o->store, st);
    bool ok = st != NULL;
    for (int i = 0; ok && i < n; i++) {
        st = store_prepare(o->store,
                           "UPDATE callback_outbox SET next_at = ?, claimed_by = ? WHERE id = ?");
        ok = st && !store_bind_int64(st, 1, until) && !store_bind_text(st, 2, o->node) &&
             !store_bind_int64(st, 3, out[i].id) && store_step(st) == STORE_DONE;
        store_release(o->store, st);
    }
    if (ok && n < BATCH) {
        st = store_prepare(o->store, "SELECT min(next_at) FROM callback_outbox WHERE failed = 0");
        if (st && store_step(st) == STORE_ROW && !store_col_is_null(st, 0))
            *next_due = store_col_int64(st, 0);
        store_release(o->store, st);
    }
    if (store_unlock(o->store) || !ok) {
        for (int i = 0; i < n; i++) {
            free(out[i].url);
            free(out[i].body);
        }
        n = 0;
    }
    return n;
}

/* Records the outcome of one delivery: delete it, or schedule the next try. */
static void settle(outbox_t *o, const entry_t *e, bool ok, const char *why)
{
    store_lock(o->store);
    store_stmt_t *st;
    if (ok) {
        st = store_prepare(o->store, "DELETE FROM callback_outbox WHERE id = ?");
        if (st)
            store_bind_int64(st, 1, e->id);
    } else {
        int attempts = e->attempts + 1;
        long backoff = 1000L << (attempts < 20 ? attempts - 1 : 19);
        if (backoff > MAX_BACKOFF_MS)
            backoff = MAX_BACKOFF_MS;
        unsigned short r = 0;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = 0;
        backoff = backoff / 2 + (long)(r % (unsigned)(backoff / 2 + 1)); /* jitter */
        st = store_prepare(o->store, "UPDATE callback_outbox SET attempts = ?, next_at = ?, "
                                     "failed = ?, last_error = ? WHERE id = ?");
        if (st) {
            store_bind_int64(st, 1, attempts);
            store_bind_int64(st, 2, store_now_ms() + backoff);
            store_bind_int64(st, 3, attempts >= OUTBOX_MAX_ATTEMPTS);
            store_bind_text(st, 4, why);
            store_bind_int64(st, 5, e->id);
        }
        metrics_add(M_OUTBOX_FAILURES, 1, NULL);
        log_warn("event=callback_failed id=%lld attempt=%d err=\"%s\"%s", (long long)e->id,
                 attempts, why, attempts >= OUTBOX_MAX_ATTEMPTS ? " gave_up=1" : "");
    }
    if (st)
        store_step(st);
    store_release(o->store, st);
    store_unlock(o->store);
    if (ok || e->attempts + 1 >= OUTBOX_MAX_ATTEMPTS) /* delivered, or given up */
        metrics_add(M_OUTBOX_DEPTH, -1, NULL);
}

static void *run(void *arg)
{
    outbox_t *o = arg;
    CURL *curl = curl_easy_init();
    entry_t batch[BATCH];
    for (;;) {
        pthread_mutex_lock(&o->lock);
        bool stop = o->stopping;
        o->kicked = false;
        pthread_mutex_unlock(&o->lock);
        if (stop || !curl)
            break;
        int64_t next_due;
        int n = claim_due(o, batch, &next_due);
        for (int i = 0; i < n; i++) {
            char why[256] = "";
            bool ok =
                batch[i].url && batch[i].body && post(o, curl, &batch[i], why, sizeof why) == 0;
            settle(o, &batch[i], ok, why);
            free(batch[i].url);
            free(batch[i].body);
        }
        if (n == BATCH)
            continue;
        /* Sleep until the next due entry (or 1 s), or until an enqueue wakes us. */
        int64_t wait_ms = next_due ? next_due - store_now_ms() : 1000;
        if (wait_ms < 1)
            wait_ms = 1;
        if (wait_ms > 1000)
            wait_ms = 1000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&o->lock);
        if (!o->stopping && !o->kicked && n == 0)
            pthread_cond_timedwait(&o->wake, &o->lock, &ts);
        pthread_mutex_unlock(&o->lock);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

tassa_err outbox_start(outbox_t *o)
{
    if (pthread_create(&o->thread, NULL, run, o) != 0)
        return TASSA_EINTERNAL;
    o->started = true;
    return TASSA_OK;
}

void outbox_free(outbox_t *o)
{
    if (!o)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->lock);
        o->stopping = true;
        pthread_cond_signal(&o->wake);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->thread, NULL);
    }
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->wake);
    free(o->auth_token);
    free(o);
}
