/* kf_worker_call: error counters, the Lua calls a worker sends (one ARGV arena per call,
 * events batched into one FCALL) and their replies (kf_worker_int.h). */
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

/* ---------------------------------------------------------------- counters */

/* Counts n events the worker could not apply (from seq on), by reason (heartbeat, /stats,
 * kefuctl stat, kefu:stats:worker:<group> rejected:<reason>), and logs it at most once a
 * minute per reason, with the count of those not logged since. */
void kfw_count_reasons(kf_worker_t *w, uint64_t seq, const char *reason, const char *detail,
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

void kfw_count_reason(kf_worker_t *w, uint64_t seq, const char *reason, const char *detail)
{
    kfw_count_reasons(w, seq, reason, detail, 1);
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
kf_call_t *kfw_call_new(kf_worker_t *w, kfw_kind_t kind, uint64_t seq, const char *evid,
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
        s_call_pushs(c, "0");  /* backfill: set by kfw_apply */
    }
    snprintf(num, sizeof(num), "%lld", (long long)now);
    s_call_pushs(c, num);
    return c;
}

void kfw_call_free(kf_call_t *c)
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
        kfw_call_free(s->calls[i]);
    free(s->calls);
    free(s->argv);
    free(s->lens);
    free(s);
}

/* Sends the batch of events: one FCALL, one reply listing each event's. */
void kfw_flush(kf_worker_t *w)
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
void kfw_submit(kf_worker_t *w, kf_call_t *c)
{
    if (c->kind == S_EV) {
        if (w->nbatch == 0)
            w->batch = kf_xmalloc(S_BATCH_EVENTS * sizeof(*w->batch));
        w->batch[w->nbatch++] = c;
        w->batch_bytes += c->used;
        w->inflight++;
        if (w->nbatch == S_BATCH_EVENTS || w->batch_bytes >= S_BATCH_BYTES)
            kfw_flush(w);
        return;
    }
    kfw_flush(w); /* the events before it go first */
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

long long kfw_int(const redisReply *r)
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
    int p = (int)kfw_int(rep->element[1]);
    size_t i = 2, nact = (size_t)kfw_int(rep->element[i++]);
    if (i + 2 * nact + 2 > rep->elements)
        return NULL;
    for (size_t k = 0; k < nact; k++, i += 2) {
        const redisReply *t = rep->element[i], *j = rep->element[i + 1];
        if (t->type == REDIS_REPLY_STRING && j->type == REDIS_REPLY_STRING) {
            s_publish(w, t->str, j->str, j->len);
            w->actions++;
        }
    }
    size_t nblk = (size_t)kfw_int(rep->element[i++]);
    if (i + nblk + 1 > rep->elements)
        return NULL;
    for (size_t k = 0; k < nblk; k++, i++)
        kf_log_info("seq %llu: contact blocked: %s", (unsigned long long)c->seq,
                    s_str(rep->element[i]));
    w->blocks += nblk;
    long long extra = kfw_int(rep->element[i]);
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
                if (kfw_owned(w, q) && w->ckpt[q] < c->seq)
                    w->ckpt[q] = c->seq;
    }
    if (c->kind == S_FIRE && strcmp(status, "done") == 0 && c->seq > 0)
        for (int q = 0; q < KF_WORKER_PARTITIONS; q++)
            if (kfw_owned(w, q) && w->ckpt[q] < c->seq)
                w->ckpt[q] = c->seq;
    if (strcmp(status, "duplicate") == 0)
        w->duplicates++;
    else if (c->kind == S_EV && applied && strcmp(status, "error") != 0)
        w->applied++;
    return status;
}

void kfw_maybe_exit(kf_worker_t *w)
{
    if (kf_daemon_stopping(w->d) && w->inflight == 0) {
        kf_log_notice("stopped: applied up to seq %llu", (unsigned long long)w->done);
        kf_daemon_exit(w->d, 0);
    }
}

/* Redis went away mid-stream: everything after `done` is applied again (harmless: the
 * checkpoints and dedup keys make it exactly once). */
void kfw_recover(kf_worker_t *w)
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
        kfw_load(w);
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
        kfw_count_reason(w, c->seq, "script", reply->str);
    } else {
        const char *status = s_parse_reply(w, c, reply);
        if (!status) {
            kfw_count_reason(w, c->seq, "reply", "unexpected reply from the Lua step");
        } else if (c->kind == S_FIRE && strcmp(status, "more") == 0 && !w->recovering) {
            /* more timers are due: run the same step again before anything else */
            kfw_submit(w, kfw_call_new(w, S_FIRE, c->seq, "", "sys.clock",
                                       strtoll(c->arena + c->off[1], NULL, 10)));
            return; /* the barrier stays */
        } else if (strcmp(status, "error") == 0) {
            kfw_count_reason(w, c->seq, "script", s_str(reply->element[reply->elements - 1]));
        } else if (strncmp(status, "unknown", 7) == 0) {
            kfw_count_reason(w, c->seq,
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
        kfw_recover(w);
        return;
    }
    kfw_maybe_exit(w);
    kfw_pump(w);
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

