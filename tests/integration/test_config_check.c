/* Integration tests: siptls_config_check() (src/config_check.c) loads what
 * an engine would load, short of binding, with the test PKI of
 * tests/certs/make-test-pki.sh; and siptls_config_dump_effective(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "siptls/siptls.h"

static char lines[32][512];
static int levels[32];
static int n_lines;

static void rec_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if (n_lines < 32) {
        levels[n_lines] = (int)level;
        snprintf(lines[n_lines++], sizeof(lines[0]), "%s", text);
    }
}

static const siptls_callbacks rec_cb = {NULL, NULL, NULL, rec_log};

static int setup(void **state)
{
    (void)state;
    n_lines = 0;
    return 0;
}

static const char *pki(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", SIPTLS_PKI_DIR, name);
    return buf[k];
}

static void set(siptls_config *c, const char *key, const char *value)
{
    siptls_config_error err;
    if (siptls_config_set(c, key, value, &err) != SIPTLS_OK) {
        fail_msg("config %s = %s: %s", key, value, err.msg);
    }
}

static void set_file(siptls_config *c, const char *key, const char *prefix, const char *file)
{
    char v[600];
    snprintf(v, sizeof(v), "%s%s", prefix, file[0] == '/' ? file : pki(file));
    set(c, key, v);
}

/* A configuration that starts: default server certificate, a listener. */
static void good_cfg(siptls_config *c)
{
    assert_int_equal(siptls_config_init(c), SIPTLS_OK);
    set(c, "log_level", "1");
    set_file(c, "certificate", "", "server.pem");
    set_file(c, "private_key", "", "server.key");
    set_file(c, "ca_list", "", "ca.pem");
    set(c, "listen", "tls:127.0.0.1:0");
}

/* Check `c`: the status, and (want != OK) the first error naming `what`. */
static void expect(siptls_config *c, int want, const char *what)
{
    n_lines = 0;
    siptls_config_error err;
    int st = siptls_config_check(c, &err, &rec_cb, NULL);
    if (st != want) {
        fail_msg("check: %s (%s), want %s", siptls_status_name(st), err.msg,
                 siptls_status_name(want));
    }
    if (want != SIPTLS_OK) {
        assert_int_equal(err.status, want);
        if (strstr(err.msg, what) == NULL) {
            fail_msg("error '%s' does not say '%s'", err.msg, what);
        }
        /* the same line went to the log, as an error */
        int logged = 0;
        for (int i = 0; i < n_lines; i++) {
            logged |= levels[i] == SIPTLS_LOG_ERR && strstr(lines[i], what) != NULL;
        }
        assert_true(logged);
    }
    siptls_config_cleanup(c);
}

static void test_good(void **state)
{
    (void)state;
    siptls_config c;
    good_cfg(&c);
    expect(&c, SIPTLS_OK, NULL);
    /* with a DTLS listener and a declared domain that inherits everything */
    good_cfg(&c);
    set(&c, "listen", "dtls:127.0.0.1:0");
    set(&c, "server_domain", "wild");
    set(&c, "match_sip_domain", "[wild]*.example.org");
    expect(&c, SIPTLS_OK, NULL);
    /* no listener, no certificate: a client-only configuration */
    assert_int_equal(siptls_config_init(&c), SIPTLS_OK);
    set_file(&c, "ca_list", "", "ca.pem");
    expect(&c, SIPTLS_OK, NULL);
}

static void test_missing_files(void **state)
{
    (void)state;
    siptls_config c;
    good_cfg(&c);
    set(&c, "certificate", "/nonexistent/siptls/server.pem");
    expect(&c, SIPTLS_ERR_CERT,
           "domain 'default': cannot load certificate '/nonexistent/siptls/server.pem': No such "
           "file");
    good_cfg(&c);
    set(&c, "private_key", "/nonexistent/siptls/server.key");
    expect(&c, SIPTLS_ERR_CERT, "cannot load private key '/nonexistent/siptls/server.key'");
    good_cfg(&c);
    set(&c, "ca_list", "/nonexistent/siptls/ca.pem");
    expect(&c, SIPTLS_ERR_CERT, "cannot load CA list '/nonexistent/siptls/ca.pem'");
    good_cfg(&c);
    set(&c, "crl_file", "/nonexistent/siptls/crl.pem");
    expect(&c, SIPTLS_ERR_CERT, "cannot load CRL '/nonexistent/siptls/crl.pem'");
    good_cfg(&c);
    set(&c, "tls_ticket_key_file", "/nonexistent/siptls/ticket.key");
    expect(&c, SIPTLS_ERR_CERT, "tls_ticket_key_file '/nonexistent/siptls/ticket.key'");
    /* in a declared domain: named */
    good_cfg(&c);
    set(&c, "server_domain", "sbc");
    set(&c, "certificate", "[sbc]/nonexistent/siptls/sbc.pem");
    expect(&c, SIPTLS_ERR_CERT, "domain 'sbc': cannot load certificate");
    good_cfg(&c);
    set(&c, "client_domain", "carrier");
    set(&c, "ca_list", "[carrier]/nonexistent/siptls/carrier-ca.pem");
    expect(&c, SIPTLS_ERR_CERT, "domain 'carrier': cannot load CA list");
}

static void test_key_mismatch(void **state)
{
    (void)state;
    siptls_config c;
    good_cfg(&c);
    set_file(&c, "private_key", "", "alt.key");
    expect(&c, SIPTLS_ERR_CERT, "does not belong to certificate");
}

static void test_listener_needs_certificate(void **state)
{
    (void)state;
    siptls_config c;
    assert_int_equal(siptls_config_init(&c), SIPTLS_OK);
    set(&c, "listen", "tls:127.0.0.1:0");
    expect(&c, SIPTLS_ERR_CERT,
           "listen 'tls:127.0.0.1:0': the default server domain has no "
           "certificate");
}

static void test_dtls_only_when_listening(void **state)
{
    (void)state;
    /* TLS 1.3 only: fine for TLS, impossible for DTLS on this wolfSSL (no
     * DTLS 1.3): only a dtls: listener makes it an error. */
    siptls_config c;
    good_cfg(&c);
    set(&c, "tls_method", "TLSv1_3");
    expect(&c, SIPTLS_OK, NULL);
    good_cfg(&c);
    set(&c, "tls_method", "TLSv1_3");
    set(&c, "listen", "dtls:127.0.0.1:0");
    n_lines = 0;
    siptls_config_error err;
    int st = siptls_config_check(&c, &err, &rec_cb, NULL);
    siptls_config_cleanup(&c);
    if (st == SIPTLS_OK) {
        skip(); /* a wolfSSL with DTLS 1.3 */
    }
    assert_int_equal(st, SIPTLS_ERR_INVAL);
    assert_non_null(strstr(err.msg, "DTLS"));
}

static void test_bad_args(void **state)
{
    (void)state;
    siptls_config_error err;
    assert_int_equal(siptls_config_check(NULL, &err, NULL, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(err.status, SIPTLS_ERR_INVAL);
    siptls_config c;
    good_cfg(&c);
    /* no err, no callbacks */
    assert_int_equal(siptls_config_check(&c, NULL, NULL, NULL), SIPTLS_OK);
    set(&c, "certificate", "/nonexistent/siptls/server.pem");
    assert_int_equal(siptls_config_check(&c, NULL, NULL, NULL), SIPTLS_ERR_CERT);
    siptls_config_cleanup(&c);
}

/* ---- siptls_config_dump_effective ------------------------------------------ */

static char *dump_effective(const siptls_config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    siptls_config_dump_effective(c, f);
    fclose(f);
    return buf;
}

static void test_dump_effective(void **state)
{
    (void)state;
    siptls_config c;
    assert_int_equal(siptls_config_init(&c), SIPTLS_OK);
    set(&c, "dtls_port", "5071");
    set(&c, "listen", "dtls:192.0.2.10");
    set(&c, "listen", "tls:[2001:db8::1]:5062");
    set(&c, "ca_list", "/etc/siptls/ca.pem");
    set(&c, "verify_cert", "[server:default]1");
    set(&c, "server_domain", "sbc");
    set(&c, "certificate", "[sbc]/etc/siptls/sbc.pem");
    char *text = dump_effective(&c);
    /* the port the engine binds */
    assert_non_null(strstr(text, "listen = \"dtls:192.0.2.10:5071\"  # default port\n"));
    assert_non_null(strstr(text, "listen = \"tls:[2001:db8::1]:5062\"\n"));
    /* inherited settings of sbc written out and marked; its own not */
    assert_non_null(strstr(
        text, "ca_list = \"[server:sbc]/etc/siptls/ca.pem\"  # inherited from [server:default]\n"));
    assert_non_null(
        strstr(text, "verify_cert = \"[server:sbc]1\"  # inherited from [server:default]\n"));
    assert_non_null(strstr(text, "certificate = \"[server:sbc]/etc/siptls/sbc.pem\"\n"));
    /* it loads back, and sbc ends up with the same effective settings */
    siptls_config back;
    siptls_config_error err;
    assert_int_equal(siptls_config_init(&back), SIPTLS_OK);
    if (siptls_config_load_string(&back, text, "effective", &err) != SIPTLS_OK) {
        fail_msg("%s\n%s", err.msg, text);
    }
    siptls_domain_cfg a, b;
    assert_int_equal(siptls_config_domain_effective(&c, siptls_config_domain(&c, "sbc", 1), &a),
                     SIPTLS_OK);
    assert_int_equal(
        siptls_config_domain_effective(&back, siptls_config_domain(&back, "sbc", 1), &b),
        SIPTLS_OK);
    assert_string_equal(a.ca_list, b.ca_list);
    assert_string_equal(a.certificate, b.certificate);
    assert_int_equal(a.verify_cert, b.verify_cert);
    siptls_uri u;
    assert_int_equal(siptls_config_listen_uri(&back, 0, &u), SIPTLS_OK);
    assert_int_equal(u.port, 5071);
    free(text);
    siptls_config_cleanup(&back);
    siptls_config_cleanup(&c);
    siptls_config_dump_effective(NULL, stdout);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_good, setup),
        cmocka_unit_test_setup(test_missing_files, setup),
        cmocka_unit_test_setup(test_key_mismatch, setup),
        cmocka_unit_test_setup(test_listener_needs_certificate, setup),
        cmocka_unit_test_setup(test_dtls_only_when_listening, setup),
        cmocka_unit_test_setup(test_bad_args, setup),
        cmocka_unit_test_setup(test_dump_effective, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
