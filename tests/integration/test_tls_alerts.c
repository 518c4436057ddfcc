/* Integration: why an outbound TLS flow that a server refuses is closed.
 * Library client -> library server over loopback, real wolfSSL handshakes,
 * a real libev loop. The server requires a client certificate; the close
 * reason the client's host gets must say what the server said: its fatal
 * alert (SIPTLS_ERR_PEER_ALERT(description)), or that it closed the
 * connection without one (SIPTLS_ERR_PEER_CLOSED) -- not "TLS error" or
 * "socket I/O error". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>

#include <wolfssl/version.h>

#include "pair.h"

static tu_pair *E;

static int setup(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0");
    char v[600];
    snprintf(v, sizeof(v), "[server:default]%s", tu_pki("ca.pem"));
    tu_set(&E->scfg, "ca_list", v);
    tu_set(&E->scfg, "verify_cert", "[server:default]1");
    tu_set(&E->scfg, "require_cert", "[server:default]1");
    return 0;
}

static void client_cert(const char *name)
{
    char v[600];
    snprintf(v, sizeof(v), "[client:default]%s.pem", tu_pki(name));
    tu_set(&E->ccfg, "certificate", v);
    snprintf(v, sizeof(v), "[client:default]%s.key", tu_pki(name));
    tu_set(&E->ccfg, "private_key", v);
}

static int client_closed(void *arg)
{
    (void)arg;
    return E->crec.closes > 0;
}

/* Send one request to the server; return the reason its flow closed with. */
static int refused_reason(void)
{
    tu_pair_start(E);
    uint8_t *req = tu_make_request(400, 1, "TLS");
    siptls_flow_id flow = 0;
    assert_int_equal(
        siptls_send_to(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), req, 400, &flow),
        SIPTLS_OK);
    free(req);
    tu_run_pred(E->loop, client_closed, NULL, 10, "the client's flow closed");
    assert_int_equal(E->crec.closed_ids[0], flow);
    assert_int_equal(E->srec.n_msgs, 0); /* nothing got through */
    return E->crec.close_reasons[0];
}

static void expect_reason(int got, int want)
{
    if (got != want) {
        fail_msg("close reason %s (%s), want %s (%s)", siptls_status_name(got),
                 siptls_strerror(got), siptls_status_name(want), siptls_strerror(want));
    }
}

static void test_tls13_no_cert_certificate_required(void **state)
{
    (void)state;
    /* TLS 1.3: our side of the handshake completes, then the server's
     * certificate_required alert (RFC 8446 §4.4.2.4) arrives. */
    tu_set(&E->ccfg, "tls_method", "TLSv1_3");
    expect_reason(refused_reason(), SIPTLS_ERR_PEER_ALERT(116));
    assert_string_equal(siptls_strerror(E->crec.close_reasons[0]),
                        "peer sent fatal TLS alert certificate_required (116)");
}

static void test_tls12_no_cert_refused(void **state)
{
    (void)state;
    /* TLS 1.2: wolfSSL 5.5.4 (Debian 12) as the server closes without an
     * alert; 5.7.2 (the bundled build) sends a fatal handshake_failure,
     * the alert RFC 5246 §7.4.6 names ("respond with a fatal
     * handshake_failure alert"). */
    tu_set(&E->ccfg, "tls_method", "TLSv1_2");
#if LIBWOLFSSL_VERSION_HEX >= 0x05007000
    expect_reason(refused_reason(), SIPTLS_ERR_PEER_ALERT(40));
#else
    expect_reason(refused_reason(), SIPTLS_ERR_PEER_CLOSED);
#endif
}

static void test_untrusted_client_cert_alert(void **state)
{
    (void)state;
    /* A certificate from a CA the server does not trust: its alert. */
    client_cert("rogue-client");
    for (int m = 0; m < 2; m++) {
        int reason = refused_reason();
        int alert = siptls_status_peer_alert(reason);
        if (alert != 48 /* unknown_ca */ && alert != 42 /* bad_certificate */) {
            fail_msg("close reason %s (%s), want the unknown_ca / bad_certificate alert",
                     siptls_status_name(reason), siptls_strerror(reason));
        }
        siptls_engine_free(E->client);
        siptls_engine_free(E->server);
        E->client = E->server = NULL;
        tu_rec_reset(&E->srec);
        tu_rec_reset(&E->crec);
        tu_set(&E->ccfg, "tls_method", "TLSv1_2");
    }
}

static int server_got_msg(void *arg)
{
    (void)arg;
    return E->srec.n_msgs > 0;
}

static void test_good_client_cert_served(void **state)
{
    (void)state;
    /* the control: the same server serves a client with a good certificate */
    client_cert("client");
    tu_pair_start(E);
    uint8_t *req = tu_make_request(400, 1, "TLS");
    assert_int_equal(
        siptls_send_to(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), req, 400, NULL),
        SIPTLS_OK);
    free(req);
    tu_run_pred(E->loop, server_got_msg, NULL, 10, "the request reached the server");
    assert_int_equal(E->srec.n_msgs, 1);
    assert_int_equal(E->crec.closes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_tls13_no_cert_certificate_required, setup),
        TU_PAIR_TEST(test_tls12_no_cert_refused, setup),
        TU_PAIR_TEST(test_untrusted_client_cert_alert, setup),
        TU_PAIR_TEST(test_good_client_cert_served, setup),
    };
    if (getenv("SIPTLS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("SIPTLS_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
