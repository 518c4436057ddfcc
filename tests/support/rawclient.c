/* siptls tests — scripted blocking TLS client on a thread (rawclient.h). */
#include "rawclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "siptls/siptls.h"
#include "testutil.h"

static void append(tu_raw *r, const uint8_t *p, size_t n)
{
    if (r->got_len + n > r->got_cap) {
        /* doubling: a realloc per read copies megabytes per read (under
         * ASan, which never grows in place, long enough to stall the
         * reader past a server's tls_send_timeout) */
        size_t cap = r->got_cap != 0 ? r->got_cap : 65536;
        while (cap < r->got_len + n) {
            cap *= 2;
        }
        uint8_t *g = realloc(r->got, cap);
        if (g == NULL) {
            return;
        }
        r->got = g;
        r->got_cap = cap;
    }
    memcpy(r->got + r->got_len, p, n);
    r->got_len += n;
}

static void cork(int fd, int on)
{
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static void *raw_main(void *arg)
{
    tu_raw *r = arg;
    WOLFSSL_METHOD *m = r->version == 12   ? wolfTLSv1_2_client_method()
                        : r->version == 13 ? wolfTLSv1_3_client_method()
                                           : wolfSSLv23_client_method();
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(m);
    wolfSSL_CTX_load_verify_locations(ctx, tu_pki("ca.pem"), NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && r->rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &r->rcvbuf, sizeof(r->rcvbuf));
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)r->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    WOLFSSL *ssl = NULL;
    if (ctx == NULL || fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        goto out;
    }
    __atomic_store_n(&r->sock, fd + 1, __ATOMIC_SEQ_CST);
    ssl = wolfSSL_new(ctx);
    wolfSSL_set_fd(ssl, fd);
    r->handshake_ok = wolfSSL_connect(ssl) == WOLFSSL_SUCCESS;
    if (!r->handshake_ok) {
        goto out;
    }
    if (r->wire_record != 0) {
        r->wire_ok = wolfSSL_GetOutputSize(ssl, (int)r->write_size) == (int)r->wire_record;
    }
    if (r->hold_s > 0) {
        usleep((useconds_t)(r->hold_s * 1e6));
    }
    if (r->same_segment) {
        cork(fd, 1);
    }
    size_t step = r->write_size ? r->write_size : r->len;
    for (size_t off = 0, n = 0; r->data != NULL && off < r->len; off += n) {
        n = off == 0 && r->first_write != 0 ? r->first_write : step;
        n = off + n > r->len ? r->len - off : n;
        if (wolfSSL_write(ssl, r->data + off, (int)n) != (int)n) {
            break;
        }
        if (r->pause_s > 0 && off + n < r->len) {
            usleep((useconds_t)(r->pause_s * 1e6));
        }
    }
    switch (r->end) {
    case TU_RAW_END_CLOSE_NOTIFY:
        wolfSSL_shutdown(ssl);
        break;
    case TU_RAW_END_FIN:
        shutdown(fd, SHUT_WR);
        break;
    case TU_RAW_END_CLOSE:
        close(fd);
        fd = -1;
        goto out;
    default:
        break;
    }
    if (r->same_segment) {
        cork(fd, 0);
    }
    uint8_t buf[16384];
    double last = -1;
    for (;;) {
        int n = wolfSSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        /* the longest time this reader went without reading (after the
         * first read): a starved test thread is not a steady reader */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        if (last >= 0 && now - last > r->max_gap_s) {
            r->max_gap_s = now - last;
        }
        last = now;
        append(r, buf, (size_t)n);
        if (r->read_pause_s > 0) {
            usleep((useconds_t)(r->read_pause_s * 1e6));
        }
        if ((r->expect_msgs != 0 && tu_raw_count_responses(r, NULL) >= r->expect_msgs) ||
            (r->expect_bytes != 0 && r->got_len >= r->expect_bytes)) {
            wolfSSL_shutdown(ssl);
            break;
        }
    }
out:
    if (ssl != NULL) {
        wolfSSL_free(ssl);
    }
    if (fd >= 0) {
        __atomic_store_n(&r->sock, 0, __ATOMIC_SEQ_CST);
        close(fd);
    }
    wolfSSL_CTX_free(ctx);
    siptls_thread_cleanup();
    __atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int raw_done(void *arg)
{
    return __atomic_load_n(&((tu_raw *)arg)->done, __ATOMIC_SEQ_CST);
}

void tu_raw_start(tu_raw *r)
{
    assert_int_equal(pthread_create(&r->thread, NULL, raw_main, r), 0);
}

void tu_raw_wait(struct ev_loop *loop, tu_raw *r, double timeout_s)
{
    if (!tu_run_wait(loop, raw_done, r, timeout_s)) {
        int sock = __atomic_load_n(&r->sock, __ATOMIC_SEQ_CST);
        if (sock > 0) {
            shutdown(sock - 1, SHUT_RDWR);
        }
        pthread_join(r->thread, NULL);
        fail_msg("watchdog: raw TLS client not finished within %.1f s", timeout_s);
    }
    pthread_join(r->thread, NULL);
}

void tu_raw_run(struct ev_loop *loop, tu_raw *r, double timeout_s)
{
    tu_raw_start(r);
    tu_raw_wait(loop, r, timeout_s);
}

void tu_raw_free(tu_raw *r)
{
    free(r->got);
    r->got = NULL;
    r->got_len = 0;
    r->got_cap = 0;
}

unsigned tu_raw_count_responses(const tu_raw *r, unsigned *pongs)
{
    unsigned msgs = 0, crlf = 0;
    const uint8_t *p = r->got;
    size_t left = r->got_len;
    while (left >= 2) {
        if (p[0] == '\r' && p[1] == '\n') {
            crlf++;
            p += 2;
            left -= 2;
            continue;
        }
        const uint8_t *end = NULL;
        for (size_t i = 0; i + 3 < left; i++) {
            if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
                end = p + i + 4;
                break;
            }
        }
        if (end == NULL) {
            break;
        }
        size_t hl = (size_t)(end - p);
        const uint8_t *v;
        size_t vl;
        size_t body = 0;
        if (siptls_sipmsg_header(p, hl, "Content-Length", 'l', &v, &vl) == SIPTLS_OK) {
            body = (size_t)strtoul((const char *)v, NULL, 10);
        }
        if (hl + body > left) {
            break;
        }
        if (memcmp(p, "SIP/2.0 ", 8) == 0) {
            msgs++;
        }
        p += hl + body;
        left -= hl + body;
    }
    if (pongs != NULL) {
        *pongs = crlf;
    }
    return msgs;
}
