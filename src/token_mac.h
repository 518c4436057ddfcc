/* siptls internal — the keyed hash behind flow tokens (flow_token.c).
 *
 * HMAC-SHA256 (RFC 2104 over FIPS 180-4) from wolfCrypt, kept in its own
 * file (token_mac.c, listed in .ci/wolfssl-allowed) so that the token code
 * itself includes no wolfSSL header. Pure: no state, any thread. */
#ifndef SIPTLS_TOKEN_MAC_H
#define SIPTLS_TOKEN_MAC_H

#include <stddef.h>
#include <stdint.h>

#define SIPTLS__HMAC_LEN 32

/** One piece of the message to authenticate. */
typedef struct siptls__mac_part {
    const uint8_t *p;
    size_t n;
} siptls__mac_part;

/** HMAC-SHA256 under `key` (1..64 bytes) of the concatenation of the
 *  `n_parts` pieces, into `out`. Returns 0, or -1 when wolfCrypt fails
 *  (then `out` is zeroed). */
int siptls__hmac_sha256(const uint8_t *key, size_t key_len, const siptls__mac_part *parts,
                        size_t n_parts, uint8_t out[SIPTLS__HMAC_LEN]);

#endif
