/* siptls — security contexts: one wolfSSL CTX per TLS domain.
 *
 * What lives where, and why (see docs/security.md for the operator view):
 *
 *  - A secctx owns one WOLFSSL_CTX per configured domain. WOLFSSL objects
 *    made from it hold their own reference on their CTX, so the secctx can be
 *    freed (reload) while flows made from it go on.
 *  - Nothing a WOLFSSL may call back into after secctx_free() points at the
 *    secctx: the verify callback keeps its per-connection record as an
 *    integer in wolfSSL ex data (no allocation, no lifetime), and on free the
 *    SNI callback, the CTX -> domain pointer and the ticket key of every CTX
 *    are switched to NULL / a process-wide "retired" key.
 *  - Whether a client certificate was verified must survive session
 *    resumption truthfully. wolfSSL 5.5.4 neither keeps that verdict in a
 *    session nor checks the session id context on resumption (tested), so
 *    stateful (session-id) resumption is used only when no server domain
 *    asks for client certificates, and our own session-ticket callback seals
 *    the verdict (verified, trusted domain) and the domain policy into the
 *    authenticated ticket key name.
 *
 * Everything here runs on the engine's thread; the only process-wide state
 * (ex data indices, the retired ticket key, the wolfSSL_Init count) is set up
 * under pthread_once / a mutex.
 *
 * This file builds the contexts and runs their life cycle; the other parts
 * of the module are listed in secctx_internal.h. */
#include <errno.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include "secctx_internal.h"

/* ------------------------------------------------------------------------ */
/* constants                                                                */
/* ------------------------------------------------------------------------ */

/* Strong AEAD suites only; TLS 1.2 only with ECDHE (forward secrecy).
 * Without AES instructions AES-GCM runs in software at ~90 MB/s while
 * ChaCha20-Poly1305 is ~2.5x faster, so ChaCha20 goes first; with AES-NI
 * (a wolfSSL built with it, on a CPU that has it) AES-GCM is ~3x faster than
 * ChaCha20 and goes first. Decided at run time (siptls__secctx_aes_first). */
#define TLS13_CHACHA "TLS13-CHACHA20-POLY1305-SHA256"
#define TLS13_AES "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384"
#define TLS12_CHACHA "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS12_AES                                                \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define AES_TLS13 TLS13_AES ":" TLS13_CHACHA
#define AES_TLS12 TLS12_AES ":" TLS12_CHACHA
#define CHACHA_TLS13 TLS13_CHACHA ":" TLS13_AES
#define CHACHA_TLS12 TLS12_CHACHA ":" TLS12_AES
#define DEFAULT_CURVES "X25519:P-256:P-384"

/* Server-side session lifetime (session cache and tickets). wolfSSL's own
 * default is 500 s; SIP clients typically reconnect after a NAT or network
 * change within minutes to an hour. */
#define SESSION_LIFETIME_S 3600

/* ------------------------------------------------------------------------ */
/* process-wide state                                                       */
/* ------------------------------------------------------------------------ */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t init_mutex = PTHREAD_MUTEX_INITIALIZER;
int siptls__secctx_ex_flags = -1;
int siptls__secctx_ex_aux = -1;
int siptls__secctx_ex_dom = -1;
static ticket_key retired_key;

static void once_init(void)
{
    siptls__secctx_ex_flags = wolfSSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    siptls__secctx_ex_aux = wolfSSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    siptls__secctx_ex_dom = wolfSSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    /* Tickets minted by connections whose secctx is gone are sealed with
     * this key, which nothing ever accepts: they just fall back to a full
     * handshake. Random so that its tickets are unreadable too. */
    if (getrandom(retired_key.id, sizeof(retired_key.id), 0) < 0 ||
        getrandom(retired_key.hmac, sizeof(retired_key.hmac), 0) < 0 ||
        getrandom(retired_key.aes, sizeof(retired_key.aes), 0) < 0) {
        /* Still never accepted (owner NULL); only readable. */
        memset(&retired_key, 0x5a, sizeof(retired_key));
    }
    retired_key.owner = NULL;
}

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */
/* ------------------------------------------------------------------------ */

static uint32_t fnv_str(uint32_t h, const char *s)
{
    if (s == NULL) {
        s = "\x01(null)";
    }
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    h ^= 0xff; /* separator: "ab","c" differs from "a","bc" */
    h *= 16777619u;
    return h;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n && v != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

static int copy_list(char ***dst, size_t *dn, char *const *src, size_t n)
{
    *dst = NULL;
    *dn = 0;
    if (n == 0) {
        return SIPTLS_OK;
    }
    char **v = calloc(n, sizeof(*v));
    if (v == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = xstrdup(src[i]);
        if (src[i] != NULL && v[i] == NULL) {
            free_list(v, i);
            return SIPTLS_ERR_NOMEM;
        }
    }
    *dst = v;
    *dn = n;
    return SIPTLS_OK;
}

/* Read a whole (small) file: keys, ticket keys. */
unsigned char *siptls__secctx_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    unsigned char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n > max;
    fclose(f);
    if (bad) {
        free(buf);
        errno = buf == NULL ? ENOMEM : EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Why a wolfSSL load call failed, for the log: the file itself first
 * (missing, unreadable), else wolfSSL's reason. */
static void load_reason(const char *path, char *buf, size_t len)
{
    if (path != NULL && access(path, R_OK) != 0) {
        snprintf(buf, len, "%s", strerror(errno));
        wolfSSL_ERR_clear_error();
        return;
    }
    unsigned long e = wolfSSL_ERR_get_error();
    if (e != 0) {
        wolfSSL_ERR_error_string_n(e, buf, (unsigned long)len);
    } else {
        snprintf(buf, len, "not a usable PEM file");
    }
    wolfSSL_ERR_clear_error();
}

/* ------------------------------------------------------------------------ */
/* cipher order                                                             */
/* ------------------------------------------------------------------------ */

int siptls__cpu_has_aes(void)
{
    /* An operator (or a test) may say what the CPU has: 0 forces the
     * ChaCha20-first order on an AES-NI machine, 1 claims AES-NI. */
    const char *env = getenv("SIPTLS_CPU_AESNI");
    if (env != NULL && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0)) {
        return env[0] == '1';
    }
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0) {
        return 0;
    }
    /* AES-GCM at speed needs both AESENC (AES-NI) and the carry-less
     * multiply for GHASH (PCLMULQDQ): CPUID.1:ECX bits 25 and 1. */
    return (c & bit_AES) != 0 && (c & bit_PCLMUL) != 0;
#else
    return 0;
#endif
}

int siptls__secctx_aes_first(int cpu_aes)
{
#ifdef WOLFSSL_AESNI
    return cpu_aes != 0;
#else
    /* This wolfSSL has no AES-NI code: AES-GCM runs in C on any CPU. */
    (void)cpu_aes;
    return 0;
#endif
}

const char *siptls__secctx_cipher_order_text(int aes_first)
{
    return aes_first ? "AES-GCM first (AES-NI)" : "ChaCha20-Poly1305 first (no AES-NI)";
}

/* ------------------------------------------------------------------------ */
/* key / certificate match                                                  */
/* ------------------------------------------------------------------------ */

/* wolfSSL 5.5.4's wolfSSL_CTX_check_private_key() (and the OpenSSL-compat
 * X509_check_private_key / EVP_PKEY_cmp) say "match" for any ECC key
 * (tested), so the public half of the private key is derived here and
 * compared with the certificate's SubjectPublicKeyInfo.
 * Returns 1 match, 0 mismatch, -1 cannot tell (key type we do not derive). */
static int key_matches_cert(WOLFSSL_CTX *ctx, const char *key_path)
{
    WOLFSSL_X509 *x = wolfSSL_CTX_get0_certificate(ctx);
    unsigned char cert_pub[1024];
    int cert_len = (int)sizeof(cert_pub);
    if (x == NULL || wolfSSL_X509_get_pubkey_buffer(x, cert_pub, &cert_len) != WOLFSSL_SUCCESS) {
        return -1;
    }
    size_t pem_len = 0;
    unsigned char *pem = siptls__secctx_read_file(key_path, 1 << 20, &pem_len);
    if (pem == NULL) {
        return -1;
    }
    unsigned char *der = malloc(pem_len + 1);
    int der_len = der ? wc_KeyPemToDer(pem, (int)pem_len, der, (int)pem_len + 1, NULL) : -1;
    free(pem);
    if (der_len <= 0) {
        free(der);
        return -1;
    }
    word32 start = 0;
    if (wc_GetPkcs8TraditionalOffset(der, &start, (word32)der_len) < 0) {
        start = 0; /* not PKCS#8: a traditional key */
    }
    unsigned char key_pub[1024];
    int key_len = -1;
    ecc_key ecc;
    if (wc_ecc_init(&ecc) == 0) {
        word32 idx = start;
        if (wc_EccPrivateKeyDecode(der, &idx, &ecc, (word32)der_len) == 0) {
            /* RFC 5915 makes the public key optional in the private key. */
            if (ecc.type == ECC_PRIVATEKEY_ONLY) {
                wc_ecc_make_pub(&ecc, NULL);
            }
            key_len = wc_EccPublicKeyToDer(&ecc, key_pub, sizeof(key_pub), 1);
        }
        wc_ecc_free(&ecc);
    }
    if (key_len < 0) {
        RsaKey rsa;
        if (wc_InitRsaKey(&rsa, NULL) == 0) {
            word32 idx = start;
            if (wc_RsaPrivateKeyDecode(der, &idx, &rsa, (word32)der_len) == 0) {
                key_len = wc_RsaKeyToPublicDer(&rsa, key_pub, sizeof(key_pub));
            }
            wc_FreeRsaKey(&rsa);
        }
    }
    memset(der, 0, (size_t)der_len);
    free(der);
    if (key_len <= 0) {
        return -1;
    }
    return key_len == cert_len && memcmp(key_pub, cert_pub, (size_t)key_len) == 0;
}

/* ------------------------------------------------------------------------ */
/* building the contexts                                                    */
/* ------------------------------------------------------------------------ */

static int list_has_tls13(const char *list)
{
    const char *p = list;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, "TLS13-", 6) == 0 || strncmp(p, "TLS_", 4) == 0) {
            return 1;
        }
        p = strchr(p, ':');
        p = p ? p + 1 : NULL;
    }
    return 0;
}

/* Warn about names this wolfSSL does not know (wolfSSL silently skips them
 * as long as one name is valid). Cipher suite names all contain '-';
 * keywords such as "HIGH" or "!aNULL" are left to wolfSSL. */
static void warn_unknown_ciphers(const siptls__secctx *s, const char *domain, const char *list)
{
    char *copy = xstrdup(list);
    char *save = NULL;
    for (char *tok = copy ? strtok_r(copy, ":, ", &save) : NULL; tok != NULL;
         tok = strtok_r(NULL, ":, ", &save)) {
        if (strchr(tok, '-') == NULL || strchr("!+-@", tok[0]) != NULL) {
            continue;
        }
        int found = 0;
        for (int i = 0;; i++) {
            const char *known = wolfSSL_get_cipher_list(i);
            if (known == NULL) {
                break;
            }
            if (strcmp(known, tok) == 0) {
                found = 1;
                break;
            }
        }
        if (!found) {
            slog(s, SIPTLS_LOG_WARN,
                 "domain '%s': ciphers_list: '%s' is not a cipher of this wolfSSL "
                 "(ignored)",
                 domain, tok);
        }
    }
    free(copy);
}

/* `*min_version` (wolfSSL_CTX_SetMinVersion) and `*max_proto`
 * (wolfSSL_CTX_set_max_proto_version) are -1 when not needed. */
/* DTLS versions: tls_method naming one version (TLSv1_2, TLSv1_3) fixes
 * it, as it always did; otherwise dtls_min_version..dtls_max_version
 * (default 1.2..1.3). A 1.2-1.3 range uses wolfSSL's version-flexible DTLS
 * method (a DTLS 1.3 ClientHello that also offers 1.2; a server that
 * answers either) with 1.2 as the floor. Without WOLFSSL_DTLS13 (Debian's
 * 5.5.4) the range is cut to 1.2, said once; a minimum of 1.3 is an error. */
static int dtls_version(const char *v, int def)
{
    if (v == NULL) {
        return def;
    }
    return strcmp(v, "1.3") == 0 ? 13 : 12;
}

static WOLFSSL_METHOD *pick_dtls_method(siptls__secctx *s, const siptls_domain_cfg *c,
                                        int *min_version, int *allows13)
{
    const char *m = c->tls_method;
    int server = c->is_server;
    int lo, hi;
    if (m != NULL && strcmp(m, "TLSv1_3") == 0) {
        lo = hi = 13;
    } else if (m != NULL && strcmp(m, "TLSv1_2") == 0) {
        lo = hi = 12;
    } else if (m != NULL && strcmp(m, "TLSv1_2-TLSv1_3") != 0 && strcmp(m, "SSLv23") != 0) {
        slog(s, SIPTLS_LOG_ERR, "domain '%s': unknown tls_method '%s'", c->name, m);
        return NULL;
    } else {
        lo = dtls_version(c->dtls_min_version, 12);
        hi = dtls_version(c->dtls_max_version, 13);
    }
    if (lo > hi) {
        slog(s, SIPTLS_LOG_ERR, "domain '%s': dtls_min_version 1.3 is above dtls_max_version 1.2",
             c->name);
        return NULL;
    }
#ifdef WOLFSSL_DTLS13
    if (hi == 13) {
        *allows13 = 1;
        if (lo == 13) {
            return server ? wolfDTLSv1_3_server_method() : wolfDTLSv1_3_client_method();
        }
        *min_version = WOLFSSL_DTLSV1_2;
        return server ? wolfDTLS_server_method() : wolfDTLS_client_method();
    }
#else
    if (lo == 13) {
        slog(s, SIPTLS_LOG_ERR,
             "domain '%s': %s: this wolfSSL has no DTLS 1.3 (DTLS is 1.2 only here)", c->name,
             m != NULL && strcmp(m, "TLSv1_3") == 0 ? "tls_method TLSv1_3"
                                                    : "dtls_min_version 1.3");
        return NULL;
    }
    if (hi == 13 && !s->dtls13_noted) {
        s->dtls13_noted = 1;
        slog(s, SIPTLS_LOG_INFO,
             "dtls_max_version 1.3: this wolfSSL has no DTLS 1.3, DTLS sessions use 1.2");
    }
#endif
    return server ? wolfDTLSv1_2_server_method() : wolfDTLSv1_2_client_method();
}

static WOLFSSL_METHOD *pick_method(siptls__secctx *s, const siptls_domain_cfg *c, int *min_version,
                                   int *max_proto, int *allows13)
{
    const char *m = c->tls_method;
    int server = c->is_server;
    *min_version = -1;
    *max_proto = -1;
    *allows13 = 0;
    if (s->dtls) {
        return pick_dtls_method(s, c, min_version, allows13);
    }
    if (m == NULL || strcmp(m, "TLSv1_2-TLSv1_3") == 0 || strcmp(m, "SSLv23") == 0) {
        *min_version = WOLFSSL_TLSV1_2;
        *allows13 = 1;
        return server ? wolfSSLv23_server_method() : wolfSSLv23_client_method();
    }
    if (strcmp(m, "TLSv1_2") == 0) {
        /* Exactly 1.2, but from the flexible method: on a
         * wolfTLSv1_2_*_method CTX, wolfSSL 5.5.4 refuses (and ignores)
         * wolfSSL_CTX_set1_curves_list, so ec_curve would not apply. */
        *min_version = WOLFSSL_TLSV1_2;
        *max_proto = TLS1_2_VERSION;
        return server ? wolfSSLv23_server_method() : wolfSSLv23_client_method();
    }
    if (strcmp(m, "TLSv1_3") == 0) {
        *allows13 = 1;
        return server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method();
    }
    slog(s, SIPTLS_LOG_ERR,
         "domain '%s': unknown tls_method '%s' (want TLSv1_2, TLSv1_3, TLSv1_2-TLSv1_3 or SSLv23)",
         c->name, m);
    return NULL;
}

static int load_files(siptls__secctx *s, sec_domain *d, const siptls_domain_cfg *c)
{
    char why[256];
    WOLFSSL_CTX *ctx = d->ctx;
    wolfSSL_ERR_clear_error();
    if (c->certificate != NULL) {
        if (wolfSSL_CTX_use_certificate_chain_file(ctx, c->certificate) != WOLFSSL_SUCCESS) {
            load_reason(c->certificate, why, sizeof(why));
            slog(s, SIPTLS_LOG_ERR, "domain '%s': cannot load certificate '%s': %s", d->name,
                 c->certificate, why);
            return SIPTLS_ERR_CERT;
        }
        /* Without private_key the key is looked for in the certificate
         * file (one PEM with both). */
        const char *key = c->private_key ? c->private_key : c->certificate;
        if (wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
            load_reason(key, why, sizeof(why));
            if (c->private_key == NULL) {
                slog(s, SIPTLS_LOG_ERR,
                     "domain '%s': private_key is not set and certificate '%s' holds no usable "
                     "private key (%s): set private_key, or append the PEM key to that file",
                     d->name, key, why);
            } else {
                slog(s, SIPTLS_LOG_ERR, "domain '%s': cannot load private key '%s': %s", d->name,
                     key, why);
            }
            return SIPTLS_ERR_CERT;
        }
        int m = key_matches_cert(ctx, key);
        if (m == 0 || wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
            slog(s, SIPTLS_LOG_ERR,
                 "domain '%s': private key '%s' does not belong to certificate '%s'", d->name, key,
                 c->certificate);
            return SIPTLS_ERR_CERT;
        }
        d->has_cert = 1;
    } else if (c->private_key != NULL) {
        slog(s, SIPTLS_LOG_ERR, "domain '%s': private_key '%s' given without a certificate",
             d->name, c->private_key);
        return SIPTLS_ERR_CERT;
    }
    if (c->ca_list != NULL || c->ca_dir != NULL) {
        /* In a directory, files that are not PEM certificates (a README,
         * CRLs) are skipped instead of failing the whole load. */
        if (c->ca_list != NULL &&
            wolfSSL_CTX_load_verify_locations(ctx, c->ca_list, NULL) != WOLFSSL_SUCCESS) {
            load_reason(c->ca_list, why, sizeof(why));
            slog(s, SIPTLS_LOG_ERR, "domain '%s': cannot load CA list '%s': %s", d->name,
                 c->ca_list, why);
            return SIPTLS_ERR_CERT;
        }
        if (c->ca_dir != NULL &&
            wolfSSL_CTX_load_verify_locations_ex(
                ctx, NULL, c->ca_dir,
                WOLFSSL_LOAD_FLAG_IGNORE_ERR | WOLFSSL_LOAD_FLAG_PEM_CA_ONLY) != WOLFSSL_SUCCESS) {
            load_reason(c->ca_dir, why, sizeof(why));
            slog(s, SIPTLS_LOG_ERR, "domain '%s': cannot load CA directory '%s': %s", d->name,
                 c->ca_dir, why);
            return SIPTLS_ERR_CERT;
        }
    } else if (!d->is_server && d->verify_cert) {
        /* Outbound verification with no CA configured: the system trust
         * store, as any TLS client does. */
        if (wolfSSL_CTX_load_system_CA_certs(ctx) != WOLFSSL_SUCCESS) {
            slog(s, SIPTLS_LOG_WARN,
                 "domain '%s': no ca_list / ca_dir and no system CA store: every server "
                 "certificate will fail verification",
                 d->name);
        }
        wolfSSL_ERR_clear_error();
    }
    if (c->crl_file != NULL) {
        if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECK) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_LoadCRLFile(ctx, c->crl_file, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
            load_reason(c->crl_file, why, sizeof(why));
            slog(s, SIPTLS_LOG_ERR, "domain '%s': cannot load CRL '%s': %s", d->name, c->crl_file,
                 why);
            return SIPTLS_ERR_CERT;
        }
    }
    return SIPTLS_OK;
}

static int build_domain(siptls__secctx *s, sec_domain *d, const siptls_config *cfg,
                        const siptls_domain_cfg *raw)
{
    siptls_domain_cfg c;
    if (siptls_config_domain_effective(cfg, raw, &c) != SIPTLS_OK) {
        return SIPTLS_ERR_INVAL;
    }
    d->owner = s;
    d->is_server = c.is_server ? 1 : 0;
    d->name = xstrdup(c.name ? c.name : "?");
    if (d->name == NULL ||
        copy_list(&d->match_ip, &d->n_match_ip, c.match_ip_address, c.n_match_ip_address) !=
            SIPTLS_OK ||
        copy_list(&d->match_dom, &d->n_match_dom, c.match_sip_domain, c.n_match_sip_domain) !=
            SIPTLS_OK) {
        return SIPTLS_ERR_NOMEM;
    }
    /* Unset (-1) in a default domain: server asks for nothing, client
     * verifies. */
    d->verify_cert = c.verify_cert < 0 ? !d->is_server : c.verify_cert != 0;
    d->require_cert = d->is_server && c.require_cert > 0;
    if (d->is_server) {
        d->verify_mode = !d->verify_cert ? WOLFSSL_VERIFY_NONE
                         : d->require_cert
                             ? WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
                             : WOLFSSL_VERIFY_PEER;
        if (d->require_cert && !d->verify_cert) {
            slog(s, SIPTLS_LOG_WARN,
                 "domain '%s': require_cert=1 needs verify_cert=1: no client certificate is asked "
                 "for",
                 d->name);
            d->require_cert = 0;
        }
    } else {
        d->verify_mode = d->verify_cert ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE;
    }

    uint32_t h = 2166136261u;
    h = fnv_str(h, d->name);
    h = fnv_str(h, d->is_server ? "server" : "client");
    h = fnv_str(h, d->verify_cert ? "v1" : "v0");
    h = fnv_str(h, d->require_cert ? "r1" : "r0");
    h = fnv_str(h, c.ca_list);
    h = fnv_str(h, c.ca_dir);
    h = fnv_str(h, c.crl_file);
    for (size_t i = 0; i < s->n_trusted; i++) {
        h = fnv_str(h, s->trusted[i]);
    }
    d->policy = h;

    int min_version, max_proto, allows13;
    WOLFSSL_METHOD *method = pick_method(s, &c, &min_version, &max_proto, &allows13);
    if (method == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    d->ctx = wolfSSL_CTX_new(method);
    if (d->ctx == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    wolfSSL_CTX_set_ex_data(d->ctx, siptls__secctx_ex_dom, d);
    if ((min_version >= 0 && wolfSSL_CTX_SetMinVersion(d->ctx, min_version) != WOLFSSL_SUCCESS) ||
        (max_proto >= 0 &&
         wolfSSL_CTX_set_max_proto_version(d->ctx, max_proto) != WOLFSSL_SUCCESS)) {
        slog(s, SIPTLS_LOG_ERR, "domain '%s': cannot set the protocol versions", d->name);
        return SIPTLS_ERR_INVAL;
    }

    /* Cipher suites. A configured list always wins; like OpenSSL (whose
     * cipher list does not cover TLS 1.3) a list that names no TLS 1.3 suite
     * keeps the default TLS 1.3 suites, else TLS 1.3 could not work. */
    const char *tls13 = s->aes_first ? AES_TLS13 : CHACHA_TLS13;
    const char *tls12 = s->aes_first ? AES_TLS12 : CHACHA_TLS12;
    if (c.ciphers_list != NULL) {
        size_t n = strlen(c.ciphers_list) + strlen(tls13) + 2;
        d->ciphers = malloc(n);
        if (d->ciphers == NULL) {
            return SIPTLS_ERR_NOMEM;
        }
        if (allows13 && !list_has_tls13(c.ciphers_list)) {
            snprintf(d->ciphers, n, "%s:%s", c.ciphers_list, tls13);
        } else {
            snprintf(d->ciphers, n, "%s", c.ciphers_list);
        }
        warn_unknown_ciphers(s, d->name, c.ciphers_list);
    } else if (s->dtls && !allows13) {
        d->ciphers = xstrdup(tls12);
    } else {
        size_t n = strlen(tls13) + strlen(tls12) + 2;
        d->ciphers = malloc(n);
        if (d->ciphers != NULL) {
            snprintf(d->ciphers, n, "%s:%s", tls13, tls12);
        }
    }
    d->curves = xstrdup(c.ec_curve ? c.ec_curve : DEFAULT_CURVES);
    if (d->ciphers == NULL || d->curves == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    /* The configured list alone must name a cipher of this wolfSSL (the
     * TLS 1.3 defaults added above would hide a list of typos). */
    if ((c.ciphers_list != NULL &&
         wolfSSL_CTX_set_cipher_list(d->ctx, c.ciphers_list) != WOLFSSL_SUCCESS) ||
        wolfSSL_CTX_set_cipher_list(d->ctx, d->ciphers) != WOLFSSL_SUCCESS) {
        slog(s, SIPTLS_LOG_ERR, "domain '%s': ciphers_list '%s': no cipher this wolfSSL supports",
             d->name, c.ciphers_list ? c.ciphers_list : d->ciphers);
        return SIPTLS_ERR_INVAL;
    }
    if (s->dtls && !SIPTLS_DTLS_CURVES) {
        /* wolfSSL 5.5.4 accepts no group list on a DTLS CTX (any DTLS
         * method): its defaults apply. */
        if (c.ec_curve != NULL) {
            slog(s, SIPTLS_LOG_WARN,
                 "domain '%s': ec_curve '%s' does not apply to DTLS with this wolfSSL (its default "
                 "groups are used)",
                 d->name, c.ec_curve);
        }
    } else if (wolfSSL_CTX_set1_curves_list(d->ctx, d->curves) != WOLFSSL_SUCCESS) {
        slog(s, SIPTLS_LOG_ERR,
             "domain '%s': ec_curve '%s': unknown group (want e.g. X25519:P-256:P-384)", d->name,
             d->curves);
        return SIPTLS_ERR_INVAL;
    }
    wolfSSL_ERR_clear_error();

    int rc = load_files(s, d, &c);
    if (rc != SIPTLS_OK) {
        return rc;
    }
    wolfSSL_CTX_set_verify(d->ctx, d->verify_mode, siptls__secctx_verify_cb);

    if (d->is_server) {
        /* wolfSSL already picks by the server's order; say so explicitly
         * in case a future wolfSSL changes its default. */
        wolfSSL_CTX_set_options(d->ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
        wolfSSL_CTX_set_servername_callback(d->ctx, siptls__secctx_sni_cb);
        wolfSSL_CTX_set_servername_arg(d->ctx, s);
        wolfSSL_CTX_set_timeout(d->ctx, SESSION_LIFETIME_S);
        if (!s->session_cache) {
            wolfSSL_CTX_set_session_cache_mode(d->ctx, WOLFSSL_SESS_CACHE_OFF);
        }
        /* TLS 1.2 tickets: a server that cannot decrypt a ticket (after a
         * reload, on another engine with another key) must fall back to a
         * full handshake with a fresh session id (RFC 5077 §3.4: "If the
         * server accepts the ticket and the Session ID is not empty, then
         * it MUST respond with the same Session ID"). 5.7.2 does, tested
         * with OpenSSL's client (tests/interop/test_tls_tickets.sh; so does
         * 5.5.4, tried by hand). The aborts once blamed on the 5.5.4 server
         * come from the wolfSSL client (below). On 5.5.4 they stay off as
         * before; DTLS 1.2 resumes through the session cache (tickets on
         * DTLS are left for when they are tested). */
        if (!SIPTLS_TLS12_TICKETS || !s->tickets || s->dtls) {
            wolfSSL_CTX_NoTicketTLSv12(d->ctx);
        }
        if (s->tickets) {
            wolfSSL_CTX_set_TicketEncCb(d->ctx, siptls__secctx_ticket_cb);
            wolfSSL_CTX_set_TicketEncCtx(d->ctx, &s->tkey);
        } else {
#ifdef WOLFSSL_TLS13
            wolfSSL_CTX_no_ticket_TLSv13(d->ctx);
#endif
        }
    }
    /* Clients offer no TLS 1.2 ticket: a wolfSSL client (5.5.4 and 5.7.2
     * alike, DSH_CheckSessionId in internal.c) that sent a ticket takes any
     * ServerHello for a resumption, so a server that cannot decrypt the
     * ticket and falls back to a full handshake makes it fail with
     * OUT_OF_ORDER_E (tested). Outbound TLS 1.2 resumes through the
     * server's session cache (session id); TLS 1.3 tickets need no opt-in. */
    return SIPTLS_OK;
}

static void domain_release(sec_domain *d)
{
    if (d->ctx != NULL) {
        /* Live WOLFSSLs keep this CTX: make sure nothing of ours is
         * reachable from it any more. */
        wolfSSL_CTX_set_ex_data(d->ctx, siptls__secctx_ex_dom, NULL);
        if (d->is_server) {
            wolfSSL_CTX_set_servername_callback(d->ctx, NULL);
            wolfSSL_CTX_set_servername_arg(d->ctx, NULL);
            wolfSSL_CTX_set_TicketEncCtx(d->ctx, &retired_key);
        }
        wolfSSL_CTX_free(d->ctx);
        d->ctx = NULL;
    }
    free(d->name);
    free_list(d->match_ip, d->n_match_ip);
    free_list(d->match_dom, d->n_match_dom);
    free(d->ciphers);
    free(d->curves);
}

/* ------------------------------------------------------------------------ */
/* public: life cycle                                                       */
/* ------------------------------------------------------------------------ */

int siptls__secctx_new(siptls__secctx **out, const siptls_config *cfg, int dtls, siptls__log_fn log,
                       void *log_user)
{
    if (out == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *out = NULL;
    if (cfg == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    pthread_once(&once, once_init);
    siptls__secctx *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    s->refs = 1;
    s->dtls = dtls ? 1 : 0;
    s->aes_first = siptls__secctx_aes_first(siptls__cpu_has_aes());
    s->log = log;
    s->log_user = log_user;
    if (siptls__secctx_ex_flags < 0 || siptls__secctx_ex_aux < 0 || siptls__secctx_ex_dom < 0) {
        slog(s, SIPTLS_LOG_ERR, "wolfSSL has no free ex data slot (MAX_EX_DATA)");
        free(s);
        return SIPTLS_ERR_INVAL;
    }
    pthread_mutex_lock(&init_mutex);
    int init = wolfSSL_Init();
    pthread_mutex_unlock(&init_mutex);
    if (init != WOLFSSL_SUCCESS) {
        free(s);
        return SIPTLS_ERR_NOMEM;
    }

    int rc = copy_list(&s->trusted, &s->n_trusted, cfg->trusted_domain, cfg->n_trusted_domain);
    if (rc == SIPTLS_OK && cfg->tls_keylog_file != NULL) {
        s->keylog = xstrdup(cfg->tls_keylog_file);
        rc = s->keylog ? SIPTLS_OK : SIPTLS_ERR_NOMEM;
        /* A key log that cannot be written is refused at start, not found
         * out at the first handshake. */
        if (rc == SIPTLS_OK) {
            rc = siptls__secctx_keylog_check(s);
        }
    }
    /* Stateful resumption cannot carry a client-certificate verdict (see
     * the top of this file): only when no server domain asks for one. */
    s->session_cache = cfg->tls_session_cache != 0;
    for (size_t i = 0; i < cfg->n_domains && s->session_cache; i++) {
        siptls_domain_cfg c;
        if (cfg->domains[i].is_server &&
            siptls_config_domain_effective(cfg, &cfg->domains[i], &c) == SIPTLS_OK &&
            c.verify_cert > 0) {
            s->session_cache = 0;
        }
    }
    s->tickets = cfg->tls_session_tickets != 0;
    if (rc == SIPTLS_OK && s->tickets) {
        rc = siptls__secctx_load_ticket_key(s, cfg->tls_ticket_key_file);
    }
    if (rc == SIPTLS_OK && cfg->n_domains > 0) {
        s->doms = calloc(cfg->n_domains, sizeof(*s->doms));
        rc = s->doms ? SIPTLS_OK : SIPTLS_ERR_NOMEM;
    }
    for (size_t i = 0; rc == SIPTLS_OK && i < cfg->n_domains; i++) {
        s->n_doms = i + 1;
        rc = build_domain(s, &s->doms[i], cfg, &cfg->domains[i]);
    }
    if (rc == SIPTLS_OK) {
        for (size_t i = 0; i < s->n_doms; i++) {
            sec_domain *d = &s->doms[i];
            if (strcmp(d->name, "default") == 0) {
                if (d->is_server && s->def_server == NULL) {
                    s->def_server = d;
                } else if (!d->is_server && s->def_client == NULL) {
                    s->def_client = d;
                }
            }
        }
        if (s->def_client == NULL) {
            slog(s, SIPTLS_LOG_ERR, "configuration has no default client domain");
            rc = SIPTLS_ERR_INVAL;
        }
    }
    if (rc != SIPTLS_OK) {
        siptls__secctx_free(s);
        return rc;
    }
    if (s->keylog != NULL) {
        slog(s, SIPTLS_LOG_WARN,
             "tls_keylog_file '%s': TLS session keys are written to it; anyone who reads it can "
             "decrypt the traffic: debugging only",
             s->keylog);
    }
    *out = s;
    return SIPTLS_OK;
}

siptls__secctx *siptls__secctx_hold(siptls__secctx *s)
{
    if (s != NULL) {
        s->refs++;
    }
    return s;
}

void siptls__secctx_free(siptls__secctx *s)
{
    if (s == NULL || --s->refs > 0) {
        return;
    }
    for (size_t i = 0; i < s->n_doms; i++) {
        domain_release(&s->doms[i]);
    }
    free(s->doms);
    for (size_t i = 0; i < CLIENT_SLOTS; i++) {
        free(s->slots[i].key);
        if (s->slots[i].sess != NULL) {
            wolfSSL_SESSION_free(s->slots[i].sess);
        }
    }
    free_list(s->trusted, s->n_trusted);
    free(s->keylog);
    memset(&s->tkey, 0, sizeof(s->tkey));
    free(s);
    pthread_mutex_lock(&init_mutex);
    wolfSSL_Cleanup();
    pthread_mutex_unlock(&init_mutex);
}

int siptls__secctx_has_server_cert(const siptls__secctx *s)
{
    return s != NULL && s->def_server != NULL && s->def_server->has_cert;
}

/* ------------------------------------------------------------------------ */
/* public: per-thread cleanup                                               */
/* ------------------------------------------------------------------------ */

void siptls_thread_cleanup(void)
{
#if defined(HAVE_ECC) && defined(FP_ECC)
    /* wolfSSL built with FP_ECC (Debian's is) keeps a fixed-point ECC
     * cache per thread; a thread that did handshakes and exits without
     * this leaks it. */
    wc_ecc_fp_free();
#endif
}
