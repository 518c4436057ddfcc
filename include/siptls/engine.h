/* siptls — the engine: listeners, flows and security contexts on the host's
 * libev loop.
 *
 * The library never blocks, never sleeps and never starts threads. One
 * engine = one libev loop = one thread at a time: an engine may be created
 * on one thread and run on another; nothing in the library depends on the
 * thread that created it. A host that wants several cores runs one engine
 * per thread (with reuse_port, listeners of this process share ports with
 * SO_REUSEPORT; another process never can). The calls of siptls/threads.h
 * (post a function, send a copy) are the ones any thread may make.
 *
 * Lifecycle rules:
 *  1. A host holds flow ids (64-bit, never reused, never 0), not pointers.
 *     Every call that takes an id returns SIPTLS_ERR_GONE once that flow is
 *     closed.
 *  2. on_message gets a borrowed message: the bytes are valid during the
 *     call only (zero copy); copy what you keep.
 *  3. Inside any callback the host may call siptls_send*, siptls_close and
 *     siptls_flow_get_info; the library frees a flow only after its callbacks
 *     have returned (deferred close). siptls_engine_free() must not be
 *     called from a callback.
 *  4. A call that fails never invokes a callback for that call.
 *  5. on_flow(CLOSED) is delivered exactly once for every flow that was
 *     reported UP, and for every outbound flow the host asked for (even
 *     when it never came up), with the reason as a status. */
#ifndef SIPTLS_ENGINE_H
#define SIPTLS_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "siptls/config.h"
#include "siptls/status.h"
#include "siptls/uri.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;
typedef struct siptls_engine siptls_engine;
typedef uint64_t siptls_flow_id;

typedef enum siptls_flow_state {
    SIPTLS_FLOW_UP = 1,     /**< handshake done (and peer identity checked) */
    SIPTLS_FLOW_CLOSED = 2, /**< gone; `reason` says why (a status) */
    /* --- issue 12: DTLS Connection ID ----------------------------------- */
    SIPTLS_FLOW_MOVED = 3   /**< an UP DTLS flow's peer now sends from another address (DTLS
                                 1.3 Connection ID, RFC 9146 §6: its newest authenticated
                                 record came from there); the flow id, session and queue are
                                 the same, replies and keepalives go to the new address,
                                 siptls_flow_get_info() shows it. `reason` is SIPTLS_OK. Once
                                 per move; never before UP nor after CLOSED */
} siptls_flow_state;

typedef enum siptls_keepalive_kind {
    SIPTLS_KEEPALIVE_PING = 1, /**< CRLFCRLF received (answered if tls_crlf_pingpong) */
    SIPTLS_KEEPALIVE_PONG = 2  /**< CRLF received (answer to our ping) */
} siptls_keepalive_kind;

typedef enum siptls_log_level {
    SIPTLS_LOG_ERR = 0,
    SIPTLS_LOG_WARN = 1,
    SIPTLS_LOG_INFO = 2,
    SIPTLS_LOG_DEBUG = 3
} siptls_log_level;

/** A whole SIP message, borrowed for the duration of on_message. */
typedef struct siptls_msg {
    const uint8_t *data;  /**< start line .. end of body */
    size_t len;
    size_t header_len;    /**< up to and including the empty line */
    const uint8_t *body;
    size_t body_len;
} siptls_msg;

typedef struct siptls_callbacks {
    /** A whole SIP message arrived on `flow`. May be NULL (messages dropped). */
    void (*on_message)(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user);
    /** A flow came up or closed. `reason` is SIPTLS_OK for UP. May be NULL. */
    void (*on_flow)(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                    void *user);
    /** A keepalive arrived (RFC 5626). May be NULL. */
    void (*on_keepalive)(siptls_engine *e, siptls_flow_id flow, siptls_keepalive_kind kind,
                         void *user);
    /** One log line (no trailing newline), for lines at or below the
     *  configured log_level (filtered before formatting). NULL = stderr. */
    void (*log)(siptls_log_level level, const char *text, void *user);
} siptls_callbacks;

#define SIPTLS_FLOW_MAX_SANS 16

/** What the host may know about a flow. Strings are NUL-terminated, "" when
 *  unknown. Filled by siptls_flow_get_info(). */
typedef struct siptls_flow_info {
    siptls_flow_id id;
    siptls_transport transport;
    int outbound;                     /**< 1 when we opened it */
    int up;                           /**< 1 once the handshake completed */
    struct sockaddr_storage local;
    struct sockaddr_storage remote;
    char local_text[64];              /**< "127.0.0.1:5061", "[::1]:5061" */
    char remote_text[64];
    char tls_version[16];             /**< "TLSv1.3", "DTLSv1.2" */
    char cipher[64];
    int resumed;                      /**< 1 when the session was resumed */
    char sni[256];                    /**< server: the name the client asked for; client: what we sent */
    char domain[128];                 /**< the TLS domain (server_domain/client_domain) used */
    int peer_cert;                    /**< 1 when the peer presented a certificate */
    int peer_verified;                /**< 1 when it verified against our CAs */
    char peer_subject[256];
    char peer_issuer[256];
    char peer_sans[SIPTLS_FLOW_MAX_SANS][128]; /**< "DNS:x", "URI:sip:x", "IP:x" */
    unsigned n_peer_sans;
    int trusted;                      /**< 1 when peer_verified and its identity is a trusted_domain */
    char trusted_domain[128];
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
} siptls_flow_info;

/** Per-engine counters (monotonic unless marked "now"). */
typedef struct siptls_stats {
    uint64_t flows_open;              /**< now */
    uint64_t tls_flows_open;          /**< now */
    uint64_t dtls_flows_open;         /**< now */
    uint64_t flows_accepted, flows_connected, flows_closed;
    uint64_t handshakes_ok, handshakes_resumed;
    uint64_t handshakes_failed;       /**< all reasons */
    uint64_t hs_fail_timeout, hs_fail_verify, hs_fail_name, hs_fail_no_cert, hs_fail_tls, hs_fail_io;
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
    uint64_t pings_in, pongs_in, pings_out, pongs_out;
    uint64_t drop_framing;            /**< TLS: flows closed for a framing error; DTLS: records dropped */
    uint64_t drop_chunks, drop_too_big, drop_msg_timeout;
    uint64_t drop_queue_full;         /**< sends refused: write queue full */
    uint64_t drop_send_timeout, drop_idle, drop_keepalive, drop_limit;
    uint64_t drop_io;                 /**< resets and socket errors */
    uint64_t drop_resources;          /**< connections shed or dropped for want of a file
                                           descriptor or memory (open-file limit) */
    uint64_t dtls_cookies_sent, dtls_cookie_bad, dtls_rate_limited;
    uint64_t dtls_bad_records, dtls_reasm_lost, dtls_stun, dtls_junk;
    uint64_t reloads;
} siptls_stats;

/** Create an engine on `loop` (not owned). `cfg` is copied (the caller may
 *  free it after). `cb` is copied; `user` is passed to every callback.
 *  Loads certificates of every domain and creates the listeners of
 *  cfg->listen. Returns SIPTLS_OK, SIPTLS_ERR_NOMEM, SIPTLS_ERR_INVAL
 *  (also: queue_low_water not below queue_high_water; logged),
 *  SIPTLS_ERR_CERT (a file could not be loaded: logged with the path),
 *  SIPTLS_ERR_URI_*, SIPTLS_ERR_BIND. On error *out is NULL and nothing is
 *  left behind. */
int siptls_engine_new(siptls_engine **out, struct ev_loop *loop, const siptls_config *cfg,
                      const siptls_callbacks *cb, void *user);

/** Load everything siptls_engine_new() would load for `cfg`, short of
 *  creating sockets and without resolving names: for TLS, and for DTLS
 *  when a dtls: listener is configured, the certificate, private key (and
 *  that it belongs to the certificate), CA list / directory and CRL of
 *  every domain, the ticket key file, the methods, cipher lists and
 *  groups; and that the default server domain has a certificate when
 *  there is a listener. Every line the engine would log about it (errors
 *  and warnings, filtered by cfg->log_level) goes to cb->log (`cb` or
 *  cb->log may be NULL: then nothing is logged); `err` (may be NULL) gets
 *  the first error in err->msg ("domain 'sbc': cannot load certificate
 *  '/etc/siptls/sbc.pem': No such file or directory"; file "" and line 0:
 *  a loaded configuration does not remember its lines). Reads files,
 *  never blocks on the network, creates no engine; any thread. Returns
 *  SIPTLS_OK, SIPTLS_ERR_CERT (a file, a key or a missing server
 *  certificate), SIPTLS_ERR_INVAL (NULL `cfg`, a tls_method / cipher list
 *  / curve this wolfSSL cannot use, queue_low_water not below
 *  queue_high_water), a SIPTLS_ERR_URI_* status (a listen
 *  URI edited into the struct by hand) or SIPTLS_ERR_NOMEM. */
int siptls_config_check(const siptls_config *cfg, siptls_config_error *err,
                        const siptls_callbacks *cb, void *user);

/** Stop listeners, close every flow at once (no close_notify, on_flow
 *  CLOSED with SIPTLS_ERR_SHUTDOWN is delivered), release everything.
 *  NULL is accepted. Not from inside a callback. */
void siptls_engine_free(siptls_engine *e);

/** Graceful stop: stop listening, send close_notify on every flow and close
 *  them (on_flow CLOSED with SIPTLS_ERR_SHUTDOWN). The engine stays usable
 *  for siptls_engine_free(). Returns SIPTLS_OK. */
int siptls_engine_shutdown(siptls_engine *e);

/** Add a listener for `uri` ("tls:0.0.0.0:5061", "dtls:[::1]:0"). Port 0
 *  binds an ephemeral port (read it back with siptls_listener_port).
 *  SIPTLS_ERR_BIND (logged with the URI and the system's reason) when the
 *  port is taken: by another process always, by another engine of this
 *  process unless both have reuse_port set.
 *  Returns the listener index (>= 0) or SIPTLS_ERR_URI_*, SIPTLS_ERR_BIND,
 *  SIPTLS_ERR_RESOLVE, SIPTLS_ERR_NOMEM. */
int siptls_listen(siptls_engine *e, const char *uri);

/** Bound port of listener `index` (host order), 0 when no such listener. */
unsigned siptls_listener_port(const siptls_engine *e, int index);

/** Number of listeners. */
int siptls_listener_count(const siptls_engine *e);

/** Queue `len` bytes (one whole SIP message, or a keepalive) on `flow`. The
 *  bytes are copied. Returns SIPTLS_OK, SIPTLS_ERR_GONE, SIPTLS_ERR_INVAL
 *  (len 0 or over max_msg_size), SIPTLS_ERR_QUEUE_FULL (the flow's write
 *  queue is at tls_async_max_postponed_chunks / _queued_bytes: the message
 *  is not queued, the flow stays), SIPTLS_ERR_NOMEM. Never calls a callback
 *  synchronously. */
int siptls_send(siptls_engine *e, siptls_flow_id flow, const uint8_t *buf, size_t len);

/** Send to `uri` ("tls:sip.example.org:5061", "dtls:192.0.2.1", or a SIP
 *  URI "sips:carrier.example.net" located by RFC 3263: siptls/target.h):
 *  reuse an open flow to that peer or open one (the message waits in its
 *  queue until the handshake completes). `*flow` (may be NULL) receives
 *  the id. The host name of the URI is the SIP domain checked against the
 *  server certificate (RFC 5922) and sent as SNI. A name is resolved on
 *  the loop without blocking (siptls/target.h): the call returns at once,
 *  and a name that does not resolve closes the flow later with
 *  on_flow(CLOSED, SIPTLS_ERR_RESOLVE or SIPTLS_ERR_RESOLVE_TIMEOUT).
 *  Returns SIPTLS_OK, any status of siptls_send(), SIPTLS_ERR_URI_*
 *  (SIPTLS_ERR_URI_TRANSPORT: a SIP URI's transport siptls does not
 *  offer), SIPTLS_ERR_RESOLVE (the resolver cannot start: logged),
 *  SIPTLS_ERR_CONNECT, SIPTLS_ERR_LIMIT, SIPTLS_ERR_CERT,
 *  SIPTLS_ERR_SHUTDOWN (the engine is being freed). */
int siptls_send_to(siptls_engine *e, const char *uri, const uint8_t *buf, size_t len,
                   siptls_flow_id *flow);

/** Open (or find) a flow to `uri` without sending. Same statuses as
 *  siptls_send_to(). */
int siptls_connect(siptls_engine *e, const char *uri, siptls_flow_id *flow);

/** Always open a new flow to `uri`, even when one to that peer is open
 *  (connection pools, load tools). Same statuses as siptls_send_to(). A
 *  later siptls_send_to() may pick any open flow to that peer. */
int siptls_open(siptls_engine *e, const char *uri, siptls_flow_id *flow);

/** Close `flow` gracefully (close_notify after queued messages are
 *  written, bounded by tls_send_timeout). on_flow CLOSED with
 *  SIPTLS_ERR_CLOSED_LOCAL follows from the loop. Returns SIPTLS_OK or
 *  SIPTLS_ERR_GONE. */
int siptls_close(siptls_engine *e, siptls_flow_id flow);

/** Fill `info` about `flow`. Returns SIPTLS_OK or SIPTLS_ERR_GONE. */
int siptls_flow_get_info(siptls_engine *e, siptls_flow_id flow, siptls_flow_info *info);

/** Find an open flow of `transport` whose remote address is `addr`.
 *  Returns SIPTLS_OK with *flow set, or SIPTLS_ERR_GONE. */
int siptls_flow_lookup(siptls_engine *e, siptls_transport transport, const struct sockaddr *addr,
                       socklen_t addrlen, siptls_flow_id *flow);

/** Turn our CRLFCRLF keepalive pings on (`interval_s` > 0) or off (0) for
 *  one flow (RFC 5626 §4.4.1); a missing pong within keepalive_timeout
 *  closes the flow with SIPTLS_ERR_KEEPALIVE_TIMEOUT. Returns SIPTLS_OK or
 *  SIPTLS_ERR_GONE. */
int siptls_flow_keepalive(siptls_engine *e, siptls_flow_id flow, unsigned interval_s);

/** Copy the engine's counters into `st`. */
void siptls_engine_stats(const siptls_engine *e, siptls_stats *st);

/** Re-read every certificate, key, CA and CRL file. New handshakes use the
 *  new files; established flows go on. On error the old contexts stay and
 *  the error is logged. Returns SIPTLS_OK or SIPTLS_ERR_CERT. */
int siptls_engine_reload_certs(siptls_engine *e);

/** Call at the end of every thread that ran an engine (or any TLS/DTLS
 *  work through siptls), after its engines are freed: it releases the
 *  per-thread caches of wolfSSL (the FP_ECC point cache of Debian's build),
 *  which would otherwise leak when the thread exits. The main thread may
 *  skip it at process exit. Never fails; safe to call more than once. */
void siptls_thread_cleanup(void);

/** The libev loop the engine runs on. */
struct ev_loop *siptls_engine_loop(const siptls_engine *e);

/** Version and built-in features, e.g. "siptls 0.1.0 (wolfSSL 5.5.4; TLSv1.2
 *  TLSv1.3 DTLSv1.2; ...)". Static string. */
const char *siptls_version_text(void);

/* ---- reloading the TLS domains ---------------------------------------- */

/** Reload the TLS domains from `cfg` (read, not kept: the caller may free
 *  it after): server_domain / client_domain and every per-domain setting
 *  (certificates, keys, CA lists and directories, CRLs, ciphers, methods,
 *  groups, verify_cert / require_cert, match lists), and the security
 *  section: trusted_domain, tls_keylog_file, tls_session_cache,
 *  tls_session_tickets, tls_ticket_key_file. Files are read again even
 *  when their names did not change.
 *
 *  All or nothing: everything new is built first (every file loaded, every
 *  domain checked, the default server domain must have a certificate when
 *  a listener needs one); on any failure nothing changes, the reason is
 *  logged (the domain and file, as at creation, then "reload refused") and
 *  the status returned. On success new handshakes use the new domains at
 *  once; flows already open (and handshakes under way) keep the domains,
 *  certificates, CAs and trusted_domain list they started with until they
 *  close (siptls_flow_get_info shows those), and siptls_send_to() may
 *  still reuse them.
 *
 *  Not applied: listeners stay as they are (same sockets, same addresses;
 *  listen URIs of `cfg` are ignored), and every other parameter (limits,
 *  timeouts, keepalive, DTLS, log_level, ...) keeps the value the engine
 *  was created with; each one that differs in `cfg` is named in a WARN
 *  line. Counts in stats.reloads. Calls no callback; may be called from
 *  inside one (what running handshakes use stays alive). Returns SIPTLS_OK, SIPTLS_ERR_INVAL (NULL argument, a tls_method /
 *  cipher list / curve this wolfSSL cannot use, no default client domain),
 *  SIPTLS_ERR_CERT (a file, a key that does not match, a missing server
 *  certificate) or SIPTLS_ERR_NOMEM. */
int siptls_engine_reload(siptls_engine *e, const siptls_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
