/* Integration: what a host keeps on and reads from a flow
 * (include/siptls/flow.h) — its own pointer, the addresses without the
 * whole info, the write queue's depth and on_writable (backpressure), and
 * the peer's certificate (serial, validity, SHA-256 fingerprint, DER and
 * PEM, every subjectAltName). Real handshakes over loopback (tu_pair);
 * the certificate fields are checked against what `openssl x509` says
 * about the same files. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pair.h"
#include "rawclient.h"

static tu_pair *E;

static int setup_tls(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0");
    return 0;
}

static int setup_dtls(void **state)
{
    E = tu_pair_new(state, "dtls:127.0.0.1:0");
    return 0;
}

static int setup_tls6(void **state)
{
    E = tu_pair_new(state, "tls:[::1]:0");
    return 0;
}

static int setup_both(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0", "dtls:127.0.0.1:0");
    return 0;
}

static size_t make_msg(char *buf, size_t cap, unsigned seq)
{
    int n = snprintf(buf, cap,
                     "MESSAGE sip:b@example.test SIP/2.0\r\n"
                     "Via: SIP/2.0/TLS a.example.test;branch=z9hG4bK%u\r\n"
                     "From: <sip:a@example.test>;tag=%u\r\nTo: <sip:b@example.test>\r\n"
                     "Call-ID: %u@a.example.test\r\nCSeq: %u MESSAGE\r\nContent-Length: 0\r\n\r\n",
                     seq, seq, seq, seq);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static int both_up(void *arg)
{
    const unsigned *want = arg;
    return E->crec.ups >= *want && E->srec.ups >= *want;
}

/* A client flow to the server's listener of `scheme` (the first one of
 * that kind), up on both sides. */
static siptls_flow_id connect_up(const char *scheme, const char *host)
{
    int index = 0;
    if (strcmp(scheme, "dtls") == 0 && siptls_listener_count(E->server) > 1) {
        index = 1; /* setup_both: tls first, then dtls */
    }
    siptls_flow_id f = 0;
    unsigned want = E->crec.ups + 1;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, index, scheme, host), &f),
                     SIPTLS_OK);
    tu_run_pred(E->loop, both_up, &want, 10, "the flow up on both sides");
    return f;
}

/* Everything a shell command prints (malloc'd, NUL-terminated). */
static char *run_cmd(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[len] = '\0';
    int rc = pclose(p);
    if (rc != 0) {
        fail_msg("'%s' failed (%d): %s", cmd, rc, out);
    }
    return out;
}

/* "key=value\n" from openssl output: the value (static buffer). */
static const char *field(const char *text, const char *key)
{
    static char v[256];
    const char *p = strstr(text, key);
    assert_non_null(p);
    p += strlen(key);
    size_t n = strcspn(p, "\n");
    assert_true(n < sizeof(v));
    memcpy(v, p, n);
    v[n] = '\0';
    return v;
}

/* ---- the host's pointer ------------------------------------------------------ */

static int g_user_in_closed; /* on_flow(CLOSED) read the pointer back */
static void *g_user_seen;    /* what it read */
static siptls_flow_id g_user_flow;

static void user_on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                         void *user)
{
    tu_callbacks.on_flow(e, flow, state, reason, user);
    if (state == SIPTLS_FLOW_CLOSED && e == E->client && flow == g_user_flow) {
        void *p = (void *)1;
        g_user_in_closed = siptls_flow_get_user(e, flow, &p) == SIPTLS_OK;
        g_user_seen = p;
        free(p); /* where a host frees what it attached */
    }
}

static int client_closed(void *arg)
{
    (void)arg;
    return E->crec.closes >= 1;
}

static int server_closed(void *arg)
{
    (void)arg;
    return E->srec.closes >= 1;
}

static void test_user_pointer(void **state)
{
    (void)state;
    E->cb.on_flow = user_on_flow;
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    /* outbound: at once, before it is up (on_flow(CLOSED) will come) */
    void *mine = malloc(16);
    void *got = (void *)1;
    assert_int_equal(siptls_flow_get_user(E->client, f, &got), SIPTLS_OK);
    assert_null(got); /* nothing set yet */
    assert_int_equal(siptls_flow_set_user(E->client, f, mine), SIPTLS_OK);
    assert_int_equal(siptls_flow_get_user(E->client, f, &got), SIPTLS_OK);
    assert_ptr_equal(got, mine);
    unsigned want = 1;
    tu_run_pred(E->loop, both_up, &want, 10, "the flow up");
    assert_int_equal(siptls_flow_get_user(E->client, f, &got), SIPTLS_OK);
    assert_ptr_equal(got, mine);
    /* inbound once up; each engine has its own */
    siptls_flow_id sf = E->srec.up_ids[0];
    static int marker;
    assert_int_equal(siptls_flow_set_user(E->server, sf, &marker), SIPTLS_OK);
    assert_int_equal(siptls_flow_get_user(E->server, sf, &got), SIPTLS_OK);
    assert_ptr_equal(got, &marker);
    /* closing: the pointer still reads inside on_flow(CLOSED), then gone */
    g_user_flow = f;
    assert_int_equal(siptls_close(E->client, f), SIPTLS_OK);
    tu_run_pred(E->loop, client_closed, NULL, 10, "the client flow closed");
    assert_true(g_user_in_closed);
    assert_ptr_equal(g_user_seen, mine);
    got = (void *)1;
    assert_int_equal(siptls_flow_get_user(E->client, f, &got), SIPTLS_ERR_GONE);
    assert_null(got);
    assert_int_equal(siptls_flow_set_user(E->client, f, mine), SIPTLS_ERR_GONE);
    tu_run_pred(E->loop, server_closed, NULL, 10, "the server side closed");
    assert_int_equal(siptls_flow_get_user(E->server, sf, &got), SIPTLS_ERR_GONE);
    /* bad arguments */
    assert_int_equal(siptls_flow_get_user(NULL, f, &got), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_get_user(E->client, f, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_set_user(NULL, f, NULL), SIPTLS_ERR_INVAL);
}

static int server_has_flow(void *arg)
{
    (void)arg;
    return tu_stats(E->server).flows_open >= 1;
}

/* An inbound flow still in its handshake may end without on_flow: the
 * library refuses a pointer the host would have no place to free. */
static void test_user_pointer_refused_before_up(void **state)
{
    (void)state;
    tu_pair_start_server(E);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)siptls_listener_port(E->server, 0)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    tu_run_pred(E->loop, server_has_flow, NULL, 5, "the server's flow (in its handshake)");
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    getsockname(fd, (struct sockaddr *)&me, &ml);
    siptls_flow_id f = 0;
    assert_int_equal(
        siptls_flow_lookup(E->server, SIPTLS_TRANSPORT_TLS, (struct sockaddr *)&me, ml, &f),
        SIPTLS_OK);
    static int marker;
    assert_int_equal(siptls_flow_set_user(E->server, f, &marker), SIPTLS_ERR_INVAL);
    void *got = (void *)1;
    assert_int_equal(siptls_flow_get_user(E->server, f, &got), SIPTLS_OK);
    assert_null(got);
    /* nor is there a certificate yet */
    siptls_peer_cert pc;
    assert_int_equal(siptls_flow_peer_cert(E->server, f, &pc), SIPTLS_AGAIN);
    close(fd);
    tu_run_pred(E->loop, tu_pair_all_closed, E, 5, "the half-open flow closed");
}

/* ---- addresses ---------------------------------------------------------------- */

static void addrs_match_info(siptls_engine *e, siptls_flow_id f)
{
    siptls_flow_addrs a;
    siptls_flow_info *info = malloc(sizeof(*info));
    assert_non_null(info);
    assert_int_equal(siptls_flow_get_addrs(e, f, &a), SIPTLS_OK);
    assert_int_equal(siptls_flow_get_info(e, f, info), SIPTLS_OK);
    assert_int_equal(a.transport, info->transport);
    assert_int_equal(a.outbound, info->outbound);
    assert_true(a.remote_len > 0 && a.local_len > 0);
    assert_int_equal(a.remote.ss_family, info->remote.ss_family);
    assert_memory_equal(&a.remote, &info->remote, a.remote_len);
    assert_memory_equal(&a.local, &info->local, a.local_len);
    free(info);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void addrs_both_sides(const char *scheme, const char *host, siptls_transport kind)
{
    siptls_flow_id f = connect_up(scheme, host);
    siptls_flow_id sf = E->srec.up_ids[E->srec.ups - 1];
    addrs_match_info(E->client, f);
    addrs_match_info(E->server, sf);
    siptls_flow_addrs c, s;
    assert_int_equal(siptls_flow_get_addrs(E->client, f, &c), SIPTLS_OK);
    assert_int_equal(siptls_flow_get_addrs(E->server, sf, &s), SIPTLS_OK);
    assert_int_equal(c.transport, kind);
    assert_int_equal(c.outbound, 1);
    assert_int_equal(s.outbound, 0);
    /* each side's remote is the other's local (Via received / rport) */
    assert_int_equal(port_of(&s.remote), port_of(&c.local));
    assert_int_equal(port_of(&c.remote), port_of(&s.local));
    assert_int_equal(port_of(&c.remote), siptls_listener_port(E->server, 0));
    assert_int_equal(siptls_flow_get_addrs(E->client, 999999, &c), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_get_addrs(E->client, f, NULL), SIPTLS_ERR_INVAL);
}

static void test_addrs_tls(void **state)
{
    (void)state;
    tu_pair_start(E);
    addrs_both_sides("tls", "127.0.0.1", SIPTLS_TRANSPORT_TLS);
}

static void test_addrs_tls6(void **state)
{
    (void)state;
    tu_pair_start(E);
    addrs_both_sides("tls", "[::1]", SIPTLS_TRANSPORT_TLS);
}

static void test_addrs_dtls(void **state)
{
    (void)state;
    tu_pair_start(E);
    addrs_both_sides("dtls", "127.0.0.1", SIPTLS_TRANSPORT_DTLS);
}

/* ---- the peer's certificate ----------------------------------------------------- */

/* The certificate of `flow` against `openssl x509` on `pem_file`. */
static void check_cert(siptls_engine *e, siptls_flow_id flow, const char *pem_file)
{
    siptls_peer_cert pc;
    assert_int_equal(siptls_flow_peer_cert(e, flow, &pc), SIPTLS_OK);
    char *o = run_cmd("openssl x509 -in '%s' -noout -serial -fingerprint -sha256 -dates "
                      "-dateopt iso_8601",
                      pem_file);
    assert_string_equal(pc.serial, field(o, "serial="));
    assert_string_equal(pc.sha256_text, field(o, "Fingerprint="));
    /* openssl: "2024-05-01 12:00:00Z"; ours: "2024-05-01T12:00:00Z" */
    char want[64];
    snprintf(want, sizeof(want), "%s", field(o, "notBefore="));
    want[10] = 'T';
    assert_string_equal(pc.not_before_text, want);
    snprintf(want, sizeof(want), "%s", field(o, "notAfter="));
    want[10] = 'T';
    assert_string_equal(pc.not_after_text, want);
    free(o);
    /* the epoch seconds, as date(1) reads openssl's own text */
    o = run_cmd("date -u -d \"$(openssl x509 -in '%s' -noout -enddate | cut -d= -f2)\" +%%s",
                pem_file);
    assert_int_equal(pc.not_after, strtoll(o, NULL, 10));
    free(o);
    o = run_cmd("date -u -d \"$(openssl x509 -in '%s' -noout -startdate | cut -d= -f2)\" +%%s",
                pem_file);
    assert_int_equal(pc.not_before, strtoll(o, NULL, 10));
    free(o);
    assert_true(pc.not_before < pc.not_after);

    /* DER: byte for byte what openssl writes */
    char *der_hex =
        run_cmd("openssl x509 -in '%s' -outform DER | od -An -v -tx1 | tr -d ' \\n'", pem_file);
    size_t len = 0;
    assert_int_equal(siptls_flow_peer_cert_export(e, flow, SIPTLS_CERT_DER, NULL, 0, &len),
                     SIPTLS_ERR_BUFFER_SMALL);
    assert_int_equal(len, pc.der_len);
    assert_int_equal(len * 2, strlen(der_hex));
    uint8_t *der = malloc(len);
    size_t got = 0;
    assert_int_equal(siptls_flow_peer_cert_export(e, flow, SIPTLS_CERT_DER, der, len - 1, &got),
                     SIPTLS_ERR_BUFFER_SMALL);
    assert_int_equal(got, len);
    assert_int_equal(siptls_flow_peer_cert_export(e, flow, SIPTLS_CERT_DER, der, len, &got),
                     SIPTLS_OK);
    char *hex = malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        snprintf(hex + 2 * i, 3, "%02x", der[i]);
    }
    assert_string_equal(hex, der_hex);
    free(hex);
    free(der);
    free(der_hex);

    /* PEM: the text openssl writes, NUL-terminated */
    char *pem_want = run_cmd("openssl x509 -in '%s'", pem_file);
    assert_int_equal(pc.pem_len, strlen(pem_want));
    char *pem = malloc(pc.pem_len + 1);
    assert_int_equal(
        siptls_flow_peer_cert_export(e, flow, SIPTLS_CERT_PEM, (uint8_t *)pem, pc.pem_len, &got),
        SIPTLS_ERR_BUFFER_SMALL); /* no room for the NUL */
    assert_int_equal(got, pc.pem_len);
    assert_int_equal(siptls_flow_peer_cert_export(e, flow, SIPTLS_CERT_PEM, (uint8_t *)pem,
                                                  pc.pem_len + 1, &got),
                     SIPTLS_OK);
    assert_string_equal(pem, pem_want);
    free(pem);
    free(pem_want);
    assert_int_equal(siptls_flow_peer_cert_export(e, flow, (siptls_cert_format)7, NULL, 0, &got),
                     SIPTLS_ERR_INVAL);
}

typedef struct san_list {
    unsigned n;
    unsigned stop_after; /* 0: never */
    char *names[64];
} san_list;

static int collect_san(const char *name, size_t len, void *arg)
{
    san_list *l = arg;
    assert_int_equal(strlen(name), len);
    if (l->n < 64) {
        l->names[l->n] = strdup(name);
    }
    l->n++;
    return l->stop_after != 0 && l->n >= l->stop_after;
}

static void san_list_free(san_list *l)
{
    for (unsigned i = 0; i < l->n && i < 64; i++) {
        free(l->names[i]);
    }
}

/* The client sees the server's certificate (TLS and DTLS alike). */
static void test_peer_cert_of_server(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_flow_id f = connect_up("tls", "127.0.0.1");
    check_cert(E->client, f, tu_pki("server.pem"));
    siptls_peer_cert pc;
    assert_int_equal(siptls_flow_peer_cert(E->client, f, &pc), SIPTLS_OK);
    assert_int_equal(pc.n_sans, 4);
    san_list l = {0};
    assert_int_equal(siptls_flow_peer_sans(E->client, f, collect_san, &l), SIPTLS_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.names[0], "DNS:localhost");
    assert_string_equal(l.names[1], "URI:sip:localhost");
    assert_string_equal(l.names[2], "IP:127.0.0.1");
    assert_string_equal(l.names[3], "IP:::1");
    san_list_free(&l);
    /* the same certificate over DTLS */
    siptls_flow_id d = connect_up("dtls", "127.0.0.1");
    siptls_peer_cert pd;
    assert_int_equal(siptls_flow_peer_cert(E->client, d, &pd), SIPTLS_OK);
    assert_memory_equal(pd.sha256, pc.sha256, 32);
    assert_string_equal(pd.serial, pc.serial);
    check_cert(E->client, d, tu_pki("server.pem"));
    /* the server's side: its client presented nothing */
    for (unsigned i = 0; i < E->srec.ups; i++) {
        siptls_flow_id sf = E->srec.up_ids[i];
        assert_int_equal(siptls_flow_peer_cert(E->server, sf, &pd), SIPTLS_ERR_NO_CERT);
        size_t len = 1;
        assert_int_equal(
            siptls_flow_peer_cert_export(E->server, sf, SIPTLS_CERT_DER, NULL, 0, &len),
            SIPTLS_ERR_NO_CERT);
        assert_int_equal(len, 0);
        assert_int_equal(siptls_flow_peer_sans(E->server, sf, collect_san, &l), SIPTLS_ERR_NO_CERT);
    }
    assert_int_equal(siptls_flow_peer_cert(E->client, 999999, &pd), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_peer_cert(E->client, f, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_peer_sans(E->client, f, NULL, NULL), SIPTLS_ERR_INVAL);
}

/* A server that asks for client certificates sees the client's. */
static void test_peer_cert_of_client(void **state)
{
    (void)state;
    char v[600];
    snprintf(v, sizeof(v), "[client:default]%s", tu_pki("client.pem"));
    tu_set(&E->ccfg, "certificate", v);
    snprintf(v, sizeof(v), "[client:default]%s", tu_pki("client.key"));
    tu_set(&E->ccfg, "private_key", v);
    tu_set(&E->scfg, "verify_cert", "[server:default]1");
    snprintf(v, sizeof(v), "[server:default]%s", tu_pki("ca.pem"));
    tu_set(&E->scfg, "ca_list", v);
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    /* not up yet: no certificate to read */
    siptls_peer_cert pc;
    assert_int_equal(siptls_flow_peer_cert(E->client, f, &pc), SIPTLS_AGAIN);
    unsigned want = 1;
    tu_run_pred(E->loop, both_up, &want, 10, "the flow up");
    check_cert(E->server, E->srec.up_ids[0], tu_pki("client.pem"));
    san_list l = {0};
    assert_int_equal(siptls_flow_peer_sans(E->server, E->srec.up_ids[0], collect_san, &l),
                     SIPTLS_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.names[0], "URI:sip:client.example.test");
    assert_string_equal(l.names[1], "DNS:client.example.test");
    san_list_free(&l);
}

/* More names than siptls_flow_info holds (16), and longer ones (128):
 * siptls_flow_peer_sans gives every one, whole. */
static void test_peer_sans_untruncated(void **state)
{
    (void)state;
    /* made at test time in the build folder (nothing committed) */
    const char *dir = SIPTLS_BIN_DIR "/test_flow_host-sans";
    char long_name[301];
    memset(long_name, 'a', 300);
    long_name[300] = '\0';
    for (int i = 63; i < 300; i += 64) {
        long_name[i] = '.'; /* labels of at most 63 */
    }
    char sans[8192];
    size_t at = 0;
    char expect[40][400];
    int n = 0;
    snprintf(expect[n++], sizeof(expect[0]), "IP:127.0.0.1");
    for (int i = 0; i < 30; i++) {
        snprintf(expect[n++], sizeof(expect[0]), "DNS:host%02d.many-names.example.test", i);
    }
    snprintf(expect[n++], sizeof(expect[0]), "DNS:%s.example.test", long_name);
    snprintf(expect[n++], sizeof(expect[0]), "URI:sip:%s.example.test", long_name);
    snprintf(expect[n++], sizeof(expect[0]), "email:ops@many-names.example.test");
    snprintf(expect[n++], sizeof(expect[0]), "IP:2001:db8::5");
    for (int i = 0; i < n; i++) {
        at += (size_t)snprintf(sans + at, sizeof(sans) - at, "%s%s", i ? "," : "", expect[i]);
    }
    char *o = run_cmd(
        "mkdir -p '%s' && cd '%s' && openssl ecparam -name prime256v1 -genkey -noout -out m.key && "
        "openssl req -new -key m.key -out m.csr -subj '/CN=many-names' && "
        "printf 'subjectAltName=%s\\n' > m.cnf && "
        "openssl x509 -req -in m.csr -CA '%s' -CAkey '%s' -set_serial 0x80a1b2c3 "
        "-days 30 -out m.pem -extfile m.cnf 2>&1",
        dir, dir, sans, tu_pki("ca.pem"), tu_pki("ca.key"));
    free(o);
    char v[600];
    snprintf(v, sizeof(v), "[server:default]%s/m.pem", dir);
    tu_set(&E->scfg, "certificate", v);
    snprintf(v, sizeof(v), "[server:default]%s/m.key", dir);
    tu_set(&E->scfg, "private_key", v);
    tu_pair_start(E);
    siptls_flow_id f = connect_up("tls", "127.0.0.1");
    siptls_peer_cert pc;
    assert_int_equal(siptls_flow_peer_cert(E->client, f, &pc), SIPTLS_OK);
    assert_int_equal(pc.n_sans, (unsigned)n);
    assert_string_equal(pc.serial, "80A1B2C3"); /* no DER sign padding */
    san_list l = {0};
    assert_int_equal(siptls_flow_peer_sans(E->client, f, collect_san, &l), SIPTLS_OK);
    assert_int_equal(l.n, (unsigned)n);
    /* every one, whole (the order is the parser's: compared as a set) */
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (unsigned k = 0; k < l.n; k++) {
            found += strcmp(l.names[k], expect[i]) == 0;
        }
        if (found != 1) {
            fail_msg("subjectAltName %s given %d times", expect[i], found);
        }
    }
    san_list_free(&l);
    /* the info struct keeps its fixed size: 16 names, each cut to fit */
    siptls_flow_info *info = malloc(sizeof(*info));
    assert_int_equal(siptls_flow_get_info(E->client, f, info), SIPTLS_OK);
    assert_int_equal(info->n_peer_sans, SIPTLS_FLOW_MAX_SANS);
    free(info);
    /* the walk stops when asked */
    san_list s3 = {.stop_after = 3};
    assert_int_equal(siptls_flow_peer_sans(E->client, f, collect_san, &s3), SIPTLS_OK);
    assert_int_equal(s3.n, 3);
    san_list_free(&s3);
    snprintf(v, sizeof(v), "%s/m.pem", dir);
    check_cert(E->client, f, v);
}

/* A resumed session has no certificate exchange. With a wolfSSL that keeps
 * the peer's certificate in its sessions (SESSION_CERTS: Debian 12's) the
 * flow tells the certificate of the handshake the session came from; with
 * the bundled one (no SESSION_CERTS) every certificate call on the resumed
 * flow returns SIPTLS_ERR_CERT_NOT_KEPT (not SIPTLS_ERR_NO_CERT: the peer
 * did present one, in the full handshake), while the info still carries
 * the verdict; a server whose client presented none then still says
 * SIPTLS_ERR_NO_CERT (the verdict sealed in its ticket tells). `siptls --version` says which (its
 * last line). The client's own certificate only with TLS 1.3 here: a TLS 1.2 / DTLS 1.2 client that
 * presented one does not resume in this build, which is not what these
 * tests are about. */
static void answer_200(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    (void)m;
    static const char ok[] =
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS a.example.test;branch=z9hG4bK1\r\n"
        "From: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>;tag=2\r\n"
        "Call-ID: 1@a.example.test\r\nCSeq: 1 MESSAGE\r\n"
        "Content-Length: 0\r\n\r\n";
    assert_int_equal(siptls_send(r->engine, flow, (const uint8_t *)ok, sizeof(ok) - 1), SIPTLS_OK);
}

static int client_got(void *arg)
{
    return E->crec.n_msgs >= *(const unsigned *)arg;
}

static int keeps_session_certs(void)
{
    return strstr(siptls_version_text(), "peer certificate of a resumed flow: yes") != NULL;
}

/* What every certificate call says on a resumed flow without the
 * certificate. */
static void check_not_kept(siptls_engine *e, siptls_flow_id f)
{
    siptls_peer_cert pc;
    size_t len = 1;
    assert_int_equal(siptls_flow_peer_cert(e, f, &pc), SIPTLS_ERR_CERT_NOT_KEPT);
    assert_int_equal(siptls_flow_peer_cert_export(e, f, SIPTLS_CERT_DER, NULL, 0, &len),
                     SIPTLS_ERR_CERT_NOT_KEPT);
    assert_int_equal(len, 0);
    san_list l = {0};
    assert_int_equal(siptls_flow_peer_sans(e, f, collect_san, &l), SIPTLS_ERR_CERT_NOT_KEPT);
    assert_int_equal(l.n, 0);
    /* the info still has the verdict of the full handshake */
    siptls_flow_info *info = malloc(sizeof(*info));
    assert_int_equal(siptls_flow_get_info(e, f, info), SIPTLS_OK);
    assert_int_equal(info->resumed, 1);
    assert_int_equal(info->peer_verified, 1);
    free(info);
}

/* `client_cert`: the client presents one and the server checks it. */
static void resumed_cert(const char *scheme, const char *method, int client_cert)
{
    char v[600];
    if (client_cert) {
        snprintf(v, sizeof(v), "[client:default]%s", tu_pki("client.pem"));
        tu_set(&E->ccfg, "certificate", v);
        snprintf(v, sizeof(v), "[client:default]%s", tu_pki("client.key"));
        tu_set(&E->ccfg, "private_key", v);
        tu_set(&E->scfg, "verify_cert", "[server:default]1");
        snprintf(v, sizeof(v), "[server:default]%s", tu_pki("ca.pem"));
        tu_set(&E->scfg, "ca_list", v);
    }
    if (method != NULL) {
        tu_set(&E->ccfg, "tls_method", method);
    }
    tu_pair_start(E);
    E->srec.on_msg = answer_200;
    int kept = keeps_session_certs();
    siptls_peer_cert c[2], s[2];
    for (unsigned round = 0; round < 2; round++) {
        siptls_flow_id f = connect_up(scheme, "127.0.0.1");
        char buf[600];
        size_t n = make_msg(buf, sizeof(buf), round + 1);
        assert_int_equal(siptls_send(E->client, f, (uint8_t *)buf, n), SIPTLS_OK);
        /* the answer comes after the session ticket */
        unsigned want = round + 1;
        tu_run_pred(E->loop, client_got, &want, 10, "the answer");
        siptls_flow_info info;
        assert_int_equal(siptls_flow_get_info(E->client, f, &info), SIPTLS_OK);
        assert_int_equal(info.resumed, round == 1);
        siptls_flow_id sf = E->srec.up_ids[round];
        if (round == 1 && !kept) {
            check_not_kept(E->client, f);
            if (client_cert) {
                check_not_kept(E->server, sf);
            } else {
                /* the ticket's verdict: no client certificate then either */
                assert_int_equal(siptls_flow_peer_cert(E->server, sf, &s[round]),
                                 SIPTLS_ERR_NO_CERT);
            }
        } else {
            assert_int_equal(siptls_flow_peer_cert(E->client, f, &c[round]), SIPTLS_OK);
            assert_int_equal(siptls_flow_peer_cert(E->server, sf, &s[round]),
                             client_cert ? SIPTLS_OK : SIPTLS_ERR_NO_CERT);
        }
        assert_int_equal(siptls_close(E->client, f), SIPTLS_OK);
        tu_run_pred(E->loop, tu_pair_all_closed, E, 5, "closed");
    }
    if (!kept) {
        assert_int_equal(tu_stats(E->client).handshakes_resumed, 1);
        return;
    }
    assert_memory_equal(c[0].sha256, c[1].sha256, 32);
    assert_string_equal(c[1].serial, c[0].serial);
    if (client_cert) {
        assert_memory_equal(s[0].sha256, s[1].sha256, 32);
        assert_string_equal(s[1].serial, s[0].serial);
    }
    assert_int_equal(tu_stats(E->client).handshakes_resumed, 1);
}

static void test_peer_cert_resumed_tls13(void **state)
{
    (void)state;
    resumed_cert("tls", "TLSv1_3", 1);
}

static void test_peer_cert_resumed_tls12(void **state)
{
    (void)state;
    resumed_cert("tls", "TLSv1_2", 0);
}

static void test_peer_cert_resumed_dtls(void **state)
{
    (void)state;
    resumed_cert("dtls", NULL, 0);
}

/* ---- backpressure: queue depth and on_writable --------------------------------- */

typedef struct wcall {
    siptls_flow_id flow;
    unsigned msgs;
    size_t bytes;
} wcall;

static wcall g_w[16];
static unsigned g_nw;
static int g_send_in_writable; /* send one message from inside the callback */

static void on_writable(siptls_engine *e, siptls_flow_id flow, void *user)
{
    (void)user;
    if (g_nw < 16) {
        g_w[g_nw].flow = flow;
        assert_int_equal(siptls_flow_queue_depth(e, flow, &g_w[g_nw].msgs, &g_w[g_nw].bytes),
                         SIPTLS_OK);
    }
    g_nw++;
    if (g_send_in_writable) {
        char buf[600];
        size_t n = make_msg(buf, sizeof(buf), 999);
        assert_int_equal(siptls_send(e, flow, (uint8_t *)buf, n), SIPTLS_OK);
    }
}

static void reset_writable(void)
{
    memset(g_w, 0, sizeof(g_w));
    g_nw = 0;
    g_send_in_writable = 0;
}

static int server_got(void *arg)
{
    return E->srec.n_msgs >= *(const unsigned *)arg;
}

/* Messages queued before the flow is up: `n` sends, `refused` of them
 * refused; on_writable `calls` times once the queue has gone out. */
static void before_up(const char *scheme, unsigned n, unsigned want_refused, unsigned want_calls)
{
    reset_writable();
    tu_pair_start(E);
    assert_int_equal(siptls_engine_set_writable_cb(E->client, on_writable), SIPTLS_OK);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, scheme, "127.0.0.1"), &f),
                     SIPTLS_OK);
    char buf[600];
    unsigned refused = 0;
    size_t bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t len = make_msg(buf, sizeof(buf), i + 1);
        int st = siptls_send(E->client, f, (uint8_t *)buf, len);
        if (st == SIPTLS_ERR_QUEUE_FULL) {
            refused++;
        } else {
            assert_int_equal(st, SIPTLS_OK);
            bytes += len;
        }
    }
    assert_int_equal(refused, want_refused);
    unsigned qm = 0;
    size_t qb = 0;
    assert_int_equal(siptls_flow_queue_depth(E->client, f, &qm, &qb), SIPTLS_OK);
    assert_int_equal(qm, n - refused);
    assert_int_equal(qb, bytes);
    assert_int_equal(g_nw, 0); /* never inside a call */
    unsigned want = n - refused;
    tu_run_pred(E->loop, server_got, &want, 10, "the queued messages");
    assert_int_equal(g_nw, want_calls);
    if (want_calls != 0) {
        assert_true(g_w[0].flow == f);
        /* written down to queue_low_water: 25 % of 32 messages, of 1 MiB */
        assert_true(g_w[0].msgs <= 8);
        assert_true(g_w[0].bytes <= 262144);
    }
    assert_int_equal(siptls_flow_queue_depth(E->client, f, &qm, &qb), SIPTLS_OK);
    assert_int_equal(qm, 0);
    assert_int_equal(qb, 0);
}

/* 40 sends before the flow is up: 32 queued (tls_async_max_postponed_chunks),
 * 8 refused; on_writable once the queue went out. */
static void test_writable_after_refusal_tls(void **state)
{
    (void)state;
    before_up("tls", 40, 8, 1);
}

static void test_writable_after_refusal_dtls(void **state)
{
    (void)state;
    before_up("dtls", 40, 8, 1);
}

/* 24 messages (75 % of 32): past high water without a refusal. */
static void test_writable_after_high_water(void **state)
{
    (void)state;
    before_up("tls", 24, 0, 1);
}

/* 23 messages: under high water, no callback. */
static void test_no_writable_under_high_water(void **state)
{
    (void)state;
    before_up("dtls", 23, 0, 0);
}

/* The host sends from on_writable; a flow closed while armed hears
 * nothing. */
static void test_writable_send_inside_and_close(void **state)
{
    (void)state;
    reset_writable();
    g_send_in_writable = 1;
    tu_pair_start(E);
    assert_int_equal(siptls_engine_set_writable_cb(E->client, on_writable), SIPTLS_OK);
    siptls_flow_id f = 0, g = 0;
    const char *uri = tu_uri(E->server, 0, "tls", "127.0.0.1");
    assert_int_equal(siptls_open(E->client, uri, &f), SIPTLS_OK);
    assert_int_equal(siptls_open(E->client, uri, &g), SIPTLS_OK);
    char buf[600];
    size_t len = make_msg(buf, sizeof(buf), 1);
    for (int i = 0; i < 33; i++) {
        (void)siptls_send(E->client, f, (uint8_t *)buf, len);
        (void)siptls_send(E->client, g, (uint8_t *)buf, len);
    }
    assert_int_equal(siptls_close(E->client, g), SIPTLS_OK); /* armed, then closed */
    unsigned want = 33;                                      /* 32 + the one from on_writable */
    tu_run_pred(E->loop, server_got, &want, 10, "the queue and the message sent from on_writable");
    assert_int_equal(g_nw, 1);
    assert_true(g_w[0].flow == f);
    tu_run_for(E->loop, 0.05);
    assert_int_equal(g_nw, 1);
    /* cleared: no more callbacks */
    assert_int_equal(siptls_engine_set_writable_cb(E->client, NULL), SIPTLS_OK);
    assert_int_equal(siptls_engine_set_writable_cb(NULL, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_queue_depth(E->client, 999999, NULL, NULL), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_queue_depth(NULL, f, NULL, NULL), SIPTLS_ERR_INVAL);
}

static int server_flow_up(void *arg)
{
    (void)arg;
    return E->srec.ups >= 1;
}

static int writable_called(void *arg)
{
    (void)arg;
    return g_nw >= 1;
}

/* A peer that stops reading: the server's sends fill the socket, then the
 * queue, and are refused; the queue's depth says how full; once the peer
 * reads again on_writable comes, once, with the queue down to low water,
 * and the host can send again. */
static void test_writable_stalled_peer(void **state)
{
    (void)state;
    reset_writable();
    tu_pair_start_server(E);
    assert_int_equal(siptls_engine_set_writable_cb(E->server, on_writable), SIPTLS_OK);
    tu_raw r = {.port = siptls_listener_port(E->server, 0), .hold_s = 2.0, .rcvbuf = 65536};
    tu_raw_start(&r);
    tu_run_pred(E->loop, server_flow_up, NULL, 10, "server flow up");
    siptls_flow_id f = E->srec.up_ids[0];
    uint8_t *m = tu_make_request(60000, 3, "TLS");
    int refused = 0;
    for (int i = 0; i < 5000 && !refused; i++) {
        int st = siptls_send(E->server, f, m, 60000);
        if (st == SIPTLS_ERR_QUEUE_FULL) {
            refused = 1;
        } else {
            assert_int_equal(st, SIPTLS_OK);
            tu_run_for(E->loop, 0.001);
        }
    }
    assert_true(refused);
    unsigned qm = 0;
    size_t qb = 0;
    assert_int_equal(siptls_flow_queue_depth(E->server, f, &qm, &qb), SIPTLS_OK);
    assert_int_equal(qb, (size_t)qm * 60000);
    assert_true(qb + 60000 > 1048576); /* tls_async_max_queued_bytes */
    assert_int_equal(g_nw, 0);
    tu_run_pred(E->loop, writable_called, NULL, 20, "on_writable after the peer read again");
    assert_int_equal(g_nw, 1);
    assert_true(g_w[0].flow == f);
    assert_true(g_w[0].bytes <= 262144);
    assert_int_equal(siptls_send(E->server, f, m, 60000), SIPTLS_OK);
    free(m);
    tu_run_for(E->loop, 0.05);
    assert_int_equal(g_nw, 1);
    assert_int_equal(siptls_close(E->server, f), SIPTLS_OK);
    tu_raw_wait(E->loop, &r, 20);
    tu_raw_free(&r);
}

/* queue_low_water must be below queue_high_water. */
static void test_water_marks_checked(void **state)
{
    (void)state;
    tu_set(&E->scfg, "queue_low_water", "75");
    siptls_config_error err;
    assert_int_equal(siptls_config_check(&E->scfg, &err, NULL, NULL), SIPTLS_ERR_INVAL);
    assert_non_null(strstr(err.msg, "queue_low_water (75) must be below queue_high_water (75)"));
    siptls_engine *e = NULL;
    siptls_callbacks quiet = {0};
    E->scfg.log_level = -1;
    assert_int_equal(siptls_engine_new(&e, E->loop, &E->scfg, &quiet, NULL), SIPTLS_ERR_INVAL);
    assert_null(e);
    tu_set(&E->scfg, "queue_low_water", "74");
    E->scfg.log_level = SIPTLS_LOG_ERR;
    assert_int_equal(siptls_config_check(&E->scfg, &err, NULL, NULL), SIPTLS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_user_pointer, setup_tls),
        TU_PAIR_TEST(test_user_pointer_refused_before_up, setup_tls),
        TU_PAIR_TEST(test_addrs_tls, setup_tls),
        TU_PAIR_TEST(test_addrs_tls6, setup_tls6),
        TU_PAIR_TEST(test_addrs_dtls, setup_dtls),
        TU_PAIR_TEST(test_peer_cert_of_server, setup_both),
        TU_PAIR_TEST(test_peer_cert_of_client, setup_tls),
        TU_PAIR_TEST(test_peer_sans_untruncated, setup_tls),
        TU_PAIR_TEST(test_peer_cert_resumed_tls13, setup_tls),
        TU_PAIR_TEST(test_peer_cert_resumed_tls12, setup_tls),
        TU_PAIR_TEST(test_peer_cert_resumed_dtls, setup_dtls),
        TU_PAIR_TEST(test_writable_after_refusal_tls, setup_tls),
        TU_PAIR_TEST(test_writable_after_refusal_dtls, setup_dtls),
        TU_PAIR_TEST(test_writable_after_high_water, setup_tls),
        TU_PAIR_TEST(test_no_writable_under_high_water, setup_dtls),
        TU_PAIR_TEST(test_writable_send_inside_and_close, setup_tls),
        TU_PAIR_TEST(test_writable_stalled_peer, setup_tls),
        TU_PAIR_TEST(test_water_marks_checked, setup_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
