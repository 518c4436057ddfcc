/* examples/proxy.c as its users run it: the registrar/relay started as a
 * process, SIP user agents on TLS and on DTLS registering with it and
 * calling each other through it, and a request to another SIP domain sent
 * on by URI (verified as that domain). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#define PROXY_BIN SIPTLS_BIN_DIR "/tests/example_proxy"
#define DOMAIN "example.test"

typedef struct world {
    struct ev_loop *loop;
    pid_t pid;
    FILE *out; /* the proxy's stdout */
    unsigned tls_port, dtls_port;
    siptls_config ucfg, ccfg;
    tu_rec urec, crec; /* the user agents' engine, the other domain's server */
    siptls_engine *ua, *carrier;
} world;

static world *W;

/* NUL-terminated copies of the messages the UA engine received (the
 * recorder's copies are not terminated). */
static char *texts[TU_MAX_MSGS];

/* The n-th message the UA engine received on `flow` (0-based), or NULL. */
static const char *nth_on(siptls_flow_id flow, unsigned n)
{
    for (unsigned i = 0; i < W->urec.n_msgs && i < TU_MAX_MSGS; i++) {
        if (W->urec.msgs[i].flow == flow && n-- == 0) {
            if (texts[i] == NULL) {
                texts[i] = strndup((const char *)W->urec.msgs[i].copy, W->urec.msgs[i].len);
            }
            return texts[i];
        }
    }
    return NULL;
}

typedef struct want {
    siptls_flow_id flow;
    unsigned n;
} want;

static int got_nth(void *arg)
{
    want *w = arg;
    return nth_on(w->flow, w->n) != NULL;
}

/* Wait for message n on flow and return it (NUL-terminated copy). */
static const char *wait_msg(siptls_flow_id flow, unsigned n, const char *what)
{
    want w = {flow, n};
    tu_run_pred(W->loop, got_nth, &w, 10, what);
    return nth_on(flow, n);
}

static void send_req(siptls_flow_id flow, const char *method, const char *ruri, const char *from,
                     const char *via_proto, unsigned cseq)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "%s %s SIP/2.0\r\n"
                     "Via: SIP/2.0/%s ua.invalid;branch=z9hG4bK-ua%u\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <%s>;tag=f%u\r\n"
                     "To: <%s>\r\n"
                     "Call-ID: c%u@ua.invalid\r\n"
                     "CSeq: %u %s\r\n"
                     "Content-Length: 5\r\n\r\nhello",
                     method, ruri, via_proto, cseq, from, cseq,
                     strcmp(method, "REGISTER") == 0 ? from : ruri, cseq, cseq, method);
    assert_int_equal(siptls_send(W->ua, flow, (const uint8_t *)req, (size_t)n), SIPTLS_OK);
}

/* Answer a request received by a UA: the Via lines copied, as a UA does. */
static void answer(siptls_engine *e, siptls_flow_id flow, const char *req)
{
    size_t hl = (size_t)(strstr(req, "\r\n\r\n") + 4 - req);
    char out[4096];
    size_t n = (size_t)snprintf(out, sizeof(out), "SIP/2.0 200 OK\r\n");
    size_t cur = 0, vl;
    const uint8_t *v;
    while (siptls_sipmsg_header_next((const uint8_t *)req, hl, "Via", 'v', &cur, &v, &vl) ==
           SIPTLS_OK) {
        n += (size_t)snprintf(out + n, sizeof(out) - n, "Via: %.*s\r\n", (int)vl, (const char *)v);
    }
    static const char *const copy[] = {"From", "To", "Call-ID", "CSeq"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(siptls_sipmsg_header((const uint8_t *)req, hl, copy[i], 0, &v, &vl),
                         SIPTLS_OK);
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s: %.*s\r\n", copy[i], (int)vl,
                              (const char *)v);
    }
    n += (size_t)snprintf(out + n, sizeof(out) - n, "Content-Length: 0\r\n\r\n");
    assert_int_equal(siptls_send(e, flow, (const uint8_t *)out, n), SIPTLS_OK);
}

static int starts_with(const char *m, const char *prefix)
{
    return strncmp(m, prefix, strlen(prefix)) == 0;
}

static unsigned count_lines(const char *msg, const char *prefix)
{
    unsigned c = 0;
    for (const char *p = msg; (p = strstr(p, prefix)) != NULL; p++) {
        c += p == msg || p[-1] == '\n';
    }
    return c;
}

/* The other SIP domain's server answers every request (on the carrier
 * engine's own recorder hook). */
static void carrier_answers(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    if (siptls_sipmsg_is_request(m->data, m->len)) {
        char *copy = strndup((const char *)m->data, m->len);
        answer(r->engine, flow, copy);
        free(copy);
    }
}

static int setup(void **state)
{
    (void)state;
    W = calloc(1, sizeof(*W));
    W->loop = ev_loop_new(EVFLAG_AUTO);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    W->pid = fork();
    assert_true(W->pid >= 0);
    if (W->pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        char cert[512], key[512];
        snprintf(cert, sizeof(cert), "%s.pem", tu_pki("server"));
        snprintf(key, sizeof(key), "%s.key", tu_pki("server"));
        execl(PROXY_BIN, PROXY_BIN, cert, key, tu_pki("ca.pem"), DOMAIN, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    W->out = fdopen(pipefd[0], "r");
    char line[128] = "";
    assert_non_null(fgets(line, sizeof(line), W->out));
    assert_int_equal(sscanf(line, "ready tls=%u dtls=%u", &W->tls_port, &W->dtls_port), 2);

    /* the user agents: clients that trust the test CA */
    tu_config(&W->ucfg, "server");
    W->urec.keep_copies = 1;
    assert_int_equal(siptls_engine_new(&W->ua, W->loop, &W->ucfg, &tu_callbacks, &W->urec),
                     SIPTLS_OK);
    W->urec.engine = W->ua;
    /* the other domain (127.0.0.1: its certificate names that address) */
    tu_config(&W->ccfg, "server");
    W->crec.keep_copies = 1;
    W->crec.on_msg = carrier_answers;
    assert_int_equal(siptls_engine_new(&W->carrier, W->loop, &W->ccfg, &tu_callbacks, &W->crec),
                     SIPTLS_OK);
    W->crec.engine = W->carrier;
    assert_true(siptls_listen(W->carrier, "tls:127.0.0.1:0") >= 0);
    *state = W;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    siptls_engine_free(W->ua);
    siptls_engine_free(W->carrier);
    for (size_t i = 0; i < TU_MAX_MSGS; i++) {
        free(texts[i]);
        texts[i] = NULL;
    }
    tu_rec_reset(&W->urec);
    tu_rec_reset(&W->crec);
    siptls_config_cleanup(&W->ucfg);
    siptls_config_cleanup(&W->ccfg);
    if (W->pid > 0) {
        kill(W->pid, SIGKILL);
        waitpid(W->pid, NULL, 0);
    }
    if (W->out != NULL) {
        fclose(W->out);
    }
    ev_loop_destroy(W->loop);
    free(W);
    return 0;
}

/* Open a flow to the proxy and register `aor` on it; returns the flow. */
static siptls_flow_id register_on(const char *scheme, unsigned port, const char *aor,
                                  const char *proto, unsigned cseq)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "%s:127.0.0.1:%u", scheme, port);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(W->ua, uri, &f), SIPTLS_OK);
    send_req(f, "REGISTER", "sip:" DOMAIN, aor, proto, cseq);
    const char *r = wait_msg(f, 0, "the REGISTER answered");
    assert_non_null(strstr(r, "SIP/2.0 200 OK\r\n"));
    assert_non_null(strstr(r, "CSeq: "));
    return f;
}

static void test_register_and_relay(void **state)
{
    (void)state;
    siptls_flow_id alice = register_on("tls", W->tls_port, "sip:alice@" DOMAIN, "TLS", 1);
    siptls_flow_id bob = register_on("dtls", W->dtls_port, "sip:bob@" DOMAIN, "DTLS", 2);

    /* DTLS -> TLS: bob's MESSAGE reaches alice over her TLS flow with the
     * proxy's Via on top and one hop less; her answer goes back to bob */
    send_req(bob, "MESSAGE", "sip:alice@" DOMAIN, "sip:bob@" DOMAIN, "DTLS", 3);
    const char *m = wait_msg(alice, 1, "bob's MESSAGE at alice");
    assert_true(
        starts_with(m, "MESSAGE sip:alice@" DOMAIN " SIP/2.0\r\nVia: SIP/2.0/TLS proxy.invalid"));
    assert_int_equal(count_lines(m, "Via: "), 2);
    assert_non_null(strstr(m, "Max-Forwards: 69\r\n"));
    assert_non_null(strstr(m, "\r\n\r\nhello"));
    answer(W->ua, alice, m);
    const char *r = wait_msg(bob, 1, "alice's 200 back at bob");
    assert_true(starts_with(r, "SIP/2.0 200 OK\r\n"));
    assert_int_equal(count_lines(r, "Via: "), 1);
    assert_non_null(strstr(r, "Via: SIP/2.0/DTLS ua.invalid;branch=z9hG4bK-ua3"));

    /* TLS -> DTLS the other way */
    send_req(alice, "OPTIONS", "sip:bob@" DOMAIN, "sip:alice@" DOMAIN, "TLS", 4);
    m = wait_msg(bob, 2, "alice's OPTIONS at bob");
    assert_true(
        starts_with(m, "OPTIONS sip:bob@" DOMAIN " SIP/2.0\r\nVia: SIP/2.0/DTLS proxy.invalid"));
    answer(W->ua, bob, m);
    r = wait_msg(alice, 2, "bob's 200 back at alice");
    assert_true(starts_with(r, "SIP/2.0 200 OK\r\n"));

    /* nobody registered: 404 */
    send_req(alice, "MESSAGE", "sip:nobody@" DOMAIN, "sip:alice@" DOMAIN, "TLS", 5);
    r = wait_msg(alice, 3, "404 for an unknown AOR");
    assert_true(starts_with(r, "SIP/2.0 404 Not Found\r\n"));

    /* another SIP domain: sent on by its URI, verified as 127.0.0.1 */
    char ruri[96];
    snprintf(ruri, sizeof(ruri), "sip:carol@127.0.0.1:%u;transport=tls",
             siptls_listener_port(W->carrier, 0));
    send_req(alice, "OPTIONS", ruri, "sip:alice@" DOMAIN, "TLS", 6);
    r = wait_msg(alice, 4, "the other domain's 200 back at alice");
    assert_true(starts_with(r, "SIP/2.0 200 OK\r\n"));
    assert_int_equal(W->crec.n_msgs, 1);
    assert_non_null(
        memmem(W->crec.msgs[0].copy, W->crec.msgs[0].len, "Via: SIP/2.0/TLS proxy.invalid", 30));

    /* bob's flow closes (close_notify): his binding names a flow that is
     * gone: 430. The proxy may read alice's request before bob's
     * close_notify: a request relayed to bob meanwhile gets no answer, and
     * is sent again (at most 20 times). */
    siptls_close(W->ua, bob);
    unsigned relayed_late = 0, n = 5;
    for (unsigned attempt = 0;; attempt++) {
        assert_true(attempt < 20);
        send_req(alice, "MESSAGE", "sip:bob@" DOMAIN, "sip:alice@" DOMAIN, "TLS", 7 + attempt);
        want w = {alice, n};
        if (tu_run_wait(W->loop, got_nth, &w, 1.0)) {
            r = nth_on(alice, n);
            assert_true(starts_with(r, "SIP/2.0 430 Flow Failed\r\n"));
            break;
        }
        relayed_late++;
    }

    /* the proxy ends on SIGTERM, saying what it did */
    assert_int_equal(kill(W->pid, SIGTERM), 0);
    char line[128] = "";
    assert_non_null(fgets(line, sizeof(line), W->out));
    unsigned relayed = 0, answered = 0;
    assert_int_equal(sscanf(line, "relayed %u answered %u", &relayed, &answered), 2);
    assert_int_equal(relayed, 3 + relayed_late);
    assert_int_equal(answered, 3);
    int status = 0;
    assert_int_equal(waitpid(W->pid, &status, 0), W->pid);
    W->pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_and_relay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
