/* test_buf.c - the growable buffer and the one percent-encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/hash.h"

static void appends_and_takes(void **state)
{
    buf_t b = BUF_INIT;
    assert_string_equal(buf_str(&b), "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%d,", i % 10), 0);
    assert_int_equal(b.len, 2000);
    assert_int_equal(buf_adds(&b, "end"), 0);
    char *s = buf_take(&b);
    assert_non_null(s);
    assert_int_equal(strlen(s), 2003);
    assert_memory_equal(s, "0,1,2,", 6);
    assert_string_equal(s + 2000, "end");
    assert_null(b.data);
    free(s);
    s = buf_take(&b); /* an empty buffer gives "" */
    assert_string_equal(s, "");
    free(s);
    buf_free(NULL);
}

static void encodes_all_but_unreserved(void **state)
{
    buf_t b = BUF_INIT;
    assert_int_equal(buf_add_encoded(&b, "a-Z_0.9~ /%+&=\xc3\xa9"), 0);
    assert_string_equal(buf_str(&b), "a-Z_0.9~%20%2F%25%2B%26%3D%C3%A9");
    buf_free(&b);
}

static void hash_is_fnv1a(void **state)
{
    /* Published FNV-1a 64 test vectors. */
    assert_true(hash_str(HASH_SEED, "") == UINT64_C(0xcbf29ce484222325));
    assert_true(hash_str(HASH_SEED, "a") == UINT64_C(0xaf63dc4c8601ec8c));
    assert_true(hash_str(HASH_SEED, "foobar") == UINT64_C(0x85944171f73967e8));
    assert_true(hash_bytes(HASH_SEED, "foobar", 6) == hash_str(HASH_SEED, "foobar"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_and_takes),
        cmocka_unit_test(encodes_all_but_unreserved),
        cmocka_unit_test(hash_is_fnv1a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
