/* test_params.c - parameter merging: form, JSON, percent-encoding, duplicates, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/params.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
