/* kf_tmpl: see kf_tmpl.h. Character counts are Unicode code points of valid UTF-8 (what an
 * sms gateway counts); every cut lands on a lead byte. */
#include "kf_tmpl.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_util.h"


static bool s_is_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

/* Byte length of the longest prefix of s with at most max_chars characters and at most
 * max_bytes bytes that ends on a character boundary; *nchars gets its character count. */
static size_t s_prefix(const char *s, size_t max_chars, size_t max_bytes, size_t *nchars)
{
    size_t i = 0, n = 0;
    while (s[i] && n < max_chars) {
        size_t j = i + 1;
        while (s_is_cont(s[j]))
            j++;
        if (j > max_bytes)
            break;
        i = j;
        n++;
    }
    *nchars = n;
    return i;
}

size_t kf_utf8_truncate(const char *s, size_t max_chars, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return 0;
    out[0] = '\0';
    if (!s)
        return 0;
    size_t n;
    size_t len = s_prefix(s, max_chars, outlen - 1, &n);
    if (s[len] == '\0') {
        memcpy(out, s, len);
        out[len] = '\0';
        return n;
    }
    if (max_chars == 0 || outlen < sizeof(KF_TMPL_ELLIPSIS))
        return 0;
    len = s_prefix(s, max_chars - 1, outlen - sizeof(KF_TMPL_ELLIPSIS), &n);
    memcpy(out, s, len);
    memcpy(out + len, KF_TMPL_ELLIPSIS, sizeof(KF_TMPL_ELLIPSIS));
    return n + 1;
}

/* ---- rendering ------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} s_buf_t;

static void s_buf_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->p = kf_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static const kf_tmpl_var_t *s_find(const kf_tmpl_var_t *vars, size_t nvars, const char *name,
                                   size_t len)
{
    for (size_t i = 0; i < nvars; i++)
        if (vars[i].key && strlen(vars[i].key) == len && memcmp(vars[i].key, name, len) == 0)
            return &vars[i];
    return NULL;
}

static bool s_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* *pp points at '{' (not "{{"): appends the value and moves past the '}'. */
static int s_placeholder(s_buf_t *b, const char **pp, size_t at, const kf_tmpl_var_t *vars,
                         size_t nvars, char *err, size_t errlen)
{
    const char *name = *pp + 1;
    size_t len = 0;
    while (s_name_char(name[len]))
        len++;
    if (name[len] != '}') {
        kf_err(err, errlen, "%s placeholder at byte %zu (names are letters, digits and '_'; "
              "write '{{' for a literal brace)", name[len] ? "bad" : "unterminated", at);
        return KF_ERR;
    }
    if (len == 0) {
        kf_err(err, errlen, "empty placeholder {} at byte %zu", at);
        return KF_ERR;
    }
    const kf_tmpl_var_t *v = s_find(vars, nvars, name, len);
    if (!v) {
        kf_err(err, errlen, "unknown placeholder {%.*s}", (int)len, name);
        return KF_ERR;
    }
    if (!v->value) {
        kf_err(err, errlen, "placeholder {%.*s} has no value", (int)len, name);
        return KF_ERR;
    }
    size_t vlen = strlen(v->value);
    if (!kf_utf8_valid(v->value, vlen)) {
        kf_err(err, errlen, "value of {%.*s} is not valid UTF-8", (int)len, name);
        return KF_ERR;
    }
    s_buf_put(b, v->value, vlen);
    *pp = name + len + 1;
    return KF_OK;
}

char *kf_tmpl_render(const char *tmpl, const kf_tmpl_var_t *vars, size_t nvars, char *err,
                     size_t errlen)
{
    if (!tmpl) {
        kf_err(err, errlen, "no template");
        return NULL;
    }
    if (!kf_utf8_valid(tmpl, strlen(tmpl))) {
        kf_err(err, errlen, "template is not valid UTF-8");
        return NULL;
    }
    s_buf_t b = {0};
    s_buf_put(&b, "", 0);
    const char *p = tmpl;
    while (*p) {
        size_t lit = strcspn(p, "{}");
        s_buf_put(&b, p, lit);
        p += lit;
        if (*p == '\0')
            break;
        if (p[1] == p[0]) { /* "{{" or "}}" */
            s_buf_put(&b, p, 1);
            p += 2;
        } else if (*p == '}') {
            kf_err(err, errlen, "single '}' at byte %zu (write '}}' for a literal brace)",
                  (size_t)(p - tmpl));
            goto fail;
        } else if (s_placeholder(&b, &p, (size_t)(p - tmpl), vars, nvars, err, errlen) != KF_OK) {
            goto fail;
        }
    }
    return b.p;
fail:
    free(b.p);
    return NULL;
}

/* ---- sms ------------------------------------------------------------------------------- */

static char *s_append_optout(char *text)
{
    char *out = kf_xasprintf("%s%s", text, KF_TMPL_OPTOUT);
    free(text);
    return out;
}

/* Renders with vars[item] replaced by value (vars copied; the caller's array untouched). */
static char *s_render_item(const char *tmpl, const kf_tmpl_var_t *vars, size_t nvars,
                           size_t item, const char *value)
{
    kf_tmpl_var_t *copy = kf_xmalloc(nvars * sizeof(*copy));
    memcpy(copy, vars, nvars * sizeof(*copy));
    copy[item].value = value;
    char *text = kf_tmpl_render(tmpl, copy, nvars, NULL, 0);
    free(copy);
    return text;
}

/* The text rendered from tmpl is total characters (suffix included) > max: shortens the
 * {item} value until it fits. Returns the text without the suffix, or NULL with err. */
static char *s_sms_shorten(const char *tmpl, const kf_tmpl_var_t *vars, size_t nvars,
                           size_t suffix, size_t max, size_t total, char *err, size_t errlen)
{
    const kf_tmpl_var_t *iv = s_find(vars, nvars, "item", 4);
    size_t item_chars = iv && iv->value ? kf_utf8_len(iv->value) : 0;
    size_t fixed = total, uses = 0;
    if (item_chars > 0) {
        /* how often {item} occurs, from the length without it */
        char *bare = s_render_item(tmpl, vars, nvars, (size_t)(iv - vars), "");
        fixed = kf_utf8_len(bare) + suffix;
        free(bare);
        uses = (total - fixed) / item_chars;
    }
    size_t least = item_chars < KF_TMPL_ITEM_MIN ? item_chars : KF_TMPL_ITEM_MIN;
    if (uses == 0 || fixed + uses * least > max) {
        if (uses == 0)
            kf_err(err, errlen, "sms is %zu characters over the limit of %zu and has no {item} "
                  "to shorten", fixed - max, max);
        else
            kf_err(err, errlen, "sms is %zu characters over the limit of %zu even with {item} "
                  "shortened to %zu", fixed + uses * least - max, max, least);
        return NULL;
    }
    size_t want = (max - fixed) / uses; /* < item_chars because total > max */
    size_t cap = strlen(iv->value) + sizeof(KF_TMPL_ELLIPSIS);
    char *shortened = kf_xmalloc(cap);
    kf_utf8_truncate(iv->value, want, shortened, cap);
    char *text = s_render_item(tmpl, vars, nvars, (size_t)(iv - vars), shortened);
    free(shortened);
    if (text && kf_utf8_len(text) + suffix > max) { /* cannot happen: counted above */
        kf_err(err, errlen, "sms still over the limit of %zu after shortening", max);
        free(text);
        return NULL;
    }
    return text;
}

char *kf_tmpl_sms(const char *tmpl, const kf_tmpl_var_t *vars, size_t nvars, bool marketing,
                  size_t max_chars, char *err, size_t errlen)
{
    char *text = kf_tmpl_render(tmpl, vars, nvars, err, errlen);
    if (!text)
        return NULL;
    size_t suffix = marketing ? kf_utf8_len(KF_TMPL_OPTOUT) : 0;
    size_t total = kf_utf8_len(text) + suffix;
    if (total > max_chars) {
        free(text);
        text = s_sms_shorten(tmpl, vars, nvars, suffix, max_chars, total, err, errlen);
        if (!text)
            return NULL;
    }
    return marketing ? s_append_optout(text) : text;
}

/* The item in full, or a leading part of it (>= 1 character) directly followed by "…". */
static bool s_has_item(const char *sms, const char *item)
{
    if (strstr(sms, item))
        return true;
    size_t ilen = strlen(item);
    for (const char *e = strstr(sms, KF_TMPL_ELLIPSIS); e; e = strstr(e + 1, KF_TMPL_ELLIPSIS)) {
        size_t before = (size_t)(e - sms);
        for (size_t k = 1; k < ilen && k <= before; k++)
            if (!s_is_cont(item[k]) && memcmp(e - k, item, k) == 0)
                return true;
    }
    return false;
}

bool kf_tmpl_sms_has_elements(const char *sms, const char *buyer, const char *shop,
                              const char *item_prefix, const char *order_time)
{
    if (!sms || !buyer || !shop || !item_prefix || !order_time)
        return false;
    if (!*buyer || !*shop || !*item_prefix || !*order_time)
        return false;
    if (!kf_utf8_valid(sms, strlen(sms)))
        return false;
    size_t n;
    size_t head = s_prefix(sms, KF_TMPL_BUYER_HEAD, SIZE_MAX, &n);
    if (!memmem(sms, head, buyer, strlen(buyer)))
        return false;
    return strstr(sms, shop) && strstr(sms, order_time) && s_has_item(sms, item_prefix);
}

/* ---- built-in defaults (seed 004 §1.2.6 催付 scripts; §1.4/§1.5 for the others) ---------- */

typedef struct {
    const char *kind, *channel, *technique, *text;
} s_default_t;

static const s_default_t s_defaults[] = {
    /* payment_reminder: urgency (ships today, stock is low) */
    {"payment_reminder", "im", "urgency",
     "{buyer}亲，您好~ 您在{shop}拍下的{item}还没有付款哦。今天{cutoff}点前付款，当天就能为您发货，"
     "早一天收到早一天用上~ 这款库存不多了，别让宝贝被别人抢走啦！"},
    {"payment_reminder", "sms", "urgency",
     "{buyer}亲，您在{shop}{order_time}拍下的{item}还未付款，今天{cutoff}点前付款当天发货哦~"},
    {"payment_reminder", "phone", "urgency",
     "您好，请问是{buyer}吗？我是{shop}的客服。您{order_time}在我们店拍下的{item}还没有付款，"
     "今天{cutoff}点前付款当天就能发货，这款库存也不多了，所以想提醒您一下。如果付款时遇到什么问题，"
     "随时可以问我们客服哈。感谢您的支持，祝您购物愉快，再见！"},
    /* flash: a flash-sale order closes minutes after creation (聚划算/淘抢购) */
    {"payment_reminder", "im", "flash",
     "{buyer}亲，您在{shop}抢购的{item}还没有付款哦~ 抢购订单{deadline}前未付款会自动关闭，"
     "库存有限，别错过啦！"},
    {"payment_reminder", "sms", "flash",
     "{buyer}亲，您{order_time}在{shop}抢购的{item}未付款，{deadline}前不付款将自动关闭哦~"},
    {"payment_reminder", "phone", "flash",
     "您好，请问是{buyer}吗？我是{shop}的客服。您{order_time}抢购的{item}还没有付款，抢购订单"
     "{deadline}前未付款会自动关闭，所以想提醒您一下。感谢您的支持，再见！"},
    /* privilege (a gift for a new friend) */
    {"payment_reminder", "im", "privilege",
     "{buyer}亲爱的，您好~ 感谢您光临{shop}！我们给每一位新朋友都准备了一份精美的小礼物，"
     "付款后会和您拍下的{item}一起寄出哦，机会难得不要错过~"},
    {"payment_reminder", "sms", "privilege",
     "{buyer}亲，您在{shop}{order_time}拍下的{item}还未付款，现在付款送您一份精美小礼物哦~"},
    {"payment_reminder", "phone", "privilege",
     "您好，请问是{buyer}吗？我是{shop}的客服。您{order_time}在我们店拍下的{item}还没有支付，"
     "我们给新朋友准备了一份精美的小礼物，付款后随单一起寄出，所以想提醒您尽快支付，不要错过哦。"
     "如果支付中有什么操作问题，可以随时咨询我们客服。感谢您的支持，再见！"},
    /* verification (check the address and the item before we ship) */
    {"payment_reminder", "im", "verification",
     "{buyer}亲，您好~ 您在{shop}拍下的{item}我们正准备安排发货，麻烦您核对一下收货地址和"
     "商品款式是否正确哦。确认无误后付款，我们马上为您发出~"},
    {"payment_reminder", "sms", "verification",
     "{buyer}亲，您在{shop}{order_time}拍下的{item}还未付款，请核对收货地址和款式，确认后付款即可"
     "发货~"},
    {"payment_reminder", "phone", "verification",
     "您好，请问是{buyer}吗？我是{shop}的客服。您{order_time}在我们店拍下了{item}，发货前想跟您"
     "核对一下：收货地址和电话是否正确？款式、颜色、尺码对不对？核对无误后付款，我们马上为您安排"
     "发货。感谢您的支持，再见！"},
    /* repeat buyer: not urgent, warmer, asks about the earlier purchase */
    {"payment_reminder", "im", "repeat",
     "{buyer}亲爱的，您好~ 感谢您再次光顾{shop}！上次买的宝贝用着还满意吗？有任何问题都可以跟"
     "我们说哦。这次拍下的{item}还没有付款，掌柜给老朋友准备了一份专享小礼物，付款后随单寄出~"},
    {"payment_reminder", "sms", "repeat",
     "{buyer}亲，上次的宝贝用着还好吗？您{order_time}在{shop}拍下的{item}还未付款，老顾客付款送"
     "小礼物哦~"},
    {"payment_reminder", "phone", "repeat",
     "您好，请问是{buyer}吗？我是{shop}的客服，感谢您一直以来的支持！上次买的宝贝用着还满意吗？"
     "有什么问题都可以告诉我们。您{order_time}拍下的{item}还没有付款，掌柜给老朋友准备了一份专享"
     "小礼物，付款后随单寄出。不打扰您了，祝您生活愉快，再见！"},
    /* logistics: {deadline} is the new ship time */
    {"logistics_overdue_shipping", "im", "",
     "{buyer}亲，非常抱歉！您{order_time}在{shop}拍下的{item}没能按时发出，给您添麻烦了。我们会在"
     "{deadline}前为您发货，发出后第一时间告诉您物流单号，请您谅解~"},
    {"logistics_overdue_shipping", "sms", "",
     "{buyer}亲，抱歉！您{order_time}在{shop}拍下的{item}发货延迟了，我们将在{deadline}前发出，"
     "请谅解~"},
    {"logistics_difficult", "sms", "",
     "{buyer}亲，您{order_time}在{shop}买的{item}派送遇阻，{carrier}单号{tracking_no}，请联系客服"
     "确认地址~"},
    {"logistics_difficult", "phone", "",
     "您好，请问是{buyer}吗？我是{shop}的客服。您{order_time}买的{item}，{carrier}（单号"
     "{tracking_no}）反馈派送遇到了问题，想跟您核对一下收货地址和电话，我们马上联系快递重新派送。"
     "给您添麻烦了，非常抱歉！"},
    /* care */
    {"care_shipped", "im", "",
     "{buyer}亲，您在{shop}拍下的{item}已经发货啦！{carrier}，单号{tracking_no}，可以在订单里查看"
     "物流进度，收到后有任何问题随时找我们哦~"},
    {"care_shipped", "sms", "",
     "{buyer}亲，您{order_time}在{shop}拍下的{item}已由{carrier}发出，单号{tracking_no}，请留意"
     "查收~"},
    {"care_usage", "im", "",
     "{buyer}亲，您好~ 您在{shop}买的{item}已经用了一段时间啦，感觉怎么样？有任何使用上的问题都"
     "可以随时找我们，我们一直都在哦~"},
    {"care_usage", "sms", "",
     "{buyer}亲，您{order_time}在{shop}买的{item}用着还好吗？有任何问题随时联系我们哦~"},
    /* review repair */
    {"review_repair", "im", "",
     "{buyer}亲，您好，我是{shop}的客服。看到您对{item}的评价，真的很抱歉没能让您满意！能跟我们"
     "说说具体遇到了什么问题吗？我们一定尽力为您解决~"},
    {"review_repair", "phone", "",
     "您好，请问是{buyer}吗？我是{shop}的客服。看到您{review_time}对{item}的评价，非常抱歉没能"
     "让您满意。想了解一下具体是什么问题，我们好为您处理：可以补发、退换或者给您一些补偿。"
     "感谢您的反馈，我们会改进的！"},
};

const char *kf_tmpl_default(const char *kind, const char *channel, const char *technique)
{
    if (!kind || !channel)
        return NULL;
    bool any = !technique || !*technique;
    for (size_t i = 0; i < KF_ARRAY_LEN(s_defaults); i++) {
        const s_default_t *d = &s_defaults[i];
        if (strcmp(d->kind, kind) == 0 && strcmp(d->channel, channel) == 0 &&
            (any || strcmp(d->technique, technique) == 0))
            return d->text;
    }
    return NULL;
}

bool kf_tmpl_default_at(size_t i, const char **kind, const char **channel,
                        const char **technique, const char **text)
{
    if (i >= KF_ARRAY_LEN(s_defaults))
        return false;
    const s_default_t *d = &s_defaults[i];
    if (kind)
        *kind = d->kind;
    if (channel)
        *channel = d->channel;
    if (technique)
        *technique = d->technique;
    if (text)
        *text = d->text;
    return true;
}
