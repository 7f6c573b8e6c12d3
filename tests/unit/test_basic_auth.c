/* test_basic_auth.c - decoding of the Authorization header (issue 9 defect 6: NUL bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "auth/basic_auth.h"

/* "Basic " + base64 of len bytes of raw (which may hold NUL bytes). */
static char *header_of(const char *raw, size_t len)
{
    char *h = malloc(8 + 4 * (len / 3 + 1) + 1);
    assert_non_null(h);
    memcpy(h, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)h + 6, (const unsigned char *)raw, (int)len);
    return h;
}

static void decodes_user_and_password(void **state)
{
    (void)state;
    static const char *pairs[] = {"SKabc:secret", "u:", ":p", "a:b:c", "ab:c", "abc:de"};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char *h = header_of(pairs[i], strlen(pairs[i]));
        basic_creds_t c;
        assert_int_equal(basic_auth_decode(h, &c), TASSA_OK);
        const char *colon = strchr(pairs[i], ':');
        assert_int_equal(c.user_len, (size_t)(colon - pairs[i]));
        assert_memory_equal(c.user, pairs[i], c.user_len);
        assert_string_equal(c.pass, colon + 1);
        assert_int_equal(c.pass_len, strlen(colon + 1));
        basic_creds_clear(&c);
        free(h);
    }
    basic_creds_clear(NULL);
}

static void refuses_nul_and_garbage(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        size_t len;
    } nul[] = {{"KEY:SECRET\0anything", 19}, {"KEY\0x:SECRET", 12}, {"KEY:SECRET\0", 11}};
    basic_creds_t c;
    for (size_t i = 0; i < sizeof nul / sizeof *nul; i++) {
        char *h = header_of(nul[i].raw, nul[i].len);
        assert_int_equal(basic_auth_decode(h, &c), TASSA_EUNAUTH);
        assert_null(c.user);
        free(h);
    }
    static const char *bad[] = {NULL,
                                "",
                                "Basic",
                                "Basic ",
                                "Bearer dTpw",
                                "Basic dTpw=", /* length not a multiple of 4 */
                                "Basic dT=w",  /* padding inside */
                                "Basic dTp*",  /* not base64 */
                                "Basic bm9jb2xvbg==" /* "nocolon" */};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(basic_auth_decode(bad[i], &c), TASSA_EUNAUTH);
    assert_int_equal(basic_auth_decode("basic dTpw", &c), TASSA_OK); /* "u:p", any case */
    basic_creds_clear(&c);
}

/* basic_auth_check takes the header value alone (no HTTP request): both configured pairs pass
 * byte for byte; a NULL header, a wrong secret, a NUL suffix or an unset pair do not. */
static void checks_the_configured_pairs(void **state)
{
    (void)state;
    config_t c = {
        .api_key = "SKkey", .api_secret = "sec", .account_sid = "ACsid", .auth_token = "tok"};
    struct {
        const char *raw;
        size_t len;
        tassa_err want;
    } cases[] = {
        {"SKkey:sec", 9, TASSA_OK},          {"ACsid:tok", 9, TASSA_OK},
        {"SKkey:tok", 9, TASSA_EUNAUTH},     {"ACsid:sec", 9, TASSA_EUNAUTH},
        {"SKkey:sec\0x", 11, TASSA_EUNAUTH}, {"SKkey:se", 8, TASSA_EUNAUTH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *h = header_of(cases[i].raw, cases[i].len);
        assert_int_equal(basic_auth_check(h, &c), cases[i].want);
        free(h);
    }
    assert_int_equal(basic_auth_check(NULL, &c), TASSA_EUNAUTH);
    config_t none = {0}; /* no pair configured: nothing passes, not even ":" */
    char *h = header_of(":", 1);
    assert_int_equal(basic_auth_check(h, &none), TASSA_EUNAUTH);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_user_and_password),
        cmocka_unit_test(refuses_nul_and_garbage),
        cmocka_unit_test(checks_the_configured_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
