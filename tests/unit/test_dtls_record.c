/* Unit tests: DTLS record layer parsing (dtls/dtls_record.c): RFC 7983
 * demultiplexing, record headers, datagram scans, ClientHello cookie
 * detection, HelloVerifyRequest recognition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../dtls/dtls_internal.h"

/* Build one DTLS record (type, epoch, seq) around `body`. */
static size_t make_record(uint8_t *out, uint8_t type, uint16_t epoch, uint64_t seq,
                          const uint8_t *body, size_t len)
{
    out[0] = type;
    out[1] = 0xFE;
    out[2] = 0xFD;
    out[3] = (uint8_t)(epoch >> 8);
    out[4] = (uint8_t)epoch;
    for (int i = 0; i < 6; i++) {
        out[5 + i] = (uint8_t)(seq >> (8 * (5 - i)));
    }
    out[11] = (uint8_t)(len >> 8);
    out[12] = (uint8_t)len;
    memcpy(out + 13, body, len);
    return 13 + len;
}

/* A ClientHello body: version, random, session id, cookie, one suite,
 * null compression, `ext` bytes of extensions. */
static size_t make_ch_body(uint8_t *out, unsigned sid, unsigned cookie, unsigned ext)
{
    size_t n = 0;
    out[n++] = 0xFE;
    out[n++] = 0xFD;
    for (int i = 0; i < 32; i++) {
        out[n++] = (uint8_t)(i * 7);
    }
    out[n++] = (uint8_t)sid;
    for (unsigned i = 0; i < sid; i++) {
        out[n++] = 0xA0;
    }
    out[n++] = (uint8_t)cookie;
    for (unsigned i = 0; i < cookie; i++) {
        out[n++] = (uint8_t)(0xC0 + i);
    }
    out[n++] = 0;
    out[n++] = 2;
    out[n++] = 0xC0;
    out[n++] = 0x2B;
    out[n++] = 1;
    out[n++] = 0;
    out[n++] = (uint8_t)(ext >> 8);
    out[n++] = (uint8_t)ext;
    for (unsigned i = 0; i < ext; i++) {
        out[n++] = 0x55;
    }
    return n;
}

/* Handshake fragment header + bytes [off, off+flen) of `msg`. */
static size_t make_hs(uint8_t *out, uint8_t type, const uint8_t *msg, size_t msg_len, uint16_t mseq,
                      size_t off, size_t flen)
{
    out[0] = type;
    out[1] = (uint8_t)(msg_len >> 16);
    out[2] = (uint8_t)(msg_len >> 8);
    out[3] = (uint8_t)msg_len;
    out[4] = (uint8_t)(mseq >> 8);
    out[5] = (uint8_t)mseq;
    out[6] = (uint8_t)(off >> 16);
    out[7] = (uint8_t)(off >> 8);
    out[8] = (uint8_t)off;
    out[9] = (uint8_t)(flen >> 16);
    out[10] = (uint8_t)(flen >> 8);
    out[11] = (uint8_t)flen;
    memcpy(out + 12, msg + off, flen);
    return 12 + flen;
}

static size_t make_ch_datagram(uint8_t *out, unsigned sid, unsigned cookie)
{
    uint8_t body[600], hs[700];
    size_t bl = make_ch_body(body, sid, cookie, 20);
    size_t hl = make_hs(hs, 1, body, bl, 0, 0, bl);
    return make_record(out, 22, 0, 0, hs, hl);
}

static void test_demux(void **state)
{
    (void)state;
    uint8_t b = 0;
    assert_int_equal(siptls__dtls_demux_byte(&b, 0), SIPTLS__DTLS_DEMUX_JUNK);
    for (int v = 0; v < 256; v++) {
        b = (uint8_t)v;
        siptls__dtls_demux want = v <= 3                 ? SIPTLS__DTLS_DEMUX_STUN
                                  : (v >= 20 && v <= 63) ? SIPTLS__DTLS_DEMUX_DTLS
                                                         : SIPTLS__DTLS_DEMUX_JUNK;
        assert_int_equal(siptls__dtls_demux_byte(&b, 1), want);
    }
}

static void test_record_parse(void **state)
{
    (void)state;
    uint8_t buf[64], body[5] = {1, 2, 3, 4, 5};
    size_t n = make_record(buf, 23, 0x0102, 0x0000A1B2C3D4E5F6ULL & 0xFFFFFFFFFFFFULL, body, 5);
    siptls__dtls_record r;
    assert_int_equal(siptls__dtls_record_parse(buf, n, &r), n);
    assert_int_equal(r.type, 23);
    assert_int_equal(r.version, 0xFEFD);
    assert_int_equal(r.epoch, 0x0102);
    assert_true(r.seq == 0xA1B2C3D4E5F6ULL);
    assert_int_equal(r.len, 5);
    assert_ptr_equal(r.body, buf + 13);
    assert_true(siptls__dtls_record_seq64(&r) == ((0x0102ULL << 48) | 0xA1B2C3D4E5F6ULL));
    /* every prefix is too short */
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(siptls__dtls_record_parse(buf, cut, &r), 0);
    }
    /* not DTLS: major version 3 (TLS) */
    buf[1] = 0x03;
    assert_int_equal(siptls__dtls_record_parse(buf, n, &r), 0);
    buf[1] = 0xFE;
    /* a longer buffer: only this record is consumed */
    assert_int_equal(siptls__dtls_record_parse(buf, n + 3, &r), n);
    /* zero-length record */
    n = make_record(buf, 21, 1, 1, body, 0);
    assert_int_equal(siptls__dtls_record_parse(buf, n, &r), 13);
    assert_int_equal(r.len, 0);
}

static void test_scan(void **state)
{
    (void)state;
    uint8_t dg[256], body[10] = {0};
    size_t n = make_record(dg, 22, 0, 5, body, 10);
    n += make_record(dg + n, 20, 0, 6, body, 1);
    n += make_record(dg + n, 23, 1, 0, body, 8);
    siptls__dtls_scan s;
    assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), 0);
    assert_int_equal(s.n_records, 3);
    assert_int_equal(s.n_epoch0, 2);
    assert_int_equal(s.n_appdata, 1);
    assert_int_equal(s.first.type, 22);
    assert_int_equal(s.appdata.epoch, 1);
    for (size_t cut = 0; cut < n; cut++) {
        int r = siptls__dtls_scan_datagram(dg, cut, &s);
        int boundary = cut == 23 || cut == 37;
        assert_int_equal(r, boundary ? 0 : -1);
    }
    /* trailing junk after a complete record */
    dg[n] = 0x17;
    assert_int_equal(siptls__dtls_scan_datagram(dg, n + 1, &s), -1);
    /* unknown content type (heartbeat 24, CID 25) */
    n = make_record(dg, 24, 1, 0, body, 4);
    assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), -1);
    n = make_record(dg, 19, 1, 0, body, 4);
    assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), -1);
    assert_int_equal(siptls__dtls_scan_datagram(dg, 0, &s), -1);
}

static void test_hello_cookie(void **state)
{
    (void)state;
    uint8_t dg[800];
    static const unsigned sids[] = {0, 1, 32};
    static const unsigned cookies[] = {0, 1, 20, 32, 255};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 5; j++) {
            size_t n = make_ch_datagram(dg, sids[i], cookies[j]);
            siptls__dtls_scan s;
            siptls__dtls_hello h;
            assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), 0);
            assert_int_equal(siptls__dtls_is_client_hello(&s, &h), 1);
            assert_int_equal(h.fragmented, 0);
            assert_int_equal(h.cookie_known, 1);
            assert_int_equal(h.cookie_len, cookies[j]);
            assert_int_equal(h.message_seq, 0);
            assert_int_equal(h.msg_len, n - 25);
        }
    }
}

static void test_hello_malformed(void **state)
{
    (void)state;
    uint8_t body[600], hs[700], dg[800];
    siptls__dtls_hello h;
    /* session_id longer than 32 */
    size_t bl = make_ch_body(body, 33, 0, 0);
    size_t hl = make_hs(hs, 1, body, bl, 0, 0, bl);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), -1);
    /* cookie length past the end of an unfragmented hello */
    bl = make_ch_body(body, 0, 0, 0);
    body[35] = 200;
    hl = make_hs(hs, 1, body, bl, 0, 0, bl);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), -1);
    /* fragment length disagrees with the record */
    bl = make_ch_body(body, 0, 4, 0);
    hl = make_hs(hs, 1, body, bl, 0, 0, bl);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl - 1, &h), -1);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl + 0, &h), 0);
    /* fragment past the message length */
    hs[3] = (uint8_t)(bl - 1);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), -1);
    /* every truncation of the record is rejected or not a complete hello */
    size_t n = make_ch_datagram(dg, 32, 32);
    for (size_t cut = 0; cut < n; cut++) {
        siptls__dtls_scan s;
        assert_int_equal(siptls__dtls_scan_datagram(dg, cut, &s), -1);
    }
    /* short hello header */
    assert_int_equal(siptls__dtls_hello_parse(hs, 11, &h), -1);
    /* another handshake message */
    hl = make_hs(hs, 11, body, bl, 1, 0, bl);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), 1);
    /* an epoch-1 handshake record is not a hello */
    n = make_record(dg, 22, 1, 0, hs, hl);
    siptls__dtls_scan s;
    assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), 0);
    assert_int_equal(siptls__dtls_is_client_hello(&s, &h), 0);
}

static void test_hello_fragments(void **state)
{
    (void)state;
    uint8_t body[600], hs[700];
    siptls__dtls_hello h;
    size_t bl = make_ch_body(body, 32, 32, 100);
    /* first fragment holding the cookie length */
    size_t hl = make_hs(hs, 1, body, bl, 0, 0, 2 + 32 + 1 + 32 + 1);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), 0);
    assert_int_equal(h.fragmented, 1);
    assert_int_equal(h.cookie_known, 1);
    assert_int_equal(h.cookie_len, 32);
    assert_int_equal(h.frag_len, 68);
    assert_int_equal(h.msg_len, bl);
    /* first fragment that stops before it */
    hl = make_hs(hs, 1, body, bl, 0, 0, 40);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), 0);
    assert_int_equal(h.fragmented, 1);
    assert_int_equal(h.cookie_known, 0);
    /* a later fragment */
    hl = make_hs(hs, 1, body, bl, 0, 100, bl - 100);
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), 0);
    assert_int_equal(h.fragmented, 1);
    assert_int_equal(h.frag_off, 100);
    assert_int_equal(h.cookie_known, 0);
    assert_ptr_equal(h.frag, hs + 12);
}

static void test_hello_verify(void **state)
{
    (void)state;
    uint8_t hvr_body[40] = {0xFE, 0xFF, 32};
    uint8_t hs[64], dg[128];
    size_t hl = make_hs(hs, 3, hvr_body, 35, 0, 0, 35);
    size_t n = make_record(dg, 22, 0, 0, hs, hl);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n), 1);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n - 1), 0);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, 12), 0);
    dg[n] = 0;
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n + 1), 0);
    hs[0] = 2; /* ServerHello */
    n = make_record(dg, 22, 0, 0, hs, hl);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n), 0);
    hs[0] = 3;
    n = make_record(dg, 22, 1, 0, hs, hl);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n), 0);
}

/* ---- DTLS 1.3 (RFC 9147) ------------------------------------------------------ */

/* A unified-header record: first byte 001CSLEE, CID, seq (1 or 2 bytes),
 * length (when L), body. */
static size_t make_unified(uint8_t *out, int c, int s16, int l, unsigned epoch, const uint8_t *cid,
                           size_t cid_len, size_t body)
{
    size_t n = 0;
    out[n++] = (uint8_t)(0x20 | (c ? 0x10 : 0) | (s16 ? 0x08 : 0) | (l ? 0x04 : 0) | (epoch & 3));
    if (c) {
        memcpy(out + n, cid, cid_len);
        n += cid_len;
    }
    out[n++] = 0x12;
    if (s16) {
        out[n++] = 0x34;
    }
    if (l) {
        out[n++] = (uint8_t)(body >> 8);
        out[n++] = (uint8_t)body;
    }
    for (size_t i = 0; i < body; i++) {
        out[n++] = (uint8_t)(0x90 + i);
    }
    return n;
}

static void test_unified_header(void **state)
{
    (void)state;
    uint8_t dg[512];
    static const uint8_t cid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    siptls__dtls_record r;
    /* S and L set, epoch 3, no CID: 1 + 2 + 2 + body */
    size_t n = make_unified(dg, 0, 1, 1, 3, NULL, 0, 40);
    assert_int_equal(n, 45);
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n, 0, &r), 45);
    assert_int_equal(r.unified, 1);
    assert_int_equal(r.epoch, 3);
    assert_null(r.cid);
    assert_int_equal(r.len, 40);
    assert_ptr_equal(r.body, dg + 5);
    /* cut anywhere: refused; trailing bytes: the record ends where L says */
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(siptls__dtls_record_parse_unified(dg, cut, 0, &r), 0);
    }
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n + 7, 0, &r), 45);
    /* no L: the record runs to the end of the datagram; 8-bit sequence */
    n = make_unified(dg, 0, 0, 0, 2, NULL, 0, 30);
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n, 0, &r), n);
    assert_int_equal(r.len, 30);
    assert_int_equal(r.epoch, 2);
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n + 5, 0, &r), n + 5);
    /* an empty record is not one */
    assert_int_equal(siptls__dtls_record_parse_unified(dg, 2, 0, &r), 0);
    /* with a CID: only when we know its length (ours) */
    n = make_unified(dg, 1, 1, 1, 3, cid, sizeof(cid), 20);
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n, 0, &r), 0);
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n, 8, &r), n);
    assert_ptr_equal(r.cid, dg + 1);
    assert_memory_equal(r.cid, cid, 8);
    assert_int_equal(r.len, 20);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(siptls__dtls_record_parse_unified(dg, cut, 8, &r), 0);
    }
    /* not a unified header */
    dg[0] = 23;
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n, 8, &r), 0);
    dg[0] = 0x40;
    assert_int_equal(siptls__dtls_record_parse_unified(dg, n, 8, &r), 0);
}

static void test_scan_dtls13(void **state)
{
    (void)state;
    uint8_t dg[512], body[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    static const uint8_t cid[4] = {9, 9, 9, 9};
    siptls__dtls_scan s;
    /* a plaintext ACK (26) then a ciphertext record without L */
    size_t n = make_record(dg, 26, 0, 3, body, 8);
    size_t u = make_unified(dg + n, 0, 1, 0, 3, NULL, 0, 25);
    assert_int_equal(siptls__dtls_scan_datagram(dg, n + u, &s), 0);
    assert_int_equal(s.n_records, 2);
    assert_int_equal(s.n_unified, 1);
    assert_int_equal(s.n_appdata, 0);
    assert_int_equal(s.first.type, 26);
    /* two ciphertext records with L, the first with a CID */
    n = make_unified(dg, 1, 1, 1, 3, cid, 4, 30);
    n += make_unified(dg + n, 0, 1, 1, 3, NULL, 0, 30);
    assert_int_equal(siptls__dtls_scan_datagram_cid(dg, n, 4, &s), 0);
    assert_int_equal(s.n_records, 2);
    assert_int_equal(s.n_unified, 2);
    assert_non_null(s.first.cid);
    /* the same without knowing a CID length: refused (the C bit is set) */
    assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), -1);
    /* cut short anywhere inside: refused */
    for (size_t cut = 1; cut < n; cut++) {
        int r = siptls__dtls_scan_datagram_cid(dg, cut, 4, &s);
        assert_int_equal(r, cut == 39 ? 0 : -1); /* 1 + CID 4 + seq 2 + length 2 + 30 */
    }
    /* a plaintext record after a ciphertext record without L is its body */
    n = make_unified(dg, 0, 1, 0, 3, NULL, 0, 20);
    n += make_record(dg + n, 22, 0, 0, body, 8);
    assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), 0);
    assert_int_equal(s.n_records, 1);
}

/* A ClientHello body with real extensions: `with_cookie` puts a cookie
 * extension (44) between two others. */
static size_t make_ch13_datagram(uint8_t *out, int with_cookie)
{
    uint8_t ext[200];
    size_t e = 0;
    /* supported_versions (43): DTLS 1.3, 1.2 */
    static const uint8_t sv[] = {0, 43, 0, 5, 4, 0xFE, 0xFC, 0xFE, 0xFD};
    memcpy(ext + e, sv, sizeof(sv));
    e += sizeof(sv);
    if (with_cookie) {
        ext[e++] = 0;
        ext[e++] = 44;
        ext[e++] = 0;
        ext[e++] = 34;
        ext[e++] = 0;
        ext[e++] = 32;
        memset(ext + e, 0xCC, 32);
        e += 32;
    }
    /* key_share (51), a few bytes */
    static const uint8_t ks[] = {0, 51, 0, 4, 0, 2, 0xAB, 0xCD};
    memcpy(ext + e, ks, sizeof(ks));
    e += sizeof(ks);
    uint8_t body[600], hs[700];
    size_t bl = make_ch_body(body, 0, 0, 0);
    body[bl - 2] = (uint8_t)(e >> 8);
    body[bl - 1] = (uint8_t)e;
    memcpy(body + bl, ext, e);
    bl += e;
    size_t hl = make_hs(hs, 1, body, bl, 0, 0, bl);
    return make_record(out, 22, 0, 0, hs, hl);
}

static void test_hello_cookie_extension(void **state)
{
    (void)state;
    uint8_t dg[800];
    siptls__dtls_scan s;
    siptls__dtls_hello h;
    for (int with = 0; with <= 1; with++) {
        size_t n = make_ch13_datagram(dg, with);
        assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), 0);
        assert_int_equal(siptls__dtls_is_client_hello(&s, &h), 1);
        assert_int_equal(h.cookie_len, 0);
        assert_int_equal(h.cookie_ext, with);
        assert_int_equal(siptls__dtls_hello_has_cookie(&h), with);
    }
    /* the legacy field counts too (DTLS 1.2) */
    size_t n = make_ch_datagram(dg, 0, 20);
    assert_int_equal(siptls__dtls_scan_datagram(dg, n, &s), 0);
    assert_int_equal(siptls__dtls_is_client_hello(&s, &h), 1);
    assert_int_equal(siptls__dtls_hello_has_cookie(&h), 1);
    /* an extension list cut short: no cookie found (wolfSSL judges the rest) */
    n = make_ch13_datagram(dg, 1);
    size_t hl = n - 13;
    uint8_t *hs = dg + 13;
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), 0);
    assert_int_equal(h.cookie_ext, 1);
    /* shorten the extensions' length so that the cookie is past it */
    size_t ext_len_at = 12 + 2 + 32 + 1 + 1 + 2 + 2 + 1 + 1;
    hs[ext_len_at + 1] = 9;
    assert_int_equal(siptls__dtls_hello_parse(hs, hl, &h), 0);
    assert_int_equal(h.cookie_ext, 0);
}

static void test_hello_retry_request(void **state)
{
    (void)state;
    /* RFC 8446 §4.1.3: the HelloRetryRequest random */
    static const uint8_t hrr[32] = {0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11,
                                    0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
                                    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E,
                                    0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};
    uint8_t msg[80], hs[120], dg[160];
    memset(msg, 0, sizeof(msg));
    msg[0] = 0xFE;
    msg[1] = 0xFD;
    memcpy(msg + 2, hrr, 32);
    size_t hl = make_hs(hs, 2, msg, sizeof(msg), 0, 0, sizeof(msg));
    size_t n = make_record(dg, 22, 0, 0, hs, hl);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n), 1);
    /* an ordinary ServerHello is not */
    msg[10] ^= 1;
    hl = make_hs(hs, 2, msg, sizeof(msg), 0, 0, sizeof(msg));
    n = make_record(dg, 22, 0, 0, hs, hl);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n), 0);
    /* too short to hold the random */
    msg[10] ^= 1;
    hl = make_hs(hs, 2, msg, 20, 0, 0, 20);
    n = make_record(dg, 22, 0, 0, hs, hl);
    assert_int_equal(siptls__dtls_is_hello_verify(dg, n), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demux),
        cmocka_unit_test(test_record_parse),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_hello_cookie),
        cmocka_unit_test(test_hello_malformed),
        cmocka_unit_test(test_hello_fragments),
        cmocka_unit_test(test_hello_verify),
        cmocka_unit_test(test_unified_header),
        cmocka_unit_test(test_scan_dtls13),
        cmocka_unit_test(test_hello_cookie_extension),
        cmocka_unit_test(test_hello_retry_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
