/* siptls CLI — `serve --metrics`: the counters of the engines in the
 * Prometheus text exposition format (version 0.0.4) over plain HTTP.
 *
 *   metrics_text.c  snapshots of an engine's counters (engine, listeners,
 *                   TLS domains), their sum over workers, and the text
 *   metrics_http.c  a small HTTP/1.1 GET responder on a libev loop: bounded
 *                   requests, Connection: close, 404 / 405 / 400 / 431,
 *                   never blocks
 *
 * Every metric is listed in docs/admin-guide.md ("Prometheus metrics"). */
#ifndef SIPTLS_CLI_METRICS_H
#define SIPTLS_CLI_METRICS_H

#include <stddef.h>

#include "siptls/siptls.h"

struct ev_loop;

/* ---- snapshots (metrics_text.c) ------------------------------------------ */

typedef struct metrics_listener {
    char name[64]; /* siptls_listener_name(): "tls:127.0.0.1:5061" */
    siptls_stats st;
} metrics_listener;

/** The counters of one engine, or the sum of several. */
typedef struct metrics_snapshot {
    int engines; /* how many engines it adds up */
    siptls_stats engine;
    metrics_listener *listeners;
    int n_listeners;
    siptls_domain_counters *domains;
    int n_domains;
} metrics_snapshot;

/** Copy the counters of `e` (on its thread) into `out` (zeroed first).
 *  Returns 0, or -1 out of memory (then `out` needs no free). */
int metrics_snapshot_take(siptls_engine *e, metrics_snapshot *out);

/** Add `one` into `sum`: the engine counters field by field, listeners by
 *  name, domains by name and kind (a listener or domain only one of them
 *  has is added). Returns 0 or -1 (out of memory: `sum` is partly added). */
int metrics_snapshot_add(metrics_snapshot *sum, const metrics_snapshot *one);

void metrics_snapshot_free(metrics_snapshot *s);

/** The exposition text of `s` (HELP and TYPE line per family, families in
 *  a fixed order, every sample of a family together); `start_time` is the
 *  Unix time the process started. Returns a malloc'd NUL-terminated text
 *  with its length in *len, or NULL out of memory. */
char *metrics_render(const metrics_snapshot *s, double start_time, size_t *len);

/* ---- the HTTP responder (metrics_http.c) --------------------------------- */

typedef struct metrics_http metrics_http;

/** Called when a GET /metrics (or HEAD) is complete and waits for its
 *  answer; the callee answers it, now or later, with metrics_http_reply()
 *  or metrics_http_fail(). Several requests may wait for one answer. */
typedef void (*metrics_want_fn)(metrics_http *m, void *user);

/** Listen on `addrport` ("127.0.0.1:9100", "[::1]:0", "0.0.0.0:9100":
 *  a numeric address and a port, 0 for any) on `loop`. The bound address
 *  is written to `bound` ("127.0.0.1:41234"). Returns 0, or -1 with the
 *  reason in `why`. */
/** Check a --metrics ADDR:PORT before anything starts: a numeric address
 *  ([v6] in brackets) and a decimal port 0..65535. 0, or -1 and why. */
int metrics_addr_check(const char *addrport, char *why, size_t why_len);

int metrics_http_new(metrics_http **out, struct ev_loop *loop, const char *addrport,
                     metrics_want_fn want, void *user, char *bound, size_t bound_len, char *why,
                     size_t why_len);

/** Answer every request waiting for metrics with 200 and `body` (copied). */
void metrics_http_reply(metrics_http *m, const char *body, size_t len);

/** Answer every request waiting for metrics with 503 (`reason` in the body). */
void metrics_http_fail(metrics_http *m, const char *reason);

/** Number of requests waiting for metrics. */
int metrics_http_waiting(const metrics_http *m);

/** Stop listening, close every connection, free. NULL is accepted. */
void metrics_http_free(metrics_http *m);

#endif
