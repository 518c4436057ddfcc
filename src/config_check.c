/* siptls — configuration check: load what an engine would load, bind
 * nothing (siptls_config_check, used by `siptls config`).
 *
 * The security contexts are built exactly as the engine builds them
 * (siptls__secctx_new), so a check cannot pass a file the engine would
 * refuse, and the messages are the engine's own. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "secctx.h"
#include "siptls/engine.h"

/* err->msg is shorter than a log line: keep its beginning. */
static void set_msg(siptls_config_error *err, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof(err->msg)) {
        n = sizeof(err->msg) - 1;
    }
    memcpy(err->msg, text, n);
    err->msg[n] = '\0';
}

typedef struct check_ctx {
    const siptls_config *cfg;
    const siptls_callbacks *cb;
    void *user;
    siptls_config_error *err;
    int have_error;
} check_ctx;

__attribute__((format(printf, 3, 4))) static void check_log(void *arg, siptls_log_level level,
                                                            const char *fmt, ...)
{
    check_ctx *c = arg;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (level == SIPTLS_LOG_ERR && !c->have_error) {
        c->have_error = 1;
        if (c->err != NULL) {
            set_msg(c->err, text);
        }
    }
    if (c->cb != NULL && c->cb->log != NULL && (int)level <= c->cfg->log_level) {
        c->cb->log(level, text, c->user);
    }
}

static int fail(check_ctx *c, int status)
{
    if (c->err != NULL) {
        c->err->status = status;
        if (!c->have_error) {
            set_msg(c->err, siptls_strerror(status));
        }
    }
    return status;
}

int siptls_config_check(const siptls_config *cfg, siptls_config_error *err,
                        const siptls_callbacks *cb, void *user)
{
    if (err != NULL) {
        memset(err, 0, sizeof(*err));
    }
    check_ctx c = {cfg, cb, user, err, 0};
    if (cfg == NULL) {
        return fail(&c, SIPTLS_ERR_INVAL);
    }
    if (cfg->queue_low_water >= cfg->queue_high_water) {
        /* the engine's own words (siptls__backpressure_init) */
        check_log(&c, SIPTLS_LOG_ERR, "queue_low_water (%u) must be below queue_high_water (%u)",
                  cfg->queue_low_water, cfg->queue_high_water);
        return fail(&c, SIPTLS_ERR_INVAL);
    }
    int want_dtls = 0;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        siptls_uri u;
        int st = siptls_config_listen_uri(cfg, i, &u);
        if (st != SIPTLS_OK) {
            check_log(&c, SIPTLS_LOG_ERR, "listen '%s': %s", cfg->listen[i], siptls_strerror(st));
            return fail(&c, st);
        }
        want_dtls |= u.transport == SIPTLS_TRANSPORT_DTLS;
    }
    /* TLS always: outbound TLS flows use it even without a listener. */
    for (int dtls = 0; dtls <= want_dtls; dtls++) {
        siptls__secctx *s = NULL;
        int st = siptls__secctx_new(&s, cfg, dtls, check_log, &c);
        if (st != SIPTLS_OK) {
            return fail(&c, st);
        }
        int has_cert = siptls__secctx_has_server_cert(s);
        siptls__secctx_free(s);
        for (size_t i = 0; i < cfg->n_listen && !has_cert; i++) {
            siptls_uri u;
            if (siptls_config_listen_uri(cfg, i, &u) == SIPTLS_OK &&
                (u.transport == SIPTLS_TRANSPORT_DTLS) == (dtls != 0)) {
                /* the engine's own words (siptls_listen) */
                check_log(&c, SIPTLS_LOG_ERR,
                          "listen '%s': the default server domain has no certificate",
                          cfg->listen[i]);
                return fail(&c, SIPTLS_ERR_CERT);
            }
        }
    }
    return SIPTLS_OK;
}
