/* kefu-review-repair: what C decides per event (causes, due times, channel, texts);
 * review_repair.lua keeps the cases, assigns agents and drives the 30-day window. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_clock.h"
#include "kf_log.h"
#include "kf_tmpl.h"
#include "kf_util.h"
#include "kf_window.h"
#include "review_repair.h"

#define MIN_MS (60 * 1000LL)

/* DOMAIN §3's keyword lists, in the order causes are reported. */
static const struct {
    const char *cause;
    const char *const words[24];
} s_rules[] = {
    {"product", {"破", "坏", "瑕疵", "色差", "味", "线头", "质量", "假", "少", "漏", "过期", "起球",
                 "掉色", "开线", "不能用", NULL}},
    {"subjective", {"尺码", "偏大", "偏小", "贵", "不值", "不喜欢", "一般", "没想象", "不合适",
                    "不好看", NULL}},
    {"service", {"态度", "回复", "客服", "不理", "售后", "退款", "敷衍", NULL}},
    {"logistics", {"慢", "快递", "物流", "包装", "压坏", "丢", "发货", NULL}},
};

/* A demand for money or a threat tied to the review. */
static const char *const s_malicious[] = {"返现", "给钱", "赔钱", "赔偿", "补偿我", "不然",
                                          "否则", "再给差评", "改评价要", "加钱", "威胁", "曝光",
                                          NULL};

static bool s_any(const char *text, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (strstr(text, words[i]))
            return true;
    return false;
}

/* The shop's extra words for a cause (shop.config cause_keywords). */
static bool s_shop_words(const kf_shop_t *shop, const char *cause, const char *text)
{
    for (size_t i = 0; shop && shop->cfg && i < shop->cfg->n_cause_keywords; i++) {
        const Kefu__V1__CauseKeywords *ck = shop->cfg->cause_keywords[i];
        if (!ck->cause || strcmp(ck->cause, cause) != 0)
            continue;
        for (size_t k = 0; k < ck->n_words; k++)
            if (ck->words[k] && *ck->words[k] && strstr(text, ck->words[k]))
                return true;
    }
    return false;
}

void rr_classify(const kf_shop_t *shop, const char *text, char *out, size_t len,
                 bool *money_demand)
{
    size_t used = 0;
    out[0] = '\0';
    text = text ? text : "";
    for (size_t i = 0; i < KF_ARRAY_LEN(s_rules); i++) {
        if (!s_any(text, s_rules[i].words) && !s_shop_words(shop, s_rules[i].cause, text))
            continue;
        int k = snprintf(out + used, len - used, "%s%s", used ? "," : "", s_rules[i].cause);
        if (k > 0 && (size_t)k < len - used)
            used += (size_t)k;
    }
    *money_demand = s_any(text, s_malicious) || s_shop_words(shop, "malicious", text);
    if (*money_demand) {
        int k = snprintf(out + used, len - used, "%smalicious", used ? "," : "");
        if (k > 0 && (size_t)k < len - used)
            used += (size_t)k;
    }
    if (!used)
        snprintf(out, len, "other");
}

/* ---------------------------------------------------------------- handlers */

static const char *s_rating(Kefu__V1__Rating r)
{
    return r == KEFU__V1__RATING__RATING_GOOD      ? "good"
           : r == KEFU__V1__RATING__RATING_NEUTRAL ? "neutral"
           : r == KEFU__V1__RATING__RATING_BAD     ? "bad"
                                                   : NULL;
}

/* Partition by shop; shop and case id. */
static const kf_shop_t *s_common(kf_worker_t *w, const kf_env_t *env, kf_call_t *call,
                                 const char *case_id)
{
    kf_call_partition(call, kf_worker_partition(env->shop_id), NULL);
    kf_call_arg(call, "shop", env->shop_id);
    kf_call_arg(call, "case", case_id);
    return kf_worker_shop(w, env->shop_id);
}

static char *s_render(const kf_shop_t *shop, const char *channel, const char *buyer,
                      const char *item, int64_t at)
{
    const char *t = kf_shop_template(shop, "review_repair", channel);
    if (!t)
        t = kf_tmpl_default("review_repair", channel, NULL);
    char when[32], name[64];
    kf_local_md(at, shop->offset, 0, when, sizeof(when));
    kf_utf8_truncate(buyer, 6, name, sizeof(name));
    kf_tmpl_var_t vars[] = {{"buyer", name}, {"shop", shop->name}, {"item", item},
                            {"review_time", when}}; /* the review's date, not the order's */
    char err[256];
    char *text = t ? kf_tmpl_render(t, vars, KF_ARRAY_LEN(vars), err, sizeof(err)) : NULL;
    if (!text)
        text = kf_xstrdup("");
    return text;
}

int rr_on_posted(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__Review *rv = env->review_posted;
    const char *rating = rv ? s_rating(rv->rating) : NULL;
    if (!env->shop_id || !*env->shop_id || !rv || !rv->review_id || !*rv->review_id || !rating) {
        kf_call_reject(call, "missing_field", "review.posted without shop_id, review_id or rating");
        return KF_ERR;
    }
    char *case_id = kf_xasprintf("rv:%s:%s", env->shop_id, rv->review_id);
    const kf_shop_t *shop = s_common(w, env, call, case_id);
    free(case_id);
    int64_t at = rv->has_at ? rv->at : env->occurred_at;
    const char *buyer_id = rv->buyer && rv->buyer->buyer_id ? rv->buyer->buyer_id : "";
    const char *name = rv->buyer && rv->buyer->name && *rv->buyer->name ? rv->buyer->name
                       : rv->buyer && rv->buyer->nick                    ? rv->buyer->nick
                                                                         : "";
    char causes[128];
    bool money = false;
    rr_classify(shop, rv->text, causes, sizeof(causes), &money);
    kf_call_arg(call, "review", rv->review_id);
    kf_call_arg(call, "order", rv->order_id ? rv->order_id : "");
    kf_call_arg(call, "buyer", buyer_id);
    kf_call_arg(call, "sku", rv->sku_id && *rv->sku_id ? rv->sku_id : "-");
    kf_call_arg(call, "rating", rating);
    kf_call_argf(call, "th", "%08x", kf_fnv1a(rv->text));
    kf_call_arg(call, "causes", causes);
    kf_call_arg(call, "malkw", money ? "1" : "0");
    long long comp = strcmp(rating, "bad") == 0 ? shop->compensation_bad_fen
                                                : shop->compensation_neutral_fen;
    kf_call_argi(call, "comp", comp);
    char *agents = kf_shop_agents_lines(shop);
    kf_call_arg(call, "agents", agents);
    free(agents);
    kf_call_argi(call, "at", at);
    kf_call_argi(call, "off", shop->offset);
    kf_call_argi(call, "cph", shop->cap_phone_daily);
    /* first contact due within 30 min of the next working hour */
    kf_local_t lt;
    kf_local(at, shop->offset, &lt);
    bool working = kf_window_contains(&shop->working, lt.minute_of_day);
    int64_t start = working ? at : kf_window_next_open(&shop->working, 1, at, shop->offset);
    kf_call_argi(call, "due", (start < 0 ? at : start) + 30 * MIN_MS);
    kf_call_arg(call, "ch", working ? "im" : "phone");
    int64_t ph1 = kf_window_next_open(shop->phone, shop->nphone, at, shop->offset);
    int64_t ph2 = ph1 < 0 ? -1
                          : kf_window_next_open(shop->phone, shop->nphone, ph1 + 24 * 60 * MIN_MS,
                                                shop->offset);
    kf_call_argi(call, "phone_at", ph1 < 0 ? at : ph1);
    kf_call_argi(call, "phone2_at", ph2 < 0 ? 0 : ph2);
    char pwin[128];
    kf_shop_allowed_str(shop, "phone", pwin, sizeof(pwin));
    kf_call_arg(call, "pwin", pwin);
    const char *item = rv->item_title && *rv->item_title ? rv->item_title : "宝贝";
    char *im = s_render(shop, "im", name, item, at), *ph = s_render(shop, "phone", name, item, at);
    kf_call_arg(call, "text_im", im);
    kf_call_arg(call, "text_phone", ph);
    free(im);
    free(ph);
    return KF_OK;
}

static int s_on_change(kf_worker_t *w, const kf_env_t *env, kf_call_t *call,
                       const Kefu__V1__Review *rv)
{
    if (!env->shop_id || !*env->shop_id || !rv || !rv->review_id || !*rv->review_id) {
        kf_call_reject(call, "missing_field", "%s without shop_id or review_id", env->topic);
        return KF_ERR;
    }
    char *case_id = kf_xasprintf("rv:%s:%s", env->shop_id, rv->review_id);
    s_common(w, env, call, case_id);
    free(case_id);
    const char *rating = s_rating(rv->rating);
    kf_call_arg(call, "rating", rating ? rating : "");
    kf_call_argf(call, "th", "%08x", kf_fnv1a(rv->text));
    kf_call_argi(call, "at", rv->has_at ? rv->at : env->occurred_at);
    return KF_OK;
}

int rr_on_modified(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    return s_on_change(w, env, call, env->review_modified);
}

int rr_on_deleted(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    return s_on_change(w, env, call, env->review_deleted);
}

static const char *s_status(Kefu__V1__CaseStatus st)
{
    switch (st) {
    case KEFU__V1__CASE_STATUS__CASE_STATUS_CONTACTED: return "contacted";
    case KEFU__V1__CASE_STATUS__CASE_STATUS_PROMISED: return "promised";
    case KEFU__V1__CASE_STATUS__CASE_STATUS_RESOLVED: return "resolved";
    case KEFU__V1__CASE_STATUS__CASE_STATUS_FAILED: return "failed";
    case KEFU__V1__CASE_STATUS__CASE_STATUS_EXPLAINED: return "explained";
    default: return "";
    }
}

/* shop.config: the agents on duty, for reassignments (the runtime keeps the rest). */
int rr_on_config(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const kf_shop_t *shop = kf_worker_shop(w, env->shop_id); /* the runtime just updated it */
    char *agents = kf_shop_agents_lines(shop);
    kf_call_arg(call, "agents", agents);
    free(agents);
    return KF_OK;
}

int rr_on_case(kf_worker_t *w, const kf_env_t *env, kf_call_t *call, void *arg)
{
    const Kefu__V1__CaseUpdated *cu = env->case_updated;
    if (!env->shop_id || !*env->shop_id || !cu || !cu->case_id || !*cu->case_id) {
        kf_call_reject(call, "missing_field", "case.updated without shop_id or case_id");
        return KF_ERR;
    }
    s_common(w, env, call, cu->case_id);
    kf_call_arg(call, "status", s_status(cu->status));
    kf_call_arg(call, "agent", cu->agent_id ? cu->agent_id : "");
    kf_call_argi(call, "comp", cu->has_compensation_fen ? cu->compensation_fen : 0);
    kf_call_argi(call, "at", cu->has_at ? cu->at : env->occurred_at);
    return KF_OK;
}
