/* reservation.h - the seed's reservation handler: task and reservation events move the
 * customer's topic document through waiting -> assigned -> completed.
 *
 * Topic document (DESIGN.md section 5), unique name = the task attribute `topic`:
 *   {"status", "taskSid", "worker": {"sid","name"} | null, "event", "eventSid", "updatedAt",
 *    "taskDateCreated" (the event's TaskDateCreated, when it had one)}
 * Access (Sync ACL): when the event writes the topic document and the task's attributes carry
 * a string `identity`, that identity is granted `read` on it, so that the customer's sync
 * token may stream its own topic and no other.
 * Rules that make replays, late and concurrent events harmless:
 *   - within one task, a topic only moves forward (waiting < assigned < completed);
 *   - an event of another task changes the topic only when it starts it again (waiting after
 *     completed: the customer came back) and that task is not older than the topic's
 *     (TaskDateCreated), so a late or replayed event of an old task changes nothing. Event
 *     delivery is at least once (a crash replays the events since the last mark): a replay
 *     changes nothing.
 *
 * Layer: helpers.
 */
#ifndef TASSA_RESERVATION_H
#define TASSA_RESERVATION_H

#include <stdbool.h>

#include "backend/backend.h"
#include "base/params.h"

typedef struct {
    bool ignored;     /* the event does not concern a topic (reason says why) */
    bool changed;     /* the topic document was written */
    char topic[321];  /* the topic, when known */
    char status[16];  /* the status the event maps to, when it maps to one */
    char reason[200]; /* why nothing changed, when nothing did */
    char reader[257]; /* the identity granted read, when one was */
} reservation_result_t;

/* The topic status an event type maps to ("waiting", "assigned", "completed"), or NULL. */
const char *reservation_status_for(const char *event_type);

/* Applies a task.* or reservation.* event (TaskRouter's callback parameters) to its topic
 * document through b, then grants the task's identity read on it (see above). TASSA_EINVAL
 * when TaskAttributes is not a JSON object or the topic is not a usable document name;
 * back-end errors as they come (a failed grant after a written topic included: the caller
 * then reports the event as failed). */
tassa_err reservation_handle(backend_t *b, const params_t *event, reservation_result_t *out,
                             errmsg_t *em);

/* reservation_handle in two steps, so that the topic write does not hold the calling thread
 * until it is durable. This one fills out and starts the write (event is used only before it
 * returns); done(done_ctx, err, changed, em) runs exactly once when the write is settled:
 * before this returns when nothing is written (ignored, bad input) or the back end has no
 * asynchronous write, else on another thread, where it must be short and must not block.
 * out is borrowed until then. The caller then sets out->changed from done's changed and calls
 * reservation_finish with done's err, on a thread that may block. */
void reservation_handle_async(backend_t *b, const params_t *event, reservation_result_t *out,
                              backend_done_fn done, void *done_ctx);

/* The step after the topic write: grants the task's identity read on the topic when it was
 * written (out->changed), clears out->reader when nobody was granted. Returns err, or the
 * grant's error. May block (a permission write). */
tassa_err reservation_finish(backend_t *b, reservation_result_t *out, tassa_err err, errmsg_t *em);

#endif
