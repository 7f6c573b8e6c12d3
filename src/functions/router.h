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

#include "backend/backend.h"
#include "base/config.h"
#include "base/params.h"
#include "helpers/queue_info.h"
#include "http/server.h"

typedef struct router_state router_state_t;

/* What the router uses, all borrowed. main keeps it for the server's and the engine's
 * lifetime; queue_info may be filled in later, before the first event arrives. */
typedef struct {
    const config_t *config;   /* verify_signature, auth_token, public_url */
    backend_t *backend;       /* where the topic documents are written */
    queue_info_t *queue_info; /* NULL: worker.* events are ignored */
    router_state_t *state;    /* the idempotency memory */
} router_deps_t;

/* The idempotency memory (the last few thousand event Sids). NULL on OOM. Thread-safe. */
router_state_t *router_state_new(void);

/* Frees it. Accepts NULL. */
void router_state_free(router_state_t *r);

/* Handles one event (TaskRouter callback parameters, borrowed) and sets *result to the JSON
 * answer (new reference); *result is set exactly when TASSA_OK is returned. TASSA_EMISSING
 * without EventType; TASSA_EINVAL for bad event content, including any parameter name or value
 * that is not valid UTF-8 (refused before anything is looked up or stored); back-end errors
 * as they come. Any thread. */
tassa_err router_dispatch(const router_deps_t *r, const params_t *event, json_t **result,
                          errmsg_t *em);

/* router_dispatch in two steps, for a caller with many events (the embedded engine's
 * dispatcher) that need not wait for each topic write to become durable before it starts the
 * next: router_dispatch_start checks the event (borrowed for the call only), applies it and
 * starts its topic write, in the order of the calls; router_dispatch_finish waits until that
 * write is settled, then finishes as router_dispatch does (the identity's grant, which may
 * block; the answer; the Sid remembered), counts the event (as router_count_event) and frees
 * the job. start returns NULL on OOM (nothing done: use router_dispatch). One thread per job. */
typedef struct router_job router_job_t;
router_job_t *router_dispatch_start(const router_deps_t *r, const params_t *event);
tassa_err router_dispatch_finish(router_job_t *job, json_t **result, errmsg_t *em);
/* The job's EventType ("" when none) and Sid (NULL when none), for its log line; valid until
 * router_dispatch_finish. */
const char *router_job_type(const router_job_t *job);
const char *router_job_sid(const router_job_t *job);

/* Counts one router event in the router_events metric by type (a known TaskRouter event
 * type, else "other") and outcome ("handled", "ignored" or "error", from err and
 * router_dispatch's result, which may be NULL). Any thread. */
void router_count_event(const char *type, tassa_err err, const json_t *result);

/* Adds POST /general/router to http; each request is dispatched and counted. deps must
 * outlive the server. Errors of http_server_route. */
tassa_err router_register(http_server_t *http, const router_deps_t *deps);

#endif
