/* siptls — datagram splitter: how the DTLS sender cuts a SIP message into
 * records that the datagram framer (framer_dgram.c) reassembles.
 *
 * Not installed, not part of the API. A header of its own, apart from
 * sipmsg_internal.h, so that the DTLS transport sees these two calls and
 * not the framers' scanner state. Pure code: no I/O, no allocation. */
#ifndef SIPTLS_SIPMSG_SPLITTER_DGRAM_H
#define SIPTLS_SIPMSG_SPLITTER_DGRAM_H

#include <stddef.h>
#include <stdint.h>

/** 1 when `msg` (`len` bytes) can be reassembled from several records by
 *  the datagram framer: optional CR/LF bytes, then a header block the
 *  framer's scanner accepts, with a Content-Length. Sets *header_len (from
 *  msg[0], the leading CR/LF bytes and the empty line included) and *cl.
 *  0 otherwise (no empty line, a malformed start line or Content-Length, a
 *  NUL byte in the header block, or no Content-Length); the outputs are
 *  then untouched. The reassembled message is exactly `msg` when also
 *  *header_len + *cl == len (extra bytes are discarded by the receiver, a
 *  short body never completes). */
int siptls__dgram_split_scan(const uint8_t *msg, size_t len, size_t *header_len, uint64_t *cl);

/** Length of the DTLS record that carries `msg` from offset `off` on, for
 *  a message of `len` bytes sent in records of `room` plaintext bytes (what
 *  keeps a datagram within dtls_mtu; room <= max) where the DTLS library
 *  writes at most `max` bytes in one record. The rules (docs/dtls.md,
 *  "Framing"): a message of at most `room` bytes is one record; a larger
 *  one that siptls__dgram_split_scan() accepts is cut into `room`-byte
 *  records, the first enlarged to the whole header block when that is
 *  larger than `room`; one it refuses goes as one record. The header block
 *  is scanned only when off == 0 and len > room, so calling this once per
 *  record costs one header scan per split message.
 *  Returns the record length, or 0 when the message cannot be sent: room
 *  or max is 0, off >= len (len 0 included), or the one record it needs
 *  (the whole message, or its header block) is larger than `max`. */
size_t siptls__dgram_split_next(const uint8_t *msg, size_t len, size_t off, size_t room,
                                size_t max);

#endif
