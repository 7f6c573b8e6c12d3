/* lifecycle.h - the lifecycle of tasks, reservations and workers, which the resources call
 * down into: the transitions (lifecycle.c), the matching of tasks to workers (matching.c) and
 * the deadlines (timers.c).
 *
 * Not for use outside engine/taskrouter. Every function here runs inside a transaction opened
 * with tr_txn_begin (store lock held), does no I/O but the store's, and records Twilio's
 * events for what it changes. Nothing here calls a resource's file.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_LIFECYCLE_H
#define TASSA_TR_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/taskrouter/core.h"
#include "engine/taskrouter/rows.h"
#include "engine/taskrouter/wfconf.h"

/* As Twilio: finished (completed or canceled) tasks are removed after 15 minutes, events
 * after 30 days (the longest Minutes of the statistics). Checked every minute. */
#define TR_KEEP_FINISHED_MS (15LL * 60 * 1000)
#define TR_KEEP_EVENTS_MS   (30LL * 24 * 3600 * 1000)
#define TR_PRUNE_EVERY_MS   60000
/* How far the clock may have stepped back between a task's events and its end (timers.c's
 * pruning of task parameter sets). */
#define TR_BASE_MARGIN_MS (3600LL * 1000)

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

/* Where a task with attributes (JSON text) enters workflow workflow_sid: the first filter whose
 * expression matches (*filter; -1 for the default filter) and its first target (borrowed from
 * *c, which the caller frees with tr_wfconf_free). *c NULL when the workflow is gone or its
 * configuration no longer parses. */
const tr_target_t *tr_task_choose_locked(tr_engine_t *e, const char *workflow_sid,
                                         const char *attributes, tr_wfconf_t **c, long *filter);

/* Records a task's entry into its queue from one load of the task: workflow.entered,
 * task-queue.entered, task.created (when created) and workflow.target-matched with target t
 * of c through filter; only task-queue.entered (and task.created) when c is NULL, for a task
 * created straight into a TaskQueueSid. */
tassa_err tr_task_entered_events_locked(tr_engine_t *e, const char *task_sid, const tr_wfconf_t *c,
                                        long filter, const tr_target_t *t, bool created,
                                        int64_t now);

/* Removes task sid (its row, its reservations, its counts) and ends its event parameter set
 * (record.c) at now; the caller recorded task.deleted when the API deleted it. */
tassa_err tr_task_gone_locked(tr_engine_t *e, const char *sid, int64_t now);

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
 * allows it; TASSA_ENOTFOUND for an unknown task. */
tassa_err tr_task_finish_locked(tr_engine_t *e, const char *task_sid, const char *status,
                                const char *reason, int64_t now, errmsg_t *em);

/* Ends a pending reservation as status ("rejected", "timeout", "canceled", "rescinded"),
 * recording reservation.<status>; the task goes back to pending unless status is
 * "canceled". A timeout also moves the worker to the workspace's timeout activity. Nothing
 * happens to a reservation that is no longer pending. */
tassa_err tr_reservation_end_locked(tr_engine_t *e, const char *res_sid, const char *status,
                                    int64_t now);

/* Accepts the pending reservation r (borrowed): the task is assigned and the worker moves to
 * activity (the caller's WorkerActivitySid) or else to the queue's AssignmentActivitySid,
 * recording reservation.accepted. */
tassa_err tr_reservation_accept_locked(tr_engine_t *e, const tr_reservation_t *r,
                                       const char *activity, int64_t now);

/* Ends every pending reservation of a task (or of a worker) as status, as
 * tr_reservation_end_locked. */
tassa_err tr_task_end_pending_locked(tr_engine_t *e, const char *task_sid, const char *status,
                                     int64_t now);
tassa_err tr_worker_end_pending_locked(tr_engine_t *e, const char *worker_sid, const char *status,
                                       int64_t now);

/* Creates reservations for as many pending tasks as there are free eligible workers:
 * highest priority first, then oldest (LIFO queues: newest); the longest-idle eligible
 * worker gets each (matching.c). */
tassa_err tr_match_locked(tr_engine_t *e, int64_t now);

/* Queue membership (members.c): rows of tr_queue_members saying which workers a queue's
 * TargetWorkers accepts, with the worker's availability. tr_members_worker_locked evaluates
 * the worker against every queue again (after its creation, attribute change or deletion:
 * a worker that does not exist loses its rows); tr_members_queue_locked evaluates every
 * worker against the queue again (after its creation, expression change or deletion). Both
 * run inside the caller's transaction and return TASSA_ESTORE when a write failed. */
tassa_err tr_members_worker_locked(tr_engine_t *e, const char *worker_sid);
tassa_err tr_members_queue_locked(tr_engine_t *e, const char *queue_sid);

/* A queue's members by activity, tr_queue_activity_counts (queue_sid, activity_sid, n), kept
 * with the membership rows: tr_members_tally_locked adds sign to one count;
 * tr_members_move_locked moves every row of a worker from activity from to activity to (with
 * its availability), counts and rows alike. Inside the caller's transaction; TASSA_ESTORE on
 * failure. The rows' n may be 0. */
tassa_err tr_members_tally_locked(tr_engine_t *e, const char *queue_sid, const char *activity_sid,
                                  int sign);
tassa_err tr_members_move_locked(tr_engine_t *e, const char *worker_sid, const char *from,
                                 const char *to, bool available);

/* Fills tr_queue_members once for a data file written before it existed (its own
 * transaction; a meta row marks it done). Called at engine start. TASSA_ESTORE on failure. */
tassa_err tr_members_fill(tr_engine_t *e);

/* Row counts kept on each insert and delete (counts.c): name is "tasks" or "workers".
 * tr_count_get reads the count (0 when unknown; lock held); tr_count_add_locked adds delta
 * inside the caller's transaction (TASSA_ESTORE on failure); tr_counts_fill creates the
 * counts of a data file written before they existed (its own transaction; at engine start). */
int64_t tr_count_get(tr_engine_t *e, const char *name);
tassa_err tr_count_add_locked(tr_engine_t *e, const char *name, int64_t delta);
tassa_err tr_counts_fill(tr_engine_t *e);

/* A queue's open tasks by (status, priority), rows of tr_queue_counts (counts.c).
 * tr_task_tally_locked adds sign (-1 or +1) to the row of the task's current queue, status and
 * priority (nothing when it has no queue or is finished); every write that may change one of
 * those three calls it with -1 before and +1 after. TASSA_ESTORE on failure. The rows' n may
 * be 0. tr_queue_counts_fill fills the table once for an older data file (engine start). */
tassa_err tr_task_tally_locked(tr_engine_t *e, const char *task_sid, int sign);
/* tr_task_tally_locked for a task known to be open in queue (NULL or "": none) with status,
 * priority and queue entry time entered (-1: none), without reading it. */
tassa_err tr_tally_locked(tr_engine_t *e, const char *queue, const char *status, int64_t priority,
                          int64_t entered, int sign);
tassa_err tr_queue_counts_fill(tr_engine_t *e);

/* A queue's waiting (pending or reserved) tasks of one priority counted by time of queue
 * entry, rows of tr_rank_buckets (queue_sid, priority, level, bucket, n): level 1 buckets
 * are queue_entered_ms >> TR_RANK_SHIFT1 (about a second), level 2 ones >> TR_RANK_SHIFT2
 * (about 17 minutes). tr_task_tally_locked keeps them with tr_queue_counts, so that a task's
 * rank among its equals reads at most a few hundred counter rows and one index range of the
 * tasks that entered in its second (tr_task_position). The rows' n may be 0 (the prune
 * removes those). tr_rank_buckets_fill fills the table once for an older data file (engine
 * start). TASSA_ESTORE on failure. */
#define TR_RANK_SHIFT1 10
#define TR_RANK_SHIFT2 20
tassa_err tr_rank_buckets_fill(tr_engine_t *e);

/* Applies every due deadline (reservation timeouts, target timeouts, TTLs), prunes what
 * TR_KEEP_* says is gone once a TR_PRUNE_EVERY_MS, and returns the next deadline in ms in
 * *next (INT64_MAX when none) (timers.c). */
tassa_err tr_timers_apply_locked(tr_engine_t *e, int64_t now, int64_t *next);

/* Removes what TR_KEEP_* says is gone, a bounded batch at a time (timers.c). */
tassa_err tr_prune_locked(tr_engine_t *e, int64_t now);

#endif
