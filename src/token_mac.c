/* siptls — HMAC-SHA256 for flow tokens, from wolfCrypt (see token_mac.h). */
#include <string.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/hmac.h>

#include "token_mac.h"

int siptls__hmac_sha256(const uint8_t *key, size_t key_len, const siptls__mac_part *parts,
                        size_t n_parts, uint8_t out[SIPTLS__HMAC_LEN])
{
    Hmac h;
    int ok =
        key != NULL && key_len > 0 && key_len <= 64 && wc_HmacInit(&h, NULL, INVALID_DEVID) == 0;
    if (!ok) {
        memset(out, 0, SIPTLS__HMAC_LEN);
        return -1;
    }
    ok = wc_HmacSetKey(&h, WC_SHA256, key, (word32)key_len) == 0;
    for (size_t i = 0; ok && i < n_parts; i++) {
        ok = wc_HmacUpdate(&h, parts[i].p, (word32)parts[i].n) == 0;
    }
    ok = ok && wc_HmacFinal(&h, out) == 0;
    wc_HmacFree(&h);
    if (!ok) {
        memset(out, 0, SIPTLS__HMAC_LEN);
        return -1;
    }
    return 0;
}
