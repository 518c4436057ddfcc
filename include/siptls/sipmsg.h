/* siptls — the SIP message layer.
 *
 * The library does no I/O here. This layer is fed plaintext bytes (from a
 * TLS stream or from decrypted DTLS records) and returns events: a whole SIP
 * message, a keepalive ping (CRLFCRLF), a keepalive pong (lone CRLF), or a
 * framing error. It includes libc only: no sockets, no libev, no wolfSSL,
 * no clock (time is passed in as `now_ms`).
 *
 * Rules implemented (see docs/architecture.md and docs/admin-guide.md):
 *   - RFC 3261 §18.3: "In the case of stream-oriented transports such as
 *     TCP, the Content-Length header field indicates the size of the body.
 *     All stream-oriented transports MUST use Content-Length"; on datagrams
 *     it is optional and bytes past it are discarded.
 *   - RFC 3261 §7.5: CRLFs before a start line are ignored.
 *   - RFC 5626 §3.5.1: CRLFCRLF is a ping, a lone CRLF is its pong.
 *
 * Threading: a framer is used by one thread at a time; no global state. */
#ifndef SIPTLS_SIPMSG_H
#define SIPTLS_SIPMSG_H

#include <stddef.h>
#include <stdint.h>

#include "siptls/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Limits shared by both framers. Fill with siptls_framer_limits_init(). */
typedef struct siptls_framer_limits {
    size_t max_msg_size;     /**< start line + headers + body, bytes (default 65535) */
    size_t max_header_size;  /**< start line + headers + empty line (default 16384) */
    unsigned max_chunks;     /**< chunks an incomplete message may span; 0 = no limit (default 4) */
    uint64_t max_msg_time_ms;/**< time to complete a message once started; 0 = no limit (default 4000) */
    int crlf_drop;           /**< 1: a lone CRLF (pong) is discarded silently, not reported (default 0) */
} siptls_framer_limits;

/** Fill `lim` with the documented defaults. */
void siptls_framer_limits_init(siptls_framer_limits *lim);

typedef enum siptls_frame_kind {
    SIPTLS_FRAME_MESSAGE = 1, /**< a whole SIP message */
    SIPTLS_FRAME_PING = 2,    /**< CRLFCRLF keepalive: answer CRLF if pingpong is on */
    SIPTLS_FRAME_PONG = 3     /**< lone CRLF: the answer to our ping (refreshes liveness) */
} siptls_frame_kind;

/** One event. For a MESSAGE, `data`/`len` is the whole message (start line,
 *  headers, the empty line and exactly Content-Length body bytes),
 *  `header_len` is the length up to and including the empty line, and
 *  `body`/`body_len` the body. The bytes are borrowed: they stay valid until
 *  the next call on the same framer (zero copy: they point into the framer's
 *  buffer, or into the caller's record for datagrams). For PING/PONG, data
 *  is NULL and lengths are 0. */
typedef struct siptls_frame_event {
    siptls_frame_kind kind;
    const uint8_t *data;
    size_t len;
    size_t header_len;
    const uint8_t *body;
    size_t body_len;
} siptls_frame_event;

/* ------------------------------------------------------------------------ */
/* Stream framer (TLS over TCP)                                             */
/* ------------------------------------------------------------------------ */

typedef struct siptls_stream_framer siptls_stream_framer;

/** Create a stream framer. `lim` is copied (NULL = defaults).
 *  Returns SIPTLS_OK, SIPTLS_ERR_NOMEM or SIPTLS_ERR_INVAL. No buffer is
 *  allocated until the first byte arrives. */
int siptls_stream_framer_new(siptls_stream_framer **out, const siptls_framer_limits *lim);

/** Free the framer and its buffer. NULL is accepted. */
void siptls_stream_framer_free(siptls_stream_framer *f);

/** Copy `len` bytes into the framer. Invalidates events returned before.
 *  Returns SIPTLS_OK, SIPTLS_ERR_NOMEM, or the stored framing error if the
 *  stream already failed. Never more than max_msg_size + max_header_size of
 *  unparsed data is held: feeding more returns SIPTLS_ERR_FRAME_TOO_BIG. */
int siptls_stream_framer_feed(siptls_stream_framer *f, const uint8_t *data, size_t len);

/** Zero-copy feeding: get a writable area of at least `want` bytes (or less
 *  when the limits forbid more) at the end of the buffer, for example to
 *  hand to wolfSSL_read(). Then call siptls_stream_framer_commit() with the
 *  number of bytes written. Returns SIPTLS_OK, SIPTLS_ERR_NOMEM or the
 *  stored error; *avail is 0 when the buffer may not grow (limit reached). */
int siptls_stream_framer_reserve(siptls_stream_framer *f, size_t want, uint8_t **ptr, size_t *avail);

/** Account for `n` bytes written into the area from reserve(). */
void siptls_stream_framer_commit(siptls_stream_framer *f, size_t n);

/** Mark the end of a chunk: the caller has drained everything one readiness
 *  event (one wakeup) delivered. A message that is still incomplete after
 *  `max_chunks` chunks, or older than max_msg_time_ms, fails the stream on
 *  the next siptls_stream_framer_next(). A lone CRLF that ends the data of
 *  a chunk is reported as a PONG (one cannot wait forever for a second CRLF).
 *  `now_ms` is any monotonic clock in milliseconds. */
void siptls_stream_framer_end_chunk(siptls_stream_framer *f, uint64_t now_ms);

/** Get the next event. Returns SIPTLS_OK with *ev filled, SIPTLS_AGAIN when
 *  more bytes are needed, or a negative SIPTLS_ERR_FRAME_* status, which is
 *  terminal: every later call returns it again (a stream cannot resync).
 *  Bytes already scanned are never scanned again: feeding one byte at a
 *  time costs O(n) in total. */
int siptls_stream_framer_next(siptls_stream_framer *f, siptls_frame_event *ev);

/** 1 when bytes of an incomplete message are held (a message is in
 *  progress), else 0. With `deadline_ms` non-NULL and a message in progress
 *  and max_msg_time_ms set, stores the time by which it must complete. */
int siptls_stream_framer_pending(const siptls_stream_framer *f, uint64_t *deadline_ms);

/** Release the buffer when nothing is held (idle flows keep no buffer).
 *  Safe to call any time; a no-op when bytes are pending. */
void siptls_stream_framer_trim(siptls_stream_framer *f);

/** Bytes of memory the framer holds now (struct + buffer), for stats. */
size_t siptls_stream_framer_memory(const siptls_stream_framer *f);

/* ------------------------------------------------------------------------ */
/* Datagram path (DTLS): one record = one message, with reassembly          */
/* ------------------------------------------------------------------------ */

typedef struct siptls_dgram_framer siptls_dgram_framer;

/** Record sequence number unknown: continuation records are then accepted
 *  in arrival order without the contiguity check. */
#define SIPTLS_DGRAM_SEQ_UNKNOWN UINT64_MAX

int siptls_dgram_framer_new(siptls_dgram_framer **out, const siptls_framer_limits *lim);
void siptls_dgram_framer_free(siptls_dgram_framer *d);

/** Feed one decrypted record. `seq` is the record's 48-bit DTLS sequence
 *  number (epoch in the top 16 bits) or SIPTLS_DGRAM_SEQ_UNKNOWN.
 *  Returns:
 *   SIPTLS_OK            *ev holds a MESSAGE, PING or PONG. A message that
 *                        fits in the record points into `rec` (zero copy);
 *                        a reassembled one points into the framer's buffer.
 *                        Bytes past Content-Length are discarded.
 *   SIPTLS_AGAIN         nothing to deliver: a partial message was started or
 *                        extended, or a lone CRLF was dropped (crlf_drop).
 *   SIPTLS_ERR_FRAME_*   this record was malformed or over a limit and was
 *                        dropped; the framer goes on (not terminal).
 *  A pending partial message that this record cannot continue (a gap in
 *  `seq`, or the record starts a new message: it has a start line and a
 *  complete header block) is dropped and counted (see
 *  siptls_dgram_framer_dropped()); the record is then processed on its own.
 *  Reassembly: a record whose headers are complete and whose Content-Length
 *  announces more body than the record holds starts a partial message; the
 *  next records (consecutive `seq`) append body until Content-Length is
 *  reached; bounded by max_chunks (records), max_msg_size and
 *  max_msg_time_ms (checked against `now_ms`). */
int siptls_dgram_framer_feed(siptls_dgram_framer *d, const uint8_t *rec, size_t len,
                             uint64_t seq, uint64_t now_ms, siptls_frame_event *ev);

/** Number of partial messages dropped so far (lost continuation, limit
 *  breached, timed out). Monotonic; for statistics. */
uint64_t siptls_dgram_framer_dropped(const siptls_dgram_framer *d);

/** Drop a partial message older than max_msg_time_ms at `now_ms`.
 *  Returns SIPTLS_ERR_FRAME_TIMEOUT when one was dropped, else SIPTLS_OK. */
int siptls_dgram_framer_expire(siptls_dgram_framer *d, uint64_t now_ms);

/** 1 when a partial message is held; stores its deadline when asked. */
int siptls_dgram_framer_pending(const siptls_dgram_framer *d, uint64_t *deadline_ms);

/* ------------------------------------------------------------------------ */
/* Helpers on a whole message (used by the CLI responder and by hosts)       */
/* ------------------------------------------------------------------------ */

/** Find the first header named `name` (case-insensitive; the compact form
 *  `compact`, e.g. 'l' for Content-Length, 0 for none) in the header block
 *  of a whole message. Stores a pointer to the trimmed value and its length.
 *  Folded (continuation) lines are not joined. Returns SIPTLS_OK or
 *  SIPTLS_AGAIN when absent. */
int siptls_sipmsg_header(const uint8_t *msg, size_t header_len, const char *name, char compact,
                         const uint8_t **value, size_t *value_len);

/** 1 when the message is a request (start line is not "SIP/2.0 ..."). */
int siptls_sipmsg_is_request(const uint8_t *msg, size_t len);

#ifdef __cplusplus
}
#endif
#endif
