/* embedded.c - backend.h on the in-process Sync and TaskRouter engines.
 *
 * It returns exactly the JSON the engines' REST API would, so the functions behave the same
 * whether they run here or against Twilio.
 *
 * Layer: backend.
 */
#include "backend/embedded.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine/taskrouter/model.h"
#include "engine/taskrouter/stats.h"

typedef struct {
    const config_t *config;
    sync_engine_t *sync;
    tr_engine_t *tr;
    char base_url[64];
} embedded_t;

static embedded_t *impl(backend_t *b)
{
    return b->impl;
}

static tassa_err doc_result(embedded_t *e, tassa_err err, sync_doc_t *d, json_t **doc, errmsg_t *em)
{
    if (err)
        return err;
    *doc = sync_doc_json(d, e->config->account_sid, e->base_url);
    sync_doc_clear(d);
    return *doc ? TASSA_OK : err_set(em, TASSA_ENOMEM, "out of memory");
}

static tassa_err doc_fetch(backend_t *b, const char *name, json_t **doc, errmsg_t *em)
{
    embedded_t *e = impl(b);
    sync_doc_t d;
    *doc = NULL;
    tassa_err err = sync_doc_fetch(e->sync, e->config->sync_service_sid, name, &d, em);
    return doc_result(e, err, &d, doc, em);
}

static tassa_err doc_write(backend_t *b, const char *name, const json_t *data, const char *if_match,
                           bool create, json_t **doc, errmsg_t *em)
{
    embedded_t *e = impl(b);
    sync_doc_t d;
    *doc = NULL;
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text)
        return err_set(em, TASSA_EINVAL, "document data must be a JSON object");
    tassa_err err = create ? sync_doc_create(e->sync, e->config->sync_service_sid, name, text, 0,
                                             "system", &d, em)
                           : sync_doc_update(e->sync, e->config->sync_service_sid, name, text, -1,
                                             if_match, &d, em);
    free(text);
    return doc_result(e, err, &d, doc, em);
}

static tassa_err doc_create(backend_t *b, const char *name, const json_t *data, json_t **doc,
                            errmsg_t *em)
{
    return doc_write(b, name, data, NULL, true, doc, em);
}

static tassa_err doc_update(backend_t *b, const char *name, const json_t *data,
                            const char *if_match, json_t **doc, errmsg_t *em)
{
    return doc_write(b, name, data, if_match, false, doc, em);
}

static tassa_err doc_apply(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                           bool *changed, char *reason, size_t reason_len, errmsg_t *em)
{
    embedded_t *e = impl(b);
    return sync_doc_apply(e->sync, e->config->sync_service_sid, name, merge, ctx, changed, reason,
                          reason_len, em);
}

/* Carries a backend_done_fn across the Sync engine's completion. */
typedef struct {
    backend_done_fn done;
    void *ctx;
} apply_done_t;

static void apply_settled(void *ctx, tassa_err err, const sync_doc_t *doc, bool changed,
                          const errmsg_t *em)
{
    apply_done_t d = *(apply_done_t *)ctx;
    (void)doc;
    free(ctx);
    d.done(d.ctx, err, changed, em);
}

static void doc_apply_async(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                            char *reason, size_t reason_len, backend_done_fn done, void *done_ctx)
{
    embedded_t *e = impl(b);
    apply_done_t *d = malloc(sizeof *d);
    if (!d) {
        errmsg_t em = {{0}};
        done(done_ctx, err_set(&em, TASSA_ENOMEM, "out of memory"), false, &em);
        return;
    }
    *d = (apply_done_t){done, done_ctx};
    sync_doc_apply_async(e->sync, e->config->sync_service_sid, name, merge, ctx, reason, reason_len,
                         apply_settled, d);
}

/* Why: a write only when the permission is missing, so that replays cost one read. */
static tassa_err doc_grant_read(backend_t *b, const char *name, const char *identity, errmsg_t *em)
{
    embedded_t *e = impl(b);
    sync_perm_t p = {0};
    const char *svc = e->config->sync_service_sid;
    tassa_err err = sync_perm_fetch(e->sync, svc, name, identity, &p, NULL);
    bool has = err == TASSA_OK && p.read;
    sync_perm_clear(&p);
    if (has)
        return TASSA_OK;
    err = sync_perm_set(e->sync, svc, name, identity, true, false, false, &p, em);
    sync_perm_clear(&p);
    return err;
}

/* The engine's reads return no detail; give the caller one. */
static tassa_err tr_result(tassa_err err, const char *what, errmsg_t *em)
{
    if (err == TASSA_OK)
        return TASSA_OK;
    if (err == TASSA_ENOTFOUND)
        return err_set(em, err, "The requested resource %s was not found", what);
    return err_set(em, err, "TaskRouter engine: %s", tassa_strerror(err));
}

static tr_engine_t *engine(backend_t *b, errmsg_t *em)
{
    tr_engine_t *tr = impl(b)->tr;
    if (!tr)
        err_set(em, TASSA_EUNAVAIL, "the embedded TaskRouter engine is not running");
    return tr;
}

static tassa_err tasks_list(backend_t *b, const char *const *statuses, size_t n, json_t **tasks,
                            errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *tasks = NULL;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(tr_tasks_json(tr, statuses, n, impl(b)->base_url, tasks), "Tasks", em);
}

static tassa_err task_fetch(backend_t *b, const char *sid, json_t **task, errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *task = NULL;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(tr_task_json(tr, sid, impl(b)->base_url, task), sid, em);
}

static tassa_err workers_list(backend_t *b, json_t **workers, errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *workers = NULL;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(tr_workers_json(tr, impl(b)->base_url, workers), "Workers", em);
}

static tassa_err queues_list(backend_t *b, json_t **queues, errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *queues = NULL;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(tr_queues_json(tr, impl(b)->base_url, queues), "TaskQueues", em);
}

static tassa_err queue_stats(backend_t *b, const char *queue_sid, int minutes, json_t **realtime,
                             json_t **cumulative, errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *realtime = *cumulative = NULL;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(
        tr_queue_stats_json(tr, queue_sid, minutes, impl(b)->base_url, realtime, cumulative),
        queue_sid, em);
}

static tassa_err waiting_tasks(backend_t *b, long limit, json_t **first, json_t **summary,
                               errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *first = *summary = NULL;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(tr_waiting_json(tr, limit, impl(b)->base_url, first, summary), "Tasks", em);
}

static tassa_err waiting_task_by_topic(backend_t *b, const char *topic, json_t **task, errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *task = NULL;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(tr_waiting_task_by_attr(tr, "topic", topic, impl(b)->base_url, task), topic,
                     em);
}

static tassa_err task_position(backend_t *b, const char *sid, long *position, long *size,
                               errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *position = *size = 0;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(tr_task_position(tr, sid, position, size), sid, em);
}

static tassa_err workers_in_activities(backend_t *b, const char *const *names, size_t n, long limit,
                                       json_t **workers, long *total, errmsg_t *em)
{
    tr_engine_t *tr = engine(b, em);
    *workers = NULL;
    *total = 0;
    if (!tr)
        return TASSA_EUNAVAIL;
    return tr_result(
        tr_workers_in_activities_json(tr, names, n, limit, impl(b)->base_url, workers, total),
        "Workers", em);
}

static void destroy(backend_t *b)
{
    free(b->impl);
    free(b);
}

static const backend_ops_t OPS = {
    .name = "embedded",
    .doc_fetch = doc_fetch,
    .doc_create = doc_create,
    .doc_update = doc_update,
    .doc_apply = doc_apply,
    .doc_apply_async = doc_apply_async,
    .doc_grant_read = doc_grant_read,
    .tasks_list = tasks_list,
    .task_fetch = task_fetch,
    .workers_list = workers_list,
    .queues_list = queues_list,
    .queue_stats = queue_stats,
    .waiting_tasks = waiting_tasks,
    .waiting_task_by_topic = waiting_task_by_topic,
    .task_position = task_position,
    .workers_in_activities = workers_in_activities,
    .destroy = destroy,
};

backend_t *backend_embedded_new(const config_t *config, sync_engine_t *sync, tr_engine_t *tr)
{
    backend_t *b = calloc(1, sizeof *b);
    embedded_t *e = calloc(1, sizeof *e);
    if (!b || !e) {
        free(b);
        free(e);
        return NULL;
    }
    e->config = config;
    e->sync = sync;
    e->tr = tr;
    snprintf(e->base_url, sizeof e->base_url, "http://localhost:%d", config->port);
    b->ops = &OPS;
    b->impl = e;
    return b;
}
