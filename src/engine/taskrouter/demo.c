/* demo.c - demo data for a new workspace: two queues, a workflow and four tellers.
 *
 * Layer: engine. */
#include "engine/taskrouter/core.h"

#include <stdio.h>
#include <string.h>

#include "engine/taskrouter/model.h"
#include "base/log.h"

/* Builds params from NULL-terminated key, value pairs. NULL on OOM. */
static params_t *make_params(const char *const *kv)
{
    params_t *p = params_new();
    for (size_t i = 0; p && kv[i]; i += 2)
        if (params_add(p, kv[i], strlen(kv[i]), kv[i + 1], strlen(kv[i + 1]), NULL)) {
            params_free(p);
            return NULL;
        }
    return p;
}

/* Creates one resource with create(e, params) and copies its sid into sid (may be NULL). */
static tassa_err create(tr_engine_t *e,
                        tassa_err (*fn)(tr_engine_t *, const params_t *, const char *, json_t **,
                                        errmsg_t *),
                        const char *const *kv, char *sid)
{
    params_t *p = make_params(kv);
    json_t *out = NULL;
    errmsg_t em = {{0}};
    tassa_err err = p ? fn(e, p, "", &out, &em) : TASSA_ENOMEM;
    if (!err && sid)
        snprintf(sid, SID_LEN + 1, "%s", json_string_value(json_object_get(out, "sid")));
    if (err)
        log_error("event=tr_demo_failed err=\"%s\"", err_text(&em, err));
    json_decref(out);
    params_free(p);
    return err;
}

tassa_err tr_engine_demo(tr_engine_t *e)
{
    static const struct {
        const char *name, *attrs;
    } TELLERS[] = {
        {"Alice", "{\"skills\":[\"general\",\"loans\"],\"name\":\"Alice\"}"},
        {"Bob", "{\"skills\":[\"general\"],\"name\":\"Bob\"}"},
        {"Carol", "{\"skills\":[\"general\",\"loans\"],\"name\":\"Carol\"}"},
        {"Dave", "{\"skills\":[\"general\"],\"name\":\"Dave\"}"},
    };
    char general[SID_LEN + 1], loans[SID_LEN + 1], conf[512];
    store_lock(e->store);
    int64_t workers = db_int(e->store, 0, "SELECT count(*) FROM tr_workers", NULL);
    char available[SID_LEN + 1] = "";
    db_sid(e->store, available, "SELECT sid FROM tr_activities WHERE friendly_name = 'Available'",
           NULL);
    store_unlock(e->store);
    if (workers > 0)
        return TASSA_OK;
    tassa_err err = create(e, tr_queue_create,
                           (const char *const[]){"FriendlyName", "General", "TargetWorkers",
                                                 "skills HAS 'general'", NULL},
                           general);
    if (!err)
        err = create(e, tr_queue_create,
                     (const char *const[]){"FriendlyName", "Loans", "TargetWorkers",
                                           "skills HAS 'loans'", NULL},
                     loans);
    snprintf(conf, sizeof conf,
             "{\"task_routing\":{\"filters\":[{\"filter_friendly_name\":\"Loans\","
             "\"expression\":\"type == 'loan'\",\"targets\":[{\"queue\":\"%s\"}]}],"
             "\"default_filter\":{\"queue\":\"%s\"}}}",
             loans, general);
    if (!err)
        err = create(e, tr_workflow_create,
                     (const char *const[]){"FriendlyName", "Bank", "Configuration", conf,
                                           "TaskReservationTimeout", "30", NULL},
                     NULL);
    for (size_t i = 0; !err && i < sizeof TELLERS / sizeof TELLERS[0]; i++)
        err = create(e, tr_worker_create,
                     (const char *const[]){"FriendlyName", TELLERS[i].name, "Attributes",
                                           TELLERS[i].attrs, "ActivitySid", available, NULL},
                     NULL);
    return err;
}
