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
 * Content-Length (full name or compact `l`, any case, SP/HTAB around the
 * colon) must be 1*DIGIT: an empty, signed or non-numeric value, or one that
 * does not fit 64 bits (e.g. 99999999999999999999), is
 * SIPTLS_ERR_FRAME_BAD_CL; a value that fits but makes the message larger
 * than max_msg_size is SIPTLS_ERR_FRAME_TOO_BIG. Several Content-Length
 * headers are fine when their values are equal, else
 * SIPTLS_ERR_FRAME_DUP_CL. A folded Content-Length value (on a continuation
 * line) is not supported (BAD_CL). Lines may end in CRLF or bare LF; the
 * header block ends at the first empty line. A header block holding a NUL
 * byte, or whose start line is neither "SIP/2.0 NNN ..." nor
 * "<token> SP <something> SP SIP/2.0", or a message whose first byte is not
 * a token character, is SIPTLS_ERR_FRAME_GARBAGE.
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
    /** Start line + headers + body, bytes (default 65535). */
    size_t max_msg_size;
    /** Start line + headers + empty line, bytes (default 16384). */
    size_t max_header_size;
    /** Chunks an incomplete message may span (stream: wakeups, see
     *  siptls_stream_framer_end_chunk(); datagram: records); 0 = no limit
     *  (default 4). */
    unsigned max_chunks;
    /** Stream: a chunk that brought at least this many bytes of the message
     *  is progress and does not count against max_chunks — a peer sending a
     *  large message on a slow link delivers a full record per wakeup, a
     *  peer dribbling a message delivers a few bytes. The engine sets 16384
     *  on TLS flows (a full TLS record, RFC 8446 §5.1). 0 = every chunk
     *  counts (default 0). */
    size_t chunk_full_bytes;
    /** Time to complete a message once started, ms; 0 = no limit (default 4000). */
    uint64_t max_msg_time_ms;
    /** 1: a lone CRLF (pong) is discarded silently, not reported (default 0). */
    int crlf_drop;
} siptls_framer_limits;

/** Fill `lim` with the documented defaults. NULL is ignored. The framers'
 *  _new() functions return SIPTLS_ERR_INVAL when max_msg_size or
 *  max_header_size is 0 or above SIZE_MAX / 4. */
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

/** Create a stream framer into *out (freed with siptls_stream_framer_free()).
 *  `lim` is copied (NULL = defaults).
 *  Returns SIPTLS_OK, SIPTLS_ERR_NOMEM or SIPTLS_ERR_INVAL. No buffer is
 *  allocated until the first byte arrives. */
int siptls_stream_framer_new(siptls_stream_framer **out, const siptls_framer_limits *lim);

/** Free the framer and its buffer. NULL is accepted. */
void siptls_stream_framer_free(siptls_stream_framer *f);

/** Copy `len` bytes into the framer. Invalidates events returned before.
 *  Returns SIPTLS_OK, SIPTLS_ERR_NOMEM (nothing copied; the stream may go
 *  on), SIPTLS_ERR_INVAL, or the stored framing error if the stream already
 *  failed. Never more than max_msg_size + max_header_size of undelivered
 *  data is held: feeding more returns SIPTLS_ERR_FRAME_TOO_BIG, which is
 *  terminal (bytes would be lost). A caller that drains next() after each
 *  feed and feeds at most max_header_size bytes at a time never hits this;
 *  reserve() never offers more than the limit allows. */
int siptls_stream_framer_feed(siptls_stream_framer *f, const uint8_t *data, size_t len);

/** Zero-copy feeding: get a writable area of at least `want` bytes (or less
 *  when the limits forbid more) at the end of the buffer, for example to
 *  hand to wolfSSL_read(). Then call siptls_stream_framer_commit() with the
 *  number of bytes written. Returns SIPTLS_OK, SIPTLS_ERR_NOMEM or the
 *  stored error; *avail is 0 when the buffer may not grow (limit reached). */
int siptls_stream_framer_reserve(siptls_stream_framer *f, size_t want, uint8_t **ptr,
                                 size_t *avail);

/** Account for `n` bytes written into the area from reserve() (clamped to
 *  the area's size). No effect after a framing error. */
void siptls_stream_framer_commit(siptls_stream_framer *f, size_t n);

/** Mark the end of a chunk: the caller has fed everything one readiness
 *  event (one wakeup) delivered. Either order works and gives the same
 *  verdicts: feed, end_chunk(), then next() until SIPTLS_AGAIN; or feed,
 *  next() until SIPTLS_AGAIN, end_chunk(), then next() again. The chunk
 *  end is recorded as a stream position and judged against the message it
 *  falls in once next() has parsed that far; next() returns what it decides.
 *  Call next() after each end_chunk() (at most 4 unjudged chunk ends are
 *  kept; beyond that some chunks go uncounted).
 *
 *  A chunk counts for a message when it brought bytes of it, fewer than
 *  chunk_full_bytes when that is set (the first chunk is the one in which
 *  the message's first byte arrived; keepalive CRLFs never count; only the
 *  message's own bytes are weighed). A message still incomplete at the end of its
 *  `max_chunks`-th chunk fails the stream with SIPTLS_ERR_FRAME_CHUNKS (so
 *  exactly max_chunks chunks pass). The clock of a message starts at the
 *  first chunk end at which it was incomplete; a later end_chunk with
 *  now_ms - start > max_msg_time_ms while it is still incomplete fails the
 *  stream with SIPTLS_ERR_FRAME_TIMEOUT (exactly max_msg_time_ms passes).
 *  It may also be called from a timer with no new bytes (see pending()):
 *  then only the time is checked. A lone CRLF that ends the data of a chunk
 *  is reported as a PONG by next() (one cannot wait forever for a second
 *  CRLF). Without end_chunk calls no chunk or time limit applies. `now_ms`
 *  is any monotonic clock in milliseconds. */
void siptls_stream_framer_end_chunk(siptls_stream_framer *f, uint64_t now_ms);

/** Get the next event. Returns SIPTLS_OK with *ev filled, SIPTLS_AGAIN when
 *  more bytes are needed, SIPTLS_ERR_INVAL, or a negative SIPTLS_ERR_FRAME_*
 *  status, which is terminal: every later call (next, feed, reserve)
 *  returns it again (a stream cannot resync). Several messages fed at once
 *  are returned in order by successive calls.
 *
 *  Keepalives (RFC 5626 §3.5.1), between messages only; a bare LF counts as
 *  a CRLF: two line ends in a row are one PING ("\r\n\r\n\r\n\r\n" is
 *  two PINGs); one line end followed by a start line is a PONG, then the
 *  message; one line end at the end of the data waits for the next byte,
 *  or is a PONG when end_chunk() was called after it. With
 *  limits.crlf_drop a PONG is discarded instead of returned. Keepalive
 *  bytes are consumed as they are seen (a CRLF flood costs O(1) memory).
 *
 *  Bytes already scanned are never scanned again: feeding one byte at a
 *  time costs O(n) in total. */
int siptls_stream_framer_next(siptls_stream_framer *f, siptls_frame_event *ev);

/** 1 when bytes of an incomplete message are held (a message is in
 *  progress; a held partial keepalive CRLF does not count), else 0. With
 *  `deadline_ms` non-NULL: stores the time by which the message must
 *  complete (its clock started at an end_chunk() and max_msg_time_ms is
 *  set), else UINT64_MAX (no deadline). */
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

/** Create a datagram framer (one per DTLS session) into *out. `lim` is
 *  copied (NULL = defaults); max_header_size bounds the header block of a
 *  record, max_msg_size the whole (possibly reassembled) message,
 *  max_chunks the records of one message (0 = no limit), max_msg_time_ms
 *  the time to complete a reassembly. Returns SIPTLS_OK, SIPTLS_ERR_NOMEM
 *  or SIPTLS_ERR_INVAL. No buffer is allocated until a partial message
 *  needs one. */
int siptls_dgram_framer_new(siptls_dgram_framer **out, const siptls_framer_limits *lim);

/** Free the framer and any partial message. NULL is accepted. */
void siptls_dgram_framer_free(siptls_dgram_framer *d);

/** Feed one decrypted record. `seq` is the record's 48-bit DTLS sequence
 *  number (epoch in the top 16 bits) or SIPTLS_DGRAM_SEQ_UNKNOWN.
 *  Returns:
 *   SIPTLS_OK            *ev holds a MESSAGE, PING or PONG. A message that
 *                        fits in the record points into `rec` (zero copy);
 *                        a reassembled one points into the framer's buffer
 *                        (valid until the next call on this framer).
 *                        Bytes past Content-Length are discarded; without
 *                        Content-Length the body is the rest of the record.
 *   SIPTLS_AGAIN         nothing to deliver: a partial message was started or
 *                        extended, an empty record, or a lone CRLF was
 *                        dropped (crlf_drop).
 *   SIPTLS_ERR_FRAME_*   this record was malformed or over a limit and was
 *                        dropped; the framer goes on (not terminal). A record
 *                        that ends inside its header block is GARBAGE
 *                        (headers are never reassembled, only bodies).
 *                        CHUNKS, TIMEOUT and LOST (a gap in `seq`, or a new
 *                        message arrived) also mean a partial message was
 *                        dropped: LOST/TIMEOUT are returned for the record
 *                        that found the partial unusable, when that record
 *                        is not valid on its own either (a stray
 *                        continuation); if it is valid, its own event is
 *                        returned and the drop only shows in dropped().
 *   SIPTLS_ERR_NOMEM     the partial message could not be stored (dropped).
 *   SIPTLS_ERR_INVAL     NULL framer/ev, or NULL rec with len > 0.
 *  Keepalive records (only CR and LF bytes, between messages): two or more
 *  line ends ("\r\n\r\n", "\r\n\r\n\r\n", bare LFs count) are one
 *  PING; exactly one line end is a PONG (SIPTLS_AGAIN with crlf_drop); CRs
 *  alone are GARBAGE. Leading CRLFs before a start line are ignored.
 *  While a partial message is pending, every record that continues it is
 *  body, even one made of CRLFs.
 *  A pending partial message that this record cannot continue (a gap in
 *  `seq`, or the record starts a new message: it has a start line and a
 *  complete header block) is dropped and counted (see
 *  siptls_dgram_framer_dropped()); the record is then processed on its own.
 *  Reassembly: a record whose headers are complete and whose Content-Length
 *  announces more body than the record holds starts a partial message; the
 *  next records (consecutive `seq`) append body until Content-Length is
 *  reached; bounded by max_chunks (records), max_msg_size and
 *  max_msg_time_ms (checked against `now_ms`). */
int siptls_dgram_framer_feed(siptls_dgram_framer *d, const uint8_t *rec, size_t len, uint64_t seq,
                             uint64_t now_ms, siptls_frame_event *ev);

/** Number of partial messages dropped so far (lost continuation, limit
 *  breached, timed out). Monotonic; for statistics. */
uint64_t siptls_dgram_framer_dropped(const siptls_dgram_framer *d);

/** Drop a partial message older than max_msg_time_ms at `now_ms` (strictly
 *  more than max_msg_time_ms after its first record; the same check runs on
 *  every feed). Returns SIPTLS_ERR_FRAME_TIMEOUT when one was dropped, else
 *  SIPTLS_OK (SIPTLS_ERR_INVAL for NULL). Invalidates earlier events. */
int siptls_dgram_framer_expire(siptls_dgram_framer *d, uint64_t now_ms);

/** 1 when a partial message is held; stores its deadline when asked
 *  (UINT64_MAX when none is held or max_msg_time_ms is 0). */
int siptls_dgram_framer_pending(const siptls_dgram_framer *d, uint64_t *deadline_ms);

/** Bytes of memory the framer holds now (struct + buffer), for stats. */
size_t siptls_dgram_framer_memory(const siptls_dgram_framer *d);

/* ------------------------------------------------------------------------ */
/* Helpers on a whole message (used by the CLI responder and by hosts)       */
/* ------------------------------------------------------------------------ */

/** Find the first header named `name` (case-insensitive; the compact form
 *  `compact`, e.g. 'l' for Content-Length, 0 for none) in the header block
 *  of a whole message (`header_len` as in siptls_frame_event; the start
 *  line is skipped). Stores a pointer into `msg` to the value, trimmed of
 *  SP/HTAB, and its length (may be 0). Folded (continuation) lines are not
 *  joined: the value is the first line's part. Returns SIPTLS_OK,
 *  SIPTLS_AGAIN when absent, SIPTLS_ERR_INVAL for NULL arguments. */
int siptls_sipmsg_header(const uint8_t *msg, size_t header_len, const char *name, char compact,
                         const uint8_t **value, size_t *value_len);

/** Iterate over every occurrence of a header, in message order (e.g. all
 *  Via header lines; a line holding several comma-separated values is one
 *  occurrence, the values are not split). Set *cursor to 0 before the first
 *  call; each SIPTLS_OK return stores the value like siptls_sipmsg_header()
 *  and advances *cursor past that header line; SIPTLS_AGAIN means no more
 *  occurrences. SIPTLS_ERR_INVAL for NULL arguments.
 *    size_t cur = 0; const uint8_t *v; size_t vl;
 *    while (siptls_sipmsg_header_next(m, hl, "Via", 'v', &cur, &v, &vl) == SIPTLS_OK) { ... } */
int siptls_sipmsg_header_next(const uint8_t *msg, size_t header_len, const char *name, char compact,
                              size_t *cursor, const uint8_t **value, size_t *value_len);

/** 1 when the message is a request (start line is not "SIP/2.0 ...",
 *  compared case-insensitively), 0 for a response, NULL or len 0. */
int siptls_sipmsg_is_request(const uint8_t *msg, size_t len);

#ifdef __cplusplus
}
#endif
#endif
