/* siptls — security contexts: the peer of a handshake.
 *
 * The verify callback records what wolfSSL found on the WOLFSSL itself; the
 * peer view gathers the certificate, the verdict (of this handshake, or of
 * the one a resumed session came from) and the trusted domain; peer_check
 * decides whether the flow may go on (RFC 5922 §7), describe fills the flow
 * info. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>

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
/* the peer's certificate (siptls_flow_peer_cert and friends)               */
/* ------------------------------------------------------------------------ */

static const char hex_digits[] = "0123456789ABCDEF";

/* Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const unsigned char *p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/* An X.509 validity time (RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ or
 * GeneralizedTime YYYYMMDDHHMMSSZ) as seconds since the epoch and ISO 8601
 * text. 0 on success. */
static int asn1_time(const WOLFSSL_ASN1_TIME *t, int64_t *secs, char *text, size_t cap)
{
    if (t == NULL || t->length < 13 || t->length > (int)sizeof(t->data)) {
        return -1;
    }
    const unsigned char *p = t->data;
    int ylen = t->length >= 15 ? 4 : 2;
    unsigned y, mo, d, h, mi, sec;
    if (digits(p, ylen, &y) || digits(p + ylen, 2, &mo) || digits(p + ylen + 2, 2, &d) ||
        digits(p + ylen + 4, 2, &h) || digits(p + ylen + 6, 2, &mi) ||
        digits(p + ylen + 8, 2, &sec) || p[ylen + 10] != 'Z' || mo < 1 || mo > 12 || d < 1 ||
        d > 31 || h > 23 || mi > 59 || sec > 60) {
        return -1;
    }
    if (ylen == 2) {
        /* RFC 5280 §4.1.2.5.1: "Where YY is greater than or equal to 50, the
         * year SHALL be interpreted as 19YY; and Where YY is less than 50,
         * the year SHALL be interpreted as 20YY." */
        y += y >= 50 ? 1900 : 2000;
    }
    *secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + sec;
    snprintf(text, cap, "%04u-%02u-%02uT%02u:%02u:%02uZ", y, mo, d, h, mi, sec);
    return 0;
}

/* RFC 7468 §2: the textual encoding, base64 in lines of 64 characters.
 * Returns the length without the NUL; writes only when it fits `cap`. */
static size_t pem_encode(const uint8_t *der, size_t n, char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char head[] = "-----BEGIN CERTIFICATE-----\n";
    static const char tail[] = "-----END CERTIFICATE-----\n";
    size_t chars = (n + 2) / 3 * 4;
    size_t need = sizeof(head) - 1 + chars + (chars + 63) / 64 + sizeof(tail) - 1;
    if (out == NULL || need + 1 > cap) {
        return need;
    }
    char *o = out;
    memcpy(o, head, sizeof(head) - 1);
    o += sizeof(head) - 1;
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)der[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)der[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= der[i + 2];
        }
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        for (int k = 0; k < 4; k++) {
            *o++ = q[k];
            if (++col == 64) {
                *o++ = '\n';
                col = 0;
            }
        }
    }
    if (col != 0) {
        *o++ = '\n';
    }
    memcpy(o, tail, sizeof(tail) - 1);
    o += sizeof(tail) - 1;
    *o = '\0';
    return need;
}

/* Why a completed handshake has no peer certificate: in a full one the
 * peer sent none; a resumed session carries none unless wolfSSL keeps it
 * (SESSION_CERTS: Debian 12's build does, the bundled one does not). A
 * server resuming knows from the verdict sealed in its ticket whether the
 * client had presented (and passed) one: a server asks for a client
 * certificate only when it verifies it. A server always presents one. */
static int no_cert(struct WOLFSSL *ssl)
{
    if (wolfSSL_session_reused(ssl) != 1) {
        return SIPTLS_ERR_NO_CERT;
    }
    if (!wolfSSL_is_server(ssl)) {
        return SIPTLS_ERR_CERT_NOT_KEPT;
    }
    uintptr_t f = get_flags(ssl);
    sec_domain *dom = ssl_domain(ssl);
    int sealed = (f & F_TICKET) && dom != NULL && get_aux(ssl) == dom->policy;
    return sealed && (f & F_T_VERIFIED) ? SIPTLS_ERR_CERT_NOT_KEPT : SIPTLS_ERR_NO_CERT;
}

int siptls__secctx_peer_cert(struct WOLFSSL *ssl, siptls_peer_cert *out)
{
    memset(out, 0, sizeof(*out));
    WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);
    if (x == NULL) {
        return no_cert(ssl);
    }
    int rc = SIPTLS_OK;
    unsigned char serial[32];
    int sn = (int)sizeof(serial);
    if (wolfSSL_X509_get_serial_number(x, serial, &sn) == WOLFSSL_SUCCESS && sn > 0 &&
        sn <= (int)sizeof(serial)) {
        int skip = sn > 1 && serial[0] == 0 && (serial[1] & 0x80) != 0; /* DER sign padding */
        memmove(serial, serial + skip, (size_t)(sn - skip));
        sn -= skip;
        for (int i = 0; i < sn; i++) {
            out->serial[2 * i] = hex_digits[serial[i] >> 4];
            out->serial[2 * i + 1] = hex_digits[serial[i] & 15];
        }
        out->serial[2 * sn] = '\0';
    }
    if (asn1_time(wolfSSL_X509_get_notBefore(x), &out->not_before, out->not_before_text,
                  sizeof(out->not_before_text)) != 0) {
        out->not_before_text[0] = '\0';
    }
    if (asn1_time(wolfSSL_X509_get_notAfter(x), &out->not_after, out->not_after_text,
                  sizeof(out->not_after_text)) != 0) {
        out->not_after_text[0] = '\0';
    }
    int dlen = 0;
    const unsigned char *der = wolfSSL_X509_get_der(x, &dlen);
    if (der != NULL && dlen > 0) {
        out->der_len = (size_t)dlen;
        out->pem_len = pem_encode(der, (size_t)dlen, NULL, 0);
        if (wc_Sha256Hash(der, (word32)dlen, out->sha256) == 0) {
            for (int i = 0; i < 32; i++) {
                char *t = out->sha256_text + 3 * i;
                t[0] = hex_digits[out->sha256[i] >> 4];
                t[1] = hex_digits[out->sha256[i] & 15];
                t[2] = i < 31 ? ':' : '\0';
            }
        }
    }
    wolfSSL_X509_free(x);
    if (siptls__secctx_peer_sans(ssl, NULL, NULL, &out->n_sans) == SIPTLS_ERR_NOMEM) {
        rc = SIPTLS_ERR_NOMEM;
    }
    return rc;
}

int siptls__secctx_peer_cert_export(struct WOLFSSL *ssl, int pem, uint8_t *buf, size_t cap,
                                    size_t *len)
{
    WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);
    if (x == NULL) {
        return no_cert(ssl);
    }
    int dlen = 0;
    const unsigned char *der = wolfSSL_X509_get_der(x, &dlen);
    int rc = SIPTLS_OK;
    size_t need = 0;
    if (der == NULL || dlen <= 0) {
        rc = SIPTLS_ERR_NOMEM; /* wolfSSL keeps the DER: only memory fails here */
    } else if (pem) {
        need = pem_encode(der, (size_t)dlen, buf != NULL ? (char *)buf : NULL, cap);
        rc = need + 1 > cap || buf == NULL ? SIPTLS_ERR_BUFFER_SMALL : SIPTLS_OK;
    } else {
        need = (size_t)dlen;
        if (buf == NULL || need > cap) {
            rc = SIPTLS_ERR_BUFFER_SMALL;
        } else {
            memcpy(buf, der, need);
        }
    }
    wolfSSL_X509_free(x);
    if (len != NULL) {
        *len = need;
    }
    return rc;
}

/* One name for siptls__secctx_peer_sans: "PREFIX" + value, non-printable
 * bytes shown as '?'. 0 to go on. */
static int give_san(const char *prefix, const char *val, size_t n,
                    int (*fn)(const char *, size_t, void *), void *arg, int *nomem)
{
    size_t plen = strlen(prefix);
    char *t = malloc(plen + n + 1);
    if (t == NULL) {
        *nomem = 1;
        return 1;
    }
    memcpy(t, prefix, plen);
    copy_printable(t + plen, n + 1, val, n);
    int stop = fn(t, plen + n, arg);
    free(t);
    return stop;
}

int siptls__secctx_peer_sans(struct WOLFSSL *ssl, int (*fn)(const char *, size_t, void *),
                             void *arg, unsigned *count)
{
    if (count != NULL) {
        *count = 0;
    }
    WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);
    if (x == NULL) {
        return no_cert(ssl);
    }
    WOLFSSL_STACK *gns = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    wolfSSL_X509_free(x);
    if (gns == NULL) {
        return SIPTLS_OK; /* no subjectAltName extension */
    }
    int nomem = 0;
    int stop = 0;
    int n = wolfSSL_sk_GENERAL_NAME_num(gns);
    /* wolfSSL lists DNS, URI and IP names in reverse certificate order
     * (email names apart): walked backwards, those come in order. */
    for (int i = n - 1; i >= 0 && !stop; i--) {
        WOLFSSL_GENERAL_NAME *g = wolfSSL_sk_GENERAL_NAME_value(gns, i);
        if (g == NULL ||
            (g->type != ASN_DNS_TYPE && g->type != ASN_URI_TYPE && g->type != ASN_IP_TYPE &&
             g->type != ASN_RFC822_TYPE) ||
            g->d.ia5 == NULL || g->d.ia5->data == NULL || g->d.ia5->length < 0) {
            continue;
        }
        const char *data = g->d.ia5->data;
        size_t len = (size_t)g->d.ia5->length;
        char ip[INET6_ADDRSTRLEN];
        const char *prefix = g->type == ASN_DNS_TYPE   ? "DNS:"
                             : g->type == ASN_URI_TYPE ? "URI:"
                             : g->type == ASN_IP_TYPE  ? "IP:"
                                                       : "email:";
        if (g->type == ASN_IP_TYPE) {
            int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (af == 0 || inet_ntop(af, data, ip, sizeof(ip)) == NULL) {
                continue;
            }
            data = ip;
            len = strlen(ip);
        }
        if (count != NULL) {
            (*count)++;
        }
        if (fn != NULL) {
            stop = give_san(prefix, data, len, fn, arg, &nomem);
        }
    }
    wolfSSL_GENERAL_NAMES_free(gns);
    return nomem ? SIPTLS_ERR_NOMEM : SIPTLS_OK;
}

/* ------------------------------------------------------------------------ */
/* public: errors                                                           */
/* ------------------------------------------------------------------------ */

const char *siptls__secctx_error_hint(int wolf_err)
{
    switch (wolf_err) {
    case VERSION_ERROR:
        return "the peer offers no protocol version this side accepts (tls_method; for DTLS "
               "dtls_min_version / dtls_max_version)";
    case MATCH_SUITE_ERROR:
        return "no cipher suite in common (ciphers_list)";
    default:
        return NULL;
    }
}

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
