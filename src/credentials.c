/* credentials.c - generate-once credentials for the embedded back end.
 *
 * Layer: app. */
#include "credentials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sid.h"

tassa_err credentials_fill(config_t *c, store_t *s, bool *generated, errmsg_t *em)
{
    struct {
        const char *key, *prefix;
        size_t hex_bytes;
        char **slot;
    } creds[] = {
        {"cred_account_sid", "AC", 16, &c->account_sid},
        {"cred_api_key", "SK", 16, &c->api_key},
        {"cred_api_secret", "", 16, &c->api_secret},
        {"cred_auth_token", "", 16, &c->auth_token},
        {"cred_jwt_secret", "", 32, &c->jwt_secret},
    };
    if (generated)
        *generated = false;
    for (size_t i = 0; i < sizeof creds / sizeof creds[0]; i++) {
        if (*creds[i].slot)
            continue;
        char *stored = NULL;
        tassa_err err = store_meta_get(s, creds[i].key, &stored);
        if (err == TASSA_ENOTFOUND) {
            char value[80];
            size_t pl = strlen(creds[i].prefix);
            memcpy(value, creds[i].prefix, pl);
            if (sid_random_hex(value + pl, creds[i].hex_bytes) ||
                store_meta_claim(s, creds[i].key, value, &stored))
                return err_set(em, TASSA_ESTORE, "cannot store generated credentials");
            if (generated && strcmp(stored, value) == 0)
                *generated = true; /* (else another node generated them first) */
            err = config_fill_secret(creds[i].slot, stored);
        } else if (err == TASSA_OK) {
            err = config_fill_secret(creds[i].slot, stored);
        }
        free(stored);
        if (err)
            return err_set(em, err, "cannot read credentials from the data file");
    }
    return TASSA_OK;
}
