/* Unit tests: the pure parts of RFC 3263 server location (src/rfc3263.c):
 * which NAPTR records lead to SRV names and in what order, and the RFC 2782
 * order of SRV records (priority, then weighted random). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rfc3263.h"

static siptls__naptr naptr(uint16_t order, uint16_t pref, const char *flags, const char *service,
                           int regexp, const char *replacement)
{
    siptls__naptr n;
    memset(&n, 0, sizeof(n));
    n.order = order;
    n.pref = pref;
    snprintf(n.flags, sizeof(n.flags), "%s", flags);
    snprintf(n.service, sizeof(n.service), "%s", service);
    n.has_regexp = regexp;
    snprintf(n.replacement, sizeof(n.replacement), "%s", replacement);
    return n;
}

/* RFC 3263 §4.1's example domain, shuffled, plus records a SIPS client
 * must discard. */
static void test_naptr_select(void **state)
{
    (void)state;
    siptls__naptr in[] = {
        naptr(90, 50, "s", "SIP+D2T", 0, "_sip._tcp.example.com"),
        naptr(100, 50, "s", "SIPS+D2T", 0, "_sips._tcp.backup.example.com"),
        naptr(50, 50, "s", "SIPS+D2T", 0, "_sips._tcp.example.com"),
        naptr(50, 10, "S", "sips+d2t", 0, "_sips._tcp.first.example.com"),
        naptr(10, 10, "a", "SIPS+D2T", 0, "sip.example.com"),           /* flag A: not for us */
        naptr(10, 10, "s", "SIPS+D2T", 1, "_sips._tcp.re.example.com"), /* a regexp */
        naptr(10, 10, "s", "SIPS+D2T", 0, "."),                         /* no replacement */
        naptr(60, 10, "s", "SIPS+D2T", 0, "_SIPS._tcp.example.com"),    /* a repeat */
        naptr(10, 10, "s", "SIP+D2U", 0, "_sip._udp.example.com"),
    };
    char out[8][SIPTLS__DNS_NAME_MAX];
    size_t n = siptls__rfc3263_naptr_select(in, sizeof(in) / sizeof(in[0]), "SIPS+D2T", out, 8);
    assert_int_equal(n, 3);
    assert_string_equal(out[0], "_sips._tcp.first.example.com");
    assert_string_equal(out[1], "_sips._tcp.example.com");
    assert_string_equal(out[2], "_sips._tcp.backup.example.com");
    /* at most `max` */
    assert_int_equal(
        siptls__rfc3263_naptr_select(in, sizeof(in) / sizeof(in[0]), "SIPS+D2T", out, 1), 1);
    assert_string_equal(out[0], "_sips._tcp.first.example.com");
    /* none usable, or none at all */
    assert_int_equal(siptls__rfc3263_naptr_select(in, 1, "SIPS+D2T", out, 8), 0);
    assert_int_equal(siptls__rfc3263_naptr_select(NULL, 0, "SIPS+D2T", out, 8), 0);
}

static siptls__srv srv(uint16_t prio, uint16_t weight, const char *target)
{
    siptls__srv s;
    memset(&s, 0, sizeof(s));
    s.prio = prio;
    s.weight = weight;
    s.port = 5061;
    snprintf(s.target, sizeof(s.target), "%s", target);
    return s;
}

/* Deterministic "random" numbers: a small LCG, reduced to [0, bound]. */
static uint32_t lcg_rand(void *ctx, uint32_t bound)
{
    uint32_t *x = ctx;
    *x = *x * 1664525u + 1013904223u;
    return (uint32_t)(((uint64_t)(*x >> 8) * ((uint64_t)bound + 1)) >> 24);
}

static uint32_t always(void *ctx, uint32_t bound)
{
    uint32_t v = *(const uint32_t *)ctx;
    return v > bound ? bound : v;
}

static void test_srv_priority(void **state)
{
    (void)state;
    siptls__srv r[] = {srv(20, 0, "c"), srv(10, 0, "a"), srv(30, 5, "d"), srv(10, 0, "b")};
    uint32_t x = 1;
    siptls__rfc2782_order(r, 4, lcg_rand, &x);
    /* lowest priority first; the two of priority 10 in some order */
    assert_int_equal(r[0].prio, 10);
    assert_int_equal(r[1].prio, 10);
    assert_string_equal(r[2].target, "c");
    assert_string_equal(r[3].target, "d");
    assert_true((strcmp(r[0].target, "a") == 0 && strcmp(r[1].target, "b") == 0) ||
                (strcmp(r[0].target, "b") == 0 && strcmp(r[1].target, "a") == 0));
    /* one record, or none: nothing to do */
    siptls__rfc2782_order(r, 1, lcg_rand, &x);
    siptls__rfc2782_order(NULL, 0, lcg_rand, &x);
}

/* Within a priority: a random number 0 picks a weight-0 record first
 * (they are placed at the beginning); the largest picks the last. */
static void test_srv_weight_edges(void **state)
{
    (void)state;
    siptls__srv r[] = {srv(1, 10, "w10"), srv(1, 0, "w0"), srv(1, 30, "w30")};
    uint32_t zero = 0;
    siptls__rfc2782_order(r, 3, always, &zero);
    assert_string_equal(r[0].target, "w0");
    assert_string_equal(r[1].target, "w10");
    assert_string_equal(r[2].target, "w30");
    siptls__srv q[] = {srv(1, 10, "w10"), srv(1, 0, "w0"), srv(1, 30, "w30")};
    uint32_t big = UINT32_MAX;
    siptls__rfc2782_order(q, 3, always, &big);
    assert_string_equal(q[0].target, "w30");
    assert_string_equal(q[1].target, "w10");
    assert_string_equal(q[2].target, "w0");
}

/* RFC 2782 as written: a uniform number r in [0, sum] (inclusive) and the
 * first record whose running sum is >= r. With weights 1 and 3 (sum 4) the
 * light record, first in the list, takes r = 0 and 1, the heavy one r = 2,
 * 3 and 4: heavy first 3/5 of the time. 4,000 draws. */
static void test_srv_weight_distribution(void **state)
{
    (void)state;
    uint32_t x = 12345;
    unsigned heavy_first = 0;
    const unsigned draws = 4000;
    for (unsigned i = 0; i < draws; i++) {
        siptls__srv r[] = {srv(5, 1, "light"), srv(5, 3, "heavy")};
        siptls__rfc2782_order(r, 2, lcg_rand, &x);
        heavy_first += strcmp(r[0].target, "heavy") == 0;
        assert_string_not_equal(r[0].target, r[1].target);
    }
    /* 2400 expected; 5 standard deviations (~31 each) either side */
    if (heavy_first < 2245 || heavy_first > 2555) {
        fail_msg("heavy record first %u times of %u (want ~2400)", heavy_first, draws);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naptr_select),
        cmocka_unit_test(test_srv_priority),
        cmocka_unit_test(test_srv_weight_edges),
        cmocka_unit_test(test_srv_weight_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
