/* kefu-broker: accepts events (XSUB fire-and-forget, ROUTER confirmed, HTTP POST),
 * validates them, deduplicates at the door, sequences and journals them in Redis with one
 * Lua step per loop pass, then fans them out on XPUB. Serves stats over HTTP. */
#ifndef BROKER_H
#define BROKER_H

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "kf_bus.h"
#include "kf_cfg.h"
#include "kf_daemon.h"
#include "kf_proto.h"
#include "kf_redis.h"
#include "kf_stats.h"

#define BROKER_NTOPICS 20 /* entries of kf_proto_topics[] */

/* [broker] section */
typedef struct {
    long long max_event_bytes;  /* reject larger events */
    long long dedup_window_s;   /* door dedup window */
    long long journal_maxlen;   /* approximate cap of kefu:journal */
    long long max_inflight;     /* events sent to Redis and unanswered before reading pauses */
    long long batch;            /* events per journal step */
    long long stats_refresh_ms; /* how often journal length/seq are read from Redis */
    long long dead_after_beats; /* heartbeats missed before a daemon is marked dead */
    long long http_max_body;    /* HTTP ingest body limit */
} broker_conf_t;

typedef enum { ITEM_FIRE, ITEM_ZMQ, ITEM_HTTP } item_kind_t;

/* What an event is answered (DESIGN §3.1): each answer names its event, so that a client
 * that pipelines matches answers by event_id, also across a broker restart. */
typedef enum { REPLY_OK, REPLY_DUPLICATE, REPLY_REJECTED, REPLY_ERROR } reply_t;

/* One event on its way through the broker. */
typedef struct item_s {
    item_kind_t kind;
    int topic;                   /* index into kf_proto_topics */
    char *event_id;
    char fp[8];                  /* event_id's fingerprint (kf_fingerprint): the door dedup */
    uint8_t *bytes;              /* the envelope as it will be journaled (without seq) */
    size_t len;
    bool resolved;               /* the answer is known: */
    reply_t reply;
    uint64_t seq;                /* REPLY_OK (0: an output topic, not journaled), DUPLICATE */
    kf_reject_t why;             /* REPLY_REJECTED */
    char *detail;                /* REPLY_REJECTED, REPLY_ERROR */
    int http_code;
    /* ITEM_ZMQ: the ROUTER routing frames (identity, and an empty delimiter for REQ) */
    zmq_msg_t route[2];
    int nroute;
    /* ITEM_HTTP */
    struct evhttp_request *req;
    TAILQ_ENTRY(item_s) order;   /* replies go out in arrival order */
} item_t;

TAILQ_HEAD(item_list, item_s);

typedef struct {
    uint64_t in, accepted, out, bytes, duplicates, rejected;
} topic_stats_t;

typedef struct {
    char daemon[64], instance[32], version[32];
    int32_t pid;
    int64_t uptime_s, lag, timers_pending;
    uint64_t processed, errors, applied_seq;
    int64_t last_seen_mono;
    size_t nreasons;                 /* errors by reason, from the heartbeat */
    struct {
        char name[32];
        uint64_t n;
    } reasons[16];
    /* kefu-dispatch only: the latest DispatchStats, packed (broker_dispatch.c; owned) */
    uint8_t *dispatch;
    size_t dispatch_len;
    bool has_dispatch, dispatch_bad;
} fleet_entry_t;

/* workers/crm-care/crm_care_broker.c: the campaign progress shown in /stats and /metrics (private) */
typedef struct broker_campaigns_s broker_campaigns_t;

#define BROKER_PUBID_BUCKETS 1024 /* door dedup hashes per window (broker_journal.lua) */

typedef struct broker_s {
    kf_daemon_t *daemon;
    kf_conf_t *conf;
    broker_conf_t *bconf;
    struct event_base *base;
    kf_redis_t *redis;
    int journal_script;
    kf_bus_t *xsub, *router, *xpub;
    kf_bus_t *mon_xsub, *mon_router, *mon_xpub;
    struct evhttp *http;
    struct event *flush_ev, *refresh_ev;
    /* the batch being filled in this loop pass */
    item_t **batch;
    size_t nbatch;
    size_t inflight;             /* events in journal steps awaiting Redis */
    struct item_list pending;    /* items that owe a reply, in arrival order */
    size_t npending;
    bool paused, stopping, ready_sent;
    /* stats */
    topic_stats_t topics[BROKER_NTOPICS];
    uint64_t rejects[KF_REJ__COUNT];
    uint64_t in_total, dropped, confirmed_errors;
    uint64_t shedding; /* fire-and-forget events dropped since the PUB door began shedding */
    int64_t subscribers, publishers, subscriptions;
    int64_t journal_seq, journal_len;
    int64_t started_mono;
    fleet_entry_t *fleet;
    size_t nfleet;
    broker_campaigns_t *campaigns;
} broker_t;

extern const kf_cfg_opt_t broker_opts[];
extern const size_t broker_nopts;

/* broker_ingest.c */
int broker_ingest_start(broker_t *b, char *err, size_t errlen);
void broker_ingest_stop(broker_t *b);
/* Takes one event from any door; item is owned by the broker from here on. */
void broker_submit(broker_t *b, item_t *item, const void *data, size_t len, const char *topic,
                   kf_env_t *decoded);
item_t *broker_item_new(item_kind_t kind);
void broker_reject(broker_t *b, item_t *item, kf_reject_t why, const char *detail);
void broker_flush_replies(broker_t *b);
/* The confirm door's one-frame answer: "ok <seq> <event_id>", "duplicate <seq> <event_id>",
 * "rejected <reason> <event_id>: <detail>" or "error <event_id>: <detail>"; the event_id is
 * "-" when the event had none that could be read. malloc'd. */
char *broker_reply_text(const item_t *it);
int broker_topic_index(const char *topic);

/* broker_http.c */
int broker_http_start(broker_t *b, char *err, size_t errlen);
void broker_http_stop(broker_t *b);
void broker_http_reply(broker_t *b, item_t *item);

/* broker_stats.c */
void broker_fleet_beat(broker_t *b, const kf_env_t *env);
/* true while the entry's heartbeats arrive (fewer than dead_after_beats missed) */
bool broker_fleet_alive(broker_t *b, const fleet_entry_t *e);
/* Frees the fleet view (at exit). */
void broker_fleet_free(broker_t *b);
char *broker_stats_json(broker_t *b);
char *broker_stats_prometheus(broker_t *b);
int broker_monitor_start(broker_t *b, char *err, size_t errlen);

/* workers/crm-care/crm_care_broker.c: reads kefu:crm:campaigns and the newest campaigns' progress every
 * stats_refresh_ms; destroy after kf_redis_destroy (or before: a round in flight is freed by
 * its last callback). */
int broker_campaigns_start(broker_t *b, char *err, size_t errlen);
void broker_campaigns_destroy(broker_t *b);
/* The "campaigns" array of /stats (new reference; empty while Redis is down). */
json_t *broker_campaigns_json(broker_t *b);
/* The kefu_campaign_* families of /metrics. */
void broker_campaigns_metrics(broker_t *b, kf_text_t *t);

/* broker_dispatch.c: the delivery statistics of kefu-dispatch (docs/dispatch.md
 * "Observability") from its heartbeats. Keeps a bounded copy of hb->dispatch in e (the decoded
 * heartbeat lives only during the callback); clears it when the heartbeat has none. */
void broker_dispatch_keep(fleet_entry_t *e, const Kefu__V1__Heartbeat *hb);
/* Frees what broker_dispatch_keep kept. */
void broker_dispatch_forget(fleet_entry_t *e);
/* The "dispatch" object of /stats, summed over the live kefu-dispatch instances, or JSON null
 * when none is alive (new reference). */
json_t *broker_dispatch_json(broker_t *b);
/* The kefu_dispatch_* families of /metrics. */
void broker_dispatch_metrics(broker_t *b, kf_text_t *t);

#endif
