/* server.h - the HTTP layer: libmicrohttpd in epoll mode with a small thread pool, a route
 * table, merged parameters, body limits, JSON error bodies and one access-log line per request.
 *
 * Handlers run on libmicrohttpd's pool threads, several at once: whatever they touch must be
 * thread-safe. A handler fills the http_resp_t it is given; the layer sends it afterwards.
 *
 * Layer: http.
 */
#ifndef TASSA_HTTP_SERVER_H
#define TASSA_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/params.h"
#include "store/store.h"

struct MHD_Connection;
struct MHD_Response;

#define HTTP_MAX_PATH_ARGS 4
#define HTTP_MAX_HEADERS   8

typedef struct {
    const char *method;                   /* "GET", ... (borrowed from libmicrohttpd) */
    const char *path;                     /* without the query string */
    const char *args[HTTP_MAX_PATH_ARGS]; /* the `{}` segments of the matched route, decoded */
    params_t *query;                      /* query-string parameters only */
    params_t *params;                     /* body parameters first, then query (Twilio's `event`) */
    size_t body_params; /* how many leading entries of params came from the body */
    const char *body;   /* raw body, NUL-terminated; "" when none */
    size_t body_len;
    struct MHD_Connection *conn;
    const char *base_url; /* "http://host:port" as the client addressed us */
} http_req_t;

typedef struct {
    int status;
    char *body; /* owned, malloc'd; NULL for none */
    size_t body_len;
    const char *content_type;           /* static string; default application/json */
    char *headers[HTTP_MAX_HEADERS][2]; /* owned extra headers */
    int nheaders;
    struct MHD_Response *raw; /* a ready response (streams); the layer queues and destroys it */
    struct http_deferred *deferred; /* set by http_resp_defer: the answer comes later */
} http_resp_t;

/* A deferred answer (http_resp_defer); opaque. */
typedef struct http_deferred http_deferred_t;

/* Fills a deferred answer: runs on a handler thread after http_deferred_ready, with the resp
 * the handler left (status, headers) to complete; it owns ctx from then on and frees it. */
typedef void (*http_finish_fn)(void *ctx, http_resp_t *resp);

typedef void (*http_handler_fn)(void *ctx, http_req_t *req, http_resp_t *resp);

typedef struct http_server http_server_t;

typedef struct {
    const char *bind_addr;
    int port;    /* 0 picks a free port; see http_server_port */
    int threads; /* pool threads; 0: one per core, at least 2 */
    int writers; /* threads for the writes of http_server_offload's prefixes; 0: one per core (at
                  * least 2) */
    size_t max_body;       /* larger bodies get a 413 at once, then the connection closes */
    int header_timeout_ms; /* a connection whose request headers are not complete this long
                              after it opened (or after its previous response) is closed; 0 =
                              no deadline. Requests being handled, and live streams, are not
                              affected. */
    bool access_log;
} http_opts_t;

/* Creates a server with an empty route table; start it with http_server_start. NULL on OOM. */
http_server_t *http_server_new(const http_opts_t *opts);

/* Adds a route. pattern is a path whose `{}` segments match any one segment, which the
 * handler finds in req->args, e.g. "/v1/Services/{}/Documents/{}". method "*" matches all.
 * Routes are matched in the order added. Call before http_server_start. */
tassa_err http_server_route(http_server_t *s, const char *method, const char *pattern,
                            http_handler_fn fn, void *ctx);

/* http_server_route, but the body is not parsed by its Content-Type: req->params holds only
 * the query and the handler reads req->body itself (the event bridge's JSON sent as a form).
 * The body limit applies as for every route. */
tassa_err http_server_route_raw(http_server_t *s, const char *method, const char *pattern,
                                http_handler_fn fn, void *ctx);

/* One row of a route table for http_server_routes. */
typedef struct {
    const char *method, *pattern;
    http_handler_fn fn;
} http_route_t;

/* Adds n routes, all with the same ctx; stops at the first failure and returns it. */
tassa_err http_server_routes(http_server_t *s, const http_route_t *routes, size_t n, void *ctx);

/* Hands ctx to the server, which calls free_fn(ctx) in http_server_free after the daemon has
 * stopped (so no handler can still be using it); for state a module's routes share, such as
 * keys set up once. Returns TASSA_OK, or TASSA_ENOMEM (free_fn(ctx) is then called at once).
 * Call before http_server_start, from the thread that set the server up. */
tassa_err http_server_own(http_server_t *s, void *ctx, void (*free_fn)(void *));

/* Runs the writes (POST, PUT, PATCH, DELETE) under path prefix on the writers pool
 * (http_opts_t.writers threads) instead of an HTTP thread: the connection is suspended, the
 * handler runs on a pool thread, where it may block (a write waiting for its group commit),
 * and its answer is sent from an HTTP thread. The handler must not use http_resp_defer itself.
 * Before http_server_start; at most 4 prefixes (TASSA_ELIMIT past them). */
tassa_err http_server_offload(http_server_t *s, const char *prefix);

/* Lets the writers move on before a job's writes on store are durable: each offloaded handler
 * runs between store_defer_begin(store) and store_defer_end, and its answer is sent once those
 * writes are durable. When they are gone after all (the handler saw them succeed), a Twilio
 * error answer (TASSA_ESTORE's) replaces the handler's. A handler that needs a write durable
 * before something else it does may not be offloaded so. Before http_server_start. */
void http_server_offload_defer(http_server_t *s, store_t *store);

/* Starts listening. TASSA_EUNAVAIL with a detail if the port cannot be bound. */
tassa_err http_server_start(http_server_t *s, errmsg_t *em);

/* The port actually bound (useful with port 0). */
int http_server_port(const http_server_t *s);

/* Drain, step 1: from now on every answer carries `Connection: close`, and
 * http_server_draining says true (for /healthz). Any thread. */
void http_server_set_draining(http_server_t *s);

/* Whether http_server_set_draining was called. False for NULL. Any thread. */
bool http_server_draining(const http_server_t *s);

/* Drain, step 2: closes the listening socket; connections already open are still served.
 * Call after http_server_start, from the thread that will call http_server_free. */
void http_server_quiesce(http_server_t *s);

/* Requests received and not yet fully answered (a live stream counts until it ends). Any
 * thread. */
int http_server_inflight(const http_server_t *s);

/* Stops accepting, closes connections and frees s. Accepts NULL. */
void http_server_free(http_server_t *s);

/* The value of request header name (case-insensitive), or NULL. Borrowed. */
const char *http_req_header(const http_req_t *req, const char *name);

/* True when req came over the loopback interface (127.0.0.0/8, ::1, or ::ffff:127.x.y.z);
 * false for any other address or when the peer's address is unknown. req borrowed; the pool
 * thread running req's handler. */
bool http_req_from_loopback(const http_req_t *req);

/* Writes "libmicrohttpd RUNTIME (built with X.Y.Z)" (the library's run-time version and the
 * one tassa was compiled with), NUL-terminated and cut to n bytes, into out. Any thread. */
void http_server_lib_versions(char *out, size_t n);

/* Sets resp to status with body taken over (json dumped compact; json's reference is
 * stolen). Returns TASSA_OK, or TASSA_ENOMEM after setting a plain 500. */
void http_resp_json(http_resp_t *resp, int status, json_t *json);

/* Sets resp to status with text, JSON (malloc'd), as its body, taken over; NULL sets the plain
 * 500 of http_resp_json. */
void http_resp_json_text(http_resp_t *resp, int status, char *text);

/* Sets resp to a copy of text with the content type given (a static string). */
void http_resp_text(http_resp_t *resp, int status, const char *content_type, const char *text);

/* In a handler: the answer comes later, so that the handler thread is free meanwhile (a
 * write waiting for its group commit). After the handler returns, the server suspends the
 * connection (MHD_suspend_connection) unless the answer is already ready; once someone calls
 * http_deferred_ready, the connection resumes and finish(ctx, resp) fills the answer on a
 * handler thread, which the server then sends. The req passed to the handler is gone by
 * then: copy into ctx what finish needs. Returns the handle to give to http_deferred_ready,
 * or NULL when out of memory (resp is untouched: answer at once). Only in a handler, at most
 * once per request; the handler must then leave resp alone except for headers. */
http_deferred_t *http_resp_defer(http_resp_t *resp, http_finish_fn finish, void *ctx);

/* The deferred answer d can be made: any thread, exactly once per d, never blocking (it may
 * run under other locks, e.g. on the store's committer thread, or inside the handler itself
 * before it returns). d must not be used afterwards. */
void http_deferred_ready(http_deferred_t *d);

/* Adds a response header (copied). Past HTTP_MAX_HEADERS it is dropped with a log line. */
void http_resp_header(http_resp_t *resp, const char *name, const char *value);

/* The seed functions' error body: {"error": message, "status": N} with the status of err. */
void http_resp_fn_error(http_resp_t *resp, tassa_err err, const char *message);

/* The error body the path calls for: Twilio's under /v1/, the functions' elsewhere. */
void http_resp_error(const http_req_t *req, http_resp_t *resp, tassa_err err, const char *message);

/* Twilio's REST error body: {"code", "message", "more_info", "status"}. */
void http_resp_twilio_error(http_resp_t *resp, tassa_err err, const char *message);

#endif
