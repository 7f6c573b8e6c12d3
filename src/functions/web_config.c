/* web_config.c - /config.json: the back end, its sids and the SDK endpoints for the pages.
 *
 * Layer: functions. */
#include "functions/web_config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#define HOST_MAX 256

/* Whether host is a plausible Host header: non-empty, short, [A-Za-z0-9.:[]-] only. */
static bool host_ok(const char *host)
{
    size_t n = host ? strlen(host) : 0;
    if (n == 0 || n >= HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = host[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == ':' || ch == '-' || ch == '[' ||
                  ch == ']';
        if (!ok)
            return false;
    }
    return true;
}

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const config_t *c = ctx;
    json_t *sync = NULL, *tr = NULL;
    if (c->backend == BACKEND_TWILIO) {
        sync = json_pack("{s:n, s:n}", "twilsockUri", "cdsUri");
        tr = json_pack("{s:n, s:n}", "ebServer", "wsServer");
    } else {
        /* The base: PUBLIC_URL without a trailing slash, else http://Host. */
        char http_base[HOST_MAX + 16], ws_base[HOST_MAX + 16];
        const char *pub = c->public_url;
        bool tls = false;
        const char *host = NULL;
        if (pub && *pub) {
            tls = strncmp(pub, "https://", 8) == 0;
            host = pub + (tls ? 8 : strncmp(pub, "http://", 7) == 0 ? 7 : 0);
        } else {
            host = http_req_header(req, "Host");
        }
        size_t hl = host ? strcspn(host, "/") : 0; /* PUBLIC_URL may carry a path: not used */
        char h[HOST_MAX];
        snprintf(h, sizeof h, "%.*s", (int)(hl < sizeof h ? hl : 0), host ? host : "");
        if (!host_ok(h)) {
            http_resp_json(resp, 400,
                           json_pack("{s:i, s:s, s:s, s:i}", "code", 20001, "message",
                                     "the Host header is missing or malformed", "more_info",
                                     "https://www.twilio.com/docs/errors/20001", "status", 400));
            return;
        }
        snprintf(http_base, sizeof http_base, "%s://%s", tls ? "https" : "http", h);
        snprintf(ws_base, sizeof ws_base, "%s://%s", tls ? "wss" : "ws", h);
        char tws[HOST_MAX + 64], eb[HOST_MAX + 64], wss[HOST_MAX + 64];
        snprintf(tws, sizeof tws, "%s/v3/wsconnect", ws_base);
        snprintf(eb, sizeof eb, "%s/v1/wschannels", http_base);
        snprintf(wss, sizeof wss, "%s/v1/wschannels", ws_base);
        sync = json_pack("{s:s, s:s}", "twilsockUri", tws, "cdsUri", http_base);
        tr = json_pack("{s:s, s:s}", "ebServer", eb, "wsServer", wss);
    }
    /* json_pack's "o" steals sync and tr (also when it fails). */
    json_t *body = json_pack("{s:s, s:s?, s:s?, s:o?, s:o?}", "backend",
                             c->backend == BACKEND_TWILIO ? "twilio" : "embedded", "syncServiceSid",
                             c->sync_service_sid, "workspaceSid", c->workspace_sid, "sync", sync,
                             "taskrouter", tr);
    http_resp_json(resp, 200, body);
    http_resp_header(resp, "Cache-Control", "no-store");
}

tassa_err web_config_register(http_server_t *http, const config_t *config)
{
    return http_server_route(http, "GET", "/config.json", handle, (void *)config);
}
