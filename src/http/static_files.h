/* static_files.h - the web pages (queue dashboard, customer status page).
 *
 * GET and HEAD of `/` (index.html) and of files one or two segments deep (`/app.js`,
 * `/css/site.css`): the copies of web/ compiled into the binary (web_assets.h), or when
 * config->web_dir is set the files of that directory. Content type by extension,
 * `Cache-Control: no-cache` with an ETag (304 on If-None-Match), a restrictive
 * Content-Security-Policy, and a JSON 404 for anything missing. Paths with `..`, `.` segments,
 * a backslash, a NUL or a hidden name are refused, and the resolved real path must stay inside
 * the web directory (no escape through symbolic links). Handlers are stateless: any pool
 * thread may run them.
 *
 * Layer: http.
 */
#ifndef TASSA_HTTP_STATIC_FILES_H
#define TASSA_HTTP_STATIC_FILES_H

#include "base/config.h"
#include "base/err.h"
#include "http/server.h"

#define STATIC_FILES_MAX_SIZE (4 * 1024 * 1024) /* larger files are refused (500) */

/* Adds the catch-all page routes (`/`, `/{}`, `/{}/{}` for GET and HEAD) to http, serving
 * config's web_dir (or the built-in pages). config is borrowed and must outlive the server.
 * Register LAST: routes match in the order added, so every API route must come first.
 * TASSA_ELIMIT / TASSA_ENOMEM when the route table cannot take them. */
tassa_err static_files_register(http_server_t *http, const config_t *config);

/* Writes the web directory to use (a real path, no trailing slash) into out (size n).
 * TASSA_ENOTFOUND when no candidate directory exists. Any thread. */
tassa_err static_files_root(const config_t *c, char *out, size_t n);

/* The Content-Type for a file name by its extension ("application/octet-stream" when
 * unknown). A static string. */
const char *static_files_type(const char *name);

#endif
