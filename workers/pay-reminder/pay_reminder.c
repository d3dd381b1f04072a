/* kefu-pay-reminder: the rules of DOMAIN §1 (see README.md). C plans each order's reminders
 * (times, channels, techniques, texts); pay_reminder.lua keeps the state and fires them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_clock.h"
#include "kf_log.h"
#include "kf_tmpl.h"
#include "kf_util.h"
#include "kf_window.h"
#include "pay_reminder.h"

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)

/* ---------------------------------------------------------------- the plan */

static int64_t s_table_time(const kf_shop_t *shop, int64_t created)
{
    kf_local_t lt;
    kf_local(created, shop->offset, &lt);
    int m = lt.minute_of_day, cutoff = shop->cutoff_hour * 60;
    if (m < 8 * 60)
        return kf_local_at(created, shop->offset, 0, 10, 0);
    if (m < 11 * 60 && cutoff - 60 > m)
        return kf_local_at(created, shop->offset, 0, shop->cutoff_hour - 1, 0);
    if (m < cutoff)
        return created + 30 * MIN_MS;
    return kf_local_at(created, shop->offset, 1, 10, 0);
}

/* Places a step on channel ch wanted at want, no later than limit. */
static bool s_place(const kf_shop_t *shop, const char *ch, int64_t want, int64_t limit,
                    pr_step_t *st)
{
    st->channel = ch;
    st->limit = limit;
    st->drop = NULL;
    const kf_window_t *w;
    size_t n = kf_shop_allowed(shop, ch, &w);
    if (n == 0) {
        st->due = want;
        if (want > limit)
            st->drop = "deadline";
        return !st->drop;
    }
    int64_t at;
    if (kf_window_hold(want, limit, w, n, &at, shop->offset) == KF_HOLD_DROP) {
        st->due = want;
        st->drop = "deadline";
        return false;
    }
    st->due = at;
    return true;
}

/* The ship cutoff on the local day of at. */
static int64_t s_cutoff_of(const kf_shop_t *shop, int64_t at)
{
    return kf_local_at(at, shop->offset, 0, shop->cutoff_hour, 0);
}

/* repeat buyer: repeat; sent before the cutoff on the day of the order, and the order still
 * open at the cutoff ("pay now, ships today" must be true, DOMAIN §0): urgency; a large order:
 * verification; else privilege. (Flash sales: flash, the order closes soon.) */
static const char *s_technique(const kf_shop_t *shop, const pr_order_t *o, bool repeat,
                               int64_t at)
{
    kf_local_t c, d;
    kf_local(o->created, shop->offset, &c);
    kf_local(at, shop->offset, &d);
    bool ships_today = c.year == d.year && c.month == d.month && c.day == d.day &&
                       d.hour < shop->cutoff_hour && o->deadline >= s_cutoff_of(shop, at);
    return repeat                                   ? "repeat"
           : ships_today                            ? "urgency"
           : o->total_fen >= shop->large_order_fen ? "verification"
                                                    : "privilege";
}

void pr_plan(const kf_shop_t *shop, const pr_order_t *o, bool repeat, pr_plan_t *plan)
{
    memset(plan, 0, sizeof(*plan));
    pr_step_t *s1 = &plan->step[0], *s2 = &plan->step[1];
    plan->n = 2;
    s1->n = 1;
    s2->n = 2;
    if (o->flash) {
        s_place(shop, "im", o->created + 10 * MIN_MS, o->deadline, s1);
        s_place(shop, "sms", o->created + 20 * MIN_MS, o->deadline, s2);
        s1->technique = s2->technique = "flash";
        return;
    }
    int64_t want = s_table_time(shop, o->created);
    if (repeat) {
        want = o->deadline - 24 * HOUR_MS;
        if (want < o->created)
            want = o->created;
    }
    if (repeat || o->total_fen >= shop->large_order_fen) {
        if (!s_place(shop, "phone", want, o->deadline, s1))
            s_place(shop, "sms", want, o->deadline, s1);
    } else {
        s_place(shop, "im", want, o->deadline, s1);
    }
    const char *ch2 = strcmp(s1->channel, "sms") == 0 ? "im" : "sms";
    int64_t limit2 = o->deadline - 2 * HOUR_MS;
    if (!s_place(shop, ch2, s1->due + 4 * HOUR_MS, limit2, s2) && strcmp(s1->channel, "phone") == 0)
        s_place(shop, "im", s1->due + 4 * HOUR_MS, limit2, s2);

    s1->technique = s_technique(shop, o, repeat, s1->due);
    s2->technique = s_technique(shop, o, repeat, s2->due);
}

/* ---------------------------------------------------------------- texts */

/* The text of one step, or NULL (err) when no template renders. */
static char *s_render(const kf_shop_t *shop, const pr_order_t *o, const char *ch,
                      const char *technique, char *err, size_t errlen)
{
    char kind[64], order_time[32], deadline[32], total[32], buyer[64], cutoff[8];
    snprintf(cutoff, sizeof(cutoff), "%d", shop->cutoff_hour);
    snprintf(kind, sizeof(kind), "payment_reminder/%s", technique);
    kf_local_md(o->created, shop->offset, 1, order_time, sizeof(order_time));
    kf_local_md(o->deadline, shop->offset, 1, deadline, sizeof(deadline));
    snprintf(total, sizeof(total), "%lld.%02lld", (long long)(o->total_fen / 100),
             (long long)(o->total_fen % 100));
    kf_utf8_truncate(o->buyer_name, 6, buyer, sizeof(buyer));
    /* seed 004: an sms leaves out a privacy-sensitive product */
    const char *item = o->private_item && strcmp(ch, "sms") == 0 ? "宝贝" : o->item;
    kf_tmpl_var_t vars[] = {
        {"buyer", buyer},         {"shop", shop->name},        {"item", item},
        {"order_time", order_time}, {"deadline", deadline},   {"total", total},
        {"cutoff", cutoff},
    };
    const char *cands[3] = {kf_shop_template(shop, kind, ch),
                            kf_shop_template(shop, "payment_reminder", ch),
                            kf_tmpl_default("payment_reminder", ch, technique)};
    for (size_t i = 0; i < 3; i++) {
        if (!cands[i])
            continue;
        char *text = strcmp(ch, "sms") == 0
                         ? kf_tmpl_sms(cands[i], vars, KF_ARRAY_LEN(vars), true, KF_TMPL_SMS_MAX,
                                       err, errlen)
                         : kf_tmpl_render(cands[i], vars, KF_ARRAY_LEN(vars), err, errlen);
        if (text)
            return text;
        kf_log_warn("shop %s: %s template for %s does not render: %s", shop->shop_id, kind, ch,
                    err);
    }
    return NULL;
}

/* ---------------------------------------------------------------- the timer payloads */

/* A small JSON writer: the payloads are written once per order, so no DOM. */
typedef struct {
    char *buf;
    size_t len, cap;
} s_sb_t;

static void s_sb_raw(s_sb_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 1024;
        b->buf = kf_xrealloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

/* A JSON string (UTF-8 passes through; quotes, backslashes and controls are escaped). */
static void s_sb_str(s_sb_t *b, const char *s)
{
    s_sb_raw(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        s_sb_raw(b, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        s_sb_raw(b, esc, strlen(esc));
        run = s + 1;
    }
    s_sb_raw(b, run, (size_t)(s - run));
    s_sb_raw(b, "\"", 1);
}

static void s_sb_key(s_sb_t *b, const char *key)
{
    s_sb_raw(b, b->len && b->buf[b->len - 1] != '{' ? ",\"" : "\"", b->len && b->buf[b->len - 1] != '{' ? 2 : 1);
    s_sb_raw(b, key, strlen(key));
    s_sb_raw(b, "\":", 2);
}

static void s_sb_kstr(s_sb_t *b, const char *key, const char *val)
{
    s_sb_key(b, key);
    s_sb_str(b, val);
}

static void s_sb_kint(s_sb_t *b, const char *key, long long v)
{
    char num[32];
    s_sb_key(b, key);
    s_sb_raw(b, num, (size_t)snprintf(num, sizeof(num), "%lld", v));
}

/* The timer payload of one step (pay_reminder.lua's fire() reads it); malloc'd. */
static char *s_step_json(const kf_shop_t *shop, const pr_order_t *o, const pr_step_t *st)
{
    char wins[128], id[512], tmpl[64], err[256];
    kf_shop_allowed_str(shop, st->channel, wins, sizeof(wins));
    snprintf(id, sizeof(id), "pay:%s:%s:%d", o->shop_id, o->order_id, st->n);
    snprintf(tmpl, sizeof(tmpl), "payment_reminder/%s", st->technique);
    const char *drop = st->drop;
    char *text = s_render(shop, o, st->channel, st->technique, err, sizeof(err));
    if (!text && !drop)
        drop = "template";
    s_sb_t b = {0};
    s_sb_raw(&b, "{", 1);
    s_sb_kint(&b, "n", st->n);
    s_sb_kstr(&b, "ch", st->channel);
    s_sb_kstr(&b, "okey", o->okey);
    s_sb_kstr(&b, "skey", o->skey);
    s_sb_kstr(&b, "shop", o->shop_id);
    s_sb_kstr(&b, "buyer", o->buyer_id);
    s_sb_kstr(&b, "order", o->order_id);
    s_sb_kint(&b, "off", shop->offset);
    s_sb_key(&b, "caps");
    s_sb_raw(&b, "{", 1);
    s_sb_kint(&b, "daily", shop->cap_daily);
    s_sb_kint(&b, "sms_daily", shop->cap_sms_daily);
    s_sb_kint(&b, "sms_weekly", shop->cap_sms_weekly);
    s_sb_kint(&b, "phone_daily", shop->cap_phone_daily);
    s_sb_raw(&b, "}", 1);
    s_sb_kstr(&b, "wins", wins);
    /* "ships today if paid before the cutoff" is untrue after it: a late urgency reminder
     * goes no later than the cutoff of its day */
    int64_t limit = st->limit;
    if (strcmp(st->technique, "urgency") == 0 && s_cutoff_of(shop, st->due) < limit)
        limit = s_cutoff_of(shop, st->due);
    s_sb_kint(&b, "limit", limit);
    s_sb_kint(&b, "deadline", o->deadline);
    if (drop)
        s_sb_kstr(&b, "drop", drop);
    s_sb_key(&b, "a");
    s_sb_raw(&b, "{", 1);
    s_sb_kstr(&b, "action_id", id);
    s_sb_kstr(&b, "shop_id", o->shop_id);
    s_sb_kstr(&b, "buyer_id", o->buyer_id);
    s_sb_kstr(&b, "order_id", o->order_id);
    s_sb_kstr(&b, "channel", st->channel);
    s_sb_kstr(&b, "reason", "payment_reminder");
    s_sb_kstr(&b, "template", tmpl);
    s_sb_kstr(&b, "text", text ? text : "");
    s_sb_kint(&b, "deadline_at", o->deadline);
    s_sb_kstr(&b, "contact_class", "marketing");
    s_sb_raw(&b, "}}", 2);
    free(text);
    return b.buf;
}

/* Adds the plan to a call: <pre>steps, <pre>d<i>, <pre>s<i>. */
static void s_plan_args(kf_call_t *call, const char *pre, const kf_shop_t *shop,
                        const pr_order_t *o, bool repeat)
{
    pr_plan_t plan;
    pr_plan(shop, o, repeat, &plan);
    char name[16];
    snprintf(name, sizeof(name), "%ssteps", pre);
    kf_call_argi(call, name, plan.n);
    for (int i = 0; i < plan.n; i++) {
        snprintf(name, sizeof(name), "%sd%d", pre, i + 1);
        kf_call_argi(call, name, plan.step[i].due);
        char *json = s_step_json(shop, o, &plan.step[i]);
        snprintf(name, sizeof(name), "%ss%d", pre, i + 1);
        kf_call_arg(call, name, json);
        free(json);
    }
}

char *pr_plan_json(const kf_shop_t *shop, const pr_order_t *o, bool repeat)
{
    pr_plan_t plan;
    pr_plan(shop, o, repeat, &plan);
    s_sb_t b = {0};
    s_sb_raw(&b, "[", 1);
    for (int i = 0; i < plan.n; i++) {
        char *json = s_step_json(shop, o, &plan.step[i]);
        if (i)
            s_sb_raw(&b, ",", 1);
        s_sb_raw(&b, json, strlen(json));
        free(json);
    }
    s_sb_raw(&b, "]", 1);
    return b.buf;
}

/* ---------------------------------------------------------------- handlers */

static void s_keys(kf_call_t *call, const char *shop, const char *order)
{
    char *k = kf_xasprintf("kefu:order:{%s}:%s", shop, order);
    kf_call_arg(call, "okey", k);
    free(k);
    k = kf_xasprintf("%s:%s", shop, order);
    kf_call_arg(call, "tid", k);
    free(k);
    kf_call_arg(call, "shop", shop);
}

int pr_on_created(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderCreated *oc = env->order_created;
    if (!env->shop_id || !*env->shop_id || !oc || !oc->order_id || !*oc->order_id) {
        kf_call_reject(call, "missing_field", "order.created without shop_id or order_id");
        return KF_ERR;
    }
    if (!oc->buyer || !oc->buyer->buyer_id || !*oc->buyer->buyer_id) {
        kf_call_reject(call, "missing_buyer", "order %s: no buyer.buyer_id", oc->order_id);
        return KF_ERR;
    }
    const kf_shop_t *shop = kf_worker_shop(w, env->shop_id);
    pr_order_t o = {.shop_id = env->shop_id, .order_id = oc->order_id,
                    .buyer_id = oc->buyer->buyer_id, .total_fen = oc->total_fen,
                    .flash = oc->kind == KEFU__V1__ORDER_KIND__ORDER_KIND_FLASH_SALE};
    o.created = oc->has_created_at ? oc->created_at : env->occurred_at;
    o.deadline = oc->has_pay_deadline_at && oc->pay_deadline_at > 0 ? oc->pay_deadline_at
                 : o.flash                                          ? o.created + 30 * MIN_MS
                                                                    : o.created + 72 * HOUR_MS;
    const Kefu__V1__Buyer *b = oc->buyer;
    o.buyer_name = b->name && *b->name ? b->name : b->nick && *b->nick ? b->nick : "亲";
    o.item = oc->n_items > 0 && oc->items[0]->title && *oc->items[0]->title ? oc->items[0]->title
                                                                            : "宝贝";
    o.private_item = oc->n_items > 0 && kf_shop_private_sku(shop, oc->items[0]->sku_id);
    char okey[512], skey[512], bkey[512], pkey[512];
    snprintf(okey, sizeof(okey), "kefu:order:{%s}:%s", o.shop_id, o.order_id);
    snprintf(skey, sizeof(skey), "kefu:stats:pay:{%s}:%d", o.shop_id,
             kf_local_yyyymmdd(o.created, shop->offset));
    snprintf(bkey, sizeof(bkey), "kefu:buyer:{%s}:%s", o.shop_id, o.buyer_id);
    snprintf(pkey, sizeof(pkey), "%s:%s", o.shop_id, o.buyer_id);
    o.okey = okey;
    o.skey = skey;

    kf_call_partition(call, kf_worker_partition(pkey), NULL);
    s_keys(call, o.shop_id, o.order_id);
    kf_call_arg(call, "bkey", bkey);
    kf_call_arg(call, "skey", skey);
    kf_call_arg(call, "buyer", o.buyer_id);
    kf_call_argi(call, "total", o.total_fen);
    kf_call_argi(call, "created", o.created);
    kf_call_argi(call, "deadline", o.deadline);
    kf_call_argi(call, "day", kf_local_yyyymmdd(o.created, shop->offset));
    s_plan_args(call, "", shop, &o, false);
    if (!o.flash) /* flash sales keep their 10/20-minute plan for every buyer */
        s_plan_args(call, "r", shop, &o, true);
    return KF_OK;
}

static int s_on_status(kf_worker_t *w, const kf_env_t *env, kf_call_t *call,
                       const Kefu__V1__OrderStatus *st)
{
    if (!env->shop_id || !*env->shop_id || !st || !st->order_id || !*st->order_id) {
        kf_call_reject(call, "missing_field", "%s without shop_id or order_id", env->topic);
        return KF_ERR;
    }
    char okey[512];
    snprintf(okey, sizeof(okey), "kefu:order:{%s}:%s", env->shop_id, st->order_id);
    if (st->buyer_id && *st->buyer_id) {
        char *pkey = kf_xasprintf("%s:%s", env->shop_id, st->buyer_id);
        kf_call_partition(call, kf_worker_partition(pkey), NULL);
        free(pkey);
    } else {
        kf_call_partition(call, KF_PART_LOOKUP, okey); /* the partition the order was given */
    }
    s_keys(call, env->shop_id, st->order_id);
    if (st->has_amount_fen)
        kf_call_argi(call, "amount", st->amount_fen);
    return KF_OK;
}

int pr_on_paid(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    return s_on_status(w, env, call, env->order_paid);
}

int pr_on_closed(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    return s_on_status(w, env, call, env->order_closed);
}
