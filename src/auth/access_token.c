/* access_token.c - mints and verifies Twilio access tokens with a Sync (data_sync) grant,
 * and mints worker tokens that add a TaskRouter (task_router) grant.
 *
 * Minting is on the hot path of /task/get-sync-grant, so it writes the token's text directly:
 * the header is a constant, the payload is printed into a buf_t with its strings escaped as
 * jansson escapes them (the bytes are those libjwt 1.x produced before, keys sorted), and the
 * HMAC comes from a key set up once (hs256.h). Verification reuses verify_token's strict
 * decoding and pins the header's alg before libjwt checks the signature.
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

#include <openssl/crypto.h>

#include "auth/verify_token.h"
#include "base/buf.h"

#define ACCESS_TOKEN_CTY         "twilio-fpa;v=1"
#define ACCESS_TOKEN_DEFAULT_TTL 3600L

_Static_assert(sizeof(time_t) <= sizeof(long), "libjwt takes integer claims as long");

/* True when s is a usable (non-NULL, non-empty) string field. */
static int present(const char *s)
{
    return s != NULL && *s != '\0';
}

/* The header libjwt 1.x wrote for these tokens (keys sorted), as base64url: constant. */
#define ACCESS_TOKEN_HEADER_JSON                                                                   \
    "{\"alg\":\"HS256\",\"cty\":\"" ACCESS_TOKEN_CTY "\",\"typ\":\"JWT\"}"

/* Writes the token for o; with_tr adds grants.task_router. */
static char *mint(const access_token_opts_t *o, const hs256_key_t *key, int with_tr)
{
    buf_t payload = BUF_INIT, tok = BUF_INIT;
    unsigned char mac[HS256_LEN];
    long ttl;
    char *token = NULL;

    if (o == NULL || key == NULL || !present(o->account_sid) || !present(o->api_key) ||
        !present(o->identity) || !present(o->sync_service_sid) || o->ttl < 0)
        return NULL;
    ttl = o->ttl ? o->ttl : ACCESS_TOKEN_DEFAULT_TTL;
    if (o->now > (time_t)(LONG_MAX - ttl))
        return NULL;
    /* The payload as libjwt 1.x wrote it with jansson: compact, keys sorted. */
    buf_printf(&payload, "{\"exp\":%lld,\"grants\":{\"data_sync\":{\"service_sid\":",
               (long long)o->now + ttl);
    if (buf_add_json_string(&payload, o->sync_service_sid) != 0)
        goto out;
    buf_adds(&payload, "},\"identity\":");
    if (buf_add_json_string(&payload, o->identity) != 0)
        goto out;
    if (with_tr) { /* keys sorted, as in the rest of the payload */
        buf_adds(&payload, ",\"task_router\":{\"role\":");
        if (buf_add_json_string(&payload, present(o->role) ? o->role : "worker") != 0)
            goto out;
        buf_adds(&payload, ",\"worker_sid\":");
        if (buf_add_json_string(&payload, o->worker_sid) != 0)
            goto out;
        buf_adds(&payload, ",\"workspace_sid\":");
        if (buf_add_json_string(&payload, o->workspace_sid) != 0)
            goto out;
        buf_adds(&payload, "}");
    }
    buf_printf(&payload, "},\"iat\":%lld,\"iss\":", (long long)o->now);
    if (buf_add_json_string(&payload, o->api_key) != 0)
        goto out;
    buf_adds(&payload, ",\"jti\":");
    /* jti = "<api_key>-<iat>"; API key SIDs are 34 bytes, so the stack buffer nearly always
     * fits, and a longer key is refused rather than cut. */
    {
        char jti[160];
        int n = snprintf(jti, sizeof jti, "%s-%lld", o->api_key, (long long)o->now);
        if (n < 0 || (size_t)n >= sizeof jti || buf_add_json_string(&payload, jti) != 0)
            goto out;
    }
    buf_adds(&payload, ",\"sub\":");
    if (buf_add_json_string(&payload, o->account_sid) != 0)
        goto out;
    buf_adds(&payload, "}");
    if (payload.failed)
        goto out;

    hs256_b64url_add(&tok, ACCESS_TOKEN_HEADER_JSON, sizeof ACCESS_TOKEN_HEADER_JSON - 1);
    buf_add(&tok, ".", 1);
    hs256_b64url_add(&tok, payload.data, payload.len);
    if (tok.failed || hs256_sign(key, tok.data, tok.len, mac) != 0)
        goto out;
    buf_add(&tok, ".", 1);
    hs256_b64url_add(&tok, mac, sizeof mac);
    OPENSSL_cleanse(mac, sizeof mac);
    if (!tok.failed)
        token = buf_take(&tok);
out:
    buf_free(&payload);
    buf_free(&tok);
    return token;
}

char *access_token_sync_keyed(const access_token_opts_t *o, const hs256_key_t *key)
{
    return mint(o, key, 0);
}

char *access_token_worker_keyed(const access_token_opts_t *o, const hs256_key_t *key)
{
    if (o == NULL || !present(o->workspace_sid) || !present(o->worker_sid))
        return NULL;
    return mint(o, key, 1);
}

/* Mints with a key made for o->api_secret; with_tr as for mint. */
static char *mint_with_secret(const access_token_opts_t *o, int with_tr)
{
    hs256_key_t *key;
    char *token;
    size_t secret_len;

    if (o == NULL || !present(o->api_secret))
        return NULL;
    secret_len = strlen(o->api_secret);
    if (secret_len > INT_MAX)
        return NULL;
    key = hs256_key_new(o->api_secret, secret_len);
    if (key == NULL)
        return NULL;
    token = with_tr ? access_token_worker_keyed(o, key) : access_token_sync_keyed(o, key);
    hs256_key_free(key);
    return token;
}

/* What /task/get-sync-grant returns: a token the Twilio Sync SDK accepts as it is. */
char *access_token_sync(const access_token_opts_t *o)
{
    return mint_with_secret(o, 0);
}

/* What /task/get-worker-grant returns: a token the TaskRouter Worker SDK accepts. */
char *access_token_worker(const access_token_opts_t *o)
{
    return mint_with_secret(o, 1);
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
