/* siptls bench — the flow id -> connection slot map. */
#include <stdlib.h>

#include "bench.h"

/* ------------------------------------------------------------------------ */
/* flow id -> slot map                                                      */
/* ------------------------------------------------------------------------ */

static uint32_t fm_hash(uint64_t k, uint32_t mask)
{
    return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

int bench_flowmap_init(flowmap *m, uint32_t entries)
{
    uint32_t cap = 16;
    while (cap < 2 * entries) {
        cap <<= 1;
    }
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = calloc(cap, sizeof(*m->vals));
    m->mask = cap - 1;
    return m->keys != NULL && m->vals != NULL ? 0 : -1;
}

void bench_flowmap_free(flowmap *m)
{
    free(m->keys);
    free(m->vals);
}

void bench_flowmap_put(flowmap *m, uint64_t k, uint32_t v)
{
    uint32_t i = fm_hash(k, m->mask);
    while (m->keys[i] != 0 && m->keys[i] != k) {
        i = (i + 1) & m->mask;
    }
    m->keys[i] = k;
    m->vals[i] = v;
}

int bench_flowmap_find(const flowmap *m, uint64_t k, uint32_t *v)
{
    uint32_t i = fm_hash(k, m->mask);
    while (m->keys[i] != 0) {
        if (m->keys[i] == k) {
            *v = m->vals[i];
            return 1;
        }
        i = (i + 1) & m->mask;
    }
    return 0;
}

void bench_flowmap_del(flowmap *m, uint64_t k)
{
    uint32_t i = fm_hash(k, m->mask);
    while (m->keys[i] != k) {
        if (m->keys[i] == 0) {
            return;
        }
        i = (i + 1) & m->mask;
    }
    m->keys[i] = 0;
    /* Move later entries of the probe run back so lookups never stop at
     * the hole. */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (m->keys[j] == 0) {
            return;
        }
        uint32_t h = fm_hash(m->keys[j], m->mask);
        int stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->keys[j] = 0;
            i = j;
        }
    }
}
