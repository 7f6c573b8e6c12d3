/* fuzz_router.c - libFuzzer driver for the router event path: router_dispatch
 * (src/functions/router.c) through reservation_handle and its topic merge
 * (src/helpers/reservation.c) into real Sync documents, on the embedded engine over an
 * in-memory SQLite store made once per process.
 *
 * Input: up to 8 TaskRouter callbacks, form-encoded (EventType=...&Sid=...&TaskSid=...&
 * TaskAttributes=...), one per line, dispatched in order; a line params_parse_form refuses is
 * decoded without its UTF-8 check, as an in-process caller may hand it over (finding R1).
 * Invariants per event:
 *   - it is answered with a JSON object, or refused as bad input (400), never anything else;
 *   - "changed": the topic document now holds that status, task and event;
 *   - not changed: the topic document's revision did not move;
 *   - within one task a topic only moves forward (waiting < assigned < completed);
 *   - the same event delivered again changes nothing.
 * Every topic written is deleted after the input, and each input gets a fresh idempotency
 * memory, so inputs do not depend on each other. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/embedded.h"
#include "base/config.h"
#include "functions/router.h"
#include "fuzz_common.h"
#include "base/log.h"
#include "store/store.h"

#define MAX_EVENTS 8

static store_t *store;
static sync_engine_t *engine;
static router_deps_t router;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    errmsg_t em = {{0}};
    config_t *c;

    log_set_level(LOG_ERROR);
    c = config_load("", &em);
    if (!c || !(store = store_open(":memory:", &em)) ||
        !(engine = sync_engine_new(store, "AC00000000000000000000000000000000", "default", &em))) {
        fprintf(stderr, "cannot make the engine: %s\n", em.text);
        abort();
    }
    router.config = c;
    if (!(router.backend = backend_embedded_new(c, engine, NULL)))
        abort();
    return 0;
}

static int rank(const char *status)
{
    if (!status)
        return 0;
    return !strcmp(status, "waiting")     ? 1
           : !strcmp(status, "assigned")  ? 2
           : !strcmp(status, "completed") ? 3
                                          : 0;
}

/* The topic document, or NULL when it does not exist. Caller clears. */
static bool fetch_topic(const char *topic, sync_doc_t *d, json_t **data)
{
    if (sync_doc_fetch(engine, "default", topic, d, NULL) != TASSA_OK)
        return false;
    *data = json_loads(d->data, 0, NULL);
    FUZZ_CHECK(json_is_object(*data), "topic data is not an object");
    return true;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Dispatches ev and checks what it did to its topic. Adds the topic to topics[]. */
static void one_event(const params_t *ev, char topics[MAX_EVENTS][321], size_t *ntopics)
{
    const char *attrs = params_get_nonempty(ev, "TaskAttributes");
    json_t *a = attrs ? json_loads(attrs, 0, NULL) : NULL, *result = NULL;
    const char *topic = json_string_value(json_object_get(a, "topic"));
    sync_doc_t before = {0}, after = {0};
    json_t *bdata = NULL, *adata = NULL;
    bool had = false, has;
    errmsg_t em = {{0}};
    tassa_err err;

    if (topic && *topic && strlen(topic) <= 320)
        had = fetch_topic(topic, &before, &bdata);
    err = router_dispatch(&router, ev, &result, &em);
    if (err) {
        FUZZ_CHECK(result == NULL, "an error with a result");
        FUZZ_CHECK(err == TASSA_EINVAL || err == TASSA_EMISSING || err == TASSA_EDOCTOOBIG ||
                       (FUZZ_KNOWN_ROUTER_UTF8 && err == TASSA_ENOMEM),
                   "router_dispatch error %d (%s)", err, em.text);
        goto out;
    }
    /* finding R1 (fuzz/README.md): a duplicate with an invalid-UTF-8 Sid has no answer */
    if (FUZZ_KNOWN_ROUTER_UTF8 && !result)
        goto out;
    FUZZ_CHECK(json_is_object(result), "no JSON answer");
    if (json_is_true(json_object_get(result, "ignored")) || !topic)
        goto out;
    FUZZ_CHECK(!strcmp(str(result, "topic"), topic), "answer names another topic");
    has = fetch_topic(topic, &after, &adata);
    if (json_is_true(json_object_get(result, "changed"))) {
        const char *task = params_get(ev, "TaskSid");
        FUZZ_CHECK(has, "changed topic %s does not exist", topic);
        FUZZ_CHECK(!strcmp(str(adata, "status"), str(result, "status")), "status not written");
        FUZZ_CHECK(!strcmp(str(adata, "event"), params_get(ev, "EventType")), "event not written");
        FUZZ_CHECK(!task || (str(adata, "taskSid") && !strcmp(str(adata, "taskSid"), task)),
                   "task not written");
        if (had && task && str(bdata, "taskSid") && !strcmp(str(bdata, "taskSid"), task))
            FUZZ_CHECK(rank(str(adata, "status")) > rank(str(bdata, "status")),
                       "topic moved backwards within task %s: %s -> %s", task, str(bdata, "status"),
                       str(adata, "status"));
        if (*ntopics < MAX_EVENTS)
            snprintf(topics[(*ntopics)++], 321, "%s", topic);
        /* the same delivery again changes nothing */
        json_decref(result);
        result = NULL;
        err = router_dispatch(&router, ev, &result, &em);
        FUZZ_CHECK(err == TASSA_OK && (result || FUZZ_KNOWN_ROUTER_UTF8) &&
                       !json_is_true(json_object_get(result, "changed")),
                   "a replayed event changed the topic again");
    } else {
        FUZZ_CHECK(had == has && (!had || after.revision == before.revision),
                   "an unchanged answer moved the topic");
    }
out:
    sync_doc_clear(&before);
    sync_doc_clear(&after);
    json_decref(bdata);
    json_decref(adata);
    json_decref(result);
    json_decref(a);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes '+' and %XX of s[0..n) into a malloc'd string (a bad escape stays as it is); NULL
 * when the result holds a NUL byte. Aborts on OOM. */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    if (memchr(out, '\0', (size_t)(o - out))) {
        free(out);
        return NULL;
    }
    return out;
}

/* The form s[0..n) as the in-process callers of router_dispatch (the engine's event sink) may
 * hand it over: decoded but not checked for UTF-8, which params_add would refuse. */
static void parse_raw(params_t *p, const char *s, size_t n)
{
    for (size_t start = 0; start <= n && p->len < 64;) {
        const char *amp = memchr(s + start, '&', n - start);
        size_t end = amp ? (size_t)(amp - s) : n;
        const char *eq = memchr(s + start, '=', end - start);
        size_t klen = eq ? (size_t)(eq - s) - start : end - start;
        char *k = decode(s + start, klen),
             *v = decode(eq ? eq + 1 : "", eq ? end - klen - start - 1 : 0);
        if (k && v && *k) {
            if (p->len == p->cap) {
                param_t *items = realloc(p->items, (p->cap = p->cap * 2 + 8) * sizeof *items);
                if (!items)
                    abort();
                p->items = items;
            }
            p->items[p->len++] = (param_t){k, v};
        } else {
            free(k);
            free(v);
        }
        start = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[MAX_EVENTS];
    size_t lens[MAX_EVENTS], ntopics = 0;
    char topics[MAX_EVENTS][321];
    char *copy = fuzz_split(data, size, '\n', MAX_EVENTS, parts, lens);

    if (!copy || !(router.state = router_state_new()))
        abort();
    for (size_t i = 0; i < MAX_EVENTS; i++) {
        params_t *ev = params_new();
        if (!ev)
            abort();
        if (lens[i] && params_parse_form(ev, parts[i], lens[i], NULL) != TASSA_OK)
            parse_raw(ev, parts[i], lens[i]); /* as the event sink may: finding R1 */
        if (lens[i])
            one_event(ev, topics, &ntopics);
        params_free(ev);
    }
    for (size_t i = 0; i < ntopics; i++)
        (void)sync_doc_delete(engine, "default", topics[i], NULL, NULL);
    router_state_free(router.state);
    router.state = NULL;
    free(copy);
    return 0;
}
