/* Test oracles for the datagram splitter (src/sipmsg/splitter_dgram.c).
 * Header-only, included by tests/unit/test_sipmsg_split.c and
 * tests/fuzz/fuzz_split.c.
 *
 * ref_split_next(): the splitter as it was in dtls/dtls_transport.c
 * (header_block_len and next_record) before it moved to src/sipmsg, its
 * logic unchanged, so that the tests can show the record sizes did not
 * change. Where the two differ on purpose (a header block the receiver's
 * scanner refuses; two or more line ends before the start line), the tests
 * say so: the DIFFERS vectors in tests/vectors/split and the conditions in
 * fuzz_split.c.
 *
 * ref_looks_like_start(): the datagram framer's rule for "this record
 * starts a new message" (framer_dgram.c, starts_message), which drops a
 * partial message when a continuation record happens to look like one
 * (the known limit in docs/dtls.md). */
#ifndef SIPTLS_TEST_SPLIT_ORACLE_H
#define SIPTLS_TEST_SPLIT_ORACLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sipmsg/sipmsg_internal.h"
#include "siptls/sipmsg.h"

/* CR and LF bytes before the start line (the receiver skips them). */
static inline size_t ref_leading_crlf(const uint8_t *m, size_t len)
{
    size_t i = 0;
    while (i < len && (m[i] == '\r' || m[i] == '\n')) {
        i++;
    }
    return i;
}

/* CR/LF, a valid start line, and an empty line later in the same record. */
static inline int ref_looks_like_start(const uint8_t *r, size_t n)
{
    size_t i = ref_leading_crlf(r, n);
    const uint8_t *nl = i < n ? memchr(r + i, '\n', n - i) : NULL;
    if (nl == NULL) {
        return 0;
    }
    size_t e = (size_t)(nl - r);
    size_t ll = e - i;
    if (ll > 0 && r[e - 1] == '\r') {
        ll--;
    }
    if (!siptls__sipmsg_start_line_ok(r + i, ll)) {
        return 0;
    }
    for (size_t q = e + 1; q < n; q++) {
        if (r[q - 1] == '\n' && (r[q] == '\n' || (r[q] == '\r' && q + 1 < n && r[q + 1] == '\n'))) {
            return 1;
        }
    }
    return 0;
}

/* The end of the header block (after the empty line), 0 when there is
 * none: CRLF CRLF or bare LF LF. */
static inline size_t ref_header_block_len(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n') {
            continue;
        }
        if (p[i + 1] == '\n') {
            return i + 2;
        }
        if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

/* Length of the next record from `off`; 0 when the message cannot be sent. */
static inline size_t ref_split_next(const uint8_t *msg, size_t len, size_t off, size_t space,
                                    size_t max)
{
    if (space == 0 || max == 0) {
        return 0;
    }
    size_t left = len - off;
    if (off != 0) {
        return left < space ? left : space;
    }
    if (len <= space) {
        return len;
    }
    size_t hl = ref_header_block_len(msg, len);
    const uint8_t *v;
    size_t vl;
    int has_cl =
        hl != 0 && siptls_sipmsg_header(msg, hl, "Content-Length", 'l', &v, &vl) == SIPTLS_OK;
    if (!has_cl) {
        return len <= max ? len : 0;
    }
    if (hl > space) {
        return hl <= max ? hl : 0;
    }
    return space;
}

#endif
