/* paging.h - Twilio's list paging: PageSize/Page parameters and the `meta` envelope.
 *
 * Layer: http. */
#ifndef TASSA_PAGING_H
#define TASSA_PAGING_H

#include <jansson.h>

#include "base/err.h"
#include "base/params.h"

typedef struct {
    long page; /* 0-based */
    long page_size;
} paging_t;

/* Reads PageSize (default 50, 1..max_size) and Page (default 0, 0..100000) from p.
 * TASSA_EINVAL with a detail for values out of range or not numbers. */
tassa_err paging_parse(const params_t *p, long max_size, paging_t *out, errmsg_t *em);

/* The request's filters for the page URLs: every pair of query but PageSize, Page and
 * PageToken, in order, as "key=value&..." with both sides percent-encoded (buf_add_encoded).
 * query may be NULL. Returns a malloc'd string ("" when there is no filter; the caller frees
 * it), never cut whatever its length; NULL on OOM. */
char *paging_filters_query(const params_t *query);

/* Wraps items (reference stolen, also on failure) as {key: items, meta: {...}} with absolute
 * page URLs built from list_url (e.g. "http://host/v1/Services/IS../Documents") and
 * extra_query (already encoded filters such as "AssignmentStatus=pending", e.g. from
 * paging_filters_query, or NULL). The URLs are never cut, whatever the lengths. NULL on OOM. */
json_t *paging_envelope(const char *key, json_t *items, const paging_t *pg, int has_more,
                        const char *list_url, const char *extra_query);

#endif
