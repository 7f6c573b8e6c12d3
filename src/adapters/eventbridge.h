/* eventbridge.h - TaskRouter's event bridge at /v1/wschannels, for the official
 * twilio-taskrouter Worker (docs/protocols/sdk-protocols.md sections 3 to 5 are the spec).
 *
 * A Worker given `{ ebServer: "http://HOST:PORT/v1/wschannels", wsServer:
 * "ws://HOST:PORT/v1/wschannels" }` talks to tassa here, identified only by its token (a Twilio
 * access token with a task_router grant, auth/worker_token.h):
 *
 *   POST /v1/wschannels[/{AC}/{WK}]   body {url, method, params, token} as JSON whatever the
 *       Content-Type says; url relative ("Workspaces/WS../Workers/WK.."), the version in the
 *       apiVersion header. The token is verified on every call and the request runs as that
 *       worker on the engine's model (model.h, the code the REST API runs), answered 200
 *       {"payload": ...} in the event-bridge shapes (snake_case, dates in epoch seconds,
 *       attributes as JSON text, every key the SDK checks present, lists as {"contents": [...],
 *       "after_sid": null|SID}); errors are Twilio's body {"code","message","more_info",
 *       "status"} with a 4xx status (401 bad token, 403 outside the worker's scope).
 *       OPTIONS answers the CORS preflight.
 *   Scope of a worker token: GET/POST its Worker, GET its WorkerChannels (also Channels), GET
 *       its Reservations (v2 Active=true embeds the tasks) and GET/POST each of them, GET the
 *       Activities, GET/POST the Tasks it holds a reservation for, POST Tasks (createTask).
 *       Anything else is 403.
 *   GET /v1/wschannels[/{AC}/{WK}]?token=...[&closeExistingSessions=true]
 *       [&setWorkerOfflineIfDisconnected=true]: the worker's event socket (WebSocket, TEXT
 *       frames only). A bad token closes it with 4001 and the reason; a good one gets the init
 *       message first ({"event_type":"init","payload":{channel_id, account_sid, workspace_sid,
 *       token_lifetime (ms)}}), then the worker's events ({"event_type","payload"}), a " "
 *       heartbeat every EVENTBRIDGE_HEARTBEAT_MS, and a close (4003 "token expired") at the
 *       token's exp. closeExistingSessions=true closes the worker's other sockets;
 *       setWorkerOfflineIfDisconnected=true moves the worker to the Offline activity when its
 *       last socket closes (not when the server stops).
 *
 * Events (eventbridge_deliver, from the engine's event sink): reservation.created, accepted,
 * rejected, timeout, canceled, rescinded, completed, wrapup (the reservation with its task)
 * to the reservation's worker; worker.activity.update and worker.attributes.update (the
 * worker) to that worker; task.updated, canceled, completed, wrapup (the task) to every
 * worker with a reservation of the task. Payloads are read from the engine when the event is
 * delivered, with the statuses the event recorded.
 *
 * Several nodes: the engine's events are delivered on the node holding the workspace's lease,
 * so a worker socket open on another node gets its init and heartbeats but no events (see
 * README). The REST envelope works on every node.
 *
 * Threads: the HTTP handlers run on the pool threads; the socket callbacks on the WebSocket
 * I/O thread (they read no store); eventbridge_deliver on the engine's dispatcher thread;
 * one job thread of the bridge moves disconnected workers offline. The set of open sockets is
 * guarded by the bridge's lock, under which ws_send / ws_close are called (http/ws.h).
 *
 * Layer: adapters.
 */
#ifndef TASSA_ADAPTERS_EVENTBRIDGE_H
#define TASSA_ADAPTERS_EVENTBRIDGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/config.h"
#include "base/err.h"
#include "base/params.h"
#include "engine/taskrouter/engine.h"
#include "http/server.h"
#include "http/ws.h"

#define EVENTBRIDGE_HEARTBEAT_MS 10000 /* the SDK drops a socket silent for 30 s */
#define EVENTBRIDGE_MAX_URL      512   /* a longer envelope url is refused */

/* One parsed envelope: the strings are malloc'd, params a new reference (an object, empty
 * when the body had none or null). Clear with eventbridge_request_clear. */
typedef struct {
    char *url, *method, *token;
    json_t *params;
} eventbridge_request_t;

/* Parses an envelope body of len bytes (JSON, see the file comment): an object with a string
 * url (1..EVENTBRIDGE_MAX_URL bytes), a string method GET or POST, an optional params object
 * (or null) and a string token. TASSA_EINVAL with a reason in em (out zeroed), TASSA_ENOMEM.
 * Pure; any thread. Exposed for fuzz/fuzz_eventbridge.c. */
tassa_err eventbridge_parse(const char *body, size_t len, eventbridge_request_t *out, errmsg_t *em);

/* Frees what r holds and zeroes it. Accepts a zeroed r. */
void eventbridge_request_clear(eventbridge_request_t *r);

/* Converts an envelope's params object (borrowed) into p: strings as they are, numbers and
 * booleans as their JSON text, objects and arrays as compact JSON text (Attributes), null
 * skipped. Errors as params_add. Pure; any thread. */
tassa_err eventbridge_params(const json_t *params, params_t *p, errmsg_t *em);

/* What the bridge is built from, all borrowed and outliving it: config (API key and secret,
 * account SID, CORS origins), tr (the engine), ws (the WebSocket layer). */
typedef struct {
    const config_t *config;
    tr_engine_t *tr;
    ws_t *ws;
} eventbridge_deps_t;

typedef struct eventbridge eventbridge_t;

/* Creates the bridge (deps copied) and starts its job thread. NULL when out of memory or no
 * thread can start. */
eventbridge_t *eventbridge_new(const eventbridge_deps_t *deps);

/* Adds the routes (POST, OPTIONS and the WebSocket GET on /v1/wschannels and
 * /v1/wschannels/{}/{}, and GET /v1/Workspaces/{}/Workers/{}/WorkerChannels and .../Channels
 * for the REST API with Basic auth) to http. Call before http_server_start. Errors as
 * http_server_route. */
tassa_err eventbridge_register(eventbridge_t *b, http_server_t *http);

/* Sends an engine event (borrowed; see tr_event_fn) to the sockets of the workers it
 * concerns. Does nothing when no such socket is open. The engine's dispatcher thread. */
void eventbridge_deliver(eventbridge_t *b, const params_t *event);

/* From now on a closing socket does not move its worker offline: call before ws_stop when
 * the server stops. Any thread; accepts NULL. */
void eventbridge_quiesce(eventbridge_t *b);

/* Open event sockets (tests, metrics). Any thread. */
int eventbridge_sockets(eventbridge_t *b);

/* Stops the job thread (finishing queued jobs) and frees b. Call after ws_stop and
 * tr_engine_stop, before the engine is freed. Accepts NULL. */
void eventbridge_free(eventbridge_t *b);

#endif
