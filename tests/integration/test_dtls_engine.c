/* Integration: what only the DTLS transport does, library client <->
 * library server over loopback UDP (IPv4 and IPv6), real wolfSSL DTLS 1.2
 * handshakes, a real libev loop: dual-stack and wildcard listeners, record
 * sizes and the message splitter, junk on an outbound socket, the session
 * limit, connect and handshake timeouts, closing from callbacks, bulk
 * through a lossy network. What every transport does (round trip, sizes,
 * keepalive, idle lifetime, resumption, verification) is in
 * test_flow_common.c. Every test runs on the pair fixture (tests/support/
 * pair.h: a watchdog, and a teardown that finds leaked flows, watchers and
 * fds) and must close every flow it opened. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* options.h: the build's feature macros (WOLFSSL_DTLS_MTU) */
#include <wolfssl/options.h>

#include "pair.h"

#include "../../dtls/dtls_internal.h"

static tu_pair *E;

/* A lossy or watching network between the two engines: the filter sees
 * the datagrams that either engine reads (NULL removes it). */
static void set_filter(siptls__dtls_test_filter fn, void *user)
{
    if (E->server != NULL) {
        assert_int_equal(siptls__dtls_test_set_filter(E->server, fn, user), SIPTLS_OK);
    }
    if (E->client != NULL) {
        assert_int_equal(siptls__dtls_test_set_filter(E->client, fn, user), SIPTLS_OK);
    }
}

/* A filter's state lives in the test: gone once the test ends. */
static void remove_filters(tu_pair *p)
{
    if (p->server != NULL) {
        siptls__dtls_test_set_filter(p->server, NULL, NULL);
    }
    if (p->client != NULL) {
        siptls__dtls_test_set_filter(p->client, NULL, NULL);
    }
}

static int setup_with(void **state, const char *listen)
{
    E = tu_pair_new(state, listen);
    E->must_end_closed = 1; /* every test closes what it opened */
    E->on_teardown = remove_filters;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "dtls:127.0.0.1:0");
}

static void start(void)
{
    tu_pair_start(E);
}

static int all_closed(void *arg)
{
    (void)arg;
    return tu_pair_all_closed(E);
}

/* Close the client's flows; close_notify reaches the server, which closes
 * its side. */
static void close_everything(void)
{
    tu_pair_close_client(E, 5);
}

static int client_closed_not(void *arg)
{
    (void)arg;
    return E->crec.ups >= 1 && E->srec.ups >= 1;
}

static int srv_ups(void *arg)
{
    return E->srec.ups >= *(unsigned *)arg;
}

static int rec_closed(void *arg)
{
    return ((tu_rec *)arg)->closes >= 1;
}

static const char resp200[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/DTLS x;branch=z9hG4bK1\r\n"
                              "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\n"
                              "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

/* Server hook: answer every request with a 200. */
static void echo_reply(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    if (!siptls_sipmsg_is_request(m->data, m->len)) {
        return;
    }
    assert_int_equal(siptls_send(r->engine, flow, (const uint8_t *)resp200, sizeof(resp200) - 1),
                     SIPTLS_OK);
}

static int got_msgs(void *arg)
{
    const unsigned *want = arg;
    return E->crec.n_msgs >= want[0] && E->srec.n_msgs >= want[1];
}

static int setup_any4(void **state)
{
    return setup_with(state, "dtls:0.0.0.0:0");
}

/* A wildcard listener answers from the address the client sent to (on a
 * host with several addresses the kernel would otherwise pick another
 * source, which the client's connected socket drops): 127.0.0.2 is a
 * second local address of the loopback interface. */
static void test_wildcard_source_address(void **state)
{
    (void)state;
    /* the test certificate names 127.0.0.1, not .2 */
    tu_set(&E->ccfg, "verify_cert", "[client:default]0");
    start();
    E->srec.on_msg = echo_reply;
    uint8_t *req = tu_make_request(400, 1, "DTLS");
    siptls_flow_id f = 0;
    assert_int_equal(
        siptls_send_to(E->client, tu_uri(E->server, 0, "dtls", "127.0.0.2"), req, 400, &f),
        SIPTLS_OK);
    free(req);
    unsigned want[2] = {1, 1};
    tu_run_pred(E->loop, got_msgs, want, 5, "answered from 127.0.0.2");
    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(E->server, E->srec.up_ids[0], &info), SIPTLS_OK);
    assert_string_equal(info.local_text, tu_uri(E->server, 0, "x", "127.0.0.2") + 2);
    close_everything();
}

static int setup_dual(void **state)
{
    return setup_with(state, "dtls:[::]:0");
}

/* A dual-stack listener: an IPv4 client is a v4-mapped IPv6 peer (the
 * cookie is bound to those address bytes). */
static void test_dual_stack(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = echo_reply;
    uint8_t *req = tu_make_request(400, 1, "DTLS");
    siptls_flow_id f4 = 0, f6 = 0;
    assert_int_equal(
        siptls_send_to(E->client, tu_uri(E->server, 0, "dtls", "127.0.0.1"), req, 400, &f4),
        SIPTLS_OK);
    assert_int_equal(
        siptls_send_to(E->client, tu_uri(E->server, 0, "dtls", "[::1]"), req, 400, &f6), SIPTLS_OK);
    assert_true(f4 != f6);
    unsigned want[2] = {2, 2};
    tu_run_pred(E->loop, got_msgs, want, 10, "both answered");
    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(E->server, E->srec.msgs[0].flow, &info), SIPTLS_OK);
    assert_int_equal(info.remote.ss_family, AF_INET6);
    assert_int_equal(tu_stats(E->server).dtls_flows_open, 2);
    free(req);
    close_everything();
}

/* ---- record sizes ---------------------------------------------------------- */

/* A filter that passes everything and records the largest application
 * data datagram each socket received. */
/* An application data datagram: DTLS 1.2 content type 23, or a DTLS 1.3
 * ciphertext record (unified header) of epoch 3, the first application
 * data epoch (RFC 9147 §6.1; no key update happens in these tests). */
static int appdata_dg(const uint8_t *dg, size_t len)
{
    return len > 0 && (dg[0] == 23 || ((dg[0] & 0xE0) == 0x20 && (dg[0] & 3) == 3));
}

typedef struct sizes {
    size_t max_appdata;
    unsigned appdata_dgrams;
} sizes;

static void size_filter(void *user, int fd, const uint8_t *dg, size_t len,
                        const struct sockaddr *from, socklen_t from_len,
                        siptls__dtls_test_emit emit, void *emit_ctx)
{
    (void)fd;
    sizes *sz = user;
    if (appdata_dg(dg, len)) {
        sz->appdata_dgrams++;
        if (len > sz->max_appdata) {
            sz->max_appdata = len;
        }
    }
    emit(emit_ctx, dg, len, from, from_len);
}

static int srv_msgs(void *arg)
{
    return E->srec.n_msgs >= *(unsigned *)arg;
}

/* A message whose header block is `hdr` bytes (padded with a long
 * header) and body `body` bytes; with or without Content-Length. */
static uint8_t *make_custom(size_t hdr, size_t body, int with_cl, size_t *len)
{
    char head[4096];
    int n = snprintf(
        head, sizeof(head),
        "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/DTLS 127.0.0.1;branch=z9hG4bKc\r\n"
        "Call-ID: custom@x\r\nCSeq: 1 MESSAGE\r\n");
    if (with_cl) {
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", body);
    }
    /* pad with an X-Pad header to reach `hdr`: "X-Pad: " pad CRLF CRLF */
    size_t pad = hdr > (size_t)n + 11 ? hdr - (size_t)n - 11 : 0;
    memcpy(head + n, "X-Pad: ", 7);
    n += 7;
    memset(head + n, 'p', pad);
    n += (int)pad;
    memcpy(head + n, "\r\n\r\n", 4);
    n += 4;
    uint8_t *m = malloc((size_t)n + body + 1);
    memcpy(m, head, (size_t)n);
    for (size_t i = 0; i < body; i++) {
        m[(size_t)n + i] = (uint8_t)('A' + i % 26);
    }
    *len = (size_t)n + body;
    return m;
}

static int client_too_big(void *arg)
{
    return tu_stats(E->client).drop_too_big >= *(const uint64_t *)arg;
}

static void test_record_splitting(void **state)
{
    (void)state;
    sizes sz = {0, 0};
    /* A 20 KB message is 18 records at dtls_mtu 1200: the reassembly is
     * bounded by tls_max_msg_chunks (default 4, about 4.6 KB). */
    E->scfg.tls_max_msg_chunks = 32;
    start();
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "dtls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    tu_run_pred(E->loop, client_closed_not, NULL, 5, "flow up");
    set_filter(size_filter, &sz);
    const unsigned mtu = E->ccfg.dtls_mtu;
    /* around one record's space, then several records */
    static const size_t lens[] = {300,  1100, 1150, 1160, 1161, 1162, 1163, 1164,
                                  1165, 1200, 1300, 2326, 2327, 4096, 8192, 20000};
    unsigned want = 0;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t *m = tu_make_request(lens[i], (unsigned)i, "DTLS");
        assert_int_equal(siptls_send(E->client, f, m, lens[i]), SIPTLS_OK);
        want++;
        tu_run_pred(E->loop, srv_msgs, &want, 5, "message delivered");
        assert_int_equal(E->srec.msgs[want - 1].len, lens[i]);
        assert_int_equal(E->srec.msgs[want - 1].crc, tu_crc32(m, lens[i]));
        free(m);
    }
    assert_true(sz.max_appdata <= mtu);
    assert_true(sz.appdata_dgrams > want + 10);
    assert_int_equal(tu_stats(E->server).dtls_reasm_lost, 0);

    /* a header block larger than one record's space: sent as one larger
     * record (IP fragmentation), the body follows */
    size_t len;
    uint8_t *m = make_custom(1250, 3000, 1, &len);
    sz.max_appdata = 0;
    assert_int_equal(siptls_send(E->client, f, m, len), SIPTLS_OK);
    want++;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "big-header message delivered");
    assert_int_equal(E->srec.msgs[want - 1].crc, tu_crc32(m, len));
    assert_true(sz.max_appdata > mtu);
    free(m);

    /* no Content-Length: one record when wolfSSL can write it */
    m = make_custom(200, 1100, 0, &len);
    assert_true(len > 1250 && len < 1340); /* over dtls_mtu, under wolfSSL's record limit */
    assert_int_equal(siptls_send(E->client, f, m, len), SIPTLS_OK);
    want++;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "CL-less message delivered");
    assert_int_equal(E->srec.msgs[want - 1].crc, tu_crc32(m, len));
    free(m);

    /* no Content-Length and larger than a record: cannot be reassembled,
     * dropped at the sender and counted */
    uint64_t too_big = tu_stats(E->client).drop_too_big;
    m = make_custom(200, 3000, 0, &len);
    assert_int_equal(siptls_send(E->client, f, m, len), SIPTLS_OK);
    free(m);
    uint64_t dropped = too_big + 1;
    tu_run_pred(E->loop, client_too_big, &dropped, 5, "the unsplittable message dropped");
    assert_int_equal(tu_stats(E->client).drop_too_big, too_big + 1);
    /* nothing of it arrives: the next message is the next one delivered */
    m = tu_make_request(500, 99, "DTLS");
    assert_int_equal(siptls_send(E->client, f, m, 500), SIPTLS_OK);
    want++;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "the message after it delivered");
    assert_int_equal(E->srec.n_msgs, want);
    assert_int_equal(E->srec.msgs[want - 1].crc, tu_crc32(m, 500));
    free(m);
    set_filter(NULL, NULL);
    close_everything();
}

/* ---- handshake flights and dtls_mtu ----------------------------------------------- */

typedef struct flights {
    uint16_t server_port;
    size_t max_dgram;        /* largest handshake datagram, either direction */
    size_t max_server_dgram; /* ... of those the server sent */
    unsigned server_dgrams;  /* handshake datagrams the server sent */
    size_t server_bytes;
} flights;

/* Every datagram up to the first application data record: the handshake. */
static void flight_filter(void *user, int fd, const uint8_t *dg, size_t len,
                          const struct sockaddr *from, socklen_t from_len,
                          siptls__dtls_test_emit emit, void *emit_ctx)
{
    (void)fd;
    flights *fl = user;
    if (len > 0 && dg[0] != 23) {
        if (len > fl->max_dgram) {
            fl->max_dgram = len;
        }
        const struct sockaddr_in *sin = (const struct sockaddr_in *)from;
        if (from->sa_family == AF_INET && ntohs(sin->sin_port) == fl->server_port) {
            fl->server_dgrams++;
            fl->server_bytes += len;
            if (len > fl->max_server_dgram) {
                fl->max_server_dgram = len;
            }
        }
    }
    emit(emit_ctx, dg, len, from, from_len);
}

/* dtls_mtu bounds the handshake flights too, not only the SIP records:
 * with dtls_mtu 400 no datagram of the handshake exceeds 400 bytes. wolfSSL
 * sends each handshake message of a flight in a datagram of its own; the
 * largest, the server's Certificate (the test certificate), is 566 bytes,
 * so it must be fragmented. Debian's wolfSSL 5.5.4 cannot (no
 * wolfSSL_dtls_set_mtu): there it goes whole, in a datagram of up to 1400
 * bytes (docs/dtls.md). */
static void test_handshake_mtu(void **state)
{
    (void)state;
    E->scfg.dtls_mtu = 400;
    E->ccfg.dtls_mtu = 400;
    start();
    static flights fl;
    memset(&fl, 0, sizeof(fl));
    fl.server_port = (uint16_t)siptls_listener_port(E->server, 0);
    set_filter(flight_filter, &fl);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "dtls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    tu_run_pred(E->loop, client_closed_not, NULL, 5, "flow up");
    set_filter(NULL, NULL);
    /* HelloVerifyRequest, then ServerHello, Certificate, ServerKeyExchange,
     * ServerHelloDone, ChangeCipherSpec, Finished: more than 400 bytes */
    assert_true(fl.server_bytes > 800);
#ifdef WOLFSSL_DTLS_MTU
    assert_true(fl.server_dgrams >= 6);
    assert_true(fl.max_dgram <= 400);
    assert_true(fl.max_server_dgram <= 400);
#else
    /* 5.5.4 packs a flight into datagrams of up to 1400 bytes */
    assert_true(fl.server_dgrams >= 2);
    assert_true(fl.max_server_dgram > 400 && fl.max_server_dgram <= 1400);
#endif
    /* and SIP goes through */
    uint8_t *m = tu_make_request(1500, 1, "DTLS");
    assert_int_equal(siptls_send(E->client, f, m, 1500), SIPTLS_OK);
    unsigned want = 1;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "message delivered");
    assert_int_equal(E->srec.msgs[0].crc, tu_crc32(m, 1500));
    free(m);
    close_everything();
}

/* dtls_mtu is what we send; what we read stays as large as before: a
 * server with dtls_mtu 300 still takes a peer's datagram of 1,800-odd
 * bytes (wolfSSL reads at most its MTU plus
 * WOLFSSL_DTLS_MTU_ADDITIONAL_READ_BUFFER, 500 by default: 800 bytes here;
 * the bundled build raises it to 1700, docs/dtls.md "Datagram sizes"). */
static void test_mtu_asymmetric(void **state)
{
    (void)state;
    E->scfg.dtls_mtu = 300;
    E->ccfg.dtls_mtu = 1900;
    E->scfg.tls_max_msg_chunks = 16;
    start();
    static sizes sz;
    memset(&sz, 0, sizeof(sz));
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "dtls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    tu_run_pred(E->loop, client_closed_not, NULL, 5, "flow up");
    set_filter(size_filter, &sz);
    uint8_t *m = tu_make_request(1800, 1, "DTLS");
    assert_int_equal(siptls_send(E->client, f, m, 1800), SIPTLS_OK);
    unsigned want = 1;
    tu_run_pred(E->loop, srv_msgs, &want, 5, "a 1,800-byte message in one datagram delivered");
    assert_int_equal(E->srec.msgs[0].crc, tu_crc32(m, 1800));
#ifdef WOLFSSL_DTLS_MTU
    /* one record in one datagram (the client's dtls_mtu allows it) */
    assert_true(sz.max_appdata > 1800 && sz.max_appdata <= 1900);
#else
    /* 5.5.4: a record holds at most about 1350 bytes (docs/dtls.md) */
    assert_true(sz.max_appdata <= 1400);
#endif
    assert_int_equal(tu_stats(E->server).dtls_bad_records, 0);
    free(m);
    set_filter(NULL, NULL);
    close_everything();
}

/* ---- what arrives on an outbound flow's socket --------------------------------- */

typedef struct outbound_junk {
    int client_fd;
    int injected;
} outbound_junk;

static void outbound_junk_filter(void *user, int fd, const uint8_t *dg, size_t len,
                                 const struct sockaddr *from, socklen_t from_len,
                                 siptls__dtls_test_emit emit, void *emit_ctx)
{
    outbound_junk *oj = user;
    if (oj->client_fd < 0 && siptls__dtls_is_hello_verify(dg, len)) {
        oj->client_fd = fd; /* the HelloVerifyRequest goes to the client */
    }
    if (fd == oj->client_fd && !oj->injected && appdata_dg(dg, len)) {
        oj->injected = 1;
        uint8_t stun[64];
        static const uint8_t txid[12] = {7};
        size_t n = siptls__dtls_stun_request(txid, 0, stun);
        emit(emit_ctx, stun, n, from, from_len);
        static const uint8_t junk[] = {0xFF, 1, 2, 3};
        emit(emit_ctx, junk, sizeof(junk), from, from_len);
        emit(emit_ctx, dg, len - 1, from, from_len); /* cut short */
    }
    emit(emit_ctx, dg, len, from, from_len);
}

/* Everything test_outbound_socket_junk injects has been read: the
 * client's STUN, junk and bad record, and the server's junk (our answer
 * to the STUN request). */
static int junk_counted(void *arg)
{
    (void)arg;
    siptls_stats c = tu_stats(E->client);
    return c.dtls_stun >= 1 && c.dtls_junk >= 1 && c.dtls_bad_records >= 1 &&
           tu_stats(E->server).dtls_junk >= 1;
}

static void test_outbound_socket_junk(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = echo_reply;
    outbound_junk oj = {-1, 0};
    set_filter(outbound_junk_filter, &oj);
    uint8_t *req = tu_make_request(400, 1, "DTLS");
    siptls_flow_id f = 0;
    assert_int_equal(
        siptls_send_to(E->client, tu_uri(E->server, 0, "dtls", "127.0.0.1"), req, 400, &f),
        SIPTLS_OK);
    free(req);
    unsigned want[2] = {1, 1};
    tu_run_pred(E->loop, got_msgs, want, 5, "answered");
    tu_run_pred(E->loop, junk_counted, NULL, 5, "the injected datagrams counted");
    set_filter(NULL, NULL);
    assert_int_equal(oj.injected, 1);
    siptls_stats c = tu_stats(E->client);
    assert_int_equal(c.dtls_stun, 1);
    assert_int_equal(c.dtls_junk, 1);
    assert_int_equal(c.dtls_bad_records, 1);
    assert_int_equal(E->crec.n_msgs, 1);
    /* the server got our STUN response: not a request, junk to it */
    assert_int_equal(tu_stats(E->server).dtls_junk, 1);
    close_everything();
}

/* ---- limits ------------------------------------------------------------------ */

static void test_session_limit(void **state)
{
    (void)state;
    E->scfg.dtls_max_sessions = 2;
    E->ccfg.dtls_handshake_timeout = 1500;
    start();
    siptls_engine *more[2];
    tu_rec *recs[2];
    for (int i = 0; i < 2; i++) {
        more[i] = tu_pair_engine(E, &E->ccfg, NULL, &recs[i]);
    }
    const char *uri = tu_uri(E->server, 0, "dtls", "127.0.0.1");
    siptls_flow_id f;
    assert_int_equal(siptls_connect(E->client, uri, &f), SIPTLS_OK);
    assert_int_equal(siptls_connect(more[0], uri, &f), SIPTLS_OK);
    unsigned want = 2;
    tu_run_pred(E->loop, srv_ups, &want, 5, "two sessions up");
    assert_int_equal(siptls_connect(more[1], uri, &f), SIPTLS_OK);
    tu_run_pred(E->loop, rec_closed, recs[1], 5, "third handshake refused (timeout)");
    assert_int_equal(recs[1]->close_reasons[0], SIPTLS_ERR_HANDSHAKE_TIMEOUT);
    siptls_stats st = tu_stats(E->server);
    assert_int_equal(st.dtls_flows_open, 2);
    assert_true(st.drop_limit >= 1);
    close_everything(); /* the extra clients' flows too */
    for (int i = 0; i < 2; i++) {
        tu_pair_engine_free(E, more[i]);
    }
}

static void test_connect_refused(void **state)
{
    (void)state;
    start();
    /* a port nobody listens on: ICMP port unreachable -> ECONNREFUSED */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    char uri[64];
    snprintf(uri, sizeof(uri), "dtls:127.0.0.1:%u", ntohs(a.sin_port));
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, uri, &f), SIPTLS_OK);
    tu_run_pred(E->loop, rec_closed, &E->crec, 3, "refused flow closed");
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_CONNECT);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    E->ccfg.tls_connect_timeout = 2500;
    start();
    /* a peer that reads and never answers: the client retransmits its
     * ClientHello (1 s, then 2 s) and gives up when tls_connect_timeout
     * passes without a datagram from the peer (a DTLS flow "connects" when
     * the peer first answers; dtls_handshake_timeout runs from then) */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    char uri[64];
    snprintf(uri, sizeof(uri), "dtls:127.0.0.1:%u", ntohs(a.sin_port));
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, uri, &f), SIPTLS_OK);
    tu_run_pred(E->loop, rec_closed, &E->crec, 5, "connect timed out");
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_CONNECT_TIMEOUT);
    unsigned hellos = 0;
    uint8_t buf[2048];
    while (recv(fd, buf, sizeof(buf), 0) > 0) {
        hellos++;
    }
    close(fd);
    assert_true(hellos >= 2); /* at 0 s and 1 s (the next would be at 3 s) */
    assert_int_equal(tu_stats(E->client).hs_fail_timeout, 1);
}

/* ---- the host closing things from inside callbacks --------------------------- */

static void close_in_callback(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    (void)m;
    assert_int_equal(siptls_send(r->engine, flow, (const uint8_t *)resp200, sizeof(resp200) - 1),
                     SIPTLS_OK);
    assert_int_equal(siptls_close(r->engine, flow), SIPTLS_OK);
    assert_int_equal(siptls_close(r->engine, flow), SIPTLS_ERR_GONE);
}

static void shutdown_in_callback(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    (void)flow;
    (void)m;
    assert_int_equal(siptls_engine_shutdown(r->engine), SIPTLS_OK);
}

static void test_close_inside_callback(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = close_in_callback;
    E->crec.on_msg = shutdown_in_callback;
    /* two requests in a row: the second arrives while the first one's
     * callback closes the flow */
    uint8_t *req = tu_make_request(400, 1, "DTLS");
    siptls_flow_id f = 0;
    const char *uri = tu_uri(E->server, 0, "dtls", "127.0.0.1");
    assert_int_equal(siptls_send_to(E->client, uri, req, 400, &f), SIPTLS_OK);
    assert_int_equal(siptls_send(E->client, f, req, 400), SIPTLS_OK);
    free(req);
    unsigned want[2] = {1, 1};
    tu_run_pred(E->loop, got_msgs, want, 5, "answer before the close");
    tu_run_pred(E->loop, all_closed, NULL, 5, "both sides closed");
    /* the server closed after its answer, with close_notify; the client
     * engine shut itself down from inside on_message */
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_CLOSED_LOCAL);
    assert_int_equal(E->crec.closes, 1);
    assert_int_equal(E->crec.n_msgs, 1);
}

/* ---- a lossy network -------------------------------------------------------- */

/* Deterministic (fixed seed): each datagram read from any DTLS socket of
 * this thread is dropped, duplicated, or held back and delivered after the
 * next one on the same socket (reordered). */
typedef struct lossy {
    uint64_t rng;
    unsigned drop, dup, reorder; /* per mille */
    struct {
        int fd;
        int held;
        uint8_t dg[65536];
        size_t len;
        struct sockaddr_storage from;
        socklen_t from_len;
    } slot[4];
    unsigned n_drop, n_dup, n_reorder, n_pass;
} lossy;

static unsigned roll(lossy *l)
{
    l->rng = l->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((l->rng >> 33) % 1000);
}

static void lossy_filter(void *user, int fd, const uint8_t *dg, size_t len,
                         const struct sockaddr *from, socklen_t from_len,
                         siptls__dtls_test_emit emit, void *emit_ctx)
{
    lossy *l = user;
    int k = 0;
    while (k < 4 && l->slot[k].fd != fd && l->slot[k].fd != -1) {
        k++;
    }
    assert_true(k < 4);
    l->slot[k].fd = fd;
    unsigned r = roll(l);
    if (r < l->drop) {
        l->n_drop++;
    } else if (r < l->drop + l->dup) {
        l->n_dup++;
        emit(emit_ctx, dg, len, from, from_len);
        emit(emit_ctx, dg, len, from, from_len);
    } else if (r < l->drop + l->dup + l->reorder && !l->slot[k].held) {
        l->n_reorder++;
        l->slot[k].held = 1;
        memcpy(l->slot[k].dg, dg, len);
        l->slot[k].len = len;
        memcpy(&l->slot[k].from, from, from_len);
        l->slot[k].from_len = from_len;
        return;
    } else {
        l->n_pass++;
        emit(emit_ctx, dg, len, from, from_len);
    }
    if (l->slot[k].held) {
        l->slot[k].held = 0;
        emit(emit_ctx, l->slot[k].dg, l->slot[k].len, (struct sockaddr *)&l->slot[k].from,
             l->slot[k].from_len);
    }
}

typedef struct bulk_state {
    unsigned total, next, per_tick;
    uint32_t *crc;
    size_t *len;
    unsigned *seen;
    unsigned corrupt, dup, received;
    int marker; /* the message numbered `total`, sent last, arrived */
    siptls_flow_id flow;
} bulk_state;

static bulk_state *B;

/* Server hook: find the message's number in its Call-ID and check it. */
static void bulk_check(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    (void)r;
    (void)flow;
    const uint8_t *v;
    size_t vl;
    if (siptls_sipmsg_header(m->data, m->header_len, "Call-ID", 'i', &v, &vl) != SIPTLS_OK) {
        B->corrupt++;
        return;
    }
    unsigned seq = (unsigned)strtoul((const char *)v, NULL, 10);
    if (seq == B->total && m->len == 400) {
        B->marker = 1;
        return;
    }
    if (seq >= B->total || B->len[seq] != m->len || B->crc[seq] != tu_crc32(m->data, m->len)) {
        B->corrupt++;
        return;
    }
    if (B->seen[seq]++ != 0) {
        B->dup++;
    }
    B->received++;
}

/* 1 when `m` is a whole request of exactly `len` bytes. */
static int request_is(const uint8_t *m, size_t len)
{
    const uint8_t *end = NULL;
    for (size_t i = 0; i + 3 < len; i++) {
        if (memcmp(m + i, "\r\n\r\n", 4) == 0) {
            end = m + i + 4;
            break;
        }
    }
    const uint8_t *v;
    size_t vl;
    if (end == NULL ||
        siptls_sipmsg_header(m, (size_t)(end - m), "Content-Length", 'l', &v, &vl) != SIPTLS_OK) {
        return 0;
    }
    return (size_t)(end - m) + strtoul((const char *)v, NULL, 10) == len;
}

static void bulk_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    for (unsigned k = 0; k < B->per_tick && B->next < B->total; k++, B->next++) {
        unsigned i = B->next;
        uint8_t *m = tu_make_request(B->len[i], i, "DTLS");
        assert_int_equal(siptls_send(E->client, B->flow, m, B->len[i]), SIPTLS_OK);
        free(m);
    }
    if (B->next >= B->total) {
        ev_timer_stop(E->loop, w);
    }
}

static int bulk_sent(void *arg)
{
    (void)arg;
    return B->next >= B->total;
}

static int bulk_marker(void *arg)
{
    (void)arg;
    return B->marker;
}

static void bulk_run(lossy *net, unsigned total)
{
    /* its waits alone may take 180 s */
    tu_pair_watchdog(E, 240);
    E->scfg.tls_max_msg_chunks = 16; /* 8 KiB at dtls_mtu 1200 is 8 records */
    E->ccfg.dtls_handshake_timeout = 30000;
    E->scfg.dtls_handshake_timeout = 30000;
    start();
    E->srec.on_msg = bulk_check;
    B = calloc(1, sizeof(*B));
    B->total = total;
    B->per_tick = 4;
    B->crc = calloc(total, sizeof(*B->crc));
    B->len = calloc(total, sizeof(*B->len));
    B->seen = calloc(total, sizeof(*B->seen));
    for (unsigned i = 0; i < total; i++) {
        /* mostly small like real SIP; one in five above the MTU, up to 8 KiB */
        size_t sz = (i % 5 == 0) ? 1200 + (i * 7919u) % 7000 : 300 + (i * 104729u) % 900;
        uint8_t *m = tu_make_request(sz, i, "DTLS");
        while (!request_is(m, sz)) {
            /* where the body length gains a digit no request has exactly
             * sz bytes */
            free(m);
            m = tu_make_request(++sz, i, "DTLS");
        }
        B->crc[i] = tu_crc32(m, sz);
        B->len[i] = sz;
        free(m);
    }
    if (net != NULL) {
        set_filter(lossy_filter, net);
    }
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "dtls", "127.0.0.1"), &B->flow),
                     SIPTLS_OK);
    tu_run_pred(E->loop, client_closed_not, NULL, 30, "handshake through the lossy network");
    ev_timer tick;
    ev_timer_init(&tick, bulk_tick, 0.001, 0.001);
    ev_timer_start(E->loop, &tick);
    tu_run_pred(E->loop, bulk_sent, NULL, 120, "all messages sent");
    ev_timer_stop(E->loop, &tick);
    /* a last message through a clean network: once it is in, everything
     * sent before it that was not lost is in too (loopback keeps a
     * socket's datagrams in order) */
    set_filter(NULL, NULL);
    uint8_t *marker = tu_make_request(400, total, "DTLS");
    assert_int_equal(siptls_send(E->client, B->flow, marker, 400), SIPTLS_OK);
    free(marker);
    tu_run_pred(E->loop, bulk_marker, NULL, 30, "the last message delivered");

    siptls_stats st = tu_stats(E->server);
    unsigned lost = 0, lost_multi = 0;
    for (unsigned i = 0; i < total; i++) {
        if (B->seen[i] == 0) {
            lost++;
            lost_multi += B->len[i] > 1171 ? 1 : 0;
        }
    }
    if (getenv("SIPTLS_TEST_DEBUG")) {
        fprintf(stderr,
                "bulk: received %u lost %u (multi-record %u) corrupt %u dup %u; net drop %u dup "
                "%u reorder %u; reasm_lost %llu bad_records %llu framing %llu\n",
                B->received, lost, lost_multi, B->corrupt, B->dup, net ? net->n_drop : 0,
                net ? net->n_dup : 0, net ? net->n_reorder : 0,
                (unsigned long long)st.dtls_reasm_lost, (unsigned long long)st.dtls_bad_records,
                (unsigned long long)st.drop_framing);
    }
    /* every message exactly once and intact, or lost; never corrupted or
     * duplicated */
    assert_int_equal(B->corrupt, 0);
    assert_int_equal(B->dup, 0);
    assert_int_equal(B->received + lost, total);
    assert_int_equal(tu_stats(E->server).msgs_in, B->received + 1); /* and the marker */
    if (net == NULL) {
        assert_int_equal(lost, 0);
    } else {
        assert_true(B->received > total / 2);
        /* duplicated datagrams were recognised as replays */
        assert_true(st.dtls_bad_records > 0);
    }
    free(B->crc);
    free(B->len);
    free(B->seen);
    free(B);
    B = NULL;
    close_everything();
}

static void test_bulk_clean(void **state)
{
    (void)state;
    bulk_run(NULL, 10000);
}

static void test_bulk_lossy(void **state)
{
    (void)state;
    static lossy net;
    memset(&net, 0, sizeof(net));
    net.rng = 42;
    net.drop = 30;
    net.dup = 30;
    net.reorder = 30;
    for (int k = 0; k < 4; k++) {
        net.slot[k].fd = -1;
    }
    bulk_run(&net, 10000);
    assert_true(net.n_drop > 100 && net.n_dup > 100 && net.n_reorder > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_dual_stack, setup_dual),
        TU_PAIR_TEST(test_wildcard_source_address, setup_any4),
        TU_PAIR_TEST(test_record_splitting, setup),
        TU_PAIR_TEST(test_handshake_mtu, setup),
        TU_PAIR_TEST(test_mtu_asymmetric, setup),
        TU_PAIR_TEST(test_outbound_socket_junk, setup),
        TU_PAIR_TEST(test_session_limit, setup),
        TU_PAIR_TEST(test_connect_refused, setup),
        TU_PAIR_TEST(test_handshake_timeout, setup),
        TU_PAIR_TEST(test_close_inside_callback, setup),
        TU_PAIR_TEST(test_bulk_clean, setup),
        TU_PAIR_TEST(test_bulk_lossy, setup),
    };
    if (getenv("SIPTLS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("SIPTLS_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
