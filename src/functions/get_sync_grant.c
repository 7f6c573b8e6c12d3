/* get_sync_grant.c - CORS, verifyToken, then a one-hour Twilio access token.
 *
 * Layer: functions. */
#include "functions/get_sync_grant.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/access_token.h"
#include "auth/verify_token.h"
#include "http/cors.h"
#include "base/buf.h"
#include "base/log.h"

#define GRANT_TTL 3600

const char *get_sync_grant_caller_token(const http_req_t *req)
{
    const char *t = params_get_nonempty(req->params, "token");
    if (t)
        return t;
    const char *auth = http_req_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7])
        return auth + 7;
    return NULL;
}

void get_sync_grant_refuse(http_resp_t *resp, tassa_err err, const char *why)
{
    http_resp_json(resp, tassa_err_status(err),
                   json_pack("{s:b, s:s, s:i}", "authorized", 0, "error", why, "status",
                             tassa_err_status(err)));
}

const char *get_sync_grant_caller(http_req_t *req, http_resp_t *resp, const config_t *config,
                                  const hs256_key_t *key, const char *event, time_t now)
{
    if (cors_apply(req, resp, config->cors_origins))
        return NULL;
    const char *token = get_sync_grant_caller_token(req);
    const char *identity = params_get_nonempty(req->params, "identity");
    if (!token || !identity) {
        get_sync_grant_refuse(resp, TASSA_EMISSING,
                              !token ? "token is required" : "identity is required");
        return NULL;
    }
    errmsg_t em = {{0}};
    tassa_err err = verify_token_keyed(token, identity, key, now, &em);
    if (err) {
        log_info("event=%s reason=\"%s\"", event, err_text(&em, err));
        get_sync_grant_refuse(resp, err == TASSA_EMISSING ? TASSA_EMISSING : TASSA_EUNAUTH,
                              err_text(&em, err));
        return NULL;
    }
    return identity;
}

/* Set up once at registration: the two HMAC keys, so that a grant does no key set-up. */
typedef struct {
    const config_t *config;
    hs256_key_t *caller_key; /* JWT_SECRET; NULL when unset (every caller is then refused) */
    hs256_key_t *api_key;    /* the API key secret; NULL when unset (no grant can be minted) */
} grant_state_t;

static void grant_state_free(void *p)
{
    grant_state_t *g = p;
    hs256_key_free(g->caller_key);
    hs256_key_free(g->api_key);
    free(g);
}

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const grant_state_t *g = ctx;
    const config_t *c = g->config;
    time_t now = time(NULL);
    const char *identity = get_sync_grant_caller(req, resp, c, g->caller_key, "grant_refused", now);
    if (!identity)
        return;
    access_token_opts_t o = {.account_sid = c->account_sid,
                             .api_key = c->api_key,
                             .api_secret = c->api_secret,
                             .identity = identity,
                             .sync_service_sid = c->sync_service_sid,
                             .ttl = GRANT_TTL,
                             .now = now};
    char *sync_token = access_token_sync_keyed(&o, g->api_key);
    if (!sync_token) {
        get_sync_grant_refuse(resp, TASSA_EINTERNAL, "could not mint the sync token");
        return;
    }
    /* {"authorized":true,"syncToken":"..."}: the token is base64url and dots, no escaping. */
    buf_t body = BUF_INIT;
    buf_adds(&body, "{\"authorized\":true,\"syncToken\":\"");
    buf_adds(&body, sync_token);
    buf_adds(&body, "\"}");
    free(sync_token);
    if (body.failed) {
        buf_free(&body);
        get_sync_grant_refuse(resp, TASSA_ENOMEM, "out of memory");
        return;
    }
    http_resp_json_text(resp, 200, buf_take(&body)); /* handed over as it is: no copy */
}

tassa_err get_sync_grant_register(http_server_t *http, const config_t *config)
{
    grant_state_t *g = calloc(1, sizeof *g);
    if (!g)
        return TASSA_ENOMEM;
    g->config = config;
    tassa_err err = hs256_key_for(config->jwt_secret, &g->caller_key);
    if (!err)
        err = hs256_key_for(config->api_secret, &g->api_key);
    if (err) {
        grant_state_free(g);
        return err;
    }
    err = http_server_own(http, g, grant_state_free);
    if (err)
        return err;
    const http_route_t routes[] = {{"OPTIONS", "/task/get-sync-grant", handle},
                                   {"POST", "/task/get-sync-grant", handle},
                                   {"GET", "/task/get-sync-grant", handle}};
    return http_server_routes(http, routes, 3, g);
}
