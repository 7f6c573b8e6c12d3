/* api.c - Sync REST handlers: services fetch, documents create/fetch/update/delete/list. */
#include "engine/sync/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/basic_auth.h"
#include "http/paging.h"

/* Reads the optional Ttl parameter: -1 when absent. */
static tassa_err read_ttl(const params_t *p, long *ttl, errmsg_t *em)
{
    const char *v = params_get(p, "Ttl");
    *ttl = -1;
    if (!v)
        return TASSA_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || errno || *end || n < 0 || n > 31536000)
        return err_set(em, TASSA_EINVAL, "Ttl must be a number of seconds from 0 to 31536000");
    *ttl = n;
    return TASSA_OK;
}

/* Sends the document with its ETag (the revision, for If-Match). */
static void send_doc(app_t *app, http_req_t *req, http_resp_t *resp, int status,
                     const sync_doc_t *d)
{
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)d->revision);
    http_resp_json(resp, status, sync_doc_json(d, app->config->account_sid, req->base_url));
    http_resp_header(resp, "ETag", rev);
}

static void service_fetch(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    if (!basic_auth_require(req, resp, app->config))
        return;
    json_t *j = sync_service_json(app->sync, req->args[0], req->base_url);
    if (!j) {
        char msg[200];
        snprintf(msg, sizeof msg, "The requested resource /Services/%.80s was not found",
                 req->args[0]);
        http_resp_twilio_error(resp, TASSA_ENOTFOUND, msg);
        return;
    }
    http_resp_json(resp, 200, j);
}

static void doc_create(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    errmsg_t em = {{0}};
    sync_doc_t d;
    long ttl;
    if (!basic_auth_require(req, resp, app->config))
        return;
    tassa_err err = read_ttl(req->params, &ttl, &em);
    if (!err)
        err =
            sync_doc_create(app->sync, req->args[0], params_get(req->params, "UniqueName"),
                            params_get(req->params, "Data"), ttl < 0 ? 0 : ttl, "system", &d, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_doc(app, req, resp, 201, &d);
    sync_doc_clear(&d);
}

static void doc_fetch(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    errmsg_t em = {{0}};
    sync_doc_t d;
    if (!basic_auth_require(req, resp, app->config))
        return;
    tassa_err err = sync_doc_fetch(app->sync, req->args[0], req->args[1], &d, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_doc(app, req, resp, 200, &d);
    sync_doc_clear(&d);
}

static void doc_update(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    errmsg_t em = {{0}};
    sync_doc_t d;
    long ttl;
    if (!basic_auth_require(req, resp, app->config))
        return;
    tassa_err err = read_ttl(req->params, &ttl, &em);
    if (!err)
        err =
            sync_doc_update(app->sync, req->args[0], req->args[1], params_get(req->params, "Data"),
                            ttl, http_req_header(req, "If-Match"), &d, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_doc(app, req, resp, 200, &d);
    sync_doc_clear(&d);
}

static void doc_delete(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    errmsg_t em = {{0}};
    if (!basic_auth_require(req, resp, app->config))
        return;
    tassa_err err = sync_doc_delete(app->sync, req->args[0], req->args[1],
                                    http_req_header(req, "If-Match"), &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    resp->status = 204;
    resp->content_type = NULL;
}

static void doc_list(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    errmsg_t em = {{0}};
    paging_t pg;
    sync_doc_t *docs = NULL;
    size_t n = 0;
    bool more = false;
    if (!basic_auth_require(req, resp, app->config))
        return;
    tassa_err err = paging_parse(req->params, 100, &pg, &em);
    if (!err)
        err = sync_doc_list(app->sync, req->args[0], pg.page, pg.page_size, &docs, &n, &more, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++)
        json_array_append_new(items,
                              sync_doc_json(&docs[i], app->config->account_sid, req->base_url));
    sync_doc_list_free(docs, n);
    char url[512];
    snprintf(url, sizeof url, "%s/v1/Services/%s/Documents", req->base_url, req->args[0]);
    http_resp_json(resp, 200, paging_envelope("documents", items, &pg, more, url, NULL));
}

tassa_err sync_api_register(app_t *app)
{
    static const http_route_t routes[] = {
        {"GET", "/v1/Services/{}", service_fetch},
        {"GET", "/v1/Services/{}/Documents", doc_list},
        {"POST", "/v1/Services/{}/Documents", doc_create},
        {"GET", "/v1/Services/{}/Documents/{}", doc_fetch},
        {"POST", "/v1/Services/{}/Documents/{}", doc_update},
        {"DELETE", "/v1/Services/{}/Documents/{}", doc_delete},
    };
    return http_server_routes(app->http, routes, sizeof routes / sizeof routes[0], app);
}
