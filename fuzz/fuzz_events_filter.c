/* fuzz_events_filter.c - libFuzzer driver for the workspace's EventsFilter
 * (outbox_filter_match in src/engine/callback_outbox.c), which decides which TaskRouter events
 * go to the EventCallbackUrl.
 *
 * Input: the filter and an event type, separated by '\n' (each cut at a NUL, as stored).
 * Invariants:
 *   - the answer equals a reference written here from the header's contract: a NULL or empty
 *     filter passes everything, otherwise the event type must equal one comma-separated item
 *     with its spaces trimmed;
 *   - every item of a filter passes it, and so does the filter's own single item;
 *   - an empty event type passes only an empty filter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/callback_outbox.h"
#include "fuzz_common.h"

static bool reference(const char *filter, const char *type)
{
    const char *p = filter;
    if (!*filter)
        return true;
    for (;;) {
        const char *end = strchr(p, ','), *a = p, *b;
        if (!end)
            end = p + strlen(p);
        b = end;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        if (b > a && (size_t)(b - a) == strlen(type) && !memcmp(a, type, (size_t)(b - a)))
            return true;
        if (!*end)
            return false;
        p = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[2];
    size_t lens[2];
    char *copy = fuzz_split(data, size, '\n', 2, parts, lens);
    char *filter;
    const char *type;

    if (!copy)
        return 0;
    filter = parts[0];
    type = parts[1];
    FUZZ_CHECK(outbox_filter_match(filter, type) == reference(filter, type),
               "filter \"%s\" on \"%s\": %d, the contract says %d", filter, type,
               outbox_filter_match(filter, type), reference(filter, type));
    FUZZ_CHECK(outbox_filter_match(NULL, type) && outbox_filter_match("", type), "empty filter");
    if (!*type)
        FUZZ_CHECK(!*filter || !outbox_filter_match(filter, type), "empty type passed a filter");
    /* every item passes its filter */
    for (char *save = NULL, *item = strtok_r(filter, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *a = item, *b = item + strlen(item);
        while (*a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            *--b = '\0';
        if (*a) {
            FUZZ_CHECK(outbox_filter_match(a, a), "item \"%s\" does not pass itself", a);
        }
    }
    free(copy);
    return 0;
}
