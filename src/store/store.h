/* store.h - the door to persistence: one SQLite file in WAL mode with full fsync, or one
 * PostgreSQL database (a postgres:// or postgresql:// URL, libpq), with group commit, and the
 * small portable query layer that every engine uses on it.
 *
 * One connection is shared by the engines and guarded by the store lock: take it with
 * store_lock() around every use of the query layer below, keep the critical section short and do no
 * network I/O inside it. Group commit: every critical section runs inside one long SQLite
 * transaction that a committer thread commits (one fsync, synchronous=FULL) as soon as it
 * holds changes, batching all the writers that queued meanwhile; under load (a batch of several
 * writers) the next commit waits up to 2 ms after the previous one began, so that more writers
 * share each, while a lone writer is never held back. store_unlock() returns only
 * once every change the caller made, or could have read, is on disk; so an answer sent after
 * store_unlock() survives kill -9 and power loss, and a burst of N writers costs a few fsyncs
 * instead of N. store_begin/commit/rollback are savepoints inside it: a failed operation
 * undoes only its own changes. Engine modules create their tables with store_schema().
 *
 * Query layer: nothing above the store sees the database library. SQL is written with `?`
 * placeholders, numbered from 1 in the bind calls, or `?N` to use parameter N more than once
 * (a PostgreSQL back end rewrites both to $n), prepared with store_prepare, bound with
 * store_bind_*, run with store_step and read with store_col_*. Every call of the query layer needs
 * the store lock held by the calling thread, from store_prepare to store_release; a statement never
 * outlives the critical section.
 *
 * Dialect: SQLite's, which the PostgreSQL back end translates (placeholders, INTEGER is BIGINT,
 * AUTOINCREMENT is BIGSERIAL, INDEXED BY hints dropped). One addition: a SELECT may end in
 * " FOR UPDATE SKIP LOCKED" (exactly so, one space before each word) to claim rows that
 * another process may be claiming at the same time; PostgreSQL runs it as written, and the
 * SQLite store drops those words (one writer at a time: nothing else could hold the rows).
 *
 * Layer: store.
 */
#ifndef TASSA_STORE_H
#define TASSA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct store store_t;

/* A prepared statement of the query layer; opaque. Owned by the store (which may cache it for
 * reuse): borrowed from store_prepare until store_release. */
typedef struct store_stmt store_stmt_t;

/* What store_step returns besides a negative tassa_err. */
enum {
    STORE_DONE = 0, /* the statement has run to its end (== TASSA_OK) */
    STORE_ROW = 1,  /* a result row is ready for store_col_* */
};

/* Opens (creating if needed) the data file at path, or connects to the PostgreSQL database when
 * path is a postgres:// or postgresql:// URL (one connection; parameters text, results text;
 * SQLSTATE 23xxx is TASSA_ECONFLICT; a lost connection answers TASSA_ESTORE and is retried with
 * back-off at the next store_lock). NULL with a detail in em on failure (unwritable folder, not
 * a tassa/SQLite file, locked by another process; an unreachable database gives one line
 * naming host and port, never the password). */
store_t *store_open(const char *path, errmsg_t *em);

/* Where s keeps its data, for logs: the data file's path, or "postgres://USER@HOST:PORT/DB"
 * without the password or other URL options. Borrowed from s. Any thread. */
const char *store_where(const store_t *s);

/* Writes "sqlite RUNTIME (built with COMPILED)\nlibpq VERSION" (SQLite's run-time version and
 * the one tassa was compiled with; libpq's), NUL-terminated and cut to n bytes, into out. Any
 * thread. */
void store_lib_versions(char *out, size_t n);

/* Closes the file and frees s. Accepts NULL. */
void store_close(store_t *s);

/* Claims the data file at path for this process, so that two servers never run engines on
 * one file: takes an exclusive flock(2) on "<path>.lock" (created if needed; a separate file,
 * because SQLite's own fcntl locks on the data file must stay independent) and keeps it until
 * store_claim_release or the process exits. Returns the lock's descriptor (>= 0), or -1 with a
 * detail in em: TASSA_ECONFLICT-style "data file ... is in use by another tassa process" when
 * another process holds it, or why the lock file cannot be opened. Tools that only read or
 * add credentials (`tassa credentials`, `user-token`) do not claim. A PostgreSQL URL claims
 * nothing (several nodes may share the database) and returns a descriptor of /dev/null. Call
 * from the main thread. */
int store_claim(const char *path, errmsg_t *em);

/* Releases a claim from store_claim. Accepts -1. */
void store_claim_release(int claim);

/* Takes the store lock (a plain mutex; not recursive). */
void store_lock(store_t *s);

/* The number of the current critical section: different at every store_lock, so that a caller
 * can keep what it read in one section and know when it may no longer trust it (another
 * section, here or on another node, may have changed it since). Lock held. */
uint64_t store_section(const store_t *s);

/* Releases the lock, then waits until the changes made under it (and any uncommitted change
 * it could have read) are durable. TASSA_ESTORE when that commit failed, or when the
 * connection to PostgreSQL was lost during the section (so a lookup that failed must not be
 * taken for an absent row): the changes are then gone (rolled back) and the caller must
 * report failure, whatever else the section concluded. Read-only sections return at once
 * unless they could have seen uncommitted data. */
tassa_err store_unlock(store_t *s);

/* Releases the lock without waiting for anything to become durable, for a read-only section
 * whose reads only feed a later compare-and-set write on this store (a write that matches
 * only the row state the section read: if that state is rolled back, the write cannot match).
 * A section that wrote must not use it. TASSA_ESTORE when the connection to PostgreSQL was
 * lost during the section (what it read cannot be trusted). */
tassa_err store_unlock_nowait(store_t *s);

/* What store_unlock_async calls once the section's changes are settled: err is what
 * store_unlock would have returned (TASSA_OK: durable; TASSA_ESTORE: rolled back). */
typedef void (*store_done_fn)(void *ctx, tassa_err err);

/* A place in the committer's queue for store_unlock_async; the caller provides it (usually
 * inside ctx) and it must stay valid until done has run. Fields are the store's. */
typedef struct store_waiter {
    store_done_fn done;
    void *ctx;
    uint64_t epoch;
    tassa_err err;
    struct store_waiter *next;
} store_waiter_t;

/* store_unlock without the wait: releases the lock and returns at once; done(ctx, err) runs
 * exactly once, with the err store_unlock would return, when the changes made under the lock
 * (and any uncommitted change the section could have read) are durable or have failed. It
 * runs on the calling thread before this returns when there is nothing to wait for (a
 * read-only section, or its commit already made), else on the committer thread after the
 * commit, outside every store lock: it must be short and must not block; above all it must
 * not take the store lock (store_unlock would wait for the committer, which is waiting for
 * done: a deadlock). Hand the work to another thread instead. w (borrowed) holds the entry.
 * Cannot fail. */
void store_unlock_async(store_t *s, store_waiter_t *w, store_done_fn done, void *ctx);

/* Deferred durability, for a thread that must answer only once its writes are durable but
 * need not wait for them itself (the writers pool of http_server_offload): between
 * store_defer_begin and store_defer_end, store_unlock on this thread returns without waiting
 * for the commit (TASSA_ESTORE only when the PostgreSQL connection was lost in the section),
 * and store_defer_end's done(ctx, err) says whether every change made meanwhile is durable
 * (TASSA_OK) or gone (TASSA_ESTORE), with store_unlock_async's rules: it runs on this thread
 * when nothing is left to wait for, else on the committer thread, and must not block.
 * A later section of this thread first waits for the earlier ones (store_lock, outside the
 * lock), and when they failed its store_begin answers TASSA_ESTORE, so that no write is made
 * after one that was lost, as with store_unlock. w (borrowed) must stay valid until done has
 * run. One store per thread at a time; not nested. Cannot fail. */
void store_defer_begin(store_t *s);
void store_defer_end(store_t *s, store_waiter_t *w, store_done_fn done, void *ctx);

/* Runs SQL text (several statements) such as CREATE TABLE IF NOT EXISTS, taking the lock. */
tassa_err store_schema(store_t *s, const char *sql, errmsg_t *em);

/* One all-or-nothing operation inside the group transaction (SAVEPOINT / RELEASE /
 * ROLLBACK TO), with the lock held. Not nested. Durability comes with store_unlock. */
tassa_err store_begin(store_t *s);
tassa_err store_commit(store_t *s);
void store_rollback(store_t *s);

/* Reads a value of the meta table (generated credentials, workspace SID) into a malloc'd
 * string. TASSA_ENOTFOUND if absent. Takes the lock. */
tassa_err store_meta_get(store_t *s, const char *key, char **out);

/* Stores value under key unless the key already has one, and returns in *out (malloc'd) the
 * value that is stored now: value, or the one another process stored first. So processes that
 * generate a value at the same time (credentials, default SIDs) all end up with one. Durable
 * on return. Takes the lock. */
tassa_err store_meta_claim(store_t *s, const char *key, const char *value, char **out);

/* Writes a meta value durably. Takes the lock. */
tassa_err store_meta_set(store_t *s, const char *key, const char *value);

/* Runs SQL text that may hold several statements and no parameters (schema text, a probe such
 * as "SELECT 1"), with the lock held; rows are discarded. TASSA_ESTORE with the database's
 * message in em (may be NULL) on failure. */
tassa_err store_exec(store_t *s, const char *sql, errmsg_t *em);

/* Prepares one statement of sql (`?` placeholders) on the shared connection, lock held. NULL
 * after logging on failure (bad SQL, out of memory). The statement may come from a cache of
 * compiled statements keyed by the SQL text: give it back with store_release, never keep it
 * past the critical section. Its binds start unset (NULL). */
store_stmt_t *store_prepare(store_t *s, const char *sql);

/* store_prepare for a probe (does this column exist yet?): a failure is an answer, so it is
 * not logged. */
store_stmt_t *store_prepare_quiet(store_t *s, const char *sql);

/* Rewinds st to run again and clears its binds; the statement stays prepared. Lock held.
 * Accepts NULL. */
void store_reset(store_stmt_t *st);

/* Gives back a statement from store_prepare (reset and kept in the cache, or freed). Lock
 * held. Accepts NULL. Texts and bytes read from it are invalid afterwards. */
void store_release(store_t *s, store_stmt_t *st);

/* Binds parameter i (1 = the first `?`) of st, before the first store_step or after a reset.
 * TASSA_OK, or TASSA_ESTORE (i out of range, out of memory; logged). Lock held.
 * store_bind_text borrows v (NULL binds NULL): the text must stay unchanged until st is reset
 * or released. store_bind_text_copy copies v at once. store_bind_blob borrows n bytes at v in
 * the same way (v may be NULL when n is 0). */
tassa_err store_bind_text(store_stmt_t *st, int i, const char *v);
tassa_err store_bind_text_copy(store_stmt_t *st, int i, const char *v);
tassa_err store_bind_int64(store_stmt_t *st, int i, int64_t v);
tassa_err store_bind_null(store_stmt_t *st, int i);
tassa_err store_bind_blob(store_stmt_t *st, int i, const void *v, size_t n);

/* Runs st to its next row. STORE_ROW when a row is ready, STORE_DONE (0) when the statement
 * has finished, or a negative tassa_err: TASSA_ECONFLICT when a UNIQUE, PRIMARY KEY, CHECK or
 * FOREIGN KEY constraint refused the change (nothing of it is applied), TASSA_ESTORE for any
 * other failure (the message is in store_errmsg). Lock held. To run st again after
 * STORE_DONE or a failure, store_reset it first. */
int store_step(store_stmt_t *st);

/* Column i (0 = the first) of the current row, valid only after store_step returned
 * STORE_ROW. store_col_text returns NULL for SQL NULL; the text is borrowed from st and valid
 * until its next step, reset or release. store_col_bytes is the length in bytes of a text or
 * blob value (0 for NULL), store_col_blob its bytes (borrowed the same way, NULL when empty).
 * Numbers read from NULL are 0. Lock held. */
const char *store_col_text(store_stmt_t *st, int i);
const void *store_col_blob(store_stmt_t *st, int i);
size_t store_col_bytes(store_stmt_t *st, int i);
int64_t store_col_int64(store_stmt_t *st, int i);
double store_col_double(store_stmt_t *st, int i);
bool store_col_is_null(store_stmt_t *st, int i);

/* The number of rows inserted, updated or deleted by the last statement that finished on the
 * shared connection (not counting rows changed by triggers or foreign key actions). Lock held. */
int64_t store_changes(store_t *s);

/* The database's message for the last failure on the shared connection, for logs. Borrowed,
 * valid until the next call of the query layer. Never NULL. Lock held. */
const char *store_errmsg(store_t *s);

/* Milliseconds since the Unix epoch, the time unit of every stored date. */
int64_t store_now_ms(void);

/* Copies the data file at src, live or not, to dst with SQLite's online backup API (store/
 * backup.c): a consistent snapshot holding every write committed before it began, as one
 * self-contained file (journal mode DELETE), checked, synced and renamed into place. Refuses an
 * existing dst unless force (TASSA_ECONFLICT), and dst == src (TASSA_EINVAL). TASSA_ENOTFOUND
 * when src does not exist, TASSA_EINVAL for a PostgreSQL URL (use pg_dump), TASSA_ESTORE with
 * a detail otherwise. Any thread; opens its own connections. */
tassa_err store_backup(const char *src, const char *dst, bool force, errmsg_t *em);

/* Several processes ------------------------------------------------------------------------
 *
 * A PostgreSQL store may be shared by several tassa processes (nodes). Their group
 * transactions never interleave (each takes one database-wide lock, see store_impl.h's
 * pg_begin), so every critical section on any node sees every change committed before it, and
 * a compare-and-set (UPDATE ... WHERE revision = ?) is exact. What one node keeps in memory
 * about the data (live subscribers, timers) learns of other nodes' changes through leases and
 * notifications below. A SQLite file has one process (store_claim): its leases are always held
 * and its notifications go nowhere, since there is nobody else to tell. */

/* True when other processes may change the data at the same time (PostgreSQL); false for a
 * SQLite file. Any thread. */
bool store_shared(const store_t *s);

/* Tells whether this process holds the lease name (at most 63 bytes, at most 8 names per
 * process), registering it on the first call: on PostgreSQL a session thread tries to take
 * every registered lease once a second, keeps it while its session with the database lasts,
 * and drops it when the session ends (a node killed with -9 loses its leases as soon as the
 * database sees its connection close; another node takes them within about a second). Never
 * waits for the database. Always true on SQLite. Any thread; no lock needed. */
bool store_lease_hold(store_t *s, const char *name);

/* The leases held now: up to max names into names, pointing into buf (n bytes); returns how
 * many ("data-file" on SQLite). Any thread. */
size_t store_leases(store_t *s, const char **names, size_t max, char *buf, size_t n);

/* Sends payload (small: ids and revisions, never documents; PostgreSQL caps it at 8000
 * bytes) on channel to every process that listens, this one included, when the group
 * transaction commits, in commit order; nothing if it rolls back. Lock held. TASSA_OK and
 * nothing sent on SQLite. */
tassa_err store_notify(store_t *s, const char *channel, const char *payload);

/* Called with each payload sent on a channel; payload NULL means "notifications may have been
 * missed" (after the session to the database started or came back): catch up from the tables.
 * Runs on the store's session thread: must be quick and must not take the store lock. */
typedef void (*store_notify_fn)(void *ctx, const char *payload);

/* Calls fn(ctx, payload) for every store_notify on channel (letters, digits, _; at most 8
 * listeners per process), from now until store_close. TASSA_EINVAL for a bad channel,
 * TASSA_ESTORE when the session cannot start. Never called on SQLite. Any thread. */
tassa_err store_listen(store_t *s, const char *channel, store_notify_fn fn, void *ctx);

/* Ends the calls of fn with ctx from store_listen; returns once none is running, so ctx may be
 * freed afterwards. Call before freeing ctx; not from inside fn. Any thread. */
void store_unlisten(store_t *s, store_notify_fn fn, void *ctx);

#endif
