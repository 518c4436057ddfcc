/* Docs are part of done: every parameter of the config table has a heading
 * in docs/admin-guide.md, its default ("Default value is X."), and an
 * example line; every parameter heading in the guide is a real parameter;
 * and every default or range quoted elsewhere in docs/ (tables, "`name`
 * (default N", "Range a..b") is the code's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "config_reload.h"
#include "siptls/config.h"

#define GUIDE SIPTLS_TEST_DIR "/../docs/admin-guide.md"

typedef struct doc {
    char *text;
    char **lines;
    int *in_fence; /* 1 for lines inside ``` blocks (their '#' is not a heading) */
    size_t n;
} doc;

static doc guide;

static int load_guide(void **state)
{
    (void)state;
    FILE *f = fopen(GUIDE, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", GUIDE);
        return -1;
    }
    size_t cap = 1 << 16;
    size_t len = 0;
    guide.text = malloc(cap + 1);
    for (;;) {
        if (guide.text == NULL) {
            fclose(f);
            return -1;
        }
        size_t got = fread(guide.text + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            break;
        }
        if (len == cap) {
            cap *= 2;
            char *t = realloc(guide.text, cap + 1);
            if (t == NULL) {
                free(guide.text);
            }
            guide.text = t;
        }
    }
    fclose(f);
    guide.text[len] = '\0';

    size_t nlines = 1;
    for (size_t i = 0; i < len; i++) {
        nlines += guide.text[i] == '\n';
    }
    guide.lines = calloc(nlines, sizeof(*guide.lines));
    guide.in_fence = calloc(nlines, sizeof(*guide.in_fence));
    if (guide.lines == NULL || guide.in_fence == NULL) {
        return -1;
    }
    int fence = 0;
    char *s = guide.text;
    while (s != NULL) {
        char *nl = strchr(s, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        if (strncmp(s, "```", 3) == 0) {
            fence = !fence;
            guide.in_fence[guide.n] = 1;
        } else {
            guide.in_fence[guide.n] = fence;
        }
        guide.lines[guide.n++] = s;
        s = nl ? nl + 1 : NULL;
    }
    return 0;
}

static int free_guide(void **state)
{
    (void)state;
    free(guide.lines);
    free(guide.in_fence);
    free(guide.text);
    return 0;
}

static int heading_level(size_t i)
{
    if (guide.in_fence[i]) {
        return 0;
    }
    int l = 0;
    while (guide.lines[i][l] == '#') {
        l++;
    }
    return guide.lines[i][l] == ' ' ? l : 0;
}

static int is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* `word` appears in `line` with no identifier character on either side. */
static int has_word(const char *line, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(line, word); p != NULL; p = strstr(p + 1, word)) {
        if ((p == line || !is_ident(p[-1])) && !is_ident(p[n])) {
            return 1;
        }
    }
    return 0;
}

static void test_every_param_documented(void **state)
{
    (void)state;
    const char *name;
    const char *def;
    size_t count = 0;
    for (size_t k = 0; siptls_config_param(k, &name, &def); k++, count++) {
        /* the heading */
        size_t h = guide.n;
        for (size_t i = 0; i < guide.n; i++) {
            if (heading_level(i) > 0 && has_word(guide.lines[i], name)) {
                h = i;
                break;
            }
        }
        if (h == guide.n) {
            fail_msg("docs/admin-guide.md has no heading for parameter %s", name);
        }
        int level = heading_level(h);
        size_t end = h + 1;
        while (end < guide.n && (heading_level(end) == 0 || heading_level(end) > level)) {
            end++;
        }

        /* the default, exactly as the table has it ("" for unset) */
        char want[256];
        snprintf(want, sizeof(want), "Default value is %s", def[0] ? def : "\"\"");
        int has_default = 0;
        int has_plain = 0;
        int has_modparam = 0;
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "\"%s\"", name);
        for (size_t i = h + 1; i < end; i++) {
            const char *line = guide.lines[i];
            if (!guide.in_fence[i] && strstr(line, want) != NULL) {
                has_default = 1;
            }
            if (guide.in_fence[i]) {
                size_t n = strlen(name);
                const char *after = line + n;
                while (*after == ' ') {
                    after++;
                }
                if (strncmp(line, name, n) == 0 && *after == '=') {
                    has_plain = 1;
                }
                if (strncmp(line, "modparam(", 9) == 0 && strstr(line, quoted) != NULL) {
                    has_modparam = 1;
                }
            }
        }
        if (!has_default) {
            fail_msg("docs: section '%s' does not say '%s'", guide.lines[h], want);
        }
        if (!has_plain) {
            fail_msg("docs: section '%s' has no example line '%s = ...'", guide.lines[h], name);
        }
        if (!has_modparam && strcmp(name, "listen") != 0) {
            fail_msg("docs: section '%s' has no modparam(..., \"%s\", ...) example", guide.lines[h],
                     name);
        }
    }
    assert_true(count > 0);
}

/* The lines of the paragraph of the "Reloading the TLS domains" section
 * that starts with `lead`, joined (up to the next empty line). */
static void reload_paragraph(const char *lead, char *out, size_t cap)
{
    out[0] = '\0';
    size_t i = 0;
    while (i < guide.n && strcmp(guide.lines[i], "### Reloading the TLS domains") != 0) {
        i++;
    }
    assert_true(i < guide.n);
    while (i < guide.n && strncmp(guide.lines[i], lead, strlen(lead)) != 0) {
        i++;
    }
    assert_true(i < guide.n);
    for (; i < guide.n && guide.lines[i][0] != '\0'; i++) {
        strncat(out, guide.lines[i], cap - strlen(out) - 2);
        strcat(out, " ");
    }
}

/* The guide's list of what a reload applies is the code's
 * (siptls__config_reloadable), both ways. */
static void test_reload_list(void **state)
{
    (void)state;
    char applied[4096], kept[4096];
    reload_paragraph("Applied by a reload:", applied, sizeof(applied));
    reload_paragraph("Not applied", kept, sizeof(kept));
    const char *name;
    unsigned n_applied = 0;
    for (size_t k = 0; siptls_config_param(k, &name, NULL); k++) {
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "`%s`", name);
        int in_applied = strstr(applied, quoted) != NULL;
        if (siptls__config_reloadable(name)) {
            n_applied++;
            if (!in_applied || strstr(kept, quoted) != NULL) {
                fail_msg("docs: a reload applies %s: the 'Applied by a reload' paragraph must "
                         "name it, 'Not applied' must not",
                         name);
            }
        } else if (in_applied) {
            fail_msg("docs: 'Applied by a reload' names %s, which a reload does not apply", name);
        }
    }
    assert_true(n_applied > 10);
}

/* The other way round: a parameter-style heading ("#### name (type...)")
 * names a parameter that exists, so removed ones do not linger in the docs. */
static void test_no_stale_headings(void **state)
{
    (void)state;
    for (size_t i = 0; i < guide.n; i++) {
        if (heading_level(i) != 4) {
            continue;
        }
        const char *t = guide.lines[i] + 5;
        size_t n = 0;
        while (is_ident(t[n])) {
            n++;
        }
        if (strncmp(t + n, " (", 2) != 0) {
            continue;
        }
        const char *name;
        int found = 0;
        for (size_t k = 0; siptls_config_param(k, &name, NULL); k++) {
            found |= strlen(name) == n && strncmp(name, t, n) == 0;
        }
        if (!found) {
            fail_msg("docs: heading '%s' is not a parameter of siptls_config_param()",
                     guide.lines[i]);
        }
    }
}

/* ---- numbers quoted in prose and tables, in every file of docs/ ---------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = malloc((size_t)n + 1);
    if (t != NULL && fread(t, 1, (size_t)n, f) != (size_t)n) {
        free(t);
        t = NULL;
    }
    if (t != NULL) {
        t[n] = '\0';
    }
    fclose(f);
    return t;
}

static const char *param_default(const char *name, size_t n)
{
    const char *pn, *def;
    for (size_t k = 0; siptls_config_param(k, &pn, &def); k++) {
        if (strlen(pn) == n && strncmp(pn, name, n) == 0) {
            return def;
        }
    }
    return NULL;
}

/* Does the config accept `value` for `name`? */
static int accepts(const char *name, unsigned long value)
{
    siptls_config c;
    siptls_config_init(&c);
    char v[32];
    snprintf(v, sizeof(v), "%lu", value);
    int st = siptls_config_set(&c, name, v, NULL);
    siptls_config_cleanup(&c);
    return st == 0;
}

/* "a..b" at p: the documented range of `name` is the code's. */
static void check_range(const char *file, int line, const char *name, const char *p)
{
    char *end;
    unsigned long lo = strtoul(p, &end, 10);
    if (end == p || strncmp(end, "..", 2) != 0) {
        return;
    }
    const char *q = end + 2;
    unsigned long hi = strtoul(q, &end, 10);
    if (end == q) {
        return;
    }
    if (!accepts(name, lo) || !accepts(name, hi) || (lo > 0 && accepts(name, lo - 1)) ||
        accepts(name, hi + 1)) {
        fail_msg("%s:%d: %s documented as %lu..%lu, the code accepts another range", file, line,
                 name, lo, hi);
    }
}

/* The number at p (a default as written in prose, "120 s", "10000 ms") is
 * the code's default for `name`. */
static void check_default(const char *file, int line, const char *name, const char *p)
{
    const char *def = param_default(name, strlen(name));
    while (*p == ' ') {
        p++;
    }
    if (def == NULL || *p < '0' || *p > '9') {
        return;
    }
    char *end;
    unsigned long got = strtoul(p, &end, 10);
    if (strncmp(end, "..", 2) == 0) {
        return; /* a range, not a default */
    }
    if (def[0] < '0' || def[0] > '9' || strtoul(def, NULL, 10) != got) {
        fail_msg("%s:%d: %s documented with default %lu, the code's is '%s'", file, line, name, got,
                 def);
    }
}

/* Every "`name` (default N" and every table row "| `name` | N ... | a..b |"
 * in docs/: N is the code's default and a..b its range; and in the admin
 * guide, every "Range a..b" under a parameter's heading. */
static void test_numbers_in_prose(void **state)
{
    (void)state;
    const char *dir = SIPTLS_TEST_DIR "/../docs";
    DIR *d = opendir(dir);
    assert_non_null(d);
    unsigned checked = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 4 || strcmp(de->d_name + nl - 3, ".md") != 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *text = slurp(path);
        assert_non_null(text);
        int line = 1;
        char section[128] = "";
        static char sect_text[16384];
        sect_text[0] = '\0';
        for (char *l = text; l != NULL && *l != '\0'; line++) {
            char *nl2 = strchr(l, '\n');
            if (nl2 != NULL) {
                *nl2 = '\0';
            }
            if (strncmp(l, "#", 1) == 0) {
                /* the section ends: its ranges, joined across lines */
                for (const char *r = strstr(sect_text, "Range "); section[0] && r != NULL;
                     r = strstr(r + 6, "Range ")) {
                    check_range(path, line, section, r + 6);
                    checked++;
                }
                sect_text[0] = '\0';
            } else if (section[0] && strlen(sect_text) + strlen(l) + 2 < sizeof(sect_text)) {
                strcat(sect_text, l);
                strcat(sect_text, " ");
            }
            if (strncmp(l, "#### ", 5) == 0) {
                size_t n = 0;
                while (is_ident(l[5 + n]) && n + 1 < sizeof(section)) {
                    n++;
                }
                memcpy(section, l + 5, n);
                section[n] = '\0';
                if (param_default(section, n) == NULL) {
                    section[0] = '\0';
                }
            } else if (strncmp(l, "#", 1) == 0) {
                section[0] = '\0';
            }
            /* table rows */
            if (strncmp(l, "| `", 3) == 0) {
                const char *nm = l + 3;
                size_t n = 0;
                while (is_ident(nm[n])) {
                    n++;
                }
                if (nm[n] == '`' && param_default(nm, n) != NULL) {
                    char name[128];
                    snprintf(name, sizeof(name), "%.*s", (int)n, nm);
                    const char *cell = strchr(nm + n + 1, '|');
                    if (cell != NULL) {
                        check_default(path, line, name, cell + 1);
                        checked++;
                        const char *cell3 = strchr(cell + 1, '|');
                        if (cell3 != NULL) {
                            const char *p = cell3 + 1;
                            while (*p == ' ') {
                                p++;
                            }
                            check_range(path, line, name, p);
                        }
                    }
                }
            }
            /* "`name` (default N" anywhere */
            for (const char *p = strchr(l, '`'); p != NULL; p = strchr(p + 1, '`')) {
                size_t n = 0;
                while (is_ident(p[1 + n])) {
                    n++;
                }
                if (n > 0 && p[1 + n] == '`' && strncmp(p + 2 + n, " (default ", 10) == 0 &&
                    param_default(p + 1, n) != NULL) {
                    char name[128];
                    snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
                    check_default(path, line, name, p + 2 + n + 10);
                    checked++;
                }
            }
            l = nl2 ? nl2 + 1 : NULL;
        }
        free(text);
    }
    closedir(d);
    /* the tables of dtls.md and the admin guide, the ranges of the guide
     * (a floor, so that a parser that stops matching cannot pass) */
    assert_true(checked >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_param_documented),
        cmocka_unit_test(test_no_stale_headings),
        cmocka_unit_test(test_reload_list),
        cmocka_unit_test(test_numbers_in_prose),
    };
    return cmocka_run_group_tests(tests, load_guide, free_guide);
}
