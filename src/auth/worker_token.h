/* worker_token.h - Twilio access tokens with a TaskRouter grant, as twilio-node's AccessToken
 * + AccessToken.TaskRouterGrant makes them, for the official twilio-taskrouter Worker.
 *
 * The token is a JWS with header {"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"} and
 * payload {jti, iss: API key SID, sub: account SID, iat, exp, [nbf,] grants: {identity?,
 * task_router: {workspace_sid, worker_sid, role?}, ...}}, signed with the API key secret
 * (docs/protocols/sdk-protocols.md section 3.8). Pure functions; any thread.
 *
 * Layer: auth.
 */
#ifndef TASSA_WORKER_TOKEN_H
#define TASSA_WORKER_TOKEN_H

#include <stdint.h>
#include <time.h>

#include "auth/hs256.h"
#include "base/err.h"
#include "base/sid.h"

/* What a verified worker token says. */
typedef struct {
    char account_sid[SID_LEN + 1];   /* sub */
    char api_key[SID_LEN + 1];       /* iss */
    char workspace_sid[SID_LEN + 1]; /* grants.task_router.workspace_sid */
    char worker_sid[SID_LEN + 1];    /* grants.task_router.worker_sid */
    char role[32];                   /* grants.task_router.role, "" when absent */
    int64_t iat, exp;                /* seconds; iat 0 when absent */
} worker_grant_t;

/* Verifies token with key (hs256_key_new of the API key secret; borrowed): HS256 only (the alg
 * is pinned before the signature), cty "twilio-fpa;v=1", a valid signature, exp present and
 * > now, nbf (if present) <= now, sub an account SID ("AC..."), iss an API key SID ("SK...")
 * and grants.task_router with a workspace_sid ("WS...") and a worker_sid ("WK...").
 * Returns TASSA_OK and fills *out; TASSA_EUNAUTH with a detail for a malformed, badly signed,
 * expired or not yet valid token (and for a NULL key: fail closed); TASSA_EFORBIDDEN for a
 * valid token without a usable task_router grant. On failure *out is zeroed. token is
 * borrowed; em may be NULL; the detail never holds the token. */
tassa_err worker_token_verify(const char *token, const hs256_key_t *key, time_t now,
                              worker_grant_t *out, errmsg_t *em);

/* True when s is a SID with the two-letter prefix: SID_LEN characters, 32 hex digits after
 * the prefix. Pure. */
bool worker_token_sid_ok(const char *s, const char *prefix);

#endif
