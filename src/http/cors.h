/* cors.h - the seed's cors helper: CORS headers on every answer of a browser-facing function,
 * and the preflight (OPTIONS) answered without authentication.
 *
 * Layer: http.
 */
#ifndef TASSA_CORS_H
#define TASSA_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "http/server.h"

/* The Access-Control-Allow-Origin value for a request from origin (may be NULL) given the
 * allowed setting ("*" or a comma list of origins): "*" when everything is allowed, origin
 * itself when it is listed, NULL when it is not (then no CORS header is sent and the browser
 * blocks the answer). Borrowed from the arguments. */
const char *cors_allow_origin(const char *origin, const char *allowed);

/* Adds the CORS headers for req to resp. When req is a preflight (OPTIONS) it also answers
 * it (204, no body) and returns true: the caller must then stop. */
bool cors_apply(const http_req_t *req, http_resp_t *resp, const char *allowed);

#endif
