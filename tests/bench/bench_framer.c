/* Benchmark: stream framer throughput (not run by ctest).
 *
 * A pipelined stream of realistic messages (INVITE with SDP ~930 B, OPTIONS
 * ~375 B, 200 OK ~370 B, taken from tests/vectors/stream) is framed:
 *   - fed in 16 KiB reads with feed(), draining next() after each read and
 *     calling end_chunk() like a transport;
 *   - the same through reserve()/commit() (decrypt-in-place path);
 *   - fed one byte at a time (chunk limit disabled).
 * Each mode runs several times; medians are printed.
 *
 * Usage: bench_framer [total_MiB (default 64)] [runs (default 9)] [feed|reserve|byte|all] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "siptls/sipmsg.h"

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    uint8_t *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, fp);
    fclose(fp);
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum mode { MODE_FEED_16K, MODE_RESERVE_16K, MODE_BYTEWISE };

static volatile size_t sink;

/* Returns seconds; *msgs set. */
static double run(enum mode mode, const uint8_t *data, size_t len, size_t *msgs)
{
    siptls_framer_limits lim;
    siptls_framer_limits_init(&lim);
    if (mode == MODE_BYTEWISE) {
        lim.max_chunks = 0;
    }
    siptls_stream_framer *f = NULL;
    if (siptls_stream_framer_new(&f, &lim) != SIPTLS_OK) {
        exit(1);
    }
    size_t count = 0, bytes = 0;
    siptls_frame_event ev;
    double t0 = now_s();
    if (mode == MODE_BYTEWISE) {
        for (size_t i = 0; i < len; i++) {
            if (siptls_stream_framer_feed(f, data + i, 1) != SIPTLS_OK) {
                exit(2);
            }
            while (siptls_stream_framer_next(f, &ev) == SIPTLS_OK) {
                count++;
                bytes += ev.len;
            }
        }
    } else {
        uint64_t tick = 0;
        for (size_t off = 0; off < len; off += 16384) {
            size_t n = len - off < 16384 ? len - off : 16384;
            if (mode == MODE_FEED_16K) {
                if (siptls_stream_framer_feed(f, data + off, n) != SIPTLS_OK) {
                    exit(2);
                }
            } else {
                uint8_t *p;
                size_t avail;
                if (siptls_stream_framer_reserve(f, n, &p, &avail) != SIPTLS_OK || avail < n) {
                    exit(2);
                }
                memcpy(p, data + off, n); /* stands for wolfSSL_read() */
                siptls_stream_framer_commit(f, n);
            }
            int rc;
            while ((rc = siptls_stream_framer_next(f, &ev)) == SIPTLS_OK) {
                count++;
                bytes += ev.len;
            }
            if (rc != SIPTLS_AGAIN) {
                exit(3);
            }
            siptls_stream_framer_end_chunk(f, ++tick);
        }
    }
    double t = now_s() - t0;
    sink = bytes;
    siptls_stream_framer_free(f);
    *msgs = count;
    return t;
}

int main(int argc, char **argv)
{
    size_t total_mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    const char *only = argc > 3 ? argv[3] : "all";
    if (total_mib == 0 || runs <= 0 || runs > 101) {
        fprintf(stderr, "usage: %s [total_MiB] [runs] [feed|reserve|byte|all]\n", argv[0]);
        return 1;
    }
    const char *names[3] = {"ok_invite_sdp.sip", "ok_options.sip", "ok_200ok.sip"};
    uint8_t *msg[3];
    size_t mlen[3];
    for (int i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/vectors/stream/%s", SIPTLS_TEST_DIR, names[i]);
        msg[i] = read_file(path, &mlen[i]);
    }
    size_t cap = total_mib << 20;
    uint8_t *data = malloc(cap + 4096);
    size_t len = 0, expect = 0;
    while (len + mlen[expect % 3] <= cap) {
        memcpy(data + len, msg[expect % 3], mlen[expect % 3]);
        len += mlen[expect % 3];
        expect++;
    }
    printf("stream: %zu bytes, %zu messages (INVITE+SDP %zu B, OPTIONS %zu B, 200 OK %zu B), %d "
           "runs\n",
           len, expect, mlen[0], mlen[1], mlen[2], runs);

    const char *label[3] = {"feed() 16 KiB reads", "reserve()/commit() 16 KiB",
                            "feed() 1 byte at a time"};
    const char *key[3] = {"feed", "reserve", "byte"};
    for (int m = 0; m < 3; m++) {
        if (strcmp(only, "all") != 0 && strcmp(only, key[m]) != 0) {
            continue;
        }
        /* Byte by byte is slower: frame a quarter of the stream. */
        size_t use = len;
        size_t use_msgs = expect;
        if (m == MODE_BYTEWISE) {
            use = 0;
            use_msgs = 0;
            while (use + mlen[use_msgs % 3] <= len / 4) {
                use += mlen[use_msgs % 3];
                use_msgs++;
            }
        }
        double *t = calloc((size_t)runs, sizeof(double));
        size_t got = 0;
        (void)run((enum mode)m, data, use, &got); /* warm-up */
        for (int r = 0; r < runs; r++) {
            t[r] = run((enum mode)m, data, use, &got);
            if (got != use_msgs) {
                fprintf(stderr, "mode %d: %zu messages, want %zu\n", m, got, use_msgs);
                return 1;
            }
        }
        qsort(t, (size_t)runs, sizeof(double), cmp_double);
        double med = t[runs / 2];
        printf("%-28s median %8.1f MB/s  %6.2f M msg/s  (min %.1f, max %.1f MB/s)\n", label[m],
               (double)use / med / 1e6, (double)use_msgs / med / 1e6,
               (double)use / t[runs - 1] / 1e6, (double)use / t[0] / 1e6);
        free(t);
    }
    for (int i = 0; i < 3; i++) {
        free(msg[i]);
    }
    free(data);
    return 0;
}
