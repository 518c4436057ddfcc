/* siptls — listening sockets, and who may share their port.
 *
 * Several engines of one process (one per thread, `reuse_port = 1`, as
 * `siptls serve --workers N` runs) share a listening port with SO_REUSEPORT
 * and the kernel spreads connections and DTLS peers over them. No other
 * process may join them: a second `siptls serve` started by mistake on the
 * same port must fail with "address already in use", not take half of the
 * traffic. SO_REUSEPORT alone cannot say that (any process of the same
 * user may join a group), so the first engine of this process to bind an
 * address checks that nobody holds it, and holds a lock for it while any of
 * its engines listens there:
 *
 *  1. an abstract unix socket named after the address (one per network
 *     namespace, like the port itself; the kernel releases it when the
 *     process dies) — two siptls processes starting at the same moment
 *     cannot both get it;
 *  2. a probe bind of the address without SO_REUSEPORT — fails when any
 *     socket holds the port, whatever program it belongs to.
 *
 * The registry below is the one piece of process-wide state of the
 * library: a port is a process-wide resource, and the engines that share
 * one need not know each other. It is guarded by a mutex (engines may
 * start on several threads at once). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine_internal.h"

typedef struct port_share {
    struct port_share *next;
    int type; /* SOCK_STREAM / SOCK_DGRAM */
    struct sockaddr_storage addr;
    unsigned refs;
    int lock_fd;
    pid_t pid; /* a forked child inherits a copy of the registry: not its own */
} port_share;

static pthread_mutex_t g_share_lock = PTHREAD_MUTEX_INITIALIZER;
static port_share *g_shares;

static port_share *share_find(int type, const struct sockaddr *sa)
{
    pid_t me = getpid();
    for (port_share *s = g_shares; s != NULL; s = s->next) {
        if (s->pid == me && s->type == type &&
            siptls__addr_equal((struct sockaddr *)&s->addr, sa)) {
            return s;
        }
    }
    return NULL;
}

/* The abstract unix socket that says "a siptls process listens here". */
static int take_lock(int type, const struct sockaddr *sa)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    char text[64];
    siptls__addr_text(sa, text, sizeof(text));
    int n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "siptls-port/%s/%s",
                     type == SOCK_STREAM ? "tcp" : "udp", text);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (bind(fd, (struct sockaddr *)&un, len) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int new_socket(int family, int type, int host_any, int reuse_port)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1, zero = 0;
    if (type == SOCK_STREAM) {
        /* TCP: rebind over connections in TIME_WAIT after a restart. (Not
         * on UDP, where SO_REUSEADDR lets another socket share the port.) */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (reuse_port) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (family == AF_INET6 && host_any) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    return fd;
}

/* Is the port free for us? A bind without SO_REUSEPORT fails when any
 * socket holds it (another program, or a siptls that shares it among its
 * own engines). */
static int probe_free(const siptls__listener *l, int type)
{
    int fd = new_socket(l->addr.ss_family, type, l->uri.host_kind == SIPTLS_HOST_ANY, 0);
    if (fd < 0) {
        return -1;
    }
    int rc = bind(fd, (const struct sockaddr *)&l->addr, l->addrlen);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                    : ((const struct sockaddr_in6 *)ss)->sin6_port;
}

int siptls__listener_socket(siptls_engine *e, siptls__listener *l, int type)
{
    const siptls_config *c = siptls__engine_config(e);
    int host_any = l->uri.host_kind == SIPTLS_HOST_ANY;
    if (!c->reuse_port) {
        /* Alone on the port: a second engine or process gets EADDRINUSE. */
        int fd = new_socket(l->addr.ss_family, type, host_any, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&l->addr, l->addrlen) != 0) {
            int saved = errno;
            if (fd >= 0) {
                close(fd);
            }
            errno = saved;
            return -1;
        }
        return fd;
    }
    pthread_mutex_lock(&g_share_lock);
    int fd = -1;
    port_share *s = port_of(&l->addr) != 0 ? share_find(type, (struct sockaddr *)&l->addr) : NULL;
    port_share *fresh = NULL;
    if (s == NULL) {
        /* The first engine of this process on this address. */
        fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL) {
            errno = ENOMEM;
            goto out;
        }
        fresh->lock_fd = -1;
        if (port_of(&l->addr) != 0) {
            fresh->lock_fd = take_lock(type, (struct sockaddr *)&l->addr);
            if (fresh->lock_fd < 0 || probe_free(l, type) != 0) {
                errno = EADDRINUSE;
                goto out;
            }
        }
    }
    fd = new_socket(l->addr.ss_family, type, host_any, 1);
    if (fd < 0 || bind(fd, (struct sockaddr *)&l->addr, l->addrlen) != 0) {
        int saved = errno;
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
        errno = saved;
        goto out;
    }
    if (fresh != NULL) {
        /* Port 0: the kernel chose; engines that bind the port it gave
         * later join this entry. */
        socklen_t len = sizeof(fresh->addr);
        getsockname(fd, (struct sockaddr *)&fresh->addr, &len);
        if (fresh->lock_fd < 0) {
            fresh->lock_fd = take_lock(type, (struct sockaddr *)&fresh->addr);
        }
        fresh->type = type;
        fresh->pid = getpid();
        fresh->refs = 1;
        fresh->next = g_shares;
        g_shares = fresh;
        fresh = NULL;
    } else {
        s->refs++;
    }
out:
    if (fresh != NULL) {
        int saved = errno;
        if (fresh->lock_fd >= 0) {
            close(fresh->lock_fd);
        }
        free(fresh);
        errno = saved;
    }
    pthread_mutex_unlock(&g_share_lock);
    return fd;
}

void siptls__listener_unshare(siptls_engine *e, siptls__listener *l, int type)
{
    if (!siptls__engine_config(e)->reuse_port) {
        return;
    }
    pthread_mutex_lock(&g_share_lock);
    for (port_share **pp = &g_shares; *pp != NULL; pp = &(*pp)->next) {
        port_share *s = *pp;
        if (s->pid == getpid() && s->type == type &&
            siptls__addr_equal((struct sockaddr *)&s->addr, (struct sockaddr *)&l->addr)) {
            if (--s->refs == 0) {
                *pp = s->next;
                if (s->lock_fd >= 0) {
                    close(s->lock_fd);
                }
                free(s);
            }
            break;
        }
    }
    pthread_mutex_unlock(&g_share_lock);
}
