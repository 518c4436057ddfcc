/* siptls CLI — the HTTP side of `serve --metrics` (see metrics.h): a
 * minimal HTTP/1.1 responder for Prometheus scrapes on a libev loop.
 *
 * It never blocks: non-blocking sockets, one watcher per connection, a
 * deadline per connection. Bounded: at most MAX_CONNS connections (more are
 * closed at once), a request of at most MAX_REQUEST bytes up to the end of
 * its headers (more: 431), CONN_TIMEOUT_S for the whole exchange. Every
 * answer says Connection: close (RFC 9112 §9.6) and the connection closes
 * after it: GET or HEAD /metrics (a query string is ignored) waits for the
 * metrics (the caller answers), another path gets 404, another method 405,
 * a request line that is not HTTP/1.x 400. A request body is never read. */
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"

#define MAX_CONNS 32
#define MAX_REQUEST 8192
#define CONN_TIMEOUT_S 10.0
#define LINGER_S 1.0

typedef enum conn_state {
    C_READING, /* the request, up to the end of its headers */
    C_WAITING, /* for the metrics */
    C_WRITING,
    C_LINGER /* answer sent, write side shut: reading to EOF before close */
} conn_state;

typedef struct conn {
    metrics_http *m;
    struct conn *prev, *next;
    int fd;
    conn_state state;
    int head; /* HEAD: no body */
    ev_io io;
    ev_timer timer;
    char req[MAX_REQUEST];
    size_t req_len;
    char *out;
    size_t out_len, out_off;
} conn;

struct metrics_http {
    struct ev_loop *loop;
    int fd;
    ev_io accept_io;
    ev_timer pause; /* accepting again after running out of descriptors */
    conn *conns;
    int n_conns;
    metrics_want_fn want;
    void *user;
};

/* ------------------------------------------------------------------------ */
/* connections                                                              */
/* ------------------------------------------------------------------------ */

static void conn_close(conn *c)
{
    metrics_http *m = c->m;
    ev_io_stop(m->loop, &c->io);
    ev_timer_stop(m->loop, &c->timer);
    close(c->fd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        m->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    m->n_conns--;
    free(c->out);
    free(c);
}

static void conn_watch(conn *c, int events)
{
    ev_io_stop(c->m->loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(c->m->loop, &c->io);
}

static void conn_write(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_watch(c, EV_WRITE);
            return;
        }
        conn_close(c);
        return;
    }
    /* All written. Shut our side and read what the client may still send
     * until it closes: closing with unread bytes would reset the
     * connection and could lose the answer at the client. */
    shutdown(c->fd, SHUT_WR);
    c->state = C_LINGER;
    ev_timer_stop(c->m->loop, &c->timer);
    ev_timer_set(&c->timer, LINGER_S, 0.0);
    ev_timer_start(c->m->loop, &c->timer);
    conn_watch(c, EV_READ);
}

/* Answer with `status` and `body`; closes after it. */
static void conn_answer(conn *c, const char *status, const char *extra_headers,
                        const char *content_type, const char *body, size_t body_len)
{
    char head[512];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                      "Connection: close\r\nCache-Control: no-store\r\n\r\n",
                      status, content_type, body_len, extra_headers);
    size_t blen = c->head ? 0 : body_len;
    free(c->out);
    c->out = malloc((size_t)hn + blen);
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->out, head, (size_t)hn);
    memcpy(c->out + hn, body, blen);
    c->out_len = (size_t)hn + blen;
    c->out_off = 0;
    c->state = C_WRITING;
    conn_write(c);
}

static void answer_text(conn *c, const char *status, const char *extra, const char *text)
{
    conn_answer(c, status, extra, "text/plain; charset=utf-8", text, strlen(text));
}

/* The request's headers are complete: its request line decides. */
static void conn_request(conn *c)
{
    char *eol = memchr(c->req, '\n', c->req_len);
    size_t line_len = eol != NULL ? (size_t)(eol - c->req) : 0;
    if (line_len > 0 && c->req[line_len - 1] == '\r') {
        line_len--;
    }
    char line[512];
    if (line_len == 0 || line_len >= sizeof(line)) {
        answer_text(c, "400 Bad Request", "", "bad request line\n");
        return;
    }
    memcpy(line, c->req, line_len);
    line[line_len] = '\0';
    /* RFC 9112 §3: method SP request-target SP HTTP-version */
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        answer_text(c, "400 Bad Request", "", "bad request line\n");
        return;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    const char *method = line, *target = sp1 + 1;
    c->head = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !c->head) {
        answer_text(c, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", "GET or HEAD only\n");
        return;
    }
    size_t path_len = strcspn(target, "?");
    if (path_len != 8 || strncmp(target, "/metrics", 8) != 0) {
        answer_text(c, "404 Not Found", "", "not found: the metrics are at /metrics\n");
        return;
    }
    c->state = C_WAITING;
    ev_io_stop(c->m->loop, &c->io);
    c->m->want(c->m, c->m->user);
}

static void conn_read(conn *c)
{
    for (;;) {
        if (c->state == C_LINGER) {
            char sink[1024];
            ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
            if (n > 0 || (n < 0 && errno == EINTR)) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            conn_close(c); /* EOF or error: done */
            return;
        }
        if (c->req_len == sizeof(c->req)) {
            answer_text(c, "431 Request Header Fields Too Large", "", "request too large\n");
            return;
        }
        ssize_t n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            conn_close(c); /* gone before it asked for anything */
            return;
        }
        size_t from = c->req_len >= 3 ? c->req_len - 3 : 0;
        c->req_len += (size_t)n;
        for (size_t i = from; i < c->req_len; i++) {
            /* the end of the headers: CRLF CRLF, or LF LF (RFC 9112 §2.2
             * allows a bare LF as a line terminator) */
            if (c->req[i] == '\n' && ((i >= 1 && c->req[i - 1] == '\n') ||
                                      (i >= 3 && c->req[i - 1] == '\r' && c->req[i - 2] == '\n'))) {
                conn_request(c);
                return;
            }
        }
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    conn *c = w->data;
    if ((revents & EV_WRITE) && c->state == C_WRITING) {
        conn_write(c);
        return;
    }
    if (revents & EV_READ) {
        conn_read(c);
    }
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn *c = w->data;
    if (c->state == C_WAITING) {
        /* the metrics did not come in time: say so rather than hang up */
        ev_timer_set(&c->timer, LINGER_S + 1.0, 0.0);
        ev_timer_start(c->m->loop, &c->timer);
        answer_text(c, "503 Service Unavailable", "", "the workers did not answer in time\n");
        return;
    }
    conn_close(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    metrics_http *m = w->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the listener stays readable: do not spin on it */
                ev_io_stop(loop, &m->accept_io);
                ev_timer_start(loop, &m->pause);
            }
            return; /* EAGAIN, or an error of one connection: the next wakeup */
        }
        conn *c = m->n_conns < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
        if (c == NULL) {
            close(fd); /* too many at once: shed */
            continue;
        }
        c->m = m;
        c->fd = fd;
        c->state = C_READING;
        ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
        c->io.data = c;
        ev_timer_init(&c->timer, conn_timer_cb, CONN_TIMEOUT_S, 0.0);
        c->timer.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_start(loop, &c->timer);
        c->next = m->conns;
        if (m->conns != NULL) {
            m->conns->prev = c;
        }
        m->conns = c;
        m->n_conns++;
    }
}

static void pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    metrics_http *m = w->data;
    ev_io_start(loop, &m->accept_io);
}

/* ------------------------------------------------------------------------ */
/* public                                                                   */
/* ------------------------------------------------------------------------ */

/* ADDR:PORT or [V6]:PORT, numeric only (no name lookup that could block),
 * PORT 0..65535 in decimal: the address in *res (freeaddrinfo), or -1 and
 * why. */
static int parse_addrport(const char *addrport, struct addrinfo **res, char *why, size_t why_len)
{
    char host[64];
    const char *colon = strrchr(addrport, ':');
    const char *h = addrport;
    size_t hl = colon != NULL ? (size_t)(colon - addrport) : 0;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (colon == NULL || hl == 0 || hl >= sizeof(host) || colon[1] == '\0') {
        snprintf(why, why_len, "'%s': want ADDR:PORT (a numeric address, [v6] in brackets)",
                 addrport);
        return -1;
    }
    const char *port = colon + 1;
    size_t pl = strspn(port, "0123456789");
    if (pl == 0 || pl > 5 || port[pl] != '\0' || strtol(port, NULL, 10) > 65535) {
        snprintf(why, why_len, "'%s': bad port '%s' (want 0..65535; 0: any free port)", addrport,
                 port);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    *res = NULL;
    int rc = getaddrinfo(host, port, &hints, res);
    if (rc != 0 || *res == NULL) {
        snprintf(why, why_len, "'%s': %s", addrport,
                 rc == EAI_NONAME ? "not a numeric address"
                 : rc != 0        ? gai_strerror(rc)
                                  : "no address");
        if (*res != NULL) {
            freeaddrinfo(*res);
        }
        return -1;
    }
    return 0;
}

int metrics_addr_check(const char *addrport, char *why, size_t why_len)
{
    struct addrinfo *res = NULL;
    if (parse_addrport(addrport, &res, why, why_len) != 0) {
        return -1;
    }
    freeaddrinfo(res);
    return 0;
}

int metrics_http_new(metrics_http **out, struct ev_loop *loop, const char *addrport,
                     metrics_want_fn want, void *user, char *bound, size_t bound_len, char *why,
                     size_t why_len)
{
    *out = NULL;
    struct addrinfo *res = NULL;
    if (parse_addrport(addrport, &res, why, why_len) != 0) {
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(why, why_len, "'%s': %s", addrport, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ah[64] = "?", ap[16] = "0";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        getnameinfo((struct sockaddr *)&ss, sl, ah, sizeof(ah), ap, sizeof(ap),
                    NI_NUMERICHOST | NI_NUMERICSERV);
    }
    if (ss.ss_family == AF_INET6) {
        snprintf(bound, bound_len, "[%s]:%s", ah, ap);
    } else {
        snprintf(bound, bound_len, "%s:%s", ah, ap);
    }
    metrics_http *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        close(fd);
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    m->loop = loop;
    m->fd = fd;
    m->want = want;
    m->user = user;
    ev_io_init(&m->accept_io, accept_cb, fd, EV_READ);
    m->accept_io.data = m;
    ev_io_start(loop, &m->accept_io);
    ev_timer_init(&m->pause, pause_cb, 1.0, 0.0);
    m->pause.data = m;
    *out = m;
    return 0;
}

void metrics_http_reply(metrics_http *m, const char *body, size_t len)
{
    conn *c = m->conns;
    while (c != NULL) {
        conn *next = c->next; /* an answer may close c */
        if (c->state == C_WAITING) {
            conn_answer(c, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8", body, len);
        }
        c = next;
    }
}

void metrics_http_fail(metrics_http *m, const char *reason)
{
    conn *c = m->conns;
    while (c != NULL) {
        conn *next = c->next;
        if (c->state == C_WAITING) {
            answer_text(c, "503 Service Unavailable", "", reason);
        }
        c = next;
    }
}

int metrics_http_waiting(const metrics_http *m)
{
    int n = 0;
    for (const conn *c = m->conns; c != NULL; c = c->next) {
        n += c->state == C_WAITING;
    }
    return n;
}

void metrics_http_free(metrics_http *m)
{
    if (m == NULL) {
        return;
    }
    while (m->conns != NULL) {
        conn_close(m->conns);
    }
    ev_io_stop(m->loop, &m->accept_io);
    ev_timer_stop(m->loop, &m->pause);
    close(m->fd);
    free(m);
}
