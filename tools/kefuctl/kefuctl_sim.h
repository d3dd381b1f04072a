/* kefuctl sim: what kefuctl_sim.c, kefuctl_sim_orders.c, kefuctl_sim_logistics.c,
 * kefuctl_sim_reviews.c and kefuctl_sim_care.c share (private to the sim verb). */
#ifndef KEFUCTL_SIM_H
#define KEFUCTL_SIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kf_util.h"

#define SIM_OFFSET 480                   /* +08:00: every simulated shop */
#define SIM_MAX_SHOPS 1000
#define SIM_MAX_DAYS 366
#define SIM_MAX_TAIL_DAYS 30             /* --tail at most 720 hours */
#define SIM_MIN_MS 60000LL
#define SIM_HOUR_MS 3600000LL
#define SIM_DAY_MS 86400000LL
#define SIM_HISTORY_DAYS 30
#define SIM_CARE_HISTORY_DAYS 240        /* how far back the repeat buyers' orders go */
#define SIM_NCONSUMABLES 6               /* the repeat buyers' products, last in the catalog */

typedef struct {
    const char *city, *province;
    unsigned weight;
} kefuctl_sim_place_t;

#define SIM_NPLACES 40   /* in kefuctl_sim_places */
#define SIM_NSURNAMES 32 /* in kefuctl_sim_surnames */

typedef struct {
    uint64_t s;
} kefuctl_sim_rng_t;

/* The tags of the keyed streams. */
enum {
    SIM_TAG_DAY = 1, SIM_TAG_HISTORY, SIM_TAG_BUYER, SIM_TAG_OPTOUT, SIM_TAG_SHIP,
    SIM_TAG_ORIGIN, SIM_TAG_AREA, SIM_TAG_TRACKING, SIM_TAG_REVIEW, SIM_TAG_AGENTS,
    SIM_TAG_PROFILE, SIM_TAG_CARE
};

/* ------------------------------------------------------------------ the model */

typedef enum { SIM_PAID, SIM_CLOSED_TIMEOUT, SIM_CLOSED_BUYER } kefuctl_sim_outcome_t;

typedef struct {
    int64_t created, end;  /* creation; payment or closing */
    int64_t total_fen;
    uint32_t buyer;        /* index in the shop's buyer pool, loyal buyers first */
    uint32_t n;            /* order number: per shop-day, or per shop in the history and
                            * for the repeat buyers' orders */
    uint16_t shop;         /* 0-based */
    uint8_t history, promo, flash, outcome;
    uint8_t care;          /* a repeat buyer's order (kefuctl_sim_care.c) */
    uint8_t nitems, sku[3], qty[3];
} kefuctl_sim_order_t;

/* A shipment of a paid order. */
typedef struct {
    int64_t shipped_at;
    uint32_t order;        /* index in orders */
    uint8_t carrier;       /* index in the carriers (kefuctl_sim_logistics.c) */
    uint8_t dest;          /* the buyer's place: index in kefuctl_sim_places */
    uint16_t words;        /* picks the outlet, courier, locker... of the descriptions */
    int64_t confirmed_at;  /* order.confirmed (even after the last tick), 0 when never */
} kefuctl_sim_ship_t;

/* A review of a confirmed order's item (kefuctl_sim_reviews.c). */
typedef enum { SIM_GOOD, SIM_NEUTRAL, SIM_BAD } kefuctl_sim_rating_t;

#define SIM_REVIEW_PARTS 3
typedef struct {
    uint32_t ship;         /* index in ships */
    uint8_t rating;        /* kefuctl_sim_rating_t */
    uint8_t item;          /* which item of the order */
    uint8_t nparts;        /* the text: phrases (cause << 8 | phrase) */
    uint16_t part[SIM_REVIEW_PARTS];
    uint8_t good_text;     /* the good text: of the posting, or of the modification */
    uint8_t same_text;     /* the modification keeps the text */
} kefuctl_sim_review_t;

typedef enum {
    SIM_EV_CONFIG, SIM_EV_CREATED, SIM_EV_PAID, SIM_EV_CLOSED, SIM_EV_OPTOUT, SIM_EV_SHIPPED,
    SIM_EV_SCAN, SIM_EV_CONFIRMED, SIM_EV_AREA_DELAY, SIM_EV_HISTORY_CONFIRMED,
    SIM_EV_REVIEW_POSTED, SIM_EV_REVIEW_MODIFIED, SIM_EV_REVIEW_DELETED, SIM_EV_CASE_UPDATED,
    SIM_EV_PROFILE, SIM_EV_CAMPAIGN, SIM_EV_CLOCK
} kefuctl_sim_type_t;

#define SIM_SCAN_NO_ORDER 0x01 /* flags: the scan leaves order_id out */
#define SIM_EV_CARE 0x80       /* flags: numbered in the shop's care series (event id
                                * sim<seed>-s<shop>-c<n>) */

typedef struct {
    int64_t t;             /* business time (a late scan: when it is published), epoch ms */
    uint32_t gen;          /* generation order: the sort's last key */
    uint32_t ref;          /* order, buyer or shipment index, tick number or place */
    uint32_t n;            /* per-shop (or clock) counter: the event_id */
    uint16_t shop;
    uint8_t type;
    uint8_t flags;         /* scans: SIM_SCAN_NO_ORDER */
    uint16_t state;        /* scans: the kuaidi100 code */
    uint8_t city, next;    /* scans: where (index in kefuctl_sim_places), the next stop */
    uint32_t early;        /* scans: ms between the scan's `at` and t;
                            * case.updated: compensation_fen (state: the status);
                            * buyer.profile: the manual tags, a bit each (state: the
                            * birthday as MMDD, 0 when none) */
} kefuctl_sim_ev_t;

typedef struct {
    long long shops, days, seed, orders, tick, tail;
    int64_t start;         /* local 00:00 of the first day */
    bool history, logistics, reviews, care;
    bool promo[SIM_MAX_DAYS + 1]; /* 1-based day numbers */
} kefuctl_sim_opts_t;

typedef struct {
    kefuctl_sim_opts_t o;
    uint32_t nloyal, npool;  /* buyer pool per shop: loyal [0, nloyal), then ordinary */
    uint32_t ncare;          /* then the repeat buyers [npool, npool + ncare) */
    kefuctl_sim_order_t *orders;
    size_t norders, ocap;
    kefuctl_sim_ev_t *evs;
    size_t nevs, ecap;
    kefuctl_sim_ship_t *ships;
    size_t nships, scap;
    kefuctl_sim_review_t *reviews;
    size_t nreviews, rcap;
    uint32_t counter;        /* the current shop's event counter */
    int64_t cutoff;          /* the last tick: nothing later is printed */
    unsigned long long out, out_type[SIM_EV_CLOCK + 1]; /* events printed, by type */
    unsigned long long out_bad; /* review.posted printed with a neutral or bad rating */
    unsigned long long out_bday; /* buyer.profile printed with a birthday in the run */
    bool bday_in_run[1232];  /* MMDD: a day of the run has 10:00 before the last tick */
} kefuctl_sim_t;

#define SIM_PICK(r, arr) (arr[kefuctl_sim_below(r, KF_ARRAY_LEN(arr))])

/* A buyer's identity, the same every time: from the (seed, shop, buyer) stream. */
typedef struct {
    char id[24], nick[64], name[32], phone[16];
    unsigned place; /* index in kefuctl_sim_places */
} kefuctl_sim_buyer_t;

/* kefuctl_sim.c: the event list and the rendering helpers */
kefuctl_sim_ev_t *kefuctl_sim_push(kefuctl_sim_t *sim, kefuctl_sim_type_t type, int64_t t,
                                   uint16_t shop, uint32_t ref);
void kefuctl_sim_set_str(json_t *o, const char *key, const char *value);
void kefuctl_sim_set_int(json_t *o, const char *key, int64_t value);
void kefuctl_sim_set_time(json_t *o, const char *key, int64_t ms);

/* kefuctl_sim_orders.c: the data, the random streams, the buyers and the orders */
extern const kefuctl_sim_place_t kefuctl_sim_places[SIM_NPLACES];
extern const char *const kefuctl_sim_surnames[SIM_NSURNAMES];
uint64_t kefuctl_sim_next(kefuctl_sim_rng_t *r);
kefuctl_sim_rng_t kefuctl_sim_stream(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b);
double kefuctl_sim_unit(kefuctl_sim_rng_t *r);
uint64_t kefuctl_sim_below(kefuctl_sim_rng_t *r, uint64_t n);
int64_t kefuctl_sim_range(kefuctl_sim_rng_t *r, int64_t lo, int64_t hi);
void kefuctl_sim_buyer_id(uint16_t shop, uint32_t b, char *buf, size_t len);
void kefuctl_sim_buyer_gen(const kefuctl_sim_t *sim, uint16_t shop, uint32_t b,
                           kefuctl_sim_buyer_t *by);
void kefuctl_sim_gen_shop(kefuctl_sim_t *sim, uint16_t shop);
void kefuctl_sim_order_id(const kefuctl_sim_order_t *o, char *buf, size_t len);
void kefuctl_sim_render_config(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_created(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_status(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_optout(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
kefuctl_sim_order_t *kefuctl_sim_order_new(kefuctl_sim_t *sim);
int64_t kefuctl_sim_pick_time(kefuctl_sim_rng_t *r, int64_t midnight);
int64_t kefuctl_sim_order_total(const kefuctl_sim_order_t *o);
void kefuctl_sim_push_order(kefuctl_sim_t *sim, const kefuctl_sim_order_t *o);
uint64_t kefuctl_sim_order_key(const kefuctl_sim_t *sim, const kefuctl_sim_order_t *o);
uint8_t kefuctl_sim_consumable(unsigned i); /* its index in the catalog, i < SIM_NCONSUMABLES */

/* kefuctl_sim_logistics.c: the shipments, their scans and the area delays */
void kefuctl_sim_gen_logistics(kefuctl_sim_t *sim, uint16_t shop, size_t first);
void kefuctl_sim_ship_orders(kefuctl_sim_t *sim, uint16_t shop, size_t first);
void kefuctl_sim_render_shipped(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_scan(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_confirmed(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_history_confirmed(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev,
                                          json_t *o);
void kefuctl_sim_render_area_delay(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);

/* kefuctl_sim_reviews.c: the agents, the reviews of the confirmed orders and the agents'
 * case updates */
unsigned kefuctl_sim_agents(const kefuctl_sim_t *sim, uint16_t shop);
void kefuctl_sim_gen_reviews(kefuctl_sim_t *sim, uint16_t shop, size_t first_ship);
void kefuctl_sim_render_review(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_case(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
/* kefuctl_sim_orders.c: an item of an order */
const char *kefuctl_sim_sku(const kefuctl_sim_order_t *o, unsigned item, const char **title);

/* kefuctl_sim_care.c: buyer profiles, repeat buyers, festivals and campaigns */
uint32_t kefuctl_sim_care_buyers(const kefuctl_sim_opts_t *o);
void kefuctl_sim_care_prepare(kefuctl_sim_t *sim);
void kefuctl_sim_gen_care(kefuctl_sim_t *sim, uint16_t shop, int64_t config_at);
void kefuctl_sim_render_festivals(const kefuctl_sim_t *sim, json_t *o);
void kefuctl_sim_render_profile(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);
void kefuctl_sim_render_campaign(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);

#endif
