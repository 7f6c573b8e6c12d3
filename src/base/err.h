/* err.h - the one error convention of tassa.
 *
 * Functions that can fail return a tassa_err: 0 (TASSA_OK) or a negative value from the
 * list below. Each value carries its message, the HTTP status a client sees and the
 * Twilio error code put in the JSON error body. Constructors return NULL instead.
 * Where a caller needs a human detail ("Data is not valid JSON at 1:7"), the function also
 * takes an errmsg_t *, which may be NULL.
 *
 * Layer: base.
 */
#ifndef TASSA_ERR_H
#define TASSA_ERR_H

#include <stddef.h>

/* X(name, value, http status, twilio code, message) */
#define TASSA_ERR_LIST(X)                                                                          \
    X(TASSA_OK, 0, 200, 0, "ok")                                                                   \
    X(TASSA_EINVAL, -1, 400, 20001, "Invalid parameter")                                           \
    X(TASSA_EMISSING, -2, 400, 20001, "Missing required parameter")                                \
    X(TASSA_EUNAUTH, -3, 401, 20003, "Authenticate")                                               \
    X(TASSA_EFORBIDDEN, -4, 403, 20403, "Forbidden")                                               \
    X(TASSA_ENOTFOUND, -5, 404, 20404, "The requested resource was not found")                     \
    X(TASSA_EMETHOD, -6, 405, 20004, "Method not allowed")                                         \
    X(TASSA_EDUPNAME, -7, 409, 54301, "Unique name already exists")                                \
    X(TASSA_EREVISION, -8, 412, 54103, "Document revision mismatch")                               \
    X(TASSA_ETOOBIG, -9, 413, 20001, "Request entity too large")                                   \
    X(TASSA_EDOCTOOBIG, -10, 413, 54006, "Document data exceeds the 16 KiB limit")                 \
    X(TASSA_ECONFLICT, -11, 409, 20001, "Conflicting state")                                       \
    X(TASSA_ELIMIT, -12, 429, 20429, "Too many requests")                                          \
    X(TASSA_ENOMEM, -13, 500, 20500, "Out of memory")                                              \
    X(TASSA_ESTORE, -14, 503, 20503, "The data store is unavailable; try again")                   \
    X(TASSA_EINTERNAL, -15, 500, 20500, "Internal error")                                          \
    X(TASSA_EUPSTREAM, -16, 502, 20500, "Upstream service failed")                                 \
    X(TASSA_ETIMEOUT, -17, 504, 20500, "Upstream service timed out")                               \
    X(TASSA_EUNAVAIL, -18, 503, 20503, "Service unavailable")                                      \
    X(TASSA_EEXPR, -19, 400, 20001, "Invalid expression")

typedef enum {
#define TASSA_ERR_ENUM(name, value, status, code, msg) name = value,
    TASSA_ERR_LIST(TASSA_ERR_ENUM)
#undef TASSA_ERR_ENUM
} tassa_err;

/* A human-readable detail for an error, filled by the function that failed. */
typedef struct {
    char text[256];
} errmsg_t;

/* The fixed message of err ("Invalid parameter"). Never NULL. */
const char *tassa_strerror(tassa_err err);

/* The HTTP status a client sees for err (500 for unknown values). */
int tassa_err_status(tassa_err err);

/* The Twilio error code for err's JSON body (20500 for unknown values). */
int tassa_err_code(tassa_err err);

/* The error value that best matches an upstream HTTP status (404 -> TASSA_ENOTFOUND). */
tassa_err tassa_err_from_status(int http_status);

/* Writes a printf-style detail into em (if em is not NULL) and returns err, so that a
 * failing function can `return err_set(em, TASSA_EINVAL, "bad %s", name);`. */
tassa_err err_set(errmsg_t *em, tassa_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The detail in em, or the fixed message of err when em is NULL or empty. */
const char *err_text(const errmsg_t *em, tassa_err err);

#endif
