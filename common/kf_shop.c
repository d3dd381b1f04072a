/* kf_shop: the per-shop settings cache. A chained hash table keyed by shop_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_shop.h"
#include "kf_util.h"

typedef struct s_entry_s {
    kf_shop_t shop;
    struct s_entry_s *next;
} s_entry_t;

struct kf_shops_s {
    s_entry_t **slots;
    size_t nslots, count;
};

kf_shops_t *kf_shops_new(void)
{
    kf_shops_t *self = kf_xcalloc(1, sizeof(*self));
    self->nslots = 64;
    self->slots = kf_xcalloc(self->nslots, sizeof(*self->slots));
    return self;
}

static void s_shop_clear(kf_shop_t *shop)
{
    if (shop->cfg)
        protobuf_c_message_free_unpacked(&shop->cfg->base, NULL);
    shop->cfg = NULL;
}

void kf_shops_destroy(kf_shops_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    kf_shops_t *self = *self_p;
    for (size_t i = 0; i < self->nslots; i++) {
        for (s_entry_t *e = self->slots[i], *next; e; e = next) {
            next = e->next;
            s_shop_clear(&e->shop);
            free(e->shop.shop_id);
            free(e);
        }
    }
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static void s_defaults(kf_shop_t *shop)
{
    static const kf_window_t phone[] = KF_WINDOW_PHONE_INIT;
    static const Kefu__V1__ShopConfig d = KEFU__V1__SHOP_CONFIG__INIT; /* kefu.proto's defaults */
    shop->name = shop->shop_id;
    shop->offset = d.utc_offset_minutes;
    shop->cutoff_hour = d.ship_cutoff_hour;
    shop->promised_ship_hours = d.promised_ship_hours;
    shop->large_order_fen = d.large_order_fen;
    shop->compensation_neutral_fen = d.compensation_neutral_fen;
    shop->compensation_bad_fen = d.compensation_bad_fen;
    shop->cap_daily = d.daily_contact_cap;
    shop->cap_sms_daily = d.marketing_sms_daily_cap;
    shop->cap_sms_weekly = d.marketing_sms_weekly_cap;
    shop->cap_phone_daily = d.phone_daily_cap;
    shop->quiet = kf_window_quiet;
    shop->sms_allowed = kf_window_invert(&kf_window_quiet);
    shop->working = kf_window_working;
    shop->nphone = KF_ARRAY_LEN(phone);
    memcpy(shop->phone, phone, sizeof(phone));
}

static void s_grow(kf_shops_t *self)
{
    size_t n = self->nslots * 2;
    s_entry_t **slots = kf_xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i < self->nslots; i++) {
        for (s_entry_t *e = self->slots[i], *next; e; e = next) {
            next = e->next;
            size_t k = kf_fnv1a(e->shop.shop_id) & (n - 1);
            e->next = slots[k];
            slots[k] = e;
        }
    }
    free(self->slots);
    self->slots = slots;
    self->nslots = n;
}

static s_entry_t *s_find(kf_shops_t *self, const char *shop_id, bool create)
{
    size_t k = kf_fnv1a(shop_id) & (self->nslots - 1);
    for (s_entry_t *e = self->slots[k]; e; e = e->next)
        if (strcmp(e->shop.shop_id, shop_id) == 0)
            return e;
    if (!create)
        return NULL;
    if (self->count >= self->nslots) {
        s_grow(self);
        k = kf_fnv1a(shop_id) & (self->nslots - 1);
    }
    s_entry_t *e = kf_xcalloc(1, sizeof(*e));
    e->shop.shop_id = kf_xstrdup(shop_id);
    s_defaults(&e->shop);
    e->next = self->slots[k];
    self->slots[k] = e;
    self->count++;
    return e;
}

const kf_shop_t *kf_shops_get(kf_shops_t *self, const char *shop_id)
{
    return &s_find(self, shop_id ? shop_id : "", true)->shop;
}

size_t kf_shops_count(kf_shops_t *self)
{
    return self->count;
}

static void s_window(const Kefu__V1__TimeWindow *tw, kf_window_t *out)
{
    kf_window_t w;
    if (tw && tw->start && tw->end && kf_window_parse(tw->start, tw->end, &w) == KF_OK)
        *out = w;
}

static void s_apply(kf_shop_t *shop, const Kefu__V1__ShopConfig *c)
{
    if (c->name && *c->name)
        shop->name = c->name;
    if (c->utc_offset_minutes >= -12 * 60 && c->utc_offset_minutes <= 14 * 60)
        shop->offset = c->utc_offset_minutes;
    if (c->ship_cutoff_hour >= 0 && c->ship_cutoff_hour <= 23)
        shop->cutoff_hour = c->ship_cutoff_hour;
    if (c->promised_ship_hours > 0)
        shop->promised_ship_hours = c->promised_ship_hours;
    if (c->large_order_fen > 0)
        shop->large_order_fen = c->large_order_fen;
    if (c->compensation_neutral_fen >= 0)
        shop->compensation_neutral_fen = c->compensation_neutral_fen;
    if (c->compensation_bad_fen >= 0)
        shop->compensation_bad_fen = c->compensation_bad_fen;
    if (c->daily_contact_cap >= 0)
        shop->cap_daily = c->daily_contact_cap;
    if (c->marketing_sms_daily_cap >= 0)
        shop->cap_sms_daily = c->marketing_sms_daily_cap;
    if (c->marketing_sms_weekly_cap >= 0)
        shop->cap_sms_weekly = c->marketing_sms_weekly_cap;
    if (c->phone_daily_cap >= 0)
        shop->cap_phone_daily = c->phone_daily_cap;
    s_window(c->quiet_hours, &shop->quiet);
    shop->sms_allowed = kf_window_invert(&shop->quiet);
    s_window(c->working_hours, &shop->working);
    if (c->n_phone_windows > 0) {
        size_t n = 0;
        for (size_t i = 0; i < c->n_phone_windows && n < KF_SHOP_MAX_PHONE; i++) {
            kf_window_t w = {0, 0};
            s_window(c->phone_windows[i], &w);
            if (w.start_min != w.end_min)
                shop->phone[n++] = w;
        }
        if (n > 0)
            shop->nphone = n;
    }
}

int kf_shops_set(kf_shops_t *self, const char *shop_id, const uint8_t *cfg, size_t len,
                 char *err, size_t errlen)
{
    Kefu__V1__ShopConfig *c = kefu__v1__shop_config__unpack(NULL, len, cfg);
    if (!c) {
        kf_err(err, errlen, "shop %s: config does not decode", shop_id);
        return KF_ERR;
    }
    kf_shop_t *shop = &s_find(self, shop_id, true)->shop;
    s_shop_clear(shop);
    s_defaults(shop);
    shop->cfg = c;
    s_apply(shop, c);
    return KF_OK;
}

char *kf_shop_agents_lines(const kf_shop_t *shop)
{
    size_t len = 1;
    for (size_t i = 0; shop->cfg && i < shop->cfg->n_agents; i++)
        len += strlen(shop->cfg->agents[i]) + 1;
    char *out = kf_xmalloc(len), *p = out;
    *p = '\0';
    for (size_t i = 0; shop->cfg && i < shop->cfg->n_agents; i++)
        p += sprintf(p, "%s\n", shop->cfg->agents[i]);
    return out;
}

const char *kf_shop_template(const kf_shop_t *shop, const char *kind, const char *channel)
{
    if (!shop->cfg)
        return NULL;
    const char *any = NULL;
    for (size_t i = 0; i < shop->cfg->n_templates; i++) {
        const Kefu__V1__Template *t = shop->cfg->templates[i];
        if (!t->kind || !t->text || strcmp(t->kind, kind) != 0)
            continue;
        if (t->channel == KEFU__V1__CHANNEL__CHANNEL_UNSPECIFIED) {
            if (!any)
                any = t->text;
            continue;
        }
        const char *ch = t->channel == KEFU__V1__CHANNEL__CHANNEL_IM      ? "im"
                         : t->channel == KEFU__V1__CHANNEL__CHANNEL_SMS   ? "sms"
                         : t->channel == KEFU__V1__CHANNEL__CHANNEL_PHONE ? "phone"
                                                                          : "";
        if (strcmp(ch, channel) == 0)
            return t->text;
    }
    return any;
}

bool kf_shop_private_sku(const kf_shop_t *shop, const char *sku)
{
    for (size_t i = 0; sku && shop->cfg && i < shop->cfg->n_private_skus; i++)
        if (strcmp(shop->cfg->private_skus[i], sku) == 0)
            return true;
    return false;
}

size_t kf_shop_allowed(const kf_shop_t *shop, const char *channel, const kf_window_t **wins)
{
    if (strcmp(channel, "sms") == 0) {
        *wins = &shop->sms_allowed;
        return 1;
    }
    if (strcmp(channel, "phone") == 0) {
        *wins = shop->phone;
        return shop->nphone;
    }
    *wins = NULL;
    return 0;
}

void kf_shop_allowed_str(const kf_shop_t *shop, const char *channel, char *buf, size_t len)
{
    const kf_window_t *w;
    size_t n = kf_shop_allowed(shop, channel, &w), used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int k = snprintf(buf + used, len - used, "%s%d-%d", i ? "," : "", w[i].start_min,
                         w[i].end_min);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}
