/* siptls CLI — shared helpers of the subcommands. */
#ifndef SIPTLS_CLI_H
#define SIPTLS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "siptls/siptls.h"

int siptls_cli_serve(int argc, char **argv);
int siptls_cli_ping(int argc, char **argv);
int siptls_cli_bench(int argc, char **argv);
int siptls_cli_config(int argc, char **argv);

/** Set a config key or print the error and return non-zero. */
int cli_set(siptls_config *cfg, const char *key, const char *value);

/** Put an in-memory development certificate into the default server
 *  domain (memfd files, no disk); `announce`: print serve's warning about
 *  it. Returns 0 or -1 (error printed). */
int cli_use_devcert(siptls_config *cfg, int announce);

/** Log callback writing "HH:MM:SS.mmm LEVEL text" to stderr. `user` is
 *  ignored; the level filter is the global cli_log_level. */
void cli_log(siptls_log_level level, const char *text, void *user);
extern int cli_log_level;

/** Client-side TLS options of ping and bench into the default client
 *  domain: --ca (else the system CAs unless --insecure or the config gave
 *  some), --insecure, --cert (chain; with the key in the same file unless
 *  --key is given), --tls 1.2|1.3 (NULL = both).
 *  Returns 0 or -1 (error printed). */
int cli_client_tls(siptls_config *cfg, const char *ca, int insecure, const char *cert,
                   const char *key, const char *tls);

/** Resolve the host name of every listen URI of `cfg` the way the engine
 *  will (getaddrinfo, AI_PASSIVE; addresses and wildcards need no lookup).
 *  For each one that does not resolve, print "PREFIX: listen 'URI': cannot
 *  resolve 'HOST': <the resolver's message>" to stderr. Blocks on the
 *  resolver: only before the loop runs. Returns the number of failures. */
int cli_resolve_listen(const siptls_config *cfg, const char *prefix);

/** ping and bench are clients: drop the `listen` URIs a configuration file
 *  (one written for serve) may hold, so that their engine binds nothing. */
void cli_drop_listen(siptls_config *cfg);

/** Monotonic time in seconds. */
double cli_now(void);

#endif
