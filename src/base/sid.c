/* sid.c - random identifiers and secrets from getrandom(2).
 *
 * Layer: base. */
#include "base/sid.h"

#include <ctype.h>
#include <string.h>
#include <sys/random.h>

tassa_err sid_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[64];
    size_t done = 0;
    while (done < nbytes) {
        size_t n = nbytes - done > sizeof buf ? sizeof buf : nbytes - done;
        if (getrandom(buf, n, 0) != (ssize_t)n)
            return TASSA_EINTERNAL;
        for (size_t i = 0; i < n; i++) {
            out[2 * (done + i)] = hex[buf[i] >> 4];
            out[2 * (done + i) + 1] = hex[buf[i] & 15];
        }
        done += n;
    }
    out[2 * nbytes] = '\0';
    return TASSA_OK;
}

tassa_err sid_new(const char *prefix, char out[SID_LEN + 1])
{
    out[0] = prefix[0];
    out[1] = prefix[1];
    return sid_random_hex(out + 2, 16);
}

bool sid_valid(const char *s, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (!s || strncmp(s, prefix, pl) != 0 || strlen(s) != pl + 32)
        return false;
    for (size_t i = pl; s[i]; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}
