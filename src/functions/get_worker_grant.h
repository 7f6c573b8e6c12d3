/* get_worker_grant.h - /task/get-worker-grant: a teller's Twilio access token for the official
 * twilio-taskrouter Worker (a TaskRouter grant) and twilio-sync (a Sync grant), in the style of
 * the seed's get-sync-grant.
 *
 * OPTIONS (CORS preflight), GET and POST with the caller's `token` (or `Authorization: Bearer`)
 * and `identity`, verified as get-sync-grant verifies them (JWT_SECRET, HS256). The identity is
 * mapped to the one worker of the workspace whose attributes name it:
 *   attributes.identity == identity, or else attributes.contact_uri == "client:" + identity
 *   (Flex's convention for a worker's client identity).
 * Answers 200 {"authorized": true, "workerToken", "workerSid", "workspaceSid", "friendlyName",
 * "identity", "ttl": 3600}: the token carries grants.task_router {workspace_sid, worker_sid,
 * role "worker"} and grants.data_sync {service_sid}, signed with the API key secret as
 * twilio-node's AccessToken signs it (access_token_worker_keyed). Refusals are
 * {"authorized": false, "error", "status"}: 400 without token or identity, 401 for a caller
 * token that does not verify, 404 when no worker names the identity, 409 when two or more do,
 * 503 without a workspace (TASSA_BACKEND=twilio needs WORKSPACE_SID) or API key; back-end
 * failures pass through (502, 503). Works the same on both back ends (workers_list).
 *
 * Layer: functions.
 */
#ifndef TASSA_GET_WORKER_GRANT_H
#define TASSA_GET_WORKER_GRANT_H

#include <jansson.h>

#include "backend/backend.h"
#include "base/config.h"
#include "http/server.h"

/* What the endpoint uses, all borrowed: config (jwt_secret, api_key, api_secret, account_sid,
 * workspace_sid, sync_service_sid, cors_origins) and the back end. */
typedef struct {
    const config_t *config;
    backend_t *backend;
} get_worker_grant_deps_t;

/* The worker of workers (a JSON array of worker resources, borrowed) whose attributes name
 * identity (see above), borrowed from workers. TASSA_ENOTFOUND when none does, TASSA_ECONFLICT
 * when several do at the same rule; the text is in em. Any thread. */
tassa_err get_worker_grant_find(const json_t *workers, const char *identity, const json_t **worker,
                                errmsg_t *em);

/* Adds OPTIONS, GET and POST /task/get-worker-grant to http. deps (and what it points to) must
 * outlive the server. TASSA_ENOMEM, or errors of http_server_routes. */
tassa_err get_worker_grant_register(http_server_t *http, const get_worker_grant_deps_t *deps);

#endif
