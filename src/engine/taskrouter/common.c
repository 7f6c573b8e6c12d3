/* common.c - what the TaskRouter resources share: row loaders, input checks, the worker
 * subject of expressions and the 404 message.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/taskrouter/model.h"

json_t *tr_load_workspace(tr_engine_t *e)
{
    return db_one(e->store,
                  "SELECT ws.*, da.friendly_name AS default_activity_name,"
                  " ta.friendly_name AS timeout_activity_name FROM tr_workspace ws"
                  " LEFT JOIN tr_activities da ON da.sid = ws.default_activity_sid"
                  " LEFT JOIN tr_activities ta ON ta.sid = ws.timeout_activity_sid"
                  " WHERE ws.sid = ?",
                  "s", e->ws_sid);
}

json_t *tr_load_activity(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, "SELECT * FROM tr_activities WHERE sid = ?", "s", sid);
}

json_t *tr_load_worker(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_WORKER_SELECT "WHERE w.sid = ?", "s", sid);
}

json_t *tr_load_queue(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_QUEUE_SELECT "WHERE q.sid = ?", "s", sid);
}

json_t *tr_load_workflow(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, "SELECT * FROM tr_workflows WHERE sid = ?", "s", sid);
}

json_t *tr_load_task(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_TASK_SELECT "WHERE t.sid = ?", "s", sid);
}

json_t *tr_load_reservation(tr_engine_t *e, const char *sid)
{
    return db_one(e->store, TR_RES_SELECT "WHERE r.sid = ?", "s", sid);
}

tassa_err tr_not_found(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid)
{
    return err_set(em, TASSA_ENOTFOUND,
                   "The requested resource /Workspaces/%s/%s/%.64s was not found", e->ws_sid, what,
                   sid ? sid : "");
}

tassa_err tr_check_name(const char *v, const char *param, errmsg_t *em)
{
    if (!v || !*v)
        return err_set(em, TASSA_EMISSING, "Missing required parameter %s in the post body", param);
    if (strlen(v) > TR_MAX_FRIENDLY_NAME)
        return err_set(em, TASSA_EINVAL, "%s must be at most %d characters", param,
                       TR_MAX_FRIENDLY_NAME);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20)
            return err_set(em, TASSA_EINVAL, "%s must not hold control characters", param);
    return TASSA_OK;
}

tassa_err tr_check_attributes(const char *v, const char *param, errmsg_t *em)
{
    json_error_t jerr;
    if (strlen(v) > TR_MAX_ATTRIBUTES)
        return err_set(em, TASSA_EINVAL, "%s is %zu bytes; at most %d are allowed", param,
                       strlen(v), TR_MAX_ATTRIBUTES);
    json_t *j = json_loads(v, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return err_set(em, TASSA_EINVAL, "%s is not valid JSON (line %d column %d: %s)", param,
                       jerr.line, jerr.column, jerr.text);
    bool obj = json_is_object(j);
    json_decref(j);
    if (!obj)
        return err_set(em, TASSA_EINVAL, "%s must be a JSON object", param);
    return TASSA_OK;
}

tassa_err tr_read_long(const params_t *p, const char *param, long lo, long hi, long *out,
                       errmsg_t *em)
{
    const char *v = params_get(p, param);
    if (!v)
        return TASSA_OK;
    long n;
    if (!params_parse_long(v, lo, hi, &n))
        return err_set(em, TASSA_EINVAL, "%s must be an integer from %ld to %ld", param, lo, hi);
    *out = n;
    return TASSA_OK;
}

tassa_err tr_read_bool(const params_t *p, const char *param, int *out, errmsg_t *em)
{
    const char *v = params_get(p, param);
    if (!v)
        return TASSA_OK;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        *out = 0;
    else
        return err_set(em, TASSA_EINVAL, "%s must be true or false", param);
    return TASSA_OK;
}

json_t *tr_parse_attributes(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

json_t *tr_worker_subject(const json_t *row)
{
    json_t *s = tr_parse_attributes(row_str(row, "attributes"));
    if (!s)
        return NULL;
    static const char *const keys[] = {"sid", "friendly_name", "activity_sid", "activity_name"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = row_str(row, keys[i]);
        json_object_set_new(s, keys[i], v ? json_string(v) : json_null());
    }
    return s;
}

tassa_err tr_list(tr_engine_t *e, tr_pred_fn pred, tr_render_fn render, void *ctx, long offset,
                  long limit, json_t **items, bool *more, const char *sql, const char *types, ...)
{
    tassa_err err = TASSA_OK;
    *more = false;
    *items = json_array();
    if (!*items)
        return TASSA_ENOMEM;
    store_lock(e->store);
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(e->store, sql, types, ap);
    va_end(ap);
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    long seen = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = db_row(st);
        if (!row) {
            err = TASSA_ENOMEM;
            break;
        }
        bool ok = !pred || pred(ctx, row);
        if (ok && seen >= offset + limit) {
            *more = true;
            json_decref(row);
            break;
        }
        if (ok && seen++ >= offset) {
            json_t *j = render(ctx, row);
            if (!j || json_array_append_new(*items, j))
                err = TASSA_ENOMEM;
        }
        json_decref(row);
        if (err)
            break;
    }
    if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = TASSA_ESTORE;
out:
    store_release(e->store, st);
    store_unlock(e->store);
    if (err) {
        json_decref(*items);
        *items = NULL;
    }
    return err;
}

tassa_err tr_fetch_row(tr_engine_t *e, json_t *(*load)(tr_engine_t *, const char *),
                       json_t *(*render)(tr_engine_t *, const json_t *, const char *),
                       const char *what, const char *sid, const char *base_url, json_t **out,
                       errmsg_t *em)
{
    *out = NULL;
    store_lock(e->store);
    json_t *row = load(e, sid);
    store_unlock(e->store);
    if (!row)
        return tr_not_found(e, em, what, sid);
    *out = render(e, row, base_url);
    json_decref(row);
    return *out ? TASSA_OK : TASSA_ENOMEM;
}

tassa_err tr_render_row(tr_engine_t *e, json_t *(*load)(tr_engine_t *, const char *),
                        json_t *(*render)(tr_engine_t *, const json_t *, const char *),
                        const char *sid, const char *base_url, json_t **out)
{
    if (!out)
        return TASSA_OK;
    json_t *row = load(e, sid);
    *out = row ? render(e, row, base_url) : NULL;
    json_decref(row);
    return *out ? TASSA_OK : TASSA_ENOMEM;
}

tassa_err tr_txn_end_out(tr_engine_t *e, tassa_err err, json_t **out)
{
    err = tr_txn_end(e, err);
    if (err && out) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}
