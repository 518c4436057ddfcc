/* siptls — the engine's flow tables: by id (the host's handle), by
 * remote address (reuse, lookups) and, for outbound flows to names, by
 * destination (reuse before the name is resolved); chained hashes with
 * power-of-two buckets that double as flows come. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#define ID_BUCKETS_MIN 256u

static size_t id_bucket(const siptls_engine *e, siptls_flow_id id)
{
    return (size_t)siptls__hash64(id) & (e->n_buckets - 1);
}

static size_t addr_bucket(const siptls_engine *e, const struct sockaddr *sa)
{
    return siptls__addr_hash(sa) & (e->n_buckets - 1);
}

int siptls__table_grow(siptls_engine *e)
{
    size_t n = e->n_buckets ? e->n_buckets * 2 : ID_BUCKETS_MIN;
    siptls__flow **ids = calloc(n, sizeof(*ids));
    siptls__flow **addrs = calloc(n, sizeof(*addrs));
    siptls__flow **dests = calloc(n, sizeof(*dests));
    if (ids == NULL || addrs == NULL || dests == NULL) {
        free(ids);
        free(addrs);
        free(dests);
        return SIPTLS_ERR_NOMEM;
    }
    for (siptls__flow *f = e->all; f != NULL; f = f->all_next) {
        size_t bi = (size_t)siptls__hash64(f->id) & (n - 1);
        f->id_next = ids[bi];
        ids[bi] = f;
        size_t ba = siptls__addr_hash((struct sockaddr *)&f->remote) & (n - 1);
        f->addr_next = addrs[ba];
        addrs[ba] = f;
        if (f->dest_key != NULL) {
            size_t bd = (size_t)siptls__hash64(f->dest_hash) & (n - 1);
            f->dest_next = dests[bd];
            dests[bd] = f;
        }
    }
    free(e->by_id);
    free(e->by_addr);
    free(e->by_dest);
    e->by_id = ids;
    e->by_addr = addrs;
    e->by_dest = dests;
    e->n_buckets = n;
    return SIPTLS_OK;
}

static void addr_link(siptls_engine *e, siptls__flow *f)
{
    size_t ba = addr_bucket(e, (struct sockaddr *)&f->remote);
    f->addr_next = e->by_addr[ba];
    e->by_addr[ba] = f;
}

static void addr_unlink(siptls_engine *e, siptls__flow *f)
{
    size_t ba = addr_bucket(e, (struct sockaddr *)&f->remote);
    for (siptls__flow **pp = &e->by_addr[ba]; *pp != NULL; pp = &(*pp)->addr_next) {
        if (*pp == f) {
            *pp = f->addr_next;
            return;
        }
    }
}

int siptls__table_insert(siptls_engine *e, siptls__flow *f)
{
    if (e->n_flows + 1 > e->n_buckets) {
        int st = siptls__table_grow(e);
        if (st != SIPTLS_OK && e->n_buckets == 0) {
            return st;
        }
    }
    size_t bi = id_bucket(e, f->id);
    f->id_next = e->by_id[bi];
    e->by_id[bi] = f;
    addr_link(e, f);
    f->all_prev = NULL;
    f->all_next = e->all;
    if (e->all != NULL) {
        e->all->all_prev = f;
    }
    e->all = f;
    e->n_flows++;
    return SIPTLS_OK;
}

void siptls__table_remove(siptls_engine *e, siptls__flow *f)
{
    size_t bi = id_bucket(e, f->id);
    for (siptls__flow **pp = &e->by_id[bi]; *pp != NULL; pp = &(*pp)->id_next) {
        if (*pp == f) {
            *pp = f->id_next;
            break;
        }
    }
    addr_unlink(e, f);
    if (f->dest_key != NULL) {
        size_t bd = (size_t)siptls__hash64(f->dest_hash) & (e->n_buckets - 1);
        for (siptls__flow **pp = &e->by_dest[bd]; *pp != NULL; pp = &(*pp)->dest_next) {
            if (*pp == f) {
                *pp = f->dest_next;
                break;
            }
        }
    }
    if (f->all_prev != NULL) {
        f->all_prev->all_next = f->all_next;
    } else {
        e->all = f->all_next;
    }
    if (f->all_next != NULL) {
        f->all_next->all_prev = f->all_prev;
    }
    e->n_flows--;
}

void siptls__table_move(siptls_engine *e, siptls__flow *f, const siptls__addr *to)
{
    addr_unlink(e, f);
    memcpy(&f->remote, &to->ss, sizeof(f->remote));
    f->remote_len = to->len;
    addr_link(e, f);
}

siptls__flow *siptls__table_by_id(siptls_engine *e, siptls_flow_id id)
{
    if (e->n_buckets == 0) {
        return NULL;
    }
    for (siptls__flow *f = e->by_id[id_bucket(e, id)]; f != NULL; f = f->id_next) {
        if (f->id == id) {
            return f;
        }
    }
    return NULL;
}

siptls__flow *siptls__table_live(siptls_engine *e, siptls_flow_id id)
{
    siptls__flow *f = siptls__table_by_id(e, id);
    if (f == NULL || f->phase >= SIPTLS__PHASE_CLOSING || f->close_requested || f->pending_fail) {
        return NULL;
    }
    return f;
}

siptls__flow *siptls__table_next_by_addr(siptls_engine *e, siptls_transport t,
                                         const struct sockaddr *sa, siptls__flow *after)
{
    if (e->n_buckets == 0) {
        return NULL;
    }
    siptls__flow *f = after != NULL ? after->addr_next : e->by_addr[addr_bucket(e, sa)];
    for (; f != NULL; f = f->addr_next) {
        if (f->ops->kind == t && f->phase < SIPTLS__PHASE_CLOSING && !f->close_requested &&
            !f->pending_fail && siptls__addr_equal((struct sockaddr *)&f->remote, sa)) {
            return f;
        }
    }
    return NULL;
}

void siptls__table_link_dest(siptls_engine *e, siptls__flow *f)
{
    size_t bd = (size_t)siptls__hash64(f->dest_hash) & (e->n_buckets - 1);
    f->dest_next = e->by_dest[bd];
    e->by_dest[bd] = f;
}

siptls__flow *siptls__table_by_dest(siptls_engine *e, siptls_transport t, const char *key,
                                    uint64_t hash)
{
    if (e->n_buckets == 0) {
        return NULL;
    }
    size_t bd = (size_t)siptls__hash64(hash) & (e->n_buckets - 1);
    for (siptls__flow *f = e->by_dest[bd]; f != NULL; f = f->dest_next) {
        if (f->ops->kind == t && f->dest_hash == hash && f->phase < SIPTLS__PHASE_CLOSING &&
            !f->close_requested && !f->pending_fail && strcmp(f->dest_key, key) == 0) {
            return f;
        }
    }
    return NULL;
}
