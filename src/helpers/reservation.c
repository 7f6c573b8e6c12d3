/* reservation.c - topic documents from task and reservation events.
 *
 * Layer: helpers. */
#include "helpers/reservation.h"

#include <stdio.h>
#include <string.h>

#include "base/params.h"
#include "helpers/update_sync_doc.h"
#include "store/store.h"
#include "base/timefmt.h"

static const struct {
    const char *event, *status;
} MAP[] = {
    {"task.created", "waiting"},
    {"reservation.accepted", "assigned"},
    {"reservation.completed", "completed"},
    {"reservation.canceled", "completed"},
    {"task.canceled", "completed"},
    {"task.deleted", "completed"},
};

const char *reservation_status_for(const char *event_type)
{
    for (size_t i = 0; event_type && i < sizeof MAP / sizeof MAP[0]; i++) {
        if (strcmp(MAP[i].event, event_type) == 0)
            return MAP[i].status;
    }
    return NULL;
}

/* waiting 1 < assigned 2 < completed 3; 0 for anything else. */
static int rank(const char *status)
{
    static const char *order[] = {"waiting", "assigned", "completed"};
    for (int i = 0; status && i < 3; i++) {
        if (strcmp(order[i], status) == 0)
            return i + 1;
    }
    return 0;
}

typedef struct {
    const params_t *event;
    const char *status;
} merge_ctx_t;

/* Decides the topic's next state from its current one (see the rules in reservation.h). */
static json_t *merge_topic(void *vctx, const json_t *current, char *reason, size_t reason_len)
{
    merge_ctx_t *c = vctx;
    const char *task_sid = params_get(c->event, "TaskSid");
    const char *event_type = params_get(c->event, "EventType");
    json_t *worker = NULL;
    if (current) {
        const char *cur_task = json_string_value(json_object_get(current, "taskSid"));
        const char *cur_status = json_string_value(json_object_get(current, "status"));
        bool same_task = cur_task && task_sid && strcmp(cur_task, task_sid) == 0;
        /* A task created before the topic's own cannot start it again: a replayed or late
         * task.created (ISO 8601 dates in one format compare as text). */
        const char *cur_created = json_string_value(json_object_get(current, "taskDateCreated"));
        const char *created = params_get_nonempty(c->event, "TaskDateCreated");
        bool older = cur_created && created && strcmp(created, cur_created) < 0;
        if (!same_task && (older || !(rank(c->status) == 1 && rank(cur_status) == 3))) {
            const char *a = cur_task ? cur_task : "?", *st = cur_status ? cur_status : "?",
                       *b = task_sid ? task_sid : "?";
            snprintf(reason, reason_len,
                     "topic belongs to task %.*s (%.*s); %s of task %.*s is stale",
                     params_utf8_fit(a, 40), a, params_utf8_fit(st, 12), st, event_type,
                     params_utf8_fit(b, 40), b);
            params_utf8_end(reason);
            return NULL;
        }
        if (same_task && rank(c->status) <= rank(cur_status)) {
            const char *st = cur_status ? cur_status : "?";
            snprintf(reason, reason_len, "topic is already %.*s; %s would not move it forward",
                     params_utf8_fit(st, 12), st, event_type);
            params_utf8_end(reason);
            return NULL;
        }
        /* A completed topic keeps the teller who served it. */
        if (same_task && strcmp(c->status, "completed") == 0)
            worker = json_deep_copy(json_object_get(current, "worker"));
    }
    const char *wsid = params_get_nonempty(c->event, "WorkerSid");
    if (strcmp(c->status, "assigned") == 0 && wsid) {
        const char *wname = params_get(c->event, "WorkerName");
        json_decref(worker);
        worker = json_pack("{s:s, s:s}", "sid", wsid, "name", wname ? wname : "");
    }
    char now[TIMEFMT_LEN];
    timefmt_iso_ms(store_now_ms(), now);
    const char *ev_sid = params_get(c->event, "Sid");
    json_t *next = json_pack("{s:s, s:s?, s:o, s:s, s:s?, s:s}", "status", c->status, "taskSid",
                             task_sid, "worker", worker ? worker : json_null(), "event", event_type,
                             "eventSid", ev_sid, "updatedAt", now);
    const char *created = params_get_nonempty(c->event, "TaskDateCreated");
    if (next && created) /* kept to judge a later event of another task (above) */
        json_object_set_new(next, "taskDateCreated", json_string(created));
    return next;
}

/* What reservation_handle does before the write: fills out, and tells in *write whether the
 * topic is to be written (with *ctx the merge's context). */
static tassa_err prepare(const params_t *event, reservation_result_t *out, merge_ctx_t *ctx,
                         bool *write, errmsg_t *em)
{
    memset(out, 0, sizeof *out);
    *write = false;
    const char *type = params_get(event, "EventType");
    const char *status = reservation_status_for(type);
    if (!status) {
        out->ignored = true;
        snprintf(out->reason, sizeof out->reason, "%s does not change a topic",
                 type ? type : "event");
        params_utf8_end(out->reason);
        return TASSA_OK;
    }
    snprintf(out->status, sizeof out->status, "%s", status);
    const char *attrs = params_get_nonempty(event, "TaskAttributes");
    json_t *a = attrs ? json_loads(attrs, 0, NULL) : NULL;
    if (attrs && !json_is_object(a)) {
        json_decref(a);
        return err_set(em, TASSA_EINVAL, "TaskAttributes is not a JSON object");
    }
    const char *topic = json_string_value(json_object_get(a, "topic"));
    if (!topic || !*topic) {
        json_decref(a);
        out->ignored = true;
        snprintf(out->reason, sizeof out->reason, "task has no topic attribute");
        return TASSA_OK;
    }
    if (strlen(topic) >= sizeof out->topic || strcmp(topic, "queue-status") == 0) {
        json_decref(a);
        return err_set(em, TASSA_EINVAL,
                       "topic must be 1 to 320 characters and not "
                       "queue-status");
    }
    snprintf(out->topic, sizeof out->topic, "%s", topic);
    const char *identity = json_string_value(json_object_get(a, "identity")); /* borrowed */
    if (identity && *identity && strlen(identity) < sizeof out->reader)
        snprintf(out->reader, sizeof out->reader, "%s", identity);
    json_decref(a);
    *ctx = (merge_ctx_t){.event = event, .status = status};
    *write = true;
    return TASSA_OK;
}

tassa_err reservation_finish(backend_t *b, reservation_result_t *out, tassa_err err, errmsg_t *em)
{
    bool has_reader = out->reader[0] != '\0';
    if (!err && out->changed && has_reader && b->ops->doc_grant_read)
        err = b->ops->doc_grant_read(b, out->topic, out->reader, em);
    if (err || !out->changed || !has_reader)
        out->reader[0] = '\0';
    return err;
}

tassa_err reservation_handle(backend_t *b, const params_t *event, reservation_result_t *out,
                             errmsg_t *em)
{
    merge_ctx_t ctx;
    bool write;
    tassa_err err = prepare(event, out, &ctx, &write, em);
    if (err || !write)
        return err;
    err = update_sync_doc(b, out->topic, merge_topic, &ctx, &out->changed, out->reason,
                          sizeof out->reason, em);
    return reservation_finish(b, out, err, em);
}

void reservation_handle_async(backend_t *b, const params_t *event, reservation_result_t *out,
                              backend_done_fn done, void *done_ctx)
{
    merge_ctx_t ctx;
    bool write;
    errmsg_t em = {{0}};
    tassa_err err = prepare(event, out, &ctx, &write, &em);
    if (err || !write) {
        done(done_ctx, err, false, &em);
        return;
    }
    update_sync_doc_async(b, out->topic, merge_topic, &ctx, out->reason, sizeof out->reason, done,
                          done_ctx);
}
