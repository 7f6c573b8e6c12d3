/* record.c - TaskRouter events: Twilio's EventCallbackUrl parameters, recorded in tr_events.
 *
 * An event is recorded inside the transaction of the change it reports, so it commits with
 * it or not at all; its sequence number is its commit order. The parameters are kept as a
 * JSON object of strings (the form fields a callback would POST); a few are also columns, for
 * the Events list filters and the cumulative statistics.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/record.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/timefmt.h"

void ev_set(json_t *ev, const char *key, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof buf) {
        json_object_set_new(ev, key, json_string(buf));
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    json_object_set_new(ev, key, json_string(big));
    free(big);
}

const tr_counted_t TR_COUNTED[] = {
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
const size_t TR_COUNTED_N = sizeof TR_COUNTED / sizeof TR_COUNTED[0];

/* Whether CumulativeStatistics counts events of type. */
static bool ev_counted(const char *type)
{
    for (size_t i = 0; i < TR_COUNTED_N; i++)
        if (!strcmp(TR_COUNTED[i].type, type))
            return true;
    return false;
}

/* Sets the event's key to v when v is set. */
static void put(json_t *ev, const char *key, const char *v)
{
    if (v)
        json_object_set_new(ev, key, json_string(v));
}

/* A parameter of the event being built (borrowed; NULL when unset). */
static const char *param(const json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

json_t *ev_new(tr_engine_t *e, const char *type, const char *resource_type,
               const char *resource_sid, const char *description, int64_t now)
{
    char sid[SID_LEN + 1];
    json_t *ev = json_object();
    if (!ev || sid_new("EV", sid)) {
        json_decref(ev);
        return NULL;
    }
    uint64_t section = store_section(e->store);
    if (e->ws_section != section) { /* once per critical section: the name alone */
        store_stmt_t *st = db_query(
            e->store, "SELECT friendly_name FROM tr_workspace WHERE sid = ?", "s", e->ws_sid);
        const char *name = st && store_step(st) == STORE_ROW ? store_col_text(st, 0) : NULL;
        free(e->ws_name);
        e->ws_name = name ? strdup(name) : NULL;
        e->ws_section = !name || e->ws_name ? section : 0;
        store_release(e->store, st);
    }
    ev_set(ev, "EventType", "%s", type);
    ev_set(ev, "Sid", "%s", sid);
    ev_set(ev, "AccountSid", "%s", e->account_sid);
    ev_set(ev, "WorkspaceSid", "%s", e->ws_sid);
    put(ev, "WorkspaceName", e->ws_name);
    ev_set(ev, "ResourceType", "%s", resource_type);
    ev_set(ev, "ResourceSid", "%s", resource_sid ? resource_sid : "");
    if (description)
        ev_set(ev, "EventDescription", "%s", description);
    else
        ev_set(ev, "EventDescription", "%s %s %s", resource_type, resource_sid ? resource_sid : "",
               type);
    ev_set(ev, "Timestamp", "%lld", (long long)(now / 1000));
    ev_set(ev, "TimestampMs", "%lld", (long long)now);
    return ev;
}

void ev_forget_workspace(tr_engine_t *e)
{
    e->ws_section = 0;
}

void ev_task(json_t *ev, const tr_task_t *t, int64_t now)
{
    if (!t)
        return;
    char date[TIMEFMT_LEN];
    put(ev, "TaskSid", t->sid);
    put(ev, "TaskAttributes", t->attributes);
    ev_set(ev, "TaskAge", "%lld", (long long)((now - t->date_created) / 1000));
    ev_set(ev, "TaskPriority", "%lld", (long long)t->priority);
    ev_set(ev, "TaskTimeout", "%lld", (long long)t->timeout);
    put(ev, "TaskAssignmentStatus", t->status);
    put(ev, "TaskChannelUniqueName", t->channel);
    timefmt_iso(t->date_created, date);
    ev_set(ev, "TaskDateCreated", "%s", date);
    if (t->status && !strcmp(t->status, "canceled"))
        put(ev, "TaskCanceledReason", t->reason);
    if (t->status && !strcmp(t->status, "completed"))
        put(ev, "TaskCompletedReason", t->reason);
    if (t->queue_sid) {
        put(ev, "TaskQueueSid", t->queue_sid);
        put(ev, "TaskQueueName", t->queue_name);
        timefmt_iso(t->queue_entered_ms < 0 ? 0 : t->queue_entered_ms, date);
        ev_set(ev, "TaskQueueEnteredDate", "%s", date);
    }
    if (t->workflow_sid) {
        put(ev, "WorkflowSid", t->workflow_sid);
        put(ev, "WorkflowName", t->workflow_name);
    }
}

void ev_worker(json_t *ev, const tr_worker_t *w)
{
    if (!w)
        return;
    put(ev, "WorkerSid", w->sid);
    put(ev, "WorkerName", w->friendly_name);
    put(ev, "WorkerAttributes", w->attributes);
    put(ev, "WorkerActivitySid", w->activity_sid);
    put(ev, "WorkerActivityName", w->activity_name);
    ev_set(ev, "WorkerAvailable", "%s", w->available ? "true" : "false");
}

void ev_queue(json_t *ev, const tr_queue_t *q)
{
    if (!q)
        return;
    put(ev, "TaskQueueSid", q->sid);
    put(ev, "TaskQueueName", q->friendly_name);
    put(ev, "TaskQueueTargetExpression", q->target_workers);
}

void ev_workflow(json_t *ev, const tr_workflow_t *wf)
{
    if (!wf)
        return;
    put(ev, "WorkflowSid", wf->sid);
    put(ev, "WorkflowName", wf->friendly_name);
}

void ev_reservation(json_t *ev, const tr_reservation_t *r)
{
    if (!r)
        return;
    put(ev, "ReservationSid", r->sid);
    put(ev, "ReservationStatus", r->status);
}

json_t *ev_delta(const json_t *base, const json_t *ev)
{
    json_t *d = json_object(), *v, *order = NULL;
    const char *k;
    bool same_order = true;
    if (!d)
        return NULL;
    json_object_foreach((json_t *)ev, k, v)
    {
        json_t *bv = json_object_get(base, k);
        if (!tr_event_column_key(k) && (!bv || !json_equal(bv, v)))
            json_object_set(d, k, v);
    }
    json_object_foreach((json_t *)base, k, v)
    {
        if (!json_object_get(ev, k) && !tr_event_column_key(k))
            json_object_set_new(d, k, json_null());
    }
    /* The merge orders the keys of base that stay, then the new ones in ev's order. */
    void *it = json_object_iter((json_t *)ev);
    json_object_foreach((json_t *)base, k, v)
    {
        if (!json_object_get(ev, k) && !tr_event_column_key(k))
            continue; /* deleted */
        if (!json_object_get(ev, k) || !it || strcmp(json_object_iter_key(it), k)) {
            same_order = false;
            break;
        }
        it = json_object_iter_next((json_t *)ev, it);
    }
    for (; same_order && it; it = json_object_iter_next((json_t *)ev, it))
        if (json_object_get(base, json_object_iter_key(it)))
            same_order = false; /* a key of base further on */
    if (!same_order && (order = json_array())) {
        json_object_foreach((json_t *)ev, k, v)
        {
            json_array_append_new(order, json_string(k));
        }
        json_object_set_new(d, "", order);
    }
    return d;
}

/* The whole set of ev with the column keys emptied (their values come from each row): what a
 * task's base is stored as. A new reference; NULL on OOM. */
static json_t *base_set(const json_t *ev)
{
    json_t *copy = json_copy((json_t *)ev);
    for (size_t i = 0; copy && i < TR_EVENT_COLUMN_N; i++)
        if (json_object_get(copy, TR_EVENT_COLUMN_KEYS[i]))
            json_object_set_new(copy, TR_EVENT_COLUMN_KEYS[i], json_string(""));
    return copy;
}

/* Keeps text and its parse as the engine's last base, the one the next event of the same task
 * finds without parsing it again. */
static void remember_base(tr_engine_t *e, const char *text, json_t *base)
{
    char *keep = strdup(text);
    if (!keep)
        return;
    free(e->base_text);
    json_decref(e->base_json);
    e->base_text = keep;
    e->base_json = json_incref(base);
}

/* Keeps the remembered base (e->base_text) as task_sid's, id id, for this critical section. */
static void base_for_section(tr_engine_t *e, const char *task_sid, int64_t id)
{
    snprintf(e->base_task, sizeof e->base_task, "%s", task_sid);
    e->base_id = id;
    e->base_section = store_section(e->store);
}

/* The id of the task's parameter set in tr_event_bases, stored from ev (this event) when it
 * has none yet; its text in *btext (malloc'd) and parsed in *base (new reference). -1 on
 * failure (both NULL). */
static int64_t base_of(tr_engine_t *e, const char *task_sid, const json_t *ev, int64_t now,
                       json_t **base, char **btext, bool *fresh)
{
    int64_t id = -1;
    *base = NULL;
    *btext = NULL;
    *fresh = false;
    uint64_t section = store_section(e->store);
    if (e->base_section == section && e->base_text && !strcmp(e->base_task, task_sid) &&
        e->base_id > 0) {
        /* stored or read earlier in this section: a base never changes once stored (a row's
         * own, base_id 0, serves only that row and its members) */
        *btext = strdup(e->base_text);
        *base = *btext ? json_incref(e->base_json) : NULL;
        return *base ? e->base_id : -1;
    }
    bool is_new = e->new_section == section && !strcmp(e->new_task, task_sid);
    store_stmt_t *st =
        is_new ? NULL /* nothing to find */
               : db_query(e->store, "SELECT id, params FROM tr_event_bases WHERE task_sid = ?", "s",
                          task_sid);
    if (st && store_step(st) == STORE_ROW && store_col_text(st, 1)) {
        id = store_col_int64(st, 0);
        *btext = strdup(store_col_text(st, 1));
    }
    store_release(e->store, st);
    if (id >= 0 && *btext) {
        if (e->base_text && !strcmp(e->base_text, *btext)) {
            *base = json_incref(e->base_json); /* the same text: parsed already */
        } else if ((*base = json_loads(*btext, 0, NULL))) {
            remember_base(e, *btext, *base);
        }
    } else if (id < 0) { /* the task's first event: its set is this event's */
        json_t *set = base_set(ev);
        char *text = set ? json_dumps(set, JSON_COMPACT) : NULL;
        st = text ? db_query(e->store,
                             "INSERT INTO tr_event_bases (task_sid, first_ms, params)"
                             " VALUES (?, ?, ?) RETURNING id",
                             "sis", task_sid, now, text)
                  : NULL;
        if (st && store_step(st) == STORE_ROW) {
            id = store_col_int64(st, 0);
            *btext = text;
            *base = json_incref(set);
            *fresh = true;
            remember_base(e, text, set);
            text = NULL;
        }
        store_release(e->store, st);
        free(text);
        json_decref(set);
    }
    if (!*base) {
        free(*btext);
        *btext = NULL;
        id = -1;
    }
    if (id >= 0 && e->base_text && !strcmp(e->base_text, *btext)) /* remembered above */
        base_for_section(e, task_sid, id);
    return id;
}

/* Counts an event of type in queue_sid's minute of date_ms (with its wait, -1 none) when
 * CumulativeStatistics counts that type. */
static tassa_err count_minute(tr_engine_t *e, const char *queue_sid, const char *type,
                              int64_t date_ms, int64_t wait_ms)
{
    if (!queue_sid || !ev_counted(type)) /* for CumulativeStatistics (stats.c) */
        return TASSA_OK;
    return db_exec(e->store,
                   "INSERT INTO tr_event_minutes (queue_sid, event_type, minute, n,"
                   " wait_n, wait_sum, wait_min, wait_max) VALUES (?, ?, ?, 1,"
                   " CASE WHEN ? >= 0 THEN 1 ELSE 0 END,"
                   " CASE WHEN ? >= 0 THEN CAST(? AS INTEGER) ELSE 0 END,"
                   " NULLIF(CAST(? AS INTEGER), -1), NULLIF(CAST(? AS INTEGER), -1))"
                   " ON CONFLICT (queue_sid, event_type, minute) DO UPDATE SET"
                   " n = tr_event_minutes.n + 1,"
                   " wait_n = tr_event_minutes.wait_n + excluded.wait_n,"
                   " wait_sum = tr_event_minutes.wait_sum + excluded.wait_sum,"
                   " wait_min = CASE WHEN excluded.wait_min IS NULL OR"
                   " (tr_event_minutes.wait_min IS NOT NULL AND"
                   " tr_event_minutes.wait_min <= excluded.wait_min)"
                   " THEN tr_event_minutes.wait_min ELSE excluded.wait_min END,"
                   " wait_max = CASE WHEN excluded.wait_max IS NULL OR"
                   " (tr_event_minutes.wait_max IS NOT NULL AND"
                   " tr_event_minutes.wait_max >= excluded.wait_max)"
                   " THEN tr_event_minutes.wait_max ELSE excluded.wait_max END",
                   "ssiiiiii", queue_sid, type, date_ms / 60000, wait_ms, wait_ms, wait_ms, wait_ms,
                   wait_ms);
}

/* A group's first event, held back by ev_emit until ev_group_end (or an event that does not
 * join it) writes its row: its columns and stored params (all owned), and its members. */
struct ev_held {
    tr_event_t row; /* strings owned; row.members unused */
    char *stored;   /* params, a delta against base_id */
    int64_t base_id;
    buf_t members;       /* "EventType\tdelta\n" per member */
    size_t n;            /* members */
    const char *counted; /* the member's type that CumulativeStatistics counts, or NULL */
};

static tassa_err flush_group(tr_engine_t *e);

/* Writes event row r (description NULL when the default one; wait_ms -1 when none) with
 * params stored (the whole set, or a delta against base_id; -1 none), members (NULL: none)
 * and counted (the counted type of a member, or NULL), and counts r in its queue's minute.
 * A held group's row goes first, so that rows stay in the order of their events. */
static tassa_err insert_row(tr_engine_t *e, const tr_event_t *r, const char *stored,
                            int64_t base_id, const char *members, const char *counted)
{
    tassa_err err = flush_group(e);
    if (!err)
        err = count_minute(e, r->queue_sid, r->event_type, r->date_ms, r->wait_ms);
    if (!err)
        err = db_exec(
            e->store,
            "INSERT INTO tr_events (sid, event_type, resource_type, resource_sid, description,"
            " date_ms, task_sid, worker_sid, reservation_sid, queue_sid, workflow_sid, wait_ms,"
            " params, base_id, members, counted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " NULLIF(CAST(? AS INTEGER), -1), ?, NULLIF(CAST(? AS INTEGER), -1), ?, ?)",
            "sssssisssssisiss", r->sid, r->event_type, r->resource_type, r->resource_sid,
            r->description, r->date_ms, r->task_sid, r->worker_sid, r->reservation_sid,
            r->queue_sid, r->workflow_sid, r->wait_ms, stored, base_id, members, counted);
    return err;
}

/* Writes the held group's row, if any, and lets it go. */
static tassa_err flush_group(tr_engine_t *e)
{
    struct ev_held *h = e->group_held;
    if (!h)
        return TASSA_OK;
    e->group_held = NULL;
    tassa_err err = h->members.failed ? TASSA_ENOMEM : TASSA_OK;
    if (!err)
        err = insert_row(e, &h->row, h->stored, h->base_id, h->n ? buf_str(&h->members) : NULL,
                         h->counted);
    rows_clear(&TR_EVENT_RAW_ROW, &h->row);
    free(h->stored);
    buf_free(&h->members);
    free(h);
    return err;
}

/* Holds event row r (its strings copied) and stored as a group's first event. False on OOM
 * (nothing held). */
static bool hold_group(tr_engine_t *e, const tr_event_t *r, const char *stored, int64_t base_id)
{
    struct ev_held *h = calloc(1, sizeof *h);
    if (!h)
        return false;
    const char *const src[] = {r->sid,         r->event_type,  r->resource_type, r->resource_sid,
                               r->description, r->task_sid,    r->worker_sid,    r->reservation_sid,
                               r->queue_sid,   r->workflow_sid};
    char **dst[] = {&h->row.sid,          &h->row.event_type,      &h->row.resource_type,
                    &h->row.resource_sid, &h->row.description,     &h->row.task_sid,
                    &h->row.worker_sid,   &h->row.reservation_sid, &h->row.queue_sid,
                    &h->row.workflow_sid};
    bool ok = (h->stored = strdup(stored)) != NULL;
    for (size_t i = 0; ok && i < sizeof src / sizeof src[0]; i++)
        ok = !src[i] || (*dst[i] = strdup(src[i]));
    h->row.date_ms = r->date_ms;
    h->row.wait_ms = r->wait_ms;
    h->base_id = base_id;
    if (!ok) {
        rows_clear(&TR_EVENT_RAW_ROW, &h->row);
        free(h->stored);
        free(h);
        return false;
    }
    e->group_held = h;
    return true;
}

/* Whether an event of type (stored as delta against base_id, of the task and time of the
 * last event) may join the held group's row: there is one, it has room, and the row would
 * still count at most one event for CumulativeStatistics. */
static bool can_join(const tr_engine_t *e, const char *type, int64_t base_id)
{
    const struct ev_held *h = e->group_held;
    return h && h->base_id == base_id && h->n < TR_EVENT_MEMBERS_MAX &&
           (!ev_counted(type) || (!h->counted && !ev_counted(h->row.event_type)));
}

void ev_task_is_new(tr_engine_t *e, const char *task_sid)
{
    snprintf(e->new_task, sizeof e->new_task, "%s", task_sid);
    e->new_section = store_section(e->store);
}

void ev_group_begin(tr_engine_t *e)
{
    e->group_open = true;
}

tassa_err ev_group_end(tr_engine_t *e)
{
    e->group_open = false;
    return flush_group(e);
}

/* In builds with assertions: that stored (a delta against base) merged with the columns of r
 * gives back ev's very text. Nothing otherwise. */
static void check_round_trip(const char *base, const char *stored, const tr_event_t *r,
                             const json_t *ev)
{
#ifndef NDEBUG
    char *whole = json_dumps(ev, JSON_COMPACT), *back = tr_event_merge(base, stored, r);
    assert(whole && back && !strcmp(back, whole));
    free(whole);
    free(back);
#else
    (void)base, (void)stored, (void)r, (void)ev;
#endif
}

tassa_err ev_emit(tr_engine_t *e, json_t *ev, int64_t wait_ms)
{
    e->again_section = 0; /* only ev_loaded_task_event's own event may be repeated */
    if (!ev)
        return TASSA_ENOMEM;
    char *stored = NULL, *dflt = NULL, *btext = NULL;
    tassa_err err = TASSA_ENOMEM;
    json_t *base = NULL;
    int64_t base_id = -1;
    const char *task_sid = param(ev, "TaskSid"), *desc = param(ev, "EventDescription");
    const char *sid = param(ev, "Sid");
    if (e->group_open && task_sid && sid && strlen(sid) == SID_LEN) {
        /* a group's row: its members' SIDs are its own with another last digit */
        char sid0[SID_LEN + 1];
        memcpy(sid0, sid, sizeof sid0);
        tr_event_member_sid(sid0, 0);
        json_object_set_new(ev, "Sid", json_string(sid0));
    }
    tr_event_t cols = {.sid = (char *)param(ev, "Sid"),
                       .event_type = (char *)param(ev, "EventType"),
                       .resource_type = (char *)param(ev, "ResourceType"),
                       .resource_sid = (char *)param(ev, "ResourceSid"),
                       .description = (char *)desc,
                       .date_ms = param(ev, "TimestampMs")
                                      ? (int64_t)strtoll(param(ev, "TimestampMs"), NULL, 10)
                                      : 0};
    if (!cols.sid || !cols.event_type || !cols.resource_type)
        goto out;
    dflt = tr_event_default_description(cols.resource_type, cols.resource_sid, cols.event_type);
    if (!dflt)
        goto out;
    /* A task's events store what differs from its parameter set (ev_delta, which gives the
     * text back exactly: the ev_* builders set only strings under non-empty keys); anything
     * else stores the whole set. Builds with assertions check the round trip. */
    bool fresh;
    uint64_t section = store_section(e->store);
    if (task_sid && e->group_open && e->new_section == section && !strcmp(e->new_task, task_sid)) {
        /* A new task's first row holds its parameter set itself (base_id 0): the task gets a
         * row in tr_event_bases only with its first event after this section. */
        json_t *set = base_set(ev);
        stored = set ? json_dumps(set, JSON_COMPACT) : NULL;
        if (stored) {
            base_id = 0;
            remember_base(e, stored, set);
            base_for_section(e, task_sid, 0);
            check_round_trip(stored, "{}", &cols, ev);
        }
        json_decref(set);
    } else if (task_sid &&
               (base_id = base_of(e, task_sid, ev, cols.date_ms, &base, &btext, &fresh)) >= 0) {
        /* a base just made of this event differs from it in the columns only */
        json_t *d = fresh ? json_object() : ev_delta(base, ev);
        stored = d ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        if (!stored)
            base_id = -1;
        if (stored)
            check_round_trip(btext, stored, &cols, ev);
    }
    if (!stored && !(stored = json_dumps(ev, JSON_COMPACT)))
        goto out;
    cols.description = desc && strcmp(desc, dflt) ? (char *)desc : NULL;
    cols.task_sid = (char *)task_sid;
    cols.worker_sid = (char *)param(ev, "WorkerSid");
    cols.reservation_sid = (char *)param(ev, "ReservationSid");
    cols.queue_sid = (char *)param(ev, "TaskQueueSid");
    cols.workflow_sid = (char *)param(ev, "WorkflowSid");
    cols.wait_ms = wait_ms;
    if (e->group_open && base_id >= 0 && !cols.worker_sid && !cols.reservation_sid) {
        err = flush_group(e); /* this event starts a group of its own */
        if (!err && !hold_group(e, &cols, stored, base_id))
            err = TASSA_ENOMEM;
    } else {
        err = insert_row(e, &cols, stored, base_id, NULL, NULL);
    }
    if (!err && base_id >= 0) { /* what task_event_again repeats */
        free(e->again_text);
        e->again_text = base_id ? stored : strdup("{}"); /* a row's own set: the same */
        e->again_base = base_id;
        if (base_id)
            stored = NULL;
    }
out:
    free(stored);
    free(dflt);
    free(btext);
    json_decref(base);
    json_decref(ev);
    return err;
}

/* The sid of the resource (of type rtype, tr_event_resource_type) an event about task t and
 * reservation r reports on; borrowed, NULL when there is none. */
static const char *resource_sid(const char *rtype, const tr_task_t *t, const tr_reservation_t *r)
{
    return tr_event_resource_sid(rtype, t->sid, t->queue_sid, t->workflow_sid, r ? r->sid : NULL);
}

/* The parameter set of event type about task t, with reservation r and its worker w when set,
 * and the keys of extras (NULL or a JSON object of strings) at the end; all borrowed. A new
 * reference; NULL on OOM. */
static json_t *task_params(tr_engine_t *e, const char *type, const tr_task_t *t,
                           const tr_reservation_t *r, const tr_worker_t *w, const char *description,
                           const json_t *extras, int64_t now)
{
    const char *rtype = tr_event_resource_type(type);
    json_t *ev = ev_new(e, type, rtype, resource_sid(rtype, t, r), description, now);
    ev_task(ev, t, now);
    ev_reservation(ev, r);
    ev_worker(ev, w);
    if (ev && extras)
        json_object_update(ev, (json_t *)extras);
    return ev;
}

/* Builds and records the event type about task t, with reservation r and its worker w when
 * set (all borrowed). */
static tassa_err task_event(tr_engine_t *e, const char *type, const tr_task_t *t,
                            const tr_reservation_t *r, const tr_worker_t *w,
                            const char *description, int64_t wait_ms, int64_t now)
{
    return ev_emit(e, task_params(e, type, t, r, w, description, NULL, now), wait_ms);
}

tassa_err ev_task_event(tr_engine_t *e, const char *type, const char *task_sid, const char *res_sid,
                        const char *description, int64_t wait_ms, int64_t now)
{
    tr_task_t t = {0};
    tr_reservation_t r = {0};
    tr_worker_t w = {0};
    bool has_t = tr_task_load(e, task_sid, &t);
    bool has_r = res_sid && tr_reservation_load(e, res_sid, &r);
    bool has_w = has_r && tr_worker_load(e, r.worker_sid, &w);
    tassa_err err = TASSA_ESTORE;
    if (has_t && (!res_sid || has_r))
        err = task_event(e, type, &t, has_r ? &r : NULL, has_w ? &w : NULL, description, wait_ms,
                         now);
    rows_clear(&TR_TASK_ROW, &t);
    rows_clear(&TR_RES_ROW, &r);
    rows_clear(&TR_WORKER_ROW, &w);
    return err;
}

/* Whether ev_loaded_task_event may record an event about t at now with extras (NULL or a
 * JSON object of strings) by repeating the last one's delta: the last event was such an
 * event of the same task in this section at the same time, and the extras are new keys that
 * can follow the delta (nothing to delete or reorder). */
static bool can_repeat(const tr_engine_t *e, const tr_task_t *t, const json_t *extras, int64_t now)
{
    uint64_t section = store_section(e->store);
    if (!(e->again_section == section && e->again_now == now && e->base_section == section &&
          e->again_text && !strcmp(e->again_task, t->sid) && !strcmp(e->base_task, t->sid)))
        return false;
    if (!extras || !json_object_size(extras))
        return true;
    const char *k;
    json_t *v;
    if (strcmp(e->again_text, "{}"))
        return false;
    json_object_foreach((json_t *)extras, k, v)
    {
        if (!*k || tr_event_column_key(k) || !json_is_string(v) || json_object_get(e->base_json, k))
            return false;
    }
    return true;
}

/* Records event type about t as the last event (of the same task, built from the same row at
 * the same time) was stored, plus extras: its parameters differ from that one's only in the
 * columns and the extra keys at the end, so the row repeats that one's delta (with the extras)
 * against the same base, and the set is neither built nor compared; between ev_group_begin
 * and ev_group_end it joins the held row as a member instead (record.h). Builds with
 * assertions check that the full path would have given the very same set. */
static tassa_err task_event_again(tr_engine_t *e, const char *type, const tr_task_t *t,
                                  const json_t *extras, int64_t now)
{
    char sid[SID_LEN + 1], *own = NULL;
    struct ev_held *h = e->group_open && can_join(e, type, e->again_base) ? e->group_held : NULL;
    if (h && strlen(h->row.sid) == SID_LEN) { /* the SID tr_event_nth gives it */
        memcpy(sid, h->row.sid, sizeof sid);
        tr_event_member_sid(sid, h->n + 1);
    } else if (h) {
        h = NULL;
    }
    if (!h && e->again_base <= 0) /* the set is a row's own: build this one whole */
        return ev_emit(e, task_params(e, type, t, NULL, NULL, NULL, extras, now), -1);
    if (!h && sid_new("EV", sid))
        return TASSA_EINTERNAL;
    if (extras && json_object_size(extras) && !(own = json_dumps(extras, JSON_COMPACT)))
        return TASSA_ENOMEM;
    const char *stored = own ? own : e->again_text;
    const char *rtype = tr_event_resource_type(type);
    tr_event_t r = {.sid = sid,
                    .event_type = (char *)type,
                    .resource_type = (char *)rtype,
                    .resource_sid = (char *)resource_sid(rtype, t, NULL),
                    .task_sid = t->sid,
                    .queue_sid = t->queue_sid,
                    .workflow_sid = t->workflow_sid,
                    .date_ms = now,
                    .wait_ms = -1};
#ifndef NDEBUG
    json_t *ev = task_params(e, type, t, NULL, NULL, NULL, extras, now);
    json_object_set_new(ev, "Sid", json_string(sid));
    tr_event_t full = r;
    full.description = tr_event_default_description(rtype, r.resource_sid, type);
    check_round_trip(e->base_text, stored, &full, ev);
    free(full.description);
    json_decref(ev);
#endif
    tassa_err err;
    if (h) { /* a member of the held group's row: its type and delta, counted now */
        buf_printf(&h->members, "%s\t%s\n", type, stored);
        h->n++;
        for (size_t i = 0; i < TR_COUNTED_N; i++)
            if (!strcmp(TR_COUNTED[i].type, type))
                h->counted = TR_COUNTED[i].type;
        err = count_minute(e, t->queue_sid, type, now, -1);
    } else {
        err = insert_row(e, &r, stored, e->again_base, NULL, NULL);
    }
    free(own);
    return err;
}

tassa_err ev_loaded_task_event(tr_engine_t *e, const char *type, const tr_task_t *t,
                               const json_t *extras, int64_t now)
{
    if (can_repeat(e, t, extras, now))
        return task_event_again(e, type, t, extras, now);
    tassa_err err = ev_emit(e, task_params(e, type, t, NULL, NULL, NULL, extras, now), -1);
    uint64_t section = store_section(e->store);
    /* an event without extras may be repeated (with or without extras) */
    if (!err && !extras && e->again_text && e->base_section == section &&
        !strcmp(e->base_task, t->sid)) {
        snprintf(e->again_task, sizeof e->again_task, "%s", t->sid);
        e->again_now = now;
        e->again_section = section;
    }
    return err;
}

tassa_err ev_resource_event(tr_engine_t *e, const char *type, const char *resource_type,
                            const char *sid, int64_t now)
{
    tr_worker_t w = {0};
    tr_queue_t q = {0};
    tr_workflow_t wf = {0};
    json_t *ev = ev_new(e, type, resource_type, sid, NULL, now);
    if (!strcmp(resource_type, "Worker") && tr_worker_load(e, sid, &w))
        ev_worker(ev, &w);
    else if (!strcmp(resource_type, "TaskQueue") && tr_queue_load(e, sid, &q))
        ev_queue(ev, &q);
    else if (!strcmp(resource_type, "Workflow") && tr_workflow_load(e, sid, &wf))
        ev_workflow(ev, &wf);
    rows_clear(&TR_WORKER_ROW, &w);
    rows_clear(&TR_QUEUE_ROW, &q);
    rows_clear(&TR_WORKFLOW_ROW, &wf);
    return ev_emit(e, ev, -1);
}
