/* core.h - what every part of the TaskRouter engine stands on: the engine structure, the
 * transaction helpers (together), terse SQL helpers, the 404 and the JSON pieces every
 * resource's rendering uses. Typed rows and lists are in rows.h, above this.
 *
 * Not for use outside engine/taskrouter. The SQL helpers need the store lock held by the
 * caller. SQL bind types: 's' const char * (NULL binds SQL NULL), 'i' int64_t, 'd' int
 * (promoted).
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_CORE_H
#define TASSA_TR_CORE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"
#include "base/params.h"
#include "base/sid.h"
#include "store/store.h"

typedef struct tr_engine tr_engine_t; /* as engine.h */

struct tr_engine {
    store_t *store;                  /* borrowed; the store lock guards every table */
    _Atomic int64_t clock_offset_ms; /* tr_engine_advance_clock: added to the wall clock */
    char account_sid[SID_LEN + 1];
    char ws_sid[SID_LEN + 1];
    void (*sink)(void *ctx, const params_t *event); /* engine.h's tr_event_fn */
    void (*sink_flush)(void *ctx);                  /* engine.h's tr_flush_fn, or NULL */
    void *sink_ctx;
    /* mu guards the fields below (never held together with the store lock while waiting) */
    pthread_mutex_t mu;
    pthread_cond_t timer_cond, event_cond;
    uint64_t timer_gen, event_gen; /* bumped after each commit, so waiters see new work */
    bool stop, started;
    pthread_t timer_thread, event_thread;
    int64_t last_prune_ms; /* timer thread only */
    char lease[64];        /* "taskrouter:<WorkspaceSid>": the holder runs timers and events */
    char notice[80];       /* TR_CHANNEL payload: "<WorkspaceSid> <random id of this engine>" */
    bool listening;        /* store_listen(TR_CHANNEL) succeeded; main thread */
    /* record.c: the last task parameter set read (its text and parsed), so that the events
     * of one change parse it once; used and replaced only with the store lock held, and
     * trusted only while the stored text is the same. Freed by tr_engine_free. */
    char *base_text;
    json_t *base_json;
    /* record.c, lock held: what one critical section (store_section) already read, trusted
     * only in that section: the base of task base_task (base_id) and the workspace's name
     * (ws_name, NULL when it has none). 0: nothing kept. */
    uint64_t base_section, ws_section;
    char base_task[SID_LEN + 1];
    int64_t base_id;
    char *ws_name;
    /* record.c, lock held: the params ev_emit last stored against base again_base (a delta),
     * and, when again_section is this section, the task event (of again_task at again_now,
     * without reservation) that ev_loaded_task_event may repeat with other columns. */
    char *again_text;
    int64_t again_base, again_now;
    uint64_t again_section;
    char again_task[SID_LEN + 1];
    /* record.c, lock held, between ev_group_begin and ev_group_end: the group's first event,
     * held back until the events that join its row are known (NULL: none held). */
    bool group_open;
    struct ev_held *group_held;
    /* record.c, lock held: the task created in section new_section (ev_task_is_new), which has
     * no parameter set stored yet. */
    uint64_t new_section;
    char new_task[SID_LEN + 1];
    /* wfconf.c, lock held: the last workflow configuration tr_wfconf_load parsed, of workflow
     * wf_cached_sid from the text wf_cached_text (one reference; NULL: none). Freed by
     * tr_engine_free. */
    struct tr_wfconf *wf_cached;
    char wf_cached_sid[SID_LEN + 1];
    char *wf_cached_text;
};

/* The notification channel on which every TaskRouter commit wakes the lease holder's threads
 * on every node (payload: e->notice; an engine ignores its own, which tr_kick already
 * handled). */
#define TR_CHANNEL "tassa_taskrouter"

/* The engine's clock in Unix milliseconds: the wall clock (store_now_ms) plus the offset that
 * tr_engine_advance_clock added. Every time the engine stores or compares goes through it.
 * Any thread. */
int64_t tr_now_ms(const tr_engine_t *e);

/* Transactions ------------------------------------------------------------------------- */

/* Takes the store lock and opens a write transaction. TASSA_ESTORE (lock released) on
 * failure. */
tassa_err tr_txn_begin(tr_engine_t *e);

/* Commits (err == TASSA_OK) or rolls back, releases the lock, wakes the engine threads when
 * something was committed, and returns err (or TASSA_ESTORE when the commit failed). On a
 * shared store the commit also notifies TR_CHANNEL, so that the node holding the workspace's
 * lease (maybe another process) looks at the new deadlines and events at once. */
tassa_err tr_txn_end(tr_engine_t *e, tassa_err err);

/* Commits (err == TASSA_OK) or rolls back and releases the lock, without waking the engine
 * threads (the timer thread's own commits). Returns err, or TASSA_ESTORE when the commit or
 * the group commit failed. */
tassa_err tr_txn_commit(tr_engine_t *e, tassa_err err);

/* tr_txn_begin for a change to the row sid of table (a tr_* table name): when there is no
 * such row, the transaction ends at once and the 404 of tr_not_found (what, sid) is returned. */
tassa_err tr_txn_begin_row(tr_engine_t *e, const char *table, const char *what, const char *sid,
                           errmsg_t *em);

/* tr_txn_end for an operation that rendered an answer into *out (out may be NULL): on
 * failure the answer is dropped, so that a caller never sees a change that did not commit.
 * An answer kept with tr_txn_later for out is rendered here, after the commit and outside the
 * store lock (TASSA_ENOMEM when that fails); tr_txn_end drops one. */
tassa_err tr_txn_end_out(tr_engine_t *e, tassa_err err, json_t **out);

/* Keeps arg until the section ends (lock held): tr_txn_end_out(..., out) then calls render(arg)
 * for *out, or drop(arg) when the section failed or ends otherwise; each frees arg. One per
 * thread (a section runs on the thread that took the lock): a later call drops an earlier
 * one. rows.h's tr_render_locked uses it. */
void tr_txn_later(void *arg, json_t *(*render)(void *arg), void (*drop)(void *arg), json_t **out);

/* Wakes the timer and dispatcher threads (takes e->mu briefly). */
void tr_kick(tr_engine_t *e);

/* SQL ------------------------------------------------------------------------------------ */

/* Prepares sql and binds the values described by types. NULL (logged) on failure. */
store_stmt_t *db_query(store_t *s, const char *sql, const char *types, ...);

/* As db_query with a va_list. */
store_stmt_t *db_vquery(store_t *s, const char *sql, const char *types, va_list ap);

/* Runs one statement to completion. TASSA_ESTORE (logged) on failure. */
tassa_err db_exec(store_t *s, const char *sql, const char *types, ...);

/* The first column of the first row as an integer; def when there is no row. */
int64_t db_int(store_t *s, int64_t def, const char *sql, const char *types, ...);

/* The SIDs a query's first column gives, as a new array the caller frees (free(out->sid)). */
typedef struct {
    char (*sid)[SID_LEN + 1];
    size_t n;
} tr_sids_t;
tassa_err db_sids(store_t *s, tr_sids_t *out, const char *sql, const char *types, ...);

/* The first column of the first row, a SID, into out. False when there is none. */
bool db_sid(store_t *s, char out[SID_LEN + 1], const char *sql, const char *types, ...);

/* Sets "The requested resource /Workspaces/WS../<what>/<sid> was not found" and returns
 * TASSA_ENOTFOUND. */
tassa_err tr_not_found(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid);

/* tr_not_found for a row a query did not find, once the store answered a probe (lock held);
 * TASSA_ESTORE (503) when it does not (a lost database): then the row may well exist. */
tassa_err tr_missing_locked(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid);

/* JSON pieces ---------------------------------------------------------------------------- */

/* A string as a new JSON string, or JSON null when v is NULL. */
json_t *tr_jstr(const char *v);

/* A date (ms since the epoch) as a new ISO 8601 JSON string; JSON null when ms < 0 (unset). */
json_t *tr_jdate(int64_t ms);

/* A URL under the workspace: base + "/v1/Workspaces/WS" + the printf suffix. JSON null when
 * it does not fit. New reference. */
json_t *tr_url(tr_engine_t *e, const char *base, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new resource object holding the common account_sid, workspace_sid and sid fields. NULL on
 * OOM. */
json_t *tr_json_new(tr_engine_t *e, const char *sid);

#endif
