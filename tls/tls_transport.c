/* siptls — SIP over TLS over TCP.
 *
 * One non-blocking TCP socket per flow, wolfSSL reading it through our
 * receive callback and writing it with MSG_NOSIGNAL (tls_io.c). Reads go
 * straight into the flow's stream framer (one wakeup = one chunk); writes
 * drain the flow's queue, coalesced into full records, resuming partial
 * writes when the socket becomes writable. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls_internal.h"

/* Read straight into the framer's buffer in steps of one TLS record. */
#define TLS_READ_STEP 16384

/* Read interest: none once the peer's side is closed (a level-triggered
 * watcher would wake us for EOF forever). */
static int read_want(const siptls__flow *f)
{
    const tls_flow *t = siptls__flow_tp(f);
    return t != NULL && t->read_closed ? 0 : SIPTLS__IO_READ;
}

/* ------------------------------------------------------------------------ */
/* listener                                                                 */
/* ------------------------------------------------------------------------ */

/* A listener's own state: a spare descriptor for the open-file limit. */
typedef struct tls_listener {
    int reserve_fd; /* /dev/null, given up to shed a connection at EMFILE */
    siptls__ratelog emfile_log;
} tls_listener;

static void tls_limits(const siptls_config *c, siptls__flow_limits *out)
{
    memset(out, 0, sizeof(*out));
    out->max_flows = c->tls_max_connections;
    out->handshake_timeout_ms = c->tls_handshake_timeout;
    out->idle_ms = (uint64_t)c->tls_connection_lifetime * 1000;
    /* tls_connection_lifetime counts idle time in both directions, as
     * OpenSIPS does. */
    out->idle_counts_sends = 1;
    out->max_chunks = c->tls_max_msg_chunks;
    /* A wakeup that delivered a full TLS record of the message is progress
     * (a large message on a slow link), not dribbling (RFC 8446 §5.1: a
     * record holds at most 2^14 bytes). */
    out->chunk_full_bytes = 16384;
    out->max_msg_time_ms = (uint64_t)c->tls_max_msg_time * 1000;
}

static int tls_listen(siptls__listener *l)
{
    if (listen(siptls__listener_fd(l), 1024) != 0) {
        return SIPTLS_ERR_BIND;
    }
    tls_listener *tl = calloc(1, sizeof(*tl));
    if (tl == NULL) {
        errno = ENOMEM;
        return SIPTLS_ERR_NOMEM;
    }
    tl->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    siptls__listener_set_tp(l, tl);
    return SIPTLS_OK;
}

/* At the open-file limit accept() fails and the connection stays in the
 * backlog: a level-triggered watcher would wake us for it forever. Give
 * up the spare descriptor, accept the connection and close it (the peer
 * sees the close at once instead of a silent timeout), take the spare
 * back. Counted, and logged at most once per 10 s. */
static void shed_connection(siptls__listener *l, int err)
{
    siptls_engine *e = siptls__listener_engine(l);
    tls_listener *tl = siptls__listener_tp(l);
    siptls__count(e, SIPTLS__EV_DROP_RESOURCES, 1);
    siptls__log_limited(e, &tl->emfile_log,
                        "tls listener %d: cannot accept a connection: %s (raise the open-file "
                        "limit, ulimit -n, or lower tls_max_connections): shedding it",
                        siptls__listener_index(l), strerror(err));
    if (tl->reserve_fd >= 0) {
        close(tl->reserve_fd);
        int fd = accept4(siptls__listener_fd(l), NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
        }
        tl->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
}

static void tls_listener_io(siptls__listener *l)
{
    siptls_engine *e = siptls__listener_engine(l);
    /* Bounded per wakeup so a connection storm cannot starve other flows. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(siptls__listener_fd(l), (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                shed_connection(l, errno);
                continue;
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        siptls__flow *f = siptls__flow_new_inbound(l, fd, (struct sockaddr *)&ss, sl);
        if (f == NULL) {
            close(fd);
            continue;
        }
        /* The accepted socket's own address: behind a wildcard listener it
         * is what match_ip_address must see. */
        struct sockaddr_storage local;
        socklen_t ll = sizeof(local);
        if (getsockname(fd, (struct sockaddr *)&local, &ll) != 0) {
            memcpy(&local, siptls__listener_addr(l, NULL), sizeof(local));
        }
        errno = 0;
        WOLFSSL *ssl = siptls__listener_server_ssl(l, (struct sockaddr *)&local);
        int err = errno;
        if (tls_attach(f, ssl) != SIPTLS_OK) {
            /* wolfSSL_new() seeds a DRBG from /dev/urandom: at the
             * open-file limit that is what fails. */
            tls_listener *tl = siptls__listener_tp(l);
            char text[64];
            siptls__addr_text((struct sockaddr *)&ss, text, sizeof(text));
            siptls__count(e, SIPTLS__EV_DROP_RESOURCES, 1);
            siptls__log_limited(e, &tl->emfile_log,
                                "tls listener %d: dropping the connection from %s: cannot create "
                                "its TLS session (%s; open-file limit?)",
                                siptls__listener_index(l), text,
                                err != 0 ? strerror(err) : "out of memory");
            siptls__flow_fail(f, SIPTLS_ERR_NOMEM, 0);
        }
    }
}

static void tls_listener_close(siptls__listener *l)
{
    tls_listener *tl = siptls__listener_tp(l);
    if (tl != NULL) {
        if (tl->reserve_fd >= 0) {
            close(tl->reserve_fd);
        }
        free(tl);
        siptls__listener_set_tp(l, NULL);
    }
}

/* ------------------------------------------------------------------------ */
/* flows                                                                    */
/* ------------------------------------------------------------------------ */

static void handshake_step(siptls__flow *f);
static void tls_shutdown(siptls__flow *f);

static int tls_connect(siptls__flow *f)
{
    socklen_t rl;
    const struct sockaddr *remote = siptls__flow_remote(f, &rl);
    int fd = siptls__flow_socket(f, SOCK_STREAM);
    if (fd < 0) {
        return SIPTLS_ERR_CONNECT;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((connect(fd, remote, rl) != 0 && errno != EINPROGRESS) ||
        siptls__flow_attach_fd(f, fd, SIPTLS__IO_WRITE) != SIPTLS_OK) {
        close(fd);
        return SIPTLS_ERR_CONNECT;
    }
    return SIPTLS_OK;
}

static void connect_done(siptls__flow *f)
{
    int fd = siptls__flow_fd(f);
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        char name[96];
        siptls__log(siptls__flow_engine(f), SIPTLS_LOG_DEBUG, "%s: connect to %s failed: %s",
                    siptls__flow_name(f, name, sizeof(name)), siptls__flow_sip_domain(f),
                    strerror(err ? err : errno));
        siptls__flow_fail(f, SIPTLS_ERR_CONNECT, 0);
        return;
    }
    struct sockaddr_storage local;
    socklen_t ll = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0) {
        siptls__flow_set_local(f, (struct sockaddr *)&local, ll);
    }
    if (tls_attach(f, siptls__flow_client_ssl(f, NULL)) != SIPTLS_OK) {
        siptls__flow_fail(f, SIPTLS_ERR_NOMEM, 0);
        return;
    }
    siptls__flow_handshake_begin(f);
    handshake_step(f);
}

/* The peer's sending ended (status `st` from a read). */
static void read_ended(siptls__flow *f, int st)
{
    tls_flow *t = siptls__flow_tp(f);
    if (st != SIPTLS_ERR_PEER_CLOSED || siptls__flow_phase(f) != SIPTLS__PHASE_UP) {
        siptls__flow_fail(f, st, 0);
        return;
    }
    if (t->close_notify && wolfSSL_version(t->ssl) < TLS1_3_VERSION) {
        /* RFC 5246 §7.2.1: "Upon receipt of close_notify, the other party
         * MUST respond with a close_notify alert of its own and close down
         * the connection immediately, discarding any pending writes." */
        tls_shutdown(f);
        siptls__flow_fail(f, st, 0);
        return;
    }
    /* RFC 8446 §6.1: a close_notify "does not have any effect on its read
     * side of the connection": it ends the peer's sending, not ours. A FIN
     * without one is a half-close too. Replies already produced are
     * written (bounded by tls_send_timeout), then we close. */
    t->read_closed = 1;
    siptls__flow_want(f, siptls__flow_qhead(f) != NULL ? SIPTLS__IO_WRITE : 0);
    siptls__flow_fail(f, st, 1);
}

/* One wakeup = one chunk: drain the socket and wolfSSL's buffered plaintext
 * straight into the framer (zero copy), then deliver. */
static void do_read(siptls__flow *f)
{
    tls_flow *t = siptls__flow_tp(f);
    int st = SIPTLS_AGAIN;
    for (;;) {
        int full = 0;
        for (;;) {
            uint8_t *p;
            size_t avail;
            siptls__flow_rx_area(f, TLS_READ_STEP, &p, &avail);
            if (avail == 0) {
                full = 1;
                break;
            }
            int n = wolfSSL_read(t->ssl, p, (int)(avail > INT32_MAX ? INT32_MAX : avail));
            if (n > 0) {
                siptls__flow_rx_commit(f, (size_t)n);
                continue;
            }
            st = tls_status(f, t->ssl, n, 0);
            break;
        }
        if (!full) {
            break;
        }
        /* The framer holds all it may: parse to make room, read on. */
        if (siptls__flow_rx_deliver(f, 0) != 0) {
            return;
        }
        uint8_t *p;
        size_t avail;
        siptls__flow_rx_area(f, TLS_READ_STEP, &p, &avail);
        if (avail == 0) {
            break; /* no progress possible: the framer reports the limit */
        }
    }
    if (siptls__flow_rx_deliver(f, 1) != 0) {
        return;
    }
    if (st != SIPTLS_AGAIN) {
        read_ended(f, st);
    }
}

static void handshake_step(siptls__flow *f)
{
    tls_flow *t = siptls__flow_tp(f);
    int ret = siptls__flow_outbound(f) ? wolfSSL_connect(t->ssl) : wolfSSL_accept(t->ssl);
    if (ret != WOLFSSL_SUCCESS) {
        int err = wolfSSL_get_error(t->ssl, ret);
        int st = tls_status(f, t->ssl, ret, 1);
        if (st == SIPTLS_AGAIN) {
            siptls__flow_want(f, err == WOLFSSL_ERROR_WANT_WRITE
                                     ? SIPTLS__IO_READ | SIPTLS__IO_WRITE
                                     : SIPTLS__IO_READ);
            return;
        }
        siptls__flow_handshake_failed(f, t->ssl, st);
        return;
    }
    siptls__flow_want(f, SIPTLS__IO_READ);
    int st = siptls__flow_handshake_done(f, t->ssl, wolfSSL_session_reused(t->ssl) == 1);
    if (st != SIPTLS_OK) {
        siptls__flow_fail(f, st, 0);
        return;
    }
    if (siptls__flow_phase(f) != SIPTLS__PHASE_UP) {
        return;
    }
    /* The peer may have sent application data right behind its Finished. */
    do_read(f);
}

static void tls_flush(siptls__flow *f)
{
    tls_flow *t = siptls__flow_tp(f);
    if (t == NULL) {
        return;
    }
    siptls__qmsg *m;
    /* Several replies queued during one wakeup go out as one TLS record
     * and one write: fewer syscalls and less per-record crypto. */
    siptls__flow_qcoalesce(f, TLS_READ_STEP);
    while ((m = siptls__flow_qhead(f)) != NULL) {
        /* After WANT_WRITE wolfSSL must be called again with the same
         * buffer: it remembers how much of it went out. */
        int n = wolfSSL_write(t->ssl, m->data, (int)m->len);
        if (n > 0) {
            siptls__flow_qpop(f);
            siptls__flow_qcoalesce(f, TLS_READ_STEP);
            continue;
        }
        int st = tls_status(f, t->ssl, n, 0);
        if (st == SIPTLS_AGAIN) {
            m->off = 1; /* in progress: must be retried as is, never merged */
            siptls__flow_send_blocked(f, 1);
            siptls__flow_want(f, read_want(f) | SIPTLS__IO_WRITE);
            return;
        }
        siptls__flow_fail(f, st, 0);
        return;
    }
    siptls__flow_send_blocked(f, 0);
    siptls__flow_want(f, read_want(f));
}

static void tls_io(siptls__flow *f, int revents)
{
    tls_flow *t = siptls__flow_tp(f);
    if (t != NULL && (revents & SIPTLS__IO_READ)) {
        t->drained = 0; /* a new wakeup: the socket may have bytes */
    }
    switch (siptls__flow_phase(f)) {
    case SIPTLS__PHASE_CONNECTING:
        connect_done(f);
        break;
    case SIPTLS__PHASE_HANDSHAKE:
        handshake_step(f);
        break;
    case SIPTLS__PHASE_UP:
    case SIPTLS__PHASE_CLOSING:
        if (revents & SIPTLS__IO_WRITE) {
            tls_flush(f);
        }
        if ((revents & SIPTLS__IO_READ) && siptls__flow_phase(f) <= SIPTLS__PHASE_CLOSING &&
            read_want(f) != 0) {
            do_read(f);
        }
        break;
    default:
        break;
    }
    if (siptls__flow_phase(f) != SIPTLS__PHASE_CLOSED && siptls__flow_tp(f) != NULL) {
        tls_rx_release(siptls__flow_tp(f));
    }
}

static uint64_t tls_next_timeout(siptls__flow *f)
{
    (void)f;
    return 0; /* TCP retransmits; the engine's deadlines are all there is */
}

static void tls_on_timeout(siptls__flow *f)
{
    (void)f;
}

static void tls_shutdown(siptls__flow *f)
{
    tls_flow *t = siptls__flow_tp(f);
    if (t != NULL && !t->shutdown_sent && siptls__flow_was_up(f)) {
        t->shutdown_sent = 1;
        /* Non-blocking: sends our close_notify, does not wait for theirs. */
        wolfSSL_shutdown(t->ssl);
    }
}

static void tls_free(siptls__flow *f)
{
    tls_flow *t = siptls__flow_tp(f);
    if (t != NULL) {
        free(t->rx);
        siptls__flow_session_save(f, t->ssl);
        wolfSSL_free(t->ssl);
        free(t);
        siptls__flow_set_tp(f, NULL);
    }
    siptls__flow_close_fd(f, siptls__flow_fd(f));
}

static void tls_info(siptls__flow *f, siptls_flow_info *info)
{
    tls_flow *t = siptls__flow_tp(f);
    if (t != NULL && siptls__flow_was_up(f)) {
        siptls__flow_describe(f, t->ssl, info);
    }
}

static struct WOLFSSL *tls_session_ssl(siptls__flow *f)
{
    tls_flow *t = siptls__flow_tp(f);
    return t != NULL && siptls__flow_was_up(f) ? t->ssl : NULL;
}

const siptls__transport_ops siptls__tls_ops = {
    .kind = SIPTLS_TRANSPORT_TLS,
    .name = "tls",
    .socktype = SOCK_STREAM,
    .framing = SIPTLS__FRAMING_STREAM,
    .dtls = 0,
    .stats_open = offsetof(siptls_stats, tls_flows_open),
    .limits = tls_limits,
    .listen = tls_listen,
    .listener_io = tls_listener_io,
    .listener_close = tls_listener_close,
    .connect = tls_connect,
    .io = tls_io,
    .flush = tls_flush,
    .next_timeout = tls_next_timeout,
    .on_timeout = tls_on_timeout,
    .shutdown = tls_shutdown,
    .free = tls_free,
    .info = tls_info,
    .session = tls_session_ssl,
};
