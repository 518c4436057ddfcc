/* Integration: what a flow does the same on every transport, run once per
 * transport from one table ({TLS, DTLS}): a round trip (request and
 * answer, on IPv4 and IPv6), messages of every size up to max_msg_size in
 * order, keepalives (RFC 5626 CRLF ping / pong, our periodic pings and
 * their timeout), the idle lifetime, session resumption, and the peer
 * verification failures. Library client <-> library server over loopback
 * (tu_pair: every test has a watchdog and a teardown that finds leaked
 * flows, watchers and fds). What only one transport does stays in
 * test_tls_engine.c / test_dtls_engine.c (framing limits, cookies, MTU,
 * reassembly, ...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>

#include <wolfssl/version.h>

#include "pair.h"

typedef struct transport_case {
    const char *name; /* the cmocka group */
    siptls_transport kind;
    const char *scheme; /* of URIs */
    const char *via;    /* Via transport of the messages */
    const char *version_prefix;
    int version_exact;       /* tls_version is version_prefix itself */
    unsigned hello_verifies; /* HelloVerifyRequests a full handshake costs the server */
    int no_cert_reason;      /* a client refused for want of a certificate closes with */
    int peer_sees_abort;     /* a flow closed without close_notify ends the peer's too */
    /* the idle lifetime's parameter: tls_connection_lifetime /
     * dtls_session_lifetime */
    unsigned *(*lifetime)(siptls_config *c);
    const char *dtls_max; /* dtls_max_version of both engines; NULL: the default */
} transport_case;

static unsigned *tls_lifetime(siptls_config *c)
{
    return &c->tls_connection_lifetime;
}

static unsigned *dtls_lifetime(siptls_config *c)
{
    return &c->dtls_session_lifetime;
}

static const transport_case cases[] = {
    {
        .name = "tls",
        .kind = SIPTLS_TRANSPORT_TLS,
        .scheme = "tls",
        .via = "TLS",
        .version_prefix = "TLSv1.",
        .version_exact = 0,
        .hello_verifies = 0,
        /* TLS 1.3: the certificate_required alert (RFC 8446 §4.4.2.4) */
        .no_cert_reason = SIPTLS_ERR_PEER_ALERT(116),
        .peer_sees_abort = 1,
        .lifetime = tls_lifetime,
    },
#ifdef WOLFSSL_DTLS13
    {
        /* the default where wolfSSL has it: DTLS 1.2-1.3, 1.3 negotiated */
        .name = "dtls",
        .kind = SIPTLS_TRANSPORT_DTLS,
        .scheme = "dtls",
        .via = "DTLS",
        .version_prefix = "DTLSv1.3",
        .version_exact = 1,
        .hello_verifies = 1,
        /* DTLS 1.3: certificate_required, as TLS 1.3 */
        .no_cert_reason = SIPTLS_ERR_PEER_ALERT(116),
        .peer_sees_abort = 0,
        .lifetime = dtls_lifetime,
    },
#endif
    {
        .name = "dtls12",
        .kind = SIPTLS_TRANSPORT_DTLS,
        .scheme = "dtls",
        .via = "DTLS",
        .dtls_max = "1.2",
        .version_prefix = "DTLSv1.2",
        .version_exact = 1,
        .hello_verifies = 1,
#if LIBWOLFSSL_VERSION_HEX >= 0x05007000
        /* DTLS 1.2: wolfSSL 5.7 sends handshake_failure (RFC 5246 §7.4.6) */
        .no_cert_reason = SIPTLS_ERR_PEER_ALERT(40),
#else
        /* DTLS 1.2: wolfSSL 5.5.4 sends no alert */
        .no_cert_reason = SIPTLS_ERR_PEER_CLOSED,
#endif
        .peer_sees_abort = 0,
        .lifetime = dtls_lifetime,
    },
};

static const transport_case *T; /* the transport under test */
static tu_pair *E;

static int setup_on(void **state, const char *host)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "%s:%s:0", T->scheme, host);
    E = tu_pair_new(state, listen);
    if (T->dtls_max != NULL) {
        assert_int_equal(siptls_config_set(&E->scfg, "dtls_max_version", T->dtls_max, NULL), 0);
        assert_int_equal(siptls_config_set(&E->ccfg, "dtls_max_version", T->dtls_max, NULL), 0);
    }
    return 0;
}

static int setup(void **state)
{
    return setup_on(state, "127.0.0.1");
}

static int setup6(void **state)
{
    return setup_on(state, "[::1]");
}

static const char *uri_of(const char *host)
{
    return tu_uri(E->server, 0, T->scheme, host);
}

static uint64_t open_of_kind(const siptls_stats *st)
{
    return T->kind == SIPTLS_TRANSPORT_TLS ? st->tls_flows_open : st->dtls_flows_open;
}

static uint64_t open_of_other(const siptls_stats *st)
{
    return T->kind == SIPTLS_TRANSPORT_TLS ? st->dtls_flows_open : st->tls_flows_open;
}

/* ---- predicates ------------------------------------------------------------ */

static int got_msgs(void *arg)
{
    const unsigned *want = arg;
    return E->crec.n_msgs >= want[0] && E->srec.n_msgs >= want[1];
}

static int both_up(void *arg)
{
    const unsigned *want = arg;
    return E->crec.ups >= *want && E->srec.ups >= *want;
}

static int got_pongs(void *arg)
{
    return E->crec.pongs >= *(const unsigned *)arg;
}

static int client_settled(void *arg)
{
    (void)arg;
    return E->crec.ups > 0 || E->crec.closes > 0;
}

static int client_closed(void *arg)
{
    (void)arg;
    return E->crec.closes > 0;
}

static int server_up(void *arg)
{
    (void)arg;
    return E->srec.ups > 0;
}

static int server_idle(void *arg)
{
    (void)arg;
    return tu_stats(E->server).flows_open == 0;
}

/* ---- server hooks ------------------------------------------------------------- */

static char g_resp[512];
static size_t g_resp_len;

/* Answer every request with a 200. */
static void answer_200(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    if (!siptls_sipmsg_is_request(m->data, m->len)) {
        return;
    }
    assert_int_equal(siptls_send(r->engine, flow, (const uint8_t *)g_resp, g_resp_len), SIPTLS_OK);
}

static void make_resp(void)
{
    int n = snprintf(g_resp, sizeof(g_resp),
                     "SIP/2.0 200 OK\r\nVia: SIP/2.0/%s x;branch=z9hG4bK1\r\n"
                     "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\n"
                     "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                     T->via);
    g_resp_len = (size_t)n;
}

/* ---- round trip --------------------------------------------------------------- */

static void roundtrip(const char *host)
{
    tu_pair_start(E);
    make_resp();
    E->srec.on_msg = answer_200;
    uint8_t *req = tu_make_request(400, 1, T->via);
    siptls_flow_id flow = 0;
    const char *uri = uri_of(host);
    assert_int_equal(siptls_send_to(E->client, uri, req, 400, &flow), SIPTLS_OK);
    assert_true(flow != 0);
    unsigned want[2] = {1, 1};
    tu_run_pred(E->loop, got_msgs, want, 10, "request answered");
    assert_true(siptls_sipmsg_is_request(req, 400));
    assert_int_equal(E->srec.msgs[0].len, 400);
    assert_int_equal(E->srec.msgs[0].crc, tu_crc32(req, 400));
    assert_int_equal(E->crec.msgs[0].len, g_resp_len);
    assert_int_equal(E->crec.msgs[0].crc, tu_crc32((const uint8_t *)g_resp, g_resp_len));

    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(E->client, flow, &info), SIPTLS_OK);
    assert_true(info.up);
    assert_true(info.outbound);
    assert_int_equal(info.transport, T->kind);
    assert_true(info.peer_verified);
    if (T->version_exact) {
        assert_string_equal(info.tls_version, T->version_prefix);
    } else {
        assert_true(strncmp(info.tls_version, T->version_prefix, strlen(T->version_prefix)) == 0);
    }
    assert_true(info.cipher[0] != '\0');
    assert_string_equal(info.remote_text, uri + strlen(T->scheme) + 1);

    /* a second send_to reuses the flow */
    siptls_flow_id again = 0;
    assert_int_equal(siptls_send_to(E->client, uri, req, 400, &again), SIPTLS_OK);
    assert_int_equal(again, flow);
    want[0] = want[1] = 2;
    tu_run_pred(E->loop, got_msgs, want, 10, "second request answered");
    assert_int_equal(E->crec.ups, 1);
    assert_int_equal(E->srec.ups, 1);

    /* the server finds its side of the flow by the client's address */
    siptls_flow_id sflow = 0;
    assert_int_equal(siptls_flow_lookup(E->server, T->kind, (struct sockaddr *)&info.local,
                                        sizeof(info.local), &sflow),
                     SIPTLS_OK);
    assert_int_equal(sflow, E->srec.up_ids[0]);
    free(req);

    siptls_stats st = tu_stats(E->server);
    assert_int_equal(st.msgs_in, 2);
    assert_int_equal(st.msgs_out, 2);
    assert_int_equal(st.handshakes_ok, 1);
    assert_int_equal(open_of_kind(&st), 1);
    assert_int_equal(open_of_other(&st), 0);
    assert_int_equal(st.dtls_cookies_sent, T->hello_verifies);
    assert_int_equal(st.dtls_cookie_bad, 0);
    assert_int_equal(st.dtls_bad_records, 0);

    tu_pair_close_client(E, 5);
    /* a closed id is gone and stays gone */
    assert_int_equal(siptls_send(E->client, flow, (const uint8_t *)"x", 1), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_get_info(E->client, flow, &info), SIPTLS_ERR_GONE);
    assert_int_equal(E->crec.closes, 1);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_CLOSED_LOCAL);
    /* the server saw close_notify */
    assert_int_equal(E->srec.closes, 1);
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_PEER_CLOSED);
}

static void test_roundtrip_v4(void **state)
{
    (void)state;
    roundtrip("127.0.0.1");
}

static void test_roundtrip_v6(void **state)
{
    (void)state;
    roundtrip("[::1]");
}

static int client_got(void *arg)
{
    return E->crec.n_msgs >= *(const unsigned *)arg;
}

/* Messages of every size up to max_msg_size (the default, 65,535 bytes)
 * back to back on one flow to the server: each one exactly once, whole,
 * in order, each answered. The server sends the same sizes back, one at a
 * time (DTLS: a burst of them would overflow the client socket's default
 * receive buffer, and UDP drops what does not fit). One byte more is
 * refused at the sender. */
static void test_sizes_in_order(void **state)
{
    (void)state;
    const size_t max = E->ccfg.max_msg_size;
    assert_int_equal(max, 65535);
    assert_int_equal(E->scfg.max_msg_size, max);
    tu_pair_start(E);
    make_resp();
    E->srec.on_msg = answer_200;
    /* around dtls_mtu (1200) and a TLS record (16,384), up to the limit
     * (tu_make_request makes requests of 400 bytes and more) */
    const size_t sizes[] = {400,   1000,  1200,  4096,    16383, 16384,
                            16385, 40000, 60000, max - 1, max,   400};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    uint8_t *msg[N];
    uint32_t crc[N];
    siptls_flow_id f = 0;
    for (unsigned i = 0; i < N; i++) {
        msg[i] = tu_make_request(sizes[i], i, T->via);
        crc[i] = tu_crc32(msg[i], sizes[i]);
        if (i == 0) {
            assert_int_equal(siptls_send_to(E->client, uri_of("127.0.0.1"), msg[i], sizes[i], &f),
                             SIPTLS_OK);
        } else {
            assert_int_equal(siptls_send(E->client, f, msg[i], sizes[i]), SIPTLS_OK);
        }
    }
    unsigned want[2] = {N, N};
    tu_run_pred(E->loop, got_msgs, want, 30, "every message delivered and answered");
    assert_int_equal(E->srec.n_msgs, N);
    for (unsigned i = 0; i < N; i++) {
        if (E->srec.msgs[i].len != sizes[i] || E->srec.msgs[i].crc != crc[i]) {
            fail_msg("server's message %u: %zu bytes, want the %zu-byte message %u", i,
                     E->srec.msgs[i].len, sizes[i], i);
        }
        assert_int_equal(E->srec.msgs[i].flow, E->srec.up_ids[0]);
        assert_int_equal(E->crec.msgs[i].len, g_resp_len);
    }
    /* the other way */
    E->srec.on_msg = NULL;
    siptls_flow_id sflow = E->srec.up_ids[0];
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(siptls_send(E->server, sflow, msg[i], sizes[i]), SIPTLS_OK);
        unsigned n = N + i + 1;
        tu_run_pred(E->loop, client_got, &n, 10, "the server's message delivered");
        if (E->crec.msgs[N + i].len != sizes[i] || E->crec.msgs[N + i].crc != crc[i]) {
            fail_msg("client's message %u: %zu bytes, want the %zu-byte message %u", i,
                     E->crec.msgs[N + i].len, sizes[i], i);
        }
    }
    for (unsigned i = 0; i < N; i++) {
        free(msg[i]);
    }
    /* limit + 1: refused at the sender, nothing queued, the flow stays */
    uint8_t *big = tu_make_request(max + 1, 99, T->via);
    assert_int_equal(siptls_send(E->client, f, big, max + 1), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_send_to(E->client, uri_of("127.0.0.1"), big, max + 1, NULL),
                     SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_send(E->server, sflow, big, max + 1), SIPTLS_ERR_INVAL);
    free(big);
    siptls_stats s = tu_stats(E->server), c = tu_stats(E->client);
    assert_int_equal(s.msgs_in, N);
    assert_int_equal(s.msgs_out, 2 * N);
    assert_int_equal(c.msgs_in, 2 * N);
    assert_int_equal(c.msgs_out, N);
    assert_int_equal(s.drop_too_big + c.drop_too_big, 0);
    assert_int_equal(s.dtls_reasm_lost + c.dtls_reasm_lost, 0);
    assert_int_equal(E->crec.closes + E->srec.closes, 0);
    tu_pair_close_client(E, 5);
}

/* ---- keepalives --------------------------------------------------------------- */

static void test_keepalive(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, uri_of("127.0.0.1"), &f), SIPTLS_OK);
    /* RFC 5626 §3.5.1: CRLFCRLF -> CRLF */
    assert_int_equal(siptls_send(E->client, f, (const uint8_t *)"\r\n\r\n", 4), SIPTLS_OK);
    unsigned want = 1;
    tu_run_pred(E->loop, got_pongs, &want, 5, "pong for our ping");
    assert_int_equal(E->srec.pings, 1);
    assert_int_equal(E->srec.n_msgs, 0);
    assert_int_equal(E->crec.n_msgs, 0);
    /* periodic pings from the engine (RFC 5626 §4.4.1) */
    assert_int_equal(siptls_flow_keepalive(E->client, f, 1), SIPTLS_OK);
    want = 3;
    tu_run_pred(E->loop, got_pongs, &want, 6, "two periodic pongs");
    siptls_stats c = tu_stats(E->client);
    assert_true(c.pings_out >= 2);
    assert_true(c.pongs_in >= 3);
    assert_true(tu_stats(E->server).pongs_out >= 3);
    assert_int_equal(siptls_flow_keepalive(E->client, 999999, 1), SIPTLS_ERR_GONE);
    assert_int_equal(E->crec.closes, 0);
    tu_pair_close_client(E, 5);
}

/* A peer that does not answer our pings: keepalive_timeout closes the
 * flow. */
static void test_keepalive_timeout(void **state)
{
    (void)state;
    E->scfg.tls_crlf_pingpong = 0; /* the server never answers */
    E->ccfg.keepalive_timeout = 1;
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, uri_of("127.0.0.1"), &f), SIPTLS_OK);
    assert_int_equal(siptls_flow_keepalive(E->client, f, 1), SIPTLS_OK);
    tu_run_pred(E->loop, client_closed, NULL, 6, "keepalive timeout");
    assert_int_equal(tu_stats(E->client).flows_open, 0);
    if (T->peer_sees_abort) {
        /* TLS: the connection ends. (A DTLS server is not told: it keeps
         * the session until dtls_session_lifetime; the teardown closes
         * it.) */
        tu_run_pred(E->loop, tu_pair_all_closed, E, 5, "the server's side closed");
    }
    assert_int_equal(E->crec.closes, 1);
    assert_int_equal(E->crec.closed_ids[0], f);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_KEEPALIVE_TIMEOUT);
    assert_int_equal(tu_stats(E->client).drop_keepalive, 1);
    assert_true(E->srec.pings >= 1);
    assert_int_equal(tu_stats(E->server).pongs_out, 0);
    assert_int_equal(E->crec.pongs, 0);
}

/* ---- idle lifetime ----------------------------------------------------------- */

static void test_idle_lifetime(void **state)
{
    (void)state;
    *T->lifetime(&E->scfg) = 1;
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, uri_of("127.0.0.1"), &f), SIPTLS_OK);
    unsigned one = 1;
    tu_run_pred(E->loop, both_up, &one, 5, "flow up");
    /* the server closes the idle flow (gracefully: close_notify), and the
     * client sees the peer close */
    tu_run_pred(E->loop, tu_pair_all_closed, E, 5, "idle flow closed");
    assert_int_equal(E->srec.closes, 1);
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_IDLE);
    assert_int_equal(E->crec.closes, 1);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_PEER_CLOSED);
    assert_int_equal(tu_stats(E->server).drop_idle, 1);
    assert_int_equal(tu_stats(E->client).drop_idle, 0);
}

/* ---- resumption -------------------------------------------------------------- */

/* A second connection to the same destination resumes the session
 * (abbreviated handshake) and is still verified. The answer to a request
 * comes after the session ticket (TLS 1.3 sends it right after the
 * handshake), so the client has its session when it has the answer. */
static void test_resumption(void **state)
{
    (void)state;
    tu_pair_start(E);
    make_resp();
    E->srec.on_msg = answer_200;
    const char *uri = uri_of("127.0.0.1");
    uint8_t *req = tu_make_request(400, 1, T->via);
    for (unsigned round = 1; round <= 2; round++) {
        siptls_flow_id f = 0;
        assert_int_equal(siptls_send_to(E->client, uri, req, 400, &f), SIPTLS_OK);
        unsigned want[2] = {round, round};
        tu_run_pred(E->loop, got_msgs, want, 10, "answered");
        siptls_flow_info info;
        assert_int_equal(siptls_flow_get_info(E->client, f, &info), SIPTLS_OK);
        assert_int_equal(info.resumed, round == 2);
        assert_true(info.peer_verified);
        assert_int_equal(siptls_flow_get_info(E->server, E->srec.up_ids[round - 1], &info),
                         SIPTLS_OK);
        assert_int_equal(info.resumed, round == 2);
        assert_int_equal(siptls_close(E->client, f), SIPTLS_OK);
        tu_run_pred(E->loop, tu_pair_all_closed, E, 5, "closed");
    }
    free(req);
    siptls_stats s = tu_stats(E->server), c = tu_stats(E->client);
    assert_int_equal(s.handshakes_ok, 2);
    assert_int_equal(s.handshakes_resumed, 1);
    assert_int_equal(c.handshakes_ok, 2);
    assert_int_equal(c.handshakes_resumed, 1);
}

/* ---- peer verification -------------------------------------------------------- */

/* certificate and private_key of `domain` ("[server:default]") from the
 * test PKI's `name`.pem / .key */
static void use_cert(siptls_config *c, const char *domain, const char *name)
{
    char v[600];
    snprintf(v, sizeof(v), "%s%s.pem", domain, tu_pki(name));
    tu_set(c, "certificate", v);
    snprintf(v, sizeof(v), "%s%s.key", domain, tu_pki(name));
    tu_set(c, "private_key", v);
}

/* The server asks every client for a certificate of ca.pem. */
static void require_client_cert(void)
{
    char v[600];
    snprintf(v, sizeof(v), "[server:default]%s", tu_pki("ca.pem"));
    tu_set(&E->scfg, "ca_list", v);
    tu_set(&E->scfg, "verify_cert", "[server:default]1");
    tu_set(&E->scfg, "require_cert", "[server:default]1");
}

/* Start, connect to 127.0.0.1 (the SIP domain the server certificate must
 * name, RFC 5922 §7.1) and return the client flow's close reason, or
 * SIPTLS_OK when it came up (then the server's side is up too). A flow
 * the client refuses never comes up. */
static int handshake(void)
{
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, uri_of("127.0.0.1"), &f), SIPTLS_OK);
    tu_run_pred(E->loop, client_settled, NULL, 10, "the handshake over");
    if (E->crec.closes > 0) {
        assert_int_equal(E->crec.closed_ids[0], f);
        assert_int_equal(E->crec.ups, 0);
        return E->crec.close_reasons[0];
    }
    tu_run_pred(E->loop, server_up, NULL, 5, "the server's side up");
    return SIPTLS_OK;
}

/* Start, connect, and wait for the server to refuse the client: the
 * client's flow closes (over TLS 1.3 it may come up first: the client's
 * part of the handshake ends before the server has checked its
 * certificate) and the server keeps nothing. Returns the client's close
 * reason: what the server told it (test_tls_alerts.c pins it for TLS). */
static int refused_by_server(void)
{
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, uri_of("127.0.0.1"), &f), SIPTLS_OK);
    tu_run_pred(E->loop, client_closed, NULL, 10, "the client's flow closed");
    tu_run_pred(E->loop, server_idle, NULL, 5, "the server's side gone");
    assert_int_equal(E->crec.closes, 1);
    assert_int_equal(E->crec.closed_ids[0], f);
    assert_true(E->crec.close_reasons[0] != SIPTLS_OK);
    assert_int_equal(E->srec.ups, 0);
    assert_int_equal(E->srec.closes, 0);
    assert_int_equal(E->srec.n_msgs, 0);
    return E->crec.close_reasons[0];
}

static void expect_reason(int got, int want)
{
    if (got != want) {
        fail_msg("close reason %s (%s), want %s (%s)", siptls_status_name(got),
                 siptls_strerror(got), siptls_status_name(want), siptls_strerror(want));
    }
}

/* The client refused the server: the server learns it and keeps nothing
 * (no flow was reported up, so no CLOSED either). */
static void server_refused_by_client(void)
{
    tu_run_pred(E->loop, server_idle, NULL, 5, "the server's side gone");
    siptls_stats s = tu_stats(E->server);
    assert_int_equal(s.handshakes_ok, 0);
    assert_int_equal(s.handshakes_failed, 1);
    assert_int_equal(s.hs_fail_tls, 1); /* the client's alert */
    assert_int_equal(E->srec.ups, 0);
    assert_int_equal(E->srec.closes, 0);
}

/* A server certificate of a CA the client does not trust. */
static void test_verify_wrong_ca(void **state)
{
    (void)state;
    char v[600];
    snprintf(v, sizeof(v), "[client:default]%s", tu_pki("rogue-ca.pem"));
    tu_set(&E->ccfg, "ca_list", v);
    expect_reason(handshake(), SIPTLS_ERR_VERIFY);
    siptls_stats c = tu_stats(E->client);
    assert_int_equal(c.handshakes_failed, 1);
    assert_int_equal(c.hs_fail_verify, 1);
    server_refused_by_client();
}

/* A server certificate of our CA whose validity has ended. */
static void test_verify_expired(void **state)
{
    (void)state;
    use_cert(&E->scfg, "[server:default]", "expired");
    expect_reason(handshake(), SIPTLS_ERR_VERIFY);
    assert_int_equal(tu_stats(E->client).hs_fail_verify, 1);
    server_refused_by_client();
}

/* RFC 5922 §7.1: the certificate must name the SIP domain (here the IP
 * literal 127.0.0.1); wrongname.pem names wrong.example.test only. The
 * name is checked once the handshake is done: the server has seen a
 * handshake succeed, and then its flow closed by the client. */
static void test_verify_wrong_name(void **state)
{
    (void)state;
    use_cert(&E->scfg, "[server:default]", "wrongname");
    expect_reason(handshake(), SIPTLS_ERR_NAME_MISMATCH);
    siptls_stats c = tu_stats(E->client);
    assert_int_equal(c.handshakes_failed, 1);
    assert_int_equal(c.hs_fail_name, 1);
    assert_int_equal(c.handshakes_ok, 0);
    tu_run_pred(E->loop, server_idle, NULL, 5, "the server's side gone");
    assert_int_equal(tu_stats(E->server).handshakes_ok, 1);
    assert_int_equal(E->srec.ups, 1);
    assert_int_equal(E->srec.closes, 1);
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_PEER_CLOSED);
    assert_int_equal(E->srec.n_msgs, 0);
}

/* require_cert and a client without a certificate: the server refuses it
 * (SIPTLS_ERR_NO_PEER_CERT, counted in hs_fail_no_cert; no flow was up,
 * so no CLOSED); the client's flow closes with what the server told it. */
static void test_verify_no_client_cert(void **state)
{
    (void)state;
    require_client_cert();
    expect_reason(refused_by_server(), T->no_cert_reason);
    siptls_stats s = tu_stats(E->server);
    assert_int_equal(s.handshakes_failed, 1);
    assert_int_equal(s.hs_fail_no_cert, 1);
    assert_int_equal(s.handshakes_ok, 0);
    assert_int_equal(open_of_kind(&s), 0);
}

/* require_cert and a client certificate of a CA the server does not
 * trust. */
static void test_verify_untrusted_client_cert(void **state)
{
    (void)state;
    require_client_cert();
    use_cert(&E->ccfg, "[client:default]", "rogue-client");
    (void)refused_by_server();
    siptls_stats s = tu_stats(E->server);
    assert_int_equal(s.handshakes_failed, 1);
    assert_int_equal(s.hs_fail_verify, 1);
    assert_int_equal(s.handshakes_ok, 0);
}

/* The control: a client certificate of our CA is let in, verified. */
static void test_verify_client_cert_ok(void **state)
{
    (void)state;
    require_client_cert();
    use_cert(&E->ccfg, "[client:default]", "client");
    expect_reason(handshake(), SIPTLS_OK);
    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(E->server, E->srec.up_ids[0], &info), SIPTLS_OK);
    assert_true(info.peer_cert);
    assert_true(info.peer_verified);
    assert_non_null(strstr(info.peer_subject, "client.example.test"));
    siptls_stats s = tu_stats(E->server);
    assert_int_equal(s.handshakes_ok, 1);
    assert_int_equal(s.handshakes_failed, 0);
    tu_pair_close_client(E, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_roundtrip_v4, setup),
        TU_PAIR_TEST(test_roundtrip_v6, setup6),
        TU_PAIR_TEST(test_sizes_in_order, setup),
        TU_PAIR_TEST(test_keepalive, setup),
        TU_PAIR_TEST(test_keepalive_timeout, setup),
        TU_PAIR_TEST(test_idle_lifetime, setup),
        TU_PAIR_TEST(test_resumption, setup),
        TU_PAIR_TEST(test_verify_wrong_ca, setup),
        TU_PAIR_TEST(test_verify_expired, setup),
        TU_PAIR_TEST(test_verify_wrong_name, setup),
        TU_PAIR_TEST(test_verify_no_client_cert, setup),
        TU_PAIR_TEST(test_verify_untrusted_client_cert, setup),
        TU_PAIR_TEST(test_verify_client_cert_ok, setup),
    };
    if (getenv("SIPTLS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("SIPTLS_TEST_FILTER"));
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        T = &cases[i];
        printf("[==========] transport %s\n", T->name);
        fflush(stdout);
        failed +=
            _cmocka_run_group_tests(T->name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
    }
    return failed;
}
