/* fuzz_task_params.c - libFuzzer driver for task attributes and the numeric and boolean
 * parameters of the TaskRouter API (tr_check_attributes, tr_parse_attributes, tr_read_long,
 * tr_read_bool in src/engine/taskrouter/checks.c and rows.c).
 *
 * Input: Attributes text, a number's text and a boolean's text, separated by '\n'.
 * Invariants:
 *   - accepted attributes are a JSON object of at most TR_MAX_ATTRIBUTES bytes, and
 *     tr_parse_attributes gives exactly that object; it always gives an object;
 *   - an accepted number lies in its range and is what its text says, every strict decimal in
 *     range is accepted, and (issue 9 defect 10, once fixed) nothing else is: no sign, space or
 *     other spelling;
 *   - a boolean is accepted only in one of its documented spellings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/taskrouter/checks.h"
#include "engine/taskrouter/model.h"
#include "engine/taskrouter/rows.h"
#include "fuzz_common.h"

static void check_attributes(const char *text, size_t len)
{
    errmsg_t em = {{0}};
    tassa_err err = tr_check_attributes(text, "Attributes", &em);
    json_t *parsed = tr_parse_attributes(text);

    FUZZ_CHECK(json_is_object(parsed), "tr_parse_attributes gave no object");
    if (err == TASSA_OK) {
        json_t *j = json_loads(text, 0, NULL);
        FUZZ_CHECK(strlen(text) <= TR_MAX_ATTRIBUTES, "attributes of %zu bytes", strlen(text));
        FUZZ_CHECK(json_is_object(j), "accepted attributes are not an object");
        FUZZ_CHECK(json_equal(j, parsed), "parsed attributes differ from the accepted ones");
        json_decref(j);
    } else {
        FUZZ_CHECK(err == TASSA_EINVAL && em.text[0], "refusal %d without detail", err);
    }
    json_decref(parsed);
    (void)len;
}

static void check_long(const char *v, size_t len, long lo, long hi)
{
    params_t *p = params_new();
    long out = -12345;
    errmsg_t em = {{0}};
    tassa_err err;
    bool canonical;

    if (!p || params_add(p, "Priority", 8, v, len, NULL) != TASSA_OK) {
        params_free(p);
        return; /* a NUL byte: never reaches a handler */
    }
    err = tr_read_long(p, "Priority", lo, hi, &out, &em);
    canonical = fuzz_is_decimal(v, len) && len < 18;
    if (err == TASSA_OK) {
        FUZZ_CHECK(out >= lo && out <= hi, "%ld outside %ld..%ld", out, lo, hi);
        FUZZ_CHECK(FUZZ_KNOWN_LOOSE_NUMBERS || fuzz_is_decimal(v, len),
                   "loose number \"%s\" accepted", v);
        if (fuzz_is_decimal(v, len))
            FUZZ_CHECK(out == strtol(v, NULL, 10), "\"%s\" read as %ld", v, out);
    } else {
        FUZZ_CHECK(err == TASSA_EINVAL && out == -12345, "refusal %d changed the value", err);
        FUZZ_CHECK(!canonical || strtol(v, NULL, 10) < lo || strtol(v, NULL, 10) > hi,
                   "decimal \"%s\" in range refused", v);
    }
    params_free(p);
}

static void check_bool(const char *v, size_t len)
{
    static const char *const yes[] = {"true", "1", "yes"}, *const no[] = {"false", "0", "no"};
    params_t *p = params_new();
    int out = 7;
    tassa_err err;

    if (!p || params_add(p, "ReEvaluateTasks", 15, v, len, NULL) != TASSA_OK) {
        params_free(p);
        return;
    }
    err = tr_read_bool(p, "ReEvaluateTasks", &out, NULL);
    if (err == TASSA_OK) {
        bool t = false, f = false;
        for (int i = 0; i < 3; i++) {
            t = t || !strcasecmp(v, yes[i]);
            f = f || !strcasecmp(v, no[i]);
        }
        FUZZ_CHECK((t && out == 1) || (f && out == 0), "\"%s\" read as %d", v, out);
    } else {
        FUZZ_CHECK(out == 7, "a refused boolean changed the value");
    }
    params_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[3];
    size_t lens[3];
    char *copy = fuzz_split(data, size, '\n', 3, parts, lens);

    if (!copy)
        return 0;
    check_attributes(parts[0], lens[0]);
    check_long(parts[1], lens[1], 0, 2147483647); /* Priority */
    check_long(parts[1], lens[1], 1, 86400);      /* Timeout, TaskReservationTimeout */
    check_bool(parts[2], lens[2]);
    free(copy);
    return 0;
}
