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

typedef struct {
    tr_engine_t *e;
    const char *base;
    const params_t *f;
} elist_t;

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
static bool event_pred(void *ctx, const void *row)
{
    const tr_event_t *r = row;
    elist_t *c = ctx;
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
        const char *v = params_get(c->f, F[i].param);
        if (v && (!F[i].have || strcmp(v, F[i].have)))
            return false;
    }
    return true;
}

/* Renders an event row (tr_list, tr_fetch). */
static json_t *event_render(void *ctx, const void *row)
{
    elist_t *c = ctx;
    return to_json(c->e, row, c->base);
}

tassa_err tr_event_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                        const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    elist_t c = {e, base_url, filter};
    long minutes = 15;
    int64_t now = tr_now_ms(e), from, to = INT64_MAX;
    const char *start = params_get_nonempty(filter, "StartDate");
    const char *end = params_get_nonempty(filter, "EndDate");
    *items = NULL;
    tassa_err err = tr_read_long(filter, "Minutes", 1, 43200, &minutes, em);
    if (err)
        return err;
    from = now - (int64_t)minutes * 60000;
    if (start && !parse_date(start, &from))
        return err_set(em, TASSA_EINVAL, "StartDate must be an ISO 8601 date");
    if (end && !parse_date(end, &to))
        return err_set(em, TASSA_EINVAL, "EndDate must be an ISO 8601 date");
    return tr_list(e, &TR_EVENT_ROW, event_pred, event_render, &c, offset, limit, items, more,
                   TR_EVENT_SELECT "WHERE date_ms >= ? AND date_ms <= ?"
                                   " ORDER BY seq DESC",
                   "ii", from, to);
}

tassa_err tr_event_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                         errmsg_t *em)
{
    return tr_fetch(e, &TR_EVENT_ROW, event_render, &(elist_t){e, base_url, NULL}, "Events", sid,
                    out, em);
}
