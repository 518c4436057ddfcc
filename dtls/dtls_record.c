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

int siptls__dtls_scan_datagram(const uint8_t *dg, size_t len, siptls__dtls_scan *out)
{
    memset(out, 0, sizeof(*out));
    size_t off = 0;
    while (off < len) {
        siptls__dtls_record r;
        size_t used = siptls__dtls_record_parse(dg + off, len - off, &r);
        if (used == 0 || r.type < SIPTLS__DTLS_CT_CCS || r.type > SIPTLS__DTLS_CT_APPDATA) {
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
    siptls__dtls_record r;
    size_t used = siptls__dtls_record_parse(dg, len, &r);
    return used == len && r.type == SIPTLS__DTLS_CT_HANDSHAKE && r.epoch == 0 &&
           r.len >= SIPTLS__DTLS_HS_HEADER && r.body[0] == 3;
}
