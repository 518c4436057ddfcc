/* siptls — development certificates: an ECDSA P-256 key and a self-signed
 * certificate made in memory with wolfCrypt (siptls serve without --cert).
 *
 * The subjectAltName extension is DER we encode here: wolfCrypt's Cert
 * takes the GeneralNames as raw DER (Cert.altNames, WOLFSSL_ALT_NAMES) and
 * has no builder for URI or iPAddress names. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "siptls/devcert.h"

#define DEV_DAYS 30
#define DEV_BACKDATE_S 3600
#define DER_MAX 4096

/* GeneralName context tags (RFC 5280 §4.2.1.6), primitive, implicit. */
#define GN_DNS 0x82
#define GN_URI 0x86
#define GN_IP 0x87

typedef struct der_buf {
    unsigned char *p;
    size_t len;
    size_t cap;
    int overflow;
} der_buf;

/* DER length octets (X.690 §8.1.3: short form below 128, else long form
 * with the minimum number of octets). */
static void put_len(der_buf *b, size_t n)
{
    unsigned char tmp[5];
    size_t k = 0;
    if (n < 0x80) {
        tmp[k++] = (unsigned char)n;
    } else {
        unsigned char digits[4];
        size_t nd = 0;
        for (size_t v = n; v > 0 && nd < sizeof(digits); v >>= 8) {
            digits[nd++] = (unsigned char)(v & 0xff);
        }
        tmp[k++] = (unsigned char)(0x80 | nd);
        while (nd > 0) {
            tmp[k++] = digits[--nd];
        }
    }
    if (b->len + k > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, tmp, k);
    b->len += k;
}

static void put_tlv(der_buf *b, unsigned char tag, const void *val, size_t n)
{
    if (b->len + 1 > b->cap) {
        b->overflow = 1;
        return;
    }
    b->p[b->len++] = tag;
    put_len(b, n);
    if (b->overflow || b->len + n > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, val, n);
    b->len += n;
}

/* GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName, with dNSName and
 * uniformResourceIdentifier as IA5String and iPAddress as the 4 or 16
 * address octets (RFC 5280 §4.2.1.6). */
static int encode_sans(const char *cn, unsigned char *out, size_t cap, int *out_len)
{
    unsigned char body[1024];
    der_buf b = {body, 0, sizeof(body), 0};
    char uri[80];
    unsigned char v4[4], v6[16];

    put_tlv(&b, GN_DNS, "localhost", strlen("localhost"));
    if (strcmp(cn, "localhost") != 0) {
        put_tlv(&b, GN_DNS, cn, strlen(cn));
    }
    snprintf(uri, sizeof(uri), "sip:%s", cn);
    put_tlv(&b, GN_URI, uri, strlen(uri));
    /* RFC 5922 §7.1 ignores dNSName values once a sip URI identity is
     * present, so "localhost" needs its own sip URI to stay a valid
     * target next to another name. */
    if (strcmp(cn, "localhost") != 0) {
        put_tlv(&b, GN_URI, "sip:localhost", strlen("sip:localhost"));
    }
    inet_pton(AF_INET, "127.0.0.1", v4);
    put_tlv(&b, GN_IP, v4, sizeof(v4));
    inet_pton(AF_INET6, "::1", v6);
    put_tlv(&b, GN_IP, v6, sizeof(v6));
    if (b.overflow) {
        return -1;
    }
    der_buf seq = {out, 0, cap, 0};
    put_tlv(&seq, 0x30, body, b.len);
    if (seq.overflow) {
        return -1;
    }
    *out_len = (int)seq.len;
    return 0;
}

/* X.509 Time for `t` (RFC 5280 §4.1.2.5: UTCTime through 2049, then
 * GeneralizedTime), as the DER the Cert struct takes for raw dates. */
static int encode_time(time_t t, unsigned char *out, int *out_len)
{
    struct tm tm;
    char txt[20];
    if (gmtime_r(&t, &tm) == NULL) {
        return -1;
    }
    int year = tm.tm_year + 1900;
    unsigned char tag;
    int n;
    if (year < 2050) {
        tag = 0x17; /* UTCTime YYMMDDHHMMSSZ */
        n = snprintf(txt, sizeof(txt), "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    } else {
        tag = 0x18; /* GeneralizedTime YYYYMMDDHHMMSSZ */
        n = snprintf(txt, sizeof(txt), "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    if (n <= 0 || (size_t)n >= sizeof(txt)) {
        return -1;
    }
    out[0] = tag;
    out[1] = (unsigned char)n;
    memcpy(out + 2, txt, (size_t)n);
    *out_len = n + 2;
    return 0;
}

/* A name we put in a DNS SAN, a sip: URI and the CN: letters, digits,
 * '-', '.'; no wildcard, no spaces (it must stay a valid DNS name). */
static int valid_cn(const char *cn)
{
    size_t n = strlen(cn);
    if (n == 0 || n >= CTC_NAME_SIZE || n > 63 || cn[0] == '.' || cn[0] == '-') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = cn[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

static char *to_pem(const unsigned char *der, int der_len, int type)
{
    int need = wc_DerToPem(der, (word32)der_len, NULL, 0, type);
    if (need <= 0) {
        /* Older wolfCrypt cannot size: PEM is at most 4/3 + line breaks. */
        need = der_len * 2 + 128;
    }
    char *pem = calloc(1, (size_t)need + 1);
    if (pem == NULL) {
        return NULL;
    }
    int n = wc_DerToPem(der, (word32)der_len, (unsigned char *)pem, (word32)need, type);
    if (n <= 0) {
        free(pem);
        return NULL;
    }
    pem[n] = '\0';
    return pem;
}

int siptls_devcert_generate(const char *cn, char **cert_pem, char **key_pem)
{
    if (cert_pem == NULL || key_pem == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *cert_pem = NULL;
    *key_pem = NULL;
    if (cn == NULL) {
        cn = "localhost";
    }
    if (!valid_cn(cn)) {
        return SIPTLS_ERR_INVAL;
    }

    int rc = SIPTLS_ERR_CERT;
    WC_RNG rng;
    ecc_key key;
    int have_rng = 0, have_key = 0;
    /* Cert is ~20 KB with WOLFSSL_ALT_NAMES: not on the stack. */
    Cert *cert = calloc(1, sizeof(*cert));
    unsigned char *der = malloc(DER_MAX);
    unsigned char *kder = malloc(DER_MAX);
    if (cert == NULL || der == NULL || kder == NULL) {
        rc = SIPTLS_ERR_NOMEM;
        goto out;
    }
    if (wc_InitRng(&rng) != 0) {
        goto out;
    }
    have_rng = 1;
    if (wc_ecc_init(&key) != 0) {
        goto out;
    }
    have_key = 1;
    if (wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0) {
        goto out;
    }

    if (wc_InitCert(cert) != 0) {
        goto out;
    }
    cert->sigType = CTC_SHA256wECDSA;
    cert->daysValid = DEV_DAYS;
    cert->selfSigned = 1;
    /* A CA bit so that peers (wolfSSL included) accept the certificate as
     * its own trust anchor ("trust this file"); pathLen 0: it can sign no
     * other CA. */
    cert->isCA = 1;
    cert->pathLen = 0;
    cert->pathLenSet = 1;
    snprintf(cert->subject.commonName, sizeof(cert->subject.commonName), "%s", cn);
    cert->subject.commonNameEnc = CTC_UTF8;
    snprintf(cert->subject.org, sizeof(cert->subject.org), "%s", "siptls development certificate");
    cert->subject.orgEnc = CTC_UTF8;
    if (encode_sans(cn, cert->altNames, sizeof(cert->altNames), &cert->altNamesSz) != 0) {
        goto out;
    }
    /* Valid from one hour ago (peers whose clock is a little behind still
     * accept it) for DEV_DAYS days. */
    time_t now = time(NULL);
    if (encode_time(now - DEV_BACKDATE_S, cert->beforeDate, &cert->beforeDateSz) != 0 ||
        encode_time(now - DEV_BACKDATE_S + (time_t)DEV_DAYS * 86400, cert->afterDate,
                    &cert->afterDateSz) != 0) {
        goto out;
    }
    if (wc_SetKeyUsage(cert, "digitalSignature,keyCertSign") != 0 ||
        wc_SetExtKeyUsage(cert, "serverAuth,clientAuth") != 0 ||
        wc_SetSubjectKeyIdFromPublicKey_ex(cert, ECC_TYPE, &key) != 0) {
        goto out;
    }
    int body = wc_MakeCert_ex(cert, der, DER_MAX, ECC_TYPE, &key, &rng);
    if (body <= 0) {
        goto out;
    }
    int der_len = wc_SignCert_ex(cert->bodySz, cert->sigType, der, DER_MAX, ECC_TYPE, &key, &rng);
    if (der_len <= 0) {
        goto out;
    }
    int kder_len = wc_EccKeyToDer(&key, kder, DER_MAX);
    if (kder_len <= 0) {
        goto out;
    }
    *cert_pem = to_pem(der, der_len, CERT_TYPE);
    *key_pem = to_pem(kder, kder_len, ECC_PRIVATEKEY_TYPE);
    if (*cert_pem == NULL || *key_pem == NULL) {
        free(*cert_pem);
        if (*key_pem != NULL) {
            memset(*key_pem, 0, strlen(*key_pem));
        }
        free(*key_pem);
        *cert_pem = NULL;
        *key_pem = NULL;
        rc = SIPTLS_ERR_NOMEM;
        goto out;
    }
    rc = SIPTLS_OK;

out:
    if (kder != NULL) {
        memset(kder, 0, DER_MAX);
    }
    free(kder);
    free(der);
    free(cert);
    if (have_key) {
        wc_ecc_free(&key);
    }
    if (have_rng) {
        wc_FreeRng(&rng);
    }
    return rc;
}
