/* timefmt.c - ISO 8601 formatting of stored millisecond times.
 *
 * Layer: base. */
#include "base/timefmt.h"

#include <stdio.h>
#include <time.h>

void timefmt_iso(int64_t ms, char out[TIMEFMT_LEN])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, TIMEFMT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void timefmt_iso_ms(int64_t ms, char out[TIMEFMT_LEN])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, TIMEFMT_LEN, "%s.%03dZ", base, (int)(ms % 1000));
}
