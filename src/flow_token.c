/* siptls — flow tokens (include/siptls/token.h): an unforgeable name of
 * one open flow of one engine of this process, for the wire (RFC 5626 §5).
 *
 * Layout: base64url (RFC 4648 §5, no padding) of 28 bytes, ct(12) || tag(16):
 *
 *   pt  = engine id (4, big endian) || flow id (8, big endian)
 *   tag = HMAC-SHA256(key, "T" || boot id || pt)[0..16]
 *   ct  = pt XOR HMAC-SHA256(key, "P" || boot id || tag)[0..12]
 *
 * This is the SIV construction (a deterministic authenticated encryption)
 * with HMAC as its PRF: the tag authenticates the ids and the process, and
 * the ids are hidden behind a pad only the key holder can compute. Reading a
 * token back computes the pad from the tag, recovers the ids and checks the
 * tag in constant time; any change of any byte fails the check. A token
 * carries no version: none outlives the process (the boot id is in every
 * tag), so the format can change with any release.
 *
 * The boot id and the default key are drawn once per process (again in a
 * child after fork(), where the pid changed), under a mutex: engines of
 * several threads share them. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine_internal.h"
#include "siptls/token.h"
#include "token_mac.h"

#define PT_LEN 12
#define TAG_LEN 16
#define RAW_LEN (PT_LEN + TAG_LEN)
#define BOOT_LEN 16
#define DEFAULT_KEY_LEN 32

/* ------------------------------------------------------------------------ */
/* process-wide: boot id, default key, engine ids                           */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t proc_mutex = PTHREAD_MUTEX_INITIALIZER;
static pid_t proc_pid;
static int proc_ok;
static uint8_t proc_boot[BOOT_LEN];
static uint8_t proc_key[DEFAULT_KEY_LEN];
static atomic_uint_least32_t proc_next_engine;

static int random_fill(uint8_t *p, size_t n)
{
    size_t got = 0;
    for (int tries = 0; got < n && tries < 16; tries++) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            break;
        }
    }
    if (got == n) {
        return 0;
    }
    /* A kernel without getrandom(): the same pool through the device. */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0 && !(r < 0 && errno == EINTR)) {
            break;
        }
        got += r > 0 ? (size_t)r : 0;
    }
    close(fd);
    return got == n ? 0 : -1;
}

int siptls__token_process(uint8_t boot[BOOT_LEN], uint8_t key[DEFAULT_KEY_LEN])
{
    pthread_mutex_lock(&proc_mutex);
    pid_t pid = getpid();
    if (!proc_ok || proc_pid != pid) {
        /* First use, or a child of fork() that inherited its parent's:
         * a process of its own gets a boot id of its own. */
        proc_ok = random_fill(proc_boot, sizeof(proc_boot)) == 0 &&
                  random_fill(proc_key, sizeof(proc_key)) == 0;
        proc_pid = pid;
    }
    int ok = proc_ok;
    if (ok) {
        memcpy(boot, proc_boot, BOOT_LEN);
        memcpy(key, proc_key, DEFAULT_KEY_LEN);
    }
    pthread_mutex_unlock(&proc_mutex);
    return ok ? 0 : -1;
}

void siptls__token_engine_init(siptls_engine *e)
{
    e->id = (uint32_t)atomic_fetch_add(&proc_next_engine, 1) + 1;
    if (e->id == 0) {
        /* 2^32 engines later: 0 means "no engine" */
        e->id = (uint32_t)atomic_fetch_add(&proc_next_engine, 1) + 1;
    }
    e->tok_ok = siptls__token_process(e->tok_boot, e->tok_key) == 0;
    e->tok_key_len = e->tok_ok ? DEFAULT_KEY_LEN : 0;
}

/* ------------------------------------------------------------------------ */
/* base64url                                                                */
/* ------------------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        out[o++] = b64[in[i] >> 2];
        out[o++] = b64[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = b64[v >> 10];
        out[o++] = b64[(v >> 4) & 63];
        out[o++] = b64[(v & 15) << 2];
    }
    out[o] = '\0';
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

/* Exactly SIPTLS_FLOW_TOKEN_LEN characters into RAW_LEN bytes; the unused
 * low bits of the last character must be zero (one text per token).
 * Returns 0 or -1. */
static int token_decode(const char *text, uint8_t raw[RAW_LEN])
{
    size_t len = strnlen(text, SIPTLS_FLOW_TOKEN_LEN + 1);
    if (len != SIPTLS_FLOW_TOKEN_LEN) {
        return -1;
    }
    int v[SIPTLS_FLOW_TOKEN_LEN];
    for (size_t i = 0; i < len; i++) {
        v[i] = b64_value((unsigned char)text[i]);
        if (v[i] < 0) {
            return -1;
        }
    }
    size_t o = 0;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t x = (uint32_t)v[i] << 18 | (uint32_t)v[i + 1] << 12 | (uint32_t)v[i + 2] << 6 |
                     (uint32_t)v[i + 3];
        raw[o++] = (uint8_t)(x >> 16);
        raw[o++] = (uint8_t)(x >> 8);
        raw[o++] = (uint8_t)x;
    }
    /* 28 bytes: 9 groups of 4 characters, then 2 for the last byte */
    if ((v[i + 1] & 15) != 0) {
        return -1;
    }
    raw[o] = (uint8_t)(v[i] << 2 | v[i + 1] >> 4);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the construction                                                         */
/* ------------------------------------------------------------------------ */

static void put_ids(uint8_t pt[PT_LEN], uint32_t engine_id, uint64_t flow_id)
{
    for (int k = 0; k < 4; k++) {
        pt[k] = (uint8_t)(engine_id >> (24 - 8 * k));
    }
    for (int k = 0; k < 8; k++) {
        pt[4 + k] = (uint8_t)(flow_id >> (56 - 8 * k));
    }
}

static int make_tag(const uint8_t *key, size_t key_len, const uint8_t boot[BOOT_LEN],
                    const uint8_t pt[PT_LEN], uint8_t tag[TAG_LEN])
{
    uint8_t mac[SIPTLS__HMAC_LEN];
    const siptls__mac_part parts[] = {{(const uint8_t *)"T", 1}, {boot, BOOT_LEN}, {pt, PT_LEN}};
    int rc = siptls__hmac_sha256(key, key_len, parts, 3, mac);
    memcpy(tag, mac, TAG_LEN);
    return rc;
}

static int make_pad(const uint8_t *key, size_t key_len, const uint8_t boot[BOOT_LEN],
                    const uint8_t tag[TAG_LEN], uint8_t pad[PT_LEN])
{
    uint8_t mac[SIPTLS__HMAC_LEN];
    const siptls__mac_part parts[] = {{(const uint8_t *)"P", 1}, {boot, BOOT_LEN}, {tag, TAG_LEN}};
    int rc = siptls__hmac_sha256(key, key_len, parts, 3, mac);
    memcpy(pad, mac, PT_LEN);
    return rc;
}

int siptls__token_make(const uint8_t *key, size_t key_len, const uint8_t boot[BOOT_LEN],
                       uint32_t engine_id, uint64_t flow_id, char out[SIPTLS_FLOW_TOKEN_SIZE])
{
    uint8_t raw[RAW_LEN], pad[PT_LEN];
    put_ids(raw, engine_id, flow_id);
    if (make_tag(key, key_len, boot, raw, raw + PT_LEN) != 0 ||
        make_pad(key, key_len, boot, raw + PT_LEN, pad) != 0) {
        return -1;
    }
    for (int k = 0; k < PT_LEN; k++) {
        raw[k] ^= pad[k];
    }
    b64_encode(raw, RAW_LEN, out);
    return 0;
}

/* The ids a token stands for when it is authentic under `e`'s key and
 * this process's boot id. Returns 0 or -1. */
static int token_open(const siptls_engine *e, const char *text, uint32_t *engine_id,
                      uint64_t *flow_id)
{
    uint8_t raw[RAW_LEN], pad[PT_LEN], tag[TAG_LEN];
    if (!e->tok_ok || token_decode(text, raw) != 0 ||
        make_pad(e->tok_key, e->tok_key_len, e->tok_boot, raw + PT_LEN, pad) != 0) {
        return -1;
    }
    for (int k = 0; k < PT_LEN; k++) {
        raw[k] ^= pad[k];
    }
    if (make_tag(e->tok_key, e->tok_key_len, e->tok_boot, raw, tag) != 0) {
        return -1;
    }
    /* constant time: how many bytes match must not show */
    unsigned diff = 0;
    for (int k = 0; k < TAG_LEN; k++) {
        diff |= (unsigned)(tag[k] ^ raw[PT_LEN + k]);
    }
    if (diff != 0) {
        return -1;
    }
    uint32_t eid = 0;
    uint64_t fid = 0;
    for (int k = 0; k < 4; k++) {
        eid = eid << 8 | raw[k];
    }
    for (int k = 0; k < 8; k++) {
        fid = fid << 8 | raw[4 + k];
    }
    *engine_id = eid;
    *flow_id = fid;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* public                                                                   */
/* ------------------------------------------------------------------------ */

uint32_t siptls_engine_id(const siptls_engine *e)
{
    return e != NULL ? e->id : 0;
}

int siptls_flow_token(siptls_engine *e, siptls_flow_id flow, char *buf, size_t len)
{
    if (e == NULL || buf == NULL || len < SIPTLS_FLOW_TOKEN_SIZE) {
        return SIPTLS_ERR_INVAL;
    }
    if (siptls__table_live(e, flow) == NULL) {
        return SIPTLS_ERR_GONE;
    }
    if (!e->tok_ok) {
        return SIPTLS_ERR_NOT_SUPPORTED;
    }
    if (siptls__token_make(e->tok_key, e->tok_key_len, e->tok_boot, e->id, flow, buf) != 0) {
        return SIPTLS_ERR_NOT_SUPPORTED;
    }
    return SIPTLS_OK;
}

int siptls_flow_from_token(siptls_engine *e, const char *token, siptls_flow_id *flow)
{
    if (e == NULL || token == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    uint32_t eid;
    uint64_t fid;
    if (token_open(e, token, &eid, &fid) != 0 || eid != e->id ||
        siptls__table_live(e, fid) == NULL) {
        return SIPTLS_ERR_GONE;
    }
    if (flow != NULL) {
        *flow = fid;
    }
    return SIPTLS_OK;
}

int siptls_flow_token_engine(siptls_engine *e, const char *token, uint32_t *engine_id)
{
    if (e == NULL || token == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    uint32_t eid;
    uint64_t fid;
    if (token_open(e, token, &eid, &fid) != 0) {
        return SIPTLS_ERR_GONE;
    }
    if (engine_id != NULL) {
        *engine_id = eid;
    }
    return SIPTLS_OK;
}

int siptls_engine_set_token_key(siptls_engine *e, const uint8_t *key, size_t len)
{
    if (e == NULL || key == NULL || len < 16 || len > sizeof(e->tok_key)) {
        return SIPTLS_ERR_INVAL;
    }
    memcpy(e->tok_key, key, len);
    e->tok_key_len = len;
    return SIPTLS_OK;
}
