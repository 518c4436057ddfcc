/* resume_clients — N distinct clients, each making one full handshake and
 * then, after all N have, resuming once: how many resumptions a server
 * (`siptls serve`) really grants when thousands of clients come back
 * (issue 10 item 4; docs/benchmarks.md "Resumption for thousands of
 * clients"). `siptls bench --mode resume` cannot do this: its engine keeps
 * one session per destination, so all its connections resume the same,
 * latest session. Run by hand, not by CI (tests/perf/resume-clients.sh
 * builds it against the wolfSSL siptls uses and starts the server):
 *
 *   resume_clients HOST PORT MODE N
 *
 * MODE: tls12 (TLS 1.2 by session id: the server's session cache),
 * tls12-ticket (TLS 1.2 offering RFC 5077 tickets), tls13 (TLS 1.3
 * tickets), dtls12 (DTLS 1.2 by session id: the server's session cache).
 * Each connection sends one OPTIONS and reads the answer (so that a TLS 1.3
 * ticket has arrived), sends close_notify and waits for the server to close
 * (the server then holds TIME_WAIT, not us: 20,000 connections would
 * exhaust our ephemeral ports). Sequential, one thread; every socket
 * operation has a 5 s timeout. The server certificate is not verified
 * (that is not what is measured). Prints one line:
 *
 *   MODE N=10000 full=10000 resumed=9990 (99.90 %) errors=0 full_s=.. resume_s=..
 *
 * Exit status 0 when every handshake worked, 1 otherwise, 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>

#include <wolfssl/ssl.h>

enum { M_TLS12, M_TLS12_TICKET, M_TLS13, M_DTLS12 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_socket(const struct sockaddr_in *to, int dgram)
{
    int fd = socket(AF_INET, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (!dgram) {
        /* wolfSSL writes a TLS 1.2 flight in several send() calls: without
         * this Nagle holds the last one for the server's delayed ACK */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One connection: handshake (with `sess` offered when not NULL), one
 * OPTIONS -> 200, close. Returns 0 ok, -1 failed; *reused and *out (the
 * session to keep, may be NULL) on success. */
static int one(WOLFSSL_CTX *ctx, const struct sockaddr_in *to, int mode, unsigned i,
               WOLFSSL_SESSION *sess, int *reused, WOLFSSL_SESSION **out)
{
    int dgram = mode == M_DTLS12;
    int fd = open_socket(to, dgram);
    if (fd < 0) {
        return -1;
    }
    WOLFSSL *ssl = wolfSSL_new(ctx);
    int rc = -1;
    if (ssl == NULL) {
        goto out;
    }
    if (mode == M_TLS12_TICKET) {
        wolfSSL_UseSessionTicket(ssl);
    }
    wolfSSL_set_fd(ssl, fd);
    if (dgram) {
        wolfSSL_dtls_set_peer(ssl, (void *)to, sizeof(*to));
    }
    if (sess != NULL && wolfSSL_set_session(ssl, sess) != WOLFSSL_SUCCESS) {
        goto out;
    }
    if (wolfSSL_connect(ssl) != WOLFSSL_SUCCESS) {
        goto out;
    }
    *reused = wolfSSL_session_reused(ssl) == 1;
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "OPTIONS sip:localhost SIP/2.0\r\n"
                     "Via: SIP/2.0/%s 127.0.0.1;branch=z9hG4bK%u%c\r\n"
                     "Max-Forwards: 70\r\nFrom: <sip:r@127.0.0.1>;tag=%u\r\n"
                     "To: <sip:localhost>\r\nCall-ID: %u-%c@resume\r\nCSeq: 1 OPTIONS\r\n"
                     "Content-Length: 0\r\n\r\n",
                     dgram ? "DTLS" : "TLS", i, sess ? 'r' : 'f', i, i, sess ? 'r' : 'f');
    if (wolfSSL_write(ssl, req, n) != n) {
        goto out;
    }
    char buf[2048];
    int got = wolfSSL_read(ssl, buf, sizeof(buf) - 1);
    if (got < 12 || memcmp(buf, "SIP/2.0 200", 11) != 0) {
        goto out;
    }
    if (out != NULL) {
        *out = wolfSSL_get1_session(ssl);
    }
    rc = 0;
    wolfSSL_shutdown(ssl);
    if (!dgram) {
        /* the server closes first: its TIME_WAIT, not ours */
        char c;
        while (recv(fd, &c, 1, 0) > 0) {
        }
    }
out:
    if (ssl != NULL) {
        wolfSSL_free(ssl);
    }
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: resume_clients HOST PORT tls12|tls12-ticket|tls13|dtls12 N\n");
        return 2;
    }
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)atoi(argv[2]));
    int mode = strcmp(argv[3], "tls12") == 0          ? M_TLS12
               : strcmp(argv[3], "tls12-ticket") == 0 ? M_TLS12_TICKET
               : strcmp(argv[3], "tls13") == 0        ? M_TLS13
               : strcmp(argv[3], "dtls12") == 0       ? M_DTLS12
                                                      : -1;
    long n = strtol(argv[4], NULL, 10);
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 || mode < 0 || n <= 0 || n > 1000000) {
        fprintf(stderr, "resume_clients: bad arguments\n");
        return 2;
    }
    wolfSSL_Init();
    WOLFSSL_METHOD *m = mode == M_DTLS12  ? wolfDTLSv1_2_client_method()
                        : mode == M_TLS13 ? wolfTLSv1_3_client_method()
                                          : wolfTLSv1_2_client_method();
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(m);
    if (ctx == NULL) {
        return 1;
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    WOLFSSL_SESSION **sess = calloc((size_t)n, sizeof(*sess));
    if (sess == NULL) {
        return 1;
    }
    long full = 0, resumed = 0, errors = 0, offered = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int r = 0;
        if (one(ctx, &to, mode, (unsigned)i, NULL, &r, &sess[i]) == 0) {
            full++;
        } else {
            errors++;
        }
    }
    double t1 = now_s();
    for (long i = 0; i < n; i++) {
        if (sess[i] == NULL) {
            continue;
        }
        offered++;
        int r = 0;
        if (one(ctx, &to, mode, (unsigned)i, sess[i], &r, NULL) == 0) {
            resumed += r;
        } else {
            errors++;
        }
        wolfSSL_SESSION_free(sess[i]);
    }
    double t2 = now_s();
    printf("%s N=%ld full=%ld offered=%ld resumed=%ld (%.2f %%) errors=%ld full_s=%.1f "
           "resume_s=%.1f\n",
           argv[3], n, full, offered, resumed, 100.0 * (double)resumed / (double)n, errors, t1 - t0,
           t2 - t1);
    free(sess);
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
    return errors == 0 ? 0 : 1;
}
