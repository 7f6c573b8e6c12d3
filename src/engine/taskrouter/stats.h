/* stats.h - TaskRouter statistics: real-time (computed from the live model) and cumulative
 * (counted from the recorded events of the last Minutes), in Twilio's JSON shape.
 *
 * Thread-safe; each call takes the store lock for one read. Answers are new references.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_STATS_H
#define TASSA_TR_STATS_H

#include <jansson.h>

#include "engine/taskrouter/engine.h"

/* `/TaskQueues/{WQ}/RealTimeStatistics`: total_tasks, tasks_by_status, tasks_by_priority,
 * total_eligible_workers, total_available_workers, activity_statistics,
 * longest_task_waiting_age/sid, longest_relative_task_age/sid_in_queue.
 * TASSA_ENOTFOUND for an unknown queue. */
tassa_err tr_queue_realtime(tr_engine_t *e, const char *queue_sid, const char *base_url,
                            json_t **out, errmsg_t *em);

/* `/TaskQueues/{WQ}/CumulativeStatistics` over the last minutes (1..43200):
 * avg_task_acceptance_time, tasks_entered/completed/canceled/deleted/moved,
 * reservations_created/accepted/rejected/timed_out/canceled/rescinded and
 * wait_duration_until_accepted/canceled {avg, min, max, total} in seconds. */
tassa_err tr_queue_cumulative(tr_engine_t *e, const char *queue_sid, long minutes,
                              const char *base_url, json_t **out, errmsg_t *em);

/* `/RealTimeStatistics` of the workspace: activity_statistics, total_workers, total_tasks,
 * tasks_by_status, tasks_by_priority, longest_task_waiting_age/sid. */
tassa_err tr_workspace_realtime(tr_engine_t *e, const char *base_url, json_t **out, errmsg_t *em);

/* Both statistics of one queue for the embedded back end (minutes as above). */
tassa_err tr_queue_stats_json(tr_engine_t *e, const char *queue_sid, long minutes,
                              const char *base_url, json_t **realtime, json_t **cumulative);

/* Called by tr_stats_census for each count: kind "task" (label: a status) or "worker" (label:
 * an activity's friendly name). label is borrowed for the call only. */
typedef void (*tr_census_fn)(void *ctx, const char *kind, const char *label, long long n);

/* Counts the tasks by status and the workers by activity (every activity, also with 0) in
 * one short critical section, calling fn with the store lock held (fn must not touch the
 * store). TASSA_ESTORE on failure. Any thread. */
tassa_err tr_stats_census(tr_engine_t *e, tr_census_fn fn, void *ctx);

#endif
