/* store.c - the store: SQLite data file or PostgreSQL database (store_pg.c), group commit,
 * savepoints, meta values, and the query layer dispatching to the back end.
 *
 * store_open chooses the back end: a postgres:// or postgresql:// URL opens PostgreSQL through
 * store_impl.h, anything else is the path of a SQLite data file (WAL, synchronous=FULL). The
 * group commit below is the same for both: only the commands go to a different connection.
 *
 * Group commit: the first critical section after a commit opens a transaction (BEGIN); every
 * following one writes into it; the committer thread COMMITs it once it holds changes and no
 * writer is queued for the lock (or after a short bound), and under load no sooner than the
 * pace the previous batch set (pace_commit), makes it durable (one fsync), then
 * wakes every thread waiting in store_unlock for that epoch, then runs the store_unlock_async
 * waiters of the epochs it settled (outside every lock), oldest first.
 *
 * On SQLite the fsync runs outside the store lock, so the next batch's sections run while the
 * disk works: the connection runs with synchronous=NORMAL (COMMIT writes the WAL frames, no
 * fsync) and the committer fdatasyncs the WAL through its own descriptor before it settles
 * the epoch, so nothing is acknowledged before it is on disk. Checkpoints run on a second
 * connection (checkpoint_loop), with the WAL synced before and the data file after each, as
 * SQLite does at synchronous=NORMAL; only the frames written since it ran are copied under the
 * store lock, by the committer, so that the WAL starts over.
 *
 * Query layer: a store_stmt_t holds the back end's statement; SQLite statements are cached by
 * SQL text with their store_stmt_t (see store_prepare), PostgreSQL ones in store_pg.c.
 *
 * Layer: store.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/metrics.h"
#include "store/store_impl.h"

/* Prepared statements kept for reuse, by SQL text: compiling SQL costs more than running it. */
#define STMT_CACHE 256

typedef struct cached_stmt cached_stmt_t;

/* A statement of either back end: exactly one of sq and pg is set. */
struct store_stmt {
    sqlite3_stmt *sq;
    pg_stmt_t *pg;
    cached_stmt_t *slot; /* the SQLite cache slot holding it, or NULL (malloc'd) */
};

struct cached_stmt {
    char *sql;
    sqlite3_stmt *st;
    bool in_use;
    struct store_stmt h;
};

/* How long the committer lets queued writers join a batch before it commits anyway. Pacing
 * (below) does most of the batching under load; a longer wait on top of it only delayed every
 * acknowledgement (bench/README.md round 12: 2 ms, 500 us and none alternated). */
#define BATCH_WAIT_US 500
/* Commit pacing under load: after a batch of n writers, the next commit begins no sooner than
 * n * PACE_WRITER_US (at most PACE_MAX_US) after it began, so that more writers share each
 * COMMIT (whose page writes hold the store lock) and each fsync. A lone writer is never held
 * back. */
#define PACE_WRITER_US 100
#define PACE_MAX_US    2000

struct store {
    sqlite3 *db;
    pg_conn_t *pg;                /* set instead of db on PostgreSQL */
    char *url;                    /* the PostgreSQL URL (may hold a password: never logged) */
    pthread_mutex_t session_lock; /* guards session's creation */
    pg_session_t *session;        /* leases and notifications; started at first use */
    char where[512];              /* store_where: the path, or the URL without its password */
    pthread_mutex_t lock;         /* the store lock: db, open_txn, in_savepoint, epoch, dirty */
    pthread_cond_t work;          /* signalled (under lock) when a section left changes */
    bool open_txn, in_savepoint, dirty, stopping;
    uint64_t epoch; /* number of the open (or last) group transaction */
    sqlite3_int64 changes_at_lock;
    uint64_t section;            /* store_section; lock held */
    long batch_writers;          /* sections with changes in the open group transaction (metrics) */
    struct timespec last_commit; /* when the committer began its last commit (CLOCK_MONOTONIC) */
    long last_batch;             /* the writers of that commit */
    uint64_t unsynced;           /* SQLite: the last epoch COMMITted, its WAL sync outside the
                                  * lock (written with the lock held) */
    atomic_int queued;           /* threads waiting for the store lock */
    pthread_t committer;
    bool committer_started;
    pthread_mutex_t done_lock; /* guards committed, failed and done */
    pthread_cond_t done;
    _Atomic uint64_t committed; /* every epoch <= committed is settled (written under
                                 * done_lock; unlock_section reads it without) */
    uint64_t failed;            /* the last epoch whose commit failed (0 = none) */
    uint64_t broken_from;       /* SQLite: the epoch whose WAL sync failed; it and every later one
                                 * fail (0 = none; under done_lock, written by the committer) */
    store_waiter_t *waiters;    /* store_unlock_async, under done_lock, newest first */
    cached_stmt_t cache[STMT_CACHE]; /* under the store lock */
    int wal_fd;                      /* SQLite: the WAL, synced by the committer (-1: none) */
    sqlite3 *ckpt_db;                /* SQLite: the checkpointer's own connection */
    pthread_t checkpointer;
    bool checkpointer_started;
    pthread_mutex_t ckpt_lock; /* guards ckpt_stop; ckpt_work waits on it */
    pthread_cond_t ckpt_work;
    bool ckpt_stop;
    atomic_int ckpt; /* CKPT_IDLE, CKPT_COPYING (the checkpointer's turn), CKPT_COPIED */
};

enum { CKPT_IDLE, CKPT_COPYING, CKPT_COPIED };

/* WAL pages after which a commit asks the checkpointer for a checkpoint (SQLite's default). */
#define CHECKPOINT_PAGES 1000

static void *commit_loop(void *arg);
static void *checkpoint_loop(void *arg);

/* Runs a transaction-control command (BEGIN, COMMIT, SAVEPOINT ...) on the back end. */
static store_stmt_t *prepare(store_t *s, const char *sql, bool quiet);

static tassa_err db_control(store_t *s, const char *sql)
{
    if (s->pg)
        return pg_control(s->pg, sql);
    if (strchr(sql, ';')) /* several commands: a rare path (rollbacks) */
        return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? TASSA_OK : TASSA_ESTORE;
    store_stmt_t *st = prepare(s, sql, false); /* cached: SAVEPOINT runs once per section */
    int rc = st ? sqlite3_step(st->sq) : SQLITE_ERROR;
    store_release(s, st);
    return rc == SQLITE_DONE ? TASSA_OK : TASSA_ESTORE;
}

/* Rows changed on the connection since it opened. */
static int64_t db_total_changes(store_t *s)
{
    return s->pg ? pg_total_changes(s->pg) : sqlite3_total_changes64(s->db);
}

static const char *META_TABLE = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value "
                                "TEXT NOT NULL);";

/* Connects to the PostgreSQL database at url and creates the meta table. */
static bool open_pg(store_t *s, const char *url, errmsg_t *em)
{
    if (!(s->pg = pg_open(url, em)) || !(s->url = strdup(url)))
        return false;
    errmsg_t why = {{0}};
    /* under the global lock: nodes starting together must not create tables at once */
    tassa_err err = pg_begin(s->pg);
    if (!err && !(err = pg_exec(s->pg, META_TABLE, &why)))
        err = pg_control(s->pg, "COMMIT");
    else if (!err)
        pg_control(s->pg, "ROLLBACK");
    if (err && !why.text[0])
        snprintf(why.text, sizeof why.text, "%s", pg_errmsg(s->pg));
    if (err) {
        err_set(em, TASSA_ESTORE, "PostgreSQL database is not usable: %s", why.text);
        return false;
    }
    return true;
}

/* SQLite's WAL hook, run inside COMMIT (store lock held): once the WAL holds CHECKPOINT_PAGES
 * pages it hands the copying to the checkpointer. Setting it turns SQLite's own checkpoint in
 * COMMIT off. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    store_t *s = arg;
    int idle = CKPT_IDLE;
    if (pages >= CHECKPOINT_PAGES &&
        atomic_compare_exchange_strong(&s->ckpt, &idle, CKPT_COPYING)) {
        pthread_mutex_lock(&s->ckpt_lock);
        pthread_cond_signal(&s->ckpt_work);
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    return SQLITE_OK;
}

/* Copies the WAL into the data file on the second connection (PASSIVE: it never waits for the
 * writer), outside the store lock, whenever on_wal_commit asks; then leaves the rest to the
 * committer (CKPT_COPIED). */
static void *checkpoint_loop(void *arg)
{
    store_t *s = arg;
    pthread_mutex_lock(&s->ckpt_lock);
    for (;;) {
        while (atomic_load(&s->ckpt) != CKPT_COPYING && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_work, &s->ckpt_lock);
        if (s->ckpt_stop)
            break;
        pthread_mutex_unlock(&s->ckpt_lock);
        int rc =
            sqlite3_wal_checkpoint_v2(s->ckpt_db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_error("event=store_checkpoint_failed err=\"%s\"", sqlite3_errmsg(s->ckpt_db));
        atomic_store(&s->ckpt, CKPT_COPIED);
        pthread_mutex_lock(&s->ckpt_lock);
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return NULL;
}

/* Moves the SQLite commit's fsync out of the store lock (see the file comment): opens the
 * WAL's descriptor and the checkpointer's connection, then turns the connection to
 * synchronous=NORMAL. Without a WAL file (journal_mode=WAL refused) it leaves FULL alone. */
static bool sync_wal_outside_lock(store_t *s, const char *path, errmsg_t *em)
{
    const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
    if (!wal || (s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC)) < 0)
        return true; /* no WAL: each COMMIT syncs itself (synchronous=FULL) */
    int rc = sqlite3_open_v2(path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s->ckpt_db, 5000);
        rc = sqlite3_exec(s->ckpt_db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "cannot open data file %s for checkpoints: %s", path,
                s->ckpt_db ? sqlite3_errmsg(s->ckpt_db) : sqlite3_errstr(rc));
        return false;
    }
    if (pthread_create(&s->checkpointer, NULL, checkpoint_loop, s) != 0) {
        err_set(em, TASSA_EINTERNAL, "cannot start the checkpoint thread");
        return false;
    }
    s->checkpointer_started = true;
    sqlite3_wal_hook(s->db, on_wal_commit, s);
    if (sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "data file %s: %s", path, sqlite3_errmsg(s->db));
        return false;
    }
    return true;
}

/* Once per process, before SQLite initialises: no connection or statement mutexes (each
 * connection is used by one thread at a time, under the store's own lock, as
 * SQLITE_OPEN_NOMUTEX says for ours), and no memory statistics, which take a global mutex on
 * every allocation and are never read. A failure leaves SQLite's defaults, only slower. */
static void sqlite_config_once(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

store_t *store_open(const char *path, errmsg_t *em)
{
    static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
    pthread_once(&sqlite_once, sqlite_config_once);
    store_t *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->session_lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_mutex_init(&s->done_lock, NULL);
    pthread_cond_init(&s->done, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_work, NULL);
    s->wal_fd = -1;
    snprintf(s->where, sizeof s->where, "%s", path);
    if (pg_is_url(path)) {
        if (!open_pg(s, path, em))
            goto fail;
        pg_describe(s->pg, s->where, sizeof s->where);
        goto start;
    }
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "cannot open data file %s: %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    /* WAL + synchronous=FULL: a committed transaction is on disk before we answer (until
     * sync_wal_outside_lock takes the fsync over). A 64 MiB page cache and memory-mapped
     * reads keep large tables off the read(2) path; savepoint journals stay in memory. */
    rc = sqlite3_exec(s->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                      "PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; "
                      "PRAGMA mmap_size=268435456; PRAGMA temp_store=MEMORY; ",
                      NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, META_TABLE, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "data file %s is not usable: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        goto fail;
    }
    if (!sync_wal_outside_lock(s, path, em))
        goto fail;
start:
    if (pthread_create(&s->committer, NULL, commit_loop, s) != 0) {
        err_set(em, TASSA_EINTERNAL, "cannot start the commit thread");
        goto fail;
    }
    s->committer_started = true;
    return s;
fail:
    store_close(s);
    return NULL;
}

void store_close(store_t *s)
{
    if (!s)
        return;
    if (s->committer_started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->committer, NULL); /* it commits what is left first */
    }
    if (s->checkpointer_started) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stop = true;
        pthread_cond_signal(&s->ckpt_work);
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_join(s->checkpointer, NULL);
    }
    if (s->ckpt_db)
        sqlite3_close_v2(s->ckpt_db);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    for (int i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(s->cache[i].st);
        free(s->cache[i].sql);
    }
    if (s->db)
        sqlite3_close_v2(s->db);
    pg_session_free(s->session);
    pg_close(s->pg);
    free(s->url);
    pthread_mutex_destroy(&s->session_lock);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->done_lock);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_cond_destroy(&s->ckpt_work);
    free(s);
}

int store_claim(const char *path, errmsg_t *em)
{
    /* Several nodes share one PostgreSQL database on purpose: there is no file to claim. The
     * descriptor (of /dev/null) only keeps the contract of store_claim_release. */
    if (pg_is_url(path)) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            err_set(em, TASSA_ESTORE, "cannot open /dev/null: %s", strerror(errno));
        return fd;
    }
    char lock_path[4096];
    if (snprintf(lock_path, sizeof lock_path, "%s.lock", path) >= (int)sizeof lock_path) {
        err_set(em, TASSA_EINVAL, "data file path too long");
        return -1;
    }
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_set(em, TASSA_ESTORE, "cannot open lock file %s: %s", lock_path, strerror(errno));
        return -1;
    }
    /* flock, not fcntl: an fcntl lock would be dropped when SQLite closes any descriptor of
     * the same file, and flock locks belong to this open file description only. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            err_set(em, TASSA_ECONFLICT, "data file %s is in use by another tassa process", path);
        else
            err_set(em, TASSA_ESTORE, "cannot lock %s: %s", lock_path, strerror(e));
        return -1;
    }
    return fd;
}

void store_claim_release(int claim)
{
    if (claim >= 0)
        close(claim); /* closing the only descriptor drops the flock */
}

static void settle_deferred(store_t *s);

void store_lock(store_t *s)
{
    settle_deferred(s);
    atomic_fetch_add(&s->queued, 1);
    pthread_mutex_lock(&s->lock);
    atomic_fetch_sub(&s->queued, 1);
    if (!s->open_txn) {
        if (s->pg && !pg_ensure(s->pg)) {
            /* no connection: the query layer answers TASSA_ESTORE until it is back */
        } else if ((s->pg ? pg_begin(s->pg) : db_control(s, "BEGIN")) == TASSA_OK) {
            s->open_txn = true;
            s->epoch++;
        } else {
            log_error("event=store_begin_failed err=\"%s\"", store_errmsg(s));
        }
    }
    s->changes_at_lock = db_total_changes(s);
    s->section++;
}

uint64_t store_section(const store_t *s)
{
    return s->section;
}

/* Seconds since t0 (CLOCK_MONOTONIC). */
static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Ends the section like store_unlock without waiting: releases the lock and returns the epoch
 * to wait for (0: none), with *lost set when the PostgreSQL connection was lost. */
static uint64_t unlock_section(store_t *s, bool *lost);

/* Whether epoch's changes failed to become durable (done_lock held). */
static bool epoch_failed_locked(const store_t *s, uint64_t epoch)
{
    return s->failed == epoch || (s->broken_from && epoch >= s->broken_from);
}

/* Waits until epoch is settled; whether its changes failed to become durable. */
static bool wait_epoch(store_t *s, uint64_t epoch)
{
    pthread_mutex_lock(&s->done_lock);
    while (s->committed < epoch)
        pthread_cond_wait(&s->done, &s->done_lock);
    bool failed = epoch_failed_locked(s, epoch);
    pthread_mutex_unlock(&s->done_lock);
    return failed;
}

/* Queues w (done, ctx, epoch and err set) for the committer, or runs its done at once when its
 * epoch is settled or 0. */
static void wait_async(store_t *s, store_waiter_t *w)
{
    if (w->epoch) {
        pthread_mutex_lock(&s->done_lock);
        if (s->committed < w->epoch) { /* the committer runs it after that commit */
            w->next = s->waiters;
            s->waiters = w;
            pthread_mutex_unlock(&s->done_lock);
            return;
        }
        if (epoch_failed_locked(s, w->epoch))
            w->err = TASSA_ESTORE;
        pthread_mutex_unlock(&s->done_lock);
    }
    w->done(w->ctx, w->err);
}

/* This thread's deferred waits (store_defer_begin): one store at a time. */
static _Thread_local struct {
    store_t *s;     /* NULL: store_unlock waits as usual */
    uint64_t epoch; /* the newest epoch a deferred section waits for; 0: none */
    bool failed;    /* a deferred section's changes are gone */
} deferred;

/* Waits for the epoch this thread's earlier deferred sections wait for, as their store_unlock
 * would have (before the lock: the committer needs it). */
static void settle_deferred(store_t *s)
{
    if (deferred.s == s && deferred.epoch) {
        deferred.failed |= wait_epoch(s, deferred.epoch);
        deferred.epoch = 0;
    }
}

tassa_err store_unlock(store_t *s)
{
    bool lost = false;
    uint64_t wait_for = unlock_section(s, &lost);
    if (deferred.s == s) {
        if (wait_for > deferred.epoch)
            deferred.epoch = wait_for;
        deferred.failed |= lost;
        return lost ? TASSA_ESTORE : TASSA_OK;
    }
    if (wait_for)
        lost |= wait_epoch(s, wait_for);
    return lost ? TASSA_ESTORE : TASSA_OK;
}

tassa_err store_unlock_nowait(store_t *s)
{
    bool lost = false;
    (void)unlock_section(s, &lost);
    return lost ? TASSA_ESTORE : TASSA_OK;
}

void store_unlock_async(store_t *s, store_waiter_t *w, store_done_fn done, void *ctx)
{
    bool lost = false;
    uint64_t wait_for = unlock_section(s, &lost);
    *w = (store_waiter_t){
        .done = done, .ctx = ctx, .epoch = wait_for, .err = lost ? TASSA_ESTORE : TASSA_OK};
    wait_async(s, w);
}

void store_defer_begin(store_t *s)
{
    deferred.s = s;
    deferred.epoch = 0;
    deferred.failed = false;
}

void store_defer_end(store_t *s, store_waiter_t *w, store_done_fn done, void *ctx)
{
    *w = (store_waiter_t){.done = done,
                          .ctx = ctx,
                          .epoch = deferred.s == s ? deferred.epoch : 0,
                          .err = deferred.s == s && deferred.failed ? TASSA_ESTORE : TASSA_OK};
    deferred.s = NULL;
    wait_async(s, w);
}

/* Takes the waiters whose epoch is settled off the queue (done_lock held), oldest first, with
 * their results set. */
static store_waiter_t *settled_waiters_locked(store_t *s)
{
    store_waiter_t *ready = NULL, **pp = &s->waiters;
    while (*pp) {
        store_waiter_t *w = *pp;
        if (w->epoch <= s->committed) {
            *pp = w->next;
            if (epoch_failed_locked(s, w->epoch))
                w->err = TASSA_ESTORE;
            w->next = ready; /* the queue is newest first: this reverses it */
            ready = w;
        } else {
            pp = &w->next;
        }
    }
    return ready;
}

static uint64_t unlock_section(store_t *s, bool *lost_out)
{
    if (db_total_changes(s) != s->changes_at_lock) {
        s->dirty = true;
        s->batch_writers++;
    }
    uint64_t wait_for = 0;
    if (s->dirty) {
        wait_for = s->epoch;
        pthread_cond_signal(&s->work);
    } else {
        if (s->open_txn) { /* nothing to make durable: end the read transaction at once */
            db_control(s, "COMMIT");
            s->open_txn = false;
        }
        /* It may have read the last batch, committed but still on its way to the disk (its
         * WAL sync runs outside the lock): its answer waits for that sync too. */
        if (s->unsynced > atomic_load(&s->committed))
            wait_for = s->unsynced;
    }
    /* A connection lost during the section: nothing it read or wrote can be trusted (a failed
     * lookup looks like an absent row), and its transaction is gone. */
    *lost_out = s->pg && pg_lost(s->pg);
    pthread_mutex_unlock(&s->lock);
    return wait_for;
}

/* Waits, the lock released meanwhile, for the pace the previous commit's batch sets (lock
 * held). */
static void pace_commit(store_t *s)
{
    if (s->last_batch < 2 || s->stopping)
        return;
    long pace = s->last_batch * PACE_WRITER_US;
    if (pace > PACE_MAX_US)
        pace = PACE_MAX_US;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long since = (long)(now.tv_sec - s->last_commit.tv_sec) * 1000000L +
                 (now.tv_nsec - s->last_commit.tv_nsec) / 1000;
    if (since >= 0 && since < pace) {
        pthread_mutex_unlock(&s->lock);
        struct timespec pause = {0, (pace - since) * 1000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&s->lock);
    }
}

/* Commits the group transaction whenever it holds changes; see the file comment. */
static void *commit_loop(void *arg)
{
    store_t *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->dirty && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->dirty && s->stopping)
            break;
        pace_commit(s);
        /* Let the writers already queued for the lock join this batch. */
        for (int waited = 0; waited < BATCH_WAIT_US && atomic_load(&s->queued) > 0; waited += 50) {
            pthread_mutex_unlock(&s->lock);
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
            pthread_mutex_lock(&s->lock);
        }
        uint64_t epoch = s->epoch;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        s->last_commit = t0;
        s->last_batch = s->batch_writers;
        /* After a failed WAL sync nothing more is committed (see below). */
        bool broken = s->broken_from != 0; /* only this thread writes it */
        bool ok = !broken && db_control(s, "COMMIT") == TASSA_OK;
        bool sync_wal = ok && s->wal_fd >= 0;
        /* The checkpointer copies while writers go on, so it never reaches the WAL's end and
         * the WAL would only grow: once it has copied, the committer copies the few frames
         * written since, here, so that the next transaction starts the WAL over. */
        if (sync_wal && atomic_load(&s->ckpt) == CKPT_COPIED) {
            sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            atomic_store(&s->ckpt, CKPT_IDLE);
        }
        metrics_add(M_COMMIT_BATCH, s->batch_writers, NULL);
        s->batch_writers = 0;
        if (!ok) {
            if (!broken)
                log_error("event=store_commit_failed epoch=%llu err=\"%s\"",
                          (unsigned long long)epoch, store_errmsg(s));
            if (s->pg)
                pg_control(s->pg, "ROLLBACK");
            else if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        }
        s->open_txn = false;
        s->dirty = false;
        if (sync_wal)
            s->unsynced = epoch;
        pthread_mutex_unlock(&s->lock);
        /* The next batch runs meanwhile; nothing of this one is acknowledged before this. A
         * failed sync cannot be undone (the transaction is committed, and the kernel may have
         * dropped its pages): like PostgreSQL, stop making changes durable; every later write
         * fails until the server is restarted and SQLite recovers the file from its WAL. */
        bool sync_failed = sync_wal && fdatasync(s->wal_fd) != 0;
        if (sync_failed) {
            log_error("event=store_sync_failed epoch=%llu errno=%d writes=refused_until_restart",
                      (unsigned long long)epoch, errno);
            ok = false;
        }
        metrics_add(M_COMMIT_SECONDS, seconds_since(&t0), NULL);
        pthread_mutex_lock(&s->done_lock);
        if (sync_failed)
            s->broken_from = epoch;
        s->committed = epoch;
        if (!ok)
            s->failed = epoch;
        pthread_cond_broadcast(&s->done);
        store_waiter_t *ready = settled_waiters_locked(s);
        pthread_mutex_unlock(&s->done_lock);
        while (ready) { /* outside every lock; w may be freed by its own done */
            store_waiter_t *w = ready;
            ready = w->next;
            w->done(w->ctx, w->err);
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

tassa_err store_exec(store_t *s, const char *sql, errmsg_t *em)
{
    if (s->pg)
        return pg_exec(s->pg, sql, em);
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        err_set(em, TASSA_ESTORE, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return TASSA_ESTORE;
    }
    return TASSA_OK;
}

tassa_err store_schema(store_t *s, const char *sql, errmsg_t *em)
{
    errmsg_t why = {{0}};
    store_lock(s);
    tassa_err err = store_exec(s, sql, &why);
    store_unlock(s);
    if (err)
        return err_set(em, err, "schema: %s", why.text);
    return TASSA_OK;
}

tassa_err store_begin(store_t *s)
{
    if (deferred.s == s && deferred.failed)
        return TASSA_ESTORE; /* an earlier write of this thread's is gone: no later one */
    if (s->in_savepoint || db_control(s, "SAVEPOINT op") != TASSA_OK) {
        log_error("event=store_begin_failed err=\"%s\"", store_errmsg(s));
        return TASSA_ESTORE;
    }
    s->in_savepoint = true;
    return TASSA_OK;
}

tassa_err store_commit(store_t *s)
{
    if (!s->in_savepoint)
        return TASSA_ESTORE;
    s->in_savepoint = false;
    if (db_control(s, "RELEASE op") != TASSA_OK) {
        log_error("event=store_release_failed err=\"%s\"", store_errmsg(s));
        return TASSA_ESTORE;
    }
    return TASSA_OK;
}

void store_rollback(store_t *s)
{
    if (!s->in_savepoint)
        return;
    s->in_savepoint = false;
    db_control(s, "ROLLBACK TO op; RELEASE op");
}

static size_t sql_hash(const char *sql)
{
    size_t h = 5381;
    for (; *sql; sql++)
        h = h * 33 + (unsigned char)*sql;
    return h;
}

/* The cache slot for sql: where it is, or a free slot for it (NULL when the probe is full). */
static cached_stmt_t *cache_slot(store_t *s, const char *sql)
{
    size_t h = sql_hash(sql);
    for (int probe = 0; probe < 8; probe++) {
        cached_stmt_t *c = &s->cache[(h + (size_t)probe) % STMT_CACHE];
        if (!c->sql || strcmp(c->sql, sql) == 0)
            return c;
    }
    return NULL;
}

/* A statement given out by store_prepare: the cached SQLite slot's, or a new malloc'd one. */
static store_stmt_t *wrap(sqlite3_stmt *sq, pg_stmt_t *pg)
{
    store_stmt_t *h = calloc(1, sizeof *h);
    if (!h) {
        sqlite3_finalize(sq);
        pg_release(pg);
        return NULL;
    }
    h->sq = sq;
    h->pg = pg;
    return h;
}

/* The row-locking clause of the dialect (store.h) that SQLite, one writer at a time, lacks. */
static const char FOR_UPDATE[] = " FOR UPDATE SKIP LOCKED";

/* Compiles sql on SQLite, without FOR_UPDATE when it holds it. SQLITE_OK or SQLite's code. */
static int sqlite_prepare(sqlite3 *db, const char *sql, unsigned flags, sqlite3_stmt **st)
{
    const char *at = strstr(sql, FOR_UPDATE);
    if (!at)
        return sqlite3_prepare_v3(db, sql, -1, flags, st, NULL);
    size_t head = (size_t)(at - sql), len = strlen(sql);
    char *text = malloc(len + 1);
    if (!text)
        return SQLITE_NOMEM;
    memcpy(text, sql, head);
    memcpy(text + head, at + sizeof FOR_UPDATE - 1, len - head - (sizeof FOR_UPDATE - 1) + 1);
    int rc = sqlite3_prepare_v3(db, text, -1, flags, st, NULL);
    free(text);
    return rc;
}

/* store_prepare, logging a failure unless quiet. */
static store_stmt_t *prepare(store_t *s, const char *sql, bool quiet)
{
    if (s->pg) {
        pg_stmt_t *pg = pg_prepare(s->pg, sql, quiet);
        return pg ? wrap(NULL, pg) : NULL;
    }
    cached_stmt_t *c = cache_slot(s, sql);
    if (c && c->st && !c->in_use) {
        c->in_use = true;
        return &c->h;
    }
    sqlite3_stmt *st = NULL;
    bool keep = c && !c->sql;
    if (sqlite_prepare(s->db, sql, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st) != SQLITE_OK) {
        if (!quiet)
            log_error("event=store_prepare_failed err=\"%s\"", sqlite3_errmsg(s->db));
        return NULL;
    }
    if (keep && (c->sql = strdup(sql))) {
        c->st = st;
        c->in_use = true;
        c->h = (store_stmt_t){.sq = st, .slot = c};
        return &c->h;
    }
    return wrap(st, NULL);
}

store_stmt_t *store_prepare(store_t *s, const char *sql)
{
    return prepare(s, sql, false);
}

store_stmt_t *store_prepare_quiet(store_t *s, const char *sql)
{
    return prepare(s, sql, true);
}

void store_reset(store_stmt_t *st)
{
    if (!st)
        return;
    if (st->pg) {
        pg_reset(st->pg);
        return;
    }
    sqlite3_reset(st->sq);
    sqlite3_clear_bindings(st->sq);
}

void store_release(store_t *s, store_stmt_t *st)
{
    (void)s;
    if (!st)
        return;
    if (st->slot) {
        sqlite3_reset(st->sq);
        sqlite3_clear_bindings(st->sq);
        st->slot->in_use = false;
        return;
    }
    pg_release(st->pg);
    sqlite3_finalize(st->sq);
    free(st);
}

/* The tassa_err for a bind's SQLite result code, logging a failure. */
static tassa_err bound(store_stmt_t *st, int i, int rc)
{
    if (rc == SQLITE_OK)
        return TASSA_OK;
    log_error("event=store_bind_failed index=%d err=\"%s\"", i,
              sqlite3_errmsg(sqlite3_db_handle(st->sq)));
    return TASSA_ESTORE;
}

tassa_err store_bind_text(store_stmt_t *st, int i, const char *v)
{
    if (st->pg)
        return pg_bind(st->pg, i, v, v ? strlen(v) : 0, false, false);
    return bound(st, i,
                 v ? sqlite3_bind_text(st->sq, i, v, -1, SQLITE_STATIC)
                   : sqlite3_bind_null(st->sq, i));
}

tassa_err store_bind_text_copy(store_stmt_t *st, int i, const char *v)
{
    if (st->pg)
        return pg_bind(st->pg, i, v, v ? strlen(v) : 0, false, true);
    return bound(st, i,
                 v ? sqlite3_bind_text(st->sq, i, v, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st->sq, i));
}

tassa_err store_bind_int64(store_stmt_t *st, int i, int64_t v)
{
    if (st->pg) {
        char num[24];
        int n = snprintf(num, sizeof num, "%lld", (long long)v);
        return pg_bind(st->pg, i, num, (size_t)n, false, true);
    }
    return bound(st, i, sqlite3_bind_int64(st->sq, i, v));
}

tassa_err store_bind_null(store_stmt_t *st, int i)
{
    if (st->pg)
        return pg_bind(st->pg, i, NULL, 0, false, false);
    return bound(st, i, sqlite3_bind_null(st->sq, i));
}

tassa_err store_bind_blob(store_stmt_t *st, int i, const void *v, size_t n)
{
    if (st->pg) /* binary format: the raw bytes, for a bytea (or text) parameter */
        return pg_bind(st->pg, i, n ? v : "", n, true, false);
    if (n > INT32_MAX)
        return bound(st, i, SQLITE_TOOBIG);
    return bound(st, i, sqlite3_bind_blob(st->sq, i, n ? v : "", (int)n, SQLITE_STATIC));
}

int store_step(store_stmt_t *st)
{
    if (st->pg)
        return pg_step(st->pg);
    switch (sqlite3_step(st->sq)) {
    case SQLITE_ROW: return STORE_ROW;
    case SQLITE_DONE: return STORE_DONE;
    case SQLITE_CONSTRAINT: return TASSA_ECONFLICT;
    default: return TASSA_ESTORE;
    }
}

const char *store_col_text(store_stmt_t *st, int i)
{
    if (st->pg)
        return pg_col_text(st->pg, i);
    return (const char *)sqlite3_column_text(st->sq, i);
}

const void *store_col_blob(store_stmt_t *st, int i)
{
    if (st->pg)
        return pg_col_blob(st->pg, i);
    return sqlite3_column_blob(st->sq, i);
}

size_t store_col_bytes(store_stmt_t *st, int i)
{
    if (st->pg)
        return pg_col_bytes(st->pg, i);
    return (size_t)sqlite3_column_bytes(st->sq, i);
}

int64_t store_col_int64(store_stmt_t *st, int i)
{
    if (st->pg) { /* text results: numbers, or t/f for a boolean */
        const char *v = pg_col_text(st->pg, i);
        if (!v)
            return 0;
        if (v[0] == 't' || v[0] == 'f')
            return v[0] == 't';
        return strtoll(v, NULL, 10);
    }
    return sqlite3_column_int64(st->sq, i);
}

double store_col_double(store_stmt_t *st, int i)
{
    if (st->pg) {
        const char *v = pg_col_text(st->pg, i);
        return v ? strtod(v, NULL) : 0;
    }
    return sqlite3_column_double(st->sq, i);
}

bool store_col_is_null(store_stmt_t *st, int i)
{
    if (st->pg)
        return pg_col_is_null(st->pg, i);
    return sqlite3_column_type(st->sq, i) == SQLITE_NULL;
}

int64_t store_changes(store_t *s)
{
    return s->pg ? pg_changes(s->pg) : sqlite3_changes64(s->db);
}

const char *store_errmsg(store_t *s)
{
    return s->pg ? pg_errmsg(s->pg) : sqlite3_errmsg(s->db);
}

tassa_err store_meta_get(store_t *s, const char *key, char **out)
{
    tassa_err err = TASSA_ENOTFOUND;
    *out = NULL;
    store_lock(s);
    store_stmt_t *st = store_prepare(s, "SELECT value FROM meta WHERE key = ?");
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    store_bind_text(st, 1, key);
    if (store_step(st) == STORE_ROW) {
        *out = strdup(store_col_text(st, 0));
        err = *out ? TASSA_OK : TASSA_ENOMEM;
    }
out:
    store_release(s, st);
    store_unlock(s);
    return err;
}

tassa_err store_meta_claim(store_t *s, const char *key, const char *value, char **out)
{
    *out = NULL;
    tassa_err err = TASSA_ESTORE;
    store_lock(s);
    store_stmt_t *st = store_prepare(s, "INSERT INTO meta (key, value) VALUES (?, ?) "
                                        "ON CONFLICT (key) DO NOTHING");
    if (st) {
        store_bind_text(st, 1, key);
        store_bind_text(st, 2, value);
        int rc = store_step(st);
        store_release(s, st);
        st = rc == STORE_DONE ? store_prepare(s, "SELECT value FROM meta WHERE key = ?") : NULL;
    }
    if (st) {
        store_bind_text(st, 1, key);
        if (store_step(st) == STORE_ROW)
            err = (*out = strdup(store_col_text(st, 0))) ? TASSA_OK : TASSA_ENOMEM;
        store_release(s, st);
    }
    tassa_err durable = store_unlock(s);
    if (!err && durable) {
        free(*out);
        *out = NULL;
        err = durable;
    }
    return err;
}

tassa_err store_meta_set(store_t *s, const char *key, const char *value)
{
    tassa_err err = TASSA_OK;
    store_lock(s);
    store_stmt_t *st = store_prepare(s, "INSERT INTO meta (key, value) VALUES (?, ?) "
                                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    store_bind_text(st, 1, key);
    store_bind_text(st, 2, value);
    if (store_step(st) != STORE_DONE)
        err = TASSA_ESTORE;
out:
    store_release(s, st);
    tassa_err durable = store_unlock(s);
    return err ? err : durable;
}

const char *store_where(const store_t *s)
{
    return s->where;
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_lib_versions(char *out, size_t n)
{
    char pq[64];
    pg_lib_version(pq, sizeof pq);
    snprintf(out, n, "sqlite %s (built with %s)\n%s", sqlite3_libversion(), SQLITE_VERSION, pq);
}

bool store_shared(const store_t *s)
{
    return s->pg != NULL;
}

/* The session thread of a PostgreSQL store, started at first use; NULL on SQLite or when it
 * cannot start. */
static pg_session_t *session(store_t *s)
{
    if (!s->pg)
        return NULL;
    pthread_mutex_lock(&s->session_lock);
    if (!s->session && !(s->session = pg_session_new(s->url)))
        log_error("event=store_session_failed err=\"cannot start the session thread\"");
    pg_session_t *ps = s->session;
    pthread_mutex_unlock(&s->session_lock);
    return ps;
}

bool store_lease_hold(store_t *s, const char *name)
{
    if (!s->pg)
        return true;
    pg_session_t *ps = session(s);
    return ps && pg_session_lease(ps, name);
}

size_t store_leases(store_t *s, const char **names, size_t max, char *buf, size_t n)
{
    if (!s->pg) {
        size_t len = strlen("data-file") + 1;
        if (!max || len > n)
            return 0;
        memcpy(buf, "data-file", len);
        names[0] = buf;
        return 1;
    }
    pg_session_t *ps = session(s);
    return ps ? pg_session_leases(ps, names, max, buf, n) : 0;
}

tassa_err store_notify(store_t *s, const char *channel, const char *payload)
{
    if (!s->pg)
        return TASSA_OK;
    store_stmt_t *st = store_prepare(s, "SELECT pg_notify(?, ?)");
    if (!st)
        return TASSA_ESTORE;
    store_bind_text(st, 1, channel);
    store_bind_text(st, 2, payload);
    int rc = store_step(st);
    store_release(s, st);
    return rc == STORE_ROW ? TASSA_OK : TASSA_ESTORE;
}

tassa_err store_listen(store_t *s, const char *channel, store_notify_fn fn, void *ctx)
{
    if (!s->pg)
        return TASSA_OK;
    pg_session_t *ps = session(s);
    return ps ? pg_session_listen(ps, channel, fn, ctx) : TASSA_ESTORE;
}

void store_unlisten(store_t *s, store_notify_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->session_lock);
    pg_session_t *ps = s->session;
    pthread_mutex_unlock(&s->session_lock);
    if (ps)
        pg_session_unlisten(ps, fn, ctx);
}
