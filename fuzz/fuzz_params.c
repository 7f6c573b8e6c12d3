/* fuzz_params.c - libFuzzer target: request bodies as form and as JSON, and query pieces. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    params_t *p = params_new();
    if (!p)
        return 0;
    params_parse_form(p, (const char *)data, size, NULL);
    params_parse_json(p, (const char *)data, size, NULL);
    params_parse_query(p, (const char *)data, size, NULL);
    /* Every stored pair must be readable back. */
    for (size_t i = 0; i < p->len; i++) {
        if (!params_get(p, p->items[i].key))
            abort();
    }
    params_free(p);
    return 0;
}
