/* fake_backend.h - an in-memory back end (the backend.h interface) for the seed's unit tests.
 *
 * Not a mock of the module under test: a small, real implementation of the back-end contract
 * (documents with revisions and If-Match, 409 on a taken name, 412 on a stale revision, 404 on
 * an update of a missing document, tasks filtered by status, workers), whose writes a test can
 * race deterministically: `races` writes of a rival land between a read and the next write, as
 * another tassa instance or a concurrent event would. No threads, no sleeps; a mutex makes it
 * safe for the helpers' own background thread (queueInfo).
 *
 * Header-only (static functions): each test program includes it once. */
#ifndef TASSA_FAKE_BACKEND_H
#define TASSA_FAKE_BACKEND_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

#define FAKE_DOCS   64
#define FAKE_GRANTS 16

typedef struct fake fake_t;

typedef struct {
    char name[400];
    json_t *data; /* NULL: the slot is free (deleted) */
    long revision;
} fake_doc_t;

struct fake {
    backend_t b; /* first: a backend_t * is a fake_t * */
    backend_ops_t ops;
    pthread_mutex_t lock;
    fake_doc_t docs[FAKE_DOCS];
    json_t *tasks;   /* task resources, in creation order (owned) */
    json_t *workers; /* worker resources (owned) */
    /* Races: before each of the next `races` writes, rival(f, name) writes first. */
    int races;
    void (*rival)(fake_t *f, const char *name);
    bool service_missing; /* doc_create answers 404, as for an unknown Sync service */
    tassa_err fail_fetch; /* doc_fetch answers this (once per count below) when set */
    int fail_fetch_times;
    tassa_err fail_workers; /* workers_list answers this when set */
    /* What happened, for the assertions. */
    int fetches, creates, updates, tasks_lists;
    char grants[FAKE_GRANTS][2][400]; /* (document, identity) */
    int ngrants;
};

static __attribute__((unused)) fake_t *fake_of(backend_t *b)
{
    return (fake_t *)b;
}

/* The document slot of name, or NULL. Under f->lock. */
static __attribute__((unused)) fake_doc_t *fake_find(fake_t *f, const char *name)
{
    for (int i = 0; i < FAKE_DOCS; i++) {
        if (f->docs[i].data && strcmp(f->docs[i].name, name) == 0)
            return &f->docs[i];
    }
    return NULL;
}

/* Twilio's document resource for d (new reference). Under f->lock. */
static __attribute__((unused)) json_t *fake_resource(const fake_doc_t *d)
{
    char rev[32];
    snprintf(rev, sizeof rev, "%ld", d->revision);
    return json_pack("{s:s, s:O, s:s}", "unique_name", d->name, "data", d->data, "revision", rev);
}

/* Writes data (borrowed) to name directly, creating it when absent: a rival's write. */
static __attribute__((unused)) void fake_put(fake_t *f, const char *name, const json_t *data)
{
    pthread_mutex_lock(&f->lock);
    fake_doc_t *d = fake_find(f, name);
    for (int i = 0; !d && i < FAKE_DOCS; i++) {
        if (!f->docs[i].data) {
            d = &f->docs[i];
            snprintf(d->name, sizeof d->name, "%s", name);
            d->revision = -1;
        }
    }
    if (d) {
        json_decref(d->data);
        d->data = json_deep_copy(data);
        d->revision++;
    }
    pthread_mutex_unlock(&f->lock);
}

/* Deletes name directly: a rival's delete. */
static __attribute__((unused)) void fake_delete(fake_t *f, const char *name)
{
    pthread_mutex_lock(&f->lock);
    fake_doc_t *d = fake_find(f, name);
    if (d) {
        json_decref(d->data);
        d->data = NULL;
    }
    pthread_mutex_unlock(&f->lock);
}

/* A copy of name's data (new reference), or NULL when it does not exist. *revision, if not
 * NULL, receives its revision (-1 when absent). */
static __attribute__((unused)) json_t *fake_data(fake_t *f, const char *name, long *revision)
{
    pthread_mutex_lock(&f->lock);
    fake_doc_t *d = fake_find(f, name);
    json_t *data = d ? json_deep_copy(d->data) : NULL;
    if (revision)
        *revision = d ? d->revision : -1;
    pthread_mutex_unlock(&f->lock);
    return data;
}

/* Runs the rival before a write when a race is due. Not under f->lock. */
static __attribute__((unused)) void fake_maybe_race(fake_t *f, const char *name)
{
    pthread_mutex_lock(&f->lock);
    bool due = f->races > 0 && f->rival;
    if (due)
        f->races--;
    pthread_mutex_unlock(&f->lock);
    if (due)
        f->rival(f, name);
}

static __attribute__((unused)) tassa_err fake_doc_fetch(backend_t *b, const char *name, json_t **doc, errmsg_t *em)
{
    fake_t *f = fake_of(b);
    tassa_err err = TASSA_OK;
    *doc = NULL;
    pthread_mutex_lock(&f->lock);
    f->fetches++;
    if (f->fail_fetch && f->fail_fetch_times > 0) {
        f->fail_fetch_times--;
        err = err_set(em, f->fail_fetch, "fake: fetch fails");
    } else {
        fake_doc_t *d = fake_find(f, name);
        if (d)
            *doc = fake_resource(d);
        else
            err = err_set(em, TASSA_ENOTFOUND, "fake: no document %s", name);
    }
    pthread_mutex_unlock(&f->lock);
    return err;
}

static __attribute__((unused)) tassa_err fake_doc_create(backend_t *b, const char *name, const json_t *data, json_t **doc,
                                 errmsg_t *em)
{
    fake_t *f = fake_of(b);
    *doc = NULL;
    fake_maybe_race(f, name);
    pthread_mutex_lock(&f->lock);
    f->creates++;
    bool missing = f->service_missing, taken = fake_find(f, name) != NULL;
    pthread_mutex_unlock(&f->lock);
    if (missing)
        return err_set(em, TASSA_ENOTFOUND, "fake: no such service");
    if (taken)
        return err_set(em, TASSA_EDUPNAME, "fake: %s is taken", name);
    fake_put(f, name, data);
    pthread_mutex_lock(&f->lock);
    *doc = fake_resource(fake_find(f, name));
    pthread_mutex_unlock(&f->lock);
    return TASSA_OK;
}

static __attribute__((unused)) tassa_err fake_doc_update(backend_t *b, const char *name, const json_t *data,
                                 const char *if_match, json_t **doc, errmsg_t *em)
{
    fake_t *f = fake_of(b);
    tassa_err err = TASSA_OK;
    *doc = NULL;
    fake_maybe_race(f, name);
    pthread_mutex_lock(&f->lock);
    f->updates++;
    fake_doc_t *d = fake_find(f, name);
    char rev[32];
    if (d)
        snprintf(rev, sizeof rev, "%ld", d->revision);
    if (!d) {
        err = err_set(em, TASSA_ENOTFOUND, "fake: no document %s", name);
    } else if (if_match && strcmp(if_match, rev) != 0) {
        err = err_set(em, TASSA_EREVISION, "fake: revision %s is not %s", if_match, rev);
    } else {
        json_decref(d->data);
        d->data = json_deep_copy(data);
        d->revision++;
        *doc = fake_resource(d);
    }
    pthread_mutex_unlock(&f->lock);
    return err;
}

static __attribute__((unused)) tassa_err fake_doc_grant_read(backend_t *b, const char *name, const char *identity,
                                     errmsg_t *em)
{
    fake_t *f = fake_of(b);
    tassa_err err = TASSA_OK;
    pthread_mutex_lock(&f->lock);
    if (!fake_find(f, name)) {
        err = err_set(em, TASSA_ENOTFOUND, "fake: no document %s", name);
    } else if (f->ngrants < FAKE_GRANTS) {
        snprintf(f->grants[f->ngrants][0], 400, "%s", name);
        snprintf(f->grants[f->ngrants][1], 400, "%s", identity);
        f->ngrants++;
    }
    pthread_mutex_unlock(&f->lock);
    return err;
}

static __attribute__((unused)) tassa_err fake_tasks_list(backend_t *b, const char *const *statuses, size_t n,
                                 json_t **tasks, errmsg_t *em)
{
    fake_t *f = fake_of(b);
    size_t i;
    json_t *t;
    *tasks = json_array();
    pthread_mutex_lock(&f->lock);
    f->tasks_lists++;
    json_array_foreach(f->tasks, i, t)
    {
        const char *s = json_string_value(json_object_get(t, "assignment_status"));
        for (size_t k = 0; s && k < n; k++) {
            if (strcmp(s, statuses[k]) == 0)
                json_array_append(*tasks, t);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return TASSA_OK;
}

static __attribute__((unused)) tassa_err fake_task_fetch(backend_t *b, const char *sid, json_t **task, errmsg_t *em)
{
    fake_t *f = fake_of(b);
    size_t i;
    json_t *t;
    *task = NULL;
    pthread_mutex_lock(&f->lock);
    json_array_foreach(f->tasks, i, t)
    {
        if (!*task && strcmp(json_string_value(json_object_get(t, "sid")), sid) == 0)
            *task = json_deep_copy(t);
    }
    pthread_mutex_unlock(&f->lock);
    return *task ? TASSA_OK : err_set(em, TASSA_ENOTFOUND, "fake: no task %s", sid);
}

static __attribute__((unused)) tassa_err fake_workers_list(backend_t *b, json_t **workers, errmsg_t *em)
{
    fake_t *f = fake_of(b);
    *workers = NULL;
    pthread_mutex_lock(&f->lock);
    tassa_err fail = f->fail_workers;
    if (!fail)
        *workers = json_deep_copy(f->workers);
    pthread_mutex_unlock(&f->lock);
    return fail ? err_set(em, fail, "fake: workers fail") : TASSA_OK;
}

static __attribute__((unused)) tassa_err fake_queues_list(backend_t *b, json_t **queues, errmsg_t *em)
{
    *queues = json_array();
    return TASSA_OK;
}

static __attribute__((unused)) tassa_err fake_queue_stats(backend_t *b, const char *queue_sid, int minutes,
                                  json_t **realtime, json_t **cumulative, errmsg_t *em)
{
    *realtime = json_object();
    *cumulative = json_object();
    return TASSA_OK;
}

static __attribute__((unused)) void fake_destroy(backend_t *b)
{
    fake_t *f = fake_of(b);
    for (int i = 0; i < FAKE_DOCS; i++)
        json_decref(f->docs[i].data);
    json_decref(f->tasks);
    json_decref(f->workers);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* A fake with every required operation and none of the optional ones (doc_apply, the fast
 * paths): the helpers then take the same path as over Twilio's REST API. Aborts on OOM. */
static __attribute__((unused)) fake_t *fake_new(void)
{
    fake_t *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->ops = (backend_ops_t){.name = "fake",
                             .doc_fetch = fake_doc_fetch,
                             .doc_create = fake_doc_create,
                             .doc_update = fake_doc_update,
                             .doc_grant_read = fake_doc_grant_read,
                             .tasks_list = fake_tasks_list,
                             .task_fetch = fake_task_fetch,
                             .workers_list = fake_workers_list,
                             .queues_list = fake_queues_list,
                             .queue_stats = fake_queue_stats,
                             .destroy = fake_destroy};
    f->b.ops = &f->ops;
    f->tasks = json_array();
    f->workers = json_array();
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

/* Appends a task resource as Twilio renders it; attributes is its JSON text. */
static __attribute__((unused)) void fake_add_task(fake_t *f, const char *sid, const char *status, int priority, int age,
                          const char *queue, const char *attributes)
{
    pthread_mutex_lock(&f->lock);
    json_array_append_new(
        f->tasks, json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:s}", "sid", sid, "assignment_status",
                            status, "priority", priority, "age", age, "task_queue_sid", "WQ1",
                            "task_queue_friendly_name", queue, "attributes", attributes));
    pthread_mutex_unlock(&f->lock);
}

/* Appends a worker resource. */
static __attribute__((unused)) void fake_add_worker(fake_t *f, const char *sid, const char *name, const char *activity)
{
    pthread_mutex_lock(&f->lock);
    json_array_append_new(f->workers, json_pack("{s:s, s:s, s:s}", "sid", sid, "friendly_name",
                                                name, "activity_name", activity));
    pthread_mutex_unlock(&f->lock);
}

#endif
