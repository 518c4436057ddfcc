/* siptls bench — the run: phases, connections, requests, the engine's
 * callbacks, timers and signals. Every run is bounded in time and in
 * count; SIGINT/SIGTERM end it early with the summary so far. */
#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Engine connect (5 s) + handshake (10 s) timeouts: the longest an
 * operation of a handshake mode can take before the engine gives up. */
#define OPEN_MAX_S 15.0
#define TICK_S 0.1

static const char *const phase_names[] = {"connect", "warm-up", "run", "hold", "drain", "done"};

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

uint64_t bench_errors_total(const bench *b)
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
        b->srv_cpu1 = bench_proc_servers_cpu_s(b);
        b->srv_cpu_ok = b->srv_cpu0 >= 0 && b->srv_cpu1 >= 0;
    }
    if (b->rss_pid > 0) {
        b->srv_rss1 = bench_proc_rss_kib(b->rss_pid);
    }
    b->own_rss1 = bench_proc_rss_kib(0);
    b->own_cpu1 = bench_proc_own_cpu_s();
    ev_break(b->loop, EVBREAK_ALL);
}

static void start_measure(bench *b, double now)
{
    b->phase = PH_RUN;
    b->t_measure = now;
    b->t_last_done = now;
    b->issued = b->ops = b->ok2xx = b->non2xx = b->hs_done = b->resumed = 0;
    memset(b->codes, 0, sizeof(b->codes));
    bench_hist_clear(&b->lat);
    bench_hist_clear(&b->lat_hs);
    b->progress_ops = 0;
    b->progress_t = now;
    if (b->n_server_pids > 0) {
        b->srv_cpu0 = bench_proc_servers_cpu_s(b);
    }
    b->own_cpu0 = bench_proc_own_cpu_s();
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
    bench_flowmap_del(&b->map, s->flow);
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
    bench_flowmap_put(&b->map, id, i);
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
        bench_hist_add(&b->lat_hs, now - s->t_open);
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

void bench_on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                   void *user)
{
    (void)e;
    bench *b = user;
    uint32_t i;
    if (b->phase == PH_DONE || !bench_flowmap_find(&b->map, flow, &i)) {
        return;
    }
    bench_slot *s = &b->slots[i];
    double now = cli_now();
    if (state == SIPTLS_FLOW_MOVED) {
        return; /* inbound DTLS sessions only: never a flow of ours */
    }
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

void bench_on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)e;
    bench *b = user;
    uint32_t i;
    if (b->phase == PH_DONE || !bench_flowmap_find(&b->map, flow, &i)) {
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
        bench_hist_add(&b->lat, now - r->t);
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
        bench_hist_ms(b->mode == MODE_MSGS ? &b->lat : &b->lat_hs, 0.5),
        (unsigned long long)bench_errors_total(b));
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
            /* written off is done too: the measured time runs to here, not to
             * the last answer (a rate of the answers alone overstated it) */
            if (b->t_measure > 0 && now > b->t_last_done) {
                b->t_last_done = now;
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
    if (!b->ever_up && bench_errors_total(b) >= (uint64_t)b->conns + 10) {
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
/* the run                                                                  */
/* ------------------------------------------------------------------------ */

void bench_run(bench *b, double now)
{
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
}
