/* siptls — security contexts: the key-log file (tls_keylog_file).
 *
 * SSLKEYLOGFILE-style lines for Wireshark, written only when an operator
 * configured the file (the engine warns at start that it is for
 * debugging). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "secctx_internal.h"

/* ------------------------------------------------------------------------ */
/* key log                                                                  */
/* ------------------------------------------------------------------------ */

static void hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The TLS 1.2 key log line needs the handshake's client random, which
 * wolfSSL frees when the handshake ends unless asked to keep it (Debian's
 * 5.5.4 build kept it for every connection, WOLFSSL_OPENVPN; 5.7.2 built
 * for siptls does not). Kept only while a key log is configured, and freed
 * again once the line is written (siptls__secctx_keylog_write). */
void siptls__secctx_keylog_keep(const siptls__secctx *s, WOLFSSL *ssl)
{
    if (ssl != NULL && s->keylog != NULL) {
        wolfSSL_KeepArrays(ssl);
    }
}

void siptls__secctx_keylog_write(siptls__secctx *s, WOLFSSL *ssl)
{
    if (s->keylog == NULL) {
        return;
    }
    int v = wolfSSL_version(ssl);
    if (v == TLS1_3_VERSION) {
        wolfSSL_FreeArrays(ssl);
        /* TLS 1.3 traffic secrets are only handed out through the secret
         * callback, which this wolfSSL was built without. */
        if (!(s->keylog_warned & 1)) {
            s->keylog_warned |= 1;
            slog(s, SIPTLS_LOG_WARN,
                 "tls_keylog_file: TLS 1.3 keys cannot be logged: this wolfSSL was built "
                 "without --enable-secret-callback (HAVE_SECRET_CALLBACK); use tls_method "
                 "TLSv1_2 while capturing");
        }
        return;
    }
    unsigned char random[32];
    unsigned char master[48];
    WOLFSSL_SESSION *sess = wolfSSL_get_session(ssl);
    int got = wolfSSL_get_client_random(ssl, random, sizeof(random)) == sizeof(random) &&
              sess != NULL &&
              wolfSSL_SESSION_get_master_key(sess, master, sizeof(master)) == (int)sizeof(master);
    wolfSSL_FreeArrays(ssl); /* kept for this line only (siptls__secctx_keylog_keep) */
    if (!got) {
        return;
    }
    /* NSS key log format, understood by Wireshark. */
    char line[14 + 64 + 1 + 96 + 2];
    memcpy(line, "CLIENT_RANDOM ", 14);
    hex(line + 14, random, sizeof(random));
    line[14 + 64] = ' ';
    hex(line + 14 + 64 + 1, master, sizeof(master));
    memset(master, 0, sizeof(master));
    size_t len = strlen(line);
    line[len++] = '\n';
    int fd = open(s->keylog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    ssize_t w = fd >= 0 ? write(fd, line, len) : -1;
    if (fd >= 0) {
        close(fd);
    }
    memset(line, 0, sizeof(line));
    if (w != (ssize_t)len && !(s->keylog_warned & 2)) {
        s->keylog_warned |= 2;
        slog(s, SIPTLS_LOG_WARN, "tls_keylog_file '%s': cannot write: %s", s->keylog,
             strerror(errno));
    }
}
