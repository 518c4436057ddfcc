/* siptls serve — a stateless SIP responder on tls: and dtls: listeners.
 *
 * OPTIONS gets 200 OK, every other request the configured final response
 * (default 501), with Via / From / To / Call-ID / CSeq copied and a To-tag
 * added (RFC 3261 §8.2.6.2); ACK is never answered (RFC 3261 §17.2.1);
 * responses are ignored. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "metrics.h"

/* A configuration handed to every worker by a reload (SIGHUP): read-only,
 * freed by whoever drops the last reference (under serve_all.lock). */
typedef struct shared_cfg {
    siptls_config cfg;
    int refs;
} shared_cfg;

struct serve_all;

typedef struct serve_ctx {
    struct serve_all *all;
    siptls_engine *engine;
    unsigned reply_code;
    const char *reply_reason;
    uint64_t answered;
    /* --workers: one engine per thread, each on its own loop */
    struct ev_loop *loop;
    pthread_t thread;
    ev_async wake;
    int index;
    int pending;        /* what the main thread asked for (WORK_*), under lock */
    shared_cfg *reload; /* WORK_RELOAD: the configuration to reload, under lock */
    /* --metrics: this worker's counters for gathering round `snap_round`
     * (WORK_SNAPSHOT asks for round `snap_want`), under lock */
    metrics_snapshot snap;
    unsigned snap_round, snap_want;
    pthread_mutex_t *lock;
} serve_ctx;

enum { WORK_STATS = 1, WORK_RELOAD = 2, WORK_STOP = 4, WORK_SNAPSHOT = 8 };

static const char *reason_of(unsigned code)
{
    switch (code) {
    case 200:
        return "OK";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 480:
        return "Temporarily Unavailable";
    case 486:
        return "Busy Here";
    case 500:
        return "Server Internal Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 603:
        return "Decline";
    default:
        return "Response";
    }
}

static int append(char *buf, size_t cap, size_t *len, const char *fmt_a, size_t alen, const char *b,
                  size_t blen)
{
    if (*len + alen + blen + 2 >= cap) {
        return -1;
    }
    memcpy(buf + *len, fmt_a, alen);
    *len += alen;
    memcpy(buf + *len, b, blen);
    *len += blen;
    memcpy(buf + *len, "\r\n", 2);
    *len += 2;
    return 0;
}

static int has_tag(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if (v[i] == ';' && strncasecmp((const char *)v + i + 1, "tag=", 4) == 0) {
            return 1;
        }
    }
    return 0;
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

/* One header line: its name matched against the headers a response
 * copies (full and compact forms, case-insensitive). */
enum { H_OTHER, H_VIA, H_FROM, H_TO, H_CALLID, H_CSEQ };

static int header_kind(const uint8_t *name, size_t n)
{
    if (n == 1) {
        switch (name[0] | 0x20) {
        case 'v':
            return H_VIA;
        case 'f':
            return H_FROM;
        case 't':
            return H_TO;
        case 'i':
            return H_CALLID;
        default:
            return H_OTHER;
        }
    }
    if (n == 3 && strncasecmp((const char *)name, "Via", 3) == 0) {
        return H_VIA;
    }
    if (n == 4 && strncasecmp((const char *)name, "From", 4) == 0) {
        return H_FROM;
    }
    if (n == 2 && strncasecmp((const char *)name, "To", 2) == 0) {
        return H_TO;
    }
    if (n == 7 && strncasecmp((const char *)name, "Call-ID", 7) == 0) {
        return H_CALLID;
    }
    if (n == 4 && strncasecmp((const char *)name, "CSeq", 4) == 0) {
        return H_CSEQ;
    }
    return H_OTHER;
}

/* Build the response in one pass over the request's header block; returns
 * its length, or 0 when the request is not to be answered (ACK) or lacks a
 * header a response needs. */
size_t siptls_cli_build_response(const uint8_t *msg, size_t header_len, unsigned code,
                                 const char *reason, char *out, size_t cap);
size_t siptls_cli_build_response(const uint8_t *msg, size_t header_len, unsigned code,
                                 const char *reason, char *out, size_t cap)
{
    size_t sp = 0;
    while (sp < header_len && msg[sp] != ' ') {
        sp++;
    }
    if (sp == 0 || sp == header_len) {
        return 0;
    }
    if (sp == 3 && memcmp(msg, "ACK", 3) == 0) {
        return 0; /* RFC 3261 §17.2.1: an ACK is never answered */
    }
    if (sp == 7 && memcmp(msg, "OPTIONS", 7) == 0) {
        code = 200;
        reason = "OK";
    }
    const uint8_t *val[6] = {NULL};
    size_t vlen[6] = {0};
    char tmp[32];
    int hl = snprintf(tmp, sizeof(tmp), "SIP/2.0 %u ", code);
    size_t rl = strlen(reason);
    if ((size_t)hl + rl + 2 > cap) {
        return 0;
    }
    memcpy(out, tmp, (size_t)hl);
    memcpy(out + hl, reason, rl);
    size_t len = (size_t)hl + rl;
    memcpy(out + len, "\r\n", 2);
    len += 2;
    int vias = 0;
    const uint8_t *nl = memchr(msg, '\n', header_len);
    size_t pos = nl ? (size_t)(nl - msg) + 1 : header_len;
    while (pos < header_len) {
        const uint8_t *line = msg + pos;
        nl = memchr(line, '\n', header_len - pos);
        size_t llen = nl ? (size_t)(nl - line) : header_len - pos;
        pos += llen + 1;
        size_t end = llen;
        if (end > 0 && line[end - 1] == '\r') {
            end--;
        }
        size_t i = 0;
        while (i < end && line[i] != ':' && line[i] != ' ' && line[i] != '\t') {
            i++;
        }
        int kind = header_kind(line, i);
        if (kind == H_OTHER) {
            continue;
        }
        while (i < end && (line[i] == ' ' || line[i] == '\t')) {
            i++;
        }
        if (i >= end || line[i] != ':') {
            continue;
        }
        i++;
        while (i < end && (line[i] == ' ' || line[i] == '\t')) {
            i++;
        }
        size_t ve = end;
        while (ve > i && (line[ve - 1] == ' ' || line[ve - 1] == '\t')) {
            ve--;
        }
        if (kind == H_VIA) {
            /* RFC 3261 §8.2.6.2: every Via, in order */
            if (append(out, cap, &len, "Via: ", 5, (const char *)line + i, ve - i) != 0) {
                return 0;
            }
            vias++;
        } else if (val[kind] == NULL) {
            val[kind] = line + i;
            vlen[kind] = ve - i;
        }
    }
    if (vias == 0 || val[H_FROM] == NULL || val[H_TO] == NULL || val[H_CALLID] == NULL ||
        val[H_CSEQ] == NULL) {
        return 0;
    }
    if (append(out, cap, &len, "From: ", 6, (const char *)val[H_FROM], vlen[H_FROM]) != 0 ||
        append(out, cap, &len, "To: ", 4, (const char *)val[H_TO], vlen[H_TO]) != 0) {
        return 0;
    }
    if (!has_tag(val[H_TO], vlen[H_TO])) {
        /* RFC 3261 §8.2.6.2: "the UAS MUST add a tag to the To header
         * field in the response". Derived from the Call-ID so that a
         * retransmitted request gets the same tag from this stateless UAS. */
        int n = snprintf(tmp, sizeof(tmp), ";tag=%08x", fnv1a(val[H_CALLID], vlen[H_CALLID]));
        if (len + (size_t)n + 2 >= cap) {
            return 0;
        }
        len -= 2;
        memcpy(out + len, tmp, (size_t)n);
        len += (size_t)n;
        memcpy(out + len, "\r\n", 2);
        len += 2;
    }
    if (append(out, cap, &len, "Call-ID: ", 9, (const char *)val[H_CALLID], vlen[H_CALLID]) != 0 ||
        append(out, cap, &len, "CSeq: ", 6, (const char *)val[H_CSEQ], vlen[H_CSEQ]) != 0) {
        return 0;
    }
    static const char tail200[] = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nServer: siptls\r\n"
                                  "Content-Length: 0\r\n\r\n";
    static const char tail[] = "Server: siptls\r\nContent-Length: 0\r\n\r\n";
    const char *t = code == 200 ? tail200 : tail;
    size_t tlen = code == 200 ? sizeof(tail200) - 1 : sizeof(tail) - 1;
    if (len + tlen > cap) {
        return 0;
    }
    memcpy(out + len, t, tlen);
    return len + tlen;
}

static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    serve_ctx *s = user;
    if (!siptls_sipmsg_is_request(m->data, m->len)) {
        return; /* a stateless responder ignores responses */
    }
    char out[8192];
    size_t n = siptls_cli_build_response(m->data, m->header_len, s->reply_code, s->reply_reason,
                                         out, sizeof(out));
    if (n == 0) {
        return;
    }
    int st = siptls_send(e, flow, (const uint8_t *)out, n);
    if (st != SIPTLS_OK) {
        /* The library logs why (rate-limited per flow) and counts it. */
        if (cli_log_level >= SIPTLS_LOG_DEBUG) {
            char line[128];
            snprintf(line, sizeof(line), "flow %llu: reply not sent: %s", (unsigned long long)flow,
                     siptls_strerror(st));
            cli_log(SIPTLS_LOG_DEBUG, line, NULL);
        }
        return;
    }
    s->answered++;
}

static void on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                    void *user)
{
    (void)user;
    char line[768];
    if (cli_log_level < SIPTLS_LOG_DEBUG) {
        /* Per-flow lines only with -v: a server carrying thousands of
         * flows logs nothing per connection by default (as OpenSIPS and
         * Kamailio); the stats line counts them. */
        return;
    }
    if (state == SIPTLS_FLOW_UP) {
        siptls_flow_info info;
        if (siptls_flow_get_info(e, flow, &info) != SIPTLS_OK) {
            return;
        }
        snprintf(line, sizeof(line), "flow %llu up: %s %s %s %s, peer cert: %s%s%s%s",
                 (unsigned long long)flow, siptls_transport_name(info.transport), info.remote_text,
                 info.tls_version, info.cipher,
                 info.peer_cert ? (info.peer_verified ? "verified " : "NOT verified ") : "none",
                 info.peer_cert ? info.peer_subject : "",
                 info.trusted ? ", TRUSTED domain " : ", untrusted",
                 info.trusted ? info.trusted_domain : "");
    } else if (state == SIPTLS_FLOW_MOVED) {
        siptls_flow_info info;
        if (siptls_flow_get_info(e, flow, &info) != SIPTLS_OK) {
            return;
        }
        snprintf(line, sizeof(line), "flow %llu moved: peer now at %s (DTLS connection ID)",
                 (unsigned long long)flow, info.remote_text);
    } else {
        snprintf(line, sizeof(line), "flow %llu down: %s", (unsigned long long)flow,
                 siptls_strerror(reason));
    }
    cli_log(SIPTLS_LOG_DEBUG, line, NULL);
}

static void print_stats(siptls_engine *e, int worker)
{
    siptls_stats s;
    siptls_engine_stats(e, &s);
    /* One fprintf per line: stdio locks the stream for each call, so the
     * workers' lines (they print at once on SIGUSR1) do not interleave. */
    char prefix[32] = "";
    if (worker >= 0) {
        snprintf(prefix, sizeof(prefix), "worker %d ", worker);
    }
    fprintf(
        stderr,
        "%sstats: flows open %llu (tls %llu, dtls %llu), accepted %llu, closed %llu; handshakes ok "
        "%llu (resumed %llu) failed %llu [timeout %llu verify %llu name %llu no-cert %llu tls "
        "%llu io %llu]; msgs in %llu out %llu; bytes in %llu out %llu; pings in %llu pongs out "
        "%llu; drops: framing %llu chunks %llu too-big %llu queue-full %llu send-timeout %llu "
        "idle %llu keepalive %llu limit %llu io %llu resources %llu; dtls cookies %llu bad %llu "
        "rate-limited %llu stun %llu junk %llu bad-records %llu reassembly-lost %llu; reloads "
        "%llu\n",
        prefix, (unsigned long long)s.flows_open, (unsigned long long)s.tls_flows_open,
        (unsigned long long)s.dtls_flows_open, (unsigned long long)s.flows_accepted,
        (unsigned long long)s.flows_closed, (unsigned long long)s.handshakes_ok,
        (unsigned long long)s.handshakes_resumed, (unsigned long long)s.handshakes_failed,
        (unsigned long long)s.hs_fail_timeout, (unsigned long long)s.hs_fail_verify,
        (unsigned long long)s.hs_fail_name, (unsigned long long)s.hs_fail_no_cert,
        (unsigned long long)s.hs_fail_tls, (unsigned long long)s.hs_fail_io,
        (unsigned long long)s.msgs_in, (unsigned long long)s.msgs_out,
        (unsigned long long)s.bytes_in, (unsigned long long)s.bytes_out,
        (unsigned long long)s.pings_in, (unsigned long long)s.pongs_out,
        (unsigned long long)s.drop_framing, (unsigned long long)s.drop_chunks,
        (unsigned long long)s.drop_too_big, (unsigned long long)s.drop_queue_full,
        (unsigned long long)s.drop_send_timeout, (unsigned long long)s.drop_idle,
        (unsigned long long)s.drop_keepalive, (unsigned long long)s.drop_limit,
        (unsigned long long)s.drop_io, (unsigned long long)s.drop_resources,
        (unsigned long long)s.dtls_cookies_sent, (unsigned long long)s.dtls_cookie_bad,
        (unsigned long long)s.dtls_rate_limited, (unsigned long long)s.dtls_stun,
        (unsigned long long)s.dtls_junk, (unsigned long long)s.dtls_bad_records,
        (unsigned long long)s.dtls_reasm_lost, (unsigned long long)s.reloads);
}

/* ---- the configuration serve runs with ----------------------------------- */

/* What the command line asked for, kept so that a reload (SIGHUP) builds
 * the configuration exactly as the start did: the file again, then the
 * same options on top. */
typedef struct serve_opts {
    const char *config_file;
    const char *cert, *key;
    const char *listens[64];
    int n_listens;
    const char *sets[64][2]; /* --ca, --verify-cert, --require-cert, --keylog in order */
    int n_sets;
    int verbose; /* 1 -v, -1 -q */
    long workers;
    /* the in-memory development certificate, once made (reused by reloads) */
    char dev_cert[64], dev_key[64];
    /* the listen URIs as the start built them, before a port 0 became the
     * port the first worker was given */
    char **listen0;
    size_t n_listen0;
    /* the listen URIs the workers use */
    const siptls_config *running;
} serve_opts;

/* The file, then the options; the development certificate when there is no
 * certificate (made at the start, `startup`, and the same one again after).
 * Returns 0, or -1 with the reason printed (at the start) or in `why` (a
 * reload: the caller logs it). */
static int serve_config(serve_opts *o, siptls_config *cfg, int startup, char *why, size_t whylen)
{
    snprintf(why, whylen, "cannot build the configuration");
    if (siptls_config_init(cfg) != SIPTLS_OK) {
        return -1;
    }
    if (o->config_file != NULL) {
        siptls_config_error err;
        if (siptls_config_load_file(cfg, o->config_file, &err) != SIPTLS_OK) {
            if (startup) {
                fprintf(stderr, "siptls: %s\n", err.msg);
            }
            snprintf(why, whylen, "%s", err.msg);
            goto fail;
        }
    }
    for (int i = 0; i < o->n_sets; i++) {
        if (cli_set(cfg, o->sets[i][0], o->sets[i][1]) != 0) {
            goto fail;
        }
    }
    for (int i = 0; i < o->n_listens; i++) {
        if (cli_set(cfg, "listen", o->listens[i]) != 0) {
            goto fail;
        }
    }
    if (cfg->n_listen == 0 && cli_set(cfg, "listen", "tls:127.0.0.1:5061") != 0) {
        goto fail;
    }
    if (o->cert != NULL) {
        /* Without --key the key is read from the --cert file (one PEM with
         * the chain and the key), not from a private_key of the file. */
        if (cli_set(cfg, "certificate", o->cert) != 0 ||
            cli_set(cfg, "private_key", o->key != NULL ? o->key : "") != 0) {
            goto fail;
        }
    } else if (cfg->domains[0].certificate == NULL) {
        if (startup) {
            if (cli_use_devcert(cfg, 1) != 0) {
                goto fail;
            }
            snprintf(o->dev_cert, sizeof(o->dev_cert), "%s", cfg->domains[0].certificate);
            snprintf(o->dev_key, sizeof(o->dev_key), "%s", cfg->domains[0].private_key);
        } else if (o->dev_cert[0] != '\0') {
            if (cli_set(cfg, "certificate", o->dev_cert) != 0 ||
                cli_set(cfg, "private_key", o->dev_key) != 0) {
                goto fail;
            }
        }
    }
    if (o->verbose > 0) {
        cfg->log_level = SIPTLS_LOG_DEBUG;
    } else if (o->verbose < 0) {
        cfg->log_level = SIPTLS_LOG_WARN;
    }
    if (o->workers > 1) {
        /* The workers share each port among themselves, nobody else may. */
        cfg->reuse_port = 1;
    }
    if (!startup && o->running != NULL && cfg->n_listen == o->n_listen0) {
        /* The same listen lines as at the start: say them as the workers
         * use them (a port 0 is the port they were given), so that the
         * reload does not report them as changed. */
        int same = 1;
        for (size_t k = 0; k < cfg->n_listen && same; k++) {
            same = strcmp(cfg->listen[k], o->listen0[k]) == 0;
        }
        for (size_t k = 0; k < cfg->n_listen && same; k++) {
            char *copy = strdup(o->running->listen[k]);
            if (copy == NULL) {
                goto fail;
            }
            free(cfg->listen[k]);
            cfg->listen[k] = copy;
        }
    }
    return 0;
fail:
    siptls_config_cleanup(cfg);
    return -1;
}

/* ---- workers ------------------------------------------------------------- */

static void shared_cfg_release(shared_cfg *sc, pthread_mutex_t *lock)
{
    if (sc == NULL) {
        return;
    }
    pthread_mutex_lock(lock);
    int last = --sc->refs == 0;
    pthread_mutex_unlock(lock);
    if (last) {
        siptls_config_cleanup(&sc->cfg);
        free(sc);
    }
}

static void snapshot_worker(serve_ctx *s);

/* Runs on a worker's own thread: do what the main thread asked. */
static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    serve_ctx *s = w->data;
    pthread_mutex_lock(s->lock);
    int what = s->pending;
    s->pending = 0;
    shared_cfg *reload = s->reload;
    s->reload = NULL;
    pthread_mutex_unlock(s->lock);
    if (reload != NULL) {
        /* The engine logs the outcome: "configuration reloaded", or why
         * it refused and kept what it had. */
        siptls_engine_reload(s->engine, &reload->cfg);
        shared_cfg_release(reload, s->lock);
    }
    if (what & WORK_STATS) {
        print_stats(s->engine, s->index);
    }
    if (what & WORK_SNAPSHOT) {
        snapshot_worker(s);
    }
    if (what & WORK_STOP) {
        siptls_engine_shutdown(s->engine);
        ev_break(loop, EVBREAK_ALL);
    }
}

typedef struct serve_all {
    serve_ctx *w;
    int n;
    pthread_mutex_t lock;
    serve_opts *opts;
    /* --metrics, on the default loop (worker 0's) */
    struct ev_loop *loop0;
    metrics_http *metrics;
    ev_async gathered;   /* a worker has put its snapshot in its slot */
    ev_timer round_time; /* a gathering round that takes too long */
    unsigned round;      /* the current gathering round */
    int round_active;
    double start_time;
    char metrics_url[128];
} serve_all;

/* ---- --metrics: gather every worker's counters, add them up, answer ----- */

#define ROUND_TIMEOUT_S 3.0

static void metrics_answer(serve_all *all, const metrics_snapshot *sum)
{
    size_t len = 0;
    char *text = metrics_render(sum, all->start_time, &len);
    if (text == NULL) {
        metrics_http_fail(all->metrics, "out of memory\n");
        return;
    }
    metrics_http_reply(all->metrics, text, len);
    free(text);
}

/* The round is complete when every slot holds its counters: add up. */
static void round_check(serve_all *all)
{
    metrics_snapshot sum;
    memset(&sum, 0, sizeof(sum));
    int complete = 1, failed = 0;
    pthread_mutex_lock(&all->lock);
    for (int i = 0; i < all->n && complete; i++) {
        complete = all->w[i].snap_round == all->round;
    }
    for (int i = 0; i < all->n && complete && !failed; i++) {
        failed = metrics_snapshot_add(&sum, &all->w[i].snap) != 0;
    }
    pthread_mutex_unlock(&all->lock);
    if (complete) {
        all->round_active = 0;
        ev_timer_stop(all->loop0, &all->round_time);
        if (failed) {
            metrics_http_fail(all->metrics, "out of memory\n");
        } else {
            metrics_answer(all, &sum);
        }
    }
    metrics_snapshot_free(&sum);
}

/* On a worker's thread: its counters into its slot, then tell loop 0. */
static void snapshot_worker(serve_ctx *s)
{
    metrics_snapshot snap;
    int ok = metrics_snapshot_take(s->engine, &snap) == 0;
    pthread_mutex_lock(s->lock);
    if (ok) {
        metrics_snapshot_free(&s->snap);
        s->snap = snap;
        s->snap_round = s->snap_want;
    }
    pthread_mutex_unlock(s->lock);
    if (s->index > 0) {
        ev_async_send(s->all->loop0, &s->all->gathered);
    }
}

static void on_gathered(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    serve_all *all = w->data;
    if (all->round_active) {
        round_check(all);
    }
}

static void on_round_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    serve_all *all = w->data;
    all->round_active = 0;
    metrics_http_fail(all->metrics, "the workers did not answer in time\n");
}

/* A scrape waits (on loop 0): start a gathering round unless one is under
 * way (then it gets that round's answer). Worker 0 runs this loop: its
 * counters are read here; the others are asked through their loops. */
static void on_metrics_wanted(metrics_http *m, void *user)
{
    (void)m;
    serve_all *all = user;
    if (all->round_active) {
        return;
    }
    all->round_active = 1;
    all->round++;
    ev_timer_set(&all->round_time, ROUND_TIMEOUT_S, 0.0);
    ev_timer_start(all->loop0, &all->round_time);
    for (int i = 1; i < all->n; i++) {
        pthread_mutex_lock(&all->lock);
        all->w[i].snap_want = all->round;
        all->w[i].pending |= WORK_SNAPSHOT;
        pthread_mutex_unlock(&all->lock);
        ev_async_send(all->w[i].loop, &all->w[i].wake);
    }
    pthread_mutex_lock(&all->lock);
    all->w[0].snap_want = all->round;
    pthread_mutex_unlock(&all->lock);
    snapshot_worker(&all->w[0]);
    round_check(all);
}

static void post(serve_all *all, int what)
{
    for (int i = 0; i < all->n; i++) {
        pthread_mutex_lock(&all->lock);
        all->w[i].pending |= what;
        pthread_mutex_unlock(&all->lock);
        ev_async_send(all->w[i].loop, &all->w[i].wake);
    }
}

/* SIGHUP: read the configuration file again, build the configuration as
 * the start did, check that it loads (every certificate, key, CA, CRL),
 * and hand it to every worker. A file that does not load or check is
 * reported and the configuration in use stays. */
static void reload_all(serve_all *all)
{
    char why[300], line[400];
    shared_cfg *sc = calloc(1, sizeof(*sc));
    snprintf(why, sizeof(why), "out of memory");
    if (sc == NULL || serve_config(all->opts, &sc->cfg, 0, why, sizeof(why)) != 0) {
        free(sc);
        snprintf(line, sizeof(line), "reload refused: %s: keeping the configuration in use", why);
        cli_log(SIPTLS_LOG_ERR, line, NULL);
        return;
    }
    siptls_config_error err;
    siptls_callbacks cb = {.log = cli_log};
    if (siptls_config_check(&sc->cfg, &err, &cb, NULL) != SIPTLS_OK) {
        snprintf(line, sizeof(line), "reload refused: %s: keeping the configuration in use",
                 err.msg);
        cli_log(SIPTLS_LOG_ERR, line, NULL);
        siptls_config_cleanup(&sc->cfg);
        free(sc);
        return;
    }
    sc->refs = 1; /* ours, until every worker has its own */
    for (int i = 0; i < all->n; i++) {
        pthread_mutex_lock(&all->lock);
        shared_cfg *older = all->w[i].reload;
        all->w[i].reload = sc;
        sc->refs++;
        pthread_mutex_unlock(&all->lock);
        /* a reload the worker had not started yet: this one replaces it */
        shared_cfg_release(older, &all->lock);
        ev_async_send(all->w[i].loop, &all->w[i].wake);
    }
    shared_cfg_release(sc, &all->lock);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    (void)loop;
    serve_all *all = w->data;
    if (w->signum == SIGHUP) {
        reload_all(all);
    } else if (w->signum == SIGUSR1) {
        post(all, WORK_STATS);
    } else {
        cli_log(SIPTLS_LOG_INFO, "shutting down: close_notify to every flow", NULL);
        /* every worker, this one (worker 0, on the default loop) too, shuts
         * its engine down from its own loop: close_notify to every flow,
         * then ends its loop (breaking this loop here ended worker 0 before
         * it had closed its flows) */
        post(all, WORK_STOP);
    }
}

static void on_stats_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    post(w->data, WORK_STATS);
}

static void *worker_main(void *arg)
{
    serve_ctx *s = arg;
    ev_run(s->loop, 0);
    /* The engine is freed by the main thread, but the ECC caches of the
     * handshakes live in this thread. */
    siptls_thread_cleanup();
    return NULL;
}

static void serve_usage(FILE *out)
{
    fprintf(
        out,
        "usage: siptls serve [options]\n"
        "  -c, --config FILE        configuration file (key = value, or OpenSIPS modparam lines)\n"
        "  -l, --listen URI         listen on URI (tls:ADDR[:PORT], dtls:ADDR[:PORT]); "
        "repeatable;\n"
        "                           default tls:127.0.0.1:5061 when neither this nor the file "
        "gives one\n"
        "      --cert FILE          server certificate chain (PEM); without it an in-memory\n"
        "                           self-signed development certificate is generated\n"
        "      --key FILE           private key of --cert (PEM); without it the key is read\n"
        "                           from the --cert file (one PEM with chain and key)\n"
        "      --ca FILE            CA list for client certificates\n"
        "      --verify-cert        ask clients for a certificate\n"
        "      --require-cert       refuse clients without a valid certificate\n"
        "      --keylog FILE        write TLS secrets in NSS key log format (Wireshark)\n"
        "      --reply CODE         final response to requests other than OPTIONS (default 501)\n"
        "      --stats-interval S   print statistics every S seconds (also on SIGUSR1)\n"
        "      --metrics ADDR:PORT  serve the counters of every worker, added up, to Prometheus\n"
        "                           at http://ADDR:PORT/metrics (plain HTTP; port 0: any)\n"
        "  -w, --workers N          N engines on N threads sharing the listen ports\n"
        "                           (SO_REUSEPORT: the kernel spreads connections); default 1\n"
        "  -v, --verbose            debug logging\n"
        "  -q, --quiet              warnings and errors only (no per-flow lines)\n"
        "  -h, --help               this text\n"
        "signals: SIGHUP reads the configuration file again and reloads the TLS domains,\n"
        "         certificates and CAs; SIGUSR1 prints statistics;\n"
        "         SIGINT/SIGTERM close every flow with close_notify and exit\n");
}

/* `text` is a whole decimal number in lo..hi (no sign, no trailing text). */
static int whole_number(const char *text, unsigned long lo, unsigned long hi, unsigned long *out)
{
    if (text[0] < '0' || text[0] > '9') {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (*end != '\0' || errno != 0 || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Keep the listen URIs as built (before port 0 is rewritten). */
static int keep_listen0(serve_opts *o, const siptls_config *cfg)
{
    o->listen0 = calloc(cfg->n_listen + 1, sizeof(*o->listen0));
    if (o->listen0 == NULL) {
        return -1;
    }
    for (size_t k = 0; k < cfg->n_listen; k++) {
        o->listen0[k] = strdup(cfg->listen[k]);
        if (o->listen0[k] == NULL) {
            return -1;
        }
        o->n_listen0 = k + 1;
    }
    return 0;
}

static void free_listen0(serve_opts *o)
{
    for (size_t k = 0; k < o->n_listen0; k++) {
        free(o->listen0[k]);
    }
    free(o->listen0);
    o->listen0 = NULL;
    o->n_listen0 = 0;
}

int siptls_cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"listen", required_argument, NULL, 'l'},
        {"cert", required_argument, NULL, 'C'},    {"key", required_argument, NULL, 'K'},
        {"ca", required_argument, NULL, 'A'},      {"verify-cert", no_argument, NULL, 'V'},
        {"require-cert", no_argument, NULL, 'R'},  {"keylog", required_argument, NULL, 'k'},
        {"reply", required_argument, NULL, 'r'},   {"stats-interval", required_argument, NULL, 's'},
        {"verbose", no_argument, NULL, 'v'},       {"help", no_argument, NULL, 'h'},
        {"workers", required_argument, NULL, 'w'}, {"quiet", no_argument, NULL, 'q'},
        {"metrics", required_argument, NULL, 'M'}, {NULL, 0, NULL, 0}};
    siptls_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    serve_opts o;
    memset(&o, 0, sizeof(o));
    o.workers = 1;
    unsigned reply = 501;
    double stats_interval = 0;
    const char *metrics_addr = NULL;
    unsigned long num = 0;
    int c, rc = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:vhw:q", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o.config_file = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return 0;
        case '?':
            serve_usage(stderr);
            return 2;
        case 'l':
            if (o.n_listens == 64) {
                fprintf(stderr, "siptls serve: at most 64 --listen options\n");
                return 2;
            }
            o.listens[o.n_listens++] = optarg;
            break;
        case 'C':
            o.cert = optarg;
            break;
        case 'K':
            o.key = optarg;
            break;
        case 'A':
            o.sets[o.n_sets][0] = "ca_list";
            o.sets[o.n_sets++][1] = optarg;
            break;
        case 'V':
            o.sets[o.n_sets][0] = "verify_cert";
            o.sets[o.n_sets++][1] = "[server:default]1";
            break;
        case 'R':
            o.sets[o.n_sets][0] = "verify_cert";
            o.sets[o.n_sets++][1] = "[server:default]1";
            o.sets[o.n_sets][0] = "require_cert";
            o.sets[o.n_sets++][1] = "[server:default]1";
            break;
        case 'k':
            o.sets[o.n_sets][0] = "tls_keylog_file";
            o.sets[o.n_sets++][1] = optarg;
            break;
        case 'r':
            if (whole_number(optarg, 300, 699, &num) != 0) {
                fprintf(stderr,
                        "siptls serve: --reply '%s': a final error response code "
                        "300..699\n",
                        optarg);
                return 2;
            }
            reply = (unsigned)num;
            break;
        case 's': {
            char *end = NULL;
            errno = 0;
            stats_interval = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || errno != 0 || !(stats_interval >= 0) ||
                stats_interval > 86400 * 365) {
                fprintf(stderr,
                        "siptls serve: --stats-interval '%s': seconds, 0 or more "
                        "(0 = never)\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'M': {
            char why_m[200];
            if (metrics_addr_check(optarg, why_m, sizeof(why_m)) != 0) {
                fprintf(stderr, "siptls serve: --metrics %s\n", why_m);
                return 2;
            }
            metrics_addr = optarg;
            break;
        }
        case 'v':
            o.verbose = 1;
            break;
        case 'q':
            o.verbose = -1;
            break;
        case 'w':
            if (whole_number(optarg, 1, 64, &num) != 0) {
                fprintf(stderr, "siptls serve: --workers '%s': a number of engines 1..64\n",
                        optarg);
                return 2;
            }
            o.workers = (long)num;
            break;
        default:
            break;
        }
        if (o.n_sets > 60) {
            fprintf(stderr, "siptls serve: too many certificate options\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "siptls serve: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o.key != NULL && o.cert == NULL) {
        fprintf(stderr, "siptls serve: --key needs --cert\n");
        return 2;
    }
    char why[300];
    if (serve_config(&o, &cfg, 1, why, sizeof(why)) != 0) {
        return 1;
    }
    /* A name that does not resolve is reported with the resolver's own
     * message, before any engine starts. */
    if (cli_resolve_listen(&cfg, "siptls serve") != 0 || keep_listen0(&o, &cfg) != 0) {
        goto out;
    }
    cli_log_level = cfg.log_level;
    o.running = &cfg;
    long workers = o.workers;
    signal(SIGPIPE, SIG_IGN);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    serve_all all;
    memset(&all, 0, sizeof(all));
    all.w = calloc((size_t)workers, sizeof(serve_ctx));
    all.n = (int)workers;
    pthread_mutex_init(&all.lock, NULL);
    all.opts = &o;
    if (all.w == NULL) {
        goto out;
    }
    all.loop0 = loop;
    all.start_time = (double)time(NULL);
    ev_async_init(&all.gathered, on_gathered);
    all.gathered.data = &all;
    ev_timer_init(&all.round_time, on_round_timeout, ROUND_TIMEOUT_S, 0.0);
    all.round_time.data = &all;
    siptls_callbacks cb = {on_message, on_flow, NULL, cli_log};
    int started = 0;
    for (int i = 0; i < workers; i++) {
        serve_ctx *w = &all.w[i];
        w->all = &all;
        w->reply_code = reply;
        w->reply_reason = reason_of(reply);
        w->index = workers > 1 ? i : -1;
        w->lock = &all.lock;
        w->loop = i == 0 ? loop : ev_loop_new(EVFLAG_AUTO);
        int st = w->loop ? siptls_engine_new(&w->engine, w->loop, &cfg, &cb, w) : SIPTLS_ERR_NOMEM;
        if (st != SIPTLS_OK) {
            fprintf(stderr, "siptls serve: cannot start: %s\n", siptls_strerror(st));
            if (i > 0 && w->loop != NULL) {
                ev_loop_destroy(w->loop);
            }
            break;
        }
        ev_async_init(&w->wake, on_wake);
        w->wake.data = w;
        ev_async_start(w->loop, &w->wake);
        started++;
        if (i == 0) {
            /* Port 0 asked the kernel for a port: the other workers share
             * the one it gave (SO_REUSEPORT), so rewrite the URIs; with
             * one worker too, as a SIGHUP compares the file's listen lines
             * with these (the engine's own copy says the bound port, and
             * an unchanged "port 0" line was reported as changed). */
            for (size_t k = 0; k < cfg.n_listen; k++) {
                siptls_uri u;
                char text[SIPTLS_URI_HOST_MAX + 32];
                if (siptls_config_listen_uri(&cfg, k, &u) == SIPTLS_OK) {
                    u.port = (uint16_t)siptls_listener_port(w->engine, (int)k);
                    siptls_uri_format(&u, text, sizeof(text));
                    free(cfg.listen[k]);
                    cfg.listen[k] = strdup(text);
                }
            }
        }
    }
    if (started == workers && metrics_addr != NULL) {
        char bound[96];
        if (metrics_http_new(&all.metrics, loop, metrics_addr, on_metrics_wanted, &all, bound,
                             sizeof(bound), why, sizeof(why)) != 0) {
            fprintf(stderr, "siptls serve: --metrics %s\n", why);
            started = -started; /* free what started, exit 1 */
        } else {
            ev_async_start(loop, &all.gathered);
            snprintf(all.metrics_url, sizeof(all.metrics_url), "http://%s/metrics", bound);
        }
    }
    if (started < 0) {
        started = -started;
    } else if (started == workers) {
        for (int i = 0; i < siptls_listener_count(all.w[0].engine); i++) {
            printf("siptls serve: ready on %s port %u\n", cfg.listen[i],
                   siptls_listener_port(all.w[0].engine, i));
        }
        if (workers > 1) {
            printf("siptls serve: %ld workers (one engine per thread, SO_REUSEPORT)\n", workers);
        }
        if (all.metrics != NULL) {
            printf("siptls serve: metrics on %s\n", all.metrics_url);
        }
        /* The default cipher order is decided at run time (this CPU). */
        const char *order = strstr(siptls_version_text(), "cipher order: ");
        if (order != NULL) {
            printf("siptls serve: %.*s\n", (int)strcspn(order, "\n"), order);
        }
        /* the URI a client can use: the bound port, an address to reach */
        siptls_uri try_uri;
        char try_text[SIPTLS_URI_HOST_MAX + 32];
        int have_try = siptls_config_listen_uri(&cfg, 0, &try_uri) == SIPTLS_OK;
        if (have_try) {
            try_uri.port = (uint16_t)siptls_listener_port(all.w[0].engine, 0);
            if (try_uri.host_kind == SIPTLS_HOST_ANY) {
                try_uri.host_kind = SIPTLS_HOST_IPV4;
                snprintf(try_uri.host, sizeof(try_uri.host), "127.0.0.1");
            }
        }
        if (!have_try || siptls_uri_format(&try_uri, try_text, sizeof(try_text)) < 0) {
            snprintf(try_text, sizeof(try_text), "%s", cfg.listen[0]);
        }
        printf("siptls serve: try: siptls ping %s --insecure\n", try_text);
        fflush(stdout);
        ev_signal sigs[5];
        const int signums[5] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, 0};
        for (int i = 0; signums[i] != 0; i++) {
            ev_signal_init(&sigs[i], on_signal, signums[i]);
            sigs[i].data = &all;
            ev_signal_start(loop, &sigs[i]);
        }
        ev_timer stats_timer;
        ev_timer_init(&stats_timer, on_stats_timer, stats_interval, stats_interval);
        stats_timer.data = &all;
        if (stats_interval > 0) {
            ev_timer_start(loop, &stats_timer);
        }
        for (int i = 0; i < workers && workers > 1; i++) {
            pthread_create(&all.w[i].thread, NULL, worker_main, &all.w[i]);
        }
        if (workers == 1) {
            ev_run(loop, 0);
        } else {
            /* Signals are delivered to the default loop, which worker 0
             * runs on its thread; wait for every worker to end. */
            for (int i = 0; i < workers; i++) {
                pthread_join(all.w[i].thread, NULL);
            }
        }
        for (int i = 0; signums[i] != 0; i++) {
            ev_signal_stop(loop, &sigs[i]);
        }
        ev_timer_stop(loop, &stats_timer);
        rc = 0;
    }
    metrics_http_free(all.metrics);
    ev_async_stop(loop, &all.gathered);
    ev_timer_stop(loop, &all.round_time);
    for (int i = 0; i < started; i++) {
        print_stats(all.w[i].engine, all.w[i].index);
        ev_async_stop(all.w[i].loop, &all.w[i].wake);
        siptls_engine_free(all.w[i].engine);
        if (i > 0) {
            ev_loop_destroy(all.w[i].loop);
        }
        shared_cfg_release(all.w[i].reload, &all.lock);
        metrics_snapshot_free(&all.w[i].snap);
    }
    free(all.w);
    pthread_mutex_destroy(&all.lock);
out:
    free_listen0(&o);
    siptls_config_cleanup(&cfg);
    return rc;
}
