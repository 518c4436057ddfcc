/* crypto_cost — what the public-key and record operations of a handshake
 * and of a SIP message cost in the installed wolfSSL (Debian ships no
 * wolfCrypt benchmark binary). Run by hand, not by CI:
 *
 *   cc -O2 -o /tmp/crypto_cost tests/perf/crypto_cost.c $(pkg-config --cflags --libs wolfssl)
 *   /tmp/crypto_cost [seconds-per-item]      # default 1
 *
 * Prints operations per second and microseconds per operation, one line
 * per item, single thread, timed in thread CPU time. A full TLS handshake costs the server about
 * one ECDSA P-256 sign + one key-share keygen + one shared secret (X25519 by siptls default); a
 * TLS 1.3 resumption (psk_dhe_ke) still does the key-share keygen + shared secret; a TLS 1.2
 * session-id resumption does no public-key operation at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>

#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

static double now_s(void)
{
    struct timespec ts;
    /* CPU time of this thread: the machine may be shared, and time spent
     * in other processes must not count. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *name, unsigned long n, double dt)
{
    printf("%-40s %10.0f /s  %9.2f us\n", name, (double)n / dt, dt * 1e6 / (double)n);
    fflush(stdout);
}

/* Run `body` (a statement) repeatedly for `secs` seconds and report. */
#define TIME_IT(name, secs, body)            \
    do {                                     \
        unsigned long n_ = 0;                \
        double t0_ = now_s(), t1_;           \
        do {                                 \
            for (int k_ = 0; k_ < 8; k_++) { \
                body;                        \
            }                                \
            n_ += 8;                         \
            t1_ = now_s();                   \
        } while (t1_ - t0_ < (secs));        \
        report((name), n_, t1_ - t0_);       \
    } while (0)

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (secs <= 0) {
        secs = 1.0;
    }
    WC_RNG rng;
    if (wc_InitRng(&rng) != 0) {
        fprintf(stderr, "wc_InitRng failed\n");
        return 1;
    }
    printf("wolfSSL %s, %.1f s per item\n", LIBWOLFSSL_VERSION_STRING, secs);

    /* ECDSA P-256: the server's certificate key */
    ecc_key key, peer;
    wc_ecc_init(&key);
    wc_ecc_init(&peer);
    if (wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0 ||
        wc_ecc_make_key_ex(&rng, 32, &peer, ECC_SECP256R1) != 0) {
        fprintf(stderr, "ecc keygen failed\n");
        return 1;
    }
    wc_ecc_set_rng(&key, &rng);
    byte hash[32], sig[80], shared[66];
    memset(hash, 0x5a, sizeof(hash));
    word32 siglen = sizeof(sig);
    int rc = 0;
    TIME_IT("ECDSA P-256 sign", secs, {
        siglen = sizeof(sig);
        rc |= wc_ecc_sign_hash(hash, sizeof(hash), sig, &siglen, &rng, &key);
    });
    int verified = 0;
    TIME_IT("ECDSA P-256 verify, same key", secs,
            { rc |= wc_ecc_verify_hash(sig, siglen, hash, sizeof(hash), &verified, &key); });
    TIME_IT("ECDH P-256 keygen", secs, {
        ecc_key t;
        wc_ecc_init(&t);
        rc |= wc_ecc_make_key_ex(&rng, 32, &t, ECC_SECP256R1);
        wc_ecc_free(&t);
    });
    TIME_IT("ECDH P-256 shared secret, same peer", secs, {
        word32 sl = sizeof(shared);
        rc |= wc_ecc_shared_secret(&key, &peer, shared, &sl);
    });
    /* What a server sees: a new peer point every time (wolfSSL's FP_ECC
     * point cache holds only a few points, so cycling through many defeats
     * it as real clients do). */
    enum { N_PEERS = 512 };
    ecc_key *peers = calloc(N_PEERS, sizeof(*peers));
    if (peers == NULL) {
        return 1;
    }
    for (int i = 0; i < N_PEERS; i++) {
        wc_ecc_init(&peers[i]);
        rc |= wc_ecc_make_key_ex(&rng, 32, &peers[i], ECC_SECP256R1);
    }
    int next_peer = 0;
    TIME_IT("ECDH P-256 shared secret, new peer", secs, {
        word32 sl = sizeof(shared);
        rc |= wc_ecc_shared_secret(&key, &peers[next_peer], shared, &sl);
        next_peer = (next_peer + 1) % N_PEERS;
    });
    /* A verifier meeting many signers (a server checking client
     * certificates): one signature per key, made beforehand. */
    static byte sigs[N_PEERS][80];
    static word32 siglens[N_PEERS];
    for (int i = 0; i < N_PEERS; i++) {
        siglens[i] = sizeof(sigs[i]);
        rc |= wc_ecc_sign_hash(hash, sizeof(hash), sigs[i], &siglens[i], &rng, &peers[i]);
    }
    next_peer = 0;
    TIME_IT("ECDSA P-256 verify, new key", secs, {
        rc |= wc_ecc_verify_hash(sigs[next_peer], siglens[next_peer], hash, sizeof(hash), &verified,
                                 &peers[next_peer]);
        next_peer = (next_peer + 1) % N_PEERS;
    });
    for (int i = 0; i < N_PEERS; i++) {
        wc_ecc_free(&peers[i]);
    }
    free(peers);

    /* X25519: siptls's first key-exchange group */
    curve25519_key xa, xb;
    wc_curve25519_init(&xa);
    wc_curve25519_init(&xb);
    rc |= wc_curve25519_make_key(&rng, 32, &xa);
    rc |= wc_curve25519_make_key(&rng, 32, &xb);
    TIME_IT("X25519 keygen", secs, {
        curve25519_key t;
        wc_curve25519_init(&t);
        rc |= wc_curve25519_make_key(&rng, 32, &t);
        wc_curve25519_free(&t);
    });
    TIME_IT("X25519 shared secret", secs, {
        word32 sl = 32;
        rc |= wc_curve25519_shared_secret(&xa, &xb, shared, &sl);
    });

    /* Record protection of one ~400-byte SIP message (OPTIONS / 200 OK) */
    byte msg[400], out[400], tag[16], k32[32], iv[12];
    memset(msg, 'x', sizeof(msg));
    memset(k32, 7, sizeof(k32));
    memset(iv, 9, sizeof(iv));
    byte aad[13] = {0};
    TIME_IT("ChaCha20-Poly1305 seal 400 B", secs, {
        rc |= wc_ChaCha20Poly1305_Encrypt(k32, iv, aad, sizeof(aad), msg, sizeof(msg), out, tag);
    });
    Aes aes;
    wc_AesInit(&aes, NULL, INVALID_DEVID);
    rc |= wc_AesGcmSetKey(&aes, k32, 16);
    TIME_IT("AES-128-GCM seal 400 B", secs, {
        rc |= wc_AesGcmEncrypt(&aes, out, msg, sizeof(msg), iv, sizeof(iv), tag, sizeof(tag), aad,
                               sizeof(aad));
    });
    wc_AesFree(&aes);
    TIME_IT("SHA-256 of 400 B", secs, {
        wc_Sha256 sh;
        wc_InitSha256(&sh);
        wc_Sha256Update(&sh, msg, sizeof(msg));
        wc_Sha256Final(&sh, hash);
    });
    wc_ecc_free(&key);
    wc_ecc_free(&peer);
    wc_curve25519_free(&xa);
    wc_curve25519_free(&xb);
    wc_FreeRng(&rng);
    if (rc != 0) {
        fprintf(stderr, "an operation failed (%d)\n", rc);
        return 1;
    }
    return 0;
}
