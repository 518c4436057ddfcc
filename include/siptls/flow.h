/* siptls — per-flow data and backpressure: the host's pointer on a flow,
 * the flow's addresses without the whole siptls_flow_info, its write queue
 * depth and a "writable again" callback, and the peer's certificate
 * (serial, validity, SHA-256 fingerprint, the certificate itself, every
 * subjectAltName).
 *
 * Every call here is an engine call: on the thread that runs the engine's
 * loop (engine.h), from the host's own code or from inside any callback.
 * None of them calls a callback of the engine. A flow id that is closed
 * (or never was) gives SIPTLS_ERR_GONE. */
#ifndef SIPTLS_FLOW_H
#define SIPTLS_FLOW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "siptls/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the host's pointer -------------------------------------------------- */

/** Attach `user` to `flow` (replacing what was there). The library never
 *  dereferences nor frees it: what it points to is the host's, to free
 *  from on_flow(CLOSED) (siptls_flow_get_user() still answers inside that
 *  call). Allowed on a flow that will get on_flow(CLOSED): one reported UP,
 *  or an outbound flow (right after siptls_connect() / siptls_send_to()).
 *  Returns SIPTLS_OK, SIPTLS_ERR_GONE, SIPTLS_ERR_INVAL (`e` NULL, or an
 *  inbound flow not reported UP yet: it could end without on_flow). */
int siptls_flow_set_user(siptls_engine *e, siptls_flow_id flow, void *user);

/** The pointer set with siptls_flow_set_user() (NULL when none was) into
 *  `*user`. Works until on_flow(CLOSED) of the flow returns, inside it
 *  included. Returns SIPTLS_OK, SIPTLS_ERR_GONE (*user NULL),
 *  SIPTLS_ERR_INVAL (`e` or `user` NULL). */
int siptls_flow_get_user(siptls_engine *e, siptls_flow_id flow, void **user);

/* ---- addresses ------------------------------------------------------------- */

/** A flow's addresses (what Via received / rport need), about 270 bytes
 *  instead of siptls_flow_info's 3.6 KB, and no certificate parsing. */
typedef struct siptls_flow_addrs {
    siptls_transport transport;
    int outbound;                     /**< 1 when we opened it */
    socklen_t local_len;              /**< 0 while unknown (an outbound flow not connected yet) */
    socklen_t remote_len;
    struct sockaddr_storage local;    /**< only the first local_len bytes are set */
    struct sockaddr_storage remote;   /**< only the first remote_len bytes are set */
} siptls_flow_addrs;

/** Fill `out` with the flow's transport, direction and addresses (the same
 *  as siptls_flow_get_info() gives). Returns SIPTLS_OK, SIPTLS_ERR_GONE,
 *  SIPTLS_ERR_INVAL (`e` or `out` NULL). */
int siptls_flow_get_addrs(siptls_engine *e, siptls_flow_id flow, siptls_flow_addrs *out);

/* ---- backpressure ---------------------------------------------------------- */

/** The flow's write queue now: messages and bytes waiting to be written
 *  (messages merged into one write count as one; a message partly written
 *  counts whole until its last byte is out). A send is refused with
 *  SIPTLS_ERR_QUEUE_FULL at tls_async_max_postponed_chunks messages or
 *  tls_async_max_queued_bytes bytes. Either out pointer may be NULL.
 *  Returns SIPTLS_OK, SIPTLS_ERR_GONE, SIPTLS_ERR_INVAL (`e` NULL). */
int siptls_flow_queue_depth(siptls_engine *e, siptls_flow_id flow, unsigned *msgs, size_t *bytes);

/** Called on the loop when a flow that refused a send of the host's
 *  (SIPTLS_ERR_QUEUE_FULL, from siptls_send* or an async send) or whose
 *  queue reached queue_high_water % of a limit has written its queue down
 *  to queue_low_water % of both limits. Once per such episode; never for a
 *  flow that is closing or closed (on_flow(CLOSED) tells that); never
 *  inside a siptls_* call of the host. `user` is the engine's. It may send
 *  and close as any callback may. */
typedef void (*siptls_writable_fn)(siptls_engine *e, siptls_flow_id flow, void *user);

/** Set (or, with NULL, clear) the engine's on_writable callback. A setter,
 *  not a siptls_callbacks field: siptls_engine_new() copies a
 *  siptls_callbacks of the size the host was compiled with, so a new field
 *  would break hosts built against an older header. Returns SIPTLS_OK or
 *  SIPTLS_ERR_INVAL (`e` NULL). */
int siptls_engine_set_writable_cb(siptls_engine *e, siptls_writable_fn fn);

/* ---- the peer's certificate ------------------------------------------------- */

/** The leaf certificate the peer presented, parsed. Text fields are
 *  NUL-terminated. */
typedef struct siptls_peer_cert {
    char serial[72];                  /**< hex, upper case, no separators ("1F0A..."); up to
                                           32 octets */
    int64_t not_before;               /**< seconds since 1970-01-01 UTC */
    int64_t not_after;
    char not_before_text[24];         /**< "2024-05-01T12:00:00Z" */
    char not_after_text[24];
    uint8_t sha256[32];               /**< SHA-256 of the DER */
    char sha256_text[96];             /**< "AB:CD:...": 32 hex pairs joined by ':' */
    size_t der_len;                   /**< bytes of the DER encoding */
    size_t pem_len;                   /**< bytes of the PEM text (siptls_flow_peer_cert_export),
                                           without its NUL */
    unsigned n_sans;                  /**< subjectAltNames siptls_flow_peer_sans() gives */
} siptls_peer_cert;

/** Fill `out` about the peer's certificate. Returns SIPTLS_OK,
 *  SIPTLS_ERR_GONE, SIPTLS_ERR_INVAL (`e` or `out` NULL), SIPTLS_AGAIN (the
 *  handshake has not completed: ask after on_flow(UP)), SIPTLS_ERR_NO_CERT
 *  (the peer presented none: a client of a server with verify_cert=0 or
 *  require_cert=0), SIPTLS_ERR_CERT_NOT_KEPT (a resumed flow, with a
 *  wolfSSL that keeps no certificate in its sessions: the bundled one;
 *  the peer presented one in the full handshake the session came from,
 *  and siptls_flow_get_info()'s peer_verified / trusted still tell that
 *  handshake's verdict), SIPTLS_ERR_NOMEM. With Debian 12's wolfSSL
 *  (SESSION_CERTS) a resumed flow gives the certificate of that full
 *  handshake; siptls_version_text() says which. */
int siptls_flow_peer_cert(siptls_engine *e, siptls_flow_id flow, siptls_peer_cert *out);

typedef enum siptls_cert_format {
    SIPTLS_CERT_DER = 0,              /**< the DER bytes */
    SIPTLS_CERT_PEM = 1               /**< "-----BEGIN CERTIFICATE-----\n" base64 in lines of 64
                                           "-----END CERTIFICATE-----\n", NUL-terminated */
} siptls_cert_format;

/** Copy the peer's certificate into `buf` (`cap` bytes; the PEM form
 *  needs room for its NUL too). `*len` (may be NULL) gets the length
 *  (PEM: without the NUL) also when `buf` is too small, so a first call with
 *  `buf` NULL and `cap` 0 asks for the size. Returns SIPTLS_OK,
 *  SIPTLS_ERR_BUFFER_SMALL (nothing written), the statuses of
 *  siptls_flow_peer_cert(), SIPTLS_ERR_INVAL (bad `fmt`). */
int siptls_flow_peer_cert_export(siptls_engine *e, siptls_flow_id flow, siptls_cert_format fmt,
                                 uint8_t *buf, size_t cap, size_t *len);

/** Call `fn` for each subjectAltName of the peer's certificate, none left
 *  out and none cut short: "DNS:x", "URI:x", "IP:x" (IPv4 dotted, IPv6
 *  RFC 5952 text), "email:x"; other name types (otherName, directoryName,
 *  ...) are skipped. The order is the certificate parser's, not
 *  necessarily the certificate's. `name` is borrowed for the call,
 *  NUL-terminated, `len` bytes; bytes outside printable ASCII are shown as
 *  '?'. `fn` returns 0 to go on, non-zero to stop. `fn` runs inside this
 *  call and must not close the flow or free the engine. Returns SIPTLS_OK
 *  (also when fn stopped early), SIPTLS_ERR_INVAL (`fn` NULL) or the
 *  statuses of siptls_flow_peer_cert(). */
int siptls_flow_peer_sans(siptls_engine *e, siptls_flow_id flow,
                          int (*fn)(const char *name, size_t len, void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
