/* test_cors.c - which origin a CORS answer allows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/cors.h"

static void star_allows_everyone(void **state)
{
    assert_string_equal(cors_allow_origin("https://x.example", "*"), "*");
    assert_string_equal(cors_allow_origin(NULL, "*"), "*");
    assert_string_equal(cors_allow_origin("https://x.example", NULL), "*");
}

static void a_list_echoes_listed_origins_only(void **state)
{
    const char *allowed = "https://a.example, https://b.example:8443 ,http://localhost:3000";
    assert_string_equal(cors_allow_origin("https://a.example", allowed), "https://a.example");
    assert_string_equal(cors_allow_origin("https://b.example:8443", allowed),
                        "https://b.example:8443");
    assert_string_equal(cors_allow_origin("http://localhost:3000", allowed),
                        "http://localhost:3000");
    assert_null(cors_allow_origin("https://evil.example", allowed));
    assert_null(cors_allow_origin("https://a.example.evil", allowed));
    assert_null(cors_allow_origin("https://a.exampl", allowed));
    assert_null(cors_allow_origin(NULL, allowed));
    assert_null(cors_allow_origin("", allowed));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(star_allows_everyone),
        cmocka_unit_test(a_list_echoes_listed_origins_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
