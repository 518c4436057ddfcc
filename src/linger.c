/* siptls — lingering close of a refused TCP connection.
 *
 * A server that refuses a handshake sends its fatal alert and closes. The
 * client is still sending its flight (and, in TLS 1.3, its first request):
 * bytes that arrive after close() make our kernel answer with a reset, and
 * a reset makes the client's kernel drop what we sent last, often before
 * the client reads it: the client sees "connection reset" instead of the
 * alert that says why. So such a socket is half-closed (FIN after the
 * alert) and read and discarded until the client closes too, for at most
 * LINGER_MS, and at most LINGER_MAX at once per engine (beyond that, or
 * while the engine is being freed, it is closed at once). The same idea as
 * Apache's lingering close. */
#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine_internal.h"

#define LINGER_MS 2000
#define LINGER_MAX 64

typedef struct linger_fd {
    ev_io io;
    ev_timer timer;
    int fd;
    siptls_engine *e;
    struct linger_fd *prev, *next;
} linger_fd;

/* Read and discard what is there. Returns 1 when the peer is done (EOF or
 * an error), 0 when it may still send. */
static int drain(int fd)
{
    char sink[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n > 0) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return 0;
        }
        return 1;
    }
    return 0;
}

static void linger_end(linger_fd *l)
{
    siptls_engine *e = l->e;
    ev_io_stop(e->loop, &l->io);
    ev_timer_stop(e->loop, &l->timer);
    close(l->fd);
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        e->lingering = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    e->n_lingering--;
    free(l);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    linger_fd *l = w->data;
    if (drain(l->fd)) {
        linger_end(l);
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    linger_end(w->data);
}

void siptls__linger_close(siptls_engine *e, int fd)
{
    if (fd < 0) {
        return;
    }
    linger_fd *l = NULL;
    if (shutdown(fd, SHUT_WR) != 0 || drain(fd) || e->freeing || e->n_lingering >= LINGER_MAX ||
        (l = calloc(1, sizeof(*l))) == NULL) {
        close(fd);
        return;
    }
    l->fd = fd;
    l->e = e;
    ev_io_init(&l->io, on_io, fd, EV_READ);
    l->io.data = l;
    ev_timer_init(&l->timer, on_timer, LINGER_MS / 1000.0, 0.0);
    l->timer.data = l;
    ev_io_start(e->loop, &l->io);
    ev_timer_start(e->loop, &l->timer);
    l->next = e->lingering;
    if (l->next != NULL) {
        l->next->prev = l;
    }
    e->lingering = l;
    e->n_lingering++;
}

void siptls__linger_free_all(siptls_engine *e)
{
    while (e->lingering != NULL) {
        linger_end(e->lingering);
    }
}
