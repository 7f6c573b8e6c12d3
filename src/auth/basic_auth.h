/* basic_auth.h - HTTP Basic authentication of the /v1 REST API, as Twilio's.
 *
 * Layer: auth. */
#ifndef TASSA_BASIC_AUTH_H
#define TASSA_BASIC_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/config.h"
#include "base/err.h"

/* Credentials decoded from an Authorization header. user owns one malloc'd buffer (NUL-
 * terminated after the password) that pass points into; lengths exclude the terminator. */
typedef struct {
    char *user, *pass;
    size_t user_len, pass_len, total;
} basic_creds_t;

/* Decodes "Basic base64(user:pass)" (scheme case-insensitive, canonical base64 with padding,
 * at most 4096 characters). Refuses (TASSA_EUNAUTH, *out zeroed) a missing header, another
 * scheme, bad base64, no ':' or a NUL byte anywhere in the decoded text; TASSA_ENOMEM. On
 * TASSA_OK the caller must basic_creds_clear(out). Pure; any thread. header is borrowed. */
tassa_err basic_auth_decode(const char *header, basic_creds_t *out);

/* Wipes and frees what basic_auth_decode filled in. Accepts NULL and a zeroed struct. */
void basic_creds_clear(basic_creds_t *c);

/* Accepts the Authorization header value `authorization` (borrowed; NULL when the request has
 * none) when it carries API_KEY:API_SECRET or ACCOUNT_SID:AUTH_TOKEN (constant-time
 * comparison). TASSA_EUNAUTH otherwise, including a missing or malformed header. Pure; any
 * thread. The HTTP answer to a refusal is http/rest_auth.h's. */
tassa_err basic_auth_check(const char *authorization, const config_t *c);

#endif
