/* siptls — DTLS record layer parsing (pure).
 *
 * The transport looks at datagrams before wolfSSL does: to demultiplex
 * STUN from DTLS, to tell a ClientHello from anything else without any
 * per-peer state, to find out whether a ClientHello carries a cookie, to
 * learn the record sequence number the datagram framer uses for
 * reassembly, and to keep malformed datagrams away from wolfSSL. */
#include <string.h>

#include "dtls_internal.h"

static uint32_t get24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

siptls__dtls_demux siptls__dtls_demux_byte(const uint8_t *dg, size_t len)
{
    if (len == 0) {
        return SIPTLS__DTLS_DEMUX_JUNK;
    }
    /* RFC 7983 §7: "If the value of this byte is in between 0 and 3
     * (inclusive), then the packet is STUN. [...] If the value is in
     * between 20 and 63 (inclusive), then the packet is DTLS. [...] If the
     * value does not match any known range, then the packet MUST be
     * dropped". */
    if (dg[0] <= 3) {
        return SIPTLS__DTLS_DEMUX_STUN;
    }
    if (dg[0] >= 20 && dg[0] <= 63) {
        return SIPTLS__DTLS_DEMUX_DTLS;
    }
    return SIPTLS__DTLS_DEMUX_JUNK;
}

size_t siptls__dtls_record_parse(const uint8_t *data, size_t len, siptls__dtls_record *rec)
{
    if (len < SIPTLS__DTLS_RECORD_HEADER) {
        return 0;
    }
    /* RFC 6347 §4.1: "struct { ContentType type; ProtocolVersion version;
     * uint16 epoch; uint48 sequence_number; uint16 length; ..." */
    size_t body = ((size_t)data[11] << 8) | data[12];
    if (data[1] != 0xFE || len - SIPTLS__DTLS_RECORD_HEADER < body) {
        return 0;
    }
    memset(rec, 0, sizeof(*rec));
    rec->type = data[0];
    rec->version = (uint16_t)((data[1] << 8) | data[2]);
    rec->epoch = (uint16_t)((data[3] << 8) | data[4]);
    uint64_t seq = 0;
    for (int i = 5; i < 11; i++) {
        seq = (seq << 8) | data[i];
    }
    rec->seq = seq;
    rec->body = data + SIPTLS__DTLS_RECORD_HEADER;
    rec->len = body;
    return SIPTLS__DTLS_RECORD_HEADER + body;
}

size_t siptls__dtls_record_parse_unified(const uint8_t *data, size_t len, size_t cid_len,
                                         siptls__dtls_record *rec)
{
    if (len == 0 || (data[0] & SIPTLS__DTLS_UH_MASK) != SIPTLS__DTLS_UH_FIXED) {
        return 0;
    }
    /* RFC 9147 §4: "0|0|1|C|S|L|E E", then "Connection ID: Variable-length
     * CID. The CID functionality is described in [RFC9146]", "16 bit
     * Sequence Number" or 8, "16 bit Length" when L is set: "If the L bit
     * is not set, then the length is determined by the remainder of the
     * datagram". The CID length is not on the wire: it is ours. */
    uint8_t b = data[0];
    size_t off = 1;
    memset(rec, 0, sizeof(*rec));
    if (b & SIPTLS__DTLS_UH_CID) {
        if (cid_len == 0 || len < off + cid_len) {
            return 0;
        }
        rec->cid = data + off;
        off += cid_len;
    }
    off += (b & SIPTLS__DTLS_UH_SEQ16) ? 2 : 1;
    size_t body;
    if (b & SIPTLS__DTLS_UH_LEN) {
        if (len < off + 2) {
            return 0;
        }
        body = ((size_t)data[off] << 8) | data[off + 1];
        off += 2;
    } else {
        if (len < off) {
            return 0;
        }
        body = len - off;
    }
    if (body == 0 || len - off < body) {
        return 0;
    }
    rec->type = b;
    rec->unified = 1;
    rec->epoch = b & 0x03;
    rec->body = data + off;
    rec->len = body;
    return off + body;
}

int siptls__dtls_scan_datagram(const uint8_t *dg, size_t len, siptls__dtls_scan *out)
{
    return siptls__dtls_scan_datagram_cid(dg, len, 0, out);
}

int siptls__dtls_scan_datagram_cid(const uint8_t *dg, size_t len, size_t cid_len,
                                   siptls__dtls_scan *out)
{
    memset(out, 0, sizeof(*out));
    size_t off = 0;
    while (off < len) {
        siptls__dtls_record r;
        if ((dg[off] & SIPTLS__DTLS_UH_MASK) == SIPTLS__DTLS_UH_FIXED) {
            size_t used = siptls__dtls_record_parse_unified(dg + off, len - off, cid_len, &r);
            if (used == 0) {
                return -1;
            }
            if (out->n_records == 0) {
                out->first = r;
            }
            out->n_records++;
            out->n_unified++;
            off += used;
            continue;
        }
        size_t used = siptls__dtls_record_parse(dg + off, len - off, &r);
        if (used == 0 || ((r.type < SIPTLS__DTLS_CT_CCS || r.type > SIPTLS__DTLS_CT_APPDATA) &&
                          r.type != SIPTLS__DTLS_CT_ACK)) {
            return -1;
        }
        if (out->n_records == 0) {
            out->first = r;
        }
        out->n_records++;
        if (r.epoch == 0) {
            out->n_epoch0++;
        }
        if (r.type == SIPTLS__DTLS_CT_APPDATA) {
            out->n_appdata++;
            out->appdata = r;
        }
        off += used;
    }
    return out->n_records != 0 ? 0 : -1;
}

/* After the cookie: cipher_suites<2..2^16-2> compression_methods<1..2^8-1>
 * extensions<0..2^16-1> (RFC 8446 §4.1.2). 1 when a cookie extension (44,
 * RFC 8446 §4.2.2) is there; 0 when not or malformed (wolfSSL judges). */
static int find_cookie_ext(const uint8_t *p, size_t n)
{
    if (n < 2) {
        return 0;
    }
    size_t cs = ((size_t)p[0] << 8) | p[1];
    if (n < 2 + cs + 1) {
        return 0;
    }
    p += 2 + cs;
    n -= 2 + cs;
    size_t comp = p[0];
    if (n < 1 + comp + 2) {
        return 0;
    }
    p += 1 + comp;
    n -= 1 + comp;
    size_t ext = ((size_t)p[0] << 8) | p[1];
    p += 2;
    n -= 2;
    if (ext < n) {
        n = ext;
    }
    while (n >= 4) {
        unsigned type = ((unsigned)p[0] << 8) | p[1];
        size_t elen = ((size_t)p[2] << 8) | p[3];
        if (n - 4 < elen) {
            return 0;
        }
        if (type == 44) {
            return 1;
        }
        p += 4 + elen;
        n -= 4 + elen;
    }
    return 0;
}

int siptls__dtls_hello_parse(const uint8_t *body, size_t len, siptls__dtls_hello *h)
{
    memset(h, 0, sizeof(*h));
    if (len < SIPTLS__DTLS_HS_HEADER) {
        return -1;
    }
    /* RFC 6347 §4.2.2: "struct { HandshakeType msg_type; uint24 length;
     * uint16 message_seq; uint24 fragment_offset; uint24 fragment_length;
     * ..." */
    uint8_t type = body[0];
    h->msg_len = get24(body + 1);
    h->message_seq = (uint16_t)((body[4] << 8) | body[5]);
    h->frag_off = get24(body + 6);
    h->frag_len = get24(body + 9);
    if ((size_t)h->frag_len != len - SIPTLS__DTLS_HS_HEADER ||
        (uint64_t)h->frag_off + h->frag_len > h->msg_len) {
        return -1;
    }
    if (type != 1) {
        return 1;
    }
    h->frag = body + SIPTLS__DTLS_HS_HEADER;
    h->fragmented = h->frag_off != 0 || h->frag_len != h->msg_len;
    if (h->frag_off != 0) {
        return 0;
    }
    /* ClientHello: client_version(2) random(32) session_id<0..32>
     * cookie<0..2^8-1> ... (RFC 6347 §4.2.1). */
    const uint8_t *p = h->frag;
    size_t n = h->frag_len;
    if (n < 2 + 32 + 1) {
        return h->fragmented ? 0 : -1;
    }
    unsigned sid = p[34];
    if (sid > 32) {
        return -1;
    }
    if (n < 2 + 32 + 1 + sid + 1) {
        return h->fragmented ? 0 : -1;
    }
    h->cookie_len = p[35 + sid];
    h->cookie_known = 1;
    if (!h->fragmented && n < 2 + 32 + 1 + sid + 1 + h->cookie_len) {
        return -1;
    }
    if (!h->fragmented) {
        h->cookie_ext = find_cookie_ext(p + 2 + 32 + 1 + sid + 1 + h->cookie_len,
                                        n - (2 + 32 + 1 + sid + 1 + h->cookie_len));
    }
    return 0;
}

int siptls__dtls_is_client_hello(const siptls__dtls_scan *s, siptls__dtls_hello *h)
{
    if (s->n_records == 0 || s->first.type != SIPTLS__DTLS_CT_HANDSHAKE || s->first.epoch != 0) {
        return 0;
    }
    return siptls__dtls_hello_parse(s->first.body, s->first.len, h) == 0;
}

int siptls__dtls_is_hello_verify(const uint8_t *dg, size_t len)
{
    /* RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello whose random is
     * "SHA-256 of \"HelloRetryRequest\"". */
    static const uint8_t hrr_random[32] = {0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11,
                                           0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
                                           0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E,
                                           0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};
    siptls__dtls_record r;
    size_t used = siptls__dtls_record_parse(dg, len, &r);
    if (used != len || r.type != SIPTLS__DTLS_CT_HANDSHAKE || r.epoch != 0 ||
        r.len < SIPTLS__DTLS_HS_HEADER) {
        return 0;
    }
    if (r.body[0] == 3) {
        return 1; /* HelloVerifyRequest */
    }
    /* server_hello(2): legacy_version(2) random(32) ... */
    return r.body[0] == 2 && r.len >= SIPTLS__DTLS_HS_HEADER + 2 + 32 &&
           memcmp(r.body + SIPTLS__DTLS_HS_HEADER + 2, hrr_random, 32) == 0;
}
