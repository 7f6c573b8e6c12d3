/* tasks.c - tasks: create (routed through the workflow), update (status transitions,
 * attributes, priority), delete, list, the back end's reads, and their JSON.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/task_order.h"
#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/lifecycle.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"

/* A task as Twilio's JSON (its age as of now). New reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_task_t *r, const char *base, int64_t now)
{
    const char *sid = r->sid;
    json_t *j = tr_json_new(e, sid);
    if (!j)
        return NULL;
    int64_t age = (now - r->date_created) / 1000;
    json_object_set_new(j, "age", json_integer(age < 0 ? 0 : age));
    json_object_set_new(j, "assignment_status", tr_jstr(r->status));
    json_object_set_new(j, "attributes", tr_jstr(r->attributes));
    json_object_set_new(j, "addons", json_string("{}"));
    json_object_set_new(j, "date_created", tr_jdate(r->date_created));
    json_object_set_new(j, "date_updated", tr_jdate(r->date_updated));
    json_object_set_new(j, "task_queue_entered_date", tr_jdate(r->queue_entered_ms));
    json_object_set_new(j, "priority", json_integer(r->priority));
    json_object_set_new(j, "reason", tr_jstr(r->reason));
    json_object_set_new(j, "task_queue_sid", tr_jstr(r->queue_sid));
    json_object_set_new(j, "task_queue_friendly_name", tr_jstr(r->queue_name));
    json_object_set_new(j, "task_channel_sid", json_null());
    json_object_set_new(j, "task_channel_unique_name", tr_jstr(r->channel));
    json_object_set_new(j, "timeout", json_integer(r->timeout));
    json_object_set_new(j, "workflow_sid", tr_jstr(r->workflow_sid));
    json_object_set_new(j, "workflow_friendly_name", tr_jstr(r->workflow_name));
    json_object_set_new(j, "virtual_start_time", tr_jdate(r->date_created));
    json_object_set_new(j, "ignore_capacity", json_false());
    json_object_set_new(j, "routing_target", json_null());
    json_object_set_new(j, "url", tr_url(e, base, "/Tasks/%s", sid));
    json_t *links = json_pack("{s:o, s:o}", "workspace", tr_url(e, base, "%s", ""), "reservations",
                              tr_url(e, base, "/Tasks/%s/Reservations", sid));
    if (links && r->queue_sid)
        json_object_set_new(links, "task_queue", tr_url(e, base, "/TaskQueues/%s", r->queue_sid));
    if (links && r->workflow_sid)
        json_object_set_new(links, "workflow", tr_url(e, base, "/Workflows/%s", r->workflow_sid));
    json_object_set_new(j, "links", links);
    return j;
}

static const char *const STATUSES[] = {"pending",  "reserved",  "assigned",
                                       "canceled", "completed", "wrapping"};

/* True when s is one of Twilio's task statuses. */
static bool valid_status(const char *s)
{
    for (size_t i = 0; i < sizeof STATUSES / sizeof STATUSES[0]; i++)
        if (!strcmp(s, STATUSES[i]))
            return true;
    return false;
}

typedef struct {
    tr_engine_t *e;
    const char *base;
    const params_t *f;
    long priority;
    expr_t *expr;
    int64_t now;
} tlist_t;

/* Renders a task row (tr_list, tr_fetch). */
static json_t *task_render(void *ctx, const void *row)
{
    tlist_t *c = ctx;
    return to_json(c->e, row, c->base, c->now);
}

/* Renders the task sid (lock held) into *out when out is not NULL. */
static tassa_err render(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                        int64_t now)
{
    return tr_render_locked(e, &TR_TASK_ROW, task_render,
                            &(tlist_t){.e = e, .base = base_url, .now = now}, sizeof(tlist_t), sid,
                            out);
}

tassa_err tr_task_create(tr_engine_t *e, const params_t *p, const char *base_url, json_t **out,
                         errmsg_t *em)
{
    const char *attrs = params_get(p, "Attributes");
    const char *wf = params_get_nonempty(p, "WorkflowSid");
    const char *queue = params_get_nonempty(p, "TaskQueueSid");
    const char *channel = params_get_nonempty(p, "TaskChannel");
    long priority = 0, timeout = 86400;
    char sid[SID_LEN + 1];
    tr_sids_t only = {0};
    if (out)
        *out = NULL;
    if (!attrs || !*attrs)
        attrs = "{}";
    if (!channel)
        channel = "default";
    tassa_err err = tr_check_attributes(attrs, "Attributes", em);
    if (!err)
        err = tr_read_long(p, "Priority", 0, 2147483647L, &priority, em);
    if (!err)
        err = tr_read_long(p, "Timeout", 1, 1209600, &timeout, em);
    if (!err && strlen(channel) > 64)
        err = err_set(em, TASSA_EINVAL, "TaskChannel must be at most 64 characters");
    if (!err)
        err = sid_new("WT", sid);
    if (err)
        return err;
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    if (tr_count_get(e, "tasks") >= TR_MAX_TASKS) {
        err = err_set(em, TASSA_ELIMIT, "A workspace holds at most %d tasks", TR_MAX_TASKS);
    } else if (wf) {
        if (db_int(e->store, 0, "SELECT 1 FROM tr_workflows WHERE sid = ?", "s", wf) != 1)
            err = err_set(em, TASSA_EINVAL, "WorkflowSid %.64s is not a workflow of this workspace",
                          wf);
    } else if (queue) {
        if (db_int(e->store, 0, "SELECT 1 FROM tr_queues WHERE sid = ?", "s", queue) != 1)
            err = err_set(em, TASSA_EINVAL,
                          "TaskQueueSid %.64s is not a task queue of this workspace", queue);
    } else if (!(err = db_sids(e->store, &only, "SELECT sid FROM tr_workflows LIMIT 2", NULL))) {
        if (only.n != 1)
            err = err_set(em, TASSA_EMISSING,
                          "WorkflowSid is required when the workspace has %s workflow",
                          only.n ? "more than one" : "no");
        else
            wf = only.sid[0];
    }
    /* Routed before it is stored: the task is written once, already in its target's queue. */
    tr_wfconf_t *c = NULL;
    long filter = -1;
    const tr_target_t *t = NULL;
    if (!err && wf && !(t = tr_task_choose_locked(e, wf, attrs, &c, &filter)))
        err = TASSA_ESTORE;
    int64_t prio = t && t->priority >= 0 ? t->priority : priority;
    if (!err)
        err = db_exec(
            e->store,
            "INSERT INTO tr_tasks (sid, attributes, priority, timeout, status, workflow_sid,"
            " queue_sid, channel, queue_entered_ms, ttl_deadline, filter_index, filter_name,"
            " target_index, target_deadline, date_created, date_updated) VALUES (?, ?, ?, ?,"
            " 'pending', ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? >= 0 THEN CAST(? AS INTEGER) END, ?,"
            " ?)",
            "ssiisssiiisiiiii", sid, attrs, prio, (int64_t)timeout, wf, t ? t->queue : queue,
            channel, now, now + (int64_t)timeout * 1000, (int64_t)filter,
            t && filter >= 0 ? c->filters[filter].name : NULL, (int64_t)0,
            (int64_t)(t ? t->timeout : -1),
            now + (int64_t)(t && t->timeout > 0 ? t->timeout : 0) * 1000, now, now);
    if (!err)
        err = tr_count_add_locked(e, "tasks", 1);
    if (!err)
        err = tr_tally_locked(e, t ? t->queue : queue, "pending", prio, now, 1);
    if (!err) {
        ev_task_is_new(e, sid);
        err = tr_task_entered_events_locked(e, sid, c, filter, t, true, now);
    }
    tr_wfconf_free(c);
    if (!err)
        err = tr_match_locked(e, now);
    if (!err) /* the row as matching left it, rendered once the lock is released */
        err = render(e, sid, base_url, out, now);
    free(only.sid);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_task_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                        errmsg_t *em)
{
    return tr_fetch(e, &TR_TASK_ROW, task_render,
                    &(tlist_t){.e = e, .base = base_url, .now = tr_now_ms(e)}, "Tasks", sid, out,
                    em);
}

tassa_err tr_task_json(tr_engine_t *e, const char *sid, const char *base_url, json_t **out)
{
    return tr_task_fetch(e, sid, base_url, out, NULL);
}

tassa_err tr_task_update(tr_engine_t *e, const char *sid, const params_t *p, const char *base_url,
                         json_t **out, errmsg_t *em)
{
    const char *status = params_get_nonempty(p, "AssignmentStatus");
    const char *reason = params_get(p, "Reason");
    const char *attrs = params_get(p, "Attributes");
    long priority = -1;
    if (out)
        *out = NULL;
    tassa_err err = TASSA_OK;
    if (status && strcmp(status, "canceled") && strcmp(status, "wrapping") &&
        strcmp(status, "completed"))
        err =
            err_set(em, TASSA_EINVAL,
                    "AssignmentStatus must be canceled, wrapping or completed, not %.32s", status);
    if (!err && attrs)
        err = tr_check_attributes(attrs, "Attributes", em);
    if (!err)
        err = tr_read_long(p, "Priority", 0, 2147483647L, &priority, em);
    if (!err && reason && strlen(reason) > 1024)
        err = err_set(em, TASSA_EINVAL, "Reason must be at most 1024 characters");
    if (err)
        return err;
    int64_t now = tr_now_ms(e);
    err = tr_txn_begin(e);
    if (err)
        return err;
    tr_task_t row = {0};
    bool found = tr_task_load(e, sid, &row);
    const char *cur = row.status;
    bool final = cur && (!strcmp(cur, "canceled") || !strcmp(cur, "completed"));
    if (!found)
        err = tr_not_found(e, em, "Tasks", sid);
    else if (final && (attrs || priority >= 0 || (status && strcmp(status, cur))))
        err = err_set(em, TASSA_EINVAL, "Task %s is already %s", sid, cur);
    bool changed = false;
    if (!err && attrs && strcmp(attrs, row.attributes)) {
        err =
            db_exec(e->store, "UPDATE tr_tasks SET attributes = ?, date_updated = ? WHERE sid = ?",
                    "sis", attrs, now, sid);
        changed = true;
    }
    if (!err && priority >= 0 && priority != row.priority) {
        err = tr_task_tally_locked(e, sid, -1);
        if (!err)
            err = db_exec(e->store,
                          "UPDATE tr_tasks SET priority = ?, date_updated = ? WHERE sid = ?", "iis",
                          (int64_t)priority, now, sid);
        if (!err)
            err = tr_task_tally_locked(e, sid, 1);
        changed = true;
    }
    if (!err && changed)
        err = ev_task_event(e, "task.updated", sid, NULL, NULL, -1, now);
    if (!err && status && !final) {
        if (!strcmp(status, "canceled")) {
            if (!task_status_waiting(cur))
                err = err_set(em, TASSA_EINVAL, "Task %s cannot go from %s to canceled", sid, cur);
            else
                err = tr_task_cancel_locked(e, sid, reason, now);
        } else {
            err = tr_task_finish_locked(e, sid, status, reason, now, em);
        }
    }
    if (!err)
        err = tr_match_locked(e, now);
    if (!err)
        err = render(e, sid, base_url, out, now);
    rows_clear(&TR_TASK_ROW, &row);
    return tr_txn_end_out(e, err, out);
}

tassa_err tr_task_delete(tr_engine_t *e, const char *sid, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    tassa_err err = tr_txn_begin_row(e, "tr_tasks", "Tasks", sid, em);
    if (err)
        return err;
    err = tr_task_end_pending_locked(e, sid, "canceled", now);
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_workers SET idle_since = ? WHERE sid IN (SELECT worker_sid FROM"
                      " tr_reservations WHERE task_sid = ? AND status IN " TR_RES_ASSIGNED_SQL ")",
                      "is", now, sid);
    if (!err)
        err = ev_task_event(e, "task.deleted", sid, NULL, NULL, -1, now);
    if (!err)
        err = tr_task_gone_locked(e, sid, now);
    if (!err)
        err = tr_match_locked(e, now);
    return tr_txn_end(e, err);
}

/* True when the task's field equals the filter's value of param (no filter: true). */
static bool matches(const params_t *f, const char *param, const char *field)
{
    const char *v = params_get(f, param);
    return !v || (field && !strcmp(v, field));
}

/* Tasks list filters that SQL does not apply. */
static bool task_pred(void *ctx, const void *r)
{
    const tr_task_t *t = r;
    tlist_t *c = ctx;
    if (c->priority >= 0 && c->priority != t->priority)
        return false;
    if (!matches(c->f, "WorkflowSid", t->workflow_sid) ||
        !matches(c->f, "WorkflowName", t->workflow_name) ||
        !matches(c->f, "TaskQueueSid", t->queue_sid) ||
        !matches(c->f, "TaskQueueName", t->queue_name) || !matches(c->f, "TaskChannel", t->channel))
        return false;
    if (!c->expr)
        return true;
    json_t *attrs = tr_parse_attributes(t->attributes);
    bool ok = expr_eval(c->expr, &(expr_ctx_t){.subject = attrs, .task = attrs});
    json_decref(attrs);
    return ok;
}
/* Appends "AND t.status IN ('a','b')" for the validated statuses to sql. */
static tassa_err status_clause(char *sql, size_t len, const char *const *statuses, size_t n,
                               errmsg_t *em)
{
    if (n == 0)
        return TASSA_OK;
    strncat(sql, " AND t.status IN (", len - strlen(sql) - 1);
    for (size_t i = 0; i < n; i++) {
        if (!valid_status(statuses[i]))
            return err_set(em, TASSA_EINVAL,
                           "AssignmentStatus must be pending, reserved, assigned, canceled,"
                           " completed or wrapping, not %.32s",
                           statuses[i]);
        strncat(sql, i ? ",'" : "'", len - strlen(sql) - 1);
        strncat(sql, statuses[i], len - strlen(sql) - 1);
        strncat(sql, "'", len - strlen(sql) - 1);
    }
    strncat(sql, ")", len - strlen(sql) - 1);
    return TASSA_OK;
}

/* Turns Ordering ("Priority:desc,DateCreated:asc") into an ORDER BY list. */
static tassa_err ordering(const char *v, char *out, size_t len, errmsg_t *em)
{
    char buf[128];
    bool date = false, vst = false;
    out[0] = '\0';
    if (!v || !*v) {
        snprintf(out, len, "t.seq");
        return TASSA_OK;
    }
    if (strlen(v) >= sizeof buf)
        return err_set(em, TASSA_EINVAL, "Ordering is too long");
    snprintf(buf, sizeof buf, "%s", v);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        const char *dir = colon ? colon + 1 : "asc";
        if (colon)
            *colon = '\0';
        const char *col;
        if (!strcmp(tok, "DateCreated")) {
            col = "t.date_created";
            date = true;
        } else if (!strcmp(tok, "VirtualStartTime")) {
            col = "t.date_created";
            vst = true;
        } else if (!strcmp(tok, "Priority")) {
            col = "t.priority";
        } else {
            return err_set(em, TASSA_EINVAL,
                           "Ordering attribute must be DateCreated, Priority or VirtualStartTime");
        }
        if (strcmp(dir, "asc") && strcmp(dir, "desc"))
            return err_set(em, TASSA_EINVAL, "Ordering order must be asc or desc");
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s%s %s", l ? ", " : "", col, dir);
    }
    if (date && vst)
        return err_set(em, TASSA_EINVAL,
                       "Ordering cannot combine DateCreated with VirtualStartTime");
    size_t l = strlen(out);
    snprintf(out + l, len - l, "%st.seq", l ? ", " : "");
    return TASSA_OK;
}

tassa_err tr_task_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                       const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    tlist_t c = {e, base_url, filter, -1, NULL, tr_now_ms(e)};
    const char *statuses[16];
    size_t n = params_count(filter, "AssignmentStatus");
    char sql[2048], order[256];
    tassa_err err = TASSA_OK;
    *items = NULL;
    if (n > 16)
        return err_set(em, TASSA_EINVAL, "Too many AssignmentStatus values");
    for (size_t i = 0; i < n; i++)
        statuses[i] = params_get_nth(filter, "AssignmentStatus", i);
    snprintf(sql, sizeof sql, "%s WHERE 1 = 1", TR_TASK_SELECT);
    err = status_clause(sql, sizeof sql, statuses, n, em);
    if (!err)
        err = tr_read_long(filter, "Priority", 0, 2147483647L, &c.priority, em);
    if (!err)
        err = ordering(params_get(filter, "Ordering"), order, sizeof order, em);
    const char *x = params_get(filter, "EvaluateTaskAttributes");
    errmsg_t xm = {{0}};
    if (!err && x && !(c.expr = expr_parse(x, &xm)))
        err = err_set(em, TASSA_EEXPR, "EvaluateTaskAttributes: %s", xm.text);
    if (!err) {
        size_t l = strlen(sql);
        snprintf(sql + l, sizeof sql - l, " ORDER BY %s", order);
        err = tr_list(e, &TR_TASK_ROW, task_pred, task_render, &c, offset, limit, items, more, sql,
                      NULL);
    }
    expr_free(c.expr);
    return err;
}

/* One waiting task in queue order (TR_QUEUE_ORDER_SQL): priority, then the entry time
 * (negated in a LIFO queue), then seq. */
typedef struct {
    int64_t priority, key, seq;
} wkey_t;

static int wkey_cmp(const void *pa, const void *pb)
{
    const wkey_t *a = pa, *b = pb;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Appends to *keys (growing it) the rows of st (seq, priority, queue_entered_ms, task_order).
 * False on OOM. */
static bool collect(store_stmt_t *st, wkey_t **keys, size_t *n, size_t *cap)
{
    while (store_step(st) == STORE_ROW) {
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 64;
            wkey_t *k = realloc(*keys, c * sizeof *k);
            if (!k)
                return false;
            *keys = k;
            *cap = c;
        }
        const char *order = store_col_text(st, 3);
        int64_t entered = store_col_int64(st, 2);
        (*keys)[(*n)++] =
            (wkey_t){store_col_int64(st, 1), order && !strcmp(order, "LIFO") ? -entered : entered,
                     store_col_int64(st, 0)};
    }
    return true;
}

/* The first limit waiting tasks in queue order into *first (a new array of task resources),
 * without sorting every waiting task: the (queue, status, priority) groups with waiting tasks
 * come from tr_queue_counts, highest priority first; each group gives its first limit tasks
 * from the index tr_tasks_queue_order in its queue's order, and once the groups of the
 * priorities read hold limit tasks no lower priority can come before them. The candidates
 * are sorted in C and the first limit read whole. Waiting tasks outside any queue (none once
 * routed) are read directly. One critical section, so the list is one moment's. */
static tassa_err first_waiting(tr_engine_t *e, long limit, const char *base_url, int64_t now,
                               json_t **first)
{
    wkey_t *keys = NULL;
    size_t n = 0, cap = 0;
    tassa_err err = TASSA_OK;
    tr_task_t row = {0};
    *first = json_array();
    if (!*first)
        return TASSA_ENOMEM;
    store_lock(e->store);
    store_stmt_t *groups =
        db_query(e->store,
                 "SELECT c.queue_sid, c.status, c.priority, q.task_order FROM tr_queue_counts c"
                 " LEFT JOIN tr_queues q ON q.sid = c.queue_sid WHERE c.status IN " TASK_WAITING_SQL
                 " AND c.n > 0 ORDER BY c.priority DESC",
                 NULL);
    if (!groups)
        err = TASSA_ESTORE;
    bool more = groups && store_step(groups) == STORE_ROW;
    while (!err && more) {
        int64_t priority = store_col_int64(groups, 2);
        bool lifo = store_col_text(groups, 3) && !strcmp(store_col_text(groups, 3), "LIFO");
        /* The order within a group is the index's; a LIFO one sorts only ties of one ms. */
        store_stmt_t *st = db_query(
            e->store,
            lifo ? "SELECT t.seq, t.priority, t.queue_entered_ms, 'LIFO' FROM tr_tasks t"
                   " WHERE t.queue_sid = ? AND t.status = ? AND t.priority = ?"
                   " ORDER BY t.queue_entered_ms DESC, t.seq LIMIT ?"
                 : "SELECT t.seq, t.priority, t.queue_entered_ms, 'FIFO' FROM tr_tasks t"
                   " WHERE t.queue_sid = ? AND t.status = ? AND t.priority = ?"
                   " ORDER BY t.queue_entered_ms, t.seq LIMIT ?",
            "ssii", store_col_text(groups, 0), store_col_text(groups, 1), priority, (int64_t)limit);
        if (!st || !collect(st, &keys, &n, &cap))
            err = st ? TASSA_ENOMEM : TASSA_ESTORE;
        store_release(e->store, st);
        more = store_step(groups) == STORE_ROW;
        /* a priority level done with enough candidates: the rest come after them */
        if (more && (long)n >= limit && store_col_int64(groups, 2) != priority)
            more = false;
    }
    store_release(e->store, groups);
    if (!err) {
        store_stmt_t *st =
            db_query(e->store,
                     "SELECT t.seq, t.priority, t.queue_entered_ms, NULL FROM"
                     " tr_tasks t WHERE t.queue_sid IS NULL AND t.status IN " TASK_WAITING_SQL,
                     NULL);
        if (!st || !collect(st, &keys, &n, &cap))
            err = st ? TASSA_ENOMEM : TASSA_ESTORE;
        store_release(e->store, st);
    }
    if (!err && n)
        qsort(keys, n, sizeof *keys, wkey_cmp);
    for (size_t i = 0; !err && i < n && (long)i < limit; i++) {
        store_stmt_t *st = db_query(e->store, TR_TASK_SELECT "WHERE t.seq = ?", "i", keys[i].seq);
        if (!st)
            err = TASSA_ESTORE;
        else if (store_step(st) == STORE_ROW) {
            json_t *j = rows_read(&TR_TASK_ROW, st, &row) ? to_json(e, &row, base_url, now) : NULL;
            rows_clear(&TR_TASK_ROW, &row);
            if (!j || json_array_append_new(*first, j))
                err = TASSA_ENOMEM;
        }
        store_release(e->store, st);
    }
    store_unlock(e->store);
    free(keys);
    if (err) {
        json_decref(*first);
        *first = NULL;
    }
    return err;
}

tassa_err tr_waiting_json(tr_engine_t *e, long limit, const char *base_url, json_t **first,
                          json_t **summary)
{
    tlist_t c = {e, base_url, NULL, -1, NULL, tr_now_ms(e)};
    tassa_err err = TASSA_OK;
    *first = *summary = NULL;
    /* The counts first (then the list holds at least the tasks counted): a queue's from its
     * rows of tr_queue_counts, its longest wait from the first entry of its index, so that
     * neither grows with the queue; waiting tasks outside any queue are counted directly. */
    json_t *by_queue = json_object();
    long total = 0;
    store_lock(e->store);
    store_stmt_t *st = db_query(
        e->store,
        "SELECT coalesce(q.friendly_name, '(none)'), c.total, (SELECT min(t.date_created) FROM"
        " tr_tasks t WHERE t.queue_sid = c.queue_sid AND t.status IN " TASK_WAITING_SQL ")"
        " FROM (SELECT queue_sid, sum(n) AS total FROM tr_queue_counts WHERE status "
        "IN " TASK_WAITING_SQL " GROUP BY queue_sid HAVING sum(n) > 0) c"
        " LEFT JOIN tr_queues q ON q.sid = c.queue_sid"
        " UNION ALL SELECT '(none)', count(*), min(date_created) FROM tr_tasks"
        " WHERE queue_sid IS NULL AND status IN " TASK_WAITING_SQL " HAVING count(*) > 0",
        NULL);
    while (st && by_queue && store_step(st) == STORE_ROW) {
        long n = (long)store_col_int64(st, 1);
        int64_t age = (c.now - store_col_int64(st, 2)) / 1000;
        total += n;
        json_object_set_new(by_queue, store_col_text(st, 0),
                            json_pack("{s:i, s:I}", "pending", (json_int_t)n, "longestWaitSeconds",
                                      (json_int_t)(age < 0 ? 0 : age)));
    }
    if (!st)
        err = TASSA_ESTORE;
    store_release(e->store, st);
    store_unlock(e->store);
    if (!err && by_queue)
        *summary = json_pack("{s:i, s:o}", "total", (json_int_t)total, "byQueue", by_queue);
    else
        json_decref(by_queue);
    if (!err && !*summary)
        err = TASSA_ENOMEM;
    if (!err)
        err = first_waiting(e, limit, base_url, c.now, first);
    if (err) {
        json_decref(*summary);
        *summary = NULL;
        json_decref(*first);
        *first = NULL;
    }
    return err;
}

/* True when attrs (a JSON object text) holds the string value at key, a dotted path of object
 * members as in json_extract's "$.key". */
static bool attr_equals(const char *attrs, const char *key, const char *value)
{
    json_t *root = attrs ? json_loads(attrs, 0, NULL) : NULL;
    json_t *at = root; /* borrowed from root */
    char name[65];
    for (const char *p = key; at && *p;) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof name)
            at = NULL;
        else {
            memcpy(name, p, n);
            name[n] = '\0';
            at = json_object_get(at, name);
        }
        p += n;
        if (*p == '.')
            p++;
    }
    bool eq = at && json_is_string(at) && strcmp(json_string_value(at), value) == 0;
    json_decref(root);
    return eq;
}

tassa_err tr_waiting_task_by_attr(tr_engine_t *e, const char *key, const char *value,
                                  const char *base_url, json_t **out)
{
    char sid[SID_LEN + 1] = "";
    *out = NULL;
    if (strlen(key) > 64)
        return TASSA_EINVAL;
    /* Filtered in C (the newest match wins), so the SQL needs no JSON functions of one
     * database. It walks the tasks newest first by the primary key and stops at the first
     * match; `status || ''` keeps SQLite off the status index, which would sort every
     * waiting task (with its attributes) before the first row. */
    store_lock(e->store);
    store_stmt_t *st =
        db_query(e->store,
                 "SELECT sid, attributes FROM tr_tasks WHERE status || '' IN " TASK_WAITING_SQL
                 " ORDER BY seq DESC",
                 "");
    while (st && !*sid && store_step(st) == STORE_ROW)
        if (attr_equals(store_col_text(st, 1), key, value) && store_col_text(st, 0))
            snprintf(sid, sizeof sid, "%s", store_col_text(st, 0));
    store_release(e->store, st);
    store_unlock(e->store);
    return *sid ? tr_task_fetch(e, sid, base_url, out, NULL) : TASSA_ENOTFOUND;
}

tassa_err tr_task_position(tr_engine_t *e, const char *sid, long *position, long *size)
{
    tr_task_t t = {0};
    *position = *size = 0;
    store_lock(e->store);
    tassa_err err = TASSA_OK;
    if (!tr_task_load(e, sid, &t) || !task_status_waiting(t.status) || !t.queue_sid) {
        err = TASSA_ENOTFOUND;
        goto out;
    }
    bool lifo = t.task_order && strcmp(t.task_order, "LIFO") == 0;
    int64_t entered = t.queue_entered_ms < 0 ? 0 : t.queue_entered_ms;
    int64_t b1 = entered >> TR_RANK_SHIFT1, b2 = entered >> TR_RANK_SHIFT2;
    /* The engine's own order (TR_QUEUE_ORDER_SQL): priority, then entry time, then seq. The
     * size and the tasks of higher priority come from the queue's counts (counts.c). Those of
     * the same priority ahead: the level 2 buckets before the task's one, the level 1 buckets
     * before its one inside that, and within its own level 1 bucket (the tasks that entered in
     * the same ~second) a count over the index (queue_sid, status, priority,
     * queue_entered_ms). LIFO mirrors each range. */
    *size = (long)db_int(e->store, 0,
                         "SELECT coalesce(sum(n), 0) FROM tr_queue_counts WHERE queue_sid = ? AND"
                         " status IN " TASK_WAITING_SQL,
                         "s", t.queue_sid);
    int64_t higher = db_int(e->store, 0,
                            "SELECT coalesce(sum(n), 0) FROM tr_queue_counts WHERE queue_sid = ?"
                            " AND status IN " TASK_WAITING_SQL " AND priority > ?",
                            "si", t.queue_sid, t.priority);
    int64_t far = db_int(e->store, 0,
                         lifo ? "SELECT coalesce(sum(n), 0) FROM tr_rank_buckets WHERE"
                                " queue_sid = ? AND priority = ? AND level = 2 AND bucket > ?"
                              : "SELECT coalesce(sum(n), 0) FROM tr_rank_buckets WHERE"
                                " queue_sid = ? AND priority = ? AND level = 2 AND bucket < ?",
                         "sii", t.queue_sid, t.priority, b2);
    int64_t lo = lifo ? b1 + 1 : b2 << (TR_RANK_SHIFT2 - TR_RANK_SHIFT1);
    int64_t hi = lifo ? (b2 + 1) << (TR_RANK_SHIFT2 - TR_RANK_SHIFT1) : b1;
    int64_t near = db_int(e->store, 0,
                          "SELECT coalesce(sum(n), 0) FROM tr_rank_buckets WHERE queue_sid = ? AND"
                          " priority = ? AND level = 1 AND bucket >= ? AND bucket < ?",
                          "siii", t.queue_sid, t.priority, lo, hi);
    int64_t from = b1 << TR_RANK_SHIFT1, to = (b1 + 1) << TR_RANK_SHIFT1;
    int64_t same = db_int(
        e->store, 0,
        lifo ? "SELECT count(*) FROM tr_tasks WHERE queue_sid = ? AND status IN " TASK_WAITING_SQL
               " AND priority = ? AND queue_entered_ms >= ? AND queue_entered_ms < ? AND"
               " (queue_entered_ms > ? OR (queue_entered_ms = ? AND seq < ?))"
             : "SELECT count(*) FROM tr_tasks WHERE queue_sid = ? AND status IN " TASK_WAITING_SQL
               " AND priority = ? AND queue_entered_ms >= ? AND queue_entered_ms < ? AND"
               " (queue_entered_ms < ? OR (queue_entered_ms = ? AND seq < ?))",
        "siiiiii", t.queue_sid, t.priority, from, to, entered, entered, t.seq);
    *position = 1 + (long)(higher + far + near + same);
out:
    rows_clear(&TR_TASK_ROW, &t);
    store_unlock(e->store);
    return err;
}

tassa_err tr_tasks_json(tr_engine_t *e, const char *const *statuses, size_t n_statuses,
                        const char *base_url, json_t **array)
{
    tlist_t c = {e, base_url, NULL, -1, NULL, tr_now_ms(e)};
    char sql[2048];
    bool more;
    *array = NULL;
    snprintf(sql, sizeof sql, "%s WHERE 1 = 1", TR_TASK_SELECT);
    tassa_err err = status_clause(sql, sizeof sql, statuses, n_statuses, NULL);
    if (err)
        return err;
    strncat(sql, " ORDER BY " TR_QUEUE_ORDER_SQL, sizeof sql - strlen(sql) - 1);
    return tr_list(e, &TR_TASK_ROW, NULL, task_render, &c, 0, TR_MAX_TASKS + 1L, array, &more, sql,
                   NULL);
}
