/* workpool.h - a fixed pool of threads that run queued jobs, for work that may block (a
 * TaskRouter write waiting for its group commit) so that it never holds an HTTP thread.
 *
 * Jobs run in the order submitted, several at once (one per thread). The queue is bounded:
 * past it a submit is refused and the caller answers at once (503), so a burst cannot grow
 * memory without limit. Thread-safe: any thread may submit; create and free on one thread.
 *
 * Layer: base. */
#ifndef TASSA_WORKPOOL_H
#define TASSA_WORKPOOL_H

#include <stddef.h>

#include "base/err.h"

typedef struct workpool workpool_t;

/* What a job runs: on one of the pool's threads, which it may block. */
typedef void (*workpool_fn)(void *ctx);

/* Starts threads threads (at least 1) with room for max_queued waiting jobs. NULL when out of
 * memory or when no thread could start. name (at most 15 bytes) names the threads. */
workpool_t *workpool_new(int threads, size_t max_queued, const char *name);

/* Queues fn(ctx). TASSA_ELIMIT when the queue is full, TASSA_EUNAVAIL when the pool is
 * stopping, TASSA_ENOMEM: in every one of these fn never runs and ctx stays the caller's. */
tassa_err workpool_submit(workpool_t *p, workpool_fn fn, void *ctx);

/* Runs every job queued so far, then stops and joins the threads and frees p. Accepts NULL.
 * No submit may run concurrently with or after it. */
void workpool_free(workpool_t *p);

#endif
