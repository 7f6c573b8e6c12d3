/* backend.c - what every back end shares.
 *
 * Layer: backend. */
#include "backend/backend.h"

void backend_free(backend_t *b)
{
    if (b)
        b->ops->destroy(b);
}

json_t *backend_task_attr(const json_t *task, const char *key)
{
    const char *text = json_string_value(json_object_get(task, "attributes"));
    json_t *attrs = text ? json_loads(text, 0, NULL) : NULL;
    json_t *v = json_incref(json_object_get(attrs, key));
    json_decref(attrs);
    return v;
}

task_rank_t backend_task_rank(const json_t *task, size_t idx)
{
    return (task_rank_t){.priority = json_integer_value(json_object_get(task, "priority")),
                         .age = json_integer_value(json_object_get(task, "age")),
                         .idx = idx};
}
