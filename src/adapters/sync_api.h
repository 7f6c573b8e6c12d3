/* sync_api.h - the embedded Sync REST API (/v1/Services/...), wire-compatible with Twilio's.
 *
 * Layer: adapters. */
#ifndef TASSA_SYNC_API_H
#define TASSA_SYNC_API_H

#include "base/config.h"
#include "engine/sync/documents.h"
#include "http/server.h"

/* What the handlers use: config for Basic auth and account_sid, sync for the data. Both
 * borrowed. */
typedef struct {
    const config_t *config;
    sync_engine_t *sync;
} sync_api_deps_t;

/* Adds the Sync routes to http. deps (borrowed) must outlive the server: main keeps it.
 * TASSA_ELIMIT/TASSA_ENOMEM if the route table cannot take them. */
tassa_err sync_api_register(http_server_t *http, const sync_api_deps_t *deps);

#endif
