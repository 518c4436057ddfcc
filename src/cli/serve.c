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

#include "cli.h"

typedef struct serve_ctx {
    siptls_engine *engine;
    unsigned reply_code;
    const char *reply_reason;
    uint64_t answered;
    /* --workers: one engine per thread, each on its own loop */
    struct ev_loop *loop;
    pthread_t thread;
    ev_async wake;
    int index;
    int pending; /* what the main thread asked for (WORK_*), under lock */
    pthread_mutex_t *lock;
} serve_ctx;

enum { WORK_STATS = 1, WORK_RELOAD = 2, WORK_STOP = 4 };

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
    if (worker >= 0) {
        fprintf(stderr, "worker %d ", worker);
    }
    fprintf(
        stderr,
        "stats: flows open %llu (tls %llu, dtls %llu), accepted %llu, closed %llu; handshakes ok "
        "%llu (resumed %llu) failed %llu [timeout %llu verify %llu name %llu no-cert %llu tls "
        "%llu io %llu]; msgs in %llu out %llu; bytes in %llu out %llu; pings in %llu pongs out "
        "%llu; drops: framing %llu chunks %llu too-big %llu queue-full %llu send-timeout %llu "
        "idle %llu keepalive %llu limit %llu io %llu resources %llu; dtls cookies %llu bad %llu "
        "rate-limited %llu stun %llu junk %llu bad-records %llu reassembly-lost %llu; reloads "
        "%llu\n",
        (unsigned long long)s.flows_open, (unsigned long long)s.tls_flows_open,
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

/* Runs on a worker's own thread: do what the main thread asked. */
static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    serve_ctx *s = w->data;
    pthread_mutex_lock(s->lock);
    int what = s->pending;
    s->pending = 0;
    pthread_mutex_unlock(s->lock);
    if (what & WORK_RELOAD) {
        siptls_engine_reload_certs(s->engine);
    }
    if (what & WORK_STATS) {
        print_stats(s->engine, s->index);
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
} serve_all;

static void post(serve_all *all, int what)
{
    for (int i = 0; i < all->n; i++) {
        pthread_mutex_lock(&all->lock);
        all->w[i].pending |= what;
        pthread_mutex_unlock(&all->lock);
        ev_async_send(all->w[i].loop, &all->w[i].wake);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    serve_all *all = w->data;
    if (w->signum == SIGHUP) {
        post(all, WORK_RELOAD);
    } else if (w->signum == SIGUSR1) {
        post(all, WORK_STATS);
    } else {
        cli_log(SIPTLS_LOG_INFO, "shutting down: close_notify to every flow", NULL);
        post(all, WORK_STOP);
        if (all->n > 1) {
            ev_break(loop, EVBREAK_ALL);
        }
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
        "  -w, --workers N          N engines on N threads sharing the listen ports\n"
        "                           (SO_REUSEPORT: the kernel spreads connections); default 1\n"
        "  -v, --verbose            debug logging\n"
        "  -q, --quiet              warnings and errors only (no per-flow lines)\n"
        "  -h, --help               this text\n"
        "signals: SIGHUP reloads certificates, SIGUSR1 prints statistics,\n"
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

int siptls_cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"cert", required_argument, NULL, 'C'},
                                         {"key", required_argument, NULL, 'K'},
                                         {"ca", required_argument, NULL, 'A'},
                                         {"verify-cert", no_argument, NULL, 'V'},
                                         {"require-cert", no_argument, NULL, 'R'},
                                         {"keylog", required_argument, NULL, 'k'},
                                         {"reply", required_argument, NULL, 'r'},
                                         {"stats-interval", required_argument, NULL, 's'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    siptls_config cfg;
    if (siptls_config_init(&cfg) != SIPTLS_OK) {
        return 1;
    }
    const char *config_file = NULL, *cert = NULL, *key = NULL;
    const char *listens[64];
    int n_listens = 0, verbose = 0;
    unsigned reply = 501;
    long workers = 1;
    double stats_interval = 0;
    unsigned long num = 0;
    int c, rc = 1;
    /* Two passes: the file first, then the command line on top of it. */
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:vhw:q", opts, NULL)) != -1) {
        if (c == 'c') {
            config_file = optarg;
        } else if (c == 'h') {
            serve_usage(stdout);
            siptls_config_cleanup(&cfg);
            return 0;
        } else if (c == '?') {
            serve_usage(stderr);
            siptls_config_cleanup(&cfg);
            return 2;
        }
    }
    if (config_file != NULL) {
        siptls_config_error err;
        if (siptls_config_load_file(&cfg, config_file, &err) != SIPTLS_OK) {
            fprintf(stderr, "siptls: %s\n", err.msg);
            goto out;
        }
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:vhw:q", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'l':
            if (n_listens == 64) {
                fprintf(stderr, "siptls serve: at most 64 --listen options\n");
                rc = 2;
                goto out;
            }
            listens[n_listens++] = optarg;
            break;
        case 'C':
            cert = optarg;
            break;
        case 'K':
            key = optarg;
            break;
        case 'A':
            bad = cli_set(&cfg, "ca_list", optarg);
            break;
        case 'V':
            bad = cli_set(&cfg, "verify_cert", "[server:default]1");
            break;
        case 'R':
            bad = cli_set(&cfg, "verify_cert", "[server:default]1") ||
                  cli_set(&cfg, "require_cert", "[server:default]1");
            break;
        case 'k':
            bad = cli_set(&cfg, "tls_keylog_file", optarg);
            break;
        case 'r':
            if (whole_number(optarg, 300, 699, &num) != 0) {
                fprintf(stderr,
                        "siptls serve: --reply '%s': a final error response code "
                        "300..699\n",
                        optarg);
                rc = 2;
                goto out;
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
                rc = 2;
                goto out;
            }
            break;
        }
        case 'v':
            verbose = 1;
            break;
        case 'q':
            verbose = -1;
            break;
        case 'w':
            if (whole_number(optarg, 1, 64, &num) != 0) {
                fprintf(stderr, "siptls serve: --workers '%s': a number of engines 1..64\n",
                        optarg);
                rc = 2;
                goto out;
            }
            workers = (long)num;
            break;
        default:
            break;
        }
        if (bad) {
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "siptls serve: unexpected argument '%s'\n", argv[optind]);
        rc = 2;
        goto out;
    }
    for (int i = 0; i < n_listens; i++) {
        if (cli_set(&cfg, "listen", listens[i]) != 0) {
            goto out;
        }
    }
    if (cfg.n_listen == 0 && cli_set(&cfg, "listen", "tls:127.0.0.1:5061") != 0) {
        goto out;
    }
    /* A name that does not resolve is reported with the resolver's own
     * message, before any engine starts. */
    if (cli_resolve_listen(&cfg, "siptls serve") != 0) {
        goto out;
    }
    if (key != NULL && cert == NULL) {
        fprintf(stderr, "siptls serve: --key needs --cert\n");
        rc = 2;
        goto out;
    }
    if (cert != NULL) {
        /* Without --key the key is read from the --cert file (one PEM with
         * the chain and the key), not from a private_key of the file. */
        if (cli_set(&cfg, "certificate", cert) != 0 ||
            cli_set(&cfg, "private_key", key != NULL ? key : "") != 0) {
            goto out;
        }
    } else if (cfg.domains[0].certificate == NULL && cli_use_devcert(&cfg, 1) != 0) {
        goto out;
    }
    if (verbose > 0) {
        cfg.log_level = SIPTLS_LOG_DEBUG;
    } else if (verbose < 0) {
        cfg.log_level = SIPTLS_LOG_WARN;
    }
    cli_log_level = cfg.log_level;
    if (workers > 1) {
        /* The workers share each port among themselves, nobody else may. */
        cfg.reuse_port = 1;
    }
    signal(SIGPIPE, SIG_IGN);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    serve_all all = {calloc((size_t)workers, sizeof(serve_ctx)), (int)workers,
                     PTHREAD_MUTEX_INITIALIZER};
    if (all.w == NULL) {
        goto out;
    }
    siptls_callbacks cb = {on_message, on_flow, NULL, cli_log};
    int started = 0;
    for (int i = 0; i < workers; i++) {
        serve_ctx *w = &all.w[i];
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
             * the one it gave (SO_REUSEPORT), so rewrite the URIs. */
            for (size_t k = 0; k < cfg.n_listen && workers > 1; k++) {
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
    if (started == workers) {
        for (int i = 0; i < siptls_listener_count(all.w[0].engine); i++) {
            printf("siptls serve: ready on %s port %u\n", cfg.listen[i],
                   siptls_listener_port(all.w[0].engine, i));
        }
        if (workers > 1) {
            printf("siptls serve: %ld workers (one engine per thread, SO_REUSEPORT)\n", workers);
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
    for (int i = 0; i < started; i++) {
        print_stats(all.w[i].engine, all.w[i].index);
        ev_async_stop(all.w[i].loop, &all.w[i].wake);
        siptls_engine_free(all.w[i].engine);
        if (i > 0) {
            ev_loop_destroy(all.w[i].loop);
        }
    }
    free(all.w);
out:
    siptls_config_cleanup(&cfg);
    return rc;
}
