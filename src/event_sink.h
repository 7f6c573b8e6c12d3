/* event_sink.h - where the embedded TaskRouter engine's events go: the seed's router
 * function, in-process (no HTTP, no signature), then the workers' event-bridge sockets
 * (adapters/eventbridge.h), then the workspace's EventCallbackUrl through the durable outbox
 * when one is set and its EventsFilter lets the event through.
 *
 * Layer: app.
 */
#ifndef TASSA_EVENT_SINK_H
#define TASSA_EVENT_SINK_H

#include <stdbool.h>

#include "adapters/callback_outbox.h"
#include "adapters/eventbridge.h"
#include "base/params.h"
#include "engine/taskrouter/engine.h"
#include "functions/router.h"

/* The most topic writes under way at once (the engine's batch is 64 events). */
#define EVENT_SINK_JOBS 64

/* Where the events go, all borrowed; main keeps it while the engine runs. */
typedef struct {
    const router_deps_t *router; /* the seed's router function */
    outbox_t *outbox;            /* NULL: no EventCallbackUrl deliveries */
    tr_engine_t *tr;             /* the workspace's EventCallbackUrl and EventsFilter */
    eventbridge_t *bridge;       /* NULL: no twilio-taskrouter Worker sockets */
    /* the router's topic writes started and not finished yet (dispatcher thread only) */
    router_job_t *jobs[EVENT_SINK_JOBS];
    size_t n_jobs;
    /* the workspace's EventCallbackUrl and EventsFilter, read once a batch (dispatcher
     * thread only; freed by event_sink_flush) */
    char *callback_url, *callback_filter;
    bool callback_known;
} event_sink_t;

/* A tr_event_fn: ctx is an event_sink_t. Runs on the engine's dispatcher thread; failures are
 * logged (the router's effects are idempotent and the outbox retries on its own). The router's
 * topic write is only started here (router_dispatch_start), so that a batch's writes share
 * group commits; event_sink_flush finishes them. */
void event_sink_deliver(void *ctx, const params_t *event);

/* A tr_flush_fn: waits until every topic write event_sink_deliver started is durable and
 * finishes each, in order, and forgets the callback settings read for the batch. Also done by
 * event_sink_deliver when EVENT_SINK_JOBS are under way. The engine calls it after each batch
 * of sink calls, so nothing is left over once the engine is stopped. */
void event_sink_flush(void *ctx);

#endif
