/* siptls — flow tokens: what a host puts on the wire to name a flow.
 *
 * A flow id is a handle for the host, sequential and per engine (1, 2, 3
 * ... in every process): never put one on the wire. An RFC 5626 flow
 * token (the user part of a Path or Record-Route URI, a Contact or Route
 * parameter) must be unforgeable and must name the flow of this engine of
 * this process, nothing else. siptls_flow_token() makes one:
 *
 *   - 38 characters of base64url (RFC 4648 §5: A-Z a-z 0-9 - _), no
 *     padding: safe, unescaped, in a SIP URI user part and in a URI or
 *     header parameter value (RFC 3261 §25.1 "unreserved"). Case matters:
 *     compare it byte for byte, as RFC 3261 §19.1.4 compares user parts.
 *   - 28 bytes inside: the engine id and the flow id, encrypted, and a
 *     128-bit tag: HMAC-SHA256 under the engine's token key over the
 *     engine id, the flow id and a random boot id drawn once per process.
 *     The same flow always gets the same token; it tells nothing about the
 *     ids to whoever reads it.
 *   - siptls_flow_from_token() gives the flow back only while that flow is
 *     open, on the engine that made it, in the process that made it, under
 *     the key it was made with. A forged, altered, truncated or extended
 *     token, one of a closed flow, of another engine, of an earlier run of
 *     the process (its boot id differs, whatever the key) or made under
 *     another key looks up as SIPTLS_ERR_GONE, exactly like a closed flow.
 *
 * The token key is random per process unless the host sets one
 * (siptls_engine_set_token_key), for example from its secret store; every
 * engine of a process has the same random key, so a token of any engine
 * can be traced to its engine (siptls_flow_token_engine) by another one.
 * No token survives a restart, with or without the key: the flows it could
 * name are gone too.
 *
 * Threading: every call here runs on the thread of the engine's loop
 * (siptls_engine_id() on any thread). None calls a callback. */
#ifndef SIPTLS_TOKEN_H
#define SIPTLS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "siptls/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SIPTLS_FLOW_TOKEN_LEN 38                         /**< characters of a token */
#define SIPTLS_FLOW_TOKEN_SIZE (SIPTLS_FLOW_TOKEN_LEN + 1) /**< buffer for one, with its NUL */

/** The engine's id: unique among the engines of this process (1, 2, ...,
 *  in creation order), never 0 for an engine; 0 for NULL. What a token
 *  names besides the flow id. Any thread. */
uint32_t siptls_engine_id(const siptls_engine *e);

/** Write the token of the open flow `flow` into `buf` (`len` at least
 *  SIPTLS_FLOW_TOKEN_SIZE: 38 characters and a NUL). Returns SIPTLS_OK,
 *  SIPTLS_ERR_GONE (no such open flow: nothing written), SIPTLS_ERR_INVAL
 *  (NULL argument, `len` too small) or SIPTLS_ERR_NOT_SUPPORTED (the
 *  process had no randomness for its boot id: never on Linux >= 3.17). */
int siptls_flow_token(siptls_engine *e, siptls_flow_id flow, char *buf, size_t len);

/** The open flow of this engine that `token` (a NUL-terminated string, as
 *  siptls_flow_token() wrote it) names: SIPTLS_OK with *flow set, else
 *  SIPTLS_ERR_GONE (forged, altered, truncated, another engine's, another
 *  process's, another key's, or the flow is closed; *flow untouched), or
 *  SIPTLS_ERR_INVAL (NULL `e` or `token`). `flow` may be NULL (a check
 *  only). Constant time in the token's contents up to its length. */
int siptls_flow_from_token(siptls_engine *e, const char *token, siptls_flow_id *flow);

/** Which engine of this process made `token`: SIPTLS_OK with
 *  *engine_id set when the token is authentic under `e`'s key (the one
 *  every engine has unless a host set another) and was made by this
 *  process, else SIPTLS_ERR_GONE (or SIPTLS_ERR_INVAL for NULL `e` /
 *  `token`). Says nothing about whether the flow is still open: ask that
 *  engine (siptls_flow_from_token on its thread). For a host whose
 *  engines run on several threads and that must route a request to the
 *  engine that holds the flow. */
int siptls_flow_token_engine(siptls_engine *e, const char *token, uint32_t *engine_id);

/** Set the key tokens of `e` are made and checked with: `len` 16 to 64
 *  bytes (32 random bytes are right), copied. Tokens handed out before,
 *  under the previous key, no longer look up. Set the same key on every
 *  engine of the process when tokens must be traced across engines.
 *  Returns SIPTLS_OK or SIPTLS_ERR_INVAL (NULL argument, bad length). */
int siptls_engine_set_token_key(siptls_engine *e, const uint8_t *key, size_t len);

#ifdef __cplusplus
}
#endif
#endif
