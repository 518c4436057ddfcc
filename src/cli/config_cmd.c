/* siptls config — load a configuration the way serve would, report the
 * first error with file:line:key, and print the effective configuration. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

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
            printf("usage: siptls config [--config FILE]\n"
                   "  check FILE (key = value or OpenSIPS modparam lines) and print the\n"
                   "  effective configuration, every parameter with its value; without\n"
                   "  --config, print the defaults. Exit 1 on the first error, which\n"
                   "  names the file, the line and the parameter.\n");
            return 0;
        } else {
            return 2;
        }
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
    if (file != NULL) {
        siptls_config_error err;
        if (siptls_config_load_file(&cfg, file, &err) != SIPTLS_OK) {
            fprintf(stderr, "siptls: %s\n", err.msg);
            rc = 1;
        }
    }
    if (rc == 0) {
        siptls_config_dump(&cfg, stdout);
    }
    siptls_config_cleanup(&cfg);
    return rc;
}
