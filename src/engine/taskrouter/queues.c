/* queues.c - task queues: TargetWorkers expressions, order, activities on reservation and
 * assignment; create, update, delete, list, and their JSON.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/model.h"

#include <string.h>

#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/lifecycle.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"

/* A task queue as Twilio's JSON. New reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_queue_t *r, const char *base)
{
    const char *sid = r->sid;
    json_t *j = tr_json_new(e, sid);
    if (!j)
        return NULL;
    json_object_set_new(j, "friendly_name", tr_jstr(r->friendly_name));
    json_object_set_new(j, "target_workers", tr_jstr(r->target_workers));
    json_object_set_new(j, "task_order", tr_jstr(r->task_order));
    json_object_set_new(j, "max_reserved_workers", json_integer(r->max_reserved_workers));
    json_object_set_new(j, "reservation_activity_sid", tr_jstr(r->reservation_activity_sid));
    json_object_set_new(j, "reservation_activity_name", tr_jstr(r->reservation_activity_name));
    json_object_set_new(j, "assignment_activity_sid", tr_jstr(r->assignment_activity_sid));
    json_object_set_new(j, "assignment_activity_name", tr_jstr(r->assignment_activity_name));
    json_object_set_new(j, "date_created", tr_jdate(r->date_created));
    json_object_set_new(j, "date_updated", tr_jdate(r->date_updated));
    json_object_set_new(j, "url", tr_url(e, base, "/TaskQueues/%s", sid));
    json_t *links = json_pack(
        "{s:o, s:o, s:o, s:o, s:o}", "workspace", tr_url(e, base, "%s", ""), "statistics",
        tr_url(e, base, "/TaskQueues/%s/Statistics", sid), "real_time_statistics",
        tr_url(e, base, "/TaskQueues/%s/RealTimeStatistics", sid), "cumulative_statistics",
        tr_url(e, base, "/TaskQueues/%s/CumulativeStatistics", sid), "list_statistics",
        tr_url(e, base, "/TaskQueues/Statistics"));
    if (links && r->assignment_activity_sid)
        json_object_set_new(links, "assignment_activity",
                            tr_url(e, base, "/Activities/%s", r->assignment_activity_sid));
    if (links && r->reservation_activity_sid)
        json_object_set_new(links, "reservation_activity",
                            tr_url(e, base, "/Activities/%s", r->reservation_activity_sid));
    json_object_set_new(j, "links", links);
    return j;
}

/* Checks the queue parameters that create and update share. */
static tassa_err check_params(const params_t *p, long *max_reserved, errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    const char *target = params_get(p, "TargetWorkers");
    const char *order = params_get(p, "TaskOrder");
    tassa_err err = name ? tr_check_name(name, "FriendlyName", em) : TASSA_OK;
    if (!err && target) {
        errmsg_t xm = {{0}};
        expr_t *x = expr_parse(target, &xm);
        if (!x)
            err = err_set(em, TASSA_EEXPR, "TargetWorkers: %s", xm.text);
        expr_free(x);
    }
    if (!err && order && strcmp(order, "FIFO") && strcmp(order, "LIFO"))
        err = err_set(em, TASSA_EINVAL, "TaskOrder must be FIFO or LIFO");
    if (!err)
        err = tr_read_long(p, "MaxReservedWorkers", 1, 50, max_reserved, em);
    return err;
}

/* Checks activity parameters against the table (lock held). */
static tassa_err check_activities(tr_engine_t *e, const params_t *p, errmsg_t *em)
{
    static const char *const names[] = {"ReservationActivitySid", "AssignmentActivitySid"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = params_get_nonempty(p, names[i]);
        if (v && db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE sid = ?", "s", v) != 1)
            return err_set(em, TASSA_EINVAL, "%s %.64s is not an activity of this workspace",
                           names[i], v);
    }
    return TASSA_OK;
}

typedef struct {
    tr_engine_t *e;
    const char *base;
    const char *name;
    json_t *subject; /* EvaluateWorkerAttributes or WorkerSid's worker; NULL for none */
} qlist_t;

/* Renders a queue row (tr_list, tr_fetch). */
static json_t *queue_render(void *ctx, const void *row)
{
    qlist_t *c = ctx;
    return to_json(c->e, row, c->base);
}

/* True when a workflow's configuration names sid (store lock held). Searched in C rather than
 * with a database string function, so the SQL is portable; workflows are few, and this runs
 * only when a queue is deleted. */
static bool workflow_names(tr_engine_t *e, const char *sid)
{
    store_stmt_t *st = db_query(e->store, "SELECT configuration FROM tr_workflows", "");
    bool found = false;
    while (st && !found && store_step(st) == STORE_ROW) {
        const char *conf = store_col_text(st, 0);
        found = conf && strstr(conf, sid);
    }
    store_release(e->store, st);
    return found;
}

/* Renders the queue sid (lock held) into *out when out is not NULL. */
static tassa_err render(tr_engine_t *e, const char *sid, const char *base_url, json_t **out)
{
    return tr_render_locked(e, &TR_QUEUE_ROW, queue_render, &(qlist_t){.e = e, .base = base_url},
                            sizeof(qlist_t), sid, out);
}

tassa_err tr_queue_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                          errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    const char *target = params_get_nonempty(p, "TargetWorkers");
    const char *order = params_get_nonempty(p, "TaskOrder");
    long max_reserved = 1;
    char sid[SID_LEN + 1];
    if (out)
        *out = NULL;
    tassa_err err = tr_check_name(name, "FriendlyName", em);
    if (!err)
        err = check_params(p, &max_reserved, em);
    if (!err)
        err = sid_new("WQ", sid);
    if (err)
        return err;
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    if (db_int(e->store, 0, "SELECT count(*) FROM tr_queues", NULL) >= TR_MAX_QUEUES)
        err = err_set(em, TASSA_ELIMIT, "A workspace holds at most %d task queues", TR_MAX_QUEUES);
    else if (db_int(e->store, 0, "SELECT 1 FROM tr_queues WHERE friendly_name = ?", "s", name) == 1)
        err = err_set(em, TASSA_ECONFLICT, "A TaskQueue named '%s' already exists", name);
    if (!err)
        err = check_activities(e, p, em);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_queues (sid, friendly_name, target_workers, task_order,"
                      " reservation_activity_sid, assignment_activity_sid, max_reserved_workers,"
                      " date_created, date_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      "ssssssiii", sid, name, target ? target : "1==1", order ? order : "FIFO",
                      params_get_nonempty(p, "ReservationActivitySid"),
                      params_get_nonempty(p, "AssignmentActivitySid"), (int64_t)max_reserved, now,
                      now);
    if (!err)
        err = ev_resource_event(e, "task-queue.created", "TaskQueue", sid, now);
    if (!err)
        err = tr_members_queue_locked(e, sid);
    if (!err)
        err = render(e, sid, base_url, out);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_queue_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                         errmsg_t *em)
{
    return tr_fetch(e, &TR_QUEUE_ROW, queue_render, &(qlist_t){.e = e, .base = base_url},
                    "TaskQueues", sid, out, em);
}

tassa_err tr_queue_update(tr_engine_t *e, const char *sid, const params_t *p, const char *base_url,
                          json_t **out, errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    const char *target = params_get_nonempty(p, "TargetWorkers");
    long max_reserved = -1;
    if (out)
        *out = NULL;
    tassa_err err = check_params(p, &max_reserved, em);
    if (err)
        return err;
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    tr_queue_t row = {0};
    if (!tr_queue_load(e, sid, &row))
        err = tr_not_found(e, em, "TaskQueues", sid);
    else if (name &&
             db_int(e->store, 0, "SELECT 1 FROM tr_queues WHERE friendly_name = ? AND sid != ?",
                    "ss", name, sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "A TaskQueue named '%s' already exists", name);
    if (!err)
        err = check_activities(e, p, em);
    const char *ra = params_get(p, "ReservationActivitySid");
    const char *aa = params_get(p, "AssignmentActivitySid");
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_queues SET friendly_name = COALESCE(?, friendly_name),"
                      " target_workers = COALESCE(?, target_workers),"
                      " task_order = COALESCE(?, task_order),"
                      " reservation_activity_sid = CASE WHEN CAST(? AS TEXT) IS NULL THEN"
                      "  reservation_activity_sid ELSE NULLIF(?, '') END,"
                      " assignment_activity_sid = CASE WHEN CAST(? AS TEXT) IS NULL THEN"
                      "  assignment_activity_sid ELSE NULLIF(?, '') END,"
                      " max_reserved_workers = CASE WHEN ? < 0 THEN max_reserved_workers"
                      "  ELSE ? END, date_updated = ? WHERE sid = ?",
                      "sssssssiiis", name, target, params_get_nonempty(p, "TaskOrder"), ra, ra, aa,
                      aa, (int64_t)max_reserved, (int64_t)max_reserved, now, sid);
    if (!err && target && strcmp(target, row.target_workers)) {
        err = ev_resource_event(e, "task-queue.expression.updated", "TaskQueue", sid, now);
        if (!err)
            err = tr_members_queue_locked(e, sid);
    }
    if (!err)
        err = tr_match_locked(e, now);
    if (!err)
        err = render(e, sid, base_url, out);
    rows_clear(&TR_QUEUE_ROW, &row);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_queue_delete(tr_engine_t *e, const char *sid, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    tassa_err err = tr_txn_begin_row(e, "tr_queues", "TaskQueues", sid, em);
    if (err)
        return err;
    if (db_int(e->store, 0,
               "SELECT 1 FROM tr_tasks WHERE queue_sid = ? AND"
               " status IN " TR_TASK_OPEN_SQL " LIMIT 1",
               "s", sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "TaskQueue %s holds unfinished tasks", sid);
    else if (workflow_names(e, sid))
        err = err_set(em, TASSA_ECONFLICT, "TaskQueue %s is a target of a workflow", sid);
    if (!err)
        err = ev_resource_event(e, "task-queue.deleted", "TaskQueue", sid, now);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_queues WHERE sid = ?", "s", sid);
    if (!err)
        err = tr_members_queue_locked(e, sid);
    return tr_txn_end(e, err);
}

/* Queues list filters. */
static bool queue_pred(void *ctx, const void *r)
{
    const tr_queue_t *row = r;
    qlist_t *c = ctx;
    if (c->name && strcmp(c->name, row->friendly_name))
        return false;
    if (!c->subject)
        return true;
    expr_t *x = expr_parse(row->target_workers, NULL);
    bool ok = x && tr_worker_in_queue(c->subject, x);
    expr_free(x);
    return ok;
}

tassa_err tr_queue_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                        const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    qlist_t c = {e, base_url, params_get(filter, "FriendlyName"), NULL};
    const char *attrs = params_get(filter, "EvaluateWorkerAttributes");
    const char *worker = params_get(filter, "WorkerSid");
    tassa_err err = TASSA_OK;
    *items = NULL;
    if (attrs) {
        err = tr_check_attributes(attrs, "EvaluateWorkerAttributes", em);
        if (!err)
            c.subject = tr_parse_attributes(attrs);
    } else if (worker) {
        store_lock(e->store);
        tr_worker_t w = {0};
        bool found = tr_worker_load(e, worker, &w);
        store_unlock(e->store);
        if (!found)
            err = err_set(em, TASSA_EINVAL, "WorkerSid %.64s is not a worker", worker);
        else
            c.subject = tr_worker_subject(&w);
        rows_clear(&TR_WORKER_ROW, &w);
    }
    if (!err)
        err = tr_list(e, &TR_QUEUE_ROW, queue_pred, queue_render, &c, offset, limit, items, more,
                      TR_QUEUE_SELECT "ORDER BY q.seq", NULL);
    json_decref(c.subject);
    return err;
}

tassa_err tr_queues_json(tr_engine_t *e, const char *base_url, json_t **array)
{
    bool more;
    return tr_queue_list(e, NULL, 0, TR_MAX_QUEUES + 1L, base_url, array, &more, NULL);
}
