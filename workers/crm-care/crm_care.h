/* kefu-crm-care: the topic handlers main.c routes, and what C decides for them (partitions,
 * dates, channels' hours, templates rendered down to the per-buyer placeholders). The
 * profiles, segments, timers and the contact policy live in crm_care.lua. See README.md. */
#ifndef CRM_CARE_H
#define CRM_CARE_H

#include <stdint.h>

#include "kf_shop.h"
#include "kf_worker.h"

/* The first 10:00 shop-local on month-day (year 0: any year, else that year only) at or
 * after from_ms, looking up to 8 years ahead (a 02-29 birthday waits for a leap year);
 * -1 when there is none. */
int64_t cc_next_date(int64_t from_ms, int offset_min, int year, int month, int day);

/* "MM-DD" or "YYYY-MM-DD" into year (0 for "MM-DD"), month, day; KF_ERR when it is not a
 * date (02-29 is one). */
int cc_parse_date(const char *s, int *year, int *month, int *day);

/* The template of care kind ("usage", "birthday", ...) for channel: the shop's template of
 * kind care_<kind>, else the built-in one ("" when there is none). */
const char *cc_template(const kf_shop_t *shop, const char *kind, const char *channel);

/* Renders a template down to the placeholders only the Lua step can fill ({buyer}, {item},
 * {order_time}, {carrier}, {tracking_no}, {city} stay as they are); {shop}, {festival} and
 * {campaign} get their values. A marketing sms gets the opt-out suffix and must fit in 70
 * characters with any name of up to 6 (the Lua step cuts names to 6). NULL (err) when the
 * template does not render or does not fit. malloc'd. */
char *cc_prerender(const kf_shop_t *shop, const char *tmpl, const char *channel, bool marketing,
                   const char *festival, const char *campaign, char *err, size_t errlen);

kf_worker_handler_fn cc_on_created, cc_on_paid, cc_on_closed, cc_on_confirmed, cc_on_shipped,
    cc_on_scan, cc_on_profile, cc_on_campaign, cc_on_config;

#endif
