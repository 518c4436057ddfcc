/* Unit tests: reassembly of fragmented ClientHellos
 * (dtls/dtls_hello_cache.c): fragments in any order, repeated and
 * overlapping; limits (size, slots, expiry); conflicting fragments. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../dtls/dtls_internal.h"

#define MSG_LEN 700

static uint8_t msg[MSG_LEN];

static void fill_msg(void)
{
    for (size_t i = 0; i < MSG_LEN; i++) {
        msg[i] = (uint8_t)(i * 31 + 7);
    }
    msg[34] = 0;  /* session id length */
    msg[35] = 32; /* cookie length */
}

static struct sockaddr_in addr(uint16_t port, uint32_t ip)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(ip);
    return in;
}

/* Build the record for fragment [off, off+len) and parse it. */
typedef struct frag {
    uint8_t dg[MSG_LEN + 64];
    siptls__dtls_scan scan;
    siptls__dtls_hello h;
} frag;

static void make_frag(frag *fr, size_t off, size_t len, uint16_t mseq, uint64_t rseq,
                      size_t msg_len)
{
    uint8_t *d = fr->dg;
    size_t body = 12 + len;
    d[0] = 22;
    d[1] = 0xFE;
    d[2] = 0xFF;
    d[3] = d[4] = 0;
    for (int i = 0; i < 6; i++) {
        d[5 + i] = (uint8_t)(rseq >> (8 * (5 - i)));
    }
    d[11] = (uint8_t)(body >> 8);
    d[12] = (uint8_t)body;
    uint8_t *hs = d + 13;
    hs[0] = 1;
    hs[1] = (uint8_t)(msg_len >> 16);
    hs[2] = (uint8_t)(msg_len >> 8);
    hs[3] = (uint8_t)msg_len;
    hs[4] = (uint8_t)(mseq >> 8);
    hs[5] = (uint8_t)mseq;
    hs[6] = (uint8_t)(off >> 16);
    hs[7] = (uint8_t)(off >> 8);
    hs[8] = (uint8_t)off;
    hs[9] = (uint8_t)(len >> 16);
    hs[10] = (uint8_t)(len >> 8);
    hs[11] = (uint8_t)len;
    memcpy(hs + 12, msg + off, len);
    assert_int_equal(siptls__dtls_scan_datagram(d, 13 + body, &fr->scan), 0);
    assert_int_equal(siptls__dtls_is_client_hello(&fr->scan, &fr->h), 1);
}

static int add(siptls__dtls_hello_cache *c, const struct sockaddr_in *from, size_t off, size_t len,
               uint64_t now, uint8_t *out, size_t cap, size_t *out_len)
{
    frag fr;
    make_frag(&fr, off, len, 0, off + 1, MSG_LEN);
    return siptls__dtls_hello_cache_add(c, (const struct sockaddr *)from, sizeof(*from),
                                        &fr.scan.first, &fr.h, now, out, cap, out_len);
}

static void check_whole(const uint8_t *out, size_t n, uint64_t want_seq)
{
    assert_int_equal(n, 13 + 12 + MSG_LEN);
    siptls__dtls_scan s;
    siptls__dtls_hello h;
    assert_int_equal(siptls__dtls_scan_datagram(out, n, &s), 0);
    assert_int_equal(siptls__dtls_is_client_hello(&s, &h), 1);
    assert_int_equal(h.fragmented, 0);
    assert_int_equal(h.msg_len, MSG_LEN);
    assert_int_equal(h.cookie_known, 1);
    assert_int_equal(h.cookie_len, 32);
    assert_int_equal(s.first.version, 0xFEFF);
    assert_true(s.first.seq == want_seq);
    assert_memory_equal(h.frag, msg, MSG_LEN);
}

static void test_in_order_and_reverse(void **state)
{
    (void)state;
    fill_msg();
    siptls__dtls_hello_cache *c;
    assert_int_equal(siptls__dtls_hello_cache_new(&c, 4, 4096, 2000), 0);
    struct sockaddr_in a = addr(1000, 0x7f000001);
    uint8_t out[4096];
    size_t n = 0;
    static const size_t steps[] = {1, 7, 100, 256, 699};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        size_t step = steps[k];
        /* forward */
        int r = 0;
        for (size_t off = 0; off < MSG_LEN; off += step) {
            size_t len = off + step > MSG_LEN ? MSG_LEN - off : step;
            r = add(c, &a, off, len, 10, out, sizeof(out), &n);
            assert_int_equal(r, off + len == MSG_LEN ? 1 : 0);
        }
        check_whole(out, n, (MSG_LEN - 1) / step * step + 1);
        assert_int_equal(siptls__dtls_hello_cache_count(c, 10), 0);
        /* backward */
        size_t last = (MSG_LEN - 1) / step * step;
        for (size_t i = 0;; i++) {
            size_t off = last - i * step;
            size_t len = off + step > MSG_LEN ? MSG_LEN - off : step;
            r = add(c, &a, off, len, 10, out, sizeof(out), &n);
            assert_int_equal(r, off == 0 ? 1 : 0);
            if (off == 0) {
                break;
            }
        }
        check_whole(out, n, 1);
    }
    siptls__dtls_hello_cache_free(c);
}

static void test_overlap_and_repeat(void **state)
{
    (void)state;
    fill_msg();
    siptls__dtls_hello_cache *c;
    assert_int_equal(siptls__dtls_hello_cache_new(&c, 4, 4096, 2000), 0);
    struct sockaddr_in a = addr(1000, 0x7f000001);
    uint8_t out[4096];
    size_t n;
    assert_int_equal(add(c, &a, 0, 300, 0, out, sizeof(out), &n), 0);
    assert_int_equal(add(c, &a, 0, 300, 0, out, sizeof(out), &n), 0);   /* repeated */
    assert_int_equal(add(c, &a, 200, 300, 0, out, sizeof(out), &n), 0); /* overlapping */
    assert_int_equal(add(c, &a, 450, 250, 0, out, sizeof(out), &n), 1);
    check_whole(out, n, 451);
    siptls__dtls_hello_cache_free(c);
}

static void test_conflict(void **state)
{
    (void)state;
    fill_msg();
    siptls__dtls_hello_cache *c;
    assert_int_equal(siptls__dtls_hello_cache_new(&c, 4, 4096, 2000), 0);
    struct sockaddr_in a = addr(1000, 0x7f000001);
    uint8_t out[4096];
    size_t n;
    assert_int_equal(add(c, &a, 0, 400, 0, out, sizeof(out), &n), 0);
    msg[300] ^= 0xFF; /* a forged fragment disagreeing on byte 300 */
    assert_int_equal(add(c, &a, 300, 400, 0, out, sizeof(out), &n), -1);
    assert_int_equal(siptls__dtls_hello_cache_count(c, 0), 0);
    msg[300] ^= 0xFF;
    /* a new message_seq or length starts over */
    assert_int_equal(add(c, &a, 0, 400, 0, out, sizeof(out), &n), 0);
    frag fr;
    make_frag(&fr, 400, 300, 1, 9, MSG_LEN);
    assert_int_equal(siptls__dtls_hello_cache_add(c, (struct sockaddr *)&a, sizeof(a),
                                                  &fr.scan.first, &fr.h, 0, out, sizeof(out), &n),
                     0);
    assert_int_equal(siptls__dtls_hello_cache_count(c, 0), 1);
    siptls__dtls_hello_cache_free(c);
}

static void test_limits(void **state)
{
    (void)state;
    fill_msg();
    siptls__dtls_hello_cache *c;
    assert_int_equal(siptls__dtls_hello_cache_new(&c, 2, MSG_LEN - 1, 2000), 0);
    struct sockaddr_in a = addr(1000, 0x7f000001);
    uint8_t out[4096];
    size_t n;
    /* over max_hello */
    assert_int_equal(add(c, &a, 0, 100, 0, out, sizeof(out), &n), -1);
    siptls__dtls_hello_cache_free(c);

    assert_int_equal(siptls__dtls_hello_cache_new(&c, 2, 4096, 2000), 0);
    /* output buffer too small */
    assert_int_equal(add(c, &a, 0, 400, 0, out, sizeof(out), &n), 0);
    assert_int_equal(add(c, &a, 400, 300, 0, out, 100, &n), -1);
    /* slots: the oldest is evicted */
    struct sockaddr_in b = addr(1001, 0x7f000001), d = addr(1002, 0x7f000001);
    assert_int_equal(add(c, &a, 0, 400, 1, out, sizeof(out), &n), 0);
    assert_int_equal(add(c, &b, 0, 400, 2, out, sizeof(out), &n), 0);
    assert_int_equal(add(c, &d, 0, 400, 3, out, sizeof(out), &n), 0);
    assert_int_equal(siptls__dtls_hello_cache_count(c, 3), 2);
    assert_int_equal(add(c, &d, 400, 300, 4, out, sizeof(out), &n), 1);
    assert_int_equal(add(c, &a, 400, 300, 4, out, sizeof(out), &n), 0); /* a was evicted */
    assert_int_equal(siptls__dtls_hello_cache_count(c, 4), 2);
    /* expiry: strictly more than expire_ms after the first fragment */
    assert_int_equal(add(c, &b, 400, 300, 2002, out, sizeof(out), &n), 1);
    assert_int_equal(add(c, &a, 0, 400, 5000, out, sizeof(out), &n), 0);
    assert_int_equal(add(c, &a, 400, 300, 7001, out, sizeof(out), &n), 0);
    assert_int_equal(siptls__dtls_hello_cache_count(c, 7001), 1);
    assert_int_equal(siptls__dtls_hello_cache_count(c, 9002), 0);
    siptls__dtls_hello_cache_free(c);
}

static void test_many_sources_bounded(void **state)
{
    (void)state;
    fill_msg();
    siptls__dtls_hello_cache *c;
    assert_int_equal(siptls__dtls_hello_cache_new(&c, 64, 4096, 2000), 0);
    uint8_t out[4096];
    size_t n;
    for (uint32_t i = 0; i < 5000; i++) {
        struct sockaddr_in a = addr((uint16_t)(2000 + i % 50000), 0x0a000000 + i);
        assert_int_equal(add(c, &a, 0, 400, i / 10, out, sizeof(out), &n), 0);
        assert_true(siptls__dtls_hello_cache_count(c, i / 10) <= 64);
    }
    siptls__dtls_hello_cache_free(c);
    siptls__dtls_hello_cache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_reverse),
        cmocka_unit_test(test_overlap_and_repeat),
        cmocka_unit_test(test_conflict),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_sources_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
