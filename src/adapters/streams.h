/* streams.h - the Server-Sent Events transport of the live-update hub (engine/live/hub.h):
 * live Sync document streams over suspended libmicrohttpd connections.
 *
 * The module keeps the name streams.c/.h (its routes end in /Stream) and holds only the
 * transport: the routes, where the token and the resume point come from, SSE framing and the
 * connection's life. The rings, subscriptions, limits, resume, ordering, access control and
 * token deadlines are the hub's, so that a WebSocket transport can subscribe to the same hub.
 *
 * Routes (GET, authorised by a sync token from /task/get-sync-grant, shown as
 * `Authorization: Bearer <jwt>` or `?token=<jwt>`):
 *
 *   /v1/Services/{S}/Documents/{D}/Stream   one document, D a SID or a unique name
 *   /v1/Services/{S}/Stream                 every change of every document of S
 *
 * Every stream opens with `retry: 1000\n: tassa stream\n\n`. Document stream events (the data
 * line is the document JSON exactly as the REST API returns it, one line):
 *
 *   id: <revision>\nevent: snapshot\ndata: {...}\n\n   first event: the current document;
 *                                                       also sent on a resume that cannot be
 *                                                       replayed (see below)
 *   id: <revision>\nevent: update\ndata: {...}\n\n     every later revision, in order
 *   id: <revision>\nevent: deleted\ndata: {...}\n\n    the document is gone; the stream ends
 *   : ping\n\n                                          heartbeat while idle
 *   event: token-expired\ndata: {"code":20104,...}\n\n   the sync token expired (sent at its
 *                                                       exp); the stream ends. No id: line,
 *                                                       so Last-Event-ID stays the last
 *                                                       revision: get a new token and
 *                                                       reconnect with it to resume
 *   event: access-changed\ndata: {"code":20403,...}\n\n  the identity's read permission was
 *                                                       revoked or the service's ACL switched
 *                                                       on; the stream ends (reconnect: it is
 *                                                       authorised again)
 *   event: reconnect\ndata: {"reason":"draining"}\n\n   the server is stopping; the stream
 *                                                       ends (reconnect elsewhere)
 *
 * Order: every committed revision reaches every subscriber, in revision order, with no gap,
 * however many writers change the document at once; the one exception is a slow client
 * dropped for overflowing its queue (below), which resumes with a replay or a `snapshot`.
 *
 * Resume: `Last-Event-ID: R` (EventSource sends it when it reconnects; `?lastEventId=R` works
 * too, for pages that open a new EventSource). The last HUB_RING_EVENTS revisions of each
 * watched document are kept in memory. If they reach back to R + 1, exactly the revisions
 * after R are replayed as `update` events, all of them (none when R is current): no gap, no
 * duplicate. When R is older than that ring (or unknown to this process, e.g. after a
 * restart), the current document is sent as one `snapshot`:
 * every event carries the whole document, so a snapshot is always a correct new state and the
 * client only loses intermediate revisions it could not have used anyway.
 *
 * Service stream events: `id:` is a per-service sequence number kept in memory. It starts at
 * the process's start time in microseconds, so ids of an earlier process never look current.
 *
 *   id: <seq>\nevent: ready\ndata: {"service_sid","seq"}\n\n     first event of a new stream
 *   id: <seq>\nevent: update|deleted\ndata: {document}\n\n       every change, in commit order,
 *                                                                of the documents the token
 *                                                                may read (ACL, below)
 *   id: <seq>\nevent: reset\ndata: {"service_sid","seq"}\n\n     Last-Event-ID older than the
 *                                                                ring: refetch what you need
 *
 * Slow clients: each client has a bounded queue (HUB_QUEUE_EVENTS events or HUB_QUEUE_BYTES
 * bytes). An update that would overflow it drops that client: its queue is released and its
 * socket shut down, so it never holds back the writer or other clients; it reconnects with
 * Last-Event-ID. Limits: config->max_streams in all and config->max_streams_per_identity per
 * token identity (429 beyond); 401 for a missing, bad or expired token; 403 when the grant's
 * service is another one; 404 for an unknown document; 503 while stopping or without the
 * embedded back end.
 *
 * Access control: with the service's AclEnabled on, a document stream needs a `read`
 * permission for the token's identity (403 without, also when the document does not exist, so
 * that names cannot be probed); the service stream and its resume carry only the documents the
 * identity could read when they changed.
 *
 * Threads: the reader and cleanup callbacks run on libmicrohttpd's pool threads; the hub
 * parks and wakes a connection (MHD_suspend_connection / MHD_resume_connection) under its
 * lock. A stream is a suspended connection while its queue is empty (no thread per
 * connection).
 *
 * Layer: adapters.
 */
#ifndef TASSA_SYNC_STREAMS_H
#define TASSA_SYNC_STREAMS_H

#include <stdint.h>

#include "base/config.h"
#include "engine/live/hub.h"
#include "http/server.h"

/* What the transport is built from (copied by streams_new). config (borrowed, must outlive
 * the transport) gives cors_origins and public_url. hub (borrowed, must outlive the
 * transport) is NULL without the embedded back end: every stream then answers 503. */
typedef struct {
    const config_t *config;
    hub_t *hub;
} streams_deps_t;

typedef struct streams streams_t;

/* Creates the SSE transport. NULL when out of memory. Free with streams_free. */
streams_t *streams_new(const streams_deps_t *deps);

/* Adds the two stream routes to http for s. TASSA_ELIMIT / TASSA_ENOMEM when the route table
 * cannot take them. Call before http_server_start. */
tassa_err streams_register(streams_t *s, http_server_t *http);

/* Ends every stream by stopping the hub (hub_stop: each client gets a last `event:
 * reconnect`, its suspended connection is woken so that its next read ends the response, and
 * new streams get 503). That ends the streams of every transport of the hub: a server drains
 * once. libmicrohttpd forbids stopping a daemon that has suspended connections, so main must
 * call this BEFORE http_server_free. Idempotent; accepts NULL. Any thread. */
void streams_stop(streams_t *s);

/* Frees s. Call after http_server_free (no connection may still use s) and before hub_free.
 * Accepts NULL. */
void streams_free(streams_t *s);

/* Parses a resume point v (the Last-Event-ID header or the ?lastEventId= value, borrowed):
 * the revision or sequence number it names, or -1 when v is NULL, empty, negative, out of
 * range or not a decimal integer. Pure; any thread. Exposed for fuzz/fuzz_last_event_id.c. */
int64_t streams_parse_last_id(const char *v);

#endif
