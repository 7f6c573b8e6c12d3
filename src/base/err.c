/* err.c - messages, HTTP statuses and Twilio codes of tassa_err values.
 *
 * Layer: base. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

/* clang-format off */
#define MSG_ROW(name, value, status, code, msg) case name: return msg;
#define STATUS_ROW(name, value, status, code, msg) case name: return status;
#define CODE_ROW(name, value, status, code, msg) case name: return code;
/* clang-format on */

const char *tassa_strerror(tassa_err err)
{
    switch (err) {
        TASSA_ERR_LIST(MSG_ROW)
    }
    return "Unknown error";
}

int tassa_err_status(tassa_err err)
{
    switch (err) {
        TASSA_ERR_LIST(STATUS_ROW)
    }
    return 500;
}

int tassa_err_code(tassa_err err)
{
    switch (err) {
        TASSA_ERR_LIST(CODE_ROW)
    }
    return 20500;
}

tassa_err tassa_err_from_status(int http_status)
{
    switch (http_status) {
    case 400: return TASSA_EINVAL;
    case 401: return TASSA_EUNAUTH;
    case 403: return TASSA_EFORBIDDEN;
    case 404: return TASSA_ENOTFOUND;
    case 405: return TASSA_EMETHOD;
    case 409: return TASSA_ECONFLICT;
    case 412: return TASSA_EREVISION;
    case 413: return TASSA_ETOOBIG;
    case 429: return TASSA_ELIMIT;
    case 503: return TASSA_EUNAVAIL;
    case 504: return TASSA_ETIMEOUT;
    default: return http_status >= 500 ? TASSA_EUPSTREAM : TASSA_EINTERNAL;
    }
}

tassa_err err_set(errmsg_t *em, tassa_err err, const char *fmt, ...)
{
    if (em) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(em->text, sizeof em->text, fmt, ap);
        va_end(ap);
    }
    return err;
}

const char *err_text(const errmsg_t *em, tassa_err err)
{
    if (em && em->text[0])
        return em->text;
    return tassa_strerror(err);
}
