/* siptls — configuration.
 *
 * A plain struct with documented defaults (siptls_config_init), settable key
 * by key (siptls_config_set) or from a file (siptls_config_load_file).
 * Parameter names are the ones operators know from OpenSIPS proto_tls /
 * tls_mgm; every parameter, its default and an example is in
 * docs/admin-guide.md.
 *
 * File syntax (one setting per line):
 *     # comment
 *     key = value
 *     listen = tls:0.0.0.0:5061          (repeatable)
 *     modparam("proto_tls", "tls_port", 5062)   (pasted from opensips.cfg)
 *     certificate = [example.org]/etc/siptls/example.pem  (per domain)
 *
 * Per-domain keys (certificate, private_key, ca_list, ca_dir, crl_file,
 * ciphers_list, tls_method, ec_curve, dtls_min_version, dtls_max_version,
 * verify_cert, require_cert,
 * match_ip_address, match_sip_domain) take an optional `[NAME]` prefix, as in
 * OpenSIPS tls_mgm: without it they set the two built-in domains named
 * "default" (the default server domain and the default client domain);
 * `[NAME]` picks a domain declared before with server_domain / client_domain
 * (`[server:NAME]` / `[client:NAME]` when a server and a client domain share
 * a name). `[NAME]` alone sets every domain of that name (server and
 * client). In match_ip_address / match_sip_domain a bracket that is not a
 * domain selector ("[::1]:5061") is part of the value (domain names never
 * contain ':'); for the other keys it is an error (a mistyped prefix).
 *
 * Values: a value in double quotes is taken literally (\" and \\ are the
 * only escapes); an unquoted value ends at a '#' preceded by white space
 * (a trailing comment); white space around values is trimmed. For string
 * parameters an empty value ("") means unset (NULL). List parameters
 * (listen, trusted_domain, match_ip_address, match_sip_domain) append: each
 * line adds; the last three also take comma-separated lists. Lines longer
 * than 4096 characters are a syntax error. docs/admin-guide.md has the
 * full syntax.
 *
 * Ownership: the struct owns every string and array in it; they are freed by
 * siptls_config_cleanup(). Threading: no global state; a config may be read
 * from several threads once no thread modifies it. */
#ifndef SIPTLS_CONFIG_H
#define SIPTLS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "siptls/status.h"
#include "siptls/uri.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A TLS domain: the security settings for inbound flows (server domain,
 *  chosen by SNI or by the listen address) or outbound flows (client
 *  domain, chosen by destination). Unset strings are NULL; unset ints -1.
 *  In a declared domain "unset" means "as the default domain of the same
 *  kind" (siptls_config_domain_effective()); in the two default domains the
 *  ints are always set and a NULL string means "not used" / siptls default.
 *  match lists are stored canonical: addresses as in siptls_uri_format()
 *  without the scheme, names in lower case. */
typedef struct siptls_domain_cfg {
    char *name;               /**< "default" for the two built-in domains */
    int is_server;            /**< 1 server domain, 0 client domain */
    char **match_ip_address;  /**< "IP:port" / "[v6]:port" / "*"; server: listen address, client: destination */
    size_t n_match_ip_address;
    char **match_sip_domain;  /**< server: SNI names; client: destination SIP domains ("*" = any) */
    size_t n_match_sip_domain;
    char *certificate;        /**< PEM file: certificate (chain) */
    char *private_key;        /**< PEM file: private key */
    char *ca_list;            /**< PEM file of trusted CAs */
    char *ca_dir;             /**< directory of trusted CAs (hashed or plain PEM files) */
    char *crl_file;           /**< PEM file of CRLs (enables CRL checking) */
    char *ciphers_list;       /**< cipher list (wolfSSL/OpenSSL names); NULL = siptls default */
    char *tls_method;         /**< "TLSv1_2", "TLSv1_3", "TLSv1_2-TLSv1_3", "SSLv23" (= 1.2-1.3); NULL = default */
    char *ec_curve;           /**< key-exchange groups, ':'-separated (e.g. "X25519:P-256"); NULL = default */
    int verify_cert;          /**< server: ask for a client certificate; client: verify the server
                                   (default 0 in the default server domain, 1 in the default client domain) */
    int require_cert;         /**< server: refuse clients without a valid certificate */
    /* --- DTLS versions (issue 12) ----------------------------------------- */
    char *dtls_min_version;   /**< "1.2" or "1.3": lowest DTLS version (default "1.2") */
    char *dtls_max_version;   /**< "1.2" or "1.3": highest DTLS version (default "1.3"; 1.2 where
                                   the linked wolfSSL has no DTLS 1.3) */
} siptls_domain_cfg;

typedef struct siptls_config {
    /* --- listeners ------------------------------------------------------ */
    char **listen;                        /**< listen URIs as written, e.g. "tls:0.0.0.0:5061";
                                               syntax checked when set, ports resolved by
                                               siptls_config_listen_uri() (so a later tls_port
                                               line applies to an earlier port-less listen) */
    size_t n_listen;
    unsigned tls_port;                    /**< default port of tls: URIs (5061) */
    unsigned dtls_port;                   /**< default port of dtls: URIs (5061) */
    int reuse_port;                       /**< engines of this process may share a listening
                                               port (SO_REUSEPORT, one engine per thread);
                                               another process never can (0) */

    /* --- SIP message layer ---------------------------------------------- */
    int tls_crlf_pingpong;                /**< answer CRLFCRLF with CRLF (1) */
    int tls_crlf_drop;                    /**< drop lone CRLF pongs silently (0) */
    unsigned tls_max_msg_chunks;          /**< reads per incomplete message, 0 = unlimited (4) */
    unsigned tls_max_msg_time;            /**< seconds to complete a started message, 0 = off (4) */
    unsigned max_msg_size;                /**< bytes, headers + body (65535) */
    unsigned max_header_size;             /**< bytes, start line + headers (16384) */
    unsigned keepalive_interval;          /**< seconds between our CRLFCRLF pings, 0 = off (0) */
    unsigned keepalive_timeout;           /**< seconds to wait for the pong (10) */

    /* --- TLS over TCP ----------------------------------------------------- */
    unsigned tls_handshake_timeout;       /**< ms (10000) */
    unsigned tls_connect_timeout;         /**< ms (5000) */
    unsigned tls_send_timeout;            /**< ms a queued write may wait (5000) */
    unsigned tls_async_max_postponed_chunks; /**< queued messages per flow (32) */
    unsigned tls_async_max_queued_bytes;  /**< queued bytes per flow (1048576) */
    unsigned tls_connection_lifetime;     /**< seconds idle before close (120) */
    unsigned tls_max_connections;         /**< open TLS flows per engine (2048) */

    /* --- security (all transports) --------------------------------------- */
    siptls_domain_cfg *domains;           /**< [0] default server, [1] default client, then declared */
    size_t n_domains;
    char **trusted_domain;                /**< peers whose verified identity is one of these are "trusted" */
    size_t n_trusted_domain;
    char *tls_keylog_file;                /**< NSS key log file for Wireshark; NULL = off */
    int tls_session_cache;                /**< server-side session cache / resumption (1) */
    int tls_session_tickets;              /**< session tickets (1) */
    char *tls_ticket_key_file;            /**< shared ticket key file (fleet); NULL = random per engine */

    /* --- DTLS over UDP ----------------------------------------------------- */
    unsigned dtls_handshake_timeout;      /**< ms for the whole handshake (10000) */
    unsigned dtls_mtu;                    /**< bytes per datagram we send (1200) */
    unsigned dtls_session_lifetime;       /**< seconds idle before a session expires (120) */
    unsigned dtls_max_sessions;           /**< sessions per engine (2048) */
    unsigned dtls_reassembly_timeout;     /**< ms to complete a multi-record message (2000) */
    unsigned dtls_handshake_rate;         /**< cookie-verified handshakes per source address per second (20) */
    unsigned dtls_cookie_lifetime;        /**< seconds before the cookie secret rotates (60) */

    /* --- logging ---------------------------------------------------------- */
    int log_level;                        /**< 0 err, 1 warn, 2 info, 3 debug (2) */

    /* --- name resolution (c-ares, on the engine's loop) --------------------- */
    char **dns_servers;                   /**< "IP:port" / "[IPv6]:port" DNS servers to ask,
                                               in order; none: those of /etc/resolv.conf */
    size_t n_dns_servers;
    unsigned dns_timeout;                 /**< ms to wait for the first answer of a query;
                                               c-ares doubles it each round over the
                                               servers (2000) */
    unsigned dns_tries;                   /**< rounds over the servers per query (3) */

    /* --- flows: backpressure, posting from other threads ------------------- */
    /* (added at the end: the offsets of the fields above stay as they were) */
    unsigned queue_high_water;            /**< % of a flow's queue limits: past it, on_writable
                                               is armed (75) */
    unsigned queue_low_water;             /**< % of a flow's queue limits: drained to it,
                                               on_writable fires (25); below queue_high_water */
    unsigned post_max_pending;            /**< posts and async sends waiting for an engine's
                                               loop (65536) */
    unsigned post_max_pending_bytes;      /**< bytes of the async sends waiting: messages and
                                               their URI / target copies (67108864) */

    /* --- DTLS Connection ID (issue 12; added at the end) ------------------ */
    int dtls_cid;                         /**< offer/accept a DTLS Connection ID (RFC 9146, on
                                               DTLS 1.3 sessions only with wolfSSL 5.7.2) (1) */
    unsigned dtls_cid_length;             /**< bytes of the random CID each session gets (8) */
} siptls_config;

/** Where a configuration error happened. `file` is "" for siptls_config_set. */
typedef struct siptls_config_error {
    int status;        /**< the returned status */
    char file[256];
    unsigned line;     /**< 1-based; 0 when not from a file */
    char key[64];      /**< the parameter name, "" when the line had none */
    char msg[256];     /**< "file:line: key: what is wrong" */
} siptls_config_error;

/** Fill `cfg` with the documented defaults (and the two default domains).
 *  Returns SIPTLS_OK, SIPTLS_ERR_INVAL (`cfg` NULL) or SIPTLS_ERR_NOMEM
 *  (then `cfg` needs no cleanup). */
int siptls_config_init(siptls_config *cfg);

/** Free everything `cfg` owns. NULL is accepted; `cfg` may be re-inited. */
void siptls_config_cleanup(siptls_config *cfg);

/** Deep copy `src` into `dst` (uninitialised). SIPTLS_OK, SIPTLS_ERR_INVAL
 *  (NULL argument) or SIPTLS_ERR_NOMEM (then `dst` is zeroed and needs no
 *  cleanup). */
int siptls_config_copy(siptls_config *dst, const siptls_config *src);

/** Set one parameter from text, as a config-file line would (`value` is
 *  trimmed but not unquoted). `err` may be NULL; on error it holds
 *  "key: what is wrong" (file "" and line 0). Returns SIPTLS_OK,
 *  SIPTLS_ERR_INVAL (NULL argument), SIPTLS_ERR_CONFIG_KEY (unknown name),
 *  SIPTLS_ERR_CONFIG_VALUE (not a number / bad boolean / bad URI / unknown
 *  domain), SIPTLS_ERR_CONFIG_RANGE or SIPTLS_ERR_NOMEM. On error `cfg` is
 *  unchanged. */
int siptls_config_set(siptls_config *cfg, const char *key, const char *value,
                      siptls_config_error *err);

/** Load a file (syntax above) on top of `cfg`. All or nothing: on any error
 *  `cfg` is unchanged and `err` (may be NULL) names the file, the line and
 *  the key ("siptls.conf:12: tls_port: value 70000 out of range 1..65535";
 *  `file` is `path` as given). Returns SIPTLS_OK, SIPTLS_ERR_CONFIG_IO
 *  (cannot open or read, larger than 16 MiB), SIPTLS_ERR_CONFIG_SYNTAX (not
 *  `key = value` nor modparam(...), unterminated quote, line too long, NUL
 *  byte), SIPTLS_ERR_CONFIG_KEY (also: modparam of a module other than
 *  proto_tls, tls_mgm, tls_wolfssl, proto_dtls), or any status of
 *  siptls_config_set(). */
int siptls_config_load_file(siptls_config *cfg, const char *path, siptls_config_error *err);

/** Same as siptls_config_load_file() on text in memory; `name` is used as
 *  the file name in errors. */
int siptls_config_load_string(siptls_config *cfg, const char *text, const char *name,
                              siptls_config_error *err);

/** Find a domain by name and kind (is_server 1/0). NULL when absent. The
 *  pointer is valid until `cfg` is next modified. The built-in ones are
 *  named "default". */
const siptls_domain_cfg *siptls_config_domain(const siptls_config *cfg, const char *name,
                                              int is_server);

/** The settings that apply to `dom` (a domain of `cfg`): every string or
 *  int it leaves unset (NULL / -1) is taken from the default domain of the
 *  same kind; name, is_server and the match lists are `dom`'s own. `out`
 *  borrows every pointer from `cfg`: do not free it; valid until `cfg` is
 *  modified. Returns SIPTLS_OK or SIPTLS_ERR_INVAL (NULL argument). */
int siptls_config_domain_effective(const siptls_config *cfg, const siptls_domain_cfg *dom,
                                   siptls_domain_cfg *out);

/** Parse listen[i] with the configured tls_port / dtls_port as defaults
 *  (port 0 allowed: bind an ephemeral port). Returns SIPTLS_OK,
 *  SIPTLS_ERR_INVAL (NULL argument, i >= n_listen) or a URI status (only if
 *  the struct was edited by hand: siptls_config_set checks the syntax). */
int siptls_config_listen_uri(const siptls_config *cfg, size_t i, siptls_uri *out);

/** 1 when `a` and `b` hold the same settings (every parameter, every domain
 *  in the same order), else 0. Two NULLs are equal. Useful to tell whether
 *  a reloaded file changed anything. */
int siptls_config_equal(const siptls_config *a, const siptls_config *b);

/** Write every parameter as `key = value` lines (a loadable file: loading
 *  it on top of a fresh siptls_config_init() gives a config equal to `cfg`).
 *  Domain keys are written with `[server:NAME]` / `[client:NAME]` prefixes;
 *  unset settings of declared domains are left out. NULL arguments: no-op. */
void siptls_config_dump(const siptls_config *cfg, FILE *out);

/** Like siptls_config_dump(), but every value as an engine made from `cfg`
 *  uses it (what `siptls config` prints): listen URIs with their port
 *  (tls_port / dtls_port filled in, marked "# default port"), and in
 *  declared domains every setting left unset written with the value it
 *  inherits from the default domain of the same kind, marked "# inherited
 *  from [server:default]" (or client). The text loads back and selects the
 *  same settings, but is not siptls_config_equal() to `cfg` (inherited
 *  values become explicit). NULL arguments: no-op. */
void siptls_config_dump_effective(const siptls_config *cfg, FILE *out);

/** The parameter table, for tools and for the docs check: the i-th
 *  parameter's name and default as text ("" = unset / empty list; for
 *  verify_cert "0 (server domains), 1 (client domains)"). Either out
 *  pointer may be NULL. Static strings. Returns 0 past the end, else 1. */
int siptls_config_param(size_t i, const char **name, const char **default_text);

#ifdef __cplusplus
}
#endif
#endif
