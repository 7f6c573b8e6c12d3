/* fuzz_paging.c - libFuzzer driver for list paging (src/http/paging.c): the PageSize and Page
 * parameters, and the page URLs with their PageToken that clients such as twilio-node follow
 * verbatim.
 *
 * Input: a first byte choosing the page size limit, then a form-encoded query
 * ("PageSize=20&Page=3&AssignmentStatus=pending"). Invariants:
 *   - accepted paging lies in range (1..limit, 0..100000), absent values take the defaults;
 *   - (issue 9 defect 10, once fixed) only strict decimals are accepted;
 *   - round trip: the first, previous, self and next page URLs of the envelope, read back as
 *     a query, give pages 0, page-1, page and page+1 with the same page size, PageToken
 *     PT<page>, and every filter of the request unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/paging.h"

#define LIST_URL "http://127.0.0.1:3000/v1/Workspaces/WS0123456789abcdef0123456789abcdef/Tasks"

static bool strict_or_absent(const params_t *p, const char *key)
{
    const char *v = params_get_nonempty(p, key);
    return !v || fuzz_is_decimal(v, strlen(v));
}

/* Reads url's query back and checks it names page n of size and carries the filters. */
static void check_url(const char *url, const params_t *filters, const char *extra,
                      const paging_t *pg, long n, long max)
{
    const char *q;
    params_t *p = params_new();
    paging_t back;
    char token[32];

    FUZZ_CHECK(url && !strncmp(url, LIST_URL "?", strlen(LIST_URL) + 1), "page URL %s", url);
    q = url + strlen(LIST_URL) + 1;
    FUZZ_CHECK(p && params_parse_form(p, q, strlen(q), NULL) == TASSA_OK, "page URL %s unreadable",
               url);
    FUZZ_CHECK(paging_parse(p, max, &back, NULL) == TASSA_OK, "page URL %s refused", url);
    FUZZ_CHECK(back.page == n && back.page_size == pg->page_size,
               "page URL %s reads as page %ld size %ld, not %ld size %ld", url, back.page,
               back.page_size, n, pg->page_size);
    snprintf(token, sizeof token, "PT%ld", n);
    FUZZ_CHECK(params_get(p, "PageToken") && !strcmp(params_get(p, "PageToken"), token),
               "page URL %s has no PageToken %s", url, token);
    for (size_t i = 0; i < filters->len; i++) {
        const char *k = filters->items[i].key;
        FUZZ_CHECK(params_count(p, k) >= 1, "filter %s lost in %s (extra %s)", k, url, extra);
    }
    params_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    params_t *p = params_new(), *filters = params_new();
    paging_t pg;
    long max;
    tassa_err err;
    char extra[1024];
    size_t used = 0;
    bool dropped = false;
    json_t *env = NULL;

    if (!p || !filters || size < 1)
        goto out;
    max = data[0] % 2 ? 1000 : 50;
    if (params_parse_form(p, (const char *)data + 1, size - 1, NULL) != TASSA_OK)
        goto out;
    err = paging_parse(p, max, &pg, NULL);
    if (err) {
        FUZZ_CHECK(err == TASSA_EINVAL, "paging error %d", err);
        goto out;
    }
    FUZZ_CHECK(pg.page_size >= 1 && pg.page_size <= max, "page size %ld", pg.page_size);
    FUZZ_CHECK(pg.page >= 0 && pg.page <= 100000, "page %ld", pg.page);
    if (!params_get_nonempty(p, "PageSize"))
        FUZZ_CHECK(pg.page_size == 50, "default page size %ld", pg.page_size);
    FUZZ_CHECK(FUZZ_KNOWN_LOOSE_NUMBERS ||
                   (strict_or_absent(p, "PageSize") && strict_or_absent(p, "Page")),
               "loose paging number accepted");
    /* The filters as the API re-encodes them (paging_filters_query), written from its
     * contract; the driver keeps only what fits its own buffer. */
    extra[0] = '\0';
    for (size_t i = 0; i < p->len; i++) {
        const param_t *q = &p->items[i];
        if (!strcmp(q->key, "PageSize") || !strcmp(q->key, "Page") || !strcmp(q->key, "PageToken"))
            continue;
        char *k = fuzz_pct(q->key, strlen(q->key)), *v = fuzz_pct(q->value, strlen(q->value));
        size_t need = strlen(k) + strlen(v) + 2;
        if (used + need < sizeof extra) {
            used += (size_t)snprintf(extra + used, sizeof extra - used, "%s%s=%s", used ? "&" : "",
                                     k, v);
            params_add(filters, q->key, strlen(q->key), q->value, strlen(q->value), NULL);
        } else {
            dropped = true;
        }
        free(k);
        free(v);
    }
    if (!dropped) {
        char *got = paging_filters_query(p);
        FUZZ_CHECK(got && !strcmp(got, extra), "filters query %s, reference %s", got, extra);
        free(got);
    }
    /* paging.c built each URL in 1024 bytes (see fuzz/README.md, finding P1, fixed) */
    if (FUZZ_KNOWN_PAGE_URL_CUT && strlen(LIST_URL) + used + 64 >= 1024)
        goto out;
    env = paging_envelope("tasks", json_array(), &pg, 1, LIST_URL, extra);
    FUZZ_CHECK(env != NULL, "no envelope");
    {
        const json_t *meta = json_object_get(env, "meta");
        const char *prev = json_string_value(json_object_get(meta, "previous_page_url"));
        FUZZ_CHECK(json_is_array(json_object_get(env, "tasks")), "items lost");
        check_url(json_string_value(json_object_get(meta, "first_page_url")), filters, extra, &pg,
                  0, max);
        check_url(json_string_value(json_object_get(meta, "url")), filters, extra, &pg, pg.page,
                  max);
        if (pg.page < 100000)
            check_url(json_string_value(json_object_get(meta, "next_page_url")), filters, extra,
                      &pg, pg.page + 1, max);
        FUZZ_CHECK((pg.page == 0) == (prev == NULL), "previous page URL on page %ld", pg.page);
        if (prev)
            check_url(prev, filters, extra, &pg, pg.page - 1, max);
    }
out:
    json_decref(env);
    params_free(p);
    params_free(filters);
    return 0;
}
