/* kf_shop: per-shop business settings (shop.config, DESIGN §2, §5) as every worker needs
 * them: a cache keyed by shop_id, filled from kefu:shops at start and from shop.config
 * events as they are applied. A shop without a config gets the DOMAIN defaults. */
#ifndef KF_SHOP_H
#define KF_SHOP_H

#include <stddef.h>
#include <stdint.h>

#include "kf_proto.h"
#include "kf_window.h"

#define KF_SHOP_MAX_PHONE 8

typedef struct {
    char *shop_id;
    const char *name;            /* the display name, else the shop_id */
    /* The numbers' defaults are kefu.proto's ShopConfig [default = ...] (the one table of
     * them); the windows' are kf_window.h's. */
    int offset;                  /* UTC offset, minutes */
    int cutoff_hour;             /* ship cutoff */
    int promised_ship_hours;     /* ship within, when the order does not say */
    int64_t large_order_fen;
    int64_t compensation_neutral_fen, compensation_bad_fen;
    int cap_daily, cap_sms_daily, cap_sms_weekly, cap_phone_daily;
    kf_window_t quiet;           /* no sms/phone (22:00-08:00) */
    kf_window_t sms_allowed;     /* the complement of quiet */
    kf_window_t working;         /* 09:00-22:00 */
    kf_window_t phone[KF_SHOP_MAX_PHONE];
    size_t nphone;
    Kefu__V1__ShopConfig *cfg;   /* the decoded config (templates, festivals...); NULL: none */
} kf_shop_t;

typedef struct kf_shops_s kf_shops_t;

kf_shops_t *kf_shops_new(void);
void kf_shops_destroy(kf_shops_t **self_p);
/* The settings of shop_id (the defaults when it has sent no config). Never NULL; valid until
 * the next kf_shops_set for that shop. */
const kf_shop_t *kf_shops_get(kf_shops_t *self, const char *shop_id);
/* Replaces shop_id's settings with an encoded ShopConfig. KF_ERR (err) when it does not
 * decode; bad windows fall back to the defaults. */
int kf_shops_set(kf_shops_t *self, const char *shop_id, const uint8_t *cfg, size_t len,
                 char *err, size_t errlen);
size_t kf_shops_count(kf_shops_t *self);

/* The agents on duty (shop.config agents), one per line: the form the Lua steps read.
 * malloc'd, "" when none. */
char *kf_shop_agents_lines(const kf_shop_t *shop);

/* The shop's template text for kind and channel ("im", "sms", "phone"): a template with that
 * kind and channel, else that kind and no channel; NULL when the shop has none. */
const char *kf_shop_template(const kf_shop_t *shop, const char *kind, const char *channel);
/* Is sku one of the shop's private_skus (items an sms never names)? */
bool kf_shop_private_sku(const kf_shop_t *shop, const char *sku);
/* The windows a channel may be used in: sms -> sms_allowed, phone -> the phone windows,
 * im -> none (n = 0: always). Returns n. */
size_t kf_shop_allowed(const kf_shop_t *shop, const char *channel, const kf_window_t **wins);
/* The same windows as text for the Lua side: "480-1320,..." ("" = always). */
void kf_shop_allowed_str(const kf_shop_t *shop, const char *channel, char *buf, size_t len);

#endif
