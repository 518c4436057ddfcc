/* siptls — security contexts: which domain a connection gets.
 *
 * Accepted connections start on the domain of their local address
 * (match_ip_address) and may move to the one the client names in SNI
 * (match_sip_domain, the domain's own name); outbound connections get the
 * client domain of their SIP domain, else of their destination address.
 * This chooses settings only: certificate identity checks (RFC 5922) are in
 * identity.c and secctx_peer.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "secctx_internal.h"

/* ------------------------------------------------------------------------ */
/* names and addresses                                                      */
/* ------------------------------------------------------------------------ */

int siptls__secctx_is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return siptls__addr_parse_ip(s, buf) != 0;
}

/* ------------------------------------------------------------------------ */
/* SNI                                                                      */
/* ------------------------------------------------------------------------ */

/* How specifically a match_sip_domain entry names `name` (an SNI host name
 * or the SIP domain of a destination); 0 = no match. An exact name beats
 * the domain's own name (server side), which beats any "*.suffix" pattern,
 * a longer suffix beating a shorter one; "*" comes last. */
#define RANK_ANY 1
#define RANK_SUFFIX 2 /* + the suffix length */
#define RANK_DOMAIN_NAME 100000
#define RANK_EXACT 100001

/* Entries are stored canonical by config.c: lower case, IPv6 in brackets.
 * `name` is compared case-insensitively, one trailing dot ignored ("a.org."
 * is the DNS name "a.org"); an IPv6 `name` may come with or without
 * brackets. "*.example.org" matches one or more labels in front of the
 * suffix (a.example.org, a.b.example.org), never example.org itself: what
 * OpenSIPS's match_sip_domain (fnmatch() without FNM_PERIOD) and Kamailio's
 * server_name_mode=2 do. This chooses settings only; certificate identity
 * checks (RFC 5922 §7.2) never use wildcards. */
static int name_rank(const char *pattern, const char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') {
        n--;
    }
    if (n == 0) {
        return 0;
    }
    if (strcmp(pattern, "*") == 0) {
        return RANK_ANY;
    }
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *suffix = pattern + 2;
        size_t sl = strlen(suffix);
        /* a non-empty label, a dot, then the suffix */
        if (sl == 0 || n < sl + 2 || name[n - sl - 1] != '.' || name[n - sl - 2] == '.' ||
            strncasecmp(name + n - sl, suffix, sl) != 0) {
            return 0;
        }
        return RANK_SUFFIX + (int)sl;
    }
    size_t pl = strlen(pattern);
    if (pattern[0] == '[' && pl >= 2 && pattern[pl - 1] == ']' && name[0] != '[') {
        pattern++;
        pl -= 2;
    }
    return pl == n && strncasecmp(pattern, name, n) == 0 ? RANK_EXACT : 0;
}

/* The best rank of `name` in a domain's match_sip_domain list. */
static int domain_name_rank(const sec_domain *d, const char *name)
{
    int best = 0;
    for (size_t k = 0; k < d->n_match_dom; k++) {
        int r = name_rank(d->match_dom[k], name);
        if (r > best) {
            best = r;
        }
    }
    return best;
}

static sec_domain *server_domain_by_name(siptls__secctx *s, const char *name)
{
    /* The most specific match wins; between equals, the domain declared
     * first. */
    sec_domain *best = NULL;
    int best_rank = 0;
    for (size_t i = 0; i < s->n_doms; i++) {
        sec_domain *d = &s->doms[i];
        if (!d->is_server || !d->has_cert) {
            continue;
        }
        int r = domain_name_rank(d, name);
        if (r < RANK_DOMAIN_NAME && d != s->def_server && strcasecmp(d->name, name) == 0) {
            r = RANK_DOMAIN_NAME;
        }
        if (r > best_rank) {
            best = d;
            best_rank = r;
        }
    }
    return best;
}

/* SNI: move the connection to the server domain named by the client. Runs
 * while the ClientHello is processed, before the server's certificate,
 * cipher suite and CertificateRequest are chosen. */
int siptls__secctx_sni_cb(WOLFSSL *ssl, int *alert, void *arg)
{
    (void)alert;
    siptls__secctx *s = arg;
    if (s == NULL) {
        return 0; /* secctx freed: stay on the domain chosen at accept */
    }
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    if (name == NULL || name[0] == '\0') {
        return 0;
    }
    sec_domain *cur = ssl_domain(ssl);
    sec_domain *to = server_domain_by_name(s, name);
    if (to == NULL || to == cur) {
        return 0; /* unknown name: the domain chosen by the listen address */
    }
    /* wolfSSL_set_SSL_CTX (5.5.4) takes the new CTX's certificate and key
     * but keeps the verify mode, cipher suites and groups the WOLFSSL got
     * at creation: set those from the new domain. */
    if (wolfSSL_set_SSL_CTX(ssl, to->ctx) != to->ctx) {
        slog(s, SIPTLS_LOG_WARN, "SNI '%.64s': cannot switch to domain '%s'", name, to->name);
        return 0;
    }
    wolfSSL_set_verify(ssl, to->verify_mode, siptls__secctx_verify_cb);
    if (cur == NULL || strcmp(cur->ciphers, to->ciphers) != 0) {
        wolfSSL_set_cipher_list(ssl, to->ciphers);
    }
    if (!s->dtls && (cur == NULL || strcmp(cur->curves, to->curves) != 0)) {
        wolfSSL_set1_curves_list(ssl, to->curves);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* public: new connections                                                  */
/* ------------------------------------------------------------------------ */

/* One match_ip_address entry against an address: "*" is any; a wildcard
 * host (0.0.0.0, [::]) is any address on that port. */
static int addr_entry_matches(const char *entry, const char *host, unsigned port)
{
    if (strcmp(entry, "*") == 0) {
        return 1;
    }
    const char *colon = strrchr(entry, ':');
    if (colon == NULL) {
        return 0;
    }
    char ehost[INET6_ADDRSTRLEN + 2];
    size_t hl = (size_t)(colon - entry);
    if (entry[0] == '[' && hl >= 2 && entry[hl - 1] == ']') {
        entry++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(ehost)) {
        return 0;
    }
    memcpy(ehost, entry, hl);
    ehost[hl] = '\0';
    char *end = NULL;
    unsigned long eport = strtoul(colon + 1, &end, 10);
    if (end == NULL || *end != '\0' || eport != port) {
        return 0;
    }
    if (strcmp(ehost, "0.0.0.0") == 0) {
        return strchr(host, ':') == NULL;
    }
    if (strcmp(ehost, "::") == 0) {
        return 1;
    }
    unsigned char a[16], b[16];
    int af = strchr(ehost, ':') ? AF_INET6 : AF_INET;
    if (strchr(host, ':') ? af != AF_INET6 : af != AF_INET) {
        return 0;
    }
    return inet_pton(af, ehost, a) == 1 && inet_pton(af, host, b) == 1 &&
           memcmp(a, b, af == AF_INET ? 4 : 16) == 0;
}

/* `star` 0: an address entry (not "*") names host:port; 1: the domain has
 * the "*" entry. */
static int domain_matches_addr(const sec_domain *d, const char *host, unsigned port, int star)
{
    for (size_t i = 0; i < d->n_match_ip; i++) {
        int is_star = strcmp(d->match_ip[i], "*") == 0;
        if (star ? is_star : (!is_star && addr_entry_matches(d->match_ip[i], host, port))) {
            return 1;
        }
    }
    return 0;
}

struct WOLFSSL *siptls__secctx_server_ssl(siptls__secctx *s, const struct sockaddr *local)
{
    if (s == NULL) {
        return NULL;
    }
    char host[INET6_ADDRSTRLEN];
    unsigned port = 0;
    sec_domain *dom = NULL;
    if (siptls__addr_host_port(local, host, sizeof(host), &port)) {
        /* An exact address first, then a domain with "*". */
        for (int pass = 0; pass < 2 && dom == NULL; pass++) {
            for (size_t i = 0; i < s->n_doms && dom == NULL; i++) {
                sec_domain *d = &s->doms[i];
                if (d->is_server && d->has_cert && d != s->def_server &&
                    domain_matches_addr(d, host, port, pass)) {
                    dom = d;
                }
            }
        }
    }
    if (dom == NULL) {
        dom = s->def_server;
    }
    if (dom == NULL || !dom->has_cert) {
        return NULL;
    }
    WOLFSSL *ssl = wolfSSL_new(dom->ctx);
    siptls__secctx_keylog_keep(s, ssl);
    return ssl;
}

static sec_domain *client_domain_by_name(const siptls__secctx *s, const char *name)
{
    for (size_t i = 0; s != NULL && name != NULL && i < s->n_doms; i++) {
        if (!s->doms[i].is_server && strcmp(s->doms[i].name, name) == 0) {
            return &s->doms[i];
        }
    }
    return NULL;
}

int siptls__secctx_has_client_domain(const siptls__secctx *s, const char *name)
{
    return client_domain_by_name(s, name) != NULL;
}

/* The client domain for `sip_domain` at `remote`, or the one the host
 * named (`by_name`, OpenSIPS client_tls_domain_avp); NULL: none. */
static sec_domain *client_domain(siptls__secctx *s, const char *sip_domain, const char *by_name,
                                 const struct sockaddr *remote)
{
    if (by_name != NULL) {
        return client_domain_by_name(s, by_name);
    }
    char host[INET6_ADDRSTRLEN];
    unsigned port = 0;
    int have_addr = siptls__addr_host_port(remote, host, sizeof(host), &port);
    sec_domain *dom = NULL;
    /* 1. the SIP domain by name: an exact name, else the longest matching
     * "*.suffix" (the first declared between equals); 2. the destination
     * address; 3. "*". */
    int best_rank = RANK_ANY;
    for (size_t i = 0; i < s->n_doms && sip_domain != NULL; i++) {
        sec_domain *d = &s->doms[i];
        int r = d->is_server ? 0 : domain_name_rank(d, sip_domain);
        if (r > best_rank) {
            dom = d;
            best_rank = r;
        }
    }
    for (size_t i = 0; i < s->n_doms && dom == NULL && have_addr; i++) {
        sec_domain *d = &s->doms[i];
        if (!d->is_server && d != s->def_client && domain_matches_addr(d, host, port, 0)) {
            dom = d;
        }
    }
    for (size_t i = 0; i < s->n_doms && dom == NULL; i++) {
        sec_domain *d = &s->doms[i];
        if (d->is_server || d == s->def_client) {
            continue;
        }
        int star = domain_matches_addr(d, host, port, 1);
        for (size_t k = 0; k < d->n_match_dom && !star; k++) {
            star = strcmp(d->match_dom[k], "*") == 0;
        }
        if (star) {
            dom = d;
        }
    }
    return dom != NULL ? dom : s->def_client;
}

const char *siptls__secctx_client_domain(siptls__secctx *s, const char *sip_domain,
                                         const char *by_name, const struct sockaddr *remote)
{
    sec_domain *dom = s != NULL ? client_domain(s, sip_domain, by_name, remote) : NULL;
    return dom != NULL ? dom->name : NULL;
}

struct WOLFSSL *siptls__secctx_client_ssl(siptls__secctx *s, const char *sip_domain,
                                          const struct sockaddr *remote)
{
    return siptls__secctx_client_ssl_ex(s, sip_domain, NULL, NULL, remote);
}

struct WOLFSSL *siptls__secctx_client_ssl_ex(siptls__secctx *s, const char *sip_domain,
                                             const char *sni, const char *client_domain_name,
                                             const struct sockaddr *remote)
{
    if (s == NULL) {
        return NULL;
    }
    sec_domain *dom = client_domain(s, sip_domain, client_domain_name, remote);
    if (dom == NULL || dom->ctx == NULL) {
        return NULL;
    }
    WOLFSSL *ssl = wolfSSL_new(dom->ctx);
    if (ssl == NULL) {
        return NULL;
    }
    siptls__secctx_keylog_keep(s, ssl);
    set_aux(ssl, fnv_lower(sip_domain));
#ifdef HAVE_SERVER_RENEGOTIATION_INFO
    /* RFC 5746 §3.4: "the client MUST include either an empty
     * "renegotiation_info" extension, or the TLS_EMPTY_RENEGOTIATION_INFO_SCSV
     * signaling cipher suite value in the ClientHello". Debian's wolfSSL
     * sends neither by default; this adds the extension. It does not make
     * us renegotiate: without HAVE_SECURE_RENEGOTIATION a HelloRequest is
     * still answered with a no_renegotiation warning. */
    if (wolfSSL_UseSecureRenegotiation(ssl) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl);
        return NULL;
    }
#endif
    /* RFC 5922 §7.2: the SNI is the SIP domain (not the address we
     * connect to), unless the host asked for another name. */
    const char *name = sni != NULL ? sni : sip_domain;
    if (name != NULL && name[0] != '\0' && !siptls__secctx_is_ip_literal(name)) {
        /* RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted
         * in "HostName"." */
        if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, name, (word16)strlen(name)) !=
            WOLFSSL_SUCCESS) {
            wolfSSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}
