/* test_reservation.c - the reservation handler's topic transitions: within one task a topic
 * only moves forward (waiting < assigned < completed), an event of another task changes it
 * only when it starts the topic again, and bad attributes are refused. The topic documents
 * live in an in-memory back end (fake_backend.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_backend.h"
#include "helpers/reservation.h"

/* A TaskRouter callback: EventType, then key/value pairs up to NULL. */
static params_t *event(const char *type, ...)
{
    params_t *p = params_new();
    va_list ap;
    if (!p)
        abort();
    params_add(p, "EventType", 9, type, strlen(type), NULL);
    va_start(ap, type);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        params_add(p, k, strlen(k), v, strlen(v), NULL);
    }
    va_end(ap);
    return p;
}

#define ATTRS "{\"topic\":\"customer-1\",\"identity\":\"alice\"}"

/* Handles one event of task on topic customer-1; returns the result. */
static reservation_result_t handle(fake_t *f, const char *type, const char *task, tassa_err want)
{
    params_t *ev = event(type, "TaskSid", task, "TaskAttributes", ATTRS, "Sid", "EV1", "WorkerSid",
                         "WK1", "WorkerName", "Bob", NULL);
    reservation_result_t r;
    assert_int_equal(reservation_handle(&f->b, ev, &r, NULL), want);
    params_free(ev);
    return r;
}

static const char *topic_field(fake_t *f, const char *key, char *out, size_t len)
{
    json_t *d = fake_data(f, "customer-1", NULL);
    const char *v = json_string_value(json_object_get(d, key));
    snprintf(out, len, "%s", v ? v : "(none)");
    json_decref(d);
    return out;
}

static void event_types_map_to_statuses(void **state)
{
    assert_string_equal(reservation_status_for("task.created"), "waiting");
    assert_string_equal(reservation_status_for("reservation.accepted"), "assigned");
    assert_string_equal(reservation_status_for("reservation.completed"), "completed");
    assert_string_equal(reservation_status_for("reservation.canceled"), "completed");
    assert_string_equal(reservation_status_for("task.canceled"), "completed");
    assert_string_equal(reservation_status_for("task.deleted"), "completed");
    assert_null(reservation_status_for("reservation.created"));
    assert_null(reservation_status_for("worker.activity.update"));
    assert_null(reservation_status_for(NULL));
}

/* waiting -> assigned (with the teller) -> completed (keeps the teller). */
static void a_topic_moves_forward(void **state)
{
    fake_t *f = fake_new();
    char buf[64];
    reservation_result_t r = handle(f, "task.created", "WT1", TASSA_OK);
    assert_true(r.changed);
    assert_string_equal(r.topic, "customer-1");
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "waiting");
    r = handle(f, "reservation.accepted", "WT1", TASSA_OK);
    assert_true(r.changed);
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "assigned");
    json_t *d = fake_data(f, "customer-1", NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "worker"), "name")),
                        "Bob");
    json_decref(d);
    r = handle(f, "reservation.completed", "WT1", TASSA_OK);
    assert_true(r.changed);
    d = fake_data(f, "customer-1", NULL);
    assert_string_equal(json_string_value(json_object_get(d, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(d, "taskSid")), "WT1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "worker"), "sid")),
                        "WK1");
    json_decref(d);
    backend_free(&f->b);
}

/* Late or replayed events of the same task never move the topic back. */
static void a_topic_never_moves_backwards(void **state)
{
    fake_t *f = fake_new();
    char buf[64];
    long rev, after;
    handle(f, "task.created", "WT1", TASSA_OK);
    handle(f, "reservation.accepted", "WT1", TASSA_OK);
    json_decref(fake_data(f, "customer-1", &rev));
    reservation_result_t r = handle(f, "task.created", "WT1", TASSA_OK); /* late */
    assert_false(r.changed);
    assert_non_null(strstr(r.reason, "would not move it forward"));
    r = handle(f, "reservation.accepted", "WT1", TASSA_OK); /* replay */
    assert_false(r.changed);
    json_decref(fake_data(f, "customer-1", &after));
    assert_int_equal(after, rev);
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "assigned");
    handle(f, "reservation.completed", "WT1", TASSA_OK);
    r = handle(f, "reservation.accepted", "WT1", TASSA_OK);
    assert_false(r.changed);
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "completed");
    backend_free(&f->b);
}

/* An event of an older task is stale once the topic belongs to a newer one. */
static void events_of_another_task_are_stale(void **state)
{
    fake_t *f = fake_new();
    char buf[64];
    long rev, after;
    handle(f, "task.created", "WT2", TASSA_OK);
    json_decref(fake_data(f, "customer-1", &rev));
    reservation_result_t r = handle(f, "reservation.completed", "WT1", TASSA_OK);
    assert_false(r.changed);
    assert_non_null(strstr(r.reason, "is stale"));
    r = handle(f, "reservation.accepted", "WT1", TASSA_OK);
    assert_false(r.changed);
    /* another task's start does not take over a topic that is still in progress */
    r = handle(f, "task.created", "WT3", TASSA_OK);
    assert_false(r.changed);
    json_decref(fake_data(f, "customer-1", &after));
    assert_int_equal(after, rev);
    assert_string_equal(topic_field(f, "taskSid", buf, sizeof buf), "WT2");
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "waiting");
    backend_free(&f->b);
}

/* The customer came back: a new task starts a completed topic again. */
static void a_new_task_restarts_a_completed_topic(void **state)
{
    fake_t *f = fake_new();
    char buf[64];
    handle(f, "task.created", "WT1", TASSA_OK);
    handle(f, "task.canceled", "WT1", TASSA_OK);
    reservation_result_t r = handle(f, "task.created", "WT2", TASSA_OK);
    assert_true(r.changed);
    assert_string_equal(topic_field(f, "taskSid", buf, sizeof buf), "WT2");
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "waiting");
    /* and the old task's late events stay stale */
    r = handle(f, "reservation.accepted", "WT1", TASSA_OK);
    assert_false(r.changed);
    assert_string_equal(topic_field(f, "taskSid", buf, sizeof buf), "WT2");
    backend_free(&f->b);
}

/* The task's identity may read its topic once the event wrote it; not on a no-op. */
static void the_identity_is_granted_read_on_a_write(void **state)
{
    fake_t *f = fake_new();
    reservation_result_t r = handle(f, "task.created", "WT1", TASSA_OK);
    assert_string_equal(r.reader, "alice");
    assert_int_equal(f->ngrants, 1);
    assert_string_equal(f->grants[0][0], "customer-1");
    assert_string_equal(f->grants[0][1], "alice");
    r = handle(f, "task.created", "WT1", TASSA_OK);
    assert_false(r.changed);
    assert_string_equal(r.reader, "");
    assert_int_equal(f->ngrants, 1);
    backend_free(&f->b);
}

/* A write that loses a race is re-applied on the rival's data, and the rules still hold. */
static void rival_accepts(fake_t *f, const char *name)
{
    json_t *d = json_pack("{s:s, s:s, s:n}", "status", "assigned", "taskSid", "WT1", "worker");
    fake_put(f, name, d);
    json_decref(d);
}

static void a_raced_event_is_judged_on_the_winner(void **state)
{
    fake_t *f = fake_new();
    char buf[64];
    handle(f, "task.created", "WT1", TASSA_OK);
    /* a rival accepts between our read and our write: the completion, re-applied on
     * "assigned", still lands */
    f->rival = rival_accepts;
    f->races = 1;
    reservation_result_t r = handle(f, "reservation.completed", "WT1", TASSA_OK);
    assert_true(r.changed);
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "completed");
    /* our own acceptance loses to the same acceptance by a rival: re-applied on "assigned",
     * it writes nothing */
    fake_t *g = fake_new();
    handle(g, "task.created", "WT1", TASSA_OK);
    g->rival = rival_accepts;
    g->races = 1;
    r = handle(g, "reservation.accepted", "WT1", TASSA_OK);
    assert_false(r.changed); /* the rival's write already made it assigned */
    assert_string_equal(topic_field(g, "status", buf, sizeof buf), "assigned");
    backend_free(&f->b);
    backend_free(&g->b);
}

static void events_without_a_topic_are_ignored(void **state)
{
    fake_t *f = fake_new();
    reservation_result_t r;
    params_t *ev = event("task.created", "TaskSid", "WT1", "TaskAttributes", "{}", NULL);
    assert_int_equal(reservation_handle(&f->b, ev, &r, NULL), TASSA_OK);
    assert_true(r.ignored);
    params_free(ev);
    ev = event("reservation.created", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL);
    assert_int_equal(reservation_handle(&f->b, ev, &r, NULL), TASSA_OK);
    assert_true(r.ignored);
    assert_non_null(strstr(r.reason, "does not change a topic"));
    params_free(ev);
    assert_int_equal(f->fetches + f->creates + f->updates, 0);
    backend_free(&f->b);
}

static void bad_attributes_are_refused(void **state)
{
    fake_t *f = fake_new();
    reservation_result_t r;
    char long_topic[400 + 32];
    memset(long_topic, 'a', 321);
    long_topic[321] = '\0';
    char attrs[sizeof long_topic + 32];
    snprintf(attrs, sizeof attrs, "{\"topic\":\"%s\"}", long_topic);
    const char *bad[] = {"[1,2]", "not json", "{\"topic\":\"queue-status\"}", attrs};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        params_t *ev = event("task.created", "TaskSid", "WT1", "TaskAttributes", bad[i], NULL);
        assert_int_equal(reservation_handle(&f->b, ev, &r, NULL), TASSA_EINVAL);
        params_free(ev);
    }
    assert_int_equal(f->creates + f->updates, 0);
    assert_null(fake_data(f, "queue-status", NULL));
    backend_free(&f->b);
}

/* Delivery is at least once: after a crash the dispatcher delivers again every event since its
 * last mark, in order. Replaying the events of two tasks of one customer, the first finished
 * before the second began, leaves the topic exactly as it was: the first task's task.created
 * does not restart the topic that the later task finished. */
static void a_replayed_sequence_changes_nothing(void **state)
{
    fake_t *f = fake_new();
    static const struct {
        const char *type, *task, *created, *sid;
    } SEQ[] = {
        {"task.created", "WT1", "2026-01-01T10:00:00Z", "EV1"},
        {"reservation.accepted", "WT1", "2026-01-01T10:00:00Z", "EV2"},
        {"reservation.completed", "WT1", "2026-01-01T10:00:00Z", "EV3"},
        {"task.created", "WT2", "2026-01-01T11:00:00Z", "EV4"},
        {"reservation.accepted", "WT2", "2026-01-01T11:00:00Z", "EV5"},
        {"reservation.completed", "WT2", "2026-01-01T11:00:00Z", "EV6"},
    };
    long rev, after;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            json_decref(fake_data(f, "customer-1", &rev));
        for (size_t i = 0; i < sizeof SEQ / sizeof SEQ[0]; i++) {
            params_t *ev = event(SEQ[i].type, "TaskSid", SEQ[i].task, "TaskAttributes", ATTRS,
                                 "TaskDateCreated", SEQ[i].created, "Sid", SEQ[i].sid, "WorkerSid",
                                 "WK1", "WorkerName", "Bob", NULL);
            reservation_result_t r;
            assert_int_equal(reservation_handle(&f->b, ev, &r, NULL), TASSA_OK);
            params_free(ev);
            if (pass == 1)
                assert_false(r.changed);
        }
    }
    json_decref(fake_data(f, "customer-1", &after));
    assert_int_equal(after, rev);
    char buf[64];
    assert_string_equal(topic_field(f, "taskSid", buf, sizeof buf), "WT2");
    assert_string_equal(topic_field(f, "status", buf, sizeof buf), "completed");
    backend_free(&f->b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_types_map_to_statuses),
        cmocka_unit_test(a_topic_moves_forward),
        cmocka_unit_test(a_topic_never_moves_backwards),
        cmocka_unit_test(events_of_another_task_are_stale),
        cmocka_unit_test(a_new_task_restarts_a_completed_topic),
        cmocka_unit_test(a_replayed_sequence_changes_nothing),
        cmocka_unit_test(the_identity_is_granted_read_on_a_write),
        cmocka_unit_test(a_raced_event_is_judged_on_the_winner),
        cmocka_unit_test(events_without_a_topic_are_ignored),
        cmocka_unit_test(bad_attributes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
