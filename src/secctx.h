/* siptls internal — security contexts: one wolfSSL CTX per TLS domain.
 *
 * This header includes no wolfSSL header; the secctx*.c files behind it
 * (listed in secctx_internal.h) do, as .ci/wolfssl-allowed permits; tls/
 * and dtls/ include wolfSSL themselves. Everything here is called from the
 * engine's thread. */
#ifndef SIPTLS_SECCTX_H
#define SIPTLS_SECCTX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "siptls/config.h"
#include "siptls/engine.h"
#include "siptls/flow.h"

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
int siptls__secctx_new(siptls__secctx **out, const siptls_config *cfg, int dtls, siptls__log_fn log,
                       void *log_user);

/** The CPU has AES-NI and PCLMULQDQ (CPUID; 0 on other architectures).
 *  The environment variable SIPTLS_CPU_AESNI=0 or =1 overrides what the
 *  CPU says (docs/security.md "Cipher suites"). Read on each call. */
int siptls__cpu_has_aes(void);

/** The default cipher order of every secctx made now: 1 = AES-GCM before
 *  ChaCha20-Poly1305, when this wolfSSL has AES-NI code (WOLFSSL_AESNI)
 *  and `cpu_aes` says the CPU has the instructions; else 0 (ChaCha20
 *  first). siptls__secctx_new() decides with siptls__cpu_has_aes(). */
int siptls__secctx_aes_first(int cpu_aes);

/** "AES-GCM first (AES-NI)" or "ChaCha20-Poly1305 first (no AES-NI)"
 *  (static text), for the version text and the serve start line. */
const char *siptls__secctx_cipher_order_text(int aes_first);

/** Take one more reference on `s` (a flow made from it keeps it: its
 *  domains, trusted_domain list and session cache stay its own across a
 *  reload). Returns `s`; NULL is accepted. */
siptls__secctx *siptls__secctx_hold(siptls__secctx *s);

/** Drop one reference (siptls__secctx_new() gives the first); the last
 *  frees it. WOLFSSL objects created from it stay valid even then (wolfSSL
 *  reference counts its CTX): their handshakes complete on the domain they
 *  were created with (no SNI switch any more, session tickets they issue
 *  are never accepted again), and peer_check / describe may be given
 *  another secctx for them (the `domain` field is then ""). Each secctx
 *  holds one wolfSSL_Init(); the last free runs wolfSSL_Cleanup(), so free
 *  the old secctx after the new one exists (reload) or after its last
 *  WOLFSSL. NULL is accepted. */
void siptls__secctx_free(siptls__secctx *s);

/** 1 when the default server domain has a certificate and key. */
int siptls__secctx_has_server_cert(const siptls__secctx *s);

/** New server-side WOLFSSL for a connection accepted on local address
 *  `local` (pass the accepted socket's getsockname(), not the listener's
 *  wildcard address, for match_ip_address to see the real address): domain
 *  by match_ip_address (an exact "IP:port" entry, a wildcard-host
 *  "0.0.0.0:port" / "[::]:port" entry, then "*"), else the default server
 *  domain; the SNI the client sends then switches to the server domain
 *  that names it most specifically: an exact match_sip_domain entry, then
 *  the domain's own name, then the longest matching "*.suffix" entry (one
 *  or more labels before the suffix), then "*"; case-insensitive, the
 *  first declared between equals (certificate, key, verify mode, cipher
 *  suites and groups all switch).
 *  NULL on out of memory or when that domain has no certificate. The
 *  caller sets the fd / I/O callbacks. */
struct WOLFSSL *siptls__secctx_server_ssl(siptls__secctx *s, const struct sockaddr *local);

/** New client-side WOLFSSL towards `sip_domain` (the host part of the
 *  destination URI; may be an IP literal) at `remote`: client domain by
 *  match_sip_domain (an exact name, else the longest matching "*.suffix";
 *  case-insensitive), then match_ip_address, then
 *  a client domain with "*" in either, else the default client domain;
 *  SNI = sip_domain unless it is an IP literal; peer verification per the
 *  domain's verify_cert (default on). NULL on out of memory. */
struct WOLFSSL *siptls__secctx_client_ssl(siptls__secctx *s, const char *sip_domain,
                                          const struct sockaddr *remote);

/** As siptls__secctx_client_ssl(), with what an outbound target may ask
 *  for: `client_domain` (non-NULL) is the client domain of that name,
 *  taken instead of the match rules (NULL is returned when there is no
 *  such domain); `sni` (non-NULL) is the name sent as SNI instead of
 *  sip_domain (none when it is an IP literal). The certificate is still
 *  checked against sip_domain (siptls__secctx_peer_check). */
struct WOLFSSL *siptls__secctx_client_ssl_ex(siptls__secctx *s, const char *sip_domain,
                                             const char *sni, const char *client_domain,
                                             const struct sockaddr *remote);

/** 1 when `s` has a client domain declared with this name (as written in
 *  the configuration: "default" or a client_domain name). */
int siptls__secctx_has_client_domain(const siptls__secctx *s, const char *name);

/** The name of the client domain siptls__secctx_client_ssl_ex() would
 *  choose for `sip_domain` at `remote` (or the one named `by_name`; owned by
 *  `s`), NULL when there is none. */
const char *siptls__secctx_client_domain(siptls__secctx *s, const char *sip_domain,
                                         const char *by_name, const struct sockaddr *remote);

/** Remember the session of an outbound flow so that the next connection
 *  with the same `key` resumes it. `key` names the destination (for
 *  example the destination URI "tls:sip.example.org:5061"); the client
 *  domain, its settings and the SIP domain the WOLFSSL was made for are
 *  added to it internally, so a session is never offered to another
 *  domain. Only a flow that passed siptls__secctx_peer_check() is saved.
 *  Call it when the flow closes (or any time after the first read): a TLS
 *  1.3 session ticket arrives after the handshake, so a session taken
 *  right at handshake end cannot resume. Keeps one session per key in a
 *  bounded table (256, a collision replaces); freed with the secctx (a
 *  reload starts empty). */
void siptls__secctx_client_session_save(siptls__secctx *s, struct WOLFSSL *ssl, const char *key);

/** Offer the session saved under `key` on a new client WOLFSSL (made by
 *  siptls__secctx_client_ssl() of the same secctx, before the handshake).
 *  Returns 1 when a session was set, 0 when there is none (full
 *  handshake). On a resumed handshake peer_check trusts the verdict of the
 *  flow the session was saved from. */
int siptls__secctx_client_session_apply(siptls__secctx *s, struct WOLFSSL *ssl, const char *key);

/** After a completed handshake: fill the security fields of `info` (may be
 *  NULL) (tls_version, cipher, resumed, sni, domain, peer_cert,
 *  peer_verified, peer_subject, peer_issuer, peer_sans, trusted,
 *  trusted_domain) and decide whether the flow may go on.
 *  peer_verified is 1 only when a certificate was verified against the
 *  domain's CAs (and CRL): in this handshake, or -- resumed -- in the
 *  handshake the session came from (server: sealed in our session ticket;
 *  client: the saved session's flow). With verify_cert=0 it is always 0.
 *  trusted = peer_verified and an RFC 5922 identity of the certificate is a
 *  trusted_domain. Decisions:
 *   client side with verification on: the chain must have verified and the
 *   certificate must match `sip_domain` by RFC 5922 §7.1 (SAN URI sip:host
 *   without user part; SAN dNSName only when there is no such URI; CN only
 *   when no SAN; exact, case-insensitive, no wildcards; IP literals against
 *   SAN iPAddress) -> else SIPTLS_ERR_VERIFY / SIPTLS_ERR_NAME_MISMATCH (a
 *   resumed session without the certificate was checked when it was made);
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

/** The peer certificate of a completed handshake `ssl`, parsed into `out`
 *  (include/siptls/flow.h). Returns SIPTLS_OK, SIPTLS_ERR_NO_CERT or
 *  SIPTLS_ERR_NOMEM. */
int siptls__secctx_peer_cert(struct WOLFSSL *ssl, siptls_peer_cert *out);

/** The peer certificate as DER (`pem` 0) or PEM text (`pem` 1, with a
 *  NUL) into `buf` of `cap` bytes; `*len` gets the length (PEM: without
 *  the NUL) also when `cap` is too small. Returns SIPTLS_OK,
 *  SIPTLS_ERR_BUFFER_SMALL, SIPTLS_ERR_NO_CERT, SIPTLS_ERR_NOMEM. */
int siptls__secctx_peer_cert_export(struct WOLFSSL *ssl, int pem, uint8_t *buf, size_t cap,
                                    size_t *len);

/** Call `fn` with every subjectAltName of the peer certificate,
 *  untruncated (siptls_flow_peer_sans()). `fn` may be
 *  NULL (count only); `*count` (may be NULL) gets how many names were
 *  given. Returns SIPTLS_OK, SIPTLS_ERR_NO_CERT, SIPTLS_ERR_NOMEM. */
int siptls__secctx_peer_sans(struct WOLFSSL *ssl, int (*fn)(const char *, size_t, void *),
                             void *arg, unsigned *count);

/** The name of the TLS domain `ssl` works with now (after an SNI switch:
 *  the new one) and in *is_server its kind; NULL when unknown (its secctx
 *  is gone). The string belongs to the secctx: copy it to keep it. */
const char *siptls__secctx_ssl_domain(struct WOLFSSL *ssl, int *is_server);

/** Classify a wolfSSL error code (wolfSSL_get_error / negative return) of a
 *  failed handshake: certificate problems -> SIPTLS_ERR_VERIFY, name ->
 *  SIPTLS_ERR_NAME_MISMATCH, missing client cert -> SIPTLS_ERR_NO_PEER_CERT,
 *  socket errors -> SIPTLS_ERR_IO, everything else -> SIPTLS_ERR_HANDSHAKE. */
int siptls__secctx_classify_error(int wolf_err);
/** What an operator should read into a failed handshake's wolfSSL error,
 *  when wolfSSL's own text does not say it (no version or no cipher
 *  suite in common); NULL otherwise. A static string. */
const char *siptls__secctx_error_hint(int wolf_err);
/** The status of the fatal alert the peer sent (SIPTLS_ERR_PEER_ALERT()),
 *  0 when it sent none. */
int siptls__secctx_peer_alert(struct WOLFSSL *ssl);

/** RFC 5922 §7.1 identity check on already-extracted names (pure, in
 *  identity.c; unit tested). `sans` are "DNS:x", "URI:sip:x", "IP:x"
 *  strings (other prefixes are ignored, NULL entries skipped); `cn` is the
 *  subject CN, to be passed only when the certificate has no
 *  subjectAltName extension at all (NULL otherwise). Rules: a SAN URI of
 *  scheme sip without user part gives its host (port, parameters and
 *  headers dropped); dNSName SANs count only when no such sip URI is
 *  present; the CN only when there is no SAN (the caller's job, see
 *  above); exact ASCII case-insensitive comparison, one trailing dot
 *  ignored, never a wildcard. An IP-literal `domain` ("192.0.2.1", "::1",
 *  "[::1]") matches only an "IP:" SAN of the same address (compared
 *  parsed). Returns 1 on match. */
int siptls__rfc5922_match(const char *domain, const char *const *sans, size_t n_sans,
                          const char *cn);

/** The same identities as siptls__rfc5922_match(), each compared with the
 *  trusted_domain pattern "*.`suffix`": 1 when one of them lies one or more
 *  labels below `suffix` (a.example.org or a.b.example.org for
 *  "example.org"; example.org itself does not). The identities themselves
 *  are still taken literally (a wildcard in the certificate is never an
 *  identity, RFC 5922 §7.2). For trusted_domain only, never for the
 *  outbound name check. */
int siptls__rfc5922_match_under(const char *suffix, const char *const *sans, size_t n_sans,
                                const char *cn);

#endif
