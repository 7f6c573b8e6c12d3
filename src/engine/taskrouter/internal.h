/* internal.h - what the files of the TaskRouter engine share: the engine structure, the
 * transaction helpers and the locked building blocks of the lifecycle.
 *
 * Not for use outside engine/taskrouter. Every function named *_locked runs inside a
 * transaction opened with tr_txn_begin (store lock held) and does no I/O but the store's.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_INTERNAL_H
#define TASSA_TR_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/taskrouter/db.h"
#include "engine/taskrouter/engine.h"
#include "engine/taskrouter/expr.h"
#include "base/sid.h"

struct tr_engine {
    store_t *store; /* borrowed; the store lock guards every table */
    char account_sid[SID_LEN + 1];
    char ws_sid[SID_LEN + 1];
    tr_event_fn sink;
    void *sink_ctx;
    /* mu guards the fields below (never held together with the store lock while waiting) */
    pthread_mutex_t mu;
    pthread_cond_t timer_cond, event_cond;
    uint64_t timer_gen, event_gen; /* bumped after each commit, so waiters see new work */
    bool stop, started;
    pthread_t timer_thread, event_thread;
    int64_t last_prune_ms; /* timer thread only */
};

/* As Twilio: finished (completed or canceled) tasks are removed after 15 minutes, events
 * after 30 days (the longest Minutes of the statistics). Checked every minute. */
#define TR_KEEP_FINISHED_MS (15LL * 60 * 1000)
#define TR_KEEP_EVENTS_MS   (30LL * 24 * 3600 * 1000)
#define TR_PRUNE_EVERY_MS   60000

/* Removes what TR_KEEP_* says is gone, a bounded batch at a time (lock held, in a
 * transaction). */
tassa_err tr_prune_locked(tr_engine_t *e, int64_t now);

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

/* Loaders: one row as a new object with the joined names (NULL when absent). */
json_t *tr_load_workspace(tr_engine_t *e);
json_t *tr_load_activity(tr_engine_t *e, const char *sid);
json_t *tr_load_worker(tr_engine_t *e, const char *sid);
json_t *tr_load_queue(tr_engine_t *e, const char *sid);
json_t *tr_load_workflow(tr_engine_t *e, const char *sid);
json_t *tr_load_task(tr_engine_t *e, const char *sid);
json_t *tr_load_reservation(tr_engine_t *e, const char *sid);

/* The SELECT heads of the loaders, for lists (each ends before WHERE). */
#define TR_WORKER_SELECT                                                                           \
    "SELECT w.*, a.friendly_name AS activity_name, a.available AS available "                      \
    "FROM tr_workers w LEFT JOIN tr_activities a ON a.sid = w.activity_sid "
#define TR_QUEUE_SELECT                                                                            \
    "SELECT q.*, ra.friendly_name AS reservation_activity_name, "                                  \
    "aa.friendly_name AS assignment_activity_name FROM tr_queues q "                               \
    "LEFT JOIN tr_activities ra ON ra.sid = q.reservation_activity_sid "                           \
    "LEFT JOIN tr_activities aa ON aa.sid = q.assignment_activity_sid "
#define TR_TASK_SELECT                                                                             \
    "SELECT t.*, q.friendly_name AS queue_name, q.task_order AS task_order, "                      \
    "wf.friendly_name AS workflow_name FROM tr_tasks t "                                           \
    "LEFT JOIN tr_queues q ON q.sid = t.queue_sid "                                                \
    "LEFT JOIN tr_workflows wf ON wf.sid = t.workflow_sid "
#define TR_RES_SELECT                                                                              \
    "SELECT r.*, w.friendly_name AS worker_name FROM tr_reservations r "                           \
    "LEFT JOIN tr_workers w ON w.sid = r.worker_sid "

/* Input checks shared by the resources; each returns TASSA_EINVAL with a detail in em. */
tassa_err tr_check_name(const char *v, const char *param, errmsg_t *em);
tassa_err tr_check_attributes(const char *v, const char *param, errmsg_t *em);
tassa_err tr_read_long(const params_t *p, const char *param, long lo, long hi, long *out,
                       errmsg_t *em);
tassa_err tr_read_bool(const params_t *p, const char *param, int *out, errmsg_t *em);

/* The subject an expression sees for a worker: its attributes plus sid, friendly_name,
 * activity_sid, activity_name. New reference (an empty object when the attributes are not an
 * object); NULL on OOM. */
json_t *tr_worker_subject(const json_t *worker_row);

/* Parses a task's attributes text into a new object (an empty one if it does not parse). */
json_t *tr_parse_attributes(const char *text);

/* Lifecycle building blocks (tasks.c, workers.c, reservations.c, matching.c, timers.c). */

/* Moves a worker to activity_sid (must exist): records worker.activity.update, resets its
 * idle time when it becomes available and, when rescind is set and it becomes unavailable,
 * rescinds its pending reservation and puts the task back to pending (a worker going
 * offline). The engine's own moves (ReservationActivitySid) pass rescind false. Nothing
 * happens for the same activity. */
tassa_err tr_worker_move_locked(tr_engine_t *e, const char *worker_sid, const char *activity_sid,
                                bool rescind, int64_t now);

/* Routes a new or re-evaluated task through its workflow: picks the filter, enters the first
 * target's queue and records workflow.entered, task-queue.entered, (task.created when
 * created) and workflow.target-matched. */
tassa_err tr_task_route_locked(tr_engine_t *e, const char *task_sid, bool created, int64_t now);

/* Moves a pending task whose target timed out to the next target, or cancels it with
 * "Workflow Timeout" after the last one. */
tassa_err tr_task_target_timeout_locked(tr_engine_t *e, const char *task_sid, int64_t now);

/* Ends a task as canceled with reason (a pending reservation is canceled first), recording
 * task.canceled. */
tassa_err tr_task_cancel_locked(tr_engine_t *e, const char *task_sid, const char *reason,
                                int64_t now);

/* Takes an assigned (or wrapping) task to status "wrapping" or "completed" with its accepted
 * reservation, recording task.wrapup + reservation.wrapup or task.completed +
 * reservation.completed. TASSA_EINVAL with a detail when the task is not in a state that
 * allows it. */
tassa_err tr_task_finish_locked(tr_engine_t *e, const char *task_sid, const char *status,
                                const char *reason, int64_t now, errmsg_t *em);

/* Ends a pending reservation as status ("rejected", "timeout", "canceled", "rescinded"),
 * recording reservation.<status>; the task goes back to pending unless status is
 * "canceled". A timeout also moves the worker to the workspace's timeout activity. */
tassa_err tr_reservation_end_locked(tr_engine_t *e, const char *res_sid, const char *status,
                                    int64_t now);

/* Creates reservations for as many pending tasks as there are free eligible workers:
 * highest priority first, then oldest (LIFO queues: newest); the longest-idle eligible
 * worker gets each. */
tassa_err tr_match_locked(tr_engine_t *e, int64_t now);

/* True when a worker, seen as subject (tr_worker_subject), is eligible for a queue whose
 * parsed TargetWorkers is q_expr (borrowed). */
bool tr_worker_in_queue(const json_t *subject, const expr_t *q_expr);

/* Applies every due deadline (reservation timeouts, target timeouts, TTLs) and returns the
 * next deadline in ms (INT64_MAX when none). */
tassa_err tr_timers_apply_locked(tr_engine_t *e, int64_t now, int64_t *next);

/* Events (events.c). ev_new starts the parameters of an event with the common fields;
 * ev_task/ev_worker/ev_queue/ev_workflow/ev_reservation add a resource's fields from its row
 * (NULL rows add nothing); ev_set adds one string; ev_emit records the event in the table
 * (params reference stolen) with wait_ms (the task's wait, for statistics; -1 none). */
json_t *ev_new(tr_engine_t *e, const char *type, const char *resource_type,
               const char *resource_sid, const char *description, int64_t now);
void ev_task(json_t *ev, const json_t *task_row, int64_t now);
void ev_worker(json_t *ev, const json_t *worker_row);
void ev_queue(json_t *ev, const json_t *queue_row);
void ev_workflow(json_t *ev, const json_t *workflow_row);
void ev_reservation(json_t *ev, const json_t *res_row);
void ev_set(json_t *ev, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
tassa_err ev_emit(tr_engine_t *e, json_t *ev, int64_t wait_ms);

/* Records a task-centred event: the task with its queue and workflow, and optionally the
 * reservation and its worker. A convenience over ev_new + ev_* + ev_emit. */
tassa_err ev_task_event(tr_engine_t *e, const char *type, const char *task_sid, const char *res_sid,
                        const char *description, int64_t wait_ms, int64_t now);

/* JSON of each resource from its loader row (json.c). New references; NULL on OOM. */
json_t *tr_json_workspace(tr_engine_t *e, const json_t *row, const char *base);
json_t *tr_json_activity(tr_engine_t *e, const json_t *row, const char *base);
json_t *tr_json_worker(tr_engine_t *e, const json_t *row, const char *base);
json_t *tr_json_queue(tr_engine_t *e, const json_t *row, const char *base);
json_t *tr_json_workflow(tr_engine_t *e, const json_t *row, const char *base);
json_t *tr_json_task(tr_engine_t *e, const json_t *row, const char *base, int64_t now);
json_t *tr_json_reservation(tr_engine_t *e, const json_t *row, const char *base, bool by_worker);
json_t *tr_json_event(tr_engine_t *e, const json_t *row, const char *base);

/* Sets "The requested resource /Workspaces/WS../<what>/<sid> was not found" and returns
 * TASSA_ENOTFOUND. */
tassa_err tr_not_found(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid);

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

/* A workflow configuration, parsed (workflows.c). */
typedef struct {
    char queue[SID_LEN + 1];
    long priority, timeout; /* -1 when the target sets none */
    expr_t *expr;           /* NULL when the target sets none */
} tr_target_t;
typedef struct {
    char *name; /* filter_friendly_name, or NULL */
    expr_t *expr;
    tr_target_t *targets;
    size_t n_targets;
} tr_filter_t;
typedef struct {
    tr_filter_t *filters;
    size_t n_filters;
    tr_target_t def; /* default_filter */
} tr_wfconf_t;

/* Parses and checks a workflow Configuration (shape, expressions, queue SIDs existing when e is
 * not NULL, lock held). NULL with a detail in em (error TASSA_EINVAL or TASSA_EEXPR in *err). */
tr_wfconf_t *tr_wfconf_parse(tr_engine_t *e, const char *text, tassa_err *err, errmsg_t *em);
void tr_wfconf_free(tr_wfconf_t *c);

/* The target of a task at (filter_index, target_index): filter_index -1 is the default
 * filter. NULL when out of range. Borrowed from c. */
const tr_target_t *tr_wfconf_target(const tr_wfconf_t *c, long filter, long target);

/* Lists rows of sql (bound by types as db_query) that pred accepts (NULL: all), skipping
 * offset of them and rendering at most limit with render into *items; *more tells whether
 * another accepted row follows. Takes the store lock. */
typedef bool (*tr_pred_fn)(void *ctx, const json_t *row);
typedef json_t *(*tr_render_fn)(void *ctx, const json_t *row);
tassa_err tr_list(tr_engine_t *e, tr_pred_fn pred, tr_render_fn render, void *ctx, long offset,
                  long limit, json_t **items, bool *more, const char *sql, const char *types, ...);

#endif
