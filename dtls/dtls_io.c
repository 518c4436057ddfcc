/* siptls — DTLS transport: the engine's receive buffers, wolfSSL's I/O
 * callbacks on a UDP socket, the one mapping of wolfSSL return codes, and
 * the test seam every datagram passes through. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dtls_transport.h"

dtls_shared *siptls__dtls_shared_of(siptls_engine *e)
{
    return *siptls__engine_tp_shared(e, SIPTLS_TRANSPORT_DTLS);
}

dtls_shared *siptls__dtls_shared_ref(siptls_engine *e)
{
    void **slot = siptls__engine_tp_shared(e, SIPTLS_TRANSPORT_DTLS);
    dtls_shared *sh = *slot;
    if (sh == NULL) {
        sh = calloc(1, sizeof(*sh));
        if (sh == NULL) {
            return NULL;
        }
        sh->raw = malloc(RAW_CAP);
        sh->plain = malloc(PLAIN_CAP);
        if (sh->raw == NULL || sh->plain == NULL ||
            siptls__dtls_tx_new(sh, siptls__engine_config(e)->dtls_mtu) != SIPTLS_OK) {
            free(sh->raw);
            free(sh->plain);
            free(sh);
            return NULL;
        }
        sh->tag = -1;
        *slot = sh;
    }
    sh->refs++;
    return sh;
}

void siptls__dtls_shared_unref(siptls_engine *e)
{
    void **slot = siptls__engine_tp_shared(e, SIPTLS_TRANSPORT_DTLS);
    dtls_shared *sh = *slot;
    if (sh != NULL && --sh->refs == 0) {
        siptls__dtls_route_release(sh); /* given back with the last CID listener already */
        siptls__dtls_tx_free(sh);
        siptls__dtls_rx_batch_free(sh);
        free(sh->raw);
        free(sh->plain);
        free(sh);
        *slot = NULL;
    }
}

int siptls__dtls_test_set_filter(siptls_engine *e, siptls__dtls_test_filter fn, void *user)
{
    dtls_shared *sh = siptls__dtls_shared_of(e);
    int had = sh != NULL && sh->filter != NULL;
    if (fn != NULL && !had) {
        sh = siptls__dtls_shared_ref(e); /* the filter holds a reference */
        if (sh == NULL) {
            return SIPTLS_ERR_NOMEM;
        }
    }
    if (sh != NULL) {
        sh->filter = fn;
        sh->filter_user = user;
    }
    if (fn == NULL && had) {
        siptls__dtls_shared_unref(e);
    }
    return SIPTLS_OK;
}

void siptls__dtls_socket_buffers(int fd)
{
    int want = DTLS_RCVBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
    }
}

/* The one place wolfSSL return codes become siptls statuses. */
int siptls__dtls_map_error(siptls_engine *e, WOLFSSL *ssl, const dtls_io *io, int ret,
                           int handshake)
{
    int err = wolfSSL_get_error(ssl, ret);
    if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
        /* a fatal alert from the peer says why, as on TLS */
        int st = siptls__peer_alert_status(ssl);
        if (st != 0) {
            char peer[64] = "?";
            if (io != NULL && io->peer != NULL) {
                siptls__addr_text(io->peer, peer, sizeof(peer));
            }
            siptls__log(e, SIPTLS_LOG_INFO, "dtls %s: %s", peer, siptls_strerror(st));
            return st;
        }
    }
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ:
    case WOLFSSL_ERROR_WANT_WRITE:
        return SIPTLS_AGAIN;
    case WOLFSSL_ERROR_ZERO_RETURN:
        return SIPTLS_ERR_PEER_CLOSED;
    case VERIFY_MAC_ERROR:
    case DECRYPT_ERROR:
    case DUPLICATE_MSG_E:
    case SEQUENCE_ERROR:
    case OUT_OF_ORDER_E:
        /* RFC 6347 §4.1.2.7: "In general, invalid records SHOULD be
         * silently discarded, thus preserving the association". */
        return DTLS_DROPPED;
    case SOCKET_ERROR_E:
    case SOCKET_PEER_CLOSED_E:
    case WOLFSSL_ERROR_SYSCALL: /* wolfSSL 5.7's name for the two above */
        if (io != NULL && io->refused) {
            return SIPTLS_ERR_CONNECT;
        }
        return handshake ? SIPTLS_ERR_HANDSHAKE : SIPTLS_ERR_IO;
    default:
        break;
    }
    if (handshake) {
        char buf[WOLFSSL_MAX_ERROR_SZ];
        char peer[64] = "?";
        if (io != NULL && io->peer != NULL) {
            siptls__addr_text(io->peer, peer, sizeof(peer));
        }
        const char *hint = siptls__handshake_hint(err);
        siptls__log(e, SIPTLS_LOG_INFO, "dtls %s: handshake failed: %s (%d)%s%s", peer,
                    wolfSSL_ERR_error_string((unsigned long)err, buf), err, *hint ? ": " : "",
                    hint);
        return siptls__handshake_status(err);
    }
    return SIPTLS_ERR_TLS;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    dtls_io *io = ctx;
    if (io->rx == NULL) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    const uint8_t *rx = io->rx;
    io->rx = NULL;
    if (sz < 0 || io->rx_len > (size_t)sz) {
        /* wolfSSL would take the first sz bytes and lose record
         * boundaries: drop the datagram instead (counted by the caller). */
        io->oversize = 1;
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    memcpy(buf, rx, io->rx_len);
    return (int)io->rx_len;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    dtls_io *io = ctx;
    if (sz <= 0 || io->mute) {
        return sz;
    }
    if (io->hello_only) {
        /* The hello object answers strangers: it may say nothing but a
         * HelloVerifyRequest, and never more bytes than it was sent
         * (RFC 6347 §4.2.1: the cookie exchange exists against
         * amplification). */
        if (!siptls__dtls_is_hello_verify((const uint8_t *)buf, (size_t)sz) ||
            (size_t)sz > io->send_cap) {
            return sz;
        }
    }
    if (io->fd < 0) {
        return sz;
    }
    /* Queued for the end of the wakeup (dtls_batch.c: one sendmmsg per
     * socket; records that each hold a whole message packed per peer: a
     * piece of a split message keeps a datagram of its own, where the
     * receiver learns its sequence number); send errors are handled there.
     * Only a full queue whose socket takes nothing says WANT_WRITE:
     * wolfSSL keeps the record and the session retries. A DTLS 1.3
     * record to a peer that gave us a CID carries it: its length tells
     * where the record's length field is. */
    size_t cid_len = 0;
#if defined(WOLFSSL_DTLS_CID) && defined(WOLFSSL_DTLS13)
    unsigned cid_sz = 0;
    if (io->whole && ((uint8_t)buf[0] & SIPTLS__DTLS_UH_MASK) == SIPTLS__DTLS_UH_FIXED &&
        ((uint8_t)buf[0] & SIPTLS__DTLS_UH_CID) != 0 &&
        wolfSSL_dtls_cid_get_tx_size(ssl, &cid_sz) == WOLFSSL_SUCCESS) {
        cid_len = cid_sz;
    }
#endif
    if (siptls__dtls_tx_add(siptls__dtls_shared_of(io->engine), io->engine, io->fd,
                            (const uint8_t *)buf, (size_t)sz, io->peer, io->peer_len, io->local,
                            io->whole, cid_len) != 0) {
        io->blocked = 1;
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    }
    io->sent++;
    return sz;
}

/* Common set-up of every WOLFSSL object of this transport. */
void siptls__dtls_setup_ssl(WOLFSSL *ssl, dtls_io *io)
{
    wolfSSL_SSLSetIORecv(ssl, io_recv);
    wolfSSL_SSLSetIOSend(ssl, io_send);
    wolfSSL_SetIOReadCtx(ssl, io);
    wolfSSL_SetIOWriteCtx(ssl, io);
    /* Our callbacks say WANT_READ when no datagram is there: that is not a
     * timeout, we drive retransmissions ourselves. */
    wolfSSL_dtls_set_using_nonblock(ssl, 1);
#ifdef WOLFSSL_DTLS_MTU
    /* Handshake flights are fragmented so that no datagram exceeds
     * dtls_mtu (application records are sized by dtls_record_space()).
     * wolfSSL reads datagrams of up to this MTU plus
     * WOLFSSL_DTLS_MTU_ADDITIONAL_READ_BUFFER, which the bundled build
     * raises so that a small dtls_mtu does not make us drop a peer's larger
     * datagrams (docs/dtls.md "Datagram sizes"). wolfSSL takes at most a
     * full record (16 KiB). Without WOLFSSL_DTLS_MTU (Debian's 5.5.4, which
     * does not export the call) wolfSSL's own 1400 bytes apply. */
    if (io != NULL && io->engine != NULL) {
        unsigned mtu = siptls__engine_config(io->engine)->dtls_mtu;
        wolfSSL_dtls_set_mtu(ssl, (unsigned short)(mtu > 16384 ? 16384 : mtu));
    }
#endif
}

void siptls__dtls_mtu_after_handshake(WOLFSSL *ssl, siptls_engine *e)
{
#ifdef WOLFSSL_DTLS_MTU
    /* From now on siptls sizes the records itself (dtls_record_space(),
     * within dtls_mtu), and wolfSSL's MTU only caps the largest record:
     * back to at least wolfSSL's own 1400 bytes, so that a message that
     * cannot be split (a header block, or a message without
     * Content-Length, larger than one record's space) still leaves as one
     * larger record (IP fragmentation), as it does without an MTU set. */
    unsigned mtu = siptls__engine_config(e)->dtls_mtu;
    if (mtu < 1400) {
        mtu = 1400;
    }
    wolfSSL_dtls_set_mtu(ssl, (unsigned short)(mtu > 16384 ? 16384 : mtu));
#else
    (void)ssl;
    (void)e;
#endif
}

void siptls__dtls_free_ssl(WOLFSSL **ssl)
{
    if (*ssl != NULL) {
        wolfSSL_free(*ssl);
        *ssl = NULL;
    }
}

/* wolfSSL counts DTLS retransmission timeouts in seconds. On DTLS 1.3 it
 * may ask for a quick timeout (it saw a gap in the peer's flight and wants
 * to send an ACK or retransmit soon): at most a quarter of the current one,
 * as wolfSSL_dtls13_use_quick_timeout() says. */
uint64_t siptls__dtls_retx_deadline(siptls_engine *e, WOLFSSL *ssl)
{
    int t = wolfSSL_dtls_get_current_timeout(ssl);
    uint64_t ms = (uint64_t)(t > 0 ? t : 1) * 1000;
#ifdef WOLFSSL_DTLS13
    if (wolfSSL_dtls13_use_quick_timeout(ssl)) {
        ms /= 4;
    }
#endif
    return siptls__engine_now(e) + ms;
}

#ifdef SIPTLS_WOLFSSL_SHIM
/* cmake/wolfssl/siptls_wolfssl_shim.c, built with the bundled wolfSSL. */
int siptls_wolfssl_last_record_number(WOLFSSL *ssl, uint64_t *epoch, uint64_t *seq);
#endif

int siptls__dtls_last_record(WOLFSSL *ssl, uint64_t *seq64)
{
#ifdef SIPTLS_WOLFSSL_SHIM
    uint64_t epoch, seq;
    if (siptls_wolfssl_last_record_number(ssl, &epoch, &seq) != 0 || epoch > 0xFFFF ||
        seq > 0xFFFFFFFFFFFFull) {
        return -1;
    }
    *seq64 = (epoch << 48) | seq;
    return 0;
#else
    (void)ssl;
    (void)seq64;
    return -1;
#endif
}

size_t siptls__dtls_cid_len(siptls_engine *e)
{
#if defined(WOLFSSL_DTLS_CID) && defined(WOLFSSL_DTLS13) && defined(SIPTLS_WOLFSSL_SHIM)
    const siptls_config *c = siptls__engine_config(e);
    if (!c->dtls_cid) {
        return 0;
    }
    size_t n = c->dtls_cid_length;
    return n < 1 ? 0 : n > SIPTLS__DTLS_CID_MAX ? SIPTLS__DTLS_CID_MAX : n;
#else
    (void)e;
    return 0;
#endif
}

int siptls__dtls_cid_offer(WOLFSSL *ssl, const uint8_t *cid, size_t len)
{
#if defined(WOLFSSL_DTLS_CID) && defined(WOLFSSL_DTLS13)
    /* wolfSSL 5.7.2: "CID is supported on DTLSv1.3 only": wolfSSL_dtls_cid_use
     * fails on a DTLS 1.2-only object (and a 1.2 session negotiates none). */
    if (wolfSSL_dtls_cid_use(ssl) != WOLFSSL_SUCCESS ||
        wolfSSL_dtls_cid_set(ssl, (unsigned char *)cid, (unsigned)len) != WOLFSSL_SUCCESS) {
        return -1;
    }
    return 0;
#else
    (void)ssl;
    (void)cid;
    (void)len;
    return -1;
#endif
}

uint64_t siptls__dtls_drops(WOLFSSL *ssl)
{
#ifdef WOLFSSL_DTLS_DROP_STATS
    word32 mac = 0, replay = 0;
    if (wolfSSL_dtls_get_drop_stats(ssl, &mac, &replay) == WOLFSSL_SUCCESS) {
        return (uint64_t)mac + replay;
    }
#else
    (void)ssl;
#endif
    return 0;
}

void siptls__dtls_dispatch(emit_ctx *ec, const dtls_shared *sh, int fd, const uint8_t *dg,
                           size_t len, const struct sockaddr *from, socklen_t from_len)
{
    if (sh->filter != NULL) {
        sh->filter(sh->filter_user, fd, dg, len, from, from_len, siptls__dtls_emit_datagram, ec);
    } else {
        siptls__dtls_emit_datagram(ec, dg, len, from, from_len);
    }
}
