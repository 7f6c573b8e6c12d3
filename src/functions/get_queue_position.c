/* get_queue_position.c - a customer's place in its queue, from the back end's tasks.
 *
 * Layer: functions. */
#include "functions/get_queue_position.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/verify_token.h"
#include "backend/backend.h"
#include "functions/get_sync_grant.h"
#include "http/cors.h"
#include "base/log.h"

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

/* Whether attribute key of the task is the string want, byte for byte: a value with a NUL
 * inside ("alice\u0000x") is not "alice". */
static bool attr_equals(const json_t *task, const char *key, const char *want)
{
    json_t *v = task_attr(task, key);
    size_t len = strlen(want);
    bool same = json_is_string(v) && json_string_length(v) == len &&
                memcmp(json_string_value(v), want, len) == 0;
    json_decref(v);
    return same;
}

/* The one answer to every question about a task that is not the caller's: the same whether
 * the task exists, belongs to someone else, has no identity, or the topic document names no
 * task, so that the answer tells nothing about other customers. */
#define NOT_YOURS "no task of this identity for the given taskSid or topic"

/* Finds the task asked about, whoever owns it: with tasks (the waiting tasks listed, borrowed)
 * among them, *idx its index; else, by SID; else the newest waiting task with the topic
 * attribute (right even before the router wrote the topic document); else the task that the
 * topic document names (once it left the queue). *task is a new reference; TASSA_ENOTFOUND
 * when there is none, or another back-end error. */
static tassa_err find_task(backend_t *b, const json_t *tasks, const char *task_sid,
                           const char *topic, json_t **task, size_t *idx, errmsg_t *em)
{
    size_t i;
    json_t *t, *doc = NULL;
    *task = NULL;
    *idx = 0;
    json_array_foreach(tasks, i, t)
    {
        const char *sid = json_string_value(json_object_get(t, "sid"));
        if (task_sid ? sid && strcmp(sid, task_sid) == 0 : attr_equals(t, "topic", topic)) {
            *task = json_incref(t);
            *idx = i;
            return TASSA_OK;
        }
    }
    if (task_sid)
        return b->ops->task_fetch(b, task_sid, task, em);
    if (!tasks && b->ops->waiting_task_by_topic) {
        tassa_err err = b->ops->waiting_task_by_topic(b, topic, task, em);
        if (err != TASSA_ENOTFOUND)
            return err;
    }
    tassa_err err = b->ops->doc_fetch(b, topic, &doc, em);
    if (err)
        return err;
    /* Any document can be asked for (queue-status, or one of any shape): only a string
     * taskSid leads anywhere, and then the task's own attributes decide. */
    const char *sid = json_string_value(json_object_get(json_object_get(doc, "data"), "taskSid"));
    err = sid && *sid ? b->ops->task_fetch(b, sid, task, em) : TASSA_ENOTFOUND;
    json_decref(doc);
    return err;
}

static bool is_waiting(const char *status)
{
    return status && (strcmp(status, "pending") == 0 || strcmp(status, "reserved") == 0);
}

static void fail(http_resp_t *resp, tassa_err err, const char *why)
{
    http_resp_fn_error(resp, err, why);
}

/* Answers for a task that no longer waits. */
static json_t *settled(const char *task_sid, const char *queue, const char *status)
{
    return json_pack("{s:s, s:s?, s:n, s:n, s:n, s:n, s:s}", "taskSid", task_sid, "queue", queue,
                     "position", "ahead", "queueSize", "estimatedWaitSeconds", "status",
                     status ? status : "unknown");
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
    size_t i, task_idx;
    json_t *t;
    /* Fast path: the task itself, then two indexed counts in the back end; the slow one
     * lists every waiting task. */
    if (!b->ops->task_position && (err = b->ops->tasks_list(b, waiting, 2, &tasks, &em)))
        goto error;
    err = find_task(b, tasks, task_sid, topic, &task, &task_idx, &em);
    if (err == TASSA_ENOTFOUND || (!err && !attr_equals(task, "identity", identity))) {
        err = err_set(&em, TASSA_ENOTFOUND, NOT_YOURS);
        goto error;
    }
    if (err)
        goto error;
    const char *sid = json_string_value(json_object_get(task, "sid"));
    const char *status = json_string_value(json_object_get(task, "assignment_status"));
    const char *queue_sid = json_string_value(json_object_get(task, "task_queue_sid"));
    const char *queue = json_string_value(json_object_get(task, "task_queue_friendly_name"));
    if (!sid) {
        err = err_set(&em, TASSA_EUPSTREAM, "the back end answered a task without a sid");
        goto error;
    }
    long position = 1, size = 0;
    if (is_waiting(status) && !tasks) {
        err = b->ops->task_position(b, sid, &position, &size, &em);
        if (err == TASSA_ENOTFOUND) {
            /* It left the queue in between: say what became of it. */
            json_decref(task);
            task = NULL;
            if ((err = b->ops->task_fetch(b, sid, &task, &em)))
                goto error;
            status = json_string_value(json_object_get(task, "assignment_status"));
            if (is_waiting(status))
                status = "unknown";
        } else if (err) {
            goto error;
        }
    }
    if (!is_waiting(status)) {
        http_resp_json(resp, 200, settled(sid, queue, status));
        goto out;
    }
    json_array_foreach(tasks, i, t)
    {
        const char *q = json_string_value(json_object_get(t, "task_queue_sid"));
        if (!(q == queue_sid || (q && queue_sid && strcmp(q, queue_sid) == 0)))
            continue;
        size++;
        const char *other = json_string_value(json_object_get(t, "sid"));
        if (other && strcmp(other, sid) != 0 && ahead_of(t, i, task, task_idx))
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
