/* kefu-dispatch: the consumer group on kefu:actions and every write dispatch makes.
 *
 * Two connections: `reader` only blocks in XREADGROUP ... BLOCK (new entries), `redis` does
 * the rest. When `redis` comes up: shops, disabled endpoints, the group, then recovery —
 * this consumer's own pending entries (XREADGROUP ... 0, with their stored state: a retry
 * resumes at its `next`, a finished one is only acknowledged) and entries other consumers
 * left idle (XAUTOCLAIM). Finished items are written (state, kefu:dead) and XACKed in one
 * MULTI per loop pass; an item leaves memory only when that EXEC succeeded, so a Redis
 * restart repeats the writes, never loses them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kf_clock.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_proto.h"
#include "kf_util.h"

#define S_PAGE 500
#define S_FLUSH_MAX 1000

static void s_read(dispatch_t *d);
static void s_recover_pel(dispatch_t *d, const char *cursor);
static void s_autoclaim(dispatch_t *d, const char *cursor);

/* ---------------------------------------------------------------- entries */

dispatch_ref_t *dispatch_ref(dispatch_t *d, item_t *it)
{
    dispatch_ref_t *l = kf_xmalloc(sizeof(*l));
    *l = (dispatch_ref_t){d, it};
    return l;
}

bool dispatch_shop_set(dispatch_t *d, const char *shop, const redisReply *v)
{
    char err[256];
    if (!v || v->type != REDIS_REPLY_STRING)
        return false;
    if (kf_shops_set(d->shops, shop, (const uint8_t *)v->str, v->len, err, sizeof(err)) !=
        KF_OK) {
        kf_log_warn("kefu:shops %s: %s", shop, err);
        return false;
    }
    return true;
}

static void s_on_state(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_ref_t *l = arg;
    dispatch_t *d = l->d;
    item_t *it = l->it;
    free(l);
    const char *s = NULL;
    if (reply && reply->type == REDIS_REPLY_STRING)
        s = dispatch_item_restore(it, reply->str, reply->len);
    if (s && strcmp(s, "pending") != 0) { /* finished before a crash: acknowledge only */
        it->state = s;
        it->where = IT_DONE;
        dispatch_flush_add(d, it);
        return;
    }
    if (!reply)
        kf_log_warn("%s: its state could not be read; resuming it as new", it->id);
    dispatch_accept(d, it);
}

/* One stream entry ([id, [field, value...]] or [id, nil] when it was trimmed). */
static void s_entry(dispatch_t *d, const redisReply *e, bool recovered)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *sid = e->element[0]->str;
    if (dispatch_find(d, sid))
        return;
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY) { /* trimmed from kefu:actions before delivery */
        d->lost++;
        kf_log_warn("entry %s was trimmed from kefu:actions before it was delivered", sid);
        kf_redis_cmd(d->redis, NULL, NULL, "XACK kefu:actions " DISPATCH_GROUP " %s", sid);
        return;
    }
    char *fv[16];
    size_t fl[16], n = 0;
    for (size_t i = 0; i < f->elements && n < 16; i++, n++) {
        fv[n] = f->element[i]->str ? f->element[i]->str : (char *)"";
        fl[n] = f->element[i]->str ? f->element[i]->len : 0;
    }
    char err[256];
    item_t *it = dispatch_item_new(sid, fv, fl, n, err, sizeof(err));
    if (!it) {
        d->err_bad_action++;
        kf_log_err("%s: acknowledged without delivery", err);
        kf_redis_cmd(d->redis, NULL, NULL, "XACK kefu:actions " DISPATCH_GROUP " %s", sid);
        return;
    }
    dispatch_set_add(d, it);
    if (!recovered) {
        dispatch_accept(d, it);
        return;
    }
    char key[40];
    dispatch_state_key(sid, key, sizeof(key));
    dispatch_ref_t *l = dispatch_ref(d, it);
    if (kf_redis_cmd(d->redis, s_on_state, l, "HGET %s %s", key, sid) != KF_OK) {
        free(l);
        dispatch_accept(d, it);
    }
}

/* XREADGROUP's [[stream, [entries]]]; returns the number of entries, *last the last id. */
static size_t s_entries(dispatch_t *d, const redisReply *reply, bool recovered, char *last,
                        size_t lastlen)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)
        return 0;
    const redisReply *s = reply->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 || s->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *es = s->element[1];
    for (size_t i = 0; i < es->elements; i++) {
        s_entry(d, es->element[i], recovered);
        const redisReply *e = es->element[i];
        if (last && e->type == REDIS_REPLY_ARRAY && e->elements && e->element[0]->str)
            snprintf(last, lastlen, "%s", e->element[0]->str);
    }
    return es->elements;
}

/* ---------------------------------------------------------------- live reads */

static void s_read_later(evutil_socket_t fd, short what, void *arg) { s_read(arg); }

static void s_on_read(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    d->reading = false;
    if (!reply)
        return; /* the reader's state callback reads again */
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strstr(reply->str, "NOGROUP")) {
            kf_log_warn("the consumer group is gone (Redis came back empty?): creating it again");
            d->group_ok = false;
            kf_redis_cmd(d->redis, NULL, NULL,
                         "XGROUP CREATE kefu:actions " DISPATCH_GROUP " 0 MKSTREAM");
            d->group_ok = true;
        } else {
            kf_log_err("XREADGROUP: %s", reply->str);
        }
        struct timeval tv = {1, 0};
        event_base_once(d->base, -1, EV_TIMEOUT, s_read_later, d, &tv);
        return;
    }
    s_entries(d, reply, false, NULL, 0);
    s_read(d);
}

static void s_read(dispatch_t *d)
{
    if (d->reading || d->stopping || !d->group_ok || !kf_redis_ready(d->reader))
        return;
    if (d->nitems >= (size_t)d->dc->max_queued)
        return; /* dispatch_read_more resumes */
    if (kf_redis_cmd(d->reader, s_on_read, d,
                     "XREADGROUP GROUP " DISPATCH_GROUP " %s COUNT %lld BLOCK 1000 STREAMS "
                     "kefu:actions >",
                     d->consumer, d->dc->read_batch) == KF_OK)
        d->reading = true;
}

void dispatch_read_more(dispatch_t *d)
{
    if (!d->reading && d->nitems < (size_t)d->dc->max_queued * 9 / 10)
        s_read(d);
}

static void s_on_reader_state(kf_redis_t *r, bool up, void *arg)
{
    dispatch_t *d = arg;
    d->reading = false;
    if (up)
        s_read(d);
}

/* ---------------------------------------------------------------- recovery */

static void s_on_pel(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        d->recovering = 0;
        if (reply)
            kf_log_err("reading pending entries: %s", reply->str);
        return;
    }
    char last[40] = "";
    if (s_entries(d, reply, true, last, sizeof(last)) > 0 && last[0]) {
        s_recover_pel(d, last);
        return;
    }
    s_autoclaim(d, "0-0");
}

static void s_recover_pel(dispatch_t *d, const char *cursor)
{
    if (kf_redis_cmd(d->redis, s_on_pel, d,
                     "XREADGROUP GROUP " DISPATCH_GROUP " %s COUNT %d STREAMS kefu:actions %s",
                     d->consumer, S_PAGE, cursor) != KF_OK)
        d->recovering = 0;
}

static void s_on_autoclaim(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        d->recovering = 0;
        if (reply && reply->type == REDIS_REPLY_ERROR)
            kf_log_err("XAUTOCLAIM: %s", reply->str);
        return;
    }
    const redisReply *es = reply->element[1];
    size_t taken = 0;
    for (size_t i = 0; es->type == REDIS_REPLY_ARRAY && i < es->elements; i++) {
        if (!dispatch_find(d, es->element[i]->element[0]->str))
            taken++;
        s_entry(d, es->element[i], true);
    }
    if (taken)
        kf_log_notice("took over %zu actions another dispatch consumer left pending", taken);
    const char *next = reply->element[0]->str;
    if (next && strcmp(next, "0-0") != 0) {
        s_autoclaim(d, next);
        return;
    }
    if (d->recovering) {
        d->recovering = 0;
        d->recovered = true;
        kf_log_notice("recovered: %zu actions in memory", d->nitems);
    }
}

static void s_autoclaim(dispatch_t *d, const char *cursor)
{
    if (kf_redis_cmd(d->redis, s_on_autoclaim, d,
                     "XAUTOCLAIM kefu:actions " DISPATCH_GROUP " %s %lld %s COUNT %d", d->consumer,
                     d->dc->claim_idle_ms, cursor, S_PAGE) != KF_OK)
        d->recovering = 0;
}

static void s_on_shops(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements;
         i += 2) {
        const redisReply *k = reply->element[i];
        if (k->type == REDIS_REPLY_STRING)
            dispatch_shop_set(d, k->str, reply->element[i + 1]);
    }
}

static void s_on_disabled(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements;
         i += 2) {
        json_t *v = json_loads(reply->element[i + 1]->str ? reply->element[i + 1]->str : "", 0,
                               NULL);
        dispatch_ep_disable(d, reply->element[i]->str,
                            json_string_value(json_object_get(v, "shop")), 410, "disabled",
                            false);
        json_decref(v);
    }
}

static void s_on_failing(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements;
         i += 2) {
        long long since;
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            kf_parse_ll(v->str, 1, INT64_MAX, &since) == KF_OK)
            dispatch_ep_failing_since(d, k->str, since);
    }
}

static void s_on_group(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    if (!reply) {
        d->recovering = 0;
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && !strstr(reply->str, "BUSYGROUP")) {
        kf_log_err("XGROUP CREATE kefu:actions: %s", reply->str);
        d->recovering = 0;
        return;
    }
    d->group_ok = true;
    s_read(d);
    s_recover_pel(d, "0");
}

static void s_on_redis_state(kf_redis_t *r, bool up, void *arg)
{
    dispatch_t *d = arg;
    if (!up) {
        kf_log_warn("redis is down: deliveries go on, their results are written when it returns");
        return;
    }
    if (!d->recovered && d->nitems == 0)
        kf_daemon_ready(d->daemon, "delivering actions");
    kf_log_notice("redis is up: recovering pending deliveries");
    d->recovering = 1;
    kf_redis_cmd(d->redis, s_on_shops, d, "HGETALL kefu:shops");
    kf_redis_cmd(d->redis, s_on_disabled, d, "HGETALL kefu:dispatch:disabled");
    kf_redis_cmd(d->redis, s_on_failing, d, "HGETALL kefu:dispatch:failing");
    kf_redis_cmd(d->redis, s_on_group, d,
                 "XGROUP CREATE kefu:actions " DISPATCH_GROUP " 0 MKSTREAM");
    dispatch_flush_soon(d);
}

static void s_on_dead_len(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        d->dead_len = (uint64_t)reply->integer;
}

/* Every claim_idle_ms / 2: take over what others left, keep ours from being taken. */
typedef struct {
    dispatch_t *d;
    char *shop;
    long long seq;
} s_shop_fetch_t;

static void s_on_shop_fetch(kf_redis_t *r, redisReply *reply, void *arg)
{
    s_shop_fetch_t *f = arg;
    if (dispatch_shop_set(f->d, f->shop, reply))
        json_object_set_new(f->d->shop_seqs, f->shop, json_integer(f->seq));
    free(f->shop);
    free(f);
}

/* kefu:shops:seq (shop -> seq of its newest shop.config, kept by the workers): a config that
 * changed since the last look, and that the bus did not bring (lost, or sent while dispatch
 * was starting), is read from kefu:shops. The first look only records where things are. */
static void s_on_shop_seqs(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_t *d = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    bool first = d->shop_seqs == NULL;
    if (first)
        d->shop_seqs = json_object();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        long long seq;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            kf_parse_ll(v->str, 0, INT64_MAX, &seq) != KF_OK)
            continue;
        json_t *known = json_object_get(d->shop_seqs, k->str);
        if (first) {
            json_object_set_new(d->shop_seqs, k->str, json_integer(seq));
            continue;
        }
        if (known && json_integer_value(known) >= seq)
            continue;
        s_shop_fetch_t *f = kf_xmalloc(sizeof(*f));
        *f = (s_shop_fetch_t){d, kf_xstrdup(k->str), seq};
        if (kf_redis_cmd(d->redis, s_on_shop_fetch, f, "HGET kefu:shops %s", k->str) != KF_OK) {
            free(f->shop);
            free(f);
        }
    }
}

static void s_on_claim_tick(evutil_socket_t fd, short what, void *arg)
{
    dispatch_t *d = arg;
    if (!kf_redis_ready(d->redis) || d->stopping)
        return;
    kf_redis_cmd(d->redis, s_on_shop_seqs, d, "HGETALL kefu:shops:seq");
    const char *argv[6 + S_PAGE];
    int n = 0;
    char idle[24];
    snprintf(idle, sizeof(idle), "%d", 0);
    argv[n++] = "XCLAIM", argv[n++] = "kefu:actions", argv[n++] = DISPATCH_GROUP;
    argv[n++] = d->consumer, argv[n++] = idle;
    int head = n;
    for (size_t i = 0; i < DISPATCH_ITEM_BUCKETS; i++)
        for (item_t *it = d->items[i]; it; it = it->hnext) {
            if (it->where == IT_DONE)
                continue;
            argv[n++] = it->sid;
            if (n == head + S_PAGE) {
                argv[n++] = "JUSTID";
                kf_redis_cmdv(d->redis, NULL, NULL, n, argv, NULL);
                n = head;
            }
        }
    if (n > head) {
        argv[n++] = "JUSTID";
        kf_redis_cmdv(d->redis, NULL, NULL, n, argv, NULL);
    }
    if (!d->recovering)
        s_autoclaim(d, "0-0");
    kf_redis_cmd(d->redis, s_on_dead_len, d, "XLEN kefu:dead");
}

/* ---------------------------------------------------------------- writes */

typedef struct {
    dispatch_t *d;
    item_t *head;
    size_t n;
} s_batch_t;

static void s_stop_if_done(dispatch_t *d)
{
    if (d->stopping && d->nflush == 0)
        kf_daemon_exit(d->daemon, 0);
}

static void s_on_exec(kf_redis_t *r, redisReply *reply, void *arg)
{
    s_batch_t *b = arg;
    dispatch_t *d = b->d;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (item_t *it = b->head, *nx; it; it = nx) {
            nx = it->qnext;
            dispatch_item_release(d, it);
        }
        d->nflush -= b->n;
        dispatch_read_more(d);
    } else { /* not written: again when Redis is back */
        item_t *tail = b->head;
        while (tail && tail->qnext)
            tail = tail->qnext;
        if (tail) {
            tail->qnext = d->flush_head;
            if (!d->flush_head)
                d->flush_tail = tail;
            d->flush_head = b->head;
        }
        d->err_redis++;
    }
    free(b);
    s_stop_if_done(d);
}

static void s_dead_xadd(dispatch_t *d, const item_t *it)
{
    char maxlen[24], x[24];
    snprintf(maxlen, sizeof(maxlen), "%lld", d->dc->dead_maxlen);
    char *log = json_dumps(it->log, JSON_COMPACT);
    const char *argv[24];
    int n = 0;
    argv[n++] = "XADD", argv[n++] = "kefu:dead", argv[n++] = "MAXLEN", argv[n++] = "~";
    argv[n++] = maxlen, argv[n++] = "*";
    argv[n++] = "t", argv[n++] = it->topic, argv[n++] = "id", argv[n++] = it->id;
    argv[n++] = "j", argv[n++] = it->j;
    if (it->x) {
        snprintf(x, sizeof(x), "%lld", (long long)it->x);
        argv[n++] = "x", argv[n++] = x;
    }
    argv[n++] = "src", argv[n++] = it->sid, argv[n++] = "shop", argv[n++] = it->shop;
    argv[n++] = "why", argv[n++] = it->why ? it->why : "";
    argv[n++] = "url", argv[n++] = it->ep ? it->ep->url : "";
    argv[n++] = "log", argv[n++] = log;
    kf_redis_cmdv(d->redis, NULL, NULL, n, argv, NULL);
    free(log);
}

/* Collects HSET fields of one kefu:dlv:<day> key; s_hset_send writes them with one HSET
 * and one EXPIRE (the day keys expire state_ttl_s after their last write). */
typedef struct {
    char key[40];
    const char **argv;
    char **own; /* the values to free */
    int n, cap;
} s_hset_t;

static void s_hset_send(dispatch_t *d, s_hset_t *h)
{
    if (h->n > 2) {
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%lld", d->dc->state_ttl_s);
        kf_redis_cmdv(d->redis, NULL, NULL, h->n, h->argv, NULL);
        kf_redis_cmd(d->redis, NULL, NULL, "EXPIRE %s %s", h->key, ttl);
    }
    for (int i = 2; i < h->n; i += 2)
        free(h->own[i + 1]);
    h->n = 0;
}

/* Adds field sid (value json, taken) to h, sending h first when sid is of another day. */
static void s_hset_add(dispatch_t *d, s_hset_t *h, const char *sid, char *json)
{
    char key[40];
    dispatch_state_key(sid, key, sizeof(key));
    if (h->n && strcmp(key, h->key))
        s_hset_send(d, h);
    if (h->n + 2 > h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->argv = kf_xrealloc(h->argv, sizeof(*h->argv) * (size_t)h->cap);
        h->own = kf_xrealloc(h->own, sizeof(*h->own) * (size_t)h->cap);
    }
    if (!h->n) {
        snprintf(h->key, sizeof(h->key), "%s", key);
        h->argv[h->n++] = "HSET";
        h->argv[h->n++] = h->key;
    }
    h->argv[h->n] = sid;
    h->own[h->n++] = NULL;
    h->argv[h->n] = json;
    h->own[h->n++] = json;
}

static void s_hset_free(s_hset_t *h)
{
    free(h->argv);
    free(h->own);
}

/* The pending states and disabled endpoints (no confirmation needed: a lost pending state
 * only makes a retry come sooner). */
static void s_flush_side(dispatch_t *d)
{
    const char *k;
    json_t *v;
    s_hset_t h = {0};
    json_object_foreach(d->pending_writes, k, v)
        s_hset_add(d, &h, k, kf_xstrdup(json_string_value(v)));
    s_hset_send(d, &h); /* before the clear: k is borrowed from pending_writes */
    s_hset_free(&h);
    json_object_clear(d->pending_writes);
    json_object_foreach(d->disabled_writes, k, v) {
        char *s = json_dumps(v, JSON_COMPACT);
        kf_redis_cmd(d->redis, NULL, NULL, "HSET kefu:dispatch:disabled %s %s", k, s);
        free(s);
    }
    json_object_clear(d->disabled_writes);
    json_object_foreach(d->failing_writes, k, v) {
        if (json_is_integer(v))
            kf_redis_cmd(d->redis, NULL, NULL, "HSET kefu:dispatch:failing %s %lld", k,
                         (long long)json_integer_value(v));
        else
            kf_redis_cmd(d->redis, NULL, NULL, "HDEL kefu:dispatch:failing %s", k);
    }
    json_object_clear(d->failing_writes);
}

/* The final states, dead letters and acknowledgements, S_FLUSH_MAX items per MULTI/EXEC
 * (the items are freed once it succeeded). */
static void s_flush(evutil_socket_t fd, short what, void *arg)
{
    dispatch_t *d = arg;
    if (!kf_redis_ready(d->redis))
        return; /* the state callback flushes when Redis is back */
    s_flush_side(d);
    bool dead = false;
    s_hset_t h = {0};
    while (d->flush_head) {
        s_batch_t *b = kf_xcalloc(1, sizeof(*b));
        b->d = d;
        b->head = d->flush_head;
        const char *argv[4 + S_FLUSH_MAX];
        int n = 0;
        argv[n++] = "XACK", argv[n++] = "kefu:actions", argv[n++] = DISPATCH_GROUP;
        kf_redis_cmd(d->redis, NULL, NULL, "MULTI");
        item_t *it = d->flush_head, *prev = NULL;
        for (; it && b->n < S_FLUSH_MAX; prev = it, it = it->qnext, b->n++) {
            s_hset_add(d, &h, it->sid, dispatch_item_state(it, it->ep ? it->ep->url : NULL));
            if (!strcmp(it->state, "dead")) {
                s_dead_xadd(d, it);
                dead = true;
            }
            argv[n++] = it->sid;
        }
        s_hset_send(d, &h);
        prev->qnext = NULL;
        d->flush_head = it;
        if (!it)
            d->flush_tail = NULL;
        kf_redis_cmdv(d->redis, NULL, NULL, n, argv, NULL);
        kf_redis_cmd(d->redis, s_on_exec, b, "EXEC");
    }
    s_hset_free(&h);
    if (dead)
        kf_redis_cmd(d->redis, s_on_dead_len, d, "XLEN kefu:dead");
}

void dispatch_flush_soon(dispatch_t *d)
{
    if (d->flush_ev)
        event_active(d->flush_ev, EV_TIMEOUT, 0);
}

void dispatch_flush_add(dispatch_t *d, item_t *it)
{
    it->qnext = NULL;
    if (d->flush_tail)
        d->flush_tail->qnext = it;
    else
        d->flush_head = it;
    d->flush_tail = it;
    d->nflush++;
    dispatch_flush_soon(d);
}

void dispatch_write_state(dispatch_t *d, item_t *it)
{
    char *s = dispatch_item_state(it, it->ep ? it->ep->url : NULL);
    json_object_set_new(d->pending_writes, it->sid, json_string(s));
    free(s);
    dispatch_flush_soon(d);
}

/* ---------------------------------------------------------------- alerts and the bus */

void dispatch_alert(dispatch_t *d, const char *shop, const char *kind, const char *summary)
{
    int64_t now = kf_wall_ms();
    char id[160];
    snprintf(id, sizeof(id), "dispatch-%s-%s-%lld", kind, shop, (long long)now);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "topic",
                          "action.alert", "event_id", id, "shop_id", shop, "alert_id", id, "kind",
                          kind, "severity", "high", "summary", summary, "reason", kind,
                          "occurred_at", (json_int_t)now, "fact_at", (json_int_t)now);
    json_object_set_new(o, "worker", json_string("kefu-dispatch"));
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    kf_redis_cmd(d->redis, NULL, NULL,
                 "XADD kefu:actions MAXLEN ~ 1000000 * t action.alert id %s j %s", id, j);
    char err[256];
    kf_env_t *env = kf_json_parse_event(j, strlen(j), "action.alert", err, sizeof(err));
    if (env) {
        size_t len;
        uint8_t *buf = kf_env_pack(env, &len);
        const void *parts[2] = {"action.alert", buf};
        size_t lens[2] = {12, len};
        kf_bus_send(d->pub, parts, lens, 2);
        free(buf);
        kf_env_free(env);
    } else {
        kf_log_err("alert %s: %s", id, err);
    }
    free(j);
}

static void s_on_bus(kf_bus_t *bus, zmq_msg_t *parts, size_t nparts, size_t total, void *arg)
{
    dispatch_t *d = arg;
    if (nparts != 2 || total != 2)
        return;
    char topic[64];
    size_t tl = zmq_msg_size(&parts[0]);
    if (tl >= sizeof(topic))
        return;
    memcpy(topic, zmq_msg_data(&parts[0]), tl);
    topic[tl] = '\0';
    kf_reject_t why;
    char err[256];
    kf_env_t *env = kf_proto_decode(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), topic,
                                    16 << 20, &why, err, sizeof(err));
    if (!env)
        return;
    if (env->shop_config && env->shop_id) {
        size_t len = kefu__v1__shop_config__get_packed_size(env->shop_config);
        uint8_t *buf = kf_xmalloc(len ? len : 1);
        kefu__v1__shop_config__pack(env->shop_config, buf);
        if (kf_shops_set(d->shops, env->shop_id, buf, len, err, sizeof(err)) != KF_OK)
            kf_log_warn("shop.config of %s: %s", env->shop_id, err);
        free(buf);
    }
    kf_env_free(env);
}

/* ---------------------------------------------------------------- start, stop */

int dispatch_redis_start(dispatch_t *d, char *err, size_t errlen)
{
    char *password = NULL;
    const kf_conf_t *c = d->conf;
    if (c->redis_password_file && *c->redis_password_file &&
        !(password = kf_cfg_read_secret(c->redis_password_file, err, errlen)))
        return KF_ERR;
    d->redis = kf_redis_new(d->base, c->redis_url, password, err, errlen);
    d->reader = d->redis ? kf_redis_new(d->base, c->redis_url, password, err, errlen) : NULL;
    free(password);
    if (!d->reader)
        return KF_ERR;
    kf_redis_set_connect_timeout(d->redis, c->redis_timeout_ms);
    kf_redis_set_connect_timeout(d->reader, c->redis_timeout_ms);
    kf_redis_on_state(d->reader, s_on_reader_state, d);
    kf_redis_on_state(d->redis, s_on_redis_state, d);
    d->flush_ev = event_new(d->base, -1, 0, s_flush, d);
    event_priority_set(d->flush_ev, 2);
    d->claim_ev = event_new(d->base, -1, EV_PERSIST, s_on_claim_tick, d);
    long long ms = d->dc->claim_idle_ms / 2;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(d->claim_ev, &tv);
    void *zctx = kf_daemon_zctx(d->daemon);
    if (!(d->sub = kf_bus_new(d->base, zctx, ZMQ_SUB, (int)c->bus_hwm, err, errlen)) ||
        !(d->pub = kf_bus_new(d->base, zctx, ZMQ_PUB, (int)c->bus_hwm, err, errlen)) ||
        kf_bus_connect(d->sub, c->bus_subscribe, err, errlen) != KF_OK ||
        kf_bus_connect(d->pub, c->bus_publish, err, errlen) != KF_OK)
        return KF_ERR;
    zmq_setsockopt(kf_bus_socket(d->sub), ZMQ_SUBSCRIBE, "shop.config", 11);
    kf_bus_on_recv(d->sub, s_on_bus, NULL, d);
    return KF_OK;
}

void dispatch_redis_stop(dispatch_t *d)
{
    d->stopping = true;
    if (d->flush_ev)
        event_active(d->flush_ev, EV_TIMEOUT, 0);
    s_stop_if_done(d);
}
