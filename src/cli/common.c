/* siptls CLI — helpers shared by serve, ping and bench. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_log_level = SIPTLS_LOG_INFO;

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_log(siptls_log_level level, const char *text, void *user)
{
    (void)user;
    if ((int)level > cli_log_level) {
        return;
    }
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, names[level], text);
}

int cli_set(siptls_config *cfg, const char *key, const char *value)
{
    siptls_config_error err;
    int st = siptls_config_set(cfg, key, value, &err);
    if (st != SIPTLS_OK) {
        fprintf(stderr, "siptls: %s\n", err.msg[0] ? err.msg : siptls_strerror(st));
        return -1;
    }
    return 0;
}

static int memfd_with(const char *name, const char *text, char *path, size_t pathlen)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    /* The fd stays open for the life of the process: reloads re-read it. */
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return 0;
}

int cli_use_devcert(siptls_config *cfg, int announce)
{
    char *cert = NULL, *key = NULL;
    int st = siptls_devcert_generate("localhost", &cert, &key);
    if (st != SIPTLS_OK) {
        fprintf(stderr, "siptls: cannot generate a development certificate: %s\n",
                siptls_strerror(st));
        return -1;
    }
    char cpath[64], kpath[64];
    int rc = -1;
    if (memfd_with("siptls-devcert", cert, cpath, sizeof(cpath)) == 0 &&
        memfd_with("siptls-devkey", key, kpath, sizeof(kpath)) == 0 &&
        cli_set(cfg, "certificate", cpath) == 0 && cli_set(cfg, "private_key", kpath) == 0) {
        rc = 0;
    }
    if (rc == 0 && announce) {
        fprintf(stderr,
                "siptls: *** WARNING: no --cert given: using an in-memory SELF-SIGNED development\n"
                "siptls: *** certificate (CN=localhost). Peers cannot verify it. Not for "
                "production.\n");
    }
    free(cert);
    free(key);
    return rc;
}

static int set_client(siptls_config *cfg, const char *key, const char *value)
{
    char v[4200];
    snprintf(v, sizeof(v), "[client:default]%s", value);
    return cli_set(cfg, key, v);
}

int cli_client_tls(siptls_config *cfg, const char *ca, int insecure, const char *cert,
                   const char *key, const char *tls)
{
    if (key != NULL && cert == NULL) {
        fprintf(stderr, "siptls: --key needs --cert\n");
        return -1;
    }
    if ((insecure && set_client(cfg, "verify_cert", "0") != 0) ||
        (ca != NULL && set_client(cfg, "ca_list", ca) != 0) ||
        /* verifying with no CA configured: the system's trust store */
        (ca == NULL && !insecure && cfg->domains[1].ca_list == NULL &&
         cfg->domains[1].ca_dir == NULL && set_client(cfg, "ca_dir", "/etc/ssl/certs") != 0) ||
        /* without --key: the key is in the --cert file */
        (cert != NULL && (set_client(cfg, "certificate", cert) != 0 ||
                          set_client(cfg, "private_key", key != NULL ? key : "") != 0)) ||
        (tls != NULL &&
         set_client(cfg, "tls_method", strcmp(tls, "1.2") == 0 ? "TLSv1_2" : "TLSv1_3") != 0)) {
        return -1;
    }
    return 0;
}

int cli_resolve_listen(const siptls_config *cfg, const char *prefix)
{
    int failures = 0;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        siptls_uri u;
        if (siptls_config_listen_uri(cfg, i, &u) != SIPTLS_OK || u.host_kind != SIPTLS_HOST_NAME) {
            continue; /* a bad URI is reported by whoever parses it; numbers need no lookup */
        }
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = u.transport == SIPTLS_TRANSPORT_TLS ? SOCK_STREAM : SOCK_DGRAM;
        hints.ai_flags = AI_PASSIVE;
        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)u.port);
        int rc = getaddrinfo(u.host, port, &hints, &res);
        int saved_errno = errno;
        if (rc == 0 && res != NULL) {
            freeaddrinfo(res);
            continue;
        }
        if (res != NULL) {
            freeaddrinfo(res);
        }
        char text[SIPTLS_URI_HOST_MAX + 32];
        if (siptls_uri_format(&u, text, sizeof(text)) < 0) {
            snprintf(text, sizeof(text), "%s", cfg->listen[i]);
        }
        /* gai_strerror, not strerror(errno): errno means something only
         * for EAI_SYSTEM. */
        const char *why = rc == 0 ? "no address" : gai_strerror(rc);
        if (rc == EAI_SYSTEM) {
            why = strerror(saved_errno);
        }
        fprintf(stderr, "%s: listen '%s': cannot resolve '%s': %s\n", prefix, text, u.host, why);
        failures++;
    }
    return failures;
}

void cli_drop_listen(siptls_config *cfg)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        free(cfg->listen[i]);
        cfg->listen[i] = NULL;
    }
    cfg->n_listen = 0;
}
