/* worker_token.c - verifies the Twilio access token of a TaskRouter worker (twilio-taskrouter).
 *
 * The same strict reading as verify_token.c: the header and claims are decoded strictly
 * (verify_token_jws_unpack), the alg is pinned to HS256 before the HMAC is compared in
 * constant time (hs256_verify_b64url), and every claim is read with its JSON type checked.
 *
 * Layer: auth.
 */
#include "auth/worker_token.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "auth/verify_token.h"

#define CTY "twilio-fpa;v=1"

bool worker_token_sid_ok(const char *s, const char *prefix)
{
    if (!s || strlen(s) != SID_LEN || strncmp(s, prefix, 2) != 0)
        return false;
    for (int i = 2; i < SID_LEN; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Copies the string member key of obj into out when it is a SID with prefix. */
static bool sid_field(const json_t *obj, const char *key, const char *prefix, char out[SID_LEN + 1])
{
    const char *v = json_string_value(json_object_get(obj, key));
    if (!worker_token_sid_ok(v, prefix))
        return false;
    memcpy(out, v, SID_LEN + 1);
    return true;
}

tassa_err worker_token_verify(const char *token, const hs256_key_t *key, time_t now,
                              worker_grant_t *out, errmsg_t *em)
{
    tassa_err err;
    json_t *header = NULL, *claims = NULL;
    const json_t *tr;
    const char *alg, *cty, *role, *dot2;

    memset(out, 0, sizeof *out);
    if (token == NULL || *token == '\0')
        return err_set(em, TASSA_EUNAUTH, "missing access token");
    if (key == NULL)
        return err_set(em, TASSA_EUNAUTH, "no usable API secret configured");
    err = verify_token_jws_unpack(token, &header, &claims, em);
    if (err != TASSA_OK)
        goto out;
    alg = json_string_value(json_object_get(header, "alg"));
    if (alg == NULL || strcmp(alg, "HS256") != 0) {
        err = err_set(em, TASSA_EUNAUTH, "access token algorithm must be HS256");
        goto out;
    }
    cty = json_string_value(json_object_get(header, "cty"));
    if (cty == NULL || strcmp(cty, CTY) != 0) {
        err = err_set(em, TASSA_EUNAUTH, "not a Twilio access token (cty)");
        goto out;
    }
    dot2 = strrchr(token, '.'); /* unpack checked: three parts, a non-empty signature last */
    if (!hs256_verify_b64url(key, token, (size_t)(dot2 - token), dot2 + 1, strlen(dot2 + 1))) {
        err = err_set(em, TASSA_EUNAUTH, "bad access token signature");
        goto out;
    }
    err = verify_token_jws_check_time(claims, now, 1, em);
    if (err != TASSA_OK)
        goto out;
    if (!sid_field(claims, "sub", "AC", out->account_sid) ||
        !sid_field(claims, "iss", "SK", out->api_key)) {
        err = err_set(em, TASSA_EUNAUTH, "access token needs sub (AC...) and iss (SK...)");
        goto out;
    }
    tr = json_object_get(json_object_get(claims, "grants"), "task_router");
    if (!json_is_object(tr) || !sid_field(tr, "workspace_sid", "WS", out->workspace_sid) ||
        !sid_field(tr, "worker_sid", "WK", out->worker_sid)) {
        err = err_set(em, TASSA_EFORBIDDEN,
                      "access token has no task_router grant with a workspace_sid and worker_sid");
        goto out;
    }
    role = json_string_value(json_object_get(tr, "role"));
    snprintf(out->role, sizeof out->role, "%s", role ? role : "");
    out->exp = (int64_t)json_number_value(json_object_get(claims, "exp"));
    if (json_is_number(json_object_get(claims, "iat")))
        out->iat = (int64_t)json_number_value(json_object_get(claims, "iat"));
    err = TASSA_OK;
out:
    if (err)
        memset(out, 0, sizeof *out);
    json_decref(header);
    json_decref(claims);
    return err;
}
