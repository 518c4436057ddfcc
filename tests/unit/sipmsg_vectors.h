/* Helpers shared by the sipmsg unit tests (included, not compiled alone;
 * static inline, so a test may use only some of them):
 * loading framing vectors from tests/vectors and comparing event lists.
 *
 * A vector is NAME.sip (raw bytes) with NAME.expect beside it, one event a
 * line: "MESSAGE <len> <body_len>", "PING [xN]", "PONG", "ERROR <NAME>",
 * "AGAIN" (datagram: nothing delivered), "PENDING" (stream: a message is
 * still in progress at the end). See tests/vectors/make_vectors.py. */
#ifndef SIPTLS_TEST_SIPMSG_VECTORS_H
#define SIPTLS_TEST_SIPMSG_VECTORS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siptls/sipmsg.h"

/* One expected or observed event. kind: 'M' message, 'I' ping, 'O' pong,
 * 'E' error, 'A' again, 'P' pending. */
typedef struct tv_event {
    char kind;
    size_t len;
    size_t body_len;
    int status;
} tv_event;

typedef struct tv_events {
    tv_event *v;
    size_t n;
    size_t cap;
} tv_events;

static inline void tv_push(tv_events *e, tv_event x)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->v = realloc(e->v, e->cap * sizeof(*e->v));
        if (e->v == NULL) {
            abort();
        }
    }
    e->v[e->n++] = x;
}

static inline void tv_free(tv_events *e)
{
    free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}

static inline tv_event tv_from_frame(const siptls_frame_event *ev)
{
    tv_event x = {0};
    switch (ev->kind) {
    case SIPTLS_FRAME_MESSAGE:
        x.kind = 'M';
        x.len = ev->len;
        x.body_len = ev->body_len;
        break;
    case SIPTLS_FRAME_PING:
        x.kind = 'I';
        break;
    case SIPTLS_FRAME_PONG:
        x.kind = 'O';
        break;
    default:
        x.kind = '?';
        break;
    }
    return x;
}

static inline tv_event tv_error(int status)
{
    tv_event x = {0};
    x.kind = 'E';
    x.status = status;
    return x;
}

static inline int tv_status_by_name(const char *name)
{
    for (int s = 0; s >= -100; s--) {
        if (strcmp(siptls_status_name(s), name) == 0) {
            return s;
        }
    }
    return 1; /* not a status: never matches */
}

/* Read a whole file; returns NULL when absent. *len set. */
static inline uint8_t *tv_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        return NULL;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        if (r == 0) {
            break;
        }
        n += r;
    }
    fclose(fp);
    *len = n;
    return buf;
}

/* Parse an .expect file. Returns 0 on success. */
static inline int tv_load_expect(const char *path, tv_events *out)
{
    size_t len = 0;
    uint8_t *raw = tv_read_file(path, &len);
    if (raw == NULL) {
        return -1;
    }
    char *text = malloc(len + 1);
    memcpy(text, raw, len);
    text[len] = '\0';
    free(raw);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char word[64] = {0};
        char arg[64] = {0};
        unsigned long a = 0, b = 0;
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        if (sscanf(line, "%63s", word) != 1) {
            continue;
        }
        tv_event x = {0};
        unsigned long repeat = 1;
        if (strcmp(word, "MESSAGE") == 0 && sscanf(line, "%*s %lu %lu", &a, &b) == 2) {
            x.kind = 'M';
            x.len = a;
            x.body_len = b;
        } else if (strcmp(word, "PING") == 0) {
            x.kind = 'I';
            if (sscanf(line, "%*s x%lu", &a) == 1) {
                repeat = a;
            }
        } else if (strcmp(word, "PONG") == 0) {
            x.kind = 'O';
        } else if (strcmp(word, "AGAIN") == 0) {
            x.kind = 'A';
        } else if (strcmp(word, "PENDING") == 0) {
            x.kind = 'P';
        } else if (strcmp(word, "ERROR") == 0 && sscanf(line, "%*s %63s", arg) == 1) {
            x.kind = 'E';
            x.status = tv_status_by_name(arg);
        } else {
            free(text);
            return -1;
        }
        for (unsigned long i = 0; i < repeat; i++) {
            tv_push(out, x);
        }
    }
    free(text);
    return 0;
}

static inline int tv_events_equal(const tv_events *a, const tv_events *b, char *why, size_t why_len)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const tv_event *x = &a->v[i], *y = &b->v[i];
        if (x->kind != y->kind || x->len != y->len || x->body_len != y->body_len ||
            x->status != y->status) {
            snprintf(why, why_len,
                     "event %zu: want %c len=%zu body=%zu st=%d, got %c len=%zu body=%zu st=%d", i,
                     x->kind, x->len, x->body_len, x->status, y->kind, y->len, y->body_len,
                     y->status);
            return 0;
        }
    }
    if (a->n != b->n) {
        snprintf(why, why_len, "want %zu events, got %zu", a->n, b->n);
        return 0;
    }
    return 1;
}

/* Names of the .sip files in dir, sorted. Caller frees each and the array. */
static inline char **tv_list(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0;
    *count = 0;
    if (d == NULL) {
        return NULL;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".sip") == 0) {
            names = realloc(names, (n + 1) * sizeof(*names));
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    }
    *count = n;
    return names;
}

#endif
