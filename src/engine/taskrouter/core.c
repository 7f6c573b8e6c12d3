/* core.c - what every part of the TaskRouter engine stands on: transactions, terse SQL
 * (prepare, bind by a type string, step), lists with paging, the 404 and JSON building blocks.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/timefmt.h"

sqlite3_stmt *db_vquery(store_t *s, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *st = store_prepare(s, sql);
    if (!st)
        return NULL;
    for (int i = 0; types && types[i]; i++) {
        int rc = SQLITE_OK;
        switch (types[i]) {
        case 's': {
            const char *v = va_arg(ap, const char *);
            rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'd': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int)); break;
        default: rc = SQLITE_MISUSE;
        }
        if (rc != SQLITE_OK) {
            log_error("event=tr_bind_failed index=%d sql=\"%.80s\"", i + 1, sql);
            store_release(s, st);
            return NULL;
        }
    }
    return st;
}

sqlite3_stmt *db_query(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    return st;
}

tassa_err db_exec(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    if (!st)
        return TASSA_ESTORE;
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        log_error("event=tr_exec_failed err=\"%s\" sql=\"%.80s\"",
                  sqlite3_errmsg(sqlite3_db_handle(st)), sql);
    store_release(s, st);
    return rc == SQLITE_DONE ? TASSA_OK : TASSA_ESTORE;
}

json_t *db_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(st);
    for (int i = 0; o && i < n; i++) {
        json_t *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
        case SQLITE_NULL: v = json_null(); break;
        default:
            v = json_stringn((const char *)sqlite3_column_text(st, i),
                             (size_t)sqlite3_column_bytes(st, i));
        }
        if (!v || json_object_set_new(o, sqlite3_column_name(st, i), v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *db_one(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    json_t *row = NULL;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        row = db_row(st);
    store_release(s, st);
    return row;
}

json_t *db_all(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    json_t *arr = json_array();
    while (arr && st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *row = db_row(st);
        if (!row || json_array_append_new(arr, row)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    store_release(s, st);
    return arr;
}

int64_t db_int(store_t *s, int64_t def, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    int64_t v = def;
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    store_release(s, st);
    return v;
}

const char *row_str(const json_t *row, const char *key)
{
    return json_string_value(json_object_get(row, key));
}

int64_t row_int(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    if (json_is_true(v))
        return 1;
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

tassa_err tr_txn_begin(tr_engine_t *e)
{
    store_lock(e->store);
    if (store_begin(e->store)) {
        (void)store_unlock(e->store);
        return TASSA_ESTORE;
    }
    return TASSA_OK;
}

tassa_err tr_txn_end(tr_engine_t *e, tassa_err err)
{
    if (err)
        store_rollback(e->store);
    else
        err = store_commit(e->store);
    /* The group commit makes the change durable before store_unlock returns. */
    tassa_err durable = store_unlock(e->store);
    if (!err)
        err = durable;
    if (!err)
        tr_kick(e);
    return err;
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

void tr_kick(tr_engine_t *e)
{
    pthread_mutex_lock(&e->mu);
    e->timer_gen++;
    e->event_gen++;
    pthread_cond_broadcast(&e->timer_cond);
    pthread_cond_broadcast(&e->event_cond);
    pthread_mutex_unlock(&e->mu);
}

tassa_err tr_not_found(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid)
{
    return err_set(em, TASSA_ENOTFOUND,
                   "The requested resource /Workspaces/%s/%s/%.64s was not found", e->ws_sid, what,
                   sid ? sid : "");
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

json_t *tr_jstr(const char *v)
{
    return v ? json_string(v) : json_null();
}

json_t *tr_jdate(int64_t ms)
{
    char buf[TIMEFMT_LEN];
    timefmt_iso(ms, buf);
    return json_string(buf);
}

json_t *row_jstr(const json_t *row, const char *key)
{
    return tr_jstr(row_str(row, key));
}

json_t *row_jdate(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    return json_is_integer(v) ? tr_jdate(json_integer_value(v)) : json_null();
}

json_t *tr_url(tr_engine_t *e, const char *base, const char *fmt, ...)
{
    char buf[640];
    int n = snprintf(buf, sizeof buf, "%s/v1/Workspaces/%s", base, e->ws_sid);
    if (n < 0 || (size_t)n >= sizeof buf)
        return json_null();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    return json_string(buf);
}

json_t *tr_json_new(tr_engine_t *e)
{
    json_t *j = json_object();
    if (j) {
        json_object_set_new(j, "account_sid", json_string(e->account_sid));
        json_object_set_new(j, "workspace_sid", json_string(e->ws_sid));
    }
    return j;
}
