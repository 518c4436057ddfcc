/* Unit tests: per-source handshake rate limit (dtls/dtls_ratelimit.c). */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../dtls/dtls_internal.h"

static struct sockaddr_in v4(uint32_t ip, uint16_t port)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(ip);
    in.sin_port = htons(port);
    return in;
}

static int allow(siptls__dtls_ratelimit *r, const struct sockaddr_in *in, uint64_t now)
{
    return siptls__dtls_ratelimit_allow(r, (const struct sockaddr *)in, NULL, now);
}

static void test_burst_and_refill(void **state)
{
    (void)state;
    siptls__dtls_ratelimit *r;
    assert_int_equal(siptls__dtls_ratelimit_new(&r, 64, 3), 0);
    struct sockaddr_in a = v4(0x7f000001, 1000);
    uint64_t t = 1000000;
    /* a burst of `rate` at limit-1, limit; limit+1 refused */
    assert_int_equal(allow(r, &a, t), 1);
    assert_int_equal(allow(r, &a, t), 1);
    assert_int_equal(allow(r, &a, t), 1);
    assert_int_equal(allow(r, &a, t), 0);
    /* one token back after 1/3 s (334 ms), not before */
    assert_int_equal(allow(r, &a, t + 333), 0);
    assert_int_equal(allow(r, &a, t + 334), 1);
    assert_int_equal(allow(r, &a, t + 334), 0);
    /* a long pause refills to the burst only */
    t += 60000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(allow(r, &a, t), 1);
    }
    assert_int_equal(allow(r, &a, t), 0);
    siptls__dtls_ratelimit_free(r);
}

static void test_keyed_by_address(void **state)
{
    (void)state;
    siptls__dtls_ratelimit *r;
    assert_int_equal(siptls__dtls_ratelimit_new(&r, 64, 1), 0);
    struct sockaddr_in a = v4(0x7f000001, 1000), a2 = v4(0x7f000001, 2000),
                       b = v4(0x7f000002, 1000);
    assert_int_equal(allow(r, &a, 5), 1);
    assert_int_equal(allow(r, &a2, 5), 0); /* same host, other port */
    assert_int_equal(allow(r, &b, 5), 1);  /* other host */
    struct sockaddr_in6 x;
    memset(&x, 0, sizeof(x));
    x.sin6_family = AF_INET6;
    x.sin6_addr.s6_addr[15] = 1;
    assert_int_equal(siptls__dtls_ratelimit_allow(r, (struct sockaddr *)&x, NULL, 5), 1);
    assert_int_equal(siptls__dtls_ratelimit_allow(r, (struct sockaddr *)&x, NULL, 5), 0);
    /* a v4-mapped IPv6 address is the same host as its IPv4 form */
    x.sin6_addr.s6_addr[10] = x.sin6_addr.s6_addr[11] = 0xff;
    x.sin6_addr.s6_addr[12] = 127;
    x.sin6_addr.s6_addr[15] = 2;
    assert_int_equal(siptls__dtls_ratelimit_allow(r, (struct sockaddr *)&x, NULL, 5), 0);
    /* unknown family: refused */
    struct sockaddr u;
    memset(&u, 0, sizeof(u));
    u.sa_family = AF_UNIX;
    assert_int_equal(siptls__dtls_ratelimit_allow(r, &u, NULL, 5), 0);
    siptls__dtls_ratelimit_free(r);
}

static void test_unlimited(void **state)
{
    (void)state;
    siptls__dtls_ratelimit *r;
    assert_int_equal(siptls__dtls_ratelimit_new(&r, 1, 0), 0);
    struct sockaddr_in a = v4(0x7f000001, 1000);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(allow(r, &a, 0), 1);
    }
    siptls__dtls_ratelimit_free(r);
    siptls__dtls_ratelimit_free(NULL);
}

static void test_table_bounded(void **state)
{
    (void)state;
    siptls__dtls_ratelimit *r;
    assert_int_equal(siptls__dtls_ratelimit_new(&r, 16, 2), 0);
    /* far more sources than slots: the table recycles, nothing grows,
     * and a source seen just now is still remembered */
    struct sockaddr_in hot = v4(0x0a0000ff, 1);
    assert_int_equal(allow(r, &hot, 0), 1);
    assert_int_equal(allow(r, &hot, 0), 1);
    for (uint32_t i = 0; i < 100000; i++) {
        struct sockaddr_in a = v4(0x0b000000 + i, 1);
        assert_int_equal(allow(r, &a, 1 + i / 1000), 1);
    }
    /* the hot source may have been forgotten (best effort): then it starts
     * with a full bucket again, never with more */
    int ok = 0;
    for (int i = 0; i < 5; i++) {
        ok += allow(r, &hot, 100);
    }
    assert_true(ok <= 2);
    siptls__dtls_ratelimit_free(r);
}

/* A hello's client random, numbered. */
static const uint8_t *rnd(unsigned n)
{
    static uint8_t buf[8][32];
    static unsigned slot;
    uint8_t *b = buf[slot++ % 8];
    memset(b, 0x5a, 32);
    memcpy(b, &n, sizeof(n));
    return b;
}

static int hello(siptls__dtls_ratelimit *r, const struct sockaddr_in *in, unsigned n, uint64_t now)
{
    return siptls__dtls_ratelimit_allow(r, (const struct sockaddr *)in, rnd(n), now);
}

/* Issue 8 §4c: a refused client retransmits its hello after 1, 2, 4 s; a
 * token that newer hellos of the same host take first each time made it
 * time out. Its retransmission may borrow from the coming second. */
static void test_retransmission_served_first(void **state)
{
    (void)state;
    siptls__dtls_ratelimit *r;
    assert_int_equal(siptls__dtls_ratelimit_new(&r, 64, 2), 0);
    struct sockaddr_in a = v4(0x7f000001, 1000), a2 = v4(0x7f000001, 2000),
                       a3 = v4(0x7f000001, 3000);
    uint64_t t = 1000000;
    assert_int_equal(hello(r, &a, 1, t), 1);
    assert_int_equal(hello(r, &a2, 2, t), 1);
    assert_int_equal(hello(r, &a3, 3, t), 0); /* over the rate: refused, remembered */
    /* a second later a newer hello of the host takes the refilled tokens */
    t += 1000;
    assert_int_equal(hello(r, &a, 4, t), 1);
    assert_int_equal(hello(r, &a2, 5, t), 1);
    assert_int_equal(hello(r, &a2, 6, t), 0);
    /* the retransmission is served all the same (a borrowed token) */
    assert_int_equal(hello(r, &a3, 3, t), 1);
    /* served once: the same hello again is a new one */
    assert_int_equal(hello(r, &a3, 3, t), 0);
    /* the same random from another port is another client's hello */
    assert_int_equal(hello(r, &a, 6, t), 0);
    /* what was borrowed is paid back before new hellos: 1/2 s refills
     * one token, which repays the loan; new hellos still wait */
    t += 500;
    assert_int_equal(hello(r, &a, 7, t), 0);
    /* borrowing is bounded: -rate tokens at most */
    assert_int_equal(hello(r, &a2, 6, t), 1); /* refused at t - 500: borrows */
    assert_int_equal(hello(r, &a, 7, t), 1);  /* refused just now: borrows the last */
    assert_int_equal(hello(r, &a3, 3, t), 0); /* refused at t - 500: nothing left */
    /* a remembered hello is forgotten after 64 s */
    assert_int_equal(hello(r, &a, 8, t), 0);
    t += 64000;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hello(r, &a2, 20 + (unsigned)i, t), 1); /* full bucket again */
    }
    assert_int_equal(hello(r, &a, 8, t), 0);
    siptls__dtls_ratelimit_free(r);
}

/* A host that sends every hello twice (so that each is a "retransmission")
 * still gets at most rate per second plus the burst and the loan. */
static void test_borrowing_keeps_the_average(void **state)
{
    (void)state;
    const unsigned rate = 5;
    siptls__dtls_ratelimit *r;
    assert_int_equal(siptls__dtls_ratelimit_new(&r, 64, rate), 0);
    struct sockaddr_in a = v4(0x0a000001, 4000);
    unsigned allowed = 0;
    const unsigned seconds = 20;
    for (unsigned ms = 0; ms < seconds * 1000; ms += 2) {
        unsigned n = ms / 2 + 1;
        allowed += (unsigned)hello(r, &a, n, ms);
        allowed += (unsigned)hello(r, &a, n, ms + 1);
    }
    assert_true(allowed <= rate * seconds + 2 * rate);
    assert_true(allowed >= rate * seconds);
    siptls__dtls_ratelimit_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_and_refill),
        cmocka_unit_test(test_keyed_by_address),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_table_bounded),
        cmocka_unit_test(test_retransmission_served_first),
        cmocka_unit_test(test_borrowing_keeps_the_average),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
