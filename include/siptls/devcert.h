/* siptls — development certificates.
 *
 * `siptls serve` without --cert runs on an in-memory self-signed certificate
 * made at start. Never use one in production: peers cannot verify it. */
#ifndef SIPTLS_DEVCERT_H
#define SIPTLS_DEVCERT_H

#include "siptls/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Generate an ECDSA P-256 key and a self-signed certificate with subject
 *  O=siptls development certificate, CN=`cn` (NULL = "localhost"),
 *  subjectAltName DNS:localhost, DNS:`cn`, URI:sip:`cn`, URI:sip:localhost
 *  (the two "localhost" names only once when `cn` is "localhost"),
 *  IP:127.0.0.1 and IP:::1, valid from one hour ago for 30 days. The
 *  certificate has CA:TRUE (pathlen 0) so that a peer can trust the file
 *  itself as its CA (wolfSSL refuses a non-CA certificate in a CA list).
 *  `cn` must be a DNS name of at most 63 letters, digits, '-' and '.'.
 *  `*cert_pem` and `*key_pem` are NUL-terminated PEM strings ("CERTIFICATE",
 *  "EC PRIVATE KEY") the caller frees with free(). Returns SIPTLS_OK,
 *  SIPTLS_ERR_INVAL (NULL out pointer, bad `cn`; both outputs NULL),
 *  SIPTLS_ERR_NOMEM or SIPTLS_ERR_CERT (wolfCrypt refused). */
int siptls_devcert_generate(const char *cn, char **cert_pem, char **key_pem);

#ifdef __cplusplus
}
#endif
#endif
