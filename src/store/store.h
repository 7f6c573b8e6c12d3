/* store.h - the door to persistence: one SQLite file in WAL mode with full fsync.
 *
 * One connection is shared by the engines and guarded by the store lock: take it with
 * store_lock() around every use of store_db() and every transaction, keep the critical
 * section short and do no network I/O inside it. A write is acknowledged to a client only
 * after its transaction committed (synchronous=FULL), so it survives kill -9 and power loss.
 * Engine modules create their own tables with store_schema() at start-up. */
#ifndef TASSA_STORE_H
#define TASSA_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "err.h"

typedef struct store store_t;

/* Opens (creating if needed) the data file at path. NULL with a detail in em on failure
 * (unwritable folder, not a tassa/SQLite file, locked by another process). */
store_t *store_open(const char *path, errmsg_t *em);

/* Closes the file and frees s. Accepts NULL. */
void store_close(store_t *s);

/* Takes and releases the store lock (a plain mutex; not recursive). */
void store_lock(store_t *s);
void store_unlock(store_t *s);

/* The SQLite handle; only with the lock held. Borrowed. */
sqlite3 *store_db(store_t *s);

/* Runs SQL text (several statements) such as CREATE TABLE IF NOT EXISTS, taking the lock. */
tassa_err store_schema(store_t *s, const char *sql, errmsg_t *em);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; with the lock held. store_commit returns
 * TASSA_ESTORE when the commit did not reach the disk (the transaction is then rolled back). */
tassa_err store_begin(store_t *s);
tassa_err store_commit(store_t *s);
void store_rollback(store_t *s);

/* Reads a value of the meta table (generated credentials, workspace SID) into a malloc'd
 * string. TASSA_ENOTFOUND if absent. Takes the lock. */
tassa_err store_meta_get(store_t *s, const char *key, char **out);

/* Writes a meta value durably. Takes the lock. */
tassa_err store_meta_set(store_t *s, const char *key, const char *value);

/* Prepares sql on the shared connection (lock held); NULL after logging on failure. */
sqlite3_stmt *store_prepare(store_t *s, const char *sql);

/* Milliseconds since the Unix epoch, the time unit of every stored date. */
int64_t store_now_ms(void);

#endif
