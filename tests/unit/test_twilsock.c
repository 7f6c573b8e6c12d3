/* test_twilsock.c - twilsock V3.0 frames (twilsock_parse / twilsock_build) and the WebSocket
 * upgrade checks (ws_check_upgrade). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/twilsock.h"
#include "http/ws.h"

static tassa_err parse_str(const char *s, twilsock_frame_t *f)
{
    errmsg_t em = {{0}};
    return twilsock_parse((const uint8_t *)s, strlen(s), f, &em);
}

/* The init frame twilio-sync 4.0.1 sends (spec 1.3), header length counted in bytes. */
static void parses_the_sdk_init(void **state)
{
    (void)state;
    const char *hdr = "{\"id\":\"TM1\",\"method\":\"init\",\"token\":\"t\",\"continuation_token\":"
                      "null,\"payload_size\":0}";
    char buf[256];
    snprintf(buf, sizeof buf, "TWILSOCK V3.0 %zu\r\n%s\r\n", strlen(hdr), hdr);
    twilsock_frame_t f;
    assert_int_equal(parse_str(buf, &f), TASSA_OK);
    assert_string_equal(json_string_value(json_object_get(f.header, "method")), "init");
    assert_string_equal(json_string_value(json_object_get(f.header, "token")), "t");
    assert_int_equal(f.payload_len, 0);
    json_decref(f.header);
}

/* H and payload_size count UTF-8 bytes: "é" is two. */
static void lengths_are_bytes(void **state)
{
    (void)state;
    const char *hdr = "{\"method\":\"message\",\"id\":\"\xc3\xa9\",\"payload_size\":4}";
    char buf[256];
    snprintf(buf, sizeof buf, "TWILSOCK V3.0 %zu\r\n%s\r\n\xc3\xa9\xc3\xa9trailing", strlen(hdr),
             hdr);
    twilsock_frame_t f;
    assert_int_equal(parse_str(buf, &f), TASSA_OK);
    assert_int_equal(f.payload_len, 4);
    assert_memory_equal(f.payload, "\xc3\xa9\xc3\xa9", 4);
    json_decref(f.header);
}

static void refuses_malformed_frames(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "TWILSOCK V3.0 ",
        "TWILSOCK V2.0 2\r\n{}",
        "TWILSOCK V3.0 x\r\n{}",
        "TWILSOCK V3.0 2\n{}",
        "TWILSOCK V3.0 0\r\n",
        "TWILSOCK V3.0 99\r\n{\"method\":\"init\"}", /* header cut short */
        "TWILSOCK V3.0 2\r\n{}",                     /* no method */
        "TWILSOCK V3.0 15\r\n{\"method\":true}",     /* method not a string */
        "TWILSOCK V3.0 3\r\n[1]",                    /* not an object */
        "TWILSOCK V3.0 999999999\r\n{}",             /* header too long */
        "TWILSOCK V3.0 31\r\n{\"method\":\"m\",\"payload_size\":5}\r\nabc", /* payload short */
        "TWILSOCK V3.0 32\r\n{\"method\":\"m\",\"payload_size\":-1}\r\n",
        "TWILSOCK V3.0 33\r\n{\"method\":\"m\",\"payload_size\":\"1\"}\r\nx",
        "TWILSOCK V3.0 27\r\n{\"method\":\"m\",\"method\":\"n\"}", /* duplicate key */
    };
    /* controls: the lengths above are right, only the flaw named fails each */
    twilsock_frame_t ok;
    assert_int_equal(
        parse_str("TWILSOCK V3.0 31\r\n{\"method\":\"m\",\"payload_size\":5}\r\nabcde", &ok),
        TASSA_OK);
    json_decref(ok.header);
    assert_int_equal(parse_str("TWILSOCK V3.0 17\r\n{\"method\":\"init\"}", &ok), TASSA_OK);
    json_decref(ok.header);
    assert_int_equal(parse_str("TWILSOCK V3.0 26\r\n{\"method\":\"m\",\"other\":\"n\"}", &ok),
                     TASSA_OK);
    json_decref(ok.header);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        twilsock_frame_t f;
        assert_int_equal(parse_str(bad[i], &f), TASSA_EINVAL);
        assert_null(f.header);
    }
}

static void build_then_parse_round_trips(void **state)
{
    (void)state;
    json_t *h = json_pack("{s:s, s:s, s:i}", "method", "reply", "id", "TMx", "payload_size", 99);
    size_t n;
    uint8_t *buf = twilsock_build(h, "{\"a\":1}", 7, &n);
    assert_non_null(buf);
    assert_memory_equal(buf, "TWILSOCK V3.0 ", 14);
    twilsock_frame_t f;
    errmsg_t em = {{0}};
    assert_int_equal(twilsock_parse(buf, n, &f, &em), TASSA_OK);
    assert_string_equal(json_string_value(json_object_get(f.header, "id")), "TMx");
    assert_int_equal(json_integer_value(json_object_get(f.header, "payload_size")), 7);
    assert_int_equal(f.payload_len, 7);
    assert_memory_equal(f.payload, "{\"a\":1}", 7);
    /* the caller's header is not changed */
    assert_int_equal(json_integer_value(json_object_get(h, "payload_size")), 99);
    json_decref(f.header);
    free(buf);
    /* no payload: still the CRLF after the header, payload_size 0 */
    buf = twilsock_build(h, NULL, 0, &n);
    assert_non_null(buf);
    assert_memory_equal(buf + n - 2, "\r\n", 2);
    assert_int_equal(twilsock_parse(buf, n, &f, &em), TASSA_OK);
    assert_int_equal(f.payload_len, 0);
    json_decref(f.header);
    free(buf);
    json_decref(h);
    assert_null(twilsock_build(NULL, NULL, 0, &n));
}

/* RFC 6455 section 1.3's example key and accept value. */
static void upgrade_accepts_the_rfc_example(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    errmsg_t em = {{0}};
    assert_int_equal(ws_check_upgrade("GET", "websocket", "keep-alive, Upgrade", "13",
                                      "dGhlIHNhbXBsZSBub25jZQ==", accept, &em),
                     TASSA_OK);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ws_check_upgrade("GET", "WebSocket", "upgrade", "13",
                                      "dGhlIHNhbXBsZSBub25jZQ==", accept, &em),
                     TASSA_OK);
}

static void upgrade_refuses_bad_headers(void **state)
{
    (void)state;
    char accept[WS_ACCEPT_LEN + 1];
    errmsg_t em = {{0}};
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(ws_check_upgrade("POST", "websocket", "Upgrade", "13", key, accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", NULL, "Upgrade", "13", key, accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", "websockets", "Upgrade", "13", key, accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", "websocket", "close", "13", key, accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", "websocket", "Upgrade", NULL, key, accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", "websocket", "Upgrade", "8", key, accept, &em),
                     TASSA_ECONFLICT);
    assert_int_equal(ws_check_upgrade("GET", "websocket", "Upgrade", "13", NULL, accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", "websocket", "Upgrade", "13", "dGhl", accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", "websocket", "Upgrade", "13",
                                      "dGhlIHNhbXBsZSBub25jZQ=!", accept, &em),
                     TASSA_EINVAL);
    assert_int_equal(ws_check_upgrade("GET", "websocket", "Upgrade", "13",
                                      "dGhlIHNhbXBs*SBub25jZQ==", accept, &em),
                     TASSA_EINVAL);
    assert_string_equal(accept, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_sdk_init),
        cmocka_unit_test(lengths_are_bytes),
        cmocka_unit_test(refuses_malformed_frames),
        cmocka_unit_test(build_then_parse_round_trips),
        cmocka_unit_test(upgrade_accepts_the_rfc_example),
        cmocka_unit_test(upgrade_refuses_bad_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
