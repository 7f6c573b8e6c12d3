/* fuzz_queue_position.c - libFuzzer driver for /queue/get-queue-position
 * (src/functions/get_queue_position.c): the task attributes it parses (identity, topic), the
 * topic document it falls back to, and its answer, through the real HTTP layer on a loopback
 * port, over a back end made here from the input (the backend.h interface, as the twilio back
 * end would answer it).
 *
 * Input, one part per line: the request's form parameters (identity, taskSid, topic), then up
 * to 7 lines, each a task "T<status byte><priority byte><attributes JSON>" (tasks are numbered
 * WT000...0, WT000...1, ... in order) or the topic document's data "D<JSON>". The caller's token is
 * minted for its identity. The first byte's low bit picks the back end's fast path (task_position)
 * or the listing one. Invariants:
 *   - never a 500 or a stall;
 *   - (issue 9 defect 4, once fixed) a 200 names only a task whose `identity` attribute equals
 *     the caller's identity;
 *   - a waiting task's answer has position >= 1, ahead = position - 1, queueSize >= position
 *     and the task's own queue. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/verify_token.h"
#include "backend/backend.h"
#include "functions/get_queue_position.h"
#include "fuzz_common.h"
#include "base/log.h"
#include "base/task_order.h"

#define SECRET    "caller-jwt-secret"
#define MAX_TASKS 6

static const char *const STATUS[] = {"pending",  "reserved",  "assigned",
                                     "wrapping", "completed", "canceled"};

/* What the back end answers for the current input (set before each request). */
static struct {
    json_t *tasks; /* array of task resources */
    json_t *doc;   /* topic document resource, or NULL */
} world;

static http_server_t *http;
static get_queue_position_deps_t deps;
static config_t config;
static int port;

static bool waiting(const json_t *t)
{
    return task_status_waiting(json_string_value(json_object_get(t, "assignment_status")));
}

static bool topic_is(const json_t *t, const char *topic)
{
    json_t *a = json_loads(json_string_value(json_object_get(t, "attributes")), 0, NULL);
    const char *v = json_string_value(json_object_get(a, "topic"));
    bool same = v && topic && !strcmp(v, topic);
    json_decref(a);
    return same;
}

static tassa_err doc_fetch(backend_t *b, const char *name, json_t **doc, errmsg_t *em)
{
    *doc = world.doc ? json_deep_copy(world.doc) : NULL;
    return *doc ? TASSA_OK : err_set(em, TASSA_ENOTFOUND, "no document %s", name);
}

static tassa_err tasks_list(backend_t *b, const char *const *st, size_t n, json_t **out,
                            errmsg_t *em)
{
    size_t i;
    json_t *t;
    *out = json_array();
    json_array_foreach(world.tasks, i, t)
    {
        for (size_t k = 0; k < n; k++)
            if (!strcmp(json_string_value(json_object_get(t, "assignment_status")), st[k]))
                json_array_append(*out, t);
    }
    return TASSA_OK;
}

static tassa_err task_fetch(backend_t *b, const char *sid, json_t **task, errmsg_t *em)
{
    size_t i;
    json_t *t;
    *task = NULL;
    json_array_foreach(world.tasks, i, t)
    {
        if (!strcmp(json_string_value(json_object_get(t, "sid")), sid)) {
            *task = json_deep_copy(t);
            return TASSA_OK;
        }
    }
    return err_set(em, TASSA_ENOTFOUND, "no task %s", sid);
}

static tassa_err queue_stats(backend_t *b, const char *q, int minutes, json_t **rt, json_t **cum,
                             errmsg_t *em)
{
    *rt = json_pack("{s:i}", "total_available_workers", 1);
    *cum = json_pack("{s:i, s:i}", "reservations_accepted", 12, "avg_task_acceptance_time", 30);
    return TASSA_OK;
}

static tassa_err by_topic(backend_t *b, const char *topic, json_t **task, errmsg_t *em)
{
    size_t i;
    json_t *t;
    *task = NULL;
    json_array_foreach(world.tasks, i, t)
    {
        if (waiting(t) && topic_is(t, topic)) {
            json_decref(*task);
            *task = json_deep_copy(t); /* the newest: the last one */
        }
    }
    return *task ? TASSA_OK : err_set(em, TASSA_ENOTFOUND, "no task");
}

static tassa_err position(backend_t *b, const char *sid, long *pos, long *size, errmsg_t *em)
{
    size_t i;
    json_t *t;
    long n = 0, at = 0;
    json_array_foreach(world.tasks, i, t)
    {
        if (!waiting(t))
            continue;
        n++;
        if (!strcmp(json_string_value(json_object_get(t, "sid")), sid))
            at = n;
    }
    *pos = at;
    *size = n;
    return at ? TASSA_OK : err_set(em, TASSA_ENOTFOUND, "not waiting");
}

static backend_ops_t slow_ops = {.name = "fuzz",
                                 .doc_fetch = doc_fetch,
                                 .tasks_list = tasks_list,
                                 .task_fetch = task_fetch,
                                 .queue_stats = queue_stats};
static backend_ops_t fast_ops;
static backend_t backend;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    http_opts_t o = {.bind_addr = "127.0.0.1", .port = 0, .threads = 2, .max_body = 1 << 20};
    errmsg_t em = {{0}};

    log_set_level(LOG_ERROR);
    fast_ops = slow_ops;
    fast_ops.waiting_task_by_topic = by_topic;
    fast_ops.task_position = position;
    config.jwt_secret = SECRET;
    config.cors_origins = "*";
    deps.config = &config;
    deps.backend = &backend;
    backend.ops = &slow_ops;
    if (!(http = http_server_new(&o)) || get_queue_position_register(http, &deps) ||
        http_server_start(http, &em)) {
        fprintf(stderr, "cannot start the server: %s\n", em.text);
        abort();
    }
    port = http_server_port(http);
    return 0;
}

/* Appends task number i from "<status byte><priority byte><attributes>" (len bytes). */
static void add_task(const char *line, size_t len, size_t i)
{
    char sid[40];
    snprintf(sid, sizeof sid, "WT%032zu", i);
    json_array_append_new(world.tasks,
                          json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s%}", "sid", sid,
                                    "assignment_status", STATUS[(unsigned char)line[0] % 6],
                                    "task_queue_sid", "WQ0123456789abcdef0123456789abcdef",
                                    "task_queue_friendly_name", "Support", "priority",
                                    (int)((unsigned char)line[1] % 10), "age", (int)(10 - i),
                                    "attributes", line + 2, strnlen(line + 2, len - 2)));
}

/* The identity attribute of the task sid in the world, or NULL (new reference). */
static json_t *owner_of(const char *sid)
{
    size_t i;
    json_t *t;
    json_array_foreach(world.tasks, i, t)
    {
        if (!strcmp(json_string_value(json_object_get(t, "sid")), sid)) {
            json_t *a = json_loads(json_string_value(json_object_get(t, "attributes")), 0, NULL);
            json_t *id = json_incref(json_object_get(a, "identity"));
            json_decref(a);
            return id;
        }
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[MAX_TASKS + 2];
    size_t lens[MAX_TASKS + 2], ntasks = 0;
    char *copy, *token = NULL, *body, *req;
    params_t *q = params_new();
    const char *identity;
    fuzz_reply_t r;

    if (size < 1 || size > 8192 || !q)
        goto done;
    backend.ops = data[0] % 2 ? &fast_ops : &slow_ops;
    copy = fuzz_split(data + 1, size - 1, '\n', MAX_TASKS + 2, parts, lens);
    if (!copy)
        abort();
    world.tasks = json_array();
    world.doc = NULL;
    for (size_t i = 1; i < MAX_TASKS + 2; i++) {
        if (lens[i] >= 3 && parts[i][0] == 'T') {
            add_task(parts[i] + 1, lens[i] - 1, ntasks++);
        } else if (lens[i] >= 1 && parts[i][0] == 'D' && !world.doc) {
            json_t *d = json_loadb(parts[i] + 1, lens[i] - 1, 0, NULL);
            world.doc =
                json_pack("{s:s, s:o}", "unique_name", "topic", "data", d ? d : json_object());
        }
    }
    if (params_parse_form(q, parts[0], lens[0], NULL) != TASSA_OK)
        goto out;
    identity = params_get_nonempty(q, "identity");
    token = identity ? verify_token_mint(identity, SECRET, 3600, time(NULL)) : NULL;
    body = malloc(lens[0] + (token ? strlen(token) : 0) + 16);
    req = malloc(lens[0] + (token ? strlen(token) : 0) + 256);
    if (!body || !req)
        abort();
    int blen = sprintf(body, "token=%s&", token ? token : "");
    memcpy(body + blen, parts[0], lens[0]);
    blen += (int)lens[0];
    int rlen = sprintf(req,
                       "POST /queue/get-queue-position HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Connection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       "Content-Length: %d\r\n\r\n",
                       blen);
    memcpy(req + rlen, body, (size_t)blen);
    fuzz_http(port, req, (size_t)rlen + (size_t)blen, &r);
    FUZZ_CHECK(r.status > 0, "no answer");
    FUZZ_CHECK(FUZZ_KNOWN_QPOS || r.status < 500, "answered %d: %s", r.status, r.body);
    FUZZ_CHECK(r.status != 500 || strstr(r.body, "out of memory") || FUZZ_KNOWN_QPOS,
               "answered 500: %s", r.body);
    if (r.status == 200) {
        json_t *a = json_loads(r.body, 0, NULL);
        const char *sid = json_string_value(json_object_get(a, "taskSid"));
        json_t *owner = sid ? owner_of(sid) : NULL;
        bool mine =
            json_is_string(owner) && identity && !strcmp(json_string_value(owner), identity);
        FUZZ_CHECK(json_is_object(a), "200 without a JSON object");
        FUZZ_CHECK(FUZZ_KNOWN_QPOS || mine, "answered about task %s to %s, not its owner",
                   sid ? sid : "(none)", identity ? identity : "?");
        if (json_is_integer(json_object_get(a, "position"))) {
            json_int_t p = json_integer_value(json_object_get(a, "position"));
            FUZZ_CHECK(p >= 1, "position %lld", (long long)p);
            FUZZ_CHECK(json_integer_value(json_object_get(a, "ahead")) == p - 1, "ahead");
            FUZZ_CHECK(json_integer_value(json_object_get(a, "queueSize")) >= p, "queue size");
            FUZZ_CHECK(!strcmp(json_string_value(json_object_get(a, "queue")), "Support"),
                       "queue name");
        }
        json_decref(owner);
        json_decref(a);
    }
    fuzz_reply_free(&r);
    free(body);
    free(req);
out:
    free(token);
    free(copy);
    json_decref(world.tasks);
    json_decref(world.doc);
    world.tasks = world.doc = NULL;
done:
    params_free(q);
    return 0;
}
