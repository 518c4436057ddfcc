/* siptls — reassembly of fragmented ClientHellos (pure).
 *
 * wolfSSL 5.5.4 silently drops a ClientHello that arrives in several
 * handshake fragments on its stateless (cookie) path, so clients behind a
 * small MTU (or tools such as socat with a small -mtu) never get an
 * answer. We put the fragments back together before the listener object
 * sees them, in a small cache bounded three ways: a fixed number of
 * entries (the oldest is evicted), a size cap per hello and an expiry.
 * A source can only occupy one entry (keyed by its address), and an entry
 * costs at most max_hello bytes plus a bitmap, so a flood of fragments from
 * spoofed sources costs a bounded amount of memory and CPU; it can evict
 * honest partial hellos, which their senders then retransmit. */
#include <stdlib.h>
#include <string.h>

#include "dtls_internal.h"

typedef struct entry {
    int used;
    struct sockaddr_storage from;
    socklen_t from_len;
    uint64_t born_ms;
    uint16_t message_seq;
    uint32_t msg_len;
    uint32_t have; /* bytes covered so far */
    uint8_t *buf;  /* msg_len bytes */
    uint8_t *bits; /* one bit per byte of buf */
    uint8_t rec_hdr[SIPTLS__DTLS_RECORD_HEADER];
} entry;

struct siptls__dtls_hello_cache {
    entry *e;
    unsigned slots;
    size_t max_hello;
    uint64_t expire_ms;
};

int siptls__dtls_hello_cache_new(siptls__dtls_hello_cache **out, unsigned slots, size_t max_hello,
                                 uint64_t expire_ms)
{
    *out = NULL;
    siptls__dtls_hello_cache *c = calloc(1, sizeof(*c));
    if (c == NULL || slots == 0) {
        free(c);
        return -1;
    }
    c->e = calloc(slots, sizeof(*c->e));
    if (c->e == NULL) {
        free(c);
        return -1;
    }
    c->slots = slots;
    c->max_hello = max_hello;
    c->expire_ms = expire_ms;
    *out = c;
    return 0;
}

static void drop(entry *x)
{
    free(x->buf);
    free(x->bits);
    memset(x, 0, sizeof(*x));
}

void siptls__dtls_hello_cache_free(siptls__dtls_hello_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (unsigned i = 0; i < c->slots; i++) {
        drop(&c->e[i]);
    }
    free(c->e);
    free(c);
}

static void expire(siptls__dtls_hello_cache *c, uint64_t now_ms)
{
    for (unsigned i = 0; i < c->slots; i++) {
        if (c->e[i].used && now_ms - c->e[i].born_ms > c->expire_ms) {
            drop(&c->e[i]);
        }
    }
}

unsigned siptls__dtls_hello_cache_count(siptls__dtls_hello_cache *c, uint64_t now_ms)
{
    expire(c, now_ms);
    unsigned n = 0;
    for (unsigned i = 0; i < c->slots; i++) {
        n += c->e[i].used ? 1u : 0u;
    }
    return n;
}

static entry *find_or_make(siptls__dtls_hello_cache *c, const struct sockaddr *from,
                           socklen_t from_len, uint64_t now_ms)
{
    entry *free_slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < c->slots; i++) {
        entry *x = &c->e[i];
        if (!x->used) {
            if (free_slot == NULL) {
                free_slot = x;
            }
            continue;
        }
        if (x->from_len == from_len && memcmp(&x->from, from, from_len) == 0) {
            return x;
        }
        if (oldest == NULL || x->born_ms < oldest->born_ms) {
            oldest = x;
        }
    }
    entry *x = free_slot;
    if (x == NULL) {
        x = oldest;
        drop(x);
    }
    x->used = 1;
    memcpy(&x->from, from, from_len);
    x->from_len = from_len;
    x->born_ms = now_ms;
    return x;
}

static uint32_t mark(entry *x, uint32_t off, uint32_t len)
{
    uint32_t added = 0;
    for (uint32_t i = off; i < off + len; i++) {
        uint8_t bit = (uint8_t)(1u << (i & 7));
        if (!(x->bits[i >> 3] & bit)) {
            x->bits[i >> 3] |= bit;
            added++;
        }
    }
    return added;
}

int siptls__dtls_hello_cache_add(siptls__dtls_hello_cache *c, const struct sockaddr *from,
                                 socklen_t from_len, const siptls__dtls_record *rec,
                                 const siptls__dtls_hello *h, uint64_t now_ms, uint8_t *out,
                                 size_t cap, size_t *out_len)
{
    if (h->msg_len == 0 || h->msg_len > c->max_hello ||
        from_len > sizeof(struct sockaddr_storage)) {
        return -1;
    }
    expire(c, now_ms);
    entry *x = find_or_make(c, from, from_len, now_ms);
    if (x->buf != NULL && (x->message_seq != h->message_seq || x->msg_len != h->msg_len)) {
        /* A new hello (the client restarted) or a forged fragment: start
         * again from this one. */
        drop(x);
        x->used = 1;
        memcpy(&x->from, from, from_len);
        x->from_len = from_len;
        x->born_ms = now_ms;
    }
    if (x->buf == NULL) {
        x->buf = malloc(h->msg_len);
        x->bits = calloc((h->msg_len + 7) / 8, 1);
        if (x->buf == NULL || x->bits == NULL) {
            drop(x);
            return -1;
        }
        x->message_seq = h->message_seq;
        x->msg_len = h->msg_len;
    }
    /* Overlapping fragments must agree on the bytes they share: a forged
     * fragment must not be able to splice itself into a genuine hello. */
    for (uint32_t i = 0; i < h->frag_len; i++) {
        uint32_t at = h->frag_off + i;
        if ((x->bits[at >> 3] & (1u << (at & 7))) && x->buf[at] != h->frag[i]) {
            drop(x);
            return -1;
        }
    }
    memcpy(x->buf + h->frag_off, h->frag, h->frag_len);
    x->have += mark(x, h->frag_off, h->frag_len);
    /* The record header of the latest fragment: its sequence number is the
     * highest the client used so far. */
    x->rec_hdr[0] = rec->type;
    x->rec_hdr[1] = (uint8_t)(rec->version >> 8);
    x->rec_hdr[2] = (uint8_t)rec->version;
    x->rec_hdr[3] = 0;
    x->rec_hdr[4] = 0;
    for (int i = 0; i < 6; i++) {
        x->rec_hdr[5 + i] = (uint8_t)(rec->seq >> (8 * (5 - i)));
    }
    if (x->have < x->msg_len) {
        return 0;
    }
    size_t body = SIPTLS__DTLS_HS_HEADER + x->msg_len;
    size_t total = SIPTLS__DTLS_RECORD_HEADER + body;
    if (total > cap || body > 0xFFFF) {
        drop(x);
        return -1;
    }
    memcpy(out, x->rec_hdr, 11);
    out[11] = (uint8_t)(body >> 8);
    out[12] = (uint8_t)body;
    uint8_t *hs = out + SIPTLS__DTLS_RECORD_HEADER;
    hs[0] = 1;
    hs[1] = (uint8_t)(x->msg_len >> 16);
    hs[2] = (uint8_t)(x->msg_len >> 8);
    hs[3] = (uint8_t)x->msg_len;
    hs[4] = (uint8_t)(x->message_seq >> 8);
    hs[5] = (uint8_t)x->message_seq;
    hs[6] = hs[7] = hs[8] = 0;
    hs[9] = hs[1];
    hs[10] = hs[2];
    hs[11] = hs[3];
    memcpy(hs + SIPTLS__DTLS_HS_HEADER, x->buf, x->msg_len);
    *out_len = total;
    drop(x);
    return 1;
}
