#include "pair.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- watchdog over the whole test ----------------------------------------- */

static char g_watchdog_text[256];

static void watchdog_alarm(int sig)
{
    (void)sig;
    /* async-signal-safe: write(2) and abort(3) only (abort shows where
     * the test hung, under ASan with a stack) */
    ssize_t n = write(STDERR_FILENO, g_watchdog_text, strlen(g_watchdog_text));
    (void)n;
    abort();
}

void tu_pair_watchdog(tu_pair *p, unsigned seconds)
{
    snprintf(g_watchdog_text, sizeof(g_watchdog_text),
             "\nwatchdog: %s still running after %u s: aborting\n",
             p->tcase != NULL ? p->tcase->name : "?", seconds);
    signal(SIGALRM, watchdog_alarm);
    alarm(seconds);
}

/* ---- set-up ---------------------------------------------------------------- */

tu_pair *tu_pair_new_list(void **state, const char *listen, ...)
{
    const tu_pair_case *tc = *state;
    if (tc == NULL || tc->body == NULL) {
        fail_msg("tu_pair_new: list the test with TU_PAIR_TEST(fn, setup)");
    }
    tu_pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->tcase = tc;
    p->fds_before = tu_fd_count();
    p->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(p->loop);
    assert_false(ev_is_default_loop(p->loop));
    p->cb = tu_callbacks;
    p->close_s = TU_PAIR_CLOSE_S;
    tu_config(&p->scfg, "server");
    tu_config(&p->ccfg, "server");
    va_list ap;
    va_start(ap, listen);
    for (const char *uri = listen; uri != NULL; uri = va_arg(ap, const char *)) {
        tu_set(&p->scfg, "listen", uri);
    }
    va_end(ap);
    tu_pair_watchdog(p, TU_PAIR_WATCHDOG_S);
    *state = p;
    return p;
}

void tu_pair_start_server(tu_pair *p)
{
    assert_null(p->server);
    assert_int_equal(siptls_engine_new(&p->server, p->loop, &p->scfg, &p->cb, &p->srec), SIPTLS_OK);
    p->srec.engine = p->server;
}

void tu_pair_start(tu_pair *p)
{
    tu_pair_start_server(p);
    assert_null(p->client);
    assert_int_equal(siptls_engine_new(&p->client, p->loop, &p->ccfg, &p->cb, &p->crec), SIPTLS_OK);
    p->crec.engine = p->client;
}

siptls_engine *tu_pair_engine(tu_pair *p, const siptls_config *cfg, tu_rec *rec, tu_rec **rec_out)
{
    int k = 0;
    while (k < TU_PAIR_MAX_EXTRA && p->extra[k] != NULL) {
        k++;
    }
    if (k == TU_PAIR_MAX_EXTRA) {
        fail_msg("tu_pair_engine: more than %d extra engines", TU_PAIR_MAX_EXTRA);
    }
    int owned = rec == NULL;
    if (owned) {
        rec = calloc(1, sizeof(*rec));
        assert_non_null(rec);
    }
    siptls_engine *e = NULL;
    int st = siptls_engine_new(&e, p->loop, cfg, &p->cb, rec);
    if (st != SIPTLS_OK) {
        if (owned) {
            free(rec);
        }
        fail_msg("tu_pair_engine: %s", siptls_strerror(st));
    }
    if (owned) {
        rec->engine = e;
    }
    p->extra[k] = e;
    p->extra_rec[k] = rec;
    p->extra_owned[k] = owned;
    if (rec_out != NULL) {
        *rec_out = rec;
    }
    return e;
}

static void extra_release(tu_pair *p, int k)
{
    siptls_engine_free(p->extra[k]);
    if (p->extra_owned[k]) {
        tu_rec_reset(p->extra_rec[k]);
        free(p->extra_rec[k]);
    }
    p->extra[k] = NULL;
    p->extra_rec[k] = NULL;
    p->extra_owned[k] = 0;
}

void tu_pair_engine_free(tu_pair *p, siptls_engine *e)
{
    for (int k = 0; k < TU_PAIR_MAX_EXTRA; k++) {
        if (p->extra[k] == e && e != NULL) {
            extra_release(p, k);
            return;
        }
    }
    fail_msg("tu_pair_engine_free: not an extra engine of this pair");
}

/* ---- flows ----------------------------------------------------------------- */

siptls_stats tu_stats(const siptls_engine *e)
{
    siptls_stats st;
    siptls_engine_stats(e, &st);
    return st;
}

static uint64_t open_of(const siptls_engine *e)
{
    return e != NULL ? tu_stats(e).flows_open : 0;
}

static uint64_t clients_open(const tu_pair *p)
{
    uint64_t n = open_of(p->client);
    for (int k = 0; k < TU_PAIR_MAX_EXTRA; k++) {
        n += open_of(p->extra[k]);
    }
    return n;
}

uint64_t tu_pair_flows_open(const tu_pair *p)
{
    return open_of(p->server) + clients_open(p);
}

int tu_pair_all_closed(void *arg)
{
    return tu_pair_flows_open(arg) == 0;
}

static int clients_closed(void *arg)
{
    return clients_open(arg) == 0;
}

static void close_seen(siptls_engine *e, const tu_rec *r)
{
    if (e == NULL || r == NULL) {
        return;
    }
    for (unsigned i = 0; i < r->ups && i < TU_MAX_FLOWS; i++) {
        (void)siptls_close(e, r->up_ids[i]); /* SIPTLS_ERR_GONE when closed */
    }
}

static void close_clients(tu_pair *p)
{
    close_seen(p->client, &p->crec);
    for (int k = 0; k < TU_PAIR_MAX_EXTRA; k++) {
        close_seen(p->extra[k], p->extra_rec[k]);
    }
}

void tu_pair_close_client(tu_pair *p, double timeout_s)
{
    close_clients(p);
    tu_run_pred(p->loop, tu_pair_all_closed, p, timeout_s,
                "every flow closed (the server following the client's close)");
}

void tu_pair_close_all(tu_pair *p, double timeout_s)
{
    close_clients(p);
    tu_run_pred(p->loop, clients_closed, p, timeout_s, "the client's flows closed");
    close_seen(p->server, &p->srec);
    tu_run_pred(p->loop, tu_pair_all_closed, p, timeout_s, "every flow closed");
}

/* ---- the test and its teardown ---------------------------------------------- */

void tu_pair_run(void **state)
{
    tu_pair *p = *state;
    p->tcase->body(state);
    /* reached only when the body did not fail (cmocka longjmps out) */
    p->passed = 1;
}

static void invoke_nothing(struct ev_loop *loop)
{
    (void)loop;
}

__attribute__((format(printf, 3, 4))) static void note(char *buf, size_t cap, const char *fmt, ...)
{
    size_t at = strlen(buf);
    if (at + 1 >= cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + at, cap - at, fmt, ap);
    va_end(ap);
}

static void note_open(char *buf, size_t cap, const char *who, const siptls_engine *e)
{
    uint64_t n = open_of(e);
    if (n != 0) {
        note(buf, cap, "; %s: %llu flow(s) still open", who, (unsigned long long)n);
    }
}

int tu_pair_finish(tu_pair *p, char *problems, size_t cap)
{
    alarm(0);
    problems[0] = '\0';
    if (p->on_teardown != NULL) {
        p->on_teardown(p);
    }
    if (p->passed && p->must_end_closed) {
        note_open(problems, cap, "server at the end of the test", p->server);
        note_open(problems, cap, "client at the end of the test", p->client);
    }
    if (p->passed) {
        /* 1. every flow closed: the client side first (close_notify tells
         *    the server), then what the server still holds */
        close_clients(p);
        (void)tu_run_wait(p->loop, clients_closed, p, p->close_s);
        close_seen(p->server, &p->srec);
        (void)tu_run_wait(p->loop, tu_pair_all_closed, p, p->close_s);
        note_open(problems, cap, "server", p->server);
        note_open(problems, cap, "client", p->client);
        for (int k = 0; k < TU_PAIR_MAX_EXTRA; k++) {
            char who[32];
            snprintf(who, sizeof(who), "extra engine %d", k);
            note_open(problems, cap, who, p->extra[k]);
        }
    }
    for (int k = 0; k < TU_PAIR_MAX_EXTRA; k++) {
        if (p->extra[k] != NULL) {
            extra_release(p, k);
        }
    }
    siptls_engine_free(p->client);
    siptls_engine_free(p->server);
    p->client = p->server = NULL;
    if (p->passed) {
        /* 2. no watcher left on the loop. ev_run returns false when no
         *    active watcher remains; nothing pending is invoked. */
        ev_set_invoke_pending_cb(p->loop, invoke_nothing);
        int active = ev_run(p->loop, EVRUN_NOWAIT);
        if (active) {
            note(problems, cap,
                 "; libev watcher(s) still active on the loop after every engine was freed "
                 "(ev_run: %d)",
                 active);
        }
    }
    ev_loop_destroy(p->loop);
    siptls_config_cleanup(&p->scfg);
    siptls_config_cleanup(&p->ccfg);
    tu_rec_reset(&p->srec);
    tu_rec_reset(&p->crec);
    /* 3. no fd leaked */
    int fds_after = tu_fd_count();
    if (p->passed && fds_after != p->fds_before) {
        note(problems, cap, "; %d fd(s) at the end, %d at setup", fds_after, p->fds_before);
    }
    free(p);
    return problems[0] != '\0';
}

int tu_pair_teardown(void **state)
{
    tu_pair *p = *state;
    *state = NULL;
    if (p == NULL) {
        return 0; /* the setup failed before making the fixture */
    }
    char problems[1024];
    if (tu_pair_finish(p, problems, sizeof(problems))) {
        fail_msg("teardown: %s", problems + 2); /* each note starts "; " */
    }
    return 0;
}
