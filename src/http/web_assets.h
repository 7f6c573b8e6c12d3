/* web_assets.h - the web pages, scripts and styles compiled into the binary.
 *
 * The build turns every file of web/ into a byte array (cmake/embed_web.cmake writes
 * web_assets_data.c), so an installed or copied binary serves its pages with nothing beside
 * it. static_files.c serves these unless TASSA_WEB_DIR names a folder. Immutable: any thread.
 *
 * Layer: http.
 */
#ifndef TASSA_WEB_ASSETS_H
#define TASSA_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;          /* relative to web/: "index.html", "css/site.css" */
    const unsigned char *data; /* the bytes (a NUL follows them) */
    size_t len;
    const char *etag; /* quoted, from the SHA-256 of the bytes */
} web_asset_t;

/* The generated table and its length (web_assets_data.c). */
extern const web_asset_t web_assets_table[];
extern const size_t web_assets_count;

/* The asset at path (relative, no leading '/'), or NULL when there is none. Borrowed. */
const web_asset_t *web_assets_find(const char *path);

#endif
