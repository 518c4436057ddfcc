/* siptls config — check a configuration the way serve would load it, short
 * of binding: the file (the first error with file:line: key), then every
 * certificate, key, CA list and CRL (siptls_config_check, the engine's own
 * loader and words), then every listen host name (the resolver's own
 * message); print the effective configuration. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct config_log {
    const char *file;
    int errors;
} config_log;

static void check_log(siptls_log_level level, const char *text, void *user)
{
    config_log *l = user;
    if (level == SIPTLS_LOG_ERR) {
        l->errors++;
        fprintf(stderr, "siptls: %s: %s\n", l->file, text);
    } else if (level == SIPTLS_LOG_WARN) {
        fprintf(stderr, "siptls: %s: warning: %s\n", l->file, text);
    }
}

static void config_usage(FILE *out)
{
    fprintf(out, "usage: siptls config [FILE | --config FILE]\n"
                 "  check FILE (key = value or OpenSIPS modparam lines) the way `siptls serve`\n"
                 "  would load it, short of binding: every parameter, then the certificate,\n"
                 "  private key (and that it belongs to the certificate), CA list / directory\n"
                 "  and CRL of every domain, the ticket key file, and that every listen host\n"
                 "  name resolves. On success print the effective configuration on stdout:\n"
                 "  every parameter with its value, listen URIs with their port, inherited\n"
                 "  domain settings written out (marked \"# inherited\"); it loads back as a\n"
                 "  configuration file. Without FILE, check and print the defaults.\n"
                 "  Exit 0 when everything loads; 1 with one line per problem on stderr:\n"
                 "  \"FILE:LINE: key: reason\" for the file's syntax and values, \"FILE: domain\n"
                 "  'NAME': reason\" for certificates and keys, \"FILE: listen 'URI': reason\"\n"
                 "  for addresses; 2 for a usage error.\n"
                 "  -c, --config FILE     the file to check (the same as giving FILE)\n"
                 "  -h, --help            this text\n");
}

int siptls_cli_config(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            file = optarg;
        } else if (c == 'h') {
            config_usage(stdout);
            return 0;
        } else {
            config_usage(stderr);
            return 2;
        }
    }
    if (optind < argc && file == NULL) {
        file = argv[optind++]; /* siptls config FILE */
    }
    if (optind != argc) {
        fprintf(stderr, "siptls config: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    siptls_config cfg;
    if (siptls_config_init(&cfg) != SIPTLS_OK) {
        return 1;
    }
    int rc = 0;
    config_log log = {file != NULL ? file : "(defaults)", 0};
    if (file != NULL) {
        siptls_config_error err;
        if (siptls_config_load_file(&cfg, file, &err) != SIPTLS_OK) {
            fprintf(stderr, "siptls: %s\n", err.msg);
            siptls_config_cleanup(&cfg);
            return 1;
        }
    }
    /* The check runs on a copy: warnings are shown whatever log_level the
     * file sets, and without a server certificate serve's development
     * certificate stands in (the copy is never printed). */
    siptls_config chk;
    if (siptls_config_copy(&chk, &cfg) != SIPTLS_OK) {
        siptls_config_cleanup(&cfg);
        return 1;
    }
    if (chk.log_level < SIPTLS_LOG_WARN) {
        chk.log_level = SIPTLS_LOG_WARN;
    }
    if (chk.n_listen > 0 && chk.domains[0].certificate == NULL) {
        fprintf(stderr,
                "siptls: %s: warning: listeners but no certificate in the default server domain: "
                "siptls serve would use an in-memory self-signed development certificate (peers "
                "cannot verify it); a host's engine would refuse to start\n",
                log.file);
        if (cli_use_devcert(&chk, 0) != 0) {
            rc = 1;
        }
    }
    siptls_callbacks cb = {NULL, NULL, NULL, check_log};
    siptls_config_error err;
    if (rc == 0 && siptls_config_check(&chk, &err, &cb, &log) != SIPTLS_OK) {
        if (log.errors == 0) {
            fprintf(stderr, "siptls: %s: %s\n", log.file, err.msg);
        }
        rc = 1;
    }
    siptls_config_cleanup(&chk);
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "siptls: %s", log.file);
    if (cli_resolve_listen(&cfg, prefix) != 0) {
        rc = 1;
    }
    if (rc == 0) {
        siptls_config_dump_effective(&cfg, stdout);
        fprintf(stderr,
                "siptls: %s: OK: certificates, keys, CAs and CRLs load; listen names resolve "
                "(nothing was bound)\n",
                log.file);
    }
    siptls_config_cleanup(&cfg);
    return rc;
}
