/* streams.c - Server-Sent Events fan-out of Sync document changes over suspended connections.
 *
 * Design. An update is formatted once (JSON text) on the writer's thread, outside the lock,
 * into a reference-counted event. Under streams_t.lock it is appended to the document's ring
 * (for resume) and a pointer to it is pushed onto the queue of every subscriber found through
 * the document index (SID -> entry -> subscriber list), so one update costs O(subscribers of
 * that document). A client whose queue is empty is a suspended libmicrohttpd connection: the
 * content reader suspends it under the lock and whoever queues the next event resumes it under
 * the same lock, so a resume always follows its suspend (resuming a connection that is not
 * suspended is undefined behaviour in libmicrohttpd). MHD_resume_connection only sets a flag
 * and signals an eventfd; it never blocks, which is why it may run under the lock.
 *
 * Lifetime. A client belongs to its MHD response: the response's free callback (run by
 * libmicrohttpd on a pool thread when the connection ends, before it closes the socket)
 * unlinks and frees it under the lock. A dropped client's socket is shut down (not closed:
 * libmicrohttpd owns the descriptor) under the lock while the client is still linked, so the
 * descriptor cannot have been closed and reused yet.
 *
 * Ordering. The engine calls the listener after each commit, outside its own lock; two writers
 * of the same document may therefore report revisions out of order. An entry keeps the highest
 * revision seen and ignores older ones: the stream never goes backwards, at the price of an
 * id gap in that (rare) race, which still ends on the newest document. */
#include "engine/sync/streams.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/access_token.h"
#include "http/cors.h"
#include "log.h"

#define NBUCKETS   4096
#define BLOCK_SIZE 16384
/* The kernel send buffer of a stream socket. Left to autotuning it may grow to megabytes per
 * connection, which both costs memory at thousands of streams and hides a stalled client from
 * the bounded queue; small, the queue is where a slow client shows. */
#define STREAM_SNDBUF 65536

/* One formatted SSE event, shared by rings and client queues. refs is atomic because the last
 * reference may be dropped by any thread; everything else is immutable after creation. */
typedef struct event {
    atomic_int refs;
    int64_t id;
    bool terminal;   /* the stream ends after this event (document deleted) */
    size_t json_off; /* the document JSON inside text (for snapshots), json_len bytes */
    size_t json_len;
    size_t len;
    char text[];
} event_t;

typedef struct client client_t;

/* The events of one document or service kept for Last-Event-ID (oldest first). */
typedef struct {
    event_t **ev;
    size_t cap, head, n, bytes;
} ring_t;

/* A watched document: index entry, ring and subscribers. */
typedef struct doc_entry {
    char sid[SID_LEN + 1];
    char service_sid[SID_LEN + 1];
    char *base_url;   /* URLs inside the document JSON */
    int64_t last_rev; /* highest revision seen, -1 before the first */
    ring_t ring;
    client_t *subs; /* doubly linked through client.prev/next */
    int nsubs;
    int64_t idle_since_ms;
    struct doc_entry *hnext;
} doc_entry_t;

/* A service with service-wide subscribers (kept until streams_free: few per process). */
typedef struct svc_entry {
    char sid[SID_LEN + 1];
    char *base_url; /* URLs inside the documents' JSON (the first subscriber's) */
    int64_t seq;
    ring_t ring;
    client_t *subs;
    struct svc_entry *next;
} svc_entry_t;

typedef struct ident {
    char *name;
    int n;
    struct ident *hnext;
} ident_t;

struct client {
    streams_t *s;
    struct MHD_Connection *conn;
    int fd;
    char *identity;
    doc_entry_t *doc; /* NULL once detached (deleted document) or for service streams */
    svc_entry_t *svc;
    client_t *prev, *next;         /* subscribers of doc or svc */
    client_t *all_prev, *all_next; /* every client of s */
    event_t **q;                   /* queue ring of qcap pointers */
    size_t qcap, qhead, qlen, qbytes;
    size_t off;    /* bytes of q[qhead] already handed to libmicrohttpd */
    bool parked;   /* suspended by the reader, waiting for an event */
    bool dropped;  /* overflowed: end at the next read */
    bool finished; /* a terminal event went out: end at the next read */
};

struct streams {
    app_t *app;
    pthread_mutex_t lock; /* guards everything below, every client and every entry */
    pthread_cond_t wake;
    pthread_t timer;
    bool timer_started, stopping;
    int heartbeat_ms;
    int total;
    doc_entry_t *docs[NBUCKETS];
    ident_t *idents[NBUCKETS];
    svc_entry_t *svcs;
    client_t *all;
    event_t *ping, *hello;
};

/* FNV-1a: spreads SIDs and identities over the buckets. */
static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h % NBUCKETS);
}

/* Monotonic milliseconds, for idle times. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Allocates an event holding "<prefix><json>\n\n" with one reference. NULL on OOM. */
static event_t *event_new(int64_t id, const char *prefix, const char *json, size_t json_len,
                          bool terminal)
{
    size_t plen = strlen(prefix);
    event_t *e = malloc(sizeof *e + plen + json_len + 3);
    if (!e)
        return NULL;
    atomic_init(&e->refs, 1);
    e->id = id;
    e->terminal = terminal;
    memcpy(e->text, prefix, plen);
    memcpy(e->text + plen, json, json_len);
    memcpy(e->text + plen + json_len, "\n\n", 3);
    e->json_off = plen;
    e->json_len = json_len;
    e->len = plen + json_len + 2;
    return e;
}

/* An SSE event "id: N\nevent: NAME\ndata: JSON\n\n". */
static event_t *event_sse(int64_t id, const char *name, const char *json, size_t json_len,
                          bool terminal)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "id: %" PRId64 "\nevent: %s\ndata: ", id, name);
    return event_new(id, prefix, json, json_len, terminal);
}

/* Takes one more reference to e (any thread). */
static event_t *event_ref(event_t *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

/* Drops a reference; the last one frees e. Accepts NULL. */
static void event_unref(event_t *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        free(e);
}

/* Appends e (taking a new reference) and evicts the oldest past the count or byte bound. */
static bool ring_push(ring_t *r, event_t *e)
{
    if (!r->ev) {
        r->ev = calloc(STREAMS_RING_EVENTS, sizeof *r->ev);
        if (!r->ev)
            return false;
        r->cap = STREAMS_RING_EVENTS;
    }
    if (r->n == r->cap) {
        event_t *old = r->ev[r->head];
        r->bytes -= old->len;
        event_unref(old);
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
    r->ev[(r->head + r->n) % r->cap] = event_ref(e);
    r->n++;
    r->bytes += e->len;
    while (r->n > 1 && r->bytes > STREAMS_RING_BYTES) {
        event_t *old = r->ev[r->head];
        r->bytes -= old->len;
        event_unref(old);
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
    return true;
}

/* The i-th oldest event of r (i < r->n). */
static event_t *ring_at(const ring_t *r, size_t i)
{
    return r->ev[(r->head + i) % r->cap];
}

/* Drops every event of r and its array. */
static void ring_clear(ring_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        event_unref(ring_at(r, i));
    free(r->ev);
    memset(r, 0, sizeof *r);
}

/* Releases every queued event of c (lock held). */
static void queue_clear(client_t *c)
{
    for (size_t i = 0; i < c->qlen; i++)
        event_unref(c->q[(c->qhead + i) % c->qcap]);
    c->qhead = c->qlen = c->qbytes = c->off = 0;
}

/* Wakes c if its reader parked it (lock held): the resume must follow the suspend, which the
 * reader also did under the lock. */
static void wake_client(client_t *c)
{
    if (c->parked) {
        c->parked = false;
        MHD_resume_connection(c->conn);
    }
}

/* Unlinks c from its document's or service's subscriber list (lock held). */
static void unsubscribe(client_t *c)
{
    client_t **head = c->doc ? &c->doc->subs : c->svc ? &c->svc->subs : NULL;
    if (!head)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else if (*head == c)
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->doc) {
        c->doc->nsubs--;
        if (!c->doc->nsubs)
            c->doc->idle_since_ms = now_ms();
    }
    c->prev = c->next = NULL;
    c->doc = NULL;
    c->svc = NULL;
}

/* Drops a client whose queue overflowed (lock held): frees its backlog, stops fan-out to it
 * and shuts its socket down so that libmicrohttpd closes it even if the peer never reads. */
static void drop_client(client_t *c, const char *why)
{
    c->dropped = true;
    queue_clear(c);
    unsubscribe(c);
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    wake_client(c);
    log_info("event=stream_dropped reason=%s", why);
}

/* Queues e for c (lock held); live is false for the events of a (re)subscription, which are
 * bounded by the caller. Returns false when c was dropped for overflowing. */
static bool enqueue(client_t *c, event_t *e, bool live)
{
    if (c->dropped || c->finished)
        return true;
    if (c->qlen == c->qcap ||
        (live && (c->qlen >= STREAMS_QUEUE_EVENTS || c->qbytes + e->len > STREAMS_QUEUE_BYTES))) {
        drop_client(c, "slow_client");
        return false;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = event_ref(e);
    c->qlen++;
    c->qbytes += e->len;
    wake_client(c);
    return true;
}

/* Sends e to every subscriber of list (lock held). */
static void fan_out(client_t *list, event_t *e)
{
    client_t *next;
    for (client_t *c = list; c; c = next) {
        next = c->next; /* enqueue may unlink c */
        enqueue(c, e, true);
    }
}

/* The entry of a watched document, or NULL (lock held). */
static doc_entry_t *doc_find(streams_t *s, const char *sid)
{
    for (doc_entry_t *d = s->docs[hash(sid)]; d; d = d->hnext) {
        if (!strcmp(d->sid, sid))
            return d;
    }
    return NULL;
}

/* Frees an entry already out of the index. Accepts NULL. */
static void doc_entry_free(doc_entry_t *d)
{
    if (!d)
        return;
    ring_clear(&d->ring);
    free(d->base_url);
    free(d);
}

/* Removes d from the index and detaches its subscribers (lock held); frees d. */
static void doc_forget(streams_t *s, doc_entry_t *d)
{
    doc_entry_t **pp = &s->docs[hash(d->sid)];
    while (*pp && *pp != d)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = d->hnext;
    while (d->subs)
        unsubscribe(d->subs);
    doc_entry_free(d);
}

/* The service-stream entry of a service, or NULL (lock held). */
static svc_entry_t *svc_find(streams_t *s, const char *sid)
{
    for (svc_entry_t *v = s->svcs; v; v = v->next) {
        if (!strcmp(v->sid, sid))
            return v;
    }
    return NULL;
}

/* The process-unique start of a service sequence: microseconds of the wall clock. */
static int64_t seq_base(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Records a new state of document d (lock held): appends it to the ring and sends it to the
 * subscribers when it is newer than anything seen; an older revision is ignored. */
static void doc_observe(doc_entry_t *d, event_t *e)
{
    if (e->terminal) {
        fan_out(d->subs, e); /* whatever its revision: the document is gone */
        return;
    }
    if (e->id <= d->last_rev)
        return;
    d->last_rev = e->id;
    ring_push(&d->ring, e);
    fan_out(d->subs, e);
}

/* Formats the document's REST JSON (caller frees). NULL on OOM. */
static char *doc_text(streams_t *s, const sync_doc_t *doc, const char *base_url)
{
    json_t *j = sync_doc_json(doc, s->app->config->account_sid ? s->app->config->account_sid : "",
                              base_url ? base_url : "");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

/* The Sync change listener: formats the change once, then fans it out under the lock. */
static void on_change(void *ctx, const sync_doc_t *doc, bool deleted)
{
    streams_t *s = ctx;
    char *base = NULL, *text = NULL;
    event_t *dev = NULL;
    bool want_doc, want_svc;
    pthread_mutex_lock(&s->lock);
    doc_entry_t *d = doc_find(s, doc->sid);
    want_doc = d != NULL;
    want_svc = svc_find(s, doc->service_sid) != NULL;
    svc_entry_t *sv = want_doc ? NULL : svc_find(s, doc->service_sid);
    if (d && d->base_url)
        base = strdup(d->base_url);
    else if (sv && sv->base_url)
        base = strdup(sv->base_url);
    pthread_mutex_unlock(&s->lock);
    if (!want_doc && !want_svc)
        return;
    if (!(text = doc_text(s, doc, base)))
        goto out;
    size_t tlen = strlen(text);
    dev = event_sse(doc->revision, deleted ? "deleted" : "update", text, tlen, deleted);
    if (!dev)
        goto out;
    pthread_mutex_lock(&s->lock);
    if ((d = doc_find(s, doc->sid))) {
        doc_observe(d, dev);
        if (deleted)
            doc_forget(s, d);
    }
    svc_entry_t *v = svc_find(s, doc->service_sid);
    if (v) {
        /* Built under the lock because the id is the sequence number: a short copy. */
        event_t *sev = event_sse(v->seq + 1, deleted ? "deleted" : "update", text, tlen, false);
        if (sev) {
            v->seq++;
            ring_push(&v->ring, sev);
            fan_out(v->subs, sev);
            event_unref(sev);
        }
    }
    pthread_mutex_unlock(&s->lock);
out:
    if (!text || !dev)
        log_warn("event=stream_update_lost doc=%s reason=out_of_memory", doc->sid);
    event_unref(dev);
    free(text);
    free(base);
}

/* libmicrohttpd's content reader: copies queued events into buf, or parks the connection. */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    client_t *c = cls;
    streams_t *s = c->s;
    ssize_t ret = 0;
    pthread_mutex_lock(&s->lock);
    if (c->dropped) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
        goto out;
    }
    if (c->qlen == 0) {
        if (c->finished || s->stopping) {
            ret = MHD_CONTENT_READER_END_OF_STREAM;
            goto out;
        }
        /* Nothing to send: suspend instead of returning 0 in a busy loop. */
        c->parked = true;
        MHD_suspend_connection(c->conn);
        goto out;
    }
    size_t n = 0;
    while (c->qlen && n < max) {
        event_t *e = c->q[c->qhead];
        size_t k = e->len - c->off;
        if (k > max - n)
            k = max - n;
        memcpy(buf + n, e->text + c->off, k);
        n += k;
        c->off += k;
        if (c->off == e->len) {
            if (e->terminal)
                c->finished = true;
            c->qhead = (c->qhead + 1) % c->qcap;
            c->qlen--;
            c->qbytes -= e->len;
            c->off = 0;
            event_unref(e);
        }
    }
    ret = (ssize_t)n;
out:
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* Releases a client's slot (lock held). */
static void release_slot(streams_t *s, const char *identity)
{
    s->total--;
    ident_t **pp = &s->idents[hash(identity)];
    for (; *pp; pp = &(*pp)->hnext) {
        if (!strcmp((*pp)->name, identity)) {
            ident_t *i = *pp;
            if (--i->n == 0) {
                *pp = i->hnext;
                free(i->name);
                free(i);
            }
            return;
        }
    }
}

/* Takes a slot for identity unless a limit is reached (lock held). TASSA_ELIMIT or
 * TASSA_ENOMEM. */
static tassa_err take_slot(streams_t *s, const char *identity, errmsg_t *em)
{
    const config_t *cfg = s->app->config;
    if (cfg->max_streams > 0 && s->total >= cfg->max_streams)
        return err_set(em, TASSA_ELIMIT, "Too many live streams on this server (limit %d)",
                       cfg->max_streams);
    ident_t *i = s->idents[hash(identity)];
    while (i && strcmp(i->name, identity))
        i = i->hnext;
    if (i && cfg->max_streams_per_identity > 0 && i->n >= cfg->max_streams_per_identity)
        return err_set(em, TASSA_ELIMIT, "Too many live streams for this identity (limit %d)",
                       cfg->max_streams_per_identity);
    if (!i) {
        i = calloc(1, sizeof *i);
        if (!i || !(i->name = strdup(identity))) {
            free(i);
            return err_set(em, TASSA_ENOMEM, "out of memory");
        }
        size_t h = hash(identity);
        i->hnext = s->idents[h];
        s->idents[h] = i;
    }
    i->n++;
    s->total++;
    return TASSA_OK;
}

/* Unlinks c from everything and frees it (lock held). */
static void client_destroy_locked(client_t *c)
{
    streams_t *s = c->s;
    unsubscribe(c);
    queue_clear(c);
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else if (s->all == c)
        s->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    release_slot(s, c->identity);
    if (!s->total)
        pthread_cond_broadcast(&s->wake);
    free(c->q);
    free(c->identity);
    free(c);
}

/* libmicrohttpd's free callback: the connection is done with the response, so with c. */
static void client_release(void *cls)
{
    client_t *c = cls;
    streams_t *s = c->s;
    pthread_mutex_lock(&s->lock);
    client_destroy_locked(c);
    pthread_mutex_unlock(&s->lock);
}

/* Allocates a client with a slot already taken (lock held) and links it into s->all. */
static client_t *client_new_locked(streams_t *s, struct MHD_Connection *conn, const char *identity)
{
    client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->conn = conn;
    c->fd = -1;
    c->qcap = STREAMS_QUEUE_EVENTS + 4;
    c->q = calloc(c->qcap, sizeof *c->q);
    c->identity = strdup(identity);
    if (!c->q || !c->identity) {
        free(c->q);
        free(c->identity);
        free(c);
        return NULL;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        c->fd = ci->connect_fd;
    c->all_next = s->all;
    if (s->all)
        s->all->all_prev = c;
    s->all = c;
    return c;
}

/* Links c at the head of a subscriber list (lock held). */
static void subscribe(client_t **head, client_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

/* The sync token of the request: Bearer header first, then ?token=. Borrowed. */
static const char *request_token(const http_req_t *req)
{
    const char *auth = http_req_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7])
        return auth + 7;
    return params_get_nonempty(req->query, "token");
}

int64_t streams_parse_last_id(const char *v)
{
    if (!v || !*v)
        return -1;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 0)
        return -1;
    return (int64_t)n;
}

/* The resume point: Last-Event-ID header or ?lastEventId=; -1 when absent or malformed. */
static int64_t request_last_id(const http_req_t *req)
{
    const char *v = http_req_header(req, "Last-Event-ID");
    if (!v || !*v)
        v = params_get_nonempty(req->query, "lastEventId");
    return streams_parse_last_id(v);
}

typedef struct {
    char *identity;
    char svc[SID_LEN + 1];
} grant_t;

/* Checks the token and that its grant covers the service of the URL. On failure the error is
 * already in resp. */
static tassa_err authorise(streams_t *s, const http_req_t *req, http_resp_t *resp,
                           const char *url_service, grant_t *g)
{
    errmsg_t em = {{0}};
    char *grant_service = NULL;
    char grant_sid[SID_LEN + 1];
    tassa_err err = TASSA_OK;
    const char *token = request_token(req);
    g->identity = NULL;
    if (!token) {
        err = TASSA_EUNAUTH;
        http_resp_twilio_error(resp, err,
                               "A sync token is required (Authorization: Bearer "
                               "<token> or ?token=<token>)");
        goto out;
    }
    err = access_token_verify(token, s->app->config->api_secret, time(NULL), &g->identity,
                              &grant_service, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err == TASSA_EUNAUTH ? "Invalid sync token" : NULL);
        log_info("event=stream_refused reason=\"%s\"", err_text(&em, err));
        goto out;
    }
    if ((err = sync_service_resolve(s->app->sync, url_service, g->svc))) {
        char msg[128];
        snprintf(msg, sizeof msg, "The requested resource /Services/%.40s was not found",
                 url_service);
        http_resp_twilio_error(resp, err, msg);
        goto out;
    }
    if (sync_service_resolve(s->app->sync, grant_service, grant_sid) ||
        strcmp(grant_sid, g->svc) != 0) {
        err = TASSA_EFORBIDDEN;
        http_resp_twilio_error(resp, err, "The sync token does not grant access to this service");
        goto out;
    }
out:
    free(grant_service);
    if (err) {
        free(g->identity);
        g->identity = NULL;
    }
    return err;
}

/* Reserves a slot and creates the client (both under the lock), or fills resp with 429/503. */
static client_t *open_client(streams_t *s, http_req_t *req, http_resp_t *resp, const char *who)
{
    errmsg_t em = {{0}};
    client_t *c = NULL;
    tassa_err err;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        int sndbuf = STREAM_SNDBUF;
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        err = err_set(&em, TASSA_EUNAVAIL, "The server is shutting down");
    } else if (!(err = take_slot(s, who, &em))) {
        if (!(c = client_new_locked(s, req->conn, who))) {
            release_slot(s, who);
            err = err_set(&em, TASSA_ENOMEM, "out of memory");
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (err)
        http_resp_twilio_error(resp, err, err_text(&em, err));
    return c;
}

/* Hands c to libmicrohttpd as the response; on failure destroys c and answers 500. */
static void start_response(streams_t *s, client_t *c, http_req_t *req, http_resp_t *resp)
{
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_SIZE,
                                                               read_events, c, client_release);
    if (!r) {
        pthread_mutex_lock(&s->lock);
        client_destroy_locked(c);
        pthread_mutex_unlock(&s->lock);
        http_resp_twilio_error(resp, TASSA_ENOMEM, NULL);
        return;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    cors_apply(req, resp, s->app->config->cors_origins);
    resp->status = 200;
    resp->raw = r;
}

/* Copies the newest ring event as a `snapshot` (lock held). NULL on OOM. */
static event_t *snapshot_of(const event_t *e)
{
    return event_sse(e->id, "snapshot", e->text + e->json_off, e->json_len, false);
}

/* Queues what a new subscriber of d needs (lock held): the events after last_id when the ring
 * still has them all and they fit the queue, else a snapshot of the newest state. */
static void doc_start(client_t *c, doc_entry_t *d, int64_t last_id)
{
    ring_t *r = &d->ring;
    enqueue(c, c->s->hello, false);
    if (!r->n)
        return;
    if (last_id >= 0 && last_id == d->last_rev)
        return; /* already current */
    if (last_id >= 0 && last_id < d->last_rev && ring_at(r, 0)->id <= last_id + 1) {
        size_t first = 0, count = 0, bytes = 0;
        while (first < r->n && ring_at(r, first)->id <= last_id)
            first++;
        for (size_t i = first; i < r->n; i++, count++)
            bytes += ring_at(r, i)->len;
        if (count <= STREAMS_QUEUE_EVENTS && bytes <= STREAMS_QUEUE_BYTES) {
            for (size_t i = first; i < r->n; i++)
                enqueue(c, ring_at(r, i), false);
            return;
        }
    }
    event_t *snap = snapshot_of(ring_at(r, r->n - 1));
    if (snap) {
        enqueue(c, snap, false);
        event_unref(snap);
    } else {
        drop_client(c, "out_of_memory");
    }
}

/* GET /v1/Services/{S}/Documents/{D}/Stream */
static void handle_doc_stream(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    streams_t *s = app->streams;
    grant_t g = {0};
    sync_doc_t doc = {0}, again = {0};
    errmsg_t em = {{0}};
    char *text = NULL;
    event_t *ev = NULL;
    client_t *c = NULL;
    bool created = false;
    if (!s || !app->sync) {
        http_resp_twilio_error(resp, TASSA_EUNAVAIL, "Live streams need the embedded back end");
        return;
    }
    if (authorise(s, req, resp, req->args[0], &g))
        return;
    tassa_err err = sync_doc_fetch(app->sync, g.svc, req->args[1], &doc, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        goto out;
    }
    const char *base = app->config->public_url ? app->config->public_url : req->base_url;
    if (!(text = doc_text(s, &doc, base)) ||
        !(ev = event_sse(doc.revision, "update", text, strlen(text), false))) {
        http_resp_twilio_error(resp, TASSA_ENOMEM, NULL);
        goto out;
    }
    if (!(c = open_client(s, req, resp, g.identity)))
        goto out;
    int64_t last_id = request_last_id(req);
    pthread_mutex_lock(&s->lock);
    doc_entry_t *d = doc_find(s, doc.sid);
    if (!d && (d = calloc(1, sizeof *d))) {
        memcpy(d->sid, doc.sid, sizeof d->sid);
        memcpy(d->service_sid, doc.service_sid, sizeof d->service_sid);
        d->base_url = strdup(base);
        d->last_rev = -1;
        size_t h = hash(d->sid);
        d->hnext = s->docs[h];
        s->docs[h] = d;
        created = true;
    }
    if (d) {
        doc_observe(d, ev);
        doc_start(c, d, last_id);
        c->doc = d;
        d->nsubs++;
        subscribe(&d->subs, c);
    } else {
        drop_client(c, "out_of_memory");
    }
    pthread_mutex_unlock(&s->lock);
    if (created) {
        /* A change committed between the fetch and the entry's creation reached no one:
         * read again now that the listener feeds the entry. */
        if (!sync_doc_fetch(app->sync, g.svc, doc.sid, &again, NULL) &&
            again.revision > doc.revision) {
            char *t2 = doc_text(s, &again, base);
            event_t *e2 = t2 ? event_sse(again.revision, "update", t2, strlen(t2), false) : NULL;
            pthread_mutex_lock(&s->lock);
            if (e2 && (d = doc_find(s, doc.sid)))
                doc_observe(d, e2);
            pthread_mutex_unlock(&s->lock);
            event_unref(e2);
            free(t2);
        }
    }
    start_response(s, c, req, resp);
out:
    event_unref(ev);
    free(text);
    sync_doc_clear(&doc);
    sync_doc_clear(&again);
    free(g.identity);
}

/* A `ready` or `reset` event carrying the service's current sequence number. */
static event_t *seq_event(const svc_entry_t *v, const char *name)
{
    char json[128];
    int n =
        snprintf(json, sizeof json, "{\"service_sid\":\"%s\",\"seq\":%" PRId64 "}", v->sid, v->seq);
    return event_sse(v->seq, name, json, (size_t)n, false);
}

/* Queues what a new service subscriber needs (lock held), as doc_start does. */
static void svc_start(client_t *c, svc_entry_t *v, int64_t last_id)
{
    ring_t *r = &v->ring;
    enqueue(c, c->s->hello, false);
    if (last_id >= 0 && last_id == v->seq)
        return;
    const char *name = last_id >= 0 ? "reset" : "ready";
    if (last_id >= 0 && last_id < v->seq && r->n && ring_at(r, 0)->id <= last_id + 1) {
        size_t first = 0, bytes = 0;
        while (first < r->n && ring_at(r, first)->id <= last_id)
            first++;
        for (size_t i = first; i < r->n; i++)
            bytes += ring_at(r, i)->len;
        if (r->n - first <= STREAMS_QUEUE_EVENTS && bytes <= STREAMS_QUEUE_BYTES) {
            for (size_t i = first; i < r->n; i++)
                enqueue(c, ring_at(r, i), false);
            return;
        }
    }
    event_t *e = seq_event(v, name);
    if (e) {
        enqueue(c, e, false);
        event_unref(e);
    } else {
        drop_client(c, "out_of_memory");
    }
}

/* GET /v1/Services/{S}/Stream */
static void handle_svc_stream(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    streams_t *s = app->streams;
    grant_t g = {0};
    client_t *c = NULL;
    if (!s || !app->sync) {
        http_resp_twilio_error(resp, TASSA_EUNAVAIL, "Live streams need the embedded back end");
        return;
    }
    if (authorise(s, req, resp, req->args[0], &g))
        return;
    if (!(c = open_client(s, req, resp, g.identity)))
        goto out;
    int64_t last_id = request_last_id(req);
    pthread_mutex_lock(&s->lock);
    svc_entry_t *v = svc_find(s, g.svc);
    if (!v && (v = calloc(1, sizeof *v))) {
        memcpy(v->sid, g.svc, sizeof v->sid);
        v->base_url = strdup(app->config->public_url ? app->config->public_url : req->base_url);
        v->seq = seq_base();
        v->next = s->svcs;
        s->svcs = v;
    }
    if (v) {
        svc_start(c, v, last_id);
        c->svc = v;
        subscribe(&v->subs, c);
    } else {
        drop_client(c, "out_of_memory");
    }
    pthread_mutex_unlock(&s->lock);
    start_response(s, c, req, resp);
out:
    free(g.identity);
}

/* Forgets documents nobody has watched for STREAMS_IDLE_MS (lock held). */
static void sweep(streams_t *s)
{
    int64_t now = now_ms();
    for (size_t b = 0; b < NBUCKETS; b++) {
        doc_entry_t *d = s->docs[b], *next;
        for (; d; d = next) {
            next = d->hnext;
            if (!d->subs && now - d->idle_since_ms > STREAMS_IDLE_MS)
                doc_forget(s, d);
        }
    }
}

/* Has the peer of a parked client hung up? libmicrohttpd does not watch suspended sockets,
 * so without this a closed stream would hold its slot until a write fails. poll with a zero
 * timeout never blocks (lock held; c linked, so its descriptor is still open). */
static bool peer_gone(const client_t *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
    return c->fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* The timer thread: a heartbeat to every idle stream, then the sweep. */
static void *timer_main(void *arg)
{
    streams_t *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += s->heartbeat_ms / 1000;
        until.tv_nsec += (long)(s->heartbeat_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!s->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->wake, &s->lock, &until);
        if (s->stopping)
            break;
        for (client_t *c = s->all; c; c = c->all_next) {
            if (c->parked && peer_gone(c))
                drop_client(c, "peer_closed");
            else if (!c->qlen)
                enqueue(c, s->ping, false);
        }
        sweep(s);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

streams_t *streams_new(app_t *app, int heartbeat_ms)
{
    streams_t *s = calloc(1, sizeof *s);
    pthread_condattr_t ca;
    bool lock_ok = false, cond_ok = false;
    if (!s)
        return NULL;
    s->app = app;
    s->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : STREAMS_HEARTBEAT_MS;
    s->ping = event_new(-1, ": ping", "", 0, false);
    s->hello = event_new(-1, "retry: 1000\n: tassa stream", "", 0, false);
    if (!s->ping || !s->hello)
        goto fail;
    if (pthread_mutex_init(&s->lock, NULL))
        goto fail;
    lock_ok = true;
    if (pthread_condattr_init(&ca))
        goto fail;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    cond_ok = pthread_cond_init(&s->wake, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cond_ok)
        goto fail;
    /* The timer must not take SIGTERM/SIGINT away from main's sigwait. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&s->timer, NULL, timer_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        goto fail;
    s->timer_started = true;
    if (app->sync)
        sync_engine_set_listener(app->sync, on_change, s);
    return s;
fail:
    if (cond_ok)
        pthread_cond_destroy(&s->wake);
    if (lock_ok)
        pthread_mutex_destroy(&s->lock);
    event_unref(s->ping);
    event_unref(s->hello);
    free(s);
    return NULL;
}

tassa_err streams_register(app_t *app)
{
    tassa_err err = http_server_route(app->http, "GET", "/v1/Services/{}/Documents/{}/Stream",
                                      handle_doc_stream, app);
    if (!err)
        err = http_server_route(app->http, "GET", "/v1/Services/{}/Stream", handle_svc_stream, app);
    return err;
}

void streams_stop(streams_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    for (client_t *c = s->all; c; c = c->all_next)
        wake_client(c);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (s->timer_started) {
        pthread_join(s->timer, NULL);
        s->timer_started = false;
    }
}

void streams_free(streams_t *s)
{
    if (!s)
        return;
    streams_stop(s);
    if (s->app->sync)
        sync_engine_set_listener(s->app->sync, NULL, NULL);
    pthread_mutex_lock(&s->lock);
    /* Clients left only if the HTTP server was not stopped first: detach, never free them
     * (libmicrohttpd still owns their responses). */
    for (client_t *c = s->all; c; c = c->all_next) {
        unsubscribe(c);
        queue_clear(c);
    }
    if (s->all)
        log_warn("event=streams_free_with_clients count=%d", s->total);
    for (size_t b = 0; b < NBUCKETS; b++) {
        while (s->docs[b])
            doc_forget(s, s->docs[b]);
        while (s->idents[b]) {
            ident_t *i = s->idents[b];
            s->idents[b] = i->hnext;
            free(i->name);
            free(i);
        }
    }
    while (s->svcs) {
        svc_entry_t *v = s->svcs;
        s->svcs = v->next;
        ring_clear(&v->ring);
        free(v->base_url);
        free(v);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    event_unref(s->ping);
    event_unref(s->hello);
    free(s);
}

int streams_count(streams_t *s)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    int n = s->total;
    pthread_mutex_unlock(&s->lock);
    return n;
}
