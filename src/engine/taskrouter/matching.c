/* matching.c - who gets which task: pending tasks in priority order, each offered to the
 * longest-idle free worker that its queue and its workflow target accept.
 *
 * Runs at the end of every transaction that may enable an assignment. It decides first, on
 * one read of the pending tasks, and writes the reservations afterwards, so that no table is
 * modified while a statement still walks it. A worker is free when its activity is available
 * and it holds no pending, accepted or wrapping reservation (one task per worker).
 *
 * Its cost does not grow with the workers that cannot take a task: queue membership is kept
 * as rows (members.c, evaluated when a worker's attributes or a queue's expression change),
 * so a match first asks the index whether any queue has both a pending task and an available
 * member, and stops there when none has (the common case while tasks wait). Otherwise it
 * reads only the available members of those queues, and a task's queue is checked against
 * the membership rows, not its expression.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/lifecycle.h"

#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"
#include "engine/taskrouter/wfconf.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* The queues that hold a pending task and an available member (a subquery). */
#define CANDIDATES_SQL                                                                             \
    "(SELECT q.sid FROM tr_queues q WHERE EXISTS (SELECT 1 FROM tr_queue_members m2"               \
    " WHERE m2.queue_sid = q.sid AND m2.available = 1) AND EXISTS (SELECT 1 FROM tr_tasks t2"      \
    " WHERE t2.queue_sid = q.sid AND t2.status = 'pending'))"

typedef struct {
    char sid[SID_LEN + 1];
    void *parsed; /* tr_wfconf_t * (a workflow); NULL if unusable */
} cache_t;

typedef struct {
    cache_t *items;
    size_t n, cap;
} cache_list_t;

/* Finds or adds sid in the cache, parsing it with load on first use. */
static void *cached(cache_list_t *l, const char *sid, void *(*load)(tr_engine_t *, const char *),
                    tr_engine_t *e)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].sid, sid))
            return l->items[i].parsed;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        cache_t *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return NULL;
        l->items = items;
        l->cap = cap;
    }
    cache_t *c = &l->items[l->n++];
    memcpy(c->sid, sid, SID_LEN + 1);
    c->parsed = load(e, sid);
    return c->parsed;
}

/* Parses a workflow's configuration (cache loader). */
static void *load_workflow(tr_engine_t *e, const char *sid)
{
    return tr_wfconf_load(e, sid);
}

/* The (queue, worker) membership pairs of the free candidates, sorted for bsearch. */
typedef char pair_t[2 * SID_LEN + 1];
typedef struct {
    pair_t *pair;
    size_t n;
} members_t;

static int pair_cmp(const void *a, const void *b)
{
    return strcmp(*(const pair_t *)a, *(const pair_t *)b);
}

/* Reads the available membership rows of the queues that hold a pending task. */
static tassa_err members_load(tr_engine_t *e, members_t *m)
{
    store_stmt_t *st = db_query(e->store,
                                "SELECT m.queue_sid, m.worker_sid FROM tr_queue_members m"
                                " WHERE m.available = 1 AND m.queue_sid IN " CANDIDATES_SQL,
                                NULL);
    size_t cap = 0;
    if (!st)
        return TASSA_ESTORE;
    while (store_step(st) == STORE_ROW) {
        const char *q = store_col_text(st, 0), *w = store_col_text(st, 1);
        if (!q || !w || strlen(q) != SID_LEN || strlen(w) != SID_LEN)
            continue;
        if (m->n == cap) {
            cap = cap ? cap * 2 : 64;
            pair_t *p = realloc(m->pair, cap * sizeof *p);
            if (!p) {
                store_release(e->store, st);
                return TASSA_ENOMEM;
            }
            m->pair = p;
        }
        memcpy(m->pair[m->n], q, SID_LEN);
        memcpy(m->pair[m->n++] + SID_LEN, w, SID_LEN + 1);
    }
    store_release(e->store, st);
    if (m->n)
        qsort(m->pair, m->n, sizeof *m->pair, pair_cmp);
    return TASSA_OK;
}

/* True when the worker is a member of the queue (by the membership rows). */
static bool is_member(const members_t *m, const char *queue_sid, const char *worker_sid)
{
    pair_t key;
    if (strlen(queue_sid) != SID_LEN)
        return false;
    memcpy(key, queue_sid, SID_LEN);
    memcpy(key + SID_LEN, worker_sid, SID_LEN + 1);
    return m->n && bsearch(&key, m->pair, m->n, sizeof *m->pair, pair_cmp);
}

typedef struct {
    char task[SID_LEN + 1];
    size_t worker;
} decision_t;

/* True when the worker rejected this task before (it is not offered the task again). */
static bool rejected(const tr_sids_t *list, const char *worker_sid)
{
    for (size_t i = 0; i < list->n; i++)
        if (!strcmp(list->sid[i], worker_sid))
            return true;
    return false;
}

/* Picks the worker for one pending task: the first free eligible one in idle order.
 * Returns its index or -1. */
static long pick(tr_engine_t *e, const tr_task_t *task, json_t *const *subjects,
                 const tr_worker_t *idle, size_t n_idle, const bool *taken,
                 const members_t *members, cache_list_t *workflows)
{
    const expr_t *tx = NULL;
    if (task->workflow_sid) {
        tr_wfconf_t *c = cached(workflows, task->workflow_sid, load_workflow, e);
        const tr_target_t *t =
            c ? tr_wfconf_target(c, (long)task->filter_index, (long)task->target_index) : NULL;
        tx = t ? t->expr : NULL;
    }
    json_t *attrs = tr_parse_attributes(task->attributes);
    tr_sids_t rej = {0};
    if (db_sids(e->store, &rej,
                "SELECT worker_sid FROM tr_reservations WHERE task_sid = ? AND"
                " status = 'rejected'",
                "s", task->sid)) {
        json_decref(attrs);
        return -1;
    }
    long found = -1;
    for (size_t i = 0; i < n_idle; i++) {
        if (taken[i] || !subjects[i])
            continue;
        if (rejected(&rej, idle[i].sid))
            continue;
        if (!is_member(members, task->queue_sid, idle[i].sid))
            continue;
        if (tx && !expr_eval(tx, &(expr_ctx_t){
                                     .subject = subjects[i], .task = attrs, .worker = subjects[i]}))
            continue;
        found = (long)i;
        break;
    }
    json_decref(attrs);
    free(rej.sid);
    return found;
}

/* Writes one reservation: pending with the workflow's timeout, the task reserved, the
 * reservation.created event, and the queue's ReservationActivitySid for the worker. */
static tassa_err reserve(tr_engine_t *e, const char *task_sid, const char *worker_sid, int64_t now)
{
    char sid[SID_LEN + 1];
    tr_task_t t = {0};
    tr_queue_t q = {0};
    tassa_err err = tr_task_load(e, task_sid, &t) ? sid_new("WR", sid) : TASSA_ESTORE;
    if (err)
        goto out;
    int64_t timeout = 120;
    if (t.workflow_sid)
        timeout =
            db_int(e->store, 120, "SELECT task_reservation_timeout FROM tr_workflows WHERE sid = ?",
                   "s", t.workflow_sid);
    err = db_exec(e->store,
                  "INSERT INTO tr_reservations (sid, task_sid, worker_sid, status, deadline,"
                  " date_created, date_updated) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                  "sssiii", sid, task_sid, worker_sid, now + timeout * 1000, now, now);
    if (!err)
        err = tr_task_tally_locked(e, task_sid, -1);
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_tasks SET status = 'reserved', date_updated = ? WHERE sid = ?",
                      "is", now, task_sid);
    if (!err)
        err = tr_task_tally_locked(e, task_sid, 1);
    if (!err)
        err = ev_task_event(e, "reservation.created", task_sid, sid, NULL, -1, now);
    if (!err && t.queue_sid && tr_queue_load(e, t.queue_sid, &q) && q.reservation_activity_sid)
        err = tr_worker_move_locked(e, worker_sid, q.reservation_activity_sid, false, now);
out:
    rows_clear(&TR_TASK_ROW, &t);
    rows_clear(&TR_QUEUE_ROW, &q);
    return err;
}

tassa_err tr_match_locked(tr_engine_t *e, int64_t now)
{
    tr_worker_t *idle = NULL;
    size_t n = 0, nfree = 0, ndec = 0;
    json_t **subjects = NULL;
    bool *taken = NULL;
    decision_t *dec = NULL;
    cache_list_t workflows = {0};
    members_t members = {0};
    store_stmt_t *st = NULL;
    tr_task_t task = {0};
    tassa_err err = TASSA_OK;
    if (db_int(e->store, 0, "SELECT 1 FROM " CANDIDATES_SQL " c LIMIT 1", NULL) != 1)
        goto out; /* no queue has both a waiting task and an available member */
    err = members_load(e, &members);
    if (!err)
        err =
            rows_all(e, &TR_WORKER_ROW, (void **)&idle, &n,
                     TR_WORKER_SELECT "WHERE w.sid IN (SELECT m.worker_sid FROM tr_queue_members m"
                                      " WHERE m.available = 1 AND m.queue_sid IN " CANDIDATES_SQL
                                      ") AND a.available = 1 AND NOT EXISTS (SELECT 1 FROM"
                                      " tr_reservations r WHERE r.worker_sid = w.sid AND"
                                      " r.status IN " TR_RES_HOLDING_SQL ")"
                                      " ORDER BY w.idle_since, w.seq",
                     NULL);
    nfree = n;
    if (err || n == 0)
        goto out;
    subjects = calloc(n, sizeof *subjects);
    taken = calloc(n, sizeof *taken);
    dec = calloc(n, sizeof *dec);
    if (!subjects || !taken || !dec) {
        err = TASSA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        subjects[i] = tr_worker_subject(&idle[i]);
    st = db_query(e->store,
                  TR_TASK_SELECT "WHERE t.status = 'pending' AND t.queue_sid IN " CANDIDATES_SQL
                                 " ORDER BY " TR_QUEUE_ORDER_SQL,
                  NULL);
    if (!st) {
        err = TASSA_ESTORE;
        goto out;
    }
    while (nfree > 0 && store_step(st) == STORE_ROW) {
        long w = rows_read(&TR_TASK_ROW, st, &task)
                     ? pick(e, &task, subjects, idle, n, taken, &members, &workflows)
                     : -1;
        if (w >= 0) {
            taken[w] = true;
            nfree--;
            memcpy(dec[ndec].task, task.sid, SID_LEN + 1);
            dec[ndec++].worker = (size_t)w;
        }
        rows_clear(&TR_TASK_ROW, &task);
    }
    store_release(e->store, st);
    st = NULL;
    for (size_t i = 0; !err && i < ndec; i++)
        err = reserve(e, dec[i].task, idle[dec[i].worker].sid, now);
out:
    store_release(e->store, st);
    for (size_t i = 0; subjects && i < n; i++)
        json_decref(subjects[i]);
    for (size_t i = 0; i < workflows.n; i++)
        tr_wfconf_free(workflows.items[i].parsed);
    free(members.pair);
    free(workflows.items);
    free(subjects);
    free(taken);
    free(dec);
    rows_free(&TR_WORKER_ROW, idle, n);
    return err;
}
