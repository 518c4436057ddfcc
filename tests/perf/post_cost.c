/* post_cost — what posting into an engine from another thread costs
 * (include/siptls/threads.h): siptls_engine_post() of an empty function and
 * siptls_send_async() of a 300-byte message, timed on both sides. Run by
 * hand, not by CI, against a release build:
 *
 *   cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSIPTLS_TESTS=OFF
 *   cmake --build build/release -j2 --target siptls_static
 *   cc -O2 -Iinclude -o /tmp/post_cost tests/perf/post_cost.c build/release/libsiptls.a \
 *      -lev -lpthread -lm
 *   /tmp/post_cost [posts]                   # default 1000000
 *
 * One engine (no listener, no flow) runs its loop on a thread of its own;
 * one posting thread makes `posts` calls as fast as it can (refused ones,
 * mailbox full, are retried after a yield and counted). The posting side
 * is the calling thread's CPU time per accepted call; the loop side is the
 * loop thread's CPU time per item run, measured from inside the loop (the
 * first and last item). The async sends go to a flow id that does not
 * exist: what is timed is the copy, the mailbox and the lookup, not TLS
 * (a real send then costs what siptls_send() costs on the loop). */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "siptls/siptls.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct run {
    siptls_engine *e;
    unsigned long n;
    /* the loop thread's (read after it is joined) */
    unsigned long seen;
    double loop_cpu0, loop_cpu1;
} run;

static run R;

static void item_seen(void)
{
    if (R.seen == 0) {
        R.loop_cpu0 = cpu_s();
    }
    R.seen++;
    if (R.seen == R.n) {
        R.loop_cpu1 = cpu_s();
    }
}

static void noop_fn(siptls_engine *e, void *arg, int status)
{
    (void)e;
    (void)arg;
    (void)status;
    item_seen();
}

static void send_done(siptls_engine *e, siptls_flow_id flow, int status, void *arg)
{
    (void)e;
    (void)flow;
    (void)status;
    (void)arg;
    item_seen();
}

static void stop_fn(siptls_engine *e, void *arg, int status)
{
    (void)arg;
    if (status == SIPTLS_OK) {
        ev_break(siptls_engine_loop(e), EVBREAK_ALL);
    }
}

static void keep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void *loop_main(void *arg)
{
    ev_run(arg, 0);
    return NULL;
}

/* One measurement: `sends` 0 = posts of noop_fn, 1 = async sends. */
static void measure(unsigned long n, int sends)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    siptls_config cfg;
    siptls_config_init(&cfg);
    cfg.log_level = -1;
    siptls_callbacks cb = {0};
    memset(&R, 0, sizeof(R));
    R.n = n;
    if (siptls_engine_new(&R.e, loop, &cfg, &cb, NULL) != SIPTLS_OK) {
        fprintf(stderr, "engine_new failed\n");
        exit(1);
    }
    ev_timer keep; /* the mailbox's watcher does not keep ev_run() going */
    ev_timer_init(&keep, keep_cb, 3600., 3600.);
    ev_timer_start(loop, &keep);
    pthread_t t;
    pthread_create(&t, NULL, loop_main, loop);

    uint8_t msg[300];
    memset(msg, 'x', sizeof(msg));
    unsigned long refused = 0;
    double c0 = cpu_s(), w0 = wall_s();
    for (unsigned long i = 0; i < n;) {
        int st = sends ? siptls_send_async(R.e, 4242424242u, msg, sizeof(msg), send_done, NULL)
                       : siptls_engine_post(R.e, noop_fn, NULL);
        if (st == SIPTLS_OK) {
            i++;
        } else if (st == SIPTLS_ERR_QUEUE_FULL) {
            refused++;
            sched_yield();
        } else {
            fprintf(stderr, "post failed: %s\n", siptls_strerror(st));
            exit(1);
        }
    }
    double c1 = cpu_s(), w1 = wall_s();
    siptls_engine_post(R.e, stop_fn, NULL);
    pthread_join(t, NULL);
    siptls_post_stats ps;
    siptls_engine_post_stats(R.e, &ps);
    printf("%-34s %9.0f ns/call poster CPU  %9.0f ns/item loop CPU  %6.3f wakeups/post  "
           "%.2f M calls/s  (refused %lu)\n",
           sends ? "siptls_send_async, 300 B" : "siptls_engine_post, empty fn",
           (c1 - c0) / (double)n * 1e9, (R.loop_cpu1 - R.loop_cpu0) / (double)(n - 1) * 1e9,
           (double)ps.wakeups / (double)ps.posted, (double)n / (w1 - w0) / 1e6, refused);
    ev_timer_stop(loop, &keep);
    siptls_engine_free(R.e);
    siptls_config_cleanup(&cfg);
    ev_loop_destroy(loop);
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    if (n < 2) {
        n = 2;
    }
    measure(n, 0);
    measure(n, 1);
    return 0;
}
