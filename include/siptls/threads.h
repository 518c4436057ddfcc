/* siptls — calls that are safe from any thread: run a function on an
 * engine's loop, send a copy of a message into it.
 *
 * An engine is used by the thread that runs its loop (engine.h); these are
 * the exceptions. Each one copies what it needs, appends it to the
 * engine's mailbox (a mutex-protected queue made with the engine) and
 * wakes the engine's loop (one ev_async per engine, its callback in the
 * library); the loop then runs the posts in the order they were accepted.
 * Nothing of the engine is touched from the calling thread but the
 * mailbox.
 *
 * Rules:
 *  1. The engine must exist for the whole call: no thread may post to an
 *     engine while (or after) another frees it. Stop the threads that post
 *     to an engine (or make them stop posting) before siptls_engine_free().
 *  2. A call that returns SIPTLS_OK has its callback called exactly once
 *     (when it has one): on the engine's loop thread with the outcome, or,
 *     when the engine is freed first, from inside siptls_engine_free() on
 *     the thread that frees it, with SIPTLS_ERR_SHUTDOWN. A call that
 *     fails calls nothing. Once siptls_engine_free() has begun, every call
 *     here on that engine returns SIPTLS_ERR_SHUTDOWN: also those the
 *     host makes from the callbacks the free still calls (on_flow(CLOSED)
 *     of each open flow) on that engine's own thread.
 *  3. Callbacks with SIPTLS_OK (or any status other than
 *     SIPTLS_ERR_SHUTDOWN) run as engine callbacks on the loop: they may
 *     call any engine call a callback may (siptls_send, siptls_close, ...),
 *     but not siptls_engine_free(). With SIPTLS_ERR_SHUTDOWN the engine is
 *     being freed: release what `arg` holds and call nothing on `e`.
 *  4. The mailbox does not keep the loop running on its own (its watcher is
 *     ev_unref'd): an ev_run() with nothing else to wait for returns, and
 *     posts wait for the next ev_run() (or siptls_engine_free()).
 *  5. Cost: one malloc (with the message, URI or targets copied into it), one
 *     mutex lock, and an ev_async_send() when the mailbox was empty (a
 *     write to the loop's eventfd; the posts that follow before the loop
 *     takes them share that wakeup); on the loop, the send itself copies
 *     the message again into the flow's queue, as siptls_send() does.
 *     docs/benchmarks.md has the measured numbers.
 *  6. The mailbox is bounded by post_max_pending posts and
 *     post_max_pending_bytes bytes (docs/admin-guide.md): past it a
 *     call returns SIPTLS_ERR_QUEUE_FULL. */
#ifndef SIPTLS_THREADS_H
#define SIPTLS_THREADS_H

#include <stddef.h>
#include <stdint.h>

#include "siptls/engine.h"
#include "siptls/target.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A posted function: `status` is SIPTLS_OK on the engine's loop, or
 *  SIPTLS_ERR_SHUTDOWN from siptls_engine_free() (rule 3). */
typedef void (*siptls_post_fn)(siptls_engine *e, void *arg, int status);

/** Outcome of an async send: `status` is what siptls_send() /
 *  siptls_send_to() / siptls_send_target() returned on the loop (SIPTLS_OK: queued on the flow),
 *  or SIPTLS_ERR_SHUTDOWN (rule 3). `flow` is the flow sent to (for
 *  siptls_send_to_async() and siptls_send_target_async(), the flow found or
 *  opened; 0 when none was). */
typedef void (*siptls_send_done_fn)(siptls_engine *e, siptls_flow_id flow, int status, void *arg);

/** Run `fn(e, arg, SIPTLS_OK)` on the engine's loop thread, after the posts
 *  accepted before it. Any thread, the loop's own included (then it runs
 *  from the loop later, never inside this call). `arg` is the host's: the
 *  library passes it on and never frees it. Returns SIPTLS_OK,
 *  SIPTLS_ERR_INVAL (`e` or `fn` NULL), SIPTLS_ERR_QUEUE_FULL (mailbox at
 *  post_max_pending), SIPTLS_ERR_SHUTDOWN (siptls_engine_free() has begun
 *  on another thread: a host bug by rule 1, reported when it is caught),
 *  SIPTLS_ERR_NOMEM. */
int siptls_engine_post(siptls_engine *e, siptls_post_fn fn, void *arg);

/** siptls_send(e, flow, buf, len) from any thread: `buf` is copied before
 *  the call returns; the send runs on the loop in order with the other
 *  posts (two sends from one thread to one flow leave in that order).
 *  `done` (may be NULL) gets the outcome there: SIPTLS_OK, SIPTLS_ERR_GONE
 *  (the flow closed before the send ran: the message is dropped),
 *  SIPTLS_ERR_QUEUE_FULL (the flow's queue was full: dropped; on_writable
 *  follows when it drains, flow.h), SIPTLS_ERR_INVAL (len over
 *  max_msg_size), SIPTLS_ERR_NOMEM, or SIPTLS_ERR_SHUTDOWN. Without `done`
 *  a failed send is only counted (siptls_post_stats.sends_failed; a full
 *  queue also in siptls_stats.drop_queue_full). Returns SIPTLS_OK,
 *  SIPTLS_ERR_INVAL (`e` or `buf` NULL, `len` 0 or over max_msg_size),
 *  SIPTLS_ERR_QUEUE_FULL (the mailbox is full), SIPTLS_ERR_SHUTDOWN,
 *  SIPTLS_ERR_NOMEM. */
int siptls_send_async(siptls_engine *e, siptls_flow_id flow, const uint8_t *buf, size_t len,
                      siptls_send_done_fn done, void *arg);

/** siptls_send_to(e, uri, buf, len, &flow) from any thread: `uri` and
 *  `buf` are copied; `done` (may be NULL) gets the flow and the status of
 *  siptls_send_to() on the loop (or SIPTLS_ERR_SHUTDOWN). A name in `uri`
 *  is resolved on the loop, as siptls_send_to() does. Returns as
 *  siptls_send_async() (SIPTLS_ERR_INVAL also for a NULL `uri`). */
int siptls_send_to_async(siptls_engine *e, const char *uri, const uint8_t *buf, size_t len,
                         siptls_send_done_fn done, void *arg);

/** siptls_send_target(e, targets, n, buf, len, &flow) from any thread:
 *  the message and the targets are copied (each target's strings and
 *  local address too: nothing the caller passed is used after the call
 *  returns); `done` (may be NULL) gets the flow and the status of
 *  siptls_send_target() on the loop (or SIPTLS_ERR_SHUTDOWN). What
 *  siptls_send_target() checks (transports, agreeing targets, a declared
 *  client_domain, addresses) is checked there, on the loop: its refusal
 *  comes to `done` with flow 0. Returns SIPTLS_OK, SIPTLS_ERR_INVAL (`e`,
 *  `targets` or `buf` NULL, `n` 0 or over SIPTLS_TARGETS_MAX, a target
 *  with a NULL host or a local_len of 0 or over sizeof(struct
 *  sockaddr_storage) with `local` set, `len` 0 or over max_msg_size),
 *  SIPTLS_ERR_QUEUE_FULL (the mailbox is full), SIPTLS_ERR_SHUTDOWN,
 *  SIPTLS_ERR_NOMEM. */
int siptls_send_target_async(siptls_engine *e, const siptls_target *targets, size_t n,
                             const uint8_t *buf, size_t len, siptls_send_done_fn done, void *arg);

/** The mailbox's counters (monotonic unless marked "now"). */
typedef struct siptls_post_stats {
    uint64_t pending;                 /**< now: accepted, not run yet */
    uint64_t pending_bytes;           /**< now: their message, URI and target bytes */
    uint64_t posted;                  /**< accepted (posts and async sends) */
    uint64_t refused;                 /**< refused: mailbox full (SIPTLS_ERR_QUEUE_FULL) */
    uint64_t run;                     /**< run on the loop */
    uint64_t sends_failed;            /**< async sends whose send failed on the loop */
    uint64_t cancelled;               /**< called back with SIPTLS_ERR_SHUTDOWN */
    uint64_t wakeups;                 /**< ev_async_send() calls made by posting threads */
} siptls_post_stats;

/** Copy the mailbox's counters into `st`. Any thread (takes the
 *  mailbox's lock). NULL arguments: no-op. */
void siptls_engine_post_stats(siptls_engine *e, siptls_post_stats *st);

#ifdef __cplusplus
}
#endif
#endif
