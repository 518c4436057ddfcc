/* siptls — DTLS transport: Connection ID datagrams that reach another
 * engine's socket.
 *
 * Engines of one process may share a DTLS port (reuse_port: one engine,
 * one socket per thread); the kernel picks a socket by hashing the
 * datagram's 4-tuple. A peer whose NAT rebinds sends its CID records from
 * a new 4-tuple, which usually hashes to another engine's socket. So the
 * first byte of every CID we hand out is a process-wide tag naming the
 * engine that owns the session (the rest stays random), and a listener
 * that reads a CID record with another engine's tag posts a copy of the
 * datagram to that engine (siptls_engine_post), where its listener on the
 * same local address and port reads it as if it had come to its own
 * socket (docs/dtls.md "Rebinding with several engines").
 *
 * Threading: the tag registry is process-wide, under g_route_lock. An
 * engine takes a tag on its own thread when its first CID listener opens
 * and gives it back when its last one closes (siptls_engine_free() closes
 * its listeners before it frees its mailbox); a forwarding thread looks
 * the owner up and posts while holding the lock, so it never posts to an
 * engine that has given its tag back. Everything else here (the listener
 * list, the tag in dtls_shared) belongs to the engine's thread. */
#include <pthread.h>

#include "dtls_transport.h"
#include "siptls/threads.h"

#define ROUTE_TAGS 256
/* sources of forwarded datagrams a listener remembers (direct-mapped) */
#define SEEN_SLOTS 256

static pthread_mutex_t g_route_lock = PTHREAD_MUTEX_INITIALIZER;
static siptls_engine *g_owner[ROUTE_TAGS];
static unsigned g_route_next;

/* Where the last datagram from `addr` was forwarded: its STUN keepalives,
 * which carry no CID, go the same way (the owner touches the session). */
struct route_seen {
    struct sockaddr_storage addr;
    int tag1; /* tag + 1; 0: empty */
};

/* A datagram on its way to the engine that owns its CID. */
typedef struct route_dg {
    struct sockaddr_storage from;
    socklen_t from_len;
    struct sockaddr_storage bound; /* the receiving listener's address (and port) */
    struct sockaddr_storage local; /* the address it was sent to (IP_PKTINFO) */
    int have_local;
    size_t len;
    uint8_t dg[];
} route_dg;

static void take_tag(siptls_engine *e, dtls_shared *sh)
{
    pthread_mutex_lock(&g_route_lock);
    for (unsigned i = 0; i < ROUTE_TAGS; i++) {
        unsigned t = (g_route_next + i) % ROUTE_TAGS;
        if (g_owner[t] == NULL) {
            g_owner[t] = e;
            sh->tag = (int)t;
            g_route_next = t + 1;
            break;
        }
    }
    pthread_mutex_unlock(&g_route_lock);
    if (sh->tag < 0) {
        siptls__log(e, SIPTLS_LOG_WARN,
                    "dtls: %d engines of this process use Connection IDs already: this one's "
                    "CIDs carry no engine tag, and its listeners forward no datagram",
                    ROUTE_TAGS);
    }
}

void siptls__dtls_route_release(dtls_shared *sh)
{
    if (sh->tag < 0) {
        return;
    }
    pthread_mutex_lock(&g_route_lock);
    g_owner[sh->tag] = NULL;
    pthread_mutex_unlock(&g_route_lock);
    sh->tag = -1;
}

void siptls__dtls_route_add(dtls_shared *sh, dtls_listener *dl)
{
    dl->lnext = sh->listeners;
    sh->listeners = dl;
    if (dl->cid_len == 0) {
        return;
    }
    if (sh->tag < 0) {
        take_tag(dl->engine, sh);
    }
    dl->tag = sh->tag;
    /* Without reuse_port no other socket of this process has the port:
     * a CID with another engine's tag is not ours to pass on. */
    dl->forward = sh->tag >= 0 && siptls__engine_config(dl->engine)->reuse_port;
    if (dl->forward) {
        dl->seen = calloc(SEEN_SLOTS, sizeof(*dl->seen)); /* NULL: STUN is not followed */
    }
}

void siptls__dtls_route_del(dtls_shared *sh, dtls_listener *dl)
{
    int cid_left = 0;
    for (dtls_listener **pp = &sh->listeners; *pp != NULL;) {
        if (*pp == dl) {
            *pp = dl->lnext;
            continue;
        }
        cid_left |= (*pp)->cid_len != 0;
        pp = &(*pp)->lnext;
    }
    dl->lnext = NULL;
    if (!cid_left) {
        siptls__dtls_route_release(sh);
    }
}

void siptls__dtls_route_mark(const dtls_listener *dl, uint8_t *cid)
{
    if (dl->tag >= 0) {
        cid[0] = (uint8_t)dl->tag;
    }
}

/* On the owner's loop (or SIPTLS_ERR_SHUTDOWN from its siptls_engine_free). */
static void route_run(siptls_engine *e, void *arg, int status)
{
    route_dg *d = arg;
    if (status != SIPTLS_OK) {
        free(d);
        return;
    }
    dtls_shared *sh = siptls__dtls_shared_of(e);
    dtls_listener *dl = sh != NULL ? sh->listeners : NULL;
    while (dl != NULL && (dl->l == NULL || !siptls__addr_equal((struct sockaddr *)&dl->local,
                                                               (struct sockaddr *)&d->bound))) {
        dl = dl->lnext;
    }
    if (dl == NULL) {
        /* The listener closed since (or never was): a record for no session. */
        siptls__count(e, SIPTLS__EV_DTLS_BAD_RECORD, 1);
        free(d);
        return;
    }
    /* Exactly what this listener does with a datagram it read itself; its
     * replies leave from its own socket (same port) and, on a wildcard
     * listener, from the address the peer sent to. They are queued and
     * sent at the end of this wakeup (the mailbox runs inside one, which
     * ends with the transport's wakeup_end flush). */
    dl->refs++;
    if (dl->pktinfo) {
        memcpy(&dl->cur_local, d->have_local ? &d->local : &dl->local, sizeof(dl->cur_local));
    }
    siptls__dtls_listener_datagram_here(dl, d->dg, d->len, (struct sockaddr *)&d->from,
                                        d->from_len);
    siptls__dtls_listener_unref(dl);
    free(d);
}

int siptls__dtls_route_forward(dtls_listener *dl, const uint8_t *dg, size_t len,
                               const struct sockaddr *from, socklen_t from_len, uint8_t tag)
{
    siptls_engine *e = dl->engine;
    route_dg *d = from_len <= sizeof(d->from) ? malloc(sizeof(*d) + len) : NULL;
    if (d == NULL) {
        return -1;
    }
    memset(d, 0, sizeof(*d));
    memcpy(&d->from, from, from_len);
    d->from_len = from_len;
    memcpy(&d->bound, &dl->local, sizeof(d->bound));
    if (dl->pktinfo) {
        memcpy(&d->local, &dl->cur_local, sizeof(d->local));
        d->have_local = 1;
    }
    d->len = len;
    memcpy(d->dg, dg, len);
    if (dl->seen != NULL) {
        struct route_seen *rs = &dl->seen[siptls__addr_hash(from) & (SEEN_SLOTS - 1)];
        memcpy(&rs->addr, &d->from, sizeof(rs->addr));
        rs->tag1 = tag + 1;
    }
    int st = SIPTLS_ERR_INVAL;
    pthread_mutex_lock(&g_route_lock);
    siptls_engine *owner = g_owner[tag];
    if (owner != NULL && owner != e) {
        st = siptls_engine_post(owner, route_run, d);
    }
    pthread_mutex_unlock(&g_route_lock);
    if (st != SIPTLS_OK) {
        /* No engine has that tag (a forged or stale CID), or its mailbox
         * is full or shutting down: a record for no session. */
        free(d);
        siptls__log(e, SIPTLS_LOG_DEBUG, "dtls: datagram for engine tag %u not forwarded (%s)",
                    (unsigned)tag, owner == NULL ? "no such engine" : siptls_strerror(st));
        return -1;
    }
    siptls__log(e, SIPTLS_LOG_DEBUG, "dtls: datagram forwarded to engine tag %u", (unsigned)tag);
    return 0;
}

int siptls__dtls_route_recall(const dtls_listener *dl, const struct sockaddr *from)
{
    if (dl->seen == NULL) {
        return -1;
    }
    const struct route_seen *rs = &dl->seen[siptls__addr_hash(from) & (SEEN_SLOTS - 1)];
    if (rs->tag1 == 0 || !siptls__addr_equal((const struct sockaddr *)&rs->addr, from)) {
        return -1;
    }
    return rs->tag1 - 1;
}
