/* hash.h - the one string hash of tassa (FNV-1a, 64 bits), for in-memory hash tables.
 *
 * Not for anything an attacker must not steer: only tables whose keys are SIDs or bounded
 * identities use it. Pure; any thread.
 *
 * Layer: base. */
#ifndef TASSA_HASH_H
#define TASSA_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a of the NUL-terminated string s, continuing from seed (HASH_SEED to start). */
#define HASH_SEED UINT64_C(14695981039346656037)
uint64_t hash_str(uint64_t seed, const char *s);

/* FNV-1a of n bytes at p, continuing from seed. */
uint64_t hash_bytes(uint64_t seed, const void *p, size_t n);

#endif
