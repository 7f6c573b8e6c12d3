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

static void refuse(http_resp_t *resp, tassa_err err, const char *why)
{
    http_resp_json(resp, tassa_err_status(err),
                   json_pack("{s:b, s:s, s:i}", "authorized", 0, "error", why, "status",
                             tassa_err_status(err)));
}

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const config_t *c = ctx;
    errmsg_t em = {{0}};
    if (cors_apply(req, resp, c->cors_origins))
        return;
    const char *token = get_sync_grant_caller_token(req);
    const char *identity = params_get_nonempty(req->params, "identity");
    if (!token || !identity) {
        refuse(resp, TASSA_EMISSING, !token ? "token is required" : "identity is required");
        return;
    }
    time_t now = time(NULL);
    tassa_err err = verify_token(token, identity, c->jwt_secret, now, &em);
    if (err) {
        log_info("event=grant_refused reason=\"%s\"", err_text(&em, err));
        refuse(resp, err == TASSA_EMISSING ? TASSA_EMISSING : TASSA_EUNAUTH, err_text(&em, err));
        return;
    }
    access_token_opts_t o = {.account_sid = c->account_sid,
                             .api_key = c->api_key,
                             .api_secret = c->api_secret,
                             .identity = identity,
                             .sync_service_sid = c->sync_service_sid,
                             .ttl = GRANT_TTL,
                             .now = now};
    char *sync_token = access_token_sync(&o);
    if (!sync_token) {
        refuse(resp, TASSA_EINTERNAL, "could not mint the sync token");
        return;
    }
    http_resp_json(resp, 200, json_pack("{s:b, s:s}", "authorized", 1, "syncToken", sync_token));
    free(sync_token);
}

tassa_err get_sync_grant_register(http_server_t *http, const config_t *config)
{
    const http_route_t routes[] = {{"OPTIONS", "/task/get-sync-grant", handle},
                                   {"POST", "/task/get-sync-grant", handle},
                                   {"GET", "/task/get-sync-grant", handle}};
    return http_server_routes(http, routes, 3, (void *)config);
}
