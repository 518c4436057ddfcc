/* siptls tests — shared helpers for integration tests: test PKI paths,
 * configs, a callback recorder, a loop runner with a watchdog, fd counts. */
#ifndef SIPTLS_TESTUTIL_H
#define SIPTLS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ev.h>

#include "siptls/siptls.h"

#define TU_MAX_FLOWS 256
#define TU_MAX_MSGS 20000

/** Path of a file of the test PKI (tests/certs/make-test-pki.sh). Static buffer. */
const char *tu_pki(const char *name);

/** A config with the test PKI: server cert `server_name` (e.g. "server"),
 *  client CA = ca.pem, log level WARN. */
void tu_config(siptls_config *cfg, const char *server_name);

/** Set a key or fail the test. */
void tu_set(siptls_config *cfg, const char *key, const char *value);

typedef struct tu_msg {
    siptls_flow_id flow;
    size_t len;
    uint32_t crc;
    uint8_t *copy; /* only when the recorder keeps copies */
} tu_msg;

typedef struct tu_rec {
    siptls_engine *engine;
    unsigned ups, closes;
    siptls_flow_id up_ids[TU_MAX_FLOWS];
    siptls_flow_id closed_ids[TU_MAX_FLOWS];
    int close_reasons[TU_MAX_FLOWS];
    unsigned n_msgs;
    tu_msg msgs[TU_MAX_MSGS];
    int keep_copies;
    unsigned pings, pongs;
    /* optional hook run on each message (after recording) */
    void (*on_msg)(struct tu_rec *r, siptls_flow_id flow, const siptls_msg *m);
    void *hook_data;
    /* SIPTLS_FLOW_MOVED events (DTLS Connection ID) */
    unsigned moves;
    siptls_flow_id moved_ids[TU_MAX_FLOWS];
} tu_rec;

/** Callbacks that record into a tu_rec (pass the tu_rec as `user`). */
extern const siptls_callbacks tu_callbacks;

/** Free the copies held by a recorder and reset it. */
void tu_rec_reset(tu_rec *r);

uint32_t tu_crc32(const uint8_t *p, size_t n);

/** Run `loop` until `*done` becomes non-zero (checked after each
 *  iteration) or `timeout_s` passes; fails the test on timeout with `what`. */
void tu_run_until(struct ev_loop *loop, const int *done, double timeout_s, const char *what);

/** Run the loop for `seconds` (no condition). */
void tu_run_for(struct ev_loop *loop, double seconds);

/** Run until a predicate holds; fails the test with `what` after
 *  `timeout_s`. */
void tu_run_pred(struct ev_loop *loop, int (*pred)(void *), void *arg, double timeout_s,
                 const char *what);

/** Run until a predicate holds or `timeout_s` passes, without failing:
 *  returns the predicate's last value (for teardowns, which must not
 *  jump out half way). The predicate is looked at before each loop
 *  iteration and once more at the end: once true it must stay true. */
int tu_run_wait(struct ev_loop *loop, int (*pred)(void *), void *arg, double timeout_s);

/** Number of open fds of this process. */
int tu_fd_count(void);

/** Build a SIP request of exactly `total` bytes (>= 200) with a body and
 *  a correct Content-Length (total >= 400); `seq` makes it unique. Returns a malloc'd
 *  buffer. */
uint8_t *tu_make_request(size_t total, unsigned seq, const char *via_transport);

/** "tls:127.0.0.1:PORT" for listener 0 of an engine. */
const char *tu_uri(siptls_engine *e, int listener, const char *scheme, const char *host);

#endif
