/* rest_auth.c - Twilio's 401 for the /v1 REST API when Basic credentials do not match.
 *
 * The credentials check itself is pure computation in auth/basic_auth.c; this module only
 * reads the header off the request and writes the refusal.
 *
 * Layer: http.
 */
#include "http/rest_auth.h"

#include <jansson.h>

#include "auth/basic_auth.h"

bool rest_auth_require(const http_req_t *req, http_resp_t *resp, const config_t *c)
{
    if (basic_auth_check(http_req_header(req, "Authorization"), c) == TASSA_OK)
        return true;
    http_resp_json(resp, 401,
                   json_pack("{s:i, s:s, s:s, s:s, s:i}", "code", 20003, "detail", "", "message",
                             "Authenticate", "more_info",
                             "https://www.twilio.com/docs/errors/20003", "status", 401));
    http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
    return false;
}
