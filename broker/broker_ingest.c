/* kefu-broker: the three doors, the journal step and the fan-out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "kf_log.h"
#include "kf_util.h"

extern const char kf_lua_broker_journal[];

/* A journal step in flight: the items it carries and the argv Redis may need to re-send. */
typedef struct {
    broker_t *b;
    item_t **items;
    size_t n;
    const char **argv;
    size_t *argvlen;
    char ttl[24], maxlen[24], window[24];
    uint8_t *heads; /* per event: its journal record's head (S_HEAD_MAX bytes each) */
    char (*buckets)[8]; /* per event: its door dedup bucket (decimal) */
} step_t;

/* A journal record's head: varint topic length, the topic, varint envelope length. */
enum { S_HEAD_MAX = 10 + 72 + 10 };

int broker_topic_index(const char *topic)
{
    for (int i = 0; kf_proto_topics[i]; i++)
        if (strcmp(kf_proto_topics[i], topic) == 0)
            return i;
    return -1;
}

item_t *broker_item_new(item_kind_t kind)
{
    item_t *it = kf_xcalloc(1, sizeof(*it));
    it->kind = kind;
    it->topic = -1;
    return it;
}

static void s_item_free(item_t *it)
{
    for (int i = 0; i < it->nroute; i++)
        zmq_msg_close(&it->route[i]);
    free(it->event_id);
    free(it->bytes);
    free(it->detail);
    free(it);
}

/* The answer of it (detail: malloc'd, or NULL). */
static void s_resolve(item_t *it, int http_code, reply_t reply, uint64_t seq, kf_reject_t why,
                      char *detail)
{
    free(it->detail);
    it->reply = reply;
    it->seq = seq;
    it->why = why;
    it->detail = detail;
    it->http_code = http_code;
    it->resolved = true;
}

char *broker_reply_text(const item_t *it)
{
    const char *id = it->event_id && *it->event_id ? it->event_id : "-";
    switch (it->reply) {
    case REPLY_OK:
        return kf_xasprintf("ok %llu %s", (unsigned long long)it->seq, id);
    case REPLY_DUPLICATE:
        return kf_xasprintf("duplicate %llu %s", (unsigned long long)it->seq, id);
    case REPLY_REJECTED:
        return kf_xasprintf("rejected %s %s: %s", kf_reject_name(it->why), id,
                            it->detail ? it->detail : "");
    default:
        return kf_xasprintf("error %s: %s", id, it->detail ? it->detail : "");
    }
}

/* Replies leave in arrival order, so a client may pipeline and match them FIFO. */
void broker_flush_replies(broker_t *b)
{
    item_t *it;
    while ((it = TAILQ_FIRST(&b->pending)) && it->resolved) {
        TAILQ_REMOVE(&b->pending, it, order);
        b->npending--;
        if (it->kind == ITEM_ZMQ) {
            char *text = broker_reply_text(it);
            const void *parts[1] = {text};
            size_t lens[1] = {strlen(text)};
            if (kf_bus_send_msgs(b->router, it->route, (size_t)it->nroute, parts, lens, 1))
                kf_log_debug("reply to a publisher that is gone: %s", zmq_strerror(errno));
            free(text);
        } else if (it->kind == ITEM_HTTP) {
            broker_http_reply(b, it);
        }
        s_item_free(it);
    }
}

static void s_count_reject(broker_t *b, int topic, kf_reject_t why)
{
    b->rejects[why]++;
    if (topic >= 0)
        b->topics[topic].rejected++;
}

void broker_reject(broker_t *b, item_t *it, kf_reject_t why, const char *detail)
{
    s_count_reject(b, it->topic, why);
    kf_log_info("rejected %s: %s", kf_reject_name(why), detail);
    if (it->kind == ITEM_FIRE) {
        s_item_free(it);
        return;
    }
    s_resolve(it, why == KF_REJ_OVERSIZED ? 413 : 400, REPLY_REJECTED, 0, why,
              kf_xstrdup(detail));
    broker_flush_replies(b);
}

static void s_flush(broker_t *b);

void broker_submit(broker_t *b, item_t *it, const void *data, size_t len, const char *topic,
                   kf_env_t *env)
{
    it->topic = broker_topic_index(topic);
    free(it->event_id);
    it->event_id = kf_xstrdup(env->event_id);
    kf_fingerprint(it->event_id, it->fp);
    it->bytes = kf_xmalloc(len + 24); /* room for published_at and seq appended */
    memcpy(it->bytes, data, len);
    it->len = len;
    if (!env->has_published_at) { /* field 5, varint */
        it->bytes[it->len++] = 0x28;
        it->len += kf_varint_put(it->bytes + it->len, (uint64_t)kf_wall_ms());
    }
    b->batch[b->nbatch++] = it;
    if (b->nbatch >= (size_t)b->bconf->batch)
        s_flush(b);
    else
        event_active(b->flush_ev, EV_TIMEOUT, 0);
}

static void s_publish(broker_t *b, item_t *it, uint64_t seq)
{
    it->bytes[it->len] = 0x30; /* field 6 (seq), varint: last one wins on decode */
    size_t n = it->len + 1 + kf_varint_put(it->bytes + it->len + 1, seq);
    const char *topic = kf_proto_topics[it->topic];
    const void *parts[2] = {topic, it->bytes};
    size_t lens[2] = {strlen(topic), n};
    if (kf_bus_send(b->xpub, parts, lens, 2) == KF_OK)
        b->topics[it->topic].out++;
}

/* Back-pressure. The confirm door (ROUTER, and HTTP) stops being read at max_inflight: its
 * clients wait for an answer and re-send. The PUB door cannot push back without its publishers'
 * sockets dropping what they cannot queue, uncounted, so it keeps being read and sheds what the
 * broker cannot journal now (s_on_xsub), counted as dropped. */
static void s_update_flow(broker_t *b)
{
    size_t cap = (size_t)b->bconf->max_inflight;
    bool want_pause = b->stopping || b->inflight >= cap || b->npending >= cap;
    if (want_pause != b->paused) {
        b->paused = want_pause;
        kf_bus_pause(b->router, want_pause);
        if (b->stopping)
            kf_bus_pause(b->xsub, true);
        else
            kf_log_notice("%s the confirm door: %zu events in flight",
                          want_pause ? "pausing" : "resuming", b->inflight);
    }
    if (b->shedding && b->inflight < cap) {
        kf_log_warn("PUB door: dropped %llu fire-and-forget events ([broker] max_inflight = %d "
                    "were in flight); taking them again", (unsigned long long)b->shedding,
                    (int)b->bconf->max_inflight);
        b->shedding = 0;
    }
    if (b->stopping && b->inflight == 0 && b->nbatch == 0 && TAILQ_EMPTY(&b->pending))
        kf_daemon_exit(b->daemon, 0);
}

/* The outcome of one event of a journal step. */
static void s_settle(broker_t *b, item_t *it, const redisReply *r, const char *failure)
{
    if (failure) {
        if (it->kind == ITEM_FIRE) {
            b->dropped++;
            s_item_free(it);
        } else {
            b->confirmed_errors++;
            s_resolve(it, 503, REPLY_ERROR, 0, KF_REJ_NONE, kf_xstrdup(failure));
        }
        return;
    }
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (v > 0) {
        b->topics[it->topic].accepted++;
        s_publish(b, it, (uint64_t)v);
        if (it->kind != ITEM_FIRE)
            s_resolve(it, 200, REPLY_OK, (uint64_t)v, KF_REJ_NONE, NULL);
    } else {
        b->topics[it->topic].duplicates++;
        if (it->kind != ITEM_FIRE)
            s_resolve(it, 200, REPLY_DUPLICATE, (uint64_t)-v, KF_REJ_NONE, NULL);
    }
    if (it->kind == ITEM_FIRE)
        s_item_free(it);
}

static void s_on_step(kf_redis_t *r, redisReply *reply, void *arg)
{
    step_t *st = arg;
    broker_t *b = st->b;
    char failure[160] = "";
    if (!reply)
        snprintf(failure, sizeof(failure), "redis unavailable: connection lost before the "
                 "journal step was confirmed");
    else if (reply->type == REDIS_REPLY_ERROR)
        snprintf(failure, sizeof(failure), "journal step failed: %.120s", reply->str);
    else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != st->n)
        snprintf(failure, sizeof(failure), "journal step: unexpected reply from redis");
    if (failure[0])
        kf_log_err("%s (%zu events)", failure, st->n);
    for (size_t i = 0; i < st->n; i++)
        s_settle(b, st->items[i], failure[0] ? NULL : reply->element[i],
                 failure[0] ? failure : NULL);
    b->inflight -= st->n;
    free(st->items);
    free(st->argv);
    free(st->argvlen);
    free(st->heads);
    free(st->buckets);
    free(st);
    broker_flush_replies(b);
    s_update_flow(b);
}

static void s_fail_batch(broker_t *b, item_t **items, size_t n, const char *why)
{
    for (size_t i = 0; i < n; i++)
        s_settle(b, items[i], NULL, why);
    broker_flush_replies(b);
}

static void s_flush(broker_t *b)
{
    size_t n = b->nbatch;
    if (n == 0)
        return;
    b->nbatch = 0;
    step_t *st = kf_xcalloc(1, sizeof(*st));
    st->b = b;
    st->n = n;
    st->items = kf_xmalloc(n * sizeof(item_t *));
    memcpy(st->items, b->batch, n * sizeof(item_t *));
    if (!kf_redis_ready(b->redis)) {
        s_fail_batch(b, st->items, n, "redis unavailable: event not journaled");
        free(st->items);
        free(st);
        return;
    }
    enum { FIXED = 5 };
    size_t argc = FIXED + 4 * n;
    st->argv = kf_xmalloc(argc * sizeof(char *));
    st->argvlen = kf_xmalloc(argc * sizeof(size_t));
    st->heads = kf_xmalloc(n * S_HEAD_MAX);
    st->buckets = kf_xmalloc(n * sizeof(*st->buckets));
    long long ttl = b->bconf->dedup_window_s;
    snprintf(st->ttl, sizeof(st->ttl), "%lld", ttl);
    snprintf(st->maxlen, sizeof(st->maxlen), "%lld", b->bconf->journal_maxlen);
    snprintf(st->window, sizeof(st->window), "%lld", (long long)(kf_wall_ms() / 1000) / ttl);
    const char *fixed[FIXED] = {"kefu:seq", "kefu:journal", st->ttl, st->maxlen, st->window};
    for (size_t i = 0; i < FIXED; i++) {
        st->argv[i] = fixed[i];
        st->argvlen[i] = strlen(fixed[i]);
    }
    for (size_t i = 0; i < n; i++) {
        item_t *it = st->items[i];
        const char *topic = kf_proto_topics[it->topic];
        size_t tl = strlen(topic);
        uint8_t *h = st->heads + i * S_HEAD_MAX;
        size_t hl = kf_varint_put(h, tl);
        memcpy(h + hl, topic, tl);
        hl += tl;
        hl += kf_varint_put(h + hl, it->len);
        /* the bucket: the fingerprint's first two bytes, big-endian, modulo the buckets */
        unsigned bucket = (((unsigned)(uint8_t)it->fp[0] << 8) | (uint8_t)it->fp[1]) %
                          BROKER_PUBID_BUCKETS;
        snprintf(st->buckets[i], sizeof(st->buckets[i]), "%u", bucket);
        const char *v[4] = {it->fp, st->buckets[i], (const char *)h, (const char *)it->bytes};
        size_t l[4] = {sizeof(it->fp), strlen(st->buckets[i]), hl, it->len};
        memcpy(&st->argv[FIXED + 4 * i], v, sizeof(v));
        memcpy(&st->argvlen[FIXED + 4 * i], l, sizeof(l));
    }
    if (kf_redis_eval(b->redis, b->journal_script, 2, (int)argc, st->argv, st->argvlen, s_on_step,
                      st) != KF_OK) {
        s_fail_batch(b, st->items, n, "redis unavailable: event not journaled");
        free(st->items);
        free(st->argv);
        free(st->argvlen);
        free(st->heads);
        free(st->buckets);
        free(st);
        return;
    }
    b->inflight += n;
    s_update_flow(b);
}

static void s_on_flush(evutil_socket_t fd, short what, void *arg)
{
    broker_t *b = arg;
    s_flush(b);
    if (b->stopping)
        s_update_flow(b);
}

/* ------------------------------------------------------------------ the doors */

/* Copies a topic frame into buf; false when it is not a plausible topic string. */
static bool s_topic_frame(zmq_msg_t *m, char *buf, size_t len)
{
    size_t n = zmq_msg_size(m);
    if (n == 0 || n >= len || memchr(zmq_msg_data(m), '\0', n))
        return false;
    memcpy(buf, zmq_msg_data(m), n);
    buf[n] = '\0';
    return kf_utf8_valid(buf, n);
}

/* Validates [topic][envelope] and routes the event. */
static void s_take(broker_t *b, item_t *it, zmq_msg_t *frames, size_t nframes)
{
    char topic[72], err[256];
    b->in_total++;
    if (nframes != 2) {
        snprintf(err, sizeof(err), "expected 2 frames [topic][envelope], got %zu", nframes);
        broker_reject(b, it, KF_REJ_FRAMES, err);
        return;
    }
    if (!s_topic_frame(&frames[0], topic, sizeof(topic))) {
        broker_reject(b, it, KF_REJ_UNKNOWN_TOPIC, "topic frame is not a topic name");
        return;
    }
    it->topic = broker_topic_index(topic);
    if (it->topic >= 0) {
        b->topics[it->topic].in++;
        b->topics[it->topic].bytes += zmq_msg_size(&frames[1]);
    }
    if (it->kind != ITEM_FIRE) { /* the answer names the event, even one that is rejected */
        char id[KF_EVENT_ID_PEEK_MAX];
        if (kf_proto_peek_event_id(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), id,
                                   sizeof(id)))
            it->event_id = kf_xstrdup(id);
    }
    kf_reject_t why;
    kf_env_t *env = kf_proto_decode(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), topic,
                                    (size_t)b->bconf->max_event_bytes, &why, err, sizeof(err));
    if (!env) {
        broker_reject(b, it, why, err);
        return;
    }
    if (kf_proto_topic_is_out(topic)) { /* not journaled: forwarded live, seq 0 */
        if (env->payload_case == KEFU__V1__ENVELOPE__PAYLOAD_SYS_HEARTBEAT)
            broker_fleet_beat(b, env);
        const void *parts[2] = {topic, zmq_msg_data(&frames[1])};
        size_t lens[2] = {strlen(topic), zmq_msg_size(&frames[1])};
        if (kf_bus_send(b->xpub, parts, lens, 2) == KF_OK)
            b->topics[it->topic].out++;
        b->topics[it->topic].accepted++;
        if (it->kind != ITEM_FIRE)
            s_resolve(it, 200, REPLY_OK, 0, KF_REJ_NONE, NULL);
        else
            s_item_free(it);
        broker_flush_replies(b);
    } else {
        broker_submit(b, it, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), topic, env);
    }
    kf_env_free(env);
}

static void s_on_xsub(kf_bus_t *bus, zmq_msg_t *parts, size_t n, size_t total, void *arg)
{
    broker_t *b = arg;
    char topic[72];
    if (b->inflight + b->nbatch >= (size_t)b->bconf->max_inflight && /* see s_update_flow */
        !(n >= 1 && s_topic_frame(&parts[0], topic, sizeof(topic)) &&
          kf_proto_topic_is_out(topic))) { /* what is not journaled needs no Redis */
        b->in_total++;
        b->dropped++;
        if (b->shedding++ == 0)
            kf_log_warn("PUB door: %zu events in flight ([broker] max_inflight): dropping "
                        "fire-and-forget events until Redis catches up", b->inflight + b->nbatch);
        return;
    }
    s_take(b, broker_item_new(ITEM_FIRE), parts, total == n ? n : total);
}

static void s_on_router(kf_bus_t *bus, zmq_msg_t *parts, size_t n, size_t total, void *arg)
{
    broker_t *b = arg;
    if (n < 1)
        return;
    item_t *it = broker_item_new(ITEM_ZMQ);
    it->nroute = (n >= 2 && zmq_msg_size(&parts[1]) == 0) ? 2 : 1; /* REQ adds a delimiter */
    for (int i = 0; i < it->nroute; i++) {
        zmq_msg_init(&it->route[i]);
        zmq_msg_copy(&it->route[i], &parts[i]);
    }
    TAILQ_INSERT_TAIL(&b->pending, it, order);
    b->npending++;
    size_t rest = n - (size_t)it->nroute;
    s_take(b, it, parts + it->nroute, total == n ? rest : total - (size_t)it->nroute);
}

static void s_on_xpub(kf_bus_t *bus, zmq_msg_t *parts, size_t n, size_t total, void *arg)
{
    broker_t *b = arg;
    if (n >= 1 && zmq_msg_size(&parts[0]) >= 1) {
        uint8_t c = *(uint8_t *)zmq_msg_data(&parts[0]);
        b->subscriptions += c == 1 ? 1 : (c == 0 ? -1 : 0);
    }
}

static int s_open(broker_t *b, kf_bus_t **bus, int type, const char *ep, char *err, size_t len)
{
    *bus = kf_bus_new(b->base, kf_daemon_zctx(b->daemon), type, (int)b->conf->bus_hwm, err, len);
    if (!*bus)
        return KF_ERR;
    if (type != ZMQ_XPUB) { /* the doors queue no more than the broker keeps in flight */
        long long cap = b->bconf->max_inflight < b->conf->bus_hwm ? b->bconf->max_inflight
                                                                   : b->conf->bus_hwm;
        int hwm = (int)cap;
        zmq_setsockopt(kf_bus_socket(*bus), ZMQ_RCVHWM, &hwm, sizeof(hwm));
    }
    return kf_bus_bind(*bus, ep, err, len);
}

int broker_ingest_start(broker_t *b, char *err, size_t errlen)
{
    TAILQ_INIT(&b->pending);
    b->batch = kf_xmalloc((size_t)b->bconf->batch * sizeof(item_t *));
    b->journal_script = kf_redis_script(b->redis, "broker_journal", kf_lua_broker_journal);
    b->flush_ev = event_new(b->base, -1, 0, s_on_flush, b);
    event_priority_set(b->flush_ev, 2);
    if (s_open(b, &b->xpub, ZMQ_XPUB, b->conf->bus_subscribe, err, errlen) ||
        s_open(b, &b->xsub, ZMQ_XSUB, b->conf->bus_publish, err, errlen) ||
        s_open(b, &b->router, ZMQ_ROUTER, b->conf->bus_confirm, err, errlen))
        return KF_ERR;
    int one = 1;
    zmq_setsockopt(kf_bus_socket(b->xpub), ZMQ_XPUB_VERBOSER, &one, sizeof(one));
    uint8_t all = 1; /* XSUB: subscribe to everything */
    zmq_send(kf_bus_socket(b->xsub), &all, 1, 0);
    kf_bus_on_recv(b->xsub, s_on_xsub, NULL, b);
    kf_bus_on_recv(b->router, s_on_router, NULL, b);
    kf_bus_on_recv(b->xpub, s_on_xpub, NULL, b);
    return KF_OK;
}

/* SIGTERM: stop taking work, journal what was taken, answer everyone, then exit. */
void broker_ingest_stop(broker_t *b)
{
    b->stopping = true;
    s_flush(b);
    s_update_flow(b);
}
