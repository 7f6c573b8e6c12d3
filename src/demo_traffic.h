/* demo_traffic.h - `tassa serve --demo`: customers arrive and demo tellers serve them, slowly,
 * so that a newcomer watching the pages sees the whole life of a task.
 *
 * Every few seconds a customer task arrives (a topic, an identity, a type that routes it to
 * General or Loans, a priority); a pending reservation is accepted after a few seconds (the
 * teller goes in-call); an assigned task is completed after a while (the teller goes
 * post-call, then Available again). Everything goes through the engine's own model calls, so
 * the events, the router, queue-status and the streams see real traffic.
 *
 * A person can serve customers too: at start the simulation adds the teller "Erin" (attribute
 * identity "erin", Offline) unless a worker has that identity, and it leaves alone every
 * worker whose attributes carry an identity (their reservations are accepted or rejected and
 * their tasks completed in the teller console, /teller.html, signed in as that identity).
 *
 * Layer: app.
 */
#ifndef TASSA_DEMO_TRAFFIC_H
#define TASSA_DEMO_TRAFFIC_H

#include "engine/taskrouter/engine.h"

typedef struct demo_traffic demo_traffic_t;

/* Starts the simulation thread on e (borrowed; it must outlive the simulation). tick_ms is
 * the pace (1000 gives a customer about every 4 s). NULL if the thread cannot start. */
demo_traffic_t *demo_traffic_start(tr_engine_t *e, int tick_ms);

/* Stops the thread and frees d. Accepts NULL. */
void demo_traffic_stop(demo_traffic_t *d);

#endif
