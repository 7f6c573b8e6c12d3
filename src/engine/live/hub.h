/* hub.h - the live-update hub: Sync document changes fanned out to subscribers, whatever
 * carries them (Server-Sent Events in adapters/streams.c today, WebSocket next).
 *
 * The hub holds the rings, the subscriptions and the limits; a transport holds only the
 * connection. A subscriber is an abstract sink (hub_sink_ops_t): the hub tells it when there
 * is something to read and when to give up, and the transport pulls events with hub_sub_next
 * and frames them its own way. No HTTP type appears here.
 *
 * Streams. A document stream follows one document, a service stream every document of one
 * service. Each event has a kind (hub_event_kind_t), an id (-1 when none) and JSON data:
 *
 *   HUB_EV_SNAPSHOT  id = revision  the document now: the first event of a document stream,
 *                                   and of a resume that cannot be replayed (below)
 *   HUB_EV_UPDATE    id = revision  every later revision, in order; on a service stream
 *                    id = sequence  every change of a document the identity may read
 *   HUB_EV_DELETED   id = rev / seq the document is gone; a document stream ends with it
 *   HUB_EV_READY     id = sequence  the first event of a new service stream, data
 *                                   {"service_sid","seq"}
 *   HUB_EV_RESET     id = sequence  a service resume older than the ring: refetch
 *   HUB_EV_PING      no id, no data a heartbeat while the stream is idle
 *   HUB_EV_TOKEN_EXPIRED, HUB_EV_ACCESS_CHANGED, HUB_EV_RECONNECT
 *                    no id          the stream ends (token exp passed; a read permission was
 *                                   revoked or the service's ACL switched on; the hub is
 *                                   stopping). data is {"code","status","message"} or
 *                                   {"reason":"draining"}. No id, so a client's resume point
 *                                   stays the last revision it got.
 *
 * Order: every committed revision reaches every document subscriber in revision order with
 * no gap, however many writers change the document at once; the one exception is a slow
 * subscriber dropped for overflowing its queue (HUB_QUEUE_EVENTS live events or
 * HUB_QUEUE_BYTES bytes), which resumes with a replay or a snapshot.
 *
 * Resume (last_id >= 0): the last HUB_RING_EVENTS events of each watched document and of each
 * service are kept in memory. When they reach back to last_id + 1, exactly the events after
 * last_id are replayed (none when last_id is current); otherwise a document stream gets one
 * SNAPSHOT of the current document and a service stream one RESET. Every event carries the
 * whole document, so a snapshot is always a correct new state. Service sequence numbers start
 * at the process's start time in microseconds, so ids of an earlier process never look
 * current. On a shared store (several nodes, sync_engine_position >= 0) they are the Sync
 * change log's seq instead, the same on every node, and a document resume that this node's
 * ring cannot serve is replayed from the log when it still holds the revisions (documents.h,
 * sync_watch_fn): a stream resumes on any node.
 *
 * Access: with the service's ACL on, a document stream opens only for an identity with `read`
 * (TASSA_EFORBIDDEN otherwise, also for a document that does not exist); a service stream and
 * its replay carry only the documents the identity could read when they changed; a revoked
 * permission or ACL switched on ends the affected document streams (HUB_EV_ACCESS_CHANGED).
 *
 * Threads: one mutex (the hub lock) guards all of it. The Sync listener runs on a writer's
 * thread (on a shared store, on the Sync engine's feeder thread), hub_sub_next and hub_sub_close on
 * the transport's threads, the heartbeat and the expiry deadlines on the hub's own timer thread
 * (hub_start) or in hub_tick. Sink callbacks run with the hub lock held: they must not block and
 * must not call the hub.
 *
 * Layer: engine.
 */
#ifndef TASSA_LIVE_HUB_H
#define TASSA_LIVE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/sid.h"
#include "engine/sync/documents.h"

#define HUB_HEARTBEAT_MS 15000   /* default heartbeat interval */
#define HUB_QUEUE_EVENTS 64      /* per-subscriber bound on live events, in events ... */
#define HUB_QUEUE_BYTES  262144  /* ... and in bytes of data */
#define HUB_RING_EVENTS  128     /* events kept per document and per service for resume */
#define HUB_RING_BYTES   1048576 /* and at most this many bytes of them */
#define HUB_IDLE_MS      120000  /* a document nobody watches is forgotten after this */

typedef struct hub hub_t;
typedef struct hub_sub hub_sub_t;

typedef enum {
    HUB_EV_SNAPSHOT,
    HUB_EV_UPDATE,
    HUB_EV_DELETED,
    HUB_EV_READY,
    HUB_EV_RESET,
    HUB_EV_PING,
    HUB_EV_TOKEN_EXPIRED,
    HUB_EV_ACCESS_CHANGED,
    HUB_EV_RECONNECT,
} hub_event_kind_t;

/* One event as a transport sees it. Immutable and shared: the hub formats it once and hands
 * the same bytes to every subscriber. */
typedef struct {
    hub_event_kind_t kind;
    int64_t id;       /* revision or sequence number; -1 when the event has none */
    bool terminal;    /* the stream ends after this event */
    const char *data; /* JSON text, NUL-terminated; "" for HUB_EV_PING */
    size_t data_len;
} hub_msg_t;

/* What the hub needs from a transport's connection. Every callback runs with the hub lock
 * held, on any thread: it must not block and must not call the hub. */
typedef struct {
    const char *transport; /* "sse": the label of the tassa_stream_clients metric */
    /* hub_sub_next found the queue empty and may_park was set: the transport stops polling
     * (e.g. suspends the connection) until wake. */
    void (*park)(void *sink);
    /* An event (or the end) arrived for a parked subscriber: poll hub_sub_next again. Always
     * follows its park. */
    void (*wake)(void *sink);
    /* The subscriber was dropped (slow client, peer gone, out of memory): make the
     * connection end even if the peer never reads (e.g. shut the socket down). May be NULL. */
    void (*abort)(void *sink);
    /* Polled on each heartbeat for a parked subscriber: has the peer gone? May be NULL. */
    bool (*gone)(void *sink);
} hub_sink_ops_t;

/* What hub_new is built from. config is borrowed and must outlive the hub: account_sid (in the
 * documents' JSON), api_secret (hub_authorise), max_streams and max_streams_per_identity
 * (<= 0: no limit). sync is required. now_ms is the hub's monotonic clock in milliseconds
 * (NULL: CLOCK_MONOTONIC); another clock is for tests that drive hub_tick by hand, because
 * the timer thread of hub_start sleeps on CLOCK_MONOTONIC. heartbeat_ms <= 0 means
 * HUB_HEARTBEAT_MS. */
typedef struct {
    const config_t *config;
    sync_engine_t *sync;
    int heartbeat_ms;
    int64_t (*now_ms)(void);
} hub_deps_t;

/* Who a subscriber is: from hub_authorise, or filled by the caller (tests). */
typedef struct {
    char *identity;                /* owned; freed by hub_grant_clear */
    char service_sid[SID_LEN + 1]; /* the service the grant covers, resolved */
    int64_t expires_ms;            /* hub clock time at which the token expires; 0 = never */
} hub_grant_t;

/* Creates the hub (deps copied; deps->sync required) and installs it as the Sync engine's
 * change listener. The timer does not run until hub_start. Returns NULL when out of memory,
 * deps is unusable or the listener cannot be set (sync_engine_set_listener: on a shared store
 * its feeder thread did not start). Call before serving; free with hub_free. */
hub_t *hub_new(const hub_deps_t *deps);

/* Starts the timer thread (heartbeats, token expiry, the idle sweep) with every signal
 * blocked, so that main's sigwait keeps them. TASSA_EINTERNAL when no thread can be made. */
tassa_err hub_start(hub_t *h);

/* Runs the timer's work now, on the caller's thread: ends the streams whose token expired
 * and, when a heartbeat is due, drops parked subscribers whose peer is gone, sends
 * HUB_EV_PING to idle ones and forgets documents idle for HUB_IDLE_MS. For tests with their
 * own clock; hub_start's thread does the same. Any thread. */
void hub_tick(hub_t *h);

/* Ends every stream: queues HUB_EV_RECONNECT for each subscriber (once), wakes every parked
 * one, refuses new subscriptions (TASSA_EUNAVAIL) and stops the timer thread. A transport
 * whose server cannot stop with parked connections (libmicrohttpd) needs this first.
 * Idempotent; accepts NULL. Any thread. */
void hub_stop(hub_t *h);

/* Stops h, removes the listener and frees it. Call when no transport may still use a
 * subscriber (their servers are freed) and the Sync writers have stopped. Accepts NULL. */
void hub_free(hub_t *h);

/* Verifies a Twilio access token (borrowed) with a Sync grant and checks that the grant
 * covers service (a SID or "default"). Fills g (clear it with hub_grant_clear) on TASSA_OK.
 * Errors, with a message for the client in em: TASSA_EUNAUTH (bad or expired token; the
 * reason is logged, never the token), TASSA_ENOTFOUND (unknown service), TASSA_EFORBIDDEN
 * (the grant is for another service), TASSA_ENOMEM. Any thread. */
tassa_err hub_authorise(hub_t *h, const char *token, const char *service, hub_grant_t *g,
                        errmsg_t *em);

/* Frees g's identity. Accepts NULL. */
void hub_grant_clear(hub_grant_t *g);

/* Subscribes sink to document doc_id (SID or unique name) of g's service, from resume point
 * last_id (-1 for none; see the file comment). base_url (borrowed) is where the documents'
 * URLs point. On TASSA_OK *out is the subscription, with its first events already queued; the
 * sink must stay valid until hub_sub_close. Errors with a message in em: TASSA_EFORBIDDEN (no
 * read permission, or no such document under ACL), TASSA_ENOTFOUND (no such document),
 * TASSA_ELIMIT (max_streams or max_streams_per_identity reached), TASSA_EUNAVAIL (stopping),
 * TASSA_ENOMEM; nothing is left behind. Any thread but the Sync listener's. */
tassa_err hub_subscribe_doc(hub_t *h, const hub_grant_t *g, const char *doc_id, int64_t last_id,
                            const char *base_url, const hub_sink_ops_t *ops, void *sink,
                            hub_sub_t **out, errmsg_t *em);

/* Subscribes sink to every document of g's service, as hub_subscribe_doc does (the first
 * event is READY, RESET or the replay). Errors: TASSA_ELIMIT, TASSA_EUNAVAIL, TASSA_ENOMEM. */
tassa_err hub_subscribe_service(hub_t *h, const hub_grant_t *g, int64_t last_id,
                                const char *base_url, const hub_sink_ops_t *ops, void *sink,
                                hub_sub_t **out, errmsg_t *em);

/* What hub_sub_next found. */
typedef enum {
    HUB_NEXT_EVENT, /* *msg is the next event: release it with hub_msg_release */
    HUB_NEXT_EMPTY, /* nothing queued; with may_park the sink's park ran and wake will follow */
    HUB_NEXT_END,   /* the stream is over (its terminal event was taken, or the hub stopped) */
    HUB_NEXT_ABORT, /* the subscriber was dropped: end the connection with an error */
} hub_next_t;

/* Takes the next queued event of sub. A transport calls it whenever it can send; may_park
 * says whether it would wait for wake on an empty queue (false while it still has bytes to
 * send). Any thread; one caller per subscription at a time. */
hub_next_t hub_sub_next(hub_sub_t *sub, bool may_park, const hub_msg_t **msg);

/* Drops a reference from hub_sub_next. Accepts NULL. Any thread. */
void hub_msg_release(const hub_msg_t *msg);

/* The wire name of an event kind ("snapshot", "update", "token-expired", ...), or NULL for
 * HUB_EV_PING. Pure. */
const char *hub_event_name(hub_event_kind_t kind);

/* Ends sub: unsubscribes it, releases its queue and its slot, and frees it. No sink callback
 * for it runs after this returns. Accepts NULL. Any thread. */
void hub_sub_close(hub_sub_t *sub);

/* The number of open subscriptions (for tests). Any thread. */
int hub_count(hub_t *h);

#endif
