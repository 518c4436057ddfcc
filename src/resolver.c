/* siptls — name resolution on the engine's loop with c-ares, and RFC 3263
 * server location (NAPTR -> SRV -> A/AAAA).
 *
 * The engine's c-ares channel tells us which sockets it wants watched
 * (ARES_OPT_SOCK_STATE_CB) and when it next needs a look (ares_timeout);
 * both become engine watchers (engine.c), and readiness or the timer feed
 * ares_process_fd(). A lookup goes through stages, each a set of c-ares
 * queries answered in any order:
 *
 *   NAPTR  the domain's NAPTR records (RFC 3263 §4.1)
 *   SRV    the SRV records they name, or _sips._tcp.<domain> (§4.2)
 *   ADDR   A and AAAA records (ares_getaddrinfo: /etc/hosts first, then
 *          DNS; RFC 6724 order) of the SRV targets, or of the names given
 *
 * and ends in the engine's list of finished lookups, handed over by
 * siptls__resolver_deliver() from the engine's deferred work. A lookup is
 * freed only there (or when the engine is freed), never inside a c-ares
 * callback. The pure rules (which NAPTR records, SRV order) are in
 * rfc3263.c. */
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "resolver.h"

enum { ST_NAPTR = 1, ST_SRV, ST_ADDR, ST_DONE };

typedef struct rsock {
    ares_socket_t fd;
    siptls__io *io;
} rsock;

typedef struct siptls__resolver {
    siptls_engine *e;
    ares_channel ch;
    rsock *socks;
    size_t n_socks, cap_socks;
    siptls__timer *timer;
    siptls__rquery *live; /* not finished yet (doubly linked) */
    siptls__rquery *done_head, *done_tail;
    int closing;
} siptls__resolver;

/* The argument of one c-ares query of a lookup: which slot it fills. */
typedef struct slot {
    siptls__rquery *q;
    int idx;
} slot;

struct siptls__rquery {
    siptls__resolver *r;
    siptls__resolved_fn fn; /* NULL once cancelled */
    void *arg;
    int socktype, family;
    char domain[SIPTLS__DNS_NAME_MAX];
    char service[32];
    char srv_prefix[32];
    uint16_t default_port;
    int stage;
    int pending; /* c-ares queries of this stage not answered yet */
    /* SRV stage */
    char srv_names[SIPTLS__RESOLVE_MAX_SRV][SIPTLS__DNS_NAME_MAX];
    int n_srv;
    struct ares_srv_reply *srv_reply[SIPTLS__RESOLVE_MAX_SRV];
    int srv_status[SIPTLS__RESOLVE_MAX_SRV];
    /* ADDR stage */
    siptls__rhost hosts[SIPTLS__RESOLVE_MAX_HOSTS];
    int n_hosts;
    struct ares_addrinfo *host_ai[SIPTLS__RESOLVE_MAX_HOSTS];
    int host_status[SIPTLS__RESOLVE_MAX_HOSTS];
    slot slots[SIPTLS__RESOLVE_MAX_HOSTS];
    /* the answer */
    int status;
    char why[2 * SIPTLS__DNS_NAME_MAX];
    siptls__addr out[SIPTLS__RESOLVE_MAX_ADDRS];
    int n_out;
    siptls__rquery *prev, *next, *done_next;
};

/* ------------------------------------------------------------------------ */
/* the channel and its watchers                                             */
/* ------------------------------------------------------------------------ */

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status = ARES_SUCCESS;

static void ares_lib_init(void)
{
    /* Process-wide, once (not thread-safe in c-ares 1.18); never undone. */
    ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static void rearm(siptls__resolver *r)
{
    if (r->timer == NULL || r->ch == NULL) {
        return;
    }
    struct timeval tv;
    struct timeval *tvp = ares_timeout(r->ch, NULL, &tv);
    if (tvp == NULL) {
        siptls__engine_timer_after(r->timer, -1);
        return;
    }
    /* Round up: a timer that fires a little early would just look again. */
    int64_t ms = (int64_t)tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000;
    siptls__engine_timer_after(r->timer, ms);
}

static void on_io(void *arg, int fd, int mask)
{
    siptls__resolver *r = arg;
    ares_process_fd(r->ch, (mask & SIPTLS__IO_READ) ? fd : ARES_SOCKET_BAD,
                    (mask & SIPTLS__IO_WRITE) ? fd : ARES_SOCKET_BAD);
    rearm(r);
}

static void on_timer(void *arg)
{
    siptls__resolver *r = arg;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(r);
}

/* c-ares opens, watches and closes its sockets itself; it tells us what to
 * watch (readable/writable 0 and 0: the socket is about to be closed). */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    siptls__resolver *r = data;
    size_t i = 0;
    while (i < r->n_socks && r->socks[i].fd != fd) {
        i++;
    }
    int mask = (readable ? SIPTLS__IO_READ : 0) | (writable ? SIPTLS__IO_WRITE : 0);
    if (mask == 0) {
        if (i < r->n_socks) {
            siptls__engine_io_free(r->socks[i].io);
            r->socks[i] = r->socks[--r->n_socks];
        }
        return;
    }
    if (i == r->n_socks) {
        if (r->n_socks == r->cap_socks) {
            size_t cap = r->cap_socks ? r->cap_socks * 2 : 4;
            rsock *ns = realloc(r->socks, cap * sizeof(*ns));
            if (ns == NULL) {
                return; /* the query times out instead */
            }
            r->socks = ns;
            r->cap_socks = cap;
        }
        siptls__io *io = siptls__engine_io_new(r->e, fd, on_io, r);
        if (io == NULL) {
            return;
        }
        r->socks[r->n_socks].fd = fd;
        r->socks[r->n_socks].io = io;
        r->n_socks++;
    }
    siptls__engine_io_want(r->socks[i].io, mask);
}

static siptls__resolver *resolver_get(siptls_engine *e, int *st)
{
    if (e->resolver != NULL) {
        return e->resolver;
    }
    pthread_once(&ares_once, ares_lib_init);
    if (ares_init_status != ARES_SUCCESS) {
        siptls__log(e, SIPTLS_LOG_ERR, "DNS resolver: cannot start: %s",
                    ares_strerror(ares_init_status));
        *st = SIPTLS_ERR_RESOLVE;
        return NULL;
    }
    siptls__resolver *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        *st = SIPTLS_ERR_NOMEM;
        return NULL;
    }
    r->e = e;
    r->timer = siptls__engine_timer_new(e, on_timer, r);
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = r;
    o.timeout = (int)e->cfg.dns_timeout;
    o.tries = (int)e->cfg.dns_tries;
    int rc = r->timer == NULL
                 ? ARES_ENOMEM
                 : ares_init_options(&r->ch, &o,
                                     ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc == ARES_SUCCESS && e->cfg.n_dns_servers > 0) {
        /* "127.0.0.1:53,[::1]:5353": the canonical form config.c stores. */
        size_t len = 1;
        for (size_t i = 0; i < e->cfg.n_dns_servers; i++) {
            len += strlen(e->cfg.dns_servers[i]) + 1;
        }
        char *csv = malloc(len);
        if (csv == NULL) {
            rc = ARES_ENOMEM;
        } else {
            csv[0] = '\0';
            for (size_t i = 0; i < e->cfg.n_dns_servers; i++) {
                if (i > 0) {
                    strcat(csv, ",");
                }
                strcat(csv, e->cfg.dns_servers[i]);
            }
            rc = ares_set_servers_ports_csv(r->ch, csv);
            free(csv);
        }
    }
    if (rc != ARES_SUCCESS) {
        siptls__log(e, SIPTLS_LOG_ERR, "DNS resolver: cannot start: %s", ares_strerror(rc));
        if (r->ch != NULL) {
            ares_destroy(r->ch);
        }
        siptls__engine_timer_free(r->timer);
        free(r->socks);
        free(r);
        *st = rc == ARES_ENOMEM ? SIPTLS_ERR_NOMEM : SIPTLS_ERR_RESOLVE;
        return NULL;
    }
    e->resolver = r;
    return r;
}

/* ------------------------------------------------------------------------ */
/* a lookup's stages                                                        */
/* ------------------------------------------------------------------------ */

/* "Domain name not found" and "no data" say the records are not there;
 * anything else (timeout, refused, server failure) says we could not ask. */
static int is_absent(int ares_status)
{
    return ares_status == ARES_ENODATA || ares_status == ARES_ENOTFOUND;
}

static void set_why(siptls__rquery *q, const char *name, const char *text)
{
    if (q->why[0] == '\0') {
        snprintf(q->why, sizeof(q->why), "'%s': %s", name, text);
    }
}

static void finish(siptls__rquery *q, int status)
{
    siptls__resolver *r = q->r;
    q->status = status;
    q->stage = ST_DONE;
    if (q->prev != NULL) {
        q->prev->next = q->next;
    } else {
        r->live = q->next;
    }
    if (q->next != NULL) {
        q->next->prev = q->prev;
    }
    q->prev = q->next = NULL;
    q->done_next = NULL;
    if (r->done_tail != NULL) {
        r->done_tail->done_next = q;
    } else {
        r->done_head = q;
    }
    r->done_tail = q;
    siptls__engine_kick(r->e);
}

static void start_addr(siptls__rquery *q);
static void start_srv(siptls__rquery *q);

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    (void)timeouts;
    slot *s = arg;
    siptls__rquery *q = s->q;
    q->host_status[s->idx] = status;
    q->host_ai[s->idx] = ai;
    if (--q->pending > 0 || q->r->closing) {
        return;
    }
    /* Every name answered: their addresses in order, each once. */
    int timeouts_only = 1;
    for (int h = 0; h < q->n_hosts; h++) {
        if (q->host_status[h] != ARES_SUCCESS) {
            set_why(q, q->hosts[h].name, ares_strerror(q->host_status[h]));
            timeouts_only &= q->host_status[h] == ARES_ETIMEOUT;
            continue;
        }
        timeouts_only = 0;
        for (struct ares_addrinfo_node *n = q->host_ai[h] ? q->host_ai[h]->nodes : NULL;
             n != NULL && q->n_out < SIPTLS__RESOLVE_MAX_ADDRS; n = n->ai_next) {
            if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                (size_t)n->ai_addrlen > sizeof(struct sockaddr_storage) ||
                (q->family != AF_UNSPEC && n->ai_family != q->family)) {
                continue;
            }
            siptls__addr a;
            memset(&a, 0, sizeof(a));
            memcpy(&a.ss, n->ai_addr, (size_t)n->ai_addrlen);
            a.len = (socklen_t)n->ai_addrlen;
            if (a.ss.ss_family == AF_INET) {
                ((struct sockaddr_in *)&a.ss)->sin_port = htons(q->hosts[h].port);
            } else {
                ((struct sockaddr_in6 *)&a.ss)->sin6_port = htons(q->hosts[h].port);
            }
            int dup = 0;
            for (int k = 0; k < q->n_out && !dup; k++) {
                dup =
                    siptls__addr_equal((struct sockaddr *)&q->out[k].ss, (struct sockaddr *)&a.ss);
            }
            if (!dup) {
                q->out[q->n_out++] = a;
            }
        }
    }
    if (q->n_out > 0) {
        finish(q, SIPTLS_OK);
        return;
    }
    if (q->why[0] == '\0') {
        set_why(q, q->hosts[0].name,
                q->family == AF_INET    ? "no IPv4 address"
                : q->family == AF_INET6 ? "no IPv6 address"
                                        : "no IPv4 or IPv6 address");
    }
    finish(q, timeouts_only ? SIPTLS_ERR_RESOLVE_TIMEOUT : SIPTLS_ERR_RESOLVE);
}

static void start_addr(siptls__rquery *q)
{
    q->stage = ST_ADDR;
    q->pending = q->n_hosts;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = q->family;
    hints.ai_socktype = q->socktype;
    int n = q->n_hosts;
    for (int i = 0; i < n; i++) {
        q->slots[i].q = q;
        q->slots[i].idx = i;
        /* May answer at once (/etc/hosts, a numeric name): addr_cb then
         * runs inside this call; the last one finishes the lookup. */
        ares_getaddrinfo(q->r->ch, q->hosts[i].name, NULL, &hints, addr_cb, &q->slots[i]);
    }
}

static uint32_t srv_rand(void *ctx, uint32_t bound)
{
    (void)ctx;
    return bound == UINT32_MAX ? arc4random() : arc4random_uniform(bound + 1);
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    slot *s = arg;
    siptls__rquery *q = s->q;
    struct ares_srv_reply *reply = NULL;
    if (status == ARES_SUCCESS) {
        status = ares_parse_srv_reply(abuf, alen, &reply);
    }
    q->srv_status[s->idx] = status;
    q->srv_reply[s->idx] = status == ARES_SUCCESS ? reply : NULL;
    if (status != ARES_SUCCESS && reply != NULL) {
        ares_free_data(reply);
    }
    if (--q->pending > 0 || q->r->closing) {
        return;
    }
    /* RFC 3263 §4.2: the SRV records of each name in RFC 2782 order, the
     * names in NAPTR order; their targets become the names to resolve. */
    int dot_only = 0, timeouts_only = 1, any = 0;
    for (int i = 0; i < q->n_srv; i++) {
        if (q->srv_status[i] != ARES_SUCCESS) {
            timeouts_only &= q->srv_status[i] == ARES_ETIMEOUT;
            if (!is_absent(q->srv_status[i])) {
                set_why(q, q->srv_names[i], ares_strerror(q->srv_status[i]));
            }
            continue;
        }
        timeouts_only = 0;
        siptls__srv recs[16];
        size_t n = 0;
        for (struct ares_srv_reply *p = q->srv_reply[i]; p != NULL && n < 16; p = p->next) {
            recs[n].prio = p->priority;
            recs[n].weight = p->weight;
            recs[n].port = p->port;
            snprintf(recs[n].target, sizeof(recs[n].target), "%s", p->host);
            n++;
        }
        any |= n > 0;
        /* RFC 2782: "A Target of "." means that the service is decidedly
         * not available at this domain." (c-ares gives it as "") */
        if (n == 1 && (recs[0].target[0] == '\0' || strcmp(recs[0].target, ".") == 0)) {
            dot_only = 1;
            continue;
        }
        siptls__rfc2782_order(recs, n, srv_rand, NULL);
        for (size_t k = 0; k < n && q->n_hosts < SIPTLS__RESOLVE_MAX_HOSTS; k++) {
            if (recs[k].target[0] == '\0' || strcmp(recs[k].target, ".") == 0) {
                continue;
            }
            siptls__rhost *h = &q->hosts[q->n_hosts++];
            snprintf(h->name, sizeof(h->name), "%s", recs[k].target);
            h->port = recs[k].port;
        }
    }
    for (int i = 0; i < q->n_srv; i++) {
        if (q->srv_reply[i] != NULL) {
            ares_free_data(q->srv_reply[i]);
            q->srv_reply[i] = NULL;
        }
    }
    if (q->n_hosts == 0) {
        if (dot_only) {
            q->why[0] = '\0';
            set_why(q, q->srv_names[0], "the service is not offered (SRV target \".\")");
            finish(q, SIPTLS_ERR_RESOLVE);
            return;
        }
        if (timeouts_only && !any) {
            finish(q, SIPTLS_ERR_RESOLVE_TIMEOUT);
            return;
        }
        /* RFC 3263 §4.2: "If no SRV records were found, the client
         * performs an A or AAAA record lookup of the domain name." */
        snprintf(q->hosts[0].name, sizeof(q->hosts[0].name), "%s", q->domain);
        q->hosts[0].port = q->default_port;
        q->n_hosts = 1;
    }
    q->why[0] = '\0';
    start_addr(q);
}

static void start_srv(siptls__rquery *q)
{
    q->stage = ST_SRV;
    q->pending = q->n_srv;
    int n = q->n_srv;
    for (int i = 0; i < n; i++) {
        q->slots[i].q = q;
        q->slots[i].idx = i;
        ares_query(q->r->ch, q->srv_names[i], ns_c_in, ns_t_srv, srv_cb, &q->slots[i]);
    }
}

static void set_default_srv(siptls__rquery *q)
{
    int n = snprintf(q->srv_names[0], sizeof(q->srv_names[0]), "%s.%.*s", q->srv_prefix,
                     (int)(sizeof(q->srv_names[0]) - sizeof(q->srv_prefix) - 2), q->domain);
    (void)n;
    q->n_srv = 1;
}

static void naptr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    siptls__rquery *q = arg;
    struct ares_naptr_reply *reply = NULL;
    if (status == ARES_SUCCESS) {
        status = ares_parse_naptr_reply(abuf, alen, &reply);
    }
    q->pending--;
    if (q->r->closing) {
        if (reply != NULL) {
            ares_free_data(reply);
        }
        return;
    }
    if (status == ARES_ETIMEOUT) {
        /* No DNS server answers: asking it for SRV and A records would
         * take the same time again, twice. */
        set_why(q, q->domain, ares_strerror(status));
        if (reply != NULL) {
            ares_free_data(reply);
        }
        finish(q, SIPTLS_ERR_RESOLVE_TIMEOUT);
        return;
    }
    siptls__naptr recs[16];
    size_t n = 0;
    for (struct ares_naptr_reply *p = status == ARES_SUCCESS ? reply : NULL; p != NULL && n < 16;
         p = p->next) {
        memset(&recs[n], 0, sizeof(recs[n]));
        recs[n].order = p->order;
        recs[n].pref = p->preference;
        snprintf(recs[n].flags, sizeof(recs[n].flags), "%s", (const char *)p->flags);
        snprintf(recs[n].service, sizeof(recs[n].service), "%s", (const char *)p->service);
        recs[n].has_regexp = p->regexp != NULL && p->regexp[0] != '\0';
        snprintf(recs[n].replacement, sizeof(recs[n].replacement), "%s", p->replacement);
        n++;
    }
    if (reply != NULL) {
        ares_free_data(reply);
    }
    /* RFC 3263 §4.1: the NAPTR records for our service, by order and
     * preference; "If no NAPTR records are found, the client constructs
     * SRV queries". */
    q->n_srv = (int)siptls__rfc3263_naptr_select(recs, n, q->service, q->srv_names,
                                                 SIPTLS__RESOLVE_MAX_SRV);
    if (q->n_srv == 0) {
        set_default_srv(q);
    }
    start_srv(q);
}

/* ------------------------------------------------------------------------ */
/* public (internal) calls                                                  */
/* ------------------------------------------------------------------------ */

siptls__rquery *siptls__resolve(siptls_engine *e, const siptls__rreq *req, siptls__resolved_fn fn,
                                void *arg, int *st)
{
    if (e->freeing || (e->resolver != NULL && e->resolver->closing)) {
        *st = SIPTLS_ERR_SHUTDOWN;
        return NULL;
    }
    siptls__resolver *r = resolver_get(e, st);
    if (r == NULL) {
        return NULL;
    }
    siptls__rquery *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        *st = SIPTLS_ERR_NOMEM;
        return NULL;
    }
    q->r = r;
    q->fn = fn;
    q->arg = arg;
    q->socktype = req->socktype;
    q->family = req->family;
    q->next = r->live;
    if (r->live != NULL) {
        r->live->prev = q;
    }
    r->live = q;
    if (req->domain != NULL) {
        snprintf(q->domain, sizeof(q->domain), "%s", req->domain);
        snprintf(q->srv_prefix, sizeof(q->srv_prefix), "%s",
                 req->srv_prefix ? req->srv_prefix : "_sips._tcp");
        q->default_port = req->default_port;
        if (req->service != NULL) {
            snprintf(q->service, sizeof(q->service), "%s", req->service);
            q->stage = ST_NAPTR;
            q->pending = 1;
            ares_query(r->ch, q->domain, ns_c_in, ns_t_naptr, naptr_cb, q);
        } else {
            set_default_srv(q);
            start_srv(q);
        }
    } else {
        int n = req->n_hosts < SIPTLS__RESOLVE_MAX_HOSTS ? req->n_hosts : SIPTLS__RESOLVE_MAX_HOSTS;
        for (int i = 0; i < n; i++) {
            q->hosts[i] = req->hosts[i];
        }
        q->n_hosts = n;
        start_addr(q);
    }
    rearm(r);
    return q;
}

void siptls__resolve_cancel(siptls__rquery *q)
{
    if (q != NULL) {
        q->fn = NULL;
    }
}

static void query_free(siptls__rquery *q)
{
    for (int i = 0; i < SIPTLS__RESOLVE_MAX_HOSTS; i++) {
        if (q->host_ai[i] != NULL) {
            ares_freeaddrinfo(q->host_ai[i]);
        }
    }
    for (int i = 0; i < SIPTLS__RESOLVE_MAX_SRV; i++) {
        if (q->srv_reply[i] != NULL) {
            ares_free_data(q->srv_reply[i]);
        }
    }
    free(q);
}

int siptls__resolver_has_done(const siptls_engine *e)
{
    return e->resolver != NULL && e->resolver->done_head != NULL;
}

void siptls__resolver_deliver(siptls_engine *e)
{
    siptls__resolver *r = e->resolver;
    while (r != NULL && r->done_head != NULL) {
        siptls__rquery *q = r->done_head;
        r->done_head = q->done_next;
        if (r->done_head == NULL) {
            r->done_tail = NULL;
        }
        if (q->fn != NULL) {
            siptls__resolved res = {q->status, q->why, q->out,
                                    q->status == SIPTLS_OK ? q->n_out : 0};
            q->fn(q->arg, &res);
        }
        query_free(q);
    }
}

void siptls__resolver_free(siptls_engine *e)
{
    siptls__resolver *r = e->resolver;
    if (r == NULL) {
        return;
    }
    r->closing = 1;
    /* Whoever still waits hears SIPTLS_ERR_SHUTDOWN (lookups of flows were
     * cancelled when the flows closed). */
    siptls__resolved bye = {SIPTLS_ERR_SHUTDOWN, "the engine is being freed", NULL, 0};
    for (siptls__rquery *q = r->live; q != NULL; q = q->next) {
        siptls__resolved_fn fn = q->fn;
        q->fn = NULL;
        if (fn != NULL) {
            fn(q->arg, &bye);
        }
    }
    for (siptls__rquery *q = r->done_head; q != NULL; q = q->done_next) {
        siptls__resolved_fn fn = q->fn;
        q->fn = NULL;
        if (fn != NULL) {
            fn(q->arg, &bye);
        }
    }
    /* Answers every query still open (ARES_EDESTRUCTION: our callbacks only
     * count) and closes its sockets (sock_state frees their watchers). */
    ares_destroy(r->ch);
    while (r->live != NULL) {
        siptls__rquery *q = r->live;
        r->live = q->next;
        query_free(q);
    }
    while (r->done_head != NULL) {
        siptls__rquery *q = r->done_head;
        r->done_head = q->done_next;
        query_free(q);
    }
    for (size_t i = 0; i < r->n_socks; i++) {
        siptls__engine_io_free(r->socks[i].io);
    }
    free(r->socks);
    siptls__engine_timer_free(r->timer);
    free(r);
    e->resolver = NULL;
}
