/* history.c - the Events resource: reading the recorded events, newest first.
 *
 * Layer: engine. */
#include "engine/taskrouter/internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/taskrouter/model.h"

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

/* Events list filters on the stored columns. */
static bool event_pred(void *ctx, const json_t *row)
{
    elist_t *c = ctx;
    static const struct {
        const char *param, *column;
    } F[] = {{"EventType", "event_type"},
             {"TaskSid", "task_sid"},
             {"WorkerSid", "worker_sid"},
             {"ReservationSid", "reservation_sid"},
             {"TaskQueueSid", "queue_sid"},
             {"WorkflowSid", "workflow_sid"},
             {"Sid", "sid"}};
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        const char *v = params_get(c->f, F[i].param);
        const char *have = row_str(row, F[i].column);
        if (v && (!have || strcmp(v, have)))
            return false;
    }
    return true;
}

/* Renders an event row (tr_list). */
static json_t *event_render(void *ctx, const json_t *row)
{
    elist_t *c = ctx;
    return tr_json_event(c->e, row, c->base);
}

tassa_err tr_event_list(tr_engine_t *e, const params_t *filter, long offset, long limit,
                        const char *base_url, json_t **items, bool *more, errmsg_t *em)
{
    elist_t c = {e, base_url, filter};
    long minutes = 15;
    int64_t now = store_now_ms(), from, to = INT64_MAX;
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
    return tr_list(e, event_pred, event_render, &c, offset, limit, items, more,
                   "SELECT * FROM tr_events WHERE date_ms >= ? AND date_ms <= ?"
                   " ORDER BY seq DESC",
                   "ii", from, to);
}

tassa_err tr_event_fetch(tr_engine_t *e, const char *sid, const char *base_url, json_t **out,
                         errmsg_t *em)
{
    *out = NULL;
    store_lock(e->store);
    json_t *row = db_one(e->store, "SELECT * FROM tr_events WHERE sid = ?", "s", sid);
    store_unlock(e->store);
    if (!row)
        return tr_not_found(e, em, "Events", sid);
    *out = tr_json_event(e, row, base_url);
    json_decref(row);
    return *out ? TASSA_OK : TASSA_ENOMEM;
}
