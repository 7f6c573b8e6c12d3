/* rows.c - the rows of the TaskRouter tables as typed structs: one column table per resource
 * ties its SELECT head (rows.h) to its struct, and one reader serves them all.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/rows.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { COL_TEXT, COL_INT, COL_BOOL } col_kind_t;

typedef struct {
    size_t off;
    col_kind_t kind;
} col_t;

struct tr_rowtype {
    const col_t *cols;
    size_t n, size;
    const char *by_sid;        /* the SELECT of one row by SID */
    bool (*finish)(void *row); /* completes a row read (NULL: none); false on OOM */
};

#define T(type, f)                                                                                 \
    {                                                                                              \
        offsetof(type, f), COL_TEXT                                                                \
    }
#define I(type, f)                                                                                 \
    {                                                                                              \
        offsetof(type, f), COL_INT                                                                 \
    }
#define B(type, f)                                                                                 \
    {                                                                                              \
        offsetof(type, f), COL_BOOL                                                                \
    }
#define ROWTYPE(c, t, sql)                                                                         \
    {                                                                                              \
        c, sizeof c / sizeof c[0], sizeof(t), sql, NULL                                            \
    }

/* Each table lists the columns of its SELECT head in rows.h, in order. */
static const col_t WORKSPACE_COLS[] = {
    T(tr_workspace_t, sid),
    T(tr_workspace_t, friendly_name),
    T(tr_workspace_t, event_callback_url),
    T(tr_workspace_t, events_filter),
    T(tr_workspace_t, prioritize_queue_order),
    T(tr_workspace_t, default_activity_sid),
    T(tr_workspace_t, default_activity_name),
    T(tr_workspace_t, timeout_activity_sid),
    T(tr_workspace_t, timeout_activity_name),
    B(tr_workspace_t, multi_task_enabled),
    I(tr_workspace_t, date_created),
    I(tr_workspace_t, date_updated),
};
static const col_t ACTIVITY_COLS[] = {
    T(tr_activity_t, sid),          T(tr_activity_t, friendly_name), B(tr_activity_t, available),
    I(tr_activity_t, date_created), I(tr_activity_t, date_updated),
};
static const col_t WORKER_COLS[] = {
    T(tr_worker_t, sid),
    T(tr_worker_t, friendly_name),
    T(tr_worker_t, attributes),
    T(tr_worker_t, activity_sid),
    T(tr_worker_t, activity_name),
    B(tr_worker_t, available),
    I(tr_worker_t, date_created),
    I(tr_worker_t, date_updated),
    I(tr_worker_t, date_status_changed),
    I(tr_worker_t, idle_since),
};
_Static_assert(sizeof WORKER_COLS / sizeof WORKER_COLS[0] == TR_WORKER_NCOLS, "TR_WORKER_NCOLS");
static const col_t QUEUE_COLS[] = {
    T(tr_queue_t, sid),
    T(tr_queue_t, friendly_name),
    T(tr_queue_t, target_workers),
    T(tr_queue_t, task_order),
    T(tr_queue_t, reservation_activity_sid),
    T(tr_queue_t, reservation_activity_name),
    T(tr_queue_t, assignment_activity_sid),
    T(tr_queue_t, assignment_activity_name),
    I(tr_queue_t, max_reserved_workers),
    I(tr_queue_t, date_created),
    I(tr_queue_t, date_updated),
};
static const col_t WORKFLOW_COLS[] = {
    T(tr_workflow_t, sid),
    T(tr_workflow_t, friendly_name),
    T(tr_workflow_t, configuration),
    T(tr_workflow_t, assignment_callback_url),
    T(tr_workflow_t, fallback_assignment_callback_url),
    I(tr_workflow_t, task_reservation_timeout),
    I(tr_workflow_t, date_created),
    I(tr_workflow_t, date_updated),
};
static const col_t TASK_COLS[] = {
    T(tr_task_t, sid),          T(tr_task_t, attributes),       T(tr_task_t, status),
    T(tr_task_t, reason),       T(tr_task_t, channel),          T(tr_task_t, workflow_sid),
    T(tr_task_t, queue_sid),    T(tr_task_t, filter_name),      T(tr_task_t, queue_name),
    T(tr_task_t, task_order),   T(tr_task_t, workflow_name),    I(tr_task_t, seq),
    I(tr_task_t, priority),     I(tr_task_t, timeout),          I(tr_task_t, filter_index),
    I(tr_task_t, target_index), I(tr_task_t, queue_entered_ms), I(tr_task_t, target_deadline),
    I(tr_task_t, ttl_deadline), I(tr_task_t, date_created),     I(tr_task_t, date_updated),
};
static const col_t RES_COLS[] = {
    T(tr_reservation_t, sid),          T(tr_reservation_t, task_sid),
    T(tr_reservation_t, worker_sid),   T(tr_reservation_t, status),
    T(tr_reservation_t, worker_name),  I(tr_reservation_t, deadline),
    I(tr_reservation_t, date_created), I(tr_reservation_t, date_updated),
};
static const col_t EVENT_COLS[] = {
    T(tr_event_t, sid),          T(tr_event_t, event_type),      T(tr_event_t, resource_type),
    T(tr_event_t, resource_sid), T(tr_event_t, description),     T(tr_event_t, task_sid),
    T(tr_event_t, worker_sid),   T(tr_event_t, reservation_sid), T(tr_event_t, queue_sid),
    T(tr_event_t, workflow_sid), T(tr_event_t, params),          I(tr_event_t, seq),
    I(tr_event_t, date_ms),      I(tr_event_t, wait_ms),         T(tr_event_t, base),
    T(tr_event_t, members),
};

/* The parameters that are columns of an event row, in no particular order. */
const char *const TR_EVENT_COLUMN_KEYS[TR_EVENT_COLUMN_N] = {
    "Sid",       "EventType",  "ResourceType", "ResourceSid", "EventDescription",
    "Timestamp", "TimestampMs"};

bool tr_event_column_key(const char *k)
{
    for (size_t i = 0; i < TR_EVENT_COLUMN_N; i++)
        if (!strcmp(k, TR_EVENT_COLUMN_KEYS[i]))
            return true;
    return false;
}

char *tr_event_default_description(const char *rtype, const char *rsid, const char *type)
{
    size_t n = strlen(rtype ? rtype : "") + strlen(rsid ? rsid : "") + strlen(type ? type : "");
    char *buf = malloc(n + 3);
    if (buf)
        snprintf(buf, n + 3, "%s %s %s", rtype ? rtype : "", rsid ? rsid : "", type ? type : "");
    return buf;
}

/* The JSON string literal of v as json_dumps writes it (malloc'd; NULL on OOM): quoted as it
 * is when it holds only printable ASCII other than quote and backslash, else jansson's. */
static char *literal(const char *v)
{
    size_t n = 0;
    bool plain = true;
    for (; v[n]; n++)
        if ((unsigned char)v[n] < 0x20 || (unsigned char)v[n] > 0x7e || v[n] == '"' || v[n] == '\\')
            plain = false;
    if (!plain) {
        json_t *s = json_string(v);
        char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        json_decref(s);
        return text;
    }
    char *text = malloc(n + 3);
    if (text) {
        text[0] = '"';
        memcpy(text + 1, v, n);
        text[n + 1] = '"';
        text[n + 2] = '\0';
    }
    return text;
}

/* The merge of an empty delta without parsing: base_text with each column key's empty value
 * ("Key":"", which outside a string only a top-level key can be) replaced by the row's
 * value, JSON-escaped. NULL when a column key is not there in that form (or on OOM): then
 * the parsing merge decides. */
static char *merge_columns(const char *base_text, const char *const cols[][2], size_t n)
{
    const char *at[TR_EVENT_COLUMN_N];
    char *lit[TR_EVENT_COLUMN_N] = {0}, *out = NULL;
    size_t len = strlen(base_text), k;
    bool ok = n <= TR_EVENT_COLUMN_N;
    for (k = 0; ok && k < n; k++) {
        char pat[48];
        snprintf(pat, sizeof pat, "\"%s\":\"\"", cols[k][0]);
        lit[k] = cols[k][1] ? literal(cols[k][1]) : NULL;
        at[k] = strstr(base_text, pat);
        ok = at[k] && lit[k];
        if (ok) {
            at[k] += strlen(pat) - 2; /* at the empty "" */
            len += strlen(lit[k]) - 2;
        }
    }
    if (ok && (out = malloc(len + 1))) {
        char *o = out;
        for (const char *p = base_text; *p;) {
            size_t next = SIZE_MAX;
            for (k = 0; k < n; k++) /* the nearest column value from p on */
                if (at[k] >= p && (next == SIZE_MAX || at[k] < at[next]))
                    next = k;
            size_t upto = next == SIZE_MAX ? strlen(p) : (size_t)(at[next] - p);
            memcpy(o, p, upto);
            o += upto;
            p += upto;
            if (next != SIZE_MAX) {
                size_t l = strlen(lit[next]);
                memcpy(o, lit[next], l);
                o += l;
                p += 2; /* the empty "" */
            }
        }
        *o = '\0';
    }
    for (k = 0; k < TR_EVENT_COLUMN_N; k++)
        free(lit[k]);
    return out;
}

char *tr_event_merge(const char *base_text, const char *delta_text, const tr_event_t *r)
{
    /* The keys whose values are the row's columns. */
    char ts[24], ms[24];
    snprintf(ts, sizeof ts, "%lld", (long long)(r->date_ms / 1000));
    snprintf(ms, sizeof ms, "%lld", (long long)r->date_ms);
    const char *cols[][2] = {{"Sid", r->sid},
                             {"EventType", r->event_type},
                             {"ResourceType", r->resource_type},
                             {"ResourceSid", r->resource_sid ? r->resource_sid : ""},
                             {"EventDescription", r->description},
                             {"Timestamp", ts},
                             {"TimestampMs", ms}};
    if (!strcmp(delta_text, "{}")) {
        char *fast = merge_columns(base_text, cols, sizeof cols / sizeof cols[0]);
        if (fast)
            return fast;
    }
    json_t *base = json_loads(base_text, 0, NULL), *delta = json_loads(delta_text, 0, NULL);
    json_t *out = json_object(), *v;
    char *text = NULL;
    const char *k;
    if (!json_is_object(base) || !json_is_object(delta) || !out)
        goto out;
    json_object_foreach(base, k, v)
    {
        json_t *dv = json_object_get(delta, k);
        if (!json_is_null(dv))
            json_object_set(out, k, dv ? dv : v);
    }
    json_object_foreach(delta, k, v)
    {
        if (*k && !json_is_null(v) && !json_object_get(base, k))
            json_object_set(out, k, v);
    }
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (json_object_get(out, cols[i][0]) && cols[i][1])
            json_object_set_new(out, cols[i][0], json_string(cols[i][1]));
    json_t *order = json_object_get(delta, "");
    if (json_is_array(order)) {
        json_t *sorted = json_object();
        size_t i;
        json_array_foreach(order, i, v)
        {
            json_t *x = json_object_get(out, json_string_value(v) ? json_string_value(v) : "");
            if (sorted && x)
                json_object_set(sorted, json_string_value(v), x);
        }
        json_decref(out);
        out = sorted;
    }
    text = out ? json_dumps(out, JSON_COMPACT) : NULL;
out:
    json_decref(base);
    json_decref(delta);
    json_decref(out);
    return text;
}

/* Fills a NULL description with the default one (cheap: no JSON). */
static bool event_describe(void *row)
{
    tr_event_t *r = row;
    return r->description || (r->description = tr_event_default_description(
                                  r->resource_type, r->resource_sid, r->event_type));
}

bool tr_event_row_merge(tr_event_t *r)
{
    if (!r->base)
        return true;
    char *whole = tr_event_merge(r->base, r->params ? r->params : "{}", r);
    if (!whole)
        return false;
    free(r->params);
    r->params = whole;
    free(r->base);
    r->base = NULL;
    return true;
}

const char *tr_event_resource_type(const char *type)
{
    if (!strncmp(type, "reservation.", 12))
        return "Reservation";
    if (!strncmp(type, "task-queue.", 11))
        return "TaskQueue";
    if (!strncmp(type, "workflow.", 9))
        return "Workflow";
    return "Task";
}

const char *tr_event_resource_sid(const char *rtype, const char *task_sid, const char *queue_sid,
                                  const char *workflow_sid, const char *reservation_sid)
{
    if (!strcmp(rtype, "Reservation"))
        return reservation_sid;
    if (!strcmp(rtype, "TaskQueue"))
        return queue_sid;
    if (!strcmp(rtype, "Workflow"))
        return workflow_sid;
    return task_sid;
}

/* A member's number as the last digit of its SID. */
static const char MEMBER_DIGITS[] = "0123456789abcdef";

void tr_event_member_sid(char sid[SID_LEN + 1], size_t k)
{
    sid[SID_LEN - 1] = MEMBER_DIGITS[k & 15];
}

size_t tr_event_count(const tr_event_t *r)
{
    size_t n = 1;
    for (const char *p = r->members; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n++;
    return n;
}

/* A copy of s (NULL stays NULL); *ok turns false on OOM. */
static char *dup_or_null(const char *s, bool *ok)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *ok = false;
    return d;
}

bool tr_event_nth(const tr_event_t *r, size_t k, tr_event_t *out)
{
    const char *line = k ? r->members : NULL, *tab = NULL;
    for (size_t i = 1; line && i < k; i++) /* the member's line */
        if ((line = strchr(line, '\n')))
            line++;
    if (k > TR_EVENT_MEMBERS_MAX || (k && (!line || !*line || !(tab = strchr(line, '\t')))))
        return false;
    bool ok = true;
    *out = (tr_event_t){.seq = r->seq, .date_ms = r->date_ms, .wait_ms = k ? -1 : r->wait_ms};
    out->sid = dup_or_null(r->sid, &ok);
    out->task_sid = dup_or_null(r->task_sid, &ok);
    out->worker_sid = dup_or_null(r->worker_sid, &ok);
    out->reservation_sid = dup_or_null(r->reservation_sid, &ok);
    out->queue_sid = dup_or_null(r->queue_sid, &ok);
    out->workflow_sid = dup_or_null(r->workflow_sid, &ok);
    out->base = dup_or_null(r->base, &ok);
    if (!k) {
        out->event_type = dup_or_null(r->event_type, &ok);
        out->resource_type = dup_or_null(r->resource_type, &ok);
        out->resource_sid = dup_or_null(r->resource_sid, &ok);
        out->description = dup_or_null(r->description, &ok);
        out->params = dup_or_null(r->params, &ok);
    } else {
        const char *end = strchr(tab, '\n');
        out->event_type = ok ? strndup(line, (size_t)(tab - line)) : NULL;
        out->params = ok ? strndup(tab + 1, end ? (size_t)(end - tab - 1) : strlen(tab + 1)) : NULL;
        ok = ok && out->event_type && out->params;
        const char *rtype = ok ? tr_event_resource_type(out->event_type) : "Task";
        out->resource_type = dup_or_null(rtype, &ok);
        out->resource_sid = dup_or_null(tr_event_resource_sid(rtype, r->task_sid, r->queue_sid,
                                                              r->workflow_sid, r->reservation_sid),
                                        &ok);
        if (out->sid && strlen(out->sid) == SID_LEN)
            tr_event_member_sid(out->sid, k);
    }
    if (!ok || !event_describe(out)) {
        rows_clear(&TR_EVENT_RAW_ROW, out);
        return false;
    }
    return true;
}

size_t tr_event_group_sid(const char *sid, char head[SID_LEN + 1])
{
    if (!sid || strlen(sid) != SID_LEN)
        return 0;
    const char *d = strchr(MEMBER_DIGITS, sid[SID_LEN - 1]);
    if (!d || !*d || d == MEMBER_DIGITS)
        return 0;
    memcpy(head, sid, SID_LEN);
    head[SID_LEN - 1] = '0';
    head[SID_LEN] = '\0';
    return (size_t)(d - MEMBER_DIGITS);
}

const tr_rowtype_t TR_WORKSPACE_ROW =
    ROWTYPE(WORKSPACE_COLS, tr_workspace_t, TR_WORKSPACE_SELECT "WHERE ws.sid = ?");
const tr_rowtype_t TR_ACTIVITY_ROW =
    ROWTYPE(ACTIVITY_COLS, tr_activity_t, TR_ACTIVITY_SELECT "WHERE sid = ?");
const tr_rowtype_t TR_WORKER_ROW =
    ROWTYPE(WORKER_COLS, tr_worker_t, TR_WORKER_SELECT "WHERE w.sid = ?");
const tr_rowtype_t TR_QUEUE_ROW =
    ROWTYPE(QUEUE_COLS, tr_queue_t, TR_QUEUE_SELECT "WHERE q.sid = ?");
const tr_rowtype_t TR_WORKFLOW_ROW =
    ROWTYPE(WORKFLOW_COLS, tr_workflow_t, TR_WORKFLOW_SELECT "WHERE sid = ?");
const tr_rowtype_t TR_TASK_ROW = ROWTYPE(TASK_COLS, tr_task_t, TR_TASK_SELECT "WHERE t.sid = ?");
const tr_rowtype_t TR_RES_ROW =
    ROWTYPE(RES_COLS, tr_reservation_t, TR_RES_SELECT "WHERE r.sid = ?");
const tr_rowtype_t TR_EVENT_RAW_ROW = {EVENT_COLS, sizeof EVENT_COLS / sizeof EVENT_COLS[0],
                                       sizeof(tr_event_t), TR_EVENT_SELECT "WHERE ev.sid = ?",
                                       event_describe};

void rows_clear(const tr_rowtype_t *type, void *row)
{
    for (size_t i = 0; i < type->n; i++)
        if (type->cols[i].kind == COL_TEXT)
            free(*(char **)((char *)row + type->cols[i].off));
    memset(row, 0, type->size);
}

bool rows_read(const tr_rowtype_t *type, store_stmt_t *st, void *row)
{
    for (size_t i = 0; i < type->n; i++) {
        char *field = (char *)row + type->cols[i].off;
        bool null = store_col_is_null(st, (int)i);
        switch (type->cols[i].kind) {
        case COL_TEXT:
            if (!null) {
                const char *v = store_col_text(st, (int)i);
                if (!v || !(*(char **)field = strdup(v))) {
                    rows_clear(type, row);
                    return false;
                }
            }
            break;
        case COL_INT: *(int64_t *)field = null ? -1 : store_col_int64(st, (int)i); break;
        case COL_BOOL: *(bool *)field = !null && store_col_int64(st, (int)i) != 0; break;
        }
    }
    if (type->finish && !type->finish(row)) {
        rows_clear(type, row);
        return false;
    }
    return true;
}

/* rows_one with a va_list. */
static bool vone(tr_engine_t *e, const tr_rowtype_t *type, void *row, const char *sql,
                 const char *types, va_list ap)
{
    store_stmt_t *st = db_vquery(e->store, sql, types, ap);
    bool found = st && store_step(st) == STORE_ROW && rows_read(type, st, row);
    store_release(e->store, st);
    return found;
}

bool rows_one(tr_engine_t *e, const tr_rowtype_t *type, void *row, const char *sql,
              const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    bool found = vone(e, type, row, sql, types, ap);
    va_end(ap);
    return found;
}

void *rows_push(const tr_rowtype_t *type, void **rows, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        void *grown = realloc(*rows, c * type->size);
        if (!grown)
            return NULL;
        *rows = grown;
        *cap = c;
    }
    void *row = (char *)*rows + (*n)++ * type->size;
    memset(row, 0, type->size);
    return row;
}

tassa_err rows_all(tr_engine_t *e, const tr_rowtype_t *type, void **rows, size_t *n,
                   const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    store_stmt_t *st = db_vquery(e->store, sql, types, ap);
    va_end(ap);
    size_t cap = 0;
    void *arr = NULL;
    tassa_err err = st ? TASSA_OK : TASSA_ESTORE;
    int rc = STORE_DONE;
    *n = 0;
    while (!err && (rc = store_step(st)) == STORE_ROW) {
        void *row = rows_push(type, &arr, n, &cap); /* left empty when the read fails */
        if (!row || !rows_read(type, st, row))
            err = TASSA_ENOMEM;
    }
    if (!err && rc != STORE_DONE)
        err = TASSA_ESTORE;
    store_release(e->store, st);
    if (err) {
        rows_free(type, arr, *n);
        arr = NULL;
        *n = 0;
    }
    *rows = arr;
    return err;
}

void rows_free(const tr_rowtype_t *type, void *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        rows_clear(type, (char *)rows + i * type->size);
    free(rows);
}

bool rows_load(tr_engine_t *e, const tr_rowtype_t *type, const char *sid, void *row)
{
    return rows_one(e, type, row, type->by_sid, "s", sid);
}

bool tr_workspace_load(tr_engine_t *e, tr_workspace_t *out)
{
    return rows_load(e, &TR_WORKSPACE_ROW, e->ws_sid, out);
}

/* The typed loaders of rows.h, each rows_load with its row type. */
#define LOADER(name, type, rowtype)                                                                \
    bool name(tr_engine_t *e, const char *sid, type *out)                                          \
    {                                                                                              \
        return rows_load(e, &rowtype, sid, out);                                                   \
    }
LOADER(tr_activity_load, tr_activity_t, TR_ACTIVITY_ROW)
LOADER(tr_worker_load, tr_worker_t, TR_WORKER_ROW)
LOADER(tr_queue_load, tr_queue_t, TR_QUEUE_ROW)
LOADER(tr_workflow_load, tr_workflow_t, TR_WORKFLOW_ROW)
LOADER(tr_task_load, tr_task_t, TR_TASK_ROW)
LOADER(tr_reservation_load, tr_reservation_t, TR_RES_ROW)

tassa_err tr_fetch(tr_engine_t *e, const tr_rowtype_t *type, tr_render_fn render, void *ctx,
                   const char *what, const char *sid, json_t **out, errmsg_t *em)
{
    *out = NULL;
    void *row = calloc(1, type->size);
    if (!row)
        return TASSA_ENOMEM;
    store_lock(e->store);
    bool found = rows_load(e, type, sid, row);
    tassa_err missing = found ? TASSA_OK : tr_missing_locked(e, em, what, sid);
    tassa_err err = store_unlock(e->store);
    if (!err && !missing && !(*out = render(ctx, row))) /* rendered outside the lock */
        err = TASSA_ENOMEM;
    rows_clear(type, row);
    free(row);
    return err ? err : missing; /* a lost connection explains an "absent" row */
}

/* A render tr_render_locked keeps for the end of the section (tr_txn_later). */
typedef struct {
    const tr_rowtype_t *type;
    tr_render_fn render;
    void *row; /* loaded */
    _Alignas(max_align_t) unsigned char ctx[TR_RENDER_CTX_MAX];
} later_t;

static void later_drop(void *arg)
{
    later_t *l = arg;
    rows_clear(l->type, l->row);
    free(l->row);
    free(l);
}

static json_t *later_render(void *arg)
{
    later_t *l = arg;
    json_t *j = l->render(l->ctx, l->row);
    later_drop(l);
    return j;
}

tassa_err tr_render_locked(tr_engine_t *e, const tr_rowtype_t *type, tr_render_fn render, void *ctx,
                           size_t ctx_size, const char *sid, json_t **out)
{
    if (!out)
        return TASSA_OK;
    assert(ctx_size <= TR_RENDER_CTX_MAX);
    later_t *l = ctx_size <= TR_RENDER_CTX_MAX ? calloc(1, sizeof *l) : NULL;
    if (!l || !(l->row = calloc(1, type->size)) || !rows_load(e, type, sid, l->row)) {
        if (l && l->row)
            rows_clear(type, l->row);
        free(l ? l->row : NULL);
        free(l);
        return TASSA_ENOMEM;
    }
    l->type = type;
    l->render = render;
    memcpy(l->ctx, ctx, ctx_size);
    tr_txn_later(l, later_render, later_drop, out);
    return TASSA_OK;
}

tassa_err tr_list(tr_engine_t *e, const tr_rowtype_t *type, tr_pred_fn pred, tr_render_fn render,
                  void *ctx, long offset, long limit, json_t **items, bool *more, const char *sql,
                  const char *types, ...)
{
    tassa_err err = TASSA_OK;
    void *rows = NULL, *row = calloc(1, type->size);
    size_t n = 0, cap = 0;
    *more = false;
    *items = NULL;
    if (!row)
        return TASSA_ENOMEM;
    /* The page's rows are read under the lock and rendered after it. */
    store_lock(e->store);
    va_list ap;
    va_start(ap, types);
    store_stmt_t *st = db_vquery(e->store, sql, types, ap);
    va_end(ap);
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    long seen = 0;
    int rc;
    while ((rc = store_step(st)) == STORE_ROW) {
        if (!rows_read(type, st, row)) {
            err = TASSA_ENOMEM;
            break;
        }
        bool ok = !pred || pred(ctx, row);
        if (ok && seen >= offset + limit) {
            *more = true;
            rows_clear(type, row);
            break;
        }
        if (ok && seen++ >= offset) {
            void *kept = rows_push(type, &rows, &n, &cap);
            if (kept) {
                memcpy(kept, row, type->size); /* its text moves with it */
                memset(row, 0, type->size);
            } else {
                err = TASSA_ENOMEM;
            }
        }
        rows_clear(type, row);
        if (err)
            break;
    }
    if (!err && rc != STORE_ROW && rc != STORE_DONE)
        err = TASSA_ESTORE;
out:
    store_release(e->store, st);
    store_unlock(e->store);
    free(row);
    if (!err && !(*items = json_array()))
        err = TASSA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        void *r = (char *)rows + i * type->size;
        json_t *j = err ? NULL : render(ctx, r);
        if (!err && (!j || json_array_append_new(*items, j)))
            err = TASSA_ENOMEM;
        rows_clear(type, r);
    }
    free(rows);
    if (err) {
        json_decref(*items);
        *items = NULL;
    }
    return err;
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

json_t *tr_worker_subject(const tr_worker_t *w)
{
    json_t *s = tr_parse_attributes(w->attributes);
    if (!s)
        return NULL;
    json_object_set_new(s, "sid", tr_jstr(w->sid));
    json_object_set_new(s, "friendly_name", tr_jstr(w->friendly_name));
    json_object_set_new(s, "activity_sid", tr_jstr(w->activity_sid));
    json_object_set_new(s, "activity_name", tr_jstr(w->activity_name));
    return s;
}

bool tr_worker_in_queue(const json_t *subject, const expr_t *q_expr)
{
    return expr_eval(q_expr, &(expr_ctx_t){.subject = subject, .worker = subject});
}
