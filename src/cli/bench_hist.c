/* siptls bench — the latency histogram. */
#include <math.h>
#include <string.h>

#include "bench.h"

/* ------------------------------------------------------------------------ */
/* latency histogram                                                        */
/* ------------------------------------------------------------------------ */

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB) {
        return (unsigned)v;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

static double hist_value(unsigned idx)
{
    if (idx < HIST_SUB) {
        return (double)idx;
    }
    unsigned shift = idx / HIST_SUB - 1;
    double low = (double)((uint64_t)(HIST_SUB + idx % HIST_SUB) << shift);
    return low + (double)((uint64_t)1 << shift) / 2.0;
}

void bench_hist_add(hist *h, double seconds)
{
    if (seconds < 0) {
        seconds = 0;
    }
    uint64_t ns = (uint64_t)(seconds * 1e9);
    h->b[hist_index(ns)]++;
    h->n++;
    h->sum_ns += (double)ns;
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

void bench_hist_clear(hist *h)
{
    memset(h->b, 0, HIST_BUCKETS * sizeof(*h->b));
    h->n = h->max_ns = 0;
    h->sum_ns = 0;
}

/* The q-quantile (0..1) in milliseconds; 0 when empty. */
double bench_hist_ms(const hist *h, double q)
{
    if (h->n == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return (v > (double)h->max_ns ? (double)h->max_ns : v) / 1e6;
        }
    }
    return (double)h->max_ns / 1e6;
}
