/* siptls — SIP over DTLS over UDP (placeholder until the DTLS transport
 * lands: every operation reports SIPTLS_ERR_NOT_SUPPORTED). */
#include "engine_internal.h"

static int dtls_listen(siptls_engine *e, siptls__listener *l)
{
    (void)e;
    (void)l;
    return SIPTLS_ERR_NOT_SUPPORTED;
}

static void dtls_listener_io(siptls_engine *e, siptls__listener *l)
{
    (void)e;
    (void)l;
}

static void dtls_listener_close(siptls_engine *e, siptls__listener *l)
{
    (void)e;
    (void)l;
}

static int dtls_connect(siptls__flow *f)
{
    (void)f;
    return SIPTLS_ERR_NOT_SUPPORTED;
}

static void dtls_noop(siptls__flow *f)
{
    (void)f;
}

static void dtls_io(siptls__flow *f, int revents)
{
    (void)f;
    (void)revents;
}

static int dtls_next_timeout(siptls__flow *f, uint64_t *deadline_ms)
{
    (void)f;
    (void)deadline_ms;
    return 0;
}

const siptls__transport_ops siptls__dtls_ops = {
    .kind = SIPTLS_TRANSPORT_DTLS,
    .name = "dtls",
    .listen = dtls_listen,
    .listener_io = dtls_listener_io,
    .listener_close = dtls_listener_close,
    .connect = dtls_connect,
    .io = dtls_io,
    .flush = dtls_noop,
    .next_timeout = dtls_next_timeout,
    .on_timeout = dtls_noop,
    .shutdown = dtls_noop,
    .free = dtls_noop,
    .info = NULL,
};
