/* kf_worker_int.h: what the files of the kf_worker module share. kf_worker.c: config,
 * partitions, applying events, loading, timers, setup; kf_worker_call.c: error counters, the
 * Lua calls (ARGV arena, batching) and their replies; kf_worker_feed.c: the queue, live
 * traffic and catching up from the journal. Internal to libkefu (workers include
 * kf_worker.h only); its functions carry the prefix kfw_. */
#ifndef KF_WORKER_INT_H
#define KF_WORKER_INT_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "kf_bus.h"
#include "kf_redis.h"
#include "kf_shop.h"
#include "kf_worker.h"

/* ARGV (kf_worker.lua): a header, then per event a record (R_*: seq ... now, npairs, pairs);
 * fire and sync: the header, seq, now. */
#define S_HEADER 8
enum { R_SEQ, R_EVID, R_FP, R_PART, R_LOOKUP, R_TOPIC, R_BACKFILL, R_NOW, R_PAIRS };
#define S_BATCH_EVENTS 128   /* most events in one call */
#define S_BATCH_BYTES (256u << 10)
#define S_MAX_REASONS 16
#define S_EVENT_MAX (16u << 20)

typedef enum { S_LOADING, S_FETCH, S_LIVE } kfw_mode_t;
typedef enum { S_EV, S_FIRE, S_SYNC } kfw_kind_t;

typedef struct {
    uint64_t seq;
    uint8_t *data;
    size_t len;
} kfw_item_t;

/* One Lua call: its ARGV live in one arena until the reply. */
struct kf_call_s {
    kf_worker_t *w;
    kfw_kind_t kind;
    uint64_t seq;
    int part;
    char *lookup;
    char *arena;
    size_t used, cap;
    size_t *off, *len;
    size_t n, ncap;
    char partbuf[16], npbuf[24];/* the partition and pair count as sent */
    bool rejected;
    char reason[32];
    char detail[256]; /* why it was rejected (logged by kfw_count_reason) */
    char miss[32]; /* counted when the lookup finds no partition */
};

struct kf_worker_s {
    kf_daemon_t *d;
    const kf_conf_t *conf;
    const kf_worker_conf_t *wc;
    kf_worker_def_t def;
    struct event_base *base;
    kf_redis_t *redis;
    int script;
    char *lua;
    char hdr_ttl[24], hdr_max[24], hdr_limit[24];
    kf_call_t **batch;    /* events to be sent in one call (S_BATCH_EVENTS at most) */
    size_t nbatch, batch_bytes;
    kf_bus_t *sub, *pub;
    kf_shops_t *shops;
    char mask[KF_WORKER_PARTITIONS + 1];
    int instance, ninstances;
    uint64_t ckpt[KF_WORKER_PARTITIONS];
    char worker_name[64];

    kfw_mode_t mode;
    int loading;          /* replies awaited while loading */
    bool ready_sent, fetching, recovering, sub_paused;
    /* Catching up (kf_journal.h: an entry holds a run of seqs, keyed by the first):
     * aligned: seen + 1 is known to start an entry, or no entry holds it;
     * fetch: what the read in flight is (kfw_fetch); fetch_live: live_max when it was sent. */
    bool aligned;
    enum { S_READ_COVER, S_READ_RANGE, S_READ_NEXT } fetch;
    uint64_t fetch_live;
    uint64_t seen;        /* every seq <= seen has been queued (or was lost) */
    uint64_t live_max;    /* the highest seq seen live */
    uint64_t handled;     /* every seq <= handled has been submitted or skipped */
    uint64_t done;        /* every seq <= done has completed */
    uint64_t synced;
    kfw_item_t *q;
    size_t qhead, qlen, qcap;
    size_t inflight;
    bool barrier;         /* a fire step is in flight: nothing after it is submitted */
    int64_t sim_now;

    struct event *tick_ev, *sync_ev;
    uint64_t processed, applied, skipped, duplicates, errors, actions, blocks;
    int64_t timers_pending;
    struct {
        char name[32];
        uint64_t n;
        int64_t logged_ms;   /* the last line logged for this reason */
        uint64_t quiet;      /* counted since, not logged */
    } reasons[S_MAX_REASONS];
};

/* kf_worker.c */
bool kfw_owned(const kf_worker_t *w, int p);
uint64_t kfw_min_ckpt(const kf_worker_t *w);
void kfw_apply(kf_worker_t *w, uint64_t seq, const uint8_t *data, size_t len);
void kfw_load(kf_worker_t *w);

/* kf_worker_call.c */
void kfw_count_reason(kf_worker_t *w, uint64_t seq, const char *reason, const char *detail);
void kfw_count_reasons(kf_worker_t *w, uint64_t seq, const char *reason, const char *detail,
                       uint64_t n);
kf_call_t *kfw_call_new(kf_worker_t *w, kfw_kind_t kind, uint64_t seq, const char *evid,
                        const char *topic, int64_t now);
void kfw_call_free(kf_call_t *c);
void kfw_submit(kf_worker_t *w, kf_call_t *c);
void kfw_flush(kf_worker_t *w);
long long kfw_int(const redisReply *r);
void kfw_maybe_exit(kf_worker_t *w);
void kfw_recover(kf_worker_t *w);

/* kf_worker_feed.c */
void kfw_pump(kf_worker_t *w);
void kfw_fetch(kf_worker_t *w);
void kfw_on_live(kf_bus_t *bus, zmq_msg_t *parts, size_t nparts, size_t total, void *arg);
void kfw_on_live_pass(kf_bus_t *bus, void *arg);

#endif
