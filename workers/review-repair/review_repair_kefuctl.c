/* kefuctl report reviews: the review-repair worker's results, as described in
 * workers/review-repair/README.md "State and results": the day counters
 * kefu:stats:rv:{shop}:<yyyymmdd> (each counted on the day of its event: reviews and cases
 * on the day they were posted and opened, modifications and deletions on theirs), the
 * per-agent hash kefu:stats:rvagent:{shop} with the lists kefu:rv:fc:{shop}:<agent> of the
 * times to first contact, and the per-product hash kefu:stats:rvsku:{shop}. See
 * kefuctl_report.c. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_report.h"
#include "kf_util.h"

enum {
    R_REVIEWS, R_GOOD, R_NEUTRAL, R_BAD, R_OPENED, R_MALICIOUS, R_RESOLVED, R_FAILED,
    R_EXPLAINED, R_EXPIRED, R_MODIFIED, R_DELETED, R_NFIELDS
};

/* The counters of kefu:stats:rv:{shop}:<yyyymmdd>, with cause:<cause>. */
static const char *const s_rv_fields[R_NFIELDS] = {
    "reviews", "good", "neutral", "bad", "opened", "malicious", "resolved", "failed",
    "explained", "expired", "modified", "deleted",
};
static const kefuctl_report_schema_t s_rv_schema = {s_rv_fields, R_NFIELDS, "cause:", 0};

#define S_MIN_MS 60000.0

typedef struct {
    const char *shop; /* borrowed from a key */
    char *agent;
    long long cases, resolved, comp_fen;
    double median_min; /* NAN: no first contact recorded */
    size_t nfc;
} s_agent_t;

typedef struct {
    const char *shop;
    char *sku;
    kefuctl_report_counts_t neutral, bad; /* by cause */
} s_sku_t;

typedef struct {
    kefuctl_report_keys_t days, agent_keys, sku_keys;
    kefuctl_report_row_t *rows, total;
    size_t nrows;
    s_agent_t *agents;
    size_t nagents;
    s_sku_t *skus;
    size_t nskus;
} s_rv_t;

static s_agent_t *s_agent_get(s_rv_t *rv, size_t first, const char *shop, const char *name,
                              size_t len)
{
    for (size_t k = first; k < rv->nagents; k++)
        if (strlen(rv->agents[k].agent) == len && memcmp(rv->agents[k].agent, name, len) == 0)
            return &rv->agents[k];
    rv->agents = kf_xrealloc(rv->agents, (rv->nagents + 1) * sizeof(*rv->agents));
    rv->agents[rv->nagents] = (s_agent_t){shop, kf_xstrndup(name, len), 0, 0, 0, NAN, 0};
    return &rv->agents[rv->nagents++];
}

/* HGETALL kefu:stats:rvagent:{shop}: <agent>:cases, <agent>:resolved, <agent>:comp_fen. */
static void s_agent_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                         const redisReply *fields)
{
    static const char *const what[] = {"cases", "resolved", "comp_fen"};
    s_rv_t *rv = arg;
    size_t first = rv->nagents;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        const char *colon = f->type == REDIS_REPLY_STRING ? kefuctl_report_last_colon(f->str, f->len) : NULL;
        size_t alen = colon ? (size_t)(colon - f->str) : 0, w = 0;
        while (colon && w < KF_ARRAY_LEN(what) &&
               (strlen(what[w]) != f->len - alen - 1 || memcmp(colon + 1, what[w],
                                                               f->len - alen - 1) != 0))
            w++;
        if (!colon || w == KF_ARRAY_LEN(what))
            continue; /* not a field of this version */
        long long n;
        if (alen == 0 || !kefuctl_report_clean(f->str, alen)) {
            fprintf(stderr, "kefuctl: %s: a field without a usable agent, ignored\n", key->key);
            continue;
        }
        if (kefuctl_report_counter(key, f, v, &n) != KF_OK)
            continue;
        s_agent_t *a = s_agent_get(rv, first, key->shop, f->str, alen);
        long long *slot = w == 0 ? &a->cases : w == 1 ? &a->resolved : &a->comp_fen;
        *slot = kefuctl_report_add(*slot, n);
    }
}

/* The median of the LIST kefu:rv:fc:{shop}:<agent> (ms to first contact) in minutes. */
static int s_fc_read(redisContext *c, s_agent_t *a, char *err, size_t errlen)
{
    char key[512];
    snprintf(key, sizeof(key), "kefu:rv:fc:{%s}:%s", a->shop, a->agent);
    double ms;
    size_t n;
    if (kefuctl_report_list_median(c, key, &ms, &n, err, errlen) != KF_OK)
        return KF_ERR;
    if (n > 0) {
        a->median_min = ms / S_MIN_MS;
        a->nfc = n;
    }
    return KF_OK;
}

/* ------------------------------------------------------------------ products */

/* HGETALL kefu:stats:rvsku:{shop}: <sku_id>:<rating>:<cause> (ratings neutral and bad). */
static void s_sku_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                       const redisReply *fields)
{
    s_rv_t *rv = arg;
    size_t first = rv->nskus;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        const char *c2 = f->type == REDIS_REPLY_STRING ? kefuctl_report_last_colon(f->str, f->len) : NULL;
        const char *c1 = c2 ? kefuctl_report_last_colon(f->str, (size_t)(c2 - f->str)) : NULL;
        if (!c1)
            continue;
        size_t slen = (size_t)(c1 - f->str), rlen = (size_t)(c2 - c1 - 1);
        size_t clen = f->len - (size_t)(c2 + 1 - f->str);
        bool neutral = rlen == 7 && memcmp(c1 + 1, "neutral", 7) == 0;
        if (!neutral && !(rlen == 3 && memcmp(c1 + 1, "bad", 3) == 0))
            continue; /* a rating this report does not show */
        long long n;
        if (slen == 0 || clen == 0 || !kefuctl_report_clean(f->str, f->len)) {
            fprintf(stderr, "kefuctl: %s: a field without a usable sku or cause, ignored\n",
                    key->key);
            continue;
        }
        if (kefuctl_report_counter(key, f, v, &n) != KF_OK)
            continue;
        size_t k = first;
        while (k < rv->nskus &&
               (strlen(rv->skus[k].sku) != slen || memcmp(rv->skus[k].sku, f->str, slen) != 0))
            k++;
        if (k == rv->nskus) {
            rv->skus = kf_xrealloc(rv->skus, (k + 1) * sizeof(*rv->skus));
            rv->skus[rv->nskus++] = (s_sku_t){.shop = key->shop, .sku = kf_xstrndup(f->str, slen)};
        }
        kefuctl_report_counts_add(neutral ? &rv->skus[k].neutral : &rv->skus[k].bad, c2 + 1, clen,
                                  n);
    }
}

static long long s_counts_sum(const kefuctl_report_counts_t *c)
{
    long long s = 0;
    for (size_t i = 0; i < c->n; i++)
        s = kefuctl_report_add(s, c->v[i].n);
    return s;
}

static int s_cmp_agent(const void *a, const void *b)
{
    const s_agent_t *x = a, *y = b;
    int c = strcmp(x->shop, y->shop);
    return c ? c : strcmp(x->agent, y->agent);
}

static int s_cmp_sku(const void *a, const void *b) /* shop, most neutral + bad, sku */
{
    const s_sku_t *x = a, *y = b;
    int c = strcmp(x->shop, y->shop);
    if (c == 0) {
        long long nx = s_counts_sum(&x->neutral) + s_counts_sum(&x->bad);
        long long ny = s_counts_sum(&y->neutral) + s_counts_sum(&y->bad);
        c = (nx < ny) - (nx > ny);
    }
    return c ? c : strcmp(x->sku, y->sku);
}

/* ------------------------------------------------------------------ reading */

static int s_rv_read(redisContext *c, const kefuctl_report_opts_t *o, s_rv_t *rv, char *err,
                     size_t errlen)
{
    if (kefuctl_report_read_rows(c, o, &s_rv_schema, &rv->days, &rv->rows, &rv->nrows,
                                 &rv->total, err, errlen) != KF_OK ||
        kefuctl_report_scan(c, o, &rv->agent_keys, err, errlen) != KF_OK ||
        kefuctl_report_scan(c, o, &rv->sku_keys, err, errlen) != KF_OK ||
        kefuctl_report_read_hashes(c, &rv->agent_keys, s_agent_fill, rv, err, errlen) != KF_OK ||
        kefuctl_report_read_hashes(c, &rv->sku_keys, s_sku_fill, rv, err, errlen) != KF_OK)
        return KF_ERR;
    for (size_t i = 0; i < rv->nagents; i++)
        if (s_fc_read(c, &rv->agents[i], err, errlen) != KF_OK)
            return KF_ERR;
    if (rv->nagents > 1)
        qsort(rv->agents, rv->nagents, sizeof(*rv->agents), s_cmp_agent);
    for (size_t i = 0; i < rv->nskus; i++) {
        kefuctl_report_counts_sort(&rv->skus[i].neutral);
        kefuctl_report_counts_sort(&rv->skus[i].bad);
    }
    if (rv->nskus > 1)
        qsort(rv->skus, rv->nskus, sizeof(*rv->skus), s_cmp_sku);
    return KF_OK;
}

/* ------------------------------------------------------------------ tables */

static void s_day_row(kefuctl_table_t *t, const kefuctl_report_row_t *row)
{
    static const int cols[] = {R_REVIEWS, R_GOOD,     R_NEUTRAL, R_BAD,      R_OPENED,
                               R_MALICIOUS, R_RESOLVED, R_FAILED,  R_EXPLAINED, R_EXPIRED};
    char day[16], n[KF_ARRAY_LEN(cols)][24];
    kefuctl_report_fmt_day(row->day, day, sizeof(day));
    for (size_t i = 0; i < KF_ARRAY_LEN(cols); i++)
        snprintf(n[i], sizeof(n[i]), "%lld", row->v[cols[i]]);
    char *causes = kefuctl_report_counts_text(&row->counts);
    kefuctl_table_add(t, (const char *const[]){row->shop ? row->shop : "TOTAL",
                                               row->shop ? day : "", n[0], n[1], n[2], n[3],
                                               n[4], n[5], n[6], n[7], n[8], n[9], causes});
    free(causes);
}

static void s_mod_row(kefuctl_table_t *t, const kefuctl_report_row_t *row)
{
    char day[16], m[24], d[24];
    kefuctl_report_fmt_day(row->day, day, sizeof(day));
    snprintf(m, sizeof(m), "%lld", row->v[R_MODIFIED]);
    snprintf(d, sizeof(d), "%lld", row->v[R_DELETED]);
    kefuctl_table_add(t, (const char *const[]){row->shop ? row->shop : "TOTAL",
                                               row->shop ? day : "", m, d});
}

static bool s_has_mod(const kefuctl_report_row_t *row)
{
    return row->v[R_MODIFIED] || row->v[R_DELETED];
}

static void s_print_days(const s_rv_t *rv)
{
    kefuctl_table_t t = {.ncols = 13, .align = "llrrrrrrrrrrl"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "DAY", "REVIEWS", "GOOD", "NEUTRAL",
                                                "BAD", "OPENED", "MALICIOUS", "RESOLVED",
                                                "FAILED", "EXPLAINED", "EXPIRED", "BY_CAUSE"});
    for (size_t i = 0; i < rv->nrows; i++)
        s_day_row(&t, &rv->rows[i]);
    if (rv->nrows > 1)
        s_day_row(&t, &rv->total);
    kefuctl_table_print(&t, stdout);
    kefuctl_table_free(&t);
    putchar('\n');
    t = (kefuctl_table_t){.ncols = 4, .align = "llrr"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "MODIFIED_DAY", "MODIFIED", "DELETED"});
    size_t n = 0;
    for (size_t i = 0; i < rv->nrows; i++) {
        if (s_has_mod(&rv->rows[i])) {
            s_mod_row(&t, &rv->rows[i]);
            n++;
        }
    }
    if (n > 1)
        s_mod_row(&t, &rv->total);
    if (n)
        kefuctl_table_print(&t, stdout);
    else
        puts("no modified or deleted reviews");
    kefuctl_table_free(&t);
}

static void s_print_agents(const s_rv_t *rv)
{
    kefuctl_table_t t = {.ncols = 7, .align = "llrrrrr"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "AGENT", "CASES", "RESOLVED", "RATE",
                                                "FIRST_CONTACT_MIN", "COMPENSATION"});
    for (size_t i = 0; i < rv->nagents; i++) {
        const s_agent_t *a = &rv->agents[i];
        char cs[24], rs[24], rate[24], fc[32], comp[40];
        snprintf(cs, sizeof(cs), "%lld", a->cases);
        snprintf(rs, sizeof(rs), "%lld", a->resolved);
        if (a->cases > 0)
            snprintf(rate, sizeof(rate), "%.1f%%", 100.0 * (double)a->resolved / (double)a->cases);
        else
            snprintf(rate, sizeof(rate), "-");
        if (a->nfc)
            snprintf(fc, sizeof(fc), "%.1f", kefuctl_report_round1(a->median_min));
        else
            snprintf(fc, sizeof(fc), "-");
        snprintf(comp, sizeof(comp), "¥%lld.%02lld", a->comp_fen / 100, a->comp_fen % 100);
        kefuctl_table_add(&t, (const char *const[]){a->shop, a->agent, cs, rs, rate, fc, comp});
    }
    if (rv->nagents)
        kefuctl_table_print(&t, stdout);
    else
        puts("no agent counts");
    kefuctl_table_free(&t);
}

static void s_print_skus(const s_rv_t *rv)
{
    kefuctl_table_t t = {.ncols = 6, .align = "llrrll"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "SKU", "NEUTRAL", "BAD",
                                                "NEUTRAL_BY_CAUSE", "BAD_BY_CAUSE"});
    for (size_t i = 0; i < rv->nskus; i++) {
        const s_sku_t *k = &rv->skus[i];
        char ns[24], bs[24];
        snprintf(ns, sizeof(ns), "%lld", s_counts_sum(&k->neutral));
        snprintf(bs, sizeof(bs), "%lld", s_counts_sum(&k->bad));
        char *nc = kefuctl_report_counts_text(&k->neutral);
        char *bc = kefuctl_report_counts_text(&k->bad);
        kefuctl_table_add(&t, (const char *const[]){k->shop, k->sku, ns, bs, nc, bc});
        free(nc);
        free(bc);
    }
    if (rv->nskus)
        kefuctl_table_print(&t, stdout);
    else
        puts("no product counts");
    kefuctl_table_free(&t);
}

static void s_print_table(const s_rv_t *rv)
{
    if (rv->nrows)
        s_print_days(rv);
    else
        puts("no daily counts");
    putchar('\n');
    s_print_agents(rv);
    putchar('\n');
    s_print_skus(rv);
}

/* ------------------------------------------------------------------ JSON */

static json_t *s_json_row(const kefuctl_report_row_t *row)
{
    json_t *o = json_object();
    if (row->shop) {
        char day[16];
        json_object_set_new(o, "shop", json_string(row->shop));
        json_object_set_new(o, "day",
                            json_string(kefuctl_report_fmt_day(row->day, day, sizeof(day))));
    }
    for (size_t k = 0; k < R_NFIELDS; k++)
        json_object_set_new(o, s_rv_fields[k], json_integer(row->v[k]));
    json_object_set_new(o, "by_cause", kefuctl_report_counts_json(&row->counts));
    return o;
}

static json_t *s_json_agent(const s_agent_t *a)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:I, s:I}", "shop", a->shop, "agent",
                     a->agent, "cases", (json_int_t)a->cases, "resolved",
                     (json_int_t)a->resolved, "rate",
                     a->cases > 0 ? json_real((double)a->resolved / (double)a->cases)
                                  : json_null(),
                     "median_first_contact_minutes",
                     a->nfc ? json_real(kefuctl_report_round1(a->median_min)) : json_null(),
                     "first_contacts", (json_int_t)a->nfc, "compensation_fen",
                     (json_int_t)a->comp_fen);
}

static void s_print_json(const s_rv_t *rv)
{
    json_t *root = json_object(), *days = json_array(), *agents = json_array();
    json_t *products = json_array();
    json_object_set_new(root, "kind", json_string("reviews"));
    for (size_t i = 0; i < rv->nrows; i++)
        json_array_append_new(days, s_json_row(&rv->rows[i]));
    json_object_set_new(root, "days", days);
    json_object_set_new(root, "totals", s_json_row(&rv->total));
    for (size_t i = 0; i < rv->nagents; i++)
        json_array_append_new(agents, s_json_agent(&rv->agents[i]));
    json_object_set_new(root, "agents", agents);
    for (size_t i = 0; i < rv->nskus; i++) {
        const s_sku_t *k = &rv->skus[i];
        json_array_append_new(
            products, json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "shop", k->shop, "sku_id", k->sku,
                                "neutral", (json_int_t)s_counts_sum(&k->neutral), "bad",
                                (json_int_t)s_counts_sum(&k->bad), "neutral_by_cause",
                                kefuctl_report_counts_json(&k->neutral), "bad_by_cause",
                                kefuctl_report_counts_json(&k->bad)));
    }
    json_object_set_new(root, "products", products);
    json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    json_decref(root);
}

/* ------------------------------------------------------------------ the kind */

static void s_rv_free(s_rv_t *rv)
{
    kefuctl_report_rows_free(rv->rows, rv->nrows);
    kefuctl_report_counts_free(&rv->total.counts);
    for (size_t i = 0; i < rv->nagents; i++)
        free(rv->agents[i].agent);
    free(rv->agents);
    for (size_t i = 0; i < rv->nskus; i++) {
        free(rv->skus[i].sku);
        kefuctl_report_counts_free(&rv->skus[i].neutral);
        kefuctl_report_counts_free(&rv->skus[i].bad);
    }
    free(rv->skus);
    kefuctl_report_keys_free(&rv->days);
    kefuctl_report_keys_free(&rv->agent_keys);
    kefuctl_report_keys_free(&rv->sku_keys);
}

int kefuctl_report_reviews(redisContext *c, const kefuctl_report_opts_t *o)
{
    char err[512];
    s_rv_t rv = {.days = {.prefix = "kefu:stats:rv:"},
                 .agent_keys = {.prefix = "kefu:stats:rvagent:", .per_shop = true},
                 .sku_keys = {.prefix = "kefu:stats:rvsku:", .per_shop = true}};
    int rc = KEFUCTL_FAIL;
    if (s_rv_read(c, o, &rv, err, sizeof(err)) != KF_OK) {
        fprintf(stderr, "kefuctl: report %s: redis: %s\n", o->kind, err);
    } else {
        if (o->json)
            s_print_json(&rv);
        else if (!rv.nrows && !rv.nagents && !rv.nskus)
            puts("no review data");
        else
            s_print_table(&rv);
        rc = KEFUCTL_OK;
    }
    s_rv_free(&rv);
    return rc;
}
