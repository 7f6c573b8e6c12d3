/* task_order.h - the seed's two rules about waiting customers, defined once: which task
 * statuses mean "still waiting", and the order of a queue.
 *
 * Both back ends, the queue-status helper, get-queue-position and the embedded TaskRouter's
 * SQL use these, so that the dashboard, a customer's place in line and the engine's own
 * matching can never disagree.
 *
 * Layer: base. */
#ifndef TASSA_TASK_ORDER_H
#define TASSA_TASK_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The waiting statuses: a task that is pending, or reserved while its teller's phone rings.
 * TASK_WAITING_SQL is the same list as an SQL IN list. */
#define TASK_WAITING_N   2
#define TASK_WAITING_SQL "('pending', 'reserved')"
extern const char *const task_waiting_statuses[TASK_WAITING_N];

/* True when status (may be NULL: false) is one of the waiting statuses. Any thread. */
bool task_status_waiting(const char *status);

/* One task's place in queue order: priority (higher first), then age in seconds (older
 * first), then its index in the back end's list (creation order), since ages have whole
 * seconds only. */
typedef struct {
    int64_t priority;
    int64_t age;
    size_t idx;
} task_rank_t;

/* Queue order as a qsort comparator over task_rank_t: negative when a goes first. */
int task_rank_cmp(const void *a, const void *b);

#endif
