/* siptls — listen and destination URIs: `tls:ADDR[:PORT]`, `dtls:ADDR[:PORT]`.
 *
 * ADDR is an IPv4 address, an IPv6 address in brackets, a host name, or one
 * of the wildcards `*`, `0.0.0.0`, `[::]`. The port defaults to the
 * configured tls_port / dtls_port (5061). Pure code: no resolution, no I/O.
 *
 * Grammar, and the status each kind of mistake gets:
 *   - scheme `tls` or `dtls`, any case, then ':'. Anything else (udp:, tcp:,
 *     sip:, sips:, no ':' at all)                    -> SIPTLS_ERR_URI_SCHEME
 *   - IPv4: strict dotted quad, four octets 0..255, no sign, no leading zero
 *     ("010.0.0.1" is refused: inet_aton would read it as octal).
 *   - IPv6: in brackets, anything inet_pton(AF_INET6) accepts; zone ids
 *     ("[fe80::1%eth0]") are refused. `host` holds the canonical form
 *     (inet_ntop: lower case, "::" compressed).
 *   - host name: RFC 1123 labels of letters, digits and '-', not starting or
 *     ending with '-', each <= 63 characters, total <= 253, the last label
 *     not all digits (so "1.2.3" or "1.2.3.256" is a bad IPv4 address, not a
 *     name). Kept as written (no case folding).
 *   - `*` = every IPv4 and IPv6 address (SIPTLS_HOST_ANY); `0.0.0.0` stays
 *     SIPTLS_HOST_IPV4 and `[::]` stays SIPTLS_HOST_IPV6.
 *   A bad, empty or unbracketed IPv6 address, a bad character in the host,
 *   or a missing ']'                                  -> SIPTLS_ERR_URI_ADDR
 *   - port: ':' then decimal digits, 1..65535 (0 only with allow_port0).
 *     Empty, not starting with a digit, 0, or > 65535 -> SIPTLS_ERR_URI_PORT
 *   - anything after the port's digits ("tls:1.2.3.4:5061x", "...:5061:7",
 *     a trailing space) or after ']' other than ":PORT" ("tls:[::1]x")
 *                                                     -> SIPTLS_ERR_URI_TRAILING
 *   No white space is skipped anywhere. */
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
    uint16_t port;                  /**< never 0 after a successful parse, unless allow_port0 */
    int port_given;                 /**< 1 when the text had an explicit port */
} siptls_uri;

/** Parse `text` (NUL-terminated). `tls_port` / `dtls_port` are the ports used
 *  when the URI has none (pass 5061 for the standard default); a default
 *  port of 0 without allow_port0 gives SIPTLS_ERR_URI_PORT.
 *  Port 0 is accepted only when `allow_port0` is 1 (tests and tools bind an
 *  ephemeral port that way).
 *  Returns SIPTLS_OK, SIPTLS_ERR_INVAL (NULL arguments), SIPTLS_ERR_URI_SCHEME,
 *  SIPTLS_ERR_URI_ADDR, SIPTLS_ERR_URI_PORT or SIPTLS_ERR_URI_TRAILING.
 *  `*out` is written only on success. */
int siptls_uri_parse(const char *text, uint16_t tls_port, uint16_t dtls_port, int allow_port0,
                     siptls_uri *out);

/** Format `uri` as text into `buf` (always with the port, IPv6 in brackets):
 *  parse(format(u)) == u (transport, host_kind, host and port; port_given
 *  becomes 1 since the port is then written). Returns the length written
 *  (excluding the NUL), or SIPTLS_ERR_INVAL when an argument is NULL, the
 *  transport is unknown or `buf` is too small (it then holds "" when
 *  buflen > 0). 64 bytes hold any URI with an IP address; names need up to
 *  SIPTLS_URI_HOST_MAX + 16. */
int siptls_uri_format(const siptls_uri *uri, char *buf, size_t buflen);

/** "tls" or "dtls" ("unknown" for any other value). Static string. */
const char *siptls_transport_name(siptls_transport t);

#ifdef __cplusplus
}
#endif
#endif
