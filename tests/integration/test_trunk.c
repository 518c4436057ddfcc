/* Integration: what real use broke (issue 8) — one busy trunk connection
 * bursting requests, peers that end their sending right behind a request,
 * peers that stop reading, names with several addresses. Real sockets on
 * loopback, real wolfSSL handshakes, a real libev loop; every test ends
 * with no flow open and no fd leaked. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_internal.h"
#include "pair.h"
#include "rawclient.h"

static tu_pair *E;
static unsigned g_warn_queue_full; /* WARN lines that say "queue full" */
static unsigned g_warn_lines;
static unsigned g_warn_refusing; /* WARN lines that say "refusing" */

static void count_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == SIPTLS_LOG_WARN) {
        g_warn_lines++;
        if (strstr(text, "queue full") != NULL) {
            g_warn_queue_full++;
        }
        if (strstr(text, "refusing") != NULL) {
            g_warn_refusing++;
        }
    }
    if (getenv("SIPTLS_TEST_DEBUG") != NULL) {
        fprintf(stderr, "[log %d] %s\n", (int)level, text);
    }
}

static int setup(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0", "dtls:127.0.0.1:0");
    E->scfg.log_level = SIPTLS_LOG_INFO;
    E->cb.log = count_log;
    g_warn_queue_full = g_warn_lines = g_warn_refusing = 0;
    return 0;
}

static void start(void)
{
    tu_pair_start(E);
}

/* ------------------------------------------------------------------------ */
/* requests and answers that say which request they answer                  */
/* ------------------------------------------------------------------------ */

static size_t make_options(char *out, size_t cap, unsigned cseq)
{
    int n = snprintf(out, cap,
                     "OPTIONS sip:trunk.invalid SIP/2.0\r\n"
                     "Via: SIP/2.0/TLS client.invalid;branch=z9hG4bK%u\r\n"
                     "Max-Forwards: 70\r\nFrom: <sip:a@client.invalid>;tag=1\r\n"
                     "To: <sip:b@trunk.invalid>\r\nCall-ID: burst@client.invalid\r\n"
                     "CSeq: %u OPTIONS\r\nContent-Length: 0\r\n\r\n",
                     cseq, cseq);
    return (size_t)n;
}

/* `count` requests with CSeq 1..count back to back in one buffer. */
static uint8_t *make_burst(unsigned count, size_t *len)
{
    uint8_t *buf = malloc((size_t)count * 400);
    size_t at = 0;
    for (unsigned i = 1; i <= count; i++) {
        at += make_options((char *)buf + at, 400, i);
    }
    *len = at;
    return buf;
}

static unsigned cseq_of(const uint8_t *msg, size_t header_len)
{
    const uint8_t *v;
    size_t vl;
    if (siptls_sipmsg_header(msg, header_len, "CSeq", 0, &v, &vl) != SIPTLS_OK) {
        return 0;
    }
    return (unsigned)strtoul((const char *)v, NULL, 10);
}

/* Server hook: a 200 carrying the request's CSeq. */
static void answer(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    if (!siptls_sipmsg_is_request(m->data, m->len)) {
        return;
    }
    char out[512];
    int n =
        snprintf(out, sizeof(out),
                 "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS client.invalid;branch=z9hG4bK1\r\n"
                 "From: <sip:a@client.invalid>;tag=1\r\nTo: <sip:b@trunk.invalid>;tag=2\r\n"
                 "Call-ID: burst@client.invalid\r\nCSeq: %u OPTIONS\r\nContent-Length: 0\r\n\r\n",
                 cseq_of(m->data, m->header_len));
    assert_int_equal(siptls_send(r->engine, flow, (const uint8_t *)out, (size_t)n), SIPTLS_OK);
}

/* The CSeqs of the responses in what a raw client read, in order: every
 * one of 1..count exactly once and in order. */
static void assert_answers_in_order(const tu_raw *r, unsigned count)
{
    unsigned pongs = 0;
    assert_int_equal(tu_raw_count_responses(r, &pongs), count);
    unsigned want = 1;
    const char *p = (const char *)r->got;
    const char *end = p + r->got_len;
    while (p < end && (p = memmem(p, (size_t)(end - p), "CSeq: ", 6)) != NULL) {
        assert_int_equal((unsigned)strtoul(p + 6, NULL, 10), want);
        want++;
        p += 6;
    }
    assert_int_equal(want, count + 1);
}

/* ------------------------------------------------------------------------ */
/* one busy connection                                                      */
/* ------------------------------------------------------------------------ */

/* 1,000 requests pipelined in one write on one TLS connection, with the
 * default queue limit (32): every one answered, in order. */
static void test_burst_one_write(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = answer;
    size_t len;
    uint8_t *burst = make_burst(1000, &len);
    tu_raw r = {
        .port = siptls_listener_port(E->server, 0), .data = burst, .len = len, .expect_msgs = 1000};
    tu_raw_run(E->loop, &r, 30);
    assert_true(r.handshake_ok);
    assert_answers_in_order(&r, 1000);
    assert_int_equal(E->srec.n_msgs, 1000);
    assert_int_equal(tu_stats(E->server).drop_queue_full, 0);
    tu_raw_free(&r);
    free(burst);
}

static int client_up(void *arg)
{
    (void)arg;
    return E->crec.ups >= 1;
}

static int client_got(void *arg)
{
    return E->crec.n_msgs >= *(const unsigned *)arg;
}

static void assert_client_got_in_order(unsigned count)
{
    assert_int_equal(E->crec.n_msgs, count);
    for (unsigned i = 0; i < count; i++) {
        const tu_msg *m = &E->crec.msgs[i];
        const uint8_t *hdr_end = memmem(m->copy, m->len, "\r\n\r\n", 4);
        assert_non_null(hdr_end);
        assert_int_equal(cseq_of(m->copy, (size_t)(hdr_end - m->copy) + 4), i + 1);
    }
}

/* A host that sends `count` messages in a row from its own code (not from
 * a callback) on one flow: none refused, all answered in order. */
static void burst_from_host(const char *scheme, int listener, unsigned count)
{
    start();
    E->srec.on_msg = answer;
    E->crec.keep_copies = 1;
    siptls_flow_id f;
    assert_int_equal(
        siptls_connect(E->client, tu_uri(E->server, listener, scheme, "127.0.0.1"), &f), SIPTLS_OK);
    tu_run_pred(E->loop, client_up, NULL, 10, "client flow up");
    for (unsigned i = 1; i <= count; i++) {
        char req[400];
        size_t n = make_options(req, sizeof(req), i);
        assert_int_equal(siptls_send(E->client, f, (const uint8_t *)req, n), SIPTLS_OK);
    }
    tu_run_pred(E->loop, client_got, &count, 30, "every answer back");
    assert_client_got_in_order(count);
    assert_int_equal(tu_stats(E->server).drop_queue_full, 0);
    assert_int_equal(tu_stats(E->client).drop_queue_full, 0);
}

static void test_burst_from_host_tls(void **state)
{
    (void)state;
    burst_from_host("tls", 0, 1000);
}

/* DTLS: 200 datagrams back to back (the server reads up to 64 per wakeup
 * and answers each): all 200 answered, in order. */
static void test_burst_from_host_dtls(void **state)
{
    (void)state;
    burst_from_host("dtls", 1, 200);
}

/* An outbound DTLS flow's socket gets the receive buffer a listener gets
 * (2 MiB, beyond rmem_max where the process may): a trunk's answers arrive
 * back to back, and the kernel default (208 KiB, ~100 datagrams) dropped
 * them ("siptls bench dtls: -C 1 -w 300": 147 lost, RcvbufErrors). */
static void test_dtls_client_rcvbuf(void **state)
{
    (void)state;
    start();
    siptls_flow_id f;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 1, "dtls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    tu_run_pred(E->loop, client_up, NULL, 10, "client flow up");
    siptls__flow *fl = siptls__table_by_id(E->client, f);
    assert_non_null(fl);
    int have = 0;
    socklen_t len = sizeof(have);
    assert_int_equal(getsockopt(siptls__flow_fd(fl), SOL_SOCKET, SO_RCVBUF, &have, &len), 0);
    long rmem_max = 0;
    FILE *fp = fopen("/proc/sys/net/core/rmem_max", "r");
    if (fp != NULL) {
        assert_int_equal(fscanf(fp, "%ld", &rmem_max), 1);
        fclose(fp);
    }
    /* root (CI) may go past rmem_max; anyone gets at least rmem_max */
    long want = geteuid() == 0 ? 2L << 20 : (rmem_max < (2L << 20) ? rmem_max : 2L << 20);
    if (have < want) {
        fail_msg("outbound DTLS socket: SO_RCVBUF %d, want >= %ld", have, want);
    }
}

/* 40 CRLFCRLF pings, then a request, in one write: 40 pongs and the
 * answer (each pong used to count against the queue limit). */
static void test_pings_then_request(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = answer;
    char buf[2048];
    size_t at = 0;
    for (int i = 0; i < 40; i++) {
        memcpy(buf + at, "\r\n\r\n", 4);
        at += 4;
    }
    at += make_options(buf + at, sizeof(buf) - at, 1);
    tu_raw r = {.port = siptls_listener_port(E->server, 0),
                .data = (uint8_t *)buf,
                .len = at,
                .expect_msgs = 1};
    tu_raw_run(E->loop, &r, 10);
    unsigned pongs = 0;
    assert_int_equal(tu_raw_count_responses(&r, &pongs), 1);
    assert_int_equal(pongs, 40);
    assert_int_equal(tu_stats(E->server).pings_in, 40);
    tu_raw_free(&r);
}

static int server_up(void *arg)
{
    (void)arg;
    return E->srec.ups >= 1;
}

static int server_closed_n(void *arg)
{
    return E->srec.closes >= *(const unsigned *)arg;
}

/* TLS 1.3: a request and the client's close_notify in one segment. RFC
 * 8446 §6.1: close_notify ends the peer's sending, not ours; the answer
 * goes out, then our close_notify. Ten connections, ten answers. */
static void test_close_notify_tls13(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = answer;
    char req[400];
    size_t n = make_options(req, sizeof(req), 1);
    for (unsigned i = 0; i < 10; i++) {
        tu_raw r = {.port = siptls_listener_port(E->server, 0),
                    .version = 13,
                    .data = (uint8_t *)req,
                    .len = n,
                    .same_segment = 1,
                    .end = TU_RAW_END_CLOSE_NOTIFY};
        tu_raw_run(E->loop, &r, 10);
        assert_true(r.handshake_ok);
        assert_int_equal(tu_raw_count_responses(&r, NULL), 1);
        tu_raw_free(&r);
        unsigned want = i + 1;
        tu_run_pred(E->loop, server_closed_n, &want, 5, "server flow closed");
        assert_int_equal(E->srec.close_reasons[i], SIPTLS_ERR_PEER_CLOSED);
    }
    assert_int_equal(E->srec.n_msgs, 10);
}

/* TLS 1.2: RFC 5246 §7.2.1 asks the opposite ("discarding any pending
 * writes"): no answer, our close_notify, and the server goes on serving. */
static void test_close_notify_tls12(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = answer;
    char req[400];
    size_t n = make_options(req, sizeof(req), 1);
    tu_raw r = {.port = siptls_listener_port(E->server, 0),
                .version = 12,
                .data = (uint8_t *)req,
                .len = n,
                .same_segment = 1,
                .end = TU_RAW_END_CLOSE_NOTIFY};
    tu_raw_run(E->loop, &r, 10);
    assert_true(r.handshake_ok);
    assert_int_equal(E->srec.n_msgs, 1);
    assert_int_equal(tu_raw_count_responses(&r, NULL), 0);
    tu_raw_free(&r);
    tu_raw ok = {.port = siptls_listener_port(E->server, 0),
                 .version = 12,
                 .data = (uint8_t *)req,
                 .len = n,
                 .expect_msgs = 1};
    tu_raw_run(E->loop, &ok, 10);
    assert_int_equal(tu_raw_count_responses(&ok, NULL), 1);
    tu_raw_free(&ok);
}

/* A request in one TLS 1.3 record of `size` bytes on the wire (5-byte
 * header, content type and a 16-byte AEAD tag around the plaintext), then
 * a FIN in the same segment: answered. At 16,384 (the transport's read
 * buffer, filled to the byte) the read that found the FIN used to close
 * the flow before the answer went out. */
static void test_fin_after_request(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = answer;
    static const size_t wire[] = {16383, 16384, 16385, 600};
    unsigned served = 0;
    for (size_t k = 0; k < sizeof(wire) / sizeof(wire[0]); k++) {
        size_t plain = wire[k] - 22;
        for (int rep = 0; rep < 5; rep++) {
            uint8_t *req = tu_make_request(plain, (unsigned)(k * 10 + (size_t)rep), "TLS");
            tu_raw r = {.port = siptls_listener_port(E->server, 0),
                        .version = 13,
                        .data = req,
                        .len = plain,
                        .write_size = plain,
                        .wire_record = wire[k],
                        .same_segment = 1,
                        .end = TU_RAW_END_FIN};
            tu_raw_run(E->loop, &r, 10);
            assert_true(r.handshake_ok);
            assert_true(r.wire_ok);
            if (tu_raw_count_responses(&r, NULL) != 1) {
                fail_msg("%zu-byte record + FIN (try %d): no answer", wire[k], rep + 1);
            }
            served++;
            tu_raw_free(&r);
            free(req);
        }
    }
    assert_int_equal(E->srec.n_msgs, served);
}

/* A legal 49,432-byte MESSAGE written as its header block, then 16 KiB
 * records, 30 ms apart (a slow link): five wakeups, answered with the
 * default tls_max_msg_chunks (4) — each full record is progress. A message
 * dribbled in small pieces is still closed (test_tls_engine's chunk test). */
static void test_large_message_slow_link(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = answer;
    size_t total = 49432;
    uint8_t *msg = tu_make_request(total, 5, "TLS");
    const uint8_t *eoh = memmem(msg, total, "\r\n\r\n", 4);
    assert_non_null(eoh);
    tu_raw r = {.port = siptls_listener_port(E->server, 0),
                .data = msg,
                .len = total,
                .first_write = (size_t)(eoh - msg) + 4,
                .write_size = 16384,
                .pause_s = 0.03,
                .expect_msgs = 1};
    tu_raw_run(E->loop, &r, 10);
    assert_int_equal(tu_raw_count_responses(&r, NULL), 1);
    assert_int_equal(E->srec.n_msgs, 1);
    assert_int_equal(E->srec.msgs[0].len, total);
    assert_int_equal(tu_stats(E->server).drop_chunks, 0);
    tu_raw_free(&r);
    free(msg);
}

/* Server hook: three large answers to a peer that has closed its socket:
 * the writes after its RST fail with EPIPE. A library must not raise
 * SIGPIPE in a host that did not ignore it (this test process does not). */
static void answer_big(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    (void)m;
    uint8_t *big = tu_make_request(60000, 9, "TLS");
    for (int i = 0; i < 3; i++) {
        siptls_send(r->engine, flow, big, 60000);
    }
    free(big);
}

static void test_no_sigpipe(void **state)
{
    (void)state;
    start();
    E->srec.on_msg = answer_big;
    char req[400];
    size_t n = make_options(req, sizeof(req), 1);
    for (int i = 0; i < 3; i++) {
        tu_raw r = {.port = siptls_listener_port(E->server, 0),
                    .data = (uint8_t *)req,
                    .len = n,
                    .end = TU_RAW_END_CLOSE};
        tu_raw_run(E->loop, &r, 10);
        unsigned want = (unsigned)i + 1;
        tu_run_pred(E->loop, server_closed_n, &want, 5, "server flow closed");
        tu_raw_free(&r);
    }
    /* still alive, still serving */
    E->srec.on_msg = answer;
    tu_raw ok = {.port = siptls_listener_port(E->server, 0),
                 .data = (uint8_t *)req,
                 .len = n,
                 .expect_msgs = 1};
    tu_raw_run(E->loop, &ok, 10);
    assert_int_equal(tu_raw_count_responses(&ok, NULL), 1);
    tu_raw_free(&ok);
}

/* Server hook: 200 answers of 60,000 bytes to one request (12 MB). */
static void answer_lots(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    (void)m;
    uint8_t *big = tu_make_request(60000, 11, "TLS");
    for (int i = 0; i < 200; i++) {
        assert_int_equal(siptls_send(r->engine, flow, big, 60000), SIPTLS_OK);
    }
    free(big);
}

/* 12 MB to a reader that reads 16 KiB, then sleeps `pause_s`: all of it
 * arrives and nothing is closed as stuck, as long as the reader itself kept
 * going. A test thread starved by a loaded machine (a gap between its reads
 * of most of tls_send_timeout) is not a steady reader: such an attempt is
 * run again, up to 3 times; the library failing a reader that did keep
 * going fails the test. */
static void steady_reader(double pause_s, unsigned send_timeout_ms)
{
    E->scfg.tls_send_timeout = send_timeout_ms;
    E->scfg.tls_async_max_postponed_chunks = 1000;
    E->scfg.tls_async_max_queued_bytes = 64u << 20;
    start();
    E->srec.on_msg = answer_lots;
    char req[400];
    size_t n = make_options(req, sizeof(req), 1);
    for (int attempt = 1; attempt <= 3; attempt++) {
        tu_raw r = {.port = siptls_listener_port(E->server, 0),
                    .data = (uint8_t *)req,
                    .len = n,
                    .expect_bytes = 200u * 60000u,
                    .read_pause_s = pause_s,
                    /* a fixed receive buffer: the reader's TCP reopens its
                     * window as it reads (with megabytes of autotuned buffer,
                     * Linux waits until half of it is free, and nobody can
                     * tell a slow reader from a stopped one for that long) */
                    .rcvbuf = 65536};
        unsigned closes = E->srec.closes;
        uint64_t timeouts = tu_stats(E->server).drop_send_timeout;
        tu_raw_run(E->loop, &r, 60);
        int stuck = tu_stats(E->server).drop_send_timeout != timeouts;
        int steady = r.max_gap_s < 0.75 * send_timeout_ms / 1000.0;
        size_t got = r.got_len;
        double gap = r.max_gap_s;
        tu_raw_free(&r);
        if (got == 200u * 60000u && !stuck) {
            return;
        }
        if (steady) {
            fail_msg("a reader that never paused more than %.3f s got %zu of %u bytes; server "
                     "flow closes %u (%s)",
                     gap, got, 200u * 60000u, E->srec.closes - closes,
                     E->srec.closes > closes ? siptls_strerror(E->srec.close_reasons[closes])
                                             : "-");
        }
        print_message("attempt %d: the reader thread was starved (%.3f s without a read): again\n",
                      attempt, gap);
    }
    fail_msg("the reader thread was starved in every attempt: inconclusive");
}

/* A reader at ~8 MB/s: the queue of a long burst keeps moving (the timeout
 * used to run from the first full socket until the queue was empty). */
static void test_slow_steady_reader(void **state)
{
    (void)state;
    steady_reader(0.002, 800);
}

/* Slower still (~1.6 MB/s): the kernel reports the socket writable again
 * only once a third of its buffer (megabytes) is free, which takes longer
 * than tls_send_timeout at this pace, though the peer never stops reading.
 * Stuck is judged by what the kernel sent (SIOCOUTQ), not by writability. */
static void test_slow_reader_below_wakeup(void **state)
{
    (void)state;
    steady_reader(0.01, 400);
}

/* A graceful close of a flow whose peer does not read waits (up to
 * tls_send_timeout) for its queue without spinning: the loop sleeps
 * between the few events it has (the close's deadline used to be "as soon
 * as possible", firing the timer on every loop iteration for seconds). */
static void test_close_blocked_no_spin(void **state)
{
    (void)state;
    E->scfg.tls_send_timeout = 1000;
    start();
    tu_raw r = {.port = siptls_listener_port(E->server, 0), .hold_s = 2.0, .rcvbuf = 65536};
    tu_raw_start(&r);
    tu_run_pred(E->loop, server_up, NULL, 10, "server flow up");
    siptls_flow_id f = E->srec.up_ids[0];
    uint8_t *m = tu_make_request(60000, 3, "TLS");
    while (siptls_send(E->server, f, m, 60000) == SIPTLS_OK) {
        tu_run_for(E->loop, 0.001);
    }
    free(m);
    assert_int_equal(siptls_close(E->server, f), SIPTLS_OK);
    unsigned before = ev_iteration(E->loop);
    tu_run_for(E->loop, 0.3);
    unsigned spins = ev_iteration(E->loop) - before;
    if (spins > 100) {
        fail_msg("%u loop iterations in 0.3 s while a closing flow waited", spins);
    }
    unsigned want = 1;
    tu_run_pred(E->loop, server_closed_n, &want, 5, "the close gave up after tls_send_timeout");
    tu_raw_wait(E->loop, &r, 10);
    tu_raw_free(&r);
}

/* A peer that stops reading still hits the queue limit and the send
 * timeout; its thousands of refused sends make a handful of log lines, not
 * one each. */
static void test_stalled_peer_log_limited(void **state)
{
    (void)state;
    E->scfg.tls_send_timeout = 1500;
    start();
    /* the peer stops reading for longer than two tls_send_timeout windows:
     * in the first its kernel may still take bytes into its own buffer */
    tu_raw r = {.port = siptls_listener_port(E->server, 0), .hold_s = 6.0, .rcvbuf = 65536};
    /* the client runs in the background: it handshakes, then sleeps */
    tu_raw_start(&r);
    tu_run_pred(E->loop, server_up, NULL, 10, "server flow up");
    siptls_flow_id f = E->srec.up_ids[0];
    uint8_t *m = tu_make_request(60000, 3, "TLS");
    unsigned refused = 0;
    for (int i = 0; i < 20000 && refused < 2000; i++) {
        int st = siptls_send(E->server, f, m, 60000);
        if (st == SIPTLS_ERR_QUEUE_FULL) {
            refused++;
        } else if (st != SIPTLS_OK) {
            break;
        }
        if (i % 50 == 0) {
            tu_run_for(E->loop, 0.001);
        }
    }
    free(m);
    assert_true(refused >= 2000);
    unsigned want = 1;
    tu_run_pred(E->loop, server_closed_n, &want, 5, "send timeout closed the flow");
    assert_int_equal(E->srec.close_reasons[0], SIPTLS_ERR_SEND_TIMEOUT);
    siptls_stats s = tu_stats(E->server);
    assert_true(s.drop_queue_full >= 2000);
    /* the first refusal, then one summary (at close) */
    assert_true(g_warn_queue_full >= 1);
    assert_true(g_warn_lines <= 4);
    tu_raw_wait(E->loop, &r, 10);
    tu_raw_free(&r);
}

/* ------------------------------------------------------------------------ */
/* a name with several addresses (RFC 3263 §4.3)                            */
/* ------------------------------------------------------------------------ */

/* A loopback port nothing listens on (TCP: refused; UDP: ICMP). */
static unsigned closed_port(int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

static siptls__addr loop_addr(unsigned port)
{
    siptls__addr x;
    memset(&x, 0, sizeof(x));
    struct sockaddr_in *in = (struct sockaddr_in *)&x.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    x.len = sizeof(*in);
    return x;
}

static unsigned remote_port(siptls_engine *e, siptls_flow_id id)
{
    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(e, id, &info), SIPTLS_OK);
    return ntohs(((struct sockaddr_in *)&info.remote)->sin_port);
}

/* The first address refuses: the same flow (same id) comes up at the
 * second, verified for the SIP domain "localhost". */
static void failover_refused(siptls_transport t, int type, int listener)
{
    start();
    siptls__addr a[2] = {loop_addr(closed_port(type)),
                         loop_addr(siptls_listener_port(E->server, listener))};
    siptls__flow *f = NULL;
    assert_int_equal(siptls__open_addrs(E->client, t, "localhost", 0, a, 2, 0, &f), SIPTLS_OK);
    siptls_flow_id id = f->id;
    tu_run_pred(E->loop, client_up, NULL, 10, "flow up at the second address");
    assert_int_equal(E->crec.up_ids[0], id);
    assert_int_equal(E->crec.closes, 0);
    assert_int_equal(remote_port(E->client, id), siptls_listener_port(E->server, listener));
}

static void test_failover_refused_tls(void **state)
{
    (void)state;
    failover_refused(SIPTLS_TRANSPORT_TLS, SOCK_STREAM, 0);
}

static void test_failover_refused_dtls(void **state)
{
    (void)state;
    failover_refused(SIPTLS_TRANSPORT_DTLS, SOCK_DGRAM, 1);
}

/* The first address never answers (a listener whose accept queue is full
 * drops SYNs): after tls_connect_timeout the flow moves on. */
static void test_failover_timeout(void **state)
{
    (void)state;
    E->ccfg.tls_connect_timeout = 300;
    start();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    siptls__addr dead = loop_addr(0);
    socklen_t dl = dead.len;
    assert_int_equal(bind(lfd, (struct sockaddr *)&dead.ss, dl), 0);
    getsockname(lfd, (struct sockaddr *)&dead.ss, &dl);
    assert_int_equal(listen(lfd, 0), 0);
    int filler = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(filler, (struct sockaddr *)&dead.ss, dl), 0);
    siptls__addr a[2] = {dead, loop_addr(siptls_listener_port(E->server, 0))};
    siptls__flow *f = NULL;
    assert_int_equal(
        siptls__open_addrs(E->client, SIPTLS_TRANSPORT_TLS, "localhost", 0, a, 2, 0, &f),
        SIPTLS_OK);
    siptls_flow_id id = f->id;
    tu_run_pred(E->loop, client_up, NULL, 10, "flow up after the connect timeout");
    assert_int_equal(E->crec.up_ids[0], id);
    assert_int_equal(remote_port(E->client, id), siptls_listener_port(E->server, 0));
    close(filler);
    close(lfd);
}

static int client_closed(void *arg)
{
    (void)arg;
    return E->crec.closes >= 1;
}

/* Every address refuses: one CLOSED with the last error, and the host's
 * loop is free to end. */
static void test_failover_all_refused(void **state)
{
    (void)state;
    start();
    siptls__addr a[3] = {loop_addr(closed_port(SOCK_STREAM)), loop_addr(closed_port(SOCK_STREAM)),
                         loop_addr(closed_port(SOCK_STREAM))};
    siptls__flow *f = NULL;
    assert_int_equal(
        siptls__open_addrs(E->client, SIPTLS_TRANSPORT_TLS, "localhost", 0, a, 3, 0, &f),
        SIPTLS_OK);
    tu_run_pred(E->loop, client_closed, NULL, 10, "flow closed");
    tu_run_for(E->loop, 0.1);
    assert_int_equal(E->crec.closes, 1);
    assert_int_equal(E->crec.close_reasons[0], SIPTLS_ERR_CONNECT);
    assert_int_equal(E->crec.ups, 0);
}

/* The name the README uses: "localhost" is ::1 first on a stock Debian,
 * the listener only on 127.0.0.1. */
static void test_localhost(void **state)
{
    (void)state;
    start();
    char uri[64];
    snprintf(uri, sizeof(uri), "tls:localhost:%u", siptls_listener_port(E->server, 0));
    siptls_flow_id f;
    assert_int_equal(siptls_connect(E->client, uri, &f), SIPTLS_OK);
    tu_run_pred(E->loop, client_up, NULL, 10, "flow to localhost up");
    /* a second send to the name reuses it, whichever address it reached */
    siptls_flow_id again;
    assert_int_equal(siptls_connect(E->client, uri, &again), SIPTLS_OK);
    assert_int_equal(again, f);
}

static int client_ups_n(void *arg)
{
    return E->crec.ups >= *(const unsigned *)arg;
}

static int client_closes_n(void *arg)
{
    return E->crec.closes >= *(const unsigned *)arg;
}

/* A burst of connections over tls_max_connections: each refused one is
 * counted, the log says so once (not once per connection). */
static void test_limit_refusals_log_limited(void **state)
{
    (void)state;
    E->scfg.tls_max_connections = 2;
    start();
    const char *uri = tu_uri(E->server, 0, "tls", "127.0.0.1");
    for (int i = 0; i < 30; i++) {
        siptls_flow_id f;
        assert_int_equal(siptls_open(E->client, uri, &f), SIPTLS_OK);
    }
    unsigned want = 28;
    tu_run_pred(E->loop, client_closes_n, &want, 20, "28 connections refused");
    assert_true(tu_stats(E->server).drop_limit >= 28);
    assert_int_equal(g_warn_refusing, 1);
    want = 2;
    tu_run_pred(E->loop, client_ups_n, &want, 20, "the two admitted connections up");
}

/* A host that holds its loop up for longer than tls_connect_timeout (a
 * second of work in a callback, a debugger) must not find its connect
 * timed out when the connection had completed meanwhile: libev runs the
 * iteration's timers before the readiness it found in the same poll. */
static void test_loop_held_up(void **state)
{
    (void)state;
    E->ccfg.tls_connect_timeout = 200;
    E->ccfg.tls_handshake_timeout = 200;
    start();
    siptls_flow_id f;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "tls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    usleep(500000); /* the host is busy */
    tu_run_pred(E->loop, client_up, NULL, 10, "flow up although the loop was held up");
    assert_int_equal(E->crec.closes, 0);
    assert_int_equal(E->crec.up_ids[0], f);
}

/* ------------------------------------------------------------------------ */
/* a port is one process's                                                  */
/* ------------------------------------------------------------------------ */

static siptls_engine *engine_on(siptls_config *cfg, const char *tls_uri, const char *dtls_uri,
                                int reuse, int *st_out)
{
    tu_config(cfg, "server");
    cfg->reuse_port = reuse;
    siptls_engine *e = tu_pair_engine(E, cfg, NULL, NULL);
    int st = siptls_listen(e, tls_uri);
    if (st >= 0) {
        st = siptls_listen(e, dtls_uri);
    }
    *st_out = st < 0 ? st : SIPTLS_OK;
    return e;
}

static void listen_uris(siptls_engine *e, char *tls, char *dtls)
{
    snprintf(tls, 64, "tls:127.0.0.1:%u", siptls_listener_port(e, 0));
    snprintf(dtls, 64, "dtls:127.0.0.1:%u", siptls_listener_port(e, 1));
}

/* Without reuse_port a port belongs to one engine: a second one is
 * refused, for TLS and for DTLS. */
static void test_port_alone(void **state)
{
    (void)state;
    start();
    char tls[64], dtls[64];
    listen_uris(E->server, tls, dtls);
    siptls_config c;
    int st;
    siptls_engine *b = engine_on(&c, tls, "dtls:127.0.0.1:0", 0, &st);
    assert_int_equal(st, SIPTLS_ERR_BIND);
    tu_pair_engine_free(E, b);
    siptls_config_cleanup(&c);
    b = engine_on(&c, "tls:127.0.0.1:0", dtls, 0, &st);
    assert_int_equal(st, SIPTLS_ERR_BIND);
    tu_pair_engine_free(E, b);
    siptls_config_cleanup(&c);
}

static int accepted(siptls_engine *e)
{
    return (int)tu_stats(e).flows_accepted;
}

static int both_accepted(void *arg)
{
    siptls_engine **two = arg;
    return accepted(two[0]) + accepted(two[1]) >= 32;
}

/* reuse_port: two engines of this process share a port and the kernel
 * gives each of them connections; a process that is not us is refused
 * (a forked child, with and without reuse_port). */
static void test_port_shared(void **state)
{
    (void)state;
    start();
    siptls_config ca, cb;
    int st;
    siptls_engine *two[2];
    two[0] = engine_on(&ca, "tls:127.0.0.1:0", "dtls:127.0.0.1:0", 1, &st);
    assert_int_equal(st, SIPTLS_OK);
    char tls[64], dtls[64];
    listen_uris(two[0], tls, dtls);
    two[1] = engine_on(&cb, tls, dtls, 1, &st);
    assert_int_equal(st, SIPTLS_OK);
    assert_int_equal(siptls_listener_port(two[1], 0), siptls_listener_port(two[0], 0));
    for (int i = 0; i < 32; i++) {
        siptls_flow_id f;
        assert_int_equal(siptls_open(E->client, tls, &f), SIPTLS_OK);
    }
    tu_run_pred(E->loop, both_accepted, two, 10, "32 connections accepted");
    assert_true(accepted(two[0]) > 0);
    assert_true(accepted(two[1]) > 0);
    for (int reuse = 0; reuse <= 1; reuse++) {
        pid_t pid = fork();
        if (pid == 0) {
            struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
            siptls_config cc;
            tu_config(&cc, "server");
            cc.reuse_port = reuse;
            siptls_engine *x = NULL;
            int ok = siptls_engine_new(&x, loop, &cc, NULL, NULL) == SIPTLS_OK &&
                     siptls_listen(x, tls) == SIPTLS_ERR_BIND &&
                     siptls_listen(x, dtls) == SIPTLS_ERR_BIND;
            _exit(ok ? 0 : 1);
        }
        int status = -1;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0) {
            fail_msg("another process (reuse_port=%d) could listen on our port", reuse);
        }
    }
    /* the port is free again once both engines are gone */
    for (unsigned i = 0; i < E->crec.ups; i++) {
        siptls_close(E->client, E->crec.up_ids[i]);
    }
    tu_pair_engine_free(E, two[0]);
    tu_pair_engine_free(E, two[1]);
    siptls_config_cleanup(&ca);
    siptls_config_cleanup(&cb);
    siptls_config c;
    siptls_engine *again = engine_on(&c, tls, dtls, 0, &st);
    assert_int_equal(st, SIPTLS_OK);
    tu_pair_engine_free(E, again);
    siptls_config_cleanup(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_burst_one_write, setup),
        TU_PAIR_TEST(test_burst_from_host_tls, setup),
        TU_PAIR_TEST(test_burst_from_host_dtls, setup),
        TU_PAIR_TEST(test_dtls_client_rcvbuf, setup),
        TU_PAIR_TEST(test_pings_then_request, setup),
        TU_PAIR_TEST(test_close_notify_tls13, setup),
        TU_PAIR_TEST(test_close_notify_tls12, setup),
        TU_PAIR_TEST(test_fin_after_request, setup),
        TU_PAIR_TEST(test_large_message_slow_link, setup),
        TU_PAIR_TEST(test_no_sigpipe, setup),
        TU_PAIR_TEST(test_stalled_peer_log_limited, setup),
        TU_PAIR_TEST(test_close_blocked_no_spin, setup),
        TU_PAIR_TEST(test_slow_steady_reader, setup),
        TU_PAIR_TEST(test_slow_reader_below_wakeup, setup),
        TU_PAIR_TEST(test_failover_refused_tls, setup),
        TU_PAIR_TEST(test_failover_refused_dtls, setup),
        TU_PAIR_TEST(test_failover_timeout, setup),
        TU_PAIR_TEST(test_failover_all_refused, setup),
        TU_PAIR_TEST(test_localhost, setup),
        TU_PAIR_TEST(test_loop_held_up, setup),
        TU_PAIR_TEST(test_limit_refusals_log_limited, setup),
        TU_PAIR_TEST(test_port_alone, setup),
        TU_PAIR_TEST(test_port_shared, setup),
    };
    if (getenv("SIPTLS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("SIPTLS_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
