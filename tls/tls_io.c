/* siptls — TLS transport: wolfSSL's I/O callbacks on the flow's socket, and
 * the one mapping of wolfSSL return codes to siptls statuses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>

#include "tls_internal.h"

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

void tls_rx_release(tls_flow *t)
{
    if (t->rx != NULL && t->rx_off == t->rx_len) {
        free(t->rx);
        t->rx = NULL;
        t->rx_off = t->rx_len = 0;
    }
}

int tls_attach(siptls__flow *f, WOLFSSL *ssl)
{
    tls_flow *t = calloc(1, sizeof(*t));
    if (t == NULL || ssl == NULL) {
        free(t);
        if (ssl != NULL) {
            wolfSSL_free(ssl);
        }
        return SIPTLS_ERR_NOMEM;
    }
    int fd = siptls__flow_fd(f);
    wolfSSL_set_fd(ssl, fd);
    wolfSSL_SSLSetIORecv(ssl, rx_cb);
    wolfSSL_SetIOReadCtx(ssl, t);
    wolfSSL_SSLSetIOSend(ssl, tx_cb);
    wolfSSL_SetIOWriteCtx(ssl, t);
    wolfSSL_set_using_nonblock(ssl, 1);
    t->ssl = ssl;
    t->fd = fd;
    siptls__flow_set_tp(f, t);
    return SIPTLS_OK;
}

int tls_status(siptls__flow *f, WOLFSSL *ssl, int ret, int handshake)
{
    int err = wolfSSL_get_error(ssl, ret);
    tls_flow *t = siptls__flow_tp(f);
    char name[96];
    /* The peer ended the flow with a fatal alert: the alert says why (a
     * server refusing our certificate or its absence, no common version
     * or cipher...), so it is the reason, whatever error wolfSSL reports
     * after it. */
    int st = err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE
                 ? siptls__peer_alert_status(ssl)
                 : 0;
    if (st != 0) {
        siptls__log(siptls__flow_engine(f), SIPTLS_LOG_INFO, "%s: %s",
                    siptls__flow_name(f, name, sizeof(name)), siptls_strerror(st));
        return st;
    }
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ:
    case WOLFSSL_ERROR_WANT_WRITE:
        return SIPTLS_AGAIN;
    case WOLFSSL_ERROR_ZERO_RETURN:
        if (t != NULL) {
            t->close_notify = 1;
        }
        return SIPTLS_ERR_PEER_CLOSED;
    case SOCKET_PEER_CLOSED_E:
        /* wolfSSL says "peer closed" for a FIN and for a reset alike. */
        if (t != NULL && (t->rx_errno == ECONNRESET || t->rx_errno == EPIPE)) {
            return SIPTLS_ERR_RESET;
        }
        return handshake ? SIPTLS_ERR_HANDSHAKE : SIPTLS_ERR_PEER_CLOSED;
    case WOLFSSL_ERROR_SYSCALL:
        /* wolfSSL 5.7 reports a socket error or the peer's FIN this way
         * (OpenSSL's SSL_ERROR_SYSCALL); 5.5.4 gave the two errors below. */
        if (t != NULL && (t->rx_errno == ECONNRESET || t->rx_errno == EPIPE)) {
            return SIPTLS_ERR_RESET;
        }
        if (t != NULL && t->eof) {
            return SIPTLS_ERR_PEER_CLOSED;
        }
        return SIPTLS_ERR_IO;
    case SOCKET_ERROR_E: {
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
    if (!handshake && !siptls__flow_outbound(f) && wolfSSL_version(ssl) == TLS1_2_VERSION &&
        (err == DUPLICATE_MSG_E || err == OUT_OF_ORDER_E)) {
        return SIPTLS_ERR_RENEGOTIATION;
    }
    if (handshake) {
        char buf[WOLFSSL_MAX_ERROR_SZ];
        const char *hint = siptls__handshake_hint(err);
        siptls__log(siptls__flow_engine(f), SIPTLS_LOG_INFO, "%s: handshake failed: %s (%d)%s%s",
                    siptls__flow_name(f, name, sizeof(name)),
                    wolfSSL_ERR_error_string((unsigned long)err, buf), err, *hint ? ": " : "",
                    hint);
        return siptls__handshake_status(err);
    }
    return SIPTLS_ERR_TLS;
}
