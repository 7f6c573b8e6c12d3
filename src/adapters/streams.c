/* streams.c - the Server-Sent Events transport of the live-update hub, over suspended
 * libmicrohttpd connections.
 *
 * Design. The hub (engine/live/hub.c) holds the queues; this file only moves their events to
 * the socket. A connection is a hub sink: libmicrohttpd's content reader takes the next event
 * with hub_sub_next, frames it as SSE (`id:`, `event:`, `data:` lines around the event's JSON,
 * which is shared, not copied) and copies the frame into libmicrohttpd's buffer across as many
 * reads as it takes. When the queue is empty the hub parks the sink, which suspends the
 * connection, and wakes it, which resumes it, both under the hub's lock, so that a resume
 * always follows its suspend (resuming a connection that is not suspended is undefined
 * behaviour in libmicrohttpd). MHD_resume_connection only sets a flag and signals an eventfd;
 * it never blocks, which is why it may run under that lock.
 *
 * Lifetime. A connection's state belongs to its MHD response: the response's free callback
 * (run by libmicrohttpd on a pool thread when the connection ends, before it closes the
 * socket) closes the subscription and frees the state. A dropped subscriber's socket is shut
 * down (not closed: libmicrohttpd owns the descriptor) by the hub's abort callback while the
 * subscription is still open, so the descriptor cannot have been closed and reused yet.
 *
 * Layer: adapters.
 */
#include "adapters/streams.h"

#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "base/params.h"
#include "http/cors.h"

#define BLOCK_SIZE 16384
/* The kernel send buffer of a stream socket. Left to autotuning it may grow to megabytes per
 * connection, which both costs memory at thousands of streams and hides a stalled client from
 * the bounded queue; small, the queue is where a slow client shows. */
#define STREAM_SNDBUF 65536

/* What every stream opens with: EventSource's reconnect delay, and a comment. */
static const char HELLO[] = "retry: 1000\n: tassa stream\n\n";

struct streams {
    streams_deps_t deps;
};

/* One stream: the hub's subscription and the frame being sent. */
typedef struct {
    struct MHD_Connection *conn;
    int fd;
    hub_sub_t *sub;
    const hub_msg_t *msg; /* the event being sent (a hub reference), or NULL */
    char head[96];        /* its `id:` / `event:` / `data:` lines */
    const char *part[3];  /* head, data, tail */
    size_t len[3];
    int at;     /* the part being sent; 3 once the frame is out */
    size_t off; /* bytes of part[at] already sent */
} conn_t;

/* The hub's sink callbacks (hub lock held: nothing here blocks). */
static void sink_park(void *sink)
{
    conn_t *c = sink;
    MHD_suspend_connection(c->conn);
}

static void sink_wake(void *sink)
{
    conn_t *c = sink;
    MHD_resume_connection(c->conn);
}

/* Shuts the socket down so that libmicrohttpd ends the connection even if the peer never
 * reads. */
static void sink_abort(void *sink)
{
    conn_t *c = sink;
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
}

/* Has the peer of a parked stream hung up? libmicrohttpd does not watch suspended sockets,
 * so without this a closed stream would hold its slot until a write fails. poll with a zero
 * timeout never blocks (the subscription is open, so the descriptor is too). */
static bool sink_gone(void *sink)
{
    const conn_t *c = sink;
    struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
    return c->fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static const hub_sink_ops_t SINK = {
    .transport = "sse",
    .park = sink_park,
    .wake = sink_wake,
    .abort = sink_abort,
    .gone = sink_gone,
};

/* Makes m (a hub reference, now c's) the frame to send. */
static void frame_set(conn_t *c, const hub_msg_t *m)
{
    const char *name = hub_event_name(m->kind);
    int n;
    if (!name)
        n = snprintf(c->head, sizeof c->head, ": ping");
    else if (m->id >= 0)
        n = snprintf(c->head, sizeof c->head, "id: %" PRId64 "\nevent: %s\ndata: ", m->id, name);
    else
        n = snprintf(c->head, sizeof c->head, "event: %s\ndata: ", name);
    c->msg = m;
    c->part[0] = c->head;
    c->len[0] = (size_t)n;
    c->part[1] = m->data;
    c->len[1] = name ? m->data_len : 0;
    c->part[2] = "\n\n";
    c->len[2] = 2;
    c->at = 0;
    c->off = 0;
}

/* Copies what is left of the frame into buf (at most max bytes); releases the event once it
 * is all out. Returns the bytes copied. */
static size_t frame_copy(conn_t *c, char *buf, size_t max)
{
    size_t n = 0;
    while (c->at < 3 && n < max) {
        size_t k = c->len[c->at] - c->off;
        if (k > max - n)
            k = max - n;
        memcpy(buf + n, c->part[c->at] + c->off, k);
        n += k;
        c->off += k;
        if (c->off == c->len[c->at]) {
            c->at++;
            c->off = 0;
        }
    }
    if (c->at == 3 && c->msg) {
        hub_msg_release(c->msg);
        c->msg = NULL;
    }
    return n;
}

/* libmicrohttpd's content reader: the rest of the current frame, then the next events, until
 * buf is full or the queue is empty (then the hub parks the connection). */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
    conn_t *c = cls;
    size_t n = 0;
    for (;;) {
        n += frame_copy(c, buf + n, max - n);
        if (n == max)
            return (ssize_t)n;
        const hub_msg_t *m;
        switch (hub_sub_next(c->sub, n == 0, &m)) {
        case HUB_NEXT_EVENT: frame_set(c, m); break;
        case HUB_NEXT_EMPTY: /* 0 only when parked: never a busy loop */ return (ssize_t)n;
        case HUB_NEXT_END: return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
        case HUB_NEXT_ABORT: return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

/* Frees a stream's state and closes its subscription. Accepts NULL. */
static void conn_free(conn_t *c)
{
    if (!c)
        return;
    hub_sub_close(c->sub);
    hub_msg_release(c->msg);
    free(c);
}

/* libmicrohttpd's free callback: the connection is done with the response, so with c. */
static void conn_release(void *cls)
{
    conn_free(cls);
}

/* A stream's state for req, with the hello frame ready. NULL on OOM. */
static conn_t *conn_new(const http_req_t *req)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->conn = req->conn;
    c->fd = -1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        c->fd = ci->connect_fd;
    c->part[0] = HELLO;
    c->len[0] = sizeof HELLO - 1;
    c->part[1] = c->part[2] = "";
    return c;
}

/* The sync token of the request: Bearer header first, then ?token=. Borrowed. */
static const char *request_token(const http_req_t *req)
{
    const char *auth = http_req_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7])
        return auth + 7;
    return params_get_nonempty(req->query, "token");
}

int64_t streams_parse_last_id(const char *v)
{
    /* strict: digits only, as every number tassa reads (params_parse_long takes "-0") */
    if (!v || *v < '0' || *v > '9')
        return -1;
    long n;
    if (!params_parse_long(v, 0, LONG_MAX, &n))
        return -1;
    return (int64_t)n;
}

/* The resume point: Last-Event-ID header or ?lastEventId=; -1 when absent or malformed. */
static int64_t request_last_id(const http_req_t *req)
{
    const char *v = http_req_header(req, "Last-Event-ID");
    if (!v || !*v)
        v = params_get_nonempty(req->query, "lastEventId");
    return streams_parse_last_id(v);
}

/* Checks that streams can run and the request's token. On failure the error is already in
 * resp. */
static tassa_err authorise(streams_t *s, const http_req_t *req, http_resp_t *resp, hub_grant_t *g)
{
    errmsg_t em = {{0}};
    tassa_err err;
    if (!s->deps.hub) {
        err = TASSA_EUNAVAIL;
        http_resp_twilio_error(resp, err, "Live streams need the embedded back end");
        return err;
    }
    const char *token = request_token(req);
    if (!token) {
        err = TASSA_EUNAUTH;
        http_resp_twilio_error(resp, err,
                               "A sync token is required (Authorization: Bearer "
                               "<token> or ?token=<token>)");
        return err;
    }
    if ((err = hub_authorise(s->deps.hub, token, req->args[0], g, &em)))
        http_resp_twilio_error(resp, err, err_text(&em, err));
    return err;
}

/* Hands c to libmicrohttpd as the response; on failure frees c and answers 500. */
static void start_response(streams_t *s, conn_t *c, http_req_t *req, http_resp_t *resp)
{
    if (c->fd >= 0) {
        int sndbuf = STREAM_SNDBUF;
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_SIZE,
                                                               read_events, c, conn_release);
    if (!r) {
        conn_free(c);
        http_resp_twilio_error(resp, TASSA_ENOMEM, NULL);
        return;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    cors_apply(req, resp, s->deps.config->cors_origins);
    resp->status = 200;
    resp->raw = r;
}

/* Where the documents' URLs point: the configured public URL, else as the client called. */
static const char *base_url(const streams_t *s, const http_req_t *req)
{
    return s->deps.config->public_url ? s->deps.config->public_url : req->base_url;
}

/* GET /v1/Services/{S}/Documents/{D}/Stream and GET /v1/Services/{S}/Stream */
static void handle_stream(streams_t *s, http_req_t *req, http_resp_t *resp, bool doc)
{
    hub_grant_t g = {0};
    errmsg_t em = {{0}};
    tassa_err err;
    if (authorise(s, req, resp, &g))
        return;
    conn_t *c = conn_new(req);
    if (!c) {
        http_resp_twilio_error(resp, TASSA_ENOMEM, NULL);
        goto out;
    }
    int64_t last_id = request_last_id(req);
    if (doc)
        err = hub_subscribe_doc(s->deps.hub, &g, req->args[1], last_id, base_url(s, req), &SINK, c,
                                &c->sub, &em);
    else
        err = hub_subscribe_service(s->deps.hub, &g, last_id, base_url(s, req), &SINK, c, &c->sub,
                                    &em);
    if (err) {
        conn_free(c);
        http_resp_twilio_error(resp, err, err_text(&em, err));
        goto out;
    }
    start_response(s, c, req, resp);
out:
    hub_grant_clear(&g);
}

static void handle_doc_stream(void *ctx, http_req_t *req, http_resp_t *resp)
{
    handle_stream(ctx, req, resp, true);
}

static void handle_svc_stream(void *ctx, http_req_t *req, http_resp_t *resp)
{
    handle_stream(ctx, req, resp, false);
}

streams_t *streams_new(const streams_deps_t *deps)
{
    streams_t *s = calloc(1, sizeof *s);
    if (s)
        s->deps = *deps;
    return s;
}

tassa_err streams_register(streams_t *s, http_server_t *http)
{
    tassa_err err =
        http_server_route(http, "GET", "/v1/Services/{}/Documents/{}/Stream", handle_doc_stream, s);
    if (!err)
        err = http_server_route(http, "GET", "/v1/Services/{}/Stream", handle_svc_stream, s);
    return err;
}

void streams_stop(streams_t *s)
{
    if (s)
        hub_stop(s->deps.hub);
}

void streams_free(streams_t *s)
{
    free(s);
}
