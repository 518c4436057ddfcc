/* Integration: the calls that are safe from any thread
 * (include/siptls/threads.h): siptls_engine_post, siptls_send_async,
 * siptls_send_to_async, siptls_engine_post_stats.
 *
 * The pair tests run the engines' loop on the test's thread (cmocka's
 * assertions may only run there) while threads of their own post into
 * them; the workers test runs three engines on three loop threads, each
 * relaying what it receives into another's flows from its own loop, while
 * four more threads send into flows of engines they do not own. Real
 * loopback sockets and handshakes throughout. Labelled `threads` too: CI
 * runs it under ThreadSanitizer (.ci/run, phase tsan). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pair.h"

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

static int setup_none(void **state)
{
    E = tu_pair_new(state, NULL);
    return 0;
}

/* A MESSAGE of about 300 bytes carrying `seq` and `hop` in headers. */
static size_t make_msg(char *buf, size_t cap, unsigned seq, int hop)
{
    static const char body[] = "hello from another thread";
    int n = snprintf(buf, cap,
                     "MESSAGE sip:b@example.test SIP/2.0\r\n"
                     "Via: SIP/2.0/TLS a.example.test;branch=z9hG4bK%u\r\n"
                     "From: <sip:a@example.test>;tag=%u\r\nTo: <sip:b@example.test>\r\n"
                     "Call-ID: %u@a.example.test\r\nCSeq: %u MESSAGE\r\nX-Seq: %u\r\n"
                     "X-Hop: %d\r\nContent-Length: %zu\r\n\r\n%s",
                     seq, seq, seq, seq, seq, hop, sizeof(body) - 1, body);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* The value of header `name` ("X-Seq: ") in a message, -1 when absent. */
static long header_num(const uint8_t *p, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < n; i++) {
        if ((i == 0 || p[i - 1] == '\n') && memcmp(p + i, name, nl) == 0) {
            return strtol((const char *)p + i + nl, NULL, 10);
        }
    }
    return -1;
}

static int both_up(void *arg)
{
    (void)arg;
    return E->crec.ups >= 1 && E->srec.ups >= 1;
}

/* Start the pair and bring one client flow up; its id. */
static siptls_flow_id start_flow(const char *scheme)
{
    tu_pair_start(E);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, scheme, "127.0.0.1"), &f),
                     SIPTLS_OK);
    tu_run_pred(E->loop, both_up, NULL, 10, "the flow up on both sides");
    return f;
}

/* ---- siptls_engine_post ------------------------------------------------------ */

#define N_POSTS 200

typedef struct post_log {
    pthread_t loop_thread;
    unsigned seen;
    unsigned order[N_POSTS + 1];
    int wrong_thread;
    int wrong_status;
    int nested_ran_inside; /* the post made from a posted function ran inside it */
    int in_fn;
    unsigned nested_seen;
} post_log;

static post_log PL;

static void nested_fn(siptls_engine *e, void *arg, int status)
{
    (void)e;
    (void)arg;
    PL.nested_ran_inside |= PL.in_fn;
    PL.wrong_status |= status != SIPTLS_OK;
    PL.nested_seen++;
}

static void logged_fn(siptls_engine *e, void *arg, int status)
{
    PL.in_fn = 1;
    PL.wrong_thread |= !pthread_equal(pthread_self(), PL.loop_thread);
    PL.wrong_status |= status != SIPTLS_OK;
    unsigned seq = (unsigned)(uintptr_t)arg;
    if (PL.seen < N_POSTS) {
        PL.order[PL.seen] = seq;
    }
    PL.seen++;
    if (seq == 0) {
        /* posting from the loop's own thread: it runs later, not now */
        assert_int_equal(siptls_engine_post(e, nested_fn, NULL), SIPTLS_OK);
    }
    PL.in_fn = 0;
}

typedef struct poster {
    siptls_engine *e;
    unsigned n;
    int failures;
} poster;

static void *post_thread(void *arg)
{
    poster *p = arg;
    for (unsigned i = 0; i < p->n; i++) {
        if (siptls_engine_post(p->e, logged_fn, (void *)(uintptr_t)i) != SIPTLS_OK) {
            p->failures++;
        }
    }
    return NULL;
}

static int posts_done(void *arg)
{
    (void)arg;
    return PL.seen >= N_POSTS && PL.nested_seen >= 1;
}

/* Functions posted from another thread run on the loop's thread, in the
 * order they were posted, with SIPTLS_OK; one posted from a posted
 * function runs after it, not inside it. */
static void test_post_runs_on_loop_in_order(void **state)
{
    (void)state;
    memset(&PL, 0, sizeof(PL));
    PL.loop_thread = pthread_self();
    tu_pair_start(E);
    poster p = {E->server, N_POSTS, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_thread, &p), 0);
    tu_run_pred(E->loop, posts_done, NULL, 10, "every posted function ran");
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.failures, 0);
    assert_false(PL.wrong_thread);
    assert_false(PL.wrong_status);
    assert_false(PL.nested_ran_inside);
    for (unsigned i = 0; i < N_POSTS; i++) {
        assert_int_equal(PL.order[i], i);
    }
    siptls_post_stats ps;
    siptls_engine_post_stats(E->server, &ps);
    assert_int_equal(ps.posted, N_POSTS + 1);
    assert_int_equal(ps.run, N_POSTS + 1);
    assert_int_equal(ps.pending, 0);
    assert_int_equal(ps.refused, 0);
    assert_true(ps.wakeups >= 1 && ps.wakeups <= ps.posted);
    /* bad arguments */
    assert_int_equal(siptls_engine_post(NULL, logged_fn, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_engine_post(E->server, NULL, NULL), SIPTLS_ERR_INVAL);
}

/* ---- siptls_send_async from a thread that does not own the engine ---------- */

#define N_SENDS 100

typedef struct sender {
    siptls_engine *e;
    siptls_flow_id flow;
    const char *uri; /* send_to_async when set */
    unsigned n;
    unsigned first_seq;
    int failures;
    atomic_uint done_ok, done_failed;
    atomic_int done_status;
    atomic_ullong done_flow;
} sender;

static void count_done(siptls_engine *e, siptls_flow_id flow, int status, void *arg)
{
    (void)e;
    sender *s = arg;
    if (status == SIPTLS_OK) {
        atomic_fetch_add(&s->done_ok, 1);
    } else {
        atomic_fetch_add(&s->done_failed, 1);
    }
    atomic_store(&s->done_status, status);
    atomic_store(&s->done_flow, flow);
}

static void *send_thread(void *arg)
{
    sender *s = arg;
    char buf[600];
    for (unsigned i = 0; i < s->n; i++) {
        size_t n = make_msg(buf, sizeof(buf), s->first_seq + i, 0);
        int st = s->uri != NULL
                     ? siptls_send_to_async(s->e, s->uri, (uint8_t *)buf, n, count_done, s)
                     : siptls_send_async(s->e, s->flow, (uint8_t *)buf, n, count_done, s);
        if (st != SIPTLS_OK) {
            s->failures++;
        }
    }
    return NULL;
}

static int server_got(void *arg)
{
    return E->srec.n_msgs >= *(const unsigned *)arg;
}

static void send_async_from_thread(const char *scheme)
{
    E->srec.keep_copies = 1;
    siptls_flow_id f = start_flow(scheme);
    sender s = {.e = E->client, .flow = f, .n = N_SENDS, .first_seq = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
    unsigned want = N_SENDS;
    tu_run_pred(E->loop, server_got, &want, 20, "every message sent from the other thread");
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(s.failures, 0);
    assert_int_equal(atomic_load(&s.done_ok), N_SENDS);
    assert_int_equal(atomic_load(&s.done_failed), 0);
    assert_int_equal(E->srec.n_msgs, N_SENDS);
    /* one thread, one flow: they arrive in the order they were sent */
    for (unsigned i = 0; i < N_SENDS; i++) {
        const tu_msg *m = &E->srec.msgs[i];
        assert_int_equal(header_num(m->copy, m->len, "X-Seq: "), i + 1);
    }
    siptls_post_stats ps;
    siptls_engine_post_stats(E->client, &ps);
    assert_int_equal(ps.posted, N_SENDS);
    assert_int_equal(ps.run, N_SENDS);
    assert_int_equal(ps.sends_failed, 0);
}

static void test_send_async_tls(void **state)
{
    (void)state;
    send_async_from_thread("tls");
}

static void test_send_async_dtls(void **state)
{
    (void)state;
    send_async_from_thread("dtls");
}

/* A send whose flow is gone by the time it runs: the message is dropped,
 * done() hears SIPTLS_ERR_GONE, and without done() it is counted. */
static void test_send_async_flow_gone(void **state)
{
    (void)state;
    siptls_flow_id f = start_flow("tls");
    char buf[600];
    size_t n = make_msg(buf, sizeof(buf), 7, 0);
    /* closed on the loop's thread before the queued send runs */
    sender s = {.e = E->client};
    assert_int_equal(siptls_send_async(E->client, f, (uint8_t *)buf, n, count_done, &s), SIPTLS_OK);
    assert_int_equal(siptls_send_async(E->client, f, (uint8_t *)buf, n, NULL, NULL), SIPTLS_OK);
    assert_int_equal(siptls_close(E->client, f), SIPTLS_OK);
    /* an id that never was */
    assert_int_equal(siptls_send_async(E->client, 987654321, (uint8_t *)buf, n, count_done, &s),
                     SIPTLS_OK);
    tu_pair_close_all(E, 10);
    assert_int_equal(atomic_load(&s.done_failed), 2);
    assert_int_equal(atomic_load(&s.done_ok), 0);
    assert_int_equal(atomic_load(&s.done_status), SIPTLS_ERR_GONE);
    assert_int_equal(atomic_load(&s.done_flow), 987654321);
    siptls_post_stats ps;
    siptls_engine_post_stats(E->client, &ps);
    assert_int_equal(ps.sends_failed, 3);
    assert_int_equal(ps.run, 3);
    assert_int_equal(E->srec.n_msgs, 0);
    /* refused at once: nothing to send */
    assert_int_equal(siptls_send_async(E->client, f, NULL, n, NULL, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_send_async(E->client, f, (uint8_t *)buf, 0, NULL, NULL),
                     SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_send_async(E->client, f, (uint8_t *)buf, 70000, NULL, NULL),
                     SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_send_to_async(E->client, NULL, (uint8_t *)buf, n, NULL, NULL),
                     SIPTLS_ERR_INVAL);
}

/* Async sends past the flow's queue limit: done() hears
 * SIPTLS_ERR_QUEUE_FULL for those dropped, and the flow's on_writable
 * follows once the queue has drained (the backpressure of flow.h applies to
 * async sends too). Posted before the flow is up, run by the loop in one
 * batch before the handshake can end: 32 queued
 * (tls_async_max_postponed_chunks), 8 refused. */
static unsigned g_writable;
static siptls_flow_id g_writable_flow;

static void on_writable(siptls_engine *e, siptls_flow_id flow, void *user)
{
    (void)e;
    (void)user;
    g_writable++;
    g_writable_flow = flow;
}

static int writable_and_all_in(void *arg)
{
    return g_writable >= 1 && E->srec.n_msgs >= *(const unsigned *)arg;
}

static void test_send_async_queue_full_then_writable(void **state)
{
    (void)state;
    g_writable = 0;
    g_writable_flow = 0;
    tu_pair_start(E);
    assert_int_equal(siptls_engine_set_writable_cb(E->client, on_writable), SIPTLS_OK);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    sender s = {.e = E->client, .flow = f, .n = 40, .first_seq = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(s.failures, 0);
    unsigned want = 32;
    tu_run_pred(E->loop, writable_and_all_in, &want, 20, "the queue written out, on_writable");
    assert_int_equal(atomic_load(&s.done_ok), 32);
    assert_int_equal(atomic_load(&s.done_failed), 8);
    assert_int_equal(atomic_load(&s.done_status), SIPTLS_ERR_QUEUE_FULL);
    assert_int_equal(g_writable, 1);
    assert_true(g_writable_flow == f);
    assert_int_equal(tu_stats(E->client).drop_queue_full, 8);
    tu_run_for(E->loop, 0.05);
    assert_int_equal(E->srec.n_msgs, 32);
    assert_int_equal(g_writable, 1);
}

/* siptls_send_to_async opens the flow on the loop and tells which. */
static void test_send_to_async(void **state)
{
    (void)state;
    tu_pair_start(E);
    char uri[128];
    snprintf(uri, sizeof(uri), "%s", tu_uri(E->server, 0, "tls", "127.0.0.1"));
    sender s = {.e = E->client, .uri = uri, .n = 5, .first_seq = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
    unsigned want = 5;
    tu_run_pred(E->loop, server_got, &want, 20, "the messages sent by URI");
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&s.done_ok), 5);
    /* every one went over the one flow the first opened */
    assert_int_equal(E->crec.ups, 1);
    assert_int_equal(atomic_load(&s.done_flow), E->crec.up_ids[0]);
    /* a URI that cannot be used: done() hears why, flow 0 */
    sender bad = {.e = E->client};
    char buf[600];
    size_t n = make_msg(buf, sizeof(buf), 1, 0);
    assert_int_equal(
        siptls_send_to_async(E->client, "udp:127.0.0.1:5", (uint8_t *)buf, n, count_done, &bad),
        SIPTLS_OK);
    tu_run_for(E->loop, 0.05);
    assert_int_equal(atomic_load(&bad.done_failed), 1);
    assert_int_equal(atomic_load(&bad.done_status), SIPTLS_ERR_URI_SCHEME);
    assert_int_equal(atomic_load(&bad.done_flow), 0);
}

/* siptls_send_target_async: the targets are copied with their strings and
 * local address (the posting thread scribbles over its own copies as soon
 * as the call returned); the flow verifies the SIP domain and sends the
 * SNI asked for (RFC 5922 §7.2). */
typedef struct target_poster {
    unsigned port;
    sender s;
    int st_ok, st_inval_n, st_inval_host, st_inval_local;
} target_poster;

static void *target_thread(void *arg)
{
    target_poster *tp = arg;
    char host[32], domain[64], sni[64];
    struct sockaddr_in l4;
    memset(&l4, 0, sizeof(l4));
    l4.sin_family = AF_INET;
    l4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(host, sizeof(host), "127.0.0.1");
    snprintf(domain, sizeof(domain), "alt.example.test");
    snprintf(sni, sizeof(sni), "front.example.test");
    siptls_target t;
    siptls_target_init(&t);
    t.host = host;
    t.port = (uint16_t)tp->port;
    t.sip_domain = domain;
    t.sni = sni;
    t.local = (const struct sockaddr *)&l4;
    t.local_len = sizeof(l4);
    char buf[600];
    size_t n = make_msg(buf, sizeof(buf), 1, 0);
    tp->st_ok = siptls_send_target_async(tp->s.e, &t, 1, (uint8_t *)buf, n, count_done, &tp->s);
    /* nothing of the caller's is read after the call */
    memset(host, 'x', sizeof(host) - 1);
    memset(domain, 'x', sizeof(domain) - 1);
    memset(sni, 'x', sizeof(sni) - 1);
    memset(&l4, 0xff, sizeof(l4));
    memset(buf, 'x', sizeof(buf));
    tp->st_inval_n = siptls_send_target_async(tp->s.e, &t, 0, (uint8_t *)buf, n, NULL, NULL);
    t.local_len = 0;
    tp->st_inval_local = siptls_send_target_async(tp->s.e, &t, 1, (uint8_t *)buf, n, NULL, NULL);
    t.host = NULL;
    tp->st_inval_host = siptls_send_target_async(tp->s.e, &t, 1, (uint8_t *)buf, n, NULL, NULL);
    return NULL;
}

static void test_send_target_async(void **state)
{
    (void)state;
    char v[600];
    snprintf(v, sizeof(v), "[server:default]%s.pem", tu_pki("alt"));
    tu_set(&E->scfg, "certificate", v);
    snprintf(v, sizeof(v), "[server:default]%s.key", tu_pki("alt"));
    tu_set(&E->scfg, "private_key", v);
    E->srec.keep_copies = 1;
    tu_pair_start(E);
    target_poster tp = {.port = siptls_listener_port(E->server, 0), .s = {.e = E->client}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, target_thread, &tp), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(tp.st_ok, SIPTLS_OK);
    assert_int_equal(tp.st_inval_n, SIPTLS_ERR_INVAL);
    assert_int_equal(tp.st_inval_local, SIPTLS_ERR_INVAL);
    assert_int_equal(tp.st_inval_host, SIPTLS_ERR_INVAL);
    unsigned want = 1;
    tu_run_pred(E->loop, server_got, &want, 20, "the message sent to the target");
    assert_int_equal(atomic_load(&tp.s.done_ok), 1);
    siptls_flow_id f = (siptls_flow_id)atomic_load(&tp.s.done_flow);
    assert_true(f != 0);
    assert_int_equal(header_num(E->srec.msgs[0].copy, E->srec.msgs[0].len, "X-Seq: "), 1);
    siptls_flow_info *ci = malloc(sizeof(*ci));
    assert_non_null(ci);
    assert_int_equal(siptls_flow_get_info(E->client, f, ci), SIPTLS_OK);
    assert_true(ci->peer_verified); /* against alt.example.test */
    assert_string_equal(ci->sni, "front.example.test");
    assert_int_equal(strncmp(ci->local_text, "127.0.0.1:", 10), 0);
    free(ci);
    /* what siptls_send_target() refuses on the loop comes to done() */
    siptls_target bad;
    siptls_target_init(&bad);
    bad.host = "127.0.0.1";
    bad.port = (uint16_t)tp.port;
    bad.client_domain = "no-such-domain";
    sender s2 = {.e = E->client};
    char buf[600];
    size_t n = make_msg(buf, sizeof(buf), 2, 0);
    assert_int_equal(
        siptls_send_target_async(E->client, &bad, 1, (uint8_t *)buf, n, count_done, &s2),
        SIPTLS_OK);
    tu_run_for(E->loop, 0.05);
    assert_int_equal(atomic_load(&s2.done_failed), 1);
    assert_int_equal(atomic_load(&s2.done_status), SIPTLS_ERR_INVAL);
    assert_int_equal(atomic_load(&s2.done_flow), 0);
}

/* ---- the engine freed with posts waiting ------------------------------------ */

typedef struct cancel_log {
    unsigned fn_ok, fn_shutdown, done_shutdown, other;
    pthread_t freeing_thread;
    int wrong_thread;
} cancel_log;

static cancel_log CL;

/* Each post owns a malloc'd block: freed in every outcome (ASan checks). */
static void owned_fn(siptls_engine *e, void *arg, int status)
{
    (void)e;
    free(arg);
    if (status == SIPTLS_OK) {
        CL.fn_ok++;
    } else if (status == SIPTLS_ERR_SHUTDOWN) {
        CL.fn_shutdown++;
        CL.wrong_thread |= !pthread_equal(pthread_self(), CL.freeing_thread);
    } else {
        CL.other++;
    }
}

static void owned_done(siptls_engine *e, siptls_flow_id flow, int status, void *arg)
{
    (void)e;
    (void)flow;
    free(arg);
    if (status == SIPTLS_ERR_SHUTDOWN) {
        CL.done_shutdown++;
        CL.wrong_thread |= !pthread_equal(pthread_self(), CL.freeing_thread);
    } else {
        CL.other++;
    }
}

typedef struct filler {
    siptls_engine *e;
    siptls_flow_id flow;
    const char *uri;
    int failures;
} filler;

static void *fill_thread(void *arg)
{
    filler *f = arg;
    char buf[600];
    size_t n = make_msg(buf, sizeof(buf), 1, 0);
    for (int i = 0; i < 18; i++) {
        void *block = malloc(32);
        int st = i < 10 ? siptls_engine_post(f->e, owned_fn, block)
                 : i < 15
                     ? siptls_send_async(f->e, f->flow, (uint8_t *)buf, n, owned_done, block)
                     : siptls_send_to_async(f->e, f->uri, (uint8_t *)buf, n, owned_done, block);
        if (st != SIPTLS_OK) {
            free(block); /* a refused post calls nothing */
            f->failures++;
        }
    }
    return NULL;
}

/* Posts waiting when the engine is freed: each callback is called exactly
 * once, with SIPTLS_ERR_SHUTDOWN, on the freeing thread, inside
 * siptls_engine_free(); nothing leaks (ASan); no message leaves. */
static void test_free_with_posts_pending(void **state)
{
    (void)state;
    memset(&CL, 0, sizeof(CL));
    CL.freeing_thread = pthread_self();
    siptls_flow_id f = start_flow("tls");
    tu_rec *rec = NULL;
    siptls_engine *x = tu_pair_engine(E, &E->ccfg, NULL, &rec);
    (void)rec;
    /* the extra engine gets posts while its loop does not run them (the
     * test does not run the loop between posting and freeing) */
    filler fl = {.e = x, .flow = f, .uri = tu_uri(E->server, 0, "tls", "127.0.0.1")};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fill_thread, &fl), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(fl.failures, 0);
    siptls_post_stats ps;
    siptls_engine_post_stats(x, &ps);
    assert_int_equal(ps.pending, 18);
    assert_int_equal(ps.run, 0);
    unsigned srv_before = E->srec.n_msgs;
    tu_pair_engine_free(E, x);
    assert_int_equal(CL.fn_shutdown, 10);
    assert_int_equal(CL.done_shutdown, 8);
    assert_int_equal(CL.fn_ok, 0);
    assert_int_equal(CL.other, 0);
    assert_false(CL.wrong_thread);
    tu_run_for(E->loop, 0.1);
    assert_int_equal(E->srec.n_msgs, srv_before);
}

/* A host callback that runs inside siptls_engine_free() (on_flow(CLOSED,
 * SIPTLS_ERR_SHUTDOWN) of each open flow) and posts to that same engine:
 * refused with SIPTLS_ERR_SHUTDOWN, nothing called back, nothing leaks. */
typedef struct closing_rec {
    siptls_flow_id up;
    unsigned closed;
    int post_st, send_st, target_st;
    unsigned called;
} closing_rec;

static void closing_fn(siptls_engine *e, void *arg, int status)
{
    (void)e;
    (void)status;
    ((closing_rec *)arg)->called++;
}

static void closing_done(siptls_engine *e, siptls_flow_id flow, int status, void *arg)
{
    (void)e;
    (void)flow;
    (void)status;
    ((closing_rec *)arg)->called++;
}

static void closing_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                         void *user)
{
    closing_rec *r = user;
    if (state == SIPTLS_FLOW_UP) {
        r->up = flow;
        return;
    }
    if (state != SIPTLS_FLOW_CLOSED || reason != SIPTLS_ERR_SHUTDOWN) {
        return;
    }
    r->closed++;
    static const uint8_t m[] = "OPTIONS sip:x SIP/2.0\r\n\r\n";
    r->post_st = siptls_engine_post(e, closing_fn, r);
    r->send_st = siptls_send_async(e, flow, m, sizeof(m) - 1, closing_done, r);
    siptls_target t;
    siptls_target_init(&t);
    t.host = "127.0.0.1";
    t.port = 9;
    r->target_st = siptls_send_target_async(e, &t, 1, m, sizeof(m) - 1, closing_done, r);
}

static int closing_up(void *arg)
{
    return ((closing_rec *)arg)->up != 0;
}

static void test_post_from_callback_during_free(void **state)
{
    (void)state;
    tu_pair_start(E);
    closing_rec r = {0};
    siptls_callbacks cb = {.on_flow = closing_flow};
    siptls_engine *x = NULL;
    assert_int_equal(siptls_engine_new(&x, E->loop, &E->ccfg, &cb, &r), SIPTLS_OK);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(x, tu_uri(E->server, 0, "tls", "127.0.0.1"), &f), SIPTLS_OK);
    tu_run_pred(E->loop, closing_up, &r, 10, "the extra engine's flow up");
    siptls_engine_free(x);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.post_st, SIPTLS_ERR_SHUTDOWN);
    assert_int_equal(r.send_st, SIPTLS_ERR_SHUTDOWN);
    assert_int_equal(r.target_st, SIPTLS_ERR_SHUTDOWN);
    assert_int_equal(r.called, 0);
    tu_run_pred(E->loop, tu_pair_all_closed, E, 10, "the server's side closed");
}

/* A thread that keeps posting until told to stop; the engine is freed once
 * it has stopped: every post was either run or cancelled, none lost. */
typedef struct flood {
    siptls_engine *e;
    atomic_int stop;
    unsigned accepted;
} flood;

static void *flood_thread(void *arg)
{
    flood *f = arg;
    while (!atomic_load(&f->stop)) {
        void *block = malloc(16);
        if (siptls_engine_post(f->e, owned_fn, block) == SIPTLS_OK) {
            f->accepted++;
        } else {
            free(block); /* a refused post calls nothing */
        }
        if (f->accepted % 64 == 0) {
            sched_yield();
        }
        if (f->accepted >= 100000) {
            break;
        }
    }
    return NULL;
}

static int some_ran(void *arg)
{
    (void)arg;
    return CL.fn_ok >= 1000;
}

static void test_free_after_flood(void **state)
{
    (void)state;
    memset(&CL, 0, sizeof(CL));
    CL.freeing_thread = pthread_self();
    tu_pair_start(E);
    tu_rec *rec = NULL;
    siptls_engine *x = tu_pair_engine(E, &E->ccfg, NULL, &rec);
    (void)rec;
    flood fl = {.e = x};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flood_thread, &fl), 0);
    tu_run_pred(E->loop, some_ran, NULL, 20, "posts running while the flood goes on");
    atomic_store(&fl.stop, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    siptls_post_stats ps;
    siptls_engine_post_stats(x, &ps);
    assert_int_equal(ps.posted, fl.accepted);
    unsigned ran = CL.fn_ok;
    tu_pair_engine_free(E, x);
    assert_int_equal(CL.fn_ok, ran);
    assert_int_equal(CL.fn_ok + CL.fn_shutdown, fl.accepted);
    assert_int_equal(CL.other, 0);
}

/* ---- the mailbox's bounds --------------------------------------------------- */

static void noop_fn(siptls_engine *e, void *arg, int status)
{
    (void)e;
    (void)status;
    (*(unsigned *)arg)++;
}

static int ran4(void *arg)
{
    return *(unsigned *)arg >= 4;
}

/* post_max_pending and post_max_pending_bytes: past them a post is refused
 * (and counted) until the loop has run what waits. */
static void test_mailbox_bounds(void **state)
{
    (void)state;
    tu_set(&E->ccfg, "post_max_pending", "4");
    tu_set(&E->ccfg, "post_max_pending_bytes", "65536");
    tu_pair_start(E);
    unsigned ran = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(siptls_engine_post(E->client, noop_fn, &ran), SIPTLS_OK);
    }
    assert_int_equal(siptls_engine_post(E->client, noop_fn, &ran), SIPTLS_ERR_QUEUE_FULL);
    siptls_post_stats ps;
    siptls_engine_post_stats(E->client, &ps);
    assert_int_equal(ps.pending, 4);
    assert_int_equal(ps.refused, 1);
    tu_run_pred(E->loop, ran4, &ran, 5, "the four posts ran");
    assert_int_equal(ran, 4);
    /* bytes: 40,000 + 40,000 > 65,536 */
    uint8_t *big = tu_make_request(40000, 1, "TLS");
    assert_int_equal(siptls_send_async(E->client, 424242, big, 40000, NULL, NULL), SIPTLS_OK);
    assert_int_equal(siptls_send_async(E->client, 424242, big, 40000, NULL, NULL),
                     SIPTLS_ERR_QUEUE_FULL);
    siptls_engine_post_stats(E->client, &ps);
    assert_int_equal(ps.pending_bytes, 40000);
    assert_int_equal(ps.refused, 2);
    free(big);
    tu_run_for(E->loop, 0.05);
    siptls_engine_post_stats(E->client, &ps);
    assert_int_equal(ps.pending, 0);
    assert_int_equal(ps.pending_bytes, 0);
    assert_int_equal(ps.sends_failed, 1);
}

/* ---- engines on three threads relaying into each other --------------------- */

#define N_WORKERS 3
#define N_SENDERS 4
#define SENDS_EACH 250

typedef struct worker {
    int index;
    struct ev_loop *loop;
    siptls_engine *e;
    pthread_t thread;
    siptls_flow_id out_flow;        /* to the next worker (set before the threads start) */
    _Atomic siptls_flow_id in_flow; /* from the previous worker (its loop thread sets it) */
    atomic_uint ups;
    pthread_t loop_thread;
    atomic_int wrong_thread;
} worker;

typedef struct world {
    worker w[N_WORKERS];
    atomic_uint got_hop0, got_hop1;
    atomic_uint relay_refused;
    atomic_uint done_ok, done_failed;
} world;

static world *WW;

static void w_done(siptls_engine *e, siptls_flow_id flow, int status, void *arg)
{
    (void)e;
    (void)flow;
    (void)arg;
    if (status == SIPTLS_OK) {
        atomic_fetch_add(&WW->done_ok, 1);
    } else {
        atomic_fetch_add(&WW->done_failed, 1);
    }
}

static worker *worker_of(void *user)
{
    return user;
}

static void w_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)e;
    (void)flow;
    worker *w = worker_of(user);
    if (!pthread_equal(pthread_self(), w->loop_thread)) {
        atomic_store(&w->wrong_thread, 1);
    }
    long hop = header_num(m->data, m->len, "X-Hop: ");
    if (hop == 0) {
        atomic_fetch_add(&WW->got_hop0, 1);
        /* relay once into the NEXT worker's engine (not ours): its flow to
         * the worker after it, from our loop's thread */
        worker *next = &WW->w[(w->index + 1) % N_WORKERS];
        char buf[600];
        size_t n = make_msg(buf, sizeof(buf), (unsigned)header_num(m->data, m->len, "X-Seq: "), 1);
        if (siptls_send_async(next->e, next->out_flow, (uint8_t *)buf, n, w_done, NULL) !=
            SIPTLS_OK) {
            atomic_fetch_add(&WW->relay_refused, 1);
        }
    } else if (hop == 1) {
        atomic_fetch_add(&WW->got_hop1, 1);
    }
}

static void w_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                   void *user)
{
    (void)reason;
    worker *w = worker_of(user);
    if (state == SIPTLS_FLOW_UP) {
        siptls_flow_addrs a;
        if (siptls_flow_get_addrs(e, flow, &a) == SIPTLS_OK && !a.outbound) {
            atomic_store(&w->in_flow, flow);
        }
        atomic_fetch_add(&w->ups, 1);
    }
}

static void w_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if (level <= SIPTLS_LOG_WARN) {
        fprintf(stderr, "[worker log %d] %s\n", (int)level, text);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->loop_thread = pthread_self();
    ev_run(w->loop, 0);
    siptls_thread_cleanup(); /* wolfSSL's per-thread ECC cache */
    return NULL;
}

static void stop_fn(siptls_engine *e, void *arg, int status)
{
    (void)arg;
    if (status == SIPTLS_OK) {
        ev_break(siptls_engine_loop(e), EVBREAK_ALL);
    }
}

typedef struct wsender {
    unsigned index;
    int failures;
} wsender;

static void *wsender_main(void *arg)
{
    wsender *s = arg;
    unsigned seed = 12345u + s->index;
    char buf[600];
    for (unsigned i = 0; i < SENDS_EACH; i++) {
        worker *w = &WW->w[rand_r(&seed) % N_WORKERS];
        siptls_flow_id f = (rand_r(&seed) & 1) ? w->out_flow : atomic_load(&w->in_flow);
        size_t n = make_msg(buf, sizeof(buf), s->index * 100000 + i, 0);
        if (siptls_send_async(w->e, f, (uint8_t *)buf, n, w_done, NULL) != SIPTLS_OK) {
            s->failures++;
        }
        if (i % 32 == 0) {
            sched_yield();
        }
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait (polling, bounded) until `*v` reaches `want`. */
static int wait_atomic(atomic_uint *v, unsigned want, double timeout_s)
{
    double end = now_s() + timeout_s;
    while (atomic_load(v) < want && now_s() < end) {
        usleep(1000);
    }
    return atomic_load(v) >= want;
}

static void test_workers_relay(void **state)
{
    (void)state;
    WW = calloc(1, sizeof(*WW));
    assert_non_null(WW);
    siptls_callbacks cb = {.on_message = w_message, .on_flow = w_flow, .log = w_log};
    /* queues that take every burst: this test is about threads, not limits */
    tu_set(&E->scfg, "tls_async_max_postponed_chunks", "65536");
    tu_set(&E->scfg, "tls_async_max_queued_bytes", "67108864");
    tu_set(&E->scfg, "listen", "tls:127.0.0.1:0");
    for (int i = 0; i < N_WORKERS; i++) {
        worker *w = &WW->w[i];
        w->index = i;
        w->loop = ev_loop_new(EVFLAG_AUTO);
        assert_non_null(w->loop);
        assert_int_equal(siptls_engine_new(&w->e, w->loop, &E->scfg, &cb, w), SIPTLS_OK);
    }
    /* each worker opens a flow to the next one, before any thread runs */
    for (int i = 0; i < N_WORKERS; i++) {
        worker *w = &WW->w[i];
        siptls_engine *next = WW->w[(i + 1) % N_WORKERS].e;
        assert_int_equal(siptls_connect(w->e, tu_uri(next, 0, "tls", "127.0.0.1"), &w->out_flow),
                         SIPTLS_OK);
    }
    for (int i = 0; i < N_WORKERS; i++) {
        assert_int_equal(pthread_create(&WW->w[i].thread, NULL, worker_main, &WW->w[i]), 0);
    }
    for (int i = 0; i < N_WORKERS; i++) {
        /* its own flow and the previous worker's, both up */
        assert_true(wait_atomic(&WW->w[i].ups, 2, 20));
        assert_true(atomic_load(&WW->w[i].in_flow) != 0);
    }
    wsender s[N_SENDERS];
    pthread_t st[N_SENDERS];
    for (unsigned i = 0; i < N_SENDERS; i++) {
        s[i] = (wsender){.index = i};
        assert_int_equal(pthread_create(&st[i], NULL, wsender_main, &s[i]), 0);
    }
    for (unsigned i = 0; i < N_SENDERS; i++) {
        assert_int_equal(pthread_join(st[i], NULL), 0);
        assert_int_equal(s[i].failures, 0);
    }
    unsigned total = N_SENDERS * SENDS_EACH;
    int all0 = wait_atomic(&WW->got_hop0, total, 60);
    int all1 = wait_atomic(&WW->got_hop1, total, 60);
    /* stop the workers through their mailboxes, join them; from here on
     * this thread owns every engine */
    for (int i = 0; i < N_WORKERS; i++) {
        assert_int_equal(siptls_engine_post(WW->w[i].e, stop_fn, NULL), SIPTLS_OK);
    }
    for (int i = 0; i < N_WORKERS; i++) {
        assert_int_equal(pthread_join(WW->w[i].thread, NULL), 0);
    }
    unsigned posted = 0, run = 0;
    for (int i = 0; i < N_WORKERS; i++) {
        siptls_post_stats ps;
        siptls_engine_post_stats(WW->w[i].e, &ps);
        posted += (unsigned)ps.posted;
        run += (unsigned)ps.run;
        assert_false(atomic_load(&WW->w[i].wrong_thread));
        siptls_engine_free(WW->w[i].e);
        ev_loop_destroy(WW->w[i].loop);
    }
    unsigned got0 = atomic_load(&WW->got_hop0), got1 = atomic_load(&WW->got_hop1);
    unsigned ok = atomic_load(&WW->done_ok), failed = atomic_load(&WW->done_failed);
    unsigned refused = atomic_load(&WW->relay_refused);
    free(WW);
    WW = NULL;
    if (!all0 || !all1) {
        fail_msg("%u + %u of %u + %u messages arrived (sends ok %u, failed %u, relays refused %u)",
                 got0, got1, total, total, ok, failed, refused);
    }
    assert_int_equal(got0, total);
    assert_int_equal(got1, total);
    assert_int_equal(ok, 2 * total);
    assert_int_equal(failed, 0);
    assert_int_equal(refused, 0);
    /* every send and relay, and the three stops */
    assert_int_equal(posted, 2 * total + N_WORKERS);
    assert_int_equal(run, posted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_post_runs_on_loop_in_order, setup_tls),
        TU_PAIR_TEST(test_send_async_tls, setup_tls),
        TU_PAIR_TEST(test_send_async_dtls, setup_dtls),
        TU_PAIR_TEST(test_send_async_flow_gone, setup_tls),
        TU_PAIR_TEST(test_send_async_queue_full_then_writable, setup_tls),
        TU_PAIR_TEST(test_send_to_async, setup_tls),
        TU_PAIR_TEST(test_send_target_async, setup_tls),
        TU_PAIR_TEST(test_free_with_posts_pending, setup_tls),
        TU_PAIR_TEST(test_free_after_flood, setup_tls),
        TU_PAIR_TEST(test_post_from_callback_during_free, setup_tls),
        TU_PAIR_TEST(test_mailbox_bounds, setup_tls),
        TU_PAIR_TEST(test_workers_relay, setup_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
