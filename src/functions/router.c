/* router.c - /general/router: signature check, idempotency, dispatch by EventType.
 *
 * Layer: functions. */
#include "functions/router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/signature.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/metrics.h"
#include "helpers/reservation.h"

#define SEEN_SLOTS 8192 /* per generation; at most half filled */
#define SID_MAX    64

/* Two generations of an open-addressing set: when the current one is half full it becomes the
 * previous one and a fresh one starts, so memory stays fixed and recent Sids are kept. */
struct router_state {
    pthread_mutex_t lock;
    char (*gen[2])[SID_MAX];
    size_t count;
};

router_state_t *router_state_new(void)
{
    router_state_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->gen[0] = calloc(SEEN_SLOTS, SID_MAX);
    r->gen[1] = calloc(SEEN_SLOTS, SID_MAX);
    if (!r->gen[0] || !r->gen[1]) {
        router_state_free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void router_state_free(router_state_t *r)
{
    if (!r)
        return;
    free(r->gen[0]);
    free(r->gen[1]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* The slot of sid in table t: where it is, or the empty slot where it would go. */
static char *slot_of(char (*t)[SID_MAX], const char *sid)
{
    size_t i = (size_t)(hash_str(HASH_SEED, sid) % SEEN_SLOTS);
    while (t[i][0] && strcmp(t[i], sid) != 0)
        i = (i + 1) % SEEN_SLOTS;
    return t[i];
}

static bool seen(router_state_t *r, const char *sid)
{
    pthread_mutex_lock(&r->lock);
    bool found = *slot_of(r->gen[0], sid) || *slot_of(r->gen[1], sid);
    pthread_mutex_unlock(&r->lock);
    return found;
}

static void remember(router_state_t *r, const char *sid)
{
    pthread_mutex_lock(&r->lock);
    char *slot = slot_of(r->gen[0], sid);
    if (!*slot) {
        if (r->count == SEEN_SLOTS / 2) {
            char(*old)[SID_MAX] = r->gen[1];
            r->gen[1] = r->gen[0];
            memset(old, 0, (size_t)SEEN_SLOTS * SID_MAX);
            r->gen[0] = old;
            r->count = 0;
            slot = slot_of(r->gen[0], sid);
        }
        snprintf(slot, SID_MAX, "%s", sid);
        r->count++;
    }
    pthread_mutex_unlock(&r->lock);
}

static json_t *ignored(const char *fmt, const char *arg)
{
    char reason[256];
    snprintf(reason, sizeof reason, fmt, arg);
    params_utf8_end(reason); /* a cut splits no character */
    return json_pack("{s:b, s:s}", "ignored", 1, "reason", reason);
}

/* The checks before any handler: *sid the event's Sid (NULL when none), *result set when the
 * event is a duplicate (answered, nothing else to do). */
static tassa_err check_event(const router_deps_t *r, const params_t *event, const char **sid,
                             json_t **result, errmsg_t *em)
{
    *result = NULL;
    *sid = NULL;
    const char *type = params_get_nonempty(event, "EventType");
    if (!type)
        return err_set(em, TASSA_EMISSING, "EventType is required");
    /* The HTTP layer refuses invalid UTF-8, but the engine's event sink and the fuzzer call
     * here directly: such a Sid, EventType or TaskSid cannot go into the JSON answer or the
     * topic document (finding R1), so the whole event is refused first. */
    for (size_t i = 0; i < event->len; i++) {
        const param_t *q = &event->items[i];
        if (!params_utf8_valid(q->key, strlen(q->key)))
            return err_set(em, TASSA_EINVAL, "a parameter name is not valid UTF-8");
        if (!params_utf8_valid(q->value, strlen(q->value)))
            return err_set(em, TASSA_EINVAL, "%s is not valid UTF-8",
                           strlen(q->key) <= 64 ? q->key : "a parameter"); /* never cut */
    }
    *sid = params_get_nonempty(event, "Sid");
    if (*sid && strlen(*sid) >= SID_MAX)
        return err_set(em, TASSA_EINVAL, "Sid is longer than %d characters", SID_MAX - 1);
    if (*sid && seen(r->state, *sid)) {
        *result = ignored("duplicate event %s", *sid);
        return *result ? TASSA_OK : err_set(em, TASSA_ENOMEM, "out of memory");
    }
    return TASSA_OK;
}

static bool is_topic_event(const char *type)
{
    return !strncmp(type, "task.", 5) || !strncmp(type, "reservation.", 12);
}

/* One JSON string into b; a string that is not UTF-8 fails b as out of memory would. */
static void add_string(buf_t *b, const char *s)
{
    if (buf_add_json_string(b, s))
        b->failed = true;
}

/* The answer of the reservation handler as JSON text, written without building it (the HTTP
 * answer of every topic event). Malloc'd; NULL when out of memory. */
static char *reservation_text(const reservation_result_t *rr)
{
    buf_t b = BUF_INIT;
    if (rr->ignored) {
        buf_adds(&b, "{\"ignored\":true,\"reason\":");
        add_string(&b, rr->reason);
    } else {
        buf_adds(&b, "{\"handler\":\"reservation\",\"topic\":");
        add_string(&b, rr->topic);
        buf_adds(&b, ",\"status\":");
        add_string(&b, rr->status);
        buf_adds(&b, rr->changed ? ",\"changed\":true" : ",\"changed\":false,\"reason\":");
        if (!rr->changed)
            add_string(&b, rr->reason);
        if (rr->reader[0]) {
            buf_adds(&b, ",\"reader\":");
            add_string(&b, rr->reader);
        }
    }
    buf_adds(&b, "}");
    if (b.failed) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

/* reservation_text parsed (the answer a job of router_dispatch_start returns). NULL when out
 * of memory. */
static json_t *reservation_json(const reservation_result_t *rr)
{
    char *text = reservation_text(rr);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return j;
}

/* Counts an event of type by its outcome: an error, ignored, or handled. */
static void count_event(const char *type, tassa_err err, bool ignored)
{
    /* Twilio's TaskRouter event types; anything else is "other" (bounded label values) */
    static const char *const known[] = {
        "task.created",
        "task.updated",
        "task.canceled",
        "task.completed",
        "task.deleted",
        "task.wrapup",
        "task.system-deleted",
        "task.transfer-initiated",
        "reservation.created",
        "reservation.accepted",
        "reservation.rejected",
        "reservation.timeout",
        "reservation.canceled",
        "reservation.rescinded",
        "reservation.completed",
        "reservation.wrapup",
        "reservation.failed",
        "worker.created",
        "worker.deleted",
        "worker.activity.update",
        "worker.attributes.update",
        "worker.capacity.update",
        "worker.channel.availability.update",
        "task-queue.entered",
        "task-queue.moved",
        "task-queue.timeout",
        "workflow.entered",
        "workflow.target-matched",
        "workflow.timeout",
        "workflow.skipped",
        "workflow.accepted",
    };
    const char *t = "other";
    for (size_t i = 0; type && i < sizeof known / sizeof known[0]; i++) {
        if (!strcmp(type, known[i]))
            t = known[i];
    }
    const char *outcome = err ? "error" : ignored ? "ignored" : "handled";
    metrics_add(M_ROUTER_EVENTS, 1, "type", t, "outcome", outcome, NULL);
}

void router_count_event(const char *type, tassa_err err, const json_t *result)
{
    count_event(type, err, !err && json_is_true(json_object_get(result, "ignored")));
}

/* After a handled event: task events also change the pending set that queue-status shows;
 * the Sid is remembered (only now: a failed event may come again). */
static void event_done(const router_deps_t *r, const char *type, const char *sid)
{
    if (r->queue_info && is_topic_event(type))
        queue_info_request(r->queue_info);
    if (sid)
        remember(r->state, sid);
}

/* router_dispatch after check_event passed it (sid its Sid, or NULL). */
static tassa_err dispatch_checked(const router_deps_t *r, const params_t *event, const char *sid,
                                  json_t **result, errmsg_t *em)
{
    tassa_err err = TASSA_OK;
    const char *type = params_get(event, "EventType");
    if (is_topic_event(type)) {
        reservation_result_t rr;
        err = reservation_handle(r->backend, event, &rr, em);
        if (err)
            return err;
        *result = reservation_json(&rr);
    } else if (!strncmp(type, "worker.", 7)) {
        if (!r->queue_info) {
            *result = ignored("%s: queueInfo needs the TaskRouter back end", type);
        } else {
            queue_info_request(r->queue_info);
            *result = json_pack("{s:s, s:s, s:b}", "handler", "queueInfo", "document",
                                "queue-status", "scheduled", 1);
        }
    } else {
        *result = ignored("no handler for %s", type);
    }
    if (!*result)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    event_done(r, type, sid);
    return err;
}

tassa_err router_dispatch(const router_deps_t *r, const params_t *event, json_t **result,
                          errmsg_t *em)
{
    const char *sid;
    tassa_err err = check_event(r, event, &sid, result, em);
    if (err || *result)
        return err;
    return dispatch_checked(r, event, sid, result, em);
}

/* Rebuilds the URL Twilio signed: PUBLIC_URL (or the address the request came to) + path +
 * the query string re-encoded from its parameters. Malloc'd; NULL when out of memory. */
static char *signed_url(const config_t *config, const http_req_t *req)
{
    buf_t url = BUF_INIT;
    buf_adds(&url, config->public_url ? config->public_url : req->base_url);
    buf_adds(&url, req->path);
    for (size_t i = 0; i < req->query->len; i++) {
        buf_adds(&url, i ? "&" : "?");
        buf_add_encoded(&url, req->query->items[i].key);
        buf_adds(&url, "=");
        buf_add_encoded(&url, req->query->items[i].value);
    }
    return buf_take(&url);
}

/* Checks X-Twilio-Signature unless the configuration turned the check off. */
static tassa_err check_signature(const config_t *config, const http_req_t *req, errmsg_t *em)
{
    if (!config->verify_signature)
        return TASSA_OK;
    char *url = signed_url(config, req);
    if (!url)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    params_t body = {.items = req->params->items, .len = req->body_params};
    tassa_err err =
        signature_validate(config->auth_token, http_req_header(req, "X-Twilio-Signature"), url,
                           &body, req->body, req->body_len, em);
    free(url);
    return err;
}

/* The step after a settled topic write (err: the write's outcome): the identity's grant (may
 * block), the answer (set exactly on TASSA_OK): as JSON in *json, or as its text in *text when
 * json is NULL; the event counted and, when handled, done (event_done). */
static tassa_err finish_topic(const router_deps_t *r, reservation_result_t *rr, tassa_err err,
                              errmsg_t *em, const char *type, const char *sid, json_t **json,
                              char **text)
{
    err = reservation_finish(r->backend, rr, err, em);
    bool made = false;
    if (json)
        made = (*json = err ? NULL : reservation_json(rr)) != NULL;
    else
        made = (*text = err ? NULL : reservation_text(rr)) != NULL;
    if (!err && !made)
        err = err_set(em, TASSA_ENOMEM, "out of memory");
    count_event(type, err, !err && rr->ignored);
    if (!err)
        event_done(r, type, sid);
    return err;
}

/* An event's handling: its outcome, or its topic write under way. Two kinds share it: a job of
 * router_dispatch_start, which router_dispatch_finish waits for, and a task or reservation
 * event over HTTP (deferred set), answered once its topic write is durable without holding a
 * handler thread meanwhile (http_resp_defer). */
struct router_job {
    const router_deps_t *r;
    http_deferred_t *deferred; /* the HTTP answer waiting for the write; NULL for a job */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool settled, topic; /* settled: guarded by mu */
    tassa_err err;
    errmsg_t em;
    reservation_result_t rr;
    json_t *result;   /* the answer of an event that wrote no topic */
    char *type, *sid; /* copies (the event is gone when the job finishes) */
};

/* A job for an event of type with Sid sid (NULL when none); NULL when out of memory. */
static router_job_t *job_new(const router_deps_t *r, const char *type, const char *sid)
{
    router_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->r = r;
    job->type = strdup(type ? type : "");
    job->sid = sid ? strdup(sid) : NULL;
    if (!job->type || (sid && !job->sid)) {
        free(job->type);
        free(job->sid);
        free(job);
        return NULL;
    }
    pthread_mutex_init(&job->mu, NULL);
    pthread_cond_init(&job->cond, NULL);
    return job;
}

static void job_free(router_job_t *job)
{
    pthread_mutex_destroy(&job->mu);
    pthread_cond_destroy(&job->cond);
    free(job->type);
    free(job->sid);
    free(job);
}

/* The job's topic write is settled (any thread: must not block). A deferred answer goes on
 * (route_answer_send, which frees the job); else router_dispatch_finish wakes. */
static void job_written(void *ctx, tassa_err err, bool changed, const errmsg_t *em)
{
    router_job_t *job = ctx;
    http_deferred_t *deferred = job->deferred; /* set before the write began; the job may be
                                                  gone once it is ready */
    pthread_mutex_lock(&job->mu);
    job->err = err;
    job->rr.changed = !err && changed;
    if (em)
        job->em = *em;
    job->settled = true;
    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->mu);
    if (deferred)
        http_deferred_ready(deferred);
}

/* Makes the HTTP answer of a settled topic write (a handler thread, which may block: the
 * identity's grant). */
static void route_answer_send(void *ctx, http_resp_t *resp)
{
    router_job_t *job = ctx;
    char *text;
    tassa_err err =
        finish_topic(job->r, &job->rr, job->err, &job->em, job->type, job->sid, NULL, &text);
    if (err)
        http_resp_fn_error(resp, err, err_text(&job->em, err));
    else
        http_resp_json_text(resp, 200, text);
    job_free(job);
}

router_job_t *router_dispatch_start(const router_deps_t *r, const params_t *event)
{
    const char *type = params_get(event, "EventType"), *sid = NULL;
    router_job_t *job = job_new(r, type, NULL);
    if (!job)
        return NULL;
    job->err = check_event(r, event, &sid, &job->result, &job->em);
    if (!job->err && !job->result && sid && !(job->sid = strdup(sid)))
        job->err = err_set(&job->em, TASSA_ENOMEM, "out of memory");
    if (!job->err && !job->result && is_topic_event(type)) {
        job->topic = true;
        reservation_handle_async(r->backend, event, &job->rr, job_written, job);
        return job;
    }
    if (!job->err && !job->result)
        job->err = dispatch_checked(r, event, sid, &job->result, &job->em);
    router_count_event(type, job->err, job->result);
    job->settled = true;
    return job;
}

const char *router_job_type(const router_job_t *job)
{
    return job->type;
}

const char *router_job_sid(const router_job_t *job)
{
    return job->sid;
}

tassa_err router_dispatch_finish(router_job_t *job, json_t **result, errmsg_t *em)
{
    pthread_mutex_lock(&job->mu);
    while (!job->settled)
        pthread_cond_wait(&job->cond, &job->mu);
    pthread_mutex_unlock(&job->mu);
    tassa_err err = job->err;
    if (job->topic)
        err =
            finish_topic(job->r, &job->rr, err, &job->em, job->type, job->sid, &job->result, NULL);
    *result = err ? NULL : job->result;
    if (err) {
        json_decref(job->result);
        if (em)
            *em = job->em;
    }
    job_free(job);
    return err;
}

/* Starts the deferred answer of a topic event; false when out of memory (answer at once). */
static bool route_deferred(const router_deps_t *r, http_req_t *req, http_resp_t *resp,
                           const char *type, const char *sid)
{
    router_job_t *job = job_new(r, type, sid);
    if (!job)
        return false;
    job->topic = true;
    if (!(job->deferred = http_resp_defer(resp, route_answer_send, job))) {
        job_free(job);
        return false;
    }
    reservation_handle_async(r->backend, req->params, &job->rr, job_written, job);
    return true;
}

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const router_deps_t *r = ctx;
    errmsg_t em = {{0}};
    tassa_err err = check_signature(r->config, req, &em);
    if (err) {
        log_warn("event=signature_rejected path=%s reason=\"%s\"", req->path, err_text(&em, err));
        http_resp_fn_error(resp, err, err_text(&em, err));
        return;
    }
    const char *sid;
    json_t *result = NULL;
    err = check_event(r, req->params, &sid, &result, &em);
    const char *type = params_get(req->params, "EventType");
    if (!err && !result) {
        if (is_topic_event(type) && route_deferred(r, req, resp, type, sid))
            return;
        err = dispatch_checked(r, req->params, sid, &result, &em);
    }
    router_count_event(type, err, result);
    if (err) {
        http_resp_fn_error(resp, err, err_text(&em, err));
        return;
    }
    http_resp_json(resp, 200, result);
}

tassa_err router_register(http_server_t *http, const router_deps_t *deps)
{
    return http_server_route(http, "POST", "/general/router", handle, (void *)deps);
}
