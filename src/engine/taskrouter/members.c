/* members.c - which workers each queue's TargetWorkers accepts, kept as rows of
 * tr_queue_members so that matching never evaluates an expression per task.
 *
 * A row (queue_sid, worker_sid, available, activity_sid) says the queue's expression accepts
 * the worker; available and activity_sid mirror the worker's activity (tr_worker_move_locked
 * keeps them), so that the index (queue_sid, available) hands matching only the available
 * members of a queue. tr_queue_activity_counts (queue_sid, activity_sid, n) counts a queue's
 * members by activity, kept with the rows, for the queue's RealTimeStatistics. The
 * rows change where their inputs change: a worker's creation, attributes or deletion (its
 * rows against every queue) and a queue's creation, expression or deletion (its rows against
 * every worker). Being store rows they are the same on every node of a shared store and need
 * no rebuild at start; a file written before they existed is filled once (tr_members_fill).
 *
 * Layer: engine.
 */
#include "engine/taskrouter/lifecycle.h"

#include <stdlib.h>

#include "engine/taskrouter/rows.h"

/* Inserts the membership row when subject is accepted by x (x may be NULL: no members). */
static tassa_err add_if(tr_engine_t *e, const char *queue_sid, const expr_t *x,
                        const tr_worker_t *w, const json_t *subject)
{
    if (!x || !subject || !tr_worker_in_queue(subject, x))
        return TASSA_OK;
    tassa_err err = db_exec(e->store,
                            "INSERT INTO tr_queue_members (queue_sid, worker_sid, available,"
                            " activity_sid) VALUES (?, ?, ?, ?)",
                            "ssds", queue_sid, w->sid, (int)w->available, w->activity_sid);
    return err ? err : tr_members_tally_locked(e, queue_sid, w->activity_sid, 1);
}

tassa_err tr_members_tally_locked(tr_engine_t *e, const char *queue_sid, const char *activity_sid,
                                  int sign)
{
    return db_exec(e->store,
                   "INSERT INTO tr_queue_activity_counts (queue_sid, activity_sid, n)"
                   " VALUES (?, ?, ?) ON CONFLICT (queue_sid, activity_sid) DO UPDATE SET"
                   " n = tr_queue_activity_counts.n + excluded.n",
                   "ssi", queue_sid, activity_sid ? activity_sid : "", (int64_t)sign);
}

tassa_err tr_members_move_locked(tr_engine_t *e, const char *worker_sid, const char *from,
                                 const char *to, bool available)
{
    tassa_err err = db_exec(e->store,
                            "UPDATE tr_queue_activity_counts SET n = n - 1 WHERE activity_sid = ?"
                            " AND queue_sid IN (SELECT queue_sid FROM tr_queue_members WHERE"
                            " worker_sid = ?)",
                            "ss", from ? from : "", worker_sid);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_queue_activity_counts (queue_sid, activity_sid, n)"
                      " SELECT queue_sid, ?, 1 FROM tr_queue_members WHERE worker_sid = ?"
                      " ON CONFLICT (queue_sid, activity_sid) DO UPDATE SET"
                      " n = tr_queue_activity_counts.n + 1",
                      "ss", to ? to : "", worker_sid);
    if (!err)
        err = db_exec(e->store,
                      "UPDATE tr_queue_members SET available = ?, activity_sid = ?"
                      " WHERE worker_sid = ?",
                      "dss", (int)available, to ? to : "", worker_sid);
    return err;
}

tassa_err tr_members_worker_locked(tr_engine_t *e, const char *worker_sid)
{
    tr_worker_t w = {0};
    tr_queue_t *qs = NULL;
    size_t n = 0;
    json_t *subject = NULL;
    /* its rows go (their counts with them), then come back for each queue that accepts it */
    tassa_err err = db_exec(e->store,
                            "UPDATE tr_queue_activity_counts SET n = n - 1 WHERE EXISTS"
                            " (SELECT 1 FROM tr_queue_members m WHERE m.worker_sid = ? AND"
                            " m.queue_sid = tr_queue_activity_counts.queue_sid AND"
                            " m.activity_sid = tr_queue_activity_counts.activity_sid)",
                            "s", worker_sid);
    if (!err)
        err =
            db_exec(e->store, "DELETE FROM tr_queue_members WHERE worker_sid = ?", "s", worker_sid);
    if (err || !tr_worker_load(e, worker_sid, &w))
        goto out;
    subject = tr_worker_subject(&w);
    err = rows_all(e, &TR_QUEUE_ROW, (void **)&qs, &n, TR_QUEUE_SELECT "ORDER BY q.seq", NULL);
    for (size_t i = 0; !err && i < n; i++) {
        expr_t *x = expr_parse(qs[i].target_workers, NULL);
        err = add_if(e, qs[i].sid, x, &w, subject);
        expr_free(x);
    }
out:
    json_decref(subject);
    rows_free(&TR_QUEUE_ROW, qs, n);
    rows_clear(&TR_WORKER_ROW, &w);
    return err;
}

tassa_err tr_members_queue_locked(tr_engine_t *e, const char *queue_sid)
{
    tr_queue_t q = {0};
    tr_worker_t *ws = NULL;
    size_t n = 0;
    expr_t *x = NULL;
    tassa_err err =
        db_exec(e->store, "DELETE FROM tr_queue_members WHERE queue_sid = ?", "s", queue_sid);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_queue_activity_counts WHERE queue_sid = ?", "s",
                      queue_sid);
    if (err || !tr_queue_load(e, queue_sid, &q) || !(x = expr_parse(q.target_workers, NULL)))
        goto out;
    err = rows_all(e, &TR_WORKER_ROW, (void **)&ws, &n, TR_WORKER_SELECT "ORDER BY w.seq", NULL);
    for (size_t i = 0; !err && i < n; i++) {
        json_t *subject = tr_worker_subject(&ws[i]);
        err = add_if(e, queue_sid, x, &ws[i], subject);
        json_decref(subject);
    }
out:
    expr_free(x);
    rows_free(&TR_WORKER_ROW, ws, n);
    rows_clear(&TR_QUEUE_ROW, &q);
    return err;
}

tassa_err tr_members_fill(tr_engine_t *e)
{
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    if (db_int(e->store, 0, "SELECT 1 FROM meta WHERE key = 'tr_queue_members'", NULL) == 1)
        return tr_txn_end(e, TASSA_OK); /* filled (by another node, perhaps) */
    tr_sids_t qs = {0};
    err = db_sids(e->store, &qs, "SELECT sid FROM tr_queues ORDER BY seq", NULL);
    for (size_t i = 0; !err && i < qs.n; i++)
        err = tr_members_queue_locked(e, qs.sid[i]);
    free(qs.sid);
    if (!err)
        err = db_exec(e->store, "INSERT INTO meta (key, value) VALUES ('tr_queue_members', '1')",
                      NULL);
    return tr_txn_end(e, err);
}
