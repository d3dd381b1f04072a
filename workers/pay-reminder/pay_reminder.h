/* kefu-pay-reminder: the rules (pay_reminder.c) and the topic handlers main.c routes. */
#ifndef PAY_REMINDER_H
#define PAY_REMINDER_H

#include <stdbool.h>
#include <stdint.h>

#include "kf_shop.h"
#include "kf_worker.h"

/* One order, as the plan needs it (borrowed strings). */
typedef struct {
    const char *shop_id, *order_id, *buyer_id, *buyer_name, *item;
    const char *okey, *skey;  /* its order hash and stats hash */
    int64_t created, deadline, total_fen;
    bool flash;
    bool private_item;        /* a shop.config private_skus item: no sms names it */
} pr_order_t;

/* One reminder: channel, when, the latest allowed moment; drop = the block reason when it
 * cannot be placed before its limit. */
typedef struct {
    int n;
    const char *channel;
    int64_t due, limit;
    const char *drop;
    const char *technique; /* urgency, flash, privilege, verification, repeat */
} pr_step_t;

typedef struct {
    pr_step_t step[2];
    int n;
} pr_plan_t;

/* The reminders of an order (DOMAIN §1), for a repeat buyer or not. */
void pr_plan(const kf_shop_t *shop, const pr_order_t *o, bool repeat, pr_plan_t *plan);
/* The plan as the JSON array of timer payloads pay_reminder.lua stores (malloc'd). */
char *pr_plan_json(const kf_shop_t *shop, const pr_order_t *o, bool repeat);

kf_worker_handler_fn pr_on_created, pr_on_paid, pr_on_closed;

#endif
