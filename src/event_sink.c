/* event_sink.c - engine events to the router function and to EventCallbackUrl.
 *
 * Layer: app. */
#include "event_sink.h"

#include <stdlib.h>

#include "base/log.h"

void event_sink_deliver(void *ctx, const params_t *event)
{
    const event_sink_t *sink = ctx;
    const char *type = params_get(event, "EventType");
    errmsg_t em = {{0}};
    json_t *result = NULL;
    tassa_err err = router_dispatch(sink->router, event, &result, &em);
    router_count_event(type, err, result);
    if (err)
        log_warn("event=router_failed type=%s sid=%s err=\"%s\"", type ? type : "?",
                 params_get(event, "Sid") ? params_get(event, "Sid") : "?", err_text(&em, err));
    json_decref(result);
    eventbridge_deliver(sink->bridge, event);
    if (!sink->outbox || !type)
        return;
    char *url = NULL, *filter = NULL;
    if (tr_workspace_callback(sink->tr, &url, &filter) == TASSA_OK && url && *url &&
        outbox_filter_match(filter, type)) {
        if (outbox_enqueue(sink->outbox, url, event))
            log_error("event=callback_not_stored type=%s", type);
    }
    free(url);
    free(filter);
}
