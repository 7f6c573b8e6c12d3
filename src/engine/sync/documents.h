/* documents.h - the embedded Sync engine: services, documents and document permissions,
 * stored in the data file.
 *
 * Wire facts (TWILIO-NOTES section 4): a document is a JSON object of at most 16 KiB with an
 * optional unique name (at most 320 characters, usable instead of the SID), a revision that
 * grows by one with each change and is the ETag for If-Match, and an optional TTL after
 * which it is gone. "default" names the default service.
 *
 * Access control (Twilio's model): a service has acl_enabled; with it on, a token identity
 * may read a document only with a permission row granting `read` (sync_acl_can_read).
 * Account credentials are never limited. Permissions go with their document when it is
 * deleted. A new service (the default one of a new data file) starts with ACL on.
 *
 * Thread-safe: every call takes the store lock for its own short transaction and returns
 * only after the change is durable. The listener sees every committed change exactly once,
 * one at a time and in commit order (so in revision order per document), after the commit,
 * with no engine lock held: on a store of one process on the thread of one of the writers
 * (not always the one that made the change); on a shared store (several nodes on one
 * PostgreSQL database) every change of every node, read back from the change log
 * sync_changes by this node's feeder thread, on that thread.
 *
 * Layer: engine.
 */
#ifndef TASSA_SYNC_DOCUMENTS_H
#define TASSA_SYNC_DOCUMENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/sid.h"
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

/* What changed. SYNC_CHANGE_DOC: doc is the new state (deleted = true on delete).
 * SYNC_CHANGE_PERMISSION: identity's permissions on doc (only sid and service_sid are set)
 * changed; read says whether it may still read. SYNC_CHANGE_ACL: the service's acl_enabled
 * changed (doc.service_sid; read = the new value). */
typedef enum { SYNC_CHANGE_DOC, SYNC_CHANGE_PERMISSION, SYNC_CHANGE_ACL } sync_change_kind_t;

typedef struct {
    sync_change_kind_t kind;
    sync_doc_t doc;
    bool deleted;
    char *identity; /* SYNC_CHANGE_PERMISSION only */
    bool read;
    /* A deleted document's readers as they were before the delete took its permissions:
     * readers_known, then all_readers (ACL off) or readers[0..nreaders). */
    bool readers_known, all_readers;
    char **readers;
    size_t nreaders;
    /* Its place in the change log of a shared store (store_shared): grows with commit order
     * across every node, with gaps. 0 on a store of one process. */
    int64_t seq;
} sync_change_t;

/* Called once per committed change, in commit order (see the file comment). ch is borrowed
 * for the call only. It may call the engine's read functions, but must be quick. */
typedef void (*sync_listener_fn)(void *ctx, const sync_change_t *ch);

/* What sync_doc_watch calls with the document it read and, on a shared store, the states the
 * change log still holds of that document after the revision asked for and before doc's:
 * history[0..n), oldest first, at most SYNC_WATCH_HISTORY, not always complete (n = 0 on a
 * store of one process, where the listener's own record serves). All borrowed for the call. */
typedef void (*sync_watch_fn)(void *ctx, const sync_doc_t *doc, const sync_doc_t *history,
                              size_t n);

#define SYNC_WATCH_HISTORY 128

/* Creates the engine on store s, creating tables and the default service (and the service
 * named by configured_service when it is an IS SID) on first use. NULL with em on failure. */
sync_engine_t *sync_engine_new(store_t *s, const char *account_sid, const char *configured_service,
                               errmsg_t *em);

/* Frees e (not the store). Accepts NULL. */
void sync_engine_free(sync_engine_t *e);

/* Sets the one change listener (the live-update hub, engine/live/hub.h), or removes it (fn
 * NULL): once this returns, the previous listener is never called again. On a shared store
 * this starts (or stops) the feeder thread that reads the change log from its current head
 * (see the file comment). TASSA_ESTORE / TASSA_EINTERNAL when the feeder cannot start (no
 * listener is then set). Main thread, before serving and after the writers stopped; not
 * from the listener. */
tassa_err sync_engine_set_listener(sync_engine_t *e, sync_listener_fn fn, void *ctx);

/* On a shared store with a listener: the seq of the change the listener is being handed, or
 * was handed last (set before the call, so a subscriber that reads it during the call knows
 * that change is not for it). -1 on a store of one process. Any thread. */
int64_t sync_engine_position(sync_engine_t *e);

/* Fetches document id like sync_doc_fetch, then calls fn(ctx, doc, history, n) at the place
 * in the listener's order that matches the read: after the listener has seen every change the
 * read saw and before it sees any later one. after >= 0 asks for the history after that
 * revision (sync_watch_fn); -1 for none. fn may run on another thread (the feeder's on a
 * shared store), must be quick and must not call the engine; the call returns after fn has
 * run. TASSA_ENOTFOUND (fn not called) when the document does not exist; TASSA_ESTORE when
 * the store failed; TASSA_EUNAVAIL when the listener is being removed. Not from the
 * listener. */
tassa_err sync_doc_watch(sync_engine_t *e, const char *service, const char *id, int64_t after,
                         sync_watch_fn fn, void *ctx, errmsg_t *em);

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
 * why in reason). Called with no lock held, possibly more than once for one apply (when
 * another writer changed the document between the read and the write), so it must depend only
 * on its arguments. The one name of the merge callback: the back ends and update_sync_doc take
 * the same type. */
typedef json_t *(*sync_merge_fn)(void *ctx, const json_t *current, char *reason, size_t reason_len);

/* Read-modify-write of the document with unique name `name`: a short critical section reads
 * it, fn decides outside every lock (no JSON is parsed or rendered under the store lock), and
 * a second one writes the result with a compare-and-set on the revision read (or an insert
 * when there was none), made durable with one group commit; when another writer came first it
 * reads and merges again, up to SYNC_APPLY_ATTEMPTS times (then TASSA_ECONFLICT). *changed
 * tells whether it wrote; an unchanged answer too waits until what it read is durable.
 * TASSA_EINVAL / TASSA_EDOCTOOBIG for bad data from fn. */
#define SYNC_APPLY_ATTEMPTS 32

tassa_err sync_doc_apply(sync_engine_t *e, const char *service, const char *name, sync_merge_fn fn,
                         void *ctx, bool *changed, char *reason, size_t reason_len, errmsg_t *em);

/* The result of an asynchronous write (sync_doc_*_async): err as the blocking call returns
 * it, doc the document as written (borrowed for the call; NULL unless err is TASSA_OK and
 * something was written), changed whether it wrote (apply may leave a document unchanged),
 * em the detail. Runs exactly once, on the engine's settle thread, after the change is
 * durable (or rolled back) and handed to the listener: it must be short and must not wait
 * for the engine (hand the result to another thread, e.g. http_deferred_ready). */
typedef void (*sync_doc_done_fn)(void *ctx, tassa_err err, const sync_doc_t *doc, bool changed,
                                 const errmsg_t *em);

/* sync_doc_create, sync_doc_update and sync_doc_apply with the same checks and results,
 * without waiting on the calling thread for the group commit (store_unlock_async): the
 * critical section runs on the calling thread, then done(done_ctx, ...) reports as above.
 * The strings, fn, ctx and reason are used only before the call returns (apply's merge runs
 * in the critical section, on the calling thread). sync_engine_free waits for every write
 * begun. */
void sync_doc_create_async(sync_engine_t *e, const char *service, const char *unique_name,
                           const char *data, long ttl, const char *created_by,
                           sync_doc_done_fn done, void *done_ctx);
void sync_doc_update_async(sync_engine_t *e, const char *service, const char *id, const char *data,
                           long ttl, const char *if_match, sync_doc_done_fn done, void *done_ctx);
void sync_doc_apply_async(sync_engine_t *e, const char *service, const char *name, sync_merge_fn fn,
                          void *ctx, char *reason, size_t reason_len, sync_doc_done_fn done,
                          void *done_ctx);

/* Deletes by SID or unique name; if_match as for update. TASSA_ENOTFOUND when absent. */
tassa_err sync_doc_delete(sync_engine_t *e, const char *service, const char *id,
                          const char *if_match, errmsg_t *em);

/* Lists documents in creation order: page (0-based) of page_size. *docs is a malloc'd array
 * of *n documents (free with sync_doc_list_free); *more says whether a next page exists. */
tassa_err sync_doc_list(sync_engine_t *e, const char *service, long page, long page_size,
                        sync_doc_t **docs, size_t *n, bool *more, errmsg_t *em);

/* A document permission (Twilio's Document Permission resource). */
typedef struct {
    char document_sid[SID_LEN + 1];
    char service_sid[SID_LEN + 1];
    char *identity; /* owned */
    bool read, write, manage;
} sync_perm_t;

#define SYNC_IDENTITY_MAX 256

/* Sets the service's AclEnabled. TASSA_ENOTFOUND for an unknown service. The listener hears
 * of it (SYNC_CHANGE_ACL). */
tassa_err sync_service_set_acl(sync_engine_t *e, const char *service, bool enabled, errmsg_t *em);

/* Sets the service's FriendlyName (1 to 64 characters). TASSA_ENOTFOUND, TASSA_EINVAL. */
tassa_err sync_service_set_name(sync_engine_t *e, const char *service, const char *name,
                                errmsg_t *em);

/* Creates or replaces identity's permissions on document doc_id (SID or unique name).
 * TASSA_ENOTFOUND for an unknown service or document, TASSA_EINVAL for an identity that is
 * empty, longer than SYNC_IDENTITY_MAX or has control characters. Fills out (clear it with
 * sync_perm_clear). The listener hears of it (SYNC_CHANGE_PERMISSION). */
tassa_err sync_perm_set(sync_engine_t *e, const char *service, const char *doc_id,
                        const char *identity, bool read, bool write, bool manage, sync_perm_t *out,
                        errmsg_t *em);

/* Fetches identity's permissions on doc_id. TASSA_ENOTFOUND when the document or the
 * permission does not exist. */
tassa_err sync_perm_fetch(sync_engine_t *e, const char *service, const char *doc_id,
                          const char *identity, sync_perm_t *out, errmsg_t *em);

/* Deletes identity's permissions on doc_id. TASSA_ENOTFOUND when there were none. */
tassa_err sync_perm_delete(sync_engine_t *e, const char *service, const char *doc_id,
                           const char *identity, errmsg_t *em);

/* Lists the permissions of doc_id by identity: page (0-based) of page_size, as for
 * sync_doc_list. Free with sync_perm_list_free. */
tassa_err sync_perm_list(sync_engine_t *e, const char *service, const char *doc_id, long page,
                         long page_size, sync_perm_t **perms, size_t *n, bool *more, errmsg_t *em);

/* May identity read document doc_id of service? *allowed is true when the service has ACL off
 * or identity has `read`; false when it has not or the document does not exist (a caller
 * cannot tell the two apart). TASSA_ENOTFOUND only for an unknown service. */
tassa_err sync_acl_can_read(sync_engine_t *e, const char *service, const char *doc_id,
                            const char *identity, bool *allowed);

/* The readers of document doc_sid (a SID) of service: *all = true when the service has ACL
 * off, else *readers is a malloc'd array of *n malloc'd identities with `read` (free with
 * sync_identities_free). */
tassa_err sync_acl_readers(sync_engine_t *e, const char *service, const char *doc_sid, bool *all,
                           char ***readers, size_t *n);

/* Frees an array from sync_acl_readers. Accepts NULL. */
void sync_identities_free(char **ids, size_t n);

/* Twilio's JSON for p (a new reference), with URLs under base_url. NULL on OOM. */
json_t *sync_perm_json(const sync_perm_t *p, const char *account_sid, const char *base_url);

/* Frees the identity of p (not p). Accepts NULL. */
void sync_perm_clear(sync_perm_t *p);

/* Frees an array from sync_perm_list. */
void sync_perm_list_free(sync_perm_t *perms, size_t n);

/* Frees the strings of d (not d itself). Accepts NULL. */
void sync_doc_clear(sync_doc_t *d);

/* Frees an array from sync_doc_list. */
void sync_doc_list_free(sync_doc_t *docs, size_t n);

/* Deep copy of src into dst. TASSA_ENOMEM on failure (dst then cleared). */
tassa_err sync_doc_copy(sync_doc_t *dst, const sync_doc_t *src);

/* sync_doc_text parsed (a new reference), for callers that add to it. NULL as sync_doc_text. */
json_t *sync_doc_json(const sync_doc_t *d, const char *account_sid, const char *base_url);

/* Twilio's JSON for d, with URLs under base_url, written straight into a buffer in the compact
 * form jansson dumps (tests/unit/test_sync_doc_text.c compares the two): d->data, stored in
 * its compact form, is spliced in as it is instead of parsed and dumped again. A malloc'd
 * string the caller frees; NULL on OOM or when a string of d is not valid UTF-8. Any
 * thread. */
char *sync_doc_text(const sync_doc_t *d, const char *account_sid, const char *base_url);

#endif
