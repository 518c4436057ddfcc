/* siptls — outbound targets: where a flow goes, what its server must
 * prove, and how we present ourselves.
 *
 * A softswitch sending to another SIP domain keeps four things apart:
 *  - where to connect: an IP address, or a name resolved to addresses
 *    (RFC 3263: NAPTR -> SRV -> A/AAAA);
 *  - the SIP domain the server's certificate must prove and the name sent
 *    as SNI: RFC 5922 §7.2, "the domain name ... from the SIP URI", never
 *    the host an SRV record pointed to, nor the address;
 *  - the client TLS domain to use (certificate, CAs, ciphers: a
 *    [client:NAME] domain, as OpenSIPS's client_tls_domain_avp picks one
 *    per send);
 *  - the local address to send from.
 * A siptls_target says all four. The URI calls of engine.h are shorthands:
 * siptls_send_to(e, "tls:sip.example.org:5061", ...) is a target whose
 * host and SIP domain are both "sip.example.org".
 *
 * Name resolution never blocks the loop: names are looked up with c-ares
 * on the engine's own loop (the servers of /etc/resolv.conf, or the
 * dns_servers parameter; /etc/hosts first, as the system resolver does),
 * with dns_timeout and dns_tries (docs/admin-guide.md). A call that opens a
 * flow to a name returns at once with the flow's id; messages sent to it
 * wait in its queue while the name is resolved and the flow connects. A
 * name that does not resolve closes the flow from the loop with
 * on_flow(CLOSED, SIPTLS_ERR_RESOLVE), or SIPTLS_ERR_RESOLVE_TIMEOUT when
 * no DNS server answered in time; the log line carries c-ares' message.
 *
 * Failover: every address of a target is tried in turn, then the next
 * target's. A flow moves on to the next address, keeping its id, when
 * the current one cannot be reached (refused, unreachable,
 * tls_connect_timeout) and, for targets given here and for sip:/sips: URIs
 * (RFC 3263 §4.3), also when its TLS/DTLS handshake fails (a timeout, an
 * alert, a certificate that does not verify or does not name the SIP
 * domain); nothing has been sent on a flow before its handshake is done.
 * A tls:/dtls: URI keeps the narrower rule of engine.h (connect failures
 * only). on_flow(CLOSED) reports the last failure when every address
 * failed.
 *
 * SIP URIs. Besides tls:/dtls: (uri.h), siptls_send_to(), siptls_connect(),
 * siptls_open() and siptls_resolve() take SIP URIs (RFC 3261 §19.1):
 *     sip:[userinfo@]host[:port][;params][?headers]      (or sips:)
 * siptls offers secured transports only, so a sip: URI is reached over
 * TLS just as a sips: URI is (RFC 3263 §4.1: "A client resolving a SIP URI
 * SHOULD retain records with "SIPS" as the protocol, if the client
 * supports TLS"); the SIP domain is the URI's host, and the server is
 * located as RFC 3263 §4 says:
 *  1. the target is the maddr parameter when there is one, else the host;
 *  2. an IP address: that address, at the URI's port or tls_port (5061);
 *  3. a port in the URI: the A and AAAA records of the target at that port;
 *  4. ;transport=tls (or, in a sips: URI, ;transport=tcp): the SRV records
 *     of _sips._tcp.<target>, then as 6;
 *  5. otherwise its NAPTR records with service "SIPS+D2T" (flags "S",
 *     ordered by order and preference) name the SRV records to query; no
 *     such NAPTR record: _sips._tcp.<target>;
 *  6. SRV records are tried by priority, and by weight within a priority
 *     (RFC 2782); their targets' A and AAAA records give the addresses; a
 *     single SRV record with target "." means no service
 *     (SIPTLS_ERR_RESOLVE); no SRV record at all: the A and AAAA records
 *     of the target at tls_port.
 * ;transport=dtls is siptls's own (no RFC defines NAPTR or SRV records for
 * SIP over DTLS): DTLS to the A and AAAA records of the target at the
 * URI's port or dtls_port, without NAPTR or SRV. Any other transport
 * (udp, tcp in a sip: URI, sctp, ws, wss) is SIPTLS_ERR_URI_TRANSPORT.
 *
 * Grammar accepted by siptls_sip_uri_parse() (no white space anywhere):
 *  - scheme "sip" or "sips", any case, then ':'   else SIPTLS_ERR_URI_SCHEME;
 *  - userinfo: anything up to an '@' before the host (ignored);
 *  - host: as in uri.h (strict IPv4, bracketed IPv6 without zone, RFC 1123
 *    name), never '*'                                  else SIPTLS_ERR_URI_ADDR;
 *  - ":" PORT, 1..65535                                else SIPTLS_ERR_URI_PORT;
 *  - parameters ";name[=value]": transport (see above) and maddr (an IP
 *    address or a name, SIPTLS_ERR_URI_ADDR when neither) are used, any
 *    other is ignored (lr, ob, user, ...); an empty name is
 *    SIPTLS_ERR_URI_TRAILING;
 *  - "?" headers: ignored;
 *  - anything else after the host or port           -> SIPTLS_ERR_URI_TRAILING.
 *
 * Threading: every call here on the thread that runs the engine's loop;
 * siptls_target_init() and siptls_sip_uri_parse() on any thread (pure). */
#ifndef SIPTLS_TARGET_H
#define SIPTLS_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "siptls/engine.h"
#include "siptls/status.h"
#include "siptls/uri.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Targets one call takes, and addresses a flow tries, at most. */
#define SIPTLS_TARGETS_MAX 16

/** One place to connect to and how to secure it. Every pointer is
 *  borrowed for the duration of the call that takes the target (the
 *  engine copies what it keeps). */
typedef struct siptls_target {
    siptls_transport transport;   /**< SIPTLS_TRANSPORT_TLS or _DTLS (init: TLS) */
    const char *host;             /**< where to connect: an IP address ("192.0.2.1", "2001:db8::1",
                                       "[2001:db8::1]") or a DNS name whose A and AAAA records are
                                       looked up on the loop. Required */
    uint16_t port;                /**< 0: the configured tls_port / dtls_port */
    const char *sip_domain;       /**< the identity the server's certificate must match (RFC 5922
                                       §7.1: SAN URI sip:domain, else dNSName) and the SNI.
                                       NULL: `host` (an IP address is checked against iPAddress
                                       SANs and sent as no SNI) */
    const char *sni;              /**< the server name to send instead, when the server wants
                                       another name than the one it must prove; NULL:
                                       sip_domain (none when that is an IP address) */
    const char *client_domain;    /**< name of the [client:NAME] TLS domain to present; NULL:
                                       chosen by match_sip_domain / match_ip_address, as for
                                       URIs (docs/admin-guide.md) */
    const struct sockaddr *local; /**< bind the flow's socket here before connecting (port 0:
                                       any port); only addresses of its family are tried.
                                       NULL: the kernel chooses */
    socklen_t local_len;          /**< length of *local */
} siptls_target;

/** Fill `t` with the defaults: TLS, no host, port 0, every pointer NULL.
 *  NULL is accepted (no-op). */
void siptls_target_init(siptls_target *t);

/** Open (or find) one flow to `targets[0..n)`, tried in that order with
 *  failover (see above). The targets must agree on transport,
 *  sip_domain, sni, client_domain and local (they are alternatives for
 *  one destination: siptls_resolve()'s list qualifies). An open flow is
 *  reused when: the targets are IP addresses and an outbound flow to one
 *  of them was made with the same sip_domain, sni, client_domain and
 *  local (and, when the SIP domain is an IP address and nothing else is
 *  asked for, also a flow that peer opened to us, RFC 3261 §18); or
 *  the targets hold names and a flow was opened with the same list and is
 *  not closing (also while it still resolves or connects). `*flow` (may be
 *  NULL) receives the id. Never calls a callback from inside the call.
 *  Returns SIPTLS_OK (names: resolution started; its failure closes the
 *  flow later, see above), SIPTLS_ERR_INVAL (NULL `e` or `targets`, `n`
 *  0 or over SIPTLS_TARGETS_MAX, a NULL host, an unknown transport,
 *  targets that disagree, a client_domain the configuration does not
 *  declare: logged), SIPTLS_ERR_URI_ADDR (a host that is neither an IP
 *  address nor a valid name, a `local` that is not an IPv4/IPv6 address,
 *  or no IP-address target of `local`'s family), SIPTLS_ERR_CERT (the
 *  transport's TLS contexts cannot be built: logged), SIPTLS_ERR_LIMIT,
 *  SIPTLS_ERR_NOMEM, SIPTLS_ERR_CONNECT (every address failed at once:
 *  no route, cannot bind `local`), SIPTLS_ERR_SHUTDOWN (the engine is
 *  being freed). */
int siptls_connect_target(siptls_engine *e, const siptls_target *targets, size_t n,
                          siptls_flow_id *flow);

/** As siptls_connect_target(), but always a new flow (connection pools,
 *  load tools). Same statuses. */
int siptls_open_target(siptls_engine *e, const siptls_target *targets, size_t n,
                       siptls_flow_id *flow);

/** siptls_connect_target(), then siptls_send() of `len` bytes (one whole
 *  SIP message, copied) on that flow: it waits in the flow's queue until
 *  the handshake is done. Statuses of both calls. */
int siptls_send_target(siptls_engine *e, const siptls_target *targets, size_t n,
                       const uint8_t *buf, size_t len, siptls_flow_id *flow);

/** The answer of siptls_resolve(): `status` SIPTLS_OK with `n` >= 1
 *  targets in the order to try them, or SIPTLS_ERR_RESOLVE /
 *  SIPTLS_ERR_RESOLVE_TIMEOUT (the log has c-ares' message),
 *  SIPTLS_ERR_SHUTDOWN (the engine is being freed) or SIPTLS_ERR_NOMEM
 *  with `n` 0. Each target is an IP address (`host`) and port with the
 *  transport, and the URI's host as sip_domain; sni, client_domain and
 *  local are NULL. `targets` and its strings are borrowed for the call:
 *  the host may set client_domain or local on a copy and pass it to
 *  siptls_connect_target() (from inside this callback too). */
typedef void (*siptls_resolve_cb)(siptls_engine *e, int status, const siptls_target *targets,
                                  size_t n, void *user);

/** Resolve `uri` as siptls_send_to() would, without opening anything:
 *  "sips:carrier.example.net" by RFC 3263 (see above), "tls:host:port" /
 *  "dtls:host" by A and AAAA. At most SIPTLS_TARGETS_MAX targets. `cb`
 *  is called exactly once, from the loop (never inside this call), with
 *  `user`; at the latest by siptls_engine_free() (SIPTLS_ERR_SHUTDOWN).
 *  Returns SIPTLS_OK, SIPTLS_ERR_INVAL (NULL `e`, `uri` or `cb`),
 *  SIPTLS_ERR_URI_* (the URI does not parse, or is a wildcard),
 *  SIPTLS_ERR_NOMEM, SIPTLS_ERR_RESOLVE (the resolver cannot start:
 *  logged) or SIPTLS_ERR_SHUTDOWN; `cb` is then never called. */
int siptls_resolve(siptls_engine *e, const char *uri, siptls_resolve_cb cb, void *user);

/** A parsed SIP or SIPS URI (see the grammar above). */
typedef struct siptls_sip_uri {
    int sips;                         /**< 1 for a sips: URI */
    siptls_host_kind host_kind;       /**< SIPTLS_HOST_IPV4, _IPV6 or _NAME */
    char host[SIPTLS_URI_HOST_MAX];   /**< the SIP domain (IPv6 without brackets, canonical) */
    uint16_t port;                    /**< 0 when the URI has none */
    int has_transport;                /**< 1 when a transport parameter was given */
    siptls_transport transport;       /**< SIPTLS_TRANSPORT_DTLS for ;transport=dtls, else TLS */
    siptls_host_kind maddr_kind;      /**< 0 when there is no maddr parameter */
    char maddr[SIPTLS_URI_HOST_MAX];  /**< the maddr parameter ("" when absent) */
} siptls_sip_uri;

/** Parse a NUL-terminated SIP or SIPS URI. Pure: no resolution, no I/O.
 *  Returns SIPTLS_OK, SIPTLS_ERR_INVAL (NULL argument),
 *  SIPTLS_ERR_URI_SCHEME, SIPTLS_ERR_URI_ADDR, SIPTLS_ERR_URI_PORT,
 *  SIPTLS_ERR_URI_TRANSPORT or SIPTLS_ERR_URI_TRAILING. `*out` is written
 *  only on success. */
int siptls_sip_uri_parse(const char *text, siptls_sip_uri *out);

#ifdef __cplusplus
}
#endif
#endif
