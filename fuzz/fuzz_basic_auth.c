/* fuzz_basic_auth.c - libFuzzer driver for HTTP Basic authentication of the REST API
 * (src/auth/basic_auth.c and src/http/rest_auth.c behind the real HTTP layer, src/http/server.c, on
 * a loopback port opened once per process).
 *
 * Input: a mode byte, then the credentials. Mode even: the rest is the decoded "user:password"
 * text, sent base64-encoded after "Basic " (so it may hold any byte, NUL included). Mode odd:
 * the rest is the raw Authorization header value (CR, LF and NUL made spaces, so that the
 * request stays one request). Invariants:
 *   - 200 exactly when the decoded credentials are API_KEY:API_SECRET or
 *     ACCOUNT_SID:AUTH_TOKEN, byte for byte (issue 9 defect 6: "KEY:SECRET\0x" must fail);
 *   - every refusal is Twilio's 401 (code 20003) with WWW-Authenticate; nothing else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "http/rest_auth.h"
#include "fuzz_common.h"
#include "base/log.h"

#define KEY    "SK0123456789abcdef0123456789abcdef"
#define SECRET "api-secret-for-fuzzing"
#define SID    "AC0123456789abcdef0123456789abcdef"
#define TOKEN  "auth-token-for-fuzzing"

static config_t config = {
    .api_key = KEY, .api_secret = SECRET, .account_sid = SID, .auth_token = TOKEN};
static int port;

static void handle(void *ctx, http_req_t *req, http_resp_t *resp)
{
    if (rest_auth_require(req, resp, &config))
        http_resp_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    http_opts_t o = {.bind_addr = "127.0.0.1", .port = 0, .threads = 2, .max_body = 1 << 20};
    http_server_t *s;
    errmsg_t em = {{0}};

    log_set_level(LOG_ERROR);
    s = http_server_new(&o);
    if (!s || http_server_route(s, "GET", "/v1/Services/{}", handle, NULL) ||
        http_server_start(s, &em)) {
        fprintf(stderr, "cannot start the server: %s\n", em.text);
        abort();
    }
    port = http_server_port(s);
    return 0; /* the server lives as long as the process */
}

/* True when cred[0..len) is exactly one of the two credential pairs. */
static bool valid(const char *cred, size_t len)
{
    static const char *const ok[] = {KEY ":" SECRET, SID ":" TOKEN};
    for (int i = 0; i < 2; i++)
        if (len == strlen(ok[i]) && !memcmp(cred, ok[i], len))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = size ? size - 1 : 0;
    const char *cred = (const char *)data + 1;
    char *header, *req;
    size_t hlen, rlen;
    fuzz_reply_t r;
    bool expect_ok = false, may_ok = false;

    if (size < 1 || n > 4096)
        return 0;
    header = malloc(4 * n + 16);
    req = malloc(4 * n + 256);
    if (!header || !req)
        abort();
    if (data[0] % 2 == 0) {
        memcpy(header, "Basic ", 6);
        hlen = 6 + (size_t)EVP_EncodeBlock((unsigned char *)header + 6, (const unsigned char *)cred,
                                           (int)n);
        expect_ok = valid(cred, n);
        /* while defect 6 is open, the text before a NUL is what gets compared */
        may_ok = FUZZ_KNOWN_NUL_CUTS && memchr(cred, '\0', n) && valid(cred, strnlen(cred, n));
    } else {
        for (size_t i = 0; i < n; i++)
            header[i] = (cred[i] == '\r' || cred[i] == '\n' || cred[i] == '\0') ? ' ' : cred[i];
        hlen = n;
        may_ok = true; /* checked below against the header's own decoding */
    }
    header[hlen] = '\0';
    rlen = (size_t)snprintf(req, 4 * n + 256,
                            "GET /v1/Services/default HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Connection: close\r\nAuthorization: %s\r\n\r\n",
                            header);
    fuzz_http(port, req, rlen, &r);
    if (expect_ok) {
        FUZZ_CHECK(r.status == 200, "valid credentials answered %d", r.status);
    } else if (r.status == 200) {
        FUZZ_CHECK(may_ok, "credentials accepted that are not the configured ones");
        if (data[0] % 2) {
            /* the raw header must carry one of the pairs in base64 */
            const char *b = header + strspn(header, " \t");
            unsigned char dec[4096 * 3 / 4 + 4];
            size_t bl;
            int dl;
            FUZZ_CHECK(!strncasecmp(b, "basic", 5), "accepted without the Basic scheme");
            b += 5 + strspn(b + 5, " \t");
            /* the token: the base64 characters that follow (libmicrohttpd ignores what
             * comes after them; the credentials must still match exactly) */
            bl = strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
            dl = EVP_DecodeBlock(dec, (const unsigned char *)b, (int)bl);
            while (dl > 0 && bl && b[bl - 1] == '=') {
                dl--;
                bl--;
            }
            if (dl >= 0)
                dec[dl] = '\0';
            FUZZ_CHECK(dl > 0 && (valid((char *)dec, (size_t)dl) ||
                                  (FUZZ_KNOWN_NUL_CUTS &&
                                   valid((char *)dec, strnlen((char *)dec, (size_t)dl)))),
                       "raw header accepted: %s", header);
        }
    } else {
        FUZZ_CHECK(r.status == 401 || r.status == 400, "refusal answered %d", r.status);
        if (r.status == 401) {
            FUZZ_CHECK(strstr(r.body, "\"code\":20003") != NULL, "401 without Twilio's body");
            FUZZ_CHECK(strcasestr(r.raw, "\r\nWWW-Authenticate: Basic") != NULL,
                       "401 without WWW-Authenticate");
        }
    }
    fuzz_reply_free(&r);
    free(header);
    free(req);
    return 0;
}
