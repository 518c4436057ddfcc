/* siptls bench — the summary of a run, as text or JSON. */
#include <string.h>

#include "bench.h"

static const char *const kind_names[K_COUNT] = {"connect", "handshake", "verify", "timeout",
                                                "non-2xx", "closed",    "send",   "unsent"};

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
            name, bench_hist_ms(h, 0.5), bench_hist_ms(h, 0.9), bench_hist_ms(h, 0.99),
            (double)h->max_ns / 1e6, h->n ? h->sum_ns / (double)h->n / 1e6 : 0.0,
            (unsigned long long)h->n);
}

void bench_report_text(const bench *b, FILE *out)
{
    figures f = compute(b);
    fprintf(out, "siptls bench: %s %s, %u connection%s", bench_mode_names[b->mode], b->uri,
            b->conns, b->conns == 1 ? "" : "s");
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
    uint64_t errs = bench_errors_total(b);
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
            name, (unsigned long long)h->n, bench_hist_ms(h, 0.5), bench_hist_ms(h, 0.9),
            bench_hist_ms(h, 0.99), (double)h->max_ns / 1e6,
            h->n ? h->sum_ns / (double)h->n / 1e6 : 0.0);
}

void bench_report_json(const bench *b, FILE *out)
{
    figures f = compute(b);
    fprintf(out, "{\n  \"mode\": \"%s\",\n  \"uri\": ", bench_mode_names[b->mode]);
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
    fprintf(out, "  \"errors\": {\"total\": %llu", (unsigned long long)bench_errors_total(b));
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
