/* signature.h - X-Twilio-Signature: computing it for callbacks we send, checking it on those
 * we receive, exactly as twilio-node's webhooks.ts does.
 *
 * The signed text is the full URL followed by key+value of every parameter, keys in byte
 * order, the values of a repeated key sorted and deduplicated; the signature is
 * base64(HMAC-SHA1(auth token, text)). Byte order equals JavaScript's sort for every key
 * below U+E000 (it differs from UTF-16 order only between U+E000..U+FFFF and astral chars).
 * The URL is used as given, not WHATWG-normalised. Pure functions; any thread may call them.
 *
 * Layer: auth.
 */
#ifndef TASSA_SIGNATURE_H
#define TASSA_SIGNATURE_H

#include <stddef.h>

#include "base/err.h"
#include "base/params.h"

/* base64(HMAC-SHA1(auth_token, url + concat of key+value sorted by key (byte order), values of
 * one key sorted and deduplicated)). params may be NULL (no parameters) and is not reordered.
 * Returns a malloc'd 28-character string the caller frees, or NULL when out of memory or when
 * auth_token or url is NULL. All arguments are borrowed. */
char *signature_compute(const char *auth_token, const char *url, const params_t *params);

/* Validates the header value signature against url and params, trying the URL as given, with
 * the default port added (:443 for https, :80 otherwise, only if it has no port) and with the
 * port removed; comparisons are constant-time (CRYPTO_memcmp). When a (key, value) pair
 * repeats, the text with every occurrence is tried as well as the deduplicated one (twilio-
 * node's), so a sender that signs each occurrence is accepted too. If the URL's query has a
 * bodySHA256 parameter, params are ignored, the signature must match the URL alone AND
 * hex(sha256(body)) must equal that value (a NULL or empty body counts as "{}", as in
 * twilio-node). Returns TASSA_OK, or TASSA_EFORBIDDEN with a detail ("missing
 * X-Twilio-Signature", "signature mismatch", "bodySHA256 mismatch", or "no auth token
 * configured" when auth_token is NULL or empty, so that a misconfiguration fails closed), or
 * TASSA_ENOMEM. All arguments are borrowed; em may be NULL. */
tassa_err signature_validate(const char *auth_token, const char *signature, const char *url,
                             const params_t *params, const char *body, size_t body_len,
                             errmsg_t *em);

#endif
