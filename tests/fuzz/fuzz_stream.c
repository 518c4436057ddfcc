/* libFuzzer target: the stream framer.
 *
 * The same input is fed several ways; without end_chunk() the events must
 * not depend on how the bytes were split (whole, split at input-derived
 * offsets, byte by byte, through reserve()/commit()). A last pass uses small
 * limits and end_chunk() calls and checks invariants only. Every delivered
 * message is cross-checked with the header helpers: its Content-Length
 * header must equal its body length. */
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

typedef struct ev_sig {
    int kind; /* frame kind, or the negative status of the final error */
    size_t len;
    size_t body_len;
} ev_sig;

typedef struct ev_list {
    ev_sig *v;
    size_t n;
    size_t cap;
    int pending;
} ev_list;

static void push(ev_list *l, int kind, size_t len, size_t body_len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        CHECK(l->v != NULL);
    }
    l->v[l->n].kind = kind;
    l->v[l->n].len = len;
    l->v[l->n].body_len = body_len;
    l->n++;
}

static uint64_t fnv(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ d[i]) * 1099511628211ull;
    }
    return h;
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* A delivered message is well formed as far as framing goes. */
static void check_message(const siptls_frame_event *ev, const siptls_framer_limits *lim)
{
    CHECK(ev->data != NULL);
    CHECK(ev->header_len >= 4 && ev->header_len <= ev->len);
    CHECK(ev->header_len <= lim->max_header_size);
    CHECK(ev->len <= lim->max_msg_size);
    CHECK(ev->body == ev->data + ev->header_len);
    CHECK(ev->body_len == ev->len - ev->header_len);
    CHECK(ev->data[ev->header_len - 1] == '\n');
    CHECK(memchr(ev->data, 0, ev->header_len) == NULL);
    /* The header helper finds the same Content-Length. */
    const uint8_t *v = NULL;
    size_t vl = 0;
    CHECK(siptls_sipmsg_header(ev->data, ev->header_len, "Content-Length", 'l', &v, &vl) ==
          SIPTLS_OK);
    uint64_t cl = 0;
    size_t i = 0;
    while (i < vl && is_digit(v[i])) {
        cl = cl * 10 + (uint64_t)(v[i] - '0');
        CHECK(cl <= ev->body_len);
        i++;
    }
    CHECK(i > 0 && cl == ev->body_len);
    /* Iterating all occurrences terminates and stays in the header block. */
    size_t cur = 0, n = 0;
    while (siptls_sipmsg_header_next(ev->data, ev->header_len, "Via", 'v', &cur, &v, &vl) ==
           SIPTLS_OK) {
        CHECK(v >= ev->data && v + vl <= ev->data + ev->header_len);
        CHECK(cur <= ev->header_len);
        CHECK(++n <= ev->header_len);
    }
    (void)siptls_sipmsg_is_request(ev->data, ev->len);
}

/* Drain; returns 0 when the stream failed. */
static int drain(siptls_stream_framer *f, ev_list *out, const siptls_framer_limits *lim,
                 size_t *delivered)
{
    for (;;) {
        siptls_frame_event ev;
        int rc = siptls_stream_framer_next(f, &ev);
        if (rc == SIPTLS_AGAIN) {
            return 1;
        }
        if (rc != SIPTLS_OK) {
            CHECK(rc < SIPTLS_AGAIN);
            CHECK(siptls_stream_framer_next(f, &ev) == rc); /* terminal */
            push(out, rc, 0, 0);
            return 0;
        }
        if (ev.kind == SIPTLS_FRAME_MESSAGE) {
            check_message(&ev, lim);
            *delivered += ev.len;
        } else {
            CHECK(ev.kind == SIPTLS_FRAME_PING || ev.kind == SIPTLS_FRAME_PONG);
            CHECK(ev.data == NULL && ev.len == 0);
            *delivered += ev.kind == SIPTLS_FRAME_PING ? 2 : 1;
        }
        push(out, (int)ev.kind, ev.len, ev.body_len);
    }
}

/* Feed data cut at the sorted offsets cuts[0..ncuts). mode 0: feed(),
 * mode 1: reserve()/commit(). chunks 0: no end_chunk(); 1: end_chunk()
 * after draining each piece; 2: end_chunk() right after feeding it, then
 * drain (both orders must give the same events). */
static void run(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts, int mode,
                int chunks, const siptls_framer_limits *lim, uint64_t seed, ev_list *out)
{
    siptls_stream_framer *f = NULL;
    CHECK(siptls_stream_framer_new(&f, lim) == SIPTLS_OK);
    size_t delivered = 0;
    size_t prev = 0;
    uint64_t now = 1000;
    int ok = 1;
    for (size_t i = 0; i <= ncuts && ok; i++) {
        size_t end = i < ncuts ? cuts[i] : size;
        if (end < prev) {
            end = prev;
        }
        size_t n = end - prev;
        if (mode == 0) {
            int rc = siptls_stream_framer_feed(f, data + prev, n);
            if (rc != SIPTLS_OK) {
                push(out, rc, 0, 0);
                ok = 0;
                break;
            }
        } else {
            size_t done = 0;
            while (done < n) {
                uint8_t *p = NULL;
                size_t avail = 0;
                int rc = siptls_stream_framer_reserve(f, n - done, &p, &avail);
                if (rc != SIPTLS_OK) {
                    push(out, rc, 0, 0);
                    ok = 0;
                    break;
                }
                if (avail == 0) {
                    /* At the hold limit: drain. What is left then is less
                     * than one message, so there is room again. */
                    ok = drain(f, out, lim, &delivered);
                    if (!ok) {
                        break;
                    }
                    CHECK(siptls_stream_framer_reserve(f, n - done, &p, &avail) == SIPTLS_OK &&
                          avail > 0);
                    continue;
                }
                size_t k = avail < n - done ? avail : n - done;
                memcpy(p, data + prev + done, k);
                siptls_stream_framer_commit(f, k);
                done += k;
            }
            if (!ok) {
                break;
            }
        }
        prev = end;
        now += (seed >> (i % 48)) & 0x7f;
        if (chunks == 2) {
            siptls_stream_framer_end_chunk(f, now);
        }
        ok = drain(f, out, lim, &delivered);
        if (ok && chunks == 1) {
            siptls_stream_framer_end_chunk(f, now);
            ok = drain(f, out, lim, &delivered);
        }
        CHECK(delivered <= prev);
        CHECK(siptls_stream_framer_memory(f) <= 1024 + lim->max_msg_size + lim->max_header_size);
    }
    out->pending = ok ? siptls_stream_framer_pending(f, NULL) : -1;
    siptls_stream_framer_trim(f);
    siptls_stream_framer_free(f);
}

static int same(const ev_list *a, const ev_list *b)
{
    if (a->n != b->n || a->pending != b->pending) {
        return 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].kind != b->v[i].kind || a->v[i].len != b->v[i].len ||
            a->v[i].body_len != b->v[i].body_len) {
            return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    uint64_t h = fnv(data, size);
    ev_list whole = {0}, other = {0};

    /* Reference: 16 KiB reads, like the transport. Other splits must give
     * the same events; inputs larger than one read may legitimately hit the
     * hold limit in a split run, so they are checked for invariants only. */
    size_t reads[64];
    size_t nr = 0;
    for (size_t o = 16384; o < size && nr < 64; o += 16384) {
        reads[nr++] = o;
    }
    run(data, size, reads, nr, 0, 0, &lim, h, &whole);
    int cmp = size <= 16384;

    /* Split at three input-derived offsets. */
    size_t cuts[8];
    size_t nc = 0;
    if (size > 0) {
        for (int i = 0; i < 3; i++) {
            cuts[nc++] = (size_t)((h >> (i * 16)) % (size + 1));
        }
        for (size_t i = 1; i < nc; i++) {
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        }
    }
    run(data, size, cuts, nc, 0, 0, &lim, h, &other);
    CHECK(!cmp || same(&whole, &other));
    other.n = 0;
    run(data, size, cuts, nc, 1, 0, &lim, h, &other);
    CHECK(!cmp || same(&whole, &other));
    other.n = 0;

    /* Byte by byte on small inputs. */
    if (size <= 2048) {
        size_t *all = malloc((size + 1) * sizeof(size_t));
        CHECK(all != NULL);
        for (size_t i = 0; i < size; i++) {
            all[i] = i + 1;
        }
        run(data, size, all, size, 0, 0, &lim, h, &other);
        CHECK(!cmp || same(&whole, &other));
        other.n = 0;
        free(all);
    }

    /* Small limits, chunk boundaries, crlf_drop: the two end_chunk() call
     * orders agree. */
    lim.max_msg_size = 64 + (size_t)(h % 1024);
    lim.max_header_size = 32 + (size_t)((h >> 10) % 512);
    lim.max_chunks = (unsigned)((h >> 20) % 5);
    lim.max_msg_time_ms = (h >> 23) % 300;
    lim.crlf_drop = (int)((h >> 32) & 1);
    size_t many[8];
    size_t nm = 0;
    for (int i = 0; i < 8 && size > 0; i++) {
        size_t c = (size_t)((h >> (i * 7)) % (size + 1));
        if (nm == 0 || c >= many[nm - 1]) {
            many[nm++] = c;
        }
    }
    whole.n = 0;
    other.n = 0;
    run(data, size, many, nm, (int)((h >> 40) & 1), 1, &lim, h, &whole);
    run(data, size, many, nm, (int)((h >> 40) & 1), 2, &lim, h, &other);
    CHECK(same(&whole, &other));

    free(whole.v);
    free(other.v);
    return 0;
}
