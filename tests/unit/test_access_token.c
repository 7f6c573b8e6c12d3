/* test_access_token.c - Twilio access tokens: every field of a minted token, its signature
 * checked with OpenSSL alone, and access_token_verify on good and bad tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <jwt.h>

#include "auth/access_token.h"

#define NOW        ((time_t)1700000000)
#define ACCOUNT    "AC00000000000000000000000000000001"
#define API_KEY    "SK00000000000000000000000000000002"
#define API_SECRET "api-secret-abcdef"
#define SERVICE    "IS00000000000000000000000000000003"

static access_token_opts_t opts(const char *identity, long ttl)
{
    access_token_opts_t o = {ACCOUNT, API_KEY, API_SECRET, identity, SERVICE,
                             ttl,     NOW,     NULL,       NULL,     NULL};
    return o;
}

/* Decodes unpadded base64url with OpenSSL (independent of the code under test). */
static unsigned char *b64url_decode(const char *s, size_t len, size_t *out_len)
{
    char *std = malloc(len + 4);
    unsigned char *out = malloc(len + 4);
    size_t n = len;
    int r;

    assert_non_null(std);
    assert_non_null(out);
    for (size_t i = 0; i < len; i++)
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (n % 4 != 0)
        std[n++] = '=';
    r = EVP_DecodeBlock(out, (unsigned char *)std, (int)n);
    assert_true(r >= 0);
    *out_len = (size_t)r - (n - len); /* DecodeBlock counts padding as zero bytes */
    free(std);
    return out;
}

/* base64url without padding, malloc'd. */
static char *b64url(const unsigned char *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);

    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return out;
}

/* Parses one base64url part as JSON (new reference). */
static json_t *part_json(const char *s, size_t len)
{
    size_t n = 0;
    unsigned char *raw = b64url_decode(s, len, &n);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &jerr);

    free(raw);
    assert_non_null(j);
    assert_true(json_is_object(j));
    return j;
}

/* A token from raw JSON header and payload, HMAC'd with md (or unsigned when md is NULL). */
static char *hand_token(const char *header, const char *payload, const char *secret,
                        const EVP_MD *md)
{
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    char *signing = NULL, *sig = NULL, *tok = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    assert_true(asprintf(&signing, "%s.%s", h, p) > 0);
    if (md != NULL) {
        assert_non_null(HMAC(md, secret, (int)strlen(secret), (unsigned char *)signing,
                             strlen(signing), mac, &mac_len));
        sig = b64url(mac, mac_len);
    }
    assert_true(asprintf(&tok, "%s.%s", signing, sig ? sig : "") > 0);
    free(h);
    free(p);
    free(signing);
    free(sig);
    return tok;
}

static void test_minted_token_fields(void **state)
{
    access_token_opts_t o = opts("alice", 0);
    char *tok = access_token_sync(&o);
    const char *dot1, *dot2;
    json_t *header, *payload, *grants, *sync;

    assert_non_null(tok);
    dot1 = strchr(tok, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));

    header = part_json(tok, (size_t)(dot1 - tok));
    assert_int_equal(json_object_size(header), 3);
    assert_string_equal(json_string_value(json_object_get(header, "alg")), "HS256");
    assert_string_equal(json_string_value(json_object_get(header, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(header, "cty")), "twilio-fpa;v=1");

    payload = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    assert_int_equal(json_object_size(payload), 6);
    assert_string_equal(json_string_value(json_object_get(payload, "jti")), API_KEY "-1700000000");
    assert_string_equal(json_string_value(json_object_get(payload, "iss")), API_KEY);
    assert_string_equal(json_string_value(json_object_get(payload, "sub")), ACCOUNT);
    assert_true(json_is_integer(json_object_get(payload, "iat")));
    assert_true(json_is_integer(json_object_get(payload, "exp")));
    assert_int_equal(json_integer_value(json_object_get(payload, "iat")), NOW);
    assert_int_equal(json_integer_value(json_object_get(payload, "exp")),
                     json_integer_value(json_object_get(payload, "iat")) + 3600);
    grants = json_object_get(payload, "grants");
    assert_true(json_is_object(grants));
    assert_int_equal(json_object_size(grants), 2);
    assert_string_equal(json_string_value(json_object_get(grants, "identity")), "alice");
    sync = json_object_get(grants, "data_sync");
    assert_true(json_is_object(sync));
    assert_int_equal(json_object_size(sync), 1);
    assert_string_equal(json_string_value(json_object_get(sync, "service_sid")), SERVICE);

    json_decref(header);
    json_decref(payload);
    free(tok);
}

/* The signature is HMAC-SHA256(api_secret, header.payload), base64url: checked with OpenSSL. */
static void test_signature_is_hmac_sha256(void **state)
{
    access_token_opts_t o = opts("alice", 0);
    char *tok = access_token_sync(&o);
    const char *dot2;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char *expected;

    assert_non_null(tok);
    dot2 = strrchr(tok, '.');
    assert_non_null(HMAC(EVP_sha256(), API_SECRET, (int)strlen(API_SECRET),
                         (const unsigned char *)tok, (size_t)(dot2 - tok), mac, &mac_len));
    assert_int_equal(mac_len, 32);
    expected = b64url(mac, mac_len);
    assert_string_equal(dot2 + 1, expected);
    /* And not with some other key. */
    assert_non_null(HMAC(EVP_sha256(), "x", 1, (const unsigned char *)tok, (size_t)(dot2 - tok),
                         mac, &mac_len));
    free(expected);
    expected = b64url(mac, mac_len);
    assert_string_not_equal(dot2 + 1, expected);
    free(expected);
    free(tok);
}

static void test_ttl_and_escaping(void **state)
{
    const char *odd = "a \"quoted\" \\ name \xc3\xa9\n";
    access_token_opts_t o = opts(odd, 60);
    char *tok = access_token_sync(&o), *id = NULL, *sid = NULL;
    const char *dot1;
    json_t *payload;

    assert_non_null(tok);
    dot1 = strchr(tok, '.');
    payload = part_json(dot1 + 1, (size_t)(strrchr(tok, '.') - dot1 - 1));
    assert_int_equal(json_integer_value(json_object_get(payload, "exp")), NOW + 60);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(payload, "grants"), "identity")), odd);
    json_decref(payload);
    assert_int_equal(access_token_verify(tok, API_SECRET, NOW + 59, &id, &sid, NULL), TASSA_OK);
    assert_string_equal(id, odd);
    free(id);
    free(sid);
    assert_int_equal(access_token_verify(tok, API_SECRET, NOW + 60, &id, &sid, NULL),
                     TASSA_EUNAUTH);
    free(tok);
}

/* The token as libjwt 1.x and jansson made it before the lean path (the reference the
 * official clients were tested against): the lean minter must give the same bytes. */
static char *libjwt_reference(const access_token_opts_t *o)
{
    jwt_t *jwt = NULL;
    char jti[160], *text, *token;
    json_t *grants = json_pack("{s:{s:s, s:{s:s}}}", "grants", "identity", o->identity, "data_sync",
                               "service_sid", o->sync_service_sid);

    assert_non_null(grants);
    text = json_dumps(grants, JSON_COMPACT);
    snprintf(jti, sizeof jti, "%s-%lld", o->api_key, (long long)o->now);
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_header(jwt, "cty", "twilio-fpa;v=1"), 0);
    assert_int_equal(jwt_add_grant(jwt, "jti", jti), 0);
    assert_int_equal(jwt_add_grant(jwt, "iss", o->api_key), 0);
    assert_int_equal(jwt_add_grant(jwt, "sub", o->account_sid), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "iat", (long)o->now), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "exp", (long)o->now + (o->ttl ? o->ttl : 3600)), 0);
    assert_int_equal(jwt_add_grants_json(jwt, text), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)o->api_secret,
                                 (int)strlen(o->api_secret)),
                     0);
    token = jwt_encode_str(jwt);
    jwt_free(jwt);
    free(text);
    json_decref(grants);
    return token;
}

static void test_lean_token_matches_libjwt_bytes(void **state)
{
    const char *ids[] = {"alice", "a \"quoted\" \\ name \xc3\xa9\n", "tab\there\x01\x1f\x7f/slash",
                         "\xe2\x80\xa8 line sep, \xf0\x9f\x98\x80 emoji", "\b\f\r"};
    hs256_key_t *key = hs256_key_new(API_SECRET, strlen(API_SECRET));

    assert_non_null(key);
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        access_token_opts_t o = opts(ids[i], i == 0 ? 0 : 60 * (long)i);
        char *want = libjwt_reference(&o), *got = access_token_sync(&o),
             *keyed = access_token_sync_keyed(&o, key);
        assert_non_null(want);
        assert_string_equal(got, want);
        assert_string_equal(keyed, want);
        free(want);
        free(got);
        free(keyed);
    }
    /* Not UTF-8 (a lone continuation byte, an overlong '/', a surrogate): no token. */
    const char *bad[] = {"x\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        access_token_opts_t o = opts(bad[i], 0);
        assert_null(access_token_sync_keyed(&o, key));
        assert_null(access_token_sync(&o));
    }
    access_token_opts_t o = opts("alice", 0);
    assert_null(access_token_sync_keyed(&o, NULL));
    hs256_key_free(key);
}

static void test_sync_refuses_missing_fields(void **state)
{
    access_token_opts_t o;

    assert_null(access_token_sync(NULL));
    o = opts(NULL, 0);
    assert_null(access_token_sync(&o));
    o = opts("", 0);
    assert_null(access_token_sync(&o));
    o = opts("alice", -1);
    assert_null(access_token_sync(&o));
    o = opts("alice", 0);
    o.account_sid = NULL;
    assert_null(access_token_sync(&o));
    o = opts("alice", 0);
    o.api_key = "";
    assert_null(access_token_sync(&o));
    o = opts("alice", 0);
    o.api_secret = NULL;
    assert_null(access_token_sync(&o));
    o = opts("alice", 0);
    o.sync_service_sid = "";
    assert_null(access_token_sync(&o));
    o = opts("bad \xff utf-8", 0);
    assert_null(access_token_sync(&o));
}

static void test_verify_round_trip(void **state)
{
    access_token_opts_t o = opts("alice", 0);
    char *tok = access_token_sync(&o), *id = NULL, *sid = NULL;
    errmsg_t em = {{0}};

    assert_non_null(tok);
    assert_int_equal(access_token_verify(tok, API_SECRET, NOW, &id, &sid, &em), TASSA_OK);
    assert_string_equal(id, "alice");
    assert_string_equal(sid, SERVICE);
    free(id);
    free(sid);
    free(tok);
}

static void test_verify_wrong_secret_and_expired(void **state)
{
    access_token_opts_t o = opts("alice", 0);
    char *tok = access_token_sync(&o), *id = (char *)"x", *sid = (char *)"y";
    errmsg_t em = {{0}};

    assert_non_null(tok);
    assert_int_equal(access_token_verify(tok, "other-secret", NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "bad access token signature");
    assert_null(id);
    assert_null(sid);
    assert_int_equal(access_token_verify(tok, API_SECRET, NOW + 3600, &id, &sid, &em),
                     TASSA_EUNAUTH);
    assert_string_equal(em.text, "token expired");
    assert_null(id);
    assert_int_equal(access_token_verify(tok, API_SECRET, NOW + 3599, &id, &sid, &em), TASSA_OK);
    free(id);
    free(sid);
    assert_int_equal(access_token_verify(tok, NULL, NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_int_equal(access_token_verify(tok, "", NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_int_equal(access_token_verify(NULL, API_SECRET, NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_int_equal(access_token_verify("a.b.c", API_SECRET, NOW, &id, &sid, &em), TASSA_EUNAUTH);
    free(tok);
}

static void test_verify_header_and_grant_rules(void **state)
{
    const char *tw = "{\"alg\":\"HS512\",\"typ\":\"JWT\",\"cty\":\"twilio-fpa;v=1\"}";
    /* twilio-python style: nbf, no iat. */
    const char *py = "{\"jti\":\"SK1-1\",\"iss\":\"SK1\",\"sub\":\"AC1\",\"nbf\":1700000000,"
                     "\"exp\":1700003600,\"grants\":{\"identity\":\"bob\","
                     "\"data_sync\":{\"service_sid\":\"IS9\"}}}";
    const char *no_sync = "{\"exp\":1700003600,\"grants\":{\"identity\":\"bob\"}}";
    const char *no_exp = "{\"grants\":{\"identity\":\"bob\",\"data_sync\":{\"service_sid\":"
                         "\"IS9\"}}}";
    char *hs512 = hand_token(tw, py, API_SECRET, EVP_sha512());
    char *hs384_as_512 = hand_token(tw, py, API_SECRET, EVP_sha384());
    char *no_cty = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", py, API_SECRET, EVP_sha256());
    char *none = hand_token("{\"alg\":\"none\",\"cty\":\"twilio-fpa;v=1\"}", py, API_SECRET, NULL);
    char *rs =
        hand_token("{\"alg\":\"RS256\",\"cty\":\"twilio-fpa;v=1\"}", py, API_SECRET, EVP_sha256());
    char *t_no_sync = hand_token(tw, no_sync, API_SECRET, EVP_sha512());
    char *t_no_exp = hand_token(tw, no_exp, API_SECRET, EVP_sha512());
    char *id = NULL, *sid = NULL;
    errmsg_t em = {{0}};

    assert_int_equal(access_token_verify(hs512, API_SECRET, NOW, &id, &sid, &em), TASSA_OK);
    assert_string_equal(id, "bob");
    assert_string_equal(sid, "IS9");
    free(id);
    free(sid);
    assert_int_equal(access_token_verify(hs512, API_SECRET, NOW - 1, &id, &sid, &em),
                     TASSA_EUNAUTH);
    assert_string_equal(em.text, "token not yet valid");
    assert_int_equal(access_token_verify(hs384_as_512, API_SECRET, NOW, &id, &sid, &em),
                     TASSA_EUNAUTH);
    assert_int_equal(access_token_verify(no_cty, API_SECRET, NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "not a Twilio access token (cty)");
    assert_int_equal(access_token_verify(none, API_SECRET, NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_int_equal(access_token_verify(rs, API_SECRET, NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "access token algorithm must be HS256, HS384 or HS512");
    assert_int_equal(access_token_verify(t_no_sync, API_SECRET, NOW, &id, &sid, &em),
                     TASSA_EUNAUTH);
    assert_string_equal(em.text, "access token has no data_sync service_sid grant");
    assert_int_equal(access_token_verify(t_no_exp, API_SECRET, NOW, &id, &sid, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "token has no exp claim");
    assert_null(id);
    assert_null(sid);
    free(hs512);
    free(hs384_as_512);
    free(no_cty);
    free(none);
    free(rs);
    free(t_no_sync);
    free(t_no_exp);
}

#define WORKSPACE "WS00000000000000000000000000000004"
#define WORKER    "WK00000000000000000000000000000005"

/* A worker token: the sync token's claims plus grants.task_router, signed as HS256 with the
 * API secret (libjwt checks it), and what access_token_verify reads of it still holds. */
static void test_worker_token(void **state)
{
    access_token_opts_t o = opts("erin", 0);
    o.workspace_sid = WORKSPACE;
    o.worker_sid = WORKER;
    char *tok = access_token_worker(&o);
    assert_non_null(tok);
    jwt_t *jwt = NULL;
    assert_int_equal(
        jwt_decode(&jwt, tok, (const unsigned char *)API_SECRET, (int)strlen(API_SECRET)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    jwt_free(jwt);
    const char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
    json_t *payload = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    assert_int_equal(json_object_size(payload), 6);
    assert_string_equal(json_string_value(json_object_get(payload, "sub")), ACCOUNT);
    assert_int_equal(json_integer_value(json_object_get(payload, "exp")), NOW + 3600);
    json_t *grants = json_object_get(payload, "grants");
    assert_int_equal(json_object_size(grants), 3);
    assert_string_equal(json_string_value(json_object_get(grants, "identity")), "erin");
    json_t *tr = json_object_get(grants, "task_router");
    assert_int_equal(json_object_size(tr), 3);
    assert_string_equal(json_string_value(json_object_get(tr, "workspace_sid")), WORKSPACE);
    assert_string_equal(json_string_value(json_object_get(tr, "worker_sid")), WORKER);
    assert_string_equal(json_string_value(json_object_get(tr, "role")), "worker");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(grants, "data_sync"), "service_sid")),
        SERVICE);
    json_decref(payload);

    char *id = NULL, *sid = NULL;
    assert_int_equal(access_token_verify(tok, API_SECRET, NOW + 10, &id, &sid, NULL), TASSA_OK);
    assert_string_equal(id, "erin");
    free(id);
    free(sid);
    assert_int_equal(access_token_verify(tok, "another-secret", NOW + 10, &id, &sid, NULL),
                     TASSA_EUNAUTH);
    free(tok);

    /* The sync token ignores the worker fields; the worker token needs both sids. */
    char *plain = access_token_sync(&o);
    assert_non_null(plain);
    assert_null(strstr(plain, "task_router"));
    free(plain);
    o.worker_sid = "";
    assert_null(access_token_worker(&o));
    o.worker_sid = WORKER;
    o.workspace_sid = NULL;
    assert_null(access_token_worker(&o));
    o.workspace_sid = WORKSPACE;
    o.api_secret = NULL;
    assert_null(access_token_worker(&o));
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minted_token_fields),
        cmocka_unit_test(test_signature_is_hmac_sha256),
        cmocka_unit_test(test_ttl_and_escaping),
        cmocka_unit_test(test_lean_token_matches_libjwt_bytes),
        cmocka_unit_test(test_sync_refuses_missing_fields),
        cmocka_unit_test(test_verify_round_trip),
        cmocka_unit_test(test_verify_wrong_secret_and_expired),
        cmocka_unit_test(test_verify_header_and_grant_rules),
        cmocka_unit_test(test_worker_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
