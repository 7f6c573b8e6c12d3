/* ops.h - operational endpoints and bookkeeping: GET /healthz, GET /metrics, the TaskRouter
 * census sampler, and the counting of router events.
 *
 * Layer: app.
 */
#ifndef TASSA_OPS_H
#define TASSA_OPS_H

#include <jansson.h>

#include "app.h"

typedef struct ops ops_t;

/* Adds GET /healthz ({"status":"ok"|"draining"|"degraded","backend":...}; 503 unless ok) and
 * GET /metrics (Prometheus text; loopback clients only, or with TASSA_METRICS_TOKEN set,
 * any client that sends `Authorization: Bearer <token>`). */
tassa_err ops_register(app_t *app);

/* Starts the sampler that refreshes the tasks-by-status and workers-by-activity gauges every
 * period_ms from app->tr (nothing to do without it). NULL on failure. The scrape itself then
 * reads only counters. Free with ops_stop. */
ops_t *ops_start(app_t *app, int period_ms);

/* Stops and frees the sampler. Accepts NULL. Call before the engine is freed. */
void ops_stop(ops_t *o);

/* Counts one router event by type (a known TaskRouter event type, else "other") and outcome
 * ("handled", "ignored" or "error", from err and the router's result). Any thread. */
void ops_count_router_event(const char *type, tassa_err err, const json_t *result);

#endif
