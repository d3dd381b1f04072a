/* kefu-logistics: the topic handlers main.c routes (logistics.c). See README.md. */
#ifndef LOGISTICS_H
#define LOGISTICS_H

#include "kf_worker.h"

kf_worker_handler_fn lg_on_created, lg_on_paid, lg_on_shipped, lg_on_scan, lg_on_ended,
    lg_on_area_delay;

/* The im text template of a kind ("stalled"...): the shop's, the built-in default, or a
 * generic one. Never NULL. */
const char *lg_template(const kf_shop_t *shop, const char *kind);

/* The province of a destination city (乌鲁木齐 -> 新疆, 北京市 -> 北京), NULL when unknown
 * (logistics_geo.c). */
const char *lg_province(const char *city);

#endif
