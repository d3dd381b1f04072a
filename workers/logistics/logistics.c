/* kefu-logistics: what C decides per event (partition, promised ship time, agent, which
 * template a contact may need); logistics.lua keeps the shipment and fires the watches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_clock.h"
#include "kf_log.h"
#include "kf_tmpl.h"
#include "kf_util.h"
#include "logistics.h"

#define HOUR_MS (3600 * 1000LL)

/* Built-in im texts for the kinds kf_tmpl has no default for. */
static const struct {
    const char *kind, *text;
} s_texts[] = {
    {"overdue_shipping", "{buyer}亲，非常抱歉！您在{shop}拍下的{item}没能按时发出，我们会在"
                         "{deadline}前为您发货，请您谅解~"},
    {"difficult", "{buyer}亲，您在{shop}买的{item}（{carrier} {tracking_no}）派送遇到了问题，"
                  "麻烦您核对一下收货地址和电话，我们马上联系快递重新派送~"},
    {"signed_by_other", "{buyer}亲，您在{shop}买的{item}（{carrier} {tracking_no}）已由他人代签收，"
                        "请您确认是否收到哦，有问题随时找我们~"},
    {"uncollected", "{buyer}亲，您在{shop}买的{item}已放在快递柜/驿站两天了，记得及时取件哦~"},
    {"out_of_area", "{buyer}亲，您在{shop}买的{item}所在地址超出了{carrier}的派送范围，"
                    "您可以选择自提或改派其他快递，请联系客服为您处理~"},
    {"refused", "{buyer}亲，您在{shop}买的{item}显示被拒收了，请问是遇到什么问题了吗？"
                "我们会尽快为您处理退款或补发，给您添麻烦了~"},
    {"returning", "{buyer}亲，您在{shop}买的{item}（{carrier} {tracking_no}）正在退回，"
                  "我们收到后会第一时间为您处理，请放心~"},
    {"damaged", "{buyer}亲，非常抱歉！您在{shop}买的{item}在运输中破损了，我们马上为您补发或"
                "退款，给您添麻烦了~"},
    {"lost", "{buyer}亲，非常抱歉！您在{shop}买的{item}（{carrier} {tracking_no}）长时间没有"
             "物流更新，我们已向快递公司核查，并会为您补发或退款~"},
    {"area_delay", "{buyer}亲，受天气/节假日影响，您所在地区的快递派送有所延迟，您在{shop}买的"
                   "{item}正在路上，请耐心等待，给您添麻烦了~"},
};

const char *lg_template(const kf_shop_t *shop, const char *kind)
{
    char full[64];
    snprintf(full, sizeof(full), "logistics_%s", kind);
    const char *t = kf_shop_template(shop, full, "im");
    if (!t)
        t = kf_tmpl_default(full, "im", NULL);
    for (size_t i = 0; !t && i < KF_ARRAY_LEN(s_texts); i++)
        if (strcmp(s_texts[i].kind, kind) == 0)
            t = s_texts[i].text;
    return t ? t : "";
}

/* The arguments every logistics step has; partition by <shop>:<order>. */
static const kf_shop_t *s_common(kf_worker_t *w, const kf_env_t *env, kf_call_t *call,
                                 const char *order_id)
{
    const kf_shop_t *shop = kf_worker_shop(w, env->shop_id);
    char *key = kf_xasprintf("%s:%s", env->shop_id, order_id ? order_id : "");
    if (order_id && *order_id)
        kf_call_partition(call, kf_worker_partition(key), NULL);
    free(key);
    char *okey = order_id && *order_id ? kf_xasprintf("kefu:order:{%s}:%s", env->shop_id, order_id)
                                       : kf_xstrdup("");
    kf_call_arg(call, "okey", okey);
    free(okey);
    kf_call_arg(call, "shop", env->shop_id);
    kf_call_arg(call, "order", order_id ? order_id : "");
    kf_call_argi(call, "off", shop->offset);
    kf_call_argi(call, "cph", shop->cap_phone_daily);
    kf_call_arg(call, "shopname", shop->name);
    char *agents = kf_shop_agents_lines(shop); /* the Lua step picks one per order */
    kf_call_arg(call, "agents", agents);
    free(agents);
    return shop;
}

static int s_need(kf_call_t *call, const kf_env_t *env, const char *order_id)
{
    if (!env->shop_id || !*env->shop_id || !order_id || !*order_id) {
        kf_call_reject(call, "missing_field", "%s without shop_id or order_id", env->topic);
        return KF_ERR;
    }
    return KF_OK;
}

int lg_on_created(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderCreated *oc = env->order_created;
    if (!oc || s_need(call, env, oc->order_id) != KF_OK)
        return KF_ERR;
    s_common(w, env, call, oc->order_id);
    const Kefu__V1__Buyer *b = oc->buyer;
    const char *name = b && b->name && *b->name ? b->name : b && b->nick ? b->nick : "";
    char bname[64];
    kf_utf8_truncate(name, 6, bname, sizeof(bname));
    kf_call_arg(call, "bname", bname);
    kf_call_arg(call, "buyer", b && b->buyer_id ? b->buyer_id : "");
    /* the first item: its sku (the title goes to the shop's kefu:sku), or its title alone */
    const Kefu__V1__Item *it = oc->n_items > 0 ? oc->items[0] : NULL;
    kf_call_arg(call, "sku", it && it->sku_id ? it->sku_id : "");
    kf_call_arg(call, "item", it && it->title ? it->title : "");
    kf_call_argi(call, "created", oc->has_created_at ? oc->created_at : env->occurred_at);
    /* the destination, until order.shipped names another */
    const char *city = b && b->city ? b->city : "";
    const char *prov = b && b->province && *b->province ? b->province : lg_province(city);
    kf_call_arg(call, "dest_city", city);
    kf_call_arg(call, "dest_province", prov ? prov : "");
    return KF_OK;
}

int lg_on_paid(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderStatus *st = env->order_paid;
    if (!st || s_need(call, env, st->order_id) != KF_OK)
        return KF_ERR;
    const kf_shop_t *shop = s_common(w, env, call, st->order_id);
    int64_t at = st->has_at ? st->at : env->occurred_at;
    kf_call_argi(call, "promised", at + (int64_t)shop->promised_ship_hours * HOUR_MS);
    kf_call_argi(call, "at", at);
    kf_call_arg(call, "buyer", st->buyer_id ? st->buyer_id : "");
    kf_call_arg(call, "tpl", lg_template(shop, "overdue_shipping"));
    return KF_OK;
}

int lg_on_shipped(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderShipped *os = env->order_shipped;
    if (!os || s_need(call, env, os->order_id) != KF_OK)
        return KF_ERR;
    if (!os->tracking_no || !*os->tracking_no) {
        kf_call_reject(call, "missing_field", "order.shipped %s without tracking_no", os->order_id);
        return KF_ERR;
    }
    s_common(w, env, call, os->order_id);
    kf_call_argi(call, "at", os->has_shipped_at ? os->shipped_at : env->occurred_at);
    kf_call_arg(call, "tracking", os->tracking_no);
    kf_call_arg(call, "carrier", os->carrier ? os->carrier : "");
    kf_call_arg(call, "to_city", os->to_city ? os->to_city : "");
    const char *prov = os->to_province && *os->to_province ? os->to_province
                                                           : lg_province(os->to_city);
    kf_call_arg(call, "to_province", prov ? prov : "");
    kf_call_arg(call, "buyer", os->buyer_id ? os->buyer_id : "");
    if (os->has_promised_ship_by)
        kf_call_argi(call, "promised", os->promised_ship_by);
    return KF_OK;
}

/* The kind a scan's state may need a contact for (NULL: none). */
static const char *s_scan_kind(int code)
{
    switch (code) {
    case 303: return "signed_by_other";
    case 205: return "uncollected";
    case 207: return "out_of_area";
    case 209: return "damaged";
    case 4: case 14: case 401: return "refused";
    case 6: return "returning";
    case 2: case 201: case 203: case 204: case 206: case 210: return "difficult";
    default: return NULL;
    }
}

int lg_on_scan(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__LogisticsScan *sc = env->logistics_scan;
    if (!env->shop_id || !*env->shop_id || !sc || !sc->tracking_no || !*sc->tracking_no) {
        kf_call_reject(call, "missing_field", "logistics.scan without shop_id or tracking_no");
        return KF_ERR;
    }
    const kf_shop_t *shop = s_common(w, env, call, sc->order_id);
    if (!sc->order_id || !*sc->order_id) { /* find the order through its tracking number */
        char *tk = kf_xasprintf("kefu:track:{%s}:%s", env->shop_id, sc->tracking_no);
        kf_call_partition(call, KF_PART_LOOKUP, tk);
        kf_call_lookup_miss(call, "unknown_shipment");
        kf_call_arg(call, "tk", tk);
        free(tk);
    }
    kf_call_argi(call, "at", sc->has_at ? sc->at : env->occurred_at);
    kf_call_argi(call, "code", sc->state);
    kf_call_arg(call, "city", sc->city ? sc->city : "");
    const char *kind = s_scan_kind(sc->state);
    if (kind)
        kf_call_arg(call, "tpl", lg_template(shop, kind));
    kf_call_arg(call, "tpl_lost", lg_template(shop, "lost"));
    return KF_OK;
}

int lg_on_ended(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__OrderStatus *st = env->order_confirmed ? env->order_confirmed
                                                           : env->order_closed;
    if (!st || s_need(call, env, st->order_id) != KF_OK)
        return KF_ERR;
    s_common(w, env, call, st->order_id);
    kf_call_argi(call, "at", st->has_at ? st->at : env->occurred_at);
    return KF_OK;
}

int lg_on_area_delay(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__AreaDelay *ad = env->logistics_area_delay;
    if (!env->shop_id || !*env->shop_id || !ad || ad->n_cities == 0) {
        kf_call_reject(call, "missing_field", "logistics.area_delay without shop_id or cities");
        return KF_ERR;
    }
    const kf_shop_t *shop = s_common(w, env, call, NULL);
    kf_call_partition(call, KF_PART_BROADCAST, NULL);
    size_t len = 0;
    for (size_t i = 0; i < ad->n_cities; i++)
        len += strlen(ad->cities[i]) + 1;
    char *cities = kf_xmalloc(len + 1), *p = cities;
    for (size_t i = 0; i < ad->n_cities; i++)
        p += sprintf(p, "%s\n", ad->cities[i]);
    kf_call_arg(call, "cities", cities);
    free(cities);
    kf_call_argi(call, "until", ad->until);
    /* the notice goes out now: on the simulated clock, the clock's now */
    int64_t now = kf_clock_now();
    kf_call_argi(call, "at", now > 0 ? now : env->occurred_at);
    kf_call_arg(call, "tpl", lg_template(shop, "area_delay"));
    return KF_OK;
}
