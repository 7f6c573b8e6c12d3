/* params.h - request parameters merged from a form body, a JSON body and the query string,
 * as Twilio Functions build their `event` object.
 *
 * A params_t is an ordered multimap of NUL-terminated UTF-8 keys and values that it owns.
 * Repeated keys keep every value in arrival order (Twilio's `AssignmentStatus=a&...=b`).
 * Limits guard memory: at most PARAMS_MAX_COUNT pairs (TASSA_EINVAL past it), keys up to
 * PARAMS_MAX_KEY bytes.
 * Not thread-safe; one request owns one params_t.
 *
 * Layer: base.
 */
#ifndef TASSA_PARAMS_H
#define TASSA_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define PARAMS_MAX_COUNT 256
#define PARAMS_MAX_KEY   256

typedef struct {
    char *key;
    char *value;
} param_t;

typedef struct {
    param_t *items; /* owned; len used of cap */
    size_t len, cap;
} params_t;

/* Returns an empty set, or NULL when out of memory. */
params_t *params_new(void);

/* Frees p and every key and value. Accepts NULL. */
void params_free(params_t *p);

/* Appends a copy of key/value (lengths given; they may hold no NUL and must be UTF-8).
 * TASSA_EINVAL past PARAMS_MAX_COUNT, for an empty or overlong key, a NUL byte, or a key or
 * value that is not strict UTF-8 (see params_utf8_valid); TASSA_ENOMEM. On error p is
 * unchanged. Every way parameters arrive (form, query, JSON) goes through here. */
tassa_err params_add(params_t *p, const char *key, size_t klen, const char *val, size_t vlen,
                     errmsg_t *em);

/* Parses application/x-www-form-urlencoded text ("a=1&b=x%20y+z") into p: '+' is a space,
 * %XX is decoded, a key without '=' has the value "". TASSA_EINVAL on a malformed escape
 * (detail names the offset); on error p keeps what it held before the call. */
tassa_err params_parse_form(params_t *p, const char *body, size_t len, errmsg_t *em);

/* Parses a request target's query (the text after '?') into p as params_parse_form does,
 * except that a piece with an empty key ("&&", "=x") is skipped, as HTTP servers do. */
tassa_err params_parse_query(params_t *p, const char *query, size_t len, errmsg_t *em);

/* Parses a JSON object body into p: string values are stored as they are, other values
 * (numbers, booleans, objects, arrays) as compact JSON text, null as "". TASSA_EINVAL when the
 * body is not a JSON object (detail has line and column). On error p is unchanged. */
tassa_err params_parse_json(params_t *p, const char *body, size_t len, errmsg_t *em);

/* True when s[0..len) is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF, no truncated sequence. NUL bytes count as valid
 * (U+0000); see params_text_valid. Pure; any thread. */
bool params_utf8_valid(const char *s, size_t len);

/* The length of s's longest prefix of at most max bytes (0 when max <= 0) made of whole,
 * well-formed UTF-8 characters: what "%.*s" may print of s without splitting a character.
 * Stops at the first byte that does not start one. Pure. */
int params_utf8_fit(const char *s, int max);

/* Ends s after its longest prefix of whole characters (params_utf8_fit): a text that snprintf
 * cut at its buffer's size loses the character the cut split. */
void params_utf8_end(char *s);

/* params_utf8_valid and no NUL byte: what a decoded path segment or header must be. */
bool params_text_valid(const char *s, size_t len);

/* The one strict integer parser for outside text: optional '-', then decimal digits only (no
 * spaces, no '+', no hex, no exponent, nothing after, no "-0"), within lo..hi. Returns true
 * and sets *out, or false leaving *out unchanged. */
bool params_parse_long(const char *s, long lo, long hi, long *out);

/* Reads parameter key with params_parse_long. An absent or empty value leaves *out unchanged
 * (the caller's default) and returns TASSA_OK; a bad one is TASSA_EINVAL ("PageSize must be an
 * integer from 1 to 1000"). */
tassa_err params_get_long(const params_t *p, const char *key, long lo, long hi, long *out,
                          errmsg_t *em);

/* The first value stored under key, or NULL. Borrowed: valid until p is freed. */
const char *params_get(const params_t *p, const char *key);

/* Like params_get, but NULL for a value that is empty. */
const char *params_get_nonempty(const params_t *p, const char *key);

/* The number of values stored under key. */
size_t params_count(const params_t *p, const char *key);

/* The i-th value (0-based) stored under key, or NULL. Borrowed. */
const char *params_get_nth(const params_t *p, const char *key, size_t i);

#endif
