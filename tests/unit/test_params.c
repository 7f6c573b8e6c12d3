/* test_params.c - parameter merging: form, JSON, percent-encoding, duplicates, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/params.h"

static params_t *form(const char *body, tassa_err *err)
{
    params_t *p = params_new();
    errmsg_t em = {{0}};
    *err = params_parse_form(p, body, strlen(body), &em);
    return p;
}

static void form_decodes_plus_and_percent(void **state)
{
    tassa_err err;
    params_t *p = form("a=1&b=x%20y+z&c=%E2%9C%93&empty=&flag", &err);
    assert_int_equal(err, TASSA_OK);
    assert_string_equal(params_get(p, "a"), "1");
    assert_string_equal(params_get(p, "b"), "x y z");
    assert_string_equal(params_get(p, "c"), "\xE2\x9C\x93");
    assert_string_equal(params_get(p, "empty"), "");
    assert_null(params_get_nonempty(p, "empty"));
    assert_string_equal(params_get(p, "flag"), "");
    assert_null(params_get(p, "missing"));
    params_free(p);
}

static void form_keeps_duplicates_in_order(void **state)
{
    tassa_err err;
    params_t *p = form("AssignmentStatus=pending&x=1&AssignmentStatus=reserved", &err);
    assert_int_equal(err, TASSA_OK);
    assert_int_equal(params_count(p, "AssignmentStatus"), 2);
    assert_string_equal(params_get_nth(p, "AssignmentStatus", 0), "pending");
    assert_string_equal(params_get_nth(p, "AssignmentStatus", 1), "reserved");
    assert_null(params_get_nth(p, "AssignmentStatus", 2));
    params_free(p);
}

static void form_rejects_bad_escapes_and_changes_nothing(void **state)
{
    const char *bad[] = {"a=%zz", "a=%4", "a=%", "%g1=x", "ok=1&b=%2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        params_t *p = params_new();
        assert_int_equal(params_parse_form(p, "keep=1", 6, NULL), TASSA_OK);
        errmsg_t em = {{0}};
        assert_int_equal(params_parse_form(p, bad[i], strlen(bad[i]), &em), TASSA_EINVAL);
        assert_non_null(strstr(em.text, "offset"));
        assert_int_equal(p->len, 1);
        assert_string_equal(params_get(p, "keep"), "1");
        params_free(p);
    }
}

static void form_rejects_nul_and_empty_keys(void **state)
{
    tassa_err err;
    params_t *p = form("a=x%00y", &err);
    assert_int_equal(err, TASSA_EINVAL);
    params_free(p);
    p = form("=value", &err);
    assert_int_equal(err, TASSA_EINVAL);
    params_free(p);
    /* empty segments between & are skipped, not errors */
    p = form("&&a=1&&", &err);
    assert_int_equal(err, TASSA_OK);
    assert_int_equal(p->len, 1);
    params_free(p);
}

static void json_object_values_become_strings(void **state)
{
    const char *body = "{\"EventType\":\"task.created\",\"n\":5,\"ok\":true,\"nil\":null,"
                       "\"TaskAttributes\":{\"topic\":\"t1\"},\"list\":[1,\"a\"]}";
    params_t *p = params_new();
    assert_int_equal(params_parse_json(p, body, strlen(body), NULL), TASSA_OK);
    assert_string_equal(params_get(p, "EventType"), "task.created");
    assert_string_equal(params_get(p, "n"), "5");
    assert_string_equal(params_get(p, "ok"), "true");
    assert_string_equal(params_get(p, "nil"), "");
    assert_string_equal(params_get(p, "TaskAttributes"), "{\"topic\":\"t1\"}");
    assert_string_equal(params_get(p, "list"), "[1,\"a\"]");
    params_free(p);
}

static void json_rejects_non_objects_and_garbage(void **state)
{
    const char *bad[] = {"[1,2]", "\"s\"", "{\"a\":", "{\"a\":1,\"a\":2}", "", "nul"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        params_t *p = params_new();
        errmsg_t em = {{0}};
        assert_int_equal(params_parse_json(p, bad[i], strlen(bad[i]), &em), TASSA_EINVAL);
        assert_int_equal(p->len, 0);
        assert_true(em.text[0] != '\0');
        params_free(p);
    }
}

static void merge_body_before_query(void **state)
{
    /* The HTTP layer parses the body first, then appends the query: the body wins. */
    params_t *p = params_new();
    assert_int_equal(params_parse_form(p, "identity=body", 13, NULL), TASSA_OK);
    assert_int_equal(params_add(p, "identity", 8, "query", 5, NULL), TASSA_OK);
    assert_int_equal(params_add(p, "token", 5, "t", 1, NULL), TASSA_OK);
    assert_string_equal(params_get(p, "identity"), "body");
    assert_string_equal(params_get(p, "token"), "t");
    params_free(p);
}

static void limits_hold(void **state)
{
    params_t *p = params_new();
    char key[PARAMS_MAX_KEY + 2];
    memset(key, 'k', sizeof key);
    assert_int_equal(params_add(p, key, PARAMS_MAX_KEY + 1, "v", 1, NULL), TASSA_EINVAL);
    assert_int_equal(params_add(p, key, PARAMS_MAX_KEY, "v", 1, NULL), TASSA_OK);
    for (int i = 1; i < PARAMS_MAX_COUNT; i++)
        assert_int_equal(params_add(p, "k", 1, "v", 1, NULL), TASSA_OK);
    errmsg_t em = {{0}};
    assert_int_equal(params_add(p, "k", 1, "v", 1, &em), TASSA_EINVAL);
    assert_int_equal(p->len, PARAMS_MAX_COUNT);
    params_free(p);
    params_free(NULL);
}

/* Issue 9 defect 3: strict UTF-8 in every parameter, whichever way it arrives. */
static void utf8_is_strict(void **state)
{
    (void)state;
    static const char *good[] = {"",
                                 "ascii",
                                 "caf\xc3\xa9",
                                 "\xe2\x82\xac",
                                 "\xf0\x9f\x98\x80",
                                 "\xed\x9f\xbf",
                                 "\xee\x80\x80",
                                 "\xf4\x8f\xbf\xbf"};
    static const char *bad[] = {
        "\xff",             /* never valid */
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xf0\x80\x80\xaf", /* overlong, 4 bytes */
        "\xed\xa0\x80",     /* U+D800, a surrogate */
        "\xed\xbf\xbf",     /* U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* past the range */
        "\xe2\x82",         /* truncated */
        "\x80",             /* lone continuation */
        "a\xc3(",           /* bad continuation */
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(params_utf8_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(params_utf8_valid(bad[i], strlen(bad[i])));
        params_t *p = params_new();
        errmsg_t em = {{0}};
        assert_int_equal(params_add(p, "k", 1, bad[i], strlen(bad[i]), &em), TASSA_EINVAL);
        assert_int_equal(params_add(p, bad[i], strlen(bad[i]), "v", 1, &em), TASSA_EINVAL);
        assert_int_equal(p->len, 0);
        params_free(p);
    }
    tassa_err err;
    params_t *p = form("a=1&UniqueName=bad%FFname", &err);
    assert_int_equal(err, TASSA_EINVAL);
    assert_int_equal(p->len, 0);
    params_free(p);
    p = form("n=%C0%AF", &err);
    assert_int_equal(err, TASSA_EINVAL);
    params_free(p);
    p = params_new();
    assert_int_equal(params_parse_query(p, "PageSize=%FF", 12, NULL), TASSA_EINVAL);
    assert_int_equal(params_parse_json(p, "{\"a\":\"\\u0000\"}", 14, NULL), TASSA_EINVAL);
    assert_int_equal(p->len, 0);
    params_free(p);
    assert_false(params_text_valid("a\0b", 3));
    assert_true(params_text_valid("ab", 2));
}

/* A query is read as a form, except that pieces with an empty key are skipped. */
static void a_query_skips_pieces_without_a_key(void **state)
{
    (void)state;
    params_t *p = params_new();
    const char *q = "&&Bare&=x&Page%53ize=2&a=b=c+d&";
    assert_int_equal(params_parse_query(p, q, strlen(q), NULL), TASSA_OK);
    assert_int_equal(p->len, 3);
    assert_string_equal(params_get(p, "Bare"), "");
    assert_string_equal(params_get(p, "PageSize"), "2");
    assert_string_equal(params_get(p, "a"), "b=c d");
    errmsg_t em = {{0}};
    assert_int_equal(params_parse_form(p, "=x", 2, &em), TASSA_EINVAL);
    assert_int_equal(params_parse_query(p, "k=%zz", 5, &em), TASSA_EINVAL);
    assert_string_equal(em.text, "malformed percent-encoding in the query");
    assert_int_equal(p->len, 3);
    params_free(p);
}

/* Issue 9 defect 10: one strict integer parser. */
static void integers_are_strict(void **state)
{
    (void)state;
    long n = 7;
    static const char *bad[] = {"",
                                " 50",
                                "50 ",
                                "+50",
                                "5x",
                                "0x10",
                                "1e2",
                                "-",
                                "--1",
                                "\t5",
                                "5\n",
                                "1.0",
                                "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(params_parse_long(bad[i], -100, 1000, &n));
        assert_int_equal(n, 7);
    }
    assert_true(params_parse_long("50", 1, 1000, &n));
    assert_int_equal(n, 50);
    assert_true(params_parse_long("-5", -10, 10, &n));
    assert_int_equal(n, -5);
    assert_true(params_parse_long("007", 0, 10, &n));
    assert_int_equal(n, 7);
    assert_false(params_parse_long("0", 1, 10, &n));
    assert_false(params_parse_long("11", 1, 10, &n));
    tassa_err err;
    params_t *p = form("PageSize=+5&Page=&Ttl=10", &err);
    errmsg_t em = {{0}};
    n = 3;
    assert_int_equal(params_get_long(p, "PageSize", 1, 100, &n, &em), TASSA_EINVAL);
    assert_string_equal(em.text, "PageSize must be an integer from 1 to 100");
    assert_int_equal(params_get_long(p, "Page", 0, 100, &n, &em), TASSA_OK);
    assert_int_equal(params_get_long(p, "Absent", 0, 100, &n, &em), TASSA_OK);
    assert_int_equal(n, 3);
    assert_int_equal(params_get_long(p, "Ttl", 0, 100, &n, &em), TASSA_OK);
    assert_int_equal(n, 10);
    params_free(p);
}

/* params_utf8_fit: whole characters only, at most max bytes, and no further than the text. */
static void utf8_fit_cuts_between_characters(void **state)
{
    (void)state;
    const char *s = "ab\xc3\xa9"
                    "c\xe2\x82\xac"; /* a b e-acute c euro: 1+1+2+1+3 bytes */
    assert_int_equal(params_utf8_fit(s, 0), 0);
    assert_int_equal(params_utf8_fit(s, 2), 2);
    assert_int_equal(params_utf8_fit(s, 3), 2); /* byte 3 is the middle of e-acute */
    assert_int_equal(params_utf8_fit(s, 4), 4);
    assert_int_equal(params_utf8_fit(s, 6), 5);
    assert_int_equal(params_utf8_fit(s, 7), 5);
    assert_int_equal(params_utf8_fit(s, 8), 8);
    assert_int_equal(params_utf8_fit(s, 100), 8);
    assert_int_equal(params_utf8_fit(s, -1), 0);
    /* a text cut inside a character (here the euro sign's first two bytes) ends before it */
    assert_int_equal(params_utf8_fit("c\xe2\x82", 10), 1);
    assert_int_equal(params_utf8_fit("", 5), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(form_decodes_plus_and_percent),
        cmocka_unit_test(form_keeps_duplicates_in_order),
        cmocka_unit_test(form_rejects_bad_escapes_and_changes_nothing),
        cmocka_unit_test(form_rejects_nul_and_empty_keys),
        cmocka_unit_test(json_object_values_become_strings),
        cmocka_unit_test(json_rejects_non_objects_and_garbage),
        cmocka_unit_test(merge_body_before_query),
        cmocka_unit_test(limits_hold),
        cmocka_unit_test(utf8_is_strict),
        cmocka_unit_test(utf8_fit_cuts_between_characters),
        cmocka_unit_test(a_query_skips_pieces_without_a_key),
        cmocka_unit_test(integers_are_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
