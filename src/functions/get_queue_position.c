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
#include "base/task_order.h"

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

/* Whether attribute key of the task is the string want, byte for byte: a value with a NUL
 * inside ("alice\u0000x") is not "alice". */
static bool attr_equals(const json_t *task, const char *key, const char *want)
{
    json_t *v = backend_task_attr(task, key);
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

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* What the handler learns about the task asked about, step by step. */
typedef struct {
    json_t *tasks;      /* the waiting tasks, listed when the back end has no task_position */
    json_t *task;       /* the task asked about (new reference) */
    size_t idx;         /* its index in tasks, when it is listed */
    const char *status; /* its assignment status (borrowed from task, or static) */
    long position, size;
} lookup_t;

static void lookup_clear(lookup_t *l)
{
    json_decref(l->tasks);
    json_decref(l->task);
}

/* The caller's question: token and identity checked, and a task SID or a topic. */
typedef struct {
    const char *identity, *task_sid, *topic; /* borrowed from the request */
} question_t;

/* Reads and checks the question. On failure returns the error to answer (TASSA_EMISSING, or
 * TASSA_EUNAUTH for a token that does not verify) with its text in em. */
static tassa_err read_question(const hs256_key_t *caller_key, const http_req_t *req, question_t *q,
                               errmsg_t *em)
{
    const char *token = get_sync_grant_caller_token(req);
    q->identity = params_get_nonempty(req->params, "identity");
    q->task_sid = params_get_nonempty(req->params, "taskSid");
    q->topic = params_get_nonempty(req->params, "topic");
    if (!token || !q->identity)
        return err_set(em, TASSA_EMISSING, !token ? "token is required" : "identity is required");
    if (!q->task_sid && !q->topic)
        return err_set(em, TASSA_EMISSING, "taskSid or topic is required");
    tassa_err err = verify_token_keyed(token, q->identity, caller_key, time(NULL), em);
    if (err && !em->text[0])
        snprintf(em->text, sizeof em->text, "%s", tassa_strerror(err));
    return !err || err == TASSA_EMISSING ? err : TASSA_EUNAUTH;
}

/* Finds the task and makes sure it is the caller's: NOT_YOURS for anything else. Without the
 * back end's fast path the waiting tasks are listed first, to find the task among them. */
static tassa_err find_own_task(backend_t *b, const question_t *q, lookup_t *l, errmsg_t *em)
{
    tassa_err err = TASSA_OK;
    if (!b->ops->task_position)
        err = b->ops->tasks_list(b, task_waiting_statuses, TASK_WAITING_N, &l->tasks, em);
    if (!err)
        err = find_task(b, l->tasks, q->task_sid, q->topic, &l->task, &l->idx, em);
    if (err == TASSA_ENOTFOUND || (!err && !attr_equals(l->task, "identity", q->identity)))
        return err_set(em, TASSA_ENOTFOUND, NOT_YOURS);
    if (err)
        return err;
    if (!str(l->task, "sid"))
        return err_set(em, TASSA_EUPSTREAM, "the back end answered a task without a sid");
    l->status = str(l->task, "assignment_status");
    return TASSA_OK;
}

/* The slow way: counts the listed tasks of the task's queue and those ahead of it. */
static void place_from_list(lookup_t *l)
{
    const char *sid = str(l->task, "sid"), *queue_sid = str(l->task, "task_queue_sid");
    task_rank_t mine = backend_task_rank(l->task, l->idx);
    size_t i;
    json_t *t;
    l->position = 1;
    l->size = 0;
    json_array_foreach(l->tasks, i, t)
    {
        const char *q = str(t, "task_queue_sid"), *other = str(t, "sid");
        if (!(q == queue_sid || (q && queue_sid && strcmp(q, queue_sid) == 0)))
            continue;
        l->size++;
        task_rank_t theirs = backend_task_rank(t, i);
        if (other && strcmp(other, sid) != 0 && task_rank_cmp(&theirs, &mine) < 0)
            l->position++;
    }
}

/* A waiting task's place in its queue: the back end's fast path when it has one, else the
 * list. When the fast path finds that the task left the queue in between, the task is read
 * again, to say what became of it. */
static tassa_err place_in_queue(backend_t *b, lookup_t *l, errmsg_t *em)
{
    if (!b->ops->task_position) {
        place_from_list(l);
        return TASSA_OK;
    }
    tassa_err err = b->ops->task_position(b, str(l->task, "sid"), &l->position, &l->size, em);
    if (err != TASSA_ENOTFOUND)
        return err;
    json_t *gone = l->task; /* kept until the read, which needs its sid */
    l->task = NULL;
    err = b->ops->task_fetch(b, str(gone, "sid"), &l->task, em);
    json_decref(gone);
    if (err)
        return err;
    if (!str(l->task, "sid"))
        return err_set(em, TASSA_EUPSTREAM, "the back end answered a task without a sid");
    l->status = str(l->task, "assignment_status");
    if (task_status_waiting(l->status))
        l->status = "unknown";
    return TASSA_OK;
}

/* Answers for a task that no longer waits. */
static json_t *settled(const char *task_sid, const char *queue, const char *status)
{
    return json_pack("{s:s, s:s?, s:n, s:n, s:n, s:n, s:s}", "taskSid", task_sid, "queue", queue,
                     "position", "ahead", "queueSize", "estimatedWaitSeconds", "status",
                     status ? status : "unknown");
}

/* The estimated wait from the queue's statistics; -1 (unknown) when they cannot be read. */
static long estimate_wait(backend_t *b, const char *queue_sid, long position)
{
    json_t *rt = NULL, *cum = NULL;
    errmsg_t em = {{0}};
    long estimate = -1;
    if (!queue_sid)
        return -1;
    if (b->ops->queue_stats(b, queue_sid, WINDOW_MINUTES, &rt, &cum, &em) == TASSA_OK)
        estimate = get_queue_position_estimate(position, cum, rt, WINDOW_MINUTES);
    else
        log_warn("event=queue_stats_failed queue=%s err=\"%s\"", queue_sid, em.text);
    json_decref(rt);
    json_decref(cum);
    return estimate;
}

/* The answer (new reference) for the caller's task once its place is known. */
static json_t *render(backend_t *b, const lookup_t *l)
{
    const char *sid = str(l->task, "sid"), *queue = str(l->task, "task_queue_friendly_name");
    if (!task_status_waiting(l->status))
        return settled(sid, queue, l->status);
    long estimate = estimate_wait(b, str(l->task, "task_queue_sid"), l->position);
    return json_pack("{s:s, s:s?, s:i, s:i, s:i, s:o, s:s}", "taskSid", sid, "queue", queue,
                     "position", (json_int_t)l->position, "ahead", (json_int_t)(l->position - 1),
                     "queueSize", (json_int_t)l->size, "estimatedWaitSeconds",
                     estimate < 0 ? json_null() : json_integer(estimate), "status", l->status);
}

/* Set up once at registration: the caller key, so that a question does no key set-up. */
typedef struct {
    const get_queue_position_deps_t *deps;
    hs256_key_t *caller_key; /* JWT_SECRET; NULL when unset (every caller is then refused) */
} position_state_t;

static void position_state_free(void *p)
{
    position_state_t *ps = p;
    hs256_key_free(ps->caller_key);
    free(ps);
}

/* The request, top to bottom: CORS, the question, the caller's own task, its place, the
 * answer. */
static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const position_state_t *ps = ctx;
    const get_queue_position_deps_t *deps = ps->deps;
    backend_t *b = deps->backend;
    errmsg_t em = {{0}};
    question_t q;
    lookup_t l = {0};
    if (cors_apply(req, resp, deps->config->cors_origins))
        return;
    tassa_err err = read_question(ps->caller_key, req, &q, &em);
    if (!err)
        err = find_own_task(b, &q, &l, &em);
    if (!err && task_status_waiting(l.status))
        err = place_in_queue(b, &l, &em);
    if (err)
        http_resp_fn_error(resp, err, err_text(&em, err));
    else
        http_resp_json(resp, 200, render(b, &l));
    lookup_clear(&l);
}

tassa_err get_queue_position_register(http_server_t *http, const get_queue_position_deps_t *deps)
{
    position_state_t *ps = calloc(1, sizeof *ps);
    if (!ps)
        return TASSA_ENOMEM;
    ps->deps = deps;
    tassa_err err = hs256_key_for(deps->config->jwt_secret, &ps->caller_key);
    if (err) {
        free(ps);
        return err;
    }
    err = http_server_own(http, ps, position_state_free);
    if (err)
        return err;
    const http_route_t routes[] = {{"OPTIONS", "/queue/get-queue-position", handle},
                                   {"POST", "/queue/get-queue-position", handle},
                                   {"GET", "/queue/get-queue-position", handle}};
    return http_server_routes(http, routes, 3, ps);
}
