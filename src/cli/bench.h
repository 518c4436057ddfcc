/* siptls bench — what the files of the load generator share.
 *
 *   bench.c          the command: options, configuration, engine, the run
 *                    in named steps (siptls_cli_bench)
 *   bench_load.c     the run itself: phases, connections, requests, engine
 *                    callbacks, timers and signals, error kinds
 *   bench_report.c   the summary, as text or JSON
 *   bench_hist.c     the latency histogram
 *   bench_flowmap.c  the flow id -> connection slot map
 *   bench_proc.c     CPU and memory figures from /proc and getrusage
 *
 * Functions that cross files are named bench_<part>_<verb> (the CLI's
 * counterpart of the library's siptls__ prefix); everything else is static
 * in its file. One engine, one libev loop, one thread. */
#ifndef SIPTLS_CLI_BENCH_H
#define SIPTLS_CLI_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cli.h"

/* A run given only --count stops after this long anyway. */
#define COUNT_ONLY_MAX_S 300.0
/* How long the msgs mode waits for its connections before it starts
 * sending with those that are up. */
#define CONNECT_PHASE_MAX_S 20.0
#define MAX_SERVER_PIDS 64

enum bench_mode { MODE_MSGS, MODE_HANDSHAKES, MODE_RESUME, MODE_IDLE };
extern const char *const bench_mode_names[]; /* bench.c */

enum bench_phase { PH_CONNECT, PH_WARMUP, PH_RUN, PH_HOLD, PH_DRAIN, PH_DONE };

enum slot_state { SLOT_FREE, SLOT_OPENING, SLOT_UP, SLOT_CLOSING };

/* Error kinds of the summary. The engine's reasons are also counted by
 * status name. */
enum err_kind {
    K_CONNECT,
    K_HANDSHAKE,
    K_VERIFY,
    K_TIMEOUT,
    K_NON2XX,
    K_CLOSED,
    K_SEND,
    K_UNSENT,
    K_COUNT
};
#define N_STATUS 128

/* ------------------------------------------------------------------------ */
/* latency histogram                                                        */
/* ------------------------------------------------------------------------ */

/* HDR-style log-linear histogram of nanoseconds: exact below 128 ns, then
 * 128 sub-buckets per power of two (relative error < 0.4 %), 58 KiB,
 * whatever the number of samples. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * (64 - HIST_SUB_BITS + 1))

typedef struct hist {
    uint64_t *b;
    uint64_t n, max_ns;
    double sum_ns;
} hist;

/* ------------------------------------------------------------------------ */
/* flow id -> slot map                                                      */
/* ------------------------------------------------------------------------ */

/* Open addressing, linear probing, backward-shift deletion; key 0 is empty
 * (flow ids are never 0). At most one entry per slot, capacity >= 2x. */
typedef struct flowmap {
    uint64_t *keys;
    uint32_t *vals;
    uint32_t mask;
} flowmap;

/* ------------------------------------------------------------------------ */
/* state                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct bench_req {
    double t; /* sent (open loop: due) */
    uint32_t cseq;
    uint8_t done;     /* answered out of order: leaves when it reaches the head */
    uint8_t measured; /* issued after the warm-up */
} bench_req;

typedef struct bench_slot {
    siptls_flow_id flow;
    double t_open;
    uint32_t cseq;    /* last CSeq sent on this connection */
    uint32_t head, n; /* ring of requests in flight */
    uint8_t state;
    uint8_t measured; /* opened after the warm-up */
} bench_slot;

typedef struct bench {
    /* options */
    int mode;
    const char *uri;
    int dtls;
    char host[SIPTLS_URI_HOST_MAX + 2];
    unsigned conns, window, open_parallel;
    double duration, warmup, rate, timeout;
    uint64_t count;
    int json, progress;
    pid_t server_pids[MAX_SERVER_PIDS];
    unsigned n_server_pids;
    pid_t rss_pid;
    char *tmpl; /* --message file contents (CRLF), or NULL: OPTIONS */
    size_t tmpl_len;

    /* engine */
    struct ev_loop *loop;
    siptls_engine *engine;

    /* connections */
    bench_slot *slots;
    bench_req *reqs; /* conns x ring */
    uint32_t ring;
    uint32_t *free_stack;
    uint32_t n_free;
    flowmap map;
    unsigned opening, up, closing;
    uint64_t opened;   /* idle: connections attempted */
    uint64_t inflight; /* requests in flight */
    int ever_up;
    int retry_wait;  /* an open failed: reopen at the next tick, not in a tight loop */
    uint32_t cursor; /* open loop: next slot to look at */

    /* time */
    int phase;
    double t_start, t_traffic, t_warm_end, t_measure, t_drain_deadline, t_hold_end, t_end;
    double t_last_done, t_next_progress;
    uint64_t progress_ops;
    double progress_t;
    int interrupted;
    const char *stop_reason;

    /* open loop */
    double t_rate0;
    uint64_t sched, sched_sent;

    /* results (measured part) */
    uint64_t issued, ops, ok2xx, non2xx;
    uint64_t codes[700];
    uint64_t hs_done, resumed;
    hist lat, lat_hs;
    uint64_t err_kind[K_COUNT];
    uint64_t err_status[N_STATUS];
    char tls_version[16];
    char cipher[64];
    uint64_t seq;
    uint32_t run_id;
    double srv_cpu0, srv_cpu1;
    int srv_cpu_ok;
    double own_cpu0, own_cpu1;
    long srv_rss0, srv_rss1, own_rss0, own_rss1;
} bench;

/* ------------------------------------------------------------------------ */
/* across the files                                                         */
/* ------------------------------------------------------------------------ */

/* bench_hist.c: add a sample (seconds; negative counts as 0); empty it;
 * the q-quantile (0..1) in milliseconds, 0 when empty. */
void bench_hist_add(hist *h, double seconds);
void bench_hist_clear(hist *h);
double bench_hist_ms(const hist *h, double q);

/* bench_flowmap.c: room for `entries` (0, or -1 out of memory; free it
 * either way); put / find (1 found, 0 not) / delete by flow id. */
int bench_flowmap_init(flowmap *m, uint32_t entries);
void bench_flowmap_free(flowmap *m);
void bench_flowmap_put(flowmap *m, uint64_t k, uint32_t v);
int bench_flowmap_find(const flowmap *m, uint64_t k, uint32_t *v);
void bench_flowmap_del(flowmap *m, uint64_t k);

/* bench_proc.c: CPU seconds of all --server-pid processes (-1 when one is
 * unreadable); VmRSS of `pid` (0: this process) in KiB (-1 unreadable);
 * this process's CPU seconds. */
double bench_proc_servers_cpu_s(const bench *b);
long bench_proc_rss_kib(pid_t pid);
double bench_proc_own_cpu_s(void);

/* bench_load.c: the engine callbacks (user: the bench); the run: timers
 * and signals on b->loop, the first connections or requests at `now`, the
 * loop until the run is done; the errors counted. */
void bench_on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                   void *user);
void bench_on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user);
void bench_run(bench *b, double now);
uint64_t bench_errors_total(const bench *b);

/* bench_report.c: the summary of a finished run. */
void bench_report_text(const bench *b, FILE *out);
void bench_report_json(const bench *b, FILE *out);

#endif
