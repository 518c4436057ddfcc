/* siptls — per-flow data and backpressure (include/siptls/flow.h): the
 * host's pointer, the addresses, the write queue's depth, the water marks
 * and on_writable, and the peer's certificate (parsed by the security
 * contexts, secctx_peer.c, from the WOLFSSL the transport hands over).
 *
 * Backpressure: a flow is "full" by the higher of its two fill ratios
 * (messages / tls_async_max_postponed_chunks, bytes /
 * tls_async_max_queued_bytes). A send of the host's that is refused, or
 * that leaves the queue at queue_high_water % or more, arms the flow; once
 * the queue is written down to queue_low_water % (both ratios), the flow
 * is scheduled and on_writable runs from the loop's deferred work, never
 * inside the transport's write nor a host call. */
#include <string.h>

#include "engine_internal.h"

/* ---- the host's pointer -------------------------------------------------- */

int siptls_flow_set_user(siptls_engine *e, siptls_flow_id id, void *user)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_by_id(e, id);
    if (f == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return SIPTLS_ERR_GONE;
    }
    if (!f->reported_up && !f->outbound) {
        /* an inbound flow in its handshake may end without on_flow: the
         * host would have no place to free what it attached */
        return SIPTLS_ERR_INVAL;
    }
    f->user = user;
    return SIPTLS_OK;
}

int siptls_flow_get_user(siptls_engine *e, siptls_flow_id id, void **user)
{
    if (e == NULL || user == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    *user = NULL;
    siptls__flow *f = siptls__table_by_id(e, id);
    if ((f == NULL || f->phase == SIPTLS__PHASE_CLOSED) && e->closing != NULL &&
        e->closing->id == id) {
        f = e->closing; /* inside its on_flow(CLOSED) */
    } else if (f == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return SIPTLS_ERR_GONE;
    }
    *user = f->user;
    return SIPTLS_OK;
}

/* ---- addresses ------------------------------------------------------------- */

int siptls_flow_get_addrs(siptls_engine *e, siptls_flow_id id, siptls_flow_addrs *out)
{
    if (e == NULL || out == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_by_id(e, id);
    if (f == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return SIPTLS_ERR_GONE;
    }
    out->transport = f->ops->kind;
    out->outbound = f->outbound;
    out->local_len = f->local_len;
    out->remote_len = f->remote_len;
    memcpy(&out->local, &f->local, f->local_len);
    memcpy(&out->remote, &f->remote, f->remote_len);
    return SIPTLS_OK;
}

/* ---- backpressure ---------------------------------------------------------- */

int siptls_flow_queue_depth(siptls_engine *e, siptls_flow_id id, unsigned *msgs, size_t *bytes)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_by_id(e, id);
    if (f == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return SIPTLS_ERR_GONE;
    }
    if (msgs != NULL) {
        *msgs = f->q_count;
    }
    if (bytes != NULL) {
        *bytes = f->q_bytes;
    }
    return SIPTLS_OK;
}

int siptls_engine_set_writable_cb(siptls_engine *e, siptls_writable_fn fn)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    e->on_writable = fn;
    return SIPTLS_OK;
}

int siptls__backpressure_init(siptls_engine *e)
{
    const siptls_config *c = &e->cfg;
    if (c->queue_low_water >= c->queue_high_water) {
        siptls__log(e, SIPTLS_LOG_ERR, "queue_low_water (%u) must be below queue_high_water (%u)",
                    c->queue_low_water, c->queue_high_water);
        return SIPTLS_ERR_INVAL;
    }
    uint64_t msgs = c->tls_async_max_postponed_chunks;
    uint64_t bytes = c->tls_async_max_queued_bytes;
    /* high: the first depth at or past the mark (rounded up); low: the
     * last depth at or under it (rounded down) */
    e->hw_msgs = (unsigned)((msgs * c->queue_high_water + 99) / 100);
    e->hw_bytes = (size_t)((bytes * c->queue_high_water + 99) / 100);
    e->lw_msgs = (unsigned)(msgs * c->queue_low_water / 100);
    e->lw_bytes = (size_t)(bytes * c->queue_low_water / 100);
    return SIPTLS_OK;
}

void siptls__flow_after_send(siptls__flow *f, int refused)
{
    siptls_engine *e = f->engine;
    if (refused || f->q_count >= e->hw_msgs || f->q_bytes >= e->hw_bytes) {
        f->writable_armed = 1;
    }
}

void siptls__flow_drained(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (f->writable_armed && f->q_count <= e->lw_msgs && f->q_bytes <= e->lw_bytes) {
        f->writable_armed = 0;
        f->writable_due = 1;
        siptls__engine_schedule(f);
    }
}

void siptls__flow_writable_run(siptls__flow *f)
{
    siptls_engine *e = f->engine;
    if (!f->writable_due || f->phase != SIPTLS__PHASE_UP || f->close_requested ||
        f->pending_fail != 0) {
        return;
    }
    f->writable_due = 0;
    if (e->on_writable != NULL) {
        e->on_writable(e, f->id, e->user);
    }
}

/* ---- the peer's certificate ------------------------------------------------- */

/* The WOLFSSL of an open flow whose handshake completed. */
static int peer_ssl(siptls_engine *e, siptls_flow_id id, struct WOLFSSL **ssl)
{
    if (e == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    siptls__flow *f = siptls__table_by_id(e, id);
    if (f == NULL || f->phase == SIPTLS__PHASE_CLOSED) {
        return SIPTLS_ERR_GONE;
    }
    *ssl = f->ops->session(f);
    return *ssl != NULL ? SIPTLS_OK : SIPTLS_AGAIN;
}

int siptls_flow_peer_cert(siptls_engine *e, siptls_flow_id id, siptls_peer_cert *out)
{
    struct WOLFSSL *ssl = NULL;
    int st = out != NULL ? peer_ssl(e, id, &ssl) : SIPTLS_ERR_INVAL;
    return st == SIPTLS_OK ? siptls__secctx_peer_cert(ssl, out) : st;
}

int siptls_flow_peer_cert_export(siptls_engine *e, siptls_flow_id id, siptls_cert_format fmt,
                                 uint8_t *buf, size_t cap, size_t *len)
{
    if (len != NULL) {
        *len = 0;
    }
    if (fmt != SIPTLS_CERT_DER && fmt != SIPTLS_CERT_PEM) {
        return SIPTLS_ERR_INVAL;
    }
    struct WOLFSSL *ssl = NULL;
    int st = peer_ssl(e, id, &ssl);
    return st == SIPTLS_OK
               ? siptls__secctx_peer_cert_export(ssl, fmt == SIPTLS_CERT_PEM, buf, cap, len)
               : st;
}

int siptls_flow_peer_sans(siptls_engine *e, siptls_flow_id id,
                          int (*fn)(const char *name, size_t len, void *arg), void *arg)
{
    struct WOLFSSL *ssl = NULL;
    int st = fn != NULL ? peer_ssl(e, id, &ssl) : SIPTLS_ERR_INVAL;
    return st == SIPTLS_OK ? siptls__secctx_peer_sans(ssl, fn, arg, NULL) : st;
}
