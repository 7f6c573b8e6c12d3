/* ops.c - health check, metrics endpoint and census sampler for load balancers and
 * monitoring.
 *
 * Layer: app.
 */
#include "ops.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backend/backend.h"
#include "engine/taskrouter/stats.h"
#include "base/log.h"
#include "base/metrics.h"

struct ops {
    const ops_deps_t *deps;
    int period_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping; /* under lock */
};

static void healthz(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const ops_deps_t *deps = ctx;
    bool store_ok = true;
    if (deps->store) {
        store_lock(deps->store);
        store_ok = store_exec(deps->store, "SELECT 1 FROM meta LIMIT 1", NULL) == TASSA_OK;
        store_unlock(deps->store);
    }
    /* the leases this node holds (the TaskRouter workspace's: timers and events run here) */
    json_t *leases = json_array();
    if (deps->store) {
        const char *names[8];
        char buf[8 * 64];
        size_t n = store_leases(deps->store, names, 8, buf, sizeof buf);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(leases, json_string(names[i]));
    }
    /* draining: a load balancer moves the traffic away while the requests in flight end */
    bool draining = http_server_draining(deps->http);
    const char *status = draining ? "draining" : store_ok ? "ok" : "degraded";
    http_resp_json(resp, store_ok && !draining ? 200 : 503,
                   json_pack("{s:s, s:s, s:b, s:o}", "status", status, "backend",
                             deps->backend->ops->name, "store", store_ok, "leases", leases));
}

/* Is `Authorization: Bearer <token>` present and right? Constant time in the token. */
static bool bearer_ok(const http_req_t *req, const char *token)
{
    const char *h = http_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return false;
    h += 7;
    size_t n = strlen(token);
    return strlen(h) == n && CRYPTO_memcmp(h, token, n) == 0;
}

static void metrics(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const ops_deps_t *deps = ctx;
    const char *token = deps->config->metrics_token;
    if (token ? !bearer_ok(req, token) : !http_req_from_loopback(req)) {
        http_resp_fn_error(resp, token ? TASSA_EUNAUTH : TASSA_EFORBIDDEN,
                           token ? "/metrics needs Authorization: Bearer and TASSA_METRICS_TOKEN"
                                 : "/metrics answers loopback clients only (or set "
                                   "TASSA_METRICS_TOKEN)");
        if (token)
            http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"tassa metrics\"");
        return;
    }
    size_t len = 0;
    char *text = metrics_render(&len);
    if (!text) {
        http_resp_fn_error(resp, TASSA_ENOMEM, NULL);
        return;
    }
    free(resp->body);
    resp->body = text;
    resp->body_len = len;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    http_resp_header(resp, "Cache-Control", "no-store");
}

tassa_err ops_register(const ops_deps_t *deps)
{
    static const http_route_t routes[] = {
        {"GET", "/healthz", healthz},
        {"GET", "/metrics", metrics},
    };
    return http_server_routes(deps->http, routes, sizeof routes / sizeof routes[0], (void *)deps);
}

/* tr_census_fn: one gauge per count. */
static void census_one(void *ctx, const char *kind, const char *label, long long n)
{
    if (!strcmp(kind, "task"))
        metrics_set(M_TASKS, (double)n, "status", label ? label : "", NULL);
    else
        metrics_set(M_WORKERS, (double)n, "activity", label ? label : "", NULL);
}

static void sample(ops_t *o)
{
    /* statuses that emptied keep their series, at 0 */
    metrics_zero(M_TASKS);
    metrics_zero(M_WORKERS);
    if (tr_stats_census(o->deps->tr, census_one, NULL))
        log_warn("event=census_failed");
}

static void *sampler_main(void *arg)
{
    ops_t *o = arg;
    pthread_mutex_lock(&o->lock);
    while (!o->stopping) {
        pthread_mutex_unlock(&o->lock);
        sample(o);
        pthread_mutex_lock(&o->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += o->period_ms / 1000;
        until.tv_nsec += (long)(o->period_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!o->stopping && pthread_cond_timedwait(&o->wake, &o->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

ops_t *ops_start(const ops_deps_t *deps, int period_ms)
{
    ops_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->deps = deps;
    o->period_ms = period_ms > 0 ? period_ms : 1000;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    if (deps->tr && pthread_create(&o->thread, NULL, sampler_main, o) != 0) {
        pthread_mutex_destroy(&o->lock);
        pthread_cond_destroy(&o->wake);
        free(o);
        return NULL;
    }
    return o;
}

void ops_stop(ops_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = true;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->lock);
    if (o->deps->tr)
        pthread_join(o->thread, NULL);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->wake);
    free(o);
}
