/* Integration: flow tokens (include/siptls/token.h). A token names one open
 * flow of one engine of one process: it reads back to that flow while the
 * flow is open, and every other text -- altered at any character,
 * truncated, extended, of a closed flow, of another engine, of another
 * process (a child of fork(), a made-up boot id), under another key --
 * looks up as gone. Real flows over loopback (tu_pair), TLS and DTLS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_internal.h"
#include "pair.h"

static tu_pair *E;

static int setup(void **state)
{
    E = tu_pair_new(state, "tls:127.0.0.1:0", "dtls:127.0.0.1:0");
    return 0;
}

static int ups_at_least(void *arg)
{
    const unsigned *want = arg;
    return E->crec.ups >= want[0] && E->srec.ups >= want[1];
}

/* Open `n` flows of listener `listener` from the client; wait until both
 * sides saw them up. */
static void open_flows(int listener, const char *scheme, unsigned n, siptls_flow_id *ids)
{
    unsigned want[2] = {E->crec.ups + n, E->srec.ups + n};
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(
            siptls_open(E->client, tu_uri(E->server, listener, scheme, "127.0.0.1"), &ids[i]),
            SIPTLS_OK);
    }
    tu_run_pred(E->loop, ups_at_least, want, 10, "flows up");
}

static int is_b64url(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

static void test_round_trip(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_flow_id c[3];
    open_flows(0, "tls", 2, c);
    open_flows(1, "dtls", 1, c + 2);
    char tok[3][SIPTLS_FLOW_TOKEN_SIZE];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(siptls_flow_token(E->client, c[i], tok[i], sizeof(tok[i])), SIPTLS_OK);
        assert_int_equal(strlen(tok[i]), SIPTLS_FLOW_TOKEN_LEN);
        assert_true(is_b64url(tok[i]));
        siptls_flow_id back = 0;
        assert_int_equal(siptls_flow_from_token(E->client, tok[i], &back), SIPTLS_OK);
        assert_int_equal(back, c[i]);
        assert_int_equal(siptls_flow_from_token(E->client, tok[i], NULL), SIPTLS_OK);
        /* the same flow, the same token */
        char again[SIPTLS_FLOW_TOKEN_SIZE];
        assert_int_equal(siptls_flow_token(E->client, c[i], again, sizeof(again)), SIPTLS_OK);
        assert_string_equal(again, tok[i]);
    }
    assert_string_not_equal(tok[0], tok[1]);
    assert_string_not_equal(tok[1], tok[2]);
    /* sequential ids do not show: the tokens of ids 1 and 2 share no
     * prefix of more than a few characters by chance */
    size_t common = 0;
    while (tok[0][common] == tok[1][common]) {
        common++;
    }
    assert_true(common < 6);

    /* the server's flows have tokens of its own */
    siptls_flow_id s0 = E->srec.up_ids[0];
    char st[SIPTLS_FLOW_TOKEN_SIZE];
    assert_int_equal(siptls_flow_token(E->server, s0, st, sizeof(st)), SIPTLS_OK);
    siptls_flow_id back = 0;
    assert_int_equal(siptls_flow_from_token(E->server, st, &back), SIPTLS_OK);
    assert_int_equal(back, s0);

    /* arguments */
    char small[SIPTLS_FLOW_TOKEN_LEN];
    assert_int_equal(siptls_flow_token(E->client, c[0], small, sizeof(small)), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_token(NULL, c[0], st, sizeof(st)), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_token(E->client, c[0], NULL, 64), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_token(E->client, 9999, st, sizeof(st)), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_token(E->client, 0, st, sizeof(st)), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_from_token(NULL, tok[0], &back), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_flow_from_token(E->client, NULL, &back), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_engine_id(NULL), 0);
    assert_int_not_equal(siptls_engine_id(E->client), 0);
    assert_int_not_equal(siptls_engine_id(E->client), siptls_engine_id(E->server));
}

/* Every single-character change, every truncation and extension, bad
 * characters and the non-canonical spellings of the last character. */
static void test_forged(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_flow_id c[2];
    open_flows(0, "tls", 2, c);
    char tok[SIPTLS_FLOW_TOKEN_SIZE];
    assert_int_equal(siptls_flow_token(E->client, c[0], tok, sizeof(tok)), SIPTLS_OK);
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char t[SIPTLS_FLOW_TOKEN_SIZE + 8];
    siptls_flow_id back = 0;
    unsigned tried = 0;
    for (size_t i = 0; i < SIPTLS_FLOW_TOKEN_LEN; i++) {
        for (size_t k = 0; k < 64; k++) {
            if (alphabet[k] == tok[i]) {
                continue;
            }
            memcpy(t, tok, sizeof(tok));
            t[i] = alphabet[k];
            assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
            assert_int_equal(siptls_flow_token_engine(E->client, t, NULL), SIPTLS_ERR_GONE);
            tried++;
        }
    }
    assert_int_equal(tried, SIPTLS_FLOW_TOKEN_LEN * 63);
    for (size_t n = 0; n < SIPTLS_FLOW_TOKEN_LEN; n++) {
        memcpy(t, tok, n);
        t[n] = '\0';
        assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
    }
    snprintf(t, sizeof(t), "%sA", tok);
    assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
    snprintf(t, sizeof(t), "%s ", tok);
    assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
    /* base64 with + and / instead of - and _, padding, case folding */
    for (size_t i = 0; i < SIPTLS_FLOW_TOKEN_LEN; i++) {
        memcpy(t, tok, sizeof(tok));
        t[i] = tok[i] == '-' ? '+' : tok[i] == '_' ? '/' : '=';
        assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
    }
    int folded = 0;
    for (size_t i = 0; i < SIPTLS_FLOW_TOKEN_LEN; i++) {
        char ch = tok[i];
        t[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
        folded |= t[i] != ch;
    }
    t[SIPTLS_FLOW_TOKEN_LEN] = '\0';
    if (folded) {
        assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
    }
    /* The last character carries 2 bits: its 4 low bits are zero in the
     * one spelling a token has; the others decode to the same bytes and
     * are still refused. */
    int last = (int)(strchr(alphabet, tok[SIPTLS_FLOW_TOKEN_LEN - 1]) - alphabet);
    assert_int_equal(last & 15, 0);
    for (int low = 1; low < 16; low++) {
        memcpy(t, tok, sizeof(tok));
        t[SIPTLS_FLOW_TOKEN_LEN - 1] = alphabet[last | low];
        assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
    }
    /* random texts of the right shape */
    srand(7);
    for (int r = 0; r < 2000; r++) {
        for (size_t i = 0; i < SIPTLS_FLOW_TOKEN_LEN; i++) {
            t[i] = alphabet[rand() % 64];
        }
        t[SIPTLS_FLOW_TOKEN_LEN - 1] = alphabet[(rand() % 4) << 4];
        t[SIPTLS_FLOW_TOKEN_LEN] = '\0';
        assert_int_equal(siptls_flow_from_token(E->client, t, &back), SIPTLS_ERR_GONE);
    }
    /* the genuine one still works */
    assert_int_equal(siptls_flow_from_token(E->client, tok, &back), SIPTLS_OK);
    assert_int_equal(back, c[0]);
}

static int client_closed(void *arg)
{
    const unsigned *want = arg;
    return E->crec.closes >= *want;
}

/* A closed flow's token is gone, also once a later flow exists. */
static void test_stale(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_flow_id c[1];
    open_flows(0, "tls", 1, c);
    char tok[SIPTLS_FLOW_TOKEN_SIZE];
    assert_int_equal(siptls_flow_token(E->client, c[0], tok, sizeof(tok)), SIPTLS_OK);
    assert_int_equal(siptls_close(E->client, c[0]), SIPTLS_OK);
    /* being closed: gone at once */
    siptls_flow_id back = 0;
    assert_int_equal(siptls_flow_from_token(E->client, tok, &back), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_token(E->client, c[0], tok, sizeof(tok)), SIPTLS_ERR_GONE);
    unsigned one = 1;
    tu_run_pred(E->loop, client_closed, &one, 5, "closed");
    assert_int_equal(siptls_flow_from_token(E->client, tok, &back), SIPTLS_ERR_GONE);
    siptls_flow_id d[1];
    open_flows(0, "tls", 1, d);
    assert_int_equal(siptls_flow_from_token(E->client, tok, &back), SIPTLS_ERR_GONE);
    /* the engine still knows whose it was: it is authentic, only stale */
    uint32_t eid = 0;
    assert_int_equal(siptls_flow_token_engine(E->client, tok, &eid), SIPTLS_OK);
    assert_int_equal(eid, siptls_engine_id(E->client));
}

/* Another engine of this process: gone there, traceable to its engine. */
static void test_foreign_engine(void **state)
{
    (void)state;
    tu_pair_start(E);
    /* a second client with the same configuration: its flow ids are the
     * same numbers as the first one's */
    tu_rec *rec2 = NULL;
    siptls_engine *c2 = tu_pair_engine(E, &E->ccfg, NULL, &rec2);
    siptls_flow_id a = 0, b = 0;
    const char *uri = tu_uri(E->server, 0, "tls", "127.0.0.1");
    assert_int_equal(siptls_open(E->client, uri, &a), SIPTLS_OK);
    assert_int_equal(siptls_open(c2, uri, &b), SIPTLS_OK);
    assert_int_equal(a, b);
    unsigned want[2] = {1, 2};
    tu_run_pred(E->loop, ups_at_least, want, 10, "flows up");
    char ta[SIPTLS_FLOW_TOKEN_SIZE], tb[SIPTLS_FLOW_TOKEN_SIZE];
    assert_int_equal(siptls_flow_token(E->client, a, ta, sizeof(ta)), SIPTLS_OK);
    assert_int_equal(siptls_flow_token(c2, b, tb, sizeof(tb)), SIPTLS_OK);
    assert_string_not_equal(ta, tb);
    siptls_flow_id back = 0;
    assert_int_equal(siptls_flow_from_token(c2, ta, &back), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_from_token(E->client, tb, &back), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_from_token(E->server, ta, &back), SIPTLS_ERR_GONE);
    /* routing among engines: each one can tell whose a token is */
    uint32_t eid = 0;
    assert_int_equal(siptls_flow_token_engine(c2, ta, &eid), SIPTLS_OK);
    assert_int_equal(eid, siptls_engine_id(E->client));
    assert_int_equal(siptls_flow_token_engine(E->server, tb, &eid), SIPTLS_OK);
    assert_int_equal(eid, siptls_engine_id(c2));
    /* a key of its own: c2's tokens are its own business now */
    uint8_t key[32];
    memset(key, 0x42, sizeof(key));
    assert_int_equal(siptls_engine_set_token_key(c2, key, sizeof(key)), SIPTLS_OK);
    assert_int_equal(siptls_flow_from_token(c2, tb, &back), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_token_engine(c2, ta, &eid), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_token(c2, b, tb, sizeof(tb)), SIPTLS_OK);
    assert_int_equal(siptls_flow_from_token(c2, tb, &back), SIPTLS_OK);
    assert_int_equal(back, b);
    assert_int_equal(siptls_flow_token_engine(E->client, tb, &eid), SIPTLS_ERR_GONE);
    (void)rec2;
}

/* The host's key: tokens under the old key stop working; bad keys are
 * refused. A made-up boot id (another run of the process) with the same
 * key, engine id and flow id is refused; the real one is accepted. */
static void test_key_and_boot(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_flow_id c[1];
    open_flows(0, "tls", 1, c);
    char before[SIPTLS_FLOW_TOKEN_SIZE], after[SIPTLS_FLOW_TOKEN_SIZE];
    assert_int_equal(siptls_flow_token(E->client, c[0], before, sizeof(before)), SIPTLS_OK);
    uint8_t key[64];
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)(i * 7 + 1);
    }
    assert_int_equal(siptls_engine_set_token_key(E->client, key, 15), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_engine_set_token_key(E->client, key, 65), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_engine_set_token_key(E->client, NULL, 32), SIPTLS_ERR_INVAL);
    assert_int_equal(siptls_engine_set_token_key(NULL, key, 32), SIPTLS_ERR_INVAL);
    /* refused keys changed nothing */
    siptls_flow_id back = 0;
    assert_int_equal(siptls_flow_from_token(E->client, before, &back), SIPTLS_OK);
    assert_int_equal(siptls_engine_set_token_key(E->client, key, 32), SIPTLS_OK);
    assert_int_equal(siptls_flow_from_token(E->client, before, &back), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_token(E->client, c[0], after, sizeof(after)), SIPTLS_OK);
    assert_string_not_equal(before, after);
    assert_int_equal(siptls_flow_from_token(E->client, after, &back), SIPTLS_OK);

    /* the same key, engine and flow, another boot id: gone; this
     * process's boot id: the very token the engine made */
    uint8_t boot[16], dkey[32];
    assert_int_equal(siptls__token_process(boot, dkey), 0);
    char forged[SIPTLS_FLOW_TOKEN_SIZE], real[SIPTLS_FLOW_TOKEN_SIZE];
    assert_int_equal(siptls__token_make(key, 32, boot, siptls_engine_id(E->client), c[0], real), 0);
    assert_string_equal(real, after);
    boot[0] ^= 1;
    assert_int_equal(siptls__token_make(key, 32, boot, siptls_engine_id(E->client), c[0], forged),
                     0);
    assert_int_equal(siptls_flow_from_token(E->client, forged, &back), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_token_engine(E->client, forged, NULL), SIPTLS_ERR_GONE);
}

/* A child of fork() is another process: it draws a boot id of its own, so
 * the token it makes with the same key for the same engine id and flow id
 * does not look up in the parent. */
static void test_other_process(void **state)
{
    (void)state;
    tu_pair_start(E);
    siptls_flow_id c[1];
    open_flows(0, "tls", 1, c);
    uint8_t key[32];
    memset(key, 0x17, sizeof(key));
    assert_int_equal(siptls_engine_set_token_key(E->client, key, sizeof(key)), SIPTLS_OK);
    char mine[SIPTLS_FLOW_TOKEN_SIZE];
    assert_int_equal(siptls_flow_token(E->client, c[0], mine, sizeof(mine)), SIPTLS_OK);
    uint32_t eid = siptls_engine_id(E->client);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child touches nothing of the parent's engines */
        char t[SIPTLS_FLOW_TOKEN_SIZE] = "";
        uint8_t boot[16], dkey[32];
        if (siptls__token_process(boot, dkey) == 0) {
            siptls__token_make(key, sizeof(key), boot, eid, c[0], t);
        }
        ssize_t w = write(fds[1], t, sizeof(t));
        _exit(w == (ssize_t)sizeof(t) ? 0 : 1);
    }
    close(fds[1]);
    char theirs[SIPTLS_FLOW_TOKEN_SIZE];
    ssize_t got = 0;
    for (int i = 0; i < 100 && got < (ssize_t)sizeof(theirs); i++) {
        ssize_t r = read(fds[0], theirs + got, sizeof(theirs) - (size_t)got);
        if (r <= 0) {
            break;
        }
        got += r;
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, sizeof(theirs));
    assert_int_equal(strlen(theirs), SIPTLS_FLOW_TOKEN_LEN);
    assert_string_not_equal(theirs, mine);
    siptls_flow_id back = 0;
    assert_int_equal(siptls_flow_from_token(E->client, theirs, &back), SIPTLS_ERR_GONE);
    assert_int_equal(siptls_flow_from_token(E->client, mine, &back), SIPTLS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TU_PAIR_TEST(test_round_trip, setup),   TU_PAIR_TEST(test_forged, setup),
        TU_PAIR_TEST(test_stale, setup),        TU_PAIR_TEST(test_foreign_engine, setup),
        TU_PAIR_TEST(test_key_and_boot, setup), TU_PAIR_TEST(test_other_process, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
