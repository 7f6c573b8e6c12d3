/* verify_token.h - the seed's verifyToken: checks the caller JWT a browser sends with a request.
 *
 * A caller token is a compact JWS signed with HS256 and JWT_SECRET; its "identity" claim (else
 * "sub") names the caller. Only HS256 is accepted: the header's alg is checked before the
 * signature, so "none", HS384/HS512 and RS256 tokens are refused whatever libjwt would allow.
 * The two jws_ helpers below are shared with access_token.c, which checks Twilio tokens.
 * Every function is pure (no global state) and may be called from any thread.
 *
 * Layer: auth.
 */
#ifndef TASSA_VERIFY_TOKEN_H
#define TASSA_VERIFY_TOKEN_H

#include <jansson.h>
#include <time.h>

#include "auth/hs256.h"
#include "base/err.h"

/* Tokens longer than this are refused before any decoding, to bound the work per request. */
#define VERIFY_TOKEN_MAX_LEN 8192

/* Verifies a caller's JWT: HS256 only, signed with secret, unexpired (exp, if present, > now;
 * nbf, if present, <= now, both with 0 leeway), and its "identity" claim (else "sub") equals
 * identity. Returns TASSA_OK; TASSA_EMISSING when token or identity is NULL or empty (the
 * detail says which); TASSA_EUNAUTH with a detail for every other rejection (malformed token,
 * alg not HS256, bad signature, expired, not yet valid, no identity claim, identity mismatch,
 * and also a NULL or empty secret, so that a misconfigured server fails closed).
 * All pointers are borrowed; em may be NULL. The detail never contains the token or secret. */
tassa_err verify_token(const char *token, const char *identity, const char *secret, time_t now,
                       errmsg_t *em);

/* verify_token with a key set up once for the secret (hs256_key_new(secret, strlen(secret))):
 * the same checks and results, without libjwt's second decoding and per-call key set-up; the
 * signature is HMAC-SHA256 over header.payload compared in constant time. A NULL key is
 * refused with TASSA_EUNAUTH (a misconfigured server fails closed). Thread-safe; borrowed. */
tassa_err verify_token_keyed(const char *token, const char *identity, const hs256_key_t *key,
                             time_t now, errmsg_t *em);

/* Makes a caller JWT for identity (used by `tassa user-token IDENTITY`): header
 * {"alg":"HS256","typ":"JWT"}, claims identity, sub (both = identity), iat = now and
 * exp = now + ttl_seconds, signed with secret. Returns a malloc'd string the caller frees, or
 * NULL when identity or secret is NULL or empty, ttl_seconds <= 0, exp would overflow, identity
 * is not valid UTF-8, or memory runs out. Arguments are borrowed. */
char *verify_token_mint(const char *identity, const char *secret, long ttl_seconds, time_t now);

/* Splits a compact JWS (header.payload.signature, base64url without padding) and decodes its
 * header and payload as JSON objects, WITHOUT checking the signature: the caller must still
 * verify it before trusting any claim. Refuses a token longer than VERIFY_TOKEN_MAX_LEN, one
 * without exactly three non-empty parts, bad base64url, non-object JSON or duplicate keys, and
 * one whose header has a "crit" member (RFC 7515 4.1.11; no extension is understood).
 * Returns TASSA_OK and sets *header_out and *claims_out to new references the caller must
 * json_decref and must not change (the common HS256 header is one object shared by every
 * caller and thread); on failure returns TASSA_EUNAUTH with a detail and sets both to NULL.
 * Any thread. */
tassa_err verify_token_jws_unpack(const char *token, json_t **header_out, json_t **claims_out,
                                  errmsg_t *em);

/* Checks the time claims of decoded (and verified) claims: exp must be > now (and present when
 * exp_required is non-zero), nbf, if present, <= now; both must be JSON numbers. Returns
 * TASSA_OK or TASSA_EUNAUTH with a detail ("token expired", "token not yet valid", ...).
 * claims is borrowed. */
tassa_err verify_token_jws_check_time(const json_t *claims, time_t now, int exp_required,
                                      errmsg_t *em);

#endif
