/* Integration: the DTLS transport's batched datagram I/O (dtls/dtls_batch.c)
 * — recvmmsg() on listeners, the per-engine send queue flushed with
 * sendmmsg() at the end of each wakeup, records of whole messages packed
 * per peer. What batching must never do: lose, reorder, cut or duplicate a
 * datagram; send a reply from the wrong source address; leave a reply
 * queued when the loop goes idle. Library client <-> library server over
 * loopback UDP on the pair fixture (tests/support/pair.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>

#include "pair.h"

#include "../../dtls/dtls_internal.h"

static tu_pair *E;

static void remove_filters(tu_pair *p)
{
    if (p->server != NULL) {
        siptls__dtls_test_set_filter(p->server, NULL, NULL);
    }
    if (p->client != NULL) {
        siptls__dtls_test_set_filter(p->client, NULL, NULL);
    }
}

static int setup_with(void **state, const char *listen)
{
    E = tu_pair_new(state, listen);
    E->must_end_closed = 1;
    E->on_teardown = remove_filters;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "dtls:127.0.0.1:0");
}

static int setup_any4(void **state)
{
    return setup_with(state, "dtls:0.0.0.0:0");
}

static int all_closed(void *arg)
{
    (void)arg;
    return tu_pair_all_closed(E);
}

static void close_everything(void)
{
    tu_pair_close_client(E, 5);
    tu_run_pred(E->loop, all_closed, NULL, 5, "all flows closed");
}

/* ---- receiving: a burst with large datagrams in the middle of batches ---- */

#define BURST 100

typedef struct seen {
    unsigned n;
    size_t len[BURST + 1];
    uint32_t crc[BURST + 1];
} seen;

/* Records what the listener read, in order; passes nothing on. */
static void record_filter(void *user, int fd, const uint8_t *dg, size_t len,
                          const struct sockaddr *from, socklen_t from_len,
                          siptls__dtls_test_emit emit, void *emit_ctx)
{
    (void)fd;
    (void)from;
    (void)from_len;
    (void)emit;
    (void)emit_ctx;
    seen *s = user;
    if (s->n <= BURST) {
        s->len[s->n] = len;
        s->crc[s->n] = tu_crc32(dg, len);
    }
    s->n++;
}

static int seen_all(void *arg)
{
    return ((seen *)arg)->n >= BURST;
}

static size_t burst_size(unsigned i)
{
    switch (i) {
    case 5:
        return 2048; /* exactly the compact slot */
    case 6:
        return 2049; /* one byte into the overflow area */
    case 40:
        return 40000; /* in the middle of the second batch of 32 */
    case 41:
        return 65507; /* the largest UDP/IPv4 datagram, right after it */
    case 63:
        return 20000; /* the last of a batch */
    case 64:
        return 1; /* the first of the next */
    default:
        return 20 + (i * 211u) % 1400;
    }
}

/* BURST datagrams are waiting in the listener's socket before the loop
 * runs, so recvmmsg() takes them in batches with large ones among small
 * ones: each must arrive whole, once, in order. A batch of slots alone
 * would cut the 40 KB and 64 KB ones. */
static void test_rx_burst_with_large_datagrams(void **state)
{
    (void)state;
    tu_pair_start_server(E);
    static seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(siptls__dtls_test_set_filter(E->server, record_filter, &s), SIPTLS_OK);
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)siptls_listener_port(E->server, 0));
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    int big = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    uint8_t *buf = malloc(65507);
    assert_non_null(buf);
    uint32_t crc[BURST];
    for (unsigned i = 0; i < BURST; i++) {
        size_t n = burst_size(i);
        for (size_t k = 0; k < n; k++) {
            buf[k] = (uint8_t)(i * 31u + k * 7u + (k >> 8));
        }
        buf[0] = 0xFF; /* neither DTLS nor STUN */
        crc[i] = tu_crc32(buf, n);
        assert_int_equal(sendto(fd, buf, n, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)n);
    }
    free(buf);
    tu_run_pred(E->loop, seen_all, &s, 10, "every datagram of the burst read");
    tu_run_for(E->loop, 0.05); /* nothing more may come */
    close(fd);
    assert_int_equal(s.n, BURST);
    for (unsigned i = 0; i < BURST; i++) {
        assert_int_equal(s.len[i], burst_size(i));
        assert_int_equal(s.crc[i], crc[i]);
    }
    siptls__dtls_test_set_filter(E->server, NULL, NULL);
}

/* ---- sending: many replies in one wakeup, in order ------------------------ */

#define REQS 300

typedef struct order {
    unsigned next_req; /* server: the seq the next request must have */
    unsigned next_resp;
    unsigned bad_req, bad_resp;
    unsigned dgrams; /* application-data datagrams the client read */
} order;

static order O;

static unsigned call_id_seq(const siptls_msg *m)
{
    const uint8_t *v;
    size_t vl;
    if (siptls_sipmsg_header(m->data, m->header_len, "Call-ID", 'i', &v, &vl) != SIPTLS_OK) {
        return ~0u;
    }
    return (unsigned)strtoul((const char *)v, NULL, 10);
}

/* Server: answer each request with its Call-ID (a small reply). */
static void answer_with_seq(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    unsigned seq = call_id_seq(m);
    unsigned *next = r->hook_data;
    if (next != NULL) {
        if (seq != next[0]) {
            O.bad_req++;
        }
        next[0] = seq + 1;
    }
    char resp[160];
    int n = snprintf(
        resp, sizeof(resp),
        "SIP/2.0 200 OK\r\nCall-ID: %u\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", seq);
    assert_int_equal(siptls_send(r->engine, flow, (const uint8_t *)resp, (size_t)n), SIPTLS_OK);
}

static void check_resp_order(tu_rec *r, siptls_flow_id flow, const siptls_msg *m)
{
    (void)r;
    (void)flow;
    if (call_id_seq(m) != O.next_resp) {
        O.bad_resp++;
    }
    O.next_resp = call_id_seq(m) + 1;
}

static void count_appdata(void *user, int fd, const uint8_t *dg, size_t len,
                          const struct sockaddr *from, socklen_t from_len,
                          siptls__dtls_test_emit emit, void *emit_ctx)
{
    (void)user;
    (void)fd;
    /* application_data (DTLS 1.2) or a DTLS 1.3 ciphertext record (its
     * unified header: the content type is encrypted) */
    if (len > 0 && (dg[0] == 23 || (dg[0] & SIPTLS__DTLS_UH_MASK) == SIPTLS__DTLS_UH_FIXED)) {
        O.dgrams++;
    }
    emit(emit_ctx, dg, len, from, from_len);
}

static int got_replies(void *arg)
{
    return E->crec.n_msgs >= *(const unsigned *)arg;
}

/* Send `n` requests on `flow` from outside any callback (the engine must
 * still flush at the end of that work: nothing else wakes it), every
 * seventh one larger than a record (split). */
static void send_burst(siptls_flow_id flow, unsigned first, unsigned n)
{
    for (unsigned i = first; i < first + n; i++) {
        size_t sz = i % 7 == 3 ? 3000 : 400;
        uint8_t *m = tu_make_request(sz, i, "DTLS");
        assert_int_equal(siptls_send(E->client, flow, m, sz), SIPTLS_OK);
        free(m);
    }
}

static int client_ups_above(void *arg)
{
    return E->crec.ups > *(const unsigned *)arg;
}

static siptls_flow_id connect_up(const char *host)
{
    siptls_flow_id f = 0;
    unsigned ups = E->crec.ups;
    assert_int_equal(siptls_connect(E->client, tu_uri(E->server, 0, "dtls", host), &f), SIPTLS_OK);
    tu_run_pred(E->loop, client_ups_above, &ups, 10, "the flow up");
    return f;
}

/* Both engines: `key` = `value` (NULL key: nothing). */
static void set_both(const char *key, const char *value)
{
    if (key != NULL) {
        assert_int_equal(siptls_config_set(&E->scfg, key, value, NULL), SIPTLS_OK);
        assert_int_equal(siptls_config_set(&E->ccfg, key, value, NULL), SIPTLS_OK);
    }
}

/* want_version: the DTLS version the flow must have negotiated. */
static void burst_in_order(unsigned tx_fail, const char *want_version)
{
    E->ccfg.tls_async_max_postponed_chunks = 2 * REQS;
    E->scfg.tls_async_max_postponed_chunks = 2 * REQS;
    tu_pair_start(E);
    memset(&O, 0, sizeof(O));
    static unsigned next_req;
    next_req = 0;
    E->srec.on_msg = answer_with_seq;
    E->srec.hook_data = &next_req;
    E->crec.on_msg = check_resp_order;
    siptls_flow_id f = connect_up("127.0.0.1");
    siptls_flow_info info;
    assert_int_equal(siptls_flow_get_info(E->client, f, &info), SIPTLS_OK);
    assert_string_equal(info.tls_version, want_version);
    assert_int_equal(siptls__dtls_test_set_filter(E->client, count_appdata, NULL), SIPTLS_OK);
    if (tx_fail != 0) {
        /* the server's socket "is full" for its next tx_fail flushes:
         * replies wait in its queue, then in wolfSSL (WANT_WRITE), and
         * leave in order from the retry timers */
        assert_int_equal(siptls__dtls_test_tx_fail(E->server, tx_fail), SIPTLS_OK);
    }
    send_burst(f, 0, REQS);
    unsigned want = REQS;
    tu_run_pred(E->loop, got_replies, &want, 20, "every reply");
    tu_run_for(E->loop, 0.05);
    assert_int_equal(E->srec.n_msgs, REQS);
    assert_int_equal(E->crec.n_msgs, REQS);
    assert_int_equal(O.bad_req, 0);
    assert_int_equal(O.bad_resp, 0);
    /* whole replies to one peer share datagrams (dtls_mtu 1200: two or
     * three of these per datagram), on DTLS 1.3 too (with and without a
     * Connection ID on the records) */
    assert_true(O.dgrams < REQS * 3 / 4);
    siptls_stats st = tu_stats(E->client);
    assert_int_equal(st.dtls_bad_records, 0);
    siptls__dtls_test_set_filter(E->client, NULL, NULL);
    close_everything();
}

/* REQS requests (small and split ones) queued at once: the server reads
 * them in batches, answers all of them in the same wakeups; requests and
 * replies arrive each exactly once and in order. */
#ifdef WOLFSSL_DTLS13
#define DEFAULT_VERSION "DTLSv1.3"
#else
#define DEFAULT_VERSION "DTLSv1.2"
#endif
static void test_burst_in_order(void **state)
{
    (void)state;
    burst_in_order(0, DEFAULT_VERSION);
}

/* The same on DTLS 1.2 (the default is 1.3 where wolfSSL has it). */
static void test_burst_in_order_dtls12(void **state)
{
    (void)state;
    set_both("dtls_max_version", "1.2");
    burst_in_order(0, "DTLSv1.2");
}

/* The same without Connection IDs (on DTLS 1.3: records without a CID). */
static void test_burst_in_order_no_cid(void **state)
{
    (void)state;
    set_both("dtls_cid", "0");
    burst_in_order(0, DEFAULT_VERSION);
}

/* The same while the server's sends fail with EAGAIN for a while. */
static void test_burst_in_order_socket_full(void **state)
{
    (void)state;
    burst_in_order(40, DEFAULT_VERSION);
}

/* ---- a wildcard listener: the source address of each datagram ----------- */

/* One client, two flows to the same wildcard listener through two local
 * addresses, bursts on both at once: the server's batch mixes replies from
 * 127.0.0.2 and 127.0.0.3. The client's sockets are connected: a reply
 * from the wrong source address would be dropped by the kernel, and the
 * replies would never all arrive. */
static void test_wildcard_batch_source_addresses(void **state)
{
    (void)state;
    tu_set(&E->ccfg, "verify_cert", "[client:default]0"); /* the certificate names 127.0.0.1 */
    E->ccfg.tls_async_max_postponed_chunks = 2 * REQS;
    E->scfg.tls_async_max_postponed_chunks = 2 * REQS;
    tu_pair_start(E);
    E->srec.on_msg = answer_with_seq;
    siptls_flow_id f2 = connect_up("127.0.0.2");
    siptls_flow_id f3 = connect_up("127.0.0.3");
    for (unsigned i = 0; i < 60; i++) {
        send_burst(i % 2 ? f3 : f2, i, 1);
    }
    unsigned want = 60;
    tu_run_pred(E->loop, got_replies, &want, 20, "every reply through both addresses");
    unsigned per_flow[2] = {0, 0};
    for (unsigned i = 0; i < E->crec.n_msgs; i++) {
        per_flow[E->crec.msgs[i].flow == f3]++;
    }
    assert_int_equal(per_flow[0], 30);
    assert_int_equal(per_flow[1], 30);
    siptls_flow_info info;
    char want2[64], want3[64];
    snprintf(want2, sizeof(want2), "%s", tu_uri(E->server, 0, "x", "127.0.0.2") + 2);
    snprintf(want3, sizeof(want3), "%s", tu_uri(E->server, 0, "x", "127.0.0.3") + 2);
    for (unsigned k = 0; k < 2; k++) {
        assert_int_equal(siptls_flow_get_info(E->server, E->srec.up_ids[k], &info), SIPTLS_OK);
        assert_true(strcmp(info.local_text, want2) == 0 || strcmp(info.local_text, want3) == 0);
    }
    close_everything();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_rx_burst_with_large_datagrams, setup),
        TU_PAIR_TEST(test_burst_in_order, setup),
        TU_PAIR_TEST(test_burst_in_order_dtls12, setup),
        TU_PAIR_TEST(test_burst_in_order_no_cid, setup),
        TU_PAIR_TEST(test_burst_in_order_socket_full, setup),
        TU_PAIR_TEST(test_wildcard_batch_source_addresses, setup_any4),
    };
    if (getenv("SIPTLS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("SIPTLS_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
