/* siptls — listen and destination URIs: `tls:ADDR[:PORT]`, `dtls:ADDR[:PORT]`.
 *
 * ADDR is an IPv4 address, an IPv6 address in brackets, a host name, or one
 * of the wildcards `*`, `0.0.0.0`, `[::]`. The port defaults to the
 * configured tls_port / dtls_port (5061). Pure code: no resolution, no I/O. */
#ifndef SIPTLS_URI_H
#define SIPTLS_URI_H

#include <stddef.h>
#include <stdint.h>

#include "siptls/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum siptls_transport {
    SIPTLS_TRANSPORT_TLS = 1,  /**< SIP over TLS over TCP (Via token "TLS") */
    SIPTLS_TRANSPORT_DTLS = 2  /**< SIP over DTLS over UDP (Via token "DTLS") */
} siptls_transport;

typedef enum siptls_host_kind {
    SIPTLS_HOST_IPV4 = 1,     /**< dotted quad, e.g. 192.0.2.1 */
    SIPTLS_HOST_IPV6 = 2,     /**< written in brackets in the URI; `host` holds it without */
    SIPTLS_HOST_NAME = 3,     /**< a DNS name, resolved later by the engine */
    SIPTLS_HOST_ANY = 4       /**< `*`: all IPv4 and IPv6 addresses */
} siptls_host_kind;

#define SIPTLS_URI_HOST_MAX 256

typedef struct siptls_uri {
    siptls_transport transport;
    siptls_host_kind host_kind;
    char host[SIPTLS_URI_HOST_MAX]; /**< NUL-terminated; IPv6 without brackets; "*" for ANY */
    uint16_t port;                  /**< never 0 after a successful parse */
    int port_given;                 /**< 1 when the text had an explicit port */
} siptls_uri;

/** Parse `text` (NUL-terminated). `tls_port` / `dtls_port` are the ports used
 *  when the URI has none (pass 5061 for the standard default).
 *  Port 0 is accepted only when `allow_port0` is 1 (tests and tools bind an
 *  ephemeral port that way).
 *  Returns SIPTLS_OK, SIPTLS_ERR_INVAL (NULL arguments), SIPTLS_ERR_URI_SCHEME,
 *  SIPTLS_ERR_URI_ADDR, SIPTLS_ERR_URI_PORT or SIPTLS_ERR_URI_TRAILING.
 *  `*out` is written only on success. */
int siptls_uri_parse(const char *text, uint16_t tls_port, uint16_t dtls_port, int allow_port0,
                     siptls_uri *out);

/** Format `uri` as text into `buf` (always with the port, IPv6 in brackets):
 *  parse(format(u)) == u. Returns the length written (excluding the NUL),
 *  or SIPTLS_ERR_INVAL when `buf` is too small (it then holds "") . */
int siptls_uri_format(const siptls_uri *uri, char *buf, size_t buflen);

/** "tls" or "dtls". */
const char *siptls_transport_name(siptls_transport t);

#ifdef __cplusplus
}
#endif
#endif
