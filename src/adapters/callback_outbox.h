/* callback_outbox.h - TaskRouter events POSTed to the workspace's EventCallbackUrl from a
 * durable outbox, signed with X-Twilio-Signature, retried with back-off.
 *
 * An event is written to the outbox table before outbox_enqueue returns, so a crash loses
 * none; one delivery thread POSTs due entries (form-encoded, as Twilio does) and deletes each
 * after a 2xx answer. A failed delivery is retried after 1 s, 2 s, 4 s ... (capped at 10 min,
 * with jitter) up to OUTBOX_MAX_ATTEMPTS, then kept as failed and logged. Delivery is at least
 * once; receivers deduplicate by the event's Sid.
 *
 * Layer: adapters.
 */
#ifndef TASSA_CALLBACK_OUTBOX_H
#define TASSA_CALLBACK_OUTBOX_H

#include <stdbool.h>

#include "base/err.h"
#include "base/params.h"
#include "store/store.h"

#define OUTBOX_MAX_ATTEMPTS 12

typedef struct outbox outbox_t;

/* Opens the outbox on store s (borrowed) and signs with auth_token (copied). NULL with em on
 * failure. The thread starts with outbox_start. */
outbox_t *outbox_new(store_t *s, const char *auth_token, int timeout_ms, errmsg_t *em);

/* Starts the delivery thread. TASSA_EINTERNAL if it cannot. */
tassa_err outbox_start(outbox_t *o);

/* Stores event (borrowed) for delivery to url. TASSA_ESTORE if it could not be stored.
 * Any thread. */
tassa_err outbox_enqueue(outbox_t *o, const char *url, const params_t *event);

/* True when event_type passes filter: a NULL or empty filter passes everything, otherwise
 * the comma-separated list (spaces allowed) must name it. */
bool outbox_filter_match(const char *filter, const char *event_type);

/* The number of entries waiting for delivery (for tests and /healthz). Takes the lock. */
long outbox_pending(outbox_t *o);

/* POSTs params (borrowed) once to url, as a delivery does: form-encoded in their order,
 * signed with auth_token (X-Twilio-Signature over url and params, as Twilio signs), without
 * retry, waiting at most timeout_ms (0: no limit). *status gets the answer's HTTP status (0
 * when none came). When reply is non-NULL, *reply gets the answer's body, NUL-terminated,
 * which the caller frees (NULL on failure). Returns TASSA_OK when an answer came, whatever its
 * status; TASSA_EUPSTREAM with em ("URL: reason") when none came; TASSA_ENOMEM. Any thread;
 * libcurl's global set-up must have run (main does it). */
tassa_err outbox_post_signed(const char *url, const char *auth_token, const params_t *params,
                             int timeout_ms, long *status, char **reply, errmsg_t *em);

/* Stops the thread (an in-flight POST finishes first) and frees o. Accepts NULL. */
void outbox_free(outbox_t *o);

#endif
