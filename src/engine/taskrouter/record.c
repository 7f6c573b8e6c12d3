/* record.c - TaskRouter events: Twilio's EventCallbackUrl parameters, recorded in tr_events.
 *
 * An event is recorded inside the transaction of the change it reports, so it commits with
 * it or not at all; its sequence number is its commit order. The parameters are kept as a
 * JSON object of strings (the form fields a callback would POST); a few are also columns, for
 * the Events list filters and the cumulative statistics.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timefmt.h"

void ev_set(json_t *ev, const char *key, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof buf) {
        json_object_set_new(ev, key, json_string(buf));
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    json_object_set_new(ev, key, json_string(big));
    free(big);
}

/* Sets the event's key to v when v is set. */
static void put(json_t *ev, const char *key, const char *v)
{
    if (v)
        json_object_set_new(ev, key, json_string(v));
}

/* A parameter of the event being built (borrowed; NULL when unset). */
static const char *param(const json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

json_t *ev_new(tr_engine_t *e, const char *type, const char *resource_type,
               const char *resource_sid, const char *description, int64_t now)
{
    char sid[SID_LEN + 1];
    json_t *ev = json_object();
    if (!ev || sid_new("EV", sid)) {
        json_decref(ev);
        return NULL;
    }
    tr_workspace_t ws = {0};
    tr_workspace_load(e, &ws);
    ev_set(ev, "EventType", "%s", type);
    ev_set(ev, "Sid", "%s", sid);
    ev_set(ev, "AccountSid", "%s", e->account_sid);
    ev_set(ev, "WorkspaceSid", "%s", e->ws_sid);
    put(ev, "WorkspaceName", ws.friendly_name);
    ev_set(ev, "ResourceType", "%s", resource_type);
    ev_set(ev, "ResourceSid", "%s", resource_sid ? resource_sid : "");
    if (description)
        ev_set(ev, "EventDescription", "%s", description);
    else
        ev_set(ev, "EventDescription", "%s %s %s", resource_type, resource_sid ? resource_sid : "",
               type);
    ev_set(ev, "Timestamp", "%lld", (long long)(now / 1000));
    ev_set(ev, "TimestampMs", "%lld", (long long)now);
    rows_clear(&TR_WORKSPACE_ROW, &ws);
    return ev;
}

void ev_task(json_t *ev, const tr_task_t *t, int64_t now)
{
    if (!t)
        return;
    char date[TIMEFMT_LEN];
    put(ev, "TaskSid", t->sid);
    put(ev, "TaskAttributes", t->attributes);
    ev_set(ev, "TaskAge", "%lld", (long long)((now - t->date_created) / 1000));
    ev_set(ev, "TaskPriority", "%lld", (long long)t->priority);
    ev_set(ev, "TaskTimeout", "%lld", (long long)t->timeout);
    put(ev, "TaskAssignmentStatus", t->status);
    put(ev, "TaskChannelUniqueName", t->channel);
    timefmt_iso(t->date_created, date);
    ev_set(ev, "TaskDateCreated", "%s", date);
    if (t->status && !strcmp(t->status, "canceled"))
        put(ev, "TaskCanceledReason", t->reason);
    if (t->status && !strcmp(t->status, "completed"))
        put(ev, "TaskCompletedReason", t->reason);
    if (t->queue_sid) {
        put(ev, "TaskQueueSid", t->queue_sid);
        put(ev, "TaskQueueName", t->queue_name);
        timefmt_iso(t->queue_entered_ms < 0 ? 0 : t->queue_entered_ms, date);
        ev_set(ev, "TaskQueueEnteredDate", "%s", date);
    }
    if (t->workflow_sid) {
        put(ev, "WorkflowSid", t->workflow_sid);
        put(ev, "WorkflowName", t->workflow_name);
    }
}

void ev_worker(json_t *ev, const tr_worker_t *w)
{
    if (!w)
        return;
    put(ev, "WorkerSid", w->sid);
    put(ev, "WorkerName", w->friendly_name);
    put(ev, "WorkerAttributes", w->attributes);
    put(ev, "WorkerActivitySid", w->activity_sid);
    put(ev, "WorkerActivityName", w->activity_name);
    ev_set(ev, "WorkerAvailable", "%s", w->available ? "true" : "false");
}

void ev_queue(json_t *ev, const tr_queue_t *q)
{
    if (!q)
        return;
    put(ev, "TaskQueueSid", q->sid);
    put(ev, "TaskQueueName", q->friendly_name);
    put(ev, "TaskQueueTargetExpression", q->target_workers);
}

void ev_workflow(json_t *ev, const tr_workflow_t *wf)
{
    if (!wf)
        return;
    put(ev, "WorkflowSid", wf->sid);
    put(ev, "WorkflowName", wf->friendly_name);
}

void ev_reservation(json_t *ev, const tr_reservation_t *r)
{
    if (!r)
        return;
    put(ev, "ReservationSid", r->sid);
    put(ev, "ReservationStatus", r->status);
}

tassa_err ev_emit(tr_engine_t *e, json_t *ev, int64_t wait_ms)
{
    if (!ev)
        return TASSA_ENOMEM;
    char *text = json_dumps(ev, JSON_COMPACT);
    tassa_err err = TASSA_ENOMEM;
    if (text)
        err = db_exec(
            e->store,
            "INSERT INTO tr_events (sid, event_type, resource_type, resource_sid, description,"
            " date_ms, task_sid, worker_sid, reservation_sid, queue_sid, workflow_sid, wait_ms,"
            " params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(CAST(? AS INTEGER), -1), ?)",
            "sssssisssssis", param(ev, "Sid"), param(ev, "EventType"), param(ev, "ResourceType"),
            param(ev, "ResourceSid"), param(ev, "EventDescription"),
            (int64_t)strtoll(param(ev, "TimestampMs"), NULL, 10), param(ev, "TaskSid"),
            param(ev, "WorkerSid"), param(ev, "ReservationSid"), param(ev, "TaskQueueSid"),
            param(ev, "WorkflowSid"), wait_ms, text);
    free(text);
    json_decref(ev);
    return err;
}

/* The resource an event type reports on: Reservation, TaskQueue, Workflow or Task. */
static const char *resource_of(const char *type)
{
    if (!strncmp(type, "reservation.", 12))
        return "Reservation";
    if (!strncmp(type, "task-queue.", 11))
        return "TaskQueue";
    if (!strncmp(type, "workflow.", 9))
        return "Workflow";
    return "Task";
}

tassa_err ev_task_event(tr_engine_t *e, const char *type, const char *task_sid, const char *res_sid,
                        const char *description, int64_t wait_ms, int64_t now)
{
    tr_task_t t = {0};
    tr_reservation_t r = {0};
    tr_worker_t w = {0};
    bool has_t = tr_task_load(e, task_sid, &t);
    bool has_r = res_sid && tr_reservation_load(e, res_sid, &r);
    bool has_w = has_r && tr_worker_load(e, r.worker_sid, &w);
    tassa_err err = TASSA_ESTORE;
    if (!has_t || (res_sid && !has_r))
        goto out;
    const char *rtype = resource_of(type);
    const char *rsid = task_sid;
    if (!strcmp(rtype, "Reservation"))
        rsid = res_sid;
    else if (!strcmp(rtype, "TaskQueue"))
        rsid = t.queue_sid;
    else if (!strcmp(rtype, "Workflow"))
        rsid = t.workflow_sid;
    json_t *ev = ev_new(e, type, rtype, rsid, description, now);
    ev_task(ev, &t, now);
    ev_reservation(ev, has_r ? &r : NULL);
    ev_worker(ev, has_w ? &w : NULL);
    err = ev_emit(e, ev, wait_ms);
out:
    rows_clear(&TR_TASK_ROW, &t);
    rows_clear(&TR_RES_ROW, &r);
    rows_clear(&TR_WORKER_ROW, &w);
    return err;
}

tassa_err ev_resource_event(tr_engine_t *e, const char *type, const char *resource_type,
                            const char *sid, int64_t now)
{
    tr_worker_t w = {0};
    tr_queue_t q = {0};
    tr_workflow_t wf = {0};
    json_t *ev = ev_new(e, type, resource_type, sid, NULL, now);
    if (!strcmp(resource_type, "Worker") && tr_worker_load(e, sid, &w))
        ev_worker(ev, &w);
    else if (!strcmp(resource_type, "TaskQueue") && tr_queue_load(e, sid, &q))
        ev_queue(ev, &q);
    else if (!strcmp(resource_type, "Workflow") && tr_workflow_load(e, sid, &wf))
        ev_workflow(ev, &wf);
    rows_clear(&TR_WORKER_ROW, &w);
    rows_clear(&TR_QUEUE_ROW, &q);
    rows_clear(&TR_WORKFLOW_ROW, &wf);
    return ev_emit(e, ev, -1);
}
