/* kefu-broker: the progress of the newest CRM campaigns for /stats and /metrics
 * (README.md "Campaigns"). Linked into the broker: crm-care's folder holds the code that
 * reads its keys.
 *
 * Every stats_refresh_ms (1 s by default), unless the previous round is still in flight or
 * Redis is down: ZREVRANGE kefu:crm:campaigns 0 19 WITHSCORES, then, in that reply's
 * callback, one HGETALL kefu:crm:camp:{<shop>}:<campaign_id> per member, all issued in one
 * loop pass (hiredis pipelines them). When the last reply is in, the round replaces the
 * previous result. A round cut short by a lost connection leaves no campaigns, and /stats
 * shows none while Redis is down.
 *
 * What Redis holds is written by another program: a member that is not <shop>:<id>, a hash
 * that is missing (expired) and a key of another type are left out; a counter that is not
 * a number shows 0, a time that is not one shows null; texts are cut to S_TEXT_MAX bytes
 * and anything not printable UTF-8 becomes '?'.
 *
 * /stats "campaigns": newest first, [] when there are none or Redis is down:
 *   [{"shop_id", "campaign_id", "name", "state", "segment", "channel" (strings, "" when
 *     missing), "start", "end", "launched" (RFC 3339 at +08:00 like "now", with ".mmm" when
 *     not a whole second; null when missing; "launched" falls back to the list's score),
 *     "parts_done" (of 64), "matched", "sent", "blocked", "expired" (integers),
 *     "blocked_by": {reason: n}}]
 * /metrics, labels {shop, campaign}: kefu_campaign_matched_total, kefu_campaign_sent_total,
 * kefu_campaign_blocked_total, kefu_campaign_expired_total (counters),
 * kefu_campaign_parts_done and kefu_campaign_done (1 when state is "done") (gauges). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "kf_log.h"
#include "kf_stats.h"
#include "kf_util.h"

#define S_MAX 20                   /* campaigns shown: the newest of kefu:crm:campaigns */
#define S_TEXT_MAX 200             /* bytes kept of a name, shop or id */
#define S_MAX_REASONS 32           /* blocked:<reason> fields kept per campaign */
#define S_MAX_COUNT 1000000000000000LL
#define S_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define S_OFFSET 480               /* times as +08:00, like "now" */
#define S_PARTS 64

typedef struct {
    char *reason;
    int64_t n;
} s_reason_t;

enum { T_NAME, T_STATE, T_SEGMENT, T_CHANNEL, T_NTEXTS };
static const char *const s_texts[T_NTEXTS] = {"name", "state", "segment", "channel"};
enum { N_PARTS, N_MATCHED, N_SENT, N_BLOCKED, N_EXPIRED, N_NCOUNTS };
static const char *const s_counts[N_NCOUNTS] = {"parts_done", "matched", "sent", "blocked",
                                                "expired"};
enum { M_START, M_END, M_LAUNCHED, M_NTIMES };
static const char *const s_times[M_NTIMES] = {"start", "end", "launched"};

struct s_round_s;

typedef struct {
    struct s_round_s *round;
    char *shop, *id;
    char *text[T_NTEXTS];
    int64_t n[N_NCOUNTS];
    int64_t ms[M_NTIMES]; /* -1: missing */
    s_reason_t *by;
    size_t nby;
    bool seen;
} s_camp_t;

typedef struct s_round_s {
    broker_campaigns_t *owner; /* NULL once the owner is gone: the last reply frees it */
    s_camp_t v[S_MAX];
    size_t n, pending;
    bool failed; /* a reply was lost (disconnect, shutdown) */
} s_round_t;

struct broker_campaigns_s {
    broker_t *b;
    struct event *ev;
    s_round_t *inflight;
    s_round_t *last; /* what /stats shows */
};

/* ------------------------------------------------------------------ rounds */

static void s_camp_free(s_camp_t *c)
{
    free(c->shop);
    free(c->id);
    for (int k = 0; k < T_NTEXTS; k++)
        free(c->text[k]);
    for (size_t k = 0; k < c->nby; k++)
        free(c->by[k].reason);
    free(c->by);
}

static void s_round_free(s_round_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        s_camp_free(&r->v[i]);
    free(r);
}

/* The round is complete: it becomes the result (its campaigns with a hash, in order). */
static void s_round_done(s_round_t *r)
{
    broker_campaigns_t *self = r->owner;
    if (!self) {
        s_round_free(r);
        return;
    }
    self->inflight = NULL;
    s_round_free(self->last);
    self->last = NULL;
    if (r->failed) {
        s_round_free(r);
        return;
    }
    size_t w = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].seen)
            r->v[w++] = r->v[i];
        else
            s_camp_free(&r->v[i]);
    }
    r->n = w;
    self->last = r;
}

/* ------------------------------------------------------------------ values */

/* A copy of s[0..len) for JSON, labels and terminals: at most S_TEXT_MAX bytes (cut at a
 * character), '?' for control bytes and, when it is not UTF-8, for every byte >= 0x80. */
static char *s_text(const char *s, size_t len)
{
    if (len > S_TEXT_MAX) {
        len = S_TEXT_MAX;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char *out = kf_xstrndup(s, len);
    bool utf8 = kf_utf8_valid(s, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80))
            out[i] = '?';
    }
    return out;
}

/* A decimal integer in [0, max] (a bulk string), or fallback. */
static int64_t s_number(const redisReply *v, long long max, int64_t fallback)
{
    long long n;
    if (v->type == REDIS_REPLY_INTEGER && v->integer >= 0 && v->integer <= max)
        return v->integer;
    if (v->type == REDIS_REPLY_STRING && v->len < 32 && strlen(v->str) == v->len &&
        kf_parse_ll(v->str, 0, max, &n) == KF_OK)
        return n;
    return fallback;
}

static int s_index(const char *const *names, int n, const redisReply *f)
{
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == f->len && memcmp(names[i], f->str, f->len) == 0)
            return i;
    return -1;
}

static void s_reason_add(s_camp_t *c, const redisReply *f, const redisReply *v)
{
    if (f->len <= 8 || c->nby >= S_MAX_REASONS)
        return;
    c->by = kf_xrealloc(c->by, (c->nby + 1) * sizeof(*c->by));
    c->by[c->nby++] = (s_reason_t){s_text(f->str + 8, f->len - 8), s_number(v, S_MAX_COUNT, 0)};
}

/* One HGETALL reply (field, value, ...) into c. */
static void s_camp_fill(s_camp_t *c, const redisReply *h)
{
    for (size_t j = 0; j + 1 < h->elements; j += 2) {
        const redisReply *f = h->element[j], *v = h->element[j + 1];
        int k;
        if (f->type != REDIS_REPLY_STRING)
            continue;
        if ((k = s_index(s_texts, T_NTEXTS, f)) >= 0) {
            free(c->text[k]);
            c->text[k] = v->type == REDIS_REPLY_STRING ? s_text(v->str, v->len) : NULL;
        } else if ((k = s_index(s_counts, N_NCOUNTS, f)) >= 0) {
            c->n[k] = s_number(v, S_MAX_COUNT, 0);
        } else if ((k = s_index(s_times, M_NTIMES, f)) >= 0) {
            c->ms[k] = s_number(v, S_MAX_MS, c->ms[k]);
        } else if (f->len > 8 && memcmp(f->str, "blocked:", 8) == 0) {
            s_reason_add(c, f, v);
        }
    }
    c->seen = true;
}

/* ------------------------------------------------------------------ Redis */

static void s_on_hash(kf_redis_t *rd, redisReply *reply, void *arg)
{
    s_camp_t *c = arg;
    s_round_t *r = c->round;
    if (!reply)
        r->failed = true;
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->elements % 2 == 0)
        s_camp_fill(c, reply);
    /* else: no such hash (expired), or a key of another type: left out */
    if (--r->pending == 0)
        s_round_done(r);
}

/* "<shop>:<id>" (the shop has no ':') with its score into r->v[r->n]; NULL if malformed,
 * else the ':' in m. */
static const char *s_member(s_round_t *r, const redisReply *m, const redisReply *score)
{
    const char *colon = m->type == REDIS_REPLY_STRING ? memchr(m->str, ':', m->len) : NULL;
    if (!colon || colon == m->str || colon + 1 == m->str + m->len)
        return NULL;
    size_t slen = (size_t)(colon - m->str), ilen = m->len - slen - 1;
    if (slen > S_TEXT_MAX || ilen > S_TEXT_MAX)
        return NULL;
    s_camp_t *c = &r->v[r->n++];
    *c = (s_camp_t){.round = r, .shop = s_text(m->str, slen), .id = s_text(colon + 1, ilen),
                    .ms = {-1, -1, -1}};
    double d = -1;
    if (score->type == REDIS_REPLY_STRING)
        d = strtod(score->str, NULL);
    else if (score->type == REDIS_REPLY_INTEGER)
        d = (double)score->integer;
    if (d >= 0 && d <= (double)S_MAX_MS)
        c->ms[M_LAUNCHED] = (int64_t)d; /* the hash's own "launched" wins when present */
    return colon;
}

/* The list: one HGETALL per well-formed member, keyed by its exact bytes. */
static void s_on_list(kf_redis_t *rd, redisReply *reply, void *arg)
{
    s_round_t *r = arg;
    if (!reply || !r->owner) {
        r->failed = !reply;
        s_round_done(r);
        return;
    }
    kf_redis_t *redis = r->owner->b->redis;
    size_t bad = 0;
    r->pending = 1; /* held while the requests go out */
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements && r->n < S_MAX;
         i += 2) {
        const redisReply *m = reply->element[i];
        const char *colon = s_member(r, m, reply->element[i + 1]);
        if (!colon) {
            bad++;
            continue;
        }
        size_t slen = (size_t)(colon - m->str);
        if (kf_redis_cmd(redis, s_on_hash, &r->v[r->n - 1], "HGETALL kefu:crm:camp:{%b}:%b",
                         m->str, slen, colon + 1, m->len - slen - 1) == KF_OK)
            r->pending++;
    }
    if (bad)
        kf_log_debug("campaigns: %zu member%s of kefu:crm:campaigns not <shop>:<id>", bad,
                     bad == 1 ? "" : "s");
    if (--r->pending == 0)
        s_round_done(r);
}

static void s_on_tick(evutil_socket_t fd, short what, void *arg)
{
    broker_campaigns_t *self = arg;
    broker_t *b = self->b;
    if (self->inflight || b->stopping)
        return; /* the previous round is still out: skip this one */
    if (!kf_redis_ready(b->redis)) {
        s_round_free(self->last);
        self->last = NULL;
        return;
    }
    s_round_t *r = kf_xcalloc(1, sizeof(*r));
    r->owner = self;
    if (kf_redis_cmd(b->redis, s_on_list, r, "ZREVRANGE kefu:crm:campaigns 0 %d WITHSCORES",
                     S_MAX - 1) != KF_OK) {
        free(r);
        return;
    }
    self->inflight = r;
}

/* ------------------------------------------------------------------ start, stop */

int broker_campaigns_start(broker_t *b, char *err, size_t errlen)
{
    broker_campaigns_t *self = kf_xcalloc(1, sizeof(*self));
    self->b = b;
    self->ev = event_new(b->base, -1, EV_PERSIST, s_on_tick, self);
    if (!self->ev) {
        free(self);
        kf_err(err, errlen, "campaigns: cannot create the timer");
        return KF_ERR;
    }
    long long ms = b->bconf->stats_refresh_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(self->ev, &tv);
    b->campaigns = self;
    return KF_OK;
}

void broker_campaigns_destroy(broker_t *b)
{
    broker_campaigns_t *self = b->campaigns;
    if (!self)
        return;
    if (self->ev)
        event_free(self->ev);
    if (self->inflight)
        self->inflight->owner = NULL; /* its last reply frees it */
    s_round_free(self->last);
    free(self);
    b->campaigns = NULL;
}

/* ------------------------------------------------------------------ /stats, /metrics */

static json_t *s_time(int64_t ms)
{
    char buf[40];
    if (ms < 0 || kf_time_format(ms, S_OFFSET, buf, sizeof(buf)) != KF_OK)
        return json_null();
    return json_string(buf);
}

static json_t *s_camp_json(const s_camp_t *c)
{
    json_t *by = json_object();
    for (size_t k = 0; k < c->nby; k++)
        json_object_set_new(by, c->by[k].reason, json_integer(c->by[k].n));
    json_t *o = json_pack("{ss ss}", "shop_id", c->shop, "campaign_id", c->id);
    for (int k = 0; k < T_NTEXTS; k++)
        json_object_set_new(o, s_texts[k], json_string(c->text[k] ? c->text[k] : ""));
    for (int k = 0; k < M_NTIMES; k++)
        json_object_set_new(o, s_times[k], s_time(c->ms[k]));
    for (int k = 0; k < N_NCOUNTS; k++)
        json_object_set_new(o, s_counts[k], json_integer(c->n[k]));
    json_object_set_new(o, "blocked_by", by);
    return o;
}

json_t *broker_campaigns_json(broker_t *b)
{
    json_t *a = json_array();
    const s_round_t *r = b->campaigns ? b->campaigns->last : NULL;
    for (size_t i = 0; r && kf_redis_ready(b->redis) && i < r->n; i++)
        json_array_append_new(a, s_camp_json(&r->v[i]));
    return a;
}

static bool s_done(const s_camp_t *c)
{
    return c->text[T_STATE] && strcmp(c->text[T_STATE], "done") == 0;
}

void broker_campaigns_metrics(broker_t *b, kf_text_t *t)
{
    static const struct {
        const char *name, *type, *help;
        int count; /* index into n[], or -1: done */
    } fams[] = {
        {"kefu_campaign_matched_total", "counter", "buyers a campaign selected", N_MATCHED},
        {"kefu_campaign_sent_total", "counter", "campaign contacts sent", N_SENT},
        {"kefu_campaign_blocked_total", "counter", "campaign contacts blocked (every reason)",
         N_BLOCKED},
        {"kefu_campaign_expired_total", "counter", "buyers left when the window ended",
         N_EXPIRED},
        {"kefu_campaign_parts_done", "gauge", "partitions a campaign has walked (of 64)",
         N_PARTS},
        {"kefu_campaign_done", "gauge", "1 when a campaign is done", -1},
    };
    const s_round_t *r = b->campaigns && kf_redis_ready(b->redis) ? b->campaigns->last : NULL;
    for (size_t f = 0; f < KF_ARRAY_LEN(fams); f++) {
        kf_stats_family(t, fams[f].name, fams[f].type, fams[f].help);
        for (size_t i = 0; r && i < r->n; i++) {
            const s_camp_t *c = &r->v[i];
            const char *labels[] = {"shop", c->shop, "campaign", c->id, NULL};
            double v = fams[f].count < 0 ? s_done(c) : (double)c->n[fams[f].count];
            kf_stats_sample(t, fams[f].name, labels, v);
        }
    }
}
