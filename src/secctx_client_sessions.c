/* siptls — security contexts: the client session cache.
 *
 * Outbound flows resume the session of an earlier flow to the same
 * destination, SIP domain and client domain settings: one session per key
 * in a bounded direct-mapped table of the secctx (freed with it). */
#include <stdlib.h>
#include <string.h>

#include "secctx_internal.h"

/* ------------------------------------------------------------------------ */
/* public: client session resumption                                        */
/* ------------------------------------------------------------------------ */

static char *session_key(const sec_domain *d, const char *key)
{
    size_t n = strlen(d->name) + strlen(key) + 16;
    char *k = malloc(n);
    if (k != NULL) {
        snprintf(k, n, "%s\n%08x\n%s", d->name, (unsigned)d->policy, key);
    }
    return k;
}

static client_slot *session_slot(siptls__secctx *s, const char *full_key)
{
    return &s->slots[fnv_lower(full_key) % CLIENT_SLOTS];
}

void siptls__secctx_client_session_save(siptls__secctx *s, struct WOLFSSL *ssl, const char *key)
{
    if (s == NULL || ssl == NULL || key == NULL || wolfSSL_is_server(ssl)) {
        return;
    }
    uintptr_t f = get_flags(ssl);
    sec_domain *d = ssl_domain(ssl);
    if (!(f & F_CHECKED) || d == NULL || d->owner != s) {
        return; /* never passed peer_check, or made by an older secctx */
    }
    WOLFSSL_SESSION *sess = wolfSSL_get1_session(ssl);
    if (sess == NULL) {
        return;
    }
    char *full = session_key(d, key);
    if (full == NULL || wolfSSL_SESSION_is_resumable(sess) != 1) {
        free(full);
        wolfSSL_SESSION_free(sess);
        return;
    }
    client_slot *slot = session_slot(s, full);
    free(slot->key);
    if (slot->sess != NULL) {
        wolfSSL_SESSION_free(slot->sess);
    }
    slot->key = full;
    slot->sess = sess;
    slot->verified = (f & F_VERIFIED) != 0;
    slot->sip_hash = get_aux(ssl);
}

int siptls__secctx_client_session_apply(siptls__secctx *s, struct WOLFSSL *ssl, const char *key)
{
    if (s == NULL || ssl == NULL || key == NULL || wolfSSL_is_server(ssl)) {
        return 0;
    }
    sec_domain *d = ssl_domain(ssl);
    if (d == NULL || d->owner != s) {
        return 0;
    }
    char *full = session_key(d, key);
    if (full == NULL) {
        return 0;
    }
    client_slot *slot = session_slot(s, full);
    int ok = slot->key != NULL && strcmp(slot->key, full) == 0 && slot->sess != NULL &&
             slot->sip_hash == get_aux(ssl);
    free(full);
    if (!ok || wolfSSL_set_session(ssl, slot->sess) != WOLFSSL_SUCCESS) {
        return 0;
    }
    if (slot->verified) {
        set_flags(ssl, get_flags(ssl) | F_APPLIED);
    }
    return 1;
}
