/* libFuzzer target: the datagram splitter (src/sipmsg/splitter_dgram.c),
 * round-tripped through the datagram framer (its inverse).
 *
 * The whole input is the message, so the vectors seed it as they are. The
 * record sizes (`room`) come from the input: one from its hash, a small
 * one, and those around the header block and the message length; the DTLS
 * record limit (`max`) likewise. For every cut list:
 *   - the records cover the message, none is empty, and only the first
 *     may be refused (the message cannot be sent);
 *   - the rules of docs/dtls.md: a split message's first record holds the
 *     whole header block; no record is larger than `room` except a message
 *     that cannot be reassembled, sent whole within `max`, and a header
 *     block larger than `room`, sent whole within `max`;
 *   - the record sizes of the splitter before it moved out of
 *     dtls/dtls_transport.c (tests/support/split_oracle.h) whenever no CR/LF
 *     precedes the start line and the receiver's scanner does not refuse
 *     the header block (where they differ on purpose);
 *   - the round trip: whenever the splitter says the message can be split
 *     and Content-Length covers the rest exactly, the framer, fed record by
 *     record with consecutive sequence numbers, gives the message back byte
 *     for byte; unless a record continuing the body looks like the start
 *     of a new message (the known limit), and then the framer dropped it.
 * And the splitter agrees with the framer on which messages carry a
 * Content-Length the framer reassembles by. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../support/split_oracle.h"
#include "sipmsg/sipmsg_internal.h"
#include "sipmsg/splitter_dgram.h"
#include "siptls/sipmsg.h"

#define CHECK(x)     \
    do {             \
        if (!(x)) {  \
            abort(); \
        }            \
    } while (0)

#define BIG_MAX ((size_t)1 << 20)

static uint64_t fnv(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ d[i]) * 1099511628211ull;
    }
    return h;
}

static siptls_dgram_framer *new_framer(void)
{
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    lim.max_msg_size = BIG_MAX;
    lim.max_header_size = BIG_MAX;
    lim.max_chunks = 0;
    lim.max_msg_time_ms = 0;
    siptls_dgram_framer *d = NULL;
    CHECK(siptls_dgram_framer_new(&d, &lim) == SIPTLS_OK);
    return d;
}

typedef struct msg {
    const uint8_t *data;
    size_t len;
    int split; /* siptls__dgram_split_scan() said yes */
    size_t hl;
    uint64_t cl;
    int compare_old; /* the old splitter must cut it the same way */
} msg;

/* Cut list into rec[]; returns the count, 0 when the message cannot be sent. */
static size_t cut(const msg *m, size_t room, size_t max, int old, size_t *rec)
{
    size_t off = 0, n = 0;
    while (off < m->len) {
        size_t r = old ? ref_split_next(m->data, m->len, off, room, max)
                       : siptls__dgram_split_next(m->data, m->len, off, room, max);
        if (r == 0) {
            CHECK(off == 0);
            return 0;
        }
        CHECK(r <= m->len - off);
        rec[n++] = r;
        off += r;
    }
    return n;
}

static void check_rules(const msg *m, size_t room, size_t max, const size_t *rec, size_t n)
{
    if (n == 0) {
        CHECK(m->len > room);
        CHECK(m->split ? (m->hl > room && m->hl > max) : m->len > max);
        return;
    }
    if (m->len <= room || !m->split) {
        CHECK(n == 1 && rec[0] <= (m->len <= room ? room : max));
        return;
    }
    CHECK(rec[0] >= m->hl && rec[0] <= max);
    CHECK(rec[0] <= room || rec[0] == m->hl);
    for (size_t i = 1; i < n; i++) {
        CHECK(rec[i] <= room);
    }
}

static void round_trip(const msg *m, const size_t *rec, size_t n)
{
    int exact = m->split && m->hl + m->cl == m->len;
    int loss = 0;
    if (exact) {
        size_t off = rec[0];
        for (size_t i = 1; i < n && !loss; i++) {
            loss = ref_looks_like_start(m->data + off, rec[i]);
            off += rec[i];
        }
    }
    siptls_dgram_framer *d = new_framer();
    size_t pre = ref_leading_crlf(m->data, m->len);
    size_t off = 0, delivered = 0;
    for (size_t i = 0; i < n; i++) {
        /* An exact-size copy, so ASan sees any read past the record. */
        uint8_t *r = malloc(rec[i]);
        CHECK(r != NULL);
        memcpy(r, m->data + off, rec[i]);
        siptls_frame_event ev;
        int rc = siptls_dgram_framer_feed(d, r, rec[i], 7 + i, 0, &ev);
        if (exact && !loss) {
            if (i + 1 < n) {
                CHECK(rc == SIPTLS_AGAIN);
            } else {
                CHECK(rc == SIPTLS_OK && ev.kind == SIPTLS_FRAME_MESSAGE);
                CHECK(ev.len == m->len - pre && ev.header_len == m->hl - pre);
                CHECK(memcmp(ev.data, m->data + pre, ev.len) == 0);
                delivered = 1;
            }
        }
        free(r);
        off += rec[i];
    }
    if (exact && !loss) {
        CHECK(delivered && !siptls_dgram_framer_pending(d, NULL));
        CHECK(siptls_dgram_framer_dropped(d) == 0);
    }
    if (exact && loss) {
        CHECK(siptls_dgram_framer_dropped(d) > 0);
    }
    siptls_dgram_framer_free(d);
}

/* The splitter and the framer agree on which messages the framer
 * reassembles by Content-Length: the whole message as one record. */
static void check_agreement(const msg *m)
{
    siptls_dgram_framer *d = new_framer();
    siptls_frame_event ev;
    int rc = siptls_dgram_framer_feed(d, m->data, m->len, 1, 0, &ev);
    size_t pre = ref_leading_crlf(m->data, m->len);
    if (rc == SIPTLS_OK && ev.kind == SIPTLS_FRAME_MESSAGE) {
        if (m->split) {
            CHECK(ev.header_len == m->hl - pre && m->hl + m->cl <= m->len);
            CHECK(ev.len == m->hl + m->cl - pre);
        } else {
            CHECK(ev.len == m->len - pre); /* no Content-Length: to the end */
        }
    } else if (rc == SIPTLS_AGAIN && siptls_dgram_framer_pending(d, NULL)) {
        CHECK(m->split && m->hl + m->cl > m->len); /* waits for more body */
    }
    siptls_dgram_framer_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536) {
        return 0; /* a DTLS record's plaintext is at most 2^14; the UDP limit is far above */
    }
    msg m = {data, size, 0, 0, 0, 0};
    m.split = siptls__dgram_split_scan(data, size, &m.hl, &m.cl);
    if (m.split) {
        CHECK(m.hl >= 2 && m.hl <= size);
    }
    /* The old splitter is the reference where no CR/LF precedes the start
     * line and the receiver's scanner does not refuse the header block. */
    if (data[0] != '\r' && data[0] != '\n') {
        siptls__hdr_scan s;
        siptls__hdr_scan_reset(&s);
        int rc = siptls__hdr_scan_run(&s, data, size, SIZE_MAX);
        m.compare_old = rc == SIPTLS_OK || rc == SIPTLS_AGAIN;
    }
    check_agreement(&m);

    uint64_t h = fnv(data, size);
    size_t rooms[] = {1 + (size_t)(h % (size + 1)),
                      1 + (size_t)((h >> 20) % 64),
                      m.hl > 1 ? m.hl - 1 : 1,
                      m.hl > 0 ? m.hl : 2,
                      m.hl + 1,
                      size > 1 ? size - 1 : 1,
                      size,
                      size + 1,
                      1163};
    size_t *rec = malloc(size * sizeof(*rec));
    size_t *old = malloc(size * sizeof(*old));
    CHECK(rec != NULL && old != NULL);
    for (size_t k = 0; k < sizeof(rooms) / sizeof(rooms[0]); k++) {
        size_t room = rooms[k];
        size_t maxes[] = {room, m.hl > room ? m.hl - 1 : room, m.hl > room ? m.hl : room, size,
                          BIG_MAX};
        for (size_t j = 0; j < sizeof(maxes) / sizeof(maxes[0]); j++) {
            size_t max = maxes[j] < room ? room : maxes[j];
            size_t n = cut(&m, room, max, 0, rec);
            check_rules(&m, room, max, rec, n);
            if (m.compare_old) {
                size_t on = cut(&m, room, max, 1, old);
                CHECK(on == n && memcmp(rec, old, n * sizeof(*rec)) == 0);
            }
            if (max == BIG_MAX && n > 0) {
                round_trip(&m, rec, n);
            }
        }
    }
    free(rec);
    free(old);
    return 0;
}
