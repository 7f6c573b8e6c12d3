/* core.c - what every part of the TaskRouter engine stands on: transactions, terse SQL
 * (prepare, bind by a type string, step), the 404 and the JSON building blocks.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/core.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/timefmt.h"

store_stmt_t *db_vquery(store_t *s, const char *sql, const char *types, va_list ap)
{
    store_stmt_t *st = store_prepare(s, sql);
    if (!st)
        return NULL;
    for (int i = 0; types && types[i]; i++) {
        tassa_err rc = TASSA_OK;
        switch (types[i]) {
        case 's': rc = store_bind_text_copy(st, i + 1, va_arg(ap, const char *)); break;
        case 'i': rc = store_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'd': rc = store_bind_int64(st, i + 1, va_arg(ap, int)); break;
        default: rc = TASSA_EINVAL;
        }
        if (rc != TASSA_OK) {
            log_error("event=tr_bind_failed index=%d sql=\"%.80s\"", i + 1, sql);
            store_release(s, st);
            return NULL;
        }
    }
    return st;
}

store_stmt_t *db_query(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    store_stmt_t *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    return st;
}

tassa_err db_exec(store_t *s, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    store_stmt_t *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    if (!st)
        return TASSA_ESTORE;
    int rc = store_step(st);
    while (rc == STORE_ROW)
        rc = store_step(st);
    if (rc != STORE_DONE)
        log_error("event=tr_exec_failed err=\"%s\" sql=\"%.80s\"", store_errmsg(s), sql);
    store_release(s, st);
    return rc == STORE_DONE ? TASSA_OK : TASSA_ESTORE;
}

int64_t db_int(store_t *s, int64_t def, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    store_stmt_t *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    int64_t v = def;
    if (st && store_step(st) == STORE_ROW && !store_col_is_null(st, 0))
        v = store_col_int64(st, 0);
    store_release(s, st);
    return v;
}

tassa_err db_sids(store_t *s, tr_sids_t *out, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    store_stmt_t *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    size_t cap = 0;
    tassa_err err = st ? TASSA_OK : TASSA_ESTORE;
    int rc;
    out->sid = NULL;
    out->n = 0;
    while (!err && (rc = store_step(st)) == STORE_ROW) {
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            void *p = realloc(out->sid, ncap * sizeof *out->sid);
            if (!p) {
                err = TASSA_ENOMEM;
                break;
            }
            out->sid = p;
            cap = ncap;
        }
        const char *v = store_col_text(st, 0);
        snprintf(out->sid[out->n++], SID_LEN + 1, "%s", v ? v : "");
    }
    if (!err && rc != STORE_DONE)
        err = TASSA_ESTORE;
    store_release(s, st);
    if (err) {
        free(out->sid);
        out->sid = NULL;
        out->n = 0;
    }
    return err;
}

bool db_sid(store_t *s, char out[SID_LEN + 1], const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    store_stmt_t *st = db_vquery(s, sql, types, ap);
    va_end(ap);
    bool found = st && store_step(st) == STORE_ROW && store_col_text(st, 0);
    if (found)
        snprintf(out, SID_LEN + 1, "%s", store_col_text(st, 0));
    store_release(s, st);
    return found;
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

tassa_err tr_txn_commit(tr_engine_t *e, tassa_err err)
{
    if (err)
        store_rollback(e->store);
    else
        err = store_commit(e->store);
    /* The group commit makes the change durable before store_unlock returns. */
    tassa_err durable = store_unlock(e->store);
    /* a storage failure explains whatever else the section concluded (an "absent" row) */
    return durable == TASSA_ESTORE ? TASSA_ESTORE : err ? err : durable;
}

/* What tr_txn_later keeps until the section's end: one per thread, since a section runs on
 * the thread that took the lock. */
static _Thread_local struct {
    void *arg; /* NULL: nothing kept */
    json_t *(*render)(void *arg);
    void (*drop)(void *arg);
    json_t **out;
} later;

/* Renders what tr_txn_later kept for out into *out when err is TASSA_OK (TASSA_ENOMEM when that
 * fails), drops it otherwise; returns err. */
static tassa_err render_later(tassa_err err, json_t **out)
{
    void *arg = later.arg;
    later.arg = NULL;
    if (!arg)
        return err;
    if (err || !out || later.out != out)
        later.drop(arg);
    else if (!(*out = later.render(arg)))
        err = TASSA_ENOMEM;
    return err;
}

void tr_txn_later(void *arg, json_t *(*render)(void *arg), void (*drop)(void *arg), json_t **out)
{
    if (later.arg)
        later.drop(later.arg);
    later.arg = arg;
    later.render = render;
    later.drop = drop;
    later.out = out;
}

/* tr_txn_end, keeping what tr_txn_later kept. */
static tassa_err txn_end(tr_engine_t *e, tassa_err err)
{
    /* The lease holder may be another node: tell it (delivered at commit, dropped on
     * rollback). A lost notification costs at most the holder's one-second look. */
    if (!err && store_shared(e->store))
        err = store_notify(e->store, TR_CHANNEL, e->notice);
    err = tr_txn_commit(e, err);
    if (!err)
        tr_kick(e);
    return err;
}

tassa_err tr_txn_begin_row(tr_engine_t *e, const char *table, const char *what, const char *sid,
                           errmsg_t *em)
{
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE sid = ?", table);
    tassa_err err = tr_txn_begin(e);
    if (!err && db_int(e->store, 0, sql, "s", sid) != 1)
        err = tr_txn_commit(e, tr_missing_locked(e, em, what, sid));
    return err;
}

tassa_err tr_txn_end(tr_engine_t *e, tassa_err err)
{
    return render_later(txn_end(e, err), NULL);
}

tassa_err tr_txn_end_out(tr_engine_t *e, tassa_err err, json_t **out)
{
    err = render_later(txn_end(e, err), out); /* rendered outside the store lock */
    if (err && out) {
        json_decref(*out);
        *out = NULL;
    }
    return err;
}

int64_t tr_now_ms(const tr_engine_t *e)
{
    return store_now_ms() + atomic_load(&e->clock_offset_ms);
}

void tr_engine_advance_clock(tr_engine_t *e, int64_t ms)
{
    assert(ms >= 0);
    atomic_fetch_add(&e->clock_offset_ms, ms);
    tr_kick(e);
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

tassa_err tr_missing_locked(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid)
{
    if (db_int(e->store, 0, "SELECT 1", NULL) != 1)
        return TASSA_ESTORE;
    return tr_not_found(e, em, what, sid);
}

tassa_err tr_not_found(tr_engine_t *e, errmsg_t *em, const char *what, const char *sid)
{
    return err_set(em, TASSA_ENOTFOUND,
                   "The requested resource /Workspaces/%s/%s/%.64s was not found", e->ws_sid, what,
                   sid ? sid : "");
}

json_t *tr_jstr(const char *v)
{
    return v ? json_string(v) : json_null();
}

json_t *tr_jdate(int64_t ms)
{
    if (ms < 0)
        return json_null();
    char buf[TIMEFMT_LEN];
    timefmt_iso(ms, buf);
    return json_string(buf);
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

json_t *tr_json_new(tr_engine_t *e, const char *sid)
{
    json_t *j = json_object();
    if (j) {
        json_object_set_new(j, "account_sid", json_string(e->account_sid));
        json_object_set_new(j, "workspace_sid", json_string(e->ws_sid));
        json_object_set_new(j, "sid", tr_jstr(sid));
    }
    return j;
}
