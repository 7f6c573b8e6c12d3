/* fuzz_verify_token.c - libFuzzer driver: arbitrary bytes as a caller JWT (and as a Twilio
 * access token), which must be refused or accepted without crashing, leaking or reading past
 * the input. The same bytes as an identity go through the lean minter: a token is made
 * exactly when they are UTF-8 (jansson's reading), and it verifies back to the same identity,
 * so the minter's own JSON escaping is checked against jansson's parser. Build with cmake
 * -DTASSA_FUZZ=ON (clang), then run
 * ./fuzz_verify_token fuzz/corpus/verify_token */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/access_token.h"
#include "auth/verify_token.h"

#define FUZZ_NOW ((time_t)1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = malloc(size + 1);
    char *identity = NULL, *service_sid = NULL;
    errmsg_t em;

    if (token == NULL)
        return 0;
    memcpy(token, data, size);
    token[size] = '\0';
    (void)verify_token(token, "alice", "fuzz-secret", FUZZ_NOW, &em);
    if (access_token_verify(token, "fuzz-secret", FUZZ_NOW, &identity, &service_sid, &em) == 0) {
        free(identity);
        free(service_sid);
    }
    /* Lean minter round trip, with the bytes up to the first NUL as the identity. */
    access_token_opts_t o = {.account_sid = "AC00000000000000000000000000000001",
                             .api_key = "SK00000000000000000000000000000002",
                             .api_secret = "fuzz-secret",
                             .identity = token,
                             .sync_service_sid = "IS00000000000000000000000000000003",
                             .ttl = 60,
                             .now = FUZZ_NOW};
    json_t *probe = json_string(token); /* NULL exactly when jansson finds it is not UTF-8 */
    char *minted = token[0] ? access_token_sync(&o) : NULL;
    if (token[0] && (minted != NULL) != (probe != NULL))
        abort();
    if (minted) {
        identity = service_sid = NULL;
        if (access_token_verify(minted, "fuzz-secret", FUZZ_NOW, &identity, &service_sid, &em) !=
                0 ||
            strcmp(identity, token) != 0)
            abort();
        free(identity);
        free(service_sid);
    }
    free(minted);
    json_decref(probe);
    free(token);
    return 0;
}
