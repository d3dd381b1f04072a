/* kefuctl sim: the shipments of the paid orders, their tracking scans with the anomalies,
 * the confirmations and the area delays (DOMAIN §2), and the rendering of those events.
 * Drawn only from their own streams (see kefuctl_sim.c). */
#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_sim.h"
#include "kf_clock.h"
#include "kf_util.h"

/* Logistics (DOMAIN §2): carriers with their share of the parcels (percent) and the letters
 * their tracking numbers start with. */
typedef struct {
    const char *name, *prefix;
    unsigned weight;
} s_carrier_t;

static const s_carrier_t s_carriers[] = {
    {"中通", "ZT", 25}, {"圆通", "YT", 20}, {"韵达", "YD", 15}, {"申通", "ST", 10},
    {"极兔", "JT", 10}, {"顺丰", "SF", 12}, {"邮政", "EMS", 8},
};

/* Remote provinces: transit takes 3-5 days instead of 1-2. */
static const char *const s_remote[] = {"新疆", "西藏", "青海", "内蒙古", "甘肃", "宁夏", "海南"};
/* Where a shop ships from (by shop), the trunk hubs in between, where weather strikes. */
static const char *const s_origins[] = {"杭州", "广州", "上海", "苏州", "深圳", "宁波",
                                        "成都", "武汉", "南京", "东莞", "厦门", "郑州"};
static const char *const s_hubs[] = {"郑州", "武汉", "西安", "成都", "长沙", "南京",
                                     "上海", "广州", "北京", "沈阳", "兰州"};
static const char *const s_big_cities[] = {"上海", "北京", "广州", "深圳", "杭州", "成都",
                                           "武汉"};
/* Scan description words, chosen by the shipment's `words`. */
static const char *const s_outlets[] = {"城东", "城西", "城南", "城北", "高新", "经开",
                                        "新区", "中心"};
static const char *const s_signers[] = {"门卫", "家人", "前台", "物业", "同事", "邻居",
                                        "门卫", "家人"};

/* ------------------------------------------------------------------ logistics */

#define S_MAX_SCANS 24
#define S_PROMISED_SHIP_MS (48 * SIM_HOUR_MS)

typedef enum {
    S_LG_NORMAL, S_LG_NO_PICKUP, S_LG_STALLED, S_LG_DIFFICULT, S_LG_SIGNED_BY_OTHER,
    S_LG_UNCOLLECTED, S_LG_REFUSED, S_LG_OUT_OF_AREA, S_LG_DAMAGED
} s_lg_kind_t;

typedef struct {
    int64_t at;
    uint16_t state;
    uint8_t city, next; /* indexes in kefuctl_sim_places */
} s_scan_t;

/* One shipment's scans as they happen, before they are pushed. */
typedef struct {
    kefuctl_sim_rng_t r;           /* the shipment's stream */
    s_scan_t v[S_MAX_SCANS];
    unsigned n;
    unsigned origin, dest;
} s_track_t;

static int64_t s_hours(kefuctl_sim_rng_t *r, int lo,
                       int hi) /* [lo, hi] hours, whole seconds, in ms */
{
    return kefuctl_sim_range(r, (int64_t)lo * 3600, (int64_t)hi * 3600) * 1000;
}

static int64_t s_scan_add(s_track_t *k, int64_t at, int state, unsigned city, unsigned next)
{
    assert(k->n < S_MAX_SCANS);
    k->v[k->n++] = (s_scan_t){at, (uint16_t)state, (uint8_t)city, (uint8_t)next};
    return at;
}

static unsigned s_place_find(const char *city)
{
    for (unsigned i = 0; i < KF_ARRAY_LEN(kefuctl_sim_places); i++)
        if (strcmp(kefuctl_sim_places[i].city, city) == 0)
            return i;
    assert(!"a logistics city is not in kefuctl_sim_places");
    return 0;
}

static bool s_remote_place(unsigned place)
{
    for (size_t i = 0; i < KF_ARRAY_LEN(s_remote); i++)
        if (strcmp(kefuctl_sim_places[place].province, s_remote[i]) == 0)
            return true;
    return false;
}

/* The first delivery attempt: the next daytime (08:00-20:00 local) 2-14 h after arrival. */
static int64_t s_daytime(kefuctl_sim_rng_t *r, int64_t t)
{
    int64_t midnight = kf_local_midnight(t, SIM_OFFSET), hour = (t - midnight) / SIM_HOUR_MS;
    if (hour >= 8 && hour < 20)
        return t;
    if (hour >= 20)
        midnight += SIM_DAY_MS;
    return midnight + 8 * SIM_HOUR_MS + s_hours(r, 0, 3);
}

/* The trunk route of a parcel: the origin's hub, for a long way a trunk hub, and the
 * destination's hub (1-3 hubs; within one city only its hub). */
static unsigned s_route(s_track_t *k, int64_t span, unsigned path[3])
{
    kefuctl_sim_rng_t *r = &k->r;
    unsigned np = 0;
    path[np++] = k->origin;
    if (k->origin == k->dest)
        return np;
    int64_t lo = (span + 40 * SIM_HOUR_MS - 1) / (40 * SIM_HOUR_MS), hi = span / (12 * SIM_HOUR_MS);
    int64_t hubs = kefuctl_sim_range(r, lo < 1 ? 1 : lo, hi > 3 ? 3 : hi);
    if (hubs == 3) {
        unsigned h;
        do
            h = s_place_find(SIM_PICK(r, s_hubs));
        while (h == k->origin || h == k->dest);
        path[np++] = h;
    }
    if (hubs >= 2)
        path[np++] = k->dest;
    return np;
}

/* Pickup to arrival in the destination city (1001): a 1002 leaving every hub, a 1003
 * reaching every hub after the first, at even intervals (+-25%) over 1-2 days, 3-5 to a
 * remote province; a stalled parcel waits 50-80 h once between two transit scans. Returns
 * the arrival time. */
static int64_t s_gen_transit(s_track_t *k, int64_t t, bool stalled)
{
    kefuctl_sim_rng_t *r = &k->r;
    int64_t span = k->origin == k->dest   ? s_hours(r, 12, 30)
                   : s_remote_place(k->dest) ? s_hours(r, 72, 120)
                                             : s_hours(r, 24, 48);
    unsigned path[3], np = s_route(k, span, path), ng = 2 * np;
    double w[6], sum = 0;
    for (unsigned i = 0; i < ng; i++)
        sum += w[i] = 0.75 + 0.5 * kefuctl_sim_unit(r);
    int64_t gap[6];
    for (unsigned i = 0; i < ng; i++)
        gap[i] = llround((double)span * w[i] / sum / 1000.0) * 1000;
    if (stalled) {
        unsigned g = 1 + (unsigned)kefuctl_sim_below(r, ng - 1);
        gap[g] = s_hours(r, 50, 80);
    }
    t = s_scan_add(k, t + gap[0], 1002, path[0], np > 1 ? path[1] : k->dest);
    for (unsigned i = 1; i < np; i++) {
        t = s_scan_add(k, t + gap[2 * i - 1], 1003, path[i], path[i]);
        t = s_scan_add(k, t + gap[2 * i], 1002, path[i], i + 1 < np ? path[i + 1] : k->dest);
    }
    return s_scan_add(k, t + gap[ng - 1], 1001, k->dest, k->dest);
}

/* The last mile after arrival at t. Each returns when the parcel was signed, 0 if never. */
typedef int64_t(s_mile_fn)(s_track_t *k, int64_t t, s_lg_kind_t kind);

/* By courier (5, then 301 or 303 by someone else) or, 30%, into a locker or station (501,
 * then 304 when the buyer collects it). */
static int64_t s_mile_normal(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    kefuctl_sim_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    if (kind != S_LG_SIGNED_BY_OTHER && kefuctl_sim_unit(r) < 0.3) {
        s_scan_add(k, d, 501, k->dest, k->dest);
        return s_scan_add(k, d + s_hours(r, 1, 30), 304, k->dest, k->dest);
    }
    s_scan_add(k, d, 5, k->dest, k->dest);
    int64_t at = d + kefuctl_sim_range(r, 1800, 5 * 3600) * 1000;
    return s_scan_add(k, at, kind == S_LG_SIGNED_BY_OTHER ? 303 : 301, k->dest, k->dest);
}

/* 204 or 206 on the first attempt; 1-2 days later signed (70%) or returning. */
static int64_t s_mile_difficult(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    kefuctl_sim_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    s_scan_add(k, d, 5, k->dest, k->dest);
    int state = kefuctl_sim_unit(r) < 0.5 ? 204 : 206;
    int64_t f = s_scan_add(k, d + s_hours(r, 1, 4), state, k->dest, k->dest);
    int64_t x = f + s_hours(r, 24, 48);
    if (kefuctl_sim_unit(r) < 0.3) {
        s_scan_add(k, x, 6, k->dest, k->origin);
        return 0;
    }
    return s_scan_add(k, x, 301, k->dest, k->dest);
}

/* In a locker, 205 after a day, collected (304) 2-4 days later. */
static int64_t s_mile_uncollected(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    kefuctl_sim_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    s_scan_add(k, d, 501, k->dest, k->dest);
    int64_t x = s_scan_add(k, d + s_hours(r, 20, 30), 205, k->dest, k->dest);
    return s_scan_add(k, x + s_hours(r, 48, 96), 304, k->dest, k->dest);
}

/* Out for delivery, refused (14), returning (6). */
static int64_t s_mile_refused(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    kefuctl_sim_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    s_scan_add(k, d, 5, k->dest, k->dest);
    int64_t x = s_scan_add(k, d + s_hours(r, 1, 4), 14, k->dest, k->dest);
    s_scan_add(k, x + s_hours(r, 2, 12), 6, k->dest, k->origin);
    return 0;
}

/* 207 out of area; 1-2 days later transferred (7) and delivered, or returning. */
static int64_t s_mile_out_of_area(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    kefuctl_sim_rng_t *r = &k->r;
    int64_t x = s_scan_add(k, t + s_hours(r, 2, 10), 207, k->dest, k->dest);
    int64_t y = x + s_hours(r, 24, 48);
    if (kefuctl_sim_unit(r) < 0.5) {
        s_scan_add(k, y, 6, k->dest, k->origin);
        return 0;
    }
    s_scan_add(k, y, 7, k->dest, k->dest);
    int64_t d = s_daytime(r, y + s_hours(r, 12, 30));
    s_scan_add(k, d, 5, k->dest, k->dest);
    return s_scan_add(k, d + s_hours(r, 1, 5), 301, k->dest, k->dest);
}

/* 209 damaged at the destination, then returning. */
static int64_t s_mile_damaged(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    kefuctl_sim_rng_t *r = &k->r;
    int64_t x = s_scan_add(k, t + s_hours(r, 1, 6), 209, k->dest, k->dest);
    s_scan_add(k, x + s_hours(r, 12, 36), 6, k->dest, k->origin);
    return 0;
}

/* What happens to a shipment, by share (the last one takes the rest). */
static const struct {
    s_lg_kind_t kind;
    double share;
    s_mile_fn *mile; /* NULL: no scan at all */
} s_lg_kinds[] = {
    {S_LG_NO_PICKUP, 0.010, NULL},
    {S_LG_STALLED, 0.030, s_mile_normal},
    {S_LG_DIFFICULT, 0.010, s_mile_difficult},
    {S_LG_SIGNED_BY_OTHER, 0.010, s_mile_normal},
    {S_LG_UNCOLLECTED, 0.005, s_mile_uncollected},
    {S_LG_REFUSED, 0.005, s_mile_refused},
    {S_LG_OUT_OF_AREA, 0.003, s_mile_out_of_area},
    {S_LG_DAMAGED, 0.002, s_mile_damaged},
    {S_LG_NORMAL, 1.0, s_mile_normal},
};

/* A logistics event; one after the last tick is never printed: only its number is used, so
 * that event ids do not depend on --tail. */
static kefuctl_sim_ev_t *s_push_lg(kefuctl_sim_t *sim, kefuctl_sim_type_t type, int64_t t,
                                   uint16_t shop, uint32_t ref)
{
    if (t <= sim->cutoff)
        return kefuctl_sim_push(sim, type, t, shop, ref);
    sim->counter++;
    return NULL;
}

static void s_push_scan(kefuctl_sim_t *sim, const s_scan_t *sc, int64_t t, uint16_t shop,
                        uint32_t ship, uint8_t flags, bool twice)
{
    for (int c = 0; c < 1 + twice; c++) {
        kefuctl_sim_ev_t *ev = s_push_lg(sim, SIM_EV_SCAN, t, shop, ship);
        if (!ev)
            continue;
        ev->flags = flags;
        ev->state = sc->state;
        ev->city = sc->city;
        ev->next = sc->next;
        ev->early = (uint32_t)(t - sc->at);
    }
}

/* The scans as published: 20% without order_id, 1% twice (same content, a new event id),
 * 1% late (published right after the next scan, with its own `at`). */
static void s_push_scans(kefuctl_sim_t *sim, s_track_t *k, uint16_t shop, uint32_t ship)
{
    uint8_t flags[S_MAX_SCANS];
    bool twice[S_MAX_SCANS], late[S_MAX_SCANS];
    for (unsigned i = 0; i < k->n; i++) {
        flags[i] = kefuctl_sim_unit(&k->r) < 0.2 ? SIM_SCAN_NO_ORDER : 0;
        twice[i] = kefuctl_sim_unit(&k->r) < 0.01;
        late[i] = kefuctl_sim_unit(&k->r) < 0.01 && i + 1 < k->n;
    }
    unsigned held = 0; /* the late scans are in [held, i) */
    for (unsigned i = 0; i < k->n; i++) {
        if (late[i])
            continue;
        s_push_scan(sim, &k->v[i], k->v[i].at, shop, ship, flags[i], twice[i]);
        for (; held < i; held++)
            if (late[held])
                s_push_scan(sim, &k->v[held], k->v[i].at, shop, ship, flags[held],
                            twice[held]);
        held = i + 1;
    }
}

/* A paid order's shipment: order.shipped 4-40 h after payment (3%: 50-70 h, after the
 * promised time), its scans, order.confirmed 1-7 days after signing. */
static void s_gen_shipment(kefuctl_sim_t *sim, const kefuctl_sim_order_t *o, unsigned origin)
{
    s_track_t k = {.r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_SHIP, o->shop,
                                           kefuctl_sim_order_key(sim, o)),
                   .origin = origin};
    kefuctl_sim_rng_t *r = &k.r;
    kefuctl_sim_buyer_t by;
    kefuctl_sim_buyer_gen(sim, o->shop, o->buyer, &by);
    k.dest = by.place;
    if (sim->nships == sim->scap) {
        sim->scap = sim->scap ? sim->scap * 2 : 1024;
        sim->ships = kf_xrealloc(sim->ships, sim->scap * sizeof(*sim->ships));
    }
    uint32_t idx = (uint32_t)sim->nships++;
    kefuctl_sim_ship_t *sh = &sim->ships[idx];
    unsigned sum = 0, c = 0;
    for (size_t i = 0; i < KF_ARRAY_LEN(s_carriers); i++)
        sum += s_carriers[i].weight;
    unsigned x = (unsigned)kefuctl_sim_below(r, sum);
    while (x >= s_carriers[c].weight)
        x -= s_carriers[c++].weight;
    bool late = kefuctl_sim_unit(r) < 0.03;
    int64_t shipped = o->end + (late ? s_hours(r, 50, 70) : s_hours(r, 4, 40));
    *sh = (kefuctl_sim_ship_t){.shipped_at = shipped, .order = (uint32_t)(o - sim->orders),
                     .carrier = (uint8_t)c, .dest = (uint8_t)k.dest,
                     .words = (uint16_t)kefuctl_sim_below(r, 65536)};
    s_push_lg(sim, SIM_EV_SHIPPED, shipped, o->shop, idx);
    double u = kefuctl_sim_unit(r);
    size_t kind = 0;
    while (u >= s_lg_kinds[kind].share && kind + 1 < KF_ARRAY_LEN(s_lg_kinds))
        u -= s_lg_kinds[kind++].share;
    if (!s_lg_kinds[kind].mile)
        return;
    int64_t t = s_scan_add(&k, shipped + s_hours(r, 1, 8), 103, origin, origin);
    t = s_gen_transit(&k, t, s_lg_kinds[kind].kind == S_LG_STALLED);
    int64_t signed_at = s_lg_kinds[kind].mile(&k, t, s_lg_kinds[kind].kind);
    s_push_scans(sim, &k, o->shop, idx);
    if (signed_at) {
        int64_t confirmed = signed_at + kefuctl_sim_range(r, 86400, 7 * 86400) * 1000;
        sim->ships[idx].confirmed_at = confirmed; /* the reviews start from it */
        s_push_lg(sim, SIM_EV_CONFIRMED, confirmed, o->shop, idx);
    }
}

/* The shipments of the shop's orders from first on (from its warehouse city, drawn from the
 * seed), or the confirmations of the history's. */
void kefuctl_sim_ship_orders(kefuctl_sim_t *sim, uint16_t shop, size_t first)
{
    kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_ORIGIN, shop, 0);
    unsigned origin = s_place_find(SIM_PICK(&r, s_origins));
    for (size_t i = first; i < sim->norders; i++) {
        kefuctl_sim_order_t *o = &sim->orders[i];
        if (o->history) /* the history's orders were delivered and confirmed long ago */
            s_push_lg(sim, SIM_EV_HISTORY_CONFIRMED, o->end + 5 * SIM_DAY_MS, o->shop, (uint32_t)i);
        else if (o->outcome == SIM_PAID)
            s_gen_shipment(sim, o, origin);
    }
}

/* The shop's shipments, and a weather delay in one big city (the same for every shop) from
 * 12:00 of the first day for 2 days. */
void kefuctl_sim_gen_logistics(kefuctl_sim_t *sim, uint16_t shop, size_t first)
{
    kefuctl_sim_ship_orders(sim, shop, first);
    kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_AREA, 0, 0);
    s_push_lg(sim, SIM_EV_AREA_DELAY, sim->o.start + 12 * SIM_HOUR_MS, shop,
              s_place_find(SIM_PICK(&r, s_big_cities)));
}

/* ------------------------------------------------------------------ rendering */

/* "ZT" + 13 digits: (shop, day, order number) through a bijection of the 13-digit numbers
 * keyed by the seed, so no two shipments of a run share one. The repeat buyers' orders
 * (numbered per shop, shipped up to the end of the longest tail) take (shop, day) slots
 * after all the others. */
static void s_tracking_no(const kefuctl_sim_t *sim, const kefuctl_sim_ship_t *sh, char *buf,
                          size_t len)
{
    const uint64_t mod = 10000000000000ULL, mul = 7394638417319ULL; /* mul: prime to 10 */
    const kefuctl_sim_order_t *o = &sim->orders[sh->order];
    uint64_t day = (uint64_t)((o->created - sim->o.start) / SIM_DAY_MS);
    uint64_t slot = (uint64_t)o->shop * (SIM_MAX_DAYS + 1) + day;
    if (o->care)
        slot = (uint64_t)SIM_MAX_SHOPS * (SIM_MAX_DAYS + 1) +
               (uint64_t)o->shop * (SIM_MAX_DAYS + SIM_MAX_TAIL_DAYS + 1) + day;
    uint64_t key = slot * 10000000ULL + o->n;
    kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_TRACKING, 0, 0);
    uint64_t add = kefuctl_sim_next(&r) % mod;
    uint64_t digits = (uint64_t)(((unsigned __int128)key * mul + add) % mod);
    snprintf(buf, len, "%s%013llu", s_carriers[sh->carrier].prefix, (unsigned long long)digits);
}

/* order.shipped */
void kefuctl_sim_render_shipped(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    const kefuctl_sim_ship_t *sh = &sim->ships[ev->ref];
    const kefuctl_sim_order_t *ord = &sim->orders[sh->order];
    char buf[64];
    kefuctl_sim_order_id(ord, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "order_id", buf);
    kefuctl_sim_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "buyer_id", buf);
    kefuctl_sim_set_str(o, "carrier", s_carriers[sh->carrier].name);
    s_tracking_no(sim, sh, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "tracking_no", buf);
    kefuctl_sim_set_time(o, "shipped_at", sh->shipped_at);
    kefuctl_sim_set_time(o, "promised_ship_by", ord->end + S_PROMISED_SHIP_MS);
    kefuctl_sim_set_str(o, "to_city", kefuctl_sim_places[sh->dest].city);
    kefuctl_sim_set_str(o, "to_province", kefuctl_sim_places[sh->dest].province);
}

/* Scan descriptions: {city} {next} {outlet} {courier} {locker} {signer} {carrier}. The
 * state S_LOCAL_1002 is a 1002 leaving the destination's hub for the outlet. */
#define S_LOCAL_1002 11002
static const struct {
    uint16_t state;
    const char *text;
} s_scan_texts[] = {
    {103, "【{city}市】{city}{outlet}营业部已揽收，揽投员：{courier}师傅"},
    {1002, "快件已在【{city}转运中心】装车，准备发往【{next}】"},
    {S_LOCAL_1002, "快件已从【{city}转运中心】发出，正发往【{city}{outlet}营业部】"},
    {1003, "快件已到达【{city}转运中心】"},
    {1001, "快件已到达【{city}{outlet}营业部】"},
    {5, "【{city}市】{city}{outlet}营业部快递员{courier}师傅正在派件，请保持电话畅通"},
    {501, "快件已放入【{city}{outlet}{locker}】，请凭取件码及时取件"},
    {301, "快件已签收，签收人：本人，感谢使用{carrier}快递"},
    {303, "快件已签收，签收人：{signer}代签，如有疑问请联系快递员"},
    {304, "快件已从【{city}{outlet}{locker}】取出，已签收"},
    {204, "快件派送不成功，原因：收件地址不详，将再次派送"},
    {206, "快件派送不成功，原因：收件人电话无法接通"},
    {205, "快件在【{city}{outlet}{locker}】滞留超过24小时未取，请尽快取件"},
    {14, "收件人拒收，快件将退回寄件人"},
    {6, "快件退回中，正发往寄件人所在地【{next}】"},
    {207, "收件地址超出派送范围（超区），请联系商家改派或自提"},
    {7, "快件已转投中国邮政，由邮政继续派送"},
    {209, "快件在【{city}】派送前发现外包装破损，已联系寄件人处理"},
};

/* The description of a scan: its template with the words of the shipment filled in (the
 * pickup's outlet and courier are the origin's). */
static void s_describe(const kefuctl_sim_ev_t *ev, const kefuctl_sim_ship_t *sh, char *buf,
                       size_t len)
{
    unsigned w = sh->words, o = ev->state == 103 ? w >> 8 : w;
    const char *names[] = {"city", "next", "outlet", "courier", "locker", "signer", "carrier"};
    const char *values[] = {kefuctl_sim_places[ev->city].city, kefuctl_sim_places[ev->next].city,
                            s_outlets[o & 7], kefuctl_sim_surnames[(o >> 3) & 15],
                            w & 0x80 ? "菜鸟驿站" : "丰巢快递柜", s_signers[(w >> 12) & 7],
                            s_carriers[sh->carrier].name};
    const char *tmpl = "";
    unsigned state = ev->state == 1002 && ev->city == ev->next ? S_LOCAL_1002 : ev->state;
    for (size_t i = 0; i < KF_ARRAY_LEN(s_scan_texts); i++)
        if (s_scan_texts[i].state == state)
            tmpl = s_scan_texts[i].text;
    size_t n = 0;
    buf[0] = '\0';
    for (const char *p = tmpl; *p && n + 1 < len;) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        size_t k = 0;
        while (end && k < KF_ARRAY_LEN(names) &&
               (strlen(names[k]) != (size_t)(end - p - 1) || strncmp(names[k], p + 1, end - p - 1)))
            k++;
        if (end && k < KF_ARRAY_LEN(names)) {
            n += (size_t)snprintf(buf + n, len - n, "%s", values[k]);
            p = end + 1;
        } else {
            buf[n++] = *p++;
            buf[n] = '\0';
        }
    }
}

/* logistics.scan: `at` is when the scan happened, occurred_at when it was published */
void kefuctl_sim_render_scan(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    const kefuctl_sim_ship_t *sh = &sim->ships[ev->ref];
    char buf[256];
    s_tracking_no(sim, sh, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "tracking_no", buf);
    if (!(ev->flags & SIM_SCAN_NO_ORDER)) {
        kefuctl_sim_order_id(&sim->orders[sh->order], buf, sizeof(buf));
        kefuctl_sim_set_str(o, "order_id", buf);
    }
    kefuctl_sim_set_str(o, "carrier", s_carriers[sh->carrier].name);
    kefuctl_sim_set_int(o, "state", ev->state);
    kefuctl_sim_set_str(o, "city", kefuctl_sim_places[ev->city].city);
    s_describe(ev, sh, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "description", buf);
    kefuctl_sim_set_time(o, "at", ev->t - ev->early);
}

void kefuctl_sim_render_confirmed(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    const kefuctl_sim_order_t *ord = &sim->orders[sim->ships[ev->ref].order];
    char buf[64];
    kefuctl_sim_order_id(ord, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "order_id", buf);
    kefuctl_sim_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "buyer_id", buf);
    kefuctl_sim_set_time(o, "at", ev->t);
}

/* A history order's confirmation: ref is the order itself (it has no shipment here). */
void kefuctl_sim_render_history_confirmed(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev,
                                          json_t *o)
{
    const kefuctl_sim_order_t *ord = &sim->orders[ev->ref];
    char buf[64];
    kefuctl_sim_order_id(ord, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "order_id", buf);
    kefuctl_sim_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "buyer_id", buf);
    kefuctl_sim_set_time(o, "at", ev->t);
}

void kefuctl_sim_render_area_delay(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    json_t *cities = json_array();
    json_array_append_new(cities, json_string(kefuctl_sim_places[ev->ref].city));
    json_object_set_new(o, "cities", cities);
    kefuctl_sim_set_time(o, "until", ev->t + 2 * SIM_DAY_MS);
    kefuctl_sim_set_str(o, "reason", "weather");
    kefuctl_sim_set_str(o, "note", "暴雨红色预警，部分快件派送延误");
}
