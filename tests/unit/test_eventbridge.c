/* test_eventbridge.c - the event bridge's envelope: eventbridge_parse on good and bad bodies,
 * eventbridge_params keeping JSON types as the REST API's form fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/eventbridge.h"

static tassa_err parse(const char *body, eventbridge_request_t *r, errmsg_t *em)
{
    return eventbridge_parse(body, strlen(body), r, em);
}

static void test_parse_sdk_body(void **state)
{
    (void)state;
    eventbridge_request_t r;
    errmsg_t em = {{0}};
    const char *body = "{\"url\":\"Workspaces/WS1/Workers/WK1\",\"method\":\"POST\","
                       "\"params\":{\"ActivitySid\":\"WA1\"},\"token\":\"a.b.c\"}";
    assert_int_equal(parse(body, &r, &em), TASSA_OK);
    assert_string_equal(r.url, "Workspaces/WS1/Workers/WK1");
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.token, "a.b.c");
    assert_string_equal(json_string_value(json_object_get(r.params, "ActivitySid")), "WA1");
    eventbridge_request_clear(&r);
    /* params absent or null: an empty object */
    assert_int_equal(parse("{\"url\":\"x\",\"method\":\"GET\",\"token\":\"t\"}", &r, &em),
                     TASSA_OK);
    assert_int_equal(json_object_size(r.params), 0);
    eventbridge_request_clear(&r);
    assert_int_equal(
        parse("{\"url\":\"x\",\"method\":\"GET\",\"params\":null,\"token\":\"t\"}", &r, &em),
        TASSA_OK);
    assert_true(json_is_object(r.params));
    eventbridge_request_clear(&r);
}

static void refused(const char *body, tassa_err want)
{
    eventbridge_request_t r;
    errmsg_t em = {{0}};
    assert_int_equal(parse(body, &r, &em), want);
    assert_null(r.url);
    assert_null(r.params);
    assert_true(em.text[0] != '\0');
}

static void test_parse_refusals(void **state)
{
    (void)state;
    refused("", TASSA_EINVAL);
    refused("{", TASSA_EINVAL);
    refused("[]", TASSA_EINVAL);
    refused("null", TASSA_EINVAL);
    refused("url=x&method=GET", TASSA_EINVAL); /* a real form body */
    refused("{\"method\":\"GET\",\"token\":\"t\"}", TASSA_EINVAL);
    refused("{\"url\":\"\",\"method\":\"GET\",\"token\":\"t\"}", TASSA_EINVAL);
    refused("{\"url\":\"a\\u0000b\",\"method\":\"GET\",\"token\":\"t\"}", TASSA_EINVAL);
    refused("{\"url\":7,\"method\":\"GET\",\"token\":\"t\"}", TASSA_EINVAL);
    refused("{\"url\":\"x\",\"method\":\"DELETE\",\"token\":\"t\"}", TASSA_EINVAL);
    refused("{\"url\":\"x\",\"method\":\"get\",\"token\":\"t\"}", TASSA_EINVAL);
    refused("{\"url\":\"x\",\"method\":\"GET\"}", TASSA_EUNAUTH);
    refused("{\"url\":\"x\",\"method\":\"GET\",\"token\":\"\"}", TASSA_EUNAUTH);
    refused("{\"url\":\"x\",\"method\":\"GET\",\"token\":\"t\",\"params\":[1]}", TASSA_EINVAL);
    refused("{\"url\":\"x\",\"method\":\"GET\",\"token\":\"t\",\"params\":\"a=b\"}", TASSA_EINVAL);
    refused("{\"url\":\"a\",\"url\":\"b\",\"method\":\"GET\",\"token\":\"t\"}", TASSA_EINVAL);
    char big[EVENTBRIDGE_MAX_URL + 64];
    memset(big, 'a', sizeof big);
    int n = snprintf(big, sizeof big, "{\"url\":\"");
    memset(big + n, 'a', EVENTBRIDGE_MAX_URL + 1);
    snprintf(big + n + EVENTBRIDGE_MAX_URL + 1, sizeof big - (size_t)n - EVENTBRIDGE_MAX_URL - 1,
             "\",\"method\":\"GET\",\"token\":\"t\"}");
    refused(big, TASSA_EINVAL);
}

static void test_params_keep_types(void **state)
{
    (void)state;
    json_error_t je;
    json_t *j = json_loads("{\"PageSize\":1000,\"Active\":\"true\",\"Flag\":false,"
                           "\"Attributes\":{\"skills\":[\"a\"],\"n\":2},\"Gone\":null,"
                           "\"List\":[1,\"x\"]}",
                           0, &je);
    assert_non_null(j);
    params_t *p = params_new();
    errmsg_t em = {{0}};
    assert_int_equal(eventbridge_params(j, p, &em), TASSA_OK);
    assert_string_equal(params_get(p, "PageSize"), "1000");
    assert_string_equal(params_get(p, "Active"), "true");
    assert_string_equal(params_get(p, "Flag"), "false");
    assert_string_equal(params_get(p, "Attributes"), "{\"skills\":[\"a\"],\"n\":2}");
    assert_string_equal(params_get(p, "List"), "[1,\"x\"]");
    assert_null(params_get(p, "Gone"));
    assert_int_equal(p->len, 5);
    params_free(p);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sdk_body),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_params_keep_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
