/* get_worker_grant.c - CORS, verifyToken, the worker the identity names, a one-hour token.
 *
 * Layer: functions. */
#include "functions/get_worker_grant.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/access_token.h"
#include "base/log.h"
#include "functions/get_sync_grant.h"

#define GRANT_TTL 3600

/* Set up once at registration: the API key's HMAC key, so that a grant does no key set-up. */
typedef struct {
    const get_worker_grant_deps_t *deps;
    hs256_key_t *api_key;    /* NULL when API_SECRET is unset (no grant can be minted) */
    hs256_key_t *caller_key; /* JWT_SECRET; NULL when unset (every caller is then refused) */
} worker_grant_t;

static void worker_grant_free(void *p)
{
    worker_grant_t *g = p;
    hs256_key_free(g->api_key);
    hs256_key_free(g->caller_key);
    free(g);
}

/* Whether worker's attributes (a JSON text) have key equal to want. */
static bool attr_is(const json_t *worker, const char *key, const char *want)
{
    const char *text = json_string_value(json_object_get(worker, "attributes"));
    if (!text)
        return false;
    json_t *attrs = json_loads(text, 0, NULL);
    const char *v = json_string_value(json_object_get(attrs, key)); /* borrowed from attrs */
    bool same = v && strcmp(v, want) == 0;
    json_decref(attrs);
    return same;
}

tassa_err get_worker_grant_find(const json_t *workers, const char *identity, const json_t **worker,
                                errmsg_t *em)
{
    *worker = NULL;
    size_t len = strlen(identity);
    char *uri = malloc(len + 8);
    if (!uri)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    memcpy(uri, "client:", 7);
    memcpy(uri + 7, identity, len + 1);
    /* The rules in order: a worker named by the first rule wins over the second. */
    const char *keys[] = {"identity", "contact_uri"}, *wants[] = {identity, uri};
    tassa_err err = TASSA_OK;
    for (int rule = 0; rule < 2 && !*worker && !err; rule++) {
        size_t i;
        const json_t *w;
        json_array_foreach(workers, i, w)
        {
            if (!attr_is(w, keys[rule], wants[rule]))
                continue;
            if (*worker) {
                *worker = NULL;
                err = err_set(em, TASSA_ECONFLICT, "more than one worker has %s \"%.64s\"",
                              keys[rule], wants[rule]);
                break;
            }
            *worker = w;
        }
    }
    if (!err && !*worker)
        err = err_set(em, TASSA_ENOTFOUND,
                      "no worker has the attribute identity \"%.64s\" (or contact_uri "
                      "\"client:%.64s\")",
                      identity, identity);
    free(uri);
    return err;
}

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const worker_grant_t *g = ctx;
    const config_t *c = g->deps->config;
    backend_t *b = g->deps->backend;
    errmsg_t em = {{0}};
    json_t *workers = NULL;
    char *token_out = NULL;
    time_t now = time(NULL);
    const char *identity =
        get_sync_grant_caller(req, resp, c, g->caller_key, "worker_grant_refused", now);
    if (!identity)
        return;
    if (!c->workspace_sid || !*c->workspace_sid || !g->api_key || !c->api_key || !c->account_sid) {
        get_sync_grant_refuse(resp, TASSA_EUNAVAIL,
                              !c->workspace_sid || !*c->workspace_sid
                                  ? "no TaskRouter workspace is configured (WORKSPACE_SID)"
                                  : "no API key is configured (API_KEY, API_SECRET)");
        return;
    }
    const json_t *worker = NULL; /* borrowed from workers */
    tassa_err err = b->ops->workers_list(b, &workers, &em);
    if (!err)
        err = get_worker_grant_find(workers, identity, &worker, &em);
    const char *worker_sid = worker ? json_string_value(json_object_get(worker, "sid")) : NULL;
    if (!err && !worker_sid)
        err = err_set(&em, TASSA_EUPSTREAM, "the back end answered a worker without a sid");
    if (err) {
        log_info("event=worker_grant_refused reason=\"%s\"", err_text(&em, err));
        get_sync_grant_refuse(resp, err, err_text(&em, err));
        goto out;
    }
    access_token_opts_t o = {.account_sid = c->account_sid,
                             .api_key = c->api_key,
                             .identity = identity,
                             .sync_service_sid = c->sync_service_sid,
                             .ttl = GRANT_TTL,
                             .now = now,
                             .workspace_sid = c->workspace_sid,
                             .worker_sid = worker_sid,
                             .role = "worker"};
    token_out = access_token_worker_keyed(&o, g->api_key);
    if (!token_out) {
        get_sync_grant_refuse(resp, TASSA_EINTERNAL, "could not mint the worker token");
        goto out;
    }
    const char *name = json_string_value(json_object_get(worker, "friendly_name"));
    http_resp_json(resp, 200,
                   json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:i}", "authorized", 1, "workerToken",
                             token_out, "workerSid", worker_sid, "workspaceSid", c->workspace_sid,
                             "friendlyName", name ? name : "", "identity", identity, "ttl",
                             GRANT_TTL));
    log_info("event=worker_grant worker=%s", worker_sid);
out:
    free(token_out);
    json_decref(workers);
}

tassa_err get_worker_grant_register(http_server_t *http, const get_worker_grant_deps_t *deps)
{
    worker_grant_t *g = calloc(1, sizeof *g);
    if (!g)
        return TASSA_ENOMEM;
    g->deps = deps;
    tassa_err err = hs256_key_for(deps->config->api_secret, &g->api_key);
    if (!err)
        err = hs256_key_for(deps->config->jwt_secret, &g->caller_key);
    if (err) {
        worker_grant_free(g);
        return err;
    }
    err = http_server_own(http, g, worker_grant_free);
    if (err)
        return err;
    const http_route_t routes[] = {{"OPTIONS", "/task/get-worker-grant", handle},
                                   {"POST", "/task/get-worker-grant", handle},
                                   {"GET", "/task/get-worker-grant", handle}};
    return http_server_routes(http, routes, 3, g);
}
