/* main.c - the tassa command: serve, user-token, event, credentials, settings. Wiring only.
 *
 * Layer: app. */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "auth/signature.h"
#include "auth/verify_token.h"
#include "backend/embedded.h"
#include "backend/twilio_rest.h"
#include "credentials.h"
#include "demo_traffic.h"
#include "adapters/callback_outbox.h"
#include "adapters/sync_api.h"
#include "adapters/streams.h"
#include "adapters/eventbridge.h"
#include "adapters/twilsock.h"
#include "engine/live/hub.h"
#include "adapters/taskrouter_api.h"
#include "engine/taskrouter/engine.h"
#include "event_sink.h"
#include "functions/get_queue_position.h"
#include "functions/get_sync_grant.h"
#include "functions/get_worker_grant.h"
#include "functions/router.h"
#include "functions/web_config.h"
#include "help.h"
#include "helpers/queue_info.h"
#include "base/buf.h"
#include "base/params.h"
#include "http/server.h"
#include "http/static_files.h"
#include "base/log.h"
#include "base/metrics.h"
#include "ops.h"
#include "store/store.h"
#include "engine/sync/documents.h"
#include "base/sid.h"

#ifndef TASSA_VERSION
#define TASSA_VERSION "0.0.0"
#endif
#ifndef TASSA_LIBJWT_VERSION
#define TASSA_LIBJWT_VERSION "unknown"
#endif

/* What `tassa serve` builds and tears down: the process's long-lived state, held here only
 * (each module gets the few parts it uses, passed in explicitly). */
typedef struct {
    const config_t *config;
    store_t *store;           /* NULL with the twilio back end */
    sync_engine_t *sync;      /* embedded Sync; NULL with the twilio back end */
    tr_engine_t *tr;          /* embedded TaskRouter; NULL with the twilio back end */
    backend_t *backend;       /* what the functions talk to */
    router_state_t *router;   /* /general/router's idempotency and ordering */
    streams_t *streams;       /* live document streams */
    ws_t *ws;                 /* WebSocket connections (http/ws.h) */
    twilsock_t *twilsock;     /* twilio-sync over twilsock at /v3/wsconnect */
    eventbridge_t *eb;        /* twilio-taskrouter's Worker at /v1/wschannels */
    queue_info_t *queue_info; /* queue-status refresher */
    outbox_t *outbox;         /* EventCallbackUrl deliveries (embedded back end) */
    http_server_t *http;
    ops_t *ops; /* metrics census sampler */
} app_t;

/* Loads the configuration and applies `serve` flags from argv[from..]. */
static config_t *load_config(int argc, char **argv, int from)
{
    errmsg_t em = {{0}};
    config_t *c = config_load(NULL, &em);
    if (!c) {
        fprintf(stderr, "tassa: %s\n", em.text);
        return NULL;
    }
    for (int i = from; i < argc; i++) {
        const char *name = argv[i];
        const char *value = NULL;
        const config_setting_t *s = config_setting_find(name);
        bool takes_value = !s || s->kind != SETTING_BOOL;
        if (takes_value && i + 1 < argc)
            value = argv[++i];
        if (config_apply_flag(c, name, value, &em)) {
            fprintf(stderr, "tassa: %s\n", em.text);
            config_free(c);
            return NULL;
        }
    }
    if (config_validate(c, &em)) {
        fprintf(stderr, "tassa: %s\n", em.text);
        config_free(c);
        return NULL;
    }
    log_set_level((log_level_t)c->log_level);
    return c;
}

/* Opens the data file and fills the generated credentials (embedded back end only). */
static store_t *open_store(config_t *c, bool *generated)
{
    errmsg_t em = {{0}};
    store_t *s = store_open(c->data_path, &em);
    if (!s) {
        fprintf(stderr, "tassa: %s\n", em.text);
        return NULL;
    }
    if (credentials_fill(c, s, generated, &em)) {
        fprintf(stderr, "tassa: %s\n", em.text);
        store_close(s);
        return NULL;
    }
    return s;
}

/* Tells a newcomer where to look: the pages, each with a caller token for a demo identity
 * (the teller console's "erin" is the demo's console teller, demo_traffic.h). */
static void print_demo_urls(const config_t *c, int port)
{
    char *dash = verify_token_mint("dashboard", c->jwt_secret, 12 * 3600, time(NULL));
    char *cust = verify_token_mint("demo-customer-1", c->jwt_secret, 12 * 3600, time(NULL));
    char *teller = verify_token_mint("erin", c->jwt_secret, 12 * 3600, time(NULL));
    if (dash && cust && teller)
        printf("\ntassa demo is running. Open the queue dashboard:\n"
               "  http://localhost:%d/?identity=dashboard&token=%s\n"
               "the teller console (serve the customers as Erin: go Available, accept, "
               "complete):\n"
               "  http://localhost:%d/teller.html?identity=erin&token=%s\n"
               "and the page of the first demo customer (arriving within seconds):\n"
               "  http://localhost:%d/customer.html?identity=demo-customer-1"
               "&topic=demo-customer-1&token=%s\n\n",
               port, dash, port, teller, port, cust);
    fflush(stdout);
    free(dash);
    free(cust);
    free(teller);
}

/* Sleeps ms milliseconds. */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* SIGTERM: healthz says "draining" (for drain_delay_ms, so a load balancer moves the traffic),
 * the listener closes, streams are told to reconnect and end, and the requests in flight are
 * answered (for at most drain_timeout_ms). The caller then stops the engines, which flushes
 * the store (its last group commit) and leaves the outbox's rows durable. */
static void drain(app_t *app, int sig)
{
    const config_t *c = app->config;
    log_info("event=draining signal=%d inflight=%d delay_ms=%d", sig,
             http_server_inflight(app->http), c->drain_delay_ms);
    metrics_set(M_DRAINING, 1, NULL);
    http_server_set_draining(app->http);
    if (c->drain_delay_ms > 0)
        sleep_ms(c->drain_delay_ms);
    http_server_quiesce(app->http);
    streams_stop(app->streams);
    eventbridge_quiesce(app->eb); /* a server stop moves no worker offline */
    ws_stop(app->ws);             /* every WebSocket closes with 1001 */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long waited = 0;
    while (http_server_inflight(app->http) > 0 && waited < c->drain_timeout_ms) {
        sleep_ms(5);
        clock_gettime(CLOCK_MONOTONIC, &now);
        waited = (now.tv_sec - t0.tv_sec) * 1000L + (now.tv_nsec - t0.tv_nsec) / 1000000L;
    }
    int left = http_server_inflight(app->http);
    if (left)
        log_warn("event=drain_timeout inflight=%d waited_ms=%ld", left, waited);
    log_info("event=stopping signal=%d waited_ms=%ld", sig, waited);
}

static int cmd_serve(int argc, char **argv)
{
    int rc = 1;
    errmsg_t em = {{0}};
    bool generated = false;
    app_t app = {0};
    /* What the seed's functions, the event sink and ops are built from (they borrow it). */
    router_deps_t router = {0};
    get_queue_position_deps_t qpos = {0};
    get_worker_grant_deps_t wgrant = {0};
    event_sink_t sink = {0};
    ops_deps_t ops = {0};
    demo_traffic_t *demo = NULL;
    hub_t *hub = NULL;
    int claim = -1; /* the data file's lock, held while the engines run */
    config_t *c = load_config(argc, argv, 2);
    if (!c)
        return 2;
    app.config = c;
    /* The demo dashboard signs in as "dashboard": it may read queue-status under ACL. */
    if (c->demo && !c->queue_status_readers &&
        config_fill_secret(&c->queue_status_readers, "dashboard")) {
        fprintf(stderr, "tassa: out of memory\n");
        goto out;
    }
    if (c->backend == BACKEND_TWILIO) {
        /* Stateless functions in front of real Twilio: no data file, no engines. */
        if (!(app.backend = backend_twilio_new(c, &em))) {
            fprintf(stderr, "tassa: %s\n", em.text);
            goto out;
        }
    } else {
        if ((claim = store_claim(c->data_path, &em)) < 0) {
            fprintf(stderr, "tassa: %s\n", em.text);
            goto out;
        }
        if (!(app.store = open_store(c, &generated)))
            goto out;
        if (!(app.sync = sync_engine_new(app.store, c->account_sid, c->sync_service_sid, &em)) ||
            (c->sync_acl >= 0 &&
             sync_service_set_acl(app.sync, c->sync_service_sid, c->sync_acl, &em))) {
            fprintf(stderr, "tassa: %s\n", em.text);
            goto out;
        }
        if (!(app.tr = tr_engine_new(app.store, c->account_sid, &em)) ||
            !(app.outbox = outbox_new(app.store, c->auth_token, 15000, &em))) {
            fprintf(stderr, "tassa: %s\n", em.text);
            goto out;
        }
        if (c->demo && tr_engine_demo(app.tr)) {
            fprintf(stderr, "tassa: cannot add the demo data\n");
            goto out;
        }
        if (config_fill_secret(&c->workspace_sid, tr_workspace_sid(app.tr))) {
            fprintf(stderr, "tassa: out of memory\n");
            goto out;
        }
        sink = (event_sink_t){.router = &router, .outbox = app.outbox, .tr = app.tr};
        tr_engine_set_event_sink(app.tr, event_sink_deliver, &sink);
        tr_engine_set_event_flush(app.tr, event_sink_flush);
        app.backend = backend_embedded_new(c, app.sync, app.tr);
    }
    app.router = router_state_new();
    http_opts_t ho = {.bind_addr = c->bind_addr,
                      .port = c->port,
                      .threads = c->threads,
                      .writers = c->writers,
                      .max_body = c->max_body,
                      .header_timeout_ms = c->header_timeout_ms,
                      .access_log = !c->quiet_access_log};
    app.http = http_server_new(&ho);
    if (!app.backend || !app.router || !app.http) {
        fprintf(stderr, "tassa: out of memory\n");
        goto out;
    }
    router = (router_deps_t){.config = c, .backend = app.backend, .state = app.router};
    qpos = (get_queue_position_deps_t){.config = c, .backend = app.backend};
    wgrant = (get_worker_grant_deps_t){.config = c, .backend = app.backend};
    ops = (ops_deps_t){
        .config = c, .store = app.store, .http = app.http, .backend = app.backend, .tr = app.tr};
    sync_api_deps_t sync_api = {.config = c, .sync = app.sync};
    tr_api_deps_t tr_api = {.config = c, .tr = app.tr}; /* lives until cmd_serve returns */
    if (ops_register(&ops) || get_sync_grant_register(app.http, c) ||
        router_register(app.http, &router) || get_queue_position_register(app.http, &qpos) ||
        get_worker_grant_register(app.http, &wgrant) || web_config_register(app.http, c) ||
        (app.sync && sync_api_register(app.http, &sync_api)) ||
        (app.tr && (tr_api_register(app.http, &tr_api) ||
                    /* TaskRouter writes run on the writers, not on an HTTP thread (Sync
                     * writes and router events need no thread while they are committed) */
                    http_server_offload(app.http, "/v1/Workspaces/")))) {
        fprintf(stderr, "tassa: cannot register routes\n");
        goto out;
    }
    /* A TaskRouter write's thread moves on at once; its answer waits for the group commit. */
    if (app.store)
        http_server_offload_defer(app.http, app.store);
    /* streams-wiring-begin */
    hub_deps_t hub_deps = {.config = c, .sync = app.sync, .heartbeat_ms = c->stream_heartbeat_ms};
    hub = app.sync ? hub_new(&hub_deps) : NULL; /* the twilio back end has no Sync to watch */
    streams_deps_t streams_deps = {.config = c, .hub = hub};
    if ((app.sync && (!hub || hub_start(hub))) || !(app.streams = streams_new(&streams_deps)) ||
        streams_register(app.streams, app.http) || static_files_register(app.http, c)) {
        fprintf(stderr, "tassa: cannot start live streams or the web pages\n");
        goto out;
    }
    /* streams-wiring-end */
    /* ws-wiring-begin */
    ws_opts_t wo = {.max_connections = c->ws_max_connections,
                    .max_per_identity = c->ws_max_per_identity,
                    .max_message = c->ws_max_message,
                    .queue_bytes = c->ws_queue_bytes,
                    .ping_ms = c->ws_ping_ms};
    twilsock_deps_t ts_deps = {.config = c, .sync = app.sync, .hub = hub};
    if (!(app.ws = ts_deps.ws = ws_new(&wo)) ||
        (hub &&
         (!(app.twilsock = twilsock_new(&ts_deps)) || twilsock_register(app.twilsock, app.http)))) {
        fprintf(stderr, "tassa: cannot start the WebSocket endpoints\n");
        goto out;
    }
    eventbridge_deps_t eb_deps = {.config = c, .tr = app.tr, .ws = app.ws, .store = app.store};
    if (app.tr && (!(app.eb = sink.bridge = eventbridge_new(&eb_deps)) ||
                   eventbridge_register(app.eb, app.http) ||
                   http_server_offload(app.http, "/v1/wschannels"))) { /* its POSTs write */
        fprintf(stderr, "tassa: cannot start the TaskRouter event bridge\n");
        goto out;
    }
    /* ws-wiring-end */
    /* Block the stop signals before any thread starts, so that only sigwait sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    app.queue_info =
        queue_info_start(app.backend, c->queue_status_max_entries, 50, c->queue_status_readers);
    router.queue_info = app.queue_info; /* before the first event: the engine starts below */
    if (!app.queue_info || (app.tr && tr_engine_start(app.tr)) ||
        (app.outbox && outbox_start(app.outbox))) {
        fprintf(stderr, "tassa: cannot start the background threads\n");
        goto out;
    }
    if (app.outbox)
        metrics_set(M_OUTBOX_DEPTH, (double)outbox_pending(app.outbox), NULL);
    if (!(app.ops = ops_start(&ops, 1000))) {
        fprintf(stderr, "tassa: cannot start the metrics sampler\n");
        goto out;
    }
    if (http_server_start(app.http, &em)) {
        fprintf(stderr, "tassa: %s\n", em.text);
        goto out;
    }
    if (c->demo && app.tr && !(demo = demo_traffic_start(app.tr, 1000))) {
        fprintf(stderr, "tassa: cannot start the demo traffic\n");
        goto out;
    }
    if (!c->verify_signature)
        log_warn("event=signature_check_disabled path=/general/router "
                 "reason=\"TASSA_VERIFY_SIGNATURE=false\"");
    log_info("event=listening url=http://%s:%d backend=%s data=%s workspace=%s", c->bind_addr,
             http_server_port(app.http), app.backend->ops->name,
             app.store ? store_where(app.store) : "-", c->workspace_sid ? c->workspace_sid : "-");
    if (generated)
        log_info("event=credentials_generated data=%s hint=\"tassa credentials prints them; "
                 "tassa user-token alice mints a caller token\"",
                 store_where(app.store));
    if (c->demo)
        print_demo_urls(c, http_server_port(app.http));
    int sig = 0;
    sigwait(&stop, &sig);
    drain(&app, sig);
    rc = 0;
out:
    streams_stop(app.streams); /* before http_server_free: no suspended connection may remain */
    eventbridge_quiesce(app.eb);
    ws_stop(app.ws); /* likewise no upgraded socket */
    http_server_free(app.http);
    ws_free(app.ws);
    twilsock_free(app.twilsock);
    /* The producers of changes stop before what they write to. */
    demo_traffic_stop(demo);
    ops_stop(app.ops);
    tr_engine_stop(app.tr);          /* its dispatcher calls the router, queueInfo and the outbox */
    eventbridge_free(app.eb);        /* after the dispatcher and every socket */
    queue_info_stop(app.queue_info); /* it reads the engine through the back end */
    tr_engine_free(app.tr);
    outbox_free(app.outbox);
    /* streams-teardown-begin */
    streams_free(app.streams);
    hub_free(hub);
    /* streams-teardown-end */
    router_state_free(app.router);
    backend_free(app.backend);
    sync_engine_free(app.sync);
    store_close(app.store);
    store_claim_release(claim);
    config_free(c);
    return rc;
}

/* Loads the configuration and, for the embedded back end, the data file's credentials. */
static config_t *load_with_credentials(int nflags, char **flags)
{
    config_t *c = load_config(nflags, flags, 0);
    if (!c)
        return NULL;
    if (c->backend == BACKEND_EMBEDDED) {
        store_t *s = open_store(c, NULL);
        if (!s) {
            config_free(c);
            return NULL;
        }
        store_close(s);
    }
    return c;
}

static int cmd_user_token(int argc, char **argv)
{
    long ttl = 3600;
    const char *identity = NULL;
    char *flags[16];
    int nflags = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ttl") && i + 1 < argc) {
            if (!params_parse_long(argv[++i], 1, 31536000, &ttl)) {
                fprintf(stderr, "tassa: --ttl must be a number of seconds from 1 to 31536000\n");
                return 2;
            }
        } else if (argv[i][0] != '-' && !identity) {
            identity = argv[i];
        } else if (nflags < 16) {
            flags[nflags++] = argv[i];
        }
    }
    if (!identity) {
        fprintf(stderr, "usage: tassa user-token IDENTITY [--ttl SECONDS] [--data FILE]\n");
        return 2;
    }
    config_t *c = load_with_credentials(nflags, flags);
    if (!c)
        return 2;
    char *token = verify_token_mint(identity, c->jwt_secret, ttl, time(NULL));
    config_free(c);
    if (!token) {
        fprintf(stderr, "tassa: cannot mint a token for that identity\n");
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

static int cmd_credentials(int argc, char **argv)
{
    config_t *c = load_config(argc - 2, argv + 2, 0);
    if (!c)
        return 2;
    /* With the twilio back end the values are the configured ones: there is no data file. */
    if (c->backend == BACKEND_EMBEDDED) {
        store_t *s = open_store(c, NULL);
        if (!s) {
            config_free(c);
            return 2;
        }
        char *ws = NULL;
        if (!c->workspace_sid && store_meta_get(s, "tr_workspace_sid", &ws) == TASSA_OK)
            config_fill_secret(&c->workspace_sid, ws);
        free(ws);
        store_close(s);
    }
    const char *unset = "";
    printf("ACCOUNT_SID=%s\nAPI_KEY=%s\nAPI_SECRET=%s\nAUTH_TOKEN=%s\nJWT_SECRET=%s\n",
           c->account_sid ? c->account_sid : unset, c->api_key ? c->api_key : unset,
           c->api_secret ? c->api_secret : unset, c->auth_token ? c->auth_token : unset,
           c->jwt_secret ? c->jwt_secret : unset);
    if (c->workspace_sid) /* made at the first `tassa serve` */
        printf("WORKSPACE_SID=%s\n", c->workspace_sid);
    config_free(c);
    return 0;
}

/* Posts TYPE and Key=Value pairs, form-encoded and signed, to /general/router. */
static int cmd_event(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tassa event TYPE [Key=Value ...]\n");
        return 2;
    }
    char *flags[16];
    int nflags = 0;
    for (int i = 3; i < argc && nflags < 15; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        flags[nflags++] = argv[i];
        argv[i] = NULL;
        if (i + 1 < argc) {
            flags[nflags++] = argv[i + 1];
            argv[++i] = NULL;
        }
    }
    config_t *c = load_with_credentials(nflags, flags);
    if (!c)
        return 2;
    int rc = 1;
    params_t *p = params_new();
    char *reply = NULL;
    if (!p)
        goto out;
    char sid[SID_LEN + 1];
    sid_new("EV", sid);
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    params_add(p, "EventType", 9, argv[2], strlen(argv[2]), NULL);
    params_add(p, "Sid", 3, sid, strlen(sid), NULL);
    params_add(p, "Timestamp", 9, ts, strlen(ts), NULL);
    for (int i = 3; i < argc; i++) {
        if (!argv[i])
            continue;
        const char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "tassa: %s is not Key=Value\n", argv[i]);
            rc = 2;
            goto out;
        }
        params_add(p, argv[i], (size_t)(eq - argv[i]), eq + 1, strlen(eq + 1), NULL);
    }
    char url[1024];
    if (c->public_url)
        snprintf(url, sizeof url, "%s/general/router", c->public_url);
    else
        snprintf(url, sizeof url, "http://localhost:%d/general/router", c->port);
    errmsg_t em = {{0}};
    long status = 0;
    tassa_err err = outbox_post_signed(url, c->auth_token, p, 0, &status, &reply, &em);
    if (reply)
        fputs(reply, stdout);
    printf("\n");
    if (err == TASSA_EUPSTREAM)
        fprintf(stderr, "tassa: %s\n", em.text);
    else if (err)
        fprintf(stderr, "tassa: out of memory\n");
    rc = !err && status < 300 ? 0 : 1;
out:
    free(reply);
    params_free(p);
    config_free(c);
    return rc;
}

/* Asks the running server's /task/get-worker-grant for IDENTITY's worker token, as the teller
 * console does, with a short-lived caller JWT minted here: the mapping is the server's own. */
static int cmd_worker_token(int argc, char **argv)
{
    const char *identity = NULL;
    char *flags[16];
    int nflags = 0;
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] != '-' && !identity)
            identity = argv[i];
        else if (nflags < 15) {
            flags[nflags++] = argv[i];
            if (i + 1 < argc && argv[i][0] == '-')
                flags[nflags++] = argv[++i];
        }
    }
    if (!identity) {
        fprintf(stderr, "usage: tassa worker-token IDENTITY [--port N] [--data FILE]\n");
        return 2;
    }
    config_t *c = load_with_credentials(nflags, flags);
    if (!c)
        return 2;
    int rc = 1;
    char *reply = NULL;
    json_t *answer = NULL;
    params_t *p = params_new();
    char *caller = verify_token_mint(identity, c->jwt_secret, 300, time(NULL));
    if (!p || !caller || params_add(p, "identity", 8, identity, strlen(identity), NULL) ||
        params_add(p, "token", 5, caller, strlen(caller), NULL)) {
        fprintf(stderr, "tassa: cannot mint a caller token for that identity\n");
        goto out;
    }
    char url[1024];
    if (c->public_url)
        snprintf(url, sizeof url, "%s/task/get-worker-grant", c->public_url);
    else
        snprintf(url, sizeof url, "http://localhost:%d/task/get-worker-grant", c->port);
    errmsg_t em = {{0}};
    long status = 0;
    tassa_err err = outbox_post_signed(url, c->auth_token, p, 0, &status, &reply, &em);
    if (err) {
        fprintf(stderr, "tassa: %s (is tassa serve running on that port?)\n",
                err == TASSA_EUPSTREAM ? em.text : "out of memory");
        goto out;
    }
    answer = reply ? json_loads(reply, 0, NULL) : NULL;
    const char *token = json_string_value(json_object_get(answer, "workerToken"));
    if (status != 200 || !token) {
        const char *why = json_string_value(json_object_get(answer, "error"));
        fprintf(stderr, "tassa: the server refused (%ld): %s\n", status, why ? why : "no reason");
        goto out;
    }
    printf("%s\n", token);
    rc = 0;
out:
    json_decref(answer);
    free(reply);
    free(caller);
    params_free(p);
    config_free(c);
    return rc;
}

static int cmd_settings(int argc, char **argv);

/* Copies the live data file to FILE (SQLite's online backup API); the server keeps running. */
static int cmd_backup(int argc, char **argv)
{
    const char *file = NULL;
    bool force = false;
    char *flags[16];
    int nflags = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--force"))
            force = true;
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else if (nflags < 15) {
            flags[nflags++] = argv[i];
            if (i + 1 < argc && argv[i][0] == '-')
                flags[nflags++] = argv[++i];
        }
    }
    if (!file) {
        fprintf(stderr, "usage: tassa backup FILE [--data FILE] [--force]\n");
        return 2;
    }
    config_t *c = load_config(nflags, flags, 0);
    if (!c)
        return 2;
    errmsg_t em = {{0}};
    int rc = 0;
    if (c->backend != BACKEND_EMBEDDED) {
        fprintf(stderr, "tassa: backup copies the embedded back end's data file; with "
                        "TASSA_BACKEND=twilio the data lives in Twilio\n");
        rc = 2;
    } else if (store_backup(c->data_path, file, force, &em)) {
        fprintf(stderr, "tassa: %s\n", em.text);
        rc = 1;
    } else {
        printf("backed up %s to %s\n", c->data_path, file);
    }
    config_free(c);
    return rc;
}

static const help_flag_t USER_TOKEN_FLAGS[] = {
    {"--ttl", "SECONDS", "lifetime of the token, from 1 to 31536000", "3600", "600"},
};
static const char *const USER_TOKEN_SETTINGS[] = {"JWT_SECRET", "TASSA_DATA", "TASSA_BACKEND",
                                                  NULL};
static const char *const EVENT_SETTINGS[] = {"AUTH_TOKEN", "PORT", "PUBLIC_URL", "TASSA_DATA",
                                             NULL};
static const char *const WORKER_TOKEN_SETTINGS[] = {"JWT_SECRET", "PORT", "PUBLIC_URL",
                                                    "TASSA_DATA", NULL};
static const char *const CREDENTIALS_SETTINGS[] = {"ACCOUNT_SID", "API_KEY",    "API_SECRET",
                                                   "AUTH_TOKEN",  "JWT_SECRET", "WORKSPACE_SID",
                                                   "TASSA_DATA",  NULL};
static const char *const BACKUP_SETTINGS[] = {"TASSA_DATA", NULL};
static const help_flag_t BACKUP_FLAGS[] = {
    {"--force", NULL, "replace FILE when it exists", "off", NULL},
};
static const help_flag_t SETTINGS_FLAGS[] = {
    {"--env", NULL, "print the configuration file tassa.env (every setting, commented)", NULL,
     NULL},
    {"--man", NULL, "print the manual page tassa.1 (roff)", NULL, NULL},
    {"--markdown", NULL, "print the README's settings table", NULL, NULL},
};

static const help_command_t COMMANDS[] = {
    {"serve", "[--port N] [--data FILE] [--backend embedded|twilio] [--demo] [...]",
     "serve the API, the seed's functions and the web pages",
     "Runs until SIGTERM or SIGINT, then drains: /healthz answers \"draining\", requests in "
     "flight are answered, live streams are told to reconnect, and the store is flushed.",
     "tassa serve --port 8080 --data /var/lib/tassa/tassa.db", NULL, 0, true, NULL, true,
     cmd_serve},
    {"user-token", "IDENTITY [--ttl SECONDS] [--data FILE]",
     "mint a caller JWT (HS256 with JWT_SECRET) for IDENTITY, as the pages expect", NULL,
     "tassa user-token alice --ttl 600", USER_TOKEN_FLAGS, 1, true, USER_TOKEN_SETTINGS, false,
     cmd_user_token},
    {"event", "TYPE [Key=Value ...] [--port N] [--data FILE]",
     "post a TaskRouter event, signed with AUTH_TOKEN as Twilio signs it, to /general/router", NULL,
     "tassa event reservation.created TaskSid=WT123 Topic=customer-42 --port 3000", NULL, 0, true,
     EVENT_SETTINGS, false, cmd_event},
    {"worker-token", "IDENTITY [--port N] [--data FILE]",
     "print the worker token (TaskRouter + Sync grants) that /task/get-worker-grant gives IDENTITY",
     "Asks the running server, as the teller console does, with a caller JWT minted for IDENTITY: "
     "the worker is the one whose attributes.identity (or contact_uri client:IDENTITY) is "
     "IDENTITY. For scripts that drive the official twilio-taskrouter Worker.",
     "tassa worker-token erin --port 3000", NULL, 0, true, WORKER_TOKEN_SETTINGS, false,
     cmd_worker_token},
    {"credentials", "[--data FILE]",
     "print the credentials of the data file (embedded) or the configured ones (twilio)",
     "One NAME=VALUE line each, for a client such as the twilio npm package.",
     "tassa credentials --data /var/lib/tassa/tassa.db", NULL, 0, true, CREDENTIALS_SETTINGS, false,
     cmd_credentials},
    {"backup", "FILE [--data FILE] [--force]",
     "copy the data file, while the server runs, into FILE (SQLite's online backup API)",
     "The copy is consistent: it holds every write acknowledged before the backup began. To "
     "restore, stop the server and put the copy in place of the data file (see README).",
     "tassa backup /var/backups/tassa-$(date +%F).db --data /var/lib/tassa/tassa.db", BACKUP_FLAGS,
     1, true, BACKUP_SETTINGS, false, cmd_backup},
    {"settings", "[--env | --man | --markdown]", "print every setting with its meaning and default",
     "The configuration file, the manual page and the README's table are generated by it.",
     "tassa settings --env > /etc/tassa/tassa.env", SETTINGS_FLAGS, 3, false, NULL, false,
     cmd_settings},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static int cmd_settings(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[2], "--env"))
        help_env_file(stdout);
    else if (argc > 2 && !strcmp(argv[2], "--man"))
        help_man(stdout, COMMANDS, NCOMMANDS, TASSA_VERSION);
    else if (argc > 2 && !strcmp(argv[2], "--markdown"))
        help_markdown(stdout);
    else
        help_command(stdout, &COMMANDS[0]);
    return 0;
}

/* The version of each library at run time, and (in parentheses) the one tassa was built with. */
static void print_version(void)
{
    char mhd[128], sqlite[128], curl[128];
    http_server_lib_versions(mhd, sizeof mhd);
    store_lib_versions(sqlite, sizeof sqlite);
    twilio_rest_lib_versions(curl, sizeof curl);
    printf("tassa %s\n"
           "%s\n"
           "jansson %s (built with %s)\n"
           "libjwt (built with %s; it reports no run-time version)\n"
           "%s\n"
           "%s\n"
           "%s (built with %s)\n",
           TASSA_VERSION, mhd, jansson_version_str(), JANSSON_VERSION, TASSA_LIBJWT_VERSION, sqlite,
           curl, OpenSSL_version(OPENSSL_VERSION), OPENSSL_VERSION_TEXT);
}

/* Checks argv[2..] against the flags cmd takes; prints its help for --help. Returns -1 to go
 * on, else the exit status. */
static int check_flags(const help_command_t *cmd, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help_command(stdout, cmd);
            return 0;
        }
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        if (!help_accepts(cmd, argv[i])) {
            const char *near = help_suggest_flag(cmd, argv[i]);
            if (near)
                fprintf(stderr, "tassa %s: unknown flag %s; did you mean %s?\n", cmd->name, argv[i],
                        near);
            else
                fprintf(stderr, "tassa %s: unknown flag %s (see tassa %s --help)\n", cmd->name,
                        argv[i], cmd->name);
            return 2;
        }
        if (help_takes_value(cmd, argv[i])) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tassa %s: %s needs a value (see tassa %s --help)\n", cmd->name,
                        argv[i], cmd->name);
                return 2;
            }
            i++;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        if (argc >= 3 && !strcmp(argv[1], "help")) {
            for (size_t i = 0; i < NCOMMANDS; i++) {
                if (!strcmp(argv[2], COMMANDS[i].name)) {
                    help_command(stdout, &COMMANDS[i]);
                    return 0;
                }
            }
        }
        help_overview(argc < 2 ? stderr : stdout, COMMANDS, NCOMMANDS, TASSA_VERSION);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        print_version();
        return 0;
    }
    const help_command_t *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS && !cmd; i++) {
        if (!strcmp(argv[1], COMMANDS[i].name))
            cmd = &COMMANDS[i];
    }
    if (!cmd) {
        const char *names[NCOMMANDS + 2];
        for (size_t i = 0; i < NCOMMANDS; i++)
            names[i] = COMMANDS[i].name;
        names[NCOMMANDS] = "--version";
        names[NCOMMANDS + 1] = "--help";
        const char *near = config_suggest(argv[1], names, NCOMMANDS + 2);
        if (near)
            fprintf(stderr, "tassa: unknown command %s; did you mean %s?\n", argv[1], near);
        else
            fprintf(stderr, "tassa: unknown command %s (see tassa --help)\n", argv[1]);
        return 2;
    }
    int rc = check_flags(cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (twilio_rest_global_init()) {
        fprintf(stderr, "tassa: cannot start libcurl\n");
        return 1;
    }
    rc = cmd->run(argc, argv);
    twilio_rest_global_cleanup();
    return rc;
}
