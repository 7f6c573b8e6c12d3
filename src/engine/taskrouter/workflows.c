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

/* A workflow as Twilio's JSON. New reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_workflow_t *r, const char *base)
{
    const char *sid = r->sid;
    json_t *j = tr_json_new(e, sid);
    if (!j)
        return NULL;
    json_object_set_new(j, "friendly_name", tr_jstr(r->friendly_name));
    json_object_set_new(j, "configuration", tr_jstr(r->configuration));
    json_object_set_new(j, "document_content_type", json_string("application/json"));
    json_object_set_new(j, "task_reservation_timeout", json_integer(r->task_reservation_timeout));
    json_object_set_new(j, "assignment_callback_url", tr_jstr(r->assignment_callback_url));
    json_object_set_new(j, "fallback_assignment_callback_url",
                        tr_jstr(r->fallback_assignment_callback_url));
    json_object_set_new(j, "date_created", tr_jdate(r->date_created));
    json_object_set_new(j, "date_updated", tr_jdate(r->date_updated));
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

typedef struct {
    tr_engine_t *e;
    const char *base, *name;
} wflist_t;

/* Renders a workflow row (tr_list, tr_fetch). */
static json_t *workflow_render(void *ctx, const void *row)
{
    wflist_t *c = ctx;
    return to_json(c->e, row, c->base);
}

/* Renders the workflow sid (lock held) into *out when out is not NULL. */
static tassa_err render(tr_engine_t *e, const char *sid, const char *base_url, json_t **out)
{
    return tr_render_locked(e, &TR_WORKFLOW_ROW, workflow_render, &(wflist_t){e, base_url, NULL},
                            sizeof(wflist_t), sid, out);
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
    int64_t now = tr_now_ms(e);
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
        err = ev_resource_event(e, "workflow.created", "Workflow", sid, now);
    if (!err)
        err = render(e, sid, base_url, out);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_workflow_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                            errmsg_t *em)
{
    return tr_fetch(e, &TR_WORKFLOW_ROW, workflow_render, &(wflist_t){e, base_url, NULL},
                    "Workflows", sid, out, em);
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
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    tr_task_t *pending = NULL;
    size_t n_pending = 0;
    if (db_int(e->store, 0, "SELECT 1 FROM tr_workflows WHERE sid = ?", "s", sid) != 1)
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
                      " assignment_callback_url = CASE WHEN CAST(? AS TEXT) IS NULL THEN"
                      "  assignment_callback_url ELSE NULLIF(?, '') END,"
                      " fallback_assignment_callback_url = CASE WHEN CAST(? AS TEXT) IS NULL THEN"
                      "  fallback_assignment_callback_url ELSE NULLIF(?, '') END,"
                      " date_updated = ? WHERE sid = ?",
                      "ssiissssis", name, conf, (int64_t)timeout, (int64_t)timeout, acb, acb, fcb,
                      fcb, now, sid);
    if (!err)
        err = ev_resource_event(e, "workflow.updated", "Workflow", sid, now);
    /* A new configuration re-routes the pending tasks when asked to, or when their target no
     * longer exists in it. */
    if (!err && conf)
        err = rows_all(e, &TR_TASK_ROW, (void **)&pending, &n_pending,
                       TR_TASK_SELECT
                       "WHERE t.workflow_sid = ? AND t.status = 'pending' ORDER BY t.seq",
                       "s", sid);
    tr_wfconf_t *c = !err && conf ? tr_wfconf_parse(NULL, conf, &err, NULL) : NULL;
    for (size_t i = 0; !err && c && i < n_pending; i++) {
        const tr_task_t *t = &pending[i];
        if (reeval || !tr_wfconf_target(c, (long)t->filter_index, (long)t->target_index))
            err = tr_task_route_locked(e, t->sid, false, now);
    }
    tr_wfconf_free(c);
    if (!err)
        err = tr_match_locked(e, now);
    if (!err)
        err = render(e, sid, base_url, out);
    rows_free(&TR_TASK_ROW, pending, n_pending);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_workflow_delete(tr_engine_t *e, const char *sid, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    tassa_err err = tr_txn_begin_row(e, "tr_workflows", "Workflows", sid, em);
    if (err)
        return err;
    if (db_int(e->store, 0,
               "SELECT 1 FROM tr_tasks WHERE workflow_sid = ? AND"
               " status IN " TR_TASK_OPEN_SQL " LIMIT 1",
               "s", sid) == 1)
        err = err_set(em, TASSA_ECONFLICT, "Workflow %s has unfinished tasks", sid);
    if (!err)
        err = ev_resource_event(e, "workflow.deleted", "Workflow", sid, now);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_workflows WHERE sid = ?", "s", sid);
    return tr_txn_end(e, err);
}

/* Workflows list filter: FriendlyName. */
static bool workflow_pred(void *ctx, const void *r)
{
    const tr_workflow_t *row = r;
    wflist_t *c = ctx;
    return !c->name || !strcmp(c->name, row->friendly_name);
}

tassa_err tr_workflow_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                           const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    wflist_t c = {e, base_url, params_get(filter, "FriendlyName")};
    return tr_list(e, &TR_WORKFLOW_ROW, workflow_pred, workflow_render, &c, offset, limit, items,
                   more, TR_WORKFLOW_SELECT "ORDER BY seq", NULL);
}
