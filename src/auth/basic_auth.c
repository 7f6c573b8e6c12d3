/* basic_auth.c - Twilio-style HTTP Basic credentials check.
 *
 * The Authorization header is decoded here rather than by libmicrohttpd, whose helper returns
 * C strings: a decoded "KEY:SECRET\0anything" would compare equal to the real secret. Here the
 * decoded bytes keep their length, and a NUL anywhere refuses the credentials.
 *
 * Layer: auth.
 */
#include "auth/basic_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BASIC_MAX_HEADER 4096

/* Compares in time that depends only on the lengths, so a guess learns nothing. */
static int same(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

tassa_err basic_auth_decode(const char *header, basic_creds_t *out)
{
    memset(out, 0, sizeof *out);
    if (!header || strncasecmp(header, "Basic ", 6) != 0)
        return TASSA_EUNAUTH;
    const char *b64 = header + 6;
    while (*b64 == ' ')
        b64++;
    size_t len = strnlen(b64, BASIC_MAX_HEADER + 1);
    while (len > 0 && b64[len - 1] == ' ')
        len--;
    if (len == 0 || len > BASIC_MAX_HEADER || len % 4 != 0)
        return TASSA_EUNAUTH;
    for (size_t i = 0; i < len; i++) {
        char c = b64[i];
        bool pad_ok = c == '=' && i >= len - 2 && (i == len - 1 || b64[len - 1] == '=');
        if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
            c != '+' && c != '/' && !pad_ok)
            return TASSA_EUNAUTH;
    }
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return TASSA_ENOMEM;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0) {
        free(buf);
        return TASSA_EUNAUTH;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes; drop them. */
    n -= (b64[len - 1] == '=') + (b64[len - 2] == '=');
    buf[n] = '\0';
    unsigned char *colon = memchr(buf, ':', (size_t)n);
    if (!colon || memchr(buf, '\0', (size_t)n)) {
        OPENSSL_cleanse(buf, (size_t)n);
        free(buf);
        return TASSA_EUNAUTH;
    }
    out->user = (char *)buf;
    out->user_len = (size_t)(colon - buf);
    out->pass = (char *)colon + 1;
    out->pass_len = (size_t)n - out->user_len - 1;
    out->total = (size_t)n;
    return TASSA_OK;
}

void basic_creds_clear(basic_creds_t *c)
{
    if (!c || !c->user)
        return;
    OPENSSL_cleanse(c->user, c->total);
    free(c->user);
    memset(c, 0, sizeof *c);
}

tassa_err basic_auth_check(const char *authorization, const config_t *c)
{
    basic_creds_t cr;
    if (basic_auth_decode(authorization, &cr) != TASSA_OK)
        return TASSA_EUNAUTH;
    tassa_err err = TASSA_EUNAUTH;
    if (c->api_key && c->api_secret && same(cr.user, cr.user_len, c->api_key) &&
        same(cr.pass, cr.pass_len, c->api_secret))
        err = TASSA_OK;
    else if (c->account_sid && c->auth_token && same(cr.user, cr.user_len, c->account_sid) &&
             same(cr.pass, cr.pass_len, c->auth_token))
        err = TASSA_OK;
    basic_creds_clear(&cr);
    return err;
}
