/* siptls tests — dnsmasq on loopback with a zone of the test's own. */
#include "dnsserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define MAX_ARGS 64
#define PROBE_NAME "probe.siptls.test"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A port free for both UDP and TCP on 127.0.0.1 right now (dnsmasq needs
 * both; it cannot bind port 0 and tell us). */
static unsigned free_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        socklen_t al = sizeof(a);
        if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(u, (struct sockaddr *)&a, &al) != 0) {
            if (u >= 0) {
                close(u);
            }
            continue;
        }
        int t = socket(AF_INET, SOCK_STREAM, 0);
        int ok = t >= 0 && bind(t, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (t >= 0) {
            close(t);
        }
        close(u);
        if (ok) {
            return ntohs(a.sin_port);
        }
    }
    return 0;
}

/* One A query for PROBE_NAME; 1 when a NOERROR answer with a record came. */
static int probe(unsigned port)
{
    uint8_t q[64];
    size_t n = 0;
    static const uint8_t hdr[12] = {0x51, 0x7e, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(q, hdr, sizeof(hdr));
    n = sizeof(hdr);
    const char *name = PROBE_NAME;
    while (*name != '\0') {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        q[n++] = (uint8_t)l;
        memcpy(q + n, name, l);
        n += l;
        name += l + (dot ? 1 : 0);
    }
    static const uint8_t tail[5] = {0, 0, 1, 0, 1}; /* root, type A, class IN */
    memcpy(q + n, tail, sizeof(tail));
    n += sizeof(tail);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (sendto(fd, q, n, 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)n) {
        struct pollfd p = {fd, POLLIN, 0};
        uint8_t r[512];
        if (poll(&p, 1, 200) == 1) {
            ssize_t got = recv(fd, r, sizeof(r), 0);
            ok = got >= 12 && r[0] == 0x51 && r[1] == 0x7e && (r[3] & 0x0f) == 0 &&
                 (r[6] != 0 || r[7] != 0);
        }
    }
    close(fd);
    return ok;
}

static pid_t spawn(unsigned port, const char *const *records)
{
    char port_arg[32];
    snprintf(port_arg, sizeof(port_arg), "--port=%u", port);
    const char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = "dnsmasq";
    argv[n++] = "--keep-in-foreground";
    argv[n++] = "--conf-file=/dev/null";
    argv[n++] = "--no-resolv";
    argv[n++] = "--no-hosts";
    argv[n++] = "--no-poll";
    argv[n++] = "--no-negcache";
    argv[n++] = "--listen-address=127.0.0.1";
    argv[n++] = "--bind-interfaces";
    argv[n++] = "--pid-file=";
    argv[n++] = "--local=/siptls.test/";
    argv[n++] = "--local=/example.test/";
    argv[n++] = "--host-record=" PROBE_NAME ",127.0.0.2";
    argv[n++] = port_arg;
    int debug = getenv("SIPTLS_TEST_DEBUG") != NULL;
    if (debug) {
        argv[n++] = "--log-queries";
        argv[n++] = "--log-facility=-";
    }
    for (size_t i = 0; records != NULL && records[i] != NULL && n < MAX_ARGS - 1; i++) {
        argv[n++] = records[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    /* The child: none of the test's descriptors (a socket of ours held
     * open here would never close), quiet unless debugging. */
    for (int fd = 3; fd < 4096; fd++) {
        close(fd);
    }
    if (!debug) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
            close(null);
        }
    }
    execvp("dnsmasq", (char *const *)argv);
    _exit(127);
}

void tu_dns_start(tu_dns *d, const char *const *records)
{
    memset(d, 0, sizeof(*d));
    for (int attempt = 0; attempt < 5; attempt++) {
        unsigned port = free_port();
        if (port == 0) {
            fail_msg("dnsmasq: no free port on 127.0.0.1");
        }
        pid_t pid = spawn(port, records);
        if (pid < 0) {
            fail_msg("dnsmasq: fork: %s", strerror(errno));
        }
        double deadline = now_s() + 10.0;
        int status = 0;
        int exited = 0;
        while (now_s() < deadline) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                exited = 1;
                break;
            }
            if (probe(port)) {
                d->pid = pid;
                d->port = port;
                snprintf(d->server, sizeof(d->server), "127.0.0.1:%u", port);
                return;
            }
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("dnsmasq on port %u did not answer within 10 s", port);
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
            fail_msg("dnsmasq: cannot run it (apt-get install dnsmasq-base)");
        }
        /* the port was taken between our check and its bind: another */
    }
    fail_msg("dnsmasq: could not start (5 attempts)");
}

void tu_dns_stop(tu_dns *d)
{
    if (d->pid <= 0) {
        return;
    }
    kill(d->pid, SIGTERM);
    int status;
    double deadline = now_s() + 5.0;
    while (waitpid(d->pid, &status, WNOHANG) == 0) {
        if (now_s() > deadline) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    d->pid = 0;
}

int tu_dns_silent(char *server)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    snprintf(server, 32, "127.0.0.1:%u", ntohs(a.sin_port));
    return fd;
}
