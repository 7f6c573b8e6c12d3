/* backend.h - the one interface through which the seed's functions and helpers reach
 * TaskRouter and Sync.
 *
 * Two implementations: backend_embedded (the in-process engines, the default) and
 * backend_twilio (Twilio's REST API over libcurl, or any compatible base URL). Values cross
 * this interface in Twilio's own JSON shapes (snake_case resources as the REST API returns
 * them), so both implementations are held to the same wire contract and the functions cannot
 * tell them apart.
 *
 * Thread-safe: any HTTP handler thread may call any operation. Every json_t ** out-parameter
 * receives a new reference that the caller must json_decref; every char ** a malloc'd string.
 * On failure the out-parameters are left NULL.
 *
 * Layer: backend.
 */
#ifndef TASSA_BACKEND_H
#define TASSA_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/task_order.h"

typedef struct backend backend_t;

/* Computes the new data of a document from current (NULL when it does not exist yet;
 * borrowed). Returns a new reference to write, or NULL to leave the document as it is, in
 * which case it may write a short reason into reason (reason_len bytes). The same signature
 * as the Sync engine's merge callback, so the embedded back end passes it straight through. */
typedef json_t *(*backend_merge_fn)(void *ctx, const json_t *current, char *reason,
                                    size_t reason_len);

/* The end of an asynchronous document write (doc_apply_async): err as doc_apply returns it,
 * changed whether it wrote, em the detail (borrowed for the call). */
typedef void (*backend_done_fn)(void *ctx, tassa_err err, bool changed, const errmsg_t *em);

typedef struct {
    const char *name; /* "embedded" or "twilio" */

    /* Sync documents of the configured service, addressed by unique name. */

    /* Fetches a document: *doc is Twilio's document resource (data, revision, ...).
     * TASSA_ENOTFOUND when it does not exist. */
    tassa_err (*doc_fetch)(backend_t *b, const char *name, json_t **doc, errmsg_t *em);
    /* Creates a document with data (a JSON object, borrowed). TASSA_EDUPNAME if taken. */
    tassa_err (*doc_create)(backend_t *b, const char *name, const json_t *data, json_t **doc,
                            errmsg_t *em);
    /* Updates data; if_match (may be NULL) must equal the current revision, else
     * TASSA_EREVISION. */
    tassa_err (*doc_update)(backend_t *b, const char *name, const json_t *data,
                            const char *if_match, json_t **doc, errmsg_t *em);

    /* Optional (NULL when the back end cannot): read-modify-write of a document in one
     * atomic step. merge computes the new data from the current one (NULL when absent) or
     * returns NULL to change nothing (see update_sync_doc.h). *changed tells whether it
     * wrote. update_sync_doc uses it when present, else fetch + If-Match + retry. */
    tassa_err (*doc_apply)(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                           bool *changed, char *reason, size_t reason_len, errmsg_t *em);
    /* Optional (NULL: update_sync_doc_async runs the blocking path): doc_apply without
     * waiting for durability on the calling thread. merge, ctx and reason are used before
     * this returns; done(done_ctx, ...) runs exactly once when the write is durable or has
     * failed, on another thread, where it must be short and must not block. */
    void (*doc_apply_async)(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                            char *reason, size_t reason_len, backend_done_fn done, void *done_ctx);

    /* Optional (NULL: nobody is granted anything). Lets identity read document name
     * (Twilio's Document Permission resource, with read true and write and manage false), so
     * that its sync token may stream the document when the service has ACL on. Idempotent.
     * TASSA_ENOTFOUND when the document does not exist, TASSA_EINVAL for an unusable
     * identity. */
    tassa_err (*doc_grant_read)(backend_t *b, const char *name, const char *identity, errmsg_t *em);

    /* TaskRouter reads of the configured workspace. */

    /* Tasks whose assignment status is one of statuses (n of them), as a JSON array of task
     * resources, all pages followed. */
    tassa_err (*tasks_list)(backend_t *b, const char *const *statuses, size_t n, json_t **tasks,
                            errmsg_t *em);
    /* One task resource. TASSA_ENOTFOUND when unknown. */
    tassa_err (*task_fetch)(backend_t *b, const char *task_sid, json_t **task, errmsg_t *em);
    /* Every worker resource, as a JSON array. */
    tassa_err (*workers_list)(backend_t *b, json_t **workers, errmsg_t *em);
    /* Every task queue resource, as a JSON array. */
    tassa_err (*queues_list)(backend_t *b, json_t **queues, errmsg_t *em);
    /* A queue's real-time statistics resource (total_eligible_workers, ...) and cumulative
     * statistics resource (avg_task_acceptance_time, ...) of the last `minutes`. */
    tassa_err (*queue_stats)(backend_t *b, const char *queue_sid, int minutes, json_t **realtime,
                             json_t **cumulative, errmsg_t *em);

    /* Optional fast paths (NULL when the back end has none: the callers then work from
     * tasks_list, as they must over Twilio's REST API, which has no such aggregates). */

    /* The first `limit` waiting (pending or reserved) tasks in queue order, and
     * *summary = {"total", "byQueue": {queue name: {"pending", "longestWaitSeconds"}}}. */
    tassa_err (*waiting_tasks)(backend_t *b, long limit, json_t **first, json_t **summary,
                               errmsg_t *em);
    /* The newest waiting task whose `topic` attribute is topic. TASSA_ENOTFOUND if none. */
    tassa_err (*waiting_task_by_topic)(backend_t *b, const char *topic, json_t **task,
                                       errmsg_t *em);
    /* The workers whose activity's name is one of names (n of them, compared
     * case-insensitively): the first `limit` in workers_list's order as an array of worker
     * resources, and how many there are in *total. */
    tassa_err (*workers_in_activities)(backend_t *b, const char *const *names, size_t n, long limit,
                                       json_t **workers, long *total, errmsg_t *em);
    /* A waiting task's 1-based place in its queue and the queue's size. TASSA_ENOTFOUND when
     * the task does not wait. A back end with it has waiting_task_by_topic too. */
    tassa_err (*task_position)(backend_t *b, const char *task_sid, long *position, long *size,
                               errmsg_t *em);

    /* Frees the back end. */
    void (*destroy)(backend_t *b);
} backend_ops_t;

struct backend {
    const backend_ops_t *ops;
    void *impl;
};

/* Frees b through its destroy operation. Accepts NULL. */
void backend_free(backend_t *b);

/* The value of attribute key in a task resource's `attributes` text: a new reference, or NULL
 * when the text is not a JSON object or has no such key. Any thread. */
json_t *backend_task_attr(const json_t *task, const char *key);

/* A task resource's place in queue order (base/task_order.h): its priority and age, and idx,
 * its index in the back end's list. Any thread. */
task_rank_t backend_task_rank(const json_t *task, size_t idx);

#endif
