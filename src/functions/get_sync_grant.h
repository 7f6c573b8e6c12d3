/* get_sync_grant.h - the seed's /task/get-sync-grant: a Twilio access token with a Sync
 * grant, for a caller whose own JWT (JWT_SECRET, HS256) names the identity it asks for.
 *
 * Layer: functions.
 */
#ifndef TASSA_GET_SYNC_GRANT_H
#define TASSA_GET_SYNC_GRANT_H

#include "base/config.h"
#include "http/server.h"

/* Adds OPTIONS, GET and POST /task/get-sync-grant to http. The grant is signed with config's
 * API key and JWT_SECRET checks the caller; config (borrowed) must outlive the server. Errors
 * of http_server_routes. */
tassa_err get_sync_grant_register(http_server_t *http, const config_t *config);

/* The caller token of a request: the `token` parameter, else an `Authorization: Bearer`
 * header; NULL when neither. Borrowed from req. Shared with get-queue-position. */
const char *get_sync_grant_caller_token(const http_req_t *req);

#endif
