/* kefu-dispatch: delivers kefu:actions to the shops' webhooks (DESIGN §3.7, §3.9;
 * docs/dispatch.md is the contract).
 *
 *   dispatch_redis.c  the consumer group: live reads, recovery (own pending entries, XAUTOCLAIM),
 *                     the state, acknowledgement and dead-letter writes, batched per loop pass
 *   dispatch_ep.c     endpoints: one queue, concurrency, rate and pause each; an attempt's
 *                     checks (freshness, hours, opt-out) and outcome (retry, dead, delivered)
 *   dispatch_item.c   an action as dispatch holds it: parsed from its stream entry, its body,
 *                     its durable state JSON; the retry schedule
 *   dispatch_http.c   libcurl's multi interface on the libevent loop
 *   dispatch_stats.c  the heartbeat's DispatchStats
 */
#ifndef DISPATCH_H
#define DISPATCH_H

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kf_bus.h"
#include "kf_cfg.h"
#include "kf_daemon.h"
#include "kf_redis.h"
#include "kf_shop.h"
#include "kf_webhook.h"

#define DISPATCH_GROUP "dispatch"
#define DISPATCH_MAX_SCHEDULE 16
#define DISPATCH_LOG_MAX 10
#define DISPATCH_ITEM_BUCKETS 16384
#define DISPATCH_EP_BUCKETS 1024

typedef struct {
    char *secrets_file;
    char *retry_schedule;
    char *default_url;
    char *consumer;
    char *disable_after;
    long long timeout_ms, concurrency, rate, queue_max, max_queued, read_batch;
    long long claim_idle_ms, dead_maxlen, state_ttl_s;
} dispatch_conf_t;

extern const kf_cfg_opt_t dispatch_opts[];
extern const size_t dispatch_nopts;

typedef struct dispatch_s dispatch_t;
typedef struct ep_s ep_t;
typedef struct item_s item_t;

typedef enum { IT_NEW, IT_READY, IT_WAITING, IT_ACTIVE, IT_DONE } item_where_t;

struct item_s {
    char sid[40];               /* kefu:actions entry id */
    char *topic, *id, *shop, *buyer, *channel; /* channel: contacts only */
    char *j;                    /* the entry's j as stored (for kefu:dead) */
    kf_env_t *env;              /* j parsed, until the body is made (NULL: j does not map) */
    char *bad;                  /* why j does not map (a dead letter at accept) */
    char *body;                 /* the webhook body: flat JSON, DESIGN §2 */
    size_t blen;
    int64_t x;                  /* contacts: fresh until (0: no limit) */
    int64_t emitted;            /* occurred_at (the clock of its emission) */
    int n;                      /* attempts made */
    int code;                   /* last HTTP status, 0: none */
    char err[24];               /* last error word when code is 0 */
    int64_t last, next, done;   /* wall ms */
    const char *state;          /* pending, delivered, dead, optout, stale, no_endpoint */
    const char *why;            /* dead: why */
    json_t *log;                /* [[at, status, ms, excerpt, trigger], ...] */
    bool manual;                /* a redelivery by kefuctl (its attempts' trigger) */
    ep_t *ep;
    item_where_t where;
    item_t *qnext;              /* ready queue, or the flush list */
    item_t *hnext;              /* the id set's chain */
    size_t hidx;                /* index in ep->heap while waiting */
    int64_t seen_mono;
    int64_t opt_mono;           /* contacts: when the opt-out check last passed (mono ms) */
    bool opt_wait;              /* its opt-out check is in flight */
    bool opted;                 /* ... and found the buyer opted out */
    bool shop_read;             /* its shop's config was looked up in kefu:shops */
};

struct ep_s {
    char *url, *shown;          /* shown: without the query (it may hold a token) */
    char shop[64];              /* the shop whose action used it last */
    item_t *qhead, *qtail;
    size_t nready;
    item_t *ahead;              /* the last of the first nahead of the FIFO, checked ahead */
    size_t nahead;
    item_t **heap;              /* waiting for a retry, by next */
    size_t nheap, heapcap;
    int inflight;
    double tokens;
    int64_t tok_mono;
    int64_t paused_until;       /* wall ms */
    bool disabled, failing;
    int last_status;
    char last_err[24];
    int64_t last_ok;
    int64_t fail_since;         /* wall ms of the first failed attempt since the last 2xx, 0 */
    uint64_t delivered, failed;
    struct event *wake;
    dispatch_t *d;
    ep_t *hnext;
};

/* Attempt classes and final outcomes, counted for the heartbeat. */
enum { AC_2XX, AC_3XX, AC_4XX, AC_429, AC_5XX, AC_TIMEOUT, AC_CONNECT, AC_OTHER, AC__N };
enum { OC_DEAD, OC_OPTOUT, OC_STALE, OC_NO_ENDPOINT, OC_DISABLED, OC_HELD, OC__N };
#define DISPATCH_NLAT 12
extern const uint32_t dispatch_lat_bounds[DISPATCH_NLAT];

typedef struct dhttp_s dhttp_t;

struct dispatch_s {
    kf_daemon_t *daemon;
    const kf_conf_t *conf;
    const dispatch_conf_t *dc;
    struct event_base *base;
    kf_redis_t *redis;          /* commands */
    kf_redis_t *reader;         /* XREADGROUP ... BLOCK (its own connection) */
    kf_bus_t *sub, *pub;        /* shop.config and sys.clock in; action.alert out */
    kf_shops_t *shops;
    kf_secrets_t *secrets;
    dhttp_t *http;
    char consumer[96];
    int64_t schedule[DISPATCH_MAX_SCHEDULE];
    size_t nschedule;
    item_t *items[DISPATCH_ITEM_BUCKETS];
    size_t nitems;              /* in memory, every state */
    ep_t *eps[DISPATCH_EP_BUCKETS];
    size_t neps;
    item_t *flush_head, *flush_tail; /* done items whose state and XACK are to be written */
    size_t nflush;
    json_t *pending_writes;     /* {day: {sid: state}}: pending states to write */
    json_t *dead_writes;        /* [[field, value, ...], ...] XADD kefu:dead argv tails */
    json_t *disabled_writes;    /* {url: json} */
    json_t *failing_writes;     /* {url: since ms, or null: no longer failing} */
    json_t *shop_misses;        /* {shop: mono ms}: not in kefu:shops when last looked up */
    json_t *shop_seqs;          /* {shop: seq}: kefu:shops:seq as last read (NULL: not yet) */
    int64_t disable_after;      /* ms; 0: never for failing alone */
    struct event *flush_ev, *claim_ev, *dead_ev;
    bool reading, recovered, group_ok, stopping;
    int recovering;             /* recovery steps in progress */
    uint64_t delivered, attempts[AC__N], outcomes[OC__N], lat[DISPATCH_NLAT + 1], lat_sum;
    uint64_t dead_len, errors, lost;
    uint64_t err_bad_action, err_redis;
};

/* ---------------------------------------------------------------- dispatch_item.c */
/* "0,5s,5m,30m,2h,5h,10h,10h" -> delays in ms; KF_ERR with err. */
int dispatch_parse_schedule(const char *text, int64_t *out, size_t max, size_t *n, char *err,
                            size_t errlen);
/* Retry-After: delay seconds or an HTTP date; ms from now, -1 when absent or bad. */
int64_t dispatch_parse_retry_after(const char *v, int64_t now_ms);
/* An item from a stream entry's field/value array; NULL with err (a bad action). */
item_t *dispatch_item_new(const char *sid, char **fv, const size_t *fvlen, size_t n,
                          char *err, size_t errlen);
void dispatch_item_free(item_t *it);
/* The webhook body in the shop's offset (it->body); KF_ERR when j does not map. */
int dispatch_item_body(item_t *it, int offset_min, char *err, size_t errlen);
/* The state JSON of docs/dispatch.md (malloc'd). */
char *dispatch_item_state(const item_t *it, const char *url);
/* Applies a stored state (n, next, log, s); returns the state word or NULL. */
const char *dispatch_item_restore(item_t *it, const char *json, size_t len);
void dispatch_item_log(item_t *it, int64_t at, int status, int64_t ms, const char *excerpt);
/* kefu:dlv:<yyyymmdd> of a stream id (UTC day of its ms part). */
void dispatch_state_key(const char *sid, char *buf, size_t len);

/* ---------------------------------------------------------------- dispatch_ep.c */
/* Takes an item read from the stream (or recovered) and routes it. */
void dispatch_accept(dispatch_t *d, item_t *it);
/* An item and its dispatch, the argument of a Redis callback about the item (malloc'd). */
typedef struct {
    dispatch_t *d;
    item_t *it;
} dispatch_ref_t;
dispatch_ref_t *dispatch_ref(dispatch_t *d, item_t *it);
/* A shop's config from a kefu:shops value (a string reply); false (logged) when there is none
 * or it does not decode. */
bool dispatch_shop_set(dispatch_t *d, const char *shop, const redisReply *v);
item_t *dispatch_find(dispatch_t *d, const char *sid);
void dispatch_set_add(dispatch_t *d, item_t *it);
/* Removes and frees a done item (after its writes were confirmed). */
void dispatch_item_release(dispatch_t *d, item_t *it);
void dispatch_ep_pump(ep_t *ep);
/* Final outcome: state s (and why for dead); queued for the state write and XACK. */
void dispatch_finish(dispatch_t *d, item_t *it, const char *s, const char *why);
void dispatch_eps_free(dispatch_t *d);
/* Marks url disabled (from kefu:dispatch:disabled at start, a 410, or failing for
 * [dispatch] disable_after); announce: record it, alert the shop, kill its queue. why: the
 * alert's words ("answered 410 Gone"). */
void dispatch_ep_disable(dispatch_t *d, const char *url, const char *shop, int code,
                         const char *why, bool announce);
/* Restores when url began failing (from kefu:dispatch:failing at start). */
void dispatch_ep_failing_since(dispatch_t *d, const char *url, int64_t since);
size_t dispatch_queued(dispatch_t *d, size_t *inflight, size_t *waiting, int64_t *oldest_ms);
/* The endpoints, disabled ones and the deepest queues first, at most max. */
size_t dispatch_eps_top(dispatch_t *d, ep_t **out, size_t max);

/* ---------------------------------------------------------------- dispatch_redis.c */
int dispatch_redis_start(dispatch_t *d, char *err, size_t errlen);
void dispatch_redis_stop(dispatch_t *d);
/* Schedules a flush of the queued writes at the end of this loop pass. */
void dispatch_flush_soon(dispatch_t *d);
/* Puts a done item (its where IT_DONE, its state set) on the flush list, flushed soon. */
void dispatch_flush_add(dispatch_t *d, item_t *it);
/* Records a pending item's state (after a failed attempt). */
void dispatch_write_state(dispatch_t *d, item_t *it);
/* Appends an action.alert to kefu:actions and publishes it live. */
void dispatch_alert(dispatch_t *d, const char *shop, const char *kind, const char *summary);
/* Reading resumes when memory is below max_queued again. */
void dispatch_read_more(dispatch_t *d);

/* ---------------------------------------------------------------- dispatch_http.c */
typedef struct {
    long status;                /* 0: no response */
    const char *err;            /* timeout, connect, dns, tls, send, recv, other */
    int64_t ms;
    int64_t retry_after_ms;     /* -1: none */
    const char *excerpt;        /* the first bytes of the body */
} dhttp_result_t;
typedef void(dhttp_done_fn)(void *arg, const dhttp_result_t *r);

dhttp_t *dhttp_new(struct event_base *base, long timeout_ms, char *err, size_t errlen);
void dhttp_destroy(dhttp_t **self_p);
/* POSTs body (borrowed until done fires) with headers (taken). done fires exactly once. */
int dhttp_post(dhttp_t *self, const char *url, struct curl_slist *headers, const char *body,
               size_t len, dhttp_done_fn *done, void *arg);
size_t dhttp_active(dhttp_t *self);

/* ---------------------------------------------------------------- dispatch_stats.c */
void dispatch_beat(kf_daemon_t *kd, kf_beat_t *beat, void *arg);
void dispatch_count_attempt(dispatch_t *d, long status, const char *err, int64_t ms);

#endif
