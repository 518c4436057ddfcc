/* siptls — the engine's mailbox: functions and message copies posted from
 * any thread, run on the engine's loop (include/siptls/threads.h).
 *
 * A mutex-protected FIFO made with the engine. A posting thread takes the
 * lock, appends one item (one malloc holding the message and URI copies)
 * and, when the list was empty, wakes the loop (siptls__engine_wake, an
 * ev_async_send: engine.c holds the libev side). The wakeup is sent with
 * the lock held: the loop can only take the item after the call is done
 * with the engine, so a host that frees the engine right after a posted
 * function ran never races with the poster's last touch of it.
 *
 * The loop takes the whole list under the lock into a backlog of its own
 * and runs at most POST_BATCH items per wakeup, waking itself again when
 * more wait, so a flood of posts shares the loop with socket I/O. The
 * limits count an item until it has run.
 *
 * Every counter and the list are guarded by the lock; the backlog is the
 * loop's alone. */
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* Items run per loop wakeup before the loop gets back to I/O. */
#define POST_BATCH 256

typedef enum item_kind { ITEM_FN, ITEM_SEND, ITEM_SEND_TO, ITEM_SEND_TARGET } item_kind;

typedef struct item {
    struct item *next;
    item_kind kind;
    siptls_post_fn fn;
    siptls_send_done_fn done;
    void *arg;
    siptls_flow_id flow;
    size_t len;             /**< message bytes at data */
    size_t weight;          /**< bytes counted against post_max_pending_bytes */
    const char *uri;        /**< ITEM_SEND_TO: NUL-terminated, after the message */
    siptls_target *targets; /**< ITEM_SEND_TARGET: deep copies, after the message */
    size_t n_targets;
    alignas(max_align_t) uint8_t data[];
} item;

struct siptls__mailbox {
    pthread_mutex_t lock;
    item *head, *tail; /**< posted, not taken by the loop yet */
    int closed;        /**< siptls_engine_free() has begun */
    /* limits, fixed at creation */
    size_t max_items, max_bytes, max_len;
    /* counters (siptls_post_stats) */
    siptls_post_stats st;
    /* the loop's own: taken from the list, not run yet */
    item *backlog, *backlog_tail;
};

int siptls__mailbox_new(siptls__mailbox **out, const siptls_config *cfg)
{
    siptls__mailbox *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return SIPTLS_ERR_NOMEM;
    }
    m->max_items = cfg->post_max_pending;
    m->max_bytes = cfg->post_max_pending_bytes;
    m->max_len = cfg->max_msg_size;
    *out = m;
    return SIPTLS_OK;
}

/* Append `it` (allocated by the caller) or refuse it. */
static int mailbox_put(siptls_engine *e, item *it)
{
    siptls__mailbox *m = e->mbox;
    pthread_mutex_lock(&m->lock);
    int st = SIPTLS_OK;
    if (m->closed) {
        st = SIPTLS_ERR_SHUTDOWN;
    } else if (m->st.pending >= m->max_items || m->st.pending_bytes + it->weight > m->max_bytes) {
        m->st.refused++;
        st = SIPTLS_ERR_QUEUE_FULL;
    }
    if (st != SIPTLS_OK) {
        pthread_mutex_unlock(&m->lock);
        free(it);
        return st;
    }
    int was_empty = m->head == NULL;
    if (m->tail != NULL) {
        m->tail->next = it;
    } else {
        m->head = it;
    }
    m->tail = it;
    m->st.pending++;
    m->st.pending_bytes += it->weight;
    m->st.posted++;
    if (was_empty) {
        /* Inside the lock: see the file comment. A list that was not empty
         * has a wakeup on its way already (or the loop is taking it). */
        m->st.wakeups++;
        siptls__engine_wake(e);
    }
    pthread_mutex_unlock(&m->lock);
    return SIPTLS_OK;
}

static item *item_new(item_kind kind, size_t len, size_t uri_len)
{
    item *it = malloc(sizeof(*it) + len + uri_len);
    if (it == NULL) {
        return NULL;
    }
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->len = len;
    it->weight = len + uri_len;
    return it;
}

int siptls_engine_post(siptls_engine *e, siptls_post_fn fn, void *arg)
{
    if (e == NULL || fn == NULL) {
        return SIPTLS_ERR_INVAL;
    }
    item *it = item_new(ITEM_FN, 0, 0);
    if (it == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    it->fn = fn;
    it->arg = arg;
    return mailbox_put(e, it);
}

int siptls_send_async(siptls_engine *e, siptls_flow_id flow, const uint8_t *buf, size_t len,
                      siptls_send_done_fn done, void *arg)
{
    if (e == NULL || buf == NULL || len == 0 || len > e->mbox->max_len) {
        return SIPTLS_ERR_INVAL;
    }
    item *it = item_new(ITEM_SEND, len, 0);
    if (it == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    it->done = done;
    it->arg = arg;
    it->flow = flow;
    memcpy(it->data, buf, len);
    return mailbox_put(e, it);
}

int siptls_send_to_async(siptls_engine *e, const char *uri, const uint8_t *buf, size_t len,
                         siptls_send_done_fn done, void *arg)
{
    if (e == NULL || uri == NULL || buf == NULL || len == 0 || len > e->mbox->max_len) {
        return SIPTLS_ERR_INVAL;
    }
    size_t ulen = strlen(uri) + 1;
    item *it = item_new(ITEM_SEND_TO, len, ulen);
    if (it == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    it->done = done;
    it->arg = arg;
    memcpy(it->data, buf, len);
    memcpy(it->data + len, uri, ulen);
    it->uri = (const char *)it->data + len;
    return mailbox_put(e, it);
}

/* One borrowed string of a target copied to `*at` (NULL stays NULL). */
static const char *copy_str(const char *src, char **at)
{
    if (src == NULL) {
        return NULL;
    }
    size_t n = strlen(src) + 1;
    memcpy(*at, src, n);
    const char *out = *at;
    *at += n;
    return out;
}

static size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

int siptls_send_target_async(siptls_engine *e, const siptls_target *targets, size_t n,
                             const uint8_t *buf, size_t len, siptls_send_done_fn done, void *arg)
{
    if (e == NULL || targets == NULL || n == 0 || n > SIPTLS_TARGETS_MAX || buf == NULL ||
        len == 0 || len > e->mbox->max_len) {
        return SIPTLS_ERR_INVAL;
    }
    /* one allocation: the message, the targets, their local addresses,
     * their strings */
    size_t strings = 0;
    for (size_t i = 0; i < n; i++) {
        const siptls_target *t = &targets[i];
        if (t->host == NULL ||
            (t->local != NULL &&
             (t->local_len == 0 || t->local_len > sizeof(struct sockaddr_storage)))) {
            return SIPTLS_ERR_INVAL;
        }
        const char *str[] = {t->host, t->sip_domain, t->sni, t->client_domain};
        for (size_t k = 0; k < sizeof(str) / sizeof(str[0]); k++) {
            strings += str[k] != NULL ? strlen(str[k]) + 1 : 0;
        }
    }
    size_t t_off = round_up(len, alignof(max_align_t));
    size_t l_off = t_off + n * sizeof(siptls_target);
    size_t s_off = l_off + n * sizeof(struct sockaddr_storage);
    item *it = item_new(ITEM_SEND_TARGET, s_off + strings, 0);
    if (it == NULL) {
        return SIPTLS_ERR_NOMEM;
    }
    it->len = len; /* the message; the rest counts in weight */
    it->done = done;
    it->arg = arg;
    memcpy(it->data, buf, len);
    it->targets = (siptls_target *)(void *)(it->data + t_off);
    it->n_targets = n;
    struct sockaddr_storage *locals = (struct sockaddr_storage *)(void *)(it->data + l_off);
    char *at = (char *)it->data + s_off;
    for (size_t i = 0; i < n; i++) {
        const siptls_target *src = &targets[i];
        siptls_target *t = &it->targets[i];
        *t = *src;
        t->host = copy_str(src->host, &at);
        t->sip_domain = copy_str(src->sip_domain, &at);
        t->sni = copy_str(src->sni, &at);
        t->client_domain = copy_str(src->client_domain, &at);
        if (src->local != NULL) {
            memcpy(&locals[i], src->local, src->local_len);
            t->local = (const struct sockaddr *)&locals[i];
        }
    }
    return mailbox_put(e, it);
}

void siptls_engine_post_stats(siptls_engine *e, siptls_post_stats *st)
{
    if (e == NULL || st == NULL || e->mbox == NULL) {
        return;
    }
    pthread_mutex_lock(&e->mbox->lock);
    *st = e->mbox->st;
    pthread_mutex_unlock(&e->mbox->lock);
}

/* ---- on the loop ----------------------------------------------------------- */

/* Run one item; 1 when it was a send that failed. */
static int item_run(siptls_engine *e, item *it)
{
    int st = SIPTLS_OK;
    siptls_flow_id flow = it->flow;
    switch (it->kind) {
    case ITEM_FN:
        it->fn(e, it->arg, SIPTLS_OK);
        return 0;
    case ITEM_SEND:
        st = siptls_send(e, flow, it->data, it->len);
        break;
    case ITEM_SEND_TO:
    case ITEM_SEND_TARGET:
        flow = 0;
        st = it->kind == ITEM_SEND_TO
                 ? siptls_send_to(e, it->uri, it->data, it->len, &flow)
                 : siptls_send_target(e, it->targets, it->n_targets, it->data, it->len, &flow);
        if (st != SIPTLS_OK && siptls__table_live(e, flow) == NULL) {
            flow = 0;
        }
        break;
    }
    if (it->done != NULL) {
        it->done(e, flow, st, it->arg);
    }
    return st != SIPTLS_OK;
}

int siptls__mailbox_run(siptls_engine *e)
{
    siptls__mailbox *m = e->mbox;
    pthread_mutex_lock(&m->lock);
    if (m->head != NULL) {
        if (m->backlog_tail != NULL) {
            m->backlog_tail->next = m->head;
        } else {
            m->backlog = m->head;
        }
        m->backlog_tail = m->tail;
        m->head = m->tail = NULL;
    }
    pthread_mutex_unlock(&m->lock);

    uint64_t ran = 0, failed = 0, bytes = 0;
    while (m->backlog != NULL && ran < POST_BATCH) {
        item *it = m->backlog;
        m->backlog = it->next;
        if (m->backlog == NULL) {
            m->backlog_tail = NULL;
        }
        failed += (uint64_t)item_run(e, it);
        ran++;
        bytes += it->weight;
        free(it);
    }
    pthread_mutex_lock(&m->lock);
    m->st.pending -= ran;
    m->st.pending_bytes -= bytes;
    m->st.run += ran;
    m->st.sends_failed += failed;
    pthread_mutex_unlock(&m->lock);
    return m->backlog != NULL;
}

/* An item that will not run: its callback hears SIPTLS_ERR_SHUTDOWN. */
static void item_cancel(siptls_engine *e, item *it)
{
    if (it->kind == ITEM_FN) {
        it->fn(e, it->arg, SIPTLS_ERR_SHUTDOWN);
    } else if (it->done != NULL) {
        it->done(e, it->flow, SIPTLS_ERR_SHUTDOWN, it->arg);
    }
    free(it);
}

void siptls__mailbox_close(siptls_engine *e)
{
    siptls__mailbox *m = e->mbox;
    if (m == NULL) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    m->closed = 1;
    item *rest = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    /* the backlog first: it was posted before what is still in the list */
    item *lists[2] = {m->backlog, rest};
    m->backlog = m->backlog_tail = NULL;
    uint64_t n = 0;
    for (int k = 0; k < 2; k++) {
        for (item *it = lists[k]; it != NULL;) {
            item *next = it->next;
            item_cancel(e, it);
            n++;
            it = next;
        }
    }
    pthread_mutex_lock(&m->lock);
    m->st.cancelled += n;
    m->st.pending = 0;
    m->st.pending_bytes = 0;
    pthread_mutex_unlock(&m->lock);
}

void siptls__mailbox_free(siptls__mailbox *m)
{
    if (m == NULL) {
        return;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}
