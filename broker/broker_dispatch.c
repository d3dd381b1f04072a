/* kefu-broker: kefu-dispatch's delivery statistics (docs/dispatch.md "Observability") from its
 * heartbeats, for /stats ("dispatch") and /metrics (kefu_dispatch_*).
 *
 * Each fleet entry of kefu-dispatch keeps its latest DispatchStats packed (bounded: at most
 * S_MAX_EPS endpoints, S_MAX_NAMES attempt classes and outcomes, S_MAX_BOUNDS histogram
 * bounds); rendering unpacks the copies of the live instances and sums them: counters and
 * queue gauges add up, endpoints are concatenated, the histogram adds up per bucket (an
 * instance whose bounds differ from the first one's is left out of the histogram), and
 * `dead` (XLEN kefu:dead, one stream for all instances) and `oldest_ms` take the largest. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "kf_log.h"
#include "kf_stats.h"
#include "kf_util.h"

#define S_DAEMON "kefu-dispatch"
#define S_MAX_EPS 64     /* endpoints kept per instance */
#define S_MAX_NAMES 16   /* attempt classes / outcomes kept per instance */
#define S_MAX_BOUNDS 32  /* histogram bounds */
#define S_MERGED 32      /* distinct names after summing instances (the last one: "other") */
#define S_OFFSET 480     /* times as +08:00, like "now" */

/* ------------------------------------------------------------------ keeping */

/* Bounds strictly increasing, one count per bound plus one for +Inf. */
static bool s_hist_valid(const Kefu__V1__DispatchStats *st)
{
    if (st->n_latency_bounds_ms == 0 || st->n_latency_bounds_ms > S_MAX_BOUNDS ||
        st->n_latency_counts != st->n_latency_bounds_ms + 1)
        return false;
    for (size_t i = 1; i < st->n_latency_bounds_ms; i++)
        if (st->latency_bounds_ms[i] <= st->latency_bounds_ms[i - 1])
            return false;
    return true;
}

void broker_dispatch_forget(fleet_entry_t *e)
{
    free(e->dispatch);
    e->dispatch = NULL;
    e->dispatch_len = 0;
    e->has_dispatch = false;
}

void broker_dispatch_keep(fleet_entry_t *e, const Kefu__V1__Heartbeat *hb)
{
    broker_dispatch_forget(e);
    if (!hb->dispatch || strcmp(e->daemon, S_DAEMON) != 0)
        return;
    Kefu__V1__DispatchStats c = *hb->dispatch; /* shallow: only the counts are changed */
    if (c.n_endpoints > S_MAX_EPS)
        c.n_endpoints = S_MAX_EPS;
    if (c.n_attempts > S_MAX_NAMES)
        c.n_attempts = S_MAX_NAMES;
    if (c.n_outcomes > S_MAX_NAMES)
        c.n_outcomes = S_MAX_NAMES;
    bool bad = (c.n_latency_bounds_ms || c.n_latency_counts) && !s_hist_valid(&c);
    if (bad) {
        c.n_latency_bounds_ms = c.n_latency_counts = 0;
        c.has_latency_sum_ms = 0;
    }
    if (bad && !e->dispatch_bad)
        kf_log_warn("fleet: %s/%s: latency histogram left out (%zu bounds, %zu counts: "
                    "want 1..%d increasing bounds and one count more)",
                    e->daemon, e->instance, hb->dispatch->n_latency_bounds_ms,
                    hb->dispatch->n_latency_counts, S_MAX_BOUNDS);
    e->dispatch_bad = bad;
    size_t n = kefu__v1__dispatch_stats__get_packed_size(&c);
    e->dispatch = kf_xmalloc(n + 1);
    e->dispatch_len = kefu__v1__dispatch_stats__pack(&c, e->dispatch);
    e->has_dispatch = true;
}

/* ------------------------------------------------------------------ summing */

typedef struct {
    const char *name; /* borrowed from an unpacked message */
    uint64_t n;
} s_count_t;

typedef struct {
    Kefu__V1__DispatchStats **st; /* unpacked, of the live instances */
    size_t n;
    uint64_t delivered, queued, inflight, waiting, dead, endpoints_total, neps;
    int64_t oldest_ms;
    s_count_t attempts[S_MERGED], outcomes[S_MERGED];
    size_t nattempts, noutcomes;
    const uint32_t *bounds; /* NULL: no histogram */
    size_t nbounds;
    uint64_t counts[S_MAX_BOUNDS + 1], sum, count;
} s_agg_t;

/* Adds v under name; past S_MERGED - 1 distinct names the rest go under "other". */
static void s_count_add(s_count_t *tab, size_t *n, const char *name, uint64_t v)
{
    if (!name || !*name)
        return;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < *n; i++)
            if (!strcmp(tab[i].name, name)) {
                tab[i].n += v;
                return;
            }
        if (*n < S_MERGED - 1 || (*n < S_MERGED && !strcmp(name, "other"))) {
            tab[*n].name = name;
            tab[(*n)++].n = v;
            return;
        }
        name = "other";
    }
}

static void s_hist_add(s_agg_t *a, const Kefu__V1__DispatchStats *st)
{
    if (!s_hist_valid(st))
        return;
    if (!a->bounds) {
        a->bounds = st->latency_bounds_ms;
        a->nbounds = st->n_latency_bounds_ms;
    } else if (a->nbounds != st->n_latency_bounds_ms ||
               memcmp(a->bounds, st->latency_bounds_ms, a->nbounds * sizeof(uint32_t)) != 0) {
        return;
    }
    for (size_t i = 0; i <= a->nbounds; i++) {
        a->counts[i] += st->latency_counts[i];
        a->count += st->latency_counts[i];
    }
    a->sum += st->latency_sum_ms;
}

static void s_agg_add(s_agg_t *a, const Kefu__V1__DispatchStats *st)
{
    a->delivered += st->delivered;
    a->queued += st->queued;
    a->inflight += st->inflight;
    a->waiting += st->waiting;
    a->endpoints_total += st->endpoints_total;
    a->neps += st->n_endpoints;
    if (st->dead > a->dead)
        a->dead = st->dead;
    if (st->oldest_ms > a->oldest_ms)
        a->oldest_ms = st->oldest_ms;
    for (size_t i = 0; i < st->n_attempts; i++)
        s_count_add(a->attempts, &a->nattempts, st->attempts[i]->reason, st->attempts[i]->n);
    for (size_t i = 0; i < st->n_outcomes; i++)
        s_count_add(a->outcomes, &a->noutcomes, st->outcomes[i]->reason, st->outcomes[i]->n);
    s_hist_add(a, st);
}

/* Unpacks and sums the live instances; false (nothing to free) when there is none. */
static bool s_agg_load(broker_t *b, s_agg_t *a)
{
    memset(a, 0, sizeof(*a));
    for (size_t i = 0; i < b->nfleet; i++) {
        const fleet_entry_t *e = &b->fleet[i];
        if (!e->has_dispatch || !broker_fleet_alive(b, e))
            continue;
        Kefu__V1__DispatchStats *st =
            kefu__v1__dispatch_stats__unpack(NULL, e->dispatch_len, e->dispatch);
        if (!st) /* our own packing: cannot happen short of memory corruption */
            continue;
        a->st = kf_xrealloc(a->st, (a->n + 1) * sizeof(*a->st));
        a->st[a->n++] = st;
        s_agg_add(a, st);
    }
    return a->n > 0;
}

static void s_agg_free(s_agg_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        kefu__v1__dispatch_stats__free_unpacked(a->st[i], NULL);
    free(a->st);
    a->st = NULL;
    a->n = 0;
}

/* The upper bound of the bucket holding the quantile permille/1000; in the +Inf bucket, the
 * largest finite bound (as Prometheus' histogram_quantile does). -1 without observations. */
static int64_t s_quantile(const s_agg_t *a, uint64_t permille)
{
    if (!a->bounds || a->count == 0)
        return -1;
    /* ceil(count * permille / 1000) without overflowing */
    uint64_t rank = a->count / 1000 * permille + (a->count % 1000 * permille + 999) / 1000;
    if (rank < 1)
        rank = 1;
    uint64_t cum = 0;
    for (size_t i = 0; i < a->nbounds; i++) {
        cum += a->counts[i];
        if (cum >= rank)
            return a->bounds[i];
    }
    return a->bounds[a->nbounds - 1];
}

/* ------------------------------------------------------------------ /stats */

static json_t *s_str(const char *s)
{
    json_t *v = s ? json_string(s) : NULL; /* NULL for invalid UTF-8 */
    return v ? v : json_string("");
}

static json_t *s_time(int64_t ms)
{
    char buf[40];
    if (ms <= 0 || kf_time_format(ms, S_OFFSET, buf, sizeof(buf)) != KF_OK)
        return json_null();
    return json_string(buf);
}

static json_t *s_counts_json(const s_count_t *tab, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, tab[i].name, json_integer((json_int_t)tab[i].n));
    return o;
}

static json_t *s_endpoint_json(const Kefu__V1__EndpointState *ep)
{
    json_t *o = json_object();
    json_object_set_new(o, "shop_id", s_str(ep->shop_id));
    json_object_set_new(o, "url", s_str(ep->url));
    json_object_set_new(o, "state", s_str(ep->state));
    json_object_set_new(o, "queued", json_integer(ep->queued));
    json_object_set_new(o, "inflight", json_integer(ep->inflight));
    json_object_set_new(o, "last_status", json_integer(ep->last_status));
    json_object_set_new(o, "last_error",
                        ep->last_error && *ep->last_error ? s_str(ep->last_error) : json_null());
    json_object_set_new(o, "last_ok_at", s_time(ep->last_ok_at));
    json_object_set_new(o, "delivered", json_integer((json_int_t)ep->delivered));
    json_object_set_new(o, "failed", json_integer((json_int_t)ep->failed));
    return o;
}

static json_t *s_quantile_json(const s_agg_t *a, uint64_t permille)
{
    int64_t v = s_quantile(a, permille);
    return v < 0 ? json_null() : json_integer(v);
}

json_t *broker_dispatch_json(broker_t *b)
{
    s_agg_t a;
    if (!s_agg_load(b, &a))
        return json_null();
    json_t *eps = json_array();
    for (size_t i = 0; i < a.n; i++)
        for (size_t k = 0; k < a.st[i]->n_endpoints; k++)
            json_array_append_new(eps, s_endpoint_json(a.st[i]->endpoints[k]));
    json_t *o = json_pack(
        "{sI so so sI sI sI sI sI sI s{so so sI sI} so sI}", "delivered",
        (json_int_t)a.delivered, "attempts", s_counts_json(a.attempts, a.nattempts), "outcomes",
        s_counts_json(a.outcomes, a.noutcomes), "queued", (json_int_t)a.queued, "inflight",
        (json_int_t)a.inflight, "waiting", (json_int_t)a.waiting, "dead", (json_int_t)a.dead,
        "oldest_ms", (json_int_t)a.oldest_ms, "endpoints_total", (json_int_t)a.endpoints_total,
        "latency_ms", "p50", s_quantile_json(&a, 500), "p99", s_quantile_json(&a, 990), "sum",
        (json_int_t)a.sum, "count", (json_int_t)a.count, "endpoints", eps, "instances",
        (json_int_t)a.n);
    s_agg_free(&a);
    return o ? o : json_null();
}

/* ------------------------------------------------------------------ /metrics */

static void s_counts_metric(kf_text_t *t, const char *name, const char *label, const char *help,
                            const s_count_t *tab, size_t n)
{
    kf_stats_family(t, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        const char *l[] = {label, tab[i].name, NULL};
        kf_stats_sample_u64(t, name, l, tab[i].n);
    }
}

static void s_hist_metric(kf_text_t *t, const s_agg_t *a)
{
    static const char name[] = "kefu_dispatch_attempt_duration_ms";
    kf_stats_family(t, name, "histogram", "webhook attempt durations (ms)");
    if (!a->bounds)
        return;
    uint64_t cum = 0;
    char le[16];
    for (size_t i = 0; i < a->nbounds; i++) {
        cum += a->counts[i];
        snprintf(le, sizeof(le), "%u", (unsigned)a->bounds[i]);
        kf_stats_sample_u64(t, "kefu_dispatch_attempt_duration_ms_bucket",
                            (const char *const[]){"le", le, NULL}, cum);
    }
    kf_stats_sample_u64(t, "kefu_dispatch_attempt_duration_ms_bucket",
                        (const char *const[]){"le", "+Inf", NULL}, a->count);
    kf_stats_sample_u64(t, "kefu_dispatch_attempt_duration_ms_sum", NULL, a->sum);
    kf_stats_sample_u64(t, "kefu_dispatch_attempt_duration_ms_count", NULL, a->count);
}

static void s_one(kf_text_t *t, const char *name, const char *help, uint64_t v)
{
    kf_stats_family(t, name, "gauge", help);
    kf_stats_sample_u64(t, name, NULL, v);
}

/* A gauge with no sample while no instance reports. */
static void s_gauge(kf_text_t *t, const s_agg_t *a, const char *name, const char *help,
                    uint64_t v)
{
    kf_stats_family(t, name, "gauge", help);
    if (a->n)
        kf_stats_sample_u64(t, name, NULL, v);
}

static const char *s_or(const char *s)
{
    return s ? s : "";
}

static bool s_same_ep(const Kefu__V1__EndpointState *x, const Kefu__V1__EndpointState *y,
                      bool state)
{
    return !strcmp(s_or(x->shop_id), s_or(y->shop_id)) && !strcmp(s_or(x->url), s_or(y->url)) &&
           (!state || !strcmp(s_or(x->state), s_or(y->state)));
}

/* The endpoints as flat pointers (borrowed), in the order of /stats. */
static const Kefu__V1__EndpointState **s_eps(const s_agg_t *a, size_t *n)
{
    const Kefu__V1__EndpointState **eps = kf_xcalloc(a->neps + 1, sizeof(*eps));
    *n = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t k = 0; k < a->st[i]->n_endpoints; k++)
            eps[(*n)++] = a->st[i]->endpoints[k];
    return eps;
}

/* One sample per label set: an endpoint that two instances report is summed (queued) or
 * shown once (up, per state). */
static void s_endpoint_metrics(kf_text_t *t, const s_agg_t *a)
{
    kf_stats_family(t, "kefu_dispatch_endpoint_queued", "gauge",
                    "actions waiting for a first attempt or a retry, by endpoint");
    size_t n;
    const Kefu__V1__EndpointState **eps = s_eps(a, &n);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = s_same_ep(eps[k], eps[i], false);
        if (seen)
            continue;
        uint64_t q = 0;
        for (size_t k = i; k < n; k++)
            q += s_same_ep(eps[k], eps[i], false) ? eps[k]->queued : 0;
        const char *l[] = {"shop", s_or(eps[i]->shop_id), "url", s_or(eps[i]->url), NULL};
        kf_stats_sample_u64(t, "kefu_dispatch_endpoint_queued", l, q);
    }
    kf_stats_family(t, "kefu_dispatch_endpoint_up", "gauge",
                    "1 unless kefu-dispatch has disabled the endpoint, by endpoint and state");
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = s_same_ep(eps[k], eps[i], true);
        const char *l[] = {"shop", s_or(eps[i]->shop_id), "url", s_or(eps[i]->url), "state",
                           s_or(eps[i]->state), NULL};
        if (!seen)
            kf_stats_sample(t, "kefu_dispatch_endpoint_up", l,
                            strcmp(s_or(eps[i]->state), "disabled") != 0);
    }
    free(eps);
}

void broker_dispatch_metrics(broker_t *b, kf_text_t *t)
{
    s_agg_t a;
    s_agg_load(b, &a);
    s_one(t, "kefu_dispatch_instances", "live kefu-dispatch instances that report", a.n);
    kf_stats_family(t, "kefu_dispatch_delivered_total", "counter", "actions delivered (2xx)");
    if (a.n)
        kf_stats_sample_u64(t, "kefu_dispatch_delivered_total", NULL, a.delivered);
    s_counts_metric(t, "kefu_dispatch_attempts_total", "class", "webhook attempts, by class",
                    a.attempts, a.nattempts);
    s_counts_metric(t, "kefu_dispatch_outcomes_total", "outcome",
                    "actions not delivered, by outcome", a.outcomes, a.noutcomes);
    s_hist_metric(t, &a);
    s_gauge(t, &a, "kefu_dispatch_queued", "actions in memory, not yet delivered", a.queued);
    s_gauge(t, &a, "kefu_dispatch_inflight", "webhook requests in flight", a.inflight);
    s_gauge(t, &a, "kefu_dispatch_waiting", "actions waiting for a retry", a.waiting);
    s_gauge(t, &a, "kefu_dispatch_dead", "entries in kefu:dead", a.dead);
    s_gauge(t, &a, "kefu_dispatch_oldest_ms", "age of the oldest undelivered action (ms)",
            a.oldest_ms > 0 ? (uint64_t)a.oldest_ms : 0);
    s_gauge(t, &a, "kefu_dispatch_endpoints", "endpoints known to kefu-dispatch",
            a.endpoints_total);
    s_endpoint_metrics(t, &a);
    s_agg_free(&a);
}
