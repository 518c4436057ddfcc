/* siptls — configuration: setting one key.
 *
 * A per-domain key may start with a domain prefix ([NAME], [server:NAME],
 * [client:NAME]); server_domain / client_domain declare domains. Everything
 * that can fail (parse, validate, allocate) happens before the first field
 * changes, so a failed set leaves the configuration as it was. */
#include <ctype.h>

#include "config_internal.h"
#include "siptls/uri.h"

/* ---- domains ------------------------------------------------------------- */

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
        siptls_domain_cfg *d = siptls__config_find_domain(cfg, name, n, 1);
        if (d != NULL) {
            targets[(*nt)++] = d;
        }
    }
    if (want != 1) {
        siptls_domain_cfg *d = siptls__config_find_domain(cfg, name, n, 0);
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
    if (siptls__config_find_domain(cfg, name, n, is_server) != NULL) {
        why_set(why, "%s domain '%s' is already declared", is_server ? "server" : "client", name);
        return SIPTLS_ERR_CONFIG_VALUE;
    }

    /* OpenSIPS 2.2/2.3 form NAME=ADDR: the domain plus one match entry. */
    const param *mp = NULL;
    items it = {NULL, 0};
    if (eq != NULL) {
        char canon[SIPTLS_URI_HOST_MAX + 32];
        trim_into(addr, eq + 1, strlen(eq + 1));
        int rc = siptls__config_canon_addr(addr, canon, sizeof(canon), why);
        if (rc == SIPTLS_OK) {
            mp = siptls__config_find_param("match_ip_address");
        } else if (!is_server) {
            rc = siptls__config_canon_name(addr, F_STAR, canon, sizeof(canon), why);
            mp = siptls__config_find_param("match_sip_domain");
        }
        if (rc != SIPTLS_OK) {
            why_set(why, "'%.60s' after '=' is not %s", addr,
                    is_server ? "IP:port" : "IP:port or a SIP domain");
            return SIPTLS_ERR_CONFIG_VALUE;
        }
        rc = siptls__config_items_push(&it, canon);
        if (rc != SIPTLS_OK) {
            siptls__config_items_free(&it);
            return rc;
        }
    }

    siptls_domain_cfg *nd = realloc(cfg->domains, (cfg->n_domains + 1) * sizeof(*nd));
    if (nd == NULL) {
        siptls__config_items_free(&it);
        return SIPTLS_ERR_NOMEM;
    }
    cfg->domains = nd; /* a larger array with the same n_domains changes nothing */
    siptls_domain_cfg d;
    if (siptls__config_domain_new(&d, name, is_server) != SIPTLS_OK) {
        siptls__config_domain_free(&d);
        siptls__config_items_free(&it);
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
int siptls__config_store(const param *p, void **bases, size_t nb, const char *value, char *why)
{
    switch (p->type) {
    case T_BOOL: {
        int b;
        int rc = siptls__config_parse_bool(value, &b, why);
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
        int rc = siptls__config_parse_number(value, p->min, p->max, &v, why);
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
    case T_METHOD:
    case T_DTLSVER: {
        const char *v = value;
        int rc = siptls__config_check_text(value, why);
        if (rc == SIPTLS_OK && p->type == T_METHOD && *value != '\0') {
            rc = siptls__config_parse_method(value, &v, why);
        } else if (rc == SIPTLS_OK && p->type == T_DTLSVER && *value != '\0') {
            rc = siptls__config_parse_dtls_version(value, &v, why);
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
        int rc = siptls__config_check_text(value, why);
        items it = {NULL, 0};
        if (rc == SIPTLS_OK) {
            rc = siptls__config_parse_items(p, value, &it, why);
        }
        if (rc != SIPTLS_OK) {
            siptls__config_items_free(&it);
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
                rc = siptls__config_items_push(&extra, it.v[k]);
            }
        }
        if (rc != SIPTLS_OK) {
            siptls__config_items_free(&it);
            siptls__config_items_free(&extra);
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

int siptls__config_set_one(siptls_config *cfg, const char *key, const char *raw, char *why)
{
    const param *p = siptls__config_find_param(key);
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
        return siptls__config_store(p, &base, 1, value, why);
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
    return siptls__config_store(p, bases, nt, v, why);
}

/* ---- errors --------------------------------------------------------------- */

void siptls__config_err_clear(siptls_config_error *err)
{
    if (err != NULL) {
        memset(err, 0, sizeof(*err));
    }
}

void siptls__config_err_fill(siptls_config_error *err, int status, const char *file, unsigned line,
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

/* ---- public: set --------------------------------------------------------- */

int siptls_config_set(siptls_config *cfg, const char *key, const char *value,
                      siptls_config_error *err)
{
    siptls__config_err_clear(err);
    if (cfg == NULL || key == NULL || value == NULL) {
        siptls__config_err_fill(err, SIPTLS_ERR_INVAL, "", 0, key ? key : "", "");
        return SIPTLS_ERR_INVAL;
    }
    char why[WHY_LEN] = "";
    int rc = siptls__config_set_one(cfg, key, value, why);
    if (rc != SIPTLS_OK) {
        siptls__config_err_fill(err, rc, "", 0, key, why);
    }
    return rc;
}
