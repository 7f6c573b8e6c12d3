/* twilio_rest.h - the back end that reads TaskRouter and writes Sync over Twilio's REST API.
 *
 * Selected by TASSA_BACKEND=twilio. It speaks to TWILIO_TASKROUTER_URL and TWILIO_SYNC_URL
 * (Twilio's public hosts by default, or any compatible base URL such as another tassa) with
 * HTTP Basic API_KEY:API_SECRET, form-encoded requests and JSON responses, and returns the
 * resources exactly as Twilio sends them, so the functions cannot tell it from the embedded
 * back end.
 *
 * Behaviour on the wire:
 *   - connections are reused through a small pool of libcurl handles;
 *   - every request has a total timeout of TASSA_HTTP_TIMEOUT_MS;
 *   - 429, 5xx and transport failures (timeouts, resets, refused connections) are retried up
 *     to TASSA_HTTP_RETRIES times with exponential back-off and full jitter (Retry-After is
 *     honoured, capped); other 4xx are final;
 *   - lists follow meta.next_page_url to the end, at most TWILIO_REST_PAGE_CAP pages;
 *   - Twilio's error body {code, message, ...} becomes "twilio <status> <code>: <message>" in
 *     the caller's errmsg_t, and each failed attempt is logged as one line
 *     (event=twilio_request_failed ...), never with credentials.
 * Error values match the embedded back end: 404 -> TASSA_ENOTFOUND, 409 on a create (54301)
 * -> TASSA_EDUPNAME, 412 (54103) -> TASSA_EREVISION, others via tassa_err_from_status.
 *
 * Layer: backend.
 */
#ifndef TASSA_BACKEND_TWILIO_REST_H
#define TASSA_BACKEND_TWILIO_REST_H

#include "backend/backend.h"
#include "base/config.h"

/* Lists stop with TASSA_EUPSTREAM after this many pages, so a server that keeps answering
 * with a next_page_url cannot keep a request thread forever. */
#define TWILIO_REST_PAGE_CAP 600

/* A back end on the REST API described by c: api_key, api_secret, workspace_sid,
 * sync_service_sid, taskrouter_url, sync_url, http_timeout_ms and http_retries. c is borrowed
 * and must outlive the back end. Returns NULL with one clear line in em (which may be NULL)
 * when a setting is missing or malformed, or when out of memory.
 *
 * Threads: any thread may call any operation of the result concurrently; each request uses a
 * libcurl handle of its own. twilio_rest_global_init must have run before (main does it). */
backend_t *backend_twilio_new(const config_t *c, errmsg_t *em);

/* Sets up libcurl for the whole process (curl_global_init), for this back end and for every
 * other user of libcurl (the webhook outbox, `tassa event`). Call once from main before any
 * thread starts; TASSA_EINTERNAL when libcurl cannot start. Not thread-safe. */
tassa_err twilio_rest_global_init(void);

/* Undoes twilio_rest_global_init, after every libcurl user has stopped. Main thread only. */
void twilio_rest_global_cleanup(void);

/* Writes "libcurl RUNTIME (built with COMPILED)" (libcurl's run-time version and the one tassa
 * was compiled with), NUL-terminated and cut to n bytes, into out. Any thread. */
void twilio_rest_lib_versions(char *out, size_t n);

/* Reads one response header line as libcurl hands it over (len bytes, not NUL-terminated,
 * CRLF included): for a Retry-After header with delay-seconds (digits only, white space
 * around them allowed; read with params_parse_long), the wait in milliseconds, capped at the
 * back-off cap (3000; also for more digits than a long holds); -1 for any other header, an
 * HTTP date (ignored on purpose: the back-off applies) or a malformed value ("+3", "-1",
 * "3 s", "0x10", empty). Pure; any thread. Exposed for fuzz/fuzz_twilio_rest.c. */
long twilio_rest_retry_after_ms(const char *line, size_t len);

#endif
