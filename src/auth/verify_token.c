/* verify_token.c - checks (and for the CLI, mints) the HS256 caller JWT of the seed's functions.
 *
 * libjwt 1.x verifies the signature, but it is not trusted with anything else: it accepts
 * whatever alg the token names (HS384 for an HS256 secret, "none" without a key) and reads a
 * string "exp" as 0. So the header and claims are decoded here first, strictly (canonical
 * base64url, JSON objects without duplicate keys), the alg is pinned before jwt_decode runs,
 * and every claim is read from that strict decoding with its JSON type checked.
 *
 * Layer: auth.
 */
#include "auth/verify_token.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include <jwt.h>

_Static_assert(sizeof(time_t) <= sizeof(long), "libjwt takes integer claims as long");

/* The 6-bit value of a base64url character, or -1: the alphabet is strict, with no padding. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url strictly (unused trailing bits must be zero), so that one token
 * has exactly one reading. Returns a malloc'd buffer and its length, or NULL on bad input or
 * when out of memory. */
static unsigned char *b64url_decode(const char *s, size_t len, size_t *out_len)
{
    unsigned char *out;
    size_t n = 0;
    unsigned long acc = 0;
    int bits = 0;

    if (len % 4 == 1)
        return NULL;
    out = malloc(len / 4 * 3 + 3);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6 | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1ul << bits) - 1)) != 0) {
        free(out);
        return NULL;
    }
    *out_len = n;
    return out;
}

/* Decodes one base64url part into a JSON object; NULL when it is not one. New reference. */
static json_t *decode_json_part(const char *s, size_t len)
{
    size_t n = 0;
    unsigned char *raw = b64url_decode(s, len, &n);
    json_t *obj;

    if (raw == NULL)
        return NULL;
    obj = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* True when every byte of s[0..len) is base64url; the signature part is checked this way so
 * that a malformed token reads as malformed rather than as a bad signature. */
static int is_b64url(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return 0;
    return len % 4 != 1;
}

/* The header that jsonwebtoken and libjwt write for HS256, {"alg":"HS256","typ":"JWT"}, as its
 * base64url: a token that starts with exactly these bytes has that header, which unpack then
 * takes from a parse made once instead of decoding and parsing it again for every token. */
#define HS256_JWT_HEADER "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

/* The parse of HS256_JWT_HEADER, made once and shared: every caller gets a reference to the
 * same object, which nobody changes (unpack's contract) and which is never freed (this one
 * reference stays); jansson counts references atomically. NULL only when out of memory. */
static json_t *common_header;
static pthread_once_t common_header_once = PTHREAD_ONCE_INIT;

static void parse_common_header(void)
{
    common_header = decode_json_part(HS256_JWT_HEADER, strlen(HS256_JWT_HEADER));
}

/* The header part s[0..len) decoded and parsed (new reference; NULL when malformed). */
static json_t *header_part(const char *s, size_t len)
{
    if (len == strlen(HS256_JWT_HEADER) && !memcmp(s, HS256_JWT_HEADER, len)) {
        pthread_once(&common_header_once, parse_common_header);
        if (common_header)
            return json_incref(common_header);
    }
    return decode_json_part(s, len);
}

/* One strict reading of the token, shared by both verifiers, before any trust is placed. */
tassa_err verify_token_jws_unpack(const char *token, json_t **header_out, json_t **claims_out,
                                  errmsg_t *em)
{
    tassa_err err = TASSA_EUNAUTH;
    json_t *header = NULL, *claims = NULL;
    const char *dot1, *dot2, *end;
    size_t len;

    *header_out = NULL;
    *claims_out = NULL;
    if (token == NULL) {
        err_set(em, TASSA_EUNAUTH, "malformed token");
        goto out;
    }
    len = strnlen(token, VERIFY_TOKEN_MAX_LEN + 1);
    if (len > VERIFY_TOKEN_MAX_LEN) {
        err_set(em, TASSA_EUNAUTH, "token too long");
        goto out;
    }
    end = token + len;
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)) != NULL || dot1 == token ||
        dot2 == dot1 + 1 || dot2 + 1 == end) {
        err_set(em, TASSA_EUNAUTH, "malformed token: expected header.payload.signature");
        goto out;
    }
    if (!is_b64url(dot2 + 1, (size_t)(end - dot2 - 1))) {
        err_set(em, TASSA_EUNAUTH, "malformed token signature");
        goto out;
    }
    header = header_part(token, (size_t)(dot1 - token));
    if (header == NULL) {
        err_set(em, TASSA_EUNAUTH, "malformed token header");
        goto out;
    }
    /* RFC 7515 section 4.1.11: a recipient must reject a JWS whose "crit" lists an extension
     * it does not understand. We understand none, and a crit that is not a non-empty array of
     * names is malformed anyway; so any crit refuses the token. */
    if (json_object_get(header, "crit") != NULL) {
        err_set(em, TASSA_EUNAUTH, "token header has a crit extension that is not supported");
        goto out;
    }
    claims = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (claims == NULL) {
        err_set(em, TASSA_EUNAUTH, "malformed token payload");
        goto out;
    }
    *header_out = header;
    *claims_out = claims;
    header = claims = NULL;
    err = TASSA_OK;
out:
    json_decref(header);
    json_decref(claims);
    return err;
}

/* Compares a numeric claim with now (-1, 0, 1); integers exactly, reals as doubles. */
static int claim_cmp(const json_t *v, time_t now)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        return i < (json_int_t)now ? -1 : i > (json_int_t)now;
    }
    double d = json_real_value(v);
    return d < (double)now ? -1 : d > (double)now;
}

/* Zero leeway: the seed compares exp and nbf with the clock exactly. */
tassa_err verify_token_jws_check_time(const json_t *claims, time_t now, int exp_required,
                                      errmsg_t *em)
{
    const json_t *exp = json_object_get(claims, "exp"); /* borrowed */
    const json_t *nbf = json_object_get(claims, "nbf"); /* borrowed */

    if (exp == NULL && exp_required)
        return err_set(em, TASSA_EUNAUTH, "token has no exp claim");
    /* A non-numeric exp must not read as "no exp", or the token would never expire. */
    if (exp != NULL && !json_is_number(exp))
        return err_set(em, TASSA_EUNAUTH, "token exp claim is not a number");
    if (nbf != NULL && !json_is_number(nbf))
        return err_set(em, TASSA_EUNAUTH, "token nbf claim is not a number");
    if (exp != NULL && claim_cmp(exp, now) <= 0)
        return err_set(em, TASSA_EUNAUTH, "token expired");
    if (nbf != NULL && claim_cmp(nbf, now) > 0)
        return err_set(em, TASSA_EUNAUTH, "token not yet valid");
    return TASSA_OK;
}

/* Checks that the claims name the expected caller: "identity" wins over "sub". */
static tassa_err check_identity(const json_t *claims, const char *identity, errmsg_t *em)
{
    const json_t *id = json_object_get(claims, "identity"); /* borrowed */

    if (id == NULL)
        id = json_object_get(claims, "sub");
    if (id == NULL)
        return err_set(em, TASSA_EUNAUTH, "token has no identity or sub claim");
    if (!json_is_string(id))
        return err_set(em, TASSA_EUNAUTH, "token identity claim is not a string");
    if (strcmp(json_string_value(id), identity) != 0)
        return err_set(em, TASSA_EUNAUTH, "token identity does not match");
    return TASSA_OK;
}

/* The seed's verifyToken: structure, pinned alg, signature, time, then caller identity. */
tassa_err verify_token_keyed(const char *token, const char *identity, const hs256_key_t *key,
                             time_t now, errmsg_t *em)
{
    tassa_err err;
    json_t *header = NULL, *claims = NULL;
    const char *alg, *dot2;

    if (token == NULL || *token == '\0')
        return err_set(em, TASSA_EMISSING, "missing token");
    if (identity == NULL || *identity == '\0')
        return err_set(em, TASSA_EMISSING, "missing identity");
    if (key == NULL)
        return err_set(em, TASSA_EUNAUTH, "no usable token secret configured");

    err = verify_token_jws_unpack(token, &header, &claims, em);
    if (err != TASSA_OK)
        goto out;
    alg = json_string_value(json_object_get(header, "alg"));
    if (alg == NULL || strcmp(alg, "HS256") != 0) {
        err = err_set(em, TASSA_EUNAUTH, "token algorithm must be HS256");
        goto out;
    }
    /* unpack checked the shape: exactly two dots, a non-empty base64url signature last. */
    dot2 = strrchr(token, '.');
    if (!hs256_verify_b64url(key, token, (size_t)(dot2 - token), dot2 + 1, strlen(dot2 + 1))) {
        err = err_set(em, TASSA_EUNAUTH, "bad token signature");
        goto out;
    }
    err = verify_token_jws_check_time(claims, now, 0, em);
    if (err != TASSA_OK)
        goto out;
    err = check_identity(claims, identity, em);
out:
    json_decref(header);
    json_decref(claims);
    return err;
}

tassa_err verify_token(const char *token, const char *identity, const char *secret, time_t now,
                       errmsg_t *em)
{
    hs256_key_t *key;
    size_t secret_len;
    tassa_err err;

    if (token == NULL || *token == '\0')
        return err_set(em, TASSA_EMISSING, "missing token");
    if (identity == NULL || *identity == '\0')
        return err_set(em, TASSA_EMISSING, "missing identity");
    /* An empty key would sign anything anyone can compute; refuse rather than accept. */
    secret_len = secret ? strlen(secret) : 0;
    if (secret_len == 0 || secret_len > INT_MAX)
        return err_set(em, TASSA_EUNAUTH, "no usable token secret configured");
    key = hs256_key_new(secret, secret_len);
    if (key == NULL)
        return err_set(em, TASSA_ENOMEM, "out of memory verifying token");
    err = verify_token_keyed(token, identity, key, now, em);
    hs256_key_free(key);
    return err;
}

/* Lets people and scripts get a caller token without a separate identity service. */
char *verify_token_mint(const char *identity, const char *secret, long ttl_seconds, time_t now)
{
    jwt_t *jwt = NULL;
    char *token = NULL;
    size_t secret_len = secret ? strlen(secret) : 0;

    if (identity == NULL || *identity == '\0' || secret_len == 0 || secret_len > INT_MAX ||
        ttl_seconds <= 0 || now > (time_t)(LONG_MAX - ttl_seconds))
        return NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "identity", identity) != 0 || jwt_add_grant(jwt, "sub", identity) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)now + ttl_seconds) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)secret_len) != 0)
        goto out;
    token = jwt_encode_str(jwt);
out:
    jwt_free(jwt);
    return token;
}
