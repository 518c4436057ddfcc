/* siptls — the engine: listeners, the host's calls, deferred work, and
 * libev.
 *
 * This is the one file of the library that talks to libev: flows and
 * listeners hold opaque watcher pointers that only this file makes, arms
 * and frees. A flow's phases, queue, delivery and deadlines are in flow.c;
 * opening flows by destination in outbound.c; the tables in flow_table.c.
 * Transports are reached through their ops table and profile only
 * (transport.h): nothing here asks which transport a flow uses. */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_reload.h"
#include "engine_internal.h"
#include "resolver.h"

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */
/* ------------------------------------------------------------------------ */

uint64_t siptls__engine_now(const siptls_engine *e)
{
    return (uint64_t)(ev_now(e->loop) * 1000.0);
}

const siptls_config *siptls__engine_config(const siptls_engine *e)
{
    return &e->cfg;
}

void **siptls__engine_tp_shared(siptls_engine *e, siptls_transport t)
{
    return &e->tp_shared[t];
}

struct ev_loop *siptls_engine_loop(const siptls_engine *e)
{
    return e->loop;
}

void siptls__engine_vlog(siptls_engine *e, siptls_log_level level, const char *fmt, va_list ap)
{
    /* log_level filters before formatting, also for a host's log
     * callback: a busy engine must not format lines nobody reads. */
    if ((int)level > e->cfg.log_level) {
        return;
    }
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    if (e->cb.log != NULL) {
        e->cb.log(level, line, e->user);
        return;
    }
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    fprintf(stderr, "siptls %s: %s\n", names[level], line);
}

void siptls__log(siptls_engine *e, siptls_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    siptls__engine_vlog(e, level, fmt, ap);
    va_end(ap);
}

/* siptls__log_fn-compatible adapter for the security contexts. */
__attribute__((format(printf, 3, 4))) static void log_cb(void *engine, siptls_log_level level,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    siptls__engine_vlog(engine, level, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* callbacks entry / exit: deferred work and deferred free                  */
/* ------------------------------------------------------------------------ */

static void wakeup_end(siptls_engine *e);

static void flush_pending(siptls_engine *e)
{
    while (e->flush_list != NULL) {
        siptls__flow *f = e->flush_list;
        e->flush_list = f->flush_next;
        f->in_flush_list = 0;
        f->flush_next = NULL;
        siptls__flow_run_deferred(f);
    }
}

void siptls__engine_enter(siptls_engine *e)
{
    e->depth++;
}

void siptls__engine_leave(siptls_engine *e)
{
    if (e->depth == 1) {
        /* Finished name lookups first (they start connects and may call the
         * host back), then the flows' queued work; either may add to the
         * other (a host sending from a callback). */
        do {
            siptls__resolver_deliver(e);
            flush_pending(e);
        } while (siptls__resolver_has_done(e) || e->flush_list != NULL);
        while (e->zombies != NULL) {
            siptls__flow *z = e->zombies;
            e->zombies = z->zombie_next;
            siptls__flow_free(z);
        }
        wakeup_end(e);
    }
    e->depth--;
}

/* The end of a wakeup, after all deferred work: what a transport batched
 * for the engine (DTLS: the datagrams of this wakeup) leaves now, before
 * the loop waits again. A transport that could not send everything (a
 * full socket buffer) names when to try again: the engine's retry timer
 * runs an empty wakeup then. */
static void wakeup_end(siptls_engine *e)
{
    uint64_t due = 0;
    const siptls__transport_ops *ops;
    for (size_t i = 0; (ops = siptls__transport_at(i)) != NULL; i++) {
        uint64_t d = ops->wakeup_end != NULL ? ops->wakeup_end(e) : 0;
        if (d != 0 && (due == 0 || d < due)) {
            due = d;
        }
    }
    ev_timer *t = e->retry;
    if (due == 0 || e->freeing || t == NULL || ev_is_active(t)) {
        return;
    }
    uint64_t now = siptls__engine_now(e);
    ev_timer_set(t, due > now ? (double)(due - now) / 1000.0 : 0.0, 0.0);
    ev_timer_start(e->loop, t);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    siptls_engine *e = w->data;
    siptls__engine_enter(e);
    siptls__engine_leave(e);
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    siptls_engine *e = w->data;
    ev_prepare_stop(loop, w);
    siptls__engine_enter(e);
    siptls__engine_leave(e);
}

/* Posts from other threads (post.c) arrived: run a batch of them as
 * engine callbacks. A long mailbox wakes the loop again, so sockets get
 * their turn between batches. */
static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    siptls_engine *e = w->data;
    siptls__engine_enter(e);
    int more = siptls__mailbox_run(e);
    siptls__engine_leave(e);
    if (more) {
        ev_async_send(loop, w);
    }
}

void siptls__engine_wake(siptls_engine *e)
{
    ev_async_send(e->loop, (ev_async *)e->async);
}

void siptls__engine_schedule(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (!f->in_flush_list) {
        f->in_flush_list = 1;
        f->flush_next = e->flush_list;
        e->flush_list = f;
    }
    /* Outside our callbacks (a host call from its own code) the work runs
     * before the loop next waits. */
    siptls__engine_kick(e);
}

void siptls__engine_kick(siptls_engine *e)
{
    if (e->depth == 0 && !e->freeing && !ev_is_active((ev_prepare *)e->prepare)) {
        ev_prepare_start(e->loop, e->prepare);
    }
}

/* ------------------------------------------------------------------------ */
/* watchers of the engine's own modules (the resolver's sockets and timer)  */
/* ------------------------------------------------------------------------ */

struct siptls__io {
    ev_io w;
    siptls_engine *e;
    siptls__io_fn fn;
    void *arg;
};

struct siptls__timer {
    ev_timer w;
    siptls_engine *e;
    siptls__timer_fn fn;
    void *arg;
};

static void module_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    siptls__io *io = w->data;
    siptls_engine *e = io->e;
    siptls__engine_enter(e);
    io->fn(io->arg, w->fd,
           ((revents & EV_READ) ? SIPTLS__IO_READ : 0) |
               ((revents & EV_WRITE) ? SIPTLS__IO_WRITE : 0));
    siptls__engine_leave(e);
}

static void module_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    siptls__timer *t = w->data;
    siptls_engine *e = t->e;
    siptls__engine_enter(e);
    t->fn(t->arg);
    siptls__engine_leave(e);
}

siptls__io *siptls__engine_io_new(siptls_engine *e, int fd, siptls__io_fn fn, void *arg)
{
    siptls__io *io = calloc(1, sizeof(*io));
    if (io == NULL) {
        return NULL;
    }
    ev_io_init(&io->w, module_io_cb, fd, EV_READ);
    io->w.data = io;
    io->e = e;
    io->fn = fn;
    io->arg = arg;
    return io;
}

void siptls__engine_io_want(siptls__io *io, int mask)
{
    int ev = ((mask & SIPTLS__IO_READ) ? EV_READ : 0) | ((mask & SIPTLS__IO_WRITE) ? EV_WRITE : 0);
    if (ev_is_active(&io->w) && (io->w.events & (EV_READ | EV_WRITE)) == ev) {
        return;
    }
    ev_io_stop(io->e->loop, &io->w);
    if (ev != 0) {
        ev_io_set(&io->w, io->w.fd, ev);
        ev_io_start(io->e->loop, &io->w);
    }
}

void siptls__engine_io_free(siptls__io *io)
{
    if (io != NULL) {
        ev_io_stop(io->e->loop, &io->w);
        free(io);
    }
}

siptls__timer *siptls__engine_timer_new(siptls_engine *e, siptls__timer_fn fn, void *arg)
{
    siptls__timer *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    ev_timer_init(&t->w, module_timer_cb, 0.0, 0.0);
    t->w.data = t;
    t->e = e;
    t->fn = fn;
    t->arg = arg;
    return t;
}

void siptls__engine_timer_after(siptls__timer *t, int64_t after_ms)
{
    ev_timer_stop(t->e->loop, &t->w);
    if (after_ms >= 0) {
        ev_timer_set(&t->w, (double)after_ms / 1000.0, 0.0);
        ev_timer_start(t->e->loop, &t->w);
    }
}

void siptls__engine_timer_free(siptls__timer *t)
{
    if (t != NULL) {
        ev_timer_stop(t->e->loop, &t->w);
        free(t);
    }
}

/* ------------------------------------------------------------------------ */
/* libev glue of flows                                                      */
/* ------------------------------------------------------------------------ */

static void flow_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    siptls__flow *f = w->data;
    siptls_engine *e = f->engine;
    siptls__engine_enter(e);
    int mask =
        ((revents & EV_READ) ? SIPTLS__IO_READ : 0) | ((revents & EV_WRITE) ? SIPTLS__IO_WRITE : 0);
    f->ops->io(f, mask);
    siptls__flow_io_done(f);
    siptls__engine_leave(e);
}

static void flow_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    siptls__flow *f = w->data;
    siptls_engine *e = f->engine;
    uint64_t now = siptls__engine_now(e);
    siptls__engine_enter(e);
    f->timer_due_ms = 0;
    if ((f->io_watcher != NULL && ev_is_pending((ev_io *)f->io_watcher)) ||
        (f->listener != NULL && f->listener->watcher != NULL &&
         ev_is_pending((ev_io *)f->listener->watcher))) {
        /* libev runs the timers of a loop iteration before the I/O it
         * found ready in the same poll: after the loop was held up (a
         * host busy for seconds), a connect that has completed would be
         * judged timed out before its readiness is seen. No deadline is
         * judged while the flow's I/O waits: look again right after it. */
        siptls__engine_set_timer(f, now);
    } else {
        siptls__flow_on_timer(f, now);
    }
    siptls__engine_leave(e);
}

int siptls__engine_watch_flow(siptls__flow *f, int fd)
{
    ev_timer *tm = calloc(1, sizeof(*tm));
    ev_io *io = fd >= 0 ? calloc(1, sizeof(*io)) : NULL;
    if (tm == NULL || (fd >= 0 && io == NULL)) {
        free(tm);
        free(io);
        return SIPTLS_ERR_NOMEM;
    }
    ev_timer_init(tm, flow_timer_cb, 0.0, 0.0);
    tm->data = f;
    f->timer = tm;
    if (io != NULL) {
        ev_io_init(io, flow_io_cb, fd, EV_READ);
        io->data = f;
        f->io_watcher = io;
    }
    return SIPTLS_OK;
}

void siptls__engine_stop_flow(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (f->io_watcher != NULL) {
        ev_io_stop(e->loop, f->io_watcher);
    }
    f->want_mask = 0;
    if (f->timer != NULL) {
        ev_timer_stop(e->loop, f->timer);
    }
    f->timer_due_ms = 0;
}

void siptls__engine_free_watchers(siptls__flow *f)
{
    free(f->io_watcher);
    free(f->timer);
    f->io_watcher = NULL;
    f->timer = NULL;
}

void siptls__engine_set_timer(siptls__flow *f, uint64_t due)
{
    ev_timer *t = f->timer;
    siptls_engine *e = f->engine;
    if (due == 0) {
        if (ev_is_active(t)) {
            ev_timer_stop(e->loop, t);
        }
        f->timer_due_ms = 0;
        return;
    }
    uint64_t now = siptls__engine_now(e);
    double after = due > now ? (double)(due - now) / 1000.0 : 0.0;
    ev_timer_stop(e->loop, t);
    ev_timer_set(t, after, 0.0);
    ev_timer_start(e->loop, t);
    f->timer_due_ms = due;
}

int siptls__engine_timer_active(const siptls__flow *f)
{
    return f->timer != NULL && ev_is_active((ev_timer *)f->timer);
}

void siptls__flow_want(siptls__flow *f, int mask)
{
    if (f->fd < 0 || f->io_watcher == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return;
    }
    if (mask == f->want_mask) {
        return;
    }
    ev_io *w = f->io_watcher;
    ev_io_stop(f->engine->loop, w);
    f->want_mask = mask;
    if (mask != 0) {
        ev_io_set(w, f->fd,
                  ((mask & SIPTLS__IO_READ) ? EV_READ : 0) |
                      ((mask & SIPTLS__IO_WRITE) ? EV_WRITE : 0));
        ev_io_start(f->engine->loop, w);
    }
}

int siptls__flow_attach_fd(siptls__flow *f, int fd, int mask)
{
    if (f->io_watcher == NULL) {
        ev_io *io = calloc(1, sizeof(*io));
        if (io == NULL) {
            return SIPTLS_ERR_NOMEM;
        }
        ev_io_init(io, flow_io_cb, fd, EV_READ);
        io->data = f;
        f->io_watcher = io;
    }
    f->fd = fd;
    f->want_mask = -1;
    siptls__flow_want(f, mask);
    return SIPTLS_OK;
}

/* ------------------------------------------------------------------------ */
/* listeners                                                                */
/* ------------------------------------------------------------------------ */

static void listener_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    siptls__listener *l = w->data;
    siptls_engine *e = l->engine;
    siptls__engine_enter(e);
    l->ops->listener_io(l);
    siptls__engine_leave(e);
}

siptls_engine *siptls__listener_engine(const siptls__listener *l)
{
    return l->engine;
}

int siptls__listener_index(const siptls__listener *l)
{
    return l->index;
}

int siptls__listener_fd(const siptls__listener *l)
{
    return l->fd;
}

void siptls__listener_take_fd(siptls__listener *l)
{
    l->fd_taken = 1;
}

const struct sockaddr_storage *siptls__listener_addr(const siptls__listener *l, socklen_t *len)
{
    if (len != NULL) {
        *len = l->addrlen;
    }
    return &l->addr;
}

void *siptls__listener_tp(const siptls__listener *l)
{
    return l->tp;
}

void siptls__listener_set_tp(siptls__listener *l, void *tp)
{
    l->tp = tp;
}

struct WOLFSSL *siptls__listener_server_ssl(siptls__listener *l, const struct sockaddr *local)
{
    siptls__secctx *sec = siptls__engine_secctx(l->engine, l->ops->kind);
    return sec != NULL ? siptls__secctx_server_ssl(sec, local) : NULL;
}

unsigned siptls__listener_sec_gen(siptls__listener *l)
{
    return l->engine->sec_gen;
}

int siptls__listener_check_peer(siptls__listener *l, struct WOLFSSL *ssl)
{
    siptls__secctx *sec = siptls__engine_secctx(l->engine, l->ops->kind);
    return sec != NULL ? siptls__secctx_peer_check(sec, ssl, 1, NULL, NULL) : SIPTLS_ERR_CERT;
}

/* Close the listener's socket (unless its transport keeps it) and give up
 * its share of the port. */
static void listener_release(siptls_engine *e, siptls__listener *l)
{
    if (l->fd >= 0) {
        if (!l->fd_taken) {
            close(l->fd);
        }
        siptls__listener_unshare(e, l, l->ops->socktype);
        l->fd = -1;
    }
}

int siptls_listen(siptls_engine *e, const char *text)
{
    if (e == NULL || text == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls_uri u;
    int st = siptls_uri_parse(text, (uint16_t)e->cfg.tls_port, (uint16_t)e->cfg.dtls_port, 1, &u);
    if (st != SIPTLS_OK) {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': %s", text, siptls_strerror(st));
        return st;
    }
    if (siptls__engine_secctx(e, u.transport) == NULL) {
        return SIPTLS_ERR_CERT;
    }
    if (!siptls__secctx_has_server_cert(e->sec[u.transport])) {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': the default server domain has no certificate",
                    text);
        return SIPTLS_ERR_CERT;
    }
    siptls__addr bound;
    const char *why = NULL;
    st = siptls__addr_resolve(&u, 1, &bound, 1, &why);
    if (st < 0) {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': %s%s%s", text, siptls_strerror(st),
                    why ? ": " : "", why ? why : "");
        return st;
    }
    siptls__listener *l = calloc(1, sizeof(*l));
    ev_io *w = calloc(1, sizeof(*w));
    siptls__listener **arr = realloc(e->listeners, sizeof(*arr) * (size_t)(e->n_listeners + 1));
    if (arr != NULL) {
        e->listeners = arr;
    }
    if (l == NULL || w == NULL || arr == NULL) {
        free(l);
        free(w);
        return SIPTLS_ERR_NOMEM;
    }
    l->engine = e;
    l->ops = siptls__engine_ops(u.transport);
    l->uri = u;
    l->index = e->n_listeners;
    l->watcher = w;
    memcpy(&l->addr, &bound.ss, sizeof(l->addr));
    l->addrlen = bound.len;
    l->fd = siptls__listener_socket(e, l, l->ops->socktype);
    if (l->fd < 0) {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': %s (%s)", text,
                    siptls_strerror(SIPTLS_ERR_BIND), strerror(errno));
        free(l);
        free(w);
        return SIPTLS_ERR_BIND;
    }
    l->addrlen = sizeof(l->addr);
    getsockname(l->fd, (struct sockaddr *)&l->addr, &l->addrlen);
    errno = 0;
    st = l->ops->listen(l);
    if (st != SIPTLS_OK) {
        siptls__log(e, SIPTLS_LOG_ERR, "listen '%s': %s (%s)", text, siptls_strerror(st),
                    errno != 0 ? strerror(errno) : "no detail");
        listener_release(e, l);
        free(l);
        free(w);
        return st;
    }
    ev_io_init(w, listener_io_cb, l->fd, EV_READ);
    w->data = l;
    ev_io_start(e->loop, w);
    e->listeners[e->n_listeners++] = l;
    char at[64];
    siptls__addr_text((struct sockaddr *)&l->addr, at, sizeof(at));
    siptls__log(e, SIPTLS_LOG_INFO, "listening on %s:%s", l->ops->name, at);
    return l->index;
}

unsigned siptls_listener_port(const siptls_engine *e, int index)
{
    if (e == NULL || index < 0 || index >= e->n_listeners || e->listeners[index] == NULL) {
        return 0;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&e->listeners[index]->addr;
    if (sa->sa_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

int siptls_listener_count(const siptls_engine *e)
{
    return e ? e->n_listeners : 0;
}

static void close_listeners(siptls_engine *e)
{
    for (int i = 0; i < e->n_listeners; i++) {
        siptls__listener *l = e->listeners[i];
        if (l == NULL) {
            continue;
        }
        ev_io_stop(e->loop, l->watcher);
        l->ops->listener_close(l);
        listener_release(e, l);
        free(l->watcher);
        free(l);
        e->listeners[i] = NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* security contexts                                                        */
/* ------------------------------------------------------------------------ */

siptls__secctx *siptls__engine_secctx(siptls_engine *e, siptls_transport t)
{
    if (e->sec[t] == NULL) {
        if (siptls__secctx_new(&e->sec[t], &e->cfg, siptls__engine_ops(t)->dtls, log_cb, e) !=
            SIPTLS_OK) {
            e->sec[t] = NULL;
        }
    }
    return e->sec[t];
}

/* Parameters a reload does not apply that differ in the new
 * configuration (static names from the parameter table). */
typedef struct kept_params {
    const char *names[64];
    size_t n;
} kept_params;

static void note_kept(void *user, const char *name)
{
    kept_params *k = user;
    if (k->n < sizeof(k->names) / sizeof(k->names[0])) {
        k->names[k->n++] = name;
    }
}

static int has_listener(const siptls_engine *e, siptls_transport t)
{
    for (int i = 0; i < e->n_listeners; i++) {
        if (e->listeners[i] != NULL && e->listeners[i]->ops->kind == t) {
            return 1;
        }
    }
    return 0;
}

/* Build the security contexts of `cfg` for every transport the engine has
 * made one for, into `fresh`. Nothing changes in the engine. Returns
 * SIPTLS_OK or the first failure (logged, with `fresh` freed). */
static int build_secctx(siptls_engine *e, const siptls_config *cfg, siptls__secctx *fresh[3])
{
    const siptls__transport_ops *ops;
    for (size_t i = 0; (ops = siptls__transport_at(i)) != NULL; i++) {
        siptls_transport t = ops->kind;
        if (e->sec[t] == NULL) {
            continue; /* made on first use, from the configuration then */
        }
        int st = siptls__secctx_new(&fresh[t], cfg, ops->dtls, log_cb, e);
        if (st == SIPTLS_OK && has_listener(e, t) && !siptls__secctx_has_server_cert(fresh[t])) {
            siptls__log(e, SIPTLS_LOG_ERR,
                        "the default server domain has no certificate, which the %s listeners "
                        "need",
                        ops->name);
            st = SIPTLS_ERR_CERT;
        }
        if (st != SIPTLS_OK) {
            for (int k = 0; k < 3; k++) {
                siptls__secctx_free(fresh[k]);
                fresh[k] = NULL;
            }
            return st;
        }
    }
    return SIPTLS_OK;
}

/* The new contexts take the place of the old ones. Flows made from an
 * old context keep it (their reference) until they are freed; the
 * engine's reference goes. */
static void swap_secctx(siptls_engine *e, siptls__secctx *fresh[3])
{
    e->sec_gen++;
    for (int t = 0; t < 3; t++) {
        if (fresh[t] != NULL) {
            siptls__secctx_free(e->sec[t]);
            e->sec[t] = fresh[t];
        }
    }
}

int siptls_engine_reload(siptls_engine *e, const siptls_config *cfg)
{
    if (e == NULL || cfg == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    kept_params kept = {.n = 0};
    siptls_config next;
    int st = siptls__config_reload_merge(&next, &e->cfg, cfg, note_kept, &kept);
    siptls__secctx *fresh[3] = {NULL, NULL, NULL};
    if (st == SIPTLS_OK) {
        st = build_secctx(e, &next, fresh);
        if (st == SIPTLS_OK && siptls__domstat_prepare(e, &next) != SIPTLS_OK) {
            for (int t = 0; t < 3; t++) {
                siptls__secctx_free(fresh[t]);
            }
            st = SIPTLS_ERR_NOMEM;
        }
        if (st != SIPTLS_OK) {
            siptls_config_cleanup(&next);
        }
    }
    if (st != SIPTLS_OK) {
        siptls__log(e, SIPTLS_LOG_ERR,
                    "reload refused (%s): the configuration in use stays, unchanged",
                    siptls_strerror(st));
        return st;
    }
    /* Nothing can fail from here on. */
    swap_secctx(e, fresh);
    siptls_config_cleanup(&e->cfg);
    e->cfg = next;
    siptls__domstat_commit(e, &e->cfg);
    e->stats.reloads++;
    for (size_t i = 0; i < kept.n; i++) {
        siptls__log(e, SIPTLS_LOG_WARN,
                    "reload: '%s' differs in the new configuration: a reload does not apply it "
                    "(it keeps its value until the engine is created again)",
                    kept.names[i]);
    }
    size_t n_server = 0;
    for (size_t i = 0; i < e->cfg.n_domains; i++) {
        n_server += e->cfg.domains[i].is_server ? 1 : 0;
    }
    siptls__log(e, SIPTLS_LOG_INFO,
                "configuration reloaded: %zu server and %zu client TLS domains, %zu trusted "
                "domains; open flows keep the settings they started with",
                n_server, e->cfg.n_domains - n_server, e->cfg.n_trusted_domain);
    return SIPTLS_OK;
}

int siptls_engine_reload_certs(siptls_engine *e)
{
    siptls__secctx *fresh[3] = {NULL, NULL, NULL};
    if (build_secctx(e, &e->cfg, fresh) != SIPTLS_OK) {
        siptls__log(e, SIPTLS_LOG_ERR, "certificate reload failed: keeping the old certificates");
        return SIPTLS_ERR_CERT;
    }
    swap_secctx(e, fresh);
    e->stats.reloads++;
    siptls__log(e, SIPTLS_LOG_INFO, "certificates reloaded");
    return SIPTLS_OK;
}

/* ------------------------------------------------------------------------ */
/* engine                                                                   */
/* ------------------------------------------------------------------------ */

int siptls_engine_new(siptls_engine **out, struct ev_loop *loop, const siptls_config *cfg,
                      const siptls_callbacks *cb, void *user)
{
    if (out == NULL || loop == NULL || cfg == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *out = NULL;
    siptls_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    ev_prepare *prep = calloc(1, sizeof(*prep));
    ev_timer *retry = calloc(1, sizeof(*retry));
    if (prep == NULL || retry == NULL || siptls_config_copy(&e->cfg, cfg) != SIPTLS_OK) {
        free(prep);
        free(retry);
        free(e);
        return SIPTLS_ERR_NOMEM;
    }
    ev_timer_init(retry, retry_cb, 0.0, 0.0);
    retry->data = e;
    e->retry = retry;
    e->loop = loop;
    if (cb != NULL) {
        e->cb = *cb;
    }
    e->user = user;
    siptls__token_engine_init(e);
    ev_prepare_init(prep, prepare_cb);
    prep->data = e;
    e->prepare = prep;
    const siptls__transport_ops *ops;
    for (size_t i = 0; (ops = siptls__transport_at(i)) != NULL; i++) {
        ops->limits(&e->cfg, &e->lim[ops->kind]);
    }
    int st = siptls__backpressure_init(e);
    if (st != SIPTLS_OK) {
        siptls_engine_free(e);
        return st;
    }
    /* The mailbox of posts from other threads (threads.h) and its wakeup.
     * Unref'd: it does not keep ev_run() going by itself. */
    ev_async *as = calloc(1, sizeof(*as));
    if (as == NULL || siptls__mailbox_new(&e->mbox, &e->cfg) != SIPTLS_OK) {
        free(as);
        siptls_engine_free(e);
        return SIPTLS_ERR_NOMEM;
    }
    ev_async_init(as, async_cb);
    as->data = e;
    e->async = as;
    ev_async_start(loop, as);
    ev_unref(loop);
    if (siptls__table_grow(e) != SIPTLS_OK || siptls__domstat_prepare(e, &e->cfg) != SIPTLS_OK) {
        siptls_engine_free(e);
        return SIPTLS_ERR_NOMEM;
    }
    siptls__domstat_commit(e, &e->cfg);
    for (size_t i = 0; i < e->cfg.n_listen; i++) {
        st = siptls_listen(e, e->cfg.listen[i]);
        if (st < 0) {
            siptls_engine_free(e);
            return st;
        }
        /* A port 0 became the port the kernel gave: the configuration says
         * what is in use (a dump, and a reload with the same lines, which
         * is not a change). */
        siptls_uri u;
        char text[SIPTLS_URI_HOST_MAX + 32];
        if (siptls_config_listen_uri(&e->cfg, i, &u) == SIPTLS_OK && u.port == 0) {
            u.port = (uint16_t)siptls_listener_port(e, st);
            char *copy = siptls_uri_format(&u, text, sizeof(text)) >= 0 ? strdup(text) : NULL;
            if (copy != NULL) {
                free(e->cfg.listen[i]);
                e->cfg.listen[i] = copy;
            }
        }
    }
    *out = e;
    return SIPTLS_OK;
}

static void close_all(siptls_engine *e, int graceful)
{
    while (e->all != NULL) {
        siptls__flow *f = e->all;
        if (graceful && f->phase == SIPTLS__PHASE_UP) {
            f->ops->flush(f);
            f->ops->shutdown(f);
        }
        f->reason = SIPTLS_ERR_SHUTDOWN;
        if (f->phase == SIPTLS__PHASE_CLOSING) {
            f->phase = SIPTLS__PHASE_UP; /* let finalize run */
        }
        siptls__flow_finalize(f);
    }
}

int siptls_engine_shutdown(siptls_engine *e)
{
    siptls__engine_enter(e);
    /* Flows first: a DTLS session's close_notify goes out through its
     * listener's socket. */
    close_all(e, 1);
    close_listeners(e);
    siptls__engine_leave(e);
    return SIPTLS_OK;
}

void siptls_engine_free(siptls_engine *e)
{
    if (e == NULL) {
        return;
    }
    e->freeing = 1;
    /* Posts that have not run hear SIPTLS_ERR_SHUTDOWN, on this thread,
     * before the flows close (threads.h). */
    siptls__mailbox_close(e);
    siptls__engine_enter(e);
    close_all(e, 0);
    close_listeners(e);
    /* After the flows (their lookups are cancelled by then): the host's
     * own lookups hear SIPTLS_ERR_SHUTDOWN, the c-ares channel goes. */
    siptls__resolver_free(e);
    e->flush_list = NULL;
    siptls__engine_leave(e);
    siptls__linger_free_all(e);
    if (e->async != NULL) {
        ev_ref(e->loop); /* as libev asks: re-ref an unref'd watcher before stopping it */
        ev_async_stop(e->loop, e->async);
        free(e->async);
    }
    /* closed above: the callbacks of the flows closed since were refused
     * what they posted */
    siptls__mailbox_free(e->mbox);
    ev_prepare_stop(e->loop, e->prepare);
    free(e->prepare);
    ev_timer_stop(e->loop, e->retry);
    free(e->retry);
    for (int t = 0; t < 3; t++) {
        siptls__secctx_free(e->sec[t]);
    }
    siptls__domstat_free_all(e);
    free(e->listeners);
    free(e->by_id);
    free(e->by_addr);
    free(e->by_dest);
    siptls_config_cleanup(&e->cfg);
    free(e);
}

/* ------------------------------------------------------------------------ */
/* the host's calls on flows                                                */
/* ------------------------------------------------------------------------ */

int siptls_send(siptls_engine *e, siptls_flow_id id, const uint8_t *buf, size_t len)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_live(e, id);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    if (buf == NULL || len == 0 || len > e->cfg.max_msg_size) {
        return SIPTLS_ERR_INVAL;
    }
    if (siptls__flow_queue_full(f, len) && f->phase == SIPTLS__PHASE_UP &&
        f->send_blocked_since == 0) {
        /* The queue limits bound what waits for a socket that does not
         * take it, not what one wakeup produces (500 requests pipelined
         * on one trunk connection get 500 answers): write the queue out
         * now and look again. A failure found here closes the flow from
         * the loop, never inside this call. */
        e->host_call++;
        f->ops->flush(f);
        e->host_call--;
        if (f->pending_fail != 0) {
            return SIPTLS_ERR_GONE;
        }
    }
    int st =
        siptls__flow_queue_full(f, len) ? SIPTLS_ERR_QUEUE_FULL : siptls__flow_queue(f, buf, len);
    siptls__flow_after_send(f, st == SIPTLS_ERR_QUEUE_FULL);
    if (st != SIPTLS_OK) {
        if (st == SIPTLS_ERR_QUEUE_FULL) {
            SIPTLS__FLOW_COUNT(f, drop_queue_full, 1);
            siptls__flow_warn(
                f, st, "%s flow %llu: %s (%u messages, %zu bytes waiting to be written)",
                f->ops->name, (unsigned long long)id, siptls_strerror(st), f->q_count, f->q_bytes);
        }
        return st;
    }
    f->msgs_out++;
    SIPTLS__FLOW_COUNT(f, msgs_out, 1);
    if (f->phase == SIPTLS__PHASE_UP) {
        siptls__engine_schedule(f);
    }
    return SIPTLS_OK;
}

int siptls_close(siptls_engine *e, siptls_flow_id id)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_live(e, id);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    f->close_requested = 1;
    siptls__engine_schedule(f);
    return SIPTLS_OK;
}

int siptls_flow_get_info(siptls_engine *e, siptls_flow_id id, siptls_flow_info *info)
{
    if (e == NULL || info == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_by_id(e, id);
    if (f == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return SIPTLS_ERR_GONE;
    }
    memset(info, 0, sizeof(*info));
    info->id = f->id;
    info->transport = f->ops->kind;
    info->outbound = f->outbound;
    info->up = f->reported_up;
    memcpy(&info->remote, &f->remote, f->remote_len);
    memcpy(&info->local, &f->local, f->local_len);
    siptls__addr_text((struct sockaddr *)&f->remote, info->remote_text, sizeof(info->remote_text));
    if (f->local_len != 0) {
        siptls__addr_text((struct sockaddr *)&f->local, info->local_text, sizeof(info->local_text));
    }
    info->msgs_in = f->msgs_in;
    info->msgs_out = f->msgs_out;
    info->bytes_in = f->bytes_in;
    info->bytes_out = f->bytes_out;
    if (f->ops->info != NULL) {
        f->ops->info(f, info);
    }
    return SIPTLS_OK;
}

int siptls_flow_lookup(siptls_engine *e, siptls_transport transport, const struct sockaddr *addr,
                       socklen_t addrlen, siptls_flow_id *flow)
{
    (void)addrlen;
    if (e == NULL || addr == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_next_by_addr(e, transport, addr, NULL);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    if (flow != NULL) {
        *flow = f->id;
    }
    return SIPTLS_OK;
}

int siptls_flow_keepalive(siptls_engine *e, siptls_flow_id id, unsigned interval_s)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_live(e, id);
    if (f == NULL) {
        return SIPTLS_ERR_GONE;
    }
    f->keepalive_interval_ms = (uint64_t)interval_s * 1000;
    f->ping_sent_ms = 0;
    f->next_ping_ms = interval_s ? siptls__engine_now(e) + f->keepalive_interval_ms : 0;
    /* The deadline may move earlier: reset the timer outright. */
    f->timer_due_ms = 0;
    siptls__flow_rearm(f);
    return SIPTLS_OK;
}

void siptls_engine_stats(const siptls_engine *e, siptls_stats *st)
{
    if (e != NULL && st != NULL) {
        *st = e->stats;
    }
}
