/* siptls — what siptls needs from inside the bundled wolfSSL and its public
 * API does not give: the record number (epoch, sequence number) of the
 * last record wolfSSL read. DTLS 1.3 encrypts sequence numbers (RFC 9147
 * §4.2.3), so siptls cannot read them from the datagram as it does on DTLS
 * 1.2; it needs them to put multi-record messages together in order and to
 * move a Connection ID session only on its newest record (RFC 9146 §6).
 *
 * Built by cmake/wolfssl/bundle.sh in wolfSSL's own build tree, with its
 * config.h and exactly the flags of the library (so wolfssl/internal.h has
 * the layout libwolfssl.a was built with), into PREFIX/lib/
 * libsiptls_wolfshim.a; never with Debian's system wolfSSL (no internal
 * headers there, and no DTLS 1.3). Hidden: not exported from libsiptls. */
/* The order of these includes matters (options.h before internal.h):
 * clang-format must not sort them. */
/* clang-format off */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <wolfssl/options.h>
#include <wolfssl/internal.h>
/* w64GetHigh32() and friends, as wolfSSL's own sources get them */
#ifdef NO_INLINE
#include <wolfssl/wolfcrypt/misc.h>
#else
#define WOLFSSL_MISC_INCLUDED
#include <wolfcrypt/src/misc.c>
#endif
/* clang-format on */

#include <stdint.h>

/* Returns 0 and fills *epoch, *seq for the record wolfSSL processed last
 * on `ssl` (DTLS only); -1 otherwise. */
__attribute__((visibility("hidden"))) int
siptls_wolfssl_last_record_number(WOLFSSL *ssl, uint64_t *epoch, uint64_t *seq)
{
    if (ssl == NULL || !ssl->options.dtls) {
        return -1;
    }
#ifdef WOLFSSL_DTLS13
    if (IsAtLeastTLSv1_3(ssl->version)) {
        *epoch = ((uint64_t)w64GetHigh32(ssl->keys.curEpoch64) << 32) |
                 w64GetLow32(ssl->keys.curEpoch64);
        *seq = ((uint64_t)w64GetHigh32(ssl->keys.curSeq) << 32) | w64GetLow32(ssl->keys.curSeq);
        return 0;
    }
#endif
    *epoch = ssl->keys.curEpoch;
    *seq = ((uint64_t)ssl->keys.curSeq_hi << 32) | ssl->keys.curSeq_lo;
    return 0;
}
