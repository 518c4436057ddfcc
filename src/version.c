/* siptls — version and the features of the linked wolfSSL build. */
#include <stdio.h>

#include <wolfssl/options.h>
#include <wolfssl/version.h>

#include "siptls/engine.h"

#ifndef SIPTLS_VERSION
#define SIPTLS_VERSION "0.1.0"
#endif

#ifdef WOLFSSL_DTLS13
#define F_DTLS13 " DTLSv1.3"
#else
#define F_DTLS13 ""
#endif
#ifdef WOLFSSL_DTLS_CID
#define F_CID "yes"
#else
#define F_CID "no"
#endif
#ifdef WOLFSSL_AESNI
#define F_AESNI "yes (AES-GCM preferred)"
#else
#define F_AESNI "no (ChaCha20-Poly1305 preferred)"
#endif
#ifdef SESSION_CERTS
#define F_RESUMED_CERT "yes"
#else
#define F_RESUMED_CERT "no (siptls_flow_peer_cert: SIPTLS_ERR_CERT_NOT_KEPT)"
#endif
#ifdef HAVE_SECRET_CALLBACK
#define F_KEYLOG "TLS 1.2 and 1.3"
#else
#define F_KEYLOG "TLS 1.2 only"
#endif

const char *siptls_version_text(void)
{
    return "siptls " SIPTLS_VERSION " (wolfSSL " LIBWOLFSSL_VERSION_STRING ")\n"
           "transports: tls (TLSv1.2 TLSv1.3), dtls (DTLSv1.2" F_DTLS13 ")\n"
           "DTLS connection ID: " F_CID "\n"
           "AES acceleration: " F_AESNI "\n"
           "key log (SSLKEYLOGFILE format): " F_KEYLOG "\n"
           "peer certificate of a resumed flow: " F_RESUMED_CERT;
}
