/* siptls internal — the pure parts of locating a SIP server (RFC 3263):
 * which NAPTR records a client may use and in what order, and the order
 * of SRV records (RFC 2782: priority, then weighted random). No DNS, no
 * I/O: the resolver (resolver.c) feeds them what c-ares returned; unit
 * tested in tests/unit/test_rfc3263.c. */
#ifndef SIPTLS_RFC3263_H
#define SIPTLS_RFC3263_H

#include <stddef.h>
#include <stdint.h>

#define SIPTLS__DNS_NAME_MAX 256 /* a domain name as text, with its NUL */

/** One NAPTR record (RFC 3403) as far as RFC 3263 uses it. */
typedef struct siptls__naptr {
    uint16_t order;
    uint16_t pref;
    char flags[16];
    char service[32];
    int has_regexp; /**< a non-empty regexp field (SIP NAPTRs use the replacement) */
    char replacement[SIPTLS__DNS_NAME_MAX];
} siptls__naptr;

/** One SRV record (RFC 2782). */
typedef struct siptls__srv {
    uint16_t prio;
    uint16_t weight;
    uint16_t port;
    char target[SIPTLS__DNS_NAME_MAX];
} siptls__srv;

/** The SRV names to query, from the NAPTR records `in` of a domain:
 *  records whose service is `service` (case-insensitive, e.g. "SIPS+D2T"),
 *  whose flags are "S" and that have a replacement and no regexp, in
 *  ascending order, then preference (RFC 3263 §4.1, RFC 3403 §4.1), without
 *  repeats. Writes at most `max` names into `out`; returns how many. */
size_t siptls__rfc3263_naptr_select(const siptls__naptr *in, size_t n, const char *service,
                                    char (*out)[SIPTLS__DNS_NAME_MAX], size_t max);

/** Random numbers for siptls__rfc2782_order(): uniform in [0, bound]. */
typedef uint32_t (*siptls__rand_fn)(void *ctx, uint32_t bound);

/** Order `recs` in place as RFC 2782 asks a client to try them: lowest
 *  priority first; within one priority, by weighted random selection as
 *  the RFC writes it: records with weight 0 placed at the beginning, a
 *  uniform random number r in [0, sum] (inclusive), the first record
 *  whose running sum is >= r, again for the rest. Heavier records come
 *  first more often (weights 1 and 3: the heavy one 3 times in 5, since
 *  the first record also takes r = 0, which is what gives weight-0
 *  records their small chance). A lone record with target "." means the
 *  service is not offered: the caller's business. */
void siptls__rfc2782_order(siptls__srv *recs, size_t n, siptls__rand_fn rnd, void *ctx);

#endif
