/* siptls — per-source handshake rate limit (pure).
 *
 * A handshake costs the server an asymmetric-key operation; after the
 * cookie exchange the source address is proven, so limiting cookie-verified
 * handshakes per source address bounds what one host can make us spend.
 * Token buckets live in a fixed table (no allocation after creation); a
 * source hashes to a window of WINDOW slots and takes the least recently
 * seen one when it is new, so a flood of sources recycles the table
 * instead of growing it (a forgotten source starts again with a full
 * bucket: the limit is best effort for the sources it remembers).
 *
 * Refused hellos are remembered. A refused client gets no answer and
 * sends its hello again when its retransmission timer fires (RFC 6347
 * §4.2.4: 1 s, then 2 s, 4 s, ...). With plain token buckets the token
 * goes to whoever asks first after a refill, and the host's other, newer
 * handshakes (arriving at random, all the more so on a server busy with
 * other work) can take it just before each retransmission: three or four
 * refusals in a row outlast the client's handshake timeout although the
 * host is barely over its rate (issue 8 §4c: 11 of 17,982 DTLS handshakes
 * timed out at 20 per second from one host while TLS clients churned
 * beside them). So the retransmission of a hello we refused (same source
 * address and port, same client random) may borrow its token from the
 * coming second: its bucket may go down to -rate. New hellos still need a
 * whole token, so what was borrowed is paid back first. Over any interval
 * of T seconds a host gets at most rate * T + 2 * rate handshakes (the
 * burst plus what it may borrow): the limit holds on average, and a
 * refused client is served at its first retransmission unless its host
 * keeps asking for more than twice its rate. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dtls_internal.h"

#define WINDOW 8
#define MILLI 1000
/* A retransmission later than this is not one (no client waits that long
 * for a handshake). */
#define REFUSED_TTL_MS 64000

typedef struct bucket {
    uint8_t key[16]; /* IPv4 addresses as ::ffff:a.b.c.d */
    uint8_t used;
    uint64_t last_ms; /* last refill */
    int64_t tokens;   /* milli-tokens; below 0 while a borrowed token is owed */
} bucket;

/* A hello we refused: a hash of its source address, port and client
 * random (0: free slot). */
typedef struct refused {
    uint64_t key;
    uint64_t at_ms;
} refused;

struct siptls__dtls_ratelimit {
    bucket *b;
    unsigned mask;
    refused *refused;
    unsigned refused_mask;
    unsigned rate;
};

int siptls__dtls_ratelimit_new(siptls__dtls_ratelimit **out, unsigned slots, unsigned rate)
{
    *out = NULL;
    unsigned n = WINDOW;
    while (n < slots && n < (1u << 24)) {
        n <<= 1;
    }
    /* Refused hellos are fewer than sources: a quarter of the slots. */
    unsigned nr = n / 4 < WINDOW ? WINDOW : n / 4;
    siptls__dtls_ratelimit *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return -1;
    }
    r->b = calloc(n, sizeof(*r->b));
    r->refused = calloc(nr, sizeof(*r->refused));
    if (r->b == NULL || r->refused == NULL) {
        siptls__dtls_ratelimit_free(r);
        return -1;
    }
    r->mask = n - 1;
    r->refused_mask = nr - 1;
    r->rate = rate;
    *out = r;
    return 0;
}

void siptls__dtls_ratelimit_free(siptls__dtls_ratelimit *r)
{
    if (r != NULL) {
        free(r->b);
        free(r->refused);
        free(r);
    }
}

static int make_key(const struct sockaddr *from, uint8_t key[16], uint16_t *port)
{
    memset(key, 0, 16);
    if (from->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)from)->sin_addr, 4);
        *port = ((const struct sockaddr_in *)from)->sin_port;
        return 0;
    }
    if (from->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)from)->sin6_addr, 16);
        *port = ((const struct sockaddr_in6 *)from)->sin6_port;
        return 0;
    }
    return -1;
}

static uint32_t hash_key(const uint8_t key[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++) {
        h = (h ^ key[i]) * 16777619u;
    }
    return h ^ (h >> 15);
}

/* FNV-1a (64 bit) of address, port and client random; never 0. */
static uint64_t hello_key(const uint8_t key[16], uint16_t port, const uint8_t random[32])
{
    uint64_t h = 14695981039346656037u;
    for (int i = 0; i < 16; i++) {
        h = (h ^ key[i]) * 1099511628211u;
    }
    h = (h ^ (port & 0xff)) * 1099511628211u;
    h = (h ^ (port >> 8)) * 1099511628211u;
    for (int i = 0; i < 32; i++) {
        h = (h ^ random[i]) * 1099511628211u;
    }
    h ^= h >> 29;
    return h != 0 ? h : 1;
}

/* The slot of a remembered hello, or NULL. */
static refused *refused_find(siptls__dtls_ratelimit *r, uint64_t key, uint64_t now_ms)
{
    for (unsigned i = 0; i < WINDOW; i++) {
        refused *e = &r->refused[(key + i) & r->refused_mask];
        if (e->key == key) {
            return now_ms - e->at_ms < REFUSED_TTL_MS ? e : NULL;
        }
    }
    return NULL;
}

/* Remember a refused hello: a free or expired slot of its window, else
 * the oldest. */
static void refused_add(siptls__dtls_ratelimit *r, uint64_t key, uint64_t now_ms)
{
    refused *victim = NULL;
    for (unsigned i = 0; i < WINDOW; i++) {
        refused *e = &r->refused[(key + i) & r->refused_mask];
        if (e->key == 0 || now_ms - e->at_ms >= REFUSED_TTL_MS) {
            victim = e;
            break;
        }
        if (victim == NULL || e->at_ms < victim->at_ms) {
            victim = e;
        }
    }
    victim->key = key;
    victim->at_ms = now_ms;
}

/* The bucket of `key`, refilled to `now_ms`. */
static bucket *bucket_of(siptls__dtls_ratelimit *r, const uint8_t key[16], uint64_t now_ms)
{
    int64_t cap = (int64_t)r->rate * MILLI;
    uint32_t h = hash_key(key);
    bucket *hit = NULL, *victim = NULL;
    for (unsigned i = 0; i < WINDOW; i++) {
        bucket *b = &r->b[(h + i) & r->mask];
        if (b->used && memcmp(b->key, key, 16) == 0) {
            hit = b;
            break;
        }
        /* Victim: the first free slot, else the least recently seen. */
        if (!b->used) {
            if (victim == NULL || victim->used) {
                victim = b;
            }
        } else if (victim == NULL || (victim->used && b->last_ms < victim->last_ms)) {
            victim = b;
        }
    }
    if (hit == NULL) {
        hit = victim;
        memcpy(hit->key, key, 16);
        hit->used = 1;
        hit->tokens = cap;
        hit->last_ms = now_ms;
    }
    if (now_ms > hit->last_ms) {
        /* rate tokens per second = rate milli-tokens per ms */
        uint64_t add = (now_ms - hit->last_ms) * r->rate;
        hit->tokens = add >= (uint64_t)(cap - hit->tokens) ? cap : hit->tokens + (int64_t)add;
        hit->last_ms = now_ms;
    }
    return hit;
}

int siptls__dtls_ratelimit_allow(siptls__dtls_ratelimit *r, const struct sockaddr *from,
                                 const uint8_t *random, uint64_t now_ms)
{
    if (r->rate == 0) {
        return 1;
    }
    uint8_t key[16];
    uint16_t port = 0;
    if (make_key(from, key, &port) != 0) {
        return 0;
    }
    bucket *b = bucket_of(r, key, now_ms);
    uint64_t hk = random != NULL ? hello_key(key, port, random) : 0;
    refused *seen = hk != 0 ? refused_find(r, hk, now_ms) : NULL;
    if (b->tokens >= MILLI) {
        b->tokens -= MILLI;
        if (seen != NULL) {
            seen->key = 0;
        }
        return 1;
    }
    /* Over the rate. The retransmission of a hello refused before may
     * borrow from the coming second (down to -rate tokens). */
    if (seen != NULL && b->tokens - MILLI >= -(int64_t)r->rate * MILLI) {
        b->tokens -= MILLI;
        seen->key = 0;
        return 1;
    }
    if (seen != NULL) {
        seen->at_ms = now_ms;
    } else if (hk != 0) {
        refused_add(r, hk, now_ms);
    }
    return 0;
}
