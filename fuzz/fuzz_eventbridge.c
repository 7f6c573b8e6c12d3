/* fuzz_eventbridge.c - libFuzzer driver for the TaskRouter event bridge's envelope
 * (eventbridge_parse and eventbridge_params in src/adapters/eventbridge.c), the body a
 * twilio-taskrouter Worker POSTs to /v1/wschannels.
 *
 * Input: one body. Invariants: the result is OK or EINVAL / EUNAUTH / ENOMEM; a refusal leaves
 * the request zeroed; an accepted request has a url of 1..EVENTBRIDGE_MAX_URL bytes with no
 * NUL, a method GET or POST, a non-empty token and an object params; its params convert into
 * form fields (or are refused with EINVAL, never half-converted silently): every non-null
 * member is one field, a string member as it is, any other as its compact JSON text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/eventbridge.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eventbridge_request_t r;
    errmsg_t em = {{0}};
    tassa_err err = eventbridge_parse((const char *)data, size, &r, &em);
    if (err) {
        FUZZ_CHECK(err == TASSA_EINVAL || err == TASSA_EUNAUTH || err == TASSA_ENOMEM, "error %d",
                   err);
        FUZZ_CHECK(!r.url && !r.method && !r.token && !r.params, "refusal left a request");
        return 0;
    }
    size_t ulen = strlen(r.url);
    FUZZ_CHECK(ulen >= 1 && ulen <= EVENTBRIDGE_MAX_URL, "url length %zu", ulen);
    FUZZ_CHECK(!strcmp(r.method, "GET") || !strcmp(r.method, "POST"), "method %s", r.method);
    FUZZ_CHECK(*r.token, "empty token accepted");
    FUZZ_CHECK(json_is_object(r.params), "params not an object");
    params_t *p = params_new();
    FUZZ_CHECK(p != NULL, "out of memory");
    err = eventbridge_params(r.params, p, &em);
    FUZZ_CHECK(err == TASSA_OK || err == TASSA_EINVAL || err == TASSA_ENOMEM, "params error %d",
               err);
    if (!err) {
        size_t n = 0, i = 0;
        const char *k;
        json_t *v;
        json_object_foreach(r.params, k, v)
        {
            if (json_is_null(v))
                continue;
            n++;
            FUZZ_CHECK(i < p->len && !strcmp(p->items[i].key, k), "field %zu is not %s", i, k);
            char *want = json_is_string(v) ? strdup(json_string_value(v))
                                           : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            FUZZ_CHECK(want && !strcmp(p->items[i].value, want), "field %s changed", k);
            free(want);
            i++;
        }
        FUZZ_CHECK(n == p->len, "%zu fields for %zu members", p->len, n);
    }
    params_free(p);
    eventbridge_request_clear(&r);
    return 0;
}
