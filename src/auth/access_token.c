/* access_token.c - mints and verifies Twilio access tokens with a Sync (data_sync) grant.
 *
 * Minting is on the hot path of /task/get-sync-grant, so it does only what libjwt needs: the
 * flat claims go in with jwt_add_grant*, and only the nested "grants" object is serialised
 * (by jansson, which escapes and checks UTF-8) and handed over as JSON text, the one form in
 * which libjwt 1.x accepts a nested value. Verification reuses verify_token's strict decoding
 * and pins the header's alg before libjwt checks the signature.
 *
 * Layer: auth.
 */
#include "auth/access_token.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>

#include "auth/verify_token.h"

#define ACCESS_TOKEN_CTY         "twilio-fpa;v=1"
#define ACCESS_TOKEN_DEFAULT_TTL 3600L

_Static_assert(sizeof(time_t) <= sizeof(long), "libjwt takes integer claims as long");

/* True when s is a usable (non-NULL, non-empty) string field. */
static int present(const char *s)
{
    return s != NULL && *s != '\0';
}

/* Adds the nested grants object {"identity": ..., "data_sync": {"service_sid": ...}}. libjwt
 * parses the text back; jansson does the escaping, so an identity with quotes stays intact.
 * Returns 0 or non-zero on failure (bad UTF-8, out of memory). */
static int add_sync_grants(jwt_t *jwt, const char *identity, const char *service_sid)
{
    json_t *doc;
    char *text = NULL;
    int rc = -1;

    doc = json_pack("{s:{s:s, s:{s:s}}}", "grants", "identity", identity, "data_sync",
                    "service_sid", service_sid); /* new reference; NULL on bad UTF-8 */
    if (doc == NULL)
        goto out;
    text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        goto out;
    rc = jwt_add_grants_json(jwt, text);
out:
    free(text);
    json_decref(doc);
    return rc;
}

/* What /task/get-sync-grant returns: a token the Twilio Sync SDK accepts as it is. */
char *access_token_sync(const access_token_opts_t *o)
{
    jwt_t *jwt = NULL;
    char *token = NULL, *jti = NULL;
    char jti_buf[128];
    long ttl;
    size_t secret_len;
    int n;

    if (o == NULL || !present(o->account_sid) || !present(o->api_key) || !present(o->api_secret) ||
        !present(o->identity) || !present(o->sync_service_sid) || o->ttl < 0)
        return NULL;
    ttl = o->ttl ? o->ttl : ACCESS_TOKEN_DEFAULT_TTL;
    secret_len = strlen(o->api_secret);
    if (secret_len > INT_MAX || o->now > (time_t)(LONG_MAX - ttl))
        return NULL;

    /* jti = "<api_key>-<iat>"; API key SIDs are 34 bytes, so the stack buffer nearly always
     * fits and the heap is used only for an odd, long key. */
    n = snprintf(jti_buf, sizeof jti_buf, "%s-%lld", o->api_key, (long long)o->now);
    if (n < 0)
        goto out;
    if ((size_t)n >= sizeof jti_buf) {
        jti = malloc((size_t)n + 1);
        if (jti == NULL)
            goto out;
        snprintf(jti, (size_t)n + 1, "%s-%lld", o->api_key, (long long)o->now);
    }

    if (jwt_new(&jwt) != 0)
        goto out;
    if (jwt_add_header(jwt, "cty", ACCESS_TOKEN_CTY) != 0 ||
        jwt_add_grant(jwt, "jti", jti ? jti : jti_buf) != 0 ||
        jwt_add_grant(jwt, "iss", o->api_key) != 0 ||
        jwt_add_grant(jwt, "sub", o->account_sid) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)o->now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)o->now + ttl) != 0 ||
        add_sync_grants(jwt, o->identity, o->sync_service_sid) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)o->api_secret, (int)secret_len) != 0)
        goto out;
    token = jwt_encode_str(jwt); /* libjwt adds "typ":"JWT" and "alg":"HS256" */
out:
    jwt_free(jwt);
    free(jti);
    return token;
}

/* Maps the header's alg to the libjwt value it must decode as; JWT_ALG_INVAL if not allowed. */
static jwt_alg_t allowed_alg(const char *alg)
{
    if (alg == NULL)
        return JWT_ALG_INVAL;
    if (strcmp(alg, "HS256") == 0)
        return JWT_ALG_HS256;
    if (strcmp(alg, "HS384") == 0)
        return JWT_ALG_HS384;
    if (strcmp(alg, "HS512") == 0)
        return JWT_ALG_HS512;
    return JWT_ALG_INVAL;
}

/* The non-empty string at obj[key], or NULL. Borrowed from obj. */
static const char *string_field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return present(s) ? s : NULL;
}

/* Lets live streams accept the tokens we mint (and Twilio-made ones with the same key). */
tassa_err access_token_verify(const char *token, const char *api_secret, time_t now,
                              char **identity_out, char **service_sid_out, errmsg_t *em)
{
    tassa_err err;
    json_t *header = NULL, *claims = NULL;
    const json_t *grants, *sync; /* borrowed from claims */
    const char *cty, *identity, *service_sid;
    char *id_copy = NULL, *sid_copy = NULL;
    jwt_t *jwt = NULL;
    jwt_alg_t alg;
    size_t secret_len;
    int rc;

    *identity_out = NULL;
    *service_sid_out = NULL;
    if (!present(token))
        return err_set(em, TASSA_EUNAUTH, "missing access token");
    secret_len = api_secret ? strlen(api_secret) : 0;
    if (secret_len == 0 || secret_len > INT_MAX)
        return err_set(em, TASSA_EUNAUTH, "no usable API secret configured");

    err = verify_token_jws_unpack(token, &header, &claims, em);
    if (err != TASSA_OK)
        goto out;
    alg = allowed_alg(json_string_value(json_object_get(header, "alg")));
    if (alg == JWT_ALG_INVAL) {
        err = err_set(em, TASSA_EUNAUTH, "access token algorithm must be HS256, HS384 or HS512");
        goto out;
    }
    cty = json_string_value(json_object_get(header, "cty"));
    if (cty == NULL || strcmp(cty, ACCESS_TOKEN_CTY) != 0) {
        err = err_set(em, TASSA_EUNAUTH, "not a Twilio access token (cty)");
        goto out;
    }
    rc = jwt_decode(&jwt, token, (const unsigned char *)api_secret, (int)secret_len);
    if (rc == ENOMEM) {
        err = err_set(em, TASSA_ENOMEM, "out of memory verifying access token");
        goto out;
    }
    if (rc != 0 || jwt == NULL || jwt_get_alg(jwt) != alg) {
        err = err_set(em, TASSA_EUNAUTH, "bad access token signature");
        goto out;
    }
    err = verify_token_jws_check_time(claims, now, 1, em);
    if (err != TASSA_OK)
        goto out;

    grants = json_object_get(claims, "grants");
    identity = string_field(grants, "identity");
    if (identity == NULL) {
        err = err_set(em, TASSA_EUNAUTH, "access token has no identity grant");
        goto out;
    }
    sync = json_object_get(grants, "data_sync");
    service_sid = string_field(sync, "service_sid");
    if (service_sid == NULL) {
        err = err_set(em, TASSA_EUNAUTH, "access token has no data_sync service_sid grant");
        goto out;
    }
    id_copy = strdup(identity);
    sid_copy = strdup(service_sid);
    if (id_copy == NULL || sid_copy == NULL) {
        err = err_set(em, TASSA_ENOMEM, "out of memory copying access token grants");
        goto out;
    }
    *identity_out = id_copy;
    *service_sid_out = sid_copy;
    id_copy = sid_copy = NULL;
    err = TASSA_OK;
out:
    free(id_copy);
    free(sid_copy);
    jwt_free(jwt);
    json_decref(header);
    json_decref(claims);
    return err;
}
