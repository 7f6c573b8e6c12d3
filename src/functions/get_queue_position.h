/* get_queue_position.h - /queue/get-queue-position: where a customer's task stands.
 *
 * A placeholder in the seed; here: GET or POST with the caller's `token` (or Bearer) and
 * `identity` (verified as for the sync grant) and `taskSid` or `topic`. Answers
 *   {"taskSid", "queue", "position" (1-based), "ahead", "queueSize",
 *    "estimatedWaitSeconds" (null when unknown), "status"}
 * in TaskRouter's order: priority descending, then age descending. A task that no longer
 * waits answers its assignment status with position, ahead, queueSize and
 * estimatedWaitSeconds null; by topic, it is found through the topic document's taskSid.
 *
 * Access: a caller learns about a task only when the task's `identity` attribute is a string
 * equal to the caller's verified identity. Every other question (someone else's task, a task
 * without an identity, a topic document that names no task, such as queue-status, or an
 * unknown task or topic) gets one and the same 404, so that the answer tells nothing about
 * whether the task exists. Back-end failures other than "not found" pass through (502, 503).
 *
 * Layer: functions.
 */
#ifndef TASSA_GET_QUEUE_POSITION_H
#define TASSA_GET_QUEUE_POSITION_H

#include <jansson.h>

#include "backend/backend.h"
#include "base/config.h"
#include "http/server.h"

/* What the endpoint uses, all borrowed: config (jwt_secret, cors_origins) and the back end. */
typedef struct {
    const config_t *config;
    backend_t *backend;
} get_queue_position_deps_t;

/* The estimated wait in seconds of the task at 1-based position in a queue whose cumulative
 * statistics (Twilio's TaskQueue CumulativeStatistics over window_minutes) and real-time
 * statistics are given (borrowed); -1 when there is no history to go by. Throughput model:
 * tasks accepted in the window give a rate, and position / rate is the wait, capped by
 * position times the average wait of the accepted tasks (little history). */
long get_queue_position_estimate(long position, const json_t *cumulative, const json_t *realtime,
                                 int window_minutes);

/* Adds OPTIONS, GET and POST /queue/get-queue-position to http. deps (and what it points to)
 * must outlive the server. Errors of http_server_routes. */
tassa_err get_queue_position_register(http_server_t *http, const get_queue_position_deps_t *deps);

#endif
