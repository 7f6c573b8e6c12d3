/* stats.c - real-time statistics from the live tables and cumulative statistics from the
 * recorded events (each event keeps its queue and, for acceptance and cancellation, the
 * task's wait).
 *
 * Layer: engine.
 */
#include "engine/taskrouter/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/taskrouter/core.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/rows.h"
#include "base/timefmt.h"

/* Adds the age (s) and sid of the first task of sql (one 's' parameter, queue_sid; columns
 * sid and the time the age counts from) to j under age_key and sid_key. */
static void oldest(tr_engine_t *e, json_t *j, const char *age_key, const char *sid_key,
                   const char *sql, const char *queue_sid, int64_t now)
{
    store_stmt_t *st = db_query(e->store, sql, "s", queue_sid);
    bool found = st && store_step(st) == STORE_ROW;
    json_object_set_new(j, age_key,
                        json_integer(found ? (now - store_col_int64(st, 1)) / 1000 : 0));
    json_object_set_new(j, sid_key, found ? tr_jstr(store_col_text(st, 0)) : json_null());
    store_release(e->store, st);
}

/* The workspace's oldest pending task by creation, as a first row of (sid, date_created): the
 * oldest of each queue that has pending tasks (tr_queue_counts), each the first entry of its
 * index, and of the tasks without a queue; so its cost grows with the queues, not the tasks.
 * The sid is written to sid (SID_LEN + 1 bytes); false when there is none. */
static bool workspace_oldest(tr_engine_t *e, char sid[SID_LEN + 1], int64_t *created)
{
    static const char *const FIRST =
        "SELECT sid, date_created, seq FROM tr_tasks WHERE queue_sid = ? AND status = 'pending'"
        " ORDER BY date_created, seq LIMIT 1";
    tr_sids_t queues = {0};
    bool found = false;
    int64_t best_seq = 0;
    if (db_sids(e->store, &queues,
                "SELECT DISTINCT queue_sid FROM tr_queue_counts WHERE status = 'pending' AND"
                " n > 0",
                NULL))
        return false;
    for (size_t i = 0; i <= queues.n; i++) {
        store_stmt_t *st =
            i < queues.n ? db_query(e->store, FIRST, "s", queues.sid[i])
                         : db_query(e->store,
                                    "SELECT sid, date_created, seq FROM tr_tasks WHERE queue_sid"
                                    " IS NULL AND status = 'pending' ORDER BY date_created, seq"
                                    " LIMIT 1",
                                    NULL);
        if (st && store_step(st) == STORE_ROW && store_col_text(st, 0)) {
            int64_t c = store_col_int64(st, 1), seq = store_col_int64(st, 2);
            if (!found || c < *created || (c == *created && seq < best_seq)) {
                snprintf(sid, SID_LEN + 1, "%s", store_col_text(st, 0));
                *created = c;
                best_seq = seq;
                found = true;
            }
        }
        store_release(e->store, st);
    }
    free(queues.sid);
    return found;
}

/* Adds the oldest pending task's age and sid (by creation and by queue entry) to j. */
static void longest(tr_engine_t *e, json_t *j, const char *queue_sid, int64_t now)
{
    if (!queue_sid) {
        char sid[SID_LEN + 1];
        int64_t created = 0;
        bool found = workspace_oldest(e, sid, &created);
        json_object_set_new(j, "longest_task_waiting_age",
                            json_integer(found ? (now - created) / 1000 : 0));
        json_object_set_new(j, "longest_task_waiting_sid", found ? json_string(sid) : json_null());
        return;
    }
    oldest(e, j, "longest_task_waiting_age", "longest_task_waiting_sid",
           "SELECT sid, date_created FROM tr_tasks WHERE queue_sid = ?1 AND"
           " status = 'pending' ORDER BY date_created, seq LIMIT 1",
           queue_sid, now);
    if (queue_sid)
        oldest(e, j, "longest_relative_task_age_in_queue", "longest_relative_task_sid_in_queue",
               "SELECT sid, queue_entered_ms FROM tr_tasks WHERE status = 'pending' AND"
               " queue_sid = ? ORDER BY queue_entered_ms, seq LIMIT 1",
               queue_sid, now);
}

/* Counts the open tasks (of a queue) grouped by sql's first column into the object into,
 * keyed by that column's text, and returns their total. */
static json_int_t count_into(tr_engine_t *e, json_t *into, const char *sql, const char *queue_sid)
{
    json_int_t total = 0;
    store_stmt_t *st = db_query(e->store, sql, "s", queue_sid);
    while (st && store_step(st) == STORE_ROW) {
        json_int_t n = store_col_int64(st, 1);
        json_object_set_new(into, store_col_text(st, 0), json_integer(n));
        total += n;
    }
    store_release(e->store, st);
    return total;
}

/* Adds total_tasks, tasks_by_status and tasks_by_priority of the open tasks (of a queue). */
static void task_counts(tr_engine_t *e, json_t *j, const char *queue_sid)
{
    json_t *by_status = json_pack("{s:i, s:i, s:i, s:i}", "pending", 0, "reserved", 0, "assigned",
                                  0, "wrapping", 0);
    json_t *by_prio = json_object();
    /* A queue's counts are its rows of tr_queue_counts (counts.c), kept on each change; the
     * workspace's are all of them, and the open tasks without a queue (counted from the
     * index of the tasks by queue, whose NULL part holds only those). */
    json_int_t total = count_into(
        e, by_status,
        queue_sid ? "SELECT status, sum(n) FROM tr_queue_counts WHERE queue_sid = ?1"
                    " GROUP BY status HAVING sum(n) > 0"
                  : "SELECT status, sum(n) FROM (SELECT status, n FROM tr_queue_counts UNION ALL"
                    " SELECT status, 1 FROM tr_tasks WHERE queue_sid IS NULL AND status "
                    "IN " TR_TASK_OPEN_SQL ") c WHERE CAST(?1 AS TEXT) IS NULL GROUP BY status"
                    " HAVING sum(n) > 0",
        queue_sid);
    count_into(e, by_prio,
               queue_sid ? "SELECT priority, sum(n) FROM tr_queue_counts WHERE queue_sid = ?1"
                           " GROUP BY priority HAVING sum(n) > 0 ORDER BY priority"
                         : "SELECT priority, sum(n) FROM (SELECT priority, n FROM tr_queue_counts"
                           " UNION ALL SELECT priority, 1 FROM tr_tasks WHERE queue_sid IS NULL AND"
                           " status IN " TR_TASK_OPEN_SQL ") c WHERE CAST(?1 AS TEXT) IS NULL"
                           " GROUP BY priority HAVING sum(n) > 0 ORDER BY priority",
               queue_sid);
    json_object_set_new(j, "total_tasks", json_integer(total));
    json_object_set_new(j, "tasks_by_status", by_status);
    json_object_set_new(j, "tasks_by_priority", by_prio);
}

/* Adds activity_statistics for the members of queue_sid (tr_queue_members; all workers when
 * queue_sid is NULL) and returns the counts of eligible and available (free, available
 * activity) workers. One grouped query: no worker's attributes are parsed. */
static void worker_counts(tr_engine_t *e, json_t *j, const char *queue_sid, json_int_t *eligible,
                          json_int_t *available)
{
    tr_activity_t *acts = NULL;
    size_t n_acts = 0;
    json_t *stats = json_array();
    json_t *counts = json_object();
    *eligible = *available = 0;
    rows_all(e, &TR_ACTIVITY_ROW, (void **)&acts, &n_acts, TR_ACTIVITY_SELECT "ORDER BY seq", NULL);
#define FREE_SQL                                                                                   \
    "sum(CASE WHEN a.available = 1 AND NOT EXISTS (SELECT 1 FROM tr_reservations r WHERE"          \
    " r.worker_sid = w.sid AND r.status IN " TR_RES_HOLDING_SQL ") THEN 1 ELSE 0 END)"
    /* A queue's: its members by activity from tr_queue_activity_counts (members.c), and the
     * free ones among its available members (index tr_queue_members_free), so that no read
     * goes over every member. */
    store_stmt_t *st =
        queue_sid ? db_query(e->store,
                             "SELECT activity_sid, n, 0 FROM tr_queue_activity_counts"
                             " WHERE queue_sid = ? AND n > 0",
                             "s", queue_sid)
                  : db_query(e->store,
                             "SELECT w.activity_sid, count(*), " FREE_SQL
                             " FROM tr_workers w JOIN tr_activities a ON a.sid = w.activity_sid"
                             " GROUP BY w.activity_sid",
                             NULL);
#undef FREE_SQL
    while (st && store_step(st) == STORE_ROW) {
        const char *act = store_col_text(st, 0);
        json_int_t n = store_col_int64(st, 1);
        if (act)
            json_object_set_new(counts, act, json_integer(n));
        *eligible += n;
        *available += store_col_int64(st, 2);
    }
    store_release(e->store, st);
    if (queue_sid)
        *available =
            db_int(e->store, 0,
                   "SELECT count(*) FROM tr_queue_members m WHERE m.queue_sid = ? AND"
                   " m.available = 1 AND NOT EXISTS (SELECT 1 FROM tr_reservations r"
                   " WHERE r.worker_sid = m.worker_sid AND r.status IN " TR_RES_HOLDING_SQL ")",
                   "s", queue_sid);
    for (size_t i = 0; i < n_acts; i++)
        json_array_append_new(stats,
                              json_pack("{s:s, s:s, s:I}", "sid", acts[i].sid, "friendly_name",
                                        acts[i].friendly_name, "workers",
                                        json_integer_value(json_object_get(counts, acts[i].sid))));
    json_object_set_new(j, "activity_statistics", stats);
    rows_free(&TR_ACTIVITY_ROW, acts, n_acts);
    json_decref(counts);
}

tassa_err tr_queue_realtime(tr_engine_t *e, const char *queue_sid, const char *base_url,
                            json_t **out, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    json_int_t eligible, available;
    *out = NULL;
    store_lock(e->store);
    tr_queue_t q = {0};
    bool found = tr_queue_load(e, queue_sid, &q);
    expr_t *qx = found ? expr_parse(q.target_workers, NULL) : NULL;
    json_t *j = found ? json_object() : NULL;
    if (j) {
        char url[640];
        snprintf(url, sizeof url, "%s/v1/Workspaces/%s/TaskQueues/%s/RealTimeStatistics", base_url,
                 e->ws_sid, queue_sid);
        json_object_set_new(j, "account_sid", json_string(e->account_sid));
        json_object_set_new(j, "workspace_sid", json_string(e->ws_sid));
        json_object_set_new(j, "task_queue_sid", json_string(queue_sid));
        json_object_set_new(j, "url", json_string(url));
        task_counts(e, j, queue_sid);
        longest(e, j, queue_sid, now);
        if (qx) {
            worker_counts(e, j, queue_sid, &eligible, &available);
        } else { /* an unparsable TargetWorkers matches nobody */
            eligible = available = 0;
            json_object_set_new(j, "activity_statistics", json_array());
        }
        json_object_set_new(j, "total_eligible_workers", json_integer(eligible));
        json_object_set_new(j, "total_available_workers", json_integer(available));
    }
    tassa_err missing = found ? TASSA_OK : tr_missing_locked(e, em, "TaskQueues", queue_sid);
    store_unlock(e->store);
    expr_free(qx);
    rows_clear(&TR_QUEUE_ROW, &q);
    if (missing)
        return missing;
    *out = j;
    return j ? TASSA_OK : TASSA_ENOMEM;
}

/* The events of type of a queue since from (ms): their number and their wait_ms (count of
 * those with one, sum, min, max; min and max -1 when none). Whole minutes from
 * tr_event_minutes (record.c), the part of the first minute from the partial index
 * tr_events_counted (named by its TR_COUNTED_SQL), so that the cost is one minute's events
 * at most, not the window's. */
typedef struct {
    int64_t n, wait_n, wait_sum, wait_min, wait_max;
} ev_tally_t;

static void tally_add(ev_tally_t *t, store_stmt_t *st)
{
    bool row = st && store_step(st) == STORE_ROW;
    if (!row)
        return;
    t->n += store_col_int64(st, 0);
    t->wait_n += store_col_int64(st, 1);
    t->wait_sum += store_col_int64(st, 2);
    if (!store_col_is_null(st, 3) && (t->wait_min < 0 || store_col_int64(st, 3) < t->wait_min))
        t->wait_min = store_col_int64(st, 3);
    if (!store_col_is_null(st, 4) && store_col_int64(st, 4) > t->wait_max)
        t->wait_max = store_col_int64(st, 4);
}

static ev_tally_t tally(tr_engine_t *e, const char *queue_sid, const char *type, int64_t from)
{
    ev_tally_t t = {0, 0, 0, -1, -1};
    int64_t whole = (from + 59999) / 60000; /* the first minute wholly in the window */
    store_stmt_t *st = db_query(e->store,
                                "SELECT coalesce(sum(n), 0), coalesce(sum(wait_n), 0),"
                                " coalesce(sum(wait_sum), 0), min(wait_min), max(wait_max)"
                                " FROM tr_event_minutes WHERE queue_sid = ? AND event_type = ?"
                                " AND minute >= ?",
                                "ssi", queue_sid, type, whole);
    tally_add(&t, st);
    store_release(e->store, st);
    st = db_query(e->store,
                  "SELECT count(*), count(wait_ms), coalesce(sum(wait_ms), 0), min(wait_ms),"
                  " max(wait_ms) FROM tr_events WHERE queue_sid = ? AND event_type = ? AND"
                  " date_ms >= ? AND date_ms < ? AND event_type IN " TR_COUNTED_SQL,
                  "ssii", queue_sid, type, from, whole * 60000);
    tally_add(&t, st);
    store_release(e->store, st);
    /* and the events of that type that are members of a row (record.h's groups; no wait) */
    st = db_query(e->store,
                  "SELECT count(*), 0, 0, NULL, NULL FROM tr_events WHERE queue_sid = ? AND"
                  " counted = ? AND date_ms >= ? AND date_ms < ? AND counted IS NOT NULL",
                  "ssii", queue_sid, type, from, whole * 60000);
    tally_add(&t, st);
    store_release(e->store, st);
    return t;
}

/* {avg, min, max, total} in seconds of the wait_ms of t. */
static json_t *durations(const ev_tally_t *t)
{
    double avg = t->wait_n ? (double)t->wait_sum / (double)t->wait_n : 0;
    int64_t mi = t->wait_min < 0 ? 0 : t->wait_min, ma = t->wait_max < 0 ? 0 : t->wait_max;
    return json_pack("{s:I, s:I, s:I, s:I}", "avg", (json_int_t)(avg / 1000 + 0.5), "min",
                     (json_int_t)(mi / 1000), "max", (json_int_t)(ma / 1000), "total",
                     (json_int_t)(t->wait_sum / 1000));
}

tassa_err tr_queue_cumulative(tr_engine_t *e, const char *queue_sid, long minutes,
                              const char *base_url, json_t **out, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    *out = NULL;
    if (minutes < 1 || minutes > 43200)
        return err_set(em, TASSA_EINVAL, "Minutes must be from 1 to 43200");
    int64_t from = now - (int64_t)minutes * 60000;
    store_lock(e->store);
    bool found = db_int(e->store, 0, "SELECT 1 FROM tr_queues WHERE sid = ?", "s", queue_sid) == 1;
    json_t *j = found ? json_object() : NULL;
    if (j) {
        char url[640], start[TIMEFMT_LEN], end[TIMEFMT_LEN];
        snprintf(url, sizeof url, "%s/v1/Workspaces/%s/TaskQueues/%s/CumulativeStatistics",
                 base_url, e->ws_sid, queue_sid);
        timefmt_iso(from, start);
        timefmt_iso(now, end);
        json_object_set_new(j, "account_sid", json_string(e->account_sid));
        json_object_set_new(j, "workspace_sid", json_string(e->ws_sid));
        json_object_set_new(j, "task_queue_sid", json_string(queue_sid));
        json_object_set_new(j, "start_time", json_string(start));
        json_object_set_new(j, "end_time", json_string(end));
        json_object_set_new(j, "url", json_string(url));
        ev_tally_t accepted = {0}, canceled = {0};
        for (size_t i = 0; i < TR_COUNTED_N; i++) {
            ev_tally_t t = tally(e, queue_sid, TR_COUNTED[i].type, from);
            json_object_set_new(j, TR_COUNTED[i].field, json_integer(t.n));
            if (!strcmp(TR_COUNTED[i].type, "reservation.accepted"))
                accepted = t;
            else if (!strcmp(TR_COUNTED[i].type, "task.canceled"))
                canceled = t;
        }
        json_t *acc = durations(&accepted);
        json_object_set(j, "avg_task_acceptance_time", json_object_get(acc, "avg"));
        json_object_set_new(j, "wait_duration_until_accepted", acc);
        json_object_set_new(j, "wait_duration_in_queue_until_accepted", durations(&accepted));
        json_object_set_new(j, "wait_duration_until_canceled", durations(&canceled));
        json_object_set_new(j, "split_by_wait_time", json_null());
    }
    tassa_err missing = found ? TASSA_OK : tr_missing_locked(e, em, "TaskQueues", queue_sid);
    store_unlock(e->store);
    if (missing)
        return missing;
    *out = j;
    return j ? TASSA_OK : TASSA_ENOMEM;
}

tassa_err tr_workspace_realtime(tr_engine_t *e, const char *base_url, json_t **out, errmsg_t *em)
{
    int64_t now = tr_now_ms(e);
    json_int_t eligible, available;
    char url[640];
    json_t *j = json_object();
    *out = NULL;
    if (!j)
        return TASSA_ENOMEM;
    snprintf(url, sizeof url, "%s/v1/Workspaces/%s/RealTimeStatistics", base_url, e->ws_sid);
    store_lock(e->store);
    json_object_set_new(j, "account_sid", json_string(e->account_sid));
    json_object_set_new(j, "workspace_sid", json_string(e->ws_sid));
    json_object_set_new(j, "url", json_string(url));
    task_counts(e, j, NULL);
    longest(e, j, NULL, now);
    worker_counts(e, j, NULL, &eligible, &available);
    json_object_set_new(j, "total_workers", json_integer(eligible));
    store_unlock(e->store);
    *out = j;
    return TASSA_OK;
}

tassa_err tr_queue_stats_json(tr_engine_t *e, const char *queue_sid, long minutes,
                              const char *base_url, json_t **realtime, json_t **cumulative)
{
    *cumulative = NULL;
    tassa_err err = tr_queue_realtime(e, queue_sid, base_url, realtime, NULL);
    if (!err)
        err = tr_queue_cumulative(e, queue_sid, minutes, base_url, cumulative, NULL);
    if (err) {
        json_decref(*realtime);
        *realtime = NULL;
    }
    return err;
}

tassa_err tr_stats_census(tr_engine_t *e, tr_census_fn fn, void *ctx)
{
    /* The open tasks from the queues' counters (and those without a queue), the finished ones
     * (kept 15 minutes) from their part of the status index: no scan of every task. */
    static const char *const sql[2] = {
        "SELECT status, sum(n) FROM (SELECT status, n FROM tr_queue_counts UNION ALL"
        " SELECT status, 1 FROM tr_tasks WHERE queue_sid IS NULL AND status IN " TR_TASK_OPEN_SQL
        " UNION ALL SELECT status, 1 FROM tr_tasks WHERE status IN ('completed', 'canceled')) c"
        " GROUP BY status HAVING sum(n) > 0 ORDER BY status",
        "SELECT a.friendly_name, count(w.sid) FROM tr_activities a"
        " LEFT JOIN tr_workers w ON w.activity_sid = a.sid GROUP BY a.sid, a.friendly_name",
    };
    tassa_err err = TASSA_OK;
    store_lock(e->store);
    for (int k = 0; k < 2 && !err; k++) {
        store_stmt_t *st = store_prepare(e->store, sql[k]);
        if (!st) {
            err = TASSA_ESTORE;
            break;
        }
        while (store_step(st) == STORE_ROW)
            fn(ctx, k == 0 ? "task" : "worker", store_col_text(st, 0), store_col_int64(st, 1));
        store_release(e->store, st);
    }
    store_unlock(e->store);
    return err;
}
