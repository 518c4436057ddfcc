/* Unit tests: configuration (src/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "siptls/config.h"

#define CONF_DIR SIPTLS_TEST_DIR "/config"
#define EXAMPLE_CONF SIPTLS_TEST_DIR "/../examples/siptls.conf"

/* ---- fixtures and helpers ------------------------------------------------- */

static int setup(void **state)
{
    siptls_config *c = malloc(sizeof(*c));
    if (c == NULL || siptls_config_init(c) != SIPTLS_OK) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    siptls_config *c = *state;
    siptls_config_cleanup(c);
    free(c);
    return 0;
}

static int load(siptls_config *c, const char *text, siptls_config_error *e)
{
    return siptls_config_load_string(c, text, "t.conf", e);
}

static char *dump_text(const siptls_config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    siptls_config_dump(c, f);
    fclose(f);
    return buf;
}

/* Set key=value and check that it fails with `status` and changes nothing. */
static void expect_set_fails(siptls_config *c, const char *key, const char *value, int status)
{
    siptls_config before;
    assert_int_equal(siptls_config_copy(&before, c), SIPTLS_OK);
    siptls_config_error e;
    int rc = siptls_config_set(c, key, value, &e);
    if (rc != status) {
        fail_msg("%s = '%s': got %s, want %s (%s)", key, value, siptls_status_name(rc),
                 siptls_status_name(status), e.msg);
    }
    assert_int_equal(e.status, status);
    assert_string_equal(e.key, key);
    assert_int_equal(e.line, 0);
    assert_string_equal(e.file, "");
    assert_true(strncmp(e.msg, key, strlen(key)) == 0);
    assert_true(siptls_config_equal(&before, c));
    siptls_config_cleanup(&before);
}

static void expect_set_ok(siptls_config *c, const char *key, const char *value)
{
    siptls_config_error e;
    int rc = siptls_config_set(c, key, value, &e);
    if (rc != SIPTLS_OK) {
        fail_msg("%s = '%s': %s", key, value, e.msg);
    }
}

static const siptls_domain_cfg *srv_default(const siptls_config *c)
{
    return siptls_config_domain(c, "default", 1);
}

static const siptls_domain_cfg *cli_default(const siptls_config *c)
{
    return siptls_config_domain(c, "default", 0);
}

/* ---- defaults ------------------------------------------------------------- */

static void test_defaults(void **state)
{
    const siptls_config *c = *state;
    assert_int_equal(c->n_listen, 0);
    assert_null(c->listen);
    assert_int_equal(c->tls_port, 5061);
    assert_int_equal(c->dtls_port, 5061);
    assert_int_equal(c->tls_crlf_pingpong, 1);
    assert_int_equal(c->tls_crlf_drop, 0);
    assert_int_equal(c->tls_max_msg_chunks, 4);
    assert_int_equal(c->tls_max_msg_time, 4);
    assert_int_equal(c->max_msg_size, 65535);
    assert_int_equal(c->max_header_size, 16384);
    assert_int_equal(c->keepalive_interval, 0);
    assert_int_equal(c->keepalive_timeout, 10);
    assert_int_equal(c->tls_handshake_timeout, 10000);
    assert_int_equal(c->tls_connect_timeout, 5000);
    assert_int_equal(c->tls_send_timeout, 5000);
    assert_int_equal(c->tls_async_max_postponed_chunks, 32);
    assert_int_equal(c->tls_async_max_queued_bytes, 1048576);
    assert_int_equal(c->tls_connection_lifetime, 120);
    assert_int_equal(c->tls_max_connections, 2048);
    assert_int_equal(c->n_trusted_domain, 0);
    assert_null(c->tls_keylog_file);
    assert_int_equal(c->tls_session_cache, 1);
    assert_int_equal(c->tls_session_tickets, 1);
    assert_null(c->tls_ticket_key_file);
    assert_int_equal(c->dtls_handshake_timeout, 10000);
    assert_int_equal(c->dtls_mtu, 1200);
    assert_int_equal(c->dtls_session_lifetime, 120);
    assert_int_equal(c->dtls_max_sessions, 2048);
    assert_int_equal(c->dtls_reassembly_timeout, 2000);
    assert_int_equal(c->dtls_handshake_rate, 20);
    assert_int_equal(c->dtls_cookie_lifetime, 60);
    assert_int_equal(c->dtls_cid, 1);
    assert_int_equal(c->dtls_cid_length, 8);
    assert_int_equal(c->log_level, 2);

    assert_int_equal(c->n_domains, 2);
    assert_ptr_equal(srv_default(c), &c->domains[0]);
    assert_ptr_equal(cli_default(c), &c->domains[1]);
    for (size_t i = 0; i < 2; i++) {
        const siptls_domain_cfg *d = &c->domains[i];
        assert_string_equal(d->name, "default");
        assert_int_equal(d->is_server, i == 0);
        assert_int_equal(d->n_match_ip_address, 0);
        assert_int_equal(d->n_match_sip_domain, 0);
        assert_null(d->certificate);
        assert_null(d->private_key);
        assert_null(d->ca_list);
        assert_null(d->ca_dir);
        assert_null(d->crl_file);
        assert_null(d->ciphers_list);
        assert_null(d->tls_method);
        assert_null(d->ec_curve);
        assert_int_equal(d->require_cert, 0);
    }
    assert_int_equal(srv_default(c)->verify_cert, 0);
    assert_int_equal(cli_default(c)->verify_cert, 1);
}

/* The table's default text, set back through siptls_config_set, leaves a
 * fresh config as it is: the table and init agree. */
static void test_param_table(void **state)
{
    siptls_config *c = *state;
    siptls_config fresh;
    assert_int_equal(siptls_config_init(&fresh), SIPTLS_OK);
    size_t n = 0;
    const char *name;
    const char *def;
    while (siptls_config_param(n, &name, &def)) {
        assert_non_null(name);
        assert_non_null(def);
        for (size_t k = 0; k < n; k++) {
            const char *other;
            assert_int_equal(siptls_config_param(k, &other, NULL), 1);
            assert_string_not_equal(name, other);
        }
        if (def[0] != '\0' && strchr(def, ' ') == NULL) {
            expect_set_ok(c, name, def);
        }
        n++;
    }
    assert_true(n >= 45);
    assert_int_equal(siptls_config_param(n, &name, &def), 0);
    assert_int_equal(siptls_config_param((size_t)-1, NULL, NULL), 0);
    assert_true(siptls_config_equal(c, &fresh));

    assert_int_equal(siptls_config_param(0, NULL, NULL), 1);
    int found = 0;
    for (size_t i = 0; siptls_config_param(i, &name, &def); i++) {
        if (strcmp(name, "verify_cert") == 0) {
            assert_string_equal(def, "0 (server domains), 1 (client domains)");
            found = 1;
        }
        if (strcmp(name, "tls_port") == 0) {
            assert_string_equal(def, "5061");
        }
    }
    assert_true(found);
    siptls_config_cleanup(&fresh);
}

/* ---- types ---------------------------------------------------------------- */

static void test_bool(void **state)
{
    siptls_config *c = *state;
    static const char *const yes[] = {"1", "yes", "on", "true", "YES", "On", "TRUE", " yes "};
    static const char *const no[] = {"0", "no", "off", "false", "NO", "Off", "False"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        expect_set_ok(c, "tls_crlf_drop", yes[i]);
        assert_int_equal(c->tls_crlf_drop, 1);
        expect_set_ok(c, "tls_crlf_drop", "0");
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        expect_set_ok(c, "tls_crlf_pingpong", no[i]);
        assert_int_equal(c->tls_crlf_pingpong, 0);
        expect_set_ok(c, "tls_crlf_pingpong", "1");
    }
    static const char *const bad[] = {"", "2", "-1", "yess", "y", "n", "enabled", "1 1", "01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_set_fails(c, "tls_session_cache", bad[i], SIPTLS_ERR_CONFIG_VALUE);
    }
}

typedef struct range_case {
    const char *key;
    unsigned long min;
    unsigned long max;
    size_t off;
    int is_int;
} range_case;

#define R(k, lo, hi)                              \
    {                                             \
#k, lo, hi, offsetof(siptls_config, k), 0 \
    }

static const range_case ranges[] = {
    R(tls_port, 1, 65535),
    R(dtls_port, 1, 65535),
    R(tls_max_msg_chunks, 0, 1024),
    R(tls_max_msg_time, 0, 3600),
    R(max_msg_size, 256, 16777216),
    R(max_header_size, 256, 16777216),
    R(keepalive_interval, 0, 86400),
    R(keepalive_timeout, 1, 3600),
    R(tls_handshake_timeout, 1, 600000),
    R(tls_connect_timeout, 1, 600000),
    R(tls_send_timeout, 1, 600000),
    R(tls_async_max_postponed_chunks, 1, 65536),
    R(tls_async_max_queued_bytes, 1024, 1073741824),
    R(tls_connection_lifetime, 1, 2592000),
    R(tls_max_connections, 1, 1000000),
    R(queue_high_water, 1, 100),
    R(queue_low_water, 0, 99),
    R(post_max_pending, 1, 16777216),
    R(post_max_pending_bytes, 65536, 1073741824),
    R(dtls_handshake_timeout, 1, 600000),
    R(dtls_mtu, 256, 65507),
    R(dtls_session_lifetime, 1, 2592000),
    R(dtls_max_sessions, 1, 1000000),
    R(dtls_reassembly_timeout, 1, 600000),
    R(dtls_handshake_rate, 0, 1000000),
    R(dtls_cookie_lifetime, 1, 86400),
    R(dtls_cid_length, 4, 16),
    R(dns_timeout, 10, 60000),
    R(dns_tries, 1, 10),
    {"log_level", 0, 3, offsetof(siptls_config, log_level), 1},
};

static unsigned long field_value(const siptls_config *c, const range_case *r)
{
    const char *p = (const char *)c + r->off;
    return r->is_int ? (unsigned long)*(const int *)p : *(const unsigned *)p;
}

static void test_number_ranges(void **state)
{
    siptls_config *c = *state;
    char v[32];
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        const range_case *r = &ranges[i];
        if (r->min > 0) {
            snprintf(v, sizeof(v), "%lu", r->min - 1);
            expect_set_fails(c, r->key, v, SIPTLS_ERR_CONFIG_RANGE);
        }
        snprintf(v, sizeof(v), "%lu", r->min);
        expect_set_ok(c, r->key, v);
        assert_int_equal(field_value(c, r), r->min);
        snprintf(v, sizeof(v), "%lu", r->max);
        expect_set_ok(c, r->key, v);
        assert_int_equal(field_value(c, r), r->max);
        snprintf(v, sizeof(v), "%lu", r->max + 1);
        expect_set_fails(c, r->key, v, SIPTLS_ERR_CONFIG_RANGE);
        expect_set_fails(c, r->key, "99999999999999999999999", SIPTLS_ERR_CONFIG_RANGE);
        expect_set_fails(c, r->key, "4294967296", SIPTLS_ERR_CONFIG_RANGE);
        static const char *const bad[] = {"", "12a", "-1", "+5", "0x10", "1.5", "1 000", "ten"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            expect_set_fails(c, r->key, bad[k], SIPTLS_ERR_CONFIG_VALUE);
        }
    }
    /* every number parameter of the table is in the list above */
    const char *name;
    const char *def;
    for (size_t i = 0; siptls_config_param(i, &name, &def); i++) {
        if (def[0] < '0' || def[0] > '9' || strcmp(def, "0") == 0 || strcmp(def, "1") == 0) {
            continue; /* not a number, or a boolean */
        }
        if (strcmp(name, "verify_cert") == 0 || strncmp(name, "dtls_m", 6) == 0) {
            continue; /* dtls_min_version, dtls_max_version: versions (test_dtls_versions) */
        }
        int listed = 0;
        for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
            listed |= strcmp(ranges[k].key, name) == 0;
        }
        if (!listed) {
            fail_msg("%s has no range test", name);
        }
    }
    /* white space around a number is trimmed, leading zeros are decimal */
    expect_set_ok(c, "tls_port", "  05062\t");
    assert_int_equal(c->tls_port, 5062);
}

static void test_range_message(void **state)
{
    siptls_config *c = *state;
    siptls_config_error e;
    assert_int_equal(siptls_config_set(c, "tls_port", "70000", &e), SIPTLS_ERR_CONFIG_RANGE);
    assert_string_equal(e.msg, "tls_port: value 70000 out of range 1..65535");
    assert_int_equal(siptls_config_set(c, "tls_port", "http", &e), SIPTLS_ERR_CONFIG_VALUE);
    assert_string_equal(e.msg, "tls_port: 'http' is not a decimal number");
    assert_int_equal(siptls_config_set(c, "no_such_param", "1", &e), SIPTLS_ERR_CONFIG_KEY);
    assert_string_equal(e.key, "no_such_param");
    assert_string_equal(e.msg, "no_such_param: unknown parameter");
    assert_int_equal(siptls_config_set(c, "tls_port", "5062", &e), SIPTLS_OK);
    assert_int_equal(e.status, SIPTLS_OK);
    assert_string_equal(e.msg, "");
}

static void test_strings(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "tls_keylog_file", "/tmp/keys.log");
    assert_string_equal(c->tls_keylog_file, "/tmp/keys.log");
    expect_set_ok(c, "tls_keylog_file", "  /tmp/other.log  ");
    assert_string_equal(c->tls_keylog_file, "/tmp/other.log");
    expect_set_ok(c, "tls_keylog_file", "");
    assert_null(c->tls_keylog_file);
    expect_set_ok(c, "tls_ticket_key_file", "/etc/siptls/tickets.key");
    assert_string_equal(c->tls_ticket_key_file, "/etc/siptls/tickets.key");
    /* set() does not strip comments or quotes: the value is literal */
    expect_set_ok(c, "tls_ticket_key_file", "\"/a b\" # c");
    assert_string_equal(c->tls_ticket_key_file, "\"/a b\" # c");
    expect_set_fails(c, "tls_ticket_key_file", "/a\nb", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "tls_ticket_key_file",
                     "/a\x01"
                     "b",
                     SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "ca_list", "/a\x7f", SIPTLS_ERR_CONFIG_VALUE);
}

static void test_dtls_versions(void **state)
{
    siptls_config *c = *state;
    assert_string_equal(srv_default(c)->dtls_min_version, "1.2");
    assert_string_equal(srv_default(c)->dtls_max_version, "1.3");
    assert_string_equal(cli_default(c)->dtls_max_version, "1.3");
    expect_set_ok(c, "dtls_max_version", "1.2");
    assert_string_equal(srv_default(c)->dtls_max_version, "1.2");
    assert_string_equal(cli_default(c)->dtls_max_version, "1.2");
    expect_set_ok(c, "dtls_min_version", "1.3");
    assert_string_equal(cli_default(c)->dtls_min_version, "1.3");
    static const char *const bad[] = {"1.0", "1", "1.4", "13", "DTLSv1.3", " 1.3x", "v1.2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_set_fails(c, "dtls_max_version", bad[i], SIPTLS_ERR_CONFIG_VALUE);
        expect_set_fails(c, "dtls_min_version", bad[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    assert_string_equal(srv_default(c)->dtls_max_version, "1.2");
}

static void test_tls_method(void **state)
{
    siptls_config *c = *state;
    static const char *const in[] = {"TLSv1_2", "tlsv1_3", "TLSV1_2-TLSV1_3", "sslv23"};
    static const char *const out[] = {"TLSv1_2", "TLSv1_3", "TLSv1_2-TLSv1_3", "SSLv23"};
    for (size_t i = 0; i < 4; i++) {
        expect_set_ok(c, "tls_method", in[i]);
        assert_string_equal(srv_default(c)->tls_method, out[i]);
        assert_string_equal(cli_default(c)->tls_method, out[i]);
    }
    static const char *const bad[] = {"TLSv1",    "TLSv1_1", "SSLv3",          "TLSv1_0",
                                      "DTLSv1_2", "tls",     "TLSv1_3-TLSv1_2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_set_fails(c, "tls_method", bad[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    expect_set_ok(c, "tls_method", "");
    assert_null(srv_default(c)->tls_method);
}

static void test_null_args(void **state)
{
    siptls_config *c = *state;
    siptls_config_error e;
    assert_int_equal(siptls_config_init(NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_set(NULL, "tls_port", "1", &e), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_set(c, NULL, "1", &e), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_set(c, "tls_port", NULL, NULL), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_load_string(c, NULL, "x", &e), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_load_string(NULL, "", "x", &e), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_load_string(c, "tls_port = 5070", NULL, NULL), SIPTLS_OK);
    assert_int_equal(siptls_config_load_file(c, NULL, &e), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_load_file(NULL, CONF_DIR "/full.conf", &e), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_copy(NULL, c), SIPTLS_ERR_INVAL);
    assert_null(siptls_config_domain(NULL, "default", 1));
    assert_null(siptls_config_domain(c, NULL, 1));
    assert_null(siptls_config_domain(c, "nope", 1));
    siptls_domain_cfg d;
    assert_int_equal(siptls_config_domain_effective(NULL, &c->domains[0], &d), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_config_domain_effective(c, NULL, &d), SIPTLS_ERR_INVAL);
    siptls_uri u;
    assert_int_equal(siptls_config_listen_uri(c, 0, &u), SIPTLS_ERR_INVAL);
    assert_true(siptls_config_equal(NULL, NULL));
    assert_false(siptls_config_equal(c, NULL));
    siptls_config_dump(NULL, stdout);
    siptls_config_dump(c, NULL);
    siptls_config_cleanup(NULL);
}

/* ---- lists ---------------------------------------------------------------- */

static void test_listen(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "listen", "tls:192.0.2.1:5061");
    expect_set_ok(c, "listen", "dtls:[2001:db8::1]");
    expect_set_ok(c, "listen", "TLS:*");
    expect_set_ok(c, "listen", "tls:127.0.0.1:0"); /* ephemeral: allowed in config */
    assert_int_equal(c->n_listen, 4);
    assert_string_equal(c->listen[0], "tls:192.0.2.1:5061");
    assert_string_equal(c->listen[1], "dtls:[2001:db8::1]"); /* stored as written */
    assert_string_equal(c->listen[2], "TLS:*");

    static const char *const bad[] = {"",
                                      "udp:1.2.3.4:5060",
                                      "tcp:1.2.3.4",
                                      "sips:x",
                                      "tls:1.2.3.4:70000",
                                      "tls:::1",
                                      "tls:1.2.3.4:5061x",
                                      "tls:[::1]x",
                                      "tls:1.2.3.4 as 5.6.7.8:5061",
                                      "tls:1.2.3.4,tls:5.6.7.8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_set_fails(c, "listen", bad[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    siptls_config_error e;
    assert_int_equal(siptls_config_set(c, "listen", "udp:1.2.3.4", &e), SIPTLS_ERR_CONFIG_VALUE);
    assert_non_null(strstr(e.msg, "udp:1.2.3.4"));
    assert_non_null(strstr(e.msg, "scheme"));

    /* ports are resolved late: a later tls_port applies to earlier lines */
    expect_set_ok(c, "tls_port", "5071");
    expect_set_ok(c, "dtls_port", "5072");
    siptls_uri u;
    assert_int_equal(siptls_config_listen_uri(c, 0, &u), SIPTLS_OK);
    assert_int_equal(u.port, 5061);
    assert_int_equal(siptls_config_listen_uri(c, 1, &u), SIPTLS_OK);
    assert_int_equal(u.transport, SIPTLS_TRANSPORT_DTLS);
    assert_int_equal(u.port, 5072);
    assert_string_equal(u.host, "2001:db8::1");
    assert_int_equal(siptls_config_listen_uri(c, 2, &u), SIPTLS_OK);
    assert_int_equal(u.host_kind, SIPTLS_HOST_ANY);
    assert_int_equal(u.port, 5071);
    assert_int_equal(siptls_config_listen_uri(c, 3, &u), SIPTLS_OK);
    assert_int_equal(u.port, 0);
    assert_int_equal(siptls_config_listen_uri(c, 4, &u), SIPTLS_ERR_INVAL);
}

static void test_trusted_domain(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "trusted_domain", "Carrier.Example.COM");
    expect_set_ok(c, "trusted_domain", "a.example, *.b.example ,192.0.2.7,[2001:DB8::7]");
    assert_int_equal(c->n_trusted_domain, 5);
    assert_string_equal(c->trusted_domain[0], "carrier.example.com");
    assert_string_equal(c->trusted_domain[1], "a.example");
    assert_string_equal(c->trusted_domain[2], "*.b.example");
    assert_string_equal(c->trusted_domain[3], "192.0.2.7");
    assert_string_equal(c->trusted_domain[4], "[2001:db8::7]");
    static const char *const bad[] = {"",
                                      "*",
                                      "a,,b",
                                      "a,",
                                      "-a.example",
                                      "a_b.example",
                                      "*.*.example",
                                      "*.",
                                      "a.example:5061",
                                      "1.2.3",
                                      "x*.example",
                                      "*.1.2.3.4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_set_fails(c, "trusted_domain", bad[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    assert_int_equal(c->n_trusted_domain, 5);
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    expect_set_fails(c, "trusted_domain", longname, SIPTLS_ERR_CONFIG_VALUE);
    longname[0] = '*';
    longname[1] = '.';
    expect_set_fails(c, "trusted_domain", longname, SIPTLS_ERR_CONFIG_VALUE);
}

/* ---- domains -------------------------------------------------------------- */

static void test_domain_declare(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "server_domain", "sbc");
    expect_set_ok(c, "client_domain", "sbc"); /* same name, other kind: fine */
    expect_set_ok(c, "client_domain", "carrier_1.example-x");
    assert_int_equal(c->n_domains, 5);
    const siptls_domain_cfg *d = siptls_config_domain(c, "sbc", 1);
    assert_non_null(d);
    assert_int_equal(d->is_server, 1);
    assert_int_equal(d->verify_cert, -1);
    assert_int_equal(d->require_cert, -1);
    assert_null(d->certificate);
    assert_non_null(siptls_config_domain(c, "sbc", 0));
    assert_null(siptls_config_domain(c, "carrier_1.example-x", 1));
    assert_non_null(siptls_config_domain(c, "carrier_1.example-x", 0));

    expect_set_fails(c, "server_domain", "sbc", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "server_domain", "default", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "client_domain", "default", SIPTLS_ERR_CONFIG_VALUE);
    static const char *const bad[] = {
        "",
        "a b",
        "a:b",
        "[x]",
        "a]",
        "=1.2.3.4:5061",
        "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_set_fails(c, "server_domain", bad[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    /* 63 characters is the limit */
    expect_set_ok(c, "server_domain",
                  "012345678901234567890123456789012345678901234567890123456789012");
}

static void test_domain_old_form(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "server_domain", "old=192.0.2.5:5061");
    const siptls_domain_cfg *d = siptls_config_domain(c, "old", 1);
    assert_non_null(d);
    assert_int_equal(d->n_match_ip_address, 1);
    assert_string_equal(d->match_ip_address[0], "192.0.2.5:5061");
    expect_set_ok(c, "server_domain", "old6 = [2001:DB8::5]:5061");
    d = siptls_config_domain(c, "old6", 1);
    assert_string_equal(d->match_ip_address[0], "[2001:db8::5]:5061");

    expect_set_ok(c, "client_domain", "gw=198.51.100.1:5061");
    d = siptls_config_domain(c, "gw", 0);
    assert_int_equal(d->n_match_ip_address, 1);
    assert_int_equal(d->n_match_sip_domain, 0);
    expect_set_ok(c, "client_domain", "carrier=Carrier.Example");
    d = siptls_config_domain(c, "carrier", 0);
    assert_int_equal(d->n_match_ip_address, 0);
    assert_int_equal(d->n_match_sip_domain, 1);
    assert_string_equal(d->match_sip_domain[0], "carrier.example");

    expect_set_fails(c, "server_domain", "x=sip.example.org", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "server_domain", "x=192.0.2.5", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "server_domain", "x=", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "client_domain", "x=not a name", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "server_domain", "old=192.0.2.6:5061", SIPTLS_ERR_CONFIG_VALUE);
}

static void test_domain_prefixes(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "server_domain", "both");
    expect_set_ok(c, "client_domain", "both");
    expect_set_ok(c, "server_domain", "srv");
    expect_set_ok(c, "client_domain", "cli");
    const siptls_domain_cfg *bs = siptls_config_domain(c, "both", 1);
    const siptls_domain_cfg *bc = siptls_config_domain(c, "both", 0);
    const siptls_domain_cfg *s = siptls_config_domain(c, "srv", 1);
    const siptls_domain_cfg *k = siptls_config_domain(c, "cli", 0);

    /* no prefix: both default domains */
    expect_set_ok(c, "ca_list", "/ca.pem");
    assert_string_equal(srv_default(c)->ca_list, "/ca.pem");
    assert_string_equal(cli_default(c)->ca_list, "/ca.pem");
    assert_null(s->ca_list);
    expect_set_ok(c, "verify_cert", "1");
    assert_int_equal(srv_default(c)->verify_cert, 1);
    assert_int_equal(cli_default(c)->verify_cert, 1);
    expect_set_ok(c, "verify_cert", "[server:default]0");
    assert_int_equal(srv_default(c)->verify_cert, 0);
    assert_int_equal(cli_default(c)->verify_cert, 1);
    expect_set_ok(c, "ca_dir", "[default]/cadir");
    assert_string_equal(srv_default(c)->ca_dir, "/cadir");
    assert_string_equal(cli_default(c)->ca_dir, "/cadir");

    /* [NAME]: every domain of that name */
    expect_set_ok(c, "certificate", "[both]/both.pem");
    assert_string_equal(bs->certificate, "/both.pem");
    assert_string_equal(bc->certificate, "/both.pem");
    assert_null(srv_default(c)->certificate);
    expect_set_ok(c, "certificate", "[server:both] /s.pem ");
    assert_string_equal(bs->certificate, "/s.pem");
    assert_string_equal(bc->certificate, "/both.pem");
    expect_set_ok(c, "certificate", "[client:both]/c.pem");
    assert_string_equal(bs->certificate, "/s.pem");
    assert_string_equal(bc->certificate, "/c.pem");
    expect_set_ok(c, "match_sip_domain", "[both]Both.Example");
    assert_int_equal(bs->n_match_sip_domain, 1);
    assert_int_equal(bc->n_match_sip_domain, 1);
    assert_string_equal(bc->match_sip_domain[0], "both.example");
    expect_set_ok(c, "require_cert", "[srv]yes");
    assert_int_equal(s->require_cert, 1);
    expect_set_ok(c, "private_key", "[cli]/k.key");
    assert_string_equal(k->private_key, "/k.key");
    expect_set_ok(c, "private_key", "[cli]");
    assert_null(k->private_key);

    /* unknown domains and wrong kinds */
    static const char *const unknown[] = {"[nope]/x",        "[client:srv]/x", "[server:cli]/x",
                                          "[server:nope]/x", "[Srv]/x",        "[ both]/x"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        expect_set_fails(c, "certificate", unknown[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    siptls_config_error e;
    assert_int_equal(siptls_config_set(c, "certificate", "[nope]/x", &e), SIPTLS_ERR_CONFIG_VALUE);
    assert_non_null(strstr(e.msg, "unknown domain 'nope'"));
    expect_set_fails(c, "certificate", "[srv/x", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "certificate", "[]/x", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "certificate", "[server:]/x", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "verify_cert", "[srv]maybe", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "verify_cert", "[srv]", SIPTLS_ERR_CONFIG_VALUE);

    /* a mistyped prefix is an error, not a file name "[sever:srv]/x" */
    static const char *const typos[] = {"[sever:srv]/x", "[srv:x]/x", "[server:a:b]/x", "[::1]"};
    for (size_t i = 0; i < sizeof(typos) / sizeof(typos[0]); i++) {
        expect_set_fails(c, "certificate", typos[i], SIPTLS_ERR_CONFIG_VALUE);
        expect_set_fails(c, "verify_cert", typos[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    assert_int_equal(siptls_config_set(c, "ca_list", "[sever:srv]/x", &e), SIPTLS_ERR_CONFIG_VALUE);
    assert_non_null(strstr(e.msg, "bad domain prefix '[sever:srv]'"));

    /* a global key takes no prefix: the text is just a bad value */
    expect_set_fails(c, "tls_port", "[srv]5061", SIPTLS_ERR_CONFIG_VALUE);
}

static void test_match_ip_address(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "server_domain", "s");
    const siptls_domain_cfg *s = siptls_config_domain(c, "s", 1);
    expect_set_ok(c, "match_ip_address", "[s]192.0.2.1:5061");
    expect_set_ok(c, "match_ip_address", "[s][2001:DB8::1]:5061, 0.0.0.0:5062,*");
    expect_set_ok(c, "match_ip_address", "[server:s][::1]:5063");
    assert_int_equal(s->n_match_ip_address, 5);
    assert_string_equal(s->match_ip_address[0], "192.0.2.1:5061");
    assert_string_equal(s->match_ip_address[1], "[2001:db8::1]:5061");
    assert_string_equal(s->match_ip_address[2], "0.0.0.0:5062");
    assert_string_equal(s->match_ip_address[3], "*");
    assert_string_equal(s->match_ip_address[4], "[::1]:5063");
    /* an IPv6 bracket is not a domain prefix */
    expect_set_ok(c, "match_ip_address", "[::1]:5061");
    assert_int_equal(srv_default(c)->n_match_ip_address, 1);
    assert_string_equal(srv_default(c)->match_ip_address[0], "[::1]:5061");
    assert_int_equal(cli_default(c)->n_match_ip_address, 1);

    static const char *const bad[] = {"[s]192.0.2.1",
                                      "[s]sip.example.org:5061",
                                      "[s]192.0.2.1:0",
                                      "[s]192.0.2.1:65536",
                                      "[s]::1:5061",
                                      "[s]*:5061",
                                      "[s]",
                                      "[s]192.0.2.1:5061,",
                                      "[s]tls:1.2.3.4:5061",
                                      "[s][::1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_set_fails(c, "match_ip_address", bad[i], SIPTLS_ERR_CONFIG_VALUE);
    }
    /* a failing item in a list adds none of the list */
    assert_int_equal(s->n_match_ip_address, 5);
}

static void test_match_sip_domain(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "client_domain", "k");
    const siptls_domain_cfg *k = siptls_config_domain(c, "k", 0);
    expect_set_ok(c, "match_sip_domain", "[k]*");
    expect_set_ok(c, "match_sip_domain", "[k]*.Example.ORG,sip.example.net");
    assert_int_equal(k->n_match_sip_domain, 3);
    assert_string_equal(k->match_sip_domain[0], "*");
    assert_string_equal(k->match_sip_domain[1], "*.example.org");
    assert_string_equal(k->match_sip_domain[2], "sip.example.net");
    expect_set_fails(c, "match_sip_domain", "[k]bad_name", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "match_sip_domain", "[k]", SIPTLS_ERR_CONFIG_VALUE);
}

static void test_domain_effective(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "ca_list", "/ca.pem");
    expect_set_ok(c, "certificate", "[server:default]/srv.pem");
    expect_set_ok(c, "server_domain", "s");
    expect_set_ok(c, "client_domain", "k");
    expect_set_ok(c, "certificate", "[s]/s.pem");
    expect_set_ok(c, "match_sip_domain", "[s]s.example");
    expect_set_ok(c, "require_cert", "[s]1");

    siptls_domain_cfg eff;
    const siptls_domain_cfg *s = siptls_config_domain(c, "s", 1);
    assert_int_equal(siptls_config_domain_effective(c, s, &eff), SIPTLS_OK);
    assert_string_equal(eff.name, "s");
    assert_int_equal(eff.is_server, 1);
    assert_string_equal(eff.certificate, "/s.pem");
    assert_string_equal(eff.ca_list, "/ca.pem");
    assert_int_equal(eff.verify_cert, 0);
    assert_int_equal(eff.require_cert, 1);
    assert_int_equal(eff.n_match_sip_domain, 1);
    assert_null(eff.private_key);

    const siptls_domain_cfg *k = siptls_config_domain(c, "k", 0);
    assert_int_equal(siptls_config_domain_effective(c, k, &eff), SIPTLS_OK);
    assert_null(eff.certificate); /* the client default has none */
    assert_string_equal(eff.ca_list, "/ca.pem");
    assert_int_equal(eff.verify_cert, 1);
    assert_int_equal(eff.require_cert, 0);
    /* the stored domain itself is untouched */
    assert_int_equal(k->verify_cert, -1);
    assert_null(k->ca_list);
}

/* ---- file loader ---------------------------------------------------------- */

static void test_load_syntax(void **state)
{
    siptls_config *c = *state;
    siptls_config_error e;
    const char *text = "\xEF\xBB\xBF# full-line comment\n"
                       "   # indented comment\n"
                       "\n"
                       "  \t  \n"
                       "tls_port=5062\r\n"
                       "  dtls_port   =   5063   # trailing comment\n"
                       "tls_keylog_file = /var/log/a#b.log\n"
                       "tls_ticket_key_file = \"/etc/with space/#x \\\"q\\\" \\\\ \\n\"  # c\n"
                       "ca_list = \"\"\n"
                       "ciphers_list = # only a comment: empty value\n"
                       "ec_curve = X25519:P-256\n"
                       "listen = \"tls:192.0.2.1:5061\"\n"
                       "listen=tls:192.0.2.2";
    assert_int_equal(load(c, text, &e), SIPTLS_OK);
    assert_int_equal(c->tls_port, 5062);
    assert_int_equal(c->dtls_port, 5063);
    assert_string_equal(c->tls_keylog_file, "/var/log/a#b.log");
    assert_string_equal(c->tls_ticket_key_file, "/etc/with space/#x \"q\" \\ \\n");
    assert_null(srv_default(c)->ca_list);
    assert_null(srv_default(c)->ciphers_list);
    assert_string_equal(cli_default(c)->ec_curve, "X25519:P-256");
    assert_int_equal(c->n_listen, 2);
    assert_string_equal(c->listen[1], "tls:192.0.2.2");
    assert_int_equal(e.status, SIPTLS_OK);

    /* empty text and comment-only text change nothing */
    siptls_config before;
    assert_int_equal(siptls_config_copy(&before, c), SIPTLS_OK);
    assert_int_equal(load(c, "", &e), SIPTLS_OK);
    assert_int_equal(load(c, "# nothing\n\n", &e), SIPTLS_OK);
    assert_true(siptls_config_equal(&before, c));
    siptls_config_cleanup(&before);
}

typedef struct syntax_case {
    const char *text;
    int status;
    unsigned line;
    const char *key;
} syntax_case;

static const syntax_case syntax_cases[] = {
    {"tls_port 5062", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_port"},
    {"\n= 5062", SIPTLS_ERR_CONFIG_SYNTAX, 2, ""},
    {"tls-port = 5062", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls"},
    {"tls_keylog_file = \"/unterminated", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_keylog_file"},
    {"tls_keylog_file = \"/a\" junk", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_keylog_file"},
    {"tls_keylog_file = \"/a\";", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_keylog_file"},
    {"# c\n\nnot_a_param = 1", SIPTLS_ERR_CONFIG_KEY, 3, "not_a_param"},
    {"TLS_PORT = 5062", SIPTLS_ERR_CONFIG_KEY, 1, "TLS_PORT"},
    {"tls_port = ", SIPTLS_ERR_CONFIG_VALUE, 1, "tls_port"},
    {"tls_port = 5062 5063", SIPTLS_ERR_CONFIG_VALUE, 1, "tls_port"},
    {"tls_port = 5062#x", SIPTLS_ERR_CONFIG_VALUE, 1, "tls_port"},
    {"tls_port = 0", SIPTLS_ERR_CONFIG_RANGE, 1, "tls_port"},
    {"modparam(\"proto_tls\", \"tls_port\", 5062", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_port"},
    {"modparam(\"proto_tls\" \"tls_port\", 5062)", SIPTLS_ERR_CONFIG_SYNTAX, 1, ""},
    {"modparam(proto_tls, \"tls_port\", 5062)", SIPTLS_ERR_CONFIG_SYNTAX, 1, ""},
    {"modparam(\"proto_tls\", tls_port, 5062)", SIPTLS_ERR_CONFIG_SYNTAX, 1, ""},
    {"modparam(\"proto_tls\", \"tls_port\", )", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_port"},
    {"modparam(\"proto_tls\", \"tls_port\" 5062)", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_port"},
    {"a123456789012345678901234567890123456789012345678901234567890123 = 1",
     SIPTLS_ERR_CONFIG_SYNTAX, 1, ""},
    {"modparam(\"proto_tls\", \"tls_port\", 5062) x", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_port"},
    {"modparam(\"proto_tls\", \"tls_port\", 5062);;", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_port"},
    {"modparam(\"proto_tls\", \"tls_port\", \"5062)", SIPTLS_ERR_CONFIG_SYNTAX, 1, "tls_port"},
    {"modparam \"proto_tls\"", SIPTLS_ERR_CONFIG_SYNTAX, 1, "modparam"},
    {"modparam(\"dialog\", \"tls_port\", 5062)", SIPTLS_ERR_CONFIG_KEY, 1, "tls_port"},
    {"modparam(\"proto_tcp\", \"tls_port\", 5062)", SIPTLS_ERR_CONFIG_KEY, 1, "tls_port"},
    {"modparam(\"tls_mgm\", \"db_url\", \"mysql://x\")", SIPTLS_ERR_CONFIG_KEY, 1, "db_url"},
    {"modparam(\"proto_tls\", \"tls_port\", 70000)", SIPTLS_ERR_CONFIG_RANGE, 1, "tls_port"},
    {"listen = udp:1.2.3.4:5060", SIPTLS_ERR_CONFIG_VALUE, 1, "listen"},
    {"certificate = [nope]/x.pem", SIPTLS_ERR_CONFIG_VALUE, 1, "certificate"},
    {"tls_port = 5062\nmax_msg_size = 255\n", SIPTLS_ERR_CONFIG_RANGE, 2, "max_msg_size"},
};

static void test_load_errors(void **state)
{
    siptls_config *c = *state;
    siptls_config before;
    assert_int_equal(siptls_config_copy(&before, c), SIPTLS_OK);
    for (size_t i = 0; i < sizeof(syntax_cases) / sizeof(syntax_cases[0]); i++) {
        const syntax_case *t = &syntax_cases[i];
        siptls_config_error e;
        int rc = load(c, t->text, &e);
        if (rc != t->status || e.line != t->line || strcmp(e.key, t->key) != 0) {
            fail_msg("case %zu '%s': got %s line %u key '%s' (%s)", i, t->text,
                     siptls_status_name(rc), e.line, e.key, e.msg);
        }
        assert_int_equal(e.status, rc);
        assert_string_equal(e.file, "t.conf");
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "t.conf:%u: ", t->line);
        assert_true(strncmp(e.msg, prefix, strlen(prefix)) == 0);
        assert_true(siptls_config_equal(&before, c));
        /* err may be NULL */
        assert_int_equal(load(c, t->text, NULL), t->status);
    }
    siptls_config_cleanup(&before);
}

static void test_error_message_names_file_line_key(void **state)
{
    siptls_config *c = *state;
    char text[512] = "";
    for (int i = 1; i <= 11; i++) {
        strcat(text, "# comment\n");
    }
    strcat(text, "tls_port = 70000\n");
    siptls_config_error e;
    assert_int_equal(siptls_config_load_string(c, text, "siptls.conf", &e),
                     SIPTLS_ERR_CONFIG_RANGE);
    assert_string_equal(e.msg, "siptls.conf:12: tls_port: value 70000 out of range 1..65535");
    assert_string_equal(e.file, "siptls.conf");
    assert_int_equal(e.line, 12);
    assert_string_equal(e.key, "tls_port");
    assert_int_equal(e.status, SIPTLS_ERR_CONFIG_RANGE);

    assert_int_equal(siptls_config_load_string(c, "\nbogus = 1\n", "x.conf", &e),
                     SIPTLS_ERR_CONFIG_KEY);
    assert_string_equal(e.msg, "x.conf:2: bogus: unknown parameter");
    assert_int_equal(siptls_config_load_string(c, "garbage line\n", "x.conf", &e),
                     SIPTLS_ERR_CONFIG_SYNTAX);
    assert_string_equal(e.msg, "x.conf:1: garbage: expected '=' after the parameter name");
    assert_int_equal(siptls_config_load_string(c, "!!\n", "x.conf", &e), SIPTLS_ERR_CONFIG_SYNTAX);
    assert_string_equal(e.msg, "x.conf:1: expected 'key = value'");
}

static void test_line_length(void **state)
{
    siptls_config *c = *state;
    size_t max = 4096;
    char *text = malloc(max + 16);
    assert_non_null(text);
    /* exactly 4096 characters (plus CRLF): accepted */
    const char *head = "tls_keylog_file = /";
    strcpy(text, head);
    memset(text + strlen(head), 'k', max - strlen(head));
    strcpy(text + max, "\r\n");
    siptls_config_error e;
    assert_int_equal(load(c, text, &e), SIPTLS_OK);
    assert_int_equal(strlen(c->tls_keylog_file), max - strlen(head) + 1);
    /* 4097: refused */
    siptls_config before;
    assert_int_equal(siptls_config_copy(&before, c), SIPTLS_OK);
    memset(text + strlen(head), 'k', max + 1 - strlen(head));
    strcpy(text + max + 1, "\n");
    assert_int_equal(load(c, text, &e), SIPTLS_ERR_CONFIG_SYNTAX);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.msg, "line longer than 4096"));
    assert_true(siptls_config_equal(&before, c));
    siptls_config_cleanup(&before);
    free(text);
    /* set() has the same limit on values: 4096 ok, 4097 refused */
    char *value = malloc(max + 2);
    assert_non_null(value);
    memset(value, 'v', max);
    value[0] = '/';
    value[max] = '\0';
    expect_set_ok(c, "tls_keylog_file", value);
    value[max] = 'v';
    value[max + 1] = '\0';
    expect_set_fails(c, "tls_keylog_file", value, SIPTLS_ERR_CONFIG_VALUE);
    free(value);
}

static void test_modparam(void **state)
{
    siptls_config *c = *state;
    siptls_config_error e;
    int rc = siptls_config_load_file(c, CONF_DIR "/opensips.conf", &e);
    if (rc != SIPTLS_OK) {
        fail_msg("%s", e.msg);
    }
    assert_int_equal(c->n_listen, 1);
    assert_string_equal(c->listen[0], "tls:198.51.100.7:5061");
    assert_int_equal(c->tls_port, 5062);
    assert_int_equal(c->tls_crlf_pingpong, 1);
    assert_int_equal(c->tls_crlf_drop, 0);
    assert_int_equal(c->tls_max_msg_chunks, 8);
    assert_int_equal(c->tls_handshake_timeout, 20000);
    assert_int_equal(c->tls_send_timeout, 3000);
    assert_int_equal(c->dtls_mtu, 1400);
    const siptls_domain_cfg *d1 = siptls_config_domain(c, "dom1", 1);
    assert_non_null(d1);
    assert_string_equal(d1->match_ip_address[0], "198.51.100.7:5061");
    assert_string_equal(d1->match_sip_domain[0], "*");
    assert_string_equal(d1->certificate, "/etc/opensips/tls/dom1.crt");
    assert_string_equal(d1->private_key, "/etc/opensips/tls/dom1.key");
    assert_string_equal(d1->ca_list, "/etc/opensips/tls/ca.pem");
    assert_string_equal(d1->tls_method, "TLSv1_2");
    assert_int_equal(d1->verify_cert, 1);
    assert_int_equal(d1->require_cert, 0);
    const siptls_domain_cfg *d2 = siptls_config_domain(c, "dom2", 0);
    assert_non_null(d2);
    assert_string_equal(d2->match_sip_domain[0], "carrier.example.com");
    const siptls_domain_cfg *legacy = siptls_config_domain(c, "legacy", 1);
    assert_non_null(legacy);
    assert_string_equal(legacy->match_ip_address[0], "203.0.113.5:5061");
    assert_string_equal(srv_default(c)->ciphers_list, "ECDHE-ECDSA-AES128-GCM-SHA256");

    /* quoted numbers and bare words work too */
    assert_int_equal(load(c,
                          "modparam(\"proto_tls\", \"tls_port\", \"5070\")\n"
                          "modparam(\"tls_mgm\",\"verify_cert\",yes)",
                          &e),
                     SIPTLS_OK);
    assert_int_equal(c->tls_port, 5070);
    assert_int_equal(cli_default(c)->verify_cert, 1);
    /* key = value lines and modparam lines mix; the module name is exact */
    assert_int_equal(load(c, "modparam(\"Proto_TLS\", \"tls_port\", 5071)", &e),
                     SIPTLS_ERR_CONFIG_KEY);
    assert_non_null(strstr(e.msg, "module 'Proto_TLS'"));
}

static void test_all_or_nothing(void **state)
{
    siptls_config *c = *state;
    expect_set_ok(c, "listen", "tls:192.0.2.99");
    expect_set_ok(c, "server_domain", "pre");
    expect_set_ok(c, "certificate", "[pre]/pre.pem");
    siptls_config before;
    assert_int_equal(siptls_config_copy(&before, c), SIPTLS_OK);

    siptls_config_error e;
    assert_int_equal(siptls_config_load_file(c, CONF_DIR "/bad_line5.conf", &e),
                     SIPTLS_ERR_CONFIG_RANGE);
    assert_int_equal(e.line, 5);
    assert_string_equal(e.key, "tls_port");
    assert_non_null(strstr(e.msg, "bad_line5.conf:5: tls_port: value 70000 out of range"));
    assert_true(siptls_config_equal(&before, c));
    assert_int_equal(c->tls_port, 5061);
    assert_int_equal(c->n_listen, 1);
    assert_null(siptls_config_domain(c, "half", 1));
    assert_int_equal(c->max_msg_size, 65535);

    /* same through load_string, error on the last line */
    assert_int_equal(load(c, "tls_port = 5999\ncertificate = [pre]/new.pem\nlisten = x:y\n", &e),
                     SIPTLS_ERR_CONFIG_VALUE);
    assert_int_equal(e.line, 3);
    assert_true(siptls_config_equal(&before, c));
    assert_string_equal(siptls_config_domain(c, "pre", 1)->certificate, "/pre.pem");
    siptls_config_cleanup(&before);
}

static void test_load_file_io(void **state)
{
    siptls_config *c = *state;
    siptls_config_error e;
    assert_int_equal(siptls_config_load_file(c, CONF_DIR "/does-not-exist.conf", &e),
                     SIPTLS_ERR_CONFIG_IO);
    assert_int_equal(e.status, SIPTLS_ERR_CONFIG_IO);
    assert_non_null(strstr(e.msg, "does-not-exist.conf"));
    assert_non_null(strstr(e.msg, "cannot open"));
    assert_int_equal(siptls_config_load_file(c, CONF_DIR, &e), SIPTLS_ERR_CONFIG_IO);

    /* a NUL byte in a file is a syntax error on its line */
    char path[] = "/tmp/siptls-test-nul-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    fwrite("tls_port = 5062\nlog_level = 1\0\n", 1, 31, f);
    fclose(f);
    assert_int_equal(siptls_config_load_file(c, path, &e), SIPTLS_ERR_CONFIG_SYNTAX);
    assert_int_equal(e.line, 2);
    assert_int_equal(c->tls_port, 5061);
    /* an empty file is fine */
    f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(siptls_config_load_file(c, path, &e), SIPTLS_OK);
    remove(path);
}

static void test_load_full_file(void **state)
{
    siptls_config *c = *state;
    siptls_config_error e;
    int rc = siptls_config_load_file(c, CONF_DIR "/full.conf", &e);
    if (rc != SIPTLS_OK) {
        fail_msg("%s", e.msg);
    }
    assert_int_equal(c->n_listen, 3);
    siptls_uri u;
    assert_int_equal(siptls_config_listen_uri(c, 1, &u), SIPTLS_OK);
    assert_int_equal(u.port, 5072); /* dtls_port set two lines later */
    assert_int_equal(siptls_config_listen_uri(c, 2, &u), SIPTLS_OK);
    assert_int_equal(u.port, 5071);
    assert_int_equal(c->tls_crlf_pingpong, 1);
    assert_int_equal(c->tls_max_msg_chunks, 16);
    assert_int_equal(c->max_msg_size, 131072);
    assert_int_equal(c->log_level, 3);
    assert_int_equal(c->n_trusted_domain, 2);
    assert_string_equal(c->trusted_domain[0], "example.org");
    assert_string_equal(c->tls_keylog_file, "/tmp/siptls keys#1.log");
    assert_string_equal(srv_default(c)->tls_method, "TLSv1_2-TLSv1_3");
    const siptls_domain_cfg *sbc = siptls_config_domain(c, "sbc", 1);
    assert_non_null(sbc);
    assert_int_equal(sbc->verify_cert, 1);
    assert_int_equal(sbc->require_cert, 1);
    const siptls_domain_cfg *car = siptls_config_domain(c, "carrier", 0);
    assert_non_null(car);
    assert_string_equal(car->certificate, "/etc/siptls/client.pem");
    assert_string_equal(car->match_sip_domain[0], "*.carrier.example");
}

static void test_example_conf_loads(void **state)
{
    siptls_config *c = *state;
    siptls_config_error e;
    int rc = siptls_config_load_file(c, EXAMPLE_CONF, &e);
    if (rc != SIPTLS_OK) {
        fail_msg("examples/siptls.conf: %s", e.msg);
    }
    assert_true(c->n_listen >= 1);
}

/* ---- dump, copy, equal ----------------------------------------------------- */

static void check_dump_round_trip(const siptls_config *c)
{
    char *text = dump_text(c);
    siptls_config back;
    assert_int_equal(siptls_config_init(&back), SIPTLS_OK);
    siptls_config_error e;
    int rc = siptls_config_load_string(&back, text, "dump", &e);
    if (rc != SIPTLS_OK) {
        fail_msg("%s\n--- dump ---\n%s", e.msg, text);
    }
    if (!siptls_config_equal(c, &back)) {
        char *again = dump_text(&back);
        fail_msg("dump round trip differs\n--- first ---\n%s\n--- second ---\n%s", text, again);
    }
    /* dumping again gives the same text */
    char *again = dump_text(&back);
    assert_string_equal(text, again);
    free(again);
    free(text);
    siptls_config_cleanup(&back);
}

static void make_rich(siptls_config *c)
{
    siptls_config_error e;
    int rc = siptls_config_load_file(c, CONF_DIR "/full.conf", &e);
    if (rc != SIPTLS_OK) {
        fail_msg("%s", e.msg);
    }
    expect_set_ok(c, "tls_ticket_key_file", "/odd \"quoted\" back\\slash # hash");
    expect_set_ok(c, "server_domain", "bare"); /* declared, all unset */
    expect_set_ok(c, "client_domain", "sbc");  /* same name as a server one */
    expect_set_ok(c, "ciphers_list", "[client:sbc]HIGH:!aNULL");
    expect_set_ok(c, "verify_cert", "[client:sbc]0");
    expect_set_ok(c, "match_ip_address", "[::1]:5061");
    expect_set_ok(c, "crl_file", "[server:default]/crl.pem");
}

static void test_dump_round_trip(void **state)
{
    siptls_config *c = *state;
    check_dump_round_trip(c); /* defaults */
    make_rich(c);
    check_dump_round_trip(c);

    char *text = dump_text(c);
    assert_non_null(strstr(text, "tls_port = 5071\n"));
    assert_non_null(strstr(text, "server_domain = \"sbc\"\n"));
    assert_non_null(strstr(text, "certificate = \"[server:sbc]/etc/siptls/sbc.pem\"\n"));
    assert_non_null(
        strstr(text, "tls_ticket_key_file = \"/odd \\\"quoted\\\" back\\\\slash # hash\"\n"));
    /* a declared domain's unset settings are not written */
    assert_null(strstr(text, "[server:bare]"));
    free(text);
}

static void test_copy(void **state)
{
    siptls_config *c = *state;
    make_rich(c);
    siptls_config copy;
    assert_int_equal(siptls_config_copy(&copy, c), SIPTLS_OK);
    assert_true(siptls_config_equal(&copy, c));
    /* deep: no pointer shared */
    assert_ptr_not_equal(copy.listen, c->listen);
    assert_ptr_not_equal(copy.listen[0], c->listen[0]);
    assert_ptr_not_equal(copy.domains, c->domains);
    assert_ptr_not_equal(copy.domains[0].ca_list, c->domains[0].ca_list);
    assert_ptr_not_equal(copy.domains[2].name, c->domains[2].name);
    expect_set_ok(&copy, "listen", "tls:192.0.2.200");
    expect_set_ok(&copy, "certificate", "[sbc]/changed.pem");
    assert_false(siptls_config_equal(&copy, c));
    assert_int_equal(c->n_listen, 3);
    assert_string_equal(siptls_config_domain(c, "sbc", 1)->certificate, "/etc/siptls/sbc.pem");
    siptls_config_cleanup(&copy);

    /* copy of a fresh config */
    siptls_config fresh;
    siptls_config copy2;
    assert_int_equal(siptls_config_init(&fresh), SIPTLS_OK);
    assert_int_equal(siptls_config_copy(&copy2, &fresh), SIPTLS_OK);
    assert_true(siptls_config_equal(&copy2, &fresh));
    siptls_config_cleanup(&copy2);
    siptls_config_cleanup(&fresh);
}

/* One non-default value per parameter: each makes the config differ from a
 * fresh one. The test fails when a table parameter is missing here. */
/* dns_servers: "IP:port" items (IPv6 in brackets), canonical, appended per
 * line and per comma; "*", a name or a missing port are refused. */
static void test_dns_servers(void **state)
{
    siptls_config *c = *state;
    assert_int_equal(c->n_dns_servers, 0);
    assert_int_equal(c->dns_timeout, 2000);
    assert_int_equal(c->dns_tries, 3);
    expect_set_ok(c, "dns_servers", "127.0.0.1:5353, [0:0::1]:53");
    expect_set_ok(c, "dns_servers", "192.0.2.53:53");
    assert_int_equal(c->n_dns_servers, 3);
    assert_string_equal(c->dns_servers[0], "127.0.0.1:5353");
    assert_string_equal(c->dns_servers[1], "[::1]:53");
    assert_string_equal(c->dns_servers[2], "192.0.2.53:53");
    expect_set_fails(c, "dns_servers", "*", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "dns_servers", "127.0.0.1", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "dns_servers", "ns.example.org:53", SIPTLS_ERR_CONFIG_VALUE);
    expect_set_fails(c, "dns_servers", "127.0.0.1:53,", SIPTLS_ERR_CONFIG_VALUE);
    assert_int_equal(c->n_dns_servers, 3);
}

static const char *const mutations[][2] = {
    {"listen", "tls:192.0.2.1"},
    {"tls_port", "5062"},
    {"dtls_port", "5062"},
    {"tls_crlf_pingpong", "0"},
    {"tls_crlf_drop", "1"},
    {"tls_max_msg_chunks", "0"},
    {"tls_max_msg_time", "0"},
    {"max_msg_size", "1000"},
    {"max_header_size", "1000"},
    {"keepalive_interval", "30"},
    {"keepalive_timeout", "5"},
    {"tls_handshake_timeout", "1"},
    {"tls_connect_timeout", "1"},
    {"tls_send_timeout", "1"},
    {"tls_async_max_postponed_chunks", "1"},
    {"tls_async_max_queued_bytes", "1024"},
    {"tls_connection_lifetime", "1"},
    {"tls_max_connections", "1"},
    {"queue_high_water", "50"},
    {"queue_low_water", "10"},
    {"post_max_pending", "1"},
    {"post_max_pending_bytes", "65536"},
    {"trusted_domain", "example.org"},
    {"tls_keylog_file", "/k"},
    {"tls_session_cache", "0"},
    {"tls_session_tickets", "0"},
    {"tls_ticket_key_file", "/t"},
    {"dtls_handshake_timeout", "1"},
    {"reuse_port", "1"},
    {"dtls_mtu", "1400"},
    {"dtls_session_lifetime", "1"},
    {"dtls_max_sessions", "1"},
    {"dtls_reassembly_timeout", "1"},
    {"dtls_handshake_rate", "0"},
    {"dtls_cookie_lifetime", "1"},
    {"dtls_cid", "0"},
    {"dtls_cid_length", "16"},
    {"log_level", "3"},
    {"dns_servers", "127.0.0.1:5353"},
    {"dns_timeout", "500"},
    {"dns_tries", "1"},
    {"server_domain", "s"},
    {"client_domain", "c"},
    {"match_ip_address", "192.0.2.1:5061"},
    {"match_sip_domain", "example.org"},
    {"certificate", "/c"},
    {"private_key", "/k"},
    {"ca_list", "/ca"},
    {"ca_dir", "/cadir"},
    {"crl_file", "/crl"},
    {"ciphers_list", "HIGH"},
    {"tls_method", "TLSv1_3"},
    {"ec_curve", "X25519"},
    {"dtls_min_version", "1.3"},
    {"dtls_max_version", "1.2"},
    {"verify_cert", "[server:default]1"},
    {"require_cert", "1"},
};

static void test_equal_sees_every_param(void **state)
{
    siptls_config *c = *state;
    const size_t nm = sizeof(mutations) / sizeof(mutations[0]);
    const char *name;
    for (size_t i = 0; siptls_config_param(i, &name, NULL); i++) {
        int listed = 0;
        for (size_t k = 0; k < nm; k++) {
            listed |= strcmp(mutations[k][0], name) == 0;
        }
        if (!listed) {
            fail_msg("parameter %s has no mutation in test_equal_sees_every_param", name);
        }
    }
    for (size_t k = 0; k < nm; k++) {
        siptls_config m;
        assert_int_equal(siptls_config_copy(&m, c), SIPTLS_OK);
        expect_set_ok(&m, mutations[k][0], mutations[k][1]);
        if (siptls_config_equal(&m, c)) {
            fail_msg("setting %s = %s is not seen by siptls_config_equal", mutations[k][0],
                     mutations[k][1]);
        }
        /* and every mutation survives a dump */
        check_dump_round_trip(&m);
        siptls_config_cleanup(&m);
    }
}

static void test_cleanup_and_reinit(void **state)
{
    (void)state;
    siptls_config c;
    assert_int_equal(siptls_config_init(&c), SIPTLS_OK);
    make_rich(&c);
    siptls_config_cleanup(&c);
    assert_null(c.domains);
    assert_int_equal(c.n_listen, 0);
    siptls_config_cleanup(&c); /* twice is harmless */
    assert_int_equal(siptls_config_init(&c), SIPTLS_OK);
    assert_int_equal(c.tls_port, 5061);
    siptls_config_cleanup(&c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_param_table),
        T(test_bool),
        T(test_number_ranges),
        T(test_range_message),
        T(test_strings),
        T(test_tls_method),
        T(test_dtls_versions),
        T(test_null_args),
        T(test_listen),
        T(test_trusted_domain),
        T(test_domain_declare),
        T(test_domain_old_form),
        T(test_domain_prefixes),
        T(test_match_ip_address),
        T(test_match_sip_domain),
        T(test_domain_effective),
        T(test_load_syntax),
        T(test_load_errors),
        T(test_error_message_names_file_line_key),
        T(test_line_length),
        T(test_modparam),
        T(test_all_or_nothing),
        T(test_load_file_io),
        T(test_load_full_file),
        T(test_example_conf_loads),
        T(test_dump_round_trip),
        T(test_copy),
        T(test_equal_sees_every_param),
        T(test_dns_servers),
        T(test_cleanup_and_reinit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
