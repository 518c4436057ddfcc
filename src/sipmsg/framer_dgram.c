/* siptls — datagram framer: SIP over DTLS (RFC 3261 §18.3).
 *
 * A record normally holds one whole message and is delivered in place (zero
 * copy). The only state is an optional partial message: a record whose
 * header block is complete but whose Content-Length announces more body
 * than it carries. Its bytes are copied into a buffer of exactly the
 * announced size, and the following records of the flow append body until
 * it is complete. Every failure drops at most that partial message; the
 * framer itself never fails. */
#include "sipmsg/sipmsg_internal.h"

#include <stdlib.h>
#include <string.h>

struct siptls_dgram_framer {
    siptls_framer_limits lim;

    uint8_t *buf; /* the partial message (or the last reassembled one) */
    size_t cap;
    int release; /* buf holds a delivered message: free it on the next call */

    int partial; /* a partial message is held */
    size_t have; /* bytes of it held */
    size_t need; /* header_len + Content-Length */
    size_t header_len;
    unsigned records;  /* records it spans so far (the first counts as 1) */
    uint64_t t0_ms;    /* now_ms of its first record */
    uint64_t last_seq; /* seq of its last record, or SIPTLS_DGRAM_SEQ_UNKNOWN */

    uint64_t dropped;
};

int siptls_dgram_framer_new(siptls_dgram_framer **out, const siptls_framer_limits *lim)
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
    siptls_dgram_framer *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    d->lim = l;
    d->last_seq = SIPTLS_DGRAM_SEQ_UNKNOWN;
    *out = d;
    return SIPTLS_OK;
}

void siptls_dgram_framer_free(siptls_dgram_framer *d)
{
    if (d == NULL) {
        return;
    }
    free(d->buf);
    free(d);
}

static void release_buffer(siptls_dgram_framer *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
    d->release = 0;
}

static void drop_partial(siptls_dgram_framer *d)
{
    d->partial = 0;
    d->dropped++;
    release_buffer(d);
}

static int timed_out(const siptls_dgram_framer *d, uint64_t now_ms)
{
    return d->lim.max_msg_time_ms != 0 && now_ms > d->t0_ms &&
           now_ms - d->t0_ms > d->lim.max_msg_time_ms;
}

static int is_crlf(uint8_t c)
{
    return c == '\r' || c == '\n';
}

/* 1 when the record starts a message of its own: a start line (after
 * optional CRLFs) and an empty line ending a header block. Such a record
 * cannot be the continuation of a body (or if it is, the sender is beyond
 * help). */
static int starts_message(const uint8_t *rec, size_t len)
{
    size_t i = 0;
    while (i < len && is_crlf(rec[i])) {
        i++;
    }
    if (i == len || !siptls__sipmsg_token_char(rec[i])) {
        return 0;
    }
    const uint8_t *p = rec + i;
    size_t n = len - i;
    const uint8_t *nl = memchr(p, '\n', n);
    if (nl == NULL) {
        return 0;
    }
    size_t ll = (size_t)(nl - p);
    if (ll > 0 && p[ll - 1] == '\r') {
        ll--;
    }
    if (!siptls__sipmsg_start_line_ok(p, ll)) {
        return 0;
    }
    /* Look for the empty line that ends the header block. */
    size_t q = (size_t)(nl - p) + 1; /* start of the second line */
    for (;;) {
        if (q < n && p[q] == '\n') {
            return 1;
        }
        if (q + 1 < n && p[q] == '\r' && p[q + 1] == '\n') {
            return 1;
        }
        nl = q < n ? memchr(p + q, '\n', n - q) : NULL;
        if (nl == NULL) {
            return 0;
        }
        q = (size_t)(nl - p) + 1;
    }
}

static void fill_message(siptls_frame_event *ev, const uint8_t *m, size_t len, size_t header_len)
{
    ev->kind = SIPTLS_FRAME_MESSAGE;
    ev->data = m;
    ev->len = len;
    ev->header_len = header_len;
    ev->body = m + header_len;
    ev->body_len = len - header_len;
}

/* A record with no partial message pending. */
static int single_record(siptls_dgram_framer *d, const uint8_t *rec, size_t len, uint64_t seq,
                         uint64_t now_ms, siptls_frame_event *ev)
{
    if (len == 0) {
        return SIPTLS_AGAIN; /* an empty record is legal in (D)TLS; nothing in it */
    }
    size_t i = 0;
    while (i < len && is_crlf(rec[i])) {
        i++;
    }
    if (i == len) {
        /* Only CR and LF bytes. RFC 5626 §3.5.1 keepalives: with two or
         * more line ends (CRLFCRLF, or more) the record is one ping (one
         * datagram, one answer); with exactly one it is a pong; CRs alone
         * are garbage. */
        size_t lf = 0;
        for (size_t k = 0; k < len; k++) {
            lf += rec[k] == '\n';
        }
        if (lf == 0) {
            return SIPTLS_ERR_FRAME_GARBAGE;
        }
        if (lf >= 2) {
            ev->kind = SIPTLS_FRAME_PING;
            return SIPTLS_OK;
        }
        if (d->lim.crlf_drop) {
            return SIPTLS_AGAIN;
        }
        ev->kind = SIPTLS_FRAME_PONG;
        return SIPTLS_OK;
    }
    /* RFC 3261 §7.5: CRLFs before the start line are ignored. */
    const uint8_t *m = rec + i;
    size_t mlen = len - i;
    if (!siptls__sipmsg_token_char(m[0])) {
        return SIPTLS_ERR_FRAME_GARBAGE;
    }
    siptls__hdr_scan s;
    siptls__hdr_scan_reset(&s);
    int rc = siptls__hdr_scan_run(&s, m, mlen, d->lim.max_header_size);
    if (rc == SIPTLS_AGAIN) {
        /* The record ended inside the header block: headers are never
         * reassembled (only bodies are). */
        return SIPTLS_ERR_FRAME_GARBAGE;
    }
    if (rc != SIPTLS_OK) {
        return rc;
    }
    size_t hl = s.header_len;
    size_t body_avail = mlen - hl;
    size_t max = d->lim.max_msg_size;
    if (!s.have_cl) {
        /* RFC 3261 §18.3: "If the message has no Content-Length header
         * field, the message body is assumed to end at the end of the
         * transport packet." */
        if (mlen > max) {
            return SIPTLS_ERR_FRAME_TOO_BIG;
        }
        fill_message(ev, m, mlen, hl);
        return SIPTLS_OK;
    }
    if (hl > max || s.cl > (uint64_t)(max - hl)) {
        return SIPTLS_ERR_FRAME_TOO_BIG;
    }
    size_t cl = (size_t)s.cl;
    if (cl <= body_avail) {
        /* RFC 3261 §18.3: "If there are additional bytes in the transport
         * packet beyond the end of the body, they MUST be discarded." */
        fill_message(ev, m, hl + cl, hl);
        return SIPTLS_OK;
    }
    /* RFC 3261 §18.3 says "If the transport packet ends before the end of
     * the message body, this is considered an error"; over DTLS a large
     * message may be cut into records, so the body is reassembled from the
     * next records, within the limits. */
    if (d->lim.max_chunks == 1) {
        d->dropped++;
        return SIPTLS_ERR_FRAME_CHUNKS;
    }
    size_t need = hl + cl;
    if (d->cap < need) {
        uint8_t *nb = realloc(d->buf, need);
        if (nb == NULL) {
            d->dropped++;
            return SIPTLS_ERR_NOMEM;
        }
        d->buf = nb;
        d->cap = need;
    }
    memcpy(d->buf, m, mlen);
    d->partial = 1;
    d->have = mlen;
    d->need = need;
    d->header_len = hl;
    d->records = 1;
    d->t0_ms = now_ms;
    d->last_seq = seq;
    return SIPTLS_AGAIN;
}

static int continue_partial(siptls_dgram_framer *d, const uint8_t *rec, size_t len, uint64_t seq,
                            siptls_frame_event *ev)
{
    d->last_seq = seq;
    if (len == 0) {
        return SIPTLS_AGAIN; /* empty record: nothing appended, not counted */
    }
    d->records++;
    size_t take = d->need - d->have;
    if (take > len) {
        take = len; /* bytes past Content-Length are discarded (§18.3) */
    }
    memcpy(d->buf + d->have, rec, take);
    d->have += take;
    if (d->have == d->need) {
        d->partial = 0;
        d->release = 1; /* the event points into buf until the next call */
        fill_message(ev, d->buf, d->need, d->header_len);
        return SIPTLS_OK;
    }
    if (d->lim.max_chunks != 0 && d->records >= d->lim.max_chunks) {
        /* It would need more than max_chunks records. */
        drop_partial(d);
        return SIPTLS_ERR_FRAME_CHUNKS;
    }
    return SIPTLS_AGAIN;
}

int siptls_dgram_framer_feed(siptls_dgram_framer *d, const uint8_t *rec, size_t len, uint64_t seq,
                             uint64_t now_ms, siptls_frame_event *ev)
{
    if (d == NULL || ev == NULL || (rec == NULL && len > 0)) {
        return SIPTLS_ERR_INVAL;
    }
    memset(ev, 0, sizeof(*ev));
    if (d->release) {
        release_buffer(d);
    }
    int reason = 0;
    if (d->partial) {
        if (timed_out(d, now_ms)) {
            drop_partial(d);
            reason = SIPTLS_ERR_FRAME_TIMEOUT;
        } else if (starts_message(rec, len)) {
            drop_partial(d);
            reason = SIPTLS_ERR_FRAME_LOST;
        } else if (seq != SIPTLS_DGRAM_SEQ_UNKNOWN && d->last_seq != SIPTLS_DGRAM_SEQ_UNKNOWN &&
                   seq != d->last_seq + 1) {
            /* A record in between was lost (or reordered): the body would
             * be corrupt. */
            drop_partial(d);
            reason = SIPTLS_ERR_FRAME_LOST;
        } else {
            return continue_partial(d, rec, len, seq, ev);
        }
    }
    int rc = single_record(d, rec, len, seq, now_ms, ev);
    if (reason != 0 && rc != SIPTLS_OK && rc != SIPTLS_AGAIN) {
        /* The record was a stray continuation: report why the partial
         * message it belonged to was lost. */
        return reason;
    }
    return rc;
}

uint64_t siptls_dgram_framer_dropped(const siptls_dgram_framer *d)
{
    return d ? d->dropped : 0;
}

int siptls_dgram_framer_expire(siptls_dgram_framer *d, uint64_t now_ms)
{
    if (d == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    if (d->release) {
        release_buffer(d);
    }
    if (d->partial && timed_out(d, now_ms)) {
        drop_partial(d);
        return SIPTLS_ERR_FRAME_TIMEOUT;
    }
    return SIPTLS_OK;
}

int siptls_dgram_framer_pending(const siptls_dgram_framer *d, uint64_t *deadline_ms)
{
    if (d == NULL) {
        return 0;
    }
    if (deadline_ms != NULL) {
        if (d->partial && d->lim.max_msg_time_ms != 0 &&
            d->t0_ms <= UINT64_MAX - d->lim.max_msg_time_ms) {
            *deadline_ms = d->t0_ms + d->lim.max_msg_time_ms;
        } else {
            *deadline_ms = UINT64_MAX;
        }
    }
    return d->partial;
}

size_t siptls_dgram_framer_memory(const siptls_dgram_framer *d)
{
    if (d == NULL) {
        return 0;
    }
    return sizeof(*d) + d->cap;
}
