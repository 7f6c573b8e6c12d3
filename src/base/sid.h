/* sid.h - Twilio-style identifiers ("ET" + 32 hex digits) and random secrets.
 *
 * Layer: base. */
#ifndef TASSA_SID_H
#define TASSA_SID_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define SID_LEN 34 /* two-letter prefix + 32 hex digits */

/* Writes prefix + 32 lowercase hex digits + NUL into out (SID_LEN + 1 bytes): the wall clock
 * in milliseconds (12 digits), then 80 random bits (20 digits). The time first makes new SIDs
 * sort after older ones, so that a store index on them grows at its end instead of touching a
 * random page per insert; the random part keeps them unguessable and unique. Any thread; the
 * random bits come from a buffer per thread that getrandom(2) fills for 50 SIDs at a time, and
 * a forked child never repeats its parent's. (sid_random_hex reads the kernel every time.)
 * TASSA_EINTERNAL if the kernel's random source fails. */
tassa_err sid_new(const char *prefix, char out[SID_LEN + 1]);

/* Writes 2*nbytes random hex digits + NUL into out (2*nbytes + 1 bytes), read from getrandom(2)
 * on every call (for secrets). TASSA_EINTERNAL if the kernel's random source fails. */
tassa_err sid_random_hex(char *out, size_t nbytes);

/* True when s has the form prefix + 32 hex digits. */
bool sid_valid(const char *s, const char *prefix);

#endif
