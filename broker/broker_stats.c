/* kefu-broker: counters, the fleet view from heartbeats, /stats JSON and /metrics (with the
 * campaigns of workers/crm-care/crm_care_broker.c and the delivery statistics of broker_dispatch.c). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "kf_clock.h"
#include "kf_journal.h"
#include "kf_log.h"
#include "kf_stats.h"
#include "kf_util.h"

#define FLEET_MAX 1024

/* ------------------------------------------------------------------ fleet */

static fleet_entry_t *s_fleet_find(broker_t *b, const char *daemon, const char *instance)
{
    for (size_t i = 0; i < b->nfleet; i++)
        if (!strcmp(b->fleet[i].daemon, daemon) && !strcmp(b->fleet[i].instance, instance))
            return &b->fleet[i];
    if (b->nfleet < FLEET_MAX) {
        b->fleet = kf_xrealloc(b->fleet, (b->nfleet + 1) * sizeof(fleet_entry_t));
        fleet_entry_t *e = &b->fleet[b->nfleet++];
        memset(e, 0, sizeof(*e));
        return e;
    }
    size_t oldest = 0; /* full: reuse the entry seen longest ago */
    for (size_t i = 1; i < b->nfleet; i++)
        if (b->fleet[i].last_seen_mono < b->fleet[oldest].last_seen_mono)
            oldest = i;
    broker_dispatch_forget(&b->fleet[oldest]);
    memset(&b->fleet[oldest], 0, sizeof(fleet_entry_t));
    return &b->fleet[oldest];
}

void broker_fleet_beat(broker_t *b, const kf_env_t *env)
{
    const Kefu__V1__Heartbeat *hb = env->sys_heartbeat;
    const char *instance = hb->instance ? hb->instance : "0";
    fleet_entry_t *e = s_fleet_find(b, hb->daemon, instance);
    bool was_dead = e->last_seen_mono == 0 ||
                    kf_mono_ms() - e->last_seen_mono >
                        b->bconf->dead_after_beats * b->conf->heartbeat_ms;
    snprintf(e->daemon, sizeof(e->daemon), "%s", hb->daemon);
    snprintf(e->instance, sizeof(e->instance), "%s", instance);
    snprintf(e->version, sizeof(e->version), "%s", hb->version ? hb->version : "");
    e->pid = hb->pid;
    e->uptime_s = hb->uptime_s;
    e->processed = hb->processed;
    e->errors = hb->errors;
    e->lag = hb->lag;
    e->timers_pending = hb->timers_pending;
    e->applied_seq = hb->applied_seq;
    e->nreasons = 0;
    for (size_t i = 0; i < hb->n_error_reasons && e->nreasons < 16; i++) {
        const Kefu__V1__ReasonCount *r = hb->error_reasons[i];
        if (!r->reason || !*r->reason)
            continue;
        snprintf(e->reasons[e->nreasons].name, sizeof(e->reasons[0].name), "%s", r->reason);
        e->reasons[e->nreasons++].n = r->n;
    }
    broker_dispatch_keep(e, hb);
    e->last_seen_mono = kf_mono_ms();
    if (was_dead)
        kf_log_notice("fleet: %s/%s (pid %d) is alive", e->daemon, e->instance, e->pid);
}

bool broker_fleet_alive(broker_t *b, const fleet_entry_t *e)
{
    return kf_mono_ms() - e->last_seen_mono <= b->bconf->dead_after_beats * b->conf->heartbeat_ms;
}

void broker_fleet_free(broker_t *b)
{
    for (size_t i = 0; i < b->nfleet; i++)
        broker_dispatch_forget(&b->fleet[i]);
    free(b->fleet);
    b->fleet = NULL;
    b->nfleet = 0;
}

/* ------------------------------------------------------------------ /stats */

static json_t *s_totals(broker_t *b)
{
    uint64_t acc = 0, out = 0, bytes = 0, dup = 0, rej = 0;
    for (int i = 0; i < BROKER_NTOPICS; i++) {
        acc += b->topics[i].accepted;
        out += b->topics[i].out;
        bytes += b->topics[i].bytes;
        dup += b->topics[i].duplicates;
    }
    for (int r = 1; r < KF_REJ__COUNT; r++)
        rej += b->rejects[r];
    return json_pack("{sI sI sI sI sI sI sI sI}", "in", (json_int_t)b->in_total, "accepted",
                     (json_int_t)acc, "out", (json_int_t)out, "bytes_in", (json_int_t)bytes,
                     "duplicates", (json_int_t)dup, "rejected", (json_int_t)rej, "dropped",
                     (json_int_t)b->dropped, "errors", (json_int_t)b->confirmed_errors);
}

static json_t *s_topics(broker_t *b)
{
    json_t *o = json_object();
    for (int i = 0; i < BROKER_NTOPICS; i++) {
        topic_stats_t *t = &b->topics[i];
        json_object_set_new(o, kf_proto_topics[i],
                            json_pack("{sI sI sI sI sI sI}", "in", (json_int_t)t->in, "accepted",
                                      (json_int_t)t->accepted, "out", (json_int_t)t->out, "bytes",
                                      (json_int_t)t->bytes, "duplicates",
                                      (json_int_t)t->duplicates, "rejected",
                                      (json_int_t)t->rejected));
    }
    return o;
}

static json_t *s_fleet(broker_t *b)
{
    json_t *a = json_array();
    int64_t now = kf_mono_ms();
    for (size_t i = 0; i < b->nfleet; i++) {
        fleet_entry_t *e = &b->fleet[i];
        json_array_append_new(
            a, json_pack("{ss ss si ss sI sb sI sI sI sI sI sI}", "daemon", e->daemon, "instance",
                         e->instance, "pid", (int)e->pid, "version", e->version, "uptime_s",
                         (json_int_t)e->uptime_s, "alive", broker_fleet_alive(b, e), "age_ms",
                         (json_int_t)(now - e->last_seen_mono), "processed",
                         (json_int_t)e->processed, "errors", (json_int_t)e->errors, "lag",
                         (json_int_t)e->lag, "timers_pending", (json_int_t)e->timers_pending,
                         "applied_seq", (json_int_t)e->applied_seq));
        json_t *by = json_object();
        for (size_t k = 0; k < e->nreasons; k++)
            json_object_set_new(by, e->reasons[k].name, json_integer((json_int_t)e->reasons[k].n));
        json_object_set_new(json_array_get(a, json_array_size(a) - 1), "errors_by_reason", by);
    }
    return a;
}

char *broker_stats_json(broker_t *b)
{
    char now[40];
    kf_time_format(kf_wall_ms(), 480, now, sizeof(now));
    json_t *rej = json_object();
    for (int r = 1; r < KF_REJ__COUNT; r++)
        json_object_set_new(rej, kf_reject_name((kf_reject_t)r), json_integer((json_int_t)b->rejects[r]));
    uint64_t dup = 0;
    for (int i = 0; i < BROKER_NTOPICS; i++)
        dup += b->topics[i].duplicates;
    json_t *o = json_pack(
        "{ss ss si sI ss s{sb sI sI} s{sI sI sI} so so sI so sI sI sI so so so}", "daemon",
        "kefu-broker", "version", KEFU_VERSION, "pid", (int)getpid(), "uptime_s",
        (json_int_t)((kf_mono_ms() - b->started_mono) / 1000), "now", now, "redis", "connected",
        kf_redis_ready(b->redis), "reconnects", (json_int_t)kf_redis_reconnects(b->redis),
        "inflight", (json_int_t)b->inflight, "journal", "seq", (json_int_t)b->journal_seq,
        "length", (json_int_t)b->journal_len, "maxlen", (json_int_t)b->bconf->journal_maxlen,
        "totals", s_totals(b), "rejects", rej, "duplicates", (json_int_t)dup, "topics",
        s_topics(b), "subscribers", (json_int_t)b->subscribers, "publishers",
        (json_int_t)b->publishers, "subscriptions", (json_int_t)b->subscriptions, "fleet",
        s_fleet(b), "campaigns", broker_campaigns_json(b), "dispatch", broker_dispatch_json(b));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *line = kf_xasprintf("%s\n", text);
    free(text);
    return line;
}

/* ------------------------------------------------------------------ /metrics */

static void s_topic_metric(kf_text_t *t, broker_t *b, const char *name, const char *help,
                           size_t off)
{
    kf_stats_family(t, name, "counter", help);
    for (int i = 0; i < BROKER_NTOPICS; i++) {
        const char *labels[] = {"topic", kf_proto_topics[i], NULL};
        kf_stats_sample_u64(t, name, labels, *(uint64_t *)((char *)&b->topics[i] + off));
    }
}

static void s_fleet_metrics(kf_text_t *t, broker_t *b)
{
    kf_stats_family(t, "kefu_fleet_up", "gauge", "1 while the daemon's heartbeats arrive");
    for (size_t i = 0; i < b->nfleet; i++) {
        const char *l[] = {"daemon", b->fleet[i].daemon, "instance", b->fleet[i].instance, NULL};
        kf_stats_sample(t, "kefu_fleet_up", l, broker_fleet_alive(b, &b->fleet[i]));
    }
    kf_stats_family(t, "kefu_fleet_lag", "gauge", "events behind the journal head");
    for (size_t i = 0; i < b->nfleet; i++) {
        const char *l[] = {"daemon", b->fleet[i].daemon, "instance", b->fleet[i].instance, NULL};
        kf_stats_sample(t, "kefu_fleet_lag", l, (double)b->fleet[i].lag);
    }
    kf_stats_family(t, "kefu_fleet_processed_total", "counter", "events processed by the daemon");
    for (size_t i = 0; i < b->nfleet; i++) {
        const char *l[] = {"daemon", b->fleet[i].daemon, "instance", b->fleet[i].instance, NULL};
        kf_stats_sample_u64(t, "kefu_fleet_processed_total", l, b->fleet[i].processed);
    }
    kf_stats_family(t, "kefu_fleet_errors_total", "counter",
                    "events a daemon could not apply, by reason");
    for (size_t i = 0; i < b->nfleet; i++)
        for (size_t k = 0; k < b->fleet[i].nreasons; k++) {
            const char *l[] = {"daemon", b->fleet[i].daemon, "instance", b->fleet[i].instance,
                               "reason", b->fleet[i].reasons[k].name, NULL};
            kf_stats_sample_u64(t, "kefu_fleet_errors_total", l, b->fleet[i].reasons[k].n);
        }
}

static void s_one(kf_text_t *t, const char *name, const char *type, const char *help, double v)
{
    kf_stats_family(t, name, type, help);
    kf_stats_sample(t, name, NULL, v);
}

char *broker_stats_prometheus(broker_t *b)
{
    kf_text_t t = {0};
    s_topic_metric(&t, b, "kefu_broker_events_in_total", "events received, by topic",
                   offsetof(topic_stats_t, in));
    s_topic_metric(&t, b, "kefu_broker_events_accepted_total", "events journaled, by topic",
                   offsetof(topic_stats_t, accepted));
    s_topic_metric(&t, b, "kefu_broker_events_out_total", "events published on XPUB, by topic",
                   offsetof(topic_stats_t, out));
    s_topic_metric(&t, b, "kefu_broker_bytes_in_total", "bytes received, by topic",
                   offsetof(topic_stats_t, bytes));
    s_topic_metric(&t, b, "kefu_broker_duplicates_total", "events answered duplicate, by topic",
                   offsetof(topic_stats_t, duplicates));
    kf_stats_family(&t, "kefu_broker_rejects_total", "counter", "events rejected, by reason");
    for (int r = 1; r < KF_REJ__COUNT; r++) {
        const char *labels[] = {"reason", kf_reject_name((kf_reject_t)r), NULL};
        kf_stats_sample_u64(&t, "kefu_broker_rejects_total", labels, b->rejects[r]);
    }
    s_one(&t, "kefu_broker_received_total", "counter", "messages received on any door",
          (double)b->in_total);
    s_one(&t, "kefu_broker_dropped_total", "counter",
          "fire-and-forget events dropped: Redis unavailable, or max_inflight events in flight", (double)b->dropped);
    s_one(&t, "kefu_broker_confirm_errors_total", "counter",
          "confirmed publishes answered with an error", (double)b->confirmed_errors);
    s_one(&t, "kefu_broker_journal_seq", "gauge", "last sequence number assigned",
          (double)b->journal_seq);
    s_one(&t, "kefu_broker_journal_length", "gauge", "events kept in kefu:journal",
          (double)b->journal_len);
    s_one(&t, "kefu_broker_inflight", "gauge", "events awaiting the journal step",
          (double)b->inflight);
    s_one(&t, "kefu_broker_subscribers", "gauge", "connected subscribers (XPUB peers)",
          (double)b->subscribers);
    s_one(&t, "kefu_broker_publishers", "gauge", "connected publishers (XSUB+ROUTER peers)",
          (double)b->publishers);
    s_one(&t, "kefu_broker_redis_up", "gauge", "1 while Redis is connected",
          kf_redis_ready(b->redis));
    s_one(&t, "kefu_broker_redis_reconnects_total", "counter", "Redis reconnections",
          (double)kf_redis_reconnects(b->redis));
    s_fleet_metrics(&t, b);
    broker_campaigns_metrics(b, &t);
    broker_dispatch_metrics(b, &t);
    return kf_text_take(&t);
}

/* ------------------------------------------------------------------ peers */

static void s_on_monitor(kf_bus_t *bus, zmq_msg_t *parts, size_t n, size_t total, void *arg)
{
    int64_t *counter = arg;
    if (n < 1 || zmq_msg_size(&parts[0]) < 6)
        return;
    uint16_t ev;
    memcpy(&ev, zmq_msg_data(&parts[0]), sizeof(ev));
    if (ev == ZMQ_EVENT_ACCEPTED)
        (*counter)++;
    else if (ev == ZMQ_EVENT_DISCONNECTED && *counter > 0)
        (*counter)--;
}

static int s_monitor(broker_t *b, kf_bus_t *target, kf_bus_t **mon, const char *name,
                     int64_t *counter, char *err, size_t errlen)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://monitor-%s", name);
    if (zmq_socket_monitor(kf_bus_socket(target), ep,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
        snprintf(err, errlen, "zmq_socket_monitor: %s", zmq_strerror(errno));
        return KF_ERR;
    }
    *mon = kf_bus_new(b->base, kf_daemon_zctx(b->daemon), ZMQ_PAIR, 1000, err, errlen);
    if (!*mon || kf_bus_connect(*mon, ep, err, errlen))
        return KF_ERR;
    kf_bus_on_recv(*mon, s_on_monitor, NULL, counter);
    return KF_OK;
}

static void s_on_seq(kf_redis_t *r, redisReply *reply, void *arg)
{
    broker_t *b = arg;
    if (reply && reply->type == REDIS_REPLY_STRING)
        b->journal_seq = strtoll(reply->str, NULL, 10);
}

/* The journal's first entry: the length in events is from its first seq to kefu:seq (an
 * entry holds a run of events, kf_journal.h; the reply to GET kefu:seq came just before). */
static void s_on_first(kf_redis_t *r, redisReply *reply, void *arg)
{
    broker_t *b = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    kf_journal_iter_t it;
    if (reply->elements == 0)
        b->journal_len = 0;
    else if (kf_journal_open(reply->element[0], &it) == KF_OK)
        b->journal_len = b->journal_seq >= (int64_t)it.first
                             ? b->journal_seq - (int64_t)it.first + 1 : 0;
}

/* Two commands, one write: hiredis pipelines what is issued in the same loop pass. */
static void s_on_refresh(evutil_socket_t fd, short what, void *arg)
{
    broker_t *b = arg;
    if (kf_redis_ready(b->redis)) {
        kf_redis_cmd(b->redis, s_on_seq, b, "GET kefu:seq");
        kf_redis_cmd(b->redis, s_on_first, b, "XRANGE " KF_JOURNAL_KEY " - + COUNT 1");
    }
}

int broker_monitor_start(broker_t *b, char *err, size_t errlen)
{
    if (s_monitor(b, b->xpub, &b->mon_xpub, "xpub", &b->subscribers, err, errlen) ||
        s_monitor(b, b->xsub, &b->mon_xsub, "xsub", &b->publishers, err, errlen) ||
        s_monitor(b, b->router, &b->mon_router, "router", &b->publishers, err, errlen))
        return KF_ERR;
    b->refresh_ev = event_new(b->base, -1, EV_PERSIST, s_on_refresh, b);
    long long ms = b->bconf->stats_refresh_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(b->refresh_ev, &tv);
    return KF_OK;
}
