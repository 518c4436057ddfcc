/* siptls internal — the engine's own structures, shared by the files of
 * the engine (engine.c: the engine, listeners and libev; flow.c: a flow's
 * phases, queue, delivery and deadlines; outbound.c: opening flows by
 * destination; flow_table.c: lookups). Transports never include this
 * header: they see flows and listeners through src/transport.h only (CI
 * checks it). libev stays in engine.c: watchers are opaque pointers here. */
#ifndef SIPTLS_ENGINE_INTERNAL_H
#define SIPTLS_ENGINE_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "resolver.h"
#include "secctx.h"
#include "siptls/config.h"
#include "siptls/engine.h"
#include "siptls/flow.h"
#include "siptls/sipmsg.h"
#include "siptls/threads.h"
#include "siptls/uri.h"
#include "transport.h"

typedef struct siptls__mailbox siptls__mailbox; /* post.c's */

struct siptls__listener {
    siptls_engine *engine;
    const siptls__transport_ops *ops;
    siptls_uri uri;
    struct sockaddr_storage addr; /**< bound address (port read back) */
    socklen_t addrlen;
    int fd;
    int fd_taken; /**< the transport closes the fd (siptls__listener_take_fd) */
    int index;
    void *tp;           /**< transport-private */
    void *watcher;      /**< engine-private (ev_io) */
    siptls_stats stats; /**< what happened on it and its flows (siptls_listener_stats) */
};

/** The counters of one TLS domain (siptls_domain_stats), by name and kind.
 *  Lives while the configuration names the domain or a flow counts into it
 *  (a flow that started before a reload removed its domain). */
typedef struct siptls__domstat {
    struct siptls__domstat *next;
    char *name;
    int is_server;
    int in_cfg;    /**< named by the configuration in use */
    unsigned refs; /**< flows counting into it */
    siptls_stats stats;
} siptls__domstat;

struct siptls__flow {
    siptls_engine *engine;
    const siptls__transport_ops *ops;
    const siptls__flow_limits *lim; /**< the engine's, for this transport */
    siptls_flow_id id;
    siptls__phase phase;
    int outbound;
    int fd;                     /**< own socket, or -1 (DTLS sessions share the listener's) */
    siptls__listener *listener; /**< inbound: the listener it came from */
    struct sockaddr_storage remote;
    socklen_t remote_len;
    struct sockaddr_storage local;
    socklen_t local_len;
    char *sip_domain;    /**< outbound: host of the URI (RFC 5922 identity, SNI) */
    char *sni;           /**< outbound: SNI to send instead of sip_domain (NULL: none asked) */
    char *client_domain; /**< outbound: client TLS domain by name (NULL: by the match rules) */
    siptls__addr bind;   /**< outbound: local address to bind before connecting (len 0: none) */
    /** the security context the flow was made with (a reference): its
     *  domains, trusted_domain list and session cache, kept across a
     *  reload until the flow is freed */
    siptls__secctx *sec;
    /** the TLS domain it counts into (a reference), once known: outbound
     *  when its client WOLFSSL is made, inbound when the handshake ends */
    siptls__domstat *dom;
    /* outbound: every address the name resolved to, in resolver order;
     * the flow moves to the next one while it has not heard from the
     * current one (RFC 3263 §4.3), and with failover_handshake also when
     * its handshake fails */
    siptls__addr *alts;
    uint8_t n_alts, alt_next;
    uint8_t failover_handshake;
    struct siptls__rquery *resolving; /**< RESOLVING: the name lookup (resolver.h) */
    /* outbound to a name: the destination as a key (reuse before the name
     * is resolved), in the engine's by-destination table */
    char *dest_key;
    uint64_t dest_hash;
    siptls__flow *dest_next;
    void *tp; /**< transport-private (WOLFSSL etc.) */
    union {
        siptls_stream_framer *stream;
        siptls_dgram_framer *dgram;
    } framer;

    /* write queue */
    siptls__qmsg *q_head, *q_tail;
    unsigned q_count;
    size_t q_bytes;
    uint64_t send_blocked_since; /**< ms; 0 when the queue is moving */
    uint64_t
        send_acked; /**< bytes the peer had acknowledged when it blocked (UINT64_MAX: unknown) */
    size_t rx_wakeup_bytes; /**< stream bytes received in this wakeup (one chunk) */

    /* timers (absolute ms, 0 = off) */
    uint64_t last_activity_ms;
    uint64_t keepalive_interval_ms;
    uint64_t ping_sent_ms; /**< waiting for a pong since; 0 = not waiting */
    uint64_t next_ping_ms;
    uint64_t phase_since_ms; /**< when the current phase began */
    uint64_t timer_due_ms;   /**< when the flow timer is set to fire; 0 = stopped */
    int reason;              /**< close reason once closing */
    int reported_up;
    int want_mask; /**< current SIPTLS__IO_* interest */
    uint8_t in_flush_list;
    uint8_t close_requested; /**< siptls_close() called: close from the loop */
    int pending_fail;        /**< a failure seen during a host call: closed from the loop */
    /* rate-limited warnings (siptls__flow_warn): one cause at a time */
    int warn_cause;
    unsigned warn_suppressed;
    uint64_t warn_since_ms;

    /* counters for info */
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;

    /* the host's (flow_data.c) */
    void *user;             /**< siptls_flow_set_user(); never dereferenced */
    uint8_t writable_armed; /**< a send was refused or the queue passed high water */
    uint8_t writable_due;   /**< drained to low water: on_writable from the loop */

    /* tables */
    siptls__flow *id_next;   /**< hash chain by id */
    siptls__flow *addr_next; /**< hash chain by remote address */
    siptls__flow *all_prev, *all_next;
    siptls__flow *zombie_next;
    siptls__flow *flush_next; /**< engine's list of flows with queued work */
    void *io_watcher;         /**< engine-private (ev_io) */
    void *timer;              /**< engine-private (ev_timer) */
};

struct siptls_engine {
    struct ev_loop *loop;
    siptls_config cfg;
    siptls_callbacks cb;
    void *user;
    siptls__secctx *sec[3]; /**< indexed by siptls_transport */
    unsigned sec_gen;       /**< +1 each time a reload replaces `sec` */
    siptls__flow_limits lim[3];
    siptls__listener **listeners;
    int n_listeners;

    /* flows */
    siptls__flow **by_id; /**< open hash, chained, power-of-two buckets */
    siptls__flow **by_addr;
    siptls__flow **by_dest; /**< outbound flows to names, by dest_hash */
    size_t n_buckets;
    size_t n_flows;
    siptls__flow *all;     /**< every linked flow */
    siptls__flow *zombies; /**< closed, freed when no callback runs */
    siptls__flow *flush_list;
    siptls_flow_id next_id;
    unsigned open_by_kind[3];

    void *prepare; /**< ev_prepare: runs queued work posted outside callbacks */
    void *retry;   /**< ev_timer: a wakeup again when a transport's batch could not all leave */
    int depth;     /**< > 0 while we are inside a libev callback */
    int freeing;
    int host_call;             /**< > 0 while a host call writes a queue out */
    siptls__ratelog limit_log; /**< "refusing: connection limit" lines */
    siptls_stats stats;
    siptls__domstat *domstats;         /**< per TLS domain counters (stats.c) */
    void *tp_shared[3];                /**< per-engine state of each transport */
    struct siptls__resolver *resolver; /**< c-ares channel, made on first use (resolver.c) */

    /* flow tokens (flow_token.c) */
    uint32_t id;         /**< siptls_engine_id(): unique in the process */
    int tok_ok;          /**< the process has its boot id and default key */
    uint8_t tok_key[64]; /**< the token key (the process's, or the host's) */
    size_t tok_key_len;
    uint8_t tok_boot[16]; /**< the process's boot id */
    void *lingering;      /**< linger.c: refused sockets read until the peer closes */
    unsigned n_lingering;

    /* backpressure (flow_data.c): queue depths, from the water marks */
    siptls_writable_fn on_writable;
    unsigned hw_msgs, lw_msgs;
    size_t hw_bytes, lw_bytes;
    /** The flow whose on_flow(CLOSED) runs (its user pointer still reads). */
    siptls__flow *closing;

    /* posts from other threads (post.c; the ev_async is engine.c's) */
    siptls__mailbox *mbox;
    void *async; /**< ev_async */
};

/* ---- linger.c: lingering close of refused TCP connections --------------- */
/** Half-close `fd` (taken over) and read it until the peer closes, for at
 *  most 2 s, so that its last bytes from us are not lost to a reset. */
void siptls__linger_close(siptls_engine *e, int fd);
/** Close every lingering socket at once (siptls_engine_free). */
void siptls__linger_free_all(siptls_engine *e);

/* ---- engine.c: libev glue, deferred work -------------------------------- */

/** Enter / leave engine processing: leaving the outermost level runs the
 *  deferred work (finished name lookups, flushes, closes) and frees closed
 *  flows. */
void siptls__engine_enter(siptls_engine *e);
void siptls__engine_leave(siptls_engine *e);
/** The flow has queued work or a deferred close: handle it from the loop. */
void siptls__engine_schedule(siptls__flow *f);
/** Deferred work exists outside a flow (a finished name lookup): when no
 *  engine callback runs (a host call), run it before the loop next waits. */
void siptls__engine_kick(siptls_engine *e);

/* Watchers for the engine's own modules (the resolver's sockets and
 * timer): libev stays in engine.c. The callbacks run inside engine
 * processing (enter / leave), so the deferred work follows them. */
typedef struct siptls__io siptls__io;
typedef struct siptls__timer siptls__timer;
typedef void (*siptls__io_fn)(void *arg, int fd, int mask);
typedef void (*siptls__timer_fn)(void *arg);
/** A watcher of `fd` (stopped until siptls__engine_io_want). NULL when out
 *  of memory. */
siptls__io *siptls__engine_io_new(siptls_engine *e, int fd, siptls__io_fn fn, void *arg);
/** Readiness wanted (SIPTLS__IO_* mask; 0 stops the watcher). */
void siptls__engine_io_want(siptls__io *io, int mask);
/** Stop and free (before the fd is closed). NULL is accepted. */
void siptls__engine_io_free(siptls__io *io);
/** A one-shot timer (stopped). NULL when out of memory. */
siptls__timer *siptls__engine_timer_new(siptls_engine *e, siptls__timer_fn fn, void *arg);
/** Fire once `after_ms` from now (0: at the next loop iteration); a
 *  negative value stops it. */
void siptls__engine_timer_after(siptls__timer *t, int64_t after_ms);
/** Stop and free. NULL is accepted. */
void siptls__engine_timer_free(siptls__timer *t);
/** Watchers of a new flow (timer; io when `fd` >= 0). Returns SIPTLS_OK or
 *  SIPTLS_ERR_NOMEM. */
int siptls__engine_watch_flow(siptls__flow *f, int fd);
/** Stop and free the flow's watchers (before its fd is closed). */
void siptls__engine_stop_flow(siptls__flow *f);
void siptls__engine_free_watchers(siptls__flow *f);
/** Set the flow's timer to fire at `due` (absolute ms; 0 stops it). */
void siptls__engine_set_timer(siptls__flow *f, uint64_t due);
/** 1 while the flow's timer is armed. */
int siptls__engine_timer_active(const siptls__flow *f);
/** The security context of transport `t` (made on first use); NULL when it
 *  cannot be built (logged). */
siptls__secctx *siptls__engine_secctx(siptls_engine *e, siptls_transport t);
/** The transport of kind `t`, NULL for none (transports.c). */
const siptls__transport_ops *siptls__engine_ops(siptls_transport t);
/** The i-th transport the engine knows, NULL past the last. */
const siptls__transport_ops *siptls__transport_at(size_t i);
void siptls__engine_vlog(siptls_engine *e, siptls_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* ---- flow_table.c ----------------------------------------------------- */

int siptls__table_grow(siptls_engine *e);
int siptls__table_insert(siptls_engine *e, siptls__flow *f);
void siptls__table_remove(siptls_engine *e, siptls__flow *f);
/** The flow's remote address changes: unlink it, set the address, link it. */
void siptls__table_move(siptls_engine *e, siptls__flow *f, const siptls__addr *to);
siptls__flow *siptls__table_by_id(siptls_engine *e, siptls_flow_id id);
/** A flow the host may still use: linked and not being closed. */
siptls__flow *siptls__table_live(siptls_engine *e, siptls_flow_id id);
/** Open flows of `t` whose remote address is `sa`, one after the other
 *  (`after` NULL for the first). */
siptls__flow *siptls__table_next_by_addr(siptls_engine *e, siptls_transport t,
                                         const struct sockaddr *sa, siptls__flow *after);
/** Link an outbound flow whose dest_key / dest_hash are set. */
void siptls__table_link_dest(siptls_engine *e, siptls__flow *f);
/** An open flow of `t` (not closing) made for destination `key`. */
siptls__flow *siptls__table_by_dest(siptls_engine *e, siptls_transport t, const char *key,
                                    uint64_t hash);

/* ---- flow.c ----------------------------------------------------------- */

/** A new flow of `ops` with `fd` (-1: none yet) towards `remote`, linked
 *  in the tables. NULL at the transport's flow limit (counted) or out of
 *  memory. */
siptls__flow *siptls__flow_alloc(siptls_engine *e, const siptls__transport_ops *ops, int fd,
                                 const struct sockaddr *remote, socklen_t remote_len);
/** Free a closed flow (after its callbacks returned). */
void siptls__flow_free(siptls__flow *f);
/** Unlink, release the transport, report CLOSED; freed later. */
void siptls__flow_finalize(siptls__flow *f);
/** The earliest deadline of the flow (absolute ms; 0: none). */
uint64_t siptls__flow_deadline(const siptls__flow *f);
/** The flow's timer fired: run every action whose deadline passed. */
void siptls__flow_on_timer(siptls__flow *f, uint64_t now);
/** The loop's deferred work for the flow: a close asked for, a failure
 *  found during a host call, queued messages. */
void siptls__flow_run_deferred(siptls__flow *f);
/** After the transport handled readiness: a closing flow whose queue is
 *  empty sends close_notify and closes. */
void siptls__flow_io_done(siptls__flow *f);
/** Queue a copy of `buf` at the tail (no limit check). */
int siptls__flow_queue(siptls__flow *f, const uint8_t *buf, size_t len);
/** Would `len` more bytes pass the queue limits? */
int siptls__flow_queue_full(const siptls__flow *f, size_t len);
/** Bytes the peer's TCP has acknowledged on the flow's own socket
 *  (TCP_INFO), UINT64_MAX when it has none or is not TCP. */
uint64_t siptls__flow_acked(const siptls__flow *f);
/** A framing error of the flow: counted and logged (flow_io.c); a stream
 *  flow closes, a datagram record is dropped alone. */
void siptls__flow_framing_error(siptls__flow *f, int st);
/** Start (or restart, at the next address) the flow's connect. */
int siptls__flow_connect(siptls__flow *f);
/** RFC 3263 §4.3: connect to the next address the name resolved to;
 *  1 when an attempt is under way, 0 when none is left (*reason: the last
 *  error). In outbound.c. */
int siptls__flow_next_address(siptls__flow *f, int *reason);
/* ---- outbound.c --------------------------------------------------------- */

/** One outbound destination, whatever call named it (target.c makes it
 *  from a URI or a target list). Strings point into the struct itself or
 *  into the caller's arguments (valid for the call). */
typedef struct siptls__dest {
    siptls_transport transport;
    const char *sip_domain;    /**< the identity to verify (RFC 5922) and the SNI */
    const char *sni;           /**< NULL: sip_domain */
    const char *client_domain; /**< NULL: by the match rules */
    siptls__addr local;        /**< len 0: none */
    int failover_handshake;    /**< also a failed handshake moves on to the next address */
    /** RFC 3263: NAPTR (unless srv_only) and SRV records of `lookup` */
    int rfc3263, srv_only;
    char lookup[SIPTLS_URI_HOST_MAX];
    /** otherwise: the A/AAAA records (or the address) of each host; for
     *  rfc3263, hosts[0].port is the port of the A/AAAA fallback */
    siptls__rhost hosts[SIPTLS__RESOLVE_MAX_HOSTS];
    int n_hosts;
    int all_numeric; /**< every host is an IP address: no lookup */
    char domain_buf[SIPTLS_URI_HOST_MAX];
} siptls__dest;

/** Open (or, with `reuse`, find) a flow to `d`: IP addresses at once, names
 *  through the resolver (the flow is RESOLVING until the lookup is done).
 *  Statuses as siptls_connect_target(). */
int siptls__open_dest(siptls_engine *e, const siptls__dest *d, int reuse, siptls__flow **out);
/** The lookup that resolves `d`'s names. */
void siptls__dest_request(const siptls__dest *d, siptls__rreq *req);

/** Open (or, with `reuse`, find) an outbound flow of `t` to `host` (the
 *  SIP domain to verify and send as SNI, or the IP literal) at the first
 *  of `addrs`, moving on to the next while one cannot be reached (RFC 3263
 *  §4.3). At most SIPTLS_TARGETS_MAX addresses are used. Statuses as
 *  siptls_connect(). */
int siptls__open_addrs(siptls_engine *e, siptls_transport t, const char *host, int literal,
                       const siptls__addr *addrs, int n, int reuse, siptls__flow **out);

/* ---- post.c: functions and sends from other threads -------------------- */

/** The engine's mailbox, with its limits from `cfg`. SIPTLS_OK or
 *  SIPTLS_ERR_NOMEM. */
int siptls__mailbox_new(siptls__mailbox **out, const siptls_config *cfg);
/** On the loop (engine.c's ev_async callback): run what was posted, at
 *  most a batch; 1 when more waits (the caller wakes the loop again). */
int siptls__mailbox_run(siptls_engine *e);
/** siptls_engine_free(), first: refuse every post from now on
 *  (SIPTLS_ERR_SHUTDOWN: also those the host makes from the callbacks the
 *  free still calls), call back every waiting one with
 *  SIPTLS_ERR_SHUTDOWN. A NULL mailbox is accepted. */
void siptls__mailbox_close(siptls_engine *e);
/** siptls_engine_free(), last: free the (closed) mailbox. NULL is
 *  accepted. */
void siptls__mailbox_free(siptls__mailbox *m);
/** Wake the engine's loop (ev_async_send; any thread). In engine.c. */
void siptls__engine_wake(siptls_engine *e);

/* ---- flow_data.c: per-flow data and backpressure ------------------------- */

/** The water marks of `cfg` as message and byte counts (engine creation).
 *  SIPTLS_OK or SIPTLS_ERR_INVAL (queue_low_water not below
 *  queue_high_water; logged). */
int siptls__backpressure_init(siptls_engine *e);
/** A send of the host's was refused, or queued past high water. */
void siptls__flow_after_send(siptls__flow *f, int refused);
/** A queued message left the queue (written or dropped). */
void siptls__flow_drained(siptls__flow *f);
/** From the loop's deferred work: call on_writable when it is due. */
void siptls__flow_writable_run(siptls__flow *f);

/* ---- stats.c: per listener and per TLS domain counters -------------------- */

/** Add `n` to the counter `field` of the engine, of the flow's listener
 *  (inbound flows) and of its TLS domain (once known): the one way a
 *  flow's events are counted. */
#define SIPTLS__FLOW_COUNT(f, field, n)      \
    do {                                     \
        siptls__flow *f_ = (f);              \
        uint64_t n_ = (n);                   \
        f_->engine->stats.field += n_;       \
        if (f_->listener != NULL) {          \
            f_->listener->stats.field += n_; \
        }                                    \
        if (f_->dom != NULL) {               \
            f_->dom->stats.field += n_;      \
        }                                    \
    } while (0)

/** Make the domain records of `cfg` exist (new ones are not yet marked as
 *  configured). SIPTLS_OK or SIPTLS_ERR_NOMEM (nothing else changes). */
int siptls__domstat_prepare(siptls_engine *e, const siptls_config *cfg);
/** `cfg` is now the configuration in use: mark its domains, release the
 *  records nothing uses any more. Never fails. */
void siptls__domstat_commit(siptls_engine *e, const siptls_config *cfg);
/** Free every record (the engine is being freed; no flow is left). */
void siptls__domstat_free_all(siptls_engine *e);
/** The flow counts into the domain of `ssl` from now on (its open-flow
 *  gauges move with it); no-op when `ssl`'s domain is unknown. */
void siptls__flow_set_domain(siptls__flow *f, struct WOLFSSL *ssl);
/** The same by the domain's name and kind (NULL `name`: no-op). */
void siptls__flow_set_domain_name(siptls__flow *f, const char *name, int is_server);
/** The flow is freed: drop its domain reference. */
void siptls__flow_drop_domain(siptls__flow *f);
/** The handshake-failure counters of `s` for `reason` (one place). */
void siptls__count_hs_failure_in(siptls_stats *s, int reason);

/* ---- flow_token.c --------------------------------------------------------- */

/** Give a new engine its id, the process's boot id and default token key
 *  (drawn once per process, again after a fork). Never fails: without
 *  randomness tok_ok stays 0 and the token calls say so. */
void siptls__token_engine_init(siptls_engine *e);
/** The process's boot id (16 bytes) and default key (32 bytes), drawn on
 *  first use and again in a child of fork(). Returns 0, or -1 without
 *  randomness. */
int siptls__token_process(uint8_t boot[16], uint8_t key[32]);
/** The token (38 characters and a NUL into `out`) of (`engine_id`,
 *  `flow_id`) under `key` with boot id `boot`. Returns 0 or -1. Tests
 *  use it to make the tokens another process or key would make. */
int siptls__token_make(const uint8_t *key, size_t key_len, const uint8_t boot[16],
                       uint32_t engine_id, uint64_t flow_id, char out[39]);

/* ---- listen_socket.c ------------------------------------------------------ */

/** A non-blocking socket of `type` (SOCK_STREAM, SOCK_DGRAM) bound to
 *  l->addr. Without reuse_port the port is ours alone; with it, engines of
 *  this process share it (SO_REUSEPORT) and a port some other process
 *  holds is refused. Returns the fd, or -1 with errno set (EADDRINUSE:
 *  another process, or another engine without reuse_port, holds it). */
int siptls__listener_socket(siptls_engine *e, siptls__listener *l, int type);
/** The listener's socket is closed: release its share of the port. */
void siptls__listener_unshare(siptls_engine *e, siptls__listener *l, int type);

#endif
