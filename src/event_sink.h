/* event_sink.h - where the embedded TaskRouter engine's events go: the seed's router
 * function, in-process (no HTTP, no signature), then the workers' event-bridge sockets
 * (adapters/eventbridge.h), then the workspace's EventCallbackUrl through the durable outbox
 * when one is set and its EventsFilter lets the event through.
 *
 * Layer: app.
 */
#ifndef TASSA_EVENT_SINK_H
#define TASSA_EVENT_SINK_H

#include "adapters/callback_outbox.h"
#include "adapters/eventbridge.h"
#include "base/params.h"
#include "engine/taskrouter/engine.h"
#include "functions/router.h"

/* Where the events go, all borrowed; main keeps it while the engine runs. */
typedef struct {
    const router_deps_t *router; /* the seed's router function */
    outbox_t *outbox;            /* NULL: no EventCallbackUrl deliveries */
    tr_engine_t *tr;             /* the workspace's EventCallbackUrl and EventsFilter */
    eventbridge_t *bridge;       /* NULL: no twilio-taskrouter Worker sockets */
} event_sink_t;

/* A tr_event_fn: ctx is an event_sink_t. Runs on the engine's dispatcher thread; failures are
 * logged (the router's effects are idempotent and the outbox retries on its own). */
void event_sink_deliver(void *ctx, const params_t *event);

#endif
