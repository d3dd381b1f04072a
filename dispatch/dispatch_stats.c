/* kefu-dispatch: the counters and the heartbeat's DispatchStats (docs/dispatch.md). */
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kf_util.h"

#define S_MAX_EP 64

const uint32_t dispatch_lat_bounds[DISPATCH_NLAT] = {5,   10,   25,   50,   100,  250,
                                                     500, 1000, 2500, 5000, 10000, 30000};

static const char *const s_classes[AC__N] = {"2xx", "3xx", "4xx", "429", "5xx",
                                             "timeout", "connect", "other"};
static const char *const s_outcomes[OC__N] = {"dead", "optout", "stale", "no_endpoint",
                                              "disabled", "held"};

void dispatch_count_attempt(dispatch_t *d, long status, const char *err, int64_t ms)
{
    int c = status >= 200 && status < 300   ? AC_2XX
            : status >= 300 && status < 400 ? AC_3XX
            : status == 429                 ? AC_429
            : status >= 400 && status < 500 ? AC_4XX
            : status >= 500                 ? AC_5XX
            : err && !strcmp(err, "timeout") ? AC_TIMEOUT
            : err && (!strcmp(err, "connect") || !strcmp(err, "dns")) ? AC_CONNECT
                                                                      : AC_OTHER;
    d->attempts[c]++;
    size_t b = 0;
    while (b < DISPATCH_NLAT && (uint64_t)ms > dispatch_lat_bounds[b])
        b++;
    d->lat[b]++;
    d->lat_sum += (uint64_t)(ms > 0 ? ms : 0);
}

static const char *s_ep_state(const ep_t *ep)
{
    if (ep->disabled)
        return "disabled";
    if (ep->paused_until > kf_wall_ms())
        return "paused";
    return ep->failing ? "failing" : "ok";
}

void dispatch_beat(kf_daemon_t *kd, kf_beat_t *beat, void *arg)
{
    dispatch_t *d = arg;
    static Kefu__V1__DispatchStats st;
    static Kefu__V1__ReasonCount ac[AC__N], oc[OC__N];
    static Kefu__V1__ReasonCount *acp[AC__N], *ocp[OC__N];
    static Kefu__V1__EndpointState es[S_MAX_EP];
    static Kefu__V1__EndpointState *esp[S_MAX_EP];
    static uint32_t bounds[DISPATCH_NLAT];
    static uint64_t counts[DISPATCH_NLAT + 1];
    kefu__v1__dispatch_stats__init(&st);
    st.has_delivered = 1;
    st.delivered = d->delivered;
    for (size_t i = 0; i < AC__N; i++) {
        kefu__v1__reason_count__init(&ac[i]);
        ac[i].reason = (char *)s_classes[i];
        ac[i].has_n = 1;
        ac[i].n = d->attempts[i];
        acp[i] = &ac[i];
    }
    for (size_t i = 0; i < OC__N; i++) {
        kefu__v1__reason_count__init(&oc[i]);
        oc[i].reason = (char *)s_outcomes[i];
        oc[i].has_n = 1;
        oc[i].n = d->outcomes[i];
        ocp[i] = &oc[i];
    }
    st.n_attempts = AC__N, st.attempts = acp;
    st.n_outcomes = OC__N, st.outcomes = ocp;
    memcpy(bounds, dispatch_lat_bounds, sizeof(bounds));
    memcpy(counts, d->lat, sizeof(counts));
    st.n_latency_bounds_ms = DISPATCH_NLAT, st.latency_bounds_ms = bounds;
    st.n_latency_counts = DISPATCH_NLAT + 1, st.latency_counts = counts;
    st.has_latency_sum_ms = 1, st.latency_sum_ms = d->lat_sum;
    size_t inflight, waiting;
    int64_t oldest;
    size_t queued = dispatch_queued(d, &inflight, &waiting, &oldest);
    st.has_queued = st.has_inflight = st.has_waiting = st.has_dead = 1;
    st.queued = (uint32_t)queued, st.inflight = (uint32_t)inflight;
    st.waiting = (uint32_t)waiting, st.dead = d->dead_len;
    st.has_oldest_ms = 1, st.oldest_ms = oldest;
    st.has_endpoints_total = 1, st.endpoints_total = (uint32_t)d->neps;
    ep_t *top[S_MAX_EP];
    size_t n = dispatch_eps_top(d, top, S_MAX_EP);
    for (size_t i = 0; i < n; i++) {
        Kefu__V1__EndpointState *e = &es[i];
        kefu__v1__endpoint_state__init(e);
        e->shop_id = top[i]->shop;
        e->url = top[i]->shown;
        e->state = (char *)s_ep_state(top[i]);
        e->has_queued = e->has_inflight = e->has_last_status = e->has_last_ok_at = 1;
        e->has_delivered = e->has_failed = 1;
        e->queued = (uint32_t)(top[i]->nready + top[i]->nheap);
        e->inflight = (uint32_t)top[i]->inflight;
        e->last_status = top[i]->last_status;
        e->last_ok_at = top[i]->last_ok;
        e->delivered = top[i]->delivered;
        e->failed = top[i]->failed;
        e->last_error = top[i]->last_err[0] ? top[i]->last_err : NULL;
        esp[i] = e;
    }
    st.n_endpoints = n, st.endpoints = esp;
    beat->dispatch = &st;
    beat->processed = d->delivered;
    beat->lag = (int64_t)queued;
    beat->timers_pending = (int64_t)waiting;
    beat->errors = d->err_bad_action + d->lost;
    size_t r = 0;
    if (d->err_bad_action) {
        beat->reason[r] = "bad_action";
        beat->reason_n[r++] = d->err_bad_action;
    }
    if (d->lost) {
        beat->reason[r] = "trimmed_before_delivery";
        beat->reason_n[r++] = d->lost;
    }
    beat->nreasons = r;
}
