/* siptls — stream framer: SIP over TLS (RFC 3261 §18.3, RFC 5626 §3.5.1).
 *
 * One buffer per flow. [start, end) holds bytes not yet delivered. Between
 * messages (state IDLE) the framer looks at CR/LF keepalives; once the first
 * byte of a start line is seen (state HEADERS) the incremental header scanner
 * runs from where it stopped; once the header block is complete (state BODY)
 * the framer waits for exactly Content-Length body bytes. Messages are
 * delivered as slices of the buffer; the buffer moves only in feed() and
 * reserve() (which invalidate earlier events anyway), only when the tail is
 * too small, and only when the consumed front is at least as large as what
 * is moved, so feeding is amortized O(1) per byte. */
#include "sipmsg/sipmsg_internal.h"

#include <stdlib.h>
#include <string.h>

enum stream_state {
    ST_IDLE = 0, /* between messages: keepalive CRLFs or nothing */
    ST_HEADERS,  /* a start line began at `msg`; looking for the empty line */
    ST_BODY      /* header block complete; waiting for `need` bytes */
};

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* Chunk ends recorded between two next() calls; a caller that calls next()
 * after each end_chunk() (as documented) never has more than one. */
#define MAX_MARKS 4

typedef struct chunk_mark {
    uint64_t off; /* stream offset (bytes ever fed) at the end of the chunk */
    uint64_t now; /* its end_chunk() time */
} chunk_mark;

/* Smallest buffer allocated: one small message or a few TLS reads. */
#define MIN_CAPACITY 4096u

struct siptls_stream_framer {
    siptls_framer_limits lim;
    size_t hold_limit; /* max_msg_size + max_header_size: bytes held at most */

    uint8_t *buf;
    size_t cap;
    size_t start; /* first byte not yet delivered */
    size_t end;   /* end of valid data */

    int err; /* terminal framing error, 0 while healthy */
    enum stream_state state;
    size_t msg;  /* offset of the message in progress (HEADERS/BODY) */
    size_t need; /* BODY: header_len + Content-Length */
    siptls__hdr_scan hs;

    /* Chunk policy. end_chunk() records a mark: the stream offset where the
     * chunk ended and its time. Marks are resolved against the message they
     * fall inside once next() has parsed that far, so the result does not
     * depend on whether the caller drained next() before end_chunk(). */
    uint64_t base;  /* stream offset of buf[0] */
    int dirty;      /* bytes arrived that next() has not settled yet */
    int crlf_flush; /* end_chunk() seen with no byte since: a lone CRLF is a pong */
    chunk_mark marks[MAX_MARKS];
    unsigned nmarks;
    unsigned splits;         /* distinct chunk ends inside the message in progress */
    uint64_t last_split_off; /* offset of the last of them (the message start before) */
    int t_started;           /* t0_ms is valid */
    uint64_t t0_ms;          /* time of the first chunk end inside the message */

    uint64_t scanned; /* test counter: bytes examined (O(n) proof) */
    uint64_t moved;   /* test counter: bytes moved by compaction */
};

int siptls_stream_framer_new(siptls_stream_framer **out, const siptls_framer_limits *lim)
{
    if (out == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *out = NULL;
    siptls_framer_limits l;
    if (lim != NULL) {
        l = *lim;
    } else {
        siptls_framer_limits_init(&l);
    }
    if (siptls__framer_limits_check(&l) != SIPTLS_OK) {
        return SIPTLS_ERR_INVAL;
    }
    siptls_stream_framer *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    f->lim = l;
    f->hold_limit = l.max_msg_size + l.max_header_size;
    f->state = ST_IDLE;
    siptls__hdr_scan_reset(&f->hs);
    *out = f;
    return SIPTLS_OK;
}

void siptls_stream_framer_free(siptls_stream_framer *f)
{
    if (f == NULL) {
        return;
    }
    free(f->buf);
    free(f);
}

/* Move the held bytes to the front of the buffer. Offsets of the scan state
 * are relative to `msg`, so only the absolute ones shift. */
static void compact(siptls_stream_framer *f)
{
    size_t held = f->end - f->start;
    if (held > 0) {
        memmove(f->buf, f->buf + f->start, held);
        f->moved += held;
    }
    if (f->state != ST_IDLE) {
        f->msg -= f->start;
    }
    f->base += f->start;
    f->start = 0;
    f->end = held;
}

/* Make room for `want` more bytes at the end (want <= hold_limit - held). */
static int ensure_tail(siptls_stream_framer *f, size_t want)
{
    if (f->start == f->end && f->start != 0) {
        compact(f); /* nothing held: free to restart at the front */
    }
    if (f->cap - f->end >= want) {
        return SIPTLS_OK;
    }
    /* Moving costs the held bytes; do it only when it frees at least as
     * much as it moves (or when the buffer may not grow any more): every
     * byte moved is paid by a byte consumed, so the total is O(n). */
    size_t held = f->end - f->start;
    if (f->start > 0 && (f->start >= held || f->cap >= f->hold_limit)) {
        compact(f);
        if (f->cap - f->end >= want) {
            return SIPTLS_OK;
        }
    }
    size_t need = f->end + want;
    size_t ncap = f->cap ? f->cap : MIN_CAPACITY;
    while (ncap < need) {
        ncap *= 2;
    }
    /* Invariant cap <= hold_limit (feed()'s fast path relies on it). Here
     * cap < hold_limit, or the compaction above made room. */
    if (ncap > f->hold_limit) {
        ncap = f->hold_limit;
        if (ncap < need) {
            /* Even the largest buffer is too small with the consumed front
             * kept: drop it (held + want <= hold_limit fits then). */
            compact(f);
        }
    }
    uint8_t *nb = realloc(f->buf, ncap);
    if (nb == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    f->buf = nb;
    f->cap = ncap;
    return SIPTLS_OK;
}

static void note_bytes(siptls_stream_framer *f)
{
    f->dirty = 1;
    f->crlf_flush = 0;
}

/* The general case of feed(), out of line so that the fast path below
 * needs no stack frame. */
static NOINLINE int feed_slow(siptls_stream_framer *f, const uint8_t *data, size_t len)
{
    if (f == NULL || (data == NULL && len > 0)) {
        return SIPTLS_ERR_INVAL;
    }
    if (f->err != 0) {
        return f->err;
    }
    if (len == 0) {
        return SIPTLS_OK;
    }
    size_t held = f->end - f->start;
    if (len > f->hold_limit - held) {
        /* The caller did not drain next(), or the peer sends more than any
         * acceptable message: bytes would be lost, so the stream is done. */
        f->err = SIPTLS_ERR_FRAME_TOO_BIG;
        return f->err;
    }
    int rc = ensure_tail(f, len);
    if (rc != SIPTLS_OK) {
        return rc;
    }
    memcpy(f->buf + f->end, data, len);
    f->end += len;
    note_bytes(f);
    return SIPTLS_OK;
}

int siptls_stream_framer_feed(siptls_stream_framer *f, const uint8_t *data, size_t len)
{
    /* Fast path for small feeds that fit the tail: byte-at-a-time callers
     * pay no memcpy call and no buffer management per byte. The hold limit
     * holds too: cap <= hold_limit, so held + len <= end + len <= cap. */
    if (f != NULL && data != NULL && f->err == 0 && len - 1 < 8 && len <= f->cap - f->end) {
        uint8_t *dst = f->buf + f->end;
        for (size_t i = 0; i < len; i++) {
            dst[i] = data[i];
        }
        f->end += len;
        note_bytes(f);
        return SIPTLS_OK;
    }
    return feed_slow(f, data, len);
}

int siptls_stream_framer_reserve(siptls_stream_framer *f, size_t want, uint8_t **ptr, size_t *avail)
{
    if (f == NULL || ptr == NULL || avail == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *ptr = NULL;
    *avail = 0;
    if (f->err != 0) {
        return f->err;
    }
    size_t room = f->hold_limit - (f->end - f->start);
    if (want > room) {
        want = room;
    }
    if (want == 0 && room > 0 && f->buf == NULL) {
        want = room < MIN_CAPACITY ? room : MIN_CAPACITY;
    }
    int rc = ensure_tail(f, want);
    if (rc != SIPTLS_OK) {
        return rc;
    }
    if (f->buf == NULL) {
        return SIPTLS_OK; /* room == 0 before any allocation: cannot happen with valid limits */
    }
    size_t tail = f->cap - f->end;
    *ptr = f->buf + f->end;
    *avail = tail < room ? tail : room;
    return SIPTLS_OK;
}

void siptls_stream_framer_commit(siptls_stream_framer *f, size_t n)
{
    if (f == NULL || n == 0 || f->err != 0 || f->buf == NULL) {
        return;
    }
    size_t tail = f->cap - f->end;
    /* A caller bug must not become a buffer overrun. (The tail never
     * exceeds the hold limit's room: cap <= hold_limit.) */
    if (n > tail) {
        n = tail;
    }
    if (n == 0) {
        return;
    }
    f->end += n;
    note_bytes(f);
}

static int fail(siptls_stream_framer *f, int status)
{
    f->err = status;
    return status;
}

static void message_done(siptls_stream_framer *f)
{
    f->scanned += f->hs.scanned;
    siptls__hdr_scan_reset(&f->hs);
    f->state = ST_IDLE;
    f->splits = 0;
    f->t_started = 0;
}

/* Apply the pending chunk marks to the message in progress, which starts
 * at stream offset `s` and ends at `e` (exclusive; UINT64_MAX while it is
 * incomplete). A mark inside (s < off < e) is a chunk end at which the
 * message was incomplete; marks at or before `s` were between messages and
 * go; marks at or after `e` stay for the next message. Returns SIPTLS_OK
 * or SIPTLS_ERR_FRAME_CHUNKS / _TIMEOUT. */
static int resolve_marks(siptls_stream_framer *f, uint64_t s, uint64_t e)
{
    int rc = SIPTLS_OK;
    unsigned i = 0;
    while (i < f->nmarks && rc == SIPTLS_OK) {
        const chunk_mark *m = &f->marks[i];
        if (m->off >= e) {
            break;
        }
        i++;
        if (m->off <= s) {
            continue;
        }
        /* A chunk that brought bytes of the message (a mark with no new
         * bytes since the previous one is a timer call: time only), unless
         * it brought a full record's worth: that is progress, the limit is
         * against peers that dribble. */
        if (m->off != f->last_split_off) {
            uint64_t brought = m->off - f->last_split_off;
            f->last_split_off = m->off;
            if ((f->lim.chunk_full_bytes == 0 || brought < f->lim.chunk_full_bytes) &&
                ++f->splits >= f->lim.max_chunks && f->lim.max_chunks != 0) {
                /* Incomplete after max_chunks chunks: it needs one more. */
                rc = SIPTLS_ERR_FRAME_CHUNKS;
                break;
            }
        }
        if (!f->t_started) {
            f->t_started = 1;
            f->t0_ms = m->now;
        } else if (f->lim.max_msg_time_ms != 0 && m->now > f->t0_ms &&
                   m->now - f->t0_ms > f->lim.max_msg_time_ms) {
            rc = SIPTLS_ERR_FRAME_TIMEOUT;
        }
    }
    if (i > 0) {
        memmove(f->marks, f->marks + i, (f->nmarks - i) * sizeof(f->marks[0]));
        f->nmarks -= i;
    }
    return rc;
}

/* next() has nothing more to deliver: settle the marks against the state
 * (a message in progress, or none). Returns SIPTLS_AGAIN or an error. */
static int settle(siptls_stream_framer *f)
{
    f->dirty = 0;
    if (f->state == ST_IDLE) {
        f->nmarks = 0; /* no message in progress: keepalives never count */
        return SIPTLS_AGAIN;
    }
    int rc = resolve_marks(f, f->base + f->msg, UINT64_MAX);
    return rc == SIPTLS_OK ? SIPTLS_AGAIN : fail(f, rc);
}

/* Run the header scanner / body check. Returns SIPTLS_OK when the message
 * at f->msg is complete (f->need set), SIPTLS_AGAIN or a framing error. */
static int advance_message(siptls_stream_framer *f)
{
    if (f->state == ST_HEADERS) {
        int rc =
            siptls__hdr_scan_run(&f->hs, f->buf + f->msg, f->end - f->msg, f->lim.max_header_size);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        /* RFC 3261 §18.3: "In the case of stream-oriented transports such
         * as TCP, the Content-Length header field indicates the size of the
         * body. All stream-oriented transports MUST use Content-Length." */
        if (!f->hs.have_cl) {
            return SIPTLS_ERR_FRAME_NO_CL;
        }
        size_t hl = f->hs.header_len;
        if (hl > f->lim.max_msg_size || f->hs.cl > (uint64_t)(f->lim.max_msg_size - hl)) {
            return SIPTLS_ERR_FRAME_TOO_BIG;
        }
        f->need = hl + (size_t)f->hs.cl;
        f->state = ST_BODY;
    }
    return (f->end - f->msg >= f->need) ? SIPTLS_OK : SIPTLS_AGAIN;
}

/* Length of the newline at `p` (CRLF = 2, bare LF = 1), 0 when the byte is
 * not a newline, -1 when a CR is the last byte held (undecided). */
static int newline_at(const siptls_stream_framer *f, size_t p)
{
    uint8_t c = f->buf[p];
    if (c == '\n') {
        return 1;
    }
    if (c == '\r') {
        if (p + 1 >= f->end) {
            return -1;
        }
        return f->buf[p + 1] == '\n' ? 2 : 0;
    }
    return 0;
}

static NOINLINE int next_slow(siptls_stream_framer *f, siptls_frame_event *ev)
{
    if (f == NULL || ev == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    if (f->err != 0) {
        return f->err;
    }
    for (;;) {
        if (f->state == ST_IDLE) {
            if (f->start == f->end) {
                return settle(f);
            }
            /* RFC 3261 §7.5: "implementations processing SIP messages over
             * stream-oriented transports MUST ignore any CRLF appearing
             * before the start-line". RFC 5626 §3.5.1: CRLFCRLF is a ping,
             * a single CRLF its pong. Bare LF counts as a CRLF here. */
            int n1 = newline_at(f, f->start);
            if (n1 < 0) {
                return settle(f); /* a lone CR: wait for its LF */
            }
            if (n1 == 0) {
                uint8_t c = f->buf[f->start];
                if (c == '\r' || !siptls__sipmsg_token_char(c)) {
                    /* A start line begins with a token (method or "SIP"):
                     * binary, a TLS record or a stray CR is garbage now,
                     * not max_header_size bytes later. */
                    return fail(f, SIPTLS_ERR_FRAME_GARBAGE);
                }
                f->state = ST_HEADERS;
                f->msg = f->start;
                f->last_split_off = f->base + f->msg;
                siptls__hdr_scan_reset(&f->hs);
                continue;
            }
            size_t p2 = f->start + (size_t)n1;
            f->scanned += (uint64_t)n1;
            if (p2 == f->end) {
                /* A lone CRLF. Wait for what follows unless the chunk ended
                 * with it: a pong never gets a second CRLF. */
                if (!f->crlf_flush) {
                    return settle(f);
                }
                f->start = p2;
                if (f->lim.crlf_drop) {
                    continue;
                }
                memset(ev, 0, sizeof(*ev));
                ev->kind = SIPTLS_FRAME_PONG;
                return SIPTLS_OK;
            }
            int n2 = newline_at(f, p2);
            if (n2 < 0) {
                return settle(f); /* CRLF CR: a ping in progress */
            }
            memset(ev, 0, sizeof(*ev));
            if (n2 > 0) {
                f->scanned += (uint64_t)n2;
                f->start = p2 + (size_t)n2;
                ev->kind = SIPTLS_FRAME_PING;
                return SIPTLS_OK;
            }
            /* CRLF followed by something else: a pong before a message. */
            f->start = p2;
            if (f->lim.crlf_drop) {
                continue;
            }
            ev->kind = SIPTLS_FRAME_PONG;
            return SIPTLS_OK;
        }

        int rc = advance_message(f);
        if (rc == SIPTLS_AGAIN) {
            return settle(f);
        }
        if (rc != SIPTLS_OK) {
            return fail(f, rc);
        }
        /* Complete; but if a chunk end inside it broke a limit (the caller
         * called end_chunk() before draining), that comes first. */
        if (f->nmarks != 0) {
            uint64_t s = f->base + f->msg;
            rc = resolve_marks(f, s, s + f->need);
            if (rc != SIPTLS_OK) {
                return fail(f, rc);
            }
        }
        const uint8_t *m = f->buf + f->msg;
        ev->kind = SIPTLS_FRAME_MESSAGE;
        ev->data = m;
        ev->len = f->need;
        ev->header_len = f->hs.header_len;
        ev->body = m + f->hs.header_len;
        ev->body_len = f->need - f->hs.header_len;
        f->start = f->msg + f->need;
        message_done(f);
        return SIPTLS_OK;
    }
}

int siptls_stream_framer_next(siptls_stream_framer *f, siptls_frame_event *ev)
{
    /* Fast paths for a message in progress that a few more bytes did not
     * complete (byte-at-a-time feeding): no stack frame, no scanner call.
     * They only skip work the slow path would find to be a no-op. */
    if (f != NULL && ev != NULL && f->err == 0 && f->nmarks == 0) {
        if (f->state == ST_BODY && f->end - f->msg < f->need) {
            f->dirty = 0;
            return SIPTLS_AGAIN;
        }
        if (f->state == ST_HEADERS) {
            size_t avail = f->end - f->msg;
            size_t p = f->hs.scan;
            if (avail - p <= 8 && avail < f->lim.max_header_size) {
                const uint8_t *m = f->buf + f->msg;
                size_t q = p;
                while (q < avail && m[q] != '\n') {
                    q++;
                }
                if (q == avail) {
                    f->hs.scanned += avail - p;
                    f->hs.scan = avail;
                    f->dirty = 0;
                    return SIPTLS_AGAIN;
                }
            }
        }
    }
    return next_slow(f, ev);
}

/* 1 when bytes of a message (not keepalive CR/LF) are held. */
static int message_in_progress(const siptls_stream_framer *f)
{
    if (f->state != ST_IDLE) {
        return 1;
    }
    /* IDLE after next() returned SIPTLS_AGAIN holds at most "CRLF CR"; if
     * the caller has not drained yet, stop at the first other byte. */
    for (size_t p = f->start; p < f->end; p++) {
        if (f->buf[p] != '\r' && f->buf[p] != '\n') {
            return 1;
        }
    }
    return 0;
}

void siptls_stream_framer_end_chunk(siptls_stream_framer *f, uint64_t now_ms)
{
    if (f == NULL || f->err != 0) {
        return;
    }
    f->crlf_flush = 1;
    if (f->nmarks == MAX_MARKS) {
        /* The caller does not call next() between chunks: forget the
         * second oldest mark (the oldest may start a message's clock). */
        memmove(f->marks + 1, f->marks + 2, (MAX_MARKS - 2) * sizeof(f->marks[0]));
        f->nmarks--;
    }
    f->marks[f->nmarks].off = f->base + f->end;
    f->marks[f->nmarks].now = now_ms;
    f->nmarks++;
    if (!f->dirty) {
        /* Drained already: the state says what is in progress, so decide
         * now (pending() then knows the deadline without a next()). */
        (void)settle(f);
    }
}

int siptls_stream_framer_pending(const siptls_stream_framer *f, uint64_t *deadline_ms)
{
    if (f == NULL) {
        return 0;
    }
    int busy = message_in_progress(f);
    if (deadline_ms != NULL) {
        if (busy && f->t_started && f->lim.max_msg_time_ms != 0 &&
            f->t0_ms <= UINT64_MAX - f->lim.max_msg_time_ms) {
            *deadline_ms = f->t0_ms + f->lim.max_msg_time_ms;
        } else {
            *deadline_ms = UINT64_MAX;
        }
    }
    return busy;
}

void siptls_stream_framer_trim(siptls_stream_framer *f)
{
    if (f == NULL || f->buf == NULL || f->start != f->end) {
        return;
    }
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
    f->base += f->end;
    f->start = 0;
    f->end = 0;
    f->msg = 0;
}

size_t siptls_stream_framer_memory(const siptls_stream_framer *f)
{
    if (f == NULL) {
        return 0;
    }
    return sizeof(*f) + f->cap;
}

uint64_t siptls__stream_framer_scanned(const siptls_stream_framer *f)
{
    return f->scanned + f->hs.scanned;
}

uint64_t siptls__stream_framer_moved(const siptls_stream_framer *f)
{
    return f->moved;
}

size_t siptls__stream_framer_capacity(const siptls_stream_framer *f)
{
    return f->cap;
}
