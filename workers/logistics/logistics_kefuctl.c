/* kefuctl report logistics: the logistics worker's kefu:stats:lg:{shop}:<yyyymmdd> counters
 * and its per-shop keys (the open anomalies, carriers, resolution times), as described in
 * workers/logistics/README.md "State and results". See kefuctl_report.c. */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_report.h"
#include "kf_util.h"

/* ------------------------------------------------------------------ logistics */

enum { L_SHIPPED, L_ANOMALIES, L_RESOLVED, L_OVERDUE, L_NFIELDS };

/* The counters of kefu:stats:lg:{shop}:<yyyymmdd>, with anomaly:<kind>. */
static const char *const s_lg_fields[L_NFIELDS] = {"shipped", "anomalies", "resolved",
                                                   "overdue_shipping"};
static const kefuctl_report_schema_t s_lg_schema = {s_lg_fields, L_NFIELDS, "anomaly:", 0};

#define S_ZRANGE_BATCH 1000
#define S_HOUR_MS 3600000.0

typedef struct {
    const char *shop; /* borrowed from a key */
    char *kind;
    long long count;
    long long oldest; /* opened, epoch ms */
} s_open_t;

typedef struct {
    const char *shop;
    char *carrier;
    long long shipments, anomalies;
} s_carrier_t;

typedef struct {
    const char *shop;
    double hours;
    size_t n;
} s_median_t;

/* Everything the logistics report reads. */
typedef struct {
    kefuctl_report_keys_t days, open_keys, carrier_keys, resolve_keys;
    kefuctl_report_row_t *rows, total;
    size_t nrows;
    s_open_t *open;
    size_t nopen;
    s_carrier_t *carriers;
    size_t ncarriers;
    s_median_t *medians;
    size_t nmedians;
    long long now; /* kefu:clock, else the wall clock: what the ages are relative to */
} s_lg_t;

/* One member <order_id>:<kind> with its score into the shop's counts (from index first). */
static bool s_open_add(s_lg_t *lg, size_t first, const char *shop, const redisReply *m,
                       const redisReply *score)
{
    const char *colon = m->type == REDIS_REPLY_STRING ? kefuctl_report_last_colon(m->str, m->len) : NULL;
    long long opened;
    if (!colon || colon == m->str || score->type != REDIS_REPLY_STRING)
        return false;
    const char *kind = colon + 1;
    size_t klen = m->len - (size_t)(kind - m->str);
    char *end;
    double d = strtod(score->str, &end);
    if (klen == 0 || !kefuctl_report_clean(kind, klen) || *end || !(d >= 0 && d <= 1e15))
        return false;
    opened = (long long)d;
    for (size_t i = first; i < lg->nopen; i++) {
        s_open_t *o = &lg->open[i];
        if (strlen(o->kind) == klen && memcmp(o->kind, kind, klen) == 0) {
            o->count++;
            o->oldest = opened < o->oldest ? opened : o->oldest;
            return true;
        }
    }
    lg->open = kf_xrealloc(lg->open, (lg->nopen + 1) * sizeof(*lg->open));
    lg->open[lg->nopen++] = (s_open_t){shop, kf_xstrndup(kind, klen), 1, opened};
    return true;
}

/* The ZSET kefu:lg:open:{shop}, S_ZRANGE_BATCH members per round trip. */
static int s_open_read(redisContext *c, s_lg_t *lg, const kefuctl_report_key_t *key, char *err,
                       size_t errlen)
{
    size_t first = lg->nopen, bad = 0;
    for (long long start = 0;; start += S_ZRANGE_BATCH) {
        redisReply *r = redisCommand(c, "ZRANGE %s %lld %lld WITHSCORES", key->key, start,
                                     start + S_ZRANGE_BATCH - 1);
        if (!r) {
            snprintf(err, errlen, "ZRANGE: %s", c->errstr[0] ? c->errstr : "connection lost");
            return KF_ERR;
        }
        bool more = r->type == REDIS_REPLY_ARRAY && r->elements == 2 * S_ZRANGE_BATCH;
        if (r->type != REDIS_REPLY_ARRAY || r->elements % 2)
            fprintf(stderr, "kefuctl: skipped %s: %s\n", key->key,
                    r->type == REDIS_REPLY_ERROR ? r->str : "not a sorted set");
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
            bad += !s_open_add(lg, first, key->shop, r->element[i], r->element[i + 1]);
        freeReplyObject(r);
        if (!more)
            break;
    }
    if (bad)
        fprintf(stderr, "kefuctl: %s: %zu member%s not <order_id>:<kind> with a time, "
                        "ignored\n", key->key, bad, bad == 1 ? "" : "s");
    return KF_OK;
}

/* HGETALL kefu:stats:lgc:{shop}: <carrier>:shipments and <carrier>:anomalies. */
static void s_carrier_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                           const redisReply *fields)
{
    s_lg_t *lg = arg;
    size_t first = lg->ncarriers;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        const char *colon = f->type == REDIS_REPLY_STRING ? kefuctl_report_last_colon(f->str, f->len) : NULL;
        size_t clen = colon ? (size_t)(colon - f->str) : 0;
        if (!colon || f->len - clen != 10 ||
            (memcmp(colon, ":shipments", 10) != 0 && memcmp(colon, ":anomalies", 10) != 0))
            continue; /* not a field of this version */
        long long n;
        if (clen == 0 || !kefuctl_report_clean(f->str, clen)) {
            fprintf(stderr, "kefuctl: %s: a field without a usable carrier, ignored\n",
                    key->key);
            continue;
        }
        if (kefuctl_report_counter(key, f, v, &n) != KF_OK)
            continue;
        size_t k = first;
        while (k < lg->ncarriers && (strlen(lg->carriers[k].carrier) != clen ||
                                     memcmp(lg->carriers[k].carrier, f->str, clen) != 0))
            k++;
        if (k == lg->ncarriers) {
            lg->carriers = kf_xrealloc(lg->carriers, (k + 1) * sizeof(*lg->carriers));
            lg->carriers[lg->ncarriers++] =
                (s_carrier_t){key->shop, kf_xstrndup(f->str, clen), 0, 0};
        }
        s_carrier_t *ca = &lg->carriers[k];
        if (colon[1] == 's')
            ca->shipments = kefuctl_report_add(ca->shipments, n);
        else
            ca->anomalies = kefuctl_report_add(ca->anomalies, n);
    }
}

/* The median of the LIST kefu:lg:resolve:{shop} (ms, newest first, capped). */
static int s_resolve_read(redisContext *c, s_lg_t *lg, const kefuctl_report_key_t *key, char *err,
                          size_t errlen)
{
    double ms;
    size_t n;
    if (kefuctl_report_list_median(c, key->key, &ms, &n, err, errlen) != KF_OK)
        return KF_ERR;
    if (n > 0) {
        lg->medians = kf_xrealloc(lg->medians, (lg->nmedians + 1) * sizeof(*lg->medians));
        lg->medians[lg->nmedians++] = (s_median_t){key->shop, ms / S_HOUR_MS, n};
    }
    return KF_OK;
}

/* kefu:clock (the simulated clock, epoch ms) when it is set, else the wall clock. */
static int s_lg_clock(redisContext *c, long long *now, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "GET kefu:clock");
    if (!r) {
        snprintf(err, errlen, "GET: %s", c->errstr[0] ? c->errstr : "connection lost");
        return KF_ERR;
    }
    *now = kf_wall_ms();
    if (r->type == REDIS_REPLY_STRING && strlen(r->str) == r->len &&
        kf_parse_ll(r->str, 0, REPORT_MAX_COUNTER, now) == KF_OK) {
        /* the simulated clock */
    } else if (r->type != REDIS_REPLY_NIL) {
        char *p = r->type == REDIS_REPLY_STRING ? kefuctl_report_printable(r->str, r->len)
                                                : kf_xstrdup("?");
        fprintf(stderr, "kefuctl: kefu:clock: '%.40s' is not a time in ms, the wall clock is "
                        "used\n", p);
        free(p);
    }
    freeReplyObject(r);
    return KF_OK;
}

static int s_cmp_open(const void *a, const void *b)
{
    const s_open_t *x = a, *y = b;
    int c = strcmp(x->shop, y->shop);
    return c ? c : strcmp(x->kind, y->kind);
}

static int s_cmp_carrier(const void *a, const void *b) /* shop, most shipments, name */
{
    const s_carrier_t *x = a, *y = b;
    int c = strcmp(x->shop, y->shop);
    if (c == 0)
        c = (x->shipments < y->shipments) - (x->shipments > y->shipments);
    return c ? c : strcmp(x->carrier, y->carrier);
}

/* Reads the four parts: the days (with --from/--to), then the current per-shop state. */
static int s_lg_read(redisContext *c, const kefuctl_report_opts_t *o, s_lg_t *lg, char *err,
                     size_t errlen)
{
    if (kefuctl_report_read_rows(c, o, &s_lg_schema, &lg->days, &lg->rows, &lg->nrows, &lg->total,
                                 err, errlen) != KF_OK ||
        s_lg_clock(c, &lg->now, err, errlen) != KF_OK ||
        kefuctl_report_scan(c, o, &lg->open_keys, err, errlen) != KF_OK ||
        kefuctl_report_scan(c, o, &lg->carrier_keys, err, errlen) != KF_OK ||
        kefuctl_report_scan(c, o, &lg->resolve_keys, err, errlen) != KF_OK)
        return KF_ERR;
    for (size_t i = 0; i < lg->open_keys.n; i++)
        if (s_open_read(c, lg, &lg->open_keys.v[i], err, errlen) != KF_OK)
            return KF_ERR;
    if (kefuctl_report_read_hashes(c, &lg->carrier_keys, s_carrier_fill, lg, err, errlen) != KF_OK)
        return KF_ERR;
    for (size_t i = 0; i < lg->resolve_keys.n; i++)
        if (s_resolve_read(c, lg, &lg->resolve_keys.v[i], err, errlen) != KF_OK)
            return KF_ERR;
    if (lg->nopen > 1)
        qsort(lg->open, lg->nopen, sizeof(*lg->open), s_cmp_open);
    if (lg->ncarriers > 1)
        qsort(lg->carriers, lg->ncarriers, sizeof(*lg->carriers), s_cmp_carrier);
    return KF_OK;
}

static double s_age_hours(const s_lg_t *lg, const s_open_t *o)
{
    return lg->now > o->oldest ? (double)(lg->now - o->oldest) / S_HOUR_MS : 0.0;
}

static void s_lg_table_row(kefuctl_table_t *t, const kefuctl_report_row_t *row)
{
    char day[16], n[L_NFIELDS][24];
    kefuctl_report_fmt_day(row->day, day, sizeof(day));
    for (int i = 0; i < L_NFIELDS; i++)
        snprintf(n[i], sizeof(n[i]), "%lld", row->v[i]);
    char *kinds = kefuctl_report_counts_text(&row->counts);
    kefuctl_table_add(t, (const char *const[]){row->shop ? row->shop : "TOTAL",
                                               row->shop ? day : "", n[0], n[1], n[2], n[3],
                                               kinds});
    free(kinds);
}

static void s_lg_print_days(const s_lg_t *lg)
{
    kefuctl_table_t t = {.ncols = 7, .align = "llrrrrl"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "DAY", "SHIPPED", "ANOMALIES",
                                                "RESOLVED", "OVERDUE_SHIPPING", "BY_KIND"});
    for (size_t i = 0; i < lg->nrows; i++)
        s_lg_table_row(&t, &lg->rows[i]);
    if (lg->nrows > 1)
        s_lg_table_row(&t, &lg->total);
    kefuctl_table_print(&t, stdout);
    kefuctl_table_free(&t);
}

static void s_lg_print_state(const s_lg_t *lg)
{
    kefuctl_table_t t = {.ncols = 4, .align = "llrr"};
    char a[24], b[24], c[24];
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "OPEN_KIND", "COUNT", "OLDEST_HOURS"});
    for (size_t i = 0; i < lg->nopen; i++) {
        snprintf(a, sizeof(a), "%lld", lg->open[i].count);
        snprintf(b, sizeof(b), "%.1f", kefuctl_report_round1(s_age_hours(lg, &lg->open[i])));
        kefuctl_table_add(&t, (const char *const[]){lg->open[i].shop, lg->open[i].kind, a, b});
    }
    if (lg->nopen)
        kefuctl_table_print(&t, stdout);
    else
        puts("no open anomalies");
    kefuctl_table_free(&t);
    putchar('\n');
    t = (kefuctl_table_t){.ncols = 5, .align = "llrrr"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "CARRIER", "SHIPMENTS", "ANOMALIES",
                                                "RATE"});
    for (size_t i = 0; i < lg->ncarriers; i++) {
        const s_carrier_t *k = &lg->carriers[i];
        snprintf(a, sizeof(a), "%lld", k->shipments);
        snprintf(b, sizeof(b), "%lld", k->anomalies);
        if (k->shipments > 0)
            snprintf(c, sizeof(c), "%.1f%%", 100.0 * (double)k->anomalies / (double)k->shipments);
        else
            snprintf(c, sizeof(c), "-");
        kefuctl_table_add(&t, (const char *const[]){k->shop, k->carrier, a, b, c});
    }
    if (lg->ncarriers)
        kefuctl_table_print(&t, stdout);
    else
        puts("no carrier counts");
    kefuctl_table_free(&t);
}

static void s_lg_print_table(const s_lg_t *lg)
{
    if (lg->nrows)
        s_lg_print_days(lg);
    else
        puts("no daily counts");
    putchar('\n');
    s_lg_print_state(lg);
    putchar('\n');
    fputs("median time to resolve:", stdout);
    for (size_t i = 0; i < lg->nmedians; i++)
        printf("%s %s %.1f h (%zu resolved)", i ? "," : "", lg->medians[i].shop,
               kefuctl_report_round1(lg->medians[i].hours), lg->medians[i].n);
    puts(lg->nmedians ? "" : " -");
}

static json_t *s_lg_json_days(const s_lg_t *lg)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < lg->nrows; i++) {
        const kefuctl_report_row_t *row = &lg->rows[i];
        json_t *o = json_object();
        char day[16];
        json_object_set_new(o, "shop", json_string(row->shop));
        json_object_set_new(o, "day",
                            json_string(kefuctl_report_fmt_day(row->day, day, sizeof(day))));
        for (size_t k = 0; k < L_NFIELDS; k++)
            json_object_set_new(o, s_lg_fields[k], json_integer(row->v[k]));
        json_object_set_new(o, "anomalies_by_kind", kefuctl_report_counts_json(&row->counts));
        json_array_append_new(arr, o);
    }
    return arr;
}

static void s_lg_print_json(const s_lg_t *lg)
{
    json_t *root = json_object(), *open = json_array(), *carriers = json_array();
    json_t *medians = json_object();
    json_object_set_new(root, "kind", json_string("logistics"));
    json_object_set_new(root, "days", s_lg_json_days(lg));
    for (size_t i = 0; i < lg->nopen; i++)
        json_array_append_new(open, json_pack("{s:s, s:s, s:I, s:o}", "shop", lg->open[i].shop,
                                              "kind", lg->open[i].kind, "count",
                                              (json_int_t)lg->open[i].count, "oldest_hours",
                                              json_real(kefuctl_report_round1(s_age_hours(lg, &lg->open[i])))));
    json_object_set_new(root, "open", open);
    for (size_t i = 0; i < lg->ncarriers; i++) {
        const s_carrier_t *k = &lg->carriers[i];
        json_array_append_new(
            carriers, json_pack("{s:s, s:s, s:I, s:I, s:o}", "shop", k->shop, "carrier",
                                k->carrier, "shipments", (json_int_t)k->shipments, "anomalies",
                                (json_int_t)k->anomalies, "rate",
                                k->shipments > 0 ? json_real((double)k->anomalies /
                                                             (double)k->shipments)
                                                 : json_null()));
    }
    json_object_set_new(root, "carriers", carriers);
    for (size_t i = 0; i < lg->nmedians; i++)
        json_object_set_new(medians, lg->medians[i].shop,
                            json_real(kefuctl_report_round1(lg->medians[i].hours)));
    json_object_set_new(root, "median_resolve_hours", medians);
    json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    json_decref(root);
}

static void s_lg_free(s_lg_t *lg)
{
    kefuctl_report_rows_free(lg->rows, lg->nrows);
    kefuctl_report_counts_free(&lg->total.counts);
    for (size_t i = 0; i < lg->nopen; i++)
        free(lg->open[i].kind);
    free(lg->open);
    for (size_t i = 0; i < lg->ncarriers; i++)
        free(lg->carriers[i].carrier);
    free(lg->carriers);
    free(lg->medians);
    kefuctl_report_keys_free(&lg->days);
    kefuctl_report_keys_free(&lg->open_keys);
    kefuctl_report_keys_free(&lg->carrier_keys);
    kefuctl_report_keys_free(&lg->resolve_keys);
}

int kefuctl_report_logistics(redisContext *c, const kefuctl_report_opts_t *o)
{
    char err[512];
    s_lg_t lg = {.days = {.prefix = "kefu:stats:lg:"},
                 .open_keys = {.prefix = "kefu:lg:open:", .per_shop = true},
                 .carrier_keys = {.prefix = "kefu:stats:lgc:", .per_shop = true},
                 .resolve_keys = {.prefix = "kefu:lg:resolve:", .per_shop = true}};
    int rc = KEFUCTL_FAIL;
    if (s_lg_read(c, o, &lg, err, sizeof(err)) != KF_OK) {
        fprintf(stderr, "kefuctl: report %s: redis: %s\n", o->kind, err);
    } else {
        if (o->json)
            s_lg_print_json(&lg);
        else if (!lg.nrows && !lg.nopen && !lg.ncarriers && !lg.nmedians)
            puts("no logistics data");
        else
            s_lg_print_table(&lg);
        rc = KEFUCTL_OK;
    }
    s_lg_free(&lg);
    return rc;
}
