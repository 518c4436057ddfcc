/* siptls — counters per listener and per TLS domain, besides the engine's
 * (siptls_engine_stats).
 *
 * Every event of a flow is counted in the engine's siptls_stats and, with
 * the same meaning, in the siptls_stats of the listener the flow came from
 * (inbound flows) and of the TLS domain it uses. A counter that cannot
 * happen in a scope stays 0 there:
 *
 *   listener  its inbound flows: flows_open (and tls_ / dtls_flows_open),
 *             flows_accepted, flows_closed, handshakes_*, hs_fail_*,
 *             msgs_*, bytes_*, pings/pongs, drop_* of its flows, and
 *             drop_limit (connections it refused at the flow limit).
 *             flows_connected, reloads and the transport's own events
 *             (drop_resources, dtls_cookies_sent, dtls_cookie_bad,
 *             dtls_rate_limited, dtls_bad_records, dtls_stun, dtls_junk)
 *             are counted per engine only.
 *   domain    the flows that use it: an outbound flow from the moment its
 *             client domain is chosen (before it connects, so every
 *             failure counts), an inbound flow from the end of its
 *             handshake, completed or failed (SNI has settled the server
 *             domain by then: a client refused for want of a certificate
 *             counts against the domain that asked for one; an inbound
 *             handshake that times out counts per engine and listener
 *             only). flows_accepted stays 0 (see the listeners), as do
 *             reloads, drop_limit and the transport's own events.
 *
 * Domain counters survive a reload for every domain the new configuration
 * still has (same name and kind); a new domain starts at 0; a removed one
 * is no longer listed (its flows count on until they close).
 *
 * Threading: like every call on an engine, on its thread. None calls a
 * callback. */
#ifndef SIPTLS_STATS_H
#define SIPTLS_STATS_H

#include <stddef.h>

#include "siptls/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Copy the counters of listener `index` (0 .. siptls_listener_count()-1)
 *  into `st`. Returns SIPTLS_OK or SIPTLS_ERR_INVAL (NULL argument, no
 *  such listener). */
int siptls_listener_stats(const siptls_engine *e, int index, siptls_stats *st);

/** The listener's transport and bound address, "tls:127.0.0.1:5061",
 *  "dtls:[::1]:5061" (the port it was given when it asked for 0), into
 *  `buf` (64 bytes are enough). Returns SIPTLS_OK or SIPTLS_ERR_INVAL
 *  (NULL argument, no such listener, `buf` too small). */
int siptls_listener_name(const siptls_engine *e, int index, char *buf, size_t len);

/** The counters of one TLS domain. */
typedef struct siptls_domain_counters {
    char name[64];      /**< "default" for the two built-in domains */
    int is_server;      /**< 1 server domain, 0 client domain */
    siptls_stats stats;
} siptls_domain_counters;

/** Number of TLS domains of the configuration in use (server and client,
 *  the two default ones included; a reload may change it). */
int siptls_domain_count(const siptls_engine *e);

/** The counters of domain `index` (0 .. siptls_domain_count()-1, in the
 *  configuration's order: the default server domain, the default client
 *  domain, then the declared ones) into `out`. Returns SIPTLS_OK or
 *  SIPTLS_ERR_INVAL (NULL argument, no such domain). */
int siptls_domain_stats(const siptls_engine *e, int index, siptls_domain_counters *out);

#ifdef __cplusplus
}
#endif
#endif
