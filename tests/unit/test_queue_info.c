/* test_queue_info.c - the queue-status document: its composition (waiting tasks in queue
 * order, tellers, counts by queue) and its fitting into a Sync document (16 KiB) with counts
 * that still tell the whole truth. The tasks and workers come from an in-memory back end
 * (fake_backend.h) without the optional fast path, as over Twilio's REST API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fake_backend.h"
#include "helpers/queue_info.h"

static json_t *build(fake_t *f, int max_entries)
{
    json_t *doc = NULL;
    assert_int_equal(queue_info_build(&f->b, max_entries, &doc, NULL), TASSA_OK);
    assert_non_null(doc);
    return doc;
}

static const char *sid_at(const json_t *doc, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "pendingTasks"), i), "sid"));
}

static void waiting_tasks_come_in_queue_order(void **state)
{
    fake_t *f = fake_new();
    /* list (creation) order WT1..WT6 */
    fake_add_task(f, "WT1", "pending", 0, 30, "Support", "{\"topic\":\"c1\"}");
    fake_add_task(f, "WT2", "reserved", 5, 10, "Support", "{\"topic\":\"c2\"}");
    fake_add_task(f, "WT3", "pending", 5, 20, "Sales", "{\"topic\":\"c3\"}");
    fake_add_task(f, "WT4", "assigned", 9, 99, "Support", "{\"topic\":\"c4\"}"); /* not waiting */
    fake_add_task(f, "WT5", "pending", 0, 30, "Support", "{\"topic\":7}");       /* tie with WT1 */
    fake_add_task(f, "WT6", "pending", 0, 40, "Sales", "not json");
    json_t *doc = build(f, 50);
    /* priority descending, then age descending, then list order */
    const char *want[] = {"WT3", "WT2", "WT6", "WT1", "WT5"};
    assert_int_equal(json_array_size(json_object_get(doc, "pendingTasks")), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(sid_at(doc, i), want[i]);
    assert_int_equal(json_integer_value(json_object_get(doc, "pendingCount")), 5);
    /* each entry: sid, topic (null unless a string), priority, age, queue, status */
    json_t *first = json_array_get(json_object_get(doc, "pendingTasks"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "topic")), "c3");
    assert_int_equal(json_integer_value(json_object_get(first, "priority")), 5);
    assert_int_equal(json_integer_value(json_object_get(first, "age")), 20);
    assert_string_equal(json_string_value(json_object_get(first, "queue")), "Sales");
    assert_string_equal(json_string_value(json_object_get(first, "status")), "pending");
    json_t *wt5 = json_array_get(json_object_get(doc, "pendingTasks"), 4);
    assert_true(json_is_null(json_object_get(wt5, "topic")));
    assert_true(json_is_null(
        json_object_get(json_array_get(json_object_get(doc, "pendingTasks"), 2), "topic")));
    /* by queue: how many wait and the longest wait */
    json_t *by = json_object_get(doc, "byQueue");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(by, "Support"), "pending")),
                     3);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(by, "Support"), "longestWaitSeconds")),
        30);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(by, "Sales"), "pending")),
                     2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(by, "Sales"), "longestWaitSeconds")),
        40);
    assert_non_null(json_string_value(json_object_get(doc, "lastUpdated")));
    json_decref(doc);
    backend_free(&f->b);
}

static void tellers_are_the_available_and_busy_workers(void **state)
{
    fake_t *f = fake_new();
    fake_add_worker(f, "WK1", "Ann", "Available");
    fake_add_worker(f, "WK2", "Bob", "Offline");
    fake_add_worker(f, "WK3", "Cy", "in-call");
    fake_add_worker(f, "WK4", "Di", "POST-CALL");
    fake_add_worker(f, "WK5", "Ed", "Break");
    json_t *doc = build(f, 50);
    json_t *tl = json_object_get(doc, "eligibleTellers");
    assert_int_equal(json_array_size(tl), 3);
    assert_int_equal(json_integer_value(json_object_get(doc, "tellerCount")), 3);
    const char *want[][3] = {
        {"WK1", "Ann", "Available"}, {"WK3", "Cy", "in-call"}, {"WK4", "Di", "POST-CALL"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *t = json_array_get(tl, i);
        assert_string_equal(json_string_value(json_object_get(t, "sid")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(t, "name")), want[i][1]);
        assert_string_equal(json_string_value(json_object_get(t, "activity")), want[i][2]);
    }
    assert_int_equal(json_integer_value(json_object_get(doc, "pendingCount")), 0);
    json_decref(doc);
    backend_free(&f->b);
}

/* max_entries cuts the lists, never the counts. */
static void lists_are_cut_to_max_entries(void **state)
{
    fake_t *f = fake_new();
    char sid[16];
    for (int i = 0; i < 10; i++) {
        snprintf(sid, sizeof sid, "WT%d", i);
        fake_add_task(f, sid, "pending", 0, 100 - i, "Support", "{}");
        snprintf(sid, sizeof sid, "WK%d", i);
        fake_add_worker(f, sid, "T", "available");
    }
    json_t *doc = build(f, 3);
    assert_int_equal(json_array_size(json_object_get(doc, "pendingTasks")), 3);
    assert_int_equal(json_array_size(json_object_get(doc, "eligibleTellers")), 3);
    assert_string_equal(sid_at(doc, 0), "WT0"); /* the oldest */
    assert_int_equal(json_integer_value(json_object_get(doc, "pendingCount")), 10);
    assert_int_equal(json_integer_value(json_object_get(doc, "tellerCount")), 10);
    json_decref(doc);
    backend_free(&f->b);
}

/* Hundreds of customers with long topics: the document still fits in 16 KiB, the lists hold
 * the first of the queue, and the counts are the true ones. */
static void a_big_queue_fits_in_a_sync_document(void **state)
{
    fake_t *f = fake_new();
    char sid[16], attrs[300];
    char pad[201];
    memset(pad, 'x', 200);
    pad[200] = '\0';
    for (int i = 0; i < 600; i++) {
        snprintf(sid, sizeof sid, "WT%04d", i);
        snprintf(attrs, sizeof attrs, "{\"topic\":\"customer-%04d-%s\"}", i, pad);
        fake_add_task(f, sid, i % 3 ? "pending" : "reserved", i % 2, 1000 - i, "Support", attrs);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(sid, sizeof sid, "WK%04d", i);
        fake_add_worker(f, sid, pad, "available");
    }
    json_t *doc = build(f, 200);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    assert_true(strlen(text) <= 16 * 1024);
    free(text);
    size_t listed = json_array_size(json_object_get(doc, "pendingTasks"));
    assert_true(listed > 0 && listed < 600);
    assert_true(json_array_size(json_object_get(doc, "eligibleTellers")) < 300);
    assert_int_equal(json_integer_value(json_object_get(doc, "pendingCount")), 600);
    assert_int_equal(json_integer_value(json_object_get(doc, "tellerCount")), 300);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(doc, "byQueue"), "Support"), "pending")),
                     600);
    /* the head of the queue is listed: priority 1, oldest first */
    assert_string_equal(sid_at(doc, 0), "WT0001");
    assert_string_equal(sid_at(doc, 1), "WT0003");
    json_decref(doc);
    backend_free(&f->b);
}

static void back_end_errors_pass_through(void **state)
{
    fake_t *f = fake_new();
    f->fail_workers = TASSA_EUPSTREAM;
    json_t *doc = NULL;
    assert_int_equal(queue_info_build(&f->b, 10, &doc, NULL), TASSA_EUPSTREAM);
    assert_null(doc);
    assert_int_equal(queue_info_refresh(&f->b, 10, NULL), TASSA_EUPSTREAM);
    assert_null(fake_data(f, "queue-status", NULL));
    backend_free(&f->b);
}

/* A back end with the fast path answers the waiting tasks itself: no listing. */
static tassa_err waiting_fast(backend_t *b, long limit, json_t **first, json_t **summary,
                              errmsg_t *em)
{
    *first = json_pack("[{s:s, s:i, s:i, s:s, s:s, s:s}]", "sid", "WTfast", "priority", 1, "age", 3,
                       "task_queue_friendly_name", "Q", "assignment_status", "pending",
                       "attributes", "{\"topic\":\"t\"}");
    *summary = json_pack("{s:i, s:{s:{s:i, s:i}}}", "total", 42, "byQueue", "Q", "pending", 42,
                         "longestWaitSeconds", 9);
    return TASSA_OK;
}

static void the_fast_path_is_used_when_present(void **state)
{
    fake_t *f = fake_new();
    f->ops.waiting_tasks = waiting_fast;
    fake_add_task(f, "WTslow", "pending", 0, 1, "Support", "{}");
    json_t *doc = build(f, 10);
    assert_int_equal(f->tasks_lists, 0);
    assert_string_equal(sid_at(doc, 0), "WTfast");
    assert_int_equal(json_integer_value(json_object_get(doc, "pendingCount")), 42);
    json_decref(doc);
    backend_free(&f->b);
}

/* A back end that answers the tellers itself: what it was asked, and one teller of 77. */
static char asked[128];
static long asked_limit;
static tassa_err tellers_fast(backend_t *b, const char *const *names, size_t n, long limit,
                              json_t **workers, long *total, errmsg_t *em)
{
    size_t len = 0;
    asked[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(asked + len, sizeof asked - len, "%s%s", i ? "," : "", names[i]);
    asked_limit = limit;
    *workers = json_pack("[{s:s, s:s, s:s}]", "sid", "WKfast", "friendly_name", "Fay",
                         "activity_name", "In-Call");
    *total = 77;
    return TASSA_OK;
}

static void the_tellers_fast_path_is_used_when_present(void **state)
{
    fake_t *f = fake_new();
    f->ops.workers_in_activities = tellers_fast;
    f->fail_workers = TASSA_EUPSTREAM; /* the whole list is not read */
    fake_add_worker(f, "WKslow", "Sam", "Available");
    json_t *doc = build(f, 10);
    assert_string_equal(asked, "available,in-call,post-call");
    assert_int_equal(asked_limit, 10);
    json_t *tellers = json_object_get(doc, "eligibleTellers");
    assert_int_equal(json_array_size(tellers), 1);
    json_t *t = json_array_get(tellers, 0);
    assert_string_equal(json_string_value(json_object_get(t, "sid")), "WKfast");
    assert_string_equal(json_string_value(json_object_get(t, "name")), "Fay");
    assert_string_equal(json_string_value(json_object_get(t, "activity")), "In-Call");
    assert_int_equal(json_integer_value(json_object_get(doc, "tellerCount")), 77);
    json_decref(doc);
    backend_free(&f->b);
}

static void refresh_writes_queue_status(void **state)
{
    fake_t *f = fake_new();
    fake_add_task(f, "WT1", "pending", 0, 1, "Support", "{}");
    assert_int_equal(queue_info_refresh(&f->b, 10, NULL), TASSA_OK);
    json_t *d = fake_data(f, "queue-status", NULL);
    assert_int_equal(json_integer_value(json_object_get(d, "pendingCount")), 1);
    json_decref(d);
    /* again: an update of the same document */
    fake_add_task(f, "WT2", "pending", 0, 1, "Support", "{}");
    assert_int_equal(queue_info_refresh(&f->b, 10, NULL), TASSA_OK);
    d = fake_data(f, "queue-status", NULL);
    assert_int_equal(json_integer_value(json_object_get(d, "pendingCount")), 2);
    json_decref(d);
    backend_free(&f->b);
}

static void readers_are_granted_by_name(void **state)
{
    fake_t *f = fake_new();
    json_t *empty = json_object();
    fake_put(f, "queue-status", empty);
    assert_int_equal(queue_info_grant_readers(&f->b, " dashboard , ops,,\tboard2 ", NULL),
                     TASSA_OK);
    assert_int_equal(f->ngrants, 3);
    assert_string_equal(f->grants[0][1], "dashboard");
    assert_string_equal(f->grants[1][1], "ops");
    assert_string_equal(f->grants[2][1], "board2");
    assert_string_equal(f->grants[0][0], "queue-status");
    assert_int_equal(queue_info_grant_readers(&f->b, NULL, NULL), TASSA_OK);
    assert_int_equal(queue_info_grant_readers(&f->b, "", NULL), TASSA_OK);
    assert_int_equal(f->ngrants, 3);
    json_decref(empty);
    backend_free(&f->b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(waiting_tasks_come_in_queue_order),
        cmocka_unit_test(tellers_are_the_available_and_busy_workers),
        cmocka_unit_test(lists_are_cut_to_max_entries),
        cmocka_unit_test(a_big_queue_fits_in_a_sync_document),
        cmocka_unit_test(back_end_errors_pass_through),
        cmocka_unit_test(the_fast_path_is_used_when_present),
        cmocka_unit_test(the_tellers_fast_path_is_used_when_present),
        cmocka_unit_test(refresh_writes_queue_status),
        cmocka_unit_test(readers_are_granted_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
