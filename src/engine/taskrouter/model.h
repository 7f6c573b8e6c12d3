/* model.h - the TaskRouter resources, with Twilio's REST parameters in and JSON out.
 *
 * Each operation takes the parameters exactly as Twilio's REST API names them (PascalCase
 * form fields, e.g. FriendlyName, Attributes, ActivitySid), validates them, applies the change
 * and the matching it enables in one transaction under the store lock, records the Twilio
 * events, and returns only after the commit. Answers are Twilio's JSON (snake_case, every
 * field of the OpenAPI schema, null when unknown) as new references owned by the caller, with
 * urls and links absolute under base_url ("http://host:port").
 *
 * Failures: TASSA_ENOTFOUND for an unknown SID; TASSA_EINVAL / TASSA_EMISSING / TASSA_EEXPR
 * with a detail in em for bad input (never a crash); TASSA_ECONFLICT for a state that forbids
 * the change (deleting a queue that holds tasks, completing a pending task); TASSA_ELIMIT past
 * Twilio's resource counts; TASSA_ESTORE when the data file fails. On failure nothing changed
 * and *out is NULL. out may be NULL when the caller does not need the resource.
 *
 * Lists take the Twilio filters in `filter` (the request's parameters), skip `offset` matching
 * resources and return at most `limit` in *items (a new array), with *more telling whether
 * another one follows. Thread-safe: any thread may call any of these.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_MODEL_H
#define TASSA_TR_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/taskrouter/engine.h"
#include "engine/taskrouter/limits.h" /* Twilio's limits */

/* The workspace (`/v1/Workspaces/{WS}`); sid must be the engine's workspace. */
tassa_err tr_workspace_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                             errmsg_t *em);
/* The workspaces (`/v1/Workspaces`): the engine's one, unless the FriendlyName filter names
 * another or offset skips it. */
tassa_err tr_workspace_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                            const char *base_url, json_t **items, bool *more, errmsg_t *em);
/* Updates FriendlyName, EventCallbackUrl, EventsFilter, MultiTaskEnabled (false only),
 * PrioritizeQueueOrder (FIFO|LIFO), DefaultActivitySid, TimeoutActivitySid. */
tassa_err tr_workspace_update(tr_engine_t *e, const char *sid, const params_t *p,
                              const char *base_url, json_t **out, errmsg_t *em);

/* Activities: create (FriendlyName required, Available), update (FriendlyName), delete
 * (refused while a worker has it or the workspace uses it), list (FriendlyName, Available). */
tassa_err tr_activity_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                             errmsg_t *em);
tassa_err tr_activity_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                            errmsg_t *em);
tassa_err tr_activity_update(tr_engine_t *e, const char *sid, const params_t *p,
                             const char *base_url, json_t **out, errmsg_t *em);
tassa_err tr_activity_delete(tr_engine_t *e, const char *sid, errmsg_t *em);
tassa_err tr_activity_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                           const char *base_url, json_t **items, bool *more, errmsg_t *em);

/* Workers: create (FriendlyName required and unique, Attributes JSON object, ActivitySid
 * default the workspace's default activity), update (ActivitySid, Attributes, FriendlyName;
 * going unavailable rescinds a pending reservation and re-queues its task), delete (refused
 * while the worker holds a task), list (ActivityName, ActivitySid, Available, FriendlyName,
 * TargetWorkersExpression, TaskQueueSid, TaskQueueName). */
tassa_err tr_worker_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                           errmsg_t *em);
tassa_err tr_worker_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                          errmsg_t *em);
tassa_err tr_worker_update(tr_engine_t *e, const char *sid, const params_t *p, const char *base_url,
                           json_t **out, errmsg_t *em);
tassa_err tr_worker_delete(tr_engine_t *e, const char *sid, errmsg_t *em);
tassa_err tr_worker_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                         const char *base_url, json_t **items, bool *more, errmsg_t *em);

/* A worker's channels (`/Workers/{WK}/Channels`, the event bridge's WorkerChannels): one,
 * "default", capacity 1, assigned_tasks the reservations the worker holds accepted or
 * wrapping, last_reserved_time its newest reservation (null for none). *items a new array.
 * TASSA_ENOTFOUND for an unknown worker. */
tassa_err tr_worker_channel_list(tr_engine_t *e, const char *worker_sid, const char *base_url,
                                 json_t **items, errmsg_t *em);

/* Task queues: create (FriendlyName required, TargetWorkers default "1==1", TaskOrder
 * FIFO|LIFO, ReservationActivitySid, AssignmentActivitySid, MaxReservedWorkers 1..50),
 * update (same fields), delete (refused while it holds unfinished tasks), list (FriendlyName,
 * EvaluateWorkerAttributes: queues whose TargetWorkers holds for those attributes). */
tassa_err tr_queue_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                          errmsg_t *em);
tassa_err tr_queue_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                         errmsg_t *em);
tassa_err tr_queue_update(tr_engine_t *e, const char *sid, const params_t *p, const char *base_url,
                          json_t **out, errmsg_t *em);
tassa_err tr_queue_delete(tr_engine_t *e, const char *sid, errmsg_t *em);
tassa_err tr_queue_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                        const char *base_url, json_t **items, bool *more, errmsg_t *em);

/* Workflows: create (FriendlyName and Configuration required; the configuration's filters,
 * targets, queues and expressions are all checked; TaskReservationTimeout 1..86400, default
 * 120; AssignmentCallbackUrl, FallbackAssignmentCallbackUrl kept but not called), update,
 * delete (refused while unfinished tasks use it), list (FriendlyName). */
tassa_err tr_workflow_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                             errmsg_t *em);
tassa_err tr_workflow_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                            errmsg_t *em);
tassa_err tr_workflow_update(tr_engine_t *e, const char *sid, const params_t *p,
                             const char *base_url, json_t **out, errmsg_t *em);
tassa_err tr_workflow_delete(tr_engine_t *e, const char *sid, errmsg_t *em);
tassa_err tr_workflow_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                           const char *base_url, json_t **items, bool *more, errmsg_t *em);

/* Tasks: create (Attributes JSON object, Priority 0..2^31-1, Timeout 1..1209600 default
 * 86400, WorkflowSid (optional when the workspace has one workflow) or TaskQueueSid,
 * TaskChannel), update (AssignmentStatus canceled|wrapping|completed as Twilio allows, Reason,
 * Attributes, Priority), delete, list (AssignmentStatus repeatable, Priority, TaskQueueSid,
 * TaskQueueName, WorkflowSid, WorkflowName, EvaluateTaskAttributes, Ordering such as
 * "Priority:desc,DateCreated:asc"). */
tassa_err tr_task_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                         errmsg_t *em);
tassa_err tr_task_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                        errmsg_t *em);
tassa_err tr_task_update(tr_engine_t *e, const char *sid, const params_t *p, const char *base_url,
                         json_t **out, errmsg_t *em);
tassa_err tr_task_delete(tr_engine_t *e, const char *sid, errmsg_t *em);
tassa_err tr_task_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                       const char *base_url, json_t **items, bool *more, errmsg_t *em);

/* Reservations of a task (task_sid set, worker_sid NULL) or of a worker (the other way).
 * Update takes ReservationStatus accepted|rejected|wrapping|completed and WorkerActivitySid
 * (the worker's next activity). List filters: ReservationStatus, WorkerSid. */
tassa_err tr_reservation_fetch(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                               const char *sid, const char *base_url, json_t **out, errmsg_t *em);
tassa_err tr_reservation_update(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                                const char *sid, const params_t *p, const char *base_url,
                                json_t **out, errmsg_t *em);
tassa_err tr_reservation_list(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                              const params_t *filter, long offset, long limit, const char *base_url,
                              json_t **items, bool *more, errmsg_t *em);

/* Events, newest first. Filters: EventType, TaskSid, WorkerSid, ReservationSid,
 * TaskQueueSid, WorkflowSid, Sid, Minutes (default 15 unless StartDate is given),
 * StartDate, EndDate (ISO 8601). */
tassa_err tr_event_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                         errmsg_t *em);
tassa_err tr_event_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                        const char *base_url, json_t **items, bool *more, errmsg_t *em);

/* Reads for the embedded back end, in the REST API's JSON shape, as new references.
 * tr_tasks_json: every task whose status is one of statuses (all tasks when n_statuses is 0)
 * in queue order (priority descending, then oldest first). */
tassa_err tr_tasks_json(tr_engine_t *e, const char *const *statuses, size_t n_statuses,
                        const char *base_url, json_t **array);
tassa_err tr_task_json(tr_engine_t *e, const char *sid, const char *base_url, json_t **out);

/* The first `limit` waiting (pending or reserved) tasks in queue order (*first, a new array)
 * and the whole truth as counts (*summary: {"total", "byQueue": {queue name: {"pending",
 * "longestWaitSeconds"}}}), from an aggregate: cost grows with limit, not with the queue. */
tassa_err tr_waiting_json(tr_engine_t *e, long limit, const char *base_url, json_t **first,
                          json_t **summary);

/* The newest waiting task whose attribute key (a top-level name) has the string value, as
 * the task resource. TASSA_ENOTFOUND when none waits. */
tassa_err tr_waiting_task_by_attr(tr_engine_t *e, const char *key, const char *value,
                                  const char *base_url, json_t **out);

/* A waiting task's 1-based place in its queue in the engine's order, and the queue's number
 * of waiting tasks, by two indexed counts. TASSA_ENOTFOUND when the task does not wait. */
tassa_err tr_task_position(tr_engine_t *e, const char *sid, long *position, long *size);
tassa_err tr_workers_json(tr_engine_t *e, const char *base_url, json_t **array);
/* The workers whose activity's name is one of names (n of them, compared case-insensitively):
 * the first `limit` in list order (creation) in *array, and how many there are in *total, by
 * the activity index: cost grows with those workers, not with the workspace's. */
tassa_err tr_workers_in_activities_json(tr_engine_t *e, const char *const *names, size_t n,
                                        long limit, const char *base_url, json_t **array,
                                        long *total);
tassa_err tr_queues_json(tr_engine_t *e, const char *base_url, json_t **array);

#endif
