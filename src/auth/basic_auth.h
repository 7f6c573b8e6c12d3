/* basic_auth.h - HTTP Basic authentication of the /v1 REST API, as Twilio's. */
#ifndef TASSA_BASIC_AUTH_H
#define TASSA_BASIC_AUTH_H

#include "config.h"
#include "err.h"
#include "http/server.h"

/* Accepts API_KEY:API_SECRET or ACCOUNT_SID:AUTH_TOKEN (constant-time comparison).
 * TASSA_EUNAUTH otherwise, including a missing or malformed Authorization header. */
tassa_err basic_auth_check(const http_req_t *req, const config_t *c);

#endif
