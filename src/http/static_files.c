/* static_files.c - serves the web pages: built in (web_assets.h), or from TASSA_WEB_DIR.
 *
 * The pages are few and small. From TASSA_WEB_DIR each request resolves the directory, opens,
 * reads and sends the whole file: no cache to invalidate, and an edited page shows on the
 * next reload. Path
 * safety is checked twice: on the decoded segments (no `..`, no hidden names, no separators)
 * and on the real path, which must lie under the web directory's real path.
 *
 * Layer: http.
 */
#include "http/static_files.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "http/web_assets.h"

static const struct {
    const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *static_files_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof TYPES / sizeof TYPES[0]; i++) {
        if (!strcasecmp(dot, TYPES[i].ext))
            return TYPES[i].type;
    }
    return "application/octet-stream";
}

/* Is dir an existing directory? Writes its real path into out when it is. */
static bool real_dir(const char *dir, char *out, size_t n)
{
    char buf[PATH_MAX];
    struct stat st;
    if (!realpath(dir, buf) || stat(buf, &st) || !S_ISDIR(st.st_mode) || strlen(buf) >= n)
        return false;
    snprintf(out, n, "%s", buf);
    return true;
}

tassa_err static_files_root(const config_t *c, char *out, size_t n)
{
    if (c->web_dir)
        return real_dir(c->web_dir, out, n) ? TASSA_OK : TASSA_ENOTFOUND;
    if (real_dir("web", out, n))
        return TASSA_OK;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return TASSA_ENOTFOUND;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return TASSA_ENOTFOUND;
    *slash = '\0';
    char cand[PATH_MAX + 8];
    snprintf(cand, sizeof cand, "%s/../web", exe);
    return real_dir(cand, out, n) ? TASSA_OK : TASSA_ENOTFOUND;
}

/* A decoded path segment we are willing to look up: no hidden names (which also refuses `.`
 * and `..`), no separators, no control characters. */
static bool safe_segment(const char *seg)
{
    if (!seg || !*seg || seg[0] == '.' || strlen(seg) > 200)
        return false;
    for (const char *p = seg; *p; p++) {
        if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* 404 in the body shape the path calls for (Twilio's under /v1/, the functions' elsewhere). */
static void not_found(const http_req_t *req, http_resp_t *resp)
{
    char msg[256];
    snprintf(msg, sizeof msg, "The requested resource %.160s was not found", req->path);
    http_resp_error(req, resp, TASSA_ENOTFOUND, msg);
}

/* Reads the regular file fd of size bytes into a malloc'd buffer. NULL on failure. */
static char *read_all(int fd, size_t size)
{
    char *buf = malloc(size + 1);
    size_t got = 0;
    while (buf && got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)r;
    }
    if (buf)
        buf[size] = '\0';
    return buf;
}

/* Adds the headers every page gets. Returns true after turning resp into a 304 when the
 * client already holds this version (If-None-Match). */
static bool page_headers(const http_req_t *req, http_resp_t *resp, const char *etag)
{
    http_resp_header(resp, "Cache-Control", "no-cache");
    http_resp_header(resp, "ETag", etag);
    http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    http_resp_header(resp, "Referrer-Policy", "no-referrer");
    http_resp_header(resp, "Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                     /* the pages' SDKs talk to Twilio itself with TASSA_BACKEND=twilio */
                     "connect-src 'self' https://*.twilio.com wss://*.twilio.com; "
                     "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    const char *inm = http_req_header(req, "If-None-Match");
    if (!inm || strcmp(inm, etag))
        return false;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = 304;
    resp->content_type = NULL;
    return true;
}

/* Serves rel from the pages compiled into the binary (web_assets.h). */
static void serve_embedded(const http_req_t *req, http_resp_t *resp, const char *rel)
{
    const web_asset_t *a = web_assets_find(rel);
    if (!a) {
        not_found(req, resp);
        return;
    }
    if (page_headers(req, resp, a->etag))
        return;
    char *body = malloc(a->len + 1);
    if (!body) {
        http_resp_error(req, resp, TASSA_ENOMEM, NULL);
        return;
    }
    memcpy(body, a->data, a->len + 1);
    free(resp->body);
    resp->body = body;
    resp->body_len = a->len;
    resp->status = 200;
    resp->content_type = static_files_type(rel);
}

/* GET|HEAD /, /{}, /{}/{} */
static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    const config_t *config = ctx;
    char root[PATH_MAX], rel[PATH_MAX], full[PATH_MAX * 2 + 2], real[PATH_MAX];
    int fd = -1;
    size_t nargs = 0;
    rel[0] = '\0';
    /* As many arguments as the path has segments (the routes are all wildcards). */
    for (const char *p = req->path; *p; p++) {
        if (*p != '/' && (p == req->path || p[-1] == '/'))
            nargs++;
    }
    if (nargs > 2)
        nargs = 2;
    if (!strncmp(req->path, "/v1/", 4)) { /* the API's namespace: never a page */
        not_found(req, resp);
        goto out;
    }
    if (nargs == 0) {
        snprintf(rel, sizeof rel, "index.html");
    } else {
        for (size_t i = 0; i < nargs; i++) {
            if (!safe_segment(req->args[i])) {
                not_found(req, resp);
                goto out;
            }
            size_t used = strlen(rel);
            snprintf(rel + used, sizeof rel - used, "%s%s", i ? "/" : "", req->args[i]);
        }
    }
    if (!config->web_dir) { /* the pages built in, unless TASSA_WEB_DIR overrides them */
        serve_embedded(req, resp, rel);
        goto out;
    }
    if (static_files_root(config, root, sizeof root)) {
        log_warn("event=web_dir_missing hint=\"set TASSA_WEB_DIR\"");
        not_found(req, resp);
        goto out;
    }
    snprintf(full, sizeof full, "%s/%s", root, rel);
    size_t rootlen = strlen(root);
    struct stat st;
    if (!realpath(full, real) || strncmp(real, root, rootlen) != 0 || real[rootlen] != '/' ||
        (fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 || fstat(fd, &st) ||
        !S_ISREG(st.st_mode)) {
        not_found(req, resp);
        goto out;
    }
    if (st.st_size > STATIC_FILES_MAX_SIZE) {
        http_resp_error(req, resp, TASSA_EINTERNAL, "file too large to serve");
        goto out;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%lx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
    if (page_headers(req, resp, etag))
        goto out;
    char *body = read_all(fd, (size_t)st.st_size);
    if (!body) {
        http_resp_error(req, resp, TASSA_EINTERNAL, "cannot read the file");
        goto out;
    }
    free(resp->body);
    resp->body = body;
    resp->body_len = (size_t)st.st_size;
    resp->status = 200;
    resp->content_type = static_files_type(real);
out:
    if (fd >= 0)
        close(fd);
}

tassa_err static_files_register(http_server_t *http, const config_t *config)
{
    static const char *patterns[] = {"/", "/{}", "/{}/{}"};
    static const char *methods[] = {"GET", "HEAD"};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < 3; i++) {
            tassa_err err =
                http_server_route(http, methods[m], patterns[i], handle, (void *)config);
            if (err)
                return err;
        }
    }
    return TASSA_OK;
}
