/* siptls — DTLS transport: ClientHellos from unknown peers — cookie
 * secrets, stateless HelloVerifyRequests, the cookie check before any
 * per-peer state (RFC 6347 §4.2.1), fragmented hellos, and peers that
 * restart (RFC 6347 §4.2.8). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dtls_transport.h"

int siptls__dtls_random_bytes(uint8_t *p, size_t n)
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
void siptls__dtls_rotate_secret(dtls_listener *dl, uint64_t now)
{
    const siptls_config *c = siptls__engine_config(dl->engine);
    uint64_t life = (uint64_t)(c->dtls_cookie_lifetime ? c->dtls_cookie_lifetime : 60) * 1000;
    if (now - dl->rotated_ms < life) {
        return;
    }
    uint8_t fresh[COOKIE_SECRET_LEN];
    if (siptls__dtls_random_bytes(fresh, sizeof(fresh)) != 0) {
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
        siptls__dtls_set_cookie_secret(dl->hello, dl->secret[0]);
    }
}

/* Every object gets the listener's secret for both cookies: the DTLS 1.2
 * HelloVerifyRequest cookie (wolfSSL_DTLS_SetCookieSecret) and the DTLS
 * 1.3 HelloRetryRequest cookie, which wolfSSL makes with a secret of its
 * own (wolfSSL_send_hrr_cookie; a DTLS 1.3 server object starts with a
 * random one, so without this a fresh object would refuse the cookie the
 * hello object made). The 1.3 call fails on a DTLS 1.2-only object, which
 * needs no such secret. */
void siptls__dtls_set_cookie_secret(WOLFSSL *ssl, const uint8_t *secret)
{
    wolfSSL_DTLS_SetCookieSecret(ssl, secret, COOKIE_SECRET_LEN);
#ifdef WOLFSSL_DTLS13
    if (wolfSSL_version(ssl) == DTLS1_3_VERSION) {
        (void)wolfSSL_send_hrr_cookie(ssl, secret, COOKIE_SECRET_LEN);
    }
#endif
}

int siptls__dtls_make_hello_object(dtls_listener *dl)
{
    if (dl->hello != NULL && dl->l != NULL && dl->hello_gen != siptls__listener_sec_gen(dl->l)) {
        /* A reload replaced the security contexts: this object still
         * speaks the old versions (a DTLS 1.3 HelloRetryRequest where the
         * new configuration checks a 1.2 cookie, or the reverse: every
         * hello's cookie was then bad) and points at the old context. */
        siptls__dtls_free_ssl(&dl->hello);
    }
    if (dl->hello != NULL) {
        return SIPTLS_OK;
    }
    dl->hello_gen = dl->l != NULL ? siptls__listener_sec_gen(dl->l) : 0;
    dl->hello =
        dl->l != NULL ? siptls__listener_server_ssl(dl->l, (struct sockaddr *)&dl->local) : NULL;
    if (dl->hello == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    siptls__dtls_setup_ssl(dl->hello, &dl->hello_io);
    siptls__dtls_set_cookie_secret(dl->hello, dl->secret[0]);
    return SIPTLS_OK;
}

/* Stateless: answer a ClientHello with a HelloVerifyRequest. */
static void send_hello_verify(dtls_listener *dl, const uint8_t *dg, size_t len,
                              const struct sockaddr *from, socklen_t from_len)
{
    if (siptls__dtls_make_hello_object(dl) != SIPTLS_OK) {
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
        siptls__count(dl->engine, SIPTLS__EV_DTLS_COOKIE_SENT, 1);
        /* wolfSSL_clear is safe after a clean HelloVerifyRequest only. */
        if (wolfSSL_clear(dl->hello) == WOLFSSL_SUCCESS) {
            siptls__dtls_setup_ssl(dl->hello, io);
            siptls__dtls_set_cookie_secret(dl->hello, dl->secret[0]);
            return;
        }
    } else {
        siptls__count(dl->engine, SIPTLS__EV_DTLS_BAD_RECORD, 1);
    }
    siptls__dtls_free_ssl(&dl->hello);
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
        siptls__count(e, SIPTLS__EV_DTLS_RATE_LIMITED, 1);
        p->refused = 1;
        return -1;
    }
    if (!p->restart) {
        siptls__flow *f = siptls__flow_new_inbound(dl->l, -1, p->from, p->from_len);
        if (f == NULL) {
            p->refused = 1;
            return -1;
        }
        dtls_session *s = p->s;
        s->f = f;
        s->dl = dl;
        dl->refs++;
        if (p->random != NULL) {
            memcpy(s->client_random, p->random, sizeof(s->client_random));
            s->has_random = 1;
        }
        s->io.peer = siptls__flow_remote(f, &s->io.peer_len);
        s->next_io.peer = s->io.peer;
        s->next_io.peer_len = s->io.peer_len;
        siptls__dtls_set_local(s, &dl->cur_local);
        siptls__flow_set_tp(f, s);
        siptls__dtls_table_add(dl, s);
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
    if (dl->l == NULL) {
        return NULL;
    }
    for (int k = 0; k < (dl->have_prev ? 2 : 1); k++) {
        WOLFSSL *ssl = siptls__listener_server_ssl(dl->l, (struct sockaddr *)&dl->cur_local);
        if (ssl == NULL) {
            return NULL;
        }
        dtls_io *io = p->io;
        if (dl->pktinfo && !p->restart) {
            io->local = &dl->cur_local; /* until the session has its own copy */
        }
        siptls__dtls_setup_ssl(ssl, io);
        siptls__dtls_set_cookie_secret(ssl, dl->secret[k]);
        /* The exact sockaddr bytes the hello object used for the cookie. */
        wolfSSL_dtls_set_peer(ssl, (void *)p->from, (unsigned)p->from_len);
        wolfDTLS_SetChGoodCb(ssl, cookie_good, p);
        if (dl->cid_len != 0) {
            /* Our CID for this peer's records (RFC 9147 §9), random and
             * unique among the listener's sessions; a DTLS 1.2 hello
             * negotiates none (wolfSSL 5.7.2 has CID on 1.3 only). */
            uint8_t cid[SIPTLS__DTLS_CID_MAX];
            if (siptls__dtls_cid_make(dl, cid) == 0) {
                (void)siptls__dtls_cid_offer(ssl, cid, dl->cid_len);
            }
        }
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

/* A cookie that failed with both secrets (forged, expired, replayed from
 * another address). DTLS 1.2: a fresh HelloVerifyRequest, the client tries
 * again. DTLS 1.3: nothing; a client that got a HelloRetryRequest must
 * abort on a second one (RFC 8446 §4.1.4: "If a client receives a second
 * HelloRetryRequest in the same connection [...], it MUST abort the
 * handshake"), and wolfSSL's hello object cannot make one for a hello that
 * carries a cookie extension. */
static void cookie_refused(dtls_listener *dl, const uint8_t *dg, size_t len,
                           const siptls__dtls_hello *h, const struct sockaddr *from,
                           socklen_t from_len)
{
    siptls__count(dl->engine, SIPTLS__EV_DTLS_COOKIE_BAD, 1);
    if (!h->cookie_ext) {
        send_hello_verify(dl, dg, len, from, from_len);
    }
}

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
            siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        }
        return;
    }
    siptls__dtls_scan whole_scan;
    siptls__dtls_hello wh;
    if (siptls__dtls_scan_datagram(dl->whole, wl, &whole_scan) != 0 ||
        !siptls__dtls_is_client_hello(&whole_scan, &wh) || wh.fragmented) {
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        return;
    }
    siptls__dtls_on_client_hello(dl, dl->whole, wl, &whole_scan, &wh, from, from_len, existing);
}

void siptls__dtls_on_client_hello(dtls_listener *dl, const uint8_t *dg, size_t len,
                                  const siptls__dtls_scan *scan, const siptls__dtls_hello *h,
                                  const struct sockaddr *from, socklen_t from_len,
                                  dtls_session *existing)
{
    siptls_engine *e = dl->engine;
    if (h->fragmented) {
        on_hello_fragment(dl, scan, h, from, from_len, existing);
        return;
    }
    if (scan->n_records != 1) {
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        return;
    }
    if (existing != NULL && h->frag_len >= 2 + 32) {
        /* A late duplicate of the hello that made this session (the
         * network duplicated it) carries the session's client random: it
         * is not a restart. */
        if (existing->has_random &&
            memcmp(existing->client_random, h->frag + 2, sizeof(existing->client_random)) == 0) {
            siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
            return;
        }
    }
    if (!siptls__dtls_hello_has_cookie(h)) {
        /* RFC 6347 §4.2.1 (HelloVerifyRequest), RFC 9147 §5.1
         * (HelloRetryRequest with a cookie extension): stateless. */
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
        siptls__dtls_free_ssl(&existing->next);
        WOLFSSL *ssl = probe_hello(&p, dg, len, &ret);
        if (ssl == NULL) {
            if (!p.good) {
                cookie_refused(dl, dg, len, h, from, from_len);
            }
            return;
        }
        existing->next = ssl;
        existing->next_since_ms = siptls__engine_now(e);
        existing->next_has_random = p.random != NULL;
        if (p.random != NULL) {
            memcpy(existing->next_random, p.random, sizeof(existing->next_random));
        }
        siptls__dtls_restart_step(existing, NULL, 0);
        return;
    }
    dtls_session *s = siptls__dtls_session_new(e, dl->fd);
    if (s == NULL) {
        return;
    }
    p.s = s;
    p.io = &s->io;
    WOLFSSL *ssl = probe_hello(&p, dg, len, &ret);
    if (ssl == NULL) {
        free(s);
        if (!p.good) {
            cookie_refused(dl, dg, len, h, from, from_len);
        }
        return;
    }
    /* The flow exists since cookie_good(); the handshake goes on. */
    s->ssl = ssl;
    siptls__dtls_cid_adopt(dl, s);
    siptls__flow *f = s->f;
    if (ret == WOLFSSL_SUCCESS) {
        siptls__dtls_handshake_done(s);
        return;
    }
    int st = siptls__dtls_map_error(e, ssl, &s->io, ret, 1);
    if (st != SIPTLS_AGAIN && st != DTLS_DROPPED) {
        wolfSSL_shutdown(ssl);
        siptls__flow_handshake_failed(f, ssl, st);
        return;
    }
    s->retx_ms = siptls__dtls_retx_deadline(e, ssl);
    siptls__flow_rearm(f);
}

/* The new handshake of a restarted peer: drive it; when it completes,
 * the old flow closes and a new one takes its place. */
void siptls__dtls_restart_step(dtls_session *s, const uint8_t *dg, size_t len)
{
    siptls__flow *old = s->f;
    siptls_engine *e = siptls__flow_engine(old);
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
        int st = siptls__dtls_map_error(e, s->next, &s->next_io, ret, 1);
        if (st == SIPTLS_AGAIN || st == DTLS_DROPPED) {
            s->next_retx_ms = siptls__dtls_retx_deadline(e, s->next);
        } else {
            wolfSSL_shutdown(s->next);
            siptls__dtls_free_ssl(&s->next);
            s->next_retx_ms = 0;
            /* no flow of its own: counted as a flow's failed handshake would be */
            siptls__count_handshake_failure(e, st);
        }
        siptls__flow_rearm(old);
        return;
    }
    /* Check the new peer before the old association goes. */
    int st = dl != NULL && dl->l != NULL ? siptls__listener_check_peer(dl->l, s->next)
                                         : SIPTLS_ERR_SHUTDOWN;
    if (st != SIPTLS_OK) {
        wolfSSL_shutdown(s->next);
        siptls__dtls_free_ssl(&s->next);
        s->next_retx_ms = 0;
        siptls__count_handshake_failure(e, st);
        return;
    }
    WOLFSSL *ssl = s->next;
    s->next = NULL;
    struct sockaddr_storage remote, local;
    socklen_t remote_len;
    const struct sockaddr *was = siptls__flow_remote(old, &remote_len);
    memcpy(&remote, was, remote_len);
    memcpy(&local, &s->local, sizeof(local));
    uint8_t random[32];
    uint8_t has_random = s->next_has_random;
    memcpy(random, s->next_random, sizeof(random));
    char text[64];
    siptls__addr_text((struct sockaddr *)&remote, text, sizeof(text));
    siptls__log(e, SIPTLS_LOG_INFO, "dtls flow %llu %s: peer restarted (new handshake): replacing",
                (unsigned long long)siptls__flow_id(old), text);
    /* Keep the listener alive across the old session's release. */
    dl->refs++;
    siptls__flow_fail(old, SIPTLS_ERR_RESET, 0);
    dtls_session *ns = siptls__dtls_session_new(e, dl->fd);
    siptls__flow *f =
        ns && dl->l ? siptls__flow_new_inbound(dl->l, -1, (struct sockaddr *)&remote, remote_len)
                    : NULL;
    if (f == NULL) {
        free(ns);
        wolfSSL_free(ssl);
        siptls__dtls_listener_unref(dl);
        return;
    }
    ns->f = f;
    ns->dl = dl; /* takes the reference */
    ns->ssl = ssl;
    memcpy(ns->client_random, random, sizeof(ns->client_random));
    ns->has_random = has_random;
    ns->io.peer = siptls__flow_remote(f, &ns->io.peer_len);
    ns->next_io.peer = ns->io.peer;
    ns->next_io.peer_len = ns->io.peer_len;
    siptls__dtls_set_local(ns, &local);
    siptls__dtls_setup_ssl(ssl, &ns->io);
    siptls__flow_set_tp(f, ns);
    siptls__dtls_table_add(dl, ns);
    siptls__dtls_cid_adopt(dl, ns);
    siptls__dtls_handshake_done(ns);
}
