/* get_queue_position.c - a customer's place in its queue, from the back end's tasks. */
#include "functions/get_queue_position.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/verify_token.h"
#include "backend/backend.h"
#include "functions/get_sync_grant.h"
#include "http/cors.h"
#include "log.h"

#define WINDOW_MINUTES 15

long get_queue_position_estimate(long position, const json_t *cumulative, const json_t *realtime,
                                 int window_minutes)
{
    json_int_t accepted = json_integer_value(json_object_get(cumulative, "reservations_accepted"));
    if (accepted <= 0 || position <= 0 || window_minutes <= 0)
        return -1;
    /* Free tellers take the first tasks at once, in about the usual acceptance time. */
    json_int_t available = json_integer_value(json_object_get(realtime, "total_available_workers"));
    json_int_t acceptance =
        json_integer_value(json_object_get(cumulative, "avg_task_acceptance_time"));
    if (available >= position)
        return acceptance > 0 ? (long)acceptance : 0;
    /* Throughput: the tasks accepted in the window give a rate; the tasks ahead of this one
     * and this one, less the free tellers, go at that rate. Little history makes it far too
     * pessimistic (one task in 15 minutes), so it is capped by position times the time an
     * accepted task usually waited, which in a steady queue is never the smaller one. */
    double rate = (double)accepted / (window_minutes * 60.0); /* tasks per second */
    long by_rate = (long)((double)(position - available) / rate + 0.5);
    long by_waits = position * (long)(acceptance > 0 ? acceptance : 1);
    return by_rate < by_waits ? by_rate : by_waits;
}

/* TaskRouter's order within a queue: priority descending, then age descending; tasks of the
 * same priority and whole-second age keep the back end's list order (creation order), since
 * `age` and `date_created` only have seconds. ia and ib are the tasks' list indexes. */
static bool ahead_of(const json_t *a, size_t ia, const json_t *b, size_t ib)
{
    json_int_t pa = json_integer_value(json_object_get(a, "priority"));
    json_int_t pb = json_integer_value(json_object_get(b, "priority"));
    if (pa != pb)
        return pa > pb;
    json_int_t aa = json_integer_value(json_object_get(a, "age"));
    json_int_t ab = json_integer_value(json_object_get(b, "age"));
    if (aa != ab)
        return aa > ab;
    return ia < ib;
}

/* The value of attribute key in a task resource's attributes text (new reference or NULL). */
static json_t *task_attr(const json_t *task, const char *key)
{
    const char *text = json_string_value(json_object_get(task, "attributes"));
    json_t *attrs = text ? json_loads(text, 0, NULL) : NULL;
    json_t *v = json_incref(json_object_get(attrs, key));
    json_decref(attrs);
    return v;
}

static bool attr_equals(const json_t *task, const char *key, const char *want)
{
    json_t *v = task_attr(task, key);
    bool same = json_is_string(v) && strcmp(json_string_value(v), want) == 0;
    json_decref(v);
    return same;
}

/* The task asked about when it is still waiting, found without listing the queue: by its
 * SID, or by its topic attribute in the back end (right even before the router wrote the
 * topic document). NULL otherwise. */
static json_t *waiting_task_of(backend_t *b, const char *task_sid, const char *topic)
{
    json_t *task = NULL;
    if (!task_sid) {
        if (b->ops->waiting_task_by_topic)
            b->ops->waiting_task_by_topic(b, topic, &task, NULL);
        return task;
    }
    if (b->ops->task_fetch(b, task_sid, &task, NULL) != TASSA_OK)
        return NULL;
    const char *status = json_string_value(json_object_get(task, "assignment_status"));
    if (!status || (strcmp(status, "pending") && strcmp(status, "reserved"))) {
        json_decref(task);
        return NULL;
    }
    return task;
}

static void fail(http_resp_t *resp, tassa_err err, const char *why)
{
    http_resp_fn_error(resp, err, why);
}

/* Answers for a task that no longer waits (or a topic known only from its document). */
static json_t *settled(const char *task_sid, const char *queue, const char *status)
{
    return json_pack("{s:s?, s:s?, s:n, s:n, s:n, s:n, s:s}", "taskSid", task_sid, "queue", queue,
                     "position", "ahead", "queueSize", "estimatedWaitSeconds", "status", status);
}

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    static const char *const waiting[] = {"pending", "reserved"};
    app_t *app = ctx;
    backend_t *b = app->backend;
    errmsg_t em = {{0}};
    json_t *tasks = NULL, *task = NULL, *rt = NULL, *cum = NULL;
    if (cors_apply(req, resp, app->config->cors_origins))
        return;
    const char *token = get_sync_grant_caller_token(req);
    const char *identity = params_get_nonempty(req->params, "identity");
    const char *task_sid = params_get_nonempty(req->params, "taskSid");
    const char *topic = params_get_nonempty(req->params, "topic");
    if (!token || !identity) {
        fail(resp, TASSA_EMISSING, !token ? "token is required" : "identity is required");
        return;
    }
    if (!task_sid && !topic) {
        fail(resp, TASSA_EMISSING, "taskSid or topic is required");
        return;
    }
    tassa_err err = verify_token(token, identity, app->config->jwt_secret, time(NULL), &em);
    if (err) {
        fail(resp, err == TASSA_EMISSING ? err : TASSA_EUNAUTH, err_text(&em, err));
        return;
    }
    size_t i, task_idx = 0;
    json_t *t;
    /* Fast path: the task itself, then two indexed counts in the back end; the slow one
     * lists every waiting task. */
    if (b->ops->task_position) {
        if ((task = waiting_task_of(b, task_sid, topic)))
            goto found;
    } else if ((err = b->ops->tasks_list(b, waiting, 2, &tasks, &em))) {
        goto error;
    }
    json_array_foreach(tasks, i, t)
    {
        const char *sid = json_string_value(json_object_get(t, "sid"));
        if (task_sid ? strcmp(sid, task_sid) == 0 : attr_equals(t, "topic", topic)) {
            task = json_incref(t);
            task_idx = i;
            break;
        }
    }
    if (!task && task_sid) {
        /* Not waiting any more: say what became of it. */
        if ((err = b->ops->task_fetch(b, task_sid, &task, &em)))
            goto error;
    }
    if (!task) {
        json_t *doc = NULL;
        if ((err = b->ops->doc_fetch(b, topic, &doc, &em))) {
            if (err == TASSA_ENOTFOUND)
                err_set(&em, err, "no task for topic %.80s", topic);
            goto error;
        }
        json_t *data = json_object_get(doc, "data");
        http_resp_json(resp, 200,
                       settled(json_string_value(json_object_get(data, "taskSid")), NULL,
                               json_string_value(json_object_get(data, "status"))));
        json_decref(doc);
        goto out;
    }
found:;
    json_t *owner = task_attr(task, "identity");
    bool allowed = !json_is_string(owner) || strcmp(json_string_value(owner), identity) == 0;
    json_decref(owner);
    if (!allowed) {
        err = err_set(&em, TASSA_EFORBIDDEN, "this task belongs to another identity");
        goto error;
    }
    const char *sid = json_string_value(json_object_get(task, "sid"));
    const char *status = json_string_value(json_object_get(task, "assignment_status"));
    const char *queue_sid = json_string_value(json_object_get(task, "task_queue_sid"));
    const char *queue = json_string_value(json_object_get(task, "task_queue_friendly_name"));
    if (!status || (strcmp(status, "pending") && strcmp(status, "reserved"))) {
        http_resp_json(resp, 200, settled(sid, queue, status ? status : "unknown"));
        goto out;
    }
    long position = 1, size = 0;
    if (!tasks) {
        if ((err = b->ops->task_position(b, sid, &position, &size, &em)))
            goto error;
    }
    json_array_foreach(tasks, i, t)
    {
        const char *q = json_string_value(json_object_get(t, "task_queue_sid"));
        if (!(q == queue_sid || (q && queue_sid && strcmp(q, queue_sid) == 0)))
            continue;
        size++;
        const char *other = json_string_value(json_object_get(t, "sid"));
        if (strcmp(other, sid) != 0 && ahead_of(t, i, task, task_idx))
            position++;
    }
    long estimate = -1;
    if (queue_sid && b->ops->queue_stats(b, queue_sid, WINDOW_MINUTES, &rt, &cum, &em) == TASSA_OK)
        estimate = get_queue_position_estimate(position, cum, rt, WINDOW_MINUTES);
    else if (queue_sid)
        log_warn("event=queue_stats_failed queue=%s err=\"%s\"", queue_sid, em.text);
    json_t *answer =
        json_pack("{s:s, s:s?, s:i, s:i, s:i, s:o, s:s}", "taskSid", sid, "queue", queue,
                  "position", (json_int_t)position, "ahead", (json_int_t)(position - 1),
                  "queueSize", (json_int_t)size, "estimatedWaitSeconds",
                  estimate < 0 ? json_null() : json_integer(estimate), "status", status);
    http_resp_json(resp, 200, answer);
    goto out;
error:
    fail(resp, err, err_text(&em, err));
out:
    json_decref(tasks);
    json_decref(task);
    json_decref(rt);
    json_decref(cum);
}

tassa_err get_queue_position_register(app_t *app)
{
    const http_route_t routes[] = {{"OPTIONS", "/queue/get-queue-position", handle},
                                   {"POST", "/queue/get-queue-position", handle},
                                   {"GET", "/queue/get-queue-position", handle}};
    return http_server_routes(app->http, routes, 3, app);
}
