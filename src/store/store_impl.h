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

typedef struct pg_conn pg_conn_t;
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

/* Runs one transaction-control command (BEGIN, COMMIT, SAVEPOINT ...) as is. */
tassa_err pg_control(pg_conn_t *c, const char *sql);

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
pg_stmt_t *pg_prepare(pg_conn_t *c, const char *sql);
void pg_reset(pg_stmt_t *st);
void pg_release(pg_stmt_t *st);
/* Binds parameter i: v NULL is SQL NULL; n bytes (text when !binary); copy or borrow v. */
tassa_err pg_bind(pg_stmt_t *st, int i, const char *v, size_t n, bool binary, bool copy);
int pg_step(pg_stmt_t *st);
const char *pg_col_text(pg_stmt_t *st, int i);
const void *pg_col_blob(pg_stmt_t *st, int i);
size_t pg_col_bytes(pg_stmt_t *st, int i);
bool pg_col_is_null(pg_stmt_t *st, int i);

/* Writes "postgres://USER@HOST:PORT/DB" (never the password) into out, cut to n bytes. */
void pg_describe(pg_conn_t *c, char *out, size_t n);

/* "libpq VERSION". */
void pg_lib_version(char *out, size_t n);

#endif
