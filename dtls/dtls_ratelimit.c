/* siptls — per-source handshake rate limit (pure).
 *
 * A handshake costs the server an asymmetric-key operation; after the
 * cookie exchange the source address is proven, so limiting cookie-verified
 * handshakes per source address bounds what one host can make us spend.
 * Token buckets live in a fixed table (no allocation after creation); a
 * source hashes to a window of WINDOW slots and takes the least recently
 * seen one when it is new, so a flood of sources recycles the table
 * instead of growing it (a forgotten source starts again with a full
 * bucket: the limit is best effort for the sources it remembers). */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dtls_internal.h"

#define WINDOW 8
#define MILLI 1000u

typedef struct bucket {
    uint8_t key[16]; /* IPv4 addresses as ::ffff:a.b.c.d */
    uint8_t used;
    uint64_t last_ms; /* last refill */
    uint64_t tokens;  /* milli-tokens */
} bucket;

struct siptls__dtls_ratelimit {
    bucket *b;
    unsigned mask;
    unsigned rate;
};

int siptls__dtls_ratelimit_new(siptls__dtls_ratelimit **out, unsigned slots, unsigned rate)
{
    *out = NULL;
    unsigned n = WINDOW;
    while (n < slots && n < (1u << 24)) {
        n <<= 1;
    }
    siptls__dtls_ratelimit *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return -1;
    }
    r->b = calloc(n, sizeof(*r->b));
    if (r->b == NULL) {
        free(r);
        return -1;
    }
    r->mask = n - 1;
    r->rate = rate;
    *out = r;
    return 0;
}

void siptls__dtls_ratelimit_free(siptls__dtls_ratelimit *r)
{
    if (r != NULL) {
        free(r->b);
        free(r);
    }
}

static int make_key(const struct sockaddr *from, uint8_t key[16])
{
    memset(key, 0, 16);
    if (from->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)from)->sin_addr, 4);
        return 0;
    }
    if (from->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)from)->sin6_addr, 16);
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

int siptls__dtls_ratelimit_allow(siptls__dtls_ratelimit *r, const struct sockaddr *from,
                                 uint64_t now_ms)
{
    if (r->rate == 0) {
        return 1;
    }
    uint8_t key[16];
    if (make_key(from, key) != 0) {
        return 0;
    }
    uint64_t cap = (uint64_t)r->rate * MILLI;
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
        hit->tokens = hit->tokens + add > cap ? cap : hit->tokens + add;
        hit->last_ms = now_ms;
    }
    if (hit->tokens < MILLI) {
        return 0;
    }
    hit->tokens -= MILLI;
    return 1;
}
