/* siptls — the engine: flows, listeners, timers, callbacks, stats.
 *
 * This is the one file of the library that talks to libev. Transports ask
 * for readiness and timers through siptls__flow_want() / next_timeout and
 * are called back through their ops table. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engine_internal.h"

#define ID_BUCKETS_MIN 256u

struct siptls_engine {
    struct ev_loop *loop;
    siptls_config cfg;
    siptls_callbacks cb;
    void *user;
    siptls__secctx *sec[3];        /* indexed by siptls_transport */
    siptls__listener **listeners;
    int n_listeners;

    /* flows */
    siptls__flow **by_id;          /* open hash, chained, power-of-two buckets */
    siptls__flow **by_addr;
    size_t n_buckets;
    size_t n_flows;
    siptls__flow *all;             /* every linked flow */
    siptls__flow *zombies;         /* closed, freed when no callback runs */
    siptls__flow *flush_list;
    siptls_flow_id next_id;
    unsigned open_by_kind[3];

    ev_prepare prepare;            /* runs queued work posted outside callbacks */
    int depth;                     /* > 0 while we are inside a libev callback */
    int freeing;
    int host_call;                 /* > 0 while a host call writes a queue out */
    siptls__ratelog limit_log;     /* "refusing: connection limit" lines */
    siptls_stats stats;
    void *tp_shared[3];            /* per-engine state of each transport (siptls__engine_tp_shared) */
};

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */
/* ------------------------------------------------------------------------ */

uint64_t siptls__engine_now(const siptls_engine *e)
{
    return (uint64_t)(ev_now(e->loop) * 1000.0);
}

const siptls_config *siptls__engine_config(const siptls_engine *e)
{
    return &e->cfg;
}

siptls_stats *siptls__engine_stats_mut(siptls_engine *e)
{
    return &e->stats;
}

void **siptls__engine_tp_shared(siptls_engine *e, siptls_transport t)
{
    return &e->tp_shared[t];
}

struct ev_loop *siptls_engine_loop(const siptls_engine *e)
{
    return e->loop;
}

__attribute__((format(printf, 3, 0))) static void vlog(siptls_engine *e, siptls_log_level level,
                                                       const char *fmt, va_list ap)
{
    /* log_level filters before formatting, also for a host's log
     * callback: a busy engine must not format lines nobody reads. */
    if ((int)level > e->cfg.log_level) {
        return;
    }
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    if (e->cb.log != NULL) {
        e->cb.log(level, line, e->user);
        return;
    }
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    fprintf(stderr, "siptls %s: %s\n", names[level], line);
}

void siptls__log(siptls_engine *e, siptls_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(e, level, fmt, ap);
    va_end(ap);
}

void siptls__log_cb(void *engine, siptls_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(engine, level, fmt, ap);
    va_end(ap);
}

void siptls__addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else {
        snprintf(buf, len, "?");
    }
}

/* Addresses are compared and hashed on family + port + address only (the
 * sockaddr padding and IPv6 flow info must not matter). */
int siptls__addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family) {
        return 0;
    }
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

size_t siptls__addr_hash(const struct sockaddr *sa)
{
    uint64_t h = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        h = h * 31 + in->sin_port;
        h = h * 0x100000001b3ULL + in->sin_addr.s_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        uint64_t part[2];
        memcpy(part, &in6->sin6_addr, sizeof(part));
        h = h * 31 + in6->sin6_port;
        h = h * 0x100000001b3ULL + part[0];
        h = h * 0x100000001b3ULL + part[1];
    }
    return (size_t)mix64(h);
}

static unsigned max_flows_of(const siptls_engine *e, siptls_transport t)
{
    return t == SIPTLS_TRANSPORT_TLS ? e->cfg.tls_max_connections : e->cfg.dtls_max_sessions;
}

/* ------------------------------------------------------------------------ */
/* flow table                                                               */
/* ------------------------------------------------------------------------ */

static int table_grow(siptls_engine *e)
{
    size_t n = e->n_buckets ? e->n_buckets * 2 : ID_BUCKETS_MIN;
    siptls__flow **ids = calloc(n, sizeof(*ids));
    siptls__flow **addrs = calloc(n, sizeof(*addrs));
    if (ids == NULL || addrs == NULL) {
        free(ids);
        free(addrs);
        return SIPTLS_ERR_NOMEM;
    }
    for (siptls__flow *f = e->all; f != NULL; f = f->all_next) {
        size_t bi = (size_t)mix64(f->id) & (n - 1);
        f->id_next = ids[bi];
        ids[bi] = f;
        size_t ba = siptls__addr_hash((struct sockaddr *)&f->remote) & (n - 1);
        f->addr_next = addrs[ba];
        addrs[ba] = f;
    }
    free(e->by_id);
    free(e->by_addr);
    e->by_id = ids;
    e->by_addr = addrs;
    e->n_buckets = n;
    return SIPTLS_OK;
}

static void addr_link(siptls_engine *e, siptls__flow *f)
{
    size_t ba = siptls__addr_hash((struct sockaddr *)&f->remote) & (e->n_buckets - 1);
    f->addr_next = e->by_addr[ba];
    e->by_addr[ba] = f;
}

static void addr_unlink(siptls_engine *e, siptls__flow *f)
{
    size_t ba = siptls__addr_hash((struct sockaddr *)&f->remote) & (e->n_buckets - 1);
    for (siptls__flow **pp = &e->by_addr[ba]; *pp != NULL; pp = &(*pp)->addr_next) {
        if (*pp == f) {
            *pp = f->addr_next;
            return;
        }
    }
}

static int table_insert(siptls_engine *e, siptls__flow *f)
{
    if (e->n_flows + 1 > e->n_buckets) {
        int st = table_grow(e);
        if (st != SIPTLS_OK && e->n_buckets == 0) {
            return st;
        }
    }
    size_t bi = (size_t)mix64(f->id) & (e->n_buckets - 1);
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

static void table_remove(siptls_engine *e, siptls__flow *f)
{
    size_t bi = (size_t)mix64(f->id) & (e->n_buckets - 1);
    for (siptls__flow **pp = &e->by_id[bi]; *pp != NULL; pp = &(*pp)->id_next) {
        if (*pp == f) {
            *pp = f->id_next;
            break;
        }
    }
    addr_unlink(e, f);
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

static siptls__flow *flow_by_id(siptls_engine *e, siptls_flow_id id)
{
    if (e->n_buckets == 0) {
        return NULL;
    }
    size_t bi = (size_t)mix64(id) & (e->n_buckets - 1);
    for (siptls__flow *f = e->by_id[bi]; f != NULL; f = f->id_next) {
        if (f->id == id) {
            return f;
        }
    }
    return NULL;
}

/* A flow the host may still use: linked and not being closed. */
static siptls__flow *live_flow(siptls_engine *e, siptls_flow_id id)
{
    siptls__flow *f = flow_by_id(e, id);
    if (f == NULL || f->phase >= SIPTLS__PHASE_CLOSING || f->close_requested || f->pending_fail) {
        return NULL;
    }
    return f;
}

siptls__flow *siptls__flow_by_addr(siptls_engine *e, siptls_transport t,
                                   const struct sockaddr *sa, socklen_t len)
{
    (void)len;
    if (e->n_buckets == 0) {
        return NULL;
    }
    size_t ba = siptls__addr_hash(sa) & (e->n_buckets - 1);
    for (siptls__flow *f = e->by_addr[ba]; f != NULL; f = f->addr_next) {
        if (f->ops->kind == t && f->phase < SIPTLS__PHASE_CLOSING && !f->close_requested &&
            siptls__addr_equal((struct sockaddr *)&f->remote, sa)) {
            return f;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* callbacks entry / exit: deferred work and deferred free                  */
/* ------------------------------------------------------------------------ */

static void flush_pending(siptls_engine *e);
static void flow_free(siptls__flow *f);

static void enter(siptls_engine *e)
{
    e->depth++;
}

static void leave(siptls_engine *e)
{
    if (e->depth == 1) {
        flush_pending(e);
        while (e->zombies != NULL) {
            siptls__flow *z = e->zombies;
            e->zombies = z->zombie_next;
            flow_free(z);
        }
    }
    e->depth--;
}

static void post_work(siptls_engine *e)
{
    if (e->depth == 0 && !ev_is_active(&e->prepare)) {
        ev_prepare_start(e->loop, &e->prepare);
    }
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    siptls_engine *e = w->data;
    ev_prepare_stop(e->loop, &e->prepare);
    enter(e);
    leave(e);
}

static void schedule_flush(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (!f->in_flush_list) {
        f->in_flush_list = 1;
        f->flush_next = e->flush_list;
        e->flush_list = f;
    }
    post_work(e);
}

static void finalize(siptls__flow *f);
static int next_address(siptls__flow *f, int *reason);
static void warn_summary(siptls__flow *f);

static void flush_pending(siptls_engine *e)
{
    while (e->flush_list != NULL) {
        siptls__flow *f = e->flush_list;
        e->flush_list = f->flush_next;
        f->in_flush_list = 0;
        f->flush_next = NULL;
        if (f->phase == SIPTLS__PHASE_CLOSED) {
            continue;
        }
        if (f->pending_fail != 0) {
            int reason = f->pending_fail;
            f->pending_fail = 0;
            siptls__flow_fail(f, reason, 0);
            continue;
        }
        if (f->close_requested && f->phase < SIPTLS__PHASE_CLOSING) {
            siptls__flow_fail(f, SIPTLS_ERR_CLOSED_LOCAL, 1);
            continue;
        }
        if (f->phase == SIPTLS__PHASE_UP || f->phase == SIPTLS__PHASE_CLOSING) {
            f->ops->flush(f);
        }
        if (f->phase == SIPTLS__PHASE_CLOSING && f->q_head == NULL) {
            f->ops->shutdown(f);
            finalize(f);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* libev glue                                                               */
/* ------------------------------------------------------------------------ */

static void flow_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    siptls__flow *f = w->data;
    siptls_engine *e = f->engine;
    enter(e);
    int mask = ((revents & EV_READ) ? SIPTLS__IO_READ : 0) | ((revents & EV_WRITE) ? SIPTLS__IO_WRITE : 0);
    f->ops->io(f, mask);
    if (f->phase == SIPTLS__PHASE_CLOSING && f->q_head == NULL) {
        f->ops->shutdown(f);
        finalize(f);
    }
    leave(e);
}

void siptls__flow_want(siptls__flow *f, int mask)
{
    if (f->fd < 0 || f->io_watcher == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return;
    }
    if (mask == f->want_mask) {
        return;
    }
    ev_io *w = f->io_watcher;
    ev_io_stop(f->engine->loop, w);
    f->want_mask = mask;
    if (mask != 0) {
        ev_io_set(w, f->fd, ((mask & SIPTLS__IO_READ) ? EV_READ : 0) | ((mask & SIPTLS__IO_WRITE) ? EV_WRITE : 0));
        ev_io_start(f->engine->loop, w);
    }
}

static void listener_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    siptls__listener *l = w->data;
    siptls_engine *e = l->engine;
    enter(e);
    l->ops->listener_io(e, l);
    leave(e);
}

/* ------------------------------------------------------------------------ */
/* timers                                                                   */
/* ------------------------------------------------------------------------ */

static void consider(uint64_t *best, uint64_t t)
{
    if (t != 0 && t != UINT64_MAX && (*best == 0 || t < *best)) {
        *best = t;
    }
}

static uint64_t flow_deadline(siptls__flow *f)
{
    const siptls_config *c = &f->engine->cfg;
    uint64_t best = 0;
    if (f->close_requested) {
        return 1; /* as soon as possible */
    }
    switch (f->phase) {
    case SIPTLS__PHASE_CONNECTING:
        consider(&best, f->phase_since_ms + c->tls_connect_timeout);
        break;
    case SIPTLS__PHASE_HANDSHAKE:
        consider(&best, f->phase_since_ms + (f->ops->kind == SIPTLS_TRANSPORT_DTLS
                                                 ? c->dtls_handshake_timeout
                                                 : c->tls_handshake_timeout));
        break;
    case SIPTLS__PHASE_UP: {
        unsigned life = f->ops->kind == SIPTLS_TRANSPORT_DTLS ? c->dtls_session_lifetime
                                                               : c->tls_connection_lifetime;
        if (life != 0) {
            consider(&best, f->last_activity_ms + (uint64_t)life * 1000);
        }
        if (f->keepalive_interval_ms != 0) {
            consider(&best, f->ping_sent_ms ? f->ping_sent_ms + (uint64_t)c->keepalive_timeout * 1000
                                            : f->next_ping_ms);
        }
        uint64_t fd = 0;
        if (f->ops->kind == SIPTLS_TRANSPORT_TLS) {
            if (siptls_stream_framer_pending(f->framer.stream, &fd) && fd != UINT64_MAX) {
                consider(&best, fd + 1); /* fails strictly after the deadline */
            }
        } else if (siptls_dgram_framer_pending(f->framer.dgram, &fd) && fd != UINT64_MAX) {
            consider(&best, fd + 1);
        }
        break;
    }
    case SIPTLS__PHASE_CLOSING:
        consider(&best, f->phase_since_ms + c->tls_send_timeout);
        break;
    default:
        return 0;
    }
    if (f->send_blocked_since != 0) {
        consider(&best, f->send_blocked_since + c->tls_send_timeout);
    }
    uint64_t tt = 0;
    if (f->ops->next_timeout != NULL && f->ops->next_timeout(f, &tt)) {
        consider(&best, tt);
    }
    return best;
}

static void set_timer(siptls__flow *f, uint64_t due)
{
    ev_timer *t = f->timer;
    siptls_engine *e = f->engine;
    if (due == 0) {
        if (ev_is_active(t)) {
            ev_timer_stop(e->loop, t);
        }
        f->timer_due_ms = 0;
        return;
    }
    uint64_t now = siptls__engine_now(e);
    double after = due > now ? (double)(due - now) / 1000.0 : 0.0;
    ev_timer_stop(e->loop, t);
    ev_timer_set(t, after, 0.0);
    ev_timer_start(e->loop, t);
    f->timer_due_ms = due;
}

void siptls__flow_rearm(siptls__flow *f)
{
    if (f->phase == SIPTLS__PHASE_CLOSED) {
        return;
    }
    uint64_t due = flow_deadline(f);
    /* Lazy rearm: a timer that fires earlier than needed just recomputes,
     * so pushing a deadline later (the common case: activity) costs
     * nothing; only an earlier deadline resets the timer. */
    if (due != 0 && f->timer_due_ms != 0 && f->timer_due_ms <= due &&
        ev_is_active((ev_timer *)f->timer)) {
        return;
    }
    set_timer(f, due);
}

static void send_ping(siptls__flow *f, uint64_t now)
{
    static const uint8_t ping[] = "\r\n\r\n";
    if (siptls__flow_queue(f, ping, 4) == SIPTLS_OK) {
        f->engine->stats.pings_out++;
        f->ping_sent_ms = now;
        schedule_flush(f);
    }
}

static void flow_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    siptls__flow *f = w->data;
    siptls_engine *e = f->engine;
    const siptls_config *c = &e->cfg;
    uint64_t now = siptls__engine_now(e);
    enter(e);
    f->timer_due_ms = 0;
    if (f->close_requested && f->phase < SIPTLS__PHASE_CLOSING) {
        siptls__flow_fail(f, SIPTLS_ERR_CLOSED_LOCAL, 1);
        goto out;
    }
    if ((f->io_watcher != NULL && ev_is_pending((ev_io *)f->io_watcher)) ||
        (f->listener != NULL && f->listener->watcher != NULL &&
         ev_is_pending((ev_io *)f->listener->watcher))) {
        /* libev runs the timers of a loop iteration before the I/O it
         * found ready in the same poll: after the loop was held up (a
         * host busy for seconds), a connect that has completed would be
         * judged timed out before its readiness is seen. No deadline is
         * judged while the flow's I/O waits: look again right after it. */
        set_timer(f, now);
        goto out;
    }
    uint64_t tt = 0;
    if (f->ops->next_timeout != NULL && f->ops->next_timeout(f, &tt) && tt <= now) {
        f->ops->on_timeout(f);
        if (f->phase == SIPTLS__PHASE_CLOSED) {
            goto out;
        }
    }
    switch (f->phase) {
    case SIPTLS__PHASE_CONNECTING:
        if (now >= f->phase_since_ms + c->tls_connect_timeout) {
            siptls__flow_fail(f, SIPTLS_ERR_CONNECT_TIMEOUT, 0);
            goto out;
        }
        break;
    case SIPTLS__PHASE_HANDSHAKE: {
        unsigned lim = f->ops->kind == SIPTLS_TRANSPORT_DTLS ? c->dtls_handshake_timeout
                                                              : c->tls_handshake_timeout;
        if (now >= f->phase_since_ms + lim) {
            siptls__flow_fail(f, SIPTLS_ERR_HANDSHAKE_TIMEOUT, 0);
            goto out;
        }
        break;
    }
    case SIPTLS__PHASE_UP: {
        unsigned life = f->ops->kind == SIPTLS_TRANSPORT_DTLS ? c->dtls_session_lifetime
                                                               : c->tls_connection_lifetime;
        if (life != 0 && now >= f->last_activity_ms + (uint64_t)life * 1000) {
            siptls__flow_fail(f, SIPTLS_ERR_IDLE, 1);
            goto out;
        }
        if (f->keepalive_interval_ms != 0) {
            if (f->ping_sent_ms != 0 && now >= f->ping_sent_ms + (uint64_t)c->keepalive_timeout * 1000) {
                siptls__flow_fail(f, SIPTLS_ERR_KEEPALIVE_TIMEOUT, 0);
                goto out;
            }
            if (f->ping_sent_ms == 0 && now >= f->next_ping_ms) {
                send_ping(f, now);
            }
        }
        uint64_t fd = 0;
        if (f->ops->kind == SIPTLS_TRANSPORT_TLS) {
            /* the framer allows exactly max_msg_time_ms: strictly later fails */
            if (siptls_stream_framer_pending(f->framer.stream, &fd) && fd != UINT64_MAX && now > fd) {
                e->stats.drop_msg_timeout++;
                e->stats.drop_framing++;
                siptls__log(e, SIPTLS_LOG_WARN, "flow %llu: %s", (unsigned long long)f->id,
                            siptls_strerror(SIPTLS_ERR_FRAME_TIMEOUT));
                siptls__flow_fail(f, SIPTLS_ERR_FRAME_TIMEOUT, 0);
                goto out;
            }
        } else if (siptls_dgram_framer_expire(f->framer.dgram, now) != SIPTLS_OK) {
            e->stats.dtls_reasm_lost++;
        }
        break;
    }
    case SIPTLS__PHASE_CLOSING:
        if (now >= f->phase_since_ms + c->tls_send_timeout) {
            finalize(f);
            goto out;
        }
        break;
    default:
        goto out;
    }
    if (f->send_blocked_since != 0 && now >= f->send_blocked_since + c->tls_send_timeout) {
        e->stats.drop_send_timeout++;
        siptls__flow_fail(f, SIPTLS_ERR_SEND_TIMEOUT, 0);
        goto out;
    }
    siptls__flow_rearm(f);
out:
    leave(e);
}

/* ------------------------------------------------------------------------ */
/* flows                                                                    */
/* ------------------------------------------------------------------------ */

static siptls_framer_limits framer_limits(const siptls_engine *e, siptls_transport t)
{
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = e->cfg.max_msg_size;
    lim.max_header_size = e->cfg.max_header_size;
    lim.max_chunks = e->cfg.tls_max_msg_chunks;
    if (t == SIPTLS_TRANSPORT_DTLS && lim.max_chunks != 0) {
        /* On DTLS a chunk is a record, and a record holds at most dtls_mtu
         * less its overhead: a message of max_msg_size needs that many, so
         * the limit cannot be smaller (else big messages could never pass). */
        unsigned room = e->cfg.dtls_mtu > 128 ? e->cfg.dtls_mtu - 64 : 64;
        unsigned need = (unsigned)((e->cfg.max_msg_size + room - 1) / room);
        if (need > lim.max_chunks) {
            lim.max_chunks = need;
        }
    }
    if (t == SIPTLS_TRANSPORT_TLS) {
        /* A wakeup that delivered a full TLS record of the message is
         * progress (a large message on a slow link), not dribbling. */
        lim.chunk_full_bytes = 16384;
    }
    lim.crlf_drop = e->cfg.tls_crlf_drop;
    lim.max_msg_time_ms = t == SIPTLS_TRANSPORT_TLS ? (uint64_t)e->cfg.tls_max_msg_time * 1000
                                                    : e->cfg.dtls_reassembly_timeout;
    return lim;
}

static siptls__flow *flow_alloc(siptls_engine *e, const siptls__transport_ops *ops, int fd,
                                const struct sockaddr *remote, socklen_t remote_len)
{
    if (e->open_by_kind[ops->kind] >= max_flows_of(e, ops->kind)) {
        e->stats.drop_limit++;
        return NULL;
    }
    siptls__flow *f = calloc(1, sizeof(*f));
    ev_io *io = NULL;
    ev_timer *tm = calloc(1, sizeof(*tm));
    if (fd >= 0) {
        io = calloc(1, sizeof(*io));
    }
    if (f == NULL || tm == NULL || (fd >= 0 && io == NULL)) {
        goto fail;
    }
    siptls_framer_limits lim = framer_limits(e, ops->kind);
    int st = ops->kind == SIPTLS_TRANSPORT_TLS ? siptls_stream_framer_new(&f->framer.stream, &lim)
                                               : siptls_dgram_framer_new(&f->framer.dgram, &lim);
    if (st != SIPTLS_OK) {
        goto fail;
    }
    f->engine = e;
    f->ops = ops;
    f->id = ++e->next_id;
    f->fd = fd;
    memcpy(&f->remote, remote, remote_len);
    f->remote_len = remote_len;
    uint64_t now = siptls__engine_now(e);
    f->created_ms = f->phase_since_ms = f->last_activity_ms = now;
    if (e->cfg.keepalive_interval != 0) {
        f->keepalive_interval_ms = (uint64_t)e->cfg.keepalive_interval * 1000;
    }
    ev_timer_init(tm, flow_timer_cb, 0.0, 0.0);
    tm->data = f;
    f->timer = tm;
    if (io != NULL) {
        ev_io_init(io, flow_io_cb, fd, EV_READ);
        io->data = f;
        f->io_watcher = io;
    }
    if (table_insert(e, f) != SIPTLS_OK) {
        goto fail_framer;
    }
    e->open_by_kind[ops->kind]++;
    e->stats.flows_open++;
    if (ops->kind == SIPTLS_TRANSPORT_TLS) {
        e->stats.tls_flows_open++;
    } else {
        e->stats.dtls_flows_open++;
    }
    return f;
fail_framer:
    if (ops->kind == SIPTLS_TRANSPORT_TLS) {
        siptls_stream_framer_free(f->framer.stream);
    } else {
        siptls_dgram_framer_free(f->framer.dgram);
    }
fail:
    free(io);
    free(tm);
    free(f);
    return NULL;
}

siptls__flow *siptls__flow_new_inbound(siptls_engine *e, siptls__listener *l, int fd,
                                       const struct sockaddr *remote, socklen_t remote_len)
{
    siptls__flow *f = flow_alloc(e, l->ops, fd, remote, remote_len);
    if (f == NULL) {
        char text[64];
        siptls__addr_text(remote, text, sizeof(text));
        /* A flood at the limit must not flood the log: one line per 10 s. */
        siptls__log_limited(e, &e->limit_log, "%s listener %d: refusing %s: %s (%s)",
                            l->ops->name, l->index, text, siptls_strerror(SIPTLS_ERR_LIMIT),
                            l->ops->kind == SIPTLS_TRANSPORT_TLS ? "tls_max_connections"
                                                                 : "dtls_max_sessions");
        return NULL;
    }
    f->listener = l;
    f->phase = SIPTLS__PHASE_HANDSHAKE;
    f->local_len = sizeof(f->local);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&f->local, &f->local_len) != 0) {
        f->local_len = 0;
    }
    if (fd < 0) {
        memcpy(&f->local, &l->addr, l->addrlen);
        f->local_len = l->addrlen;
    }
    e->stats.flows_accepted++;
    if (f->io_watcher != NULL) {
        f->want_mask = SIPTLS__IO_READ;
        ev_io_start(e->loop, f->io_watcher);
    }
    siptls__flow_rearm(f);
    return f;
}

static void flow_free(siptls__flow *f)
{
    siptls__qmsg *m = f->q_head;
    while (m != NULL) {
        siptls__qmsg *n = m->next;
        free(m);
        m = n;
    }
    if (f->ops->kind == SIPTLS_TRANSPORT_TLS) {
        siptls_stream_framer_free(f->framer.stream);
    } else {
        siptls_dgram_framer_free(f->framer.dgram);
    }
    free(f->sip_domain);
    free(f->alts);
    free(f->io_watcher);
    free(f->timer);
    free(f);
}

static void count_close(siptls_engine *e, siptls__flow *f, int reason)
{
    siptls_stats *s = &e->stats;
    s->flows_closed++;
    if (!f->reported_up && (f->phase_since_ms != 0)) {
        /* failed before it came up: a handshake (or connect) failure */
        switch (reason) {
        case SIPTLS_ERR_HANDSHAKE_TIMEOUT:
        case SIPTLS_ERR_CONNECT_TIMEOUT:
            s->hs_fail_timeout++;
            break;
        case SIPTLS_ERR_VERIFY:
            s->hs_fail_verify++;
            break;
        case SIPTLS_ERR_NAME_MISMATCH:
            s->hs_fail_name++;
            break;
        case SIPTLS_ERR_NO_PEER_CERT:
            s->hs_fail_no_cert++;
            break;
        case SIPTLS_ERR_IO:
        case SIPTLS_ERR_RESET:
        case SIPTLS_ERR_PEER_CLOSED:
        case SIPTLS_ERR_CONNECT:
            s->hs_fail_io++;
            break;
        case SIPTLS_ERR_SHUTDOWN:
        case SIPTLS_ERR_CLOSED_LOCAL:
            return;
        default:
            s->hs_fail_tls++;
            break;
        }
        s->handshakes_failed++;
        return;
    }
    switch (reason) {
    case SIPTLS_ERR_IDLE:
        s->drop_idle++;
        break;
    case SIPTLS_ERR_KEEPALIVE_TIMEOUT:
        s->drop_keepalive++;
        break;
    case SIPTLS_ERR_IO:
    case SIPTLS_ERR_RESET:
        s->drop_io++;
        break;
    default:
        break;
    }
}

/* Unlink, release the transport, report CLOSED, and free later. */
static void finalize(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (f->phase == SIPTLS__PHASE_CLOSED) {
        return;
    }
    int reason = f->reason ? f->reason : SIPTLS_ERR_CLOSED_LOCAL;
    warn_summary(f);
    count_close(e, f, reason);
    f->phase = SIPTLS__PHASE_CLOSED;
    table_remove(e, f);
    e->open_by_kind[f->ops->kind]--;
    e->stats.flows_open--;
    if (f->ops->kind == SIPTLS_TRANSPORT_TLS) {
        e->stats.tls_flows_open--;
    } else {
        e->stats.dtls_flows_open--;
    }
    if (f->io_watcher != NULL) {
        ev_io_stop(e->loop, f->io_watcher);
    }
    ev_timer_stop(e->loop, f->timer);
    f->ops->free(f);
    f->fd = -1;
    if (!e->freeing || f->reported_up || f->outbound) {
        char text[64];
        siptls__addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
        /* Per-flow lines are DEBUG: a host logs flows from on_flow (as
         * `siptls serve` does); failures worth a look are logged where
         * they happen. */
        siptls__log(e, SIPTLS_LOG_DEBUG, "%s flow %llu %s closed: %s", f->ops->name, (unsigned long long)f->id, text,
                    siptls_strerror(reason));
    }
    if ((f->reported_up || f->outbound) && e->cb.on_flow != NULL) {
        e->cb.on_flow(e, f->id, SIPTLS_FLOW_CLOSED, reason, e->user);
    }
    f->zombie_next = e->zombies;
    e->zombies = f;
}

void siptls__flow_fail(siptls__flow *f, int reason, int graceful)
{
    siptls_engine *e = f->engine;
    if (e->host_call && f->phase < SIPTLS__PHASE_CLOSING) {
        /* Found while a host call wrote out the queue (siptls_send): no
         * callback may run inside that call, so the flow closes from the
         * loop (flush_pending), and looks gone until then. */
        if (f->pending_fail == 0) {
            f->pending_fail = reason;
        }
        schedule_flush(f);
        return;
    }
    if (f->phase == SIPTLS__PHASE_CONNECTING && f->outbound && !f->close_requested &&
        !e->freeing && next_address(f, &reason)) {
        return;
    }
    if (f->phase >= SIPTLS__PHASE_CLOSING) {
        if (f->phase == SIPTLS__PHASE_CLOSING && !graceful) {
            finalize(f);
        }
        return;
    }
    f->reason = reason;
    if (graceful && f->phase == SIPTLS__PHASE_UP) {
        f->phase = SIPTLS__PHASE_CLOSING;
        f->phase_since_ms = siptls__engine_now(f->engine);
        f->ops->flush(f);
        if (f->phase == SIPTLS__PHASE_CLOSED) {
            return;
        }
        if (f->q_head == NULL) {
            f->ops->shutdown(f);
            finalize(f);
            return;
        }
        siptls__flow_rearm(f);
        return;
    }
    finalize(f);
}

void siptls__flow_handshake_begin(siptls__flow *f)
{
    f->phase = SIPTLS__PHASE_HANDSHAKE;
    f->phase_since_ms = siptls__engine_now(f->engine);
    f->timer_due_ms = 0; /* the deadline moves: reset the timer outright */
    siptls__flow_rearm(f);
}

/* How long repeats of one warning are counted instead of logged. */
#define WARN_WINDOW_MS 10000

static void warn_summary(siptls__flow *f)
{
    if (f->warn_suppressed != 0) {
        siptls__log(f->engine, SIPTLS_LOG_WARN,
                    "%s flow %llu: %u more warnings like the last one (%s) in %llu s",
                    f->ops->name, (unsigned long long)f->id, f->warn_suppressed,
                    siptls_strerror(f->warn_cause),
                    (unsigned long long)((siptls__engine_now(f->engine) - f->warn_since_ms) / 1000));
        f->warn_suppressed = 0;
    }
}

void siptls__flow_warn(siptls__flow *f, int cause, const char *fmt, ...)
{
    siptls_engine *e = f->engine;
    uint64_t now = siptls__engine_now(e);
    if (f->warn_cause == cause && f->warn_since_ms != 0 && now - f->warn_since_ms < WARN_WINDOW_MS) {
        f->warn_suppressed++;
        return;
    }
    warn_summary(f);
    f->warn_cause = cause;
    f->warn_since_ms = now != 0 ? now : 1;
    va_list ap;
    va_start(ap, fmt);
    vlog(e, SIPTLS_LOG_WARN, fmt, ap);
    va_end(ap);
}

void siptls__log_limited(siptls_engine *e, siptls__ratelog *slot, const char *fmt, ...)
{
    uint64_t now = siptls__engine_now(e);
    if (slot->since_ms != 0 && now - slot->since_ms < WARN_WINDOW_MS) {
        slot->suppressed++;
        return;
    }
    if (slot->suppressed != 0) {
        siptls__log(e, SIPTLS_LOG_WARN, "%u more warnings like the next one in %llu s",
                    slot->suppressed, (unsigned long long)((now - slot->since_ms) / 1000));
    }
    slot->suppressed = 0;
    slot->since_ms = now != 0 ? now : 1;
    va_list ap;
    va_start(ap, fmt);
    vlog(e, SIPTLS_LOG_WARN, fmt, ap);
    va_end(ap);
}

void siptls__flow_up(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    f->phase = SIPTLS__PHASE_UP;
    f->phase_since_ms = f->last_activity_ms = siptls__engine_now(e);
    if (f->keepalive_interval_ms != 0) {
        f->next_ping_ms = f->last_activity_ms + f->keepalive_interval_ms;
    }
    f->reported_up = 1;
    e->stats.handshakes_ok++;
    if (f->outbound) {
        e->stats.flows_connected++;
    }
    if (f->resumed) {
        e->stats.handshakes_resumed++;
    }
    if (e->cfg.log_level >= SIPTLS_LOG_DEBUG) {
        /* Describing the peer parses its certificate: only when asked. */
        siptls_flow_info info;
        siptls_flow_get_info(e, f->id, &info);
        siptls__log(e, SIPTLS_LOG_DEBUG, "%s flow %llu %s %s up: %s %s%s%s%s", f->ops->name,
                    (unsigned long long)f->id, f->outbound ? "to" : "from", info.remote_text,
                    info.tls_version, info.cipher, info.resumed ? " (resumed)" : "",
                    info.peer_cert ? (info.peer_verified ? ", peer verified" : ", peer NOT verified")
                                   : "",
                    info.trusted ? ", trusted" : "");
    }
    if (e->cb.on_flow != NULL) {
        e->cb.on_flow(e, f->id, SIPTLS_FLOW_UP, SIPTLS_OK, e->user);
    }
    if (f->phase == SIPTLS__PHASE_UP && f->q_head != NULL) {
        schedule_flush(f);
    }
    siptls__flow_rearm(f);
}

void siptls__flow_activity(siptls__flow *f, size_t nbytes)
{
    f->last_activity_ms = siptls__engine_now(f->engine);
    f->bytes_in += nbytes;
    f->engine->stats.bytes_in += nbytes;
}

int siptls__flow_deliver(siptls__flow *f, const siptls_frame_event *ev)
{
    siptls_engine *e = f->engine;
    switch (ev->kind) {
    case SIPTLS_FRAME_MESSAGE: {
        f->msgs_in++;
        e->stats.msgs_in++;
        if (e->cb.on_message != NULL) {
            siptls_msg m = {ev->data, ev->len, ev->header_len, ev->body, ev->body_len};
            e->cb.on_message(e, f->id, &m, e->user);
        }
        break;
    }
    case SIPTLS_FRAME_PING:
        e->stats.pings_in++;
        /* RFC 5626 §3.5.1: "When a server receives a double CRLF (a "ping")
         * on a connection-oriented transport it MUST reply with a single
         * CRLF (a "pong")". tls_crlf_pingpong=0 turns it off, as in OpenSIPS. */
        if (e->cfg.tls_crlf_pingpong) {
            static const uint8_t pong[] = "\r\n";
            if (siptls__flow_queue(f, pong, 2) == SIPTLS_OK) {
                e->stats.pongs_out++;
                schedule_flush(f);
            }
        }
        if (e->cb.on_keepalive != NULL) {
            e->cb.on_keepalive(e, f->id, SIPTLS_KEEPALIVE_PING, e->user);
        }
        break;
    case SIPTLS_FRAME_PONG:
        e->stats.pongs_in++;
        if (f->ping_sent_ms != 0) {
            f->ping_sent_ms = 0;
            f->next_ping_ms = siptls__engine_now(e) + f->keepalive_interval_ms;
        }
        if (e->cb.on_keepalive != NULL) {
            e->cb.on_keepalive(e, f->id, SIPTLS_KEEPALIVE_PONG, e->user);
        }
        break;
    }
    return (f->phase == SIPTLS__PHASE_UP && !f->close_requested) ? 0 : -1;
}

int siptls__flow_queue(siptls__flow *f, const uint8_t *buf, size_t len)
{
    siptls__qmsg *m = malloc(sizeof(*m) + len);
    if (m == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    m->next = NULL;
    m->len = len;
    m->off = 0;
    memcpy(m->data, buf, len);
    if (f->q_tail != NULL) {
        f->q_tail->next = m;
    } else {
        f->q_head = m;
    }
    f->q_tail = m;
    f->q_count++;
    f->q_bytes += len;
    return SIPTLS_OK;
}

void siptls__flow_session_key(const siptls__flow *f, char *key, size_t len)
{
    char addr[64];
    siptls__addr_text((const struct sockaddr *)&f->remote, addr, sizeof(addr));
    snprintf(key, len, "%s:%s@%s", f->ops->name, f->sip_domain ? f->sip_domain : "", addr);
}

void siptls__flow_qcoalesce(siptls__flow *f, size_t max)
{
    siptls__qmsg *h = f->q_head;
    if (h == NULL || h->off != 0 || h->next == NULL || h->len + h->next->len > max) {
        return;
    }
    size_t total = 0;
    unsigned n = 0;
    siptls__qmsg *m = h;
    for (; m != NULL && total + m->len <= max; m = m->next) {
        total += m->len;
        n++;
    }
    siptls__qmsg *merged = malloc(sizeof(*merged) + total);
    if (merged == NULL) {
        return; /* write them one by one */
    }
    merged->len = total;
    merged->off = 0;
    merged->next = m;
    size_t at = 0;
    siptls__qmsg *cur = h;
    while (cur != m) {
        siptls__qmsg *next = cur->next;
        memcpy(merged->data + at, cur->data, cur->len);
        at += cur->len;
        free(cur);
        cur = next;
    }
    f->q_head = merged;
    if (m == NULL) {
        f->q_tail = merged;
    }
    f->q_count -= n - 1;
}

void siptls__flow_qpop(siptls__flow *f)
{
    siptls__qmsg *m = f->q_head;
    if (m == NULL) {
        return;
    }
    f->q_head = m->next;
    if (f->q_head == NULL) {
        f->q_tail = NULL;
    }
    f->q_count--;
    f->q_bytes -= m->len;
    free(m);
    /* A message went out: the peer reads. tls_send_timeout is for a queue
     * that does not move, not for a long one that does (a burst over a
     * slow link); the next full socket starts the clock again. */
    f->send_blocked_since = 0;
}

void siptls__flow_send_progress(siptls__flow *f, int blocked)
{
    if (!blocked) {
        f->send_blocked_since = 0;
        return;
    }
    if (f->send_blocked_since == 0) {
        f->send_blocked_since = siptls__engine_now(f->engine);
        siptls__flow_rearm(f);
    }
}

/* ------------------------------------------------------------------------ */
/* security contexts                                                        */
/* ------------------------------------------------------------------------ */

siptls__secctx *siptls__engine_secctx(siptls_engine *e, siptls_transport t)
{
    if (e->sec[t] == NULL) {
        if (siptls__secctx_new(&e->sec[t], &e->cfg, t == SIPTLS_TRANSPORT_DTLS, siptls__log_cb, e) !=
            SIPTLS_OK) {
            e->sec[t] = NULL;
        }
    }
    return e->sec[t];
}

int siptls_engine_reload_certs(siptls_engine *e)
{
    siptls__secctx *fresh[3] = {NULL, NULL, NULL};
    for (int t = SIPTLS_TRANSPORT_TLS; t <= SIPTLS_TRANSPORT_DTLS; t++) {
        if (e->sec[t] == NULL) {
            continue;
        }
        int st = siptls__secctx_new(&fresh[t], &e->cfg, t == SIPTLS_TRANSPORT_DTLS, siptls__log_cb, e);
        if (st != SIPTLS_OK) {
            for (int k = 0; k < 3; k++) {
                siptls__secctx_free(fresh[k]);
            }
            siptls__log(e, SIPTLS_LOG_ERR, "certificate reload failed: keeping the old certificates");
            return SIPTLS_ERR_CERT;
        }
    }
    for (int t = SIPTLS_TRANSPORT_TLS; t <= SIPTLS_TRANSPORT_DTLS; t++) {
        if (fresh[t] != NULL) {
            /* Flows made from the old contexts keep them alive through
             * wolfSSL's own CTX reference count. */
            siptls__secctx_free(e->sec[t]);
            e->sec[t] = fresh[t];
        }
    }
    e->stats.reloads++;
    siptls__log(e, SIPTLS_LOG_INFO, "certificates reloaded");
    return SIPTLS_OK;
}

/* ------------------------------------------------------------------------ */
/* engine                                                                   */
/* ------------------------------------------------------------------------ */

static const siptls__transport_ops *ops_for(siptls_transport t)
{
    return t == SIPTLS_TRANSPORT_TLS ? &siptls__tls_ops : &siptls__dtls_ops;
}

int siptls_engine_new(siptls_engine **out, struct ev_loop *loop, const siptls_config *cfg,
                      const siptls_callbacks *cb, void *user)
{
    if (out == NULL || loop == NULL || cfg == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *out = NULL;
    siptls_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    if (siptls_config_copy(&e->cfg, cfg) != SIPTLS_OK) {
        free(e);
        return SIPTLS_ERR_NOMEM;
    }
    e->loop = loop;
    if (cb != NULL) {
        e->cb = *cb;
    }
    e->user = user;
    ev_prepare_init(&e->prepare, prepare_cb);
    e->prepare.data = e;
    if (table_grow(e) != SIPTLS_OK) {
        siptls_engine_free(e);
        return SIPTLS_ERR_NOMEM;
    }
    for (size_t i = 0; i < e->cfg.n_listen; i++) {
        int st = siptls_listen(e, e->cfg.listen[i]);
        if (st < 0) {
            siptls_engine_free(e);
            return st;
        }
    }
    *out = e;
    return SIPTLS_OK;
}

static void close_all(siptls_engine *e, int graceful)
{
    while (e->all != NULL) {
        siptls__flow *f = e->all;
        if (graceful && f->phase == SIPTLS__PHASE_UP) {
            f->ops->flush(f);
            f->ops->shutdown(f);
        }
        f->reason = SIPTLS_ERR_SHUTDOWN;
        if (f->phase == SIPTLS__PHASE_CLOSING) {
            f->phase = SIPTLS__PHASE_UP; /* let finalize run */
        }
        finalize(f);
    }
}

static void close_listeners(siptls_engine *e)
{
    for (int i = 0; i < e->n_listeners; i++) {
        siptls__listener *l = e->listeners[i];
        if (l == NULL) {
            continue;
        }
        ev_io_stop(e->loop, l->watcher);
        l->ops->listener_close(e, l);
        free(l->watcher);
        free(l);
        e->listeners[i] = NULL;
    }
}

int siptls_engine_shutdown(siptls_engine *e)
{
    enter(e);
    /* Flows first: a DTLS session's close_notify goes out through its
     * listener's socket. */
    close_all(e, 1);
    close_listeners(e);
    leave(e);
    return SIPTLS_OK;
}

void siptls_engine_free(siptls_engine *e)
{
    if (e == NULL) {
        return;
    }
    e->freeing = 1;
    enter(e);
    close_all(e, 0);
    close_listeners(e);
    e->flush_list = NULL;
    leave(e);
    ev_prepare_stop(e->loop, &e->prepare);
    for (int t = 0; t < 3; t++) {
        siptls__secctx_free(e->sec[t]);
    }
    free(e->listeners);
    free(e->by_id);
    free(e->by_addr);
    siptls_config_cleanup(&e->cfg);
    free(e);
}

/* The address of a numeric host or wildcard, without any lookup. Returns
 * 1 when `u` is numeric (ss filled), 0 when it is a name. */
static int numeric_addr(const siptls_uri *u, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (u->host_kind == SIPTLS_HOST_ANY || u->host_kind == SIPTLS_HOST_IPV6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(u->port);
        if (u->host_kind == SIPTLS_HOST_ANY) {
            in6->sin6_addr = in6addr_any;
        } else if (inet_pton(AF_INET6, u->host, &in6->sin6_addr) != 1) {
            return -1;
        }
        *len = sizeof(*in6);
        return 1;
    }
    if (u->host_kind == SIPTLS_HOST_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(u->port);
        if (inet_pton(AF_INET, u->host, &in->sin_addr) != 1) {
            return -1;
        }
        *len = sizeof(*in);
        return 1;
    }
    return 0;
}

/* Resolve a URI host to at most `max` addresses, in the resolver's order
 * (RFC 6724 through getaddrinfo), without duplicates. Numeric hosts need
 * no lookup; names go through the system resolver, which may block (see
 * docs/api.md). Returns the number of addresses (>= 1) or a status; a
 * resolver failure is logged with the resolver's own message. */
static int resolve_all(siptls_engine *e, const siptls_uri *u, int passive, siptls__addr *out,
                       int max)
{
    int num = numeric_addr(u, &out[0].ss, &out[0].len);
    if (num != 0) {
        return num > 0 ? 1 : SIPTLS_ERR_URI_ADDR;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = u->transport == SIPTLS_TRANSPORT_TLS ? SOCK_STREAM : SOCK_DGRAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    char port[8];
    snprintf(port, sizeof(port), "%u", u->port);
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        siptls__log(e, SIPTLS_LOG_WARN, "cannot resolve '%s': %s", u->host,
                    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return SIPTLS_ERR_RESOLVE;
    }
    int n = 0;
    for (const struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(out[n].ss)) {
            continue;
        }
        int dup = 0;
        for (int k = 0; k < n && !dup; k++) {
            dup = siptls__addr_equal((struct sockaddr *)&out[k].ss, ai->ai_addr);
        }
        if (dup) {
            continue;
        }
        memset(&out[n].ss, 0, sizeof(out[n].ss));
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    return n > 0 ? n : SIPTLS_ERR_RESOLVE;
}

static int parse_uri(const siptls_engine *e, const char *text, int allow0, siptls_uri *u)
{
    return siptls_uri_parse(text, (uint16_t)e->cfg.tls_port, (uint16_t)e->cfg.dtls_port, allow0, u);
}

int siptls_listen(siptls_engine *e, const char *text)
{
    if (e == NULL || text == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls_uri u;
    int st = parse_uri(e, text, 1, &u);
    if (st != SIPTLS_OK) {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': %s", text, siptls_strerror(st));
        return st;
    }
    if (siptls__engine_secctx(e, u.transport) == NULL) {
        return SIPTLS_ERR_CERT;
    }
    if (!siptls__secctx_has_server_cert(e->sec[u.transport])) {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': the default server domain has no certificate",
                    text);
        return SIPTLS_ERR_CERT;
    }
    siptls__listener *l = calloc(1, sizeof(*l));
    ev_io *w = calloc(1, sizeof(*w));
    siptls__listener **arr = realloc(e->listeners, sizeof(*arr) * (size_t)(e->n_listeners + 1));
    if (arr != NULL) {
        e->listeners = arr;
    }
    if (l == NULL || w == NULL || arr == NULL) {
        free(l);
        free(w);
        return SIPTLS_ERR_NOMEM;
    }
    l->engine = e;
    l->ops = ops_for(u.transport);
    l->uri = u;
    l->fd = -1;
    l->index = e->n_listeners;
    l->watcher = w;
    siptls__addr bound;
    st = resolve_all(e, &u, 1, &bound, 1);
    if (st >= 0) {
        memcpy(&l->addr, &bound.ss, sizeof(l->addr));
        l->addrlen = bound.len;
        errno = 0;
        st = l->ops->listen(e, l);
        if (st != SIPTLS_OK) {
            siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': %s (%s)", text, siptls_strerror(st),
                        errno != 0 ? strerror(errno) : "no detail");
        }
    } else {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': %s", text, siptls_strerror(st));
    }
    if (st != SIPTLS_OK) {
        free(l);
        free(w);
        return st;
    }
    ev_io_init(w, listener_io_cb, l->fd, EV_READ);
    w->data = l;
    ev_io_start(e->loop, w);
    e->listeners[e->n_listeners++] = l;
    char at[64];
    siptls__addr_text((struct sockaddr *)&l->addr, at, sizeof(at));
    siptls__log(e, SIPTLS_LOG_INFO, "listening on %s:%s", l->ops->name, at);
    return l->index;
}

unsigned siptls_listener_port(const siptls_engine *e, int index)
{
    if (e == NULL || index < 0 || index >= e->n_listeners || e->listeners[index] == NULL) {
        return 0;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&e->listeners[index]->addr;
    if (sa->sa_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

int siptls_listener_count(const siptls_engine *e)
{
    return e ? e->n_listeners : 0;
}

static int queue_full(const siptls__flow *f, size_t len)
{
    const siptls_config *c = &f->engine->cfg;
    return f->q_count >= c->tls_async_max_postponed_chunks ||
           f->q_bytes + len > c->tls_async_max_queued_bytes;
}

int siptls_send(siptls_engine *e, siptls_flow_id id, const uint8_t *buf, size_t len)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = live_flow(e, id);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    if (buf == NULL || len == 0 || len > e->cfg.max_msg_size) {
        return SIPTLS_ERR_INVAL;
    }
    if (queue_full(f, len) && f->phase == SIPTLS__PHASE_UP && f->send_blocked_since == 0) {
        /* The queue limits bound what waits for a socket that does not
         * take it, not what one wakeup produces (500 requests pipelined
         * on one trunk connection get 500 answers): write the queue out
         * now and look again. A failure found here closes the flow from
         * the loop, never inside this call. */
        e->host_call++;
        f->ops->flush(f);
        e->host_call--;
        if (f->pending_fail != 0) {
            return SIPTLS_ERR_GONE;
        }
    }
    int st = queue_full(f, len) ? SIPTLS_ERR_QUEUE_FULL : siptls__flow_queue(f, buf, len);
    if (st != SIPTLS_OK) {
        if (st == SIPTLS_ERR_QUEUE_FULL) {
            e->stats.drop_queue_full++;
            siptls__flow_warn(f, st, "%s flow %llu: %s (%u messages, %zu bytes waiting to be written)",
                              f->ops->name, (unsigned long long)id, siptls_strerror(st), f->q_count,
                              f->q_bytes);
        }
        return st;
    }
    f->msgs_out++;
    e->stats.msgs_out++;
    if (f->phase == SIPTLS__PHASE_UP) {
        schedule_flush(f);
    }
    return SIPTLS_OK;
}

/* An open flow to `host` at `addr` that a new send may use: an outbound
 * flow verified for the same SIP domain (or opened to the same IP
 * literal), or, for an IP-literal target, also a flow that peer opened to
 * us, as RFC 3261 §18 reuses connections. */
static siptls__flow *reusable_flow(siptls_engine *e, siptls_transport t, const char *host,
                                   int literal, const struct sockaddr *addr)
{
    size_t ba = siptls__addr_hash(addr) & (e->n_buckets - 1);
    for (siptls__flow *f = e->by_addr[ba]; f != NULL; f = f->addr_next) {
        if (f->ops->kind != t || f->phase >= SIPTLS__PHASE_CLOSING || f->close_requested ||
            f->pending_fail || !siptls__addr_equal((struct sockaddr *)&f->remote, addr)) {
            continue;
        }
        if ((f->outbound && f->sip_domain != NULL && strcasecmp(f->sip_domain, host) == 0) ||
            (literal && !f->outbound)) {
            return f;
        }
    }
    return NULL;
}

/* Start (or restart) the flow's connection at its current f->remote. */
static int flow_connect(siptls__flow *f)
{
    f->phase = SIPTLS__PHASE_CONNECTING;
    f->phase_since_ms = siptls__engine_now(f->engine);
    f->local_len = 0;
    f->want_mask = 0;
    return f->ops->connect(f);
}

/* RFC 3263 §4.3: a client that cannot reach one address of a name goes
 * on with the next ("If a failure occurs, the client SHOULD create a new
 * request ... to the next element"). The flow has not heard from its
 * current address (refused, unreachable, connect timeout): drop what the
 * transport made for it and connect to the next one, keeping the flow id.
 * Returns 1 when an attempt is under way; 0 when every address failed
 * (*reason then holds the last error). */
static int next_address(siptls__flow *f, int *reason)
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
        if (f->io_watcher != NULL) {
            ev_io_stop(e->loop, f->io_watcher); /* before its fd is closed */
        }
        f->ops->free(f);
        f->fd = -1;
        addr_unlink(e, f);
        memcpy(&f->remote, &a->ss, sizeof(f->remote));
        f->remote_len = a->len;
        addr_link(e, f);
        int st = flow_connect(f);
        if (st == SIPTLS_OK) {
            f->timer_due_ms = 0;
            siptls__flow_rearm(f);
            return 1;
        }
        *reason = st;
    }
    return 0;
}

#define MAX_ADDRS 8

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
    const siptls__transport_ops *ops = ops_for(t);
    if (siptls__engine_secctx(e, t) == NULL) {
        return SIPTLS_ERR_CERT;
    }
    siptls__flow *f = flow_alloc(e, ops, -1, (struct sockaddr *)&addrs[0].ss, addrs[0].len);
    if (f == NULL) {
        return e->open_by_kind[ops->kind] >= max_flows_of(e, ops->kind) ? SIPTLS_ERR_LIMIT
                                                                         : SIPTLS_ERR_NOMEM;
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
    int st = f->sip_domain == NULL || (n > 1 && f->alts == NULL) ? SIPTLS_ERR_NOMEM : flow_connect(f);
    if (st != SIPTLS_OK && st != SIPTLS_ERR_NOMEM) {
        /* This address failed at once (no route, no socket): the next. */
        if (next_address(f, &st)) {
            st = SIPTLS_OK;
        }
    }
    if (st != SIPTLS_OK) {
        /* A call that fails never invokes a callback: unlink quietly. */
        f->outbound = 0;
        f->reason = st;
        enter(e);
        finalize(f);
        leave(e);
        return st;
    }
    siptls__flow_rearm(f);
    *out = f;
    return SIPTLS_OK;
}

static int open_flow(siptls_engine *e, const char *text, int reuse, siptls__flow **out)
{
    siptls_uri u;
    int st = parse_uri(e, text, 0, &u);
    if (st != SIPTLS_OK) {
        return st;
    }
    if (u.host_kind == SIPTLS_HOST_ANY) {
        return SIPTLS_ERR_URI_ADDR;
    }
    siptls__addr addrs[MAX_ADDRS];
    int n = resolve_all(e, &u, 0, addrs, MAX_ADDRS);
    if (n < 0) {
        siptls__log(e, SIPTLS_LOG_WARN, "send to '%s': %s", text, siptls_strerror(n));
        return n;
    }
    return siptls__open_addrs(e, u.transport, u.host, u.host_kind != SIPTLS_HOST_NAME, addrs, n,
                              reuse, out);
}

void siptls__flow_attach_fd(siptls__flow *f, int fd, int mask)
{
    f->fd = fd;
    if (f->io_watcher == NULL) {
        f->io_watcher = calloc(1, sizeof(ev_io));
        if (f->io_watcher == NULL) {
            return;
        }
        ev_io_init((ev_io *)f->io_watcher, flow_io_cb, fd, EV_READ);
        ((ev_io *)f->io_watcher)->data = f;
    }
    f->want_mask = -1;
    siptls__flow_want(f, mask);
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

int siptls_close(siptls_engine *e, siptls_flow_id id)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = live_flow(e, id);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    f->close_requested = 1;
    schedule_flush(f);
    return SIPTLS_OK;
}

int siptls_flow_get_info(siptls_engine *e, siptls_flow_id id, siptls_flow_info *info)
{
    if (e == NULL || info == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = flow_by_id(e, id);
    if (f == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return SIPTLS_ERR_GONE;
    }
    memset(info, 0, sizeof(*info));
    info->id = f->id;
    info->transport = f->ops->kind;
    info->outbound = f->outbound;
    info->up = f->reported_up;
    memcpy(&info->remote, &f->remote, f->remote_len);
    memcpy(&info->local, &f->local, f->local_len);
    siptls__addr_text((struct sockaddr *)&f->remote, info->remote_text, sizeof(info->remote_text));
    if (f->local_len != 0) {
        siptls__addr_text((struct sockaddr *)&f->local, info->local_text, sizeof(info->local_text));
    }
    info->msgs_in = f->msgs_in;
    info->msgs_out = f->msgs_out;
    info->bytes_in = f->bytes_in;
    info->bytes_out = f->bytes_out;
    if (f->ops->info != NULL) {
        f->ops->info(f, info);
    }
    return SIPTLS_OK;
}

int siptls_flow_lookup(siptls_engine *e, siptls_transport transport, const struct sockaddr *addr,
                       socklen_t addrlen, siptls_flow_id *flow)
{
    if (e == NULL || addr == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__flow_by_addr(e, transport, addr, addrlen);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    if (flow != NULL) {
        *flow = f->id;
    }
    return SIPTLS_OK;
}

int siptls_flow_keepalive(siptls_engine *e, siptls_flow_id id, unsigned interval_s)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = live_flow(e, id);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    f->keepalive_interval_ms = (uint64_t)interval_s * 1000;
    f->ping_sent_ms = 0;
    f->next_ping_ms = interval_s ? siptls__engine_now(e) + f->keepalive_interval_ms : 0;
    /* The deadline may move earlier: reset the timer outright. */
    f->timer_due_ms = 0;
    siptls__flow_rearm(f);
    return SIPTLS_OK;
}

void siptls_engine_stats(const siptls_engine *e, siptls_stats *st)
{
    if (e != NULL && st != NULL) {
        *st = e->stats;
    }
}
