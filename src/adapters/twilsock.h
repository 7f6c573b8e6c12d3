/* twilsock.h - Sync over twilsock V3.0 at /v3/wsconnect, for the official twilio-sync SDK
 * (docs/protocols/sdk-protocols.md sections 1 and 2 are the spec).
 *
 * A SyncClient given `{ twilsock: { uri: "ws://HOST:PORT/v3/wsconnect" }, cdsUri:
 * "http://HOST:PORT" }` connects here. Frames are `TWILSOCK V3.0 <H>\r\n<header JSON>\r\n
 * <payload>` in binary WebSocket messages (twilsock_parse / twilsock_build). Per connection:
 *
 *   init      the sync token of /task/get-sync-grant (a Twilio access token with a data_sync
 *             grant, checked as hub_authorise does). Refused with the SDK's errors: 401
 *             UNAUTHORIZED errorCode 20101 (bad token), 20104 (expired), 403 (the grant's
 *             service is unknown), 429 (the identity has TASSA_WS_MAX_PER_IDENTITY connections
 *             or live streams already). Accepted with a continuation_token, which a later init
 *             may bring back (any value is accepted and ignored: twilio-sync re-subscribes).
 *   update    a new token for the same identity; 401 as for init.
 *   message   an upstream CDS request, answered in http_status (the twilsock status stays 200):
 *             GET /v3/Documents/{id}, POST /v3/Documents, POST /v3/Documents/{id} (If-Match:
 *             412 on a stale revision; a body without data only sets ttl), DELETE
 *             /v3/Documents/{id} (its payload is ignored), POST /v4/Subscriptions (establish
 *             / cancel). Lists, maps and streams answer 501. Errors carry Twilio's body
 *             {"status","code","message"}: 404 54100, 409 54301, 412 54103, 403 54007.
 *   reply     acknowledgements of our notifications: ignored.
 *   close     the client leaves; the socket closes.
 *
 * Notifications (after the reply of the request that caused them): subscription_established
 * with the request's correlation_id (after a replay of the current document when the client's
 * last_event_id is older), subscription_failed (404: the document is gone), document_updated
 * and document_removed for every change of a subscribed document, from any writer (REST,
 * functions, twilsock). last_event_id is the document's revision. client_update
 * token_about_to_expire goes out ahead of the token's exp (3 minutes, or half the token's
 * life when shorter), and close 410 at exp.
 *
 * Access control as on the REST API's documents for token identities: with the service's ACL
 * on, reading and subscribing need `read`, writing `write`, deleting `manage`, and creating is
 * refused (403); with it off a token may do everything.
 *
 * Threads: every per-connection callback runs on the WebSocket I/O thread (http/ws.h); the
 * live hub's sink callbacks only wake it.
 *
 * Layer: adapters.
 */
#ifndef TASSA_ADAPTERS_TWILSOCK_H
#define TASSA_ADAPTERS_TWILSOCK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "engine/live/hub.h"
#include "engine/sync/documents.h"
#include "http/server.h"
#include "http/ws.h"

#define TWILSOCK_MAX_HEADER 65536 /* a longer header (or a malformed one) is refused */
#define TWILSOCK_MAX_SUBS   1000  /* documents one connection may subscribe to */

/* One parsed frame: header is a new reference the caller json_decref's (an object with a
 * string "method"); payload points into the parsed buffer (borrowed), payload_len bytes. */
typedef struct {
    json_t *header;
    const uint8_t *payload;
    size_t payload_len;
} twilsock_frame_t;

/* Parses one frame of len bytes (see the file comment): the magic `TWILSOCK V3.0 `, the header
 * length in decimal (at most TWILSOCK_MAX_HEADER), CRLF, a JSON object header with a string
 * method and an optional payload_size (a non-negative integer; the payload must fit in buf;
 * bytes after it are ignored). TASSA_EINVAL with a reason in em (out->header NULL), or
 * TASSA_ENOMEM. Pure; any thread. */
tassa_err twilsock_parse(const uint8_t *buf, size_t len, twilsock_frame_t *out, errmsg_t *em);

/* Builds a frame from header (borrowed; its payload_size is set to payload_len in a copy) and
 * payload (payload_len bytes, may be NULL when 0). Returns a malloc'd buffer of *out_len bytes
 * the caller frees, or NULL when out of memory or header is not an object. Pure; any thread. */
uint8_t *twilsock_build(const json_t *header, const void *payload, size_t payload_len,
                        size_t *out_len);

/* What the endpoint is built from, all borrowed and outliving it: config (api_secret),
 * sync (the documents), hub (notifications and the token deadlines), ws (the connections). */
typedef struct {
    const config_t *config;
    sync_engine_t *sync;
    hub_t *hub;
    ws_t *ws;
} twilsock_deps_t;

typedef struct twilsock twilsock_t;

/* Creates the endpoint (deps copied). NULL when out of memory. */
twilsock_t *twilsock_new(const twilsock_deps_t *deps);

/* Adds the WebSocket route /v3/wsconnect to http. Call before http_server_start. Errors as
 * ws_route. */
tassa_err twilsock_register(twilsock_t *t, http_server_t *http);

/* Frees t. Call after ws_stop (no connection may still use t). Accepts NULL. */
void twilsock_free(twilsock_t *t);

#endif
