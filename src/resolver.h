/* siptls internal — name resolution on the engine's loop (c-ares), and
 * RFC 3263 server location (NAPTR -> SRV -> A/AAAA).
 *
 * One c-ares channel per engine, made on first use, configured from the
 * engine's configuration (dns_servers, dns_timeout, dns_tries); its
 * sockets and its timer are engine watchers (engine.c), so nothing here
 * talks to libev and nothing ever blocks. A lookup's answer is handed to
 * its caller from the engine's deferred work (siptls__resolver_deliver,
 * run when the engine leaves its outermost callback or from the loop's
 * prepare watcher), never inside the call that started it: c-ares answers
 * some lookups (/etc/hosts, numeric names) at once. Everything runs on the
 * engine's thread. */
#ifndef SIPTLS_RESOLVER_H
#define SIPTLS_RESOLVER_H

#include <stdint.h>

#include "addr.h"
#include "rfc3263.h"
#include "siptls/engine.h"

/** Addresses one lookup yields at most (the order to try them in). */
#define SIPTLS__RESOLVE_MAX_ADDRS 16
/** Names one lookup resolves to addresses at most (SRV targets, or the
 *  names of a target list). */
#define SIPTLS__RESOLVE_MAX_HOSTS 16
/** SRV names one lookup queries at most (from NAPTR records). */
#define SIPTLS__RESOLVE_MAX_SRV 4

typedef struct siptls__rquery siptls__rquery;

/** A name (or IP address text) and the port its addresses get. */
typedef struct siptls__rhost {
    char name[SIPTLS__DNS_NAME_MAX];
    uint16_t port;
} siptls__rhost;

/** What to look up. */
typedef struct siptls__rreq {
    int socktype; /**< SOCK_STREAM / SOCK_DGRAM */
    int family;   /**< AF_UNSPEC, or only addresses of AF_INET / AF_INET6 */
    /** RFC 3263 (`service` non-NULL): the NAPTR records of `domain` with
     *  this service ("SIPS+D2T") name SRV records, else (none)
     *  `srv_prefix`.`domain` ("_sips._tcp"); their targets' A/AAAA; no SRV
     *  record: A/AAAA of `domain` at `default_port`. With `service` NULL
     *  and `srv_prefix` set: the SRV step without NAPTR. */
    const char *domain;
    const char *service;
    const char *srv_prefix;
    uint16_t default_port;
    /** Neither: the A/AAAA records of each of `hosts`, in order. */
    const siptls__rhost *hosts;
    int n_hosts;
} siptls__rreq;

/** The answer. */
typedef struct siptls__resolved {
    /** SIPTLS_OK (n >= 1), SIPTLS_ERR_RESOLVE, SIPTLS_ERR_RESOLVE_TIMEOUT,
     *  SIPTLS_ERR_SHUTDOWN (the engine is being freed), SIPTLS_ERR_NOMEM. */
    int status;
    const char *why; /**< status != OK: the name and c-ares' message */
    const siptls__addr *addrs;
    int n;
} siptls__resolved;

typedef void (*siptls__resolved_fn)(void *arg, const siptls__resolved *res);

/** Start a lookup. `fn` is called exactly once, from the engine's deferred
 *  work, unless the lookup is cancelled first. Returns the lookup, or
 *  NULL with *st = SIPTLS_ERR_NOMEM, SIPTLS_ERR_RESOLVE (the channel
 *  cannot be made: logged) or SIPTLS_ERR_SHUTDOWN (the engine is being
 *  freed). */
siptls__rquery *siptls__resolve(siptls_engine *e, const siptls__rreq *req, siptls__resolved_fn fn,
                                void *arg, int *st);

/** The caller is no longer interested: `fn` will not be called (the
 *  lookup is freed once c-ares is done with it). */
void siptls__resolve_cancel(siptls__rquery *q);

/** Hand finished lookups to their callers (engine.c, deferred work). */
void siptls__resolver_deliver(siptls_engine *e);

/** 1 when finished lookups wait to be handed over. */
int siptls__resolver_has_done(const siptls_engine *e);

/** At engine free: every lookup not yet handed over gets
 *  SIPTLS_ERR_SHUTDOWN, then the channel and its sockets go. */
void siptls__resolver_free(siptls_engine *e);

#endif
