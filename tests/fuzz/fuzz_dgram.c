/* libFuzzer target: the datagram framer.
 *
 * The input is fed as one record, then cut into several records at
 * input-derived offsets with consecutive sequence numbers (and, in a second
 * pass, with gaps, unknown sequence numbers, small limits and expire()
 * calls). Checks: events are well formed, zero-copy messages lie inside
 * their record, nothing over the limits is delivered, the drop counter only
 * grows, and the framer never fails for good (a valid message always goes
 * through afterwards). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "siptls/sipmsg.h"

#define CHECK(x)     \
    do {             \
        if (!(x)) {  \
            abort(); \
        }            \
    } while (0)

static const char PROBE[] = "OPTIONS sip:probe@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n";

static uint64_t fnv(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ d[i]) * 1099511628211ull;
    }
    return h;
}

static void check_event(int rc, const siptls_frame_event *ev, const uint8_t *rec, size_t len,
                        const siptls_framer_limits *lim)
{
    if (rc != SIPTLS_OK) {
        CHECK(rc <= SIPTLS_AGAIN);
        return;
    }
    if (ev->kind == SIPTLS_FRAME_MESSAGE) {
        CHECK(ev->data != NULL);
        CHECK(ev->header_len >= 2 && ev->header_len <= ev->len);
        CHECK(ev->header_len <= lim->max_header_size);
        CHECK(ev->len <= lim->max_msg_size);
        CHECK(ev->body == ev->data + ev->header_len);
        CHECK(ev->body_len == ev->len - ev->header_len);
        CHECK(memchr(ev->data, 0, ev->header_len) == NULL);
        /* Inside the record (zero copy), or a reassembled copy. */
        if (ev->data >= rec && ev->data < rec + len) {
            CHECK(ev->data + ev->len <= rec + len);
        }
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < ev->len; i++) {
            sink ^= ev->data[i]; /* ASan checks every byte is readable */
        }
        (void)sink;
        const uint8_t *v;
        size_t vl;
        size_t cur = 0;
        while (siptls_sipmsg_header_next(ev->data, ev->header_len, "Call-ID", 'i', &cur, &v, &vl) ==
               SIPTLS_OK) {
            CHECK(v >= ev->data && v + vl <= ev->data + ev->header_len);
        }
    } else {
        CHECK(ev->kind == SIPTLS_FRAME_PING || ev->kind == SIPTLS_FRAME_PONG);
        CHECK(ev->data == NULL);
    }
}

/* Feed data cut at offsets into records. */
static void run(const uint8_t *data, size_t size, const siptls_framer_limits *lim, uint64_t h,
                int nrec, int gaps)
{
    siptls_dgram_framer *d = NULL;
    CHECK(siptls_dgram_framer_new(&d, lim) == SIPTLS_OK);
    size_t off = 0;
    uint64_t seq = (h >> 8) & 0xffff;
    uint64_t now = 1;
    uint64_t dropped = 0;
    for (int i = 0; i < nrec; i++) {
        size_t n = (i + 1 == nrec) ? size - off : (size_t)((h >> (i * 5)) % (size - off + 1));
        /* An exact-size copy, so ASan sees any read past the record. */
        uint8_t *rec = malloc(n ? n : 1);
        CHECK(rec != NULL);
        if (n) {
            memcpy(rec, data + off, n);
        }
        uint64_t s = seq + (uint64_t)i;
        if (gaps && ((h >> (i * 3)) & 7) == 0) {
            s = SIPTLS_DGRAM_SEQ_UNKNOWN;
        } else if (gaps && ((h >> (i * 3)) & 7) == 1) {
            s += 2;
        }
        now += (h >> (i * 4)) & 0xff;
        siptls_frame_event ev;
        int rc = siptls_dgram_framer_feed(d, rec, n, s, now, &ev);
        check_event(rc, &ev, rec, n, lim);
        free(rec);
        uint64_t dr = siptls_dgram_framer_dropped(d);
        CHECK(dr >= dropped);
        dropped = dr;
        if (gaps && ((h >> i) & 1)) {
            int e = siptls_dgram_framer_expire(d, now + 150);
            CHECK(e == SIPTLS_OK || e == SIPTLS_ERR_FRAME_TIMEOUT);
        }
        uint64_t dl = 0;
        if (siptls_dgram_framer_pending(d, &dl)) {
            CHECK(siptls_dgram_framer_memory(d) <= lim->max_msg_size + 4096);
        }
        off += n;
    }
    /* Never terminal: a valid message goes through. */
    siptls_frame_event ev;
    CHECK(siptls_dgram_framer_feed(d, (const uint8_t *)PROBE, sizeof(PROBE) - 1,
                                   SIPTLS_DGRAM_SEQ_UNKNOWN, now, &ev) == SIPTLS_OK);
    CHECK(ev.kind == SIPTLS_FRAME_MESSAGE && ev.len == sizeof(PROBE) - 1);
    siptls_dgram_framer_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    uint64_t h = fnv(data, size);
    run(data, size, &lim, h, 1, 0);
    run(data, size, &lim, h, 2 + (int)(h % 7), 0);

    lim.max_msg_size = 128 + (size_t)(h % 2048);
    lim.max_header_size = 64 + (size_t)((h >> 11) % 1024);
    lim.max_chunks = (unsigned)((h >> 21) % 4);
    lim.max_msg_time_ms = (h >> 24) % 200;
    lim.crlf_drop = (int)((h >> 33) & 1);
    run(data, size, &lim, h, 1 + (int)((h >> 35) % 8), 1);
    return 0;
}
