/* update_sync_doc.c - race-free create-or-update of a Sync document.
 *
 * Layer: helpers. */
#include "helpers/update_sync_doc.h"

#include <sched.h>
#include <stdio.h>

#include "base/log.h"

tassa_err update_sync_doc(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                          bool *changed, char *reason, size_t reason_len, errmsg_t *em)
{
    char scratch[8];
    if (!reason) {
        reason = scratch;
        reason_len = sizeof scratch;
    }
    reason[0] = '\0';
    *changed = false;
    if (b->ops->doc_apply) /* atomic in the back end: no race to retry */
        return b->ops->doc_apply(b, name, merge, ctx, changed, reason, reason_len, em);
    for (int attempt = 0; attempt < UPDATE_SYNC_DOC_ATTEMPTS; attempt++) {
        json_t *doc = NULL, *result = NULL;
        tassa_err err = b->ops->doc_fetch(b, name, &doc, em);
        if (err && err != TASSA_ENOTFOUND)
            return err;
        const json_t *current = doc ? json_object_get(doc, "data") : NULL; /* borrowed */
        json_t *next = merge(ctx, current, reason, reason_len);
        if (!next) {
            json_decref(doc);
            return TASSA_OK;
        }
        bool doc_existed = doc != NULL;
        if (doc) {
            const char *rev = json_string_value(json_object_get(doc, "revision"));
            err = b->ops->doc_update(b, name, next, rev, &result, em);
        } else {
            err = b->ops->doc_create(b, name, next, &result, em);
        }
        json_decref(next);
        json_decref(doc);
        json_decref(result);
        if (err == TASSA_OK) {
            *changed = true;
            return TASSA_OK;
        }
        /* Someone else wrote first (412 on update, 409 on create, 404 on an update of a
         * document deleted meanwhile): read again and recompute. A 404 on create means the
         * service itself is missing: final. */
        bool raced = err == TASSA_EREVISION || err == TASSA_EDUPNAME ||
                     (err == TASSA_ENOTFOUND && doc_existed);
        if (!raced)
            return err;
        log_debug("event=sync_doc_race name=%.80s attempt=%d", name, attempt + 1);
        sched_yield();
    }
    return err_set(em, TASSA_ECONFLICT, "document %.80s kept changing; gave up after %d tries",
                   name, UPDATE_SYNC_DOC_ATTEMPTS);
}

void update_sync_doc_async(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                           char *reason, size_t reason_len, backend_done_fn done, void *done_ctx)
{
    if (b->ops->doc_apply_async) {
        reason[0] = '\0';
        b->ops->doc_apply_async(b, name, merge, ctx, reason, reason_len, done, done_ctx);
        return;
    }
    errmsg_t em = {{0}};
    bool changed = false;
    tassa_err err = update_sync_doc(b, name, merge, ctx, &changed, reason, reason_len, &em);
    done(done_ctx, err, changed, &em);
}

/* The merge of update_sync_doc_set: always the given data. */
static json_t *replace_with(void *ctx, const json_t *current, char *reason, size_t reason_len)
{
    return json_deep_copy((const json_t *)ctx);
}

tassa_err update_sync_doc_set(backend_t *b, const char *name, const json_t *data, errmsg_t *em)
{
    bool changed;
    return update_sync_doc(b, name, replace_with, (void *)data, &changed, NULL, 0, em);
}
