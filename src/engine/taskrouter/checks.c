/* checks.c - the input checks the TaskRouter resources share: names, attributes, integers
 * and booleans of the form parameters.
 *
 * Layer: engine.
 */
#include "engine/taskrouter/checks.h"

#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "engine/taskrouter/limits.h"

tassa_err tr_check_name(const char *v, const char *param, errmsg_t *em)
{
    if (!v || !*v)
        return err_set(em, TASSA_EMISSING, "Missing required parameter %s in the post body", param);
    if (strlen(v) > TR_MAX_FRIENDLY_NAME)
        return err_set(em, TASSA_EINVAL, "%s must be at most %d characters", param,
                       TR_MAX_FRIENDLY_NAME);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20)
            return err_set(em, TASSA_EINVAL, "%s must not hold control characters", param);
    return TASSA_OK;
}

tassa_err tr_check_attributes(const char *v, const char *param, errmsg_t *em)
{
    json_error_t jerr;
    if (strlen(v) > TR_MAX_ATTRIBUTES)
        return err_set(em, TASSA_EINVAL, "%s is %zu bytes; at most %d are allowed", param,
                       strlen(v), TR_MAX_ATTRIBUTES);
    json_t *j = json_loads(v, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return err_set(em, TASSA_EINVAL, "%s is not valid JSON (line %d column %d: %s)", param,
                       jerr.line, jerr.column, jerr.text);
    bool obj = json_is_object(j);
    json_decref(j);
    if (!obj)
        return err_set(em, TASSA_EINVAL, "%s must be a JSON object", param);
    return TASSA_OK;
}

tassa_err tr_read_long(const params_t *p, const char *param, long lo, long hi, long *out,
                       errmsg_t *em)
{
    const char *v = params_get(p, param);
    if (!v)
        return TASSA_OK;
    long n;
    if (!params_parse_long(v, lo, hi, &n))
        return err_set(em, TASSA_EINVAL, "%s must be an integer from %ld to %ld", param, lo, hi);
    *out = n;
    return TASSA_OK;
}

tassa_err tr_read_bool(const params_t *p, const char *param, int *out, errmsg_t *em)
{
    const char *v = params_get(p, param);
    if (!v)
        return TASSA_OK;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        *out = 0;
    else
        return err_set(em, TASSA_EINVAL, "%s must be true or false", param);
    return TASSA_OK;
}
