/* engine.c - the TaskRouter engine's lifecycle: schema, workspace bootstrap, the timer thread
 * and the event dispatcher thread.
 *
 * The model is only the store's tables; the engine keeps no copy of it in memory, so a restart
 * loses nothing. Deadlines (reservation timeouts, target timeouts, TTLs) are columns; the timer
 * thread sleeps until the earliest and is woken after each commit, since a commit may have
 * written a nearer one. Events are rows in sequence (commit) order; the dispatcher delivers
 * them in that order, outside the store lock, and then moves the delivery cursor
 * (tr_event_cursor) past them.
 *
 * Several nodes (a shared PostgreSQL store): both threads work only while this process holds
 * the workspace's lease ("taskrouter:<WorkspaceSid>", store_lease_hold), so deadlines and
 * event delivery run on one node per workspace. A node without the lease looks again every
 * second (LEASE_LOOK_MS); when it takes the lease over it recovers everything from the tables
 * (the deadlines are columns, the undelivered events rows), so a reservation timeout that was
 * pending on a dead node fires on the survivor. Commits on any node notify TR_CHANNEL (core.c
 * tr_txn_end), and the listener here wakes both threads at once. Matching on API calls stays
 * in the caller's critical section, which the store serializes across nodes. Delivery stays at
 * least once across a crash (an event is marked after the sink returned); the consumers are
 * idempotent by event Sid (the callback outbox's unique (event_sid, url), the router's
 * forward-only topic merge).
 *
 * Layer: engine.
 */
#include "engine/taskrouter/engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/lifecycle.h"
#include "engine/taskrouter/rows.h"
#include "store/migrate.h"

/* How often a node without the workspace's lease looks whether it can take it over. */
#define LEASE_LOOK_MS 1000

/* The TaskRouter schema, one migration step per version (store/migrate.h); version 1 is the
 * schema from before versioned migrations. */
static const migrate_step_t MIGRATIONS[] = {
    {"CREATE TABLE IF NOT EXISTS tr_workspace ("
     "  sid TEXT PRIMARY KEY, friendly_name TEXT NOT NULL, event_callback_url TEXT,"
     "  events_filter TEXT, multi_task_enabled INTEGER NOT NULL DEFAULT 0,"
     "  prioritize_queue_order TEXT NOT NULL DEFAULT 'FIFO', default_activity_sid TEXT,"
     "  timeout_activity_sid TEXT, date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);"
     "CREATE TABLE IF NOT EXISTS tr_activities ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,"
     "  friendly_name TEXT NOT NULL, available INTEGER NOT NULL,"
     "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);"
     "CREATE TABLE IF NOT EXISTS tr_workers ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,"
     "  friendly_name TEXT NOT NULL UNIQUE, attributes TEXT NOT NULL, activity_sid TEXT NOT NULL,"
     "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,"
     "  date_status_changed INTEGER NOT NULL, idle_since INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS tr_workers_activity ON tr_workers (activity_sid);"
     "CREATE TABLE IF NOT EXISTS tr_queues ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,"
     "  friendly_name TEXT NOT NULL, target_workers TEXT NOT NULL, task_order TEXT NOT NULL,"
     "  reservation_activity_sid TEXT, assignment_activity_sid TEXT,"
     "  max_reserved_workers INTEGER NOT NULL, date_created INTEGER NOT NULL,"
     "  date_updated INTEGER NOT NULL);"
     "CREATE TABLE IF NOT EXISTS tr_workflows ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,"
     "  friendly_name TEXT NOT NULL, configuration TEXT NOT NULL,"
     "  task_reservation_timeout INTEGER NOT NULL, assignment_callback_url TEXT,"
     "  fallback_assignment_callback_url TEXT, date_created INTEGER NOT NULL,"
     "  date_updated INTEGER NOT NULL);"
     "CREATE TABLE IF NOT EXISTS tr_tasks ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,"
     "  attributes TEXT NOT NULL, priority INTEGER NOT NULL, timeout INTEGER NOT NULL,"
     "  status TEXT NOT NULL, reason TEXT, workflow_sid TEXT, queue_sid TEXT,"
     "  channel TEXT NOT NULL, filter_index INTEGER NOT NULL DEFAULT -1,"
     "  filter_name TEXT, target_index INTEGER NOT NULL DEFAULT 0, queue_entered_ms INTEGER,"
     "  target_deadline INTEGER, ttl_deadline INTEGER,"
     "  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS tr_tasks_status ON tr_tasks (status, priority, queue_entered_ms);"
     "CREATE INDEX IF NOT EXISTS tr_tasks_queue ON tr_tasks (queue_sid, status);"
     "CREATE INDEX IF NOT EXISTS tr_tasks_target ON tr_tasks (target_deadline)"
     "  WHERE target_deadline IS NOT NULL;"
     "CREATE INDEX IF NOT EXISTS tr_tasks_ttl ON tr_tasks (ttl_deadline)"
     "  WHERE ttl_deadline IS NOT NULL;"
     "CREATE TABLE IF NOT EXISTS tr_reservations ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,"
     "  task_sid TEXT NOT NULL, worker_sid TEXT NOT NULL, status TEXT NOT NULL,"
     "  deadline INTEGER, date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS tr_res_task ON tr_reservations (task_sid, status);"
     "CREATE INDEX IF NOT EXISTS tr_res_worker ON tr_reservations (worker_sid, status);"
     "CREATE INDEX IF NOT EXISTS tr_res_deadline ON tr_reservations (deadline)"
     "  WHERE deadline IS NOT NULL;"
     "CREATE TABLE IF NOT EXISTS tr_events ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,"
     "  event_type TEXT NOT NULL, resource_type TEXT, resource_sid TEXT, description TEXT,"
     "  date_ms INTEGER NOT NULL, task_sid TEXT, worker_sid TEXT, reservation_sid TEXT,"
     "  queue_sid TEXT, workflow_sid TEXT, wait_ms INTEGER, params TEXT NOT NULL,"
     "  dispatched INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX IF NOT EXISTS tr_events_undispatched ON tr_events (seq) WHERE dispatched = 0;"
     "CREATE INDEX IF NOT EXISTS tr_events_date ON tr_events (date_ms);"
     "CREATE INDEX IF NOT EXISTS tr_events_queue ON tr_events (queue_sid, date_ms);"
     "CREATE INDEX IF NOT EXISTS tr_events_queue_type ON tr_events (queue_sid, event_type,"
     "  date_ms);"
     "CREATE INDEX IF NOT EXISTS tr_events_task ON tr_events (task_sid);",
     /* a file with step 7 (no more dispatched column) has this one too */
     "SELECT seq FROM tr_event_cursor LIMIT 0"},
    /* 2: queue membership (members.c) and row counts (counts.c); tr_members_fill and
     * tr_counts_fill fill them for older files. */
    {"CREATE TABLE IF NOT EXISTS tr_queue_members ("
     "  queue_sid TEXT NOT NULL, worker_sid TEXT NOT NULL, available INTEGER NOT NULL,"
     "  PRIMARY KEY (queue_sid, worker_sid));"
     "CREATE INDEX IF NOT EXISTS tr_queue_members_free ON tr_queue_members (queue_sid, available);"
     "CREATE INDEX IF NOT EXISTS tr_queue_members_worker ON tr_queue_members (worker_sid);"
     "CREATE TABLE IF NOT EXISTS tr_counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL);"
     /* a queue's waiting tasks in its order: positions and counts read only this index */
     "CREATE INDEX IF NOT EXISTS tr_tasks_queue_order ON tr_tasks (queue_sid, status, priority,"
     "  queue_entered_ms);"
     "DROP INDEX IF EXISTS tr_tasks_queue;"
     /* a queue's longest waiting task (stats.c), by queue entry and by creation */
     "CREATE INDEX IF NOT EXISTS tr_tasks_queue_entered ON tr_tasks (queue_sid, status,"
     "  queue_entered_ms);"
     "CREATE INDEX IF NOT EXISTS tr_tasks_queue_created ON tr_tasks (queue_sid, status,"
     "  date_created);"
     "CREATE TABLE IF NOT EXISTS tr_queue_counts (queue_sid TEXT NOT NULL, status TEXT NOT NULL,"
     "  priority INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (queue_sid, status, priority));",
     NULL},
    /* 3: rank counters of waiting tasks (counts.c); tr_rank_buckets_fill fills them. */
    {"CREATE TABLE IF NOT EXISTS tr_rank_buckets (queue_sid TEXT NOT NULL,"
     "  priority INTEGER NOT NULL, level INTEGER NOT NULL, bucket INTEGER NOT NULL,"
     "  n INTEGER NOT NULL, PRIMARY KEY (queue_sid, priority, level, bucket));",
     NULL},
    /* 4: a task's event parameters stored once (record.c); older events keep their whole
     * set (base_id NULL) and read as before. Two indexes nothing reads go. */
    {"ALTER TABLE tr_events ADD COLUMN base_id INTEGER;"
     "CREATE TABLE IF NOT EXISTS tr_event_bases (id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  task_sid TEXT NOT NULL UNIQUE, first_ms INTEGER NOT NULL, params TEXT NOT NULL);"
     "CREATE INDEX IF NOT EXISTS tr_event_bases_first ON tr_event_bases (first_ms);"
     "CREATE INDEX IF NOT EXISTS tr_events_base ON tr_events (base_id) WHERE base_id IS NOT NULL;"
     "DROP INDEX IF EXISTS tr_events_queue;"
     "DROP INDEX IF EXISTS tr_events_task;",
     "SELECT base_id FROM tr_events LIMIT 0"},
    /* 5: a queue's members by activity (members.c), for its RealTimeStatistics */
    {"ALTER TABLE tr_queue_members ADD COLUMN activity_sid TEXT;"
     "UPDATE tr_queue_members SET activity_sid = (SELECT w.activity_sid FROM tr_workers w"
     "  WHERE w.sid = tr_queue_members.worker_sid);"
     "CREATE TABLE IF NOT EXISTS tr_queue_activity_counts (queue_sid TEXT NOT NULL,"
     "  activity_sid TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (queue_sid, activity_sid));"
     "INSERT INTO tr_queue_activity_counts (queue_sid, activity_sid, n)"
     "  SELECT queue_sid, activity_sid, count(*) FROM tr_queue_members"
     "  WHERE activity_sid IS NOT NULL GROUP BY queue_sid, activity_sid;",
     "SELECT activity_sid FROM tr_queue_members LIMIT 0"},
    /* 6: a queue's events by type and minute (record.c), for its CumulativeStatistics */
    {"CREATE TABLE IF NOT EXISTS tr_event_minutes (queue_sid TEXT NOT NULL,"
     "  event_type TEXT NOT NULL, minute INTEGER NOT NULL, n INTEGER NOT NULL,"
     "  wait_n INTEGER NOT NULL, wait_sum INTEGER NOT NULL, wait_min INTEGER, wait_max INTEGER,"
     "  PRIMARY KEY (queue_sid, event_type, minute));"
     "INSERT INTO tr_event_minutes (queue_sid, event_type, minute, n, wait_n, wait_sum,"
     "  wait_min, wait_max) SELECT queue_sid, event_type, date_ms / 60000, count(*),"
     "  count(wait_ms), coalesce(sum(wait_ms), 0), min(wait_ms), max(wait_ms) FROM tr_events"
     "  WHERE queue_sid IS NOT NULL GROUP BY queue_sid, event_type, date_ms / 60000;",
     NULL},
    /* 7: delivery as one cursor (the last delivered seq) instead of a mark on each event:
     * events are delivered in seq order and seq is commit order (the store serializes every
     * transaction, across nodes too), so the delivered ones were always a prefix. An event
     * then costs no index entry for the mark and no rewrite when it is delivered. */
    {"CREATE TABLE IF NOT EXISTS tr_event_cursor (id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  seq INTEGER NOT NULL);"
     "INSERT INTO tr_event_cursor (id, seq) SELECT 1, coalesce((SELECT min(seq) - 1 FROM"
     "  tr_events WHERE dispatched = 0), (SELECT max(seq) FROM tr_events), 0);"
     "DROP INDEX IF EXISTS tr_events_undispatched;"
     "ALTER TABLE tr_events DROP COLUMN dispatched;",
     "SELECT seq FROM tr_event_cursor LIMIT 0"},
    /* 8: the index of the queues' events by type only for the types CumulativeStatistics
     * counts (record.h's TR_COUNTED_SQL, the same text): a new task's workflow.entered,
     * task.created and workflow.target-matched no longer get an entry. */
    {"CREATE INDEX IF NOT EXISTS tr_events_counted ON tr_events (queue_sid, event_type, date_ms)"
     "  WHERE event_type IN ('task-queue.entered', 'task-queue.moved', 'task.completed',"
     " 'task.canceled', 'task.deleted', 'reservation.created', 'reservation.accepted',"
     " 'reservation.rejected', 'reservation.timeout', 'reservation.canceled',"
     " 'reservation.rescinded');"
     "DROP INDEX IF EXISTS tr_events_queue_type;",
     NULL},
    /* 9: a task's parameter set lives until its task is gone and every event older than that
     * has been pruned (record.c, timers.c), which ended_ms tells without an index of the
     * events by base: a new event adds no entry there, a new base none by time. The bases of
     * tasks already gone end at the newest event's time. */
    {"ALTER TABLE tr_event_bases ADD COLUMN ended_ms INTEGER;"
     "UPDATE tr_event_bases SET ended_ms = (SELECT coalesce(max(date_ms), 0) FROM tr_events)"
     "  WHERE NOT EXISTS (SELECT 1 FROM tr_tasks t WHERE t.sid = tr_event_bases.task_sid);"
     "CREATE INDEX IF NOT EXISTS tr_event_bases_ended ON tr_event_bases (ended_ms)"
     "  WHERE ended_ms IS NOT NULL;"
     "DROP INDEX IF EXISTS tr_event_bases_first;"
     "DROP INDEX IF EXISTS tr_events_base;",
     "SELECT ended_ms FROM tr_event_bases LIMIT 0"},
    /* 10: several events of one task in one row (record.h's ev_group_begin): members lists
     * the events after the row's own, and counted names the member's type CumulativeStatistics
     * counts, for which a row gets an entry in tr_events_members_counted. */
    {"ALTER TABLE tr_events ADD COLUMN members TEXT;"
     "ALTER TABLE tr_events ADD COLUMN counted TEXT;"
     "CREATE INDEX IF NOT EXISTS tr_events_members_counted ON tr_events (queue_sid, counted,"
     "  date_ms) WHERE counted IS NOT NULL;",
     "SELECT counted FROM tr_events LIMIT 0"},
};

/* The activities of a new workspace: name, available. Offline is the default. */
static const struct {
    const char *name;
    int available;
} DEFAULT_ACTIVITIES[] = {
    {"Offline", 0}, {"Available", 1}, {"Unavailable", 0}, {"in-call", 0}, {"post-call", 0},
};

/* Creates the workspace, its activities and the meta pointer in one transaction, so that a
 * crash leaves either nothing or a whole workspace. */
static tassa_err bootstrap(tr_engine_t *e)
{
    char sids[sizeof DEFAULT_ACTIVITIES / sizeof DEFAULT_ACTIVITIES[0]][SID_LEN + 1];
    int64_t now = tr_now_ms(e);
    tassa_err err = sid_new("WS", e->ws_sid);
    for (size_t i = 0; !err && i < sizeof sids / sizeof sids[0]; i++)
        err = sid_new("WA", sids[i]);
    if (err)
        return err;
    err = tr_txn_begin(e);
    if (err)
        return err;
    /* Another node on a shared store may have created it since our look: one workspace. */
    char existing[SID_LEN + 1];
    if (db_sid(e->store, existing, "SELECT value FROM meta WHERE key = 'tr_workspace_sid'", "")) {
        snprintf(e->ws_sid, sizeof e->ws_sid, "%s", existing);
        return tr_txn_end(e, TASSA_OK);
    }
    for (size_t i = 0; !err && i < sizeof sids / sizeof sids[0]; i++)
        err = db_exec(e->store,
                      "INSERT INTO tr_activities (sid, friendly_name, available, date_created,"
                      " date_updated) VALUES (?, ?, ?, ?, ?)",
                      "ssdii", sids[i], DEFAULT_ACTIVITIES[i].name, DEFAULT_ACTIVITIES[i].available,
                      now, now);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO tr_workspace (sid, friendly_name, default_activity_sid,"
                      " timeout_activity_sid, date_created, date_updated)"
                      " VALUES (?, 'tassa', ?, ?, ?, ?)",
                      "sssii", e->ws_sid, sids[0], sids[0], now, now);
    if (!err)
        err = db_exec(e->store,
                      "INSERT INTO meta (key, value) VALUES ('tr_workspace_sid', ?)"
                      " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      "s", e->ws_sid);
    err = tr_txn_end(e, err);
    if (!err)
        log_info("event=tr_workspace_created sid=%s", e->ws_sid);
    return err;
}

tr_engine_t *tr_engine_new(store_t *s, const char *account_sid, errmsg_t *em)
{
    tr_engine_t *e = calloc(1, sizeof *e);
    char *ws = NULL;
    if (!e) {
        err_set(em, TASSA_ENOMEM, "out of memory");
        return NULL;
    }
    e->store = s;
    snprintf(e->account_sid, sizeof e->account_sid, "%s", account_sid ? account_sid : "");
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->timer_cond, NULL);
    pthread_cond_init(&e->event_cond, NULL);
    if (store_migrate(s, "taskrouter", MIGRATIONS, sizeof MIGRATIONS / sizeof MIGRATIONS[0], em))
        goto fail;
    tassa_err err = store_meta_get(s, "tr_workspace_sid", &ws);
    if (err == TASSA_OK && sid_valid(ws, "WS")) {
        snprintf(e->ws_sid, sizeof e->ws_sid, "%s", ws);
    } else if (err == TASSA_ENOTFOUND) {
        if (bootstrap(e)) {
            err_set(em, TASSA_ESTORE, "cannot create the TaskRouter workspace");
            goto fail;
        }
    } else {
        err_set(em, TASSA_ESTORE, "cannot read the TaskRouter workspace SID");
        goto fail;
    }
    if (tr_members_fill(e) || tr_counts_fill(e) || tr_queue_counts_fill(e) ||
        tr_rank_buckets_fill(e)) {
        err_set(em, TASSA_ESTORE, "cannot fill the TaskRouter queue membership or counts");
        goto fail;
    }
    snprintf(e->lease, sizeof e->lease, "taskrouter:%s", e->ws_sid);
    char id[SID_LEN + 1];
    if (sid_new("TR", id)) {
        err_set(em, TASSA_EINTERNAL, "no random bytes for the engine's id");
        goto fail;
    }
    snprintf(e->notice, sizeof e->notice, "%s %s", e->ws_sid, id);
    free(ws);
    return e;
fail:
    free(ws);
    tr_engine_free(e);
    return NULL;
}

void tr_engine_set_event_sink(tr_engine_t *e, tr_event_fn fn, void *ctx)
{
    e->sink = fn;
    e->sink_ctx = ctx;
}

void tr_engine_set_event_flush(tr_engine_t *e, tr_flush_fn flush)
{
    e->sink_flush = flush;
}

/* Turns a stored parameter object into the params_t a sink receives. NULL on OOM. */
static params_t *to_params(const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    params_t *p = params_new();
    const char *k;
    json_t *v;
    if (!p)
        goto out;
    json_object_foreach(o, k, v)
    {
        const char *s = json_string_value(v);
        if (s)
            params_add(p, k, strlen(k), s, strlen(s), NULL);
    }
out:
    json_decref(o);
    return p;
}

/* Delivers every event past the cursor in sequence order, a batch per lock, and moves the
 * cursor past each batch once the sink returned for all of it and its flush returned. Returns false
 * when stopping. */
static bool drain_events(tr_engine_t *e)
{
    for (;;) {
        tr_event_t *rows = NULL;
        size_t n = 0;
        store_lock(e->store);
        rows_all(e, &TR_EVENT_RAW_ROW, (void **)&rows, &n,
                 TR_EVENT_SELECT "WHERE ev.seq > (SELECT seq FROM tr_event_cursor)"
                                 " ORDER BY ev.seq LIMIT 64",
                 NULL);
        store_unlock(e->store);
        if (n == 0) {
            rows_free(&TR_EVENT_RAW_ROW, rows, n);
            return true;
        }
        int64_t last = -1;
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0, count = tr_event_count(&rows[i]); e->sink && k < count; k++) {
                /* each event of the row, merged here, outside the store lock */
                tr_event_t ev = {0};
                params_t *p = NULL;
                if (tr_event_nth(&rows[i], k, &ev) && tr_event_row_merge(&ev))
                    p = to_params(ev.params ? ev.params : "{}");
                else
                    log_error("event=tr_event_unreadable seq=%lld member=%zu",
                              (long long)rows[i].seq, k);
                rows_clear(&TR_EVENT_RAW_ROW, &ev);
                if (p)
                    e->sink(e->sink_ctx, p);
                params_free(p);
            }
            last = rows[i].seq;
            pthread_mutex_lock(&e->mu);
            bool stop = e->stop;
            pthread_mutex_unlock(&e->mu);
            if (stop)
                break;
        }
        rows_free(&TR_EVENT_RAW_ROW, rows, n);
        if (e->sink && e->sink_flush)
            e->sink_flush(e->sink_ctx); /* the batch's effects settled */
        store_lock(e->store);
        tassa_err err =
            db_exec(e->store, "UPDATE tr_event_cursor SET seq = ? WHERE seq < ?", "ii", last, last);
        store_unlock(e->store);
        if (err) {
            log_error("event=tr_dispatch_mark_failed seq=%lld", (long long)last);
            return true;
        }
        pthread_mutex_lock(&e->mu);
        bool stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop)
            return false;
    }
}

/* Waits on cond (with e->mu held) until the wall-clock time wall_ms; false on a wake-up. */
static bool wait_until(tr_engine_t *e, pthread_cond_t *cond, int64_t wall_ms)
{
    struct timespec ts = {.tv_sec = wall_ms / 1000, .tv_nsec = (long)(wall_ms % 1000) * 1000000L};
    return pthread_cond_timedwait(cond, &e->mu, &ts) == ETIMEDOUT;
}

/* The dispatcher thread: drain while holding the lease, then sleep until a commit (here or, by
 * notification, on another node) bumps event_gen; without the lease, look again every
 * LEASE_LOOK_MS. */
static void *event_main(void *arg)
{
    tr_engine_t *e = arg;
    pthread_mutex_lock(&e->mu);
    uint64_t seen = e->event_gen;
    pthread_mutex_unlock(&e->mu);
    for (;;) {
        bool holder = store_lease_hold(e->store, e->lease);
        if (holder && !drain_events(e))
            break;
        int64_t until = store_now_ms() + LEASE_LOOK_MS;
        pthread_mutex_lock(&e->mu);
        /* a shared store: look again each second anyway (lease changes, a lost notification) */
        while (!e->stop && (!holder || e->event_gen == seen)) {
            if (holder && !store_shared(e->store))
                pthread_cond_wait(&e->event_cond, &e->mu);
            else if (wait_until(e, &e->event_cond, until))
                break;
        }
        seen = e->event_gen;
        bool stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop)
            break;
    }
    return NULL;
}

/* Wakes the dispatcher only: the timer thread's own commits must not wake itself. */
static void kick_events(tr_engine_t *e)
{
    pthread_mutex_lock(&e->mu);
    e->event_gen++;
    pthread_cond_broadcast(&e->event_cond);
    pthread_mutex_unlock(&e->mu);
}

/* The timer thread: while holding the lease, apply due deadlines in one transaction, then
 * sleep until the next deadline or until a commit (which may have written a nearer one) bumps
 * timer_gen; without the lease, look again every LEASE_LOOK_MS. */
static void *timer_main(void *arg)
{
    tr_engine_t *e = arg;
    bool held = false;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        uint64_t seen = e->timer_gen;
        bool stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop)
            break;
        bool holder = store_lease_hold(e->store, e->lease);
        if (holder != held && store_shared(e->store))
            log_info("event=tr_lease_%s lease=%s", holder ? "taken" : "lost", e->lease);
        held = holder;
        int64_t next = INT64_MAX;
        if (holder) {
            tassa_err err = tr_txn_begin(e);
            if (!err)
                err = tr_txn_commit(e, tr_timers_apply_locked(e, tr_now_ms(e), &next));
            if (err) {
                log_error("event=tr_timers_failed err=\"%s\"", tassa_strerror(err));
                next = tr_now_ms(e) + 1000;
            } else {
                kick_events(e);
            }
        }
        /* next is in engine time; the condition variable waits on the wall clock */
        int64_t wall = next == INT64_MAX ? INT64_MAX : next - atomic_load(&e->clock_offset_ms);
        if (!holder || (store_shared(e->store) && wall > store_now_ms() + LEASE_LOOK_MS))
            wall = store_now_ms() + LEASE_LOOK_MS; /* a shared store: check the lease each second */
        pthread_mutex_lock(&e->mu);
        while (!e->stop && e->timer_gen == seen) {
            if (wall == INT64_MAX)
                pthread_cond_wait(&e->timer_cond, &e->mu);
            else if (wait_until(e, &e->timer_cond, wall))
                break;
        }
        pthread_mutex_unlock(&e->mu);
    }
    return NULL;
}

/* store_notify_fn for TR_CHANNEL: a commit somewhere may have written a deadline or an event
 * (payload NULL: notifications may have been missed; look anyway). Session thread. */
static void on_notify(void *ctx, const char *payload)
{
    tr_engine_t *e = ctx;
    if (!payload || strcmp(payload, e->notice)) /* our own commits woke us already */
        tr_kick(e);
}

tassa_err tr_engine_start(tr_engine_t *e)
{
    if (e->started)
        return TASSA_ECONFLICT;
    if (store_shared(e->store) && !e->listening) {
        /* without it, the holder still looks each second; say so, but run */
        if (store_listen(e->store, TR_CHANNEL, on_notify, e))
            log_warn("event=tr_listen_failed channel=%s", TR_CHANNEL);
        else
            e->listening = true;
    }
    if (pthread_create(&e->timer_thread, NULL, timer_main, e))
        return TASSA_EINTERNAL;
    if (pthread_create(&e->event_thread, NULL, event_main, e)) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_broadcast(&e->timer_cond);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->timer_thread, NULL);
        e->stop = false;
        return TASSA_EINTERNAL;
    }
    e->started = true;
    return TASSA_OK;
}

void tr_engine_stop(tr_engine_t *e)
{
    if (!e || !e->started)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->timer_cond);
    pthread_cond_broadcast(&e->event_cond);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->timer_thread, NULL);
    pthread_join(e->event_thread, NULL);
    e->started = false;
}

void tr_engine_free(tr_engine_t *e)
{
    if (!e)
        return;
    tr_engine_stop(e);
    if (e->listening)
        store_unlisten(e->store, on_notify, e);
    pthread_cond_destroy(&e->timer_cond);
    pthread_cond_destroy(&e->event_cond);
    pthread_mutex_destroy(&e->mu);
    free(e->base_text);
    json_decref(e->base_json);
    free(e->ws_name);
    free(e->again_text);
    tr_wfconf_free(e->wf_cached);
    free(e->wf_cached_text);
    free(e);
}

const char *tr_workspace_sid(const tr_engine_t *e)
{
    return e->ws_sid;
}

tassa_err tr_engine_prune(tr_engine_t *e, int64_t now_ms)
{
    tassa_err err = tr_txn_begin(e);
    if (err)
        return err;
    return tr_txn_end(e, tr_prune_locked(e, now_ms));
}
