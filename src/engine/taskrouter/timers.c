/* timers.c - the deadlines of the model: reservation timeouts, workflow target timeouts and
 * task TTLs, all stored as columns so that they survive a restart.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/lifecycle.h"

#include "base/task_order.h"

#include <stdlib.h>
#include <string.h>

/* Applies the single most overdue deadline, if any. *applied tells whether one was. Every
 * deadline query walks its partial index in order (INDEXED BY): this runs after every
 * commit, so it must not scan the waiting tasks. */
static tassa_err apply_one(tr_engine_t *e, int64_t now, bool *applied)
{
    char sid[SID_LEN + 1];
    tassa_err err = TASSA_OK;
    *applied = true;
    if (db_sid(e->store, sid,
               "SELECT sid FROM tr_reservations INDEXED BY tr_res_deadline WHERE deadline IS NOT"
               " NULL AND deadline <= ? AND status = 'pending' ORDER BY deadline LIMIT 1",
               "i", now)) {
        err = tr_reservation_end_locked(e, sid, "timeout", now);
    } else if (db_sid(e->store, sid,
                      "SELECT sid FROM tr_tasks INDEXED BY tr_tasks_ttl WHERE ttl_deadline IS NOT"
                      " NULL AND ttl_deadline <= ? AND status IN " TASK_WAITING_SQL
                      " ORDER BY ttl_deadline LIMIT 1",
                      "i", now)) {
        err = tr_task_cancel_locked(e, sid, "Task TTL Exceeded", now);
    } else if (db_sid(e->store, sid,
                      "SELECT sid FROM tr_tasks INDEXED BY tr_tasks_target WHERE target_deadline IS"
                      " NOT NULL AND target_deadline <= ? AND status = 'pending' ORDER BY"
                      " target_deadline LIMIT 1",
                      "i", now)) {
        err = tr_task_target_timeout_locked(e, sid, now);
    } else {
        *applied = false;
    }
    return err;
}

tassa_err tr_timers_apply_locked(tr_engine_t *e, int64_t now, int64_t *next)
{
    tassa_err err = TASSA_OK;
    bool any = false, applied = true;
    /* A bounded batch per transaction keeps the lock short; the rest comes next round. */
    for (int i = 0; !err && applied && i < 500; i++) {
        err = apply_one(e, now, &applied);
        any |= applied;
    }
    if (!err && any)
        err = tr_match_locked(e, now);
    if (err)
        return err;
    int64_t n = INT64_MAX, v;
    v = db_int(e->store, INT64_MAX,
               "SELECT deadline FROM tr_reservations INDEXED BY tr_res_deadline WHERE"
               " deadline IS NOT NULL AND status = 'pending' ORDER BY deadline LIMIT 1",
               NULL);
    n = v < n ? v : n;
    v = db_int(e->store, INT64_MAX,
               "SELECT ttl_deadline FROM tr_tasks INDEXED BY tr_tasks_ttl WHERE ttl_deadline IS"
               " NOT NULL AND status IN " TASK_WAITING_SQL " ORDER BY ttl_deadline LIMIT 1",
               NULL);
    n = v < n ? v : n;
    v = db_int(e->store, INT64_MAX,
               "SELECT target_deadline FROM tr_tasks INDEXED BY tr_tasks_target WHERE"
               " target_deadline IS NOT NULL AND status = 'pending' ORDER BY target_deadline"
               " LIMIT 1",
               NULL);
    n = v < n ? v : n;
    if (now - e->last_prune_ms >= TR_PRUNE_EVERY_MS) {
        if ((err = tr_prune_locked(e, now)))
            return err;
        e->last_prune_ms = now;
    }
    if (n > now + TR_PRUNE_EVERY_MS) /* wake up for the next pruning round */
        n = now + TR_PRUNE_EVERY_MS;
    if (applied) /* the batch was cut short: come back at once */
        n = now;
    *next = n;
    return TASSA_OK;
}

tassa_err tr_prune_locked(tr_engine_t *e, int64_t now)
{
    /* Bounded batches keep the lock short; what is left goes next round. */
    int64_t finished_before = (int64_t)(now - TR_KEEP_FINISHED_MS);
    tr_sids_t done = {0};
    tassa_err err = db_sids(e->store, &done,
                            "SELECT sid FROM tr_tasks WHERE status IN ('completed', 'canceled')"
                            " AND date_updated < ? LIMIT 500",
                            "i", finished_before);
    for (size_t i = 0; !err && i < done.n; i++)
        err = tr_task_gone_locked(e, done.sid[i], now);
    free(done.sid);
    if (!err)
        err = db_exec(e->store,
                      "DELETE FROM tr_events WHERE seq IN (SELECT seq FROM tr_events WHERE "
                      "seq <= (SELECT seq FROM tr_event_cursor) AND date_ms < ? LIMIT 5000)",
                      "i", (int64_t)(now - TR_KEEP_EVENTS_MS));
    if (!err) /* a queue's events by minute (record.c): no window reaches further back */
        err = db_exec(e->store, "DELETE FROM tr_event_minutes WHERE minute < ?", "i",
                      (int64_t)((now - TR_KEEP_EVENTS_MS) / 60000 - 1));
    /* Task parameter sets (record.c) no event is stored against any more: every event of a
     * task is from before its task was gone (ended_ms), so once the oldest event left is
     * newer than that (with an hour for the clock), none of its events is left. */
    if (!err)
        err = db_exec(e->store,
                      "DELETE FROM tr_event_bases WHERE id IN (SELECT id FROM tr_event_bases"
                      " WHERE ended_ms IS NOT NULL AND ended_ms < (SELECT coalesce(min(date_ms),"
                      " CAST(? AS INTEGER)) FROM tr_events) - ? LIMIT 5000)",
                      "ii", now + TR_BASE_MARGIN_MS, (int64_t)TR_BASE_MARGIN_MS);
    if (!err) /* emptied rank buckets (counts.c): a row per second of queue entries otherwise */
        err = db_exec(e->store, "DELETE FROM tr_rank_buckets WHERE n = 0", NULL);
    return err;
}

tassa_err tr_task_gone_locked(tr_engine_t *e, const char *sid, int64_t now)
{
    tassa_err err = db_exec(e->store,
                            "UPDATE tr_event_bases SET ended_ms = ? WHERE task_sid = ? AND"
                            " ended_ms IS NULL",
                            "is", now, sid);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_reservations WHERE task_sid = ?", "s", sid);
    if (!err)
        err = tr_task_tally_locked(e, sid, -1);
    if (!err)
        err = db_exec(e->store, "DELETE FROM tr_tasks WHERE sid = ?", "s", sid);
    if (!err && store_changes(e->store) > 0)
        err = tr_count_add_locked(e, "tasks", -1);
    return err;
}
