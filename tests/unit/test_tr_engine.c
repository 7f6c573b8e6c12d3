/* test_tr_engine.c - unit tests of the embedded TaskRouter engine (engine/taskrouter) on a
 * real temporary SQLite file: routing, matching order, the reservation lifecycle, timers,
 * restart recovery and the recorded events. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "engine/taskrouter/core.h"
#include "engine/taskrouter/engine.h"
#include "engine/taskrouter/model.h"
#include "engine/taskrouter/record.h"
#include "engine/taskrouter/stats.h"
#include "base/log.h"
#include "store/store.h"

#define ACCOUNT "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* The recording sink: every delivered event as a JSON object of its parameters. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* broadcast after each recorded event */
    json_t *events;
} sink_t;

typedef struct {
    char dir[64], path[96];
    store_t *store;
    tr_engine_t *e;
    sink_t sink;
    char offline[40], available[40], unavailable[40], in_call[40];
} fx_t;

static void record(void *ctx, const params_t *p)
{
    sink_t *s = ctx;
    json_t *o = json_object();
    for (size_t i = 0; i < p->len; i++)
        json_object_set_new(o, p->items[i].key, json_string(p->items[i].value));
    pthread_mutex_lock(&s->mu);
    json_array_append_new(s->events, o);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* Builds params from key, value, ..., NULL. */
static params_t *P(const char *k, ...)
{
    params_t *p = params_new();
    va_list ap;
    va_start(ap, k);
    for (const char *key = k; key; key = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        assert_int_equal(params_add(p, key, strlen(key), v, strlen(v), NULL), TASSA_OK);
    }
    va_end(ap);
    return p;
}

/* Runs a create/update call taking params, asserting success, and returns the sid. */
typedef tassa_err (*create_fn)(tr_engine_t *, const params_t *, const char *, json_t **,
                               errmsg_t *);
static void create(tr_engine_t *e, create_fn fn, params_t *p, char sid[40])
{
    json_t *out = NULL;
    errmsg_t em = {{0}};
    tassa_err err = fn(e, p, "http://x", &out, &em);
    if (err)
        fail_msg("create failed: %s", err_text(&em, err));
    snprintf(sid, 40, "%s", json_string_value(json_object_get(out, "sid")));
    json_decref(out);
    params_free(p);
}

/* Looks up an activity sid by name. */
static void activity(tr_engine_t *e, const char *name, char sid[40])
{
    json_t *items;
    bool more;
    params_t *f = P("FriendlyName", name, NULL);
    assert_int_equal(tr_activity_list(e, f, 0, 50, "", &items, &more, NULL), TASSA_OK);
    assert_int_equal(json_array_size(items), 1);
    snprintf(sid, 40, "%s", json_string_value(json_object_get(json_array_get(items, 0), "sid")));
    json_decref(items);
    params_free(f);
}

static void open_engine(fx_t *f, bool start)
{
    errmsg_t em = {{0}};
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    f->e = tr_engine_new(f->store, ACCOUNT, &em);
    if (!f->e)
        fail_msg("engine: %s", em.text);
    tr_engine_set_event_sink(f->e, record, &f->sink);
    if (start)
        assert_int_equal(tr_engine_start(f->e), TASSA_OK);
    activity(f->e, "Offline", f->offline);
    activity(f->e, "Available", f->available);
    activity(f->e, "Unavailable", f->unavailable);
    activity(f->e, "in-call", f->in_call);
}

static void close_engine(fx_t *f)
{
    tr_engine_free(f->e);
    store_close(f->store);
    f->e = NULL;
    f->store = NULL;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_tr_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/tassa.db", f->dir);
    pthread_mutex_init(&f->sink.mu, NULL);
    pthread_cond_init(&f->sink.cond, NULL);
    f->sink.events = json_array();
    open_engine(f, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    char cmd[128];
    close_engine(f);
    json_decref(f->sink.events);
    pthread_mutex_destroy(&f->sink.mu);
    pthread_cond_destroy(&f->sink.cond);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Helpers over the model ------------------------------------------------------------------ */

static void queue(fx_t *f, const char *name, const char *target, char sid[40])
{
    create(f->e, tr_queue_create, P("FriendlyName", name, "TargetWorkers", target, NULL), sid);
}

static void workflow(fx_t *f, const char *conf, const char *timeout, char sid[40])
{
    create(f->e, tr_workflow_create,
           P("FriendlyName", "wf", "Configuration", conf, "TaskReservationTimeout", timeout, NULL),
           sid);
}

/* A workflow sending everything to queue q. */
static void simple_workflow(fx_t *f, const char *q, const char *timeout, char sid[40])
{
    char conf[256];
    snprintf(conf, sizeof conf, "{\"task_routing\":{\"default_filter\":{\"queue\":\"%s\"}}}", q);
    workflow(f, conf, timeout, sid);
}

static void worker(fx_t *f, const char *name, const char *attrs, const char *act, char sid[40])
{
    create(f->e, tr_worker_create,
           P("FriendlyName", name, "Attributes", attrs, "ActivitySid", act, NULL), sid);
}

static void set_activity(fx_t *f, const char *worker_sid, const char *act)
{
    params_t *p = P("ActivitySid", act, NULL);
    errmsg_t em = {{0}};
    tassa_err err = tr_worker_update(f->e, worker_sid, p, "", NULL, &em);
    if (err)
        fail_msg("worker update: %s", err_text(&em, err));
    params_free(p);
}

static void update_worker(fx_t *f, const char *worker_sid, params_t *p)
{
    errmsg_t em = {{0}};
    tassa_err err = tr_worker_update(f->e, worker_sid, p, "", NULL, &em);
    if (err)
        fail_msg("worker update: %s", err_text(&em, err));
    params_free(p);
}

static void task(fx_t *f, const char *attrs, const char *priority, char sid[40])
{
    create(f->e, tr_task_create, P("Attributes", attrs, "Priority", priority, NULL), sid);
}

/* A string field of the task. */
static char *task_field(fx_t *f, const char *sid, const char *field)
{
    static char buf[4][256];
    static int n;
    json_t *t = NULL;
    assert_int_equal(tr_task_fetch(f->e, sid, "http://x", &t, NULL), TASSA_OK);
    char *b = buf[n++ % 4];
    json_t *v = json_object_get(t, field);
    if (json_is_string(v))
        snprintf(b, 256, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(b, 256, "%lld", (long long)json_integer_value(v));
    else
        snprintf(b, 256, "null");
    json_decref(t);
    return b;
}

/* The reservations of task as a new array. */
static json_t *reservations(fx_t *f, const char *task_sid)
{
    json_t *items;
    bool more;
    assert_int_equal(
        tr_reservation_list(f->e, task_sid, NULL, NULL, 0, 100, "", &items, &more, NULL), TASSA_OK);
    return items;
}

/* The n-th (0-based; -1 = last) reservation's field of a task. */
static char *res_field(fx_t *f, const char *task_sid, int n, const char *field)
{
    static char buf[4][64];
    static int k;
    json_t *items = reservations(f, task_sid);
    if (n < 0)
        n = (int)json_array_size(items) + n;
    char *b = buf[k++ % 4];
    json_t *r = json_array_get(items, (size_t)n);
    snprintf(b, 64, "%s", r ? json_string_value(json_object_get(r, field)) : "none");
    json_decref(items);
    return b;
}

static void res_update(fx_t *f, const char *task_sid, const char *res_sid, params_t *p)
{
    errmsg_t em = {{0}};
    tassa_err err = tr_reservation_update(f->e, task_sid, NULL, res_sid, p, "", NULL, &em);
    if (err)
        fail_msg("reservation update: %s", err_text(&em, err));
    params_free(p);
}

static void task_update(fx_t *f, const char *task_sid, params_t *p)
{
    errmsg_t em = {{0}};
    tassa_err err = tr_task_update(f->e, task_sid, p, "", NULL, &em);
    if (err)
        fail_msg("task update: %s", err_text(&em, err));
    params_free(p);
}

static char *worker_activity(fx_t *f, const char *sid)
{
    static char buf[64];
    json_t *w = NULL;
    assert_int_equal(tr_worker_fetch(f->e, sid, "", &w, NULL), TASSA_OK);
    snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(w, "activity_name")));
    json_decref(w);
    return buf;
}

/* Waits up to ms for the sink to hold an event of type for resource sid (any when NULL):
 * woken by each recorded event, never polling. */
static json_t *wait_event(fx_t *f, const char *type, const char *key, const char *value, int ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    json_t *found = NULL;
    pthread_mutex_lock(&f->sink.mu);
    for (;;) {
        for (size_t i = 0; !found && i < json_array_size(f->sink.events); i++) {
            json_t *ev = json_array_get(f->sink.events, i);
            if (strcmp(json_string_value(json_object_get(ev, "EventType")), type))
                continue;
            const char *have = key ? json_string_value(json_object_get(ev, key)) : NULL;
            if (!key || (have && !strcmp(have, value)))
                found = json_incref(ev);
        }
        if (found || pthread_cond_timedwait(&f->sink.cond, &f->sink.mu, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&f->sink.mu);
    return found;
}

/* Tests ----------------------------------------------------------------------------------- */

/* Higher priority first, then the oldest. */
static void test_priority_and_age(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t1[40], t2[40], t3[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->offline, w);
    task(f, "{\"n\":1}", "0", t1);
    task(f, "{\"n\":2}", "5", t2);
    task(f, "{\"n\":3}", "5", t3);
    assert_string_equal(task_field(f, t1, "assignment_status"), "pending");
    assert_string_equal(task_field(f, t2, "priority"), "5");
    set_activity(f, w, f->available);
    assert_string_equal(task_field(f, t2, "assignment_status"), "reserved");
    assert_string_equal(task_field(f, t1, "assignment_status"), "pending");
    assert_string_equal(task_field(f, t3, "assignment_status"), "pending");
    /* The queue order the back end sees. */
    json_t *arr;
    const char *pending[] = {"pending", "reserved"};
    assert_int_equal(tr_tasks_json(f->e, pending, 2, "", &arr), TASSA_OK);
    assert_int_equal(json_array_size(arr), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "sid")), t2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "sid")), t3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 2), "sid")), t1);
    json_decref(arr);
    res_update(f, t2, res_field(f, t2, 0, "sid"), P("ReservationStatus", "accepted", NULL));
    task_update(f, t2, P("AssignmentStatus", "completed", "Reason", "done", NULL));
    assert_string_equal(task_field(f, t3, "assignment_status"), "reserved");
    assert_string_equal(task_field(f, t1, "assignment_status"), "pending");
    res_update(f, t3, res_field(f, t3, 0, "sid"), P("ReservationStatus", "accepted", NULL));
    task_update(f, t3, P("AssignmentStatus", "completed", NULL));
    assert_string_equal(task_field(f, t1, "assignment_status"), "reserved");
}

/* A workflow's parsed configuration is kept between tasks (wfconf.c): a task is routed by the
 * Configuration stored when it is created, after every change and back again, and by its own
 * workflow's when two alternate. */
static void test_workflow_config_change(void **state)
{
    fx_t *f = *state;
    char q1[40], q2[40], w1[40], w2[40], t[40], to_q1[256], to_q2[256];
    queue(f, "Q1", "1==1", q1);
    queue(f, "Q2", "1==1", q2);
    snprintf(to_q1, sizeof to_q1, "{\"task_routing\":{\"default_filter\":{\"queue\":\"%s\"}}}", q1);
    snprintf(to_q2, sizeof to_q2, "{\"task_routing\":{\"default_filter\":{\"queue\":\"%s\"}}}", q2);
    workflow(f, to_q1, "120", w1);
    const char *const confs[] = {to_q1, to_q2, to_q1, to_q2};
    for (size_t i = 0; i < 4; i++) {
        if (i) {
            params_t *p = P("Configuration", confs[i], NULL);
            errmsg_t em = {{0}};
            tassa_err err = tr_workflow_update(f->e, w1, p, "", NULL, &em);
            params_free(p);
            if (err)
                fail_msg("workflow update: %s", err_text(&em, err));
        }
        task(f, "{}", "1", t);
        assert_string_equal(task_field(f, t, "task_queue_sid"), i % 2 ? q2 : q1);
    }
    workflow(f, to_q1, "120", w2); /* w1 routes to Q2 now, w2 to Q1 */
    for (int i = 0; i < 4; i++) {
        const char *wf = i % 2 ? w2 : w1;
        create(f->e, tr_task_create, P("Attributes", "{}", "WorkflowSid", wf, NULL), t);
        assert_string_equal(task_field(f, t, "workflow_sid"), wf);
        assert_string_equal(task_field(f, t, "task_queue_sid"), i % 2 ? q1 : q2);
    }
}

/* Workflow filters route by attributes; the queue's TargetWorkers picks who may take it. */
static void test_skills_routing(void **state)
{
    fx_t *f = *state;
    char general[40], loans[40], wf[40], bob[40], alice[40], t[40], t2[40], conf[512];
    queue(f, "General", "skills HAS 'general'", general);
    queue(f, "Loans", "skills HAS 'loans'", loans);
    snprintf(conf, sizeof conf,
             "{\"task_routing\":{\"filters\":[{\"filter_friendly_name\":\"L\",\"expression\":"
             "\"type == 'loan'\",\"targets\":[{\"queue\":\"%s\",\"priority\":7}]}],"
             "\"default_filter\":{\"queue\":\"%s\"}}}",
             loans, general);
    workflow(f, conf, "120", wf);
    worker(f, "Bob", "{\"skills\":[\"general\"]}", f->available, bob);
    worker(f, "Alice", "{\"skills\":[\"general\",\"loans\"]}", f->offline, alice);
    task(f, "{\"type\":\"loan\"}", "1", t);
    assert_string_equal(task_field(f, t, "task_queue_sid"), loans);
    assert_string_equal(task_field(f, t, "task_queue_friendly_name"), "Loans");
    assert_string_equal(task_field(f, t, "priority"), "7"); /* the target's override */
    assert_string_equal(task_field(f, t, "assignment_status"), "pending"); /* Bob can't */
    set_activity(f, alice, f->available);
    assert_string_equal(task_field(f, t, "assignment_status"), "reserved");
    assert_string_equal(res_field(f, t, 0, "worker_sid"), alice);
    task(f, "{\"type\":\"other\"}", "1", t2);
    assert_string_equal(task_field(f, t2, "task_queue_sid"), general);
    assert_string_equal(res_field(f, t2, 0, "worker_sid"), bob);
    /* The queue statistics see both workers as eligible for General. */
    json_t *rt, *cum;
    assert_int_equal(tr_queue_stats_json(f->e, general, 15, "", &rt, &cum), TASSA_OK);
    assert_int_equal(json_integer_value(json_object_get(rt, "total_eligible_workers")), 2);
    assert_int_equal(json_integer_value(json_object_get(rt, "total_tasks")), 1);
    assert_int_equal(json_integer_value(json_object_get(cum, "tasks_entered")), 1);
    assert_int_equal(json_integer_value(json_object_get(cum, "reservations_created")), 1);
    json_decref(rt);
    json_decref(cum);
}

/* The longest-idle eligible worker gets the task; finishing a task resets idle time. */
static void test_longest_idle(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w1[40], w2[40], t1[40], t2[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W1", "{}", f->offline, w1);
    worker(f, "W2", "{}", f->offline, w2);
    set_activity(f, w2, f->available);
    tr_engine_advance_clock(f->e, 5); /* a later time, without sleeping */
    set_activity(f, w1, f->available);
    task(f, "{}", "0", t1);
    assert_string_equal(res_field(f, t1, 0, "worker_sid"), w2);
    res_update(f, t1, res_field(f, t1, 0, "sid"), P("ReservationStatus", "accepted", NULL));
    task_update(f, t1, P("AssignmentStatus", "completed", NULL));
    task(f, "{}", "0", t2);
    assert_string_equal(res_field(f, t2, 0, "worker_sid"), w1);
}

/* A rejection moves the task to the next worker; the rejecting one is not offered it again. */
static void test_reject(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w1[40], w2[40], t[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W1", "{}", f->available, w1);
    tr_engine_advance_clock(f->e, 5); /* a later time, without sleeping */
    worker(f, "W2", "{}", f->available, w2);
    task(f, "{}", "0", t);
    assert_string_equal(res_field(f, t, 0, "worker_sid"), w1);
    res_update(f, t, res_field(f, t, 0, "sid"), P("ReservationStatus", "rejected", NULL));
    assert_string_equal(res_field(f, t, 0, "reservation_status"), "rejected");
    assert_string_equal(res_field(f, t, 1, "worker_sid"), w2);
    assert_string_equal(res_field(f, t, 1, "reservation_status"), "pending");
    res_update(f, t, res_field(f, t, 1, "sid"), P("ReservationStatus", "rejected", NULL));
    json_t *r = reservations(f, t);
    assert_int_equal(json_array_size(r), 2);
    json_decref(r);
    assert_string_equal(task_field(f, t, "assignment_status"), "pending");
    /* Accepting a rejected reservation is a client error, not a crash. */
    errmsg_t em = {{0}};
    params_t *p = P("ReservationStatus", "accepted", NULL);
    assert_int_equal(
        tr_reservation_update(f->e, t, NULL, res_field(f, t, 0, "sid"), p, "", NULL, &em),
        TASSA_EINVAL);
    params_free(p);
}

/* A reservation not answered in TaskReservationTimeout times out: the worker goes Offline
 * and the task is offered to the next worker. */
static void test_reservation_timeout(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w1[40], w2[40], t[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "1", wf);
    worker(f, "W1", "{}", f->available, w1);
    tr_engine_advance_clock(f->e, 5); /* a later time, without sleeping */
    worker(f, "W2", "{}", f->available, w2);
    task(f, "{}", "0", t);
    assert_string_equal(res_field(f, t, 0, "worker_sid"), w1);
    json_t *ev = wait_event(f, "reservation.timeout", "TaskSid", t, 3000);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "WorkerSid")), w1);
    json_decref(ev);
    assert_string_equal(res_field(f, t, 0, "reservation_status"), "timeout");
    assert_string_equal(worker_activity(f, w1), "Offline");
    assert_string_equal(res_field(f, t, 1, "worker_sid"), w2);
    assert_string_equal(task_field(f, t, "assignment_status"), "reserved");
}

/* A target timeout moves the task to the next target; after the last one it is canceled. */
static void test_target_timeout(void **state)
{
    fx_t *f = *state;
    char q1[40], q2[40], wf[40], t[40], conf[512];
    queue(f, "Q1", "skills HAS 'nobody'", q1);
    queue(f, "Q2", "skills HAS 'nobody'", q2);
    snprintf(conf, sizeof conf,
             "{\"task_routing\":{\"filters\":[{\"expression\":\"1==1\",\"targets\":["
             "{\"queue\":\"%s\",\"timeout\":1},{\"queue\":\"%s\",\"timeout\":\"1\"}]}],"
             "\"default_filter\":{\"queue\":\"%s\"}}}",
             q1, q2, q1);
    workflow(f, conf, "120", wf);
    task(f, "{}", "0", t);
    assert_string_equal(task_field(f, t, "task_queue_sid"), q1);
    json_t *ev = wait_event(f, "task-queue.moved", "TaskSid", t, 3000);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "TaskQueueSid")), q2);
    json_decref(ev);
    assert_string_equal(task_field(f, t, "task_queue_sid"), q2);
    ev = wait_event(f, "task.canceled", "TaskSid", t, 3000);
    assert_non_null(ev);
    json_decref(ev);
    ev = wait_event(f, "workflow.timeout", "TaskSid", t, 100);
    assert_non_null(ev);
    json_decref(ev);
    assert_string_equal(task_field(f, t, "assignment_status"), "canceled");
    assert_string_equal(task_field(f, t, "reason"), "Workflow Timeout");
}

/* Canceling a reserved task cancels its reservation and frees the worker. */
static void test_cancel(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t1[40], t2[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->available, w);
    task(f, "{}", "0", t1);
    task(f, "{}", "0", t2);
    assert_string_equal(task_field(f, t1, "assignment_status"), "reserved");
    task_update(f, t1, P("AssignmentStatus", "canceled", "Reason", "caller hung up", NULL));
    assert_string_equal(task_field(f, t1, "assignment_status"), "canceled");
    assert_string_equal(task_field(f, t1, "reason"), "caller hung up");
    assert_string_equal(res_field(f, t1, 0, "reservation_status"), "canceled");
    assert_string_equal(task_field(f, t2, "assignment_status"), "reserved");
    json_t *ev = wait_event(f, "task.canceled", "TaskSid", t1, 2000);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "TaskCanceledReason")),
                        "caller hung up");
    json_decref(ev);
    /* A canceled task cannot be completed. */
    errmsg_t em = {{0}};
    params_t *p = P("AssignmentStatus", "completed", NULL);
    assert_int_equal(tr_task_update(f->e, t1, p, "", NULL, &em), TASSA_EINVAL);
    params_free(p);
}

/* Finished tasks go 15 minutes after they finished (with their reservations), as at
 * Twilio; waiting ones stay whatever their age. */
static void test_prune(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t1[40], t2[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->available, w);
    task(f, "{}", "0", t1);
    task(f, "{}", "0", t2);
    task_update(f, t1, P("AssignmentStatus", "canceled", "Reason", "gone", NULL));
    int64_t now = store_now_ms();
    /* 14 minutes later nothing is removed */
    assert_int_equal(tr_engine_prune(f->e, now + 14 * 60 * 1000), TASSA_OK);
    assert_string_equal(task_field(f, t1, "assignment_status"), "canceled");
    /* 16 minutes later the canceled task is gone, the reserved one stays */
    assert_int_equal(tr_engine_prune(f->e, now + 16 * 60 * 1000), TASSA_OK);
    json_t *out = NULL;
    assert_int_equal(tr_task_fetch(f->e, t1, "", &out, NULL), TASSA_ENOTFOUND);
    assert_string_equal(task_field(f, t2, "assignment_status"), "reserved");
    /* its reservations went with it: none is left in the data file */
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM tr_reservations WHERE task_sid = '%s'", t1);
    store_lock(f->store);
    store_stmt_t *st = store_prepare(f->store, sql);
    assert_non_null(st);
    assert_int_equal(store_step(st), STORE_ROW);
    int left = (int)store_col_int64(st, 0);
    store_release(f->store, st);
    store_unlock(f->store);
    assert_int_equal(left, 0);
}

/* accepted -> wrapping -> completed, with the queue's AssignmentActivitySid. */
static void test_wrapup_complete(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t[40];
    create(f->e, tr_queue_create, P("FriendlyName", "Q", "AssignmentActivitySid", f->in_call, NULL),
           q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->available, w);
    task(f, "{\"topic\":\"x\"}", "0", t);
    char res[40];
    snprintf(res, sizeof res, "%s", res_field(f, t, 0, "sid"));
    res_update(f, t, res, P("ReservationStatus", "accepted", NULL));
    assert_string_equal(task_field(f, t, "assignment_status"), "assigned");
    assert_string_equal(worker_activity(f, w), "in-call");
    res_update(f, t, res, P("ReservationStatus", "wrapping", NULL));
    assert_string_equal(task_field(f, t, "assignment_status"), "wrapping");
    assert_string_equal(res_field(f, t, 0, "reservation_status"), "wrapping");
    res_update(f, t, res,
               P("ReservationStatus", "completed", "WorkerActivitySid", f->available, NULL));
    assert_string_equal(task_field(f, t, "assignment_status"), "completed");
    assert_string_equal(res_field(f, t, 0, "reservation_status"), "completed");
    assert_string_equal(worker_activity(f, w), "Available");
    static const char *const types[] = {"task.wrapup", "reservation.wrapup", "task.completed",
                                        "reservation.completed"};
    for (size_t i = 0; i < 4; i++) {
        json_t *ev = wait_event(f, types[i], "TaskSid", t, 2000);
        if (!ev)
            fail_msg("no %s", types[i]);
        json_decref(ev);
    }
    json_t *cum = NULL;
    assert_int_equal(tr_queue_cumulative(f->e, q, 15, "", &cum, NULL), TASSA_OK);
    assert_int_equal(json_integer_value(json_object_get(cum, "tasks_completed")), 1);
    assert_int_equal(json_integer_value(json_object_get(cum, "reservations_accepted")), 1);
    assert_non_null(json_object_get(json_object_get(cum, "wait_duration_until_accepted"), "max"));
    json_decref(cum);
}

/* A worker going offline with a pending reservation: rescinded, task re-queued to another. */
static void test_worker_offline(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w1[40], w2[40], t[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W1", "{}", f->available, w1);
    tr_engine_advance_clock(f->e, 5); /* a later time, without sleeping */
    worker(f, "W2", "{}", f->unavailable, w2);
    task(f, "{}", "0", t);
    assert_string_equal(res_field(f, t, 0, "worker_sid"), w1);
    set_activity(f, w1, f->offline);
    assert_string_equal(res_field(f, t, 0, "reservation_status"), "rescinded");
    assert_string_equal(task_field(f, t, "assignment_status"), "pending");
    set_activity(f, w2, f->available);
    assert_string_equal(res_field(f, t, 1, "worker_sid"), w2);
    json_t *ev = wait_event(f, "reservation.rescinded", "WorkerSid", w1, 2000);
    assert_non_null(ev);
    json_decref(ev);
}

/* Restart in the middle of a reservation: it is still pending and its timeout still fires. */
static void test_restart(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t[40], res[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "2", wf);
    worker(f, "W", "{}", f->available, w);
    task(f, "{}", "0", t);
    snprintf(res, sizeof res, "%s", res_field(f, t, 0, "sid"));
    close_engine(f);
    open_engine(f, true);
    assert_string_equal(res_field(f, t, 0, "sid"), res);
    assert_string_equal(res_field(f, t, 0, "reservation_status"), "pending");
    json_t *ev = wait_event(f, "reservation.timeout", "ReservationSid", res, 4000);
    assert_non_null(ev);
    json_decref(ev);
    assert_string_equal(res_field(f, t, 0, "reservation_status"), "timeout");
    assert_string_equal(worker_activity(f, w), "Offline");
    assert_string_equal(task_field(f, t, "assignment_status"), "pending");
}

/* Events arrive in commit order with Twilio's parameters; undelivered ones survive a restart
 * and delivered ones are not delivered again. */
static void test_events(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t[40];
    close_engine(f);
    open_engine(f, false); /* no dispatcher: events are recorded only */
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "Wendy", "{\"skills\":[\"a\"]}", f->available, w);
    task(f, "{\"topic\":\"t1\"}", "3", t);
    pthread_mutex_lock(&f->sink.mu);
    assert_int_equal(json_array_size(f->sink.events), 0);
    pthread_mutex_unlock(&f->sink.mu);
    close_engine(f);
    open_engine(f, true);
    json_t *last = wait_event(f, "reservation.created", "TaskSid", t, 3000);
    assert_non_null(last);
    assert_string_equal(json_string_value(json_object_get(last, "WorkerSid")), w);
    assert_string_equal(json_string_value(json_object_get(last, "WorkerName")), "Wendy");
    assert_string_equal(json_string_value(json_object_get(last, "TaskAttributes")),
                        "{\"topic\":\"t1\"}");
    assert_string_equal(json_string_value(json_object_get(last, "TaskPriority")), "3");
    assert_string_equal(json_string_value(json_object_get(last, "TaskQueueSid")), q);
    assert_string_equal(json_string_value(json_object_get(last, "WorkflowSid")), wf);
    assert_string_equal(json_string_value(json_object_get(last, "AccountSid")), ACCOUNT);
    assert_string_equal(json_string_value(json_object_get(last, "WorkspaceSid")),
                        tr_workspace_sid(f->e));
    assert_string_equal(json_string_value(json_object_get(last, "ResourceType")), "Reservation");
    assert_string_equal(json_string_value(json_object_get(last, "ReservationSid")),
                        res_field(f, t, 0, "sid"));
    assert_true(!strncmp(json_string_value(json_object_get(last, "Sid")), "EV", 2));
    json_decref(last);
    static const char *const want[] = {
        "task-queue.created", "workflow.created", "worker.created",          "workflow.entered",
        "task-queue.entered", "task.created",     "workflow.target-matched", "reservation.created"};
    pthread_mutex_lock(&f->sink.mu);
    size_t n = json_array_size(f->sink.events);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(f->sink.events, i), "EventType")),
            want[i]);
    pthread_mutex_unlock(&f->sink.mu);
    /* Delivered events are not delivered again after a restart. */
    close_engine(f);
    open_engine(f, true);
    /* Events go out in commit order: once a new one arrives, any redelivery would have come
     * before it. */
    char q2[40];
    queue(f, "Q2", "1==1", q2);
    json_t *fresh = wait_event(f, "task-queue.created", "TaskQueueSid", q2, 3000);
    assert_non_null(fresh);
    json_t *ws = NULL;
    assert_int_equal(tr_workspace_fetch(f->e, tr_workspace_sid(f->e), "", &ws, NULL), TASSA_OK);
    assert_string_equal(json_string_value(json_object_get(fresh, "WorkspaceName")),
                        json_string_value(json_object_get(ws, "friendly_name")));
    json_decref(ws);
    json_decref(fresh);
    pthread_mutex_lock(&f->sink.mu);
    assert_int_equal(json_array_size(f->sink.events), n + 1);
    pthread_mutex_unlock(&f->sink.mu);
    /* A renamed workspace: later events carry its new name. */
    params_t *rename = P("FriendlyName", "Renamed floor", NULL);
    assert_int_equal(tr_workspace_update(f->e, tr_workspace_sid(f->e), rename, "", NULL, NULL),
                     TASSA_OK);
    params_free(rename);
    char q3[40];
    queue(f, "Q3", "1==1", q3);
    fresh = wait_event(f, "task-queue.created", "TaskQueueSid", q3, 3000);
    assert_non_null(fresh);
    assert_string_equal(json_string_value(json_object_get(fresh, "WorkspaceName")),
                        "Renamed floor");
    json_decref(fresh);
    /* The Events resource lists them, newest first, with filters. */
    json_t *items;
    bool more;
    params_t *p = P("TaskSid", t, "EventType", "task.created", NULL);
    assert_int_equal(tr_event_list(f->e, p, 0, 50, "http://h", &items, &more, NULL), TASSA_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(items, 0), "event_data"), "task_sid")),
                        t);
    json_decref(items);
    params_free(p);
}

/* A page of a list: offset and limit count only the rows the filter accepts, and more says
 * whether one follows; the rows are kept under the lock and rendered after it (tr_list,
 * tr_event_list). */
static void test_list_pages(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], t[7][40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    for (int i = 0; i < 7; i++) /* no worker: all wait, in creation order at one priority */
        task(f, i % 2 ? "{\"odd\":1}" : "{\"odd\":0}", "3", t[i]);
    const struct {
        long offset, limit;
        size_t n;
        bool more;
        int first; /* index into the even tasks 0, 2, 4, 6 */
    } pages[] = {{0, 2, 2, true, 0},  {1, 2, 2, true, 1},   {2, 2, 2, false, 2},
                 {3, 5, 1, false, 3}, {4, 2, 0, false, -1}, {0, 4, 4, false, 0}};
    params_t *even = P("EvaluateTaskAttributes", "odd == 0", "Ordering", "DateCreated:asc", NULL);
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        json_t *items = NULL;
        bool more = !pages[i].more;
        assert_int_equal(tr_task_list(f->e, even, pages[i].offset, pages[i].limit, "http://h",
                                      &items, &more, NULL),
                         TASSA_OK);
        assert_int_equal(json_array_size(items), pages[i].n);
        assert_int_equal(more, pages[i].more);
        for (size_t k = 0; k < pages[i].n; k++)
            assert_string_equal(json_string_value(json_object_get(json_array_get(items, k), "sid")),
                                t[2 * (pages[i].first + (int)k)]);
        json_decref(items);
    }
    params_free(even);
    /* The events of one task, newest first, a page of two at a time, each once. */
    params_t *p = P("TaskSid", t[5], NULL);
    json_t *all = NULL;
    bool more = true;
    assert_int_equal(tr_event_list(f->e, p, 0, 1000, "http://h", &all, &more, NULL), TASSA_OK);
    assert_false(more);
    size_t n = json_array_size(all);
    assert_true(n >= 3);
    for (size_t off = 0; off < n; off += 2) {
        json_t *items = NULL;
        assert_int_equal(tr_event_list(f->e, p, (long)off, 2, "http://h", &items, &more, NULL),
                         TASSA_OK);
        assert_int_equal(json_array_size(items), off + 2 <= n ? 2 : 1);
        assert_int_equal(more, off + 2 < n);
        for (size_t k = 0; k < json_array_size(items); k++) {
            json_t *ev = json_array_get(items, k);
            assert_string_equal(
                json_string_value(json_object_get(ev, "sid")),
                json_string_value(json_object_get(json_array_get(all, off + k), "sid")));
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(ev, "event_data"), "task_sid")),
                t[5]);
        }
        json_decref(items);
    }
    json_decref(all);
    params_free(p);
}

/* Bad input is an error with a detail, never a crash. */
static void test_bad_input(void **state)
{
    fx_t *f = *state;
    char q[40];
    queue(f, "Q", "1==1", q);
    static const struct {
        create_fn fn;
        const char *k1, *v1, *k2, *v2;
        tassa_err want;
        const char *msg;
    } cases[] = {
        {tr_worker_create, "FriendlyName", "A", "Attributes", "{bad", TASSA_EINVAL, "JSON"},
        {tr_worker_create, "FriendlyName", "A", "Attributes", "[1]", TASSA_EINVAL, "object"},
        {tr_worker_create, "FriendlyName", "A", "ActivitySid", "WAnope", TASSA_EINVAL,
         "ActivitySid"},
        {tr_worker_create, "Attributes", "{}", "ActivitySid", "", TASSA_EMISSING, "FriendlyName"},
        {tr_queue_create, "FriendlyName", "B", "TargetWorkers", "skills HAS (", TASSA_EEXPR,
         "position"},
        {tr_queue_create, "FriendlyName", "B", "TaskOrder", "RANDOM", TASSA_EINVAL, "TaskOrder"},
        {tr_task_create, "Priority", "-1", "Attributes", "{}", TASSA_EINVAL, "Priority"},
        {tr_task_create, "Timeout", "abc", "Attributes", "{}", TASSA_EINVAL, "Timeout"},
        {tr_task_create, "Attributes", "{}", "Priority", "1", TASSA_EMISSING, "WorkflowSid"},
        {tr_workflow_create, "FriendlyName", "W", "Configuration", "{}", TASSA_EINVAL,
         "task_routing"},
        {tr_workflow_create, "FriendlyName", "W", "Configuration",
         "{\"task_routing\":{\"filters\":[{\"expression\":\"a ==\",\"targets\":[]}]}}", TASSA_EEXPR,
         "position"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errmsg_t em = {{0}};
        json_t *out = NULL;
        params_t *p = P(cases[i].k1, cases[i].v1, cases[i].k2, cases[i].v2, NULL);
        tassa_err err = cases[i].fn(f->e, p, "", &out, &em);
        params_free(p);
        if (err != cases[i].want || !strstr(em.text, cases[i].msg))
            fail_msg("case %zu: err %d (%s)", i, err, em.text);
        assert_null(out);
    }
    char big[TR_MAX_ATTRIBUTES + 64];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    errmsg_t em = {{0}};
    params_t *p = P("FriendlyName", "Big", "Attributes", big, NULL);
    assert_int_equal(tr_worker_create(f->e, p, "", NULL, &em), TASSA_EINVAL);
    params_free(p);
    json_t *out = NULL;
    assert_int_equal(tr_task_fetch(f->e, "WTnope", "", &out, &em), TASSA_ENOTFOUND);
    assert_int_equal(tr_worker_delete(f->e, "WKnope", &em), TASSA_ENOTFOUND);
}

/* Demo data: two queues, a workflow, four available tellers; loans go to Loans. */
static void test_demo(void **state)
{
    fx_t *f = *state;
    assert_int_equal(tr_engine_demo(f->e), TASSA_OK);
    assert_int_equal(tr_engine_demo(f->e), TASSA_OK); /* idempotent */
    json_t *workers, *queues;
    assert_int_equal(tr_workers_json(f->e, "", &workers), TASSA_OK);
    assert_int_equal(tr_queues_json(f->e, "", &queues), TASSA_OK);
    assert_int_equal(json_array_size(workers), 4);
    assert_int_equal(json_array_size(queues), 2);
    assert_true(json_is_true(json_object_get(json_array_get(workers, 0), "available")));
    json_decref(workers);
    json_decref(queues);
    char t[40];
    task(f, "{\"type\":\"loan\"}", "0", t);
    assert_string_equal(task_field(f, t, "task_queue_friendly_name"), "Loans");
    assert_string_equal(task_field(f, t, "assignment_status"), "reserved");
    char *url, *filter;
    assert_int_equal(tr_workspace_callback(f->e, &url, &filter), TASSA_OK);
    assert_null(url);
    assert_null(filter);
}

/* The workspaces list holds the one workspace unless FriendlyName names another or the page
 * skips it; the event callback settings come back as the caller's own copies, and "" clears
 * them. */
static void test_workspace_list_and_callback(void **state)
{
    fx_t *f = *state;
    const char *ws = tr_workspace_sid(f->e);
    json_t *items = NULL, *out = NULL;
    bool more = true;
    params_t *p = NULL;
    char *url = NULL, *filter = NULL;

    assert_int_equal(tr_workspace_list(f->e, NULL, 0, 50, "http://x", &items, &more, NULL),
                     TASSA_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_false(more);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "sid")), ws);
    json_decref(items);
    p = P("FriendlyName", "tassa", NULL);
    assert_int_equal(tr_workspace_list(f->e, p, 0, 50, "", &items, &more, NULL), TASSA_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    params_free(p);
    p = P("FriendlyName", "another", NULL);
    assert_int_equal(tr_workspace_list(f->e, p, 0, 50, "", &items, &more, NULL), TASSA_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    params_free(p);
    assert_int_equal(tr_workspace_list(f->e, NULL, 1, 50, "", &items, &more, NULL), TASSA_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);

    assert_int_equal(tr_workspace_callback(f->e, &url, &filter), TASSA_OK);
    assert_null(url);
    assert_null(filter);
    p = P("EventCallbackUrl", "http://127.0.0.1:9/cb", "EventsFilter", "task.created", NULL);
    assert_int_equal(tr_workspace_update(f->e, ws, p, "http://x", &out, NULL), TASSA_OK);
    assert_string_equal(json_string_value(json_object_get(out, "event_callback_url")),
                        "http://127.0.0.1:9/cb");
    json_decref(out);
    params_free(p);
    assert_int_equal(tr_workspace_callback(f->e, &url, &filter), TASSA_OK);
    assert_string_equal(url, "http://127.0.0.1:9/cb");
    assert_string_equal(filter, "task.created");
    free(url);
    free(filter);
    p = P("EventCallbackUrl", "", "EventsFilter", "", NULL);
    assert_int_equal(tr_workspace_update(f->e, ws, p, "", NULL, NULL), TASSA_OK);
    params_free(p);
    assert_int_equal(tr_workspace_callback(f->e, &url, &filter), TASSA_OK);
    assert_null(url);
    assert_null(filter);
}

/* In a LIFO queue the waiting list (tr_waiting_json) and each task's place (tr_task_position)
 * follow one order: priority first, then the newest entry. */
static void test_lifo_order_and_position(void **state)
{
    fx_t *f = *state;
    char q[40], t[5][40];
    static const char *const prio[5] = {"0", "5", "0", "5", "1"};
    json_t *first = NULL, *summary = NULL;
    params_t *p = P("FriendlyName", "lifo", "TargetWorkers", "1==1", "TaskOrder", "LIFO", NULL);
    create(f->e, tr_queue_create, p, q);
    for (int i = 0; i < 5; i++) {
        create(f->e, tr_task_create, P("TaskQueueSid", q, "Priority", prio[i], NULL), t[i]);
        tr_engine_advance_clock(f->e, 5); /* distinct entry times for LIFO to reverse */
    }
    assert_int_equal(tr_waiting_json(f->e, 10, "", &first, &summary), TASSA_OK);
    assert_int_equal(json_array_size(first), 5);
    assert_int_equal(json_integer_value(json_object_get(summary, "total")), 5);
    /* priority 5 newest first (t3, t1), then 1 (t4), then 0 newest first (t2, t0) */
    static const int expect[5] = {3, 1, 4, 2, 0};
    for (size_t i = 0; i < 5; i++) {
        const char *sid = json_string_value(json_object_get(json_array_get(first, i), "sid"));
        long pos = 0, size = 0;
        assert_string_equal(sid, t[expect[i]]);
        assert_int_equal(tr_task_position(f->e, sid, &pos, &size), TASSA_OK);
        assert_int_equal(pos, (long)i + 1);
        assert_int_equal(size, 5);
    }
    json_decref(first);
    json_decref(summary);
}

/* The queue's RealTimeStatistics total_eligible_workers. */
static json_int_t eligible_in(fx_t *f, const char *q)
{
    json_t *rt, *cum;
    assert_int_equal(tr_queue_stats_json(f->e, q, 15, "", &rt, &cum), TASSA_OK);
    json_int_t n = json_integer_value(json_object_get(rt, "total_eligible_workers"));
    json_decref(rt);
    json_decref(cum);
    return n;
}

/* Queue membership follows a worker's attributes and a queue's expression: a worker joins a
 * queue's matching when its attributes come to match, leaves it when they stop, and a queue's
 * new expression is evaluated against every worker again. */
static void test_membership_follows_changes(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t1[40], t2[40], t3[40];
    queue(f, "Q", "skills HAS 'x'", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->available, w);
    task(f, "{}", "0", t1);
    assert_string_equal(task_field(f, t1, "assignment_status"), "pending"); /* not a member */
    update_worker(f, w, P("Attributes", "{\"skills\":[\"x\"]}", NULL));
    assert_string_equal(task_field(f, t1, "assignment_status"), "reserved"); /* joined */
    assert_string_equal(res_field(f, t1, 0, "worker_sid"), w);
    res_update(f, t1, res_field(f, t1, 0, "sid"), P("ReservationStatus", "accepted", NULL));
    task_update(f, t1, P("AssignmentStatus", "completed", NULL));
    update_worker(f, w, P("Attributes", "{\"skills\":[\"y\"]}", NULL));
    task(f, "{}", "0", t2);
    assert_string_equal(task_field(f, t2, "assignment_status"), "pending"); /* left */
    assert_int_equal(eligible_in(f, q), 0);
    errmsg_t em = {{0}};
    params_t *p = P("TargetWorkers", "skills HAS 'y'", NULL);
    assert_int_equal(tr_queue_update(f->e, q, p, "", NULL, &em), TASSA_OK);
    params_free(p);
    assert_string_equal(task_field(f, t2, "assignment_status"), "reserved"); /* re-evaluated */
    assert_int_equal(eligible_in(f, q), 1);
    assert_string_equal(res_field(f, t2, 0, "worker_sid"), w);
    res_update(f, t2, res_field(f, t2, 0, "sid"), P("ReservationStatus", "accepted", NULL));
    task_update(f, t2, P("AssignmentStatus", "completed", NULL));
    /* Going offline and back keeps the membership; deleting the worker ends it. */
    set_activity(f, w, f->offline);
    task(f, "{}", "0", t3);
    assert_string_equal(task_field(f, t3, "assignment_status"), "pending");
    set_activity(f, w, f->available);
    assert_string_equal(task_field(f, t3, "assignment_status"), "reserved");
    res_update(f, t3, res_field(f, t3, 0, "sid"), P("ReservationStatus", "rejected", NULL));
    assert_int_equal(tr_worker_delete(f->e, w, &em), TASSA_OK);
    store_lock(f->store);
    int64_t rows = db_int(f->store, -1, "SELECT count(*) FROM tr_queue_members", NULL);
    store_unlock(f->store);
    assert_int_equal(rows, 0);
}

/* A data file written before the membership rows existed gets them at start. */
static void test_membership_filled_at_start(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t[40];
    queue(f, "Q", "skills HAS 'x'", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{\"skills\":[\"x\"]}", f->offline, w);
    close_engine(f);
    errmsg_t em = {{0}};
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    assert_int_equal(store_schema(f->store,
                                  "DELETE FROM tr_queue_members;"
                                  " DELETE FROM meta WHERE key = 'tr_queue_members';",
                                  &em),
                     TASSA_OK);
    store_close(f->store);
    open_engine(f, true);
    set_activity(f, w, f->available);
    task(f, "{}", "0", t);
    assert_string_equal(task_field(f, t, "assignment_status"), "reserved");
    assert_string_equal(res_field(f, t, 0, "worker_sid"), w);
}

/* The row counts behind the workspace limits follow creates and deletes, are filled for an
 * older data file at start, and a full workspace refuses the next task and worker. */
static int64_t count_of(fx_t *f, const char *name)
{
    store_lock(f->store);
    int64_t n = db_int(f->store, -1, "SELECT n FROM tr_counts WHERE name = ?", "s", name);
    store_unlock(f->store);
    return n;
}

static void test_counts_and_limits(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w1[40], w2[40], t1[40], t2[40], t3[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W1", "{}", f->offline, w1);
    worker(f, "W2", "{}", f->offline, w2);
    task(f, "{}", "0", t1);
    task(f, "{}", "0", t2);
    task(f, "{}", "0", t3);
    errmsg_t em = {{0}};
    assert_int_equal(tr_worker_delete(f->e, w2, &em), TASSA_OK);
    assert_int_equal(tr_task_delete(f->e, t2, &em), TASSA_OK);
    assert_int_equal(count_of(f, "workers"), 1);
    assert_int_equal(count_of(f, "tasks"), 2);
    close_engine(f);
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    assert_int_equal(store_schema(f->store, "DELETE FROM tr_counts;", &em), TASSA_OK);
    store_close(f->store);
    open_engine(f, true);
    assert_int_equal(count_of(f, "workers"), 1);
    assert_int_equal(count_of(f, "tasks"), 2);
    char full[128];
    snprintf(full, sizeof full, "UPDATE tr_counts SET n = %d WHERE name = 'tasks';", TR_MAX_TASKS);
    assert_int_equal(store_schema(f->store, full, &em), TASSA_OK);
    params_t *p = P("Attributes", "{}", NULL);
    json_t *out = NULL;
    assert_int_equal(tr_task_create(f->e, p, "", &out, &em), TASSA_ELIMIT);
    params_free(p);
    snprintf(full, sizeof full, "UPDATE tr_counts SET n = %d WHERE name = 'workers';",
             TR_MAX_WORKERS);
    assert_int_equal(store_schema(f->store, full, &em), TASSA_OK);
    p = P("FriendlyName", "W3", NULL);
    assert_int_equal(tr_worker_create(f->e, p, "", &out, &em), TASSA_ELIMIT);
    params_free(p);
}

/* One text line of a SQL answer (rows joined by ';'), for comparing two views of the data. */
static void sql_text(fx_t *f, const char *sql, char *out, size_t n)
{
    store_lock(f->store);
    store_stmt_t *st = db_query(f->store, sql, NULL);
    assert_non_null(st);
    out[0] = '\0';
    while (store_step(st) == STORE_ROW) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s;", store_col_text(st, 0));
    }
    store_release(f->store, st);
    store_unlock(f->store);
}

/* The queue counts (tr_queue_counts) equal a count of the open tasks. */
/* A tr_census_fn appending "status=n;" of the tasks to the buffer ctx (4096 bytes). */
static void census_tasks(void *ctx, const char *kind, const char *label, long long n)
{
    char *out = ctx;
    size_t len = strlen(out);
    if (!strcmp(kind, "task"))
        snprintf(out + len, 4096 - len, "%s=%lld;", label, n);
}

static void check_queue_counts(fx_t *f)
{
    char want[4096], got[4096];
    sql_text(f,
             "SELECT queue_sid || '/' || status || '/' || priority || '=' || count(*) FROM tr_tasks"
             " WHERE queue_sid IS NOT NULL AND status IN ('pending', 'reserved', 'assigned',"
             " 'wrapping') GROUP BY queue_sid, status, priority ORDER BY 1",
             want, sizeof want);
    sql_text(f,
             "SELECT queue_sid || '/' || status || '/' || priority || '=' || n FROM tr_queue_counts"
             " WHERE n > 0 ORDER BY 1",
             got, sizeof got);
    assert_string_equal(got, want);
    /* the workspace's RealTimeStatistics, read from those counts, equal plain counts too */
    json_t *ws = NULL;
    assert_int_equal(tr_workspace_realtime(f->e, "", &ws, NULL), TASSA_OK);
    char *by_status = json_dumps(json_object_get(ws, "tasks_by_status"), JSON_SORT_KEYS);
    char *by_prio = json_dumps(json_object_get(ws, "tasks_by_priority"), JSON_SORT_KEYS);
    sql_text(f,
             "SELECT '{\"assigned\": ' || sum(status = 'assigned') || ', \"pending\": ' ||"
             " sum(status = 'pending') || ', \"reserved\": ' || sum(status = 'reserved') ||"
             " ', \"wrapping\": ' || sum(status = 'wrapping') || '}' FROM tr_tasks",
             want, sizeof want);
    snprintf(got, sizeof got, "%s;", by_status);
    assert_string_equal(got, want);
    sql_text(f,
             "SELECT '{' || coalesce(group_concat('\"' || priority || '\": ' || n, ', '), '') ||"
             " '}' FROM (SELECT priority, count(*) n FROM tr_tasks WHERE status IN ('pending',"
             " 'reserved', 'assigned', 'wrapping') GROUP BY priority ORDER BY CAST(priority AS"
             " TEXT))",
             want, sizeof want);
    snprintf(got, sizeof got, "%s;", by_prio);
    assert_string_equal(got, want);
    sql_text(f,
             "SELECT coalesce((SELECT sid FROM tr_tasks WHERE status = 'pending' ORDER BY"
             " date_created, seq LIMIT 1), 'none')",
             want, sizeof want);
    const char *oldest = json_string_value(json_object_get(ws, "longest_task_waiting_sid"));
    snprintf(got, sizeof got, "%s;", oldest ? oldest : "none");
    assert_string_equal(got, want);
    free(by_status);
    free(by_prio);
    json_decref(ws);
    /* and so does the census of /metrics */
    sql_text(f, "SELECT status || '=' || count(*) FROM tr_tasks GROUP BY status ORDER BY status",
             want, sizeof want);
    got[0] = '\0';
    assert_int_equal(tr_stats_census(f->e, census_tasks, got), TASSA_OK);
    assert_string_equal(got, want);
}

/* A queue's counts stay equal to its open tasks through reserve, accept, wrap-up, complete,
 * reject, a priority change, cancel and delete, and are filled again for an older file;
 * positions and RealTimeStatistics read them. */
static void test_queue_counts_follow_tasks(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t1[40], t2[40], t3[40], t4[40];
    long pos, size;
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->offline, w);
    task(f, "{}", "1", t1);
    task(f, "{}", "5", t2);
    task(f, "{}", "5", t3);
    check_queue_counts(f);
    assert_int_equal(tr_task_position(f->e, t3, &pos, &size), TASSA_OK);
    assert_int_equal(pos, 2);
    assert_int_equal(size, 3);
    assert_int_equal(tr_task_position(f->e, t1, &pos, &size), TASSA_OK);
    assert_int_equal(pos, 3);
    set_activity(f, w, f->available); /* t2 reserved */
    assert_string_equal(task_field(f, t2, "assignment_status"), "reserved");
    check_queue_counts(f);
    res_update(f, t2, res_field(f, t2, 0, "sid"), P("ReservationStatus", "accepted", NULL));
    check_queue_counts(f);
    task_update(f, t2, P("AssignmentStatus", "wrapping", NULL));
    check_queue_counts(f);
    task_update(f, t2, P("AssignmentStatus", "completed", NULL));
    check_queue_counts(f); /* t3 reserved for W now */
    assert_string_equal(task_field(f, t3, "assignment_status"), "reserved");
    res_update(f, t3, res_field(f, t3, 0, "sid"), P("ReservationStatus", "rejected", NULL));
    check_queue_counts(f); /* t3 back to pending; t1 reserved for W */
    task_update(f, t3, P("Priority", "9", NULL));
    check_queue_counts(f);
    task(f, "{}", "9", t4);
    assert_int_equal(tr_task_position(f->e, t4, &pos, &size), TASSA_OK);
    assert_int_equal(pos, 2); /* behind t3, same priority, older */
    task_update(f, t1, P("AssignmentStatus", "canceled", NULL));
    check_queue_counts(f);
    errmsg_t em = {{0}};
    assert_int_equal(tr_task_delete(f->e, t3, &em), TASSA_OK);
    check_queue_counts(f);
    json_t *rt, *cum;
    assert_int_equal(tr_queue_stats_json(f->e, q, 15, "", &rt, &cum), TASSA_OK);
    json_int_t open = json_integer_value(json_object_get(rt, "total_tasks"));
    json_decref(rt);
    json_decref(cum);
    close_engine(f);
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    assert_int_equal(store_schema(f->store,
                                  "DELETE FROM tr_queue_counts;"
                                  " DELETE FROM meta WHERE key = 'tr_queue_counts';",
                                  &em),
                     TASSA_OK);
    store_close(f->store);
    open_engine(f, true);
    check_queue_counts(f);
    assert_int_equal(tr_queue_stats_json(f->e, q, 15, "", &rt, &cum), TASSA_OK);
    assert_int_equal(json_integer_value(json_object_get(rt, "total_tasks")), open);
    assert_true(open > 0);
    json_decref(rt);
    json_decref(cum);
}

/* Every waiting task's place (tr_task_position, from the rank buckets) equals a plain count
 * of the waiting tasks ahead of it in the queue's order, and the buckets equal a count of the
 * waiting tasks by entry time. */
static void check_ranks(fx_t *f)
{
    char want[8192], got[8192], sids[8192];
    for (int level = 1; level <= 2; level++) {
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "SELECT queue_sid || '/' || priority || '/' || (queue_entered_ms >> %d) || '='"
                 " || count(*) FROM tr_tasks WHERE queue_sid IS NOT NULL AND status IN"
                 " ('pending', 'reserved') GROUP BY queue_sid, priority, queue_entered_ms >> %d"
                 " ORDER BY 1",
                 level == 1 ? 10 : 20, level == 1 ? 10 : 20);
        sql_text(f, sql, want, sizeof want);
        snprintf(sql, sizeof sql,
                 "SELECT queue_sid || '/' || priority || '/' || bucket || '=' || n FROM"
                 " tr_rank_buckets WHERE level = %d AND n > 0 ORDER BY 1",
                 level);
        sql_text(f, sql, got, sizeof got);
        assert_string_equal(got, want);
    }
    sql_text(f,
             "SELECT sid FROM tr_tasks WHERE queue_sid IS NOT NULL AND status IN ('pending',"
             " 'reserved') ORDER BY seq",
             sids, sizeof sids);
    for (char *sid = strtok(sids, ";"); sid; sid = strtok(NULL, ";")) {
        long pos = 0, size = 0;
        assert_int_equal(tr_task_position(f->e, sid, &pos, &size), TASSA_OK);
        store_lock(f->store);
        int64_t ahead = db_int(
            f->store, -1,
            "SELECT count(*) FROM tr_tasks o, tr_tasks t JOIN tr_queues q ON q.sid = t.queue_sid"
            " WHERE t.sid = ? AND o.queue_sid = t.queue_sid AND o.status IN ('pending',"
            " 'reserved') AND o.sid <> t.sid AND (o.priority > t.priority OR (o.priority ="
            " t.priority AND (CASE WHEN q.task_order = 'LIFO' THEN o.queue_entered_ms >"
            " t.queue_entered_ms ELSE o.queue_entered_ms < t.queue_entered_ms END OR"
            " (o.queue_entered_ms = t.queue_entered_ms AND o.seq < t.seq))))",
            "s", sid);
        int64_t n = db_int(f->store, -1,
                           "SELECT count(*) FROM tr_tasks o, tr_tasks t WHERE t.sid = ? AND"
                           " o.queue_sid = t.queue_sid AND o.status IN ('pending', 'reserved')",
                           "s", sid);
        store_unlock(f->store);
        if (pos != ahead + 1 || size != n)
            fail_msg("task %s: position %ld size %ld, counted %lld and %lld", sid, pos, size,
                     (long long)ahead + 1, (long long)n);
    }
}

/* A task's rank among its equals (rank buckets, counts.c) follows ties in one bucket, entries
 * across second and 17-minute boundaries, cancellations in the middle, priority changes,
 * a requeue after a reject, a LIFO queue, a delete, and is filled again for an older file. */
static void test_rank_buckets_follow_tasks(void **state)
{
    fx_t *f = *state;
    char q[40], lq[40], wf[40], w[40], t[24][40];
    int n = 0;
    queue(f, "Q", "1==1", q);
    create(f->e, tr_queue_create,
           P("FriendlyName", "lifo", "TargetWorkers", "1==0", "TaskOrder", "LIFO", NULL), lq);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->offline, w);
    for (int i = 0; i < 4; i++) /* same bucket, likely the same ms: ties by seq */
        task(f, "{}", "5", t[n++]);
    for (int i = 0; i < 3; i++) {
        create(f->e, tr_task_create, P("TaskQueueSid", lq, "Priority", "5", NULL), t[n++]);
        task(f, "{}", i == 1 ? "7" : "5", t[n++]);
    }
    check_ranks(f);
    tr_engine_advance_clock(f->e, 1500); /* the next level 1 bucket */
    for (int i = 0; i < 3; i++) {
        create(f->e, tr_task_create, P("TaskQueueSid", lq, "Priority", "5", NULL), t[n++]);
        task(f, "{}", "5", t[n++]);
    }
    check_ranks(f);
    tr_engine_advance_clock(f->e, 20 * 60 * 1000); /* the next level 2 bucket */
    for (int i = 0; i < 3; i++) {
        create(f->e, tr_task_create, P("TaskQueueSid", lq, "Priority", "5", NULL), t[n++]);
        task(f, "{}", "5", t[n++]);
    }
    check_ranks(f);
    task_update(f, t[5], P("AssignmentStatus", "canceled", NULL)); /* one in the middle */
    task_update(f, t[11], P("AssignmentStatus", "canceled", NULL));
    check_ranks(f);
    task_update(f, t[1], P("Priority", "9", NULL));
    task_update(f, t[14], P("Priority", "1", NULL));
    check_ranks(f);
    set_activity(f, w, f->available); /* t[1] (priority 9) reserved: still waiting */
    assert_string_equal(task_field(f, t[1], "assignment_status"), "reserved");
    check_ranks(f);
    res_update(f, t[1], res_field(f, t[1], 0, "sid"), P("ReservationStatus", "rejected", NULL));
    check_ranks(f); /* t[1] requeued; the next one reserved */
    errmsg_t em = {{0}};
    assert_int_equal(tr_task_delete(f->e, t[13], &em), TASSA_OK);
    check_ranks(f);
    close_engine(f);
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    assert_int_equal(store_schema(f->store,
                                  "DELETE FROM tr_rank_buckets;"
                                  " DELETE FROM meta WHERE key = 'tr_rank_buckets';",
                                  &em),
                     TASSA_OK);
    store_close(f->store);
    open_engine(f, true);
    check_ranks(f);
}

/* The first limit waiting tasks of tr_waiting_json, as sids "a;b;..." into out. */
static void waiting_sids(fx_t *f, long limit, char *out, size_t n)
{
    json_t *first = NULL, *summary = NULL;
    assert_int_equal(tr_waiting_json(f->e, limit, "", &first, &summary), TASSA_OK);
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(first); i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s;",
                 json_string_value(json_object_get(json_array_get(first, i), "sid")));
    }
    json_decref(first);
    json_decref(summary);
}

/* queue-status's first waiting tasks (read group by group from the index, not by sorting
 * every waiting task) are exactly the first ones of the queue order over all queues: FIFO
 * and LIFO queues, several priorities, reserved tasks, ties in one ms, fewer and more tasks
 * than the limit, a cancellation and a priority change. */
static void test_first_waiting_in_queue_order(void **state)
{
    fx_t *f = *state;
    char q[40], lq[40], wf[40], w[40], t[40], want[8192], got[8192];
    queue(f, "Q", "1==1", q);
    create(f->e, tr_queue_create,
           P("FriendlyName", "lifo", "TargetWorkers", "1==0", "TaskOrder", "LIFO", NULL), lq);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->offline, w);
    static const char *const prio[] = {"0", "3", "3", "7", "0", "3", "1", "3"};
    char sids[24][40];
    int n = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof prio / sizeof prio[0]; i++) {
            if (i % 2)
                create(f->e, tr_task_create, P("TaskQueueSid", lq, "Priority", prio[i], NULL), t);
            else
                task(f, "{}", prio[i], t);
            if (n < 24)
                snprintf(sids[n++], sizeof sids[0], "%s", t);
            if (i % 3 == 0)
                tr_engine_advance_clock(f->e, 7);
        }
        if (round == 1)
            set_activity(f, w, f->available); /* the first task of Q reserved */
    }
    task_update(f, sids[9], P("AssignmentStatus", "canceled", NULL));
    task_update(f, sids[4], P("Priority", "7", NULL));
    static const long limits[] = {1, 2, 3, 5, 8, 13, 50};
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "SELECT t.sid FROM tr_tasks t LEFT JOIN tr_queues q ON q.sid = t.queue_sid"
                 " WHERE t.status IN ('pending', 'reserved') ORDER BY t.priority DESC,"
                 " CASE WHEN q.task_order = 'LIFO' THEN -t.queue_entered_ms ELSE"
                 " t.queue_entered_ms END, t.seq LIMIT %ld",
                 limits[k]);
        sql_text(f, sql, want, sizeof want);
        waiting_sids(f, limits[k], got, sizeof got);
        assert_string_equal(got, want);
    }
}

/* The SIDs of array's items, space-separated, into out. */
static void sids_of(const json_t *array, char *out, size_t n)
{
    size_t i, len = 0;
    json_t *w;
    out[0] = '\0';
    json_array_foreach(array, i, w)
    {
        len += (size_t)snprintf(out + len, n - len, "%s%s", len ? " " : "",
                                json_string_value(json_object_get(w, "sid")));
        assert_true(len < n);
    }
}

/* The workers whose activity is one of the teller names, by the whole list (the slow path's
 * oracle): the first limit of them into out, their number returned. */
static long tellers_by_list(fx_t *f, const char *const *names, size_t n, long limit, char *out,
                            size_t size)
{
    json_t *all = NULL, *some = json_array(), *w;
    size_t i;
    long total = 0;
    assert_int_equal(tr_workers_json(f->e, "", &all), TASSA_OK);
    json_array_foreach(all, i, w)
    {
        const char *a = json_string_value(json_object_get(w, "activity_name"));
        for (size_t k = 0; a && k < n; k++)
            if (!strcasecmp(a, names[k])) {
                if (total++ < limit)
                    json_array_append(some, w);
                break;
            }
    }
    sids_of(some, out, size);
    json_decref(all);
    json_decref(some);
    return total;
}

static void test_workers_in_activities(void **state)
{
    fx_t *f = *state;
    static const char *const tellers[] = {"available", "in-call", "post-call"};
    char post[40], upper[40], w[8][40], got[4096], want[4096];
    create(f->e, tr_activity_create, P("FriendlyName", "Post-Call", "Available", "false", NULL),
           post);
    create(f->e, tr_activity_create, P("FriendlyName", "IN-CALL", "Available", "false", NULL),
           upper);
    const char *acts[8] = {f->offline, f->available, f->in_call,   f->unavailable,
                           post,       upper,        f->available, f->offline};
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        worker(f, name, "{}", acts[i], w[i]);
    }
    for (int i = 0; i < 40; i++) { /* workers that are not tellers */
        char name[16], sid[40];
        snprintf(name, sizeof name, "off%d", i);
        worker(f, name, "{}", i % 2 ? f->offline : f->unavailable, sid);
    }
    static const long limits[] = {0, 1, 2, 5, 50};
    for (int round = 0; round < 2; round++) {
        for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
            json_t *some = NULL;
            long total = -1;
            assert_int_equal(
                tr_workers_in_activities_json(f->e, tellers, 3, limits[k], "", &some, &total),
                TASSA_OK);
            sids_of(some, got, sizeof got);
            long want_total = tellers_by_list(f, tellers, 3, limits[k], want, sizeof want);
            assert_string_equal(got, want);
            assert_int_equal(total, want_total);
            assert_int_equal(total, round ? 6 : 5); /* case-insensitive: IN-CALL, Post-Call */
            if (limits[k])                          /* w1 first, then w0 too: both Available */
                assert_string_equal(
                    json_string_value(json_object_get(json_array_get(some, 0), "activity_name")),
                    "Available");
            json_decref(some);
        }
        set_activity(f, w[0], f->available); /* the oldest worker becomes a teller */
        set_activity(f, w[2], f->offline);   /* and one stops being one */
        set_activity(f, w[7], upper);
    }
    snprintf(want, sizeof want, "%s %s %s %s %s %s", w[0], w[1], w[4], w[5], w[6], w[7]);
    json_t *some = NULL;
    long total = -1;
    assert_int_equal(tr_workers_in_activities_json(f->e, tellers, 3, 50, "", &some, &total),
                     TASSA_OK);
    sids_of(some, got, sizeof got);
    assert_string_equal(got, want); /* creation order */
    json_decref(some);
    static const char *const none[] = {"nobody"};
    assert_int_equal(tr_workers_in_activities_json(f->e, none, 1, 50, "", &some, &total), TASSA_OK);
    assert_int_equal(json_array_size(some), 0);
    assert_int_equal(total, 0);
    json_decref(some);
}

/* One integer from sql (no parameters), the store lock taken and given back around it, so
 * that a failing assertion on it never leaves the lock held. */
static int64_t sql_int(fx_t *f, const char *sql)
{
    store_lock(f->store);
    int64_t n = db_int(f->store, -1, sql, NULL);
    store_unlock(f->store);
    return n;
}

/* Every recorded event through the Events list (StartDate long ago, one page), as text. */
static char *events_text(fx_t *f)
{
    json_t *items = NULL;
    bool more = true;
    params_t *p = P("StartDate", "2000-01-01", NULL);
    assert_int_equal(tr_event_list(f->e, p, 0, 1000, "http://h", &items, &more, NULL), TASSA_OK);
    params_free(p);
    assert_false(more);
    char *text = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    return text;
}

/* The number of recorded events: a row's own and its members, one line each (record.h's
 * groups). */
#define EVENTS_SQL                                                                                 \
    "SELECT count(*) + coalesce(sum(length(members) - length(replace(members, char(10), ''))),"    \
    " 0) FROM tr_events"

/* A task's life with many kinds of events: reserve, reject, accept, wrap-up, complete; an
 * attributes and a priority change; a cancel with a reason; a worker's activity changes.
 * Waits until the dispatcher delivered every event to the sink; returns their number. */
static size_t event_scenario(fx_t *f)
{
    char q[40], wf[40], w1[40], w2[40], t1[40], t2[40], t3[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W1", "{\"skills\":[\"a\"]}", f->offline, w1);
    worker(f, "W2", "{}", f->offline, w2);
    task(f, "{\"topic\":\"t1\"}", "3", t1);
    task(f, "{\"topic\":\"t2\"}", "1", t2);
    task(f, "{\"topic\":\"t3\"}", "0", t3);
    task_update(f, t2, P("Attributes", "{\"topic\":\"t2\",\"more\":true}", NULL));
    task_update(f, t3, P("Priority", "7", NULL));
    set_activity(f, w1, f->available); /* t3 reserved */
    res_update(f, t3, res_field(f, t3, 0, "sid"), P("ReservationStatus", "rejected", NULL));
    set_activity(f, w2, f->available);
    char *res = res_field(f, t3, 1, "sid");
    res_update(f, t3, res, P("ReservationStatus", "accepted", NULL));
    task_update(f, t3, P("AssignmentStatus", "wrapping", NULL));
    task_update(f, t3, P("AssignmentStatus", "completed", "Reason", "done", NULL));
    task_update(f, t2, P("AssignmentStatus", "canceled", "Reason", "hung up", NULL));
    store_lock(f->store);
    int64_t n = db_int(f->store, -1, EVENTS_SQL, NULL);
    store_unlock(f->store);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&f->sink.mu);
        size_t got = json_array_size(f->sink.events);
        pthread_mutex_unlock(&f->sink.mu);
        if ((int64_t)got >= n)
            break;
        usleep(10000);
    }
    pthread_mutex_lock(&f->sink.mu);
    size_t got = json_array_size(f->sink.events);
    pthread_mutex_unlock(&f->sink.mu);
    assert_int_equal((int64_t)got, n);
    return got;
}

/* A task's events store its parameter set once (tr_event_bases) and each only what differs;
 * every one round-trips (none fell back to its whole set), the sink gets each event's whole
 * set, and the Events list shows the same fields. */
static void test_event_params_stored_once(void **state)
{
    fx_t *f = *state;
    size_t n = event_scenario(f);
    assert_true(n > 20);
    store_lock(f->store);
    int64_t whole = db_int(f->store, -1,
                           "SELECT count(*) FROM tr_events WHERE task_sid IS NOT NULL AND"
                           " base_id IS NULL",
                           NULL);
    /* against a base (base_id > 0) or, a new task's first row, its own set (0) */
    int64_t based = db_int(f->store, -1, "SELECT count(*) FROM tr_events WHERE base_id >= 0", NULL);
    int64_t bases = db_int(f->store, -1, "SELECT count(*) FROM tr_event_bases", NULL);
    /* the parameter text stored per task event: the rows' params (deltas, and a new task's
     * first row its own set) and members' lines, and the sets in tr_event_bases */
    int64_t delta = db_int(
        f->store, -1,
        "SELECT CAST((sum(length(params)) + coalesce(sum(length(members)), 0) +"
        " (SELECT coalesce(sum(length(params)), 0) FROM tr_event_bases)) / (count(*) +"
        " coalesce(sum(length(members) - length(replace(members, char(10), ''))), 0)) AS INTEGER)"
        " FROM tr_events WHERE task_sid IS NOT NULL",
        NULL);
    store_unlock(f->store);
    assert_int_equal(whole, 0);
    assert_true(based > 15);
    assert_int_equal(bases, 3);
    int64_t whole_sum = 0; /* what the task events' whole sets would take */
    size_t task_events = 0;
    pthread_mutex_lock(&f->sink.mu);
    for (size_t i = 0; i < n; i++) {
        json_t *sent = json_array_get(f->sink.events, i);
        char *text = json_object_get(sent, "TaskSid") ? json_dumps(sent, JSON_COMPACT) : NULL;
        whole_sum += text ? (int64_t)strlen(text) : 0;
        task_events += text != NULL;
        free(text);
    }
    pthread_mutex_unlock(&f->sink.mu);
    assert_true(task_events > 15);
    assert_true(delta * 2 < whole_sum / (int64_t)task_events); /* under half the whole sets */
    /* each delivered event equals its entry of the Events list, field by field */
    json_t *items = NULL;
    bool more;
    params_t *p = P("StartDate", "2000-01-01", NULL);
    assert_int_equal(tr_event_list(f->e, p, 0, 1000, "", &items, &more, NULL), TASSA_OK);
    params_free(p);
    assert_int_equal(json_array_size(items), n);
    pthread_mutex_lock(&f->sink.mu);
    for (size_t i = 0; i < n; i++) {
        json_t *sent = json_array_get(f->sink.events, i);
        json_t *listed = json_array_get(items, n - 1 - i); /* newest first */
        assert_string_equal(json_string_value(json_object_get(listed, "sid")),
                            json_string_value(json_object_get(sent, "Sid")));
        assert_string_equal(json_string_value(json_object_get(listed, "description")),
                            json_string_value(json_object_get(sent, "EventDescription")));
        json_t *data = json_object_get(listed, "event_data");
        assert_int_equal(json_object_size(data), json_object_size(sent));
        json_t *v = json_object_get(data, "task_attributes");
        json_t *want = json_object_get(sent, "TaskAttributes");
        if (want)
            assert_string_equal(json_string_value(v), json_string_value(want));
    }
    pthread_mutex_unlock(&f->sink.mu);
    json_decref(items);
}

/* The events not delivered yet: past the delivery cursor (taskrouter step 7). */
#define UNDELIVERED_SQL                                                                            \
    "SELECT count(*) FROM tr_events WHERE seq > (SELECT seq FROM tr_event_cursor)"

/* Takes a data file back to before taskrouter step 7: a mark on each event, 1 when delivered. */
#define UNDO_EVENT_CURSOR                                                                          \
    "ALTER TABLE tr_events ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;"                      \
    "UPDATE tr_events SET dispatched = 1 WHERE seq <= (SELECT seq FROM tr_event_cursor);"          \
    "DROP TABLE tr_event_cursor;"                                                                  \
    "CREATE INDEX tr_events_undispatched ON tr_events (seq) WHERE dispatched = 0;"

/* Takes a data file back to before taskrouter step 9: bases without an end, indexed by time,
 * and the events indexed by base. */
#define UNDO_BASE_ENDED                                                                            \
    "DROP INDEX IF EXISTS tr_event_bases_ended;"                                                   \
    "ALTER TABLE tr_event_bases DROP COLUMN ended_ms;"                                             \
    "CREATE INDEX tr_event_bases_first ON tr_event_bases (first_ms);"                              \
    "CREATE INDEX tr_events_base ON tr_events (base_id) WHERE base_id IS NOT NULL;"

/* A new task's four events (workflow.entered, task-queue.entered, task.created,
 * workflow.target-matched) share one row (record.h's groups, taskrouter step 10), which holds
 * the task's parameter set itself (base_id 0, no tr_event_bases row yet), yet read as
 * four: listed newest first with their own SIDs, types and resources, each found by its SID
 * and by the EventType filter, and delivered in order. A SID past the row's members is 404. */
static void test_creation_events_share_one_row(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], t[40];
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    task(f, "{\"topic\":\"g\"}", "0", t);
    char where[128];
    snprintf(where, sizeof where, "SELECT count(*) FROM tr_events WHERE task_sid = '%s'", t);
    assert_int_equal(sql_int(f, where), 1);
    /* the row holds the task's parameter set itself: no tr_event_bases row yet */
    snprintf(where, sizeof where, "SELECT count(*) FROM tr_event_bases WHERE task_sid = '%s'", t);
    assert_int_equal(sql_int(f, where), 0);
    static const char *const order[] = {"workflow.target-matched", "task.created",
                                        "task-queue.entered", "workflow.entered"};
    static const char *const resource[] = {"Workflow", "Task", "TaskQueue", "Workflow"};
    const char *rsid[] = {wf, t, q, wf};
    json_t *items = NULL;
    bool more = true;
    params_t *p = P("TaskSid", t, NULL);
    assert_int_equal(tr_event_list(f->e, p, 0, 50, "", &items, &more, NULL), TASSA_OK);
    params_free(p);
    assert_false(more);
    assert_int_equal(json_array_size(items), 4);
    char sids[4][40];
    for (size_t i = 0; i < 4; i++) {
        json_t *ev = json_array_get(items, i), *one = NULL;
        const char *sid = json_string_value(json_object_get(ev, "sid"));
        assert_non_null(sid);
        snprintf(sids[i], sizeof sids[i], "%s", sid);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(sids[j], sid);
        assert_string_equal(json_string_value(json_object_get(ev, "event_type")), order[i]);
        assert_string_equal(json_string_value(json_object_get(ev, "resource_type")), resource[i]);
        assert_string_equal(json_string_value(json_object_get(ev, "resource_sid")), rsid[i]);
        json_t *data = json_object_get(ev, "event_data");
        assert_string_equal(json_string_value(json_object_get(data, "sid")), sid);
        assert_string_equal(json_string_value(json_object_get(data, "task_sid")), t);
        assert_int_equal(tr_event_fetch(f->e, sid, "", &one, NULL), TASSA_OK);
        char *a = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
        char *b = json_dumps(one, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(a, b); /* fetched as listed */
        free(a);
        free(b);
        json_decref(one);
        p = P("EventType", order[i], "TaskSid", t, NULL);
        json_t *typed = NULL;
        assert_int_equal(tr_event_list(f->e, p, 0, 50, "", &typed, &more, NULL), TASSA_OK);
        params_free(p);
        assert_int_equal(json_array_size(typed), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(typed, 0), "sid")),
                            sid);
        json_decref(typed);
    }
    json_decref(items);
    /* the row holds members 1-3: a fourth is no event */
    char past[40];
    snprintf(past, sizeof past, "%s", sids[3]);
    past[strlen(past) - 1] = '4';
    json_t *none = NULL;
    errmsg_t em = {{0}};
    assert_int_equal(tr_event_fetch(f->e, past, "", &none, &em), TASSA_ENOTFOUND);
    assert_null(none);
    /* delivered in order, oldest first */
    for (size_t i = 0; i < 4; i++)
        json_decref(wait_event(f, order[3 - i], "Sid", sids[i], 3000));
    pthread_mutex_lock(&f->sink.mu);
    size_t at = SIZE_MAX;
    for (size_t i = 0; i < json_array_size(f->sink.events); i++) {
        const char *sid =
            json_string_value(json_object_get(json_array_get(f->sink.events, i), "Sid"));
        if (sid && !strcmp(sid, sids[3]))
            at = i;
    }
    assert_true(at + 3 < json_array_size(f->sink.events));
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(f->sink.events, at + i), "Sid")),
            sids[3 - i]);
    pthread_mutex_unlock(&f->sink.mu);
}

/* Takes a data file back to before taskrouter step 10 (after ungroup_events). */
#define UNDO_GROUPS                                                                                \
    "DROP INDEX IF EXISTS tr_events_members_counted;"                                              \
    "ALTER TABLE tr_events DROP COLUMN members;"                                                   \
    "ALTER TABLE tr_events DROP COLUMN counted;"

/* Stores every event in a row of its own with its whole parameter set, as a file from before
 * taskrouter step 10 holds them (rows.h's groups); the delivery cursor keeps its place. The
 * engine is open; UNDO_GROUPS then drops step 10's columns. */
static void ungroup_events(fx_t *f)
{
    tr_event_t *rows = NULL;
    size_t n = 0;
    int64_t seq = 0, cursor_at = 0;
    store_lock(f->store);
    assert_int_equal(rows_all(f->e, &TR_EVENT_RAW_ROW, (void **)&rows, &n,
                              TR_EVENT_SELECT "ORDER BY ev.seq", NULL),
                     TASSA_OK);
    int64_t cursor = db_int(f->store, -1, "SELECT seq FROM tr_event_cursor", NULL);
    assert_int_equal(db_exec(f->store, "DELETE FROM tr_events", NULL), TASSA_OK);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < tr_event_count(&rows[i]); k++) {
            tr_event_t ev = {0};
            assert_true(tr_event_nth(&rows[i], k, &ev) && tr_event_row_merge(&ev));
            assert_int_equal(
                db_exec(f->store,
                        "INSERT INTO tr_events (seq, sid, event_type, resource_type,"
                        " resource_sid, description, date_ms, task_sid, worker_sid,"
                        " reservation_sid, queue_sid, workflow_sid, wait_ms, params) VALUES"
                        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(CAST(? AS INTEGER), -1), ?)",
                        "isssssisssssis", ++seq, ev.sid, ev.event_type, ev.resource_type,
                        ev.resource_sid, ev.description, ev.date_ms, ev.task_sid, ev.worker_sid,
                        ev.reservation_sid, ev.queue_sid, ev.workflow_sid, ev.wait_ms, ev.params),
                TASSA_OK);
            rows_clear(&TR_EVENT_RAW_ROW, &ev);
        }
        if (rows[i].seq <= cursor)
            cursor_at = seq;
    }
    assert_int_equal(db_exec(f->store, "UPDATE tr_event_cursor SET seq = ?", "i", cursor_at),
                     TASSA_OK);
    store_unlock(f->store);
    rows_free(&TR_EVENT_RAW_ROW, rows, n);
}

/* ev_delta and tr_event_merge give back the very text of a parameter set whose keys were deleted,
 * added in the middle and at the end, changed, and reordered. */
static void test_event_delta_round_trip(void **state)
{
    (void)state;
    static const char *const base =
        "{\"EventType\":\"a\",\"Sid\":\"EV1\",\"ResourceType\":\"Task\",\"ResourceSid\":\"WT1\","
        "\"EventDescription\":\"d\",\"Timestamp\":\"1\",\"TimestampMs\":\"1000\",\"TaskSid\":"
        "\"WT1\",\"A\":\"1\",\"B\":\"2\",\"C\":\"3\"}";
    static const char *const evs[] = {
        "{\"EventType\":\"b\",\"Sid\":\"EV2\",\"ResourceType\":\"Task\",\"ResourceSid\":\"WT1\","
        "\"EventDescription\":\"e\",\"Timestamp\":\"2\",\"TimestampMs\":\"2500\",\"TaskSid\":"
        "\"WT1\",\"A\":\"1\",\"B\":\"2\",\"C\":\"3\"}",
        "{\"EventType\":\"b\",\"Sid\":\"EV2\",\"ResourceType\":\"Task\",\"ResourceSid\":\"WT1\","
        "\"EventDescription\":\"e\",\"Timestamp\":\"2\",\"TimestampMs\":\"2500\",\"TaskSid\":"
        "\"WT1\",\"A\":\"9\",\"C\":\"3\",\"D\":\"4\"}",
        "{\"EventType\":\"b\",\"Sid\":\"EV2\",\"ResourceType\":\"Task\",\"ResourceSid\":\"WT1\","
        "\"EventDescription\":\"e\",\"Timestamp\":\"2\",\"TimestampMs\":\"2500\",\"TaskSid\":"
        "\"WT1\",\"A\":\"1\",\"X\":\"new\",\"B\":\"2\",\"C\":\"3\"}",
        "{\"EventType\":\"b\",\"Sid\":\"EV2\",\"ResourceType\":\"Task\",\"ResourceSid\":\"WT1\","
        "\"EventDescription\":\"e\",\"Timestamp\":\"2\",\"TimestampMs\":\"2500\",\"TaskSid\":"
        "\"WT1\",\"C\":\"3\",\"B\":\"2\",\"A\":\"1\"}",
    };
    json_t *b = json_loads(base, 0, NULL);
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        json_t *ev = json_loads(evs[i], 0, NULL);
        json_t *d = ev_delta(b, ev);
        char *dtext = json_dumps(d, JSON_COMPACT);
        tr_event_t r = {.sid = "EV2",
                        .event_type = "b",
                        .resource_type = "Task",
                        .resource_sid = "WT1",
                        .description = "e",
                        .date_ms = 2500};
        char *back = tr_event_merge(base, dtext, &r);
        assert_non_null(back);
        assert_string_equal(back, evs[i]);
        if (i == 0)
            assert_string_equal(dtext, "{}"); /* only columns differ */
        free(back);
        free(dtext);
        json_decref(d);
        json_decref(ev);
    }
    json_decref(b);
}

/* A random event as ev_new and the ev_* builders make one: the common keys in ev_new's order,
 * then a random subset of other keys in a random order with random string values. */
static json_t *random_event(unsigned *seed, int i)
{
    static const char *const keys[] = {"TaskSid",      "TaskAttributes",
                                       "TaskAge",      "TaskPriority",
                                       "TaskQueueSid", "WorkerSid",
                                       "X1",           "X2",
                                       "X3",           "X4"};
    static const char *const values[] = {"", "a", "b", "{\"topic\":\"t\"}", "\u00e9\n\""};
    enum { NK = sizeof keys / sizeof keys[0] };
    char sid[16], ms[24], ts[24];
    snprintf(sid, sizeof sid, "EV%d", i);
    snprintf(ms, sizeof ms, "%d", 1000 + i);
    snprintf(ts, sizeof ts, "%d", (1000 + i) / 1000);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "EventType",
                           i % 2 ? "task.updated" : "task.created", "Sid", sid, "AccountSid",
                           ACCOUNT, "WorkspaceSid", "WS1", "WorkspaceName", "w", "ResourceType",
                           "Task", "ResourceSid", "WT1", "EventDescription", i % 3 ? "d" : "e",
                           "Timestamp", ts, "TimestampMs", ms);
    size_t order[NK];
    for (size_t k = 0; k < NK; k++)
        order[k] = k;
    for (size_t k = NK - 1; k > 0; k--) { /* shuffle */
        size_t j = (size_t)rand_r(seed) % (k + 1), tmp = order[k];
        order[k] = order[j];
        order[j] = tmp;
    }
    for (size_t k = 0; k < NK; k++)
        if (rand_r(seed) % 3)
            json_object_set_new(ev, keys[order[k]], json_string(values[(size_t)rand_r(seed) % 5]));
    return ev;
}

/* ev_delta and tr_event_merge give back the very text of 3000 random events against random
 * bases (the property that lets ev_emit store deltas without checking each one). */
static void test_event_delta_random_round_trips(void **state)
{
    (void)state;
    unsigned seed = 12345;
    for (int i = 0; i < 3000; i++) {
        json_t *b = random_event(&seed, i), *ev = random_event(&seed, i + 1);
        for (size_t c = 0; c < TR_EVENT_COLUMN_N; c++) /* as record.c stores a base */
            if (json_object_get(b, TR_EVENT_COLUMN_KEYS[c]))
                json_object_set_new(b, TR_EVENT_COLUMN_KEYS[c], json_string(""));
        char *btext = json_dumps(b, JSON_COMPACT), *whole = json_dumps(ev, JSON_COMPACT);
        json_t *d = ev_delta(b, ev);
        char *dtext = json_dumps(d, JSON_COMPACT);
        tr_event_t r = {.sid = (char *)json_string_value(json_object_get(ev, "Sid")),
                        .event_type = (char *)json_string_value(json_object_get(ev, "EventType")),
                        .resource_type = "Task",
                        .resource_sid = "WT1",
                        .description =
                            (char *)json_string_value(json_object_get(ev, "EventDescription")),
                        .date_ms = 1001 + i};
        char *back = tr_event_merge(btext, dtext, &r);
        assert_non_null(back);
        if (strcmp(back, whole))
            fail_msg("round trip %d:\n base  %s\n delta %s\n want  %s\n got   %s", i, btext, dtext,
                     whole, back);
        free(back);
        free(dtext);
        free(whole);
        free(btext);
        json_decref(d);
        json_decref(ev);
        json_decref(b);
    }
}

/* A data file of taskrouter schema 3 (events with their whole parameter set, built here by
 * SQL from the delivered events, with that version's indexes) reads the same Events after
 * step 4, and new events of its tasks are stored against a base without changing the old
 * ones. The prune removes the bases with their events. */
static void test_event_params_migration(void **state)
{
    fx_t *f = *state;
    size_t n = event_scenario(f);
    char *before = events_text(f);
    errmsg_t em = {{0}};
    ungroup_events(f);
    close_engine(f);
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    store_lock(f->store);
    pthread_mutex_lock(&f->sink.mu);
    for (size_t i = 0; i < n; i++) {
        json_t *sent = json_array_get(f->sink.events, i);
        char *text = json_dumps(sent, JSON_COMPACT);
        assert_int_equal(
            db_exec(f->store, "UPDATE tr_events SET params = ?, description = ? WHERE sid = ?",
                    "sss", text, json_string_value(json_object_get(sent, "EventDescription")),
                    json_string_value(json_object_get(sent, "Sid"))),
            TASSA_OK);
        free(text);
    }
    pthread_mutex_unlock(&f->sink.mu);
    store_unlock(f->store);
    assert_int_equal(store_schema(f->store,
                                  "DROP INDEX IF EXISTS tr_events_base;"
                                  "ALTER TABLE tr_events DROP COLUMN base_id;"
                                  "DROP TABLE tr_event_bases;"
                                  "CREATE INDEX tr_events_queue ON tr_events (queue_sid, date_ms);"
                                  "CREATE INDEX tr_events_task ON tr_events (task_sid);"
                                  "ALTER TABLE tr_queue_members DROP COLUMN activity_sid;"
                                  "DROP TABLE tr_queue_activity_counts;"
                                  "DROP TABLE tr_event_minutes;" UNDO_EVENT_CURSOR UNDO_GROUPS
                                  "DELETE FROM schema_migrations WHERE module = 'taskrouter' AND"
                                  " version >= 4;",
                                  &em),
                     TASSA_OK);
    store_close(f->store);
    open_engine(f, false);
    char *after = events_text(f);
    assert_string_equal(after, before);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tr_events WHERE base_id > 0"), 0);
    /* a new event of an old task: stored against a new base; the old ones read as before */
    char t[64];
    sql_text(f, "SELECT sid FROM tr_tasks WHERE status IN ('pending', 'reserved') LIMIT 1", t,
             sizeof t);
    assert_non_null(strchr(t, ';'));
    *strchr(t, ';') = '\0';
    task_update(f, t, P("Priority", "2", NULL));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tr_events WHERE base_id > 0"), 1);
    char *later = events_text(f);
    assert_true(strlen(later) > strlen(before));
    assert_non_null(strstr(later, before + 1)); /* the older entries, unchanged, after it */
    free(before);
    free(after);
    free(later);
    close_engine(f); /* the dispatcher delivers the new event: the prune takes delivered ones */
    open_engine(f, true);
    json_decref(wait_event(f, "task.updated", "TaskSid", t, 3000));
    /* The sink has it; the dispatcher records it delivered just after (the prune keeps an
     * undelivered event): poll for that record (at most 3 s). */
    for (int i = 0; i < 3000 && sql_int(f, UNDELIVERED_SQL); i++)
        usleep(1000);
    assert_int_equal(sql_int(f, UNDELIVERED_SQL), 0);
    /* 31 days on every event goes, and with them the bases of the tasks removed; a task still
     * there keeps its base until it is removed too (step 9) */
    int64_t month = store_now_ms() + 31LL * 24 * 3600 * 1000;
    assert_int_equal(tr_engine_prune(f->e, month), TASSA_OK);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tr_events"), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tr_event_bases b WHERE NOT EXISTS"
                                " (SELECT 1 FROM tr_tasks t WHERE t.sid = b.task_sid)"),
                     0);
    assert_true(sql_int(f, "SELECT count(*) FROM tr_event_bases") >= 1);
    errmsg_t dem = {{0}};
    sql_text(f, "SELECT sid FROM tr_tasks", t, sizeof t);
    for (char *sid = t, *end; (end = strchr(sid, ';')); sid = end + 1) {
        *end = '\0';
        assert_int_equal(tr_task_delete(f->e, sid, &dem), TASSA_OK);
    }
    for (int i = 0; i < 3000 && sql_int(f, UNDELIVERED_SQL); i++) /* the task.deleted events */
        usleep(1000);
    assert_int_equal(tr_engine_prune(f->e, month), TASSA_OK);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tr_event_bases"), 0);
}

/* A data file from before taskrouter step 7 (a mark on each event) whose last three events
 * were not delivered yet delivers exactly those three, in order, after the step, and the
 * cursor then stands at the last event. */
static void test_event_cursor_migration(void **state)
{
    fx_t *f = *state;
    size_t n = event_scenario(f);
    for (int i = 0; i < 3000 && sql_int(f, UNDELIVERED_SQL); i++)
        usleep(1000);
    assert_int_equal(sql_int(f, UNDELIVERED_SQL), 0);
    ungroup_events(f);
    close_engine(f);
    errmsg_t em = {{0}};
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    assert_int_equal(store_schema(f->store,
                                  UNDO_EVENT_CURSOR UNDO_BASE_ENDED UNDO_GROUPS
                                  "UPDATE tr_events SET dispatched = 0 WHERE seq > (SELECT"
                                  " max(seq) - 3 FROM tr_events);"
                                  "DELETE FROM schema_migrations WHERE module = 'taskrouter' AND"
                                  " version >= 7;",
                                  &em),
                     TASSA_OK);
    char want[256], got[256] = "";
    sql_text(f, "SELECT sid FROM tr_events WHERE dispatched = 0 ORDER BY seq", want, sizeof want);
    store_close(f->store);
    f->store = NULL;
    pthread_mutex_lock(&f->sink.mu);
    assert_int_equal(json_array_size(f->sink.events), n);
    json_array_clear(f->sink.events);
    pthread_mutex_unlock(&f->sink.mu);
    open_engine(f, true);
    for (int i = 0; i < 3000 && sql_int(f, UNDELIVERED_SQL); i++)
        usleep(1000);
    assert_int_equal(sql_int(f, UNDELIVERED_SQL), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM tr_event_cursor WHERE seq ="
                                " (SELECT max(seq) FROM tr_events)"),
                     1);
    pthread_mutex_lock(&f->sink.mu);
    assert_int_equal(json_array_size(f->sink.events), 3);
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof got - len, "%s;",
                 json_string_value(json_object_get(json_array_get(f->sink.events, i), "Sid")));
    }
    pthread_mutex_unlock(&f->sink.mu);
    assert_string_equal(got, want);
}

/* A queue's members by activity (tr_queue_activity_counts) equal a count of its membership
 * rows by their worker's activity, and each queue's RealTimeStatistics give the same eligible,
 * available and per-activity figures as a count over the members. */
static void check_activity_counts(fx_t *f)
{
    char want[4096], got[4096], qs[512];
    sql_text(f,
             "SELECT m.queue_sid || '/' || w.activity_sid || '=' || count(*) FROM"
             " tr_queue_members m JOIN tr_workers w ON w.sid = m.worker_sid"
             " GROUP BY m.queue_sid, w.activity_sid ORDER BY 1",
             want, sizeof want);
    sql_text(f,
             "SELECT queue_sid || '/' || activity_sid || '=' || n FROM tr_queue_activity_counts"
             " WHERE n > 0 ORDER BY 1",
             got, sizeof got);
    assert_string_equal(got, want);
    sql_text(f, "SELECT sid FROM tr_queues ORDER BY seq", qs, sizeof qs);
    for (char *q = strtok(qs, ";"); q; q = strtok(NULL, ";")) {
        json_t *rt, *cum;
        assert_int_equal(tr_queue_stats_json(f->e, q, 15, "", &rt, &cum), TASSA_OK);
        store_lock(f->store);
        int64_t eligible = db_int(
            f->store, -1, "SELECT count(*) FROM tr_queue_members WHERE queue_sid = ?", "s", q);
        int64_t available = db_int(
            f->store, -1,
            "SELECT count(*) FROM tr_queue_members m JOIN tr_workers w ON w.sid = m.worker_sid"
            " JOIN tr_activities a ON a.sid = w.activity_sid WHERE m.queue_sid = ? AND"
            " a.available = 1 AND NOT EXISTS (SELECT 1 FROM tr_reservations r WHERE"
            " r.worker_sid = w.sid AND r.status IN ('pending', 'accepted'))",
            "s", q);
        int64_t offline = db_int(f->store, -1,
                                 "SELECT count(*) FROM tr_queue_members m JOIN tr_workers w ON"
                                 " w.sid = m.worker_sid WHERE m.queue_sid = ? AND"
                                 " w.activity_sid = ?",
                                 "ss", q, f->offline);
        store_unlock(f->store);
        assert_int_equal(json_integer_value(json_object_get(rt, "total_eligible_workers")),
                         eligible);
        assert_int_equal(json_integer_value(json_object_get(rt, "total_available_workers")),
                         available);
        json_t *acts = json_object_get(rt, "activity_statistics"), *a;
        size_t i;
        json_array_foreach(acts, i, a)
        {
            if (!strcmp(json_string_value(json_object_get(a, "sid")), f->offline))
                assert_int_equal(json_integer_value(json_object_get(a, "workers")), offline);
        }
        json_decref(rt);
        json_decref(cum);
    }
}

/* A queue's members by activity follow worker creation, activity changes (a reservation
 * holding one), attribute changes, a queue's new expression, worker and queue deletion, and
 * are filled by migration step 5 for a file of schema 4. */
static void test_queue_activity_counts(void **state)
{
    fx_t *f = *state;
    char q1[40], q2[40], wf[40], w[4][40], t[40];
    errmsg_t em = {{0}};
    queue(f, "Q1", "1==1", q1);
    queue(f, "Q2", "skills HAS 'x'", q2);
    simple_workflow(f, q1, "120", wf);
    worker(f, "W0", "{}", f->offline, w[0]);
    worker(f, "W1", "{\"skills\":[\"x\"]}", f->available, w[1]);
    worker(f, "W2", "{\"skills\":[\"x\"]}", f->unavailable, w[2]);
    worker(f, "W3", "{}", f->available, w[3]);
    check_activity_counts(f);
    task(f, "{}", "0", t); /* one available worker reserved: no longer free */
    check_activity_counts(f);
    set_activity(f, w[0], f->available);
    set_activity(f, w[2], f->in_call);
    check_activity_counts(f);
    update_worker(f, w[0], P("Attributes", "{\"skills\":[\"x\"]}", NULL));
    update_worker(f, w[1], P("Attributes", "{}", NULL));
    check_activity_counts(f);
    params_t *p = P("TargetWorkers", "skills HAS 'x' OR 1==1", NULL);
    assert_int_equal(tr_queue_update(f->e, q2, p, "", NULL, &em), TASSA_OK);
    params_free(p);
    check_activity_counts(f);
    assert_int_equal(tr_worker_delete(f->e, w[3], &em), TASSA_OK);
    check_activity_counts(f);
    ungroup_events(f);
    close_engine(f);
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    assert_int_equal(
        store_schema(f->store,
                     "ALTER TABLE tr_queue_members DROP COLUMN activity_sid;"
                     "DROP TABLE tr_queue_activity_counts;"
                     "DROP TABLE tr_event_minutes;" UNDO_EVENT_CURSOR UNDO_BASE_ENDED UNDO_GROUPS
                     "DELETE FROM schema_migrations WHERE module = 'taskrouter' AND"
                     " version >= 5;",
                     &em),
        TASSA_OK);
    store_close(f->store);
    open_engine(f, true);
    check_activity_counts(f);
    set_activity(f, w[1], f->offline);
    check_activity_counts(f);
    assert_int_equal(tr_queue_delete(f->e, q2, &em), TASSA_OK);
    check_activity_counts(f);
}

/* A queue's CumulativeStatistics (from tr_event_minutes and the first minute's events) equal
 * the counts and waits of its events in the window, counted one by one, for windows of 1 to
 * 60 minutes. */
static void check_cumulative(fx_t *f, const char *q)
{
    static const long windows[] = {1, 2, 3, 7, 15, 60};
    static const char *const types[][2] = {{"tasks_entered", "task-queue.entered"},
                                           {"tasks_canceled", "task.canceled"},
                                           {"tasks_completed", "task.completed"},
                                           {"reservations_created", "reservation.created"},
                                           {"reservations_accepted", "reservation.accepted"},
                                           {"reservations_rejected", "reservation.rejected"}};
    for (size_t k = 0; k < sizeof windows / sizeof windows[0]; k++) {
        json_t *cum = NULL;
        int64_t now = tr_now_ms(f->e);
        assert_int_equal(tr_queue_cumulative(f->e, q, windows[k], "", &cum, NULL), TASSA_OK);
        int64_t from = now - windows[k] * 60000;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            store_lock(f->store);
            /* a row's own event of the type, or one of its members (record.h's groups) */
            int64_t n = db_int(f->store, -1,
                               "SELECT count(*) FROM tr_events WHERE queue_sid = ? AND"
                               " (event_type = ? OR instr(members, ? || char(9)) > 0) AND"
                               " date_ms >= ?",
                               "sssi", q, types[i][1], types[i][1], from);
            store_unlock(f->store);
            assert_int_equal(json_integer_value(json_object_get(cum, types[i][0])), n);
        }
        static const char *const waits[][2] = {
            {"wait_duration_until_accepted", "reservation.accepted"},
            {"wait_duration_until_canceled", "task.canceled"}};
        for (size_t i = 0; i < 2; i++) {
            store_lock(f->store);
            int64_t sum = db_int(f->store, -1,
                                 "SELECT coalesce(sum(wait_ms), 0) FROM tr_events WHERE"
                                 " queue_sid = ? AND event_type = ? AND date_ms >= ?",
                                 "ssi", q, waits[i][1], from);
            int64_t max = db_int(f->store, -1,
                                 "SELECT coalesce(max(wait_ms), 0) FROM tr_events WHERE"
                                 " queue_sid = ? AND event_type = ? AND date_ms >= ?",
                                 "ssi", q, waits[i][1], from);
            int64_t min = db_int(f->store, -1,
                                 "SELECT coalesce(min(wait_ms), 0) FROM tr_events WHERE"
                                 " queue_sid = ? AND event_type = ? AND date_ms >= ?",
                                 "ssi", q, waits[i][1], from);
            store_unlock(f->store);
            json_t *d = json_object_get(cum, waits[i][0]);
            assert_int_equal(json_integer_value(json_object_get(d, "total")), sum / 1000);
            assert_int_equal(json_integer_value(json_object_get(d, "max")), max / 1000);
            assert_int_equal(json_integer_value(json_object_get(d, "min")), min / 1000);
        }
        json_decref(cum);
    }
}

/* The cumulative counters follow events over several minutes (accepted after waits, a
 * cancel, a reject) and are filled by migration step 6 for a file of schema 5. */
static void test_cumulative_counters(void **state)
{
    fx_t *f = *state;
    char q[40], wf[40], w[40], t[6][40];
    errmsg_t em = {{0}};
    queue(f, "Q", "1==1", q);
    simple_workflow(f, q, "120", wf);
    worker(f, "W", "{}", f->offline, w);
    for (int i = 0; i < 6; i++) {
        task(f, "{}", "0", t[i]);
        tr_engine_advance_clock(f->e, 40 * 1000); /* entries across minute boundaries */
    }
    set_activity(f, w, f->available); /* t0 reserved after a wait of minutes */
    res_update(f, t[0], res_field(f, t[0], 0, "sid"), P("ReservationStatus", "rejected", NULL));
    tr_engine_advance_clock(f->e, 70 * 1000);
    set_activity(f, w, f->available);
    res_update(f, t[1], res_field(f, t[1], 0, "sid"), P("ReservationStatus", "accepted", NULL));
    task_update(f, t[1], P("AssignmentStatus", "completed", NULL));
    task_update(f, t[4], P("AssignmentStatus", "canceled", NULL));
    check_cumulative(f, q);
    tr_engine_advance_clock(f->e, 150 * 1000);
    check_cumulative(f, q);
    ungroup_events(f);
    close_engine(f);
    f->store = store_open(f->path, &em);
    assert_non_null(f->store);
    assert_int_equal(
        store_schema(f->store,
                     "DROP TABLE tr_event_minutes;" UNDO_EVENT_CURSOR UNDO_BASE_ENDED UNDO_GROUPS
                     "DELETE FROM schema_migrations WHERE module = 'taskrouter' AND"
                     " version >= 6;",
                     &em),
        TASSA_OK);
    store_close(f->store);
    open_engine(f, false);
    check_cumulative(f, q);
}

/* The partial index tr_events_counted names exactly the counted types (TR_COUNTED_SQL is its
 * WHERE list, and holds each type of TR_COUNTED), and the partial-minute count of the
 * CumulativeStatistics is answered from it. */
static void test_counted_events_index(void **state)
{
    fx_t *f = *state;
    char sql[2048];
    sql_text(f, "SELECT sql FROM sqlite_master WHERE name = 'tr_events_counted'", sql, sizeof sql);
    assert_non_null(strstr(sql, "WHERE event_type IN " TR_COUNTED_SQL));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM sqlite_master WHERE name ="
                                " 'tr_events_queue_type'"),
                     0);
    size_t quotes = 0;
    for (const char *p = TR_COUNTED_SQL; *p; p++)
        quotes += *p == '\'';
    assert_int_equal(quotes, 2 * TR_COUNTED_N);
    for (size_t i = 0; i < TR_COUNTED_N; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", TR_COUNTED[i].type);
        assert_non_null(strstr(TR_COUNTED_SQL, quoted));
    }
    /* the plan's detail column names the index */
    store_lock(f->store);
    store_stmt_t *st = db_query(f->store,
                                "EXPLAIN QUERY PLAN SELECT count(*) FROM tr_events WHERE"
                                " queue_sid = ? AND event_type = ? AND date_ms >= ? AND"
                                " date_ms < ? AND event_type IN " TR_COUNTED_SQL,
                                "ssii", "WQ1", "task.canceled", (int64_t)0, (int64_t)60000);
    assert_non_null(st);
    char detail[1024] = "";
    while (store_step(st) == STORE_ROW) {
        size_t len = strlen(detail);
        snprintf(detail + len, sizeof detail - len, "%s;", store_col_text(st, 3));
    }
    store_release(f->store, st);
    store_unlock(f->store);
    if (!strstr(detail, "tr_events_counted"))
        fail_msg("the partial minute is not read from tr_events_counted: %s", detail);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_priority_and_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skills_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workflow_config_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reservation_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapup_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workspace_list_and_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifo_order_and_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_follows_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_filled_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_counts_follow_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rank_buckets_follow_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers_in_activities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_waiting_in_queue_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_params_stored_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creation_events_share_one_row, setup, teardown),
        cmocka_unit_test(test_event_delta_round_trip),
        cmocka_unit_test_setup_teardown(test_event_params_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_cursor_migration, setup, teardown),
        cmocka_unit_test(test_event_delta_random_round_trips),
        cmocka_unit_test_setup_teardown(test_counted_events_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_activity_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cumulative_counters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
