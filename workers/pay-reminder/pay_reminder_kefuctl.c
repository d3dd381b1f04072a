/* kefuctl report payments: kefu-pay-reminder's day results, kefu:stats:pay:{shop}:<yyyymmdd>
 * (README.md "Results"). Linked into kefuctl: a worker's folder holds the code that reads its
 * keys. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "kefuctl.h"
#include "kefuctl_report.h"
#include "kf_util.h"

enum {
    P_ORDERS, P_PAID, P_CLOSED, P_UNPAID, P_REMINDED, P_REMINDERS, P_IM, P_SMS, P_PHONE,
    P_PAID_AFTER, P_RECOVERED, P_NFIELDS
};

/* The counters of kefu:stats:pay:{shop}:<yyyymmdd>, in the order --json prints them. */
static const char *const s_pay_fields[P_NFIELDS] = {
    "orders", "paid", "closed", "unpaid", "reminded", "reminders", "reminders_im",
    "reminders_sms", "reminders_phone", "paid_after_reminder", "recovered_fen",
};

/* a day with orders and nothing to remind (an imported history) is no row unless --all-days */
static const kefuctl_report_schema_t s_pay_schema = {
    s_pay_fields, P_NFIELDS, "blocked:",
    1u << P_UNPAID | 1u << P_REMINDED | 1u << P_REMINDERS | 1u << P_PAID_AFTER};

static void s_pay_table_row(kefuctl_table_t *t, const kefuctl_report_row_t *row)
{
    static const int cols[5] = {P_ORDERS, P_UNPAID, P_REMINDED, P_REMINDERS, P_PAID_AFTER};
    char day[16], n[5][24], conv[24], yuan[40];
    const long long *v = row->v;
    kefuctl_report_fmt_day(row->day, day, sizeof(day));
    for (int i = 0; i < 5; i++)
        snprintf(n[i], sizeof(n[i]), "%lld", v[cols[i]]);
    if (v[P_REMINDED] > 0)
        snprintf(conv, sizeof(conv), "%.1f%%",
                 100.0 * (double)v[P_PAID_AFTER] / (double)v[P_REMINDED]);
    else
        snprintf(conv, sizeof(conv), "-");
    snprintf(yuan, sizeof(yuan), "¥%lld.%02lld", v[P_RECOVERED] / 100, v[P_RECOVERED] % 100);
    char *blocked = kefuctl_report_counts_text(&row->counts);
    kefuctl_table_add(t,
                      (const char *const[]){row->shop ? row->shop : "TOTAL", row->shop ? day : "",
                                            n[0], n[1], n[2], n[3], n[4], conv, yuan, blocked});
    free(blocked);
}

static void s_pay_print_table(const kefuctl_report_row_t *rows, size_t n,
                              const kefuctl_report_row_t *total)
{
    kefuctl_table_t t = {.ncols = 10, .align = "llrrrrrrrl"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "DAY", "ORDERS", "UNPAID", "REMINDED",
                                          "REMINDERS", "PAID_AFTER", "CONV", "RECOVERED",
                                          "BLOCKED"});
    for (size_t i = 0; i < n; i++)
        s_pay_table_row(&t, &rows[i]);
    if (n > 1)
        s_pay_table_row(&t, total);
    kefuctl_table_print(&t, stdout);
    kefuctl_table_free(&t);
}

/* One row (or the totals, without shop and day) as a JSON object. */
static json_t *s_pay_json_row(const kefuctl_report_row_t *row)
{
    json_t *o = json_object();
    if (row->shop) {
        char day[16];
        json_object_set_new(o, "shop", json_string(row->shop));
        json_object_set_new(o, "day",
                            json_string(kefuctl_report_fmt_day(row->day, day, sizeof(day))));
    }
    for (size_t k = 0; k < P_NFIELDS; k++) {
        if (k == P_RECOVERED)
            json_object_set_new(o, "conversion",
                                row->v[P_REMINDED] > 0
                                    ? json_real((double)row->v[P_PAID_AFTER] /
                                                (double)row->v[P_REMINDED])
                                    : json_null());
        json_object_set_new(o, s_pay_fields[k], json_integer(row->v[k]));
    }
    json_object_set_new(o, "blocked", kefuctl_report_counts_json(&row->counts));
    return o;
}

static void s_pay_print_json(const kefuctl_report_row_t *rows, size_t n,
                             const kefuctl_report_row_t *total)
{
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "kind", json_string("payments"));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, s_pay_json_row(&rows[i]));
    json_object_set_new(root, "rows", arr);
    json_object_set_new(root, "totals", s_pay_json_row(total));
    json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    json_decref(root);
}

int kefuctl_report_payments(redisContext *c, const kefuctl_report_opts_t *o)
{
    char err[512];
    kefuctl_report_keys_t keys = {.prefix = "kefu:stats:pay:"};
    kefuctl_report_row_t *rows = NULL, total = {0};
    size_t n = 0;
    int rc = KEFUCTL_FAIL;
    if (kefuctl_report_read_rows(c, o, &s_pay_schema, &keys, &rows, &n, &total, err, sizeof(err)) !=
        KF_OK) {
        fprintf(stderr, "kefuctl: report %s: redis: %s\n", o->kind, err);
    } else {
        if (o->json)
            s_pay_print_json(rows, n, &total);
        else if (n == 0)
            puts("no payment data");
        else
            s_pay_print_table(rows, n, &total);
        rc = KEFUCTL_OK;
    }
    kefuctl_report_rows_free(rows, n);
    kefuctl_report_counts_free(&total.counts);
    kefuctl_report_keys_free(&keys);
    return rc;
}

