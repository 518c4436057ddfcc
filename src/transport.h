/* siptls internal — the contract between the engine and a transport.
 *
 * A transport (tls/, dtls/) includes this header and nothing else of
 * src/'s internals (CI checks it). It sees a flow and a listener as
 * handles and drives them with the verbs below; it never touches the
 * engine's structures, never asks the engine to choose by transport name,
 * and the engine never asks "TLS or DTLS?": it reads the transport's
 * profile (what framer its bytes need, its limits, its socket type) and
 * calls its ops table. libev is the engine's business: a transport asks
 * for readiness (siptls__flow_want) and for a timer of its own
 * (next_timeout) and is called back.
 *
 * Everything here runs on the thread that runs the engine's loop. */
#ifndef SIPTLS_TRANSPORT_H
#define SIPTLS_TRANSPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "siptls/config.h"
#include "siptls/engine.h"
#include "siptls/sipmsg.h"
/* the message layer's datagram splitter (how a message is cut into DTLS
 * records) is part of what a datagram transport may use */
#include "sipmsg/splitter_dgram.h"

struct WOLFSSL;
typedef struct siptls__flow siptls__flow;         /* the engine's; a handle here */
typedef struct siptls__listener siptls__listener; /* the engine's; a handle here */

#define SIPTLS__IO_READ 1
#define SIPTLS__IO_WRITE 2

/* ---- what a transport declares ---------------------------------------- */

typedef enum siptls__framing {
    SIPTLS__FRAMING_STREAM = 1, /**< bytes of a stream: stream framer, chunk = wakeup */
    SIPTLS__FRAMING_DGRAM = 2   /**< records: datagram framer with reassembly */
} siptls__framing;

/** The per-flow limits a transport takes from the configuration. */
typedef struct siptls__flow_limits {
    unsigned max_flows;            /**< open flows of this transport per engine */
    uint64_t handshake_timeout_ms; /**< from the first answer to UP */
    uint64_t idle_ms;              /**< nothing received (and sent, see below): closed; 0 = never */
    int idle_counts_sends;         /**< 1: writing is activity too */
    size_t max_chunks;             /**< framer: chunks an incomplete message may span */
    size_t chunk_full_bytes;       /**< framer: a chunk this large is progress */
    uint64_t max_msg_time_ms;      /**< framer: time to complete a started message */
} siptls__flow_limits;

typedef enum siptls__phase {
    SIPTLS__PHASE_RESOLVING = 0,  /**< outbound, its name is being resolved: no address, no
                                       socket, no transport state yet (only free/info are called) */
    SIPTLS__PHASE_CONNECTING = 1, /**< outbound, not heard from the peer yet */
    SIPTLS__PHASE_HANDSHAKE = 2,
    SIPTLS__PHASE_UP = 3,
    SIPTLS__PHASE_CLOSING = 4, /**< graceful close: flushing, then close_notify */
    SIPTLS__PHASE_CLOSED = 5   /**< unlinked; freed when no callback runs */
} siptls__phase;

/** The one transport interface. Every function is asynchronous: it never
 *  blocks. Failures of a flow go to siptls__flow_fail(). */
typedef struct siptls__transport_ops {
    siptls_transport kind;
    const char *name;
    int socktype; /**< SOCK_STREAM / SOCK_DGRAM: the listener socket */
    siptls__framing framing;
    int dtls;          /**< its security contexts are DTLS ones */
    size_t stats_open; /**< offsetof(siptls_stats, its "flows open now" counter) */
    /** The transport's per-flow limits from `cfg`. */
    void (*limits)(const siptls_config *cfg, siptls__flow_limits *out);
    /** The engine bound `fd` (siptls__listener_fd) to the listener's
     *  address: make it a listener of this transport. Returns SIPTLS_OK or a
     *  status (the engine then closes the fd). */
    int (*listen)(siptls__listener *l);
    /** The listener's fd is readable: accept connections / read datagrams. */
    void (*listener_io)(siptls__listener *l);
    /** Release what listen() made; the engine closes the fd afterwards
     *  unless the transport took it (siptls__listener_take_fd). */
    void (*listener_close)(siptls__listener *l);
    /** Start an outbound flow towards siptls__flow_remote(); OK or a status
     *  (the engine then tries the next address or fails the flow quietly). */
    int (*connect)(siptls__flow *f);
    /** The flow's fd is ready (`revents` SIPTLS__IO_*). */
    void (*io)(siptls__flow *f, int revents);
    /** Messages are queued: write what the transport can now. */
    void (*flush)(siptls__flow *f);
    /** Earliest transport timer (DTLS retransmission), absolute ms; 0: none. */
    uint64_t (*next_timeout)(siptls__flow *f);
    /** That timer is due. */
    void (*on_timeout)(siptls__flow *f);
    /** Send close_notify (best effort, non-blocking). */
    void (*shutdown)(siptls__flow *f);
    /** Free the transport's part of the flow (socket, WOLFSSL). */
    void (*free)(siptls__flow *f);
    /** Fill the security part of a flow's info (TLS version, cipher, peer). */
    void (*info)(siptls__flow *f, siptls_flow_info *info);
    /** The flow's WOLFSSL once its handshake has completed (the engine
     *  reads the peer's certificate from it), NULL before. */
    struct WOLFSSL *(*session)(siptls__flow *f);
    /** The end of an engine wakeup (after the deferred work of every
     *  callback, before the loop waits again): send what the transport
     *  batched for the engine (DTLS: the datagrams of this wakeup, one
     *  sendmmsg per socket). Returns 0, or an absolute ms at which to be
     *  called again (a socket buffer was full). NULL: nothing to do. */
    uint64_t (*wakeup_end)(siptls_engine *e);
} siptls__transport_ops;

/* The transports (defined in tls/ and dtls/). */
extern const siptls__transport_ops siptls__tls_ops;
extern const siptls__transport_ops siptls__dtls_ops;

/* ---- the engine ------------------------------------------------------- */

/** Monotonic ms of the engine's loop (ev_now). */
uint64_t siptls__engine_now(const siptls_engine *e);
const siptls_config *siptls__engine_config(const siptls_engine *e);
/** A slot per transport for state shared by all its listeners and flows
 *  of one engine (DTLS: receive buffers); the engine stores, never frees. */
void **siptls__engine_tp_shared(siptls_engine *e, siptls_transport t);
/** Make sure a wakeup ends (wakeup_end runs) before the loop next waits,
 *  also when called from a host call outside any callback. */
void siptls__engine_kick(siptls_engine *e);

void siptls__log(siptls_engine *e, siptls_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** A WARN line rate-limited per engine and `slot` (listener problems such
 *  as the open-file limit): one per 10 s, then "N more". */
typedef struct siptls__ratelog {
    uint64_t since_ms;
    unsigned suppressed;
} siptls__ratelog;
void siptls__log_limited(siptls_engine *e, siptls__ratelog *slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Events a transport reports; one place (siptls__count) maps them to the
 *  engine's counters. */
typedef enum siptls__event {
    SIPTLS__EV_DTLS_COOKIE_SENT,  /**< a HelloVerifyRequest left */
    SIPTLS__EV_DTLS_COOKIE_BAD,   /**< a ClientHello's cookie failed */
    SIPTLS__EV_DTLS_RATE_LIMITED, /**< a cookie-checked handshake refused */
    SIPTLS__EV_DTLS_BAD_RECORD,   /**< records dropped silently */
    SIPTLS__EV_DTLS_STUN,         /**< a STUN Binding request answered */
    SIPTLS__EV_DTLS_JUNK,         /**< a datagram neither DTLS nor STUN */
    SIPTLS__EV_DROP_RESOURCES,    /**< a connection shed: no descriptor or memory */
    SIPTLS__EV_DROP_TOO_BIG,      /**< an outgoing message that cannot be sent */
} siptls__event;
void siptls__count(siptls_engine *e, siptls__event ev, uint64_t n);

/** A handshake that failed with `reason` outside any flow the host sees
 *  (a restarted DTLS peer's second handshake): counted as a failed
 *  handshake exactly as a flow's would be. */
void siptls__count_handshake_failure(siptls_engine *e, int reason);

/* ---- listeners ---------------------------------------------------------- */

siptls_engine *siptls__listener_engine(const siptls__listener *l);
int siptls__listener_index(const siptls__listener *l);
/** The bound socket (the engine made and bound it; -1 once closed). */
int siptls__listener_fd(const siptls__listener *l);
/** The transport keeps the socket beyond listener_close (DTLS sessions
 *  send their close_notify through it): the engine will not close it. */
void siptls__listener_take_fd(siptls__listener *l);
/** The bound address (port filled in) and the listen URI's host kind. */
const struct sockaddr_storage *siptls__listener_addr(const siptls__listener *l, socklen_t *len);
void *siptls__listener_tp(const siptls__listener *l);
void siptls__listener_set_tp(siptls__listener *l, void *tp);
/** A server-side WOLFSSL for a connection to local address `local` (the
 *  security context picks the domain); NULL on out of memory or when that
 *  domain has no certificate. */
struct WOLFSSL *siptls__listener_server_ssl(siptls__listener *l, const struct sockaddr *local);
/** Changes each time a reload (siptls_engine_reload, _reload_certs)
 *  replaces the engine's security contexts: a WOLFSSL object a transport
 *  keeps across datagrams (the DTLS listener's cookie object) made under
 *  another value belongs to the old configuration and must be made anew. */
unsigned siptls__listener_sec_gen(siptls__listener *l);

/** Check the peer of a server-side handshake that has no flow yet (a
 *  restarted DTLS peer's second handshake): require_cert, verification.
 *  SIPTLS_OK or the reason. */
int siptls__listener_check_peer(siptls__listener *l, struct WOLFSSL *ssl);

/* ---- flows: identity and state ----------------------------------------- */

siptls_engine *siptls__flow_engine(const siptls__flow *f);
siptls_flow_id siptls__flow_id(const siptls__flow *f);
siptls__phase siptls__flow_phase(const siptls__flow *f);
/** 1 once the flow was reported UP (it may be closing now). */
int siptls__flow_was_up(const siptls__flow *f);
/** 0 once the host closed the flow (siptls_close, from a callback): deliver
 *  nothing more. */
int siptls__flow_wants_input(const siptls__flow *f);
int siptls__flow_outbound(const siptls__flow *f);
/** Outbound: the SIP domain to verify and send as SNI (or the IP literal). */
const char *siptls__flow_sip_domain(const siptls__flow *f);
const struct sockaddr *siptls__flow_remote(const siptls__flow *f, socklen_t *len);
void siptls__flow_set_local(siptls__flow *f, const struct sockaddr *sa, socklen_t len);
/** The peer of an UP flow moved (DTLS Connection ID): the flow's remote
 *  address becomes `sa` (the engine's by-address table follows; the
 *  storage siptls__flow_remote() returns stays where it is), logged. The
 *  host is told by siptls__flow_report_moved(), once the transport has
 *  updated its own tables. */
void siptls__flow_set_remote(siptls__flow *f, const struct sockaddr *sa, socklen_t len);
/** on_flow(SIPTLS_FLOW_MOVED). Returns 0, or -1 when the host closed the
 *  flow (or shut the engine down) from that callback: then the transport
 *  state may be gone, as after siptls__flow_rx_record(). */
int siptls__flow_report_moved(siptls__flow *f);
/** Inbound: the listener it came from (NULL for outbound flows). */
siptls__listener *siptls__flow_listener(const siptls__flow *f);
void *siptls__flow_tp(const siptls__flow *f);
void siptls__flow_set_tp(siptls__flow *f, void *tp);
/** "tls flow 7 [::1]:5061" for log lines (a static buffer per call site is
 *  not needed: `buf` of 96 bytes). */
const char *siptls__flow_name(const siptls__flow *f, char *buf, size_t len);

/* ---- flows: lifecycle ---------------------------------------------------- */

/** Create an inbound flow (an accepted TCP connection `fd`, or a DTLS
 *  session whose cookie came back, fd -1) in HANDSHAKE. NULL at the
 *  connection limit (counted, logged) or out of memory; the caller then
 *  closes its socket. */
siptls__flow *siptls__flow_new_inbound(siptls__listener *l, int fd, const struct sockaddr *remote,
                                       socklen_t remote_len);
/** A non-blocking, close-on-exec socket of `type` (SOCK_STREAM /
 *  SOCK_DGRAM) for an outbound flow, of its remote address's family,
 *  bound to the local address the host asked for (if it did). Returns the
 *  fd, or -1 (logged when the bind failed). */
int siptls__flow_socket(siptls__flow *f, int type);
/** Give an outbound flow the socket its connect() made, with interest
 *  `mask`. SIPTLS_OK or SIPTLS_ERR_NOMEM (the socket stays the caller's). */
int siptls__flow_attach_fd(siptls__flow *f, int fd, int mask);
int siptls__flow_fd(const siptls__flow *f);
/** Close the flow's socket `fd` the way a refused connection must be: an
 *  inbound flow that never came up is half-closed and read until its peer
 *  closes (bounded: src/linger.c), so that our alert reaches it; any other
 *  socket is closed at once. */
void siptls__flow_close_fd(siptls__flow *f, int fd);
/** Read/write interest on the flow's fd (no-op without one). */
void siptls__flow_want(siptls__flow *f, int mask);
/** The peer answered (TCP connected, first DTLS datagram): CONNECTING ->
 *  HANDSHAKE, the handshake timer starts. */
void siptls__flow_handshake_begin(siptls__flow *f);
/** The TLS/DTLS handshake of `ssl` completed: check the peer (RFC 5922
 *  identity, client certificates), log, and report the flow UP (or fail
 *  it). `resumed`: an abbreviated handshake. Returns SIPTLS_OK (the flow
 *  may have been closed by the host from on_flow: check the phase) or the
 *  failure (the flow is failed). */
int siptls__flow_handshake_done(siptls__flow *f, struct WOLFSSL *ssl, int resumed);
/** The handshake of `ssl` failed with `reason`: the flow counts the
 *  failure against the TLS domain the handshake had reached (an inbound
 *  flow's server domain, after SNI), then fails as siptls__flow_fail(f,
 *  reason, 0). */
void siptls__flow_handshake_failed(siptls__flow *f, struct WOLFSSL *ssl, int reason);
/** Fatal for the flow: close with `reason`; `graceful` writes the queue
 *  and sends close_notify first (UP flows only). Safe to call twice. An
 *  outbound flow that has not heard from its address moves on to the next
 *  address the name resolved to instead (same id). */
void siptls__flow_fail(siptls__flow *f, int reason, int graceful);
/** The transport's timer (next_timeout) moved: recompute the flow timer. */
void siptls__flow_rearm(siptls__flow *f);
/** Bytes or a keepalive arrived: the flow is alive (idle, keepalive). */
void siptls__flow_touch(siptls__flow *f);
/** A WARN about the flow, rate-limited per flow and `cause` (10 s). */
void siptls__flow_warn(siptls__flow *f, int cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- flows: receiving ------------------------------------------------- */

/** Stream transports read straight into the framer: an area of at least
 *  `want` bytes when the message limits allow (*avail 0 when the framer
 *  holds all it may: call siptls__flow_rx_deliver to make room). */
void siptls__flow_rx_area(siptls__flow *f, size_t want, uint8_t **p, size_t *avail);
/** `n` bytes were written into the area. */
void siptls__flow_rx_commit(siptls__flow *f, size_t n);
/** Deliver every event the framer has (messages, pings, pongs); with
 *  `end_of_wakeup`, first mark the end of this wakeup's chunk (the chunk
 *  limit counts wakeups). A framing error closes the flow (counted,
 *  logged). Returns 0, or -1 when the flow must not be read further (closed,
 *  or closed by the host from a callback). */
int siptls__flow_rx_deliver(siptls__flow *f, int end_of_wakeup);
/** Datagram transports: one decrypted record (`seq` its sequence number,
 *  or SIPTLS_DGRAM_SEQ_UNKNOWN); delivers what completes. A malformed
 *  record is dropped and counted, the flow stays. Returns as rx_deliver. */
int siptls__flow_rx_record(siptls__flow *f, const uint8_t *p, size_t n, uint64_t seq);

/* ---- flows: sending -------------------------------------------------- */

/** One queued message. `off` is the transport's: non-zero once a write of
 *  it is under way (it must then be retried as is, never merged). */
typedef struct siptls__qmsg {
    struct siptls__qmsg *next;
    size_t len;
    size_t off;
    uint8_t data[];
} siptls__qmsg;

/** Head of the write queue (NULL when empty). */
siptls__qmsg *siptls__flow_qhead(siptls__flow *f);
/** Stream transports: merge the queued messages at the head (none of them
 *  partly written) into one buffer of at most `max` bytes, so one write
 *  and one TLS record carry several messages. */
void siptls__flow_qcoalesce(siptls__flow *f, size_t max);
/** The head message is written completely: drop it, count its bytes. */
void siptls__flow_qpop(siptls__flow *f);
/** The head message cannot be sent at all: drop it (the caller counts). */
void siptls__flow_qdrop(siptls__flow *f);
/** The socket took no more (`blocked` 1) or the queue is empty (0), for
 *  tls_send_timeout. */
void siptls__flow_send_blocked(siptls__flow *f, int blocked);

/* ---- flows: security -------------------------------------------------- */

/** A client WOLFSSL for the outbound flow (client domain, SNI and
 *  verification for its SIP domain), with the session of the previous
 *  flow to the same destination applied when tls_session_cache allows.
 *  `*resuming` (may be NULL) says a session was applied. NULL on out of
 *  memory. */
struct WOLFSSL *siptls__flow_client_ssl(siptls__flow *f, int *resuming);
/** Keep the flow's session for the next flow to the same destination
 *  (call before freeing the WOLFSSL of an outbound flow that was up). */
void siptls__flow_session_save(siptls__flow *f, struct WOLFSSL *ssl);
/** The security fields of the flow's info. */
void siptls__flow_describe(siptls__flow *f, struct WOLFSSL *ssl, siptls_flow_info *info);
/** A wolfSSL error code of a failed handshake as a status (certificate,
 *  name, missing client certificate, I/O, or SIPTLS_ERR_HANDSHAKE). */
int siptls__handshake_status(int wolf_err);
/** A hint for the log line of a failed handshake ("no version in
 *  common"), or "" when wolfSSL's error text says enough. */
const char *siptls__handshake_hint(int wolf_err);
/** The fatal alert the peer ended the flow with, as SIPTLS_ERR_PEER_ALERT(),
 *  or 0 when it sent none: the reason, whatever error wolfSSL reports after
 *  it (TLS and DTLS alike). */
int siptls__peer_alert_status(struct WOLFSSL *ssl);

#endif
