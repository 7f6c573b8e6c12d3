/* fuzz_twilsock.c - libFuzzer driver for twilsock V3.0 frames (twilsock_parse and
 * twilsock_build in src/adapters/twilsock.c), the bytes a twilio-sync client sends in each
 * WebSocket message to /v3/wsconnect.
 *
 * Input: one message. Invariants: a refused frame leaves no header; an accepted one has an
 * object header with a string method, and its payload lies inside the input with exactly
 * payload_size bytes; building the frame again from its header and payload and parsing that
 * gives the same method and the same payload (round trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/twilsock.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    twilsock_frame_t f, g;
    errmsg_t em = {{0}};
    tassa_err err = twilsock_parse(data, size, &f, &em);
    if (err) {
        FUZZ_CHECK(f.header == NULL, "refused frame left a header");
        FUZZ_CHECK(err == TASSA_EINVAL || err == TASSA_ENOMEM, "error %d", err);
        return 0;
    }
    const char *method = json_string_value(json_object_get(f.header, "method"));
    FUZZ_CHECK(json_is_object(f.header) && method, "accepted frame without a method");
    FUZZ_CHECK(!f.payload_len || (f.payload >= data && f.payload + f.payload_len <= data + size),
               "payload outside the input");
    size_t n;
    uint8_t *again = twilsock_build(f.header, f.payload, f.payload_len, &n);
    FUZZ_CHECK(again != NULL, "build failed");
    FUZZ_CHECK(twilsock_parse(again, n, &g, &em) == TASSA_OK, "rebuilt frame refused: %s", em.text);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(g.header, "method")), method) == 0,
               "method changed");
    FUZZ_CHECK(g.payload_len == f.payload_len &&
                   (!g.payload_len || memcmp(g.payload, f.payload, g.payload_len) == 0),
               "payload changed");
    json_decref(g.header);
    json_decref(f.header);
    free(again);
    return 0;
}
