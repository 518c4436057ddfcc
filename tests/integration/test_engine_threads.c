/* Integration: the threading rule "one engine = one thread at a time".
 *
 * An engine may be created on one thread and run on another, and move
 * from thread to thread (one at a time): no library state may depend on
 * which thread created it. Here a server engine (TLS + DTLS listeners)
 * and a client engine are created on one thread and run on others, over
 * real loopback sockets and real handshakes: messages both ways on TLS and
 * DTLS, the DTLS cookie exchange (HelloVerifyRequest) and a STUN binding
 * request answered.
 *
 * cmocka's assertions may only run on the test's own thread: a worker
 * thread runs the loop until the state it waits for (or a deadline) and
 * records what happened; the test thread, which waits in pthread_join()
 * meanwhile (so each engine is used by one thread at a time), checks it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "../../dtls/dtls_internal.h"

enum { T_TLS = 0, T_DTLS = 1 };

typedef struct side {
    siptls_engine *engine;
    siptls_config cfg;
    /* per transport */
    unsigned ups[2];
    siptls_flow_id flow[2];
    unsigned requests[2];  /* requests received */
    unsigned responses[2]; /* responses received */
} side;

typedef struct world {
    struct ev_loop *loop;
    side server, client;
    int stun_fd;
    ev_io stun_io;
    unsigned stun_answers;
    int stun_mapped_ok;
    int fds_before;
} world;

static world *W;

static int transport_index(siptls_engine *e, siptls_flow_id id)
{
    siptls_flow_info info;
    if (siptls_flow_get_info(e, id, &info) != SIPTLS_OK) {
        return -1;
    }
    return info.transport == SIPTLS_TRANSPORT_DTLS ? T_DTLS : T_TLS;
}

static side *side_of(siptls_engine *e)
{
    return e == W->server.engine ? &W->server : &W->client;
}

static const char reply200[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS x;branch=z9hG4bK1\r\n"
                               "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\n"
                               "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";

/* Every request is answered with a 200 on its flow. */
static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)user;
    side *s = side_of(e);
    int t = transport_index(e, flow);
    if (t < 0) {
        return;
    }
    if (m->len >= 8 && memcmp(m->data, "SIP/2.0 ", 8) == 0) {
        s->responses[t]++;
        return;
    }
    s->requests[t]++;
    (void)siptls_send(e, flow, (const uint8_t *)reply200, sizeof(reply200) - 1);
}

static void on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                    void *user)
{
    (void)reason;
    (void)user;
    if (state != SIPTLS_FLOW_UP) {
        return;
    }
    side *s = side_of(e);
    int t = transport_index(e, flow);
    if (t >= 0) {
        s->ups[t]++;
        s->flow[t] = flow;
    }
}

static void on_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if (getenv("SIPTLS_TEST_DEBUG") || level == SIPTLS_LOG_ERR) {
        fprintf(stderr, "[log %d] %s\n", (int)level, text);
    }
}

static const siptls_callbacks callbacks = {on_message, on_flow, NULL, on_log};

/* ---- a loop runner for worker threads (no cmocka here) ------------------ */

static void expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(int *)w->data = 1;
    ev_break(loop, EVBREAK_ONE);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Run the loop until pred() holds or `timeout_s` passes; 1 when it held. */
static int run_until(int (*pred)(void), double timeout_s)
{
    int expired = 0;
    ev_timer wd, tick;
    ev_timer_init(&wd, expire_cb, timeout_s, 0.0);
    wd.data = &expired;
    ev_timer_start(W->loop, &wd);
    ev_timer_init(&tick, tick_cb, 0.01, 0.01);
    ev_timer_start(W->loop, &tick);
    while (!pred() && !expired) {
        ev_run(W->loop, EVRUN_ONCE);
    }
    ev_timer_stop(W->loop, &wd);
    ev_timer_stop(W->loop, &tick);
    return pred();
}

typedef struct job {
    int (*fn)(void *arg);
    void *arg;
    int result;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    j->result = j->fn(j->arg);
    /* wolfSSL keeps per-thread ECC caches (docs/api.md). */
    siptls_thread_cleanup();
    return NULL;
}

/* Run fn(arg) on a new thread and wait for it: while it runs, the engines
 * belong to that thread alone. */
static int on_new_thread(int (*fn)(void *), void *arg)
{
    job j = {fn, arg, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, job_main, &j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    return j.result;
}

/* ---- STUN, from a plain UDP socket on the loop -------------------------- */

static void stun_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    uint8_t buf[512];
    ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) {
        return;
    }
    W->stun_answers++;
    struct sockaddr_storage mapped, mine;
    socklen_t ml = sizeof(mine);
    if (siptls__dtls_stun_parse_mapped(buf, (size_t)n, &mapped) == 0 &&
        getsockname(w->fd, (struct sockaddr *)&mine, &ml) == 0 &&
        ((struct sockaddr_in *)&mapped)->sin_port == ((struct sockaddr_in *)&mine)->sin_port) {
        W->stun_mapped_ok = 1;
    }
}

static void stun_send(unsigned dtls_port, uint8_t seq)
{
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)dtls_port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint8_t txid[12] = {seq, 1, 2, 3};
    uint8_t req[64];
    size_t n = siptls__dtls_stun_request(txid, 1, req);
    (void)sendto(W->stun_fd, req, n, 0, (struct sockaddr *)&to, sizeof(to));
}

/* ---- set-up -------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    W = calloc(1, sizeof(*W));
    W->fds_before = tu_fd_count();
    W->loop = ev_loop_new(EVFLAG_AUTO);
    tu_config(&W->server.cfg, "server");
    tu_set(&W->server.cfg, "listen", "tls:127.0.0.1:0");
    tu_set(&W->server.cfg, "listen", "dtls:127.0.0.1:0");
    tu_config(&W->client.cfg, "server");
    W->stun_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(W->stun_fd >= 0);
    ev_io_init(&W->stun_io, stun_readable, W->stun_fd, EV_READ);
    ev_io_start(W->loop, &W->stun_io);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ev_io_stop(W->loop, &W->stun_io);
    close(W->stun_fd);
    siptls_engine_free(W->client.engine);
    siptls_engine_free(W->server.engine);
    ev_loop_destroy(W->loop);
    siptls_config_cleanup(&W->server.cfg);
    siptls_config_cleanup(&W->client.cfg);
    int fds_after = tu_fd_count();
    int before = W->fds_before;
    free(W);
    W = NULL;
    assert_int_equal(fds_after, before);
    return 0;
}

static int create_engines(void *arg)
{
    (void)arg;
    if (siptls_engine_new(&W->server.engine, W->loop, &W->server.cfg, &callbacks, NULL) !=
            SIPTLS_OK ||
        siptls_engine_new(&W->client.engine, W->loop, &W->client.cfg, &callbacks, NULL) !=
            SIPTLS_OK) {
        return -1;
    }
    return 0;
}

/* ---- the exchange a worker runs ----------------------------------------- */

static unsigned want_round; /* requests/responses each way per transport */

static int round_done(void)
{
    for (int t = 0; t < 2; t++) {
        if (W->client.ups[t] < 1 || W->server.ups[t] < 1 || W->server.requests[t] < want_round ||
            W->client.responses[t] < want_round || W->client.requests[t] < want_round ||
            W->server.responses[t] < want_round) {
            return 0;
        }
    }
    return W->stun_answers >= want_round;
}

static int both_up(void)
{
    return W->client.ups[T_TLS] >= 1 && W->client.ups[T_DTLS] >= 1 && W->server.ups[T_TLS] >= 1 &&
           W->server.ups[T_DTLS] >= 1;
}

/* Once both flows are up: one request each way on each transport (each
 * answered with a 200) and one STUN binding request to the DTLS port. */
static int exchange(void *arg)
{
    (void)arg;
    if (!run_until(both_up, 15)) {
        return 1;
    }
    for (int t = 0; t < 2; t++) {
        const char *via = t == T_DTLS ? "DTLS" : "TLS";
        uint8_t *m = tu_make_request(500, want_round * 10 + (unsigned)t, via);
        int a = siptls_send(W->client.engine, W->client.flow[t], m, 500);
        int b = siptls_send(W->server.engine, W->server.flow[t], m, 500);
        free(m);
        if (a != SIPTLS_OK || b != SIPTLS_OK) {
            return 2;
        }
    }
    stun_send(siptls_listener_port(W->server.engine, 1), (uint8_t)want_round);
    return run_until(round_done, 15) ? 0 : 3;
}

static void check_round(int result, const char *where)
{
    if (result != 0) {
        fail_msg("%s: %s (TLS up %u/%u, DTLS up %u/%u; DTLS requests server %u client %u, "
                 "responses client %u server %u; STUN answers %u)",
                 where, result == 1 ? "flows did not come up" : "exchange incomplete",
                 W->client.ups[T_TLS], W->server.ups[T_TLS], W->client.ups[T_DTLS],
                 W->server.ups[T_DTLS], W->server.requests[T_DTLS], W->client.requests[T_DTLS],
                 W->client.responses[T_DTLS], W->server.responses[T_DTLS], W->stun_answers);
    }
}

static siptls_stats stats_of(siptls_engine *e)
{
    siptls_stats st;
    siptls_engine_stats(e, &st);
    return st;
}

static int all_closed(void)
{
    return stats_of(W->server.engine).flows_open == 0 && stats_of(W->client.engine).flows_open == 0;
}

static void close_all_here(void)
{
    for (int t = 0; t < 2; t++) {
        siptls_close(W->client.engine, W->client.flow[t]);
    }
    assert_true(run_until(all_closed, 10));
}

/* Created on the test thread; the client's outbound flows are opened
 * there too (before any loop ran). Then the loop runs on a worker thread,
 * then on another worker, and the engines are freed on the test thread. */
static void test_created_here_run_there(void **state)
{
    (void)state;
    assert_int_equal(create_engines(NULL), 0);
    siptls_flow_id f;
    assert_int_equal(
        siptls_connect(W->client.engine, tu_uri(W->server.engine, 0, "tls", "127.0.0.1"), &f),
        SIPTLS_OK);
    assert_int_equal(
        siptls_connect(W->client.engine, tu_uri(W->server.engine, 1, "dtls", "127.0.0.1"), &f),
        SIPTLS_OK);

    want_round = 1;
    check_round(on_new_thread(exchange, NULL), "first worker thread");
    siptls_stats s = stats_of(W->server.engine);
    /* RFC 6347 §4.2.1: the client's first ClientHello got a
     * HelloVerifyRequest; the session exists since its cookie came back. */
    assert_true(s.dtls_cookies_sent >= 1);
    assert_int_equal(s.dtls_cookie_bad, 0);
    assert_int_equal(s.dtls_stun, 1);
    assert_int_equal(W->stun_mapped_ok, 1);
    assert_int_equal(s.handshakes_failed, 0);

    /* The same engines and flows on another thread. */
    want_round = 2;
    check_round(on_new_thread(exchange, NULL), "second worker thread");
    assert_int_equal(stats_of(W->server.engine).dtls_stun, 2);

    /* And back on the thread that made them. */
    close_all_here();
}

/* Engines made and flows opened on a thread that has ended by the time
 * the engines run. */
static int create_and_connect(void *arg)
{
    (void)arg;
    siptls_flow_id f;
    if (create_engines(NULL) != 0 ||
        siptls_connect(W->client.engine, tu_uri(W->server.engine, 1, "dtls", "127.0.0.1"), &f) !=
            SIPTLS_OK ||
        siptls_connect(W->client.engine, tu_uri(W->server.engine, 0, "tls", "127.0.0.1"), &f) !=
            SIPTLS_OK) {
        return -1;
    }
    return 0;
}

static void test_created_on_a_thread_that_ended(void **state)
{
    (void)state;
    assert_int_equal(on_new_thread(create_and_connect, NULL), 0);
    want_round = 1;
    check_round(exchange(NULL), "the test thread");
    assert_true(stats_of(W->server.engine).dtls_cookies_sent >= 1);
    assert_int_equal(stats_of(W->server.engine).dtls_stun, 1);
    close_all_here();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_created_here_run_there, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_on_a_thread_that_ended, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
