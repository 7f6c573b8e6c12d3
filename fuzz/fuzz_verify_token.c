/* fuzz_verify_token.c - libFuzzer driver: arbitrary bytes as a caller JWT (and as a Twilio
 * access token), which must be refused or accepted without crashing, leaking or reading past
 * the input. Build with cmake -DTASSA_FUZZ=ON (clang), then run
 * ./fuzz_verify_token fuzz/corpus/verify_token */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    free(token);
    return 0;
}
