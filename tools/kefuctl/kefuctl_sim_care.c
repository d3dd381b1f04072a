/* kefuctl sim: customer care (DOMAIN §4, workers/crm-care/README.md): buyer profiles with
 * birthdays and manual tags, repeat buyers who buy a consumable every cycle, the shops'
 * festivals and a campaign per shop, and the rendering of those events.
 *
 * The repeat buyers are buyers of their own, after the pool (the pool's buyers order at
 * random, which would blur a cycle). 55% still buy: a consumable every 14-45 days (+-2 days)
 * from 90-130 days before the start on, and each time the next one falls due they buy again
 * (80%) or stop; for half of them it falls due so that the replenishment reminder (last
 * purchase + 0.85 of the interval) comes in the first days of the run. The others stopped
 * 60-200 days before the start after 1-6 orders: at risk, hibernating or lost.
 *
 * Drawn only from their own streams and numbered in a series of their own (event ids
 * sim<seed>-s<shop>-c<n>): every other event is the same with or without them (--no-care),
 * but shop.config (its festivals and, with a history, its time, before the repeat buyers'
 * first orders). Nothing here depends on --tail (an event after the last tick only takes
 * its number), so neither do the event ids. See kefuctl_sim.c. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_sim.h"
#include "kf_clock.h"
#include "kf_util.h"

/* Birthdays and due purchases are steered into the run's days and the S_STEER_DAYS after
 * them (the demo's tail), whatever --tail is: so that a short run shows them too. */
#define S_STEER_DAYS 10
#define S_MAX_BUYS 64 /* a repeat buyer's orders: at most (130 + 366 + 28) / 14 + 1 */

/* ------------------------------------------------------------------ the data */

enum { T_VIP = 1, T_BABY = 2, T_STUDENT = 4, T_CAT = 8, T_COMPANY = 16 };
static const char *const s_tag_names[] = {"VIP", "母婴", "学生", "铲屎官", "企业采购"};

/* The consumables (the last SIM_NCONSUMABLES of the catalog, in its order), how long one
 * lasts, and the manual tag their buyers often carry. */
static const struct {
    int cycle_lo, cycle_hi; /* days */
    unsigned tag;
} s_items[SIM_NCONSUMABLES] = {
    {14, 20, T_BABY}, /* 纸尿裤 */
    {30, 45, T_CAT},  /* 猫粮 */
    {21, 30, 0},      /* 咖啡豆 */
    {30, 45, 0},      /* 洗衣液 */
    {20, 30, 0},      /* 抽纸 */
    {14, 21, T_CAT},  /* 猫砂 */
};

/* Every year's dates; the shop's anniversary (店庆) is added as a dated one. */
static const struct {
    const char *mmdd, *name;
} s_festivals[] = {
    {"01-01", "元旦"}, {"06-18", "618"}, {"11-11", "双十一"}, {"12-12", "双十二"},
};

/* The campaign of shop i: s_campaigns[i % n]. A name short enough for a 70-character sms. */
typedef struct {
    const char *id, *name, *segment, *tag, *level, *channel;
} s_campaign_t;

static const s_campaign_t s_campaigns[] = {
    {"winback", "老客回归礼", "at_risk", NULL, NULL, "sms"},
    {"members", "会员专享日", "champions", NULL, NULL, "im"},
    {"baby", "母婴囤货节", NULL, "母婴", "silver", "im"},
};

static const int s_month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* ------------------------------------------------------------------ the repeat buyers */

uint32_t kefuctl_sim_care_buyers(const kefuctl_sim_opts_t *o)
{
    long long n = o->orders / 8;
    return (uint32_t)(n < 8 ? 8 : n > 5000 ? 5000 : n);
}

typedef struct {
    bool active;   /* still buys */
    unsigned item; /* index in s_items */
    int cycle;     /* days */
} s_repeat_t;

/* Repeat buyer k: who they are, then the rest of their stream. */
static kefuctl_sim_rng_t s_repeat(const kefuctl_sim_t *sim, uint16_t shop, uint32_t k,
                                  s_repeat_t *rb)
{
    kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_CARE, shop, k);
    rb->active = kefuctl_sim_unit(&r) < 0.55;
    rb->item = (unsigned)kefuctl_sim_below(&r, SIM_NCONSUMABLES);
    rb->cycle = (int)kefuctl_sim_range(&r, s_items[rb->item].cycle_lo, s_items[rb->item].cycle_hi);
    return r;
}

/* The days (from the start) a buyer who still buys buys on, as planned, ascending: every
 * c days from 90-130 days back to the next purchase, due half of the time so that the
 * replenishment reminder (0.85 c after the last purchase) comes on one of the run's days,
 * then on (80% each time) up to the end of the longest tail, so that a longer --tail only
 * shows more. */
static unsigned s_active_days(const kefuctl_sim_t *sim, kefuctl_sim_rng_t *r, int c,
                              int days[S_MAX_BUYS])
{
    int next = kefuctl_sim_unit(r) < 0.5
                   ? (c * 15 + 99) / 100 + (int)kefuctl_sim_below(r, sim->o.days + S_STEER_DAYS)
                   : (int)kefuctl_sim_below(r, (uint64_t)c);
    int since = (int)kefuctl_sim_range(r, 90, 130), end = (int)sim->o.days + SIM_MAX_TAIL_DAYS - 2;
    int n = 0, d = next - c;
    while (d - c >= -since)
        d -= c;
    for (; d < next; d += c)
        days[n++] = d;
    for (d = next; d < end && n < S_MAX_BUYS && kefuctl_sim_unit(r) < 0.8; d += c)
        days[n++] = d;
    return (unsigned)n;
}

/* ... and for one who stopped 60-200 days ago, after 1-6 orders every c days (none more
 * than 237 days back: the shop's config comes 240 days before). */
static unsigned s_lapsed_days(kefuctl_sim_rng_t *r, int c, int days[S_MAX_BUYS])
{
    int last = -(int)kefuctl_sim_range(r, 60, 200), want = 1 + (int)kefuctl_sim_below(r, 6);
    int n = 0;
    while (n < want && last - n * c >= 3 - SIM_CARE_HISTORY_DAYS)
        n++;
    for (int i = 0; i < n; i++)
        days[i] = last - (n - 1 - i) * c;
    return (unsigned)n;
}

/* One order of repeat buyer k on day d (from the start, +-2 days): 1 or 2 of the
 * consumable, paid within 20 minutes. A past one is left out without a history. */
static void s_buy(kefuctl_sim_t *sim, kefuctl_sim_rng_t *r, uint16_t shop, uint32_t k,
                  const s_repeat_t *rb, int d, uint32_t *n)
{
    d += (int)kefuctl_sim_range(r, -2, 2);
    int64_t created = kefuctl_sim_pick_time(r, sim->o.start + d * SIM_DAY_MS);
    int qty = kefuctl_sim_unit(r) < 0.2 ? 2 : 1;
    int64_t paid = created + kefuctl_sim_range(r, 60, 1200) * 1000;
    bool past = created < sim->o.start;
    if (past && !sim->o.history)
        return;
    kefuctl_sim_order_t *o = kefuctl_sim_order_new(sim);
    o->created = created;
    o->end = paid;
    o->buyer = sim->npool + k;
    o->n = ++*n;
    o->shop = shop;
    o->history = past;
    o->care = 1;
    o->promo = !past && d < sim->o.days && sim->o.promo[d + 1];
    o->outcome = SIM_PAID;
    o->nitems = 1;
    o->sku[0] = kefuctl_sim_consumable(rb->item);
    o->qty[0] = (uint8_t)qty;
    o->total_fen = kefuctl_sim_order_total(o);
    kefuctl_sim_push_order(sim, o);
}

static void s_gen_repeat(kefuctl_sim_t *sim, uint16_t shop, uint32_t k, uint32_t *n)
{
    s_repeat_t rb;
    kefuctl_sim_rng_t r = s_repeat(sim, shop, k, &rb);
    int days[S_MAX_BUYS];
    unsigned nbuys =
        rb.active ? s_active_days(sim, &r, rb.cycle, days) : s_lapsed_days(&r, rb.cycle, days);
    for (unsigned i = 0; i < nbuys; i++)
        s_buy(sim, &r, shop, k, &rb, days[i], n);
}

/* ------------------------------------------------------------------ the profiles */

/* "MMDD" as a number: 2% on a day of the run (steered), else any day of a year without
 * 29 February. */
static uint16_t s_birthday(const kefuctl_sim_t *sim, kefuctl_sim_rng_t *r)
{
    if (kefuctl_sim_unit(r) < 0.02) {
        kf_local_t t;
        int64_t d = (int64_t)kefuctl_sim_below(r, (uint64_t)sim->o.days + S_STEER_DAYS);
        kf_local(sim->o.start + d * SIM_DAY_MS + 12 * SIM_HOUR_MS, SIM_OFFSET, &t);
        return (uint16_t)(t.month * 100 + t.day);
    }
    int day = (int)kefuctl_sim_below(r, 365), m = 0;
    while (day >= s_month_days[m])
        day -= s_month_days[m++];
    return (uint16_t)((m + 1) * 100 + day + 1);
}

/* The manual tags: a few VIP, students and company buyers; a repeat buyer often carries
 * the tag of what they buy (母婴 for nappies), a few others 母婴 or 铲屎官 as well. */
static uint32_t s_tags(const kefuctl_sim_t *sim, kefuctl_sim_rng_t *r, uint16_t shop, uint32_t b)
{
    uint32_t tags = 0;
    if (kefuctl_sim_unit(r) < 0.06)
        tags |= T_VIP;
    if (kefuctl_sim_unit(r) < 0.08)
        tags |= T_STUDENT;
    if (kefuctl_sim_unit(r) < 0.02)
        tags |= T_COMPANY;
    unsigned usual = 0;
    if (b >= sim->npool) {
        s_repeat_t rb;
        s_repeat(sim, shop, b - sim->npool, &rb);
        usual = s_items[rb.item].tag;
    }
    double u = kefuctl_sim_unit(r);
    if (usual)
        tags |= u < 0.6 ? usual : 0;
    else
        tags |= u < 0.05 ? T_BABY : u < 0.09 ? T_CAT : 0;
    return tags;
}

/* A profile for 60% of the pool and 80% of the repeat buyers (who fill theirs in more
 * often), 85% of them with a birthday: a CRM import spread over half an hour from at. */
static void s_gen_profiles(kefuctl_sim_t *sim, uint16_t shop, int64_t at)
{
    uint32_t n = sim->npool + sim->ncare;
    int64_t step = 30 * SIM_MIN_MS / n;
    if (step > 1000)
        step = 1000;
    for (uint32_t b = 0; b < n; b++) {
        kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_PROFILE, shop, b);
        if (kefuctl_sim_unit(&r) >= (b < sim->npool ? 0.60 : 0.80))
            continue;
        kefuctl_sim_ev_t *ev = kefuctl_sim_push(sim, SIM_EV_PROFILE, at + b * step, shop, b);
        ev->state = kefuctl_sim_unit(&r) < 0.85 ? s_birthday(sim, &r) : 0;
        ev->early = s_tags(sim, &r, shop, b);
    }
}

/* ------------------------------------------------------------------ generation */

/* Which month-days have a birthday care (10:00) before the last tick: for the summary. */
void kefuctl_sim_care_prepare(kefuctl_sim_t *sim)
{
    for (int64_t t = sim->o.start + 10 * SIM_HOUR_MS; t <= sim->cutoff; t += SIM_DAY_MS) {
        kf_local_t l;
        kf_local(t, SIM_OFFSET, &l);
        sim->bday_in_run[l.month * 100 + l.day] = true;
    }
}

/* The shop's profiles (from config_at + 10 min), its campaign (day 2, 10:00-20:00), its
 * repeat buyers' orders and their shipments and reviews, numbered in the care series. */
void kefuctl_sim_gen_care(kefuctl_sim_t *sim, uint16_t shop, int64_t config_at)
{
    size_t first_ev = sim->nevs, first_order = sim->norders;
    uint32_t counter = sim->counter;
    sim->counter = 0;
    s_gen_profiles(sim, shop, config_at + 10 * SIM_MIN_MS);
    kefuctl_sim_push(sim, SIM_EV_CAMPAIGN, sim->o.start + SIM_DAY_MS + 10 * SIM_HOUR_MS, shop,
                     shop);
    uint32_t n = 0;
    for (uint32_t k = 0; k < sim->ncare; k++)
        s_gen_repeat(sim, shop, k, &n);
    if (sim->o.logistics) {
        size_t first_ship = sim->nships;
        kefuctl_sim_ship_orders(sim, shop, first_order);
        if (sim->o.reviews)
            kefuctl_sim_gen_reviews(sim, shop, first_ship);
    }
    for (size_t i = first_ev; i < sim->nevs; i++)
        sim->evs[i].flags |= SIM_EV_CARE;
    sim->counter = counter;
}

/* ------------------------------------------------------------------ rendering */

/* shop.config's festivals: every year's, and the shop's anniversary 3 days after the start
 * (or the first day after that without a festival), so that every run has one early. */
void kefuctl_sim_render_festivals(const kefuctl_sim_t *sim, json_t *o)
{
    json_t *list = json_array();
    for (size_t i = 0; i < KF_ARRAY_LEN(s_festivals); i++) {
        json_t *f = json_object();
        kefuctl_sim_set_str(f, "date", s_festivals[i].mmdd);
        kefuctl_sim_set_str(f, "name", s_festivals[i].name);
        json_array_append_new(list, f);
    }
    char date[16];
    for (int64_t d = 3;; d++) {
        kf_local_t t;
        kf_local(sim->o.start + d * SIM_DAY_MS, SIM_OFFSET, &t);
        snprintf(date, sizeof(date), "%04d-%02d-%02d", t.year % 10000, t.month % 100, t.day % 100);
        bool taken = false;
        for (size_t i = 0; i < KF_ARRAY_LEN(s_festivals); i++)
            taken = taken || strcmp(date + 5, s_festivals[i].mmdd) == 0;
        if (!taken)
            break;
    }
    json_t *f = json_object();
    kefuctl_sim_set_str(f, "date", date);
    kefuctl_sim_set_str(f, "name", "店庆");
    json_array_append_new(list, f);
    json_object_set_new(o, "festivals", list);
}

void kefuctl_sim_render_profile(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    kefuctl_sim_buyer_t by;
    kefuctl_sim_buyer_gen(sim, ev->shop, ev->ref, &by);
    kefuctl_sim_set_str(o, "buyer_id", by.id);
    if (ev->state) {
        char bday[8];
        snprintf(bday, sizeof(bday), "%02u-%02u", ev->state / 100u % 100, ev->state % 100u);
        kefuctl_sim_set_str(o, "birthday", bday);
    }
    if (ev->early) {
        json_t *tags = json_array();
        for (size_t i = 0; i < KF_ARRAY_LEN(s_tag_names); i++)
            if (ev->early & 1u << i)
                json_array_append_new(tags, json_string(s_tag_names[i]));
        json_object_set_new(o, "tags", tags);
    }
    kefuctl_sim_set_str(o, "nick", by.nick);
    kefuctl_sim_set_str(o, "name", by.name);
    kefuctl_sim_set_str(o, "phone", by.phone);
    kefuctl_sim_set_str(o, "city", kefuctl_sim_places[by.place].city);
}

/* campaign.launch: id c<yyyymmdd>-<kind>, sent from its time to 20:00 the same day */
void kefuctl_sim_render_campaign(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    const s_campaign_t *c = &s_campaigns[ev->ref % KF_ARRAY_LEN(s_campaigns)];
    char id[64];
    snprintf(id, sizeof(id), "c%08d-%s", kf_local_yyyymmdd(ev->t, SIM_OFFSET), c->id);
    kefuctl_sim_set_str(o, "campaign_id", id);
    kefuctl_sim_set_str(o, "name", c->name);
    if (c->segment)
        kefuctl_sim_set_str(o, "segment", c->segment);
    if (c->tag) {
        json_t *tags = json_array();
        json_array_append_new(tags, json_string(c->tag));
        json_object_set_new(o, "tags", tags);
    }
    if (c->level)
        kefuctl_sim_set_str(o, "level", c->level);
    kefuctl_sim_set_str(o, "channel", c->channel);
    kefuctl_sim_set_time(o, "window_start_at", ev->t);
    kefuctl_sim_set_time(o, "window_end_at", kf_local_at(ev->t, SIM_OFFSET, 0, 20, 0));
}
