/* engine.h - the embedded TaskRouter engine: lifecycle, workspace, event delivery, demo data.
 *
 * One engine serves one workspace, created at first start (its SID kept in the store meta
 * value `tr_workspace_sid`) with the activities Offline (the default), Available,
 * Unavailable, in-call and post-call. The model lives in the store's tables; every change is
 * one transaction under the store lock, committed before the call returns. Resource
 * operations are in model.h, statistics in stats.h.
 *
 * Two threads run once tr_engine_start was called: the timer thread applies reservation
 * timeouts, workflow target timeouts and task TTLs from the deadlines stored in the tables
 * (so they survive a restart), and the dispatcher delivers recorded events to the sink.
 *
 * Several nodes on one shared store (PostgreSQL): both threads work only on the node that
 * holds the workspace's lease "taskrouter:<WorkspaceSid>" (store_lease_hold; /healthz lists
 * it). The others look again every second, so a survivor takes over within about two seconds
 * of the holder's death and recovers every timer and undelivered event from the tables. Every
 * commit notifies the channel "tassa_taskrouter", which wakes the holder wherever it runs.
 * API operations match tasks and workers inside their own transaction on whichever node
 * serves them (the store serializes transactions across nodes).
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_ENGINE_H
#define TASSA_TR_ENGINE_H

#include "base/err.h"
#include "base/params.h"
#include "store/store.h"

typedef struct tr_engine tr_engine_t;

/* Receives one TaskRouter event as Twilio's EventCallbackUrl parameters (EventType, Sid,
 * AccountSid, WorkspaceSid, TaskSid, TaskAttributes, WorkerSid, ...; every value a string).
 * event is borrowed for the call. Called on the dispatcher thread, one event at a time, in
 * commit order, without the store lock held; it may call back into the engine. Delivery is
 * at least once: an event is marked delivered only after the sink returned, so an event whose
 * delivery a crash interrupted is delivered again after a restart (or by the next lease
 * holder): a sink must be idempotent by the event's Sid. */
typedef void (*tr_event_fn)(void *ctx, const params_t *event);

/* Called on the dispatcher thread after the sink calls of each batch of events, before the
 * batch is recorded delivered: a sink may start its work in each call and wait for all of it
 * here, so that a batch's durable effects overlap. */
typedef void (*tr_flush_fn)(void *ctx);

/* Opens the engine on store s (borrowed; it must outlive the engine): creates the tables and,
 * on first use, the workspace and its activities. account_sid is copied. NULL with a detail
 * in em on failure. Threads start only with tr_engine_start. */
tr_engine_t *tr_engine_new(store_t *s, const char *account_sid, errmsg_t *em);

/* Sets the one event sink (fn may be NULL: events are then only recorded). Call before
 * tr_engine_start. */
void tr_engine_set_event_sink(tr_engine_t *e, tr_event_fn fn, void *ctx);

/* Sets the sink's flush (NULL: none). Call before tr_engine_start. */
void tr_engine_set_event_flush(tr_engine_t *e, tr_flush_fn flush);

/* Starts the timer and dispatcher threads. TASSA_EINTERNAL if a thread cannot start (none is
 * left running then); TASSA_ECONFLICT if already started. */
tassa_err tr_engine_start(tr_engine_t *e);

/* Stops the timer and dispatcher threads, waiting for a sink call in progress, so that what
 * the sink uses can be torn down next. Idempotent; accepts NULL. Main thread only. */
void tr_engine_stop(tr_engine_t *e);

/* Moves the engine's clock ms milliseconds ahead of the wall clock (cumulative; ms >= 0) and
 * wakes the timer thread, so that tests order events in time without sleeping. Any thread. */
void tr_engine_advance_clock(tr_engine_t *e, int64_t ms);

/* Stops the threads (as tr_engine_stop) and frees e. Accepts NULL. */
void tr_engine_free(tr_engine_t *e);

/* The workspace SID ("WS..."). Borrowed; valid while e lives. Any thread. */
const char *tr_workspace_sid(const tr_engine_t *e);

/* The workspace's EventCallbackUrl and EventsFilter as malloc'd strings the caller frees;
 * each is NULL when unset. TASSA_ESTORE / TASSA_ENOMEM on failure (both then NULL). Takes
 * the store lock; any thread, including the event sink. */
tassa_err tr_workspace_callback(tr_engine_t *e, char **url, char **filter);

/* Removes finished tasks (with their reservations) older than 15 minutes and delivered
 * events older than 30 days, as of now_ms, as Twilio does; the timer thread does this every
 * minute. A bounded batch per call. TASSA_ESTORE on failure. Any thread. */
tassa_err tr_engine_prune(tr_engine_t *e, int64_t now_ms);

/* Adds demo data when the workspace has no worker: queues General (tellers with skill
 * general) and Loans (skills HAS 'loans'), a workflow sending type == 'loan' to Loans and
 * everything else to General (TaskReservationTimeout 30), and four tellers set Available.
 * Does nothing (TASSA_OK) when a worker exists. Errors as for the model's creates. */
tassa_err tr_engine_demo(tr_engine_t *e);

#endif
