/* event_sink.c - engine events to the router function and to EventCallbackUrl.
 *
 * Layer: app. */
#include "event_sink.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"

/* Logs a failed router event (err TASSA_OK: nothing). */
static void router_failed(const char *type, const char *sid, tassa_err err, const errmsg_t *em)
{
    if (err)
        log_warn("event=router_failed type=%s sid=%s err=\"%s\"", type ? type : "?",
                 sid ? sid : "?", err_text(em, err));
}

void event_sink_flush(void *ctx)
{
    event_sink_t *sink = ctx;
    for (size_t i = 0; i < sink->n_jobs; i++) {
        errmsg_t em = {{0}};
        json_t *result = NULL;
        router_job_t *job = sink->jobs[i];
        char type[64], sid[64];
        snprintf(type, sizeof type, "%s", router_job_type(job));
        snprintf(sid, sizeof sid, "%s", router_job_sid(job) ? router_job_sid(job) : "?");
        tassa_err err = router_dispatch_finish(job, &result, &em);
        router_failed(type, sid, err, &em);
        json_decref(result);
    }
    sink->n_jobs = 0;
    free(sink->callback_url);
    free(sink->callback_filter);
    sink->callback_url = sink->callback_filter = NULL;
    sink->callback_known = false;
}

void event_sink_deliver(void *ctx, const params_t *event)
{
    event_sink_t *sink = ctx;
    const char *type = params_get(event, "EventType");
    if (sink->n_jobs == EVENT_SINK_JOBS)
        event_sink_flush(sink);
    router_job_t *job = router_dispatch_start(sink->router, event);
    if (job) {
        sink->jobs[sink->n_jobs++] = job;
    } else { /* out of memory: the one-step way */
        errmsg_t em = {{0}};
        json_t *result = NULL;
        tassa_err err = router_dispatch(sink->router, event, &result, &em);
        router_count_event(type, err, result);
        router_failed(type, params_get(event, "Sid"), err, &em);
        json_decref(result);
    }
    eventbridge_deliver(sink->bridge, event);
    if (!sink->outbox || !type)
        return;
    /* read once a batch: a change of EventCallbackUrl applies from the next batch on */
    if (!sink->callback_known)
        sink->callback_known = tr_workspace_callback(sink->tr, &sink->callback_url,
                                                     &sink->callback_filter) == TASSA_OK;
    const char *url = sink->callback_url;
    if (url && *url && outbox_filter_match(sink->callback_filter, type) &&
        outbox_enqueue(sink->outbox, url, event))
        log_error("event=callback_not_stored type=%s", type);
}
