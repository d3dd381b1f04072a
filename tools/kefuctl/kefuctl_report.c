/* kefuctl report: the per-shop, per-day results the workers keep in Redis (DOMAIN §1
 * "Results", workers/pay-reminder/README.md "Results", workers/logistics/README.md "State
 * and results"), as a table or JSON.
 *
 * A kind reads the hashes kefu:stats:<name>:{<shop_id>}:<yyyymmdd> (and, for logistics, the
 * per-shop keys <prefix>{<shop_id>}), found with SCAN (never KEYS) and read with pipelined
 * commands. Adding a kind is one function and one line in s_kinds. The keys come from
 * outside this process: keys of another form, values that are not counters and keys of
 * the wrong type are skipped with a note on stderr, never trusted. */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kf_util.h"

#define S_SCAN_COUNT "1000"
#define S_BATCH 256                          /* HGETALLs per pipeline round trip */
#define S_MAX_COUNTER 1000000000000000LL     /* 10^15: above any real count or fen sum */
#define S_DAY_MAX 99991231

typedef struct {
    const char *kind;
    const char *shop; /* --shop, or NULL for every shop */
    int from, to;     /* yyyymmdd, inclusive */
    bool json;
} s_opts_t;

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

static const char *s_fmt_day(int day, char *buf, size_t len)
{
    snprintf(buf, len, "%04d-%02d-%02d", day / 10000, day / 100 % 100, day % 100);
    return buf;
}

/* ------------------------------------------------------------------ finding the keys */

/* One shop-day hash found by SCAN. */
typedef struct {
    char *key;
    char *shop;
    int day; /* yyyymmdd */
} s_key_t;

typedef struct {
    const char *prefix; /* "kefu:stats:pay:" */
    bool per_shop;      /* keys <prefix>{<shop>}, without a day (day 0) */
    s_key_t *v;
    size_t n, cap;
    size_t malformed;
    char *example; /* the first malformed key, made printable */
} s_keys_t;

/* A copy of s[0..n) with control bytes and invalid UTF-8 replaced by '?' (for messages). */
static char *s_printable(const char *s, size_t n)
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
static bool s_clean(const char *s, size_t n)
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
    if (!s_clean(s, n))
        return false;
    *shop = kf_xstrndup(s, n);
    return true;
}

static void s_keys_add(s_keys_t *k, const s_opts_t *o, const char *key, size_t len)
{
    char *shop = NULL;
    int day = 0;
    if (!s_parse_key(k->prefix, k->per_shop, key, len, &shop, &day)) {
        if (k->malformed++ == 0)
            k->example = s_printable(key, len);
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
    k->v[k->n++] = (s_key_t){kf_xstrndup(key, len), shop, day};
}

static void s_keys_free(s_keys_t *k)
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
    const s_key_t *x = a, *y = b;
    int c = strcmp(x->shop, y->shop);
    return c ? c : (x->day > y->day) - (x->day < y->day);
}

/* Sorted by shop then day; SCAN may return a key more than once: keep one. */
static void s_keys_sort(s_keys_t *k)
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
static int s_scan_step(redisContext *c, const char *pattern, char *cursor, s_keys_t *k,
                       const s_opts_t *o, char *err, size_t errlen)
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
static int s_scan(redisContext *c, const s_opts_t *o, s_keys_t *k, char *err, size_t errlen)
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

/* Called once per key with its HGETALL reply (an array of field, value strings). */
typedef void(s_hash_fn)(void *arg, size_t i, const s_key_t *key, const redisReply *fields);

/* HGETALL of every key, S_BATCH per round trip; keys that are not hashes are skipped with
 * a note, empty ones (expired meanwhile) silently. */
static int s_read_hashes(redisContext *c, const s_keys_t *k, s_hash_fn *fn, void *arg,
                         char *err, size_t errlen)
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

/* A counter value: a decimal integer in [0, S_MAX_COUNTER]; KF_ERR with a note otherwise. */
static int s_counter(const s_key_t *key, const redisReply *f, const redisReply *v,
                     long long *out)
{
    if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
        strlen(v->str) == v->len && kf_parse_ll(v->str, 0, S_MAX_COUNTER, out) == KF_OK)
        return KF_OK;
    char *fp = f->type == REDIS_REPLY_STRING ? s_printable(f->str, f->len) : kf_xstrdup("?");
    char *vp = v->type == REDIS_REPLY_STRING ? s_printable(v->str, v->len) : kf_xstrdup("?");
    fprintf(stderr, "kefuctl: %s field '%s': '%.40s' is not a count, ignored\n", key->key, fp,
            vp);
    free(fp);
    free(vp);
    return KF_ERR;
}

static long long s_add(long long a, long long b)
{
    long long s;
    return __builtin_add_overflow(a, b, &s) ? LLONG_MAX : s;
}

/* ------------------------------------------------------------------ reason counts */

typedef struct {
    char *name;
    long long n;
} s_count_t;

typedef struct {
    s_count_t *v;
    size_t n;
} s_counts_t;

static void s_counts_add(s_counts_t *c, const char *name, size_t len, long long n)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strlen(c->v[i].name) == len && memcmp(c->v[i].name, name, len) == 0) {
            c->v[i].n = s_add(c->v[i].n, n);
            return;
        }
    }
    c->v = kf_xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
    c->v[c->n++] = (s_count_t){kf_xstrndup(name, len), n};
}

static int s_cmp_count(const void *a, const void *b)
{
    return strcmp(((const s_count_t *)a)->name, ((const s_count_t *)b)->name);
}

static void s_counts_sort(s_counts_t *c)
{
    if (c->n > 1)
        qsort(c->v, c->n, sizeof(*c->v), s_cmp_count);
}

static void s_counts_free(s_counts_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].name);
    free(c->v);
}

/* "deadline=3 optout=1" (sorted by name, zeros left out), or "-" when none. */
static char *s_counts_text(const s_counts_t *c)
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

static json_t *s_counts_json(const s_counts_t *c)
{
    json_t *o = json_object();
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].n)
            json_object_set_new(o, c->v[i].name, json_integer(c->v[i].n));
    return o;
}

/* ------------------------------------------------------------------ counter rows */

#define S_MAX_FIELDS 16

/* The counters of a kind's shop-day hashes: named fields, and fields <count_prefix><name>
 * counted by name. Fields this version does not know (a newer worker's) are ignored. */
typedef struct {
    const char *const *fields; /* in the order --json prints them */
    size_t n;
    const char *count_prefix;  /* "blocked:" */
} s_schema_t;

typedef struct {
    const char *shop; /* borrowed from the key; NULL for the totals */
    int day;
    long long v[S_MAX_FIELDS];
    s_counts_t counts;
    bool seen; /* the hash had fields */
} s_row_t;

typedef struct {
    const s_schema_t *schema;
    s_row_t *rows;
} s_fill_t;

/* Which field f is: 0..n-1, n for <count_prefix><name>, -1 for one this version does not
 * know. */
static int s_row_field(const s_schema_t *sc, const redisReply *f)
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

static void s_row_fill(void *arg, size_t i, const s_key_t *key, const redisReply *fields)
{
    const s_schema_t *sc = ((s_fill_t *)arg)->schema;
    s_row_t *row = &((s_fill_t *)arg)->rows[i];
    size_t plen = strlen(sc->count_prefix);
    row->shop = key->shop;
    row->day = key->day;
    row->seen = fields->elements > 0;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        int k = s_row_field(sc, f);
        long long n;
        if (k < 0 || s_counter(key, f, v, &n) != KF_OK)
            continue;
        if ((size_t)k < sc->n) {
            row->v[k] = n;
            continue;
        }
        if (f->len > plen && s_clean(f->str + plen, f->len - plen))
            s_counts_add(&row->counts, f->str + plen, f->len - plen, n);
        else
            fprintf(stderr, "kefuctl: %s: a %s field without a usable name, ignored\n",
                    key->key, sc->count_prefix);
    }
    s_counts_sort(&row->counts);
}

static void s_row_sum(const s_schema_t *sc, s_row_t *total, const s_row_t *row)
{
    for (size_t k = 0; k < sc->n; k++)
        total->v[k] = s_add(total->v[k], row->v[k]);
    for (size_t i = 0; i < row->counts.n; i++)
        s_counts_add(&total->counts, row->counts.v[i].name, strlen(row->counts.v[i].name),
                     row->counts.v[i].n);
}

static void s_rows_free(s_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        s_counts_free(&rows[i].counts);
    free(rows);
}

/* The hashes of keys->prefix that pass the filters and have data: *rows (*n of them, sorted
 * by shop and day, their shop names owned by keys) and their sum in *total. */
static int s_read_rows(redisContext *c, const s_opts_t *o, const s_schema_t *sc,
                       s_keys_t *keys, s_row_t **rows, size_t *n, s_row_t *total, char *err,
                       size_t errlen)
{
    *rows = NULL;
    *n = 0;
    if (s_scan(c, o, keys, err, errlen) != KF_OK)
        return KF_ERR;
    s_row_t *v = kf_xcalloc(keys->n + 1, sizeof(*v));
    s_fill_t fill = {sc, v};
    if (s_read_hashes(c, keys, s_row_fill, &fill, err, errlen) != KF_OK) {
        s_rows_free(v, keys->n);
        return KF_ERR;
    }
    size_t w = 0;
    for (size_t i = 0; i < keys->n; i++) { /* keep the rows with data, in key order */
        if (v[i].seen) {
            s_row_sum(sc, total, &v[i]);
            v[w++] = v[i];
        } else {
            s_counts_free(&v[i].counts);
        }
    }
    s_counts_sort(&total->counts);
    *rows = v;
    *n = w;
    return KF_OK;
}

/* ------------------------------------------------------------------ payments */

enum {
    P_ORDERS, P_PAID, P_CLOSED, P_UNPAID, P_REMINDED, P_REMINDERS, P_IM, P_SMS, P_PHONE,
    P_PAID_AFTER, P_RECOVERED, P_NFIELDS
};

/* The counters of kefu:stats:pay:{shop}:<yyyymmdd>, in the order --json prints them. */
static const char *const s_pay_fields[P_NFIELDS] = {
    "orders", "paid", "closed", "unpaid", "reminded", "reminders", "reminders_im",
    "reminders_sms", "reminders_phone", "paid_after_reminder", "recovered_fen",
};

static const s_schema_t s_pay_schema = {s_pay_fields, P_NFIELDS, "blocked:"};

static void s_pay_table_row(kefuctl_table_t *t, const s_row_t *row)
{
    static const int cols[5] = {P_ORDERS, P_UNPAID, P_REMINDED, P_REMINDERS, P_PAID_AFTER};
    char day[16], n[5][24], conv[24], yuan[40];
    const long long *v = row->v;
    s_fmt_day(row->day, day, sizeof(day));
    for (int i = 0; i < 5; i++)
        snprintf(n[i], sizeof(n[i]), "%lld", v[cols[i]]);
    if (v[P_REMINDED] > 0)
        snprintf(conv, sizeof(conv), "%.1f%%",
                 100.0 * (double)v[P_PAID_AFTER] / (double)v[P_REMINDED]);
    else
        snprintf(conv, sizeof(conv), "-");
    snprintf(yuan, sizeof(yuan), "¥%lld.%02lld", v[P_RECOVERED] / 100, v[P_RECOVERED] % 100);
    char *blocked = s_counts_text(&row->counts);
    kefuctl_table_add(t, (const char *const[]){row->shop ? row->shop : "TOTAL", row->shop ? day : "",
                                         n[0], n[1], n[2], n[3], n[4], conv, yuan, blocked});
    free(blocked);
}

static void s_pay_print_table(const s_row_t *rows, size_t n, const s_row_t *total)
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
static json_t *s_pay_json_row(const s_row_t *row)
{
    json_t *o = json_object();
    if (row->shop) {
        char day[16];
        json_object_set_new(o, "shop", json_string(row->shop));
        json_object_set_new(o, "day", json_string(s_fmt_day(row->day, day, sizeof(day))));
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
    json_object_set_new(o, "blocked", s_counts_json(&row->counts));
    return o;
}

static void s_pay_print_json(const s_row_t *rows, size_t n, const s_row_t *total)
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

static int s_payments(redisContext *c, const s_opts_t *o)
{
    char err[512];
    s_keys_t keys = {.prefix = "kefu:stats:pay:"};
    s_row_t *rows = NULL, total = {0};
    size_t n = 0;
    int rc = KEFUCTL_FAIL;
    if (s_read_rows(c, o, &s_pay_schema, &keys, &rows, &n, &total, err, sizeof(err)) != KF_OK) {
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
    s_rows_free(rows, n);
    s_counts_free(&total.counts);
    s_keys_free(&keys);
    return rc;
}

/* ------------------------------------------------------------------ logistics */

enum { L_SHIPPED, L_ANOMALIES, L_RESOLVED, L_OVERDUE, L_NFIELDS };

/* The counters of kefu:stats:lg:{shop}:<yyyymmdd>, with anomaly:<kind>. */
static const char *const s_lg_fields[L_NFIELDS] = {"shipped", "anomalies", "resolved",
                                                   "overdue_shipping"};
static const s_schema_t s_lg_schema = {s_lg_fields, L_NFIELDS, "anomaly:"};

#define S_ZRANGE_BATCH 1000
#define S_RESOLVE_MAX "9999" /* LRANGE stop: the list is capped at 10000 */
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
    s_keys_t days, open_keys, carrier_keys, resolve_keys;
    s_row_t *rows, total;
    size_t nrows;
    s_open_t *open;
    size_t nopen;
    s_carrier_t *carriers;
    size_t ncarriers;
    s_median_t *medians;
    size_t nmedians;
    long long now; /* kefu:clock, else the wall clock: what the ages are relative to */
} s_lg_t;

/* The last ':' of s[0..n), or NULL. */
static const char *s_last_colon(const char *s, size_t n)
{
    while (n > 0)
        if (s[--n] == ':')
            return s + n;
    return NULL;
}

/* One member <order_id>:<kind> with its score into the shop's counts (from index first). */
static bool s_open_add(s_lg_t *lg, size_t first, const char *shop, const redisReply *m,
                       const redisReply *score)
{
    const char *colon = m->type == REDIS_REPLY_STRING ? s_last_colon(m->str, m->len) : NULL;
    long long opened;
    if (!colon || colon == m->str || score->type != REDIS_REPLY_STRING)
        return false;
    const char *kind = colon + 1;
    size_t klen = m->len - (size_t)(kind - m->str);
    char *end;
    double d = strtod(score->str, &end);
    if (klen == 0 || !s_clean(kind, klen) || *end || !(d >= 0 && d <= 1e15))
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
static int s_open_read(redisContext *c, s_lg_t *lg, const s_key_t *key, char *err,
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
static void s_carrier_fill(void *arg, size_t i, const s_key_t *key, const redisReply *fields)
{
    s_lg_t *lg = arg;
    size_t first = lg->ncarriers;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        const char *colon = f->type == REDIS_REPLY_STRING ? s_last_colon(f->str, f->len) : NULL;
        size_t clen = colon ? (size_t)(colon - f->str) : 0;
        if (!colon || f->len - clen != 10 ||
            (memcmp(colon, ":shipments", 10) != 0 && memcmp(colon, ":anomalies", 10) != 0))
            continue; /* not a field of this version */
        long long n;
        if (clen == 0 || !s_clean(f->str, clen)) {
            fprintf(stderr, "kefuctl: %s: a field without a usable carrier, ignored\n",
                    key->key);
            continue;
        }
        if (s_counter(key, f, v, &n) != KF_OK)
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
            ca->shipments = s_add(ca->shipments, n);
        else
            ca->anomalies = s_add(ca->anomalies, n);
    }
}

static int s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The median of the LIST kefu:lg:resolve:{shop} (ms, newest first, capped). */
static int s_resolve_read(redisContext *c, s_lg_t *lg, const s_key_t *key, char *err,
                          size_t errlen)
{
    redisReply *r = redisCommand(c, "LRANGE %s 0 " S_RESOLVE_MAX, key->key);
    if (!r) {
        snprintf(err, errlen, "LRANGE: %s", c->errstr[0] ? c->errstr : "connection lost");
        return KF_ERR;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "kefuctl: skipped %s: %s\n", key->key,
                r->type == REDIS_REPLY_ERROR ? r->str : "not a list");
        freeReplyObject(r);
        return KF_OK;
    }
    long long *v = kf_xmalloc((r->elements + 1) * sizeof(*v));
    size_t n = 0, bad = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && strlen(e->str) == e->len &&
            kf_parse_ll(e->str, 0, S_MAX_COUNTER, &v[n]) == KF_OK)
            n++;
        else
            bad++;
    }
    freeReplyObject(r);
    if (bad)
        fprintf(stderr, "kefuctl: %s: %zu value%s not a time in ms, ignored\n", key->key, bad,
                bad == 1 ? "" : "s");
    if (n > 0) {
        qsort(v, n, sizeof(*v), s_cmp_ll);
        double ms = n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
        lg->medians = kf_xrealloc(lg->medians, (lg->nmedians + 1) * sizeof(*lg->medians));
        lg->medians[lg->nmedians++] = (s_median_t){key->shop, ms / S_HOUR_MS, n};
    }
    free(v);
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
        kf_parse_ll(r->str, 0, S_MAX_COUNTER, now) == KF_OK) {
        /* the simulated clock */
    } else if (r->type != REDIS_REPLY_NIL) {
        char *p = r->type == REDIS_REPLY_STRING ? s_printable(r->str, r->len) : kf_xstrdup("?");
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
static int s_lg_read(redisContext *c, const s_opts_t *o, s_lg_t *lg, char *err, size_t errlen)
{
    if (s_read_rows(c, o, &s_lg_schema, &lg->days, &lg->rows, &lg->nrows, &lg->total, err,
                    errlen) != KF_OK ||
        s_lg_clock(c, &lg->now, err, errlen) != KF_OK ||
        s_scan(c, o, &lg->open_keys, err, errlen) != KF_OK ||
        s_scan(c, o, &lg->carrier_keys, err, errlen) != KF_OK ||
        s_scan(c, o, &lg->resolve_keys, err, errlen) != KF_OK)
        return KF_ERR;
    for (size_t i = 0; i < lg->open_keys.n; i++)
        if (s_open_read(c, lg, &lg->open_keys.v[i], err, errlen) != KF_OK)
            return KF_ERR;
    if (s_read_hashes(c, &lg->carrier_keys, s_carrier_fill, lg, err, errlen) != KF_OK)
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

static double s_round1(double x) /* to one decimal, halves away from zero (table = JSON) */
{
    return round(x * 10.0) / 10.0;
}

static void s_lg_table_row(kefuctl_table_t *t, const s_row_t *row)
{
    char day[16], n[L_NFIELDS][24];
    s_fmt_day(row->day, day, sizeof(day));
    for (int i = 0; i < L_NFIELDS; i++)
        snprintf(n[i], sizeof(n[i]), "%lld", row->v[i]);
    char *kinds = s_counts_text(&row->counts);
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
        snprintf(b, sizeof(b), "%.1f", s_round1(s_age_hours(lg, &lg->open[i])));
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
               s_round1(lg->medians[i].hours), lg->medians[i].n);
    puts(lg->nmedians ? "" : " -");
}

static json_t *s_lg_json_days(const s_lg_t *lg)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < lg->nrows; i++) {
        const s_row_t *row = &lg->rows[i];
        json_t *o = json_object();
        char day[16];
        json_object_set_new(o, "shop", json_string(row->shop));
        json_object_set_new(o, "day", json_string(s_fmt_day(row->day, day, sizeof(day))));
        for (size_t k = 0; k < L_NFIELDS; k++)
            json_object_set_new(o, s_lg_fields[k], json_integer(row->v[k]));
        json_object_set_new(o, "anomalies_by_kind", s_counts_json(&row->counts));
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
                                              json_real(s_round1(s_age_hours(lg, &lg->open[i])))));
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
                            json_real(s_round1(lg->medians[i].hours)));
    json_object_set_new(root, "median_resolve_hours", medians);
    json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    json_decref(root);
}

static void s_lg_free(s_lg_t *lg)
{
    s_rows_free(lg->rows, lg->nrows);
    s_counts_free(&lg->total.counts);
    for (size_t i = 0; i < lg->nopen; i++)
        free(lg->open[i].kind);
    free(lg->open);
    for (size_t i = 0; i < lg->ncarriers; i++)
        free(lg->carriers[i].carrier);
    free(lg->carriers);
    free(lg->medians);
    s_keys_free(&lg->days);
    s_keys_free(&lg->open_keys);
    s_keys_free(&lg->carrier_keys);
    s_keys_free(&lg->resolve_keys);
}

static int s_logistics(redisContext *c, const s_opts_t *o)
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

/* ------------------------------------------------------------------ kinds, options, verb */

typedef int(s_kind_fn)(redisContext *c, const s_opts_t *o);

/* DESIGN §10: payments, logistics, reviews, care. NULL: the worker does not exist yet. */
static const struct {
    const char *name;
    s_kind_fn *fn;
} s_kinds[] = {
    {"payments", s_payments},
    {"logistics", s_logistics},
    {"reviews", NULL},
    {"care", NULL},
};

static int s_kind_find(const char *name)
{
    for (size_t i = 0; i < KF_ARRAY_LEN(s_kinds); i++)
        if (strcmp(s_kinds[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int s_parse_args(s_opts_t *o, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"shop", required_argument, NULL, 's'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},   {"json", no_argument, NULL, 'j'},
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
    s_opts_t o = {.from = 0, .to = S_DAY_MAX};
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

const kefuctl_verb_t kefuctl_verb_report = {
    .name = "report",
    .fn = s_report,
    .synopsis = "report KIND [--shop S] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json]",
    .help = "    The results the workers keep per shop and shop-local day ([redis] url).\n"
            "    KIND: payments (kefu-pay-reminder): per day orders, reminders, conversion,\n"
            "    recovered, blocked; logistics (kefu-logistics): per day shipped, anomalies by\n"
            "    kind, resolved, overdue shipping; per shop the open anomalies by kind with the\n"
            "    age of the oldest (on kefu:clock, else the wall clock), anomaly rates per\n"
            "    carrier and the median time to resolve; reviews, care: not built yet.\n"
            "    --shop S           only shop S\n"
            "    --from, --to DAY   only days in [from, to], shop-local, e.g. 2026-11-11 (the\n"
            "                       logistics per-shop state is the current one: not filtered)\n"
            "    --json             one JSON document: payments {\"kind\", \"rows\": [...],\n"
            "                       \"totals\"}; logistics {\"kind\", \"days\", \"open\",\n"
            "                       \"carriers\", \"median_resolve_hours\"}",
};
