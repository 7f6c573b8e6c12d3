/* test_callback_outbox.c - EventsFilter matching, durable enqueueing of callbacks, and enqueueing
 * idempotent by event Sid (also for a data file whose older outbox holds copies). */
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
#include "store/migrate.h"

/* A new temporary data file's path (the caller unlinks it with drop()). */
static void temp_path(char path[32])
{
    snprintf(path, 32, "/tmp/tassa-outbox-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

static void drop(const char *path)
{
    char side[64];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* An event of type with Sid sid, new. */
static params_t *event_new(const char *type, const char *sid)
{
    params_t *p = params_new();
    params_add(p, "EventType", 9, type, strlen(type), NULL);
    params_add(p, "Sid", 3, sid, strlen(sid), NULL);
    return p;
}

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
    params_t *p = event_new("task.created", "EV1"), *q = event_new("task.canceled", "EV2");
    /* no thread started: nothing is delivered, so both stay queued */
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/cb", p), TASSA_OK);
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/cb", q), TASSA_OK);
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
    params_free(q);
    drop(path);
}

/* An event the dispatcher delivers again (after a crash, or from another node) is stored once
 * per URL; another URL gets its own entry. */
static void enqueueing_is_idempotent_by_event_sid(void **state)
{
    char path[32];
    temp_path(path);
    errmsg_t em = {{0}};
    store_t *s = store_open(path, &em);
    assert_non_null(s);
    outbox_t *o = outbox_new(s, "token", 1000, &em);
    assert_non_null(o);
    params_t *p = event_new("task.created", "EV1");
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/cb", p), TASSA_OK);
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/cb", p), TASSA_OK);
    assert_int_equal(outbox_pending(o), 1);
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/other", p), TASSA_OK);
    assert_int_equal(outbox_pending(o), 2);
    outbox_free(o);
    store_close(s);
    params_free(p);
    drop(path);
}

/* The outbox schema of tassa before version 2 (callback_outbox.c's first migration step). */
static const migrate_step_t V1[] = {
    {"CREATE TABLE IF NOT EXISTS callback_outbox ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, body TEXT NOT NULL,"
     "  event_sid TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,"
     "  failed INTEGER NOT NULL DEFAULT 0, last_error TEXT, created INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS callback_outbox_due ON callback_outbox (failed, next_at);",
     NULL},
};

/* A data file of the older outbox, which stored a replayed event twice, opens: the copies go
 * (the first stays), entries without an event Sid stay, and the event is idempotent from then
 * on. */
static void an_older_outbox_with_copies_migrates(void **state)
{
    char path[32];
    temp_path(path);
    errmsg_t em = {{0}};
    store_t *s = store_open(path, &em);
    assert_non_null(s);
    assert_int_equal(store_migrate(s, "outbox", V1, 1, &em), TASSA_OK);
    store_lock(s);
    assert_int_equal(
        store_exec(s,
                   "INSERT INTO callback_outbox (url, body, event_sid, next_at, created) VALUES"
                   " ('http://127.0.0.1:9/cb', 'Sid=EV1', 'EV1', 1, 1),"
                   " ('http://127.0.0.1:9/cb', 'Sid=EV1', 'EV1', 2, 2),"
                   " ('http://127.0.0.1:9/cb', 'Sid=EV2', 'EV2', 3, 3),"
                   " ('http://127.0.0.1:9/cb', 'x=1', NULL, 4, 4),"
                   " ('http://127.0.0.1:9/cb', 'x=1', NULL, 5, 5)",
                   &em),
        TASSA_OK);
    assert_int_equal(store_unlock(s), TASSA_OK);
    outbox_t *o = outbox_new(s, "token", 1000, &em);
    assert_non_null(o);
    assert_int_equal(store_migrate_version(s, "outbox"), 2);
    assert_int_equal(outbox_pending(o), 4);
    params_t *p = event_new("task.created", "EV1");
    assert_int_equal(outbox_enqueue(o, "http://127.0.0.1:9/cb", p), TASSA_OK);
    assert_int_equal(outbox_pending(o), 4);
    outbox_free(o);
    store_close(s);
    params_free(p);
    drop(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filter_lists_event_types),
        cmocka_unit_test(enqueued_entries_survive_reopening),
        cmocka_unit_test(enqueueing_is_idempotent_by_event_sid),
        cmocka_unit_test(an_older_outbox_with_copies_migrates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
