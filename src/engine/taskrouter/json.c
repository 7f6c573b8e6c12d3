/* json.c - TaskRouter resources as Twilio's JSON: snake_case fields of the OpenAPI schemas,
 * ISO 8601 dates, attributes as a JSON string, absolute url and links.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timefmt.h"

#define URL_MAX 640

/* A string field of row as a new JSON string, or JSON null. */
static json_t *jstr(const json_t *row, const char *key)
{
    const char *v = row_str(row, key);
    return v ? json_string(v) : json_null();
}

/* A date field (ms) of row as ISO 8601, or null when unset. */
static json_t *jdate(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    if (!json_is_integer(v))
        return json_null();
    char buf[TIMEFMT_LEN];
    timefmt_iso(json_integer_value(v), buf);
    return json_string(buf);
}

/* A URL under the workspace: base + "/v1/Workspaces/WS" + printf suffix. */
static json_t *wurl(tr_engine_t *e, const char *base, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *wurl(tr_engine_t *e, const char *base, const char *fmt, ...)
{
    char buf[URL_MAX];
    int n = snprintf(buf, sizeof buf, "%s/v1/Workspaces/%s", base, e->ws_sid);
    if (n < 0 || (size_t)n >= sizeof buf)
        return json_null();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    return json_string(buf);
}

/* Sets the common account_sid and workspace_sid fields. */
static void common(tr_engine_t *e, json_t *j)
{
    json_object_set_new(j, "account_sid", json_string(e->account_sid));
    json_object_set_new(j, "workspace_sid", json_string(e->ws_sid));
}

json_t *tr_json_workspace(tr_engine_t *e, const json_t *r, const char *base)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    json_object_del(j, "workspace_sid");
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "friendly_name", jstr(r, "friendly_name"));
    json_object_set_new(j, "date_created", jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", jdate(r, "date_updated"));
    json_object_set_new(j, "default_activity_sid", jstr(r, "default_activity_sid"));
    json_object_set_new(j, "default_activity_name", jstr(r, "default_activity_name"));
    json_object_set_new(j, "timeout_activity_sid", jstr(r, "timeout_activity_sid"));
    json_object_set_new(j, "timeout_activity_name", jstr(r, "timeout_activity_name"));
    json_object_set_new(j, "event_callback_url", jstr(r, "event_callback_url"));
    json_object_set_new(j, "events_filter", jstr(r, "events_filter"));
    json_object_set_new(j, "multi_task_enabled", json_boolean(row_int(r, "multi_task_enabled")));
    json_object_set_new(j, "prioritize_queue_order", jstr(r, "prioritize_queue_order"));
    json_object_set_new(j, "url", wurl(e, base, "%s", ""));
    json_object_set_new(
        j, "links",
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "activities",
                  wurl(e, base, "/Activities"), "workflows", wurl(e, base, "/Workflows"), "tasks",
                  wurl(e, base, "/Tasks"), "task_queues", wurl(e, base, "/TaskQueues"), "workers",
                  wurl(e, base, "/Workers"), "events", wurl(e, base, "/Events"), "task_channels",
                  wurl(e, base, "/TaskChannels"), "statistics", wurl(e, base, "/Statistics"),
                  "real_time_statistics", wurl(e, base, "/RealTimeStatistics"),
                  "cumulative_statistics", wurl(e, base, "/CumulativeStatistics")));
    return j;
}

json_t *tr_json_activity(tr_engine_t *e, const json_t *r, const char *base)
{
    const char *sid = row_str(r, "sid");
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "friendly_name", jstr(r, "friendly_name"));
    json_object_set_new(j, "available", json_boolean(row_int(r, "available")));
    json_object_set_new(j, "date_created", jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", jdate(r, "date_updated"));
    json_object_set_new(j, "url", wurl(e, base, "/Activities/%s", sid));
    json_object_set_new(j, "links", json_pack("{s:o}", "workspace", wurl(e, base, "%s", "")));
    return j;
}

json_t *tr_json_worker(tr_engine_t *e, const json_t *r, const char *base)
{
    const char *sid = row_str(r, "sid");
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "friendly_name", jstr(r, "friendly_name"));
    json_object_set_new(j, "activity_sid", jstr(r, "activity_sid"));
    json_object_set_new(j, "activity_name", jstr(r, "activity_name"));
    json_object_set_new(j, "attributes", jstr(r, "attributes"));
    json_object_set_new(j, "available", json_boolean(row_int(r, "available")));
    json_object_set_new(j, "date_created", jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", jdate(r, "date_updated"));
    json_object_set_new(j, "date_status_changed", jdate(r, "date_status_changed"));
    json_object_set_new(j, "url", wurl(e, base, "/Workers/%s", sid));
    json_object_set_new(j, "links",
                        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "channels",
                                  wurl(e, base, "/Workers/%s/Channels", sid), "reservations",
                                  wurl(e, base, "/Workers/%s/Reservations", sid), "statistics",
                                  wurl(e, base, "/Workers/%s/Statistics", sid), "activity",
                                  wurl(e, base, "/Activities/%s", row_str(r, "activity_sid")),
                                  "workspace", wurl(e, base, "%s", ""), "worker_statistics",
                                  wurl(e, base, "/Workers/%s/Statistics", sid)));
    return j;
}

json_t *tr_json_queue(tr_engine_t *e, const json_t *r, const char *base)
{
    const char *sid = row_str(r, "sid");
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "friendly_name", jstr(r, "friendly_name"));
    json_object_set_new(j, "target_workers", jstr(r, "target_workers"));
    json_object_set_new(j, "task_order", jstr(r, "task_order"));
    json_object_set_new(j, "max_reserved_workers",
                        json_integer(row_int(r, "max_reserved_workers")));
    json_object_set_new(j, "reservation_activity_sid", jstr(r, "reservation_activity_sid"));
    json_object_set_new(j, "reservation_activity_name", jstr(r, "reservation_activity_name"));
    json_object_set_new(j, "assignment_activity_sid", jstr(r, "assignment_activity_sid"));
    json_object_set_new(j, "assignment_activity_name", jstr(r, "assignment_activity_name"));
    json_object_set_new(j, "date_created", jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", jdate(r, "date_updated"));
    json_object_set_new(j, "url", wurl(e, base, "/TaskQueues/%s", sid));
    json_t *links =
        json_pack("{s:o, s:o, s:o, s:o, s:o}", "workspace", wurl(e, base, "%s", ""), "statistics",
                  wurl(e, base, "/TaskQueues/%s/Statistics", sid), "real_time_statistics",
                  wurl(e, base, "/TaskQueues/%s/RealTimeStatistics", sid), "cumulative_statistics",
                  wurl(e, base, "/TaskQueues/%s/CumulativeStatistics", sid), "list_statistics",
                  wurl(e, base, "/TaskQueues/Statistics"));
    if (links && row_str(r, "assignment_activity_sid"))
        json_object_set_new(links, "assignment_activity",
                            wurl(e, base, "/Activities/%s", row_str(r, "assignment_activity_sid")));
    if (links && row_str(r, "reservation_activity_sid"))
        json_object_set_new(
            links, "reservation_activity",
            wurl(e, base, "/Activities/%s", row_str(r, "reservation_activity_sid")));
    json_object_set_new(j, "links", links);
    return j;
}

json_t *tr_json_workflow(tr_engine_t *e, const json_t *r, const char *base)
{
    const char *sid = row_str(r, "sid");
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "friendly_name", jstr(r, "friendly_name"));
    json_object_set_new(j, "configuration", jstr(r, "configuration"));
    json_object_set_new(j, "document_content_type", json_string("application/json"));
    json_object_set_new(j, "task_reservation_timeout",
                        json_integer(row_int(r, "task_reservation_timeout")));
    json_object_set_new(j, "assignment_callback_url", jstr(r, "assignment_callback_url"));
    json_object_set_new(j, "fallback_assignment_callback_url",
                        jstr(r, "fallback_assignment_callback_url"));
    json_object_set_new(j, "date_created", jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", jdate(r, "date_updated"));
    json_object_set_new(j, "url", wurl(e, base, "/Workflows/%s", sid));
    json_object_set_new(
        j, "links",
        json_pack("{s:o, s:o, s:o}", "statistics", wurl(e, base, "/Workflows/%s/Statistics", sid),
                  "real_time_statistics", wurl(e, base, "/Workflows/%s/RealTimeStatistics", sid),
                  "cumulative_statistics",
                  wurl(e, base, "/Workflows/%s/CumulativeStatistics", sid)));
    return j;
}

json_t *tr_json_task(tr_engine_t *e, const json_t *r, const char *base, int64_t now)
{
    const char *sid = row_str(r, "sid");
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    int64_t age = (now - row_int(r, "date_created")) / 1000;
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "age", json_integer(age < 0 ? 0 : age));
    json_object_set_new(j, "assignment_status", jstr(r, "status"));
    json_object_set_new(j, "attributes", jstr(r, "attributes"));
    json_object_set_new(j, "addons", json_string("{}"));
    json_object_set_new(j, "date_created", jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", jdate(r, "date_updated"));
    json_object_set_new(j, "task_queue_entered_date", jdate(r, "queue_entered_ms"));
    json_object_set_new(j, "priority", json_integer(row_int(r, "priority")));
    json_object_set_new(j, "reason", jstr(r, "reason"));
    json_object_set_new(j, "task_queue_sid", jstr(r, "queue_sid"));
    json_object_set_new(j, "task_queue_friendly_name", jstr(r, "queue_name"));
    json_object_set_new(j, "task_channel_sid", json_null());
    json_object_set_new(j, "task_channel_unique_name", jstr(r, "channel"));
    json_object_set_new(j, "timeout", json_integer(row_int(r, "timeout")));
    json_object_set_new(j, "workflow_sid", jstr(r, "workflow_sid"));
    json_object_set_new(j, "workflow_friendly_name", jstr(r, "workflow_name"));
    json_object_set_new(j, "virtual_start_time", jdate(r, "date_created"));
    json_object_set_new(j, "ignore_capacity", json_false());
    json_object_set_new(j, "routing_target", json_null());
    json_object_set_new(j, "url", wurl(e, base, "/Tasks/%s", sid));
    json_t *links = json_pack("{s:o, s:o}", "workspace", wurl(e, base, "%s", ""), "reservations",
                              wurl(e, base, "/Tasks/%s/Reservations", sid));
    if (links && row_str(r, "queue_sid"))
        json_object_set_new(links, "task_queue",
                            wurl(e, base, "/TaskQueues/%s", row_str(r, "queue_sid")));
    if (links && row_str(r, "workflow_sid"))
        json_object_set_new(links, "workflow",
                            wurl(e, base, "/Workflows/%s", row_str(r, "workflow_sid")));
    json_object_set_new(j, "links", links);
    return j;
}

json_t *tr_json_reservation(tr_engine_t *e, const json_t *r, const char *base, bool by_worker)
{
    const char *sid = row_str(r, "sid"), *task = row_str(r, "task_sid");
    const char *worker = row_str(r, "worker_sid");
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "reservation_status", jstr(r, "status"));
    json_object_set_new(j, "task_sid", jstr(r, "task_sid"));
    json_object_set_new(j, "worker_sid", jstr(r, "worker_sid"));
    json_object_set_new(j, "worker_name", jstr(r, "worker_name"));
    json_object_set_new(j, "date_created", jdate(r, "date_created"));
    json_object_set_new(j, "date_updated", jdate(r, "date_updated"));
    json_object_set_new(j, "url",
                        by_worker ? wurl(e, base, "/Workers/%s/Reservations/%s", worker, sid)
                                  : wurl(e, base, "/Tasks/%s/Reservations/%s", task, sid));
    json_object_set_new(j, "links",
                        json_pack("{s:o, s:o, s:o}", "task", wurl(e, base, "/Tasks/%s", task),
                                  "worker", wurl(e, base, "/Workers/%s", worker), "workspace",
                                  wurl(e, base, "%s", "")));
    return j;
}

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

json_t *tr_json_event(tr_engine_t *e, const json_t *r, const char *base)
{
    const char *sid = row_str(r, "sid"), *rtype = row_str(r, "resource_type");
    const char *rsid = row_str(r, "resource_sid");
    json_t *j = json_object();
    if (!j)
        return NULL;
    common(e, j);
    json_t *params = json_loads(row_str(r, "params") ? row_str(r, "params") : "{}", 0, NULL);
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
    json_object_set_new(j, "sid", jstr(r, "sid"));
    json_object_set_new(j, "event_type", jstr(r, "event_type"));
    json_object_set_new(j, "description", jstr(r, "description"));
    json_object_set_new(j, "event_data", data);
    json_object_set_new(j, "event_date", jdate(r, "date_ms"));
    json_object_set_new(j, "event_date_ms", json_integer(row_int(r, "date_ms")));
    json_object_set_new(j, "resource_type", jstr(r, "resource_type"));
    json_object_set_new(j, "resource_sid", jstr(r, "resource_sid"));
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
    if (rtype && !strcmp(rtype, "Reservation") && row_str(r, "task_sid"))
        json_object_set_new(
            j, "resource_url",
            wurl(e, base, "/Tasks/%s/Reservations/%s", row_str(r, "task_sid"), rsid ? rsid : ""));
    else if (coll && rsid)
        json_object_set_new(j, "resource_url", wurl(e, base, "/%s/%s", coll, rsid));
    else
        json_object_set_new(j, "resource_url", json_null());
    json_object_set_new(j, "actor_sid", json_string(e->account_sid));
    json_object_set_new(j, "actor_type", json_string("account"));
    json_object_set_new(j, "actor_url", json_null());
    json_object_set_new(j, "source", json_string("twilio"));
    json_object_set_new(j, "source_ip_address", json_null());
    json_object_set_new(j, "url", wurl(e, base, "/Events/%s", sid));
    return j;
}
