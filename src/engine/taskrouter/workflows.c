/* workflows.c - workflows: create, update (re-routing pending tasks), delete, list, and
 * their JSON.
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
#include "engine/taskrouter/wfconf.h"

json_t *tr_json_workflow(tr_engine_t *e, const json_t *r, const char *base)
{
    const char *sid = row_str(r, "sid");
    json_t *j = tr_json_new(e);
    if (!j)
        return NULL;
    json_object_set_new(j, "sid", row_jstr(r, "sid"));
    json_object_set_new(j, "friendly_name", row_jstr(r, "friendly_name"));
    json_object_set_new(j, "configuration", row_jstr(r, "configuration"));
    json_object_set_new(j, "document_content_type", json_string("application/json"));
    json_object_set_new(j, "task_reservation_timeout",
                        json_integer(row_int(r, "task_reservation_timeout")));
    json_object_set_new(j, "assignment_callback_url", row_jstr(r, "assignment_callback_url"));
    json_object_set_new(j, "fallback_assignment_callback_url",
                        row_jstr(r, "fallback_assignment_callback_url"));
    json_object_set_new(j, "date_created", row_jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", row_jdate(r, "date_updated"));
    json_object_set_new(j, "url", tr_url(e, base, "/Workflows/%s", sid));
    json_object_set_new(
        j, "links",
        json_pack("{s:o, s:o, s:o}", "statistics", tr_url(e, base, "/Workflows/%s/Statistics", sid),
                  "real_time_statistics", tr_url(e, base, "/Workflows/%s/RealTimeStatistics", sid),
                  "cumulative_statistics",
                  tr_url(e, base, "/Workflows/%s/CumulativeStatistics", sid)));
    return j;
}

/* Checks the callback URL parameters: empty or http(s). */
static tassa_err check_url(const params_t *p, const char *name, errmsg_t *em)
{
    const char *v = params_get(p, name);
    if (v && *v && ((strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) || strlen(v) > 2048))
        return err_set(em, TASSA_EINVAL, "%s must be an http(s) URL", name);
    return TASSA_OK;
}

/* Renders the workflow sid (lock held) into *out when out is not NULL. */
static tassa_err render(tr_engine_t *e, const char *sid, const char *base_url, json_t **out)
{
    return tr_render_row(e, tr_load_workflow, tr_json_workflow, sid, base_url, out);
}

/* Records workflow.<what>. */
static tassa_err workflow_event(tr_engine_t *e, const char *type, const char *sid, int64_t now)
{
    json_t *wf = tr_load_workflow(e, sid);
    json_t *ev = ev_new(e, type, "Workflow", sid, NULL, now);
    ev_workflow(ev, wf);
    json_decref(wf);
    return ev_emit(e, ev, -1);
}

tassa_err tr_workflow_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                             errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    const char *conf = params_get(p, "Configuration");
    long timeout = 120;
    char sid[SID_LEN + 1];
    if (out)
        *out = NULL;
    tassa_err err = tr_check_name(name, "FriendlyName", em);
    if (!err && (!conf || !*conf))
        err = err_set(em, TASSA_EMISSING,
                      "Missing required parameter Configuration in the post body");
    if (!err)
        err = tr_read_long(p, "TaskReservationTimeout", 1, 86400, &timeout, em);
    if (!err)
        err = check_url(p, "AssignmentCallbackUrl", em);
    if (!err)
        err = check_url(p, "FallbackAssignmentCallbackUrl", em);
    if (!err)
        err = sid_new("WW", sid);
    if (err)
        return err;
    int64_t now = store_now_ms();
    err = tr_txn_begin(e);
    if (err)
        return err;
    tr_wfconf_t *c = tr_wfconf_parse(e, conf, &err, em);
    tr_wfconf_free(c);
    if (!err && db_int(e->store, 0, "SELECT count(*) FROM tr_workflows", NULL) >= TR_MAX_WORKFLOWS)
        err = err_set(em, TASSA_ELIMIT, "A workspace holds at most %d workflows", TR_MAX_WORKFLOWS);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_workflows (sid, friendly_name, configuration,"
                      " task_reservation_timeout, assignment_callback_url,"
                      " fallback_assignment_callback_url, date_created, date_updated)"
                      " VALUES (?, ?, ?, ?, NULLIF(?, ''), NULLIF(?, ''), ?, ?)",
                      "sssissii", sid, name, conf, (int64_t)timeout,
                      params_get(p, "AssignmentCallbackUrl"),
                      params_get(p, "FallbackAssignmentCallbackUrl"), now, now);
    if (!err)
        err = workflow_event(e, "workflow.created", sid, now);
    if (!err)
        err = render(e, sid, base_url, out);
    err = tr_txn_end_out(e, err, out);
    return err;
}

tassa_err tr_workflow_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                            errmsg_t *em)
{
    return tr_fetch_row(e, tr_load_workflow, tr_json_workflow, "Workflows", sid, base_url, out, em);
}

tassa_err tr_workflow_update(tr_engine_t *e, const char *sid, const params_t *p,
                             const char *base_url, json_t **out, errmsg_t *em)
{
    const char *name = params_get(p, "FriendlyName");
    const char *conf = params_get_nonempty(p, "Configuration");
    long timeout = -1;
    int reeval = 0;
    if (out)
        *out = NULL;
    tassa_err err = name ? tr_check_name(name, "FriendlyName", em) : TASSA_OK;
    if (!err)
        err = tr_read_long(p, "TaskReservationTimeout", 1, 86400, &timeout, em);
    if (!err)
        err = tr_read_bool(p, "ReEvaluateTasks", &reeval, em);
    if (!err)
        err = check_url(p, "AssignmentCallbackUrl", em);
    if (!err)
        err = check_url(p, "FallbackAssignmentCallbackUrl", em);
    if (err)
        return err;
    int64_t now = store_now_ms();
    err = tr_txn_begin(e);
    if (err)
        return err;
    json_t *row = tr_load_workflow(e, sid);
    json_t *pending = NULL;
    if (!row)
        err = tr_not_found(e, em, "Workflows", sid);
    if (!err && conf) {
        tr_wfconf_t *c = tr_wfconf_parse(e, conf, &err, em);
        tr_wfconf_free(c);
    }
    const char *acb = params_get(p, "AssignmentCallbackUrl");
    const char *fcb = params_get(p, "FallbackAssignmentCallbackUrl");
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_workflows SET friendly_name = COALESCE(?, friendly_name),"
                      " configuration = COALESCE(?, configuration),"
                      " task_reservation_timeout = CASE WHEN ? < 0 THEN task_reservation_timeout"
                      "  ELSE ? END,"
                      " assignment_callback_url = CASE WHEN ? IS NULL THEN"
                      "  assignment_callback_url ELSE NULLIF(?, '') END,"
                      " fallback_assignment_callback_url = CASE WHEN ? IS NULL THEN"
                      "  fallback_assignment_callback_url ELSE NULLIF(?, '') END,"
                      " date_updated = ? WHERE sid = ?",
                      "ssiissssis", name, conf, (int64_t)timeout, (int64_t)timeout, acb, acb, fcb,
                      fcb, now, sid);
    if (!err)
        err = workflow_event(e, "workflow.updated", sid, now);
    /* A new configuration re-routes the pending tasks when asked to, or when their target no
     * longer exists in it. */
    if (!err && conf)
        pending = db_all(e->store,
                         "SELECT sid, filter_index, target_index FROM tr_tasks"
                         " WHERE workflow_sid = ? AND status = 'pending'",
                         "s", sid);
    tr_wfconf_t *c = pending ? tr_wfconf_parse(NULL, conf, &err, NULL) : NULL;
    for (size_t i = 0; !err && c && i < json_array_size(pending); i++) {
        const json_t *t = json_array_get(pending, i);
        if (reeval || !tr_wfconf_target(c, (long)row_int(t, "filter_index"),
                                        (long)row_int(t, "target_index")))
            err = tr_task_route_locked(e, row_str(t, "sid"), false, now);
    }
    tr_wfconf_free(c);
    if (!err)
        err = tr_match_locked(e, now);
    if (!err)
        err = render(e, sid, base_url, out);
    json_decref(row);
    json_decref(pending);
    err = tr_txn_end_out(e, err, out);
    return err;
}

tassa_err tr_workflow_delete(tr_engine_t *e, const char *sid, errmsg_t *em)
{
    int64_t now = store_now_ms();
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    json_t *row = tr_load_workflow(e, sid);
    if (!row)
        err = tr_not_found(e, em, "Workflows", sid);
    else if (db_int(e->store, 0,
                    "SELECT 1 FROM tr_tasks WHERE workflow_sid = ? AND"
                    " status IN ('pending', 'reserved', 'assigned', 'wrapping') LIMIT 1",
                    "s", sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "Workflow %s has unfinished tasks", sid);
    if (!err)
        err = workflow_event(e, "workflow.deleted", sid, now);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_workflows WHERE sid = ?", "s", sid);
    json_decref(row);
    return tr_txn_end(e, err);
}

typedef struct {
    tr_engine_t *e;
    const char *base, *name;
} wflist_t;

/* Workflows list filter: FriendlyName. */
static bool workflow_pred(void *ctx, const json_t *row)
{
    wflist_t *c = ctx;
    return !c->name || !strcmp(c->name, row_str(row, "friendly_name"));
}

/* Renders a workflow row (tr_list). */
static json_t *workflow_render(void *ctx, const json_t *row)
{
    wflist_t *c = ctx;
    return tr_json_workflow(c->e, row, c->base);
}

tassa_err tr_workflow_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                           const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    wflist_t c = {e, base_url, params_get(filter, "FriendlyName")};
    return tr_list(e, workflow_pred, workflow_render, &c, offset, limit, items, more,
                   "SELECT * FROM tr_workflows ORDER BY seq", NULL);
}
