/* test_streams.c - the SSE transport's resume point (streams_parse_last_id). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "adapters/streams.h"

static void reads_strict_decimals_only(void **state)
{
    assert_int_equal(streams_parse_last_id("0"), 0);
    assert_int_equal(streams_parse_last_id("42"), 42);
    assert_int_equal(streams_parse_last_id("1764581234567890"), 1764581234567890LL);
    assert_int_equal(streams_parse_last_id(NULL), -1);
    assert_int_equal(streams_parse_last_id(""), -1);
    assert_int_equal(streams_parse_last_id("-1"), -1);
    assert_int_equal(streams_parse_last_id("-0"), -1); /* was read as 0 (fuzz_last_event_id) */
    assert_int_equal(streams_parse_last_id("+5"), -1);
    assert_int_equal(streams_parse_last_id(" 5"), -1);
    assert_int_equal(streams_parse_last_id("5x"), -1);
    assert_int_equal(streams_parse_last_id("99999999999999999999"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_strict_decimals_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
