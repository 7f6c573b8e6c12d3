/* activities.c - activities: create, fetch, update, delete, list, and their JSON.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/model.h"

#include <string.h>

#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"

/* Renders with the base URL passed as ctx (for tr_list). */
typedef struct {
    tr_engine_t *e;
    const char *base;
    const params_t *filter;
    int available; /* -1: any */
} list_ctx_t;

json_t *tr_json_activity(tr_engine_t *e, const json_t *r, const char *base)
{
    const char *sid = row_str(r, "sid");
    json_t *j = tr_json_new(e);
    if (!j)
        return NULL;
    json_object_set_new(j, "sid", row_jstr(r, "sid"));
    json_object_set_new(j, "friendly_name", row_jstr(r, "friendly_name"));
    json_object_set_new(j, "available", json_boolean(row_int(r, "available")));
    json_object_set_new(j, "date_created", row_jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", row_jdate(r, "date_updated"));
    json_object_set_new(j, "url", tr_url(e, base, "/Activities/%s", sid));
    json_object_set_new(j, "links", json_pack("{s:o}", "workspace", tr_url(e, base, "%s", "")));
    return j;
}

/* Activities ---------------------------------------------------------------------------- */

/* Renders an activity row (tr_list). */
static json_t *render_activity(void *ctx, const json_t *row)
{
    list_ctx_t *c = ctx;
    return tr_json_activity(c->e, row, c->base);
}

tassa_err tr_activity_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                             errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    int available = 0;
    char sid[SID_LEN + 1];
    if (out)
        *out = NULL;
    tassa_err err = tr_check_name(name, "FriendlyName", em);
    if (!err)
        err = tr_read_bool(p, "Available", &available, em);
    if (!err)
        err = sid_new("WA", sid);
    if (err)
        return err;
    int64_t now = store_now_ms();
    err = tr_txn_begin(e);
    if (err)
        return err;
    if (db_int(e->store, 0, "SELECT count(*) FROM tr_activities", NULL) >= TR_MAX_ACTIVITIES)
        err =
            err_set(em, TASSA_ELIMIT, "A workspace holds at most %d activities", TR_MAX_ACTIVITIES);
    else if (db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE friendly_name = ?", "s",
                    name) == 1)
        err = err_set(em, TASSA_ECONFLICT, "An Activity named '%s' already exists", name);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_activities (sid, friendly_name, available, date_created,"
                      " date_updated) VALUES (?, ?, ?, ?, ?)",
                      "ssdii", sid, name, available, now, now);
    json_t *row = err ? NULL : tr_load_activity(e, sid);
    if (!err) {
        json_t *ev = ev_new(e, "activity.created", "Activity", sid, NULL, now);
        ev_set(ev, "ActivitySid", "%s", sid);
        ev_set(ev, "ActivityName", "%s", name);
        ev_set(ev, "ActivityAvailable", "%s", available ? "true" : "false");
        err = ev_emit(e, ev, -1);
    }
    if (!err && out && !(*out = tr_json_activity(e, row, base_url)))
        err = TASSA_ENOMEM;
    json_decref(row);
    err = tr_txn_end_out(e, err, out);
    return err;
}

tassa_err tr_activity_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                            errmsg_t *em)
{
    return tr_fetch_row(e, tr_load_activity, tr_json_activity, "Activities", sid, base_url, out,
                        em);
}

tassa_err tr_activity_update(tr_engine_t *e, const char *sid, const params_t *p,
                             const char *base_url, json_t **out, errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    if (out)
        *out = NULL;
    tassa_err err = name ? tr_check_name(name, "FriendlyName", em) : TASSA_OK;
    if (err)
        return err;
    int64_t now = store_now_ms();
    err = tr_txn_begin(e);
    if (err)
        return err;
    json_t *row = tr_load_activity(e, sid);
    if (!row)
        err = tr_not_found(e, em, "Activities", sid);
    else if (name &&
             db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE friendly_name = ? AND sid != ?",
                    "ss", name, sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "An Activity named '%s' already exists", name);
    if (!err && name)
        err = db_exec(e->store,
                      "UPDATE tr_activities SET friendly_name = ?, date_updated = ? WHERE sid = ?",
                      "sis", name, now, sid);
    json_decref(row);
    row = err ? NULL : tr_load_activity(e, sid);
    if (!err && name)
        err = ev_emit(e, ev_new(e, "activity.updated", "Activity", sid, NULL, now), -1);
    if (!err && out && !(*out = tr_json_activity(e, row, base_url)))
        err = TASSA_ENOMEM;
    json_decref(row);
    err = tr_txn_end_out(e, err, out);
    return err;
}

tassa_err tr_activity_delete(tr_engine_t *e, const char *sid, errmsg_t *em)
{
    int64_t now = store_now_ms();
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    json_t *row = tr_load_activity(e, sid);
    if (!row)
        err = tr_not_found(e, em, "Activities", sid);
    else if (db_int(e->store, 0, "SELECT 1 FROM tr_workers WHERE activity_sid = ? LIMIT 1", "s",
                    sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "Activity %s is in use by workers", sid);
    else if (db_int(e->store, 0,
                    "SELECT 1 FROM tr_workspace WHERE default_activity_sid = ?1"
                    " OR timeout_activity_sid = ?1",
                    "s", sid) == 1)
        err = err_set(em, TASSA_ECONFLICT,
                      "Activity %s is the workspace's default or timeout activity", sid);
    else if (db_int(e->store, 0,
                    "SELECT 1 FROM tr_queues WHERE reservation_activity_sid = ?1"
                    " OR assignment_activity_sid = ?1 LIMIT 1",
                    "s", sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "Activity %s is in use by task queues", sid);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_activities WHERE sid = ?", "s", sid);
    if (!err)
        err = ev_emit(e, ev_new(e, "activity.deleted", "Activity", sid, NULL, now), -1);
    json_decref(row);
    return tr_txn_end(e, err);
}

/* Activities list filter: FriendlyName and Available. */
static bool activity_pred(void *ctx, const json_t *row)
{
    list_ctx_t *c = ctx;
    const char *name = params_get(c->filter, "FriendlyName");
    if (name && strcmp(name, row_str(row, "friendly_name")))
        return false;
    return c->available < 0 || c->available == (int)row_int(row, "available");
}

tassa_err tr_activity_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                           const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    list_ctx_t c = {e, base_url, filter, -1};
    *items = NULL;
    tassa_err err = tr_read_bool(filter, "Available", &c.available, em);
    if (err)
        return err;
    return tr_list(e, activity_pred, render_activity, &c, offset, limit, items, more,
                   "SELECT * FROM tr_activities ORDER BY seq", NULL);
}
