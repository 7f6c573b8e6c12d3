/* get_queue_position.h - /queue/get-queue-position: where a customer's task stands.
 *
 * A placeholder in the seed; here: GET or POST with the caller's `token` (or Bearer) and
 * `identity` (verified as for the sync grant) and `taskSid` or `topic`. Answers
 *   {"taskSid", "queue", "position" (1-based), "ahead", "queueSize",
 *    "estimatedWaitSeconds" (null when unknown), "status"}
 * in TaskRouter's order: priority descending, then age descending. A task that no longer
 * waits answers its status with position, ahead and estimatedWaitSeconds null. When the task
 * attributes carry an `identity`, only that caller may ask about it (403 otherwise). */
#ifndef TASSA_GET_QUEUE_POSITION_H
#define TASSA_GET_QUEUE_POSITION_H

#include <jansson.h>

#include "app.h"

/* The estimated wait in seconds of the task at 1-based position in a queue whose cumulative
 * statistics (Twilio's TaskQueue CumulativeStatistics over window_minutes) and real-time
 * statistics are given (borrowed); -1 when there is no history to go by. Throughput model:
 * tasks accepted in the window give a rate, and position / rate is the wait, capped by
 * position times the average wait of the accepted tasks (little history). */
long get_queue_position_estimate(long position, const json_t *cumulative, const json_t *realtime,
                                 int window_minutes);

/* Adds OPTIONS, GET and POST /queue/get-queue-position to app->http. */
tassa_err get_queue_position_register(app_t *app);

#endif
