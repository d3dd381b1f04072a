/* kf_worker: catch-up, live apply, timers and checkpoints for every worker (see kf_worker.h). */
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
#include "kf_worker.h"

extern const char kf_lua_kf_worker[];
extern const char kf_lua_kf_sched[];
extern const char kf_lua_kf_policy[];

/* ARGV (kf_worker.lua): a header, then per event a record (R_*: seq ... now, npairs, pairs);
 * fire and sync: the header, seq, now. */
#define S_HEADER 8
enum { R_SEQ, R_EVID, R_FP, R_PART, R_LOOKUP, R_TOPIC, R_BACKFILL, R_NOW, R_PAIRS };
#define S_BATCH_EVENTS 128   /* most events in one call */
#define S_BATCH_BYTES (256u << 10)
#define S_MAX_REASONS 16
#define S_EVENT_MAX (16u << 20)

typedef enum { S_LOADING, S_FETCH, S_LIVE } s_mode_t;
typedef enum { S_EV, S_FIRE, S_SYNC } s_kind_t;

typedef struct {
    uint64_t seq;
    uint8_t *data;
    size_t len;
} s_item_t;

/* One Lua call: its ARGV live in one arena until the reply. */
struct kf_call_s {
    kf_worker_t *w;
    s_kind_t kind;
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
    char detail[256]; /* why it was rejected (logged by s_count_reason) */
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

    s_mode_t mode;
    int loading;          /* replies awaited while loading */
    bool ready_sent, fetching, recovering, sub_paused;
    /* Catching up (kf_journal.h: an entry holds a run of seqs, keyed by the first):
     * aligned: seen + 1 is known to start an entry, or no entry holds it;
     * fetch: what the read in flight is (s_fetch); fetch_live: live_max when it was sent. */
    bool aligned;
    enum { S_READ_COVER, S_READ_RANGE, S_READ_NEXT } fetch;
    uint64_t fetch_live;
    uint64_t seen;        /* every seq <= seen has been queued (or was lost) */
    uint64_t live_max;    /* the highest seq seen live */
    uint64_t handled;     /* every seq <= handled has been submitted or skipped */
    uint64_t done;        /* every seq <= done has completed */
    uint64_t synced;
    s_item_t *q;
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

static void s_pump(kf_worker_t *w);
static void s_fetch(kf_worker_t *w);
static void s_load(kf_worker_t *w);

/* ---------------------------------------------------------------- config */

void kf_worker_opts(const char *section, size_t base, kf_cfg_opt_t *out)
{
#define O(name, min, max, def, field, help)                                                   \
    (kf_cfg_opt_t)                                                                            \
    {                                                                                         \
        section, name, KF_CFG_INT, min, max, def, base + offsetof(kf_worker_conf_t, field),   \
            NULL, help                                                                        \
    }
    size_t i = 0;
    out[i++] = O("instances", 1, KF_WORKER_PARTITIONS, "1", instances,
                 "instances sharing the 64 partitions; instance i (-i) owns p % n == i");
    out[i++] = O("max_inflight", 1, 100000, "2000", max_inflight,
                 "Lua steps awaiting Redis before reading pauses (back-pressure)");
    out[i++] = O("catchup_batch", 10, 100000, "2000", catchup_batch,
                 "journal events read per request while catching up (whole entries: up to 255 more)");
    out[i++] = O("dedup_ttl_s", 60, 31536000, "604800", dedup_ttl_s,
                 "how long an applied event_id is remembered (kefu:dedup:<group>:<window>:<bucket>)");
    out[i++] = O("tick_ms", 10, 60000, "1000", tick_ms,
                 "real clock: how often due timers are fired");
    out[i++] = O("fire_limit", 1, 100000, "1000", fire_limit, "most timers fired in one Lua step");
    out[i++] = O("actions_maxlen", 1000, 1000000000, "1000000", actions_maxlen,
                 "approximate cap on kefu:actions entries");
    out[i++] = O("ckpt_ms", 10, 600000, "1000", ckpt_ms,
                 "how often idle partitions' checkpoints catch up with the stream");
#undef O
}

/* ---------------------------------------------------------------- partitions */

int kf_worker_partition(const char *key)
{
    return (int)(kf_fnv1a(key) % KF_WORKER_PARTITIONS);
}

int kf_worker_instance(kf_worker_t *self)
{
    return self->instance;
}

static bool s_owned(const kf_worker_t *w, int p)
{
    return p >= 0 && p < KF_WORKER_PARTITIONS && w->mask[p] == '1';
}

static uint64_t s_min_ckpt(const kf_worker_t *w)
{
    uint64_t m = UINT64_MAX;
    for (int p = 0; p < KF_WORKER_PARTITIONS; p++)
        if (s_owned(w, p) && w->ckpt[p] < m)
            m = w->ckpt[p];
    return m == UINT64_MAX ? 0 : m;
}

/* ---------------------------------------------------------------- counters */

/* Counts n events the worker could not apply (from seq on), by reason (heartbeat, /stats,
 * kefuctl stat, kefu:stats:worker:<group> rejected:<reason>), and logs it at most once a
 * minute per reason, with the count of those not logged since. */
static void s_count_reasons(kf_worker_t *w, uint64_t seq, const char *reason, const char *detail,
                            uint64_t n)
{
    w->errors += n;
    int64_t now = kf_mono_ms();
    for (int i = 0; i < S_MAX_REASONS; i++) {
        bool last = i == S_MAX_REASONS - 1; /* a full table: the rest count as "other" */
        if (!w->reasons[i].name[0])
            snprintf(w->reasons[i].name, sizeof(w->reasons[i].name), "%s",
                     last ? "other" : reason);
        if (strcmp(w->reasons[i].name, reason) != 0 && !last)
            continue;
        w->reasons[i].n += n;
        if (w->reasons[i].logged_ms && now - w->reasons[i].logged_ms < 60000) {
            w->reasons[i].quiet += n;
            break;
        }
        char more[64] = "";
        if (w->reasons[i].quiet)
            snprintf(more, sizeof(more), " (and %llu more in the last minute)",
                     (unsigned long long)w->reasons[i].quiet);
        if (n > 1)
            kf_log_warn("seq %llu..%llu: not applied (%s): %s%s", (unsigned long long)seq,
                        (unsigned long long)(seq + n - 1), reason,
                        detail && *detail ? detail : "-", more);
        else
            kf_log_warn("seq %llu: not applied (%s): %s%s", (unsigned long long)seq, reason,
                        detail && *detail ? detail : "-", more);
        w->reasons[i].logged_ms = now;
        w->reasons[i].quiet = 0;
        break;
    }
    if (kf_redis_ready(w->redis))
        kf_redis_cmd(w->redis, NULL, NULL, "HINCRBY kefu:stats:worker:%s rejected:%s %llu",
                     w->def.group, reason, (unsigned long long)n);
}

static void s_count_reason(kf_worker_t *w, uint64_t seq, const char *reason, const char *detail)
{
    s_count_reasons(w, seq, reason, detail, 1);
}

/* ---------------------------------------------------------------- calls */

static void s_call_push(kf_call_t *c, const void *v, size_t len)
{
    if (c->n == c->ncap) {
        c->ncap = c->ncap ? c->ncap * 2 : 48;
        c->off = kf_xrealloc(c->off, c->ncap * sizeof(*c->off));
        c->len = kf_xrealloc(c->len, c->ncap * sizeof(*c->len));
    }
    if (c->used + len + 1 > c->cap) {
        while (c->used + len + 1 > c->cap)
            c->cap = c->cap ? c->cap * 2 : 1024;
        c->arena = kf_xrealloc(c->arena, c->cap);
    }
    memcpy(c->arena + c->used, v, len);
    c->arena[c->used + len] = '\0';
    c->off[c->n] = c->used;
    c->len[c->n] = len;
    c->n++;
    c->used += len + 1;
}

static void s_call_pushs(kf_call_t *c, const char *s)
{
    s_call_push(c, s ? s : "", s ? strlen(s) : 0);
}

/* An event's record (R_*), or a fire/sync step's seq and now. */
static kf_call_t *s_call_new(kf_worker_t *w, s_kind_t kind, uint64_t seq, const char *evid,
                             const char *topic, int64_t now)
{
    kf_call_t *c = kf_xcalloc(1, sizeof(*c));
    c->w = w;
    c->kind = kind;
    c->seq = seq;
    c->part = KF_PART_BROADCAST;
    char num[32];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)seq);
    s_call_pushs(c, num);
    if (kind == S_EV) {
        s_call_pushs(c, evid);
        char fp[8];
        if (evid && *evid)
            kf_fingerprint(evid, fp);
        s_call_push(c, fp, evid && *evid ? 8 : 0);
        s_call_pushs(c, "-2"); /* partition: set at submit */
        s_call_pushs(c, "");   /* lookup key: set at submit */
        s_call_pushs(c, topic);
        s_call_pushs(c, "0");  /* backfill: set by s_apply */
    }
    snprintf(num, sizeof(num), "%lld", (long long)now);
    s_call_pushs(c, num);
    return c;
}

static void s_call_free(kf_call_t *c)
{
    if (!c)
        return;
    free(c->arena);
    free(c->off);
    free(c->len);
    free(c->lookup);
    free(c);
}

void kf_call_lookup_miss(kf_call_t *call, const char *reason)
{
    snprintf(call->miss, sizeof(call->miss), "%s", reason);
}

void kf_call_partition(kf_call_t *call, int p, const char *lookup_key)
{
    call->part = p;
    free(call->lookup);
    call->lookup = lookup_key ? kf_xstrdup(lookup_key) : NULL;
}

void kf_call_argn(kf_call_t *call, const char *name, const void *value, size_t len)
{
    s_call_pushs(call, name);
    s_call_push(call, value ? value : "", value ? len : 0);
}

void kf_call_arg(kf_call_t *call, const char *name, const char *value)
{
    kf_call_argn(call, name, value, value ? strlen(value) : 0);
}

void kf_call_argi(kf_call_t *call, const char *name, long long value)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", value);
    kf_call_arg(call, name, num);
}

void kf_call_argf(kf_call_t *call, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    kf_call_arg(call, name, s);
    free(s);
}

void kf_call_reject(kf_call_t *call, const char *reason, const char *fmt, ...)
{
    call->rejected = true;
    snprintf(call->reason, sizeof(call->reason), "%s", reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->detail, sizeof(call->detail), fmt, ap);
    va_end(ap);
}

static void s_on_reply(kf_redis_t *r, redisReply *reply, void *arg);
static void s_on_batch(kf_redis_t *r, redisReply *reply, void *arg);

/* A call in flight: its ARGV (kept for kf_redis's retry after a reload) and its events. */
typedef struct {
    kf_worker_t *w;
    kf_call_t **calls;
    size_t n;
    const char **argv;
    size_t *lens;
} s_sent_t;

static size_t s_header(kf_worker_t *w, const char *op, const char **argv, size_t *lens)
{
    const char *h[S_HEADER] = {op, w->def.group, w->mask, w->hdr_ttl, w->worker_name,
                               w->hdr_max, w->hdr_limit, kf_clock_simulated() ? "1" : "0"};
    for (size_t i = 0; i < S_HEADER; i++) {
        argv[i] = h[i];
        lens[i] = strlen(h[i]);
    }
    return S_HEADER;
}

static void s_sent_free(s_sent_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        s_call_free(s->calls[i]);
    free(s->calls);
    free(s->argv);
    free(s->lens);
    free(s);
}

/* Sends the batch of events: one FCALL, one reply listing each event's. */
static void s_flush(kf_worker_t *w)
{
    if (w->nbatch == 0)
        return;
    size_t argc = S_HEADER;
    for (size_t i = 0; i < w->nbatch; i++)
        argc += w->batch[i]->n + 1;
    s_sent_t *s = kf_xcalloc(1, sizeof(*s));
    s->w = w;
    s->calls = w->batch;
    s->n = w->nbatch;
    s->argv = kf_xmalloc(argc * sizeof(*s->argv));
    s->lens = kf_xmalloc(argc * sizeof(*s->lens));
    w->batch = NULL;
    w->nbatch = w->batch_bytes = 0;
    size_t k = s_header(w, "evs", s->argv, s->lens);
    for (size_t i = 0; i < s->n; i++) {
        kf_call_t *c = s->calls[i];
        snprintf(c->partbuf, sizeof(c->partbuf), "%d", c->part);
        snprintf(c->npbuf, sizeof(c->npbuf), "%zu", (c->n - R_PAIRS) / 2);
        for (size_t j = 0; j < c->n; j++) {
            const char *v = c->arena + c->off[j];
            size_t len = c->len[j];
            if (j == R_PART)
                v = c->partbuf, len = strlen(v);
            else if (j == R_LOOKUP)
                v = c->lookup ? c->lookup : "", len = strlen(v);
            if (j == R_PAIRS) {
                s->argv[k] = c->npbuf;
                s->lens[k++] = strlen(c->npbuf);
            }
            s->argv[k] = v;
            s->lens[k++] = len;
        }
        if (c->n == R_PAIRS) {
            s->argv[k] = c->npbuf;
            s->lens[k++] = strlen(c->npbuf);
        }
    }
    if (kf_redis_eval(w->redis, w->script, 0, (int)k, s->argv, s->lens, s_on_batch, s) !=
        KF_OK) {
        w->inflight -= s->n;
        s_sent_free(s);
        w->recovering = true; /* not connected: the state callback reloads */
    }
}

/* Sends a call, or adds an event to the batch; it is freed by its reply. */
static void s_submit(kf_worker_t *w, kf_call_t *c)
{
    if (c->kind == S_EV) {
        if (w->nbatch == 0)
            w->batch = kf_xmalloc(S_BATCH_EVENTS * sizeof(*w->batch));
        w->batch[w->nbatch++] = c;
        w->batch_bytes += c->used;
        w->inflight++;
        if (w->nbatch == S_BATCH_EVENTS || w->batch_bytes >= S_BATCH_BYTES)
            s_flush(w);
        return;
    }
    s_flush(w); /* the events before it go first */
    s_sent_t *s = kf_xcalloc(1, sizeof(*s));
    s->w = w;
    s->calls = kf_xmalloc(sizeof(*s->calls));
    s->calls[0] = c;
    s->n = 1;
    s->argv = kf_xmalloc((S_HEADER + c->n) * sizeof(*s->argv));
    s->lens = kf_xmalloc((S_HEADER + c->n) * sizeof(*s->lens));
    size_t k = s_header(w, c->kind == S_FIRE ? "fire" : "sync", s->argv, s->lens);
    for (size_t j = 0; j < c->n; j++, k++) {
        s->argv[k] = c->arena + c->off[j];
        s->lens[k] = c->len[j];
    }
    if (kf_redis_eval(w->redis, w->script, 0, (int)k, s->argv, s->lens, s_on_reply, s) !=
        KF_OK) {
        s_sent_free(s);
        w->recovering = true; /* not connected: the state callback reloads */
        return;
    }
    w->inflight++;
    if (c->kind == S_FIRE)
        w->barrier = true;
}

/* buyer.optout: the opted-out channels, partitioned by <shop_id>:<buyer_id>. */
int kf_worker_optout(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__BuyerOptout *o = env->buyer_optout;
    if (!o || !o->buyer_id || !*o->buyer_id || !env->shop_id || !*env->shop_id) {
        kf_call_reject(call, "missing_field", "buyer.optout without shop_id or buyer_id");
        return KF_ERR;
    }
    char *key = kf_xasprintf("%s:%s", env->shop_id, o->buyer_id);
    kf_call_partition(call, kf_worker_partition(key), NULL);
    free(key);
    kf_call_arg(call, "shop", env->shop_id);
    kf_call_arg(call, "buyer", o->buyer_id);
    for (size_t i = 0; i < o->n_channels; i++) {
        const char *ch = o->channels[i] == KEFU__V1__CHANNEL__CHANNEL_IM      ? "im"
                         : o->channels[i] == KEFU__V1__CHANNEL__CHANNEL_SMS   ? "sms"
                         : o->channels[i] == KEFU__V1__CHANNEL__CHANNEL_PHONE ? "phone"
                         : o->channels[i] == KEFU__V1__CHANNEL__CHANNEL_ALL   ? "all"
                                                                              : NULL;
        if (ch)
            kf_call_arg(call, ch, "1");
    }
    return KF_OK;
}

/* ---------------------------------------------------------------- replies */

static void s_publish(kf_worker_t *w, const char *topic, const char *json, size_t len)
{
    char err[256];
    kf_env_t *env = kf_json_parse_event(json, len, topic, err, sizeof(err));
    if (!env) {
        kf_log_err("action from the script does not map to %s: %s", topic, err);
        w->errors++;
        return;
    }
    size_t blen;
    uint8_t *buf = kf_env_pack(env, &blen);
    const void *parts[2] = {topic, buf};
    size_t lens[2] = {strlen(topic), blen};
    if (kf_bus_send(w->pub, parts, lens, 2) != KF_OK)
        kf_log_warn("live %s not published: %s", topic, zmq_strerror(errno));
    free(buf);
    kf_env_free(env);
}

static const char *s_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? r->str : "";
}

static long long s_int(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* {status, partition, nactions, topic, json..., nblocks, reason..., extra} */
static const char *s_parse_reply(kf_worker_t *w, kf_call_t *c, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 5)
        return NULL;
    const char *status = s_str(rep->element[0]);
    int p = (int)s_int(rep->element[1]);
    size_t i = 2, nact = (size_t)s_int(rep->element[i++]);
    if (i + 2 * nact + 2 > rep->elements)
        return NULL;
    for (size_t k = 0; k < nact; k++, i += 2) {
        const redisReply *t = rep->element[i], *j = rep->element[i + 1];
        if (t->type == REDIS_REPLY_STRING && j->type == REDIS_REPLY_STRING) {
            s_publish(w, t->str, j->str, j->len);
            w->actions++;
        }
    }
    size_t nblk = (size_t)s_int(rep->element[i++]);
    if (i + nblk + 1 > rep->elements)
        return NULL;
    for (size_t k = 0; k < nblk; k++, i++)
        kf_log_info("seq %llu: contact blocked: %s", (unsigned long long)c->seq,
                    s_str(rep->element[i]));
    w->blocks += nblk;
    long long extra = s_int(rep->element[i]);
    if (c->kind == S_SYNC)
        w->timers_pending = extra;
    bool applied = strcmp(status, "seen") != 0 && strcmp(status, "notmine") != 0 &&
                   strcmp(status, "unknown") != 0 && strcmp(status, "more") != 0;
    /* "unknown_<x>" from a handler: the event was applied (checkpoint moved) but found
     * nothing to act on; only the runtime's own "unknown" (no partition) was not. */
    if (c->kind == S_EV && applied && c->seq > 0) {
        if (p >= 0 && p < KF_WORKER_PARTITIONS)
            w->ckpt[p] = c->seq;
        else if (p == KF_PART_BROADCAST)
            for (int q = 0; q < KF_WORKER_PARTITIONS; q++)
                if (s_owned(w, q) && w->ckpt[q] < c->seq)
                    w->ckpt[q] = c->seq;
    }
    if (c->kind == S_FIRE && strcmp(status, "done") == 0 && c->seq > 0)
        for (int q = 0; q < KF_WORKER_PARTITIONS; q++)
            if (s_owned(w, q) && w->ckpt[q] < c->seq)
                w->ckpt[q] = c->seq;
    if (strcmp(status, "duplicate") == 0)
        w->duplicates++;
    else if (c->kind == S_EV && applied && strcmp(status, "error") != 0)
        w->applied++;
    return status;
}

static void s_maybe_exit(kf_worker_t *w)
{
    if (kf_daemon_stopping(w->d) && w->inflight == 0) {
        kf_log_notice("stopped: applied up to seq %llu", (unsigned long long)w->done);
        kf_daemon_exit(w->d, 0);
    }
}

/* Redis went away mid-stream: everything after `done` is applied again (harmless: the
 * checkpoints and dedup keys make it exactly once). */
static void s_recover(kf_worker_t *w)
{
    if (w->inflight > 0 || kf_daemon_stopping(w->d))
        return;
    for (size_t i = 0; i < w->qlen; i++)
        free(w->q[(w->qhead + i) % w->qcap].data);
    w->qlen = 0;
    w->barrier = false;
    w->recovering = false;
    w->mode = S_LOADING;
    w->fetching = false;
    if (kf_redis_ready(w->redis))
        s_load(w);
}

/* One step's or one event's reply (NULL: Redis went away). The call stays the caller's. */
static void s_handle(kf_worker_t *w, kf_call_t *c, const redisReply *reply)
{
    w->inflight--;
    if (!reply) {
        w->recovering = true;
    } else if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "Error compiling script")) {
        /* a broken build, not a bad event: skipping would lose every event */
        if (!w->recovering)
            kf_log_err("the worker's Lua script does not compile: %s", reply->str);
        w->recovering = true;
        kf_daemon_exit(w->d, 1);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        s_count_reason(w, c->seq, "script", reply->str);
    } else {
        const char *status = s_parse_reply(w, c, reply);
        if (!status) {
            s_count_reason(w, c->seq, "reply", "unexpected reply from the Lua step");
        } else if (c->kind == S_FIRE && strcmp(status, "more") == 0 && !w->recovering) {
            /* more timers are due: run the same step again before anything else */
            s_submit(w, s_call_new(w, S_FIRE, c->seq, "", "sys.clock",
                                   strtoll(c->arena + c->off[1], NULL, 10)));
            return; /* the barrier stays */
        } else if (strcmp(status, "error") == 0) {
            s_count_reason(w, c->seq, "script", s_str(reply->element[reply->elements - 1]));
        } else if (strncmp(status, "unknown", 7) == 0) {
            s_count_reason(w, c->seq,
                           strcmp(status, "unknown") != 0 ? status
                           : c->miss[0]                 ? c->miss
                                                        : "unknown_order",
                           "nothing it refers to is known");
        }
    }
    if (c->kind == S_FIRE)
        w->barrier = false;
    if (c->kind != S_SYNC && c->seq > w->done)
        w->done = c->seq;
    if (w->inflight == 0 && !w->barrier && w->handled > w->done)
        w->done = w->handled;
}

static void s_after_reply(kf_worker_t *w)
{
    if (w->recovering) {
        s_recover(w);
        return;
    }
    s_maybe_exit(w);
    s_pump(w);
}

static void s_on_reply(kf_redis_t *r, redisReply *reply, void *arg)
{
    s_sent_t *s = arg;
    kf_worker_t *w = s->w;
    s_handle(w, s->calls[0], reply);
    s_sent_free(s);
    s_after_reply(w);
}

/* A batch's reply: one element per event, in order (an error: every event's). */
static void s_on_batch(kf_redis_t *r, redisReply *reply, void *arg)
{
    s_sent_t *s = arg;
    kf_worker_t *w = s->w;
    bool each = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == s->n;
    if (reply && !each && reply->type != REDIS_REPLY_ERROR)
        kf_log_err("a batch of %zu events got an unexpected reply", s->n);
    for (size_t i = 0; i < s->n; i++)
        s_handle(w, s->calls[i], each ? reply->element[i] : reply);
    s_sent_free(s);
    s_after_reply(w);
}

/* ---------------------------------------------------------------- applying events */

static const kf_worker_route_t *s_route(kf_worker_t *w, const char *topic)
{
    for (size_t i = 0; i < w->def.nroutes; i++)
        if (strcmp(w->def.routes[i].topic, topic) == 0)
            return &w->def.routes[i];
    return NULL;
}

static void s_skip(kf_worker_t *w, uint64_t seq)
{
    w->skipped++;
    if (w->inflight == 0 && !w->barrier)
        w->done = seq;
}

static void s_apply_clock(kf_worker_t *w, uint64_t seq, const kf_env_t *env)
{
    if (!kf_clock_simulated() || !env->sys_clock || !env->sys_clock->has_now) {
        s_skip(w, seq); /* the real clock ignores sys.clock */
        return;
    }
    int64_t now = env->sys_clock->now;
    if (now < w->sim_now)
        now = w->sim_now; /* the clock never goes back */
    w->sim_now = now;
    kf_clock_set(now);
    if (seq <= s_min_ckpt(w)) {
        s_skip(w, seq);
        return;
    }
    s_submit(w, s_call_new(w, S_FIRE, seq, "", "sys.clock", now));
}

/* The runtime's own part of shop.config: the cache and kefu:shops. */
static int s_shop_config(kf_worker_t *w, const kf_env_t *env, kf_call_t *call)
{
    const Kefu__V1__ShopConfig *cfg = env->shop_config;
    if (!env->shop_id || !*env->shop_id || !cfg) {
        kf_call_reject(call, "missing_shop", "shop.config without shop_id");
        return KF_ERR;
    }
    size_t len = kefu__v1__shop_config__get_packed_size(cfg);
    uint8_t *buf = kf_xmalloc(len ? len : 1);
    kefu__v1__shop_config__pack(cfg, buf);
    char err[256];
    if (kf_shops_set(w->shops, env->shop_id, buf, len, err, sizeof(err)) != KF_OK) {
        free(buf);
        kf_call_reject(call, "bad_config", "%s", err);
        return KF_ERR;
    }
    kf_call_partition(call, KF_PART_BROADCAST, NULL);
    kf_call_arg(call, "shop", env->shop_id);
    kf_call_argn(call, "config", buf, len);
    free(buf);
    /* the freshness overrides, "kind minutes" lines (kf_worker.lua keeps them per shop) */
    char *fresh = kf_xstrdup("");
    for (size_t i = 0; i < cfg->n_freshness; i++) {
        const Kefu__V1__Freshness *f = cfg->freshness[i];
        char *line = kf_xasprintf("%s%s %d\n", fresh, f->kind ? f->kind : "", f->minutes);
        free(fresh);
        fresh = line;
    }
    kf_call_arg(call, "fresh", fresh);
    free(fresh);
    return KF_OK;
}

static void s_apply(kf_worker_t *w, uint64_t seq, const uint8_t *data, size_t len)
{
    w->handled = seq;
    w->processed++;
    kf_reject_t why;
    char err[256];
    kf_env_t *env = kf_proto_decode(data, len, NULL, S_EVENT_MAX, &why, err, sizeof(err));
    if (!env) {
        s_count_reason(w, seq, kf_reject_name(why), err);
        s_skip(w, seq);
        return;
    }
    if (strcmp(env->topic, "sys.clock") == 0) {
        s_apply_clock(w, seq, env);
        kf_env_free(env);
        return;
    }
    const kf_worker_route_t *route = s_route(w, env->topic);
    bool shop = strcmp(env->topic, "shop.config") == 0;
    if (!route && !shop) {
        kf_env_free(env);
        s_skip(w, seq);
        return;
    }
    kf_call_t *c = s_call_new(w, S_EV, seq, env->event_id, env->topic, kf_clock_now());
    if (env->has_backfill && env->backfill)
        c->arena[c->off[R_BACKFILL]] = '1'; /* "0" from s_call_new */
    int rc = shop ? s_shop_config(w, env, c) : KF_OK;
    if (rc == KF_OK && route)
        rc = route->fn(w, env, c, w->def.arg);
    kf_env_free(env);
    if (rc != KF_OK || c->rejected) {
        s_count_reason(w, seq, c->rejected ? c->reason : "handler", c->detail);
        s_call_free(c);
        s_skip(w, seq);
        return;
    }
    if (c->part >= 0 && (!s_owned(w, c->part) || seq <= w->ckpt[c->part])) {
        s_call_free(c); /* another instance's partition, or applied before */
        s_skip(w, seq);
        return;
    }
    s_submit(w, c);
}

/* ---------------------------------------------------------------- the queue */

static void s_enqueue(kf_worker_t *w, uint64_t seq, const void *data, size_t len)
{
    if (w->qlen == w->qcap) {
        size_t ncap = w->qcap ? w->qcap * 2 : 1024;
        s_item_t *q = kf_xmalloc(ncap * sizeof(*q));
        for (size_t i = 0; i < w->qlen; i++)
            q[i] = w->q[(w->qhead + i) % w->qcap];
        free(w->q);
        w->q = q;
        w->qcap = ncap;
        w->qhead = 0;
    }
    s_item_t *it = &w->q[(w->qhead + w->qlen) % w->qcap];
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

static void s_pump(kf_worker_t *w)
{
    while (w->qlen > 0 && !w->barrier && !w->recovering && !kf_daemon_stopping(w->d) &&
           w->inflight < (size_t)w->wc->max_inflight) {
        s_item_t it = w->q[w->qhead];
        w->qhead = (w->qhead + 1) % w->qcap;
        w->qlen--;
        s_apply(w, it.seq, it.data, it.len);
        free(it.data);
    }
    s_flush(w); /* one call for what this pass applied */
    bool full = w->qlen >= s_queue_hwm(w);
    if (full != w->sub_paused) {
        w->sub_paused = full;
        kf_bus_pause(w->sub, full);
    }
    if (w->mode == S_FETCH)
        s_fetch(w);
}

/* ---------------------------------------------------------------- live and catch-up */

static void s_on_live(kf_bus_t *bus, zmq_msg_t *parts, size_t nparts, size_t total, void *arg)
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

static void s_on_live_pass(kf_bus_t *bus, void *arg)
{
    s_pump(arg);
}

/* Events first..last that the journal no longer holds, or holds unreadable: logged and
 * counted under the reason journal_gone (one per event). */
static void s_lost(kf_worker_t *w, uint64_t first, uint64_t last, const char *what)
{
    kf_log_err("journal events %llu..%llu %s: not applied", (unsigned long long)first,
               (unsigned long long)last, what);
    s_count_reasons(w, first, "journal_gone", what, last - first + 1);
}

/* Queues the events of one journal entry after w->seen; what is missing in front of them
 * or unreadable in the entry is logged and counted as lost. */
static void s_take_entry(kf_worker_t *w, const redisReply *e)
{
    kf_journal_iter_t it;
    if (kf_journal_open(e, &it) != KF_OK) {
        kf_log_err("kefu:journal: an entry that is not one (%s): skipped",
                   e && e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
                           e->element[0]->type == REDIS_REPLY_STRING
                       ? e->element[0]->str : "no id");
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
        s_recover(w);
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
    s_fetch(w);
    s_pump(w);
}

/* One read of the journal after w->seen. Not aligned: first the entry at or before seen + 1
 * (it may hold it), or after an empty range the next entry wherever it is; aligned: the
 * entries starting within catchup_batch seqs (so a read holds at most catchup_batch +
 * KF_JOURNAL_ENTRY_MAX - 1 events, whatever the entries' sizes). */
static void s_fetch(kf_worker_t *w)
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

/* ---------------------------------------------------------------- loading */

static void s_loaded(kf_worker_t *w)
{
    if (--w->loading > 0)
        return;
    if (w->recovering) {
        s_recover(w);
        return;
    }
    uint64_t from = s_min_ckpt(w);
    w->seen = w->handled = w->done = w->synced = from;
    w->mode = S_FETCH;
    w->aligned = false;
    w->fetch = S_READ_COVER;
    kf_log_notice("partitions %d of %d (%s...): catching up from seq %llu, %zu shop config(s)",
                  w->instance, w->ninstances, w->mask, (unsigned long long)from + 1,
                  kf_shops_count(w->shops));
    s_fetch(w);
}

static void s_on_ckpts(kf_redis_t *r, redisReply *reply, void *arg)
{
    kf_worker_t *w = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        w->recovering = true;
        s_loaded(w);
        return;
    }
    for (size_t i = 0, k = 0; k < KF_WORKER_PARTITIONS; k++)
        if (s_owned(w, (int)k) && i < reply->elements)
            w->ckpt[k] = (uint64_t)s_int(reply->element[i++]);
    s_loaded(w);
}

static void s_on_shops(kf_redis_t *r, redisReply *reply, void *arg)
{
    kf_worker_t *w = arg;
    if (!reply)
        w->recovering = true;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *k = reply->element[i], *v = reply->element[i + 1];
            char err[256];
            if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
                kf_shops_set(w->shops, k->str, (const uint8_t *)v->str, v->len, err,
                             sizeof(err)) != KF_OK)
                kf_log_warn("kefu:shops: %s", err);
        }
    }
    s_loaded(w);
}

/* The simulated clock these partitions had reached (kf_sched.lua records it with every
 * sys.clock step): the events caught up before the next sys.clock see it, not 0. */
static void s_on_clock(kf_redis_t *r, redisReply *reply, void *arg)
{
    kf_worker_t *w = arg;
    if (!reply)
        w->recovering = true;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        int64_t now = s_int(reply);
        if (now > w->sim_now) {
            w->sim_now = now;
            kf_clock_set(now);
        }
    }
    s_loaded(w);
}

static void s_load(kf_worker_t *w)
{
    if (kf_daemon_stopping(w->d))
        return;
    w->mode = S_LOADING;
    w->loading = kf_clock_simulated() ? 3 : 2;
    const char *argv[KF_WORKER_PARTITIONS + 1];
    char keys[KF_WORKER_PARTITIONS][96];
    int n = 0;
    argv[n++] = "MGET";
    for (int p = 0; p < KF_WORKER_PARTITIONS; p++) {
        if (!s_owned(w, p))
            continue;
        snprintf(keys[p], sizeof(keys[p]), "kefu:ckpt:%s:%d", w->def.group, p);
        argv[n++] = keys[p];
    }
    if (kf_redis_cmdv(w->redis, s_on_ckpts, w, n, argv, NULL) != KF_OK) {
        w->loading = 0;
        w->recovering = true; /* not connected: the state callback starts again */
        return;
    }
    if (kf_redis_cmd(w->redis, s_on_shops, w, "HGETALL kefu:shops") != KF_OK) {
        w->recovering = true;
        s_loaded(w);
    }
    if (kf_clock_simulated() && kf_redis_cmd(w->redis, s_on_clock, w, "HGET kefu:clock:%s %s",
                                             w->def.group, w->mask) != KF_OK) {
        w->recovering = true;
        s_loaded(w);
    }
}

static void s_on_redis(kf_redis_t *r, bool up, void *arg)
{
    kf_worker_t *w = arg;
    if (up) {
        kf_log_notice("redis is up");
        if ((w->mode == S_LOADING || w->recovering) && w->loading == 0 && w->inflight == 0 &&
            !w->fetching)
            s_recover(w);
    } else {
        kf_log_warn("redis is down: waiting for it");
        w->recovering = true;
    }
}

/* ---------------------------------------------------------------- timers */

static void s_on_tick(evutil_socket_t fd, short what, void *arg)
{
    kf_worker_t *w = arg;
    if (kf_clock_simulated() || w->mode != S_LIVE || w->barrier || w->recovering ||
        kf_daemon_stopping(w->d) || !kf_redis_ready(w->redis))
        return;
    s_submit(w, s_call_new(w, S_FIRE, 0, "", "", kf_clock_now()));
}

static void s_on_sync(evutil_socket_t fd, short what, void *arg)
{
    kf_worker_t *w = arg;
    /* a real-clock tick (seq 0) moves no checkpoint: the sync may follow it; it used to be
     * skipped whenever a tick was in flight, which on the real clock was every time (both
     * run every second), so timers_pending stayed 0 */
    bool sim_barrier = w->barrier && kf_clock_simulated();
    if (w->mode == S_LOADING || sim_barrier || w->recovering || kf_daemon_stopping(w->d) ||
        !kf_redis_ready(w->redis))
        return;
    uint64_t seq = w->done > w->synced ? w->done : 0;
    kf_call_t *c = s_call_new(w, S_SYNC, seq, "", "", kf_clock_now());
    s_submit(w, c);
    if (seq) {
        w->synced = seq;
        for (int q = 0; q < KF_WORKER_PARTITIONS; q++)
            if (s_owned(w, q) && w->ckpt[q] < seq)
                w->ckpt[q] = seq;
    }
}

static void s_beat(kf_daemon_t *d, kf_beat_t *b, void *arg)
{
    kf_worker_t *w = arg;
    b->processed = w->processed;
    b->errors = w->errors;
    b->applied_seq = w->done;
    uint64_t head = w->live_max > w->seen ? w->live_max : w->seen;
    b->lag = head > w->done ? (int64_t)(head - w->done) : 0;
    b->timers_pending = w->timers_pending;
    for (int i = 0; i < S_MAX_REASONS && w->reasons[i].name[0] && b->nreasons < 16; i++) {
        b->reason[b->nreasons] = w->reasons[i].name;
        b->reason_n[b->nreasons++] = w->reasons[i].n;
    }
}

static void s_on_stop(kf_daemon_t *d, void *arg)
{
    kf_worker_t *w = arg;
    kf_bus_pause(w->sub, true);
    kf_log_notice("stopping: %zu step(s) in flight", w->inflight);
    s_maybe_exit(w);
}

/* ---------------------------------------------------------------- setup */

kf_worker_t *kf_worker_new(kf_daemon_t *d, const kf_conf_t *conf, const kf_worker_conf_t *wc,
                           const kf_worker_def_t *def, char *err, size_t errlen)
{
    kf_worker_t *w = kf_xcalloc(1, sizeof(*w));
    w->d = d;
    w->conf = conf;
    w->wc = wc;
    w->def = *def;
    w->base = kf_daemon_base(d);
    w->shops = kf_shops_new();
    snprintf(w->worker_name, sizeof(w->worker_name), "%s", kf_daemon_name(d));
    w->ninstances = (int)wc->instances;
    long long inst = 0;
    const char *is = kf_daemon_instance(d);
    if (is && *is && kf_parse_ll(is, 0, w->ninstances - 1, &inst) != KF_OK) {
        kf_err(err, errlen, "instance '%s' is not in 0..%d ([%s] instances = %d)", is,
               w->ninstances - 1, def->group, w->ninstances);
        goto fail;
    }
    w->instance = (int)inst;
    for (int p = 0; p < KF_WORKER_PARTITIONS; p++)
        w->mask[p] = p % w->ninstances == w->instance ? '1' : '0';

    char *password = NULL;
    if (conf->redis_password_file && *conf->redis_password_file &&
        !(password = kf_cfg_read_secret(conf->redis_password_file, err, errlen)))
        goto fail;
    w->redis = kf_redis_new(w->base, conf->redis_url, password, err, errlen);
    free(password);
    if (!w->redis)
        goto fail;
    kf_redis_set_connect_timeout(w->redis, conf->redis_timeout_ms);
    w->lua = kf_xasprintf("%s\n%s\n%s\n%s\n", kf_lua_kf_worker, kf_lua_kf_sched, kf_lua_kf_policy,
                          def->lua);
    w->script = kf_redis_library(w->redis, def->group, w->lua);
    snprintf(w->hdr_ttl, sizeof(w->hdr_ttl), "%lld", wc->dedup_ttl_s);
    snprintf(w->hdr_max, sizeof(w->hdr_max), "%lld", wc->actions_maxlen);
    snprintf(w->hdr_limit, sizeof(w->hdr_limit), "%lld", wc->fire_limit);

    void *zctx = kf_daemon_zctx(d);
    int hwm = (int)conf->bus_hwm;
    if (!(w->pub = kf_bus_new(w->base, zctx, ZMQ_PUB, hwm, err, errlen)) ||
        kf_bus_connect(w->pub, conf->bus_publish, err, errlen) != KF_OK ||
        !(w->sub = kf_bus_new(w->base, zctx, ZMQ_SUB, hwm, err, errlen)))
        goto fail;
    for (size_t i = 0; kf_proto_topics[i]; i++)
        if (!kf_proto_topic_is_out(kf_proto_topics[i]))
            zmq_setsockopt(kf_bus_socket(w->sub), ZMQ_SUBSCRIBE, kf_proto_topics[i],
                           strlen(kf_proto_topics[i]));
    if (kf_bus_connect(w->sub, conf->bus_subscribe, err, errlen) != KF_OK)
        goto fail;
    kf_bus_on_recv(w->sub, s_on_live, s_on_live_pass, w);

    w->tick_ev = event_new(w->base, -1, EV_PERSIST, s_on_tick, w);
    w->sync_ev = event_new(w->base, -1, EV_PERSIST, s_on_sync, w);
    struct timeval tick = {(time_t)(wc->tick_ms / 1000), (suseconds_t)(wc->tick_ms % 1000) * 1000};
    struct timeval sync = {(time_t)(wc->ckpt_ms / 1000), (suseconds_t)(wc->ckpt_ms % 1000) * 1000};
    event_add(w->tick_ev, &tick);
    event_add(w->sync_ev, &sync);

    kf_daemon_on_stop(d, s_on_stop, w);
    kf_daemon_heartbeat(d, s_beat, w);
    w->mode = S_LOADING;
    kf_redis_on_state(w->redis, s_on_redis, w);
    return w;
fail:
    kf_worker_destroy(&w);
    return NULL;
}

void kf_worker_destroy(kf_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    kf_worker_t *w = *self_p;
    if (w->tick_ev)
        event_free(w->tick_ev);
    if (w->sync_ev)
        event_free(w->sync_ev);
    kf_bus_destroy(&w->sub);
    kf_bus_destroy(&w->pub);
    kf_redis_destroy(&w->redis);
    for (size_t i = 0; i < w->nbatch; i++)
        s_call_free(w->batch[i]);
    free(w->batch);
    for (size_t i = 0; i < w->qlen; i++)
        free(w->q[(w->qhead + i) % w->qcap].data);
    free(w->q);
    free(w->lua);
    kf_shops_destroy(&w->shops);
    free(w);
    *self_p = NULL;
}

const kf_shop_t *kf_worker_shop(kf_worker_t *self, const char *shop_id)
{
    return kf_shops_get(self->shops, shop_id);
}

int kf_worker_main(const char *daemon, const kf_worker_def_t *def, int argc, char **argv)
{
    kf_conf_t conf = {0};
    kf_worker_conf_t wconf = {0};
    kf_cfg_opt_t opts[KF_WORKER_NOPTS];
    kf_worker_opts(def->group, 0, opts);
    kf_cfg_table_t extra[] = {{opts, KF_WORKER_NOPTS, &wconf}};
    int code = 0;
    kf_daemon_t *d = kf_daemon_new(daemon, argc, argv, &conf, extra, 1, &code);
    if (!d)
        return code;
    char err[512];
    kf_worker_t *w = kf_worker_new(d, &conf, &wconf, def, err, sizeof(err));
    if (!w) {
        kf_log_err("cannot start: %s", err);
        code = 1;
    } else {
        code = kf_daemon_run(d);
    }
    kf_worker_destroy(&w);
    kf_daemon_destroy(&d);
    return code;
}
