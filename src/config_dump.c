/* siptls — configuration: dump (loads back) and effective dump (as an
 * engine uses it). */
#include "config_internal.h"
#include "siptls/uri.h"

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
    case T_METHOD:
    case T_DTLSVER: {
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
    for (size_t i = 0; i < siptls__config_n_params; i++) {
        const param *p = &siptls__config_params[i];
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
        for (size_t i = 0; i < siptls__config_n_params; i++) {
            if (siptls__config_params[i].where == S_DOMAIN) {
                dump_field(out, &siptls__config_params[i], dom, prefix, is_default, def, note);
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
