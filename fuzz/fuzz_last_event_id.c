/* fuzz_last_event_id.c - libFuzzer driver for the resume point of live streams
 * (streams_parse_last_id in src/adapters/streams.c: the Last-Event-ID header and the
 * ?lastEventId= parameter).
 *
 * Input: the header value (cut at the first NUL, as libmicrohttpd hands it over). Invariants:
 * the answer is -1 or a non-negative number; a number comes back from its own decimal form
 * unchanged; every strict decimal that fits in 63 bits is read as itself; and (issue 9
 * defect 10, once fixed) nothing but a strict decimal is accepted. */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/streams.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size + 1), again[32];
    int64_t n;
    size_t len;

    if (!v)
        return 0;
    memcpy(v, data, size);
    v[size] = '\0';
    len = strlen(v);
    n = streams_parse_last_id(v);
    FUZZ_CHECK(n >= -1, "resume point %" PRId64, n);
    if (n >= 0) {
        FUZZ_CHECK(FUZZ_KNOWN_LOOSE_NUMBERS || fuzz_is_decimal(v, len),
                   "loose resume point \"%s\" accepted", v);
        snprintf(again, sizeof again, "%" PRId64, n);
        FUZZ_CHECK(streams_parse_last_id(again) == n, "%s does not read back", again);
    }
    if (fuzz_is_decimal(v, len) && len <= 18)
        FUZZ_CHECK(n == (int64_t)strtoll(v, NULL, 10), "decimal \"%s\" read as %" PRId64, v, n);
    FUZZ_CHECK(streams_parse_last_id(NULL) == -1 && streams_parse_last_id("") == -1,
               "absent resume point");
    free(v);
    return 0;
}
