/* test_sync_doc_text.c - a document's answer written straight as text (sync_doc_text) is the
 * very text jansson gives for the resource built with json_pack (doc_by_pack): fixed cases (no
 * unique name, an expiry, quotes, control characters, UTF-8, nested data) and random ones, and NULL
 * exactly where jansson fails (a string that is not UTF-8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/timefmt.h"
#include "engine/sync/documents.h"

/* The oracle: Twilio's document resource built with jansson's json_pack, the way the server
 * answered before sync_doc_text (and sync_doc_json built it until it became a parse of that). */
static json_t *doc_by_pack(const sync_doc_t *d, const char *account_sid, const char *base_url)
{
    char created[TIMEFMT_LEN], updated[TIMEFMT_LEN], expires[TIMEFMT_LEN];
    char url[512], perms[560], rev[24];
    timefmt_iso(d->created_ms, created);
    timefmt_iso(d->updated_ms, updated);
    if (d->expires_ms)
        timefmt_iso(d->expires_ms, expires);
    snprintf(url, sizeof url, "%s/v1/Services/%s/Documents/%s", base_url, d->service_sid, d->sid);
    snprintf(perms, sizeof perms, "%s/Permissions", url);
    snprintf(rev, sizeof rev, "%lld", (long long)d->revision);
    json_t *data = json_loads(d->data ? d->data : "{}", 0, NULL);
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:{s:s}, s:s, s:o?, s:s?, s:s, s:s, s:s}", "sid",
                     d->sid, "unique_name", d->unique_name, "account_sid", account_sid,
                     "service_sid", d->service_sid, "url", url, "links", "permissions", perms,
                     "revision", rev, "data", data, "date_expires", d->expires_ms ? expires : NULL,
                     "date_created", created, "date_updated", updated, "created_by", d->created_by);
}

/* The oracle's compact dump. */
static char *by_jansson(const sync_doc_t *d, const char *account, const char *base)
{
    json_t *j = doc_by_pack(d, account, base);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return text;
}

static void check_same(const sync_doc_t *d, const char *account, const char *base)
{
    char *want = by_jansson(d, account, base), *got = sync_doc_text(d, account, base);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static sync_doc_t doc(const char *unique_name, char *data, int64_t expires_ms)
{
    sync_doc_t d = {.unique_name = (char *)unique_name,
                    .data = data,
                    .revision = 42,
                    .created_ms = 1764633600123,
                    .updated_ms = 1764633661999,
                    .expires_ms = expires_ms};
    snprintf(d.sid, sizeof d.sid, "ET0123456789abcdef0123456789abcdef");
    snprintf(d.service_sid, sizeof d.service_sid, "IS0123456789abcdef0123456789abcdef");
    snprintf(d.created_by, sizeof d.created_by, "system");
    return d;
}

static void fixed_documents_read_as_jansson_writes_them(void **state)
{
    (void)state;
    char data[] = "{\"a\":[1,2.5,{\"b\":null}],\"s\":\"x\\\"y\\u0001\",\"t\":true}";
    const char *names[] = {NULL,
                           "queue-status",
                           "quote\"back\\slash",
                           "tab\tnl\ncr\r\x01\x1f",
                           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                           "/slash/",
                           ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        sync_doc_t d = doc(names[i], data, 0);
        check_same(&d, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "http://localhost:3000");
        d = doc(names[i], i % 2 ? NULL : data, 1764637200000);
        check_same(&d, "AC\"odd\"", "https://h.example/base path");
        snprintf(d.created_by, sizeof d.created_by, "alice \"the\" \xc3\xa9");
        check_same(&d, "ACx", "");
    }
}

static void strings_that_are_not_utf8_fail_as_jansson_does(void **state)
{
    (void)state;
    const char *bad[] = {"\xff", "a\xc3", "\xed\xa0\x80" /* a surrogate */,
                         "\xc0\xaf" /* overlong */, "\xf4\x90\x80\x80" /* past U+10FFFF */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sync_doc_t d = doc(bad[i], NULL, 0);
        assert_null(sync_doc_text(&d, "ACx", "http://h"));
        check_same(&d, "ACx", "http://h");
        d = doc("ok", NULL, 0);
        snprintf(d.created_by, sizeof d.created_by, "%s", bad[i]);
        assert_null(sync_doc_text(&d, "ACx", "http://h"));
        d = doc("ok", NULL, 0);
        assert_null(sync_doc_text(&d, "ACx", bad[i])); /* in the url */
    }
}

static void random_documents_read_as_jansson_writes_them(void **state)
{
    (void)state;
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        char name[24];
        size_t n = (size_t)(rand_r(&seed) % 20);
        for (size_t i = 0; i < n; i++)
            name[i] = (char)(1 + rand_r(&seed) % 255); /* any byte but NUL: often not UTF-8 */
        name[n] = '\0';
        json_t *o = json_object();
        json_object_set_new(o, "n", json_integer(rand_r(&seed)));
        json_object_set_new(o, "v", json_stringn(name, strlen(name)));
        char *data = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        sync_doc_t d = doc(round % 3 ? name : NULL, data, round % 2 ? 1764637200000 : 0);
        d.revision = rand_r(&seed);
        check_same(&d, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "http://127.0.0.1:3000");
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixed_documents_read_as_jansson_writes_them),
        cmocka_unit_test(strings_that_are_not_utf8_fail_as_jansson_does),
        cmocka_unit_test(random_documents_read_as_jansson_writes_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
