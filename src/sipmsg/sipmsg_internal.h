/* siptls — internals shared by the stream and datagram framers.
 *
 * Not installed, not part of the API. The header-block scanner lives in
 * sipmsg_headers.c and is used by both framers: the stream framer runs it
 * incrementally over a growing buffer, the datagram framer runs it once over
 * a whole record. */
#ifndef SIPTLS_SIPMSG_INTERNAL_H
#define SIPTLS_SIPMSG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "siptls/sipmsg.h"

/** Incremental scan state of one header block. Every offset is relative to
 *  the first byte of the message (the start line), so the stream framer may
 *  move its buffer without touching this. Zero-initialise before the first
 *  call (siptls__hdr_scan_reset()). */
typedef struct siptls__hdr_scan {
    size_t scan;       /**< where the '\n' search resumes: bytes before were looked at */
    size_t line;       /**< start of the line being read (its '\n' not yet seen) */
    size_t header_len; /**< set when complete: up to and including the empty line */
    uint64_t cl;       /**< Content-Length value when have_cl */
    int have_cl;       /**< a Content-Length (or l) header was seen */
    uint64_t scanned;  /**< bytes examined so far (test counter for the O(n) proof) */
} siptls__hdr_scan;

static inline void siptls__hdr_scan_reset(siptls__hdr_scan *s)
{
    s->scan = 0;
    s->line = 0;
    s->header_len = 0;
    s->cl = 0;
    s->have_cl = 0;
    s->scanned = 0;
}

/** Scan `avail` bytes of the message starting at `msg` for the end of the
 *  header block, resuming where the previous call stopped (only bytes past
 *  s->scan are searched; each complete line is examined once). Checks the
 *  start line, Content-Length (full and compact form, duplicates) and NUL
 *  bytes. Returns SIPTLS_OK when the block is complete (s->header_len,
 *  s->have_cl, s->cl set), SIPTLS_AGAIN when more bytes are needed, or
 *  SIPTLS_ERR_FRAME_GARBAGE / _BAD_CL / _DUP_CL / _HDR_TOO_BIG (no empty
 *  line within max_hdr bytes). */
int siptls__hdr_scan_run(siptls__hdr_scan *s, const uint8_t *msg, size_t avail, size_t max_hdr);

/** 1 when `line` (without its CR LF) looks like a SIP start line: a status
 *  line "SIP/2.0 NNN ..." or a request line ending in " SIP/2.0". */
int siptls__sipmsg_start_line_ok(const uint8_t *line, size_t len);

/** 1 when `c` may begin a start line (an RFC 3261 token character: a
 *  method, or the 'S' of "SIP/2.0"). */
int siptls__sipmsg_token_char(uint8_t c);

/** Validate limits: returns SIPTLS_OK or SIPTLS_ERR_INVAL. */
int siptls__framer_limits_check(const siptls_framer_limits *lim);

/** Test-only: total bytes the stream framer's scanners have examined since
 *  it was created (header search, NUL check and keepalive bytes). Used by
 *  the unit tests to prove that feeding one byte at a time is O(n). */
uint64_t siptls__stream_framer_scanned(const siptls_stream_framer *f);

/** Test-only: total bytes moved by buffer compaction since creation. */
uint64_t siptls__stream_framer_moved(const siptls_stream_framer *f);

/** Test-only: current buffer capacity of the stream framer (0 = none). */
size_t siptls__stream_framer_capacity(const siptls_stream_framer *f);

#endif
