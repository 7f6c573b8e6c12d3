/* hash.c - FNV-1a (see hash.h).
 *
 * Layer: base. */
#include "base/hash.h"

uint64_t hash_bytes(uint64_t seed, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        seed ^= c[i];
        seed *= UINT64_C(1099511628211);
    }
    return seed;
}

uint64_t hash_str(uint64_t seed, const char *s)
{
    for (; *s; s++) {
        seed ^= (unsigned char)*s;
        seed *= UINT64_C(1099511628211);
    }
    return seed;
}
