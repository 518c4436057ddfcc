/* siptls internal — the TLS transport's own pieces (tls/): a flow's TLS
 * state, the wolfSSL I/O callbacks and the one mapping of wolfSSL return
 * codes to statuses (tls_io.c); the ops (tls_transport.c). */
#ifndef SIPTLS_TLS_INTERNAL_H
#define SIPTLS_TLS_INTERNAL_H

#include <stdint.h>

#include <wolfssl/options.h>

#include <wolfssl/ssl.h>

#include "transport.h"

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
    uint8_t read_closed;  /* the peer's sending ended (FIN, TLS 1.3 close_notify): read no more */
    uint8_t drained;      /* the socket gave all it had in this wakeup */
    uint8_t eof;          /* recv() returned 0: the peer sent its FIN */
    uint8_t close_notify; /* the peer's close_notify arrived */
    uint8_t *rx;          /* bytes read from the socket, not yet given to wolfSSL */
    uint32_t rx_off, rx_len;
    int rx_errno; /* errno of a failed recv()/send(), for tls_status */
} tls_flow;

/** Give the flow its TLS state around `ssl` (on its fd, our I/O
 *  callbacks). SIPTLS_OK, or SIPTLS_ERR_NOMEM (`ssl` freed). */
int tls_attach(siptls__flow *f, WOLFSSL *ssl);

/** The one place wolfSSL return codes become statuses: SIPTLS_AGAIN for
 *  want-read/write, else the reason the flow ends. `handshake`: the error
 *  came from wolfSSL_accept/connect. */
int tls_status(siptls__flow *f, WOLFSSL *ssl, int ret, int handshake);

/** Release the receive buffer once wolfSSL has taken every byte. */
void tls_rx_release(tls_flow *t);

#endif
