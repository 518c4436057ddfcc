/* siptls — SIP over DTLS 1.2 over UDP (RFC 6347).
 *
 * One UDP socket per listener; datagrams are demultiplexed by their first
 * byte (RFC 7983: STUN or DTLS) and then by the peer's address into
 * sessions, as nginx turns one UDP socket into per-peer "connections".
 * Every WOLFSSL object talks to us through I/O callbacks, never to a
 * socket: the receive callback hands wolfSSL the one datagram just read
 * for it, the send callback does sendto() on the listener's socket (or
 * send() on the connected socket of an outbound flow).
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
#include "engine_internal.h"
#include "sipmsg/splitter_dgram.h"

/* A UDP datagram is at most 65507 bytes. wolfSSL's receive callback is
 * asked for (read size + 500) bytes after the handshake, so reading
 * plaintext in steps of PLAIN_CAP lets any datagram through whole. */
#define RAW_CAP 65536
#define PLAIN_CAP (65536 - 512)
/* Datagrams read per wakeup, so one busy socket cannot starve the loop
 * (libev's level-triggered watcher calls us again). */
#define READS_PER_WAKEUP 64
/* A full socket buffer: retry writing after this many ms. */
#define WRITE_RETRY_MS 5
#define COOKIE_SECRET_LEN 32
/* Fragmented ClientHello cache (see dtls_hello_cache.c). */
#define HELLO_CACHE_SLOTS 64
#define HELLO_MAX 4096
#define HELLO_EXPIRE_MS 2000
#define RATE_SLOTS 1024

/* map_error(): a record wolfSSL dropped (bad MAC, replay, out of
 * order): counted, the session goes on. Never leaves this file. */
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
    dtls_io hello_io;
    uint8_t secret[2][COOKIE_SECRET_LEN]; /* [0] current, [1] previous */
    int have_prev;
    uint64_t rotated_ms;
    siptls__dtls_ratelimit *rate;
    siptls__dtls_hello_cache *hellos;
    uint8_t whole[SIPTLS__DTLS_RECORD_HEADER + SIPTLS__DTLS_HS_HEADER + HELLO_MAX];
    dtls_session **table; /* sessions by peer address */
    size_t table_mask;
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
    uint8_t shared_ref;      /* outbound: holds a reference to the engine buffers */
    uint8_t undrained;       /* the last read stopped before WANT_READ: wolfSSL may hold records of an older datagram */
    uint32_t hs_dg_len;      /* length of the datagram that completed the handshake (0: unknown) */
    struct sockaddr_storage local; /* inbound on a wildcard listener: our address */
    /* RFC 6347 §4.2.8: a new handshake from the address of this session;
     * it replaces this one only when it completes. */
    WOLFSSL *next;
    dtls_io next_io;
    uint64_t next_retx_ms;
    uint64_t next_since_ms;
    dtls_session *tnext; /* listener table chain */
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
typedef struct dtls_shared {
    uint8_t *raw;   /* RAW_CAP: the datagram just read */
    uint8_t *plain; /* PLAIN_CAP: the record just decrypted */
    unsigned refs;
    siptls__dtls_test_filter filter;
    void *filter_user;
} dtls_shared;

static dtls_shared *shared_of(siptls_engine *e)
{
    return *siptls__engine_tp_shared(e, SIPTLS_TRANSPORT_DTLS);
}

static dtls_shared *shared_ref(siptls_engine *e)
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
        if (sh->raw == NULL || sh->plain == NULL) {
            free(sh->raw);
            free(sh->plain);
            free(sh);
            return NULL;
        }
        *slot = sh;
    }
    sh->refs++;
    return sh;
}

static void shared_unref(siptls_engine *e)
{
    void **slot = siptls__engine_tp_shared(e, SIPTLS_TRANSPORT_DTLS);
    dtls_shared *sh = *slot;
    if (sh != NULL && --sh->refs == 0) {
        free(sh->raw);
        free(sh->plain);
        free(sh);
        *slot = NULL;
    }
}

int siptls__dtls_test_set_filter(siptls_engine *e, siptls__dtls_test_filter fn, void *user)
{
    dtls_shared *sh = shared_of(e);
    int had = sh != NULL && sh->filter != NULL;
    if (fn != NULL && !had) {
        sh = shared_ref(e); /* the filter holds a reference */
        if (sh == NULL) {
            return SIPTLS_ERR_NOMEM;
        }
    }
    if (sh != NULL) {
        sh->filter = fn;
        sh->filter_user = user;
    }
    if (fn == NULL && had) {
        shared_unref(e);
    }
    return SIPTLS_OK;
}

/* ------------------------------------------------------------------------ */
/* wolfSSL glue                                                             */
/* ------------------------------------------------------------------------ */

static siptls_stats *stats(siptls_engine *e)
{
    return siptls__engine_stats_mut(e);
}

/* The one place wolfSSL return codes become siptls statuses. */
static int map_error(siptls_engine *e, WOLFSSL *ssl, const dtls_io *io, int ret, int handshake)
{
    int err = wolfSSL_get_error(ssl, ret);
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
        if (io != NULL && io->refused) {
            return SIPTLS_ERR_CONNECT;
        }
        return handshake ? SIPTLS_ERR_HANDSHAKE : SIPTLS_ERR_IO;
    default:
        break;
    }
    if (handshake) {
        char buf[WOLFSSL_MAX_ERROR_SZ];
        siptls__log(e, SIPTLS_LOG_INFO, "dtls handshake failed: %s (%d)",
                    wolfSSL_ERR_error_string((unsigned long)err, buf), err);
        return siptls__secctx_classify_error(err);
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

/* Send one datagram: on a connected socket (`peer` NULL), to `peer`, or
 * to `peer` from the source address `local` (a wildcard listener must
 * answer from the address the peer sent to, or a peer with a connected
 * socket drops the answer: IP_PKTINFO / IPV6_PKTINFO). */
static ssize_t send_dgram(int fd, const void *buf, size_t n, const struct sockaddr *peer,
                          socklen_t peer_len, const struct sockaddr_storage *local)
{
    if (peer == NULL) {
        return send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    if (local == NULL) {
        return sendto(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL, peer, peer_len);
    }
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } cb;
    memset(&cb, 0, sizeof(cb));
    struct iovec iov = {(void *)buf, n};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_name = (void *)peer;
    mh.msg_namelen = peer_len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cb.buf;
    struct cmsghdr *c = &cb.align;
    if (local->ss_family == AF_INET) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        mh.msg_controllen = CMSG_SPACE(sizeof(pi));
    } else {
        const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)local;
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi6_addr = l6->sin6_addr;
        pi.ipi6_ifindex = l6->sin6_scope_id;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        mh.msg_controllen = CMSG_SPACE(sizeof(pi));
    }
    return sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
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
    ssize_t n = send_dgram(io->fd, buf, (size_t)sz, io->peer, io->peer_len, io->local);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
            io->blocked = 1;
            return WOLFSSL_CBIO_ERR_WANT_WRITE;
        }
        if (errno == EINTR) {
            return WOLFSSL_CBIO_ERR_ISR;
        }
        if (errno == ECONNREFUSED) {
            io->refused = 1;
        }
        /* Anything else (no route, message too long): UDP loses the
         * datagram; DTLS retransmission or the peer's copes. */
        return sz;
    }
    io->sent++;
    return sz;
}

/* Common set-up of every WOLFSSL object of this transport. */
static void setup_ssl(WOLFSSL *ssl, dtls_io *io)
{
    wolfSSL_SSLSetIORecv(ssl, io_recv);
    wolfSSL_SSLSetIOSend(ssl, io_send);
    wolfSSL_SetIOReadCtx(ssl, io);
    wolfSSL_SetIOWriteCtx(ssl, io);
    /* Our callbacks say WANT_READ when no datagram is there: that is not a
     * timeout, we drive retransmissions ourselves. */
    wolfSSL_dtls_set_using_nonblock(ssl, 1);
}

static void free_ssl(WOLFSSL **ssl)
{
    if (*ssl != NULL) {
        wolfSSL_free(*ssl);
        *ssl = NULL;
    }
}

/* wolfSSL 5.5.4 counts DTLS retransmission timeouts in seconds. */
static uint64_t retx_deadline(siptls_engine *e, WOLFSSL *ssl)
{
    int t = wolfSSL_dtls_get_current_timeout(ssl);
    return siptls__engine_now(e) + (uint64_t)(t > 0 ? t : 1) * 1000;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    siptls__addr_text(sa, buf, len);
}

/* ------------------------------------------------------------------------ */
/* cookie secrets                                                           */
/* ------------------------------------------------------------------------ */

static int random_bytes(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Every WOLFSSL object must use the same secret, or a fresh object would
 * answer a good cookie with a second HelloVerifyRequest. A secret lives
 * dtls_cookie_lifetime seconds as the current one and one more period as
 * the previous one, so a cookie stays good for at least one period. */
static void rotate_secret(dtls_listener *dl, uint64_t now)
{
    const siptls_config *c = siptls__engine_config(dl->engine);
    uint64_t life = (uint64_t)(c->dtls_cookie_lifetime ? c->dtls_cookie_lifetime : 60) * 1000;
    if (now - dl->rotated_ms < life) {
        return;
    }
    uint8_t fresh[COOKIE_SECRET_LEN];
    if (random_bytes(fresh, sizeof(fresh)) != 0) {
        return; /* keep the old one: it is still a secret */
    }
    /* Secrets change on a fixed grid (listen time + k periods), checked
     * when datagrams arrive: a secret is current for one period and
     * previous for the next, whatever the traffic, so a cookie is good for
     * more than one and at most two periods. */
    uint64_t periods = (now - dl->rotated_ms) / life;
    memcpy(dl->secret[1], dl->secret[0], COOKIE_SECRET_LEN);
    memcpy(dl->secret[0], fresh, COOKIE_SECRET_LEN);
    dl->have_prev = periods == 1;
    dl->rotated_ms += periods * life;
    if (dl->hello != NULL) {
        wolfSSL_DTLS_SetCookieSecret(dl->hello, dl->secret[0], COOKIE_SECRET_LEN);
    }
}

/* ------------------------------------------------------------------------ */
/* the listener's session table                                             */
/* ------------------------------------------------------------------------ */

/* Peers are compared and hashed the engine's way (family, port, address). */
#define same_addr siptls__addr_equal
#define addr_hash siptls__addr_hash

/* The listener keeps its own map of inbound sessions: the engine's
 * by-address lookup may also return an outbound flow to the same address
 * (a peer that sends from its listening port), which is not ours. */
static dtls_session *table_find(dtls_listener *dl, const struct sockaddr *sa)
{
    for (dtls_session *s = dl->table[addr_hash(sa) & dl->table_mask]; s != NULL; s = s->tnext) {
        if (same_addr((struct sockaddr *)&s->f->remote, sa)) {
            return s;
        }
    }
    return NULL;
}

static void table_add(dtls_listener *dl, dtls_session *s)
{
    size_t b = addr_hash((struct sockaddr *)&s->f->remote) & dl->table_mask;
    s->tnext = dl->table[b];
    dl->table[b] = s;
}

static void table_del(dtls_listener *dl, dtls_session *s)
{
    size_t b = addr_hash((struct sockaddr *)&s->f->remote) & dl->table_mask;
    for (dtls_session **pp = &dl->table[b]; *pp != NULL; pp = &(*pp)->tnext) {
        if (*pp == s) {
            *pp = s->tnext;
            return;
        }
    }
}

static void listener_unref(dtls_listener *dl)
{
    if (--dl->refs != 0) {
        return;
    }
    free_ssl(&dl->hello);
    if (dl->fd >= 0) {
        close(dl->fd);
    }
    siptls__dtls_ratelimit_free(dl->rate);
    siptls__dtls_hello_cache_free(dl->hellos);
    free(dl->table);
    siptls_engine *e = dl->engine;
    free(dl);
    shared_unref(e);
}

/* ------------------------------------------------------------------------ */
/* sessions                                                                 */
/* ------------------------------------------------------------------------ */

static dtls_session *session_new(siptls_engine *e, int fd)
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
static void set_local(dtls_session *s, const struct sockaddr_storage *local)
{
    if (s->dl == NULL || !s->dl->pktinfo) {
        return;
    }
    memcpy(&s->local, local, sizeof(s->local));
    s->io.local = &s->local;
    s->next_io.local = &s->local;
    siptls__flow *f = s->f;
    f->local_len =
        local->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    memcpy(&f->local, local, f->local_len);
}

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

static void read_records(dtls_session *s, const uint8_t *dg, size_t len,
                         const siptls__dtls_scan *scan);

/* Check the peer, report the flow up, drain what came with the Finished. */
static void handshake_done(dtls_session *s)
{
    siptls__flow *f = s->f;
    s->retx_ms = 0;
    siptls_flow_info info;
    memset(&info, 0, sizeof(info));
    siptls__secctx *sec = siptls__engine_secctx(f->engine, SIPTLS_TRANSPORT_DTLS);
    int st = sec ? siptls__secctx_peer_check(sec, s->ssl, !f->outbound, f->sip_domain, &info)
                 : SIPTLS_ERR_CERT;
    if (st != SIPTLS_OK) {
        char text[64];
        addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
        siptls__log(f->engine, SIPTLS_LOG_WARN, "dtls flow %llu %s: %s", (unsigned long long)f->id,
                    text, siptls_strerror(st));
        /* Tell the peer, or its session lingers until it expires. */
        wolfSSL_shutdown(s->ssl);
        siptls__flow_fail(f, st, 0);
        return;
    }
    if (f->fd >= 0) {
        siptls__flow_want(f, SIPTLS__IO_READ);
    }
    f->resumed = wolfSSL_session_reused(s->ssl) == 1;
    siptls__flow_up(f);
    if (f->phase != SIPTLS__PHASE_UP) {
        return;
    }
    /* The peer may have sent application data in the datagram that held
     * its Finished: wolfSSL holds it already. */
    read_records(s, NULL, 0, NULL);
}

/* Drive the handshake with the datagram `dg` (NULL: none, just resume). */
static void handshake_step(dtls_session *s, const uint8_t *dg, size_t len)
{
    siptls__flow *f = s->f;
    s->hs_dg_len = dg != NULL && len < (size_t)PLAIN_CAP ? (uint32_t)len : 0;
    s->io.rx = dg;
    s->io.rx_len = len;
    s->io.oversize = 0;
    int ret = f->outbound ? wolfSSL_connect(s->ssl) : wolfSSL_accept(s->ssl);
    s->io.rx = NULL;
    if (s->io.oversize) {
        stats(f->engine)->dtls_bad_records++;
    }
    if (ret == WOLFSSL_SUCCESS) {
        handshake_done(s);
        return;
    }
    int st = map_error(f->engine, s->ssl, &s->io, ret, 1);
    if (st == SIPTLS_AGAIN || st == DTLS_DROPPED) {
        s->retx_ms = retx_deadline(f->engine, s->ssl);
        siptls__flow_rearm(f);
        return;
    }
    /* wolfSSL does not always send an alert when it fails a handshake
     * (e.g. no client certificate where one is required); over UDP the
     * peer would then wait for its handshake timeout. */
    wolfSSL_shutdown(s->ssl);
    siptls__flow_fail(f, st, 0);
}

/* Feed one decrypted record to the flow's datagram framer and deliver
 * what it produces. Returns -1 when the flow must not be read further. */
static int feed_record(siptls__flow *f, const uint8_t *p, size_t n, uint64_t seq)
{
    siptls_engine *e = f->engine;
    siptls_dgram_framer *fr = f->framer.dgram;
    uint64_t dropped = siptls_dgram_framer_dropped(fr);
    siptls_frame_event ev;
    int st = siptls_dgram_framer_feed(fr, p, n, seq, siptls__engine_now(e), &ev);
    uint64_t lost = siptls_dgram_framer_dropped(fr) - dropped;
    if (lost != 0) {
        stats(e)->dtls_reasm_lost += lost;
    }
    if (st == SIPTLS_OK) {
        return siptls__flow_deliver(f, &ev);
    }
    if (st != SIPTLS_AGAIN && st != SIPTLS_ERR_FRAME_LOST && st != SIPTLS_ERR_FRAME_TIMEOUT &&
        st != SIPTLS_ERR_FRAME_CHUNKS) {
        /* A malformed record is dropped; on a datagram transport the next
         * one starts afresh, so the session stays (unlike TLS). */
        stats(e)->drop_framing++;
        if (st == SIPTLS_ERR_FRAME_TOO_BIG || st == SIPTLS_ERR_FRAME_HDR_TOO_BIG) {
            stats(e)->drop_too_big++;
        }
        char text[64];
        addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
        siptls__log(e, SIPTLS_LOG_DEBUG, "dtls flow %llu %s: record dropped: %s",
                    (unsigned long long)f->id, text, siptls_strerror(st));
    }
    return 0;
}

/* An established session: decrypt what `dg` holds (NULL: only what
 * wolfSSL buffered) and deliver it. */
static void read_records(dtls_session *s, const uint8_t *dg, size_t len,
                         const siptls__dtls_scan *scan)
{
    siptls__flow *f = s->f;
    siptls_engine *e = f->engine;
    /* The framer checks that continuation records are consecutive; we only
     * know a record's number when it is the datagram's only record. */
    uint64_t seq = SIPTLS_DGRAM_SEQ_UNKNOWN;
    unsigned expect = 0;
    if (scan != NULL) {
        expect = scan->n_appdata;
        if (scan->n_records == 1 && scan->n_appdata == 1) {
            seq = siptls__dtls_record_seq64(&scan->appdata);
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
    uint8_t *plain = shared_of(e)->plain; /* held by this wakeup */
    unsigned got = 0;
    int st = SIPTLS_AGAIN;
    for (;;) {
        int n = wolfSSL_read(s->ssl, plain, cap);
        if (n > 0) {
            got++;
            siptls__flow_activity(f, (size_t)n);
            if (feed_record(f, plain, (size_t)n, seq) != 0) {
                /* The host closed the flow from its callback, or shut the
                 * engine down: then the session is already freed (the
                 * flow itself lives until the callback returns). */
                if (f->phase != SIPTLS__PHASE_CLOSED) {
                    s->io.rx = NULL;
                    s->undrained = 1;
                }
                return;
            }
            continue;
        }
        st = map_error(e, s->ssl, &s->io, n, 0);
        break;
    }
    s->io.rx = NULL;
    s->undrained = st != SIPTLS_AGAIN;
    if (s->io.oversize || (got < expect)) {
        /* Records wolfSSL discarded: bad MAC, replayed, or too large. */
        stats(e)->dtls_bad_records += s->io.oversize ? 1 : expect - got;
    }
    if (st == SIPTLS_AGAIN || st == DTLS_DROPPED) {
        if (st == DTLS_DROPPED && got >= expect) {
            stats(e)->dtls_bad_records++;
        }
        siptls__flow_rearm(f);
        return;
    }
    if (st == SIPTLS_ERR_PEER_CLOSED) {
        char text[64];
        addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
        siptls__log(e, SIPTLS_LOG_DEBUG, "dtls flow %llu %s: close_notify from peer",
                    (unsigned long long)f->id, text);
    }
    siptls__flow_fail(f, st, 0);
}

/* ------------------------------------------------------------------------ */
/* ClientHellos from unknown peers (and from restarted ones)                */
/* ------------------------------------------------------------------------ */

static int make_hello_object(dtls_listener *dl)
{
    if (dl->hello != NULL) {
        return SIPTLS_OK;
    }
    siptls__secctx *sec = siptls__engine_secctx(dl->engine, SIPTLS_TRANSPORT_DTLS);
    dl->hello = sec ? siptls__secctx_server_ssl(sec, (struct sockaddr *)&dl->local) : NULL;
    if (dl->hello == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    setup_ssl(dl->hello, &dl->hello_io);
    wolfSSL_DTLS_SetCookieSecret(dl->hello, dl->secret[0], COOKIE_SECRET_LEN);
    return SIPTLS_OK;
}

/* Stateless: answer a ClientHello with a HelloVerifyRequest. */
static void send_hello_verify(dtls_listener *dl, const uint8_t *dg, size_t len,
                              const struct sockaddr *from, socklen_t from_len)
{
    if (make_hello_object(dl) != SIPTLS_OK) {
        return;
    }
    dtls_io *io = &dl->hello_io;
    io->peer = from;
    io->peer_len = from_len;
    io->local = dl->pktinfo ? &dl->cur_local : NULL;
    io->rx = dg;
    io->rx_len = len;
    io->send_cap = len;
    io->sent = 0;
    io->oversize = 0;
    /* RFC 6347 §4.2.1: "the server MAY respond with a HelloVerifyRequest
     * message. This message contains a stateless cookie"; wolfSSL computes
     * it over the address we set here (the cookie's only address binding). */
    wolfSSL_dtls_set_peer(dl->hello, (void *)from, (unsigned)from_len);
    wolfSSL_accept(dl->hello);
    io->rx = NULL;
    io->peer = NULL;
    if (io->sent == 1) {
        stats(dl->engine)->dtls_cookies_sent++;
        /* wolfSSL_clear is safe after a clean HelloVerifyRequest only. */
        if (wolfSSL_clear(dl->hello) == WOLFSSL_SUCCESS) {
            setup_ssl(dl->hello, io);
            wolfSSL_DTLS_SetCookieSecret(dl->hello, dl->secret[0], COOKIE_SECRET_LEN);
            return;
        }
    } else {
        stats(dl->engine)->dtls_bad_records++;
    }
    free_ssl(&dl->hello);
}

typedef struct probe {
    dtls_listener *dl;
    dtls_session *s; /* the session being born, or the one restarting */
    dtls_io *io;
    int restart;
    const struct sockaddr *from;
    socklen_t from_len;
    const uint8_t *random; /* the hello's client random (32 bytes), NULL: unknown */
    int good;
    int refused;
} probe;

/* wolfSSL checked the cookie and it was good: the peer's address is
 * proven. Decide whether we take the handshake on (rate limit, session
 * limit) before wolfSSL spends a key exchange and a signature on it. */
static int cookie_good(WOLFSSL *ssl, void *arg)
{
    (void)ssl;
    probe *p = arg;
    dtls_listener *dl = p->dl;
    siptls_engine *e = dl->engine;
    p->good = 1;
    if (!siptls__dtls_ratelimit_allow(dl->rate, p->from, p->random, siptls__engine_now(e))) {
        stats(e)->dtls_rate_limited++;
        p->refused = 1;
        return -1;
    }
    if (!p->restart) {
        siptls__flow *f = siptls__flow_new_inbound(e, dl->l, -1, p->from, p->from_len);
        if (f == NULL) {
            p->refused = 1;
            return -1;
        }
        dtls_session *s = p->s;
        s->f = f;
        s->dl = dl;
        dl->refs++;
        s->io.peer = (struct sockaddr *)&f->remote;
        s->io.peer_len = f->remote_len;
        s->next_io.peer = s->io.peer;
        s->next_io.peer_len = s->io.peer_len;
        set_local(s, &dl->cur_local);
        f->tp = s;
        table_add(dl, s);
    }
    p->io->mute = 0;
    return 0;
}

/* Try the cookie of `dg` with the current, then the previous secret, on a
 * fresh object bound to `from`. Returns the object when the cookie was
 * good (*p filled), else NULL. */
static WOLFSSL *probe_hello(probe *p, const uint8_t *dg, size_t len, int *ret_out)
{
    dtls_listener *dl = p->dl;
    siptls__secctx *sec = siptls__engine_secctx(dl->engine, SIPTLS_TRANSPORT_DTLS);
    if (sec == NULL) {
        return NULL;
    }
    for (int k = 0; k < (dl->have_prev ? 2 : 1); k++) {
        WOLFSSL *ssl = siptls__secctx_server_ssl(sec, (struct sockaddr *)&dl->cur_local);
        if (ssl == NULL) {
            return NULL;
        }
        dtls_io *io = p->io;
        if (dl->pktinfo && !p->restart) {
            io->local = &dl->cur_local; /* until the session has its own copy */
        }
        setup_ssl(ssl, io);
        wolfSSL_DTLS_SetCookieSecret(ssl, dl->secret[k], COOKIE_SECRET_LEN);
        /* The exact sockaddr bytes the hello object used for the cookie. */
        wolfSSL_dtls_set_peer(ssl, (void *)p->from, (unsigned)p->from_len);
        wolfDTLS_SetChGoodCb(ssl, cookie_good, p);
        /* Until the cookie is proven good the object must stay silent: a
         * bad cookie would make it send its own HelloVerifyRequest. */
        io->mute = 1;
        io->rx = dg;
        io->rx_len = len;
        io->oversize = 0;
        if (io->peer == NULL) {
            io->peer = p->from;
            io->peer_len = p->from_len;
        }
        int ret = wolfSSL_accept(ssl);
        io->rx = NULL;
        if (p->good) {
            wolfDTLS_SetChGoodCb(ssl, NULL, NULL);
            if (p->refused) {
                wolfSSL_free(ssl);
                return NULL;
            }
            *ret_out = ret;
            return ssl;
        }
        wolfSSL_free(ssl);
    }
    return NULL;
}

static void on_client_hello(dtls_listener *dl, const uint8_t *dg, size_t len,
                            const siptls__dtls_scan *scan, const siptls__dtls_hello *h,
                            const struct sockaddr *from, socklen_t from_len,
                            dtls_session *existing);

/* Fragments of a ClientHello: wolfSSL's stateless path drops them, so we
 * put the hello together and go on with one unfragmented record. */
static void on_hello_fragment(dtls_listener *dl, const siptls__dtls_scan *scan,
                              const siptls__dtls_hello *h, const struct sockaddr *from,
                              socklen_t from_len, dtls_session *existing)
{
    siptls_engine *e = dl->engine;
    size_t wl = 0;
    int r = siptls__dtls_hello_cache_add(dl->hellos, from, from_len, &scan->first, h,
                                         siptls__engine_now(e), dl->whole, sizeof(dl->whole), &wl);
    if (r <= 0) {
        if (r < 0) {
            stats(e)->dtls_bad_records++;
        }
        return;
    }
    siptls__dtls_scan whole_scan;
    siptls__dtls_hello wh;
    if (siptls__dtls_scan_datagram(dl->whole, wl, &whole_scan) != 0 ||
        !siptls__dtls_is_client_hello(&whole_scan, &wh) || wh.fragmented) {
        stats(e)->dtls_bad_records++;
        return;
    }
    on_client_hello(dl, dl->whole, wl, &whole_scan, &wh, from, from_len, existing);
}

static void restart_step(dtls_session *s, const uint8_t *dg, size_t len);

static void on_client_hello(dtls_listener *dl, const uint8_t *dg, size_t len,
                            const siptls__dtls_scan *scan, const siptls__dtls_hello *h,
                            const struct sockaddr *from, socklen_t from_len, dtls_session *existing)
{
    siptls_engine *e = dl->engine;
    if (h->fragmented) {
        on_hello_fragment(dl, scan, h, from, from_len, existing);
        return;
    }
    if (scan->n_records != 1) {
        stats(e)->dtls_bad_records++;
        return;
    }
    if (existing != NULL && h->frag_len >= 2 + 32) {
        /* A late duplicate of the hello that made this session (the
         * network duplicated it) carries the session's client random: it
         * is not a restart. */
        uint8_t random[32];
        if (wolfSSL_get_client_random(existing->ssl, random, sizeof(random)) == sizeof(random) &&
            memcmp(random, h->frag + 2, sizeof(random)) == 0) {
            stats(e)->dtls_bad_records++;
            return;
        }
    }
    if (h->cookie_len == 0) {
        send_hello_verify(dl, dg, len, from, from_len);
        return;
    }
    if (dl->l == NULL) {
        return;
    }
    probe p;
    memset(&p, 0, sizeof(p));
    p.dl = dl;
    p.from = from;
    p.from_len = from_len;
    /* ClientHello: client_version(2) random(32) ...; a retransmission
     * carries the same random (the rate limit serves it first). */
    p.random = h->frag_len >= 2 + 32 ? h->frag + 2 : NULL;
    int ret = 0;
    if (existing != NULL) {
        /* RFC 6347 §4.2.8: "it SHOULD proceed with a new handshake but
         * MUST NOT destroy the existing association until the client has
         * demonstrated reachability either by completing a cookie exchange
         * or by completing a complete handshake including delivering a
         * verifiable Finished message". We wait for the Finished. */
        p.s = existing;
        p.restart = 1;
        p.io = &existing->next_io;
        free_ssl(&existing->next);
        WOLFSSL *ssl = probe_hello(&p, dg, len, &ret);
        if (ssl == NULL) {
            if (!p.good) {
                stats(e)->dtls_cookie_bad++;
                send_hello_verify(dl, dg, len, from, from_len);
            }
            return;
        }
        existing->next = ssl;
        existing->next_since_ms = siptls__engine_now(e);
        restart_step(existing, NULL, 0);
        return;
    }
    dtls_session *s = session_new(e, dl->fd);
    if (s == NULL) {
        return;
    }
    p.s = s;
    p.io = &s->io;
    WOLFSSL *ssl = probe_hello(&p, dg, len, &ret);
    if (ssl == NULL) {
        free(s);
        if (!p.good) {
            stats(e)->dtls_cookie_bad++;
            send_hello_verify(dl, dg, len, from, from_len);
        }
        return;
    }
    /* The flow exists since cookie_good(); the handshake goes on. */
    s->ssl = ssl;
    siptls__flow *f = s->f;
    if (ret == WOLFSSL_SUCCESS) {
        handshake_done(s);
        return;
    }
    int st = map_error(e, ssl, &s->io, ret, 1);
    if (st != SIPTLS_AGAIN && st != DTLS_DROPPED) {
        wolfSSL_shutdown(ssl);
        siptls__flow_fail(f, st, 0);
        return;
    }
    s->retx_ms = retx_deadline(e, ssl);
    siptls__flow_rearm(f);
}

/* A restarted peer's handshake failed: it has no flow of its own, so we
 * count what the engine counts when a flow fails before coming up. */
static void count_pending_failure(siptls_engine *e, int st)
{
    siptls_stats *c = stats(e);
    c->handshakes_failed++;
    switch (st) {
    case SIPTLS_ERR_HANDSHAKE_TIMEOUT:
        c->hs_fail_timeout++;
        break;
    case SIPTLS_ERR_VERIFY:
        c->hs_fail_verify++;
        break;
    case SIPTLS_ERR_NAME_MISMATCH:
        c->hs_fail_name++;
        break;
    case SIPTLS_ERR_NO_PEER_CERT:
        c->hs_fail_no_cert++;
        break;
    case SIPTLS_ERR_IO:
    case SIPTLS_ERR_PEER_CLOSED:
        c->hs_fail_io++;
        break;
    default:
        c->hs_fail_tls++;
        break;
    }
}

/* The new handshake of a restarted peer: drive it; when it completes,
 * the old flow closes and a new one takes its place. */
static void restart_step(dtls_session *s, const uint8_t *dg, size_t len)
{
    siptls__flow *old = s->f;
    siptls_engine *e = old->engine;
    dtls_listener *dl = s->dl;
    int ret;
    if (dg != NULL) {
        s->next_io.rx = dg;
        s->next_io.rx_len = len;
        ret = wolfSSL_accept(s->next);
        s->next_io.rx = NULL;
    } else {
        ret = wolfSSL_accept(s->next);
    }
    if (ret != WOLFSSL_SUCCESS) {
        int st = map_error(e, s->next, &s->next_io, ret, 1);
        if (st == SIPTLS_AGAIN || st == DTLS_DROPPED) {
            s->next_retx_ms = retx_deadline(e, s->next);
        } else {
            wolfSSL_shutdown(s->next);
            free_ssl(&s->next);
            s->next_retx_ms = 0;
            count_pending_failure(e, st);
        }
        siptls__flow_rearm(old);
        return;
    }
    /* Check the new peer before the old association goes. */
    siptls_flow_info info;
    memset(&info, 0, sizeof(info));
    siptls__secctx *sec = siptls__engine_secctx(e, SIPTLS_TRANSPORT_DTLS);
    int st = sec ? siptls__secctx_peer_check(sec, s->next, 1, NULL, &info) : SIPTLS_ERR_CERT;
    if (st != SIPTLS_OK || dl == NULL || dl->l == NULL) {
        wolfSSL_shutdown(s->next);
        free_ssl(&s->next);
        s->next_retx_ms = 0;
        count_pending_failure(e, st);
        return;
    }
    WOLFSSL *ssl = s->next;
    s->next = NULL;
    struct sockaddr_storage remote, local;
    socklen_t remote_len = old->remote_len;
    memcpy(&remote, &old->remote, sizeof(remote));
    memcpy(&local, &s->local, sizeof(local));
    char text[64];
    addr_text((struct sockaddr *)&remote, text, sizeof(text));
    siptls__log(e, SIPTLS_LOG_INFO, "dtls flow %llu %s: peer restarted (new handshake): replacing",
                (unsigned long long)old->id, text);
    /* Keep the listener alive across the old session's release. */
    dl->refs++;
    siptls__flow_fail(old, SIPTLS_ERR_RESET, 0);
    dtls_session *ns = session_new(e, dl->fd);
    siptls__flow *f =
        ns && dl->l ? siptls__flow_new_inbound(e, dl->l, -1, (struct sockaddr *)&remote, remote_len)
                    : NULL;
    if (f == NULL) {
        free(ns);
        wolfSSL_free(ssl);
        listener_unref(dl);
        return;
    }
    ns->f = f;
    ns->dl = dl; /* takes the reference */
    ns->ssl = ssl;
    ns->io.peer = (struct sockaddr *)&f->remote;
    ns->io.peer_len = f->remote_len;
    ns->next_io.peer = ns->io.peer;
    ns->next_io.peer_len = ns->io.peer_len;
    set_local(ns, &local);
    setup_ssl(ssl, &ns->io);
    f->tp = ns;
    table_add(dl, ns);
    handshake_done(ns);
}

/* ------------------------------------------------------------------------ */
/* datagram dispatch                                                        */
/* ------------------------------------------------------------------------ */

/* Returns 1 when the request was answered. */
static int answer_stun(siptls_engine *e, int fd, const uint8_t *dg, size_t len,
                       const struct sockaddr *from, socklen_t from_len, int connected,
                       const struct sockaddr_storage *local)
{
    int fp = 0;
    if (siptls__dtls_stun_check(dg, len, &fp) != 0) {
        stats(e)->dtls_junk++;
        return 0;
    }
    uint8_t out[SIPTLS__STUN_MAX_RESPONSE];
    size_t n = siptls__dtls_stun_response(dg, from, fp, out);
    if (n == 0) {
        stats(e)->dtls_junk++;
        return 0;
    }
    /* RFC 5626 §3.5.2: the server answers the Binding request so the
     * client learns its flow is alive (and its NAT binding stays). */
    stats(e)->dtls_stun++;
    (void)send_dgram(fd, out, n, connected ? NULL : from, from_len, local);
    return 1;
}

/* A datagram for an existing session (inbound or outbound). */
static void session_datagram(dtls_session *s, const uint8_t *dg, size_t len,
                             const siptls__dtls_scan *scan)
{
    siptls__flow *f = s->f;
    if (f->close_requested) {
        /* The host closed it (from a callback, in this same wakeup): no
         * more deliveries; the engine closes it when the callback is over. */
        return;
    }
    switch (f->phase) {
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
        if (s->next != NULL && !h.fragmented && h.cookie_len != 0) {
            /* our flight was lost: the new handshake's hello again */
            restart_step(s, dg, len);
            return;
        }
        on_client_hello(s->dl, dg, len, scan, &h, (struct sockaddr *)&f->remote, f->remote_len, s);
        return;
    }
    if (s->next != NULL &&
        (scan->first.type == SIPTLS__DTLS_CT_HANDSHAKE || scan->first.type == SIPTLS__DTLS_CT_CCS ||
         (scan->first.epoch == 0 && scan->first.type == SIPTLS__DTLS_CT_ALERT))) {
        /* The old association is done with handshakes: these belong to
         * the new one. */
        restart_step(s, dg, len);
        return;
    }
    read_records(s, dg, len, scan);
}

static void listener_datagram(dtls_listener *dl, const uint8_t *dg, size_t len,
                              const struct sockaddr *from, socklen_t from_len)
{
    siptls_engine *e = dl->engine;
    switch (siptls__dtls_demux_byte(dg, len)) {
    case SIPTLS__DTLS_DEMUX_STUN:
        if (answer_stun(e, dl->fd, dg, len, from, from_len, 0,
                        dl->pktinfo ? &dl->cur_local : NULL)) {
            /* RFC 5626 §3.5.2: STUN is the keepalive of datagram flows; a
             * peer that keeps its flow alive this way must keep its
             * session too (idle expiry). */
            dtls_session *s = table_find(dl, from);
            if (s != NULL) {
                siptls__flow_activity(s->f, 0);
            }
        }
        return;
    case SIPTLS__DTLS_DEMUX_JUNK:
        stats(e)->dtls_junk++;
        return;
    default:
        break;
    }
    siptls__dtls_scan scan;
    if (siptls__dtls_scan_datagram(dg, len, &scan) != 0) {
        stats(e)->dtls_bad_records++;
        return;
    }
    dtls_session *s = table_find(dl, from);
    if (s != NULL) {
        session_datagram(s, dg, len, &scan);
        return;
    }
    siptls__dtls_hello h;
    if (!siptls__dtls_is_client_hello(&scan, &h)) {
        /* A record for no session (we restarted, it expired, or junk that
         * looks like DTLS): RFC 6347 §4.1.2.7, silently discarded. */
        stats(e)->dtls_bad_records++;
        return;
    }
    on_client_hello(dl, dg, len, &scan, &h, from, from_len, NULL);
}

static void outbound_datagram(dtls_session *s, const uint8_t *dg, size_t len)
{
    siptls__flow *f = s->f;
    siptls_engine *e = f->engine;
    switch (siptls__dtls_demux_byte(dg, len)) {
    case SIPTLS__DTLS_DEMUX_STUN:
        if (answer_stun(e, f->fd, dg, len, (struct sockaddr *)&f->remote, f->remote_len, 1, NULL)) {
            siptls__flow_activity(f, 0);
        }
        return;
    case SIPTLS__DTLS_DEMUX_JUNK:
        stats(e)->dtls_junk++;
        return;
    default:
        break;
    }
    siptls__dtls_scan scan;
    if (siptls__dtls_scan_datagram(dg, len, &scan) != 0) {
        stats(e)->dtls_bad_records++;
        return;
    }
    session_datagram(s, dg, len, &scan);
}

typedef struct emit_ctx {
    dtls_listener *dl;
    siptls__flow *f; /* outbound: stays readable (zombie) until the callback returns */
} emit_ctx;

static void emit_datagram(void *ctx, const uint8_t *dg, size_t len, const struct sockaddr *from,
                          socklen_t from_len)
{
    emit_ctx *ec = ctx;
    if (ec->dl != NULL) {
        listener_datagram(ec->dl, dg, len, from, from_len);
    } else if (ec->f->phase != SIPTLS__PHASE_CLOSED && ec->f->tp != NULL) {
        outbound_datagram(ec->f->tp, dg, len);
    }
}

static void dispatch(emit_ctx *ec, const dtls_shared *sh, int fd, const uint8_t *dg, size_t len,
                     const struct sockaddr *from, socklen_t from_len)
{
    if (sh->filter != NULL) {
        sh->filter(sh->filter_user, fd, dg, len, from, from_len, emit_datagram, ec);
    } else {
        emit_datagram(ec, dg, len, from, from_len);
    }
}

/* ------------------------------------------------------------------------ */
/* listener ops                                                             */
/* ------------------------------------------------------------------------ */

static int is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

/* Ask for each datagram's destination address (IPv6 sockets report IPv4
 * peers' as v4-mapped addresses). */
static int want_pktinfo(int fd, int family)
{
    int one = 1;
    if (family == AF_INET) {
        return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == 0;
    }
    return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) == 0;
}

/* The destination address of a datagram from its control messages, with
 * the listener's port. Returns 0 when found. */
static int pktinfo_local(struct msghdr *mh, const struct sockaddr_storage *bound,
                         struct sockaddr_storage *out)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            bound->ss_family == AF_INET) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            struct sockaddr_in *in = (struct sockaddr_in *)out;
            memset(out, 0, sizeof(*out));
            in->sin_family = AF_INET;
            in->sin_port = ((const struct sockaddr_in *)bound)->sin_port;
            in->sin_addr = pi.ipi_addr;
            return 0;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
            bound->ss_family == AF_INET6) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
            memset(out, 0, sizeof(*out));
            in6->sin6_family = AF_INET6;
            in6->sin6_port = ((const struct sockaddr_in6 *)bound)->sin6_port;
            in6->sin6_addr = pi.ipi6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr)) {
                in6->sin6_scope_id = (uint32_t)pi.ipi6_ifindex;
            }
            return 0;
        }
    }
    return -1;
}

static int dtls_listen(siptls_engine *e, siptls__listener *l)
{
    /* Engines of one process (reuse_port) share the port; the kernel
     * hashes each peer's 4-tuple to one socket, so a session stays on one
     * engine. */
    int fd = siptls__listener_socket(e, l, SOCK_DGRAM);
    if (fd < 0) {
        return SIPTLS_ERR_BIND;
    }
    int rcvbuf = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    l->addrlen = sizeof(l->addr);
    getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen);

    const siptls_config *c = siptls__engine_config(e);
    dtls_listener *dl = calloc(1, sizeof(*dl));
    size_t buckets = 64;
    while (buckets < c->dtls_max_sessions && buckets < 65536) {
        buckets <<= 1;
    }
    if (dl == NULL || shared_ref(e) == NULL) {
        free(dl);
        close(fd);
        siptls__listener_unshare(e, l, SOCK_DGRAM);
        return SIPTLS_ERR_NOMEM;
    }
    dl->refs = 1;
    dl->fd = fd;
    dl->l = l;
    dl->engine = e;
    memcpy(&dl->local, &l->addr, sizeof(dl->local));
    memcpy(&dl->cur_local, &l->addr, sizeof(dl->cur_local));
    dl->pktinfo = is_wildcard((struct sockaddr *)&l->addr) && want_pktinfo(fd, l->addr.ss_family);
    dl->hello_io.engine = e;
    dl->hello_io.fd = fd;
    dl->hello_io.hello_only = 1;
    dl->table = calloc(buckets, sizeof(*dl->table));
    dl->table_mask = buckets - 1;
    int ok = dl->table != NULL &&
             siptls__dtls_ratelimit_new(&dl->rate, RATE_SLOTS, c->dtls_handshake_rate) == 0 &&
             siptls__dtls_hello_cache_new(&dl->hellos, HELLO_CACHE_SLOTS, HELLO_MAX,
                                          HELLO_EXPIRE_MS) == 0 &&
             random_bytes(dl->secret[0], COOKIE_SECRET_LEN) == 0;
    dl->rotated_ms = siptls__engine_now(e);
    if (!ok || make_hello_object(dl) != SIPTLS_OK) {
        dl->l = NULL;
        listener_unref(dl);
        siptls__listener_unshare(e, l, SOCK_DGRAM);
        return SIPTLS_ERR_NOMEM;
    }
    l->tp = dl;
    l->fd = fd;
    return SIPTLS_OK;
}

static void dtls_listener_io(siptls_engine *e, siptls__listener *l)
{
    dtls_listener *dl = l->tp;
    rotate_secret(dl, siptls__engine_now(e));
    emit_ctx ec = {dl, NULL};
    /* A host callback run from here could shut the engine down: hold the
     * listener state until we are out. */
    dl->refs++;
    const dtls_shared *sh = shared_of(e); /* the listener holds a reference */
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        struct sockaddr_storage from;
        memset(&from, 0, sizeof(from));
        union {
            char
                buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
            struct cmsghdr align;
        } cb;
        struct iovec iov = {sh->raw, RAW_CAP};
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_name = &from;
        mh.msg_namelen = sizeof(from);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cb.buf;
        mh.msg_controllen = sizeof(cb.buf);
        ssize_t n = recvmsg(dl->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
        socklen_t from_len = mh.msg_namelen;
        if (dl->pktinfo && pktinfo_local(&mh, &dl->local, &dl->cur_local) != 0) {
            memcpy(&dl->cur_local, &dl->local, sizeof(dl->cur_local));
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if ((size_t)n > RAW_CAP) {
            stats(e)->dtls_junk++;
            continue;
        }
        dispatch(&ec, sh, dl->fd, sh->raw, (size_t)n, (struct sockaddr *)&from, from_len);
        if (dl->l == NULL) {
            break;
        }
    }
    listener_unref(dl);
}

static void dtls_listener_close(siptls_engine *e, siptls__listener *l)
{
    dtls_listener *dl = l->tp;
    if (dl == NULL) {
        return;
    }
    /* Sessions may outlive the listener for a moment (the engine closes
     * listeners first): they keep the socket, to send close_notify. */
    siptls__listener_unshare(e, l, SOCK_DGRAM);
    dl->l = NULL;
    l->tp = NULL;
    l->fd = -1;
    listener_unref(dl);
}

/* ------------------------------------------------------------------------ */
/* flow ops                                                                 */
/* ------------------------------------------------------------------------ */

static int dtls_connect(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    siptls__secctx *sec = siptls__engine_secctx(e, SIPTLS_TRANSPORT_DTLS);
    if (sec == NULL) {
        return SIPTLS_ERR_CERT;
    }
    int fd = socket(f->remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return SIPTLS_ERR_CONNECT;
    }
    /* A connected socket: the kernel gives us only this peer's datagrams
     * and reports ICMP port unreachable as ECONNREFUSED. */
    if (connect(fd, (struct sockaddr *)&f->remote, f->remote_len) != 0) {
        close(fd);
        return SIPTLS_ERR_CONNECT;
    }
    dtls_session *s = session_new(e, fd);
    WOLFSSL *ssl =
        s ? siptls__secctx_client_ssl(sec, f->sip_domain, (struct sockaddr *)&f->remote) : NULL;
    if (ssl == NULL || shared_ref(e) == NULL) {
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
    setup_ssl(ssl, &s->io);
    wolfSSL_dtls_set_peer(ssl, &f->remote, (unsigned)f->remote_len);
    if (siptls__engine_config(e)->tls_session_cache) {
        /* RFC 5246 §7.3 abbreviated handshake: one round trip less. */
        char key[SIPTLS_URI_HOST_MAX + 80];
        siptls__flow_session_key(f, key, sizeof(key));
        siptls__secctx_client_session_apply(sec, ssl, key);
    }
    f->tp = s;
    siptls__flow_attach_fd(f, fd, SIPTLS__IO_READ);
    if (f->io_watcher == NULL) {
        return SIPTLS_ERR_NOMEM; /* the engine frees the flow: dtls_free closes fd */
    }
    f->local_len = sizeof(f->local);
    getsockname(fd, (struct sockaddr *)&f->local, &f->local_len);
    /* The flow stays CONNECTING (tls_connect_timeout) until the first
     * datagram from the peer: an address that never answers is left for
     * the next one the name resolved to. The first flight (ClientHello) goes out now; a failure here is
     * returned, not reported through a callback. */
    int ret = wolfSSL_connect(ssl);
    int st = map_error(e, ssl, &s->io, ret, 1);
    if (st != SIPTLS_AGAIN && st != DTLS_DROPPED) {
        return st;
    }
    s->retx_ms = retx_deadline(e, ssl);
    return SIPTLS_OK;
}

static void dtls_io_ready(siptls__flow *f, int revents)
{
    dtls_session *s = f->tp;
    if (s == NULL || !(revents & SIPTLS__IO_READ)) {
        return;
    }
    siptls_engine *e = f->engine;
    /* The session's own reference may go in this wakeup (the host closes
     * the flow from a callback): hold one until we are out. */
    const dtls_shared *sh = shared_ref(e);
    if (sh == NULL) {
        return;
    }
    emit_ctx ec = {NULL, f};
    for (int i = 0; i < READS_PER_WAKEUP && f->phase != SIPTLS__PHASE_CLOSED; i++) {
        ssize_t n = recv(f->fd, sh->raw, RAW_CAP, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == ECONNREFUSED && f->phase <= SIPTLS__PHASE_HANDSHAKE) {
                /* ICMP port unreachable: nobody listens there. */
                char text[64];
                addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
                siptls__log(f->engine, SIPTLS_LOG_INFO, "dtls flow %llu: %s: connection refused",
                            (unsigned long long)f->id, text);
                siptls__flow_fail(f, SIPTLS_ERR_CONNECT, 0);
                break;
            }
            if (errno == ECONNREFUSED) {
                continue; /* after the handshake: UDP, the peer may come back */
            }
            break;
        }
        if ((size_t)n > RAW_CAP) {
            stats(f->engine)->dtls_junk++;
            continue;
        }
        dispatch(&ec, sh, f->fd, sh->raw, (size_t)n, (struct sockaddr *)&f->remote, f->remote_len);
    }
    shared_unref(e);
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
    dtls_session *s = f->tp;
    if (s == NULL || s->ssl == NULL || s->write_retry_ms != 0) {
        return;
    }
    siptls_engine *e = f->engine;
    siptls__qmsg *m;
    while ((m = siptls__flow_qhead(f)) != NULL) {
        size_t rec = s->cur_rec ? s->cur_rec : next_record(s, m);
        if (rec == 0) {
            char text[64];
            addr_text((struct sockaddr *)&f->remote, text, sizeof(text));
            siptls__flow_warn(f, SIPTLS_ERR_FRAME_TOO_BIG,
                              "dtls flow %llu %s: %zu-byte message dropped: it cannot be split "
                              "into records (no Content-Length, or a header block over %d bytes)",
                              (unsigned long long)f->id, text, m->len,
                              wolfSSL_GetMaxOutputSize(s->ssl));
            stats(e)->drop_too_big++;
            siptls__flow_qpop(f);
            continue;
        }
        s->io.blocked = 0;
        /* After WANT_WRITE wolfSSL must be called again with the same
         * buffer and length. */
        int n = wolfSSL_write(s->ssl, m->data + m->off, (int)rec);
        if (n > 0) {
            s->cur_rec = 0;
            m->off += rec;
            if (m->off >= m->len) {
                f->bytes_out += m->len;
                stats(e)->bytes_out += m->len;
                siptls__flow_qpop(f);
            }
            continue;
        }
        int st = map_error(e, s->ssl, &s->io, n, 0);
        if (st == SIPTLS_AGAIN) {
            /* The socket buffer is full. Inbound sessions share the
             * listener's socket and have no watcher of their own: retry
             * from the transport timer. */
            s->cur_rec = rec;
            s->write_retry_ms = siptls__engine_now(e) + WRITE_RETRY_MS;
            siptls__flow_send_progress(f, 1);
            siptls__flow_rearm(f);
            return;
        }
        siptls__flow_fail(f, st, 0);
        return;
    }
    siptls__flow_send_progress(f, 0);
}

static int dtls_next_timeout(siptls__flow *f, uint64_t *deadline_ms)
{
    dtls_session *s = f->tp;
    if (s == NULL) {
        return 0;
    }
    uint64_t best = 0;
    uint64_t cand[4] = {f->phase <= SIPTLS__PHASE_HANDSHAKE ? s->retx_ms : 0, s->write_retry_ms,
                        s->next != NULL ? s->next_retx_ms : 0, 0};
    if (s->next != NULL) {
        cand[3] = s->next_since_ms + siptls__engine_config(f->engine)->dtls_handshake_timeout;
    }
    for (int i = 0; i < 4; i++) {
        if (cand[i] != 0 && (best == 0 || cand[i] < best)) {
            best = cand[i];
        }
    }
    *deadline_ms = best;
    return best != 0;
}

static void dtls_on_timeout(siptls__flow *f)
{
    dtls_session *s = f->tp;
    if (s == NULL) {
        return;
    }
    siptls_engine *e = f->engine;
    uint64_t now = siptls__engine_now(e);
    if (s->next != NULL) {
        if (now >= s->next_since_ms + siptls__engine_config(e)->dtls_handshake_timeout) {
            free_ssl(&s->next);
            s->next_retx_ms = 0;
            count_pending_failure(e, SIPTLS_ERR_HANDSHAKE_TIMEOUT);
        } else if (s->next_retx_ms != 0 && now >= s->next_retx_ms) {
            s->next_retx_ms = wolfSSL_dtls_got_timeout(s->next) == WOLFSSL_SUCCESS
                                  ? retx_deadline(e, s->next)
                                  : 0;
        }
    }
    if (f->phase <= SIPTLS__PHASE_HANDSHAKE && s->retx_ms != 0 && now >= s->retx_ms) {
        /* RFC 6347 §4.2.4: the retransmission timer expired: send the
         * last flight again (wolfSSL doubles its timer each time). */
        if (wolfSSL_dtls_got_timeout(s->ssl) != WOLFSSL_SUCCESS) {
            siptls__flow_fail(f, SIPTLS_ERR_HANDSHAKE_TIMEOUT, 0);
            return;
        }
        s->retx_ms = retx_deadline(e, s->ssl);
    }
    if (s->write_retry_ms != 0 && now >= s->write_retry_ms) {
        s->write_retry_ms = 0;
        if (f->phase == SIPTLS__PHASE_UP || f->phase == SIPTLS__PHASE_CLOSING) {
            dtls_flush(f);
        }
    }
}

static void dtls_shutdown(siptls__flow *f)
{
    dtls_session *s = f->tp;
    if (s != NULL && !s->shutdown_sent && f->reported_up) {
        s->shutdown_sent = 1;
        /* One close_notify datagram; we do not wait for the peer's. */
        wolfSSL_shutdown(s->ssl);
    }
}

static void dtls_free(siptls__flow *f)
{
    dtls_session *s = f->tp;
    if (s != NULL) {
        if (f->outbound && f->reported_up && s->ssl != NULL &&
            siptls__engine_config(f->engine)->tls_session_cache) {
            char key[SIPTLS_URI_HOST_MAX + 80];
            siptls__flow_session_key(f, key, sizeof(key));
            siptls__secctx *sec = siptls__engine_secctx(f->engine, SIPTLS_TRANSPORT_DTLS);
            if (sec != NULL) {
                siptls__secctx_client_session_save(sec, s->ssl, key);
            }
        }
        free_ssl(&s->ssl);
        free_ssl(&s->next);
        if (s->dl != NULL) {
            table_del(s->dl, s);
            listener_unref(s->dl);
        }
        if (s->shared_ref) {
            shared_unref(f->engine);
        }
        free(s);
        f->tp = NULL;
    }
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

static void dtls_info(siptls__flow *f, siptls_flow_info *info)
{
    dtls_session *s = f->tp;
    if (s == NULL || s->ssl == NULL || !wolfSSL_is_init_finished(s->ssl)) {
        return;
    }
    siptls__secctx *sec = siptls__engine_secctx(f->engine, SIPTLS_TRANSPORT_DTLS);
    if (sec != NULL) {
        siptls__secctx_describe(sec, s->ssl, !f->outbound, f->sip_domain, info);
    }
}

const siptls__transport_ops siptls__dtls_ops = {
    .kind = SIPTLS_TRANSPORT_DTLS,
    .name = "dtls",
    .listen = dtls_listen,
    .listener_io = dtls_listener_io,
    .listener_close = dtls_listener_close,
    .connect = dtls_connect,
    .io = dtls_io_ready,
    .flush = dtls_flush,
    .next_timeout = dtls_next_timeout,
    .on_timeout = dtls_on_timeout,
    .shutdown = dtls_shutdown,
    .free = dtls_free,
    .info = dtls_info,
};
