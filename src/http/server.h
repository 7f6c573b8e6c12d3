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
} http_resp_t;

typedef void (*http_handler_fn)(void *ctx, http_req_t *req, http_resp_t *resp);

typedef struct http_server http_server_t;

typedef struct {
    const char *bind_addr;
    int port; /* 0 picks a free port; see http_server_port */
    int threads;
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

/* Sets resp to a copy of text with the content type given (a static string). */
void http_resp_text(http_resp_t *resp, int status, const char *content_type, const char *text);

/* Adds a response header (copied). Past HTTP_MAX_HEADERS it is dropped with a log line. */
void http_resp_header(http_resp_t *resp, const char *name, const char *value);

/* The seed functions' error body: {"error": message, "status": N} with the status of err. */
void http_resp_fn_error(http_resp_t *resp, tassa_err err, const char *message);

/* The error body the path calls for: Twilio's under /v1/, the functions' elsewhere. */
void http_resp_error(const http_req_t *req, http_resp_t *resp, tassa_err err, const char *message);

/* Twilio's REST error body: {"code", "message", "more_info", "status"}. */
void http_resp_twilio_error(http_resp_t *resp, tassa_err err, const char *message);

#endif
