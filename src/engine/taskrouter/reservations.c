/* reservations.c - reservations: the offer of a task to a worker and its answers (accept,
 * reject, wrap up, complete), its timeout, cancellation and rescission.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/internal.h"

#include <stdio.h>
#include <string.h>

#include "engine/taskrouter/model.h"

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

/* Accepts a pending reservation: the task is assigned, the queue's AssignmentActivitySid (or
 * the caller's WorkerActivitySid) moves the worker. */
static tassa_err accept(tr_engine_t *e, const json_t *r, const char *activity, int64_t now)
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

/* Loads reservation sid when it belongs to the task or worker given. */
static json_t *load_scoped(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                           const char *sid)
{
    json_t *r = tr_load_reservation(e, sid);
    if (r && ((task_sid && strcmp(task_sid, row_str(r, "task_sid"))) ||
              (worker_sid && strcmp(worker_sid, row_str(r, "worker_sid"))))) {
        json_decref(r);
        r = NULL;
    }
    return r;
}

/* The 404 of a reservation under its task or worker. */
static tassa_err res_not_found(tr_engine_t *e, errmsg_t *em, const char *task_sid,
                               const char *worker_sid, const char *sid)
{
    char what[96];
    snprintf(what, sizeof what, "%s/%.34s/Reservations", task_sid ? "Tasks" : "Workers",
             task_sid ? task_sid : worker_sid);
    return tr_not_found(e, em, what, sid);
}

tassa_err tr_reservation_fetch(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                               const char *sid, const char *base_url, json_t **out, errmsg_t *em)
{
    *out = NULL;
    store_lock(e->store);
    json_t *r = load_scoped(e, task_sid, worker_sid, sid);
    store_unlock(e->store);
    if (!r)
        return res_not_found(e, em, task_sid, worker_sid, sid);
    *out = tr_json_reservation(e, r, base_url, task_sid == NULL);
    json_decref(r);
    return *out ? TASSA_OK : TASSA_ENOMEM;
}

tassa_err tr_reservation_update(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                                const char *sid, const params_t *p, const char *base_url,
                                json_t **out, errmsg_t *em)
{
    const char *status = params_get_nonempty(p, "ReservationStatus");
    const char *activity = params_get_nonempty(p, "WorkerActivitySid");
    if (out)
        *out = NULL;
    if (status && strcmp(status, "accepted") && strcmp(status, "rejected") &&
        strcmp(status, "wrapping") && strcmp(status, "completed"))
        return err_set(em, TASSA_EINVAL,
                       "ReservationStatus must be accepted, rejected, wrapping or completed,"
                       " not %.32s",
                       status);
    int64_t now = store_now_ms();
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    json_t *r = load_scoped(e, task_sid, worker_sid, sid);
    const char *cur = r ? row_str(r, "status") : NULL;
    if (!r)
        err = res_not_found(e, em, task_sid, worker_sid, sid);
    else if (activity &&
             db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE sid = ?", "s", activity) != 1)
        err = err_set(em, TASSA_EINVAL,
                      "WorkerActivitySid %.64s is not an activity of this workspace", activity);
    else if (status && (!strcmp(status, "accepted") || !strcmp(status, "rejected")) &&
             strcmp(cur, "pending"))
        err = err_set(em, TASSA_EINVAL, "Reservation %s is %s, not pending; it cannot be %s", sid,
                      cur, status);
    else if (status && !strcmp(status, "wrapping") && strcmp(cur, "accepted") &&
             strcmp(cur, "wrapping"))
        err = err_set(em, TASSA_EINVAL, "Reservation %s is %s; only an accepted one can wrap up",
                      sid, cur);
    else if (status && !strcmp(status, "completed") && strcmp(cur, "accepted") &&
             strcmp(cur, "wrapping") && strcmp(cur, "completed"))
        err = err_set(em, TASSA_EINVAL,
                      "Reservation %s is %s; only an accepted one can be completed", sid, cur);
    if (!err && status) {
        if (!strcmp(status, "accepted")) {
            err = accept(e, r, activity, now);
            activity = NULL;
        } else if (!strcmp(status, "rejected")) {
            err = tr_reservation_end_locked(e, sid, "rejected", now);
        } else {
            err = tr_task_finish_locked(e, row_str(r, "task_sid"), status, NULL, now, em);
        }
    }
    if (!err && activity)
        err = tr_worker_move_locked(e, row_str(r, "worker_sid"), activity, false, now);
    if (!err)
        err = tr_match_locked(e, now);
    json_decref(r);
    r = NULL;
    if (!err && out) {
        r = tr_load_reservation(e, sid);
        if (!r || !(*out = tr_json_reservation(e, r, base_url, task_sid == NULL)))
            err = TASSA_ENOMEM;
    }
    json_decref(r);
    err = tr_txn_end_out(e, err, out);
    return err;
}

typedef struct {
    tr_engine_t *e;
    const char *base, *status, *worker;
    bool by_worker;
} rlist_t;

/* Reservations list filters: ReservationStatus, WorkerSid. */
static bool res_pred(void *ctx, const json_t *row)
{
    rlist_t *c = ctx;
    if (c->status && strcmp(c->status, row_str(row, "status")))
        return false;
    return !c->worker || !strcmp(c->worker, row_str(row, "worker_sid"));
}

/* Renders a reservation row (tr_list). */
static json_t *res_render(void *ctx, const json_t *row)
{
    rlist_t *c = ctx;
    return tr_json_reservation(c->e, row, c->base, c->by_worker);
}

tassa_err tr_reservation_list(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                              const params_t *filter, long offset, long limit, const char *base_url,
                              json_t **items, bool *more, errmsg_t *em)
{
    rlist_t c = {e, base_url, params_get(filter, "ReservationStatus"),
                 params_get(filter, "WorkerSid"), task_sid == NULL};
    *items = NULL;
    store_lock(e->store);
    int64_t found =
        task_sid ? db_int(e->store, 0, "SELECT 1 FROM tr_tasks WHERE sid = ?", "s", task_sid)
                 : db_int(e->store, 0, "SELECT 1 FROM tr_workers WHERE sid = ?", "s", worker_sid);
    store_unlock(e->store);
    if (found != 1)
        return tr_not_found(e, em, task_sid ? "Tasks" : "Workers",
                            task_sid ? task_sid : worker_sid);
    if (task_sid)
        return tr_list(e, res_pred, res_render, &c, offset, limit, items, more,
                       TR_RES_SELECT "WHERE r.task_sid = ? ORDER BY r.seq", "s", task_sid);
    return tr_list(e, res_pred, res_render, &c, offset, limit, items, more,
                   TR_RES_SELECT "WHERE r.worker_sid = ? ORDER BY r.seq", "s", worker_sid);
}
