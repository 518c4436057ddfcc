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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "bench.h"

/* Handshakes in progress at once while the msgs mode opens its connections
 * (more would only make them time out on a busy server). */
#define MSGS_OPEN_PARALLEL 100
/* Default parallel handshakes while the idle mode opens its connections. */
#define IDLE_OPEN_PARALLEL 64
/* Default per-connection in-flight cap in open-loop (--rate) mode. */
#define RATE_WINDOW 32

const char *const bench_mode_names[] = {"msgs", "handshakes", "resume", "idle"};

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
        "                        resume: the same with session resumption (first per connection "
        "full)\n"
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

/* ------------------------------------------------------------------------ */
/* the command, step by step                                                */
/* ------------------------------------------------------------------------ */

/* Options that shape the engine's configuration rather than the run. */
typedef struct bench_opts {
    const char *ca, *cert, *key, *config_file, *tls, *message;
    int insecure, verbose, window_given;
} bench_opts;

/* The command line into `b` (its defaults first) and `o`. Returns 1 to
 * run, 0 after --help, -1 on a usage error (printed). */
static int parse_options(bench *b, bench_opts *o, int argc, char **argv)
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
    b->conns = 1;
    b->timeout = 5.0;
    b->srv_rss0 = b->srv_rss1 = -1;
    b->duration = -1;
    memset(o, 0, sizeof(*o));
    int c;
    uint64_t u = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:d:n:r:C:w:kc:vh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm':
            b->mode = -1;
            for (int k = 0; k < 4; k++) {
                if (strcmp(optarg, bench_mode_names[k]) == 0) {
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
            o->window_given = 1;
            break;
        case 'W':
            bad = parse_double(optarg, &b->warmup) != 0;
            break;
        case 'T':
            bad = parse_double(optarg, &b->timeout) != 0 || b->timeout <= 0;
            break;
        case 'M':
            o->message = optarg;
            break;
        case 'V':
            o->tls = optarg;
            bad = strcmp(o->tls, "1.2") != 0 && strcmp(o->tls, "1.3") != 0;
            break;
        case 'A':
            o->ca = optarg;
            break;
        case 'k':
            o->insecure = 1;
            break;
        case 'E':
            o->cert = optarg;
            break;
        case 'K':
            o->key = optarg;
            break;
        case 'c':
            o->config_file = optarg;
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
            o->verbose = 1;
            break;
        case 'h':
            bench_usage(stdout);
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
            return -1;
        }
    }
    if (optind != argc - 1) {
        bench_usage(stderr);
        return -1;
    }
    b->uri = argv[optind];
    return 1;
}

/* What the options mean together: the URI, combinations that make no
 * sense, the defaults that depend on the mode, the --message file.
 * Returns 0, or -1 after printing why (a usage error). */
static int check_options(bench *b, const bench_opts *o)
{
    siptls_uri uri;
    int st = siptls_uri_parse(b->uri, 5061, 5061, 0, &uri);
    if (st != SIPTLS_OK || uri.host_kind == SIPTLS_HOST_ANY) {
        fprintf(stderr, "siptls bench: '%s': %s\n", b->uri,
                siptls_strerror(st ? st : SIPTLS_ERR_URI_ADDR));
        return -1;
    }
    b->dtls = uri.transport == SIPTLS_TRANSPORT_DTLS;
    snprintf(b->host, sizeof(b->host), uri.host_kind == SIPTLS_HOST_IPV6 ? "[%s]" : "%s", uri.host);
    if (o->key != NULL && o->cert == NULL) {
        fprintf(stderr, "siptls bench: --key needs --cert\n");
        return -1;
    }
    if (b->dtls && o->tls != NULL && strcmp(o->tls, "1.3") == 0 &&
        strstr(siptls_version_text(), "DTLSv1.3") == NULL) {
        fprintf(stderr, "siptls bench: DTLS is 1.2 only in this build (its wolfSSL has no DTLS "
                        "1.3; --tls 1.3 is for tls: URIs here)\n");
        return -1;
    }
    if (b->mode == MODE_IDLE && (b->rate > 0 || b->count > 0 || o->message != NULL)) {
        fprintf(stderr,
                "siptls bench: --rate, --count and --message do not apply to --mode idle\n");
        return -1;
    }
    if (b->duration < 0 && (b->count == 0 || b->mode == MODE_IDLE)) {
        b->duration = 10.0;
    }
    if (b->duration < 0) {
        b->duration = 0; /* count only */
    }
    if (!o->window_given) {
        b->window = b->mode == MODE_IDLE ? IDLE_OPEN_PARALLEL : (b->rate > 0 ? RATE_WINDOW : 1);
    }
    if (o->message != NULL && load_message(b, o->message) != 0) {
        return -1;
    }
    b->open_parallel =
        b->mode == MODE_MSGS ? MSGS_OPEN_PARALLEL : (b->mode == MODE_IDLE ? b->window : b->conns);
    b->ring = b->mode == MODE_MSGS ? b->window : 1;
    return 0;
}

/* The engine's configuration: the defaults, the --config file, the TLS
 * options, and the limits a load tool needs. Returns 0 (the caller owns
 * *out), 1 out of memory, 2 a bad file or TLS option (printed). */
static int make_config(const bench *b, const bench_opts *o, siptls_config *out)
{
    siptls_config cfg;
    if (siptls_config_init(&cfg) != SIPTLS_OK) {
        return 1;
    }
    if (o->config_file != NULL) {
        siptls_config_error err;
        if (siptls_config_load_file(&cfg, o->config_file, &err) != SIPTLS_OK) {
            fprintf(stderr, "siptls: %s\n", err.msg);
            siptls_config_cleanup(&cfg);
            return 2;
        }
        cli_drop_listen(&cfg); /* a client: never bind the file's listeners */
    }
    if (cli_client_tls(&cfg, o->ca, o->insecure, o->cert, o->key, o->tls) != 0) {
        siptls_config_cleanup(&cfg);
        return 2;
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
    cfg.log_level = o->verbose ? SIPTLS_LOG_DEBUG : SIPTLS_LOG_WARN;
    cli_log_level = cfg.log_level;
    *out = cfg;
    return 0;
}

/* Descriptors and memory for the connections and their requests. Returns
 * 0, or -1 out of memory (printed). */
static int alloc_state(bench *b)
{
    raise_nofile((rlim_t)b->conns + 64);

    b->slots = calloc(b->conns, sizeof(*b->slots));
    b->reqs = calloc((size_t)b->conns * b->ring, sizeof(*b->reqs));
    b->free_stack = calloc(b->conns, sizeof(*b->free_stack));
    b->lat.b = calloc(HIST_BUCKETS, sizeof(uint64_t));
    b->lat_hs.b = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (b->slots == NULL || b->reqs == NULL || b->free_stack == NULL || b->lat.b == NULL ||
        b->lat_hs.b == NULL || bench_flowmap_init(&b->map, b->conns) != 0) {
        fprintf(stderr, "siptls bench: out of memory\n");
        return -1;
    }
    /* Slot 0 first: the stack pops from the end. */
    for (uint32_t i = 0; i < b->conns; i++) {
        b->free_stack[i] = b->conns - 1 - i;
    }
    b->n_free = b->conns;
    return 0;
}

/* The loop and a client engine on it. Returns 0, or -1 (printed). */
static int start_engine(bench *b, const siptls_config *cfg, int verbose)
{
    signal(SIGPIPE, SIG_IGN);
    b->loop = ev_default_loop(EVFLAG_AUTO);
    /* No log callback unless verbose: the engine then formats only the
     * lines it prints, which keeps the load generator cheap. */
    siptls_callbacks cb = {bench_on_message, bench_on_flow, NULL, verbose ? cli_log : NULL};
    int st = siptls_engine_new(&b->engine, b->loop, cfg, &cb, b);
    if (st != SIPTLS_OK) {
        fprintf(stderr, "siptls bench: %s\n", siptls_strerror(st));
        return -1;
    }
    return 0;
}

/* The clock starts; the server's memory and CPU before the run. Returns
 * 0, or -1 when /proc cannot be read (printed; a usage error). */
static int take_baseline(bench *b)
{
    b->progress = !b->json && isatty(STDOUT_FILENO);
    double now = cli_now();
    b->run_id = (uint32_t)((uint64_t)(now * 1e6) ^ ((uint64_t)getpid() << 16));
    b->t_start = now;
    b->t_next_progress = now + 1.0;
    b->srv_cpu0 = -1;
    if (b->rss_pid > 0) {
        b->srv_rss0 = bench_proc_rss_kib(b->rss_pid);
        if (b->srv_rss0 < 0) {
            fprintf(stderr, "siptls bench: cannot read /proc/%d/status\n", (int)b->rss_pid);
            return -1;
        }
    }
    if (b->n_server_pids > 0 && bench_proc_servers_cpu_s(b) < 0) {
        fprintf(stderr, "siptls bench: cannot read /proc/PID/stat of --server-pid\n");
        return -1;
    }
    b->own_rss0 = bench_proc_rss_kib(0);
    return 0;
}

static void print_report(const bench *b)
{
    if (b->progress) {
        printf("\r\033[K");
    }
    if (b->json) {
        bench_report_json(b, stdout);
    } else {
        bench_report_text(b, stdout);
    }
    fflush(stdout);
}

static void free_state(bench *b)
{
    free(b->slots);
    free(b->reqs);
    free(b->free_stack);
    free(b->lat.b);
    free(b->lat_hs.b);
    bench_flowmap_free(&b->map);
    free(b->tmpl);
    free(b);
}

int siptls_cli_bench(int argc, char **argv)
{
    bench *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return 1;
    }
    bench_opts o;
    siptls_config cfg;
    int cfg_ok = 0;
    int rc = 2;
    int go = parse_options(b, &o, argc, argv);
    if (go <= 0) {
        rc = go == 0 ? 0 : 2;
        goto out;
    }
    if (check_options(b, &o) != 0) {
        goto out;
    }
    rc = make_config(b, &o, &cfg);
    if (rc != 0) {
        goto out;
    }
    cfg_ok = 1;
    rc = 1;
    if (alloc_state(b) != 0 || start_engine(b, &cfg, o.verbose) != 0) {
        goto out;
    }
    if (take_baseline(b) != 0) {
        rc = 2;
    } else {
        bench_run(b, b->t_start);
        print_report(b);
        rc = bench_errors_total(b) > 0 ? 1 : 0;
    }
    /* close_notify to the flows still open; the server sees a clean end. */
    siptls_engine_shutdown(b->engine);
    siptls_engine_free(b->engine);
out:
    if (cfg_ok) {
        siptls_config_cleanup(&cfg);
    }
    free_state(b);
    return rc;
}
