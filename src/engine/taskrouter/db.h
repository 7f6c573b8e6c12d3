/* db.h - terse SQL helpers of the TaskRouter engine: prepare, bind by a type string, step.
 *
 * Internal to engine/taskrouter. Every function here needs the store lock held by the caller.
 * Bind types: 's' const char * (NULL binds SQL NULL), 'i' int64_t, 'd' int (promoted).
 * Rows come back as jansson objects keyed by column name (integers as JSON integers, text as
 * strings, NULL as JSON null), so the engine handles every resource with one row shape.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_DB_H
#define TASSA_TR_DB_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

/* Prepares sql and binds the values described by types. NULL (logged) on failure. */
sqlite3_stmt *db_query(store_t *s, const char *sql, const char *types, ...);

/* As db_query with a va_list. */
sqlite3_stmt *db_vquery(store_t *s, const char *sql, const char *types, va_list ap);

/* Runs one statement to completion. TASSA_ESTORE (logged) on failure. */
tassa_err db_exec(store_t *s, const char *sql, const char *types, ...);

/* The current row of st as a new object {column: value}. NULL on OOM. */
json_t *db_row(sqlite3_stmt *st);

/* The first row of a query as a new object, or NULL when there is none (or on failure). */
json_t *db_one(store_t *s, const char *sql, const char *types, ...);

/* Every row of a query as a new array of objects (empty on failure; NULL on OOM). */
json_t *db_all(store_t *s, const char *sql, const char *types, ...);

/* The first column of the first row as an integer; def when there is no row. */
int64_t db_int(store_t *s, int64_t def, const char *sql, const char *types, ...);

/* Field readers for row objects: the string (borrowed; NULL when absent or null), the
 * integer (0 when absent) and a boolean (non-zero integer or JSON true). */
const char *row_str(const json_t *row, const char *key);
int64_t row_int(const json_t *row, const char *key);

#endif
