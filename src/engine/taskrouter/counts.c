/* counts.c - the workspace's row counts (tasks, workers) kept in tr_counts on each insert and
 * delete, so that the limit checks on every create read one row instead of counting a table
 * that grows to TR_MAX_TASKS.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/lifecycle.h"

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
