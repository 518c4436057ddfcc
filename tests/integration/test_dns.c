/* Integration: outbound by SIP domain (issue 11) against a real DNS server.
 * Each test starts dnsmasq on loopback with a zone of its own (NAPTR, SRV,
 * A and AAAA records; tests/support/dnsserver.c) at a free port and points
 * the client engine at it (dns_servers): RFC 3263 location, SRV failover,
 * the certificate checked against the SIP domain while connecting to an
 * address (RFC 5922 §7.2), a DNS server that never answers while the loop
 * keeps serving other flows, and the target calls (client domain, SNI,
 * local address). Real sockets, real wolfSSL handshakes; no fixed ports. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsserver.h"
#include "pair.h"

static tu_pair *E;
static tu_dns D;
static int silent_fd = -1;

/* ------------------------------------------------------------------------ */
/* the log, the resolve callback, the server's answer                       */
/* ------------------------------------------------------------------------ */

static char g_log[64][512];
static unsigned g_n_log;

static void keep_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if (level <= SIPTLS_LOG_INFO && g_n_log < 64) {
        snprintf(g_log[g_n_log++], sizeof(g_log[0]), "%s", text);
    }
    if (getenv("SIPTLS_TEST_DEBUG") != NULL) {
        fprintf(stderr, "[log %d] %s\n", (int)level, text);
    }
}

/* How many kept log lines hold `a` (and `b`, when not NULL). */
static unsigned log_lines(const char *a, const char *b)
{
    unsigned n = 0;
    for (unsigned i = 0; i < g_n_log; i++) {
        n += strstr(g_log[i], a) != NULL && (b == NULL || strstr(g_log[i], b) != NULL);
    }
    return n;
}

typedef struct answer_rec {
    int called;
    int status;
    size_t n;
    siptls_target t[SIPTLS_TARGETS_MAX];
    char host[SIPTLS_TARGETS_MAX][64];
    char domain[SIPTLS_TARGETS_MAX][256];
} answer_rec;

static void on_resolved(siptls_engine *e, int status, const siptls_target *targets, size_t n,
                        void *user)
{
    (void)e;
    answer_rec *a = user;
    a->called++;
    a->status = status;
    a->n = n;
    for (size_t i = 0; i < n && i < SIPTLS_TARGETS_MAX; i++) {
        a->t[i] = targets[i];
        snprintf(a->host[i], sizeof(a->host[i]), "%s", targets[i].host);
        snprintf(a->domain[i], sizeof(a->domain[i]), "%s", targets[i].sip_domain);
        a->t[i].host = a->host[i];
        a->t[i].sip_domain = a->domain[i];
    }
}

static int answered(void *arg)
{
    return ((const answer_rec *)arg)->called > 0;
}

static void teardown_hook(tu_pair *p)
{
    (void)p;
    tu_dns_stop(&D);
    if (silent_fd >= 0) {
        close(silent_fd);
        silent_fd = -1;
    }
}

static int setup(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0", "dtls:127.0.0.1:0");
    E->cb.log = keep_log;
    E->ccfg.log_level = SIPTLS_LOG_INFO;
    E->on_teardown = teardown_hook;
    memset(&D, 0, sizeof(D));
    g_n_log = 0;
    return 0;
}

static void use_cert(siptls_config *cfg, const char *name)
{
    char v[600];
    snprintf(v, sizeof(v), "[server:default]%s.pem", tu_pki(name));
    tu_set(cfg, "certificate", v);
    snprintf(v, sizeof(v), "[server:default]%s.key", tu_pki(name));
    tu_set(cfg, "private_key", v);
}

static void start_client(void)
{
    assert_int_equal(siptls_engine_new(&E->client, E->loop, &E->ccfg, &E->cb, &E->crec), SIPTLS_OK);
    E->crec.engine = E->client;
}

/* The server: answers every request with a 200 on the same flow. */
static void answer(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    if (!siptls_sipmsg_is_request(m->data, m->len)) {
        return;
    }
    static const char ok[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS c.invalid;branch=z9hG4bK1\r\n"
                             "From: <sip:a@c.invalid>;tag=1\r\nTo: <sip:b@s.invalid>;tag=2\r\n"
                             "Call-ID: dns@c.invalid\r\nCSeq: 1 OPTIONS\r\n"
                             "Content-Length: 0\r\n\r\n";
    siptls_send(r->engine, flow, (const uint8_t *)ok, sizeof(ok) - 1);
}

static const char options[] = "OPTIONS sip:alt.example.test SIP/2.0\r\n"
                              "Via: SIP/2.0/TLS c.invalid;branch=z9hG4bK1\r\n"
                              "Max-Forwards: 70\r\nFrom: <sip:a@c.invalid>;tag=1\r\n"
                              "To: <sip:b@alt.example.test>\r\nCall-ID: dns@c.invalid\r\n"
                              "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

static int client_up(void *arg)
{
    return E->crec.ups >= *(const unsigned *)arg;
}

static int client_closed(void *arg)
{
    return E->crec.closes >= *(const unsigned *)arg;
}

static int client_got(void *arg)
{
    return E->crec.n_msgs >= *(const unsigned *)arg;
}

static void wait_up(unsigned n)
{
    tu_run_pred(E->loop, client_up, &n, 15, "client flow up");
}

static int server_up(void *arg)
{
    return E->srec.ups >= *(const unsigned *)arg;
}

static void wait_server_up(unsigned n)
{
    tu_run_pred(E->loop, server_up, &n, 15, "server flow up");
}

static void wait_closed(unsigned n)
{
    tu_run_pred(E->loop, client_closed, &n, 15, "client flow closed");
}

static siptls_flow_info info_of(siptls_engine *e, siptls_flow_id id)
{
    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(e, id, &info), SIPTLS_OK);
    return info;
}

static unsigned port_of(siptls_flow_info info)
{
    const struct sockaddr_storage *ss = &info.remote;
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* A TCP port on 127.0.0.1 where nobody listens (connects are refused). */
static unsigned closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Start dnsmasq with `records` (printf-formatted with the ports given). */
static void start_dns(const char *const *records)
{
    tu_dns_start(&D, records);
    tu_set(&E->ccfg, "dns_servers", D.server);
}

/* ------------------------------------------------------------------------ */
/* RFC 3263: NAPTR -> SRV -> A/AAAA                                         */
/* ------------------------------------------------------------------------ */

/* The domain's NAPTR records name two SRV names (order 10 and 20; a
 * SIP+D2U record and an order-5 record with flag "A" are not for a TLS
 * client); the first SRV name's target has an A and an AAAA record. The
 * answer is every address in that order, each with the SIP domain of the
 * URI (not the SRV target) as the name to verify. A send to the URI then
 * reaches the server (::1 refuses: the next address), whose certificate
 * names only alt.example.test: verified against the SIP domain, and the
 * SNI the server saw is the SIP domain. */
static void test_naptr_srv_a(void **state)
{
    (void)state;
    use_cert(&E->scfg, "alt");
    tu_pair_start_server(E);
    E->srec.on_msg = answer;
    unsigned p = siptls_listener_port(E->server, 0);
    char srv1[128], srv2[128], srv3[128];
    snprintf(srv1, sizeof(srv1), "--srv-host=_sips._tcp.alt.example.test,one.siptls.test,%u,10,1",
             p);
    snprintf(srv2, sizeof(srv2), "--srv-host=_sips._tcp.backup.example.test,two.siptls.test,5099");
    snprintf(srv3, sizeof(srv3), "--srv-host=_sip._udp.alt.example.test,udp.siptls.test,5060");
    const char *const zone[] = {
        "--naptr-record=alt.example.test,20,10,S,SIPS+D2T,,_sips._tcp.backup.example.test",
        "--naptr-record=alt.example.test,10,10,S,SIPS+D2T,,_sips._tcp.alt.example.test",
        "--naptr-record=alt.example.test,10,5,S,SIP+D2U,,_sip._udp.alt.example.test",
        "--naptr-record=alt.example.test,5,5,A,SIPS+D2T,,one.siptls.test",
        srv1,
        srv2,
        srv3,
        "--host-record=one.siptls.test,127.0.0.1,::1",
        "--host-record=two.siptls.test,127.0.0.3",
        "--host-record=udp.siptls.test,127.0.0.9",
        NULL};
    start_dns(zone);
    start_client();

    answer_rec a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(siptls_resolve(E->client, "sips:alt.example.test", on_resolved, &a),
                     SIPTLS_OK);
    assert_int_equal(a.called, 0); /* never inside the call */
    tu_run_pred(E->loop, answered, &a, 10, "sips:alt.example.test resolved");
    assert_int_equal(a.status, SIPTLS_OK);
    assert_int_equal(a.n, 3);
    /* one.siptls.test's two addresses first (RFC 6724 order between them) */
    assert_true((strcmp(a.host[0], "::1") == 0 && strcmp(a.host[1], "127.0.0.1") == 0) ||
                (strcmp(a.host[0], "127.0.0.1") == 0 && strcmp(a.host[1], "::1") == 0));
    assert_int_equal(a.t[0].port, p);
    assert_int_equal(a.t[1].port, p);
    assert_string_equal(a.host[2], "127.0.0.3");
    assert_int_equal(a.t[2].port, 5099);
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.t[i].transport, SIPTLS_TRANSPORT_TLS);
        assert_string_equal(a.domain[i], "alt.example.test");
        assert_null(a.t[i].client_domain);
    }

    siptls_flow_id f = 0, again = 0;
    assert_int_equal(siptls_send_to(E->client, "sips:alt.example.test", (const uint8_t *)options,
                                    sizeof(options) - 1, &f),
                     SIPTLS_OK);
    /* a second send before the name is even resolved: the same flow */
    assert_int_equal(siptls_send_to(E->client, "sips:alt.example.test", (const uint8_t *)options,
                                    sizeof(options) - 1, &again),
                     SIPTLS_OK);
    assert_int_equal(again, f);
    unsigned two = 2;
    tu_run_pred(E->loop, client_got, &two, 15, "both answers back");
    assert_int_equal(E->crec.up_ids[0], f);
    siptls_flow_info ci = info_of(E->client, f);
    assert_true(ci.peer_verified);
    assert_int_equal(port_of(ci), p);
    assert_string_equal(ci.sni, "alt.example.test");
    siptls_flow_info si = info_of(E->server, E->srec.up_ids[0]);
    assert_string_equal(si.sni, "alt.example.test");
    /* a sip: URI is located the same way (over TLS): the same destination,
     * the same flow */
    siptls_flow_id g = 0;
    assert_int_equal(siptls_connect(E->client, "sip:alt.example.test", &g), SIPTLS_OK);
    assert_int_equal(g, f);
}

/* No NAPTR and no SRV record: the A and AAAA records of the domain at
 * tls_port (RFC 3263 §4.2). ;transport=tls skips NAPTR (the SRV query
 * still runs); ;transport=dtls with a port is DTLS to the A record; maddr
 * replaces the host to connect to, not the SIP domain. */
static void test_fallbacks(void **state)
{
    (void)state;
    use_cert(&E->scfg, "alt");
    tu_pair_start_server(E);
    E->srec.on_msg = answer;
    unsigned p = siptls_listener_port(E->server, 0);
    unsigned dp = siptls_listener_port(E->server, 1);
    /* two SRV records of one priority (RFC 2782 weighted order) whose
     * targets are one address: it is tried once */
    char srv[128], srv2[128];
    snprintf(srv, sizeof(srv), "--srv-host=_sips._tcp.srv.example.test,one.siptls.test,%u,10,1", p);
    snprintf(srv2, sizeof(srv2), "--srv-host=_sips._tcp.srv.example.test,uno.siptls.test,%u,10,3",
             p);
    const char *const zone[] = {"--host-record=alt.example.test,127.0.0.1",
                                "--host-record=one.siptls.test,127.0.0.1",
                                "--host-record=uno.siptls.test,127.0.0.1",
                                "--naptr-record=srv.example.test,10,10,S,SIPS+D2T,,nowhere.test",
                                srv,
                                srv2,
                                NULL};
    start_dns(zone);
    E->ccfg.tls_port = p;
    start_client();

    answer_rec a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(siptls_resolve(E->client, "sips:alt.example.test", on_resolved, &a),
                     SIPTLS_OK);
    tu_run_pred(E->loop, answered, &a, 10, "A fallback");
    assert_int_equal(a.status, SIPTLS_OK);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.host[0], "127.0.0.1");
    assert_int_equal(a.t[0].port, p); /* tls_port */

    memset(&a, 0, sizeof(a));
    assert_int_equal(
        siptls_resolve(E->client, "sip:srv.example.test;transport=tls", on_resolved, &a),
        SIPTLS_OK);
    tu_run_pred(E->loop, answered, &a, 10, "SRV without NAPTR");
    assert_int_equal(a.status, SIPTLS_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.t[0].port, p);
    assert_string_equal(a.domain[0], "srv.example.test");

    char uri[128];
    snprintf(uri, sizeof(uri), "sip:alt.example.test:%u;transport=dtls", dp);
    memset(&a, 0, sizeof(a));
    assert_int_equal(siptls_resolve(E->client, uri, on_resolved, &a), SIPTLS_OK);
    tu_run_pred(E->loop, answered, &a, 10, "DTLS by A record");
    assert_int_equal(a.status, SIPTLS_OK);
    assert_int_equal(a.t[0].transport, SIPTLS_TRANSPORT_DTLS);
    assert_int_equal(a.t[0].port, dp);
    siptls_flow_id fd = 0;
    assert_int_equal(
        siptls_send_to(E->client, uri, (const uint8_t *)options, sizeof(options) - 1, &fd),
        SIPTLS_OK);
    unsigned one = 1;
    tu_run_pred(E->loop, client_got, &one, 15, "answer over DTLS");
    assert_int_equal(info_of(E->client, fd).transport, SIPTLS_TRANSPORT_DTLS);

    /* maddr: connect to 127.0.0.1, verify alt.example.test */
    snprintf(uri, sizeof(uri), "sips:alt.example.test:%u;maddr=127.0.0.1;lr", p);
    siptls_flow_id fm = 0;
    assert_int_equal(siptls_connect(E->client, uri, &fm), SIPTLS_OK);
    wait_up(2);
    assert_true(info_of(E->client, fm).peer_verified);
}

/* ------------------------------------------------------------------------ */
/* failover                                                                 */
/* ------------------------------------------------------------------------ */

/* Three SRV targets by priority: the first refuses the connection, the
 * second completes TCP but its certificate does not name the SIP domain,
 * the third serves. The one flow (one id, one on_flow UP) comes up at the
 * third: RFC 3263 §4.3 failover on connect and on handshake failure. */
static void test_srv_failover(void **state)
{
    (void)state;
    use_cert(&E->scfg, "alt");
    tu_pair_start_server(E);
    E->srec.on_msg = answer;
    unsigned good = siptls_listener_port(E->server, 0);
    siptls_config wc;
    tu_config(&wc, "server"); /* CN=localhost: not alt.example.test */
    siptls_engine *wrong = tu_pair_engine(E, &wc, NULL, NULL);
    siptls_config_cleanup(&wc);
    assert_true(siptls_listen(wrong, "tls:127.0.0.1:0") >= 0);
    unsigned bad = siptls_listener_port(wrong, 0);
    unsigned dead = closed_port();
    char s1[128], s2[128], s3[128];
    snprintf(s1, sizeof(s1), "--srv-host=_sips._tcp.alt.example.test,dead.siptls.test,%u,10,5",
             dead);
    snprintf(s2, sizeof(s2), "--srv-host=_sips._tcp.alt.example.test,wrong.siptls.test,%u,20,5",
             bad);
    snprintf(s3, sizeof(s3), "--srv-host=_sips._tcp.alt.example.test,good.siptls.test,%u,30,5",
             good);
    const char *const zone[] = {s1,
                                s2,
                                s3,
                                "--host-record=dead.siptls.test,127.0.0.1",
                                "--host-record=wrong.siptls.test,127.0.0.1",
                                "--host-record=good.siptls.test,127.0.0.1",
                                NULL};
    start_dns(zone);
    start_client();
    siptls_flow_id f = 0;
    assert_int_equal(siptls_send_to(E->client, "sips:alt.example.test", (const uint8_t *)options,
                                    sizeof(options) - 1, &f),
                     SIPTLS_OK);
    unsigned one = 1;
    tu_run_pred(E->loop, client_got, &one, 20, "answer from the third SRV target");
    assert_int_equal(E->crec.ups, 1);
    assert_int_equal(E->crec.up_ids[0], f);
    assert_int_equal(E->crec.closes, 0);
    assert_int_equal(port_of(info_of(E->client, f)), good);
    /* what happened on the way, in order */
    assert_int_equal(log_lines("connect failed; trying", NULL), 1);
    assert_int_equal(log_lines("does not match the SIP domain", "trying"), 1);
    assert_int_equal(tu_stats(wrong).flows_accepted, 1);
}

/* ------------------------------------------------------------------------ */
/* RFC 5922 §7.2: the SIP domain, not the address                           */
/* ------------------------------------------------------------------------ */

static void test_verify_domain_not_address(void **state)
{
    (void)state;
    use_cert(&E->scfg, "alt");
    tu_pair_start_server(E);
    unsigned p = siptls_listener_port(E->server, 0);
    siptls_config wc;
    tu_config(&wc, "server"); /* names localhost and IP 127.0.0.1 only */
    siptls_engine *addr_only = tu_pair_engine(E, &wc, NULL, NULL);
    siptls_config_cleanup(&wc);
    assert_true(siptls_listen(addr_only, "tls:127.0.0.1:0") >= 0);
    unsigned w = siptls_listener_port(addr_only, 0);
    char s1[128];
    snprintf(s1, sizeof(s1), "--srv-host=_sips._tcp.alt.example.test,sip.siptls.test,%u", w);
    const char *const zone[] = {s1, "--host-record=sip.siptls.test,127.0.0.1", NULL};
    start_dns(zone);
    start_client();

    /* an address, verified as the SIP domain: a certificate for the
     * domain passes */
    siptls_target t;
    siptls_target_init(&t);
    t.host = "127.0.0.1";
    t.port = (uint16_t)p;
    t.sip_domain = "alt.example.test";
    siptls_flow_id ok = 0;
    assert_int_equal(siptls_connect_target(E->client, &t, 1, &ok), SIPTLS_OK);
    wait_up(1);
    siptls_flow_info ci = info_of(E->client, ok);
    assert_true(ci.peer_verified);
    assert_string_equal(ci.sni, "alt.example.test");
    wait_server_up(1);
    assert_string_equal(info_of(E->server, E->srec.up_ids[0]).sni, "alt.example.test");

    /* the same, at a server whose certificate names only the address */
    t.port = (uint16_t)w;
    siptls_flow_id bad = 0;
    assert_int_equal(siptls_connect_target(E->client, &t, 1, &bad), SIPTLS_OK);
    wait_closed(1);
    assert_int_equal(E->crec.closed_ids[0], bad);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_NAME_MISMATCH);

    /* that server is fine for the address itself (no SIP domain given) */
    t.sip_domain = NULL;
    siptls_flow_id as_ip = 0;
    assert_int_equal(siptls_connect_target(E->client, &t, 1, &as_ip), SIPTLS_OK);
    wait_up(2);
    assert_true(info_of(E->client, as_ip).peer_verified);

    /* by DNS: the SRV target's certificate does not name the SIP domain */
    siptls_flow_id by_dns = 0;
    assert_int_equal(siptls_connect(E->client, "sips:alt.example.test", &by_dns), SIPTLS_OK);
    wait_closed(2);
    assert_int_equal(E->crec.closed_ids[1], by_dns);
    assert_int_equal(E->crec.close_reasons[1], SIPTLS_ERR_NAME_MISMATCH);
}

/* ------------------------------------------------------------------------ */
/* a DNS server that never answers                                          */
/* ------------------------------------------------------------------------ */

static int a_closed_with(void *arg)
{
    (void)arg;
    return E->crec.closes >= 1;
}

/* The lookup hangs; meanwhile a TLS round trip on another flow completes
 * (the loop is not blocked). Then the lookup times out: the flow closes
 * with SIPTLS_ERR_RESOLVE_TIMEOUT, siptls_resolve() answers the same, and
 * the log says why in c-ares' words. */
static void test_silent_server(void **state)
{
    (void)state;
    char server[32];
    silent_fd = tu_dns_silent(server);
    tu_set(&E->ccfg, "dns_servers", server);
    E->ccfg.dns_timeout = 1500;
    E->ccfg.dns_tries = 1;
    tu_pair_start(E);
    E->srec.on_msg = answer;
    siptls_flow_id direct = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), &direct),
                     SIPTLS_OK);
    wait_up(1);

    double t0 = ev_time();
    siptls_flow_id named = 0;
    assert_int_equal(siptls_send_to(E->client, "sips:alt.example.test", (const uint8_t *)options,
                                    sizeof(options) - 1, &named),
                     SIPTLS_OK);
    answer_rec a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(siptls_resolve(E->client, "tls:hang.example.test", on_resolved, &a),
                     SIPTLS_OK);
    /* the round trip on the other flow, while both lookups hang */
    assert_int_equal(siptls_send(E->client, direct, (const uint8_t *)options, sizeof(options) - 1),
                     SIPTLS_OK);
    unsigned one = 1;
    tu_run_pred(E->loop, client_got, &one, 1.0, "round trip while the DNS server is silent");
    assert_int_equal(E->crec.closes, 0);
    assert_int_equal(a.called, 0);
    assert_true(ev_time() - t0 < 1.4);
    /* the query did reach the silent server */
    uint8_t q[512];
    assert_true(recv(silent_fd, q, sizeof(q), MSG_DONTWAIT) > 12);

    tu_run_pred(E->loop, a_closed_with, NULL, 10, "the named flow closed");
    assert_int_equal(E->crec.closed_ids[0], named);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_RESOLVE_TIMEOUT);
    assert_true(ev_time() - t0 >= 1.4);
    tu_run_pred(E->loop, answered, &a, 10, "siptls_resolve answered");
    assert_int_equal(a.status, SIPTLS_ERR_RESOLVE_TIMEOUT);
    assert_int_equal(a.n, 0);
    assert_int_equal(log_lines("DNS lookup timed out", "Timeout while contacting DNS servers"), 2);
    /* the other flow is still up */
    assert_int_equal(siptls_send(E->client, direct, (const uint8_t *)options, sizeof(options) - 1),
                     SIPTLS_OK);
}

/* A flow closed while its name is being resolved closes at once (its
 * lookup is forgotten); a lookup still pending when the engine is freed
 * is answered with SIPTLS_ERR_SHUTDOWN. */
static void test_close_while_resolving(void **state)
{
    (void)state;
    char server[32];
    silent_fd = tu_dns_silent(server);
    tu_set(&E->ccfg, "dns_servers", server);
    E->ccfg.dns_timeout = 5000;
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, "sips:alt.example.test", &f), SIPTLS_OK);
    assert_int_equal(siptls_close(E->client, f), SIPTLS_OK);
    assert_int_equal(siptls_close(E->client, f), SIPTLS_ERR_GONE);
    wait_closed(1);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_CLOSED_LOCAL);
    assert_int_equal(tu_stats(E->client).handshakes_failed, 0);

    static tu_rec xr;
    memset(&xr, 0, sizeof(xr));
    tu_rec *xrec = &xr;
    siptls_engine *x = tu_pair_engine(E, &E->ccfg, xrec, NULL);
    answer_rec a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(siptls_resolve(x, "sips:alt.example.test", on_resolved, &a), SIPTLS_OK);
    siptls_flow_id g = 0;
    assert_int_equal(siptls_connect(x, "tls:hang.example.test", &g), SIPTLS_OK);
    tu_run_for(E->loop, 0.1);
    tu_pair_engine_free(E, x);
    assert_int_equal(a.called, 1);
    assert_int_equal(a.status, SIPTLS_ERR_SHUTDOWN);
    assert_int_equal(xrec->closes, 1);
    assert_int_equal(xrec->close_reasons[0], SIPTLS_ERR_SHUTDOWN);
}

/* ------------------------------------------------------------------------ */
/* names that do not resolve                                                */
/* ------------------------------------------------------------------------ */

static void test_resolve_errors(void **state)
{
    (void)state;
    const char *const zone[] = {"--srv-host=_sips._tcp.nosvc.example.test",
                                "--host-record=v4only.siptls.test,127.0.0.1", NULL};
    start_dns(zone);
    tu_pair_start(E);

    answer_rec a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(siptls_resolve(E->client, "sips:nope.example.test", on_resolved, &a),
                     SIPTLS_OK);
    tu_run_pred(E->loop, answered, &a, 10, "nope.example.test");
    assert_int_equal(a.status, SIPTLS_ERR_RESOLVE);
    assert_int_equal(log_lines("'nope.example.test': Domain name not found", NULL), 1);

    memset(&a, 0, sizeof(a));
    assert_int_equal(siptls_resolve(E->client, "sips:nosvc.example.test", on_resolved, &a),
                     SIPTLS_OK);
    tu_run_pred(E->loop, answered, &a, 10, "nosvc.example.test");
    assert_int_equal(a.status, SIPTLS_ERR_RESOLVE);
    assert_int_equal(log_lines("the service is not offered", NULL), 1);

    /* tls:NAME: the flow closes from the loop, c-ares' message logged */
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, "tls:nope.example.test:5061", &f), SIPTLS_OK);
    wait_closed(1);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_RESOLVE);
    assert_int_equal(
        log_lines("to nope.example.test: cannot resolve host: 'nope.example.test': Domain name "
                  "not found",
                  NULL),
        1);

    /* an IPv6 local address and a name with only an A record */
    struct sockaddr_in6 l6;
    memset(&l6, 0, sizeof(l6));
    l6.sin6_family = AF_INET6;
    l6.sin6_addr = in6addr_loopback;
    siptls_target t;
    siptls_target_init(&t);
    t.host = "v4only.siptls.test";
    t.port = 5061;
    t.local = (const struct sockaddr *)&l6;
    t.local_len = sizeof(l6);
    assert_int_equal(siptls_connect_target(E->client, &t, 1, &f), SIPTLS_OK);
    wait_closed(2);
    assert_int_equal(E->crec.close_reasons[1], SIPTLS_ERR_RESOLVE);
    assert_int_equal(
        log_lines("'v4only.siptls.test': DNS server returned answer with no data", NULL), 1);

    /* what the call itself refuses */
    assert_int_equal(siptls_resolve(E->client, "sips:*", on_resolved, &a), SIPTLS_ERR_URI_ADDR);
    assert_int_equal(siptls_resolve(E->client, "tls:*", on_resolved, &a), SIPTLS_ERR_URI_ADDR);
    assert_int_equal(siptls_resolve(E->client, "sip:a.org;transport=udp", on_resolved, &a),
                     SIPTLS_ERR_URI_TRANSPORT);
    assert_int_equal(siptls_resolve(E->client, "udp:a.org", on_resolved, &a),
                     SIPTLS_ERR_URI_SCHEME);
    assert_int_equal(siptls_resolve(E->client, "sips:a.org", NULL, &a), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_connect(E->client, "sips:a.org:0", &f), SIPTLS_ERR_URI_PORT);
}

/* ------------------------------------------------------------------------ */
/* targets: client domain, SNI, local address, lists                        */
/* ------------------------------------------------------------------------ */

static void test_target_choices(void **state)
{
    (void)state;
    use_cert(&E->scfg, "alt");
    char ca[600];
    snprintf(ca, sizeof(ca), "[server:default]%s", tu_pki("ca.pem"));
    tu_set(&E->scfg, "ca_list", ca);
    tu_set(&E->scfg, "verify_cert", "[server:default]1"); /* asks for a client certificate */
    tu_set(&E->ccfg, "client_domain", "carrier");
    char v[600];
    snprintf(v, sizeof(v), "[carrier]%s", tu_pki("client.pem"));
    tu_set(&E->ccfg, "certificate", v);
    snprintf(v, sizeof(v), "[carrier]%s", tu_pki("client.key"));
    tu_set(&E->ccfg, "private_key", v);
    tu_pair_start(E);
    E->srec.on_msg = answer;
    unsigned p = siptls_listener_port(E->server, 0);

    struct sockaddr_in l4;
    memset(&l4, 0, sizeof(l4));
    l4.sin_family = AF_INET;
    l4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    siptls_target t;
    siptls_target_init(&t);
    t.host = "127.0.0.1";
    t.port = (uint16_t)p;
    t.sip_domain = "alt.example.test";
    t.client_domain = "carrier";
    t.sni = "front.example.test";
    t.local = (const struct sockaddr *)&l4;
    t.local_len = sizeof(l4);
    siptls_flow_id f = 0, same = 0, other = 0;
    assert_int_equal(
        siptls_send_target(E->client, &t, 1, (const uint8_t *)options, sizeof(options) - 1, &f),
        SIPTLS_OK);
    unsigned one = 1;
    tu_run_pred(E->loop, client_got, &one, 15, "answer over the target's flow");
    siptls_flow_info ci = info_of(E->client, f);
    assert_string_equal(ci.domain, "carrier");
    assert_string_equal(ci.sni, "front.example.test");
    assert_true(ci.peer_verified); /* against alt.example.test, not the SNI */
    assert_int_equal(strncmp(ci.local_text, "127.0.0.1:", 10), 0);
    siptls_flow_info si = info_of(E->server, E->srec.up_ids[0]);
    assert_string_equal(si.sni, "front.example.test");
    assert_true(si.peer_cert); /* the carrier domain's certificate */
    assert_non_null(strstr(si.peer_subject, "client.example.test"));

    /* the same target again: that flow; other choices: another flow */
    assert_int_equal(siptls_connect_target(E->client, &t, 1, &same), SIPTLS_OK);
    assert_int_equal(same, f);
    t.client_domain = NULL;
    assert_int_equal(siptls_connect_target(E->client, &t, 1, &other), SIPTLS_OK);
    assert_int_not_equal(other, f);
    t.client_domain = "carrier";
    assert_int_equal(siptls_open_target(E->client, &t, 1, &other), SIPTLS_OK);
    assert_int_not_equal(other, f);
    wait_up(3);

    /* a list: the first address refuses, the second serves */
    siptls_target two[2];
    siptls_target_init(&two[0]);
    two[0].host = "[::1]";
    two[0].port = (uint16_t)closed_port();
    two[0].sip_domain = "alt.example.test";
    two[1] = two[0];
    two[1].host = "127.0.0.1";
    two[1].port = (uint16_t)p;
    siptls_flow_id lf = 0;
    assert_int_equal(siptls_open_target(E->client, two, 2, &lf), SIPTLS_OK);
    wait_up(4);
    assert_int_equal(E->crec.up_ids[3], lf);

    /* refused by the call itself */
    assert_int_equal(siptls_connect_target(E->client, NULL, 1, &f), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_connect_target(E->client, &t, 0, &f), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_connect_target(E->client, &t, SIPTLS_TARGETS_MAX + 1, &f),
                     SIPTLS_ERR_INVAL);
    siptls_target b = t;
    b.client_domain = "nope";
    assert_int_equal(siptls_connect_target(E->client, &b, 1, &f), SIPTLS_ERR_INVAL);
    assert_int_equal(log_lines("no client domain 'nope'", NULL), 1);
    b = t;
    b.host = NULL;
    assert_int_equal(siptls_connect_target(E->client, &b, 1, &f), SIPTLS_ERR_INVAL);
    b.host = "not a host";
    assert_int_equal(siptls_connect_target(E->client, &b, 1, &f), SIPTLS_ERR_URI_ADDR);
    b.host = "::1"; /* an IPv6 target from an IPv4 local address */
    assert_int_equal(siptls_connect_target(E->client, &b, 1, &f), SIPTLS_ERR_URI_ADDR);
    b = t;
    b.transport = (siptls_transport)7;
    assert_int_equal(siptls_connect_target(E->client, &b, 1, &f), SIPTLS_ERR_INVAL);
    siptls_target mixed[2] = {t, t};
    mixed[1].transport = SIPTLS_TRANSPORT_DTLS;
    assert_int_equal(siptls_connect_target(E->client, mixed, 2, &f), SIPTLS_ERR_INVAL);
    mixed[1] = t;
    mixed[1].sip_domain = "other.example.test";
    assert_int_equal(siptls_connect_target(E->client, mixed, 2, &f), SIPTLS_ERR_INVAL);
    b = t;
    b.local_len = 4;
    assert_int_equal(siptls_connect_target(E->client, &b, 1, &f), SIPTLS_ERR_URI_ADDR);
    assert_int_equal(siptls_send_target(E->client, &t, 1, NULL, 0, &f), SIPTLS_ERR_INVAL);
    siptls_target_init(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_naptr_srv_a, setup),
        TU_PAIR_TEST(test_fallbacks, setup),
        TU_PAIR_TEST(test_srv_failover, setup),
        TU_PAIR_TEST(test_verify_domain_not_address, setup),
        TU_PAIR_TEST(test_silent_server, setup),
        TU_PAIR_TEST(test_close_while_resolving, setup),
        TU_PAIR_TEST(test_resolve_errors, setup),
        TU_PAIR_TEST(test_target_choices, setup),
    };
    if (getenv("SIPTLS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("SIPTLS_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
