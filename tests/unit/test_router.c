/* test_router.c - the router's dispatch by EventType and its idempotency by event Sid, through
 * router_dispatch with the real reservation handler and queueInfo on an in-memory back end
 * (fake_backend.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/metrics.h"
#include "fake_backend.h"
#include "functions/router.h"

#define ATTRS "{\"topic\":\"customer-1\"}"

typedef struct {
    fake_t *fake;
    router_deps_t deps;
} world_t;

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->fake = fake_new();
    w->deps.backend = &w->fake->b;
    w->deps.state = router_state_new();
    *state = w;
    return w->deps.state ? 0 : -1;
}

static int teardown(void **state)
{
    world_t *w = *state;
    router_state_free(w->deps.state);
    backend_free(&w->fake->b);
    free(w);
    return 0;
}

/* EventType, then key/value pairs up to NULL. */
static params_t *event(const char *type, ...)
{
    params_t *p = params_new();
    va_list ap;
    if (!p)
        abort();
    if (type)
        params_add(p, "EventType", 9, type, strlen(type), NULL);
    va_start(ap, type);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        params_add(p, k, strlen(k), v, strlen(v), NULL);
    }
    va_end(ap);
    return p;
}

/* Dispatches ev (freed) and returns the answer (new reference); asserts the error. */
static json_t *dispatch(world_t *w, params_t *ev, tassa_err want)
{
    json_t *result = NULL;
    errmsg_t em = {{0}};
    tassa_err err = router_dispatch(&w->deps, ev, &result, &em);
    params_free(ev);
    assert_int_equal(err, want);
    if (want)
        assert_null(result);
    else
        assert_true(json_is_object(result));
    return result;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void task_events_go_to_the_reservation_handler(void **state)
{
    world_t *w = *state;
    json_t *r = dispatch(
        w, event("task.created", "Sid", "EV1", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        TASSA_OK);
    assert_string_equal(str(r, "handler"), "reservation");
    assert_string_equal(str(r, "topic"), "customer-1");
    assert_string_equal(str(r, "status"), "waiting");
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
    r = dispatch(w,
                 event("reservation.accepted", "Sid", "EV2", "TaskSid", "WT1", "TaskAttributes",
                       ATTRS, "WorkerSid", "WK1", "WorkerName", "Bob", NULL),
                 TASSA_OK);
    assert_string_equal(str(r, "status"), "assigned");
    json_decref(r);
    json_t *d = fake_data(w->fake, "customer-1", NULL);
    assert_string_equal(str(d, "status"), "assigned");
    assert_string_equal(str(d, "eventSid"), "EV2");
    json_decref(d);
}

static void a_redelivered_sid_is_a_duplicate(void **state)
{
    world_t *w = *state;
    long rev, after;
    json_decref(dispatch(
        w, event("task.created", "Sid", "EV1", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        TASSA_OK));
    json_decref(fake_data(w->fake, "customer-1", &rev));
    int writes = w->fake->creates + w->fake->updates, reads = w->fake->fetches;
    json_t *r = dispatch(
        w, event("task.created", "Sid", "EV1", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        TASSA_OK);
    assert_true(json_is_true(json_object_get(r, "ignored")));
    assert_non_null(strstr(str(r, "reason"), "duplicate event EV1"));
    json_decref(r);
    /* the back end was not even asked */
    assert_int_equal(w->fake->creates + w->fake->updates, writes);
    assert_int_equal(w->fake->fetches, reads);
    json_decref(fake_data(w->fake, "customer-1", &after));
    assert_int_equal(after, rev);
}

/* A replay of an older event with a fresh Sid is harmless by the handler's rules. */
static void an_old_event_with_a_new_sid_changes_nothing(void **state)
{
    world_t *w = *state;
    json_decref(dispatch(w,
                         event("reservation.accepted", "Sid", "EV2", "TaskSid", "WT1",
                               "TaskAttributes", ATTRS, NULL),
                         TASSA_OK));
    json_t *r = dispatch(
        w, event("task.created", "Sid", "EV9", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        TASSA_OK);
    assert_string_equal(str(r, "handler"), "reservation");
    assert_false(json_is_true(json_object_get(r, "changed")));
    assert_non_null(str(r, "reason"));
    json_decref(r);
}

/* A stale event's reason quotes the task SIDs cut to a few dozen bytes; a cut never splits a
 * UTF-8 character, or the answer could not be JSON (it was refused as out of memory, a 500). */
static void a_stale_reason_never_splits_a_character(void **state)
{
    world_t *w = *state;
    /* 39 ASCII bytes, then 2-byte characters: byte 40 is the middle of one */
    const char *mine = "WT1111111111111111111111111111111111111\xc3\xa9\xc3\xa9";
    const char *other = "WT2222222222222222222222222222222222222\xc3\xa9\xc3\xa9";
    json_decref(dispatch(
        w, event("task.created", "Sid", "EV1", "TaskSid", mine, "TaskAttributes", ATTRS, NULL),
        TASSA_OK));
    json_t *r = dispatch(w,
                         event("reservation.accepted", "Sid", "EV2", "TaskSid", other,
                               "TaskAttributes", ATTRS, NULL),
                         TASSA_OK);
    assert_false(json_is_true(json_object_get(r, "changed")));
    const char *reason = str(r, "reason");
    assert_non_null(reason);
    assert_non_null(strstr(reason, "stale"));
    assert_non_null(strstr(reason, "WT11111111111111111111111111111111111"));
    assert_null(strstr(reason, "\xc3 ")); /* no lead byte left without its second byte */
    json_decref(r);
}

/* A failed event is not remembered: Twilio's retry of the same Sid is handled. */
static void a_failed_event_can_be_retried(void **state)
{
    world_t *w = *state;
    w->fake->fail_fetch = TASSA_EUPSTREAM;
    w->fake->fail_fetch_times = 1;
    dispatch(w,
             event("task.created", "Sid", "EV1", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
             TASSA_EUPSTREAM);
    json_t *r = dispatch(
        w, event("task.created", "Sid", "EV1", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        TASSA_OK);
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
}

/* Recent Sids are kept across the memory's generations (4096 per generation). */
static void recent_sids_survive_a_generation(void **state)
{
    world_t *w = *state;
    char sid[32];
    json_decref(dispatch(w, event("workflow.entered", "Sid", "EVfirst", NULL), TASSA_OK));
    for (int i = 0; i < 5000; i++) {
        snprintf(sid, sizeof sid, "EV%05d", i);
        json_decref(dispatch(w, event("workflow.entered", "Sid", sid, NULL), TASSA_OK));
    }
    json_t *r = dispatch(w, event("workflow.entered", "Sid", "EVfirst", NULL), TASSA_OK);
    assert_non_null(strstr(str(r, "reason"), "duplicate"));
    json_decref(r);
    r = dispatch(w, event("workflow.entered", "Sid", "EV04999", NULL), TASSA_OK);
    assert_non_null(strstr(str(r, "reason"), "duplicate"));
    json_decref(r);
    r = dispatch(w, event("workflow.entered", "Sid", "EVnew", NULL), TASSA_OK);
    assert_non_null(strstr(str(r, "reason"), "no handler for workflow.entered"));
    json_decref(r);
}

static void other_events_are_ignored_with_a_reason(void **state)
{
    world_t *w = *state;
    json_t *r = dispatch(w, event("task-queue.entered", "Sid", "EV1", NULL), TASSA_OK);
    assert_true(json_is_true(json_object_get(r, "ignored")));
    assert_string_equal(str(r, "reason"), "no handler for task-queue.entered");
    json_decref(r);
    /* an unknown type too long for the reason's buffer: the cut there splits no character */
    char type[301];
    memset(type, 'x', 300);
    type[300] = '\0';
    for (int i = 237; i < 290; i += 2) /* "no handler for " + 240 bytes: a cut in the 2nd byte */
        memcpy(type + i, "\xc3\xa9", 2);
    r = dispatch(w, event(type, "Sid", "EV30", NULL), TASSA_OK);
    assert_true(json_is_true(json_object_get(r, "ignored")));
    assert_non_null(strstr(str(r, "reason"), "no handler for xxx"));
    assert_true(strlen(str(r, "reason")) >= 250);
    json_decref(r);
    /* a task event without a topic is ignored by the handler */
    r = dispatch(w, event("task.created", "Sid", "EV2", "TaskAttributes", "{}", NULL), TASSA_OK);
    assert_true(json_is_true(json_object_get(r, "ignored")));
    json_decref(r);
    /* without queueInfo, worker events have nowhere to go */
    r = dispatch(w, event("worker.activity.update", "Sid", "EV3", NULL), TASSA_OK);
    assert_true(json_is_true(json_object_get(r, "ignored")));
    assert_non_null(strstr(str(r, "reason"), "queueInfo"));
    json_decref(r);
    assert_int_equal(w->fake->creates + w->fake->updates, 0);
}

static void worker_events_schedule_queue_info(void **state)
{
    world_t *w = *state;
    w->deps.queue_info = queue_info_start(&w->fake->b, 10, 1, NULL);
    assert_non_null(w->deps.queue_info);
    json_t *r = dispatch(w, event("worker.activity.update", "Sid", "EV1", NULL), TASSA_OK);
    assert_string_equal(str(r, "handler"), "queueInfo");
    assert_string_equal(str(r, "document"), "queue-status");
    assert_true(json_is_true(json_object_get(r, "scheduled")));
    json_decref(r);
    queue_info_stop(w->deps.queue_info); /* runs the pending refresh before it returns */
    w->deps.queue_info = NULL;
    json_t *d = fake_data(w->fake, "queue-status", NULL);
    assert_non_null(d);
    assert_int_equal(json_integer_value(json_object_get(d, "pendingCount")), 0);
    json_decref(d);
}

static void bad_events_are_refused(void **state)
{
    world_t *w = *state;
    char long_sid[80];
    memset(long_sid, 'E', 70);
    long_sid[70] = '\0';
    dispatch(w, event(NULL, "Sid", "EV1", NULL), TASSA_EMISSING);
    dispatch(w, event("", "Sid", "EV1", NULL), TASSA_EMISSING);
    dispatch(w, event("task.created", "Sid", long_sid, NULL), TASSA_EINVAL);
    dispatch(w, event("task.created", "Sid", "EV2", "TaskSid", "WT1", "TaskAttributes", "[]", NULL),
             TASSA_EINVAL);
    /* refused events are not remembered either */
    json_t *r = dispatch(
        w, event("task.created", "Sid", "EV2", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        TASSA_OK);
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
}

static void events_are_counted_by_type_and_outcome(void **state)
{
    double handled =
        metrics_get(M_ROUTER_EVENTS, "type", "task.created", "outcome", "handled", NULL);
    double other = metrics_get(M_ROUTER_EVENTS, "type", "other", "outcome", "error", NULL);
    json_t *ok = json_pack("{s:s}", "handler", "reservation");
    router_count_event("task.created", TASSA_OK, ok);
    router_count_event("made.up", TASSA_EINVAL, NULL);
    assert_true(metrics_get(M_ROUTER_EVENTS, "type", "task.created", "outcome", "handled", NULL) ==
                handled + 1);
    assert_true(metrics_get(M_ROUTER_EVENTS, "type", "other", "outcome", "error", NULL) ==
                other + 1);
    json_decref(ok);
}

/* router_dispatch_start/finish (the engine's dispatcher): several events started before any
 * finishes give router_dispatch's answers, in order; the topic holds the last change; a Sid
 * seen is a duplicate once its job finished; a bad event fails at finish. */
static void started_events_finish_as_dispatched(void **state)
{
    world_t *w = *state;
    params_t *evs[] = {
        event("task.created", "Sid", "EV1", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        event("workflow.entered", "Sid", "EV2", NULL),
        event("reservation.accepted", "Sid", "EV3", "TaskSid", "WT1", "TaskAttributes", ATTRS,
              "WorkerSid", "WK1", "WorkerName", "Bob", NULL),
        event("task.created", "Sid", "EV4", "TaskSid", "WT2", "TaskAttributes", "[]", NULL),
    };
    enum { N = sizeof evs / sizeof evs[0] };
    router_job_t *jobs[N];
    for (size_t i = 0; i < N; i++) {
        jobs[i] = router_dispatch_start(&w->deps, evs[i]);
        assert_non_null(jobs[i]);
        params_free(evs[i]); /* borrowed only during start */
    }
    assert_string_equal(router_job_type(jobs[0]), "task.created");
    assert_string_equal(router_job_sid(jobs[2]), "EV3");
    json_t *r[N];
    errmsg_t em = {{0}};
    for (size_t i = 0; i < N; i++)
        assert_int_equal(router_dispatch_finish(jobs[i], &r[i], &em),
                         i == 3 ? TASSA_EINVAL : TASSA_OK);
    assert_string_equal(str(r[0], "status"), "waiting");
    assert_true(json_is_true(json_object_get(r[1], "ignored")));
    assert_string_equal(str(r[2], "status"), "assigned");
    assert_null(r[3]);
    assert_non_null(strstr(em.text, "TaskAttributes"));
    json_t *d = fake_data(w->fake, "customer-1", NULL);
    assert_string_equal(str(d, "status"), "assigned");
    assert_string_equal(str(d, "eventSid"), "EV3");
    json_decref(d);
    for (size_t i = 0; i < 3; i++)
        json_decref(r[i]);
    json_t *again = dispatch(
        w, event("task.created", "Sid", "EV1", "TaskSid", "WT1", "TaskAttributes", ATTRS, NULL),
        TASSA_OK);
    assert_non_null(strstr(str(again, "reason"), "duplicate event EV1"));
    json_decref(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(task_events_go_to_the_reservation_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(a_redelivered_sid_is_a_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(an_old_event_with_a_new_sid_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_failed_event_can_be_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stale_reason_never_splits_a_character, setup, teardown),
        cmocka_unit_test_setup_teardown(recent_sids_survive_a_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(other_events_are_ignored_with_a_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(worker_events_schedule_queue_info, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_events_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(events_are_counted_by_type_and_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(started_events_finish_as_dispatched, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
