/* siptls internal — the engine as seen by the transports (tls/, dtls/).
 *
 * The engine owns flows: ids, tables, the write queue, the framer, timers
 * (handshake, idle, send, keepalive, message completion), callbacks and
 * stats. A transport owns what is specific to it (sockets, the WOLFSSL
 * object, DTLS demultiplexing) and drives its flows through the ops table
 * below and the siptls__flow_* calls. libev is touched only in engine.c:
 * a transport asks for readiness with siptls__flow_want() /
 * siptls__listener_want() and for a transport timer through next_timeout.
 */
#ifndef SIPTLS_ENGINE_INTERNAL_H
#define SIPTLS_ENGINE_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>

#include "secctx.h"
#include "siptls/config.h"
#include "siptls/engine.h"
#include "siptls/sipmsg.h"
#include "siptls/uri.h"

typedef struct siptls__flow siptls__flow;
typedef struct siptls__listener siptls__listener;

#define SIPTLS__IO_READ 1
#define SIPTLS__IO_WRITE 2

/** The one transport interface. Every function is asynchronous: it never
 *  blocks; it returns SIPTLS_OK, SIPTLS_AGAIN or a negative status. */
typedef struct siptls__transport_ops {
    siptls_transport kind;
    const char *name;
    /** Open the listening socket for l->addr (set l->fd; SO_REUSEPORT). */
    int (*listen)(siptls_engine *e, siptls__listener *l);
    /** The listener's fd is readable: accept connections / read datagrams. */
    void (*listener_io)(siptls_engine *e, siptls__listener *l);
    /** Release what listen() made (the engine closes nothing itself). */
    void (*listener_close)(siptls_engine *e, siptls__listener *l);
    /** Start an outbound flow towards f->remote (f->sip_domain is the name
     *  to verify). Returns OK (started), or a status (flow is then failed). */
    int (*connect)(siptls__flow *f);
    /** The flow's fd is ready (`revents` SIPTLS__IO_*): drive connect,
     *  handshake, reads and writes. Failures go to siptls__flow_fail(). */
    void (*io)(siptls__flow *f, int revents);
    /** New messages were queued: write what the transport can now. */
    void (*flush)(siptls__flow *f);
    /** Earliest transport timer (DTLS retransmission), absolute ms; returns
     *  0 when none. */
    int (*next_timeout)(siptls__flow *f, uint64_t *deadline_ms);
    /** That timer fired. */
    void (*on_timeout)(siptls__flow *f);
    /** Send close_notify (best effort, non-blocking). */
    void (*shutdown)(siptls__flow *f);
    /** Free the transport's part of the flow (socket, WOLFSSL). */
    void (*free)(siptls__flow *f);
    /** Fill the transport/security part of a flow's info. */
    void (*info)(siptls__flow *f, siptls_flow_info *info);
} siptls__transport_ops;

struct siptls__listener {
    siptls_engine *engine;
    const siptls__transport_ops *ops;
    siptls_uri uri;
    struct sockaddr_storage addr;  /**< bound address (port read back) */
    socklen_t addrlen;
    int fd;
    int index;
    void *tp;                      /**< transport-private */
    void *watcher;                 /**< engine-private (ev_io) */
};

typedef struct siptls__addr {
    struct sockaddr_storage ss;
    socklen_t len;
} siptls__addr;

typedef struct siptls__qmsg {
    struct siptls__qmsg *next;
    size_t len;
    size_t off;                    /**< transport's mark: non-zero once a write of it is in progress */
    uint8_t data[];
} siptls__qmsg;

typedef enum siptls__flow_phase {
    SIPTLS__PHASE_CONNECTING = 1,  /**< TCP connect in progress (outbound TLS) */
    SIPTLS__PHASE_HANDSHAKE = 2,
    SIPTLS__PHASE_UP = 3,
    SIPTLS__PHASE_CLOSING = 4,     /**< graceful close: flushing, then close_notify */
    SIPTLS__PHASE_CLOSED = 5       /**< unlinked; waiting to be freed */
} siptls__flow_phase;

struct siptls__flow {
    siptls_engine *engine;
    const siptls__transport_ops *ops;
    siptls_flow_id id;
    siptls__flow_phase phase;
    int outbound;
    int fd;                        /**< own socket, or -1 (DTLS sessions share the listener's) */
    siptls__listener *listener;    /**< inbound: the listener it came from */
    struct sockaddr_storage remote;
    socklen_t remote_len;
    struct sockaddr_storage local;
    socklen_t local_len;
    char *sip_domain;              /**< outbound: host of the URI (RFC 5922 identity, SNI) */
    /* outbound: every address the name resolved to, in resolver order;
     * the flow moves to the next one while it has not heard from the
     * current one (RFC 3263 §4.3) */
    struct siptls__addr *alts;
    uint8_t n_alts, alt_next;
    void *tp;                      /**< transport-private (WOLFSSL etc.) */
    union {
        siptls_stream_framer *stream;
        siptls_dgram_framer *dgram;
    } framer;

    /* write queue */
    siptls__qmsg *q_head, *q_tail;
    unsigned q_count;
    size_t q_bytes;
    uint64_t send_blocked_since;   /**< ms; 0 when the queue is moving */

    /* timers (absolute ms, 0 = off) */
    uint64_t created_ms;
    uint64_t last_activity_ms;
    uint64_t keepalive_interval_ms;
    uint64_t ping_sent_ms;         /**< waiting for a pong since; 0 = not waiting */
    uint64_t next_ping_ms;
    int reason;                    /**< close reason once closing */
    int reported_up;
    uint8_t resumed;               /**< set by the transport before siptls__flow_up() */
    int want_mask;                 /**< current SIPTLS__IO_* interest */

    /* counters for info */
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;

    /* tables */
    siptls__flow *id_next;         /**< hash chain by id */
    siptls__flow *addr_next;       /**< hash chain by remote address */
    siptls__flow *all_prev, *all_next;
    siptls__flow *zombie_next;
    siptls__flow *flush_next;      /**< engine's list of flows with queued work */
    uint8_t in_flush_list;
    uint8_t close_requested;       /**< siptls_close() called: close from the loop */
    int pending_fail;              /**< a failure seen during a host call: closed from the loop */
    /* rate-limited warnings (siptls__flow_warn): one cause at a time */
    int warn_cause;
    unsigned warn_suppressed;
    uint64_t warn_since_ms;
    uint64_t phase_since_ms;       /**< when the current phase began */
    uint64_t timer_due_ms;         /**< when the flow timer is set to fire; 0 = stopped */
    void *io_watcher;              /**< engine-private */
    void *timer;                   /**< engine-private */
};

/* --- used by transports ------------------------------------------------- */

/** Monotonic ms of the engine's loop (ev_now). */
uint64_t siptls__engine_now(const siptls_engine *e);
const siptls_config *siptls__engine_config(const siptls_engine *e);
siptls__secctx *siptls__engine_secctx(siptls_engine *e, siptls_transport t);
siptls_stats *siptls__engine_stats_mut(siptls_engine *e);
/** Where transport `t` keeps its per-engine state (dtls/: the receive
 *  buffers every DTLS socket of the engine shares). The engine only holds
 *  the pointer (NULL at first): the transport allocates and frees what it
 *  points to, before its last socket of the engine is gone. Per engine, not
 *  per thread: an engine may be created on one thread and run on another. */
void **siptls__engine_tp_shared(siptls_engine *e, siptls_transport t);
void siptls__log(siptls_engine *e, siptls_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** siptls__log_fn-compatible adapter (log_user = engine). */
void siptls__log_cb(void *engine, siptls_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Create an inbound flow (accepted TCP connection, or a DTLS session whose
 *  cookie came back) and register it. `fd` may be -1. Returns NULL when the
 *  engine is at its connection limit (counted, logged) or out of memory;
 *  the caller then closes its socket. */
siptls__flow *siptls__flow_new_inbound(siptls_engine *e, siptls__listener *l, int fd,
                                       const struct sockaddr *remote, socklen_t remote_len);

/** The transport heard from the peer (TCP connected, first DTLS datagram):
 *  the flow leaves CONNECTING for HANDSHAKE (handshake timer from now). */
void siptls__flow_handshake_begin(siptls__flow *f);
/** A WARN line about flow `f`, rate-limited per flow and cause: the first
 *  one is logged, repeats of the same cause within 10 s are counted and
 *  reported as one "N more" line when the window ends or the flow closes.
 *  `cause` is any stable non-zero number (a status is fine). */
void siptls__flow_warn(siptls__flow *f, int cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Engine-wide WARN line rate-limited the same way (listener problems
 *  such as the open-file limit); `slot` is the caller's state. */
typedef struct siptls__ratelog {
    uint64_t since_ms;
    unsigned suppressed;
} siptls__ratelog;
void siptls__log_limited(siptls_engine *e, siptls__ratelog *slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Change read/write interest on the flow's fd (no-op for fd -1). */
void siptls__flow_want(siptls__flow *f, int mask);
/** Handshake done: the transport checked the peer (secctx_peer_check) and
 *  the flow goes UP (on_flow UP, queued messages flushed). */
void siptls__flow_up(siptls__flow *f);
/** Fatal for the flow: close now with `reason` (no close_notify unless
 *  `graceful`). Safe to call more than once. */
void siptls__flow_fail(siptls__flow *f, int reason, int graceful);
/** Bytes arrived (liveness refresh for idle / keepalive). */
void siptls__flow_activity(siptls__flow *f, size_t nbytes);
/** Deliver one framer event (message to on_message, ping -> pong reply,
 *  pong -> keepalive refresh). Returns 0, or -1 when the flow was closed
 *  by the host from inside the callback (stop reading). */
int siptls__flow_deliver(siptls__flow *f, const siptls_frame_event *ev);
/** The transport's timer (next_timeout) changed: recompute the flow timer. */
void siptls__flow_rearm(siptls__flow *f);
/** Head of the write queue (NULL when empty). */
static inline siptls__qmsg *siptls__flow_qhead(siptls__flow *f)
{
    return f->q_head;
}
/** The key under which an outbound flow's client session is kept for
 *  resumption: transport, SIP domain and peer address (a session is only
 *  offered to the peer and domain it came from). */
void siptls__flow_session_key(const siptls__flow *f, char *key, size_t len);
/** Stream transports: merge the queued messages at the head (none of them
 *  partly written) into one buffer of at most `max` bytes, so one write and
 *  one TLS record carry several messages. */
void siptls__flow_qcoalesce(siptls__flow *f, size_t max);
/** The head message was written completely: drop it. */
void siptls__flow_qpop(siptls__flow *f);
/** The queue made progress / is blocked (for tls_send_timeout). */
void siptls__flow_send_progress(siptls__flow *f, int blocked);
/** Queue a copy of `buf` at the tail (no limit check: siptls_send checks
 *  the host's messages; keepalives bypass the limits). */
int siptls__flow_queue(siptls__flow *f, const uint8_t *buf, size_t len);
/** Find an open flow of `t` by remote address (any direction). */
siptls__flow *siptls__flow_by_addr(siptls_engine *e, siptls_transport t,
                                   const struct sockaddr *sa, socklen_t len);
/** Open (or, with `reuse`, find) an outbound flow of `t` to `host` (the
 *  SIP domain to verify and send as SNI, or the IP literal) at the first
 *  of `addrs`, moving on to the next while one cannot be reached (RFC 3263
 *  §4.3). At most 8 addresses are used. Statuses as siptls_connect(). */
int siptls__open_addrs(siptls_engine *e, siptls_transport t, const char *host, int literal,
                       const siptls__addr *addrs, int n, int reuse, siptls__flow **out);
/** Give an outbound flow the socket its transport created in connect()
 *  and set the interest mask. */
void siptls__flow_attach_fd(siptls__flow *f, int fd, int mask);

/** A non-blocking socket of `type` (SOCK_STREAM, SOCK_DGRAM) bound to
 *  l->addr (src/listen_socket.c). Without reuse_port the port is ours
 *  alone; with it, engines of this process share it (SO_REUSEPORT) and a
 *  port some other process holds is refused. Returns the fd, or -1 with
 *  errno set (EADDRINUSE: another process, or another engine without
 *  reuse_port, holds the port). */
int siptls__listener_socket(siptls_engine *e, siptls__listener *l, int type);
/** The listener's socket is closed: release its share of the port. */
void siptls__listener_unshare(siptls_engine *e, siptls__listener *l, int type);

/** Same peer: family, port and address (not padding, not IPv6 flow info). */
int siptls__addr_equal(const struct sockaddr *a, const struct sockaddr *b);
/** A well-mixed hash of what siptls__addr_equal() compares. */
size_t siptls__addr_hash(const struct sockaddr *sa);
/** Format a sockaddr as "1.2.3.4:5061" / "[::1]:5061". */
void siptls__addr_text(const struct sockaddr *sa, char *buf, size_t len);

/* The transports (defined in tls/ and dtls/). */
extern const siptls__transport_ops siptls__tls_ops;
extern const siptls__transport_ops siptls__dtls_ops;

#endif
