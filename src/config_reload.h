/* siptls internal — what a reload takes from a new configuration (config.c,
 * for siptls_engine_reload in engine.c).
 *
 * A reload applies the TLS domains (server_domain / client_domain and every
 * per-domain key) and the security section (trusted_domain,
 * tls_keylog_file, tls_session_cache, tls_session_tickets,
 * tls_ticket_key_file); every other parameter keeps the value the engine
 * was created with (listeners, limits, timeouts, DTLS, log_level).
 * docs/admin-guide.md, "Reloading", says the same to operators. */
#ifndef SIPTLS_CONFIG_RELOAD_H
#define SIPTLS_CONFIG_RELOAD_H

#include "siptls/config.h"

/** 1 when a reload applies parameter `name`, 0 when it keeps the value the
 *  engine was created with (or there is no such parameter). */
int siptls__config_reloadable(const char *name);

/** The configuration an engine running with `cur` gets from a reload with
 *  `next`, into `out` (uninitialised): `next`'s domains and security
 *  section, `cur`'s value of every other parameter. `kept` (may be NULL)
 *  is called with the name of every other parameter whose value differs
 *  in `next` (so that the caller can say it is not applied). Returns
 *  SIPTLS_OK or SIPTLS_ERR_NOMEM (then `out` needs no cleanup). */
int siptls__config_reload_merge(siptls_config *out, const siptls_config *cur,
                                const siptls_config *next,
                                void (*kept)(void *user, const char *name), void *user);

#endif
