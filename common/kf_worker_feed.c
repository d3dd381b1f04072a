/* kf_worker_feed: the queue of events to apply, live traffic from the bus and catching up
 * from the journal (kf_worker_int.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_bus.h"
#include "kf_clock.h"
#include "kf_journal.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_redis.h"
#include "kf_shop.h"
#include "kf_util.h"
#include "kf_worker_int.h"

/* ---------------------------------------------------------------- the queue */

static void s_enqueue(kf_worker_t *w, uint64_t seq, const void *data, size_t len)
{
    if (w->qlen == w->qcap) {
        size_t ncap = w->qcap ? w->qcap * 2 : 1024;
        kfw_item_t *q = kf_xmalloc(ncap * sizeof(*q));
        for (size_t i = 0; i < w->qlen; i++)
            q[i] = w->q[(w->qhead + i) % w->qcap];
        free(w->q);
        w->q = q;
        w->qcap = ncap;
        w->qhead = 0;
    }
    kfw_item_t *it = &w->q[(w->qhead + w->qlen) % w->qcap];
    it->seq = seq;
    it->len = len;
    it->data = kf_xmalloc(len ? len : 1);
    memcpy(it->data, data, len);
    w->qlen++;
    w->seen = seq;
}

static size_t s_queue_hwm(const kf_worker_t *w)
{
    return (size_t)w->wc->max_inflight * 2 + (size_t)w->wc->catchup_batch;
}

void kfw_pump(kf_worker_t *w)
{
    while (w->qlen > 0 && !w->barrier && !w->recovering && !kf_daemon_stopping(w->d) &&
           w->inflight < (size_t)w->wc->max_inflight) {
        kfw_item_t it = w->q[w->qhead];
        w->qhead = (w->qhead + 1) % w->qcap;
        w->qlen--;
        kfw_apply(w, it.seq, it.data, it.len);
        free(it.data);
    }
    kfw_flush(w); /* one call for what this pass applied */
    bool full = w->qlen >= s_queue_hwm(w);
    if (full != w->sub_paused) {
        w->sub_paused = full;
        kf_bus_pause(w->sub, full);
    }
    if (w->mode == S_FETCH)
        kfw_fetch(w);
}

/* ---------------------------------------------------------------- live and catch-up */

void kfw_on_live(kf_bus_t *bus, zmq_msg_t *parts, size_t nparts, size_t total, void *arg)
{
    kf_worker_t *w = arg;
    if (nparts != 2 || total != 2)
        return;
    const uint8_t *data = zmq_msg_data(&parts[1]);
    size_t len = zmq_msg_size(&parts[1]);
    uint64_t seq = kf_proto_peek_seq(data, len);
    if (seq == 0)
        return; /* not journaled (actions, heartbeats) */
    if (seq > w->live_max)
        w->live_max = seq;
    if (w->mode != S_LIVE || seq <= w->seen)
        return; /* catching up: the journal has it */
    if (seq == w->seen + 1) {
        s_enqueue(w, seq, data, len);
        return;
    }
    kf_log_info("seq gap: have %llu, got %llu: reading the journal",
                (unsigned long long)w->seen, (unsigned long long)seq);
    w->mode = S_FETCH;
    w->aligned = false;
    w->fetch = S_READ_COVER;
}

void kfw_on_live_pass(kf_bus_t *bus, void *arg)
{
    kfw_pump(arg);
}

/* Events first..last that the journal no longer holds, or holds unreadable: logged and
 * counted under the reason journal_gone (one per event). */
static void s_lost(kf_worker_t *w, uint64_t first, uint64_t last, const char *what)
{
    kf_log_err("journal events %llu..%llu %s: not applied", (unsigned long long)first,
               (unsigned long long)last, what);
    kfw_count_reasons(w, first, "journal_gone", what, last - first + 1);
}

/* Queues the events of one journal entry after w->seen; what is missing in front of them
 * or unreadable in the entry is logged and counted as lost. */
static void s_take_entry(kf_worker_t *w, const redisReply *e)
{
    kf_journal_iter_t it;
    if (kf_journal_open(e, &it) != KF_OK) {
        /* Not an entry (its fields or count damaged): its seqs are lost from the one its
         * id names; reading goes on after it (else the same read would return it forever),
         * and the next entry says where the events go on. */
        const char *id = e && e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
                                 e->element[0]->type == REDIS_REPLY_STRING
                             ? e->element[0]->str : NULL;
        unsigned long long at = id ? strtoull(id, NULL, 10) : 0;
        kf_log_err("kefu:journal: an entry that is not one (%s): skipped", id ? id : "no id");
        if (at > w->seen) {
            s_lost(w, w->seen + 1, at, "are in or before an unreadable journal entry");
            w->seen = at;
        }
        return;
    }
    if (it.last <= w->seen)
        return;
    kf_journal_entry_t je;
    int rc;
    while ((rc = kf_journal_next(&it, &je)) == 1) {
        if (je.seq <= w->seen)
            continue;
        if (je.seq > w->seen + 1)
            s_lost(w, w->seen + 1, je.seq - 1, "are gone from the journal (trimmed)");
        if (je.bytes)
            s_enqueue(w, je.seq, (const char *)je.bytes, je.len);
        else
            w->seen = je.seq;
    }
    if (rc < 0 && it.last > w->seen) {
        s_lost(w, w->seen + 1, it.last, "are unreadable in their journal entry");
        w->seen = it.last;
    }
}

/* Nothing left to read after w->seen: live, unless live traffic has gone past it since. */
static void s_caught_up(kf_worker_t *w)
{
    if (w->seen < w->fetch_live) { /* journaled before the read was sent, and not there */
        s_lost(w, w->seen + 1, w->fetch_live, "are gone from the journal");
        w->seen = w->fetch_live;
    }
    if (w->seen < w->live_max)
        return; /* newer events came live meanwhile: read again */
    if (!w->ready_sent) {
        w->ready_sent = true;
        kf_daemon_ready(w->d, "live");
    }
    kf_log_info("live from seq %llu", (unsigned long long)w->seen + 1);
    w->mode = S_LIVE;
}

static void s_on_xrange(kf_redis_t *r, redisReply *reply, void *arg)
{
    kf_worker_t *w = arg;
    w->fetching = false;
    if (kf_daemon_stopping(w->d))
        return;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            kf_log_err("journal read failed: %s", reply->str);
        w->recovering = true;
        kfw_recover(w);
        return;
    }
    if (w->mode != S_FETCH)
        return;
    for (size_t i = 0; i < reply->elements; i++)
        s_take_entry(w, reply->element[i]);
    switch (w->fetch) {
    case S_READ_COVER: /* the entry at or before seen + 1 is read: on from there */
        w->aligned = true;
        break;
    case S_READ_RANGE: /* no entry starts in the range: the next one, if any, is further */
        if (reply->elements == 0)
            w->aligned = false;
        break;
    case S_READ_NEXT:
        w->aligned = true;
        if (reply->elements == 0)
            s_caught_up(w);
        break;
    }
    /* Ask for the next batch before this one's steps: on one connection the XRANGE would
     * otherwise queue behind them, and the worker would idle while Redis works and then
     * Redis while the worker plans. */
    kfw_fetch(w);
    kfw_pump(w);
}

/* One read of the journal after w->seen. Not aligned: first the entry at or before seen + 1
 * (it may hold it), or after an empty range the next entry wherever it is; aligned: the
 * entries starting within catchup_batch seqs (so a read holds at most catchup_batch +
 * KF_JOURNAL_ENTRY_MAX - 1 events, whatever the entries' sizes). */
void kfw_fetch(kf_worker_t *w)
{
    if (w->fetching || w->mode != S_FETCH || w->recovering || !kf_redis_ready(w->redis) ||
        w->qlen >= s_queue_hwm(w) / 2)
        return;
    uint64_t from = w->seen + 1;
    char start[32], end[32];
    snprintf(start, sizeof(start), "%llu-0", (unsigned long long)from);
    snprintf(end, sizeof(end), "%llu-0",
             (unsigned long long)(from + (uint64_t)w->wc->catchup_batch - 1));
    const char *cover[] = {"XREVRANGE", KF_JOURNAL_KEY, start, "-", "COUNT", "1"};
    const char *range[] = {"XRANGE", KF_JOURNAL_KEY, start, end};
    const char *next[] = {"XRANGE", KF_JOURNAL_KEY, start, "+", "COUNT", "1"};
    int rc;
    if (w->aligned) {
        w->fetch = S_READ_RANGE;
        rc = kf_redis_cmdv(w->redis, s_on_xrange, w, 4, range, NULL);
    } else if (w->fetch == S_READ_RANGE) {
        w->fetch = S_READ_NEXT;
        rc = kf_redis_cmdv(w->redis, s_on_xrange, w, 6, next, NULL);
    } else {
        w->fetch = S_READ_COVER;
        rc = kf_redis_cmdv(w->redis, s_on_xrange, w, 6, cover, NULL);
    }
    w->fetch_live = w->live_max;
    if (rc == KF_OK)
        w->fetching = true;
}

