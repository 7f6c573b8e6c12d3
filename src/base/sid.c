/* sid.c - time-ordered random identifiers, and random secrets, from getrandom(2).
 *
 * Layer: base. */
#include "base/sid.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#define SID_RANDOM_BYTES 10
#define SID_POOL_BYTES   (SID_RANDOM_BYTES * 50)

/* The random parts of SIDs come from a buffer per thread, filled from getrandom(2) 50 SIDs at
 * a time instead of one call per SID; each byte is used once and then wiped. A forked child
 * starts with an empty buffer (reset_after_fork), or it would repeat its parent's next SIDs.
 * Secrets (sid_random_hex) never come from the buffer. */
static _Thread_local unsigned char pool[SID_POOL_BYTES];
static _Thread_local size_t pool_left;

static void reset_after_fork(void)
{
    /* the child has only the thread that forked, which runs this */
    memset(pool, 0, sizeof pool);
    pool_left = 0;
}

static void register_fork_reset(void)
{
    (void)pthread_atfork(NULL, NULL, reset_after_fork);
}

/* SID_RANDOM_BYTES random bytes into out. */
static tassa_err sid_random(unsigned char out[SID_RANDOM_BYTES])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork_reset);
    if (pool_left < SID_RANDOM_BYTES) {
        if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool)
            return TASSA_EINTERNAL;
        pool_left = sizeof pool;
    }
    unsigned char *take = pool + sizeof pool - pool_left;
    memcpy(out, take, SID_RANDOM_BYTES);
    memset(take, 0, SID_RANDOM_BYTES);
    pool_left -= SID_RANDOM_BYTES;
    return TASSA_OK;
}

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
    unsigned char r[SID_RANDOM_BYTES];
    if (sid_random(r))
        return TASSA_EINTERNAL;
    for (int i = 0; i < SID_RANDOM_BYTES; i++) {
        out[14 + 2 * i] = hex[r[i] >> 4];
        out[15 + 2 * i] = hex[r[i] & 15];
    }
    out[SID_LEN] = '\0';
    return TASSA_OK;
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
