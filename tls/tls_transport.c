/* siptls — SIP over TLS over TCP.
 *
 * One non-blocking TCP socket per flow, wolfSSL reading and writing the fd
 * directly. Reads go through the stream framer (chunk policy, limits, CRLF
 * keepalives); writes drain the engine's queue, resuming partial writes
 * when the socket becomes writable. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include "engine_internal.h"

/* Read straight into the framer's buffer in steps of one TLS record. */
#define TLS_READ_STEP 16384

/* Socket reads go through our own buffer: one recv() of up to 16 KiB per
 * wakeup instead of wolfSSL's two per record (header, then body) plus the
 * one that finds the socket empty. A read shorter than the buffer means the
 * socket is drained for this wakeup (libev is level-triggered: if more
 * arrives, it wakes us again), which saves that last recv() too. The
 * buffer exists only while it holds bytes: an idle flow keeps none. */
#define TLS_RX_BUF 16384

typedef struct tls_flow {
    WOLFSSL *ssl;
    int fd;
    uint8_t shutdown_sent;
    uint8_t read_closed; /* the peer's sending ended (FIN, TLS 1.3 close_notify): read no more */
    uint8_t drained;   /* the socket gave all it had in this wakeup */
    uint8_t eof;       /* recv() returned 0: the peer sent its FIN */
    uint8_t close_notify; /* the peer's close_notify arrived */
    uint8_t *rx;       /* bytes read from the socket, not yet given to wolfSSL */
    uint32_t rx_off, rx_len;
    int rx_errno;      /* errno of a failed recv()/send(), for map_error */
} tls_flow;

static int rx_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    tls_flow *t = ctx;
    if (t->rx_off == t->rx_len) {
        if (t->drained) {
            return WOLFSSL_CBIO_ERR_WANT_READ;
        }
        if (t->rx == NULL && (t->rx = malloc(TLS_RX_BUF)) == NULL) {
            return WOLFSSL_CBIO_ERR_GENERAL;
        }
        ssize_t n;
        do {
            n = recv(t->fd, t->rx, TLS_RX_BUF, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            t->drained = 1;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return WOLFSSL_CBIO_ERR_WANT_READ;
            }
            t->rx_errno = errno;
            return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
        }
        if (n == 0) {
            t->eof = 1;
            t->drained = 1;
            return WOLFSSL_CBIO_ERR_CONN_CLOSE;
        }
        t->drained = n < TLS_RX_BUF;
        t->rx_off = 0;
        t->rx_len = (uint32_t)n;
    }
    uint32_t take = t->rx_len - t->rx_off;
    if ((uint32_t)sz < take) {
        take = (uint32_t)sz;
    }
    memcpy(buf, t->rx + t->rx_off, take);
    t->rx_off += take;
    return (int)take;
}

/* wolfSSL's own send() path passes no flags: a write to a connection the
 * peer reset would raise SIGPIPE and kill a host that does not ignore it.
 * A library must not depend on that: MSG_NOSIGNAL. */
static int tx_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    tls_flow *t = ctx;
    ssize_t n;
    do {
        n = send(t->fd, buf, (size_t)sz, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    }
    t->rx_errno = errno;
    return errno == ECONNRESET || errno == EPIPE ? WOLFSSL_CBIO_ERR_CONN_RST
                                                   : WOLFSSL_CBIO_ERR_GENERAL;
}

/* Read interest: none once the peer's side is closed (a level-triggered
 * watcher would wake us for EOF forever). */
static int read_want(const siptls__flow *f)
{
    const tls_flow *t = f->tp;
    return t != NULL && t->read_closed ? 0 : SIPTLS__IO_READ;
}

/* Release the receive buffer once wolfSSL has taken every byte. */
static void rx_release(tls_flow *t)
{
    if (t->rx != NULL && t->rx_off == t->rx_len) {
        free(t->rx);
        t->rx = NULL;
        t->rx_off = t->rx_len = 0;
    }
}

/* The one place wolfSSL return codes become siptls statuses. */
static int map_error(siptls__flow *f, WOLFSSL *ssl, int ret, int handshake)
{
    int err = wolfSSL_get_error(ssl, ret);
    /* The peer ended the flow with a fatal alert: the alert says why (a
     * server refusing our certificate or its absence, no common version
     * or cipher...), so it is the reason, whatever error wolfSSL reports
     * after it. */
    WOLFSSL_ALERT_HISTORY ah;
    if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE &&
        wolfSSL_get_alert_history(ssl, &ah) == WOLFSSL_SUCCESS && ah.last_rx.level == alert_fatal) {
        int st = SIPTLS_ERR_PEER_ALERT(ah.last_rx.code & 0xff);
        siptls__log(f->engine, SIPTLS_LOG_INFO, "tls flow %llu: %s", (unsigned long long)f->id,
                    siptls_strerror(st));
        return st;
    }
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ:
    case WOLFSSL_ERROR_WANT_WRITE:
        return SIPTLS_AGAIN;
    case WOLFSSL_ERROR_ZERO_RETURN:
        if (f->tp != NULL) {
            ((tls_flow *)f->tp)->close_notify = 1;
        }
        return SIPTLS_ERR_PEER_CLOSED;
    case SOCKET_PEER_CLOSED_E: {
        /* wolfSSL says "peer closed" for a FIN and for a reset alike. */
        const tls_flow *t = f->tp;
        if (t != NULL && (t->rx_errno == ECONNRESET || t->rx_errno == EPIPE)) {
            return SIPTLS_ERR_RESET;
        }
        return handshake ? SIPTLS_ERR_HANDSHAKE : SIPTLS_ERR_PEER_CLOSED;
    }
    case SOCKET_ERROR_E: {
        const tls_flow *t = f->tp;
        if (handshake && t != NULL && t->eof) {
            /* wolfSSL reports the peer's FIN in a handshake as a socket
             * error: the peer closed without an alert (wolfSSL 5.5.4 as a
             * TLS 1.2 server refusing a missing client certificate). */
            return SIPTLS_ERR_PEER_CLOSED;
        }
        int e = t != NULL && t->rx_errno != 0 ? t->rx_errno : errno;
        return e == ECONNRESET || e == EPIPE ? SIPTLS_ERR_RESET : SIPTLS_ERR_IO;
    }
    default:
        break;
    }
    /* RFC 5246 §7.4.1.2: a ClientHello after the handshake asks to
     * renegotiate, which this wolfSSL cannot do; it answers with a fatal
     * unexpected_message alert (docs/security.md). */
    if (!handshake && !f->outbound && wolfSSL_version(ssl) == TLS1_2_VERSION &&
        (err == DUPLICATE_MSG_E || err == OUT_OF_ORDER_E)) {
        return SIPTLS_ERR_RENEGOTIATION;
    }
    if (handshake) {
        char buf[WOLFSSL_MAX_ERROR_SZ];
        siptls__log(f->engine, SIPTLS_LOG_INFO, "tls flow %llu: handshake failed: %s (%d)",
                    (unsigned long long)f->id, wolfSSL_ERR_error_string((unsigned long)err, buf), err);
        return siptls__secctx_classify_error(err);
    }
    return SIPTLS_ERR_TLS;
}

/* ------------------------------------------------------------------------ */
/* listener                                                                 */
/* ------------------------------------------------------------------------ */

/* A listener's own state: a spare descriptor for the open-file limit. */
typedef struct tls_listener {
    int reserve_fd;            /* /dev/null, given up to shed a connection at EMFILE */
    siptls__ratelog emfile_log;
} tls_listener;

static int tls_listen(siptls_engine *e, siptls__listener *l)
{
    /* Engines of one process (reuse_port) share the port: the kernel
     * spreads connections over them. */
    int fd = siptls__listener_socket(e, l, SOCK_STREAM);
    if (fd < 0) {
        return SIPTLS_ERR_BIND;
    }
    if (listen(fd, 1024) != 0) {
        int saved = errno;
        close(fd);
        siptls__listener_unshare(e, l, SOCK_STREAM);
        errno = saved;
        return SIPTLS_ERR_BIND;
    }
    tls_listener *tl = calloc(1, sizeof(*tl));
    if (tl == NULL) {
        close(fd);
        siptls__listener_unshare(e, l, SOCK_STREAM);
        errno = ENOMEM;
        return SIPTLS_ERR_NOMEM;
    }
    tl->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    l->tp = tl;
    l->addrlen = sizeof(l->addr);
    getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen);
    l->fd = fd;
    return SIPTLS_OK;
}

/* At the open-file limit accept() fails and the connection stays in the
 * backlog: a level-triggered watcher would wake us for it forever. Give
 * up the spare descriptor, accept the connection and close it (the peer
 * sees the close at once instead of a silent timeout), take the spare
 * back. Counted, and logged at most once per 10 s. */
static void shed_connection(siptls_engine *e, siptls__listener *l, int err)
{
    tls_listener *tl = l->tp;
    siptls__engine_stats_mut(e)->drop_resources++;
    siptls__log_limited(e, &tl->emfile_log,
                        "tls listener %d: cannot accept a connection: %s (raise the open-file "
                        "limit, ulimit -n, or lower tls_max_connections): shedding it",
                        l->index, strerror(err));
    if (tl->reserve_fd >= 0) {
        close(tl->reserve_fd);
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
        }
        tl->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

static int attach_ssl(siptls__flow *f, WOLFSSL *ssl)
{
    tls_flow *t = calloc(1, sizeof(*t));
    if (t == NULL || ssl == NULL) {
        free(t);
        if (ssl != NULL) {
            wolfSSL_free(ssl);
        }
        return SIPTLS_ERR_NOMEM;
    }
    wolfSSL_set_fd(ssl, f->fd);
    wolfSSL_SSLSetIORecv(ssl, rx_cb);
    wolfSSL_SetIOReadCtx(ssl, t);
    wolfSSL_SSLSetIOSend(ssl, tx_cb);
    wolfSSL_SetIOWriteCtx(ssl, t);
    wolfSSL_set_using_nonblock(ssl, 1);
    t->ssl = ssl;
    t->fd = f->fd;
    f->tp = t;
    return SIPTLS_OK;
}

static void handshake_step(siptls__flow *f);

static void tls_listener_io(siptls_engine *e, siptls__listener *l)
{
    /* Bounded per wakeup so a connection storm cannot starve other flows. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                shed_connection(e, l, errno);
                continue;
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        siptls__flow *f = siptls__flow_new_inbound(e, l, fd, (struct sockaddr *)&ss, sl);
        if (f == NULL) {
            close(fd);
            continue;
        }
        siptls__secctx *sec = siptls__engine_secctx(e, SIPTLS_TRANSPORT_TLS);
        /* The accepted socket's own address: behind a wildcard listener it
         * is what match_ip_address must see. */
        errno = 0;
        WOLFSSL *ssl = sec ? siptls__secctx_server_ssl(sec, (struct sockaddr *)&f->local) : NULL;
        int err = errno;
        if (attach_ssl(f, ssl) != SIPTLS_OK) {
            /* wolfSSL_new() seeds a DRBG from /dev/urandom: at the
             * open-file limit that is what fails. */
            tls_listener *tl = l->tp;
            char text[64];
            siptls__addr_text((struct sockaddr *)&ss, text, sizeof(text));
            siptls__engine_stats_mut(e)->drop_resources++;
            siptls__log_limited(e, &tl->emfile_log,
                                "tls listener %d: dropping the connection from %s: cannot create "
                                "its TLS session (%s; open-file limit?)",
                                l->index, text, err != 0 ? strerror(err) : "out of memory");
            siptls__flow_fail(f, SIPTLS_ERR_NOMEM, 0);
        }
    }
}

static void tls_listener_close(siptls_engine *e, siptls__listener *l)
{
    tls_listener *tl = l->tp;
    if (tl != NULL) {
        if (tl->reserve_fd >= 0) {
            close(tl->reserve_fd);
        }
        free(tl);
        l->tp = NULL;
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
        siptls__listener_unshare(e, l, SOCK_STREAM);
    }
}

/* ------------------------------------------------------------------------ */
/* flows                                                                    */
/* ------------------------------------------------------------------------ */

static int tls_connect(siptls__flow *f)
{
    int fd = socket(f->remote.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return SIPTLS_ERR_CONNECT;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&f->remote, f->remote_len) != 0 && errno != EINPROGRESS) {
        close(fd);
        return SIPTLS_ERR_CONNECT;
    }
    siptls__flow_attach_fd(f, fd, SIPTLS__IO_WRITE);
    if (f->io_watcher == NULL) {
        close(fd);
        f->fd = -1;
        return SIPTLS_ERR_NOMEM;
    }
    return SIPTLS_OK;
}

static void connect_done(siptls__flow *f)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        char text[64];
        siptls__addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
        /* INFO when this was the last address the name gave (the flow
         * closes); else the engine logs the move to the next one. */
        siptls__log(f->engine, f->alt_next < f->n_alts ? SIPTLS_LOG_DEBUG : SIPTLS_LOG_INFO,
                    "tls flow %llu: connect to %s (%s) failed: %s",
                    (unsigned long long)f->id, f->sip_domain, text, strerror(err ? err : errno));
        siptls__flow_fail(f, SIPTLS_ERR_CONNECT, 0);
        return;
    }
    f->local_len = sizeof(f->local);
    getsockname(f->fd, (struct sockaddr *)&f->local, &f->local_len);
    siptls__secctx *sec = siptls__engine_secctx(f->engine, SIPTLS_TRANSPORT_TLS);
    WOLFSSL *ssl = sec ? siptls__secctx_client_ssl(sec, f->sip_domain, (struct sockaddr *)&f->remote)
                       : NULL;
    if (attach_ssl(f, ssl) != SIPTLS_OK) {
        siptls__flow_fail(f, SIPTLS_ERR_NOMEM, 0);
        return;
    }
    if (siptls__engine_config(f->engine)->tls_session_cache) {
        char key[SIPTLS_URI_HOST_MAX + 80];
        siptls__flow_session_key(f, key, sizeof(key));
        siptls__secctx_client_session_apply(sec, ssl, key);
    }
    siptls__flow_handshake_begin(f);
    handshake_step(f);
}

static void tls_flush(siptls__flow *f);
static void tls_shutdown(siptls__flow *f);
static void tls_io_phase(siptls__flow *f, int revents);

/* Deliver every event the framer has. Returns -1 when the flow is gone
 * (a framing error closed it, or the host closed it from a callback). */
static int drain(siptls__flow *f)
{
    siptls_stream_framer *fr = f->framer.stream;
    siptls_frame_event ev;
    int fst;
    while ((fst = siptls_stream_framer_next(fr, &ev)) == SIPTLS_OK) {
        if (siptls__flow_deliver(f, &ev) != 0) {
            return -1;
        }
    }
    if (fst == SIPTLS_AGAIN) {
        return 0;
    }
    siptls_stats *s = siptls__engine_stats_mut(f->engine);
    s->drop_framing++;
    if (fst == SIPTLS_ERR_FRAME_CHUNKS) {
        s->drop_chunks++;
    } else if (fst == SIPTLS_ERR_FRAME_TOO_BIG || fst == SIPTLS_ERR_FRAME_HDR_TOO_BIG) {
        s->drop_too_big++;
    } else if (fst == SIPTLS_ERR_FRAME_TIMEOUT) {
        s->drop_msg_timeout++;
    }
    char text[64];
    siptls__addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
    siptls__log(f->engine, SIPTLS_LOG_WARN, "tls flow %llu %s: %s: closing", (unsigned long long)f->id,
                text, siptls_strerror(fst));
    siptls__flow_fail(f, fst, 0);
    return -1;
}

/* The peer's sending ended (status `st` from a read). */
static void read_ended(siptls__flow *f, int st)
{
    tls_flow *t = f->tp;
    if (st != SIPTLS_ERR_PEER_CLOSED || f->phase != SIPTLS__PHASE_UP) {
        siptls__flow_fail(f, st, 0);
        return;
    }
    if (t->close_notify && wolfSSL_version(t->ssl) < TLS1_3_VERSION) {
        /* RFC 5246 §7.2.1: "Upon receipt of close_notify, the other party
         * MUST respond with a close_notify alert of its own and close down
         * the connection immediately, discarding any pending writes." */
        tls_shutdown(f);
        siptls__flow_fail(f, st, 0);
        return;
    }
    /* RFC 8446 §6.1: a close_notify "does not have any effect on its read
     * side of the connection": it ends the peer's sending, not ours. A FIN
     * without one is a half-close too. Replies already produced are
     * written (bounded by tls_send_timeout), then we close. */
    t->read_closed = 1;
    siptls__flow_want(f, f->q_head != NULL ? SIPTLS__IO_WRITE : 0);
    siptls__flow_fail(f, st, 1);
}

/* One wakeup = one chunk: drain the socket and wolfSSL's buffered plaintext
 * straight into the framer (zero copy), mark the chunk end once, deliver. */
static void do_read(siptls__flow *f)
{
    tls_flow *t = f->tp;
    siptls_stream_framer *fr = f->framer.stream;
    size_t total = 0;
    int st = SIPTLS_AGAIN;
    for (;;) {
        int full = 0;
        for (;;) {
            uint8_t *p;
            size_t avail;
            if (siptls_stream_framer_reserve(fr, TLS_READ_STEP, &p, &avail) != SIPTLS_OK || avail == 0) {
                full = 1;
                break;
            }
            int n = wolfSSL_read(t->ssl, p, (int)(avail > INT32_MAX ? INT32_MAX : avail));
            if (n > 0) {
                siptls_stream_framer_commit(fr, (size_t)n);
                total += (size_t)n;
                continue;
            }
            st = map_error(f, t->ssl, n, 0);
            break;
        }
        if (!full) {
            break;
        }
        /* The framer holds all it may: parse to make room, read on. */
        if (drain(f) != 0) {
            return;
        }
        uint8_t *p;
        size_t avail;
        if (siptls_stream_framer_reserve(fr, TLS_READ_STEP, &p, &avail) != SIPTLS_OK || avail == 0) {
            break; /* no progress possible: next() reports the limit */
        }
    }
    if (total != 0) {
        siptls__flow_activity(f, total);
        siptls_stream_framer_end_chunk(fr, siptls__engine_now(f->engine));
    }
    if (drain(f) != 0) {
        return;
    }
    if (st != SIPTLS_AGAIN) {
        read_ended(f, st);
        return;
    }
    if (!siptls_stream_framer_pending(fr, NULL)) {
        siptls_stream_framer_trim(fr);
    }
    siptls__flow_rearm(f);
}

static void handshake_step(siptls__flow *f)
{
    tls_flow *t = f->tp;
    int ret = f->outbound ? wolfSSL_connect(t->ssl) : wolfSSL_accept(t->ssl);
    if (ret != WOLFSSL_SUCCESS) {
        int err = wolfSSL_get_error(t->ssl, ret);
        int st = map_error(f, t->ssl, ret, 1);
        if (st == SIPTLS_AGAIN) {
            siptls__flow_want(f, err == WOLFSSL_ERROR_WANT_WRITE ? SIPTLS__IO_READ | SIPTLS__IO_WRITE
                                                                 : SIPTLS__IO_READ);
            return;
        }
        siptls__flow_fail(f, st, 0);
        return;
    }
    siptls_flow_info info;
    memset(&info, 0, sizeof(info));
    siptls__secctx *sec = siptls__engine_secctx(f->engine, SIPTLS_TRANSPORT_TLS);
    int st = siptls__secctx_peer_check(sec, t->ssl, !f->outbound, f->sip_domain, &info);
    if (st != SIPTLS_OK) {
        char text[64];
        siptls__addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
        siptls__log(f->engine, SIPTLS_LOG_WARN, "tls flow %llu %s: %s", (unsigned long long)f->id, text,
                    siptls_strerror(st));
        siptls__flow_fail(f, st, 0);
        return;
    }
    f->resumed = wolfSSL_session_reused(t->ssl) == 1;
    siptls__flow_want(f, SIPTLS__IO_READ);
    siptls__flow_up(f);
    if (f->phase != SIPTLS__PHASE_UP) {
        return;
    }
    /* The peer may have sent application data right behind its Finished. */
    do_read(f);
}

static void tls_flush(siptls__flow *f)
{
    tls_flow *t = f->tp;
    if (t == NULL) {
        return;
    }
    siptls__qmsg *m;
    /* Several replies queued during one wakeup go out as one TLS record
     * and one write: fewer syscalls and less per-record crypto. */
    siptls__flow_qcoalesce(f, TLS_READ_STEP);
    while ((m = siptls__flow_qhead(f)) != NULL) {
        /* After WANT_WRITE wolfSSL must be called again with the same
         * buffer: it remembers how much of it went out. */
        int n = wolfSSL_write(t->ssl, m->data, (int)m->len);
        if (n > 0) {
            f->bytes_out += m->len;
            siptls__engine_stats_mut(f->engine)->bytes_out += m->len;
            /* Sending is activity too (tls_connection_lifetime counts idle
             * time in both directions, as OpenSIPS does). */
            siptls__flow_activity(f, 0);
            siptls__flow_qpop(f);
            siptls__flow_qcoalesce(f, TLS_READ_STEP);
            continue;
        }
        int st = map_error(f, t->ssl, n, 0);
        if (st == SIPTLS_AGAIN) {
            m->off = 1; /* in progress: must be retried as is, never merged */
            siptls__flow_send_progress(f, 1);
            siptls__flow_want(f, read_want(f) | SIPTLS__IO_WRITE);
            return;
        }
        siptls__flow_fail(f, st, 0);
        return;
    }
    siptls__flow_send_progress(f, 0);
    siptls__flow_want(f, read_want(f));
}

static void tls_io(siptls__flow *f, int revents)
{
    tls_flow *t = f->tp;
    if (t != NULL && (revents & SIPTLS__IO_READ)) {
        t->drained = 0; /* a new wakeup: the socket may have bytes */
    }
    tls_io_phase(f, revents);
    if (f->phase != SIPTLS__PHASE_CLOSED && f->tp != NULL) {
        rx_release(f->tp);
    }
}

static void tls_io_phase(siptls__flow *f, int revents)
{
    switch (f->phase) {
    case SIPTLS__PHASE_CONNECTING:
        connect_done(f);
        return;
    case SIPTLS__PHASE_HANDSHAKE:
        handshake_step(f);
        return;
    case SIPTLS__PHASE_UP:
    case SIPTLS__PHASE_CLOSING:
        if (revents & SIPTLS__IO_WRITE) {
            tls_flush(f);
        }
        if ((revents & SIPTLS__IO_READ) && f->phase <= SIPTLS__PHASE_CLOSING &&
            read_want(f) != 0) {
            do_read(f);
        }
        return;
    default:
        return;
    }
}

static int tls_next_timeout(siptls__flow *f, uint64_t *deadline_ms)
{
    (void)f;
    (void)deadline_ms;
    return 0;
}

static void tls_on_timeout(siptls__flow *f)
{
    (void)f;
}

static void tls_shutdown(siptls__flow *f)
{
    tls_flow *t = f->tp;
    if (t != NULL && !t->shutdown_sent && f->reported_up) {
        t->shutdown_sent = 1;
        /* Non-blocking: sends our close_notify, does not wait for theirs. */
        wolfSSL_shutdown(t->ssl);
    }
}

static void tls_free(siptls__flow *f)
{
    tls_flow *t = f->tp;
    if (t != NULL) {
        free(t->rx);
        if (f->outbound && f->reported_up && siptls__engine_config(f->engine)->tls_session_cache) {
            /* Saved at close, not at handshake end: TLS 1.3 tickets arrive
             * after the handshake. */
            char key[SIPTLS_URI_HOST_MAX + 80];
            siptls__flow_session_key(f, key, sizeof(key));
            siptls__secctx *sec = siptls__engine_secctx(f->engine, SIPTLS_TRANSPORT_TLS);
            if (sec != NULL) {
                siptls__secctx_client_session_save(sec, t->ssl, key);
            }
        }
        wolfSSL_free(t->ssl);
        free(t);
        f->tp = NULL;
    }
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

static void tls_info(siptls__flow *f, siptls_flow_info *info)
{
    tls_flow *t = f->tp;
    if (t == NULL || !f->reported_up) {
        return;
    }
    siptls__secctx *sec = siptls__engine_secctx(f->engine, SIPTLS_TRANSPORT_TLS);
    siptls__secctx_describe(sec, t->ssl, !f->outbound, f->sip_domain, info);
}

const siptls__transport_ops siptls__tls_ops = {
    .kind = SIPTLS_TRANSPORT_TLS,
    .name = "tls",
    .listen = tls_listen,
    .listener_io = tls_listener_io,
    .listener_close = tls_listener_close,
    .connect = tls_connect,
    .io = tls_io,
    .flush = tls_flush,
    .next_timeout = tls_next_timeout,
    .on_timeout = tls_on_timeout,
    .shutdown = tls_shutdown,
    .free = tls_free,
    .info = tls_info,
};
