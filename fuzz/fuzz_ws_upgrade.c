/* fuzz_ws_upgrade.c - libFuzzer driver for the WebSocket upgrade checks (ws_check_upgrade in
 * src/http/ws.c): the method, Upgrade, Connection, Sec-WebSocket-Version and Sec-WebSocket-Key
 * headers of a request to a WebSocket route.
 *
 * Input: the five values separated by '\n' (each cut at its first NUL, as libmicrohttpd hands
 * headers over; an empty one stands for an absent header). Invariants: the answer is OK,
 * EINVAL or ECONFLICT; OK only for GET, version "13" and a 24-character key, with a
 * 28-character accept value that depends only on the key; a refusal leaves accept empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[5];
    size_t lens[5];
    char *copy = fuzz_split(data, size, '\n', 5, parts, lens);
    if (!copy)
        return 0;
    const char *v[5];
    for (int i = 0; i < 5; i++)
        v[i] = *parts[i] ? parts[i] : NULL;
    char accept[WS_ACCEPT_LEN + 1], again[WS_ACCEPT_LEN + 1];
    errmsg_t em = {{0}};
    tassa_err err = ws_check_upgrade(v[0], v[1], v[2], v[3], v[4], accept, &em);
    FUZZ_CHECK(err == TASSA_OK || err == TASSA_EINVAL || err == TASSA_ECONFLICT, "error %d", err);
    if (err) {
        FUZZ_CHECK(accept[0] == '\0', "refusal left an accept value");
    } else {
        FUZZ_CHECK(v[0] && !strcmp(v[0], "GET"), "accepted method %s", v[0]);
        FUZZ_CHECK(v[3] && !strcmp(v[3], "13"), "accepted version %s", v[3]);
        FUZZ_CHECK(v[4] && strlen(v[4]) == 24, "accepted key of length %zu", strlen(v[4]));
        FUZZ_CHECK(strlen(accept) == WS_ACCEPT_LEN, "accept of length %zu", strlen(accept));
        FUZZ_CHECK(ws_check_upgrade("GET", "websocket", "Upgrade", "13", v[4], again, &em) ==
                           TASSA_OK &&
                       !strcmp(again, accept),
                   "accept depends on more than the key");
    }
    free(copy);
    return 0;
}
