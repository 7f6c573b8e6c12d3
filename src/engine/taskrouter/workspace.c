/* workspace.c - the workspace and its activities.
 *
 * Layer: engine. */
#include "engine/taskrouter/internal.h"

#include <string.h>

#include "engine/taskrouter/model.h"

/* Renders with the base URL passed as ctx (for tr_list). */
typedef struct {
    tr_engine_t *e;
    const char *base;
    const params_t *filter;
    int available; /* -1: any */
} list_ctx_t;

tassa_err tr_workspace_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                             errmsg_t *em)
{
    *out = NULL;
    if (strcmp(sid, e->ws_sid))
        return err_set(em, TASSA_ENOTFOUND,
                       "The requested resource /Workspaces/%.64s was not found", sid);
    store_lock(e->store);
    json_t *row = tr_load_workspace(e);
    store_unlock(e->store);
    if (!row)
        return TASSA_ESTORE;
    *out = tr_json_workspace(e, row, base_url);
    json_decref(row);
    return *out ? TASSA_OK : TASSA_ENOMEM;
}

/* Checks that an activity SID parameter names an existing activity (lock held). */
static tassa_err check_activity(tr_engine_t *e, const char *param, const char *sid, errmsg_t *em)
{
    if (!sid)
        return TASSA_OK;
    if (db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE sid = ?", "s", sid) != 1)
        return err_set(em, TASSA_EINVAL, "%s %.64s is not an activity of this workspace", param,
                       sid);
    return TASSA_OK;
}

tassa_err tr_workspace_update(tr_engine_t *e, const char *sid, const params_t *p,
                              const char *base_url, json_t **out, errmsg_t *em)
{
    if (out)
        *out = NULL;
    if (strcmp(sid, e->ws_sid))
        return err_set(em, TASSA_ENOTFOUND,
                       "The requested resource /Workspaces/%.64s was not found", sid);
    const char *name = params_get(p, "FriendlyName");
    const char *url = params_get(p, "EventCallbackUrl");
    const char *filter = params_get(p, "EventsFilter");
    const char *order = params_get(p, "PrioritizeQueueOrder");
    const char *def = params_get(p, "DefaultActivitySid");
    const char *tmo = params_get(p, "TimeoutActivitySid");
    int multi = 0;
    tassa_err err = TASSA_OK;
    if (name)
        err = tr_check_name(name, "FriendlyName", em);
    if (!err)
        err = tr_read_bool(p, "MultiTaskEnabled", &multi, em);
    if (!err && multi)
        err = err_set(em, TASSA_EINVAL, "MultiTaskEnabled=true is not supported");
    if (!err && order && strcmp(order, "FIFO") && strcmp(order, "LIFO"))
        err = err_set(em, TASSA_EINVAL, "PrioritizeQueueOrder must be FIFO or LIFO");
    if (!err && url && *url && strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        err = err_set(em, TASSA_EINVAL, "EventCallbackUrl must be an http(s) URL");
    if (!err && url && strlen(url) > 2048)
        err = err_set(em, TASSA_EINVAL, "EventCallbackUrl is too long");
    if (!err && filter && strlen(filter) > 4096)
        err = err_set(em, TASSA_EINVAL, "EventsFilter is too long");
    if (err)
        return err;
    int64_t now = store_now_ms();
    err = tr_txn_begin(e);
    if (err)
        return err;
    err = check_activity(e, "DefaultActivitySid", def, em);
    if (!err)
        err = check_activity(e, "TimeoutActivitySid", tmo, em);
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_workspace SET friendly_name = COALESCE(?, friendly_name),"
                      " event_callback_url = CASE WHEN ? IS NULL THEN event_callback_url"
                      "  WHEN ? = '' THEN NULL ELSE ? END,"
                      " events_filter = CASE WHEN ? IS NULL THEN events_filter"
                      "  WHEN ? = '' THEN NULL ELSE ? END,"
                      " prioritize_queue_order = COALESCE(?, prioritize_queue_order),"
                      " default_activity_sid = COALESCE(?, default_activity_sid),"
                      " timeout_activity_sid = COALESCE(?, timeout_activity_sid),"
                      " date_updated = ? WHERE sid = ?",
                      "ssssssssssis", name, url, url, url, filter, filter, filter, order, def, tmo,
                      now, e->ws_sid);
    if (!err)
        err = ev_emit(e, ev_new(e, "workspace.updated", "Workspace", e->ws_sid, NULL, now), -1);
    json_t *row = err ? NULL : tr_load_workspace(e);
    if (!err && out && !(*out = tr_json_workspace(e, row, base_url)))
        err = TASSA_ENOMEM;
    json_decref(row);
    err = tr_txn_end_out(e, err, out);
    return err;
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
