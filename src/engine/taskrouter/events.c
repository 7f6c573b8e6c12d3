/* events.c - the Events resource: the recorded events, newest first, as Twilio's JSON.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/model.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/core.h"
#include "engine/taskrouter/rows.h"

/* "TaskQueueSid" -> "task_queue_sid". */
static void snake(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 2 < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (isupper(c)) {
            if (i > 0)
                out[o++] = '_';
            out[o++] = (char)tolower(c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

/* A recorded event as Twilio's JSON. New reference; NULL on OOM. */
static json_t *to_json(tr_engine_t *e, const tr_event_t *r, const char *base)
{
    const char *sid = r->sid, *rtype = r->resource_type;
    const char *rsid = r->resource_sid;
    json_t *j = tr_json_new(e, r->sid);
    if (!j)
        return NULL;
    json_t *params = json_loads(r->params ? r->params : "{}", 0, NULL);
    json_t *data = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v)
    {
        char key[128];
        snake(k, key, sizeof key);
        json_object_set(data, key, v);
    }
    json_decref(params);
    json_object_set_new(j, "event_type", tr_jstr(r->event_type));
    json_object_set_new(j, "description", tr_jstr(r->description));
    json_object_set_new(j, "event_data", data);
    json_object_set_new(j, "event_date", tr_jdate(r->date_ms));
    json_object_set_new(j, "event_date_ms", json_integer(r->date_ms));
    json_object_set_new(j, "resource_type", tr_jstr(r->resource_type));
    json_object_set_new(j, "resource_sid", tr_jstr(r->resource_sid));
    const char *coll = NULL;
    if (rtype && !strcmp(rtype, "Task"))
        coll = "Tasks";
    else if (rtype && !strcmp(rtype, "Worker"))
        coll = "Workers";
    else if (rtype && !strcmp(rtype, "TaskQueue"))
        coll = "TaskQueues";
    else if (rtype && !strcmp(rtype, "Workflow"))
        coll = "Workflows";
    else if (rtype && !strcmp(rtype, "Activity"))
        coll = "Activities";
    if (rtype && !strcmp(rtype, "Reservation") && r->task_sid)
        json_object_set_new(
            j, "resource_url",
            tr_url(e, base, "/Tasks/%s/Reservations/%s", r->task_sid, rsid ? rsid : ""));
    else if (coll && rsid)
        json_object_set_new(j, "resource_url", tr_url(e, base, "/%s/%s", coll, rsid));
    else
        json_object_set_new(j, "resource_url", json_null());
    json_object_set_new(j, "actor_sid", json_string(e->account_sid));
    json_object_set_new(j, "actor_type", json_string("account"));
    json_object_set_new(j, "actor_url", json_null());
    json_object_set_new(j, "source", json_string("twilio"));
    json_object_set_new(j, "source_ip_address", json_null());
    json_object_set_new(j, "url", tr_url(e, base, "/Events/%s", sid));
    return j;
}

/* Parses an ISO 8601 date ("2024-01-02T03:04:05Z" or a date alone) into ms. */
static bool parse_date(const char *v, int64_t *ms)
{
    struct tm tm = {0};
    const char *end = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        end = strptime(v, "%Y-%m-%d", &tm);
    if (!end || (*end && strcmp(end, "Z") && strcmp(end, "+00:00") && end[0] != '.'))
        return false;
    *ms = (int64_t)timegm(&tm) * 1000;
    return true;
}

/* The events list filters, each the parameter and the field of the row it must equal. */
static bool event_pred(const params_t *f, const tr_event_t *r)
{
    const struct {
        const char *param, *have;
    } F[] = {{"EventType", r->event_type},
             {"TaskSid", r->task_sid},
             {"WorkerSid", r->worker_sid},
             {"ReservationSid", r->reservation_sid},
             {"TaskQueueSid", r->queue_sid},
             {"WorkflowSid", r->workflow_sid},
             {"Sid", r->sid}};
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        const char *v = params_get(f, F[i].param);
        if (v && (!F[i].have || strcmp(v, F[i].have)))
            return false;
    }
    return true;
}

tassa_err tr_event_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                        const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    long minutes = 15;
    int64_t now = tr_now_ms(e), from, to = INT64_MAX;
    const char *start = params_get_nonempty(filter, "StartDate");
    const char *end = params_get_nonempty(filter, "EndDate");
    *items = NULL;
    *more = false;
    tassa_err err = tr_read_long(filter, "Minutes", 1, 43200, &minutes, em);
    if (err)
        return err;
    from = now - (int64_t)minutes * 60000;
    if (start && !parse_date(start, &from))
        return err_set(em, TASSA_EINVAL, "StartDate must be an ISO 8601 date");
    if (end && !parse_date(end, &to))
        return err_set(em, TASSA_EINVAL, "EndDate must be an ISO 8601 date");
    void *page = NULL; /* tr_event_t[n]: the page's events, merged and rendered after the lock */
    size_t n = 0, cap = 0;
    /* newest first: the rows by seq, and the events of a row (rows.h's groups) from its last */
    store_lock(e->store);
    store_stmt_t *st = db_query(e->store,
                                TR_EVENT_SELECT "WHERE date_ms >= ? AND date_ms <= ?"
                                                " ORDER BY seq DESC",
                                "ii", from, to);
    long seen = 0;
    int rc = STORE_DONE;
    while (st && !err && !*more && (rc = store_step(st)) == STORE_ROW) {
        tr_event_t row = {0};
        if (!rows_read(&TR_EVENT_RAW_ROW, st, &row))
            err = TASSA_ENOMEM;
        for (size_t k = err ? 0 : tr_event_count(&row); !err && !*more && k-- > 0;) {
            tr_event_t ev = {0};
            if (!tr_event_nth(&row, k, &ev))
                err = TASSA_ENOMEM;
            else if (!event_pred(filter, &ev))
                ;
            else if (seen >= offset + limit)
                *more = true;
            else if (seen++ >= offset) {
                tr_event_t *kept = rows_push(&TR_EVENT_RAW_ROW, &page, &n, &cap);
                if (kept) {
                    *kept = ev; /* its text moves with it */
                    memset(&ev, 0, sizeof ev);
                } else {
                    err = TASSA_ENOMEM;
                }
            }
            rows_clear(&TR_EVENT_RAW_ROW, &ev);
        }
        rows_clear(&TR_EVENT_RAW_ROW, &row);
    }
    if (!err && (!st || (!*more && rc != STORE_DONE)))
        err = TASSA_ESTORE;
    store_release(e->store, st);
    store_unlock(e->store);
    json_t *list = err ? NULL : json_array();
    if (!err && !list)
        err = TASSA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        tr_event_t *ev = (tr_event_t *)page + i;
        json_t *j = NULL;
        if (!err && (!tr_event_row_merge(ev) || !(j = to_json(e, ev, base_url)) ||
                     json_array_append_new(list, j)))
            err = TASSA_ENOMEM;
        rows_clear(&TR_EVENT_RAW_ROW, ev);
    }
    free(page);
    if (err)
        json_decref(list);
    else
        *items = list;
    return err;
}

tassa_err tr_event_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                         errmsg_t *em)
{
    tr_event_t row = {0}, ev = {0};
    char head[SID_LEN + 1];
    size_t k = 0;
    *out = NULL;
    store_lock(e->store);
    bool found = rows_load(e, &TR_EVENT_RAW_ROW, sid, &row);
    if (!found && (k = tr_event_group_sid(sid, head))) /* a member of a group's row */
        found = rows_load(e, &TR_EVENT_RAW_ROW, head, &row) && k < tr_event_count(&row);
    tassa_err missing = found ? TASSA_OK : tr_missing_locked(e, em, "Events", sid);
    tassa_err err = store_unlock(e->store);
    if (!err && !missing) /* merged and rendered outside the lock */
        if (!tr_event_nth(&row, k, &ev) || !tr_event_row_merge(&ev) ||
            !(*out = to_json(e, &ev, base_url)))
            err = TASSA_ENOMEM;
    rows_clear(&TR_EVENT_RAW_ROW, &row);
    rows_clear(&TR_EVENT_RAW_ROW, &ev);
    return err ? err : missing; /* a lost connection explains an "absent" row */
}
