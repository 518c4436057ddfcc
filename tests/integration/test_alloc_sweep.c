/* Allocation-failure sweep (nghttp2 style): run a whole TLS exchange —
 * config, engines, listener, handshake, a message each way, keepalive,
 * close — with the N-th allocation made by siptls code failing, for every N
 * until a run completes without reaching N. Every run must end cleanly: no
 * crash, no leak (ASan), no flow left open, and a failed call must return a
 * status, never pretend success. malloc/calloc/realloc/strdup of the
 * library objects are wrapped at link time (-Wl,--wrap); libev is a shared
 * library and keeps the real allocator. wolfSSL keeps it too: the system
 * one is a shared library, and the bundled one, linked in statically (so
 * wrapped as well), is handed the real functions through
 * wolfSSL_SetAllocators() — the sweep is about siptls's own failure paths,
 * and wolfSSL's thousands of allocations would make it run for hours. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/memory.h>

#include "testutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

static long fail_at = -1; /* allocation index to fail, -1 = never */
static long count;

static int should_fail(void)
{
    if (fail_at < 0) {
        return 0;
    }
    return count++ == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t a, size_t b)
{
    return should_fail() ? NULL : __real_calloc(a, b);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}

typedef struct run {
    tu_rec srec, crec;
    siptls_engine *server, *client;
    int replied;
} run;

static void reply(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    if (siptls_sipmsg_is_request(m->data, m->len)) {
        static const char ok[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS x;branch=z9hG4bK1\r\n"
                                 "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\n"
                                 "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        siptls_send(r->engine, flow, (const uint8_t *)ok, sizeof(ok) - 1);
    }
}

static int done(void *arg)
{
    run *r = arg;
    return r->crec.n_msgs >= 1 || r->crec.closes >= 1;
}

static int client_closed(void *arg)
{
    siptls_stats cs;
    siptls_engine_stats(arg, &cs);
    return cs.flows_open == 0;
}

/* One whole exchange; returns 1 when everything worked. `answer_s` bounds
 * the wait for the answer (or a close): long when nothing fails, short in
 * the sweep, where a failed allocation may cost the answer. */
static int scenario(double answer_s)
{
    int ok = 0;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    run *r = __real_calloc(1, sizeof(*r));
    siptls_config sc, cc;
    int sc_ok = siptls_config_init(&sc) == SIPTLS_OK;
    int cc_ok = siptls_config_init(&cc) == SIPTLS_OK;
    if (!sc_ok || !cc_ok) {
        goto out;
    }
    char v[600];
    snprintf(v, sizeof(v), "%s", tu_pki("server.pem"));
    if (siptls_config_set(&sc, "certificate", v, NULL) != SIPTLS_OK) {
        goto out;
    }
    snprintf(v, sizeof(v), "%s", tu_pki("server.key"));
    if (siptls_config_set(&sc, "private_key", v, NULL) != SIPTLS_OK ||
        siptls_config_set(&sc, "listen", "tls:127.0.0.1:0", NULL) != SIPTLS_OK) {
        goto out;
    }
    snprintf(v, sizeof(v), "[client:default]%s", tu_pki("ca.pem"));
    if (siptls_config_set(&cc, "ca_list", v, NULL) != SIPTLS_OK) {
        goto out;
    }
    sc.log_level = cc.log_level = -1; /* nothing: failures are expected here */
    if (siptls_engine_new(&r->server, loop, &sc, &tu_callbacks, &r->srec) != SIPTLS_OK) {
        goto out;
    }
    r->srec.engine = r->server;
    r->srec.on_msg = reply;
    if (siptls_engine_new(&r->client, loop, &cc, &tu_callbacks, &r->crec) != SIPTLS_OK) {
        goto out;
    }
    r->crec.engine = r->client;
    long armed = fail_at; /* the test's own buffer is not under test */
    fail_at = -1;
    uint8_t *req = tu_make_request(600, 1, "TLS");
    fail_at = armed;
    siptls_flow_id f = 0;
    char uri[64];
    snprintf(uri, sizeof(uri), "tls:127.0.0.1:%u", siptls_listener_port(r->server, 0));
    int st = siptls_send_to(r->client, uri, req, 600, &f);
    free(req);
    if (st != SIPTLS_OK) {
        assert_true(st < 0);
        if (f != 0) {
            /* the flow opened but the message could not be queued: the
             * flow is the host's to close */
            assert_int_equal(siptls_close(r->client, f), SIPTLS_OK);
            tu_run_for(loop, 0.05);
        }
        goto out;
    }
    siptls_flow_keepalive(r->client, f, 1);
    /* A failed allocation may cost the answer (the host's send failed, a
     * read buffer could not grow): wait for it (or a close) a bounded time,
     * then close. */
    double until = ev_time() + answer_s;
    while (!done(r) && ev_time() < until) {
        tu_run_for(loop, 0.01);
    }
    ok = r->crec.n_msgs == 1;
    siptls_close(r->client, f);
    /* whatever failed, nothing lingers (the watchdog fails the test) */
    tu_run_pred(loop, client_closed, r->client, 5, "the client's flow closed");
    siptls_stats cs;
    siptls_engine_stats(r->client, &cs);
    assert_int_equal(cs.flows_open, 0);
out:
    if (r->client != NULL) {
        siptls_engine_free(r->client);
    }
    if (r->server != NULL) {
        siptls_engine_free(r->server);
    }
    tu_rec_reset(&r->srec);
    tu_rec_reset(&r->crec);
    free(r);
    if (sc_ok) {
        siptls_config_cleanup(&sc);
    }
    if (cc_ok) {
        siptls_config_cleanup(&cc);
    }
    ev_loop_destroy(loop);
    return ok;
}

static void test_sweep(void **state)
{
    (void)state;
    /* the whole exchange works without failures, and counts its allocations */
    fail_at = 1L << 40;
    count = 0;
    assert_true(scenario(20.0));
    long total = count;
    assert_true(total > 10);
    unsigned failed_runs = 0;
    for (long n = 0; n < total; n++) {
        fail_at = n;
        count = 0;
        if (!scenario(2.0)) {
            failed_runs++;
        }
    }
    fail_at = -1;
    /* most single failures must have been noticed (a status, a close) */
    assert_true(failed_runs > 0);
    fprintf(stderr, "alloc sweep: %ld allocations, %u runs degraded cleanly\n", total, failed_runs);
}

/* Pure parts under the same sweep: the development certificate, a config
 * file with every kind of value, a framer fed a pipelined stream. */
static int pure_parts(void)
{
    int ok = 1;
    char *cert = NULL, *key = NULL;
    if (siptls_devcert_generate("sweep.example", &cert, &key) != SIPTLS_OK) {
        assert_null(cert);
        assert_null(key);
        ok = 0;
    }
    free(cert);
    free(key);
    siptls_config c;
    if (siptls_config_init(&c) != SIPTLS_OK) {
        return 0;
    }
    static const char text[] =
        "listen = tls:127.0.0.1:5061\nlisten = dtls:[::1]:5062\n"
        "server_domain = a=127.0.0.1:5061\nclient_domain = b\n"
        "certificate = [a]/x.pem\nmatch_sip_domain = [b]b.example\n"
        "trusted_domain = t.example\nmodparam(\"proto_tls\", \"tls_port\", 5063)\n";
    siptls_config_error err;
    if (siptls_config_load_string(&c, text, "sweep.conf", &err) != SIPTLS_OK) {
        ok = 0;
    } else {
        assert_int_equal(c.tls_port, 5063);
    }
    siptls_config copy;
    if (siptls_config_copy(&copy, &c) == SIPTLS_OK) {
        siptls_config_cleanup(&copy);
    } else {
        ok = 0;
    }
    siptls_config_cleanup(&c);
    siptls_stream_framer *fr = NULL;
    if (siptls_stream_framer_new(&fr, NULL) == SIPTLS_OK) {
        static const char msg[] = "OPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabc";
        int st = siptls_stream_framer_feed(fr, (const uint8_t *)msg, sizeof(msg) - 1);
        siptls_frame_event ev;
        if (st != SIPTLS_OK || siptls_stream_framer_next(fr, &ev) != SIPTLS_OK) {
            ok = 0;
        }
        siptls_stream_framer_free(fr);
    } else {
        ok = 0;
    }
    return ok;
}

static void test_sweep_pure(void **state)
{
    (void)state;
    fail_at = 1L << 40;
    count = 0;
    assert_true(pure_parts());
    long total = count;
    unsigned degraded = 0;
    for (long n = 0; n < total; n++) {
        fail_at = n;
        count = 0;
        degraded += !pure_parts();
    }
    fail_at = -1;
    assert_true(degraded > 0);
}

int main(void)
{
    if (wolfSSL_SetAllocators(__real_malloc, free, __real_realloc) != 0) {
        fprintf(stderr, "wolfSSL_SetAllocators failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sweep),
                                       cmocka_unit_test(test_sweep_pure)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
