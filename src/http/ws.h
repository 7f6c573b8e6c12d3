/* ws.h - WebSocket (RFC 6455) routes on the HTTP server: libmicrohttpd's upgrade, libwslay's
 * framing, one epoll I/O thread for every upgraded socket.
 *
 * A module that speaks a protocol over WebSocket (adapters/twilsock.c, later the TaskRouter
 * event bridge) registers a route with a ws_handler_t and gets callbacks per connection. The
 * handshake is checked here (ws_check_upgrade): GET, `Upgrade: websocket`, `Connection:
 * upgrade`, `Sec-WebSocket-Version: 13` (426 otherwise) and a Sec-WebSocket-Key of 16 bytes in
 * base64; anything else is a 400 with a JSON body. No subprotocol and no extension is
 * negotiated.
 *
 * Limits (ws_opts_t): max_connections in all (503 beyond, before the upgrade); max_per_identity
 * per identity, enforced when the protocol names the connection's identity (ws_set_identity,
 * usually after its own authentication); max_message per message (libwslay closes with 1009
 * past it); queue_bytes per connection of messages not yet written to the socket: a ws_send
 * past it drops the client: what it still had queued in tassa is discarded, nothing more is
 * read, a close 1008 goes out ahead of what libwslay holds, and the socket closes
 * WS_CLOSE_WAIT_MS later at the latest (a peer that does not read may never see the close).
 * A ping goes out every ping_ms (checked every WS_TICK_MS); a
 * connection whose pong has not come by the next ping is closed. A close frame from the peer
 * is answered (libwslay); a close we start goes out after the messages queued before it, and
 * the connection ends WS_CLOSE_WAIT_MS later at the latest (peer answered or not). While
 * the server drains (http_server_draining) new upgrades get 503, and ws_stop closes every
 * connection with 1001.
 *
 * Threads and ownership. Every ws_handler_t callback runs on the I/O thread, one at a time, so
 * a protocol's per-connection state needs no lock if only its callbacks touch it. ws_send,
 * ws_close and ws_wake may be called from any thread, for a connection from on_open until
 * on_close returns: after on_close, the ws_conn_t is freed. A module that keeps connections
 * for other threads (an event fan-out) must drop them, under its own lock, in on_close, and
 * call ws_* only under that lock. ws_wake never blocks and takes only the ws lock briefly, so
 * it may run under another module's lock (the live hub's sink wake); no ws callback runs with
 * the ws lock held.
 *
 * Layer: http.
 */
#ifndef TASSA_HTTP_WS_H
#define TASSA_HTTP_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "http/server.h"

#define WS_TICK_MS       1000 /* on_tick period */
#define WS_CLOSE_WAIT_MS 2000 /* how long a close we sent waits for the peer's */
#define WS_ACCEPT_LEN    28   /* base64 of a SHA-1 digest */

typedef struct ws ws_t;
typedef struct ws_conn ws_conn_t;

/* A protocol's callbacks; every one runs on the I/O thread (see the file comment). Any of
 * them may be NULL. */
typedef struct {
    /* The connection is upgraded and ready to send. */
    void (*on_open)(void *ctx, ws_conn_t *c);
    /* A complete text (binary false) or binary message; data borrowed for the call. */
    void (*on_message)(void *ctx, ws_conn_t *c, bool binary, const uint8_t *data, size_t len);
    /* ws_wake was called for c (one call may stand for several wakes). */
    void (*on_wake)(void *ctx, ws_conn_t *c);
    /* Every WS_TICK_MS while c is open; now_ms is CLOCK_MONOTONIC in milliseconds. */
    void (*on_tick)(void *ctx, ws_conn_t *c, int64_t now_ms);
    /* c is closed (by either side, a limit, an error or ws_stop); called once, after on_open.
     * c is freed when this returns. */
    void (*on_close)(void *ctx, ws_conn_t *c);
} ws_handler_t;

/* Limits (see the file comment); every value > 0. */
typedef struct {
    int max_connections, max_per_identity;
    size_t max_message, queue_bytes;
    int ping_ms;
} ws_opts_t;

/* Creates the WebSocket layer (opts copied) and starts its I/O thread. NULL when out of memory
 * or no thread can be made. Free with ws_free. */
ws_t *ws_new(const ws_opts_t *opts);

/* Adds a GET route to http whose requests are upgraded to WebSocket connections handled by h
 * (borrowed, must outlive ws) with ctx. pattern as for http_server_route. Call before
 * http_server_start. TASSA_ELIMIT / TASSA_ENOMEM as http_server_route. */
tassa_err ws_route(ws_t *ws, http_server_t *http, const char *pattern, const ws_handler_t *h,
                   void *ctx);

/* Queues a copy of data as one text (binary false) or binary message. TASSA_ELIMIT when it
 * would take c's queue past queue_bytes: c is then dropped (on_close follows); TASSA_EUNAVAIL
 * when c is closing; TASSA_ENOMEM. Any thread (see the file comment). */
tassa_err ws_send(ws_conn_t *c, bool binary, const void *data, size_t len);

/* Starts the close handshake with code (1000, 1001, 1008, ...) and a reason (borrowed, at
 * most 120 bytes are sent, NULL for none) once the messages queued before it are out. Further
 * ws_send calls are refused. Idempotent. Any thread. */
void ws_close(ws_conn_t *c, uint16_t code, const char *reason);

/* Has on_wake run soon on the I/O thread. Never blocks. Any thread. */
void ws_wake(ws_conn_t *c);

/* Names c's identity for the per-identity limit (identity copied). TASSA_ELIMIT when
 * max_per_identity connections of that identity are open already (c keeps no identity);
 * TASSA_EINVAL when c has one already; TASSA_ENOMEM. I/O thread (a callback). */
tassa_err ws_set_identity(ws_conn_t *c, const char *identity);

/* The protocol's pointer for c (NULL until set). I/O thread. */
void ws_conn_set_data(ws_conn_t *c, void *data);
void *ws_conn_data(const ws_conn_t *c);

/* The i-th `{}` segment of the route c came in by (decoded), or NULL. Borrowed from c. */
const char *ws_conn_arg(const ws_conn_t *c, int i);

/* The value of query parameter name of c's upgrade request, or NULL. Borrowed from c. */
const char *ws_conn_query(const ws_conn_t *c, const char *name);

/* Open connections (for tests and metrics). Any thread. */
int ws_count(ws_t *ws);

/* Closes every connection with 1001 (going away), waits up to WS_CLOSE_WAIT_MS for the
 * handshakes, then drops what is left and stops the I/O thread; later upgrades get 503.
 * libmicrohttpd must not be stopped with upgraded sockets open: call this before
 * http_server_free. Idempotent; accepts NULL. Any thread but the I/O thread. */
void ws_stop(ws_t *ws);

/* Stops ws (ws_stop) and frees it. Call after http_server_free. Accepts NULL. */
void ws_free(ws_t *ws);

/* Checks a WebSocket upgrade request's headers (each borrowed, NULL when absent) and computes
 * the Sec-WebSocket-Accept value into accept (NUL-terminated). TASSA_EINVAL with the reason in
 * em for a bad request (400); TASSA_ECONFLICT for a Sec-WebSocket-Version other than 13 (426,
 * answered with `Sec-WebSocket-Version: 13`). Pure; any thread. Exposed for
 * fuzz/fuzz_ws_upgrade.c. */
tassa_err ws_check_upgrade(const char *method, const char *upgrade, const char *connection,
                           const char *version, const char *key, char accept[WS_ACCEPT_LEN + 1],
                           errmsg_t *em);

#endif
