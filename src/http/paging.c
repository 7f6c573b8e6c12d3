/* paging.c - Twilio paging envelope; twilio-node follows meta.next_page_url verbatim.
 *
 * Layer: http. */
#include "http/paging.h"

#include <stdio.h>
#include <stdlib.h>

/* Reads an optional integer with the one strict parser (params_parse_long). */
static tassa_err read_long(const params_t *p, const char *name, long def, long lo, long hi,
                           long *out, errmsg_t *em)
{
    *out = def;
    return params_get_long(p, name, lo, hi, out, em);
}

tassa_err paging_parse(const params_t *p, long max_size, paging_t *out, errmsg_t *em)
{
    tassa_err err =
        read_long(p, "PageSize", 50 < max_size ? 50 : max_size, 1, max_size, &out->page_size, em);
    if (!err)
        err = read_long(p, "Page", 0, 0, 100000, &out->page, em);
    return err;
}

/* Writes the URL of page n into buf. */
static void page_url(char *buf, size_t len, const char *list_url, const char *extra, long size,
                     long n)
{
    snprintf(buf, len, "%s?%s%sPageSize=%ld&Page=%ld&PageToken=PT%ld", list_url, extra ? extra : "",
             extra && *extra ? "&" : "", size, n, n);
}

json_t *paging_envelope(const char *key, json_t *items, const paging_t *pg, int has_more,
                        const char *list_url, const char *extra_query)
{
    char first[1024], prev[1024], next[1024], self[1024];
    page_url(first, sizeof first, list_url, extra_query, pg->page_size, 0);
    page_url(self, sizeof self, list_url, extra_query, pg->page_size, pg->page);
    page_url(prev, sizeof prev, list_url, extra_query, pg->page_size, pg->page - 1);
    page_url(next, sizeof next, list_url, extra_query, pg->page_size, pg->page + 1);
    return json_pack("{s:o, s:{s:i, s:i, s:s, s:s?, s:s?, s:s, s:s}}", key, items, "meta", "page",
                     (json_int_t)pg->page, "page_size", (json_int_t)pg->page_size, "first_page_url",
                     first, "previous_page_url", pg->page > 0 ? prev : NULL, "next_page_url",
                     has_more ? next : NULL, "key", key, "url", self);
}
