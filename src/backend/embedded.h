/* embedded.h - the back end that calls tassa's own engines in-process (the default).
 *
 * Layer: backend. */
#ifndef TASSA_BACKEND_EMBEDDED_H
#define TASSA_BACKEND_EMBEDDED_H

#include "backend/backend.h"
#include "base/config.h"
#include "engine/sync/documents.h"
#include "engine/taskrouter/engine.h"

/* A back end on sync and tr (borrowed; they must outlive it; tr may be NULL: the TaskRouter
 * reads then fail with TASSA_EUNAVAIL). Sync documents live in config's SYNC_SERVICE_SID;
 * resources name config's ACCOUNT_SID and PORT (config borrowed, must outlive it). NULL on
 * OOM. */
backend_t *backend_embedded_new(const config_t *config, sync_engine_t *sync, tr_engine_t *tr);

#endif
