/* eventbridge.c - the twilio-taskrouter Worker's event bridge on the embedded engine.
 *
 * Design. The REST envelope runs on the HTTP pool threads: parse, verify the token, check the
 * scope, call the model (model.h) with the envelope's params as the REST API's form fields,
 * reshape the REST JSON into the event bridge's (to_eb). The event sockets are kept in one
 * array under the bridge's lock; their callbacks (WebSocket I/O thread) only verify the token
 * (HMAC, no store), send init and heartbeats and close at expiry. eventbridge_deliver runs on
 * the engine's dispatcher thread: it first looks whether a socket of a concerned worker is
 * open (no store read otherwise), reads the payload from the engine, then sends it under the
 * lock. Moving a worker offline when its last socket closes is a store write, so it is queued
 * to the bridge's job thread.
 *
 * Several nodes. Only the lease holder's dispatcher calls eventbridge_deliver; it also
 * publishes the event's SIDs and statuses on CHANNEL (store_notify), and every node's bridge
 * listens: the job thread of a node with sockets delivers the event as its own, reading the
 * payload from the shared store, and skips the events its own process published.
 *
 * Layer: adapters.
 */
#include "adapters/eventbridge.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/hs256.h"
#include "auth/worker_token.h"
#include "base/log.h"
#include "base/sid.h"
#include "engine/taskrouter/model.h"
#include "http/cors.h"
#include "store/store.h"

#define PAGE_DEFAULT   50
#define PAGE_MAX       1000
#define LIST_MAX       10000 /* rows read for one bridge list (activities, a worker's) */
#define MAX_JOBS       1024  /* offline moves (and remote events) queued at most */
#define CHANNEL        "tassa_eventbridge" /* events for worker sockets on other nodes */
#define CLOSE_BAD      4001                /* bad token at the upgrade */
#define CLOSE_EXPIRED  4003                /* the token expired */
#define CLOSE_REPLACED 4004                /* closeExistingSessions of a newer socket */

typedef struct {
    ws_conn_t *conn;
    char worker[SID_LEN + 1];
    int64_t exp;     /* the token's exp, seconds */
    int64_t beat_ms; /* when the last frame went out */
    bool offline;    /* setWorkerOfflineIfDisconnected */
    bool expired;
} sock_t;

struct eventbridge {
    eventbridge_deps_t deps;
    ws_handler_t handler;
    hs256_key_t *key; /* of config->api_secret; NULL: every token is refused */
    pthread_mutex_t lock;
    sock_t **socks; /* open sockets, guarded by lock */
    size_t nsocks, cap;
    bool quiet; /* eventbridge_quiesce: no offline moves */
    /* the job thread: worker SIDs to move offline */
    pthread_cond_t cond;
    char (*jobs)[SID_LEN + 1];
    size_t njobs;
    char **remote; /* events other nodes published (their notify payloads), oldest first */
    size_t nremote;
    bool stop, listening;
    char node[33]; /* this process's id in the events it publishes */
    pthread_t thread;
};

/* ---- the envelope ---- */

void eventbridge_request_clear(eventbridge_request_t *r)
{
    free(r->url);
    free(r->method);
    free(r->token);
    json_decref(r->params);
    memset(r, 0, sizeof *r);
}

tassa_err eventbridge_parse(const char *body, size_t len, eventbridge_request_t *out, errmsg_t *em)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *j = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    tassa_err err = TASSA_OK;
    if (!json_is_object(j)) {
        err = err_set(em, TASSA_EINVAL,
                      "the body must be a JSON object {url, method, params, "
                      "token}");
        goto out;
    }
    const char *url = json_string_value(json_object_get(j, "url"));
    const char *method = json_string_value(json_object_get(j, "method"));
    const char *token = json_string_value(json_object_get(j, "token"));
    const json_t *params = json_object_get(j, "params");
    size_t ulen = url ? json_string_length(json_object_get(j, "url")) : 0;
    if (!url || ulen == 0 || ulen > EVENTBRIDGE_MAX_URL || strlen(url) != ulen)
        err = err_set(em, TASSA_EINVAL, "url must be a relative path of 1 to %d bytes",
                      EVENTBRIDGE_MAX_URL);
    else if (!method || (strcmp(method, "GET") && strcmp(method, "POST")))
        err = err_set(em, TASSA_EINVAL, "method must be GET or POST");
    else if (!token || !*token)
        err = err_set(em, TASSA_EUNAUTH, "token is required");
    else if (params && !json_is_null(params) && !json_is_object(params))
        err = err_set(em, TASSA_EINVAL, "params must be an object");
    if (err)
        goto out;
    out->url = strdup(url);
    out->method = strdup(method);
    out->token = strdup(token);
    out->params = json_is_object(params) ? json_incref((json_t *)params) : json_object();
    if (!out->url || !out->method || !out->token || !out->params) {
        eventbridge_request_clear(out);
        err = TASSA_ENOMEM;
    }
out:
    json_decref(j);
    return err;
}

tassa_err eventbridge_params(const json_t *params, params_t *p, errmsg_t *em)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        tassa_err err;
        if (json_is_null(v))
            continue;
        if (json_is_string(v)) {
            err = params_add(p, k, strlen(k), json_string_value(v), json_string_length(v), em);
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!text)
                return TASSA_ENOMEM;
            err = params_add(p, k, strlen(k), text, strlen(text), em);
            free(text);
        }
        if (err)
            return err;
    }
    return TASSA_OK;
}

/* ---- shapes (spec 3.6) ---- */

/* Epoch seconds of an ISO 8601 UTC date "YYYY-MM-DDTHH:MM:SSZ" (fractions ignored), or -1. */
static int64_t iso_seconds(const char *s)
{
    struct tm tm = {0};
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* Sets key to a copy of the value of from when key is absent. */
static void alias(json_t *j, const char *key, const char *from)
{
    if (!json_object_get(j, key))
        json_object_set(j, key, json_object_get(j, from) ? json_object_get(j, from) : json_null());
}

/* Reshapes a REST resource in place into the event bridge's: dates (date_*,
 * virtual_start_time) in epoch seconds, no url or links, a version. Returns j (NULL stays
 * NULL); the reference count is not changed. */
static json_t *to_eb(json_t *j)
{
    if (!json_is_object(j))
        return j;
    json_object_del(j, "url");
    json_object_del(j, "links");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(j, tmp, k, v)
    {
        if ((!strncmp(k, "date_", 5) || !strcmp(k, "virtual_start_time") ||
             !strcmp(k, "task_queue_entered_date")) &&
            json_is_string(v)) {
            int64_t s = iso_seconds(json_string_value(v));
            json_object_set_new(j, k, s < 0 ? json_null() : json_integer(s));
        }
    }
    if (!json_object_get(j, "version")) {
        json_t *u = json_object_get(j, "date_updated");
        json_object_set_new(j, "version",
                            json_integer(json_is_integer(u) ? json_integer_value(u) : 0));
    }
    return j;
}

/* to_eb on every object of array a. */
static void to_eb_all(json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) to_eb(v);
}

/* A task in the bridge's shape (spec 3.6 Task), reference stolen. */
static json_t *task_eb(json_t *t)
{
    t = to_eb(t);
    if (!t)
        return NULL;
    alias(t, "queue_sid", "task_queue_sid");
    alias(t, "queue_name", "task_queue_friendly_name");
    alias(t, "workflow_name", "workflow_friendly_name");
    alias(t, "routing_target", "routing_target");
    alias(t, "task_channel_sid", "task_channel_sid");
    alias(t, "virtual_start_time", "date_created");
    if (!json_is_string(json_object_get(t, "addons")))
        json_object_set_new(t, "addons", json_string("{}"));
    if (!json_is_string(json_object_get(t, "attributes")))
        json_object_set_new(t, "attributes", json_string("{}"));
    return t;
}

/* A reservation (REST JSON, stolen) with its task embedded and reservation_timeout. */
static json_t *reservation_eb(tr_engine_t *e, json_t *r, const char *base)
{
    r = to_eb(r);
    if (!r)
        return NULL;
    json_t *task = NULL, *wf = NULL;
    const char *task_sid = json_string_value(json_object_get(r, "task_sid"));
    if (task_sid && !tr_task_fetch(e, task_sid, base, &task, NULL))
        task = task_eb(task);
    long timeout = 120;
    const char *wf_sid = json_string_value(json_object_get(task, "workflow_sid"));
    if (wf_sid && !tr_workflow_fetch(e, wf_sid, base, &wf, NULL) &&
        json_is_integer(json_object_get(wf, "task_reservation_timeout")))
        timeout = (long)json_integer_value(json_object_get(wf, "task_reservation_timeout"));
    json_decref(wf);
    json_object_set_new(r, "task", task ? task : json_null());
    json_object_set_new(r, "reservation_timeout", json_integer(timeout));
    if (!json_object_get(r, "canceled_reason_code"))
        json_object_set_new(r, "canceled_reason_code", json_null());
    return r;
}

/* ---- the envelope's requests ---- */

typedef struct {
    eventbridge_t *b;
    const worker_grant_t *g;
    const char *method, *base;
    params_t *params; /* the envelope's params as form fields */
} call_t;

/* The page of items (stolen) the list params ask for, as {"contents","after_sid"}. */
static json_t *page(const call_t *c, json_t *items)
{
    long size = PAGE_DEFAULT, n;
    const char *ps = params_get(c->params, "PageSize");
    if (ps && params_parse_long(ps, 1, PAGE_MAX, &n))
        size = n;
    const char *after = params_get_nonempty(c->params, "AfterSid");
    size_t start = 0, i;
    json_t *v;
    if (after)
        json_array_foreach(items, i, v)
        {
            const char *sid = json_string_value(json_object_get(v, "sid"));
            if (sid && !strcmp(sid, after)) {
                start = i + 1;
                break;
            }
        }
    json_t *contents = json_array();
    for (i = start; contents && i < json_array_size(items) && (long)(i - start) < size; i++)
        json_array_append(contents, json_array_get(items, i));
    const char *last = NULL;
    if (contents && i < json_array_size(items) && json_array_size(contents))
        last = json_string_value(
            json_object_get(json_array_get(contents, json_array_size(contents) - 1), "sid"));
    json_t *out =
        contents ? json_pack("{s:O, s:s?}", "contents", contents, "after_sid", last) : NULL;
    if (out && !last)
        json_object_set_new(out, "after_sid", json_null());
    json_decref(contents);
    json_decref(items);
    return out;
}

/* Copies the params named in keys (NULL-terminated) into a new set: what a worker may change. */
static params_t *only(const params_t *p, const char *const *keys, errmsg_t *em)
{
    params_t *o = params_new();
    for (size_t i = 0; o && i < p->len; i++)
        for (const char *const *k = keys; *k; k++)
            if (!strcmp(p->items[i].key, *k) &&
                params_add(o, *k, strlen(*k), p->items[i].value, strlen(p->items[i].value), em)) {
                params_free(o);
                return NULL;
            }
    return o;
}

static tassa_err forbidden(errmsg_t *em, const char *what)
{
    return err_set(em, TASSA_EFORBIDDEN, "A worker token may not access %s", what);
}

/* Does the grant's worker hold (or did it hold) a reservation of task sid? */
static bool holds_task(const call_t *c, const char *task_sid)
{
    params_t *f = params_new();
    json_t *items = NULL;
    bool more = false, yes = false;
    if (f && !params_add(f, "WorkerSid", 9, c->g->worker_sid, SID_LEN, NULL) &&
        !tr_reservation_list(c->b->deps.tr, task_sid, NULL, f, 0, 1, c->base, &items, &more, NULL))
        yes = json_array_size(items) > 0;
    json_decref(items);
    params_free(f);
    return yes;
}

static tassa_err worker_call(const call_t *c, char **seg, int n, json_t **out, errmsg_t *em)
{
    tr_engine_t *e = c->b->deps.tr;
    const char *wk = seg[3];
    bool get = !strcmp(c->method, "GET");
    json_t *items = NULL;
    bool more = false;
    tassa_err err;
    if (strcmp(wk, c->g->worker_sid))
        return forbidden(em, "another worker");
    if (n == 4 && get)
        return tr_worker_fetch(e, wk, c->base, out, em);
    if (n == 4) {
        static const char *const keys[] = {"ActivitySid", "Attributes", "RejectPendingReservations",
                                           NULL};
        params_t *p = only(c->params, keys, em);
        if (!p)
            return TASSA_ENOMEM;
        err = tr_worker_update(e, wk, p, c->base, out, em);
        params_free(p);
        return err;
    }
    if (n == 5 && get && (!strcmp(seg[4], "WorkerChannels") || !strcmp(seg[4], "Channels"))) {
        err = tr_worker_channel_list(e, wk, c->base, &items, em);
        if (!err)
            *out = items;
        return err;
    }
    if (n == 5 && get && !strcmp(seg[4], "Reservations")) {
        err = tr_reservation_list(e, NULL, wk, c->params, 0, LIST_MAX, c->base, &items, &more, em);
        if (err)
            return err;
        const char *active = params_get(c->params, "Active");
        bool only_active = active && !strcasecmp(active, "true");
        json_t *list = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(items, i, r)
        {
            const char *st = json_string_value(json_object_get(r, "reservation_status"));
            if (only_active && st && strcmp(st, "pending") && strcmp(st, "accepted") &&
                strcmp(st, "wrapping"))
                continue;
            json_array_append_new(list, reservation_eb(e, json_incref(r), c->base));
        }
        json_decref(items);
        *out = list;
        return list ? TASSA_OK : TASSA_ENOMEM;
    }
    if (n == 6 && !strcmp(seg[4], "Reservations")) {
        json_t *r = NULL;
        if (get) {
            err = tr_reservation_fetch(e, NULL, wk, seg[5], c->base, &r, em);
        } else {
            static const char *const keys[] = {"ReservationStatus", "WorkerActivitySid", NULL};
            if (params_get(c->params, "Instruction") && !params_get(c->params, "ReservationStatus"))
                return err_set(em, TASSA_EINVAL,
                               "Reservation instructions (call, dequeue, redirect, conference) "
                               "are not supported by the embedded engine");
            params_t *p = only(c->params, keys, em);
            if (!p)
                return TASSA_ENOMEM;
            err = tr_reservation_update(e, NULL, wk, seg[5], p, c->base, &r, em);
            params_free(p);
        }
        if (!err)
            *out = reservation_eb(e, r, c->base);
        return err;
    }
    return forbidden(em, "this worker resource");
}

static tassa_err task_call(const call_t *c, char **seg, int n, json_t **out, errmsg_t *em)
{
    tr_engine_t *e = c->b->deps.tr;
    bool get = !strcmp(c->method, "GET");
    json_t *t = NULL;
    tassa_err err;
    if (n == 3 && !get) { /* worker.createTask */
        static const char *const keys[] = {"WorkflowSid", "TaskQueueSid", "Attributes",
                                           "Priority",    "Timeout",      NULL};
        params_t *p = only(c->params, keys, em);
        const char *ch = params_get_nonempty(c->params, "TaskChannelUniqueName");
        if (p && ch && params_add(p, "TaskChannel", 11, ch, strlen(ch), em)) {
            params_free(p);
            return TASSA_EINVAL;
        }
        if (!p)
            return TASSA_ENOMEM;
        err = tr_task_create(e, p, c->base, &t, em);
        params_free(p);
    } else if (n == 4) {
        if (!holds_task(c, seg[3]))
            return forbidden(em, "a task it holds no reservation for");
        if (get) {
            err = tr_task_fetch(e, seg[3], c->base, &t, em);
        } else {
            static const char *const keys[] = {"AssignmentStatus", "Reason", "Attributes", NULL};
            params_t *p = only(c->params, keys, em);
            if (!p)
                return TASSA_ENOMEM;
            err = tr_task_update(e, seg[3], p, c->base, &t, em);
            params_free(p);
        }
    } else {
        return forbidden(em, "this task resource");
    }
    if (!err)
        *out = task_eb(t);
    return err;
}

/* Runs the envelope's request as the grant's worker; *out the payload (a new reference). */
static tassa_err run(const call_t *c, const char *url, json_t **out, errmsg_t *em)
{
    tr_engine_t *e = c->b->deps.tr;
    char path[EVENTBRIDGE_MAX_URL + 1], *seg[8];
    int n = 0;
    *out = NULL;
    while (*url == '/')
        url++;
    if (!strncmp(url, "v1/", 3) || !strncmp(url, "v2/", 3))
        url += 3;
    snprintf(path, sizeof path, "%s", url);
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    for (char *save = NULL, *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == 8)
            return forbidden(em, "this resource");
        seg[n++] = s;
    }
    if (n < 3 || strcmp(seg[0], "Workspaces"))
        return forbidden(em, "this resource");
    if (strcmp(seg[1], c->g->workspace_sid))
        return forbidden(em, "another workspace");
    bool get = !strcmp(c->method, "GET");
    if (!strcmp(seg[2], "Activities") && get) {
        json_t *items = NULL;
        bool more = false;
        tassa_err err;
        if (n == 4) {
            err = tr_activity_fetch(e, seg[3], c->base, out, em);
            to_eb(*out);
            return err;
        }
        if (n != 3)
            return forbidden(em, "this resource");
        err = tr_activity_list(e, c->params, 0, LIST_MAX, c->base, &items, &more, em);
        if (!err) {
            to_eb_all(items);
            *out = page(c, items);
        }
        return err;
    }
    if (!strcmp(seg[2], "Workers") && n >= 4) {
        tassa_err err = worker_call(c, seg, n, out, em);
        if (!err && json_is_array(*out)) {
            to_eb_all(*out);
            *out = page(c, *out);
        } else if (!err && n == 4) {
            *out = to_eb(*out);
        }
        return err;
    }
    if (!strcmp(seg[2], "Tasks"))
        return task_call(c, seg, n, out, em);
    return forbidden(em, "this resource");
}

/* Verifies token and that it is for this account, API key and workspace. */
static tassa_err check_grant(const eventbridge_t *b, const char *token, worker_grant_t *g,
                             errmsg_t *em)
{
    const config_t *cf = b->deps.config;
    tassa_err err = worker_token_verify(token, b->key, time(NULL), g, em);
    if (err)
        return err;
    if (cf->api_key && *cf->api_key && strcmp(g->api_key, cf->api_key))
        return err_set(em, TASSA_EUNAUTH,
                       "the access token is not signed with this server's "
                       "API key");
    if (cf->account_sid && *cf->account_sid && strcmp(g->account_sid, cf->account_sid))
        return err_set(em, TASSA_EUNAUTH, "the access token is for another account");
    if (strcmp(g->workspace_sid, tr_workspace_sid(b->deps.tr)))
        return err_set(em, TASSA_EFORBIDDEN, "the access token is for another workspace");
    return TASSA_OK;
}

/* ---- HTTP: the envelope ---- */

/* The CORS headers of every answer (spec 3.4); true when req was the preflight, answered. */
static bool cors(const eventbridge_t *b, const http_req_t *req, http_resp_t *resp)
{
    const char *o = cors_allow_origin(http_req_header(req, "Origin"), b->deps.config->cors_origins);
    if (o) {
        http_resp_header(resp, "Access-Control-Allow-Origin", o);
        http_resp_header(resp, "Access-Control-Allow-Methods", "POST, OPTIONS");
        http_resp_header(resp, "Access-Control-Allow-Headers",
                         "Content-Type, apiVersion, clientVersion, If-Match");
        http_resp_header(resp, "Access-Control-Max-Age", "600");
        if (strcmp(o, "*"))
            http_resp_header(resp, "Vary", "Origin");
    }
    if (strcmp(req->method, "OPTIONS"))
        return false;
    resp->status = 204;
    resp->content_type = NULL;
    return true;
}

static void eb_post(void *ctx, http_req_t *req, http_resp_t *resp)
{
    eventbridge_t *b = ctx;
    eventbridge_request_t r = {0};
    worker_grant_t g;
    errmsg_t em = {{0}};
    json_t *payload = NULL;
    params_t *p = NULL;
    if (cors(b, req, resp))
        return;
    tassa_err err = eventbridge_parse(req->body, req->body_len, &r, &em);
    if (!err)
        err = check_grant(b, r.token, &g, &em);
    if (!err && req->args[0] && req->args[1] &&
        (strcmp(req->args[0], g.account_sid) || strcmp(req->args[1], g.worker_sid)))
        err = forbidden(&em, "another worker's channel");
    if (!err && !(p = params_new()))
        err = TASSA_ENOMEM;
    if (!err)
        err = eventbridge_params(r.params, p, &em);
    if (!err) {
        /* apiVersion v1 or v2 answers alike: reservation lists always embed their tasks */
        call_t c = {.b = b, .g = &g, .method = r.method, .base = req->base_url, .params = p};
        err = run(&c, r.url, &payload, &em);
    }
    if (err)
        http_resp_twilio_error(resp, err, err_text(&em, err));
    else
        http_resp_json(resp, 200, json_pack("{s:o}", "payload", payload ? payload : json_null()));
    params_free(p);
    eventbridge_request_clear(&r);
}

/* ---- the event sockets (WebSocket I/O thread) ---- */

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool query_true(ws_conn_t *c, const char *name)
{
    const char *v = ws_conn_query(c, name);
    return v && !strcasecmp(v, "true");
}

/* Is a socket of worker open? With the lock held. */
static bool has_socket_locked(const eventbridge_t *b, const char *worker)
{
    for (size_t i = 0; i < b->nsocks; i++)
        if (!strcmp(b->socks[i]->worker, worker))
            return true;
    return false;
}

static bool has_socket(eventbridge_t *b, const char *worker)
{
    pthread_mutex_lock(&b->lock);
    bool yes = worker && has_socket_locked(b, worker);
    pthread_mutex_unlock(&b->lock);
    return yes;
}

static void eb_open(void *ctx, ws_conn_t *c)
{
    eventbridge_t *b = ctx;
    worker_grant_t g;
    errmsg_t em = {{0}};
    tassa_err err = check_grant(b, ws_conn_query(c, "token"), &g, &em);
    const char *ac = ws_conn_arg(c, 0), *wk = ws_conn_arg(c, 1);
    if (!err && ac && wk && (strcmp(ac, g.account_sid) || strcmp(wk, g.worker_sid)))
        err = forbidden(&em, "another worker's channel");
    if (err) {
        log_info("event=eventbridge_refused reason=\"%s\"", err_text(&em, err));
        ws_close(c, CLOSE_BAD, err_text(&em, err));
        return;
    }
    sock_t *s = calloc(1, sizeof *s);
    if (!s) {
        ws_close(c, 1011, "out of memory");
        return;
    }
    s->conn = c;
    memcpy(s->worker, g.worker_sid, sizeof s->worker);
    s->exp = g.exp;
    s->beat_ms = mono_ms();
    s->offline = query_true(c, "setWorkerOfflineIfDisconnected");
    bool replace = query_true(c, "closeExistingSessions");
    pthread_mutex_lock(&b->lock);
    if (replace)
        for (size_t i = 0; i < b->nsocks; i++)
            if (!strcmp(b->socks[i]->worker, s->worker)) {
                b->socks[i]->offline = false; /* replaced, not gone */
                ws_close(b->socks[i]->conn, CLOSE_REPLACED, "closed by a newer session");
            }
    pthread_mutex_unlock(&b->lock);
    if (ws_set_identity(c, s->worker)) {
        free(s);
        ws_close(c, 1008, "too many connections for this worker");
        return;
    }
    /* in milliseconds, from a precise clock: time(2) reads a coarse one that can still show
     * the last second, which made the lifetime a second longer than the token's ttl */
    int64_t life_ms = (g.exp < INT64_MAX / 1000 ? g.exp : INT64_MAX / 1000) * 1000 - store_now_ms();
    json_t *init =
        json_pack("{s:s, s:{s:s, s:s, s:s, s:I}}", "event_type", "init", "payload", "channel_id",
                  g.worker_sid, "account_sid", g.account_sid, "workspace_sid", g.workspace_sid,
                  "token_lifetime", (json_int_t)(life_ms > 0 ? life_ms : 0));
    char *text = init ? json_dumps(init, JSON_COMPACT) : NULL;
    json_decref(init);
    if (!text || ws_send(c, false, text, strlen(text))) {
        free(text);
        free(s);
        ws_close(c, 1011, "cannot send init");
        return;
    }
    free(text);
    pthread_mutex_lock(&b->lock);
    if (b->nsocks == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        sock_t **n = realloc(b->socks, cap * sizeof *n);
        if (n) {
            b->socks = n;
            b->cap = cap;
        }
    }
    bool ok = b->nsocks < b->cap;
    if (ok)
        b->socks[b->nsocks++] = s;
    pthread_mutex_unlock(&b->lock);
    if (!ok) {
        free(s);
        ws_close(c, 1011, "out of memory");
        return;
    }
    ws_conn_set_data(c, s);
    log_info("event=eventbridge_open worker=%s", s->worker);
}

static void eb_message(void *ctx, ws_conn_t *c, bool binary, const uint8_t *data, size_t len)
{
    (void)ctx, (void)c, (void)binary, (void)data, (void)len; /* the SDK never sends */
}

static void eb_tick(void *ctx, ws_conn_t *c, int64_t now_ms)
{
    (void)ctx;
    sock_t *s = ws_conn_data(c);
    if (!s || s->expired)
        return;
    if ((int64_t)time(NULL) >= s->exp) {
        s->expired = true;
        ws_close(c, CLOSE_EXPIRED, "token expired");
        return;
    }
    if (now_ms - s->beat_ms >= EVENTBRIDGE_HEARTBEAT_MS) {
        s->beat_ms = now_ms;
        ws_send(c, false, " ", 1);
    }
}

static void eb_close(void *ctx, ws_conn_t *c)
{
    eventbridge_t *b = ctx;
    sock_t *s = ws_conn_data(c);
    if (!s)
        return;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->nsocks; i++)
        if (b->socks[i] == s) {
            b->socks[i] = b->socks[--b->nsocks];
            break;
        }
    if (s->offline && !b->quiet && !has_socket_locked(b, s->worker) && b->njobs < MAX_JOBS) {
        memcpy(b->jobs[b->njobs++], s->worker, SID_LEN + 1);
        pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
    ws_conn_set_data(c, NULL);
    free(s);
}

/* ---- the job thread: disconnected workers go offline ---- */

static void go_offline(eventbridge_t *b, const char *worker)
{
    tr_engine_t *e = b->deps.tr;
    params_t *f = params_new(), *p = params_new();
    json_t *items = NULL;
    bool more = false;
    errmsg_t em = {{0}};
    const char *act = NULL;
    if (f && p && !params_add(f, "FriendlyName", 12, "Offline", 7, NULL) &&
        !tr_activity_list(e, f, 0, 1, "http://localhost", &items, &more, NULL))
        act = json_string_value(json_object_get(json_array_get(items, 0), "sid"));
    if (act && !params_add(p, "ActivitySid", 11, act, strlen(act), NULL)) {
        tassa_err err = tr_worker_update(e, worker, p, "http://localhost", NULL, &em);
        if (err)
            log_warn("event=eventbridge_offline_failed worker=%s err=\"%s\"", worker,
                     err_text(&em, err));
        else
            log_info("event=eventbridge_offline worker=%s", worker);
    }
    json_decref(items);
    params_free(f);
    params_free(p);
}

static void deliver_local(eventbridge_t *b, const params_t *event);

/* An event another node published (payload JSON {"n": node, "e": {parameters}}): delivered to
 * this node's sockets, unless this node published it. */
static void deliver_remote(eventbridge_t *b, const char *payload)
{
    json_t *j = json_loads(payload, 0, NULL);
    const char *n = json_string_value(json_object_get(j, "n"));
    const json_t *e = json_object_get(j, "e");
    params_t *p = NULL;
    if (n && strcmp(n, b->node) && json_is_object(e) && (p = params_new()) &&
        !eventbridge_params(e, p, NULL))
        deliver_local(b, p);
    params_free(p);
    json_decref(j);
}

static void *job_main(void *arg)
{
    eventbridge_t *b = arg;
    char worker[SID_LEN + 1];
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->njobs && !b->nremote && !b->stop)
            pthread_cond_wait(&b->cond, &b->lock);
        if (b->nremote) {
            char *payload = b->remote[0];
            memmove(b->remote, b->remote + 1, --b->nremote * sizeof *b->remote);
            pthread_mutex_unlock(&b->lock);
            deliver_remote(b, payload);
            free(payload);
            pthread_mutex_lock(&b->lock);
            continue;
        }
        if (!b->njobs)
            break;
        memcpy(worker, b->jobs[0], sizeof worker);
        memmove(b->jobs, b->jobs + 1, --b->njobs * sizeof *b->jobs);
        bool back = has_socket_locked(b, worker); /* it came back meanwhile */
        pthread_mutex_unlock(&b->lock);
        if (!back)
            go_offline(b, worker);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* A store_notify_fn on CHANNEL (the store's session thread: quick, no store lock): queues the
 * payload for the job thread when this node has sockets. NULL (notifications missed) is
 * ignored: events are live only, as on Twilio. */
static void on_notify(void *ctx, const char *payload)
{
    eventbridge_t *b = ctx;
    if (!payload)
        return;
    pthread_mutex_lock(&b->lock);
    char *copy = b->nsocks && b->nremote < MAX_JOBS ? strdup(payload) : NULL;
    if (copy) {
        b->remote[b->nremote++] = copy;
        pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- events (the engine's dispatcher thread) ---- */

/* Sends {"event_type": type, "payload": payload (stolen)} to worker's sockets. */
static void send_to(eventbridge_t *b, const char *worker, const char *type, json_t *payload)
{
    json_t *m = payload ? json_pack("{s:s, s:o}", "event_type", type, "payload", payload) : NULL;
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!text)
        return;
    size_t len = strlen(text);
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->nsocks; i++)
        if (!strcmp(b->socks[i]->worker, worker) &&
            ws_send(b->socks[i]->conn, false, text, len) == TASSA_ELIMIT)
            log_info("event=eventbridge_dropped reason=slow_client worker=%s", worker);
    pthread_mutex_unlock(&b->lock);
    free(text);
}

/* Sets key of obj to the event's parameter name when the event has it. */
static void from_event(json_t *obj, const char *key, const params_t *ev, const char *name)
{
    const char *v = params_get(ev, name);
    if (obj && v)
        json_object_set_new(obj, key, json_string(v));
}

#define BASE "http://localhost" /* payloads carry no urls */

static void deliver_reservation(eventbridge_t *b, const char *type, const params_t *ev)
{
    const char *wk = params_get(ev, "WorkerSid"), *rs = params_get(ev, "ReservationSid");
    json_t *r = NULL;
    if (!wk || !rs || !has_socket(b, wk) ||
        tr_reservation_fetch(b->deps.tr, NULL, wk, rs, BASE, &r, NULL))
        return;
    r = reservation_eb(b->deps.tr, r, BASE);
    from_event(r, "reservation_status", ev, "ReservationStatus");
    from_event(json_object_get(r, "task"), "assignment_status", ev, "TaskAssignmentStatus");
    send_to(b, wk, type, r);
}

static void deliver_worker(eventbridge_t *b, const char *type, const params_t *ev)
{
    const char *wk = params_get(ev, "WorkerSid");
    json_t *w = NULL;
    if (!wk || !has_socket(b, wk) || tr_worker_fetch(b->deps.tr, wk, BASE, &w, NULL))
        return;
    to_eb(w);
    from_event(w, "activity_sid", ev, "WorkerActivitySid");
    from_event(w, "activity_name", ev, "WorkerActivityName");
    from_event(w, "attributes", ev, "WorkerAttributes");
    const char *av = params_get(ev, "WorkerAvailable");
    if (av)
        json_object_set_new(w, "available", json_boolean(!strcmp(av, "true")));
    send_to(b, wk, type, w);
}

static void deliver_task(eventbridge_t *b, const char *type, const params_t *ev)
{
    const char *ts = params_get(ev, "TaskSid");
    json_t *items = NULL, *t = NULL;
    bool more = false;
    if (!ts || tr_reservation_list(b->deps.tr, ts, NULL, NULL, 0, 100, BASE, &items, &more, NULL))
        return;
    char(*to)[SID_LEN + 1] = calloc(json_array_size(items) + 1, sizeof *to);
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(items, i, r)
    {
        const char *wk = json_string_value(json_object_get(r, "worker_sid"));
        bool dup = false;
        for (size_t k = 0; to && wk && k < n; k++)
            dup = dup || !strcmp(to[k], wk);
        if (to && wk && !dup && strlen(wk) == SID_LEN && has_socket(b, wk))
            memcpy(to[n++], wk, SID_LEN + 1);
    }
    json_decref(items);
    if (n && !tr_task_fetch(b->deps.tr, ts, BASE, &t, NULL)) {
        t = task_eb(t);
        from_event(t, "assignment_status", ev, "TaskAssignmentStatus");
        for (i = 0; i < n; i++)
            send_to(b, to[i], type, json_incref(t));
        json_decref(t);
    }
    free(to);
}

/* The event to this node's sockets. */
static void deliver_local(eventbridge_t *b, const params_t *event)
{
    const char *type = params_get(event, "EventType");
    if (!type)
        return;
    pthread_mutex_lock(&b->lock);
    bool any = b->nsocks > 0;
    pthread_mutex_unlock(&b->lock);
    if (!any)
        return;
    if (!strncmp(type, "reservation.", 12))
        deliver_reservation(b, type, event);
    else if (!strcmp(type, "worker.activity.update") || !strcmp(type, "worker.attributes.update"))
        deliver_worker(b, type, event);
    else if (!strcmp(type, "task.updated") || !strcmp(type, "task.canceled") ||
             !strcmp(type, "task.completed") || !strcmp(type, "task.wrapup"))
        deliver_task(b, type, event);
}

/* Does the bridge send events of this type? */
static bool bridged(const char *type)
{
    return !strncmp(type, "reservation.", 12) || !strcmp(type, "worker.activity.update") ||
           !strcmp(type, "worker.attributes.update") || !strcmp(type, "task.updated") ||
           !strcmp(type, "task.canceled") || !strcmp(type, "task.completed") ||
           !strcmp(type, "task.wrapup");
}

/* Publishes the event's SIDs and statuses (never attributes: a notify carries ids) to the
 * other nodes' bridges. */
static void publish(eventbridge_t *b, const params_t *event)
{
    static const char *const keys[] = {"EventType",         "WorkerSid",
                                       "ReservationSid",    "TaskSid",
                                       "ReservationStatus", "TaskAssignmentStatus",
                                       "WorkerActivitySid", "WorkerActivityName",
                                       "WorkerAvailable",   NULL};
    json_t *e = json_object();
    for (const char *const *k = keys; e && *k; k++) {
        const char *v = params_get(event, *k);
        if (v && strlen(v) <= 128)
            json_object_set_new(e, *k, json_string(v));
    }
    json_t *j = e ? json_pack("{s:s, s:o}", "n", b->node, "e", e) : NULL;
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return;
    store_lock(b->deps.store);
    tassa_err err = store_notify(b->deps.store, CHANNEL, text);
    store_unlock(b->deps.store);
    if (err)
        log_warn("event=eventbridge_publish_failed type=%s", params_get(event, "EventType"));
    free(text);
}

void eventbridge_deliver(eventbridge_t *b, const params_t *event)
{
    const char *type = b ? params_get(event, "EventType") : NULL;
    if (!type || !bridged(type))
        return;
    deliver_local(b, event);
    if (b->listening)
        publish(b, event);
}

/* ---- lifetime ---- */

eventbridge_t *eventbridge_new(const eventbridge_deps_t *deps)
{
    eventbridge_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->deps = *deps;
    const char *secret = deps->config->api_secret;
    if (secret && *secret && !(b->key = hs256_key_new(secret, strlen(secret)))) {
        free(b);
        return NULL;
    }
    b->jobs = calloc(MAX_JOBS, sizeof *b->jobs);
    b->remote = calloc(MAX_JOBS, sizeof *b->remote);
    if (sid_random_hex(b->node, 16))
        snprintf(b->node, sizeof b->node, "%p", (void *)b);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    if (!b->jobs || !b->remote || pthread_create(&b->thread, NULL, job_main, b)) {
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->cond);
        hs256_key_free(b->key);
        free(b->jobs);
        free(b->remote);
        free(b);
        return NULL;
    }
    /* Several nodes on one store: hear the events the lease holder publishes. */
    if (deps->store && store_shared(deps->store)) {
        if (store_listen(deps->store, CHANNEL, on_notify, b))
            log_warn("event=eventbridge_listen_failed channel=" CHANNEL);
        else
            b->listening = true;
    }
    b->handler = (ws_handler_t){
        .on_open = eb_open, .on_message = eb_message, .on_tick = eb_tick, .on_close = eb_close};
    return b;
}

tassa_err eventbridge_register(eventbridge_t *b, http_server_t *http)
{
    static const char *const paths[] = {"/v1/wschannels", "/v1/wschannels/{}/{}"};
    tassa_err err = TASSA_OK;
    for (int i = 0; !err && i < 2; i++) {
        err = http_server_route_raw(http, "POST", paths[i], eb_post, b);
        if (!err)
            err = http_server_route(http, "OPTIONS", paths[i], eb_post, b);
        if (!err)
            err = ws_route(b->deps.ws, http, paths[i], &b->handler, b);
    }
    return err;
}

void eventbridge_quiesce(eventbridge_t *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->quiet = true;
    pthread_mutex_unlock(&b->lock);
}

void eventbridge_free(eventbridge_t *b)
{
    if (!b)
        return;
    if (b->listening)
        store_unlisten(b->deps.store, on_notify, b);
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    hs256_key_free(b->key);
    for (size_t i = 0; i < b->nremote; i++)
        free(b->remote[i]);
    free(b->socks);
    free(b->jobs);
    free(b->remote);
    free(b);
}
