/* siptls — configuration: one parameter table drives init, set, copy,
 * compare, dump, cleanup and siptls_config_param(), so a parameter cannot
 * exist in one of them and be missing in another.
 *
 * Atomicity: siptls_config_set() prepares everything that can fail (parse,
 * validate, allocate) before it changes anything; the file loader applies
 * the lines to a deep copy and swaps it in only when every line succeeded.
 *
 * This file holds the table and what walks all of it; the other files of
 * the configuration are listed in config_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "config_reload.h"
#include "siptls/uri.h"

#define G(f) offsetof(siptls_config, f)
#define D(f) offsetof(siptls_domain_cfg, f)

/* The one table. Order is dump order: domain declarations come before the
 * per-domain keys so that a dump loads back. */
const param siptls__config_params[] = {
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
    /* flows: backpressure, posting from other threads */
    {"queue_high_water", T_UINT, S_GLOBAL, G(queue_high_water), 0, "75", NULL, NULL, 1, 100, 0},
    {"queue_low_water", T_UINT, S_GLOBAL, G(queue_low_water), 0, "25", NULL, NULL, 0, 99, 0},
    {"post_max_pending", T_UINT, S_GLOBAL, G(post_max_pending), 0, "65536", NULL, NULL, 1, 16777216,
     0},
    {"post_max_pending_bytes", T_UINT, S_GLOBAL, G(post_max_pending_bytes), 0, "67108864", NULL,
     NULL, 65536, 1073741824, 0},
    /* security */
    {"trusted_domain", T_NAMELIST, S_GLOBAL, G(trusted_domain), G(n_trusted_domain), "", NULL, NULL,
     0, 0, F_RELOAD},
    {"tls_keylog_file", T_STR, S_GLOBAL, G(tls_keylog_file), 0, "", NULL, NULL, 0, 0, F_RELOAD},
    {"tls_session_cache", T_BOOL, S_GLOBAL, G(tls_session_cache), 0, "1", NULL, NULL, 0, 1,
     F_RELOAD},
    {"tls_session_tickets", T_BOOL, S_GLOBAL, G(tls_session_tickets), 0, "1", NULL, NULL, 0, 1,
     F_RELOAD},
    {"tls_ticket_key_file", T_STR, S_GLOBAL, G(tls_ticket_key_file), 0, "", NULL, NULL, 0, 0,
     F_RELOAD},
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
    {"dtls_cid", T_BOOL, S_GLOBAL, G(dtls_cid), 0, "1", NULL, NULL, 0, 1, 0},
    {"dtls_cid_length", T_UINT, S_GLOBAL, G(dtls_cid_length), 0, "8", NULL, NULL, 4, 16, 0},
    /* logging */
    {"log_level", T_INT, S_GLOBAL, G(log_level), 0, "2", NULL, NULL, 0, 3, 0},
    /* name resolution (c-ares) */
    {"dns_servers", T_ADDRLIST, S_GLOBAL, G(dns_servers), G(n_dns_servers), "", NULL, NULL, 0, 0,
     F_NO_STAR},
    {"dns_timeout", T_UINT, S_GLOBAL, G(dns_timeout), 0, "2000", NULL, NULL, 10, 60000, 0},
    {"dns_tries", T_UINT, S_GLOBAL, G(dns_tries), 0, "3", NULL, NULL, 1, 10, 0},
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
    {"dtls_min_version", T_DTLSVER, S_DOMAIN, D(dtls_min_version), 0, "1.2", NULL, NULL, 0, 0, 0},
    {"dtls_max_version", T_DTLSVER, S_DOMAIN, D(dtls_max_version), 0, "1.3", NULL, NULL, 0, 0, 0},
    {"verify_cert", T_BOOL, S_DOMAIN, D(verify_cert), 0, "0", "1",
     "0 (server domains), 1 (client domains)", 0, 1, 0},
    {"require_cert", T_BOOL, S_DOMAIN, D(require_cert), 0, "0", NULL, NULL, 0, 1, 0},
};

const size_t siptls__config_n_params =
    sizeof(siptls__config_params) / sizeof(siptls__config_params[0]);

const param *siptls__config_find_param(const char *name)
{
    for (size_t i = 0; i < siptls__config_n_params; i++) {
        if (strcmp(siptls__config_params[i].name, name) == 0) {
            return &siptls__config_params[i];
        }
    }
    return NULL;
}

/* ---- domains ------------------------------------------------------------- */

void siptls__config_domain_free(siptls_domain_cfg *d)
{
    for (size_t i = 0; i < siptls__config_n_params; i++) {
        const param *p = &siptls__config_params[i];
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
int siptls__config_domain_new(siptls_domain_cfg *d, const char *name, int is_server)
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

siptls_domain_cfg *siptls__config_find_domain(const siptls_config *cfg, const char *name, size_t n,
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

/* ---- public: init / cleanup / copy ---------------------------------------- */

void siptls_config_cleanup(siptls_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < siptls__config_n_params; i++) {
        const param *p = &siptls__config_params[i];
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
        siptls__config_domain_free(&cfg->domains[i]);
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
    int rc = siptls__config_domain_new(&cfg->domains[0], DEFAULT_NAME, 1);
    if (rc == SIPTLS_OK) {
        rc = siptls__config_domain_new(&cfg->domains[1], DEFAULT_NAME, 0);
    }
    char why[WHY_LEN];
    for (size_t i = 0; i < siptls__config_n_params && rc == SIPTLS_OK; i++) {
        const param *p = &siptls__config_params[i];
        if (p->def[0] == '\0' && p->type != T_BOOL && p->type != T_UINT && p->type != T_INT) {
            continue; /* unset string / empty list */
        }
        if (p->where == S_GLOBAL) {
            void *base = cfg;
            rc = siptls__config_store(p, &base, 1, p->def, why);
        } else {
            void *srv = &cfg->domains[0];
            void *cli = &cfg->domains[1];
            rc = siptls__config_store(p, &srv, 1, p->def, why);
            if (rc == SIPTLS_OK) {
                rc = siptls__config_store(p, &cli, 1, p->def_client ? p->def_client : p->def, why);
            }
        }
    }
    if (rc != SIPTLS_OK) {
        siptls_config_cleanup(cfg);
        return SIPTLS_ERR_NOMEM; /* the table's defaults parse; only memory can fail */
    }
    return SIPTLS_OK;
}

/* Make the owned pointer of `p` in `base` NULL (an empty list). */
static void clear_param(void *base, const param *p)
{
    if (is_string(p->type)) {
        *(char **)((char *)base + p->off) = NULL;
    } else if (is_list(p->type)) {
        *(char ***)((char *)base + p->off) = NULL;
        *(size_t *)((char *)base + p->n_off) = 0;
    }
}

/* Free what `p` owns in `base` and clear it. */
static void free_param(void *base, const param *p)
{
    if (is_string(p->type)) {
        free(*(char **)((char *)base + p->off));
    } else if (is_list(p->type)) {
        char **v = list_field(base, p);
        size_t n = list_count(base, p);
        for (size_t k = 0; k < n; k++) {
            free(v[k]);
        }
        free(v);
    }
    clear_param(base, p);
}

/* Copy the value of `p` from `src` into `dst`, whose owned pointer of `p`
 * is NULL; on failure what was copied stays in `dst` for cleanup. */
static int copy_param(void *dst, const void *src, const param *p)
{
    if (is_string(p->type)) {
        const char *s = *(char *const *)((const char *)src + p->off);
        if (s != NULL) {
            char *d = xstrdup(s);
            *(char **)((char *)dst + p->off) = d;
            return d != NULL ? SIPTLS_OK : SIPTLS_ERR_NOMEM;
        }
        return SIPTLS_OK;
    }
    if (is_list(p->type)) {
        char *const *v = *(char **const *)((const char *)src + p->off);
        size_t n = list_count(src, p);
        if (n == 0) {
            return SIPTLS_OK;
        }
        char **dv = calloc(n, sizeof(*dv));
        if (dv == NULL) {
            return SIPTLS_ERR_NOMEM;
        }
        *(char ***)((char *)dst + p->off) = dv;
        size_t k = 0;
        int rc = SIPTLS_OK;
        for (; k < n; k++) {
            dv[k] = xstrdup(v[k]);
            if (dv[k] == NULL) {
                rc = SIPTLS_ERR_NOMEM;
                break;
            }
        }
        *(size_t *)((char *)dst + p->n_off) = k;
        return rc;
    }
    if (p->type == T_UINT) {
        *(unsigned *)((char *)dst + p->off) = *(const unsigned *)((const char *)src + p->off);
    } else if (p->type == T_BOOL || p->type == T_INT) {
        *(int *)((char *)dst + p->off) = *(const int *)((const char *)src + p->off);
    }
    return SIPTLS_OK;
}

static int copy_fields(void *dst, const void *src, scope where)
{
    int rc = SIPTLS_OK;
    /* First make every owned pointer NULL in dst, so that a failure half way
     * leaves something domain_free / cleanup can free. */
    for (size_t i = 0; i < siptls__config_n_params; i++) {
        const param *p = &siptls__config_params[i];
        if (p->where == where) {
            clear_param(dst, p);
        }
    }
    for (size_t i = 0; i < siptls__config_n_params && rc == SIPTLS_OK; i++) {
        const param *p = &siptls__config_params[i];
        if (p->where == where) {
            rc = copy_param(dst, src, p);
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

static int param_equal(const void *a, const void *b, const param *p)
{
    const char *pa = (const char *)a + p->off;
    const char *pb = (const char *)b + p->off;
    switch (p->type) {
    case T_BOOL:
    case T_INT:
        return *(const int *)pa == *(const int *)pb;
    case T_UINT:
        return *(const unsigned *)pa == *(const unsigned *)pb;
    case T_STR:
    case T_METHOD:
    case T_DTLSVER:
        return str_eq(*(char *const *)pa, *(char *const *)pb);
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
        return 1;
    }
    case T_DOMAIN:
        break;
    }
    return 1;
}

static int fields_equal(const void *a, const void *b, scope where)
{
    for (size_t i = 0; i < siptls__config_n_params; i++) {
        const param *p = &siptls__config_params[i];
        if (p->where == where && !param_equal(a, b, p)) {
            return 0;
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

/* ---- reload --------------------------------------------------------------- */

int siptls__config_reloadable(const char *name)
{
    const param *p = siptls__config_find_param(name);
    return p != NULL && (p->where == S_DOMAIN || p->type == T_DOMAIN || (p->flags & F_RELOAD));
}

int siptls__config_reload_merge(siptls_config *out, const siptls_config *cur,
                                const siptls_config *next,
                                void (*kept)(void *user, const char *name), void *user)
{
    /* next's domains and security section; then cur's value back into
     * every other parameter. */
    int rc = siptls_config_copy(out, next);
    if (rc != SIPTLS_OK) {
        return rc;
    }
    for (size_t i = 0; i < siptls__config_n_params; i++) {
        const param *p = &siptls__config_params[i];
        if (p->where != S_GLOBAL || p->type == T_DOMAIN || (p->flags & F_RELOAD) ||
            param_equal(cur, next, p)) {
            continue;
        }
        if (kept != NULL) {
            kept(user, p->name);
        }
        free_param(out, p);
        rc = copy_param(out, cur, p);
        if (rc != SIPTLS_OK) {
            siptls_config_cleanup(out);
            return rc;
        }
    }
    return SIPTLS_OK;
}

/* ---- public: queries ------------------------------------------------------ */

const siptls_domain_cfg *siptls_config_domain(const siptls_config *cfg, const char *name,
                                              int is_server)
{
    if (cfg == NULL || name == NULL) {
        return NULL;
    }
    return siptls__config_find_domain(cfg, name, strlen(name), is_server ? 1 : 0);
}

int siptls_config_domain_effective(const siptls_config *cfg, const siptls_domain_cfg *dom,
                                   siptls_domain_cfg *out)
{
    if (cfg == NULL || dom == NULL || out == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    const siptls_domain_cfg *def = siptls_config_domain(cfg, DEFAULT_NAME, dom->is_server);
    siptls_domain_cfg r = *dom;
    for (size_t i = 0; i < siptls__config_n_params && def != NULL; i++) {
        const param *p = &siptls__config_params[i];
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
    if (i >= siptls__config_n_params) {
        return 0;
    }
    if (name != NULL) {
        *name = siptls__config_params[i].name;
    }
    if (default_text != NULL) {
        *default_text = siptls__config_params[i].doc_def ? siptls__config_params[i].doc_def
                                                         : siptls__config_params[i].def;
    }
    return 1;
}
