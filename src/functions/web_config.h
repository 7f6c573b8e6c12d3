/* web_config.h - GET /config.json: what the web pages need to point the official SDKs at the
 * right back end, so that no page hard-codes a URL.
 *
 * Answers (no authentication: nothing in it is secret; Cache-Control: no-store)
 *   {"backend": "embedded" | "twilio",
 *    "syncServiceSid", "workspaceSid" (null when unknown),
 *    "sync":       {"twilsockUri", "cdsUri"}     for new SyncClient(token, {twilsock: {uri},
 *                                                  cdsUri}),
 *    "taskrouter": {"ebServer", "wsServer"}      for new Worker(token, {ebServer, wsServer})}
 * With the embedded back end the URLs are tassa's own (ws://HOST/v3/wsconnect, http://HOST,
 * http://HOST/v1/wschannels, ws://HOST/v1/wschannels), HOST being PUBLIC_URL's when it is set
 * (https gives wss) and else the request's Host header. With TASSA_BACKEND=twilio every URL is
 * null: the SDKs' own defaults, real Twilio. A Host header with characters outside
 * [A-Za-z0-9.:[]-] is refused (400) rather than reflected.
 *
 * Layer: functions.
 */
#ifndef TASSA_WEB_CONFIG_H
#define TASSA_WEB_CONFIG_H

#include "base/config.h"
#include "http/server.h"

/* Adds GET /config.json to http. config (borrowed) must outlive the server. Errors of
 * http_server_routes. */
tassa_err web_config_register(http_server_t *http, const config_t *config);

#endif
