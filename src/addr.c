/* siptls — addresses: text, comparison, hashing, resolution, and the UDP
 * socket helpers that need the address a datagram was sent to
 * (IP_PKTINFO / IPV6_PKTINFO). One place for the engine, both transports
 * and the security contexts. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

void siptls__addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else {
        snprintf(buf, len, "?");
    }
}

/* Addresses are compared and hashed on family + port + address only (the
 * sockaddr padding and IPv6 flow info must not matter). */
int siptls__addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family) {
        return 0;
    }
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

uint64_t siptls__hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

size_t siptls__addr_hash(const struct sockaddr *sa)
{
    uint64_t h = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        h = h * 31 + in->sin_port;
        h = h * 0x100000001b3ULL + in->sin_addr.s_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        uint64_t part[2];
        memcpy(part, &in6->sin6_addr, sizeof(part));
        h = h * 31 + in6->sin6_port;
        h = h * 0x100000001b3ULL + part[0];
        h = h * 0x100000001b3ULL + part[1];
    }
    return (size_t)siptls__hash64(h);
}

/* The address of a numeric host or wildcard, without any lookup. Returns
 * 1 when `u` is numeric (ss filled), 0 when it is a name. */
int siptls__addr_numeric(const siptls_uri *u, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (u->host_kind == SIPTLS_HOST_ANY || u->host_kind == SIPTLS_HOST_IPV6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(u->port);
        if (u->host_kind == SIPTLS_HOST_ANY) {
            in6->sin6_addr = in6addr_any;
        } else if (inet_pton(AF_INET6, u->host, &in6->sin6_addr) != 1) {
            return -1;
        }
        *len = sizeof(*in6);
        return 1;
    }
    if (u->host_kind == SIPTLS_HOST_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(u->port);
        if (inet_pton(AF_INET, u->host, &in->sin_addr) != 1) {
            return -1;
        }
        *len = sizeof(*in);
        return 1;
    }
    return 0;
}

/* getaddrinfo() in the resolver's order (RFC 6724), without duplicates. */
int siptls__addr_resolve(const siptls_uri *u, int passive, siptls__addr *out, int max,
                         const char **why)
{
    *why = NULL;
    int num = siptls__addr_numeric(u, &out[0].ss, &out[0].len);
    if (num != 0) {
        return num > 0 ? 1 : SIPTLS_ERR_URI_ADDR;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = u->transport == SIPTLS_TRANSPORT_TLS ? SOCK_STREAM : SOCK_DGRAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    char port[8];
    snprintf(port, sizeof(port), "%u", u->port);
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
        return SIPTLS_ERR_RESOLVE;
    }
    int n = 0;
    for (const struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(out[n].ss)) {
            continue;
        }
        int dup = 0;
        for (int k = 0; k < n && !dup; k++) {
            dup = siptls__addr_equal((struct sockaddr *)&out[k].ss, ai->ai_addr);
        }
        if (dup) {
            continue;
        }
        memset(&out[n].ss, 0, sizeof(out[n].ss));
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        *why = "no IPv4 or IPv6 address";
        return SIPTLS_ERR_RESOLVE;
    }
    return n;
}

/* Send one datagram: on a connected socket (`peer` NULL), to `peer`, or
 * to `peer` from the source address `local` (a wildcard listener must
 * answer from the address the peer sent to, or a peer with a connected
 * socket drops the answer: IP_PKTINFO / IPV6_PKTINFO). */
_Static_assert(CMSG_SPACE(sizeof(struct in6_pktinfo)) <= SIPTLS__UDP_SOURCE_CMSG_SPACE &&
                   CMSG_SPACE(sizeof(struct in_pktinfo)) <= SIPTLS__UDP_SOURCE_CMSG_SPACE,
               "source-address control message room");

size_t siptls__udp_source_cmsg(const struct sockaddr_storage *local, void *buf)
{
    memset(buf, 0, SIPTLS__UDP_SOURCE_CMSG_SPACE);
    struct cmsghdr *c = buf;
    if (local->ss_family == AF_INET) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(pi));
    }
    const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)local;
    struct in6_pktinfo pi;
    memset(&pi, 0, sizeof(pi));
    pi.ipi6_addr = l6->sin6_addr;
    pi.ipi6_ifindex = l6->sin6_scope_id;
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(pi));
    memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    return CMSG_SPACE(sizeof(pi));
}

/* Send one datagram: on a connected socket (`peer` NULL), to `peer`, or
 * to `peer` from the source address `local` (a wildcard listener must
 * answer from the address the peer sent to, or a peer with a connected
 * socket drops the answer: IP_PKTINFO / IPV6_PKTINFO). */
ssize_t siptls__udp_send(int fd, const void *buf, size_t n, const struct sockaddr *peer,
                         socklen_t peer_len, const struct sockaddr_storage *local)
{
    if (peer == NULL) {
        return send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    if (local == NULL) {
        return sendto(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL, peer, peer_len);
    }
    union {
        char buf[SIPTLS__UDP_SOURCE_CMSG_SPACE];
        struct cmsghdr align;
    } cb;
    struct iovec iov = {(void *)buf, n};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_name = (void *)peer;
    mh.msg_namelen = peer_len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cb.buf;
    mh.msg_controllen = siptls__udp_source_cmsg(local, cb.buf);
    return sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int siptls__addr_is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

/* Ask for each datagram's destination address (IPv6 sockets report IPv4
 * peers' as v4-mapped addresses). */
int siptls__udp_want_pktinfo(int fd, int family)
{
    int one = 1;
    if (family == AF_INET) {
        return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == 0;
    }
    return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) == 0;
}

/* The destination address of a datagram from its control messages, with
 * the listener's port. Returns 0 when found. */
int siptls__udp_pktinfo_local(struct msghdr *mh, const struct sockaddr_storage *bound,
                              struct sockaddr_storage *out)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            bound->ss_family == AF_INET) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            struct sockaddr_in *in = (struct sockaddr_in *)out;
            memset(out, 0, sizeof(*out));
            in->sin_family = AF_INET;
            in->sin_port = ((const struct sockaddr_in *)bound)->sin_port;
            in->sin_addr = pi.ipi_addr;
            return 0;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
            bound->ss_family == AF_INET6) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
            memset(out, 0, sizeof(*out));
            in6->sin6_family = AF_INET6;
            in6->sin6_port = ((const struct sockaddr_in6 *)bound)->sin6_port;
            in6->sin6_addr = pi.ipi6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr)) {
                in6->sin6_scope_id = (uint32_t)pi.ipi6_ifindex;
            }
            return 0;
        }
    }
    return -1;
}

int siptls__addr_parse_ip(const char *s, unsigned char out[16])
{
    char buf[64];
    size_t n = s != NULL ? strlen(s) : 0;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1) {
        return AF_INET;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        return AF_INET6;
    }
    return 0;
}

int siptls__addr_host_port(const struct sockaddr *sa, char *host, size_t hostlen, unsigned *port)
{
    if (sa == NULL) {
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *port = ntohs(in->sin_port);
        return inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostlen) != NULL;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, (socklen_t)hostlen) !=
                   NULL;
        }
        return inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostlen) != NULL;
    }
    return 0;
}
