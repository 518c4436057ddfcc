/* siptls — configuration: value parsers.
 *
 * Text in, a checked and canonical value out (booleans, numbers in their
 * range, TLS methods, domain name patterns, match addresses, list items);
 * nothing here changes a configuration. */
#include <ctype.h>
#include <strings.h>

#include "config_internal.h"
#include "siptls/uri.h"

/* ---- value parsers --------------------------------------------------------- */

int siptls__config_parse_bool(const char *v, int *out, char *why)
{
    static const char *const yes[] = {"1", "yes", "on", "true"};
    static const char *const no[] = {"0", "no", "off", "false"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return SIPTLS_OK;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return SIPTLS_OK;
        }
    }
    why_set(why, "'%.40s' is not a boolean (want 0/1, yes/no, on/off, true/false)", v);
    return SIPTLS_ERR_CONFIG_VALUE;
}

int siptls__config_parse_number(const char *v, unsigned long min, unsigned long max,
                                unsigned long *out, char *why)
{
    if (*v == '\0') {
        why_set(why, "empty value (want a number %lu..%lu)", min, max);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    unsigned long n = 0;
    int overflow = 0;
    for (const char *s = v; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            why_set(why, "'%.40s' is not a decimal number", v);
            return SIPTLS_ERR_CONFIG_VALUE;
        }
        if (n > (0xFFFFFFFFul - 9u) / 10u) {
            overflow = 1; /* any value this large is out of every range */
        } else {
            n = n * 10u + (unsigned long)(*s - '0');
        }
    }
    if (overflow || n < min || n > max) {
        why_set(why, "value %.40s out of range %lu..%lu", v, min, max);
        return SIPTLS_ERR_CONFIG_RANGE;
    }
    *out = n;
    return SIPTLS_OK;
}

int siptls__config_parse_method(const char *v, const char **canon, char *why)
{
    static const char *const ok[] = {"TLSv1_2", "TLSv1_3", "TLSv1_2-TLSv1_3", "SSLv23"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strcasecmp(v, ok[i]) == 0) {
            *canon = ok[i];
            return SIPTLS_OK;
        }
    }
    if (strncasecmp(v, "TLSv1", 5) == 0 || strncasecmp(v, "SSLv", 4) == 0) {
        why_set(why,
                "'%.40s' is not supported (TLS 1.2 is the minimum; want TLSv1_2, TLSv1_3, "
                "TLSv1_2-TLSv1_3 or SSLv23)",
                v);
    } else {
        why_set(why,
                "'%.40s' is not a TLS method (want TLSv1_2, TLSv1_3, TLSv1_2-TLSv1_3 or SSLv23)",
                v);
    }
    return SIPTLS_ERR_CONFIG_VALUE;
}

int siptls__config_parse_dtls_version(const char *v, const char **canon, char *why)
{
    static const char *const ok[] = {"1.2", "1.3"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strcmp(v, ok[i]) == 0) {
            *canon = ok[i];
            return SIPTLS_OK;
        }
    }
    why_set(why, "'%.40s' is not a DTLS version (want 1.2 or 1.3)", v);
    return SIPTLS_ERR_CONFIG_VALUE;
}

/* A string value must survive a dump (quoted, one line): no control bytes. */
int siptls__config_check_text(const char *v, char *why)
{
    for (const unsigned char *s = (const unsigned char *)v; *s != '\0'; s++) {
        if (*s < 0x20 || *s == 0x7f) {
            why_set(why, "control character in value");
            return SIPTLS_ERR_CONFIG_VALUE;
        }
    }
    return SIPTLS_OK;
}

/* SIP domain name pattern: "name", "*.name", an IPv4 address, "[IPv6]", or
 * (with F_STAR) "*". Canonical: lower case; IPv6 as inet_ntop in brackets. */
int siptls__config_canon_name(const char *item, unsigned flags, char *out, size_t outlen, char *why)
{
    char buf[SIPTLS_URI_HOST_MAX + 8];
    size_t n = strlen(item);
    if (strcmp(item, "*") == 0) {
        if (!(flags & F_STAR)) {
            why_set(why, "'*' is not allowed here");
            return SIPTLS_ERR_CONFIG_VALUE;
        }
        copy_trunc(out, outlen, "*");
        return SIPTLS_OK;
    }
    const char *host = item;
    int wild = 0;
    if (n >= 2 && item[0] == '*' && item[1] == '.') {
        host = item + 2;
        wild = 1;
    }
    if (strlen(host) > SIPTLS_URI_HOST_MAX) {
        why_set(why, "'%.40s...' is too long for a domain name", item);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    int m = snprintf(buf, sizeof(buf), "tls:%s", host);
    siptls_uri u;
    if (m < 0 || (size_t)m >= sizeof(buf) ||
        siptls_uri_parse(buf, 5061, 5061, 0, &u) != SIPTLS_OK || u.port_given ||
        u.host_kind == SIPTLS_HOST_ANY || (wild && u.host_kind != SIPTLS_HOST_NAME)) {
        why_set(why, "'%.60s' is not a domain name (want name, *.name or IP address)", item);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    if (u.host_kind == SIPTLS_HOST_IPV6) {
        m = snprintf(out, outlen, "[%s]", u.host);
    } else {
        m = snprintf(out, outlen, "%s%s", wild ? "*." : "", u.host);
    }
    if (m < 0 || (size_t)m >= outlen) {
        why_set(why, "'%.40s...' is too long", item);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    for (char *s = out; *s != '\0'; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
    return SIPTLS_OK;
}

/* match_ip_address item: "IP:port", "[IPv6]:port" or "*". Canonical form
 * is the formatted URI without its scheme (IPv6 as inet_ntop). */
int siptls__config_canon_addr(const char *item, char *out, size_t outlen, char *why)
{
    char buf[SIPTLS_URI_HOST_MAX + 24];
    if (strcmp(item, "*") == 0) {
        copy_trunc(out, outlen, "*");
        return SIPTLS_OK;
    }
    int m = snprintf(buf, sizeof(buf), "tls:%s", item);
    siptls_uri u;
    if (m < 0 || (size_t)m >= sizeof(buf) ||
        siptls_uri_parse(buf, 5061, 5061, 0, &u) != SIPTLS_OK || !u.port_given ||
        (u.host_kind != SIPTLS_HOST_IPV4 && u.host_kind != SIPTLS_HOST_IPV6)) {
        why_set(why, "'%.60s' is not an address (want IP:port, [IPv6]:port or *)", item);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    if (siptls_uri_format(&u, buf, sizeof(buf)) < 0) {
        why_set(why, "'%.60s' is not an address", item);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    copy_trunc(out, outlen, buf + 4); /* drop "tls:" */
    return SIPTLS_OK;
}

/* ---- list items ---------------------------------------------------------- */

void siptls__config_items_free(items *it)
{
    for (size_t i = 0; i < it->n; i++) {
        free(it->v[i]);
    }
    free(it->v);
    it->v = NULL;
    it->n = 0;
}

int siptls__config_items_push(items *it, const char *s)
{
    char **nv = realloc(it->v, (it->n + 1) * sizeof(*nv));
    if (nv == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    it->v = nv;
    nv[it->n] = xstrdup(s);
    if (nv[it->n] == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    it->n++;
    return SIPTLS_OK;
}

/* Split a list value into canonical items (comma lists for names and
 * addresses; one URI per line for listen). */
int siptls__config_parse_items(const param *p, const char *value, items *out, char *why)
{
    if (p->type == T_URILIST) {
        siptls_uri u;
        int rc = siptls_uri_parse(value, 5061, 5061, 1, &u);
        if (rc != SIPTLS_OK) {
            why_set(why, "'%.60s' is not a listen URI: %s", value, siptls_strerror(rc));
            return rc == SIPTLS_ERR_INVAL ? SIPTLS_ERR_INVAL : SIPTLS_ERR_CONFIG_VALUE;
        }
        return siptls__config_items_push(out, value);
    }
    if (*value == '\0') {
        why_set(why, "empty value");
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    const char *s = value;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        char item[LINE_MAX_LEN + 1];
        char canon[SIPTLS_URI_HOST_MAX + 32];
        if (n > LINE_MAX_LEN) {
            n = LINE_MAX_LEN;
        }
        trim_into(item, s, n);
        if (item[0] == '\0') {
            why_set(why, "empty item in list");
            return SIPTLS_ERR_CONFIG_VALUE;
        }
        if (p->type == T_ADDRLIST && (p->flags & F_NO_STAR) && strcmp(item, "*") == 0) {
            why_set(why, "'*' is not an address here (want IP:port or [IPv6]:port)");
            return SIPTLS_ERR_CONFIG_VALUE;
        }
        int rc = p->type == T_ADDRLIST
                     ? siptls__config_canon_addr(item, canon, sizeof(canon), why)
                     : siptls__config_canon_name(item, p->flags, canon, sizeof(canon), why);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        rc = siptls__config_items_push(out, canon);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        if (comma == NULL) {
            return SIPTLS_OK;
        }
        s = comma + 1;
    }
}
