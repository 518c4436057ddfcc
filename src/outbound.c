/* siptls — flows we open: by destination URI, reusing an open flow to the
 * same peer and SIP domain (RFC 3261 §18), trying every address a name
 * resolves to (RFC 3263 §4.3). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_internal.h"

#define MAX_ADDRS 8

/* An open flow to `host` at `addr` that a new send may use: an outbound
 * flow verified for the same SIP domain (or opened to the same IP
 * literal), or, for an IP-literal target, also a flow that peer opened to
 * us, as RFC 3261 §18 reuses connections. */
static siptls__flow *reusable_flow(siptls_engine *e, siptls_transport t, const char *host,
                                   int literal, const struct sockaddr *addr)
{
    for (siptls__flow *f = siptls__table_next_by_addr(e, t, addr, NULL); f != NULL;
         f = siptls__table_next_by_addr(e, t, addr, f)) {
        if ((f->outbound && f->sip_domain != NULL && strcasecmp(f->sip_domain, host) == 0) ||
            (literal && !f->outbound)) {
            return f;
        }
    }
    return NULL;
}

/* RFC 3263 §4.3: a client that cannot reach one address of a name goes
 * on with the next ("If a failure occurs, the client SHOULD create a new
 * request ... to the next element"). The flow has not heard from its
 * current address (refused, unreachable, connect timeout): drop what the
 * transport made for it and connect to the next one, keeping the flow id. */
int siptls__flow_next_address(siptls__flow *f, int *reason)
{
    siptls_engine *e = f->engine;
    while (f->alt_next < f->n_alts) {
        const siptls__addr *a = &f->alts[f->alt_next++];
        char was[64], next[64];
        siptls__addr_text((struct sockaddr *)&f->remote, was, sizeof(was));
        siptls__addr_text((const struct sockaddr *)&a->ss, next, sizeof(next));
        siptls__log(e, SIPTLS_LOG_INFO, "%s flow %llu to %s: %s: %s; trying %s", f->ops->name,
                    (unsigned long long)f->id, f->sip_domain ? f->sip_domain : "?", was,
                    siptls_strerror(*reason), next);
        siptls__engine_stop_flow(f); /* before its fd is closed */
        f->ops->free(f);
        f->fd = -1;
        siptls__table_move(e, f, a);
        int st = siptls__flow_connect(f);
        if (st == SIPTLS_OK) {
            f->timer_due_ms = 0;
            siptls__flow_rearm(f);
            return 1;
        }
        *reason = st;
    }
    return 0;
}

int siptls__open_addrs(siptls_engine *e, siptls_transport t, const char *host, int literal,
                       const siptls__addr *addrs, int n, int reuse, siptls__flow **out)
{
    if (n < 1) {
        return SIPTLS_ERR_RESOLVE;
    }
    if (n > MAX_ADDRS) {
        n = MAX_ADDRS;
    }
    if (reuse) {
        for (int i = 0; i < n; i++) {
            siptls__flow *f = reusable_flow(e, t, host, literal, (struct sockaddr *)&addrs[i].ss);
            if (f != NULL) {
                *out = f;
                return SIPTLS_OK;
            }
        }
    }
    const siptls__transport_ops *ops = siptls__engine_ops(t);
    if (siptls__engine_secctx(e, t) == NULL) {
        return SIPTLS_ERR_CERT;
    }
    siptls__flow *f = siptls__flow_alloc(e, ops, -1, (struct sockaddr *)&addrs[0].ss, addrs[0].len);
    if (f == NULL) {
        return e->open_by_kind[t] >= e->lim[t].max_flows ? SIPTLS_ERR_LIMIT : SIPTLS_ERR_NOMEM;
    }
    f->outbound = 1;
    f->sip_domain = strdup(host);
    if (n > 1) {
        f->alts = malloc(sizeof(*f->alts) * (size_t)(n - 1));
        if (f->alts != NULL) {
            memcpy(f->alts, addrs + 1, sizeof(*f->alts) * (size_t)(n - 1));
            f->n_alts = (uint8_t)(n - 1);
        }
    }
    int st = f->sip_domain == NULL || (n > 1 && f->alts == NULL) ? SIPTLS_ERR_NOMEM
                                                                 : siptls__flow_connect(f);
    if (st != SIPTLS_OK && st != SIPTLS_ERR_NOMEM) {
        /* This address failed at once (no route, no socket): the next. */
        if (siptls__flow_next_address(f, &st)) {
            st = SIPTLS_OK;
        }
    }
    if (st != SIPTLS_OK) {
        /* A call that fails never invokes a callback: unlink quietly. */
        f->outbound = 0;
        f->reason = st;
        siptls__engine_enter(e);
        siptls__flow_finalize(f);
        siptls__engine_leave(e);
        return st;
    }
    siptls__flow_rearm(f);
    *out = f;
    return SIPTLS_OK;
}

static int open_flow(siptls_engine *e, const char *text, int reuse, siptls__flow **out)
{
    siptls_uri u;
    int st = siptls_uri_parse(text, (uint16_t)e->cfg.tls_port, (uint16_t)e->cfg.dtls_port, 0, &u);
    if (st != SIPTLS_OK) {
        return st;
    }
    if (u.host_kind == SIPTLS_HOST_ANY) {
        return SIPTLS_ERR_URI_ADDR;
    }
    siptls__addr addrs[MAX_ADDRS];
    const char *why = NULL;
    int n = siptls__addr_resolve(&u, 0, addrs, MAX_ADDRS, &why);
    if (n < 0) {
        siptls__log(e, SIPTLS_LOG_WARN, "send to '%s': %s%s%s", text, siptls_strerror(n),
                    why ? ": " : "", why ? why : "");
        return n;
    }
    return siptls__open_addrs(e, u.transport, u.host, u.host_kind != SIPTLS_HOST_NAME, addrs, n,
                              reuse, out);
}

int siptls_connect(siptls_engine *e, const char *uri, siptls_flow_id *flow)
{
    if (e == NULL || uri == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = NULL;
    int st = open_flow(e, uri, 1, &f);
    if (st == SIPTLS_OK && flow != NULL) {
        *flow = f->id;
    }
    return st;
}

int siptls_open(siptls_engine *e, const char *uri, siptls_flow_id *flow)
{
    if (e == NULL || uri == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = NULL;
    int st = open_flow(e, uri, 0, &f);
    if (st == SIPTLS_OK && flow != NULL) {
        *flow = f->id;
    }
    return st;
}

int siptls_send_to(siptls_engine *e, const char *uri, const uint8_t *buf, size_t len,
                   siptls_flow_id *flow)
{
    if (e == NULL || uri == NULL || buf == NULL || len == 0 || len > e->cfg.max_msg_size) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = NULL;
    int st = open_flow(e, uri, 1, &f);
    if (st != SIPTLS_OK) {
        return st;
    }
    if (flow != NULL) {
        *flow = f->id;
    }
    return siptls_send(e, f->id, buf, len);
}
