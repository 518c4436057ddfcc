/* siptls bench — a load generator for SIP over TLS and DTLS, built on the
 * siptls engine as a client (one engine, one libev loop, one thread).
 *
 * Modes:
 *   msgs        C connections, W requests in flight on each (closed loop),
 *               or --rate R requests per second spread evenly (open loop)
 *   handshakes  a new connection per operation: connect, one OPTIONS, wait
 *               for the final response, close; every handshake is full
 *   resume      the same with client session resumption on
 *   idle        open C connections, hold them, report (server) memory
 *
 * Every run is bounded in time and in count, SIGINT/SIGTERM end it early
 * with the summary so far. Exit status: 0 no errors, 1 errors, 2 usage. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"

/* A run given only --count stops after this long anyway. */
#define COUNT_ONLY_MAX_S 300.0
/* How long the msgs mode waits for its connections before it starts
 * sending with those that are up. */
#define CONNECT_PHASE_MAX_S 20.0
/* Handshakes in progress at once while the msgs mode opens its connections
 * (more would only make them time out on a busy server). */
#define MSGS_OPEN_PARALLEL 100
/* Default parallel handshakes while the idle mode opens its connections. */
#define IDLE_OPEN_PARALLEL 64
/* Default per-connection in-flight cap in open-loop (--rate) mode. */
#define RATE_WINDOW 32
/* Engine connect (5 s) + handshake (10 s) timeouts: the longest an
 * operation of a handshake mode can take before the engine gives up. */
#define OPEN_MAX_S 15.0
#define MAX_SERVER_PIDS 64
#define TICK_S 0.1

enum bench_mode { MODE_MSGS, MODE_HANDSHAKES, MODE_RESUME, MODE_IDLE };
static const char *const mode_names[] = {"msgs", "handshakes", "resume", "idle"};

enum bench_phase { PH_CONNECT, PH_WARMUP, PH_RUN, PH_HOLD, PH_DRAIN, PH_DONE };
static const char *const phase_names[] = {"connect", "warm-up", "run", "hold", "drain", "done"};

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
static const char *const kind_names[K_COUNT] = {"connect", "handshake", "verify", "timeout",
                                                "non-2xx", "closed",    "send",   "unsent"};
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

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB) {
        return (unsigned)v;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

static double hist_value(unsigned idx)
{
    if (idx < HIST_SUB) {
        return (double)idx;
    }
    unsigned shift = idx / HIST_SUB - 1;
    double low = (double)((uint64_t)(HIST_SUB + idx % HIST_SUB) << shift);
    return low + (double)((uint64_t)1 << shift) / 2.0;
}

static void hist_add(hist *h, double seconds)
{
    if (seconds < 0) {
        seconds = 0;
    }
    uint64_t ns = (uint64_t)(seconds * 1e9);
    h->b[hist_index(ns)]++;
    h->n++;
    h->sum_ns += (double)ns;
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

static void hist_clear(hist *h)
{
    memset(h->b, 0, HIST_BUCKETS * sizeof(*h->b));
    h->n = h->max_ns = 0;
    h->sum_ns = 0;
}

/* The q-quantile (0..1) in milliseconds; 0 when empty. */
static double hist_ms(const hist *h, double q)
{
    if (h->n == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return (v > (double)h->max_ns ? (double)h->max_ns : v) / 1e6;
        }
    }
    return (double)h->max_ns / 1e6;
}

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

static uint32_t fm_hash(uint64_t k, uint32_t mask)
{
    return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static int fm_init(flowmap *m, uint32_t entries)
{
    uint32_t cap = 16;
    while (cap < 2 * entries) {
        cap <<= 1;
    }
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = calloc(cap, sizeof(*m->vals));
    m->mask = cap - 1;
    return m->keys != NULL && m->vals != NULL ? 0 : -1;
}

static void fm_free(flowmap *m)
{
    free(m->keys);
    free(m->vals);
}

static void fm_put(flowmap *m, uint64_t k, uint32_t v)
{
    uint32_t i = fm_hash(k, m->mask);
    while (m->keys[i] != 0 && m->keys[i] != k) {
        i = (i + 1) & m->mask;
    }
    m->keys[i] = k;
    m->vals[i] = v;
}

static int fm_find(const flowmap *m, uint64_t k, uint32_t *v)
{
    uint32_t i = fm_hash(k, m->mask);
    while (m->keys[i] != 0) {
        if (m->keys[i] == k) {
            *v = m->vals[i];
            return 1;
        }
        i = (i + 1) & m->mask;
    }
    return 0;
}

static void fm_del(flowmap *m, uint64_t k)
{
    uint32_t i = fm_hash(k, m->mask);
    while (m->keys[i] != k) {
        if (m->keys[i] == 0) {
            return;
        }
        i = (i + 1) & m->mask;
    }
    m->keys[i] = 0;
    /* Move later entries of the probe run back so lookups never stop at
     * the hole. */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (m->keys[j] == 0) {
            return;
        }
        uint32_t h = fm_hash(m->keys[j], m->mask);
        int stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->keys[j] = 0;
            i = j;
        }
    }
}

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
/* /proc readers                                                            */
/* ------------------------------------------------------------------------ */

/* utime + stime of `pid` (all its threads) in seconds, -1 when unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields restart
     * after the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double servers_cpu_s(const bench *b)
{
    double sum = 0;
    for (unsigned i = 0; i < b->n_server_pids; i++) {
        double v = proc_cpu_s(b->server_pids[i]);
        if (v < 0) {
            return -1;
        }
        sum += v;
    }
    return sum;
}

/* VmRSS of `pid` (0: this process) in KiB, -1 when unreadable. */
static long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    if (pid == 0) {
        snprintf(path, sizeof(path), "/proc/self/status");
    } else {
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static double own_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* errors                                                                   */
/* ------------------------------------------------------------------------ */

static int kind_of_status(int st, int was_up)
{
    switch (st) {
    case SIPTLS_ERR_CONNECT:
    case SIPTLS_ERR_CONNECT_TIMEOUT:
    case SIPTLS_ERR_RESOLVE:
    case SIPTLS_ERR_LIMIT:
        return K_CONNECT;
    case SIPTLS_ERR_HANDSHAKE:
    case SIPTLS_ERR_HANDSHAKE_TIMEOUT:
    case SIPTLS_ERR_TLS:
    case SIPTLS_ERR_RATE_LIMIT:
        return K_HANDSHAKE;
    case SIPTLS_ERR_VERIFY:
    case SIPTLS_ERR_NAME_MISMATCH:
    case SIPTLS_ERR_NO_PEER_CERT:
        return K_VERIFY;
    default:
        /* A connection that dies before it is up died in its handshake,
         * whatever the socket said. */
        return was_up ? K_CLOSED : K_HANDSHAKE;
    }
}

static void add_error(bench *b, int kind, int status)
{
    b->err_kind[kind]++;
    if (status < 0 && -status < N_STATUS) {
        b->err_status[-status]++;
    }
}

static uint64_t errors_total(const bench *b)
{
    uint64_t n = 0;
    for (int k = 0; k < K_COUNT; k++) {
        n += b->err_kind[k];
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* phases                                                                   */
/* ------------------------------------------------------------------------ */

static void pump(bench *b, double now);
static void fill_window(bench *b, uint32_t i);

static void finish(bench *b, const char *why)
{
    if (b->phase == PH_DONE) {
        return;
    }
    b->phase = PH_DONE;
    b->stop_reason = why;
    b->t_end = cli_now();
    if (b->n_server_pids > 0) {
        b->srv_cpu1 = servers_cpu_s(b);
        b->srv_cpu_ok = b->srv_cpu0 >= 0 && b->srv_cpu1 >= 0;
    }
    if (b->rss_pid > 0) {
        b->srv_rss1 = proc_rss_kib(b->rss_pid);
    }
    b->own_rss1 = proc_rss_kib(0);
    b->own_cpu1 = own_cpu_s();
    ev_break(b->loop, EVBREAK_ALL);
}

static void start_measure(bench *b, double now)
{
    b->phase = PH_RUN;
    b->t_measure = now;
    b->t_last_done = now;
    b->issued = b->ops = b->ok2xx = b->non2xx = b->hs_done = b->resumed = 0;
    memset(b->codes, 0, sizeof(b->codes));
    hist_clear(&b->lat);
    hist_clear(&b->lat_hs);
    b->progress_ops = 0;
    b->progress_t = now;
    if (b->n_server_pids > 0) {
        b->srv_cpu0 = servers_cpu_s(b);
    }
    b->own_cpu0 = own_cpu_s();
    if (b->rate > 0) {
        /* Requests owed from the warm-up are not carried into the run. */
        b->t_rate0 = now;
        b->sched = b->sched_sent = 0;
    }
}

/* Traffic may start: after the connections of the msgs mode are up, at
 * once in the handshake modes. */
static void start_traffic(bench *b, double now)
{
    b->t_traffic = now;
    if (b->rate > 0) {
        b->t_rate0 = now;
        b->sched = b->sched_sent = 0;
    }
    if (b->warmup > 0) {
        b->phase = PH_WARMUP;
        b->t_warm_end = now + b->warmup;
    } else {
        start_measure(b, now);
    }
    if (b->mode == MODE_MSGS && b->rate <= 0) {
        for (uint32_t i = 0; i < b->conns; i++) {
            fill_window(b, i);
        }
    }
    pump(b, now);
}

static int drained(const bench *b)
{
    return b->inflight == 0 && (b->mode == MODE_MSGS || b->opening == 0);
}

static void start_drain(bench *b, double now)
{
    if (b->phase != PH_RUN && b->phase != PH_WARMUP) {
        return;
    }
    b->phase = PH_DRAIN;
    /* Every request is checked against --timeout by the tick; this only
     * bounds the wait for connections still in their handshake. */
    b->t_drain_deadline = now + b->timeout + (b->mode == MODE_MSGS ? 0 : OPEN_MAX_S);
    if (drained(b)) {
        finish(b, "done");
    }
}

static void enter_hold(bench *b, double now)
{
    b->phase = PH_HOLD;
    b->t_hold_end = now + b->duration;
}

static int may_issue(const bench *b)
{
    if (b->phase == PH_WARMUP) {
        return 1;
    }
    return b->phase == PH_RUN && (b->count == 0 || b->issued < b->count);
}

static int measuring(const bench *b)
{
    return b->phase == PH_RUN;
}

/* ------------------------------------------------------------------------ */
/* connections                                                              */
/* ------------------------------------------------------------------------ */

static void slot_release(bench *b, uint32_t i)
{
    bench_slot *s = &b->slots[i];
    fm_del(&b->map, s->flow);
    if (s->state == SLOT_OPENING) {
        b->opening--;
    } else if (s->state == SLOT_UP) {
        b->up--;
    } else if (s->state == SLOT_CLOSING) {
        b->closing--;
    }
    b->inflight -= s->n;
    s->n = 0;
    s->head = 0;
    s->flow = 0;
    s->state = SLOT_FREE;
    b->free_stack[b->n_free++] = i;
}

/* Close a connection on purpose (its in-flight requests are written off
 * by the caller). */
static void slot_close(bench *b, uint32_t i)
{
    bench_slot *s = &b->slots[i];
    if (s->state == SLOT_UP) {
        b->up--;
    } else if (s->state == SLOT_OPENING) {
        b->opening--;
    } else {
        return;
    }
    b->inflight -= s->n;
    s->n = 0;
    s->head = 0;
    s->state = SLOT_CLOSING;
    b->closing++;
    if (siptls_close(b->engine, s->flow) != SIPTLS_OK) {
        /* Already gone: no CLOSED event will come for it. */
        s->state = SLOT_CLOSING;
        slot_release(b, i);
    }
}

static int open_slot(bench *b, double now)
{
    if (b->n_free == 0) {
        return -1;
    }
    uint32_t i = b->free_stack[b->n_free - 1];
    siptls_flow_id id = 0;
    int st = siptls_open(b->engine, b->uri, &id);
    if (st != SIPTLS_OK) {
        add_error(b, kind_of_status(st, 0), st);
        b->retry_wait = 1;
        if (b->mode == MODE_IDLE) {
            b->opened++; /* the idle mode tries each connection once */
        }
        return -1;
    }
    b->n_free--;
    bench_slot *s = &b->slots[i];
    s->flow = id;
    s->state = SLOT_OPENING;
    s->t_open = now;
    s->n = s->head = 0;
    s->measured = (uint8_t)(measuring(b) || b->mode == MODE_IDLE);
    fm_put(&b->map, id, i);
    b->opening++;
    b->opened++;
    if ((b->mode == MODE_HANDSHAKES || b->mode == MODE_RESUME) && s->measured) {
        b->issued++;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* requests                                                                 */
/* ------------------------------------------------------------------------ */

/* Copy the --message template, replacing [call_id], [cseq], [branch] and
 * [transport] (the sipp names). Returns the length, 0 when it does not fit. */
static size_t fill_template(const bench *b, char *out, size_t cap, uint64_t n, uint32_t cseq)
{
    size_t o = 0;
    for (size_t i = 0; i < b->tmpl_len;) {
        char rep[96];
        size_t skip = 0;
        const char *t = b->tmpl + i;
        size_t left = b->tmpl_len - i;
        rep[0] = '\0';
        if (*t == '[') {
            if (left >= 9 && memcmp(t, "[call_id]", 9) == 0) {
                snprintf(rep, sizeof(rep), "%08x-%llu@siptls-bench.invalid", (unsigned)b->run_id,
                         (unsigned long long)n);
                skip = 9;
            } else if (left >= 6 && memcmp(t, "[cseq]", 6) == 0) {
                snprintf(rep, sizeof(rep), "%u", (unsigned)cseq);
                skip = 6;
            } else if (left >= 8 && memcmp(t, "[branch]", 8) == 0) {
                snprintf(rep, sizeof(rep), "z9hG4bK%08x%012llx", (unsigned)b->run_id,
                         (unsigned long long)n);
                skip = 8;
            } else if (left >= 11 && memcmp(t, "[transport]", 11) == 0) {
                snprintf(rep, sizeof(rep), "%s", b->dtls ? "DTLS" : "TLS");
                skip = 11;
            }
        }
        if (skip > 0) {
            size_t rl = strlen(rep);
            if (o + rl > cap) {
                return 0;
            }
            memcpy(out + o, rep, rl);
            o += rl;
            i += skip;
        } else {
            if (o + 1 > cap) {
                return 0;
            }
            out[o++] = *t;
            i++;
        }
    }
    return o;
}

static size_t build_request(bench *b, char *buf, size_t cap, uint32_t cseq)
{
    uint64_t n = ++b->seq;
    if (b->tmpl != NULL) {
        return fill_template(b, buf, cap, n, cseq);
    }
    int len = snprintf(buf, cap,
                       "OPTIONS sip:%s SIP/2.0\r\n"
                       "Via: SIP/2.0/%s siptls-bench.invalid;branch=z9hG4bK%08x%012llx;rport\r\n"
                       "Max-Forwards: 70\r\n"
                       "From: <sip:bench@siptls-bench.invalid>;tag=%08x\r\n"
                       "To: <sip:%s>\r\n"
                       "Call-ID: %08x-%llu@siptls-bench.invalid\r\n"
                       "CSeq: %u OPTIONS\r\n"
                       "Accept: application/sdp\r\n"
                       "User-Agent: siptls-bench\r\n"
                       "Content-Length: 0\r\n\r\n",
                       b->host, b->dtls ? "DTLS" : "TLS", (unsigned)b->run_id,
                       (unsigned long long)n, (unsigned)b->run_id, b->host, (unsigned)b->run_id,
                       (unsigned long long)n, (unsigned)cseq);
    return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

/* Send one request on slot i; `t` is its start time for the latency (the
 * due time in open loop, so a late send is not hidden). */
static int send_request(bench *b, uint32_t i, double t)
{
    bench_slot *s = &b->slots[i];
    char buf[65536];
    uint32_t cseq = s->cseq + 1;
    size_t len = build_request(b, buf, sizeof(buf), cseq);
    if (len == 0) {
        add_error(b, K_SEND, SIPTLS_ERR_INVAL);
        return -1;
    }
    int st = siptls_send(b->engine, s->flow, (const uint8_t *)buf, len);
    if (st != SIPTLS_OK) {
        add_error(b, K_SEND, st);
        if (siptls_status_is_fatal(st) || st == SIPTLS_ERR_GONE) {
            slot_close(b, i);
        }
        return -1;
    }
    s->cseq = cseq;
    bench_req *r = &b->reqs[(size_t)i * b->ring + (s->head + s->n) % b->ring];
    r->t = t;
    r->cseq = cseq;
    r->done = 0;
    /* A handshake-mode operation counts when its connection was opened
     * in the measured part, even if it ends during the drain. */
    r->measured = (uint8_t)(b->mode == MODE_MSGS ? measuring(b) : s->measured);
    s->n++;
    b->inflight++;
    if (r->measured && b->mode == MODE_MSGS) {
        b->issued++;
    }
    return 0;
}

/* Closed loop: keep W requests in flight on slot i. */
static void fill_window(bench *b, uint32_t i)
{
    bench_slot *s = &b->slots[i];
    while (s->state == SLOT_UP && s->n < b->window && may_issue(b)) {
        if (send_request(b, i, cli_now()) != 0) {
            break;
        }
    }
}

/* Open loop: send what is due on slots with room, oldest first. */
static void send_owed(bench *b, double now)
{
    if (!may_issue(b)) {
        return;
    }
    uint64_t due = (uint64_t)((now - b->t_rate0) * b->rate);
    if (b->count > 0 && b->phase == PH_RUN && due > b->count) {
        due = b->count;
    }
    if (due > b->sched) {
        b->sched = due;
    }
    uint32_t tried = 0;
    while (b->sched_sent < b->sched && tried < b->conns) {
        uint32_t i = b->cursor;
        bench_slot *s = &b->slots[i];
        if (s->state == SLOT_UP && s->n < b->window) {
            double t_due = b->t_rate0 + (double)b->sched_sent / b->rate;
            if (send_request(b, i, t_due) != 0) {
                b->cursor = (b->cursor + 1) % b->conns;
                tried++;
                continue;
            }
            b->sched_sent++;
            tried = 0;
            continue;
        }
        b->cursor = (b->cursor + 1) % b->conns;
        tried++;
    }
    /* No room anywhere: requests due for longer than --timeout are written
     * off (the server cannot keep up with --rate). */
    while (b->sched_sent < b->sched &&
           now - (b->t_rate0 + (double)b->sched_sent / b->rate) > b->timeout) {
        add_error(b, K_UNSENT, 0);
        b->sched_sent++;
        if (measuring(b)) {
            b->issued++;
        }
    }
}

/* Issue what the mode and the phase allow. */
static void pump(bench *b, double now)
{
    if (b->phase == PH_DONE) {
        return;
    }
    switch (b->mode) {
    case MODE_MSGS:
        if (!b->retry_wait &&
            (b->phase == PH_CONNECT || b->phase == PH_WARMUP || b->phase == PH_RUN)) {
            while (b->n_free > 0 && b->opening < b->open_parallel) {
                if (open_slot(b, now) != 0) {
                    break;
                }
            }
        }
        if (b->rate > 0 && b->phase != PH_CONNECT) {
            send_owed(b, now);
        }
        break;
    case MODE_HANDSHAKES:
    case MODE_RESUME:
        if (b->retry_wait) {
            break;
        }
        if (b->rate > 0) {
            if (!may_issue(b)) {
                break;
            }
            uint64_t due = (uint64_t)((now - b->t_rate0) * b->rate);
            if (due > b->sched) {
                b->sched = due;
            }
            while (b->sched_sent < b->sched && b->n_free > 0 && may_issue(b)) {
                if (open_slot(b, now) != 0) {
                    break;
                }
                b->sched_sent++;
            }
            while (b->sched_sent < b->sched &&
                   now - (b->t_rate0 + (double)b->sched_sent / b->rate) > b->timeout) {
                add_error(b, K_UNSENT, 0);
                b->sched_sent++;
                if (measuring(b)) {
                    b->issued++;
                }
            }
        } else {
            while (b->n_free > 0 && may_issue(b)) {
                if (open_slot(b, now) != 0) {
                    break;
                }
            }
        }
        if (b->phase == PH_RUN && b->count > 0 && b->issued >= b->count) {
            start_drain(b, now);
        }
        break;
    case MODE_IDLE:
        if (b->phase == PH_RUN && !b->retry_wait) {
            while (b->opened < b->conns && b->opening < b->open_parallel) {
                if (open_slot(b, now) != 0) {
                    break;
                }
            }
        }
        if (b->phase == PH_RUN && b->opened >= b->conns && b->opening == 0) {
            enter_hold(b, now);
        }
        break;
    default:
        break;
    }
    if (b->mode == MODE_MSGS && b->phase == PH_RUN && b->count > 0 && b->issued >= b->count) {
        start_drain(b, now);
    }
}

/* ------------------------------------------------------------------------ */
/* engine callbacks                                                         */
/* ------------------------------------------------------------------------ */

static void slot_up(bench *b, uint32_t i, double now)
{
    bench_slot *s = &b->slots[i];
    b->ever_up = 1;
    if (s->measured) {
        hist_add(&b->lat_hs, now - s->t_open);
        b->hs_done++;
    }
    if (b->tls_version[0] == '\0' || b->mode == MODE_RESUME) {
        siptls_flow_info info;
        if (siptls_flow_get_info(b->engine, s->flow, &info) == SIPTLS_OK) {
            if (b->tls_version[0] == '\0') {
                snprintf(b->tls_version, sizeof(b->tls_version), "%s", info.tls_version);
                snprintf(b->cipher, sizeof(b->cipher), "%s", info.cipher);
            }
            if (info.resumed && s->measured) {
                b->resumed++;
            }
        }
    }
    switch (b->mode) {
    case MODE_MSGS:
        if (b->phase == PH_CONNECT) {
            if (b->up == b->conns) {
                start_traffic(b, now);
            }
        } else if (b->rate > 0) {
            send_owed(b, now);
        } else {
            fill_window(b, i);
        }
        break;
    case MODE_HANDSHAKES:
    case MODE_RESUME:
        /* The operation started before the drain: it completes. */
        send_request(b, i, now);
        break;
    case MODE_IDLE:
        b->ops++;
        b->t_last_done = now;
        pump(b, now);
        break;
    default:
        break;
    }
}

static void on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                    void *user)
{
    (void)e;
    bench *b = user;
    uint32_t i;
    if (b->phase == PH_DONE || !fm_find(&b->map, flow, &i)) {
        return;
    }
    bench_slot *s = &b->slots[i];
    double now = cli_now();
    if (state == SIPTLS_FLOW_UP) {
        if (s->state == SLOT_OPENING) {
            s->state = SLOT_UP;
            b->opening--;
            b->up++;
            slot_up(b, i, now);
        }
        return;
    }
    if (s->state != SLOT_CLOSING) {
        add_error(b, kind_of_status(reason, s->state == SLOT_UP), reason);
        /* Do not reopen in a tight loop against a failing server. */
        b->retry_wait = 1;
    }
    slot_release(b, i);
    if (b->phase == PH_DRAIN && drained(b)) {
        finish(b, "done");
        return;
    }
    pump(b, now);
}

static unsigned status_code(const siptls_msg *m)
{
    if (m->len < 12 || memcmp(m->data, "SIP/2.0 ", 8) != 0) {
        return 0;
    }
    unsigned code = 0;
    for (size_t k = 8; k < 11; k++) {
        if (m->data[k] < '0' || m->data[k] > '9') {
            return 0;
        }
        code = code * 10 + (unsigned)(m->data[k] - '0');
    }
    return code;
}

static int cseq_of(const siptls_msg *m, uint32_t *cseq)
{
    const uint8_t *v;
    size_t vl;
    if (siptls_sipmsg_header(m->data, m->header_len, "CSeq", 0, &v, &vl) != SIPTLS_OK) {
        return 0;
    }
    uint32_t n = 0;
    size_t k = 0;
    while (k < vl && v[k] >= '0' && v[k] <= '9') {
        n = n * 10 + (uint32_t)(v[k] - '0');
        k++;
    }
    *cseq = n;
    return k > 0;
}

static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)e;
    bench *b = user;
    uint32_t i;
    if (b->phase == PH_DONE || !fm_find(&b->map, flow, &i)) {
        return;
    }
    bench_slot *s = &b->slots[i];
    if (s->state != SLOT_UP || s->n == 0 || siptls_sipmsg_is_request(m->data, m->len)) {
        return;
    }
    unsigned code = status_code(m);
    if (code >= 100 && code < 200) {
        return; /* provisional: wait for the final response */
    }
    /* Match by CSeq; the oldest request with that CSeq (FIFO when a
     * --message file has a fixed CSeq), or the oldest of all. */
    uint32_t cseq = 0;
    int have = cseq_of(m, &cseq);
    bench_req *base = &b->reqs[(size_t)i * b->ring];
    bench_req *r = NULL;
    for (uint32_t k = 0; k < s->n && r == NULL; k++) {
        bench_req *c = &base[(s->head + k) % b->ring];
        if (!c->done && have && c->cseq == cseq) {
            r = c;
        }
    }
    for (uint32_t k = 0; k < s->n && r == NULL; k++) {
        bench_req *c = &base[(s->head + k) % b->ring];
        if (!c->done) {
            r = c;
        }
    }
    if (r == NULL) {
        return;
    }
    double now = cli_now();
    r->done = 1;
    if (r->measured) {
        hist_add(&b->lat, now - r->t);
        b->ops++;
        b->t_last_done = now;
        if (code < 700) {
            b->codes[code]++;
        }
        if (code >= 200 && code < 300) {
            b->ok2xx++;
        } else {
            b->non2xx++;
            add_error(b, K_NON2XX, 0);
        }
    }
    while (s->n > 0 && base[s->head].done) {
        s->head = (s->head + 1) % b->ring;
        s->n--;
        b->inflight--;
    }
    if (b->mode == MODE_MSGS) {
        if (b->rate > 0) {
            send_owed(b, now);
        } else {
            fill_window(b, i);
        }
        if (b->phase == PH_RUN && b->count > 0 && b->issued >= b->count) {
            start_drain(b, now);
        }
    } else if (s->n == 0) {
        slot_close(b, i);
    }
    if (b->phase == PH_DRAIN && drained(b)) {
        finish(b, "done");
    }
}

/* ------------------------------------------------------------------------ */
/* timers and signals                                                       */
/* ------------------------------------------------------------------------ */

static void progress_line(bench *b, double now)
{
    double dt = now - b->progress_t;
    double rate = dt > 0 ? (double)(b->ops - b->progress_ops) / dt : 0;
    b->progress_ops = b->ops;
    b->progress_t = now;
    printf(
        "\r\033[K%7.1f s  %-7s  %s %llu  %.0f/s  up %u  in flight %llu  p50 %.3f ms  errors %llu",
        now - b->t_start, phase_names[b->phase], b->mode == MODE_IDLE ? "conns" : "ops",
        (unsigned long long)b->ops, rate, b->up, (unsigned long long)b->inflight,
        hist_ms(b->mode == MODE_MSGS ? &b->lat : &b->lat_hs, 0.5),
        (unsigned long long)errors_total(b));
    fflush(stdout);
}

/* Write off requests that waited longer than --timeout (the connection
 * is closed: the answers can no longer be matched with confidence). */
static void check_timeouts(bench *b, double now)
{
    for (uint32_t i = 0; i < b->conns; i++) {
        bench_slot *s = &b->slots[i];
        if (s->state != SLOT_UP || s->n == 0) {
            continue;
        }
        bench_req *r = &b->reqs[(size_t)i * b->ring + s->head];
        if (now - r->t > b->timeout) {
            for (uint32_t k = 0; k < s->n; k++) {
                if (!b->reqs[(size_t)i * b->ring + (s->head + k) % b->ring].done) {
                    add_error(b, K_TIMEOUT, 0);
                }
            }
            slot_close(b, i);
        }
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    bench *b = w->data;
    double now = cli_now();
    b->retry_wait = 0;
    check_timeouts(b, now);
    if (!b->ever_up && errors_total(b) >= (uint64_t)b->conns + 10) {
        finish(b, "no connection came up");
        return;
    }
    switch (b->phase) {
    case PH_CONNECT:
        if (b->up == b->conns || now - b->t_start > CONNECT_PHASE_MAX_S) {
            if (b->up == 0) {
                /* The handshakes still under way failed to come up in
                 * time: a run that measured nothing is no success. */
                for (unsigned k = 0; k < b->opening; k++) {
                    add_error(b, K_TIMEOUT, 0);
                }
                finish(b, "no connection came up");
                return;
            }
            start_traffic(b, now);
        }
        break;
    case PH_WARMUP:
        if (now >= b->t_warm_end) {
            start_measure(b, now);
        }
        break;
    case PH_RUN:
        if (b->mode == MODE_IDLE) {
            /* Each attempt ends within the engine's timeouts; this only
             * bounds a pathological ramp. */
            if (now - b->t_measure > 30.0 + (double)b->conns / 50.0) {
                enter_hold(b, now);
            }
        } else if ((b->duration > 0 && now - b->t_measure >= b->duration) ||
                   (b->duration <= 0 && now - b->t_measure >= COUNT_ONLY_MAX_S)) {
            start_drain(b, now);
        }
        break;
    case PH_HOLD:
        if (now >= b->t_hold_end) {
            finish(b, "done");
            return;
        }
        break;
    case PH_DRAIN:
        if (now >= b->t_drain_deadline) {
            for (uint64_t k = 0; k < b->inflight; k++) {
                add_error(b, K_TIMEOUT, 0);
            }
            finish(b, "drain timeout");
            return;
        }
        break;
    default:
        break;
    }
    if (b->phase == PH_DONE) {
        return;
    }
    pump(b, now);
    if (b->progress && now >= b->t_next_progress) {
        b->t_next_progress = now + 1.0;
        progress_line(b, now);
    }
}

static void on_rate(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    bench *b = w->data;
    if (b->phase == PH_WARMUP || b->phase == PH_RUN) {
        pump(b, cli_now());
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    bench *b = w->data;
    b->interrupted = 1;
    finish(b, w->signum == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
}

/* ------------------------------------------------------------------------ */
/* report                                                                   */
/* ------------------------------------------------------------------------ */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

typedef struct figures {
    double elapsed, per_s, srv_cpu, srv_us_per_op, own_cpu, own_us_per_op;
    double rss_per_conn, own_rss_per_conn;
} figures;

static figures compute(const bench *b)
{
    figures f;
    memset(&f, 0, sizeof(f));
    double t0 = b->t_measure > 0 ? b->t_measure : b->t_start;
    double t1 = b->ops > 0 ? b->t_last_done : b->t_end;
    f.elapsed = t1 - t0;
    f.per_s = f.elapsed > 0 ? (double)b->ops / f.elapsed : 0;
    f.srv_cpu = b->srv_cpu_ok ? b->srv_cpu1 - b->srv_cpu0 : -1;
    f.srv_us_per_op = b->srv_cpu_ok && b->ops > 0 ? f.srv_cpu * 1e6 / (double)b->ops : -1;
    f.own_cpu = b->own_cpu1 - b->own_cpu0;
    f.own_us_per_op = b->ops > 0 ? f.own_cpu * 1e6 / (double)b->ops : -1;
    f.rss_per_conn = b->srv_rss0 >= 0 && b->srv_rss1 >= 0 && b->up > 0
                         ? (double)(b->srv_rss1 - b->srv_rss0) * 1024.0 / (double)b->up
                         : -1;
    f.own_rss_per_conn = b->own_rss0 >= 0 && b->own_rss1 >= 0 && b->up > 0
                             ? (double)(b->own_rss1 - b->own_rss0) * 1024.0 / (double)b->up
                             : -1;
    return f;
}

static const char *op_unit(const bench *b)
{
    switch (b->mode) {
    case MODE_MSGS:
        return "requests";
    case MODE_IDLE:
        return "connections";
    default:
        return "handshakes";
    }
}

static void print_lat(FILE *out, const char *name, const hist *h)
{
    fprintf(out,
            "  %-11s p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms  (n=%llu)\n",
            name, hist_ms(h, 0.5), hist_ms(h, 0.9), hist_ms(h, 0.99), (double)h->max_ns / 1e6,
            h->n ? h->sum_ns / (double)h->n / 1e6 : 0.0, (unsigned long long)h->n);
}

static void report_text(const bench *b, FILE *out)
{
    figures f = compute(b);
    fprintf(out, "siptls bench: %s %s, %u connection%s", mode_names[b->mode], b->uri, b->conns,
            b->conns == 1 ? "" : "s");
    if (b->mode == MODE_MSGS) {
        fprintf(out, " x %u in flight", b->window);
    }
    if (b->rate > 0) {
        fprintf(out, ", open loop %.0f/s", b->rate);
    }
    fprintf(out, "; %s %s; %s\n", b->tls_version[0] ? b->tls_version : "-",
            b->cipher[0] ? b->cipher : "-", b->stop_reason ? b->stop_reason : "");
    if (b->mode == MODE_IDLE) {
        fprintf(out, "  connections %u up of %u (opened at %.0f/s), held %.1f s\n", b->up, b->conns,
                f.per_s, b->duration);
        print_lat(out, "handshake", &b->lat_hs);
    } else {
        fprintf(out, "  %-11s %llu in %.2f s = %.1f/s", op_unit(b), (unsigned long long)b->ops,
                f.elapsed, f.per_s);
        fprintf(out, "  (2xx %llu, other final %llu)\n", (unsigned long long)b->ok2xx,
                (unsigned long long)b->non2xx);
        if (b->mode == MODE_MSGS) {
            print_lat(out, "latency", &b->lat);
        } else {
            print_lat(out, "handshake", &b->lat_hs);
            print_lat(out, "OPTIONS", &b->lat);
            fprintf(out, "  resumed     %llu of %llu handshakes (%.1f %%)\n",
                    (unsigned long long)b->resumed, (unsigned long long)b->hs_done,
                    b->hs_done ? 100.0 * (double)b->resumed / (double)b->hs_done : 0.0);
        }
    }
    if (b->n_server_pids > 0) {
        if (f.srv_us_per_op >= 0) {
            fprintf(out, "  server CPU  %.2f us per %s (%.3f s user+sys, %.0f %% of one core)\n",
                    f.srv_us_per_op, b->mode == MODE_MSGS ? "request" : "handshake", f.srv_cpu,
                    f.elapsed > 0 ? 100.0 * f.srv_cpu / (b->t_end - b->t_measure) : 0.0);
        } else {
            fprintf(out, "  server CPU  unavailable (pid gone or no operations)\n");
        }
    }
    if (f.own_us_per_op >= 0) {
        fprintf(out, "  bench CPU   %.2f us per operation (%.3f s)\n", f.own_us_per_op, f.own_cpu);
    }
    if (b->rss_pid > 0) {
        fprintf(out, "  server RSS  %ld KiB -> %ld KiB: %.0f bytes per connection (%u up)\n",
                b->srv_rss0, b->srv_rss1, f.rss_per_conn, b->up);
    }
    if (b->mode == MODE_IDLE) {
        fprintf(out, "  bench RSS   %ld KiB -> %ld KiB: %.0f bytes per connection\n", b->own_rss0,
                b->own_rss1, f.own_rss_per_conn);
    }
    uint64_t errs = errors_total(b);
    fprintf(out, "  errors      %llu", (unsigned long long)errs);
    if (errs > 0) {
        const char *sep = ": ";
        for (int k = 0; k < K_COUNT; k++) {
            if (b->err_kind[k] > 0) {
                fprintf(out, "%s%s %llu", sep, kind_names[k], (unsigned long long)b->err_kind[k]);
                sep = ", ";
            }
        }
        sep = "  [";
        for (int s = 1; s < N_STATUS; s++) {
            if (b->err_status[s] > 0) {
                fprintf(out, "%s%s %llu", sep, siptls_status_name(-s),
                        (unsigned long long)b->err_status[s]);
                sep = ", ";
            }
        }
        if (strcmp(sep, ", ") == 0) {
            fputc(']', out);
        }
        sep = "  codes: ";
        for (unsigned c = 0; c < 700; c++) {
            if (b->codes[c] > 0 && (c < 200 || c >= 300)) {
                fprintf(out, "%s%u x%llu", sep, c, (unsigned long long)b->codes[c]);
                sep = ", ";
            }
        }
    }
    fputc('\n', out);
}

static void json_lat(FILE *out, const char *name, const hist *h)
{
    fprintf(out,
            "  \"%s\": {\"n\": %llu, \"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"max\": %.4f, "
            "\"mean\": %.4f},\n",
            name, (unsigned long long)h->n, hist_ms(h, 0.5), hist_ms(h, 0.9), hist_ms(h, 0.99),
            (double)h->max_ns / 1e6, h->n ? h->sum_ns / (double)h->n / 1e6 : 0.0);
}

static void report_json(const bench *b, FILE *out)
{
    figures f = compute(b);
    fprintf(out, "{\n  \"mode\": \"%s\",\n  \"uri\": ", mode_names[b->mode]);
    json_str(out, b->uri);
    fprintf(out, ",\n  \"transport\": \"%s\",\n  \"tls_version\": ", b->dtls ? "dtls" : "tls");
    json_str(out, b->tls_version);
    fprintf(out, ",\n  \"cipher\": ");
    json_str(out, b->cipher);
    fprintf(
        out,
        ",\n  \"connections\": %u,\n  \"window\": %u,\n  \"rate\": %.3f,\n  \"warmup_s\": %.3f,\n"
        "  \"duration_s\": %.3f,\n  \"count\": %llu,\n  \"interrupted\": %s,\n  \"stop\": ",
        b->conns, b->window, b->rate, b->warmup, b->duration, (unsigned long long)b->count,
        b->interrupted ? "true" : "false");
    json_str(out, b->stop_reason ? b->stop_reason : "");
    fprintf(
        out,
        ",\n  \"unit\": \"%s\",\n  \"ops\": %llu,\n  \"elapsed_s\": %.6f,\n  \"ops_per_s\": %.3f,\n"
        "  \"responses\": {\"2xx\": %llu, \"other\": %llu, \"codes\": {",
        op_unit(b), (unsigned long long)b->ops, f.elapsed, f.per_s, (unsigned long long)b->ok2xx,
        (unsigned long long)b->non2xx);
    const char *sep = "";
    for (unsigned c = 0; c < 700; c++) {
        if (b->codes[c] > 0) {
            fprintf(out, "%s\"%u\": %llu", sep, c, (unsigned long long)b->codes[c]);
            sep = ", ";
        }
    }
    fprintf(out, "}},\n");
    json_lat(out, "latency_ms", &b->lat);
    json_lat(out, "handshake_ms", &b->lat_hs);
    fprintf(out, "  \"handshakes\": %llu,\n  \"resumed\": %llu,\n  \"resumed_ratio\": %.4f,\n",
            (unsigned long long)b->hs_done, (unsigned long long)b->resumed,
            b->hs_done ? (double)b->resumed / (double)b->hs_done : 0.0);
    fprintf(out, "  \"connections_up\": %u,\n", b->up);
    fprintf(out, "  \"server\": {\"pids\": [");
    for (unsigned i = 0; i < b->n_server_pids; i++) {
        fprintf(out, "%s%d", i ? ", " : "", (int)b->server_pids[i]);
    }
    fprintf(out, "], \"cpu_s\": ");
    if (f.srv_cpu >= 0) {
        fprintf(out, "%.3f, \"cpu_us_per_op\": %.3f", f.srv_cpu, f.srv_us_per_op);
    } else {
        fprintf(out, "null, \"cpu_us_per_op\": null");
    }
    fprintf(out,
            ", \"rss_pid\": %d, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
            "\"rss_per_conn_bytes\": ",
            (int)b->rss_pid, b->rss_pid > 0 ? b->srv_rss0 : -1L,
            b->rss_pid > 0 ? b->srv_rss1 : -1L);
    if (b->rss_pid > 0 && f.rss_per_conn >= 0) {
        fprintf(out, "%.1f},\n", f.rss_per_conn);
    } else {
        fprintf(out, "null},\n");
    }
    fprintf(out,
            "  \"bench\": {\"cpu_s\": %.3f, \"cpu_us_per_op\": %.3f, \"rss_before_kib\": %ld, "
            "\"rss_after_kib\": %ld},\n",
            f.own_cpu, f.own_us_per_op, b->own_rss0, b->own_rss1);
    fprintf(out, "  \"errors\": {\"total\": %llu", (unsigned long long)errors_total(b));
    for (int k = 0; k < K_COUNT; k++) {
        fprintf(out, ", \"%s\": %llu", kind_names[k], (unsigned long long)b->err_kind[k]);
    }
    fprintf(out, ", \"by_status\": {");
    sep = "";
    for (int s = 1; s < N_STATUS; s++) {
        if (b->err_status[s] > 0) {
            fprintf(out, "%s\"%s\": %llu", sep, siptls_status_name(-s),
                    (unsigned long long)b->err_status[s]);
            sep = ", ";
        }
    }
    fprintf(out, "}}\n}\n");
}

/* ------------------------------------------------------------------------ */
/* setup                                                                    */
/* ------------------------------------------------------------------------ */

static void bench_usage(FILE *out)
{
    fprintf(
        out,
        "usage: siptls bench URI [options]      URI: tls:HOST[:PORT] or dtls:HOST[:PORT]\n"
        "  -m, --mode MODE       msgs (default): C connections, W requests in flight on each\n"
        "                        handshakes: connect, one OPTIONS, close; every handshake full\n"
        "                        resume: the same with session resumption (first per connection full)\n"
        "                        idle: open C connections, hold them --duration, report memory\n"
        "  -d, --duration S      seconds to measure (idle: to hold); default 10 when neither\n"
        "                        this nor --count is given\n"
        "  -n, --count N         operations to measure (requests / handshakes), then stop;\n"
        "                        a run with only --count stops after %.0f s anyway\n"
        "  -r, --rate R          open loop: R requests (handshakes) per second spread evenly;\n"
        "                        latency counts from when each was due\n"
        "  -C, --connections C   connections (handshake modes: concurrent ones) (default 1)\n"
        "  -w, --window W        requests in flight per connection (default 1; %d with --rate);\n"
        "                        idle: handshakes in progress while opening (default %d)\n"
        "      --warmup S        seconds of traffic before measuring (default 0)\n"
        "      --timeout S       seconds a request may wait for its answer (default 5)\n"
        "      --message FILE    send FILE instead of OPTIONS; [call_id] [cseq] [branch]\n"
        "                        [transport] are replaced; LF line ends become CRLF\n"
        "      --tls 1.2|1.3     TLS version (client domain tls_method)\n"
        "      --ca FILE         CA list to verify the server (default: system CAs)\n"
        "  -k, --insecure        do not verify the server certificate\n"
        "      --cert FILE       client certificate chain (PEM)\n"
        "      --key FILE        private key of --cert (default: read from the --cert file)\n"
        "  -c, --config FILE     configuration file (client domain settings, limits)\n"
        "      --server-pid P[,P..]  report the server's CPU per operation from /proc/P/stat\n"
        "      --rss-pid P       report the server's RSS growth per connection (/proc/P/status)\n"
        "      --json            print the results as JSON\n"
        "  -v, --verbose         debug logging\n"
        "  -h, --help            this text\n"
        "A live progress line is printed each second when stdout is a terminal. Ctrl-C ends\n"
        "the run early and prints the results so far.\n"
        "For many connections raise the open-file limit of the server too, e.g.\n"
        "  prlimit --pid SERVER_PID --nofile=30000:30000   or   ulimit -n 30000 before starting "
        "it\n"
        "and its tls_max_connections / dtls_max_sessions (2048 by default).\n"
        "exit status: 0 no errors, 1 errors, 2 usage\n",
        COUNT_ONLY_MAX_S, RATE_WINDOW, IDLE_OPEN_PARALLEL);
}

static int parse_pids(bench *b, const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || b->n_server_pids >= MAX_SERVER_PIDS) {
            return -1;
        }
        b->server_pids[b->n_server_pids++] = (pid_t)v;
        p = end;
        if (*p == ',') {
            p++;
        } else if (*p != '\0') {
            return -1;
        }
    }
    return b->n_server_pids > 0 ? 0 : -1;
}

static int parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !(v >= 0) || v > 1e9) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || text[0] == '-') {
        return -1;
    }
    *out = v;
    return 0;
}

/* Read a --message file; a file with no CR gets CRLF line ends in its
 * header part (the body is left as it is: Content-Length counts it). */
static int load_message(bench *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "siptls bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *raw = malloc(65536);
    size_t n = raw ? fread(raw, 1, 65535, f) : 0;
    int too_big = raw && fgetc(f) != EOF;
    fclose(f);
    if (raw == NULL || n == 0 || too_big) {
        fprintf(stderr, "siptls bench: %s: empty or over 65535 bytes\n", path);
        free(raw);
        return -1;
    }
    char *t = malloc(2 * n + 4);
    if (t == NULL) {
        free(raw);
        return -1;
    }
    size_t o = 0;
    if (memchr(raw, '\r', n) == NULL) {
        size_t i = 0;
        int in_headers = 1;
        for (; i < n; i++) {
            if (in_headers && raw[i] == '\n') {
                t[o++] = '\r';
                t[o++] = '\n';
                if (i + 1 < n && raw[i + 1] == '\n') {
                    t[o++] = '\r';
                    t[o++] = '\n';
                    i++;
                    in_headers = 0;
                }
            } else {
                t[o++] = raw[i];
            }
        }
    } else {
        memcpy(t, raw, n);
        o = n;
    }
    free(raw);
    b->tmpl = t;
    b->tmpl_len = o;
    return 0;
}

/* RLIMIT_NOFILE high enough for `need` descriptors (root may raise the hard
 * limit too). */
static void raise_nofile(rlim_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need) {
        return;
    }
    struct rlimit want = rl;
    want.rlim_cur = need;
    if (want.rlim_max != RLIM_INFINITY && want.rlim_max < need) {
        want.rlim_max = need;
    }
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
        return;
    }
    want = rl;
    want.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &want);
    fprintf(stderr,
            "siptls bench: warning: open-file limit %llu is below the %llu this run needs "
            "(raise it: ulimit -n %llu)\n",
            (unsigned long long)rl.rlim_max, (unsigned long long)need, (unsigned long long)need);
}

int siptls_cli_bench(int argc, char **argv)
{
    static const struct option opts[] = {{"mode", required_argument, NULL, 'm'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"connections", required_argument, NULL, 'C'},
                                         {"window", required_argument, NULL, 'w'},
                                         {"warmup", required_argument, NULL, 'W'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"message", required_argument, NULL, 'M'},
                                         {"tls", required_argument, NULL, 'V'},
                                         {"ca", required_argument, NULL, 'A'},
                                         {"insecure", no_argument, NULL, 'k'},
                                         {"cert", required_argument, NULL, 'E'},
                                         {"key", required_argument, NULL, 'K'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"server-pid", required_argument, NULL, 'P'},
                                         {"rss-pid", required_argument, NULL, 'R'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bench *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return 1;
    }
    b->conns = 1;
    b->timeout = 5.0;
    b->srv_rss0 = b->srv_rss1 = -1;
    b->duration = -1;
    const char *ca = NULL, *cert = NULL, *key = NULL, *config_file = NULL, *tls = NULL;
    const char *message = NULL;
    int insecure = 0, verbose = 0, window_given = 0, c, rc = 2;
    uint64_t u = 0;
    siptls_config cfg;
    int cfg_ok = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:d:n:r:C:w:kc:vh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm':
            b->mode = -1;
            for (int k = 0; k < 4; k++) {
                if (strcmp(optarg, mode_names[k]) == 0) {
                    b->mode = k;
                }
            }
            bad = b->mode < 0;
            break;
        case 'd':
            bad = parse_double(optarg, &b->duration) != 0 || b->duration <= 0;
            break;
        case 'n':
            bad = parse_u64(optarg, &b->count) != 0 || b->count == 0;
            break;
        case 'r':
            bad = parse_double(optarg, &b->rate) != 0 || b->rate <= 0;
            break;
        case 'C':
            bad = parse_u64(optarg, &u) != 0 || u == 0 || u > 1000000;
            b->conns = (unsigned)u;
            break;
        case 'w':
            bad = parse_u64(optarg, &u) != 0 || u == 0 || u > 65000;
            b->window = (unsigned)u;
            window_given = 1;
            break;
        case 'W':
            bad = parse_double(optarg, &b->warmup) != 0;
            break;
        case 'T':
            bad = parse_double(optarg, &b->timeout) != 0 || b->timeout <= 0;
            break;
        case 'M':
            message = optarg;
            break;
        case 'V':
            tls = optarg;
            bad = strcmp(tls, "1.2") != 0 && strcmp(tls, "1.3") != 0;
            break;
        case 'A':
            ca = optarg;
            break;
        case 'k':
            insecure = 1;
            break;
        case 'E':
            cert = optarg;
            break;
        case 'K':
            key = optarg;
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'P':
            bad = parse_pids(b, optarg) != 0;
            break;
        case 'R':
            bad = parse_u64(optarg, &u) != 0 || u == 0 || u > 0x7fffffff;
            b->rss_pid = (pid_t)u;
            break;
        case 'J':
            b->json = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            bench_usage(stdout);
            free(b);
            return 0;
        default:
            bad = 1;
            break;
        }
        if (bad) {
            if (c != '?') {
                fprintf(stderr, "siptls bench: bad value '%s'\n", optarg ? optarg : "");
            }
            bench_usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        bench_usage(stderr);
        goto out;
    }
    b->uri = argv[optind];
    siptls_uri uri;
    int st = siptls_uri_parse(b->uri, 5061, 5061, 0, &uri);
    if (st != SIPTLS_OK || uri.host_kind == SIPTLS_HOST_ANY) {
        fprintf(stderr, "siptls bench: '%s': %s\n", b->uri,
                siptls_strerror(st ? st : SIPTLS_ERR_URI_ADDR));
        goto out;
    }
    b->dtls = uri.transport == SIPTLS_TRANSPORT_DTLS;
    snprintf(b->host, sizeof(b->host), uri.host_kind == SIPTLS_HOST_IPV6 ? "[%s]" : "%s", uri.host);
    if (key != NULL && cert == NULL) {
        fprintf(stderr, "siptls bench: --key needs --cert\n");
        goto out;
    }
    if (b->dtls && tls != NULL && strcmp(tls, "1.3") == 0) {
        fprintf(stderr,
                "siptls bench: DTLS is 1.2 only in this build (--tls 1.3 is for tls: URIs)\n");
        goto out;
    }
    if (b->mode == MODE_IDLE && (b->rate > 0 || b->count > 0 || message != NULL)) {
        fprintf(stderr,
                "siptls bench: --rate, --count and --message do not apply to --mode idle\n");
        goto out;
    }
    if (b->duration < 0 && (b->count == 0 || b->mode == MODE_IDLE)) {
        b->duration = 10.0;
    }
    if (b->duration < 0) {
        b->duration = 0; /* count only */
    }
    if (!window_given) {
        b->window = b->mode == MODE_IDLE ? IDLE_OPEN_PARALLEL : (b->rate > 0 ? RATE_WINDOW : 1);
    }
    if (message != NULL && load_message(b, message) != 0) {
        goto out;
    }
    b->open_parallel =
        b->mode == MODE_MSGS ? MSGS_OPEN_PARALLEL : (b->mode == MODE_IDLE ? b->window : b->conns);
    b->ring = b->mode == MODE_MSGS ? b->window : 1;

    rc = 1;
    if (siptls_config_init(&cfg) != SIPTLS_OK) {
        goto out;
    }
    cfg_ok = 1;
    if (config_file != NULL) {
        siptls_config_error err;
        if (siptls_config_load_file(&cfg, config_file, &err) != SIPTLS_OK) {
            fprintf(stderr, "siptls: %s\n", err.msg);
            rc = 2;
            goto out;
        }
        cli_drop_listen(&cfg); /* a client: never bind the file's listeners */
    }
    if (cli_client_tls(&cfg, ca, insecure, cert, key, tls) != 0) {
        rc = 2;
        goto out;
    }
    /* The load tool's own limits follow its options. */
    cfg.tls_session_cache = b->mode == MODE_RESUME;
    cfg.tls_async_max_postponed_chunks = b->window + 8;
    if (cfg.tls_max_connections < b->conns + 16) {
        cfg.tls_max_connections = b->conns + 16;
    }
    if (cfg.dtls_max_sessions < b->conns + 16) {
        cfg.dtls_max_sessions = b->conns + 16;
    }
    double life = b->warmup + b->duration + CONNECT_PHASE_MAX_S + 60.0;
    if (b->duration == 0) {
        life += COUNT_ONLY_MAX_S;
    }
    if (cfg.tls_connection_lifetime < life) {
        cfg.tls_connection_lifetime = (unsigned)life;
    }
    if (cfg.dtls_session_lifetime < life) {
        cfg.dtls_session_lifetime = (unsigned)life;
    }
    cfg.log_level = verbose ? SIPTLS_LOG_DEBUG : SIPTLS_LOG_WARN;
    cli_log_level = cfg.log_level;
    raise_nofile((rlim_t)b->conns + 64);

    b->slots = calloc(b->conns, sizeof(*b->slots));
    b->reqs = calloc((size_t)b->conns * b->ring, sizeof(*b->reqs));
    b->free_stack = calloc(b->conns, sizeof(*b->free_stack));
    b->lat.b = calloc(HIST_BUCKETS, sizeof(uint64_t));
    b->lat_hs.b = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (b->slots == NULL || b->reqs == NULL || b->free_stack == NULL || b->lat.b == NULL ||
        b->lat_hs.b == NULL || fm_init(&b->map, b->conns) != 0) {
        fprintf(stderr, "siptls bench: out of memory\n");
        goto out;
    }
    /* Slot 0 first: the stack pops from the end. */
    for (uint32_t i = 0; i < b->conns; i++) {
        b->free_stack[i] = b->conns - 1 - i;
    }
    b->n_free = b->conns;

    signal(SIGPIPE, SIG_IGN);
    b->loop = ev_default_loop(EVFLAG_AUTO);
    /* No log callback unless verbose: the engine then formats only the
     * lines it prints, which keeps the load generator cheap. */
    siptls_callbacks cb = {on_message, on_flow, NULL, verbose ? cli_log : NULL};
    st = siptls_engine_new(&b->engine, b->loop, &cfg, &cb, b);
    if (st != SIPTLS_OK) {
        fprintf(stderr, "siptls bench: %s\n", siptls_strerror(st));
        goto out;
    }
    b->progress = !b->json && isatty(STDOUT_FILENO);
    double now = cli_now();
    b->run_id = (uint32_t)((uint64_t)(now * 1e6) ^ ((uint64_t)getpid() << 16));
    b->t_start = now;
    b->t_next_progress = now + 1.0;
    b->srv_cpu0 = -1;
    if (b->rss_pid > 0) {
        b->srv_rss0 = proc_rss_kib(b->rss_pid);
        if (b->srv_rss0 < 0) {
            fprintf(stderr, "siptls bench: cannot read /proc/%d/status\n", (int)b->rss_pid);
            rc = 2;
            goto out_engine;
        }
    }
    if (b->n_server_pids > 0 && servers_cpu_s(b) < 0) {
        fprintf(stderr, "siptls bench: cannot read /proc/PID/stat of --server-pid\n");
        rc = 2;
        goto out_engine;
    }
    b->own_rss0 = proc_rss_kib(0);

    ev_timer tick, rate_timer;
    ev_signal sig_int, sig_term;
    ev_timer_init(&tick, on_tick, TICK_S, TICK_S);
    tick.data = b;
    ev_timer_start(b->loop, &tick);
    double rate_period = b->rate > 0 ? 1.0 / b->rate : 0;
    if (rate_period < 0.001) {
        rate_period = 0.001;
    }
    ev_timer_init(&rate_timer, on_rate, rate_period, rate_period);
    rate_timer.data = b;
    if (b->rate > 0) {
        ev_timer_start(b->loop, &rate_timer);
    }
    ev_signal_init(&sig_int, on_signal, SIGINT);
    sig_int.data = b;
    ev_signal_start(b->loop, &sig_int);
    ev_signal_init(&sig_term, on_signal, SIGTERM);
    sig_term.data = b;
    ev_signal_start(b->loop, &sig_term);

    if (b->mode == MODE_MSGS) {
        b->phase = PH_CONNECT;
        pump(b, now);
    } else if (b->mode == MODE_IDLE) {
        start_measure(b, now);
        pump(b, now);
    } else {
        start_traffic(b, now);
    }
    if (b->phase != PH_DONE) {
        ev_run(b->loop, 0);
    }
    ev_timer_stop(b->loop, &tick);
    ev_timer_stop(b->loop, &rate_timer);
    ev_signal_stop(b->loop, &sig_int);
    ev_signal_stop(b->loop, &sig_term);
    if (b->progress) {
        printf("\r\033[K");
    }
    if (b->json) {
        report_json(b, stdout);
    } else {
        report_text(b, stdout);
    }
    fflush(stdout);
    rc = errors_total(b) > 0 ? 1 : 0;
out_engine:
    /* close_notify to the flows still open; the server sees a clean end. */
    siptls_engine_shutdown(b->engine);
    siptls_engine_free(b->engine);
out:
    if (cfg_ok) {
        siptls_config_cleanup(&cfg);
    }
    free(b->slots);
    free(b->reqs);
    free(b->free_stack);
    free(b->lat.b);
    free(b->lat_hs.b);
    fm_free(&b->map);
    free(b->tmpl);
    free(b);
    return rc;
}
