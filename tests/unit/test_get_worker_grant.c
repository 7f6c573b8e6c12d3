/* test_get_worker_grant.c - the identity -> worker rule of /task/get-worker-grant:
 * attributes.identity first, then contact_uri "client:<identity>", exactly one worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "functions/get_worker_grant.h"

/* A worker resource with sid and attributes text (NULL: no attributes key). */
static json_t *worker(const char *sid, const char *attrs)
{
    json_t *w = json_pack("{s:s}", "sid", sid);
    if (attrs)
        json_object_set_new(w, "attributes", json_string(attrs));
    return w;
}

static const char *found_sid(const json_t *workers, const char *identity, tassa_err want)
{
    const json_t *w = (const json_t *)1;
    errmsg_t em = {{0}};
    assert_int_equal(get_worker_grant_find(workers, identity, &w, &em), want);
    if (want != TASSA_OK) {
        assert_null(w);
        assert_true(em.text[0] != '\0');
        return NULL;
    }
    return json_string_value(json_object_get(w, "sid"));
}

static void test_rules(void **state)
{
    json_t *ws = json_array();
    json_array_append_new(ws, worker("WK1", "{\"identity\":\"ann\"}"));
    json_array_append_new(ws, worker("WK2", "{\"contact_uri\":\"client:bob\"}"));
    json_array_append_new(ws, worker("WK3", "{\"contact_uri\":\"client:ann\"}"));
    json_array_append_new(ws, worker("WK4", "not json"));
    json_array_append_new(ws, worker("WK5", NULL));
    json_array_append_new(ws, worker("WK6", "{\"identity\":7,\"name\":\"carl\"}"));
    json_array_append_new(ws, worker("WK7", "{\"identity\":\"twin\"}"));
    json_array_append_new(ws, worker("WK8", "{\"identity\":\"twin\"}"));
    json_array_append_new(ws, worker("WK9", "[\"identity\",\"dan\"]"));

    /* identity wins over a contact_uri naming the same person */
    assert_string_equal(found_sid(ws, "ann", TASSA_OK), "WK1");
    assert_string_equal(found_sid(ws, "bob", TASSA_OK), "WK2");
    /* neither a name, a number, an array nor a partial match names anybody */
    found_sid(ws, "carl", TASSA_ENOTFOUND);
    found_sid(ws, "7", TASSA_ENOTFOUND);
    found_sid(ws, "dan", TASSA_ENOTFOUND);
    found_sid(ws, "client:bob", TASSA_ENOTFOUND);
    found_sid(ws, "an", TASSA_ENOTFOUND);
    found_sid(ws, "twin", TASSA_ECONFLICT);

    json_t *none = json_array();
    found_sid(none, "ann", TASSA_ENOTFOUND);
    json_decref(none);
    json_decref(ws);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
