/* lifecycle.c - the lifecycle of tasks, reservations and workers: every transition
 * the resources and the timers ask for, each recorded as Twilio's events. The resources call
 * down into it; it never calls them.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/record.h"
#include "engine/taskrouter/wfconf.h"

/* Records workflow.target-matched with the filter and target of task (borrowed). */
static tassa_err target_matched(tr_engine_t *e, const tr_task_t *task, const tr_wfconf_t *c,
                                long filter, const tr_target_t *t, int64_t now)
{
    json_t *extras = json_object();
    if (!extras)
        return TASSA_ENOMEM;
    if (filter >= 0) {
        const tr_filter_t *f = &c->filters[filter];
        ev_set(extras, "WorkflowFilterName", "%s", f->name ? f->name : "");
        ev_set(extras, "WorkflowFilterExpression", "%s", expr_source(f->expr));
    } else {
        ev_set(extras, "WorkflowFilterName", "%s", "Default Filter");
    }
    if (t->expr)
        ev_set(extras, "TaskQueueTargetExpression", "%s", expr_source(t->expr));
    tassa_err err = ev_loaded_task_event(e, "workflow.target-matched", task, extras, now);
    json_decref(extras);
    return err;
}

/* Puts the task into target t: its queue, its priority override and its timeout. */
static tassa_err enter_target(tr_engine_t *e, const char *sid, long filter, const char *fname,
                              long index, const tr_target_t *t, int64_t now)
{
    tassa_err err = tr_task_tally_locked(e, sid, -1);
    if (!err)
        err = db_exec(
            e->store,
            "UPDATE tr_tasks SET filter_index = ?, filter_name = ?, target_index = ?,"
            " queue_sid = ?, priority = CASE WHEN ? >= 0 THEN CAST(? AS INTEGER) ELSE priority END,"
            " queue_entered_ms = ?,"
            " target_deadline = CASE WHEN ? >= 0 THEN CAST(? AS INTEGER) END,"
            " date_updated = ? WHERE sid = ?",
            "isisiiiiiis", (int64_t)filter, fname, (int64_t)index, t->queue, (int64_t)t->priority,
            (int64_t)t->priority, now, (int64_t)t->timeout,
            now + (int64_t)(t->timeout < 0 ? 0 : t->timeout) * 1000, now, sid);
    return err ? err : tr_task_tally_locked(e, sid, 1);
}

const tr_target_t *tr_task_choose_locked(tr_engine_t *e, const char *workflow_sid,
                                         const char *attributes, tr_wfconf_t **c, long *filter)
{
    *filter = -1;
    if (!(*c = tr_wfconf_load(e, workflow_sid)))
        return NULL;
    json_t *attrs = tr_parse_attributes(attributes);
    for (size_t i = 0; i < (*c)->n_filters; i++)
        if (expr_eval((*c)->filters[i].expr, &(expr_ctx_t){.subject = attrs, .task = attrs})) {
            *filter = (long)i;
            break;
        }
    json_decref(attrs);
    return tr_wfconf_target(*c, *filter, 0);
}

tassa_err tr_task_entered_events_locked(tr_engine_t *e, const char *sid, const tr_wfconf_t *c,
                                        long filter, const tr_target_t *t, bool created,
                                        int64_t now)
{
    tr_task_t task = {0};
    if (!tr_task_load(e, sid, &task)) /* as the events report it */
        return TASSA_ESTORE;
    tassa_err err = TASSA_OK;
    ev_group_begin(e); /* one row for these events */
    if (c)
        err = ev_loaded_task_event(e, "workflow.entered", &task, NULL, now);
    if (!err)
        err = ev_loaded_task_event(e, "task-queue.entered", &task, NULL, now);
    if (!err && created)
        err = ev_loaded_task_event(e, "task.created", &task, NULL, now);
    if (!err && c)
        err = target_matched(e, &task, c, filter, t, now);
    tassa_err end = ev_group_end(e);
    if (!err)
        err = end;
    rows_clear(&TR_TASK_ROW, &task);
    return err;
}

tassa_err tr_task_route_locked(tr_engine_t *e, const char *sid, bool created, int64_t now)
{
    tr_task_t task = {0};
    tr_wfconf_t *c = NULL;
    tassa_err err = TASSA_ESTORE;
    long filter;
    if (!tr_task_load(e, sid, &task))
        goto out;
    if (!task.workflow_sid) {                   /* created straight into a TaskQueueSid */
        err = tr_task_tally_locked(e, sid, -1); /* its entry time keys its rank bucket */
        if (!err)
            err = db_exec(e->store, "UPDATE tr_tasks SET queue_entered_ms = ? WHERE sid = ?", "is",
                          now, sid);
        if (!err)
            err = tr_task_tally_locked(e, sid, 1);
        if (!err)
            err = tr_task_entered_events_locked(e, sid, NULL, -1, NULL, created, now);
        goto out;
    }
    const tr_target_t *t =
        tr_task_choose_locked(e, task.workflow_sid, task.attributes, &c, &filter);
    if (!c)
        goto out;
    err = enter_target(e, sid, filter, filter >= 0 ? c->filters[filter].name : NULL, 0, t, now);
    if (!err)
        err = tr_task_entered_events_locked(e, sid, c, filter, t, created, now);
out:
    rows_clear(&TR_TASK_ROW, &task);
    tr_wfconf_free(c);
    return err;
}

tassa_err tr_task_target_timeout_locked(tr_engine_t *e, const char *sid, int64_t now)
{
    tr_task_t task = {0}, moved = {0};
    tr_wfconf_t *c = NULL;
    tassa_err err = TASSA_ESTORE;
    if (!tr_task_load(e, sid, &task))
        goto out;
    c = tr_wfconf_load(e, task.workflow_sid);
    long filter = (long)task.filter_index;
    long next = (long)task.target_index + 1;
    const tr_target_t *t = c ? tr_wfconf_target(c, filter, next) : NULL;
    if (!t) {
        err = ev_task_event(e, "workflow.timeout", sid, NULL, NULL, -1, now);
        if (!err)
            err = tr_task_cancel_locked(e, sid, "Workflow Timeout", now);
        goto out;
    }
    err = enter_target(e, sid, filter, c->filters[filter].name, next, t, now);
    if (!err && !tr_task_load(e, sid, &moved))
        err = TASSA_ESTORE;
    if (!err) {
        json_t *ev = ev_new(e, "task-queue.moved", "TaskQueue", t->queue, NULL, now);
        ev_task(ev, &moved, now);
        ev_set(ev, "TaskQueueMovedFromSid", "%s", task.queue_sid ? task.queue_sid : "");
        ev_set(ev, "TaskQueueMovedFromName", "%s", task.queue_name ? task.queue_name : "");
        err = ev_emit(e, ev, -1);
    }
    if (!err)
        err = target_matched(e, &moved, c, filter, t, now);
out:
    rows_clear(&TR_TASK_ROW, &task);
    rows_clear(&TR_TASK_ROW, &moved);
    tr_wfconf_free(c);
    return err;
}

/* Ends every pending reservation that sql (one 's' parameter: sid) selects as status. */
static tassa_err end_pending(tr_engine_t *e, const char *sql, const char *sid, const char *status,
                             int64_t now)
{
    tr_sids_t pend;
    tassa_err err = db_sids(e->store, &pend, sql, "s", sid);
    for (size_t i = 0; !err && i < pend.n; i++)
        err = tr_reservation_end_locked(e, pend.sid[i], status, now);
    free(pend.sid);
    return err;
}

tassa_err tr_task_end_pending_locked(tr_engine_t *e, const char *task_sid, const char *status,
                                     int64_t now)
{
    return end_pending(e,
                       "SELECT sid FROM tr_reservations WHERE task_sid = ? AND status = 'pending'",
                       task_sid, status, now);
}

tassa_err tr_worker_end_pending_locked(tr_engine_t *e, const char *worker_sid, const char *status,
                                       int64_t now)
{
    return end_pending(
        e, "SELECT sid FROM tr_reservations WHERE worker_sid = ? AND status = 'pending'",
        worker_sid, status, now);
}

tassa_err tr_task_cancel_locked(tr_engine_t *e, const char *sid, const char *reason, int64_t now)
{
    tassa_err err = tr_task_end_pending_locked(e, sid, "canceled", now);
    if (!err)
        err = tr_task_tally_locked(e, sid, -1); /* canceled: no longer counted */
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_tasks SET status = 'canceled', reason = ?, target_deadline = NULL,"
                      " ttl_deadline = NULL, date_updated = ? WHERE sid = ?",
                      "sis", reason, now, sid);
    if (!err) {
        int64_t created =
            db_int(e->store, now, "SELECT date_created FROM tr_tasks WHERE sid = ?", "s", sid);
        err = ev_task_event(e, "task.canceled", sid, NULL, reason, now - created, now);
    }
    return err;
}

tassa_err tr_task_finish_locked(tr_engine_t *e, const char *sid, const char *status,
                                const char *reason, int64_t now, errmsg_t *em)
{
    tr_task_t task = {0};
    tassa_err err = TASSA_OK;
    if (!tr_task_load(e, sid, &task))
        return tr_not_found(e, em, "Tasks", sid);
    const char *cur = task.status;
    bool wrap = !strcmp(status, "wrapping");
    if (!strcmp(cur, status))
        goto out; /* already there: nothing to do */
    if (strcmp(cur, "assigned") && (wrap || strcmp(cur, "wrapping"))) {
        err = err_set(em, TASSA_EINVAL, "Task %s cannot go from %s to %s", sid, cur, status);
        goto out;
    }
    char res[SID_LEN + 1];
    bool has_res = db_sid(e->store, res,
                          "SELECT sid FROM tr_reservations WHERE task_sid = ? AND"
                          " status IN " TR_RES_ASSIGNED_SQL " ORDER BY seq DESC LIMIT 1",
                          "s", sid);
    err = tr_task_tally_locked(e, sid, -1);
    if (!err)
        err =
            db_exec(e->store,
                    "UPDATE tr_tasks SET status = ?, reason = COALESCE(?, reason),"
                    " target_deadline = NULL, ttl_deadline = NULL, date_updated = ? WHERE sid = ?",
                    "ssis", status, reason, now, sid);
    if (!err)
        err = tr_task_tally_locked(e, sid, 1);
    if (!err && has_res)
        err = db_exec(e->store,
                      "UPDATE tr_reservations SET status = ?, date_updated = ? WHERE sid = ?",
                      "sis", status, now, res);
    if (!err && has_res && !wrap)
        err = db_exec(e->store,
                      "UPDATE tr_workers SET idle_since = ? WHERE sid ="
                      " (SELECT worker_sid FROM tr_reservations WHERE sid = ?)",
                      "is", now, res);
    if (!err)
        err = ev_task_event(e, wrap ? "task.wrapup" : "task.completed", sid, has_res ? res : NULL,
                            reason, -1, now);
    if (!err && has_res)
        err = ev_task_event(e, wrap ? "reservation.wrapup" : "reservation.completed", sid, res,
                            NULL, -1, now);
out:
    rows_clear(&TR_TASK_ROW, &task);
    return err;
}

tassa_err tr_worker_move_locked(tr_engine_t *e, const char *worker_sid, const char *activity_sid,
                                bool rescind, int64_t now)
{
    tr_worker_t old = {0}, cur = {0};
    tr_activity_t act = {0};
    tassa_err err = TASSA_ESTORE;
    if (!tr_worker_load(e, worker_sid, &old) || !tr_activity_load(e, activity_sid, &act))
        goto out;
    err = TASSA_OK;
    if (!strcmp(old.activity_sid, activity_sid))
        goto out;
    bool was = old.available, is = act.available;
    err = db_exec(e->store,
                  "UPDATE tr_workers SET activity_sid = ?, date_status_changed = ?,"
                  " date_updated = ?, idle_since = CASE WHEN ? = 1 THEN ? ELSE idle_since END"
                  " WHERE sid = ?",
                  "siidis", activity_sid, now, now, (int)(is && !was), now, worker_sid);
    if (!err)
        err = tr_members_move_locked(e, worker_sid, old.activity_sid, activity_sid, is);
    if (!err) {
        tr_worker_load(e, worker_sid, &cur);
        int64_t in_prev = now - old.date_status_changed;
        json_t *ev = ev_new(e, "worker.activity.update", "Worker", worker_sid, NULL, now);
        ev_worker(ev, &cur);
        ev_set(ev, "WorkerPreviousActivitySid", "%s", old.activity_sid);
        ev_set(ev, "WorkerPreviousActivityName", "%s", old.activity_name ? old.activity_name : "");
        ev_set(ev, "WorkerTimeInPreviousActivity", "%lld", (long long)(in_prev / 1000));
        ev_set(ev, "WorkerTimeInPreviousActivityMs", "%lld", (long long)in_prev);
        err = ev_emit(e, ev, -1);
    }
    if (!err && !is && rescind)
        err = tr_worker_end_pending_locked(e, worker_sid, "rescinded", now);
out:
    rows_clear(&TR_WORKER_ROW, &old);
    rows_clear(&TR_WORKER_ROW, &cur);
    rows_clear(&TR_ACTIVITY_ROW, &act);
    return err;
}

tassa_err tr_reservation_end_locked(tr_engine_t *e, const char *res_sid, const char *status,
                                    int64_t now)
{
    tr_reservation_t r = {0};
    tr_workspace_t ws = {0};
    tassa_err err = TASSA_ESTORE;
    char type[40];
    if (!tr_reservation_load(e, res_sid, &r))
        goto out;
    err = TASSA_OK;
    if (strcmp(r.status, "pending"))
        goto out;
    bool requeue = strcmp(status, "canceled") != 0;
    err = db_exec(e->store,
                  "UPDATE tr_reservations SET status = ?, deadline = NULL, date_updated = ?"
                  " WHERE sid = ?",
                  "sis", status, now, res_sid);
    if (!err && requeue)
        err = tr_task_tally_locked(e, r.task_sid, -1);
    if (!err && requeue)
        err = db_exec(e->store,
                      "UPDATE tr_tasks SET status = 'pending', date_updated = ?"
                      " WHERE sid = ? AND status = 'reserved'",
                      "is", now, r.task_sid);
    if (!err && requeue)
        err = tr_task_tally_locked(e, r.task_sid, 1);
    snprintf(type, sizeof type, "reservation.%s", status);
    if (!err)
        err = ev_task_event(e, type, r.task_sid, res_sid, NULL, -1, now);
    if (!err && !strcmp(status, "timeout") && tr_workspace_load(e, &ws) && ws.timeout_activity_sid)
        err = tr_worker_move_locked(e, r.worker_sid, ws.timeout_activity_sid, false, now);
out:
    rows_clear(&TR_RES_ROW, &r);
    rows_clear(&TR_WORKSPACE_ROW, &ws);
    return err;
}

tassa_err tr_reservation_accept_locked(tr_engine_t *e, const tr_reservation_t *r,
                                       const char *activity, int64_t now)
{
    tr_task_t t = {0};
    tr_queue_t q = {0};
    tassa_err err = tr_task_load(e, r->task_sid, &t) ? TASSA_OK : TASSA_ESTORE;
    if (!err && t.queue_sid)
        tr_queue_load(e, t.queue_sid, &q);
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_reservations SET status = 'accepted', deadline = NULL,"
                      " date_updated = ? WHERE sid = ?",
                      "is", now, r->sid);
    if (!err)
        err = tr_task_tally_locked(e, r->task_sid, -1);
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_tasks SET status = 'assigned', target_deadline = NULL,"
                      " ttl_deadline = NULL, date_updated = ? WHERE sid = ?",
                      "is", now, r->task_sid);
    if (!err)
        err = tr_task_tally_locked(e, r->task_sid, 1);
    if (!err)
        err = ev_task_event(e, "reservation.accepted", r->task_sid, r->sid, NULL,
                            now - t.date_created, now);
    if (!activity)
        activity = q.assignment_activity_sid;
    if (!err && activity)
        err = tr_worker_move_locked(e, r->worker_sid, activity, false, now);
    rows_clear(&TR_TASK_ROW, &t);
    rows_clear(&TR_QUEUE_ROW, &q);
    return err;
}
