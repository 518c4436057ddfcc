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
 *  domain (memfd files, no disk). Returns 0 or -1 (error printed). */
int cli_use_devcert(siptls_config *cfg);

/** Log callback writing "HH:MM:SS.mmm LEVEL text" to stderr. `user` is
 *  ignored; the level filter is the global cli_log_level. */
void cli_log(siptls_log_level level, const char *text, void *user);
extern int cli_log_level;

/** Monotonic time in seconds. */
double cli_now(void);

/** Find header `name` (or its compact form `compact`, 0 for none) in the
 *  header block; `from` allows iteration: pass 0 first, then the returned
 *  *next. Returns 1 and the value span, 0 when no more. */
int cli_header(const uint8_t *msg, size_t header_len, const char *name, char compact, size_t from,
               const uint8_t **value, size_t *value_len, size_t *next);

#endif
