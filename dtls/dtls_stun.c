/* siptls — STUN Binding for keepalives on a DTLS port (pure).
 *
 * RFC 5626 §3.5.2 (keepalive for datagram flows): the client sends STUN
 * Binding requests to the port it sends SIP to; the server answers with
 * its view of the client's address. We implement exactly that: an
 * unauthenticated Binding request in, a Binding success response with
 * XOR-MAPPED-ADDRESS out. No authentication, no other methods. */
#include <netinet/in.h>
#include <string.h>

#include "dtls_internal.h"

#define STUN_BINDING_REQUEST 0x0001
#define STUN_BINDING_SUCCESS 0x0101
#define ATTR_XOR_MAPPED_ADDRESS 0x0020
#define ATTR_FINGERPRINT 0x8028
#define FINGERPRINT_XOR 0x5354554eu

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t siptls__dtls_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }
    return ~c;
}

/* Header checks shared by requests and responses: RFC 5389 §6: "The most
 * significant 2 bits of every STUN message MUST be zeroes", "The message
 * length MUST contain the size, in bytes, of the message not including the
 * 20-byte STUN header. Since all STUN attributes are padded to a multiple
 * of 4 bytes, the last 2 bits of this field are always zero", and the
 * magic cookie "MUST contain the fixed value 0x2112A442". */
static int header_ok(const uint8_t *dg, size_t len, uint16_t type)
{
    if (len < SIPTLS__STUN_HEADER || (dg[0] & 0xC0) != 0 || get16(dg) != type) {
        return 0;
    }
    size_t mlen = get16(dg + 2);
    return (mlen & 3) == 0 && mlen == len - SIPTLS__STUN_HEADER &&
           get32(dg + 4) == SIPTLS__STUN_MAGIC;
}

int siptls__dtls_stun_check(const uint8_t *dg, size_t len, int *has_fp)
{
    *has_fp = 0;
    if (!header_ok(dg, len, STUN_BINDING_REQUEST)) {
        return -1;
    }
    size_t off = SIPTLS__STUN_HEADER;
    while (off < len) {
        if (len - off < 4) {
            return -1;
        }
        uint16_t type = get16(dg + off);
        size_t alen = get16(dg + off + 2);
        size_t padded = (alen + 3) & ~(size_t)3;
        if (len - off - 4 < padded) {
            return -1;
        }
        if (*has_fp) {
            /* RFC 5389 §15.5: "the FINGERPRINT attribute MUST be the last
             * attribute in the message". */
            return -1;
        }
        if (type == ATTR_FINGERPRINT) {
            if (alen != 4) {
                return -1;
            }
            /* RFC 5389 §15.5: "the CRC-32 of the STUN message up to (but
             * excluding) the FINGERPRINT attribute itself, XOR'ed with the
             * 32-bit value 0x5354554e". */
            uint32_t want = siptls__dtls_crc32(dg, off) ^ FINGERPRINT_XOR;
            if (get32(dg + off + 4) != want) {
                return -1;
            }
            *has_fp = 1;
        } else if (type < 0x8000) {
            /* RFC 5389 §7.3.1: an unknown comprehension-required attribute
             * calls for a 420 error; a keepalive never carries one, so such
             * a request (ICE, TURN: not for this port) is dropped. */
            return -1;
        }
        off += 4 + padded;
    }
    return 0;
}

size_t siptls__dtls_stun_response(const uint8_t *req, const struct sockaddr *from, int fingerprint,
                                  uint8_t *out)
{
    size_t alen;
    uint8_t *a = out + SIPTLS__STUN_HEADER;
    /* RFC 5389 §15.2: "X-Port is computed by taking the mapped port in host
     * byte order, XOR'ing it with the most significant 16 bits of the
     * magic cookie"; the IPv4 address is XOR'ed with the magic cookie, the
     * IPv6 address "with the concatenation of the magic cookie and the
     * 96-bit transaction ID". */
    uint8_t key[16];
    put32(key, SIPTLS__STUN_MAGIC);
    memcpy(key + 4, req + 8, 12);
    if (from->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)from;
        const uint8_t *ip = (const uint8_t *)&in->sin_addr;
        alen = 8;
        put16(a, ATTR_XOR_MAPPED_ADDRESS);
        put16(a + 2, (uint16_t)alen);
        a[4] = 0;
        a[5] = 0x01;
        put16(a + 6, (uint16_t)(ntohs(in->sin_port) ^ (SIPTLS__STUN_MAGIC >> 16)));
        for (int i = 0; i < 4; i++) {
            a[8 + i] = ip[i] ^ key[i];
        }
    } else if (from->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)from;
        const uint8_t *ip = (const uint8_t *)&in6->sin6_addr;
        alen = 20;
        put16(a, ATTR_XOR_MAPPED_ADDRESS);
        put16(a + 2, (uint16_t)alen);
        a[4] = 0;
        a[5] = 0x02;
        put16(a + 6, (uint16_t)(ntohs(in6->sin6_port) ^ (SIPTLS__STUN_MAGIC >> 16)));
        for (int i = 0; i < 16; i++) {
            a[8 + i] = ip[i] ^ key[i];
        }
    } else {
        return 0;
    }
    size_t len = SIPTLS__STUN_HEADER + 4 + alen;
    put16(out, STUN_BINDING_SUCCESS);
    /* The response carries the request's transaction ID (RFC 5389 §6:
     * it pairs a response with its request). */
    memcpy(out + 4, req + 4, 16);
    if (fingerprint) {
        put16(out + 2, (uint16_t)(len + 8 - SIPTLS__STUN_HEADER));
        uint8_t *f = out + len;
        put16(f, ATTR_FINGERPRINT);
        put16(f + 2, 4);
        put32(f + 4, siptls__dtls_crc32(out, len) ^ FINGERPRINT_XOR);
        len += 8;
    } else {
        put16(out + 2, (uint16_t)(len - SIPTLS__STUN_HEADER));
    }
    return len;
}

int siptls__dtls_stun_parse_mapped(const uint8_t *dg, size_t len, struct sockaddr_storage *out)
{
    if (!header_ok(dg, len, STUN_BINDING_SUCCESS)) {
        return -1;
    }
    size_t off = SIPTLS__STUN_HEADER;
    while (len - off >= 4) {
        uint16_t type = get16(dg + off);
        size_t alen = get16(dg + off + 2);
        size_t padded = (alen + 3) & ~(size_t)3;
        if (len - off - 4 < padded) {
            return -1;
        }
        const uint8_t *a = dg + off + 4;
        if (type == ATTR_XOR_MAPPED_ADDRESS && alen >= 8) {
            uint8_t key[16];
            memcpy(key, dg + 4, 16);
            uint16_t port = (uint16_t)(get16(a + 2) ^ (SIPTLS__STUN_MAGIC >> 16));
            memset(out, 0, sizeof(*out));
            if (a[1] == 0x01 && alen == 8) {
                struct sockaddr_in *in = (struct sockaddr_in *)out;
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                uint8_t *ip = (uint8_t *)&in->sin_addr;
                for (int i = 0; i < 4; i++) {
                    ip[i] = a[4 + i] ^ key[i];
                }
                return 0;
            }
            if (a[1] == 0x02 && alen == 20) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                uint8_t *ip = (uint8_t *)&in6->sin6_addr;
                for (int i = 0; i < 16; i++) {
                    ip[i] = a[4 + i] ^ key[i];
                }
                return 0;
            }
            return -1;
        }
        off += 4 + padded;
    }
    return -1;
}

size_t siptls__dtls_stun_request(const uint8_t txid[12], int fingerprint, uint8_t *out)
{
    put16(out, STUN_BINDING_REQUEST);
    put16(out + 2, fingerprint ? 8 : 0);
    put32(out + 4, SIPTLS__STUN_MAGIC);
    memcpy(out + 8, txid, 12);
    if (!fingerprint) {
        return SIPTLS__STUN_HEADER;
    }
    put16(out + 20, ATTR_FINGERPRINT);
    put16(out + 22, 4);
    put32(out + 24, siptls__dtls_crc32(out, 20) ^ FINGERPRINT_XOR);
    return 28;
}
