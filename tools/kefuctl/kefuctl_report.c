/* kefuctl report: the per-shop, per-day results the workers keep in Redis (DOMAIN §1
 * "Results", workers/pay-reminder/README.md "Results", workers/logistics/README.md "State
 * and results"), as a table or JSON.
 *
 * A kind reads the hashes kefu:stats:<name>:{<shop_id>}:<yyyymmdd> (and, for logistics, the
 * per-shop keys <prefix>{<shop_id>}), found with SCAN (never KEYS) and read with pipelined
 * commands. Adding a kind is one function and one line in s_kinds. The keys come from
 * outside this process: keys of another form, values that are not counters and keys of
 * the wrong type are skipped with a note on stderr, never trusted.
 *
 * This file: the verb, the kinds and the shared SCAN / HGETALL helpers. Each kind reads one
 * worker's keys and lives in that worker's folder (a worker owns its key space):
 * workers/pay-reminder/pay_reminder_kefuctl.c (payments), workers/logistics/logistics_kefuctl.c,
 * workers/review-repair/review_repair_kefuctl.c (reviews), workers/crm-care/crm_care_kefuctl.c
 * (care); what they share is in kefuctl_report.h. */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_report.h"
#include "kf_util.h"

#define S_SCAN_COUNT "1000"
#define S_BATCH 256                          /* HGETALLs per pipeline round trip */
#define S_DAY_MAX 99991231

/* ------------------------------------------------------------------ days */

static bool s_valid_ymd(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

/* n digits at s into *out; false when one is not a digit. */
static bool s_digits(const char *s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *out = *out * 10 + (s[i] - '0');
    }
    return true;
}

/* "yyyymmdd" (exactly 8 characters at s) into the integer yyyymmdd; KF_ERR if no date. */
static int s_parse_compact_day(const char *s, int *day)
{
    int y, m, d;
    if (!s_digits(s, 4, &y) || !s_digits(s + 4, 2, &m) || !s_digits(s + 6, 2, &d) ||
        !s_valid_ymd(y, m, d))
        return KF_ERR;
    *day = y * 10000 + m * 100 + d;
    return KF_OK;
}

/* "YYYY-MM-DD" (the whole string) into yyyymmdd. */
static int s_parse_day(const char *s, int *day)
{
    char compact[8];
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return KF_ERR;
    memcpy(compact, s, 4);
    memcpy(compact + 4, s + 5, 2);
    memcpy(compact + 6, s + 8, 2);
    return s_parse_compact_day(compact, day);
}

const char *kefuctl_report_fmt_day(int day, char *buf, size_t len)
{
    snprintf(buf, len, "%04d-%02d-%02d", day / 10000, day / 100 % 100, day % 100);
    return buf;
}

/* ------------------------------------------------------------------ finding the keys */

/* A copy of s[0..n) with control bytes and invalid UTF-8 replaced by '?' (for messages). */
char *kefuctl_report_printable(const char *s, size_t n)
{
    char *out = kf_xstrndup(s, n);
    bool utf8 = kf_utf8_valid(s, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80))
            out[i] = '?';
    }
    return out;
}

/* true when s[0..n) is UTF-8 without control characters or braces (shop ids, reasons). */
bool kefuctl_report_clean(const char *s, size_t n)
{
    if (!kf_utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '{' || c == '}')
            return false;
    }
    return true;
}

/* kefu:stats:<x>:{<shop>}:<yyyymmdd>: the shop (printable UTF-8, no braces) and a real day;
 * per_shop: <prefix>{<shop>}, day 0. */
static bool s_parse_key(const char *prefix, bool per_shop, const char *key, size_t len,
                        char **shop, int *day)
{
    size_t plen = strlen(prefix), tail = per_shop ? 1 : 10;
    *day = 0;
    if (len < plen + 1 + 1 + tail || memcmp(key, prefix, plen) != 0 || key[plen] != '{')
        return false;
    if (per_shop && key[len - 1] != '}')
        return false;
    if (!per_shop && (memcmp(key + len - 10, "}:", 2) != 0 ||
                      s_parse_compact_day(key + len - 8, day) != KF_OK))
        return false;
    const char *s = key + plen + 1;
    size_t n = len - tail - plen - 1;
    if (!kefuctl_report_clean(s, n))
        return false;
    *shop = kf_xstrndup(s, n);
    return true;
}

static void s_keys_add(kefuctl_report_keys_t *k, const kefuctl_report_opts_t *o, const char *key,
                       size_t len)
{
    char *shop = NULL;
    int day = 0;
    if (!s_parse_key(k->prefix, k->per_shop, key, len, &shop, &day)) {
        if (k->malformed++ == 0)
            k->example = kefuctl_report_printable(key, len);
        return;
    }
    if ((o->shop && strcmp(shop, o->shop) != 0) ||
        (!k->per_shop && (day < o->from || day > o->to))) {
        free(shop);
        return;
    }
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->v = kf_xrealloc(k->v, k->cap * sizeof(*k->v));
    }
    k->v[k->n++] = (kefuctl_report_key_t){kf_xstrndup(key, len), shop, day};
}

void kefuctl_report_keys_free(kefuctl_report_keys_t *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].key);
        free(k->v[i].shop);
    }
    free(k->v);
    free(k->example);
}

static int s_cmp_key(const void *a, const void *b)
{
    const kefuctl_report_key_t *x = a, *y = b;
    int c = strcmp(x->shop, y->shop);
    return c ? c : (x->day > y->day) - (x->day < y->day);
}

/* Sorted by shop then day; SCAN may return a key more than once: keep one. */
static void s_keys_sort(kefuctl_report_keys_t *k)
{
    size_t w = 0;
    if (k->n > 1) /* qsort(NULL, 0, ...) is undefined */
        qsort(k->v, k->n, sizeof(*k->v), s_cmp_key);
    for (size_t r = 0; r < k->n; r++) {
        if (w > 0 && s_cmp_key(&k->v[w - 1], &k->v[r]) == 0) {
            free(k->v[r].key);
            free(k->v[r].shop);
            continue;
        }
        k->v[w++] = k->v[r];
    }
    k->n = w;
}

/* The SCAN pattern: every shop, or --shop with its glob characters escaped. */
static char *s_scan_pattern(const char *prefix, bool per_shop, const char *shop)
{
    if (!shop)
        return kf_xasprintf("%s*", prefix);
    char *esc = kf_xmalloc(2 * strlen(shop) + 1), *e = esc;
    for (const char *s = shop; *s; s++) {
        if (strchr("*?[]\\", *s))
            *e++ = '\\';
        *e++ = *s;
    }
    *e = '\0';
    char *pattern = kf_xasprintf(per_shop ? "%s{%s}" : "%s{%s}:*", prefix, esc);
    free(esc);
    return pattern;
}

/* One SCAN step; the next cursor into cursor (a 32-byte buffer). */
static int s_scan_step(redisContext *c, const char *pattern, char *cursor, kefuctl_report_keys_t *k,
                       const kefuctl_report_opts_t *o, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT " S_SCAN_COUNT, cursor, pattern);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= 32 ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "SCAN: %s", !r ? (c->errstr[0] ? c->errstr : "connection lost")
                                          : r->type == REDIS_REPLY_ERROR ? r->str
                                                                         : "unexpected reply");
        if (r)
            freeReplyObject(r);
        return KF_ERR;
    }
    memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
    const redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements; i++)
        if (keys->element[i]->type == REDIS_REPLY_STRING)
            s_keys_add(k, o, keys->element[i]->str, keys->element[i]->len);
    freeReplyObject(r);
    return KF_OK;
}

/* Every key of the kind that passes --shop/--from/--to, sorted, without duplicates. */
int kefuctl_report_scan(redisContext *c, const kefuctl_report_opts_t *o, kefuctl_report_keys_t *k,
                        char *err, size_t errlen)
{
    char *pattern = s_scan_pattern(k->prefix, k->per_shop, o->shop);
    char cursor[32] = "0";
    int rc = KF_OK;
    do {
        rc = s_scan_step(c, pattern, cursor, k, o, err, errlen);
    } while (rc == KF_OK && strcmp(cursor, "0") != 0 && !kefuctl_interrupted());
    free(pattern);
    if (rc == KF_OK && kefuctl_interrupted()) {
        snprintf(err, errlen, "interrupted");
        rc = KF_ERR;
    }
    if (rc == KF_OK)
        s_keys_sort(k);
    if (k->malformed)
        fprintf(stderr, "kefuctl: skipped %zu key%s not of the form %s{SHOP}%s "
                        "(first: %s)\n",
                k->malformed, k->malformed == 1 ? "" : "s", k->prefix,
                k->per_shop ? "" : ":YYYYMMDD", k->example);
    return rc;
}

/* ------------------------------------------------------------------ reading the hashes */

/* HGETALL of every key, S_BATCH per round trip; keys that are not hashes are skipped with
 * a note, empty ones (expired meanwhile) silently. */
int kefuctl_report_read_hashes(redisContext *c, const kefuctl_report_keys_t *k,
                               kefuctl_report_hash_fn *fn, void *arg, char *err, size_t errlen)
{
    for (size_t b = 0; b < k->n; b += S_BATCH) {
        size_t end = b + S_BATCH < k->n ? b + S_BATCH : k->n;
        for (size_t i = b; i < end; i++)
            redisAppendCommand(c, "HGETALL %s", k->v[i].key);
        for (size_t i = b; i < end; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
                snprintf(err, errlen, "HGETALL: %s",
                         c->errstr[0] ? c->errstr : "connection lost");
                return KF_ERR;
            }
            if (r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0)
                fn(arg, i, &k->v[i], r);
            else
                fprintf(stderr, "kefuctl: skipped %s: %s\n", k->v[i].key,
                        r->type == REDIS_REPLY_ERROR ? r->str : "not a hash");
            freeReplyObject(r);
        }
    }
    return KF_OK;
}

/* A counter value: a decimal integer in [0, REPORT_MAX_COUNTER]; KF_ERR with a note otherwise. */
int kefuctl_report_counter(const kefuctl_report_key_t *key, const redisReply *f,
                           const redisReply *v, long long *out)
{
    if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
        strlen(v->str) == v->len && kf_parse_ll(v->str, 0, REPORT_MAX_COUNTER, out) == KF_OK)
        return KF_OK;
    char *fp =
        f->type == REDIS_REPLY_STRING ? kefuctl_report_printable(f->str, f->len) : kf_xstrdup("?");
    char *vp =
        v->type == REDIS_REPLY_STRING ? kefuctl_report_printable(v->str, v->len) : kf_xstrdup("?");
    fprintf(stderr, "kefuctl: %s field '%s': '%.40s' is not a count, ignored\n", key->key, fp,
            vp);
    free(fp);
    free(vp);
    return KF_ERR;
}

long long kefuctl_report_add(long long a, long long b)
{
    long long s;
    return __builtin_add_overflow(a, b, &s) ? LLONG_MAX : s;
}

/* ------------------------------------------------------------------ reason counts */

void kefuctl_report_counts_add(kefuctl_report_counts_t *c, const char *name, size_t len,
                               long long n)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strlen(c->v[i].name) == len && memcmp(c->v[i].name, name, len) == 0) {
            c->v[i].n = kefuctl_report_add(c->v[i].n, n);
            return;
        }
    }
    c->v = kf_xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
    c->v[c->n++] = (kefuctl_report_count_t){kf_xstrndup(name, len), n};
}

static int s_cmp_count(const void *a, const void *b)
{
    return strcmp(((const kefuctl_report_count_t *)a)->name,
                  ((const kefuctl_report_count_t *)b)->name);
}

void kefuctl_report_counts_sort(kefuctl_report_counts_t *c)
{
    if (c->n > 1)
        qsort(c->v, c->n, sizeof(*c->v), s_cmp_count);
}

void kefuctl_report_counts_free(kefuctl_report_counts_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].name);
    free(c->v);
}

/* "deadline=3 optout=1" (sorted by name, zeros left out), or "-" when none. */
char *kefuctl_report_counts_text(const kefuctl_report_counts_t *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort(); /* allocation failure aborts */
    bool any = false;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].n) {
            fprintf(f, "%s%s=%lld", any ? " " : "", c->v[i].name, c->v[i].n);
            any = true;
        }
    }
    if (!any)
        fputc('-', f);
    fclose(f);
    return text;
}

json_t *kefuctl_report_counts_json(const kefuctl_report_counts_t *c)
{
    json_t *o = json_object();
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].n)
            json_object_set_new(o, c->v[i].name, json_integer(c->v[i].n));
    return o;
}

/* ------------------------------------------------------------------ counter rows */

typedef struct {
    const kefuctl_report_schema_t *schema;
    kefuctl_report_row_t *rows;
} s_fill_t;

/* Which field f is: 0..n-1, n for <count_prefix><name>, -1 for one this version does not
 * know. */
static int s_row_field(const kefuctl_report_schema_t *sc, const redisReply *f)
{
    size_t plen = strlen(sc->count_prefix);
    if (f->type != REDIS_REPLY_STRING)
        return -1;
    if (f->len >= plen && memcmp(f->str, sc->count_prefix, plen) == 0)
        return (int)sc->n;
    for (size_t k = 0; k < sc->n; k++)
        if (strlen(sc->fields[k]) == f->len && memcmp(sc->fields[k], f->str, f->len) == 0)
            return (int)k;
    return -1;
}

static void s_row_fill(void *arg, size_t i, const kefuctl_report_key_t *key,
                       const redisReply *fields)
{
    const kefuctl_report_schema_t *sc = ((s_fill_t *)arg)->schema;
    kefuctl_report_row_t *row = &((s_fill_t *)arg)->rows[i];
    size_t plen = strlen(sc->count_prefix);
    row->shop = key->shop;
    row->day = key->day;
    row->seen = fields->elements > 0;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        int k = s_row_field(sc, f);
        long long n;
        if (k < 0 || kefuctl_report_counter(key, f, v, &n) != KF_OK)
            continue;
        if ((size_t)k < sc->n) {
            row->v[k] = n;
            continue;
        }
        if (f->len > plen && kefuctl_report_clean(f->str + plen, f->len - plen))
            kefuctl_report_counts_add(&row->counts, f->str + plen, f->len - plen, n);
        else
            fprintf(stderr, "kefuctl: %s: a %s field without a usable name, ignored\n",
                    key->key, sc->count_prefix);
    }
    kefuctl_report_counts_sort(&row->counts);
}

static void s_row_sum(const kefuctl_report_schema_t *sc, kefuctl_report_row_t *total,
                      const kefuctl_report_row_t *row)
{
    for (size_t k = 0; k < sc->n; k++)
        total->v[k] = kefuctl_report_add(total->v[k], row->v[k]);
    for (size_t i = 0; i < row->counts.n; i++)
        kefuctl_report_counts_add(&total->counts, row->counts.v[i].name,
                                  strlen(row->counts.v[i].name), row->counts.v[i].n);
}

void kefuctl_report_rows_free(kefuctl_report_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        kefuctl_report_counts_free(&rows[i].counts);
    free(rows);
}

/* The hashes of keys->prefix that pass the filters and have data: *rows (*n of them, sorted
 * by shop and day, their shop names owned by keys) and their sum in *total. */
int kefuctl_report_read_rows(redisContext *c, const kefuctl_report_opts_t *o,
                             const kefuctl_report_schema_t *sc, kefuctl_report_keys_t *keys,
                             kefuctl_report_row_t **rows, size_t *n, kefuctl_report_row_t *total,
                             char *err, size_t errlen)
{
    *rows = NULL;
    *n = 0;
    if (kefuctl_report_scan(c, o, keys, err, errlen) != KF_OK)
        return KF_ERR;
    kefuctl_report_row_t *v = kf_xcalloc(keys->n + 1, sizeof(*v));
    s_fill_t fill = {sc, v};
    if (kefuctl_report_read_hashes(c, keys, s_row_fill, &fill, err, errlen) != KF_OK) {
        kefuctl_report_rows_free(v, keys->n);
        return KF_ERR;
    }
    size_t w = 0;
    for (size_t i = 0; i < keys->n; i++) { /* keep the rows with data, in key order */
        bool active = o->all_days || sc->activity == 0 || v[i].counts.n > 0;
        for (size_t k = 0; !active && k < sc->n; k++)
            active = (sc->activity >> k & 1u) && v[i].v[k] != 0;
        if (v[i].seen)
            s_row_sum(sc, total, &v[i]); /* the totals count every day */
        if (v[i].seen && active) {
            v[w++] = v[i];
        } else {
            kefuctl_report_counts_free(&v[i].counts);
        }
    }
    kefuctl_report_counts_sort(&total->counts);
    *rows = v;
    *n = w;
    return KF_OK;
}

/* ------------------------------------------------------------------ kinds, options, verb */

typedef int(s_kind_fn)(redisContext *c, const kefuctl_report_opts_t *o);

/* DESIGN §10: payments, logistics, reviews, care. NULL: the worker does not exist yet. */
static const struct {
    const char *name;
    s_kind_fn *fn;
} s_kinds[] = {
    {"payments", kefuctl_report_payments},
    {"logistics", kefuctl_report_logistics},
    {"reviews", kefuctl_report_reviews},
    {"care", kefuctl_report_care},
};

static int s_kind_find(const char *name)
{
    for (size_t i = 0; i < KF_ARRAY_LEN(s_kinds); i++)
        if (strcmp(s_kinds[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int s_parse_args(kefuctl_report_opts_t *o, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"shop", required_argument, NULL, 's'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},   {"json", no_argument, NULL, 'j'},
        {"all-days", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const kefuctl_verb_t *v = &kefuctl_verb_report;
    const char *from = NULL, *to = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", s_long, NULL)) != -1) {
        if (c == 's')
            o->shop = optarg;
        else if (c == 'f')
            from = optarg;
        else if (c == 't')
            to = optarg;
        else if (c == 'j')
            o->json = true;
        else if (c == 'a')
            o->all_days = true;
        else if (c == 'h') {
            kefuctl_print_usage(stdout, v, true);
            return KEFUCTL_OK;
        } else
            return kefuctl_getopt_error(v, c, argv);
    }
    if (optind >= argc)
        return kefuctl_usage_error(v, "report: which KIND? (payments, logistics, reviews, care)");
    o->kind = argv[optind++];
    if (optind < argc)
        return kefuctl_usage_error(v, "unexpected argument '%s'", argv[optind]);
    if (s_kind_find(o->kind) < 0)
        return kefuctl_usage_error(v, "report: unknown KIND '%s' (payments, logistics, "
                                      "reviews, care)", o->kind);
    if (o->shop && !*o->shop)
        return kefuctl_usage_error(v, "--shop: empty shop id");
    if (from && s_parse_day(from, &o->from) != KF_OK)
        return kefuctl_usage_error(v, "--from: '%s' is not a date YYYY-MM-DD", from);
    if (to && s_parse_day(to, &o->to) != KF_OK)
        return kefuctl_usage_error(v, "--to: '%s' is not a date YYYY-MM-DD", to);
    if (o->from > o->to)
        return kefuctl_usage_error(v, "--from %s is after --to %s", from, to);
    return -1;
}

static int s_report(kefuctl_t *ctl, int argc, char **argv)
{
    kefuctl_report_opts_t o = {.from = 0, .to = S_DAY_MAX};
    int rc = s_parse_args(&o, argc, argv);
    if (rc >= 0)
        return rc;
    s_kind_fn *fn = s_kinds[s_kind_find(o.kind)].fn;
    if (!fn) {
        fprintf(stderr, "kefuctl: report %s: not built yet\n", o.kind);
        return KEFUCTL_FAIL;
    }
    const kf_conf_t *conf = kefuctl_conf(ctl);
    if (!conf)
        return KEFUCTL_USAGE;
    char err[512];
    redisContext *c = kefuctl_redis_connect(conf, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "kefuctl: report %s: cannot read the results: %s\n", o.kind, err);
        return KEFUCTL_FAIL;
    }
    rc = fn(c, &o);
    redisFree(c);
    fflush(stdout);
    return rc;
}

const char *kefuctl_report_last_colon(const char *s, size_t n)
{
    while (n > 0)
        if (s[--n] == ':')
            return s + n;
    return NULL;
}

double kefuctl_report_round1(double x)
{
    return round(x * 10.0) / 10.0;
}

static int s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int kefuctl_report_list_median(redisContext *c, const char *key, double *median_ms, size_t *n,
                               char *err, size_t errlen)
{
    *n = 0;
    redisReply *r = redisCommand(c, "LRANGE %s 0 9999", key); /* the lists are capped at 10000 */
    if (!r) {
        snprintf(err, errlen, "LRANGE: %s", c->errstr[0] ? c->errstr : "connection lost");
        return KF_ERR;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "kefuctl: skipped %s: %s\n", key,
                r->type == REDIS_REPLY_ERROR ? r->str : "not a list");
        freeReplyObject(r);
        return KF_OK;
    }
    long long *v = kf_xmalloc((r->elements + 1) * sizeof(*v));
    size_t k = 0, bad = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && strlen(e->str) == e->len &&
            kf_parse_ll(e->str, 0, REPORT_MAX_COUNTER, &v[k]) == KF_OK)
            k++;
        else
            bad++;
    }
    freeReplyObject(r);
    if (bad)
        fprintf(stderr, "kefuctl: %s: %zu value%s not a time in ms, ignored\n", key, bad,
                bad == 1 ? "" : "s");
    if (k > 0) {
        qsort(v, k, sizeof(*v), s_cmp_ll);
        *median_ms = k % 2 ? (double)v[k / 2] : ((double)v[k / 2 - 1] + (double)v[k / 2]) / 2;
        *n = k;
    }
    free(v);
    return KF_OK;
}

const kefuctl_verb_t kefuctl_verb_report = {
    .name = "report",
    .fn = s_report,
    .synopsis = "report KIND [--shop S] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--all-days] "
                "[--json]",
    .help = "    The results the workers keep per shop and shop-local day ([redis] url).\n"
            "    KIND: payments (kefu-pay-reminder): per day orders, reminders, conversion,\n"
            "    recovered, blocked; logistics (kefu-logistics): per day shipped, anomalies by\n"
            "    kind, resolved, overdue shipping; per shop the open anomalies by kind with the\n"
            "    age of the oldest (on kefu:clock, else the wall clock), anomaly rates per\n"
            "    carrier and the median time to resolve; reviews (kefu-review-repair): per day\n"
            "    of the events reviews, ratings, cases opened, malicious, causes, resolved,\n"
            "    failed, explained, expired, and modified / deleted; per agent cases,\n"
            "    resolved, rate, median minutes to first contact, compensation; per product\n"
            "    the neutral and bad reviews by cause; care (kefu-crm-care): per shop buyers\n"
            "    per segment and level, care sent, held and blocked by kind and reason (summed\n"
            "    over the days), the repeat-purchase rate of cared vs not-cared buyers and the\n"
            "    campaigns (the newest 100 of the fleet) with their progress.\n"
            "    --shop S           only shop S\n"
            "    --from, --to DAY   only days in [from, to], shop-local, e.g. 2026-11-11 (the\n"
            "                       logistics per-shop state and the care segments, repeat\n"
            "                       purchases and campaigns are the current ones: not filtered)\n"
            "    --all-days         payments: also the days with orders but nothing unpaid,\n"
            "                       reminded or blocked (an imported history); the TOTAL row\n"
            "                       counts them either way\n"
            "    --json             one JSON document: payments {\"kind\", \"rows\": [...],\n"
            "                       \"totals\"}; logistics {\"kind\", \"days\", \"open\",\n"
            "                       \"carriers\", \"median_resolve_hours\"}; reviews {\"kind\",\n"
            "                       \"days\", \"totals\", \"agents\", \"products\"}; care {\"kind\",\n"
            "                       \"segments\", \"care\", \"repeat\", \"campaigns\"} (every member\n"
            "                       in workers/crm-care/crm_care_kefuctl.c)",
};
