/* test_callback_outbox.c - EventsFilter matching and durable enqueueing of callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "adapters/callback_outbox.h"

static void filter_lists_event_types(void **state)
{
    assert_true(outbox_filter_match(NULL, "task.created"));
    assert_true(outbox_filter_match("", "task.created"));
    assert_true(outbox_filter_match("task.created,task.canceled", "task.created"));
    assert_true(outbox_filter_match("task.created, task.canceled ,worker.activity.update",
                                    "task.canceled"));
    assert_true(outbox_filter_match("task.created, task.canceled ,worker.activity.update",
                                    "worker.activity.update"));
    assert_false(outbox_filter_match("task.created,task.canceled", "task.completed"));
    assert_false(outbox_filter_match("task.created", "task.create"));
    assert_false(outbox_filter_match("task.create", "task.created"));
    assert_false(outbox_filter_match(",,", "task.created"));
}

/* Entries written before a crash are still there for the next process to deliver. */
static void enqueued_entries_survive_reopening(void **state)
{
    char path[] = "/tmp/tassa-outbox-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    errmsg_t em = {{0}};
    store_t *s = store_open(path, &em);
    assert_non_null(s);
    outbox_t *o = outbox_new(s, "token", 1000, &em);
    assert_non_null(o);
    params_t *p = params_new();
    params_add(p, "EventType", 9, "task.created", 12, NULL);
    params_add(p, "Sid", 3, "EV1", 3, NULL);
    /* no thread started: nothing is delivered, so both stay queued */
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/cb", p), TASSA_OK);
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/cb", p), TASSA_OK);
    assert_int_equal(outbox_pending(o), 2);
    outbox_free(o);
    store_close(s);
    s = store_open(path, &em);
    assert_non_null(s);
    o = outbox_new(s, "token", 1000, &em);
    assert_int_equal(outbox_pending(o), 2);
    outbox_free(o);
    store_close(s);
    params_free(p);
    char side[64];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filter_lists_event_types),
        cmocka_unit_test(enqueued_entries_survive_reopening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
