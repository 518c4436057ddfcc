/* siptls — SIP over DTLS 1.2 / 1.3 over UDP (RFC 6347, RFC 9147): the transport's ops —
 * outbound connect, sending (a message per record, or split so that the
 * first record holds the header block), timers, close and free. The parts:
 * dtls_transport.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dtls_transport.h"

/* Plaintext bytes per record so that no datagram exceeds dtls_mtu, and
 * never more than wolfSSL writes in one DTLS record (its compiled-in MTU:
 * wolfSSL_GetMaxOutputSize; a larger write fails with DTLS_SIZE_ERROR). */
static size_t record_space(dtls_session *s)
{
    if (s->rec_space != 0) {
        return s->rec_space;
    }
    int max = wolfSSL_GetMaxOutputSize(s->ssl);
    if (max <= 0) {
        return 0;
    }
    size_t mtu = siptls__engine_config(s->io.engine)->dtls_mtu;
    int lo = 1, hi = max, best = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int out = wolfSSL_GetOutputSize(s->ssl, mid);
        if (out > 0 && (size_t)out <= mtu) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    s->rec_space = best > 0 ? (size_t)best : (size_t)max;
    return s->rec_space;
}

static void dtls_limits(const siptls_config *c, siptls__flow_limits *out)
{
    memset(out, 0, sizeof(*out));
    out->max_flows = c->dtls_max_sessions;
    out->handshake_timeout_ms = c->dtls_handshake_timeout;
    out->idle_ms = (uint64_t)c->dtls_session_lifetime * 1000;
    /* Only what the peer sends keeps a session: UDP tells us nothing when
     * a peer is gone (docs/dtls.md). */
    out->idle_counts_sends = 0;
    out->max_chunks = c->tls_max_msg_chunks;
    if (out->max_chunks != 0) {
        /* On DTLS a chunk is a record, and a record holds at most dtls_mtu
         * less its overhead: a message of max_msg_size needs that many, so
         * the limit cannot be smaller (else big messages could never pass). */
        unsigned room = c->dtls_mtu > 128 ? c->dtls_mtu - 64 : 64;
        unsigned need = (unsigned)((c->max_msg_size + room - 1) / room);
        if (need > out->max_chunks) {
            out->max_chunks = need;
        }
    }
    out->max_msg_time_ms = c->dtls_reassembly_timeout;
}

static int dtls_connect(siptls__flow *f)
{
    siptls_engine *e = siptls__flow_engine(f);
    socklen_t rl;
    const struct sockaddr *remote = siptls__flow_remote(f, &rl);
    int fd = siptls__flow_socket(f, SOCK_DGRAM);
    if (fd < 0) {
        return SIPTLS_ERR_CONNECT;
    }
    /* A connected socket: the kernel gives us only this peer's datagrams
     * and reports ICMP port unreachable as ECONNREFUSED. */
    if (connect(fd, remote, rl) != 0) {
        close(fd);
        return SIPTLS_ERR_CONNECT;
    }
    siptls__dtls_socket_buffers(fd);
    dtls_session *s = siptls__dtls_session_new(e, fd);
    /* The client domain, SNI, verification and, with tls_session_cache,
     * the session of the previous flow to this destination (RFC 5246 §7.3
     * abbreviated handshake: one round trip less). */
    WOLFSSL *ssl = s != NULL ? siptls__flow_client_ssl(f, NULL) : NULL;
    if (ssl == NULL || siptls__dtls_shared_ref(e) == NULL) {
        if (ssl != NULL) {
            wolfSSL_free(ssl);
        }
        free(s);
        close(fd);
        return SIPTLS_ERR_NOMEM;
    }
    s->shared_ref = 1;
    s->f = f;
    s->ssl = ssl;
    siptls__dtls_setup_ssl(ssl, &s->io);
    wolfSSL_dtls_set_peer(ssl, (void *)remote, (unsigned)rl);
    size_t cid_len = siptls__dtls_cid_len(e);
    if (cid_len != 0) {
        /* Offer a CID of ours (RFC 9147 §9) that the server puts on the
         * records it sends us. We receive on a connected socket, so it
         * routes nothing here; it lets a CID-using server know us. */
        uint8_t cid[SIPTLS__DTLS_CID_MAX];
        if (siptls__dtls_random_bytes(cid, cid_len) == 0) {
            (void)siptls__dtls_cid_offer(ssl, cid, cid_len);
        }
    }
    siptls__flow_set_tp(f, s);
    if (siptls__flow_attach_fd(f, fd, SIPTLS__IO_READ) != SIPTLS_OK) {
        close(fd);
        s->io.fd = -1;
        return SIPTLS_ERR_NOMEM; /* the engine frees the flow and the session */
    }
    struct sockaddr_storage local;
    socklen_t ll = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0) {
        siptls__flow_set_local(f, (struct sockaddr *)&local, ll);
    }
    /* The flow stays CONNECTING (tls_connect_timeout) until the first
     * datagram from the peer: an address that never answers is left for
     * the next one the name resolved to. The first flight (ClientHello)
     * goes out now; a failure here is returned, not reported through a
     * callback. */
    int ret = wolfSSL_connect(ssl);
    int st = siptls__dtls_map_error(e, ssl, &s->io, ret, 1);
    if (st != SIPTLS_AGAIN && st != DTLS_DROPPED) {
        return st;
    }
    s->retx_ms = siptls__dtls_retx_deadline(e, ssl);
    return SIPTLS_OK;
}

/* Length of the next record of `m` (from m->off); 0 when the message
 * cannot be sent at all. The rules live in src/sipmsg/splitter_dgram.c. */
static size_t next_record(dtls_session *s, const siptls__qmsg *m)
{
    size_t space = record_space(s);
    int maxw = wolfSSL_GetMaxOutputSize(s->ssl);
    return siptls__dgram_split_next(m->data, m->len, m->off, space, maxw > 0 ? (size_t)maxw : 0);
}

static void dtls_flush(siptls__flow *f)
{
    dtls_session *s = siptls__flow_tp(f);
    if (s == NULL || s->ssl == NULL || s->write_retry_ms != 0) {
        return;
    }
    siptls_engine *e = siptls__flow_engine(f);
    siptls__qmsg *m;
    while ((m = siptls__flow_qhead(f)) != NULL) {
        size_t rec = s->cur_rec ? s->cur_rec : next_record(s, m);
        if (rec == 0) {
            char text[64];
            siptls__addr_text(siptls__flow_remote(f, NULL), text, sizeof(text));
            siptls__flow_warn(f, SIPTLS_ERR_FRAME_TOO_BIG,
                              "dtls flow %llu %s: %zu-byte message dropped: it cannot be split "
                              "into records (no Content-Length, or a header block over %d bytes)",
                              (unsigned long long)siptls__flow_id(f), text, m->len,
                              wolfSSL_GetMaxOutputSize(s->ssl));
            siptls__count(e, SIPTLS__EV_DROP_TOO_BIG, 1);
            siptls__flow_qdrop(f);
            continue;
        }
        s->io.blocked = 0;
        /* After WANT_WRITE wolfSSL must be called again with the same
         * buffer and length. */
        s->io.whole = m->off == 0 && rec == m->len;
        int n = wolfSSL_write(s->ssl, m->data + m->off, (int)rec);
        s->io.whole = 0;
        if (n > 0) {
            s->cur_rec = 0;
            m->off += rec;
            if (m->off >= m->len) {
                siptls__flow_qpop(f);
            }
            continue;
        }
        int st = siptls__dtls_map_error(e, s->ssl, &s->io, n, 0);
        if (st == SIPTLS_AGAIN) {
            /* The socket buffer is full. Inbound sessions share the
             * listener's socket and have no watcher of their own: retry
             * from the transport timer. */
            s->cur_rec = rec;
            s->write_retry_ms = siptls__engine_now(e) + WRITE_RETRY_MS;
            siptls__flow_send_blocked(f, 1);
            siptls__flow_rearm(f);
            return;
        }
        siptls__flow_fail(f, st, 0);
        return;
    }
    siptls__flow_send_blocked(f, 0);
}

static uint64_t dtls_next_timeout(siptls__flow *f)
{
    dtls_session *s = siptls__flow_tp(f);
    if (s == NULL) {
        return 0;
    }
    uint64_t best = 0;
    uint64_t cand[4] = {siptls__flow_phase(f) <= SIPTLS__PHASE_HANDSHAKE ? s->retx_ms : 0,
                        s->write_retry_ms, s->next != NULL ? s->next_retx_ms : 0, 0};
    if (s->next != NULL) {
        cand[3] = s->next_since_ms +
                  siptls__engine_config(siptls__flow_engine(f))->dtls_handshake_timeout;
    }
    for (int i = 0; i < 4; i++) {
        if (cand[i] != 0 && (best == 0 || cand[i] < best)) {
            best = cand[i];
        }
    }
    return best;
}

static void dtls_on_timeout(siptls__flow *f)
{
    dtls_session *s = siptls__flow_tp(f);
    if (s == NULL) {
        return;
    }
    siptls_engine *e = siptls__flow_engine(f);
    uint64_t now = siptls__engine_now(e);
    if (s->next != NULL) {
        if (now >= s->next_since_ms + siptls__engine_config(e)->dtls_handshake_timeout) {
            siptls__dtls_free_ssl(&s->next);
            s->next_retx_ms = 0;
            siptls__count_handshake_failure(e, SIPTLS_ERR_HANDSHAKE_TIMEOUT);
        } else if (s->next_retx_ms != 0 && now >= s->next_retx_ms) {
            s->next_retx_ms = wolfSSL_dtls_got_timeout(s->next) == WOLFSSL_SUCCESS
                                  ? siptls__dtls_retx_deadline(e, s->next)
                                  : 0;
        }
    }
    if (siptls__flow_phase(f) <= SIPTLS__PHASE_HANDSHAKE && s->retx_ms != 0 && now >= s->retx_ms) {
        /* RFC 6347 §4.2.4: the retransmission timer expired: send the
         * last flight again (wolfSSL doubles its timer each time). */
        if (wolfSSL_dtls_got_timeout(s->ssl) != WOLFSSL_SUCCESS) {
            siptls__flow_fail(f, SIPTLS_ERR_HANDSHAKE_TIMEOUT, 0);
            return;
        }
        s->retx_ms = siptls__dtls_retx_deadline(e, s->ssl);
    }
    if (s->write_retry_ms != 0 && now >= s->write_retry_ms) {
        s->write_retry_ms = 0;
        if (siptls__flow_phase(f) == SIPTLS__PHASE_UP ||
            siptls__flow_phase(f) == SIPTLS__PHASE_CLOSING) {
            dtls_flush(f);
        }
    }
}

static void dtls_shutdown(siptls__flow *f)
{
    dtls_session *s = siptls__flow_tp(f);
    if (s != NULL && !s->shutdown_sent && siptls__flow_was_up(f)) {
        s->shutdown_sent = 1;
        /* One close_notify datagram; we do not wait for the peer's. */
        wolfSSL_shutdown(s->ssl);
    }
}

static void dtls_free(siptls__flow *f)
{
    dtls_session *s = siptls__flow_tp(f);
    if (s != NULL) {
        siptls__flow_session_save(f, s->ssl);
        siptls__dtls_free_ssl(&s->ssl);
        siptls__dtls_free_ssl(&s->next);
        if (s->dl != NULL) {
            siptls__dtls_table_del(s->dl, s);
            siptls__dtls_cid_del(s->dl, s);
            siptls__dtls_listener_unref(s->dl);
        }
        if (s->shared_ref) {
            siptls__dtls_shared_unref(siptls__flow_engine(f));
        }
        free(s);
        siptls__flow_set_tp(f, NULL);
    }
    if (siptls__flow_fd(f) >= 0) {
        siptls__dtls_tx_close_fd(siptls__flow_engine(f), siptls__flow_fd(f));
        close(siptls__flow_fd(f));
    }
}

static void dtls_info(siptls__flow *f, siptls_flow_info *info)
{
    dtls_session *s = siptls__flow_tp(f);
    if (s == NULL || s->ssl == NULL || !wolfSSL_is_init_finished(s->ssl)) {
        return;
    }
    siptls__flow_describe(f, s->ssl, info);
}

static struct WOLFSSL *dtls_session_ssl(siptls__flow *f)
{
    dtls_session *s = siptls__flow_tp(f);
    return s != NULL && s->ssl != NULL && wolfSSL_is_init_finished(s->ssl) ? s->ssl : NULL;
}

const siptls__transport_ops siptls__dtls_ops = {
    .kind = SIPTLS_TRANSPORT_DTLS,
    .name = "dtls",
    .socktype = SOCK_DGRAM,
    .framing = SIPTLS__FRAMING_DGRAM,
    .dtls = 1,
    .stats_open = offsetof(siptls_stats, dtls_flows_open),
    .limits = dtls_limits,
    .listen = siptls__dtls_listen,
    .listener_io = siptls__dtls_listener_io,
    .listener_close = siptls__dtls_listener_close,
    .connect = dtls_connect,
    .io = siptls__dtls_io_ready,
    .flush = dtls_flush,
    .next_timeout = dtls_next_timeout,
    .on_timeout = dtls_on_timeout,
    .shutdown = dtls_shutdown,
    .free = dtls_free,
    .info = dtls_info,
    .session = dtls_session_ssl,
    .wakeup_end = siptls__dtls_wakeup_end,
};
