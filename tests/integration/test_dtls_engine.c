/* Integration: the engine with the DTLS transport: library client <->
 * library server over loopback UDP (IPv4 and IPv6), real wolfSSL DTLS 1.2
 * handshakes, a real libev loop. Every test has a watchdog (tu_run_pred)
 * and ends asserting no flow is left open and no fd is leaked. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "../../dtls/dtls_internal.h"

typedef struct env {
    struct ev_loop *loop;
    siptls_config scfg, ccfg;
    tu_rec srec, crec;
    siptls_engine *server, *client;
    int fds_before;
} env;

static env *E;

static int setup_with(const char *listen)
{
    E = calloc(1, sizeof(*E));
    E->fds_before = tu_fd_count();
    E->loop = ev_loop_new(EVFLAG_AUTO);
    tu_config(&E->scfg, "server");
    tu_set(&E->scfg, "listen", listen);
    tu_config(&E->ccfg, "server");
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_with("dtls:127.0.0.1:0");
}

static int setup6(void **state)
{
    (void)state;
    return setup_with("dtls:[::1]:0");
}

static void start(void)
{
    assert_int_equal(siptls_engine_new(&E->server, E->loop, &E->scfg, &tu_callbacks, &E->srec),
                     SIPTLS_OK);
    E->srec.engine = E->server;
    assert_int_equal(siptls_engine_new(&E->client, E->loop, &E->ccfg, &tu_callbacks, &E->crec),
                     SIPTLS_OK);
    E->crec.engine = E->client;
}

static siptls_stats stats_of(siptls_engine *e)
{
    siptls_stats st;
    siptls_engine_stats(e, &st);
    return st;
}

static int teardown(void **state)
{
    (void)state;
    siptls__dtls_test_set_filter(NULL, NULL);
    if (E->client) {
        assert_int_equal(stats_of(E->client).flows_open, 0);
        siptls_engine_free(E->client);
    }
    if (E->server) {
        assert_int_equal(stats_of(E->server).flows_open, 0);
        siptls_engine_free(E->server);
    }
    ev_loop_destroy(E->loop);
    siptls_config_cleanup(&E->scfg);
    siptls_config_cleanup(&E->ccfg);
    tu_rec_reset(&E->srec);
    tu_rec_reset(&E->crec);
    int fds_after = tu_fd_count();
    int before = E->fds_before;
    free(E);
    E = NULL;
    assert_int_equal(fds_after, before);
    return 0;
}

static int all_closed(void *arg)
{
    (void)arg;
    return stats_of(E->server).flows_open == 0 && stats_of(E->client).flows_open == 0;
}

static int client_closed(void *arg)
{
    (void)arg;
    return stats_of(E->client).flows_open == 0;
}

/* Close the client's flows (close_notify reaches the server), then
 * whatever the server still has. */
static void close_everything(void)
{
    for (unsigned i = 0; i < E->crec.ups && i < TU_MAX_FLOWS; i++) {
        siptls_close(E->client, E->crec.up_ids[i]);
    }
    tu_run_pred(E->loop, client_closed, NULL, 5, "client flows closed");
    tu_run_for(E->loop, 0.05);
    for (unsigned i = 0; i < E->srec.ups && i < TU_MAX_FLOWS; i++) {
        siptls_close(E->server, E->srec.up_ids[i]);
    }
    tu_run_pred(E->loop, all_closed, NULL, 5, "every flow closed");
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

static void roundtrip(const char *host)
{
    start();
    E->srec.on_msg = echo_reply;
    uint8_t *req = tu_make_request(400, 1, "DTLS");
    siptls_flow_id flow = 0;
    const char *uri = tu_uri(E->server, 0, "dtls", host);
    assert_int_equal(siptls_send_to(E->client, uri, req, 400, &flow), SIPTLS_OK);
    assert_true(flow != 0);
    unsigned want[2] = {1, 1};
    tu_run_pred(E->loop, got_msgs, want, 10, "OPTIONS answered");
    assert_int_equal(E->srec.msgs[0].len, 400);
    assert_int_equal(E->srec.msgs[0].crc, tu_crc32(req, 400));
    assert_int_equal(E->crec.msgs[0].len, sizeof(resp200) - 1);

    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(E->client, flow, &info), SIPTLS_OK);
    assert_true(info.up);
    assert_true(info.outbound);
    assert_int_equal(info.transport, SIPTLS_TRANSPORT_DTLS);
    assert_true(info.peer_verified);
    assert_string_equal(info.tls_version, "DTLSv1.2");
    assert_true(info.cipher[0] != '\0');

    /* a second send_to reuses the flow */
    siptls_flow_id again = 0;
    assert_int_equal(siptls_send_to(E->client, uri, req, 400, &again), SIPTLS_OK);
    assert_int_equal(again, flow);
    want[0] = want[1] = 2;
    tu_run_pred(E->loop, got_msgs, want, 10, "second OPTIONS answered");

    /* the server finds its session by the client's address */
    siptls_flow_id sflow = 0;
    assert_int_equal(siptls_flow_lookup(E->server, SIPTLS_TRANSPORT_DTLS,
                                        (struct sockaddr *)&info.local, sizeof(info.local), &sflow),
                     SIPTLS_OK);
    assert_int_equal(sflow, E->srec.up_ids[0]);
    free(req);

    siptls_stats st = stats_of(E->server);
    assert_int_equal(st.msgs_in, 2);
    assert_int_equal(st.msgs_out, 2);
    assert_int_equal(st.handshakes_ok, 1);
    assert_int_equal(st.dtls_cookies_sent, 1);
    assert_int_equal(st.dtls_flows_open, 1);
    assert_int_equal(st.dtls_cookie_bad, 0);
    assert_int_equal(st.dtls_bad_records, 0);

    close_everything();
    assert_int_equal(siptls_send(E->client, flow, (const uint8_t *)"x", 1), SIPTLS_ERR_GONE);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_v6, setup6, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
