/* siptls — configuration: one parameter table drives init, set, copy,
 * compare, dump, cleanup and siptls_config_param(), so a parameter cannot
 * exist in one of them and be missing in another.
 *
 * Atomicity: siptls_config_set() prepares everything that can fail (parse,
 * validate, allocate) before it changes anything; the file loader applies
 * the lines to a deep copy and swaps it in only when every line succeeded. */
#include "siptls/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "siptls/uri.h"

#define LINE_MAX_LEN 4096 /* characters per line, without "\r\n" */
#define FILE_MAX_LEN (16u * 1024u * 1024u)
#define DOMAIN_NAME_MAX 63
#define WHY_LEN 200
#define DEFAULT_NAME "default"

typedef enum ptype {
    T_BOOL,     /* int: 0/1, yes/no, on/off, true/false; -1 = unset (declared domains) */
    T_UINT,     /* unsigned, decimal, [min, max] */
    T_INT,      /* int, decimal, [min, max] */
    T_STR,      /* char *, "" = unset (NULL) */
    T_METHOD,   /* char *, one of the tls_method spellings, stored canonical */
    T_NAMELIST, /* char ** + size_t: SIP domain names, comma lists append */
    T_ADDRLIST, /* char ** + size_t: "IP:port" / "[v6]:port" / "*", comma lists append */
    T_URILIST,  /* char ** + size_t: listen URIs, one per line, stored as written */
    T_DOMAIN    /* declares a server (min = 1) or client (min = 0) domain */
} ptype;

typedef enum scope {
    S_GLOBAL, /* offsets into siptls_config */
    S_DOMAIN  /* offsets into siptls_domain_cfg, optional [NAME] prefix */
} scope;

#define F_STAR 1u /* T_NAMELIST: a lone "*" (any domain) is allowed */

typedef struct param {
    const char *name;
    ptype type;
    scope where;
    size_t off;             /* the field */
    size_t n_off;           /* lists: the count field */
    const char *def;        /* default as config text ("" = unset / empty list) */
    const char *def_client; /* S_DOMAIN: default of the default client domain, NULL = def */
    const char *doc_def;    /* default as shown in the docs, NULL = def */
    unsigned long min;
    unsigned long max;
    unsigned flags;
} param;

#define G(f) offsetof(siptls_config, f)
#define D(f) offsetof(siptls_domain_cfg, f)

/* The one table. Order is dump order: domain declarations come before the
 * per-domain keys so that a dump loads back. */
static const param params[] = {
    /* listeners */
    {"listen", T_URILIST, S_GLOBAL, G(listen), G(n_listen), "", NULL, NULL, 0, 0, 0},
    {"tls_port", T_UINT, S_GLOBAL, G(tls_port), 0, "5061", NULL, NULL, 1, 65535, 0},
    {"dtls_port", T_UINT, S_GLOBAL, G(dtls_port), 0, "5061", NULL, NULL, 1, 65535, 0},
    {"reuse_port", T_BOOL, S_GLOBAL, G(reuse_port), 0, "0", NULL, NULL, 0, 1, 0},
    /* SIP message layer */
    {"tls_crlf_pingpong", T_BOOL, S_GLOBAL, G(tls_crlf_pingpong), 0, "1", NULL, NULL, 0, 1, 0},
    {"tls_crlf_drop", T_BOOL, S_GLOBAL, G(tls_crlf_drop), 0, "0", NULL, NULL, 0, 1, 0},
    {"tls_max_msg_chunks", T_UINT, S_GLOBAL, G(tls_max_msg_chunks), 0, "4", NULL, NULL, 0, 1024, 0},
    {"tls_max_msg_time", T_UINT, S_GLOBAL, G(tls_max_msg_time), 0, "4", NULL, NULL, 0, 3600, 0},
    {"max_msg_size", T_UINT, S_GLOBAL, G(max_msg_size), 0, "65535", NULL, NULL, 256, 16777216, 0},
    {"max_header_size", T_UINT, S_GLOBAL, G(max_header_size), 0, "16384", NULL, NULL, 256, 16777216,
     0},
    {"keepalive_interval", T_UINT, S_GLOBAL, G(keepalive_interval), 0, "0", NULL, NULL, 0, 86400,
     0},
    {"keepalive_timeout", T_UINT, S_GLOBAL, G(keepalive_timeout), 0, "10", NULL, NULL, 1, 3600, 0},
    /* TLS over TCP */
    {"tls_handshake_timeout", T_UINT, S_GLOBAL, G(tls_handshake_timeout), 0, "10000", NULL, NULL, 1,
     600000, 0},
    {"tls_connect_timeout", T_UINT, S_GLOBAL, G(tls_connect_timeout), 0, "5000", NULL, NULL, 1,
     600000, 0},
    {"tls_send_timeout", T_UINT, S_GLOBAL, G(tls_send_timeout), 0, "5000", NULL, NULL, 1, 600000,
     0},
    {"tls_async_max_postponed_chunks", T_UINT, S_GLOBAL, G(tls_async_max_postponed_chunks), 0, "32",
     NULL, NULL, 1, 65536, 0},
    {"tls_async_max_queued_bytes", T_UINT, S_GLOBAL, G(tls_async_max_queued_bytes), 0, "1048576",
     NULL, NULL, 1024, 1073741824, 0},
    {"tls_connection_lifetime", T_UINT, S_GLOBAL, G(tls_connection_lifetime), 0, "120", NULL, NULL,
     1, 2592000, 0},
    {"tls_max_connections", T_UINT, S_GLOBAL, G(tls_max_connections), 0, "2048", NULL, NULL, 1,
     1000000, 0},
    /* security */
    {"trusted_domain", T_NAMELIST, S_GLOBAL, G(trusted_domain), G(n_trusted_domain), "", NULL, NULL,
     0, 0, 0},
    {"tls_keylog_file", T_STR, S_GLOBAL, G(tls_keylog_file), 0, "", NULL, NULL, 0, 0, 0},
    {"tls_session_cache", T_BOOL, S_GLOBAL, G(tls_session_cache), 0, "1", NULL, NULL, 0, 1, 0},
    {"tls_session_tickets", T_BOOL, S_GLOBAL, G(tls_session_tickets), 0, "1", NULL, NULL, 0, 1, 0},
    {"tls_ticket_key_file", T_STR, S_GLOBAL, G(tls_ticket_key_file), 0, "", NULL, NULL, 0, 0, 0},
    /* DTLS over UDP */
    {"dtls_handshake_timeout", T_UINT, S_GLOBAL, G(dtls_handshake_timeout), 0, "10000", NULL, NULL,
     1, 600000, 0},
    {"dtls_mtu", T_UINT, S_GLOBAL, G(dtls_mtu), 0, "1200", NULL, NULL, 256, 65507, 0},
    {"dtls_session_lifetime", T_UINT, S_GLOBAL, G(dtls_session_lifetime), 0, "120", NULL, NULL, 1,
     2592000, 0},
    {"dtls_max_sessions", T_UINT, S_GLOBAL, G(dtls_max_sessions), 0, "2048", NULL, NULL, 1, 1000000,
     0},
    {"dtls_reassembly_timeout", T_UINT, S_GLOBAL, G(dtls_reassembly_timeout), 0, "2000", NULL, NULL,
     1, 600000, 0},
    {"dtls_handshake_rate", T_UINT, S_GLOBAL, G(dtls_handshake_rate), 0, "20", NULL, NULL, 0,
     1000000, 0},
    {"dtls_cookie_lifetime", T_UINT, S_GLOBAL, G(dtls_cookie_lifetime), 0, "60", NULL, NULL, 1,
     86400, 0},
    /* logging */
    {"log_level", T_INT, S_GLOBAL, G(log_level), 0, "2", NULL, NULL, 0, 3, 0},
    /* TLS domains: declarations, then the per-domain keys */
    {"server_domain", T_DOMAIN, S_GLOBAL, 0, 0, "", NULL, NULL, 1, 0, 0},
    {"client_domain", T_DOMAIN, S_GLOBAL, 0, 0, "", NULL, NULL, 0, 0, 0},
    {"match_ip_address", T_ADDRLIST, S_DOMAIN, D(match_ip_address), D(n_match_ip_address), "", NULL,
     NULL, 0, 0, 0},
    {"match_sip_domain", T_NAMELIST, S_DOMAIN, D(match_sip_domain), D(n_match_sip_domain), "", NULL,
     NULL, 0, 0, F_STAR},
    {"certificate", T_STR, S_DOMAIN, D(certificate), 0, "", NULL, NULL, 0, 0, 0},
    {"private_key", T_STR, S_DOMAIN, D(private_key), 0, "", NULL, NULL, 0, 0, 0},
    {"ca_list", T_STR, S_DOMAIN, D(ca_list), 0, "", NULL, NULL, 0, 0, 0},
    {"ca_dir", T_STR, S_DOMAIN, D(ca_dir), 0, "", NULL, NULL, 0, 0, 0},
    {"crl_file", T_STR, S_DOMAIN, D(crl_file), 0, "", NULL, NULL, 0, 0, 0},
    {"ciphers_list", T_STR, S_DOMAIN, D(ciphers_list), 0, "", NULL, NULL, 0, 0, 0},
    {"tls_method", T_METHOD, S_DOMAIN, D(tls_method), 0, "", NULL, NULL, 0, 0, 0},
    {"ec_curve", T_STR, S_DOMAIN, D(ec_curve), 0, "", NULL, NULL, 0, 0, 0},
    {"verify_cert", T_BOOL, S_DOMAIN, D(verify_cert), 0, "0", "1",
     "0 (server domains), 1 (client domains)", 0, 1, 0},
    {"require_cert", T_BOOL, S_DOMAIN, D(require_cert), 0, "0", NULL, NULL, 0, 1, 0},
};

#define N_PARAMS (sizeof(params) / sizeof(params[0]))

/* ---- small helpers -------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* Copy at most dstlen-1 bytes; always terminates. */
static void copy_trunc(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstlen) {
        n = dstlen - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void why_set(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why_set(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, WHY_LEN, fmt, ap);
    va_end(ap);
    if (n < 0) {
        why[0] = '\0';
    }
}

/* Trimmed copy of [s, s+n) into a fresh buffer of the same size. */
static void trim_into(char *dst, const char *s, size_t n)
{
    while (n > 0 && is_ws(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_ws(s[n - 1])) {
        n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static char **list_field(void *base, const param *p)
{
    return *(char ***)((char *)base + p->off);
}

static size_t list_count(const void *base, const param *p)
{
    return *(const size_t *)((const char *)base + p->n_off);
}

static int is_list(ptype t)
{
    return t == T_NAMELIST || t == T_ADDRLIST || t == T_URILIST;
}

static int is_string(ptype t)
{
    return t == T_STR || t == T_METHOD;
}

static const param *find_param(const char *name)
{
    for (size_t i = 0; i < N_PARAMS; i++) {
        if (strcmp(params[i].name, name) == 0) {
            return &params[i];
        }
    }
    return NULL;
}

/* ---- value parsers --------------------------------------------------------- */

static int parse_bool(const char *v, int *out, char *why)
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

static int parse_number(const char *v, unsigned long min, unsigned long max, unsigned long *out,
                        char *why)
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

static int parse_method(const char *v, const char **canon, char *why)
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

/* A string value must survive a dump (quoted, one line): no control bytes. */
static int check_text(const char *v, char *why)
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
static int canon_name(const char *item, unsigned flags, char *out, size_t outlen, char *why)
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
static int canon_addr(const char *item, char *out, size_t outlen, char *why)
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

static int valid_domain_name(const char *s, size_t n)
{
    if (n == 0 || n > DOMAIN_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!isalnum((unsigned char)c) && c != '_' && c != '.' && c != '-') {
            return 0;
        }
    }
    return 1;
}

/* ---- list items ---------------------------------------------------------- */

typedef struct items {
    char **v;
    size_t n;
} items;

static void items_free(items *it)
{
    for (size_t i = 0; i < it->n; i++) {
        free(it->v[i]);
    }
    free(it->v);
    it->v = NULL;
    it->n = 0;
}

static int items_push(items *it, const char *s)
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
static int parse_items(const param *p, const char *value, items *out, char *why)
{
    if (p->type == T_URILIST) {
        siptls_uri u;
        int rc = siptls_uri_parse(value, 5061, 5061, 1, &u);
        if (rc != SIPTLS_OK) {
            why_set(why, "'%.60s' is not a listen URI: %s", value, siptls_strerror(rc));
            return rc == SIPTLS_ERR_INVAL ? SIPTLS_ERR_INVAL : SIPTLS_ERR_CONFIG_VALUE;
        }
        return items_push(out, value);
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
        int rc = p->type == T_ADDRLIST ? canon_addr(item, canon, sizeof(canon), why)
                                       : canon_name(item, p->flags, canon, sizeof(canon), why);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        rc = items_push(out, canon);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        if (comma == NULL) {
            return SIPTLS_OK;
        }
        s = comma + 1;
    }
}

/* ---- domains ------------------------------------------------------------- */

static void domain_free(siptls_domain_cfg *d)
{
    for (size_t i = 0; i < N_PARAMS; i++) {
        const param *p = &params[i];
        if (p->where != S_DOMAIN) {
            continue;
        }
        if (is_string(p->type)) {
            free(*(char **)((char *)d + p->off));
        } else if (is_list(p->type)) {
            char **v = list_field(d, p);
            size_t n = list_count(d, p);
            for (size_t k = 0; k < n; k++) {
                free(v[k]);
            }
            free(v);
        }
    }
    free(d->name);
    memset(d, 0, sizeof(*d));
}

/* A declared domain: every setting unset (inherited from the default domain
 * of the same kind, see siptls_config_domain_effective). */
static int domain_new(siptls_domain_cfg *d, const char *name, int is_server)
{
    memset(d, 0, sizeof(*d));
    d->name = xstrdup(name);
    if (d->name == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    d->is_server = is_server;
    d->verify_cert = -1;
    d->require_cert = -1;
    return SIPTLS_OK;
}

static siptls_domain_cfg *find_domain(const siptls_config *cfg, const char *name, size_t n,
                                      int is_server)
{
    for (size_t i = 0; i < cfg->n_domains; i++) {
        siptls_domain_cfg *d = &cfg->domains[i];
        if (d->is_server == is_server && strlen(d->name) == n && memcmp(d->name, name, n) == 0) {
            return d;
        }
    }
    return NULL;
}

/* The leading "[NAME]" / "[server:NAME]" / "[client:NAME]" of a per-domain
 * value, if any. A bracket that does not hold a domain selector (IPv6
 * "[::1]:5061" in match_ip_address) is left as part of the value: domain
 * names cannot contain ':' and IPv6 addresses always do. For keys whose
 * values never start with '[' (paths, booleans, cipher lists) such a
 * bracket is a mistyped prefix ("[sever:sbc]") and an error, rather than
 * a literal file name. */
static int select_domains(siptls_config *cfg, const param *p, const char *value,
                          siptls_domain_cfg **targets, size_t *nt, const char **rest, char *why)
{
    *rest = value;
    *nt = 0;
    int want = -1; /* -1 both kinds, 1 server, 0 client */
    const char *name = NULL;
    size_t n = 0;

    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        const char *in = value + 1;
        size_t len = close ? (size_t)(close - in) : strlen(in);
        const char *colon = memchr(in, ':', len);
        if (colon == NULL) {
            name = in;
            n = len;
        } else if ((size_t)(colon - in) == 6 && strncmp(in, "server", 6) == 0) {
            want = 1;
        } else if ((size_t)(colon - in) == 6 && strncmp(in, "client", 6) == 0) {
            want = 0;
        }
        if (want != -1) {
            name = colon + 1;
            n = len - 7;
            if (memchr(name, ':', n) != NULL) {
                name = NULL; /* not a selector */
            }
        }
        if (name != NULL) {
            if (close == NULL) {
                why_set(why, "unterminated [domain] prefix");
                return SIPTLS_ERR_CONFIG_VALUE;
            }
            if (!valid_domain_name(name, n)) {
                why_set(why, "'%.*s' is not a domain name", (int)(n > 63 ? 63 : n), name);
                return SIPTLS_ERR_CONFIG_VALUE;
            }
            *rest = close + 1;
        }
    }
    if (name == NULL && value[0] == '[' && p->type != T_ADDRLIST && p->type != T_NAMELIST) {
        const char *close = strchr(value, ']');
        int len = close ? (int)(close - value) + 1 : (int)strlen(value);
        why_set(why, "bad domain prefix '%.*s' (want [NAME], [server:NAME] or [client:NAME])",
                len > 70 ? 70 : len, value);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    if (name == NULL) {
        name = DEFAULT_NAME;
        n = strlen(DEFAULT_NAME);
    }
    if (want != 0) {
        siptls_domain_cfg *d = find_domain(cfg, name, n, 1);
        if (d != NULL) {
            targets[(*nt)++] = d;
        }
    }
    if (want != 1) {
        siptls_domain_cfg *d = find_domain(cfg, name, n, 0);
        if (d != NULL) {
            targets[(*nt)++] = d;
        }
    }
    if (*nt == 0) {
        why_set(why, "unknown %sdomain '%.*s' (declare it first with %s)",
                want == 1   ? "server "
                : want == 0 ? "client "
                            : "",
                (int)n, name,
                want == 1   ? "server_domain"
                : want == 0 ? "client_domain"
                            : "server_domain or client_domain");
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    return SIPTLS_OK;
}

static int declare_domain(siptls_config *cfg, const param *p, const char *value, char *why)
{
    int is_server = p->min == 1;
    const char *eq = strchr(value, '=');
    size_t n = eq ? (size_t)(eq - value) : strlen(value);
    char name[DOMAIN_NAME_MAX + 1];
    char addr[LINE_MAX_LEN + 1];

    while (n > 0 && is_ws(value[n - 1])) {
        n--;
    }
    if (!valid_domain_name(value, n)) {
        why_set(why, "'%.60s' is not a domain name (want 1..63 of A-Z a-z 0-9 _ . -)", value);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    memcpy(name, value, n);
    name[n] = '\0';
    if (strcmp(name, DEFAULT_NAME) == 0) {
        why_set(why, "'default' is built in; set it with keys without a [NAME] prefix");
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    if (find_domain(cfg, name, n, is_server) != NULL) {
        why_set(why, "%s domain '%s' is already declared", is_server ? "server" : "client", name);
        return SIPTLS_ERR_CONFIG_VALUE;
    }

    /* OpenSIPS 2.2/2.3 form NAME=ADDR: the domain plus one match entry. */
    const param *mp = NULL;
    items it = {NULL, 0};
    if (eq != NULL) {
        char canon[SIPTLS_URI_HOST_MAX + 32];
        trim_into(addr, eq + 1, strlen(eq + 1));
        int rc = canon_addr(addr, canon, sizeof(canon), why);
        if (rc == SIPTLS_OK) {
            mp = find_param("match_ip_address");
        } else if (!is_server) {
            rc = canon_name(addr, F_STAR, canon, sizeof(canon), why);
            mp = find_param("match_sip_domain");
        }
        if (rc != SIPTLS_OK) {
            why_set(why, "'%.60s' after '=' is not %s", addr,
                    is_server ? "IP:port" : "IP:port or a SIP domain");
            return SIPTLS_ERR_CONFIG_VALUE;
        }
        rc = items_push(&it, canon);
        if (rc != SIPTLS_OK) {
            items_free(&it);
            return rc;
        }
    }

    siptls_domain_cfg *nd = realloc(cfg->domains, (cfg->n_domains + 1) * sizeof(*nd));
    if (nd == NULL) {
        items_free(&it);
        return SIPTLS_ERR_NOMEM;
    }
    cfg->domains = nd; /* a larger array with the same n_domains changes nothing */
    siptls_domain_cfg d;
    if (domain_new(&d, name, is_server) != SIPTLS_OK) {
        domain_free(&d);
        items_free(&it);
        return SIPTLS_ERR_NOMEM;
    }
    if (mp != NULL) {
        *(char ***)((char *)&d + mp->off) = it.v;
        *(size_t *)((char *)&d + mp->n_off) = it.n;
    }
    nd[cfg->n_domains++] = d;
    return SIPTLS_OK;
}

/* ---- setting one parameter ---------------------------------------------- */

/* Apply `value` to the field of `p` in each of `bases` (the config itself,
 * or 1-2 domains). Everything that can fail happens before the first store. */
static int store(const param *p, void **bases, size_t nb, const char *value, char *why)
{
    switch (p->type) {
    case T_BOOL: {
        int b;
        int rc = parse_bool(value, &b, why);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        for (size_t i = 0; i < nb; i++) {
            *(int *)((char *)bases[i] + p->off) = b;
        }
        return SIPTLS_OK;
    }
    case T_UINT:
    case T_INT: {
        unsigned long v;
        int rc = parse_number(value, p->min, p->max, &v, why);
        if (rc != SIPTLS_OK) {
            return rc;
        }
        for (size_t i = 0; i < nb; i++) {
            if (p->type == T_UINT) {
                *(unsigned *)((char *)bases[i] + p->off) = (unsigned)v;
            } else {
                *(int *)((char *)bases[i] + p->off) = (int)v;
            }
        }
        return SIPTLS_OK;
    }
    case T_STR:
    case T_METHOD: {
        const char *v = value;
        int rc = check_text(value, why);
        if (rc == SIPTLS_OK && p->type == T_METHOD && *value != '\0') {
            rc = parse_method(value, &v, why);
        }
        if (rc != SIPTLS_OK) {
            return rc;
        }
        char *copies[2] = {NULL, NULL};
        for (size_t i = 0; i < nb && *v != '\0'; i++) {
            copies[i] = xstrdup(v);
            if (copies[i] == NULL) {
                free(copies[0]);
                return SIPTLS_ERR_NOMEM;
            }
        }
        for (size_t i = 0; i < nb; i++) {
            char **field = (char **)((char *)bases[i] + p->off);
            free(*field);
            *field = copies[i]; /* "" stores NULL: unset */
        }
        return SIPTLS_OK;
    }
    case T_NAMELIST:
    case T_ADDRLIST:
    case T_URILIST: {
        int rc = check_text(value, why);
        items it = {NULL, 0};
        if (rc == SIPTLS_OK) {
            rc = parse_items(p, value, &it, why);
        }
        if (rc != SIPTLS_OK) {
            items_free(&it);
            return rc;
        }
        /* Grow every target first (harmless on failure: counts unchanged),
         * then duplicate the items for all but the last target. */
        items extra = {NULL, 0};
        for (size_t i = 0; i < nb && rc == SIPTLS_OK; i++) {
            char ***field = (char ***)((char *)bases[i] + p->off);
            size_t n = list_count(bases[i], p);
            char **nv = realloc(*field, (n + it.n) * sizeof(*nv));
            if (nv == NULL) {
                rc = SIPTLS_ERR_NOMEM;
            } else {
                *field = nv;
            }
        }
        for (size_t i = 0; i + 1 < nb && rc == SIPTLS_OK; i++) {
            for (size_t k = 0; k < it.n && rc == SIPTLS_OK; k++) {
                rc = items_push(&extra, it.v[k]);
            }
        }
        if (rc != SIPTLS_OK) {
            items_free(&it);
            items_free(&extra);
            return rc;
        }
        for (size_t i = 0; i < nb; i++) {
            char **v = list_field(bases[i], p);
            size_t *n = (size_t *)((char *)bases[i] + p->n_off);
            for (size_t k = 0; k < it.n; k++) {
                v[(*n)++] = i + 1 < nb ? extra.v[i * it.n + k] : it.v[k];
            }
        }
        free(it.v);
        free(extra.v);
        return SIPTLS_OK;
    }
    case T_DOMAIN:
        break; /* handled by the caller */
    }
    return SIPTLS_ERR_INVAL;
}

static int set_one(siptls_config *cfg, const char *key, const char *raw, char *why)
{
    const param *p = find_param(key);
    if (p == NULL) {
        why_set(why, "unknown parameter");
        return SIPTLS_ERR_CONFIG_KEY;
    }
    char value[LINE_MAX_LEN + 1];
    size_t len = strlen(raw);
    if (len > LINE_MAX_LEN) {
        why_set(why, "value longer than %d characters", LINE_MAX_LEN);
        return SIPTLS_ERR_CONFIG_VALUE;
    }
    trim_into(value, raw, len);

    if (p->type == T_DOMAIN) {
        return declare_domain(cfg, p, value, why);
    }
    if (p->where == S_GLOBAL) {
        void *base = cfg;
        return store(p, &base, 1, value, why);
    }
    siptls_domain_cfg *targets[2];
    size_t nt;
    const char *rest;
    int rc = select_domains(cfg, p, value, targets, &nt, &rest, why);
    if (rc != SIPTLS_OK) {
        return rc;
    }
    char v[LINE_MAX_LEN + 1];
    trim_into(v, rest, strlen(rest));
    void *bases[2] = {targets[0], nt > 1 ? targets[1] : NULL};
    return store(p, bases, nt, v, why);
}

/* ---- errors --------------------------------------------------------------- */

static void err_clear(siptls_config_error *err)
{
    if (err != NULL) {
        memset(err, 0, sizeof(*err));
    }
}

static void err_fill(siptls_config_error *err, int status, const char *file, unsigned line,
                     const char *key, const char *why)
{
    if (err == NULL) {
        return;
    }
    err->status = status;
    copy_trunc(err->file, sizeof(err->file), file);
    err->line = line;
    copy_trunc(err->key, sizeof(err->key), key);
    char where[sizeof(err->file) + 16] = "";
    if (file[0] != '\0') {
        /* line 0: about the whole file (cannot open it, ...) */
        int n = line > 0 ? snprintf(where, sizeof(where), "%s:%u: ", err->file, line)
                         : snprintf(where, sizeof(where), "%s: ", err->file);
        if (n < 0) {
            where[0] = '\0';
        }
    }
    int n =
        snprintf(err->msg, sizeof(err->msg), "%s%s%s%s", where, err->key,
                 err->key[0] != '\0' ? ": " : "", why[0] != '\0' ? why : siptls_strerror(status));
    if (n < 0) {
        err->msg[0] = '\0';
    }
}

/* ---- public: init / cleanup / copy ---------------------------------------- */

void siptls_config_cleanup(siptls_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < N_PARAMS; i++) {
        const param *p = &params[i];
        if (p->where != S_GLOBAL) {
            continue;
        }
        if (is_string(p->type)) {
            free(*(char **)((char *)cfg + p->off));
        } else if (is_list(p->type)) {
            char **v = list_field(cfg, p);
            size_t n = list_count(cfg, p);
            for (size_t k = 0; k < n; k++) {
                free(v[k]);
            }
            free(v);
        }
    }
    for (size_t i = 0; i < cfg->n_domains; i++) {
        domain_free(&cfg->domains[i]);
    }
    free(cfg->domains);
    memset(cfg, 0, sizeof(*cfg));
}

int siptls_config_init(siptls_config *cfg)
{
    if (cfg == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->domains = calloc(2, sizeof(*cfg->domains));
    if (cfg->domains == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    cfg->n_domains = 2;
    int rc = domain_new(&cfg->domains[0], DEFAULT_NAME, 1);
    if (rc == SIPTLS_OK) {
        rc = domain_new(&cfg->domains[1], DEFAULT_NAME, 0);
    }
    char why[WHY_LEN];
    for (size_t i = 0; i < N_PARAMS && rc == SIPTLS_OK; i++) {
        const param *p = &params[i];
        if (p->def[0] == '\0' && p->type != T_BOOL && p->type != T_UINT && p->type != T_INT) {
            continue; /* unset string / empty list */
        }
        if (p->where == S_GLOBAL) {
            void *base = cfg;
            rc = store(p, &base, 1, p->def, why);
        } else {
            void *srv = &cfg->domains[0];
            void *cli = &cfg->domains[1];
            rc = store(p, &srv, 1, p->def, why);
            if (rc == SIPTLS_OK) {
                rc = store(p, &cli, 1, p->def_client ? p->def_client : p->def, why);
            }
        }
    }
    if (rc != SIPTLS_OK) {
        siptls_config_cleanup(cfg);
        return SIPTLS_ERR_NOMEM; /* the table's defaults parse; only memory can fail */
    }
    return SIPTLS_OK;
}

static int copy_fields(void *dst, const void *src, scope where)
{
    int rc = SIPTLS_OK;
    /* First make every owned pointer NULL in dst, so that a failure half way
     * leaves something domain_free / cleanup can free. */
    for (size_t i = 0; i < N_PARAMS; i++) {
        const param *p = &params[i];
        if (p->where != where) {
            continue;
        }
        if (is_string(p->type)) {
            *(char **)((char *)dst + p->off) = NULL;
        } else if (is_list(p->type)) {
            *(char ***)((char *)dst + p->off) = NULL;
            *(size_t *)((char *)dst + p->n_off) = 0;
        }
    }
    for (size_t i = 0; i < N_PARAMS && rc == SIPTLS_OK; i++) {
        const param *p = &params[i];
        if (p->where != where) {
            continue;
        }
        if (is_string(p->type)) {
            const char *s = *(char *const *)((const char *)src + p->off);
            if (s != NULL) {
                char *d = xstrdup(s);
                if (d == NULL) {
                    rc = SIPTLS_ERR_NOMEM;
                }
                *(char **)((char *)dst + p->off) = d;
            }
        } else if (is_list(p->type)) {
            char *const *v = *(char **const *)((const char *)src + p->off);
            size_t n = list_count(src, p);
            if (n == 0) {
                continue;
            }
            char **dv = calloc(n, sizeof(*dv));
            if (dv == NULL) {
                rc = SIPTLS_ERR_NOMEM;
                continue;
            }
            *(char ***)((char *)dst + p->off) = dv;
            size_t k = 0;
            for (; k < n; k++) {
                dv[k] = xstrdup(v[k]);
                if (dv[k] == NULL) {
                    rc = SIPTLS_ERR_NOMEM;
                    break;
                }
            }
            *(size_t *)((char *)dst + p->n_off) = k;
        }
    }
    return rc;
}

int siptls_config_copy(siptls_config *dst, const siptls_config *src)
{
    if (dst == NULL || src == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *dst = *src; /* scalars */
    dst->domains = NULL;
    dst->n_domains = 0;
    int rc = copy_fields(dst, src, S_GLOBAL);
    if (rc == SIPTLS_OK && src->n_domains > 0) {
        dst->domains = calloc(src->n_domains, sizeof(*dst->domains));
        if (dst->domains == NULL) {
            rc = SIPTLS_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < src->n_domains && rc == SIPTLS_OK; i++) {
        siptls_domain_cfg *d = &dst->domains[i];
        const siptls_domain_cfg *s = &src->domains[i];
        *d = *s;
        d->name = NULL;
        dst->n_domains = i + 1;
        rc = copy_fields(d, s, S_DOMAIN);
        if (rc == SIPTLS_OK) {
            d->name = xstrdup(s->name);
            if (d->name == NULL) {
                rc = SIPTLS_ERR_NOMEM;
            }
        }
    }
    if (rc != SIPTLS_OK) {
        siptls_config_cleanup(dst);
        return rc;
    }
    return SIPTLS_OK;
}

/* ---- public: compare ------------------------------------------------------ */

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

static int fields_equal(const void *a, const void *b, scope where)
{
    for (size_t i = 0; i < N_PARAMS; i++) {
        const param *p = &params[i];
        if (p->where != where) {
            continue;
        }
        const char *pa = (const char *)a + p->off;
        const char *pb = (const char *)b + p->off;
        switch (p->type) {
        case T_BOOL:
        case T_INT:
            if (*(const int *)pa != *(const int *)pb) {
                return 0;
            }
            break;
        case T_UINT:
            if (*(const unsigned *)pa != *(const unsigned *)pb) {
                return 0;
            }
            break;
        case T_STR:
        case T_METHOD:
            if (!str_eq(*(char *const *)pa, *(char *const *)pb)) {
                return 0;
            }
            break;
        case T_NAMELIST:
        case T_ADDRLIST:
        case T_URILIST: {
            size_t n = list_count(a, p);
            if (n != list_count(b, p)) {
                return 0;
            }
            char *const *va = *(char **const *)pa;
            char *const *vb = *(char **const *)pb;
            for (size_t k = 0; k < n; k++) {
                if (!str_eq(va[k], vb[k])) {
                    return 0;
                }
            }
            break;
        }
        case T_DOMAIN:
            break;
        }
    }
    return 1;
}

int siptls_config_equal(const siptls_config *a, const siptls_config *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (!fields_equal(a, b, S_GLOBAL) || a->n_domains != b->n_domains) {
        return 0;
    }
    for (size_t i = 0; i < a->n_domains; i++) {
        const siptls_domain_cfg *da = &a->domains[i];
        const siptls_domain_cfg *db = &b->domains[i];
        if (da->is_server != db->is_server || !str_eq(da->name, db->name) ||
            !fields_equal(da, db, S_DOMAIN)) {
            return 0;
        }
    }
    return 1;
}

/* ---- public: set / load --------------------------------------------------- */

int siptls_config_set(siptls_config *cfg, const char *key, const char *value,
                      siptls_config_error *err)
{
    err_clear(err);
    if (cfg == NULL || key == NULL || value == NULL) {
        err_fill(err, SIPTLS_ERR_INVAL, "", 0, key ? key : "", "");
        return SIPTLS_ERR_INVAL;
    }
    char why[WHY_LEN] = "";
    int rc = set_one(cfg, key, value, why);
    if (rc != SIPTLS_OK) {
        err_fill(err, rc, "", 0, key, why);
    }
    return rc;
}

/* Quoted string at *p (on the opening '"'): \" and \\ are escapes, any other
 * backslash is kept as is (so paths need no doubling). */
static int parse_quoted(const char **p, char *out, size_t outlen)
{
    const char *s = *p + 1;
    size_t n = 0;
    for (;;) {
        char c = *s;
        if (c == '\0') {
            return 0;
        }
        if (c == '"') {
            break;
        }
        if (c == '\\' && (s[1] == '"' || s[1] == '\\')) {
            s++;
            c = *s;
        }
        if (n + 1 >= outlen) {
            return 0;
        }
        out[n++] = c;
        s++;
    }
    out[n] = '\0';
    *p = s + 1;
    return 1;
}

static const char *skip_ws(const char *s)
{
    while (is_ws(*s)) {
        s++;
    }
    return s;
}

/* After a value: only white space and an optional "# comment" may follow. */
static int at_line_end(const char *s)
{
    s = skip_ws(s);
    return *s == '\0' || *s == '#';
}

static const char *const modules[] = {"proto_tls", "tls_mgm", "tls_wolfssl", "proto_dtls"};

/* modparam("module", "key", value)[;] */
static int parse_modparam(const char *s, char *key, size_t keylen, char *value, size_t valuelen,
                          char *why)
{
    char module[64];
    s = skip_ws(s + strlen("modparam"));
    if (*s != '(') {
        why_set(why, "expected '(' after modparam");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    s = skip_ws(s + 1);
    if (*s != '"' || !parse_quoted(&s, module, sizeof(module))) {
        why_set(why, "modparam: expected a quoted module name");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    s = skip_ws(s);
    if (*s != ',') {
        why_set(why, "modparam: expected ',' after the module name");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    s = skip_ws(s + 1);
    if (*s != '"' || !parse_quoted(&s, key, keylen)) {
        why_set(why, "modparam: expected a quoted parameter name");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    s = skip_ws(s);
    if (*s != ',') {
        why_set(why, "modparam: expected ',' after the parameter name");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    s = skip_ws(s + 1);
    if (*s == '"') {
        if (!parse_quoted(&s, value, valuelen)) {
            why_set(why, "modparam: unterminated string");
            return SIPTLS_ERR_CONFIG_SYNTAX;
        }
    } else {
        size_t n = 0;
        while (*s != '\0' && !is_ws(*s) && *s != ')' && *s != ',' && n + 1 < valuelen) {
            value[n++] = *s++;
        }
        value[n] = '\0';
        if (n == 0) {
            why_set(why, "modparam: expected a value");
            return SIPTLS_ERR_CONFIG_SYNTAX;
        }
    }
    s = skip_ws(s);
    if (*s != ')') {
        why_set(why, "modparam: expected ')'");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    s = skip_ws(s + 1);
    if (*s == ';') {
        s++;
    }
    if (!at_line_end(s)) {
        why_set(why, "junk after modparam(...)");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        if (strcmp(module, modules[i]) == 0) {
            return SIPTLS_OK;
        }
    }
    why_set(why,
            "module '%.40s' is not handled here (want proto_tls, tls_mgm, tls_wolfssl or "
            "proto_dtls)",
            module);
    return SIPTLS_ERR_CONFIG_KEY;
}

/* key = value. Unquoted values end at "#" preceded by white space. */
static int parse_assignment(const char *s, char *key, size_t keylen, char *value, size_t valuelen,
                            char *why)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_') {
        n++;
    }
    if (n == 0) {
        why_set(why, "expected 'key = value'");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    if (n >= keylen) {
        why_set(why, "parameter name too long");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    memcpy(key, s, n);
    key[n] = '\0';
    s = skip_ws(s + n);
    if (*s != '=') {
        why_set(why, "expected '=' after the parameter name");
        return SIPTLS_ERR_CONFIG_SYNTAX;
    }
    s++;
    const char *v = skip_ws(s);
    if (*v == '"') {
        if (!parse_quoted(&v, value, valuelen)) {
            why_set(why, "unterminated string");
            return SIPTLS_ERR_CONFIG_SYNTAX;
        }
        if (!at_line_end(v)) {
            why_set(why, "junk after the closing quote");
            return SIPTLS_ERR_CONFIG_SYNTAX;
        }
        return SIPTLS_OK;
    }
    size_t end = 0;
    while (v[end] != '\0') {
        if (v[end] == '#' && (end == 0 ? v > s : is_ws(v[end - 1]))) {
            break; /* "key = # c" and "key = v # c" are comments; "a#b" is not */
        }
        end++;
    }
    if (end >= valuelen) {
        end = valuelen - 1;
    }
    trim_into(value, v, end);
    return SIPTLS_OK;
}

typedef struct line_ctx {
    siptls_config *cfg;
    const char *name;
    siptls_config_error *err;
} line_ctx;

static int do_line(line_ctx *c, const char *line, unsigned lineno)
{
    char key[64] = "";
    char value[LINE_MAX_LEN + 1];
    char why[WHY_LEN] = "";
    const char *s = skip_ws(line);
    if (*s == '\0' || *s == '#') {
        return SIPTLS_OK;
    }
    int rc;
    if (strncmp(s, "modparam", 8) == 0 && *skip_ws(s + 8) == '(') {
        rc = parse_modparam(s, key, sizeof(key), value, sizeof(value), why);
    } else {
        rc = parse_assignment(s, key, sizeof(key), value, sizeof(value), why);
    }
    if (rc == SIPTLS_OK) {
        rc = set_one(c->cfg, key, value, why);
    }
    if (rc != SIPTLS_OK) {
        err_fill(c->err, rc, c->name, lineno, key, why);
    }
    return rc;
}

static int load_text(siptls_config *cfg, const char *text, size_t len, const char *name,
                     siptls_config_error *err)
{
    siptls_config work;
    if (siptls_config_copy(&work, cfg) != SIPTLS_OK) {
        err_fill(err, SIPTLS_ERR_NOMEM, name, 0, "", "");
        return SIPTLS_ERR_NOMEM;
    }
    line_ctx c = {&work, name, err};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3; /* UTF-8 byte order mark some editors write */
        len -= 3;
    }
    char line[LINE_MAX_LEN + 1];
    unsigned lineno = 0;
    size_t pos = 0;
    int rc = SIPTLS_OK;
    while (pos < len && rc == SIPTLS_OK) {
        lineno++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && start[n - 1] == '\r') {
            n--;
        }
        if (memchr(start, '\0', n) != NULL) {
            err_fill(err, SIPTLS_ERR_CONFIG_SYNTAX, name, lineno, "", "NUL byte in line");
            rc = SIPTLS_ERR_CONFIG_SYNTAX;
            break;
        }
        if (n > LINE_MAX_LEN) {
            char why[WHY_LEN];
            why_set(why, "line longer than %d characters", LINE_MAX_LEN);
            err_fill(err, SIPTLS_ERR_CONFIG_SYNTAX, name, lineno, "", why);
            rc = SIPTLS_ERR_CONFIG_SYNTAX;
            break;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        rc = do_line(&c, line, lineno);
    }
    if (rc != SIPTLS_OK) {
        siptls_config_cleanup(&work);
        return rc;
    }
    siptls_config_cleanup(cfg);
    *cfg = work;
    return SIPTLS_OK;
}

int siptls_config_load_string(siptls_config *cfg, const char *text, const char *name,
                              siptls_config_error *err)
{
    err_clear(err);
    if (name == NULL) {
        name = "(string)";
    }
    if (cfg == NULL || text == NULL) {
        err_fill(err, SIPTLS_ERR_INVAL, name, 0, "", "");
        return SIPTLS_ERR_INVAL;
    }
    return load_text(cfg, text, strlen(text), name, err);
}

int siptls_config_load_file(siptls_config *cfg, const char *path, siptls_config_error *err)
{
    err_clear(err);
    if (cfg == NULL || path == NULL) {
        err_fill(err, SIPTLS_ERR_INVAL, path ? path : "", 0, "", "");
        return SIPTLS_ERR_INVAL;
    }
    char why[WHY_LEN];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        why_set(why, "cannot open: %s", strerror(errno));
        err_fill(err, SIPTLS_ERR_CONFIG_IO, path, 0, "", why);
        return SIPTLS_ERR_CONFIG_IO;
    }
    char *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    int rc = SIPTLS_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= FILE_MAX_LEN) {
                why_set(why, "file larger than %u bytes", FILE_MAX_LEN);
                rc = SIPTLS_ERR_CONFIG_IO;
                break;
            }
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                why[0] = '\0';
                rc = SIPTLS_ERR_NOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                why_set(why, "cannot read: %s", strerror(errno));
                rc = SIPTLS_ERR_CONFIG_IO;
            }
            break;
        }
    }
    fclose(f);
    if (rc != SIPTLS_OK) {
        err_fill(err, rc, path, 0, "", why);
        free(buf);
        return rc;
    }
    buf[len] = '\0'; /* the loop above always allocated: cap + 1 >= len + 1 */
    rc = load_text(cfg, buf, len, path, err);
    free(buf);
    return rc;
}

/* ---- public: queries ------------------------------------------------------ */

const siptls_domain_cfg *siptls_config_domain(const siptls_config *cfg, const char *name,
                                              int is_server)
{
    if (cfg == NULL || name == NULL) {
        return NULL;
    }
    return find_domain(cfg, name, strlen(name), is_server ? 1 : 0);
}

int siptls_config_domain_effective(const siptls_config *cfg, const siptls_domain_cfg *dom,
                                   siptls_domain_cfg *out)
{
    if (cfg == NULL || dom == NULL || out == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    const siptls_domain_cfg *def = siptls_config_domain(cfg, DEFAULT_NAME, dom->is_server);
    siptls_domain_cfg r = *dom;
    for (size_t i = 0; i < N_PARAMS && def != NULL; i++) {
        const param *p = &params[i];
        if (p->where != S_DOMAIN) {
            continue;
        }
        if (is_string(p->type)) {
            char **f = (char **)((char *)&r + p->off);
            if (*f == NULL) {
                *f = *(char *const *)((const char *)def + p->off);
            }
        } else if (p->type == T_BOOL) {
            int *f = (int *)((char *)&r + p->off);
            if (*f < 0) {
                *f = *(const int *)((const char *)def + p->off);
            }
        }
    }
    *out = r;
    return SIPTLS_OK;
}

int siptls_config_listen_uri(const siptls_config *cfg, size_t i, siptls_uri *out)
{
    if (cfg == NULL || out == NULL || i >= cfg->n_listen) {
        return SIPTLS_ERR_INVAL;
    }
    return siptls_uri_parse(cfg->listen[i], (uint16_t)cfg->tls_port, (uint16_t)cfg->dtls_port, 1,
                            out);
}

int siptls_config_param(size_t i, const char **name, const char **default_text)
{
    if (i >= N_PARAMS) {
        return 0;
    }
    if (name != NULL) {
        *name = params[i].name;
    }
    if (default_text != NULL) {
        *default_text = params[i].doc_def ? params[i].doc_def : params[i].def;
    }
    return 1;
}

/* ---- public: dump --------------------------------------------------------- */

static void dump_quoted_body(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', out);
        }
        fputc(*s, out);
    }
}

/* `comment` (may be NULL) follows the value as "  # comment". */
static void dump_line(FILE *out, const char *key, const char *prefix, const char *value, int quote,
                      const char *comment)
{
    fprintf(out, "%s = ", key);
    if (quote) {
        fputc('"', out);
        dump_quoted_body(out, prefix);
        dump_quoted_body(out, value);
        fputc('"', out);
    } else {
        fputs(value, out);
    }
    if (comment != NULL) {
        fprintf(out, "  # %s", comment);
    }
    fputc('\n', out);
}

/* One parameter of `base`: globals with prefix "" (numbers bare, strings
 * quoted), domain keys with "[server:NAME]" / "[client:NAME]" (quoted).
 * `inherit` (a declared domain's default domain, or NULL): a setting
 * `base` leaves unset is written with the value it inherits, marked
 * with `inherit_note`. */
static void dump_field(FILE *out, const param *p, const void *base, const char *prefix,
                       int show_unset, const void *inherit, const char *inherit_note)
{
    const char *f = (const char *)base + p->off;
    int quote = prefix[0] != '\0';
    char num[32];
    switch (p->type) {
    case T_BOOL:
    case T_INT: {
        int v = *(const int *)f;
        const char *note = NULL;
        if (v < 0 && inherit != NULL) {
            v = *(const int *)((const char *)inherit + p->off);
            note = inherit_note;
        }
        if (v < 0) {
            return; /* unset in a declared domain: inherited */
        }
        if (snprintf(num, sizeof(num), "%d", v) > 0) {
            dump_line(out, p->name, prefix, num, quote, note);
        }
        return;
    }
    case T_UINT:
        if (snprintf(num, sizeof(num), "%u", *(const unsigned *)f) > 0) {
            dump_line(out, p->name, prefix, num, quote, NULL);
        }
        return;
    case T_STR:
    case T_METHOD: {
        const char *v = *(char *const *)f;
        const char *note = NULL;
        if (v == NULL && inherit != NULL) {
            v = *(char *const *)((const char *)inherit + p->off);
            note = inherit_note;
        }
        if (v != NULL || show_unset) {
            dump_line(out, p->name, prefix, v ? v : "", 1, note);
        }
        return;
    }
    case T_NAMELIST:
    case T_ADDRLIST:
    case T_URILIST: {
        char *const *v = *(char **const *)f;
        size_t n = list_count(base, p);
        for (size_t k = 0; k < n; k++) {
            dump_line(out, p->name, prefix, v[k], 1, NULL);
        }
        return;
    }
    case T_DOMAIN:
        return;
    }
}

/* The listen URIs as the engine binds them: with the port filled in. */
static void dump_listen_effective(const siptls_config *cfg, FILE *out)
{
    for (size_t k = 0; k < cfg->n_listen; k++) {
        siptls_uri u;
        char text[SIPTLS_URI_HOST_MAX + 32];
        if (siptls_config_listen_uri(cfg, k, &u) == SIPTLS_OK &&
            siptls_uri_format(&u, text, sizeof(text)) > 0) {
            dump_line(out, "listen", "", text, 1, u.port_given ? NULL : "default port");
        } else {
            dump_line(out, "listen", "", cfg->listen[k], 1, NULL);
        }
    }
}

static void dump(const siptls_config *cfg, FILE *out, int effective)
{
    if (effective) {
        fputs("# siptls configuration as an engine uses it (siptls_config_dump_effective):\n"
              "# listen ports filled in, inherited domain settings written out\n",
              out);
    } else {
        fputs("# siptls configuration (siptls_config_dump); loads back with "
              "siptls_config_load_file\n",
              out);
    }
    for (size_t i = 0; i < N_PARAMS; i++) {
        const param *p = &params[i];
        if (p->where != S_GLOBAL || p->type == T_DOMAIN) {
            continue;
        }
        if (effective && p->type == T_URILIST && strcmp(p->name, "listen") == 0) {
            dump_listen_effective(cfg, out);
        } else {
            dump_field(out, p, cfg, "", 1, NULL, NULL);
        }
    }
    for (size_t d = 0; d < cfg->n_domains; d++) {
        const siptls_domain_cfg *dom = &cfg->domains[d];
        if (strcmp(dom->name, DEFAULT_NAME) != 0) {
            dump_line(out, dom->is_server ? "server_domain" : "client_domain", "", dom->name, 1,
                      NULL);
        }
    }
    for (size_t d = 0; d < cfg->n_domains; d++) {
        const siptls_domain_cfg *dom = &cfg->domains[d];
        int is_default = strcmp(dom->name, DEFAULT_NAME) == 0;
        char prefix[DOMAIN_NAME_MAX + 16];
        if (snprintf(prefix, sizeof(prefix), "[%s:%.*s]", dom->is_server ? "server" : "client",
                     DOMAIN_NAME_MAX, dom->name) < 0) {
            continue;
        }
        fprintf(out, "# %s domain %s\n", dom->is_server ? "server" : "client", dom->name);
        const siptls_domain_cfg *def = effective && !is_default
                                           ? siptls_config_domain(cfg, DEFAULT_NAME, dom->is_server)
                                           : NULL;
        const char *note =
            dom->is_server ? "inherited from [server:default]" : "inherited from [client:default]";
        for (size_t i = 0; i < N_PARAMS; i++) {
            if (params[i].where == S_DOMAIN) {
                dump_field(out, &params[i], dom, prefix, is_default, def, note);
            }
        }
    }
}

void siptls_config_dump(const siptls_config *cfg, FILE *out)
{
    if (cfg == NULL || out == NULL) {
        return;
    }
    dump(cfg, out, 0);
}

void siptls_config_dump_effective(const siptls_config *cfg, FILE *out)
{
    if (cfg == NULL || out == NULL) {
        return;
    }
    dump(cfg, out, 1);
}
