/* siptls — RFC 5922 §7.1 SIP domain identity matching on names already
 * taken out of a certificate. Pure code (libc, and addr.c for IP literals): the
 * wolfSSL side (secctx.c) extracts the names, this file decides. */
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#include "addr.h"
#include "secctx.h"

/* Longest name we compare; anything longer is not a DNS name (RFC 1035:
 * 253 characters) and never matches. */
#define NAME_MAX_LEN 255

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Exact ASCII case-insensitive comparison of a[0..alen) and b[0..blen),
 * each with at most one trailing dot ignored ("example.org." is the same
 * DNS name as "example.org"). */
static int name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen > 1 && a[alen - 1] == '.') {
        alen--;
    }
    if (blen > 1 && b[blen - 1] == '.') {
        blen--;
    }
    if (alen == 0 || alen != blen) {
        return 0;
    }
    for (size_t i = 0; i < alen; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) {
            return 0;
        }
    }
    return 1;
}

/* A DNS name we are willing to compare: letters, digits, '-', '_' and '.'.
 * This refuses every wildcard form.
 * RFC 5922 §7.2: "Implementations MUST NOT match any form of wildcard,
 * such as a leading "." or "*." with any other DNS label or sequence of
 * labels." */
static int plain_name(const char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN || s[0] == '.') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

static int has_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        if (lower((unsigned char)*s) != lower((unsigned char)*prefix)) {
            return 0;
        }
    }
    return 1;
}

/* The SIP domain identity of a "URI:..." SAN value, as [host, host+len).
 * Returns 0 when the value is not a SIP domain identity.
 * RFC 5922 §7.1: "If the scheme of the URI is not "sip", then the
 * implementation MUST NOT accept the value as a SIP domain identity." */
static int sip_uri_host(const char *uri, const char **host, size_t *len)
{
    if (!has_prefix_ci(uri, "sip:")) {
        return 0;
    }
    const char *h = uri + 4;
    /* RFC 5922 §7.1: "If the scheme of the URI value is "sip", and the URI
     * value that contains a userpart (there is an '@'), the implementation
     * MUST NOT accept the value as a SIP domain identity (a value with a
     * userpart identifies an individual user, not a domain)." */
    if (strchr(h, '@') != NULL) {
        return 0;
    }
    /* RFC 5922 §7.1: "...then the implementation MUST accept the hostpart
     * as a SIP domain identity." The hostpart ends at the port, the URI
     * parameters or the headers (RFC 3261 §25.1). An IPv6 reference keeps
     * its brackets here; it is never a DNS name. */
    size_t n = strcspn(h, ":;?");
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        if (close == NULL) {
            return 0;
        }
        n = (size_t)(close - h) + 1;
    }
    if (n == 0) {
        return 0;
    }
    *host = h;
    *len = n;
    return 1;
}

/* IP-literal domain: only an iPAddress SAN with the same address matches
 * (RFC 5922 names no rule for addresses; this is the RFC 6125 / RFC 2818
 * practice). Addresses are compared parsed, so "::1" equals
 * "0:0:0:0:0:0:0:1". */
static int match_ip(const unsigned char want[16], int want_af, const char *const *sans,
                    size_t n_sans)
{
    size_t alen = want_af == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n_sans; i++) {
        unsigned char got[16];
        if (sans[i] == NULL || !has_prefix_ci(sans[i], "IP:")) {
            continue;
        }
        if (siptls__addr_parse_ip(sans[i] + 3, got) == want_af && memcmp(got, want, alen) == 0) {
            return 1;
        }
    }
    return 0;
}

/* `name` (an identity of the certificate) is the wanted domain (`under` 0)
 * or lies one or more labels below it (`under` 1: the trusted_domain
 * pattern "*.want"). */
static int name_matches(const char *want, size_t wlen, const char *name, size_t nlen, int under)
{
    if (!plain_name(name, nlen)) {
        return 0;
    }
    if (!under) {
        return name_eq(want, wlen, name, nlen);
    }
    if (nlen > 1 && name[nlen - 1] == '.') {
        nlen--;
    }
    if (wlen > 1 && want[wlen - 1] == '.') {
        wlen--;
    }
    /* a non-empty label, a dot, then the suffix */
    if (nlen < wlen + 2 || name[nlen - wlen - 1] != '.' || name[nlen - wlen - 2] == '.') {
        return 0;
    }
    return name_eq(want, wlen, name + nlen - wlen, wlen);
}

/* RFC 5922 §7.1 identities of the certificate against `want`. */
static int match_identities(const char *want, size_t wlen, int under, const char *const *sans,
                            size_t n_sans, const char *cn)
{
    /* Step 1: sip URIs. Whether the certificate has any SIP URI identity
     * at all decides if dNSName values count. */
    int have_sip_identity = 0;
    for (size_t i = 0; i < n_sans; i++) {
        const char *host;
        size_t hlen;
        if (sans[i] == NULL || !has_prefix_ci(sans[i], "URI:") ||
            !sip_uri_host(sans[i] + 4, &host, &hlen)) {
            continue;
        }
        have_sip_identity = 1;
        if (name_matches(want, wlen, host, hlen, under)) {
            return 1;
        }
    }
    /* RFC 5922 §7.1: "An implementation MUST accept a domain name system
     * identifier as a SIP domain identity if and only if no other identity
     * is found that matches the "sip" URI type described above." */
    if (!have_sip_identity) {
        for (size_t i = 0; i < n_sans; i++) {
            if (sans[i] == NULL || !has_prefix_ci(sans[i], "DNS:")) {
                continue;
            }
            const char *name = sans[i] + 4;
            if (name_matches(want, wlen, name, strlen(name), under)) {
                return 1;
            }
        }
    }
    /* RFC 5922 §7.1: "If and only if the subjectAltName does not appear in
     * the certificate, the implementation MAY examine the CN field of the
     * certificate. If a valid DNS name is found there, the implementation
     * MAY accept this value as a SIP domain identity." The caller passes
     * cn = NULL when the extension is present, whatever name types it
     * holds. */
    if (n_sans == 0 && cn != NULL && name_matches(want, wlen, cn, strlen(cn), under)) {
        return 1;
    }
    return 0;
}

int siptls__rfc5922_match(const char *domain, const char *const *sans, size_t n_sans,
                          const char *cn)
{
    if (domain == NULL || (sans == NULL && n_sans > 0)) {
        return 0;
    }
    unsigned char ip[16];
    int af = siptls__addr_parse_ip(domain, ip);
    if (af != 0) {
        return match_ip(ip, af, sans, n_sans);
    }
    size_t dlen = strlen(domain);
    if (!plain_name(domain, dlen)) {
        return 0;
    }
    return match_identities(domain, dlen, 0, sans, n_sans, cn);
}

int siptls__rfc5922_match_under(const char *suffix, const char *const *sans, size_t n_sans,
                                const char *cn)
{
    if (suffix == NULL || (sans == NULL && n_sans > 0)) {
        return 0;
    }
    size_t slen = strlen(suffix);
    if (!plain_name(suffix, slen)) {
        return 0;
    }
    return match_identities(suffix, slen, 1, sans, n_sans, cn);
}
