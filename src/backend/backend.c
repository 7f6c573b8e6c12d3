/* backend.c - what every back end shares. */
#include "backend/backend.h"

void backend_free(backend_t *b)
{
    if (b)
        b->ops->destroy(b);
}
