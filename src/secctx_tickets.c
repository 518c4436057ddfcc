/* siptls — security contexts: session tickets.
 *
 * Our own ticket callback (not wolfSSL's default key) so that tickets are
 * sealed with a key the operator may share across engines and machines
 * (tls_ticket_key_file), and so that a ticket carries the client-certificate
 * verdict of the handshake it came from, bound to the domain policy, in its
 * authenticated key name: wolfSSL 5.5.4 keeps no such verdict in a session
 * (see secctx.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include "secctx_internal.h"

/* Ticket key file: 16 bytes name, 32 bytes HMAC-SHA256 key, 32 bytes
 * AES-256 key (the nginx / OpenSSL layout). */
#define TICKET_FILE_SIZE 80

/* Ticket key name layout (all of it covered by the HMAC). */
#define TN_POLICY 8 /* 4 bytes, big endian */
#define TN_FLAGS 12 /* bit 0 verified, bit 1 trusted */
#define TN_TIDX 13
#define TN_VERSION 15
#define TN_VERSION_VALUE 1

/* ------------------------------------------------------------------------ */
/* session tickets                                                          */
/* ------------------------------------------------------------------------ */

static int ticket_mac(const ticket_key *k, const unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                      const unsigned char iv[WOLFSSL_TICKET_IV_SZ], const unsigned char *data,
                      int len, unsigned char out[WC_SHA256_DIGEST_SIZE])
{
    Hmac h;
    int rc = wc_HmacInit(&h, NULL, INVALID_DEVID);
    if (rc != 0) {
        return rc;
    }
    rc = wc_HmacSetKey(&h, WC_SHA256, k->hmac, sizeof(k->hmac));
    if (rc == 0) {
        rc = wc_HmacUpdate(&h, name, WOLFSSL_TICKET_NAME_SZ);
    }
    if (rc == 0) {
        rc = wc_HmacUpdate(&h, iv, WOLFSSL_TICKET_IV_SZ);
    }
    if (rc == 0) {
        rc = wc_HmacUpdate(&h, data, (word32)len);
    }
    if (rc == 0) {
        rc = wc_HmacFinal(&h, out);
    }
    wc_HmacFree(&h);
    return rc;
}

static int ticket_ctr(const ticket_key *k, const unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                      unsigned char *data, int len)
{
    Aes aes;
    int rc = wc_AesInit(&aes, NULL, INVALID_DEVID);
    if (rc != 0) {
        return rc;
    }
    rc = wc_AesSetKey(&aes, k->aes, sizeof(k->aes), iv, AES_ENCRYPTION);
    if (rc == 0) {
        rc = wc_AesCtrEncrypt(&aes, data, data, (word32)len);
    }
    wc_AesFree(&aes);
    return rc;
}

static int const_eq(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++) {
        d |= (unsigned char)(a[i] ^ b[i]);
    }
    return d == 0;
}

static int policy_known(const siptls__secctx *s, uint32_t policy)
{
    for (size_t i = 0; s != NULL && i < s->n_doms; i++) {
        if (s->doms[i].is_server && s->doms[i].policy == policy) {
            return 1;
        }
    }
    return 0;
}

/* Session ticket encryption (wolfSSL_CTX_set_TicketEncCb): AES-256-CTR over
 * wolfSSL's internal ticket, HMAC-SHA256 over key name, IV and ciphertext
 * (encrypt-then-MAC, as OpenSSL / nginx tickets). The 16-byte key name
 * carries the key id and the client-certificate verdict (see TN_*). */
int siptls__secctx_ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                             unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                             unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
                             unsigned char *ticket, int in_len, int *out_len, void *user)
{
    const ticket_key *k = user;
    unsigned char want[WC_SHA256_DIGEST_SIZE];
    if (k == NULL || in_len <= 0) {
        return enc ? WOLFSSL_TICKET_RET_FATAL : WOLFSSL_TICKET_RET_REJECT;
    }
    if (enc) {
        memset(name, 0, WOLFSSL_TICKET_NAME_SZ);
        memcpy(name, k->id, TICKET_ID_SIZE);
        name[TN_VERSION] = TN_VERSION_VALUE;
        sec_domain *dom = ssl_domain(ssl);
        if (k->owner != NULL && dom != NULL && dom->owner == k->owner) {
            peer_view v;
            if (siptls__secctx_peer_view_fill(k->owner, ssl, &v) == SIPTLS_OK) {
                name[TN_POLICY] = (unsigned char)(dom->policy >> 24);
                name[TN_POLICY + 1] = (unsigned char)(dom->policy >> 16);
                name[TN_POLICY + 2] = (unsigned char)(dom->policy >> 8);
                name[TN_POLICY + 3] = (unsigned char)dom->policy;
                name[TN_FLAGS] = (unsigned char)((v.verified ? 1 : 0) | (v.trusted ? 2 : 0));
                name[TN_TIDX] = (unsigned char)(v.trusted ? v.trusted_idx : 0);
            }
            siptls__secctx_peer_view_free(&v);
        }
        if (getrandom(iv, WOLFSSL_TICKET_IV_SZ, 0) != WOLFSSL_TICKET_IV_SZ ||
            ticket_ctr(k, iv, ticket, in_len) != 0 ||
            ticket_mac(k, name, iv, ticket, in_len, want) != 0) {
            return WOLFSSL_TICKET_RET_FATAL;
        }
        memcpy(mac, want, WC_SHA256_DIGEST_SIZE);
        *out_len = in_len;
        return WOLFSSL_TICKET_RET_OK;
    }
    /* Decrypt: our key (and not retired), authentic, current policy. */
    if (k->owner == NULL || memcmp(name, k->id, TICKET_ID_SIZE) != 0 ||
        name[TN_VERSION] != TN_VERSION_VALUE) {
        return WOLFSSL_TICKET_RET_REJECT;
    }
    if (ticket_mac(k, name, iv, ticket, in_len, want) != 0 ||
        !const_eq(want, mac, WC_SHA256_DIGEST_SIZE)) {
        return WOLFSSL_TICKET_RET_REJECT;
    }
    uint32_t policy = ((uint32_t)name[TN_POLICY] << 24) | ((uint32_t)name[TN_POLICY + 1] << 16) |
                      ((uint32_t)name[TN_POLICY + 2] << 8) | (uint32_t)name[TN_POLICY + 3];
    /* A ticket from a configuration that no longer exists (other CAs,
     * other trusted domains, verification changed): full handshake. */
    if (!policy_known(k->owner, policy) || ticket_ctr(k, iv, ticket, in_len) != 0) {
        return WOLFSSL_TICKET_RET_REJECT;
    }
    uintptr_t f =
        get_flags(ssl) & ~(uintptr_t)(F_T_VERIFIED | F_T_TRUSTED | (0xffu << F_T_TIDX_SHIFT));
    f |= F_TICKET;
    if (name[TN_FLAGS] & 1) {
        f |= F_T_VERIFIED;
    }
    if (name[TN_FLAGS] & 2) {
        f |= F_T_TRUSTED | ((uintptr_t)name[TN_TIDX] << F_T_TIDX_SHIFT);
    }
    set_flags(ssl, f);
    set_aux(ssl, policy);
    *out_len = in_len;
    return WOLFSSL_TICKET_RET_OK;
}

int siptls__secctx_load_ticket_key(siptls__secctx *s, const char *path)
{
    unsigned char raw[TICKET_FILE_SIZE];
    if (path == NULL) {
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
            slog(s, SIPTLS_LOG_ERR, "session tickets: no random key: %s", strerror(errno));
            return SIPTLS_ERR_CERT;
        }
    } else {
        size_t len = 0;
        unsigned char *buf = siptls__secctx_read_file(path, 4096, &len);
        if (buf == NULL || len != TICKET_FILE_SIZE) {
            slog(s, SIPTLS_LOG_ERR,
                 "tls_ticket_key_file '%s': %s (want exactly %d random bytes, e.g. "
                 "`openssl rand 80 > FILE`)",
                 path, buf == NULL ? strerror(errno) : "wrong size", TICKET_FILE_SIZE);
            free(buf);
            return SIPTLS_ERR_CERT;
        }
        memcpy(raw, buf, sizeof(raw));
        memset(buf, 0, len);
        free(buf);
    }
    /* name[0..8) identifies the key; the other name bytes carry the
     * verdict in the tickets we make. */
    memcpy(s->tkey.id, raw, TICKET_ID_SIZE);
    memcpy(s->tkey.hmac, raw + 16, 32);
    memcpy(s->tkey.aes, raw + 48, 32);
    memset(raw, 0, sizeof(raw));
    s->tkey.owner = s;
    return SIPTLS_OK;
}
