/* siptls CLI — engine counters as Prometheus text (see metrics.h).
 *
 * Names follow the Prometheus conventions (prometheus.io "Metric and label
 * naming"): the prefix siptls_, base units (bytes, seconds), `_total` on
 * every counter, labels for what splits a count (transport, reason, kind)
 * and for the scope (listener, domain). The three scopes are separate
 * families — siptls_X, siptls_listener_X, siptls_domain_X — so that summing
 * one family never counts an event twice. OpenSIPS' prometheus module
 * exports its statistics as opensips_<stat> with a group label and Kamailio's
 * xhttp_prom as kamailio_<group>_<stat>, neither with `_total` nor units;
 * the counters here are siptls' own, named the Prometheus way. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

_Static_assert(sizeof(siptls_stats) % sizeof(uint64_t) == 0,
               "siptls_stats is made of uint64_t counters only");

/* ------------------------------------------------------------------------ */
/* snapshots                                                                */
/* ------------------------------------------------------------------------ */

static void stats_add(siptls_stats *sum, const siptls_stats *one)
{
    uint64_t *a = (uint64_t *)sum;
    const uint64_t *b = (const uint64_t *)one;
    for (size_t i = 0; i < sizeof(*sum) / sizeof(uint64_t); i++) {
        a[i] += b[i];
    }
}

int metrics_snapshot_take(siptls_engine *e, metrics_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    out->engines = 1;
    siptls_engine_stats(e, &out->engine);
    int nl = siptls_listener_count(e);
    int nd = siptls_domain_count(e);
    out->listeners = nl > 0 ? calloc((size_t)nl, sizeof(*out->listeners)) : NULL;
    out->domains = nd > 0 ? calloc((size_t)nd, sizeof(*out->domains)) : NULL;
    if ((nl > 0 && out->listeners == NULL) || (nd > 0 && out->domains == NULL)) {
        metrics_snapshot_free(out);
        return -1;
    }
    for (int i = 0; i < nl; i++) {
        metrics_listener *l = &out->listeners[out->n_listeners];
        if (siptls_listener_stats(e, i, &l->st) == SIPTLS_OK &&
            siptls_listener_name(e, i, l->name, sizeof(l->name)) == SIPTLS_OK) {
            out->n_listeners++;
        }
    }
    for (int i = 0; i < nd; i++) {
        if (siptls_domain_stats(e, i, &out->domains[out->n_domains]) == SIPTLS_OK) {
            out->n_domains++;
        }
    }
    return 0;
}

int metrics_snapshot_add(metrics_snapshot *sum, const metrics_snapshot *one)
{
    sum->engines += one->engines;
    stats_add(&sum->engine, &one->engine);
    for (int i = 0; i < one->n_listeners; i++) {
        const metrics_listener *l = &one->listeners[i];
        int k = 0;
        while (k < sum->n_listeners && strcmp(sum->listeners[k].name, l->name) != 0) {
            k++;
        }
        if (k == sum->n_listeners) {
            metrics_listener *grown =
                realloc(sum->listeners, sizeof(*grown) * (size_t)(sum->n_listeners + 1));
            if (grown == NULL) {
                return -1;
            }
            sum->listeners = grown;
            memset(&grown[k], 0, sizeof(grown[k]));
            memcpy(grown[k].name, l->name, sizeof(l->name));
            sum->n_listeners++;
        }
        stats_add(&sum->listeners[k].st, &l->st);
    }
    for (int i = 0; i < one->n_domains; i++) {
        const siptls_domain_counters *d = &one->domains[i];
        int k = 0;
        while (k < sum->n_domains && (sum->domains[k].is_server != d->is_server ||
                                      strcmp(sum->domains[k].name, d->name) != 0)) {
            k++;
        }
        if (k == sum->n_domains) {
            siptls_domain_counters *grown =
                realloc(sum->domains, sizeof(*grown) * (size_t)(sum->n_domains + 1));
            if (grown == NULL) {
                return -1;
            }
            sum->domains = grown;
            memset(&grown[k], 0, sizeof(grown[k]));
            memcpy(grown[k].name, d->name, sizeof(d->name));
            grown[k].is_server = d->is_server;
            sum->n_domains++;
        }
        stats_add(&sum->domains[k].stats, &d->stats);
    }
    return 0;
}

void metrics_snapshot_free(metrics_snapshot *s)
{
    free(s->listeners);
    free(s->domains);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------------ */
/* the families                                                             */
/* ------------------------------------------------------------------------ */

enum { SC_ENGINE = 1, SC_LISTENER = 2, SC_DOMAIN = 4, SC_ALL = 7 };

/* One sample of a family: rows with the same name are one family (they are
 * consecutive); `label` is an extra label pair or NULL. */
typedef struct metric {
    const char *name;
    const char *type;
    const char *help;
    const char *label;
    size_t off;
    unsigned scopes;
} metric;

#define F(field) offsetof(siptls_stats, field)
#define C "counter"
#define G "gauge"

static const metric metrics[] = {
    {"flows_open", G, "Flows open now (handshaking, up or closing).", "transport=\"tls\"",
     F(tls_flows_open), SC_ENGINE | SC_DOMAIN},
    {"flows_open", G, "", "transport=\"dtls\"", F(dtls_flows_open), SC_ENGINE | SC_DOMAIN},
    {"flows_open", G, "Flows open now (handshaking, up or closing).", NULL, F(flows_open),
     SC_LISTENER},
    {"flows_accepted_total", C, "Inbound flows accepted (TLS connections, DTLS cookie exchanges).",
     NULL, F(flows_accepted), SC_ENGINE | SC_LISTENER},
    {"flows_connected_total", C, "Outbound flows whose handshake completed.", NULL,
     F(flows_connected), SC_ENGINE | SC_DOMAIN},
    {"flows_closed_total", C, "Flows closed, for any reason.", NULL, F(flows_closed), SC_ALL},
    {"handshakes_total", C, "TLS/DTLS handshakes completed, the peer checked.", NULL,
     F(handshakes_ok), SC_ALL},
    {"handshakes_resumed_total", C, "Completed handshakes that resumed a session.", NULL,
     F(handshakes_resumed), SC_ALL},
    {"handshake_failures_total", C, "Flows that ended before their handshake completed, by reason.",
     "reason=\"timeout\"", F(hs_fail_timeout), SC_ALL},
    {"handshake_failures_total", C, "", "reason=\"verify\"", F(hs_fail_verify), SC_ALL},
    {"handshake_failures_total", C, "", "reason=\"name\"", F(hs_fail_name), SC_ALL},
    {"handshake_failures_total", C, "", "reason=\"no_cert\"", F(hs_fail_no_cert), SC_ALL},
    {"handshake_failures_total", C, "", "reason=\"tls\"", F(hs_fail_tls), SC_ALL},
    {"handshake_failures_total", C, "", "reason=\"io\"", F(hs_fail_io), SC_ALL},
    {"messages_received_total", C, "SIP messages received and delivered to the host.", NULL,
     F(msgs_in), SC_ALL},
    {"messages_sent_total", C, "SIP messages the host queued for sending.", NULL, F(msgs_out),
     SC_ALL},
    {"received_bytes_total", C, "Plaintext bytes received (SIP messages and keepalives).", NULL,
     F(bytes_in), SC_ALL},
    {"sent_bytes_total", C, "Plaintext bytes written (SIP messages and keepalives).", NULL,
     F(bytes_out), SC_ALL},
    {"keepalives_received_total", C, "RFC 5626 keepalives received: CRLFCRLF pings, CRLF pongs.",
     "kind=\"ping\"", F(pings_in), SC_ALL},
    {"keepalives_received_total", C, "", "kind=\"pong\"", F(pongs_in), SC_ALL},
    {"keepalives_sent_total", C, "RFC 5626 keepalives sent: our pings, pongs answering a ping.",
     "kind=\"ping\"", F(pings_out), SC_ALL},
    {"keepalives_sent_total", C, "", "kind=\"pong\"", F(pongs_out), SC_ALL},
    {"framing_errors_total", C, "Framing errors: TLS flows closed, DTLS records dropped.", NULL,
     F(drop_framing), SC_ALL},
    {"drops_total", C,
     "Messages, flows and connections dropped, by reason (see the admin guide for each).",
     "reason=\"chunks\"", F(drop_chunks), SC_ALL},
    {"drops_total", C, "", "reason=\"too_big\"", F(drop_too_big), SC_ALL},
    {"drops_total", C, "", "reason=\"msg_timeout\"", F(drop_msg_timeout), SC_ALL},
    {"drops_total", C, "", "reason=\"queue_full\"", F(drop_queue_full), SC_ALL},
    {"drops_total", C, "", "reason=\"send_timeout\"", F(drop_send_timeout), SC_ALL},
    {"drops_total", C, "", "reason=\"idle\"", F(drop_idle), SC_ALL},
    {"drops_total", C, "", "reason=\"keepalive\"", F(drop_keepalive), SC_ALL},
    {"drops_total", C, "", "reason=\"io\"", F(drop_io), SC_ALL},
    {"drops_total", C, "", "reason=\"limit\"", F(drop_limit), SC_ENGINE | SC_LISTENER},
    {"drops_total", C, "", "reason=\"resources\"", F(drop_resources), SC_ENGINE},
    {"dtls_reassembly_lost_total", C, "DTLS messages lost in reassembly (a record missing).", NULL,
     F(dtls_reasm_lost), SC_ALL},
    {"dtls_cookies_sent_total", C, "DTLS HelloVerifyRequests sent (stateless cookies).", NULL,
     F(dtls_cookies_sent), SC_ENGINE},
    {"dtls_cookie_failures_total", C, "DTLS ClientHellos whose cookie did not verify.", NULL,
     F(dtls_cookie_bad), SC_ENGINE},
    {"dtls_rate_limited_total", C, "DTLS handshakes refused by dtls_handshake_rate.", NULL,
     F(dtls_rate_limited), SC_ENGINE},
    {"dtls_bad_records_total", C, "DTLS records dropped: malformed, unauthentic or unexpected.",
     NULL, F(dtls_bad_records), SC_ENGINE},
    {"dtls_stun_requests_total", C, "STUN Binding requests answered on DTLS listeners.", NULL,
     F(dtls_stun), SC_ENGINE},
    {"dtls_junk_datagrams_total", C, "Datagrams on DTLS listeners that were neither DTLS nor STUN.",
     NULL, F(dtls_junk), SC_ENGINE},
    {"reloads_total", C, "Successful reloads of the TLS domains (SIGHUP).", NULL, F(reloads),
     SC_ENGINE},
};

#undef F
#undef C
#undef G

/* ------------------------------------------------------------------------ */
/* text                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf;

__attribute__((format(printf, 2, 3))) static void put(buf *b, const char *fmt, ...)
{
    if (b->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* A label value: backslash, double quote and line feed escaped (the
 * exposition format's three escapes). */
static void put_value(buf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"') {
            put(b, "\\%c", *v);
        } else if (*v == '\n') {
            put(b, "\\n");
        } else {
            put(b, "%c", *v);
        }
    }
}

static void put_sample(buf *b, const char *family, const char *scope_labels, const char *label,
                       uint64_t v)
{
    put(b, "%s", family);
    if (scope_labels[0] != '\0' || label != NULL) {
        put(b, "{%s%s%s}", scope_labels, scope_labels[0] != '\0' && label != NULL ? "," : "",
            label != NULL ? label : "");
    }
    put(b, " %llu\n", (unsigned long long)v);
}

static uint64_t field(const siptls_stats *st, size_t off)
{
    return *(const uint64_t *)((const char *)st + off);
}

/* The listener's labels: listener="tls:127.0.0.1:5061",transport="tls". */
static void listener_labels(const metrics_listener *l, char *out, size_t cap)
{
    buf b = {malloc(128), 0, 128, 0};
    if (b.p == NULL) {
        out[0] = '\0';
        return;
    }
    char transport[16];
    size_t n = strcspn(l->name, ":");
    snprintf(transport, sizeof(transport), "%.*s", (int)(n < 15 ? n : 15), l->name);
    put(&b, "listener=\"");
    put_value(&b, l->name);
    put(&b, "\",transport=\"");
    put_value(&b, transport);
    put(&b, "\"");
    snprintf(out, cap, "%s", b.failed ? "" : b.p);
    free(b.p);
}

static void domain_labels(const siptls_domain_counters *d, char *out, size_t cap)
{
    buf b = {malloc(128), 0, 128, 0};
    if (b.p == NULL) {
        out[0] = '\0';
        return;
    }
    put(&b, "domain=\"");
    put_value(&b, d->name);
    put(&b, "\",role=\"%s\"", d->is_server ? "server" : "client");
    snprintf(out, cap, "%s", b.failed ? "" : b.p);
    free(b.p);
}

/* Every family of one scope: HELP and TYPE once, then every sample of the
 * family for every member of the scope. */
static void put_scope(buf *b, const metrics_snapshot *s, unsigned scope)
{
    const char *prefix = scope == SC_ENGINE     ? "siptls_"
                         : scope == SC_LISTENER ? "siptls_listener_"
                                                : "siptls_domain_";
    int members = scope == SC_ENGINE ? 1 : scope == SC_LISTENER ? s->n_listeners : s->n_domains;
    if (members == 0) {
        return;
    }
    size_t n = sizeof(metrics) / sizeof(metrics[0]);
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && strcmp(metrics[end].name, metrics[i].name) == 0) {
            end++;
        }
        /* the family's help: its first row that has one */
        const char *help = NULL;
        int any = 0;
        for (size_t k = i; k < end; k++) {
            if (metrics[k].scopes & scope) {
                any = 1;
                if (help == NULL && metrics[k].help[0] != '\0') {
                    help = metrics[k].help;
                }
            }
        }
        if (any) {
            char family[96];
            snprintf(family, sizeof(family), "%s%s", prefix, metrics[i].name);
            put(b, "# HELP %s %s\n", family, help != NULL ? help : "");
            put(b, "# TYPE %s %s\n", family, metrics[i].type);
            for (int m = 0; m < members; m++) {
                char labels[256] = "";
                const siptls_stats *st = &s->engine;
                if (scope == SC_LISTENER) {
                    listener_labels(&s->listeners[m], labels, sizeof(labels));
                    st = &s->listeners[m].st;
                } else if (scope == SC_DOMAIN) {
                    domain_labels(&s->domains[m], labels, sizeof(labels));
                    st = &s->domains[m].stats;
                }
                for (size_t k = i; k < end; k++) {
                    if (metrics[k].scopes & scope) {
                        put_sample(b, family, labels, metrics[k].label, field(st, metrics[k].off));
                    }
                }
            }
        }
        i = end;
    }
}

char *metrics_render(const metrics_snapshot *s, double start_time, size_t *len)
{
    buf b = {malloc(16384), 0, 16384, 0};
    if (b.p == NULL) {
        return NULL;
    }
    b.p[0] = '\0';
    put(&b, "# HELP siptls_engines Engines (serve workers) these counters add up.\n");
    put(&b, "# TYPE siptls_engines gauge\n");
    put(&b, "siptls_engines %d\n", s->engines);
    put(&b, "# HELP siptls_start_time_seconds When siptls serve started, in seconds since the "
            "Unix epoch.\n");
    put(&b, "# TYPE siptls_start_time_seconds gauge\n");
    put(&b, "siptls_start_time_seconds %.3f\n", start_time);
    put_scope(&b, s, SC_ENGINE);
    put_scope(&b, s, SC_LISTENER);
    put_scope(&b, s, SC_DOMAIN);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
