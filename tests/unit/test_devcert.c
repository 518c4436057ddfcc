/* Tests: development certificates (src/devcert.c). The generated pair is
 * loaded into a server context and a client that trusts it (as its CA)
 * completes a handshake, sees the SANs and accepts the identity; openssl,
 * when installed, must parse it too. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* options.h first: it carries the build's feature macros. */
#include <wolfssl/options.h>

#include <wolfssl/ssl.h>

#include "secctx.h"
#include "siptls/config.h"
#include "siptls/devcert.h"

static char dir[] = "/tmp/siptls-devcert-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_pem_shape(void **state)
{
    (void)state;
    char *cert = NULL, *key = NULL;
    assert_int_equal(siptls_devcert_generate(NULL, &cert, &key), SIPTLS_OK);
    assert_non_null(cert);
    assert_non_null(key);
    assert_non_null(strstr(cert, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(cert, "-----END CERTIFICATE-----"));
    assert_non_null(strstr(key, "-----BEGIN EC PRIVATE KEY-----"));
    /* Two calls, two keys. */
    char *cert2 = NULL, *key2 = NULL;
    assert_int_equal(siptls_devcert_generate(NULL, &cert2, &key2), SIPTLS_OK);
    assert_string_not_equal(key, key2);
    assert_string_not_equal(cert, cert2);
    free(cert);
    free(key);
    free(cert2);
    free(key2);
}

static void test_bad_args(void **state)
{
    (void)state;
    char *cert = (char *)1, *key = (char *)1;
    assert_int_equal(siptls_devcert_generate(NULL, NULL, &key), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_devcert_generate("*.example.org", &cert, &key), SIPTLS_ERR_INVAL);
    assert_null(cert);
    assert_null(key);
    assert_int_equal(siptls_devcert_generate("", &cert, &key), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_devcert_generate("a b", &cert, &key), SIPTLS_ERR_INVAL);
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(siptls_devcert_generate(longname, &cert, &key), SIPTLS_ERR_INVAL);
}

static void step(WOLFSSL *ssl, int server, int *done)
{
    if (*done != 0) {
        return;
    }
    int r = server ? wolfSSL_accept(ssl) : wolfSSL_connect(ssl);
    if (r == WOLFSSL_SUCCESS) {
        *done = 1;
        return;
    }
    int e = wolfSSL_get_error(ssl, r);
    if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
        *done = -1;
    }
}

static int has_san(const siptls_flow_info *info, const char *san)
{
    for (unsigned i = 0; i < info->n_peer_sans; i++) {
        if (strcmp(info->peer_sans[i], san) == 0) {
            return 1;
        }
    }
    return 0;
}

static void test_handshake_with_devcert(void **state)
{
    (void)state;
    char *cert = NULL, *key = NULL;
    assert_int_equal(siptls_devcert_generate("sip.example.test", &cert, &key), SIPTLS_OK);
    char cert_path[128], key_path[128];
    snprintf(cert_path, sizeof(cert_path), "%s/dev.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/dev.key", dir);
    write_file(cert_path, cert);
    write_file(key_path, key);

    siptls_config scfg, ccfg;
    assert_int_equal(siptls_config_init(&scfg), SIPTLS_OK);
    assert_int_equal(siptls_config_set(&scfg, "certificate", cert_path, NULL), SIPTLS_OK);
    assert_int_equal(siptls_config_set(&scfg, "private_key", key_path, NULL), SIPTLS_OK);
    assert_int_equal(siptls_config_init(&ccfg), SIPTLS_OK);
    /* Trust the development certificate itself. */
    assert_int_equal(siptls_config_set(&ccfg, "ca_list", cert_path, NULL), SIPTLS_OK);
    assert_int_equal(siptls_config_set(&ccfg, "verify_cert", "1", NULL), SIPTLS_OK);
    siptls__secctx *srv = NULL, *cli = NULL;
    assert_int_equal(siptls__secctx_new(&srv, &scfg, 0, NULL, NULL), SIPTLS_OK);
    assert_int_equal(siptls__secctx_new(&cli, &ccfg, 0, NULL, NULL), SIPTLS_OK);
    assert_int_equal(siptls__secctx_has_server_cert(srv), 1);

    const char *domains[] = {"sip.example.test", "localhost", "127.0.0.1", "::1"};
    for (size_t k = 0; k < 4; k++) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons(5061);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        WOLFSSL *s = siptls__secctx_server_ssl(srv, (struct sockaddr *)&a);
        WOLFSSL *c = siptls__secctx_client_ssl(cli, domains[k], (struct sockaddr *)&a);
        assert_non_null(s);
        assert_non_null(c);
        int fd[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
        fcntl(fd[0], F_SETFL, O_NONBLOCK);
        fcntl(fd[1], F_SETFL, O_NONBLOCK);
        wolfSSL_set_fd(c, fd[0]);
        wolfSSL_set_fd(s, fd[1]);
        int cd = 0, sd = 0;
        for (int i = 0; i < 100 && !(cd && sd); i++) {
            step(c, 0, &cd);
            step(s, 1, &sd);
        }
        assert_int_equal(cd, 1);
        assert_int_equal(sd, 1);
        siptls_flow_info info;
        memset(&info, 0, sizeof(info));
        assert_int_equal(siptls__secctx_peer_check(cli, c, 0, domains[k], &info), SIPTLS_OK);
        assert_int_equal(info.peer_verified, 1);
        assert_non_null(strstr(info.peer_subject, "CN=sip.example.test"));
        assert_true(has_san(&info, "DNS:localhost"));
        assert_true(has_san(&info, "DNS:sip.example.test"));
        assert_true(has_san(&info, "URI:sip:sip.example.test"));
        assert_true(has_san(&info, "IP:127.0.0.1"));
        assert_true(has_san(&info, "IP:::1"));
        assert_true(has_san(&info, "URI:sip:localhost"));
        assert_int_equal(info.n_peer_sans, 6);
        wolfSSL_free(c);
        wolfSSL_free(s);
        close(fd[0]);
        close(fd[1]);
    }
    siptls__secctx_free(cli);
    siptls__secctx_free(srv);
    siptls_config_cleanup(&scfg);
    siptls_config_cleanup(&ccfg);
    free(cert);
    free(key);
}

/* Validity through wolfSSL: notBefore one hour back, 30 days long. */
static void test_validity(void **state)
{
    (void)state;
    char *cert = NULL, *key = NULL;
    time_t now = time(NULL);
    assert_int_equal(siptls_devcert_generate(NULL, &cert, &key), SIPTLS_OK);
    WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer((const unsigned char *)cert,
                                                           (int)strlen(cert), WOLFSSL_FILETYPE_PEM);
    assert_non_null(x);
    const WOLFSSL_ASN1_TIME *nb = wolfSSL_X509_get_notBefore(x);
    const WOLFSSL_ASN1_TIME *na = wolfSSL_X509_get_notAfter(x);
    assert_non_null(nb);
    assert_non_null(na);
    struct tm tb, ta;
    memset(&tb, 0, sizeof(tb));
    memset(&ta, 0, sizeof(ta));
    assert_int_equal(wolfSSL_ASN1_TIME_to_tm(nb, &tb), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_ASN1_TIME_to_tm(na, &ta), WOLFSSL_SUCCESS);
    time_t before = timegm(&tb), after = timegm(&ta);
    /* Generous bounds: the clock ran while we generated. */
    assert_true(before <= now - 3600 + 60 && before >= now - 3600 - 60);
    assert_true(after - before == 30L * 86400);
    wolfSSL_X509_free(x);
    free(cert);
    free(key);
}

static void test_openssl_parses(void **state)
{
    (void)state;
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        skip();
    }
    char *cert = NULL, *key = NULL;
    assert_int_equal(siptls_devcert_generate("dev.example.test", &cert, &key), SIPTLS_OK);
    char cert_path[128], key_path[128], cmd[1024];
    snprintf(cert_path, sizeof(cert_path), "%s/o.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/o.key", dir);
    write_file(cert_path, cert);
    write_file(key_path, key);
    snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -text 2>&1", cert_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char text[16384];
    size_t n = fread(text, 1, sizeof(text) - 1, p);
    text[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(
        strstr(text, "Subject: O = siptls development certificate, CN = dev.example.test"));
    assert_non_null(strstr(text, "URI:sip:localhost"));
    assert_non_null(strstr(text, "ecdsa-with-SHA256"));
    assert_non_null(strstr(text, "DNS:localhost"));
    assert_non_null(strstr(text, "DNS:dev.example.test"));
    assert_non_null(strstr(text, "URI:sip:dev.example.test"));
    assert_non_null(strstr(text, "IP Address:127.0.0.1"));
    assert_non_null(strstr(text, "IP Address:0:0:0:0:0:0:0:1"));
    assert_non_null(strstr(text, "CA:TRUE"));
    /* openssl agrees the key belongs to the certificate and the
     * self-signature verifies. */
    snprintf(
        cmd, sizeof(cmd),
        "test \"$(openssl x509 -in %s -noout -pubkey)\" = \"$(openssl pkey -in %s -pubout)\" && "
        "openssl verify -CAfile %s %s >/dev/null 2>&1",
        cert_path, key_path, cert_path, cert_path);
    assert_int_equal(system(cmd), 0);
    free(cert);
    free(key);

    /* The default name: "localhost" once per type. */
    assert_int_equal(siptls_devcert_generate(NULL, &cert, &key), SIPTLS_OK);
    write_file(cert_path, cert);
    snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -ext subjectAltName 2>&1", cert_path);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(text, 1, sizeof(text) - 1, p);
    text[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(text, "DNS:localhost, URI:sip:localhost, IP Address:127.0.0.1, "
                                 "IP Address:0:0:0:0:0:0:0:1\n"));
    free(cert);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_shape),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_handshake_with_devcert),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_openssl_parses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
