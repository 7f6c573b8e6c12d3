/* workers.c - workers: create, update (activity, attributes, name), delete, list, and their
 * JSON.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/model.h"

#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/lifecycle.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"

/* A worker as Twilio's JSON. New reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_worker_t *r, const char *base)
{
    const char *sid = r->sid;
    json_t *j = tr_json_new(e, sid);
    if (!j)
        return NULL;
    json_object_set_new(j, "friendly_name", tr_jstr(r->friendly_name));
    json_object_set_new(j, "activity_sid", tr_jstr(r->activity_sid));
    json_object_set_new(j, "activity_name", tr_jstr(r->activity_name));
    json_object_set_new(j, "attributes", tr_jstr(r->attributes));
    json_object_set_new(j, "available", json_boolean(r->available));
    json_object_set_new(j, "date_created", tr_jdate(r->date_created));
    json_object_set_new(j, "date_updated", tr_jdate(r->date_updated));
    json_object_set_new(j, "date_status_changed", tr_jdate(r->date_status_changed));
    json_object_set_new(j, "url", tr_url(e, base, "/Workers/%s", sid));
    json_object_set_new(j, "links",
                        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "channels",
                                  tr_url(e, base, "/Workers/%s/Channels", sid), "reservations",
                                  tr_url(e, base, "/Workers/%s/Reservations", sid), "statistics",
                                  tr_url(e, base, "/Workers/%s/Statistics", sid), "activity",
                                  tr_url(e, base, "/Activities/%s", r->activity_sid), "workspace",
                                  tr_url(e, base, "%s", ""), "worker_statistics",
                                  tr_url(e, base, "/Workers/%s/Statistics", sid)));
    return j;
}

typedef struct {
    tr_engine_t *e;
    const char *base;
    const params_t *f;
    int available;
    expr_t *target; /* TargetWorkersExpression */
    expr_t *queue;  /* TargetWorkers of TaskQueueSid / TaskQueueName */
} wlist_t;

/* Renders a worker row (tr_list, tr_fetch). */
static json_t *worker_render(void *ctx, const void *row)
{
    wlist_t *c = ctx;
    return to_json(c->e, row, c->base);
}

/* Renders the worker sid with the lock held into *out (when out is not NULL). */
static tassa_err render(tr_engine_t *e, const char *sid, const char *base_url, json_t **out)
{
    return tr_render_locked(e, &TR_WORKER_ROW, worker_render, &(wlist_t){.e = e, .base = base_url},
                            sizeof(wlist_t), sid, out);
}

tassa_err tr_worker_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                           errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    const char *attrs = params_get(p, "Attributes");
    const char *act = params_get_nonempty(p, "ActivitySid");
    char sid[SID_LEN + 1];
    tr_workspace_t ws = {0};
    if (out)
        *out = NULL;
    if (!attrs || !*attrs)
        attrs = "{}";
    tassa_err err = tr_check_name(name, "FriendlyName", em);
    if (!err)
        err = tr_check_attributes(attrs, "Attributes", em);
    if (!err)
        err = sid_new("WK", sid);
    if (err)
        return err;
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    if (!act && tr_workspace_load(e, &ws))
        act = ws.default_activity_sid;
    if (tr_count_get(e, "workers") >= TR_MAX_WORKERS)
        err = err_set(em, TASSA_ELIMIT, "A workspace holds at most %d workers", TR_MAX_WORKERS);
    else if (db_int(e->store, 0, "SELECT 1 FROM tr_workers WHERE friendly_name = ?", "s", name) ==
             1)
        err = err_set(em, TASSA_ECONFLICT, "A Worker named '%s' already exists", name);
    else if (!act ||
             db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE sid = ?", "s", act) != 1)
        err = err_set(em, TASSA_EINVAL, "ActivitySid %.64s is not an activity of this workspace",
                      act ? act : "");
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_workers (sid, friendly_name, attributes, activity_sid,"
                      " date_created, date_updated, date_status_changed, idle_since)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      "ssssiiii", sid, name, attrs, act, now, now, now, now);
    if (!err)
        err = tr_count_add_locked(e, "workers", 1);
    if (!err)
        err = ev_resource_event(e, "worker.created", "Worker", sid, now);
    if (!err)
        err = tr_members_worker_locked(e, sid);
    if (!err)
        err = tr_match_locked(e, now);
    if (!err)
        err = render(e, sid, base_url, out);
    rows_clear(&TR_WORKSPACE_ROW, &ws);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_worker_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                          errmsg_t *em)
{
    return tr_fetch(e, &TR_WORKER_ROW, worker_render, &(wlist_t){.e = e, .base = base_url},
                    "Workers", sid, out, em);
}

tassa_err tr_worker_update(tr_engine_t *e, const char *sid, const params_t *p, const char *base_url,
                           json_t **out, errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    const char *attrs = params_get(p, "Attributes");
    const char *act = params_get_nonempty(p, "ActivitySid");
    int reject = 0;
    if (out)
        *out = NULL;
    tassa_err err = name ? tr_check_name(name, "FriendlyName", em) : TASSA_OK;
    if (!err && attrs)
        err = tr_check_attributes(attrs, "Attributes", em);
    if (!err)
        err = tr_read_bool(p, "RejectPendingReservations", &reject, em);
    if (err)
        return err;
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    tr_worker_t row = {0};
    if (!tr_worker_load(e, sid, &row))
        err = tr_not_found(e, em, "Workers", sid);
    else if (name &&
             db_int(e->store, 0, "SELECT 1 FROM tr_workers WHERE friendly_name = ? AND sid != ?",
                    "ss", name, sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "A Worker named '%s' already exists", name);
    else if (act && db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE sid = ?", "s", act) != 1)
        err = err_set(em, TASSA_EINVAL, "ActivitySid %.64s is not an activity of this workspace",
                      act);
    if (!err && name)
        err = db_exec(e->store,
                      "UPDATE tr_workers SET friendly_name = ?, date_updated = ? WHERE sid = ?",
                      "sis", name, now, sid);
    if (!err && attrs && strcmp(attrs, row.attributes)) {
        err = db_exec(e->store,
                      "UPDATE tr_workers SET attributes = ?, date_updated = ? WHERE sid = ?", "sis",
                      attrs, now, sid);
        if (!err)
            err = ev_resource_event(e, "worker.attributes.update", "Worker", sid, now);
        if (!err)
            err = tr_members_worker_locked(e, sid);
    }
    if (!err && reject)
        err = tr_worker_end_pending_locked(e, sid, "rejected", now);
    if (!err && act)
        err = tr_worker_move_locked(e, sid, act, true, now);
    if (!err)
        err = tr_match_locked(e, now);
    if (!err)
        err = render(e, sid, base_url, out);
    rows_clear(&TR_WORKER_ROW, &row);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_worker_delete(tr_engine_t *e, const char *sid, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    tassa_err err = tr_txn_begin_row(e, "tr_workers", "Workers", sid, em);
    if (err)
        return err;
    if (db_int(e->store, 0,
               "SELECT 1 FROM tr_reservations WHERE worker_sid = ? AND"
               " status IN " TR_RES_ASSIGNED_SQL " LIMIT 1",
               "s", sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "Worker %s has active tasks; complete them first", sid);
    if (!err)
        err = tr_worker_end_pending_locked(e, sid, "rescinded", now);
    if (!err)
        err = ev_resource_event(e, "worker.deleted", "Worker", sid, now);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_workers WHERE sid = ?", "s", sid);
    if (!err)
        err = tr_count_add_locked(e, "workers", -store_changes(e->store));
    if (!err)
        err = tr_members_worker_locked(e, sid);
    if (!err)
        err = tr_match_locked(e, now);
    return tr_txn_end(e, err);
}

/* Workers list filters. */
static bool worker_pred(void *ctx, const void *r)
{
    const tr_worker_t *w = r;
    wlist_t *c = ctx;
    const char *v;
    if ((v = params_get(c->f, "ActivityName")) &&
        strcmp(v, w->activity_name ? w->activity_name : ""))
        return false;
    if ((v = params_get(c->f, "ActivitySid")) && strcmp(v, w->activity_sid))
        return false;
    if ((v = params_get(c->f, "FriendlyName")) && strcmp(v, w->friendly_name))
        return false;
    if (c->available >= 0 && c->available != (int)w->available)
        return false;
    if (!c->target && !c->queue)
        return true;
    json_t *subject = tr_worker_subject(w);
    bool ok = (!c->target || expr_eval(c->target, &(expr_ctx_t){.subject = subject})) &&
              (!c->queue || tr_worker_in_queue(subject, c->queue));
    json_decref(subject);
    return ok;
}

tassa_err tr_worker_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                         const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    wlist_t c = {e, base_url, filter, -1, NULL, NULL};
    const char *v;
    tassa_err err = TASSA_OK;
    *items = NULL;
    if ((v = params_get(filter, "Available"))) /* Twilio: true, 1 or yes; else not available */
        c.available = !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes");
    errmsg_t xm = {{0}};
    if ((v = params_get(filter, "TargetWorkersExpression")) && !(c.target = expr_parse(v, &xm)))
        err = err_set(em, TASSA_EEXPR, "TargetWorkersExpression: %s", xm.text);
    const char *qsid = params_get(filter, "TaskQueueSid");
    const char *qname = params_get(filter, "TaskQueueName");
    if (!err && (qsid || qname)) {
        tr_queue_t q = {0};
        store_lock(e->store);
        bool found = rows_one(e, &TR_QUEUE_ROW, &q,
                              TR_QUEUE_SELECT "WHERE q.sid = ? OR (CAST(? AS TEXT) IS NOT NULL AND"
                                              " q.friendly_name = ?)",
                              "sss", qsid ? qsid : "", qname, qname);
        store_unlock(e->store);
        if (!found)
            err = err_set(em, TASSA_EINVAL, "TaskQueue %.64s not found", qsid ? qsid : qname);
        else if (!(c.queue = expr_parse(q.target_workers, em)))
            err = TASSA_EEXPR;
        rows_clear(&TR_QUEUE_ROW, &q);
    }
    if (!err)
        err = tr_list(e, &TR_WORKER_ROW, worker_pred, worker_render, &c, offset, limit, items, more,
                      TR_WORKER_SELECT "ORDER BY w.seq", NULL);
    expr_free(c.target);
    expr_free(c.queue);
    return err;
}

tassa_err tr_workers_json(tr_engine_t *e, const char *base_url, json_t **array)
{
    bool more;
    return tr_worker_list(e, NULL, 0, TR_MAX_WORKERS + 1L, base_url, array, &more, NULL);
}

/* The SIDs of the activities whose name is one of names (n, compared case-insensitively),
 * comma-separated in *out (a buf_t the caller frees), lock held. */
static tassa_err activities_named(tr_engine_t *e, const char *const *names, size_t n, buf_t *out)
{
    store_stmt_t *st = db_query(e->store, "SELECT sid, friendly_name FROM tr_activities", NULL);
    int rc = st ? STORE_DONE : TASSA_ESTORE;
    while (st && (rc = store_step(st)) == STORE_ROW) {
        const char *sid = store_col_text(st, 0), *name = store_col_text(st, 1);
        for (size_t i = 0; sid && name && i < n; i++)
            if (!strcasecmp(name, names[i])) {
                buf_printf(out, "%s%s", out->len ? "," : "", sid);
                break;
            }
    }
    store_release(e->store, st);
    if (rc != STORE_DONE)
        return TASSA_ESTORE;
    return out->failed ? TASSA_ENOMEM : TASSA_OK;
}

/* The workers in the activities of a comma list of SIDs (?1), by the activity index: a SID
 * is hex, so LIKE matches it exactly. */
#define IN_ACTIVITIES                                                                              \
    " activity_sid IN (SELECT sid FROM tr_activities WHERE ',' || ?1 || ',' LIKE"                  \
    " '%,' || sid || ',%')"

tassa_err tr_workers_in_activities_json(tr_engine_t *e, const char *const *names, size_t n,
                                        long limit, const char *base_url, json_t **array,
                                        long *total)
{
    buf_t sids = BUF_INIT;
    void *rows = NULL;
    size_t nrows = 0;
    *array = NULL;
    *total = 0;
    store_lock(e->store);
    tassa_err err = activities_named(e, names, n, &sids);
    if (!err && sids.len) {
        int64_t count = db_int(e->store, -1, "SELECT COUNT(*) FROM tr_workers WHERE" IN_ACTIVITIES,
                               "s", buf_str(&sids));
        err = count < 0
                  ? TASSA_ESTORE
                  : rows_all(e, &TR_WORKER_ROW, &rows, &nrows,
                             TR_WORKER_SELECT "WHERE w." IN_ACTIVITIES " ORDER BY w.seq LIMIT ?2",
                             "si", buf_str(&sids), (int64_t)(limit < 0 ? 0 : limit));
        *total = count < 0 ? 0 : (long)count;
    }
    store_unlock(e->store);
    buf_free(&sids);
    if (!err && !(*array = json_array()))
        err = TASSA_ENOMEM;
    wlist_t c = {.e = e, .base = base_url};
    for (size_t i = 0; !err && i < nrows; i++) {
        json_t *j = worker_render(&c, (tr_worker_t *)rows + i);
        if (!j || json_array_append_new(*array, j))
            err = TASSA_ENOMEM;
    }
    rows_free(&TR_WORKER_ROW, rows, nrows);
    if (err) {
        json_decref(*array);
        *array = NULL;
        *total = 0;
    }
    return err;
}

/* A worker's one channel, "default" (the engine has one TaskChannel and capacity 1): its SID
 * is the worker's with the prefix WC, the TaskChannel's the workspace's with TC, so both are
 * stable without a table. */
tassa_err tr_worker_channel_list(tr_engine_t *e, const char *worker_sid, const char *base_url,
                                 json_t **items, errmsg_t *em)
{
    tr_worker_t w = {0};
    *items = NULL;
    store_lock(e->store);
    bool found = worker_sid && tr_worker_load(e, worker_sid, &w);
    int64_t assigned = found ? db_int(e->store, 0,
                                      "SELECT COUNT(*) FROM tr_reservations WHERE worker_sid = ?"
                                      " AND status IN " TR_RES_ASSIGNED_SQL,
                                      "s", worker_sid)
                             : 0;
    int64_t last = found ? db_int(e->store, -1,
                                  "SELECT MAX(date_created) FROM tr_reservations WHERE"
                                  " worker_sid = ?",
                                  "s", worker_sid)
                         : -1;
    tassa_err err = found ? TASSA_OK : tr_not_found(e, em, "Workers", worker_sid ? worker_sid : "");
    store_unlock(e->store);
    if (err) {
        rows_clear(&TR_WORKER_ROW, &w);
        return err;
    }
    char sid[SID_LEN + 1], tc[SID_LEN + 1];
    snprintf(sid, sizeof sid, "WC%s", w.sid + 2);
    snprintf(tc, sizeof tc, "TC%s", e->ws_sid + 2);
    long capacity = 1, used = assigned > capacity ? capacity : (long)assigned;
    json_t *j = tr_json_new(e, sid);
    if (j) {
        json_object_set_new(j, "worker_sid", json_string(w.sid));
        json_object_set_new(j, "task_channel_sid", json_string(tc));
        json_object_set_new(j, "task_channel_unique_name", json_string("default"));
        json_object_set_new(j, "configured_capacity", json_integer(capacity));
        json_object_set_new(j, "assigned_tasks", json_integer(assigned));
        json_object_set_new(j, "available", json_true());
        json_object_set_new(j, "available_capacity_percentage",
                            json_integer((capacity - used) * 100 / capacity));
        json_object_set_new(j, "last_reserved_time", tr_jdate(last));
        json_object_set_new(j, "date_created", tr_jdate(w.date_created));
        json_object_set_new(j, "date_updated", tr_jdate(w.date_updated));
        json_object_set_new(j, "url", tr_url(e, base_url, "/Workers/%s/Channels/%s", w.sid, sid));
    }
    rows_clear(&TR_WORKER_ROW, &w);
    if (j && !(*items = json_array()))
        json_decref(j);
    else if (j)
        json_array_append_new(*items, j);
    return *items ? TASSA_OK : TASSA_ENOMEM;
}
