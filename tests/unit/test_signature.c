/* test_signature.c - X-Twilio-Signature against vectors computed by twilio-node's algorithm.
 *
 * Every expected signature below was computed independently with node's crypto module
 * (HMAC-SHA1 over url + sorted key+value, array values deduplicated and sorted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/signature.h"

#define DOC_URL     "https://mycompany.com/myapp.php?foo=1&bar=2"
#define DOC_URL_443 "https://mycompany.com:443/myapp.php?foo=1&bar=2"
#define BODY        "{\"CallSid\":\"CA1234567890ABCDE\",\"Caller\":\"+12349013030\"}"
#define BODY_URL                                                                                   \
    "https://example.com/myapp?bodySHA256="                                                        \
    "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9"

/* Twilio's documented example (api-snippets signature_validation.3.x.js). The parameters are
 * in an order that is not sorted, to show that signing sorts them. */
static param_t doc_items[] = {
    {"To", "+18005551212"}, {"CallSid", "CA1234567890ABCDE"}, {"From", "+14158675310"},
    {"Digits", "1234"},     {"Caller", "+14158675310"},
};

static params_t doc_params(void)
{
    params_t p = {doc_items, sizeof doc_items / sizeof doc_items[0],
                  sizeof doc_items / sizeof doc_items[0]};
    return p;
}

/* Snapshot of the keys, to prove the caller's order is left alone. */
static void assert_doc_order_unchanged(void)
{
    assert_string_equal(doc_items[0].key, "To");
    assert_string_equal(doc_items[1].key, "CallSid");
    assert_string_equal(doc_items[4].key, "Caller");
}

static void test_compute_twilio_doc_example(void **state)
{
    params_t p = doc_params();
    char *sig = signature_compute("12345", DOC_URL, &p);

    assert_non_null(sig);
    assert_string_equal(sig, "GvWf1cFY/Q7PnoempGyD5oXAezc=");
    assert_doc_order_unchanged();
    free(sig);
}

/* The brief's numbers (+12349013030) give a different signature than Twilio's docs show:
 * the doc signature belongs to +14158675310. This pins the value node computes. */
static void test_compute_other_numbers(void **state)
{
    param_t items[] = {
        {"CallSid", "CA1234567890ABCDE"}, {"Caller", "+12349013030"}, {"Digits", "1234"},
        {"From", "+12349013030"},         {"To", "+18005551212"},
    };
    params_t p = {items, 5, 5};
    char *sig = signature_compute("12345", DOC_URL, &p);

    assert_non_null(sig);
    assert_string_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    free(sig);
}

static void test_validate_doc_example(void **state)
{
    params_t p = doc_params();
    errmsg_t em = {{0}};

    assert_int_equal(
        signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL, &p, NULL, 0, &em),
        TASSA_OK);
    assert_doc_order_unchanged();
}

static void test_validate_port_variants(void **state)
{
    params_t p = doc_params();
    errmsg_t em = {{0}};
    char *sig443 = signature_compute("12345", DOC_URL_443, &p);

    assert_non_null(sig443);
    assert_string_equal(sig443, "5s2PFy0qmPcZucb4eH4b08ZJtL0=");
    /* Signed with :443, received without a port. */
    assert_int_equal(signature_validate("12345", sig443, DOC_URL, &p, NULL, 0, &em), TASSA_OK);
    /* Signed without a port, received with :443. */
    assert_int_equal(
        signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL_443, &p, NULL, 0, &em),
        TASSA_OK);
    /* http gets :80, not :443. */
    assert_int_equal(signature_validate("12345", sig443,
                                        "http://mycompany.com/myapp.php?foo=1&bar=2", &p, NULL, 0,
                                        &em),
                     TASSA_EFORBIDDEN);
    free(sig443);
}

static void test_validate_removes_any_port(void **state)
{
    param_t items[] = {{"b", "2"}, {"a", "z"}, {"B", "1"}, {"a", "x"}, {"a", "z"}};
    params_t p = {items, 5, 5};
    params_t none = {NULL, 0, 0};

    /* Signed without the port, received on :8080 (twilio-node's removePort drops any port). */
    assert_int_equal(signature_validate("12345", "btT4glbzSs2AcmdI87nZguSvy1Y=",
                                        "http://example.com:8080/cb", &p, NULL, 0, NULL),
                     TASSA_OK);
    /* IPv6 literal: the port follows the closing bracket. */
    assert_int_equal(signature_validate("12345", "zzHNcaahSQ6J1WdCvC3vZ8O7cmo=",
                                        "http://[::1]:8080/x", &none, NULL, 0, NULL),
                     TASSA_OK);
}

static void test_repeated_keys_sorted_and_deduplicated(void **state)
{
    param_t items[] = {{"b", "2"}, {"a", "z"}, {"B", "1"}, {"a", "x"}, {"a", "z"}};
    param_t reordered[] = {{"a", "x"}, {"a", "z"}, {"b", "2"}, {"a", "z"}, {"B", "1"}};
    param_t once[] = {{"B", "1"}, {"a", "x"}, {"a", "z"}, {"b", "2"}};
    params_t p = {items, 5, 5}, q = {reordered, 5, 5}, r = {once, 4, 4};
    char *s1 = signature_compute("12345", "http://example.com:8080/cb", &p);
    char *s2 = signature_compute("12345", "http://example.com:8080/cb", &q);
    char *s3 = signature_compute("12345", "http://example.com:8080/cb", &r);

    assert_non_null(s1);
    assert_non_null(s2);
    assert_non_null(s3);
    assert_string_equal(s1, "exOAmQ5qvvsXx+7slS8lgqE6DLQ=");
    assert_string_equal(s2, s1);
    assert_string_equal(s3, s1);
    /* The caller's array is not reordered. */
    assert_string_equal(items[0].key, "b");
    assert_string_equal(items[1].value, "z");
    assert_string_equal(items[3].value, "x");
    free(s1);
    free(s2);
    free(s3);
}

/* Issue 9 defect 11: a repeated identical pair is accepted signed once (twilio-node) or
 * signed at every occurrence; a count the signer did not sign is not. */
static void test_validate_repeats_both_ways(void **state)
{
    (void)state;
    const char *url = "http://example.com:8080/cb";
    param_t items[] = {{"b", "2"}, {"a", "z"}, {"B", "1"}, {"a", "x"}, {"a", "z"}};
    param_t three[] = {{"b", "2"}, {"a", "z"}, {"B", "1"}, {"a", "x"}, {"a", "z"}, {"a", "z"}};
    params_t p = {items, 5, 5}, q = {three, 6, 6};
    /* base64(HMAC-SHA1("12345", url + "B1" "ax" "az" "az" "b2")), made here with OpenSSL */
    const char *every_text = "http://example.com:8080/cbB1axazazb2";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char every[64];
    assert_non_null(HMAC(EVP_sha1(), "12345", 5, (const unsigned char *)every_text,
                         strlen(every_text), mac, &mac_len));
    EVP_EncodeBlock((unsigned char *)every, mac, (int)mac_len);

    assert_int_equal(
        signature_validate("12345", "exOAmQ5qvvsXx+7slS8lgqE6DLQ=", url, &p, NULL, 0, NULL),
        TASSA_OK);
    assert_int_equal(signature_validate("12345", every, url, &p, NULL, 0, NULL), TASSA_OK);
    assert_int_equal(signature_validate("12345", every, url, &q, NULL, 0, NULL), TASSA_EFORBIDDEN);
}

static void test_utf8_and_empty_params(void **state)
{
    param_t items[] = {{"z", "1"}, {"\xc3\xa9", "\xc3\xbc"}};
    params_t p = {items, 2, 2};
    char *s = signature_compute("tok", "https://h/p", &p);
    char *e = signature_compute("12345", "http://[::1]/x", NULL);

    assert_non_null(s);
    assert_string_equal(s, "NAuHSikoZgq64Ov2PNezBylHSfo=");
    assert_non_null(e);
    assert_string_equal(e, "zzHNcaahSQ6J1WdCvC3vZ8O7cmo=");
    assert_null(signature_compute(NULL, "http://x/", NULL));
    assert_null(signature_compute("k", NULL, NULL));
    free(s);
    free(e);
}

static void test_changed_param_forbidden(void **state)
{
    param_t items[] = {
        {"CallSid", "CA1234567890ABCDE"}, {"Caller", "+14158675310"}, {"Digits", "1235"},
        {"From", "+14158675310"},         {"To", "+18005551212"},
    };
    param_t extra[] = {
        {"CallSid", "CA1234567890ABCDE"}, {"Caller", "+14158675310"}, {"Digits", "1234"},
        {"From", "+14158675310"},         {"To", "+18005551212"},     {"X", ""},
    };
    params_t p = {items, 5, 5}, q = {extra, 6, 6}, d = doc_params();
    errmsg_t em = {{0}};

    assert_int_equal(
        signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL, &p, NULL, 0, &em),
        TASSA_EFORBIDDEN);
    assert_string_equal(em.text, "signature mismatch");
    assert_int_equal(
        signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL, &q, NULL, 0, NULL),
        TASSA_EFORBIDDEN);
    /* Changed URL (query) with the right params. */
    assert_int_equal(signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=",
                                        "https://mycompany.com/myapp.php?foo=1&bar=3", &d, NULL, 0,
                                        NULL),
                     TASSA_EFORBIDDEN);
}

static void test_wrong_token_and_bad_signatures(void **state)
{
    params_t p = doc_params();
    errmsg_t em = {{0}};

    assert_int_equal(
        signature_validate("12346", "GvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL, &p, NULL, 0, &em),
        TASSA_EFORBIDDEN);
    assert_string_equal(em.text, "signature mismatch");
    /* A prefix, an extension and a one-character change of the right signature. */
    assert_int_equal(
        signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAez", DOC_URL, &p, NULL, 0, NULL),
        TASSA_EFORBIDDEN);
    assert_int_equal(
        signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc==", DOC_URL, &p, NULL, 0, NULL),
        TASSA_EFORBIDDEN);
    assert_int_equal(
        signature_validate("12345", "HvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL, &p, NULL, 0, NULL),
        TASSA_EFORBIDDEN);
    /* No auth token: fail closed. */
    assert_int_equal(
        signature_validate("", "GvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL, &p, NULL, 0, &em),
        TASSA_EFORBIDDEN);
    assert_string_equal(em.text, "no auth token configured");
    assert_int_equal(
        signature_validate(NULL, "GvWf1cFY/Q7PnoempGyD5oXAezc=", DOC_URL, &p, NULL, 0, NULL),
        TASSA_EFORBIDDEN);
}

static void test_missing_signature(void **state)
{
    params_t p = doc_params();
    errmsg_t em = {{0}};

    assert_int_equal(signature_validate("12345", NULL, DOC_URL, &p, NULL, 0, &em),
                     TASSA_EFORBIDDEN);
    assert_string_equal(em.text, "missing X-Twilio-Signature");
    memset(&em, 0, sizeof em);
    assert_int_equal(signature_validate("12345", "", DOC_URL, &p, NULL, 0, &em), TASSA_EFORBIDDEN);
    assert_string_equal(em.text, "missing X-Twilio-Signature");
}

static void test_body_sha256(void **state)
{
    param_t junk_items[] = {{"ignored", "because bodySHA256 is in the URL"}};
    params_t junk = {junk_items, 1, 1};
    errmsg_t em = {{0}};
    const char *tampered = "{\"CallSid\":\"CA1234567890ABCDE\",\"Caller\":\"+12349013031\"}";

    assert_int_equal(signature_validate("12345", "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=", BODY_URL, NULL,
                                        BODY, strlen(BODY), &em),
                     TASSA_OK);
    /* Params are ignored when the URL carries bodySHA256. */
    assert_int_equal(signature_validate("12345", "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=", BODY_URL, &junk,
                                        BODY, strlen(BODY), &em),
                     TASSA_OK);
    /* Twilio signed with :443. */
    assert_int_equal(signature_validate("12345", "dk3mnzGR4FPG18qo++EYNpsDfdo=", BODY_URL, NULL,
                                        BODY, strlen(BODY), &em),
                     TASSA_OK);
    /* Right signature, tampered body. */
    assert_int_equal(signature_validate("12345", "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=", BODY_URL, NULL,
                                        tampered, strlen(tampered), &em),
                     TASSA_EFORBIDDEN);
    assert_string_equal(em.text, "bodySHA256 mismatch");
    /* One byte short of the body. */
    assert_int_equal(signature_validate("12345", "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=", BODY_URL, NULL,
                                        BODY, strlen(BODY) - 1, &em),
                     TASSA_EFORBIDDEN);
    /* A missing body hashes as "{}", like twilio-node. */
    assert_int_equal(signature_validate("12345", "wdd06BYtWu2RubWhWFH9M1+m0S8=",
                                        "https://example.com/x?bodySHA256="
                                        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f6"
                                        "1caaff8a",
                                        NULL, NULL, 0, &em),
                     TASSA_OK);
    /* Wrong signature with a good body. */
    memset(&em, 0, sizeof em);
    assert_int_equal(signature_validate("12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=", BODY_URL, NULL,
                                        BODY, strlen(BODY), &em),
                     TASSA_EFORBIDDEN);
    assert_string_equal(em.text, "signature mismatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compute_twilio_doc_example),
        cmocka_unit_test(test_compute_other_numbers),
        cmocka_unit_test(test_validate_doc_example),
        cmocka_unit_test(test_validate_port_variants),
        cmocka_unit_test(test_validate_removes_any_port),
        cmocka_unit_test(test_repeated_keys_sorted_and_deduplicated),
        cmocka_unit_test(test_validate_repeats_both_ways),
        cmocka_unit_test(test_utf8_and_empty_params),
        cmocka_unit_test(test_changed_param_forbidden),
        cmocka_unit_test(test_wrong_token_and_bad_signatures),
        cmocka_unit_test(test_missing_signature),
        cmocka_unit_test(test_body_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
