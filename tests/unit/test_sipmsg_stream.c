/* Unit tests: stream framer (SIP over TLS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sipmsg/sipmsg_internal.h"
#include "sipmsg_vectors.h"

#define VEC_DIR SIPTLS_TEST_DIR "/vectors/stream"

/* Under AddressSanitizer, a huge allocation must return NULL (as libc's
 * does) instead of aborting: the allocation-failure test relies on it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static siptls_stream_framer *new_framer(const siptls_framer_limits *lim)
{
    siptls_stream_framer *f = NULL;
    assert_int_equal(siptls_stream_framer_new(&f, lim), SIPTLS_OK);
    assert_non_null(f);
    return f;
}

/* A feeding run: events collected, and each message checked against the
 * input bytes (the message must be the input slice after the keepalives). */
typedef struct run {
    siptls_stream_framer *f;
    const uint8_t *in;
    size_t in_len;
    size_t pos; /* input offset after the last delivered message */
    tv_events got;
    int failed;
} run;

static void run_init(run *r, const siptls_framer_limits *lim, const uint8_t *in, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->f = new_framer(lim);
    r->in = in;
    r->in_len = len;
}

static void run_drain(run *r)
{
    for (;;) {
        siptls_frame_event ev;
        int rc = siptls_stream_framer_next(r->f, &ev);
        if (rc == SIPTLS_AGAIN) {
            return;
        }
        if (rc != SIPTLS_OK) {
            tv_push(&r->got, tv_error(rc));
            r->failed = 1;
            /* Terminal: it stays. */
            assert_int_equal(siptls_stream_framer_next(r->f, &ev), rc);
            return;
        }
        if (ev.kind == SIPTLS_FRAME_MESSAGE) {
            assert_non_null(ev.data);
            assert_true(ev.header_len <= ev.len);
            assert_ptr_equal(ev.body, ev.data + ev.header_len);
            assert_int_equal(ev.body_len, ev.len - ev.header_len);
            while (r->pos < r->in_len && (r->in[r->pos] == '\r' || r->in[r->pos] == '\n')) {
                r->pos++;
            }
            assert_true(r->pos + ev.len <= r->in_len);
            assert_memory_equal(ev.data, r->in + r->pos, ev.len);
            r->pos += ev.len;
        } else {
            assert_null(ev.data);
            assert_int_equal(ev.len, 0);
        }
        tv_push(&r->got, tv_from_frame(&ev));
    }
}

static void run_feed(run *r, const uint8_t *p, size_t n)
{
    if (r->failed) {
        return;
    }
    int rc = siptls_stream_framer_feed(r->f, p, n);
    if (rc != SIPTLS_OK) {
        tv_push(&r->got, tv_error(rc));
        r->failed = 1;
        return;
    }
    run_drain(r);
}

static void run_finish(run *r)
{
    if (!r->failed && siptls_stream_framer_pending(r->f, NULL)) {
        tv_event x = {0};
        x.kind = 'P';
        tv_push(&r->got, x);
    }
    siptls_stream_framer_free(r->f);
    r->f = NULL;
}

static void check_run(const char *name, const char *mode, size_t split, const tv_events *want,
                      run *r)
{
    char why[256];
    if (!tv_events_equal(want, &r->got, why, sizeof(why))) {
        fail_msg("%s (%s, split %zu): %s", name, mode, split, why);
    }
    tv_free(&r->got);
}

/* Build a request whose header block is exactly `hl` bytes and whose body
 * is `bl` bytes into out (at least hl + bl bytes). Returns hl + bl. */
static size_t build_msg(uint8_t *out, size_t hl, size_t bl)
{
    char head[96];
    int n = snprintf(head, sizeof(head),
                     "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: %zu\r\nX-Pad: ", bl);
    assert_true(n > 0 && (size_t)n + 4 <= hl);
    memcpy(out, head, (size_t)n);
    memset(out + n, 'p', hl - (size_t)n - 4);
    memcpy(out + hl - 4, "\r\n\r\n", 4);
    memset(out + hl, 'b', bl);
    return hl + bl;
}

static const char OPTIONS_MSG[] =
    "OPTIONS sips:carol@chicago.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TLS pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sips:carol@chicago.example.com>\r\n"
    "From: Alice <sips:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 63104 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n";

static const char INVITE_MSG[] =
    "INVITE sips:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TLS pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
    "To: Bob <sips:bob@biloxi.example.com>\r\n"
    "From: Alice <sips:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 43\r\n\r\n"
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n";

#define U8(s) ((const uint8_t *)(s))

/* Feed `len` bytes of msg in `nchunks` chunks (end_chunk after each, at
 * now0 + i * step ms), draining before and after end_chunk. Returns the
 * number of messages delivered, or the error status. */
static int feed_in_chunks_order(siptls_stream_framer *f, const uint8_t *msg, size_t len,
                                unsigned nchunks, uint64_t now0, uint64_t step, int mark_first)
{
    int delivered = 0;
    size_t off = 0;
    for (unsigned i = 0; i < nchunks; i++) {
        size_t piece = (i + 1 == nchunks) ? len - off : len / nchunks;
        int rc = siptls_stream_framer_feed(f, msg + off, piece);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        off += piece;
        siptls_frame_event ev;
        if (mark_first) {
            /* Like a transport that reads everything, marks the chunk, then
             * delivers. */
            siptls_stream_framer_end_chunk(f, now0 + i * step);
        }
        for (int pass = 0; pass < 2; pass++) {
            while ((rc = siptls_stream_framer_next(f, &ev)) == SIPTLS_OK) {
                if (ev.kind == SIPTLS_FRAME_MESSAGE) {
                    delivered++;
                }
            }
            if (rc != SIPTLS_AGAIN) {
                return rc;
            }
            if (pass == 0 && !mark_first) {
                siptls_stream_framer_end_chunk(f, now0 + i * step);
            }
        }
    }
    return delivered;
}

/* Run with fresh framers in both orders (drain then end_chunk, and
 * end_chunk then drain); they must agree. Returns the common result. */
static int chunked(const siptls_framer_limits *lim, const uint8_t *msg, size_t len,
                   unsigned nchunks, uint64_t now0, uint64_t step)
{
    int r[2];
    for (int order = 0; order < 2; order++) {
        siptls_stream_framer *f = new_framer(lim);
        r[order] = feed_in_chunks_order(f, msg, len, nchunks, now0, step, order);
        siptls_stream_framer_free(f);
    }
    assert_int_equal(r[0], r[1]);
    return r[0];
}

/* ------------------------------------------------------------------------ */
/* Vectors: every file run whole, byte by byte and split in two everywhere   */
/* ------------------------------------------------------------------------ */

static void test_vectors(void **state)
{
    (void)state;
    size_t count = 0;
    char **names = tv_list(VEC_DIR, &count);
    assert_non_null(names);
    assert_true(count >= 40);
    for (size_t i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", VEC_DIR, names[i]);
        size_t len = 0;
        uint8_t *data = tv_read_file(path, &len);
        assert_non_null(data);
        size_t nl = strlen(path);
        snprintf(path + nl - 4, sizeof(path) - (nl - 4), ".expect");
        tv_events want = {0};
        if (tv_load_expect(path, &want) != 0) {
            fail_msg("cannot read %s", path);
        }
        /* Naming convention: err_<STATUS>_* ends in that error. */
        if (strncmp(names[i], "err_", 4) == 0) {
            assert_true(want.n > 0);
            const tv_event *last = &want.v[want.n - 1];
            assert_int_equal(last->kind, 'E');
            char expect_name[64];
            snprintf(expect_name, sizeof(expect_name), "err_%s_",
                     siptls_status_name(last->status) + 11);
            if (strncmp(names[i], expect_name, strlen(expect_name)) != 0) {
                fail_msg("%s: name does not match its error %s", names[i], expect_name);
            }
        }

        run r;
        /* Whole. */
        run_init(&r, NULL, data, len);
        run_feed(&r, data, len);
        run_finish(&r);
        check_run(names[i], "whole", 0, &want, &r);

        /* Byte by byte. */
        run_init(&r, NULL, data, len);
        for (size_t k = 0; k < len; k++) {
            run_feed(&r, data + k, 1);
        }
        run_finish(&r);
        check_run(names[i], "bytewise", 0, &want, &r);

        /* Split in two at every offset (sampled for the large vectors). */
        size_t stride = len <= 4096 ? 1 : len / 1024;
        for (size_t s = 0; s <= len; s += (s < 64 || s + 64 > len) ? 1 : stride) {
            run_init(&r, NULL, data, len);
            run_feed(&r, data, s);
            run_feed(&r, data + s, len - s);
            run_finish(&r);
            check_run(names[i], "split", s, &want, &r);
        }
        tv_free(&want);
        free(data);
        free(names[i]);
    }
    free(names);
}

/* ------------------------------------------------------------------------ */
/* API basics                                                               */
/* ------------------------------------------------------------------------ */

static void test_new_and_limits(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    assert_int_equal(lim.max_msg_size, 65535);
    assert_int_equal(lim.max_header_size, 16384);
    assert_int_equal(lim.max_chunks, 4);
    assert_int_equal(lim.max_msg_time_ms, 4000);
    assert_int_equal(lim.crlf_drop, 0);
    siptls_framer_limits_init(NULL);

    siptls_stream_framer *f = NULL;
    assert_int_equal(siptls_stream_framer_new(NULL, NULL), SIPTLS_ERR_INVAL);
    lim.max_msg_size = 0;
    assert_int_equal(siptls_stream_framer_new(&f, &lim), SIPTLS_ERR_INVAL);
    assert_null(f);
    siptls_framer_limits_init(&lim);
    lim.max_header_size = 0;
    assert_int_equal(siptls_stream_framer_new(&f, &lim), SIPTLS_ERR_INVAL);
    lim.max_header_size = SIZE_MAX;
    assert_int_equal(siptls_stream_framer_new(&f, &lim), SIPTLS_ERR_INVAL);

    f = new_framer(NULL);
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_next(NULL, &ev), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_stream_framer_next(f, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_stream_framer_feed(NULL, U8("x"), 1), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_stream_framer_feed(f, NULL, 1), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_stream_framer_feed(f, NULL, 0), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_pending(f, NULL), 0);
    assert_int_equal(siptls_stream_framer_pending(NULL, NULL), 0);
    siptls_stream_framer_end_chunk(NULL, 0);
    siptls_stream_framer_commit(NULL, 1);
    siptls_stream_framer_trim(NULL);
    assert_int_equal(siptls_stream_framer_memory(NULL), 0);
    siptls_stream_framer_free(f);
    siptls_stream_framer_free(NULL);
}

static void test_lazy_buffer_and_trim(void **state)
{
    (void)state;
    siptls_stream_framer *f = new_framer(NULL);
    size_t base = siptls_stream_framer_memory(f);
    assert_int_equal(siptls__stream_framer_capacity(f), 0); /* nothing allocated yet */

    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), 100), SIPTLS_OK);
    assert_true(siptls__stream_framer_capacity(f) > 0);
    assert_true(siptls_stream_framer_memory(f) > base);
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_pending(f, NULL), 1);
    siptls_stream_framer_trim(f); /* bytes pending: no-op */
    assert_true(siptls__stream_framer_capacity(f) > 0);

    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG) + 100, strlen(OPTIONS_MSG) - 100),
                     SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, strlen(OPTIONS_MSG));
    assert_int_equal(siptls_stream_framer_pending(f, NULL), 0);
    siptls_stream_framer_trim(f);
    assert_int_equal(siptls__stream_framer_capacity(f), 0);
    assert_int_equal(siptls_stream_framer_memory(f), base);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);

    /* Usable again after trim. */
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), strlen(OPTIONS_MSG)), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);

    /* A held lone CRLF is not a message in progress, but trim keeps it. */
    assert_int_equal(siptls_stream_framer_feed(f, U8("\r\n"), 2), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_pending(f, NULL), 0);
    siptls_stream_framer_trim(f);
    assert_true(siptls__stream_framer_capacity(f) > 0);
    siptls_stream_framer_free(f);
}

static void test_zero_copy_slices(void **state)
{
    (void)state;
    siptls_stream_framer *f = new_framer(NULL);
    char two[1024];
    snprintf(two, sizeof(two), "%s%s", OPTIONS_MSG, INVITE_MSG);
    assert_int_equal(siptls_stream_framer_feed(f, U8(two), strlen(two)), SIPTLS_OK);
    siptls_frame_event a, b;
    assert_int_equal(siptls_stream_framer_next(f, &a), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &b), SIPTLS_OK);
    /* Both slices of one buffer, back to back; a is still valid after
     * next() returned b. */
    assert_ptr_equal(b.data, a.data + a.len);
    assert_memory_equal(a.data, OPTIONS_MSG, strlen(OPTIONS_MSG));
    assert_memory_equal(b.data, INVITE_MSG, strlen(INVITE_MSG));
    assert_int_equal(b.body_len, 43);
    assert_memory_equal(b.body, "v=0\r\n", 5);
    assert_int_equal(siptls_stream_framer_next(f, &a), SIPTLS_AGAIN);
    siptls_stream_framer_free(f);
}

static void test_body_split_across_feeds(void **state)
{
    (void)state;
    siptls_stream_framer *f = new_framer(NULL);
    size_t len = strlen(INVITE_MSG);
    size_t hdr_end = (size_t)(strstr(INVITE_MSG, "\r\n\r\n") - INVITE_MSG) + 4;
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG), hdr_end + 10), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG) + hdr_end + 10, 20), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(
        siptls_stream_framer_feed(f, U8(INVITE_MSG) + hdr_end + 30, len - hdr_end - 30), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, len);
    assert_int_equal(ev.header_len, hdr_end);
    assert_int_equal(ev.body_len, 43);
    siptls_stream_framer_free(f);
}

static void test_errors_are_terminal(void **state)
{
    (void)state;
    siptls_stream_framer *f = new_framer(NULL);
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_feed(f, U8("HELLO\r\n"), 7), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_GARBAGE);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_GARBAGE);
    /* Bytes after an error are refused, even a valid message. */
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), strlen(OPTIONS_MSG)),
                     SIPTLS_ERR_FRAME_GARBAGE);
    uint8_t *p = NULL;
    size_t avail = 99;
    assert_int_equal(siptls_stream_framer_reserve(f, 100, &p, &avail), SIPTLS_ERR_FRAME_GARBAGE);
    assert_null(p);
    assert_int_equal(avail, 0);
    siptls_stream_framer_commit(f, 10);
    siptls_stream_framer_end_chunk(f, 1);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_GARBAGE);
    siptls_stream_framer_free(f);
}

/* ------------------------------------------------------------------------ */
/* Size limits at limit-1, limit, limit+1                                   */
/* ------------------------------------------------------------------------ */

/* Feed msg whole or byte by byte; returns 1 when delivered, else status. */
static int deliver(const siptls_framer_limits *lim, const uint8_t *msg, size_t len, int bytewise)
{
    siptls_stream_framer *f = new_framer(lim);
    siptls_frame_event ev;
    int result = SIPTLS_AGAIN;
    size_t step = bytewise ? 1 : len;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        int rc = siptls_stream_framer_feed(f, msg + off, n);
        if (rc != SIPTLS_OK) {
            result = rc;
            break;
        }
        rc = siptls_stream_framer_next(f, &ev);
        if (rc == SIPTLS_OK) {
            assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
            assert_int_equal(ev.len, len);
            assert_int_equal(off + n, len); /* not before the last byte */
            result = 1;
            break;
        }
        if (rc != SIPTLS_AGAIN) {
            result = rc;
            break;
        }
    }
    siptls_stream_framer_free(f);
    return result;
}

static void test_max_msg_size(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = 1000;
    lim.max_header_size = 400;
    uint8_t buf[2048];
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 200, 799), bytewise), 1);
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 200, 800), bytewise), 1);
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 200, 801), bytewise),
                         SIPTLS_ERR_FRAME_TOO_BIG);
        /* Header block alone at the limit, empty body. */
        lim.max_header_size = 2000;
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 1000, 0), bytewise), 1);
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 1001, 0), bytewise),
                         SIPTLS_ERR_FRAME_TOO_BIG);
        lim.max_header_size = 400;
    }
    /* Defaults: 65535 total. */
    siptls_framer_limits_init(&lim);
    static uint8_t big[70000];
    assert_int_equal(deliver(&lim, big, build_msg(big, 300, 65235 - 1), 0), 1);
    assert_int_equal(deliver(&lim, big, build_msg(big, 300, 65235), 0), 1);
    assert_int_equal(deliver(&lim, big, build_msg(big, 300, 65236), 0), SIPTLS_ERR_FRAME_TOO_BIG);
}

static void test_max_header_size(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_header_size = 500;
    uint8_t buf[2048];
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 499, 10), bytewise), 1);
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 500, 10), bytewise), 1);
        assert_int_equal(deliver(&lim, buf, build_msg(buf, 501, 10), bytewise),
                         SIPTLS_ERR_FRAME_HDR_TOO_BIG);
    }
    /* Defaults: 16384. */
    siptls_framer_limits_init(&lim);
    static uint8_t big[20000];
    assert_int_equal(deliver(&lim, big, build_msg(big, 16383, 0), 0), 1);
    assert_int_equal(deliver(&lim, big, build_msg(big, 16384, 0), 0), 1);
    assert_int_equal(deliver(&lim, big, build_msg(big, 16385, 0), 0), SIPTLS_ERR_FRAME_HDR_TOO_BIG);

    /* The failure is reported as soon as max_header_size bytes hold no
     * empty line, not later. */
    lim.max_header_size = 500;
    siptls_stream_framer *f = new_framer(&lim);
    build_msg(buf, 600, 0);
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_feed(f, buf, 499), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_feed(f, buf + 499, 1), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_HDR_TOO_BIG);
    siptls_stream_framer_free(f);
}

static void test_feed_hold_limit(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = 1000;
    lim.max_header_size = 500;
    /* Hold limit: 1500 undelivered bytes. A caller that does not drain. */
    static const char crlf[] = "\r\n";
    uint8_t data[1502];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)crlf[i % 2];
    }
    siptls_stream_framer *f = new_framer(&lim);
    assert_int_equal(siptls_stream_framer_feed(f, data, 1499), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_feed(f, data, 1), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_feed(f, data, 1), SIPTLS_ERR_FRAME_TOO_BIG);
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_TOO_BIG);
    siptls_stream_framer_free(f);

    f = new_framer(&lim);
    assert_int_equal(siptls_stream_framer_feed(f, data, 1501), SIPTLS_ERR_FRAME_TOO_BIG);
    siptls_stream_framer_free(f);

    /* Draining between feeds: no limit on the total. */
    f = new_framer(&lim);
    size_t pings = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(siptls_stream_framer_feed(f, data, 1500), SIPTLS_OK);
        while (siptls_stream_framer_next(f, &ev) == SIPTLS_OK) {
            assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
            pings++;
        }
    }
    assert_int_equal(pings, 100 * 375);
    siptls_stream_framer_free(f);
}

static void test_reserve_commit(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = 1000;
    lim.max_header_size = 500;
    siptls_stream_framer *f = new_framer(&lim);
    uint8_t *p = NULL;
    size_t avail = 0;
    assert_int_equal(siptls_stream_framer_reserve(NULL, 1, &p, &avail), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_stream_framer_reserve(f, 1, NULL, &avail), SIPTLS_ERR_INVAL);

    /* Decrypt straight into the buffer, in two pieces. */
    size_t len = strlen(INVITE_MSG);
    assert_int_equal(siptls_stream_framer_reserve(f, 100, &p, &avail), SIPTLS_OK);
    assert_non_null(p);
    assert_true(avail >= 100 && avail <= 1500);
    memcpy(p, INVITE_MSG, 100);
    siptls_stream_framer_commit(f, 100);
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_reserve(f, len - 100, &p, &avail), SIPTLS_OK);
    assert_true(avail >= len - 100);
    memcpy(p, INVITE_MSG + 100, len - 100);
    siptls_stream_framer_commit(f, len - 100);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, len);
    assert_memory_equal(ev.data, INVITE_MSG, len);

    /* want 0 on an empty framer still offers an area. */
    siptls_stream_framer_trim(f);
    assert_int_equal(siptls_stream_framer_reserve(f, 0, &p, &avail), SIPTLS_OK);
    assert_true(avail > 0);

    /* Never more than the hold limit (1500) undelivered bytes. */
    assert_int_equal(siptls_stream_framer_reserve(f, 5000, &p, &avail), SIPTLS_OK);
    assert_int_equal(avail, 1500);
    memset(p, '\n', 1500);
    siptls_stream_framer_commit(f, 1500);
    assert_int_equal(siptls_stream_framer_reserve(f, 10, &p, &avail), SIPTLS_OK);
    assert_int_equal(avail, 0);
    /* Over-commit is clamped, not an overrun. */
    siptls_stream_framer_commit(f, 100000);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
    assert_int_equal(siptls_stream_framer_reserve(f, 10, &p, &avail), SIPTLS_OK);
    assert_int_equal(avail, 2);
    siptls_stream_framer_free(f);
}

/* ------------------------------------------------------------------------ */
/* Chunk policy and time                                                    */
/* ------------------------------------------------------------------------ */

static void test_chunks_limit(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_time_ms = 0;
    size_t len = strlen(INVITE_MSG);
    for (unsigned max = 1; max <= 6; max++) {
        lim.max_chunks = max;
        for (unsigned n = 1; n <= max + 1; n++) {
            int rc = chunked(&lim, U8(INVITE_MSG), len, n, 0, 1);
            if (n <= max) {
                assert_int_equal(rc, 1); /* limit-1 and limit: delivered */
            } else {
                assert_int_equal(rc, SIPTLS_ERR_FRAME_CHUNKS); /* limit+1 */
            }
        }
    }
    /* Defaults: 4 passes, 5 fails. */
    siptls_framer_limits_init(&lim);
    assert_int_equal(chunked(&lim, U8(INVITE_MSG), len, 4, 0, 1), 1);
    assert_int_equal(chunked(&lim, U8(INVITE_MSG), len, 5, 0, 1), SIPTLS_ERR_FRAME_CHUNKS);

    /* Several messages, the chunk cuts anywhere: each message is judged on
     * its own chunks. 3 messages over 7 chunks: none spans more than 3. */
    char three[2048];
    snprintf(three, sizeof(three), "%s%s%s", INVITE_MSG, OPTIONS_MSG, INVITE_MSG);
    lim.max_chunks = 3;
    assert_int_equal(chunked(&lim, U8(three), strlen(three), 7, 0, 1), 3);
    lim.max_chunks = 2;
    assert_int_equal(chunked(&lim, U8(three), strlen(three), 7, 0, 1), SIPTLS_ERR_FRAME_CHUNKS);

    /* 0 = no limit. */
    lim.max_chunks = 0;
    lim.max_msg_time_ms = 0;
    assert_int_equal(chunked(&lim, U8(INVITE_MSG), len, 200, 0, 1), 1);

    /* No end_chunk calls: no counting at all. */
    siptls_framer_limits_init(&lim);
    siptls_stream_framer *f = new_framer(&lim);
    siptls_frame_event ev;
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG) + i, 1), SIPTLS_OK);
        int rc = siptls_stream_framer_next(f, &ev);
        assert_int_equal(rc, i + 1 == len ? SIPTLS_OK : SIPTLS_AGAIN);
    }
    siptls_stream_framer_free(f);
}

/* Feed `msg` in pieces of the given sizes, one chunk each; returns 1 when
 * the message was delivered, else the error. */
static int fed_in_pieces(const siptls_framer_limits *lim, const uint8_t *msg, const size_t *sizes,
                         size_t n)
{
    siptls_stream_framer *f = new_framer(lim);
    siptls_frame_event ev;
    int rc = SIPTLS_AGAIN;
    size_t off = 0;
    for (size_t i = 0; i < n && rc == SIPTLS_AGAIN; i++) {
        assert_int_equal(siptls_stream_framer_feed(f, msg + off, sizes[i]), SIPTLS_OK);
        off += sizes[i];
        siptls_stream_framer_end_chunk(f, i + 1);
        rc = siptls_stream_framer_next(f, &ev);
    }
    siptls_stream_framer_free(f);
    return rc == SIPTLS_OK ? 1 : rc;
}

/* chunk_full_bytes: a chunk that brought a full record's worth of the
 * message is progress, not a chunk against the limit. A 49,432-byte
 * message written as its headers, then 16 KiB records, on a slow link (one
 * record per wakeup) passes with max_chunks 4; the same bytes dribbled in
 * pieces one byte short of a record do not; limit-1 / limit / limit+1. */
static void test_chunks_full_records(void **state)
{
    (void)state;
    size_t total = 49432, hdr = 200;
    uint8_t *m = malloc(total);
    /* header block of exactly `hdr` bytes, padded with a header */
    char head[512];
    int base = snprintf(head, sizeof(head),
                        "MESSAGE sip:b@example.org SIP/2.0\r\nCall-ID: big@a\r\nCSeq: 1 MESSAGE\r\n"
                        "Content-Length: %zu\r\nX-Pad: ",
                        total - hdr);
    memcpy(m, head, (size_t)base);
    memset(m + base, 'p', hdr - 4 - (size_t)base);
    memcpy(m + hdr - 4, "\r\n\r\n", 4);
    memset(m + hdr, 'b', total - hdr);
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_time_ms = 0;
    lim.max_chunks = 4;
    size_t rec[5] = {hdr, 16384, 16384, 16384, total - hdr - 3 * 16384};
    /* without the rule: headers + 3 records = 4 chunks, incomplete */
    assert_int_equal(fed_in_pieces(&lim, m, rec, 5), SIPTLS_ERR_FRAME_CHUNKS);
    lim.chunk_full_bytes = 16384;
    assert_int_equal(fed_in_pieces(&lim, m, rec, 5), 1);
    /* With a limit of 3: the full records still pass; pieces one byte
     * short of a record all count (three incomplete chunks fail). */
    lim.max_chunks = 3;
    assert_int_equal(fed_in_pieces(&lim, m, rec, 5), 1);
    size_t small[4] = {16383, 16383, 16383, total - 3 * 16383};
    assert_int_equal(fed_in_pieces(&lim, m, small, 4), SIPTLS_ERR_FRAME_CHUNKS);
    lim.max_chunks = 4;
    /* limit-1, limit, limit+1 small chunks around full ones */
    for (unsigned k = 2; k <= 4; k++) {
        size_t mixed[8];
        size_t at = 0, used = 0;
        for (unsigned i = 0; i + 1 < k; i++) {
            mixed[at++] = 100; /* small: counted */
            used += 100;
        }
        mixed[at++] = 16384; /* full: not counted */
        used += 16384;
        mixed[at++] = 16384;
        used += 16384;
        mixed[at++] = total - used;
        int rc = fed_in_pieces(&lim, m, mixed, at);
        /* k-1 small counted chunks; the messages spans k-1 + 2 uncounted */
        assert_int_equal(rc, k - 1 < 4 ? 1 : SIPTLS_ERR_FRAME_CHUNKS);
    }
    size_t five_small[6] = {100, 100, 100, 100, 16384, total - 16784};
    assert_int_equal(fed_in_pieces(&lim, m, five_small, 6), SIPTLS_ERR_FRAME_CHUNKS);
    size_t three_small[5] = {100, 100, 100, 16384, total - 16684};
    assert_int_equal(fed_in_pieces(&lim, m, three_small, 5), 1);
    free(m);
}

static void test_chunks_what_counts(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_chunks = 2;
    lim.max_msg_time_ms = 0;
    siptls_frame_event ev;
    size_t olen = strlen(OPTIONS_MSG);

    /* Keepalive-only chunks and chunks without bytes (timer calls) do not
     * count; the message then spans exactly 2 chunks. */
    siptls_stream_framer *f = new_framer(&lim);
    assert_int_equal(siptls_stream_framer_feed(f, U8("\r\n\r\n"), 4), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
    siptls_stream_framer_end_chunk(f, 1);
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), 10), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_end_chunk(f, 2);
    siptls_stream_framer_end_chunk(f, 3); /* no bytes: not a chunk */
    siptls_stream_framer_end_chunk(f, 4);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG) + 10, olen - 10), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
    siptls_stream_framer_end_chunk(f, 5);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_free(f);

    /* The first chunk of B is the one that completed A: B's first byte
     * arrived in it. So B over that chunk + 1 more passes, + 2 more fails. */
    for (int extra = 1; extra <= 2; extra++) {
        f = new_framer(&lim);
        char ab[1024];
        snprintf(ab, sizeof(ab), "%s%s", OPTIONS_MSG, OPTIONS_MSG);
        assert_int_equal(siptls_stream_framer_feed(f, U8(ab), olen + 5), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        siptls_stream_framer_end_chunk(f, 1);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        int rc = SIPTLS_AGAIN;
        size_t off = olen + 5;
        for (int k = 0; k < extra; k++) {
            size_t n = (k + 1 == extra) ? 2 * olen - off : 5;
            assert_int_equal(siptls_stream_framer_feed(f, U8(ab) + off, n), SIPTLS_OK);
            off += n;
            if (k + 1 < extra) {
                assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
                siptls_stream_framer_end_chunk(f, 2);
                rc = siptls_stream_framer_next(f, &ev);
                if (rc != SIPTLS_AGAIN) {
                    break;
                }
            } else {
                rc = siptls_stream_framer_next(f, &ev);
            }
        }
        assert_int_equal(rc, extra == 1 ? SIPTLS_OK : SIPTLS_ERR_FRAME_CHUNKS);
        siptls_stream_framer_free(f);
    }

    /* A caller that calls end_chunk() before draining next() (read all,
     * mark the chunk, then deliver) gets the same verdicts: the message
     * below spans 3 chunks, the first one before next() ever saw it. */
    for (unsigned max = 2; max <= 3; max++) {
        lim.max_chunks = max;
        f = new_framer(&lim);
        assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), 10), SIPTLS_OK);
        siptls_stream_framer_end_chunk(f, 1);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG) + 10, 10), SIPTLS_OK);
        siptls_stream_framer_end_chunk(f, 2);
        int rc = siptls_stream_framer_next(f, &ev);
        if (max == 2) {
            assert_int_equal(rc, SIPTLS_ERR_FRAME_CHUNKS);
        } else {
            assert_int_equal(rc, SIPTLS_AGAIN);
            assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG) + 20, olen - 20),
                             SIPTLS_OK);
            siptls_stream_framer_end_chunk(f, 3); /* ends with the message: not inside */
            assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
            assert_int_equal(ev.len, olen);
            assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        }
        siptls_stream_framer_free(f);
    }

    /* Not drained at all: a message completed and the chunk limit broken
     * before next() looked: the limit wins over delivery. */
    lim.max_chunks = 2;
    f = new_framer(&lim);
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), 10), SIPTLS_OK);
    siptls_stream_framer_end_chunk(f, 1);
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG) + 10, 10), SIPTLS_OK);
    siptls_stream_framer_end_chunk(f, 2);
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG) + 20, olen - 20), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_CHUNKS);
    siptls_stream_framer_free(f);

    /* More end_chunk() calls than marks are kept, never a next(): no crash,
     * the verdict comes at the next next(). */
    lim.max_chunks = 0;
    lim.max_msg_time_ms = 100;
    f = new_framer(&lim);
    for (uint64_t i = 0; i < 40; i++) {
        assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG) + i, 1), SIPTLS_OK);
        siptls_stream_framer_end_chunk(f, 1000 + i * 10);
    }
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_TIMEOUT);
    siptls_stream_framer_free(f);
}

static void test_msg_time(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_chunks = 0;
    lim.max_msg_time_ms = 1000;
    size_t len = strlen(INVITE_MSG);
    siptls_frame_event ev;
    const uint64_t t0 = 5000;
    uint64_t elapsed[3] = {999, 1000, 1001};
    for (int i = 0; i < 3; i++) {
        siptls_stream_framer *f = new_framer(&lim);
        uint64_t dl = 0;
        assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG), 50), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        assert_int_equal(siptls_stream_framer_pending(f, &dl), 1);
        assert_true(dl == UINT64_MAX); /* clock not started yet */
        siptls_stream_framer_end_chunk(f, t0);
        assert_int_equal(siptls_stream_framer_pending(f, &dl), 1);
        assert_true(dl == t0 + 1000);
        assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG) + 50, 50), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        siptls_stream_framer_end_chunk(f, t0 + elapsed[i]);
        int rc = siptls_stream_framer_next(f, &ev);
        if (elapsed[i] <= 1000) {
            assert_int_equal(rc, SIPTLS_AGAIN);
            assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG) + 100, len - 100),
                             SIPTLS_OK);
            assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
            assert_int_equal(siptls_stream_framer_pending(f, &dl), 0);
            assert_true(dl == UINT64_MAX);
        } else {
            assert_int_equal(rc, SIPTLS_ERR_FRAME_TIMEOUT);
        }
        siptls_stream_framer_free(f);
    }

    /* Timer-driven end_chunk with no new bytes checks the time. */
    siptls_stream_framer *f = new_framer(&lim);
    assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG), 50), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_end_chunk(f, t0);
    siptls_stream_framer_end_chunk(f, t0 + 1000);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_end_chunk(f, t0 + 1001);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_TIMEOUT);
    assert_int_equal(siptls_stream_framer_feed(f, U8("x"), 1), SIPTLS_ERR_FRAME_TIMEOUT);
    siptls_stream_framer_free(f);

    /* The clock restarts for each message; idle time does not count. */
    f = new_framer(&lim);
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), strlen(OPTIONS_MSG)), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    siptls_stream_framer_end_chunk(f, t0);
    assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG), 50), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_end_chunk(f, t0 + 100000);
    siptls_stream_framer_end_chunk(f, t0 + 101000);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    /* A clock going backwards is not a timeout. */
    siptls_stream_framer_end_chunk(f, 1);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_free(f);

    /* 0 = no limit. */
    lim.max_msg_time_ms = 0;
    f = new_framer(&lim);
    assert_int_equal(siptls_stream_framer_feed(f, U8(INVITE_MSG), 50), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_end_chunk(f, 0);
    siptls_stream_framer_end_chunk(f, UINT64_MAX);
    uint64_t dl = 0;
    assert_int_equal(siptls_stream_framer_pending(f, &dl), 1);
    assert_true(dl == UINT64_MAX);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_free(f);
}

/* ------------------------------------------------------------------------ */
/* Keepalives                                                               */
/* ------------------------------------------------------------------------ */

static void test_keepalive_pong_at_chunk_end(void **state)
{
    (void)state;
    siptls_frame_event ev;
    for (int drop = 0; drop < 2; drop++) {
        siptls_framer_limits lim;
        siptls_framer_limits_init(&lim);
        lim.crlf_drop = drop;
        siptls_stream_framer *f = new_framer(&lim);
        assert_int_equal(siptls_stream_framer_feed(f, U8("\r\n"), 2), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN); /* maybe a ping */
        siptls_stream_framer_end_chunk(f, 10);
        if (drop) {
            assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        } else {
            assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
            assert_int_equal(ev.kind, SIPTLS_FRAME_PONG);
            assert_null(ev.data);
            assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        }
        assert_int_equal(siptls_stream_framer_pending(f, NULL), 0);
        siptls_stream_framer_trim(f);
        assert_int_equal(siptls__stream_framer_capacity(f), 0);

        /* CRLF then a message: pong (or nothing) then the message. */
        char m[1024];
        snprintf(m, sizeof(m), "\r\n%s", OPTIONS_MSG);
        assert_int_equal(siptls_stream_framer_feed(f, U8(m), strlen(m)), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
        if (!drop) {
            assert_int_equal(ev.kind, SIPTLS_FRAME_PONG);
            assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
        }
        assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
        assert_int_equal(ev.len, strlen(OPTIONS_MSG));

        /* crlf_drop never drops a ping. */
        assert_int_equal(siptls_stream_framer_feed(f, U8("\r\n\r\n"), 4), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
        assert_int_equal(ev.kind, SIPTLS_FRAME_PING);

        /* A ping split over two feeds in one chunk is still a ping. */
        assert_int_equal(siptls_stream_framer_feed(f, U8("\r\n\r"), 3), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        assert_int_equal(siptls_stream_framer_feed(f, U8("\n"), 1), SIPTLS_OK);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
        assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
        siptls_stream_framer_free(f);
    }
}

static void test_crlf_flood(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    siptls_stream_framer *f = new_framer(&lim);
    uint8_t chunk[16384];
    for (size_t i = 0; i < sizeof(chunk); i += 2) {
        chunk[i] = '\r';
        chunk[i + 1] = '\n';
    }
    siptls_frame_event ev;
    size_t pings = 0;
    uint64_t scanned0 = siptls__stream_framer_scanned(f);
    for (int i = 0; i < 64; i++) { /* 1 MiB of CRLF */
        assert_int_equal(siptls_stream_framer_feed(f, chunk, sizeof(chunk)), SIPTLS_OK);
        int rc;
        while ((rc = siptls_stream_framer_next(f, &ev)) == SIPTLS_OK) {
            assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
            pings++;
        }
        assert_int_equal(rc, SIPTLS_AGAIN);
        siptls_stream_framer_end_chunk(f, (uint64_t)i);
        assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
        /* Memory stays at one read's worth. */
        assert_true(siptls__stream_framer_capacity(f) <= 2 * sizeof(chunk));
        assert_int_equal(siptls_stream_framer_pending(f, NULL), 0);
    }
    assert_int_equal(pings, 64 * sizeof(chunk) / 4);
    /* Each keepalive byte looked at once. */
    assert_true(siptls__stream_framer_scanned(f) - scanned0 <= 64 * sizeof(chunk));
    siptls_stream_framer_trim(f);
    assert_int_equal(siptls__stream_framer_capacity(f), 0);
    /* And a message after the flood is fine. */
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), strlen(OPTIONS_MSG)), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
    siptls_stream_framer_free(f);
}

/* ------------------------------------------------------------------------ */
/* Incremental: O(n) structurally                                           */
/* ------------------------------------------------------------------------ */

static size_t make_pipeline(uint8_t *out, size_t cap, size_t count)
{
    const char *msgs[2] = {OPTIONS_MSG, INVITE_MSG};
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        size_t l = strlen(msgs[i % 2]);
        assert_true(n + l <= cap);
        memcpy(out + n, msgs[i % 2], l);
        n += l;
    }
    return n;
}

static void test_bytewise_is_linear(void **state)
{
    (void)state;
    static uint8_t data[200 * 600];
    size_t len = make_pipeline(data, sizeof(data), 200);
    siptls_frame_event ev;

    siptls_stream_framer *whole = new_framer(NULL);
    assert_int_equal(siptls_stream_framer_feed(whole, data, len), SIPTLS_OK);
    size_t n_whole = 0;
    while (siptls_stream_framer_next(whole, &ev) == SIPTLS_OK) {
        n_whole++;
    }
    assert_int_equal(n_whole, 200);
    uint64_t scanned_whole = siptls__stream_framer_scanned(whole);
    siptls_stream_framer_free(whole);

    siptls_stream_framer *f = new_framer(NULL);
    size_t n_byte = 0;
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(siptls_stream_framer_feed(f, data + i, 1), SIPTLS_OK);
        while (siptls_stream_framer_next(f, &ev) == SIPTLS_OK) {
            n_byte++;
        }
    }
    assert_int_equal(n_byte, 200);
    uint64_t scanned_byte = siptls__stream_framer_scanned(f);
    uint64_t moved = siptls__stream_framer_moved(f);
    /* Each header byte is searched once and checked for NUL once: the
     * byte-by-byte run examines no more than the whole-buffer run, and both
     * at most 2 bytes per input byte. Rescanning would make this grow with
     * the square of the header size. */
    assert_true(scanned_byte <= scanned_whole);
    assert_true(scanned_whole <= 2 * (uint64_t)len);
    /* Compaction moves at most the bytes consumed. */
    assert_true(moved <= (uint64_t)len);
    assert_true(siptls__stream_framer_capacity(f) <= 8192);
    siptls_stream_framer_free(f);

    /* One big header block (16000 bytes) fed byte by byte: still linear. */
    static uint8_t big[16500];
    size_t blen = build_msg(big, 16000, 100);
    f = new_framer(NULL);
    for (size_t i = 0; i < blen; i++) {
        assert_int_equal(siptls_stream_framer_feed(f, big + i, 1), SIPTLS_OK);
        int rc = siptls_stream_framer_next(f, &ev);
        assert_int_equal(rc, i + 1 == blen ? SIPTLS_OK : SIPTLS_AGAIN);
    }
    assert_true(siptls__stream_framer_scanned(f) <= 2 * (uint64_t)blen);
    assert_true(siptls__stream_framer_moved(f) <= (uint64_t)blen);
    siptls_stream_framer_free(f);
}

static void test_buffer_compaction_bounded(void **state)
{
    (void)state;
    /* A long pipelined stream in 16 KiB reads: the buffer never exceeds two
     * reads, and moves only the partial message left at each read. */
    static uint8_t data[2000 * 600];
    size_t len = make_pipeline(data, sizeof(data), 2000);
    siptls_stream_framer *f = new_framer(NULL);
    siptls_frame_event ev;
    size_t msgs = 0;
    for (size_t off = 0; off < len; off += 16384) {
        size_t n = len - off < 16384 ? len - off : 16384;
        assert_int_equal(siptls_stream_framer_feed(f, data + off, n), SIPTLS_OK);
        while (siptls_stream_framer_next(f, &ev) == SIPTLS_OK) {
            msgs++;
        }
        assert_true(siptls__stream_framer_capacity(f) <= 32768);
    }
    assert_int_equal(msgs, 2000);
    assert_true(siptls__stream_framer_moved(f) <= (len / 16384 + 1) * 600);
    siptls_stream_framer_free(f);
}

static void test_buffer_growth_at_hold_limit(void **state)
{
    (void)state;
    /* Hold limit 10000. The buffer must grow to the limit and then drop the
     * consumed front to fit a feed, without losing held bytes. */
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = 8000;
    lim.max_header_size = 2000;
    static uint8_t data[12000];
    for (size_t i = 0; i < 100; i += 2) {
        data[i] = '\r';
        data[i + 1] = '\n';
    }
    size_t mlen = build_msg(data + 100, 200, 7800); /* 8000 bytes, at max_msg_size */
    size_t olen = strlen(OPTIONS_MSG);
    size_t total = 100 + mlen;
    size_t copies = 0;
    while (total + olen <= sizeof(data)) {
        memcpy(data + total, OPTIONS_MSG, olen);
        total += olen;
        copies++;
    }

    siptls_stream_framer *f = new_framer(&lim);
    siptls_frame_event ev;
    size_t pings = 0, msgs = 0;
    assert_int_equal(siptls_stream_framer_feed(f, data, 4100), SIPTLS_OK);
    while (siptls_stream_framer_next(f, &ev) == SIPTLS_OK) {
        assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
        pings++;
    }
    assert_int_equal(pings, 25);
    assert_int_equal(siptls__stream_framer_capacity(f), 8192);
    /* 100 consumed bytes in front, 4000 held: the next 5950 bytes need
     * 10050 > 10000 bytes of buffer unless the front goes. */
    assert_int_equal(siptls_stream_framer_feed(f, data + 4100, 5950), SIPTLS_OK);
    assert_int_equal(siptls__stream_framer_capacity(f), 10000);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            assert_true(total - 10050 < 2000);
            assert_int_equal(siptls_stream_framer_feed(f, data + 10050, total - 10050), SIPTLS_OK);
        }
        while (siptls_stream_framer_next(f, &ev) == SIPTLS_OK) {
            assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
            assert_int_equal(ev.len, msgs == 0 ? mlen : olen);
            assert_memory_equal(ev.data, msgs == 0 ? data + 100 : U8(OPTIONS_MSG), ev.len);
            msgs++;
        }
    }
    assert_int_equal(msgs, 1 + copies);
    siptls_stream_framer_free(f);
}

static void test_undrained_callers(void **state)
{
    (void)state;
    siptls_frame_event ev;
    /* pending() sees bytes that next() has not looked at yet. */
    siptls_stream_framer *f = new_framer(NULL);
    assert_int_equal(siptls_stream_framer_feed(f, U8("\r\n\r"), 3), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_pending(f, NULL), 0);
    assert_int_equal(siptls_stream_framer_feed(f, U8("\nOPT"), 4), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_pending(f, NULL), 1);
    siptls_stream_framer_free(f);

    /* end_chunk() before next(): an error in the new header bytes is found
     * there and reported by next(). */
    f = new_framer(NULL);
    assert_int_equal(siptls_stream_framer_feed(f, U8("OPTIONS sip:a SIP/2.0\r\n"), 23), SIPTLS_OK);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_stream_framer_feed(f, U8("l: x\r\n"), 6), SIPTLS_OK);
    siptls_stream_framer_end_chunk(f, 1);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_ERR_FRAME_BAD_CL);
    siptls_stream_framer_free(f);
}

static void test_allocation_failure(void **state)
{
    (void)state;
    /* Limits so large that growing the buffer to them must fail. */
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = SIZE_MAX / 4;
    lim.max_header_size = SIZE_MAX / 4;
    siptls_stream_framer *f = new_framer(&lim);
    uint8_t *p = NULL;
    size_t avail = 0;
    assert_int_equal(siptls_stream_framer_reserve(f, (size_t)1 << 60, &p, &avail),
                     SIPTLS_ERR_NOMEM);
    assert_null(p);
    assert_int_equal(avail, 0);
    /* Not terminal: the framer goes on. */
    assert_int_equal(siptls_stream_framer_feed(f, U8(OPTIONS_MSG), strlen(OPTIONS_MSG)), SIPTLS_OK);
    siptls_frame_event ev;
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, strlen(OPTIONS_MSG));
    assert_int_equal(siptls_stream_framer_reserve(f, (size_t)1 << 60, &p, &avail),
                     SIPTLS_ERR_NOMEM);
    assert_int_equal(siptls_stream_framer_next(f, &ev), SIPTLS_AGAIN);
    siptls_stream_framer_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_new_and_limits),
        cmocka_unit_test(test_lazy_buffer_and_trim),
        cmocka_unit_test(test_zero_copy_slices),
        cmocka_unit_test(test_body_split_across_feeds),
        cmocka_unit_test(test_errors_are_terminal),
        cmocka_unit_test(test_max_msg_size),
        cmocka_unit_test(test_max_header_size),
        cmocka_unit_test(test_feed_hold_limit),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_chunks_limit),
        cmocka_unit_test(test_chunks_what_counts),
        cmocka_unit_test(test_chunks_full_records),
        cmocka_unit_test(test_msg_time),
        cmocka_unit_test(test_keepalive_pong_at_chunk_end),
        cmocka_unit_test(test_crlf_flood),
        cmocka_unit_test(test_bytewise_is_linear),
        cmocka_unit_test(test_buffer_compaction_bounded),
        cmocka_unit_test(test_buffer_growth_at_hold_limit),
        cmocka_unit_test(test_undrained_callers),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
