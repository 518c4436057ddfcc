/* siptls — command-line tool: serve, ping, bench. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: siptls COMMAND [options]\n"
                 "\n"
                 "commands:\n"
                 "  serve    run a stateless SIP responder on tls: and dtls: listeners\n"
                 "  ping     send OPTIONS (or a CRLF keepalive) to a SIP TLS/DTLS peer\n"
                 "  bench    load a SIP TLS/DTLS server: requests, handshakes, resumption, idle "
                 "connections\n"
                 "  config   check a configuration file and print the effective settings\n"
                 "\n"
                 "  siptls COMMAND --help    options of a command\n"
                 "  siptls --version         version and built-in TLS/DTLS features\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("%s\n", siptls_version_text());
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) {
        return siptls_cli_serve(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "ping") == 0) {
        return siptls_cli_ping(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "bench") == 0) {
        return siptls_cli_bench(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "config") == 0) {
        return siptls_cli_config(argc - 1, argv + 1);
    }
    fprintf(stderr, "siptls: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
