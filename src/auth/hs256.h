/* hs256.h - HMAC-SHA256 keys set up once, and the pieces of a compact JWS built without JSON
 * round trips: base64url encoding straight into a buf_t (JSON strings: base/buf.h).
 *
 * A key is created once per secret (OpenSSL EVP_MAC, keyed when created); each thread copies
 * that keyed context once (EVP_MAC_CTX_dup) and restarts its copy per signature, so no call
 * sets up the key again. A key is immutable after hs256_key_new: any number of threads may
 * sign with it at once.
 *
 * Layer: auth.
 */
#ifndef TASSA_HS256_H
#define TASSA_HS256_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define HS256_LEN 32 /* bytes of an HMAC-SHA256 */

typedef struct hs256_key hs256_key_t;

/* A key for secret[0..len). Returns a key the caller frees with hs256_key_free, or NULL when
 * len is 0 or OpenSSL fails (out of memory). secret is copied into OpenSSL's context. */
hs256_key_t *hs256_key_new(const void *secret, size_t len);

/* *key = a key for the NUL-terminated secret, or NULL when secret is NULL or empty (a secret
 * that is not set: whoever uses the NULL key fails closed). TASSA_ENOMEM (and *key NULL)
 * when OpenSSL fails. secret is borrowed. */
tassa_err hs256_key_for(const char *secret, hs256_key_t **key);

/* Frees key; NULL is a no-op. No signature may be running with it. */
void hs256_key_free(hs256_key_t *key);

/* out = HMAC-SHA256(key, data[0..len)). Returns 0, or -1 when OpenSSL fails (out of memory).
 * Thread-safe; key borrowed. */
int hs256_sign(const hs256_key_t *key, const void *data, size_t len, unsigned char out[HS256_LEN]);

/* True when sig[0..sig_len) is the base64url (unpadded) text of HMAC-SHA256(key, data), in
 * constant time over the signature. False on a mismatch, any other length, or OpenSSL
 * failure. Thread-safe. */
bool hs256_verify_b64url(const hs256_key_t *key, const void *data, size_t len, const char *sig,
                         size_t sig_len);

/* Appends base64url (RFC 4648 section 5, no padding) of p[0..n) to b. Same errors as buf_add. */
int hs256_b64url_add(buf_t *b, const void *p, size_t n);

#endif
