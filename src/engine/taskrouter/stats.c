/* stats.c - real-time statistics from the live tables and cumulative statistics from the
 * recorded events (each event keeps its queue and, for acceptance and cancellation, the
 * task's wait).
 *
 * Layer: engine.
 */
#include "engine/taskrouter/stats.h"

#include <stdio.h>
#include <string.h>

#include "engine/taskrouter/core.h"
#include "engine/taskrouter/rows.h"
#include "base/timefmt.h"

#define OPEN_STATUSES "('pending', 'reserved', 'assigned', 'wrapping')"

/* Adds the oldest pending task's age and sid (by creation and by queue entry) to j. */
static void longest(tr_engine_t *e, json_t *j, const char *queue_sid, int64_t now)
{
    json_t *t = db_one(e->store,
                       "SELECT sid, date_created FROM tr_tasks WHERE status = 'pending' AND"
                       " (?1 IS NULL OR queue_sid = ?1) ORDER BY date_created, seq LIMIT 1",
                       "s", queue_sid);
    json_object_set_new(j, "longest_task_waiting_age",
                        json_integer(t ? (now - row_int(t, "date_created")) / 1000 : 0));
    json_object_set_new(j, "longest_task_waiting_sid",
                        t ? json_string(row_str(t, "sid")) : json_null());
    json_decref(t);
    if (!queue_sid)
        return;
    t = db_one(e->store,
               "SELECT sid, queue_entered_ms FROM tr_tasks WHERE status = 'pending' AND"
               " queue_sid = ? ORDER BY queue_entered_ms, seq LIMIT 1",
               "s", queue_sid);
    json_object_set_new(j, "longest_relative_task_age_in_queue",
                        json_integer(t ? (now - row_int(t, "queue_entered_ms")) / 1000 : 0));
    json_object_set_new(j, "longest_relative_task_sid_in_queue",
                        t ? json_string(row_str(t, "sid")) : json_null());
    json_decref(t);
}

/* Adds total_tasks, tasks_by_status and tasks_by_priority of the open tasks (of a queue). */
static void task_counts(tr_engine_t *e, json_t *j, const char *queue_sid)
{
    json_t *by_status = json_pack("{s:i, s:i, s:i, s:i}", "pending", 0, "reserved", 0, "assigned",
                                  0, "wrapping", 0);
    json_t *by_prio = json_object();
    json_int_t total = 0;
    json_t *rows =
        db_all(e->store,
               "SELECT status, count(*) AS n FROM tr_tasks WHERE status IN " OPEN_STATUSES
               " AND (?1 IS NULL OR queue_sid = ?1) GROUP BY status",
               "s", queue_sid);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *r = json_array_get(rows, i);
        json_object_set_new(by_status, row_str(r, "status"), json_integer(row_int(r, "n")));
        total += row_int(r, "n");
    }
    json_decref(rows);
    rows = db_all(e->store,
                  "SELECT priority, count(*) AS n FROM tr_tasks WHERE status IN " OPEN_STATUSES
                  " AND (?1 IS NULL OR queue_sid = ?1) GROUP BY priority",
                  "s", queue_sid);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *r = json_array_get(rows, i);
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)row_int(r, "priority"));
        json_object_set_new(by_prio, key, json_integer(row_int(r, "n")));
    }
    json_decref(rows);
    json_object_set_new(j, "total_tasks", json_integer(total));
    json_object_set_new(j, "tasks_by_status", by_status);
    json_object_set_new(j, "tasks_by_priority", by_prio);
}

/* Adds activity_statistics for the workers that qx accepts (all when qx is NULL) and
 * returns the counts of eligible and available (free, available activity) workers. */
static void worker_counts(tr_engine_t *e, json_t *j, const expr_t *qx, json_int_t *eligible,
                          json_int_t *available)
{
    json_t *acts =
        db_all(e->store, "SELECT sid, friendly_name FROM tr_activities ORDER BY seq", NULL);
    json_t *stats = json_array();
    json_t *counts = json_object();
    *eligible = *available = 0;
    sqlite3_stmt *st =
        db_query(e->store,
                 "SELECT x.*, (SELECT count(*) FROM tr_reservations r WHERE"
                 " r.worker_sid = x.sid AND r.status IN ('pending', 'accepted', 'wrapping'))"
                 " AS busy FROM (" TR_WORKER_SELECT ") x",
                 NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        json_t *w = db_row(st);
        json_t *subject = w ? tr_worker_subject(w) : NULL;
        if (subject && (!qx || tr_worker_in_queue(subject, qx))) {
            const char *a = row_str(w, "activity_sid");
            json_object_set_new(counts, a,
                                json_integer(json_integer_value(json_object_get(counts, a)) + 1));
            (*eligible)++;
            if (row_int(w, "available") && row_int(w, "busy") == 0)
                (*available)++;
        }
        json_decref(subject);
        json_decref(w);
    }
    store_release(e->store, st);
    for (size_t i = 0; i < json_array_size(acts); i++) {
        const json_t *a = json_array_get(acts, i);
        json_array_append_new(
            stats, json_pack("{s:s, s:s, s:I}", "sid", row_str(a, "sid"), "friendly_name",
                             row_str(a, "friendly_name"), "workers",
                             json_integer_value(json_object_get(counts, row_str(a, "sid")))));
    }
    json_object_set_new(j, "activity_statistics", stats);
    json_decref(acts);
    json_decref(counts);
}

tassa_err tr_queue_realtime(tr_engine_t *e, const char *queue_sid, const char *base_url,
                            json_t **out, errmsg_t *em)
{
    int64_t now = store_now_ms();
    json_int_t eligible, available;
    *out = NULL;
    store_lock(e->store);
    json_t *q = tr_load_queue(e, queue_sid);
    expr_t *qx = q ? expr_parse(row_str(q, "target_workers"), NULL) : NULL;
    json_t *j = q ? json_object() : NULL;
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
            worker_counts(e, j, qx, &eligible, &available);
        } else { /* an unparsable TargetWorkers matches nobody */
            json_t *none = json_object();
            worker_counts(e, none, NULL, &eligible, &available);
            json_decref(none);
            eligible = available = 0;
            json_object_set_new(j, "activity_statistics", json_array());
        }
        json_object_set_new(j, "total_eligible_workers", json_integer(eligible));
        json_object_set_new(j, "total_available_workers", json_integer(available));
    }
    store_unlock(e->store);
    expr_free(qx);
    if (!q)
        return tr_not_found(e, em, "TaskQueues", queue_sid);
    json_decref(q);
    *out = j;
    return j ? TASSA_OK : TASSA_ENOMEM;
}

/* {avg, min, max, total} in seconds of the wait_ms of events of type in the window. */
static json_t *durations(tr_engine_t *e, const char *queue_sid, const char *type, int64_t from)
{
    json_t *r = db_one(e->store,
                       "SELECT count(wait_ms) AS n, coalesce(avg(wait_ms), 0) AS a,"
                       " coalesce(min(wait_ms), 0) AS mi, coalesce(max(wait_ms), 0) AS ma,"
                       " coalesce(sum(wait_ms), 0) AS t FROM tr_events WHERE queue_sid = ? AND"
                       " event_type = ? AND date_ms >= ?",
                       "ssi", queue_sid, type, from);
    double avg = json_is_real(json_object_get(r, "a")) ? json_real_value(json_object_get(r, "a"))
                                                       : (double)row_int(r, "a");
    json_t *j = json_pack("{s:I, s:I, s:I, s:I}", "avg", (json_int_t)(avg / 1000 + 0.5), "min",
                          (json_int_t)(row_int(r, "mi") / 1000), "max",
                          (json_int_t)(row_int(r, "ma") / 1000), "total",
                          (json_int_t)(row_int(r, "t") / 1000));
    json_decref(r);
    return j;
}

tassa_err tr_queue_cumulative(tr_engine_t *e, const char *queue_sid, long minutes,
                              const char *base_url, json_t **out, errmsg_t *em)
{
    static const struct {
        const char *field, *type;
    } COUNTS[] = {
        {"tasks_entered", "task-queue.entered"},
        {"tasks_moved", "task-queue.moved"},
        {"tasks_completed", "task.completed"},
        {"tasks_canceled", "task.canceled"},
        {"tasks_deleted", "task.deleted"},
        {"reservations_created", "reservation.created"},
        {"reservations_accepted", "reservation.accepted"},
        {"reservations_rejected", "reservation.rejected"},
        {"reservations_timed_out", "reservation.timeout"},
        {"reservations_canceled", "reservation.canceled"},
        {"reservations_rescinded", "reservation.rescinded"},
    };
    int64_t now = store_now_ms();
    *out = NULL;
    if (minutes < 1 || minutes > 43200)
        return err_set(em, TASSA_EINVAL, "Minutes must be from 1 to 43200");
    int64_t from = now - (int64_t)minutes * 60000;
    store_lock(e->store);
    json_t *q = tr_load_queue(e, queue_sid);
    json_t *j = q ? json_object() : NULL;
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
        for (size_t i = 0; i < sizeof COUNTS / sizeof COUNTS[0]; i++)
            json_object_set_new(
                j, COUNTS[i].field,
                json_integer(db_int(e->store, 0,
                                    "SELECT count(*) FROM tr_events WHERE queue_sid = ? AND"
                                    " event_type = ? AND date_ms >= ?",
                                    "ssi", queue_sid, COUNTS[i].type, from)));
        json_t *acc = durations(e, queue_sid, "reservation.accepted", from);
        json_object_set(j, "avg_task_acceptance_time", json_object_get(acc, "avg"));
        json_object_set_new(j, "wait_duration_until_accepted", acc);
        json_object_set_new(j, "wait_duration_in_queue_until_accepted",
                            durations(e, queue_sid, "reservation.accepted", from));
        json_object_set_new(j, "wait_duration_until_canceled",
                            durations(e, queue_sid, "task.canceled", from));
        json_object_set_new(j, "split_by_wait_time", json_null());
    }
    store_unlock(e->store);
    if (!q)
        return tr_not_found(e, em, "TaskQueues", queue_sid);
    json_decref(q);
    *out = j;
    return j ? TASSA_OK : TASSA_ENOMEM;
}

tassa_err tr_workspace_realtime(tr_engine_t *e, const char *base_url, json_t **out, errmsg_t *em)
{
    int64_t now = store_now_ms();
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
    static const char *const sql[2] = {
        "SELECT status, count(*) FROM tr_tasks GROUP BY status",
        "SELECT a.friendly_name, count(w.sid) FROM tr_activities a"
        " LEFT JOIN tr_workers w ON w.activity_sid = a.sid GROUP BY a.sid",
    };
    tassa_err err = TASSA_OK;
    store_lock(e->store);
    for (int k = 0; k < 2 && !err; k++) {
        sqlite3_stmt *st = store_prepare(e->store, sql[k]);
        if (!st) {
            err = TASSA_ESTORE;
            break;
        }
        while (sqlite3_step(st) == SQLITE_ROW)
            fn(ctx, k == 0 ? "task" : "worker", (const char *)sqlite3_column_text(st, 0),
               sqlite3_column_int64(st, 1));
        store_release(e->store, st);
    }
    store_unlock(e->store);
    return err;
}
