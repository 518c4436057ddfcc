/* Unit tests: RFC 5922 §7.1 identity matching (src/identity.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "secctx.h"

#define MAXS 8

typedef struct match_case {
    const char *domain;
    const char *sans[MAXS]; /* NULL-terminated */
    const char *cn;
    int want;
    const char *why;
} match_case;

static const match_case cases[] = {
    /* SIP URI SANs */
    {"example.org", {"URI:sip:example.org"}, NULL, 1, "sip URI host"},
    {"EXAMPLE.org", {"URI:sip:example.ORG"}, NULL, 1, "case-insensitive"},
    {"example.org", {"URI:SIP:example.org"}, NULL, 1, "scheme is case-insensitive"},
    {"example.org", {"URI:sip:example.org:5061"}, NULL, 1, "port stripped"},
    {"example.org", {"URI:sip:example.org;transport=tls"}, NULL, 1, "params stripped"},
    {"example.org", {"URI:sip:example.org:5061;transport=tls"}, NULL, 1, "port and params"},
    {"example.org", {"URI:sip:example.org?subject=x"}, NULL, 1, "headers stripped"},
    {"example.org", {"URI:sip:alice@example.org"}, NULL, 0, "user part: identifies a user"},
    {"example.org",
     {"URI:sip:alice@example.org", "DNS:example.org"},
     NULL,
     1,
     "user-part URI is no SIP identity, so DNS counts"},
    {"example.org", {"URI:sips:example.org"}, NULL, 0, "sips scheme is not sip"},
    {"example.org", {"URI:https://example.org/"}, NULL, 0, "other scheme"},
    {"example.org", {"URI:sip:"}, NULL, 0, "empty host"},
    {"example.org", {"URI:sip:example.org.evil.test"}, NULL, 0, "no suffix match"},
    {"sub.example.org", {"URI:sip:example.org"}, NULL, 0, "no parent match"},
    {"example.org", {"URI:sip:sub.example.org"}, NULL, 0, "no child match"},
    {"example.org", {"URI:sip:other.test", "URI:sip:example.org"}, NULL, 1, "any URI"},
    /* dNSName only when no SIP URI identity */
    {"example.org", {"DNS:example.org"}, NULL, 1, "DNS SAN"},
    {"example.org", {"DNS:Example.Org"}, NULL, 1, "DNS case-insensitive"},
    {"example.org",
     {"URI:sip:other.test", "DNS:example.org"},
     NULL,
     0,
     "DNS ignored when a sip URI identity exists"},
    {"example.org",
     {"URI:https://x.test", "DNS:example.org"},
     NULL,
     1,
     "non-sip URI does not hide DNS"},
    {"example.org", {"DNS:other.test", "DNS:example.org"}, NULL, 1, "second DNS SAN"},
    /* no wildcards, anywhere */
    {"a.example.org", {"DNS:*.example.org"}, NULL, 0, "wildcard DNS SAN"},
    {"a.example.org", {"URI:sip:*.example.org"}, NULL, 0, "wildcard sip URI"},
    {"a.example.org", {"DNS:.example.org"}, NULL, 0, "leading dot"},
    {"*.example.org", {"DNS:*.example.org"}, NULL, 0, "wildcard domain never matches"},
    {"a.example.org", {0}, "*.example.org", 0, "wildcard CN"},
    /* CN only without any SAN */
    {"example.org", {0}, "example.org", 1, "CN without SAN"},
    {"example.org", {0}, "EXAMPLE.ORG", 1, "CN case-insensitive"},
    {"example.org", {"DNS:other.test"}, "example.org", 0, "CN ignored when SANs exist"},
    {"example.org", {0}, "Example Org Ltd", 0, "CN not a DNS name"},
    {"example.org", {0}, NULL, 0, "nothing"},
    /* trailing dot */
    {"example.org.", {"DNS:example.org"}, NULL, 1, "trailing dot on domain"},
    {"example.org", {"URI:sip:example.org."}, NULL, 1, "trailing dot in SAN"},
    /* IP literals: only iPAddress SANs */
    {"127.0.0.1", {"IP:127.0.0.1"}, NULL, 1, "IPv4"},
    {"127.0.0.1", {"IP:127.0.0.2"}, NULL, 0, "other IPv4"},
    {"127.0.0.1", {"DNS:127.0.0.1"}, NULL, 0, "IP in a DNS SAN"},
    {"127.0.0.1", {"URI:sip:127.0.0.1"}, NULL, 0, "IP in a URI SAN"},
    {"127.0.0.1", {0}, "127.0.0.1", 0, "IP in the CN"},
    {"::1", {"IP:0:0:0:0:0:0:0:1"}, NULL, 1, "IPv6 parsed, not text"},
    {"[::1]", {"IP:::1"}, NULL, 1, "bracketed domain"},
    {"0:0:0:0:0:0:0:1", {"IP:::1"}, NULL, 1, "long form domain"},
    {"2001:DB8::1", {"IP:2001:db8::1"}, NULL, 1, "IPv6 case"},
    {"::1", {"IP:127.0.0.1"}, NULL, 0, "family differs"},
    {"::ffff:127.0.0.1", {"IP:127.0.0.1"}, NULL, 0, "mapped is a different address"},
    {"127.0.0.1", {"IP:::1", "IP:127.0.0.1"}, NULL, 1, "second IP SAN"},
    /* garbage */
    {"", {"DNS:example.org"}, NULL, 0, "empty domain"},
    {"example.org", {"DNS:"}, NULL, 0, "empty DNS SAN"},
    {"example.org", {"DNS:example.org\x01"}, NULL, 0, "control character"},
    {"exa mple.org", {"DNS:exa mple.org"}, NULL, 0, "space"},
    {"example.org", {"dns:example.org"}, NULL, 1, "type tag case-insensitive"},
};

static size_t count_sans(const match_case *c)
{
    size_t n = 0;
    while (n < MAXS && c->sans[n] != NULL) {
        n++;
    }
    return n;
}

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const match_case *c = &cases[i];
        int got = siptls__rfc5922_match(c->domain, c->sans, count_sans(c), c->cn);
        if (got != c->want) {
            print_error("case %zu (%s): domain '%s' -> %d, want %d\n", i, c->why, c->domain, got,
                        c->want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_null_args(void **state)
{
    (void)state;
    const char *sans[] = {"DNS:example.org"};
    assert_int_equal(siptls__rfc5922_match(NULL, sans, 1, NULL), 0);
    assert_int_equal(siptls__rfc5922_match("example.org", NULL, 1, NULL), 0);
    assert_int_equal(siptls__rfc5922_match("example.org", NULL, 0, "example.org"), 1);
    const char *with_null[] = {NULL, "DNS:example.org"};
    assert_int_equal(siptls__rfc5922_match("example.org", with_null, 2, NULL), 1);
}

static void test_long_names(void **state)
{
    (void)state;
    char big[400];
    char san[410];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(san, sizeof(san), "DNS:%s", big);
    const char *sans[] = {san};
    /* Longer than any DNS name: refused, not truncated and matched. */
    assert_int_equal(siptls__rfc5922_match(big, sans, 1, NULL), 0);
    big[200] = '\0';
    san[4 + 200] = '\0';
    assert_int_equal(siptls__rfc5922_match(big, sans, 1, NULL), 1);
}

/* trusted_domain "*.suffix": the RFC 5922 identities, one or more labels
 * below the suffix. */
static void test_under(void **state)
{
    (void)state;
    const char *uri[] = {"URI:sip:a.b.example.org", "DNS:other.test"};
    assert_true(siptls__rfc5922_match_under("example.org", uri, 2, NULL));
    assert_true(siptls__rfc5922_match_under("b.example.org", uri, 2, NULL));
    assert_true(siptls__rfc5922_match_under("EXAMPLE.org", uri, 2, NULL));
    assert_false(siptls__rfc5922_match_under("a.b.example.org", uri, 2, NULL)); /* itself */
    assert_false(siptls__rfc5922_match_under("ample.org", uri, 2, NULL));       /* no label edge */
    /* a sip URI identity exists: dNSName values do not count (§7.1) */
    assert_false(siptls__rfc5922_match_under("test", uri, 2, NULL));
    const char *dns[] = {"DNS:x.other.test"};
    assert_true(siptls__rfc5922_match_under("other.test", dns, 1, NULL));
    assert_true(siptls__rfc5922_match_under("other.test.", dns, 1, NULL));
    /* a wildcard in the certificate is never an identity (§7.2) */
    const char *wild[] = {"DNS:*.other.test"};
    assert_false(siptls__rfc5922_match_under("other.test", wild, 1, NULL));
    /* the CN only without any SAN */
    assert_true(siptls__rfc5922_match_under("example.org", NULL, 0, "sip.example.org"));
    assert_false(siptls__rfc5922_match_under("example.org", dns, 1, "sip.example.org"));
    /* not a pattern for names that are not DNS names */
    assert_false(siptls__rfc5922_match_under("*.example.org", uri, 2, NULL));
    assert_false(siptls__rfc5922_match_under("", uri, 2, NULL));
    assert_false(siptls__rfc5922_match_under(NULL, uri, 2, NULL));
    assert_false(siptls__rfc5922_match_under("example.org", NULL, 2, NULL));
    /* the exact matcher is unchanged: no pattern there */
    assert_false(siptls__rfc5922_match("*.example.org", uri, 2, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_under),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
