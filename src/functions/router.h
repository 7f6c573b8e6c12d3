/* router.h - the seed's /general/router: TaskRouter events routed by EventType.
 *
 * task.* and reservation.* go to the reservation handler, worker.* to queueInfo, anything else
 * is answered {"ignored": true, "reason": ...}. Events are idempotent by their Sid: a Sid seen
 * recently is answered as a duplicate, and the reservation handler's rules make an older
 * replay harmless too. Over HTTP the X-Twilio-Signature is checked with AUTH_TOKEN unless
 * TASSA_VERIFY_SIGNATURE=false. The embedded engine delivers its events in-process through
 * router_dispatch, without HTTP.
 *
 * Layer: functions.
 */
#ifndef TASSA_ROUTER_H
#define TASSA_ROUTER_H

#include <jansson.h>

#include "app.h"
#include "base/params.h"

typedef struct router_state router_state_t;

/* The idempotency memory (the last few thousand event Sids). NULL on OOM. Thread-safe. */
router_state_t *router_state_new(void);

/* Frees it. Accepts NULL. */
void router_state_free(router_state_t *r);

/* Handles one event (TaskRouter callback parameters, borrowed) and sets *result to the JSON
 * answer (new reference); *result is set exactly when TASSA_OK is returned. TASSA_EMISSING
 * without EventType; TASSA_EINVAL for bad event content, including any parameter name or value
 * that is not valid UTF-8 (refused before anything is looked up or stored); back-end errors
 * as they come. Any thread. */
tassa_err router_dispatch(app_t *app, const params_t *event, json_t **result, errmsg_t *em);

/* Adds POST /general/router to app->http. */
tassa_err router_register(app_t *app);

#endif
