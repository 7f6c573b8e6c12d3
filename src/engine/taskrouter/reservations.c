/* reservations.c - reservations: the offer of a task to a worker and its answers (accept,
 * reject, wrap up, complete); fetch, update, list, and their JSON.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/model.h"

#include <stdio.h>
#include <string.h>

#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/lifecycle.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"

json_t *tr_json_reservation(tr_engine_t *e, const json_t *r, const char *base, bool by_worker)
{
    const char *sid = row_str(r, "sid"), *task = row_str(r, "task_sid");
    const char *worker = row_str(r, "worker_sid");
    json_t *j = tr_json_new(e);
    if (!j)
        return NULL;
    json_object_set_new(j, "sid", row_jstr(r, "sid"));
    json_object_set_new(j, "reservation_status", row_jstr(r, "status"));
    json_object_set_new(j, "task_sid", row_jstr(r, "task_sid"));
    json_object_set_new(j, "worker_sid", row_jstr(r, "worker_sid"));
    json_object_set_new(j, "worker_name", row_jstr(r, "worker_name"));
    json_object_set_new(j, "date_created", row_jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", row_jdate(r, "date_updated"));
    json_object_set_new(j, "url",
                        by_worker ? tr_url(e, base, "/Workers/%s/Reservations/%s", worker, sid)
                                  : tr_url(e, base, "/Tasks/%s/Reservations/%s", task, sid));
    json_object_set_new(j, "links",
                        json_pack("{s:o, s:o, s:o}", "task", tr_url(e, base, "/Tasks/%s", task),
                                  "worker", tr_url(e, base, "/Workers/%s", worker), "workspace",
                                  tr_url(e, base, "%s", "")));
    return j;
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
            err = tr_reservation_accept_locked(e, r, activity, now);
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
