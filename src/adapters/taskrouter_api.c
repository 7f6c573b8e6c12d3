/* taskrouter_api.c - TaskRouter REST handlers: parse the request, call the model, answer Twilio's
 * JSON.
 *
 * Every handler checks Basic auth and that the workspace in the path is the engine's, then
 * hands the merged parameters to model.h, which validates them. Lists use Twilio's paging
 * (PageSize up to 1000) and repeat their filters in the page URLs.
 *
 * Layer: adapters.
 */
#include "adapters/taskrouter_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/rest_auth.h"
#include "engine/taskrouter/model.h"
#include "engine/taskrouter/stats.h"
#include "http/paging.h"

#define PAGE_MAX 1000

typedef tassa_err (*list_fn)(tr_engine_t *, const params_t *, long, long, const char *, json_t **,
                             bool *, errmsg_t *);

/* Answers 401 as Twilio does unless the caller shows valid Basic credentials, and 404 when
 * the workspace in the path is not ours. */
static bool enter(const tr_api_deps_t *d, http_req_t *req, http_resp_t *resp)
{
    if (!rest_auth_require(req, resp, d->config))
        return false;
    if (!d->tr) {
        http_resp_twilio_error(resp, TASSA_EUNAVAIL, "TaskRouter is not embedded here");
        return false;
    }
    if (req->args[0] && strcmp(req->args[0], tr_workspace_sid(d->tr))) {
        char msg[160];
        snprintf(msg, sizeof msg, "The requested resource /Workspaces/%.64s was not found",
                 req->args[0]);
        http_resp_twilio_error(resp, TASSA_ENOTFOUND, msg);
        return false;
    }
    return true;
}

/* Sends out with status, or the error with its detail. out's reference is stolen. */
static void reply(http_resp_t *resp, tassa_err err, const errmsg_t *em, int status, json_t *out)
{
    if (err) {
        json_decref(out);
        http_resp_twilio_error(resp, err, err_text(em, err));
    } else if (status == 204) {
        json_decref(out);
        resp->status = 204;
        resp->content_type = NULL;
    } else {
        http_resp_json(resp, status, out);
    }
}

/* Wraps a page of items in Twilio's envelope under key. */
static void send_page(http_req_t *req, http_resp_t *resp, const char *key, const paging_t *pg,
                      json_t *items, bool more)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", req->base_url, req->path);
    char *extra = paging_filters_query(req->query); /* whole, never cut (finding P1) */
    json_t *env = extra ? paging_envelope(key, items, pg, more, url, extra) : NULL;
    if (!extra)
        json_decref(items);
    free(extra);
    if (!env)
        http_resp_twilio_error(resp, TASSA_ENOMEM, NULL);
    else
        http_resp_json(resp, 200, env);
}

/* A list handler body: paging, the model's list function, the envelope. */
static void list(const tr_api_deps_t *d, http_req_t *req, http_resp_t *resp, const char *key,
                 list_fn fn)
{
    errmsg_t em = {{0}};
    paging_t pg;
    json_t *items = NULL;
    bool more = false;
    if (!enter(d, req, resp))
        return;
    tassa_err err = paging_parse(req->params, PAGE_MAX, &pg, &em);
    if (!err)
        err = fn(d->tr, req->params, pg.page * pg.page_size, pg.page_size, req->base_url, &items,
                 &more, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_page(req, resp, key, &pg, items, more);
}

/* Handlers of the common shapes: fetch(sid), update(sid, params), delete(sid),
 * create(params) and list, with the sid in path argument ARG. */
#define FETCH(name, fn, ARG)                                                                       \
    static void name(void *ctx, http_req_t *req, http_resp_t *resp)                                \
    {                                                                                              \
        const tr_api_deps_t *d = ctx;                                                              \
        errmsg_t em = {{0}};                                                                       \
        json_t *out = NULL;                                                                        \
        if (!enter(d, req, resp))                                                                  \
            return;                                                                                \
        tassa_err err = fn(d->tr, req->args[ARG], req->base_url, &out, &em);                       \
        reply(resp, err, &em, 200, out);                                                           \
    }
#define UPDATE(name, fn, ARG)                                                                      \
    static void name(void *ctx, http_req_t *req, http_resp_t *resp)                                \
    {                                                                                              \
        const tr_api_deps_t *d = ctx;                                                              \
        errmsg_t em = {{0}};                                                                       \
        json_t *out = NULL;                                                                        \
        if (!enter(d, req, resp))                                                                  \
            return;                                                                                \
        tassa_err err = fn(d->tr, req->args[ARG], req->params, req->base_url, &out, &em);          \
        reply(resp, err, &em, 200, out);                                                           \
    }
#define DELETE(name, fn, ARG)                                                                      \
    static void name(void *ctx, http_req_t *req, http_resp_t *resp)                                \
    {                                                                                              \
        const tr_api_deps_t *d = ctx;                                                              \
        errmsg_t em = {{0}};                                                                       \
        if (enter(d, req, resp))                                                                   \
            reply(resp, fn(d->tr, req->args[ARG], &em), &em, 204, NULL);                           \
    }
#define CREATE(name, fn)                                                                           \
    static void name(void *ctx, http_req_t *req, http_resp_t *resp)                                \
    {                                                                                              \
        const tr_api_deps_t *d = ctx;                                                              \
        errmsg_t em = {{0}};                                                                       \
        json_t *out = NULL;                                                                        \
        if (!enter(d, req, resp))                                                                  \
            return;                                                                                \
        tassa_err err = fn(d->tr, req->params, req->base_url, &out, &em);                          \
        reply(resp, err, &em, 201, out);                                                           \
    }
#define LIST(name, fn, key)                                                                        \
    static void name(void *ctx, http_req_t *req, http_resp_t *resp)                                \
    {                                                                                              \
        list(ctx, req, resp, key, fn);                                                             \
    }

FETCH(workspace_fetch, tr_workspace_fetch, 0)
UPDATE(workspace_update, tr_workspace_update, 0)
CREATE(activity_create, tr_activity_create)
FETCH(activity_fetch, tr_activity_fetch, 1)
UPDATE(activity_update, tr_activity_update, 1)
DELETE(activity_delete, tr_activity_delete, 1)
LIST(activity_list, tr_activity_list, "activities")
CREATE(worker_create, tr_worker_create)
FETCH(worker_fetch, tr_worker_fetch, 1)
UPDATE(worker_update, tr_worker_update, 1)
DELETE(worker_delete, tr_worker_delete, 1)
LIST(worker_list, tr_worker_list, "workers")
CREATE(queue_create, tr_queue_create)
FETCH(queue_fetch, tr_queue_fetch, 1)
UPDATE(queue_update, tr_queue_update, 1)
DELETE(queue_delete, tr_queue_delete, 1)
LIST(queue_list, tr_queue_list, "task_queues")
CREATE(workflow_create, tr_workflow_create)
FETCH(workflow_fetch, tr_workflow_fetch, 1)
UPDATE(workflow_update, tr_workflow_update, 1)
DELETE(workflow_delete, tr_workflow_delete, 1)
LIST(workflow_list, tr_workflow_list, "workflows")
CREATE(task_create, tr_task_create)
FETCH(task_fetch, tr_task_fetch, 1)
UPDATE(task_update, tr_task_update, 1)
DELETE(task_delete, tr_task_delete, 1)
LIST(task_list, tr_task_list, "tasks")
FETCH(event_fetch, tr_event_fetch, 1)
LIST(event_list, tr_event_list, "events")
LIST(workspace_list, tr_workspace_list, "workspaces")

/* POST /v1/Workspaces: one workspace per engine. */
static void workspace_create(void *ctx, http_req_t *req, http_resp_t *resp)
{
    if (enter(ctx, req, resp))
        http_resp_twilio_error(resp, TASSA_EFORBIDDEN,
                               "The embedded engine serves one workspace; update it instead");
}

/* Reservations under a task (args[1] = WT) or a worker (args[1] = WK). */
static bool by_task(const http_req_t *req)
{
    return strstr(req->path, "/Tasks/") != NULL;
}

static void reservation_list(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    paging_t pg;
    json_t *items = NULL;
    bool more = false;
    if (!enter(d, req, resp))
        return;
    bool t = by_task(req);
    tassa_err err = paging_parse(req->params, PAGE_MAX, &pg, &em);
    if (!err)
        err = tr_reservation_list(d->tr, t ? req->args[1] : NULL, t ? NULL : req->args[1],
                                  req->params, pg.page * pg.page_size, pg.page_size, req->base_url,
                                  &items, &more, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_page(req, resp, "reservations", &pg, items, more);
}

static void reservation_fetch(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    json_t *out = NULL;
    if (!enter(d, req, resp))
        return;
    bool t = by_task(req);
    tassa_err err = tr_reservation_fetch(d->tr, t ? req->args[1] : NULL, t ? NULL : req->args[1],
                                         req->args[2], req->base_url, &out, &em);
    reply(resp, err, &em, 200, out);
}

static void reservation_update(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    json_t *out = NULL;
    if (!enter(d, req, resp))
        return;
    bool t = by_task(req);
    tassa_err err = tr_reservation_update(d->tr, t ? req->args[1] : NULL, t ? NULL : req->args[1],
                                          req->args[2], req->params, req->base_url, &out, &em);
    reply(resp, err, &em, 200, out);
}

/* GET /Workers/{WK}/Channels (Twilio's name; WorkerChannels too, the event bridge's). */
static void worker_channel_list(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    paging_t pg;
    json_t *items = NULL;
    if (!enter(d, req, resp))
        return;
    tassa_err err = paging_parse(req->params, PAGE_MAX, &pg, &em);
    if (!err)
        err = tr_worker_channel_list(d->tr, req->args[1], req->base_url, &items, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_page(req, resp, "channels", &pg, items, false);
}

/* Reads Minutes (1..43200, default 15). */
static tassa_err minutes(const http_req_t *req, long *out, errmsg_t *em)
{
    const char *v = params_get_nonempty(req->params, "Minutes");
    long n;
    *out = 15;
    if (!v)
        return TASSA_OK;
    if (!params_parse_long(v, 1, 43200, &n))
        return err_set(em, TASSA_EINVAL, "Minutes must be an integer from 1 to 43200");
    *out = n;
    return TASSA_OK;
}

static void queue_realtime(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    json_t *out = NULL;
    if (!enter(d, req, resp))
        return;
    tassa_err err = tr_queue_realtime(d->tr, req->args[1], req->base_url, &out, &em);
    reply(resp, err, &em, 200, out);
}

static void queue_cumulative(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    json_t *out = NULL;
    long m;
    if (!enter(d, req, resp))
        return;
    tassa_err err = minutes(req, &m, &em);
    if (!err)
        err = tr_queue_cumulative(d->tr, req->args[1], m, req->base_url, &out, &em);
    reply(resp, err, &em, 200, out);
}

/* GET /TaskQueues/{WQ}/Statistics: both statistics in one resource. */
static void queue_statistics(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    json_t *rt = NULL, *cum = NULL;
    long m;
    if (!enter(d, req, resp))
        return;
    tassa_err err = minutes(req, &m, &em);
    if (!err)
        err = tr_queue_realtime(d->tr, req->args[1], req->base_url, &rt, &em);
    if (!err)
        err = tr_queue_cumulative(d->tr, req->args[1], m, req->base_url, &cum, &em);
    if (err) {
        json_decref(rt);
        reply(resp, err, &em, 200, NULL);
        return;
    }
    char url[512];
    snprintf(url, sizeof url, "%s%s", req->base_url, req->path);
    reply(resp, TASSA_OK, &em, 200,
          json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "account_sid",
                    d->config->account_sid ? d->config->account_sid : "", "workspace_sid",
                    req->args[0], "task_queue_sid", req->args[1], "url", url, "realtime", rt,
                    "cumulative", cum));
}

static void workspace_realtime(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const tr_api_deps_t *d = ctx;
    errmsg_t em = {{0}};
    json_t *out = NULL;
    if (!enter(d, req, resp))
        return;
    tassa_err err = tr_workspace_realtime(d->tr, req->base_url, &out, &em);
    reply(resp, err, &em, 200, out);
}

tassa_err tr_api_register(http_server_t *http, const tr_api_deps_t *deps)
{
    static const http_route_t routes[] = {
        {"GET", "/v1/Workspaces", workspace_list},
        {"POST", "/v1/Workspaces", workspace_create},
        {"GET", "/v1/Workspaces/{}", workspace_fetch},
        {"POST", "/v1/Workspaces/{}", workspace_update},
        {"GET", "/v1/Workspaces/{}/RealTimeStatistics", workspace_realtime},
        {"GET", "/v1/Workspaces/{}/Activities", activity_list},
        {"POST", "/v1/Workspaces/{}/Activities", activity_create},
        {"GET", "/v1/Workspaces/{}/Activities/{}", activity_fetch},
        {"POST", "/v1/Workspaces/{}/Activities/{}", activity_update},
        {"DELETE", "/v1/Workspaces/{}/Activities/{}", activity_delete},
        {"GET", "/v1/Workspaces/{}/Events", event_list},
        {"GET", "/v1/Workspaces/{}/Events/{}", event_fetch},
        {"GET", "/v1/Workspaces/{}/Workers", worker_list},
        {"POST", "/v1/Workspaces/{}/Workers", worker_create},
        {"GET", "/v1/Workspaces/{}/Workers/{}", worker_fetch},
        {"POST", "/v1/Workspaces/{}/Workers/{}", worker_update},
        {"DELETE", "/v1/Workspaces/{}/Workers/{}", worker_delete},
        {"GET", "/v1/Workspaces/{}/Workers/{}/Channels", worker_channel_list},
        {"GET", "/v1/Workspaces/{}/Workers/{}/WorkerChannels", worker_channel_list},
        {"GET", "/v1/Workspaces/{}/Workers/{}/Reservations", reservation_list},
        {"GET", "/v1/Workspaces/{}/Workers/{}/Reservations/{}", reservation_fetch},
        {"POST", "/v1/Workspaces/{}/Workers/{}/Reservations/{}", reservation_update},
        {"GET", "/v1/Workspaces/{}/TaskQueues", queue_list},
        {"POST", "/v1/Workspaces/{}/TaskQueues", queue_create},
        {"GET", "/v1/Workspaces/{}/TaskQueues/{}", queue_fetch},
        {"POST", "/v1/Workspaces/{}/TaskQueues/{}", queue_update},
        {"DELETE", "/v1/Workspaces/{}/TaskQueues/{}", queue_delete},
        {"GET", "/v1/Workspaces/{}/TaskQueues/{}/RealTimeStatistics", queue_realtime},
        {"GET", "/v1/Workspaces/{}/TaskQueues/{}/CumulativeStatistics", queue_cumulative},
        {"GET", "/v1/Workspaces/{}/TaskQueues/{}/Statistics", queue_statistics},
        {"GET", "/v1/Workspaces/{}/Workflows", workflow_list},
        {"POST", "/v1/Workspaces/{}/Workflows", workflow_create},
        {"GET", "/v1/Workspaces/{}/Workflows/{}", workflow_fetch},
        {"POST", "/v1/Workspaces/{}/Workflows/{}", workflow_update},
        {"DELETE", "/v1/Workspaces/{}/Workflows/{}", workflow_delete},
        {"GET", "/v1/Workspaces/{}/Tasks", task_list},
        {"POST", "/v1/Workspaces/{}/Tasks", task_create},
        {"GET", "/v1/Workspaces/{}/Tasks/{}", task_fetch},
        {"POST", "/v1/Workspaces/{}/Tasks/{}", task_update},
        {"DELETE", "/v1/Workspaces/{}/Tasks/{}", task_delete},
        {"GET", "/v1/Workspaces/{}/Tasks/{}/Reservations", reservation_list},
        {"GET", "/v1/Workspaces/{}/Tasks/{}/Reservations/{}", reservation_fetch},
        {"POST", "/v1/Workspaces/{}/Tasks/{}/Reservations/{}", reservation_update},
    };
    return http_server_routes(http, routes, sizeof routes / sizeof routes[0], (void *)deps);
}
