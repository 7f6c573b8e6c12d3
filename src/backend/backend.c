/* backend.c - what every back end shares.
 *
 * Layer: backend. */
#include "backend/backend.h"

void backend_free(backend_t *b)
{
    if (b)
        b->ops->destroy(b);
}
