/* siptls tests — a real DNS server on loopback for the resolver tests:
 * dnsmasq (Debian dnsmasq-base, installed by scripts/test.sh) started with
 * a zone of the test's own, on 127.0.0.1 at a free port, answering only
 * from that zone (no upstream servers, no /etc/hosts, no configuration
 * file); names under the zones it serves that it does not hold are
 * NXDOMAIN. Point an engine at it with `dns_servers = <server>`. */
#ifndef SIPTLS_TEST_DNSSERVER_H
#define SIPTLS_TEST_DNSSERVER_H

#include <sys/types.h>

typedef struct tu_dns {
    pid_t pid;
    unsigned port;
    char server[32]; /**< "127.0.0.1:PORT", for dns_servers */
} tu_dns;

/** Start dnsmasq with the records of `records` (dnsmasq options, NULL
 *  terminated: "--host-record=a.siptls.test,127.0.0.1",
 *  "--srv-host=_sips._tcp.example.test,a.siptls.test,5061,10,5",
 *  "--naptr-record=example.test,10,10,S,SIPS+D2T,,_sips._tcp.example.test").
 *  It is authoritative (--local) for siptls.test and example.test, and
 *  always holds probe.siptls.test (127.0.0.2): the start waits, bounded
 *  (10 s), until an A query for it is answered, retrying with another
 *  port when the one chosen was taken meanwhile. Fails the test when
 *  dnsmasq cannot be started. */
void tu_dns_start(tu_dns *d, const char *const *records);

/** Stop the server (SIGTERM, then wait for it; SIGKILL after 5 s). No-op
 *  when it is not running. */
void tu_dns_stop(tu_dns *d);

/** A UDP socket on 127.0.0.1 that never answers: a DNS server that is
 *  down without saying so. Returns the fd (the caller closes it) and the
 *  "127.0.0.1:PORT" text in `server` (32 bytes). */
int tu_dns_silent(char *server);

#endif
