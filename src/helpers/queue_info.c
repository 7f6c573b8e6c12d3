/* queue_info.c - the queue-status document, recomputed by one coalescing thread.
 *
 * Layer: helpers. */
#include "helpers/queue_info.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/task_order.h"
#include "base/timefmt.h"
#include "helpers/update_sync_doc.h"
#include "store/store.h"

/* A Sync document holds 16 KiB; keep a margin for the JSON the back end adds. */
#define QUEUE_STATUS_MAX_BYTES 16000

struct queue_info {
    backend_t *backend;
    const char *readers; /* who may read queue-status (comma list, borrowed) */
    bool readers_granted;
    int max_entries, interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool dirty, stopping;
};

/* The activities of a teller (compared case-insensitively). */
static const char *const TELLER_ACTIVITIES[] = {"available", "in-call", "post-call"};
#define TELLER_ACTIVITIES_N (sizeof TELLER_ACTIVITIES / sizeof TELLER_ACTIVITIES[0])

static bool is_teller_activity(const char *a)
{
    for (size_t i = 0; a && i < TELLER_ACTIVITIES_N; i++)
        if (!strcasecmp(a, TELLER_ACTIVITIES[i]))
            return true;
    return false;
}

/* The `topic` attribute of a task resource, or NULL. */
static json_t *topic_of(const json_t *task)
{
    json_t *topic = backend_task_attr(task, "topic");
    if (topic && !json_is_string(topic)) {
        json_decref(topic);
        topic = NULL;
    }
    return topic;
}

/* Fills the document's lists with at most n entries each; total and tellers_total are the
 * whole counts. */
static json_t *compose(const json_t *first, json_int_t total, json_t *tellers,
                       json_int_t tellers_total, size_t n, json_t *by_queue, const char *now)
{
    json_t *pending = json_array();
    for (size_t i = 0; pending && i < json_array_size(first) && i < n; i++) {
        const json_t *t = json_array_get(first, i);
        json_t *topic = topic_of(t);
        json_array_append_new(
            pending, json_pack("{s:O, s:o, s:O, s:O, s:O, s:O}", "sid", json_object_get(t, "sid"),
                               "topic", topic ? topic : json_null(), "priority",
                               json_object_get(t, "priority"), "age", json_object_get(t, "age"),
                               "queue", json_object_get(t, "task_queue_friendly_name"), "status",
                               json_object_get(t, "assignment_status")));
    }
    json_t *tl = json_array();
    for (size_t i = 0; tl && i < json_array_size(tellers) && i < n; i++)
        json_array_append(tl, json_array_get(tellers, i));
    return json_pack("{s:o, s:o, s:I, s:I, s:O, s:s}", "pendingTasks", pending, "eligibleTellers",
                     tl, "pendingCount", total, "tellerCount", tellers_total, "byQueue", by_queue,
                     "lastUpdated", now);
}

/* The waiting tasks the slow way, from the whole list (a back end without aggregates, such
 * as Twilio's REST API): the same *first and *summary as backend_ops_t.waiting_tasks. */
static tassa_err waiting_from_list(backend_t *b, long limit, json_t **first, json_t **summary,
                                   errmsg_t *em)
{
    json_t *tasks = NULL, *by_queue = json_object();
    task_rank_t *sorted = NULL;
    *first = *summary = NULL;
    tassa_err err = b->ops->tasks_list(b, task_waiting_statuses, TASK_WAITING_N, &tasks, em);
    if (err)
        goto out;
    size_t ntasks = json_array_size(tasks);
    sorted = malloc((ntasks + 1) * sizeof *sorted);
    if (!sorted || !by_queue) {
        err = err_set(em, TASSA_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ntasks; i++) {
        json_t *t = json_array_get(tasks, i);
        sorted[i] = backend_task_rank(t, i);
        const char *qname = json_string_value(json_object_get(t, "task_queue_friendly_name"));
        json_int_t age = json_integer_value(json_object_get(t, "age"));
        json_t *q = json_object_get(by_queue, qname ? qname : "(none)");
        if (!q) {
            q = json_pack("{s:i, s:i}", "pending", 0, "longestWaitSeconds", 0);
            json_object_set_new(by_queue, qname ? qname : "(none)", q);
        }
        json_object_set_new(q, "pending",
                            json_integer(json_integer_value(json_object_get(q, "pending")) + 1));
        if (age > json_integer_value(json_object_get(q, "longestWaitSeconds")))
            json_object_set_new(q, "longestWaitSeconds", json_integer(age));
    }
    qsort(sorted, ntasks, sizeof *sorted, task_rank_cmp);
    *first = json_array();
    for (size_t i = 0; *first && i < ntasks && i < (size_t)limit; i++)
        json_array_append(*first, json_array_get(tasks, sorted[i].idx));
    *summary = json_pack("{s:I, s:O}", "total", (json_int_t)ntasks, "byQueue", by_queue);
    if (!*first || !*summary)
        err = err_set(em, TASSA_ENOMEM, "out of memory");
out:
    if (err) {
        json_decref(*first);
        json_decref(*summary);
        *first = *summary = NULL;
    }
    free(sorted);
    json_decref(tasks);
    json_decref(by_queue);
    return err;
}

/* The tellers as the document lists them ({"sid", "name", "activity"}), the first limit of
 * them in *tellers (a new array), and how many there are in *total: by the back end's
 * workers_in_activities when it has it, else from the whole list of workers. */
static tassa_err tellers_of(backend_t *b, long limit, json_t **tellers, json_int_t *total,
                            errmsg_t *em)
{
    json_t *workers = NULL, *w;
    long n = 0;
    *total = 0;
    tassa_err err = b->ops->workers_in_activities
                        ? b->ops->workers_in_activities(b, TELLER_ACTIVITIES, TELLER_ACTIVITIES_N,
                                                        limit, &workers, &n, em)
                        : b->ops->workers_list(b, &workers, em);
    *tellers = err ? NULL : json_array();
    if (!err && !*tellers)
        err = err_set(em, TASSA_ENOMEM, "out of memory");
    size_t i;
    json_array_foreach(err ? NULL : workers, i, w)
    {
        const char *activity = json_string_value(json_object_get(w, "activity_name"));
        if (!is_teller_activity(activity))
            continue;
        if (!b->ops->workers_in_activities)
            n++;
        if (json_array_size(*tellers) < (size_t)limit)
            json_array_append_new(
                *tellers, json_pack("{s:O, s:O, s:s}", "sid", json_object_get(w, "sid"), "name",
                                    json_object_get(w, "friendly_name"), "activity", activity));
    }
    json_decref(workers);
    *total = n;
    return err;
}

tassa_err queue_info_build(backend_t *b, int max_entries, json_t **doc, errmsg_t *em)
{
    json_t *first = NULL, *summary = NULL, *tellers = NULL;
    json_int_t tellers_total = 0;
    *doc = NULL;
    tassa_err err = b->ops->waiting_tasks
                        ? b->ops->waiting_tasks(b, max_entries, &first, &summary, em)
                        : waiting_from_list(b, max_entries, &first, &summary, em);
    if (!err)
        err = tellers_of(b, max_entries, &tellers, &tellers_total, em);
    if (err)
        goto out;
    char now[TIMEFMT_LEN];
    timefmt_iso_ms(store_now_ms(), now);
    json_int_t total = json_integer_value(json_object_get(summary, "total"));
    json_t *by_queue = json_object_get(summary, "byQueue"); /* borrowed */
    /* Halve the lists until the document fits in a Sync document. */
    for (size_t n = (size_t)max_entries;; n /= 2) {
        json_t *d = compose(first, total, tellers, tellers_total, n, by_queue, now);
        char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
        size_t len = text ? strlen(text) : 0;
        free(text);
        if (!d) {
            err = err_set(em, TASSA_ENOMEM, "out of memory");
            break;
        }
        if (len <= QUEUE_STATUS_MAX_BYTES || n == 0) {
            *doc = d;
            break;
        }
        json_decref(d);
    }
out:
    json_decref(first);
    json_decref(summary);
    json_decref(tellers);
    return err;
}

tassa_err queue_info_refresh(backend_t *b, int max_entries, errmsg_t *em)
{
    json_t *doc = NULL;
    tassa_err err = queue_info_build(b, max_entries, &doc, em);
    if (!err)
        err = update_sync_doc_set(b, "queue-status", doc, em);
    json_decref(doc);
    return err;
}

tassa_err queue_info_grant_readers(backend_t *b, const char *readers, errmsg_t *em)
{
    tassa_err first = TASSA_OK;
    if (!readers || !b->ops->doc_grant_read)
        return TASSA_OK;
    for (const char *p = readers; *p;) {
        size_t len = strcspn(p, ",");
        const char *next = p[len] ? p + len + 1 : p + len;
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            char *name = strndup(p, len);
            tassa_err err = name ? b->ops->doc_grant_read(b, "queue-status", name, em)
                                 : err_set(em, TASSA_ENOMEM, "out of memory");
            if (err && !first)
                first = err;
            free(name);
        }
        p = next;
    }
    return first;
}

static void *run(void *arg)
{
    queue_info_t *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->dirty && !q->stopping)
            pthread_cond_wait(&q->cond, &q->lock);
        if (!q->dirty && q->stopping)
            break;
        q->dirty = false;
        pthread_mutex_unlock(&q->lock);
        errmsg_t em = {{0}};
        int64_t started = store_now_ms();
        tassa_err err = queue_info_refresh(q->backend, q->max_entries, &em);
        if (err)
            log_error("event=queue_status_failed err=\"%s\"", err_text(&em, err));
        if (!err && !q->readers_granted) {
            err = queue_info_grant_readers(q->backend, q->readers, &em);
            if (err)
                log_error("event=queue_status_grant_failed err=\"%s\"", err_text(&em, err));
            q->readers_granted = !err;
        }
        /* Requests that arrive meanwhile coalesce into the next round. A refresh that took
         * long (a big queue) waits four times as long, so it never takes more than a fifth
         * of the time from the writers. */
        int64_t pause_ms = 4 * (store_now_ms() - started);
        if (pause_ms < q->interval_ms)
            pause_ms = q->interval_ms;
        struct timespec pause = {.tv_sec = (time_t)(pause_ms / 1000),
                                 .tv_nsec = (long)(pause_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

queue_info_t *queue_info_start(backend_t *b, int max_entries, int interval_ms, const char *readers)
{
    queue_info_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->backend = b;
    q->readers = readers;
    q->max_entries = max_entries;
    q->interval_ms = interval_ms;
    q->dirty = true; /* a first document at start */
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    if (pthread_create(&q->thread, NULL, run, q) != 0) {
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->cond);
        free(q);
        return NULL;
    }
    return q;
}

void queue_info_request(queue_info_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->dirty = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

void queue_info_stop(queue_info_t *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    free(q);
}
