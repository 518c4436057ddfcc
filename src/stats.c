/* siptls — counters per listener and per TLS domain, besides the engine's.
 *
 * Every event of a flow is counted once, by SIPTLS__FLOW_COUNT
 * (engine_internal.h), into the engine, the flow's listener (inbound
 * flows) and the flow's TLS domain. A listener's counters live in the
 * listener. A domain's live in a record named by (name, kind) that
 * outlives a reload as long as the configuration names the domain or a
 * flow still counts into it, so counters of a domain that a reload keeps
 * go on, and a flow that started under a domain a reload removed still
 * has somewhere to count. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "siptls/stats.h"

/* ------------------------------------------------------------------------ */
/* domain records                                                           */
/* ------------------------------------------------------------------------ */

static siptls__domstat *domstat_find(siptls_engine *e, const char *name, int is_server)
{
    for (siptls__domstat *d = e->domstats; d != NULL; d = d->next) {
        if (d->is_server == is_server && strcmp(d->name, name) == 0) {
            return d;
        }
    }
    return NULL;
}

static siptls__domstat *domstat_add(siptls_engine *e, const char *name, int is_server)
{
    siptls__domstat *d = calloc(1, sizeof(*d));
    char *copy = strdup(name);
    if (d == NULL || copy == NULL) {
        free(d);
        free(copy);
        return NULL;
    }
    d->name = copy;
    d->is_server = is_server;
    d->next = e->domstats;
    e->domstats = d;
    return d;
}

/* Free the records that are neither configured nor used by a flow. */
static void domstat_sweep(siptls_engine *e)
{
    siptls__domstat **pp = &e->domstats;
    while (*pp != NULL) {
        siptls__domstat *d = *pp;
        if (!d->in_cfg && d->refs == 0) {
            *pp = d->next;
            free(d->name);
            free(d);
        } else {
            pp = &d->next;
        }
    }
}

int siptls__domstat_prepare(siptls_engine *e, const siptls_config *cfg)
{
    for (size_t i = 0; i < cfg->n_domains; i++) {
        const siptls_domain_cfg *c = &cfg->domains[i];
        if (domstat_find(e, c->name, c->is_server ? 1 : 0) == NULL &&
            domstat_add(e, c->name, c->is_server ? 1 : 0) == NULL) {
            domstat_sweep(e); /* what was added stays unconfigured: gone again */
            return SIPTLS_ERR_NOMEM;
        }
    }
    return SIPTLS_OK;
}

void siptls__domstat_commit(siptls_engine *e, const siptls_config *cfg)
{
    for (siptls__domstat *d = e->domstats; d != NULL; d = d->next) {
        d->in_cfg = 0;
    }
    for (size_t i = 0; i < cfg->n_domains; i++) {
        const siptls_domain_cfg *c = &cfg->domains[i];
        siptls__domstat *d = domstat_find(e, c->name, c->is_server ? 1 : 0);
        if (d != NULL) {
            d->in_cfg = 1;
        }
    }
    domstat_sweep(e);
}

void siptls__domstat_free_all(siptls_engine *e)
{
    while (e->domstats != NULL) {
        siptls__domstat *d = e->domstats;
        e->domstats = d->next;
        free(d->name);
        free(d);
    }
}

/* ------------------------------------------------------------------------ */
/* a flow's domain                                                          */
/* ------------------------------------------------------------------------ */

/* The flow's "open now" counters in `s`, moved by `delta` (+1 / -1). */
static void open_gauges(siptls__flow *f, siptls_stats *s, int delta)
{
    uint64_t *by_kind = (uint64_t *)((char *)s + f->ops->stats_open);
    s->flows_open += (uint64_t)(int64_t)delta;
    *by_kind += (uint64_t)(int64_t)delta;
}

void siptls__flow_set_domain(siptls__flow *f, struct WOLFSSL *ssl)
{
    int is_server = 0;
    const char *name = siptls__secctx_ssl_domain(ssl, &is_server);
    siptls__flow_set_domain_name(f, name, is_server);
}

void siptls__flow_set_domain_name(siptls__flow *f, const char *name, int is_server)
{
    if (name == NULL) {
        return;
    }
    siptls_engine *e = f->engine;
    if (f->dom != NULL && f->dom->is_server == is_server && strcmp(f->dom->name, name) == 0) {
        return;
    }
    siptls__domstat *d = domstat_find(e, name, is_server);
    if (d == NULL) {
        /* a domain of a context a reload replaced, and removed: counted
         * on (out of memory: not per domain) */
        d = domstat_add(e, name, is_server);
        if (d == NULL) {
            return;
        }
    }
    siptls__flow_drop_domain(f);
    f->dom = d;
    d->refs++;
    open_gauges(f, &d->stats, +1);
}

void siptls__flow_drop_domain(siptls__flow *f)
{
    siptls__domstat *d = f->dom;
    if (d == NULL) {
        return;
    }
    if (f->phase != SIPTLS__PHASE_CLOSED) {
        /* moving to another domain (a closed flow's gauges went down when
         * it closed) */
        open_gauges(f, &d->stats, -1);
    }
    f->dom = NULL;
    d->refs--;
    if (!d->in_cfg && d->refs == 0) {
        domstat_sweep(f->engine);
    }
}

/* ------------------------------------------------------------------------ */
/* public                                                                   */
/* ------------------------------------------------------------------------ */

int siptls_listener_stats(const siptls_engine *e, int index, siptls_stats *st)
{
    if (e == NULL || st == NULL || index < 0 || index >= e->n_listeners ||
        e->listeners[index] == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *st = e->listeners[index]->stats;
    return SIPTLS_OK;
}

int siptls_listener_name(const siptls_engine *e, int index, char *buf, size_t len)
{
    if (e == NULL || buf == NULL || len == 0 || index < 0 || index >= e->n_listeners ||
        e->listeners[index] == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    const siptls__listener *l = e->listeners[index];
    char addr[64];
    siptls__addr_text((const struct sockaddr *)&l->addr, addr, sizeof(addr));
    int n = snprintf(buf, len, "%s:%s", l->ops->name, addr);
    return n >= 0 && (size_t)n < len ? SIPTLS_OK : SIPTLS_ERR_INVAL;
}

int siptls_domain_count(const siptls_engine *e)
{
    return e != NULL ? (int)e->cfg.n_domains : 0;
}

int siptls_domain_stats(const siptls_engine *e, int index, siptls_domain_counters *out)
{
    if (e == NULL || out == NULL || index < 0 || (size_t)index >= e->cfg.n_domains) {
        return SIPTLS_ERR_INVAL;
    }
    const siptls_domain_cfg *c = &e->cfg.domains[index];
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", c->name);
    out->is_server = c->is_server ? 1 : 0;
    const siptls__domstat *d = domstat_find((siptls_engine *)e, c->name, out->is_server);
    if (d != NULL) {
        out->stats = d->stats;
    }
    return SIPTLS_OK;
}
