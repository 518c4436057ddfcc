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
 *  CN=`cn` (NULL = "localhost"), subjectAltName DNS:localhost, DNS:`cn`,
 *  URI:sip:`cn`, IP:127.0.0.1 and IP:::1, valid from one hour ago for 30
 *  days. `*cert_pem` and `*key_pem` are NUL-terminated PEM strings the
 *  caller frees with free(). Returns SIPTLS_OK, SIPTLS_ERR_NOMEM or
 *  SIPTLS_ERR_CERT (wolfSSL refused). */
int siptls_devcert_generate(const char *cn, char **cert_pem, char **key_pem);

#ifdef __cplusplus
}
#endif
#endif
