/* Unit tests: STUN Binding keepalive on DTLS ports (dtls/dtls_stun.c),
 * RFC 5389 / RFC 5626 §3.5.2, with the XOR-MAPPED-ADDRESS bytes of the
 * RFC 5769 test vectors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../dtls/dtls_internal.h"

/* RFC 5769 §2.2 / §2.3 transaction id and mapped address 192.0.2.1:32853,
 * 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
static const uint8_t txid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
static const uint8_t xma_v4[12] = {0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
                                   0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
static const uint8_t xma_v6[24] = {0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47,
                                   0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79,
                                   0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9};

static void v4(struct sockaddr_in *in)
{
    memset(in, 0, sizeof(*in));
    in->sin_family = AF_INET;
    in->sin_port = htons(32853);
    inet_pton(AF_INET, "192.0.2.1", &in->sin_addr);
}

static void v6(struct sockaddr_in6 *in6)
{
    memset(in6, 0, sizeof(*in6));
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(32853);
    inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", &in6->sin6_addr);
}

static void test_crc32(void **state)
{
    (void)state;
    /* the standard check value */
    assert_int_equal(siptls__dtls_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
}

static void test_request_roundtrip_v4(void **state)
{
    (void)state;
    for (int fp = 0; fp <= 1; fp++) {
        uint8_t req[64], resp[SIPTLS__STUN_MAX_RESPONSE];
        size_t n = siptls__dtls_stun_request(txid, fp, req);
        assert_int_equal(n, fp ? 28u : 20u);
        int has_fp = -1;
        assert_int_equal(siptls__dtls_stun_check(req, n, &has_fp), 0);
        assert_int_equal(has_fp, fp);
        struct sockaddr_in in;
        v4(&in);
        size_t rn = siptls__dtls_stun_response(req, (struct sockaddr *)&in, has_fp, resp);
        assert_int_equal(rn, 20u + 12u + (fp ? 8u : 0u));
        assert_int_equal(resp[0], 0x01);
        assert_int_equal(resp[1], 0x01);
        assert_memory_equal(resp + 8, txid, 12);
        assert_memory_equal(resp + 20, xma_v4, sizeof(xma_v4));
        struct sockaddr_storage got;
        assert_int_equal(siptls__dtls_stun_parse_mapped(resp, rn, &got), 0);
        struct sockaddr_in *g = (struct sockaddr_in *)&got;
        assert_int_equal(g->sin_family, AF_INET);
        assert_int_equal(g->sin_port, in.sin_port);
        assert_int_equal(g->sin_addr.s_addr, in.sin_addr.s_addr);
        if (fp) {
            /* the response's FINGERPRINT verifies like a request's would */
            uint32_t crc = siptls__dtls_crc32(resp, rn - 8) ^ 0x5354554eu;
            uint32_t have = ((uint32_t)resp[rn - 4] << 24) | ((uint32_t)resp[rn - 3] << 16) |
                            ((uint32_t)resp[rn - 2] << 8) | resp[rn - 1];
            assert_int_equal(crc, have);
        }
    }
}

static void test_request_roundtrip_v6(void **state)
{
    (void)state;
    uint8_t req[64], resp[SIPTLS__STUN_MAX_RESPONSE];
    size_t n = siptls__dtls_stun_request(txid, 1, req);
    int has_fp = 0;
    assert_int_equal(siptls__dtls_stun_check(req, n, &has_fp), 0);
    struct sockaddr_in6 in6;
    v6(&in6);
    size_t rn = siptls__dtls_stun_response(req, (struct sockaddr *)&in6, has_fp, resp);
    assert_int_equal(rn, 20u + 24u + 8u);
    assert_int_equal(rn, SIPTLS__STUN_MAX_RESPONSE);
    assert_memory_equal(resp + 20, xma_v6, sizeof(xma_v6));
    struct sockaddr_storage got;
    assert_int_equal(siptls__dtls_stun_parse_mapped(resp, rn, &got), 0);
    struct sockaddr_in6 *g = (struct sockaddr_in6 *)&got;
    assert_int_equal(g->sin6_family, AF_INET6);
    assert_int_equal(g->sin6_port, in6.sin6_port);
    assert_memory_equal(&g->sin6_addr, &in6.sin6_addr, 16);
    /* unknown family: nothing built */
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    assert_int_equal(siptls__dtls_stun_response(req, &sa, 0, resp), 0);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t req[64];
    int fp;
    size_t n = siptls__dtls_stun_request(txid, 1, req);
    /* every truncation */
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(siptls__dtls_stun_check(req, cut, &fp), -1);
    }
    /* every single-bit flip of the header, the attribute length or the
     * CRC breaks the header or the fingerprint (a flipped attribute type
     * would just make it another, optional, attribute) */
    for (size_t i = 0; i < n; i++) {
        if (i == 20 || i == 21) {
            continue;
        }
        for (int b = 0; b < 8; b++) {
            req[i] ^= (uint8_t)(1u << b);
            assert_int_equal(siptls__dtls_stun_check(req, n, &fp), -1);
            req[i] ^= (uint8_t)(1u << b);
        }
    }
    assert_int_equal(siptls__dtls_stun_check(req, n, &fp), 0);
    /* trailing byte: length field disagrees */
    req[n] = 0;
    assert_int_equal(siptls__dtls_stun_check(req, n + 1, &fp), -1);
    /* a Binding response is not a request */
    n = siptls__dtls_stun_request(txid, 0, req);
    req[1] = 0x01;
    req[0] = 0x01;
    assert_int_equal(siptls__dtls_stun_check(req, n, &fp), -1);
}

static size_t with_attr(uint8_t *req, uint16_t type, size_t alen, int then_fp)
{
    size_t n = siptls__dtls_stun_request(txid, 0, req);
    req[n] = (uint8_t)(type >> 8);
    req[n + 1] = (uint8_t)type;
    req[n + 2] = (uint8_t)(alen >> 8);
    req[n + 3] = (uint8_t)alen;
    size_t padded = (alen + 3) & ~(size_t)3;
    memset(req + n + 4, 'x', padded);
    n += 4 + padded;
    if (then_fp) {
        req[n] = 0x80;
        req[n + 1] = 0x28;
        req[n + 2] = 0;
        req[n + 3] = 4;
        n += 8;
    }
    req[2] = (uint8_t)((n - 20) >> 8);
    req[3] = (uint8_t)(n - 20);
    if (then_fp) {
        uint32_t crc = siptls__dtls_crc32(req, n - 8) ^ 0x5354554eu;
        req[n - 4] = (uint8_t)(crc >> 24);
        req[n - 3] = (uint8_t)(crc >> 16);
        req[n - 2] = (uint8_t)(crc >> 8);
        req[n - 1] = (uint8_t)crc;
    }
    return n;
}

static void test_attributes(void **state)
{
    (void)state;
    uint8_t req[128];
    int fp;
    /* SOFTWARE (comprehension-optional, 5 bytes padded to 8) is fine */
    size_t n = with_attr(req, 0x8022, 5, 1);
    assert_int_equal(siptls__dtls_stun_check(req, n, &fp), 0);
    assert_int_equal(fp, 1);
    /* USERNAME (comprehension-required): ICE, not a keepalive: dropped */
    n = with_attr(req, 0x0006, 8, 0);
    assert_int_equal(siptls__dtls_stun_check(req, n, &fp), -1);
    /* attribute length past the message */
    n = with_attr(req, 0x8022, 8, 0);
    req[23] = 12;
    assert_int_equal(siptls__dtls_stun_check(req, n, &fp), -1);
    /* FINGERPRINT not last */
    n = siptls__dtls_stun_request(txid, 1, req);
    memcpy(req + n, "\x80\x22\x00\x04test", 8);
    n += 8;
    req[3] = (uint8_t)(n - 20);
    assert_int_equal(siptls__dtls_stun_check(req, n, &fp), -1);
    /* FINGERPRINT of the wrong size */
    n = with_attr(req, 0x8028, 8, 0);
    assert_int_equal(siptls__dtls_stun_check(req, n, &fp), -1);
}

static void test_parse_mapped_errors(void **state)
{
    (void)state;
    uint8_t req[64], resp[SIPTLS__STUN_MAX_RESPONSE];
    struct sockaddr_storage got;
    size_t n = siptls__dtls_stun_request(txid, 0, req);
    assert_int_equal(siptls__dtls_stun_parse_mapped(req, n, &got), -1); /* a request */
    struct sockaddr_in in;
    v4(&in);
    size_t rn = siptls__dtls_stun_response(req, (struct sockaddr *)&in, 0, resp);
    for (size_t cut = 0; cut < rn; cut++) {
        assert_int_equal(siptls__dtls_stun_parse_mapped(resp, cut, &got), -1);
    }
    resp[25] = 0x03; /* unknown family */
    assert_int_equal(siptls__dtls_stun_parse_mapped(resp, rn, &got), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_request_roundtrip_v4),
        cmocka_unit_test(test_request_roundtrip_v6),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_parse_mapped_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
