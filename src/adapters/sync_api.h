/* sync_api.h - the embedded Sync REST API (/v1/Services/...), wire-compatible with Twilio's.
 *
 * Layer: adapters. */
#ifndef TASSA_SYNC_API_H
#define TASSA_SYNC_API_H

#include "app.h"

/* Adds the Sync routes to app->http; handlers use app->sync and app->config.
 * TASSA_ELIMIT/TASSA_ENOMEM if the route table cannot take them. */
tassa_err sync_api_register(app_t *app);

#endif
