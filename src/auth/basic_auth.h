/* basic_auth.h - HTTP Basic authentication of the /v1 REST API, as Twilio's. */
#ifndef TASSA_BASIC_AUTH_H
#define TASSA_BASIC_AUTH_H

#include <stdbool.h>

#include "config.h"
#include "err.h"
#include "http/server.h"

/* Accepts API_KEY:API_SECRET or ACCOUNT_SID:AUTH_TOKEN (constant-time comparison).
 * TASSA_EUNAUTH otherwise, including a missing or malformed Authorization header. */
tassa_err basic_auth_check(const http_req_t *req, const config_t *c);

/* basic_auth_check, answering Twilio's 401 (code 20003, WWW-Authenticate) into resp when it
 * fails. Returns true when the caller may go on. */
bool basic_auth_require(const http_req_t *req, http_resp_t *resp, const config_t *c);

#endif
