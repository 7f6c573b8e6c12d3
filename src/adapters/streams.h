/* streams.h - live Sync document streams: Server-Sent Events fanned out from the change
 * listener of the embedded Sync engine (DESIGN.md sections 6 and 9).
 *
 * Routes (GET, authorised by a sync token from /task/get-sync-grant, shown as
 * `Authorization: Bearer <jwt>` or `?token=<jwt>`):
 *
 *   /v1/Services/{S}/Documents/{D}/Stream   one document, D a SID or a unique name
 *   /v1/Services/{S}/Stream                 every change of every document of S
 *
 * Document stream events (the data line is the document JSON exactly as the REST API returns
 * it, one line):
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
 *
 * Order: every committed revision reaches every subscriber, in revision order, with no gap,
 * however many writers change the document at once; the one exception is a slow client
 * dropped for overflowing its queue (below), which resumes with a replay or a `snapshot`.
 *
 * Resume: `Last-Event-ID: R` (EventSource sends it when it reconnects; `?lastEventId=R` works
 * too, for pages that open a new EventSource). The last STREAMS_RING_EVENTS revisions of each
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
 * Slow clients: each client has a bounded queue (STREAMS_QUEUE_EVENTS events or
 * STREAMS_QUEUE_BYTES bytes). An update that would overflow it drops that client: its queue is
 * released and its socket shut down, so it never holds back the writer or other clients; it
 * reconnects with Last-Event-ID. Limits: config->max_streams in all and
 * config->max_streams_per_identity per token identity (429 beyond); 401 for a missing, bad or
 * expired token; 403 when the grant's service is another one; 404 for an unknown document.
 *
 * Access control: with the service's AclEnabled on, a document stream needs a `read`
 * permission for the token's identity (403 without, also when the document does not exist, so
 * that names cannot be probed); the service stream and its resume carry only the documents the
 * identity could read when they changed.
 *
 * Threads: the change listener runs on the writer's thread, the reader and cleanup callbacks
 * on libmicrohttpd's pool threads, the heartbeat on the module's own timer thread. All state
 * sits behind one mutex (streams_t.lock); no socket I/O happens while it is held. A stream is a
 * suspended connection while its queue is empty (no thread per connection).
 *
 * Layer: adapters.
 */
#ifndef TASSA_SYNC_STREAMS_H
#define TASSA_SYNC_STREAMS_H

#include <stdint.h>

#include "app.h"

#define STREAMS_HEARTBEAT_MS 15000   /* default heartbeat interval */
#define STREAMS_QUEUE_EVENTS 64      /* per-client queue bound, in events ... */
#define STREAMS_QUEUE_BYTES  262144  /* ... and in bytes */
#define STREAMS_RING_EVENTS  128     /* revisions kept per document for resume */
#define STREAMS_RING_BYTES   1048576 /* and at most this many bytes of them */
#define STREAMS_IDLE_MS      120000  /* a document nobody watches is forgotten after this */

typedef struct streams streams_t;

/* Creates the stream hub for app (app->sync must be set; its limits come from app->config),
 * installs it as the Sync change listener and starts the heartbeat thread (with every signal
 * blocked, so that main's sigwait keeps them). heartbeat_ms <= 0 means STREAMS_HEARTBEAT_MS.
 * Returns NULL on failure (out of memory, no thread). Call from main before serving; free
 * with streams_free. */
streams_t *streams_new(app_t *app, int heartbeat_ms);

/* Adds the two stream routes to app->http for app->streams. TASSA_ELIMIT / TASSA_ENOMEM when
 * the route table cannot take them. Call before http_server_start. */
tassa_err streams_register(app_t *app);

/* Ends every stream: queues a last `event: reconnect` (data {"reason":"draining"}) for each
 * client, wakes all suspended connections so that their next read ends the
 * response, refuses new streams (503) and stops the heartbeat thread. libmicrohttpd forbids
 * stopping a daemon that has suspended connections, so main must call this BEFORE
 * http_server_free. Idempotent; accepts NULL. Any thread. */
void streams_stop(streams_t *s);

/* Removes the listener and frees s. Call after http_server_free (no connection may still use
 * s) and after the threads that write Sync documents have stopped. Accepts NULL. */
void streams_free(streams_t *s);

/* The number of open streams (for metrics and tests). Any thread. */
int streams_count(streams_t *s);

/* Parses a resume point v (the Last-Event-ID header or the ?lastEventId= value, borrowed):
 * the revision or sequence number it names, or -1 when v is NULL, empty, negative, out of
 * range or not a decimal integer. Pure; any thread. Exposed for fuzz/fuzz_last_event_id.c. */
int64_t streams_parse_last_id(const char *v);

#endif
