/* Unit tests: datagram framer (SIP over DTLS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sipmsg/sipmsg_internal.h"
#include "sipmsg_vectors.h"

#define VEC_DIR SIPTLS_TEST_DIR "/vectors/dgram"
#define U8(s) ((const uint8_t *)(s))
#define UNK SIPTLS_DGRAM_SEQ_UNKNOWN

/* Under AddressSanitizer, a huge allocation must return NULL (as libc's
 * does) instead of aborting: the allocation-failure test relies on it. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static siptls_dgram_framer *new_framer(const siptls_framer_limits *lim)
{
    siptls_dgram_framer *d = NULL;
    assert_int_equal(siptls_dgram_framer_new(&d, lim), SIPTLS_OK);
    assert_non_null(d);
    return d;
}

static const char OPTIONS_MSG[] =
    "OPTIONS sips:carol@chicago.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/DTLS pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sips:carol@chicago.example.com>\r\n"
    "From: Alice <sips:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 63104 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n";

/* Build a request whose header block is exactly hl bytes, announcing cl
 * body bytes, followed by bl body bytes ('0'..'9' repeating). Returns the
 * record length hl + bl. */
static size_t build_msg(uint8_t *out, size_t hl, size_t cl, size_t bl, int with_cl)
{
    char head[96];
    int n;
    if (with_cl) {
        n = snprintf(head, sizeof(head),
                     "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: %zu\r\nX-Pad: ", cl);
    } else {
        n = snprintf(head, sizeof(head), "MESSAGE sip:a@b SIP/2.0\r\nX-Pad: ");
    }
    assert_true(n > 0 && (size_t)n + 4 <= hl);
    memcpy(out, head, (size_t)n);
    memset(out + n, 'p', hl - (size_t)n - 4);
    memcpy(out + hl - 4, "\r\n\r\n", 4);
    for (size_t i = 0; i < bl; i++) {
        out[hl + i] = (uint8_t)('0' + i % 10);
    }
    return hl + bl;
}

/* ------------------------------------------------------------------------ */

static void test_vectors(void **state)
{
    (void)state;
    size_t count = 0;
    char **names = tv_list(VEC_DIR, &count);
    assert_non_null(names);
    assert_true(count >= 15);
    for (size_t i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", VEC_DIR, names[i]);
        size_t len = 0;
        uint8_t *data = tv_read_file(path, &len);
        assert_non_null(data);
        size_t nl = strlen(path);
        snprintf(path + nl - 4, sizeof(path) - (nl - 4), ".expect");
        tv_events want = {0};
        assert_int_equal(tv_load_expect(path, &want), 0);
        assert_int_equal(want.n, 1);

        /* One record, seq known or not: same outcome. */
        for (int s = 0; s < 2; s++) {
            siptls_dgram_framer *d = new_framer(NULL);
            /* A copy of exactly len bytes: ASan catches a read past it. */
            uint8_t *rec = malloc(len ? len : 1);
            memcpy(rec, data, len);
            siptls_frame_event ev;
            int rc = siptls_dgram_framer_feed(d, rec, len, s ? 7 : UNK, 1000, &ev);
            tv_events got = {0};
            if (rc == SIPTLS_OK) {
                tv_push(&got, tv_from_frame(&ev));
                if (ev.kind == SIPTLS_FRAME_MESSAGE) {
                    /* Zero copy: the message is inside the record. */
                    assert_true(ev.data >= rec && ev.data + ev.len <= rec + len);
                    assert_ptr_equal(ev.body, ev.data + ev.header_len);
                }
            } else if (rc == SIPTLS_AGAIN) {
                tv_event x = {0};
                x.kind = 'A';
                tv_push(&got, x);
            } else {
                tv_push(&got, tv_error(rc));
            }
            char why[256];
            if (!tv_events_equal(&want, &got, why, sizeof(why))) {
                fail_msg("%s: %s", names[i], why);
            }
            tv_free(&got);
            free(rec);
            siptls_dgram_framer_free(d);
        }
        tv_free(&want);
        free(data);
        free(names[i]);
    }
    free(names);
}

static void test_api_basics(void **state)
{
    (void)state;
    siptls_dgram_framer *d = NULL;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    assert_int_equal(siptls_dgram_framer_new(NULL, NULL), SIPTLS_ERR_INVAL);
    lim.max_msg_size = 0;
    assert_int_equal(siptls_dgram_framer_new(&d, &lim), SIPTLS_ERR_INVAL);
    assert_null(d);
    d = new_framer(NULL);
    siptls_frame_event ev;
    assert_int_equal(siptls_dgram_framer_feed(NULL, U8("x"), 1, UNK, 0, &ev), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_dgram_framer_feed(d, U8("x"), 1, UNK, 0, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_dgram_framer_feed(d, NULL, 1, UNK, 0, &ev), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_dgram_framer_feed(d, NULL, 0, UNK, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_expire(NULL, 0), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_dgram_framer_expire(d, 0), SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_pending(NULL, NULL), 0);
    assert_int_equal(siptls_dgram_framer_dropped(NULL), 0);
    assert_int_equal(siptls_dgram_framer_memory(NULL), 0);
    uint64_t dl = 0;
    assert_int_equal(siptls_dgram_framer_pending(d, &dl), 0);
    assert_true(dl == UINT64_MAX);
    siptls_dgram_framer_free(d);
    siptls_dgram_framer_free(NULL);
}

static void test_whole_records(void **state)
{
    (void)state;
    siptls_dgram_framer *d = new_framer(NULL);
    size_t base = siptls_dgram_framer_memory(d);
    siptls_frame_event ev;
    size_t len = strlen(OPTIONS_MSG);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), len, seq, 0, &ev), SIPTLS_OK);
        assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
        assert_ptr_equal(ev.data, OPTIONS_MSG);
        assert_int_equal(ev.len, len);
        assert_int_equal(ev.header_len, len);
        assert_int_equal(ev.body_len, 0);
    }
    /* No buffer for whole records. */
    assert_int_equal(siptls_dgram_framer_memory(d), base);

    /* Content-Length absent: the body is the rest of the record. */
    uint8_t rec[512];
    size_t rl = build_msg(rec, 100, 0, 37, 0);
    assert_int_equal(siptls_dgram_framer_feed(d, rec, rl, 4, 0, &ev), SIPTLS_OK);
    assert_ptr_equal(ev.data, rec);
    assert_int_equal(ev.len, 137);
    assert_int_equal(ev.header_len, 100);
    assert_int_equal(ev.body_len, 37);
    assert_ptr_equal(ev.body, rec + 100);

    /* Bytes beyond Content-Length are discarded. */
    rl = build_msg(rec, 100, 10, 37, 1);
    assert_int_equal(siptls_dgram_framer_feed(d, rec, rl, 5, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 110);
    assert_int_equal(ev.body_len, 10);

    /* Leading CRLFs are skipped (zero copy still). */
    char m[1024];
    snprintf(m, sizeof(m), "\r\n\r\n%s", OPTIONS_MSG);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(m), strlen(m), 6, 0, &ev), SIPTLS_OK);
    assert_ptr_equal(ev.data, m + 4);
    assert_int_equal(ev.len, len);
    assert_int_equal(siptls_dgram_framer_dropped(d), 0);
    siptls_dgram_framer_free(d);
}

static void test_keepalives(void **state)
{
    (void)state;
    siptls_frame_event ev;
    for (int drop = 0; drop < 2; drop++) {
        siptls_framer_limits lim;
        siptls_framer_limits_init(&lim);
        lim.crlf_drop = drop;
        siptls_dgram_framer *d = new_framer(&lim);
        assert_int_equal(siptls_dgram_framer_feed(d, U8("\r\n\r\n"), 4, 1, 0, &ev), SIPTLS_OK);
        assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
        assert_null(ev.data);
        assert_int_equal(siptls_dgram_framer_feed(d, U8("\r\n\r\n\r\n\r\n"), 8, 2, 0, &ev),
                         SIPTLS_OK);
        assert_int_equal(ev.kind, SIPTLS_FRAME_PING); /* one record, one ping */
        assert_int_equal(siptls_dgram_framer_feed(d, U8("\n\n"), 2, 3, 0, &ev), SIPTLS_OK);
        assert_int_equal(ev.kind, SIPTLS_FRAME_PING);
        int rc = siptls_dgram_framer_feed(d, U8("\r\n"), 2, 4, 0, &ev);
        if (drop) {
            assert_int_equal(rc, SIPTLS_AGAIN);
        } else {
            assert_int_equal(rc, SIPTLS_OK);
            assert_int_equal(ev.kind, SIPTLS_FRAME_PONG);
        }
        rc = siptls_dgram_framer_feed(d, U8("\r\n\r"), 3, 5, 0, &ev);
        assert_int_equal(rc, drop ? SIPTLS_AGAIN : SIPTLS_OK);
        assert_int_equal(siptls_dgram_framer_feed(d, U8("\r"), 1, 6, 0, &ev),
                         SIPTLS_ERR_FRAME_GARBAGE);
        assert_int_equal(siptls_dgram_framer_feed(d, U8("\r\r\r"), 3, 7, 0, &ev),
                         SIPTLS_ERR_FRAME_GARBAGE);
        siptls_dgram_framer_free(d);
    }
}

static void test_errors_not_terminal(void **state)
{
    (void)state;
    siptls_dgram_framer *d = new_framer(NULL);
    siptls_frame_event ev;
    size_t len = strlen(OPTIONS_MSG);
    assert_int_equal(siptls_dgram_framer_feed(d, U8("garbage\r\n\r\n"), 11, 1, 0, &ev),
                     SIPTLS_ERR_FRAME_GARBAGE);
    assert_int_equal(siptls_dgram_framer_feed(d, U8("\x16\x03\x01"), 3, 2, 0, &ev),
                     SIPTLS_ERR_FRAME_GARBAGE);
    assert_int_equal(
        siptls_dgram_framer_feed(d, U8("OPTIONS sip:a SIP/2.0\r\nl: x\r\n\r\n"), 31, 3, 0, &ev),
        SIPTLS_ERR_FRAME_BAD_CL);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), len, 4, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
    /* A record that stops inside the header block. */
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), len - 2, 5, 0, &ev),
                     SIPTLS_ERR_FRAME_GARBAGE);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), len, 6, 0, &ev), SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_dropped(d), 0);
    siptls_dgram_framer_free(d);
}

/* ------------------------------------------------------------------------ */
/* Reassembly                                                               */
/* ------------------------------------------------------------------------ */

/* Split msg (header block hl, body bl) into nrec records: the first holds
 * the headers and part of the body. Feeds them with consecutive seq from
 * seq0 (or UNK). Returns the status of the last feed; *ev set. */
static int feed_records(siptls_dgram_framer *d, const uint8_t *msg, size_t hl, size_t bl,
                        unsigned nrec, uint64_t seq0, uint64_t now, siptls_frame_event *ev)
{
    size_t per = bl / nrec;
    size_t off = 0;
    int rc = SIPTLS_AGAIN;
    for (unsigned i = 0; i < nrec; i++) {
        size_t n = (i == 0) ? hl + per : (i + 1 == nrec ? hl + bl - off : per);
        uint8_t *rec = malloc(n ? n : 1); /* exact size: ASan catches over-reads */
        memcpy(rec, msg + off, n);
        rc = siptls_dgram_framer_feed(d, rec, n, seq0 == UNK ? UNK : seq0 + i, now, ev);
        free(rec);
        off += n;
        if (i + 1 < nrec && rc != SIPTLS_AGAIN) {
            return rc;
        }
    }
    return rc;
}

static void test_reassembly(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_chunks = 0;
    static uint8_t msg[6000];
    size_t len = build_msg(msg, 200, 5000, 5000, 1);
    for (int unknown = 0; unknown < 2; unknown++) {
        for (unsigned n = 2; n <= 8; n++) {
            siptls_dgram_framer *d = new_framer(&lim);
            size_t base = siptls_dgram_framer_memory(d);
            siptls_frame_event ev;
            uint64_t seq0 = unknown ? UNK : ((uint64_t)3 << 48) + 100;
            int rc = feed_records(d, msg, 200, 5000, n, seq0, 0, &ev);
            assert_int_equal(rc, SIPTLS_OK);
            assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
            assert_int_equal(ev.len, len);
            assert_int_equal(ev.header_len, 200);
            assert_int_equal(ev.body_len, 5000);
            assert_memory_equal(ev.data, msg, len);
            assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);
            assert_true(siptls_dgram_framer_memory(d) >= len); /* event still valid */
            /* The next call releases the buffer. */
            assert_int_equal(siptls_dgram_framer_expire(d, 0), SIPTLS_OK);
            assert_int_equal(siptls_dgram_framer_memory(d), base);
            assert_int_equal(siptls_dgram_framer_dropped(d), 0);
            siptls_dgram_framer_free(d);
        }
    }
}

static void test_reassembly_memory(void **state)
{
    (void)state;
    siptls_dgram_framer *d = new_framer(NULL);
    size_t base = siptls_dgram_framer_memory(d);
    static uint8_t msg[3000];
    build_msg(msg, 200, 2000, 2000, 1);
    siptls_frame_event ev;
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 1200, 1, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_pending(d, NULL), 1);
    assert_int_equal(siptls_dgram_framer_memory(d), base + 2200); /* exactly the message */
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 1200, 1000, 2, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 2200);
    assert_memory_equal(ev.data, msg, 2200);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), strlen(OPTIONS_MSG), 3, 0, &ev),
                     SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_memory(d), base);
    siptls_dgram_framer_free(d);
}

static void test_reassembly_excess_discarded(void **state)
{
    (void)state;
    siptls_dgram_framer *d = new_framer(NULL);
    static uint8_t msg[3000];
    build_msg(msg, 200, 1000, 1000, 1);
    memcpy(msg + 1200, "TRAILING JUNK", 13);
    siptls_frame_event ev;
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 10, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 513, 11, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 1200);
    assert_int_equal(ev.body_len, 1000);
    assert_memory_equal(ev.data, msg, 1200);
    assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);
    /* The next record is processed on its own. */
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), strlen(OPTIONS_MSG), 12, 0, &ev),
                     SIPTLS_OK);
    assert_ptr_equal(ev.data, OPTIONS_MSG);
    /* Empty records within a reassembly are ignored (seq still checked). */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 20, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 0, 21, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 500, 22, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 1200);
    siptls_dgram_framer_free(d);
}

static void test_seq_gap_drops(void **state)
{
    (void)state;
    siptls_dgram_framer *d = new_framer(NULL);
    static uint8_t msg[3000];
    build_msg(msg, 200, 1000, 1000, 1);
    siptls_frame_event ev;
    size_t olen = strlen(OPTIONS_MSG);

    /* Gap: the stray continuation is reported as LOST. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 10, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 500, 12, 0, &ev),
                     SIPTLS_ERR_FRAME_LOST);
    assert_int_equal(siptls_dgram_framer_dropped(d), 1);
    assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);

    /* A gap record that is a whole message is delivered. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 20, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), olen, 25, 0, &ev), SIPTLS_OK);
    assert_ptr_equal(ev.data, OPTIONS_MSG);
    assert_int_equal(siptls_dgram_framer_dropped(d), 2);

    /* A repeated (replayed) seq is a gap too. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 30, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 100, 30, 0, &ev),
                     SIPTLS_ERR_FRAME_LOST);
    assert_int_equal(siptls_dgram_framer_dropped(d), 3);

    /* A new epoch is a gap. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 40, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 500, (uint64_t)1 << 48, 0, &ev),
                     SIPTLS_ERR_FRAME_LOST);
    assert_int_equal(siptls_dgram_framer_dropped(d), 4);

    /* Unknown seq on either side: no gap check. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, UNK, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 100, 77, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 800, 400, 78, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 1200);
    assert_int_equal(siptls_dgram_framer_dropped(d), 4);
    siptls_dgram_framer_free(d);
}

static void test_new_message_while_partial(void **state)
{
    (void)state;
    siptls_dgram_framer *d = new_framer(NULL);
    static uint8_t msg[3000];
    build_msg(msg, 200, 1000, 1000, 1);
    siptls_frame_event ev;
    size_t olen = strlen(OPTIONS_MSG);

    /* Consecutive seq, but the record is a new message: partial dropped,
     * the new message delivered. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 1, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), olen, 2, 0, &ev), SIPTLS_OK);
    assert_ptr_equal(ev.data, OPTIONS_MSG);
    assert_int_equal(siptls_dgram_framer_dropped(d), 1);
    assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);

    /* The new message is itself partial: it replaces the old one. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 3, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 900, 4, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_dropped(d), 2);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 900, 300, 5, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 1200);
    assert_memory_equal(ev.data, msg, 1200);

    /* Unknown seq: same rule. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, UNK, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), olen, UNK, 0, &ev), SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_dropped(d), 3);

    /* Body bytes that merely contain a start line are a continuation: no
     * empty line after it. CRLF records continue the body too. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 10, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(
        siptls_dgram_framer_feed(d, U8("INVITE sip:x SIP/2.0\r\nVia: y"), 28, 11, 0, &ev),
        SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, U8("\r\n\r\n"), 4, 12, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 732, 468, 13, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 1200);
    assert_memory_equal(ev.data + 700, "INVITE sip:x SIP/2.0\r\nVia: y\r\n\r\n", 32);
    assert_int_equal(siptls_dgram_framer_dropped(d), 3);

    /* What counts as a new message: a start line and an empty line, in
     * every line-end form, even with no header at all. */
    const char *news[] = {"OPTIONS sip:a SIP/2.0\r\n\r\n", "OPTIONS sip:a SIP/2.0\n\n",
                          "\r\nOPTIONS sip:a SIP/2.0\nVia: x\n\n",
                          "SIP/2.0 200 OK\r\nVia: x\r\n\r\n"};
    for (size_t i = 0; i < 4; i++) {
        uint64_t dropped = siptls_dgram_framer_dropped(d);
        assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 100 + 10 * i, 0, &ev), SIPTLS_AGAIN);
        assert_int_equal(
            siptls_dgram_framer_feed(d, U8(news[i]), strlen(news[i]), 101 + 10 * i, 0, &ev),
            SIPTLS_OK);
        assert_int_equal(ev.kind, SIPTLS_FRAME_MESSAGE);
        assert_int_equal(siptls_dgram_framer_dropped(d), dropped + 1);
    }
    /* And what does not: no line end, no empty line, not a start line. */
    const char *conts[] = {"OPTIONS sip:a SIP/2.0", "OPTIONS sip:a SIP/2.0\r\nVia: x\r\n",
                           "OPTIONS sip:a SIP/2.0\r\nVia: x\r", "OPTIONS sip:a\r\n\r\n",
                           "\x01\r\n\r\n"};
    siptls_dgram_framer_free(d);
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_chunks = 0;
    d = new_framer(&lim);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 200, 0, &ev), SIPTLS_AGAIN);
    size_t got = 700;
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(
            siptls_dgram_framer_feed(d, U8(conts[i]), strlen(conts[i]), 201 + i, 0, &ev),
            SIPTLS_AGAIN);
        got += strlen(conts[i]);
    }
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 1200 - got, 206, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 1200);
    assert_memory_equal(ev.data + 700, conts[0], strlen(conts[0]));
    siptls_dgram_framer_free(d);
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */
/* ------------------------------------------------------------------------ */

static void test_max_chunks(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    static uint8_t msg[6000];
    build_msg(msg, 200, 4000, 4000, 1);
    for (unsigned max = 2; max <= 5; max++) {
        lim.max_chunks = max;
        for (unsigned n = max - 1; n <= max + 1; n++) {
            if (n < 2) {
                continue;
            }
            siptls_dgram_framer *d = new_framer(&lim);
            siptls_frame_event ev;
            int rc = feed_records(d, msg, 200, 4000, n, 1, 0, &ev);
            if (n <= max) {
                assert_int_equal(rc, SIPTLS_OK);
                assert_int_equal(ev.len, 4200);
                assert_int_equal(siptls_dgram_framer_dropped(d), 0);
            } else {
                /* Record max did not complete it: dropped there. */
                assert_int_equal(rc, SIPTLS_ERR_FRAME_CHUNKS);
                assert_int_equal(siptls_dgram_framer_dropped(d), 1);
                assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);
                /* The last record is then a stray: garbage. */
                size_t per = 4000 / n;
                size_t off = 200 + per * max;
                assert_int_equal(
                    siptls_dgram_framer_feed(d, msg + off, 4200 - off, 1 + max, 0, &ev),
                    SIPTLS_ERR_FRAME_GARBAGE);
            }
            siptls_dgram_framer_free(d);
        }
    }
    /* 1: every message must fit its record. */
    lim.max_chunks = 1;
    siptls_dgram_framer *d = new_framer(&lim);
    siptls_frame_event ev;
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 1000, 1, 0, &ev), SIPTLS_ERR_FRAME_CHUNKS);
    assert_int_equal(siptls_dgram_framer_dropped(d), 1);
    assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 4200, 2, 0, &ev), SIPTLS_OK);
    siptls_dgram_framer_free(d);
    /* 0: no limit. */
    lim.max_chunks = 0;
    d = new_framer(&lim);
    assert_int_equal(feed_records(d, msg, 200, 4000, 100, 1, 0, &ev), SIPTLS_OK);
    assert_int_equal(ev.len, 4200);
    siptls_dgram_framer_free(d);
}

static void test_max_msg_size(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = 1000;
    lim.max_chunks = 0;
    uint8_t msg[2000];
    siptls_frame_event ev;
    siptls_dgram_framer *d = new_framer(&lim);
    /* Whole record, with Content-Length. */
    assert_int_equal(
        siptls_dgram_framer_feed(d, msg, build_msg(msg, 200, 799, 799, 1), UNK, 0, &ev), SIPTLS_OK);
    assert_int_equal(
        siptls_dgram_framer_feed(d, msg, build_msg(msg, 200, 800, 800, 1), UNK, 0, &ev), SIPTLS_OK);
    assert_int_equal(
        siptls_dgram_framer_feed(d, msg, build_msg(msg, 200, 801, 801, 1), UNK, 0, &ev),
        SIPTLS_ERR_FRAME_TOO_BIG);
    /* Whole record, no Content-Length: the record size counts. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, build_msg(msg, 200, 0, 799, 0), UNK, 0, &ev),
                     SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, build_msg(msg, 200, 0, 800, 0), UNK, 0, &ev),
                     SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, build_msg(msg, 200, 0, 801, 0), UNK, 0, &ev),
                     SIPTLS_ERR_FRAME_TOO_BIG);
    /* Extra bytes past Content-Length do not count. */
    assert_int_equal(
        siptls_dgram_framer_feed(d, msg, build_msg(msg, 200, 800, 1500, 1), UNK, 0, &ev),
        SIPTLS_OK);
    assert_int_equal(ev.len, 1000);
    /* Reassembly: refused up front, when the first record announces it. */
    for (size_t cl = 799; cl <= 801; cl++) {
        size_t n = build_msg(msg, 200, cl, cl, 1);
        int rc = siptls_dgram_framer_feed(d, msg, 300, 1, 0, &ev);
        if (cl <= 800) {
            assert_int_equal(rc, SIPTLS_AGAIN);
            assert_int_equal(siptls_dgram_framer_feed(d, msg + 300, n - 300, 2, 0, &ev), SIPTLS_OK);
            assert_int_equal(ev.len, n);
        } else {
            assert_int_equal(rc, SIPTLS_ERR_FRAME_TOO_BIG);
            assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);
        }
    }
    /* Huge and overflowing values. */
    const char *huge = "MESSAGE sip:a SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\nx";
    assert_int_equal(siptls_dgram_framer_feed(d, U8(huge), strlen(huge), UNK, 0, &ev),
                     SIPTLS_ERR_FRAME_TOO_BIG);
    const char *ovf = "MESSAGE sip:a SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\nx";
    assert_int_equal(siptls_dgram_framer_feed(d, U8(ovf), strlen(ovf), UNK, 0, &ev),
                     SIPTLS_ERR_FRAME_BAD_CL);
    siptls_dgram_framer_free(d);
}

static void test_max_header_size(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_header_size = 500;
    uint8_t msg[2000];
    siptls_frame_event ev;
    siptls_dgram_framer *d = new_framer(&lim);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, build_msg(msg, 499, 5, 5, 1), UNK, 0, &ev),
                     SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, build_msg(msg, 500, 5, 5, 1), UNK, 0, &ev),
                     SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, build_msg(msg, 501, 5, 5, 1), UNK, 0, &ev),
                     SIPTLS_ERR_FRAME_HDR_TOO_BIG);
    siptls_dgram_framer_free(d);
}

static void test_expire(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_time_ms = 500;
    static uint8_t msg[3000];
    build_msg(msg, 200, 1000, 1000, 1);
    siptls_frame_event ev;
    siptls_dgram_framer *d = new_framer(&lim);
    uint64_t dl = 0;

    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 1, 1000, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_pending(d, &dl), 1);
    assert_true(dl == 1500);
    assert_int_equal(siptls_dgram_framer_expire(d, 1499), SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_expire(d, 1500), SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_pending(d, NULL), 1);
    assert_int_equal(siptls_dgram_framer_expire(d, 1501), SIPTLS_ERR_FRAME_TIMEOUT);
    assert_int_equal(siptls_dgram_framer_pending(d, &dl), 0);
    assert_true(dl == UINT64_MAX);
    assert_int_equal(siptls_dgram_framer_dropped(d), 1);
    assert_int_equal(siptls_dgram_framer_expire(d, 5000), SIPTLS_OK); /* nothing left */

    /* The same check on feed: a continuation at limit passes, at limit+1
     * the partial is dropped and the stray record reported as TIMEOUT. */
    for (uint64_t el = 499; el <= 501; el++) {
        assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 10, 2000, &ev), SIPTLS_AGAIN);
        int rc = siptls_dgram_framer_feed(d, msg + 700, 500, 11, 2000 + el, &ev);
        if (el <= 500) {
            assert_int_equal(rc, SIPTLS_OK);
            assert_int_equal(ev.len, 1200);
        } else {
            assert_int_equal(rc, SIPTLS_ERR_FRAME_TIMEOUT);
            assert_int_equal(siptls_dgram_framer_dropped(d), 2);
        }
    }
    /* A timed-out partial followed by a valid message: the message wins. */
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 20, 3000, &ev), SIPTLS_AGAIN);
    assert_int_equal(
        siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), strlen(OPTIONS_MSG), 21, 9000, &ev),
        SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_dropped(d), 3);
    siptls_dgram_framer_free(d);

    /* 0: no time limit. */
    lim.max_msg_time_ms = 0;
    d = new_framer(&lim);
    assert_int_equal(siptls_dgram_framer_feed(d, msg, 700, 1, 0, &ev), SIPTLS_AGAIN);
    assert_int_equal(siptls_dgram_framer_pending(d, &dl), 1);
    assert_true(dl == UINT64_MAX);
    assert_int_equal(siptls_dgram_framer_expire(d, UINT64_MAX), SIPTLS_OK);
    assert_int_equal(siptls_dgram_framer_feed(d, msg + 700, 500, 2, UINT64_MAX, &ev), SIPTLS_OK);
    siptls_dgram_framer_free(d);
}

static void test_allocation_failure(void **state)
{
    (void)state;
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = SIZE_MAX / 4;
    siptls_dgram_framer *d = new_framer(&lim);
    siptls_frame_event ev;
    /* The partial message cannot be stored: dropped, counted, not fatal. */
    const char *m = "MESSAGE sip:a SIP/2.0\r\nContent-Length: 1152921504606846976\r\n\r\nabc";
    assert_int_equal(siptls_dgram_framer_feed(d, U8(m), strlen(m), 1, 0, &ev), SIPTLS_ERR_NOMEM);
    assert_int_equal(siptls_dgram_framer_dropped(d), 1);
    assert_int_equal(siptls_dgram_framer_pending(d, NULL), 0);
    assert_int_equal(siptls_dgram_framer_feed(d, U8(OPTIONS_MSG), strlen(OPTIONS_MSG), 2, 0, &ev),
                     SIPTLS_OK);
    siptls_dgram_framer_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_api_basics),
        cmocka_unit_test(test_whole_records),
        cmocka_unit_test(test_keepalives),
        cmocka_unit_test(test_errors_not_terminal),
        cmocka_unit_test(test_reassembly),
        cmocka_unit_test(test_reassembly_memory),
        cmocka_unit_test(test_reassembly_excess_discarded),
        cmocka_unit_test(test_seq_gap_drops),
        cmocka_unit_test(test_new_message_while_partial),
        cmocka_unit_test(test_max_chunks),
        cmocka_unit_test(test_max_msg_size),
        cmocka_unit_test(test_max_header_size),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
