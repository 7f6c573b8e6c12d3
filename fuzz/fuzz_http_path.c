/* fuzz_http_path.c - libFuzzer driver for request paths: segment splitting, %XX decoding and
 * route matching (src/http/server.c) and the static pages (src/http/static_files.c), through
 * the real HTTP layer on a loopback port opened once per process.
 *
 * The server has two echo routes that answer their decoded `{}` segments, and the static
 * page routes on a web directory made in /tmp with public pages, a hidden file, and a
 * symbolic link that points out of it to a secret file. Input: a method byte, then the
 * request target (bytes a request line cannot carry are sent %-encoded). Invariants:
 *   - never a 500, always a status line;
 *   - an echo route sees exactly the %-decoded segments of the path, and (issue 9 defect 6,
 *     once fixed) never a segment with a NUL;
 *   - a page is served only for the path that names it, with that file's bytes; the hidden
 *     file and the secret behind the link never appear in any answer;
 *   - an unknown /v1/ path answers Twilio's JSON 404, never a page. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "http/static_files.h"
#include "base/log.h"

#define SECRET_TEXT "secret bytes outside the web dir" /* raw, a target holds no space */
#define HIDDEN_TEXT "hidden file bytes"

static const struct {
    const char *name, *text;
} PAGES[] = {
    {"index.html", "<!doctype html><title>index-page</title>"},
    {"app.js", "console.log('app-js');"},
    {"css/site.css", "body{color:#123}/*site-css*/"},
    {"a b.txt", "page-with-space"},
};

static config_t config;
static http_server_t *http;
static int port;

/* Hex of s, so that any bytes survive the JSON answer. Static buffer of the caller. */
static const char *hex_of(const char *s, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", (unsigned char)s[i]);
    out[2 * len] = '\0';
    return out;
}

/* Answers the route's arguments, hex-encoded. */
static void echo(void *ctx, http_req_t *req, http_resp_t *resp)
{
    json_t *a = json_array();
    char hex[4200];
    for (int i = 0; i < HTTP_MAX_PATH_ARGS && req->args[i]; i++) {
        size_t n = strlen(req->args[i]);
        json_array_append_new(a, json_string(hex_of(req->args[i], n < 2048 ? n : 2048, hex)));
    }
    http_resp_json(resp, 200, json_pack("{s:s, s:o}", "echo", "yes", "args", a));
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "w")) || fputs(text, f) < 0 || fclose(f))
        abort();
}

static char dir[256], secret[300], link_path[600], sub[300];

/* Removes the web folder at exit (libFuzzer exits through exit() when it is done). */
static void cleanup(void)
{
    char path[600];
    for (size_t i = 0; i < sizeof PAGES / sizeof PAGES[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, PAGES[i].name);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/.hidden", dir);
    unlink(path);
    unlink(link_path);
    unlink(secret);
    rmdir(sub);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    http_opts_t o = {.bind_addr = "127.0.0.1", .port = 0, .threads = 2, .max_body = 1 << 20};
    errmsg_t em = {{0}};

    log_set_level(LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/tassa-fuzz-web-%d", (int)getpid());
    snprintf(sub, sizeof sub, "%s/css", dir);
    snprintf(secret, sizeof secret, "%s-secret.txt", dir);
    snprintf(link_path, sizeof link_path, "%s/escape.txt", dir);
    mkdir(dir, 0700);
    mkdir(sub, 0700);
    for (size_t i = 0; i < sizeof PAGES / sizeof PAGES[0]; i++)
        put(dir, PAGES[i].name, PAGES[i].text);
    put(dir, ".hidden", HIDDEN_TEXT);
    put("/tmp", strrchr(secret, '/') + 1, SECRET_TEXT);
    unlink(link_path);
    if (symlink(secret, link_path) != 0)
        abort();
    atexit(cleanup);
    config.web_dir = dir;
    config.cors_origins = "*";
    if (!(http = http_server_new(&o)) ||
        http_server_route(http, "GET", "/v1/Services/{}/Documents/{}", echo, NULL) ||
        http_server_route(http, "*", "/general/{}", echo, NULL) ||
        static_files_register(http, &config) || http_server_start(http, &em)) {
        fprintf(stderr, "cannot start the server: %s\n", em.text);
        abort();
    }
    port = http_server_port(http);
    return 0; /* server and directory live as long as the process */
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Splits the target's path (before '?') into its non-empty segments, %-decoded as
 * MHD_http_unescape does (a bad escape stays as it is). Returns the count (at most max). */
static size_t segments(const char *target, char out[][1024], size_t *lens, size_t max)
{
    size_t n = 0, plen = strcspn(target, "?");
    for (size_t i = 0; i < plen && n < max;) {
        size_t j = i, o = 0;
        while (j < plen && target[j] != '/') {
            if (target[j] == '%' && j + 2 < plen + 1 && hexval(target[j + 1]) >= 0 &&
                hexval(target[j + 2]) >= 0 && j + 2 < plen) {
                out[n][o++] = (char)(hexval(target[j + 1]) * 16 + hexval(target[j + 2]));
                j += 3;
            } else {
                out[n][o++] = target[j++];
            }
            if (o >= 1023)
                break;
        }
        if (j > i) {
            lens[n] = o;
            out[n][o] = '\0';
            n++;
        }
        i = j + 1;
    }
    return n;
}

/* Does target, %-decoded and with '+' as a space (as a query is read), contain text? */
static bool carries(const char *target, const char *text)
{
    size_t n = strlen(target), o = 0;
    char *d = malloc(n + 1);
    if (!d)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (target[i] == '%' && i + 2 < n && hexval(target[i + 1]) >= 0 &&
            hexval(target[i + 2]) >= 0) {
            d[o++] = (char)(hexval(target[i + 1]) * 16 + hexval(target[i + 2]));
            i += 2;
        } else {
            d[o++] = target[i] == '+' ? ' ' : target[i];
        }
    }
    d[o] = '\0';
    /* memmem, not strstr: a %00 before the text must not hide that the target carried it
     * (the server names a parameter from past such a byte; found by fuzz-smoke) */
    bool found = memmem(d, o, text, strlen(text)) != NULL;
    free(d);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE"};
    static char segs[16][1024];
    size_t lens[16], nseg;
    char *target, *req, *t;
    size_t rlen;
    fuzz_reply_t r;
    const char *method;

    if (size < 1 || size > 2048)
        return 0;
    method = methods[data[0] % 4];
    if (FUZZ_KNOWN_QUERY_STALL) {
        /* finding H1 (fuzz/README.md): hundreds of query pieces get no answer at all */
        size_t amps = 0;
        for (size_t i = 1; i < size; i++)
            amps += data[i] == '&';
        if (amps > 300)
            return 0;
    }
    target = malloc(3 * size + 2);
    req = malloc(3 * size + 256);
    if (!target || !req)
        abort();
    t = target;
    if (size < 2 || data[1] != '/')
        *t++ = '/';
    for (size_t i = 1; i < size; i++) {
        unsigned char c = data[i];
        if (c <= 0x20 || c >= 0x7f)
            t += sprintf(t, "%%%02X", c);
        else
            *t++ = (char)c;
    }
    *t = '\0';
    rlen = (size_t)snprintf(req, 3 * size + 256,
                            "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
                            method, target, !strcmp(method, "POST") ? "Content-Length: 0\r\n" : "");
    fuzz_http(port, req, rlen, &r);
    FUZZ_CHECK(r.status >= 200 && r.status < 500, "%s %s answered %d", method, target, r.status);
    /* an error may name a query parameter: text the target itself carried is no leak */
    FUZZ_CHECK(!strstr(r.raw, SECRET_TEXT) || carries(target, SECRET_TEXT),
               "%s %s leaked the file behind the link", method, target);
    FUZZ_CHECK(!strstr(r.raw, HIDDEN_TEXT) || carries(target, HIDDEN_TEXT),
               "%s %s served the hidden file", method, target);
    nseg = segments(target, segs, lens, 16);
    if (r.status == 200 && strstr(r.body, "\"echo\":\"yes\"")) {
        json_t *j = json_loads(r.body, 0, NULL), *args = json_object_get(j, "args");
        bool nul = false;
        for (size_t s = 0; s < nseg; s++)
            nul = nul || memchr(segs[s], '\0', lens[s]) != NULL;
        /* a literal segment matched up to a NUL ("v1%00") is the same defect */
        FUZZ_CHECK(FUZZ_KNOWN_NUL_CUTS || !nul, "a path with a NUL reached a handler: %s", target);
        FUZZ_CHECK(json_is_array(args), "echo without args");
        for (size_t i = 0; i < json_array_size(args); i++) {
            /* /v1/Services/{}/Documents/{} (segments 2 and 4) or /general/{} (segment 1) */
            size_t k = nseg == 5 ? 2 + 2 * i : 1;
            const char *got = json_string_value(json_array_get(args, i));
            char want[4200];
            FUZZ_CHECK(k < nseg && !strcmp(got, hex_of(segs[k], strlen(segs[k]), want)),
                       "%s: argument %zu is %s, not %s", target, i, got, k < nseg ? want : "?");
        }
        json_decref(j);
    } else if (r.status == 200 && !strcmp(method, "GET")) {
        bool found = false;
        for (size_t i = 0; i < sizeof PAGES / sizeof PAGES[0] && !found; i++) {
            if (strcmp(r.body, PAGES[i].text))
                continue;
            found = true;
            /* the page named by the path ("/" is index.html); while defect 6 is open a
             * segment counts up to its first NUL */
            char want[2048] = "";
            bool nul = false;
            for (size_t s = 0; s < nseg; s++) {
                nul = nul || memchr(segs[s], '\0', lens[s]) != NULL;
                strcat(want, s ? "/" : "");
                strncat(want, segs[s], sizeof want - strlen(want) - 2);
            }
            if (nseg == 0)
                strcpy(want, "index.html");
            FUZZ_CHECK(FUZZ_KNOWN_NUL_CUTS || !nul, "%s (a NUL segment) served %s", target,
                       PAGES[i].name);
            FUZZ_CHECK(!strcmp(want, PAGES[i].name), "%s served %s", target, PAGES[i].name);
        }
        FUZZ_CHECK(found, "GET %s answered 200 with an unknown body: %.80s", target, r.body);
    }
    if (!strncmp(target, "/v1/", 4) && r.status == 404 && strcmp(method, "HEAD"))
        FUZZ_CHECK(strstr(r.body, "\"code\":20404") != NULL, "/v1/ 404 without Twilio's body: %s",
                   r.raw);
    fuzz_reply_free(&r);
    free(target);
    free(req);
    return 0;
}
