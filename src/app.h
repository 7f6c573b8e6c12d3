/* app.h - the server context: everything a request handler may reach.
 *
 * Built by main at start-up and torn down at exit; handlers receive it as their ctx. It is
 * the only place that holds the process's long-lived state (no other globals).
 *
 * Layer: app.
 */
#ifndef TASSA_APP_H
#define TASSA_APP_H

#include "base/config.h"
#include "engine/sync/documents.h"
#include "http/server.h"
#include "store/store.h"

struct backend;
struct tr_engine;
struct router_state;
struct streams;
struct queue_info;
struct outbox;
struct ops;

typedef struct app {
    const config_t *config;
    store_t *store;                /* NULL with the twilio back end */
    sync_engine_t *sync;           /* embedded Sync; NULL with the twilio back end */
    struct tr_engine *tr;          /* embedded TaskRouter; NULL with the twilio back end */
    struct backend *backend;       /* what the functions talk to */
    struct router_state *router;   /* /general/router's idempotency and ordering */
    struct streams *streams;       /* live document streams */
    struct queue_info *queue_info; /* queue-status refresher */
    struct outbox *outbox;         /* EventCallbackUrl deliveries (embedded back end) */
    http_server_t *http;
    struct ops *ops; /* metrics census sampler */
} app_t;

#endif
