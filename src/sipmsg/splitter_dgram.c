/* siptls — datagram splitter: how a SIP message is cut into DTLS records.
 *
 * The inverse of the reassembler in framer_dgram.c. A message that fits in
 * one record goes whole. A larger one is cut so that the first record holds
 * the whole header block: the receiver sees Content-Length announce more
 * body than the record carries and appends the following records (sent
 * back to back, so with consecutive sequence numbers) until the body is
 * complete. The header block is read with the receiver's own scanner
 * (sipmsg_headers.c), so the sender splits a message exactly when the
 * receiver (within its size limits) finds a header block with a
 * Content-Length in its first record.
 *
 * The rules, record by record (docs/dtls.md, "Framing"):
 *   1. a message of at most `room` bytes: one record;
 *   2. no header block the framer accepts, or no Content-Length: it cannot
 *      be reassembled, so one record larger than `room` (the IP layer
 *      fragments it) when it is at most `max` bytes, else it cannot be sent;
 *   3. a header block over `room` bytes: it goes as one record (at most
 *      `max`, else the message cannot be sent), the body follows;
 *   4. otherwise the first record is `room` bytes;
 *   5. every later record is `room` bytes, the last one what is left.
 *
 * Pure code: no I/O, no allocation, libc only. */
#include "sipmsg/splitter_dgram.h"

#include "sipmsg/sipmsg_internal.h"

int siptls__dgram_split_scan(const uint8_t *msg, size_t len, size_t *header_len, uint64_t *cl)
{
    /* RFC 3261 §7.5: "Implementations processing SIP messages over
     * stream-oriented transports MUST ignore any CRLF appearing before the
     * start-line"; the datagram framer skips them too, so do we. */
    size_t i = 0;
    while (i < len && (msg[i] == '\r' || msg[i] == '\n')) {
        i++;
    }
    siptls__hdr_scan s;
    siptls__hdr_scan_reset(&s);
    /* No header size limit here: the receiver applies its own. */
    if (siptls__hdr_scan_run(&s, msg + i, len - i, SIZE_MAX) != SIPTLS_OK || !s.have_cl) {
        return 0;
    }
    *header_len = i + s.header_len;
    *cl = s.cl;
    return 1;
}

size_t siptls__dgram_split_next(const uint8_t *msg, size_t len, size_t off, size_t room, size_t max)
{
    if (room == 0 || max == 0 || off > len) {
        return 0;
    }
    size_t left = len - off;
    if (off != 0) {
        return left < room ? left : room;
    }
    if (len <= room) {
        return len;
    }
    size_t hl;
    uint64_t cl;
    if (!siptls__dgram_split_scan(msg, len, &hl, &cl)) {
        return len <= max ? len : 0;
    }
    if (hl > room) {
        return hl <= max ? hl : 0;
    }
    return room;
}
