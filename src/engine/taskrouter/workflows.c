/* workflows.c - workflows: the Configuration document (task_routing filters, targets,
 * default_filter) and its checks, create, update, delete, list.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/model.h"

#define CONFIG_MAX 65536

void tr_wfconf_free(tr_wfconf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_filters; i++) {
        tr_filter_t *f = &c->filters[i];
        free(f->name);
        expr_free(f->expr);
        for (size_t j = 0; j < f->n_targets; j++)
            expr_free(f->targets[j].expr);
        free(f->targets);
    }
    free(c->filters);
    expr_free(c->def.expr);
    free(c);
}

/* Reads an optional non-negative integer that Twilio accepts as a number or a numeric
 * string ("priority": "5"). -1 when absent. */
static tassa_err read_num(const json_t *t, const char *key, const char *where, long *out,
                          errmsg_t *em)
{
    const json_t *v = json_object_get(t, key);
    *out = -1;
    if (!v || json_is_null(v))
        return TASSA_OK;
    long n = -1;
    if (json_is_integer(v)) {
        n = json_integer_value(v) > 2147483647 ? -1 : (long)json_integer_value(v);
    } else if (json_is_string(v)) {
        if (!params_parse_long(json_string_value(v), 0, 2147483647, &n))
            n = -1;
    }
    if (n < 0)
        return err_set(em, TASSA_EINVAL, "%s.%s must be a non-negative integer", where, key);
    *out = n;
    return TASSA_OK;
}

/* Parses one target object into t. */
static tassa_err parse_target(tr_engine_t *e, const json_t *j, tr_target_t *t, const char *where,
                              errmsg_t *em)
{
    if (!json_is_object(j))
        return err_set(em, TASSA_EINVAL, "%s must be an object", where);
    const char *q = json_string_value(json_object_get(j, "queue"));
    if (!q || !sid_valid(q, "WQ"))
        return err_set(em, TASSA_EINVAL, "%s.queue must be a TaskQueue SID", where);
    if (e && db_int(e->store, 0, "SELECT 1 FROM tr_queues WHERE sid = ?", "s", q) != 1)
        return err_set(em, TASSA_EINVAL, "%s.queue %s is not a TaskQueue of this workspace", where,
                       q);
    memcpy(t->queue, q, SID_LEN + 1);
    tassa_err err = read_num(j, "priority", where, &t->priority, em);
    if (!err)
        err = read_num(j, "timeout", where, &t->timeout, em);
    if (err)
        return err;
    const json_t *x = json_object_get(j, "expression");
    if (x && !json_is_null(x)) {
        errmsg_t xm = {{0}};
        if (!json_is_string(x))
            return err_set(em, TASSA_EINVAL, "%s.expression must be a string", where);
        if (!(t->expr = expr_parse(json_string_value(x), &xm)))
            return err_set(em, TASSA_EEXPR, "%s.expression: %s", where, xm.text);
    }
    return TASSA_OK;
}

tr_wfconf_t *tr_wfconf_parse(tr_engine_t *e, const char *text, tassa_err *err, errmsg_t *em)
{
    json_error_t jerr;
    char where[96];
    tr_wfconf_t *c = calloc(1, sizeof *c);
    json_t *doc = NULL;
    *err = TASSA_ENOMEM;
    if (!c)
        return NULL;
    c->def.priority = c->def.timeout = -1;
    if (strlen(text) > CONFIG_MAX) {
        *err = err_set(em, TASSA_EINVAL, "Configuration is larger than %d bytes", CONFIG_MAX);
        goto fail;
    }
    doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        *err = err_set(em, TASSA_EINVAL, "Configuration is not valid JSON (line %d column %d: %s)",
                       jerr.line, jerr.column, jerr.text);
        goto fail;
    }
    const json_t *tr = json_object_get(doc, "task_routing");
    if (!json_is_object(tr)) {
        *err = err_set(em, TASSA_EINVAL, "Configuration needs a task_routing object");
        goto fail;
    }
    const json_t *filters = json_object_get(tr, "filters");
    if (filters && !json_is_array(filters)) {
        *err = err_set(em, TASSA_EINVAL, "task_routing.filters must be an array");
        goto fail;
    }
    size_t nf = json_array_size(filters);
    if (nf > 1000) {
        *err = err_set(em, TASSA_EINVAL, "task_routing.filters holds more than 1000 filters");
        goto fail;
    }
    c->filters = nf ? calloc(nf, sizeof *c->filters) : NULL;
    if (nf && !c->filters)
        goto fail;
    for (size_t i = 0; i < nf; i++) {
        const json_t *f = json_array_get(filters, i);
        tr_filter_t *cf = &c->filters[c->n_filters++];
        snprintf(where, sizeof where, "task_routing.filters[%zu]", i);
        if (!json_is_object(f)) {
            *err = err_set(em, TASSA_EINVAL, "%s must be an object", where);
            goto fail;
        }
        const char *x = json_string_value(json_object_get(f, "expression"));
        errmsg_t xm = {{0}};
        if (!x) {
            *err = err_set(em, TASSA_EINVAL, "%s.expression must be a string", where);
            goto fail;
        }
        if (!(cf->expr = expr_parse(x, &xm))) {
            *err = err_set(em, TASSA_EEXPR, "%s.expression: %s", where, xm.text);
            goto fail;
        }
        const char *name = json_string_value(json_object_get(f, "filter_friendly_name"));
        if (!name)
            name = json_string_value(json_object_get(f, "friendly_name"));
        if (name && !(cf->name = strdup(name)))
            goto fail;
        const json_t *targets = json_object_get(f, "targets");
        size_t nt = json_array_size(targets);
        if (!json_is_array(targets) || nt == 0 || nt > 100) {
            *err =
                err_set(em, TASSA_EINVAL, "%s.targets must be an array of 1 to 100 targets", where);
            goto fail;
        }
        if (!(cf->targets = calloc(nt, sizeof *cf->targets)))
            goto fail;
        for (size_t j = 0; j < nt; j++) {
            char tw[128];
            snprintf(tw, sizeof tw, "%s.targets[%zu]", where, j);
            cf->n_targets++;
            *err = parse_target(e, json_array_get(targets, j), &cf->targets[j], tw, em);
            if (*err)
                goto fail;
        }
    }
    const json_t *def = json_object_get(tr, "default_filter");
    if (!def) {
        *err = err_set(em, TASSA_EINVAL, "task_routing.default_filter with a queue is required");
        goto fail;
    }
    *err = parse_target(e, def, &c->def, "task_routing.default_filter", em);
    if (*err)
        goto fail;
    json_decref(doc);
    *err = TASSA_OK;
    return c;
fail:
    json_decref(doc);
    tr_wfconf_free(c);
    return NULL;
}

const tr_target_t *tr_wfconf_target(const tr_wfconf_t *c, long filter, long target)
{
    if (filter < 0)
        return target == 0 ? &c->def : NULL;
    if ((size_t)filter >= c->n_filters || target < 0 ||
        (size_t)target >= c->filters[filter].n_targets)
        return NULL;
    return &c->filters[filter].targets[target];
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
