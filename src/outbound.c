/* siptls — flows we open to a destination (target.c makes one from a URI
 * or a target list): reusing an open flow to the same peer and SIP domain
 * (RFC 3261 §18), resolving names on the loop (resolver.c: A/AAAA, RFC
 * 3263 NAPTR/SRV), trying every address in turn (RFC 3263 §4.3). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engine_internal.h"
#include "resolver.h"

#define MAX_ADDRS SIPTLS__RESOLVE_MAX_ADDRS

/* ------------------------------------------------------------------------ */
/* reuse                                                                    */
/* ------------------------------------------------------------------------ */

static int same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcasecmp(a, b) == 0);
}

/* The host's choices of a flow are those of `d`. */
static int same_choices(const siptls__flow *f, const siptls__dest *d)
{
    if (!same_text(f->sni, d->sni) || !same_text(f->client_domain, d->client_domain) ||
        f->bind.len != d->local.len) {
        return 0;
    }
    return d->local.len == 0 || siptls__addr_equal((const struct sockaddr *)&f->bind.ss,
                                                   (const struct sockaddr *)&d->local.ss);
}

/* An open flow to `addr` that a new send to `d` may use: an outbound flow
 * verified for the same SIP domain with the same choices, or, for an
 * IP-literal SIP domain without choices, also a flow that peer opened to
 * us, as RFC 3261 §18 reuses connections. */
static siptls__flow *reusable_flow(siptls_engine *e, const siptls__dest *d, int literal,
                                   const struct sockaddr *addr)
{
    int plain = d->sni == NULL && d->client_domain == NULL && d->local.len == 0;
    for (siptls__flow *f = siptls__table_next_by_addr(e, d->transport, addr, NULL); f != NULL;
         f = siptls__table_next_by_addr(e, d->transport, addr, f)) {
        if (f->outbound && f->sip_domain != NULL && strcasecmp(f->sip_domain, d->sip_domain) == 0 &&
            same_choices(f, d)) {
            return f;
        }
        if (literal && plain && !f->outbound) {
            return f;
        }
    }
    return NULL;
}

/* The destination as text, for reuse of a flow to a name before the name
 * is resolved: everything that makes two destinations the same one. */
static char *dest_key(const siptls__dest *d)
{
    char local[64] = "";
    if (d->local.len != 0) {
        siptls__addr_text((const struct sockaddr *)&d->local.ss, local, sizeof(local));
    }
    size_t len = 256 + strlen(d->sip_domain) + strlen(d->lookup) + (d->sni ? strlen(d->sni) : 0) +
                 (d->client_domain ? strlen(d->client_domain) : 0) + strlen(local);
    for (int i = 0; i < d->n_hosts; i++) {
        len += strlen(d->hosts[i].name) + 8;
    }
    char *k = malloc(len);
    if (k == NULL) {
        return NULL;
    }
    int n = snprintf(k, len, "%d|%d|%d|%s|%s|%s|%s|%s|", (int)d->transport, d->rfc3263, d->srv_only,
                     d->lookup, d->sip_domain, d->sni ? d->sni : "-",
                     d->client_domain ? d->client_domain : "-", local);
    for (int i = 0; i < d->n_hosts && n > 0 && (size_t)n < len; i++) {
        n += snprintf(k + n, len - (size_t)n, "%s:%u,", d->hosts[i].name,
                      (unsigned)d->hosts[i].port);
    }
    /* names are case-insensitive */
    for (char *p = k; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
        }
    }
    return k;
}

static uint64_t key_hash(const char *k)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *k != '\0'; k++) {
        h = (h ^ (unsigned char)*k) * 0x100000001b3ULL;
    }
    return h;
}

/* ------------------------------------------------------------------------ */
/* failover                                                                 */
/* ------------------------------------------------------------------------ */

/* RFC 3263 §4.3: a client that cannot reach one address of a name goes
 * on with the next ("If a failure occurs, the client SHOULD create a new
 * request ... to the next element"). The flow has not heard from its
 * current address (refused, unreachable, connect timeout) or, with
 * failover_handshake, its handshake failed: drop what the transport made
 * for it and connect to the next one, keeping the flow id. */
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

int siptls__flow_socket(siptls__flow *f, int type)
{
    int family = f->remote.ss_family;
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || f->bind.len == 0) {
        return fd;
    }
    int one = 1;
    unsigned port = 0;
    char host[64];
    siptls__addr_host_port((const struct sockaddr *)&f->bind.ss, host, sizeof(host), &port);
    if (port != 0) {
        /* a fixed source port: several flows may use it towards different
         * peers, and one in TIME_WAIT must not block the next */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
#ifdef IP_BIND_ADDRESS_NO_PORT
    else if (type == SOCK_STREAM) {
        /* the port is chosen at connect(), per destination: a busy source
         * address does not run out of ephemeral ports */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
#endif
    if (bind(fd, (const struct sockaddr *)&f->bind.ss, f->bind.len) != 0) {
        char text[64];
        siptls__addr_text((const struct sockaddr *)&f->bind.ss, text, sizeof(text));
        siptls__log(f->engine, SIPTLS_LOG_WARN, "%s flow %llu: cannot bind to local %s: %s",
                    f->ops->name, (unsigned long long)f->id, text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------------------ */
/* opening                                                                  */
/* ------------------------------------------------------------------------ */

/* A call that fails never invokes a callback: unlink quietly. The flow is
 * freed with the engine's next deferred work. */
static void drop_quietly(siptls__flow *f, int st)
{
    f->outbound = 0;
    f->reason = st;
    siptls__flow_finalize(f);
    siptls__engine_kick(f->engine);
}

static char *dup_or_null(const char *s, int *nomem)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    *nomem |= d == NULL;
    return d;
}

/* A new outbound flow for `d` towards `first` (NULL: a name to resolve). */
static siptls__flow *new_flow(siptls_engine *e, const siptls__dest *d, const siptls__addr *first,
                              int *st)
{
    const siptls__transport_ops *ops = siptls__engine_ops(d->transport);
    siptls__addr none;
    memset(&none, 0, sizeof(none));
    none.len = sizeof(none.ss);
    if (first == NULL) {
        first = &none; /* AF_UNSPEC: never found by address */
    }
    siptls__flow *f =
        siptls__flow_alloc(e, ops, -1, (const struct sockaddr *)&first->ss, first->len);
    if (f == NULL) {
        *st = e->open_by_kind[d->transport] >= e->lim[d->transport].max_flows ? SIPTLS_ERR_LIMIT
                                                                              : SIPTLS_ERR_NOMEM;
        return NULL;
    }
    f->outbound = 1;
    f->failover_handshake = (uint8_t)d->failover_handshake;
    f->bind = d->local;
    int nomem = 0;
    f->sip_domain = dup_or_null(d->sip_domain, &nomem);
    f->sni = dup_or_null(d->sni, &nomem);
    f->client_domain = dup_or_null(d->client_domain, &nomem);
    if (nomem) {
        drop_quietly(f, SIPTLS_ERR_NOMEM);
        *st = SIPTLS_ERR_NOMEM;
        return NULL;
    }
    return f;
}

/* Connect `f` to the first of `addrs`, the others as alternatives.
 * Returns SIPTLS_OK (under way) or the failure of the last address. */
static int start_addrs(siptls__flow *f, const siptls__addr *addrs, int n)
{
    if (n > MAX_ADDRS) {
        n = MAX_ADDRS;
    }
    siptls__table_move(f->engine, f, &addrs[0]);
    free(f->alts);
    f->alts = NULL;
    f->n_alts = f->alt_next = 0;
    if (n > 1) {
        f->alts = malloc(sizeof(*f->alts) * (size_t)(n - 1));
        if (f->alts == NULL) {
            return SIPTLS_ERR_NOMEM;
        }
        memcpy(f->alts, addrs + 1, sizeof(*f->alts) * (size_t)(n - 1));
        f->n_alts = (uint8_t)(n - 1);
    }
    int st = siptls__flow_connect(f);
    if (st != SIPTLS_OK && st != SIPTLS_ERR_NOMEM) {
        /* This address failed at once (no route, no socket): the next. */
        if (siptls__flow_next_address(f, &st)) {
            st = SIPTLS_OK;
        }
    }
    if (st == SIPTLS_OK) {
        siptls__flow_rearm(f);
    }
    return st;
}

/* Only addresses of the local address's family can be reached from it. */
static int keep_family(const siptls__dest *d, siptls__addr *addrs, int n)
{
    if (d->local.len == 0) {
        return n;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (addrs[i].ss.ss_family == d->local.ss.ss_family) {
            addrs[k++] = addrs[i];
        }
    }
    return k;
}

static int open_numeric(siptls_engine *e, const siptls__dest *d, siptls__addr *addrs, int n,
                        int reuse, siptls__flow **out)
{
    n = keep_family(d, addrs, n);
    if (n < 1) {
        return SIPTLS_ERR_URI_ADDR;
    }
    if (n > MAX_ADDRS) {
        n = MAX_ADDRS;
    }
    unsigned char ip[16];
    int literal = siptls__addr_parse_ip(d->sip_domain, ip) != 0;
    if (reuse) {
        for (int i = 0; i < n; i++) {
            siptls__flow *f = reusable_flow(e, d, literal, (struct sockaddr *)&addrs[i].ss);
            if (f != NULL) {
                *out = f;
                return SIPTLS_OK;
            }
        }
    }
    int st = SIPTLS_OK;
    siptls__flow *f = new_flow(e, d, &addrs[0], &st);
    if (f == NULL) {
        return st;
    }
    st = start_addrs(f, addrs, n);
    if (st != SIPTLS_OK) {
        drop_quietly(f, st);
        return st;
    }
    *out = f;
    return SIPTLS_OK;
}

/* The name lookup of a flow is done (from the engine's deferred work). */
static void flow_resolved(void *arg, const siptls__resolved *res)
{
    siptls__flow *f = arg;
    siptls_engine *e = f->engine;
    f->resolving = NULL;
    int st = res->status;
    const char *why = res->why;
    if (st == SIPTLS_OK) {
        siptls__addr addrs[MAX_ADDRS];
        int n = res->n < MAX_ADDRS ? res->n : MAX_ADDRS;
        memcpy(addrs, res->addrs, sizeof(addrs[0]) * (size_t)n);
        /* a flow is of one family when the host bound it */
        siptls__dest d;
        memset(&d, 0, sizeof(d));
        d.local = f->bind;
        n = keep_family(&d, addrs, n);
        if (n == 0) {
            st = SIPTLS_ERR_RESOLVE;
            why = "no address of the local address's family";
        } else {
            st = start_addrs(f, addrs, n);
            if (st == SIPTLS_OK) {
                return;
            }
            why = NULL;
        }
    }
    if (why != NULL) {
        siptls__log(e, SIPTLS_LOG_WARN, "%s flow %llu to %s: %s: %s", f->ops->name,
                    (unsigned long long)f->id, f->sip_domain, siptls_strerror(st), why);
    }
    siptls__flow_fail(f, st, 0);
}

void siptls__dest_request(const siptls__dest *d, siptls__rreq *req)
{
    memset(req, 0, sizeof(*req));
    req->socktype = siptls__engine_ops(d->transport)->socktype;
    req->family = d->local.len != 0 ? d->local.ss.ss_family : AF_UNSPEC;
    if (d->rfc3263) {
        req->domain = d->lookup;
        req->service = d->srv_only ? NULL : "SIPS+D2T";
        req->srv_prefix = "_sips._tcp";
        req->default_port = d->hosts[0].port;
    } else {
        req->hosts = d->hosts;
        req->n_hosts = d->n_hosts;
    }
}

static int open_named(siptls_engine *e, const siptls__dest *d, int reuse, siptls__flow **out)
{
    char *key = dest_key(d);
    if (key == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    uint64_t hash = key_hash(key);
    if (reuse) {
        siptls__flow *f = siptls__table_by_dest(e, d->transport, key, hash);
        if (f != NULL) {
            free(key);
            *out = f;
            return SIPTLS_OK;
        }
    }
    int st = SIPTLS_OK;
    siptls__flow *f = new_flow(e, d, NULL, &st);
    if (f == NULL) {
        free(key);
        return st;
    }
    f->phase = SIPTLS__PHASE_RESOLVING;
    f->phase_since_ms = siptls__engine_now(e);
    f->dest_key = key;
    f->dest_hash = hash;
    siptls__table_link_dest(e, f);
    siptls__rreq req;
    siptls__dest_request(d, &req);
    f->resolving = siptls__resolve(e, &req, flow_resolved, f, &st);
    if (f->resolving == NULL) {
        drop_quietly(f, st);
        return st;
    }
    *out = f;
    return SIPTLS_OK;
}

int siptls__open_dest(siptls_engine *e, const siptls__dest *d, int reuse, siptls__flow **out)
{
    if (e->freeing) {
        return SIPTLS_ERR_SHUTDOWN;
    }
    siptls__secctx *sec = siptls__engine_secctx(e, d->transport);
    if (sec == NULL) {
        return SIPTLS_ERR_CERT;
    }
    if (d->client_domain != NULL && !siptls__secctx_has_client_domain(sec, d->client_domain)) {
        siptls__log(e, SIPTLS_LOG_WARN, "outbound to %s: no client domain '%s' is configured",
                    d->sip_domain, d->client_domain);
        return SIPTLS_ERR_INVAL;
    }
    if (!d->rfc3263 && d->all_numeric) {
        siptls__addr addrs[MAX_ADDRS];
        int n = 0;
        for (int i = 0; i < d->n_hosts; i++) {
            siptls_uri u;
            memset(&u, 0, sizeof(u));
            u.host_kind = strchr(d->hosts[i].name, ':') ? SIPTLS_HOST_IPV6 : SIPTLS_HOST_IPV4;
            snprintf(u.host, sizeof(u.host), "%s", d->hosts[i].name);
            u.port = d->hosts[i].port;
            if (siptls__addr_numeric(&u, &addrs[n].ss, &addrs[n].len) != 1) {
                return SIPTLS_ERR_URI_ADDR;
            }
            int dup = 0;
            for (int k = 0; k < n && !dup; k++) {
                dup = siptls__addr_equal((struct sockaddr *)&addrs[k].ss,
                                         (struct sockaddr *)&addrs[n].ss);
            }
            n += !dup;
        }
        return open_numeric(e, d, addrs, n, reuse, out);
    }
    return open_named(e, d, reuse, out);
}

/* Kept for the tests that hand over an address list (tests/integration). */
int siptls__open_addrs(siptls_engine *e, siptls_transport t, const char *host, int literal,
                       const siptls__addr *addrs, int n, int reuse, siptls__flow **out)
{
    (void)literal;
    if (n < 1) {
        return SIPTLS_ERR_RESOLVE;
    }
    if (siptls__engine_secctx(e, t) == NULL) {
        return SIPTLS_ERR_CERT;
    }
    siptls__dest d;
    memset(&d, 0, sizeof(d));
    d.transport = t;
    d.sip_domain = host;
    siptls__addr copy[MAX_ADDRS];
    if (n > MAX_ADDRS) {
        n = MAX_ADDRS;
    }
    memcpy(copy, addrs, sizeof(copy[0]) * (size_t)n);
    return open_numeric(e, &d, copy, n, reuse, out);
}
