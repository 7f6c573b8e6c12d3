/* taskrouter_api.h - the embedded TaskRouter REST API (/v1/Workspaces/...), wire-compatible with
 * Twilio's for the subset the engine implements (see model.h and stats.h).
 *
 * Layer: adapters.
 */
#ifndef TASSA_TR_API_H
#define TASSA_TR_API_H

#include "app.h"

/* Adds the TaskRouter routes to app->http (before http_server_start); handlers use app->tr
 * and app->config (Basic auth as Twilio's: API_KEY:API_SECRET or ACCOUNT_SID:AUTH_TOKEN).
 * Handlers run on the HTTP pool threads. TASSA_ELIMIT/TASSA_ENOMEM if the route table
 * cannot take them. */
tassa_err tr_api_register(app_t *app);

#endif
