/* siptls internal — what the files of the security-context module share.
 *
 * The module (its interface is secctx.h) is split by what each part does:
 *
 *   secctx.c                  life cycle, process-wide wolfSSL state, one
 *                             WOLFSSL_CTX per domain (method, ciphers,
 *                             groups, certificate / key / CA / CRL files)
 *   secctx_select.c           which domain a connection gets: by local
 *                             address, by SNI, by destination
 *   secctx_peer.c             the verify callback, the peer view, peer_check,
 *                             describe, handshake error classes
 *   secctx_tickets.c          the session ticket key and ticket callback
 *   secctx_client_sessions.c  the client session cache (save / apply)
 *   secctx_keylog.c           the key-log file
 *
 * Only these files include this header (they are the files of src/ in
 * .ci/wolfssl-allowed that include wolfSSL for it). Functions that cross
 * files are named siptls__secctx_*; accessors and helpers of a few lines
 * that every file uses are static inline here, so each has one definition.
 * Everything runs on the engine's thread. */
#ifndef SIPTLS_SECCTX_INTERNAL_H
#define SIPTLS_SECCTX_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

#include "secctx.h"

/* ------------------------------------------------------------------------ */
/* constants                                                                */
/* ------------------------------------------------------------------------ */

/* TLS 1.2 session tickets (RFC 5077) issued and accepted by our servers:
 * on from wolfSSL 5.7.0, whose server falls back to a full handshake on a
 * ticket it cannot decrypt (tests/interop/test_tls_tickets.sh); off with
 * Debian's 5.5.4 as before (see secctx.c). Our clients never offer one
 * (secctx.c says why). */
#if defined(HAVE_SESSION_TICKET) && LIBWOLFSSL_VERSION_HEX >= 0x05007000
#define SIPTLS_TLS12_TICKETS 1
#else
#define SIPTLS_TLS12_TICKETS 0
#endif

/* A group list (ec_curve, the X25519-first default) on DTLS contexts:
 * wolfSSL 5.5.4 refuses wolfSSL_CTX_set1_curves_list on any DTLS method
 * (tested); 5.7.2 takes it (test_secctx: test_dtls). */
#if LIBWOLFSSL_VERSION_HEX >= 0x05007000
#define SIPTLS_DTLS_CURVES 1
#else
#define SIPTLS_DTLS_CURVES 0
#endif

/* Saved client sessions: direct-mapped, lossy (a collision replaces). */
#define CLIENT_SLOTS 256

/* SANs we look at per certificate (matching uses all of them; the flow info
 * shows the first SIPTLS_FLOW_MAX_SANS). */
#define MAX_SANS 64
#define SAN_TEXT_MAX 300

/* Ticket key name: the first bytes identify the key (secctx_tickets.c). */
#define TICKET_ID_SIZE 8

/* Per-WOLFSSL record (SSL ex data slot siptls__secctx_ex_flags), an integer
 * so that it needs no memory and no lifetime. */
#define F_VFAIL 0x1u         /* the verify callback saw a failure */
#define F_VERR_SHIFT 1       /* ... the first X509_V_ERR code (8 bits) */
#define F_TICKET 0x200u      /* resumed from one of our tickets: the evidence below is set */
#define F_T_VERIFIED 0x400u  /* the ticket says: client certificate verified */
#define F_T_TRUSTED 0x800u   /* the ticket says: identity is trusted_domain[F_T_TIDX] */
#define F_T_TIDX_SHIFT 12    /* 8 bits */
#define F_CHECKED 0x100000u  /* peer_check let this flow go on */
#define F_VERIFIED 0x200000u /* peer_check found the peer verified */
#define F_APPLIED 0x400000u  /* client: a session saved from a verified flow was applied */

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
    unsigned refs; /* the engine's, and one per flow made from it */
    int dtls;
    int aes_first; /* default cipher order: AES-GCM before ChaCha20 (secctx.c) */
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
    int dtls13_noted; /* "no DTLS 1.3 in this wolfSSL" logged */
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
/* process-wide state (secctx.c)                                            */
/* ------------------------------------------------------------------------ */

/* wolfSSL ex data indices, set once (pthread_once) before the first secctx
 * exists. */
extern int siptls__secctx_ex_flags; /* WOLFSSL: F_* record */
extern int siptls__secctx_ex_aux;   /* WOLFSSL: server: ticket policy; client: SIP domain hash */
extern int siptls__secctx_ex_dom;   /* WOLFSSL_CTX: sec_domain * (NULL once its secctx is freed) */

static inline uintptr_t get_flags(WOLFSSL *ssl)
{
    return (uintptr_t)wolfSSL_get_ex_data(ssl, siptls__secctx_ex_flags);
}

static inline void set_flags(WOLFSSL *ssl, uintptr_t f)
{
    wolfSSL_set_ex_data(ssl, siptls__secctx_ex_flags, (void *)f);
}

static inline uint32_t get_aux(WOLFSSL *ssl)
{
    return (uint32_t)(uintptr_t)wolfSSL_get_ex_data(ssl, siptls__secctx_ex_aux);
}

static inline void set_aux(WOLFSSL *ssl, uint32_t v)
{
    wolfSSL_set_ex_data(ssl, siptls__secctx_ex_aux, (void *)(uintptr_t)v);
}

static inline sec_domain *ssl_domain(WOLFSSL *ssl)
{
    WOLFSSL_CTX *ctx = wolfSSL_get_SSL_CTX(ssl);
    return ctx ? wolfSSL_CTX_get_ex_data(ctx, siptls__secctx_ex_dom) : NULL;
}

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */
/* ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static inline void
slog(const siptls__secctx *s, siptls_log_level level, const char *fmt, ...)
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

static inline uint32_t fnv_lower(const char *s)
{
    uint32_t h = 2166136261u;
    for (; s != NULL && *s != '\0'; s++) {
        h ^= (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
        h *= 16777619u;
    }
    return h;
}

/* ------------------------------------------------------------------------ */
/* across the files of the module                                           */
/* ------------------------------------------------------------------------ */

/* secctx.c: read a whole (small) file (keys, ticket keys); NULL with errno
 * set on failure, else a NUL-terminated buffer of *len bytes to free(). */
unsigned char *siptls__secctx_read_file(const char *path, size_t max, size_t *len);

/* secctx_select.c: 1 when `s` is an IPv4 or IPv6 literal (IPv6 with or
 * without brackets). */
int siptls__secctx_is_ip_literal(const char *s);

/* secctx_select.c: the SNI callback of every server CTX (arg: the secctx,
 * NULL once it is freed). */
int siptls__secctx_sni_cb(WOLFSSL *ssl, int *alert, void *arg);

/* secctx_peer.c: the verify callback of every CTX (and of a WOLFSSL moved
 * to another domain by SNI). */
int siptls__secctx_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store);

/* secctx_peer.c: what we know about the peer of a finished (or finishing)
 * handshake; `s` may be NULL. Always pair with siptls__secctx_peer_view_free
 * (also after a failure). Returns SIPTLS_OK or SIPTLS_ERR_NOMEM. */
int siptls__secctx_peer_view_fill(siptls__secctx *s, WOLFSSL *ssl, peer_view *v);
void siptls__secctx_peer_view_free(peer_view *v);

/* secctx_tickets.c: the session ticket callback of every server CTX (user:
 * a ticket_key), and loading the key: from the tls_ticket_key_file `path`
 * (80 bytes), or random when `path` is NULL. Returns SIPTLS_OK or
 * SIPTLS_ERR_CERT (logged). */
int siptls__secctx_ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                             unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                             unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
                             unsigned char *ticket, int in_len, int *out_len, void *user);
int siptls__secctx_load_ticket_key(siptls__secctx *s, const char *path);

/* secctx_keylog.c: append the key-log line of a finished handshake when a
 * key-log file is configured. */
void siptls__secctx_keylog_write(siptls__secctx *s, WOLFSSL *ssl);
/* secctx_keylog.c: keep a new connection's handshake arrays (client random)
 * for that line while a key-log file is configured. */
void siptls__secctx_keylog_keep(const siptls__secctx *s, WOLFSSL *ssl);
/* secctx_keylog.c: open (create) the key-log file once, at start or
 * reload: SIPTLS_OK, or SIPTLS_ERR_INVAL logged when it cannot be written. */
int siptls__secctx_keylog_check(siptls__secctx *s);

#endif
