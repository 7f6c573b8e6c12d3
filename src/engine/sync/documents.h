/* documents.h - the embedded Sync engine: services and documents, stored in the data file.
 *
 * Wire facts (TWILIO-NOTES section 4): a document is a JSON object of at most 16 KiB with an
 * optional unique name (at most 320 characters, usable instead of the SID), a revision that
 * grows by one with each change and is the ETag for If-Match, and an optional TTL after
 * which it is gone. "default" names the default service.
 *
 * Thread-safe: every call takes the store lock for its own short transaction and returns
 * only after the change is durable. Change listeners run after the commit, outside the lock,
 * on the calling thread, in revision order per document. */
#ifndef TASSA_SYNC_DOCUMENTS_H
#define TASSA_SYNC_DOCUMENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "sid.h"
#include "store/store.h"

#define SYNC_DOC_MAX_DATA    16384
#define SYNC_UNIQUE_NAME_MAX 320

typedef struct {
    char sid[SID_LEN + 1];
    char service_sid[SID_LEN + 1];
    char *unique_name; /* owned; NULL when none */
    char *data;        /* owned compact JSON object text */
    int64_t revision;
    int64_t created_ms, updated_ms, expires_ms; /* expires_ms 0 = never */
    char created_by[130];
} sync_doc_t;

typedef struct sync_engine sync_engine_t;

/* Called after a committed change: doc is the new state (deleted = true on delete).
 * Borrowed for the call only. Must not call back into the engine with the lock held. */
typedef void (*sync_listener_fn)(void *ctx, const sync_doc_t *doc, bool deleted);

/* Creates the engine on store s, creating tables and the default service (and the service
 * named by configured_service when it is an IS SID) on first use. NULL with em on failure. */
sync_engine_t *sync_engine_new(store_t *s, const char *account_sid, const char *configured_service,
                               errmsg_t *em);

/* Frees e (not the store). Accepts NULL. */
void sync_engine_free(sync_engine_t *e);

/* Sets the one change listener (live streams). Call before serving. */
void sync_engine_set_listener(sync_engine_t *e, sync_listener_fn fn, void *ctx);

/* Resolves "default" or a service SID to the service SID. TASSA_ENOTFOUND if unknown. */
tassa_err sync_service_resolve(sync_engine_t *e, const char *id, char out[SID_LEN + 1]);

/* The service as Twilio's JSON (new reference), or NULL when unknown. */
json_t *sync_service_json(sync_engine_t *e, const char *id, const char *base_url);

/* Creates a document. unique_name and data may be NULL (data defaults to {}); ttl 0 = no
 * expiry. TASSA_EDUPNAME if the unique name is taken, TASSA_EINVAL / TASSA_EDOCTOOBIG for bad
 * input (detail in em), TASSA_ENOTFOUND for an unknown service. Fills out on success (the
 * caller clears it with sync_doc_clear). */
tassa_err sync_doc_create(sync_engine_t *e, const char *service, const char *unique_name,
                          const char *data, long ttl, const char *created_by, sync_doc_t *out,
                          errmsg_t *em);

/* Fetches by SID or unique name. TASSA_ENOTFOUND when absent or expired. */
tassa_err sync_doc_fetch(sync_engine_t *e, const char *service, const char *id, sync_doc_t *out,
                         errmsg_t *em);

/* Updates data (NULL keeps it) and ttl (-1 keeps it, 0 clears it). if_match, when not NULL,
 * must equal the current revision, else TASSA_EREVISION and nothing changes. */
tassa_err sync_doc_update(sync_engine_t *e, const char *service, const char *id, const char *data,
                          long ttl, const char *if_match, sync_doc_t *out, errmsg_t *em);

/* Computes a document's next data from its current data (NULL when it does not exist;
 * borrowed). Returns a new reference to write, or NULL to leave it unchanged (and may explain
 * why in reason). Called with the store lock held: it must not call the engine. */
typedef json_t *(*sync_apply_fn)(void *ctx, const json_t *current, char *reason, size_t reason_len);

/* Read-modify-write of the document with unique name `name` in one critical section: fn
 * decides, the result is created or updated (revision + 1) and made durable with one group
 * commit. No race is possible, so no retry is needed. *changed tells whether it wrote.
 * TASSA_EINVAL / TASSA_EDOCTOOBIG for bad data from fn. */
tassa_err sync_doc_apply(sync_engine_t *e, const char *service, const char *name, sync_apply_fn fn,
                         void *ctx, bool *changed, char *reason, size_t reason_len, errmsg_t *em);

/* Deletes by SID or unique name; if_match as for update. TASSA_ENOTFOUND when absent. */
tassa_err sync_doc_delete(sync_engine_t *e, const char *service, const char *id,
                          const char *if_match, errmsg_t *em);

/* Lists documents in creation order: page (0-based) of page_size. *docs is a malloc'd array
 * of *n documents (free with sync_doc_list_free); *more says whether a next page exists. */
tassa_err sync_doc_list(sync_engine_t *e, const char *service, long page, long page_size,
                        sync_doc_t **docs, size_t *n, bool *more, errmsg_t *em);

/* Frees the strings of d (not d itself). Accepts NULL. */
void sync_doc_clear(sync_doc_t *d);

/* Frees an array from sync_doc_list. */
void sync_doc_list_free(sync_doc_t *docs, size_t n);

/* Deep copy of src into dst. TASSA_ENOMEM on failure (dst then cleared). */
tassa_err sync_doc_copy(sync_doc_t *dst, const sync_doc_t *src);

/* Twilio's JSON for d (a new reference), with URLs under base_url. NULL on OOM. */
json_t *sync_doc_json(const sync_doc_t *d, const char *account_sid, const char *base_url);

#endif
