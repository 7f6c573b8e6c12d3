/* buf.c - the growable buffer (see buf.h).
 *
 * Layer: base. */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(buf_t *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more + 1) {
        if (cap > ((size_t)-1) / 2)
            goto fail;
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d)
        goto fail;
    b->data = d;
    b->cap = cap;
    return 0;
fail:
    b->failed = true;
    return -1;
}

int buf_add(buf_t *b, const void *p, size_t n)
{
    if (grow(b, n))
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_adds(buf_t *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || grow(b, (size_t)n)) {
        b->failed = true;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int buf_add_encoded(buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        bool keep = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' || *c == '~';
        char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
        if (keep ? buf_add(b, c, 1) : buf_add(b, esc, 3))
            return -1;
    }
    return 0;
}

const char *buf_str(const buf_t *b)
{
    return b->data ? b->data : "";
}

char *buf_take(buf_t *b)
{
    char *d = b->failed ? NULL : b->data ? b->data : strdup("");
    if (b->failed)
        free(b->data);
    *b = (buf_t)BUF_INIT;
    return d;
}

void buf_free(buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    *b = (buf_t)BUF_INIT;
}
