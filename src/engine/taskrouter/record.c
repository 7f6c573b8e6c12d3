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

#include "engine/taskrouter/rows.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
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

/* Copies a row's string field into the event under key when it is set. */
static void copy_str(json_t *ev, const char *key, const json_t *row, const char *field)
{
    const char *v = row_str(row, field);
    if (v)
        json_object_set_new(ev, key, json_string(v));
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
    json_t *ws = tr_load_workspace(e);
    ev_set(ev, "EventType", "%s", type);
    ev_set(ev, "Sid", "%s", sid);
    ev_set(ev, "AccountSid", "%s", e->account_sid);
    ev_set(ev, "WorkspaceSid", "%s", e->ws_sid);
    copy_str(ev, "WorkspaceName", ws, "friendly_name");
    ev_set(ev, "ResourceType", "%s", resource_type);
    ev_set(ev, "ResourceSid", "%s", resource_sid ? resource_sid : "");
    if (description)
        ev_set(ev, "EventDescription", "%s", description);
    else
        ev_set(ev, "EventDescription", "%s %s %s", resource_type, resource_sid ? resource_sid : "",
               type);
    ev_set(ev, "Timestamp", "%lld", (long long)(now / 1000));
    ev_set(ev, "TimestampMs", "%lld", (long long)now);
    json_decref(ws);
    return ev;
}

void ev_task(json_t *ev, const json_t *t, int64_t now)
{
    if (!t)
        return;
    char date[TIMEFMT_LEN];
    const char *status = row_str(t, "status");
    copy_str(ev, "TaskSid", t, "sid");
    copy_str(ev, "TaskAttributes", t, "attributes");
    ev_set(ev, "TaskAge", "%lld", (long long)((now - row_int(t, "date_created")) / 1000));
    ev_set(ev, "TaskPriority", "%lld", (long long)row_int(t, "priority"));
    ev_set(ev, "TaskTimeout", "%lld", (long long)row_int(t, "timeout"));
    copy_str(ev, "TaskAssignmentStatus", t, "status");
    copy_str(ev, "TaskChannelUniqueName", t, "channel");
    timefmt_iso(row_int(t, "date_created"), date);
    ev_set(ev, "TaskDateCreated", "%s", date);
    if (status && !strcmp(status, "canceled"))
        copy_str(ev, "TaskCanceledReason", t, "reason");
    if (status && !strcmp(status, "completed"))
        copy_str(ev, "TaskCompletedReason", t, "reason");
    if (row_str(t, "queue_sid")) {
        copy_str(ev, "TaskQueueSid", t, "queue_sid");
        copy_str(ev, "TaskQueueName", t, "queue_name");
        timefmt_iso(row_int(t, "queue_entered_ms"), date);
        ev_set(ev, "TaskQueueEnteredDate", "%s", date);
    }
    if (row_str(t, "workflow_sid")) {
        copy_str(ev, "WorkflowSid", t, "workflow_sid");
        copy_str(ev, "WorkflowName", t, "workflow_name");
    }
}

void ev_worker(json_t *ev, const json_t *w)
{
    if (!w)
        return;
    copy_str(ev, "WorkerSid", w, "sid");
    copy_str(ev, "WorkerName", w, "friendly_name");
    copy_str(ev, "WorkerAttributes", w, "attributes");
    copy_str(ev, "WorkerActivitySid", w, "activity_sid");
    copy_str(ev, "WorkerActivityName", w, "activity_name");
    ev_set(ev, "WorkerAvailable", "%s", row_int(w, "available") ? "true" : "false");
}

void ev_queue(json_t *ev, const json_t *q)
{
    if (!q)
        return;
    copy_str(ev, "TaskQueueSid", q, "sid");
    copy_str(ev, "TaskQueueName", q, "friendly_name");
    copy_str(ev, "TaskQueueTargetExpression", q, "target_workers");
}

void ev_workflow(json_t *ev, const json_t *wf)
{
    if (!wf)
        return;
    copy_str(ev, "WorkflowSid", wf, "sid");
    copy_str(ev, "WorkflowName", wf, "friendly_name");
}

void ev_reservation(json_t *ev, const json_t *r)
{
    if (!r)
        return;
    copy_str(ev, "ReservationSid", r, "sid");
    copy_str(ev, "ReservationStatus", r, "status");
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
            " params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, -1), ?)",
            "sssssisssssis", row_str(ev, "Sid"), row_str(ev, "EventType"),
            row_str(ev, "ResourceType"), row_str(ev, "ResourceSid"),
            row_str(ev, "EventDescription"), (int64_t)strtoll(row_str(ev, "TimestampMs"), NULL, 10),
            row_str(ev, "TaskSid"), row_str(ev, "WorkerSid"), row_str(ev, "ReservationSid"),
            row_str(ev, "TaskQueueSid"), row_str(ev, "WorkflowSid"), wait_ms, text);
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
    json_t *t = tr_load_task(e, task_sid);
    json_t *r = res_sid ? tr_load_reservation(e, res_sid) : NULL;
    json_t *w = r ? tr_load_worker(e, row_str(r, "worker_sid")) : NULL;
    tassa_err err = TASSA_ESTORE;
    if (!t || (res_sid && !r))
        goto out;
    const char *rtype = resource_of(type);
    const char *rsid = task_sid;
    if (!strcmp(rtype, "Reservation"))
        rsid = res_sid;
    else if (!strcmp(rtype, "TaskQueue"))
        rsid = row_str(t, "queue_sid");
    else if (!strcmp(rtype, "Workflow"))
        rsid = row_str(t, "workflow_sid");
    json_t *ev = ev_new(e, type, rtype, rsid, description, now);
    ev_task(ev, t, now);
    ev_reservation(ev, r);
    ev_worker(ev, w);
    err = ev_emit(e, ev, wait_ms);
out:
    json_decref(t);
    json_decref(r);
    json_decref(w);
    return err;
}
