/* embedded.h - the back end that calls tassa's own engines in-process (the default).
 *
 * Layer: backend. */
#ifndef TASSA_BACKEND_EMBEDDED_H
#define TASSA_BACKEND_EMBEDDED_H

#include "app.h"
#include "backend/backend.h"

/* A back end on app->sync and app->tr (borrowed; they must outlive it). Sync documents live in
 * the configured SYNC_SERVICE_SID. NULL on OOM. */
backend_t *backend_embedded_new(app_t *app);

#endif
