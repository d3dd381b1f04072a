/* kefu-crm-care: what C decides per event (partition, the clock, dates, the channels' hours,
 * templates rendered down to what only the Lua step knows); crm_care.lua keeps the
 * profiles, segments and timers and sends the care. See README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_care.h"
#include "kf_clock.h"
#include "kf_log.h"
#include "kf_stats.h"
#include "kf_tmpl.h"
#include "kf_util.h"

#define DAY_MS (86400 * 1000LL)

/* Built-in texts for the care kinds kf_tmpl has no default for. The sms ones name the
 * buyer first and the shop; they are about a buyer, not an order, so they have no item
 * or order time (the "four elements" are an order sms's). */
static const struct {
    const char *kind, *channel, *text;
} s_texts[] = {
    {"same_city", "im", "{buyer}亲，您在{shop}买的{item}已经到达{city}啦，很快就会为您派送，请保持电话畅通哦~"},
    {"out_for_delivery", "im", "{buyer}亲，您在{shop}买的{item}正在派送中，快递小哥马上就到，请留意电话哦~"},
    {"signed", "im", "{buyer}亲，您在{shop}买的{item}已经签收啦！使用中有任何问题，随时联系我们哦~"},
    {"replenish", "im", "{buyer}亲，您常买的{item}差不多该用完了吧？{shop}给老顾客备好了货，需要的话随时下单哦~"},
    {"birthday", "sms", "{buyer}亲，{shop}祝您生日快乐！愿您新的一岁天天开心~"},
    {"birthday", "im", "{buyer}亲，今天是您的生日，{shop}全体客服祝您生日快乐，天天开心~"},
    {"festival", "sms", "{buyer}亲，{festival}快乐！{shop}感谢您一直以来的支持~"},
    {"festival", "im", "{buyer}亲，{festival}快乐！{shop}感谢您一直以来的支持，祝您和家人节日愉快~"},
    {"winback", "sms", "{buyer}亲，好久不见！{shop}上新了不少好物，欢迎回来看看~"},
    {"winback", "im", "{buyer}亲，好久不见！{shop}上新了不少好物，老顾客专享优惠已为您准备好，欢迎回来看看~"},
    {"campaign", "sms", "{buyer}亲，{shop}{campaign}开始啦，老顾客专享优惠，欢迎回店看看~"},
    {"campaign", "im", "{buyer}亲，{shop}{campaign}开始啦，老顾客专享优惠，欢迎回店看看~"},
    {"campaign", "phone", "您好，请问是{buyer}吗？我是{shop}的客服，我们的{campaign}开始了，老顾客有专享优惠，想跟您说一声。不打扰您了，再见！"},
};

static const char *const s_segments[] = {"champions", "loyal",       "potential", "new",
                                         "at_risk",   "hibernating", "lost",      NULL};
static const char *const s_levels[] = {"regular", "silver", "gold", "platinum", NULL};

/* The built-in text of care kind for channel: kf_tmpl's default, else ours; NULL: none. */
static const char *s_builtin(const char *kind, const char *channel)
{
    char full[64];
    snprintf(full, sizeof(full), "care_%s", kind);
    const char *t = kf_tmpl_default(full, channel, NULL);
    for (size_t i = 0; !t && i < KF_ARRAY_LEN(s_texts); i++)
        if (strcmp(s_texts[i].kind, kind) == 0 && strcmp(s_texts[i].channel, channel) == 0)
            t = s_texts[i].text;
    return t;
}

const char *cc_template(const kf_shop_t *shop, const char *kind, const char *channel)
{
    char full[64];
    snprintf(full, sizeof(full), "care_%s", kind);
    const char *t = kf_shop_template(shop, full, channel);
    if (!t)
        t = s_builtin(kind, channel);
    return t ? t : "";
}

char *cc_prerender(const kf_shop_t *shop, const char *tmpl, const char *channel, bool marketing,
                   const char *festival, const char *campaign, char *err, size_t errlen)
{
    /* "{buyer}" is 7 characters: a text that fits with it fits with any name of 6 */
    kf_tmpl_var_t vars[] = {
        {"buyer", "{buyer}"},         {"item", "{item}"},     {"order_time", "{order_time}"},
        {"carrier", "{carrier}"},     {"city", "{city}"},     {"tracking_no", "{tracking_no}"},
        {"shop", shop->name},         {"festival", festival ? festival : ""},
        {"campaign", campaign ? campaign : ""},
    };
    if (strcmp(channel, "sms") == 0)
        return kf_tmpl_sms(tmpl, vars, KF_ARRAY_LEN(vars), marketing, KF_TMPL_SMS_MAX, err, errlen);
    return kf_tmpl_render(tmpl, vars, KF_ARRAY_LEN(vars), err, errlen);
}

/* The care text of kind for channel, rendered; a shop template that does not render falls
 * back to the built-in one (logged). Never NULL. */
static char *s_text(const kf_shop_t *shop, const char *kind, const char *channel, bool marketing,
                    const char *festival)
{
    char err[256];
    const char *t = cc_template(shop, kind, channel);
    char *text = cc_prerender(shop, t, channel, marketing, festival, NULL, err, sizeof(err));
    if (!text) {
        kf_log_warn("shop %s: template care_%s/%s: %s; using the built-in one", shop->shop_id,
                    kind, channel, err);
        const char *d = s_builtin(kind, channel);
        text = d ? cc_prerender(shop, d, channel, marketing, festival, NULL, err, sizeof(err))
                 : NULL;
    }
    return text ? text : kf_xstrdup("");
}

/* ------------------------------------------------------------------ dates */

static bool s_valid_md(int year, int month, int day)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 || day > mdays[month - 1])
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return year == 0 || month != 2 || day != 29 || leap;
}

int cc_parse_date(const char *s, int *year, int *month, int *day)
{
    int y = 0, m, d, used = 0;
    if (!s)
        return KF_ERR;
    size_t len = strlen(s);
    if (len == 5 && sscanf(s, "%2d-%2d%n", &m, &d, &used) == 2 && used == 5) {
        y = 0;
    } else if (len == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) == 3 && used == 10 &&
               y >= 1970) {
    } else {
        return KF_ERR;
    }
    for (size_t i = 0; i < len; i++)
        if (s[i] != '-' && (s[i] < '0' || s[i] > '9'))
            return KF_ERR;
    if (!s_valid_md(y, m, d))
        return KF_ERR;
    *year = y, *month = m, *day = d;
    return KF_OK;
}

int64_t cc_next_date(int64_t from_ms, int offset_min, int year, int month, int day)
{
    for (int k = 0; k <= 366 * 8 + 1; k++) {
        int64_t at = kf_local_at(from_ms, offset_min, k, 10, 0);
        kf_local_t lt;
        kf_local(at, offset_min, &lt);
        if (year && lt.year > year)
            break;
        if (lt.month == month && lt.day == day && (!year || lt.year == year) && at >= from_ms)
            return at;
    }
    return -1;
}

/* ------------------------------------------------------------------ common arguments */

/* The clock for an event: the worker's clock, or the event's business time (at) when that
 * is later. Events without one (profiles, configs, campaigns) pass 0: their occurred_at is
 * when they were published, which on the simulated clock is not the shop's time; it is
 * used only before the simulated clock's first sys.clock. */
static int64_t s_clock(const kf_env_t *env, int64_t at)
{
    int64_t now = kf_clock_now();
    if (now <= 0) /* simulated, and no sys.clock yet: the event's own time */
        now = env->occurred_at;
    return now > at ? now : at;
}

static void s_part_buyer(kf_call_t *call, const char *shop, const char *buyer)
{
    char *key = kf_xasprintf("%s:%s", shop, buyer);
    kf_call_partition(call, kf_worker_partition(key), NULL);
    free(key);
}

/* Every step's shop arguments: shop, off, sname, caps, and the hours care may go out in
 * (wwin: working hours for im, swin: sms, pwin: phone), as "start-end,..." minutes. */
static const kf_shop_t *s_common(kf_worker_t *w, const kf_env_t *env, kf_call_t *call)
{
    const kf_shop_t *shop = kf_worker_shop(w, env->shop_id);
    kf_call_arg(call, "shop", env->shop_id);
    kf_call_argi(call, "off", shop->offset);
    kf_call_arg(call, "sname", shop->name);
    kf_call_argf(call, "caps", "%d,%d,%d,%d", shop->cap_daily, shop->cap_sms_daily,
                 shop->cap_sms_weekly, shop->cap_phone_daily);
    kf_call_argf(call, "wwin", "%d-%d", shop->working.start_min, shop->working.end_min);
    char buf[256];
    kf_shop_allowed_str(shop, "sms", buf, sizeof(buf));
    kf_call_arg(call, "swin", buf);
    kf_shop_allowed_str(shop, "phone", buf, sizeof(buf));
    kf_call_arg(call, "pwin", buf);
    return shop;
}

static bool s_has(const char *s) { return s && *s; }

/* A copy of s for a tab- and line-separated argument: tabs and newlines become spaces. */
static char *s_flat(const char *s)
{
    char *out = kf_xstrdup(s ? s : "");
    for (char *p = out; *p; p++)
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    return out;
}

/* An order event: partition by buyer when it names one, else the order's recorded one. */
static const kf_shop_t *s_order(kf_worker_t *w, const kf_env_t *env, kf_call_t *call,
                                const char *order_id, const char *buyer_id, int64_t at)
{
    if (s_has(buyer_id)) {
        s_part_buyer(call, env->shop_id, buyer_id);
    } else {
        char *okey = kf_xasprintf("kefu:order:{%s}:%s", env->shop_id, order_id);
        kf_call_partition(call, KF_PART_LOOKUP, okey);
        free(okey);
        kf_call_lookup_miss(call, "unknown_order");
    }
    char *okey = kf_xasprintf("kefu:order:{%s}:%s", env->shop_id, order_id);
    kf_call_arg(call, "okey", okey);
    free(okey);
    kf_call_arg(call, "order", order_id);
    kf_call_arg(call, "buyer", buyer_id ? buyer_id : "");
    kf_call_argi(call, "at", at);
    kf_call_argi(call, "clk", s_clock(env, at));
    return s_common(w, env, call);
}

static int s_need(kf_call_t *call, const kf_env_t *env, const char *id, const char *what)
{
    if (!s_has(env->shop_id) || !s_has(id)) {
        kf_call_reject(call, "missing_field", "%s without shop_id or %s", env->topic, what);
        return KF_ERR;
    }
    return KF_OK;
}

/* The texts a profile change may need later: win-back (segment timers). */
static void s_profile_texts(kf_call_t *call, const kf_shop_t *shop)
{
    char *wb = s_text(shop, "winback", "sms", true, NULL);
    kf_call_arg(call, "t_winback", wb);
    free(wb);
    char *rp = s_text(shop, "replenish", "im", true, NULL);
    kf_call_arg(call, "t_replenish", rp);
    free(rp);
}

/* ------------------------------------------------------------------ handlers */

/* The buyer's nick and name as given, and bname: the name texts use ({buyer}: the name, else
 * the nick, at most 6 characters, shortened by kf_utf8_truncate like every worker's), with
 * bfrom = "name" or "nick" (a name is never replaced by a nick). */
static void s_names(kf_call_t *call, const char *nick, const char *name)
{
    char bname[64];
    bool has_name = s_has(name);
    kf_utf8_truncate(has_name ? name : s_has(nick) ? nick : "", 6, bname, sizeof(bname));
    kf_call_arg(call, "nick", nick ? nick : "");
    kf_call_arg(call, "name", name ? name : "");
    kf_call_arg(call, "bname", bname);
    kf_call_arg(call, "bfrom", has_name ? "name" : "nick");
}

int cc_on_created(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderCreated *oc = env->order_created;
    const Kefu__V1__Buyer *b = oc ? oc->buyer : NULL;
    if (!oc || s_need(call, env, oc->order_id, "order_id") != KF_OK)
        return KF_ERR;
    if (!b || !s_has(b->buyer_id)) {
        kf_call_reject(call, "missing_field", "order.created %s without buyer_id", oc->order_id);
        return KF_ERR;
    }
    int64_t at = oc->has_created_at ? oc->created_at : env->occurred_at;
    s_order(w, env, call, oc->order_id, b->buyer_id, at);
    s_names(call, b->nick, b->name);
    kf_call_arg(call, "city", b->city ? b->city : "");
    kf_call_argi(call, "total", oc->total_fen);
    /* the items, "sku\ttitle" per line (tabs and newlines in titles become spaces) */
    kf_text_t items = {0};
    for (size_t i = 0; i < oc->n_items && i < 50; i++) {
        const Kefu__V1__Item *it = oc->items[i];
        if (!s_has(it->sku_id))
            continue;
        char *sku = s_flat(it->sku_id), *title = s_flat(it->title);
        kf_text_printf(&items, "%s\t%s\n", sku, title);
        free(sku);
        free(title);
    }
    kf_call_arg(call, "items", items.buf ? items.buf : "");
    free(items.buf);
    return KF_OK;
}

int cc_on_paid(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderStatus *st = env->order_paid;
    if (!st || s_need(call, env, st->order_id, "order_id") != KF_OK)
        return KF_ERR;
    const kf_shop_t *shop = s_order(w, env, call, st->order_id, st->buyer_id,
                                    st->has_at ? st->at : env->occurred_at);
    if (st->has_amount_fen)
        kf_call_argi(call, "amount", st->amount_fen);
    s_profile_texts(call, shop);
    return KF_OK;
}

int cc_on_closed(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderStatus *st = env->order_closed;
    if (!st || s_need(call, env, st->order_id, "order_id") != KF_OK)
        return KF_ERR;
    s_order(w, env, call, st->order_id, st->buyer_id, st->has_at ? st->at : env->occurred_at);
    return KF_OK;
}

/* Usage care is planned from the first of a signed scan and order.confirmed. */
static void s_usage(kf_call_t *call, const kf_shop_t *shop)
{
    char *t = s_text(shop, "usage", "im", false, NULL);
    kf_call_arg(call, "t_usage", t);
    free(t);
}

int cc_on_confirmed(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderStatus *st = env->order_confirmed;
    if (!st || s_need(call, env, st->order_id, "order_id") != KF_OK)
        return KF_ERR;
    const kf_shop_t *shop = s_order(w, env, call, st->order_id, st->buyer_id,
                                    st->has_at ? st->at : env->occurred_at);
    s_usage(call, shop);
    return KF_OK;
}

int cc_on_shipped(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderShipped *os = env->order_shipped;
    if (!os || s_need(call, env, os->order_id, "order_id") != KF_OK)
        return KF_ERR;
    if (!s_has(os->tracking_no)) {
        kf_call_reject(call, "missing_field", "order.shipped %s without tracking_no", os->order_id);
        return KF_ERR;
    }
    const kf_shop_t *shop = s_order(w, env, call, os->order_id, os->buyer_id,
                                    os->has_shipped_at ? os->shipped_at : env->occurred_at);
    char *tk = kf_xasprintf("kefu:track:{%s}:%s", env->shop_id, os->tracking_no);
    kf_call_arg(call, "tk", tk);
    free(tk);
    kf_call_arg(call, "tracking", os->tracking_no);
    kf_call_arg(call, "carrier", os->carrier ? os->carrier : "");
    char *t = s_text(shop, "shipped", "im", false, NULL);
    kf_call_arg(call, "tpl", t);
    free(t);
    return KF_OK;
}

/* The order notice a scan state brings (NULL: none). */
static const char *s_scan_kind(int code)
{
    if (code == 1001)
        return "same_city";
    if (code == 5)
        return "out_for_delivery";
    if (code == 3 || (code >= 301 && code <= 304))
        return "signed";
    return NULL;
}

int cc_on_scan(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__LogisticsScan *sc = env->logistics_scan;
    if (!sc || s_need(call, env, sc->tracking_no, "tracking_no") != KF_OK)
        return KF_ERR;
    int64_t at = sc->has_at ? sc->at : env->occurred_at;
    char *tk = kf_xasprintf("kefu:track:{%s}:%s", env->shop_id, sc->tracking_no);
    const kf_shop_t *shop;
    if (s_has(sc->order_id)) {
        shop = s_order(w, env, call, sc->order_id, NULL, at);
    } else { /* found through its tracking number */
        kf_call_partition(call, KF_PART_LOOKUP, tk);
        kf_call_lookup_miss(call, "unknown_shipment");
        kf_call_arg(call, "order", "");
        kf_call_argi(call, "at", at);
        kf_call_argi(call, "clk", s_clock(env, at));
        shop = s_common(w, env, call);
    }
    kf_call_arg(call, "tk", tk);
    free(tk);
    kf_call_arg(call, "city", sc->city ? sc->city : "");
    const char *kind = s_scan_kind(sc->state);
    kf_call_arg(call, "kind", kind ? kind : "");
    if (kind) {
        char *t = s_text(shop, kind, "im", false, NULL);
        kf_call_arg(call, "tpl", t);
        free(t);
        if (strcmp(kind, "signed") == 0)
            s_usage(call, shop);
    }
    return KF_OK;
}

int cc_on_profile(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__BuyerProfile *bp = env->buyer_profile;
    if (!bp || s_need(call, env, bp->buyer_id, "buyer_id") != KF_OK)
        return KF_ERR;
    int year = 0, month = 0, day = 0;
    if (s_has(bp->birthday) &&
        (cc_parse_date(bp->birthday, &year, &month, &day) != KF_OK || year != 0)) {
        kf_call_reject(call, "bad_birthday", "buyer.profile %s: birthday '%s' is not MM-DD",
                       bp->buyer_id, bp->birthday);
        return KF_ERR;
    }
    s_part_buyer(call, env->shop_id, bp->buyer_id);
    const kf_shop_t *shop = s_common(w, env, call);
    int64_t clk = s_clock(env, 0);
    kf_call_arg(call, "buyer", bp->buyer_id);
    kf_call_argi(call, "clk", clk);
    s_names(call, bp->nick, bp->name);
    kf_call_arg(call, "city", bp->city ? bp->city : "");
    kf_text_t tags = {0};
    for (size_t i = 0; i < bp->n_tags && i < 32; i++)
        if (s_has(bp->tags[i]) && !strchr(bp->tags[i], ','))
            kf_text_printf(&tags, "%s%s", tags.buf ? "," : "", bp->tags[i]);
    kf_call_arg(call, "mtags", tags.buf ? tags.buf : "");
    free(tags.buf);
    if (s_has(bp->birthday)) {
        kf_call_arg(call, "birthday", bp->birthday);
        kf_call_argi(call, "bday_at", cc_next_date(clk, shop->offset, 0, month, day));
        char *t = s_text(shop, "birthday", "sms", true, NULL);
        kf_call_arg(call, "t_birthday", t);
        free(t);
    }
    s_profile_texts(call, shop);
    return KF_OK;
}

static const char *s_channel(Kefu__V1__Channel ch)
{
    switch (ch) {
    case KEFU__V1__CHANNEL__CHANNEL_UNSPECIFIED:
    case KEFU__V1__CHANNEL__CHANNEL_IM: return "im";
    case KEFU__V1__CHANNEL__CHANNEL_SMS: return "sms";
    case KEFU__V1__CHANNEL__CHANNEL_PHONE: return "phone";
    default: return NULL;
    }
}

static bool s_in(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

int cc_on_campaign(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__CampaignLaunch *cl = env->campaign_launch;
    if (!cl || s_need(call, env, cl->campaign_id, "campaign_id") != KF_OK)
        return KF_ERR;
    if (strchr(cl->campaign_id, ':') || strlen(cl->campaign_id) > 64) {
        kf_call_reject(call, "bad_id", "campaign_id '%s' has a ':' or is over 64 bytes",
                       cl->campaign_id);
        return KF_ERR;
    }
    if ((s_has(cl->segment) && !s_in(cl->segment, s_segments)) ||
        (s_has(cl->level) && !s_in(cl->level, s_levels))) {
        kf_call_reject(call, "bad_filter", "campaign %s: unknown segment '%s' or level '%s'",
                       cl->campaign_id, cl->segment ? cl->segment : "",
                       cl->level ? cl->level : "");
        return KF_ERR;
    }
    const char *channel = s_channel(cl->channel);
    if (!channel) {
        kf_call_reject(call, "bad_channel", "campaign %s: channel must be im, sms or phone",
                       cl->campaign_id);
        return KF_ERR;
    }
    int64_t clk = s_clock(env, 0);
    int64_t start = cl->has_window_start_at ? cl->window_start_at : clk;
    int64_t end = cl->has_window_end_at ? cl->window_end_at : start + DAY_MS;
    if (end <= start) {
        kf_call_reject(call, "bad_window", "campaign %s: the window ends before it starts",
                       cl->campaign_id);
        return KF_ERR;
    }
    const kf_shop_t *shop = kf_worker_shop(w, env->shop_id);
    const char *name = s_has(cl->name) ? cl->name : cl->campaign_id;
    const char *tmpl = s_has(cl->template_) ? kf_shop_template(shop, cl->template_, channel) : NULL;
    if (!tmpl)
        tmpl = s_has(cl->template_) ? cl->template_ : cc_template(shop, "campaign", channel);
    char err[256];
    char *text = cc_prerender(shop, tmpl, channel, true, NULL, name, err, sizeof(err));
    if (!text) {
        kf_call_reject(call, "bad_template", "campaign %s: %s", cl->campaign_id, err);
        return KF_ERR;
    }
    kf_call_partition(call, KF_PART_BROADCAST, NULL);
    s_common(w, env, call);
    kf_call_arg(call, "camp", cl->campaign_id);
    kf_call_arg(call, "name", name);
    kf_call_arg(call, "segment", cl->segment ? cl->segment : "");
    kf_call_arg(call, "level", cl->level ? cl->level : "");
    kf_text_t tags = {0};
    for (size_t i = 0; i < cl->n_tags && i < 16; i++)
        if (s_has(cl->tags[i]))
            kf_text_printf(&tags, "%s%s", tags.buf ? "," : "", cl->tags[i]);
    kf_call_arg(call, "tags", tags.buf ? tags.buf : "");
    free(tags.buf);
    kf_call_arg(call, "channel", channel);
    kf_call_argi(call, "start", start);
    kf_call_argi(call, "end", end);
    kf_call_argi(call, "clk", clk);
    kf_call_arg(call, "tpl", text);
    free(text);
    return KF_OK;
}

/* shop.config: the agents (birthday gifts) and the festivals, one per line:
 * "<date key>\t<next 10:00 ms>\t<1 every year | 0 once>\t<name>\t<sms text>". */
int cc_on_config(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const kf_shop_t *shop = s_common(w, env, call); /* the runtime just updated the cache */
    char *agents = kf_shop_agents_lines(shop);
    kf_call_arg(call, "agents", agents);
    free(agents);
    int64_t clk = s_clock(env, 0);
    kf_text_t fests = {0};
    for (size_t i = 0; shop->cfg && i < shop->cfg->n_festivals && i < 64; i++) {
        const Kefu__V1__Festival *f = shop->cfg->festivals[i];
        int y, m, d;
        if (!f->date || cc_parse_date(f->date, &y, &m, &d) != KF_OK) {
            kf_log_warn("shop %s: festival date '%s' is not MM-DD or YYYY-MM-DD; skipped",
                        env->shop_id, f->date ? f->date : "");
            continue;
        }
        int64_t due = cc_next_date(clk, shop->offset, y, m, d);
        if (due < 0)
            continue; /* a one-off date that has passed */
        const char *name = s_has(f->name) ? f->name : f->date;
        char *raw = s_text(shop, "festival", "sms", true, name);
        char *text = s_flat(raw), *safe = s_flat(name), *key = s_flat(f->date);
        free(raw);
        kf_text_printf(&fests, "%s\t%lld\t%d\t%s\t%s\n", key, (long long)due, y == 0, safe,
                       text);
        free(text);
        free(safe);
        free(key);
    }
    kf_call_arg(call, "fests", fests.buf ? fests.buf : "");
    free(fests.buf);
    return KF_OK;
}
