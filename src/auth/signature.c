/* signature.c - X-Twilio-Signature (HMAC-SHA1 over URL and sorted parameters), as twilio-node.
 *
 * The parameter part of the signed text does not depend on the URL, so validation builds it
 * once and feeds it, after each URL variant, to a streaming HMAC: no per-variant copy of the
 * parameters. Sorting works on a copy of pointers, never on the caller's params_t.
 *
 * Layer: auth.
 */
#include "auth/signature.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SIG_B64_LEN    28 /* base64 of a 20-byte SHA-1 MAC */
#define SHA256_HEX_LEN 64

/* The text of a key or value; params_t never stores NULL, but "" costs nothing here. */
static const char *text_of(const char *s)
{
    return s ? s : "";
}

/* Orders parameters by key, then by value, bytewise (strcmp compares as unsigned char). */
static int param_cmp(const void *a, const void *b)
{
    const param_t *x = *(const param_t *const *)a;
    const param_t *y = *(const param_t *const *)b;
    int c = strcmp(text_of(x->key), text_of(y->key));

    return c != 0 ? c : strcmp(text_of(x->value), text_of(y->value));
}

/* Builds the concatenation of key+value over params sorted by key then value: with dedup,
 * each repeated (key, value) pair once (twilio-node's `new Set`); without, every occurrence.
 * Sets *had_repeats when some pair repeats (so the two texts differ). Returns a malloc'd
 * NUL-terminated string (also for no params) and its length, or NULL when out of memory. */
static char *params_text(const params_t *params, bool dedup, size_t *len_out, bool *had_repeats)
{
    const param_t **sorted = NULL;
    char *text = NULL, *p;
    size_t n = params ? params->len : 0, total = 0;

    if (n > 0) {
        sorted = malloc(n * sizeof *sorted);
        if (sorted == NULL)
            goto out;
        for (size_t i = 0; i < n; i++)
            sorted[i] = &params->items[i];
        qsort(sorted, n, sizeof *sorted, param_cmp);
    }
    *had_repeats = false;
    for (size_t i = 0; i < n; i++) {
        bool repeat = i > 0 && param_cmp(&sorted[i - 1], &sorted[i]) == 0;
        *had_repeats |= repeat;
        if (!repeat || !dedup)
            total += strlen(text_of(sorted[i]->key)) + strlen(text_of(sorted[i]->value));
    }
    text = malloc(total + 1);
    if (text == NULL)
        goto out;
    p = text;
    for (size_t i = 0; i < n; i++) {
        if (dedup && i > 0 && param_cmp(&sorted[i - 1], &sorted[i]) == 0)
            continue;
        size_t kl = strlen(text_of(sorted[i]->key)), vl = strlen(text_of(sorted[i]->value));
        memcpy(p, text_of(sorted[i]->key), kl);
        memcpy(p + kl, text_of(sorted[i]->value), vl);
        p += kl + vl;
    }
    *p = '\0';
    *len_out = total;
out:
    free(sorted);
    return text;
}

/* Writes base64(HMAC-SHA1(key, url || tail)) and a NUL into out. Returns 0, or -1 when
 * OpenSSL fails (out of memory). Streaming avoids joining url and tail in a new buffer. */
static int hmac_sha1_b64(const char *key, const char *url, const char *tail, size_t tail_len,
                         char out[SIG_B64_LEN + 1])
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM ps[2];
    char digest[] = "SHA1";
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    int rc = -1;

    ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    ps[1] = OSSL_PARAM_construct_end();
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        goto out;
    ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL || EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key), ps) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)url, strlen(url)) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)tail, tail_len) != 1 ||
        EVP_MAC_final(ctx, md, &md_len, sizeof md) != 1 || md_len != 20)
        goto out;
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    rc = 0;
out:
    OPENSSL_cleanse(md, sizeof md);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

/* Signs the callbacks we send, so receivers using twilio-node accept them. */
char *signature_compute(const char *auth_token, const char *url, const params_t *params)
{
    char sig[SIG_B64_LEN + 1];
    char *tail, *out = NULL;
    size_t tail_len = 0;
    bool repeats;

    if (auth_token == NULL || url == NULL)
        return NULL;
    tail = params_text(params, true, &tail_len, &repeats);
    if (tail == NULL)
        return NULL;
    if (hmac_sha1_b64(auth_token, url, tail, tail_len, sig) == 0)
        out = strdup(sig);
    free(tail);
    return out;
}

/* Finds where the authority's port would go: *host_end is the offset just past the host
 * (where ":port" starts, if any) and *auth_end the offset where the authority ends. Returns
 * 0, or -1 when url has no "scheme://". IPv6 literals ("[::1]:8080") are handled. */
static int url_port_span(const char *url, size_t *host_end, size_t *auth_end)
{
    const char *sep = strstr(url, "://");
    const char *auth, *end, *at, *host, *colon;

    if (sep == NULL || sep == url)
        return -1;
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    at = NULL;
    for (const char *c = auth; c < end; c++)
        if (*c == '@')
            at = c;
    host = at ? at + 1 : auth;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        colon = close && close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(host, ':', (size_t)(end - host));
    }
    *host_end = (size_t)((colon ? colon : end) - url);
    *auth_end = (size_t)(end - url);
    return 0;
}

/* Makes the other port variant of url: with the default port added when it has none, or with
 * its port removed. Returns a malloc'd string, NULL when out of memory, or *no_variant = 1
 * (and NULL) when url cannot be parsed, in which case only the URL as given is tried. */
static char *url_other_variant(const char *url, int *no_variant)
{
    size_t host_end, auth_end, len = strlen(url);
    char *v;

    *no_variant = 0;
    if (url_port_span(url, &host_end, &auth_end) != 0) {
        *no_variant = 1;
        return NULL;
    }
    if (host_end < auth_end) { /* has a port: remove it */
        v = malloc(len - (auth_end - host_end) + 1);
        if (v == NULL)
            return NULL;
        memcpy(v, url, host_end);
        memcpy(v + host_end, url + auth_end, len - auth_end + 1);
    } else { /* no port: add the scheme's default, as twilio-node's addPort */
        const char *port = strncasecmp(url, "https://", 8) == 0 ? ":443" : ":80";
        size_t pl = strlen(port);
        v = malloc(len + pl + 1);
        if (v == NULL)
            return NULL;
        memcpy(v, url, host_end);
        memcpy(v + host_end, port, pl);
        memcpy(v + host_end + pl, url + host_end, len - host_end + 1);
    }
    return v;
}

/* Finds the first value of query parameter name in url (between '?' and '#'), as raw text
 * (hex needs no percent-decoding). Returns a pointer into url and sets *len, or NULL when
 * absent. */
static const char *query_value(const char *url, const char *name, size_t *len)
{
    const char *q = strchr(url, '?');
    const char *end, *pair;
    size_t nl = strlen(name);

    if (q == NULL)
        return NULL;
    end = q + 1 + strcspn(q + 1, "#");
    for (pair = q + 1; pair < end;) {
        const char *pair_end = pair + strcspn(pair, "&#");
        if (pair_end > end)
            pair_end = end;
        if ((size_t)(pair_end - pair) >= nl && memcmp(pair, name, nl) == 0 &&
            (pair + nl == pair_end || pair[nl] == '=')) {
            const char *v = pair + nl == pair_end ? pair_end : pair + nl + 1;
            *len = (size_t)(pair_end - v);
            return v;
        }
        pair = pair_end + 1;
    }
    return NULL;
}

/* True when expected (28 chars) equals the received header, in constant time for equal
 * lengths (the length of a valid signature is public). */
static int sig_equal(const char *expected, const char *received)
{
    return strlen(received) == SIG_B64_LEN && CRYPTO_memcmp(expected, received, SIG_B64_LEN) == 0;
}

/* True when hex(sha256(body)) equals the claimed hex text; -1 when OpenSSL fails. */
static int body_hash_matches(const char *body, size_t body_len, const char *claimed,
                             size_t claimed_len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char text[SHA256_HEX_LEN];

    /* twilio-node hashes "{}" when the body is absent */
    if (body == NULL || body_len == 0) {
        body = "{}";
        body_len = 2;
    }
    if (EVP_Digest(body, body_len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
        return -1;
    for (unsigned int i = 0; i < md_len; i++) {
        text[2 * i] = hex[md[i] >> 4];
        text[2 * i + 1] = hex[md[i] & 15];
    }
    return claimed_len == SHA256_HEX_LEN && CRYPTO_memcmp(text, claimed, SHA256_HEX_LEN) == 0;
}

/* Checks callbacks we receive the way twilio-node does, failing closed on any doubt. */
tassa_err signature_validate(const char *auth_token, const char *signature, const char *url,
                             const params_t *params, const char *body, size_t body_len,
                             errmsg_t *em)
{
    tassa_err err;
    char expected[SIG_B64_LEN + 1];
    char *tails[2] = {NULL, NULL}, *other = NULL;
    const char *body_sha;
    size_t tail_lens[2] = {0, 0}, body_sha_len = 0;
    int no_variant, match = 0, body_ok;
    bool repeats = false;

    if (signature == NULL || *signature == '\0')
        return err_set(em, TASSA_EFORBIDDEN, "missing X-Twilio-Signature");
    if (auth_token == NULL || *auth_token == '\0')
        return err_set(em, TASSA_EFORBIDDEN, "no auth token configured");
    if (url == NULL || *url == '\0')
        return err_set(em, TASSA_EFORBIDDEN, "signature mismatch");

    /* A JSON body is signed through the URL: its hash rides in the query, params are unused. */
    body_sha = query_value(url, "bodySHA256", &body_sha_len);
    /* A repeated identical parameter: twilio-node and twilio-python sign it once, a sender
     * that signs every occurrence signs it each time. Both texts are tried, so neither kind
     * of sender is refused; without repeats the two are the same and only one is built. */
    tails[0] = params_text(body_sha ? NULL : params, true, &tail_lens[0], &repeats);
    if (tails[0] != NULL && repeats)
        tails[1] = params_text(params, false, &tail_lens[1], &repeats);
    other = url_other_variant(url, &no_variant);
    if (tails[0] == NULL || (repeats && tails[1] == NULL) || (other == NULL && !no_variant)) {
        err = err_set(em, TASSA_ENOMEM, "out of memory checking signature");
        goto out;
    }
    /* Every variant is always computed, so timing does not tell which one matched. */
    for (int t = 0; t < 2 && tails[t] != NULL; t++) {
        const char *urls[2] = {url, other};
        for (int u = 0; u < 2 && urls[u] != NULL; u++) {
            if (hmac_sha1_b64(auth_token, urls[u], tails[t], tail_lens[t], expected) != 0) {
                err = err_set(em, TASSA_ENOMEM, "out of memory checking signature");
                goto out;
            }
            match |= sig_equal(expected, signature);
        }
    }
    if (!match) {
        err = err_set(em, TASSA_EFORBIDDEN, "signature mismatch");
        goto out;
    }
    if (body_sha != NULL) {
        body_ok = body_hash_matches(body, body_len, body_sha, body_sha_len);
        if (body_ok < 0) {
            err = err_set(em, TASSA_ENOMEM, "out of memory hashing body");
            goto out;
        }
        if (!body_ok) {
            err = err_set(em, TASSA_EFORBIDDEN, "bodySHA256 mismatch");
            goto out;
        }
    }
    err = TASSA_OK;
out:
    free(tails[0]);
    free(tails[1]);
    free(other);
    return err;
}
