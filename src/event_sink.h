/* event_sink.h - where the embedded TaskRouter engine's events go: the seed's router
 * function, in-process (no HTTP, no signature), then the workspace's EventCallbackUrl through
 * the durable outbox when one is set and its EventsFilter lets the event through.
 *
 * Layer: app.
 */
#ifndef TASSA_EVENT_SINK_H
#define TASSA_EVENT_SINK_H

#include "app.h"
#include "base/params.h"

/* A tr_event_fn: ctx is the app_t. Runs on the engine's dispatcher thread; failures are
 * logged (the router's effects are idempotent and the outbox retries on its own). */
void event_sink_deliver(void *ctx, const params_t *event);

#endif
