/* siptls — the transports the engine knows. The one place that names them:
 * the engine finds a transport by kind here and otherwise only reads its
 * profile and calls its ops (src/transport.h). */
#include "engine_internal.h"

static const siptls__transport_ops *const all[] = {&siptls__tls_ops, &siptls__dtls_ops};

const siptls__transport_ops *siptls__engine_ops(siptls_transport t)
{
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i]->kind == t) {
            return all[i];
        }
    }
    return NULL;
}

const siptls__transport_ops *siptls__transport_at(size_t i)
{
    return i < sizeof(all) / sizeof(all[0]) ? all[i] : NULL;
}
