/* checks.h - the input checks the TaskRouter resources share. Each returns TASSA_OK, or
 * TASSA_EINVAL (TASSA_EMISSING for a missing name) with a detail in em (em may be NULL).
 * Pure; any thread.
 *
 * Layer: engine.
 */
#ifndef TASSA_TR_CHECKS_H
#define TASSA_TR_CHECKS_H

#include "base/err.h"
#include "base/params.h"

/* A FriendlyName: present, at most TR_MAX_FRIENDLY_NAME bytes, no control characters. */
tassa_err tr_check_name(const char *v, const char *param, errmsg_t *em);

/* Attributes: a JSON object (no duplicate keys) of at most TR_MAX_ATTRIBUTES bytes. */
tassa_err tr_check_attributes(const char *v, const char *param, errmsg_t *em);

/* The integer parameter param of p, strictly decimal and in lo..hi, into *out; *out is left
 * alone when the parameter is absent or refused. */
tassa_err tr_read_long(const params_t *p, const char *param, long lo, long hi, long *out,
                       errmsg_t *em);

/* The boolean parameter param (true/1/yes or false/0/no, any case) into *out (1 or 0); left
 * alone when absent or refused. */
tassa_err tr_read_bool(const params_t *p, const char *param, int *out, errmsg_t *em);

#endif
