/* paging.c - Twilio paging envelope; twilio-node follows meta.next_page_url verbatim.
 *
 * Every page URL is built in a growable buffer (base/buf.h) from its parts, so no filter,
 * however long, can push PageSize, Page or PageToken off its end (fuzz finding P1: a cut
 * next_page_url made twilio-node fetch page 0 for ever).
 *
 * Layer: http. */
#include "http/paging.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

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

char *paging_filters_query(const params_t *query)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; query && i < query->len; i++) {
        const param_t *q = &query->items[i];
        if (!strcmp(q->key, "PageSize") || !strcmp(q->key, "Page") || !strcmp(q->key, "PageToken"))
            continue;
        if (b.len)
            buf_adds(&b, "&");
        buf_add_encoded(&b, q->key);
        buf_adds(&b, "=");
        buf_add_encoded(&b, q->value);
    }
    return buf_take(&b); /* "" when nothing was added */
}

/* The URL of page n, malloc'd (NULL on OOM). */
static char *page_url(const char *list_url, const char *extra, long size, long n)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s?%s%sPageSize=%ld&Page=%ld&PageToken=PT%ld", list_url, extra ? extra : "",
               extra && *extra ? "&" : "", size, n, n);
    return buf_take(&b);
}

json_t *paging_envelope(const char *key, json_t *items, const paging_t *pg, int has_more,
                        const char *list_url, const char *extra_query)
{
    json_t *env = NULL;
    char *first = page_url(list_url, extra_query, pg->page_size, 0);
    char *self = page_url(list_url, extra_query, pg->page_size, pg->page);
    char *prev = pg->page > 0 ? page_url(list_url, extra_query, pg->page_size, pg->page - 1) : NULL;
    char *next = has_more ? page_url(list_url, extra_query, pg->page_size, pg->page + 1) : NULL;

    if (!first || !self || (pg->page > 0 && !prev) || (has_more && !next)) {
        json_decref(items); /* the reference is stolen even on failure */
        goto out;
    }
    env =
        json_pack("{s:o, s:{s:i, s:i, s:s, s:s?, s:s?, s:s, s:s}}", key, items, "meta", "page",
                  (json_int_t)pg->page, "page_size", (json_int_t)pg->page_size, "first_page_url",
                  first, "previous_page_url", prev, "next_page_url", next, "key", key, "url", self);
out:
    free(first);
    free(self);
    free(prev);
    free(next);
    return env;
}
