/* kf_worker: catch-up, live apply, timers and checkpoints for every worker (see kf_worker.h;
 * kf_worker_int.h says which file has what). */
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

extern const char kf_lua_kf_worker[];
extern const char kf_lua_kf_sched[];
extern const char kf_lua_kf_policy[];

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

bool kfw_owned(const kf_worker_t *w, int p)
{
    return p >= 0 && p < KF_WORKER_PARTITIONS && w->mask[p] == '1';
}

uint64_t kfw_min_ckpt(const kf_worker_t *w)
{
    uint64_t m = UINT64_MAX;
    for (int p = 0; p < KF_WORKER_PARTITIONS; p++)
        if (kfw_owned(w, p) && w->ckpt[p] < m)
            m = w->ckpt[p];
    return m == UINT64_MAX ? 0 : m;
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
    if (seq <= kfw_min_ckpt(w)) {
        s_skip(w, seq);
        return;
    }
    kfw_submit(w, kfw_call_new(w, S_FIRE, seq, "", "sys.clock", now));
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

void kfw_apply(kf_worker_t *w, uint64_t seq, const uint8_t *data, size_t len)
{
    w->handled = seq;
    w->processed++;
    kf_reject_t why;
    char err[256];
    kf_env_t *env = kf_proto_decode(data, len, NULL, S_EVENT_MAX, &why, err, sizeof(err));
    if (!env) {
        kfw_count_reason(w, seq, kf_reject_name(why), err);
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
    kf_call_t *c = kfw_call_new(w, S_EV, seq, env->event_id, env->topic, kf_clock_now());
    if (env->has_backfill && env->backfill)
        c->arena[c->off[R_BACKFILL]] = '1'; /* "0" from kfw_call_new */
    int rc = shop ? s_shop_config(w, env, c) : KF_OK;
    if (rc == KF_OK && route)
        rc = route->fn(w, env, c, w->def.arg);
    kf_env_free(env);
    if (rc != KF_OK || c->rejected) {
        kfw_count_reason(w, seq, c->rejected ? c->reason : "handler", c->detail);
        kfw_call_free(c);
        s_skip(w, seq);
        return;
    }
    if (c->part >= 0 && (!kfw_owned(w, c->part) || seq <= w->ckpt[c->part])) {
        kfw_call_free(c); /* another instance's partition, or applied before */
        s_skip(w, seq);
        return;
    }
    kfw_submit(w, c);
}

/* ---------------------------------------------------------------- loading */

static void s_loaded(kf_worker_t *w)
{
    if (--w->loading > 0)
        return;
    if (w->recovering) {
        kfw_recover(w);
        return;
    }
    uint64_t from = kfw_min_ckpt(w);
    w->seen = w->handled = w->done = w->synced = from;
    w->mode = S_FETCH;
    w->aligned = false;
    w->fetch = S_READ_COVER;
    kf_log_notice("partitions %d of %d (%s...): catching up from seq %llu, %zu shop config(s)",
                  w->instance, w->ninstances, w->mask, (unsigned long long)from + 1,
                  kf_shops_count(w->shops));
    kfw_fetch(w);
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
        if (kfw_owned(w, (int)k) && i < reply->elements)
            w->ckpt[k] = (uint64_t)kfw_int(reply->element[i++]);
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
        int64_t now = kfw_int(reply);
        if (now > w->sim_now) {
            w->sim_now = now;
            kf_clock_set(now);
        }
    }
    s_loaded(w);
}

void kfw_load(kf_worker_t *w)
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
        if (!kfw_owned(w, p))
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
            kfw_recover(w);
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
    kfw_submit(w, kfw_call_new(w, S_FIRE, 0, "", "", kf_clock_now()));
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
    kf_call_t *c = kfw_call_new(w, S_SYNC, seq, "", "", kf_clock_now());
    kfw_submit(w, c);
    if (seq) {
        w->synced = seq;
        for (int q = 0; q < KF_WORKER_PARTITIONS; q++)
            if (kfw_owned(w, q) && w->ckpt[q] < seq)
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
    kfw_maybe_exit(w);
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
    kf_bus_on_recv(w->sub, kfw_on_live, kfw_on_live_pass, w);

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
        kfw_call_free(w->batch[i]);
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
