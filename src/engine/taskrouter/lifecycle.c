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
#include "engine/taskrouter/rows.h"
#include "engine/taskrouter/wfconf.h"

/* Loads and parses the workflow configuration of sid (lock held). NULL when unusable. */
static tr_wfconf_t *load_conf(tr_engine_t *e, const char *wf_sid)
{
    json_t *wf = wf_sid ? tr_load_workflow(e, wf_sid) : NULL;
    tassa_err err;
    tr_wfconf_t *c = wf ? tr_wfconf_parse(NULL, row_str(wf, "configuration"), &err, NULL) : NULL;
    json_decref(wf);
    return c;
}

/* Records workflow.target-matched with the filter and target of the task. */
static tassa_err target_matched(tr_engine_t *e, const char *sid, const tr_wfconf_t *c, long filter,
                                const tr_target_t *t, int64_t now)
{
    json_t *task = tr_load_task(e, sid);
    if (!task)
        return TASSA_ESTORE;
    json_t *ev =
        ev_new(e, "workflow.target-matched", "Workflow", row_str(task, "workflow_sid"), NULL, now);
    ev_task(ev, task, now);
    if (filter >= 0) {
        const tr_filter_t *f = &c->filters[filter];
        ev_set(ev, "WorkflowFilterName", "%s", f->name ? f->name : "");
        ev_set(ev, "WorkflowFilterExpression", "%s", expr_source(f->expr));
    } else {
        ev_set(ev, "WorkflowFilterName", "%s", "Default Filter");
    }
    if (t->expr)
        ev_set(ev, "TaskQueueTargetExpression", "%s", expr_source(t->expr));
    json_decref(task);
    return ev_emit(e, ev, -1);
}

/* Puts the task into target t: its queue, its priority override and its timeout. */
static tassa_err enter_target(tr_engine_t *e, const char *sid, long filter, const char *fname,
                              long index, const tr_target_t *t, int64_t now)
{
    return db_exec(e->store,
                   "UPDATE tr_tasks SET filter_index = ?, filter_name = ?, target_index = ?,"
                   " queue_sid = ?, priority = CASE WHEN ? >= 0 THEN ? ELSE priority END,"
                   " queue_entered_ms = ?, target_deadline = CASE WHEN ? >= 0 THEN ? END,"
                   " date_updated = ? WHERE sid = ?",
                   "isisiiiiiis", (int64_t)filter, fname, (int64_t)index, t->queue,
                   (int64_t)t->priority, (int64_t)t->priority, now, (int64_t)t->timeout,
                   now + (int64_t)(t->timeout < 0 ? 0 : t->timeout) * 1000, now, sid);
}

tassa_err tr_task_route_locked(tr_engine_t *e, const char *sid, bool created, int64_t now)
{
    json_t *task = tr_load_task(e, sid);
    tr_wfconf_t *c = NULL;
    json_t *attrs = NULL;
    tassa_err err = TASSA_ESTORE;
    if (!task)
        goto out;
    if (!row_str(task, "workflow_sid")) { /* created straight into a TaskQueueSid */
        err = db_exec(e->store, "UPDATE tr_tasks SET queue_entered_ms = ? WHERE sid = ?", "is", now,
                      sid);
        if (!err)
            err = ev_task_event(e, "task-queue.entered", sid, NULL, NULL, -1, now);
        if (!err && created)
            err = ev_task_event(e, "task.created", sid, NULL, NULL, -1, now);
        goto out;
    }
    if (!(c = load_conf(e, row_str(task, "workflow_sid"))))
        goto out;
    attrs = tr_parse_attributes(row_str(task, "attributes"));
    long filter = -1;
    for (size_t i = 0; i < c->n_filters; i++)
        if (expr_eval(c->filters[i].expr, &(expr_ctx_t){.subject = attrs, .task = attrs})) {
            filter = (long)i;
            break;
        }
    const tr_target_t *t = tr_wfconf_target(c, filter, 0);
    err = enter_target(e, sid, filter, filter >= 0 ? c->filters[filter].name : NULL, 0, t, now);
    if (!err)
        err = ev_task_event(e, "workflow.entered", sid, NULL, NULL, -1, now);
    if (!err)
        err = ev_task_event(e, "task-queue.entered", sid, NULL, NULL, -1, now);
    if (!err && created)
        err = ev_task_event(e, "task.created", sid, NULL, NULL, -1, now);
    if (!err)
        err = target_matched(e, sid, c, filter, t, now);
out:
    json_decref(task);
    json_decref(attrs);
    tr_wfconf_free(c);
    return err;
}

tassa_err tr_task_target_timeout_locked(tr_engine_t *e, const char *sid, int64_t now)
{
    json_t *task = tr_load_task(e, sid);
    tr_wfconf_t *c = NULL;
    tassa_err err = TASSA_ESTORE;
    if (!task)
        goto out;
    c = load_conf(e, row_str(task, "workflow_sid"));
    long filter = (long)row_int(task, "filter_index");
    long next = (long)row_int(task, "target_index") + 1;
    const tr_target_t *t = c ? tr_wfconf_target(c, filter, next) : NULL;
    if (!t) {
        err = ev_task_event(e, "workflow.timeout", sid, NULL, NULL, -1, now);
        if (!err)
            err = tr_task_cancel_locked(e, sid, "Workflow Timeout", now);
        goto out;
    }
    err = enter_target(e, sid, filter, c->filters[filter].name, next, t, now);
    if (!err) {
        json_t *moved = tr_load_task(e, sid);
        json_t *ev = ev_new(e, "task-queue.moved", "TaskQueue", t->queue, NULL, now);
        ev_task(ev, moved, now);
        ev_set(ev, "TaskQueueMovedFromSid", "%s", row_str(task, "queue_sid"));
        ev_set(ev, "TaskQueueMovedFromName", "%s",
               row_str(task, "queue_name") ? row_str(task, "queue_name") : "");
        json_decref(moved);
        err = ev_emit(e, ev, -1);
    }
    if (!err)
        err = target_matched(e, sid, c, filter, t, now);
out:
    json_decref(task);
    tr_wfconf_free(c);
    return err;
}

tassa_err tr_task_cancel_locked(tr_engine_t *e, const char *sid, const char *reason, int64_t now)
{
    json_t *pend = db_all(e->store,
                          "SELECT sid FROM tr_reservations WHERE task_sid = ? AND"
                          " status = 'pending'",
                          "s", sid);
    tassa_err err = pend ? TASSA_OK : TASSA_ENOMEM;
    for (size_t i = 0; !err && i < json_array_size(pend); i++)
        err =
            tr_reservation_end_locked(e, row_str(json_array_get(pend, i), "sid"), "canceled", now);
    json_decref(pend);
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
    json_t *task = tr_load_task(e, sid);
    tassa_err err = TASSA_OK;
    if (!task)
        return tr_not_found(e, em, "Tasks", sid);
    const char *cur = row_str(task, "status");
    bool wrap = !strcmp(status, "wrapping");
    if (!strcmp(cur, status))
        goto out; /* already there: nothing to do */
    if (strcmp(cur, "assigned") && (wrap || strcmp(cur, "wrapping"))) {
        err = err_set(em, TASSA_EINVAL, "Task %s cannot go from %s to %s", sid, cur, status);
        goto out;
    }
    char *res = NULL;
    json_t *r = db_one(e->store,
                       "SELECT sid FROM tr_reservations WHERE task_sid = ? AND"
                       " status IN ('accepted', 'wrapping') ORDER BY seq DESC LIMIT 1",
                       "s", sid);
    if (r)
        res = strdup(row_str(r, "sid"));
    json_decref(r);
    err = db_exec(e->store,
                  "UPDATE tr_tasks SET status = ?, reason = COALESCE(?, reason),"
                  " target_deadline = NULL, ttl_deadline = NULL, date_updated = ? WHERE sid = ?",
                  "ssis", status, reason, now, sid);
    if (!err && res)
        err = db_exec(e->store,
                      "UPDATE tr_reservations SET status = ?, date_updated = ? WHERE sid = ?",
                      "sis", status, now, res);
    if (!err && res && !wrap)
        err = db_exec(e->store,
                      "UPDATE tr_workers SET idle_since = ? WHERE sid ="
                      " (SELECT worker_sid FROM tr_reservations WHERE sid = ?)",
                      "is", now, res);
    if (!err)
        err = ev_task_event(e, wrap ? "task.wrapup" : "task.completed", sid, res, reason, -1, now);
    if (!err && res)
        err = ev_task_event(e, wrap ? "reservation.wrapup" : "reservation.completed", sid, res,
                            NULL, -1, now);
    free(res);
out:
    json_decref(task);
    return err;
}

tassa_err tr_worker_move_locked(tr_engine_t *e, const char *worker_sid, const char *activity_sid,
                                bool rescind, int64_t now)
{
    json_t *old = tr_load_worker(e, worker_sid);
    json_t *act = tr_load_activity(e, activity_sid);
    json_t *cur = NULL, *pending = NULL;
    tassa_err err = TASSA_ESTORE;
    if (!old || !act)
        goto out;
    err = TASSA_OK;
    if (!strcmp(row_str(old, "activity_sid"), activity_sid))
        goto out;
    bool was = row_int(old, "available"), is = row_int(act, "available");
    err = db_exec(e->store,
                  "UPDATE tr_workers SET activity_sid = ?, date_status_changed = ?,"
                  " date_updated = ?, idle_since = CASE WHEN ? THEN ? ELSE idle_since END"
                  " WHERE sid = ?",
                  "siidis", activity_sid, now, now, (int)(is && !was), now, worker_sid);
    cur = err ? NULL : tr_load_worker(e, worker_sid);
    if (!err) {
        int64_t in_prev = now - row_int(old, "date_status_changed");
        json_t *ev = ev_new(e, "worker.activity.update", "Worker", worker_sid, NULL, now);
        ev_worker(ev, cur);
        ev_set(ev, "WorkerPreviousActivitySid", "%s", row_str(old, "activity_sid"));
        ev_set(ev, "WorkerPreviousActivityName", "%s",
               row_str(old, "activity_name") ? row_str(old, "activity_name") : "");
        ev_set(ev, "WorkerTimeInPreviousActivity", "%lld", (long long)(in_prev / 1000));
        ev_set(ev, "WorkerTimeInPreviousActivityMs", "%lld", (long long)in_prev);
        err = ev_emit(e, ev, -1);
    }
    if (!err && !is && rescind) {
        pending = db_all(e->store,
                         "SELECT sid FROM tr_reservations WHERE worker_sid = ? AND"
                         " status = 'pending'",
                         "s", worker_sid);
        for (size_t i = 0; !err && i < json_array_size(pending); i++)
            err = tr_reservation_end_locked(e, row_str(json_array_get(pending, i), "sid"),
                                            "rescinded", now);
    }
out:
    json_decref(old);
    json_decref(act);
    json_decref(cur);
    json_decref(pending);
    return err;
}

tassa_err tr_reservation_end_locked(tr_engine_t *e, const char *res_sid, const char *status,
                                    int64_t now)
{
    json_t *r = tr_load_reservation(e, res_sid);
    json_t *ws = NULL;
    tassa_err err = TASSA_ESTORE;
    char type[40];
    if (!r)
        goto out;
    err = TASSA_OK;
    if (strcmp(row_str(r, "status"), "pending"))
        goto out;
    const char *task = row_str(r, "task_sid"), *worker = row_str(r, "worker_sid");
    bool requeue = strcmp(status, "canceled") != 0;
    err = db_exec(e->store,
                  "UPDATE tr_reservations SET status = ?, deadline = NULL, date_updated = ?"
                  " WHERE sid = ?",
                  "sis", status, now, res_sid);
    if (!err && requeue)
        err = db_exec(e->store,
                      "UPDATE tr_tasks SET status = 'pending', date_updated = ?"
                      " WHERE sid = ? AND status = 'reserved'",
                      "is", now, task);
    snprintf(type, sizeof type, "reservation.%s", status);
    if (!err)
        err = ev_task_event(e, type, task, res_sid, NULL, -1, now);
    if (!err && !strcmp(status, "timeout")) {
        ws = tr_load_workspace(e);
        const char *act = row_str(ws, "timeout_activity_sid");
        if (act)
            err = tr_worker_move_locked(e, worker, act, false, now);
    }
out:
    json_decref(r);
    json_decref(ws);
    return err;
}

tassa_err tr_reservation_accept_locked(tr_engine_t *e, const json_t *r, const char *activity, int64_t now)
{
    const char *sid = row_str(r, "sid"), *task = row_str(r, "task_sid");
    json_t *t = tr_load_task(e, task);
    json_t *q = t && row_str(t, "queue_sid") ? tr_load_queue(e, row_str(t, "queue_sid")) : NULL;
    tassa_err err = t ? TASSA_OK : TASSA_ESTORE;
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_reservations SET status = 'accepted', deadline = NULL,"
                      " date_updated = ? WHERE sid = ?",
                      "is", now, sid);
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_tasks SET status = 'assigned', target_deadline = NULL,"
                      " ttl_deadline = NULL, date_updated = ? WHERE sid = ?",
                      "is", now, task);
    if (!err)
        err = ev_task_event(e, "reservation.accepted", task, sid, NULL,
                            now - row_int(t, "date_created"), now);
    if (!activity && q)
        activity = row_str(q, "assignment_activity_sid");
    if (!err && activity)
        err = tr_worker_move_locked(e, row_str(r, "worker_sid"), activity, false, now);
    json_decref(t);
    json_decref(q);
    return err;
}
