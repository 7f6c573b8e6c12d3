/* store_impl.h - the PostgreSQL back end of store.h, used by store.c only (internal).
 *
 * store.c keeps the group commit, the savepoints and the meta values for both back ends and
 * calls these functions when the store was opened on a postgres:// or postgresql:// URL. Every
 * function needs the store lock held by the caller (store.c takes it), except pg_open and
 * pg_close.
 *
 * Layer: store.
 */
#ifndef TASSA_STORE_IMPL_H
#define TASSA_STORE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct tassa_pg pg_conn_t; /* (not libpq's struct pg_conn) */
typedef struct pg_session pg_session_t;

/* The key of the advisory lock that every group transaction takes (see pg_begin), and the
 * class (first key) of the session locks that are leases. */
#define PG_GLOBAL_LOCK "7596223300" /* "tassa" */
#define PG_LEASE_CLASS 7596
typedef struct pg_stmt pg_stmt_t;

/* True when where names a PostgreSQL database (postgres:// or postgresql:// URL). */
bool pg_is_url(const char *where);

/* Connects to url. NULL with one line in em on failure, naming host and port, never the
 * password. */
pg_conn_t *pg_open(const char *url, errmsg_t *em);
void pg_close(pg_conn_t *c);

/* Runs SQL text (several statements, no parameters), discarding rows. Inside a transaction a
 * failure undoes only this text (an inner savepoint), as SQLite does. TASSA_ESTORE with the
 * server's message in em (may be NULL). */
tassa_err pg_exec(pg_conn_t *c, const char *sql, errmsg_t *em);

/* Opens the group transaction: BEGIN, then the transaction-scoped advisory lock
 * PG_GLOBAL_LOCK, which every node takes the same way. So the group transactions of all the
 * nodes on one database run one after the other: each sees every change committed before it,
 * a compare-and-set on a revision can never interleave, TaskRouter matching runs once, and no
 * two nodes can deadlock on each other's row locks. Waits at most lock_timeout (5 s) for another
 * node, then TASSA_ESTORE. */
tassa_err pg_begin(pg_conn_t *c);

/* Runs one transaction-control command (BEGIN, COMMIT, SAVEPOINT ...) as is. */
tassa_err pg_control(pg_conn_t *c, const char *sql);

/* True when the connection is gone (until pg_ensure brings it back). */
bool pg_lost(pg_conn_t *c);

/* Rows changed since the connection opened / by the last finished statement. */
int64_t pg_total_changes(pg_conn_t *c);
int64_t pg_changes(pg_conn_t *c);
const char *pg_errmsg(pg_conn_t *c);

/* Reconnects when the connection was lost, at most once a second. True when it is usable. */
bool pg_ensure(pg_conn_t *c);

/* Rewrites the store's SQL (SQLite's dialect) for PostgreSQL into a malloc'd string, outside
 * quotes: ? and ?N placeholders become $N (the highest number goes to *nparams); the planner
 * hint "INDEXED BY name" is dropped; the types INTEGER (64-bit in SQLite) become BIGINT,
 * "INTEGER PRIMARY KEY AUTOINCREMENT" BIGSERIAL PRIMARY KEY, BLOB BYTEA and REAL DOUBLE
 * PRECISION (upper-case words only, as tassa writes its SQL). pg_exec applies it to schema
 * text as well. NULL when out of memory. */
char *pg_rewrite(const char *sql, int *nparams);

/* The query layer, as in store.h. */
pg_stmt_t *pg_prepare(pg_conn_t *c, const char *sql, bool quiet);
void pg_reset(pg_stmt_t *st);
void pg_release(pg_stmt_t *st);
/* Binds parameter i: v NULL is SQL NULL; n bytes (text when !binary); copy or borrow v. */
tassa_err pg_bind(pg_stmt_t *st, int i, const char *v, size_t n, bool binary, bool copy);
int pg_step(pg_stmt_t *st);
const char *pg_col_text(pg_stmt_t *st, int i);
const void *pg_col_blob(pg_stmt_t *st, int i);
size_t pg_col_bytes(pg_stmt_t *st, int i);
bool pg_col_is_null(pg_stmt_t *st, int i);

/* The session thread (pg_session_new): a second connection for leases and notifications.
 * Every function below may be called from any thread without the store lock. */
typedef void (*pg_notify_fn)(void *ctx, const char *payload);

/* Starts the session thread on url (which it keeps a copy of; never logged). NULL when out of
 * memory or no thread. The thread connects (and reconnects with back-off) by itself. */
pg_session_t *pg_session_new(const char *url);

/* Stops the thread, ending the session (its leases are released). Accepts NULL. */
void pg_session_free(pg_session_t *ps);

/* Registers the lease name (first call) and tells whether this session holds it now. The
 * thread tries to take every registered lease once a second (pg_try_advisory_lock on
 * PG_LEASE_CLASS and a hash of name) and drops them all when the session ends. */
bool pg_session_lease(pg_session_t *ps, const char *name);

/* Writes up to max held lease names into names (pointing into buf, n bytes); returns how
 * many. */
size_t pg_session_leases(pg_session_t *ps, const char **names, size_t max, char *buf, size_t n);

/* Is the session connected now? */
bool pg_session_reachable(pg_session_t *ps);

/* Calls fn(ctx, payload) on the session thread for every NOTIFY on channel (letters, digits
 * and _ only), and fn(ctx, NULL) after each new session starts listening (notifications sent
 * meanwhile are lost: catch up from the tables). fn must be quick and must not take the store
 * lock. TASSA_EINVAL for a bad channel or too many listeners. */
tassa_err pg_session_listen(pg_session_t *ps, const char *channel, pg_notify_fn fn, void *ctx);

/* Stops the calls of fn with ctx; returns once none is running. Not from inside fn. */
void pg_session_unlisten(pg_session_t *ps, pg_notify_fn fn, void *ctx);

/* Writes "postgres://USER@HOST:PORT/DB" (never the password) into out, cut to n bytes. */
void pg_describe(pg_conn_t *c, char *out, size_t n);

/* "libpq VERSION". */
void pg_lib_version(char *out, size_t n);

#endif
