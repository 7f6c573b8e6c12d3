/* fuzz_common.h - what the libFuzzer drivers share: invariant checks, the switches for findings
 * that are reported but fixed on another branch, input splitting and a loopback HTTP client.
 *
 * Header-only (static functions), so that each fuzz_<target>.c stays one translation unit and
 * the CMake glob needs no helper library. Every function here is for a fuzz driver only: it
 * aborts on failures of the harness itself (no port, no socket), which libFuzzer reports. */
#ifndef TASSA_FUZZ_COMMON_H
#define TASSA_FUZZ_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Findings of these drivers in code that another branch owns (see fuzz/README.md). While a
 * switch is 1 the driver skips the one check that the open defect breaks, so that
 * `make fuzz-smoke` stays green; set it to 0 once the fix is merged, and the check guards it
 * from then on. */
#ifndef FUZZ_KNOWN_LOOSE_NUMBERS
#define FUZZ_KNOWN_LOOSE_NUMBERS 0 /* issue 9 defect 10: " 50", "+5" accepted (strtol) */
#endif
#ifndef FUZZ_KNOWN_UTF8_NAMES
#define FUZZ_KNOWN_UTF8_NAMES 0 /* defect 3: an invalid-UTF-8 unique name is stored, then 500 */
#endif
#ifndef FUZZ_KNOWN_NUL_CUTS
#define FUZZ_KNOWN_NUL_CUTS 0 /* defect 6: NUL in Basic credentials and in path segments */
#endif
#ifndef FUZZ_KNOWN_QPOS
#define FUZZ_KNOWN_QPOS 0 /* defect 4: queue position leaks and 500s */
#endif
#ifndef FUZZ_KNOWN_PAGE_URL_CUT
#define FUZZ_KNOWN_PAGE_URL_CUT 0 /* P1 (fixed): page URLs cut at 1024 bytes lost Page/PageToken */
#endif
#ifndef FUZZ_KNOWN_ROUTER_UTF8
#define FUZZ_KNOWN_ROUTER_UTF8 0 /* R1 (fixed): invalid-UTF-8 Sid/EventType: no answer, or 500 */
#endif
#ifndef FUZZ_KNOWN_QUERY_STALL
#define FUZZ_KNOWN_QUERY_STALL 0 /* H1 (fixed): ~500+ query pieces: no answer, connection stalls */
#endif
#ifndef FUZZ_KNOWN_CURL_FOLD
#define FUZZ_KNOWN_CURL_FOLD 0 /* T1 (fixed): libcurl 7.88.1: folded reply header on a reused handle: UAF */
#endif

/* Aborts with a message (libFuzzer saves the input) when an invariant does not hold. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed (%s:%d): ", __FILE__, __LINE__);                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Splits data at the byte sep into at most n parts (the last part keeps any later sep):
 * parts[i] points into a malloc'd NUL-terminated copy, lens[i] is each part's length (a part
 * may hold NUL bytes). Missing parts are "". Returns the copy (free it), NULL on OOM. */
static inline char *fuzz_split(const uint8_t *data, size_t size, char sep, size_t n, char **parts,
                        size_t *lens)
{
    char *copy = malloc(size + 1);
    size_t i = 0, start = 0;
    if (!copy)
        return NULL;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t k = 0; k < n; k++) {
        parts[k] = copy + size;
        lens[k] = 0;
    }
    for (size_t p = 0; p <= size && i < n; p++) {
        if (p == size || (copy[p] == sep && i + 1 < n)) {
            parts[i] = copy + start;
            lens[i] = p - start;
            if (p < size)
                copy[p] = '\0';
            i++;
            start = p + 1;
        }
    }
    return copy;
}

/* True when s[0..len) is one or more ASCII digits and nothing else (a strict decimal). */
static inline bool fuzz_is_decimal(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Percent-encodes len bytes of s for a URL path segment or a query value (unreserved kept).
 * Returns a malloc'd string; aborts on OOM. */
static inline char *fuzz_pct(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(len * 3 + 1), *o = out;
    if (!out)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c) != NULL) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* A reply read back from the loopback server. */
typedef struct {
    int status;     /* HTTP status, 0 when the reply had no status line */
    char *raw;      /* whole reply, NUL-terminated (free with fuzz_reply_free) */
    size_t len;     /* bytes in raw */
    const char *body; /* into raw, after the blank line ("" when none) */
} fuzz_reply_t;

static inline void fuzz_reply_free(fuzz_reply_t *r)
{
    free(r->raw);
    r->raw = NULL;
}

/* Sends req (len bytes; it should carry "Connection: close") to 127.0.0.1:port and reads the
 * reply until the server closes. Aborts when the harness cannot connect; a reply that does not
 * come within 10 s aborts too (a stall is a finding). */
static inline void fuzz_http(int port, const char *req, size_t len, fuzz_reply_t *out)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 10};
    size_t cap = 4096, got = 0;
    int fd = -1, rc = -1;

    memset(out, 0, sizeof *out);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* libFuzzer's timers interrupt system calls (EINTR): try again on a new socket */
    for (int tries = 0; rc != 0 && tries < 100; tries++) {
        if (fd >= 0)
            close(fd);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof a);
        if (rc != 0 && errno != EINTR)
            break;
    }
    if (rc != 0) {
        perror("fuzz_http connect");
        abort();
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t sent = 0; sent < len;) {
        ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* the server may close early (413, 400): read what it said */
        sent += (size_t)w;
    }
    out->raw = malloc(cap);
    if (!out->raw)
        abort();
    for (;;) {
        if (got + 1024 > cap) {
            char *b = realloc(out->raw, cap *= 2);
            if (!b)
                abort();
            out->raw = b;
        }
        ssize_t r = recv(fd, out->raw + got, cap - got - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fprintf(stderr, "fuzz_http: no reply within 10 s (stall)\n");
            abort();
        }
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    out->raw[got] = '\0';
    out->len = got;
    if (got > 12 && !strncmp(out->raw, "HTTP/1.", 7))
        out->status = atoi(out->raw + 9);
    const char *blank = strstr(out->raw, "\r\n\r\n");
    out->body = blank ? blank + 4 : out->raw + got;
}

#endif
