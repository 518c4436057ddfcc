/* A host that links OpenSSL (libssl, libcrypto) AND the installed siptls
 * (tests/install/test_install.sh, shared and static): the two TLS stacks in
 * one process must not see each other's symbols. siptls's bundled wolfSSL
 * defines a few OpenSSL names itself (SSL_CTX_set_tmp_dh_callback,
 * SSL_COMP_get_compression_methods, ERR_load_SSL_strings); had they leaked
 * out of libsiptls, OpenSSL's calls below would land in wolfSSL.
 *
 * It runs a siptls TLS server on 127.0.0.1 (a development certificate) on
 * the main thread's libev loop and connects to it with an OpenSSL client on
 * a second thread: OPTIONS in, 200 OK out. Before that it asks the dynamic
 * linker where those OpenSSL names resolved: libssl, never libsiptls or
 * (static link, -DSIPTLS_HOST_STATIC) this executable. Prints "ok" when
 * both hold. */
#include <dlfcn.h>
#include <ev.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <siptls/siptls.h>

static const char ok_reply[] =
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS host.invalid;branch=z9hG4bK1\r\n"
    "From: <sip:a@host.invalid>;tag=1\r\nTo: <sip:b@host.invalid>;tag=2\r\n"
    "Call-ID: 1@host.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
static const char request[] =
    "OPTIONS sip:localhost SIP/2.0\r\n"
    "Via: SIP/2.0/TLS host.invalid;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n"
    "From: <sip:a@host.invalid>;tag=1\r\nTo: <sip:b@host.invalid>\r\n"
    "Call-ID: 1@host.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

typedef struct client_job {
    unsigned port;
    char version[32];
    char answer[64];
    const char *error;
    ev_async *done;
    struct ev_loop *loop;
} client_job;

/* Where did `fn` come from? 1 when from libssl (a good link). */
static int from_libssl(const char *name, void *fn)
{
    Dl_info info;
    if (dladdr(fn, &info) == 0 || info.dli_fname == NULL) {
        fprintf(stderr, "%s: dladdr found no object\n", name);
        return 0;
    }
    if (strstr(info.dli_fname, "libssl.so") == NULL) {
        fprintf(stderr, "%s resolves to %s (%s), not libssl: a clash\n", name, info.dli_fname,
                info.dli_sname ? info.dli_sname : "?");
        return 0;
    }
    return 1;
}

static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)user;
    if (siptls_sipmsg_is_request(m->data, m->len)) {
        siptls_send(e, flow, (const uint8_t *)ok_reply, sizeof(ok_reply) - 1);
    }
}

/* The OpenSSL client: blocking, every call bounded by a 10 s socket timeout. */
static void *client_main(void *arg)
{
    client_job *j = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int fd = -1;
    if (ctx == NULL) {
        j->error = "SSL_CTX_new";
        goto out;
    }
    /* One of the names the bundled wolfSSL defines too: this must be
     * OpenSSL's (wolfSSL's would take the SSL_CTX for its own struct).
     * Deprecated in OpenSSL 3 but still there: that is the point. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    SSL_CTX_set_tmp_dh_callback(ctx, NULL);
#pragma GCC diagnostic pop
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        j->error = "connect";
        goto out;
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        j->error = "SSL_connect";
        goto out;
    }
    snprintf(j->version, sizeof(j->version), "%s", SSL_get_version(ssl));
    if (SSL_write(ssl, request, (int)sizeof(request) - 1) != (int)sizeof(request) - 1) {
        j->error = "SSL_write";
        goto out;
    }
    char buf[1024];
    size_t got = 0;
    while (got < sizeof(buf) - 1 && strstr(buf, "\r\n\r\n") == NULL) {
        int n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got));
        if (n <= 0) {
            j->error = "SSL_read";
            goto out;
        }
        got += (size_t)n;
        buf[got] = '\0';
    }
    snprintf(j->answer, sizeof(j->answer), "%.*s", (int)strcspn(buf, "\r"), buf);
out:
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0) {
        close(fd);
    }
    SSL_CTX_free(ctx);
    ev_async_send(j->loop, j->done);
    return NULL;
}

static void on_done(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w, (void)revents;
    fprintf(stderr, "watchdog: no answer within 20 s\n");
    ev_break(loop, EVBREAK_ALL);
}

int main(void)
{
    if (OPENSSL_init_ssl(0, NULL) != 1) {
        fprintf(stderr, "OPENSSL_init_ssl failed\n");
        return 1;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    int linked_ok =
        from_libssl("SSL_CTX_set_tmp_dh_callback", (void *)SSL_CTX_set_tmp_dh_callback) &
        from_libssl("SSL_COMP_get_compression_methods", (void *)SSL_COMP_get_compression_methods) &
        from_libssl("ERR_load_SSL_strings", (void *)ERR_load_SSL_strings) &
        from_libssl("SSL_CTX_new", (void *)SSL_CTX_new);
#pragma GCC diagnostic pop
    Dl_info own;
    if (dladdr((void *)siptls_engine_new, &own) == 0 || own.dli_fname == NULL) {
        linked_ok = 0;
#ifndef SIPTLS_HOST_STATIC
    } else if (strstr(own.dli_fname, "libsiptls.so") == NULL) {
        fprintf(stderr, "siptls_engine_new resolves to %s, not libsiptls.so\n", own.dli_fname);
        linked_ok = 0;
#endif
    }
    if (!linked_ok) {
        return 1;
    }
    struct ev_loop *loop = ev_default_loop(0);
    char dir[] = "/tmp/siptls-openssl-host-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    char certf[64], keyf[64];
    snprintf(certf, sizeof(certf), "%s/cert.pem", dir);
    snprintf(keyf, sizeof(keyf), "%s/key.pem", dir);
    char *cert = NULL, *key = NULL;
    int rc = 1;
    siptls_engine *e = NULL;
    siptls_config cfg;
    siptls_config_init(&cfg);
    if (siptls_devcert_generate("localhost", &cert, &key) != SIPTLS_OK) {
        fprintf(stderr, "siptls_devcert_generate failed\n");
        goto out;
    }
    FILE *c = fopen(certf, "w"), *k = fopen(keyf, "w");
    if (c == NULL || k == NULL) {
        goto out;
    }
    fputs(cert, c), fputs(key, k), fclose(c), fclose(k);
    siptls_config_set(&cfg, "certificate", certf, NULL);
    siptls_config_set(&cfg, "private_key", keyf, NULL);
    siptls_callbacks cb = {.on_message = on_message};
    if (siptls_engine_new(&e, loop, &cfg, &cb, NULL) != SIPTLS_OK ||
        siptls_listen(e, "tls:127.0.0.1:0") < 0) {
        fprintf(stderr, "siptls engine/listen failed\n");
        goto out;
    }
    ev_async done;
    ev_async_init(&done, on_done);
    ev_async_start(loop, &done);
    ev_timer wd;
    ev_timer_init(&wd, on_watchdog, 20.0, 0.0);
    ev_timer_start(loop, &wd);
    client_job j = {.port = siptls_listener_port(e, 0), .done = &done, .loop = loop};
    pthread_t th;
    if (pthread_create(&th, NULL, client_main, &j) != 0) {
        goto out;
    }
    ev_run(loop, 0);
    pthread_join(th, NULL);
    ev_timer_stop(loop, &wd);
    ev_async_stop(loop, &done);
    if (j.error != NULL) {
        fprintf(stderr, "OpenSSL client: %s failed\n", j.error);
        ERR_print_errors_fp(stderr);
    } else if (strcmp(j.answer, "SIP/2.0 200 OK") != 0) {
        fprintf(stderr, "OpenSSL client: answer '%s', want 'SIP/2.0 200 OK'\n", j.answer);
    } else {
        fprintf(stderr, "OpenSSL client (%s) <-> siptls server: %s\n", j.version, j.answer);
        rc = 0;
    }
out:
    if (e != NULL) {
        siptls_engine_free(e);
    }
    siptls_config_cleanup(&cfg);
    free(cert), free(key);
    unlink(certf), unlink(keyf), rmdir(dir);
    if (rc == 0) {
        printf("ok\n");
    }
    return rc;
}
