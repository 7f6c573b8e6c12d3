/* params.c - the merged request parameters (query, form body, JSON body).
 *
 * Layer: base. */
#include "base/params.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

params_t *params_new(void)
{
    return calloc(1, sizeof(params_t));
}

void params_free(params_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->len; i++) {
        free(p->items[i].key);
        free(p->items[i].value);
    }
    free(p->items);
    free(p);
}

/* Copies len bytes into a fresh NUL-terminated string. */
static char *dup_n(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: shortest form, no surrogates,
 * at most U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (c == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF: surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0; /* continuation byte, overlong 0xc0/0xc1, or 0xf5.. */
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return n;
}

bool params_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

int params_utf8_fit(const char *s, int max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t lim = max > 0 ? (size_t)max : 0, len = strnlen(s, lim), i = 0;
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i); /* 0 also for one that runs past the limit */
        if (n == 0)
            break;
        i += n;
    }
    return (int)i;
}

void params_utf8_end(char *s)
{
    s[params_utf8_fit(s, (int)strlen(s))] = '\0';
}

bool params_text_valid(const char *s, size_t len)
{
    return !memchr(s, '\0', len) && params_utf8_valid(s, len);
}

bool params_parse_long(const char *s, long lo, long hi, long *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (*p < '0' || *p > '9')
        return false; /* empty, a sign alone, '+', spaces */
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9')
            return false;
    }
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno || *end || n < lo || n > hi)
        return false;
    if (neg && n == 0)
        return false; /* "-0": a sign on zero is as loose as "+0" */
    *out = n;
    return true;
}

tassa_err params_get_long(const params_t *p, const char *key, long lo, long hi, long *out,
                          errmsg_t *em)
{
    const char *v = params_get_nonempty(p, key);
    if (!v)
        return TASSA_OK;
    if (!params_parse_long(v, lo, hi, out))
        return err_set(em, TASSA_EINVAL, "%s must be an integer from %ld to %ld", key, lo, hi);
    return TASSA_OK;
}

tassa_err params_add(params_t *p, const char *key, size_t klen, const char *val, size_t vlen,
                     errmsg_t *em)
{
    if (klen == 0)
        return err_set(em, TASSA_EINVAL, "empty parameter name");
    if (klen > PARAMS_MAX_KEY)
        return err_set(em, TASSA_EINVAL, "parameter name longer than %d bytes", PARAMS_MAX_KEY);
    if (memchr(key, '\0', klen) || memchr(val, '\0', vlen))
        return err_set(em, TASSA_EINVAL, "NUL byte in parameter");
    /* Every parameter is text: bytes that are not UTF-8 stop here, so no endpoint stores a
     * name it cannot later put into a JSON answer. */
    if (!params_utf8_valid(key, klen))
        return err_set(em, TASSA_EINVAL, "parameter name is not valid UTF-8");
    if (!params_utf8_valid(val, vlen))
        return err_set(em, TASSA_EINVAL, "parameter %.*s is not valid UTF-8", (int)klen, key);
    if (p->len >= PARAMS_MAX_COUNT)
        return err_set(em, TASSA_EINVAL, "more than %d parameters", PARAMS_MAX_COUNT);
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        param_t *items = realloc(p->items, cap * sizeof *items);
        if (!items)
            return err_set(em, TASSA_ENOMEM, "out of memory");
        p->items = items;
        p->cap = cap;
    }
    char *k = dup_n(key, klen);
    char *v = dup_n(val, vlen);
    if (!k || !v) {
        free(k);
        free(v);
        return err_set(em, TASSA_ENOMEM, "out of memory");
    }
    p->items[p->len].key = k;
    p->items[p->len].value = v;
    p->len++;
    return TASSA_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one form component in place into out (which has room for len bytes);
 * returns the decoded length, or -1 with *bad set to the offset of a broken escape. */
static long form_decode(const char *s, size_t len, char *out, size_t *bad)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *bad = i;
                return -1;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return (long)o;
}

/* Drops every pair appended after mark, so that a failed parse leaves p as it was. */
static void truncate_to(params_t *p, size_t mark)
{
    while (p->len > mark) {
        p->len--;
        free(p->items[p->len].key);
        free(p->items[p->len].value);
    }
}

/* The error for a malformed escape at offset at: in a query, the query is named. */
static tassa_err bad_escape(errmsg_t *em, bool query, size_t at)
{
    if (query)
        return err_set(em, TASSA_EINVAL, "malformed percent-encoding in the query");
    return err_set(em, TASSA_EINVAL, "malformed percent-encoding at offset %zu", at);
}

/* Parses form-encoded text into p (params_parse_form); query: as a request target's query
 * (params_parse_query), a piece with an empty key is skipped. */
static tassa_err parse_pairs(params_t *p, const char *body, size_t len, bool query, errmsg_t *em)
{
    size_t mark = p->len;
    tassa_err err = TASSA_OK;
    char *buf = malloc(len + 1);
    if (!buf)
        return err_set(em, TASSA_ENOMEM, "out of memory");
    size_t pos = 0;
    while (pos < len) {
        const char *amp = memchr(body + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - body) : len;
        const char *eq = end > pos ? memchr(body + pos, '=', end - pos) : NULL;
        size_t kend = eq ? (size_t)(eq - body) : end;
        if (kend > pos || (end > pos && !query)) {
            size_t bad = 0;
            long klen = form_decode(body + pos, kend - pos, buf, &bad);
            if (klen < 0) {
                err = bad_escape(em, query, pos + bad);
                goto out;
            }
            char *val = buf + klen;
            long vlen = 0;
            if (eq) {
                vlen = form_decode(eq + 1, end - kend - 1, val, &bad);
                if (vlen < 0) {
                    err = bad_escape(em, query, kend + 1 + bad);
                    goto out;
                }
            }
            err = params_add(p, buf, (size_t)klen, val, (size_t)vlen, em);
            if (err)
                goto out;
        }
        pos = end + 1;
    }
out:
    if (err)
        truncate_to(p, mark);
    free(buf);
    return err;
}

tassa_err params_parse_form(params_t *p, const char *body, size_t len, errmsg_t *em)
{
    return parse_pairs(p, body, len, false, em);
}

tassa_err params_parse_query(params_t *p, const char *query, size_t len, errmsg_t *em)
{
    return parse_pairs(p, query, len, true, em);
}

tassa_err params_parse_json(params_t *p, const char *body, size_t len, errmsg_t *em)
{
    size_t mark = p->len;
    tassa_err err = TASSA_OK;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set(em, TASSA_EINVAL, "malformed JSON at line %d column %d: %s", jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_object(root)) {
        err = err_set(em, TASSA_EINVAL, "JSON body must be an object");
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (json_is_string(val)) {
            err = params_add(p, key, strlen(key), json_string_value(val), json_string_length(val),
                             em);
        } else if (json_is_null(val)) {
            err = params_add(p, key, strlen(key), "", 0, em);
        } else {
            char *text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!text) {
                err = err_set(em, TASSA_ENOMEM, "out of memory");
                goto out;
            }
            err = params_add(p, key, strlen(key), text, strlen(text), em);
            free(text);
        }
        if (err)
            goto out;
    }
out:
    if (err)
        truncate_to(p, mark);
    json_decref(root);
    return err;
}

const char *params_get(const params_t *p, const char *key)
{
    return params_get_nth(p, key, 0);
}

const char *params_get_nonempty(const params_t *p, const char *key)
{
    const char *v = params_get(p, key);
    return v && *v ? v : NULL;
}

size_t params_count(const params_t *p, const char *key)
{
    size_t n = 0;
    for (size_t i = 0; p && i < p->len; i++)
        n += strcmp(p->items[i].key, key) == 0;
    return n;
}

const char *params_get_nth(const params_t *p, const char *key, size_t nth)
{
    for (size_t i = 0; p && i < p->len; i++) {
        if (strcmp(p->items[i].key, key) == 0 && nth-- == 0)
            return p->items[i].value;
    }
    return NULL;
}
