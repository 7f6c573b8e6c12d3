/* hs256.c - HMAC-SHA256 keys set up once (OpenSSL EVP_MAC), base64url and JSON string text.
 *
 * The crypto is OpenSSL's: a keyed EVP_MAC_CTX is made once per secret and copied once per
 * thread, which skips the fetch and key set-up (the ipad/opad digests) a fresh context costs;
 * each signature restarts the thread's copy.
 *
 * Layer: auth.
 */
#include "auth/hs256.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

struct hs256_key {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx; /* keyed, never updated: only copied */
    uint64_t id;      /* never reused: names the key in the threads' caches */
};

static _Atomic uint64_t next_key_id = 1;

/* A thread's keyed contexts, copied once per key and then restarted for each signature
 * (EVP_MAC_init with no key starts a new MAC with the key set before), so that a signature
 * copies and frees nothing. Freed when the thread ends; a freed key's entry is only ever
 * replaced (its copy holds its own key material). */
#define THREAD_KEYS 4
typedef struct {
    uint64_t id[THREAD_KEYS];
    EVP_MAC_CTX *ctx[THREAD_KEYS];
    unsigned next; /* the slot replaced next */
} thread_keys_t;

static pthread_key_t thread_keys;
static pthread_once_t thread_keys_once = PTHREAD_ONCE_INIT;
static bool thread_keys_ok;

static void thread_keys_free(void *p)
{
    thread_keys_t *t = p;
    for (int i = 0; i < THREAD_KEYS; i++)
        EVP_MAC_CTX_free(t->ctx[i]);
    free(t);
}

static void thread_keys_init(void)
{
    thread_keys_ok = pthread_key_create(&thread_keys, thread_keys_free) == 0;
}

/* This thread's context for key, ready for EVP_MAC_update; NULL when none can be had (the
 * caller then copies key->ctx itself). */
static EVP_MAC_CTX *thread_ctx(const hs256_key_t *key)
{
    pthread_once(&thread_keys_once, thread_keys_init);
    if (!thread_keys_ok)
        return NULL;
    thread_keys_t *t = pthread_getspecific(thread_keys);
    if (!t) {
        if (!(t = calloc(1, sizeof *t)) || pthread_setspecific(thread_keys, t) != 0) {
            free(t);
            return NULL;
        }
    }
    for (int i = 0; i < THREAD_KEYS; i++)
        if (t->id[i] == key->id && t->ctx[i])
            return EVP_MAC_init(t->ctx[i], NULL, 0, NULL) == 1 ? t->ctx[i] : NULL;
    unsigned i = t->next++ % THREAD_KEYS;
    EVP_MAC_CTX_free(t->ctx[i]);
    t->id[i] = key->id;
    t->ctx[i] = EVP_MAC_CTX_dup(key->ctx); /* fresh from the keyed one: ready as it is */
    return t->ctx[i];
}

hs256_key_t *hs256_key_new(const void *secret, size_t len)
{
    hs256_key_t *k;
    OSSL_PARAM ps[2];

    if (secret == NULL || len == 0)
        return NULL;
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    ps[1] = OSSL_PARAM_construct_end();
    k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    k->ctx = k->mac ? EVP_MAC_CTX_new(k->mac) : NULL;
    if (k->ctx == NULL || EVP_MAC_init(k->ctx, secret, len, ps) != 1) {
        hs256_key_free(k);
        return NULL;
    }
    k->id = atomic_fetch_add(&next_key_id, 1);
    return k;
}

tassa_err hs256_key_for(const char *secret, hs256_key_t **key)
{
    *key = secret && *secret ? hs256_key_new(secret, strlen(secret)) : NULL;
    return secret && *secret && !*key ? TASSA_ENOMEM : TASSA_OK;
}

void hs256_key_free(hs256_key_t *key)
{
    if (key == NULL)
        return;
    EVP_MAC_CTX_free(key->ctx);
    EVP_MAC_free(key->mac);
    free(key);
}

int hs256_sign(const hs256_key_t *key, const void *data, size_t len, unsigned char out[HS256_LEN])
{
    EVP_MAC_CTX *own = NULL, *c = thread_ctx(key);
    if (!c)
        c = own = EVP_MAC_CTX_dup(key->ctx);
    size_t n = 0;
    int ok = c != NULL && EVP_MAC_update(c, data, len) == 1 &&
             EVP_MAC_final(c, out, &n, HS256_LEN) == 1 && n == HS256_LEN;

    EVP_MAC_CTX_free(own);
    return ok ? 0 : -1;
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes base64url of p[0..n) to out (room for (n + 2) / 3 * 4 bytes); returns its length. */
static size_t b64url_encode(char *out, const unsigned char *p, size_t n)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
        out[o++] = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
    }
    return o;
}

int hs256_b64url_add(buf_t *b, const void *p, size_t n)
{
    char stack[512];
    char *out = stack;
    size_t need = (n + 2) / 3 * 4;
    int rc;

    if (need > sizeof stack) {
        out = malloc(need);
        if (out == NULL) {
            b->failed = true;
            return -1;
        }
    }
    rc = buf_add(b, out, b64url_encode(out, p, n));
    if (out != stack)
        free(out);
    return rc;
}

bool hs256_verify_b64url(const hs256_key_t *key, const void *data, size_t len, const char *sig,
                         size_t sig_len)
{
    unsigned char mac[HS256_LEN];
    char text[(HS256_LEN + 2) / 3 * 4];
    size_t n;
    bool same;

    if (hs256_sign(key, data, len, mac) != 0)
        return false;
    n = b64url_encode(text, mac, sizeof mac);
    same = sig_len == n && CRYPTO_memcmp(text, sig, n) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return same;
}
