/* hub.c - the live-update hub: rings, subscriptions and limits over the Sync change listener.
 *
 * Design. An update is formatted once (the document's REST JSON) on the writer's thread,
 * outside the lock, into a reference-counted event. Under hub_t.lock it is appended to the
 * document's ring (for resume) and a pointer to it is pushed onto the queue of every
 * subscriber found through the document index (SID -> entry -> subscriber list), so one
 * update costs O(subscribers of that document). Framing is the transport's job: the queue
 * holds events, and the transport takes them one at a time with hub_sub_next. A subscriber
 * whose queue is empty is parked (the sink's park callback, e.g. a suspended libmicrohttpd
 * connection): hub_sub_next parks it under the lock and whoever queues the next event wakes
 * it under the same lock, so a wake always follows its park (for libmicrohttpd, resuming a
 * connection that is not suspended is undefined behaviour).
 *
 * Ordering. The engine hands the listener every committed change exactly once, one at a time,
 * in commit order (documents.c queues each change under the store lock and delivers the
 * committed prefix), so each document's revisions arrive here consecutively and its ring has
 * no holes. A new subscriber is started through sync_doc_watch, which runs our callback at
 * the exact place of its read in that order: the snapshot it gets is the entry's newest state
 * and every later revision follows, with no window in which one could slip past. (Before,
 * the listener ran after store_unlock, concurrent writers reported revisions out of order and
 * the streams dropped the older ones: revisions were lost to every subscriber and to the
 * ring.) On a shared store (several nodes on one PostgreSQL database) the engine's feeder
 * thread hands us every node's changes from its change log, in the one order all nodes agree
 * on, and runs the watches between them; service-stream ids are then the log's seq, the same
 * on every node, so a Last-Event-ID resumes anywhere, and a document resume the ring cannot
 * serve is replayed from the log's older states that sync_doc_watch hands on_watch.
 *
 * Access. With the service's ACL on, a document stream opens only for a token identity with
 * `read` (else TASSA_EFORBIDDEN, also for a document that does not exist, so a token cannot
 * probe names). Service-stream events carry the identities that could read the document when
 * it changed, and each subscriber gets only the events for its identity, live and on replay.
 * A revoked permission or a change of the service's AclEnabled ends the affected streams with
 * HUB_EV_ACCESS_CHANGED; a token's expiry ends its stream with HUB_EV_TOKEN_EXPIRED (the timer
 * wakes at the earliest expiry, and a live event for an expired subscriber ends it too).
 *
 * Lifetime. A subscription belongs to its transport: hub_sub_close unlinks and frees it under
 * the lock, after which the hub never calls its sink. A dropped subscriber stays linked (with
 * an empty queue) until then, so its sink's abort may still reach the connection.
 *
 * Layer: engine.
 */
#include "engine/live/hub.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/access_token.h"
#include "auth/verify_token.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/metrics.h"

#define NBUCKETS 4096
/* What an event costs in a queue or ring beyond its data: about its framing. */
#define EVENT_OVERHEAD 32

/* One event, shared by rings and queues. refs is atomic because the last reference may be
 * dropped by any thread; everything else is immutable after creation. */
typedef struct event {
    hub_msg_t msg; /* first, so that a hub_msg_t * is the event's address */
    atomic_int refs;
    bool restricted; /* service events under ACL: only readers[0..nreaders) may see it */
    char **readers;
    size_t nreaders;
    size_t size; /* bytes counted against the bounds */
    char data[];
} event_t;

/* The events of one document or service kept for resume (oldest first). */
typedef struct {
    event_t **ev;
    size_t cap, head, n, bytes;
    int64_t evicted; /* the id of the newest event dropped, -1 before the first */
} ring_t;

/* A watched document: index entry, ring and subscribers. */
typedef struct doc_entry {
    char sid[SID_LEN + 1];
    char service_sid[SID_LEN + 1];
    char *base_url;   /* URLs inside the document JSON */
    int64_t last_rev; /* highest revision seen, -1 before the first */
    ring_t ring;
    hub_sub_t *subs; /* doubly linked through hub_sub.prev/next */
    int nsubs;
    int64_t idle_since_ms;
    struct doc_entry *hnext;
} doc_entry_t;

/* A service with service-wide subscribers (kept until hub_free: few per process). */
typedef struct svc_entry {
    char sid[SID_LEN + 1];
    char *base_url; /* URLs inside the documents' JSON (the first subscriber's) */
    int64_t seq;    /* the id of the newest event */
    int64_t from;   /* every event with a larger id is in the ring (with ring.evicted) */
    ring_t ring;
    hub_sub_t *subs;
    struct svc_entry *next;
} svc_entry_t;

typedef struct ident {
    char *name;
    int n;
    struct ident *hnext;
} ident_t;

struct hub_sub {
    hub_t *h;
    const hub_sink_ops_t *ops;
    void *sink;
    char *identity;
    int64_t expires_ms; /* hub clock time the token expires (0 = never) */
    doc_entry_t *doc;   /* NULL once detached (deleted document) or for service streams */
    svc_entry_t *svc;
    hub_sub_t *prev, *next;         /* subscribers of doc or svc */
    hub_sub_t *all_prev, *all_next; /* every subscriber of h */
    event_t **q;                    /* queue ring of qcap pointers */
    size_t qcap, qhead, qlen, qbytes;
    size_t replay_n, replay_bytes; /* start events at the head, outside the live bound */
    bool closing;                  /* a terminal event is queued: nothing else may follow */
    bool parked;                   /* parked by hub_sub_next, waiting for an event */
    bool dropped;                  /* overflowed or gone: abort at the next read */
    bool finished;                 /* the terminal event was taken: end at the next read */
};

struct hub {
    hub_deps_t deps;
    pthread_mutex_t lock; /* guards everything below, every subscriber and every entry */
    pthread_cond_t wake;
    pthread_t timer;
    bool timer_started, stopping;
    bool stopped_once; /* hub_stop ran: the reconnect event went out */
    int64_t next_beat_ms;
    int total;
    doc_entry_t *docs[NBUCKETS];
    ident_t *idents[NBUCKETS];
    svc_entry_t *svcs;
    hub_sub_t *all;
    event_t *ping, *expired, *access_changed;
    int64_t next_expiry_ms; /* earliest subscriber expiry (0 = none), for the timer */
};

static size_t bucket(const char *s)
{
    return (size_t)(hash_str(HASH_SEED, s) % NBUCKETS);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const hub_t *h)
{
    return h->deps.now_ms ? h->deps.now_ms() : mono_ms();
}

const char *hub_event_name(hub_event_kind_t kind)
{
    switch (kind) {
    case HUB_EV_SNAPSHOT: return "snapshot";
    case HUB_EV_UPDATE: return "update";
    case HUB_EV_DELETED: return "deleted";
    case HUB_EV_READY: return "ready";
    case HUB_EV_RESET: return "reset";
    case HUB_EV_TOKEN_EXPIRED: return "token-expired";
    case HUB_EV_ACCESS_CHANGED: return "access-changed";
    case HUB_EV_RECONNECT: return "reconnect";
    case HUB_EV_PING: break;
    }
    return NULL;
}

/* Allocates an event with a copy of data and one reference. NULL on OOM. */
static event_t *event_new(hub_event_kind_t kind, int64_t id, const char *data, size_t len,
                          bool terminal)
{
    event_t *e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->data, data, len);
    e->data[len] = '\0';
    e->msg =
        (hub_msg_t){.kind = kind, .id = id, .terminal = terminal, .data = e->data, .data_len = len};
    atomic_init(&e->refs, 1);
    e->restricted = false;
    e->readers = NULL;
    e->nreaders = 0;
    e->size = len + EVENT_OVERHEAD;
    return e;
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

void hub_msg_release(const hub_msg_t *msg)
{
    event_unref((event_t *)msg); /* msg is the event's first member */
}

/* Drops the oldest event of r. */
static void ring_pop(ring_t *r)
{
    event_t *old = r->ev[r->head];
    if (old->msg.id > r->evicted)
        r->evicted = old->msg.id;
    r->bytes -= old->size;
    event_unref(old);
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

/* Appends e (taking a new reference) and evicts the oldest past the count or byte bound. */
static bool ring_push(ring_t *r, event_t *e)
{
    if (!r->ev) {
        r->ev = calloc(HUB_RING_EVENTS, sizeof *r->ev);
        if (!r->ev)
            return false;
        r->cap = HUB_RING_EVENTS;
    }
    if (r->n == r->cap)
        ring_pop(r);
    r->ev[(r->head + r->n) % r->cap] = event_ref(e);
    r->n++;
    r->bytes += e->size;
    while (r->n > 1 && r->bytes > HUB_RING_BYTES)
        ring_pop(r);
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
static void queue_clear(hub_sub_t *c)
{
    for (size_t i = 0; i < c->qlen; i++)
        event_unref(c->q[(c->qhead + i) % c->qcap]);
    c->qhead = c->qlen = c->qbytes = 0;
    c->replay_n = c->replay_bytes = 0;
}

/* May c see e? Service events under ACL name their readers. */
static bool visible(const hub_sub_t *c, const event_t *e)
{
    if (!e->restricted)
        return true;
    for (size_t i = 0; i < e->nreaders; i++) {
        if (!strcmp(e->readers[i], c->identity))
            return true;
    }
    return false;
}

/* Wakes c if hub_sub_next parked it (lock held): the wake must follow the park, which
 * hub_sub_next also did under the lock. */
static void wake_sub(hub_sub_t *c)
{
    if (c->parked) {
        c->parked = false;
        c->ops->wake(c->sink);
    }
}

/* Unlinks c from its document's or service's subscriber list (lock held). */
static void unsubscribe(hub_sub_t *c)
{
    hub_sub_t **head = c->doc ? &c->doc->subs : c->svc ? &c->svc->subs : NULL;
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
            c->doc->idle_since_ms = now_ms(c->h);
    }
    c->prev = c->next = NULL;
    c->doc = NULL;
    c->svc = NULL;
}

/* Drops a subscriber (lock held): frees its backlog, stops fan-out to it and has the
 * transport tear the connection down, so that it ends even if the peer never reads. */
static void drop_sub(hub_sub_t *c, const char *why)
{
    c->dropped = true;
    queue_clear(c);
    unsubscribe(c);
    if (c->ops->abort)
        c->ops->abort(c->sink);
    wake_sub(c);
    log_info("event=stream_dropped reason=%s", why);
    metrics_add(M_STREAM_DROPPED, 1, "reason", why, NULL);
}

static void end_sub(hub_sub_t *c, event_t *last, const char *why);

/* Queues e for c (lock held); live is false for the events of a (re)subscription, which are
 * bounded by the caller. Returns false when c was dropped for overflowing. A live event for
 * a subscriber whose token has expired ends its stream instead (the timer may not have run
 * yet). */
static bool enqueue(hub_sub_t *c, event_t *e, bool live)
{
    if (c->dropped || c->finished || c->closing)
        return true;
    if (live && c->expires_ms && now_ms(c->h) >= c->expires_ms) {
        end_sub(c, c->h->expired, "token_expired");
        return true;
    }
    size_t live_n = c->qlen - c->replay_n, live_bytes = c->qbytes - c->replay_bytes;
    if (c->qlen == c->qcap ||
        (live && (live_n >= HUB_QUEUE_EVENTS || live_bytes + e->size > HUB_QUEUE_BYTES))) {
        drop_sub(c, "slow_client");
        return false;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = event_ref(e);
    c->qlen++;
    c->qbytes += e->size;
    if (e->msg.terminal)
        c->closing = true;
    wake_sub(c);
    return true;
}

/* Ends c's stream with the terminal event last and stops fan-out to it (lock held). What was
 * queued is discarded; an event the transport already took still goes out whole first. */
static void end_sub(hub_sub_t *c, event_t *last, const char *why)
{
    if (c->dropped || c->finished || c->closing)
        return;
    queue_clear(c);
    unsubscribe(c);
    c->expires_ms = 0;
    enqueue(c, last, false);
    log_info("event=stream_ended reason=%s", why);
}

/* Sends e to every subscriber of list that may see it (lock held). */
static void fan_out(hub_sub_t *list, event_t *e)
{
    hub_sub_t *next;
    for (hub_sub_t *c = list; c; c = next) {
        next = c->next; /* enqueue may unlink c */
        if (visible(c, e))
            enqueue(c, e, true);
    }
}

/* The entry of a watched document, or NULL (lock held). */
static doc_entry_t *doc_find(hub_t *h, const char *sid)
{
    for (doc_entry_t *d = h->docs[bucket(sid)]; d; d = d->hnext) {
        if (!strcmp(d->sid, sid))
            return d;
    }
    return NULL;
}

/* Removes d from the index and detaches its subscribers (lock held); frees d. */
static void doc_forget(hub_t *h, doc_entry_t *d)
{
    doc_entry_t **pp = &h->docs[bucket(d->sid)];
    while (*pp && *pp != d)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = d->hnext;
    while (d->subs)
        unsubscribe(d->subs);
    ring_clear(&d->ring);
    free(d->base_url);
    free(d);
}

/* The service-stream entry of a service, or NULL (lock held). */
static svc_entry_t *svc_find(hub_t *h, const char *sid)
{
    for (svc_entry_t *v = h->svcs; v; v = v->next) {
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
    if (e->msg.terminal) {
        fan_out(d->subs, e); /* whatever its revision: the document is gone */
        return;
    }
    if (e->msg.id <= d->last_rev)
        return;
    d->last_rev = e->msg.id;
    ring_push(&d->ring, e);
    fan_out(d->subs, e);
}

/* Formats the document's REST JSON (caller frees). NULL on OOM. */
static char *doc_text(const hub_t *h, const sync_doc_t *doc, const char *base_url)
{
    const char *account = h->deps.config->account_sid;
    return sync_doc_text(doc, account ? account : "", base_url ? base_url : "");
}

/* A permission or ACL change: ends the streams that may no longer read (outside the lock
 * for the store read, then under it). */
static void on_access_change(hub_t *h, const sync_change_t *ch)
{
    const char *svc = ch->doc.service_sid;
    if (ch->kind == SYNC_CHANGE_PERMISSION) {
        bool allowed = true;
        if (ch->read || sync_acl_can_read(h->deps.sync, svc, ch->doc.sid, ch->identity, &allowed) ||
            allowed)
            return;
        pthread_mutex_lock(&h->lock);
        doc_entry_t *d = doc_find(h, ch->doc.sid);
        hub_sub_t *next;
        for (hub_sub_t *c = d ? d->subs : NULL; c; c = next) {
            next = c->next;
            if (!strcmp(c->identity, ch->identity))
                end_sub(c, h->access_changed, "permission_revoked");
        }
        pthread_mutex_unlock(&h->lock);
    } else if (ch->kind == SYNC_CHANGE_ACL && ch->read) {
        /* ACL switched on: every document stream of the service must be authorised again. */
        pthread_mutex_lock(&h->lock);
        for (hub_sub_t *c = h->all; c; c = c->all_next) {
            if (c->doc && !strcmp(c->doc->service_sid, svc))
                end_sub(c, h->access_changed, "acl_enabled");
        }
        pthread_mutex_unlock(&h->lock);
    }
}

/* Copies a deleted document's readers from the change (borrowed). false on OOM. */
static bool copy_readers(const sync_change_t *ch, char ***readers, size_t *n)
{
    *readers = NULL;
    *n = 0;
    if (!ch->nreaders)
        return true;
    char **ids = calloc(ch->nreaders, sizeof *ids);
    if (!ids)
        return false;
    for (size_t i = 0; i < ch->nreaders; i++) {
        if (!(ids[i] = strdup(ch->readers[i]))) {
            sync_identities_free(ids, i);
            return false;
        }
    }
    *readers = ids;
    *n = ch->nreaders;
    return true;
}

/* The Sync change listener: formats the change once, then fans it out under the lock. Runs
 * once per committed change, in commit order (documents.h). */
static void on_change(void *ctx, const sync_change_t *ch)
{
    hub_t *h = ctx;
    char *base = NULL, *text = NULL;
    event_t *dev = NULL;
    bool want_doc, want_svc;
    if (ch->kind != SYNC_CHANGE_DOC) {
        on_access_change(h, ch);
        return;
    }
    const sync_doc_t *doc = &ch->doc;
    bool deleted = ch->deleted;
    pthread_mutex_lock(&h->lock);
    doc_entry_t *d = doc_find(h, doc->sid);
    want_doc = d != NULL;
    want_svc = svc_find(h, doc->service_sid) != NULL;
    svc_entry_t *sv = want_doc ? NULL : svc_find(h, doc->service_sid);
    if (d && d->base_url)
        base = strdup(d->base_url);
    else if (sv && sv->base_url)
        base = strdup(sv->base_url);
    pthread_mutex_unlock(&h->lock);
    if (!want_doc && !want_svc)
        return;
    /* Who may see it on the service stream: known for a delete (its permissions are gone). */
    bool all = true;
    char **readers = NULL;
    size_t nreaders = 0;
    if (want_svc && ch->readers_known) {
        all = ch->all_readers;
        if (!all && !copy_readers(ch, &readers, &nreaders))
            want_svc = false;
    } else if (want_svc && sync_acl_readers(h->deps.sync, doc->service_sid, doc->sid, &all,
                                            &readers, &nreaders)) {
        want_svc = false; /* cannot tell who may see it: nobody does */
        log_warn("event=stream_update_lost doc=%s reason=acl_lookup_failed", doc->sid);
    }
    if (!(text = doc_text(h, doc, base)))
        goto out;
    size_t tlen = strlen(text);
    hub_event_kind_t kind = deleted ? HUB_EV_DELETED : HUB_EV_UPDATE;
    if (!(dev = event_new(kind, doc->revision, text, tlen, deleted)))
        goto out;
    pthread_mutex_lock(&h->lock);
    if ((d = doc_find(h, doc->sid))) {
        doc_observe(d, dev);
        if (deleted)
            doc_forget(h, d);
    }
    svc_entry_t *v = want_svc ? svc_find(h, doc->service_sid) : NULL;
    if (v) {
        /* Built under the lock because the id is the sequence number: a short copy. On a
         * shared store the id is the change log's seq, the same on every node. */
        int64_t id = ch->seq > v->seq ? ch->seq : v->seq + 1;
        event_t *sev = event_new(kind, id, text, tlen, false);
        if (sev) {
            if (!all) {
                sev->restricted = true;
                sev->readers = readers; /* taken over */
                sev->nreaders = nreaders;
                readers = NULL;
                nreaders = 0;
            }
            v->seq = id;
            ring_push(&v->ring, sev);
            fan_out(v->subs, sev);
            event_unref(sev);
        }
    }
    pthread_mutex_unlock(&h->lock);
out:
    if (!text || !dev)
        log_warn("event=stream_update_lost doc=%s reason=out_of_memory", doc->sid);
    sync_identities_free(readers, nreaders);
    event_unref(dev);
    free(text);
    free(base);
}

hub_next_t hub_sub_next(hub_sub_t *c, bool may_park, const hub_msg_t **msg)
{
    hub_t *h = c->h;
    hub_next_t ret;
    *msg = NULL;
    pthread_mutex_lock(&h->lock);
    if (c->dropped) {
        ret = HUB_NEXT_ABORT;
    } else if (c->qlen == 0) {
        if (c->finished || h->stopping) {
            ret = HUB_NEXT_END;
        } else {
            ret = HUB_NEXT_EMPTY;
            if (may_park && !c->parked) {
                c->parked = true;
                c->ops->park(c->sink);
            }
        }
    } else {
        event_t *e = c->q[c->qhead]; /* the queue's reference goes to the caller */
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
        c->qbytes -= e->size;
        if (c->replay_n) {
            c->replay_n--;
            c->replay_bytes -= e->size;
        }
        if (e->msg.terminal)
            c->finished = true;
        *msg = &e->msg;
        ret = HUB_NEXT_EVENT;
    }
    pthread_mutex_unlock(&h->lock);
    return ret;
}

/* Releases an identity's slot (lock held). */
static void release_slot(hub_t *h, const hub_sub_t *c)
{
    h->total--;
    metrics_add(M_STREAM_CLIENTS, -1, "transport", c->ops->transport, NULL);
    ident_t **pp = &h->idents[bucket(c->identity)];
    for (; *pp; pp = &(*pp)->hnext) {
        if (!strcmp((*pp)->name, c->identity)) {
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
static tassa_err take_slot(hub_t *h, const char *identity, const char *transport, errmsg_t *em)
{
    const config_t *cfg = h->deps.config;
    if (cfg->max_streams > 0 && h->total >= cfg->max_streams)
        return err_set(em, TASSA_ELIMIT, "Too many live streams on this server (limit %d)",
                       cfg->max_streams);
    ident_t *i = h->idents[bucket(identity)];
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
        size_t b = bucket(identity);
        i->hnext = h->idents[b];
        h->idents[b] = i;
    }
    i->n++;
    h->total++;
    metrics_add(M_STREAM_CLIENTS, 1, "transport", transport, NULL);
    return TASSA_OK;
}

/* Unlinks c from everything and frees it (lock held). */
static void sub_destroy_locked(hub_sub_t *c)
{
    hub_t *h = c->h;
    unsubscribe(c);
    queue_clear(c);
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else if (h->all == c)
        h->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    release_slot(h, c);
    free(c->q);
    free(c->identity);
    free(c);
}

void hub_sub_close(hub_sub_t *c)
{
    if (!c)
        return;
    hub_t *h = c->h;
    pthread_mutex_lock(&h->lock);
    sub_destroy_locked(c);
    pthread_mutex_unlock(&h->lock);
}

/* Takes a slot and creates a subscriber linked into h->all, or explains why not. */
static hub_sub_t *sub_open(hub_t *h, const hub_grant_t *g, const hub_sink_ops_t *ops, void *sink,
                           errmsg_t *em, tassa_err *err)
{
    hub_sub_t *c = calloc(1, sizeof *c);
    if (c) {
        c->qcap = HUB_RING_EVENTS + HUB_QUEUE_EVENTS + 4; /* a whole ring replay fits */
        c->q = calloc(c->qcap, sizeof *c->q);
        c->identity = strdup(g->identity);
    }
    if (!c || !c->q || !c->identity) {
        if (c) {
            free(c->q);
            free(c->identity);
        }
        free(c);
        *err = err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    c->h = h;
    c->ops = ops;
    c->sink = sink;
    pthread_mutex_lock(&h->lock);
    if (h->stopping)
        *err = err_set(em, TASSA_EUNAVAIL, "The server is shutting down");
    else
        *err = take_slot(h, g->identity, ops->transport, em);
    if (!*err) {
        c->all_next = h->all;
        if (h->all)
            h->all->all_prev = c;
        h->all = c;
        if ((c->expires_ms = g->expires_ms) &&
            (!h->next_expiry_ms || c->expires_ms < h->next_expiry_ms)) {
            h->next_expiry_ms = c->expires_ms;
            pthread_cond_broadcast(&h->wake); /* the timer sleeps until the earliest expiry */
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (*err) {
        free(c->q);
        free(c->identity);
        free(c);
        return NULL;
    }
    return c;
}

/* Links c at the head of a subscriber list (lock held). */
static void subscribe(hub_sub_t **head, hub_sub_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

/* The start events of a subscription sit at the head of the queue, outside the live bound
 * (a replay of a whole ring is allowed); live events count from here (lock held). */
static void mark_start(hub_sub_t *c)
{
    c->replay_n = c->qlen;
    c->replay_bytes = c->qbytes;
}

/* Queues a start event made for c alone (lock held; e taken over), or drops c when e could
 * not be made (NULL). */
static void enqueue_own(hub_sub_t *c, event_t *e)
{
    if (!e) {
        drop_sub(c, "out_of_memory");
        return;
    }
    enqueue(c, e, false);
    event_unref(e);
}

/* Do the older events hist[0..n) (oldest first) hold every revision after last_id and
 * before oldest? */
static bool bridges(event_t *const *hist, size_t n, int64_t last_id, int64_t oldest)
{
    int64_t expect = last_id + 1;
    for (size_t i = 0; i < n && hist[i]->msg.id < oldest; i++) {
        if (hist[i]->msg.id <= last_id)
            continue;
        if (hist[i]->msg.id != expect)
            return false;
        expect++;
    }
    return expect == oldest;
}

/* Queues what a new subscriber of d needs (lock held): every event after last_id when the
 * ring, or the ring after the older events hist[0..nhist) (oldest first, from the shared
 * change log), still reaches back to it; else a snapshot of the newest state. */
static void doc_start(hub_sub_t *c, doc_entry_t *d, int64_t last_id, event_t *const *hist,
                      size_t nhist)
{
    ring_t *r = &d->ring;
    if (r->n && !(last_id >= 0 && last_id == d->last_rev)) { /* else already current */
        int64_t oldest = ring_at(r, 0)->msg.id;
        bool resume = last_id >= 0 && last_id < d->last_rev;
        if (resume && (oldest <= last_id + 1 || bridges(hist, nhist, last_id, oldest))) {
            for (size_t i = 0; oldest > last_id + 1 && i < nhist && hist[i]->msg.id < oldest; i++) {
                if (hist[i]->msg.id > last_id)
                    enqueue(c, hist[i], false);
            }
            for (size_t i = 0; i < r->n; i++) {
                if (ring_at(r, i)->msg.id > last_id)
                    enqueue(c, ring_at(r, i), false);
            }
        } else {
            const hub_msg_t *m = &ring_at(r, r->n - 1)->msg;
            enqueue_own(c, event_new(HUB_EV_SNAPSHOT, m->id, m->data, m->data_len, false));
        }
    }
    mark_start(c);
}

typedef struct {
    hub_t *h;
    hub_sub_t *c;
    int64_t last_id;
    const char *base;
} watch_t;

/* An update event of doc (URLs under base). NULL on OOM. */
static event_t *update_event(const hub_t *h, const sync_doc_t *doc, const char *base)
{
    char *text = doc_text(h, doc, base);
    event_t *ev = text ? event_new(HUB_EV_UPDATE, doc->revision, text, strlen(text), false) : NULL;
    free(text);
    return ev;
}

/* sync_doc_watch's callback: subscribes at exactly this revision of the document, between two
 * changes of the listener's order (see the file comment). history: older states from the
 * shared change log, for a resume the ring cannot serve. */
static void on_watch(void *ctx, const sync_doc_t *doc, const sync_doc_t *history, size_t n)
{
    watch_t *w = ctx;
    hub_t *h = w->h;
    event_t *ev = update_event(h, doc, w->base);
    event_t **hist = n ? calloc(n, sizeof *hist) : NULL;
    size_t nhist = 0;
    while (hist && nhist < n && (hist[nhist] = update_event(h, &history[nhist], w->base)))
        nhist++; /* a shorter history only means a snapshot instead of a replay */
    pthread_mutex_lock(&h->lock);
    doc_entry_t *d = ev ? doc_find(h, doc->sid) : NULL;
    if (ev && !d && (d = calloc(1, sizeof *d))) {
        memcpy(d->sid, doc->sid, sizeof d->sid);
        memcpy(d->service_sid, doc->service_sid, sizeof d->service_sid);
        d->base_url = strdup(w->base);
        d->last_rev = -1;
        size_t b = bucket(d->sid);
        d->hnext = h->docs[b];
        h->docs[b] = d;
    }
    if (d) {
        doc_observe(d, ev); /* a new entry's first state; an existing one already has it */
        doc_start(w->c, d, w->last_id, hist, nhist);
        if (!w->c->dropped && !w->c->closing) {
            w->c->doc = d;
            d->nsubs++;
            subscribe(&d->subs, w->c);
        }
    } else {
        drop_sub(w->c, "out_of_memory");
    }
    pthread_mutex_unlock(&h->lock);
    event_unref(ev);
    for (size_t i = 0; i < nhist; i++)
        event_unref(hist[i]);
    free(hist);
}

tassa_err hub_subscribe_doc(hub_t *h, const hub_grant_t *g, const char *doc_id, int64_t last_id,
                            const char *base_url, const hub_sink_ops_t *ops, void *sink,
                            hub_sub_t **out, errmsg_t *em)
{
    bool allowed = false;
    tassa_err err;
    *out = NULL;
    if ((err = sync_acl_can_read(h->deps.sync, g->service_sid, doc_id, g->identity, &allowed)))
        return err_set(em, err, "%s", tassa_strerror(err));
    if (!allowed) /* the same answer whether the document exists or not */
        return err_set(em, TASSA_EFORBIDDEN,
                       "The sync token's identity has no read permission on this document");
    hub_sub_t *c = sub_open(h, g, ops, sink, em, &err);
    if (!c)
        return err;
    watch_t w = {.h = h, .c = c, .last_id = last_id, .base = base_url ? base_url : ""};
    if ((err = sync_doc_watch(h->deps.sync, g->service_sid, doc_id, last_id, on_watch, &w, em))) {
        hub_sub_close(c);
        return err;
    }
    *out = c;
    return TASSA_OK;
}

/* A READY or RESET event carrying the service's current sequence number. */
static event_t *seq_event(const svc_entry_t *v, hub_event_kind_t kind)
{
    char json[128];
    int n =
        snprintf(json, sizeof json, "{\"service_sid\":\"%s\",\"seq\":%" PRId64 "}", v->sid, v->seq);
    return event_new(kind, v->seq, json, (size_t)n, false);
}

/* Queues what a new service subscriber needs (lock held), as doc_start does. */
static void svc_start(hub_sub_t *c, svc_entry_t *v, int64_t last_id)
{
    ring_t *r = &v->ring;
    if (last_id >= 0 && last_id == v->seq) {
        mark_start(c);
        return;
    }
    int64_t kept_after = v->from > r->evicted ? v->from : r->evicted;
    if (last_id >= 0 && last_id < v->seq && last_id >= kept_after) {
        for (size_t i = 0; i < r->n; i++) {
            if (ring_at(r, i)->msg.id > last_id && visible(c, ring_at(r, i)))
                enqueue(c, ring_at(r, i), false);
        }
        mark_start(c);
        return;
    }
    enqueue_own(c, seq_event(v, last_id >= 0 ? HUB_EV_RESET : HUB_EV_READY));
    mark_start(c);
}

tassa_err hub_subscribe_service(hub_t *h, const hub_grant_t *g, int64_t last_id,
                                const char *base_url, const hub_sink_ops_t *ops, void *sink,
                                hub_sub_t **out, errmsg_t *em)
{
    tassa_err err;
    *out = NULL;
    hub_sub_t *c = sub_open(h, g, ops, sink, em, &err);
    if (!c)
        return err;
    pthread_mutex_lock(&h->lock);
    svc_entry_t *v = svc_find(h, g->service_sid);
    if (!v && (v = calloc(1, sizeof *v))) {
        memcpy(v->sid, g->service_sid, sizeof v->sid);
        v->base_url = strdup(base_url ? base_url : "");
        /* A shared store numbers changes across nodes: start at the feeder's place. */
        int64_t pos = sync_engine_position(h->deps.sync);
        v->seq = v->from = pos >= 0 ? pos : seq_base();
        v->ring.evicted = -1;
        v->next = h->svcs;
        h->svcs = v;
    }
    if (v) {
        svc_start(c, v, last_id);
        if (!c->dropped) {
            c->svc = v;
            subscribe(&v->subs, c);
        }
    } else {
        drop_sub(c, "out_of_memory");
    }
    pthread_mutex_unlock(&h->lock);
    *out = c;
    return TASSA_OK;
}

/* The hub clock time at which a verified token's exp passes (0 when it cannot be read). */
static int64_t token_expiry(const hub_t *h, const char *token)
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
            at = now_ms(h) + 1 + (left > 0 ? (int64_t)left : 0); /* never before exp */
            if (at <= 0)
                at = 1;
        }
    }
    json_decref(header);
    json_decref(claims);
    return at;
}

tassa_err hub_authorise(hub_t *h, const char *token, const char *service, hub_grant_t *g,
                        errmsg_t *em)
{
    errmsg_t why = {{0}};
    char *grant_service = NULL;
    char grant_sid[SID_LEN + 1];
    memset(g, 0, sizeof *g);
    tassa_err err = access_token_verify(token, h->deps.config->api_secret, time(NULL), &g->identity,
                                        &grant_service, &why);
    if (err) {
        log_info("event=stream_refused reason=\"%s\"", err_text(&why, err));
        err_set(em, err, "%s", err == TASSA_EUNAUTH ? "Invalid sync token" : tassa_strerror(err));
        goto out;
    }
    if ((err = sync_service_resolve(h->deps.sync, service, g->service_sid))) {
        err_set(em, err, "The requested resource /Services/%.40s was not found", service);
        goto out;
    }
    if (sync_service_resolve(h->deps.sync, grant_service, grant_sid) ||
        strcmp(grant_sid, g->service_sid) != 0) {
        err = err_set(em, TASSA_EFORBIDDEN, "The sync token does not grant access to this service");
        goto out;
    }
    g->expires_ms = token_expiry(h, token);
out:
    free(grant_service);
    if (err)
        hub_grant_clear(g);
    return err;
}

void hub_grant_clear(hub_grant_t *g)
{
    if (!g)
        return;
    free(g->identity);
    g->identity = NULL;
}

/* Forgets documents nobody has watched for HUB_IDLE_MS (lock held). */
static void sweep(hub_t *h, int64_t now)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        doc_entry_t *d = h->docs[b], *next;
        for (; d; d = next) {
            next = d->hnext;
            if (!d->subs && now - d->idle_since_ms > HUB_IDLE_MS)
                doc_forget(h, d);
        }
    }
}

/* Ends the streams whose token has expired and recomputes the earliest expiry (lock held). */
static void expire_due(hub_t *h, int64_t now)
{
    int64_t next = 0;
    hub_sub_t *c, *n;
    for (c = h->all; c; c = n) {
        n = c->all_next;
        if (!c->expires_ms)
            continue;
        if (c->expires_ms <= now)
            end_sub(c, h->expired, "token_expired");
        else if (!next || c->expires_ms < next)
            next = c->expires_ms;
    }
    h->next_expiry_ms = next;
}

/* The timer's work at time now (lock held): expiries, then a due heartbeat. */
static void tick_locked(hub_t *h, int64_t now)
{
    if (h->next_expiry_ms && h->next_expiry_ms <= now)
        expire_due(h, now);
    if (now < h->next_beat_ms)
        return;
    h->next_beat_ms = now + h->deps.heartbeat_ms;
    for (hub_sub_t *c = h->all; c; c = c->all_next) {
        if (c->parked && c->ops->gone && c->ops->gone(c->sink))
            drop_sub(c, "peer_closed");
        else if (!c->qlen)
            enqueue(c, h->ping, false);
    }
    sweep(h, now);
}

void hub_tick(hub_t *h)
{
    pthread_mutex_lock(&h->lock);
    tick_locked(h, now_ms(h));
    pthread_mutex_unlock(&h->lock);
}

/* An absolute CLOCK_MONOTONIC time for a mono_ms() value. */
static struct timespec mono_at(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    return ts;
}

/* The timer thread: sleeps until the next heartbeat or the earliest expiry (a new earlier
 * expiry wakes it), then does the work. */
static void *timer_main(void *arg)
{
    hub_t *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stopping) {
        int64_t wake_at = h->next_beat_ms;
        if (h->next_expiry_ms && h->next_expiry_ms < wake_at)
            wake_at = h->next_expiry_ms;
        struct timespec until = mono_at(wake_at);
        pthread_cond_timedwait(&h->wake, &h->lock, &until);
        if (h->stopping)
            break;
        tick_locked(h, now_ms(h));
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

hub_t *hub_new(const hub_deps_t *deps)
{
    static const char expired[] =
        "{\"code\":20104,\"status\":401,\"message\":\"The sync token expired: fetch a new "
        "one and reconnect with Last-Event-ID to resume\"}";
    static const char changed[] =
        "{\"code\":20403,\"status\":403,\"message\":\"Access to this document changed: "
        "reconnect with Last-Event-ID to resume if the token may still read it\"}";
    pthread_condattr_t ca;
    bool lock_ok = false, cond_ok = false;
    if (!deps || !deps->config || !deps->sync)
        return NULL;
    hub_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->deps = *deps;
    if (h->deps.heartbeat_ms <= 0)
        h->deps.heartbeat_ms = HUB_HEARTBEAT_MS;
    h->ping = event_new(HUB_EV_PING, -1, "", 0, false);
    h->expired = event_new(HUB_EV_TOKEN_EXPIRED, -1, expired, sizeof expired - 1, true);
    h->access_changed = event_new(HUB_EV_ACCESS_CHANGED, -1, changed, sizeof changed - 1, true);
    if (!h->ping || !h->expired || !h->access_changed)
        goto fail;
    if (pthread_mutex_init(&h->lock, NULL))
        goto fail;
    lock_ok = true;
    if (pthread_condattr_init(&ca))
        goto fail;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    cond_ok = pthread_cond_init(&h->wake, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cond_ok)
        goto fail;
    h->next_beat_ms = now_ms(h) + h->deps.heartbeat_ms;
    if (sync_engine_set_listener(h->deps.sync, on_change, h))
        goto fail;
    return h;
fail:
    if (cond_ok)
        pthread_cond_destroy(&h->wake);
    if (lock_ok)
        pthread_mutex_destroy(&h->lock);
    event_unref(h->ping);
    event_unref(h->expired);
    event_unref(h->access_changed);
    free(h);
    return NULL;
}

tassa_err hub_start(hub_t *h)
{
    /* The timer must not take SIGTERM/SIGINT away from main's sigwait. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_mutex_lock(&h->lock);
    h->next_beat_ms = now_ms(h) + h->deps.heartbeat_ms;
    int rc = h->timer_started || h->stopping ? 0 : pthread_create(&h->timer, NULL, timer_main, h);
    if (!rc)
        h->timer_started = true;
    pthread_mutex_unlock(&h->lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc ? TASSA_EINTERNAL : TASSA_OK;
}

void hub_stop(hub_t *h)
{
    if (!h)
        return;
    /* a last event tells each subscriber to reconnect (elsewhere: this server is stopping) */
    static const char draining[] = "{\"reason\":\"draining\"}";
    event_t *bye = event_new(HUB_EV_RECONNECT, -1, draining, sizeof draining - 1, true);
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    for (hub_sub_t *c = h->all; c; c = c->all_next) {
        if (bye && !h->stopped_once)
            enqueue(c, bye, false);
        wake_sub(c);
    }
    h->stopped_once = true;
    pthread_cond_broadcast(&h->wake);
    bool join = h->timer_started;
    h->timer_started = false;
    pthread_mutex_unlock(&h->lock);
    event_unref(bye);
    if (join)
        pthread_join(h->timer, NULL);
}

void hub_free(hub_t *h)
{
    if (!h)
        return;
    hub_stop(h);
    sync_engine_set_listener(h->deps.sync, NULL, NULL);
    pthread_mutex_lock(&h->lock);
    /* Subscribers left only if a transport did not close them first: detach, never free them
     * (their transport still holds them). */
    for (hub_sub_t *c = h->all; c; c = c->all_next) {
        unsubscribe(c);
        queue_clear(c);
    }
    if (h->all)
        log_warn("event=hub_free_with_subscribers count=%d", h->total);
    for (size_t b = 0; b < NBUCKETS; b++) {
        while (h->docs[b])
            doc_forget(h, h->docs[b]);
        while (h->idents[b]) {
            ident_t *i = h->idents[b];
            h->idents[b] = i->hnext;
            free(i->name);
            free(i);
        }
    }
    while (h->svcs) {
        svc_entry_t *v = h->svcs;
        h->svcs = v->next;
        ring_clear(&v->ring);
        free(v->base_url);
        free(v);
    }
    pthread_mutex_unlock(&h->lock);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    event_unref(h->ping);
    event_unref(h->expired);
    event_unref(h->access_changed);
    free(h);
}

int hub_count(hub_t *h)
{
    if (!h)
        return 0;
    pthread_mutex_lock(&h->lock);
    int n = h->total;
    pthread_mutex_unlock(&h->lock);
    return n;
}
