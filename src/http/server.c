/* server.c - libmicrohttpd wrapper: routes, bodies, parameters, errors, access log.
 *
 * Each connection's request gets a conn_state_t on the first callback; the body is collected
 * up to max_body (past it, declared or received, the answer is 413 at once and the
 * connection closes; nothing more is read), then parameters are merged and the matching
 * route's handler runs once on the final callback. Each connection also has a sock_ctx_t,
 * on a waiting list while its request headers are due, for the header deadline.
 *
 * Layer: http.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/workpool.h"

#define MAX_ROUTES    96
#define WRITERS_QUEUE 65536 /* queued offloaded requests; past it they run on the HTTP thread */
#define MAX_SEGMENTS  12

/* The request target's limits (finding H1, see on_uri), and libmicrohttpd's per-connection
 * memory pool. The pool holds the request line and the headers (the read buffer starts at
 * half of it and grows into the rest) and their records, not the query, which on_uri takes
 * out; libmicrohttpd zeroes the whole pool after every request and half of it once more
 * when the headers are in, so its size is a cost per request. 24 KiB holds a target at the
 * limit with 8 KiB of headers (Node's whole limit is 16 KiB); past some 20 KiB
 * libmicrohttpd answers 414 or 431 itself and closes the connection. */
#define MAX_TARGET_BYTES 8192
#define MAX_QUERY_PIECES PARAMS_MAX_COUNT
#define POOL_BYTES       (24u * 1024)
#define XSTR_(x)         #x
#define XSTR(x)          XSTR_(x)

typedef struct {
    char method[8];
    char *segments[MAX_SEGMENTS]; /* NULL entry = `{}` wildcard */
    int nseg;
    http_handler_fn fn;
    void *ctx;
    char *pattern; /* as given, the `route` label of the metrics */
    bool raw_body; /* the body is left unparsed (http_server_route_raw) */
} route_t;

/* One per TCP connection (libmicrohttpd's socket context). While the connection waits for a
 * request's headers it is on the server's waiting list, oldest first. */
typedef struct sock_ctx {
    struct sock_ctx *prev, *next;
    int fd;
    bool waiting;
    struct timespec since; /* when it began waiting */
} sock_ctx_t;

struct http_server {
    http_opts_t opts;
    /* The header deadline (see http_opts_t.header_timeout_ms): wait_lock guards the waiting
     * list and stop_sweep; the sweeper thread closes the connections past the deadline. */
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;
    sock_ctx_t *wait_head, *wait_tail;
    bool stop_sweep, sweeper_started;
    pthread_t sweeper;
    char *bind_addr;
    struct MHD_Daemon *daemon;
    route_t routes[MAX_ROUTES];
    int nroutes;
    int port;
    atomic_int inflight; /* requests begun and not yet completed */
    /* Writes under these path prefixes run on the writers pool (http_server_offload). */
    char *offload[4];
    int noffload;
    workpool_t *writers;
    store_t *defer_store; /* http_server_offload_defer's store, or NULL */
    atomic_bool draining; /* answers carry Connection: close; see http_server_drain */
    /* Deferred answers not yet declared ready (http_resp_defer): http_server_free waits for
     * them, since libmicrohttpd must not be stopped with a connection suspended. */
    pthread_mutex_t defer_lock;
    pthread_cond_t defer_cond;
    int deferred_open;
    struct owned {
        void *ctx;
        void (*free_fn)(void *);
    } * owned; /* http_server_own: freed in http_server_free */
    size_t nowned;
};

/* A deferred answer: lock orders its hand-over between the handler that suspends the
 * connection and whoever declares it ready, so that a resume always follows its suspend. */
struct http_deferred {
    pthread_mutex_t lock;
    struct MHD_Connection *conn; /* set by dispatch after the handler returned */
    http_finish_fn finish;
    void *ctx;
    http_resp_t resp; /* what the handler left (headers), completed by finish */
    http_server_t *server;
    bool ready;     /* http_deferred_ready was called */
    bool suspended; /* the connection is suspended and ready must resume it */
    bool abandoned; /* the connection ended first: ready finishes and frees alone */
};

typedef struct {
    http_deferred_t *deferred; /* the request's deferred answer, between dispatch and resume */
    char *body;
    size_t len, cap;
    bool too_big;
    bool answered;     /* the early 413 is sent (queued, or written by hand) */
    bool queued;       /* ... through libmicrohttpd (queue_too_big) */
    size_t drained;    /* body bytes dropped after the early 413 */
    int status;        /* for the access log */
    const char *route; /* the matched route's pattern, for the metrics; NULL when none */
    struct timespec start;
    char method[12];
    char path[160];
    bool begun;                 /* on_request has seen this request (inflight counted) */
    bool counted;               /* in the metrics (count_request) */
    const char *target_refused; /* why the request target is refused (on_uri), or NULL */
    char *query;                /* the target's query, still encoded (on_uri), or NULL */
} conn_state_t;

/* Splits a path into segments in place; returns the count or -1 if there are too many. */
static int split_path(char *path, char **segs)
{
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(path, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGMENTS)
            return -1;
        segs[n++] = tok;
    }
    return n;
}

http_server_t *http_server_new(const http_opts_t *opts)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->opts = *opts;
    s->bind_addr = strdup(opts->bind_addr ? opts->bind_addr : "127.0.0.1");
    if (!s->bind_addr) {
        free(s);
        return NULL;
    }
    s->opts.bind_addr = s->bind_addr;
    pthread_mutex_init(&s->wait_lock, NULL);
    pthread_mutex_init(&s->defer_lock, NULL);
    pthread_cond_init(&s->defer_cond, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sweep_loop's deadlines are monotonic */
    pthread_cond_init(&s->wait_cond, &ca);
    pthread_condattr_destroy(&ca);
    return s;
}

tassa_err http_server_route(http_server_t *s, const char *method, const char *pattern,
                            http_handler_fn fn, void *ctx)
{
    if (s->nroutes == MAX_ROUTES)
        return TASSA_ELIMIT;
    route_t *r = &s->routes[s->nroutes];
    snprintf(r->method, sizeof r->method, "%s", method);
    char *copy = strdup(pattern);
    if (!copy)
        return TASSA_ENOMEM;
    char *segs[MAX_SEGMENTS];
    int n = split_path(copy, segs);
    if (n < 0) {
        free(copy);
        return TASSA_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        r->segments[i] = strcmp(segs[i], "{}") ? strdup(segs[i]) : NULL;
        if (strcmp(segs[i], "{}") && !r->segments[i]) {
            free(copy);
            return TASSA_ENOMEM;
        }
    }
    free(copy);
    r->nseg = n;
    if (!(r->pattern = strdup(pattern)))
        return TASSA_ENOMEM;
    r->fn = fn;
    r->ctx = ctx;
    s->nroutes++;
    return TASSA_OK;
}

tassa_err http_server_route_raw(http_server_t *s, const char *method, const char *pattern,
                                http_handler_fn fn, void *ctx)
{
    tassa_err err = http_server_route(s, method, pattern, fn, ctx);
    if (!err)
        s->routes[s->nroutes - 1].raw_body = true;
    return err;
}

tassa_err http_server_routes(http_server_t *s, const http_route_t *routes, size_t n, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        tassa_err err =
            http_server_route(s, routes[i].method, routes[i].pattern, routes[i].fn, ctx);
        if (err)
            return err;
    }
    return TASSA_OK;
}

const char *http_req_header(const http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void http_resp_json(http_resp_t *resp, int status, json_t *json)
{
    char *text = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(json);
    http_resp_json_text(resp, status, text);
}

void http_resp_json_text(http_resp_t *resp, int status, char *text)
{
    free(resp->body);
    resp->body = text;
    resp->status = status;
    resp->content_type = "application/json";
    if (!resp->body) {
        resp->status = 500;
        resp->body = strdup("{\"error\":\"out of memory\",\"status\":500}");
    }
    resp->body_len = resp->body ? strlen(resp->body) : 0;
}

void http_resp_text(http_resp_t *resp, int status, const char *content_type, const char *text)
{
    free(resp->body);
    resp->body = strdup(text);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->status = resp->body ? status : 500;
    resp->content_type = content_type;
}

void http_resp_header(http_resp_t *resp, const char *name, const char *value)
{
    if (resp->nheaders == HTTP_MAX_HEADERS) {
        log_warn("event=header_dropped name=%s", name);
        return;
    }
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    resp->headers[resp->nheaders][0] = n;
    resp->headers[resp->nheaders][1] = v;
    resp->nheaders++;
}

void http_resp_error(const http_req_t *req, http_resp_t *resp, tassa_err err, const char *message)
{
    if (strncmp(req->path, "/v1/", 4) == 0)
        http_resp_twilio_error(resp, err, message);
    else
        http_resp_fn_error(resp, err, message);
}

static const char *printable(const char *message, char *buf, size_t n);

void http_resp_fn_error(http_resp_t *resp, tassa_err err, const char *message)
{
    char buf[512];
    if (message)
        message = printable(message, buf, sizeof buf);
    int status = tassa_err_status(err);
    http_resp_json(resp, status,
                   json_pack("{s:s, s:i}", "error", message ? message : tassa_strerror(err),
                             "status", status));
}

void http_resp_twilio_error(http_resp_t *resp, tassa_err err, const char *message)
{
    char buf[512];
    if (message)
        message = printable(message, buf, sizeof buf);
    int status = tassa_err_status(err);
    int code = tassa_err_code(err);
    char more[96];
    snprintf(more, sizeof more, "https://www.twilio.com/docs/errors/%d", code);
    http_resp_json(resp, status,
                   json_pack("{s:i, s:s, s:s, s:i}", "code", code, "message",
                             message ? message : tassa_strerror(err), "more_info", more, "status",
                             status));
}

/* libmicrohttpd's unescape step, made a no-op: paths are split on '/' before their segments
 * are decoded (a document name may hold "%2F"), and query values are decoded as forms. */
static size_t keep_raw(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* Finds the route for path: among the routes whose pattern matches it, the most specific
 * ones (most literal segments) win, so `GET /{}/{}` (static files) never hides a 405 of
 * `POST /general/router`. Sets *path_matched when such a route exists but not for this
 * method. Fills req->args with the wildcard segments (borrowed from segs). */
static route_t *match_route(http_server_t *s, const char *method, char **segs, int nseg,
                            http_req_t *req, bool *path_matched)
{
    route_t *best = NULL;
    int best_literals = -1;
    bool best_has_method = false;
    for (int i = 0; i < s->nroutes; i++) {
        route_t *r = &s->routes[i];
        if (r->nseg != nseg)
            continue;
        int literals = 0;
        bool ok = true;
        for (int j = 0; j < nseg && ok; j++) {
            if (r->segments[j]) {
                ok = strcmp(r->segments[j], segs[j]) == 0;
                literals++;
            }
        }
        if (!ok)
            continue;
        bool has_method = strcmp(r->method, "*") == 0 || strcmp(r->method, method) == 0;
        if (literals > best_literals ||
            (literals == best_literals && has_method && !best_has_method)) {
            best = r;
            best_literals = literals;
            best_has_method = has_method;
        }
    }
    *path_matched = best != NULL;
    if (!best || !best_has_method)
        return NULL;
    int nargs = 0;
    for (int j = 0; j < nseg; j++) {
        if (!best->segments[j] && nargs < HTTP_MAX_PATH_ARGS)
            req->args[nargs++] = segs[j];
    }
    return best;
}

/* Decodes %XX in a path segment in place (not '+', which is literal in paths). Returns false
 * when the decoded bytes are no usable name: a NUL ("victim%00x" must never read as "victim")
 * or bytes that are not UTF-8. */
static bool unescape_segment(char *s)
{
    size_t len = MHD_http_unescape(s);
    return params_text_valid(s, len);
}

/* Copies message into buf, each byte of it that is not UTF-8 (a raw byte of the request line
 * echoed back) replaced by '?', so that the JSON error body can always be encoded. */
static const char *printable(const char *message, char *buf, size_t n)
{
    size_t len = strlen(message);
    if (params_utf8_valid(message, len))
        return message;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < n; i++)
        buf[o++] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
    buf[o] = '\0';
    return buf;
}

/* Does method write (create, change or remove nothing by reading)? */
static bool is_write(const char *method)
{
    return !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
}

static bool is_type(const char *ct, const char *want)
{
    return ct && strncasecmp(ct, want, strlen(want)) == 0;
}

/* Parses the body by its content type into req->params. */
static tassa_err parse_body(http_req_t *req, const char *ct, errmsg_t *em)
{
    if (req->body_len == 0)
        return TASSA_OK;
    if (is_type(ct, "application/json"))
        return params_parse_json(req->params, req->body, req->body_len, em);
    if (!ct || is_type(ct, "application/x-www-form-urlencoded"))
        return params_parse_form(req->params, req->body, req->body_len, em);
    if (is_type(ct, "text/plain") || is_type(ct, "multipart/form-data"))
        return err_set(em, TASSA_EINVAL,
                       "unsupported Content-Type; send application/x-www-form-urlencoded or "
                       "application/json");
    return err_set(em, TASSA_EINVAL, "unsupported Content-Type");
}

/* Counts st's request in the metrics, once: when its response is queued, so that a client
 * that has read the answer finds it counted by its next scrape (on_completed counts one that
 * ended without a response). */
static void count_request(conn_state_t *st)
{
    if (st->counted)
        return;
    st->counted = true;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long us = (now.tv_sec - st->start.tv_sec) * 1000000L + (now.tv_nsec - st->start.tv_nsec) / 1000;
    metrics_http(st->method, st->route, st->status, us);
}

static enum MHD_Result send_resp(http_server_t *s, struct MHD_Connection *conn, http_resp_t *resp,
                                 conn_state_t *st)
{
    struct MHD_Response *r = resp->raw;
    if (!r) {
        r = MHD_create_response_from_buffer(resp->body_len, resp->body ? resp->body : (void *)"",
                                            resp->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        resp->body = NULL; /* now owned by libmicrohttpd */
        if (resp->content_type)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    }
    for (int i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
    if (atomic_load(&s->draining)) /* keep-alive clients reconnect, to another instance */
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    st->status = resp->status;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    resp->raw = NULL;
    if (ret == MHD_YES)
        count_request(st);
    return ret;
}

static void resp_clear(http_resp_t *resp)
{
    free(resp->body);
    for (int i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i][0]);
        free(resp->headers[i][1]);
    }
}

http_deferred_t *http_resp_defer(http_resp_t *resp, http_finish_fn finish, void *ctx)
{
    http_deferred_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->finish = finish;
    d->ctx = ctx;
    resp->deferred = d;
    return d;
}

static void deferred_free(http_deferred_t *d)
{
    resp_clear(&d->resp);
    if (d->resp.raw)
        MHD_destroy_response(d->resp.raw);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* One deferred answer fewer to wait for (see http_server_free). */
static void deferred_settled(http_server_t *s)
{
    pthread_mutex_lock(&s->defer_lock);
    if (--s->deferred_open == 0)
        pthread_cond_broadcast(&s->defer_cond);
    pthread_mutex_unlock(&s->defer_lock);
}

void http_deferred_ready(http_deferred_t *d)
{
    pthread_mutex_lock(&d->lock);
    d->ready = true;
    bool suspended = d->suspended, abandoned = d->abandoned;
    struct MHD_Connection *conn = d->conn;
    http_server_t *s = d->server;
    pthread_mutex_unlock(&d->lock);
    /* A suspended connection stays until this resume (libmicrohttpd never ends one, and
     * http_server_free waits for deferred_settled below before stopping it). */
    if (suspended)
        MHD_resume_connection(conn); /* sets a flag and signals the daemon: never blocks */
    /* Suspended: nobody touches d until this resume lets on_request finish it. Not suspended:
     * dispatch sees ready under the lock and answers at once. Abandoned: the connection is
     * gone and nobody else holds d. Either way d is not ours now. */
    if (abandoned) {
        d->finish(d->ctx, &d->resp);
        deferred_free(d);
    }
    if (s)
        deferred_settled(s);
}

/* Completes and sends a ready deferred answer, then frees it (handler thread). */
static enum MHD_Result finish_deferred(http_server_t *s, struct MHD_Connection *conn,
                                       conn_state_t *st)
{
    http_deferred_t *d = st->deferred;
    st->deferred = NULL;
    d->finish(d->ctx, &d->resp);
    enum MHD_Result ret = send_resp(s, conn, &d->resp, st);
    deferred_free(d);
    return ret;
}

/* A request whose handler runs on the writers pool (http_server_offload): it owns the parsed
 * request, and fills its own answer, which offload_finish moves into the deferred one. */
typedef struct {
    http_handler_fn fn;
    void *ctx;
    http_req_t req;
    char *pathcopy;
    char base[300];
    http_resp_t resp;
    http_deferred_t *deferred;
    store_t *defer_store;  /* the store whose writes the answer waits for, or NULL */
    store_waiter_t waiter; /* ... its place in the committer's queue */
    tassa_err durable;     /* ... and whether they lasted */
} offload_t;

/* The handler's writes are durable or gone (store_defer_end): the answer is ready. */
static void offload_durable(void *arg, tassa_err err)
{
    offload_t *o = arg;
    o->durable = err;
    http_deferred_ready(o->deferred);
}

/* The job: the handler on a pool thread (it may block); then the answer is ready, once its
 * writes are durable when they are deferred (the thread moves on meanwhile). */
static void offload_run(void *arg)
{
    offload_t *o = arg;
    if (o->defer_store)
        store_defer_begin(o->defer_store);
    o->fn(o->ctx, &o->req, &o->resp);
    if (o->defer_store)
        store_defer_end(o->defer_store, &o->waiter, offload_durable, o);
    else
        http_deferred_ready(o->deferred);
}

/* Moves the handler's answer into the deferred one (a handler thread). */
static void offload_finish(void *ctx, http_resp_t *resp)
{
    offload_t *o = ctx;
    /* The handler saw its writes succeed, but they did not last. */
    if (o->durable && o->resp.status < 400) {
        resp_clear(&o->resp);
        o->resp = (http_resp_t){0};
        http_resp_twilio_error(&o->resp, o->durable, "the store could not make the change durable");
    }
    resp->status = o->resp.status;
    resp->content_type = o->resp.content_type;
    free(resp->body);
    resp->body = o->resp.body;
    resp->body_len = o->resp.body_len;
    o->resp.body = NULL;
    for (int i = 0; i < o->resp.nheaders; i++) {
        if (resp->nheaders < HTTP_MAX_HEADERS) {
            resp->headers[resp->nheaders][0] = o->resp.headers[i][0];
            resp->headers[resp->nheaders++][1] = o->resp.headers[i][1];
        } else {
            free(o->resp.headers[i][0]);
            free(o->resp.headers[i][1]);
        }
    }
    o->resp.nheaders = 0;
    if (o->resp.raw) {
        resp->raw = o->resp.raw;
        o->resp.raw = NULL;
    }
    params_free(o->req.query);
    params_free(o->req.params);
    free(o->pathcopy);
    free(o);
}

/* Whether a request on path with method runs on the writers pool. */
static bool offloaded(const http_server_t *s, const char *method, const char *path)
{
    if (!s->writers || (!is_write(method) && strcmp(method, "DELETE") != 0))
        return false;
    for (int i = 0; i < s->noffload; i++) {
        if (!strncmp(path, s->offload[i], strlen(s->offload[i])))
            return true;
    }
    return false;
}

/* Runs the handler for a fully received request. */
static enum MHD_Result dispatch(http_server_t *s, struct MHD_Connection *conn, const char *url,
                                const char *method, conn_state_t *st)
{
    http_resp_t resp = {.status = 200, .content_type = "application/json"};
    http_req_t req = {.method = method, .path = url, .conn = conn};
    char *pathcopy = NULL;
    errmsg_t em = {{0}};
    bool is_api = strncmp(url, "/v1/", 4) == 0;
    req.body = st->body ? st->body : "";
    req.body_len = st->len;
    req.query = params_new();
    req.params = params_new();
    pathcopy = strdup(url);
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
    const char *fwd_host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Host");
    if (fwd_host && *fwd_host)
        host = fwd_host; /* behind a proxy: the address the client (or Twilio) used */
    char base[300];
    snprintf(base, sizeof base, "%s://%s", proto && !strcmp(proto, "https") ? "https" : "http",
             host && strlen(host) < 256 ? host : "localhost");
    req.base_url = base;
    if (!req.query || !req.params || !pathcopy) {
        http_resp_fn_error(&resp, TASSA_ENOMEM, NULL);
        goto send;
    }
    if (st->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", s->opts.max_body);
        if (is_api)
            http_resp_twilio_error(&resp, TASSA_ETOOBIG, msg);
        else
            http_resp_fn_error(&resp, TASSA_ETOOBIG, msg);
        goto send;
    }
    char *segs[MAX_SEGMENTS];
    int nseg = split_path(pathcopy, segs);
    bool path_matched = false;
    route_t *r = NULL;
    bool segs_ok = nseg >= 0;
    for (int i = 0; segs_ok && i < nseg; i++)
        segs_ok = unescape_segment(segs[i]);
    if (segs_ok)
        r = match_route(s, method, segs, nseg, &req, &path_matched);
    st->route = r ? r->pattern : NULL;
    if (!segs_ok && nseg >= 0 && is_write(method)) {
        /* A write names what it creates or changes in the path: a bad name is bad input.
         * A read of such a name finds nothing (below: 404), as nothing can be stored so. */
        const char *msg = "a path segment is not valid UTF-8 or holds a NUL byte";
        if (is_api)
            http_resp_twilio_error(&resp, TASSA_EINVAL, msg);
        else
            http_resp_fn_error(&resp, TASSA_EINVAL, msg);
        goto send;
    }
    if (!r) {
        tassa_err err = path_matched ? TASSA_EMETHOD : TASSA_ENOTFOUND;
        char msg[256];
        if (path_matched)
            snprintf(msg, sizeof msg, "Method %s not allowed on %.160s", method, url);
        else
            snprintf(msg, sizeof msg, "The requested resource %.160s was not found", url);
        if (is_api)
            http_resp_twilio_error(&resp, err, msg);
        else
            http_resp_fn_error(&resp, err, msg);
        goto send;
    }
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    tassa_err err =
        st->query ? params_parse_query(req.query, st->query, strlen(st->query), &em) : TASSA_OK;
    if (!err && !r->raw_body)
        err = parse_body(&req, ct, &em);
    req.body_params = req.params->len;
    for (size_t i = 0; !err && i < req.query->len; i++)
        err = params_add(req.params, req.query->items[i].key, strlen(req.query->items[i].key),
                         req.query->items[i].value, strlen(req.query->items[i].value), &em);
    if (err) {
        if (is_api)
            http_resp_twilio_error(&resp, err, err_text(&em, err));
        else
            http_resp_fn_error(&resp, err, err_text(&em, err));
        goto send;
    }
    offload_t *o = offloaded(s, method, url) ? calloc(1, sizeof *o) : NULL;
    if (o && http_resp_defer(&resp, offload_finish, o)) {
        /* The request moves to o; the job starts once the connection is suspended. */
        *o = (offload_t){.fn = r->fn,
                         .ctx = r->ctx,
                         .req = req,
                         .pathcopy = pathcopy,
                         .resp = {.status = 200, .content_type = "application/json"},
                         .deferred = resp.deferred,
                         .defer_store = s->defer_store};
        snprintf(o->base, sizeof o->base, "%s", base);
        o->req.base_url = o->base;
        req.query = req.params = NULL;
        pathcopy = NULL;
    } else {
        free(o);
        o = NULL;
        r->fn(r->ctx, &req, &resp);
    }
    if (resp.deferred) {
        http_deferred_t *d = resp.deferred;
        resp.deferred = NULL;
        d->resp = resp; /* the headers the handler set travel with the answer */
        resp = (http_resp_t){0};
        st->deferred = d;
        pthread_mutex_lock(&d->lock);
        d->conn = conn;
        bool ready = d->ready;
        if (!ready) {
            pthread_mutex_lock(&s->defer_lock);
            s->deferred_open++;
            pthread_mutex_unlock(&s->defer_lock);
            d->server = s;
            MHD_suspend_connection(conn);
            d->suspended = true;
        }
        pthread_mutex_unlock(&d->lock);
        params_free(req.query);
        params_free(req.params);
        free(pathcopy);
        if (o && workpool_submit(s->writers, offload_run, o))
            offload_run(o); /* the pool is full or stopping: here, as without one */
        return ready ? finish_deferred(s, conn, st) : MHD_YES;
    }
send:;
    enum MHD_Result ret = send_resp(s, conn, &resp, st);
    resp_clear(&resp);
    params_free(req.query);
    params_free(req.params);
    free(pathcopy);
    return ret;
}

/* Takes c off the waiting list if it is on it. With wait_lock held. */
static void wait_unlink(http_server_t *s, sock_ctx_t *c)
{
    if (!c->waiting)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->wait_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->wait_tail = c->prev;
    c->prev = c->next = NULL;
    c->waiting = false;
}

/* Puts c at the end of the waiting list, from now. With wait_lock held. */
static void wait_append(http_server_t *s, sock_ctx_t *c)
{
    wait_unlink(s, c);
    clock_gettime(CLOCK_MONOTONIC, &c->since);
    c->prev = s->wait_tail;
    if (s->wait_tail)
        s->wait_tail->next = c;
    else
        s->wait_head = c;
    s->wait_tail = c;
    c->waiting = true;
}

static sock_ctx_t *sock_ctx_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The connection's request headers are complete: its deadline no longer applies. */
static void headers_received(http_server_t *s, struct MHD_Connection *conn)
{
    sock_ctx_t *c = sock_ctx_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&s->wait_lock);
    wait_unlink(s, c);
    pthread_mutex_unlock(&s->wait_lock);
}

static long ms_since(const struct timespec *t, const struct timespec *now)
{
    return (now->tv_sec - t->tv_sec) * 1000L + (now->tv_nsec - t->tv_nsec) / 1000000L;
}

/* The sweeper: libmicrohttpd restarts its idle timeout on every byte, so a client sending one
 * byte a second would hold a connection forever. Every few milliseconds this closes (shutdown;
 * libmicrohttpd then sees the end and frees it) each connection that has waited for its
 * headers longer than the deadline. The list is in waiting order, so it stops at the first
 * one still in time. The fd stays valid while listed: on_connection takes it off the list,
 * under the same lock, before libmicrohttpd closes it. */
static void *sweep_loop(void *arg)
{
    http_server_t *s = arg;
    long timeout = s->opts.header_timeout_ms;
    long tick = timeout / 4 < 250 ? (timeout / 4 > 10 ? timeout / 4 : 10) : 250;
    pthread_mutex_lock(&s->wait_lock);
    while (!s->stop_sweep) {
        struct timespec now, until;
        clock_gettime(CLOCK_MONOTONIC, &now);
        while (s->wait_head && ms_since(&s->wait_head->since, &now) >= timeout) {
            sock_ctx_t *c = s->wait_head;
            shutdown(c->fd, SHUT_RDWR);
            wait_unlink(s, c);
            log_info("event=header_timeout ms=%ld", timeout);
        }
        until = now;
        until.tv_nsec += tick * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->wait_cond, &s->wait_lock, &until);
    }
    pthread_mutex_unlock(&s->wait_lock);
    return NULL;
}

/* libmicrohttpd's connection notifications: a new connection waits for its first request's
 * headers; a closed one leaves the list (before libmicrohttpd closes its fd). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server_t *s = cls;
    sock_ctx_t *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = ci ? calloc(1, sizeof *c) : NULL;
        if (!c)
            return; /* no deadline for this one; the idle timeout still applies */
        c->fd = ci->connect_fd;
        pthread_mutex_lock(&s->wait_lock);
        wait_append(s, c);
        pthread_mutex_unlock(&s->wait_lock);
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
        pthread_mutex_lock(&s->wait_lock);
        wait_unlink(s, c);
        pthread_mutex_unlock(&s->wait_lock);
        free(c);
        *socket_context = NULL;
    }
}

/* Answers 413 through libmicrohttpd, before any of the body is read, for a client that waits
 * for "100 Continue" before it sends the body: it sends none, and the connection closes. */
static enum MHD_Result queue_too_big(http_server_t *s, struct MHD_Connection *conn, const char *url,
                                     conn_state_t *st)
{
    http_resp_t resp = {.status = 413, .content_type = "application/json"};
    char msg[96];
    snprintf(msg, sizeof msg, "request body larger than %zu bytes", s->opts.max_body);
    if (strncmp(url, "/v1/", 4) == 0)
        http_resp_twilio_error(&resp, TASSA_ETOOBIG, msg);
    else
        http_resp_fn_error(&resp, TASSA_ETOOBIG, msg);
    http_resp_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    st->too_big = true;
    st->answered = true;
    st->queued = true;
    enum MHD_Result ret = send_resp(s, conn, &resp, st);
    resp_clear(&resp);
    return ret;
}

/* Writes a complete 413 response straight to the connection's socket, then ends our sending
 * side (FIN), for the one case libmicrohttpd cannot answer itself (see on_request). The
 * socket is idle on our side at that point: libmicrohttpd reads a request only once the
 * previous response is sent. Best effort: a short write only loses the answer, and the
 * connection is closed either way. */
static void write_too_big(http_server_t *s, struct MHD_Connection *conn, const char *url)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    char msg[96], body[320], out[512];
    snprintf(msg, sizeof msg, "request body larger than %zu bytes", s->opts.max_body);
    int status = tassa_err_status(TASSA_ETOOBIG), code = tassa_err_code(TASSA_ETOOBIG);
    if (strncmp(url, "/v1/", 4) == 0)
        snprintf(body, sizeof body,
                 "{\"code\":%d,\"message\":\"%s\",\"more_info\":"
                 "\"https://www.twilio.com/docs/errors/%d\",\"status\":%d}",
                 code, msg, code, status);
    else
        snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%d}", msg, status);
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    if (n > 0 && (size_t)n < sizeof out) {
        ssize_t w = send(ci->connect_fd, out, (size_t)n, MSG_NOSIGNAL);
        (void)w;
        shutdown(ci->connect_fd, SHUT_WR);
    }
}

/* How much more of an oversized body is read (and dropped) after the 413: a client that writes
 * its whole body before it reads (most do) then sees the answer instead of a reset. The
 * header deadline bounds the time this may take (the connection waits on that list again). */
#define LINGER_MAX_BYTES (4u << 20)

/* The 413 for a body past the limit, sent the moment it is known: written to the socket now
 * (libmicrohttpd 0.9 cannot queue an answer once the body has begun), then the connection
 * only drains, up to LINGER_MAX_BYTES or the header deadline, and closes. */
static void answer_too_big(http_server_t *s, struct MHD_Connection *conn, const char *url,
                           conn_state_t *st)
{
    write_too_big(s, conn, url);
    st->too_big = true;
    st->answered = true;
    st->status = 413;
    sock_ctx_t *c = s->opts.header_timeout_ms > 0 ? sock_ctx_of(conn) : NULL;
    if (c) {
        pthread_mutex_lock(&s->wait_lock);
        wait_append(s, c);
        pthread_mutex_unlock(&s->wait_lock);
    }
}

/* The declared body length is over max: Content-Length is all digits and larger, or does not
 * fit in 64 bits. A malformed one is libmicrohttpd's to refuse. */
static bool declared_too_big(const char *cl, size_t max)
{
    if (!cl || !*cl)
        return false;
    unsigned long long n = 0;
    for (const char *p = cl; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (n > (ULLONG_MAX - 9) / 10)
            return true;
        n = n * 10 + (unsigned)(*p - '0');
    }
    return n > max;
}

/* Runs when the request line is in, before libmicrohttpd splits the query into its memory
 * pool (MHD_OPTION_URI_LOG_CALLBACK), and makes the request's conn_state_t, which takes a
 * copy of the query (params_parse_query reads it in dispatch). A target past MAX_TARGET_BYTES or
 * with more than MAX_QUERY_PIECES query pieces is marked refused (400 in on_request; params
 * would refuse so many anyway). Finding H1: libmicrohttpd 0.9.75 keeps every piece, even an
 * empty one, in the connection's pool, and when the pool fills during that split it queues
 * its own 431 but then carries on reading headers, so nothing is sent: no answer at ~500
 * pieces, a hang until the idle timeout from ~600. So before 1.0 (which answers a full pool
 * itself) the query is emptied in place here, in the buffer libmicrohttpd is about to split
 * (its '?' is found before this callback): the pool never holds its pieces. NULL when out of
 * memory (on_request then ends the connection). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    const char *q = strchr(uri, '?');
    size_t pieces = q ? 1 : 0;
    for (const char *p = q; p && *p; p++)
        pieces += *p == '&';
    conn_state_t *st = calloc(1, sizeof *st);
    if (st && strlen(uri) > MAX_TARGET_BYTES)
        st->target_refused = "the URL is longer than " XSTR(MAX_TARGET_BYTES) " bytes";
    else if (st && pieces > MAX_QUERY_PIECES)
        st->target_refused = "the query has more than " XSTR(MAX_QUERY_PIECES) " parameters";
    else if (st && q && !(st->query = strdup(q + 1))) {
        free(st);
        st = NULL;
    }
#if MHD_VERSION < 0x01000000
    if (q)
        ((char *)q)[1] = '\0';
#endif
    return st;
}

/* Answers a refused request target (see on_uri) with a 400 before any body is read; the
 * connection then closes. */
static enum MHD_Result refuse_target(http_server_t *s, struct MHD_Connection *conn, const char *url,
                                     conn_state_t *st)
{
    http_resp_t resp = {.status = 400, .content_type = "application/json"};
    if (strncmp(url, "/v1/", 4) == 0)
        http_resp_twilio_error(&resp, TASSA_EINVAL, st->target_refused);
    else
        http_resp_fn_error(&resp, TASSA_EINVAL, st->target_refused);
    http_resp_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    st->answered = true;
    st->queued = true;
    enum MHD_Result ret = send_resp(s, conn, &resp, st);
    resp_clear(&resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_server_t *s = cls;
    conn_state_t *st = *con_cls;
    if (!st || !st->begun) {
        if (!st) /* on_uri was out of memory: the query is lost */
            return MHD_NO;
        st->begun = true;
        clock_gettime(CLOCK_MONOTONIC, &st->start);
        atomic_fetch_add(&s->inflight, 1);
        snprintf(st->method, sizeof st->method, "%s", method);
        snprintf(st->path, sizeof st->path, "%s", url);
        *con_cls = st;
        headers_received(s, conn);
        if (st->target_refused)
            return refuse_target(s, conn, url, st);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (declared_too_big(cl, s->opts.max_body)) {
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
            if (expect && !strcasecmp(expect, "100-continue"))
                return queue_too_big(s, conn, url, st);
            answer_too_big(s, conn, url, st);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->answered) {
            st->drained += n;
            return st->drained > LINGER_MAX_BYTES ? MHD_NO : MHD_YES;
        }
        if (st->len + n > s->opts.max_body) { /* a chunked body grew past the limit */
            answer_too_big(s, conn, url, st);
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = st->cap ? st->cap : 1024;
            while (cap < st->len + n + 1)
                cap *= 2;
            char *b = realloc(st->body, cap);
            if (!b)
                return MHD_NO;
            st->body = b;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }
    if (st->deferred) /* resumed by http_deferred_ready: the answer is ready */
        return finish_deferred(s, conn, st);
    if (st->answered) /* the 413 was written by hand: end the connection, not the request */
        return st->status == 413 && !st->queued ? MHD_NO : MHD_YES;
    return dispatch(s, conn, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server_t *s = cls;
    conn_state_t *st = *con_cls;
    if (!st)
        return;
    if (!st->begun) { /* made by on_uri; libmicrohttpd refused the request itself */
        free(st->query);
        free(st);
        *con_cls = NULL;
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long us = (now.tv_sec - st->start.tv_sec) * 1000000L + (now.tv_nsec - st->start.tv_nsec) / 1000;
    count_request(st);
    atomic_fetch_sub(&s->inflight, 1);
    if (s->opts.access_log) {
        log_info("event=access method=%s path=%s status=%d bytes_in=%zu us=%ld%s", st->method,
                 st->path, st->status, st->len, us,
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    }
    if (st->deferred) {
        /* Ended before its answer went out (the client gone, or the daemon stopping). A ready
         * answer is ours to free (finish frees its ctx); one not ready yet is left to
         * http_deferred_ready, which then finishes and frees it alone. */
        http_deferred_t *d = st->deferred;
        st->deferred = NULL;
        pthread_mutex_lock(&d->lock);
        bool ready = d->ready;
        d->suspended = false;
        d->abandoned = !ready;
        pthread_mutex_unlock(&d->lock);
        if (ready) {
            d->finish(d->ctx, &d->resp);
            deferred_free(d);
        }
    }
    free(st->body);
    free(st->query);
    free(st);
    *con_cls = NULL;
    /* A kept-alive connection now waits for its next request's headers. */
    sock_ctx_t *c = s->opts.header_timeout_ms > 0 ? sock_ctx_of(conn) : NULL;
    if (c) {
        pthread_mutex_lock(&s->wait_lock);
        wait_append(s, c);
        pthread_mutex_unlock(&s->wait_lock);
    }
}

/* The pool's size: threads, or for 0 one per core and at least 2. */
static unsigned pool_size(int threads)
{
    if (threads > 0)
        return (unsigned)threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 2 ? (unsigned)(cores > 64 ? 64 : cores) : 2;
}

tassa_err http_server_start(http_server_t *s, errmsg_t *em)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->opts.port)};
    if (inet_pton(AF_INET, s->opts.bind_addr, &addr.sin_addr) != 1)
        return err_set(em, TASSA_EINVAL, "bind address %s is not an IPv4 address",
                       s->opts.bind_addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_TURBO | MHD_USE_ITC | /* ITC: MHD_quiesce_daemon when draining */
                     MHD_ALLOW_UPGRADE;            /* WebSocket routes (http/ws.h) */
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->opts.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_THREAD_POOL_SIZE, pool_size(s->opts.threads), MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        s->opts.header_timeout_ms > 0 ? on_connection : NULL, s, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)20000, MHD_OPTION_UNESCAPE_CALLBACK,
        keep_raw, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)POOL_BYTES, MHD_OPTION_END);
    if (s->daemon && s->noffload &&
        !(s->writers =
              workpool_new((int)pool_size(s->opts.writers), WRITERS_QUEUE, "tassa-writer"))) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
        return err_set(em, TASSA_EINTERNAL, "cannot start the writer threads");
    }
    if (!s->daemon) {
        int e = errno;
        return err_set(em, TASSA_EUNAVAIL, "cannot listen on %s:%d: %s", s->opts.bind_addr,
                       s->opts.port,
                       e == EADDRINUSE ? "address already in use"
                       : e             ? strerror(e)
                                       : "in use, or not allowed");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->opts.port;
    if (s->opts.header_timeout_ms > 0) {
        if (pthread_create(&s->sweeper, NULL, sweep_loop, s) != 0)
            return err_set(em, TASSA_EINTERNAL, "cannot start the header deadline thread");
        s->sweeper_started = true;
    }
    return TASSA_OK;
}

void http_server_offload_defer(http_server_t *s, store_t *store)
{
    s->defer_store = store;
}

tassa_err http_server_offload(http_server_t *s, const char *prefix)
{
    if (s->noffload == (int)(sizeof s->offload / sizeof s->offload[0]))
        return TASSA_ELIMIT;
    if (!(s->offload[s->noffload] = strdup(prefix)))
        return TASSA_ENOMEM;
    s->noffload++;
    return TASSA_OK;
}

int http_server_port(const http_server_t *s)
{
    return s->port;
}

void http_server_set_draining(http_server_t *s)
{
    atomic_store(&s->draining, true);
}

bool http_server_draining(const http_server_t *s)
{
    return s && atomic_load(&((http_server_t *)s)->draining);
}

void http_server_quiesce(http_server_t *s)
{
    if (!s->daemon)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int http_server_inflight(const http_server_t *s)
{
    return atomic_load(&((http_server_t *)s)->inflight);
}

void http_server_free(http_server_t *s)
{
    if (!s)
        return;
    if (s->sweeper_started) {
        pthread_mutex_lock(&s->wait_lock);
        s->stop_sweep = true;
        pthread_cond_signal(&s->wait_cond);
        pthread_mutex_unlock(&s->wait_lock);
        pthread_join(s->sweeper, NULL);
    }
    /* Every deferred answer comes (a commit always ends, durable or failed); libmicrohttpd
     * must not be stopped while one of them keeps its connection suspended. */
    pthread_mutex_lock(&s->defer_lock);
    while (s->deferred_open > 0)
        pthread_cond_wait(&s->defer_cond, &s->defer_lock);
    pthread_mutex_unlock(&s->defer_lock);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    workpool_free(s->writers); /* idle by now: every deferred answer was made */
    for (int i = 0; i < s->noffload; i++)
        free(s->offload[i]);
    pthread_mutex_destroy(&s->defer_lock);
    pthread_cond_destroy(&s->defer_cond);
    pthread_mutex_destroy(&s->wait_lock);
    pthread_cond_destroy(&s->wait_cond);
    for (int i = 0; i < s->nroutes; i++) {
        for (int j = 0; j < s->routes[i].nseg; j++)
            free(s->routes[i].segments[j]);
        free(s->routes[i].pattern);
    }
    for (size_t i = 0; i < s->nowned; i++)
        s->owned[i].free_fn(s->owned[i].ctx);
    free(s->owned);
    free(s->bind_addr);
    free(s);
}

tassa_err http_server_own(http_server_t *s, void *ctx, void (*free_fn)(void *))
{
    struct owned *grown = realloc(s->owned, (s->nowned + 1) * sizeof *grown);
    if (!grown) {
        free_fn(ctx);
        return TASSA_ENOMEM;
    }
    s->owned = grown;
    s->owned[s->nowned++] = (struct owned){ctx, free_fn};
    return TASSA_OK;
}

bool http_req_from_loopback(const http_req_t *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

void http_server_lib_versions(char *out, size_t n)
{
    unsigned v = MHD_VERSION;
    snprintf(out, n, "libmicrohttpd %s (built with %x.%x.%x)", MHD_get_version(), (v >> 24) & 0xff,
             (v >> 16) & 0xff, (v >> 8) & 0xff);
}
