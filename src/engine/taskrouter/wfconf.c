/* wfconf.c - a workflow Configuration document (task_routing filters, targets,
 * default_filter): parsed, checked, and looked up by position.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/wfconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/rows.h"

#define CONFIG_MAX 65536

void tr_wfconf_free(tr_wfconf_t *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) > 1)
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
    atomic_init(&c->refs, 1);
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

tr_wfconf_t *tr_wfconf_load(tr_engine_t *e, const char *wf_sid)
{
    tr_workflow_t wf = {0};
    tassa_err err;
    tr_wfconf_t *c = NULL;
    if (!wf_sid || !tr_workflow_load(e, wf_sid, &wf) || !wf.configuration)
        goto out;
    if (e->wf_cached && !strcmp(e->wf_cached_sid, wf_sid) &&
        !strcmp(e->wf_cached_text, wf.configuration)) {
        c = e->wf_cached;
        atomic_fetch_add(&c->refs, 1);
        goto out;
    }
    if (!(c = tr_wfconf_parse(NULL, wf.configuration, &err, NULL)))
        goto out;
    char *text = strdup(wf.configuration);
    if (text && strlen(wf_sid) <= SID_LEN) { /* keep it for the next task of this workflow */
        tr_wfconf_free(e->wf_cached);
        free(e->wf_cached_text);
        atomic_fetch_add(&c->refs, 1);
        e->wf_cached = c;
        e->wf_cached_text = text;
        snprintf(e->wf_cached_sid, sizeof e->wf_cached_sid, "%s", wf_sid);
    } else {
        free(text);
    }
out:
    rows_clear(&TR_WORKFLOW_ROW, &wf);
    return c;
}
