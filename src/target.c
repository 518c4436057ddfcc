/* siptls — outbound destinations from what the host names: tls:/dtls:
 * URIs (uri.h), sip:/sips: URIs located by RFC 3263 (target.h), and
 * target lists (siptls_target); the host's calls that open flows to them
 * (outbound.c opens), and siptls_resolve(). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_internal.h"
#include "siptls/target.h"

static int same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcasecmp(a, b) == 0);
}

/* ------------------------------------------------------------------------ */
/* destinations from URIs and targets                                       */
/* ------------------------------------------------------------------------ */

static uint16_t default_port(const siptls_engine *e, siptls_transport t)
{
    return (uint16_t)(t == SIPTLS_TRANSPORT_DTLS ? e->cfg.dtls_port : e->cfg.tls_port);
}

/* "tls:" / "dtls:" URIs (uri.h), then sip: / sips: URIs (target.h). */
static int dest_from_uri(const siptls_engine *e, const char *text, siptls__dest *d)
{
    memset(d, 0, sizeof(*d));
    siptls_uri u;
    int st = siptls_uri_parse(text, (uint16_t)e->cfg.tls_port, (uint16_t)e->cfg.dtls_port, 0, &u);
    if (st == SIPTLS_OK) {
        if (u.host_kind == SIPTLS_HOST_ANY) {
            return SIPTLS_ERR_URI_ADDR;
        }
        d->transport = u.transport;
        snprintf(d->domain_buf, sizeof(d->domain_buf), "%s", u.host);
        d->sip_domain = d->domain_buf;
        snprintf(d->hosts[0].name, sizeof(d->hosts[0].name), "%s", u.host);
        d->hosts[0].port = u.port;
        d->n_hosts = 1;
        d->all_numeric = u.host_kind != SIPTLS_HOST_NAME;
        return SIPTLS_OK;
    }
    if (st != SIPTLS_ERR_URI_SCHEME) {
        return st;
    }
    siptls_sip_uri s;
    int st2 = siptls_sip_uri_parse(text, &s);
    if (st2 == SIPTLS_ERR_URI_SCHEME) {
        return st;
    }
    if (st2 != SIPTLS_OK) {
        return st2;
    }
    d->transport = s.transport;
    d->failover_handshake = 1;
    snprintf(d->domain_buf, sizeof(d->domain_buf), "%s", s.host);
    d->sip_domain = d->domain_buf;
    /* RFC 3263 §4: "If the URI contains an maddr parameter with a value,
     * the target is that value"; the identity stays the URI's host (RFC
     * 5922 §7.2). */
    const char *target = s.maddr_kind != 0 ? s.maddr : s.host;
    siptls_host_kind kind = s.maddr_kind != 0 ? s.maddr_kind : s.host_kind;
    uint16_t dport = default_port(e, s.transport);
    if (s.transport != SIPTLS_TRANSPORT_TLS || kind != SIPTLS_HOST_NAME || s.port != 0) {
        /* RFC 3263 §4.2: "If the TARGET was a numeric IP address, the
         * client uses that address. ... If the TARGET was not a numeric IP
         * address, but a port is present in the URI, the client performs
         * an A or AAAA record lookup". DTLS has no SRV records. */
        snprintf(d->hosts[0].name, sizeof(d->hosts[0].name), "%s", target);
        d->hosts[0].port = s.port != 0 ? s.port : dport;
        d->n_hosts = 1;
        d->all_numeric = kind != SIPTLS_HOST_NAME;
        return SIPTLS_OK;
    }
    d->rfc3263 = 1;
    d->srv_only = s.has_transport; /* §4.1: a transport given skips NAPTR */
    snprintf(d->lookup, sizeof(d->lookup), "%s", target);
    d->hosts[0].port = dport; /* the port of the A/AAAA fallback */
    return SIPTLS_OK;
}

/* A host of a target: an IP address (IPv6 with or without brackets) or a
 * name, in canonical form (IPv6 without brackets). */
static int target_host(const char *host, char *out, size_t outlen, int *numeric)
{
    char buf[SIPTLS_URI_HOST_MAX + 8];
    size_t n = strlen(host);
    if (n == 0 || n > SIPTLS_URI_HOST_MAX) {
        return SIPTLS_ERR_URI_ADDR;
    }
    int bare6 = host[0] != '[' && strchr(host, ':') != NULL;
    snprintf(buf, sizeof(buf), bare6 ? "tls:[%s]" : "tls:%s", host);
    siptls_uri u;
    int st = siptls_uri_parse(buf, 5061, 5061, 0, &u);
    if (st != SIPTLS_OK || u.port_given || u.host_kind == SIPTLS_HOST_ANY) {
        return SIPTLS_ERR_URI_ADDR;
    }
    snprintf(out, outlen, "%s", u.host);
    *numeric = u.host_kind != SIPTLS_HOST_NAME;
    return SIPTLS_OK;
}

static int dest_from_targets(const siptls_engine *e, const siptls_target *t, size_t n,
                             siptls__dest *d)
{
    memset(d, 0, sizeof(*d));
    if (t == NULL || n == 0 || n > SIPTLS_TARGETS_MAX) {
        return SIPTLS_ERR_INVAL;
    }
    if (t[0].transport != SIPTLS_TRANSPORT_TLS && t[0].transport != SIPTLS_TRANSPORT_DTLS) {
        return SIPTLS_ERR_INVAL;
    }
    d->transport = t[0].transport;
    d->failover_handshake = 1;
    d->sni = t[0].sni;
    d->client_domain = t[0].client_domain;
    if (t[0].local != NULL) {
        int fam = t[0].local->sa_family;
        socklen_t need = fam == AF_INET    ? (socklen_t)sizeof(struct sockaddr_in)
                         : fam == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                           : 0;
        if (need == 0 || t[0].local_len < need) {
            return SIPTLS_ERR_URI_ADDR;
        }
        memcpy(&d->local.ss, t[0].local, need);
        d->local.len = need;
    }
    d->all_numeric = 1;
    for (size_t i = 0; i < n; i++) {
        if (t[i].host == NULL) {
            return SIPTLS_ERR_INVAL;
        }
        if (i > 0 && (t[i].transport != t[0].transport || !same_text(t[i].sni, t[0].sni) ||
                      !same_text(t[i].client_domain, t[0].client_domain) ||
                      !same_text(t[i].sip_domain ? t[i].sip_domain : t[i].host,
                                 t[0].sip_domain ? t[0].sip_domain : t[0].host) ||
                      (t[i].local == NULL) != (t[0].local == NULL) ||
                      (t[i].local != NULL && !siptls__addr_equal(t[i].local, t[0].local)))) {
            return SIPTLS_ERR_INVAL;
        }
        int numeric = 0;
        int st = target_host(t[i].host, d->hosts[i].name, sizeof(d->hosts[i].name), &numeric);
        if (st != SIPTLS_OK) {
            return st;
        }
        d->hosts[i].port = t[i].port != 0 ? t[i].port : default_port(e, d->transport);
        d->all_numeric &= numeric;
    }
    d->n_hosts = (int)n;
    const char *dom = t[0].sip_domain;
    if (dom == NULL) {
        dom = d->hosts[0].name; /* canonical: an IPv6 address without brackets */
    }
    if (dom[0] == '\0' || strlen(dom) >= sizeof(d->domain_buf) ||
        (d->sni != NULL && (d->sni[0] == '\0' || strlen(d->sni) >= SIPTLS_URI_HOST_MAX))) {
        return SIPTLS_ERR_INVAL;
    }
    snprintf(d->domain_buf, sizeof(d->domain_buf), "%s", dom);
    d->sip_domain = d->domain_buf;
    return SIPTLS_OK;
}

/* ------------------------------------------------------------------------ */
/* the host's calls                                                         */
/* ------------------------------------------------------------------------ */

static int open_uri(siptls_engine *e, const char *text, int reuse, siptls_flow_id *flow)
{
    if (e == NULL || text == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__dest d;
    int st = dest_from_uri(e, text, &d);
    siptls__flow *f = NULL;
    if (st == SIPTLS_OK) {
        st = siptls__open_dest(e, &d, reuse, &f);
    }
    if (st != SIPTLS_OK) {
        siptls__log(e, SIPTLS_LOG_WARN, "send to '%s': %s", text, siptls_strerror(st));
        return st;
    }
    if (flow != NULL) {
        *flow = f->id;
    }
    return SIPTLS_OK;
}

int siptls_connect(siptls_engine *e, const char *uri, siptls_flow_id *flow)
{
    return open_uri(e, uri, 1, flow);
}

int siptls_open(siptls_engine *e, const char *uri, siptls_flow_id *flow)
{
    return open_uri(e, uri, 0, flow);
}

int siptls_send_to(siptls_engine *e, const char *uri, const uint8_t *buf, size_t len,
                   siptls_flow_id *flow)
{
    if (e == NULL || uri == NULL || buf == NULL || len == 0 || len > e->cfg.max_msg_size) {
        return SIPTLS_ERR_INVAL;
    }
    siptls_flow_id id = 0;
    int st = open_uri(e, uri, 1, &id);
    if (st != SIPTLS_OK) {
        return st;
    }
    if (flow != NULL) {
        *flow = id;
    }
    return siptls_send(e, id, buf, len);
}

void siptls_target_init(siptls_target *t)
{
    if (t != NULL) {
        memset(t, 0, sizeof(*t));
        t->transport = SIPTLS_TRANSPORT_TLS;
    }
}

static int open_targets(siptls_engine *e, const siptls_target *t, size_t n, int reuse,
                        siptls_flow_id *flow)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__dest d;
    int st = dest_from_targets(e, t, n, &d);
    siptls__flow *f = NULL;
    if (st == SIPTLS_OK) {
        st = siptls__open_dest(e, &d, reuse, &f);
    }
    if (st != SIPTLS_OK) {
        return st;
    }
    if (flow != NULL) {
        *flow = f->id;
    }
    return SIPTLS_OK;
}

int siptls_connect_target(siptls_engine *e, const siptls_target *targets, size_t n,
                          siptls_flow_id *flow)
{
    return open_targets(e, targets, n, 1, flow);
}

int siptls_open_target(siptls_engine *e, const siptls_target *targets, size_t n,
                       siptls_flow_id *flow)
{
    return open_targets(e, targets, n, 0, flow);
}

int siptls_send_target(siptls_engine *e, const siptls_target *targets, size_t n, const uint8_t *buf,
                       size_t len, siptls_flow_id *flow)
{
    if (e == NULL || buf == NULL || len == 0 || len > e->cfg.max_msg_size) {
        return SIPTLS_ERR_INVAL;
    }
    siptls_flow_id id = 0;
    int st = open_targets(e, targets, n, 1, &id);
    if (st != SIPTLS_OK) {
        return st;
    }
    if (flow != NULL) {
        *flow = id;
    }
    return siptls_send(e, id, buf, len);
}

/* ------------------------------------------------------------------------ */
/* siptls_resolve                                                           */
/* ------------------------------------------------------------------------ */

typedef struct host_lookup {
    siptls_engine *e;
    siptls_resolve_cb cb;
    void *user;
    siptls_transport transport;
    char domain[SIPTLS_URI_HOST_MAX];
    char text[SIPTLS_URI_HOST_MAX + 16];
} host_lookup;

static void host_resolved(void *arg, const siptls__resolved *res)
{
    host_lookup *h = arg;
    siptls_target targets[SIPTLS_TARGETS_MAX];
    char hosts[SIPTLS_TARGETS_MAX][64];
    size_t n = 0;
    for (int i = 0; res->status == SIPTLS_OK && i < res->n && n < SIPTLS_TARGETS_MAX; i++) {
        unsigned port = 0;
        if (!siptls__addr_host_port((const struct sockaddr *)&res->addrs[i].ss, hosts[n],
                                    sizeof(hosts[n]), &port)) {
            continue;
        }
        siptls_target_init(&targets[n]);
        targets[n].transport = h->transport;
        targets[n].host = hosts[n];
        targets[n].port = (uint16_t)port;
        targets[n].sip_domain = h->domain;
        n++;
    }
    int st = res->status;
    if (st != SIPTLS_OK && st != SIPTLS_ERR_SHUTDOWN && res->why != NULL) {
        siptls__log(h->e, SIPTLS_LOG_WARN, "resolve '%s': %s: %s", h->text, siptls_strerror(st),
                    res->why);
    }
    h->cb(h->e, st, n > 0 ? targets : NULL, n, h->user);
    free(h);
}

int siptls_resolve(siptls_engine *e, const char *uri, siptls_resolve_cb cb, void *user)
{
    if (e == NULL || uri == NULL || cb == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    if (e->freeing) {
        return SIPTLS_ERR_SHUTDOWN;
    }
    siptls__dest d;
    int st = dest_from_uri(e, uri, &d);
    if (st != SIPTLS_OK) {
        return st;
    }
    host_lookup *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    h->e = e;
    h->cb = cb;
    h->user = user;
    h->transport = d.transport;
    snprintf(h->domain, sizeof(h->domain), "%s", d.sip_domain);
    snprintf(h->text, sizeof(h->text), "%s", uri);
    siptls__rreq req;
    siptls__dest_request(&d, &req);
    if (siptls__resolve(e, &req, host_resolved, h, &st) == NULL) {
        free(h);
        return st;
    }
    return SIPTLS_OK;
}
