/* documents.c - Sync services, documents and document permissions in the store.
 *
 * Every call is one short transaction under the store lock. Expired documents are invisible
 * to every query (expiry is a WHERE clause, so it needs no timer and survives restarts) and
 * are purged when a create needs their unique name or by sync_doc_list's sweep.
 *
 * Change order. A write is applied under the store lock but is durable only when the group
 * commit that follows store_unlock has run, and several writers wait for that commit at once,
 * so they wake in any order. Telling the listener right after store_unlock would therefore
 * report revisions out of order (the streams then had to drop the older ones: revisions lost
 * to every subscriber). Instead each write appends a pending change to `changes` while it
 * still holds the store lock, so the list is in commit order, and marks it ready (or
 * cancelled, when the commit failed) once store_unlock returns. Whoever finds the head of the
 * list ready delivers the ready prefix to the listener, one change at a time, with no lock
 * held; `delivering` makes sure only one thread does so, so the listener sees changes one by
 * one in commit order. Nothing can stall: every pending change belongs to a writer that is
 * inside store_unlock, which always returns, and that writer then delivers; or to an
 * asynchronous write (sync_doc_*_async), whose completion the committer queues for the settle
 * thread, which delivers it and only then reports it, whatever became of the caller. sync_doc_watch
 * queues a read the same way, so a new subscriber starts exactly between two changes.
 *
 * Several nodes (store_shared). Other processes write the same database, so the listener
 * must hear of their changes too, and in one order that every node agrees on. Each write
 * therefore also appends its change (the whole new state, or the readers of a deleted
 * document) to the table sync_changes, in the same critical section and savepoint, and sends
 * store_notify(LOG_CHANNEL, "<seq>"). Critical sections of all nodes run one after another
 * (the store's database-wide lock), so seq order is commit order, with gaps where a group
 * commit failed. One feeder thread per node is the only deliverer: it reads the log after the
 * last seq it handed on, LOG_BATCH rows per critical section, and gives each change to the
 * listener in seq order once the read is known durable (store_unlock). It wakes on a
 * notification, after every local write and every LOG_POLL_MS as a safety net; "you may have
 * missed some" from the store is only a wake-up, since the log itself is the truth. It starts
 * at the head of the log: a node hears the changes committed after it started. A watch is
 * handed to the feeder, which reads the document in the same critical section as a batch that
 * reached the head of the log, and runs it right after that batch: the subscriber starts
 * between two changes, as on one node; it also gets the log's older states of the document,
 * so a Last-Event-ID from another node is replayed. Any feeder deletes log rows at least
 * LOG_KEEP_MS old now and then (log_prune); a node whose feeder falls that far behind (its
 * database connection lost for longer than that) misses what another node pruned. On SQLite nothing
 * of this runs: no log row, no thread.
 *
 * Layer: engine.
 */
#include "engine/sync/documents.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/params.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/timefmt.h"
#include "store/migrate.h"

#define KNOWN_SLOTS 65536 /* names remembered as existing (apply_new's hint) */

/* A change (or a watch) waiting for its turn in commit order. */
typedef enum { PENDING_WAITING, PENDING_READY, PENDING_CANCELLED } pending_state_t;

typedef struct pending {
    struct pending *next;
    pending_state_t state;
    sync_change_t change; /* doc owned (a copy) */
    sync_watch_fn watch;  /* a watch instead of a change when not NULL */
    void *watch_ctx;
    bool *watch_done; /* set when the watch ran or was cancelled (under changes_lock) */
} pending_t;

/* A watch waiting for the feeder (shared store): read and run between two batches. */
typedef struct watch_req {
    struct watch_req *next;
    const char *service, *id; /* borrowed from the caller of sync_doc_watch */
    sync_watch_fn fn;
    void *ctx;
    int64_t after;       /* history after this revision (-1: none) */
    sync_doc_t *history; /* read by the feeder, oldest first */
    size_t nhistory;
    tassa_err err;
    bool done; /* under feed_lock */
} watch_req_t;

typedef struct sync_write sync_write_t;

struct sync_engine {
    store_t *store;
    /* Asynchronous writes (sync_doc_*_async) whose commit is settled, for the settle thread:
     * settle_lock guards the queue, settle_open (writes begun and not yet reported) and
     * settle_stop. */
    pthread_mutex_t settle_lock;
    pthread_cond_t settle_cond; /* the queue has work, or stop */
    pthread_cond_t settle_idle; /* settle_open fell to 0 */
    sync_write_t *settle_head, *settle_tail;
    int settle_open;
    bool settle_stop, settling;
    pthread_t settler;
    char account_sid[SID_LEN + 1];
    char default_service[SID_LEN + 1];
    sync_listener_fn listener;
    void *listener_ctx;
    pthread_mutex_t changes_lock; /* guards changes, tail and delivering */
    pthread_cond_t changes_done;  /* a watch ran */
    pending_t *changes, *tail;    /* oldest first: commit order */
    bool delivering;
    /* Shared store only: the change log's feeder (see the file comment). */
    bool shared;
    pthread_mutex_t feed_lock; /* guards feed_wake, feed_stop, watches and their done flags */
    pthread_cond_t feed_cond;  /* wakes the feeder (CLOCK_MONOTONIC) */
    pthread_cond_t feed_done;  /* a watch request was answered */
    bool feed_wake, feed_stop;
    watch_req_t *watches; /* waiting for the feeder, oldest first */
    pthread_t feeder;
    bool feeding; /* written by the main thread only, before serving and after it */
    /* The feeder thread's own: */
    int64_t feed_last;         /* the seq of the last change handed to the listener */
    int64_t mark_ms, mark_seq; /* feed_last at time mark_ms: what log_prune may delete */
    bool feed_failing;         /* the last round failed (logged once) */
    _Atomic int64_t position;  /* the seq being or last handed (sync_engine_position) */
    /* Names seen to exist (a hint, see apply_new): hashes of "service/name", direct-mapped. */
    _Atomic uint64_t known[KNOWN_SLOTS];
};

/* The Sync schema, one migration step per version (store/migrate.h). Version 1 is the schema
 * from before versioned migrations. Version 2 adds acl_enabled (on, as for a new file;
 * TASSA_SYNC_ACL=false switches it off at start-up) to a file from before access control,
 * whose services table version 1 leaves as it was; any later file already has it. */
static const migrate_step_t MIGRATIONS[] = {
    {"CREATE TABLE IF NOT EXISTS sync_services ("
     "  sid TEXT PRIMARY KEY, unique_name TEXT, friendly_name TEXT,"
     "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,"
     "  acl_enabled INTEGER NOT NULL DEFAULT 1);"
     "CREATE TABLE IF NOT EXISTS sync_permissions ("
     "  document_sid TEXT NOT NULL, identity TEXT NOT NULL, service_sid TEXT NOT NULL,"
     "  read INTEGER NOT NULL, write INTEGER NOT NULL, manage INTEGER NOT NULL,"
     "  PRIMARY KEY (document_sid, identity));"
     "CREATE TABLE IF NOT EXISTS sync_documents ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  sid TEXT NOT NULL UNIQUE, service_sid TEXT NOT NULL, unique_name TEXT,"
     "  data TEXT NOT NULL, revision INTEGER NOT NULL,"
     "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,"
     "  date_expires INTEGER, created_by TEXT NOT NULL,"
     "  UNIQUE (service_sid, unique_name));",
     NULL},
    {"ALTER TABLE sync_services ADD COLUMN acl_enabled INTEGER NOT NULL DEFAULT 1;",
     "SELECT acl_enabled FROM sync_services LIMIT 0"},
    /* Version 3: the change log of a shared store (empty on SQLite). */
    {"CREATE TABLE IF NOT EXISTS sync_changes ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
     "  deleted INTEGER NOT NULL, sid TEXT NOT NULL, service_sid TEXT NOT NULL,"
     "  unique_name TEXT, data TEXT, revision INTEGER NOT NULL, date_created INTEGER,"
     "  date_updated INTEGER, date_expires INTEGER, created_by TEXT, identity TEXT,"
     "  read INTEGER NOT NULL, readers_known INTEGER NOT NULL, all_readers INTEGER NOT NULL,"
     "  readers TEXT, date_logged INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS sync_changes_by_doc ON sync_changes (sid, seq);",
     NULL},
};

#define LOG_BATCH   256    /* changes the feeder reads per critical section */
#define LOG_POLL_MS 1000   /* the feeder's safety-net poll */
#define LOG_KEEP_MS 300000 /* changes older than this are pruned from the log */
#define LOG_CHANNEL "tassa_sync"

#define DOC_COLUMNS                                                                                \
    "sid, service_sid, unique_name, data, revision, date_created, date_updated, "                  \
    "date_expires, created_by"
#define LIVE "(date_expires IS NULL OR date_expires > ?)"

/* Inserts a service row when it is missing (lock held by the caller). */
static tassa_err ensure_service(store_t *s, const char *sid, const char *name)
{
    store_stmt_t *st =
        store_prepare(s, "INSERT INTO sync_services (sid, unique_name, friendly_name, date_created,"
                         " date_updated) VALUES (?, ?, ?, ?, ?) ON CONFLICT (sid) DO NOTHING");
    if (!st)
        return TASSA_ESTORE;
    int64_t now = store_now_ms();
    store_bind_text(st, 1, sid);
    store_bind_text(st, 2, name);
    store_bind_text(st, 3, name);
    store_bind_int64(st, 4, now);
    store_bind_int64(st, 5, now);
    int rc = store_step(st);
    store_release(s, st);
    return rc == STORE_DONE ? TASSA_OK : TASSA_ESTORE;
}

/* Frees a pending change. Accepts NULL. */
static void pending_free(pending_t *p)
{
    if (!p)
        return;
    sync_doc_clear(&p->change.doc);
    free(p->change.identity);
    sync_identities_free(p->change.readers, p->change.nreaders);
    free(p);
}

/* Links p at the tail of the commit-ordered list (store lock held, so in commit order). */
static void pending_append(sync_engine_t *e, pending_t *p)
{
    pthread_mutex_lock(&e->changes_lock);
    if (e->tail)
        e->tail->next = p;
    else
        e->changes = p;
    e->tail = p;
    pthread_mutex_unlock(&e->changes_lock);
}

/* Appends a change to the commit-ordered list (store lock held, so in commit order). NULL
 * when nobody listens, or out of memory (logged: that change will not reach the listener). */
static pending_t *pending_push(sync_engine_t *e, sync_change_kind_t kind, const sync_doc_t *doc,
                               bool deleted, const char *identity, bool read)
{
    if (!e->listener || e->shared) /* a shared store's feeder delivers from the log */
        return NULL;
    pending_t *p = calloc(1, sizeof *p);
    if (!p || sync_doc_copy(&p->change.doc, doc) ||
        (identity && !(p->change.identity = strdup(identity)))) {
        log_warn("event=sync_change_lost doc=%s reason=out_of_memory", doc->sid);
        pending_free(p);
        return NULL;
    }
    p->change.kind = kind;
    p->change.deleted = deleted;
    p->change.read = read;
    pending_append(e, p);
    return p;
}

/* Delivers the ready head of the list, in order (changes_lock held; released around each
 * call out). Only one thread delivers at a time. */
static void drain_locked(sync_engine_t *e)
{
    if (e->delivering)
        return; /* that thread will see what became ready meanwhile */
    e->delivering = true;
    while (e->changes && e->changes->state != PENDING_WAITING) {
        pending_t *p = e->changes;
        e->changes = p->next;
        if (!e->changes)
            e->tail = NULL;
        pthread_mutex_unlock(&e->changes_lock);
        if (p->state == PENDING_READY) {
            if (p->watch)
                p->watch(p->watch_ctx, &p->change.doc, NULL, 0);
            else if (e->listener)
                e->listener(e->listener_ctx, &p->change);
        }
        pthread_mutex_lock(&e->changes_lock);
        if (p->watch) {
            *p->watch_done = true;
            pthread_cond_broadcast(&e->changes_done);
        }
        pending_free(p);
    }
    e->delivering = false;
}

/* Settles a pending change once its commit is known (after store_unlock) and delivers what
 * is ready. p may be NULL; it must not be used afterwards. */
static void pending_settle(sync_engine_t *e, pending_t *p, bool committed)
{
    if (!p)
        return;
    pthread_mutex_lock(&e->changes_lock);
    p->state = committed ? PENDING_READY : PENDING_CANCELLED;
    drain_locked(e);
    pthread_mutex_unlock(&e->changes_lock);
}

static tassa_err readers_locked(sync_engine_t *e, const char *service, const char *doc_sid,
                                bool *all, char ***readers, size_t *n);
static tassa_err acl_enabled_locked(sync_engine_t *e, const char *svc, bool *enabled);

/* The change log (shared store) ------------------------------------------------------------ */

static tassa_err resolve_locked(sync_engine_t *e, const char *id, char out[SID_LEN + 1]);
static tassa_err find_locked(sync_engine_t *e, const char *service, const char *id,
                             sync_doc_t *out);

/* Appends a change to sync_changes and notifies every node of its seq (lock held, inside the
 * caller's savepoint, so the row and the write commit or roll back together). TASSA_OK and
 * nothing written unless the store is shared. ch->doc may carry only sid and service_sid. */
static tassa_err log_change(sync_engine_t *e, const sync_change_t *ch)
{
    if (!e->shared)
        return TASSA_OK;
    const sync_doc_t *d = &ch->doc;
    char *readers = NULL;
    if (ch->readers_known && !ch->all_readers) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < ch->nreaders; i++)
            json_array_append_new(arr, json_string(ch->readers[i]));
        readers = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
        json_decref(arr);
        if (!readers)
            return TASSA_ENOMEM;
    }
    store_stmt_t *st = store_prepare(
        e->store, "INSERT INTO sync_changes (kind, deleted, sid, service_sid, unique_name, data,"
                  " revision, date_created, date_updated, date_expires, created_by, identity,"
                  " read, readers_known, all_readers, readers, date_logged) VALUES (?, ?, ?, ?,"
                  " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq");
    if (!st) {
        free(readers);
        return TASSA_ESTORE;
    }
    store_bind_int64(st, 1, ch->kind);
    store_bind_int64(st, 2, ch->deleted);
    store_bind_text(st, 3, d->sid);
    store_bind_text(st, 4, d->service_sid);
    store_bind_text(st, 5, d->unique_name);
    store_bind_text(st, 6, d->data);
    store_bind_int64(st, 7, d->revision);
    store_bind_int64(st, 8, d->created_ms);
    store_bind_int64(st, 9, d->updated_ms);
    if (d->expires_ms)
        store_bind_int64(st, 10, d->expires_ms);
    store_bind_text(st, 11, d->created_by);
    store_bind_text(st, 12, ch->identity);
    store_bind_int64(st, 13, ch->read);
    store_bind_int64(st, 14, ch->readers_known);
    store_bind_int64(st, 15, ch->all_readers);
    store_bind_text(st, 16, readers);
    store_bind_int64(st, 17, store_now_ms());
    tassa_err err = TASSA_ESTORE;
    if (store_step(st) == STORE_ROW) {
        char payload[24];
        snprintf(payload, sizeof payload, "%lld", (long long)store_col_int64(st, 0));
        err = store_notify(e->store, LOG_CHANNEL, payload);
    }
    store_release(e->store, st);
    free(readers);
    return err;
}

/* log_change for a change of kind on doc with no readers attached. */
static tassa_err log_simple(sync_engine_t *e, sync_change_kind_t kind, const sync_doc_t *doc,
                            const char *identity, bool read)
{
    sync_change_t ch = {.kind = kind, .doc = *doc, .identity = (char *)identity, .read = read};
    return log_change(e, &ch);
}

/* Frees what a change read from the log owns. Accepts NULL. */
static void change_clear(sync_change_t *ch)
{
    if (!ch)
        return;
    sync_doc_clear(&ch->doc);
    free(ch->identity);
    sync_identities_free(ch->readers, ch->nreaders);
    memset(ch, 0, sizeof *ch);
}

/* Text column i as a malloc'd copy, NULL for SQL NULL; *oom set when the copy failed. */
static char *col_dup(store_stmt_t *st, int i, bool *oom)
{
    const char *v = store_col_text(st, i);
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy)
        *oom = true;
    return copy;
}

/* Reads the readers array of a logged delete (JSON text). false on OOM or bad text. */
static bool parse_readers(const char *text, sync_change_t *ch)
{
    json_t *arr = json_loads(text, 0, NULL);
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    bool ok = json_is_array(arr);
    if (ok && n && !(ch->readers = calloc(n, sizeof *ch->readers)))
        ok = false;
    for (size_t i = 0; ok && i < n; i++) {
        const char *id = json_string_value(json_array_get(arr, i));
        if (!id || !(ch->readers[i] = strdup(id)))
            ok = false;
        else
            ch->nreaders = i + 1;
    }
    json_decref(arr);
    return ok;
}

#define LOG_COLUMNS                                                                                \
    "seq, kind, deleted, sid, service_sid, unique_name, data, revision, date_created, "            \
    "date_updated, date_expires, created_by, identity, read, readers_known, all_readers, readers"

/* Reads the current log row into ch (lock held). false when out of memory (ch cleared). */
static bool row_to_change(store_stmt_t *st, sync_change_t *ch)
{
    bool oom = false;
    memset(ch, 0, sizeof *ch);
    ch->seq = store_col_int64(st, 0);
    ch->kind = (sync_change_kind_t)store_col_int64(st, 1);
    ch->deleted = store_col_int64(st, 2) != 0;
    sync_doc_t *d = &ch->doc;
    snprintf(d->sid, sizeof d->sid, "%s", store_col_text(st, 3) ? store_col_text(st, 3) : "");
    snprintf(d->service_sid, sizeof d->service_sid, "%s",
             store_col_text(st, 4) ? store_col_text(st, 4) : "");
    d->unique_name = col_dup(st, 5, &oom);
    d->data = col_dup(st, 6, &oom);
    d->revision = store_col_int64(st, 7);
    d->created_ms = store_col_int64(st, 8);
    d->updated_ms = store_col_int64(st, 9);
    d->expires_ms = store_col_int64(st, 10);
    snprintf(d->created_by, sizeof d->created_by, "%s",
             store_col_text(st, 11) ? store_col_text(st, 11) : "");
    ch->identity = col_dup(st, 12, &oom);
    ch->read = store_col_int64(st, 13) != 0;
    ch->readers_known = store_col_int64(st, 14) != 0;
    ch->all_readers = store_col_int64(st, 15) != 0;
    if (!oom && ch->readers_known && !ch->all_readers && store_col_text(st, 16) &&
        !parse_readers(store_col_text(st, 16), ch))
        oom = true;
    if (oom)
        change_clear(ch);
    return !oom;
}

/* Wakes the feeder (any thread; the store's session thread for a notification, where
 * payload NULL means "you may have missed some": a wake-up is all either needs). */
static void feeder_wake(void *ctx, const char *payload)
{
    sync_engine_t *e = ctx;
    (void)payload;
    pthread_mutex_lock(&e->feed_lock);
    e->feed_wake = true;
    pthread_cond_signal(&e->feed_cond);
    pthread_mutex_unlock(&e->feed_lock);
}

/* After a local write on a shared store: its change is in the log, tell the feeder now
 * rather than at the notification. */
static void wake_after_write(sync_engine_t *e, tassa_err err)
{
    if (e->shared && !err)
        feeder_wake(e, NULL);
}

/* The largest seq in the log (0 when empty), lock held. TASSA_ESTORE on failure. */
static tassa_err log_head(sync_engine_t *e, int64_t *head)
{
    store_stmt_t *st = store_prepare(e->store, "SELECT COALESCE(MAX(seq), 0) FROM sync_changes");
    if (!st)
        return TASSA_ESTORE;
    tassa_err err = store_step(st) == STORE_ROW ? TASSA_OK : TASSA_ESTORE;
    if (!err)
        *head = store_col_int64(st, 0);
    store_release(e->store, st);
    return err;
}

/* Deletes the log rows at least LOG_KEEP_MS old (any node may; every feeder reads far closer
 * to the head): those up to the feeder's place of LOG_KEEP_MS ago, a range of the primary
 * key, so no scan. Rows live LOG_KEEP_MS to twice that. Failure only leaves them for later. */
static void log_prune(sync_engine_t *e)
{
    int64_t now = store_now_ms();
    if (now - e->mark_ms < LOG_KEEP_MS)
        return;
    if (e->mark_seq > 0) {
        store_lock(e->store);
        store_stmt_t *st = store_prepare(e->store, "DELETE FROM sync_changes WHERE seq <= ?");
        if (st) {
            store_bind_int64(st, 1, e->mark_seq);
            store_step(st);
        }
        store_release(e->store, st);
        store_unlock(e->store);
    }
    e->mark_ms = now;
    e->mark_seq = e->feed_last;
}

/* Reads the logged states of document doc (lock held) after revision after and before its
 * current one, the newest SYNC_WATCH_HISTORY of them, oldest first, into r. Nothing when
 * after < 0. Failure leaves r without history (a resume then gets a snapshot). */
static void read_history(sync_engine_t *e, const sync_doc_t *doc, watch_req_t *r)
{
    if (r->after < 0 || doc->revision <= r->after + 1)
        return;
    store_stmt_t *st = store_prepare(e->store, "SELECT " LOG_COLUMNS " FROM sync_changes WHERE "
                                               "sid = ? AND kind = ? AND deleted = 0 AND "
                                               "revision > ? AND revision < ? ORDER BY seq DESC "
                                               "LIMIT ?");
    sync_doc_t *h = calloc(SYNC_WATCH_HISTORY, sizeof *h);
    size_t n = 0;
    if (st && h) {
        store_bind_text(st, 1, doc->sid);
        store_bind_int64(st, 2, SYNC_CHANGE_DOC);
        store_bind_int64(st, 3, r->after);
        store_bind_int64(st, 4, doc->revision);
        store_bind_int64(st, 5, SYNC_WATCH_HISTORY);
        sync_change_t ch;
        while (n < SYNC_WATCH_HISTORY && store_step(st) == STORE_ROW && row_to_change(st, &ch)) {
            h[SYNC_WATCH_HISTORY - 1 - n++] = ch.doc; /* taken over; newest last */
            ch.doc = (sync_doc_t){0};
            change_clear(&ch);
        }
    }
    store_release(e->store, st);
    if (h && n)
        memmove(h, h + SYNC_WATCH_HISTORY - n, n * sizeof *h);
    r->history = h;
    r->nhistory = n;
}

/* One round of the feeder: in one critical section, reads the changes after feed_last (at
 * most LOG_BATCH) and, when that reached the head of the log, the documents of the watches
 * in reqs, so each watch sees exactly the state after the batch. Once that is durable,
 * hands the changes to the listener in seq order and runs the watches. Returns true when the
 * batch was full (read again at once). Watches not served stay for the next round. */
static bool feed_round(sync_engine_t *e, watch_req_t **reqs)
{
    sync_change_t *batch = calloc(LOG_BATCH, sizeof *batch);
    size_t n = 0;
    bool full = false, failed = !batch;
    sync_doc_t *docs = NULL;
    size_t nreq = 0;
    for (watch_req_t *r = *reqs; r; r = r->next)
        nreq++;
    if (nreq && !(docs = calloc(nreq, sizeof *docs)))
        failed = true;
    store_lock(e->store);
    store_stmt_t *st = failed ? NULL
                              : store_prepare(e->store, "SELECT " LOG_COLUMNS " FROM sync_changes"
                                                        " WHERE seq > ? ORDER BY seq LIMIT ?");
    if (st) {
        store_bind_int64(st, 1, e->feed_last);
        store_bind_int64(st, 2, LOG_BATCH);
        int rc;
        while ((rc = store_step(st)) == STORE_ROW) {
            if (!row_to_change(st, &batch[n])) {
                failed = true;
                break;
            }
            n++;
        }
        if (rc < 0)
            failed = true;
        full = n == LOG_BATCH;
    } else {
        failed = true;
    }
    store_release(e->store, st);
    size_t i = 0;
    for (watch_req_t *r = *reqs; !failed && !full && r; r = r->next, i++) {
        char svc[SID_LEN + 1];
        r->err = resolve_locked(e, r->service, svc);
        if (!r->err)
            r->err = find_locked(e, svc, r->id, &docs[i]);
        if (!r->err)
            read_history(e, &docs[i], r);
    }
    if (store_unlock(e->store)) /* what it read may be gone (the group commit failed) */
        failed = true;
    if (!failed) {
        for (size_t k = 0; k < n; k++) {
            atomic_store(&e->position, batch[k].seq); /* first: see sync_engine_position */
            if (e->listener)
                e->listener(e->listener_ctx, &batch[k]);
            e->feed_last = batch[k].seq;
        }
    }
    if (!failed && !full) {
        i = 0;
        for (watch_req_t *r = *reqs; r; r = r->next, i++) {
            if (!r->err)
                r->fn(r->ctx, &docs[i], r->history, r->nhistory);
        }
    }
    for (watch_req_t *r = *reqs; r; r = r->next) {
        sync_doc_list_free(r->history, r->nhistory);
        r->history = NULL;
        r->nhistory = 0;
    }
    if (failed || !full) { /* a watch never waits out an outage: it fails */
        pthread_mutex_lock(&e->feed_lock);
        for (watch_req_t *r = *reqs; r; r = r->next) {
            if (failed)
                r->err = TASSA_ESTORE;
            r->done = true;
        }
        pthread_cond_broadcast(&e->feed_done);
        pthread_mutex_unlock(&e->feed_lock);
        *reqs = NULL;
    }
    for (size_t k = 0; k < n; k++)
        change_clear(&batch[k]);
    for (size_t k = 0; docs && k < nreq; k++)
        sync_doc_clear(&docs[k]);
    free(docs);
    free(batch);
    if (failed && !e->feed_failing) /* once per outage, not once a second */
        log_warn("event=sync_feed_failed after_seq=%lld retry_ms=%d", (long long)e->feed_last,
                 LOG_POLL_MS);
    else if (!failed && e->feed_failing)
        log_info("event=sync_feed_resumed after_seq=%lld", (long long)e->feed_last);
    e->feed_failing = failed;
    return full && !failed;
}

static struct timespec mono_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/* The feeder thread: one round per wake-up (notification, local write, watch) or poll. */
static void *feeder_main(void *arg)
{
    sync_engine_t *e = arg;
    watch_req_t *reqs = NULL; /* taken from e->watches, oldest first */
    bool again = true;
    pthread_mutex_lock(&e->feed_lock);
    while (!e->feed_stop) {
        if (!again && !e->feed_wake && !e->watches) {
            struct timespec until = mono_after(LOG_POLL_MS);
            pthread_cond_timedwait(&e->feed_cond, &e->feed_lock, &until);
            if (e->feed_stop)
                break;
        }
        e->feed_wake = false;
        if (!reqs) {
            reqs = e->watches;
            e->watches = NULL;
        }
        pthread_mutex_unlock(&e->feed_lock);
        again = feed_round(e, &reqs);
        log_prune(e);
        pthread_mutex_lock(&e->feed_lock);
    }
    /* Stopping: whoever still waits gets TASSA_EUNAVAIL. */
    for (watch_req_t *lists[2] = {reqs, e->watches}, **l = lists; l < lists + 2; l++) {
        for (watch_req_t *r = *l; r; r = r->next) {
            r->err = TASSA_EUNAVAIL;
            r->done = true;
        }
    }
    e->watches = NULL;
    pthread_cond_broadcast(&e->feed_done);
    pthread_mutex_unlock(&e->feed_lock);
    return NULL;
}

/* Starts the feeder at the head of the log (main thread, with a listener set). */
static tassa_err feeder_start(sync_engine_t *e)
{
    int64_t head = 0;
    store_lock(e->store);
    tassa_err err = log_head(e, &head);
    tassa_err durable = store_unlock(e->store);
    if (err || durable)
        return TASSA_ESTORE;
    e->feed_last = head;
    atomic_store(&e->position, head);
    e->feed_stop = false;
    e->mark_ms = store_now_ms();
    e->mark_seq = head;
    e->feed_failing = false;
    if (store_listen(e->store, LOG_CHANNEL, feeder_wake, e))
        log_warn("event=sync_listen_failed fallback=poll_ms_%d", LOG_POLL_MS);
    /* The thread must not take SIGTERM/SIGINT away from main's sigwait. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&e->feeder, NULL, feeder_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        store_unlisten(e->store, feeder_wake, e);
        return TASSA_EINTERNAL;
    }
    e->feeding = true;
    return TASSA_OK;
}

/* Stops the feeder: no listener call runs after this returns. Main thread. */
static void feeder_stop(sync_engine_t *e)
{
    if (!e->feeding)
        return;
    store_unlisten(e->store, feeder_wake, e);
    pthread_mutex_lock(&e->feed_lock);
    e->feed_stop = true;
    pthread_cond_signal(&e->feed_cond);
    pthread_mutex_unlock(&e->feed_lock);
    pthread_join(e->feeder, NULL);
    e->feeding = false;
}

/* sync_doc_watch on a shared store: the feeder reads the document between two batches and
 * runs fn there. Waits for it. */
static tassa_err watch_by_feeder(sync_engine_t *e, const char *service, const char *id,
                                 int64_t after, sync_watch_fn fn, void *ctx)
{
    watch_req_t r = {.service = service, .id = id, .fn = fn, .ctx = ctx, .after = after};
    pthread_mutex_lock(&e->feed_lock);
    watch_req_t **tail = &e->watches;
    while (*tail)
        tail = &(*tail)->next;
    *tail = &r;
    pthread_cond_signal(&e->feed_cond);
    while (!r.done)
        pthread_cond_wait(&e->feed_done, &e->feed_lock);
    pthread_mutex_unlock(&e->feed_lock);
    return r.err;
}

static void *settle_main(void *arg);

sync_engine_t *sync_engine_new(store_t *s, const char *account_sid, const char *configured_service,
                               errmsg_t *em)
{
    sync_engine_t *e = calloc(1, sizeof *e);
    char *def = NULL;
    if (!e) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    e->store = s;
    e->shared = store_shared(s);
    pthread_mutex_init(&e->changes_lock, NULL);
    pthread_cond_init(&e->changes_done, NULL);
    pthread_mutex_init(&e->settle_lock, NULL);
    pthread_cond_init(&e->settle_cond, NULL);
    pthread_cond_init(&e->settle_idle, NULL);
    pthread_mutex_init(&e->feed_lock, NULL);
    pthread_cond_init(&e->feed_done, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->feed_cond, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(e->account_sid, sizeof e->account_sid, "%s", account_sid ? account_sid : "");
    if (pthread_create(&e->settler, NULL, settle_main, e) != 0) {
        err_set(em, TASSA_EINTERNAL, "cannot start the Sync settle thread");
        goto fail;
    }
    e->settling = true;
    if (store_migrate(s, "sync", MIGRATIONS, sizeof MIGRATIONS / sizeof MIGRATIONS[0], em))
        goto fail;
    if (store_meta_get(s, "sync_default_service", &def) == TASSA_OK) {
        snprintf(e->default_service, sizeof e->default_service, "%s", def);
    } else {
        char sid[SID_LEN + 1];
        if (sid_new("IS", sid) || store_meta_claim(s, "sync_default_service", sid, &def)) {
            err_set(em, TASSA_ESTORE, "cannot create the default Sync service");
            goto fail;
        }
        snprintf(e->default_service, sizeof e->default_service, "%s", def); /* ours or a peer's */
    }
    store_lock(s);
    tassa_err err = ensure_service(s, e->default_service, "default");
    if (!err && configured_service && sid_valid(configured_service, "IS"))
        err = ensure_service(s, configured_service, configured_service);
    store_unlock(s);
    if (err) {
        err_set(em, err, "cannot create the Sync services");
        goto fail;
    }
    free(def);
    return e;
fail:
    free(def);
    sync_engine_free(e);
    return NULL;
}

void sync_engine_free(sync_engine_t *e)
{
    if (!e)
        return;
    if (e->settling) { /* every write begun is reported first: its commit always ends */
        pthread_mutex_lock(&e->settle_lock);
        while (e->settle_open > 0)
            pthread_cond_wait(&e->settle_idle, &e->settle_lock);
        e->settle_stop = true;
        pthread_cond_signal(&e->settle_cond);
        pthread_mutex_unlock(&e->settle_lock);
        pthread_join(e->settler, NULL);
    }
    feeder_stop(e);
    while (e->changes) {
        pending_t *p = e->changes;
        e->changes = p->next;
        pending_free(p);
    }
    pthread_cond_destroy(&e->changes_done);
    pthread_mutex_destroy(&e->changes_lock);
    pthread_cond_destroy(&e->settle_cond);
    pthread_cond_destroy(&e->settle_idle);
    pthread_mutex_destroy(&e->settle_lock);
    pthread_cond_destroy(&e->feed_cond);
    pthread_cond_destroy(&e->feed_done);
    pthread_mutex_destroy(&e->feed_lock);
    free(e);
}

int64_t sync_engine_position(sync_engine_t *e)
{
    return e->feeding ? atomic_load(&e->position) : -1;
}

tassa_err sync_engine_set_listener(sync_engine_t *e, sync_listener_fn fn, void *ctx)
{
    feeder_stop(e);
    e->listener = fn;
    e->listener_ctx = ctx;
    if (!fn || !e->shared)
        return TASSA_OK;
    tassa_err err = feeder_start(e);
    if (err) {
        log_error("event=sync_feeder_failed err=%s", tassa_strerror(err));
        e->listener = NULL;
        e->listener_ctx = NULL;
    }
    return err;
}

/* Resolves the service with the lock held. */
static tassa_err resolve_locked(sync_engine_t *e, const char *id, char out[SID_LEN + 1])
{
    if (!strcmp(id, "default")) {
        memcpy(out, e->default_service, SID_LEN + 1);
        return TASSA_OK;
    }
    store_stmt_t *st =
        store_prepare(e->store, "SELECT sid FROM sync_services WHERE sid = ? OR unique_name = ?");
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, id);
    store_bind_text(st, 2, id);
    int rc = store_step(st);
    tassa_err err = rc < 0 ? TASSA_ESTORE : TASSA_ENOTFOUND; /* an outage is not "absent" */
    if (rc == STORE_ROW) {
        snprintf(out, SID_LEN + 1, "%s", store_col_text(st, 0));
        err = TASSA_OK;
    }
    store_release(e->store, st);
    return err;
}

tassa_err sync_service_resolve(sync_engine_t *e, const char *id, char out[SID_LEN + 1])
{
    store_lock(e->store);
    tassa_err err = resolve_locked(e, id, out);
    store_unlock(e->store);
    return err;
}

json_t *sync_service_json(sync_engine_t *e, const char *id, const char *base_url)
{
    json_t *j = NULL;
    store_lock(e->store);
    store_stmt_t *st = store_prepare(
        e->store, "SELECT sid, unique_name, friendly_name, date_created, date_updated, "
                  "acl_enabled FROM sync_services WHERE sid = ? OR unique_name = ? OR "
                  "(? = 'default' AND sid = ?)");
    if (!st)
        goto out;
    store_bind_text(st, 1, id);
    store_bind_text(st, 2, id);
    store_bind_text(st, 3, id);
    store_bind_text(st, 4, e->default_service);
    if (store_step(st) == STORE_ROW) {
        const char *sid = store_col_text(st, 0);
        char created[TIMEFMT_LEN], updated[TIMEFMT_LEN], url[512], docs[560];
        timefmt_iso(store_col_int64(st, 3), created);
        timefmt_iso(store_col_int64(st, 4), updated);
        snprintf(url, sizeof url, "%s/v1/Services/%s", base_url, sid);
        snprintf(docs, sizeof docs, "%s/Documents", url);
        j = json_pack(
            "{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:{s:s}, s:b, s:b, s:b, s:i, "
            "s:n, s:b}",
            "sid", sid, "account_sid", e->account_sid, "unique_name", store_col_text(st, 1),
            "friendly_name", store_col_text(st, 2), "date_created", created, "date_updated",
            updated, "url", url, "links", "documents", docs, "reachability_webhooks_enabled", 0,
            "acl_enabled", store_col_int64(st, 5) != 0, "reachability_debouncing_enabled", 0,
            "reachability_debouncing_window", 5000, "webhook_url", "webhooks_from_rest_enabled", 0);
    }
out:
    store_release(e->store, st);
    store_unlock(e->store);
    return j;
}

/* Validates Data: a JSON object whose compact form fits in 16 KiB. Returns the compact text
 * (malloc'd) or NULL with the error in *err and em. */
static char *normalise_data(const char *data, tassa_err *err, errmsg_t *em)
{
    json_error_t jerr;
    json_t *j = json_loads(data, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        *err = err_set(em, TASSA_EINVAL, "Data is not valid JSON (line %d column %d: %s)",
                       jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *err = err_set(em, TASSA_EINVAL, "Data must be a JSON object");
        return NULL;
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) {
        *err = err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    if (strlen(text) > SYNC_DOC_MAX_DATA) {
        *err = err_set(em, TASSA_EDOCTOOBIG, "Data is %zu bytes; a document holds at most %d",
                       strlen(text), SYNC_DOC_MAX_DATA);
        free(text);
        return NULL;
    }
    return text;
}

/* Checks a unique name: 1..320 bytes of UTF-8, no control characters, not shaped like a SID. */
static tassa_err check_unique_name(const char *name, errmsg_t *em)
{
    size_t len = strlen(name);
    if (len == 0 || len > SYNC_UNIQUE_NAME_MAX)
        return err_set(em, TASSA_EINVAL, "UniqueName must be 1 to %d characters",
                       SYNC_UNIQUE_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return err_set(em, TASSA_EINVAL, "UniqueName contains a control character");
    }
    if (!params_utf8_valid(name, len)) /* the HTTP layer refuses it too; callers may not */
        return err_set(em, TASSA_EINVAL, "UniqueName is not valid UTF-8");
    if (sid_valid(name, "ET"))
        return err_set(em, TASSA_EINVAL, "UniqueName must not look like a document SID");
    return TASSA_OK;
}

/* Reads the current row into d (lock held). */
static void row_to_doc(store_stmt_t *st, sync_doc_t *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->sid, sizeof d->sid, "%s", store_col_text(st, 0));
    snprintf(d->service_sid, sizeof d->service_sid, "%s", store_col_text(st, 1));
    if (!store_col_is_null(st, 2))
        d->unique_name = strdup(store_col_text(st, 2));
    d->data = strdup(store_col_text(st, 3));
    d->revision = store_col_int64(st, 4);
    d->created_ms = store_col_int64(st, 5);
    d->updated_ms = store_col_int64(st, 6);
    d->expires_ms = store_col_is_null(st, 7) ? 0 : store_col_int64(st, 7);
    snprintf(d->created_by, sizeof d->created_by, "%s", store_col_text(st, 8));
}

/* Finds a live document by the query sql, whose parameters are the service, id (once or twice)
 * and the time (lock held). */
static tassa_err find_row(sync_engine_t *e, const char *sql, const char *service, const char *id,
                          sync_doc_t *out)
{
    store_stmt_t *st = store_prepare(e->store, sql);
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, service);
    store_bind_text(st, 2, id);
    store_bind_int64(st, 3, store_now_ms());
    int rc = store_step(st);
    tassa_err err = rc < 0 ? TASSA_ESTORE : TASSA_ENOTFOUND; /* an outage is not "absent" */
    if (rc == STORE_ROW) {
        row_to_doc(st, out);
        err = out->data ? TASSA_OK : TASSA_ENOMEM;
    }
    store_release(e->store, st);
    return err;
}

/* Finds a live document by SID or unique name (lock held). */
static tassa_err find_locked(sync_engine_t *e, const char *service, const char *id, sync_doc_t *out)
{
    return find_row(
        e,
        "SELECT " DOC_COLUMNS " FROM sync_documents WHERE service_sid = ?1 AND "
        "(sid = ?2 OR unique_name = ?2) AND (date_expires IS NULL OR date_expires > ?3)",
        service, id, out);
}

/* Finds a live document by unique name alone (lock held): the name's index, for a name that
 * check_unique_name accepted (never SID-like). */
static tassa_err find_name_locked(sync_engine_t *e, const char *service, const char *name,
                                  sync_doc_t *out)
{
    return find_row(e,
                    "SELECT " DOC_COLUMNS " FROM sync_documents WHERE service_sid = ?1 AND "
                    "unique_name = ?2 AND (date_expires IS NULL OR date_expires > ?3)",
                    service, name, out);
}

/* Twilio's 404 for a service that does not exist. */
static tassa_err service_not_found(errmsg_t *em, const char *service)
{
    return err_set(em, TASSA_ENOTFOUND, "The requested resource /Services/%.40s was not found",
                   service);
}

static tassa_err not_found(errmsg_t *em, const char *service, const char *id)
{
    return err_set(em, TASSA_ENOTFOUND,
                   "The requested resource /Services/%.40s/Documents/%.80s was not found", service,
                   id);
}

/* Deletes a document row and its permissions (lock held, inside a savepoint). */
static tassa_err delete_row(sync_engine_t *e, const char *sid)
{
    static const char *const sql[] = {"DELETE FROM sync_documents WHERE sid = ?",
                                      "DELETE FROM sync_permissions WHERE document_sid = ?"};
    for (size_t i = 0; i < 2; i++) {
        store_stmt_t *st = store_prepare(e->store, sql[i]);
        if (!st)
            return TASSA_ESTORE;
        store_bind_text(st, 1, sid);
        int rc = store_step(st);
        store_release(e->store, st);
        if (rc != STORE_DONE)
            return TASSA_ESTORE;
    }
    return TASSA_OK;
}

/* Deletes the expired document that still holds unique_name in service svc, if any (lock
 * held, inside a savepoint); *purged says whether there was one. */
static tassa_err purge_expired_name(sync_engine_t *e, const char *svc, const char *unique_name,
                                    int64_t now, bool *purged)
{
    *purged = false;
    store_stmt_t *st = store_prepare(e->store, "SELECT sid FROM sync_documents WHERE "
                                               "service_sid = ? AND unique_name = ? AND "
                                               "date_expires <= ?");
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, svc);
    store_bind_text(st, 2, unique_name);
    store_bind_int64(st, 3, now);
    char sid[SID_LEN + 1] = "";
    int rc = store_step(st);
    if (rc == STORE_ROW)
        snprintf(sid, sizeof sid, "%s", store_col_text(st, 0) ? store_col_text(st, 0) : "");
    store_release(e->store, st);
    if (rc < 0)
        return TASSA_ESTORE;
    *purged = sid[0] != '\0';
    return *purged ? delete_row(e, sid) : TASSA_OK;
}

/* Inserts the row of out (filled by insert_locked) with data text, unless the name (or, never
 * in practice, the SID) is taken: *inserted says which (lock held, inside a savepoint). */
static tassa_err insert_row(sync_engine_t *e, const sync_doc_t *out, const char *text,
                            bool *inserted)
{
    store_stmt_t *st = store_prepare(e->store, "INSERT INTO sync_documents (" DOC_COLUMNS
                                               ") VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)"
                                               " ON CONFLICT DO NOTHING");
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, out->sid);
    store_bind_text(st, 2, out->service_sid);
    if (out->unique_name)
        store_bind_text(st, 3, out->unique_name);
    store_bind_text(st, 4, text);
    store_bind_int64(st, 5, out->created_ms);
    store_bind_int64(st, 6, out->updated_ms);
    if (out->expires_ms)
        store_bind_int64(st, 7, out->expires_ms);
    store_bind_text(st, 8, out->created_by);
    int rc = store_step(st);
    store_release(e->store, st);
    if (rc != STORE_DONE)
        return TASSA_ESTORE;
    *inserted = store_changes(e->store) == 1;
    return TASSA_OK;
}

/* Inserts a new document (lock held, inside a savepoint), filling out (taking over text on
 * success). TASSA_EDUPNAME when a live document holds the name. The insert itself finds a
 * taken name, by the name's unique index: only then is an expired holder looked for, deleted
 * (with its permissions: it no longer holds its name) and the insert made again. */
static tassa_err insert_locked(sync_engine_t *e, const char *svc, const char *unique_name,
                               char **text, long ttl, const char *created_by, sync_doc_t *out,
                               errmsg_t *em)
{
    int64_t now = store_now_ms();
    memset(out, 0, sizeof *out);
    if (sid_new("ET", out->sid))
        return TASSA_EINTERNAL;
    snprintf(out->service_sid, sizeof out->service_sid, "%s", svc);
    out->created_ms = out->updated_ms = now;
    out->expires_ms = ttl ? now + ttl * 1000 : 0;
    snprintf(out->created_by, sizeof out->created_by, "%s", created_by ? created_by : "system");
    if (unique_name && !(out->unique_name = strdup(unique_name)))
        return TASSA_ENOMEM;
    bool inserted = false, purged = false;
    tassa_err err = insert_row(e, out, *text, &inserted);
    if (!err && !inserted && unique_name &&
        !(err = purge_expired_name(e, svc, unique_name, now, &purged)) && purged)
        err = insert_row(e, out, *text, &inserted);
    if (!err && !inserted)
        err = err_set(em, TASSA_EDUPNAME, "Unique name already exists: %.80s", unique_name);
    if (err) {
        sync_doc_clear(out);
        return err;
    }
    out->data = *text;
    *text = NULL;
    return TASSA_OK;
}

/* Writes doc's next revision (lock held, inside a savepoint): text (taken over) replaces the
 * data when not NULL, ttl as for sync_doc_update. */
static tassa_err update_locked(sync_engine_t *e, sync_doc_t *doc, char **text, long ttl)
{
    int64_t now = store_now_ms();
    if (*text) {
        free(doc->data);
        doc->data = *text;
        *text = NULL;
    }
    if (ttl >= 0)
        doc->expires_ms = ttl ? now + ttl * 1000 : 0;
    doc->revision++;
    doc->updated_ms = now;
    /* Compare-and-set on the revision read: a stale writer never overwrites (with every
     * critical section serialized it cannot happen, but the database is the judge). */
    store_stmt_t *st = store_prepare(e->store, "UPDATE sync_documents SET data = ?, revision = ?,"
                                               " date_updated = ?, date_expires = ? WHERE sid = ?"
                                               " AND revision = ?");
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, doc->data);
    store_bind_int64(st, 2, doc->revision);
    store_bind_int64(st, 3, now);
    if (doc->expires_ms)
        store_bind_int64(st, 4, doc->expires_ms);
    store_bind_text(st, 5, doc->sid);
    store_bind_int64(st, 6, doc->revision - 1);
    int rc = store_step(st);
    store_release(e->store, st);
    if (rc != STORE_DONE)
        return TASSA_ESTORE;
    return store_changes(e->store) == 1 ? TASSA_OK : TASSA_EREVISION;
}

/* Ends a write's critical section up to the unlock: releases or rolls back the savepoint
 * and queues the change for the listener (still under the lock: commit order). Returns the
 * first error; *p the pending change (NULL when none). */
static tassa_err end_section(sync_engine_t *e, tassa_err err, const sync_doc_t *doc, pending_t **p)
{
    if (!err && doc)
        err = log_simple(e, SYNC_CHANGE_DOC, doc, NULL, false);
    if (err)
        store_rollback(e->store);
    else
        err = store_commit(e->store);
    *p = !err && doc ? pending_push(e, SYNC_CHANGE_DOC, doc, false, NULL, false) : NULL;
    return err;
}

/* After the commit is settled: delivers (or cancels) the change. durable is what the unlock
 * said; returns the first error. */
static tassa_err after_commit(sync_engine_t *e, tassa_err err, tassa_err durable,
                              const sync_doc_t *doc, pending_t *p)
{
    if (!err)
        err = durable; /* the group commit failed: nothing was stored */
    if (!err && doc)
        metrics_add(M_DOCS_WRITTEN, 1, NULL);
    pending_settle(e, p, !err);
    wake_after_write(e, doc ? err : TASSA_EINVAL);
    return err;
}

/* Ends a write: end_section, unlocks (waiting for the group commit) and delivers. */
static tassa_err finish_write(sync_engine_t *e, tassa_err err, const sync_doc_t *doc)
{
    pending_t *p;
    err = end_section(e, err, doc, &p);
    return after_commit(e, err, store_unlock(e->store), doc, p);
}

/* An asynchronous write between its critical section and its result (sync_doc_*_async). */
struct sync_write {
    struct sync_write *next; /* on the engine's settle queue */
    sync_engine_t *e;
    store_waiter_t waiter;
    pending_t *p;
    tassa_err err, durable;
    errmsg_t em;
    sync_doc_t doc;
    bool changed;
    sync_doc_done_fn done;
    void *ctx;
};

/* The settle thread: ends each queued write (delivery to the listener reads the store, which
 * the committer thread that completes a commit must not do), then reports it. */
static void *settle_main(void *arg)
{
    sync_engine_t *e = arg;
    pthread_mutex_lock(&e->settle_lock);
    for (;;) {
        while (!e->settle_head && !e->settle_stop)
            pthread_cond_wait(&e->settle_cond, &e->settle_lock);
        sync_write_t *w = e->settle_head;
        if (!w)
            break; /* stopping, and nothing is left */
        e->settle_head = w->next;
        if (!e->settle_head)
            e->settle_tail = NULL;
        pthread_mutex_unlock(&e->settle_lock);
        w->err = after_commit(e, w->err, w->durable, w->changed ? &w->doc : NULL, w->p);
        if (w->err)
            w->changed = false;
        w->done(w->ctx, w->err, w->err ? NULL : &w->doc, w->changed, &w->em);
        sync_doc_clear(&w->doc);
        free(w);
        pthread_mutex_lock(&e->settle_lock);
        if (--e->settle_open == 0)
            pthread_cond_broadcast(&e->settle_idle);
    }
    pthread_mutex_unlock(&e->settle_lock);
    return NULL;
}

/* store_unlock_async's completion (the committer thread, or the writer's own): queue it. */
static void write_committed(void *ctx, tassa_err durable)
{
    sync_write_t *w = ctx;
    sync_engine_t *e = w->e;
    w->durable = durable;
    pthread_mutex_lock(&e->settle_lock);
    if (e->settle_tail)
        e->settle_tail->next = w;
    else
        e->settle_head = w;
    e->settle_tail = w;
    pthread_cond_signal(&e->settle_cond);
    pthread_mutex_unlock(&e->settle_lock);
}

/* A new asynchronous write, counted open; NULL when out of memory, after done reported it. */
static sync_write_t *write_new(sync_engine_t *e, sync_doc_done_fn done, void *ctx)
{
    sync_write_t *w = calloc(1, sizeof *w);
    if (!w) {
        errmsg_t em = {{0}};
        done(ctx, err_set(&em, TASSA_ENOMEM, "out of memory"), NULL, false, &em);
        return NULL;
    }
    w->e = e;
    w->done = done;
    w->ctx = ctx;
    pthread_mutex_lock(&e->settle_lock);
    e->settle_open++;
    pthread_mutex_unlock(&e->settle_lock);
    return w;
}

/* Ends w's critical section (lock held) and hands it to the committer. */
static void finish_write_async(sync_write_t *w)
{
    sync_engine_t *e = w->e;
    w->err = end_section(e, w->err, w->changed ? &w->doc : NULL, &w->p);
    store_unlock_async(e->store, &w->waiter, write_committed, w);
}

/* Reports a write that failed before its critical section (the calling thread). */
static void write_refused(sync_write_t *w, tassa_err err)
{
    w->err = err;
    w->changed = false;
    w->p = NULL;
    write_committed(w, TASSA_OK);
}

/* Checks a create's input (no lock): the normalised data text (malloc'd) or NULL with err. */
static char *create_input(const char *unique_name, const char *data, long ttl, tassa_err *err,
                          errmsg_t *em)
{
    *err = TASSA_OK;
    if (unique_name && (*err = check_unique_name(unique_name, em)))
        return NULL;
    if (ttl < 0 || ttl > 31536000) {
        *err = err_set(em, TASSA_EINVAL, "Ttl must be from 0 to 31536000 seconds");
        return NULL;
    }
    return normalise_data(data ? data : "{}", err, em);
}

/* A create's critical section (lock held; the savepoint begun here, ended by the caller). */
static tassa_err create_locked(sync_engine_t *e, const char *service, const char *unique_name,
                               char **text, long ttl, const char *created_by, sync_doc_t *out,
                               errmsg_t *em)
{
    char svc[SID_LEN + 1];
    tassa_err err = store_begin(e->store);
    if (err)
        return err;
    if ((err = resolve_locked(e, service, svc)))
        return service_not_found(em, service);
    return insert_locked(e, svc, unique_name, text, ttl, created_by, out, em);
}

tassa_err sync_doc_create(sync_engine_t *e, const char *service, const char *unique_name,
                          const char *data, long ttl, const char *created_by, sync_doc_t *out,
                          errmsg_t *em)
{
    tassa_err err;
    memset(out, 0, sizeof *out);
    char *text = create_input(unique_name, data, ttl, &err, em);
    if (!text)
        return err;
    store_lock(e->store);
    err = create_locked(e, service, unique_name, &text, ttl, created_by, out, em);
    err = finish_write(e, err, err ? NULL : out);
    free(text);
    if (err)
        sync_doc_clear(out);
    return err;
}

void sync_doc_create_async(sync_engine_t *e, const char *service, const char *unique_name,
                           const char *data, long ttl, const char *created_by,
                           sync_doc_done_fn done, void *ctx)
{
    sync_write_t *w = write_new(e, done, ctx);
    if (!w)
        return;
    tassa_err err;
    char *text = create_input(unique_name, data, ttl, &err, &w->em);
    if (!text) {
        write_refused(w, err);
        return;
    }
    store_lock(e->store);
    w->err = create_locked(e, service, unique_name, &text, ttl, created_by, &w->doc, &w->em);
    w->changed = !w->err;
    free(text);
    finish_write_async(w);
}

tassa_err sync_doc_fetch(sync_engine_t *e, const char *service, const char *id, sync_doc_t *out,
                         errmsg_t *em)
{
    char svc[SID_LEN + 1];
    memset(out, 0, sizeof *out);
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (!err)
        err = find_locked(e, svc, id, out);
    store_unlock(e->store);
    if (err == TASSA_ENOTFOUND)
        return not_found(em, service, id);
    return err;
}

/* Checks an update's input (no lock): *text the normalised data (malloc'd; NULL when data is
 * NULL). */
static tassa_err update_input(const char *data, long ttl, char **text, errmsg_t *em)
{
    tassa_err err = TASSA_OK;
    *text = NULL;
    if (ttl < -1 || ttl > 31536000)
        return err_set(em, TASSA_EINVAL, "Ttl must be from 0 to 31536000 seconds");
    if (data && !(*text = normalise_data(data, &err, em)))
        return err;
    return TASSA_OK;
}

/* An update's critical section (lock held; the savepoint begun here, ended by the caller).
 * out holds what was read (cleared by the caller) and, on success, the new state. */
static tassa_err update_locked_checked(sync_engine_t *e, const char *service, const char *id,
                                       char **text, long ttl, const char *if_match, sync_doc_t *out,
                                       errmsg_t *em)
{
    char svc[SID_LEN + 1];
    tassa_err err = store_begin(e->store);
    if (err)
        return err;
    if ((err = resolve_locked(e, service, svc)))
        return err;
    if ((err = find_locked(e, svc, id, out)) == TASSA_ENOTFOUND)
        return not_found(em, service, id);
    if (err)
        return err;
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)out->revision);
    if (if_match && strcmp(if_match, rev) != 0)
        return err_set(em, TASSA_EREVISION,
                       "The revision of the Document (%s) does not match the expected revision "
                       "(%.30s)",
                       rev, if_match);
    return update_locked(e, out, text, ttl);
}

tassa_err sync_doc_update(sync_engine_t *e, const char *service, const char *id, const char *data,
                          long ttl, const char *if_match, sync_doc_t *out, errmsg_t *em)
{
    char *text;
    memset(out, 0, sizeof *out);
    tassa_err err = update_input(data, ttl, &text, em);
    if (err)
        return err;
    store_lock(e->store);
    err = update_locked_checked(e, service, id, &text, ttl, if_match, out, em);
    err = finish_write(e, err, err ? NULL : out);
    free(text);
    if (err)
        sync_doc_clear(out);
    return err;
}

void sync_doc_update_async(sync_engine_t *e, const char *service, const char *id, const char *data,
                           long ttl, const char *if_match, sync_doc_done_fn done, void *ctx)
{
    sync_write_t *w = write_new(e, done, ctx);
    if (!w)
        return;
    char *text;
    tassa_err err = update_input(data, ttl, &text, &w->em);
    if (err) {
        write_refused(w, err);
        return;
    }
    store_lock(e->store);
    w->err = update_locked_checked(e, service, id, &text, ttl, if_match, &w->doc, &w->em);
    w->changed = !w->err;
    free(text);
    finish_write_async(w);
}

/* fn's merge of current (stored data text, or NULL for no document), outside every lock: *text
 * the new data (malloc'd), or NULL when fn leaves it unchanged. */
static tassa_err merge_text(sync_merge_fn fn, void *ctx, const char *current_text, const char *name,
                            char *reason, size_t reason_len, char **text, errmsg_t *em)
{
    *text = NULL;
    json_t *current = NULL, *next = NULL;
    if (current_text && !(current = json_loads(current_text, 0, NULL)))
        return err_set(em, TASSA_ESTORE, "stored data of %.80s is not JSON", name);
    reason[0] = '\0';
    next = fn(ctx, current, reason, reason_len);
    json_decref(current);
    if (!next)
        return TASSA_OK;
    *text = json_is_object(next) ? json_dumps(next, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(next);
    if (!*text)
        return err_set(em, TASSA_EINVAL, "document data must be a JSON object");
    if (strlen(*text) > SYNC_DOC_MAX_DATA) {
        size_t n = strlen(*text);
        free(*text);
        *text = NULL;
        return err_set(em, TASSA_EDOCTOOBIG, "Data is %zu bytes; a document holds at most %d", n,
                       SYNC_DOC_MAX_DATA);
    }
    return TASSA_OK;
}

/* The slot of name (in service, as the caller spelled it) in the engine's hint of names
 * that exist, and the hash it holds when the name is there (never 0). */
static _Atomic uint64_t *known_slot(sync_engine_t *e, const char *service, const char *name,
                                    uint64_t *h)
{
    *h = hash_str(hash_str(hash_str(HASH_SEED, service), "/"), name) | 1;
    return &e->known[*h % KNOWN_SLOTS];
}

static void known_set(sync_engine_t *e, const char *service, const char *name)
{
    uint64_t h;
    atomic_store_explicit(known_slot(e, service, name, &h), h, memory_order_relaxed);
}

/* Whether name was seen to exist. Only a hint: another node, a deletion or a hash collision may
 * have made it wrong, which costs apply_new a section and never changes an outcome. */
static bool known(sync_engine_t *e, const char *service, const char *name)
{
    uint64_t h;
    return atomic_load_explicit(known_slot(e, service, name, &h), memory_order_relaxed) == h;
}

/* The read of an apply: the document as it is now (*exists; doc cleared by the caller) and,
 * outside every lock, fn's merge of its data (merge_text). The read does not wait for
 * durability: apply_write's compare-and-set only matches the state read (see
 * store_unlock_nowait). */
static tassa_err apply_read(sync_engine_t *e, const char *service, const char *name,
                            sync_merge_fn fn, void *ctx, char *reason, size_t reason_len,
                            char svc[SID_LEN + 1], sync_doc_t *doc, bool *exists, char **text,
                            errmsg_t *em)
{
    *text = NULL;
    *exists = false;
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    bool no_service = err == TASSA_ENOTFOUND;
    if (!err && (err = find_name_locked(e, svc, name, doc)) == TASSA_OK)
        *exists = true;
    tassa_err lost = store_unlock_nowait(e->store);
    if (lost)
        return err_set(em, TASSA_ESTORE, "the store failed");
    if (no_service) /* final: there is nowhere to create it */
        return service_not_found(em, service);
    if (err == TASSA_ENOTFOUND)
        err = TASSA_OK;
    if (err)
        return err;
    if (*exists)
        known_set(e, service, name);
    return merge_text(fn, ctx, *exists ? doc->data : NULL, name, reason, reason_len, text, em);
}

/* The write of an apply (lock held; the savepoint begun here, ended by the caller): a
 * compare-and-set on the revision apply_read saw, or an insert when it saw none. doc takes
 * the new state. TASSA_EREVISION or TASSA_EDUPNAME when another writer came first (read
 * again). */
static tassa_err apply_write_locked(sync_engine_t *e, const char *svc, const char *name,
                                    bool exists, sync_doc_t *doc, char **text, errmsg_t *em)
{
    tassa_err err = store_begin(e->store);
    if (err)
        return err;
    if (exists)
        return update_locked(e, doc, text, -1);
    sync_doc_clear(doc);
    return insert_locked(e, svc, name, text, 0, "system", doc, em);
}

/* Another writer came first: read and merge again. */
static bool apply_raced(tassa_err err)
{
    return err == TASSA_EREVISION || err == TASSA_EDUPNAME;
}

/* How apply_locked left the section. */
typedef enum {
    APPLY_READ,    /* nothing written or open; the lock is held, and since the answer rests on
                      what was read, the caller ends it with store_unlock or store_unlock_async */
    APPLY_WROTE,   /* a write ran in a savepoint the caller ends (finish_write[_async]) */
    APPLY_GAVE_UP, /* SYNC_APPLY_ATTEMPTS lost races: the lock is not held */
} apply_end_t;

/* The first try of an apply on a name not known to exist (known): fn's merge of no document,
 * made before the lock, inserted in one section when the name is indeed free, instead of a
 * section to read and another to write. True when that settled the apply (*err and *end as
 * apply_locked returns them, the lock held); false when the name is taken,
 * or fn writes nothing for a new document: the ordinary read-merge-write follows (the lock is
 * not held, doc cleared). */
static bool apply_new(sync_engine_t *e, const char *service, const char *name, sync_merge_fn fn,
                      void *ctx, char *reason, size_t reason_len, sync_doc_t *doc, apply_end_t *end,
                      tassa_err *err, errmsg_t *em)
{
    char svc[SID_LEN + 1], *text;
    errmsg_t ignored = {{0}};
    if (merge_text(fn, ctx, NULL, name, reason, reason_len, &text, &ignored) || !text)
        return false; /* decided again on what the read finds */
    store_lock(e->store);
    *end = APPLY_READ;
    if ((*err = resolve_locked(e, service, svc))) { /* no such service, or the store failed */
        if (*err == TASSA_ENOTFOUND)
            *err = service_not_found(em, service);
        free(text);
        return true;
    }
    /* The insert finds a taken name itself (insert_locked): no lookup before it. */
    *err = apply_write_locked(e, svc, name, false, doc, &text, em);
    free(text);
    if (apply_raced(*err)) { /* taken: merge what is there */
        store_rollback(e->store);
        sync_doc_clear(doc);
        store_unlock_nowait(e->store);
        known_set(e, service, name);
        return false;
    }
    *end = APPLY_WROTE;
    if (!*err)
        known_set(e, service, name);
    return true;
}

/* An apply: apply_new for a name not known to exist, else (or when that finds the name taken)
 * the read-merge-write (apply_read, then apply_write_locked), read again while another writer
 * comes first. doc holds, when *end is APPLY_WROTE and the result is TASSA_OK, the new state
 * (cleared by the caller). */
static tassa_err apply_locked(sync_engine_t *e, const char *service, const char *name,
                              sync_merge_fn fn, void *ctx, char *reason, size_t reason_len,
                              sync_doc_t *doc, apply_end_t *end, errmsg_t *em)
{
    tassa_err first;
    if (!known(e, service, name) &&
        apply_new(e, service, name, fn, ctx, reason, reason_len, doc, end, &first, em))
        return first;
    for (int attempt = 0; attempt < SYNC_APPLY_ATTEMPTS; attempt++) {
        char svc[SID_LEN + 1], *text;
        bool exists;
        sync_doc_clear(doc);
        tassa_err err =
            apply_read(e, service, name, fn, ctx, reason, reason_len, svc, doc, &exists, &text, em);
        store_lock(e->store);
        *end = APPLY_READ;
        if (err || !text)
            return err;
        err = apply_write_locked(e, svc, name, exists, doc, &text, em);
        free(text);
        if (!apply_raced(err)) {
            *end = APPLY_WROTE;
            return err;
        }
        store_rollback(e->store);
        store_unlock_nowait(e->store);
    }
    sync_doc_clear(doc);
    *end = APPLY_GAVE_UP;
    return err_set(em, TASSA_ECONFLICT, "document %.80s kept changing; gave up after %d tries",
                   name, SYNC_APPLY_ATTEMPTS);
}

tassa_err sync_doc_apply(sync_engine_t *e, const char *service, const char *name, sync_merge_fn fn,
                         void *ctx, bool *changed, char *reason, size_t reason_len, errmsg_t *em)
{
    *changed = false;
    tassa_err err = check_unique_name(name, em);
    if (err)
        return err;
    sync_doc_t doc = {0};
    apply_end_t end;
    err = apply_locked(e, service, name, fn, ctx, reason, reason_len, &doc, &end, em);
    if (end == APPLY_WROTE) {
        err = finish_write(e, err, err ? NULL : &doc);
        *changed = err == TASSA_OK;
    } else if (end == APPLY_READ) {
        tassa_err durable = store_unlock(e->store); /* waits for what it could have read */
        if (!err)
            err = durable;
    }
    sync_doc_clear(&doc);
    return err;
}

void sync_doc_apply_async(sync_engine_t *e, const char *service, const char *name, sync_merge_fn fn,
                          void *ctx, char *reason, size_t reason_len, sync_doc_done_fn done,
                          void *done_ctx)
{
    sync_write_t *w = write_new(e, done, done_ctx);
    if (!w)
        return;
    tassa_err err = check_unique_name(name, &w->em);
    if (err) {
        write_refused(w, err);
        return;
    }
    apply_end_t end;
    w->err = apply_locked(e, service, name, fn, ctx, reason, reason_len, &w->doc, &end, &w->em);
    if (end == APPLY_WROTE) {
        w->changed = !w->err;
        finish_write_async(w);
    } else if (end == APPLY_READ) { /* answered once what was read is durable */
        store_unlock_async(e->store, &w->waiter, write_committed, w);
    } else {
        write_refused(w, w->err);
    }
}

tassa_err sync_doc_delete(sync_engine_t *e, const char *service, const char *id,
                          const char *if_match, errmsg_t *em)
{
    sync_doc_t doc = {0};
    char svc[SID_LEN + 1];
    tassa_err err;
    store_lock(e->store);
    if ((err = resolve_locked(e, service, svc)) || (err = find_locked(e, svc, id, &doc))) {
        store_unlock(e->store);
        return err == TASSA_ENOTFOUND ? not_found(em, service, id) : err;
    }
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)doc.revision);
    if (if_match && strcmp(if_match, rev) != 0) {
        store_unlock(e->store);
        sync_doc_clear(&doc);
        return err_set(em, TASSA_EREVISION,
                       "The revision of the Document (%s) does not match "
                       "the expected revision (%.30s)",
                       rev, if_match);
    }
    bool all = false;
    char **readers = NULL;
    size_t nreaders = 0;
    err = readers_locked(e, svc, doc.sid, &all, &readers, &nreaders);
    if (!err)
        err = store_begin(e->store);
    if (!err)
        err = delete_row(e, doc.sid);
    if (!err) {
        sync_change_t ch = {.kind = SYNC_CHANGE_DOC,
                            .doc = doc,
                            .deleted = true,
                            .readers_known = true,
                            .all_readers = all,
                            .readers = readers,
                            .nreaders = nreaders};
        err = log_change(e, &ch);
    }
    if (err)
        store_rollback(e->store);
    else
        err = store_commit(e->store);
    pending_t *p = err ? NULL : pending_push(e, SYNC_CHANGE_DOC, &doc, true, NULL, false);
    if (p) { /* set before the change can be delivered: that needs store_unlock first */
        p->change.readers_known = true;
        p->change.all_readers = all;
        p->change.readers = readers;
        p->change.nreaders = nreaders;
        readers = NULL;
    }
    sync_identities_free(readers, nreaders);
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable;
    pending_settle(e, p, !err);
    wake_after_write(e, err);
    sync_doc_clear(&doc);
    return err;
}

tassa_err sync_doc_list(sync_engine_t *e, const char *service, long page, long page_size,
                        sync_doc_t **docs, size_t *n, bool *more, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    *docs = NULL;
    *n = 0;
    *more = false;
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (err) {
        store_unlock(e->store);
        return service_not_found(em, service);
    }
    store_stmt_t *st =
        store_prepare(e->store, "SELECT " DOC_COLUMNS " FROM sync_documents "
                                "WHERE service_sid = ? AND " LIVE " ORDER BY seq LIMIT ? OFFSET ?");
    sync_doc_t *arr = calloc((size_t)page_size + 1, sizeof *arr);
    if (!st || !arr) {
        err = st ? TASSA_ENOMEM : TASSA_ESTORE;
        goto out;
    }
    store_bind_text(st, 1, svc);
    store_bind_int64(st, 2, store_now_ms());
    store_bind_int64(st, 3, page_size + 1);
    store_bind_int64(st, 4, page * page_size);
    size_t count = 0;
    while (store_step(st) == STORE_ROW) {
        if (count == (size_t)page_size) {
            *more = true;
            break;
        }
        row_to_doc(st, &arr[count]);
        count++;
    }
    *docs = arr;
    *n = count;
    arr = NULL;
out:
    store_release(e->store, st);
    store_unlock(e->store);
    free(arr);
    return err;
}

void sync_doc_clear(sync_doc_t *d)
{
    if (!d)
        return;
    free(d->unique_name);
    free(d->data);
    d->unique_name = d->data = NULL;
}

void sync_doc_list_free(sync_doc_t *docs, size_t n)
{
    for (size_t i = 0; docs && i < n; i++)
        sync_doc_clear(&docs[i]);
    free(docs);
}

tassa_err sync_doc_copy(sync_doc_t *dst, const sync_doc_t *src)
{
    *dst = *src;
    dst->unique_name = src->unique_name ? strdup(src->unique_name) : NULL;
    dst->data = src->data ? strdup(src->data) : NULL;
    if ((src->unique_name && !dst->unique_name) || (src->data && !dst->data)) {
        sync_doc_clear(dst);
        return TASSA_ENOMEM;
    }
    return TASSA_OK;
}

json_t *sync_doc_json(const sync_doc_t *d, const char *account_sid, const char *base_url)
{
    char *text = sync_doc_text(d, account_sid, base_url); /* the one rendering of a document */
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return j;
}

char *sync_doc_text(const sync_doc_t *d, const char *account_sid, const char *base_url)
{
    char created[TIMEFMT_LEN], updated[TIMEFMT_LEN], expires[TIMEFMT_LEN];
    buf_t url = BUF_INIT, b = BUF_INIT;
    timefmt_iso(d->created_ms, created);
    timefmt_iso(d->updated_ms, updated);
    if (d->expires_ms)
        timefmt_iso(d->expires_ms, expires);
    buf_printf(&url, "%s/v1/Services/%s/Documents/%s", base_url, d->service_sid, d->sid);
    /* Twilio's order of the fields; NULL strings are null */
    const char *head[][2] = {{"sid", d->sid},
                             {"unique_name", d->unique_name},
                             {"account_sid", account_sid},
                             {"service_sid", d->service_sid},
                             {"url", buf_str(&url)}};
    int bad = url.failed;
    buf_adds(&b, "{");
    for (size_t i = 0; !bad && i < sizeof head / sizeof head[0]; i++) {
        buf_printf(&b, "%s\"%s\":", i ? "," : "", head[i][0]);
        bad = head[i][1] ? buf_add_json_string(&b, head[i][1]) : buf_adds(&b, "null");
    }
    if (!bad) {
        buf_adds(&b, ",\"links\":{\"permissions\":");
        buf_printf(&url, "/Permissions");
        bad = buf_add_json_string(&b, buf_str(&url));
    }
    if (!bad) {
        buf_printf(&b,
                   "},\"revision\":\"%lld\",\"data\":%s,\"date_expires\":", (long long)d->revision,
                   d->data ? d->data : "{}");
        if (d->expires_ms)
            buf_printf(&b, "\"%s\"", expires);
        else
            buf_adds(&b, "null");
        buf_printf(&b, ",\"date_created\":\"%s\",\"date_updated\":\"%s\",\"created_by\":", created,
                   updated);
        bad = buf_add_json_string(&b, d->created_by);
        buf_adds(&b, "}");
    }
    buf_free(&url);
    if (bad || b.failed) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

tassa_err sync_doc_watch(sync_engine_t *e, const char *service, const char *id, int64_t after,
                         sync_watch_fn fn, void *ctx, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    sync_doc_t doc = {0};
    bool done = false;
    pending_t *p = NULL;
    if (e->feeding) {
        tassa_err ferr = watch_by_feeder(e, service, id, after, fn, ctx);
        if (ferr == TASSA_ENOTFOUND)
            return not_found(em, service, id);
        return ferr ? err_set(em, ferr, "%s", tassa_strerror(ferr)) : TASSA_OK;
    }
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (!err)
        err = find_locked(e, svc, id, &doc);
    if (!err && e->listener) {
        /* Queued behind every change the read could see, ahead of every later one. */
        if (!(p = calloc(1, sizeof *p)) || sync_doc_copy(&p->change.doc, &doc)) {
            free(p);
            p = NULL;
            err = TASSA_ENOMEM;
        } else {
            p->watch = fn;
            p->watch_ctx = ctx;
            p->watch_done = &done;
            pending_append(e, p);
        }
    }
    tassa_err durable = store_unlock(e->store); /* waits if it read uncommitted data */
    if (!err)
        err = durable;
    if (p) {
        pthread_mutex_lock(&e->changes_lock);
        p->state = err ? PENDING_CANCELLED : PENDING_READY;
        drain_locked(e);
        while (!done)
            pthread_cond_wait(&e->changes_done, &e->changes_lock);
        pthread_mutex_unlock(&e->changes_lock);
    } else if (!err) {
        fn(ctx, &doc, NULL, 0); /* nobody listens: there is no order to keep */
    }
    sync_doc_clear(&doc);
    if (err == TASSA_ENOTFOUND)
        return not_found(em, service, id);
    return err;
}

/* One UPDATE of a service column by SID (lock held). TASSA_ENOTFOUND when no row. */
static tassa_err service_update(sync_engine_t *e, const char *svc, const char *sql, int ival,
                                const char *sval)
{
    store_stmt_t *st = store_prepare(e->store, sql);
    if (!st)
        return TASSA_ESTORE;
    if (sval)
        store_bind_text(st, 1, sval);
    else
        store_bind_int64(st, 1, ival);
    store_bind_int64(st, 2, store_now_ms());
    store_bind_text(st, 3, svc);
    int rc = store_step(st);
    store_release(e->store, st);
    if (rc != STORE_DONE)
        return TASSA_ESTORE;
    return store_changes(e->store) ? TASSA_OK : TASSA_ENOTFOUND;
}

tassa_err sync_service_set_acl(sync_engine_t *e, const char *service, bool enabled, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    sync_doc_t marker = {0};
    pending_t *p = NULL;
    bool was = enabled;
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (!err)
        err = acl_enabled_locked(e, svc, &was);
    bool began = false;
    if (!err)
        began = !(err = store_begin(e->store));
    if (!err)
        err = service_update(e, svc,
                             "UPDATE sync_services SET acl_enabled = ?, date_updated = ? "
                             "WHERE sid = ?",
                             enabled, NULL);
    memcpy(marker.service_sid, svc, sizeof marker.service_sid);
    bool changed = !err && was != enabled; /* only a real change concerns the streams */
    if (changed)
        err = log_simple(e, SYNC_CHANGE_ACL, &marker, NULL, enabled);
    if (began && err)
        store_rollback(e->store);
    else if (began)
        err = store_commit(e->store);
    if (!err && changed)
        p = pending_push(e, SYNC_CHANGE_ACL, &marker, false, NULL, enabled);
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable;
    pending_settle(e, p, !err);
    wake_after_write(e, changed ? err : TASSA_EINVAL);
    if (err == TASSA_ENOTFOUND)
        return service_not_found(em, service);
    return err;
}

tassa_err sync_service_set_name(sync_engine_t *e, const char *service, const char *name,
                                errmsg_t *em)
{
    char svc[SID_LEN + 1];
    size_t len = strlen(name);
    if (len == 0 || len > 64)
        return err_set(em, TASSA_EINVAL, "FriendlyName must be 1 to 64 characters");
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return err_set(em, TASSA_EINVAL, "FriendlyName contains a control character");
    }
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (!err)
        err = service_update(e, svc,
                             "UPDATE sync_services SET friendly_name = ?, date_updated = ? "
                             "WHERE sid = ?",
                             0, name);
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable;
    if (err == TASSA_ENOTFOUND)
        return service_not_found(em, service);
    return err;
}

/* Checks an identity: 1..SYNC_IDENTITY_MAX bytes, no control characters. */
static tassa_err check_identity(const char *identity, errmsg_t *em)
{
    size_t len = strlen(identity);
    if (len == 0 || len > SYNC_IDENTITY_MAX)
        return err_set(em, TASSA_EINVAL, "Identity must be 1 to %d characters", SYNC_IDENTITY_MAX);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)identity[i] < 0x20 || identity[i] == 0x7f)
            return err_set(em, TASSA_EINVAL, "Identity contains a control character");
    }
    json_t *probe = json_stringn(identity, len); /* NULL when not UTF-8 */
    if (!probe)
        return err_set(em, TASSA_EINVAL, "Identity is not valid UTF-8");
    json_decref(probe);
    return TASSA_OK;
}

/* Resolves service and document for a permission call (lock held): fills svc and doc. */
static tassa_err perm_target(sync_engine_t *e, const char *service, const char *doc_id,
                             char svc[SID_LEN + 1], sync_doc_t *doc, errmsg_t *em)
{
    tassa_err err = resolve_locked(e, service, svc);
    if (err == TASSA_ENOTFOUND)
        return service_not_found(em, service);
    if (!err && (err = find_locked(e, svc, doc_id, doc)) == TASSA_ENOTFOUND)
        return not_found(em, service, doc_id);
    return err;
}

/* Reads a permission row (lock held). TASSA_ENOTFOUND when absent. */
static tassa_err perm_row(sync_engine_t *e, const char *doc_sid, const char *identity,
                          sync_perm_t *out)
{
    store_stmt_t *st = store_prepare(e->store, "SELECT service_sid, read, write, manage FROM "
                                               "sync_permissions WHERE document_sid = ? AND "
                                               "identity = ?");
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, doc_sid);
    store_bind_text(st, 2, identity);
    int rc = store_step(st);
    tassa_err err = rc < 0 ? TASSA_ESTORE : TASSA_ENOTFOUND; /* an outage is not "absent" */
    if (rc == STORE_ROW) {
        snprintf(out->document_sid, sizeof out->document_sid, "%s", doc_sid);
        snprintf(out->service_sid, sizeof out->service_sid, "%s", store_col_text(st, 0));
        out->read = store_col_int64(st, 1) != 0;
        out->write = store_col_int64(st, 2) != 0;
        out->manage = store_col_int64(st, 3) != 0;
        out->identity = strdup(identity);
        err = out->identity ? TASSA_OK : TASSA_ENOMEM;
    }
    store_release(e->store, st);
    return err;
}

static tassa_err perm_not_found(errmsg_t *em, const char *service, const char *doc_id,
                                const char *identity)
{
    return err_set(em, TASSA_ENOTFOUND,
                   "The requested resource /Services/%.40s/Documents/%.80s/Permissions/%.80s "
                   "was not found",
                   service, doc_id, identity);
}

tassa_err sync_perm_set(sync_engine_t *e, const char *service, const char *doc_id,
                        const char *identity, bool read, bool write, bool manage, sync_perm_t *out,
                        errmsg_t *em)
{
    char svc[SID_LEN + 1];
    sync_doc_t doc = {0};
    pending_t *p = NULL;
    memset(out, 0, sizeof *out);
    tassa_err err = check_identity(identity, em);
    if (err)
        return err;
    store_lock(e->store);
    err = perm_target(e, service, doc_id, svc, &doc, em);
    if (!err)
        err = store_begin(e->store);
    if (!err) {
        store_stmt_t *st = store_prepare(
            e->store, "INSERT INTO sync_permissions (document_sid, identity, service_sid, read,"
                      " write, manage) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (document_sid, "
                      "identity) DO UPDATE SET read = excluded.read, write = excluded.write, "
                      "manage = excluded.manage");
        if (st) {
            store_bind_text(st, 1, doc.sid);
            store_bind_text(st, 2, identity);
            store_bind_text(st, 3, svc);
            store_bind_int64(st, 4, read);
            store_bind_int64(st, 5, write);
            store_bind_int64(st, 6, manage);
            err = store_step(st) == STORE_DONE ? TASSA_OK : TASSA_ESTORE;
            store_release(e->store, st);
        } else {
            err = TASSA_ESTORE;
        }
        if (!err)
            err = log_simple(e, SYNC_CHANGE_PERMISSION, &doc, identity, read);
        if (err)
            store_rollback(e->store);
        else
            err = store_commit(e->store);
        if (!err)
            p = pending_push(e, SYNC_CHANGE_PERMISSION, &doc, false, identity, read);
    }
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable;
    pending_settle(e, p, !err);
    wake_after_write(e, err);
    if (!err) {
        memcpy(out->document_sid, doc.sid, sizeof out->document_sid);
        memcpy(out->service_sid, svc, sizeof out->service_sid);
        out->read = read;
        out->write = write;
        out->manage = manage;
        if (!(out->identity = strdup(identity)))
            err = err_set(em, TASSA_ENOMEM, "out of memory");
    }
    sync_doc_clear(&doc);
    return err;
}

tassa_err sync_perm_fetch(sync_engine_t *e, const char *service, const char *doc_id,
                          const char *identity, sync_perm_t *out, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    sync_doc_t doc = {0};
    memset(out, 0, sizeof *out);
    store_lock(e->store);
    tassa_err err = perm_target(e, service, doc_id, svc, &doc, em);
    if (!err && (err = perm_row(e, doc.sid, identity, out)) == TASSA_ENOTFOUND)
        perm_not_found(em, service, doc_id, identity);
    store_unlock(e->store);
    sync_doc_clear(&doc);
    return err;
}

tassa_err sync_perm_delete(sync_engine_t *e, const char *service, const char *doc_id,
                           const char *identity, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    sync_doc_t doc = {0};
    pending_t *p = NULL;
    store_lock(e->store);
    tassa_err err = perm_target(e, service, doc_id, svc, &doc, em);
    if (!err)
        err = store_begin(e->store);
    if (!err) {
        store_stmt_t *st = store_prepare(
            e->store, "DELETE FROM sync_permissions WHERE document_sid = ? AND identity = ?");
        if (st) {
            store_bind_text(st, 1, doc.sid);
            store_bind_text(st, 2, identity);
            err = store_step(st) == STORE_DONE ? TASSA_OK : TASSA_ESTORE;
            store_release(e->store, st);
            if (!err && !store_changes(e->store))
                err = perm_not_found(em, service, doc_id, identity);
        } else {
            err = TASSA_ESTORE;
        }
        if (!err)
            err = log_simple(e, SYNC_CHANGE_PERMISSION, &doc, identity, false);
        if (err)
            store_rollback(e->store);
        else
            err = store_commit(e->store);
        if (!err)
            p = pending_push(e, SYNC_CHANGE_PERMISSION, &doc, false, identity, false);
    }
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable;
    pending_settle(e, p, !err);
    wake_after_write(e, err);
    sync_doc_clear(&doc);
    return err;
}

tassa_err sync_perm_list(sync_engine_t *e, const char *service, const char *doc_id, long page,
                         long page_size, sync_perm_t **perms, size_t *n, bool *more, errmsg_t *em)
{
    char svc[SID_LEN + 1];
    sync_doc_t doc = {0};
    sync_perm_t *arr = NULL;
    store_stmt_t *st = NULL;
    *perms = NULL;
    *n = 0;
    *more = false;
    store_lock(e->store);
    tassa_err err = perm_target(e, service, doc_id, svc, &doc, em);
    if (err)
        goto out;
    st = store_prepare(e->store, "SELECT identity, read, write, manage FROM sync_permissions "
                                 "WHERE document_sid = ? ORDER BY identity LIMIT ? OFFSET ?");
    arr = calloc((size_t)page_size + 1, sizeof *arr);
    if (!st || !arr) {
        err = st ? TASSA_ENOMEM : TASSA_ESTORE;
        goto out;
    }
    store_bind_text(st, 1, doc.sid);
    store_bind_int64(st, 2, page_size + 1);
    store_bind_int64(st, 3, page * page_size);
    size_t count = 0;
    while (store_step(st) == STORE_ROW) {
        if (count == (size_t)page_size) {
            *more = true;
            break;
        }
        sync_perm_t *p = &arr[count++];
        memcpy(p->document_sid, doc.sid, sizeof p->document_sid);
        memcpy(p->service_sid, svc, sizeof p->service_sid);
        p->identity = strdup(store_col_text(st, 0));
        p->read = store_col_int64(st, 1) != 0;
        p->write = store_col_int64(st, 2) != 0;
        p->manage = store_col_int64(st, 3) != 0;
        if (!p->identity) {
            err = TASSA_ENOMEM;
            sync_perm_list_free(arr, count);
            arr = NULL;
            goto out;
        }
    }
    *perms = arr;
    *n = count;
    arr = NULL;
out:
    store_release(e->store, st);
    store_unlock(e->store);
    free(arr);
    sync_doc_clear(&doc);
    return err;
}

/* The service's acl_enabled (lock held). */
static tassa_err acl_enabled_locked(sync_engine_t *e, const char *svc, bool *enabled)
{
    store_stmt_t *st =
        store_prepare(e->store, "SELECT acl_enabled FROM sync_services WHERE sid = ?");
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, svc);
    int rc = store_step(st);
    tassa_err err = rc < 0 ? TASSA_ESTORE : TASSA_ENOTFOUND; /* an outage is not "absent" */
    if (rc == STORE_ROW) {
        *enabled = store_col_int64(st, 0) != 0;
        err = TASSA_OK;
    }
    store_release(e->store, st);
    return err;
}

tassa_err sync_acl_can_read(sync_engine_t *e, const char *service, const char *doc_id,
                            const char *identity, bool *allowed)
{
    char svc[SID_LEN + 1];
    bool acl = true;
    sync_doc_t doc = {0};
    sync_perm_t perm = {0};
    *allowed = false;
    store_lock(e->store);
    tassa_err err = resolve_locked(e, service, svc);
    if (!err)
        err = acl_enabled_locked(e, svc, &acl);
    if (!err && !acl) {
        *allowed = true;
    } else if (!err) {
        tassa_err f = find_locked(e, svc, doc_id, &doc);
        if (f == TASSA_OK)
            f = perm_row(e, doc.sid, identity, &perm);
        if (f == TASSA_OK)
            *allowed = perm.read;
        else if (f != TASSA_ENOTFOUND)
            err = f;
    }
    store_unlock(e->store);
    sync_doc_clear(&doc);
    sync_perm_clear(&perm);
    return err;
}

/* sync_acl_readers with the lock held. */
static tassa_err readers_locked(sync_engine_t *e, const char *service, const char *doc_sid,
                                bool *all, char ***readers, size_t *n)
{
    char svc[SID_LEN + 1];
    bool acl = true;
    char **ids = NULL;
    size_t count = 0, cap = 0;
    store_stmt_t *st = NULL;
    *all = false;
    *readers = NULL;
    *n = 0;
    tassa_err err = resolve_locked(e, service, svc);
    if (!err)
        err = acl_enabled_locked(e, svc, &acl);
    if (err || !acl) {
        *all = !err;
        goto out;
    }
    st = store_prepare(e->store, "SELECT identity FROM sync_permissions WHERE document_sid = ? "
                                 "AND read != 0");
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    store_bind_text(st, 1, doc_sid);
    while (store_step(st) == STORE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **grown = realloc(ids, ncap * sizeof *ids);
            if (!grown) {
                err = TASSA_ENOMEM;
                break;
            }
            ids = grown;
            cap = ncap;
        }
        if (!(ids[count] = strdup(store_col_text(st, 0)))) {
            err = TASSA_ENOMEM;
            break;
        }
        count++;
    }
out:
    store_release(e->store, st);
    if (err) {
        sync_identities_free(ids, count);
        return err;
    }
    *readers = ids;
    *n = count;
    return TASSA_OK;
}

tassa_err sync_acl_readers(sync_engine_t *e, const char *service, const char *doc_sid, bool *all,
                           char ***readers, size_t *n)
{
    store_lock(e->store);
    tassa_err err = readers_locked(e, service, doc_sid, all, readers, n);
    store_unlock(e->store);
    return err;
}

void sync_identities_free(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

json_t *sync_perm_json(const sync_perm_t *p, const char *account_sid, const char *base_url)
{
    buf_t url = BUF_INIT;
    /* The identity is a path segment of the URL: percent-encoded. */
    buf_printf(&url, "%s/v1/Services/%s/Documents/%s/Permissions/", base_url, p->service_sid,
               p->document_sid);
    buf_add_encoded(&url, p->identity);
    json_t *j = url.failed
                    ? NULL
                    : json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:s}", "account_sid",
                                account_sid, "service_sid", p->service_sid, "document_sid",
                                p->document_sid, "identity", p->identity, "read", p->read, "write",
                                p->write, "manage", p->manage, "url", buf_str(&url));
    buf_free(&url);
    return j;
}

void sync_perm_clear(sync_perm_t *p)
{
    if (!p)
        return;
    free(p->identity);
    p->identity = NULL;
}

void sync_perm_list_free(sync_perm_t *perms, size_t n)
{
    for (size_t i = 0; perms && i < n; i++)
        sync_perm_clear(&perms[i]);
    free(perms);
}
