/* taskrouter_api.h - the embedded TaskRouter REST API (/v1/Workspaces/...), wire-compatible with
 * Twilio's for the subset the engine implements (see model.h and stats.h).
 *
 * Layer: adapters.
 */
#ifndef TASSA_TR_API_H
#define TASSA_TR_API_H

#include "base/config.h"
#include "engine/taskrouter/engine.h"
#include "http/server.h"

/* What the TaskRouter handlers use, all borrowed. config gives the Basic auth credentials
 * (API_KEY:API_SECRET or ACCOUNT_SID:AUTH_TOKEN, as Twilio's) and the account SID; tr is the
 * engine (NULL: every route answers 503, TaskRouter is not embedded). */
typedef struct {
    const config_t *config;
    tr_engine_t *tr;
} tr_api_deps_t;

/* Adds the TaskRouter routes to http (before http_server_start). deps is borrowed and must
 * outlive the server, as must what it points to. Handlers run on the HTTP pool threads.
 * TASSA_ELIMIT/TASSA_ENOMEM if the route table cannot take them. */
tassa_err tr_api_register(http_server_t *http, const tr_api_deps_t *deps);

#endif
