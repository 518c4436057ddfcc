#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tu_pki(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, 512, "%s/%s", SIPTLS_PKI_DIR, name);
    return b;
}

void tu_set(siptls_config *cfg, const char *key, const char *value)
{
    siptls_config_error err;
    int st = siptls_config_set(cfg, key, value, &err);
    if (st != SIPTLS_OK) {
        fail_msg("config %s = %s: %s", key, value, err.msg);
    }
}

void tu_config(siptls_config *cfg, const char *server_name)
{
    assert_int_equal(siptls_config_init(cfg), SIPTLS_OK);
    char v[600];
    snprintf(v, sizeof(v), "[server:default]%s", tu_pki(server_name));
    strcat(v, ".pem");
    tu_set(cfg, "certificate", v);
    snprintf(v, sizeof(v), "[server:default]%s.key", tu_pki(server_name));
    tu_set(cfg, "private_key", v);
    snprintf(v, sizeof(v), "[client:default]%s", tu_pki("ca.pem"));
    tu_set(cfg, "ca_list", v);
    cfg->log_level = getenv("SIPTLS_TEST_DEBUG") ? SIPTLS_LOG_DEBUG : SIPTLS_LOG_ERR;
}

uint32_t tu_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }
    return ~c;
}

static void rec_message(siptls_engine *e, siptls_flow_id flow, const siptls_msg *m, void *user)
{
    (void)e;
    tu_rec *r = user;
    if (r->n_msgs < TU_MAX_MSGS) {
        tu_msg *t = &r->msgs[r->n_msgs++];
        t->flow = flow;
        t->len = m->len;
        t->crc = tu_crc32(m->data, m->len);
        t->copy = NULL;
        if (r->keep_copies) {
            t->copy = malloc(m->len);
            memcpy(t->copy, m->data, m->len);
        }
    }
    if (r->on_msg != NULL) {
        r->on_msg(r, flow, m);
    }
}

static void rec_flow(siptls_engine *e, siptls_flow_id flow, siptls_flow_state state, int reason,
                     void *user)
{
    (void)e;
    tu_rec *r = user;
    if (state == SIPTLS_FLOW_UP) {
        if (r->ups < TU_MAX_FLOWS) {
            r->up_ids[r->ups] = flow;
        }
        r->ups++;
    } else if (state == SIPTLS_FLOW_MOVED) {
        if (r->moves < TU_MAX_FLOWS) {
            r->moved_ids[r->moves] = flow;
        }
        r->moves++;
    } else {
        if (r->closes < TU_MAX_FLOWS) {
            r->closed_ids[r->closes] = flow;
            r->close_reasons[r->closes] = reason;
        }
        r->closes++;
    }
}

static void rec_keepalive(siptls_engine *e, siptls_flow_id flow, siptls_keepalive_kind kind,
                          void *user)
{
    (void)e;
    (void)flow;
    tu_rec *r = user;
    if (kind == SIPTLS_KEEPALIVE_PING) {
        r->pings++;
    } else {
        r->pongs++;
    }
}

static void rec_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if (getenv("SIPTLS_TEST_DEBUG") || level == SIPTLS_LOG_ERR) {
        fprintf(stderr, "[log %d] %s\n", (int)level, text);
    }
}

const siptls_callbacks tu_callbacks = {rec_message, rec_flow, rec_keepalive, rec_log};

void tu_rec_reset(tu_rec *r)
{
    for (unsigned i = 0; i < r->n_msgs && i < TU_MAX_MSGS; i++) {
        free(r->msgs[i].copy);
    }
    siptls_engine *e = r->engine;
    memset(r, 0, sizeof(*r));
    r->engine = e;
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(int *)w->data = 1;
    ev_break(loop, EVBREAK_ONE);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

int tu_run_wait(struct ev_loop *loop, int (*pred)(void *), void *arg, double timeout_s)
{
    int expired = 0;
    ev_timer wd, tick;
    ev_timer_init(&wd, watchdog_cb, timeout_s, 0.0);
    wd.data = &expired;
    ev_timer_start(loop, &wd);
    /* A predicate may depend on another thread (a raw peer): wake up
     * regularly to look at it even when the loop has nothing to do. */
    ev_timer_init(&tick, tick_cb, 0.01, 0.01);
    ev_timer_start(loop, &tick);
    while (!pred(arg) && !expired) {
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &wd);
    ev_timer_stop(loop, &tick);
    return pred(arg);
}

void tu_run_pred(struct ev_loop *loop, int (*pred)(void *), void *arg, double timeout_s,
                 const char *what)
{
    if (!tu_run_wait(loop, pred, arg, timeout_s)) {
        fail_msg("watchdog: %s did not happen within %.1f s", what, timeout_s);
    }
}

static int flag_set(void *arg)
{
    return *(const int *)arg != 0;
}

void tu_run_until(struct ev_loop *loop, const int *done, double timeout_s, const char *what)
{
    tu_run_pred(loop, flag_set, (void *)done, timeout_s, what);
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

void tu_run_for(struct ev_loop *loop, double seconds)
{
    int expired = 0;
    ev_timer wd;
    ev_timer_init(&wd, watchdog_cb, seconds, 0.0);
    wd.data = &expired;
    ev_timer_start(loop, &wd);
    while (!expired) {
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &wd);
    (void)never;
}

int tu_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own fd */
}

static int make_head(char *head, size_t cap, unsigned seq, const char *via_transport, size_t body,
                     size_t pad)
{
    return snprintf(head, cap,
                    "MESSAGE sip:test@127.0.0.1 SIP/2.0\r\n"
                    "Via: SIP/2.0/%s 127.0.0.1;branch=z9hG4bK%u\r\n"
                    "From: <sip:a@127.0.0.1>;tag=%u\r\n"
                    "To: <sip:test@127.0.0.1>\r\n"
                    "Call-ID: %u@siptls.test\r\n"
                    "CSeq: %u MESSAGE\r\n"
                    "Content-Type: text/plain\r\n"
                    "X-Pad: %.*s\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    via_transport, seq, seq, seq, seq % 100000 + 1, (int)pad,
                    "pppppppppppppppppppppppppppppppp", body);
}

uint8_t *tu_make_request(size_t total, unsigned seq, const char *via_transport)
{
    char head[512];
    /* Fix the body length first (so the Content-Length digits are fixed),
     * then pad a header so that the whole message is exactly `total`. */
    int h0 = make_head(head, sizeof(head), seq, via_transport, total, 0);
    size_t body = total > (size_t)h0 + 16 ? total - (size_t)h0 - 16 : 0;
    int h1 = make_head(head, sizeof(head), seq, via_transport, body, 0);
    size_t pad = total > (size_t)h1 + body ? total - (size_t)h1 - body : 0;
    int hl = make_head(head, sizeof(head), seq, via_transport, body, pad);
    uint8_t *buf = malloc((size_t)hl + body);
    memcpy(buf, head, (size_t)hl);
    uint32_t x = seq * 2654435761u + 1;
    for (size_t i = 0; i < body; i++) {
        x = x * 1103515245u + 12345u;
        buf[hl + i] = (uint8_t)('a' + (x >> 16) % 26);
    }
    return buf;
}

const char *tu_uri(siptls_engine *e, int listener, const char *scheme, const char *host)
{
    static char buf[4][128];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 128, "%s:%s:%u", scheme, host, siptls_listener_port(e, listener));
    return b;
}
