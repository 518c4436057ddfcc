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

/* The key-log file, opened for appending: created 0600, never through a
 * symbolic link. -1 (errno) when it cannot be. */
static int keylog_open(const siptls__secctx *s)
{
    return open(s->keylog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

int siptls__secctx_keylog_check(siptls__secctx *s)
{
    int fd = keylog_open(s);
    if (fd < 0) {
        slog(s, SIPTLS_LOG_ERR, "tls_keylog_file '%s': cannot open for writing: %s", s->keylog,
             strerror(errno));
        return SIPTLS_ERR_INVAL;
    }
    close(fd);
    return SIPTLS_OK;
}

/* Append one line to the key-log file (opened per line: debugging only,
 * and a file moved away by the operator is recreated). */
static void append_line(siptls__secctx *s, const char *line, size_t len)
{
    int fd = keylog_open(s);
    ssize_t w = fd >= 0 ? write(fd, line, len) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (w != (ssize_t)len && !(s->keylog_warned & 2)) {
        s->keylog_warned |= 2;
        slog(s, SIPTLS_LOG_WARN, "tls_keylog_file '%s': cannot write: %s", s->keylog,
             strerror(errno));
    }
}

#if defined(HAVE_SECRET_CALLBACK) && defined(WOLFSSL_TLS13)
/* TLS 1.3 (and DTLS 1.3): wolfSSL hands every secret it derives to this
 * callback, during the handshake (while the client random is still there).
 * The secctx is found through the WOLFSSL's CTX, as the ticket callback
 * does: once the secctx is freed (reload) that is NULL and nothing is
 * written. Always returns 0: a non-zero return would fail the handshake. */
static int tls13_secret_cb(WOLFSSL *ssl, int id, const unsigned char *secret, int secret_len,
                           void *user)
{
    (void)user;
    sec_domain *dom = ssl_domain(ssl);
    siptls__secctx *s = dom != NULL ? dom->owner : NULL;
    const char *label = NULL;
    switch (id) {
    case CLIENT_EARLY_TRAFFIC_SECRET:
        label = "CLIENT_EARLY_TRAFFIC_SECRET";
        break;
    case CLIENT_HANDSHAKE_TRAFFIC_SECRET:
        label = "CLIENT_HANDSHAKE_TRAFFIC_SECRET";
        break;
    case SERVER_HANDSHAKE_TRAFFIC_SECRET:
        label = "SERVER_HANDSHAKE_TRAFFIC_SECRET";
        break;
    case CLIENT_TRAFFIC_SECRET:
        label = "CLIENT_TRAFFIC_SECRET_0";
        break;
    case SERVER_TRAFFIC_SECRET:
        label = "SERVER_TRAFFIC_SECRET_0";
        break;
    case EARLY_EXPORTER_SECRET:
        label = "EARLY_EXPORTER_SECRET";
        break;
    case EXPORTER_SECRET:
        label = "EXPORTER_SECRET";
        break;
    default:
        return 0;
    }
    unsigned char random[32];
    /* label, random, secret (at most SHA-512 size), separators */
    char line[32 + 1 + 64 + 1 + 128 + 2];
    if (s == NULL || s->keylog == NULL || secret_len <= 0 || secret_len > 64 ||
        wolfSSL_get_client_random(ssl, random, sizeof(random)) != sizeof(random)) {
        return 0;
    }
    size_t n = strlen(label);
    memcpy(line, label, n);
    line[n++] = ' ';
    hex(line + n, random, sizeof(random));
    n += 64;
    line[n++] = ' ';
    hex(line + n, secret, (size_t)secret_len);
    n += 2 * (size_t)secret_len;
    line[n++] = '\n';
    append_line(s, line, n);
    memset(line, 0, sizeof(line));
    return 0;
}
#endif

/* The TLS 1.2 key log line needs the handshake's client random, which
 * wolfSSL frees when the handshake ends unless asked to keep it (Debian's
 * 5.5.4 build kept it for every connection, WOLFSSL_OPENVPN; 5.7.2 built
 * for siptls does not). Kept only while a key log is configured, and freed
 * again once the line is written (siptls__secctx_keylog_write). TLS 1.3
 * secrets come through the secret callback, set here too. */
void siptls__secctx_keylog_keep(const siptls__secctx *s, WOLFSSL *ssl)
{
    if (ssl != NULL && s->keylog != NULL) {
        wolfSSL_KeepArrays(ssl);
#if defined(HAVE_SECRET_CALLBACK) && defined(WOLFSSL_TLS13)
        wolfSSL_set_tls13_secret_cb(ssl, tls13_secret_cb, NULL);
#endif
    }
}

void siptls__secctx_keylog_write(siptls__secctx *s, WOLFSSL *ssl)
{
    if (s->keylog == NULL) {
        return;
    }
    int v = wolfSSL_version(ssl);
#ifdef DTLS1_3_VERSION
    int v13 = v == TLS1_3_VERSION || v == DTLS1_3_VERSION;
#else
    int v13 = v == TLS1_3_VERSION;
#endif
    if (v13) {
        wolfSSL_FreeArrays(ssl);
#if !defined(HAVE_SECRET_CALLBACK) || !defined(WOLFSSL_TLS13)
        /* TLS 1.3 traffic secrets are only handed out through the secret
         * callback, which this wolfSSL was built without. */
        if (!(s->keylog_warned & 1)) {
            s->keylog_warned |= 1;
            slog(s, SIPTLS_LOG_WARN,
                 "tls_keylog_file: TLS 1.3 keys cannot be logged: this wolfSSL was built "
                 "without --enable-secret-callback (HAVE_SECRET_CALLBACK); use tls_method "
                 "TLSv1_2 while capturing");
        }
#endif
        /* else: written during the handshake (tls13_secret_cb) */
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
    append_line(s, line, len);
    memset(line, 0, sizeof(line));
}
