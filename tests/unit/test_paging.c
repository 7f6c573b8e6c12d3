/* test_paging.c - list paging: the page URLs of the envelope and the filters they carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/paging.h"

#define LIST_URL "http://127.0.0.1:3000/v1/Workspaces/WS0123456789abcdef0123456789abcdef/Tasks"

/* True when s ends with tail. */
static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

static const char *meta_str(const json_t *env, const char *key)
{
    return json_string_value(json_object_get(json_object_get(env, "meta"), key));
}

/* Finding P1: a filter near 1 KiB pushed Page and PageToken off the 1024-byte URLs, so
 * twilio-node, which follows next_page_url verbatim, fetched page 0 for ever. */
static void long_filter_keeps_page_in_every_url(void **state)
{
    (void)state;
    for (size_t len = 900; len <= 20000; len = len * 3 / 2) {
        char *extra = malloc(len + 1);
        assert_non_null(extra);
        memcpy(extra, "FriendlyName=", 13);
        memset(extra + 13, 'a', len - 13);
        extra[len] = '\0';
        paging_t pg = {.page = 3, .page_size = 2};
        json_t *env = paging_envelope("tasks", json_array(), &pg, 1, LIST_URL, extra);
        assert_non_null(env);
        const char *next = meta_str(env, "next_page_url");
        const char *prev = meta_str(env, "previous_page_url");
        const char *first = meta_str(env, "first_page_url");
        const char *self = meta_str(env, "url");
        assert_non_null(next);
        assert_non_null(prev);
        assert_non_null(first);
        assert_non_null(self);
        assert_true(ends_with(next, "&PageSize=2&Page=4&PageToken=PT4"));
        assert_true(ends_with(prev, "&PageSize=2&Page=2&PageToken=PT2"));
        assert_true(ends_with(first, "&PageSize=2&Page=0&PageToken=PT0"));
        assert_true(ends_with(self, "&PageSize=2&Page=3&PageToken=PT3"));
        assert_int_equal(strncmp(next, LIST_URL "?", strlen(LIST_URL) + 1), 0);
        assert_int_equal(memcmp(next + strlen(LIST_URL) + 1, extra, len), 0);
        json_decref(env);
        free(extra);
    }
}

static void first_page_has_no_previous_last_no_next(void **state)
{
    (void)state;
    paging_t pg = {.page = 0, .page_size = 50};
    json_t *env = paging_envelope("tasks", json_array(), &pg, 0, LIST_URL, NULL);
    assert_non_null(env);
    assert_null(meta_str(env, "previous_page_url"));
    assert_null(meta_str(env, "next_page_url"));
    assert_string_equal(meta_str(env, "url"), LIST_URL "?PageSize=50&Page=0&PageToken=PT0");
    assert_true(json_is_array(json_object_get(env, "tasks")));
    json_decref(env);
}

/* The filters are re-encoded whole, in order, without the paging parameters. */
static void filters_query_keeps_every_filter_encoded(void **state)
{
    (void)state;
    params_t *q = params_new();
    assert_non_null(q);
    assert_int_equal(params_add(q, "AssignmentStatus", 16, "pending", 7, NULL), TASSA_OK);
    assert_int_equal(params_add(q, "PageSize", 8, "2", 1, NULL), TASSA_OK);
    assert_int_equal(params_add(q, "AssignmentStatus", 16, "a b&c=d", 7, NULL), TASSA_OK);
    assert_int_equal(params_add(q, "Page", 4, "1", 1, NULL), TASSA_OK);
    assert_int_equal(params_add(q, "PageToken", 9, "PT1", 3, NULL), TASSA_OK);
    char *s = paging_filters_query(q);
    assert_string_equal(s, "AssignmentStatus=pending&AssignmentStatus=a%20b%26c%3Dd");
    free(s);

    /* far beyond any fixed buffer: nothing is dropped */
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 5000);
    assert_int_equal(params_add(q, "TaskQueueName", 13, big, 5000, NULL), TASSA_OK);
    s = paging_filters_query(q);
    assert_non_null(s);
    assert_int_equal(strlen(s), strlen("AssignmentStatus=pending&AssignmentStatus=a%20b%26c%3Dd") +
                                    strlen("&TaskQueueName=") + 5000);
    free(s);
    free(big);
    params_free(q);

    s = paging_filters_query(NULL);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(long_filter_keeps_page_in_every_url),
        cmocka_unit_test(first_page_has_no_previous_last_no_next),
        cmocka_unit_test(filters_query_keeps_every_filter_encoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
