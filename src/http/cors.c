/* cors.c - CORS headers and preflight answers for the seed's browser-facing functions.
 *
 * Layer: http. */
#include "http/cors.h"

#include <string.h>

const char *cors_allow_origin(const char *origin, const char *allowed)
{
    if (!allowed || strcmp(allowed, "*") == 0)
        return "*";
    if (!origin || !*origin)
        return NULL;
    size_t olen = strlen(origin);
    const char *p = allowed;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        if (len == olen && strncmp(p, origin, len) == 0)
            return origin;
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}

bool cors_apply(const http_req_t *req, http_resp_t *resp, const char *allowed)
{
    const char *value = cors_allow_origin(http_req_header(req, "Origin"), allowed);
    if (value) {
        http_resp_header(resp, "Access-Control-Allow-Origin", value);
        http_resp_header(resp, "Access-Control-Allow-Methods", "OPTIONS, POST, GET");
        http_resp_header(resp, "Access-Control-Allow-Headers", "Content-Type, Authorization");
        http_resp_header(resp, "Access-Control-Max-Age", "600");
    }
    if (strcmp(value ? value : "", "*") != 0)
        http_resp_header(resp, "Vary", "Origin");
    if (strcmp(req->method, "OPTIONS") != 0)
        return false;
    resp->status = 204;
    resp->content_type = NULL;
    return true;
}
