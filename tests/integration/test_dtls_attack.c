/* Integration: the DTLS server against hostile and unusual peers, over
 * loopback UDP with a real libev loop: cookie-less ClientHello floods from
 * 1,000 source addresses (no state, no amplification), garbage and
 * truncated datagrams, forged and replayed records inside a session,
 * records for no session, STUN keepalives (IPv4, IPv6), cookies replayed
 * from another address and across secret rotations, the per-source
 * handshake rate limit, fragmented ClientHellos, and a peer that restarts
 * (RFC 6347 §4.2.8). Peers are raw UDP sockets or a plain wolfSSL DTLS
 * client driven from the test. Every test has a watchdog and ends
 * asserting zero flows open and no fd leaked. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>

#include <wolfssl/ssl.h>

#include "pair.h"

#include "../../dtls/dtls_internal.h"

static tu_pair *E;
/* The version the raw clients speak: the suite runs once per DTLS version
 * (the server offers both). */
static int g_v13;
static struct sockaddr_storage g_srv; /* the listener's address */
static socklen_t g_srv_len;

/* A filter's state lives in the test: gone once the test ends. */
static void remove_filter(tu_pair *p)
{
    if (p->server != NULL) {
        siptls__dtls_test_set_filter(p->server, NULL, NULL);
    }
}

static int setup_with(void **state, const char *listen)
{
    E = tu_pair_new(state, listen);
    E->on_teardown = remove_filter;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "dtls:127.0.0.1:0");
}

static int setup6(void **state)
{
    return setup_with(state, "dtls:[::1]:0");
}

static void start(void)
{
    tu_pair_start_server(E);
    unsigned port = siptls_listener_port(E->server, 0);
    memset(&g_srv, 0, sizeof(g_srv));
    if (strstr(E->scfg.listen[0], "[::1]") != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&g_srv;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        in6->sin6_addr = in6addr_loopback;
        g_srv_len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&g_srv;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g_srv_len = sizeof(*in);
    }
}

static siptls_stats stats(void)
{
    return tu_stats(E->server);
}

static void pump(double seconds)
{
    tu_run_for(E->loop, seconds);
}

/* ---- raw UDP peers ---------------------------------------------------------- */

/* A UDP socket bound to `ip` (NULL: loopback of the server's family), port
 * `port` (0: any), connected to the server. */
static int udp_peer(const char *ip, unsigned port)
{
    int fam = g_srv.ss_family;
    int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage a;
    memset(&a, 0, sizeof(a));
    socklen_t al;
    if (fam == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, ip ? ip : "127.0.0.1", &in->sin_addr), 1);
        al = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, ip ? ip : "::1", &in6->sin6_addr), 1);
        al = sizeof(*in6);
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&a, al), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&g_srv, g_srv_len), 0);
    return fd;
}

/* Receive one datagram, running the loop meanwhile; -1 on timeout. */
static ssize_t udp_recv(int fd, uint8_t *buf, size_t cap, double timeout_s)
{
    double until = ev_time() + timeout_s;
    for (;;) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0) {
            return n;
        }
        if (ev_time() > until) {
            return -1;
        }
        ev_run(E->loop, EVRUN_NOWAIT);
        usleep(500);
    }
}

/* ---- a plain wolfSSL DTLS client driven from the test ----------------------- */

typedef struct rawc {
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    int fd;
    int capture;        /* keep outgoing datagrams in out[] instead of sending */
    int fragment_hello; /* send ClientHellos in two handshake fragments */
    uint8_t out[8][4096];
    size_t out_len[8];
    int n_out;
    uint8_t in[65536];
    size_t in_len;
    int have_in;
} rawc;

static int rc_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    rawc *r = ctx;
    const uint8_t *b = (const uint8_t *)buf;
    /* keep the first datagrams (sent or not) */
    if (r->n_out < 8 && (size_t)sz <= sizeof(r->out[0])) {
        memcpy(r->out[r->n_out], buf, (size_t)sz);
        r->out_len[r->n_out++] = (size_t)sz;
    }
    if (r->capture) {
        return sz;
    }
    siptls__dtls_scan s;
    siptls__dtls_hello h;
    if (r->fragment_hello && siptls__dtls_scan_datagram(b, (size_t)sz, &s) == 0 &&
        s.n_records == 1 && siptls__dtls_is_client_hello(&s, &h) && !h.fragmented) {
        /* A small-MTU client: the hello in two fragments, each its own
         * record and datagram, second one first (both with the record
         * number of the original, which the client goes on from). */
        size_t cut = 60;
        for (int part = 1; part >= 0; part--) {
            size_t off = part ? cut : 0;
            size_t len = part ? h.msg_len - cut : cut;
            uint8_t d[2048];
            memcpy(d, b, 13);
            size_t body = 12 + len;
            d[11] = (uint8_t)(body >> 8);
            d[12] = (uint8_t)body;
            memcpy(d + 13, b + 13, 12);
            d[13 + 6] = (uint8_t)(off >> 16);
            d[13 + 7] = (uint8_t)(off >> 8);
            d[13 + 8] = (uint8_t)off;
            d[13 + 9] = (uint8_t)(len >> 16);
            d[13 + 10] = (uint8_t)(len >> 8);
            d[13 + 11] = (uint8_t)len;
            memcpy(d + 25, h.frag + off, len);
            (void)send(r->fd, d, 25 + len, 0);
        }
        return sz;
    }
    (void)send(r->fd, buf, (size_t)sz, 0);
    return sz;
}

static int rc_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    rawc *r = ctx;
    if (r->have_in) {
        r->have_in = 0;
        size_t n = r->in_len < (size_t)sz ? r->in_len : (size_t)sz;
        memcpy(buf, r->in, n);
        return (int)n;
    }
    if (r->capture) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    ssize_t n = recv(r->fd, buf, (size_t)sz, MSG_DONTWAIT);
    if (n < 0) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    return (int)n;
}

static rawc *rawc_new(int fd)
{
    rawc *r = calloc(1, sizeof(*r));
    r->fd = fd;
#ifdef WOLFSSL_DTLS13
    r->ctx = wolfSSL_CTX_new(g_v13 ? wolfDTLSv1_3_client_method() : wolfDTLSv1_2_client_method());
#else
    r->ctx = wolfSSL_CTX_new(wolfDTLSv1_2_client_method());
#endif
    assert_non_null(r->ctx);
    assert_int_equal(wolfSSL_CTX_load_verify_locations(r->ctx, tu_pki("ca.pem"), NULL),
                     WOLFSSL_SUCCESS);
    r->ssl = wolfSSL_new(r->ctx);
    wolfSSL_SSLSetIORecv(r->ssl, rc_recv);
    wolfSSL_SSLSetIOSend(r->ssl, rc_send);
    wolfSSL_SetIOReadCtx(r->ssl, r);
    wolfSSL_SetIOWriteCtx(r->ssl, r);
    wolfSSL_dtls_set_using_nonblock(r->ssl, 1);
    return r;
}

static void rawc_free(rawc *r)
{
    wolfSSL_free(r->ssl);
    wolfSSL_CTX_free(r->ctx);
    if (r->fd >= 0) {
        close(r->fd);
    }
    free(r);
}

/* Drive the client's handshake, running the engine's loop in between. */
static void rawc_handshake(rawc *r, double timeout_s)
{
    double until = ev_time() + timeout_s;
    double retx = ev_time() + 1.0;
    for (;;) {
        int ret = wolfSSL_connect(r->ssl);
        if (ret == WOLFSSL_SUCCESS) {
            return;
        }
        int err = wolfSSL_get_error(r->ssl, ret);
        if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
            fail_msg("raw client handshake failed: %d", err);
        }
        if (ev_time() > until) {
            fail_msg("watchdog: raw client handshake not done in %.1f s", timeout_s);
        }
        if (ev_time() > retx) {
            wolfSSL_dtls_got_timeout(r->ssl);
            retx = ev_time() + 1.0;
        }
        ev_run(E->loop, EVRUN_NOWAIT);
        usleep(500);
    }
}

/* A real ClientHello (no cookie) made by wolfSSL, as bytes. */
static size_t make_client_hello(uint8_t *out)
{
    rawc *r = rawc_new(-1);
    r->capture = 1;
    wolfSSL_connect(r->ssl);
    assert_int_equal(r->n_out, 1);
    size_t n = r->out_len[0];
    memcpy(out, r->out[0], n);
    rawc_free(r);
    return n;
}

/* ---- tests ------------------------------------------------------------------ */

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

/* 1,000 cookie-less ClientHellos from 1,000 source addresses: each gets
 * exactly one HelloVerifyRequest no larger than the hello; no session,
 * no memory kept. */
static void test_cookieless_flood(void **state)
{
    (void)state;
    start();
    uint8_t ch[2048], buf[2048];
    size_t chl = make_client_hello(ch);
    siptls__dtls_scan s;
    siptls__dtls_hello h;
    assert_int_equal(siptls__dtls_scan_datagram(ch, chl, &s), 0);
    assert_int_equal(siptls__dtls_is_client_hello(&s, &h), 1);
    assert_int_equal(h.cookie_len, 0);
    /* warm up allocator caches with a first round */
    pump(0.01);
    size_t heap0 = 0;
    for (unsigned i = 0; i < 1000; i++) {
        if (i == 50) {
            heap0 = heap_in_use();
        }
        char ip[32];
        snprintf(ip, sizeof(ip), "127.0.%u.%u", 1 + i / 250, 1 + i % 250);
        int fd = udp_peer(ip, 0);
        assert_int_equal(send(fd, ch, chl, 0), (ssize_t)chl);
        ssize_t n = udp_recv(fd, buf, sizeof(buf), 2.0);
        assert_true(n > 0);
        assert_true((size_t)n <= chl);
        assert_int_equal(siptls__dtls_is_hello_verify(buf, (size_t)n), 1);
        close(fd);
    }
    size_t heap1 = heap_in_use();
    siptls_stats st = stats();
    assert_int_equal(st.dtls_cookies_sent, 1000);
    assert_int_equal(st.dtls_flows_open, 0);
    assert_int_equal(st.flows_accepted, 0);
    assert_int_equal(st.dtls_rate_limited, 0);
    if (heap0 != 0) {
        /* mallinfo2 is meaningless under ASan (0): then only the rest counts */
        assert_true(heap1 < heap0 + 64 * 1024);
    }
}

/* Junk of every kind at the listener, and forged records inside a live
 * session: counted and dropped, the session goes on. */
typedef struct forge {
    int armed;
    unsigned injected;
} forge;

static void forging_filter(void *user, int fd, const uint8_t *dg, size_t len,
                           const struct sockaddr *from, socklen_t from_len,
                           siptls__dtls_test_emit emit, void *emit_ctx)
{
    (void)fd;
    forge *fg = user;
    /* application data: DTLS 1.2 type 23, DTLS 1.3 a unified header in
     * epoch 3 */
    if (fg->armed && len > 30 && (dg[0] == 23 || ((dg[0] & 0xE0) == 0x20 && (dg[0] & 3) == 3))) {
        uint8_t bad[4096];
        /* a record with a flipped ciphertext bit (bad MAC) */
        memcpy(bad, dg, len);
        bad[len - 5] ^= 0x40;
        emit(emit_ctx, bad, len, from, from_len);
        /* the same record cut short */
        emit(emit_ctx, dg, len - 7, from, from_len);
        /* a plaintext fatal alert in epoch 0 (unauthenticated) */
        static const uint8_t alert[] = {21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 2, 40};
        emit(emit_ctx, alert, sizeof(alert), from, from_len);
        /* junk (RTP-like first byte) and a malformed STUN message */
        static const uint8_t rtp[] = {0x80, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        emit(emit_ctx, rtp, sizeof(rtp), from, from_len);
        static const uint8_t stun[] = {0, 1, 0, 4, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3};
        emit(emit_ctx, stun, sizeof(stun), from, from_len);
        /* the real record, then a replay of it */
        emit(emit_ctx, dg, len, from, from_len);
        emit(emit_ctx, dg, len, from, from_len);
        fg->injected++;
        return;
    }
    emit(emit_ctx, dg, len, from, from_len);
}

static int srv_msgs(void *arg)
{
    return E->srec.n_msgs >= *(unsigned *)arg;
}

static int srv_ups(void *arg)
{
    return E->srec.ups >= *(unsigned *)arg;
}

static int none_open(void *arg)
{
    (void)arg;
    return stats().flows_open == 0;
}

/* arg: {junk, bad records}: the server counted at least that many */
static int junk_bad_at_least(void *arg)
{
    const unsigned *want = arg;
    siptls_stats st = stats();
    return st.dtls_junk >= want[0] && st.dtls_bad_records >= want[1];
}

static void test_garbage_and_forgery(void **state)
{
    (void)state;
    start();
    /* junk at the listener from strangers */
    int fd = udp_peer(NULL, 0);
    uint8_t ch[2048];
    size_t chl = make_client_hello(ch);
    static const uint8_t junk[] = {0x80, 0x60, 0, 1};
    assert_int_equal(send(fd, junk, sizeof(junk), 0), 4);
    assert_true(chl > 20);
    assert_int_equal(send(fd, ch, 20, 0), 20); /* truncated record */
    uint8_t app[40] = {23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 7, 0, 27};
    assert_int_equal(send(fd, app, sizeof(app), 0), 40); /* a record for no session */
    assert_int_equal(send(fd, "", 0, 0), 0);
    unsigned counts[2] = {2, 2};
    tu_run_pred(E->loop, junk_bad_at_least, counts, 5, "the four datagrams read");
    siptls_stats st = stats();
    assert_int_equal(st.dtls_junk, 2);
    assert_int_equal(st.dtls_bad_records, 2);
    assert_int_equal(st.dtls_flows_open, 0);
    assert_int_equal(st.dtls_cookies_sent, 0);
    close(fd);

    /* a session, then forged and replayed records inside it */
    siptls_engine *client = tu_pair_engine(E, &E->ccfg, NULL, NULL);
    siptls_flow_id f = 0;
    char uri[64];
    snprintf(uri, sizeof(uri), "dtls:127.0.0.1:%u", siptls_listener_port(E->server, 0));
    uint8_t *m = tu_make_request(500, 1, "DTLS");
    assert_int_equal(siptls_send_to(client, uri, m, 500, &f), SIPTLS_OK);
    unsigned want = 1;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "first message");
    forge fg = {1, 0};
    assert_int_equal(siptls__dtls_test_set_filter(E->server, forging_filter, &fg), SIPTLS_OK);
    assert_int_equal(siptls_send(client, f, m, 500), SIPTLS_OK);
    want = 2;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "second message through the forgeries");
    counts[0] = 2 + 2;
    counts[1] = 2 + 3;
    tu_run_pred(E->loop, junk_bad_at_least, counts, 5, "the forgeries read");
    siptls__dtls_test_set_filter(E->server, NULL, NULL);
    fg.armed = 0;
    assert_int_equal(fg.injected, 1);
    assert_int_equal(E->srec.n_msgs, 2);
    assert_int_equal(E->srec.msgs[1].crc, tu_crc32(m, 500));
    st = stats();
    /* bad MAC, truncated, replay; the plaintext alert is ignored by wolfSSL
     * after the handshake */
    assert_true(st.dtls_bad_records >= 2 + 3);
    assert_int_equal(st.dtls_junk, 2 + 2);
    assert_int_equal(st.dtls_flows_open, 1);
    /* and the session still works both ways */
    assert_int_equal(siptls_send(client, f, m, 500), SIPTLS_OK);
    want = 3;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "third message");
    free(m);
    siptls_close(client, f);
    tu_run_pred(E->loop, tu_pair_all_closed, E, 5, "both sides closed");
    assert_int_equal(stats().flows_open, 0);
    tu_pair_engine_free(E, client);
}

static void stun_roundtrip(void)
{
    start();
    int fd = udp_peer(NULL, 0);
    struct sockaddr_storage me;
    socklen_t ml = sizeof(me);
    getsockname(fd, (struct sockaddr *)&me, &ml);
    static const uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    for (int fp = 0; fp <= 1; fp++) {
        uint8_t req[64], resp[256];
        size_t n = siptls__dtls_stun_request(txid, fp, req);
        assert_int_equal(send(fd, req, n, 0), (ssize_t)n);
        ssize_t rn = udp_recv(fd, resp, sizeof(resp), 2.0);
        assert_true(rn > 20);
        struct sockaddr_storage got;
        assert_int_equal(siptls__dtls_stun_parse_mapped(resp, (size_t)rn, &got), 0);
        assert_int_equal(got.ss_family, me.ss_family);
        if (me.ss_family == AF_INET) {
            assert_memory_equal(&((struct sockaddr_in *)&got)->sin_addr,
                                &((struct sockaddr_in *)&me)->sin_addr, 4);
            assert_int_equal(((struct sockaddr_in *)&got)->sin_port,
                             ((struct sockaddr_in *)&me)->sin_port);
        } else {
            assert_memory_equal(&((struct sockaddr_in6 *)&got)->sin6_addr,
                                &((struct sockaddr_in6 *)&me)->sin6_addr, 16);
            assert_int_equal(((struct sockaddr_in6 *)&got)->sin6_port,
                             ((struct sockaddr_in6 *)&me)->sin6_port);
        }
        assert_int_equal((size_t)rn, 20 + (me.ss_family == AF_INET ? 12u : 24u) + (fp ? 8u : 0u));
    }
    /* a malformed one is dropped, not answered */
    uint8_t bad[20] = {0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x43};
    assert_int_equal(send(fd, bad, sizeof(bad), 0), 20);
    unsigned counts[2] = {1, 0};
    tu_run_pred(E->loop, junk_bad_at_least, counts, 5, "the malformed request read");
    /* an answer would be on our socket by now (loopback delivers at send) */
    uint8_t resp[256];
    assert_true(recv(fd, resp, sizeof(resp), MSG_DONTWAIT) < 0);
    close(fd);
    siptls_stats st = stats();
    assert_int_equal(st.dtls_stun, 2);
    assert_int_equal(st.dtls_junk, 1);
    assert_int_equal(st.dtls_flows_open, 0);
}

static void test_stun_v4(void **state)
{
    (void)state;
    stun_roundtrip();
}

static void test_stun_v6(void **state)
{
    (void)state;
    stun_roundtrip();
}

/* The hello with its cookie, as a wolfSSL client makes it after the
 * HelloVerifyRequest: returns its length. */
static size_t hello_with_cookie(rawc *r, int fd, uint8_t *out)
{
    r->capture = 1;
    wolfSSL_connect(r->ssl);
    assert_int_equal(r->n_out, 1);
    assert_int_equal(send(fd, r->out[0], r->out_len[0], 0), (ssize_t)r->out_len[0]);
    ssize_t n;
    /* skip what a live session on the same address gets (DTLS 1.3: ACKs,
     * a NewSessionTicket) */
    do {
        n = udp_recv(fd, r->in, sizeof(r->in), 2.0);
    } while (n > 0 && !siptls__dtls_is_hello_verify(r->in, (size_t)n) && r->in[0] != 22);
    assert_true(n > 0);
    assert_int_equal(siptls__dtls_is_hello_verify(r->in, (size_t)n), 1);
    r->in_len = (size_t)n;
    r->have_in = 1;
    r->n_out = 0;
    wolfSSL_connect(r->ssl);
    assert_int_equal(r->n_out, 1);
    memcpy(out, r->out[0], r->out_len[0]);
    return r->out_len[0];
}

/* 2 = ServerHello (the cookie was taken), 3 = HelloVerifyRequest or (DTLS
 * 1.3) HelloRetryRequest, -1 = no answer. */
static int answer_type_within(int fd, double timeout_s)
{
    uint8_t buf[4096];
    ssize_t n;
    /* skip what is not an epoch-0 handshake record: on DTLS 1.3 a live
     * session on the same address also gets ACKs and a NewSessionTicket */
    do {
        n = udp_recv(fd, buf, sizeof(buf), timeout_s);
    } while (n > 0 && buf[0] != 22);
    if (n < 26) {
        return -1;
    }
    int type = siptls__dtls_is_hello_verify(buf, (size_t)n) ? 3 : buf[13];
    while (udp_recv(fd, buf, sizeof(buf), 0.05) > 0) {
    }
    return type;
}

static int answer_type(int fd)
{
    return answer_type_within(fd, 2.0);
}

/* The cookie secret changes every dtls_cookie_lifetime on a grid that
 * starts when the listener opens (`t0`, seconds of the loop clock): run
 * the loop until the grid phase is in [lo, hi) seconds. */
static void wait_phase(double t0, double life, double lo, double hi)
{
    double until = ev_time() + 2 * life + 1;
    for (;;) {
        ev_now_update(E->loop);
        double ph = fmod(ev_now(E->loop) - t0, life);
        if (ph >= lo && ph < hi) {
            return;
        }
        if (ev_time() > until) {
            fail_msg("watchdog: phase [%.2f, %.2f) not reached", lo, hi);
        }
        pump(0.02);
    }
}

static void test_cookie_binding_and_rotation(void **state)
{
    (void)state;
    E->scfg.dtls_cookie_lifetime = 1;
    E->scfg.dtls_handshake_timeout = 500;
    ev_now_update(E->loop);
    double t0 = ev_now(E->loop);
    start();
    uint8_t ch2[2048];

    /* replayed from another address: refused, answered with a fresh HVR */
    int fd = udp_peer("127.0.0.1", 0);
    rawc *r = rawc_new(-1);
    size_t n = hello_with_cookie(r, fd, ch2);
    int other = udp_peer("127.0.0.2", 0);
    assert_int_equal(send(other, ch2, n, 0), (ssize_t)n);
    /* DTLS 1.3: no second HelloRetryRequest (a client must abort on one);
     * wait less than a cookie period for the silence */
    assert_int_equal(answer_type_within(other, g_v13 ? 0.3 : 2.0), g_v13 ? -1 : 3);
    assert_int_equal(stats().dtls_cookie_bad, 1);
    assert_int_equal(stats().dtls_flows_open, 0);
    close(other);
    /* from the right address: taken (ServerHello) */
    assert_int_equal(send(fd, ch2, n, 0), (ssize_t)n);
    assert_int_equal(answer_type(fd), 2);
    assert_int_equal(stats().dtls_flows_open, 1);
    rawc_free(r);
    close(fd);
    tu_run_pred(E->loop, none_open, NULL, 3, "half-open session timed out");

    /* a cookie made early in a period, used early in the next one: made
     * with what is now the previous secret, still good */
    wait_phase(t0, 1.0, 0.1, 0.3);
    fd = udp_peer("127.0.0.3", 0);
    r = rawc_new(-1);
    n = hello_with_cookie(r, fd, ch2);
    pump(1.0);
    assert_int_equal(send(fd, ch2, n, 0), (ssize_t)n);
    assert_int_equal(answer_type(fd), 2);
    rawc_free(r);
    close(fd);
    tu_run_pred(E->loop, none_open, NULL, 3, "half-open session timed out");

    /* two periods later it is not, even when nothing arrived meanwhile
     * (the grid does not wait for traffic) */
    wait_phase(t0, 1.0, 0.1, 0.3);
    fd = udp_peer("127.0.0.4", 0);
    r = rawc_new(-1);
    n = hello_with_cookie(r, fd, ch2);
    pump(2.0);
    uint64_t bad = stats().dtls_cookie_bad;
    assert_int_equal(send(fd, ch2, n, 0), (ssize_t)n);
    assert_int_equal(answer_type_within(fd, g_v13 ? 0.3 : 2.0), g_v13 ? -1 : 3);
    assert_int_equal(stats().dtls_cookie_bad, bad + 1);
    rawc_free(r);
    close(fd);
    assert_int_equal(stats().dtls_flows_open, 0);
}

static void test_rate_limit(void **state)
{
    (void)state;
    E->scfg.dtls_handshake_rate = 2;
    E->scfg.dtls_handshake_timeout = 500;
    start();
    int fd[3];
    rawc *r[3];
    uint8_t ch2[3][2048];
    size_t n[3];
    for (int i = 0; i < 3; i++) {
        fd[i] = udp_peer("127.0.0.1", 0);
        r[i] = rawc_new(-1);
        n[i] = hello_with_cookie(r[i], fd[i], ch2[i]);
    }
    /* the same host, three handshakes at once: the third waits */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(send(fd[i], ch2[i], n[i], 0), (ssize_t)n[i]);
    }
    assert_int_equal(answer_type(fd[0]), 2);
    assert_int_equal(answer_type(fd[1]), 2);
    assert_int_equal(answer_type(fd[2]), -1); /* silently refused */
    siptls_stats st = stats();
    assert_int_equal(st.dtls_rate_limited, 1);
    assert_int_equal(st.dtls_cookie_bad, 0);
    /* its retransmission half a second later gets through */
    pump(0.6);
    assert_int_equal(send(fd[2], ch2[2], n[2], 0), (ssize_t)n[2]);
    assert_int_equal(answer_type(fd[2]), 2);
    for (int i = 0; i < 3; i++) {
        rawc_free(r[i]);
        close(fd[i]);
    }
    tu_run_pred(E->loop, none_open, NULL, 3, "half-open sessions timed out");
}

/* Issue 8 §4c: under mixed load, DTLS handshakes from a busy host timed
 * out. A hello refused by the rate limit got no answer; the client
 * retransmitted it after 1, 2, 4 s, and each time other handshakes from
 * the same host (arriving at random, while the CPU was busy with TLS) had
 * taken the tokens first: four refusals in a row outlast a 10 s handshake
 * timeout. Here the other handshakes are made to win every time: each of
 * the victim's hellos is preceded, in the same wakeup, by a fresh
 * competitor's hello from the same host that takes the token. The victim's
 * first hello is refused; its retransmission must be served. */
typedef struct contend {
    int n, next;
    uint8_t ch2[4][2048];
    size_t len[4];
    struct sockaddr_storage from[4];
    socklen_t from_len[4];
    unsigned victim_hellos;
} contend;

static void contend_filter(void *user, int fd, const uint8_t *dg, size_t len,
                           const struct sockaddr *from, socklen_t from_len,
                           siptls__dtls_test_emit emit, void *emit_ctx)
{
    (void)fd;
    contend *c = user;
    siptls__dtls_scan s;
    siptls__dtls_hello h;
    if (siptls__dtls_scan_datagram(dg, len, &s) == 0 && siptls__dtls_is_client_hello(&s, &h) &&
        siptls__dtls_hello_has_cookie(&h)) {
        c->victim_hellos++;
        if (c->next < c->n) {
            emit(emit_ctx, c->ch2[c->next], c->len[c->next], (struct sockaddr *)&c->from[c->next],
                 c->from_len[c->next]);
            c->next++;
        }
    }
    emit(emit_ctx, dg, len, from, from_len);
}

static int rec_up(void *arg)
{
    return ((tu_rec *)arg)->ups >= 1;
}

static int rec_closed(void *arg)
{
    return ((tu_rec *)arg)->closes >= 1;
}

static void test_rate_limit_serves_retransmission(void **state)
{
    (void)state;
    E->scfg.dtls_handshake_rate = 1;       /* a burst of one: a competitor empties it */
    E->scfg.dtls_handshake_timeout = 1500; /* the competitors' half-open sessions */
    start();
    contend c;
    memset(&c, 0, sizeof(c));
    int cfd[4];
    rawc *cr[4];
    for (int i = 0; i < 4; i++) {
        cfd[i] = udp_peer("127.0.0.1", 0);
        cr[i] = rawc_new(-1);
        c.len[i] = hello_with_cookie(cr[i], cfd[i], c.ch2[i]);
        c.from_len[i] = sizeof(c.from[i]);
        assert_int_equal(getsockname(cfd[i], (struct sockaddr *)&c.from[i], &c.from_len[i]), 0);
    }
    c.n = 4;
    assert_int_equal(siptls__dtls_test_set_filter(E->server, contend_filter, &c), SIPTLS_OK);

    E->ccfg.dtls_handshake_timeout = 6000;
    tu_rec *crec;
    siptls_engine *client = tu_pair_engine(E, &E->ccfg, NULL, &crec);
    char uri[64];
    snprintf(uri, sizeof(uri), "dtls:127.0.0.1:%u", siptls_listener_port(E->server, 0));
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(client, uri, &f), SIPTLS_OK);
    /* Refused at once (the competitor took the only token), served at
     * the first retransmission (1 s). Before the fix it was refused again
     * at 1 s and 3 s, and the next try (7 s) came after this watchdog. */
    unsigned want = 1;
    tu_run_pred(E->loop, srv_ups, &want, 5, "the refused handshake served at its retransmission");
    tu_run_pred(E->loop, rec_up, crec, 1, "client side up");
    assert_int_equal(crec->closes, 0);
    assert_true(stats().dtls_rate_limited >= 1);
    assert_true(c.victim_hellos >= 2);
    siptls__dtls_test_set_filter(E->server, NULL, NULL);

    siptls_close(client, f);
    tu_run_pred(E->loop, rec_closed, crec, 5, "client flow closed");
    tu_pair_engine_free(E, client);
    for (int i = 0; i < 4; i++) {
        rawc_free(cr[i]);
        close(cfd[i]);
    }
    tu_run_pred(E->loop, none_open, NULL, 5, "competitors' half-open sessions timed out");
}

static void test_fragmented_hello(void **state)
{
    (void)state;
    start();
    rawc *r = rawc_new(udp_peer(NULL, 0));
    r->fragment_hello = 1;
    rawc_handshake(r, 10);
    unsigned want = 1;
    tu_run_pred(E->loop, srv_ups, &want, 5, "server side up");
    uint8_t *m = tu_make_request(600, 3, "DTLS");
    assert_int_equal(wolfSSL_write(r->ssl, m, 600), 600);
    tu_run_pred(E->loop, srv_msgs, &want, 5, "message after a fragmented hello");
    assert_int_equal(E->srec.msgs[0].crc, tu_crc32(m, 600));
    free(m);
    siptls_stats st = stats();
    assert_int_equal(st.dtls_cookies_sent, 1);
    assert_int_equal(st.dtls_cookie_bad, 0);
    wolfSSL_shutdown(r->ssl);
    tu_run_pred(E->loop, none_open, NULL, 3, "closed by close_notify");
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_PEER_CLOSED);
    rawc_free(r);
}

typedef struct raw_reader {
    rawc *r;
    uint8_t buf[2048];
    int got;
} raw_reader;

/* Predicate: the raw client read something. */
static int raw_read_some(void *arg)
{
    raw_reader *rd = arg;
    if (rd->got <= 0) {
        rd->got = wolfSSL_read(rd->r->ssl, rd->buf, sizeof(rd->buf));
    }
    return rd->got > 0;
}

static void test_peer_restart(void **state)
{
    (void)state;
    start();
    int fd = udp_peer(NULL, 0);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    getsockname(fd, (struct sockaddr *)&me, &ml);
    unsigned port = ntohs(me.sin_port);
    rawc *a = rawc_new(fd);
    rawc_handshake(a, 10);
    uint8_t *m = tu_make_request(500, 1, "DTLS");
    assert_int_equal(wolfSSL_write(a->ssl, m, 500), 500);
    unsigned want = 1;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "message on the first session");
    siptls_flow_id first = E->srec.up_ids[0];

    /* late duplicates of its two ClientHellos (without and with cookie)
     * carry the session's client random: not a restart, dropped */
    siptls_stats before = stats();
    assert_int_equal(send(fd, a->out[0], a->out_len[0], 0), (ssize_t)a->out_len[0]);
    assert_int_equal(send(fd, a->out[1], a->out_len[1], 0), (ssize_t)a->out_len[1]);
    unsigned counts[2] = {0, (unsigned)before.dtls_bad_records + 2};
    tu_run_pred(E->loop, junk_bad_at_least, counts, 5, "the late hellos read");
    siptls_stats after = stats();
    assert_int_equal(after.dtls_bad_records, before.dtls_bad_records + 2);
    assert_int_equal(after.dtls_cookies_sent, before.dtls_cookies_sent);
    assert_int_equal(after.dtls_cookie_bad, before.dtls_cookie_bad);
    assert_int_equal(E->srec.closes, 0);

    /* the peer restarts: same address and port, no close_notify, a new
     * handshake (RFC 6347 §4.2.8) */
    rawc_free(a);
    rawc *b = rawc_new(udp_peer(NULL, port));
    rawc_handshake(b, 10);
    want = 2;
    tu_run_pred(E->loop, srv_ups, &want, 5, "new session up");
    assert_int_equal(E->srec.closes, 1);
    assert_int_equal(E->srec.closed_ids[0], first);
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_RESET);
    assert_true(E->srec.up_ids[1] != first);
    assert_int_equal(stats().dtls_flows_open, 1);
    assert_int_equal(wolfSSL_write(b->ssl, m, 500), 500);
    tu_run_pred(E->loop, srv_msgs, &want, 5, "message on the new session");
    assert_int_equal(E->srec.msgs[1].flow, E->srec.up_ids[1]);
    /* the server answers on the new session */
    assert_int_equal(siptls_send(E->server, E->srec.up_ids[1], m, 500), SIPTLS_OK);
    raw_reader rd = {b, {0}, -1};
    tu_run_pred(E->loop, raw_read_some, &rd, 5, "the answer read by the new session");
    assert_int_equal(rd.got, 500);
    assert_memory_equal(rd.buf, m, 500);
    free(m);
    wolfSSL_shutdown(b->ssl);
    tu_run_pred(E->loop, none_open, NULL, 3, "closed by close_notify");
    rawc_free(b);
}

static int hs_timed_out(void *arg)
{
    (void)arg;
    return stats().hs_fail_timeout >= 1;
}

/* A new handshake from the address of a live session that never
 * completes (a forged restart by an on-path attacker, or a peer that died
 * again): the old session goes on, the pending handshake times out. */
static void test_restart_abandoned(void **state)
{
    (void)state;
    E->scfg.dtls_handshake_timeout = 1000;
    start();
    int fd = udp_peer(NULL, 0);
    rawc *a = rawc_new(fd);
    rawc_handshake(a, 10);
    uint8_t *m = tu_make_request(500, 1, "DTLS");
    assert_int_equal(wolfSSL_write(a->ssl, m, 500), 500);
    unsigned want = 1;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "message on the session");

    /* another client's hellos from the same address and port */
    rawc *b = rawc_new(-1);
    uint8_t ch2[2048];
    size_t n = hello_with_cookie(b, fd, ch2);
    assert_int_equal(send(fd, ch2, n, 0), (ssize_t)n);
    assert_int_equal(answer_type(fd), 2); /* the new handshake started */
    assert_int_equal(stats().dtls_flows_open, 1);

    /* meanwhile the old session still works */
    assert_int_equal(wolfSSL_write(a->ssl, m, 500), 500);
    want = 2;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "old session still delivers");
    assert_int_equal(E->srec.msgs[1].flow, E->srec.up_ids[0]);

    /* the abandoned handshake is dropped, the session stays */
    tu_run_pred(E->loop, hs_timed_out, NULL, 3, "the abandoned handshake dropped");
    siptls_stats st = stats();
    assert_int_equal(st.hs_fail_timeout, 1);
    assert_int_equal(st.dtls_flows_open, 1);
    assert_int_equal(E->srec.closes, 0);
    assert_int_equal(wolfSSL_write(a->ssl, m, 500), 500);
    want = 3;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "and after");
    free(m);
    rawc_free(b);
    wolfSSL_shutdown(a->ssl);
    tu_run_pred(E->loop, none_open, NULL, 3, "closed by close_notify");
    rawc_free(a);
}

/* RFC 5626 §3.5.2: a client that keeps its flow alive with STUN Binding
 * requests keeps its DTLS session past dtls_session_lifetime. */
static void test_stun_keeps_session(void **state)
{
    (void)state;
    E->scfg.dtls_session_lifetime = 1;
    start();
    int fd = udp_peer(NULL, 0);
    rawc *r = rawc_new(fd);
    rawc_handshake(r, 10);
    unsigned want = 1;
    tu_run_pred(E->loop, srv_ups, &want, 5, "server side up");
    static const uint8_t txid[12] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    uint8_t req[64], resp[256];
    size_t n = siptls__dtls_stun_request(txid, 1, req);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(send(fd, req, n, 0), (ssize_t)n);
        assert_true(udp_recv(fd, resp, sizeof(resp), 1.0) > 0);
        pump(0.4);
    }
    /* 2.4 s with only STUN: still there */
    assert_int_equal(stats().dtls_flows_open, 1);
    assert_int_equal(stats().dtls_stun, 6);
    tu_run_pred(E->loop, none_open, NULL, 3, "session expired once STUN stopped");
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_IDLE);
    rawc_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_cookieless_flood, setup),
        TU_PAIR_TEST(test_garbage_and_forgery, setup),
        TU_PAIR_TEST(test_stun_v4, setup),
        TU_PAIR_TEST(test_stun_v6, setup6),
        TU_PAIR_TEST(test_cookie_binding_and_rotation, setup),
        TU_PAIR_TEST(test_rate_limit, setup),
        TU_PAIR_TEST(test_rate_limit_serves_retransmission, setup),
        TU_PAIR_TEST(test_fragmented_hello, setup),
        TU_PAIR_TEST(test_peer_restart, setup),
        TU_PAIR_TEST(test_restart_abandoned, setup),
        TU_PAIR_TEST(test_stun_keeps_session, setup),
    };
    if (getenv("SIPTLS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("SIPTLS_TEST_FILTER"));
    }
    int failed = 0;
    for (g_v13 = 0; g_v13 <= 1; g_v13++) {
#ifndef WOLFSSL_DTLS13
        if (g_v13) {
            break; /* Debian's 5.5.4: DTLS 1.2 only */
        }
#endif
        const char *name = g_v13 ? "raw clients DTLS 1.3" : "raw clients DTLS 1.2";
        printf("[==========] %s\n", name);
        fflush(stdout);
        failed +=
            _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
    }
    return failed;
}
