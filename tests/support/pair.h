/* siptls tests — the loopback pair fixture of the integration tests.
 *
 * One fixture for every test that runs engines on a loop: a libev loop of
 * its own (never the default loop), a server and a client engine with a
 * recorder each (tu_rec), extra engines a test needs, a watchdog over the
 * whole test, and a teardown that checks what every test must leave
 * behind:
 *
 *  1. no flow open: the flows the recorders saw come up are closed (the
 *     client's first, then the others) and every engine must report
 *     flows_open == 0 within TU_PAIR_CLOSE_S (with must_end_closed set, no
 *     flow may be open when the test ends at all);
 *  2. no libev watcher active on the loop once every engine is freed
 *     (ev_run(EVRUN_NOWAIT) returns false when none is; it is run with a
 *     pending-callback hook that invokes nothing, so a leaked watcher's
 *     callback never runs against freed memory);
 *  3. the process's fd count back to what it was at setup.
 *
 * A test that failed is cleaned up without these checks (they would fail
 * because of it, and cmocka would report the teardown instead of the
 * test's own first failure) and without running the loop again (a half-
 * done test may have left callbacks pointing into its stack).
 *
 * Use:
 *
 *     static tu_pair *E;
 *     static int setup(void **state)
 *     {
 *         E = tu_pair_new(state, "tls:127.0.0.1:0");
 *         return 0;
 *     }
 *     static void test_x(void **state)
 *     {
 *         (void)state;
 *         E->scfg.tls_send_timeout = 400;   // configs may change until start
 *         tu_pair_start(E);
 *         ...
 *     }
 *     ...
 *     const struct CMUnitTest tests[] = {TU_PAIR_TEST(test_x, setup), ...};
 *
 * Tests must be listed with TU_PAIR_TEST (it records whether the body ran
 * to its end). */
#ifndef SIPTLS_TEST_PAIR_H
#define SIPTLS_TEST_PAIR_H

#include "testutil.h"

/** Bounded wait of the teardown for every flow to close. */
#define TU_PAIR_CLOSE_S 5.0
/** Default watchdog over a whole test (setup to teardown), in seconds. */
#define TU_PAIR_WATCHDOG_S 120u
/** Extra engines one test may make with tu_pair_engine(). */
#define TU_PAIR_MAX_EXTRA 64

typedef struct tu_pair_case {
    void (*body)(void **state);
    const char *name;
} tu_pair_case;

typedef struct tu_pair tu_pair;

struct tu_pair {
    struct ev_loop *loop;
    siptls_config scfg, ccfg; /**< tu_config(.., "server"); scfg listens on setup's URIs */
    tu_rec srec, crec;
    siptls_engine *server, *client;
    siptls_callbacks cb; /**< of every engine the fixture makes (tu_callbacks) */
    int fds_before;
    double close_s; /**< teardown's wait for flows to close (TU_PAIR_CLOSE_S) */
    /** When set, the test itself must close every flow: the teardown
     *  notes any still open when it starts, before closing them. */
    int must_end_closed;
    /** Run first by the teardown, passed or not (say, to remove a test
     *  hook that points into the test's memory). May be NULL. */
    void (*on_teardown)(tu_pair *p);

    /* the fixture's own */
    const tu_pair_case *tcase;
    int passed;
    siptls_engine *extra[TU_PAIR_MAX_EXTRA];
    tu_rec *extra_rec[TU_PAIR_MAX_EXTRA]; /**< owned when extra_owned */
    int extra_owned[TU_PAIR_MAX_EXTRA];
};

/** A cmocka test entry for `fn` with setup `setup_fn` and the pair's
 *  teardown. */
/* clang-format off */
#define TU_PAIR_TEST(fn, setup_fn) \
    {#fn, tu_pair_run, setup_fn, tu_pair_teardown, (void *)&(tu_pair_case){fn, #fn}}
/* clang-format on */

/** For a cmocka setup: a new fixture in *state (which must hold the
 *  TU_PAIR_TEST case). Counts the fds, makes the loop, fills scfg and ccfg
 *  with the test PKI (server certificate "server", CA ca.pem); scfg
 *  listens on each of the URIs given (none: NULL). Starts the watchdog.
 *  tu_pair_new(state, "tls:127.0.0.1:0", "dtls:127.0.0.1:0"). */
#define tu_pair_new(state, ...) tu_pair_new_list((state), __VA_ARGS__, (const char *)NULL)
tu_pair *tu_pair_new_list(void **state, const char *listen, ...);

/** Create the server and the client engine from scfg / ccfg. */
void tu_pair_start(tu_pair *p);

/** Create the server engine only (a test whose peers are raw sockets). */
void tu_pair_start_server(tu_pair *p);

/** An extra engine on the pair's loop with `cfg` and the pair's callbacks,
 *  recording into `rec`, or, when `rec` is NULL, into a recorder of the
 *  fixture's (returned in *rec_out when `rec_out` is not NULL). The
 *  teardown closes, checks and frees it like the pair's own. */
siptls_engine *tu_pair_engine(tu_pair *p, const siptls_config *cfg, tu_rec *rec, tu_rec **rec_out);

/** Free an extra engine before the end of the test (no check). */
void tu_pair_engine_free(tu_pair *p, siptls_engine *e);

/** Give the test `seconds` in all (from now) instead of TU_PAIR_WATCHDOG_S. */
void tu_pair_watchdog(tu_pair *p, unsigned seconds);

/** The engines' open flows (server, client and extras). */
uint64_t tu_pair_flows_open(const tu_pair *p);

/** Predicate (arg: the pair): no engine of the pair has a flow open. */
int tu_pair_all_closed(void *arg);

/** Close the client's flows (siptls_close on every flow its recorder saw
 *  come up) and wait until no engine has a flow open: the server must
 *  close its side by itself (close_notify). Fails the test after
 *  `timeout_s`. */
void tu_pair_close_client(tu_pair *p, double timeout_s);

/** Close every flow the recorders saw come up (the client's first), then
 *  wait until none is open. Fails the test after `timeout_s`. */
void tu_pair_close_all(tu_pair *p, double timeout_s);

/** stats of an engine, by value. */
siptls_stats tu_stats(const siptls_engine *e);

/** What the teardown does, without failing: runs on_teardown; when the
 *  test passed (p->passed), notes open flows if must_end_closed, closes
 *  every flow and notes the engines that
 *  still have one open after close_s; frees every engine; when passed,
 *  notes active libev watchers; destroys the loop, frees the configs and
 *  recorders, and when passed notes a changed fd count. Frees `p`.
 *  Returns non-zero with the notes in `problems` ("; ..." each) when there
 *  are any. */
int tu_pair_finish(tu_pair *p, char *problems, size_t cap);

/* cmocka plumbing of TU_PAIR_TEST */
void tu_pair_run(void **state);
int tu_pair_teardown(void **state);

#endif
