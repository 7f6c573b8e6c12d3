/* ws.c - WebSocket connections: libmicrohttpd upgrades, libwslay framing, one epoll thread.
 *
 * Design. The route's HTTP handler checks the handshake and answers 101 with an upgrade
 * response; libmicrohttpd then hands over the socket (on_upgrade, on a pool thread), which
 * goes on the `incoming` list. The I/O thread adopts it: a libwslay server context, the
 * socket in its epoll set, on_open. From then on only the I/O thread touches the libwslay
 * context and the socket: libwslay reads and writes through recv_cb / send_cb (non-blocking;
 * EAGAIN is libwslay's WOULDBLOCK) and answers pings and close frames itself.
 *
 * Other threads reach a connection only through its `pending` queue, its flags and the dirty
 * list, all under ws_t.lock: ws_send appends a copy of the message, ws_close and ws_wake set a
 * flag, and each puts the connection on the dirty list and signals the eventfd. The I/O
 * thread takes the dirty list, runs on_wake, moves the pending messages into libwslay (which
 * copies them), and writes. Callbacks never run with the lock held.
 *
 * A connection's queued bytes are its pending messages plus what libwslay still holds
 * (wslay_event_get_queued_msg_length, refreshed after each write): ws_send past queue_bytes
 * drops the connection.
 *
 * Lifetime. A connection ends on the I/O thread (conn_destroy): off epoll, on_close, off the
 * dirty list, then MHD_upgrade_action(CLOSE) gives the socket back to libmicrohttpd, which
 * closes it and completes the request.
 *
 * Layer: http.
 */
#include "http/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "base/log.h"
#include "base/params.h"

/* The two lists here (open connections, pending upgrades) are doubly linked through the
 * nodes' prev and next, newest first: push at the head, unlink from anywhere. */
#define LIST_PUSH(head, n)                                                                         \
    do {                                                                                           \
        (n)->prev = NULL;                                                                          \
        (n)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (n);                                                                    \
        (head) = (n);                                                                              \
    } while (0)
#define LIST_UNLINK(head, n)                                                                       \
    do {                                                                                           \
        if ((n)->prev)                                                                             \
            (n)->prev->next = (n)->next;                                                           \
        else                                                                                       \
            (head) = (n)->next;                                                                    \
        if ((n)->next)                                                                             \
            (n)->next->prev = (n)->prev;                                                           \
    } while (0)

#define MAX_ROUTES 8
#define SNDBUF     65536 /* small, so that a slow reader shows in our queue (see streams.c) */
#define WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct pmsg {
    struct pmsg *next;
    uint8_t opcode;
    size_t len;
    uint8_t data[];
} pmsg_t;

typedef struct {
    ws_t *ws;
    http_server_t *http;
    const ws_handler_t *h;
    void *ctx;
} ws_route_t;

/* What the HTTP handler hands to on_upgrade: the route and the request's arguments. */
typedef struct upgrade {
    struct upgrade *prev, *next; /* ws_t.upgrades, under the lock */
    ws_route_t *route;
    char *args[HTTP_MAX_PATH_ARGS];
    params_t *query;
} upgrade_t;

struct ws_conn {
    ws_t *ws;
    const ws_handler_t *h;
    void *hctx, *data;
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    wslay_event_context_ptr ev;
    char *extra; /* bytes libmicrohttpd read past the headers, served first */
    size_t extra_len, extra_off;
    char *args[HTTP_MAX_PATH_ARGS];
    params_t *query;
    char *identity;
    /* under ws_t.lock */
    pmsg_t *q_head, *q_tail;
    size_t q_bytes, wslay_bytes;
    bool wake, close_req, dropped, closed, dirty;
    uint16_t close_code;
    char close_reason[124];
    struct ws_conn *dirty_next;
    struct ws_conn *in_next; /* incoming list */
    /* I/O thread only */
    struct ws_conn *prev, *next;
    bool opened, io_failed, ping_out, close_pending, close_queued;
    const char *why; /* why it ends, for the debug log */
    uint16_t pending_code;
    char pending_reason[124];
    int64_t last_ping_ms, close_ms;
    uint32_t mask;
};

struct ws {
    ws_opts_t o;
    pthread_mutex_t lock;
    int epfd, evfd;
    pthread_t io;
    bool started;
    /* under lock */
    ws_conn_t *incoming, *dirty;
    upgrade_t *upgrades;
    int count;
    bool stopping, io_done;
    /* I/O thread */
    ws_conn_t *conns;
    ws_route_t routes[MAX_ROUTES];
    int nroutes;
    atomic_bool stop_called;
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void signal_io(ws_t *ws)
{
    uint64_t one = 1;
    ssize_t w = write(ws->evfd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already non-zero, the thread wakes anyway */
}

/* Puts c on the dirty list (lock held). */
static void mark_dirty(ws_t *ws, ws_conn_t *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = ws->dirty;
    ws->dirty = c;
}

/* True when the comma-separated header value v holds token (case-insensitive). */
static bool has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *end = v;
        while (*end && *end != ',')
            end++;
        const char *e = end;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - v) == n && strncasecmp(v, token, n) == 0)
            return true;
        v = end;
    }
    return false;
}

static bool b64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

tassa_err ws_check_upgrade(const char *method, const char *upgrade, const char *connection,
                           const char *version, const char *key, char accept[WS_ACCEPT_LEN + 1],
                           errmsg_t *em)
{
    accept[0] = '\0';
    if (!method || strcmp(method, "GET") != 0)
        return err_set(em, TASSA_EINVAL, "a WebSocket upgrade is a GET request");
    if (!has_token(upgrade, "websocket"))
        return err_set(em, TASSA_EINVAL, "this resource needs an Upgrade: websocket request");
    if (!has_token(connection, "upgrade"))
        return err_set(em, TASSA_EINVAL, "a WebSocket upgrade needs Connection: Upgrade");
    if (!version || !*version)
        return err_set(em, TASSA_EINVAL, "Sec-WebSocket-Version is missing");
    if (strcmp(version, "13") != 0)
        return err_set(em, TASSA_ECONFLICT, "only Sec-WebSocket-Version 13 is supported");
    /* 16 bytes in base64: 22 characters and "==" */
    if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return err_set(em, TASSA_EINVAL, "Sec-WebSocket-Key must be 16 bytes in base64");
    for (int i = 0; i < 22; i++)
        if (!b64_char(key[i]))
            return err_set(em, TASSA_EINVAL, "Sec-WebSocket-Key must be 16 bytes in base64");
    unsigned char raw[20];
    if (EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
        return err_set(em, TASSA_EINVAL, "Sec-WebSocket-Key must be 16 bytes in base64");
    char text[24 + sizeof WS_GUID];
    memcpy(text, key, 24);
    memcpy(text + 24, WS_GUID, sizeof WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return err_set(em, TASSA_EINTERNAL, "SHA-1 is not available");
    EVP_EncodeBlock((unsigned char *)accept, md, 20);
    return TASSA_OK;
}

/* ---- libwslay callbacks (I/O thread) ---- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    ws_conn_t *c = user;
    if (c->extra_off < c->extra_len) {
        size_t n = c->extra_len - c->extra_off;
        if (n > len)
            n = len;
        memcpy(buf, c->extra + c->extra_off, n);
        c->extra_off += n;
        return (ssize_t)n;
    }
    ssize_t r;
    do
        r = recv(c->fd, buf, len, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        return r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
        c->io_failed = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    ws_conn_t *c = user;
    ssize_t r;
    do
        r = send(c->fd, data, len, MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
    while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
        c->io_failed = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    (void)ctx;
    ws_conn_t *c = user;
    if (arg->opcode == WSLAY_PONG) {
        c->ping_out = false;
    } else if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        bool closing;
        pthread_mutex_lock(&c->ws->lock);
        closing = c->close_req || c->dropped;
        pthread_mutex_unlock(&c->ws->lock);
        if (!closing && c->h->on_message)
            c->h->on_message(c->hctx, c, arg->opcode == WSLAY_BINARY_FRAME, arg->msg,
                             arg->msg_length);
    }
}

static const struct wslay_event_callbacks CALLBACKS = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = msg_cb,
};

/* ---- connections (I/O thread) ---- */

static void pmsg_free_all(pmsg_t *m)
{
    while (m) {
        pmsg_t *n = m->next;
        free(m);
        m = n;
    }
}

static void upgrade_free(upgrade_t *u)
{
    if (!u)
        return;
    for (int i = 0; i < HTTP_MAX_PATH_ARGS; i++)
        free(u->args[i]);
    params_free(u->query);
    free(u);
}

/* Frees a connection that never reached the I/O thread's list (or has left it). */
static void conn_free(ws_conn_t *c)
{
    if (!c)
        return;
    if (c->ev)
        wslay_event_context_free(c->ev);
    pmsg_free_all(c->q_head);
    for (int i = 0; i < HTTP_MAX_PATH_ARGS; i++)
        free(c->args[i]);
    params_free(c->query);
    free(c->identity);
    free(c->extra);
    if (c->urh)
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(c);
}

/* Ends c: off epoll and the list, on_close, off the dirty list, socket back to
 * libmicrohttpd. */
static void conn_destroy(ws_t *ws, ws_conn_t *c)
{
    log_debug("event=ws_closed reason=%s code_sent=%d code_received=%d", c->why ? c->why : "closed",
              c->ev ? wslay_event_get_status_code_sent(c->ev) : 0,
              c->ev ? wslay_event_get_status_code_received(c->ev) : 0);
    epoll_ctl(ws->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    LIST_UNLINK(ws->conns, c);
    pthread_mutex_lock(&ws->lock);
    c->closed = true;
    pthread_mutex_unlock(&ws->lock);
    if (c->opened && c->h->on_close)
        c->h->on_close(c->hctx, c);
    pthread_mutex_lock(&ws->lock);
    for (ws_conn_t **p = &ws->dirty; *p; p = &(*p)->dirty_next)
        if (*p == c) {
            *p = c->dirty_next;
            break;
        }
    ws->count--;
    pthread_mutex_unlock(&ws->lock);
    shutdown(c->fd, SHUT_RDWR);
    conn_free(c);
}

/* Watches c for reading while libwslay wants to read, for writing while it has output. */
static void update_mask(ws_t *ws, ws_conn_t *c)
{
    uint32_t m = 0;
    if (wslay_event_want_read(c->ev))
        m |= EPOLLIN;
    if (wslay_event_want_write(c->ev))
        m |= EPOLLOUT;
    if (m == c->mask)
        return;
    struct epoll_event e = {.events = m | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(ws->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->mask = m;
}

/* Queues the close frame asked for once every message before it is out: libwslay sends
 * control frames ahead of queued messages, and nothing after a close. */
static void try_close(ws_conn_t *c)
{
    if (!c->close_pending || c->close_queued || wslay_event_get_queued_msg_count(c->ev) > 0)
        return;
    c->close_queued = true;
    c->close_ms = mono_ms();
    wslay_event_queue_close(c->ev, c->pending_code, (const uint8_t *)c->pending_reason,
                            strlen(c->pending_reason));
}

/* Writes what libwslay can; false when c is finished (error, or the close handshake done). */
static bool conn_flush(ws_t *ws, ws_conn_t *c)
{
    if (wslay_event_want_write(c->ev) && wslay_event_send(c->ev) != 0) {
        c->why = "send_failed";
        return false;
    }
    if (c->close_pending && !c->close_queued) {
        try_close(c);
        if (wslay_event_want_write(c->ev) && wslay_event_send(c->ev) != 0) {
            c->why = "send_failed";
            return false;
        }
    }
    size_t q = wslay_event_get_queued_msg_length(c->ev);
    pthread_mutex_lock(&ws->lock);
    c->wslay_bytes = q;
    pthread_mutex_unlock(&ws->lock);
    if (c->io_failed || (!wslay_event_want_read(c->ev) && !wslay_event_want_write(c->ev)))
        return false;
    update_mask(ws, c);
    return true;
}

/* A slow client's queue overflowed: its pending messages go, a close 1008 goes out ahead of
 * what libwslay still holds (libwslay sends control frames first and nothing after a close),
 * nothing more is read, and the connection ends once the close is out or WS_CLOSE_WAIT_MS
 * later. False when c is to be destroyed now. */
static bool drop(ws_t *ws, ws_conn_t *c)
{
    if (c->close_queued && c->why)
        return conn_flush(ws, c);
    log_info("event=ws_dropped reason=slow_client");
    pthread_mutex_lock(&ws->lock);
    pmsg_t *m = c->q_head;
    c->q_head = c->q_tail = NULL;
    c->q_bytes = 0;
    pthread_mutex_unlock(&ws->lock);
    pmsg_free_all(m);
    c->why = "slow_client";
    c->close_ms = mono_ms();
    c->close_pending = true;
    if (!c->close_queued) {
        c->close_queued = true;
        const char reason[] = "send queue full";
        wslay_event_queue_close(c->ev, 1008, (const uint8_t *)reason, sizeof reason - 1);
    }
    wslay_event_shutdown_read(c->ev);
    return conn_flush(ws, c);
}

/* Runs c's wake, moves its pending messages and close into libwslay, writes. False when c is
 * to be destroyed. */
static bool conn_service(ws_t *ws, ws_conn_t *c)
{
    pthread_mutex_lock(&ws->lock);
    bool wake = c->wake;
    c->wake = false;
    bool dropped = c->dropped;
    pthread_mutex_unlock(&ws->lock);
    if (dropped)
        return drop(ws, c);
    if (wake && c->h->on_wake)
        c->h->on_wake(c->hctx, c);
    pthread_mutex_lock(&ws->lock);
    pmsg_t *m = c->q_head;
    c->q_head = c->q_tail = NULL;
    c->q_bytes = 0;
    bool close_req = c->close_req && !c->close_queued;
    uint16_t code = c->close_code;
    char reason[sizeof c->close_reason];
    memcpy(reason, c->close_reason, sizeof reason);
    dropped = c->dropped;
    pthread_mutex_unlock(&ws->lock);
    for (pmsg_t *p = m; p && !dropped; p = p->next) {
        struct wslay_event_msg msg = {.opcode = p->opcode, .msg = p->data, .msg_length = p->len};
        wslay_event_queue_msg(c->ev, &msg); /* fails only once a close is queued: dropped */
    }
    pmsg_free_all(m);
    if (dropped)
        return drop(ws, c);
    if (close_req && !c->close_pending) {
        c->close_pending = true;
        c->close_ms = mono_ms();
        c->pending_code = code;
        memcpy(c->pending_reason, reason, sizeof c->pending_reason);
    }
    return conn_flush(ws, c);
}

/* Takes the connections upgraded since the last round onto the I/O thread. */
static void adopt(ws_t *ws)
{
    pthread_mutex_lock(&ws->lock);
    ws_conn_t *in = ws->incoming;
    ws->incoming = NULL;
    pthread_mutex_unlock(&ws->lock);
    while (in) {
        ws_conn_t *c = in;
        in = c->in_next;
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (wslay_event_context_server_init(&c->ev, &CALLBACKS, c) != 0 ||
            epoll_ctl(ws->epfd, EPOLL_CTL_ADD, c->fd, &e) != 0) {
            pthread_mutex_lock(&ws->lock);
            ws->count--;
            pthread_mutex_unlock(&ws->lock);
            conn_free(c);
            continue;
        }
        c->mask = EPOLLIN;
        wslay_event_config_set_max_recv_msg_length(c->ev, ws->o.max_message);
        LIST_PUSH(ws->conns, c);
        c->last_ping_ms = mono_ms();
        c->opened = true;
        if (c->h->on_open)
            c->h->on_open(c->hctx, c);
        /* the bytes that came with the request, then whatever the socket has */
        if (wslay_event_recv(c->ev) != 0 || !conn_service(ws, c))
            conn_destroy(ws, c);
    }
}

/* Services every connection on the dirty list, until none is left (bounded rounds). */
static void service_dirty(ws_t *ws)
{
    for (int round = 0; round < 8; round++) {
        pthread_mutex_lock(&ws->lock);
        ws_conn_t *d = ws->dirty;
        ws->dirty = NULL;
        pthread_mutex_unlock(&ws->lock);
        if (!d)
            return;
        /* The taken chain's members keep their dirty flag until each is serviced, so that a
         * concurrent mark_dirty cannot relink them into the new list and cut the chain. Only
         * the connection being serviced can be destroyed, after its next was read. */
        while (d) {
            ws_conn_t *c = d;
            pthread_mutex_lock(&ws->lock);
            d = c->dirty_next;
            c->dirty = false;
            pthread_mutex_unlock(&ws->lock);
            if (!conn_service(ws, c))
                conn_destroy(ws, c);
        }
    }
}

/* Pings, pong and close deadlines, on_tick. */
static void tick(ws_t *ws, int64_t now)
{
    ws_conn_t *next;
    for (ws_conn_t *c = ws->conns; c; c = next) {
        next = c->next;
        if (c->close_pending && now - c->close_ms >= WS_CLOSE_WAIT_MS) {
            c->why = "close_timeout";
            conn_destroy(ws, c);
            continue;
        }
        if (now - c->last_ping_ms >= ws->o.ping_ms) {
            if (c->ping_out) {
                log_info("event=ws_dropped reason=no_pong");
                conn_destroy(ws, c);
                continue;
            }
            struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
            if (wslay_event_queue_msg(c->ev, &ping) == 0)
                c->ping_out = true;
            c->last_ping_ms = now;
            if (!conn_flush(ws, c)) {
                conn_destroy(ws, c);
                continue;
            }
        }
        if (c->h->on_tick)
            c->h->on_tick(c->hctx, c, now);
    }
    service_dirty(ws); /* what the ticks sent */
}

static void *io_loop(void *arg)
{
    ws_t *ws = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    int64_t next_tick = mono_ms() + WS_TICK_MS, stop_by = 0;
    for (;;) {
        struct epoll_event evs[64];
        int64_t now = mono_ms();
        int wait = next_tick > now ? (int)(next_tick - now) : 0;
        int n = epoll_wait(ws->epfd, evs, 64, wait);
        for (int i = 0; i < n; i++) {
            ws_conn_t *c = evs[i].data.ptr;
            if (!c) {
                uint64_t v;
                ssize_t r = read(ws->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            bool ok = true;
            if ((evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) &&
                !wslay_event_want_read(c->ev)) {
                ok = false; /* the peer is gone and nothing more is read: no busy loop */
                c->why = "peer_gone";
            } else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
                ok = wslay_event_recv(c->ev) == 0 && !c->io_failed;
                if (!ok)
                    c->why = "recv_failed";
            }
            if (ok)
                ok = conn_service(ws, c);
            if (!ok) {
                /* c may be on later entries of evs: mark them done */
                for (int j = i + 1; j < n; j++)
                    if (evs[j].data.ptr == c)
                        evs[j].data.ptr = NULL, evs[j].events = 0;
                conn_destroy(ws, c);
            }
        }
        adopt(ws);
        service_dirty(ws);
        now = mono_ms();
        if (now >= next_tick) {
            tick(ws, now);
            next_tick = now + WS_TICK_MS;
        }
        pthread_mutex_lock(&ws->lock);
        bool stopping = ws->stopping;
        pthread_mutex_unlock(&ws->lock);
        if (stopping) {
            if (!stop_by) {
                stop_by = now + WS_CLOSE_WAIT_MS;
                for (ws_conn_t *c = ws->conns; c; c = c->next)
                    ws_close(c, 1001, "server stopping");
                next_tick = now + 50;
            } else if (!ws->conns || now >= stop_by) {
                break;
            } else {
                next_tick = now + 50 < next_tick ? now + 50 : next_tick;
            }
        }
    }
    while (ws->conns)
        conn_destroy(ws, ws->conns);
    pthread_mutex_lock(&ws->lock);
    ws->io_done = true;
    ws_conn_t *in = ws->incoming;
    ws->incoming = NULL;
    pthread_mutex_unlock(&ws->lock);
    while (in) {
        ws_conn_t *c = in;
        in = c->in_next;
        pthread_mutex_lock(&ws->lock);
        ws->count--;
        pthread_mutex_unlock(&ws->lock);
        conn_free(c);
    }
    return NULL;
}

/* ---- the upgrade (libmicrohttpd's pool threads) ---- */

static void on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    (void)connection;
    (void)con_cls;
    upgrade_t *u = cls;
    ws_t *ws = u->route->ws;
    ws_conn_t *c = calloc(1, sizeof *c);
    pthread_mutex_lock(&ws->lock);
    LIST_UNLINK(ws->upgrades, u);
    pthread_mutex_unlock(&ws->lock);
    if (c && extra_in_size && !(c->extra = malloc(extra_in_size))) {
        free(c);
        c = NULL;
    }
    if (!c) {
        upgrade_free(u);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    if (extra_in_size)
        memcpy(c->extra, extra_in, extra_in_size);
    c->extra_len = extra_in_size;
    c->ws = ws;
    c->h = u->route->h;
    c->hctx = u->route->ctx;
    c->fd = sock;
    c->urh = urh;
    memcpy(c->args, u->args, sizeof c->args);
    c->query = u->query;
    memset(u->args, 0, sizeof u->args);
    u->query = NULL;
    upgrade_free(u);
    int fl = fcntl(sock, F_GETFL);
    if (fl >= 0)
        fcntl(sock, F_SETFL, fl | O_NONBLOCK);
    int sndbuf = SNDBUF;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    pthread_mutex_lock(&ws->lock);
    bool refuse = ws->stopping || ws->io_done || ws->count >= ws->o.max_connections;
    if (!refuse) {
        ws->count++;
        c->in_next = ws->incoming;
        ws->incoming = c;
    }
    pthread_mutex_unlock(&ws->lock);
    if (refuse) {
        conn_free(c);
        return;
    }
    signal_io(ws);
}

static void handle_upgrade(void *ctx, http_req_t *req, http_resp_t *resp)
{
    ws_route_t *r = ctx;
    ws_t *ws = r->ws;
    char accept[WS_ACCEPT_LEN + 1];
    errmsg_t em = {{0}};
    tassa_err err = ws_check_upgrade(req->method, http_req_header(req, "Upgrade"),
                                     http_req_header(req, "Connection"),
                                     http_req_header(req, "Sec-WebSocket-Version"),
                                     http_req_header(req, "Sec-WebSocket-Key"), accept, &em);
    if (err == TASSA_ECONFLICT) {
        http_resp_json(resp, 426,
                       json_pack("{s:s, s:i}", "error", err_text(&em, err), "status", 426));
        http_resp_header(resp, "Sec-WebSocket-Version", "13");
        return;
    }
    if (err) {
        http_resp_error(req, resp, err, err_text(&em, err));
        return;
    }
    pthread_mutex_lock(&ws->lock);
    bool busy = ws->count >= ws->o.max_connections;
    bool stopping = ws->stopping || ws->io_done;
    pthread_mutex_unlock(&ws->lock);
    if (stopping || http_server_draining(r->http)) {
        http_resp_error(req, resp, TASSA_EUNAVAIL, "the server is stopping");
        return;
    }
    if (busy) {
        http_resp_error(req, resp, TASSA_EUNAVAIL, "too many WebSocket connections");
        return;
    }
    upgrade_t *u = calloc(1, sizeof *u);
    bool ok = u && (u->query = params_new());
    for (int i = 0; ok && i < HTTP_MAX_PATH_ARGS; i++)
        if (req->args[i] && !(u->args[i] = strdup(req->args[i])))
            ok = false;
    for (size_t i = 0; ok && i < req->query->len; i++)
        ok = !params_add(u->query, req->query->items[i].key, strlen(req->query->items[i].key),
                         req->query->items[i].value, strlen(req->query->items[i].value), NULL);
    struct MHD_Response *mr = ok ? MHD_create_response_for_upgrade(on_upgrade, u) : NULL;
    if (!mr) {
        upgrade_free(u);
        http_resp_error(req, resp, TASSA_ENOMEM, NULL);
        return;
    }
    u->route = r;
    pthread_mutex_lock(&ws->lock);
    LIST_PUSH(ws->upgrades, u);
    pthread_mutex_unlock(&ws->lock);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(mr, "Sec-WebSocket-Accept", accept);
    resp->status = MHD_HTTP_SWITCHING_PROTOCOLS;
    resp->raw = mr;
}

/* ---- public ---- */

ws_t *ws_new(const ws_opts_t *opts)
{
    ws_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->o = *opts;
    ws->epfd = epoll_create1(EPOLL_CLOEXEC);
    ws->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&ws->lock, NULL);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    if (ws->epfd < 0 || ws->evfd < 0 || epoll_ctl(ws->epfd, EPOLL_CTL_ADD, ws->evfd, &e) != 0 ||
        pthread_create(&ws->io, NULL, io_loop, ws) != 0) {
        ws_free(ws);
        return NULL;
    }
    ws->started = true;
    return ws;
}

tassa_err ws_route(ws_t *ws, http_server_t *http, const char *pattern, const ws_handler_t *h,
                   void *ctx)
{
    if (ws->nroutes == MAX_ROUTES)
        return TASSA_ELIMIT;
    ws_route_t *r = &ws->routes[ws->nroutes];
    *r = (ws_route_t){.ws = ws, .http = http, .h = h, .ctx = ctx};
    tassa_err err = http_server_route(http, "GET", pattern, handle_upgrade, r);
    if (!err)
        ws->nroutes++;
    return err;
}

tassa_err ws_send(ws_conn_t *c, bool binary, const void *data, size_t len)
{
    ws_t *ws = c->ws;
    pmsg_t *m = malloc(sizeof *m + (len ? len : 1));
    if (!m)
        return TASSA_ENOMEM;
    m->next = NULL;
    m->opcode = binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    tassa_err err = TASSA_OK;
    pthread_mutex_lock(&ws->lock);
    if (c->closed || c->dropped || c->close_req) {
        err = TASSA_EUNAVAIL;
    } else if (c->q_bytes + c->wslay_bytes + len > ws->o.queue_bytes) {
        c->dropped = true;
        mark_dirty(ws, c);
        err = TASSA_ELIMIT;
    } else {
        if (c->q_tail)
            c->q_tail->next = m;
        else
            c->q_head = m;
        c->q_tail = m;
        c->q_bytes += len;
        mark_dirty(ws, c);
        m = NULL;
    }
    pthread_mutex_unlock(&ws->lock);
    free(m);
    if (err != TASSA_EUNAVAIL)
        signal_io(ws);
    return err;
}

void ws_close(ws_conn_t *c, uint16_t code, const char *reason)
{
    ws_t *ws = c->ws;
    pthread_mutex_lock(&ws->lock);
    if (!c->close_req && !c->closed) {
        c->close_req = true;
        c->close_code = code;
        snprintf(c->close_reason, sizeof c->close_reason, "%.120s", reason ? reason : "");
        mark_dirty(ws, c);
    }
    pthread_mutex_unlock(&ws->lock);
    signal_io(ws);
}

void ws_wake(ws_conn_t *c)
{
    ws_t *ws = c->ws;
    pthread_mutex_lock(&ws->lock);
    if (!c->closed) {
        c->wake = true;
        mark_dirty(ws, c);
    }
    pthread_mutex_unlock(&ws->lock);
    signal_io(ws);
}

tassa_err ws_set_identity(ws_conn_t *c, const char *identity)
{
    if (c->identity)
        return TASSA_EINVAL;
    int n = 0;
    for (ws_conn_t *o = c->ws->conns; o; o = o->next)
        if (o != c && o->identity && strcmp(o->identity, identity) == 0)
            n++;
    if (n >= c->ws->o.max_per_identity)
        return TASSA_ELIMIT;
    if (!(c->identity = strdup(identity)))
        return TASSA_ENOMEM;
    return TASSA_OK;
}

void ws_conn_set_data(ws_conn_t *c, void *data)
{
    c->data = data;
}

void *ws_conn_data(const ws_conn_t *c)
{
    return c->data;
}

const char *ws_conn_arg(const ws_conn_t *c, int i)
{
    return i >= 0 && i < HTTP_MAX_PATH_ARGS ? c->args[i] : NULL;
}

const char *ws_conn_query(const ws_conn_t *c, const char *name)
{
    return c->query ? params_get(c->query, name) : NULL;
}

int ws_count(ws_t *ws)
{
    pthread_mutex_lock(&ws->lock);
    int n = ws->count;
    pthread_mutex_unlock(&ws->lock);
    return n;
}

void ws_stop(ws_t *ws)
{
    if (!ws || !ws->started || atomic_exchange(&ws->stop_called, true))
        return;
    pthread_mutex_lock(&ws->lock);
    ws->stopping = true;
    pthread_mutex_unlock(&ws->lock);
    signal_io(ws);
    pthread_join(ws->io, NULL);
}

void ws_free(ws_t *ws)
{
    if (!ws)
        return;
    ws_stop(ws);
    while (ws->upgrades) {
        upgrade_t *u = ws->upgrades;
        ws->upgrades = u->next;
        upgrade_free(u);
    }
    if (ws->epfd >= 0)
        close(ws->epfd);
    if (ws->evfd >= 0)
        close(ws->evfd);
    pthread_mutex_destroy(&ws->lock);
    free(ws);
}
