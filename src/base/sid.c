/* sid.c - time-ordered random identifiers, and random secrets, from getrandom(2).
 *
 * Layer: base. */
#include "base/sid.h"

#include <ctype.h>
#include <string.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

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
    static const char hex[] = "0123456789abcdef";
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    out[0] = prefix[0];
    out[1] = prefix[1];
    for (int i = 11; i >= 0; i--, ms >>= 4) /* 48 bits of milliseconds, big end first */
        out[2 + i] = hex[ms & 15];
    return sid_random_hex(out + 14, 10);
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
