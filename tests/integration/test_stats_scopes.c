/* Integration: counters per listener and per TLS domain (siptls/stats.h),
 * besides the engine's. Real TLS and DTLS flows over loopback (tu_pair): a
 * flow counts in its listener and its domain exactly what it counts in the
 * engine; the listeners of an engine that only accepts add up to the
 * engine; gauges go back to 0 when the flows close; failures count against
 * the domain that failed (outbound: the client domain; inbound: the server
 * domain that refused the client); domain counters survive a reload that
 * keeps the domain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pair.h"

static tu_pair *E;

static void pki_set(siptls_config *c, const char *key, const char *prefix, const char *file)
{
    char v[600];
    snprintf(v, sizeof(v), "%s%s", prefix, tu_pki(file));
    tu_set(c, key, v);
}

static int setup(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0", "dtls:127.0.0.1:0");
    /* the client picks its domain "carrier" by the SIP domain it sends to */
    tu_set(&E->ccfg, "client_domain", "carrier");
    tu_set(&E->ccfg, "match_sip_domain", "[carrier]127.0.0.1");
    tu_set(&E->ccfg, "verify_cert", "[client:default]0"); /* alt.pem names no address */
    return 0;
}

/* The server's configuration in use plus a domain "sbc" for the DTLS
 * listener's address (known once it is bound), with alt.pem. */
static void server_with_sbc(siptls_config *c)
{
    tu_config(c, "server");
    tu_set(c, "server_domain", "sbc");
    char addr[64];
    snprintf(addr, sizeof(addr), "[sbc]127.0.0.1:%u", siptls_listener_port(E->server, 1));
    tu_set(c, "match_ip_address", addr);
    pki_set(c, "certificate", "[sbc]", "alt.pem");
    pki_set(c, "private_key", "[sbc]", "alt.key");
}

static int ups_at_least(void *arg)
{
    const unsigned *want = arg;
    return E->crec.ups >= want[0] && E->srec.ups >= want[1];
}

static void open_one(int l, siptls_flow_id *c, siptls_flow_id *s)
{
    unsigned want[2] = {E->crec.ups + 1, E->srec.ups + 1};
    assert_int_equal(
        siptls_open(E->client, tu_uri(E->server, l, l == 0 ? "tls" : "dtls", "127.0.0.1"), c),
        SIPTLS_OK);
    tu_run_pred(E->loop, ups_at_least, want, 10, "flow up");
    *s = E->srec.up_ids[E->srec.ups - 1];
}

static int msgs_at_least(void *arg)
{
    const unsigned *want = arg;
    return E->srec.n_msgs >= want[0] && E->crec.n_msgs >= want[1];
}

static void round_trip(siptls_flow_id c, siptls_flow_id s, unsigned seq)
{
    unsigned want[2] = {E->srec.n_msgs + 1, E->crec.n_msgs + 1};
    uint8_t *m = tu_make_request(500, seq, "TLS");
    assert_int_equal(siptls_send(E->client, c, m, 500), SIPTLS_OK);
    assert_int_equal(siptls_send(E->server, s, m, 500), SIPTLS_OK);
    free(m);
    tu_run_pred(E->loop, msgs_at_least, want, 10, "round trip");
}

static siptls_stats lst(siptls_engine *e, int i)
{
    siptls_stats st;
    assert_int_equal(siptls_listener_stats(e, i, &st), SIPTLS_OK);
    return st;
}

static siptls_domain_counters dom(siptls_engine *e, const char *name, int is_server)
{
    siptls_domain_counters d;
    for (int i = 0; i < siptls_domain_count(e); i++) {
        assert_int_equal(siptls_domain_stats(e, i, &d), SIPTLS_OK);
        if (strcmp(d.name, name) == 0 && d.is_server == is_server) {
            return d;
        }
    }
    fail_msg("no domain %s (%s)", name, is_server ? "server" : "client");
    return d;
}

static int client_closed(void *arg)
{
    const unsigned *want = arg;
    return E->crec.closes >= *want && tu_pair_flows_open(E) == 0;
}

static void test_scopes(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_config v;
    server_with_sbc(&v);
    assert_int_equal(siptls_engine_reload(E->server, &v), SIPTLS_OK);
    siptls_config_cleanup(&v);

    siptls_flow_id c[3], s[3];
    open_one(0, &c[0], &s[0]);
    open_one(0, &c[1], &s[1]);
    open_one(1, &c[2], &s[2]);
    for (unsigned i = 0; i < 3; i++) {
        round_trip(c[i], s[i], i + 1);
    }

    /* listeners */
    siptls_stats l0 = lst(E->server, 0), l1 = lst(E->server, 1), all = tu_stats(E->server);
    assert_int_equal(l0.flows_accepted, 2);
    assert_int_equal(l0.flows_open, 2);
    assert_int_equal(l0.tls_flows_open, 2);
    assert_int_equal(l0.dtls_flows_open, 0);
    assert_int_equal(l0.handshakes_ok, 2);
    assert_int_equal(l0.msgs_in, 2);
    assert_int_equal(l0.msgs_out, 2);
    assert_int_equal(l1.flows_accepted, 1);
    assert_int_equal(l1.dtls_flows_open, 1);
    assert_int_equal(l1.msgs_in, 1);
    assert_int_equal(l0.flows_connected + l1.flows_connected, 0);
    /* a server that only accepts: its listeners add up to the engine */
    assert_int_equal(l0.flows_accepted + l1.flows_accepted, all.flows_accepted);
    assert_int_equal(l0.flows_open + l1.flows_open, all.flows_open);
    assert_int_equal(l0.handshakes_ok + l1.handshakes_ok, all.handshakes_ok);
    assert_int_equal(l0.msgs_in + l1.msgs_in, all.msgs_in);
    assert_int_equal(l0.msgs_out + l1.msgs_out, all.msgs_out);
    assert_int_equal(l0.bytes_in + l1.bytes_in, all.bytes_in);
    assert_int_equal(l0.bytes_out + l1.bytes_out, all.bytes_out);
    assert_true(l0.bytes_in >= 1000 && l0.bytes_out >= 1000);

    char name[64];
    char want[64];
    assert_int_equal(siptls_listener_name(E->server, 0, name, sizeof(name)), SIPTLS_OK);
    snprintf(want, sizeof(want), "tls:127.0.0.1:%u", siptls_listener_port(E->server, 0));
    assert_string_equal(name, want);
    assert_int_equal(siptls_listener_name(E->server, 1, name, sizeof(name)), SIPTLS_OK);
    snprintf(want, sizeof(want), "dtls:127.0.0.1:%u", siptls_listener_port(E->server, 1));
    assert_string_equal(name, want);
    assert_int_equal(siptls_listener_name(E->server, 2, name, sizeof(name)), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_listener_name(E->server, 0, name, 8), SIPTLS_ERR_INVAL);
    siptls_stats st;
    assert_int_equal(siptls_listener_stats(E->server, 2, &st), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_listener_stats(E->server, -1, &st), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_listener_stats(E->client, 0, &st), SIPTLS_ERR_INVAL);

    /* server domains: by address, TLS on default, DTLS on sbc */
    assert_int_equal(siptls_domain_count(E->server), 3);
    siptls_domain_counters d = dom(E->server, "default", 1);
    assert_int_equal(d.stats.flows_open, 2);
    assert_int_equal(d.stats.tls_flows_open, 2);
    assert_int_equal(d.stats.handshakes_ok, 2);
    assert_int_equal(d.stats.msgs_in, 2);
    assert_int_equal(d.stats.flows_accepted, 0);
    d = dom(E->server, "sbc", 1);
    assert_int_equal(d.stats.flows_open, 1);
    assert_int_equal(d.stats.dtls_flows_open, 1);
    assert_int_equal(d.stats.handshakes_ok, 1);
    assert_int_equal(d.stats.msgs_in, 1);
    assert_int_equal(d.stats.msgs_out, 1);
    d = dom(E->server, "default", 0);
    assert_int_equal(d.stats.flows_open + d.stats.handshakes_ok + d.stats.msgs_in, 0);

    /* client domains: every outbound flow chose "carrier" */
    d = dom(E->client, "carrier", 0);
    assert_int_equal(d.stats.flows_open, 3);
    assert_int_equal(d.stats.flows_connected, 3);
    assert_int_equal(d.stats.handshakes_ok, 3);
    assert_int_equal(d.stats.msgs_out, 3);
    assert_int_equal(d.stats.msgs_in, 3);
    assert_int_equal(d.stats.bytes_out, tu_stats(E->client).bytes_out);
    assert_int_equal(dom(E->client, "default", 0).stats.flows_connected, 0);
    siptls_domain_counters none;
    assert_int_equal(siptls_domain_stats(E->client, 3, &none), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_domain_stats(E->client, -1, &none), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_domain_stats(NULL, 0, &none), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_domain_count(NULL), 0);

    /* every gauge goes back to 0 when the flows close */
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(siptls_close(E->client, c[i]), SIPTLS_OK);
    }
    unsigned three = 3;
    tu_run_pred(E->loop, client_closed, &three, 10, "closed");
    l0 = lst(E->server, 0);
    l1 = lst(E->server, 1);
    assert_int_equal(l0.flows_open + l0.tls_flows_open + l1.flows_open + l1.dtls_flows_open, 0);
    assert_int_equal(l0.flows_closed, 2);
    assert_int_equal(l1.flows_closed, 1);
    assert_int_equal(dom(E->server, "default", 1).stats.flows_open, 0);
    assert_int_equal(dom(E->server, "sbc", 1).stats.flows_open, 0);
    assert_int_equal(dom(E->server, "sbc", 1).stats.dtls_flows_open, 0);
    assert_int_equal(dom(E->server, "sbc", 1).stats.flows_closed, 1);
    d = dom(E->client, "carrier", 0);
    assert_int_equal(d.stats.flows_open + d.stats.tls_flows_open + d.stats.dtls_flows_open, 0);
    assert_int_equal(d.stats.flows_closed, 3);
}

static int client_closes(void *arg)
{
    const unsigned *want = arg;
    return E->crec.closes >= *want;
}

static int server_failed(void *arg)
{
    (void)arg;
    return tu_stats(E->server).handshakes_failed >= 1;
}

/* Failures count against the domain that failed. */
static void test_failures_by_domain(void **state)
{
    (void)state;
    /* the server's default domain requires a client certificate; the
     * client has none */
    pki_set(&E->scfg, "ca_list", "[server:default]", "ca.pem");
    tu_set(&E->scfg, "verify_cert", "[server:default]1");
    tu_set(&E->scfg, "require_cert", "[server:default]1");
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_open(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    unsigned one = 1;
    tu_run_pred(E->loop, client_closes, &one, 10, "client refused");
    tu_run_pred(E->loop, server_failed, NULL, 10, "server counted the failure");
    siptls_stats all = tu_stats(E->server);
    siptls_domain_counters d = dom(E->server, "default", 1);
    assert_int_equal(all.handshakes_failed, 1);
    assert_int_equal(d.stats.handshakes_failed, 1);
    assert_int_equal(d.stats.hs_fail_no_cert + d.stats.hs_fail_tls + d.stats.hs_fail_verify, 1);
    assert_int_equal(d.stats.flows_open, 0);
    assert_int_equal(lst(E->server, 0).handshakes_failed, 1);
    assert_int_equal(lst(E->server, 1).handshakes_failed, 0);
    /* the client's side (TLS 1.3: its handshake was done when the server
     * refused it with an alert): closed in its client domain */
    d = dom(E->client, "carrier", 0);
    assert_int_equal(d.stats.flows_closed, 1);
    assert_int_equal(d.stats.flows_open, 0);
    uint64_t failed_before = d.stats.handshakes_failed;

    /* outbound to a port nobody listens on: a connect failure of
     * "carrier" */
    assert_int_equal(siptls_open(E->client, "tls:127.0.0.1:1", &f), SIPTLS_OK);
    unsigned two = 2;
    tu_run_pred(E->loop, client_closes, &two, 10, "refused connect");
    d = dom(E->client, "carrier", 0);
    assert_int_equal(d.stats.handshakes_failed, failed_before + 1);
    assert_int_equal(d.stats.hs_fail_io, 1);
    assert_int_equal(tu_stats(E->client).hs_fail_io, 1);
}

/* A reload keeps the counters of the domains it keeps; a removed domain is
 * no longer listed, and starts again from 0 when it comes back. */
static void test_counters_across_reload(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_config v2, v1;
    server_with_sbc(&v2);
    tu_config(&v1, "server");
    assert_int_equal(siptls_engine_reload(E->server, &v2), SIPTLS_OK);
    siptls_flow_id c0, s0, c1, s1;
    open_one(0, &c0, &s0);
    open_one(1, &c1, &s1);
    round_trip(c1, s1, 1);
    assert_int_equal(dom(E->server, "sbc", 1).stats.msgs_in, 1);

    /* sbc goes away while its flow is open: not listed, still counted */
    assert_int_equal(siptls_engine_reload(E->server, &v1), SIPTLS_OK);
    assert_int_equal(siptls_domain_count(E->server), 2);
    round_trip(c1, s1, 2);
    round_trip(c0, s0, 3);
    assert_int_equal(dom(E->server, "default", 1).stats.msgs_in, 1);
    assert_int_equal(dom(E->server, "default", 1).stats.handshakes_ok, 1);

    /* back again while its flow is still open: the same record */
    assert_int_equal(siptls_engine_reload(E->server, &v2), SIPTLS_OK);
    siptls_domain_counters d = dom(E->server, "sbc", 1);
    assert_int_equal(d.stats.msgs_in, 2);
    assert_int_equal(d.stats.flows_open, 1);

    /* removed once its flows are gone: back from 0 */
    assert_int_equal(siptls_close(E->client, c1), SIPTLS_OK);
    unsigned one = 1;
    tu_run_pred(E->loop, client_closes, &one, 10, "closed");
    tu_run_for(E->loop, 0.05);
    assert_int_equal(siptls_engine_reload(E->server, &v1), SIPTLS_OK);
    assert_int_equal(siptls_engine_reload(E->server, &v2), SIPTLS_OK);
    d = dom(E->server, "sbc", 1);
    assert_int_equal(d.stats.msgs_in + d.stats.flows_closed + d.stats.flows_open, 0);
    /* the default domain kept counting through all of it */
    assert_int_equal(dom(E->server, "default", 1).stats.handshakes_ok, 1);
    siptls_config_cleanup(&v1);
    siptls_config_cleanup(&v2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_scopes, setup),
        TU_PAIR_TEST(test_failures_by_domain, setup),
        TU_PAIR_TEST(test_counters_across_reload, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
