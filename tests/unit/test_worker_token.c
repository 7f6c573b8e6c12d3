/* test_worker_token.c - worker_token_verify on tokens built here as twilio-node's AccessToken +
 * TaskRouterGrant builds them (header, claims, HMAC-SHA256 with OpenSSL alone), good and bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/worker_token.h"

#define NOW       ((time_t)1700000000)
#define ACCOUNT   "AC00000000000000000000000000000001"
#define API_KEY   "SK00000000000000000000000000000002"
#define SECRET    "api-secret-abcdef"
#define WORKSPACE "WS00000000000000000000000000000003"
#define WORKER    "WK00000000000000000000000000000004"
#define HEADER    "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"cty\":\"twilio-fpa;v=1\"}"

/* base64url without padding of data, appended to out (malloc'd, grown). */
static char *b64url_cat(char *out, const unsigned char *data, size_t len)
{
    size_t have = out ? strlen(out) : 0;
    char *enc = malloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)enc, data, (int)len);
    while (n > 0 && enc[n - 1] == '=')
        n--;
    enc[n] = '\0';
    for (char *c = enc; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    out = realloc(out, have + (size_t)n + 1);
    memcpy(out + have, enc, (size_t)n + 1);
    free(enc);
    return out;
}

/* header.claims signed with secret (HS256). malloc'd. */
static char *sign(const char *header, const char *claims, const char *secret)
{
    char *t = b64url_cat(NULL, (const unsigned char *)header, strlen(header));
    t = realloc(t, strlen(t) + 2);
    strcat(t, ".");
    t = b64url_cat(t, (const unsigned char *)claims, strlen(claims));
    unsigned char mac[32];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)t, strlen(t), mac,
         &mlen);
    t = realloc(t, strlen(t) + 2);
    strcat(t, ".");
    return b64url_cat(t, mac, mlen);
}

/* The claims twilio-node writes, with the task_router grant given as JSON text. */
static char *claims(long iat, long exp, const char *grant)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"jti\":\"" API_KEY "-%ld\",\"grants\":{\"identity\":\"alice\",\"task_router\":%s},"
             "\"iat\":%ld,\"exp\":%ld,\"iss\":\"" API_KEY "\",\"sub\":\"" ACCOUNT "\"}",
             iat, grant, iat, exp);
    return buf;
}

#define GRANT                                                                                      \
    "{\"workspace_sid\":\"" WORKSPACE "\",\"worker_sid\":\"" WORKER "\",\"role\":\"worker\"}"

static tassa_err verify(const char *token, worker_grant_t *g, errmsg_t *em)
{
    hs256_key_t *key = hs256_key_new(SECRET, strlen(SECRET));
    assert_non_null(key);
    tassa_err err = worker_token_verify(token, key, NOW, g, em);
    hs256_key_free(key);
    return err;
}

static void test_valid(void **state)
{
    (void)state;
    char *t = sign(HEADER, claims(NOW - 10, NOW + 3600, GRANT), SECRET);
    worker_grant_t g;
    errmsg_t em = {{0}};
    assert_int_equal(verify(t, &g, &em), TASSA_OK);
    assert_string_equal(g.account_sid, ACCOUNT);
    assert_string_equal(g.api_key, API_KEY);
    assert_string_equal(g.workspace_sid, WORKSPACE);
    assert_string_equal(g.worker_sid, WORKER);
    assert_string_equal(g.role, "worker");
    assert_int_equal(g.exp, NOW + 3600);
    assert_int_equal(g.iat, NOW - 10);
    free(t);
}

/* Each token must be refused with want, and leave the grant zeroed. */
static void refused(char *t, tassa_err want, const char *detail)
{
    worker_grant_t g;
    errmsg_t em = {{0}};
    memset(&g, 'x', sizeof g);
    assert_int_equal(verify(t, &g, &em), want);
    assert_non_null(strstr(em.text, detail));
    assert_int_equal(g.worker_sid[0], 0);
    free(t);
}

static void test_bad_signature(void **state)
{
    (void)state;
    refused(sign(HEADER, claims(NOW, NOW + 3600, GRANT), "wrong-secret"), TASSA_EUNAUTH,
            "signature");
    /* a valid token with its claims swapped for another worker's */
    char *good = sign(HEADER, claims(NOW, NOW + 3600, GRANT), SECRET);
    char *other = sign(HEADER,
                       claims(NOW, NOW + 3600,
                              "{\"workspace_sid\":\"" WORKSPACE
                              "\",\"worker_sid\":\"WK00000000000000000000000000000009\"}"),
                       SECRET);
    char *d1 = strchr(good, '.'), *d2 = strrchr(other, '.'), *e1 = strrchr(good, '.');
    size_t n = (size_t)(d1 - good) + 1;
    char *mix = malloc(strlen(good) + strlen(other) + 1);
    memcpy(mix, good, n);
    char *o1 = strchr(other, '.') + 1;
    memcpy(mix + n, o1, (size_t)(d2 - o1));
    strcpy(mix + n + (d2 - o1), e1);
    free(good);
    free(other);
    refused(mix, TASSA_EUNAUTH, "signature");
}

static void test_times(void **state)
{
    (void)state;
    refused(sign(HEADER, claims(NOW - 7200, NOW - 1, GRANT), SECRET), TASSA_EUNAUTH, "expired");
    refused(sign(HEADER, claims(NOW - 7200, NOW, GRANT), SECRET), TASSA_EUNAUTH, "expired");
    refused(sign(HEADER,
                 "{\"grants\":{\"task_router\":" GRANT "},\"iss\":\"" API_KEY
                 "\",\"sub\":\"" ACCOUNT "\"}",
                 SECRET),
            TASSA_EUNAUTH, "exp");
    refused(sign(HEADER,
                 "{\"grants\":{\"task_router\":" GRANT "},\"iss\":\"" API_KEY
                 "\",\"sub\":\"" ACCOUNT "\",\"exp\":1700003600,\"nbf\":1700000100}",
                 SECRET),
            TASSA_EUNAUTH, "not yet valid");
}

static void test_header(void **state)
{
    (void)state;
    refused(sign("{\"alg\":\"HS512\",\"typ\":\"JWT\",\"cty\":\"twilio-fpa;v=1\"}",
                 claims(NOW, NOW + 60, GRANT), SECRET),
            TASSA_EUNAUTH, "HS256");
    refused(sign("{\"alg\":\"none\",\"typ\":\"JWT\",\"cty\":\"twilio-fpa;v=1\"}",
                 claims(NOW, NOW + 60, GRANT), SECRET),
            TASSA_EUNAUTH, "HS256");
    refused(sign("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims(NOW, NOW + 60, GRANT), SECRET),
            TASSA_EUNAUTH, "cty");
}

static void test_grant(void **state)
{
    (void)state;
    refused(sign(HEADER, claims(NOW, NOW + 60, "null"), SECRET), TASSA_EFORBIDDEN, "task_router");
    refused(sign(HEADER, claims(NOW, NOW + 60, "{\"workspace_sid\":\"" WORKSPACE "\"}"), SECRET),
            TASSA_EFORBIDDEN, "task_router");
    refused(sign(HEADER,
                 claims(NOW, NOW + 60,
                        "{\"workspace_sid\":\"" WORKSPACE "\",\"worker_sid\":\"WKnot-a-sid\"}"),
                 SECRET),
            TASSA_EFORBIDDEN, "worker_sid");
    refused(sign(HEADER,
                 claims(NOW, NOW + 60, "{\"workspace_sid\":\"" WORKSPACE "\",\"worker_sid\":1234}"),
                 SECRET),
            TASSA_EFORBIDDEN, "worker_sid");
    refused(sign(HEADER,
                 "{\"grants\":{\"task_router\":" GRANT "},\"iss\":\"" API_KEY
                 "\",\"exp\":1700003600}",
                 SECRET),
            TASSA_EUNAUTH, "sub");
}

static void test_malformed(void **state)
{
    (void)state;
    refused(strdup("not-a-token"), TASSA_EUNAUTH, "");
    refused(strdup("a.b.c"), TASSA_EUNAUTH, "");
    refused(strdup(""), TASSA_EUNAUTH, "missing");
    worker_grant_t g;
    errmsg_t em = {{0}};
    char *t = sign(HEADER, claims(NOW, NOW + 60, GRANT), SECRET);
    assert_int_equal(worker_token_verify(t, NULL, NOW, &g, &em), TASSA_EUNAUTH);
    assert_int_equal(worker_token_verify(NULL, NULL, NOW, &g, &em), TASSA_EUNAUTH);
    free(t);
}

static void test_sid_ok(void **state)
{
    (void)state;
    assert_true(worker_token_sid_ok(WORKER, "WK"));
    assert_false(worker_token_sid_ok(WORKER, "WS"));
    assert_false(worker_token_sid_ok("WK0000000000000000000000000000000", "WK"));
    assert_false(worker_token_sid_ok("WK0000000000000000000000000000000g", "WK"));
    assert_false(worker_token_sid_ok(NULL, "WK"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),  cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_times),  cmocka_unit_test(test_header),
        cmocka_unit_test(test_grant),  cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_sid_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
