/* siptls — DTLS transport: a session's handshake and the records it
 * receives, on a listener's socket or an outbound flow's own. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dtls_transport.h"

dtls_session *siptls__dtls_session_new(siptls_engine *e, int fd)
{
    dtls_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->io.engine = e;
    s->io.fd = fd;
    s->next_io.engine = e;
    s->next_io.fd = fd;
    return s;
}

/* An inbound session on a wildcard listener answers from the address its
 * peer sends to; the flow reports that address as its local one. */
void siptls__dtls_set_local(dtls_session *s, const struct sockaddr_storage *local)
{
    if (s->dl == NULL || !s->dl->pktinfo) {
        return;
    }
    memcpy(&s->local, local, sizeof(s->local));
    s->io.local = &s->local;
    s->next_io.local = &s->local;
    siptls__flow_set_local(s->f, (const struct sockaddr *)local,
                           local->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                       : sizeof(struct sockaddr_in6));
}

static void read_records(dtls_session *s, const uint8_t *dg, size_t len,
                         const siptls__dtls_scan *scan, const struct sockaddr *from,
                         socklen_t from_len);

/* Check the peer, report the flow up, drain what came with the Finished. */
void siptls__dtls_handshake_done(dtls_session *s)
{
    siptls__flow *f = s->f;
    s->retx_ms = 0;
    siptls__dtls_mtu_after_handshake(s->ssl, s->io.engine);
    if (siptls__flow_fd(f) >= 0) {
        siptls__flow_want(f, SIPTLS__IO_READ);
    }
    int st = siptls__flow_handshake_done(f, s->ssl, wolfSSL_session_reused(s->ssl) == 1);
    if (st != SIPTLS_OK) {
        /* Tell the peer, or its session lingers until it expires. */
        wolfSSL_shutdown(s->ssl);
        siptls__flow_fail(f, st, 0);
        return;
    }
    if (siptls__flow_phase(f) != SIPTLS__PHASE_UP) {
        return;
    }
    /* The peer may have sent application data in the datagram that held
     * its Finished: wolfSSL holds it already. */
    read_records(s, NULL, 0, NULL, NULL, 0);
}

/* Drive the handshake with the datagram `dg` (NULL: none, just resume). */
static void handshake_step(dtls_session *s, const uint8_t *dg, size_t len)
{
    siptls__flow *f = s->f;
    s->hs_dg_len = dg != NULL && len < (size_t)PLAIN_CAP ? (uint32_t)len : 0;
    s->io.rx = dg;
    s->io.rx_len = len;
    s->io.oversize = 0;
    int ret = siptls__flow_outbound(f) ? wolfSSL_connect(s->ssl) : wolfSSL_accept(s->ssl);
    s->io.rx = NULL;
    if (s->io.oversize) {
        siptls__count(siptls__flow_engine(f), SIPTLS__EV_DTLS_BAD_RECORD, 1);
    }
    if (ret == WOLFSSL_SUCCESS) {
        siptls__dtls_handshake_done(s);
        return;
    }
    int st = siptls__dtls_map_error(siptls__flow_engine(f), s->ssl, &s->io, ret, 1);
    if (st == SIPTLS_AGAIN || st == DTLS_DROPPED) {
        s->retx_ms = siptls__dtls_retx_deadline(siptls__flow_engine(f), s->ssl);
        siptls__flow_rearm(f);
        return;
    }
    /* wolfSSL does not always send an alert when it fails a handshake
     * (e.g. no client certificate where one is required); over UDP the
     * peer would then wait for its handshake timeout. */
    wolfSSL_shutdown(s->ssl);
    siptls__flow_handshake_failed(f, s->ssl, st);
}

/* The peer of CID session `s` now sends from `from`: the session's tables,
 * then the flow (the engine's table, the host's MOVED). Returns what
 * siptls__flow_report_moved() returns. */
static int move_session(dtls_session *s, const struct sockaddr *from, socklen_t from_len)
{
    dtls_listener *dl = s->dl;
    siptls__dtls_table_del(dl, s);
    siptls__flow_set_remote(s->f, from, from_len);
    siptls__dtls_table_add(dl, s);
    /* io.peer points at the flow's remote address: replies, keepalives and
     * close_notify follow. On a wildcard listener answer from the address
     * the peer now sends to. */
    s->io.peer_len = from_len;
    s->next_io.peer_len = from_len;
    siptls__dtls_set_local(s, &dl->cur_local);
    return siptls__flow_report_moved(s->f);
}

/* An established session: decrypt what `dg` holds (NULL: only what
 * wolfSSL buffered) and deliver it. `from` (NULL: the flow's own address)
 * is another address the datagram came from, matched by our Connection ID:
 * the flow moves there on the first record that authenticates (wolfSSL
 * returned its plaintext: a forged one does not) and is newer than every
 * record read so far (a replay is dropped by wolfSSL's window, a delayed
 * older record is delivered but moves nothing back), RFC 9146 §6: "the
 * receiver [...] MUST NOT update the peer address [...] unless the record
 * is newer than the newest record received so far". */
static void read_records(dtls_session *s, const uint8_t *dg, size_t len,
                         const siptls__dtls_scan *scan, const struct sockaddr *from,
                         socklen_t from_len)
{
    siptls__flow *f = s->f;
    siptls_engine *e = siptls__flow_engine(f);
    /* The framer checks that continuation records are consecutive; we only
     * know a record's number when it is the datagram's only record. */
    uint64_t seq = SIPTLS_DGRAM_SEQ_UNKNOWN;
    unsigned expect = 0;
    int seq_from_ssl = 0;
    if (scan != NULL) {
        expect = scan->n_appdata;
        if (scan->n_records == 1 && scan->n_appdata == 1) {
            seq = siptls__dtls_record_seq64(&scan->appdata);
        } else if (scan->n_records == 1 && scan->n_unified == 1) {
            /* DTLS 1.3 encrypts the record number (RFC 9147 §4.2.3): ask
             * wolfSSL once it has decrypted the record. */
            seq_from_ssl = 1;
        }
    }
    /* wolfSSL sizes its input buffer from the read size (read size + 500,
     * at least its MTU) and, once a read has emptied it, zeroes all of it
     * (ForceZero) and frees it: that happens for every datagram. Reading
     * PLAIN_CAP made that a 64 KiB malloc + zero + free per message. No
     * record of `dg` holds more plaintext than `dg` has bytes, and the
     * receive callback is then offered more than `len`, so `len` keeps
     * one read = one record. What wolfSSL buffered (dg NULL, after the
     * handshake, or records left behind when a read stopped on a dropped
     * record) is read in PLAIN_CAP steps: it may be larger than `dg`. */
    int cap = PLAIN_CAP;
    if (dg != NULL && !s->undrained && len > 0 && len < (size_t)PLAIN_CAP) {
        cap = (int)len;
    } else if (dg == NULL && !s->undrained && s->hs_dg_len > 0) {
        /* Right after the handshake: what wolfSSL holds came in the
         * datagram that held the Finished, so no record is larger. A
         * PLAIN_CAP read here left every idle session with a 64 KiB
         * wolfSSL input buffer until its next datagram. */
        cap = (int)s->hs_dg_len;
    }
    s->hs_dg_len = 0;
    s->io.rx = dg;
    s->io.rx_len = len;
    s->io.oversize = 0;
    uint8_t *plain = siptls__dtls_shared_of(e)->plain; /* held by this wakeup */
    uint64_t drops0 = siptls__dtls_drops(s->ssl);
    unsigned got = 0;
    int st = SIPTLS_AGAIN;
    for (;;) {
        int n = wolfSSL_read(s->ssl, plain, cap);
        if (n > 0) {
            got++;
            uint64_t rn = 0;
            int rn_known = siptls__dtls_last_record(s->ssl, &rn) == 0;
            if (seq_from_ssl) {
                seq = got == 1 && rn_known ? rn : SIPTLS_DGRAM_SEQ_UNKNOWN;
            }
            int newest = rn_known && (!s->has_newest || rn > s->rx_newest);
            if (newest) {
                s->rx_newest = rn;
                s->has_newest = 1;
            }
            if (from != NULL && newest) {
                const struct sockaddr *to = from;
                from = NULL; /* one move per datagram */
                if (move_session(s, to, from_len) != 0) {
                    if (siptls__flow_phase(f) != SIPTLS__PHASE_CLOSED) {
                        s->io.rx = NULL;
                        s->undrained = 1;
                    }
                    return;
                }
            }
            if (siptls__flow_rx_record(f, plain, (size_t)n, seq) != 0) {
                /* The host closed the flow from its callback, or shut the
                 * engine down: then the session is already freed (the
                 * flow itself lives until the callback returns). */
                if (siptls__flow_phase(f) != SIPTLS__PHASE_CLOSED) {
                    s->io.rx = NULL;
                    s->undrained = 1;
                }
                return;
            }
            continue;
        }
        st = siptls__dtls_map_error(e, s->ssl, &s->io, n, 0);
        break;
    }
    s->io.rx = NULL;
    s->undrained = st != SIPTLS_AGAIN;
    if (scan != NULL && scan->n_unified > 0 && st != DTLS_DROPPED) {
        /* DTLS 1.3 records wolfSSL dropped: it says so only in its drop
         * counters for a bad MAC, and not at all for a replay (their types
         * are encrypted too: we cannot expect a number of application
         * records as on 1.2). A record that gave no data and no MAC failure
         * and whose number is not newer than the newest authenticated one
         * is taken for a replay; a newer one was authentic (an ACK, a
         * post-handshake message) and is the newest now. */
        uint64_t d = siptls__dtls_drops(s->ssl) - drops0;
        uint64_t rn;
        if (d == 0 && got == 0 && siptls__dtls_last_record(s->ssl, &rn) == 0) {
            if (s->has_newest && rn <= s->rx_newest) {
                d = 1;
            } else {
                s->rx_newest = rn;
                s->has_newest = 1;
            }
        }
        if (d > 0) {
            siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, d);
        }
    }
    if (s->io.oversize || (got < expect)) {
        /* Records wolfSSL discarded: bad MAC, replayed, or too large. */
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, s->io.oversize ? 1 : expect - got);
    }
    if (st == SIPTLS_AGAIN || st == DTLS_DROPPED) {
        if (st == DTLS_DROPPED && got >= expect) {
            siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        }
        siptls__flow_rearm(f);
        return;
    }
    if (st == SIPTLS_ERR_PEER_CLOSED) {
        char text[64];
        siptls__addr_text(siptls__flow_remote(f, NULL), text, sizeof(text));
        siptls__log(e, SIPTLS_LOG_DEBUG, "dtls flow %llu %s: close_notify from peer",
                    (unsigned long long)siptls__flow_id(f), text);
    }
    siptls__flow_fail(f, st, 0);
}

/* A datagram for an existing session (inbound or outbound). */
void siptls__dtls_session_datagram(dtls_session *s, const uint8_t *dg, size_t len,
                                   const siptls__dtls_scan *scan)
{
    siptls__flow *f = s->f;
    if (!siptls__flow_wants_input(f)) {
        /* The host closed it (from a callback, in this same wakeup): no
         * more deliveries; the engine closes it when the callback is over. */
        return;
    }
    switch (siptls__flow_phase(f)) {
    case SIPTLS__PHASE_CONNECTING:
        siptls__flow_handshake_begin(f); /* the peer answered */
        handshake_step(s, dg, len);
        return;
    case SIPTLS__PHASE_HANDSHAKE:
        handshake_step(s, dg, len);
        return;
    case SIPTLS__PHASE_UP:
    case SIPTLS__PHASE_CLOSING:
        break;
    default:
        return;
    }
    siptls__dtls_hello h;
    if (s->dl != NULL && siptls__dtls_is_client_hello(scan, &h)) {
        if (s->next != NULL && !h.fragmented && siptls__dtls_hello_has_cookie(&h)) {
            /* our flight was lost: the new handshake's hello again */
            siptls__dtls_restart_step(s, dg, len);
            return;
        }
        socklen_t rl;
        const struct sockaddr *remote = siptls__flow_remote(f, &rl);
        siptls__dtls_on_client_hello(s->dl, dg, len, scan, &h, remote, rl, s);
        return;
    }
    /* DTLS 1.3: the new handshake's encrypted flight is in epoch 2 (RFC
     * 9147 §6.1: "epoch value (2) is used for messages protected using keys
     * derived from [sender]_handshake_traffic_secret"); the old session's
     * data is in epoch 3 and up, so its low bits tell them apart until the
     * old session has made a key update. */
    if (s->next != NULL &&
        (scan->first.type == SIPTLS__DTLS_CT_HANDSHAKE || scan->first.type == SIPTLS__DTLS_CT_CCS ||
         (scan->first.epoch == 0 && !scan->first.unified &&
          (scan->first.type == SIPTLS__DTLS_CT_ALERT || scan->first.type == SIPTLS__DTLS_CT_ACK)) ||
         (scan->first.unified && scan->first.epoch == 2))) {
        /* The old association is done with handshakes: these belong to
         * the new one. */
        siptls__dtls_restart_step(s, dg, len);
        return;
    }
    read_records(s, dg, len, scan, NULL, 0);
}

void siptls__dtls_session_datagram_from(dtls_session *s, const uint8_t *dg, size_t len,
                                        const siptls__dtls_scan *scan, const struct sockaddr *from,
                                        socklen_t from_len)
{
    siptls__flow *f = s->f;
    siptls_engine *e = siptls__flow_engine(f);
    /* Only an established session moves: handshake records come from the
     * address the cookie proved. */
    if (s->dl == NULL || !siptls__flow_wants_input(f) ||
        siptls__flow_phase(f) != SIPTLS__PHASE_UP || s->next != NULL ||
        from_len > sizeof(struct sockaddr_storage)) {
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        return;
    }
    read_records(s, dg, len, scan, from, from_len);
}

static void outbound_datagram(dtls_session *s, const uint8_t *dg, size_t len)
{
    siptls__flow *f = s->f;
    siptls_engine *e = siptls__flow_engine(f);
    switch (siptls__dtls_demux_byte(dg, len)) {
    case SIPTLS__DTLS_DEMUX_STUN: {
        socklen_t rl;
        const struct sockaddr *remote = siptls__flow_remote(f, &rl);
        if (siptls__dtls_answer_stun(e, siptls__flow_fd(f), dg, len, remote, rl, 1, NULL)) {
            siptls__flow_touch(f);
        }
        return;
    }
    case SIPTLS__DTLS_DEMUX_JUNK:
        siptls__count(e, SIPTLS__EV_DTLS_JUNK, 1);
        return;
    default:
        break;
    }
    siptls__dtls_scan scan;
    /* records to us carry our CID when we offered one (its length is ours) */
    if (siptls__dtls_scan_datagram_cid(dg, len, siptls__dtls_cid_len(e), &scan) != 0) {
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        return;
    }
    siptls__dtls_session_datagram(s, dg, len, &scan);
}

void siptls__dtls_emit_datagram(void *ctx, const uint8_t *dg, size_t len,
                                const struct sockaddr *from, socklen_t from_len)
{
    emit_ctx *ec = ctx;
    if (ec->dl != NULL) {
        siptls__dtls_listener_datagram(ec->dl, dg, len, from, from_len);
    } else if (siptls__flow_phase(ec->f) != SIPTLS__PHASE_CLOSED &&
               siptls__flow_tp(ec->f) != NULL) {
        outbound_datagram(siptls__flow_tp(ec->f), dg, len);
    }
}

void siptls__dtls_io_ready(siptls__flow *f, int revents)
{
    dtls_session *s = siptls__flow_tp(f);
    if (s == NULL || !(revents & SIPTLS__IO_READ)) {
        return;
    }
    siptls_engine *e = siptls__flow_engine(f);
    /* The session's own reference may go in this wakeup (the host closes
     * the flow from a callback): hold one until we are out. */
    const dtls_shared *sh = siptls__dtls_shared_ref(e);
    if (sh == NULL) {
        return;
    }
    emit_ctx ec = {NULL, f};
    for (int i = 0; i < READS_PER_WAKEUP && siptls__flow_phase(f) != SIPTLS__PHASE_CLOSED; i++) {
        ssize_t n = recv(siptls__flow_fd(f), sh->raw, RAW_CAP, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == ECONNREFUSED && siptls__flow_phase(f) <= SIPTLS__PHASE_HANDSHAKE) {
                /* ICMP port unreachable: nobody listens there. */
                char text[64];
                siptls__addr_text(siptls__flow_remote(f, NULL), text, sizeof(text));
                siptls__log(siptls__flow_engine(f), SIPTLS_LOG_INFO,
                            "dtls flow %llu: %s: connection refused",
                            (unsigned long long)siptls__flow_id(f), text);
                siptls__flow_fail(f, SIPTLS_ERR_CONNECT, 0);
                break;
            }
            if (errno == ECONNREFUSED) {
                continue; /* after the handshake: UDP, the peer may come back */
            }
            break;
        }
        if ((size_t)n > RAW_CAP) {
            siptls__count(siptls__flow_engine(f), SIPTLS__EV_DTLS_JUNK, 1);
            continue;
        }
        socklen_t rl;
        const struct sockaddr *remote = siptls__flow_remote(f, &rl);
        siptls__dtls_dispatch(&ec, sh, siptls__flow_fd(f), sh->raw, (size_t)n, remote, rl);
    }
    siptls__dtls_shared_unref(e);
}
