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

/* An activity as Twilio's JSON. New reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_activity_t *r, const char *base)
{
    const char *sid = r->sid;
    json_t *j = tr_json_new(e, sid);
    if (!j)
        return NULL;
    json_object_set_new(j, "friendly_name", tr_jstr(r->friendly_name));
    json_object_set_new(j, "available", json_boolean(r->available));
    json_object_set_new(j, "date_created", tr_jdate(r->date_created));
    json_object_set_new(j, "date_updated", tr_jdate(r->date_updated));
    json_object_set_new(j, "url", tr_url(e, base, "/Activities/%s", sid));
    json_object_set_new(j, "links", json_pack("{s:o}", "workspace", tr_url(e, base, "%s", "")));
    return j;
}

/* Activities ---------------------------------------------------------------------------- */

/* Renders an activity row (tr_list). */
static json_t *render_activity(void *ctx, const void *row)
{
    list_ctx_t *c = ctx;
    return to_json(c->e, row, c->base);
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
    int64_t now = tr_now_ms(e);
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
    if (!err) {
        json_t *ev = ev_new(e, "activity.created", "Activity", sid, NULL, now);
        ev_set(ev, "ActivitySid", "%s", sid);
        ev_set(ev, "ActivityName", "%s", name);
        ev_set(ev, "ActivityAvailable", "%s", available ? "true" : "false");
        err = ev_emit(e, ev, -1);
    }
    if (!err)
        err = tr_render_locked(e, &TR_ACTIVITY_ROW, render_activity,
                               &(list_ctx_t){e, base_url, NULL, -1}, sizeof(list_ctx_t), sid, out);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_activity_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                            errmsg_t *em)
{
    return tr_fetch(e, &TR_ACTIVITY_ROW, render_activity, &(list_ctx_t){e, base_url, NULL, -1},
                    "Activities", sid, out, em);
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
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin_row(e, "tr_activities", "Activities", sid, em);
    if (err)
        return err;
    if (name &&
        db_int(e->store, 0, "SELECT 1 FROM tr_activities WHERE friendly_name = ? AND sid != ?",
               "ss", name, sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "An Activity named '%s' already exists", name);
    if (!err && name)
        err = db_exec(e->store,
                      "UPDATE tr_activities SET friendly_name = ?, date_updated = ? WHERE sid = ?",
                      "sis", name, now, sid);
    if (!err && name)
        err = ev_emit(e, ev_new(e, "activity.updated", "Activity", sid, NULL, now), -1);
    if (!err)
        err = tr_render_locked(e, &TR_ACTIVITY_ROW, render_activity,
                               &(list_ctx_t){e, base_url, NULL, -1}, sizeof(list_ctx_t), sid, out);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_activity_delete(tr_engine_t *e, const char *sid, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    tassa_err err = tr_txn_begin_row(e, "tr_activities", "Activities", sid, em);
    if (err)
        return err;
    if (db_int(e->store, 0, "SELECT 1 FROM tr_workers WHERE activity_sid = ? LIMIT 1", "s", sid) ==
        1)
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
    return tr_txn_end(e, err);
}

/* Activities list filter: FriendlyName and Available. */
static bool activity_pred(void *ctx, const void *r)
{
    const tr_activity_t *row = r;
    list_ctx_t *c = ctx;
    const char *name = params_get(c->filter, "FriendlyName");
    if (name && strcmp(name, row->friendly_name))
        return false;
    return c->available < 0 || c->available == (int)row->available;
}

tassa_err tr_activity_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                           const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    list_ctx_t c = {e, base_url, filter, -1};
    *items = NULL;
    tassa_err err = tr_read_bool(filter, "Available", &c.available, em);
    if (err)
        return err;
    return tr_list(e, &TR_ACTIVITY_ROW, activity_pred, render_activity, &c, offset, limit, items,
                   more, TR_ACTIVITY_SELECT "ORDER BY seq", NULL);
}
