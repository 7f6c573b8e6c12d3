/* queue_info.h - the seed's queueInfo: the `queue-status` Sync document, which lists the
 * waiting tasks and the eligible tellers.
 *
 * Document (DESIGN.md section 5): {"pendingTasks": [{"sid","topic","priority","age","queue",
 * "status"}], "eligibleTellers": [{"sid","name","activity"}], "pendingCount", "tellerCount",
 * "byQueue": {"<queue>": {"pending","longestWaitSeconds"}}, "lastUpdated"}.
 * Waiting tasks are those pending or reserved (a reserved customer still waits), in queue
 * order: priority descending, then age descending. Tellers are workers whose activity is
 * available, in-call or post-call (case-insensitive). The lists are cut to fit a Sync
 * document (16 KiB) and to at most max_entries; the counts always tell the whole truth.
 *
 * Refreshes are requested by events and coalesced: one background thread recomputes the
 * document at most once per interval however many requests arrive.
 *
 * Access (Sync ACL): the identities named in `readers` (TASSA_QUEUE_STATUS_READERS, such as
 * the dashboard) are granted `read` on queue-status once it exists, once per process (again
 * after a failure); nobody else's sync token may read it while the service has ACL on.
 *
 * Layer: helpers.
 */
#ifndef TASSA_QUEUE_INFO_H
#define TASSA_QUEUE_INFO_H

#include <jansson.h>

#include "backend/backend.h"

typedef struct queue_info queue_info_t;

/* Builds the queue-status data from the back end's tasks and workers (new reference in
 * *doc). Back-end errors as they come. Any thread. */
tassa_err queue_info_build(backend_t *b, int max_entries, json_t **doc, errmsg_t *em);

/* Builds the document and writes it (updateSyncDoc). Any thread. */
tassa_err queue_info_refresh(backend_t *b, int max_entries, errmsg_t *em);

/* Grants each identity of readers (a comma list; spaces around names ignored; NULL or ""
 * for none) read on queue-status through b. The first back-end error, after trying all. */
tassa_err queue_info_grant_readers(backend_t *b, const char *readers, errmsg_t *em);

/* Starts the refresher thread on b (borrowed; must outlive it). readers as for
 * queue_info_grant_readers (borrowed; must outlive the thread). NULL on failure. */
queue_info_t *queue_info_start(backend_t *b, int max_entries, int interval_ms, const char *readers);

/* Asks for a refresh soon; returns at once. Any thread. */
void queue_info_request(queue_info_t *q);

/* Stops the thread (after a last pending refresh) and frees q. Accepts NULL. */
void queue_info_stop(queue_info_t *q);

#endif
