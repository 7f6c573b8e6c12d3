/* rest_auth.h - the /v1 REST API's HTTP Basic authentication answer, as Twilio's.
 *
 * Layer: http. */
#ifndef TASSA_HTTP_REST_AUTH_H
#define TASSA_HTTP_REST_AUTH_H

#include <stdbool.h>

#include "base/config.h"
#include "http/server.h"

/* Checks req's Authorization header with basic_auth_check (auth/basic_auth.h) against c's
 * API_KEY:API_SECRET and ACCOUNT_SID:AUTH_TOKEN. Returns true when the caller may go on;
 * otherwise writes Twilio's 401 (code 20003, WWW-Authenticate: Basic realm="Twilio API")
 * into resp and returns false. All pointers borrowed; any pool thread. */
bool rest_auth_require(const http_req_t *req, http_resp_t *resp, const config_t *c);

#endif
