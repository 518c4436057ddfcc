/* siptls internal — the DTLS transport's pure parts and test hooks.
 *
 * Everything declared here except the test hooks at the end is pure code:
 * bytes in, decisions out; no sockets, no libev, no wolfSSL. Each part has
 * a unit test in tests/unit/test_dtls_*.c:
 *   record layer   siptls__dtls_record_* / _scan / _hello_parse (dtls_record.c)
 *   STUN           siptls__dtls_stun_* (dtls_stun.c)
 *   hello cache    siptls__dtls_hello_cache_* (dtls_hello_cache.c)
 *   rate limiter   siptls__dtls_ratelimit_* (dtls_ratelimit.c)
 * Threading: every object is used by one thread at a time. */
#ifndef SIPTLS_DTLS_INTERNAL_H
#define SIPTLS_DTLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------------ */
/* record layer (RFC 6347 §4.1)                                             */
/* ------------------------------------------------------------------------ */

#define SIPTLS__DTLS_RECORD_HEADER 13 /* type(1) version(2) epoch(2) seq(6) length(2) */
#define SIPTLS__DTLS_HS_HEADER 12     /* type(1) length(3) message_seq(2) frag_off(3) frag_len(3) */

enum {
    SIPTLS__DTLS_CT_CCS = 20,
    SIPTLS__DTLS_CT_ALERT = 21,
    SIPTLS__DTLS_CT_HANDSHAKE = 22,
    SIPTLS__DTLS_CT_APPDATA = 23,
    SIPTLS__DTLS_CT_ACK = 26 /* RFC 9147 §7 (DTLS 1.3) */
};

/* RFC 9147 §4: a DTLS 1.3 ciphertext record starts with 0b001CSLEE (the
 * unified header): C a connection ID follows, S a 16-bit (else 8-bit)
 * sequence number, L a 16-bit length (else the record runs to the end of
 * the datagram), EE the low two bits of the epoch. */
#define SIPTLS__DTLS_UH_MASK 0xE0
#define SIPTLS__DTLS_UH_FIXED 0x20
#define SIPTLS__DTLS_UH_CID 0x10
#define SIPTLS__DTLS_UH_SEQ16 0x08
#define SIPTLS__DTLS_UH_LEN 0x04
/** Longest connection ID siptls uses (its own, which peers put on records
 *  to it; the length is fixed per engine). */
#define SIPTLS__DTLS_CID_MAX 16

/** RFC 7983 §7: what the first byte of a datagram on a DTLS port says. */
typedef enum siptls__dtls_demux {
    SIPTLS__DTLS_DEMUX_STUN = 1, /**< 0..3 */
    SIPTLS__DTLS_DEMUX_DTLS = 2, /**< 20..63 */
    SIPTLS__DTLS_DEMUX_JUNK = 3  /**< anything else (and empty datagrams) */
} siptls__dtls_demux;

siptls__dtls_demux siptls__dtls_demux_byte(const uint8_t *dg, size_t len);

/** One record header, parsed. */
typedef struct siptls__dtls_record {
    uint8_t type;        /**< content type; a unified header's first byte when `unified` */
    uint8_t unified;     /**< a DTLS 1.3 ciphertext record (RFC 9147 §4): its real type,
                              and the sequence number bits, are encrypted */
    uint16_t version;    /**< 0 for a unified header */
    uint16_t epoch;      /**< unified: the low two bits only */
    uint64_t seq;        /**< 48-bit sequence number; unified: not known (0) */
    const uint8_t *cid;  /**< unified with the C bit: the connection ID; else NULL */
    const uint8_t *body; /**< points into the datagram */
    size_t len;
} siptls__dtls_record;

/** Parse the record at the start of `data`. Returns the bytes it occupies
 *  (header + length), or 0 when `len` is shorter than the header or than
 *  the length the header announces, or the version is not DTLS (major
 *  byte 0xFE). */
size_t siptls__dtls_record_parse(const uint8_t *data, size_t len, siptls__dtls_record *rec);

/** Parse a DTLS 1.3 unified header record (RFC 9147 §4) at the start of
 *  `data`, connection IDs being `cid_len` bytes (0: none expected, a record
 *  with the C bit is refused). Returns the bytes it occupies, 0 when not a
 *  unified header or cut short or empty. Without the L bit the record
 *  takes the rest of `len`. */
size_t siptls__dtls_record_parse_unified(const uint8_t *data, size_t len, size_t cid_len,
                                         siptls__dtls_record *rec);

/** The framer's sequence number of a record: epoch in the top 16 bits. */
static inline uint64_t siptls__dtls_record_seq64(const siptls__dtls_record *r)
{
    return ((uint64_t)r->epoch << 48) | r->seq;
}

/** What a whole datagram holds. */
typedef struct siptls__dtls_scan {
    unsigned n_records;
    unsigned n_appdata; /**< application_data records */
    unsigned n_epoch0;  /**< records in epoch 0 (plaintext) */
    unsigned n_unified; /**< DTLS 1.3 ciphertext records (unified header) */
    siptls__dtls_record first;
    siptls__dtls_record appdata; /**< the last application_data record seen */
} siptls__dtls_scan;

/** Check that `dg` is a sequence of complete DTLS records of known content
 *  types (20..23) and fill `out`. Returns 0 when well formed, -1 when not
 *  (a record cut short, trailing bytes, an unknown type, not DTLS): such a
 *  datagram must not reach wolfSSL, which would wait for the rest of the
 *  record and glue the next datagram to it. */
int siptls__dtls_scan_datagram(const uint8_t *dg, size_t len, siptls__dtls_scan *out);

/** The same, knowing that connection IDs on records to us are `cid_len`
 *  bytes (0: none). Also accepts DTLS 1.3 records: ciphertext records with
 *  the unified header (RFC 9147 §4) and plaintext ACKs (type 26).
 *  siptls__dtls_scan_datagram() is this with `cid_len` 0. */
int siptls__dtls_scan_datagram_cid(const uint8_t *dg, size_t len, size_t cid_len,
                                   siptls__dtls_scan *out);

/** A ClientHello fragment's handshake header and, when the fragment starts
 *  at offset 0 and reaches it, the cookie length. */
typedef struct siptls__dtls_hello {
    uint32_t msg_len; /**< length of the whole ClientHello body */
    uint16_t message_seq;
    uint32_t frag_off;
    uint32_t frag_len;
    int fragmented;   /**< frag_off != 0 or frag_len != msg_len */
    int cookie_known; /**< cookie_len is valid (the fragment holds the field) */
    unsigned cookie_len;
    /** a whole (unfragmented) hello: a cookie extension (DTLS 1.3, RFC 8446
     *  §4.2.2) is present; a DTLS 1.3 hello carries its cookie there, the
     *  legacy cookie field stays empty */
    int cookie_ext;
    const uint8_t *frag; /**< the fragment bytes (frag_len of them) */
} siptls__dtls_hello;

/** Parse the body of an epoch-0 handshake record. Returns 0 when it holds a
 *  ClientHello (fragment) and fills `h`; 1 when it is another handshake
 *  message; -1 when malformed (header cut short, fragment past the message
 *  length, session_id longer than 32). The record must hold exactly one
 *  handshake fragment (trailing bytes are malformed: wolfSSL's stateless
 *  path expects one message). */
int siptls__dtls_hello_parse(const uint8_t *body, size_t len, siptls__dtls_hello *h);

/** 1 when the datagram's first record is an epoch-0 handshake record that
 *  holds a ClientHello (fragment); then `h` is filled. */
int siptls__dtls_is_client_hello(const siptls__dtls_scan *s, siptls__dtls_hello *h);

/** 1 when `dg` is exactly one epoch-0 handshake record holding a
 *  HelloVerifyRequest or (DTLS 1.3) a HelloRetryRequest (what the listener
 *  object may send). */
int siptls__dtls_is_hello_verify(const uint8_t *dg, size_t len);

/** 1 when the hello `h` carries a cookie: the legacy field (DTLS 1.2) or
 *  the cookie extension (DTLS 1.3). */
static inline int siptls__dtls_hello_has_cookie(const siptls__dtls_hello *h)
{
    return h->cookie_len != 0 || h->cookie_ext;
}

/* ------------------------------------------------------------------------ */
/* STUN keepalive (RFC 5389, RFC 5626 §3.5.2)                               */
/* ------------------------------------------------------------------------ */

#define SIPTLS__STUN_MAGIC 0x2112A442u
#define SIPTLS__STUN_HEADER 20
/** Largest response we build: header + XOR-MAPPED-ADDRESS (IPv6, 24) +
 *  FINGERPRINT (8). */
#define SIPTLS__STUN_MAX_RESPONSE (SIPTLS__STUN_HEADER + 24 + 8)

/** Check a STUN Binding request: header (type 0x0001, length a multiple
 *  of 4 and equal to the rest of the datagram, magic cookie), attributes
 *  well formed, no comprehension-required attribute (0x0000-0x7FFF) since
 *  we understand none, FINGERPRINT (if present) last and correct. Returns
 *  0 when it may be answered, -1 when it must be dropped; `*has_fp` says
 *  whether it carried FINGERPRINT. */
int siptls__dtls_stun_check(const uint8_t *dg, size_t len, int *has_fp);

/** Build the Binding success response to request `req` (checked) telling
 *  the peer its address `from` (AF_INET / AF_INET6) in XOR-MAPPED-ADDRESS,
 *  with FINGERPRINT when `fingerprint`. Returns the length written into
 *  `out` (at least SIPTLS__STUN_MAX_RESPONSE bytes), 0 for an unknown
 *  address family. */
size_t siptls__dtls_stun_response(const uint8_t *req, const struct sockaddr *from, int fingerprint,
                                  uint8_t *out);

/** Decode XOR-MAPPED-ADDRESS from a Binding success response (tests and
 *  a future client). Returns 0 and fills `out` (sockaddr_in or _in6), -1
 *  when absent or malformed. */
int siptls__dtls_stun_parse_mapped(const uint8_t *dg, size_t len, struct sockaddr_storage *out);

/** Build a Binding request with transaction id `txid` (12 bytes); with
 *  FINGERPRINT when `fingerprint`. Returns its length (20 or 28). */
size_t siptls__dtls_stun_request(const uint8_t txid[12], int fingerprint, uint8_t *out);

/** CRC-32 (ISO 3309, as FINGERPRINT uses). */
uint32_t siptls__dtls_crc32(const uint8_t *p, size_t n);

/* ------------------------------------------------------------------------ */
/* fragmented ClientHello reassembly                                        */
/* ------------------------------------------------------------------------ */

typedef struct siptls__dtls_hello_cache siptls__dtls_hello_cache;

/** A cache of at most `slots` partial ClientHellos (keyed by source
 *  address), each at most `max_hello` bytes, forgotten `expire_ms` after
 *  their first fragment; the oldest is evicted when full. Returns 0 or -1
 *  (out of memory). */
int siptls__dtls_hello_cache_new(siptls__dtls_hello_cache **out, unsigned slots, size_t max_hello,
                                 uint64_t expire_ms);
void siptls__dtls_hello_cache_free(siptls__dtls_hello_cache *c);

/** Add the ClientHello fragment `h` (parsed from the epoch-0 handshake
 *  record `rec`) that came from `from`. Returns:
 *    1  the hello is complete: `out` (capacity `cap`) holds one DTLS record
 *       with the whole, unfragmented ClientHello (record header from the
 *       last fragment's record), `*out_len` its length; the entry is gone;
 *    0  stored, more fragments needed;
 *   -1  dropped: over max_hello, inconsistent with earlier fragments (the
 *       entry is discarded), out of memory, or `cap` too small.
 *  Fragments may arrive in any order, overlap and repeat. */
int siptls__dtls_hello_cache_add(siptls__dtls_hello_cache *c, const struct sockaddr *from,
                                 socklen_t from_len, const siptls__dtls_record *rec,
                                 const siptls__dtls_hello *h, uint64_t now_ms, uint8_t *out,
                                 size_t cap, size_t *out_len);

/** Partial hellos held now (expired ones are dropped first). */
unsigned siptls__dtls_hello_cache_count(siptls__dtls_hello_cache *c, uint64_t now_ms);

/* ------------------------------------------------------------------------ */
/* per-source handshake rate limit                                          */
/* ------------------------------------------------------------------------ */

typedef struct siptls__dtls_ratelimit siptls__dtls_ratelimit;

/** Token buckets keyed by source IP address (the port is ignored: one host
 *  is one source), `rate` handshakes per second with a burst of `rate`
 *  (0 = unlimited), in a fixed table of `slots` entries (rounded up to a
 *  power of two); a new source evicts the least recently seen of its
 *  probe window; a table a quarter that size remembers refused hellos.
 *  Returns 0 or -1 (out of memory). */
int siptls__dtls_ratelimit_new(siptls__dtls_ratelimit **out, unsigned slots, unsigned rate);
void siptls__dtls_ratelimit_free(siptls__dtls_ratelimit *r);

/** Take one token for a handshake from `from` at `now_ms`; `random` is the
 *  ClientHello's client random (32 bytes), NULL when not known. Returns 1
 *  when allowed, 0 when the source is over its rate. A refused hello is
 *  remembered (a fixed table, 64 s): when it comes again (the client
 *  retransmits it: same address and port, same random) it may borrow the
 *  token from the coming second, down to -rate tokens, so a refused client
 *  is served at its next retransmission while its host stays within
 *  2 x rate; new hellos need a whole token. */
int siptls__dtls_ratelimit_allow(siptls__dtls_ratelimit *r, const struct sockaddr *from,
                                 const uint8_t *random, uint64_t now_ms);

/* ------------------------------------------------------------------------ */
/* test hooks (dtls_transport.c)                                            */
/* ------------------------------------------------------------------------ */

/** Hands a datagram to the transport as if it had just been read. */
typedef void (*siptls__dtls_test_emit)(void *emit_ctx, const uint8_t *dg, size_t len,
                                       const struct sockaddr *from, socklen_t from_len);

/** A filter every datagram read from a DTLS socket passes through before it
 *  is processed (tests only: a deterministic lossy network). It calls
 *  `emit` zero times (drop), once (pass), twice (duplicate), or keeps a
 *  copy and emits it during a later call for the same `sock_fd` (reorder).
 *  `emit`/`emit_ctx` are valid only during the call. */
typedef void (*siptls__dtls_test_filter)(void *user, int sock_fd, const uint8_t *dg, size_t len,
                                         const struct sockaddr *from, socklen_t from_len,
                                         siptls__dtls_test_emit emit, void *emit_ctx);

typedef struct siptls_engine siptls_engine;

/** Install (or remove, with NULL) the filter of engine `e`: it sees every
 *  datagram read by any DTLS socket of that engine (listeners and outbound
 *  sessions), on whichever thread runs it. A filter keeps the engine's
 *  receive buffers allocated: remove it before siptls_engine_free().
 *  Returns SIPTLS_OK or SIPTLS_ERR_NOMEM. */
int siptls__dtls_test_set_filter(siptls_engine *e, siptls__dtls_test_filter fn, void *user);

/** The next `n` sendmmsg() calls of engine `e`'s DTLS send queue fail with
 *  EAGAIN, as on a full socket buffer (tests only; dtls_batch.c). Needs a
 *  DTLS socket of `e` (else SIPTLS_ERR_INVAL). */
int siptls__dtls_test_tx_fail(siptls_engine *e, unsigned n);

#endif
