/* Unit tests: datagram splitter (src/sipmsg/splitter_dgram.c), the DTLS
 * sender's side of the datagram framer's reassembly.
 *
 * Every vector of tests/vectors/split is cut at every record size from 1
 * byte to past its length (whole), with the DTLS library's record limit
 * around the sizes that matter (header block and message length, each
 * -1/0/+1). Each cut list is checked against the rules (docs/dtls.md,
 * "Framing"), against the splitter as it was before it moved out of
 * dtls/dtls_transport.c (record sizes unchanged), and fed record by record,
 * with consecutive sequence numbers, into the datagram framer: the message
 * must come back byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sipmsg/sipmsg_internal.h"
#include "sipmsg/splitter_dgram.h"
#include "sipmsg_vectors.h"
#include "split_oracle.h"

#define VEC_DIR SIPTLS_TEST_DIR "/vectors/split"
#define U8(s) ((const uint8_t *)(s))
/* A record limit larger than any vector: what the DTLS library's limit is
 * when it plays no part. */
#define BIG_MAX 65535u

typedef struct split_vec {
    const char *name;
    uint8_t *data;
    size_t len;
    int split; /* "SPLIT hl cl" (1) or "WHOLE" (0) */
    size_t hl;
    uint64_t cl;
    int differs; /* the old splitter cut it otherwise */
} split_vec;

static void load_vec(const char *name, split_vec *v)
{
    char path[1024];
    memset(v, 0, sizeof(*v));
    v->name = name;
    snprintf(path, sizeof(path), "%s/%s", VEC_DIR, name);
    v->data = tv_read_file(path, &v->len);
    assert_non_null(v->data);
    size_t nl = strlen(path);
    snprintf(path + nl - 4, sizeof(path) - (nl - 4), ".expect");
    size_t elen = 0;
    uint8_t *raw = tv_read_file(path, &elen);
    assert_non_null(raw);
    char *text = malloc(elen + 1);
    memcpy(text, raw, elen);
    text[elen] = '\0';
    free(raw);
    unsigned long hl = 0;
    unsigned long long cl = 0;
    if (sscanf(text, "SPLIT %lu %llu", &hl, &cl) == 2) {
        v->split = 1;
        v->hl = hl;
        v->cl = cl;
    } else if (strncmp(text, "WHOLE", 5) != 0) {
        fail_msg("%s: bad .expect", name);
    }
    v->differs = strstr(text, "\nDIFFERS") != NULL;
    free(text);
}

/* The cut list of a message: records[0..n). Returns n, 0 when the message
 * cannot be sent. `ref` selects the old splitter. */
static size_t cut(const split_vec *v, size_t room, size_t max, int ref, size_t *records)
{
    size_t off = 0, n = 0;
    while (off < v->len) {
        size_t r = ref ? ref_split_next(v->data, v->len, off, room, max)
                       : siptls__dgram_split_next(v->data, v->len, off, room, max);
        if (r == 0) {
            if (off != 0) {
                fail_msg("%s room %zu max %zu: no record at offset %zu", v->name, room, max, off);
            }
            return 0;
        }
        if (r > v->len - off) {
            fail_msg("%s room %zu: record of %zu at %zu passes the end", v->name, room, r, off);
        }
        records[n++] = r;
        off += r;
    }
    return n;
}

/* The rules of docs/dtls.md, "Framing". */
static void check_rules(const split_vec *v, size_t room, size_t max, const size_t *rec, size_t n)
{
    size_t len = v->len;
    if (n == 0) {
        /* Cannot be sent: the one record it needs is over max. */
        int ok =
            len > room && ((!v->split && len > max) || (v->split && v->hl > room && v->hl > max));
        if (!ok) {
            fail_msg("%s room %zu max %zu: refused", v->name, room, max);
        }
        return;
    }
    if (len <= room || !v->split) {
        /* Whole: within room, or (cannot be reassembled) within max. */
        if (n != 1 || (len > room && len > max)) {
            fail_msg("%s room %zu max %zu: %zu records, want one", v->name, room, max, n);
        }
        return;
    }
    /* Split: the first record holds the whole header block and is as
     * large as allowed: room, or the header block when that is larger
     * (then at most max); the others are full records but the last. */
    size_t first = v->hl > room ? v->hl : room;
    if (rec[0] != first || rec[0] < v->hl || rec[0] > max) {
        fail_msg("%s room %zu max %zu: first record %zu, header block %zu", v->name, room, max,
                 rec[0], v->hl);
    }
    for (size_t i = 1; i < n; i++) {
        if (rec[i] > room || (i + 1 < n && rec[i] != room)) {
            fail_msg("%s room %zu: record %zu is %zu bytes", v->name, room, i, rec[i]);
        }
    }
}

typedef struct trip {
    size_t messages; /* MESSAGE events */
    uint8_t *first;  /* a copy of the first message */
    size_t first_len;
    size_t first_hl;
    size_t first_at;  /* the record that completed it */
    int errors;       /* error statuses returned */
    int pending;      /* a partial message held at the end */
    uint64_t dropped; /* partial messages the framer dropped */
} trip;

/* Feed the records, each an exact-size copy (ASan sees a read past it),
 * with consecutive sequence numbers. */
static void round_trip(const split_vec *v, const size_t *rec, size_t n, trip *t)
{
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = 1u << 20;
    lim.max_header_size = 1u << 20;
    lim.max_chunks = 0;
    lim.max_msg_time_ms = 0;
    siptls_dgram_framer *d = NULL;
    assert_int_equal(siptls_dgram_framer_new(&d, &lim), SIPTLS_OK);
    memset(t, 0, sizeof(*t));
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = malloc(rec[i]);
        assert_non_null(r);
        memcpy(r, v->data + off, rec[i]);
        siptls_frame_event ev;
        int rc = siptls_dgram_framer_feed(d, r, rec[i], 1000 + i, 0, &ev);
        if (rc == SIPTLS_OK && ev.kind == SIPTLS_FRAME_MESSAGE) {
            if (t->messages++ == 0) {
                t->first = malloc(ev.len);
                memcpy(t->first, ev.data, ev.len);
                t->first_len = ev.len;
                t->first_hl = ev.header_len;
                t->first_at = i;
            }
        } else if (rc != SIPTLS_OK && rc != SIPTLS_AGAIN) {
            t->errors++;
        }
        free(r);
        off += rec[i];
    }
    t->pending = siptls_dgram_framer_pending(d, NULL);
    t->dropped = siptls_dgram_framer_dropped(d);
    siptls_dgram_framer_free(d);
}

/* 1 when a record that continues the body (before the body is complete)
 * looks like the start of a new message to the framer. */
static int predicted_loss(const split_vec *v, const size_t *rec, size_t n)
{
    size_t off = rec[0];
    uint64_t end = (uint64_t)v->hl + v->cl;
    for (size_t i = 1; i < n && off < end; i++) {
        if (ref_looks_like_start(v->data + off, rec[i])) {
            return 1;
        }
        off += rec[i];
    }
    return 0;
}

/* Checks one cut list's round trip; returns 1 when the message was lost
 * as predicted_loss() said it would be. */
static int check_trip(const split_vec *v, size_t room, const size_t *rec, size_t n)
{
    trip t;
    round_trip(v, rec, n, &t);
    size_t pre = ref_leading_crlf(v->data, v->len);
    int lost = 0;
    if (!v->split) {
        /* One record: a message without Content-Length is delivered whole,
         * a header block the framer refuses is an error. */
        if (strncmp(v->name, "bad_", 4) == 0) {
            assert_int_equal(t.messages, 0);
            assert_int_equal(t.errors, 1);
        } else {
            assert_int_equal(t.messages, 1);
            assert_int_equal(t.first_len, v->len - pre);
            assert_memory_equal(t.first, v->data + pre, t.first_len);
        }
    } else if (predicted_loss(v, rec, n)) {
        /* A continuation record that looks like a new message: the framer
         * drops the partial message (a known limit, docs/dtls.md). */
        lost = 1;
        if (t.dropped == 0) {
            fail_msg("%s room %zu: loss predicted, none seen", v->name, room);
        }
        assert_false(t.messages > 0 && t.first_len == v->hl + v->cl - pre);
    } else if (v->hl + v->cl <= v->len) {
        /* The message as Content-Length delimits it (extra bytes past it
         * are discarded by the receiver, RFC 3261 §18.3), byte for byte,
         * completed by the record holding its last byte. */
        size_t want = (size_t)(v->hl + v->cl) - pre;
        if (t.messages == 0 || t.first_len != want) {
            fail_msg("%s room %zu: %zu messages, first %zu bytes, want %zu", v->name, room,
                     t.messages, t.first_len, want);
        }
        assert_memory_equal(t.first, v->data + pre, want);
        assert_int_equal(t.first_hl, v->hl - pre);
        size_t upto = 0, at = 0;
        while (upto + rec[at] < v->hl + v->cl) {
            upto += rec[at++];
        }
        assert_int_equal(t.first_at, at);
        assert_int_equal(t.dropped, 0);
        if (v->hl + v->cl == v->len) {
            /* The exact round trip: one message, nothing else. */
            assert_int_equal(t.messages, 1);
            assert_int_equal(t.errors, 0);
            assert_false(t.pending);
        }
    } else {
        /* Content-Length promises more than was sent: still waiting. */
        assert_int_equal(t.messages, 0);
        assert_true(t.pending);
    }
    free(t.first);
    return lost;
}

static void test_vectors(void **state)
{
    (void)state;
    size_t count = 0;
    char **names = tv_list(VEC_DIR, &count);
    assert_non_null(names);
    assert_true(count >= 30);
    size_t losses = 0;
    for (size_t k = 0; k < count; k++) {
        split_vec v;
        load_vec(names[k], &v);
        /* What the splitter reads from the header block is what .expect says. */
        size_t hl = 0;
        uint64_t cl = 0;
        int s = siptls__dgram_split_scan(v.data, v.len, &hl, &cl);
        assert_int_equal(s, v.split);
        if (s) {
            assert_int_equal(hl, v.hl);
            assert_true(cl == v.cl);
        }
        size_t *rec = malloc((v.len + 1) * sizeof(*rec));
        size_t *old = malloc((v.len + 1) * sizeof(*old));
        int differed = 0;
        size_t lost = 0;
        for (size_t room = 1; room <= v.len + 2; room++) {
            size_t maxes[] = {room,      room + 1, v.hl - 1,  v.hl,   v.hl + 1,
                              v.len - 1, v.len,    v.len + 1, BIG_MAX};
            for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
                size_t max = maxes[m];
                if (max < room) {
                    continue; /* the transport's room never exceeds the limit */
                }
                size_t n = cut(&v, room, max, 0, rec);
                check_rules(&v, room, max, rec, n);
                size_t on = cut(&v, room, max, 1, old);
                int same = n == on && memcmp(rec, old, n * sizeof(*rec)) == 0;
                if (!same && !v.differs) {
                    fail_msg("%s room %zu max %zu: %zu records (first %zu), the old splitter %zu "
                             "(first %zu)",
                             v.name, room, max, n, n ? rec[0] : 0, on, on ? old[0] : 0);
                }
                differed |= !same;
                if (max == BIG_MAX) {
                    /* One round trip per room: max changes only whether
                     * the message can be sent, not how it is cut. */
                    assert_true(n > 0);
                    lost += (size_t)check_trip(&v, room, rec, n);
                }
            }
        }
        if (v.differs && !differed) {
            fail_msg("%s: marked DIFFERS but cut as before", v.name);
        }
        /* Only a body that holds a SIP message meets the known limit. */
        if (lost > 0 && strstr(v.name, "body_holds_message") == NULL) {
            fail_msg("%s: lost at %zu record sizes", v.name, lost);
        }
        if (strstr(v.name, "body_holds_message") != NULL) {
            print_message("%s: lost at %zu of %zu record sizes (known limit)\n", v.name, lost,
                          v.len + 2);
        }
        losses += lost;
        free(rec);
        free(old);
        free(v.data);
        free(names[k]);
    }
    free(names);
    /* The body-holds-a-message vector does meet the known limit, so
     * predicted_loss() is exercised. */
    assert_true(losses > 0);
}

/* The rules on a message small enough to read. */
static void test_rules_by_hand(void **state)
{
    (void)state;
    /* header block 40 bytes, body 10 */
    static const char M[] = "MESSAGE sip:a@b SIP/2.0\r\nl: 10\r\nX: y\r\n\r\n0123456789";
    const size_t len = sizeof(M) - 1;
    size_t hl = 0;
    uint64_t cl = 0;
    assert_int_equal(siptls__dgram_split_scan(U8(M), len, &hl, &cl), 1);
    assert_int_equal(hl, 40);
    assert_true(cl == 10);
    /* fits: one record */
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, len, len), len);
    /* room 41: 41 + 9 */
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, 41, 100), 41);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 41, 41, 100), 9);
    /* room 40 = the header block: 40 + 10 */
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, 40, 100), 40);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 40, 40, 100), 10);
    /* room 20: the header block goes whole (within max), then 10 */
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, 20, 40), 40);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 40, 20, 40), 10);
    /* ... and cannot be sent when max is below it */
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, 20, 39), 0);
    /* room 4: the header block, then 4 + 4 + 2 */
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, 4, 100), 40);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 40, 4, 100), 4);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 44, 4, 100), 4);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 48, 4, 100), 2);

    /* No Content-Length: one record within max, else none. */
    static const char N[] = "MESSAGE sip:a@b SIP/2.0\r\nX: y\r\n\r\n0123456789";
    const size_t nlen = sizeof(N) - 1;
    assert_int_equal(siptls__dgram_split_scan(U8(N), nlen, &hl, &cl), 0);
    assert_int_equal(siptls__dgram_split_next(U8(N), nlen, 0, 20, nlen), nlen);
    assert_int_equal(siptls__dgram_split_next(U8(N), nlen, 0, 20, nlen - 1), 0);
}

static void test_edges(void **state)
{
    (void)state;
    static const char M[] = "MESSAGE sip:a@b SIP/2.0\r\nl: 10\r\n\r\n0123456789";
    const size_t len = sizeof(M) - 1;
    /* Nothing to send, or no room. */
    assert_int_equal(siptls__dgram_split_next(U8(M), 0, 0, 100, 100), 0);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, len, 100, 100), 0);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, len + 1, 100, 100), 0);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, 0, 100), 0);
    assert_int_equal(siptls__dgram_split_next(U8(M), len, 0, 100, 0), 0);
    /* A record after the first never looks at the bytes: the header block
     * is scanned once per message, not once per record. */
    assert_int_equal(siptls__dgram_split_next(NULL, 5000, 1000, 1163, 1350), 1163);
    assert_int_equal(siptls__dgram_split_next(NULL, 5000, 4000, 1163, 1350), 1000);
    /* Nothing a scan refuses touches the outputs. */
    size_t hl = 7;
    uint64_t cl = 7;
    assert_int_equal(siptls__dgram_split_scan(U8(""), 0, &hl, &cl), 0);
    assert_int_equal(siptls__dgram_split_scan(U8("\r\n\r\n"), 4, &hl, &cl), 0);
    assert_int_equal(siptls__dgram_split_scan(U8("MESSAGE sip:a@b SIP/2.0\r\nl: 1"), 29, &hl, &cl),
                     0);
    assert_int_equal(hl, 7);
    assert_true(cl == 7);
    /* Leading CR/LF belong to the first record's header block. */
    static const char L[] = "\r\n\n\rMESSAGE sip:a@b SIP/2.0\nl:3\n\nabc";
    assert_int_equal(siptls__dgram_split_scan(U8(L), sizeof(L) - 1, &hl, &cl), 1);
    assert_int_equal(hl, sizeof(L) - 1 - 3);
    assert_true(cl == 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_rules_by_hand),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
