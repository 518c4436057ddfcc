/* siptls internal — SIP over DTLS 1.2 (RFC 6347) and 1.3 (RFC 9147) over UDP: what the
 * modules of the DTLS transport share (dtls_io.c, dtls_listener.c,
 * dtls_cookie.c, dtls_session.c, dtls_transport.c).
 *
 * One UDP socket per listener; datagrams are demultiplexed by their first
 * byte (RFC 7983: STUN or DTLS) and then by the peer's address into
 * sessions, as nginx turns one UDP socket into per-peer "connections".
 * Every WOLFSSL object talks to us through I/O callbacks, never to a
 * socket: the receive callback hands wolfSSL the one datagram just read
 * for it, the send callback queues the datagram in the engine's send queue,
 * which leaves with one sendmmsg() per socket at the end of the wakeup
 * (dtls_batch.c; listeners read with recvmmsg() there too).
 *
 * No per-peer state exists before the peer returned a valid cookie
 * (RFC 6347 §4.2.1): a ClientHello from an unknown address without a
 * cookie is answered by one shared "hello" WOLFSSL object with a
 * HelloVerifyRequest and forgotten; one with a cookie goes to a fresh
 * per-peer object that checks it (wolfDTLS_SetChGoodCb tells us it was
 * good) and only then becomes a flow. The recipe is in docs/dtls.md and
 * /work/shared/DESIGN.md ("DTLS cookies on wolfSSL 5.5.4").
 *
 * Sending: each queued SIP message goes out as one record when it fits
 * in dtls_mtu, else as several records sent back to back (consecutive
 * sequence numbers), the first holding the whole header block, which the
 * receiver's datagram framer reassembles by Content-Length. */
#ifndef SIPTLS_DTLS_TRANSPORT_H
#define SIPTLS_DTLS_TRANSPORT_H

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>

#include "dtls_internal.h"
#include "siptls/sipmsg.h"
#include "transport.h"

/* A UDP datagram is at most 65507 bytes. wolfSSL's receive callback is
 * asked for (read size + 500) bytes after the handshake, so reading
 * plaintext in steps of PLAIN_CAP lets any datagram through whole. */
#define RAW_CAP 65536
#define PLAIN_CAP (65536 - 512)
/* Datagrams read per wakeup, so one busy socket cannot starve the loop
 * (libev's level-triggered watcher calls us again). */
#define READS_PER_WAKEUP 64
/* Batched I/O (dtls_batch.c): datagrams per recvmmsg() on a listener, the
 * compact part of each one's buffer (larger datagrams continue in an
 * overflow area: none is ever cut), and the engine's send queue (datagrams,
 * bytes: at least one largest datagram). */
#define RX_BATCH 32
#define RX_SLOT 2048
#define TXQ_MAX 64
#define TXQ_BYTES (128 * 1024)
/* receive buffer of every DTLS socket (siptls__dtls_socket_buffers) */
#define DTLS_RCVBUF (2 << 20)
/* A full socket buffer: retry writing after this many ms. */
#define WRITE_RETRY_MS 5
#define COOKIE_SECRET_LEN 32
/* Fragmented ClientHello cache (see dtls_hello_cache.c). */
#define HELLO_CACHE_SLOTS 64
#define HELLO_MAX 4096
#define HELLO_EXPIRE_MS 2000
#define RATE_SLOTS 1024

/* siptls__dtls_map_error(): a record wolfSSL dropped (bad MAC, replay, out of
 * order): counted, the session goes on. Never leaves the transport. */
#define DTLS_DROPPED 1

typedef struct dtls_listener dtls_listener;
typedef struct dtls_session dtls_session;

/* What one WOLFSSL object's I/O callbacks work with. */
typedef struct dtls_io {
    siptls_engine *engine;
    int fd;                      /* -1 once the socket is gone */
    const struct sockaddr *peer; /* sendto() target; NULL: connected socket */
    socklen_t peer_len;
    /* wildcard listener: the address the peer sent to, our source address
     * (IP_PKTINFO); NULL: the kernel chooses */
    const struct sockaddr_storage *local;
    const uint8_t *rx; /* the datagram wolfSSL may read now; NULL: none */
    size_t rx_len;
    size_t send_cap;    /* hello object: the HelloVerifyRequest may not be larger */
    unsigned sent;      /* datagrams that left */
    uint8_t mute;       /* drop what wolfSSL sends (cookie not proven yet) */
    uint8_t hello_only; /* only a HelloVerifyRequest may leave */
    uint8_t blocked;    /* the socket buffer was full */
    uint8_t refused;    /* ICMP port unreachable on a connected socket */
    uint8_t oversize;   /* a datagram larger than wolfSSL's read was dropped */
    uint8_t whole;      /* the record being written holds one whole message: it may share a
                           datagram (dtls_batch.c); a piece of a split message never does */
} dtls_io;

struct dtls_listener {
    siptls__listener *l; /* NULL once the engine closed the listener */
    siptls_engine *engine;
    int fd;
    unsigned refs; /* the listener + its sessions (they share fd) */
    struct sockaddr_storage local;
    int pktinfo;                       /* bound to a wildcard address: learn each datagram's */
    struct sockaddr_storage cur_local; /* the local address of the datagram in hand */
    WOLFSSL *hello;                    /* answers ClientHellos of unknown peers; NULL: make anew */
    unsigned hello_gen;                /* siptls__listener_sec_gen() when `hello` was made */
    dtls_io hello_io;
    uint8_t secret[2][COOKIE_SECRET_LEN]; /* [0] current, [1] previous */
    int have_prev;
    uint64_t rotated_ms;
    siptls__dtls_ratelimit *rate;
    siptls__dtls_hello_cache *hellos;
    uint8_t whole[SIPTLS__DTLS_RECORD_HEADER + SIPTLS__DTLS_HS_HEADER + HELLO_MAX];
    dtls_session **table; /* sessions by peer address */
    size_t table_mask;
    /* Connection ID (RFC 9146, RFC 9147 §9): the length of the CIDs we give
     * our sessions (0: none); sessions by CID (same size as `table`) */
    size_t cid_len;
    dtls_session **cid_table;
    /* CID owner routing (dtls_route.c): this engine's tag on our CIDs (-1:
     * none); pass CID records with another tag to their engine (reuse_port) */
    int tag;
    int forward;
    struct route_seen *seen; /* forward: recent sources of forwarded datagrams */
    dtls_listener *lnext;    /* the engine's open listeners (dtls_shared) */
};

struct dtls_session {
    siptls__flow *f;
    dtls_listener *dl; /* inbound; NULL for outbound flows */
    WOLFSSL *ssl;
    dtls_io io;
    uint64_t retx_ms;        /* handshake retransmission due; 0 = none */
    uint64_t write_retry_ms; /* socket was full: write again then; 0 = none */
    size_t rec_space;        /* plaintext per record within dtls_mtu; 0 = not known yet */
    size_t cur_rec;          /* record to hand wolfSSL_write again after WANT_WRITE */
    uint8_t shutdown_sent;
    uint8_t shared_ref; /* outbound: holds a reference to the engine buffers */
    uint8_t undrained;  /* the last read stopped before WANT_READ: wolfSSL may hold records of an
                           older datagram */
    uint32_t hs_dg_len; /* length of the datagram that completed the handshake (0: unknown) */
    struct sockaddr_storage local; /* inbound on a wildcard listener: our address */
    /* inbound: the client random of the ClientHello that made this session
     * (a late duplicate of that hello is not a restart); has_random 0:
     * unknown. Kept here: wolfSSL frees its copy when the handshake ends. */
    uint8_t client_random[32];
    uint8_t has_random;
    uint8_t next_random[32]; /* the same for `next` */
    uint8_t next_has_random;
    /* RFC 6347 §4.2.8: a new handshake from the address of this session;
     * it replaces this one only when it completes. */
    WOLFSSL *next;
    dtls_io next_io;
    uint64_t next_retx_ms;
    uint64_t next_since_ms;
    dtls_session *tnext; /* listener table chain */
    /* Connection ID: ours (the peer puts it on its records to us) */
    uint8_t cid[SIPTLS__DTLS_CID_MAX];
    uint8_t cid_len;     /* 0: none (or not in the listener's CID table) */
    dtls_session *cnext; /* listener CID table chain */
    /* the newest record read (epoch << 48 | sequence number): a CID session
     * moves only on a record newer than this (RFC 9146 §6) */
    uint64_t rx_newest;
    uint8_t has_newest;
};

/* ------------------------------------------------------------------------ */
/* per-engine receive buffers                                               */
/* ------------------------------------------------------------------------ */

/* Raw datagrams and decrypted records are processed one at a time and
 * never kept (the framer copies what it keeps), so every DTLS socket of an
 * engine (its listeners and outbound sessions) shares two buffers instead
 * of holding 128 KiB each. They belong to the engine, not to a thread: an
 * engine may be created on one thread and run on another (one thread at a
 * time), and a buffer made on the creating thread would be out of reach of
 * the one that reads. Reference counted by the sockets (and by a test
 * filter): freed with the last of them, before the engine is freed. */
typedef struct dtls_rxbatch dtls_rxbatch;
typedef struct dtls_txq dtls_txq;
typedef struct dtls_shared {
    uint8_t *raw;     /* RAW_CAP: the datagram just read (outbound sockets) */
    uint8_t *plain;   /* PLAIN_CAP: the record just decrypted */
    dtls_rxbatch *rx; /* listeners' recvmmsg() batch; made with the first listener */
    dtls_txq *tx;     /* datagrams waiting for the end of the wakeup */
    unsigned refs;
    siptls__dtls_test_filter filter;
    void *filter_user;
    /* CID routing (dtls_route.c): the open listeners, where forwarded
     * datagrams go; the process-wide engine tag on our CIDs (-1: none) */
    dtls_listener *listeners;
    int tag;
} dtls_shared;

typedef struct emit_ctx {
    dtls_listener *dl;
    siptls__flow *f; /* outbound: stays readable (zombie) until the callback returns */
} emit_ctx;

/* dtls_io.c */
dtls_shared *siptls__dtls_shared_of(siptls_engine *e);
dtls_shared *siptls__dtls_shared_ref(siptls_engine *e);
void siptls__dtls_shared_unref(siptls_engine *e);
int siptls__dtls_map_error(siptls_engine *e, WOLFSSL *ssl, const dtls_io *io, int ret,
                           int handshake);
void siptls__dtls_setup_ssl(WOLFSSL *ssl, dtls_io *io);
/* After the handshake: wolfSSL's MTU from dtls_mtu (flights) to the
 * largest record siptls may write (dtls_io.c). */
void siptls__dtls_mtu_after_handshake(WOLFSSL *ssl, siptls_engine *e);
void siptls__dtls_free_ssl(WOLFSSL **ssl);
uint64_t siptls__dtls_retx_deadline(siptls_engine *e, WOLFSSL *ssl);
/* The record number of the record wolfSSL read last on `ssl` as the
 * framer's sequence number (epoch in the top 16 bits): 0 and *seq64 filled
 * when known (the bundled wolfSSL's shim), -1 when not. */
int siptls__dtls_last_record(WOLFSSL *ssl, uint64_t *seq64);
/* Records wolfSSL dropped on `ssl` so far (bad MAC + replayed), from its
 * drop counters (WOLFSSL_DTLS_DROP_STATS, the bundled build); 0 without. */
uint64_t siptls__dtls_drops(WOLFSSL *ssl);
/* The CID length of engine `e`'s sessions: dtls_cid_length when dtls_cid is
 * on and this build can use it (wolfSSL with DTLS 1.3 and CID, and the
 * record-number shim for the move rule); else 0. */
size_t siptls__dtls_cid_len(siptls_engine *e);
/* Offer/accept our CID `cid` (len bytes) on `ssl` before its handshake;
 * 0 when wolfSSL took it (a DTLS 1.3-capable object), -1 when not. */
int siptls__dtls_cid_offer(WOLFSSL *ssl, const uint8_t *cid, size_t len);
void siptls__dtls_dispatch(emit_ctx *ec, const dtls_shared *sh, int fd, const uint8_t *dg,
                           size_t len, const struct sockaddr *from, socklen_t from_len);

/* dtls_batch.c: recvmmsg() batches and the engine's send queue */
int siptls__dtls_rx_batch_ref(dtls_shared *sh);
void siptls__dtls_rx_batch_free(dtls_shared *sh);
/** Read up to `max` (<= RX_BATCH) datagrams from `fd`; returns how many,
 *  or -1 (errno; EAGAIN: none). */
int siptls__dtls_rx_batch_read(dtls_shared *sh, int fd, unsigned max, int want_pktinfo);
/** Datagram `i` of the last read, whole and contiguous (valid until the
 *  next read); `*trunc` says the kernel cut it (cannot happen: RAW_CAP). */
const uint8_t *siptls__dtls_rx_batch_get(dtls_shared *sh, unsigned i, size_t *len, int *trunc,
                                         const struct sockaddr **from, socklen_t *from_len,
                                         struct msghdr **mh);
/** Datagram `i` has been processed. */
void siptls__dtls_rx_batch_done(dtls_shared *sh, unsigned i);
int siptls__dtls_tx_new(dtls_shared *sh, unsigned mtu);
/** Queue a datagram (io_send); `whole`: it is one record holding one whole
 *  SIP message (only such records are packed together); `cid_len`: the
 *  length of the CID on DTLS 1.3 records to this peer (to find their length
 *  field). 0, or -1 when the queue is full and the
 *  sockets take nothing now (the caller returns WANT_WRITE). */
int siptls__dtls_tx_add(dtls_shared *sh, siptls_engine *e, int fd, const uint8_t *buf, size_t n,
                        const struct sockaddr *peer, socklen_t peer_len,
                        const struct sockaddr_storage *local, int whole, size_t cid_len);
/** The transport's wakeup_end op: send the queue. */
uint64_t siptls__dtls_wakeup_end(siptls_engine *e);
/** Socket `fd` is about to be closed: send its queued datagrams now (what
 *  it does not take is dropped), so none can leave on a reused fd. */
void siptls__dtls_tx_close_fd(siptls_engine *e, int fd);
void siptls__dtls_tx_free(dtls_shared *sh);

/* dtls_listener.c */
void siptls__dtls_table_add(dtls_listener *dl, dtls_session *s);
void siptls__dtls_table_del(dtls_listener *dl, dtls_session *s);
/* Connection ID: the session with our CID `cid` (dl->cid_len bytes); link
 * `s` by the CID its WOLFSSL object holds (when negotiable); unlink. */
dtls_session *siptls__dtls_cid_find(dtls_listener *dl, const uint8_t *cid);
void siptls__dtls_cid_adopt(dtls_listener *dl, dtls_session *s);
void siptls__dtls_cid_del(dtls_listener *dl, dtls_session *s);
/* A fresh random CID of dl->cid_len bytes no session of `dl` has; -1 when
 * none was found (then the session goes without). */
int siptls__dtls_cid_make(dtls_listener *dl, uint8_t *cid);
void siptls__dtls_listener_unref(dtls_listener *dl);
int siptls__dtls_answer_stun(siptls_engine *e, int fd, const uint8_t *dg, size_t len,
                             const struct sockaddr *from, socklen_t from_len, int connected,
                             const struct sockaddr_storage *local);
void siptls__dtls_listener_datagram(dtls_listener *dl, const uint8_t *dg, size_t len,
                                    const struct sockaddr *from, socklen_t from_len);
/* The same for a datagram another engine passed on (dtls_route.c): never
 * forwarded again. */
void siptls__dtls_listener_datagram_here(dtls_listener *dl, const uint8_t *dg, size_t len,
                                         const struct sockaddr *from, socklen_t from_len);
int siptls__dtls_listen(siptls__listener *l);
void siptls__dtls_listener_io(siptls__listener *l);
void siptls__dtls_listener_close(siptls__listener *l);

/* dtls_cookie.c */
int siptls__dtls_random_bytes(uint8_t *p, size_t n);
/** Give a DTLS socket (a listener's, or an outbound flow's) a receive
 *  buffer for bursts: DTLS_RCVBUF bytes, beyond net.core.rmem_max where
 *  the process may (SO_RCVBUFFORCE), else as much as the kernel allows. A
 *  trunk's hundreds of answers arrive back to back, and the kernel default
 *  (208 KiB, about 100 datagrams) dropped them. */
void siptls__dtls_socket_buffers(int fd);
void siptls__dtls_rotate_secret(dtls_listener *dl, uint64_t now);
void siptls__dtls_set_cookie_secret(WOLFSSL *ssl, const uint8_t *secret);
int siptls__dtls_make_hello_object(dtls_listener *dl);
void siptls__dtls_on_client_hello(dtls_listener *dl, const uint8_t *dg, size_t len,
                                  const siptls__dtls_scan *scan, const siptls__dtls_hello *h,
                                  const struct sockaddr *from, socklen_t from_len,
                                  dtls_session *existing);
void siptls__dtls_restart_step(dtls_session *s, const uint8_t *dg, size_t len);

/* dtls_session.c */
dtls_session *siptls__dtls_session_new(siptls_engine *e, int fd);
void siptls__dtls_set_local(dtls_session *s, const struct sockaddr_storage *local);
void siptls__dtls_handshake_done(dtls_session *s);
void siptls__dtls_session_datagram(dtls_session *s, const uint8_t *dg, size_t len,
                                   const siptls__dtls_scan *scan);
/* A datagram whose first record carries the CID of session `s` but comes
 * from another address than the flow's: read it; the flow moves there when
 * a record of it authenticates and is the newest (RFC 9146 §6). */
void siptls__dtls_session_datagram_from(dtls_session *s, const uint8_t *dg, size_t len,
                                        const siptls__dtls_scan *scan, const struct sockaddr *from,
                                        socklen_t from_len);
void siptls__dtls_emit_datagram(void *ctx, const uint8_t *dg, size_t len,
                                const struct sockaddr *from, socklen_t from_len);
void siptls__dtls_io_ready(siptls__flow *f, int revents);

/* dtls_route.c: CID records that reach another engine's socket of a shared port
 * (reuse_port). A listener joins/leaves its engine's list (the first CID
 * listener takes a process-wide tag, the last gives it back); mark puts the
 * tag on a fresh CID; forward posts a copy of a datagram whose CID has
 * another engine's `tag` to that engine: 0, or -1 when it could not (no engine
 * has the tag, its mailbox is full or closing, out of memory). */
void siptls__dtls_route_add(dtls_shared *sh, dtls_listener *dl);
void siptls__dtls_route_del(dtls_shared *sh, dtls_listener *dl);
void siptls__dtls_route_release(dtls_shared *sh);
void siptls__dtls_route_mark(const dtls_listener *dl, uint8_t *cid);
int siptls__dtls_route_forward(dtls_listener *dl, const uint8_t *dg, size_t len,
                               const struct sockaddr *from, socklen_t from_len, uint8_t tag);
/* The tag of the engine the last datagram from `from` was forwarded to
 * (a small cache), -1 when none: its STUN keepalives follow it. */
int siptls__dtls_route_recall(const dtls_listener *dl, const struct sockaddr *from);
/* dtls_transport.c */

#endif
