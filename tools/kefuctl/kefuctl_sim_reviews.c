/* kefuctl sim: the agents on duty, the buyers' reviews of the confirmed orders and, for the
 * neutral and bad ones, the agents' case updates and the buyers' modifications and deletions
 * (DOMAIN §3, workers/review-repair/README.md), and the rendering of those events.
 *
 * Drawn only from their own streams (one per order, keyed like its shipment) and numbered
 * after every other event of the shop: the rest of the output is the same with or without
 * them (--no-reviews), but for shop.config's `agents`. See kefuctl_sim.c. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_sim.h"
#include "kf_clock.h"
#include "kf_util.h"

#define S_WORK_START (9 * SIM_HOUR_MS) /* the worker's default working hours 09:00-22:00 */
#define S_WORK_END (22 * SIM_HOUR_MS)

/* ------------------------------------------------------------------ the texts */

static const char *const s_good[] = {
    "很好，物超所值", "质量不错，下次还来", "发货快，包装也好", "好评！",
    "东西收到了，挺好的", "和描述一致，满意", "宝贝很喜欢，推荐购买", "性价比高，值得",
    "第二次买了，一如既往的好", "给家里人买的，都说不错",
};

/* The modification's new text. */
static const char *const s_good_again[] = {
    "商家处理很及时，问题解决了，改好评", "客服态度很好，主动联系帮我解决了",
    "补发的已经收到，没问题了", "沟通后很满意，追加好评", "店家很负责，好评",
};

enum { C_PRODUCT, C_SUBJECTIVE, C_SERVICE, C_LOGISTICS, C_MALICIOUS, C_NCAUSES };

static const char *const s_product[] = {
    "有瑕疵，边上开线了", "色差太大了，和图片完全不一样", "有股很重的异味，放了几天还有",
    "线头多，做工粗糙", "质量差，用了两次就坏了",
};
static const char *const s_subjective[] = {
    "尺码偏小，根本用不了", "不值这个价", "一般般吧，没想象中好", "感觉偏大了",
    "不喜欢，和想的不一样",
};
static const char *const s_service[] = {
    "客服态度差，问了半天", "客服一直不回复", "退款慢，申请了好几天都没处理",
    "售后不理人",
};
static const char *const s_logistics[] = {
    "快递太慢了，一个星期才到", "包装压坏了，盒子都扁了", "物流太慢，催了也没用",
};
static const char *const s_malicious[] = {
    "不给我返现20元就不改差评", "再不赔钱就曝光你们",
};

static const struct {
    const char *const *v;
    unsigned n, weight; /* weight: percent of the first cause */
} s_causes[C_NCAUSES] = {
    [C_PRODUCT] = {s_product, KF_ARRAY_LEN(s_product), 35},
    [C_SUBJECTIVE] = {s_subjective, KF_ARRAY_LEN(s_subjective), 20},
    [C_SERVICE] = {s_service, KF_ARRAY_LEN(s_service), 15},
    [C_LOGISTICS] = {s_logistics, KF_ARRAY_LEN(s_logistics), 30},
    [C_MALICIOUS] = {s_malicious, KF_ARRAY_LEN(s_malicious), 0},
};

/* ------------------------------------------------------------------ the case updates */

enum { S_CONTACTED, S_PROMISED, S_RESOLVED, S_FAILED, S_EXPLAINED };

static const char *const s_status[] = {
    [S_CONTACTED] = "contacted", [S_PROMISED] = "promised", [S_RESOLVED] = "resolved",
    [S_FAILED] = "failed", [S_EXPLAINED] = "explained",
};

static const char *const s_notes[][2] = {
    [S_CONTACTED] = {"已旺旺联系买家，了解问题", "已电话联系买家，买家在考虑"},
    [S_PROMISED] = {"买家同意修改评价", "已补偿，买家答应改好评"},
    [S_RESOLVED] = {"已解决", "已解决"},
    [S_FAILED] = {"买家态度坚决，不同意修改", "买家拒绝沟通"},
    [S_EXPLAINED] = {"已在评价下回复解释", "已写解释，说明处理经过"},
};

/* ------------------------------------------------------------------ generation */

unsigned kefuctl_sim_agents(const kefuctl_sim_t *sim, uint16_t shop)
{
    kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_AGENTS, shop, 0);
    return 3 + (unsigned)kefuctl_sim_below(&r, 3);
}

/* A review event; one after the last tick is never printed: only its number is used, so
 * that event ids do not depend on --tail. */
static kefuctl_sim_ev_t *s_push(kefuctl_sim_t *sim, kefuctl_sim_type_t type, int64_t t,
                                uint16_t shop, uint32_t ref)
{
    if (t <= sim->cutoff)
        return kefuctl_sim_push(sim, type, t, shop, ref);
    sim->counter++;
    return NULL;
}

static void s_push_case(kefuctl_sim_t *sim, kefuctl_sim_rng_t *r, int64_t t, uint16_t shop,
                        uint32_t review, unsigned status, int64_t comp_fen)
{
    unsigned note = (unsigned)kefuctl_sim_below(r, 2);
    kefuctl_sim_ev_t *ev = s_push(sim, SIM_EV_CASE_UPDATED, t, shop, review);
    if (!ev)
        return;
    ev->state = (uint16_t)status;
    ev->city = (uint8_t)note;
    ev->early = (uint32_t)comp_fen;
}

/* t when it is in the working hours, else the next working-hours start. */
static int64_t s_working(int64_t t)
{
    int64_t midnight = kf_local_midnight(t, SIM_OFFSET), in_day = t - midnight;
    if (in_day < S_WORK_START)
        return midnight + S_WORK_START;
    if (in_day >= S_WORK_END)
        return midnight + SIM_DAY_MS + S_WORK_START;
    return t;
}

/* t + [lo, hi] minutes (whole seconds), moved into the working hours. */
static int64_t s_later(kefuctl_sim_rng_t *r, int64_t t, int lo, int hi)
{
    return s_working(s_working(t) + kefuctl_sim_range(r, (int64_t)lo * 60, (int64_t)hi * 60) *
                                        1000);
}

/* The text of a neutral or bad review: one cause (20%: two), 5% a malicious demand. */
static void s_gen_text(kefuctl_sim_rng_t *r, kefuctl_sim_review_t *rv)
{
    unsigned x = (unsigned)kefuctl_sim_below(r, 100), c = 0;
    while (x >= s_causes[c].weight)
        x -= s_causes[c++].weight;
    rv->part[rv->nparts++] = (uint16_t)(c << 8 | kefuctl_sim_below(r, s_causes[c].n));
    if (kefuctl_sim_unit(r) < 0.20) {
        unsigned c2 = (c + 1 + (unsigned)kefuctl_sim_below(r, C_MALICIOUS - 1)) % C_MALICIOUS;
        rv->part[rv->nparts++] = (uint16_t)(c2 << 8 | kefuctl_sim_below(r, s_causes[c2].n));
    }
    if (kefuctl_sim_unit(r) < 0.05)
        rv->part[rv->nparts++] =
            (uint16_t)(C_MALICIOUS << 8 | kefuctl_sim_below(r, s_causes[C_MALICIOUS].n));
}

static bool s_is_malicious(const kefuctl_sim_review_t *rv)
{
    for (unsigned i = 0; i < rv->nparts; i++)
        if (rv->part[i] >> 8 == C_MALICIOUS)
            return true;
    return false;
}

/* The agent's work on a neutral/bad review and the buyer's answer: 80% contacted 20-120 min
 * after it (working hours); of those 50% promised then modified 1-3 days later, 10% failed,
 * 15% explained around day 26; 3% of the bad ones deleted instead. */
static void s_gen_case(kefuctl_sim_t *sim, kefuctl_sim_rng_t *r, uint16_t shop, uint32_t idx,
                       int64_t posted)
{
    kefuctl_sim_review_t *rv = &sim->reviews[idx];
    bool mal = s_is_malicious(rv);
    int64_t amount = kefuctl_sim_unit(r) < 0.5 ? 500 : 1000;
    bool deleted = rv->rating == SIM_BAD && kefuctl_sim_unit(r) < 0.03;
    bool contacted = kefuctl_sim_unit(r) < 0.80;
    int64_t t = posted;
    if (contacted) {
        t = s_later(r, posted, 20, 120);
        bool comp = !mal && kefuctl_sim_unit(r) < 0.25;
        s_push_case(sim, r, t, shop, idx, S_CONTACTED, comp ? amount : 0);
    }
    if (deleted) {
        s_push(sim, SIM_EV_REVIEW_DELETED, t + kefuctl_sim_range(r, 86400, 3 * 86400) * 1000,
               shop, idx);
        return;
    }
    if (!contacted)
        return;
    double u = kefuctl_sim_unit(r);
    if (u < 0.50) {
        t = s_later(r, t, 10, 180);
        bool comp = !mal && kefuctl_sim_unit(r) < 0.30;
        s_push_case(sim, r, t, shop, idx, S_PROMISED, comp ? amount : 0);
        rv->same_text = kefuctl_sim_unit(r) < 0.10;
        rv->good_text = (uint8_t)kefuctl_sim_below(r, KF_ARRAY_LEN(s_good_again));
        s_push(sim, SIM_EV_REVIEW_MODIFIED, t + kefuctl_sim_range(r, 86400, 3 * 86400) * 1000,
               shop, idx);
    } else if (u < 0.60) {
        s_push_case(sim, r, s_later(r, t, 30, 300), shop, idx, S_FAILED, 0);
    } else if (u < 0.75) {
        int64_t day26 = posted + 26 * SIM_DAY_MS - 12 * SIM_HOUR_MS;
        s_push_case(sim, r, s_later(r, day26, 0, 24 * 60), shop, idx, S_EXPLAINED, 0);
    }
}

static uint32_t s_review_new(kefuctl_sim_t *sim, uint32_t ship)
{
    if (sim->nreviews == sim->rcap) {
        sim->rcap = sim->rcap ? sim->rcap * 2 : 1024;
        sim->reviews = kf_xrealloc(sim->reviews, sim->rcap * sizeof(*sim->reviews));
    }
    sim->reviews[sim->nreviews] = (kefuctl_sim_review_t){.ship = ship};
    return (uint32_t)sim->nreviews++;
}

/* Each confirmed order: a review 0-3 days after the confirmation; 2.5% neutral or bad (40/60),
 * the good ones published 30% of the time. */
void kefuctl_sim_gen_reviews(kefuctl_sim_t *sim, uint16_t shop, size_t first_ship)
{
    for (size_t i = first_ship; i < sim->nships; i++) {
        const kefuctl_sim_ship_t *sh = &sim->ships[i];
        if (!sh->confirmed_at)
            continue;
        const kefuctl_sim_order_t *o = &sim->orders[sh->order];
        kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_REVIEW, shop,
                                                 kefuctl_sim_order_key(sim, o));
        int64_t posted = sh->confirmed_at + kefuctl_sim_range(&r, 0, 3 * 86400) * 1000;
        bool bad = kefuctl_sim_unit(&r) < 0.025;
        unsigned rating = bad ? (kefuctl_sim_unit(&r) < 0.4 ? SIM_NEUTRAL : SIM_BAD) : SIM_GOOD;
        if (!bad && kefuctl_sim_unit(&r) >= 0.30)
            continue;
        uint32_t idx = s_review_new(sim, (uint32_t)i);
        kefuctl_sim_review_t *rv = &sim->reviews[idx];
        rv->rating = (uint8_t)rating;
        rv->item = (uint8_t)kefuctl_sim_below(&r, o->nitems);
        if (bad)
            s_gen_text(&r, rv);
        else
            rv->good_text = (uint8_t)kefuctl_sim_below(&r, KF_ARRAY_LEN(s_good));
        s_push(sim, SIM_EV_REVIEW_POSTED, posted, shop, idx);
        if (bad)
            s_gen_case(sim, &r, shop, idx, posted);
    }
}

/* ------------------------------------------------------------------ rendering */

static void s_review_id(const kefuctl_sim_t *sim, const kefuctl_sim_review_t *rv, char *buf,
                        size_t len)
{
    char oid[64];
    kefuctl_sim_order_id(&sim->orders[sim->ships[rv->ship].order], oid, sizeof(oid));
    snprintf(buf, len, "rv-%s", oid);
}

/* The posted text: a good one, or the phrases joined with "，". */
static void s_text(const kefuctl_sim_review_t *rv, char *buf, size_t len)
{
    if (rv->rating == SIM_GOOD) {
        snprintf(buf, len, "%s", s_good[rv->good_text % KF_ARRAY_LEN(s_good)]);
        return;
    }
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < rv->nparts && n < len; i++) {
        unsigned c = rv->part[i] >> 8, p = rv->part[i] & 0xff;
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "，" : "", s_causes[c].v[p]);
    }
}

void kefuctl_sim_render_review(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    static const char *const ratings[] = {"good", "neutral", "bad"};
    const kefuctl_sim_review_t *rv = &sim->reviews[ev->ref];
    const kefuctl_sim_order_t *ord = &sim->orders[sim->ships[rv->ship].order];
    char buf[512];
    s_review_id(sim, rv, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "review_id", buf);
    kefuctl_sim_order_id(ord, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "order_id", buf);
    kefuctl_sim_buyer_t by;
    kefuctl_sim_buyer_gen(sim, ord->shop, ord->buyer, &by);
    json_t *buyer = json_object();
    kefuctl_sim_set_str(buyer, "buyer_id", by.id);
    kefuctl_sim_set_str(buyer, "nick", by.nick);
    json_object_set_new(o, "buyer", buyer);
    const char *title;
    kefuctl_sim_set_str(o, "sku_id", kefuctl_sim_sku(ord, rv->item, &title));
    kefuctl_sim_set_str(o, "item_title", title);
    if (ev->type == SIM_EV_REVIEW_POSTED) {
        kefuctl_sim_set_str(o, "rating", ratings[rv->rating]);
        s_text(rv, buf, sizeof(buf));
        kefuctl_sim_set_str(o, "text", buf);
    } else if (ev->type == SIM_EV_REVIEW_MODIFIED) {
        kefuctl_sim_set_str(o, "rating", "good");
        if (rv->same_text)
            s_text(rv, buf, sizeof(buf));
        else
            snprintf(buf, sizeof(buf), "%s",
                     s_good_again[rv->good_text % KF_ARRAY_LEN(s_good_again)]);
        kefuctl_sim_set_str(o, "text", buf);
    }
    kefuctl_sim_set_time(o, "at", ev->t);
}

/* case.updated by the shop's first agent (the worker assigns; the sim cannot know whom). */
void kefuctl_sim_render_case(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    const kefuctl_sim_review_t *rv = &sim->reviews[ev->ref];
    char rid[96], buf[160];
    s_review_id(sim, rv, rid, sizeof(rid));
    snprintf(buf, sizeof(buf), "rv:s%u:%s", (unsigned)ev->shop + 1, rid);
    kefuctl_sim_set_str(o, "case_id", buf);
    kefuctl_sim_set_str(o, "agent_id", "a1");
    kefuctl_sim_set_str(o, "status", s_status[ev->state % KF_ARRAY_LEN(s_status)]);
    kefuctl_sim_set_str(o, "note", s_notes[ev->state % KF_ARRAY_LEN(s_notes)][ev->city & 1]);
    if (ev->early)
        kefuctl_sim_set_int(o, "compensation_fen", ev->early);
    kefuctl_sim_set_time(o, "at", ev->t);
}
