/* Benchmark: the datagram splitter (not run by ctest).
 *
 * Cuts messages from tests/vectors/split into DTLS records the way the
 * DTLS transport does (room 1163: dtls_mtu 1200 with AES-GCM; wolfSSL's
 * record limit 1350), with src/sipmsg/splitter_dgram.c and with the
 * splitter it replaced (tests/support/split_oracle.h), and prints the
 * median ns per message of each. Only the first record of a message scans
 * its header block; the others are arithmetic.
 *
 * Usage: bench_split [iterations (default 200000)] [runs (default 9)] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../support/split_oracle.h"
#include "sipmsg/splitter_dgram.h"

#define ROOM 1163
#define MAX 1350

static const char *const NAMES[] = {"ok_invite_sdp", "ok_invite_big_sdp", "ok_compact_l",
                                    "ok_lf_only", "ok_hl_room"};
#define N_NAMES (sizeof(NAMES) / sizeof(NAMES[0]))

static uint8_t *read_file(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/vectors/split/%s.sip", SIPTLS_TEST_DIR, name);
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

static volatile size_t sink;

/* Seconds to cut the message `iters` times. */
static double run(const uint8_t *m, size_t len, long iters, int old)
{
    size_t acc = 0;
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        size_t off = 0;
        while (off < len) {
            size_t r = old ? ref_split_next(m, len, off, ROOM, MAX)
                           : siptls__dgram_split_next(m, len, off, ROOM, MAX);
            if (r == 0) {
                break;
            }
            acc += r;
            off += r;
        }
    }
    double t = now_s() - t0;
    sink = acc;
    return t;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    if (iters <= 0 || runs <= 0 || runs > 99) {
        fprintf(stderr, "usage: bench_split [iterations] [runs]\n");
        return 2;
    }
    printf("%-20s %7s %8s %12s %12s\n", "message", "bytes", "records", "new ns/msg", "old ns/msg");
    for (size_t k = 0; k < N_NAMES; k++) {
        size_t len = 0;
        uint8_t *m = read_file(NAMES[k], &len);
        size_t records = 0;
        for (size_t off = 0; off < len; records++) {
            size_t r = siptls__dgram_split_next(m, len, off, ROOM, MAX);
            if (r == 0) {
                break;
            }
            off += r;
        }
        double t[2][99];
        for (int r = 0; r < runs; r++) {
            t[0][r] = run(m, len, iters, 0);
            t[1][r] = run(m, len, iters, 1);
        }
        qsort(t[0], (size_t)runs, sizeof(double), cmp_double);
        qsort(t[1], (size_t)runs, sizeof(double), cmp_double);
        printf("%-20s %7zu %8zu %12.1f %12.1f\n", NAMES[k], len, records,
               t[0][runs / 2] * 1e9 / (double)iters, t[1][runs / 2] * 1e9 / (double)iters);
        free(m);
    }
    return 0;
}
