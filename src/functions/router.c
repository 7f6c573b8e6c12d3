/* router.c - /general/router: signature check, idempotency, dispatch by EventType.
 *
 * Layer: functions. */
#include "functions/router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/signature.h"
#include "helpers/queue_info.h"
#include "helpers/reservation.h"
#include "base/log.h"
#include "ops.h"

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

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of sid in table t: where it is, or the empty slot where it would go. */
static char *slot_of(char (*t)[SID_MAX], const char *sid)
{
    size_t i = hash(sid) % SEEN_SLOTS;
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
    return json_pack("{s:b, s:s}", "ignored", 1, "reason", reason);
}

tassa_err router_dispatch(app_t *app, const params_t *event, json_t **result, errmsg_t *em)
{
    *result = NULL;
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
    const char *sid = params_get_nonempty(event, "Sid");
    if (sid && strlen(sid) >= SID_MAX)
        return err_set(em, TASSA_EINVAL, "Sid is longer than %d characters", SID_MAX - 1);
    if (sid && seen(app->router, sid)) {
        *result = ignored("duplicate event %s", sid);
        return *result ? TASSA_OK : err_set(em, TASSA_ENOMEM, "out of memory");
    }
    tassa_err err = TASSA_OK;
    if (!strncmp(type, "task.", 5) || !strncmp(type, "reservation.", 12)) {
        reservation_result_t r;
        err = reservation_handle(app->backend, event, &r, em);
        if (err)
            return err;
        if (r.ignored)
            *result = ignored("%s", r.reason);
        else
            *result =
                json_pack("{s:s, s:s, s:s, s:b, s:s*, s:s*}", "handler", "reservation", "topic",
                          r.topic, "status", r.status, "changed", r.changed, "reason",
                          r.changed ? NULL : r.reason, "reader", r.reader[0] ? r.reader : NULL);
    } else if (!strncmp(type, "worker.", 7)) {
        if (!app->queue_info) {
            *result = ignored("%s: queueInfo needs the TaskRouter back end", type);
        } else {
            queue_info_request(app->queue_info);
            *result = json_pack("{s:s, s:s, s:b}", "handler", "queueInfo", "document",
                                "queue-status", "scheduled", 1);
        }
    } else {
        *result = ignored("no handler for %s", type);
    }
    if (!*result)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    /* task events also change the pending set that queue-status shows */
    if (app->queue_info && (!strncmp(type, "task.", 5) || !strncmp(type, "reservation.", 12)))
        queue_info_request(app->queue_info);
    if (sid)
        remember(app->router, sid);
    return err;
}

/* Rebuilds the URL Twilio signed: PUBLIC_URL (or the address the request came to) + path +
 * the query string re-encoded from its parameters. */
static void signed_url(app_t *app, const http_req_t *req, char *out, size_t len)
{
    const char *base = app->config->public_url ? app->config->public_url : req->base_url;
    size_t n = (size_t)snprintf(out, len, "%s%s", base, req->path);
    for (size_t i = 0; i < req->query->len && n < len; i++) {
        n += (size_t)snprintf(out + n, len - n, "%c", i ? '&' : '?');
        const char *parts[2] = {req->query->items[i].key, req->query->items[i].value};
        for (int k = 0; k < 2 && n < len; k++) {
            if (k)
                n += (size_t)snprintf(out + n, len - n, "=");
            for (const unsigned char *c = (const unsigned char *)parts[k]; *c && n < len; c++) {
                if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                    (*c >= '0' && *c <= '9') || strchr("-_.~", *c))
                    n += (size_t)snprintf(out + n, len - n, "%c", *c);
                else
                    n += (size_t)snprintf(out + n, len - n, "%%%02X", *c);
            }
        }
    }
}

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    app_t *app = ctx;
    errmsg_t em = {{0}};
    if (app->config->verify_signature) {
        char url[2048];
        signed_url(app, req, url, sizeof url);
        params_t body = {.items = req->params->items, .len = req->body_params};
        tassa_err err =
            signature_validate(app->config->auth_token, http_req_header(req, "X-Twilio-Signature"),
                               url, &body, req->body, req->body_len, &em);
        if (err) {
            log_warn("event=signature_rejected path=%s reason=\"%s\"", req->path,
                     err_text(&em, err));
            http_resp_fn_error(resp, err, err_text(&em, err));
            return;
        }
    }
    json_t *result = NULL;
    tassa_err err = router_dispatch(app, req->params, &result, &em);
    ops_count_router_event(params_get(req->params, "EventType"), err, result);
    if (err) {
        http_resp_fn_error(resp, err, err_text(&em, err));
        return;
    }
    http_resp_json(resp, 200, result);
}

tassa_err router_register(app_t *app)
{
    return http_server_route(app->http, "POST", "/general/router", handle, app);
}
