/* siptls internal — addresses (src/addr.c): text, comparison, hashing,
 * resolution, and the UDP helpers for the address a datagram was sent to.
 * Used by the engine, both transports and the security contexts; pure
 * functions of their arguments (no engine, no log). */
#ifndef SIPTLS_ADDR_H
#define SIPTLS_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "siptls/uri.h"

/** One socket address and its length. */
typedef struct siptls__addr {
    struct sockaddr_storage ss;
    socklen_t len;
} siptls__addr;

/** Format as "1.2.3.4:5061" / "[::1]:5061" ("?" for another family). */
void siptls__addr_text(const struct sockaddr *sa, char *buf, size_t len);

/** Same peer: family, port and address (not padding, not IPv6 flow info). */
int siptls__addr_equal(const struct sockaddr *a, const struct sockaddr *b);

/** A well-mixed hash of what siptls__addr_equal() compares. */
size_t siptls__addr_hash(const struct sockaddr *sa);

/** A 64-bit mixer (for hash tables keyed by numbers). */
uint64_t siptls__hash64(uint64_t x);

/** The address of a numeric host or wildcard of `u`, without any lookup.
 *  Returns 1 when `u` is numeric (ss, len filled), 0 when it is a name,
 *  -1 when the text is not a valid address. */
int siptls__addr_numeric(const siptls_uri *u, struct sockaddr_storage *ss, socklen_t *len);

/** Resolve the host of `u` to at most `max` addresses, in the resolver's
 *  order (RFC 6724 through getaddrinfo), without duplicates, port set.
 *  Numeric hosts need no lookup; names go through the system resolver,
 *  which may block (docs/api.md). `passive`: for a listener. Returns the
 *  number of addresses (>= 1), SIPTLS_ERR_RESOLVE with `*why` the
 *  resolver's own message, or SIPTLS_ERR_URI_ADDR. */
int siptls__addr_resolve(const siptls_uri *u, int passive, siptls__addr *out, int max,
                         const char **why);

/** Parse an IP literal ("192.0.2.1", "::1", "[::1]") into `out` (4 or 16
 *  bytes used). Returns AF_INET, AF_INET6, or 0 when `s` is not one. */
int siptls__addr_parse_ip(const char *s, unsigned char out[16]);

/** The host of `sa` as text without brackets ("192.0.2.1", "::1"; an
 *  IPv4 address mapped into IPv6 written as IPv4) and its port. Returns 1,
 *  or 0 for another family or a NULL `sa`. */
int siptls__addr_host_port(const struct sockaddr *sa, char *host, size_t hostlen, unsigned *port);

/** 0.0.0.0 or [::]. */
int siptls__addr_is_wildcard(const struct sockaddr *sa);

/** Send one datagram (MSG_DONTWAIT | MSG_NOSIGNAL): on a connected socket
 *  (`peer` NULL), to `peer`, or to `peer` from the source address `local`
 *  (IP_PKTINFO / IPV6_PKTINFO: a wildcard listener answers from the address
 *  the peer sent to). Returns what sendmsg() returns. */
ssize_t siptls__udp_send(int fd, const void *buf, size_t n, const struct sockaddr *peer,
                         socklen_t peer_len, const struct sockaddr_storage *local);

/** Room for the control message siptls__udp_source_cmsg() builds
 *  (CMSG_SPACE(sizeof(struct in6_pktinfo)) on Linux). */
#define SIPTLS__UDP_SOURCE_CMSG_SPACE 40
/** Build in `buf` (SIPTLS__UDP_SOURCE_CMSG_SPACE bytes, cmsghdr-aligned)
 *  the control message that sends a datagram from source address `local`
 *  (IP_PKTINFO / IPV6_PKTINFO); returns its msg_controllen. */
size_t siptls__udp_source_cmsg(const struct sockaddr_storage *local, void *buf);

/** Ask for each datagram's destination address (IPv6 sockets report IPv4
 *  peers' as v4-mapped addresses). Returns 1 on success. */
int siptls__udp_want_pktinfo(int fd, int family);

struct msghdr;
/** The destination address of a received datagram from its control
 *  messages, with the port of `bound`. Returns 0 when found. */
int siptls__udp_pktinfo_local(struct msghdr *mh, const struct sockaddr_storage *bound,
                              struct sockaddr_storage *out);

#endif
