/* Unit tests: listen / destination URIs (src/uri.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "siptls/target.h"
#include "siptls/uri.h"

typedef struct ok_case {
    const char *text;
    siptls_transport transport;
    siptls_host_kind kind;
    const char *host;
    unsigned port;
    int port_given;
} ok_case;

static const ok_case ok_cases[] = {
    {"tls:192.0.2.1:5061", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV4, "192.0.2.1", 5061, 1},
    {"tls:192.0.2.1", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV4, "192.0.2.1", 5061, 0},
    {"TLS:192.0.2.1:1", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV4, "192.0.2.1", 1, 1},
    {"Dtls:10.0.0.1:65535", SIPTLS_TRANSPORT_DTLS, SIPTLS_HOST_IPV4, "10.0.0.1", 65535, 1},
    {"dtls:10.0.0.1", SIPTLS_TRANSPORT_DTLS, SIPTLS_HOST_IPV4, "10.0.0.1", 5062, 0},
    {"tls:255.255.255.255:5061", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV4, "255.255.255.255", 5061,
     1},
    {"tls:0.0.0.0:5061", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV4, "0.0.0.0", 5061, 1},
    {"tls:0.0.0.0", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV4, "0.0.0.0", 5061, 0},
    {"tls:[::]", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV6, "::", 5061, 0},
    {"tls:[::]:5061", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV6, "::", 5061, 1},
    {"tls:[::1]:5061", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV6, "::1", 5061, 1},
    {"dtls:[2001:DB8:0:0::1]:5070", SIPTLS_TRANSPORT_DTLS, SIPTLS_HOST_IPV6, "2001:db8::1", 5070,
     1},
    {"tls:[::ffff:192.0.2.1]", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_IPV6, "::ffff:192.0.2.1", 5061, 0},
    {"tls:*", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_ANY, "*", 5061, 0},
    {"tls:*:5063", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_ANY, "*", 5063, 1},
    {"tls:example.org", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_NAME, "example.org", 5061, 0},
    {"tls:Sip-1.Example.ORG:5061", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_NAME, "Sip-1.Example.ORG",
     5061, 1},
    {"tls:localhost:5061", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_NAME, "localhost", 5061, 1},
    {"tls:1.2.3.4x", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_NAME, "1.2.3.4x", 5061, 0},
    {"tls:3com.example", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_NAME, "3com.example", 5061, 0},
    {"tls:a:00080", SIPTLS_TRANSPORT_TLS, SIPTLS_HOST_NAME, "a", 80, 1},
};

static void test_parse_ok_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const ok_case *c = &ok_cases[i];
        siptls_uri u;
        int rc = siptls_uri_parse(c->text, 5061, 5062, 0, &u);
        if (rc != SIPTLS_OK) {
            fail_msg("%s: %s", c->text, siptls_status_name(rc));
        }
        assert_int_equal(u.transport, c->transport);
        assert_int_equal(u.host_kind, c->kind);
        assert_string_equal(u.host, c->host);
        assert_int_equal(u.port, c->port);
        assert_int_equal(u.port_given, c->port_given);
    }
}

typedef struct bad_case {
    const char *text;
    int status;
} bad_case;

static const bad_case bad_cases[] = {
    /* scheme */
    {"udp:1.2.3.4:5060", SIPTLS_ERR_URI_SCHEME},
    {"tcp:1.2.3.4:5060", SIPTLS_ERR_URI_SCHEME},
    {"sip:1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    {"sips:1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    {"wss:1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    {"tlsx:1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    {"tl:1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    {"1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    {"", SIPTLS_ERR_URI_SCHEME},
    {" tls:1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    {":1.2.3.4", SIPTLS_ERR_URI_SCHEME},
    /* address */
    {"tls:", SIPTLS_ERR_URI_ADDR},
    {"tls::5061", SIPTLS_ERR_URI_ADDR},
    {"tls:256.1.1.1", SIPTLS_ERR_URI_ADDR},
    {"tls:1.2.3", SIPTLS_ERR_URI_ADDR},
    {"tls:1.2.3.4.5", SIPTLS_ERR_URI_ADDR},
    {"tls:01.2.3.4", SIPTLS_ERR_URI_ADDR},
    {"tls:1..3.4", SIPTLS_ERR_URI_ADDR},
    {"tls:+1.2.3.4", SIPTLS_ERR_URI_ADDR},
    {"tls:1.2.3.4 ", SIPTLS_ERR_URI_ADDR},
    {"tls:::1", SIPTLS_ERR_URI_ADDR},
    {"tls:::1:5061", SIPTLS_ERR_URI_ADDR},
    {"tls:2001:db8::1", SIPTLS_ERR_URI_ADDR},
    {"tls:fe80::1:5061", SIPTLS_ERR_URI_ADDR},
    {"tls:[::1", SIPTLS_ERR_URI_ADDR},
    {"tls:[]", SIPTLS_ERR_URI_ADDR},
    {"tls:[1.2.3.4]", SIPTLS_ERR_URI_ADDR},
    {"tls:[example.org]", SIPTLS_ERR_URI_ADDR},
    {"tls:[fe80::1%eth0]:5061", SIPTLS_ERR_URI_ADDR},
    {"tls:[::1::2]", SIPTLS_ERR_URI_ADDR},
    {"tls:[0000:0000:0000:0000:0000:0000:0000:0000:1]", SIPTLS_ERR_URI_ADDR},
    {"tls:-example.org", SIPTLS_ERR_URI_ADDR},
    {"tls:example-.org", SIPTLS_ERR_URI_ADDR},
    {"tls:exa_mple.org", SIPTLS_ERR_URI_ADDR},
    {"tls:example..org", SIPTLS_ERR_URI_ADDR},
    {"tls:.example.org", SIPTLS_ERR_URI_ADDR},
    {"tls:example.org.", SIPTLS_ERR_URI_ADDR},
    {"tls:*.example.org", SIPTLS_ERR_URI_ADDR},
    {"tls:**", SIPTLS_ERR_URI_ADDR},
    {"tls:ex ample.org", SIPTLS_ERR_URI_ADDR},
    {"tls:user@example.org", SIPTLS_ERR_URI_ADDR},
    /* port */
    {"tls:1.2.3.4:", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4:0", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4:00", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4:65536", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4:99999999999999999999999", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4:-1", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4:+5061", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4:x", SIPTLS_ERR_URI_PORT},
    {"tls:1.2.3.4: 5061", SIPTLS_ERR_URI_PORT},
    {"tls:[::1]:", SIPTLS_ERR_URI_PORT},
    {"tls:[::1]:0x10", SIPTLS_ERR_URI_PORT},
    /* trailing */
    {"tls:1.2.3.4:5061x", SIPTLS_ERR_URI_TRAILING},
    {"tls:1.2.3.4:5061 ", SIPTLS_ERR_URI_TRAILING},
    {"tls:1.2.3.4:5061:7", SIPTLS_ERR_URI_TRAILING},
    {"tls:1.2.3.4:5061/", SIPTLS_ERR_URI_TRAILING},
    {"tls:1.2.3.4:5061;transport=tls", SIPTLS_ERR_URI_TRAILING},
    {"tls:[::1]x", SIPTLS_ERR_URI_TRAILING},
    {"tls:[::1]5061", SIPTLS_ERR_URI_TRAILING},
    {"tls:[::1]:5061]", SIPTLS_ERR_URI_TRAILING},
};

static void test_parse_errors_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        siptls_uri u;
        memset(&u, 0x5a, sizeof(u));
        siptls_uri before = u;
        int rc = siptls_uri_parse(bad_cases[i].text, 5061, 5061, 0, &u);
        if (rc != bad_cases[i].status) {
            fail_msg("'%s': got %s, want %s", bad_cases[i].text, siptls_status_name(rc),
                     siptls_status_name(bad_cases[i].status));
        }
        /* *out is written only on success */
        assert_memory_equal(&u, &before, sizeof(u));
    }
}

static void test_null_args(void **state)
{
    (void)state;
    siptls_uri u;
    assert_int_equal(siptls_uri_parse(NULL, 5061, 5061, 0, &u), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_uri_parse("tls:1.2.3.4", 5061, 5061, 0, NULL), SIPTLS_ERR_INVAL);
    char buf[64];
    assert_int_equal(siptls_uri_format(NULL, buf, sizeof(buf)), SIPTLS_ERR_INVAL);
    assert_string_equal(buf, "");
    assert_int_equal(siptls_uri_parse("tls:1.2.3.4", 5061, 5061, 0, &u), SIPTLS_OK);
    assert_int_equal(siptls_uri_format(&u, NULL, 64), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_uri_format(&u, buf, 0), SIPTLS_ERR_INVAL);
}

static void test_port0(void **state)
{
    (void)state;
    siptls_uri u;
    assert_int_equal(siptls_uri_parse("tls:1.2.3.4:0", 5061, 5061, 1, &u), SIPTLS_OK);
    assert_int_equal(u.port, 0);
    assert_int_equal(u.port_given, 1);
    assert_int_equal(siptls_uri_parse("tls:[::1]:0", 5061, 5061, 0, &u), SIPTLS_ERR_URI_PORT);
    /* a default port of 0 counts as port 0 */
    assert_int_equal(siptls_uri_parse("tls:1.2.3.4", 0, 5061, 0, &u), SIPTLS_ERR_URI_PORT);
    assert_int_equal(siptls_uri_parse("dtls:1.2.3.4", 5061, 0, 0, &u), SIPTLS_ERR_URI_PORT);
    assert_int_equal(siptls_uri_parse("dtls:1.2.3.4", 5061, 0, 1, &u), SIPTLS_OK);
    assert_int_equal(u.port, 0);
    assert_int_equal(u.port_given, 0);
    /* the default of the other transport is not used */
    assert_int_equal(siptls_uri_parse("tls:1.2.3.4", 5061, 0, 0, &u), SIPTLS_OK);
    assert_int_equal(u.port, 5061);
}

static void test_hostname_limits(void **state)
{
    (void)state;
    char text[400];
    char label63[64];
    memset(label63, 'a', 63);
    label63[63] = '\0';
    siptls_uri u;

    snprintf(text, sizeof(text), "tls:%s.example", label63);
    assert_int_equal(siptls_uri_parse(text, 5061, 5061, 0, &u), SIPTLS_OK);
    snprintf(text, sizeof(text), "tls:%sb.example", label63);
    assert_int_equal(siptls_uri_parse(text, 5061, 5061, 0, &u), SIPTLS_ERR_URI_ADDR);

    /* 253 characters: 3 labels of 63 + 1 of 61 + 3 dots */
    char name[300];
    snprintf(name, sizeof(name), "%s.%s.%s.", label63, label63, label63);
    size_t n = strlen(name);
    memset(name + n, 'c', 253 - n);
    name[253] = '\0';
    snprintf(text, sizeof(text), "tls:%s:5061", name);
    assert_int_equal(siptls_uri_parse(text, 5061, 5061, 0, &u), SIPTLS_OK);
    assert_int_equal(strlen(u.host), 253);
    snprintf(text, sizeof(text), "tls:%sc:5061", name);
    assert_int_equal(siptls_uri_parse(text, 5061, 5061, 0, &u), SIPTLS_ERR_URI_ADDR);

    /* a single-letter label and a label made of digits are fine */
    assert_int_equal(siptls_uri_parse("tls:a.1.b", 5061, 5061, 0, &u), SIPTLS_OK);
    /* all-numeric last label: not a name */
    assert_int_equal(siptls_uri_parse("tls:example.123", 5061, 5061, 0, &u), SIPTLS_ERR_URI_ADDR);
}

static void test_format(void **state)
{
    (void)state;
    siptls_uri u;
    char buf[64];
    assert_int_equal(siptls_uri_parse("TLS:[2001:db8::1]", 5061, 5061, 0, &u), SIPTLS_OK);
    assert_int_equal(siptls_uri_format(&u, buf, sizeof(buf)),
                     (int)strlen("tls:[2001:db8::1]:5061"));
    assert_string_equal(buf, "tls:[2001:db8::1]:5061");

    assert_int_equal(siptls_uri_parse("dtls:*", 5061, 5070, 0, &u), SIPTLS_OK);
    assert_int_equal(siptls_uri_format(&u, buf, sizeof(buf)), 11);
    assert_string_equal(buf, "dtls:*:5070");

    /* exactly fitting buffer, then one byte short */
    assert_int_equal(siptls_uri_format(&u, buf, 12), 11);
    assert_string_equal(buf, "dtls:*:5070");
    assert_int_equal(siptls_uri_format(&u, buf, 11), SIPTLS_ERR_INVAL);
    assert_string_equal(buf, "");

    /* a host that is not NUL-terminated is refused, not overread */
    siptls_uri bad = u;
    memset(bad.host, 'a', sizeof(bad.host));
    assert_int_equal(siptls_uri_format(&bad, buf, sizeof(buf)), SIPTLS_ERR_INVAL);

    /* unknown transport */
    u.transport = (siptls_transport)7;
    assert_int_equal(siptls_uri_format(&u, buf, sizeof(buf)), SIPTLS_ERR_INVAL);
    assert_string_equal(buf, "");
}

static const char *const round_trip[] = {
    "tls:192.0.2.1:5061",
    "tls:192.0.2.1",
    "dtls:10.1.2.3",
    "TLS:0.0.0.0",
    "tls:[::]",
    "dtls:[::]:1",
    "tls:[FE80::0:1]:65535",
    "tls:[::ffff:10.0.0.1]:5061",
    "tls:*",
    "dtls:*:7",
    "tls:sip.example.org",
    "dtls:a-b.c-d.example:5062",
    "tls:x:1",
};

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(round_trip) / sizeof(round_trip[0]); i++) {
        siptls_uri a;
        siptls_uri b;
        char t1[SIPTLS_URI_HOST_MAX + 16];
        char t2[SIPTLS_URI_HOST_MAX + 16];
        assert_int_equal(siptls_uri_parse(round_trip[i], 5061, 5062, 0, &a), SIPTLS_OK);
        assert_true(siptls_uri_format(&a, t1, sizeof(t1)) > 0);
        assert_int_equal(siptls_uri_parse(t1, 1, 2, 0, &b), SIPTLS_OK);
        assert_int_equal(a.transport, b.transport);
        assert_int_equal(a.host_kind, b.host_kind);
        assert_string_equal(a.host, b.host);
        assert_int_equal(a.port, b.port);
        assert_int_equal(b.port_given, 1);
        assert_true(siptls_uri_format(&b, t2, sizeof(t2)) > 0);
        assert_string_equal(t1, t2);
    }
}

static void test_transport_name(void **state)
{
    (void)state;
    assert_string_equal(siptls_transport_name(SIPTLS_TRANSPORT_TLS), "tls");
    assert_string_equal(siptls_transport_name(SIPTLS_TRANSPORT_DTLS), "dtls");
    assert_string_equal(siptls_transport_name((siptls_transport)0), "unknown");
}

/* ------------------------------------------------------------------------ */
/* SIP and SIPS URIs (siptls_sip_uri_parse, include/siptls/target.h)        */
/* ------------------------------------------------------------------------ */

typedef struct sip_case {
    const char *text;
    int sips;
    siptls_host_kind kind;
    const char *host;
    unsigned port;
    int has_transport;
    siptls_transport transport;
    const char *maddr; /* "" when none */
} sip_case;

#define T_TLS SIPTLS_TRANSPORT_TLS
#define T_DTLS SIPTLS_TRANSPORT_DTLS

static const sip_case sip_ok[] = {
    {"sips:carrier.example.net", 1, SIPTLS_HOST_NAME, "carrier.example.net", 0, 0, T_TLS, ""},
    {"SIP:carrier.example.net", 0, SIPTLS_HOST_NAME, "carrier.example.net", 0, 0, T_TLS, ""},
    {"SiPs:alice@example.org:5071", 1, SIPTLS_HOST_NAME, "example.org", 5071, 0, T_TLS, ""},
    {"sip:alice:secret@192.0.2.1", 0, SIPTLS_HOST_IPV4, "192.0.2.1", 0, 0, T_TLS, ""},
    {"sip:+1-555;npdi@gw.example.org;user=phone", 0, SIPTLS_HOST_NAME, "gw.example.org", 0, 0,
     T_TLS, ""},
    {"sips:[2001:DB8::1]:5061;lr", 1, SIPTLS_HOST_IPV6, "2001:db8::1", 5061, 0, T_TLS, ""},
    {"sip:example.org;transport=TLS", 0, SIPTLS_HOST_NAME, "example.org", 0, 1, T_TLS, ""},
    {"sips:example.org;transport=tcp", 1, SIPTLS_HOST_NAME, "example.org", 0, 1, T_TLS, ""},
    {"sip:example.org:5070;transport=dtls", 0, SIPTLS_HOST_NAME, "example.org", 5070, 1, T_DTLS,
     ""},
    {"sip:example.org;lr;maddr=192.0.2.9;ob", 0, SIPTLS_HOST_NAME, "example.org", 0, 0, T_TLS,
     "192.0.2.9"},
    {"sip:example.org;maddr=[::1]", 0, SIPTLS_HOST_NAME, "example.org", 0, 0, T_TLS, "::1"},
    {"sip:example.org;maddr=proxy.example.org?Subject=x&Priority=urgent", 0, SIPTLS_HOST_NAME,
     "example.org", 0, 0, T_TLS, "proxy.example.org"},
    {"sip:example.org?to=a%40b", 0, SIPTLS_HOST_NAME, "example.org", 0, 0, T_TLS, ""},
    {"sip:example.org;flag", 0, SIPTLS_HOST_NAME, "example.org", 0, 0, T_TLS, ""},
};

static void test_sip_uri_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sip_ok) / sizeof(sip_ok[0]); i++) {
        const sip_case *c = &sip_ok[i];
        siptls_sip_uri u;
        int st = siptls_sip_uri_parse(c->text, &u);
        if (st != SIPTLS_OK) {
            fail_msg("'%s': %s", c->text, siptls_status_name(st));
        }
        assert_int_equal(u.sips, c->sips);
        assert_int_equal(u.host_kind, c->kind);
        assert_string_equal(u.host, c->host);
        assert_int_equal(u.port, c->port);
        assert_int_equal(u.has_transport, c->has_transport);
        assert_int_equal(u.transport, c->transport);
        assert_string_equal(u.maddr, c->maddr);
        assert_int_equal(u.maddr_kind != 0, c->maddr[0] != '\0');
    }
}

typedef struct sip_bad {
    const char *text;
    int status;
} sip_bad;

static const sip_bad sip_errors[] = {
    {"tls:example.org", SIPTLS_ERR_URI_SCHEME},
    {"tel:+15551234", SIPTLS_ERR_URI_SCHEME},
    {"sipx:example.org", SIPTLS_ERR_URI_SCHEME},
    {"sip", SIPTLS_ERR_URI_SCHEME},
    {"sip:", SIPTLS_ERR_URI_ADDR},
    {"sip:*", SIPTLS_ERR_URI_ADDR},
    {"sip:alice@", SIPTLS_ERR_URI_ADDR},
    {"sip:exa mple.org", SIPTLS_ERR_URI_ADDR},
    {"sip:1.2.3.256", SIPTLS_ERR_URI_ADDR},
    {"sip:[::1", SIPTLS_ERR_URI_ADDR},
    {"sip:[fe80::1%eth0]", SIPTLS_ERR_URI_ADDR},
    {"sip:::1", SIPTLS_ERR_URI_ADDR},
    {"sip:example.org:0", SIPTLS_ERR_URI_PORT},
    {"sip:example.org:65536", SIPTLS_ERR_URI_PORT},
    {"sip:example.org:", SIPTLS_ERR_URI_PORT},
    {"sip:example.org:50x", SIPTLS_ERR_URI_TRAILING},
    {"sip:[::1]x", SIPTLS_ERR_URI_TRAILING},
    {"sip:example.org;", SIPTLS_ERR_URI_TRAILING},
    {"sip:example.org;=x", SIPTLS_ERR_URI_TRAILING},
    {"sip:example.org;transport=udp", SIPTLS_ERR_URI_TRANSPORT},
    {"sip:example.org;transport=tcp", SIPTLS_ERR_URI_TRANSPORT},
    {"sips:example.org;transport=sctp", SIPTLS_ERR_URI_TRANSPORT},
    {"sip:example.org;transport=ws", SIPTLS_ERR_URI_TRANSPORT},
    {"sip:example.org;transport=", SIPTLS_ERR_URI_TRANSPORT},
    {"sip:example.org;maddr=", SIPTLS_ERR_URI_ADDR},
    {"sip:example.org;maddr=*", SIPTLS_ERR_URI_ADDR},
    {"sip:example.org;maddr=[::1]x", SIPTLS_ERR_URI_ADDR},
};

static void test_sip_uri_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sip_errors) / sizeof(sip_errors[0]); i++) {
        siptls_sip_uri u;
        memset(&u, 0x5a, sizeof(u));
        int st = siptls_sip_uri_parse(sip_errors[i].text, &u);
        if (st != sip_errors[i].status) {
            fail_msg("'%s': %s, want %s", sip_errors[i].text, siptls_status_name(st),
                     siptls_status_name(sip_errors[i].status));
        }
        assert_int_equal(u.sips, 0x5a5a5a5a); /* untouched on error */
    }
    siptls_sip_uri u;
    assert_int_equal(siptls_sip_uri_parse(NULL, &u), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_sip_uri_parse("sip:a.org", NULL), SIPTLS_ERR_INVAL);
    /* The tls:/dtls: grammar is unchanged: a SIP URI is still not one. */
    siptls_uri t;
    assert_int_equal(siptls_uri_parse("sips:a.org", 5061, 5061, 0, &t), SIPTLS_ERR_URI_SCHEME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok_table),  cmocka_unit_test(test_parse_errors_table),
        cmocka_unit_test(test_null_args),       cmocka_unit_test(test_port0),
        cmocka_unit_test(test_hostname_limits), cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_transport_name),
        cmocka_unit_test(test_sip_uri_ok),      cmocka_unit_test(test_sip_uri_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
