/* Integration: siptls_engine_reload() — TLS domains, trusted_domain entries,
 * certificates and CAs swapped at once; flows open across a reload keep
 * what they started with; new flows use the new domains; a bad
 * configuration is refused whole with the old one kept; parameters a
 * reload does not apply are named; 1,000 reloads with a flow open across
 * them leak nothing (run under ASan too). Real TLS and DTLS flows over
 * loopback (tu_pair). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>

#include "engine_internal.h"
#include "pair.h"

static tu_pair *E;

/* log lines of the server engine */
static char g_log[64][512];
static unsigned g_n_log;

static void keep_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if (g_n_log < 64) {
        snprintf(g_log[g_n_log++], sizeof(g_log[0]), "%d %s", (int)level, text);
    }
    if (getenv("SIPTLS_TEST_DEBUG") != NULL) {
        fprintf(stderr, "[log %d] %s\n", (int)level, text);
    }
}

static int logged(const char *a, const char *b)
{
    for (unsigned i = 0; i < g_n_log; i++) {
        if (strstr(g_log[i], a) != NULL && (b == NULL || strstr(g_log[i], b) != NULL)) {
            return 1;
        }
    }
    return 0;
}

static void pki_set(siptls_config *c, const char *key, const char *prefix, const char *file)
{
    char v[600];
    snprintf(v, sizeof(v), "%s%s", prefix, tu_pki(file));
    tu_set(c, key, v);
}

/* v1: the default server domain with server.pem (CN localhost), asking
 * clients for a certificate (ca.pem); no trusted domain. */
static void config_v1(siptls_config *c)
{
    tu_config(c, "server");
    pki_set(c, "ca_list", "[server:default]", "ca.pem");
    tu_set(c, "verify_cert", "[server:default]1");
}

/* v2: v1 plus a server domain "sbc" chosen by the listeners' address, with
 * alt.pem (CN alt.example.test), and the client's identity trusted. */
static void config_v2(siptls_config *c)
{
    config_v1(c);
    tu_set(c, "server_domain", "sbc");
    char addr[64];
    snprintf(addr, sizeof(addr), "[sbc]127.0.0.1:%u", siptls_listener_port(E->server, 0));
    tu_set(c, "match_ip_address", addr);
    snprintf(addr, sizeof(addr), "[sbc]127.0.0.1:%u", siptls_listener_port(E->server, 1));
    tu_set(c, "match_ip_address", addr);
    pki_set(c, "certificate", "[sbc]", "alt.pem");
    pki_set(c, "private_key", "[sbc]", "alt.key");
    tu_set(c, "trusted_domain", "client.example.test");
}

static int setup(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0", "dtls:127.0.0.1:0");
    siptls_config_cleanup(&E->scfg);
    config_v1(&E->scfg);
    tu_set(&E->scfg, "listen", "tls:127.0.0.1:0");
    tu_set(&E->scfg, "listen", "dtls:127.0.0.1:0");
    E->scfg.log_level = getenv("SIPTLS_TEST_DEBUG") ? SIPTLS_LOG_DEBUG : SIPTLS_LOG_INFO;
    /* the client shows its certificate and looks at the server's subject
     * without checking names (alt.pem has no address in it) */
    pki_set(&E->ccfg, "certificate", "[client:default]", "client.pem");
    pki_set(&E->ccfg, "private_key", "[client:default]", "client.key");
    tu_set(&E->ccfg, "verify_cert", "[client:default]0");
    g_n_log = 0;
    return 0;
}

static void start(void)
{
    E->cb.log = keep_log;
    tu_pair_start(E);
}

static int ups_at_least(void *arg)
{
    const unsigned *want = arg;
    return E->crec.ups >= want[0] && E->srec.ups >= want[1];
}

/* A new flow of listener `l` from the client, up on both sides; its ids on
 * both sides. */
static void open_one(int l, siptls_flow_id *client_id, siptls_flow_id *server_id)
{
    unsigned want[2] = {E->crec.ups + 1, E->srec.ups + 1};
    const char *scheme = l == 0 ? "tls" : "dtls";
    assert_int_equal(siptls_open(E->client, tu_uri(E->server, l, scheme, "127.0.0.1"), client_id),
                     SIPTLS_OK);
    tu_run_pred(E->loop, ups_at_least, want, 10, "flow up");
    *server_id = E->srec.up_ids[E->srec.ups - 1];
}

static int msgs_at_least(void *arg)
{
    const unsigned *want = arg;
    return E->srec.n_msgs >= want[0] && E->crec.n_msgs >= want[1];
}

/* One request client -> server and one back on the flow pair. */
static void round_trip(siptls_flow_id c, siptls_flow_id s, unsigned seq)
{
    unsigned want[2] = {E->srec.n_msgs + 1, E->crec.n_msgs + 1};
    uint8_t *m = tu_make_request(600, seq, "TLS");
    assert_int_equal(siptls_send(E->client, c, m, 600), SIPTLS_OK);
    assert_int_equal(siptls_send(E->server, s, m, 600), SIPTLS_OK);
    free(m);
    tu_run_pred(E->loop, msgs_at_least, want, 10, "round trip");
    assert_int_equal(E->srec.msgs[E->srec.n_msgs - 1].flow, s);
    assert_int_equal(E->crec.msgs[E->crec.n_msgs - 1].flow, c);
}

static siptls_flow_info info_of(siptls_engine *e, siptls_flow_id f)
{
    siptls_flow_info i;
    assert_int_equal(siptls_flow_get_info(e, f, &i), SIPTLS_OK);
    return i;
}

static void test_swap_domains(void **state)
{
    (void)state;
    start();
    /* before: TLS and DTLS flows on the default domain, untrusted */
    siptls_flow_id c1, s1, c2, s2;
    open_one(0, &c1, &s1);
    open_one(1, &c2, &s2);
    siptls_flow_info i = info_of(E->server, s1);
    assert_string_equal(i.domain, "default");
    assert_int_equal(i.peer_verified, 1);
    assert_int_equal(i.trusted, 0);
    assert_non_null(strstr(info_of(E->client, c1).peer_subject, "CN=localhost"));

    siptls_config v2;
    config_v2(&v2);
    assert_int_equal(siptls_engine_reload(E->server, &v2), SIPTLS_OK);
    assert_int_equal(tu_stats(E->server).reloads, 1);
    assert_true(logged("configuration reloaded", "1 trusted"));

    /* the flows open across the reload work and keep their domain */
    round_trip(c1, s1, 1);
    round_trip(c2, s2, 2);
    i = info_of(E->server, s1);
    assert_string_equal(i.domain, "default");
    assert_int_equal(i.trusted, 0);
    assert_string_equal(info_of(E->server, s2).domain, "default");

    /* new flows: the new domain (by address), its certificate, trusted */
    siptls_flow_id c3, s3, c4, s4;
    open_one(0, &c3, &s3);
    open_one(1, &c4, &s4);
    for (int k = 0; k < 2; k++) {
        i = info_of(E->server, k == 0 ? s3 : s4);
        assert_string_equal(i.domain, "sbc");
        assert_int_equal(i.peer_verified, 1);
        assert_int_equal(i.trusted, 1);
        assert_string_equal(i.trusted_domain, "client.example.test");
        assert_non_null(
            strstr(info_of(E->client, k == 0 ? c3 : c4).peer_subject, "CN=alt.example.test"));
    }
    round_trip(c3, s3, 3);
    round_trip(c4, s4, 4);

    /* and back: v1 again; the v2 flows keep v2 */
    siptls_config v1;
    config_v1(&v1);
    assert_int_equal(siptls_engine_reload(E->server, &v1), SIPTLS_OK);
    siptls_flow_id c5, s5;
    open_one(0, &c5, &s5);
    assert_string_equal(info_of(E->server, s5).domain, "default");
    assert_int_equal(info_of(E->server, s5).trusted, 0);
    assert_string_equal(info_of(E->server, s3).domain, "sbc");
    assert_int_equal(info_of(E->server, s3).trusted, 1);
    round_trip(c3, s3, 5);
    siptls_config_cleanup(&v1);
    siptls_config_cleanup(&v2);
}

/* Everything a bad configuration can get wrong is refused whole: the
 * engine goes on with what it had, and the log says why. */
static void test_bad_config_refused(void **state)
{
    (void)state;
    start();
    siptls_config v2;
    config_v2(&v2);
    assert_int_equal(siptls_engine_reload(E->server, &v2), SIPTLS_OK);
    siptls_flow_id c1, s1;
    open_one(0, &c1, &s1);
    assert_string_equal(info_of(E->server, s1).domain, "sbc");

    /* 1. a domain whose certificate file does not exist, declared after
     *    good ones: nothing of the file is taken (no half reload) */
    siptls_config bad;
    config_v1(&bad);
    tu_set(&bad, "trusted_domain", "other.example.test");
    tu_set(&bad, "server_domain", "good");
    pki_set(&bad, "certificate", "[good]", "server.pem");
    pki_set(&bad, "private_key", "[good]", "server.key");
    tu_set(&bad, "server_domain", "broken");
    tu_set(&bad, "certificate", "[broken]/nonexistent/broken.pem");
    g_n_log = 0;
    assert_int_equal(siptls_engine_reload(E->server, &bad), SIPTLS_ERR_CERT);
    assert_true(logged("domain 'broken'", "/nonexistent/broken.pem"));
    assert_true(logged("reload refused", NULL));
    siptls_config_cleanup(&bad);

    /* 2. a key that does not belong to its certificate */
    config_v1(&bad);
    pki_set(&bad, "private_key", "[server:default]", "alt.key");
    g_n_log = 0;
    assert_int_equal(siptls_engine_reload(E->server, &bad), SIPTLS_ERR_CERT);
    assert_true(logged("does not belong", NULL));
    siptls_config_cleanup(&bad);

    /* 3. no certificate for the default server domain, which the
     *    listeners need */
    assert_int_equal(siptls_config_init(&bad), SIPTLS_OK);
    g_n_log = 0;
    assert_int_equal(siptls_engine_reload(E->server, &bad), SIPTLS_ERR_CERT);
    assert_true(logged("no certificate", "listeners"));
    siptls_config_cleanup(&bad);

    /* 4. a cipher list this wolfSSL does not know */
    config_v1(&bad);
    tu_set(&bad, "ciphers_list", "[server:default]NO-SUCH-CIPHER");
    assert_int_equal(siptls_engine_reload(E->server, &bad), SIPTLS_ERR_INVAL);
    siptls_config_cleanup(&bad);

    assert_int_equal(siptls_engine_reload(E->server, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_engine_reload(NULL, &v2), SIPTLS_ERR_INVAL);
    assert_int_equal(tu_stats(E->server).reloads, 1);

    /* still v2: the old flow works, a new one gets "sbc" and is trusted */
    round_trip(c1, s1, 1);
    siptls_flow_id c2, s2;
    open_one(0, &c2, &s2);
    siptls_flow_info i = info_of(E->server, s2);
    assert_string_equal(i.domain, "sbc");
    assert_int_equal(i.trusted, 1);
    assert_string_equal(i.trusted_domain, "client.example.test");
    siptls_config_cleanup(&v2);
}

/* What a reload does not apply is named and keeps its value; listeners
 * stay as they are. */
static void test_other_parameters_kept(void **state)
{
    (void)state;
    start();
    unsigned port0 = siptls_listener_port(E->server, 0);
    siptls_config v;
    config_v1(&v);
    tu_set(&v, "listen", "tls:127.0.0.1:0");
    tu_set(&v, "tls_max_connections", "7");
    tu_set(&v, "keepalive_timeout", "3");
    tu_set(&v, "tls_session_tickets", "0"); /* security: applied */
    g_n_log = 0;
    assert_int_equal(siptls_engine_reload(E->server, &v), SIPTLS_OK);
    assert_true(logged("'listen'", "does not apply"));
    assert_true(logged("'tls_max_connections'", NULL));
    assert_true(logged("'keepalive_timeout'", NULL));
    assert_false(logged("'tls_session_tickets'", NULL));
    assert_false(logged("'certificate'", NULL));
    assert_int_equal(E->server->cfg.tls_max_connections, 2048);
    assert_int_equal(E->server->cfg.keepalive_timeout, 10);
    assert_int_equal(E->server->cfg.tls_session_tickets, 0);
    assert_int_equal(siptls_listener_count(E->server), 2);
    assert_int_equal(siptls_listener_port(E->server, 0), port0);
    siptls_flow_id c1, s1;
    open_one(0, &c1, &s1);
    siptls_config_cleanup(&v);
}

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

/* 1,000 reloads between two configurations, with flows open across them
 * (a TLS and a DTLS flow the whole time, a new one every 100 reloads that
 * is closed again): the heap does not grow with the reloads, every old
 * context is released once no flow holds it (ASan's leak check at exit
 * in the sanitizer build), and the long-lived flows still work. */
static void test_thousand_reloads(void **state)
{
    (void)state;
    tu_pair_watchdog(E, 600);
    start();
    siptls_flow_id c1, s1, c2, s2;
    open_one(0, &c1, &s1);
    open_one(1, &c2, &s2);
    siptls_config v[2];
    config_v1(&v[0]);
    config_v2(&v[1]);
    E->server->cfg.log_level = SIPTLS_LOG_WARN; /* not 1,000 INFO lines */
    size_t at_100 = 0;
    for (unsigned i = 1; i <= 1000; i++) {
        assert_int_equal(siptls_engine_reload(E->server, &v[i % 2]), SIPTLS_OK);
        if (i % 100 == 0) {
            siptls_flow_id c, s;
            open_one(0, &c, &s);
            assert_string_equal(info_of(E->server, s).domain, i % 2 ? "sbc" : "default");
            round_trip(c, s, i);
            assert_int_equal(siptls_close(E->client, c), SIPTLS_OK);
            tu_run_for(E->loop, 0.01);
        }
        if (i == 100) {
            at_100 = heap_used();
        }
    }
    size_t at_1000 = heap_used();
    long grown = (long)at_1000 - (long)at_100;
    print_message("heap from reload 100 to 1000: %+ld bytes\n", grown);
    /* 900 reloads each build and free two security contexts (hundreds of
     * KB each): a leak of even a few hundred bytes per reload shows. */
    assert_true(grown < 128 * 1024);
    assert_int_equal(tu_stats(E->server).reloads, 1000);
    round_trip(c1, s1, 1);
    round_trip(c2, s2, 2);
    assert_string_equal(info_of(E->server, s1).domain, "default");
    siptls_config_cleanup(&v[0]);
    siptls_config_cleanup(&v[1]);
}

/* A reload that changes the DTLS versions applies to new handshakes: the
 * listener's cookie object (kept across hellos) is made again from the new
 * configuration. It used to stay: after 1.3 -> 1.2 it still answered with
 * DTLS 1.3 HelloRetryRequests whose cookies the new 1.2 objects then
 * found bad, and no new DTLS client got through (a user trial). */
static void test_dtls_versions_reload(void **state)
{
    (void)state;
    start();
    const char *first = "DTLSv1.2";
#ifdef WOLFSSL_DTLS13
    first = "DTLSv1.3"; /* the default range 1.2..1.3 picks 1.3 */
#endif
    siptls_flow_id c1, s1;
    open_one(1, &c1, &s1);
    assert_string_equal(info_of(E->server, s1).tls_version, first);
    for (int k = 0; k < 2; k++) {
        siptls_config v;
        config_v1(&v);
        tu_set(&v, "dtls_max_version", k == 0 ? "1.2" : "1.3");
        assert_int_equal(siptls_engine_reload(E->server, &v), SIPTLS_OK);
        siptls_config_cleanup(&v);
        siptls_flow_id c, s;
        open_one(1, &c, &s);
        assert_string_equal(info_of(E->server, s).tls_version, k == 0 ? "DTLSv1.2" : first);
        round_trip(c, s, (unsigned)k + 2);
        assert_int_equal(tu_stats(E->server).dtls_cookie_bad, 0);
    }
    round_trip(c1, s1, 9); /* the flow from before both reloads */
}

/* siptls_engine_reload_certs() goes the same way: a new file is taken, a
 * broken one refused, and the open flow keeps the old certificate. */
static void test_reload_certs_same_path(void **state)
{
    (void)state;
    start();
    siptls_flow_id c1, s1;
    open_one(0, &c1, &s1);
    assert_int_equal(siptls_engine_reload_certs(E->server), SIPTLS_OK);
    round_trip(c1, s1, 1);
    assert_int_equal(tu_stats(E->server).reloads, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_swap_domains, setup),
        TU_PAIR_TEST(test_bad_config_refused, setup),
        TU_PAIR_TEST(test_other_parameters_kept, setup),
        TU_PAIR_TEST(test_thousand_reloads, setup),
        TU_PAIR_TEST(test_reload_certs_same_path, setup),
        TU_PAIR_TEST(test_dtls_versions_reload, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
