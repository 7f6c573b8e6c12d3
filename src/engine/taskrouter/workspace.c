/* workspace.c - the workspace resource: fetch, update, its event callback settings, and
 * its JSON.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/model.h"

#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"

/* The workspace as Twilio's JSON. New reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_workspace_t *r, const char *base)
{
    json_t *j = tr_json_new(e, r->sid);
    if (!j)
        return NULL;
    json_object_del(j, "workspace_sid");
    json_object_set_new(j, "friendly_name", tr_jstr(r->friendly_name));
    json_object_set_new(j, "date_created", tr_jdate(r->date_created));
    json_object_set_new(j, "date_updated", tr_jdate(r->date_updated));
    json_object_set_new(j, "default_activity_sid", tr_jstr(r->default_activity_sid));
    json_object_set_new(j, "default_activity_name", tr_jstr(r->default_activity_name));
    json_object_set_new(j, "timeout_activity_sid", tr_jstr(r->timeout_activity_sid));
    json_object_set_new(j, "timeout_activity_name", tr_jstr(r->timeout_activity_name));
    json_object_set_new(j, "event_callback_url", tr_jstr(r->event_callback_url));
    json_object_set_new(j, "events_filter", tr_jstr(r->events_filter));
    json_object_set_new(j, "multi_task_enabled", json_boolean(r->multi_task_enabled));
    json_object_set_new(j, "prioritize_queue_order", tr_jstr(r->prioritize_queue_order));
    json_object_set_new(j, "url", tr_url(e, base, "%s", ""));
    json_object_set_new(j, "links",
                        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                                  "activities", tr_url(e, base, "/Activities"), "workflows",
                                  tr_url(e, base, "/Workflows"), "tasks", tr_url(e, base, "/Tasks"),
                                  "task_queues", tr_url(e, base, "/TaskQueues"), "workers",
                                  tr_url(e, base, "/Workers"), "events", tr_url(e, base, "/Events"),
                                  "task_channels", tr_url(e, base, "/TaskChannels"), "statistics",
                                  tr_url(e, base, "/Statistics"), "real_time_statistics",
                                  tr_url(e, base, "/RealTimeStatistics"), "cumulative_statistics",
                                  tr_url(e, base, "/CumulativeStatistics")));
    return j;
}

typedef struct {
    tr_engine_t *e;
    const char *base, *name;
} wslist_t;

/* Workspaces list filter: FriendlyName. */
static bool workspace_pred(void *ctx, const void *row)
{
    const tr_workspace_t *ws = row;
    wslist_t *c = ctx;
    return !c->name || (ws->friendly_name && !strcmp(c->name, ws->friendly_name));
}

/* Renders the workspace row (tr_list). */
static json_t *workspace_render(void *ctx, const void *row)
{
    wslist_t *c = ctx;
    return to_json(c->e, row, c->base);
}

tassa_err tr_workspace_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                            const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    wslist_t c = {e, base_url, params_get(filter, "FriendlyName")};
    return tr_list(e, &TR_WORKSPACE_ROW, workspace_pred, workspace_render, &c, offset, limit, items,
                   more, TR_WORKSPACE_SELECT "WHERE ws.sid = ?", "s", e->ws_sid);
}

/* Loads the workspace under the store lock (taken here). False on failure. */
static bool load(tr_engine_t *e, tr_workspace_t *ws)
{
    store_lock(e->store);
    bool found = tr_workspace_load(e, ws);
    store_unlock(e->store);
    return found;
}

tassa_err tr_workspace_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                             errmsg_t *em)
{
    *out = NULL;
    if (strcmp(sid, e->ws_sid))
        return err_set(em, TASSA_ENOTFOUND,
                       "The requested resource /Workspaces/%.64s was not found", sid);
    tr_workspace_t ws = {0};
    if (!load(e, &ws))
        return TASSA_ESTORE;
    *out = to_json(e, &ws, base_url);
    rows_clear(&TR_WORKSPACE_ROW, &ws);
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
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    err = check_activity(e, "DefaultActivitySid", def, em);
    if (!err)
        err = check_activity(e, "TimeoutActivitySid", tmo, em);
    if (!err)
        err = db_exec(
            e->store,
            "UPDATE tr_workspace SET friendly_name = COALESCE(?, friendly_name),"
            " event_callback_url = CASE WHEN CAST(? AS TEXT) IS NULL THEN event_callback_url"
            "  WHEN ? = '' THEN NULL ELSE ? END,"
            " events_filter = CASE WHEN CAST(? AS TEXT) IS NULL THEN events_filter"
            "  WHEN ? = '' THEN NULL ELSE ? END,"
            " prioritize_queue_order = COALESCE(?, prioritize_queue_order),"
            " default_activity_sid = COALESCE(?, default_activity_sid),"
            " timeout_activity_sid = COALESCE(?, timeout_activity_sid),"
            " date_updated = ? WHERE sid = ?",
            "ssssssssssis", name, url, url, url, filter, filter, filter, order, def, tmo, now,
            e->ws_sid);
    ev_forget_workspace(e); /* its name may have changed */
    if (!err)
        err = ev_emit(e, ev_new(e, "workspace.updated", "Workspace", e->ws_sid, NULL, now), -1);
    tr_workspace_t ws = {0};
    if (!err && out && !(tr_workspace_load(e, &ws) && (*out = to_json(e, &ws, base_url))))
        err = TASSA_ENOMEM;
    rows_clear(&TR_WORKSPACE_ROW, &ws);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_workspace_callback(tr_engine_t *e, char **url, char **filter)
{
    tr_workspace_t ws = {0};
    *url = *filter = NULL;
    if (!load(e, &ws))
        return TASSA_ESTORE;
    /* the row's copies become the caller's */
    *url = ws.event_callback_url;
    *filter = ws.events_filter;
    ws.event_callback_url = ws.events_filter = NULL;
    rows_clear(&TR_WORKSPACE_ROW, &ws);
    return TASSA_OK;
}
