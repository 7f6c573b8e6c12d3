/* timefmt.h - ISO 8601 UTC dates as Twilio writes them ("2026-11-25T09:20:41Z").
 *
 * Layer: base. */
#ifndef TASSA_TIMEFMT_H
#define TASSA_TIMEFMT_H

#include <stdint.h>

#define TIMEFMT_LEN 32

/* Writes the date of ms (milliseconds since the epoch) into out, seconds precision. */
void timefmt_iso(int64_t ms, char out[TIMEFMT_LEN]);

/* Same with milliseconds ("...T09:20:41.123Z"), for updatedAt fields. */
void timefmt_iso_ms(int64_t ms, char out[TIMEFMT_LEN]);

#endif
