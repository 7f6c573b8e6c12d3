/* demo_traffic.c - simulated customers and tellers for the demo.
 *
 * Layer: app. */
#include "demo_traffic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/taskrouter/model.h"
#include "base/log.h"
#include "base/sid.h"
#include "base/task_order.h"

#define ARRIVE_EVERY  4  /* ticks between customers */
#define MAX_WAITING   6  /* no new customer while this many wait */
#define ACCEPT_AFTER  4  /* ticks a reservation rings before the teller accepts */
#define SERVE_FOR     20 /* ticks a customer is served */
#define POST_CALL_FOR 4  /* ticks of wrap-up before the teller is available again */
#define TRACKED       128
#define HUMANS        8 /* workers with an identity attribute the simulation leaves alone */

/* The demo's own teller for the teller console: a person signs in as this identity. */
#define CONSOLE_NAME     "Erin"
#define CONSOLE_IDENTITY "erin"

/* When (in ticks) something was first seen in its current state: reservations, tasks,
 * tellers in post-call. */
typedef struct {
    char sid[SID_LEN + 1];
    long since;
    bool seen;
} mark_t;

struct demo_traffic {
    tr_engine_t *engine;
    int tick_ms;
    long tick, customers;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    char available[SID_LEN + 1], in_call[SID_LEN + 1], post_call[SID_LEN + 1];
    mark_t marks[TRACKED];
    char humans[HUMANS][SID_LEN + 1]; /* this step's workers served by a person */
    int nhumans;
};

/* Whether worker is served by a person (a teller console): the simulation leaves it alone. */
static bool is_human(const demo_traffic_t *d, const char *worker)
{
    for (int i = 0; worker && i < d->nhumans; i++)
        if (!strcmp(d->humans[i], worker))
            return true;
    return false;
}

/* A worker resource's attributes, parsed: a new reference, or NULL when they are no JSON. */
static json_t *attrs_of(const json_t *w)
{
    const char *text = json_string_value(json_object_get(w, "attributes"));
    return text ? json_loads(text, 0, NULL) : NULL;
}

/* Whether a worker resource's attributes carry an "identity" (a person signs in as it). */
static bool has_identity(const json_t *w)
{
    json_t *attrs = attrs_of(w);
    bool yes = json_is_string(json_object_get(attrs, "identity"));
    json_decref(attrs);
    return yes;
}

/* Notes which of workers (an array of worker resources) a person serves. */
static void find_humans(demo_traffic_t *d, const json_t *workers)
{
    size_t i;
    const json_t *w;
    d->nhumans = 0;
    json_array_foreach(workers, i, w)
    {
        const char *sid = json_string_value(json_object_get(w, "sid"));
        if (sid && d->nhumans < HUMANS && has_identity(w))
            snprintf(d->humans[d->nhumans++], SID_LEN + 1, "%s", sid);
    }
}

/* Returns how many ticks sid has been in its state, marking it seen this round. */
static long age_of(demo_traffic_t *d, const char *sid)
{
    mark_t *free_slot = NULL;
    for (int i = 0; i < TRACKED; i++) {
        if (!strcmp(d->marks[i].sid, sid)) {
            d->marks[i].seen = true;
            return d->tick - d->marks[i].since;
        }
        if (!d->marks[i].sid[0] && !free_slot)
            free_slot = &d->marks[i];
    }
    if (free_slot) {
        snprintf(free_slot->sid, sizeof free_slot->sid, "%s", sid);
        free_slot->since = d->tick;
        free_slot->seen = true;
    }
    return 0;
}

/* Forgets what was not seen in this round (it changed state or is gone). */
static void sweep(demo_traffic_t *d)
{
    for (int i = 0; i < TRACKED; i++) {
        if (!d->marks[i].seen)
            d->marks[i].sid[0] = '\0';
        d->marks[i].seen = false;
    }
}

/* Parameters from up to two key/value pairs (k2 may be NULL). NULL on OOM. */
static params_t *pairs(const char *k1, const char *v1, const char *k2, const char *v2)
{
    params_t *p = params_new();
    if (p && (params_add(p, k1, strlen(k1), v1, strlen(v1), NULL) ||
              (k2 && params_add(p, k2, strlen(k2), v2, strlen(v2), NULL)))) {
        params_free(p);
        return NULL;
    }
    return p;
}

static void report(const char *step, tassa_err err, const errmsg_t *em)
{
    if (err)
        log_warn("event=demo_step_failed step=%s err=\"%s\"", step, err_text(em, err));
}

/* The SID of the activity named name, into out (empty when missing). */
static void find_activity(tr_engine_t *e, const char *name, char out[SID_LEN + 1])
{
    params_t *f = pairs("FriendlyName", name, NULL, NULL);
    json_t *items = NULL;
    bool more = false;
    out[0] = '\0';
    if (f && tr_activity_list(e, f, 0, 5, "", &items, &more, NULL) == TASSA_OK) {
        const char *sid = json_string_value(json_object_get(json_array_get(items, 0), "sid"));
        if (sid)
            snprintf(out, SID_LEN + 1, "%s", sid);
    }
    json_decref(items);
    params_free(f);
}

/* A new customer: a topic and identity of its own, a type that routes it, a priority. */
static void arrive(demo_traffic_t *d)
{
    static const char *const types[] = {"general", "general", "loan"};
    static const char *const priorities[] = {"0", "0", "5", "10"};
    char attrs[256], name[48];
    long n = ++d->customers;
    snprintf(name, sizeof name, "demo-customer-%ld", n);
    snprintf(attrs, sizeof attrs,
             "{\"topic\":\"%s\",\"identity\":\"%s\",\"type\":\"%s\",\"name\":\"Customer %ld\"}",
             name, name, types[n % 3], n);
    params_t *p = pairs("Attributes", attrs, "Priority", priorities[(n * 7) % 4]);
    errmsg_t em = {{0}};
    tassa_err err = p ? tr_task_create(d->engine, p, "", NULL, &em) : TASSA_ENOMEM;
    report("arrive", err, &em);
    params_free(p);
}

/* The first reservation of task with status, as the engine lists them: a new reference the
 * caller json_decrefs, or NULL when there is none (or on any failure). */
static json_t *first_reservation(demo_traffic_t *d, const char *task, const char *status)
{
    params_t *f = pairs("ReservationStatus", status, NULL, NULL);
    json_t *items = NULL, *first = NULL;
    bool more = false;
    if (f && tr_reservation_list(d->engine, task, NULL, f, 0, 5, "", &items, &more, NULL) == 0)
        first = json_incref(json_array_get(items, 0)); /* NULL stays NULL */
    json_decref(items);
    params_free(f);
    return first;
}

/* Tellers accept reservations that have rung long enough, and go in-call. */
static void accept_ringing(demo_traffic_t *d, json_t *reserved)
{
    size_t i;
    json_t *t;
    json_array_foreach(reserved, i, t)
    {
        const char *task = json_string_value(json_object_get(t, "sid"));
        json_t *r = task ? first_reservation(d, task, "pending") : NULL;
        const char *res = json_string_value(json_object_get(r, "sid"));
        if (is_human(d, json_string_value(json_object_get(r, "worker_sid"))))
            res = NULL; /* the person accepts or rejects it in the teller console */
        if (res && age_of(d, res) >= ACCEPT_AFTER) {
            params_t *p = pairs("ReservationStatus", "accepted",
                                d->in_call[0] ? "WorkerActivitySid" : NULL, d->in_call);
            errmsg_t em = {{0}};
            tassa_err err = p ? tr_reservation_update(d->engine, task, NULL, res, p, "", NULL, &em)
                              : TASSA_ENOMEM;
            report("accept", err, &em);
            params_free(p);
        }
        json_decref(r);
    }
}

/* Customers served long enough are done; their teller wraps up in post-call. */
static void complete_served(demo_traffic_t *d, json_t *assigned)
{
    size_t i;
    json_t *t;
    json_array_foreach(assigned, i, t)
    {
        const char *task = json_string_value(json_object_get(t, "sid"));
        if (!task || age_of(d, task) < SERVE_FOR)
            continue;
        char worker[SID_LEN + 1] = "";
        json_t *r = first_reservation(d, task, "accepted");
        const char *w = json_string_value(json_object_get(r, "worker_sid"));
        if (w)
            snprintf(worker, sizeof worker, "%s", w);
        json_decref(r);
        if (is_human(d, worker))
            continue; /* the person completes it in the teller console */
        params_t *p = pairs("AssignmentStatus", "completed", "Reason", "served (demo)");
        errmsg_t em = {{0}};
        tassa_err err = p ? tr_task_update(d->engine, task, p, "", NULL, &em) : TASSA_ENOMEM;
        report("complete", err, &em);
        params_free(p);
        if (!err && worker[0] && d->post_call[0]) {
            p = pairs("ActivitySid", d->post_call, NULL, NULL);
            err = p ? tr_worker_update(d->engine, worker, p, "", NULL, &em) : TASSA_ENOMEM;
            report("post-call", err, &em);
            params_free(p);
        }
    }
}

/* Tellers in post-call long enough become available again. */
static void wrap_up(demo_traffic_t *d, json_t *workers)
{
    size_t i;
    json_t *w;
    json_array_foreach(workers, i, w)
    {
        const char *sid = json_string_value(json_object_get(w, "sid"));
        const char *activity = json_string_value(json_object_get(w, "activity_sid"));
        if (!sid || !activity || strcmp(activity, d->post_call) != 0 || is_human(d, sid))
            continue;
        if (age_of(d, sid) < POST_CALL_FOR)
            continue;
        params_t *p = pairs("ActivitySid", d->available, NULL, NULL);
        errmsg_t em = {{0}};
        tassa_err err = p ? tr_worker_update(d->engine, sid, p, "", NULL, &em) : TASSA_ENOMEM;
        report("available", err, &em);
        params_free(p);
    }
}

/* One step of the simulation. */
static void step(demo_traffic_t *d)
{
    static const char *const reserved_s[] = {"reserved"}, *const assigned_s[] = {"assigned"};
    json_t *reserved = NULL, *assigned = NULL, *waiting = NULL, *workers = NULL;
    d->tick++;
    if (tr_workers_json(d->engine, "", &workers))
        workers = NULL;
    find_humans(d, workers);
    tr_tasks_json(d->engine, task_waiting_statuses, TASK_WAITING_N, "", &waiting);
    if (d->tick % ARRIVE_EVERY == 1 && json_array_size(waiting) < MAX_WAITING)
        arrive(d);
    if (!tr_tasks_json(d->engine, reserved_s, 1, "", &reserved))
        accept_ringing(d, reserved);
    if (!tr_tasks_json(d->engine, assigned_s, 1, "", &assigned))
        complete_served(d, assigned);
    if (workers)
        wrap_up(d, workers);
    sweep(d);
    json_decref(reserved);
    json_decref(assigned);
    json_decref(waiting);
    json_decref(workers);
}

static void *run(void *arg)
{
    demo_traffic_t *d = arg;
    find_activity(d->engine, "Available", d->available);
    find_activity(d->engine, "in-call", d->in_call);
    find_activity(d->engine, "post-call", d->post_call);
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        pthread_mutex_unlock(&d->lock);
        step(d);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += d->tick_ms / 1000;
        ts.tv_nsec += (long)(d->tick_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&d->lock);
        if (!d->stopping)
            pthread_cond_timedwait(&d->wake, &d->lock, &ts);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* Adds the console's teller (Offline: nothing is routed to it before a person signs in and
 * goes Available) unless a worker already has its identity. */
static void add_console_teller(tr_engine_t *e)
{
    json_t *workers = NULL;
    if (tr_workers_json(e, "", &workers))
        return;
    size_t i;
    const json_t *w;
    bool found = false;
    json_array_foreach(workers, i, w)
    {
        json_t *attrs = attrs_of(w);
        const char *id = json_string_value(json_object_get(attrs, "identity"));
        found = found || (id && !strcmp(id, CONSOLE_IDENTITY));
        json_decref(attrs);
    }
    json_decref(workers);
    if (found)
        return;
    char offline[SID_LEN + 1];
    find_activity(e, "Offline", offline);
    params_t *p = pairs("FriendlyName", CONSOLE_NAME, "Attributes",
                        "{\"skills\":[\"general\",\"loans\"],\"name\":\"" CONSOLE_NAME
                        "\",\"identity\":\"" CONSOLE_IDENTITY "\"}");
    errmsg_t em = {{0}};
    tassa_err err =
        p && (!offline[0] || !params_add(p, "ActivitySid", 11, offline, strlen(offline), NULL))
            ? tr_worker_create(e, p, "", NULL, &em)
            : TASSA_ENOMEM;
    report("console-teller", err, &em);
    params_free(p);
}

demo_traffic_t *demo_traffic_start(tr_engine_t *e, int tick_ms)
{
    demo_traffic_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->engine = e;
    d->tick_ms = tick_ms > 0 ? tick_ms : 1000;
    add_console_teller(e);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    if (pthread_create(&d->thread, NULL, run, d) != 0) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        free(d);
        return NULL;
    }
    return d;
}

void demo_traffic_stop(demo_traffic_t *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
}
