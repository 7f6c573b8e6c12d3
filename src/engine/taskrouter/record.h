/* record.h - recording TaskRouter events: Twilio's EventCallbackUrl parameters, kept in
 * tr_events inside the transaction of the change they report.
 *
 * Not for use outside engine/taskrouter. Lock held, in a transaction, for all of these.
 * ev_new starts the parameters of an event with the common fields; ev_task/ev_worker/
 * ev_queue/ev_workflow/ev_reservation add a resource's fields from its row (NULL rows add
 * nothing); ev_set adds one string; ev_emit records the event in the table (params reference
 * stolen; NULL gives TASSA_ENOMEM) with wait_ms (the task's wait, for statistics; -1 none).
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_RECORD_H
#define TASSA_TR_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/taskrouter/core.h"
#include "engine/taskrouter/rows.h"

json_t *ev_new(tr_engine_t *e, const char *type, const char *resource_type,
               const char *resource_sid, const char *description, int64_t now);
void ev_task(json_t *ev, const tr_task_t *t, int64_t now);
void ev_worker(json_t *ev, const tr_worker_t *w);
void ev_queue(json_t *ev, const tr_queue_t *q);
void ev_workflow(json_t *ev, const tr_workflow_t *wf);
void ev_reservation(json_t *ev, const tr_reservation_t *r);
void ev_set(json_t *ev, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
tassa_err ev_emit(tr_engine_t *e, json_t *ev, int64_t wait_ms);
/* ev_new reads the workspace's name once per critical section; a section that changes it
 * calls this before its next event. */
void ev_forget_workspace(tr_engine_t *e);

/* The counts of CumulativeStatistics (stats.c): each field and the event type it counts.
 * ev_emit keeps per-minute counts (tr_event_minutes) of these types only. */
typedef struct {
    const char *field, *type;
} tr_counted_t;
extern const tr_counted_t TR_COUNTED[];
extern const size_t TR_COUNTED_N;
/* Those types as an SQL list, the very text of the partial index tr_events_counted (taskrouter
 * step 8), which a query names to be answered from that index. */
#define TR_COUNTED_SQL                                                                             \
    "('task-queue.entered', 'task-queue.moved', 'task.completed', 'task.canceled',"                \
    " 'task.deleted', 'reservation.created', 'reservation.accepted', 'reservation.rejected',"      \
    " 'reservation.timeout', 'reservation.canceled', 'reservation.rescinded')"

/* Stored once per task (tr_event_bases): the first event of a task stores its whole
 * parameter set there, and each event of the task stores in tr_events.params only what
 * differs from it (ev_delta); the keys that are columns of the event (Sid, EventType,
 * ResourceType, ResourceSid, EventDescription, Timestamp, TimestampMs) come from the columns,
 * and a description that is the default one is NULL. ev_emit checks that tr_event_merge gives back
 * the very text (values and key order) and stores the whole set otherwise.
 *
 * ev_delta: what ev has that base (both JSON objects of strings, borrowed) has not, or has
 * otherwise, a JSON null for each key of base that ev lacks, and under the key "" the keys of
 * ev in order when the merge (tr_event_merge, rows.h) would order them otherwise; column keys
 * left out. New reference; NULL on OOM. */
json_t *ev_delta(const json_t *base, const json_t *ev);

/* Records a task-centred event: the task with its queue and workflow, and optionally the
 * reservation and its worker. A convenience over ev_new + ev_* + ev_emit. */
tassa_err ev_task_event(tr_engine_t *e, const char *type, const char *task_sid, const char *res_sid,
                        const char *description, int64_t wait_ms, int64_t now);

/* ev_task_event for a task already loaded (t, borrowed) and no reservation, with the keys of
 * extras (NULL, or a JSON object of strings; borrowed) added at the end: the events that
 * follow one change to the task share one load, and those after the first repeat its stored
 * delta instead of building their parameter set again. */
tassa_err ev_loaded_task_event(tr_engine_t *e, const char *type, const tr_task_t *t,
                               const json_t *extras, int64_t now);

/* Tells the events of this critical section that task_sid was just created: its first event
 * stores its parameter set without looking for one. */
void ev_task_is_new(tr_engine_t *e, const char *task_sid);

/* Between ev_group_begin and ev_group_end, the events of one task that follow one another at
 * one time are stored in one row (rows.h's groups): the first task event holds its row back,
 * and each later one that ev_loaded_task_event repeats joins it as a member; any other event
 * writes the held row first, so rows keep the order of their events. A row counts at most one
 * event for CumulativeStatistics (tr_events.counted names a member's). A task's creation, its
 * four events in one row, writes a quarter of the rows and index entries. ev_group_end writes
 * the held row and returns its error; call it on every path after ev_group_begin, in the same
 * critical section. */
void ev_group_begin(tr_engine_t *e);
tassa_err ev_group_end(tr_engine_t *e);

/* Records an event about a worker, task queue or workflow (resource_type "Worker",
 * "TaskQueue" or "Workflow"; another adds only the common fields) with the resource's current
 * fields. */
tassa_err ev_resource_event(tr_engine_t *e, const char *type, const char *resource_type,
                            const char *sid, int64_t now);

#endif
