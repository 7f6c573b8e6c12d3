/* metrics.h - counters, gauges and histograms for /metrics (Prometheus text format 0.0.4).
 *
 * Design. One process-wide registry, by nature (as stderr is for logging): the places that
 * count are spread over every layer, and each counts with one line. A series is a metric of
 * the METRICS list plus a label set; it is found by hash in a fixed open-addressing table, made
 * on first use under a mutex, and never removed, so counting is a lookup and atomic adds.
 * Rendering reads the atomics: a scrape costs no query and takes no lock of the engines.
 * Label values must come from a bounded set (route patterns, status codes, known event
 * types); past METRICS_MAX_SERIES new series are dropped (tassa_metrics_series_dropped_total).
 *
 * Threads: every function may be called from any thread at any time.
 *
 * Layer: base.
 */
#ifndef TASSA_METRICS_H
#define TASSA_METRICS_H

#include <stddef.h>

/* X(id, name, type, buckets, help). type: counter | gauge | histogram. buckets: the upper
 * bounds of a histogram (a METRICS_BUCKETS_* list), NULL otherwise. */
#define METRICS(X)                                                                                 \
    X(M_HTTP_REQUESTS, "tassa_http_requests_total", counter, NULL,                                 \
      "HTTP requests answered, by method, route pattern and status")                               \
    X(M_HTTP_SECONDS, "tassa_http_request_duration_seconds", histogram, METRICS_BUCKETS_SECONDS,   \
      "HTTP request latency from first byte to the answer queued, by route pattern")               \
    X(M_ROUTER_EVENTS, "tassa_router_events_total", counter, NULL,                                 \
      "events posted to /general/router, by type and outcome")                                     \
    X(M_DOCS_WRITTEN, "tassa_sync_documents_written_total", counter, NULL,                         \
      "Sync documents created, updated or deleted")                                                \
    X(M_COMMIT_BATCH, "tassa_store_commit_batch_size", histogram, METRICS_BUCKETS_BATCH,           \
      "writers whose changes one group commit made durable")                                       \
    X(M_COMMIT_SECONDS, "tassa_store_commit_duration_seconds", histogram, METRICS_BUCKETS_SECONDS, \
      "time of one group commit (COMMIT with fsync)")                                              \
    X(M_STREAM_CLIENTS, "tassa_stream_clients", gauge, NULL,                                       \
      "live stream clients connected, by transport")                                               \
    X(M_STREAM_DROPPED, "tassa_stream_clients_dropped_total", counter, NULL,                       \
      "live stream clients dropped by the server, by reason")                                      \
    X(M_OUTBOX_DEPTH, "tassa_outbox_depth", gauge, NULL,                                           \
      "EventCallbackUrl deliveries waiting (embedded back end)")                                   \
    X(M_OUTBOX_FAILURES, "tassa_outbox_delivery_failures_total", counter, NULL,                    \
      "EventCallbackUrl delivery attempts that failed")                                            \
    X(M_TASKS, "tassa_taskrouter_tasks", gauge, NULL,                                              \
      "TaskRouter tasks by assignment status (embedded back end)")                                 \
    X(M_WORKERS, "tassa_taskrouter_workers", gauge, NULL,                                          \
      "TaskRouter workers by activity (embedded back end)")                                        \
    X(M_BACKEND_CALLS, "tassa_backend_rest_calls_total", counter, NULL,                            \
      "REST calls of the twilio back end, by outcome")                                             \
    X(M_BACKEND_RETRIES, "tassa_backend_rest_retries_total", counter, NULL,                        \
      "REST retries of the twilio back end (on 429, 5xx and transport errors)")                    \
    X(M_DRAINING, "tassa_draining", gauge, NULL, "1 while the server drains after SIGTERM")        \
    X(M_SERIES_DROPPED, "tassa_metrics_series_dropped_total", counter, NULL,                       \
      "observations lost because the series table was full")

typedef enum {
#define METRICS_ID(id, name, type, buckets, help) id,
    METRICS(METRICS_ID)
#undef METRICS_ID
        M_COUNT
} metric_id_t;

#define METRICS_MAX_SERIES  2048
#define METRICS_MAX_BUCKETS 16

/* Adds v to a counter or a gauge (v may be negative for a gauge), or observes v in a
 * histogram. The label set follows as name, value pairs ended by NULL, e.g.
 * metrics_add(M_ROUTER_EVENTS, 1, "type", t, "outcome", "handled", NULL). Values are escaped;
 * a label set longer than 240 bytes is cut. */
void metrics_add(metric_id_t id, double v, ...);

/* Sets a gauge to v; labels as for metrics_add. */
void metrics_set(metric_id_t id, double v, ...);

/* Sets every series of gauge id to 0 (before a fresh sample of, e.g., tasks by status). */
void metrics_zero(metric_id_t id);

/* The current value of a counter or gauge series (the count of a histogram); labels as for
 * metrics_add. 0 when it does not exist. For tests and the drain logic. */
double metrics_get(metric_id_t id, ...);

/* Counts one answered HTTP request: method (an unknown one counts as "other"), the matched
 * route pattern (NULL: "unmatched"), status and the latency in microseconds. */
void metrics_http(const char *method, const char *route, int status, long us);

/* Renders every metric in Prometheus text format 0.0.4 into a malloc'd NUL-terminated
 * string (caller frees); *len gets its length. NULL when out of memory. */
char *metrics_render(size_t *len);

#endif
