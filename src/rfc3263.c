/* siptls — the pure parts of RFC 3263 server location: NAPTR selection
 * and SRV ordering (RFC 2782). No DNS here (resolver.c asks c-ares). */
#include "rfc3263.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* NAPTR                                                                    */
/* ------------------------------------------------------------------------ */

static int naptr_usable(const siptls__naptr *r, const char *service)
{
    /* RFC 3263 §4.1: "The client ... discards any records whose services
     * fields are not applicable"; SIP NAPTRs lead to SRV records: flag
     * "S", an empty regexp and the SRV name as replacement. */
    return strcasecmp(r->service, service) == 0 && strcasecmp(r->flags, "s") == 0 &&
           !r->has_regexp && r->replacement[0] != '\0' && strcmp(r->replacement, ".") != 0;
}

size_t siptls__rfc3263_naptr_select(const siptls__naptr *in, size_t n, const char *service,
                                    char (*out)[SIPTLS__DNS_NAME_MAX], size_t max)
{
    size_t got = 0;
    unsigned char *taken = calloc(n ? n : 1, 1);
    if (taken == NULL) {
        return 0;
    }
    /* Selection by (order, preference): n is small (a domain has a few). */
    while (got < max) {
        size_t best = n;
        for (size_t i = 0; i < n; i++) {
            if (taken[i] || !naptr_usable(&in[i], service)) {
                continue;
            }
            if (best == n || in[i].order < in[best].order ||
                (in[i].order == in[best].order && in[i].pref < in[best].pref)) {
                best = i;
            }
        }
        if (best == n) {
            break;
        }
        taken[best] = 1;
        int dup = 0;
        for (size_t k = 0; k < got && !dup; k++) {
            dup = strcasecmp(out[k], in[best].replacement) == 0;
        }
        if (!dup) {
            size_t len = strlen(in[best].replacement);
            memcpy(out[got], in[best].replacement, len + 1);
            got++;
        }
    }
    free(taken);
    return got;
}

/* ------------------------------------------------------------------------ */
/* SRV                                                                      */
/* ------------------------------------------------------------------------ */

static int by_prio(const void *a, const void *b)
{
    const siptls__srv *x = a, *y = b;
    return (int)x->prio - (int)y->prio;
}

void siptls__rfc2782_order(siptls__srv *recs, size_t n, siptls__rand_fn rnd, void *ctx)
{
    if (n < 2) {
        return;
    }
    /* Stable enough for our use: records of one priority are reordered by
     * weight below anyway. */
    qsort(recs, n, sizeof(*recs), by_prio);
    size_t start = 0;
    while (start < n) {
        size_t end = start;
        while (end < n && recs[end].prio == recs[start].prio) {
            end++;
        }
        /* RFC 2782: "arrange all SRV RRs (that have not been ordered yet)
         * in any order, except that all those with weight 0 are placed at
         * the beginning of the list." */
        size_t z = start;
        for (size_t i = start; i < end; i++) {
            if (recs[i].weight == 0) {
                siptls__srv t = recs[z];
                recs[z] = recs[i];
                recs[i] = t;
                z++;
            }
        }
        /* "Compute the sum of the weights of those RRs, and with each RR
         * associate the running sum in the selected order. Then choose a
         * uniform random number between 0 and the sum computed
         * (inclusive), and select the RR whose running sum value is the
         * first in the selected order which is greater than or equal to
         * the random number selected." Repeat for the rest. */
        for (size_t pos = start; pos + 1 < end; pos++) {
            uint32_t sum = 0;
            for (size_t i = pos; i < end; i++) {
                sum += recs[i].weight;
            }
            uint32_t r = rnd(ctx, sum);
            uint32_t run = 0;
            size_t pick = pos;
            for (size_t i = pos; i < end; i++) {
                run += recs[i].weight;
                if (run >= r) {
                    pick = i;
                    break;
                }
            }
            siptls__srv t = recs[pick];
            memmove(&recs[pos + 1], &recs[pos], (pick - pos) * sizeof(*recs));
            recs[pos] = t;
        }
        start = end;
    }
}
