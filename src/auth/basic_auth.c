/* basic_auth.c - Twilio-style HTTP Basic credentials check. */
#include "auth/basic_auth.h"

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <string.h>

/* Compares in time that depends only on the lengths, so a guess learns nothing. */
static int same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

tassa_err basic_auth_check(const http_req_t *req, const config_t *c)
{
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(req->conn, &pass);
    tassa_err err = TASSA_EUNAUTH;
    if (user && pass) {
        if (c->api_key && c->api_secret && same(user, c->api_key) && same(pass, c->api_secret))
            err = TASSA_OK;
        else if (c->account_sid && c->auth_token && same(user, c->account_sid) &&
                 same(pass, c->auth_token))
            err = TASSA_OK;
    }
    MHD_free(user);
    MHD_free(pass);
    return err;
}

bool basic_auth_require(const http_req_t *req, http_resp_t *resp, const config_t *c)
{
    if (basic_auth_check(req, c) == TASSA_OK)
        return true;
    http_resp_json(resp, 401,
                   json_pack("{s:i, s:s, s:s, s:s, s:i}", "code", 20003, "detail", "", "message",
                             "Authenticate", "more_info",
                             "https://www.twilio.com/docs/errors/20003", "status", 401));
    http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
    return false;
}
