/* kefuctl report care: kefu-crm-care's results, as described in workers/crm-care/README.md
 * ("The profile" counts, "Campaigns", "Results"). See kefuctl_report.c.
 *
 *   kefu:crm:segs:{shop}              HASH seg:<segment>, lvl:<level>: buyers in each now
 *   kefu:stats:crm:{shop}:<yyyymmdd>  HASH sent:<kind>, held:<kind>, blocked:<kind>:<reason>,
 *                                     paid_orders, new_buyers: summed over --from/--to
 *   kefu:stats:crmg:{shop}            HASH buyers, repeat, cared, cared_repeat, uncared_repeat
 *   kefu:crm:campaigns                ZSET <shop>:<campaign_id> by launch ms (the newest 100
 *                                     of the fleet), with kefu:crm:camp:{shop}:<id> HASHes
 *
 * Only the day counters are filtered by --from/--to; the segment counts, the repeat-purchase
 * counts and the campaigns are the current state. --shop filters everything.
 *
 * The --json document (tests and scripts rely on it; add members, never rename them):
 *   {"kind": "care",
 *    "segments":  [{"shop", "buyers" (the sum of the segments),
 *                   "segments": {"champions", "loyal", "potential", "new", "at_risk",
 *                                "hibernating", "lost"},
 *                   "levels": {"regular", "silver", "gold", "platinum"}}],
 *    "care":      [{"shop", "days" (days with counts), "first_day", "last_day",
 *                   "paid_orders", "new_buyers", "sent", "held", "blocked",
 *                   "blocked_by": {reason: n},
 *                   "kinds": [{"kind", "sent", "held", "blocked", "blocked_by": {reason: n}}]}],
 *    "repeat":    [{"shop", "buyers", "repeat", "cared", "cared_repeat",
 *                   "cared_rate" (cared_repeat / cared, null when cared is 0),
 *                   "not_cared" (buyers - cared), "not_cared_repeat" (uncared_repeat),
 *                   "not_cared_rate" (not_cared_repeat / not_cared, null when 0)}],
 *    "campaigns": [{"shop", "campaign_id", "name", "state", "segment", "level", "tags",
 *                   "channel", "launched", "start", "end" (RFC 3339 at +08:00, or null),
 *                   "parts_done", "matched", "sent", "blocked", "expired",
 *                   "blocked_by": {reason: n}}]}
 * Every array is sorted by shop; kinds in the README's order (unknown ones after, by name);
 * campaigns newest first within a shop. Days are "YYYY-MM-DD" (null without days). */
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_report.h"
#include "kf_util.h"

#define S_NSEGS 7
#define S_NLVLS 4
#define S_ZRANGE_BATCH 1000
#define S_OFFSET 480                    /* times as +08:00, like the broker's /stats */
#define S_MAX_MS 253402300799999LL      /* 9999-12-31T23:59:59.999Z */

static const char *const s_segs[S_NSEGS] = {"champions", "loyal",       "potential", "new",
                                            "at_risk",   "hibernating", "lost"};
static const char *const s_lvls[S_NLVLS] = {"regular", "silver", "gold", "platinum"};
/* DESIGN §10 care_<kind>, in the README's order */
static const char *const s_kind_order[] = {"shipped",  "same_city", "out_for_delivery",
                                           "signed",   "usage",     "replenish",
                                           "birthday", "gift",      "festival",
                                           "winback",  "campaign"};

enum { G_BUYERS, G_REPEAT, G_CARED, G_CARED_REPEAT, G_UNCARED_REPEAT, G_NFIELDS };
static const char *const s_g_fields[G_NFIELDS] = {"buyers", "repeat", "cared", "cared_repeat",
                                                  "uncared_repeat"};

enum { C_PARTS, C_MATCHED, C_SENT, C_BLOCKED, C_EXPIRED, C_NCOUNTS };
static const char *const s_c_counts[C_NCOUNTS] = {"parts_done", "matched", "sent", "blocked",
                                                  "expired"};
enum { C_NAME, C_STATE, C_SEGMENT, C_LEVEL, C_TAGS, C_CHANNEL, C_NTEXTS };
static const char *const s_c_texts[C_NTEXTS] = {"name", "state", "segment", "level", "tags",
                                                "channel"};
enum { C_LAUNCHED, C_START, C_END, C_NTIMES };
static const char *const s_c_times[C_NTIMES] = {"launched", "start", "end"};

typedef struct {
    const char *shop; /* borrowed from a key */
    long long seg[S_NSEGS], lvl[S_NLVLS];
} s_segs_t;

typedef struct {
    char *kind;
    long long sent, held, blocked;
    kefuctl_report_counts_t by_reason;
} s_kind_t;

typedef struct {
    const char *shop; /* borrowed from a key; "TOTAL" for the sum */
    int first, last;  /* yyyymmdd */
    size_t ndays;
    long long paid_orders, new_buyers;
    s_kind_t *kinds;
    size_t nkinds;
} s_care_t;

typedef struct {
    const char *shop;
    long long v[G_NFIELDS];
} s_rate_t;

typedef struct {
    const char *shop; /* borrowed from camp_keys */
    const char *id;   /* borrowed from camp_keys (after the shop's "}:") */
    size_t rank;      /* 0 = the newest in kefu:crm:campaigns */
    bool seen;
    long long n[C_NCOUNTS];
    char *text[C_NTEXTS];
    long long time[C_NTIMES]; /* -1: missing */
    kefuctl_report_counts_t blocked_by;
} s_camp_t;

typedef struct {
    kefuctl_report_keys_t seg_keys, day_keys, g_keys, camp_keys;
    s_segs_t *segs;
    size_t nsegs;
    s_care_t *care;
    size_t ncare;
    s_rate_t *rates;
    size_t nrates;
    s_camp_t *camps; /* parallel to camp_keys until read, then only the seen ones */
    size_t ncamps;
} s_cc_t;

/* ------------------------------------------------------------------ fields */

static bool s_is(const redisReply *f, const char *name)
{
    return f->type == REDIS_REPLY_STRING && strlen(name) == f->len &&
           memcmp(f->str, name, f->len) == 0;
}

static bool s_starts(const redisReply *f, const char *prefix)
{
    size_t n = strlen(prefix);
    return f->type == REDIS_REPLY_STRING && f->len >= n && memcmp(f->str, prefix, n) == 0;
}

/* The index of name (len bytes) in names[0..n), or -1. */
static int s_index(const char *const *names, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------ segments and levels */

/* HGETALL kefu:crm:segs:{shop}: seg:<segment> and lvl:<level> (other names: a newer worker's,
 * ignored). */
static void s_segs_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                        const redisReply *fields)
{
    s_cc_t *cc = arg;
    if (fields->elements == 0)
        return;
    cc->segs = kf_xrealloc(cc->segs, (cc->nsegs + 1) * sizeof(*cc->segs));
    s_segs_t *s = &cc->segs[cc->nsegs++];
    *s = (s_segs_t){.shop = key->shop};
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        bool seg = s_starts(f, "seg:");
        if (!seg && !s_starts(f, "lvl:"))
            continue;
        int k = seg ? s_index(s_segs, S_NSEGS, f->str + 4, f->len - 4)
                    : s_index(s_lvls, S_NLVLS, f->str + 4, f->len - 4);
        long long n;
        if (k < 0 || kefuctl_report_counter(key, f, v, &n) != KF_OK)
            continue;
        (seg ? s->seg : s->lvl)[k] = n;
    }
}

static long long s_buyers(const s_segs_t *s)
{
    long long n = 0;
    for (int k = 0; k < S_NSEGS; k++)
        n = kefuctl_report_add(n, s->seg[k]);
    return n;
}

/* ------------------------------------------------------------------ care by kind and reason */

static s_kind_t *s_kind_get(s_care_t *cr, const char *kind, size_t len)
{
    for (size_t k = 0; k < cr->nkinds; k++)
        if (strlen(cr->kinds[k].kind) == len && memcmp(cr->kinds[k].kind, kind, len) == 0)
            return &cr->kinds[k];
    cr->kinds = kf_xrealloc(cr->kinds, (cr->nkinds + 1) * sizeof(*cr->kinds));
    cr->kinds[cr->nkinds] = (s_kind_t){.kind = kf_xstrndup(kind, len)};
    return &cr->kinds[cr->nkinds++];
}

/* The shop's entry: the keys come sorted by shop, so it is the last one or a new one. */
static s_care_t *s_care_get(s_cc_t *cc, const char *shop)
{
    if (cc->ncare > 0 && strcmp(cc->care[cc->ncare - 1].shop, shop) == 0)
        return &cc->care[cc->ncare - 1];
    cc->care = kf_xrealloc(cc->care, (cc->ncare + 1) * sizeof(*cc->care));
    cc->care[cc->ncare] = (s_care_t){.shop = shop};
    return &cc->care[cc->ncare++];
}

/* One field sent:<kind>, held:<kind> or blocked:<kind>:<reason> into cr; false when its
 * kind or reason is not usable. */
static bool s_care_field(s_care_t *cr, const redisReply *f, long long n)
{
    int what = s_starts(f, "sent:") ? 0 : s_starts(f, "held:") ? 1 : 2;
    size_t plen = what == 2 ? 8 : 5;
    const char *kind = f->str + plen, *reason = NULL;
    size_t klen = f->len - plen, rlen = 0;
    if (what == 2) {
        const char *colon = memchr(kind, ':', klen);
        if (!colon)
            return false;
        reason = colon + 1;
        rlen = klen - (size_t)(reason - kind);
        klen = (size_t)(colon - kind);
        if (rlen == 0 || !kefuctl_report_clean(reason, rlen))
            return false;
    }
    if (klen == 0 || !kefuctl_report_clean(kind, klen))
        return false;
    s_kind_t *k = s_kind_get(cr, kind, klen);
    if (what == 0) {
        k->sent = kefuctl_report_add(k->sent, n);
    } else if (what == 1) {
        k->held = kefuctl_report_add(k->held, n);
    } else {
        k->blocked = kefuctl_report_add(k->blocked, n);
        kefuctl_report_counts_add(&k->by_reason, reason, rlen, n);
    }
    return true;
}

/* HGETALL kefu:stats:crm:{shop}:<yyyymmdd>. */
static void s_day_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                       const redisReply *fields)
{
    if (fields->elements == 0)
        return;
    s_care_t *cr = s_care_get(arg, key->shop);
    if (cr->ndays++ == 0 || key->day < cr->first)
        cr->first = key->day;
    cr->last = key->day > cr->last ? key->day : cr->last;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        bool counted = s_starts(f, "sent:") || s_starts(f, "held:") || s_starts(f, "blocked:");
        bool paid = s_is(f, "paid_orders"), fresh = s_is(f, "new_buyers");
        long long n;
        if ((!counted && !paid && !fresh) || kefuctl_report_counter(key, f, v, &n) != KF_OK)
            continue; /* a field of a newer worker, or not a count (noted) */
        if (paid)
            cr->paid_orders = kefuctl_report_add(cr->paid_orders, n);
        else if (fresh)
            cr->new_buyers = kefuctl_report_add(cr->new_buyers, n);
        else if (!s_care_field(cr, f, n))
            fprintf(stderr, "kefuctl: %s: a field without a usable kind or reason, ignored\n",
                    key->key);
    }
}

static size_t s_kind_rank(const char *kind)
{
    int k = s_index(s_kind_order, KF_ARRAY_LEN(s_kind_order), kind, strlen(kind));
    return k < 0 ? KF_ARRAY_LEN(s_kind_order) : (size_t)k;
}

static int s_cmp_kind(const void *a, const void *b)
{
    const s_kind_t *x = a, *y = b;
    size_t rx = s_kind_rank(x->kind), ry = s_kind_rank(y->kind);
    return rx != ry ? (rx > ry) - (rx < ry) : strcmp(x->kind, y->kind);
}

static long long s_sum(const s_care_t *cr, size_t off)
{
    long long n = 0;
    for (size_t k = 0; k < cr->nkinds; k++)
        n = kefuctl_report_add(n, *(const long long *)((const char *)&cr->kinds[k] + off));
    return n;
}

/* The blocks of every kind of cr by reason into out. */
static void s_reasons(const s_care_t *cr, kefuctl_report_counts_t *out)
{
    for (size_t k = 0; k < cr->nkinds; k++)
        for (size_t r = 0; r < cr->kinds[k].by_reason.n; r++)
            kefuctl_report_counts_add(out, cr->kinds[k].by_reason.v[r].name,
                                      strlen(cr->kinds[k].by_reason.v[r].name),
                                      cr->kinds[k].by_reason.v[r].n);
    kefuctl_report_counts_sort(out);
}

/* ------------------------------------------------------------------ repeat purchases */

/* HGETALL kefu:stats:crmg:{shop}. */
static void s_g_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                     const redisReply *fields)
{
    s_cc_t *cc = arg;
    if (fields->elements == 0)
        return;
    cc->rates = kf_xrealloc(cc->rates, (cc->nrates + 1) * sizeof(*cc->rates));
    s_rate_t *r = &cc->rates[cc->nrates++];
    *r = (s_rate_t){.shop = key->shop};
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        int k = f->type == REDIS_REPLY_STRING ? s_index(s_g_fields, G_NFIELDS, f->str, f->len)
                                              : -1;
        long long n;
        if (k >= 0 && kefuctl_report_counter(key, f, v, &n) == KF_OK)
            r->v[k] = n;
    }
}

static long long s_not_cared(const s_rate_t *r)
{
    return r->v[G_BUYERS] > r->v[G_CARED] ? r->v[G_BUYERS] - r->v[G_CARED] : 0;
}

/* ------------------------------------------------------------------ campaigns */

/* One member <shop>:<campaign_id> of kefu:crm:campaigns into camp_keys (with --shop);
 * false when it is not of that form. */
static bool s_camp_member(s_cc_t *cc, const kefuctl_report_opts_t *o, const redisReply *m,
                          size_t rank)
{
    const char *colon = m->type == REDIS_REPLY_STRING ? memchr(m->str, ':', m->len) : NULL;
    if (!colon)
        return false;
    size_t slen = (size_t)(colon - m->str), ilen = m->len - slen - 1;
    if (slen == 0 || ilen == 0 || !kefuctl_report_clean(m->str, slen) ||
        !kefuctl_report_clean(colon + 1, ilen))
        return false;
    if (o->shop && (strlen(o->shop) != slen || memcmp(o->shop, m->str, slen) != 0))
        return true;
    kefuctl_report_keys_t *k = &cc->camp_keys;
    k->v = kf_xrealloc(k->v, (k->n + 1) * sizeof(*k->v));
    cc->camps = kf_xrealloc(cc->camps, (k->n + 1) * sizeof(*cc->camps));
    char *key = kf_xasprintf("kefu:crm:camp:{%.*s}:%.*s", (int)slen, m->str, (int)ilen,
                             colon + 1);
    k->v[k->n] = (kefuctl_report_key_t){key, kf_xstrndup(m->str, slen), 0};
    cc->camps[k->n] = (s_camp_t){.shop = k->v[k->n].shop, .id = key + strlen(key) - ilen,
                                 .rank = rank, .time = {-1, -1, -1}};
    k->n++;
    return true;
}

/* The ZSET kefu:crm:campaigns, newest first, S_ZRANGE_BATCH members per round trip. */
static int s_camp_list(redisContext *c, const kefuctl_report_opts_t *o, s_cc_t *cc, char *err,
                       size_t errlen)
{
    size_t bad = 0, rank = 0;
    for (long long start = 0;; start += S_ZRANGE_BATCH) {
        redisReply *r = redisCommand(c, "ZREVRANGE kefu:crm:campaigns %lld %lld", start,
                                     start + S_ZRANGE_BATCH - 1);
        if (!r) {
            snprintf(err, errlen, "ZREVRANGE: %s", c->errstr[0] ? c->errstr : "connection lost");
            return KF_ERR;
        }
        bool more = r->type == REDIS_REPLY_ARRAY && r->elements == S_ZRANGE_BATCH;
        if (r->type != REDIS_REPLY_ARRAY)
            fprintf(stderr, "kefuctl: skipped kefu:crm:campaigns: %s\n",
                    r->type == REDIS_REPLY_ERROR ? r->str : "not a sorted set");
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
            bad += !s_camp_member(cc, o, r->element[i], rank++);
        freeReplyObject(r);
        if (!more)
            break;
    }
    if (bad)
        fprintf(stderr, "kefuctl: kefu:crm:campaigns: %zu member%s not <shop>:<campaign_id>, "
                        "ignored\n", bad, bad == 1 ? "" : "s");
    return KF_OK;
}

/* A time field (ms) into *out; a note when it is not one. */
static void s_camp_time(const kefuctl_report_key_t *key, const redisReply *f, const redisReply *v,
                        long long *out)
{
    if (v->type == REDIS_REPLY_STRING && strlen(v->str) == v->len &&
        kf_parse_ll(v->str, 0, S_MAX_MS, out) == KF_OK)
        return;
    char *vp = v->type == REDIS_REPLY_STRING ? kefuctl_report_printable(v->str, v->len)
                                             : kf_xstrdup("?");
    fprintf(stderr, "kefuctl: %s field '%s': '%.40s' is not a time in ms, ignored\n", key->key,
            f->str, vp);
    free(vp);
    *out = -1;
}

/* HGETALL kefu:crm:camp:{shop}:<id>: the counts, texts, times and blocked:<reason>. */
static void s_camp_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                        const redisReply *fields)
{
    s_camp_t *cp = &((s_cc_t *)arg)->camps[i];
    cp->seen = fields->elements > 0; /* none: expired since it was listed */
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        if (f->type != REDIS_REPLY_STRING)
            continue;
        int k;
        long long n;
        if ((k = s_index(s_c_texts, C_NTEXTS, f->str, f->len)) >= 0) {
            free(cp->text[k]);
            cp->text[k] = v->type == REDIS_REPLY_STRING
                              ? kefuctl_report_printable(v->str, v->len) : NULL;
        } else if ((k = s_index(s_c_times, C_NTIMES, f->str, f->len)) >= 0) {
            s_camp_time(key, f, v, &cp->time[k]);
        } else if ((k = s_index(s_c_counts, C_NCOUNTS, f->str, f->len)) >= 0) {
            if (kefuctl_report_counter(key, f, v, &n) == KF_OK)
                cp->n[k] = n;
        } else if (s_starts(f, "blocked:") && kefuctl_report_counter(key, f, v, &n) == KF_OK) {
            if (f->len > 8 && kefuctl_report_clean(f->str + 8, f->len - 8))
                kefuctl_report_counts_add(&cp->blocked_by, f->str + 8, f->len - 8, n);
            else
                fprintf(stderr, "kefuctl: %s: a blocked: field without a usable reason, "
                                "ignored\n", key->key);
        }
    }
    kefuctl_report_counts_sort(&cp->blocked_by);
}

static void s_camp_free(s_camp_t *cp)
{
    for (int k = 0; k < C_NTEXTS; k++)
        free(cp->text[k]);
    kefuctl_report_counts_free(&cp->blocked_by);
}

static int s_cmp_camp(const void *a, const void *b) /* shop, newest first */
{
    const s_camp_t *x = a, *y = b;
    int c = strcmp(x->shop, y->shop);
    return c ? c : (x->rank > y->rank) - (x->rank < y->rank);
}

/* Keeps the campaigns whose hash was there, sorted. */
static void s_camp_keep(s_cc_t *cc)
{
    size_t w = 0;
    for (size_t i = 0; i < cc->ncamps; i++) {
        if (cc->camps[i].seen)
            cc->camps[w++] = cc->camps[i];
        else
            s_camp_free(&cc->camps[i]);
    }
    cc->ncamps = w;
    if (w > 1)
        qsort(cc->camps, w, sizeof(*cc->camps), s_cmp_camp);
}

/* ------------------------------------------------------------------ reading */

static int s_cc_read(redisContext *c, const kefuctl_report_opts_t *o, s_cc_t *cc, char *err,
                     size_t errlen)
{
    if (kefuctl_report_scan(c, o, &cc->seg_keys, err, errlen) != KF_OK ||
        kefuctl_report_read_hashes(c, &cc->seg_keys, s_segs_fill, cc, err, errlen) != KF_OK ||
        kefuctl_report_scan(c, o, &cc->day_keys, err, errlen) != KF_OK ||
        kefuctl_report_read_hashes(c, &cc->day_keys, s_day_fill, cc, err, errlen) != KF_OK ||
        kefuctl_report_scan(c, o, &cc->g_keys, err, errlen) != KF_OK ||
        kefuctl_report_read_hashes(c, &cc->g_keys, s_g_fill, cc, err, errlen) != KF_OK ||
        s_camp_list(c, o, cc, err, errlen) != KF_OK)
        return KF_ERR;
    cc->ncamps = cc->camp_keys.n;
    if (kefuctl_report_read_hashes(c, &cc->camp_keys, s_camp_fill, cc, err, errlen) != KF_OK)
        return KF_ERR;
    s_camp_keep(cc);
    for (size_t i = 0; i < cc->ncare; i++) {
        s_care_t *cr = &cc->care[i];
        for (size_t k = 0; k < cr->nkinds; k++)
            kefuctl_report_counts_sort(&cr->kinds[k].by_reason);
        if (cr->nkinds > 1)
            qsort(cr->kinds, cr->nkinds, sizeof(*cr->kinds), s_cmp_kind);
    }
    return KF_OK;
}

/* ------------------------------------------------------------------ tables */

static void s_print_segs(const s_cc_t *cc)
{
    kefuctl_table_t t = {.ncols = 2 + S_NSEGS + S_NLVLS, .align = "lrrrrrrrrrrrr"};
    const char *head[2 + S_NSEGS + S_NLVLS] = {"SHOP", "BUYERS", "CHAMPIONS", "LOYAL",
                                               "POTENTIAL", "NEW", "AT_RISK", "HIBERNATING",
                                               "LOST", "REGULAR", "SILVER", "GOLD", "PLATINUM"};
    kefuctl_table_add(&t, head);
    s_segs_t total = {.shop = "TOTAL"};
    for (size_t i = 0; i <= cc->nsegs; i++) {
        if (i == cc->nsegs && cc->nsegs < 2)
            break;
        const s_segs_t *s = i < cc->nsegs ? &cc->segs[i] : &total;
        char n[2 + S_NSEGS + S_NLVLS][24];
        const char *cells[2 + S_NSEGS + S_NLVLS] = {s->shop};
        snprintf(n[1], sizeof(n[1]), "%lld", s_buyers(s));
        for (int k = 0; k < S_NSEGS + S_NLVLS; k++) {
            long long v = k < S_NSEGS ? s->seg[k] : s->lvl[k - S_NSEGS];
            snprintf(n[2 + k], sizeof(n[2 + k]), "%lld", v);
            if (s != &total && k < S_NSEGS)
                total.seg[k] = kefuctl_report_add(total.seg[k], v);
            else if (s != &total)
                total.lvl[k - S_NSEGS] = kefuctl_report_add(total.lvl[k - S_NSEGS], v);
        }
        for (int k = 1; k < 2 + S_NSEGS + S_NLVLS; k++)
            cells[k] = n[k];
        kefuctl_table_add(&t, cells);
    }
    kefuctl_table_print(&t, stdout);
    kefuctl_table_free(&t);
}

static void s_kind_row(kefuctl_table_t *t, const char *shop, const s_kind_t *k)
{
    char a[24], b[24], c[24];
    snprintf(a, sizeof(a), "%lld", k->sent);
    snprintf(b, sizeof(b), "%lld", k->held);
    snprintf(c, sizeof(c), "%lld", k->blocked);
    char *reasons = kefuctl_report_counts_text(&k->by_reason);
    kefuctl_table_add(t, (const char *const[]){shop, k->kind, a, b, c, reasons});
    free(reasons);
}

/* Per shop and kind, and a TOTAL over everything when there is more than one row. */
static void s_print_care(const s_cc_t *cc)
{
    kefuctl_table_t t = {.ncols = 6, .align = "llrrrl"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "KIND", "SENT", "HELD", "BLOCKED",
                                                "BY_REASON"});
    s_kind_t total = {.kind = ""};
    size_t rows = 0;
    for (size_t i = 0; i < cc->ncare; i++) {
        for (size_t k = 0; k < cc->care[i].nkinds; k++, rows++) {
            const s_kind_t *kd = &cc->care[i].kinds[k];
            s_kind_row(&t, cc->care[i].shop, kd);
            total.sent = kefuctl_report_add(total.sent, kd->sent);
            total.held = kefuctl_report_add(total.held, kd->held);
            total.blocked = kefuctl_report_add(total.blocked, kd->blocked);
        }
        s_reasons(&cc->care[i], &total.by_reason);
    }
    if (rows > 1)
        s_kind_row(&t, "TOTAL", &total);
    if (rows)
        kefuctl_table_print(&t, stdout);
    else
        puts("no care contacts");
    kefuctl_report_counts_free(&total.by_reason);
    kefuctl_table_free(&t);
}

static void s_rate_text(long long num, long long den, char *buf, size_t len)
{
    if (den > 0)
        snprintf(buf, len, "%.1f%%", 100.0 * (double)num / (double)den);
    else
        snprintf(buf, len, "-");
}

static void s_rate_row(kefuctl_table_t *t, const s_rate_t *r)
{
    char n[5][24], nc[24], ncr[24], cr[24], ucr[24];
    for (int k = 0; k < 4; k++)
        snprintf(n[k], sizeof(n[k]), "%lld", r->v[k]);
    snprintf(nc, sizeof(nc), "%lld", s_not_cared(r));
    snprintf(ncr, sizeof(ncr), "%lld", r->v[G_UNCARED_REPEAT]);
    s_rate_text(r->v[G_CARED_REPEAT], r->v[G_CARED], cr, sizeof(cr));
    s_rate_text(r->v[G_UNCARED_REPEAT], s_not_cared(r), ucr, sizeof(ucr));
    kefuctl_table_add(t, (const char *const[]){r->shop, n[G_BUYERS], n[G_REPEAT], n[G_CARED],
                                               n[G_CARED_REPEAT], cr, nc, ncr, ucr});
}

static void s_print_rates(const s_cc_t *cc)
{
    kefuctl_table_t t = {.ncols = 9, .align = "lrrrrrrrr"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "BUYERS", "REPEAT", "CARED",
                                                "CARED_REPEAT", "CARED_RATE", "NOT_CARED",
                                                "NOT_CARED_REPEAT", "NOT_CARED_RATE"});
    s_rate_t total = {.shop = "TOTAL"};
    for (size_t i = 0; i < cc->nrates; i++) {
        s_rate_row(&t, &cc->rates[i]);
        for (int k = 0; k < G_NFIELDS; k++)
            total.v[k] = kefuctl_report_add(total.v[k], cc->rates[i].v[k]);
    }
    if (cc->nrates > 1)
        s_rate_row(&t, &total);
    kefuctl_table_print(&t, stdout);
    kefuctl_table_free(&t);
}

static void s_print_camps(const s_cc_t *cc)
{
    kefuctl_table_t t = {.ncols = 10, .align = "llllrrrrrl"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "CAMPAIGN", "NAME", "STATE", "PARTS",
                                                "MATCHED", "SENT", "BLOCKED", "EXPIRED",
                                                "BY_REASON"});
    for (size_t i = 0; i < cc->ncamps; i++) {
        const s_camp_t *cp = &cc->camps[i];
        char n[C_NCOUNTS][24];
        snprintf(n[C_PARTS], sizeof(n[C_PARTS]), "%lld/64", cp->n[C_PARTS]);
        for (int k = C_MATCHED; k < C_NCOUNTS; k++)
            snprintf(n[k], sizeof(n[k]), "%lld", cp->n[k]);
        char *reasons = kefuctl_report_counts_text(&cp->blocked_by);
        const char *name = cp->text[C_NAME] && *cp->text[C_NAME] ? cp->text[C_NAME] : "-";
        const char *state = cp->text[C_STATE] && *cp->text[C_STATE] ? cp->text[C_STATE] : "-";
        kefuctl_table_add(&t, (const char *const[]){cp->shop, cp->id, name, state, n[C_PARTS],
                                                    n[C_MATCHED], n[C_SENT], n[C_BLOCKED],
                                                    n[C_EXPIRED], reasons});
        free(reasons);
    }
    kefuctl_table_print(&t, stdout);
    kefuctl_table_free(&t);
}

static void s_print_table(const s_cc_t *cc)
{
    if (cc->nsegs)
        s_print_segs(cc);
    else
        puts("no segment counts");
    putchar('\n');
    s_print_care(cc);
    putchar('\n');
    if (cc->nrates)
        s_print_rates(cc);
    else
        puts("no repeat-purchase counts");
    putchar('\n');
    if (cc->ncamps)
        s_print_camps(cc);
    else
        puts("no campaigns");
}

/* ------------------------------------------------------------------ JSON */

static json_t *s_json_segs(const s_segs_t *s)
{
    json_t *segs = json_object(), *lvls = json_object();
    for (int k = 0; k < S_NSEGS; k++)
        json_object_set_new(segs, s_segs[k], json_integer(s->seg[k]));
    for (int k = 0; k < S_NLVLS; k++)
        json_object_set_new(lvls, s_lvls[k], json_integer(s->lvl[k]));
    return json_pack("{s:s, s:I, s:o, s:o}", "shop", s->shop, "buyers",
                     (json_int_t)s_buyers(s), "segments", segs, "levels", lvls);
}

static json_t *s_json_day(int day)
{
    char buf[16];
    return day ? json_string(kefuctl_report_fmt_day(day, buf, sizeof(buf))) : json_null();
}

static json_t *s_json_care(const s_care_t *cr)
{
    json_t *kinds = json_array();
    for (size_t k = 0; k < cr->nkinds; k++) {
        const s_kind_t *kd = &cr->kinds[k];
        json_array_append_new(kinds, json_pack("{s:s, s:I, s:I, s:I, s:o}", "kind", kd->kind,
                                               "sent", (json_int_t)kd->sent, "held",
                                               (json_int_t)kd->held, "blocked",
                                               (json_int_t)kd->blocked, "blocked_by",
                                               kefuctl_report_counts_json(&kd->by_reason)));
    }
    kefuctl_report_counts_t reasons = {0};
    s_reasons(cr, &reasons);
    json_t *o = json_pack(
        "{s:s, s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "shop", cr->shop, "days",
        (json_int_t)cr->ndays, "first_day", s_json_day(cr->first), "last_day",
        s_json_day(cr->last), "paid_orders", (json_int_t)cr->paid_orders, "new_buyers",
        (json_int_t)cr->new_buyers, "sent", (json_int_t)s_sum(cr, offsetof(s_kind_t, sent)),
        "held", (json_int_t)s_sum(cr, offsetof(s_kind_t, held)), "blocked",
        (json_int_t)s_sum(cr, offsetof(s_kind_t, blocked)), "blocked_by",
        kefuctl_report_counts_json(&reasons), "kinds", kinds);
    kefuctl_report_counts_free(&reasons);
    return o;
}

static json_t *s_json_rate(long long num, long long den)
{
    return den > 0 ? json_real((double)num / (double)den) : json_null();
}

static json_t *s_json_repeat(const s_rate_t *r)
{
    const long long *v = r->v;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:o}", "shop", r->shop, "buyers",
                     (json_int_t)v[G_BUYERS], "repeat", (json_int_t)v[G_REPEAT], "cared",
                     (json_int_t)v[G_CARED], "cared_repeat", (json_int_t)v[G_CARED_REPEAT],
                     "cared_rate", s_json_rate(v[G_CARED_REPEAT], v[G_CARED]), "not_cared",
                     (json_int_t)s_not_cared(r), "not_cared_repeat",
                     (json_int_t)v[G_UNCARED_REPEAT], "not_cared_rate",
                     s_json_rate(v[G_UNCARED_REPEAT], s_not_cared(r)));
}

static json_t *s_json_camp(const s_camp_t *cp)
{
    json_t *o = json_pack("{s:s, s:s}", "shop", cp->shop, "campaign_id", cp->id);
    for (int k = 0; k < C_NTEXTS; k++)
        json_object_set_new(o, s_c_texts[k], json_string(cp->text[k] ? cp->text[k] : ""));
    for (int k = 0; k < C_NTIMES; k++) {
        char buf[40];
        bool ok = cp->time[k] >= 0 &&
                  kf_time_format(cp->time[k], S_OFFSET, buf, sizeof(buf)) == KF_OK;
        json_object_set_new(o, s_c_times[k], ok ? json_string(buf) : json_null());
    }
    for (int k = 0; k < C_NCOUNTS; k++)
        json_object_set_new(o, s_c_counts[k], json_integer(cp->n[k]));
    json_object_set_new(o, "blocked_by", kefuctl_report_counts_json(&cp->blocked_by));
    return o;
}

static void s_print_json(const s_cc_t *cc)
{
    json_t *segs = json_array(), *care = json_array(), *rep = json_array(), *camps = json_array();
    for (size_t i = 0; i < cc->nsegs; i++)
        json_array_append_new(segs, s_json_segs(&cc->segs[i]));
    for (size_t i = 0; i < cc->ncare; i++)
        json_array_append_new(care, s_json_care(&cc->care[i]));
    for (size_t i = 0; i < cc->nrates; i++)
        json_array_append_new(rep, s_json_repeat(&cc->rates[i]));
    for (size_t i = 0; i < cc->ncamps; i++)
        json_array_append_new(camps, s_json_camp(&cc->camps[i]));
    json_t *root = json_pack("{s:s, s:o, s:o, s:o, s:o}", "kind", "care", "segments", segs,
                             "care", care, "repeat", rep, "campaigns", camps);
    json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    json_decref(root);
}

/* ------------------------------------------------------------------ the kind */

static void s_cc_free(s_cc_t *cc)
{
    free(cc->segs);
    for (size_t i = 0; i < cc->ncare; i++) {
        for (size_t k = 0; k < cc->care[i].nkinds; k++) {
            free(cc->care[i].kinds[k].kind);
            kefuctl_report_counts_free(&cc->care[i].kinds[k].by_reason);
        }
        free(cc->care[i].kinds);
    }
    free(cc->care);
    free(cc->rates);
    for (size_t i = 0; i < cc->ncamps; i++)
        s_camp_free(&cc->camps[i]);
    free(cc->camps);
    kefuctl_report_keys_free(&cc->seg_keys);
    kefuctl_report_keys_free(&cc->day_keys);
    kefuctl_report_keys_free(&cc->g_keys);
    kefuctl_report_keys_free(&cc->camp_keys);
}

int kefuctl_report_care(redisContext *c, const kefuctl_report_opts_t *o)
{
    char err[512];
    s_cc_t cc = {.seg_keys = {.prefix = "kefu:crm:segs:", .per_shop = true},
                 .day_keys = {.prefix = "kefu:stats:crm:"},
                 .g_keys = {.prefix = "kefu:stats:crmg:", .per_shop = true},
                 .camp_keys = {.prefix = "kefu:crm:camp:"}};
    int rc = KEFUCTL_FAIL;
    if (s_cc_read(c, o, &cc, err, sizeof(err)) != KF_OK) {
        fprintf(stderr, "kefuctl: report %s: redis: %s\n", o->kind, err);
    } else {
        if (o->json)
            s_print_json(&cc);
        else if (!cc.nsegs && !cc.ncare && !cc.nrates && !cc.ncamps)
            puts("no care data");
        else
            s_print_table(&cc);
        rc = KEFUCTL_OK;
    }
    s_cc_free(&cc);
    return rc;
}
