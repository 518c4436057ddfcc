/* siptls — a flow: its phases, its write queue, what it delivers, and its
 * deadlines.
 *
 * Phases: CONNECTING (outbound, not heard from the peer) -> HANDSHAKE ->
 * UP -> CLOSING (a graceful close writing its queue) -> CLOSED (unlinked,
 * freed once no callback runs). Every deadline of a flow is one row of
 * `deadlines` below: the same row arms the flow's timer (its `due`) and
 * acts when the timer fires (its `fire`), so the two cannot drift.
 *
 * No libev here: the engine (engine.c) owns the watchers and calls
 * siptls__flow_on_timer(); no wolfSSL either: security goes through the
 * security contexts (secctx.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "resolver.h"

/* How long repeats of one warning are counted instead of logged. */
#define WARN_WINDOW_MS 10000

static void warn_summary(siptls__flow *f);

/* ------------------------------------------------------------------------ */
/* the handle a transport holds (transport.h)                               */
/* ------------------------------------------------------------------------ */

siptls_engine *siptls__flow_engine(const siptls__flow *f)
{
    return f->engine;
}

siptls_flow_id siptls__flow_id(const siptls__flow *f)
{
    return f->id;
}

siptls__phase siptls__flow_phase(const siptls__flow *f)
{
    return f->phase;
}

int siptls__flow_was_up(const siptls__flow *f)
{
    return f->reported_up;
}

int siptls__flow_wants_input(const siptls__flow *f)
{
    return !f->close_requested && f->pending_fail == 0 && f->phase < SIPTLS__PHASE_CLOSED;
}

int siptls__flow_outbound(const siptls__flow *f)
{
    return f->outbound;
}

const char *siptls__flow_sip_domain(const siptls__flow *f)
{
    return f->sip_domain;
}

const struct sockaddr *siptls__flow_remote(const siptls__flow *f, socklen_t *len)
{
    if (len != NULL) {
        *len = f->remote_len;
    }
    return (const struct sockaddr *)&f->remote;
}

void siptls__flow_set_local(siptls__flow *f, const struct sockaddr *sa, socklen_t len)
{
    if (sa == NULL || len > sizeof(f->local)) {
        f->local_len = 0;
        return;
    }
    memcpy(&f->local, sa, len);
    f->local_len = len;
}

void siptls__flow_set_remote(siptls__flow *f, const struct sockaddr *sa, socklen_t len)
{
    siptls_engine *e = f->engine;
    if (len > sizeof(f->remote)) {
        return;
    }
    char was[64], now[64];
    siptls__addr_text((const struct sockaddr *)&f->remote, was, sizeof(was));
    siptls__addr a;
    memset(&a, 0, sizeof(a));
    memcpy(&a.ss, sa, len);
    a.len = len;
    siptls__table_move(e, f, &a);
    siptls__addr_text(sa, now, sizeof(now));
    siptls__log(e, SIPTLS_LOG_INFO, "%s flow %llu: peer moved from %s to %s", f->ops->name,
                (unsigned long long)f->id, was, now);
}

int siptls__flow_report_moved(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (f->reported_up && e->cb.on_flow != NULL) {
        e->cb.on_flow(e, f->id, SIPTLS_FLOW_MOVED, SIPTLS_OK, e->user);
    }
    return (f->phase == SIPTLS__PHASE_UP && !f->close_requested) ? 0 : -1;
}

siptls__listener *siptls__flow_listener(const siptls__flow *f)
{
    return f->listener;
}

void *siptls__flow_tp(const siptls__flow *f)
{
    return f->tp;
}

void siptls__flow_set_tp(siptls__flow *f, void *tp)
{
    f->tp = tp;
}

int siptls__flow_fd(const siptls__flow *f)
{
    return f->fd;
}

const char *siptls__flow_name(const siptls__flow *f, char *buf, size_t len)
{
    char text[64];
    siptls__addr_text((const struct sockaddr *)&f->remote, text, sizeof(text));
    snprintf(buf, len, "%s flow %llu %s", f->ops->name, (unsigned long long)f->id, text);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* birth and death                                                          */
/* ------------------------------------------------------------------------ */

static uint64_t *open_counter(siptls_stats *s, const siptls__transport_ops *ops)
{
    return (uint64_t *)((char *)s + ops->stats_open);
}

siptls__flow *siptls__flow_alloc(siptls_engine *e, const siptls__transport_ops *ops, int fd,
                                 const struct sockaddr *remote, socklen_t remote_len)
{
    const siptls__flow_limits *lim = &e->lim[ops->kind];
    if (e->open_by_kind[ops->kind] >= lim->max_flows) {
        e->stats.drop_limit++;
        return NULL;
    }
    siptls__flow *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    siptls_framer_limits fl;
    siptls_framer_limits_init(&fl);
    fl.max_msg_size = e->cfg.max_msg_size;
    fl.max_header_size = e->cfg.max_header_size;
    fl.max_chunks = (unsigned)lim->max_chunks;
    fl.chunk_full_bytes = lim->chunk_full_bytes;
    fl.max_msg_time_ms = lim->max_msg_time_ms;
    fl.crlf_drop = e->cfg.tls_crlf_drop;
    int st = ops->framing == SIPTLS__FRAMING_STREAM
                 ? siptls_stream_framer_new(&f->framer.stream, &fl)
                 : siptls_dgram_framer_new(&f->framer.dgram, &fl);
    if (st != SIPTLS_OK) {
        free(f);
        return NULL;
    }
    f->engine = e;
    f->ops = ops;
    f->lim = lim;
    f->sec = siptls__secctx_hold(siptls__engine_secctx(e, ops->kind));
    f->fd = fd;
    memcpy(&f->remote, remote, remote_len);
    f->remote_len = remote_len;
    uint64_t now = siptls__engine_now(e);
    f->phase_since_ms = f->last_activity_ms = now;
    if (e->cfg.keepalive_interval != 0) {
        f->keepalive_interval_ms = (uint64_t)e->cfg.keepalive_interval * 1000;
    }
    if (siptls__engine_watch_flow(f, fd) != SIPTLS_OK) {
        goto fail;
    }
    f->id = ++e->next_id;
    if (siptls__table_insert(e, f) != SIPTLS_OK) {
        siptls__engine_free_watchers(f);
        goto fail;
    }
    e->open_by_kind[ops->kind]++;
    e->stats.flows_open++;
    (*open_counter(&e->stats, ops))++;
    return f;
fail:
    siptls__secctx_free(f->sec);
    if (ops->framing == SIPTLS__FRAMING_STREAM) {
        siptls_stream_framer_free(f->framer.stream);
    } else {
        siptls_dgram_framer_free(f->framer.dgram);
    }
    free(f);
    return NULL;
}

siptls__flow *siptls__flow_new_inbound(siptls__listener *l, int fd, const struct sockaddr *remote,
                                       socklen_t remote_len)
{
    siptls_engine *e = l->engine;
    uint64_t at_limit = e->stats.drop_limit;
    siptls__flow *f = siptls__flow_alloc(e, l->ops, fd, remote, remote_len);
    if (f == NULL) {
        l->stats.drop_limit += e->stats.drop_limit - at_limit;
        char text[64];
        siptls__addr_text(remote, text, sizeof(text));
        /* A flood at the limit must not flood the log: one line per 10 s. */
        siptls__log_limited(e, &e->limit_log, "%s listener %d: refusing %s: %s (%u flows open)",
                            l->ops->name, l->index, text, siptls_strerror(SIPTLS_ERR_LIMIT),
                            e->open_by_kind[l->ops->kind]);
        return NULL;
    }
    f->listener = l;
    l->stats.flows_open++;
    (*open_counter(&l->stats, l->ops))++;
    f->phase = SIPTLS__PHASE_HANDSHAKE;
    f->local_len = sizeof(f->local);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&f->local, &f->local_len) != 0) {
        f->local_len = 0;
    }
    if (fd < 0) {
        memcpy(&f->local, &l->addr, l->addrlen);
        f->local_len = l->addrlen;
    }
    SIPTLS__FLOW_COUNT(f, flows_accepted, 1);
    if (fd >= 0) {
        f->want_mask = -1;
        siptls__flow_want(f, SIPTLS__IO_READ);
    }
    siptls__flow_rearm(f);
    return f;
}

void siptls__flow_free(siptls__flow *f)
{
    siptls__qmsg *m = f->q_head;
    while (m != NULL) {
        siptls__qmsg *n = m->next;
        free(m);
        m = n;
    }
    if (f->ops->framing == SIPTLS__FRAMING_STREAM) {
        siptls_stream_framer_free(f->framer.stream);
    } else {
        siptls_dgram_framer_free(f->framer.dgram);
    }
    free(f->sip_domain);
    free(f->sni);
    free(f->client_domain);
    free(f->dest_key);
    free(f->alts);
    siptls__engine_free_watchers(f);
    siptls__flow_drop_domain(f);
    siptls__secctx_free(f->sec);
    free(f);
}

int siptls__flow_connect(siptls__flow *f)
{
    /* The client domain is chosen by destination: the flow counts into it
     * from its first connect on (each address may choose another). */
    siptls__flow_set_domain_name(f,
                                 siptls__secctx_client_domain(f->sec, f->sip_domain,
                                                              f->client_domain,
                                                              (struct sockaddr *)&f->remote),
                                 0);
    f->phase = SIPTLS__PHASE_CONNECTING;
    f->phase_since_ms = siptls__engine_now(f->engine);
    f->local_len = 0;
    f->want_mask = 0;
    return f->ops->connect(f);
}

/* ------------------------------------------------------------------------ */
/* counting: the one place for closes and failed handshakes                 */
/* ------------------------------------------------------------------------ */

void siptls__count_handshake_failure(siptls_engine *e, int reason)
{
    siptls__count_hs_failure_in(&e->stats, reason);
}

void siptls__count_hs_failure_in(siptls_stats *s, int reason)
{
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
    default:
        s->hs_fail_tls++;
        break;
    }
    s->handshakes_failed++;
}

static void count_close_in(siptls_stats *s, const siptls__flow *f, int reason)
{
    s->flows_closed++;
    if (!f->reported_up) {
        /* failed before it came up: a handshake (or connect) failure,
         * unless we closed it ourselves or it never had an address */
        if (reason != SIPTLS_ERR_SHUTDOWN && reason != SIPTLS_ERR_CLOSED_LOCAL &&
            f->phase != SIPTLS__PHASE_RESOLVING) {
            siptls__count_hs_failure_in(s, reason);
        }
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

/* A flow closes: counted, and its "open now" gauges go down, in the engine,
 * its listener and its domain. */
static void count_close(siptls__flow *f, int reason)
{
    siptls_stats *sinks[3] = {&f->engine->stats, f->listener ? &f->listener->stats : NULL,
                              f->dom ? &f->dom->stats : NULL};
    for (int i = 0; i < 3; i++) {
        if (sinks[i] != NULL) {
            count_close_in(sinks[i], f, reason);
            sinks[i]->flows_open--;
            (*open_counter(sinks[i], f->ops))--;
        }
    }
}

void siptls__count(siptls_engine *e, siptls__event ev, uint64_t n)
{
    siptls_stats *s = &e->stats;
    switch (ev) {
    case SIPTLS__EV_DTLS_COOKIE_SENT:
        s->dtls_cookies_sent += n;
        break;
    case SIPTLS__EV_DTLS_COOKIE_BAD:
        s->dtls_cookie_bad += n;
        break;
    case SIPTLS__EV_DTLS_RATE_LIMITED:
        s->dtls_rate_limited += n;
        break;
    case SIPTLS__EV_DTLS_BAD_RECORD:
        s->dtls_bad_records += n;
        break;
    case SIPTLS__EV_DTLS_STUN:
        s->dtls_stun += n;
        break;
    case SIPTLS__EV_DTLS_JUNK:
        s->dtls_junk += n;
        break;
    case SIPTLS__EV_DROP_RESOURCES:
        s->drop_resources += n;
        break;
    case SIPTLS__EV_DROP_TOO_BIG:
        s->drop_too_big += n;
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* phases                                                                   */
/* ------------------------------------------------------------------------ */

void siptls__flow_finalize(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (f->phase == SIPTLS__PHASE_CLOSED) {
        return;
    }
    int reason = f->reason ? f->reason : SIPTLS_ERR_CLOSED_LOCAL;
    if (f->resolving != NULL) {
        siptls__resolve_cancel(f->resolving);
        f->resolving = NULL;
    }
    warn_summary(f);
    count_close(f, reason);
    f->phase = SIPTLS__PHASE_CLOSED;
    siptls__table_remove(e, f);
    e->open_by_kind[f->ops->kind]--;
    siptls__engine_stop_flow(f);
    f->ops->free(f);
    f->fd = -1;
    if (!e->freeing || f->reported_up || f->outbound) {
        char name[96];
        /* Per-flow lines are DEBUG: a host logs flows from on_flow (as
         * `siptls serve -v` does); failures worth a look are logged where
         * they happen. */
        siptls__log(e, SIPTLS_LOG_DEBUG, "%s closed: %s", siptls__flow_name(f, name, sizeof(name)),
                    siptls_strerror(reason));
    }
    if ((f->reported_up || f->outbound) && e->cb.on_flow != NULL) {
        /* siptls_flow_get_user() still answers for it inside the call */
        siptls__flow *outer = e->closing;
        e->closing = f;
        e->cb.on_flow(e, f->id, SIPTLS_FLOW_CLOSED, reason, e->user);
        e->closing = outer;
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
         * loop, and looks gone until then. */
        if (f->pending_fail == 0) {
            f->pending_fail = reason;
        }
        siptls__engine_schedule(f);
        return;
    }
    /* An outbound flow that has not heard from its address, or (targets,
     * sip:/sips: URIs) whose handshake failed, moves on to the next
     * address: nothing was sent on it yet. */
    if ((f->phase == SIPTLS__PHASE_CONNECTING ||
         (f->phase == SIPTLS__PHASE_HANDSHAKE && f->failover_handshake)) &&
        f->outbound && !f->reported_up && !f->close_requested && !e->freeing &&
        siptls__flow_next_address(f, &reason)) {
        return;
    }
    if (f->phase >= SIPTLS__PHASE_CLOSING) {
        if (f->phase == SIPTLS__PHASE_CLOSING && !graceful) {
            siptls__flow_finalize(f);
        }
        return;
    }
    f->reason = reason;
    if (graceful && f->phase == SIPTLS__PHASE_UP) {
        f->phase = SIPTLS__PHASE_CLOSING;
        f->phase_since_ms = siptls__engine_now(e);
        f->ops->flush(f);
        if (f->phase == SIPTLS__PHASE_CLOSED) {
            return;
        }
        if (f->q_head == NULL) {
            f->ops->shutdown(f);
            siptls__flow_finalize(f);
            return;
        }
        siptls__flow_rearm(f);
        return;
    }
    siptls__flow_finalize(f);
}

void siptls__flow_handshake_failed(siptls__flow *f, struct WOLFSSL *ssl, int reason)
{
    siptls__flow_set_domain(f, ssl);
    siptls__flow_fail(f, reason, 0);
}

void siptls__flow_handshake_begin(siptls__flow *f)
{
    f->phase = SIPTLS__PHASE_HANDSHAKE;
    f->phase_since_ms = siptls__engine_now(f->engine);
    f->timer_due_ms = 0; /* the deadline moves: reset the timer outright */
    siptls__flow_rearm(f);
}

static void report_up(siptls__flow *f, int resumed)
{
    siptls_engine *e = f->engine;
    f->phase = SIPTLS__PHASE_UP;
    f->phase_since_ms = f->last_activity_ms = siptls__engine_now(e);
    if (f->keepalive_interval_ms != 0) {
        f->next_ping_ms = f->last_activity_ms + f->keepalive_interval_ms;
    }
    f->reported_up = 1;
    SIPTLS__FLOW_COUNT(f, handshakes_ok, 1);
    if (f->outbound) {
        SIPTLS__FLOW_COUNT(f, flows_connected, 1);
    }
    if (resumed) {
        SIPTLS__FLOW_COUNT(f, handshakes_resumed, 1);
    }
    if (e->cfg.log_level >= SIPTLS_LOG_DEBUG) {
        /* Describing the peer parses its certificate: only when asked. */
        siptls_flow_info info;
        siptls_flow_get_info(e, f->id, &info);
        siptls__log(
            e, SIPTLS_LOG_DEBUG, "%s flow %llu %s %s up: %s %s%s%s%s", f->ops->name,
            (unsigned long long)f->id, f->outbound ? "to" : "from", info.remote_text,
            info.tls_version, info.cipher, info.resumed ? " (resumed)" : "",
            info.peer_cert ? (info.peer_verified ? ", peer verified" : ", peer NOT verified") : "",
            info.trusted ? ", trusted" : "");
    }
    if (e->cb.on_flow != NULL) {
        e->cb.on_flow(e, f->id, SIPTLS_FLOW_UP, SIPTLS_OK, e->user);
    }
    if (f->phase == SIPTLS__PHASE_UP && f->q_head != NULL) {
        siptls__engine_schedule(f);
    }
    siptls__flow_rearm(f);
}

int siptls__flow_handshake_done(siptls__flow *f, struct WOLFSSL *ssl, int resumed)
{
    /* The domain is settled now (an inbound flow's SNI chose it): the flow
     * counts into it from here on, its refusal below included. */
    siptls__flow_set_domain(f, ssl);
    int st = f->sec != NULL
                 ? siptls__secctx_peer_check(f->sec, ssl, !f->outbound, f->sip_domain, NULL)
                 : SIPTLS_ERR_CERT;
    if (st != SIPTLS_OK) {
        char name[96];
        siptls__log(f->engine, SIPTLS_LOG_WARN, "%s: %s", siptls__flow_name(f, name, sizeof(name)),
                    siptls_strerror(st));
        return st;
    }
    report_up(f, resumed);
    return SIPTLS_OK;
}

void siptls__flow_io_done(siptls__flow *f)
{
    if (f->phase == SIPTLS__PHASE_CLOSING && f->q_head == NULL) {
        f->ops->shutdown(f);
        siptls__flow_finalize(f);
    }
}

void siptls__flow_run_deferred(siptls__flow *f)
{
    if (f->phase == SIPTLS__PHASE_CLOSED) {
        return;
    }
    if (f->pending_fail != 0) {
        int reason = f->pending_fail;
        f->pending_fail = 0;
        siptls__flow_fail(f, reason, 0);
        return;
    }
    if (f->close_requested && f->phase < SIPTLS__PHASE_CLOSING) {
        siptls__flow_fail(f, SIPTLS_ERR_CLOSED_LOCAL, 1);
        return;
    }
    if (f->phase == SIPTLS__PHASE_UP || f->phase == SIPTLS__PHASE_CLOSING) {
        f->ops->flush(f);
    }
    if (f->phase == SIPTLS__PHASE_CLOSING && f->q_head == NULL) {
        f->ops->shutdown(f);
        siptls__flow_finalize(f);
        return;
    }
    siptls__flow_writable_run(f);
}

/* ------------------------------------------------------------------------ */
/* deadlines: one row each, used to arm the timer and to act on it          */
/* ------------------------------------------------------------------------ */

/* `due` is the first ms at which the action runs (0: not armed); `fire`
 * runs it when now >= due and returns 1 when the flow is closed or was
 * moved on (no further row runs). */
typedef struct deadline {
    uint64_t (*due)(const siptls__flow *f);
    int (*fire)(siptls__flow *f, uint64_t now);
} deadline;

static int up(const siptls__flow *f)
{
    return f->phase == SIPTLS__PHASE_UP;
}

static uint64_t transport_due(const siptls__flow *f)
{
    return f->ops->next_timeout((siptls__flow *)f);
}

static int transport_fire(siptls__flow *f, uint64_t now)
{
    (void)now;
    f->ops->on_timeout(f);
    return f->phase == SIPTLS__PHASE_CLOSED;
}

static uint64_t connect_due(const siptls__flow *f)
{
    return f->phase == SIPTLS__PHASE_CONNECTING
               ? f->phase_since_ms + f->engine->cfg.tls_connect_timeout
               : 0;
}

static int connect_fire(siptls__flow *f, uint64_t now)
{
    (void)now;
    siptls__flow_fail(f, SIPTLS_ERR_CONNECT_TIMEOUT, 0);
    return 1;
}

static uint64_t handshake_due(const siptls__flow *f)
{
    return f->phase == SIPTLS__PHASE_HANDSHAKE ? f->phase_since_ms + f->lim->handshake_timeout_ms
                                               : 0;
}

static int handshake_fire(siptls__flow *f, uint64_t now)
{
    (void)now;
    siptls__flow_fail(f, SIPTLS_ERR_HANDSHAKE_TIMEOUT, 0);
    return 1;
}

static uint64_t idle_due(const siptls__flow *f)
{
    return up(f) && f->lim->idle_ms != 0 ? f->last_activity_ms + f->lim->idle_ms : 0;
}

static int idle_fire(siptls__flow *f, uint64_t now)
{
    (void)now;
    siptls__flow_fail(f, SIPTLS_ERR_IDLE, 1);
    return 1;
}

static uint64_t pong_due(const siptls__flow *f)
{
    return up(f) && f->keepalive_interval_ms != 0 && f->ping_sent_ms != 0
               ? f->ping_sent_ms + (uint64_t)f->engine->cfg.keepalive_timeout * 1000
               : 0;
}

static int pong_fire(siptls__flow *f, uint64_t now)
{
    (void)now;
    siptls__flow_fail(f, SIPTLS_ERR_KEEPALIVE_TIMEOUT, 0);
    return 1;
}

static uint64_t ping_due(const siptls__flow *f)
{
    return up(f) && f->keepalive_interval_ms != 0 && f->ping_sent_ms == 0 ? f->next_ping_ms : 0;
}

static int ping_fire(siptls__flow *f, uint64_t now)
{
    /* RFC 5626 §4.4.1: the client sends its keepalive ping (CRLFCRLF). */
    static const uint8_t ping[] = "\r\n\r\n";
    if (siptls__flow_queue(f, ping, 4) == SIPTLS_OK) {
        SIPTLS__FLOW_COUNT(f, pings_out, 1);
        f->ping_sent_ms = now != 0 ? now : 1;
        siptls__engine_schedule(f);
    }
    return 0;
}

/* The framer allows exactly its max_msg_time: strictly later fails. */
static uint64_t message_due(const siptls__flow *f)
{
    uint64_t fd = 0;
    int pending = f->ops->framing == SIPTLS__FRAMING_STREAM
                      ? siptls_stream_framer_pending(f->framer.stream, &fd)
                      : siptls_dgram_framer_pending(f->framer.dgram, &fd);
    return up(f) && pending && fd != UINT64_MAX ? fd + 1 : 0;
}

static int message_fire(siptls__flow *f, uint64_t now)
{
    if (f->ops->framing == SIPTLS__FRAMING_STREAM) {
        siptls__flow_framing_error(f, SIPTLS_ERR_FRAME_TIMEOUT);
        return 1;
    }
    /* a partial datagram message expired: dropped, the session stays */
    siptls_dgram_framer *fr = f->framer.dgram;
    uint64_t dropped = siptls_dgram_framer_dropped(fr);
    (void)siptls_dgram_framer_expire(fr, now);
    SIPTLS__FLOW_COUNT(f, dtls_reasm_lost, siptls_dgram_framer_dropped(fr) - dropped);
    return 0;
}

static uint64_t closing_due(const siptls__flow *f)
{
    return f->phase == SIPTLS__PHASE_CLOSING ? f->phase_since_ms + f->engine->cfg.tls_send_timeout
                                             : 0;
}

static int closing_fire(siptls__flow *f, uint64_t now)
{
    (void)now;
    siptls__flow_finalize(f); /* the queue did not drain: close anyway */
    return 1;
}

static uint64_t send_due(const siptls__flow *f)
{
    return f->send_blocked_since != 0 && f->phase < SIPTLS__PHASE_CLOSED
               ? f->send_blocked_since + f->engine->cfg.tls_send_timeout
               : 0;
}

static int send_fire(siptls__flow *f, uint64_t now)
{
    /* The socket says writable again only when much of its buffer is free
     * (a third, for TCP): a peer that reads slowly but steadily can take
     * longer than tls_send_timeout to get there without ever standing
     * still. Stuck means the peer took nothing (its TCP acknowledged no new
     * byte) in that time. */
    uint64_t acked = siptls__flow_acked(f);
    if (acked != UINT64_MAX && f->send_acked != UINT64_MAX && acked > f->send_acked) {
        f->send_blocked_since = now;
        f->send_acked = acked;
        return 0;
    }
    SIPTLS__FLOW_COUNT(f, drop_send_timeout, 1);
    siptls__flow_fail(f, SIPTLS_ERR_SEND_TIMEOUT, 0);
    return 1;
}

/* In the order they are judged when several are due at once. */
static const deadline deadlines[] = {
    {transport_due, transport_fire}, {connect_due, connect_fire}, {handshake_due, handshake_fire},
    {idle_due, idle_fire},           {pong_due, pong_fire},       {ping_due, ping_fire},
    {message_due, message_fire},     {closing_due, closing_fire}, {send_due, send_fire},
};

uint64_t siptls__flow_deadline(const siptls__flow *f)
{
    if (f->phase == SIPTLS__PHASE_CLOSED) {
        return 0;
    }
    uint64_t best = 0;
    for (size_t i = 0; i < sizeof(deadlines) / sizeof(deadlines[0]); i++) {
        uint64_t t = deadlines[i].due(f);
        if (t != 0 && t != UINT64_MAX && (best == 0 || t < best)) {
            best = t;
        }
    }
    return best;
}

void siptls__flow_on_timer(siptls__flow *f, uint64_t now)
{
    for (size_t i = 0; i < sizeof(deadlines) / sizeof(deadlines[0]); i++) {
        if (f->phase == SIPTLS__PHASE_CLOSED) {
            return;
        }
        uint64_t t = deadlines[i].due(f);
        if (t != 0 && now >= t && deadlines[i].fire(f, now)) {
            return;
        }
    }
    siptls__flow_rearm(f);
}

void siptls__flow_rearm(siptls__flow *f)
{
    if (f->phase == SIPTLS__PHASE_CLOSED) {
        return;
    }
    uint64_t due = siptls__flow_deadline(f);
    /* Lazy rearm: a timer that fires earlier than needed just recomputes,
     * so pushing a deadline later (the common case: activity) costs
     * nothing; only an earlier deadline resets the timer. */
    if (due != 0 && f->timer_due_ms != 0 && f->timer_due_ms <= due &&
        siptls__engine_timer_active(f)) {
        return;
    }
    siptls__engine_set_timer(f, due);
}

/* ------------------------------------------------------------------------ */
/* rate-limited warnings                                                    */
/* ------------------------------------------------------------------------ */

static void warn_summary(siptls__flow *f)
{
    if (f->warn_suppressed != 0) {
        siptls__log(
            f->engine, SIPTLS_LOG_WARN,
            "%s flow %llu: %u more warnings like the last one (%s) in %llu s", f->ops->name,
            (unsigned long long)f->id, f->warn_suppressed, siptls_strerror(f->warn_cause),
            (unsigned long long)((siptls__engine_now(f->engine) - f->warn_since_ms) / 1000));
        f->warn_suppressed = 0;
    }
}

void siptls__flow_warn(siptls__flow *f, int cause, const char *fmt, ...)
{
    siptls_engine *e = f->engine;
    uint64_t now = siptls__engine_now(e);
    if (f->warn_cause == cause && f->warn_since_ms != 0 &&
        now - f->warn_since_ms < WARN_WINDOW_MS) {
        f->warn_suppressed++;
        return;
    }
    warn_summary(f);
    f->warn_cause = cause;
    f->warn_since_ms = now != 0 ? now : 1;
    va_list ap;
    va_start(ap, fmt);
    siptls__engine_vlog(e, SIPTLS_LOG_WARN, fmt, ap);
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
    siptls__engine_vlog(e, SIPTLS_LOG_WARN, fmt, ap);
    va_end(ap);
}
