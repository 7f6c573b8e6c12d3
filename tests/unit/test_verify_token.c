/* test_verify_token.c - the caller JWT check: what it accepts and each way it refuses.
 *
 * Tokens are made three ways: by verify_token_mint, by libjwt directly, and by hand (JSON
 * text, base64url and OpenSSL HMAC) so that headers libjwt would never write can be tried. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/hs256.h"
#include "auth/verify_token.h"

#define NOW    ((time_t)1700000000)
#define SECRET "test-secret-0123456789"

/* base64url without padding of data[0..len); malloc'd. */
static char *b64url(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    int n;

    assert_non_null(out);
    n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return out;
}

/* A compact JWS from raw header and payload JSON text, signed with HMAC over md (or with an
 * empty signature when md is NULL). malloc'd. */
static char *hand_token(const char *header, const char *payload, const char *secret,
                        const EVP_MD *md)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
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

/* An HS256 token over payload, made by hand. */
static char *hs256(const char *payload)
{
    return hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, SECRET, EVP_sha256());
}

static void expect_unauth(const char *token, const char *identity, const char *detail)
{
    errmsg_t em = {{0}};

    assert_int_equal(verify_token(token, identity, SECRET, NOW, &em), TASSA_EUNAUTH);
    if (detail != NULL)
        assert_string_equal(em.text, detail);
    else
        assert_true(em.text[0] != '\0');
}

static void test_accepts_minted_token(void **state)
{
    errmsg_t em = {{0}};
    char *tok = verify_token_mint("alice", SECRET, 3600, NOW);

    assert_non_null(tok);
    assert_int_equal(verify_token(tok, "alice", SECRET, NOW, &em), TASSA_OK);
    assert_int_equal(verify_token(tok, "alice", SECRET, NOW + 3599, &em), TASSA_OK);
    assert_int_equal(verify_token(tok, "alice", SECRET, NOW + 3600, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "token expired");
    assert_int_equal(verify_token(tok, "bob", SECRET, NOW, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "token identity does not match");
    free(tok);
}

static void test_minted_token_claims(void **state)
{
    char *tok = verify_token_mint("alice", SECRET, 60, NOW);
    jwt_t *jwt = NULL;

    assert_non_null(tok);
    assert_int_equal(jwt_decode(&jwt, tok, (const unsigned char *)SECRET, strlen(SECRET)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    assert_string_equal(jwt_get_header(jwt, "typ"), "JWT");
    assert_string_equal(jwt_get_grant(jwt, "identity"), "alice");
    assert_string_equal(jwt_get_grant(jwt, "sub"), "alice");
    assert_int_equal(jwt_get_grant_int(jwt, "iat"), NOW);
    assert_int_equal(jwt_get_grant_int(jwt, "exp"), NOW + 60);
    jwt_free(jwt);
    free(tok);
}

static void test_mint_refuses_bad_input(void **state)
{
    assert_null(verify_token_mint(NULL, SECRET, 60, NOW));
    assert_null(verify_token_mint("", SECRET, 60, NOW));
    assert_null(verify_token_mint("alice", NULL, 60, NOW));
    assert_null(verify_token_mint("alice", "", 60, NOW));
    assert_null(verify_token_mint("alice", SECRET, 0, NOW));
    assert_null(verify_token_mint("alice", SECRET, -5, NOW));
    assert_null(verify_token_mint("bad\xff utf8", SECRET, 60, NOW));
}

/* A token built with libjwt alone, as another service holding JWT_SECRET would. */
static void test_accepts_libjwt_token(void **state)
{
    jwt_t *jwt = NULL;
    char *tok;

    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grant(jwt, "identity", "alice"), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "exp", NOW + 10), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "nbf", NOW), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET)),
                     0);
    tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    assert_int_equal(verify_token(tok, "alice", SECRET, NOW, NULL), TASSA_OK);
    jwt_free(jwt);
    free(tok);
}

static void test_accepts_hand_made_token_without_exp(void **state)
{
    char *tok = hs256("{\"sub\":\"alice\"}");

    assert_int_equal(verify_token(tok, "alice", SECRET, NOW, NULL), TASSA_OK);
    free(tok);
}

/* The common header (jsonwebtoken's and libjwt's bytes) and the same header written otherwise
 * read alike: both verify, both unpack to alg HS256 and typ JWT, from many threads at once;
 * a bad signature under the common header is still refused. */
static void *unpack_common(void *tok)
{
    for (int i = 0; i < 2000; i++) {
        json_t *h = NULL, *c = NULL;
        if (verify_token_jws_unpack(tok, &h, &c, NULL) ||
            strcmp(json_string_value(json_object_get(h, "alg")), "HS256") ||
            verify_token(tok, "alice", SECRET, NOW, NULL))
            return tok; /* failure */
        json_decref(h);
        json_decref(c);
    }
    return NULL;
}

static void test_common_and_other_headers_read_alike(void **state)
{
    (void)state;
    const char *claims = "{\"sub\":\"alice\",\"exp\":1700000100}";
    char *common = hs256(claims);
    char *other = hand_token("{\"typ\":\"JWT\", \"alg\":\"HS256\"}", claims, SECRET, EVP_sha256());
    assert_int_equal(strncmp(common, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0);
    assert_int_not_equal(strncmp(other, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0);
    for (int k = 0; k < 2; k++) {
        char *tok = k ? other : common;
        json_t *h = NULL, *c = NULL;
        assert_int_equal(verify_token_jws_unpack(tok, &h, &c, NULL), TASSA_OK);
        assert_string_equal(json_string_value(json_object_get(h, "alg")), "HS256");
        assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
        assert_int_equal(json_object_size(h), 2);
        json_decref(h);
        json_decref(c);
        assert_int_equal(verify_token(tok, "alice", SECRET, NOW, NULL), TASSA_OK);
    }
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, unpack_common, common), 0);
    for (int i = 0; i < 4; i++) {
        void *failed = (void *)1;
        assert_int_equal(pthread_join(t[i], &failed), 0);
        assert_null(failed);
    }
    char *forged =
        hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, "another-secret", EVP_sha256());
    expect_unauth(forged, "alice", "bad token signature");
    free(forged);
    free(common);
    free(other);
}

static void test_missing_token_or_identity(void **state)
{
    errmsg_t em = {{0}};
    char *tok = verify_token_mint("alice", SECRET, 60, NOW);

    assert_int_equal(verify_token(NULL, "alice", SECRET, NOW, &em), TASSA_EMISSING);
    assert_string_equal(em.text, "missing token");
    assert_int_equal(verify_token("", "alice", SECRET, NOW, &em), TASSA_EMISSING);
    assert_string_equal(em.text, "missing token");
    assert_int_equal(verify_token(tok, NULL, SECRET, NOW, &em), TASSA_EMISSING);
    assert_string_equal(em.text, "missing identity");
    assert_int_equal(verify_token(tok, "", SECRET, NOW, &em), TASSA_EMISSING);
    assert_string_equal(em.text, "missing identity");
    /* No secret: refuse, never skip the signature check. */
    assert_int_equal(verify_token(tok, "alice", NULL, NOW, &em), TASSA_EUNAUTH);
    assert_int_equal(verify_token(tok, "alice", "", NOW, &em), TASSA_EUNAUTH);
    assert_int_equal(verify_token(tok, "alice", SECRET, NOW, NULL), TASSA_OK);
    free(tok);
}

static void test_rejects_alg_none(void **state)
{
    const char *payload = "{\"identity\":\"alice\",\"exp\":1700003600}";
    char *none = hand_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, SECRET, NULL);
    char *none_upper = hand_token("{\"alg\":\"None\",\"typ\":\"JWT\"}", payload, SECRET, NULL);
    /* alg none but carrying a genuine HS256 signature over the same text. */
    char *none_signed =
        hand_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, SECRET, EVP_sha256());
    char *no_alg = hand_token("{\"typ\":\"JWT\"}", payload, SECRET, EVP_sha256());

    assert_true(none[strlen(none) - 1] == '.');
    expect_unauth(none, "alice", NULL);
    expect_unauth(none_upper, "alice", NULL);
    expect_unauth(none_signed, "alice", "token algorithm must be HS256");
    expect_unauth(no_alg, "alice", "token algorithm must be HS256");
    free(none);
    free(none_upper);
    free(none_signed);
    free(no_alg);
}

static void test_rejects_other_algs(void **state)
{
    const char *payload = "{\"identity\":\"alice\",\"exp\":1700003600}";
    char *t384 = hand_token("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", payload, SECRET, EVP_sha384());
    char *t512 = hand_token("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, SECRET, EVP_sha512());
    /* RS256 named in the header, HMAC'd with the secret: the classic confusion attack. */
    char *rs = hand_token("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload, SECRET, EVP_sha256());
    jwt_t *jwt = NULL;
    char *lib384;

    expect_unauth(t384, "alice", "token algorithm must be HS256");
    expect_unauth(t512, "alice", "token algorithm must be HS256");
    expect_unauth(rs, "alice", "token algorithm must be HS256");
    /* The same through libjwt, which itself would accept HS384 for this key. */
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grant(jwt, "identity", "alice"), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS384, (const unsigned char *)SECRET, strlen(SECRET)),
                     0);
    lib384 = jwt_encode_str(jwt);
    assert_non_null(lib384);
    expect_unauth(lib384, "alice", "token algorithm must be HS256");
    jwt_free(jwt);
    free(lib384);
    free(t384);
    free(t512);
    free(rs);
}

static void test_rejects_bad_signature(void **state)
{
    errmsg_t em = {{0}};
    char *wrong = verify_token_mint("alice", "another-secret", 3600, NOW);
    char *tok = verify_token_mint("alice", SECRET, 3600, NOW);
    char *sig_flip = strdup(tok), *payload_flip = strdup(tok);
    char *dot;

    assert_int_equal(verify_token(wrong, "alice", SECRET, NOW, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "bad token signature");

    /* Flip one character in the middle of the signature (stays base64url). */
    dot = strrchr(sig_flip, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    expect_unauth(sig_flip, "alice", "bad token signature");

    /* Flip one character in the payload: still decodes, no longer matches the MAC. */
    dot = strchr(payload_flip, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    expect_unauth(payload_flip, "alice", NULL);

    /* Signature removed. */
    *strrchr(tok, '.') = '\0';
    expect_unauth(tok, "alice", NULL);
    free(wrong);
    free(tok);
    free(sig_flip);
    free(payload_flip);
}

/* The key set up once gives the same answers as the secret, on any number of calls. */
static void test_keyed_matches_secret(void **state)
{
    errmsg_t em = {{0}};
    hs256_key_t *key = hs256_key_new(SECRET, strlen(SECRET));
    hs256_key_t *other = hs256_key_new("another-secret", strlen("another-secret"));
    char *tok = verify_token_mint("alice", SECRET, 3600, NOW);
    char *cut = strdup(tok), *longer = NULL;

    assert_non_null(key);
    for (int i = 0; i < 3; i++)
        assert_int_equal(verify_token_keyed(tok, "alice", key, NOW, &em), TASSA_OK);
    assert_int_equal(verify_token_keyed(tok, "bob", key, NOW, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "token identity does not match");
    assert_int_equal(verify_token_keyed(tok, "alice", other, NOW, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "bad token signature");
    assert_int_equal(verify_token_keyed(tok, "alice", NULL, NOW, &em), TASSA_EUNAUTH);
    assert_int_equal(verify_token_keyed(tok, "alice", key, NOW + 3600, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "token expired");
    /* A signature one character short, or with one more: not the MAC. */
    cut[strlen(cut) - 1] = '\0';
    assert_int_equal(verify_token_keyed(cut, "alice", key, NOW, &em), TASSA_EUNAUTH);
    assert_true(asprintf(&longer, "%sA", tok) > 0);
    assert_int_equal(verify_token_keyed(longer, "alice", key, NOW, &em), TASSA_EUNAUTH);
    free(longer);
    free(cut);
    free(tok);
    hs256_key_free(key);
    hs256_key_free(other);
}

static void test_rejects_expired_and_not_yet_valid(void **state)
{
    char *expired = hs256("{\"identity\":\"alice\",\"exp\":1699999999}");
    char *exp_now = hs256("{\"identity\":\"alice\",\"exp\":1700000000}");
    char *exp_next = hs256("{\"identity\":\"alice\",\"exp\":1700000001}");
    char *nbf_future = hs256("{\"identity\":\"alice\",\"nbf\":1700000001}");
    char *nbf_now = hs256("{\"identity\":\"alice\",\"nbf\":1700000000}");
    char *exp_string = hs256("{\"identity\":\"alice\",\"exp\":\"1699999999\"}");
    char *exp_real = hs256("{\"identity\":\"alice\",\"exp\":1699999999.5}");
    char *nbf_null = hs256("{\"identity\":\"alice\",\"nbf\":null}");

    expect_unauth(expired, "alice", "token expired");
    expect_unauth(exp_now, "alice", "token expired"); /* 0 leeway: exp must be > now */
    assert_int_equal(verify_token(exp_next, "alice", SECRET, NOW, NULL), TASSA_OK);
    expect_unauth(nbf_future, "alice", "token not yet valid");
    assert_int_equal(verify_token(nbf_now, "alice", SECRET, NOW, NULL), TASSA_OK);
    /* libjwt reads a string exp as 0 ("no exp"); here it must not make the token immortal. */
    expect_unauth(exp_string, "alice", "token exp claim is not a number");
    expect_unauth(exp_real, "alice", "token expired");
    expect_unauth(nbf_null, "alice", "token nbf claim is not a number");
    free(expired);
    free(exp_now);
    free(exp_next);
    free(nbf_future);
    free(nbf_now);
    free(exp_string);
    free(exp_real);
    free(nbf_null);
}

static void test_identity_claims(void **state)
{
    char *sub_only = hs256("{\"sub\":\"alice\",\"exp\":1700003600}");
    char *both = hs256("{\"identity\":\"bob\",\"sub\":\"alice\"}");
    char *neither = hs256("{\"exp\":1700003600}");
    char *numeric = hs256("{\"identity\":42,\"sub\":\"alice\"}");
    char *dup = hs256("{\"identity\":\"bob\",\"identity\":\"alice\"}");

    assert_int_equal(verify_token(sub_only, "alice", SECRET, NOW, NULL), TASSA_OK);
    expect_unauth(sub_only, "alicE", "token identity does not match");
    /* identity wins over sub. */
    assert_int_equal(verify_token(both, "bob", SECRET, NOW, NULL), TASSA_OK);
    expect_unauth(both, "alice", "token identity does not match");
    expect_unauth(neither, "alice", "token has no identity or sub claim");
    expect_unauth(numeric, "alice", "token identity claim is not a string");
    expect_unauth(dup, "alice", "malformed token payload");
    free(sub_only);
    free(both);
    free(neither);
    free(numeric);
    free(dup);
}

static void test_rejects_garbage(void **state)
{
    static const char *const garbage[] = {
        "a.b",
        "a.b.c.d",
        "..",
        "a..c",
        ".b.c",
        "a.b.",
        "abc",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.!!!!",    /* signature not base64url */
        "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA",   /* padding is not base64url */
        "eyJhbGciOiJIUzI1NiJ9.W10.AAAA",    /* payload is [] */
        "eyJhbGciOiJIUzI1NiJ9.bnVsbA.AAAA", /* payload is null */
        "WyJIUzI1NiJd.e30.AAAA",            /* header is ["HS256"] */
        "eyJhbGciOiJIUzI1NiJ9.e30.A",       /* impossible base64 length */
    };
    unsigned char random_bytes[64];
    char *longtok;
    errmsg_t em = {{0}};
    unsigned seed = 12345;

    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        expect_unauth(garbage[i], "alice", NULL);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof random_bytes - 1; i++) {
            seed = seed * 1103515245u + 12345u;
            random_bytes[i] = (unsigned char)(1 + (seed >> 16) % 255);
        }
        random_bytes[sizeof random_bytes - 1] = '\0';
        assert_int_equal(verify_token((const char *)random_bytes, "alice", SECRET, NOW, NULL),
                         TASSA_EUNAUTH);
    }
    longtok = malloc(VERIFY_TOKEN_MAX_LEN + 2);
    assert_non_null(longtok);
    memset(longtok, 'A', VERIFY_TOKEN_MAX_LEN + 1);
    longtok[10] = '.';
    longtok[20] = '.';
    longtok[VERIFY_TOKEN_MAX_LEN + 1] = '\0';
    assert_int_equal(verify_token(longtok, "alice", SECRET, NOW, &em), TASSA_EUNAUTH);
    assert_string_equal(em.text, "token too long");
    free(longtok);
}

/* Issue 9 defect 7: RFC 7515 4.1.11, an unknown crit extension refuses the token. */
static void test_rejects_crit(void **state)
{
    static const char *headers[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"x-unknown\"],\"x-unknown\":1}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"crit\":[]}",
        "{\"alg\":\"HS256\",\"crit\":\"b64\"}",
        "{\"alg\":\"HS256\",\"crit\":null}",
    };
    (void)state;
    char *ok = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"identity\":\"alice\"}", SECRET,
                          EVP_sha256());
    assert_int_equal(verify_token(ok, "alice", SECRET, NOW, NULL), TASSA_OK);
    free(ok);
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        char *tok = hand_token(headers[i], "{\"identity\":\"alice\"}", SECRET, EVP_sha256());
        expect_unauth(tok, "alice", "token header has a crit extension that is not supported");
        free(tok);
    }
}

/* hs256_sign against OpenSSL's one-shot HMAC, for more keys than a thread keeps contexts of,
 * interleaved, again after keys are freed and new ones made, and from several threads at once. */
static void check_keys(hs256_key_t *const *keys, const char *const *secrets, size_t n, int rounds)
{
    for (int r = 0; r < rounds; r++)
        for (size_t k = 0; k < n; k++) {
            size_t i = (k * 7 + (size_t)r) % n;
            char data[64];
            int len = snprintf(data, sizeof data, "payload %d of key %zu", r, i);
            unsigned char got[HS256_LEN], want[EVP_MAX_MD_SIZE];
            unsigned int wlen = 0;
            assert_int_equal(hs256_sign(keys[i], data, (size_t)len, got), 0);
            assert_non_null(HMAC(EVP_sha256(), secrets[i], (int)strlen(secrets[i]),
                                 (const unsigned char *)data, (size_t)len, want, &wlen));
            assert_int_equal(wlen, HS256_LEN);
            assert_memory_equal(got, want, HS256_LEN);
        }
}

static const char *const SECRETS[] = {"s0",   "secret one", "2",       "three 3 3",
                                      "four", "five!",      "six six", "seven"};
#define NSECRETS (sizeof SECRETS / sizeof SECRETS[0])

static void *sign_in_thread(void *keys)
{
    check_keys(keys, SECRETS, NSECRETS, 50);
    return NULL;
}

static void test_hs256_matches_one_shot_hmac(void **state)
{
    (void)state;
    hs256_key_t *keys[NSECRETS];
    for (size_t i = 0; i < NSECRETS; i++)
        assert_non_null(keys[i] = hs256_key_new(SECRETS[i], strlen(SECRETS[i])));
    check_keys(keys, SECRETS, NSECRETS, 20);
    /* freed keys and new ones in their place (the same secrets, other keys) */
    for (size_t i = 0; i < NSECRETS; i += 2) {
        hs256_key_free(keys[i]);
        assert_non_null(keys[i] = hs256_key_new(SECRETS[i], strlen(SECRETS[i])));
    }
    check_keys(keys, SECRETS, NSECRETS, 20);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sign_in_thread, keys), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (size_t i = 0; i < NSECRETS; i++)
        hs256_key_free(keys[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_minted_token),
        cmocka_unit_test(test_minted_token_claims),
        cmocka_unit_test(test_mint_refuses_bad_input),
        cmocka_unit_test(test_accepts_libjwt_token),
        cmocka_unit_test(test_accepts_hand_made_token_without_exp),
        cmocka_unit_test(test_common_and_other_headers_read_alike),
        cmocka_unit_test(test_missing_token_or_identity),
        cmocka_unit_test(test_rejects_alg_none),
        cmocka_unit_test(test_rejects_other_algs),
        cmocka_unit_test(test_rejects_bad_signature),
        cmocka_unit_test(test_keyed_matches_secret),
        cmocka_unit_test(test_rejects_expired_and_not_yet_valid),
        cmocka_unit_test(test_identity_claims),
        cmocka_unit_test(test_rejects_garbage),
        cmocka_unit_test(test_rejects_crit),
        cmocka_unit_test(test_hs256_matches_one_shot_hmac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
