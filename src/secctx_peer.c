/* siptls — security contexts: the peer of a handshake.
 *
 * The verify callback records what wolfSSL found on the WOLFSSL itself; the
 * peer view gathers the certificate, the verdict (of this handshake, or of
 * the one a resumed session came from) and the trusted domain; peer_check
 * decides whether the flow may go on (RFC 5922 §7), describe fills the flow
 * info. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "secctx_internal.h"

/* ------------------------------------------------------------------------ */
/* verify callback                                                          */
/* ------------------------------------------------------------------------ */

/* Called by wolfSSL for every certificate of the peer's chain (this build
 * has WOLFSSL_ALWAYS_VERIFY_CB and WOLFSSL_VERIFY_CB_ALL_CERTS). Records a
 * failure on the WOLFSSL, then: a server that asks for a client certificate
 * without requiring one (verify_cert=1, require_cert=0) lets the handshake go
 * on with an untrusted certificate (the flow is up with peer_verified=0);
 * everywhere else a failure fails the handshake. Reads nothing but the
 * WOLFSSL itself, so it is safe after its secctx is freed. */
int siptls__secctx_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    if (preverify) {
        return 1;
    }
    WOLFSSL *ssl =
        wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL) {
        return 0;
    }
    uintptr_t f = get_flags(ssl);
    if (!(f & F_VFAIL)) {
        int err = wolfSSL_X509_STORE_CTX_get_error(store);
        f |= F_VFAIL | ((uintptr_t)(err > 0 && err < 256 ? err : 255) << F_VERR_SHIFT);
        set_flags(ssl, f);
    }
    int mode = wolfSSL_get_verify_mode(ssl);
    if (!(mode & WOLFSSL_VERIFY_PEER)) {
        return 1;
    }
    if (wolfSSL_is_server(ssl) && !(mode & WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT)) {
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* peer view                                                                */
/* ------------------------------------------------------------------------ */

static void add_san(peer_view *v, const char *prefix, const char *val, size_t len)
{
    if (v->n_sans >= MAX_SANS || v->sans == NULL) {
        return;
    }
    /* A NUL inside an IA5String is an attack on C string handling
     * ("good.example\0.evil.example"): such a name is never an identity. */
    if (memchr(val, '\0', len) != NULL) {
        return;
    }
    char *dst = v->sans[v->n_sans];
    size_t plen = strlen(prefix);
    if (plen + len + 1 > SAN_TEXT_MAX) {
        return; /* longer than any name we could match */
    }
    memcpy(dst, prefix, plen);
    memcpy(dst + plen, val, len);
    dst[plen + len] = '\0';
    v->san_ptr[v->n_sans] = dst;
    v->n_sans++;
}

static void read_sans(peer_view *v, WOLFSSL_X509 *x)
{
    v->has_san_ext = wolfSSL_X509_get_ext_by_NID(x, NID_subject_alt_name, -1) >= 0;
    WOLFSSL_STACK *gns = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (gns == NULL) {
        return;
    }
    v->has_san_ext = 1;
    int n = wolfSSL_sk_GENERAL_NAME_num(gns);
    /* wolfSSL lists the names in reverse certificate order. */
    for (int i = n - 1; i >= 0; i--) {
        WOLFSSL_GENERAL_NAME *g = wolfSSL_sk_GENERAL_NAME_value(gns, i);
        /* Only these three types hold an ASN1_STRING in the union. */
        if (g == NULL ||
            (g->type != ASN_DNS_TYPE && g->type != ASN_URI_TYPE && g->type != ASN_IP_TYPE) ||
            g->d.ia5 == NULL || g->d.ia5->data == NULL || g->d.ia5->length < 0) {
            continue;
        }
        const char *data = g->d.ia5->data;
        size_t len = (size_t)g->d.ia5->length;
        if (g->type == ASN_DNS_TYPE) {
            add_san(v, "DNS:", data, len);
        } else if (g->type == ASN_URI_TYPE) {
            add_san(v, "URI:", data, len);
        } else if (g->type == ASN_IP_TYPE) {
            char ip[INET6_ADDRSTRLEN];
            int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (af != 0 && inet_ntop(af, data, ip, sizeof(ip)) != NULL) {
                add_san(v, "IP:", ip, strlen(ip));
            }
        }
    }
    wolfSSL_GENERAL_NAMES_free(gns);
}

static int trusted_index(const siptls__secctx *t, const peer_view *v)
{
    for (size_t i = 0; t != NULL && i < t->n_trusted && i < 255; i++) {
        const char *cn = v->has_san_ext ? NULL : v->cn;
        const char *e = t->trusted[i];
        /* "*.suffix": any identity one or more labels below the suffix */
        if (e[0] == '*' && e[1] == '.'
                ? siptls__rfc5922_match_under(e + 2, v->san_ptr, v->n_sans, cn)
                : siptls__rfc5922_match(e, v->san_ptr, v->n_sans, cn)) {
            return (int)i;
        }
    }
    return -1;
}

/* The verdict on the peer of a finished (or finishing: the ticket
 * callback) handshake. `s` may be NULL (secctx gone): then only what the
 * WOLFSSL itself knows is used. */
int siptls__secctx_peer_view_fill(siptls__secctx *s, WOLFSSL *ssl, peer_view *v)
{
    memset(v, 0, sizeof(*v));
    v->trusted_idx = -1;
    v->sans = malloc(sizeof(*v->sans) * MAX_SANS);
    if (v->sans == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    uintptr_t f = get_flags(ssl);
    sec_domain *dom = ssl_domain(ssl);
    int mode = wolfSSL_get_verify_mode(ssl);
    v->resumed = wolfSSL_session_reused(ssl) == 1;
    /* The trusted_domain list: the one of the secctx that made this
     * WOLFSSL while it exists (a ticket's index refers to it), else the
     * caller's. */
    const siptls__secctx *t = dom != NULL ? dom->owner : s;

    WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);
    if (x != NULL) {
        v->cert = 1;
        wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(x), v->subject, sizeof(v->subject));
        wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_issuer_name(x), v->issuer, sizeof(v->issuer));
        if (wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(x), NID_commonName,
                                              v->cn, sizeof(v->cn)) < 0) {
            v->cn[0] = '\0';
        }
        read_sans(v, x);
        wolfSSL_X509_free(x);
    }

    if (!v->resumed) {
        /* Full handshake: a certificate was presented in this handshake,
         * we asked wolfSSL to verify it, and neither wolfSSL nor our
         * callback saw a failure. */
        v->verified = v->cert && (mode & WOLFSSL_VERIFY_PEER) && !(f & F_VFAIL) &&
                      wolfSSL_get_verify_result(ssl) == X509_V_OK;
        if (v->verified) {
            v->trusted_idx = trusted_index(t, v);
        }
    } else if (wolfSSL_is_server(ssl)) {
        /* Resumed: nothing was verified in this handshake; the verdict of
         * the original one comes sealed in our ticket, bound to the domain
         * policy it was made under. */
        if ((f & F_TICKET) && dom != NULL && get_aux(ssl) == dom->policy) {
            v->verified = (f & F_T_VERIFIED) != 0;
            if (v->verified && (f & F_T_TRUSTED)) {
                v->trusted_idx = (int)((f >> F_T_TIDX_SHIFT) & 0xff);
            }
        }
    } else {
        /* Client: sessions are only saved from flows that passed
         * peer_check, keyed by client domain, its policy and the SIP
         * domain (client_session_apply). */
        v->verified = (f & F_APPLIED) != 0 && (mode & WOLFSSL_VERIFY_PEER);
        if (v->verified && v->cert) {
            v->trusted_idx = trusted_index(t, v);
        }
    }
    if (t == NULL || v->trusted_idx < 0 || (size_t)v->trusted_idx >= t->n_trusted) {
        v->trusted_idx = -1;
    }
    v->trusted = v->trusted_idx >= 0;
    v->trusted_name = v->trusted ? t->trusted[v->trusted_idx] : "";
    return SIPTLS_OK;
}

void siptls__secctx_peer_view_free(peer_view *v)
{
    free(v->sans);
    v->sans = NULL;
}

/* ------------------------------------------------------------------------ */
/* public: after the handshake                                              */
/* ------------------------------------------------------------------------ */

static void copy_str(char *dst, size_t dstlen, const char *src)
{
    if (dstlen == 0) {
        return;
    }
    snprintf(dst, dstlen, "%s", src ? src : "");
}

/* Copy text from the network for display: printable ASCII only. */
static void copy_printable(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    size_t o = 0;
    for (size_t i = 0; i < srclen && o + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (dstlen > 0) {
        dst[o] = '\0';
    }
}

static void info_fill(WOLFSSL *ssl, int is_server, const char *sip_domain, const peer_view *v,
                      siptls_flow_info *info)
{
    const sec_domain *dom = ssl_domain(ssl);
    copy_str(info->tls_version, sizeof(info->tls_version), wolfSSL_get_version(ssl));
    copy_str(info->cipher, sizeof(info->cipher), wolfSSL_get_cipher_name(ssl));
    info->resumed = v->resumed;
    info->sni[0] = '\0';
    if (is_server) {
        const char *sni = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
        if (sni != NULL) {
            copy_printable(info->sni, sizeof(info->sni), sni, strlen(sni));
        }
    } else if (sip_domain != NULL && !siptls__secctx_is_ip_literal(sip_domain)) {
        copy_str(info->sni, sizeof(info->sni), sip_domain);
    }
    copy_str(info->domain, sizeof(info->domain), dom ? dom->name : "");
    info->peer_cert = v->cert;
    info->peer_verified = v->verified;
    copy_printable(info->peer_subject, sizeof(info->peer_subject), v->subject, strlen(v->subject));
    copy_printable(info->peer_issuer, sizeof(info->peer_issuer), v->issuer, strlen(v->issuer));
    info->n_peer_sans = 0;
    for (size_t i = 0; i < v->n_sans && i < SIPTLS_FLOW_MAX_SANS; i++) {
        copy_printable(info->peer_sans[i], sizeof(info->peer_sans[i]), v->san_ptr[i],
                       strlen(v->san_ptr[i]));
        info->n_peer_sans++;
    }
    info->trusted = v->trusted;
    copy_str(info->trusted_domain, sizeof(info->trusted_domain), v->trusted_name);
}

int siptls__secctx_peer_check(siptls__secctx *s, struct WOLFSSL *ssl, int is_server,
                              const char *sip_domain, siptls_flow_info *info)
{
    if (s == NULL || ssl == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    peer_view v;
    if (siptls__secctx_peer_view_fill(s, ssl, &v) != SIPTLS_OK) {
        siptls__secctx_peer_view_free(&v);
        return SIPTLS_ERR_NOMEM;
    }
    if (info != NULL) {
        info_fill(ssl, is_server, sip_domain, &v, info);
    }
    siptls__secctx_keylog_write(s, ssl);
    int mode = wolfSSL_get_verify_mode(ssl);
    int rc = SIPTLS_OK;
    if (!is_server && (mode & WOLFSSL_VERIFY_PEER)) {
        if (!v.verified) {
            rc = SIPTLS_ERR_VERIFY;
        } else if (v.cert && !siptls__rfc5922_match(sip_domain, v.san_ptr, v.n_sans,
                                                    v.has_san_ext ? NULL : v.cn)) {
            /* RFC 5922 §7.3: the client "MUST compare the SIP domain of the
             * target with the SIP domain identities in the certificate". A
             * resumed session without the certificate was checked when it
             * was made (it is bound to this SIP domain). */
            rc = SIPTLS_ERR_NAME_MISMATCH;
        }
    } else if (is_server && (mode & WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT) && !v.verified) {
        rc = SIPTLS_ERR_NO_PEER_CERT;
    }
    uintptr_t f = get_flags(ssl);
    if (rc == SIPTLS_OK && is_server && v.cert && !v.verified && (f & F_VFAIL)) {
        /* verify_cert=1, require_cert=0: say why this one goes on
         * untrusted. */
        const sec_domain *dom = ssl_domain(ssl);
        slog(s, SIPTLS_LOG_INFO,
             "domain '%s': client certificate '%.200s' not verified (%s): the flow goes on "
             "untrusted",
             dom ? dom->name : "?", v.subject,
             wolfSSL_X509_verify_cert_error_string((long)((f >> F_VERR_SHIFT) & 0xff)));
    }
    f &= ~(uintptr_t)(F_CHECKED | F_VERIFIED);
    if (rc == SIPTLS_OK) {
        f |= F_CHECKED | (v.verified ? F_VERIFIED : 0);
    }
    set_flags(ssl, f);
    siptls__secctx_peer_view_free(&v);
    return rc;
}

const char *siptls__secctx_ssl_domain(struct WOLFSSL *ssl, int *is_server)
{
    const sec_domain *dom = ssl != NULL ? ssl_domain(ssl) : NULL;
    if (dom == NULL) {
        return NULL;
    }
    if (is_server != NULL) {
        *is_server = dom->is_server;
    }
    return dom->name;
}

void siptls__secctx_describe(siptls__secctx *s, struct WOLFSSL *ssl, int is_server,
                             const char *sip_domain, siptls_flow_info *info)
{
    if (ssl == NULL || info == NULL) {
        return;
    }
    peer_view v;
    if (siptls__secctx_peer_view_fill(s, ssl, &v) == SIPTLS_OK) {
        info_fill(ssl, is_server, sip_domain, &v, info);
    }
    siptls__secctx_peer_view_free(&v);
}

/* ------------------------------------------------------------------------ */
/* public: errors                                                           */
/* ------------------------------------------------------------------------ */

int siptls__secctx_classify_error(int wolf_err)
{
    switch (wolf_err) {
    /* the peer's certificate chain did not verify */
    case ASN_NO_SIGNER_E:
    case ASN_AFTER_DATE_E:
    case ASN_BEFORE_DATE_E:
    case ASN_SIG_CONFIRM_E:
    case ASN_SIG_OID_E:
    case ASN_SIG_HASH_E:
    case ASN_SIG_KEY_E:
    case ASN_SELF_SIGNED_E:
    case ASN_PATHLEN_INV_E:
    case ASN_PATHLEN_SIZE_E:
    case ASN_NAME_INVALID_E:
    case ASN_CRL_CONFIRM_E:
    case ASN_CRL_NO_SIGNER_E:
    case CRL_CERT_DATE_ERR:
    case VERIFY_CERT_ERROR:
    case CRL_CERT_REVOKED:
    case CRL_MISSING:
    case OCSP_CERT_REVOKED:
    case OCSP_CERT_UNKNOWN:
    case OCSP_INVALID_STATUS:
    case BAD_CERTIFICATE_STATUS_ERROR:
    case MAX_CHAIN_ERROR:
        return SIPTLS_ERR_VERIFY;
    case DOMAIN_NAME_MISMATCH:
    case IPADDR_MISMATCH:
        return SIPTLS_ERR_NAME_MISMATCH;
    case NO_PEER_CERT:
        return SIPTLS_ERR_NO_PEER_CERT;
    case SOCKET_ERROR_E:
    case SOCKET_PEER_CLOSED_E:
        return SIPTLS_ERR_IO;
    default:
        /* Including FATAL_ERROR: the peer sent a fatal alert (for example
         * "bad certificate" from a server that required ours). */
        return SIPTLS_ERR_HANDSHAKE;
    }
}

int siptls__secctx_peer_alert(struct WOLFSSL *ssl)
{
    WOLFSSL_ALERT_HISTORY ah;
    if (ssl != NULL && wolfSSL_get_alert_history(ssl, &ah) == WOLFSSL_SUCCESS &&
        ah.last_rx.level == alert_fatal) {
        return SIPTLS_ERR_PEER_ALERT(ah.last_rx.code & 0xff);
    }
    return 0;
}
