/* kefu-dispatch: endpoints and attempts.
 *
 * An endpoint is a URL. It has its own FIFO of actions waiting for a first attempt (stream
 * order), a min-heap of actions waiting for a retry (by next), at most [dispatch] concurrency
 * attempts in flight, a token bucket of [dispatch] rate per second and a pause (Retry-After).
 * dispatch_ep_pump starts what it may and arms the endpoint's wake timer for the rest, so
 * one endpoint never waits for another. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kf_clock.h"
#include "kf_log.h"
#include "kf_util.h"

/* ---------------------------------------------------------------- the id set */

static size_t s_bucket(const char *s, size_t n) { return kf_fnv1a(s) % n; }

item_t *dispatch_find(dispatch_t *d, const char *sid)
{
    for (item_t *it = d->items[s_bucket(sid, DISPATCH_ITEM_BUCKETS)]; it; it = it->hnext)
        if (!strcmp(it->sid, sid))
            return it;
    return NULL;
}

void dispatch_set_add(dispatch_t *d, item_t *it)
{
    item_t **b = &d->items[s_bucket(it->sid, DISPATCH_ITEM_BUCKETS)];
    it->hnext = *b;
    *b = it;
    d->nitems++;
}

void dispatch_item_release(dispatch_t *d, item_t *it)
{
    for (item_t **p = &d->items[s_bucket(it->sid, DISPATCH_ITEM_BUCKETS)]; *p; p = &(*p)->hnext)
        if (*p == it) {
            *p = it->hnext;
            d->nitems--;
            break;
        }
    dispatch_item_free(it);
}

/* ---------------------------------------------------------------- the retry heap */

static void s_heap_swap(ep_t *ep, size_t a, size_t b)
{
    item_t *t = ep->heap[a];
    ep->heap[a] = ep->heap[b];
    ep->heap[b] = t;
    ep->heap[a]->hidx = a;
    ep->heap[b]->hidx = b;
}

static void s_heap_push(ep_t *ep, item_t *it)
{
    if (ep->nheap == ep->heapcap) {
        ep->heapcap = ep->heapcap ? ep->heapcap * 2 : 16;
        ep->heap = kf_xrealloc(ep->heap, ep->heapcap * sizeof(*ep->heap));
    }
    size_t i = ep->nheap++;
    ep->heap[i] = it;
    it->hidx = i;
    it->where = IT_WAITING;
    while (i > 0 && ep->heap[(i - 1) / 2]->next > ep->heap[i]->next) {
        s_heap_swap(ep, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static item_t *s_heap_pop(ep_t *ep)
{
    item_t *top = ep->heap[0];
    s_heap_swap(ep, 0, --ep->nheap);
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < ep->nheap && ep->heap[l]->next < ep->heap[m]->next)
            m = l;
        if (r < ep->nheap && ep->heap[r]->next < ep->heap[m]->next)
            m = r;
        if (m == i)
            break;
        s_heap_swap(ep, i, m);
        i = m;
    }
    top->hidx = (size_t)-1;
    return top;
}

/* ---------------------------------------------------------------- endpoints */

static void s_on_wake(evutil_socket_t fd, short what, void *arg) { dispatch_ep_pump(arg); }

static ep_t *s_ep_get(dispatch_t *d, const char *url)
{
    ep_t **b = &d->eps[s_bucket(url, DISPATCH_EP_BUCKETS)];
    for (ep_t *ep = *b; ep; ep = ep->hnext)
        if (!strcmp(ep->url, url))
            return ep;
    ep_t *ep = kf_xcalloc(1, sizeof(*ep));
    ep->url = kf_xstrdup(url);
    ep->shown = kf_xstrndup(url, strcspn(url, "?#"));
    ep->d = d;
    ep->tokens = d->dc->rate > 0 ? (double)d->dc->rate : 0;
    ep->tok_mono = kf_mono_ms();
    ep->wake = evtimer_new(d->base, s_on_wake, ep);
    ep->hnext = *b;
    *b = ep;
    d->neps++;
    return ep;
}

void dispatch_eps_free(dispatch_t *d)
{
    for (size_t i = 0; i < DISPATCH_EP_BUCKETS; i++)
        for (ep_t *ep = d->eps[i], *nx; ep; ep = nx) {
            nx = ep->hnext;
            event_free(ep->wake);
            free(ep->heap);
            free(ep->url);
            free(ep->shown);
            free(ep);
        }
    for (size_t i = 0; i < DISPATCH_ITEM_BUCKETS; i++)
        for (item_t *it = d->items[i], *nx; it; it = nx) {
            nx = it->hnext;
            dispatch_item_free(it);
        }
}

/* The URL of an action: the shop's route for its topic, its webhook_url, the default. */
static const char *s_url(dispatch_t *d, const kf_shop_t *shop, const char *topic)
{
    const Kefu__V1__ShopConfig *cfg = shop->cfg;
    for (size_t i = 0; cfg && i < cfg->n_webhook_routes; i++) {
        const Kefu__V1__WebhookRoute *r = cfg->webhook_routes[i];
        if (r->topic && r->url && *r->url && !strcmp(r->topic, topic))
            return r->url;
    }
    if (cfg && cfg->webhook_url && *cfg->webhook_url)
        return cfg->webhook_url;
    return *d->dc->default_url ? d->dc->default_url : NULL;
}

/* An action for a disabled endpoint: still disabled (dead), unless `kefuctl redeliver`
 * enabled it again (its kefu:dispatch:disabled field is gone). */
static void s_on_disabled_check(kf_redis_t *r, redisReply *reply, void *arg)
{
    item_t *it = arg;
    ep_t *ep = it->ep;
    dispatch_t *d = ep->d;
    /* Several checks may be in flight for one endpoint: the first reply that finds it
     * enabled enables it, the later ones find it so already. */
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0 &&
        !json_object_get(d->disabled_writes, ep->url)) {
        if (ep->disabled) {
            kf_log_notice("endpoint %s of shop %s is enabled again", ep->shown, ep->shop);
            ep->disabled = false;
            ep->failing = false;
        }
        dispatch_accept(d, it);
        return;
    }
    dispatch_finish(d, it, "dead", "endpoint_disabled");
}

static void s_check_disabled(dispatch_t *d, item_t *it)
{
    if (json_object_get(d->disabled_writes, it->ep->url) ||
        kf_redis_cmd(d->redis, s_on_disabled_check, it, "HEXISTS kefu:dispatch:disabled %s",
                     it->ep->url) != KF_OK)
        dispatch_finish(d, it, "dead", "endpoint_disabled");
}

#define S_SHOP_MISS_MS 5000
#define S_SHOP_MISSES_MAX 4096

/* An action of a shop whose config this dispatch has not seen (its shop.config went by on
 * the bus before the subscription took, or before a restart): read it from kefu:shops, where
 * the workers keep the newest, before choosing the endpoint. Without the reply (Redis went
 * away) the action leaves memory and stays pending, to be recovered when Redis is back. */
static void s_on_shop_read(kf_redis_t *r, redisReply *reply, void *arg)
{
    dispatch_ref_t *l = arg;
    dispatch_t *d = l->d;
    item_t *it = l->it;
    free(l);
    (void)r;
    if (!reply) {
        dispatch_item_release(d, it);
        return;
    }
    dispatch_shop_set(d, it->shop, reply);
    if (!kf_shops_get(d->shops, it->shop)->cfg) {
        if (json_object_size(d->shop_misses) >= S_SHOP_MISSES_MAX)
            json_object_clear(d->shop_misses);
        json_object_set_new(d->shop_misses, it->shop, json_integer(kf_mono_ms()));
    }
    dispatch_accept(d, it);
}

static bool s_shop_unknown(dispatch_t *d, item_t *it, const kf_shop_t *shop)
{
    if (shop->cfg || it->shop_read)
        return false;
    json_t *miss = json_object_get(d->shop_misses, it->shop);
    return !miss || kf_mono_ms() - json_integer_value(miss) >= S_SHOP_MISS_MS;
}

void dispatch_accept(dispatch_t *d, item_t *it)
{
    if (!dispatch_find(d, it->sid))
        dispatch_set_add(d, it);
    const kf_shop_t *shop = kf_shops_get(d->shops, it->shop);
    if (s_shop_unknown(d, it, shop)) {
        it->shop_read = true;
        dispatch_ref_t *l = dispatch_ref(d, it);
        if (kf_redis_cmd(d->redis, s_on_shop_read, l, "HGET kefu:shops %s", it->shop) == KF_OK)
            return;
        free(l);
    }
    const char *url = s_url(d, shop, it->topic);
    if (!url) {
        dispatch_finish(d, it, "no_endpoint", NULL);
        return;
    }
    ep_t *ep = s_ep_get(d, url);
    it->ep = ep;
    snprintf(ep->shop, sizeof(ep->shop), "%s", it->shop);
    size_t nsec;
    char err[256];
    if (ep->disabled) {
        s_check_disabled(d, it);
    } else if (!kf_secrets_get(d->secrets, it->shop, &nsec)) {
        kf_log_warn("shop %s has no secret in [dispatch] secrets_file: %s is dead (no_secret)",
                    it->shop, it->id);
        dispatch_finish(d, it, "dead", "no_secret");
    } else if (dispatch_item_body(it, shop->offset, err, sizeof(err)) != KF_OK) {
        kf_log_err("action %s does not map to %s: %s", it->id, it->topic, err);
        d->err_bad_action++;
        dispatch_finish(d, it, "dead", "bad_action");
    } else if (ep->nready + ep->nheap >= (size_t)d->dc->queue_max) {
        dispatch_finish(d, it, "dead", "queue_full");
    } else if (it->next > kf_wall_ms()) {
        s_heap_push(ep, it);
        dispatch_ep_pump(ep);
    } else {
        it->where = IT_READY;
        it->qnext = NULL;
        if (ep->qtail)
            ep->qtail->qnext = it;
        else
            ep->qhead = it;
        ep->qtail = it;
        ep->nready++;
        dispatch_ep_pump(ep);
    }
}

/* ---------------------------------------------------------------- attempts */

static void s_attempt(item_t *it);
static item_t *s_fifo_pop(ep_t *ep);
static bool s_opt_waiting(const item_t *it);
static void s_look_ahead(ep_t *ep);
static void s_set_failing(dispatch_t *d, ep_t *ep, int64_t since);

static void s_wait(item_t *it, int64_t at)
{
    it->next = at;
    s_heap_push(it->ep, it);
}

/* An attempt ended without a delivery: the next one on the schedule, or dead. */
static void s_retry(dispatch_t *d, item_t *it, int64_t retry_after_ms)
{
    if ((size_t)it->n >= d->nschedule) {
        dispatch_finish(d, it, "dead", "retries_exhausted");
        return;
    }
    int64_t delay = d->schedule[it->n];
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    s_wait(it, it->last + delay);
    dispatch_write_state(d, it);
}

static void s_ep_disable_items(ep_t *ep)
{
    dispatch_t *d = ep->d;
    while (ep->qhead)
        dispatch_finish(d, s_fifo_pop(ep), "dead", "endpoint_disabled");
    while (ep->nheap)
        dispatch_finish(d, s_heap_pop(ep), "dead", "endpoint_disabled");
}

void dispatch_ep_disable(dispatch_t *d, const char *url, const char *shop, int code,
                         const char *why, bool announce)
{
    ep_t *ep = s_ep_get(d, url);
    if (ep->disabled)
        return;
    ep->disabled = true;
    if (shop && !ep->shop[0])
        snprintf(ep->shop, sizeof(ep->shop), "%s", shop);
    if (!announce)
        return;
    kf_log_warn("endpoint %s of shop %s %s: disabled (kefuctl redeliver --shop %s "
                "enables it again)", ep->shown, ep->shop, why, ep->shop);
    json_t *v = json_pack("{s:s, s:I, s:i, s:s}", "shop", ep->shop, "at",
                          (json_int_t)kf_wall_ms(), "code", code, "why", why);
    json_object_set_new(d->disabled_writes, url, v);
    s_set_failing(d, ep, 0);
    char summary[512];
    snprintf(summary, sizeof(summary),
             "webhook %s %s: deliveries to it stopped and are kept in kefu:dead; "
             "`kefuctl redeliver --shop %s` enables it and sends them again",
             ep->shown, why, ep->shop);
    dispatch_alert(d, ep->shop, "webhook_disabled", summary);
    d->outcomes[OC_DISABLED]++;
    s_ep_disable_items(ep);
    dispatch_flush_soon(d);
}

/* ep began failing at since (wall ms), or no longer fails (0); kept in kefu:dispatch:failing
 * so that a restart does not forget how long it has failed. */
static void s_set_failing(dispatch_t *d, ep_t *ep, int64_t since)
{
    if (ep->fail_since == since)
        return;
    ep->fail_since = since;
    json_object_set_new(d->failing_writes, ep->url,
                        since ? json_integer((json_int_t)since) : json_null());
    dispatch_flush_soon(d);
}

void dispatch_ep_failing_since(dispatch_t *d, const char *url, int64_t since)
{
    ep_t *ep = s_ep_get(d, url);
    if (!ep->fail_since || since < ep->fail_since)
        ep->fail_since = since;
}

/* A failed attempt: the endpoint has failed since ...; past disable_after, disabled. */
static bool s_failed_too_long(dispatch_t *d, ep_t *ep, const item_t *it, int64_t now)
{
    if (!ep->fail_since)
        s_set_failing(d, ep, now);
    if (!d->disable_after || now - ep->fail_since < d->disable_after)
        return false;
    char why[160];
    double h = (double)(now - ep->fail_since) / 3600000.0;
    if (it->code)
        snprintf(why, sizeof(why), "failed every attempt for %.1f h (last: HTTP %d)", h,
                 it->code);
    else
        snprintf(why, sizeof(why), "failed every attempt for %.1f h (last: %s)", h, it->err);
    dispatch_ep_disable(d, ep->url, it->shop, it->code, why, true);
    return true;
}

static void s_on_http(void *arg, const dhttp_result_t *r)
{
    item_t *it = arg;
    ep_t *ep = it->ep;
    dispatch_t *d = ep->d;
    ep->inflight--;
    int64_t now = kf_wall_ms();
    it->n++;
    it->last = now;
    it->code = (int)r->status;
    snprintf(it->err, sizeof(it->err), "%s", r->err ? r->err : "");
    dispatch_item_log(it, now, it->code, r->ms, r->excerpt);
    dispatch_count_attempt(d, r->status, r->err, r->ms);
    ep->last_status = it->code;
    snprintf(ep->last_err, sizeof(ep->last_err), "%s", it->err);
    if (r->status >= 200 && r->status < 300) {
        ep->delivered++;
        ep->last_ok = now;
        ep->failing = false;
        s_set_failing(d, ep, 0);
        d->delivered++;
        dispatch_finish(d, it, "delivered", NULL);
    } else if (r->status == 410) {
        ep->failed++;
        dispatch_ep_disable(d, ep->url, it->shop, 410, "answered 410 Gone", true);
        dispatch_finish(d, it, "dead", "endpoint_disabled");
    } else {
        ep->failed++;
        ep->failing = true;
        if (s_failed_too_long(d, ep, it, now)) {
            dispatch_finish(d, it, "dead", "endpoint_disabled");
            return;
        }
        if ((r->status == 429 || r->status == 503) && r->retry_after_ms > 0 &&
            now + r->retry_after_ms > ep->paused_until)
            ep->paused_until = now + r->retry_after_ms;
        kf_log_info("%s to %s: attempt %d: %s", it->id, ep->shown, it->n,
                    r->status ? r->excerpt : r->err);
        s_retry(d, it, r->retry_after_ms);
    }
    dispatch_ep_pump(ep);
}

static void s_send(item_t *it)
{
    ep_t *ep = it->ep;
    dispatch_t *d = ep->d;
    size_t nsec;
    const char *const *sec = kf_secrets_get(d->secrets, it->shop, &nsec);
    long long ts = kf_wall_ms() / 1000;
    char *sig = sec ? kf_webhook_header(sec, nsec, it->id, ts, it->body, it->blen) : NULL;
    if (!sig) {
        ep->inflight--;
        dispatch_finish(d, it, "dead", "no_secret");
        dispatch_ep_pump(ep);
        return;
    }
    char h[3][600];
    snprintf(h[0], sizeof(h[0]), "webhook-id: %s", it->id);
    snprintf(h[1], sizeof(h[1]), "webhook-timestamp: %lld", ts);
    snprintf(h[2], sizeof(h[2]), "webhook-signature: %s", sig);
    free(sig);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Expect:");
    for (int i = 0; i < 3; i++)
        hs = curl_slist_append(hs, h[i]);
    if (dhttp_post(d->http, ep->url, hs, it->body, it->blen, s_on_http, it) != KF_OK) {
        dhttp_result_t r = {.err = "other", .retry_after_ms = -1, .excerpt = "curl refused"};
        s_on_http(it, &r); /* gives the in-flight slot back */
    }
}

/* ---------------------------------------------------------------- opt-out checks
 *
 * A contact is delivered only if its buyer has not opted out of its channel since it was
 * emitted: kefu:optout:{shop}:buyer is read before the attempt. So that the read is not a
 * round trip inside an in-flight slot, the first S_AHEAD actions of an endpoint's FIFO have
 * theirs issued ahead (pipelined); an attempt uses a check at most S_OPT_FRESH_MS old, else it
 * checks again. */
#define S_AHEAD 64
#define S_OPT_FRESH_MS 250

static bool s_needs_optout(const item_t *it)
{
    return it->buyer && !strcmp(it->topic, "action.contact");
}

static bool s_opt_waiting(const item_t *it)
{
    return it->opt_wait;
}

static item_t *s_fifo_pop(ep_t *ep)
{
    item_t *it = ep->qhead;
    ep->qhead = it->qnext;
    if (!ep->qhead)
        ep->qtail = NULL;
    ep->nready--;
    if (ep->nahead) {
        ep->nahead--;
        if (ep->ahead == it)
            ep->ahead = NULL;
    }
    return it;
}

static const char *s_opted_out(const item_t *it, const redisReply *reply)
{
    for (size_t i = 0; i < reply->elements; i++) {
        const char *c = reply->element[i]->str;
        if (c && (!strcmp(c, "all") || (it->channel && !strcmp(c, it->channel))))
            return c;
    }
    return NULL;
}

static void s_optout_done(dispatch_t *d, item_t *it, const char *channel)
{
    d->outcomes[OC_OPTOUT]++;
    kf_log_info("%s: buyer opted out of %s since it was emitted: not delivered", it->id, channel);
    dispatch_finish(d, it, "optout", NULL);
}

static void s_on_optout_ahead(kf_redis_t *r, redisReply *reply, void *arg)
{
    item_t *it = arg;
    it->opt_wait = false;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        it->opt_mono = kf_mono_ms();
        it->opted = s_opted_out(it, reply) != NULL;
    }
    /* else: the attempt checks again */
    if (it->where == IT_READY && it->ep->qhead == it)
        dispatch_ep_pump(it->ep);
}

static void s_look_ahead(ep_t *ep)
{
    dispatch_t *d = ep->d;
    if (!kf_redis_ready(d->redis))
        return;
    while (ep->nahead < S_AHEAD) {
        item_t *it = ep->ahead ? ep->ahead->qnext : ep->qhead;
        if (!it)
            return;
        ep->ahead = it;
        ep->nahead++;
        if (s_needs_optout(it) && !it->opt_wait) {
            char key[256];
            snprintf(key, sizeof(key), "kefu:optout:{%s}:%s", it->shop, it->buyer);
            if (kf_redis_cmd(d->redis, s_on_optout_ahead, it, "SMEMBERS %s", key) == KF_OK)
                it->opt_wait = true;
        }
    }
}

static void s_on_optout(kf_redis_t *r, redisReply *reply, void *arg)
{
    item_t *it = arg;
    ep_t *ep = it->ep;
    dispatch_t *d = ep->d;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) { /* Redis away: try again in a second */
        ep->inflight--;
        s_wait(it, kf_wall_ms() + 1000);
        dispatch_ep_pump(ep);
        return;
    }
    const char *c = s_opted_out(it, reply);
    if (c) {
        ep->inflight--;
        s_optout_done(d, it, c);
        dispatch_ep_pump(ep);
        return;
    }
    s_send(it);
}

/* The clock the rules judge an attempt by: the real clock; on the simulated clock, the
 * action's emission time plus the real time it has waited here since (the simulated clock
 * races ahead of deliveries: only the lateness dispatch adds is real). */
static int64_t s_clock_now(const item_t *it)
{
    if (!kf_clock_simulated())
        return kf_clock_now();
    return it->emitted + (kf_mono_ms() - it->seen_mono);
}

/* Before an attempt of a contact: stale, outside its hours, or opted out since. Returns
 * true when it may go on now. */
static bool s_contact_checks(dispatch_t *d, item_t *it)
{
    ep_t *ep = it->ep;
    int64_t now = s_clock_now(it);
    if (it->x && now > it->x) {
        d->outcomes[OC_STALE]++;
        kf_log_info("%s: past its freshness: not delivered (stale)", it->id);
        dispatch_finish(d, it, "stale", NULL);
        return false;
    }
    const kf_shop_t *shop = kf_shops_get(d->shops, it->shop);
    const kf_window_t *wins;
    size_t n = it->channel ? kf_shop_allowed(shop, it->channel, &wins) : 0;
    if (n) {
        int64_t at = kf_window_next_open(wins, n, now, shop->offset);
        if (at != now) {
            if (at < 0 || (it->x && at > it->x)) {
                d->outcomes[OC_STALE]++;
                dispatch_finish(d, it, "stale", NULL);
                return false;
            }
            d->outcomes[OC_HELD]++;
            s_wait(it, kf_wall_ms() + (at - now));
            return false;
        }
    }
    if (!it->buyer)
        return true;
    if (it->opt_mono && kf_mono_ms() - it->opt_mono <= S_OPT_FRESH_MS) {
        if (!it->opted)
            return true;
        s_optout_done(d, it, it->channel ? it->channel : "all");
        return false;
    }
    ep->inflight++;
    char key[256];
    snprintf(key, sizeof(key), "kefu:optout:{%s}:%s", it->shop, it->buyer);
    if (kf_redis_cmd(d->redis, s_on_optout, it, "SMEMBERS %s", key) != KF_OK) {
        ep->inflight--;
        s_wait(it, kf_wall_ms() + 1000);
        return false;
    }
    it->where = IT_ACTIVE;
    return false; /* s_on_optout goes on */
}

static void s_attempt(item_t *it)
{
    ep_t *ep = it->ep;
    dispatch_t *d = ep->d;
    it->where = IT_ACTIVE;
    if (!strcmp(it->topic, "action.contact") && !s_contact_checks(d, it))
        return;
    ep->inflight++;
    s_send(it);
}

static bool s_take_token(ep_t *ep, int64_t *wait_ms)
{
    long long rate = ep->d->dc->rate;
    if (rate <= 0)
        return true;
    int64_t now = kf_mono_ms();
    ep->tokens += (double)(now - ep->tok_mono) * (double)rate / 1000.0;
    ep->tok_mono = now;
    if (ep->tokens > (double)rate)
        ep->tokens = (double)rate;
    if (ep->tokens >= 1.0) {
        ep->tokens -= 1.0;
        return true;
    }
    *wait_ms = (int64_t)ceil((1.0 - ep->tokens) * 1000.0 / (double)rate);
    return false;
}

static void s_arm(ep_t *ep, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ep->wake, &tv);
}

void dispatch_ep_pump(ep_t *ep)
{
    dispatch_t *d = ep->d;
    if (ep->disabled || d->stopping)
        return;
    while (ep->inflight < d->dc->concurrency) {
        int64_t now = kf_wall_ms();
        if (ep->paused_until > now) {
            s_arm(ep, ep->paused_until - now);
            return;
        }
        bool due = ep->nheap && ep->heap[0]->next <= now;
        if (!due && !ep->qhead) {
            if (ep->nheap)
                s_arm(ep, ep->heap[0]->next - now);
            return;
        }
        if (!due && s_opt_waiting(ep->qhead))
            break; /* its check's reply pumps again */
        int64_t wait;
        if (!s_take_token(ep, &wait)) {
            s_arm(ep, wait);
            return;
        }
        item_t *it;
        if (due) {
            it = s_heap_pop(ep);
        } else {
            it = s_fifo_pop(ep);
        }
        s_attempt(it);
    }
    s_look_ahead(ep);
}

void dispatch_finish(dispatch_t *d, item_t *it, const char *s, const char *why)
{
    it->state = s;
    it->why = why;
    it->done = kf_wall_ms();
    it->where = IT_DONE;
    if (!strcmp(s, "dead"))
        d->outcomes[OC_DEAD]++;
    else if (!strcmp(s, "no_endpoint"))
        d->outcomes[OC_NO_ENDPOINT]++;
    if (!strcmp(s, "dead"))
        kf_log_notice("%s (%s, shop %s) is dead: %s after %d attempts", it->id, it->topic,
                      it->shop, why, it->n);
    dispatch_flush_add(d, it);
}

size_t dispatch_queued(dispatch_t *d, size_t *inflight, size_t *waiting, int64_t *oldest_ms)
{
    size_t q = 0, fl = 0, w = 0;
    int64_t oldest = 0, now = kf_mono_ms();
    for (size_t i = 0; i < DISPATCH_EP_BUCKETS; i++)
        for (ep_t *ep = d->eps[i]; ep; ep = ep->hnext) {
            q += ep->nready + ep->nheap + (size_t)ep->inflight;
            fl += (size_t)ep->inflight;
            w += ep->nheap;
        }
    for (size_t i = 0; i < DISPATCH_ITEM_BUCKETS; i++)
        for (item_t *it = d->items[i]; it; it = it->hnext)
            if (it->where != IT_DONE && now - it->seen_mono > oldest)
                oldest = now - it->seen_mono;
    *inflight = fl;
    *waiting = w;
    *oldest_ms = oldest;
    return q;
}

static int s_ep_rank(const void *a, const void *b)
{
    const ep_t *x = *(ep_t *const *)a, *y = *(ep_t *const *)b;
    if (x->disabled != y->disabled)
        return x->disabled ? -1 : 1;
    size_t qx = x->nready + x->nheap, qy = y->nready + y->nheap;
    return qx > qy ? -1 : qx < qy ? 1 : strcmp(x->url, y->url);
}

size_t dispatch_eps_top(dispatch_t *d, ep_t **out, size_t max)
{
    ep_t **all = kf_xmalloc((d->neps ? d->neps : 1) * sizeof(*all));
    size_t n = 0;
    for (size_t i = 0; i < DISPATCH_EP_BUCKETS; i++)
        for (ep_t *ep = d->eps[i]; ep; ep = ep->hnext)
            all[n++] = ep;
    qsort(all, n, sizeof(*all), s_ep_rank);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof(*out));
    free(all);
    return n;
}
