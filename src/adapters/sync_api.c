/* sync_api.c - Sync REST handlers: services fetch/update, documents
 * create/fetch/update/delete/list, document permissions fetch/update/delete/list. All take account
 * credentials (Basic auth), which access control never limits, as at Twilio.
 *
 * Layer: adapters.
 */
#include "adapters/sync_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/rest_auth.h"
#include "http/paging.h"

/* Reads the optional Ttl parameter: -1 when absent. */
static tassa_err read_ttl(const params_t *p, long *ttl, errmsg_t *em)
{
    const char *v = params_get(p, "Ttl");
    *ttl = -1;
    if (!v)
        return TASSA_OK;
    long n;
    if (!params_parse_long(v, 0, 31536000, &n))
        return err_set(em, TASSA_EINVAL, "Ttl must be a number of seconds from 0 to 31536000");
    *ttl = n;
    return TASSA_OK;
}

/* Sends the document with its ETag (the revision, for If-Match). */
static void send_doc(const sync_api_deps_t *api, http_req_t *req, http_resp_t *resp, int status,
                     const sync_doc_t *d)
{
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)d->revision);
    http_resp_json_text(resp, status, sync_doc_text(d, api->config->account_sid, req->base_url));
    http_resp_header(resp, "ETag", rev);
}

static void service_fetch(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    if (!rest_auth_require(req, resp, api->config))
        return;
    json_t *j = sync_service_json(api->sync, req->args[0], req->base_url);
    if (!j) {
        char msg[200];
        snprintf(msg, sizeof msg, "The requested resource /Services/%.80s was not found",
                 req->args[0]);
        http_resp_twilio_error(resp, TASSA_ENOTFOUND, msg);
        return;
    }
    http_resp_json(resp, 200, j);
}

/* A document write answered once its commit is durable, without holding a handler thread
 * meanwhile (http_resp_defer): the engine's settle thread keeps the result and declares the
 * answer ready; the HTTP layer then renders it on a handler thread. */
typedef struct {
    const sync_api_deps_t *api;
    http_deferred_t *deferred;
    int status; /* on success */
    tassa_err err;
    errmsg_t em;
    sync_doc_t doc;
    char base_url[320];
} doc_answer_t;

static void doc_answer_written(void *ctx, tassa_err err, const sync_doc_t *doc, bool changed,
                               const errmsg_t *em)
{
    doc_answer_t *a = ctx;
    (void)changed;
    a->err = err;
    a->em = *em;
    if (!err && doc && sync_doc_copy(&a->doc, doc))
        a->err = err_set(&a->em, TASSA_ENOMEM, "out of memory"); /* written, not shown */
    http_deferred_ready(a->deferred);
}

static void doc_answer_send(void *ctx, http_resp_t *resp)
{
    doc_answer_t *a = ctx;
    if (a->err) {
        http_resp_twilio_error(resp, a->err, err_text(&a->em, a->err));
    } else {
        char rev[24];
        snprintf(rev, sizeof rev, "%lld", (long long)a->doc.revision);
        http_resp_json_text(resp, a->status,
                            sync_doc_text(&a->doc, a->api->config->account_sid, a->base_url));
        http_resp_header(resp, "ETag", rev);
    }
    sync_doc_clear(&a->doc);
    free(a);
}

/* A deferred answer for req, or NULL when out of memory (answer the blocking way then). */
static doc_answer_t *doc_answer_new(const sync_api_deps_t *api, http_req_t *req, http_resp_t *resp,
                                    int status)
{
    doc_answer_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->api = api;
    a->status = status;
    snprintf(a->base_url, sizeof a->base_url, "%s", req->base_url);
    if (!(a->deferred = http_resp_defer(resp, doc_answer_send, a))) {
        free(a);
        return NULL;
    }
    return a;
}

static void doc_create(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    sync_doc_t d;
    long ttl;
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = read_ttl(req->params, &ttl, &em);
    doc_answer_t *a = err ? NULL : doc_answer_new(api, req, resp, 201);
    if (a) {
        sync_doc_create_async(api->sync, req->args[0], params_get(req->params, "UniqueName"),
                              params_get(req->params, "Data"), ttl < 0 ? 0 : ttl, "system",
                              doc_answer_written, a);
        return;
    }
    if (!err)
        err =
            sync_doc_create(api->sync, req->args[0], params_get(req->params, "UniqueName"),
                            params_get(req->params, "Data"), ttl < 0 ? 0 : ttl, "system", &d, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_doc(api, req, resp, 201, &d);
    sync_doc_clear(&d);
}

static void doc_fetch(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    sync_doc_t d;
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = sync_doc_fetch(api->sync, req->args[0], req->args[1], &d, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_doc(api, req, resp, 200, &d);
    sync_doc_clear(&d);
}

static void doc_update(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    sync_doc_t d;
    long ttl;
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = read_ttl(req->params, &ttl, &em);
    doc_answer_t *a = err ? NULL : doc_answer_new(api, req, resp, 200);
    if (a) {
        sync_doc_update_async(api->sync, req->args[0], req->args[1],
                              params_get(req->params, "Data"), ttl,
                              http_req_header(req, "If-Match"), doc_answer_written, a);
        return;
    }
    if (!err)
        err =
            sync_doc_update(api->sync, req->args[0], req->args[1], params_get(req->params, "Data"),
                            ttl, http_req_header(req, "If-Match"), &d, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_doc(api, req, resp, 200, &d);
    sync_doc_clear(&d);
}

/* The answer of a DELETE: 204 with no body, or Twilio's error for err. */
static void answer_deleted(http_resp_t *resp, tassa_err err, errmsg_t *em)
{
    if (err) {
        http_resp_twilio_error(resp, err, err_text(em, err));
        return;
    }
    resp->status = 204;
    resp->content_type = NULL;
}

static void doc_delete(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = sync_doc_delete(api->sync, req->args[0], req->args[1],
                                    http_req_header(req, "If-Match"), &em);
    answer_deleted(resp, err, &em);
}

static void doc_list(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    paging_t pg;
    sync_doc_t *docs = NULL;
    size_t n = 0;
    bool more = false;
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = paging_parse(req->params, 100, &pg, &em);
    if (!err)
        err = sync_doc_list(api->sync, req->args[0], pg.page, pg.page_size, &docs, &n, &more, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++)
        json_array_append_new(items,
                              sync_doc_json(&docs[i], api->config->account_sid, req->base_url));
    sync_doc_list_free(docs, n);
    char url[512];
    snprintf(url, sizeof url, "%s/v1/Services/%s/Documents", req->base_url, req->args[0]);
    http_resp_json(resp, 200, paging_envelope("documents", items, &pg, more, url, NULL));
}

/* Reads a required (or, when required is false, optional) boolean form parameter: "true" or
 * "false", as Twilio's helper libraries send them. *present tells whether it was given. */
static tassa_err read_bool(const params_t *p, const char *name, bool required, bool *out,
                           bool *present, errmsg_t *em)
{
    const char *v = params_get(p, name);
    *present = v != NULL;
    if (!v)
        return required ? err_set(em, TASSA_EMISSING, "%s is required", name) : TASSA_OK;
    if (!strcmp(v, "true") || !strcmp(v, "True"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "False"))
        *out = false;
    else
        return err_set(em, TASSA_EINVAL, "%s must be true or false", name);
    return TASSA_OK;
}

/* POST /v1/Services/{S}: AclEnabled and FriendlyName (other fields are accepted and kept at
 * their fixed values). Checks every parameter before it changes anything. */
static void service_update(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    bool acl = false, has_acl = false;
    if (!rest_auth_require(req, resp, api->config))
        return;
    const char *name = params_get(req->params, "FriendlyName");
    tassa_err err = read_bool(req->params, "AclEnabled", false, &acl, &has_acl, &em);
    if (!err && name && (!*name || strlen(name) > 64))
        err = err_set(&em, TASSA_EINVAL, "FriendlyName must be 1 to 64 characters");
    if (!err && name)
        err = sync_service_set_name(api->sync, req->args[0], name, &em);
    if (!err && has_acl)
        err = sync_service_set_acl(api->sync, req->args[0], acl, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    service_fetch(ctx, req, resp);
}

static void send_perm(const sync_api_deps_t *api, http_req_t *req, http_resp_t *resp,
                      const sync_perm_t *p)
{
    json_t *j = sync_perm_json(p, api->config->account_sid, req->base_url);
    if (!j)
        http_resp_twilio_error(resp, TASSA_ENOMEM, NULL);
    else
        http_resp_json(resp, 200, j);
}

static void perm_fetch(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    sync_perm_t p;
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = sync_perm_fetch(api->sync, req->args[0], req->args[1], req->args[2], &p, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_perm(api, req, resp, &p);
    sync_perm_clear(&p);
}

/* POST .../Permissions/{Identity}: Read, Write and Manage are all required (Twilio's
 * UpdateDocumentPermission); creates the permission or replaces it. */
static void perm_update(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    sync_perm_t p;
    bool r = false, w = false, m = false, given;
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = read_bool(req->params, "Read", true, &r, &given, &em);
    if (!err)
        err = read_bool(req->params, "Write", true, &w, &given, &em);
    if (!err)
        err = read_bool(req->params, "Manage", true, &m, &given, &em);
    if (!err)
        err = sync_perm_set(api->sync, req->args[0], req->args[1], req->args[2], r, w, m, &p, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    send_perm(api, req, resp, &p);
    sync_perm_clear(&p);
}

static void perm_delete(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = sync_perm_delete(api->sync, req->args[0], req->args[1], req->args[2], &em);
    answer_deleted(resp, err, &em);
}

static void perm_list(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const sync_api_deps_t *api = ctx;
    errmsg_t em = {{0}};
    paging_t pg;
    sync_perm_t *perms = NULL;
    size_t n = 0;
    bool more = false;
    if (!rest_auth_require(req, resp, api->config))
        return;
    tassa_err err = paging_parse(req->params, 100, &pg, &em);
    if (!err)
        err = sync_perm_list(api->sync, req->args[0], req->args[1], pg.page, pg.page_size, &perms,
                             &n, &more, &em);
    if (err) {
        http_resp_twilio_error(resp, err, err_text(&em, err));
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++)
        json_array_append_new(items,
                              sync_perm_json(&perms[i], api->config->account_sid, req->base_url));
    sync_perm_list_free(perms, n);
    char url[1024];
    snprintf(url, sizeof url, "%s/v1/Services/%s/Documents/%s/Permissions", req->base_url,
             req->args[0], req->args[1]);
    http_resp_json(resp, 200, paging_envelope("permissions", items, &pg, more, url, NULL));
}

tassa_err sync_api_register(http_server_t *http, const sync_api_deps_t *deps)
{
    static const http_route_t routes[] = {
        {"GET", "/v1/Services/{}", service_fetch},
        {"POST", "/v1/Services/{}", service_update},
        {"GET", "/v1/Services/{}/Documents/{}/Permissions", perm_list},
        {"GET", "/v1/Services/{}/Documents/{}/Permissions/{}", perm_fetch},
        {"POST", "/v1/Services/{}/Documents/{}/Permissions/{}", perm_update},
        {"DELETE", "/v1/Services/{}/Documents/{}/Permissions/{}", perm_delete},
        {"GET", "/v1/Services/{}/Documents", doc_list},
        {"POST", "/v1/Services/{}/Documents", doc_create},
        {"GET", "/v1/Services/{}/Documents/{}", doc_fetch},
        {"POST", "/v1/Services/{}/Documents/{}", doc_update},
        {"DELETE", "/v1/Services/{}/Documents/{}", doc_delete},
    };
    return http_server_routes(http, routes, sizeof routes / sizeof routes[0], (void *)deps);
}
