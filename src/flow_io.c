/* siptls — what a flow receives and sends: plaintext into its framer and
 * the events out to the host (messages, keepalives, framing errors counted
 * in one place), its write queue, and the security calls a transport makes
 * on its behalf. The flow's phases and deadlines are in flow.c. */
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_internal.h"

/* ------------------------------------------------------------------------ */
/* receiving                                                                */
/* ------------------------------------------------------------------------ */

void siptls__flow_touch(siptls__flow *f)
{
    f->last_activity_ms = siptls__engine_now(f->engine);
}

static void rx_bytes(siptls__flow *f, size_t n)
{
    siptls__flow_touch(f);
    f->bytes_in += n;
    SIPTLS__FLOW_COUNT(f, bytes_in, n);
}

/* Deliver one framer event (message to on_message, ping -> pong, pong ->
 * keepalive refresh). Returns 0, or -1 when the flow must not be read
 * further (the host closed it from the callback). */
static int deliver(siptls__flow *f, const siptls_frame_event *ev)
{
    siptls_engine *e = f->engine;
    switch (ev->kind) {
    case SIPTLS_FRAME_MESSAGE:
        f->msgs_in++;
        SIPTLS__FLOW_COUNT(f, msgs_in, 1);
        if (e->cb.on_message != NULL) {
            siptls_msg m = {ev->data, ev->len, ev->header_len, ev->body, ev->body_len};
            e->cb.on_message(e, f->id, &m, e->user);
        }
        break;
    case SIPTLS_FRAME_PING:
        SIPTLS__FLOW_COUNT(f, pings_in, 1);
        /* RFC 5626 §3.5.1: "When a server receives a double CRLF (a "ping")
         * on a connection-oriented transport it MUST reply with a single
         * CRLF (a "pong")". tls_crlf_pingpong=0 turns it off, as in OpenSIPS. */
        if (e->cfg.tls_crlf_pingpong) {
            static const uint8_t pong[] = "\r\n";
            if (siptls__flow_queue(f, pong, 2) == SIPTLS_OK) {
                SIPTLS__FLOW_COUNT(f, pongs_out, 1);
                siptls__engine_schedule(f);
            }
        }
        if (e->cb.on_keepalive != NULL) {
            e->cb.on_keepalive(e, f->id, SIPTLS_KEEPALIVE_PING, e->user);
        }
        break;
    case SIPTLS_FRAME_PONG:
        SIPTLS__FLOW_COUNT(f, pongs_in, 1);
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

/* A framing error: counted and logged here, for every transport. On a
 * stream the flow cannot resync and closes; a datagram record is dropped
 * alone. */
void siptls__flow_framing_error(siptls__flow *f, int st)
{
    SIPTLS__FLOW_COUNT(f, drop_framing, 1);
    if (st == SIPTLS_ERR_FRAME_CHUNKS) {
        SIPTLS__FLOW_COUNT(f, drop_chunks, 1);
    } else if (st == SIPTLS_ERR_FRAME_TOO_BIG || st == SIPTLS_ERR_FRAME_HDR_TOO_BIG) {
        SIPTLS__FLOW_COUNT(f, drop_too_big, 1);
    } else if (st == SIPTLS_ERR_FRAME_TIMEOUT) {
        SIPTLS__FLOW_COUNT(f, drop_msg_timeout, 1);
    }
    char name[96];
    siptls__flow_name(f, name, sizeof(name));
    if (f->ops->framing == SIPTLS__FRAMING_STREAM) {
        siptls__log(f->engine, SIPTLS_LOG_WARN, "%s: %s: closing", name, siptls_strerror(st));
        siptls__flow_fail(f, st, 0);
    } else {
        siptls__log(f->engine, SIPTLS_LOG_DEBUG, "%s: record dropped: %s", name,
                    siptls_strerror(st));
    }
}

void siptls__flow_rx_area(siptls__flow *f, size_t want, uint8_t **p, size_t *avail)
{
    if (siptls_stream_framer_reserve(f->framer.stream, want, p, avail) != SIPTLS_OK) {
        *avail = 0;
    }
}

void siptls__flow_rx_commit(siptls__flow *f, size_t n)
{
    siptls_stream_framer_commit(f->framer.stream, n);
    rx_bytes(f, n);
    f->rx_wakeup_bytes += n;
}

int siptls__flow_rx_deliver(siptls__flow *f, int end_of_wakeup)
{
    siptls_stream_framer *fr = f->framer.stream;
    if (end_of_wakeup && f->rx_wakeup_bytes != 0) {
        /* One wakeup that brought bytes = one chunk (tls_max_msg_chunks). */
        siptls_stream_framer_end_chunk(fr, siptls__engine_now(f->engine));
    }
    if (end_of_wakeup) {
        f->rx_wakeup_bytes = 0;
    }
    siptls_frame_event ev;
    int st;
    while ((st = siptls_stream_framer_next(fr, &ev)) == SIPTLS_OK) {
        if (deliver(f, &ev) != 0) {
            return -1;
        }
    }
    if (st != SIPTLS_AGAIN) {
        siptls__flow_framing_error(f, st);
        return -1;
    }
    if (end_of_wakeup) {
        if (!siptls_stream_framer_pending(fr, NULL)) {
            siptls_stream_framer_trim(fr);
        }
        siptls__flow_rearm(f);
    }
    return 0;
}

int siptls__flow_rx_record(siptls__flow *f, const uint8_t *p, size_t n, uint64_t seq)
{
    siptls_engine *e = f->engine;
    siptls_dgram_framer *fr = f->framer.dgram;
    rx_bytes(f, n);
    uint64_t dropped = siptls_dgram_framer_dropped(fr);
    siptls_frame_event ev;
    int st = siptls_dgram_framer_feed(fr, p, n, seq, siptls__engine_now(e), &ev);
    SIPTLS__FLOW_COUNT(f, dtls_reasm_lost, siptls_dgram_framer_dropped(fr) - dropped);
    if (st == SIPTLS_OK) {
        return deliver(f, &ev);
    }
    if (st != SIPTLS_AGAIN && st != SIPTLS_ERR_FRAME_LOST && st != SIPTLS_ERR_FRAME_TIMEOUT &&
        st != SIPTLS_ERR_FRAME_CHUNKS) {
        /* A malformed record is dropped; on a datagram transport the next
         * one starts afresh, so the session stays (unlike TLS). */
        siptls__flow_framing_error(f, st);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the write queue                                                          */
/* ------------------------------------------------------------------------ */

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

int siptls__flow_queue_full(const siptls__flow *f, size_t len)
{
    const siptls_config *c = &f->engine->cfg;
    return f->q_count >= c->tls_async_max_postponed_chunks ||
           f->q_bytes + len > c->tls_async_max_queued_bytes;
}

siptls__qmsg *siptls__flow_qhead(siptls__flow *f)
{
    return f->q_head;
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

void siptls__flow_qdrop(siptls__flow *f)
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
    siptls__flow_drained(f);
}

void siptls__flow_qpop(siptls__flow *f)
{
    siptls__qmsg *m = f->q_head;
    if (m == NULL) {
        return;
    }
    f->bytes_out += m->len;
    SIPTLS__FLOW_COUNT(f, bytes_out, m->len);
    if (f->lim->idle_counts_sends) {
        siptls__flow_touch(f);
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
    siptls__flow_drained(f);
}

uint64_t siptls__flow_acked(const siptls__flow *f)
{
    /* TCP_INFO's tcpi_bytes_acked (RFC 4898 tcpEStatsAppHCThruOctetsAcked):
     * what the peer's TCP took, whatever we wrote meanwhile. */
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (f->fd < 0 || getsockopt(f->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked)) {
        return UINT64_MAX;
    }
    return ti.tcpi_bytes_acked;
}

void siptls__flow_send_blocked(siptls__flow *f, int blocked)
{
    if (!blocked) {
        f->send_blocked_since = 0;
        return;
    }
    if (f->send_blocked_since == 0) {
        f->send_blocked_since = siptls__engine_now(f->engine);
        f->send_acked = siptls__flow_acked(f);
        siptls__flow_rearm(f);
    }
}

/* ------------------------------------------------------------------------ */
/* security, on behalf of the transport                                     */
/* ------------------------------------------------------------------------ */

/* The key under which an outbound flow's client session is kept:
 * transport, SIP domain and peer address (a session is only offered to the
 * peer and domain it came from). */
static void session_key(const siptls__flow *f, char *key, size_t len)
{
    char addr[64];
    siptls__addr_text((const struct sockaddr *)&f->remote, addr, sizeof(addr));
    snprintf(key, len, "%s:%s%s%s@%s", f->ops->name, f->sip_domain ? f->sip_domain : "",
             f->sni ? "/sni=" : "", f->sni ? f->sni : "", addr);
}

struct WOLFSSL *siptls__flow_client_ssl(siptls__flow *f, int *resuming)
{
    if (resuming != NULL) {
        *resuming = 0;
    }
    siptls__secctx *sec = f->sec;
    struct WOLFSSL *ssl =
        sec != NULL ? siptls__secctx_client_ssl_ex(sec, f->sip_domain, f->sni, f->client_domain,
                                                   (struct sockaddr *)&f->remote)
                    : NULL;
    /* The client domain is chosen by destination: known from here on (and
     * again at the next address, which may choose another). */
    siptls__flow_set_domain(f, ssl);
    if (ssl != NULL && f->engine->cfg.tls_session_cache) {
        /* RFC 5246 §7.3 abbreviated handshake / RFC 8446 §2.2: one round
         * trip and the certificate checks less. */
        char key[2 * SIPTLS_URI_HOST_MAX + 96];
        session_key(f, key, sizeof(key));
        int applied = siptls__secctx_client_session_apply(sec, ssl, key);
        if (resuming != NULL) {
            *resuming = applied;
        }
    }
    return ssl;
}

void siptls__flow_session_save(siptls__flow *f, struct WOLFSSL *ssl)
{
    if (ssl == NULL || !f->outbound || !f->reported_up || !f->engine->cfg.tls_session_cache) {
        return;
    }
    siptls__secctx *sec = f->sec;
    if (sec != NULL) {
        /* Saved at close, not at handshake end: TLS 1.3 tickets arrive
         * after the handshake. */
        char key[2 * SIPTLS_URI_HOST_MAX + 96];
        session_key(f, key, sizeof(key));
        siptls__secctx_client_session_save(sec, ssl, key);
    }
}

void siptls__flow_describe(siptls__flow *f, struct WOLFSSL *ssl, siptls_flow_info *info)
{
    siptls__secctx *sec = f->sec;
    if (sec != NULL && ssl != NULL) {
        siptls__secctx_describe(sec, ssl, !f->outbound, f->sip_domain, info);
        if (f->outbound && f->sni != NULL) {
            /* what we sent: the host's SNI instead of the SIP domain */
            snprintf(info->sni, sizeof(info->sni), "%s", f->sni);
        }
    }
}

int siptls__handshake_status(int wolf_err)
{
    return siptls__secctx_classify_error(wolf_err);
}

const char *siptls__handshake_hint(int wolf_err)
{
    const char *h = siptls__secctx_error_hint(wolf_err);
    return h != NULL ? h : "";
}

int siptls__peer_alert_status(struct WOLFSSL *ssl)
{
    return siptls__secctx_peer_alert(ssl);
}

void siptls__flow_close_fd(siptls__flow *f, int fd)
{
    if (fd < 0) {
        return;
    }
    if (!f->outbound && !f->reported_up) {
        siptls__linger_close(f->engine, fd);
        return;
    }
    close(fd);
}
