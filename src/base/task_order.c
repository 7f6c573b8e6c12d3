/* task_order.c - the waiting statuses and the queue order (see task_order.h).
 *
 * Layer: base. */
#include "base/task_order.h"

#include <string.h>

const char *const task_waiting_statuses[TASK_WAITING_N] = {"pending", "reserved"};

bool task_status_waiting(const char *status)
{
    for (size_t i = 0; status && i < TASK_WAITING_N; i++) {
        if (strcmp(status, task_waiting_statuses[i]) == 0)
            return true;
    }
    return false;
}

int task_rank_cmp(const void *a, const void *b)
{
    const task_rank_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->age != y->age)
        return x->age > y->age ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}
