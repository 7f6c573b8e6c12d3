/* get_sync_grant.h - the seed's /task/get-sync-grant: a Twilio access token with a Sync
 * grant, for a caller whose own JWT (JWT_SECRET, HS256) names the identity it asks for.
 *
 * Layer: functions.
 */
#ifndef TASSA_GET_SYNC_GRANT_H
#define TASSA_GET_SYNC_GRANT_H

#include <time.h>

#include "auth/hs256.h"
#include "base/config.h"
#include "http/server.h"

/* Adds OPTIONS, GET and POST /task/get-sync-grant to http. The grant is signed with config's
 * API key and JWT_SECRET checks the caller; config (borrowed) must outlive the server. Errors
 * of http_server_routes. */
tassa_err get_sync_grant_register(http_server_t *http, const config_t *config);

/* The caller token of a request: the `token` parameter, else an `Authorization: Bearer`
 * header; NULL when neither. Borrowed from req. Shared with get-queue-position. */
const char *get_sync_grant_caller_token(const http_req_t *req);

/* Answers resp with the seed's refusal: {"authorized":false,"error":why,"status":N}, N the
 * status of err. */
void get_sync_grant_refuse(http_resp_t *resp, tassa_err err, const char *why);

/* The seed's verifyToken step, shared by the grant functions: answers a CORS preflight, then
 * checks that the caller's token (get_sync_grant_caller_token) is signed with key (JWT_SECRET;
 * NULL refuses every caller) and names the `identity` parameter. Returns that identity
 * (borrowed from req), or NULL when resp is answered already: the preflight, or a refusal,
 * logged as `event=EVENT reason=...` (never with the token). */
const char *get_sync_grant_caller(http_req_t *req, http_resp_t *resp, const config_t *config,
                                  const hs256_key_t *key, const char *event, time_t now);

#endif
