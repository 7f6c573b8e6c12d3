/* store.h - the door to persistence: one SQLite file in WAL mode with full fsync, and group
 * commit.
 *
 * One connection is shared by the engines and guarded by the store lock: take it with
 * store_lock() around every use of store_db(), keep the critical section short and do no
 * network I/O inside it. Group commit: every critical section runs inside one long SQLite
 * transaction that a committer thread commits (one fsync, synchronous=FULL) as soon as it
 * holds changes, batching all the writers that queued meanwhile. store_unlock() returns only
 * once every change the caller made, or could have read, is on disk; so an answer sent after
 * store_unlock() survives kill -9 and power loss, and a burst of N writers costs a few fsyncs
 * instead of N. store_begin/commit/rollback are savepoints inside it: a failed operation
 * undoes only its own changes. Engine modules create their tables with store_schema().
 *
 * Layer: store.
 */
#ifndef TASSA_STORE_H
#define TASSA_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct store store_t;

/* Opens (creating if needed) the data file at path. NULL with a detail in em on failure
 * (unwritable folder, not a tassa/SQLite file, locked by another process). */
store_t *store_open(const char *path, errmsg_t *em);

/* Writes "sqlite RUNTIME (built with COMPILED)" (SQLite's run-time version and the one tassa
 * was compiled with), NUL-terminated and cut to n bytes, into out. Any thread. */
void store_lib_versions(char *out, size_t n);

/* Closes the file and frees s. Accepts NULL. */
void store_close(store_t *s);

/* Claims the data file at path for this process, so that two servers never run engines on
 * one file: takes an exclusive flock(2) on "<path>.lock" (created if needed; a separate file,
 * because SQLite's own fcntl locks on the data file must stay independent) and keeps it until
 * store_claim_release or the process exits. Returns the lock's descriptor (>= 0), or -1 with a
 * detail in em: TASSA_ECONFLICT-style "data file ... is in use by another tassa process" when
 * another process holds it, or why the lock file cannot be opened. Tools that only read or
 * add credentials (`tassa credentials`, `user-token`) do not claim. Call from the main thread. */
int store_claim(const char *path, errmsg_t *em);

/* Releases a claim from store_claim. Accepts -1. */
void store_claim_release(int claim);

/* Takes the store lock (a plain mutex; not recursive). */
void store_lock(store_t *s);

/* Releases the lock, then waits until the changes made under it (and any uncommitted change
 * it could have read) are durable. TASSA_ESTORE when that commit failed: the changes are then
 * gone (rolled back) and the caller must report failure. Read-only sections return at once
 * unless they could have seen uncommitted data. */
tassa_err store_unlock(store_t *s);

/* The SQLite handle; only with the lock held. Borrowed. */
sqlite3 *store_db(store_t *s);

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

/* Writes a meta value durably. Takes the lock. */
tassa_err store_meta_set(store_t *s, const char *key, const char *value);

/* Prepares sql on the shared connection (lock held); NULL after logging on failure. The
 * statement may come from a cache of compiled statements: give it back with store_release,
 * never sqlite3_finalize. */
sqlite3_stmt *store_prepare(store_t *s, const char *sql);

/* Resets and returns a statement from store_prepare (lock held). Accepts NULL. */
void store_release(store_t *s, sqlite3_stmt *st);

/* Milliseconds since the Unix epoch, the time unit of every stored date. */
int64_t store_now_ms(void);

/* Copies the data file at src, live or not, to dst with SQLite's online backup API (store/
 * backup.c): a consistent snapshot holding every write committed before it began, as one
 * self-contained file (journal mode DELETE), checked, synced and renamed into place. Refuses an
 * existing dst unless force (TASSA_ECONFLICT), and dst == src (TASSA_EINVAL). TASSA_ENOTFOUND
 * when src does not exist, TASSA_ESTORE with a detail otherwise. Any thread; opens its own
 * connections. */
tassa_err store_backup(const char *src, const char *dst, bool force, errmsg_t *em);

#endif
