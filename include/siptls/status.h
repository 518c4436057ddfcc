/* siptls — status codes shared by every part of the library.
 *
 * One table (an X-macro) generates the enum and the strings, so a code and
 * its text can never drift apart. 0 is success, SIPTLS_AGAIN (-1) means
 * "nothing to do yet / would block" and is not an error; every other value
 * is a negative error. */
#ifndef SIPTLS_STATUS_H
#define SIPTLS_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, fatal-for-a-flow, text) */
#define SIPTLS_STATUS_TABLE(X)                                                      \
    X(SIPTLS_OK, 0, 0, "ok")                                                        \
    X(SIPTLS_AGAIN, -1, 0, "would block / need more data")                          \
    X(SIPTLS_ERR_NOMEM, -2, 1, "out of memory")                                     \
    X(SIPTLS_ERR_INVAL, -3, 0, "invalid argument")                                  \
    X(SIPTLS_ERR_GONE, -4, 0, "flow is gone (closed or never existed)")             \
    X(SIPTLS_ERR_NOT_SUPPORTED, -5, 0, "not supported by this build")               \
    X(SIPTLS_ERR_URI_SCHEME, -10, 0, "URI: unknown scheme (want tls: or dtls:)")    \
    X(SIPTLS_ERR_URI_ADDR, -11, 0, "URI: bad address")                              \
    X(SIPTLS_ERR_URI_PORT, -12, 0, "URI: bad port (want 1..65535)")                 \
    X(SIPTLS_ERR_URI_TRAILING, -13, 0, "URI: trailing characters")                  \
    X(SIPTLS_ERR_URI_TRANSPORT, -14, 0, "URI: transport not offered (siptls has TLS and DTLS)") \
    X(SIPTLS_ERR_CONFIG_IO, -20, 0, "config: cannot read file")                     \
    X(SIPTLS_ERR_CONFIG_SYNTAX, -21, 0, "config: syntax error")                     \
    X(SIPTLS_ERR_CONFIG_KEY, -22, 0, "config: unknown parameter")                   \
    X(SIPTLS_ERR_CONFIG_VALUE, -23, 0, "config: bad value")                         \
    X(SIPTLS_ERR_CONFIG_RANGE, -24, 0, "config: value out of range")                \
    X(SIPTLS_ERR_FRAME_NO_CL, -30, 1, "framing: Content-Length missing on stream")  \
    X(SIPTLS_ERR_FRAME_BAD_CL, -31, 1, "framing: bad Content-Length")               \
    X(SIPTLS_ERR_FRAME_DUP_CL, -32, 1, "framing: conflicting Content-Length")       \
    X(SIPTLS_ERR_FRAME_TOO_BIG, -33, 1, "framing: message over max_msg_size")       \
    X(SIPTLS_ERR_FRAME_HDR_TOO_BIG, -34, 1, "framing: headers over max_header_size")\
    X(SIPTLS_ERR_FRAME_CHUNKS, -35, 1, "framing: message over tls_max_msg_chunks")  \
    X(SIPTLS_ERR_FRAME_TIMEOUT, -36, 1, "framing: message not complete in time")    \
    X(SIPTLS_ERR_FRAME_GARBAGE, -37, 1, "framing: malformed message")               \
    X(SIPTLS_ERR_FRAME_LOST, -38, 0, "framing: partial datagram message dropped")   \
    X(SIPTLS_ERR_IO, -50, 1, "socket I/O error")                                    \
    X(SIPTLS_ERR_RESET, -51, 1, "connection reset by peer")                         \
    X(SIPTLS_ERR_PEER_CLOSED, -52, 1, "closed by peer")                             \
    X(SIPTLS_ERR_CONNECT, -53, 1, "connect failed")                                 \
    X(SIPTLS_ERR_CONNECT_TIMEOUT, -54, 1, "connect timeout")                        \
    X(SIPTLS_ERR_HANDSHAKE, -55, 1, "TLS handshake failed")                         \
    X(SIPTLS_ERR_HANDSHAKE_TIMEOUT, -56, 1, "TLS handshake timeout")                \
    X(SIPTLS_ERR_VERIFY, -57, 1, "peer certificate not trusted")                    \
    X(SIPTLS_ERR_NAME_MISMATCH, -58, 1, "peer certificate does not match the SIP domain (RFC 5922)") \
    X(SIPTLS_ERR_NO_PEER_CERT, -59, 1, "peer sent no certificate but one is required") \
    X(SIPTLS_ERR_SEND_TIMEOUT, -60, 1, "send timeout (peer not reading)")           \
    X(SIPTLS_ERR_QUEUE_FULL, -61, 0, "write queue full")                            \
    X(SIPTLS_ERR_IDLE, -62, 1, "idle lifetime expired")                             \
    X(SIPTLS_ERR_KEEPALIVE_TIMEOUT, -63, 1, "keepalive timeout")                    \
    X(SIPTLS_ERR_LIMIT, -64, 1, "connection limit reached")                         \
    X(SIPTLS_ERR_CLOSED_LOCAL, -65, 1, "closed locally")                            \
    X(SIPTLS_ERR_SHUTDOWN, -66, 1, "engine shut down")                              \
    X(SIPTLS_ERR_TLS, -67, 1, "TLS error")                                          \
    X(SIPTLS_ERR_RESOLVE, -68, 1, "cannot resolve host")                            \
    X(SIPTLS_ERR_BIND, -69, 0, "cannot bind listener")                              \
    X(SIPTLS_ERR_CERT, -70, 0, "cannot load certificate, key, CA or CRL")           \
    X(SIPTLS_ERR_RATE_LIMIT, -71, 0, "handshake rate limit reached")                 \
    X(SIPTLS_ERR_RESOLVE_TIMEOUT, -75, 1, "DNS lookup timed out (no DNS server answered)") \
    X(SIPTLS_ERR_RENEGOTIATION, -90, 1, "peer tried to renegotiate TLS 1.2 (refused: not supported)") \
    X(SIPTLS_ERR_BUFFER_SMALL, -100, 0, "buffer too small (the length needed is returned)") \
    X(SIPTLS_ERR_NO_CERT, -101, 0, "the peer presented no certificate")             \
    X(SIPTLS_ERR_CERT_NOT_KEPT, -102, 0, "resumed session: the peer's certificate was not kept")

/* A fatal TLS alert the peer sent ends a flow with the status
 * SIPTLS_ERR_PEER_ALERT(description): one status per alert of RFC 8446 §6
 * / RFC 5246 §7.2 (description 0..255), so the reason says which alert
 * (certificate_required, handshake_failure, unknown_ca, ...). Such a status
 * is fatal, siptls_strerror() names the alert ("peer sent fatal TLS alert
 * certificate_required (116)"), siptls_status_name() gives
 * "SIPTLS_ERR_PEER_ALERT" and siptls_status_peer_alert() the description. */
#define SIPTLS_ERR_PEER_ALERT_BASE (-1000)
#define SIPTLS_ERR_PEER_ALERT(description) (SIPTLS_ERR_PEER_ALERT_BASE - (int)(description))

typedef enum siptls_status {
#define SIPTLS_X_ENUM(name, value, fatal, text) name = (value),
    SIPTLS_STATUS_TABLE(SIPTLS_X_ENUM)
#undef SIPTLS_X_ENUM
} siptls_status;

/** Human-readable text of a status. Never NULL; unknown codes give
 *  "unknown status". Thread-safe (static strings). */
const char *siptls_strerror(int status);

/** Short symbolic name of a status ("SIPTLS_ERR_VERIFY"). Never NULL. */
const char *siptls_status_name(int status);

/** The TLS alert description (0..255) of a SIPTLS_ERR_PEER_ALERT() status,
 *  or -1 for any other status. */
int siptls_status_peer_alert(int status);

/** RFC name of a TLS alert description ("handshake_failure"), or NULL for
 *  one no RFC defines. Static strings. */
const char *siptls_tls_alert_name(int description);

/** 1 when a flow that hit this status cannot go on (it is or will be
 *  closed), 0 for success, SIPTLS_AGAIN and recoverable errors. */
int siptls_status_is_fatal(int status);

#ifdef __cplusplus
}
#endif
#endif
