/* Integration: the loopback pair fixture itself (tests/support/pair.c).
 * Its teardown is what every engine test relies on to find leaked flows,
 * watchers and fds; here it is shown to find each of them, to stay quiet
 * after a test that failed (so the test's own failure is the one
 * reported) without running the loop again, and TU_PAIR_TEST is shown to
 * tell a body that ran to its end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pair.h"

static void no_body(void **state)
{
    (void)state;
}

/* A pair made by hand (not by a cmocka setup), so that a test can look
 * at what its teardown finds. */
static tu_pair *hand_pair(void)
{
    static const tu_pair_case c = {no_body, "hand-made pair"};
    void *st = (void *)&c;
    tu_pair *p = tu_pair_new(&st, "tls:127.0.0.1:0");
    assert_ptr_equal(st, p);
    return p;
}

static int up_both(void *arg)
{
    tu_pair *p = arg;
    return p->crec.ups >= 1 && p->srec.ups >= 1;
}

static int tcp_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static int server_has_flow(void *arg)
{
    return tu_stats(((tu_pair *)arg)->server).flows_open >= 1;
}

static void count_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    (*(int *)w->data)++;
}

/* A test that cleaned up after itself: nothing to say. */
static void test_clean_test_passes(void **state)
{
    (void)state;
    tu_pair *p = hand_pair();
    tu_pair_start(p);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(p->client, tu_uri(p->server, 0, "tls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    tu_run_pred(p->loop, up_both, p, 5, "flow up");
    /* the flow left open is the teardown's to close, gracefully */
    p->passed = 1;
    char problems[1024];
    if (tu_pair_finish(p, problems, sizeof(problems))) {
        fail_msg("a clean test was reported: %s", problems);
    }
}

/* A flow that cannot close in time, a watcher left on the loop and an fd
 * left open: each is named. */
static void test_leaks_are_found(void **state)
{
    (void)state;
    tu_pair *p = hand_pair();
    p->close_s = 0.3; /* the half-open flow below waits for a hello for 10 s */
    tu_pair_start(p);
    int raw = tcp_connect(siptls_listener_port(p->server, 0));
    tu_run_pred(p->loop, server_has_flow, p, 5, "the server took the connection");
    int calls = 0;
    ev_timer left;
    ev_timer_init(&left, count_cb, 60.0, 0.0);
    left.data = &calls;
    ev_timer_start(p->loop, &left);
    int leaked = dup(STDERR_FILENO);
    assert_true(leaked >= 0);
    p->passed = 1;
    char problems[1024];
    assert_true(tu_pair_finish(p, problems, sizeof(problems)));
    close(raw);
    close(leaked);
    assert_non_null(strstr(problems, "server: 1 flow(s) still open"));
    assert_non_null(strstr(problems, "libev watcher(s) still active"));
    assert_non_null(strstr(problems, "fd(s) at the end"));
    assert_int_equal(calls, 0);
}

/* must_end_closed: a flow the test left open is named although the
 * teardown closes it. */
static void test_must_end_closed(void **state)
{
    (void)state;
    tu_pair *p = hand_pair();
    p->must_end_closed = 1;
    tu_pair_start(p);
    siptls_flow_id f = 0;
    assert_int_equal(siptls_connect(p->client, tu_uri(p->server, 0, "tls", "127.0.0.1"), &f),
                     SIPTLS_OK);
    tu_run_pred(p->loop, up_both, p, 5, "flow up");
    p->passed = 1;
    char problems[1024];
    assert_true(tu_pair_finish(p, problems, sizeof(problems)));
    assert_non_null(strstr(problems, "client at the end of the test: 1 flow(s) still open"));
    assert_non_null(strstr(problems, "server at the end of the test: 1 flow(s) still open"));
    /* closed by the teardown all the same */
    assert_null(strstr(problems, "; server: "));
    assert_null(strstr(problems, "; client: "));
    assert_null(strstr(problems, "fd(s)"));
}

/* After a failed test nothing is checked and the loop is not run again
 * (the failed test's callbacks may point into its stack). */
static void test_failed_test_not_checked(void **state)
{
    (void)state;
    tu_pair *p = hand_pair();
    tu_pair_start(p);
    int calls = 0;
    ev_timer due;
    ev_timer_init(&due, count_cb, 0.0, 0.0);
    due.data = &calls;
    ev_timer_start(p->loop, &due);
    int leaked = dup(STDERR_FILENO);
    assert_true(leaked >= 0);
    char problems[1024];
    assert_false(tu_pair_finish(p, problems, sizeof(problems)));
    close(leaked);
    assert_string_equal(problems, "");
    assert_int_equal(calls, 0);
}

/* TU_PAIR_TEST: the teardown knows a body that ran to its end. */
static tu_pair *E;
static int g_seen_passed = -1;

static int setup(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0");
    return 0;
}

static void remember_passed(tu_pair *p)
{
    g_seen_passed = p->passed;
}

static void test_body_runs_to_its_end(void **state)
{
    (void)state;
    E->on_teardown = remember_passed;
    tu_pair_start(E);
    assert_int_equal(E->passed, 0);
}

static void test_teardown_saw_it(void **state)
{
    (void)state;
    assert_int_equal(g_seen_passed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_test_passes),
        cmocka_unit_test(test_leaks_are_found),
        cmocka_unit_test(test_must_end_closed),
        cmocka_unit_test(test_failed_test_not_checked),
        TU_PAIR_TEST(test_body_runs_to_its_end, setup),
        cmocka_unit_test(test_teardown_saw_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
