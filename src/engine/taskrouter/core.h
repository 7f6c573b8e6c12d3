/* core.h - what every part of the TaskRouter engine stands on: the engine structure, the
 * transaction helpers, terse SQL helpers, the paged list walk, the 404 and the JSON pieces
 * every resource's rendering uses.
 *
 * Not for use outside engine/taskrouter. Every function here but tr_txn_begin and tr_list
 * needs the store lock held by the caller. SQL bind types: 's' const char * (NULL binds SQL
 * NULL), 'i' int64_t, 'd' int (promoted).
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_CORE_H
#define TASSA_TR_CORE_H

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/params.h"
#include "base/sid.h"
#include "store/store.h"

typedef struct tr_engine tr_engine_t; /* as engine.h */

struct tr_engine {
    store_t *store; /* borrowed; the store lock guards every table */
    char account_sid[SID_LEN + 1];
    char ws_sid[SID_LEN + 1];
    void (*sink)(void *ctx, const params_t *event); /* engine.h's tr_event_fn */
    void *sink_ctx;
    /* mu guards the fields below (never held together with the store lock while waiting) */
    pthread_mutex_t mu;
    pthread_cond_t timer_cond, event_cond;
    uint64_t timer_gen, event_gen; /* bumped after each commit, so waiters see new work */
    bool stop, started;
    pthread_t timer_thread, event_thread;
    int64_t last_prune_ms; /* timer thread only */
};

/* Transactions ------------------------------------------------------------------------- */

/* Takes the store lock and opens a write transaction. TASSA_ESTORE (lock released) on
 * failure. */
tassa_err tr_txn_begin(tr_engine_t *e);

/* Commits (err == TASSA_OK) or rolls back, releases the lock, wakes the engine threads when
 * something was committed, and returns err (or TASSA_ESTORE when the commit failed). */
tassa_err tr_txn_end(tr_engine_t *e, tassa_err err);

/* tr_txn_end for an operation that rendered an answer into *out (out may be NULL): on
 * failure the answer is dropped, so that a caller never sees a change that did not commit. */
tassa_err tr_txn_end_out(tr_engine_t *e, tassa_err err, json_t **out);

/* Wakes the timer and dispatcher threads (takes e->mu briefly). */
void tr_kick(tr_engine_t *e);

/* SQL ------------------------------------------------------------------------------------ */

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

/* Field readers for row objects: the string (borrowed; NULL when absent or null) and the
 * integer (0 when absent; 1 for JSON true). */
const char *row_str(const json_t *row, const char *key);
int64_t row_int(const json_t *row, const char *key);

/* Lists ---------------------------------------------------------------------------------- */

/* Lists rows of sql (bound by types as db_query) that pred accepts (NULL: all), skipping
 * offset of them and rendering at most limit with render into *items; *more tells whether
 * another accepted row follows. Takes the store lock. */
typedef bool (*tr_pred_fn)(void *ctx, const json_t *row);
typedef json_t *(*tr_render_fn)(void *ctx, const json_t *row);
tassa_err tr_list(tr_engine_t *e, tr_pred_fn pred, tr_render_fn render, void *ctx, long offset,
                  long limit, json_t **items, bool *more, const char *sql, const char *types, ...);

/* Loads the row sid and renders it into *out (lock held); nothing when out is NULL.
 * TASSA_ENOMEM when it cannot (the row was just written, so it exists). */
tassa_err tr_render_row(tr_engine_t *e, json_t *(*load)(tr_engine_t *, const char *),
                        json_t *(*render)(tr_engine_t *, const json_t *, const char *),
                        const char *sid, const char *base_url, json_t **out);

/* The common fetch: load the row under the store lock, 404 (`what` names the collection)
 * when absent, else render it. *out as the model's fetches. */
tassa_err tr_fetch_row(tr_engine_t *e, json_t *(*load)(tr_engine_t *, const char *),
                       json_t *(*render)(tr_engine_t *, const json_t *, const char *),
                       const char *what, const char *sid, const char *base_url, json_t **out,
                       errmsg_t *em);

/* Sets "The requested resource /Workspaces/WS../<what>/<sid> was not found" and returns
 * TASSA_ENOTFOUND. */
tassa_err tr_not_found(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid);

/* JSON pieces ---------------------------------------------------------------------------- */

/* A string as a new JSON string, or JSON null when v is NULL. */
json_t *tr_jstr(const char *v);

/* A date (ms since the epoch) as a new ISO 8601 JSON string. */
json_t *tr_jdate(int64_t ms);

/* A string field of a row object, or null (tr_jstr of row_str). */
json_t *row_jstr(const json_t *row, const char *key);

/* A date field (ms) of a row object as ISO 8601, or null when unset. */
json_t *row_jdate(const json_t *row, const char *key);

/* A URL under the workspace: base + "/v1/Workspaces/WS" + the printf suffix. JSON null when
 * it does not fit. New reference. */
json_t *tr_url(tr_engine_t *e, const char *base, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new object holding the common account_sid and workspace_sid fields. NULL on OOM. */
json_t *tr_json_new(tr_engine_t *e);

#endif
