/* Docs are part of done: every parameter of the config table has a heading
 * in docs/admin-guide.md, its default ("Default value is X."), and an
 * example line; and every parameter heading in the guide is a real
 * parameter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_param_documented),
        cmocka_unit_test(test_no_stale_headings),
    };
    return cmocka_run_group_tests(tests, load_guide, free_guide);
}
