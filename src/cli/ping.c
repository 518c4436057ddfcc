/* siptls ping — send OPTIONS (or a CRLFCRLF keepalive) to a SIP TLS/DTLS
 * peer and report the answer, the TLS parameters and the round-trip time.
 * Exit status: 0 on 2xx (or a pong), 1 on another final response, 2 usage,
 * 3 timeout, 4 connection / handshake / verification failure. */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct ping_ctx {
    siptls_engine *engine;
    struct ev_loop *loop;
    const char *uri;
    siptls_flow_id flow;
    int crlf;
    unsigned count, sent, ok, done_one;
    double interval, timeout;
    double t_sent;
    int exit_code;
    int waiting;
    int up; /* the flow came up (our side of the handshake is done) */
    int up_printed;
    int answered_any; /* something came back: the server accepted the handshake */
    int tls13;        /* TLS 1.3: the server judges our certificate after "up" */
    int have_cert;    /* we have a client certificate to offer */
    char up_line[1024];
    ev_timer timer;
    char host[SIPTLS_URI_HOST_MAX + 2];
    const char *domain;   /* --domain: the SIP domain to verify (and SNI) */
    const char *sni;      /* --sni: the server name to send instead */
    int dtls;             /* the URI's transport is DTLS */
    int is_sip;           /* a sip:/sips: URI (RFC 3263) */
    siptls_target target; /* a tls:/dtls: URI with --domain / --sni */
    uint8_t first[1024];  /* the first request, while a sip: URI is located */
    size_t first_len;
} ping_ctx;

/* The "connected" line waits for the server's first answer: in TLS 1.3
 * our side of the handshake ends before the server has checked our
 * certificate (or its absence), so "up" alone does not mean accepted. */
static void print_up(ping_ctx *p)
{
    if (p->up && !p->up_printed) {
        p->up_printed = 1;
        printf("%s\n", p->up_line);
        fflush(stdout);
    }
}

static void finish(ping_ctx *p, int code)
{
    if (p->exit_code == 0 || code > p->exit_code) {
        p->exit_code = code;
    }
    ev_timer_stop(p->loop, &p->timer);
    siptls_engine_shutdown(p->engine);
    ev_break(p->loop, EVBREAK_ALL);
}

static void arm_timeout(ping_ctx *p)
{
    ev_timer_stop(p->loop, &p->timer);
    ev_timer_set(&p->timer, p->timeout, 0.0);
    ev_timer_start(p->loop, &p->timer);
}

static void first_failed(ping_ctx *p, int st)
{
    fprintf(stderr, "siptls ping: %s: %s\n", p->uri, siptls_strerror(st));
    finish(p, 4);
}

/* A sip:/sips: URI with --domain / --sni: located first (RFC 3263), then
 * every address it gave is tried with the domain and SNI asked for. */
static void on_resolved(siptls_engine *e, int status, const siptls_target *targets, size_t n,
                        void *user)
{
    ping_ctx *p = user;
    if (status != SIPTLS_OK || p->exit_code != 0) {
        if (p->exit_code == 0) {
            first_failed(p, status);
        }
        return;
    }
    siptls_target t[SIPTLS_TARGETS_MAX];
    for (size_t i = 0; i < n && i < SIPTLS_TARGETS_MAX; i++) {
        t[i] = targets[i];
        if (p->domain != NULL) {
            t[i].sip_domain = p->domain;
        }
        t[i].sni = p->sni;
    }
    int st = siptls_send_target(e, t, n, p->first, p->first_len, &p->flow);
    if (st != SIPTLS_OK) {
        first_failed(p, st);
    }
}

static void send_one(ping_ctx *p)
{
    char buf[1024];
    size_t len;
    p->sent++;
    if (p->crlf) {
        memcpy(buf, "\r\n\r\n", 4);
        len = 4;
    } else {
        len = (size_t)snprintf(
            buf, sizeof(buf),
            "OPTIONS sip:%s SIP/2.0\r\n"
            "Via: SIP/2.0/%s siptls-ping.invalid;branch=z9hG4bK%08x%04x;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:ping@siptls.invalid>;tag=%08x\r\n"
            "To: <sip:%s>\r\n"
            "Call-ID: %08x%08x@siptls.invalid\r\n"
            "CSeq: %u OPTIONS\r\n"
            "Accept: application/sdp\r\n"
            "User-Agent: siptls-ping\r\n"
            "Content-Length: 0\r\n\r\n",
            p->host, p->dtls ? "DTLS" : "TLS", (unsigned)rand(), p->sent, (unsigned)rand(), p->host,
            (unsigned)rand(), (unsigned)rand(), p->sent);
    }
    p->t_sent = cli_now();
    p->waiting = 1;
    int st;
    if (p->sent > 1) {
        st = siptls_send(p->engine, p->flow, (const uint8_t *)buf, len);
    } else if (p->domain == NULL && p->sni == NULL) {
        st = siptls_send_to(p->engine, p->uri, (const uint8_t *)buf, len, &p->flow);
    } else if (!p->is_sip) {
        st = siptls_send_target(p->engine, &p->target, 1, (const uint8_t *)buf, len, &p->flow);
    } else {
        memcpy(p->first, buf, len);
        p->first_len = len;
        st = siptls_resolve(p->engine, p->uri, on_resolved, p);
    }
    if (st != SIPTLS_OK) {
        first_failed(p, st);
        return;
    }
    arm_timeout(p);
}

static void answered(ping_ctx *p, int good)
{
    p->waiting = 0;
    if (good) {
        p->ok++;
    }
    if (p->sent >= p->count) {
        finish(p, p->ok == p->sent ? 0 : 1);
        return;
    }
    ev_timer_stop(p->loop, &p->timer);
    ev_timer_set(&p->timer, p->interval, 0.0);
    ev_timer_start(p->loop, &p->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    ping_ctx *p = w->data;
    if (p->waiting) {
        print_up(p);
        fprintf(stderr, "siptls ping: %s: no answer within %.1f s\n", p->uri, p->timeout);
        finish(p, 3);
        return;
    }
    send_one(p);
}

static void on_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)e;
    (void)flow;
    ping_ctx *p = user;
    if (!p->waiting || p->crlf || siptls_sipmsg_is_request(m->data, m->len)) {
        return;
    }
    const uint8_t *eol = memchr(m->data, '\r', m->header_len);
    size_t sl = eol ? (size_t)(eol - m->data) : 0;
    double rtt = (cli_now() - p->t_sent) * 1000.0;
    unsigned code = m->len > 12 ? (unsigned)strtoul((const char *)m->data + 8, NULL, 10) : 0;
    p->answered_any = 1;
    print_up(p);
    printf("%.*s  rtt=%.2f ms\n", (int)sl, (const char *)m->data, rtt);
    fflush(stdout);
    if (code >= 100 && code < 200) {
        return; /* provisional: wait for the final response */
    }
    answered(p, code >= 200 && code < 300);
}

static void on_keepalive(siptls_engine *e, siptls_flow_id flow, siptls_keepalive_kind kind,
                         void *user)
{
    (void)e;
    (void)flow;
    ping_ctx *p = user;
    if (p->crlf && p->waiting && kind == SIPTLS_KEEPALIVE_PONG) {
        p->answered_any = 1;
        print_up(p);
        printf("pong (CRLF)  rtt=%.2f ms\n", (cli_now() - p->t_sent) * 1000.0);
        fflush(stdout);
        answered(p, 1);
    }
}

/* Why a server refuses a handshake, as far as its alert tells. */
static const char *alert_hint(const ping_ctx *p, int alert)
{
    switch (alert) {
    case 116: /* certificate_required */
        return p->have_cert ? "" : ": it requires a client certificate (give one with --cert)";
    case 40: /* handshake_failure */
        return p->have_cert ? ""
                            : " (we sent no client certificate: if it requires one, give it with "
                              "--cert)";
    case 42: /* bad_certificate */
    case 43: /* unsupported_certificate */
    case 44: /* certificate_revoked */
    case 45: /* certificate_expired */
    case 46: /* certificate_unknown */
    case 48: /* unknown_ca */
    case 49: /* access_denied */
        return p->have_cert ? ": it did not accept our client certificate" : "";
    case 70: /* protocol_version */
        return ": no TLS version in common";
    case 71: /* insufficient_security */
        return ": no cipher suite in common";
    case 112: /* unrecognized_name */
        return ": it serves no such name (the host of the URI, sent as SNI)";
    default:
        return "";
    }
}

/* The server ended the flow before it accepted our handshake, with a fatal
 * alert or (without one) by closing: say that it refused the handshake,
 * and why when the alert says so. Returns 1 when reported. In TLS 1.2 our
 * side is "up" only after the server's Finished (it accepted us); in TLS
 * 1.3 the server checks our certificate (or its absence) after our side is
 * done, so there an alert before any answer is still the refusal. */
static int report_refusal(ping_ctx *p, int reason)
{
    int before_accept = !p->up || (p->tls13 && !p->answered_any);
    int alert = siptls_status_peer_alert(reason);
    if (alert >= 0 && before_accept) {
        const char *name = siptls_tls_alert_name(alert);
        fprintf(stderr, "siptls ping: %s: the server refused the handshake: alert %s (%d)%s\n",
                p->uri, name ? name : "unknown", alert, alert_hint(p, alert));
        return 1;
    }
    if (reason == SIPTLS_ERR_PEER_CLOSED && !p->up) {
        fprintf(stderr,
                "siptls ping: %s: the server closed the connection during the handshake, without "
                "an alert%s\n",
                p->uri,
                p->have_cert ? ""
                             : " (a server that requires a client certificate may do that: try "
                               "--cert)");
        return 1;
    }
    return 0;
}

static void on_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                    void *user)
{
    ping_ctx *p = user;
    if (state == SIPTLS_FLOW_MOVED) {
        return; /* inbound DTLS sessions only: never ping's flow */
    }
    if (state == SIPTLS_FLOW_UP) {
        siptls_flow_info info;
        if (siptls_flow_get_info(e, flow, &info) == SIPTLS_OK && !p->up) {
            p->up = 1;
            p->tls13 = strcmp(info.tls_version, "TLSv1.3") == 0;
            snprintf(p->up_line, sizeof(p->up_line),
                     "connected to %s: %s %s%s; peer: %s (issuer %s) %s", info.remote_text,
                     info.tls_version, info.cipher, info.resumed ? " (resumed)" : "",
                     info.peer_subject[0] ? info.peer_subject : "-",
                     info.peer_issuer[0] ? info.peer_issuer : "-",
                     info.peer_verified ? "verified" : "NOT verified");
        }
        return;
    }
    if (p->exit_code == 0 && (p->waiting || p->sent < p->count)) {
        if (!report_refusal(p, reason)) {
            print_up(p);
            fprintf(stderr, "siptls ping: %s: %s\n", p->uri, siptls_strerror(reason));
        }
        finish(p, 4);
    }
}

static void ping_usage(FILE *out)
{
    fprintf(
        out,
        "usage: siptls ping URI [options]      URI: tls:HOST[:PORT], dtls:HOST[:PORT],\n"
        "                                      sips:DOMAIN or sip:DOMAIN (RFC 3263: NAPTR, SRV)\n"
        "  -n, --count N        requests to send (default 1)\n"
        "  -i, --interval S     seconds between requests (default 1)\n"
        "  -t, --timeout S      seconds to wait for each answer (default 5)\n"
        "      --crlf           send a CRLFCRLF keepalive and wait for the CRLF pong (RFC 5626)\n"
        "      --ca FILE        CA list to verify the server (default: system CAs)\n"
        "  -k, --insecure       do not verify the server certificate\n"
        "      --domain NAME    SIP domain the server certificate must match, and the SNI\n"
        "                       (default: the URI's host)\n"
        "      --sni NAME       server name to send in the handshake instead of the domain\n"
        "      --cert FILE      client certificate chain (PEM)\n"
        "      --key FILE       private key of --cert (default: read from the --cert file)\n"
        "  -c, --config FILE    configuration file\n"
        "  -v, --verbose        debug logging\n"
        "  -h, --help           this text\n"
        "exit status: 0 2xx (or pong), 1 other response, 2 usage, 3 timeout, 4 refused / TLS\n"
        "  (a server that refuses the handshake is named as such, with its TLS alert)\n");
}

int siptls_cli_ping(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'n'},   {"interval", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 't'}, {"crlf", no_argument, NULL, 'L'},
        {"ca", required_argument, NULL, 'A'},      {"insecure", no_argument, NULL, 'k'},
        {"cert", required_argument, NULL, 'C'},    {"key", required_argument, NULL, 'K'},
        {"config", required_argument, NULL, 'c'},  {"verbose", no_argument, NULL, 'v'},
        {"domain", required_argument, NULL, 'D'},  {"sni", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    ping_ctx p;
    memset(&p, 0, sizeof(p));
    p.count = 1;
    p.interval = 1.0;
    p.timeout = 5.0;
    const char *ca = NULL, *cert = NULL, *key = NULL, *config_file = NULL;
    int insecure = 0, verbose = 0, c, rc = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:i:t:kc:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            p.count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            p.interval = strtod(optarg, NULL);
            break;
        case 't':
            p.timeout = strtod(optarg, NULL);
            break;
        case 'L':
            p.crlf = 1;
            break;
        case 'A':
            ca = optarg;
            break;
        case 'k':
            insecure = 1;
            break;
        case 'C':
            cert = optarg;
            break;
        case 'K':
            key = optarg;
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'D':
            p.domain = optarg;
            break;
        case 'S':
            p.sni = optarg;
            break;
        case 'h':
            ping_usage(stdout);
            return 0;
        default:
            ping_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || p.count == 0 || p.timeout <= 0 || p.interval < 0) {
        ping_usage(stderr);
        return 2;
    }
    p.uri = argv[optind];
    siptls_uri u;
    siptls_sip_uri su;
    int st = siptls_uri_parse(p.uri, 5061, 5061, 0, &u);
    if (st == SIPTLS_OK) {
        p.dtls = u.transport == SIPTLS_TRANSPORT_DTLS;
    } else if (st == SIPTLS_ERR_URI_SCHEME) {
        /* not tls:/dtls:: a SIP URI, or the SIP URI's own complaint */
        int sst = siptls_sip_uri_parse(p.uri, &su);
        if (sst == SIPTLS_OK) {
            p.is_sip = 1;
            p.dtls = su.transport == SIPTLS_TRANSPORT_DTLS;
            u.host_kind = su.host_kind;
            snprintf(u.host, sizeof(u.host), "%s", su.host);
        }
        st = sst == SIPTLS_ERR_URI_SCHEME ? st : sst;
    }
    if (st != SIPTLS_OK || u.host_kind == SIPTLS_HOST_ANY || (p.domain && !p.domain[0]) ||
        (p.sni && !p.sni[0])) {
        fprintf(stderr, "siptls ping: '%s': %s\n", p.uri,
                st ? siptls_strerror(st)
                   : (u.host_kind == SIPTLS_HOST_ANY ? siptls_strerror(SIPTLS_ERR_URI_ADDR)
                                                     : "empty --domain or --sni"));
        return 2;
    }
    if (!p.is_sip) {
        siptls_target_init(&p.target);
        p.target.transport = u.transport;
        p.target.host = u.host;
        p.target.port = u.port;
        p.target.sip_domain = p.domain;
        p.target.sni = p.sni;
    }
    if (p.domain != NULL) {
        snprintf(p.host, sizeof(p.host), "%s", p.domain);
    } else {
        snprintf(p.host, sizeof(p.host), u.host_kind == SIPTLS_HOST_IPV6 ? "[%s]" : "%s", u.host);
    }
    siptls_config cfg;
    if (siptls_config_init(&cfg) != SIPTLS_OK) {
        return 1;
    }
    if (config_file != NULL) {
        siptls_config_error err;
        if (siptls_config_load_file(&cfg, config_file, &err) != SIPTLS_OK) {
            fprintf(stderr, "siptls: %s\n", err.msg);
            goto out;
        }
        cli_drop_listen(&cfg); /* a client: never bind the file's listeners */
    }
    if (cli_client_tls(&cfg, ca, insecure, cert, key, NULL) != 0) {
        goto out;
    }
    p.have_cert = cfg.domains[1].certificate != NULL; /* the default client domain */
    cfg.log_level = verbose ? SIPTLS_LOG_DEBUG : SIPTLS_LOG_WARN;
    cli_log_level = cfg.log_level;
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)(cli_now() * 1e6));
    p.loop = ev_default_loop(EVFLAG_AUTO);
    siptls_callbacks cb = {on_message, on_flow, on_keepalive, cli_log};
    st = siptls_engine_new(&p.engine, p.loop, &cfg, &cb, &p);
    if (st != SIPTLS_OK) {
        fprintf(stderr, "siptls ping: %s\n", siptls_strerror(st));
        rc = 4;
        goto out;
    }
    ev_timer_init(&p.timer, on_timer, 0.0, 0.0);
    p.timer.data = &p;
    send_one(&p);
    if (p.exit_code == 0) {
        ev_run(p.loop, 0);
    }
    ev_timer_stop(p.loop, &p.timer);
    siptls_engine_free(p.engine);
    rc = p.exit_code;
out:
    siptls_config_cleanup(&cfg);
    return rc;
}
