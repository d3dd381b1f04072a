/* kefu-review-repair: the topic handlers main.c routes and the cause classifier
 * (review_repair.c). See README.md. */
#ifndef REVIEW_REPAIR_H
#define REVIEW_REPAIR_H

#include <stdbool.h>
#include <stddef.h>

#include "kf_shop.h"
#include "kf_worker.h"

/* The causes of a review text, comma-separated in DOMAIN order ("product,service"), "other"
 * when none matches; *money_demand is set when the text demands money or threatens. */
void rr_classify(const kf_shop_t *shop, const char *text, char *out, size_t len,
                 bool *money_demand);

kf_worker_handler_fn rr_on_posted, rr_on_modified, rr_on_deleted, rr_on_case, rr_on_config;

#endif
