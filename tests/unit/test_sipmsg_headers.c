/* Unit tests: header scanning shared by the framers, and the public header
 * helpers (siptls_sipmsg_header, _header_next, _is_request). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sipmsg/sipmsg_internal.h"

#define U8(s) ((const uint8_t *)(s))

static const char REQ[] =
    "INVITE sips:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TLS proxy.example.com;branch=z9hG4bK1\r\n"
    "v : SIP/2.0/TLS pc33.example.com;branch=z9hG4bK2 \t \r\n"
    "VIA:SIP/2.0/TLS a.example.com;branch=z9hG4bK3, SIP/2.0/TLS b.example.com\r\n"
    "To: Bob <sips:bob@biloxi.example.com>\r\n"
    "f: Alice <sips:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Subject: first line\r\n"
    " folded second line\r\n"
    "X-Empty:\r\n"
    "no colon here\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

static size_t hlen(const char *m)
{
    return (size_t)(strstr(m, "\r\n\r\n") - m) + 4;
}

static void expect_header(const char *msg, const char *name, char compact, const char *want)
{
    const uint8_t *v = NULL;
    size_t vl = 0;
    int rc = siptls_sipmsg_header(U8(msg), hlen(msg), name, compact, &v, &vl);
    if (want == NULL) {
        assert_int_equal(rc, SIPTLS_AGAIN);
        return;
    }
    assert_int_equal(rc, SIPTLS_OK);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(v, want, vl);
}

static void test_header_lookup(void **state)
{
    (void)state;
    expect_header(REQ, "Via", 'v', "SIP/2.0/TLS proxy.example.com;branch=z9hG4bK1");
    expect_header(REQ, "to", 't', "Bob <sips:bob@biloxi.example.com>");
    expect_header(REQ, "From", 'f', "Alice <sips:alice@atlanta.example.com>;tag=1928301774");
    expect_header(REQ, "From", 0, NULL); /* only the compact form is present */
    expect_header(REQ, "CALL-ID", 'i', "a84b4c76e66710");
    expect_header(REQ, "CSeq", 0, "314159 INVITE");
    expect_header(REQ, "Content-Length", 'l', "0");
    expect_header(REQ, "Subject", 's', "first line"); /* folding not joined */
    expect_header(REQ, "X-Empty", 0, "");
    expect_header(REQ, "Contact", 'm', NULL);
    expect_header(REQ, "INVITE sips", 0, NULL); /* the start line is not a header */
    expect_header(REQ, "folded second line", 0, NULL);
    expect_header(REQ, "no colon here", 0, NULL);
    expect_header(REQ, "", 0, NULL);

    /* Bare LF lines. */
    const char *lf = "SIP/2.0 200 OK\nVia: a\nl: 3\n\nabc";
    const uint8_t *v;
    size_t vl;
    assert_int_equal(siptls_sipmsg_header(U8(lf), 28, "Content-Length", 'l', &v, &vl), SIPTLS_OK);
    assert_int_equal(vl, 1);
    assert_memory_equal(v, "3", 1);
    /* The body is not searched. */
    const char *body = "MESSAGE sip:a SIP/2.0\r\nl: 9\r\n\r\nTo: nope\r\n";
    assert_int_equal(siptls_sipmsg_header(U8(body), 31, "To", 't', &v, &vl), SIPTLS_AGAIN);
    /* Header block without the empty line (header_len cut short). */
    assert_int_equal(siptls_sipmsg_header(U8(REQ), 60, "Via", 'v', &v, &vl), SIPTLS_AGAIN);
    assert_int_equal(siptls_sipmsg_header(U8(REQ), 30, "Via", 'v', &v, &vl), SIPTLS_AGAIN);
    assert_int_equal(siptls_sipmsg_header(U8(REQ), 0, "Via", 'v', &v, &vl), SIPTLS_AGAIN);

    assert_int_equal(siptls_sipmsg_header(NULL, 1, "Via", 'v', &v, &vl), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_sipmsg_header(U8(REQ), 1, NULL, 'v', &v, &vl), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_sipmsg_header(U8(REQ), 1, "Via", 'v', NULL, &vl), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_sipmsg_header(U8(REQ), 1, "Via", 'v', &v, NULL), SIPTLS_ERR_INVAL);
}

static void test_header_next_all_vias(void **state)
{
    (void)state;
    const char *want[] = {
        "SIP/2.0/TLS proxy.example.com;branch=z9hG4bK1",
        "SIP/2.0/TLS pc33.example.com;branch=z9hG4bK2",
        "SIP/2.0/TLS a.example.com;branch=z9hG4bK3, SIP/2.0/TLS b.example.com",
    };
    size_t cur = 0;
    const uint8_t *v;
    size_t vl;
    size_t n = 0;
    while (siptls_sipmsg_header_next(U8(REQ), hlen(REQ), "Via", 'v', &cur, &v, &vl) == SIPTLS_OK) {
        assert_true(n < 3);
        assert_int_equal(vl, strlen(want[n]));
        assert_memory_equal(v, want[n], vl);
        n++;
    }
    assert_int_equal(n, 3);
    /* Exhausted stays exhausted. */
    assert_int_equal(siptls_sipmsg_header_next(U8(REQ), hlen(REQ), "Via", 'v', &cur, &v, &vl),
                     SIPTLS_AGAIN);
    assert_int_equal(siptls_sipmsg_header_next(U8(REQ), hlen(REQ), "Via", 'v', NULL, &v, &vl),
                     SIPTLS_ERR_INVAL);

    /* A stateless responder copies Via/From/To/Call-ID/CSeq in order. */
    const char *names[] = {"Via", "From", "To", "Call-ID", "CSeq"};
    const char compacts[] = {'v', 'f', 't', 'i', 0};
    size_t counts[] = {3, 1, 1, 1, 1};
    for (size_t i = 0; i < 5; i++) {
        cur = 0;
        n = 0;
        while (siptls_sipmsg_header_next(U8(REQ), hlen(REQ), names[i], compacts[i], &cur, &v,
                                         &vl) == SIPTLS_OK) {
            assert_true(v > U8(REQ) && v + vl < U8(REQ) + hlen(REQ));
            n++;
        }
        assert_int_equal(n, counts[i]);
    }
}

static void test_is_request(void **state)
{
    (void)state;
    assert_int_equal(siptls_sipmsg_is_request(U8(REQ), strlen(REQ)), 1);
    assert_int_equal(siptls_sipmsg_is_request(U8("SIP/2.0 200 OK\r\n"), 16), 0);
    assert_int_equal(siptls_sipmsg_is_request(U8("sip/2.0 180 Ringing\r\n"), 21), 0);
    assert_int_equal(siptls_sipmsg_is_request(U8("SIP/2.0 "), 7),
                     1); /* too short to be a status line */
    assert_int_equal(siptls_sipmsg_is_request(U8("SIPX sip:a SIP/2.0\r\n"), 20), 1);
    assert_int_equal(siptls_sipmsg_is_request(NULL, 5), 0);
    assert_int_equal(siptls_sipmsg_is_request(U8("x"), 0), 0);
}

static void test_start_line(void **state)
{
    (void)state;
    struct {
        const char *line;
        int ok;
    } cases[] = {
        {"SIP/2.0 200 OK", 1},
        {"SIP/2.0 100", 1},
        {"SIP/2.0 100 ", 1},
        {"sip/2.0 486 Busy Here", 1},
        {"SIP/2.0 2000 OK", 0},
        {"SIP/2.0 20 OK", 0},
        {"SIP/2.0 abc OK", 0},
        {"SIP/2.0  200 OK", 0},
        {"INVITE sip:bob@example.com SIP/2.0", 1},
        {"A b SIP/2.0", 1},
        {"X-CUSTOM.method sip:a SIP/2.0", 1},
        {"register sip:a sip/2.0", 1},
        {"INVITE SIP/2.0", 0},
        {"INVITE  SIP/2.0", 0},
        {" INVITE sip:a SIP/2.0", 0},
        {"INV(TE sip:a SIP/2.0", 0},
        {"GET / HTTP/1.1", 0},
        {"INVITE sip:a SIP/3.0", 0},
        {"INVITE sip:a SIP/2.0 ", 0},
        {"", 0},
        {"SIP/2.0", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = siptls__sipmsg_start_line_ok(U8(cases[i].line), strlen(cases[i].line));
        if (got != cases[i].ok) {
            fail_msg("start line \"%s\": want %d got %d", cases[i].line, cases[i].ok, got);
        }
    }
    assert_int_equal(siptls__sipmsg_token_char('A'), 1);
    assert_int_equal(siptls__sipmsg_token_char('~'), 1);
    assert_int_equal(siptls__sipmsg_token_char(' '), 0);
    assert_int_equal(siptls__sipmsg_token_char('\0'), 0);
    assert_int_equal(siptls__sipmsg_token_char(0x16), 0);
    assert_int_equal(siptls__sipmsg_token_char(0xc3), 0);
}

/* Run the scanner over a whole block at once. */
static int scan(const char *m, size_t max_hdr, siptls__hdr_scan *s)
{
    siptls__hdr_scan_reset(s);
    return siptls__hdr_scan_run(s, U8(m), strlen(m), max_hdr);
}

static void test_content_length_parsing(void **state)
{
    (void)state;
    struct {
        const char *hdrs;
        int rc;
        int have;
        uint64_t cl;
    } cases[] = {
        {"Content-Length: 12\r\n", SIPTLS_OK, 1, 12},
        {"content-length:12\r\n", SIPTLS_OK, 1, 12},
        {"CONTENT-LENGTH \t :\t 12 \t\r\n", SIPTLS_OK, 1, 12},
        {"l: 7\r\n", SIPTLS_OK, 1, 7},
        {"L:7\r\n", SIPTLS_OK, 1, 7},
        {"l :7\n", SIPTLS_OK, 1, 7},
        {"Content-Length: 0000\r\n", SIPTLS_OK, 1, 0},
        {"Content-Length: 18446744073709551615\r\n", SIPTLS_OK, 1, UINT64_MAX},
        {"Content-Length: 18446744073709551616\r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length: 99999999999999999999\r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length: -1\r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length: +1\r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length: \r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length:\r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length: 1 2\r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length: 1x\r\n", SIPTLS_ERR_FRAME_BAD_CL, 0, 0},
        {"Content-Length: 1\r\nl: 1\r\nContent-Length:01\r\n", SIPTLS_OK, 1, 1},
        {"Content-Length: 1\r\nl: 2\r\n", SIPTLS_ERR_FRAME_DUP_CL, 0, 0},
        {"Content-Length-X: 1\r\nLocation: 3\r\nLx: 4\r\nContent-Lengthy: 5\r\n", SIPTLS_OK, 0, 0},
        {"X-Content-Length: 5\r\n", SIPTLS_OK, 0, 0},
        {" Content-Length: 5\r\n", SIPTLS_OK, 0, 0}, /* a continuation line, not a header */
        {"Content-Length\r\n", SIPTLS_OK, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char m[512];
        snprintf(m, sizeof(m), "OPTIONS sip:a SIP/2.0\r\n%s\r\n", cases[i].hdrs);
        siptls__hdr_scan s;
        int rc = scan(m, 16384, &s);
        if (rc != cases[i].rc) {
            fail_msg("case %zu (%s): rc %d want %d", i, cases[i].hdrs, rc, cases[i].rc);
        }
        if (rc == SIPTLS_OK) {
            assert_int_equal(s.have_cl, cases[i].have);
            if (s.have_cl) {
                assert_true(s.cl == cases[i].cl);
            }
            assert_int_equal(s.header_len, strlen(m));
        }
    }
}

static void test_scanner_incremental(void **state)
{
    (void)state;
    /* Fed one more byte per call, the scanner finds the same end, having
     * looked at each byte once. */
    size_t len = strlen(REQ);
    siptls__hdr_scan s;
    siptls__hdr_scan_reset(&s);
    int rc = SIPTLS_AGAIN;
    size_t avail = 0;
    while (rc == SIPTLS_AGAIN) {
        avail++;
        assert_true(avail <= len);
        rc = siptls__hdr_scan_run(&s, U8(REQ), avail, 16384);
    }
    assert_int_equal(rc, SIPTLS_OK);
    assert_int_equal(avail, len);
    assert_int_equal(s.header_len, len);
    assert_int_equal(s.have_cl, 1);
    /* len bytes searched for '\n', len bytes checked for NUL. */
    assert_true(s.scanned == 2 * (uint64_t)len);

    /* Header-end forms: CRLF CRLF, LF LF, CRLF LF, LF CRLF. */
    const char *ends[] = {"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n",
                          "OPTIONS sip:a SIP/2.0\nl: 0\n\n", "OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\n",
                          "OPTIONS sip:a SIP/2.0\nl: 0\n\r\n"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(scan(ends[i], 16384, &s), SIPTLS_OK);
        assert_int_equal(s.header_len, strlen(ends[i]));
    }
    /* A CR alone does not end a line. */
    assert_int_equal(scan("OPTIONS sip:a SIP/2.0\r\nl: 0\r\r\r", 16384, &s), SIPTLS_AGAIN);
    /* Garbage start line, NUL anywhere in the block. */
    assert_int_equal(scan("HELLO\r\n\r\n", 16384, &s), SIPTLS_ERR_FRAME_GARBAGE);
    assert_int_equal(scan("OPTIONS sip:a SIP/2.0\r\nX: a\001b\r\n\r\n", 16384, &s), SIPTLS_OK);
    const char nul[] = "OPTIONS sip:a SIP/2.0\r\nX: a\0b\r\n\r\n";
    siptls__hdr_scan_reset(&s);
    assert_int_equal(siptls__hdr_scan_run(&s, U8(nul), sizeof(nul) - 1, 16384),
                     SIPTLS_ERR_FRAME_GARBAGE);
    /* Header limit: exactly at, and one over. */
    const char *m = "OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n";
    size_t ml = strlen(m);
    siptls__hdr_scan_reset(&s);
    assert_int_equal(siptls__hdr_scan_run(&s, U8(m), ml, ml), SIPTLS_OK);
    siptls__hdr_scan_reset(&s);
    assert_int_equal(siptls__hdr_scan_run(&s, U8(m), ml, ml - 1), SIPTLS_ERR_FRAME_HDR_TOO_BIG);
    siptls__hdr_scan_reset(&s);
    assert_int_equal(siptls__hdr_scan_run(&s, U8(m), ml - 1, ml), SIPTLS_AGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_lookup),
        cmocka_unit_test(test_header_next_all_vias),
        cmocka_unit_test(test_is_request),
        cmocka_unit_test(test_start_line),
        cmocka_unit_test(test_content_length_parsing),
        cmocka_unit_test(test_scanner_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
