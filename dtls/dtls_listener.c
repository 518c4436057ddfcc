/* siptls — DTLS transport: a listener — its socket, the demultiplexing of
 * datagrams (STUN, DTLS, junk; RFC 7983), and its sessions by peer
 * address. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dtls_transport.h"

/* Peers are compared and hashed the engine's way (family, port, address). */
#define same_addr siptls__addr_equal
#define addr_hash siptls__addr_hash

/* The listener keeps its own map of inbound sessions: the engine's
 * by-address lookup may also return an outbound flow to the same address
 * (a peer that sends from its listening port), which is not ours. */
static dtls_session *table_find(dtls_listener *dl, const struct sockaddr *sa)
{
    for (dtls_session *s = dl->table[addr_hash(sa) & dl->table_mask]; s != NULL; s = s->tnext) {
        if (same_addr(siptls__flow_remote(s->f, NULL), sa)) {
            return s;
        }
    }
    return NULL;
}

void siptls__dtls_table_add(dtls_listener *dl, dtls_session *s)
{
    size_t b = addr_hash(siptls__flow_remote(s->f, NULL)) & dl->table_mask;
    s->tnext = dl->table[b];
    dl->table[b] = s;
}

void siptls__dtls_table_del(dtls_listener *dl, dtls_session *s)
{
    size_t b = addr_hash(siptls__flow_remote(s->f, NULL)) & dl->table_mask;
    for (dtls_session **pp = &dl->table[b]; *pp != NULL; pp = &(*pp)->tnext) {
        if (*pp == s) {
            *pp = s->tnext;
            return;
        }
    }
}

/* ---- sessions by Connection ID (RFC 9146, RFC 9147 §9) -------------------- */

static size_t cid_bucket(const dtls_listener *dl, const uint8_t *cid)
{
    /* The CIDs are random: their first bytes are a good enough hash. */
    size_t h = 0;
    for (size_t i = 0; i < dl->cid_len && i < sizeof(h); i++) {
        h = (h << 8) | cid[i];
    }
    return h & dl->table_mask;
}

dtls_session *siptls__dtls_cid_find(dtls_listener *dl, const uint8_t *cid)
{
    if (dl->cid_table == NULL) {
        return NULL;
    }
    for (dtls_session *s = dl->cid_table[cid_bucket(dl, cid)]; s != NULL; s = s->cnext) {
        if (s->cid_len == dl->cid_len && memcmp(s->cid, cid, dl->cid_len) == 0) {
            return s;
        }
    }
    return NULL;
}

int siptls__dtls_cid_make(dtls_listener *dl, uint8_t *cid)
{
    /* 8 random bytes collide with one of a million sessions with
     * probability 2^-44 per try: a collision is checked, not assumed away. */
    for (int tries = 0; tries < 8; tries++) {
        if (siptls__dtls_random_bytes(cid, dl->cid_len) != 0) {
            return -1;
        }
        siptls__dtls_route_mark(dl, cid);
        if (siptls__dtls_cid_find(dl, cid) == NULL) {
            return 0;
        }
    }
    return -1;
}

void siptls__dtls_cid_adopt(dtls_listener *dl, dtls_session *s)
{
#if defined(WOLFSSL_DTLS_CID) && defined(WOLFSSL_DTLS13)
    unsigned int n = 0;
    if (dl->cid_table == NULL || s->ssl == NULL || s->cid_len != 0 ||
        wolfSSL_dtls_cid_get_rx_size(s->ssl, &n) != WOLFSSL_SUCCESS || n != dl->cid_len ||
        wolfSSL_dtls_cid_get_rx(s->ssl, s->cid, sizeof(s->cid)) != WOLFSSL_SUCCESS ||
        siptls__dtls_cid_find(dl, s->cid) != NULL) {
        return;
    }
    s->cid_len = (uint8_t)n;
    size_t b = cid_bucket(dl, s->cid);
    s->cnext = dl->cid_table[b];
    dl->cid_table[b] = s;
#else
    (void)dl;
    (void)s;
#endif
}

void siptls__dtls_cid_del(dtls_listener *dl, dtls_session *s)
{
    if (s->cid_len == 0 || dl->cid_table == NULL) {
        return;
    }
    for (dtls_session **pp = &dl->cid_table[cid_bucket(dl, s->cid)]; *pp != NULL;
         pp = &(*pp)->cnext) {
        if (*pp == s) {
            *pp = s->cnext;
            break;
        }
    }
    s->cid_len = 0;
}

void siptls__dtls_listener_unref(dtls_listener *dl)
{
    if (--dl->refs != 0) {
        return;
    }
    siptls__dtls_free_ssl(&dl->hello);
    if (dl->fd >= 0) {
        siptls__dtls_tx_close_fd(dl->engine, dl->fd);
        close(dl->fd);
    }
    siptls__dtls_ratelimit_free(dl->rate);
    siptls__dtls_hello_cache_free(dl->hellos);
    free(dl->table);
    free(dl->cid_table);
    free(dl->seen);
    siptls_engine *e = dl->engine;
    free(dl);
    siptls__dtls_shared_unref(e);
}

/* Returns 1 when the request was answered. */
int siptls__dtls_answer_stun(siptls_engine *e, int fd, const uint8_t *dg, size_t len,
                             const struct sockaddr *from, socklen_t from_len, int connected,
                             const struct sockaddr_storage *local)
{
    int fp = 0;
    if (siptls__dtls_stun_check(dg, len, &fp) != 0) {
        siptls__count(e, SIPTLS__EV_DTLS_JUNK, 1);
        return 0;
    }
    uint8_t out[SIPTLS__STUN_MAX_RESPONSE];
    size_t n = siptls__dtls_stun_response(dg, from, fp, out);
    if (n == 0) {
        siptls__count(e, SIPTLS__EV_DTLS_JUNK, 1);
        return 0;
    }
    /* RFC 5626 §3.5.2: the server answers the Binding request so the
     * client learns its flow is alive (and its NAT binding stays). */
    siptls__count(e, SIPTLS__EV_DTLS_STUN, 1);
    (void)siptls__udp_send(fd, out, n, connected ? NULL : from, from_len, local);
    return 1;
}

static void listener_datagram(dtls_listener *dl, const uint8_t *dg, size_t len,
                              const struct sockaddr *from, socklen_t from_len, int may_forward)
{
    siptls_engine *e = dl->engine;
    switch (siptls__dtls_demux_byte(dg, len)) {
    case SIPTLS__DTLS_DEMUX_STUN:
        if (may_forward && dl->seen != NULL && table_find(dl, from) == NULL) {
            /* A peer whose CID records we pass to another engine keeps
             * its flow alive with STUN there too (dtls_route.c). */
            int tag = siptls__dtls_route_recall(dl, from);
            if (tag >= 0 &&
                siptls__dtls_route_forward(dl, dg, len, from, from_len, (uint8_t)tag) == 0) {
                return;
            }
        }
        if (siptls__dtls_answer_stun(e, dl->fd, dg, len, from, from_len, 0,
                                     dl->pktinfo ? &dl->cur_local : NULL)) {
            /* RFC 5626 §3.5.2: STUN is the keepalive of datagram flows; a
             * peer that keeps its flow alive this way must keep its
             * session too (idle expiry). */
            dtls_session *s = table_find(dl, from);
            if (s != NULL) {
                siptls__flow_touch(s->f);
            }
        }
        return;
    case SIPTLS__DTLS_DEMUX_JUNK:
        siptls__count(e, SIPTLS__EV_DTLS_JUNK, 1);
        return;
    default:
        break;
    }
    siptls__dtls_scan scan;
    if (siptls__dtls_scan_datagram_cid(dg, len, dl->cid_len, &scan) != 0) {
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        return;
    }
    dtls_session *s = NULL;
    if (scan.first.cid != NULL) {
        if (may_forward && dl->forward && scan.first.cid[0] != (uint8_t)dl->tag) {
            /* Another engine's CID (its tag), come to our socket of the
             * shared port: the kernel hashed the peer's new 4-tuple here
             * (dtls_route.c). */
            if (siptls__dtls_route_forward(dl, dg, len, from, from_len, scan.first.cid[0]) != 0) {
                /* no engine has that tag (forged, stale), or it cannot take it */
                siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
            }
            return;
        }
        /* RFC 9146 §6 / RFC 9147 §9: records that carry a CID belong to
         * its session wherever they come from; the address moves only for
         * a record that authenticates and is the newest. */
        s = siptls__dtls_cid_find(dl, scan.first.cid);
        if (s != NULL && !same_addr(siptls__flow_remote(s->f, NULL), from)) {
            siptls__dtls_session_datagram_from(s, dg, len, &scan, from, from_len);
            return;
        }
    }
    if (s == NULL) {
        s = table_find(dl, from);
    }
    if (s != NULL) {
        siptls__dtls_session_datagram(s, dg, len, &scan);
        return;
    }
    siptls__dtls_hello h;
    if (!siptls__dtls_is_client_hello(&scan, &h)) {
        /* A record for no session (we restarted, it expired, or junk that
         * looks like DTLS): RFC 6347 §4.1.2.7, silently discarded. */
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        return;
    }
    siptls__dtls_on_client_hello(dl, dg, len, &scan, &h, from, from_len, NULL);
}

void siptls__dtls_listener_datagram(dtls_listener *dl, const uint8_t *dg, size_t len,
                                    const struct sockaddr *from, socklen_t from_len)
{
    listener_datagram(dl, dg, len, from, from_len, 1);
}

void siptls__dtls_listener_datagram_here(dtls_listener *dl, const uint8_t *dg, size_t len,
                                         const struct sockaddr *from, socklen_t from_len)
{
    listener_datagram(dl, dg, len, from, from_len, 0);
}

int siptls__dtls_listen(siptls__listener *l)
{
    siptls_engine *e = siptls__listener_engine(l);
    /* Engines of one process (reuse_port) share the port; the kernel
     * hashes each peer's 4-tuple to one socket, so a session stays on one
     * engine. */
    int fd = siptls__listener_fd(l);
    siptls__dtls_socket_buffers(fd);
    const struct sockaddr_storage *la = siptls__listener_addr(l, NULL);

    const siptls_config *c = siptls__engine_config(e);
    dtls_listener *dl = calloc(1, sizeof(*dl));
    size_t buckets = 64;
    while (buckets < c->dtls_max_sessions && buckets < 65536) {
        buckets <<= 1;
    }
    dtls_shared *sh = dl != NULL ? siptls__dtls_shared_ref(e) : NULL;
    if (sh == NULL || siptls__dtls_rx_batch_ref(sh) != SIPTLS_OK) {
        if (sh != NULL) {
            siptls__dtls_shared_unref(e);
        }
        free(dl);
        return SIPTLS_ERR_NOMEM;
    }
    dl->refs = 1;
    dl->fd = fd;
    dl->tag = -1;
    dl->l = l;
    dl->engine = e;
    memcpy(&dl->local, la, sizeof(dl->local));
    memcpy(&dl->cur_local, la, sizeof(dl->cur_local));
    dl->pktinfo = siptls__addr_is_wildcard((const struct sockaddr *)la) &&
                  siptls__udp_want_pktinfo(fd, la->ss_family);
    dl->hello_io.engine = e;
    dl->hello_io.fd = fd;
    dl->hello_io.hello_only = 1;
    dl->table = calloc(buckets, sizeof(*dl->table));
    dl->table_mask = buckets - 1;
    dl->cid_len = siptls__dtls_cid_len(e);
    if (dl->cid_len != 0) {
        dl->cid_table = calloc(buckets, sizeof(*dl->cid_table));
    }
    int ok = dl->table != NULL && (dl->cid_len == 0 || dl->cid_table != NULL) &&
             siptls__dtls_ratelimit_new(&dl->rate, RATE_SLOTS, c->dtls_handshake_rate) == 0 &&
             siptls__dtls_hello_cache_new(&dl->hellos, HELLO_CACHE_SLOTS, HELLO_MAX,
                                          HELLO_EXPIRE_MS) == 0 &&
             siptls__dtls_random_bytes(dl->secret[0], COOKIE_SECRET_LEN) == 0;
    dl->rotated_ms = siptls__engine_now(e);
    if (!ok || siptls__dtls_make_hello_object(dl) != SIPTLS_OK) {
        dl->l = NULL;
        dl->fd = -1; /* still the engine's: it closes it */
        siptls__dtls_listener_unref(dl);
        return SIPTLS_ERR_NOMEM;
    }
    /* Sessions may outlive the listener for a moment (the engine closes
     * listeners first): they keep the socket, to send close_notify, and
     * the last of them closes it. */
    siptls__dtls_route_add(sh, dl);
    siptls__listener_take_fd(l);
    siptls__listener_set_tp(l, dl);
    return SIPTLS_OK;
}

void siptls__dtls_listener_io(siptls__listener *l)
{
    dtls_listener *dl = siptls__listener_tp(l);
    siptls_engine *e = dl->engine;
    siptls__dtls_rotate_secret(dl, siptls__engine_now(e));
    emit_ctx ec = {dl, NULL};
    /* A host callback run from here could shut the engine down: hold the
     * listener state until we are out. */
    dl->refs++;
    dtls_shared *sh = siptls__dtls_shared_of(e); /* the listener holds a reference */
    /* recvmmsg(): up to RX_BATCH datagrams per call, none ever cut
     * (dtls_batch.c); a short batch means the socket is empty. */
    unsigned done = 0;
    while (done < READS_PER_WAKEUP && dl->l != NULL) {
        unsigned want = READS_PER_WAKEUP - done < RX_BATCH ? READS_PER_WAKEUP - done : RX_BATCH;
        int got = siptls__dtls_rx_batch_read(sh, dl->fd, want, dl->pktinfo);
        if (got <= 0) {
            break;
        }
        for (unsigned i = 0; i < (unsigned)got; i++) {
            size_t n;
            int trunc;
            const struct sockaddr *from;
            socklen_t from_len;
            struct msghdr *mh;
            const uint8_t *dg = siptls__dtls_rx_batch_get(sh, i, &n, &trunc, &from, &from_len, &mh);
            if (dl->l == NULL) {
                /* the host closed the listener: the rest goes with it */
                siptls__dtls_rx_batch_done(sh, i);
                continue;
            }
            if (dl->pktinfo && siptls__udp_pktinfo_local(mh, &dl->local, &dl->cur_local) != 0) {
                memcpy(&dl->cur_local, &dl->local, sizeof(dl->cur_local));
            }
            if (trunc) {
                siptls__count(e, SIPTLS__EV_DTLS_JUNK, 1);
            } else {
                siptls__dtls_dispatch(&ec, sh, dl->fd, dg, n, from, from_len);
            }
            siptls__dtls_rx_batch_done(sh, i);
        }
        done += (unsigned)got;
        if ((unsigned)got < want) {
            break;
        }
    }
    siptls__dtls_listener_unref(dl);
}

void siptls__dtls_listener_close(siptls__listener *l)
{
    dtls_listener *dl = siptls__listener_tp(l);
    if (dl == NULL) {
        return;
    }
    dl->l = NULL;
    siptls__listener_set_tp(l, NULL);
    siptls__dtls_route_del(siptls__dtls_shared_of(dl->engine), dl);
    siptls__dtls_listener_unref(dl);
}
