/* siptls tests — a scripted, blocking wolfSSL TLS client run on its own
 * thread, for what a library client cannot do on purpose: a whole burst
 * in one write, records of an exact size, a close_notify or a FIN in the
 * same TCP segment as a request, a peer that never reads. The engine under
 * test runs on the test's main thread (tu_raw_run drives its loop). */
#ifndef SIPTLS_TEST_RAWCLIENT_H
#define SIPTLS_TEST_RAWCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <pthread.h>

typedef enum tu_raw_end {
    TU_RAW_END_READ = 0,     /**< after writing: read until the server closes */
    TU_RAW_END_CLOSE_NOTIFY, /**< our close_notify right behind the data, then read to EOF */
    TU_RAW_END_FIN,          /**< shutdown(SHUT_WR) right behind the data, then read to EOF */
    TU_RAW_END_CLOSE,        /**< close() right behind the data (the server's writes get RST) */
} tu_raw_end;

typedef struct tu_raw {
    /* what to do */
    unsigned port;       /**< 127.0.0.1:port */
    int version;         /**< 12: TLS 1.2 only, 13: TLS 1.3 only, 0: either */
    const uint8_t *data; /**< written after the handshake (may be NULL) */
    size_t len;
    size_t write_size;  /**< bytes per wolfSSL_write (one TLS record each when
                             <= 16384); 0: the whole buffer in one call */
    size_t wire_record; /**< when set: check that a write of write_size bytes
                             makes a record of exactly this many bytes on the
                             wire (wire_ok says) */
    size_t first_write; /**< when set: the size of the first write (say, the
                             header block), then write_size pieces */
    double pause_s;     /**< between writes */
    int same_segment;   /**< TCP_CORK: the data and the end (close_notify or FIN)
                             leave in one segment */
    tu_raw_end end;
    unsigned expect_msgs; /**< with END_READ: stop reading after this many SIP
                               messages (start lines "SIP/2.0 ") and close;
                               0: read to EOF */
    size_t expect_bytes;  /**< with END_READ: stop reading after this many bytes */
    double read_pause_s;  /**< sleep this long after each read (a slow reader) */
    int rcvbuf;           /**< SO_RCVBUF before connecting (0: the default): a small one
                               closes the TCP window soon, as a peer that does not read */
    double hold_s;        /**< sleep this long after the handshake before writing
                               (and not reading) */
    /* what happened */
    int handshake_ok;
    double max_gap_s; /**< the longest wait between two reads of the reply */
    int wire_ok;
    uint8_t *got; /**< everything read back (malloc'd; tu_raw_free) */
    size_t got_len;
    size_t got_cap; /**< allocated for `got` */
    int done;
    pthread_t thread;
    int sock; /**< the client's socket + 1 while it runs, 0 otherwise (tu_raw_wait
                   shuts it down when the client overstays) */
} tu_raw;

/** Start the client on a thread of its own. */
void tu_raw_start(tu_raw *r);

/** Run `loop` until the started client has finished, then join its
 *  thread. After `timeout_s` shuts the client's socket down, joins the
 *  thread (so that it cannot write into a test that has ended) and fails
 *  the test. */
void tu_raw_wait(struct ev_loop *loop, tu_raw *r, double timeout_s);

/** tu_raw_start() then tu_raw_wait(). */
void tu_raw_run(struct ev_loop *loop, tu_raw *r, double timeout_s);

/** Free what the client read back. */
void tu_raw_free(tu_raw *r);

/** Count SIP messages in what was read back (start lines "SIP/2.0 " at the
 *  beginning of the buffer or after an empty line), and CRLF pongs (bare
 *  "\r\n" between messages). */
unsigned tu_raw_count_responses(const tu_raw *r, unsigned *pongs);

#endif
