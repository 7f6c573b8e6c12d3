/* fuzz_signature.c - libFuzzer driver for X-Twilio-Signature (src/auth/signature.c).
 *
 * Input: auth token, URL, form-encoded parameters and body, separated by '\n'. Invariants:
 *   - signature_compute equals an independent reference (sorted key+value text, HMAC-SHA1,
 *     base64) computed here with OpenSSL's one-shot HMAC;
 *   - what signature_compute signs, signature_validate accepts; one changed character of the
 *     signature, or a changed parameter, is refused;
 *   - the port variants: a signature over "https://host/..." validates against
 *     "https://host:443/..." and the other way round;
 *   - the bodySHA256 form: a URL carrying hex(sha256(body)) validates with that body and
 *     refuses any other body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/signature.h"
#include "fuzz_common.h"

typedef struct {
    const char *k, *v;
} kv_t;

static int kv_cmp(const void *a, const void *b)
{
    const kv_t *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

/* The reference: base64(HMAC-SHA1(token, url + key+value sorted)). twilio-node (webhooks.js,
 * `new Set(paramValue)`) signs a repeated identical pair once; with every set, each
 * occurrence is signed, as other signers do. tassa computes the first and accepts both. */
static void reference(const char *token, const char *url, const params_t *p, bool every,
                      char out[29])
{
    size_t n = p->len, total = strlen(url);
    kv_t *kv = calloc(n ? n : 1, sizeof *kv);
    unsigned char md[20];
    unsigned int md_len = 0;
    char *text, *t;

    if (!kv)
        abort();
    for (size_t i = 0; i < n; i++) {
        kv[i].k = p->items[i].key;
        kv[i].v = p->items[i].value;
        total += strlen(kv[i].k) + strlen(kv[i].v);
    }
    qsort(kv, n, sizeof *kv, kv_cmp);
    if (!(text = malloc(total + 1)))
        abort();
    t = stpcpy(text, url);
    for (size_t i = 0; i < n; i++) {
        if (!every && i > 0 && kv_cmp(&kv[i - 1], &kv[i]) == 0)
            continue;
        t = stpcpy(stpcpy(t, kv[i].k), kv[i].v);
    }
    HMAC(EVP_sha1(), token, (int)strlen(token), (unsigned char *)text, (size_t)(t - text), md,
         &md_len);
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    free(text);
    free(kv);
}

/* Writes url with ":443" after the host into out when url is "https://host[/?#...]" with a
 * plain host name; returns false otherwise. */
static bool with_port(const char *url, char *out, size_t cap)
{
    const char *host = url + 8, *end;
    if (strncmp(url, "https://", 8) != 0)
        return false;
    end = host + strspn(host, "abcdefghijklmnopqrstuvwxyz0123456789.-");
    if (end == host || (*end && !strchr("/?#", *end)) || strlen(url) + 5 > cap)
        return false;
    snprintf(out, cap, "%.*s:443%s", (int)(end - url), url, end);
    return true;
}

static void check_roundtrip(const char *token, const char *url, const params_t *p)
{
    char ref[29], every_ref[29], port_url[4200];
    char *sig = signature_compute(token, url, p);
    errmsg_t em;

    FUZZ_CHECK(sig != NULL, "signature_compute failed");
    reference(token, url, p, false, ref);
    reference(token, url, p, true, every_ref);
    FUZZ_CHECK(strcmp(sig, ref) == 0, "signature %s differs from the reference %s", sig, ref);
    if (*token && *url && strstr(url, "bodySHA256") == NULL) {
        FUZZ_CHECK(signature_validate(token, every_ref, url, p, NULL, 0, &em) == TASSA_OK,
                   "signature over every occurrence refused: %s", em.text);
        FUZZ_CHECK(signature_validate(token, sig, url, p, NULL, 0, &em) == TASSA_OK,
                   "own signature refused: %s", em.text);
        sig[3] = sig[3] == 'A' ? 'B' : 'A';
        FUZZ_CHECK(signature_validate(token, sig, url, p, NULL, 0, &em) == TASSA_EFORBIDDEN,
                   "changed signature accepted");
        sig[3] = ref[3];
        if (with_port(url, port_url, sizeof port_url)) {
            char *sig443 = signature_compute(token, port_url, p);
            FUZZ_CHECK(sig443 && signature_validate(token, sig443, url, p, NULL, 0, &em) == 0,
                       "signature over the :443 URL refused on the plain URL");
            FUZZ_CHECK(signature_validate(token, sig, port_url, p, NULL, 0, &em) == TASSA_OK,
                       "signature over the plain URL refused on the :443 URL");
            free(sig443);
        }
    }
    free(sig);
}

static void check_body_sha(const char *token, const char *url, const params_t *p, const char *body,
                           size_t body_len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    char hash[65], burl[4300], *sig;
    errmsg_t em;
    size_t base = strcspn(url, "?#");

    if (!*token || base == 0 || base > 4000)
        return;
    SHA256((const unsigned char *)(body_len ? body : "{}"), body_len ? body_len : 2, md);
    for (int i = 0; i < 32; i++) {
        hash[2 * i] = hex[md[i] >> 4];
        hash[2 * i + 1] = hex[md[i] & 15];
    }
    hash[64] = '\0';
    snprintf(burl, sizeof burl, "%.*s?bodySHA256=%s", (int)base, url, hash);
    sig = signature_compute(token, burl, NULL);
    FUZZ_CHECK(sig != NULL, "signature_compute failed");
    /* the form parameters do not count in this form */
    FUZZ_CHECK(signature_validate(token, sig, burl, p, body, body_len, &em) == TASSA_OK,
               "bodySHA256 signature refused: %s", em.text);
    char *other = malloc(body_len + 2);
    if (!other)
        abort();
    memcpy(other, body, body_len);
    other[body_len] = 'x';
    FUZZ_CHECK(signature_validate(token, sig, burl, p, other, body_len + 1, &em) ==
                   TASSA_EFORBIDDEN,
               "bodySHA256 accepted another body");
    free(other);
    free(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[4];
    size_t lens[4];
    char *copy = fuzz_split(data, size, '\n', 4, parts, lens);
    params_t *p = params_new();

    if (!copy || !p || lens[1] > 4000)
        goto out;
    /* the token and URL are C strings to the server */
    if (strlen(parts[0]) != lens[0] || strlen(parts[1]) != lens[1])
        goto out;
    (void)params_parse_form(p, parts[2], lens[2], NULL); /* on error p stays empty */
    check_roundtrip(parts[0], parts[1], p);
    check_body_sha(parts[0], parts[1], p, parts[3], lens[3]);
    {
        errmsg_t em;
        /* arbitrary header text: refused or accepted, never more */
        tassa_err e = signature_validate(parts[0], parts[3], parts[1], p, parts[3], lens[3], &em);
        FUZZ_CHECK(e == TASSA_OK || e == TASSA_EFORBIDDEN, "unexpected error %d", e);
    }
out:
    params_free(p);
    free(copy);
    return 0;
}
