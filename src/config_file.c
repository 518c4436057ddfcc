/* siptls — configuration: files and strings.
 *
 * The syntax is `key = value` and OpenSIPS's modparam("module", "key",
 * value) for the modules siptls replaces; a file is applied to a deep copy
 * of the configuration that replaces it only when every line succeeded. */
#include <ctype.h>
#include <errno.h>

#include "config_internal.h"

#define FILE_MAX_LEN (16u * 1024u * 1024u)

/* ---- syntax -------------------------------------------------------------- */

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
        rc = siptls__config_set_one(c->cfg, key, value, why);
    }
    if (rc != SIPTLS_OK) {
        siptls__config_err_fill(c->err, rc, c->name, lineno, key, why);
    }
    return rc;
}

static int load_text(siptls_config *cfg, const char *text, size_t len, const char *name,
                     siptls_config_error *err)
{
    siptls_config work;
    if (siptls_config_copy(&work, cfg) != SIPTLS_OK) {
        siptls__config_err_fill(err, SIPTLS_ERR_NOMEM, name, 0, "", "");
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
            siptls__config_err_fill(err, SIPTLS_ERR_CONFIG_SYNTAX, name, lineno, "",
                                    "NUL byte in line");
            rc = SIPTLS_ERR_CONFIG_SYNTAX;
            break;
        }
        if (n > LINE_MAX_LEN) {
            char why[WHY_LEN];
            why_set(why, "line longer than %d characters", LINE_MAX_LEN);
            siptls__config_err_fill(err, SIPTLS_ERR_CONFIG_SYNTAX, name, lineno, "", why);
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

/* ---- public: load -------------------------------------------------------- */

int siptls_config_load_string(siptls_config *cfg, const char *text, const char *name,
                              siptls_config_error *err)
{
    siptls__config_err_clear(err);
    if (name == NULL) {
        name = "(string)";
    }
    if (cfg == NULL || text == NULL) {
        siptls__config_err_fill(err, SIPTLS_ERR_INVAL, name, 0, "", "");
        return SIPTLS_ERR_INVAL;
    }
    return load_text(cfg, text, strlen(text), name, err);
}

int siptls_config_load_file(siptls_config *cfg, const char *path, siptls_config_error *err)
{
    siptls__config_err_clear(err);
    if (cfg == NULL || path == NULL) {
        siptls__config_err_fill(err, SIPTLS_ERR_INVAL, path ? path : "", 0, "", "");
        return SIPTLS_ERR_INVAL;
    }
    char why[WHY_LEN];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        why_set(why, "cannot open: %s", strerror(errno));
        siptls__config_err_fill(err, SIPTLS_ERR_CONFIG_IO, path, 0, "", why);
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
        siptls__config_err_fill(err, rc, path, 0, "", why);
        free(buf);
        return rc;
    }
    buf[len] = '\0'; /* the loop above always allocated: cap + 1 >= len + 1 */
    rc = load_text(cfg, buf, len, path, err);
    free(buf);
    return rc;
}
