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

/* A reservation as Twilio's JSON, its url under the worker (by_worker) or the task. New
 * reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_reservation_t *r, const char *base, bool by_worker)
{
    const char *sid = r->sid, *task = r->task_sid;
    const char *worker = r->worker_sid;
    json_t *j = tr_json_new(e, r->sid);
    if (!j)
        return NULL;
    json_object_set_new(j, "reservation_status", tr_jstr(r->status));
    json_object_set_new(j, "task_sid", tr_jstr(r->task_sid));
    json_object_set_new(j, "worker_sid", tr_jstr(r->worker_sid));
    json_object_set_new(j, "worker_name", tr_jstr(r->worker_name));
    json_object_set_new(j, "date_created", tr_jdate(r->date_created));
    json_object_set_new(j, "date_updated", tr_jdate(r->date_updated));
    json_object_set_new(j, "url",
                        by_worker ? tr_url(e, base, "/Workers/%s/Reservations/%s", worker, sid)
                                  : tr_url(e, base, "/Tasks/%s/Reservations/%s", task, sid));
    json_object_set_new(j, "links",
                        json_pack("{s:o, s:o, s:o}", "task", tr_url(e, base, "/Tasks/%s", task),
                                  "worker", tr_url(e, base, "/Workers/%s", worker), "workspace",
                                  tr_url(e, base, "%s", "")));
    return j;
}

typedef struct {
    tr_engine_t *e;
    const char *base, *status, *worker;
    bool by_worker;
} rlist_t;

/* Renders a reservation row (tr_list). */
static json_t *res_render(void *ctx, const void *row)
{
    rlist_t *c = ctx;
    return to_json(c->e, row, c->base, c->by_worker);
}

/* Loads reservation sid when it belongs to the task or worker given. */
static bool load_scoped(tr_engine_t *e, const char *task_sid, const char *worker_sid,
                        const char *sid, tr_reservation_t *r)
{
    if (!tr_reservation_load(e, sid, r))
        return false;
    if ((task_sid && strcmp(task_sid, r->task_sid)) ||
        (worker_sid && strcmp(worker_sid, r->worker_sid))) {
        rows_clear(&TR_RES_ROW, r);
        return false;
    }
    return true;
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
    tr_reservation_t r = {0};
    bool found = load_scoped(e, task_sid, worker_sid, sid, &r);
    store_unlock(e->store);
    if (!found)
        return res_not_found(e, em, task_sid, worker_sid, sid);
    *out = to_json(e, &r, base_url, task_sid == NULL);
    rows_clear(&TR_RES_ROW, &r);
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
    int64_t now = tr_now_ms(e);
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    tr_reservation_t r = {0};
    bool found = load_scoped(e, task_sid, worker_sid, sid, &r);
    const char *cur = r.status;
    if (!found)
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
            err = tr_reservation_accept_locked(e, &r, activity, now);
            activity = NULL;
        } else if (!strcmp(status, "rejected")) {
            err = tr_reservation_end_locked(e, sid, "rejected", now);
        } else {
            err = tr_task_finish_locked(e, r.task_sid, status, NULL, now, em);
        }
    }
    if (!err && activity)
        err = tr_worker_move_locked(e, r.worker_sid, activity, false, now);
    if (!err)
        err = tr_match_locked(e, now);
    if (!err)
        err = tr_render_locked(e, &TR_RES_ROW, res_render,
                               &(rlist_t){.e = e, .base = base_url, .by_worker = !task_sid},
                               sizeof(rlist_t), sid, out);
    rows_clear(&TR_RES_ROW, &r);
    return tr_txn_end_out(e, err, out);
}

/* Reservations list filters: ReservationStatus, WorkerSid. */
static bool res_pred(void *ctx, const void *r)
{
    const tr_reservation_t *row = r;
    rlist_t *c = ctx;
    if (c->status && strcmp(c->status, row->status))
        return false;
    return !c->worker || !strcmp(c->worker, row->worker_sid);
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
    tassa_err missing = found == 1 ? TASSA_OK
                                   : tr_missing_locked(e, em, task_sid ? "Tasks" : "Workers",
                                                       task_sid ? task_sid : worker_sid);
    store_unlock(e->store);
    if (missing)
        return missing;
    if (task_sid)
        return tr_list(e, &TR_RES_ROW, res_pred, res_render, &c, offset, limit, items, more,
                       TR_RES_SELECT "WHERE r.task_sid = ? ORDER BY r.seq", "s", task_sid);
    return tr_list(e, &TR_RES_ROW, res_pred, res_render, &c, offset, limit, items, more,
                   TR_RES_SELECT "WHERE r.worker_sid = ? ORDER BY r.seq", "s", worker_sid);
}
