/* siptls internal — what the files of the configuration share.
 *
 * One parameter table (config.c) drives everything; the rest is split by
 * what it does with it:
 *
 *   config.c        the table; init, cleanup, copy, compare, queries; the
 *                   domain records
 *   config_parse.c  value parsers: text to checked, canonical values
 *   config_set.c    setting one key: domain prefixes and declarations,
 *                   storing into the table's fields; siptls_config_set
 *   config_file.c   the file syntax (key = value, OpenSIPS modparam) and
 *                   the loaders
 *   config_dump.c   dump and effective dump
 *
 * Functions that cross files are named siptls__config_*; the helpers of a
 * few lines that every file uses are static inline here, so each has one
 * definition. */
#ifndef SIPTLS_CONFIG_INTERNAL_H
#define SIPTLS_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siptls/config.h"

#define LINE_MAX_LEN 4096 /* characters per line, without "\r\n" */
#define DOMAIN_NAME_MAX 63
#define WHY_LEN 200
#define DEFAULT_NAME "default"

typedef enum ptype {
    T_BOOL,     /* int: 0/1, yes/no, on/off, true/false; -1 = unset (declared domains) */
    T_UINT,     /* unsigned, decimal, [min, max] */
    T_INT,      /* int, decimal, [min, max] */
    T_STR,      /* char *, "" = unset (NULL) */
    T_METHOD,   /* char *, one of the tls_method spellings, stored canonical */
    T_DTLSVER,  /* char *, a DTLS version: "1.2" or "1.3" */
    T_NAMELIST, /* char ** + size_t: SIP domain names, comma lists append */
    T_ADDRLIST, /* char ** + size_t: "IP:port" / "[v6]:port" / "*", comma lists append */
    T_URILIST,  /* char ** + size_t: listen URIs, one per line, stored as written */
    T_DOMAIN    /* declares a server (min = 1) or client (min = 0) domain */
} ptype;

typedef enum scope {
    S_GLOBAL, /* offsets into siptls_config */
    S_DOMAIN  /* offsets into siptls_domain_cfg, optional [NAME] prefix */
} scope;

#define F_STAR 1u    /* T_NAMELIST: a lone "*" (any domain) is allowed */
#define F_RELOAD 2u  /* S_GLOBAL: applied by a reload (siptls_engine_reload), with the domains */
#define F_NO_STAR 4u /* T_ADDRLIST: "*" (any address) is refused */

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

/* The one table (config.c). Order is dump order. */
extern const param siptls__config_params[];
extern const size_t siptls__config_n_params;
/* ---- list items ---------------------------------------------------------- */

typedef struct items {
    char **v;
    size_t n;
} items;

/* ---- small helpers -------------------------------------------------------- */

static inline int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static inline char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

/* Copy at most dstlen-1 bytes; always terminates. */
static inline void copy_trunc(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstlen) {
        n = dstlen - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static inline void why_set(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void why_set(char *why, const char *fmt, ...)
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
static inline void trim_into(char *dst, const char *s, size_t n)
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

static inline char **list_field(void *base, const param *p)
{
    return *(char ***)((char *)base + p->off);
}

static inline size_t list_count(const void *base, const param *p)
{
    return *(const size_t *)((const char *)base + p->n_off);
}

static inline int is_list(ptype t)
{
    return t == T_NAMELIST || t == T_ADDRLIST || t == T_URILIST;
}

static inline int is_string(ptype t)
{
    return t == T_STR || t == T_METHOD || t == T_DTLSVER;
}

/* ---- across the files ---------------------------------------------------- */

/* config.c: the table entry of `name`, NULL when there is none. */
const param *siptls__config_find_param(const char *name);

/* config.c: domain records. new: a declared domain, every setting unset
 * (SIPTLS_OK or SIPTLS_ERR_NOMEM; free it either way); free: everything it
 * owns; find: by name (n bytes) and kind, NULL when not declared. */
void siptls__config_domain_free(siptls_domain_cfg *d);
int siptls__config_domain_new(siptls_domain_cfg *d, const char *name, int is_server);
siptls_domain_cfg *siptls__config_find_domain(const siptls_config *cfg, const char *name, size_t n,
                                              int is_server);

/* config_parse.c: value parsers. Each returns SIPTLS_OK or a
 * SIPTLS_ERR_CONFIG_* status with the reason in `why` (WHY_LEN bytes);
 * none changes a configuration. */
int siptls__config_parse_bool(const char *v, int *out, char *why);
int siptls__config_parse_number(const char *v, unsigned long min, unsigned long max,
                                unsigned long *out, char *why);
int siptls__config_parse_method(const char *v, const char **canon, char *why);
/* config_parse.c: a DTLS version, "1.2" or "1.3" (canonical spelling in *canon). */
int siptls__config_parse_dtls_version(const char *v, const char **canon, char *why);
int siptls__config_check_text(const char *v, char *why);
int siptls__config_canon_name(const char *item, unsigned flags, char *out, size_t outlen,
                              char *why);
int siptls__config_canon_addr(const char *item, char *out, size_t outlen, char *why);
void siptls__config_items_free(items *it);
int siptls__config_items_push(items *it, const char *s);
int siptls__config_parse_items(const param *p, const char *value, items *out, char *why);

/* config_set.c: store `value` into the field of `p` in each of `bases`
 * (all or nothing); set one key on `cfg` (all or nothing); the error
 * record of the public calls. */
int siptls__config_store(const param *p, void **bases, size_t nb, const char *value, char *why);
int siptls__config_set_one(siptls_config *cfg, const char *key, const char *raw, char *why);
void siptls__config_err_clear(siptls_config_error *err);
void siptls__config_err_fill(siptls_config_error *err, int status, const char *file, unsigned line,
                             const char *key, const char *why);

#endif
