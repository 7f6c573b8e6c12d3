/* rows.h - the rows of the TaskRouter tables as the engine reads them, with the names they
 * join, and the views the expressions see of them.
 *
 * Not for use outside engine/taskrouter. Loaders need the store lock held.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_ROWS_H
#define TASSA_TR_ROWS_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/taskrouter/core.h"
#include "engine/taskrouter/expr.h"

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

/* Parses a task's attributes text into a new object (an empty one if it does not parse). */
json_t *tr_parse_attributes(const char *text);

/* The subject an expression sees for a worker: its attributes plus sid, friendly_name,
 * activity_sid, activity_name. New reference (an empty object when the attributes are not an
 * object); NULL on OOM. */
json_t *tr_worker_subject(const json_t *worker_row);

/* True when a worker, seen as subject (tr_worker_subject), is eligible for a queue whose
 * parsed TargetWorkers is q_expr (borrowed). */
bool tr_worker_in_queue(const json_t *subject, const expr_t *q_expr);

#endif
