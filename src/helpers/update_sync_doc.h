/* update_sync_doc.h - the seed's updateSyncDoc: create or update a Sync document by unique
 * name, without ever losing a write.
 *
 * The seed fetched, then updated or created, and lost writes when two events raced. Here the
 * change is a function of the current data, applied with the revision it was computed from
 * (If-Match); a 412 or a 409 from a concurrent writer means: read again and re-apply.
 *
 * Layer: helpers.
 */
#ifndef TASSA_UPDATE_SYNC_DOC_H
#define TASSA_UPDATE_SYNC_DOC_H

#include <jansson.h>
#include <stdbool.h>

#include "backend/backend.h"

#define UPDATE_SYNC_DOC_ATTEMPTS 32

/* Applies merge (see backend_merge_fn) to document name until it sticks. *changed tells whether a
 * write happened. Errors of the back end are returned as they are (TASSA_EUPSTREAM, ...);
 * TASSA_ECONFLICT after UPDATE_SYNC_DOC_ATTEMPTS lost races. reason, if not NULL, receives merge's
 * reason when nothing was written. */
tassa_err update_sync_doc(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                          bool *changed, char *reason, size_t reason_len, errmsg_t *em);

/* update_sync_doc without waiting for durability on the calling thread when the back end can
 * (doc_apply_async); otherwise the blocking path runs here and done runs before this returns.
 * merge, ctx and reason are used only before this returns; done(done_ctx, err, changed, em)
 * runs exactly once, possibly on another thread where it must be short and must not block. */
void update_sync_doc_async(backend_t *b, const char *name, backend_merge_fn merge, void *ctx,
                           char *reason, size_t reason_len, backend_done_fn done, void *done_ctx);

/* The seed's plain form: make the document's data equal data (borrowed). */
tassa_err update_sync_doc_set(backend_t *b, const char *name, const json_t *data, errmsg_t *em);

#endif
