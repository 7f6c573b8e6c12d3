/* ops.c - health check for load balancers and people. */
#include "ops.h"

#include "backend/backend.h"

static void healthz(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    bool store_ok = true;
    if (app->store) {
        store_lock(app->store);
        store_ok = sqlite3_exec(store_db(app->store), "SELECT 1 FROM meta LIMIT 1", NULL, NULL,
                                NULL) == SQLITE_OK;
        store_unlock(app->store);
    }
    http_resp_json(resp, store_ok ? 200 : 503,
                   json_pack("{s:s, s:s, s:b}", "status", store_ok ? "ok" : "degraded", "backend",
                             app->backend->ops->name, "store", store_ok));
}

tassa_err ops_register(app_t *app)
{
    return http_server_route(app->http, "GET", "/healthz", healthz, app);
}
