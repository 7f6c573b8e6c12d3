/* buf.h - one growable byte buffer, always NUL-terminated (curl's dynbuf is the model).
 *
 * A buf_t starts zeroed (BUF_INIT) and owns its bytes; buf_take hands them to the caller.
 * Not thread-safe: one owner at a time.
 *
 * Layer: base. */
#ifndef TASSA_BUF_H
#define TASSA_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* NULL until the first append; then NUL-terminated */
    size_t len;
    size_t cap;
    bool failed; /* an append ran out of memory: later appends do nothing */
} buf_t;

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

/* Appends n bytes of p. Returns 0, or -1 when out of memory (the buffer is then marked failed
 * and keeps what it had). */
int buf_add(buf_t *b, const void *p, size_t n);

/* Appends the string s. Same errors as buf_add. */
int buf_adds(buf_t *b, const char *s);

/* Appends printf-formatted text. Same errors as buf_add. */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s percent-encoded: every byte but RFC 3986's unreserved characters (A-Z a-z 0-9
 * - _ . ~) becomes %XX. Fits a path segment and a form value alike. Same errors as buf_add. */
int buf_add_encoded(buf_t *b, const char *s);

/* Appends s as a JSON string (with its quotes) escaped exactly as jansson's compact dump does:
 * '"' and '\\' and control characters escaped (\b \f \n \r \t, else \u00XX with upper-case
 * hex), everything else, UTF-8 included, as it is. Returns 0; -1 when s is not valid UTF-8
 * (jansson's rules: no overlong forms, surrogates or code points above U+10FFFF; b unchanged
 * then) or out of memory. */
int buf_add_json_string(buf_t *b, const char *s);

/* The text so far ("" before any append). Borrowed: valid until the next append or free. */
const char *buf_str(const buf_t *b);

/* Hands the bytes to the caller (free() them) and resets b. NULL when an append failed or
 * when out of memory; the buffer is reset either way. */
char *buf_take(buf_t *b);

/* Frees the bytes and resets b. Accepts a NULL b. */
void buf_free(buf_t *b);

#endif
