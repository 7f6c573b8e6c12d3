/* access_token.h - Twilio access tokens carrying a Sync grant, and for workers a TaskRouter
 * grant too (twilio-node AccessToken with SyncGrant and TaskRouterGrant).
 *
 * The token is a JWS with header {"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"} (key order
 * is libjwt 1.x's, sorted) and payload {jti: "<api_key>-<iat>", iss: api_key, sub: account_sid,
 * iat, exp, grants: {identity, data_sync: {service_sid}}}, signed with the API key secret; a
 * worker token adds grants.task_router {role, worker_sid, workspace_sid}. Pure
 * functions (no global state); any thread may call them.
 *
 * Layer: auth.
 */
#ifndef TASSA_ACCESS_TOKEN_H
#define TASSA_ACCESS_TOKEN_H

#include <time.h>

#include "auth/hs256.h"
#include "base/err.h"

/* What access_token_sync puts in a token. Every string is borrowed and must be non-empty
 * UTF-8. ttl is in seconds (0 means Twilio's default 3600); now is the issue time (iat).
 * workspace_sid, worker_sid and role are read by access_token_worker only (role NULL means
 * "worker"); access_token_sync ignores them. */
typedef struct {
    const char *account_sid, *api_key, *api_secret, *identity, *sync_service_sid;
    long ttl;
    time_t now;
    const char *workspace_sid, *worker_sid, *role;
} access_token_opts_t;

/* Mints an HS256 Twilio access token with a data_sync grant for o->identity. Returns a
 * malloc'd JWT string the caller frees, or NULL on failure: o NULL, a field NULL or empty,
 * ttl negative, exp overflowing, a string that is not UTF-8, or out of memory. */
char *access_token_sync(const access_token_opts_t *o);

/* access_token_sync with a key set up once for o->api_secret (hs256_key_new; o->api_secret
 * itself is then not read): the same bytes, written directly without libjwt or jansson. Also
 * NULL when key is NULL or the API key SID is longer than 120 bytes. Thread-safe. */
char *access_token_sync_keyed(const access_token_opts_t *o, const hs256_key_t *key);

/* A worker's token, as twilio-node's AccessToken with a TaskRouterGrant {workspaceSid,
 * workerSid, role} and a SyncGrant {serviceSid} makes it (spec 3.8): what
 * access_token_sync_keyed writes plus grants.task_router. The same failures, and NULL too when
 * workspace_sid or worker_sid is NULL or empty. Thread-safe. */
char *access_token_worker_keyed(const access_token_opts_t *o, const hs256_key_t *key);

/* access_token_worker_keyed with a key made from o->api_secret (NULL when it is unset). */
char *access_token_worker(const access_token_opts_t *o);

/* Decodes and verifies a Twilio access token minted with api_secret: alg HS256, HS384 or
 * HS512 (pinned from the header before the signature check), cty "twilio-fpa;v=1", valid
 * signature, exp present and > now, nbf (if present) <= now, a string grants.identity and a
 * string grants.data_sync.service_sid, both non-empty. On TASSA_OK sets *identity_out and
 * *service_sid_out to malloc'd copies the caller frees. Otherwise returns TASSA_EUNAUTH with a
 * detail (TASSA_ENOMEM when out of memory) and sets both outputs to NULL. A NULL or empty
 * api_secret is refused with TASSA_EUNAUTH. Inputs are borrowed; em may be NULL. */
tassa_err access_token_verify(const char *token, const char *api_secret, time_t now,
                              char **identity_out, char **service_sid_out, errmsg_t *em);

#endif
