/* Integration: DTLS Connection ID rebinding with several engines sharing one
 * port (reuse_port, one engine per thread, as `siptls serve --workers N`).
 *
 * The kernel picks one of the port's sockets by hashing a datagram's
 * 4-tuple: after a peer's NAT rebinds, its CID records land on either
 * engine's socket. The engine that owns the CID (its tag, the CID's first
 * byte) must get every one of them: a raw wolfSSL DTLS 1.3 client with a CID
 * changes its source port K times and keeps sending; every message arrives
 * on the same flow of the owning engine, with exactly K MOVED events, no
 * second handshake, and every answer reaches the client. Without the
 * forwarding all K new ports would have to hash to the owner's socket
 * (2^-K with two engines). Also: a CID with no engine's tag is dropped and
 * counted, and freeing the owner while the other engine forwards to it is
 * safe.
 *
 * Each server engine runs on a thread of its own (its own loop); the test
 * thread drives the client and reads what the engines recorded under a
 * mutex; engine statistics are read on the engine's thread (a post). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>

#include <wolfssl/ssl.h>

#include "siptls/threads.h"
#include "testutil.h"

#include "../../dtls/dtls_internal.h"

#if defined(WOLFSSL_DTLS13) && defined(WOLFSSL_DTLS_CID) && defined(SIPTLS_WOLFSSL_SHIM)
#define HAVE_CID 1
#else
#define HAVE_CID 0
#endif

#if HAVE_CID

#define K_MOVES 12
#define MAX_MSGS 64

typedef struct side {
    siptls_engine *engine;
    struct ev_loop *loop;
    siptls_config cfg;
    pthread_t thread;
    int running;
    int made;
    atomic_int stop;
    /* under g_mu */
    unsigned ups;
    siptls_flow_id up_flow;
    unsigned msgs;
    siptls_flow_id msg_flow[MAX_MSGS];
    unsigned moves;
    siptls_flow_id moved_flow;
    unsigned closes;
    unsigned forwarded; /* debug lines "datagram forwarded to engine tag" */
    siptls_stats st;
    int st_seq;
} side;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static side S[2];
static struct sockaddr_in g_srv;
static int g_fds_before;
/* wildcard listeners: each move also changes the server address the client
 * sends to (127.0.0.1 / 127.0.0.2); its connected socket takes answers
 * from that address only */
static int g_alt_dst;
/* dtls_session_lifetime of the engines (seconds); 0: the default */
static unsigned g_lifetime;

static const char reply200[] = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";

static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)m;
    side *s = user;
    pthread_mutex_lock(&g_mu);
    if (s->msgs < MAX_MSGS) {
        s->msg_flow[s->msgs] = flow;
    }
    s->msgs++;
    pthread_mutex_unlock(&g_mu);
    (void)siptls_send(e, flow, (const uint8_t *)reply200, sizeof(reply200) - 1);
}

static void on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                    void *user)
{
    (void)e;
    (void)reason;
    side *s = user;
    pthread_mutex_lock(&g_mu);
    if (state == SIPTLS_FLOW_UP) {
        s->ups++;
        s->up_flow = flow;
    } else if (state == SIPTLS_FLOW_MOVED) {
        s->moves++;
        s->moved_flow = flow;
    } else if (state == SIPTLS_FLOW_CLOSED) {
        s->closes++;
    }
    pthread_mutex_unlock(&g_mu);
}

static void on_log(siptls_log_level level, const char *text, void *user)
{
    side *s = user;
    if (strstr(text, "datagram forwarded to engine tag") != NULL) {
        pthread_mutex_lock(&g_mu);
        s->forwarded++;
        pthread_mutex_unlock(&g_mu);
    }
    if (getenv("SIPTLS_TEST_DEBUG") || level == SIPTLS_LOG_ERR) {
        fprintf(stderr, "[log %d] %s\n", (int)level, text);
    }
}

static const siptls_callbacks callbacks = {on_message, on_flow, NULL, on_log};

/* ---- one thread per server engine ---------------------------------------- */

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    side *s = w->data;
    if (atomic_load(&s->stop)) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *engine_main(void *arg)
{
    side *s = arg;
    ev_timer tick;
    ev_timer_init(&tick, tick_cb, 0.005, 0.005);
    tick.data = s;
    ev_timer_start(s->loop, &tick);
    ev_run(s->loop, 0);
    ev_timer_stop(s->loop, &tick);
    siptls_thread_cleanup();
    return NULL;
}

static void start_thread(side *s)
{
    atomic_store(&s->stop, 0);
    assert_int_equal(pthread_create(&s->thread, NULL, engine_main, s), 0);
    s->running = 1;
}

static void stop_thread(side *s)
{
    if (s->running) {
        atomic_store(&s->stop, 1);
        assert_int_equal(pthread_join(s->thread, NULL), 0);
        s->running = 0;
    }
}

static void make_engine(side *s, const char *listen)
{
    tu_config(&s->cfg, "server");
    s->made = 1;
    tu_set(&s->cfg, "listen", listen);
    tu_set(&s->cfg, "reuse_port", "1");
    tu_set(&s->cfg, "log_level", "3");
    if (g_lifetime != 0) {
        char v[16];
        snprintf(v, sizeof(v), "%u", g_lifetime);
        tu_set(&s->cfg, "dtls_session_lifetime", v);
    }
    s->loop = ev_loop_new(EVFLAG_AUTO);
    assert_int_equal(siptls_engine_new(&s->engine, s->loop, &s->cfg, &callbacks, s), SIPTLS_OK);
}

static void free_engine(side *s)
{
    stop_thread(s);
    if (s->engine != NULL) {
        siptls_engine_free(s->engine);
        s->engine = NULL;
    }
    if (s->loop != NULL) {
        ev_loop_destroy(s->loop);
        s->loop = NULL;
    }
    if (s->made) {
        siptls_config_cleanup(&s->cfg);
        s->made = 0;
    }
}

/* The engine's statistics, read on its own thread. */
static void stats_post(siptls_engine *e, void *arg, int status)
{
    side *s = arg;
    if (status != SIPTLS_OK) {
        return;
    }
    siptls_stats st;
    siptls_engine_stats(e, &st);
    pthread_mutex_lock(&g_mu);
    s->st = st;
    s->st_seq++;
    pthread_mutex_unlock(&g_mu);
}

static siptls_stats stats_of(side *s)
{
    pthread_mutex_lock(&g_mu);
    int seq = s->st_seq;
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(siptls_engine_post(s->engine, stats_post, s), SIPTLS_OK);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&g_mu);
        int now = s->st_seq;
        siptls_stats st = s->st;
        pthread_mutex_unlock(&g_mu);
        if (now != seq) {
            return st;
        }
        usleep(1000);
    }
    fail_msg("watchdog: the engine did not run a post in 5 s");
    siptls_stats none;
    memset(&none, 0, sizeof(none));
    return none;
}

/* Wait (bounded) until pred() holds; it runs under g_mu. */
static int wait_for(int (*pred)(void *), void *arg, double timeout_s)
{
    double until = ev_time() + timeout_s;
    for (;;) {
        pthread_mutex_lock(&g_mu);
        int ok = pred(arg);
        pthread_mutex_unlock(&g_mu);
        if (ok || ev_time() > until) {
            return ok;
        }
        usleep(500);
    }
}

static int total_ups(void *arg)
{
    return S[0].ups + S[1].ups >= *(const unsigned *)arg;
}

static int total_msgs(void *arg)
{
    return S[0].msgs + S[1].msgs >= *(const unsigned *)arg;
}

/* ---- a raw wolfSSL DTLS 1.3 client with a CID, whose socket rebinds ------- */

static int udp_from(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&g_srv, sizeof(g_srv)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    if (port != NULL) {
        *port = ntohs(a.sin_port);
    }
    return fd;
}

typedef struct cidc {
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    int fd;
    uint8_t last[4096]; /* the last datagram sent */
    size_t last_len;
} cidc;

static int cc_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    cidc *c = ctx;
    if ((size_t)sz <= sizeof(c->last)) {
        memcpy(c->last, buf, (size_t)sz);
        c->last_len = (size_t)sz;
    }
    (void)send(c->fd, buf, (size_t)sz, 0);
    return sz;
}

static int cc_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    cidc *c = ctx;
    ssize_t n = recv(c->fd, buf, (size_t)sz, MSG_DONTWAIT);
    return n < 0 ? WOLFSSL_CBIO_ERR_WANT_READ : (int)n;
}

static cidc *cidc_new(void)
{
    cidc *c = calloc(1, sizeof(*c));
    c->fd = udp_from(NULL);
    c->ctx = wolfSSL_CTX_new(wolfDTLSv1_3_client_method());
    assert_non_null(c->ctx);
    assert_int_equal(wolfSSL_CTX_load_verify_locations(c->ctx, tu_pki("ca.pem"), NULL),
                     WOLFSSL_SUCCESS);
    c->ssl = wolfSSL_new(c->ctx);
    wolfSSL_SSLSetIORecv(c->ssl, cc_recv);
    wolfSSL_SSLSetIOSend(c->ssl, cc_send);
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    wolfSSL_dtls_set_using_nonblock(c->ssl, 1);
    static unsigned char mine[4] = {0xC1, 0xD0, 0x00, 0x02};
    assert_int_equal(wolfSSL_dtls_cid_use(c->ssl), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_dtls_cid_set(c->ssl, mine, sizeof(mine)), WOLFSSL_SUCCESS);
    return c;
}

static void cidc_free(cidc *c)
{
    wolfSSL_free(c->ssl);
    wolfSSL_CTX_free(c->ctx);
    close(c->fd);
    free(c);
}

static void cidc_handshake(cidc *c)
{
    double until = ev_time() + 10;
    double retx = ev_time() + 1.0;
    for (;;) {
        int ret = wolfSSL_connect(c->ssl);
        if (ret == WOLFSSL_SUCCESS) {
            return;
        }
        int err = wolfSSL_get_error(c->ssl, ret);
        if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
            fail_msg("raw client handshake failed: %d", err);
        }
        if (ev_time() > until) {
            fail_msg("watchdog: raw client handshake not done in 10 s");
        }
        if (ev_time() > retx) {
            wolfSSL_dtls_got_timeout(c->ssl);
            retx = ev_time() + 1.0;
        }
        usleep(500);
    }
}

static void cidc_send_msg(cidc *c, unsigned seq)
{
    uint8_t *m = tu_make_request(300, seq, "DTLS");
    assert_int_equal(wolfSSL_write(c->ssl, m, 300), 300);
    free(m);
}

/* The answer to the last request reaches the client at its current port. */
static void cidc_read_answer(cidc *c, const char *what)
{
    uint8_t buf[4096];
    double until = ev_time() + 5;
    for (;;) {
        int n = wolfSSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            assert_true(n >= 7 && memcmp(buf, "SIP/2.0", 7) == 0);
            return;
        }
        if (ev_time() > until) {
            fail_msg("watchdog: no answer (%s) in 5 s", what);
        }
        usleep(500);
    }
}

/* ---- set-up --------------------------------------------------------------- */

static int setup_on(const char *host)
{
    memset(S, 0, sizeof(S));
    g_fds_before = tu_fd_count();
    char listen[64];
    snprintf(listen, sizeof(listen), "dtls:%s:0", host);
    make_engine(&S[0], listen);
    unsigned port = siptls_listener_port(S[0].engine, 0);
    snprintf(listen, sizeof(listen), "dtls:%s:%u", host, port);
    g_alt_dst = strcmp(host, "0.0.0.0") == 0;
    make_engine(&S[1], listen);
    assert_int_equal(siptls_listener_port(S[1].engine, 0), port);
    memset(&g_srv, 0, sizeof(g_srv));
    g_srv.sin_family = AF_INET;
    g_srv.sin_port = htons((uint16_t)port);
    g_srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    start_thread(&S[0]);
    start_thread(&S[1]);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_on("127.0.0.1");
}

static int setup_wild(void **state)
{
    (void)state;
    return setup_on("0.0.0.0");
}

static int setup_short(void **state)
{
    (void)state;
    g_lifetime = 2;
    int rc = setup_on("127.0.0.1");
    g_lifetime = 0;
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    free_engine(&S[0]);
    free_engine(&S[1]);
    assert_int_equal(tu_fd_count(), g_fds_before);
    return 0;
}

/* Handshake, one message, then K rebinds with a message each; returns the
 * owner's index. */
static int rebinding_session(cidc *c)
{
    cidc_handshake(c);
    unsigned want = 1;
    assert_true(wait_for(total_ups, &want, 5));
    pthread_mutex_lock(&g_mu);
    int owner = S[0].ups == 1 ? 0 : 1;
    siptls_flow_id f = S[owner].up_flow;
    pthread_mutex_unlock(&g_mu);
    cidc_send_msg(c, 1);
    assert_true(wait_for(total_msgs, &want, 5));
    cidc_read_answer(c, "before any move");

    unsigned prev = 0;
    for (unsigned k = 1; k <= K_MOVES; k++) {
        unsigned port;
        if (g_alt_dst) {
            g_srv.sin_addr.s_addr = htonl(k % 2 ? 0x7F000002 : INADDR_LOOPBACK);
        }
        close(c->fd);
        c->fd = udp_from(&port);
        assert_true(port != prev);
        prev = port;
        cidc_send_msg(c, 1 + k);
        want = 1 + k;
        if (!wait_for(total_msgs, &want, 5)) {
            pthread_mutex_lock(&g_mu);
            unsigned got = S[0].msgs + S[1].msgs;
            pthread_mutex_unlock(&g_mu);
            fail_msg("move %u: message lost (%u of %u arrived)", k, got, want);
        }
        cidc_read_answer(c, "after a move");
    }
    pthread_mutex_lock(&g_mu);
    side *o = &S[owner];
    side *other = &S[1 - owner];
    unsigned msgs = o->msgs, other_msgs = other->msgs, ups = S[0].ups + S[1].ups;
    unsigned moves = o->moves, other_moves = other->moves;
    siptls_flow_id moved = o->moved_flow;
    unsigned same = 0;
    for (unsigned i = 0; i < msgs && i < MAX_MSGS; i++) {
        same += o->msg_flow[i] == f;
    }
    unsigned fwd = other->forwarded;
    pthread_mutex_unlock(&g_mu);
    fprintf(stderr, "owner engine %d; %u of %u datagrams forwarded by the other engine\n", owner,
            fwd, K_MOVES);
    assert_int_equal(ups, 1);
    assert_int_equal(msgs, 1 + K_MOVES);
    assert_int_equal(same, 1 + K_MOVES);
    assert_int_equal(other_msgs, 0);
    assert_int_equal(moves, K_MOVES);
    assert_int_equal(other_moves, 0);
    assert_int_equal(moved, f);
    return owner;
}

static void test_rebinding_workers(void **state)
{
    (void)state;
    cidc *c = cidc_new();
    (void)rebinding_session(c);
    cidc_free(c);
}

/* The same on wildcard listeners: answers to a forwarded datagram leave
 * from the address the client sent it to. */
static void test_rebinding_workers_wildcard(void **state)
{
    test_rebinding_workers(state);
}

/* A CID whose tag no engine holds: dropped and counted by whichever
 * engine's socket it reaches; the session is not disturbed. */
static void test_unknown_tag(void **state)
{
    (void)state;
    cidc *c = cidc_new();
    int owner = rebinding_session(c);
    /* c->last: an application record with the owner's CID (unified header:
     * the CID follows the first byte). */
    assert_true(c->last_len > 8 && (c->last[0] & 0xF0) == 0x30);
    uint8_t dg[4096];
    memcpy(dg, c->last, c->last_len);
    dg[1] = (uint8_t)(dg[1] + 128); /* two engines hold neighbouring tags */
    uint64_t bad0 = stats_of(&S[0]).dtls_bad_records + stats_of(&S[1]).dtls_bad_records;
    enum { N = 16 };
    for (int i = 0; i < N; i++) {
        int fd = udp_from(NULL);
        assert_int_equal(send(fd, dg, c->last_len, 0), (ssize_t)c->last_len);
        close(fd);
    }
    double until = ev_time() + 5;
    uint64_t bad = 0;
    while (ev_time() < until) {
        bad = stats_of(&S[0]).dtls_bad_records + stats_of(&S[1]).dtls_bad_records - bad0;
        if (bad >= N) {
            break;
        }
        usleep(1000);
    }
    assert_true(bad >= N);
    /* the session goes on */
    cidc_send_msg(c, 100);
    unsigned want = 2 + K_MOVES;
    assert_true(wait_for(total_msgs, &want, 5));
    cidc_read_answer(c, "after the forged tags");
    pthread_mutex_lock(&g_mu);
    unsigned moves = S[owner].moves;
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(moves, K_MOVES);
    cidc_free(c);
}

/* After a move to a 4-tuple the kernel gives the other engine, the peer's
 * STUN keepalives (no CID) reach that engine too: they must keep the
 * owner's session alive (idle expiry, dtls_session_lifetime 2 s here) and
 * be answered with the peer's address. */
static void test_stun_follows(void **state)
{
    (void)state;
    cidc *c = cidc_new();
    int owner = rebinding_session(c);
    side *other = &S[1 - owner];
    /* move until the other engine's socket gets the new 4-tuple */
    unsigned seq = 1 + K_MOVES, port = 0;
    int there = 0;
    for (int i = 0; i < 30 && !there; i++) {
        pthread_mutex_lock(&g_mu);
        unsigned fwd0 = other->forwarded;
        pthread_mutex_unlock(&g_mu);
        close(c->fd);
        c->fd = udp_from(&port);
        cidc_send_msg(c, ++seq);
        assert_true(wait_for(total_msgs, &seq, 5));
        cidc_read_answer(c, "after a move");
        pthread_mutex_lock(&g_mu);
        there = other->forwarded > fwd0;
        pthread_mutex_unlock(&g_mu);
    }
    assert_true(there);
    /* twice the session lifetime of STUN only */
    double until = ev_time() + 4.5;
    unsigned answers = 0;
    uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    while (ev_time() < until) {
        uint8_t req[SIPTLS__STUN_MAX_RESPONSE], buf[512];
        txid[0]++;
        size_t n = siptls__dtls_stun_request(txid, 1, req);
        assert_int_equal(send(c->fd, req, n, 0), (ssize_t)n);
        double wait_until = ev_time() + 2;
        ssize_t got = -1;
        while (got < 0 && ev_time() < wait_until) {
            got = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (got < 0) {
                usleep(500);
            }
        }
        assert_true(got > 0);
        struct sockaddr_storage mapped;
        assert_int_equal(siptls__dtls_stun_parse_mapped(buf, (size_t)got, &mapped), 0);
        assert_int_equal(ntohs(((struct sockaddr_in *)&mapped)->sin_port), port);
        answers++;
        usleep(300 * 1000);
    }
    assert_true(answers >= 5);
    pthread_mutex_lock(&g_mu);
    unsigned closes = S[owner].closes;
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(closes, 0);
    /* and the session still carries messages, on the same flow */
    cidc_send_msg(c, ++seq);
    assert_true(wait_for(total_msgs, &seq, 5));
    cidc_read_answer(c, "after STUN only");
    pthread_mutex_lock(&g_mu);
    siptls_flow_id f = S[owner].up_flow, last = S[owner].msg_flow[(S[owner].msgs - 1) % MAX_MSGS];
    unsigned ups = S[0].ups + S[1].ups;
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(last, f);
    assert_int_equal(ups, 1);
    cidc_free(c);
}

/* The owner engine is freed while datagrams with its CID keep arriving
 * from new ports (half of them forwarded to it by the other engine). */
typedef struct blaster {
    uint8_t dg[4096];
    size_t len;
    atomic_int stop;
    unsigned sent;
} blaster;

static void *blast_main(void *arg)
{
    blaster *b = arg;
    double until = ev_time() + 10; /* bounded even if never stopped */
    while (!atomic_load(&b->stop) && ev_time() < until && b->sent < 200000) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            break;
        }
        for (int i = 0; i < 8; i++) {
            (void)sendto(fd, b->dg, b->len, 0, (struct sockaddr *)&g_srv, sizeof(g_srv));
            b->sent++;
        }
        close(fd);
        usleep(100);
    }
    return NULL;
}

static void test_free_owner_while_forwarding(void **state)
{
    (void)state;
    cidc *c = cidc_new();
    int owner = rebinding_session(c);
    blaster *b = calloc(1, sizeof(*b));
    memcpy(b->dg, c->last, c->last_len);
    b->len = c->last_len;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blast_main, b), 0);
    usleep(50 * 1000);
    /* the owner stops and goes while the other engine forwards to it */
    free_engine(&S[owner]);
    usleep(50 * 1000);
    uint64_t before = stats_of(&S[1 - owner]).dtls_bad_records;
    usleep(50 * 1000);
    atomic_store(&b->stop, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    /* what reaches the survivor now is counted and dropped: no owner */
    uint64_t after = stats_of(&S[1 - owner]).dtls_bad_records;
    fprintf(stderr, "sent %u replays; survivor dropped %llu after the owner went\n", b->sent,
            (unsigned long long)(after - before));
    assert_true(b->sent > 0);
    assert_true(after > before);
    free(b);
    cidc_free(c);
}

#endif

static void test_no_cid(void **state)
{
    (void)state;
    skip();
}

int main(void)
{
#if HAVE_CID
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rebinding_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebinding_workers_wildcard, setup_wild, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stun_follows, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_free_owner_while_forwarding, setup, teardown),
    };
    (void)test_no_cid;
#else
    /* Debian's wolfSSL 5.5.4: no DTLS 1.3, no Connection ID. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_cid),
    };
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
