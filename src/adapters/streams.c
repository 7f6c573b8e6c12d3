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
 * Ordering. The engine hands the listener every committed change exactly once, one at a time,
 * in commit order (documents.c queues each change under the store lock and delivers the
 * committed prefix), so each document's revisions arrive here consecutively and its ring has
 * no holes. A new subscriber is started through sync_doc_watch, which runs our callback at
 * the exact place of its read in that order: the snapshot it gets is the entry's newest state
 * and every later revision follows, with no window in which one could slip past. (Before,
 * the listener ran after store_unlock, concurrent writers reported revisions out of order and
 * this file dropped the older ones: revisions were lost to every subscriber and to the ring.)
 *
 * Access. With the service's ACL on, a document stream opens only for a token identity with
 * `read` (else 403, also for a document that does not exist, so a token cannot probe names).
 * Service-stream events carry the identities that could read the document when it changed,
 * and each client gets only the events for its identity, live and on replay. A revoked
 * permission or a change of the service's AclEnabled ends the affected streams with
 * `access-changed`; a token's expiry ends its stream with `token-expired` (the timer thread
 * wakes at the earliest expiry).
 *
 * Layer: adapters.
 */
#include "adapters/streams.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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
#include "auth/verify_token.h"
#include "http/cors.h"
#include "base/log.h"
#include "base/metrics.h"

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
    bool restricted; /* service events under ACL: only readers[0..nreaders) may see it */
    char **readers;
    size_t nreaders;
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
    int64_t expires_ms; /* monotonic time the token expires (0 = never) */
    doc_entry_t *doc;   /* NULL once detached (deleted document) or for service streams */
    svc_entry_t *svc;
    client_t *prev, *next;         /* subscribers of doc or svc */
    client_t *all_prev, *all_next; /* every client of s */
    event_t **q;                   /* queue ring of qcap pointers */
    size_t qcap, qhead, qlen, qbytes;
    size_t off;                    /* bytes of q[qhead] already handed to libmicrohttpd */
    size_t replay_n, replay_bytes; /* replayed events at the head, outside the live bound */
    bool closing;                  /* a terminal event is queued: nothing else may follow */
    bool parked;                   /* suspended by the reader, waiting for an event */
    bool dropped;                  /* overflowed: end at the next read */
    bool finished;                 /* a terminal event went out: end at the next read */
};

struct streams {
    app_t *app;
    pthread_mutex_t lock; /* guards everything below, every client and every entry */
    pthread_cond_t wake;
    pthread_t timer;
    bool timer_started, stopping;
    bool stopped_once; /* streams_stop ran: the reconnect event went out */
    int heartbeat_ms;
    int total;
    doc_entry_t *docs[NBUCKETS];
    ident_t *idents[NBUCKETS];
    svc_entry_t *svcs;
    client_t *all;
    event_t *ping, *hello, *expired, *access_changed;
    int64_t next_expiry_ms; /* earliest client expiry (0 = none), for the timer */
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
    e->restricted = false;
    e->readers = NULL;
    e->nreaders = 0;
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
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
        sync_identities_free(e->readers, e->nreaders);
        free(e);
    }
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
    c->replay_n = c->replay_bytes = 0;
}

/* Releases every queued event of c but a partly sent head, whose rest must still go out to
 * keep the stream well-formed (lock held). */
static void queue_trim(client_t *c)
{
    if (!c->qlen || !c->off) {
        queue_clear(c);
        return;
    }
    for (size_t i = 1; i < c->qlen; i++)
        event_unref(c->q[(c->qhead + i) % c->qcap]);
    c->qlen = 1;
    c->qbytes = c->q[c->qhead]->len;
    c->replay_n = c->replay_bytes = 0;
}

/* May c see e? Service events under ACL name their readers. */
static bool visible(const client_t *c, const event_t *e)
{
    if (!e->restricted)
        return true;
    for (size_t i = 0; i < e->nreaders; i++) {
        if (!strcmp(e->readers[i], c->identity))
            return true;
    }
    return false;
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
    metrics_add(M_STREAM_DROPPED, 1, "reason", why, NULL);
}

static void end_client(client_t *c, event_t *last, const char *why);

/* Queues e for c (lock held); live is false for the events of a (re)subscription, which are
 * bounded by the caller. Returns false when c was dropped for overflowing. A live event for
 * a client whose token has expired ends its stream instead (the timer may not have run yet). */
static bool enqueue(client_t *c, event_t *e, bool live)
{
    if (c->dropped || c->finished || c->closing)
        return true;
    if (live && c->expires_ms && now_ms() >= c->expires_ms) {
        end_client(c, c->s->expired, "token_expired");
        return true;
    }
    size_t live_n = c->qlen - c->replay_n, live_bytes = c->qbytes - c->replay_bytes;
    if (c->qlen == c->qcap ||
        (live && (live_n >= STREAMS_QUEUE_EVENTS || live_bytes + e->len > STREAMS_QUEUE_BYTES))) {
        drop_client(c, "slow_client");
        return false;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = event_ref(e);
    c->qlen++;
    c->qbytes += e->len;
    if (e->terminal)
        c->closing = true;
    wake_client(c);
    return true;
}

/* Ends c's stream after the partly sent event (if any) with the terminal event last, and
 * stops fan-out to it (lock held). Nothing queued after the end goes out. */
static void end_client(client_t *c, event_t *last, const char *why)
{
    if (c->dropped || c->finished || c->closing)
        return;
    queue_trim(c);
    unsubscribe(c);
    c->expires_ms = 0;
    enqueue(c, last, false);
    log_info("event=stream_ended reason=%s", why);
}

/* Sends e to every subscriber of list that may see it (lock held). */
static void fan_out(client_t *list, event_t *e)
{
    client_t *next;
    for (client_t *c = list; c; c = next) {
        next = c->next; /* enqueue may unlink c */
        if (visible(c, e))
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

/* A permission or ACL change: ends the streams that may no longer read (outside the lock
 * for the store read, then under it). */
static void on_access_change(streams_t *s, const sync_change_t *ch)
{
    const char *svc = ch->doc.service_sid;
    if (ch->kind == SYNC_CHANGE_PERMISSION) {
        bool allowed = true;
        if (ch->read || sync_acl_can_read(s->app->sync, svc, ch->doc.sid, ch->identity, &allowed) ||
            allowed)
            return;
        pthread_mutex_lock(&s->lock);
        doc_entry_t *d = doc_find(s, ch->doc.sid);
        client_t *next;
        for (client_t *c = d ? d->subs : NULL; c; c = next) {
            next = c->next;
            if (!strcmp(c->identity, ch->identity))
                end_client(c, s->access_changed, "permission_revoked");
        }
        pthread_mutex_unlock(&s->lock);
    } else if (ch->kind == SYNC_CHANGE_ACL && ch->read) {
        /* ACL switched on: every document stream of the service must be authorised again. */
        pthread_mutex_lock(&s->lock);
        for (client_t *c = s->all; c; c = c->all_next) {
            if (c->doc && !strcmp(c->doc->service_sid, svc))
                end_client(c, s->access_changed, "acl_enabled");
        }
        pthread_mutex_unlock(&s->lock);
    }
}

/* Marks a service event with the identities that may read the document (ACL on). Takes
 * over readers. */
static void restrict_event(event_t *e, bool all, char **readers, size_t n)
{
    if (all) {
        sync_identities_free(readers, n);
        return;
    }
    e->restricted = true;
    e->readers = readers;
    e->nreaders = n;
}

/* The Sync change listener: formats the change once, then fans it out under the lock. Runs
 * once per committed change, in commit order (documents.h). */
static void on_change(void *ctx, const sync_change_t *ch)
{
    streams_t *s = ctx;
    char *base = NULL, *text = NULL;
    event_t *dev = NULL;
    bool want_doc, want_svc;
    if (ch->kind != SYNC_CHANGE_DOC) {
        on_access_change(s, ch);
        return;
    }
    const sync_doc_t *doc = &ch->doc;
    bool deleted = ch->deleted;
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
    /* Who may see it on the service stream: known for a delete (its permissions are gone). */
    bool all = true;
    char **readers = NULL;
    size_t nreaders = 0;
    if (want_svc && ch->readers_known) {
        all = ch->all_readers;
        for (size_t i = 0; !all && i < ch->nreaders; i++) {
            char **grown = realloc(readers, (i + 1) * sizeof *readers);
            if (!grown || !(grown[i] = strdup(ch->readers[i]))) {
                readers = grown ? grown : readers;
                want_svc = false;
                break;
            }
            readers = grown;
            nreaders = i + 1;
        }
    } else if (want_svc && sync_acl_readers(s->app->sync, doc->service_sid, doc->sid, &all,
                                            &readers, &nreaders)) {
        want_svc = false; /* cannot tell who may see it: nobody does */
        log_warn("event=stream_update_lost doc=%s reason=acl_lookup_failed", doc->sid);
    }
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
    svc_entry_t *v = want_svc ? svc_find(s, doc->service_sid) : NULL;
    if (v) {
        /* Built under the lock because the id is the sequence number: a short copy. */
        event_t *sev = event_sse(v->seq + 1, deleted ? "deleted" : "update", text, tlen, false);
        if (sev) {
            restrict_event(sev, all, readers, nreaders);
            readers = NULL;
            nreaders = 0;
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
    sync_identities_free(readers, nreaders);
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
            if (c->replay_n) {
                c->replay_n--;
                c->replay_bytes -= e->len;
            }
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
    metrics_add(M_STREAM_CLIENTS, -1, "transport", "sse", NULL);
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
    metrics_add(M_STREAM_CLIENTS, 1, "transport", "sse", NULL);
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
    c->qcap = STREAMS_RING_EVENTS + STREAMS_QUEUE_EVENTS + 4; /* a whole ring replay fits */
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
    long n;
    if (!params_parse_long(v, 0, LONG_MAX, &n))
        return -1; /* strict: digits only, as every number tassa reads */
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
    int64_t expires_ms; /* monotonic */
} grant_t;

/* The monotonic time at which a verified token's exp passes (0 when it cannot be read). */
static int64_t token_expiry(const char *token)
{
    json_t *header = NULL, *claims = NULL;
    int64_t at = 0;
    if (!verify_token_jws_unpack(token, &header, &claims, NULL)) {
        const json_t *exp = json_object_get(claims, "exp"); /* borrowed */
        if (json_is_number(exp)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double wall_ms = (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
            double left = json_number_value(exp) * 1000.0 - wall_ms;
            at = now_ms() + 1 + (left > 0 ? (int64_t)left : 0); /* never before exp */
            if (at <= 0)
                at = 1;
        }
    }
    json_decref(header);
    json_decref(claims);
    return at;
}

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
    g->expires_ms = token_expiry(token);
out:
    free(grant_service);
    if (err) {
        free(g->identity);
        g->identity = NULL;
    }
    return err;
}

/* Reserves a slot and creates the client (both under the lock), or fills resp with 429/503. */
static client_t *open_client(streams_t *s, http_req_t *req, http_resp_t *resp, const grant_t *g)
{
    const char *who = g->identity;
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
        } else if ((c->expires_ms = g->expires_ms) &&
                   (!s->next_expiry_ms || c->expires_ms < s->next_expiry_ms)) {
            s->next_expiry_ms = c->expires_ms;
            pthread_cond_broadcast(&s->wake); /* the timer sleeps until the earliest expiry */
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

/* The start events of a subscription sit at the head of the queue, outside the live bound
 * (a replay of a whole ring is allowed); live events count from here (lock held). */
static void mark_start(client_t *c)
{
    c->replay_n = c->qlen;
    c->replay_bytes = c->qbytes;
}

/* Queues what a new subscriber of d needs (lock held): every event after last_id when the
 * ring still reaches back to it, else a snapshot of the newest state. */
static void doc_start(client_t *c, doc_entry_t *d, int64_t last_id)
{
    ring_t *r = &d->ring;
    enqueue(c, c->s->hello, false);
    if (r->n && !(last_id >= 0 && last_id == d->last_rev)) { /* else already current */
        if (last_id >= 0 && last_id < d->last_rev && ring_at(r, 0)->id <= last_id + 1) {
            for (size_t i = 0; i < r->n; i++) {
                if (ring_at(r, i)->id > last_id)
                    enqueue(c, ring_at(r, i), false);
            }
        } else {
            event_t *snap = snapshot_of(ring_at(r, r->n - 1));
            if (snap) {
                enqueue(c, snap, false);
                event_unref(snap);
            } else {
                drop_client(c, "out_of_memory");
            }
        }
    }
    mark_start(c);
}

typedef struct {
    streams_t *s;
    client_t *c;
    int64_t last_id;
    const char *base;
} watch_t;

/* sync_doc_watch's callback: subscribes the client at exactly this revision of the document,
 * between two changes of the listener's order (see the file comment). */
static void on_watch(void *ctx, const sync_doc_t *doc)
{
    watch_t *w = ctx;
    streams_t *s = w->s;
    char *text = doc_text(s, doc, w->base);
    event_t *ev = text ? event_sse(doc->revision, "update", text, strlen(text), false) : NULL;
    free(text);
    pthread_mutex_lock(&s->lock);
    doc_entry_t *d = ev ? doc_find(s, doc->sid) : NULL;
    if (ev && !d && (d = calloc(1, sizeof *d))) {
        memcpy(d->sid, doc->sid, sizeof d->sid);
        memcpy(d->service_sid, doc->service_sid, sizeof d->service_sid);
        d->base_url = strdup(w->base);
        d->last_rev = -1;
        size_t h = hash(d->sid);
        d->hnext = s->docs[h];
        s->docs[h] = d;
    }
    if (d) {
        doc_observe(d, ev); /* a new entry's first state; an existing one already has it */
        doc_start(w->c, d, w->last_id);
        w->c->doc = d;
        d->nsubs++;
        subscribe(&d->subs, w->c);
    } else {
        drop_client(w->c, "out_of_memory");
    }
    pthread_mutex_unlock(&s->lock);
    event_unref(ev);
}

/* GET /v1/Services/{S}/Documents/{D}/Stream */
static void handle_doc_stream(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    streams_t *s = app->streams;
    grant_t g = {0};
    errmsg_t em = {{0}};
    client_t *c = NULL;
    bool allowed = false;
    if (!s || !app->sync) {
        http_resp_twilio_error(resp, TASSA_EUNAVAIL, "Live streams need the embedded back end");
        return;
    }
    if (authorise(s, req, resp, req->args[0], &g))
        return;
    tassa_err err = sync_acl_can_read(app->sync, g.svc, req->args[1], g.identity, &allowed);
    if (err) {
        http_resp_twilio_error(resp, err, NULL);
        goto out;
    }
    if (!allowed) {
        /* The same answer whether the document exists or not. */
        http_resp_twilio_error(resp, TASSA_EFORBIDDEN,
                               "The sync token's identity has no read permission on this "
                               "document");
        goto out;
    }
    if (!(c = open_client(s, req, resp, &g)))
        goto out;
    watch_t w = {.s = s,
                 .c = c,
                 .last_id = request_last_id(req),
                 .base = app->config->public_url ? app->config->public_url : req->base_url};
    if ((err = sync_doc_watch(app->sync, g.svc, req->args[1], on_watch, &w, &em))) {
        pthread_mutex_lock(&s->lock);
        client_destroy_locked(c);
        pthread_mutex_unlock(&s->lock);
        http_resp_twilio_error(resp, err, err_text(&em, err));
        goto out;
    }
    start_response(s, c, req, resp);
out:
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
    if (last_id >= 0 && last_id == v->seq) {
        mark_start(c);
        return;
    }
    const char *name = last_id >= 0 ? "reset" : "ready";
    if (last_id >= 0 && last_id < v->seq && r->n && ring_at(r, 0)->id <= last_id + 1) {
        for (size_t i = 0; i < r->n; i++) {
            if (ring_at(r, i)->id > last_id && visible(c, ring_at(r, i)))
                enqueue(c, ring_at(r, i), false);
        }
        mark_start(c);
        return;
    }
    event_t *e = seq_event(v, name);
    if (e) {
        enqueue(c, e, false);
        event_unref(e);
    } else {
        drop_client(c, "out_of_memory");
    }
    mark_start(c);
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
    if (!(c = open_client(s, req, resp, &g)))
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

/* Ends the streams whose token has expired and recomputes the earliest expiry (lock held). */
static void expire_due(streams_t *s, int64_t now)
{
    int64_t next = 0;
    client_t *c, *n;
    for (c = s->all; c; c = n) {
        n = c->all_next;
        if (!c->expires_ms)
            continue;
        if (c->expires_ms <= now)
            end_client(c, s->expired, "token_expired");
        else if (!next || c->expires_ms < next)
            next = c->expires_ms;
    }
    s->next_expiry_ms = next;
}

/* An absolute CLOCK_MONOTONIC time for a now_ms() value. */
static struct timespec mono_at(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    return ts;
}

/* The timer thread: ends streams at their token's expiry; every heartbeat_ms a ping to every
 * idle stream, then the sweep. */
static void *timer_main(void *arg)
{
    streams_t *s = arg;
    pthread_mutex_lock(&s->lock);
    int64_t next_beat = now_ms() + s->heartbeat_ms;
    while (!s->stopping) {
        int64_t wake_at = next_beat;
        if (s->next_expiry_ms && s->next_expiry_ms < wake_at)
            wake_at = s->next_expiry_ms;
        struct timespec until = mono_at(wake_at);
        pthread_cond_timedwait(&s->wake, &s->lock, &until); /* also woken by a new expiry */
        if (s->stopping)
            break;
        int64_t now = now_ms();
        if (s->next_expiry_ms && s->next_expiry_ms <= now)
            expire_due(s, now);
        if (now < next_beat)
            continue;
        next_beat = now + s->heartbeat_ms;
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
    /* No id: line, so that the client's Last-Event-ID stays the last revision it got. */
    static const char expired[] =
        "{\"code\":20104,\"status\":401,\"message\":\"The sync token expired: fetch a new "
        "one and reconnect with Last-Event-ID to resume\"}";
    static const char changed[] =
        "{\"code\":20403,\"status\":403,\"message\":\"Access to this document changed: "
        "reconnect with Last-Event-ID to resume if the token may still read it\"}";
    s->expired = event_new(-1, "event: token-expired\ndata: ", expired, sizeof expired - 1, true);
    s->access_changed =
        event_new(-1, "event: access-changed\ndata: ", changed, sizeof changed - 1, true);
    if (!s->ping || !s->hello || !s->expired || !s->access_changed)
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
    event_unref(s->expired);
    event_unref(s->access_changed);
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
    /* a last event tells each client to reconnect (elsewhere: this server is stopping) */
    event_t *bye = event_new(-1, "event: reconnect\ndata: {\"reason\":\"draining\"}", "", 0, true);
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    for (client_t *c = s->all; c; c = c->all_next) {
        if (bye && !s->stopped_once)
            enqueue(c, bye, false);
        wake_client(c);
    }
    s->stopped_once = true;
    event_unref(bye);
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
    event_unref(s->expired);
    event_unref(s->access_changed);
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
