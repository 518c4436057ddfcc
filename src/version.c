/* siptls — version and the features of the linked wolfSSL build. */
#include <pthread.h>
#include <stdio.h>

#include <wolfssl/options.h>
#include <wolfssl/version.h>

#include "secctx.h"
#include "siptls/engine.h"

#ifndef SIPTLS_VERSION
#define SIPTLS_VERSION "0.1.0"
#endif

#ifdef WOLFSSL_DTLS13
#define F_DTLS13 "DTLSv1.2 DTLSv1.3"
#else
#define F_DTLS13 "DTLSv1.2"
#endif
#if defined(WOLFSSL_DTLS_CID) && defined(WOLFSSL_DTLS13) && defined(SIPTLS_WOLFSSL_SHIM)
#define F_CID "yes (DTLS 1.3 sessions)"
#else
#define F_CID "no"
#endif
#ifdef WOLFSSL_AESNI
#define F_AESNI "yes"
#else
#define F_AESNI "no"
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

static char text[768];
static pthread_once_t text_once = PTHREAD_ONCE_INIT;

/* The cipher order is decided at run time (this CPU), so the text is made
 * once, on the first call. */
static void text_init(void)
{
    int cpu = siptls__cpu_has_aes();
    snprintf(text, sizeof(text),
             "siptls " SIPTLS_VERSION " (wolfSSL " LIBWOLFSSL_VERSION_STRING ")\n"
             "transports: tls (TLSv1.2 TLSv1.3), dtls (" F_DTLS13 ")\n"
             "DTLS connection ID: " F_CID "\n"
             "AES acceleration: wolfSSL " F_AESNI ", this CPU %s\n"
             "cipher order: %s\n"
             "key log (SSLKEYLOGFILE format): " F_KEYLOG "\n"
             "peer certificate of a resumed flow: " F_RESUMED_CERT,
             cpu ? "yes" : "no", siptls__secctx_cipher_order_text(siptls__secctx_aes_first(cpu)));
}

const char *siptls_version_text(void)
{
    pthread_once(&text_once, text_init);
    return text;
}
