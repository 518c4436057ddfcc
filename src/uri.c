/* siptls — listen / destination URIs (`tls:ADDR[:PORT]`, `dtls:ADDR[:PORT]`)
 * and, for destinations, SIP and SIPS URIs (`sips:user@host;params`).
 *
 * Pure string code: no resolution, no I/O, no allocation. The grammars and
 * the status each kind of mistake gets are documented in
 * include/siptls/uri.h and include/siptls/target.h. */
#include "siptls/uri.h"

#include "siptls/target.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_TOTAL 253
#define LABEL_MAX 63

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Strict dotted quad: exactly four decimal octets 0..255, no sign, no leading
 * zero (inet_aton would read "010" as octal 8; refusing it avoids surprises). */
static int is_ipv4(const char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.') {
                return 0;
            }
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < len && is_digit(s[i]) && i - start < 3) {
            v = v * 10u + (unsigned)(s[i] - '0');
            i++;
        }
        size_t n = i - start;
        if (n == 0 || v > 255 || (n > 1 && s[start] == '0')) {
            return 0;
        }
    }
    return i == len;
}

/* RFC 1123 host name. A name made only of digits and dots is not a name: it
 * is a malformed IPv4 address (RFC 3696: a top-level label is never all
 * numeric), so "1.2.3" and "1.2.3.256" are refused rather than sent to DNS. */
static int is_hostname(const char *s, size_t len)
{
    if (len == 0 || len > NAME_MAX_TOTAL) {
        return 0;
    }
    size_t label_start = 0;
    int label_all_digits = 1;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            size_t n = i - label_start;
            if (n == 0 || n > LABEL_MAX) {
                return 0;
            }
            if (s[label_start] == '-' || s[i - 1] == '-') {
                return 0;
            }
            if (i == len && label_all_digits) {
                return 0;
            }
            label_start = i + 1;
            label_all_digits = 1;
            continue;
        }
        char c = s[i];
        if (is_digit(c)) {
            continue;
        }
        if (is_alpha(c) || c == '-') {
            label_all_digits = 0;
            continue;
        }
        return 0;
    }
    return 1;
}

/* Decimal port: the digits at *p; *p is advanced past them. Junk after the
 * digits is the caller's business (URI_TRAILING). */
static int parse_port(const char **p, int allow_port0, uint16_t *port)
{
    const char *s = *p;
    if (!is_digit(*s)) {
        return SIPTLS_ERR_URI_PORT;
    }
    unsigned long v = 0;
    while (is_digit(*s)) {
        v = v * 10u + (unsigned long)(*s - '0');
        if (v > 65535u) {
            return SIPTLS_ERR_URI_PORT; /* also stops any overflow */
        }
        s++;
    }
    if (v == 0 && !allow_port0) {
        return SIPTLS_ERR_URI_PORT;
    }
    *p = s;
    *port = (uint16_t)v;
    return SIPTLS_OK;
}

int siptls_uri_parse(const char *text, uint16_t tls_port, uint16_t dtls_port, int allow_port0,
                     siptls_uri *out)
{
    if (text == NULL || out == NULL) {
        return SIPTLS_ERR_INVAL;
    }

    siptls_uri u;
    memset(&u, 0, sizeof(u));

    const char *colon = strchr(text, ':');
    if (colon == NULL) {
        return SIPTLS_ERR_URI_SCHEME;
    }
    size_t scheme_len = (size_t)(colon - text);
    if (scheme_len == 3 && strncasecmp(text, "tls", 3) == 0) {
        u.transport = SIPTLS_TRANSPORT_TLS;
    } else if (scheme_len == 4 && strncasecmp(text, "dtls", 4) == 0) {
        u.transport = SIPTLS_TRANSPORT_DTLS;
    } else {
        return SIPTLS_ERR_URI_SCHEME;
    }

    const char *p = colon + 1;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL) {
            return SIPTLS_ERR_URI_ADDR;
        }
        size_t n = (size_t)(close - (p + 1));
        char buf[INET6_ADDRSTRLEN];
        if (n == 0 || n >= sizeof(buf)) {
            return SIPTLS_ERR_URI_ADDR;
        }
        memcpy(buf, p + 1, n);
        buf[n] = '\0';
        /* inet_pton refuses zone ids ("%eth0"): a listener or destination
         * with a zone would need an interface index we do not carry. */
        struct in6_addr a6;
        if (inet_pton(AF_INET6, buf, &a6) != 1) {
            return SIPTLS_ERR_URI_ADDR;
        }
        /* Canonical text (lower case, "::" compressed) so that two spellings
         * of one address compare equal as strings. */
        if (inet_ntop(AF_INET6, &a6, u.host, sizeof(u.host)) == NULL) {
            return SIPTLS_ERR_URI_ADDR;
        }
        u.host_kind = SIPTLS_HOST_IPV6;
        p = close + 1;
    } else {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (end != NULL && strchr(end + 1, ':') != NULL) {
            /* Two or more colons after a bare hex group (or none): this is
             * an IPv6 address written without brackets, which is ambiguous
             * with the port. "1.2.3.4:5061:7" is not one (URI_TRAILING). */
            int all_hex = 1;
            for (size_t i = 0; i < n; i++) {
                if (!is_hex(p[i])) {
                    all_hex = 0;
                    break;
                }
            }
            if (all_hex) {
                return SIPTLS_ERR_URI_ADDR;
            }
        }
        if (n == 1 && p[0] == '*') {
            u.host_kind = SIPTLS_HOST_ANY;
        } else if (is_ipv4(p, n)) {
            u.host_kind = SIPTLS_HOST_IPV4;
        } else if (is_hostname(p, n)) {
            u.host_kind = SIPTLS_HOST_NAME;
        } else {
            return SIPTLS_ERR_URI_ADDR;
        }
        memcpy(u.host, p, n); /* n <= 253 < SIPTLS_URI_HOST_MAX */
        u.host[n] = '\0';
        p += n;
    }

    if (*p == ':') {
        p++;
        int rc = parse_port(&p, allow_port0, &u.port);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        u.port_given = 1;
    } else if (*p == '\0') {
        u.port = u.transport == SIPTLS_TRANSPORT_TLS ? tls_port : dtls_port;
        if (u.port == 0 && !allow_port0) {
            return SIPTLS_ERR_URI_PORT;
        }
    }
    if (*p != '\0') {
        return SIPTLS_ERR_URI_TRAILING;
    }

    *out = u;
    return SIPTLS_OK;
}

int siptls_uri_format(const siptls_uri *uri, char *buf, size_t buflen)
{
    if (buf != NULL && buflen > 0) {
        buf[0] = '\0';
    }
    if (uri == NULL || buf == NULL || buflen == 0) {
        return SIPTLS_ERR_INVAL;
    }
    if (uri->transport != SIPTLS_TRANSPORT_TLS && uri->transport != SIPTLS_TRANSPORT_DTLS) {
        return SIPTLS_ERR_INVAL;
    }
    if (memchr(uri->host, '\0', sizeof(uri->host)) == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    const char *open = uri->host_kind == SIPTLS_HOST_IPV6 ? "[" : "";
    const char *close = uri->host_kind == SIPTLS_HOST_IPV6 ? "]" : "";
    int n = snprintf(buf, buflen, "%s:%s%s%s:%u", siptls_transport_name(uri->transport), open,
                     uri->host, close, (unsigned)uri->port);
    if (n < 0 || (size_t)n >= buflen) {
        buf[0] = '\0';
        return SIPTLS_ERR_INVAL;
    }
    return n;
}

const char *siptls_transport_name(siptls_transport t)
{
    switch (t) {
    case SIPTLS_TRANSPORT_TLS:
        return "tls";
    case SIPTLS_TRANSPORT_DTLS:
        return "dtls";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------ */
/* SIP and SIPS URIs (include/siptls/target.h)                              */
/* ------------------------------------------------------------------------ */

/* A host of a SIP URI at *p, ending at one of ":;?" or the end: strict
 * IPv4, [IPv6] (canonical, no zone) or an RFC 1123 name. */
static int sip_host(const char **p, char *out, siptls_host_kind *kind)
{
    const char *s = *p;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            return SIPTLS_ERR_URI_ADDR;
        }
        size_t n = (size_t)(close - (s + 1));
        char buf[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        if (n == 0 || n >= sizeof(buf)) {
            return SIPTLS_ERR_URI_ADDR;
        }
        memcpy(buf, s + 1, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1 ||
            inet_ntop(AF_INET6, &a6, out, SIPTLS_URI_HOST_MAX) == NULL) {
            return SIPTLS_ERR_URI_ADDR;
        }
        *kind = SIPTLS_HOST_IPV6;
        *p = close + 1;
        return SIPTLS_OK;
    }
    size_t n = strcspn(s, ":;?");
    if (is_ipv4(s, n)) {
        *kind = SIPTLS_HOST_IPV4;
    } else if (is_hostname(s, n)) {
        *kind = SIPTLS_HOST_NAME;
    } else {
        return SIPTLS_ERR_URI_ADDR;
    }
    memcpy(out, s, n); /* n <= 253 < SIPTLS_URI_HOST_MAX */
    out[n] = '\0';
    *p = s + n;
    return SIPTLS_OK;
}

int siptls_sip_uri_parse(const char *text, siptls_sip_uri *out)
{
    if (text == NULL || out == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls_sip_uri u;
    memset(&u, 0, sizeof(u));
    u.transport = SIPTLS_TRANSPORT_TLS;
    const char *colon = strchr(text, ':');
    if (colon == NULL) {
        return SIPTLS_ERR_URI_SCHEME;
    }
    size_t scheme_len = (size_t)(colon - text);
    if (scheme_len == 4 && strncasecmp(text, "sips", 4) == 0) {
        u.sips = 1;
    } else if (scheme_len != 3 || strncasecmp(text, "sip", 3) != 0) {
        return SIPTLS_ERR_URI_SCHEME;
    }
    const char *p = colon + 1;
    /* RFC 3261 §25.1: neither the user nor the password holds an
     * unescaped '@', nor do parameters or headers: the first '@' ends the
     * userinfo. */
    const char *at = strchr(p, '@');
    if (at != NULL) {
        p = at + 1;
    }
    int rc = sip_host(&p, u.host, &u.host_kind);
    if (rc != SIPTLS_OK) {
        return rc;
    }
    if (*p == ':') {
        p++;
        rc = parse_port(&p, 0, &u.port);
        if (rc != SIPTLS_OK) {
            return rc;
        }
    }
    while (*p == ';') {
        p++;
        size_t nl = strcspn(p, "=;?");
        if (nl == 0) {
            return SIPTLS_ERR_URI_TRAILING;
        }
        const char *name = p;
        const char *val = "";
        size_t vl = 0;
        p += nl;
        if (*p == '=') {
            val = ++p;
            vl = strcspn(p, ";?");
            p += vl;
        }
        if (nl == 9 && strncasecmp(name, "transport", 9) == 0) {
            /* RFC 3261 §19.1.1: transport=tls is TLS; in a SIPS URI
             * transport=tcp means TLS over TCP too (§26.2.2). */
            if ((vl == 3 && strncasecmp(val, "tls", 3) == 0) ||
                (u.sips && vl == 3 && strncasecmp(val, "tcp", 3) == 0)) {
                u.transport = SIPTLS_TRANSPORT_TLS;
            } else if (vl == 4 && strncasecmp(val, "dtls", 4) == 0) {
                u.transport = SIPTLS_TRANSPORT_DTLS;
            } else {
                return SIPTLS_ERR_URI_TRANSPORT;
            }
            u.has_transport = 1;
        } else if (nl == 5 && strncasecmp(name, "maddr", 5) == 0) {
            char buf[SIPTLS_URI_HOST_MAX];
            if (vl == 0 || vl >= sizeof(buf)) {
                return SIPTLS_ERR_URI_ADDR;
            }
            memcpy(buf, val, vl);
            buf[vl] = '\0';
            const char *q = buf;
            rc = sip_host(&q, u.maddr, &u.maddr_kind);
            if (rc != SIPTLS_OK || *q != '\0') {
                return SIPTLS_ERR_URI_ADDR;
            }
        }
    }
    /* "?" headers: nothing of them matters for where the request goes. */
    if (*p != '\0' && *p != '?') {
        return SIPTLS_ERR_URI_TRAILING;
    }
    *out = u;
    return SIPTLS_OK;
}
