/* siptls internal — security contexts: one wolfSSL CTX per TLS domain.
 *
 * This is the only file pair in src/ that includes wolfSSL headers (in the
 * .c); tls/ and dtls/ include wolfSSL themselves. Everything here is
 * called from the engine's thread. */
#ifndef SIPTLS_SECCTX_H
#define SIPTLS_SECCTX_H

#include <stddef.h>
#include <sys/socket.h>

#include "siptls/config.h"
#include "siptls/engine.h"

struct WOLFSSL;

typedef struct siptls__secctx siptls__secctx;

/** Log sink used by the security layer (the engine's log). */
typedef void (*siptls__log_fn)(void *log_user, siptls_log_level level, const char *fmt, ...);

/** Build the contexts of every domain of `cfg` (server and client), for TLS
 *  (`dtls` = 0) or DTLS 1.2 (`dtls` = 1). Loads certificate, key, CA list /
 *  dir and CRL of every domain; a load failure is logged with the domain
 *  name and file path and returns SIPTLS_ERR_CERT. A server domain without
 *  a certificate is an error only when some listener needs it (the engine
 *  decides: siptls__secctx_has_server_cert()). Returns SIPTLS_OK,
 *  SIPTLS_ERR_CERT, SIPTLS_ERR_INVAL (bad tls_method / cipher list / curve),
 *  SIPTLS_ERR_NOMEM. */
int siptls__secctx_new(siptls__secctx **out, const siptls_config *cfg, int dtls,
                       siptls__log_fn log, void *log_user);

/** Free. WOLFSSL objects created from it stay valid (wolfSSL reference
 *  counts its CTX), so a reload can free the old secctx at once. */
void siptls__secctx_free(siptls__secctx *s);

/** 1 when the default server domain has a certificate and key. */
int siptls__secctx_has_server_cert(const siptls__secctx *s);

/** New server-side WOLFSSL for a connection accepted on local address
 *  `local`: domain by match_ip_address, else the default server domain; the
 *  SNI the client sends then switches to the server domain whose
 *  match_sip_domain (or name) equals it (exact, case-insensitive). NULL on
 *  out of memory. The caller sets the fd / I/O callbacks. */
struct WOLFSSL *siptls__secctx_server_ssl(siptls__secctx *s, const struct sockaddr *local);

/** New client-side WOLFSSL towards `sip_domain` (the host part of the
 *  destination URI; may be an IP literal) at `remote`: client domain by
 *  match_sip_domain / match_ip_address, else the default client domain;
 *  SNI = sip_domain unless it is an IP literal; peer verification per the
 *  domain's verify_cert (default on). NULL on out of memory. */
struct WOLFSSL *siptls__secctx_client_ssl(siptls__secctx *s, const char *sip_domain,
                                          const struct sockaddr *remote);

/** After a completed handshake: fill the security fields of `info`
 *  (tls_version, cipher, resumed, sni, domain, peer_cert, peer_verified,
 *  peer_subject, peer_issuer, peer_sans, trusted, trusted_domain) and decide
 *  whether the flow may go on:
 *   client side with verification on: the chain must have verified and the
 *   certificate must match `sip_domain` by RFC 5922 §7.1 (SAN URI sip:host,
 *   then SAN dNSName; CN only when no SAN; exact, case-insensitive, no
 *   wildcards; IP literals against SAN iPAddress) -> else SIPTLS_ERR_VERIFY /
 *   SIPTLS_ERR_NAME_MISMATCH;
 *   server side: require_cert and no verified certificate ->
 *   SIPTLS_ERR_NO_PEER_CERT.
 *  Returns SIPTLS_OK or that status. Also writes the key-log line when a
 *  key-log file is configured. */
int siptls__secctx_peer_check(siptls__secctx *s, struct WOLFSSL *ssl, int is_server,
                              const char *sip_domain, siptls_flow_info *info);

/** Fill the same security fields of `info` as siptls__secctx_peer_check()
 *  for an established flow, without deciding anything and without writing
 *  the key log (used by siptls_flow_get_info()). */
void siptls__secctx_describe(siptls__secctx *s, struct WOLFSSL *ssl, int is_server,
                             const char *sip_domain, siptls_flow_info *info);

/** Classify a wolfSSL error code (wolfSSL_get_error / negative return) of a
 *  failed handshake: certificate problems -> SIPTLS_ERR_VERIFY, name ->
 *  SIPTLS_ERR_NAME_MISMATCH, missing client cert -> SIPTLS_ERR_NO_PEER_CERT,
 *  socket errors -> SIPTLS_ERR_IO, everything else -> SIPTLS_ERR_HANDSHAKE. */
int siptls__secctx_classify_error(int wolf_err);

/** RFC 5922 §7.1 identity check on already-extracted names (pure; unit
 *  tested). `sans` are "DNS:x", "URI:sip:x", "IP:x" strings; `cn` may be
 *  NULL. Returns 1 on match. */
int siptls__rfc5922_match(const char *domain, const char *const *sans, size_t n_sans,
                          const char *cn);

#endif
