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
 * under pthread_once / a mutex. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include "secctx.h"

/* ------------------------------------------------------------------------ */
/* constants                                                                */
/* ------------------------------------------------------------------------ */

/* Strong AEAD suites only; TLS 1.2 only with ECDHE (forward secrecy).
 * Without AES instructions (Debian's wolfSSL has no WOLFSSL_AESNI) AES-GCM
 * runs in software at ~90 MB/s while ChaCha20-Poly1305 is ~2.5x faster, so
 * ChaCha20 goes first; with AES-NI, AES-GCM is faster and goes first. */
#define TLS13_CHACHA "TLS13-CHACHA20-POLY1305-SHA256"
#define TLS13_AES "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384"
#define TLS12_CHACHA "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS12_AES                                                \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#ifdef WOLFSSL_AESNI
#define DEFAULT_TLS13 TLS13_AES ":" TLS13_CHACHA
#define DEFAULT_TLS12 TLS12_AES ":" TLS12_CHACHA
#else
#define DEFAULT_TLS13 TLS13_CHACHA ":" TLS13_AES
#define DEFAULT_TLS12 TLS12_CHACHA ":" TLS12_AES
#endif
#define DEFAULT_CIPHERS_TLS DEFAULT_TLS13 ":" DEFAULT_TLS12
#define DEFAULT_CIPHERS_DTLS DEFAULT_TLS12
#define DEFAULT_CURVES "X25519:P-256:P-384"

/* Server-side session lifetime (session cache and tickets). wolfSSL's own
 * default is 500 s; SIP clients typically reconnect after a NAT or network
 * change within minutes to an hour. */
#define SESSION_LIFETIME_S 3600

/* Saved client sessions: direct-mapped, lossy (a collision replaces). */
#define CLIENT_SLOTS 256

/* SANs we look at per certificate (matching uses all of them; the flow info
 * shows the first SIPTLS_FLOW_MAX_SANS). */
#define MAX_SANS 64
#define SAN_TEXT_MAX 300

/* Ticket key file: 16 bytes name, 32 bytes HMAC-SHA256 key, 32 bytes
 * AES-256 key (the nginx / OpenSSL layout). */
#define TICKET_FILE_SIZE 80
#define TICKET_ID_SIZE 8

/* Per-WOLFSSL record (SSL ex data slot ex_flags), an integer so that it
 * needs no memory and no lifetime. */
#define F_VFAIL 0x1u         /* the verify callback saw a failure */
#define F_VERR_SHIFT 1       /* ... the first X509_V_ERR code (8 bits) */
#define F_TICKET 0x200u      /* resumed from one of our tickets: the evidence below is set */
#define F_T_VERIFIED 0x400u  /* the ticket says: client certificate verified */
#define F_T_TRUSTED 0x800u   /* the ticket says: identity is trusted_domain[F_T_TIDX] */
#define F_T_TIDX_SHIFT 12    /* 8 bits */
#define F_CHECKED 0x100000u  /* peer_check let this flow go on */
#define F_VERIFIED 0x200000u /* peer_check found the peer verified */
#define F_APPLIED 0x400000u  /* client: a session saved from a verified flow was applied */

/* Ticket key name layout (all of it covered by the HMAC). */
#define TN_POLICY 8 /* 4 bytes, big endian */
#define TN_FLAGS 12 /* bit 0 verified, bit 1 trusted */
#define TN_TIDX 13
#define TN_VERSION 15
#define TN_VERSION_VALUE 1

/* ------------------------------------------------------------------------ */
/* types                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct sec_domain {
    siptls__secctx *owner;
    char *name;
    int is_server;
    char **match_ip;
    size_t n_match_ip;
    char **match_dom;
    size_t n_match_dom;
    int verify_cert;
    int require_cert;
    int verify_mode;
    int has_cert;
    char *ciphers; /* the list set on the CTX */
    char *curves;
    uint32_t policy; /* hash of everything a client-certificate verdict depends on */
    WOLFSSL_CTX *ctx;
} sec_domain;

typedef struct ticket_key {
    unsigned char id[TICKET_ID_SIZE];
    unsigned char hmac[32];
    unsigned char aes[32];
    siptls__secctx *owner; /* NULL: the retired key */
} ticket_key;

typedef struct client_slot {
    char *key;
    WOLFSSL_SESSION *sess;
    int verified;
    uint32_t sip_hash;
} client_slot;

struct siptls__secctx {
    int dtls;
    siptls__log_fn log;
    void *log_user;
    sec_domain *doms;
    size_t n_doms;
    sec_domain *def_server;
    sec_domain *def_client;
    char **trusted;
    size_t n_trusted;
    char *keylog;
    int keylog_warned;
    int tickets;
    int session_cache;
    ticket_key tkey;
    client_slot slots[CLIENT_SLOTS];
};

/* What we know about the peer of a finished handshake. */
typedef struct peer_view {
    int cert; /* a certificate is available */
    int verified;
    int trusted;
    int trusted_idx;          /* into trusted_list */
    const char *trusted_name; /* trusted_list[trusted_idx], valid during the call */
    int resumed;
    char subject[256];
    char issuer[256];
    char cn[256];
    int has_san_ext;
    char (*sans)[SAN_TEXT_MAX];
    const char *san_ptr[MAX_SANS];
    size_t n_sans;
} peer_view;

/* ------------------------------------------------------------------------ */
/* process-wide state                                                       */
/* ------------------------------------------------------------------------ */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t init_mutex = PTHREAD_MUTEX_INITIALIZER;
static int ex_flags = -1; /* WOLFSSL: F_* record */
static int ex_aux = -1;   /* WOLFSSL: server: ticket policy; client: hash of the SIP domain */
static int ex_dom = -1;   /* WOLFSSL_CTX: sec_domain * (NULL once its secctx is freed) */
static ticket_key retired_key;

static void once_init(void)
{
    ex_flags = wolfSSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ex_aux = wolfSSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ex_dom = wolfSSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
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

static uintptr_t get_flags(WOLFSSL *ssl)
{
    return (uintptr_t)wolfSSL_get_ex_data(ssl, ex_flags);
}

static void set_flags(WOLFSSL *ssl, uintptr_t f)
{
    wolfSSL_set_ex_data(ssl, ex_flags, (void *)f);
}

static uint32_t get_aux(WOLFSSL *ssl)
{
    return (uint32_t)(uintptr_t)wolfSSL_get_ex_data(ssl, ex_aux);
}

static void set_aux(WOLFSSL *ssl, uint32_t v)
{
    wolfSSL_set_ex_data(ssl, ex_aux, (void *)(uintptr_t)v);
}

static sec_domain *ssl_domain(WOLFSSL *ssl)
{
    WOLFSSL_CTX *ctx = wolfSSL_get_SSL_CTX(ssl);
    return ctx ? wolfSSL_CTX_get_ex_data(ctx, ex_dom) : NULL;
}

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */
/* ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static void slog(const siptls__secctx *s,
                                                       siptls_log_level level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (s->log != NULL) {
        s->log(s->log_user, level, "%s", buf);
    } else if (level <= SIPTLS_LOG_WARN) {
        fprintf(stderr, "siptls: %s\n", buf);
    }
}

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

static uint32_t fnv_lower(const char *s)
{
    uint32_t h = 2166136261u;
    for (; s != NULL && *s != '\0'; s++) {
        h ^= (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
        h *= 16777619u;
    }
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

static int is_ip_literal(const char *s)
{
    unsigned char buf[16];
    char tmp[64];
    size_t n = s ? strlen(s) : 0;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(tmp)) {
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET, tmp, buf) == 1 || inet_pton(AF_INET6, tmp, buf) == 1;
}

/* Read a whole (small) file: keys, ticket keys. */
static unsigned char *read_file(const char *path, size_t max, size_t *len)
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
    unsigned char *pem = read_file(key_path, 1 << 20, &pem_len);
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
/* callbacks                                                                */
/* ------------------------------------------------------------------------ */

/* Called by wolfSSL for every certificate of the peer's chain (this build
 * has WOLFSSL_ALWAYS_VERIFY_CB and WOLFSSL_VERIFY_CB_ALL_CERTS). Records a
 * failure on the WOLFSSL, then: a server that asks for a client certificate
 * without requiring one (verify_cert=1, require_cert=0) lets the handshake go
 * on with an untrusted certificate (the flow is up with peer_verified=0);
 * everywhere else a failure fails the handshake. Reads nothing but the
 * WOLFSSL itself, so it is safe after its secctx is freed. */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
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

/* How specifically a match_sip_domain entry names `name` (an SNI host name
 * or the SIP domain of a destination); 0 = no match. An exact name beats
 * the domain's own name (server side), which beats any "*.suffix" pattern,
 * a longer suffix beating a shorter one; "*" comes last. */
#define RANK_ANY 1
#define RANK_SUFFIX 2 /* + the suffix length */
#define RANK_DOMAIN_NAME 100000
#define RANK_EXACT 100001

/* Entries are stored canonical by config.c: lower case, IPv6 in brackets.
 * `name` is compared case-insensitively, one trailing dot ignored ("a.org."
 * is the DNS name "a.org"); an IPv6 `name` may come with or without
 * brackets. "*.example.org" matches one or more labels in front of the
 * suffix (a.example.org, a.b.example.org), never example.org itself: what
 * OpenSIPS's match_sip_domain (fnmatch() without FNM_PERIOD) and Kamailio's
 * server_name_mode=2 do. This chooses settings only; certificate identity
 * checks (RFC 5922 §7.2) never use wildcards. */
static int name_rank(const char *pattern, const char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') {
        n--;
    }
    if (n == 0) {
        return 0;
    }
    if (strcmp(pattern, "*") == 0) {
        return RANK_ANY;
    }
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *suffix = pattern + 2;
        size_t sl = strlen(suffix);
        /* a non-empty label, a dot, then the suffix */
        if (sl == 0 || n < sl + 2 || name[n - sl - 1] != '.' || name[n - sl - 2] == '.' ||
            strncasecmp(name + n - sl, suffix, sl) != 0) {
            return 0;
        }
        return RANK_SUFFIX + (int)sl;
    }
    size_t pl = strlen(pattern);
    if (pattern[0] == '[' && pl >= 2 && pattern[pl - 1] == ']' && name[0] != '[') {
        pattern++;
        pl -= 2;
    }
    return pl == n && strncasecmp(pattern, name, n) == 0 ? RANK_EXACT : 0;
}

/* The best rank of `name` in a domain's match_sip_domain list. */
static int domain_name_rank(const sec_domain *d, const char *name)
{
    int best = 0;
    for (size_t k = 0; k < d->n_match_dom; k++) {
        int r = name_rank(d->match_dom[k], name);
        if (r > best) {
            best = r;
        }
    }
    return best;
}

static sec_domain *server_domain_by_name(siptls__secctx *s, const char *name)
{
    /* The most specific match wins; between equals, the domain declared
     * first. */
    sec_domain *best = NULL;
    int best_rank = 0;
    for (size_t i = 0; i < s->n_doms; i++) {
        sec_domain *d = &s->doms[i];
        if (!d->is_server || !d->has_cert) {
            continue;
        }
        int r = domain_name_rank(d, name);
        if (r < RANK_DOMAIN_NAME && d != s->def_server && strcasecmp(d->name, name) == 0) {
            r = RANK_DOMAIN_NAME;
        }
        if (r > best_rank) {
            best = d;
            best_rank = r;
        }
    }
    return best;
}

/* SNI: move the connection to the server domain named by the client. Runs
 * while the ClientHello is processed, before the server's certificate,
 * cipher suite and CertificateRequest are chosen. */
static int sni_cb(WOLFSSL *ssl, int *alert, void *arg)
{
    (void)alert;
    siptls__secctx *s = arg;
    if (s == NULL) {
        return 0; /* secctx freed: stay on the domain chosen at accept */
    }
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    if (name == NULL || name[0] == '\0') {
        return 0;
    }
    sec_domain *cur = ssl_domain(ssl);
    sec_domain *to = server_domain_by_name(s, name);
    if (to == NULL || to == cur) {
        return 0; /* unknown name: the domain chosen by the listen address */
    }
    /* wolfSSL_set_SSL_CTX (5.5.4) takes the new CTX's certificate and key
     * but keeps the verify mode, cipher suites and groups the WOLFSSL got
     * at creation: set those from the new domain. */
    if (wolfSSL_set_SSL_CTX(ssl, to->ctx) != to->ctx) {
        slog(s, SIPTLS_LOG_WARN, "SNI '%.64s': cannot switch to domain '%s'", name, to->name);
        return 0;
    }
    wolfSSL_set_verify(ssl, to->verify_mode, verify_cb);
    if (cur == NULL || strcmp(cur->ciphers, to->ciphers) != 0) {
        wolfSSL_set_cipher_list(ssl, to->ciphers);
    }
    if (!s->dtls && (cur == NULL || strcmp(cur->curves, to->curves) != 0)) {
        wolfSSL_set1_curves_list(ssl, to->curves);
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
static int peer_view_fill(siptls__secctx *s, WOLFSSL *ssl, peer_view *v)
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

static void peer_view_free(peer_view *v)
{
    free(v->sans);
    v->sans = NULL;
}

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
static int ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                     unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char *ticket,
                     int in_len, int *out_len, void *user)
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
            if (peer_view_fill(k->owner, ssl, &v) == SIPTLS_OK) {
                name[TN_POLICY] = (unsigned char)(dom->policy >> 24);
                name[TN_POLICY + 1] = (unsigned char)(dom->policy >> 16);
                name[TN_POLICY + 2] = (unsigned char)(dom->policy >> 8);
                name[TN_POLICY + 3] = (unsigned char)dom->policy;
                name[TN_FLAGS] = (unsigned char)((v.verified ? 1 : 0) | (v.trusted ? 2 : 0));
                name[TN_TIDX] = (unsigned char)(v.trusted ? v.trusted_idx : 0);
            }
            peer_view_free(&v);
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

static int load_ticket_key(siptls__secctx *s, const char *path)
{
    unsigned char raw[TICKET_FILE_SIZE];
    if (path == NULL) {
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
            slog(s, SIPTLS_LOG_ERR, "session tickets: no random key: %s", strerror(errno));
            return SIPTLS_ERR_CERT;
        }
    } else {
        size_t len = 0;
        unsigned char *buf = read_file(path, 4096, &len);
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
static WOLFSSL_METHOD *pick_method(siptls__secctx *s, const siptls_domain_cfg *c, int *min_version,
                                   int *max_proto, int *allows13)
{
    const char *m = c->tls_method;
    int server = c->is_server;
    *min_version = -1;
    *max_proto = -1;
    *allows13 = 0;
    if (s->dtls) {
        if (m != NULL && strcmp(m, "TLSv1_3") == 0) {
#ifdef WOLFSSL_DTLS13
            *allows13 = 1;
            return server ? wolfDTLSv1_3_server_method() : wolfDTLSv1_3_client_method();
#else
            slog(s, SIPTLS_LOG_ERR,
                 "domain '%s': tls_method TLSv1_3: this wolfSSL has no DTLS 1.3 (DTLS uses 1.2)",
                 c->name);
            return NULL;
#endif
        }
        if (m != NULL && strcmp(m, "TLSv1_2") != 0 && strcmp(m, "TLSv1_2-TLSv1_3") != 0 &&
            strcmp(m, "SSLv23") != 0) {
            slog(s, SIPTLS_LOG_ERR, "domain '%s': unknown tls_method '%s'", c->name, m);
            return NULL;
        }
        /* DTLS 1.3 only when asked for alone (above), even where wolfSSL
         * has it: the transport's stateless cookie exchange answers a
         * ClientHello with a DTLS 1.2 HelloVerifyRequest only and drops
         * the DTLS 1.3 HelloRetryRequest a 1.2-1.3 server would send, so
         * a 1.3-capable peer would never get through (issue 10). */
        return server ? wolfDTLSv1_2_server_method() : wolfDTLSv1_2_client_method();
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
    wolfSSL_CTX_set_ex_data(d->ctx, ex_dom, d);
    if ((min_version >= 0 && wolfSSL_CTX_SetMinVersion(d->ctx, min_version) != WOLFSSL_SUCCESS) ||
        (max_proto >= 0 &&
         wolfSSL_CTX_set_max_proto_version(d->ctx, max_proto) != WOLFSSL_SUCCESS)) {
        slog(s, SIPTLS_LOG_ERR, "domain '%s': cannot set the protocol versions", d->name);
        return SIPTLS_ERR_INVAL;
    }

    /* Cipher suites. A configured list always wins; like OpenSSL (whose
     * cipher list does not cover TLS 1.3) a list that names no TLS 1.3 suite
     * keeps the default TLS 1.3 suites, else TLS 1.3 could not work. */
    const char *base = s->dtls ? DEFAULT_CIPHERS_DTLS : DEFAULT_CIPHERS_TLS;
    if (c.ciphers_list != NULL) {
        size_t n = strlen(c.ciphers_list) + sizeof(DEFAULT_TLS13) + 2;
        d->ciphers = malloc(n);
        if (d->ciphers == NULL) {
            return SIPTLS_ERR_NOMEM;
        }
        if (!s->dtls && allows13 && !list_has_tls13(c.ciphers_list)) {
            snprintf(d->ciphers, n, "%s:%s", c.ciphers_list, DEFAULT_TLS13);
        } else {
            snprintf(d->ciphers, n, "%s", c.ciphers_list);
        }
        warn_unknown_ciphers(s, d->name, c.ciphers_list);
    } else {
        d->ciphers = xstrdup(base);
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
    if (s->dtls) {
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
    wolfSSL_CTX_set_verify(d->ctx, d->verify_mode, verify_cb);

    if (d->is_server) {
        /* wolfSSL already picks by the server's order; say so explicitly
         * in case a future wolfSSL changes its default. */
        wolfSSL_CTX_set_options(d->ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
        wolfSSL_CTX_set_servername_callback(d->ctx, sni_cb);
        wolfSSL_CTX_set_servername_arg(d->ctx, s);
        wolfSSL_CTX_set_timeout(d->ctx, SESSION_LIFETIME_S);
        if (!s->session_cache) {
            wolfSSL_CTX_set_session_cache_mode(d->ctx, WOLFSSL_SESS_CACHE_OFF);
        }
        /* No TLS 1.2 tickets: a wolfSSL 5.5.4 server that cannot decrypt
         * a TLS 1.2 ticket (after a reload, on another engine) echoes the
         * client's session id in a full handshake, against RFC 5077 §3.4
         * ("If the server accepts the ticket and the Session ID is not
         * empty, then it MUST respond with the same Session ID"), and the
         * client, taking it for a resumption, fails the handshake (tested).
         * TLS 1.2 resumes through the session cache, TLS 1.3 through
         * tickets. */
        wolfSSL_CTX_NoTicketTLSv12(d->ctx);
        if (s->tickets) {
            wolfSSL_CTX_set_TicketEncCb(d->ctx, ticket_cb);
            wolfSSL_CTX_set_TicketEncCtx(d->ctx, &s->tkey);
        } else {
#ifdef WOLFSSL_TLS13
            wolfSSL_CTX_no_ticket_TLSv13(d->ctx);
#endif
        }
    }
    /* Clients offer no TLS 1.2 ticket either (the same bug on a wolfSSL
     * peer); TLS 1.3 tickets need no opt-in. */
    return SIPTLS_OK;
}

static void domain_release(sec_domain *d)
{
    if (d->ctx != NULL) {
        /* Live WOLFSSLs keep this CTX: make sure nothing of ours is
         * reachable from it any more. */
        wolfSSL_CTX_set_ex_data(d->ctx, ex_dom, NULL);
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
    s->dtls = dtls ? 1 : 0;
    s->log = log;
    s->log_user = log_user;
    if (ex_flags < 0 || ex_aux < 0 || ex_dom < 0) {
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
        rc = load_ticket_key(s, cfg->tls_ticket_key_file);
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

void siptls__secctx_free(siptls__secctx *s)
{
    if (s == NULL) {
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
/* public: new connections                                                  */
/* ------------------------------------------------------------------------ */

/* "IP:port" / "[v6]:port" as config.c stores match_ip_address; an IPv4
 * address mapped into IPv6 (dual-stack socket) is written as IPv4. */
static int addr_text(const struct sockaddr *sa, char *host, size_t hostlen, unsigned *port)
{
    if (sa == NULL) {
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *port = ntohs(in->sin_port);
        return inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostlen) != NULL;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, (socklen_t)hostlen) !=
                   NULL;
        }
        return inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostlen) != NULL;
    }
    return 0;
}

/* One match_ip_address entry against an address: "*" is any; a wildcard
 * host (0.0.0.0, [::]) is any address on that port. */
static int addr_entry_matches(const char *entry, const char *host, unsigned port)
{
    if (strcmp(entry, "*") == 0) {
        return 1;
    }
    const char *colon = strrchr(entry, ':');
    if (colon == NULL) {
        return 0;
    }
    char ehost[INET6_ADDRSTRLEN + 2];
    size_t hl = (size_t)(colon - entry);
    if (entry[0] == '[' && hl >= 2 && entry[hl - 1] == ']') {
        entry++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(ehost)) {
        return 0;
    }
    memcpy(ehost, entry, hl);
    ehost[hl] = '\0';
    char *end = NULL;
    unsigned long eport = strtoul(colon + 1, &end, 10);
    if (end == NULL || *end != '\0' || eport != port) {
        return 0;
    }
    if (strcmp(ehost, "0.0.0.0") == 0) {
        return strchr(host, ':') == NULL;
    }
    if (strcmp(ehost, "::") == 0) {
        return 1;
    }
    unsigned char a[16], b[16];
    int af = strchr(ehost, ':') ? AF_INET6 : AF_INET;
    if (strchr(host, ':') ? af != AF_INET6 : af != AF_INET) {
        return 0;
    }
    return inet_pton(af, ehost, a) == 1 && inet_pton(af, host, b) == 1 &&
           memcmp(a, b, af == AF_INET ? 4 : 16) == 0;
}

/* `star` 0: an address entry (not "*") names host:port; 1: the domain has
 * the "*" entry. */
static int domain_matches_addr(const sec_domain *d, const char *host, unsigned port, int star)
{
    for (size_t i = 0; i < d->n_match_ip; i++) {
        int is_star = strcmp(d->match_ip[i], "*") == 0;
        if (star ? is_star : (!is_star && addr_entry_matches(d->match_ip[i], host, port))) {
            return 1;
        }
    }
    return 0;
}

/* The TLS 1.2 key log line needs the handshake's client random, which
 * wolfSSL frees when the handshake ends unless asked to keep it (Debian's
 * 5.5.4 build kept it for every connection, WOLFSSL_OPENVPN; 5.7.2 built
 * for siptls does not). Kept only while a key log is configured, and freed
 * again once the line is written (keylog_write). */
static void keylog_keep(const siptls__secctx *s, WOLFSSL *ssl)
{
    if (ssl != NULL && s->keylog != NULL) {
        wolfSSL_KeepArrays(ssl);
    }
}

struct WOLFSSL *siptls__secctx_server_ssl(siptls__secctx *s, const struct sockaddr *local)
{
    if (s == NULL) {
        return NULL;
    }
    char host[INET6_ADDRSTRLEN];
    unsigned port = 0;
    sec_domain *dom = NULL;
    if (addr_text(local, host, sizeof(host), &port)) {
        /* An exact address first, then a domain with "*". */
        for (int pass = 0; pass < 2 && dom == NULL; pass++) {
            for (size_t i = 0; i < s->n_doms && dom == NULL; i++) {
                sec_domain *d = &s->doms[i];
                if (d->is_server && d->has_cert && d != s->def_server &&
                    domain_matches_addr(d, host, port, pass)) {
                    dom = d;
                }
            }
        }
    }
    if (dom == NULL) {
        dom = s->def_server;
    }
    if (dom == NULL || !dom->has_cert) {
        return NULL;
    }
    WOLFSSL *ssl = wolfSSL_new(dom->ctx);
    keylog_keep(s, ssl);
    return ssl;
}

struct WOLFSSL *siptls__secctx_client_ssl(siptls__secctx *s, const char *sip_domain,
                                          const struct sockaddr *remote)
{
    if (s == NULL) {
        return NULL;
    }
    char host[INET6_ADDRSTRLEN];
    unsigned port = 0;
    int have_addr = addr_text(remote, host, sizeof(host), &port);
    sec_domain *dom = NULL;
    /* 1. the SIP domain by name: an exact name, else the longest matching
     * "*.suffix" (the first declared between equals); 2. the destination
     * address; 3. "*". */
    int best_rank = RANK_ANY;
    for (size_t i = 0; i < s->n_doms && sip_domain != NULL; i++) {
        sec_domain *d = &s->doms[i];
        int r = d->is_server ? 0 : domain_name_rank(d, sip_domain);
        if (r > best_rank) {
            dom = d;
            best_rank = r;
        }
    }
    for (size_t i = 0; i < s->n_doms && dom == NULL && have_addr; i++) {
        sec_domain *d = &s->doms[i];
        if (!d->is_server && d != s->def_client && domain_matches_addr(d, host, port, 0)) {
            dom = d;
        }
    }
    for (size_t i = 0; i < s->n_doms && dom == NULL; i++) {
        sec_domain *d = &s->doms[i];
        if (d->is_server || d == s->def_client) {
            continue;
        }
        int star = domain_matches_addr(d, host, port, 1);
        for (size_t k = 0; k < d->n_match_dom && !star; k++) {
            star = strcmp(d->match_dom[k], "*") == 0;
        }
        if (star) {
            dom = d;
        }
    }
    if (dom == NULL) {
        dom = s->def_client;
    }
    if (dom == NULL || dom->ctx == NULL) {
        return NULL;
    }
    WOLFSSL *ssl = wolfSSL_new(dom->ctx);
    if (ssl == NULL) {
        return NULL;
    }
    keylog_keep(s, ssl);
    set_aux(ssl, fnv_lower(sip_domain));
#ifdef HAVE_SERVER_RENEGOTIATION_INFO
    /* RFC 5746 §3.4: "the client MUST include either an empty
     * "renegotiation_info" extension, or the TLS_EMPTY_RENEGOTIATION_INFO_SCSV
     * signaling cipher suite value in the ClientHello". Debian's wolfSSL
     * sends neither by default; this adds the extension. It does not make
     * us renegotiate: without HAVE_SECURE_RENEGOTIATION a HelloRequest is
     * still answered with a no_renegotiation warning. */
    if (wolfSSL_UseSecureRenegotiation(ssl) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl);
        return NULL;
    }
#endif
    if (sip_domain != NULL && sip_domain[0] != '\0' && !is_ip_literal(sip_domain)) {
        /* RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted
         * in "HostName"." */
        if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, sip_domain, (word16)strlen(sip_domain)) !=
            WOLFSSL_SUCCESS) {
            wolfSSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

/* ------------------------------------------------------------------------ */
/* public: after the handshake                                              */
/* ------------------------------------------------------------------------ */

static void hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void keylog_write(siptls__secctx *s, WOLFSSL *ssl)
{
    if (s->keylog == NULL) {
        return;
    }
    int v = wolfSSL_version(ssl);
    if (v == TLS1_3_VERSION) {
        wolfSSL_FreeArrays(ssl);
        /* TLS 1.3 traffic secrets are only handed out through the secret
         * callback, which this wolfSSL was built without. */
        if (!(s->keylog_warned & 1)) {
            s->keylog_warned |= 1;
            slog(s, SIPTLS_LOG_WARN,
                 "tls_keylog_file: TLS 1.3 keys cannot be logged: this wolfSSL was built "
                 "without --enable-secret-callback (HAVE_SECRET_CALLBACK); use tls_method "
                 "TLSv1_2 while capturing");
        }
        return;
    }
    unsigned char random[32];
    unsigned char master[48];
    WOLFSSL_SESSION *sess = wolfSSL_get_session(ssl);
    int got = wolfSSL_get_client_random(ssl, random, sizeof(random)) == sizeof(random) &&
              sess != NULL &&
              wolfSSL_SESSION_get_master_key(sess, master, sizeof(master)) == (int)sizeof(master);
    wolfSSL_FreeArrays(ssl); /* kept for this line only (keylog_keep) */
    if (!got) {
        return;
    }
    /* NSS key log format, understood by Wireshark. */
    char line[14 + 64 + 1 + 96 + 2];
    memcpy(line, "CLIENT_RANDOM ", 14);
    hex(line + 14, random, sizeof(random));
    line[14 + 64] = ' ';
    hex(line + 14 + 64 + 1, master, sizeof(master));
    memset(master, 0, sizeof(master));
    size_t len = strlen(line);
    line[len++] = '\n';
    int fd = open(s->keylog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    ssize_t w = fd >= 0 ? write(fd, line, len) : -1;
    if (fd >= 0) {
        close(fd);
    }
    memset(line, 0, sizeof(line));
    if (w != (ssize_t)len && !(s->keylog_warned & 2)) {
        s->keylog_warned |= 2;
        slog(s, SIPTLS_LOG_WARN, "tls_keylog_file '%s': cannot write: %s", s->keylog,
             strerror(errno));
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
    } else if (sip_domain != NULL && !is_ip_literal(sip_domain)) {
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
    if (peer_view_fill(s, ssl, &v) != SIPTLS_OK) {
        peer_view_free(&v);
        return SIPTLS_ERR_NOMEM;
    }
    if (info != NULL) {
        info_fill(ssl, is_server, sip_domain, &v, info);
    }
    keylog_write(s, ssl);
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
    peer_view_free(&v);
    return rc;
}

void siptls__secctx_describe(siptls__secctx *s, struct WOLFSSL *ssl, int is_server,
                             const char *sip_domain, siptls_flow_info *info)
{
    if (ssl == NULL || info == NULL) {
        return;
    }
    peer_view v;
    if (peer_view_fill(s, ssl, &v) == SIPTLS_OK) {
        info_fill(ssl, is_server, sip_domain, &v, info);
    }
    peer_view_free(&v);
}

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
