/* web_assets.c - lookup in the table of pages compiled into the binary.
 *
 * Layer: http. */
#include "http/web_assets.h"

#include <string.h>

const web_asset_t *web_assets_find(const char *path)
{
    /* a handful of files: a linear scan is as fast as anything */
    for (size_t i = 0; i < web_assets_count; i++) {
        if (!strcmp(web_assets_table[i].path, path))
            return &web_assets_table[i];
    }
    return NULL;
}
