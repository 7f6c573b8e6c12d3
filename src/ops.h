/* ops.h - operational endpoints and bookkeeping: GET /healthz, GET /metrics and the
 * TaskRouter census sampler.
 *
 * Layer: app.
 */
#ifndef TASSA_OPS_H
#define TASSA_OPS_H

#include "backend/backend.h"
#include "base/config.h"
#include "engine/taskrouter/engine.h"
#include "http/server.h"
#include "store/store.h"

typedef struct ops ops_t;

/* What the endpoints and the sampler use, all borrowed; main keeps it while they run. */
typedef struct {
    const config_t *config; /* metrics_token */
    store_t *store;         /* checked by /healthz; NULL with the twilio back end */
    http_server_t *http;    /* where the routes go; its draining state */
    backend_t *backend;     /* its name, for /healthz */
    tr_engine_t *tr;        /* census source; NULL: no sampler thread */
} ops_deps_t;

/* Adds GET /healthz ({"status":"ok"|"draining"|"degraded","backend":..., "store": whether the
 * store answered a probe, "leases": the names of the leases this node holds, such as
 * "taskrouter:WS..." on a shared PostgreSQL store or ["data-file"] on SQLite}; 503 unless ok:
 * draining, or the store unreachable) and
 * GET /metrics (Prometheus text; loopback clients only, or with TASSA_METRICS_TOKEN set,
 * any client that sends `Authorization: Bearer <token>`). */
tassa_err ops_register(const ops_deps_t *deps);

/* Starts the sampler that refreshes the tasks-by-status and workers-by-activity gauges every
 * period_ms from deps->tr (nothing to do without it). NULL on failure. The scrape itself then
 * reads only counters. Free with ops_stop. */
ops_t *ops_start(const ops_deps_t *deps, int period_ms);

/* Stops and frees the sampler. Accepts NULL. Call before the engine is freed. */
void ops_stop(ops_t *o);

#endif
