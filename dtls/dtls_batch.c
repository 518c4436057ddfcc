/* siptls — DTLS transport: datagrams in batches, per engine.
 *
 * One system call per datagram was most of what a DTLS message cost the
 * server (docs/benchmarks.md "Batching DTLS datagrams"). So:
 *
 * Receiving (listener sockets): recvmmsg() takes up to RX_BATCH datagrams
 * per call. A UDP datagram may be 65507 bytes and must never be cut, but a
 * batch of 64 KiB slots would be 2 MiB of buffers touched for datagrams
 * that are nearly all below 1500 bytes. Each datagram of a batch is
 * therefore read into two pieces: a compact slot of RX_SLOT bytes (all the
 * slots together are as large as the old single 64 KiB buffer, and stay in
 * the cache) followed by its own overflow area of RAW_CAP - RX_SLOT bytes
 * in one anonymous mapping. The two pieces hold RAW_CAP bytes, more than
 * any UDP datagram: nothing is ever truncated, whatever the mix of sizes
 * in one batch. The overflow areas are virtual memory: a page is only
 * backed once a large datagram lands on it, and handed back
 * (MADV_DONTNEED) once that datagram has been processed, so the resident
 * cost is the slots. A datagram longer than its slot is made contiguous by
 * copying the slot's RX_SLOT bytes right in front of its overflow piece
 * (each overflow area keeps RX_SLOT bytes free for that).
 *
 * Sending (every DTLS socket of the engine): wolfSSL's send callback
 * (io_send) queues the datagram here instead of calling sendto(); the
 * queue leaves at the end of the engine's wakeup (the transport's
 * wakeup_end op, after the host's callbacks and the flows' deferred
 * writes, before the loop waits again) with one sendmmsg() per socket.
 * Order per peer is kept: datagrams leave in the order they were queued
 * per socket, and a peer is reached through one socket. Each entry keeps
 * its destination and, on a wildcard listener, its source address
 * (IP_PKTINFO), so a batch may mix peers and local addresses. Consecutive
 * application_data records (DTLS 1.2; on DTLS 1.3 ciphertext records that
 * carry their length) to the same destination are packed into one
 * datagram up to dtls_mtu (RFC 6347 §4.1.1: "Multiple DTLS records may
 * be placed in a single datagram"); the replies of one wakeup to one peer
 * then cost one datagram, as TLS puts them in one record. Only records
 * that each hold one whole SIP message are packed: a piece of a message
 * split over several records keeps a datagram of its own, because the
 * receiver knows a record's sequence number (and so checks that the
 * pieces are consecutive, docs/dtls.md) only for a datagram's only
 * record.
 *
 * A full socket buffer (EAGAIN, ENOBUFS) keeps what did not leave queued,
 * in order, and the engine wakes up again after WRITE_RETRY_MS to send it.
 * Only when the queue itself is full and its socket takes nothing does
 * io_send say WANT_WRITE: wolfSSL keeps the record, and the session
 * retries as before (write_retry_ms). A socket is never closed with
 * datagrams of it queued: siptls__dtls_tx_close_fd() sends (or drops)
 * them first, so an entry can never go out on a reused descriptor. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "dtls_transport.h"

/* ---- receiving ------------------------------------------------------------ */

struct dtls_rxbatch {
    struct mmsghdr mm[RX_BATCH];
    struct iovec iov[RX_BATCH][2];
    struct sockaddr_storage from[RX_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } cb[RX_BATCH];
    uint8_t slot[RX_BATCH][RX_SLOT];
    uint8_t *big; /* RX_BATCH areas of RAW_CAP bytes: the overflow pieces */
};

int siptls__dtls_rx_batch_ref(dtls_shared *sh)
{
    if (sh->rx != NULL) {
        return SIPTLS_OK;
    }
    dtls_rxbatch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    void *big = mmap(NULL, (size_t)RX_BATCH * RAW_CAP, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (big == MAP_FAILED) {
        free(b);
        return SIPTLS_ERR_NOMEM;
    }
    b->big = big;
    sh->rx = b;
    return SIPTLS_OK;
}

void siptls__dtls_rx_batch_free(dtls_shared *sh)
{
    if (sh->rx != NULL) {
        munmap(sh->rx->big, (size_t)RX_BATCH * RAW_CAP);
        free(sh->rx);
        sh->rx = NULL;
    }
}

int siptls__dtls_rx_batch_read(dtls_shared *sh, int fd, unsigned max, int want_pktinfo)
{
    dtls_rxbatch *b = sh->rx;
    if (max > RX_BATCH) {
        max = RX_BATCH;
    }
    for (unsigned i = 0; i < max; i++) {
        struct msghdr *mh = &b->mm[i].msg_hdr;
        b->iov[i][0].iov_base = b->slot[i];
        b->iov[i][0].iov_len = RX_SLOT;
        b->iov[i][1].iov_base = b->big + (size_t)i * RAW_CAP + RX_SLOT;
        b->iov[i][1].iov_len = RAW_CAP - RX_SLOT;
        mh->msg_name = &b->from[i];
        mh->msg_namelen = sizeof(b->from[i]);
        mh->msg_iov = b->iov[i];
        mh->msg_iovlen = 2;
        mh->msg_control = want_pktinfo ? b->cb[i].buf : NULL;
        mh->msg_controllen = want_pktinfo ? sizeof(b->cb[i].buf) : 0;
        mh->msg_flags = 0;
        b->mm[i].msg_len = 0;
    }
    for (;;) {
        int n = recvmmsg(fd, b->mm, max, MSG_DONTWAIT, NULL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        return n;
    }
}

const uint8_t *siptls__dtls_rx_batch_get(dtls_shared *sh, unsigned i, size_t *len, int *trunc,
                                         const struct sockaddr **from, socklen_t *from_len,
                                         struct msghdr **mh)
{
    dtls_rxbatch *b = sh->rx;
    size_t n = b->mm[i].msg_len;
    *len = n;
    *trunc = (b->mm[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    *from = (const struct sockaddr *)&b->from[i];
    *from_len = b->mm[i].msg_hdr.msg_namelen;
    *mh = &b->mm[i].msg_hdr;
    if (n <= RX_SLOT) {
        return b->slot[i];
    }
    uint8_t *area = b->big + (size_t)i * RAW_CAP;
    memcpy(area, b->slot[i], RX_SLOT);
    return area;
}

void siptls__dtls_rx_batch_done(dtls_shared *sh, unsigned i)
{
    dtls_rxbatch *b = sh->rx;
    if (b->mm[i].msg_len > RX_SLOT) {
        /* Hand the pages a large datagram touched back: the overflow areas
         * cost no resident memory between large datagrams. */
        (void)madvise(b->big + (size_t)i * RAW_CAP, RAW_CAP, MADV_DONTNEED);
    }
}

/* ---- sending ---------------------------------------------------------------- */

typedef struct tx_ent {
    int fd;
    uint32_t off; /* in the arena */
    uint32_t len;
    socklen_t peer_len; /* 0: a connected socket */
    uint8_t has_local;
    uint8_t appdata; /* records that each hold a whole message only: another may join */
    uint8_t done;    /* sent, or lost as UDP loses datagrams */
    uint8_t tried;   /* this flush: its socket was tried */
    struct sockaddr_storage peer;
    struct sockaddr_storage local;
} tx_ent;

struct dtls_txq {
    unsigned n;
    size_t used;        /* arena bytes */
    unsigned mtu;       /* packing limit: dtls_mtu */
    unsigned test_fail; /* siptls__dtls_test_tx_fail() */
    tx_ent ent[TXQ_MAX];
    struct mmsghdr mm[TXQ_MAX];
    struct iovec iov[TXQ_MAX];
    unsigned idx[TXQ_MAX];
    union {
        char buf[SIPTLS__UDP_SOURCE_CMSG_SPACE];
        struct cmsghdr align;
    } cb[TXQ_MAX];
    uint8_t arena[TXQ_BYTES];
};

int siptls__dtls_tx_new(dtls_shared *sh, unsigned mtu)
{
    sh->tx = calloc(1, sizeof(*sh->tx));
    if (sh->tx == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    sh->tx->mtu = mtu;
    return SIPTLS_OK;
}

/* One whole record whose length field says where it ends, so another
 * record may follow it in the datagram: a DTLS 1.2 application_data
 * record, or a DTLS 1.3 ciphertext record (unified header) with its L bit
 * set (wolfSSL always sets it), whose CID is cid_len bytes (RFC 9147 §4:
 * the length is not on the wire). On 1.3 the content type is encrypted:
 * the caller's `whole` says the record holds a message. */
static int one_appdata_record(const uint8_t *p, size_t n, size_t cid_len)
{
    if (n > 0 && (p[0] & SIPTLS__DTLS_UH_MASK) == SIPTLS__DTLS_UH_FIXED) {
        siptls__dtls_record r;
        return (p[0] & SIPTLS__DTLS_UH_LEN) != 0 &&
               siptls__dtls_record_parse_unified(p, n, cid_len, &r) == n;
    }
    return n > SIPTLS__DTLS_RECORD_HEADER && p[0] == SIPTLS__DTLS_CT_APPDATA && p[1] == 0xFE &&
           (size_t)SIPTLS__DTLS_RECORD_HEADER + (((size_t)p[11] << 8) | p[12]) == n;
}

static int same_dest(const tx_ent *t, int fd, const struct sockaddr *peer, socklen_t peer_len,
                     const struct sockaddr_storage *local)
{
    if (t->fd != fd || t->peer_len != (peer != NULL ? peer_len : 0) ||
        t->has_local != (local != NULL)) {
        return 0;
    }
    if (peer != NULL && memcmp(&t->peer, peer, peer_len) != 0) {
        return 0;
    }
    return local == NULL || memcmp(&t->local, local, sizeof(*local)) == 0;
}

/* Send the unsent entries of socket `fd` from entry `first` on, in order.
 * Returns 1 when the socket took no more (the rest stays queued). */
static int send_fd(dtls_txq *q, int fd, unsigned first)
{
    unsigned cnt = 0;
    for (unsigned i = first; i < q->n; i++) {
        tx_ent *t = &q->ent[i];
        if (t->done || t->fd != fd) {
            continue;
        }
        t->tried = 1;
        struct msghdr *mh = &q->mm[cnt].msg_hdr;
        memset(mh, 0, sizeof(*mh));
        q->iov[cnt].iov_base = q->arena + t->off;
        q->iov[cnt].iov_len = t->len;
        mh->msg_iov = &q->iov[cnt];
        mh->msg_iovlen = 1;
        if (t->peer_len != 0) {
            mh->msg_name = &t->peer;
            mh->msg_namelen = t->peer_len;
        }
        if (t->has_local) {
            mh->msg_control = q->cb[cnt].buf;
            mh->msg_controllen = siptls__udp_source_cmsg(&t->local, q->cb[cnt].buf);
        }
        q->idx[cnt++] = i;
    }
    unsigned k = 0;
    while (k < cnt) {
        int r;
        if (q->test_fail > 0) {
            q->test_fail--;
            r = -1;
            errno = EAGAIN;
        } else {
            r = sendmmsg(fd, &q->mm[k], cnt - k, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        if (r > 0) {
            for (int j = 0; j < r; j++) {
                q->ent[q->idx[k + (unsigned)j]].done = 1;
            }
            k += (unsigned)r;
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            return 1;
        }
        /* Anything else (no route, message too long, a connected peer's
         * ICMP port unreachable): UDP loses this datagram; DTLS
         * retransmission or the peer's copes. */
        q->ent[q->idx[k]].done = 1;
        k++;
    }
    return 0;
}

/* Drop what was sent; what is left keeps its order. */
static void compact(dtls_txq *q)
{
    unsigned w = 0;
    size_t used = 0;
    for (unsigned i = 0; i < q->n; i++) {
        tx_ent *t = &q->ent[i];
        if (t->done) {
            continue;
        }
        if (t->off != used) {
            memmove(q->arena + used, q->arena + t->off, t->len);
            t->off = (uint32_t)used;
        }
        used += t->len;
        t->tried = 0;
        if (w != i) {
            q->ent[w] = *t;
        }
        w++;
    }
    q->n = w;
    q->used = used;
}

/* Send everything queued (fd -1), or only socket fd's datagrams. Returns 1
 * when something stays queued (a full socket buffer). */
static int flush(dtls_txq *q, int only_fd)
{
    if (q->n == 0) {
        return 0;
    }
    for (unsigned i = 0; i < q->n; i++) {
        tx_ent *t = &q->ent[i];
        if (!t->done && !t->tried && (only_fd < 0 || t->fd == only_fd)) {
            (void)send_fd(q, t->fd, i);
        }
    }
    compact(q);
    return q->n != 0;
}

int siptls__dtls_tx_add(dtls_shared *sh, siptls_engine *e, int fd, const uint8_t *buf, size_t n,
                        const struct sockaddr *peer, socklen_t peer_len,
                        const struct sockaddr_storage *local, int whole, size_t cid_len)
{
    dtls_txq *q = sh->tx;
    int appdata = whole && one_appdata_record(buf, n, cid_len);
    if (appdata && q->n > 0) {
        /* RFC 6347 §4.1.1: "Multiple DTLS records may be placed in a
         * single datagram." Only onto the last datagram queued (the same
         * peer's latest, so its records stay in order), only records that
         * carry their length, and never beyond dtls_mtu. */
        tx_ent *t = &q->ent[q->n - 1];
        if (t->appdata && !t->done && t->off + t->len == q->used && t->len + n <= q->mtu &&
            q->used + n <= TXQ_BYTES && same_dest(t, fd, peer, peer_len, local)) {
            memcpy(q->arena + q->used, buf, n);
            t->len += (uint32_t)n;
            q->used += n;
            return 0;
        }
    }
    if (q->n == TXQ_MAX || q->used + n > TXQ_BYTES) {
        (void)flush(q, -1);
        if (q->n == TXQ_MAX || q->used + n > TXQ_BYTES) {
            return -1; /* the sockets take nothing: the caller says WANT_WRITE */
        }
    }
    if (q->n == 0) {
        /* a host call outside any callback (siptls_open, a send that
         * writes a full queue out) still ends with a flush */
        siptls__engine_kick(e);
    }
    tx_ent *t = &q->ent[q->n++];
    t->fd = fd;
    t->off = (uint32_t)q->used;
    t->len = (uint32_t)n;
    t->peer_len = peer != NULL ? peer_len : 0;
    if (peer != NULL) {
        memcpy(&t->peer, peer, peer_len);
    }
    t->has_local = local != NULL;
    if (local != NULL) {
        memcpy(&t->local, local, sizeof(*local));
    }
    t->appdata = (uint8_t)appdata;
    t->done = 0;
    t->tried = 0;
    memcpy(q->arena + q->used, buf, n);
    q->used += n;
    return 0;
}

uint64_t siptls__dtls_wakeup_end(siptls_engine *e)
{
    dtls_shared *sh = siptls__dtls_shared_of(e);
    if (sh == NULL || sh->tx == NULL || !flush(sh->tx, -1)) {
        return 0;
    }
    return siptls__engine_now(e) + WRITE_RETRY_MS;
}

void siptls__dtls_tx_close_fd(siptls_engine *e, int fd)
{
    dtls_shared *sh = siptls__dtls_shared_of(e);
    if (sh == NULL || sh->tx == NULL || fd < 0) {
        return;
    }
    dtls_txq *q = sh->tx;
    (void)flush(q, fd);
    /* what its socket would not take now is lost with the socket */
    for (unsigned i = 0; i < q->n; i++) {
        if (q->ent[i].fd == fd) {
            q->ent[i].done = 1;
        }
    }
    compact(q);
}

int siptls__dtls_test_tx_fail(siptls_engine *e, unsigned n)
{
    dtls_shared *sh = siptls__dtls_shared_of(e);
    if (sh == NULL || sh->tx == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    sh->tx->test_fail = n;
    return SIPTLS_OK;
}

void siptls__dtls_tx_free(dtls_shared *sh)
{
    if (sh->tx != NULL) {
        /* the last DTLS socket of the engine is closing: a last try */
        (void)flush(sh->tx, -1);
        free(sh->tx);
        sh->tx = NULL;
    }
}
