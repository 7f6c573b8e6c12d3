/* counts.c - the workspace's row counts (tasks, workers) kept in tr_counts on each insert and
 * delete, so that the limit checks on every create read one row instead of counting a table
 * that grows to TR_MAX_TASKS; and a queue's open tasks by (status, priority) kept in
 * tr_queue_counts on each change of a task's queue, status or priority, so that a queue's
 * counts and sizes read a handful of rows whatever the queue's length.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/lifecycle.h"

#include <stdio.h>

#include "base/task_order.h"

int64_t tr_count_get(tr_engine_t *e, const char *name)
{
    return db_int(e->store, 0, "SELECT n FROM tr_counts WHERE name = ?", "s", name);
}

tassa_err tr_count_add_locked(tr_engine_t *e, const char *name, int64_t delta)
{
    return delta ? db_exec(e->store, "UPDATE tr_counts SET n = n + ? WHERE name = ?", "is", delta,
                           name)
                 : TASSA_OK;
}

tassa_err tr_counts_fill(tr_engine_t *e)
{
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    err = db_exec(e->store,
                  "INSERT INTO tr_counts (name, n) SELECT 'tasks',"
                  " (SELECT count(*) FROM tr_tasks) WHERE NOT EXISTS (SELECT 1 FROM tr_counts "
                  "WHERE name = 'tasks')",
                  NULL);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_counts (name, n) SELECT 'workers',"
                      " (SELECT count(*) FROM tr_workers) WHERE NOT EXISTS (SELECT 1 FROM "
                      "tr_counts WHERE name = 'workers')",
                      NULL);
    return tr_txn_end(e, err);
}

/* Adds sign to the rank bucket counters of a waiting task that entered its queue at entered
 * (ms): one row per level, keyed by entered >> TR_RANK_SHIFT1 and >> TR_RANK_SHIFT2. */
static tassa_err rank_add(tr_engine_t *e, const char *queue, int64_t priority, int64_t entered,
                          int sign)
{
    tassa_err err = TASSA_OK;
    for (int level = 1; level <= 2 && !err; level++)
        err = db_exec(e->store,
                      "INSERT INTO tr_rank_buckets (queue_sid, priority, level, bucket, n)"
                      " VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue_sid, priority, level, bucket)"
                      " DO UPDATE SET n = tr_rank_buckets.n + excluded.n",
                      "siiii", queue, priority, (int64_t)level,
                      entered >> (level == 1 ? TR_RANK_SHIFT1 : TR_RANK_SHIFT2), (int64_t)sign);
    return err;
}

tassa_err tr_task_tally_locked(tr_engine_t *e, const char *task_sid, int sign)
{
    char queue[SID_LEN + 1] = "", status[16] = "";
    int64_t priority = 0, entered = -1;
    store_stmt_t *st =
        db_query(e->store,
                 "SELECT queue_sid, status, priority, queue_entered_ms FROM tr_tasks"
                 " WHERE sid = ? AND queue_sid IS NOT NULL AND status IN " TR_TASK_OPEN_SQL,
                 "s", task_sid);
    if (!st)
        return TASSA_ESTORE;
    if (store_step(st) == STORE_ROW && store_col_text(st, 0) && store_col_text(st, 1)) {
        snprintf(queue, sizeof queue, "%s", store_col_text(st, 0));
        snprintf(status, sizeof status, "%s", store_col_text(st, 1));
        priority = store_col_int64(st, 2);
        entered = store_col_is_null(st, 3) ? -1 : store_col_int64(st, 3);
    }
    store_release(e->store, st);
    return tr_tally_locked(e, queue, status, priority, entered, sign);
}

tassa_err tr_tally_locked(tr_engine_t *e, const char *queue, const char *status, int64_t priority,
                          int64_t entered, int sign)
{
    if (!queue || !*queue)
        return TASSA_OK; /* not counted: no queue, or finished */
    tassa_err err =
        db_exec(e->store,
                "INSERT INTO tr_queue_counts (queue_sid, status, priority, n) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (queue_sid, status, priority) DO UPDATE SET"
                " n = tr_queue_counts.n + excluded.n",
                "ssii", queue, status, priority, (int64_t)sign);
    /* A task without an entry time is behind nobody's count (NULL compares false) and so in
     * no bucket either. */
    if (!err && entered >= 0 && task_status_waiting(status))
        err = rank_add(e, queue, priority, entered, sign);
    return err;
}

tassa_err tr_rank_buckets_fill(tr_engine_t *e)
{
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    if (db_int(e->store, 0, "SELECT 1 FROM meta WHERE key = 'tr_rank_buckets'", NULL) == 1)
        return tr_txn_end(e, TASSA_OK);
    err = db_exec(e->store, "DELETE FROM tr_rank_buckets", NULL);
    /* The shifts are literals: PostgreSQL matches a GROUP BY expression to the select list
     * only when both are the same text, and parameters never are. */
#define FILL(level, shift)                                                                         \
    "INSERT INTO tr_rank_buckets (queue_sid, priority, level, bucket, n)"                          \
    " SELECT queue_sid, priority, " #level ", queue_entered_ms >> " #shift ", count(*)"            \
    " FROM tr_tasks WHERE queue_sid IS NOT NULL AND queue_entered_ms IS NOT NULL AND status"       \
    " IN " TASK_WAITING_SQL " GROUP BY queue_sid, priority, queue_entered_ms >> " #shift
    _Static_assert(TR_RANK_SHIFT1 == 10 && TR_RANK_SHIFT2 == 20, "FILL's literal shifts");
    if (!err)
        err = db_exec(e->store, FILL(1, 10), NULL);
    if (!err)
        err = db_exec(e->store, FILL(2, 20), NULL);
#undef FILL
    if (!err)
        err = db_exec(e->store, "INSERT INTO meta (key, value) VALUES ('tr_rank_buckets', '1')",
                      NULL);
    return tr_txn_end(e, err);
}

tassa_err tr_queue_counts_fill(tr_engine_t *e)
{
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    if (db_int(e->store, 0, "SELECT 1 FROM meta WHERE key = 'tr_queue_counts'", NULL) == 1)
        return tr_txn_end(e, TASSA_OK);
    err = db_exec(e->store, "DELETE FROM tr_queue_counts", NULL);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_queue_counts (queue_sid, status, priority, n)"
                      " SELECT queue_sid, status, priority, count(*) FROM tr_tasks"
                      " WHERE queue_sid IS NOT NULL AND status IN " TR_TASK_OPEN_SQL
                      " GROUP BY queue_sid, status, priority",
                      NULL);
    if (!err)
        err = db_exec(e->store, "INSERT INTO meta (key, value) VALUES ('tr_queue_counts', '1')",
                      NULL);
    return tr_txn_end(e, err);
}
