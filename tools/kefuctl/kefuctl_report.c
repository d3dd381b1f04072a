/* kefuctl report: the per-shop, per-day results the workers keep in Redis (DOMAIN §1
 * "Results", workers/pay-reminder/README.md "Results"), as a table or JSON.
 *
 * A kind reads the hashes kefu:stats:<name>:{<shop_id>}:<yyyymmdd>, found with SCAN (never
 * KEYS) and read with pipelined HGETALL. Adding a kind is one function and one line in
 * s_kinds. The hashes come from outside this process: keys of another form, values that
 * are not counters and non-hash keys are skipped with a note on stderr, never trusted. */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
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

/* kefu:stats:<x>:{<shop>}:<yyyymmdd>: the shop (printable UTF-8, no braces) and a real day. */
static bool s_parse_key(const char *prefix, const char *key, size_t len, char **shop, int *day)
{
    size_t plen = strlen(prefix);
    if (len < plen + 1 + 1 + 2 + 8 || memcmp(key, prefix, plen) != 0 || key[plen] != '{' ||
        memcmp(key + len - 10, "}:", 2) != 0 || s_parse_compact_day(key + len - 8, day) != KF_OK)
        return false;
    const char *s = key + plen + 1;
    size_t n = len - 10 - plen - 1;
    if (!s_clean(s, n))
        return false;
    *shop = kf_xstrndup(s, n);
    return true;
}

static void s_keys_add(s_keys_t *k, const s_opts_t *o, const char *key, size_t len)
{
    char *shop = NULL;
    int day = 0;
    if (!s_parse_key(k->prefix, key, len, &shop, &day)) {
        if (k->malformed++ == 0)
            k->example = s_printable(key, len);
        return;
    }
    if ((o->shop && strcmp(shop, o->shop) != 0) || day < o->from || day > o->to) {
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
static char *s_scan_pattern(const char *prefix, const char *shop)
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
    char *pattern = kf_xasprintf("%s{%s}:*", prefix, esc);
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
    char *pattern = s_scan_pattern(k->prefix, o->shop);
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
        fprintf(stderr, "kefuctl: skipped %zu key%s not of the form %s{SHOP}:YYYYMMDD "
                        "(first: %s)\n",
                k->malformed, k->malformed == 1 ? "" : "s", k->prefix, k->example);
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

#define S_BLOCKED "blocked:"

typedef struct {
    const char *shop; /* borrowed from the key; NULL for the totals */
    int day;
    long long v[P_NFIELDS];
    s_counts_t blocked;
    bool seen; /* the hash had fields */
} s_pay_row_t;

/* Which counter field f is: 0..P_NFIELDS-1, P_NFIELDS for blocked:<reason>, -1 for a field
 * this version does not know (a newer worker's: ignored). */
static int s_pay_field(const redisReply *f)
{
    size_t blen = strlen(S_BLOCKED);
    if (f->type != REDIS_REPLY_STRING)
        return -1;
    if (f->len >= blen && memcmp(f->str, S_BLOCKED, blen) == 0)
        return P_NFIELDS;
    for (int k = 0; k < P_NFIELDS; k++)
        if (strlen(s_pay_fields[k]) == f->len && memcmp(s_pay_fields[k], f->str, f->len) == 0)
            return k;
    return -1;
}

static void s_pay_fill(void *arg, size_t i, const s_key_t *key, const redisReply *fields)
{
    s_pay_row_t *row = &((s_pay_row_t *)arg)[i];
    row->shop = key->shop;
    row->day = key->day;
    row->seen = fields->elements > 0;
    for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *f = fields->element[j], *v = fields->element[j + 1];
        int k = s_pay_field(f);
        long long n;
        if (k < 0 || s_counter(key, f, v, &n) != KF_OK)
            continue;
        if (k < P_NFIELDS) {
            row->v[k] = n;
            continue;
        }
        const char *reason = f->str + strlen(S_BLOCKED);
        size_t rlen = f->len - strlen(S_BLOCKED);
        if (rlen > 0 && s_clean(reason, rlen))
            s_counts_add(&row->blocked, reason, rlen, n);
        else
            fprintf(stderr, "kefuctl: %s: a blocked: field without a usable reason, ignored\n",
                    key->key);
    }
    s_counts_sort(&row->blocked);
}

static void s_pay_sum(s_pay_row_t *total, const s_pay_row_t *row)
{
    for (size_t k = 0; k < P_NFIELDS; k++)
        total->v[k] = s_add(total->v[k], row->v[k]);
    for (size_t i = 0; i < row->blocked.n; i++)
        s_counts_add(&total->blocked, row->blocked.v[i].name, strlen(row->blocked.v[i].name),
                     row->blocked.v[i].n);
}

static void s_pay_table_row(kefuctl_table_t *t, const s_pay_row_t *row)
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
    char *blocked = s_counts_text(&row->blocked);
    kefuctl_table_add(t, (const char *const[]){row->shop ? row->shop : "TOTAL", row->shop ? day : "",
                                         n[0], n[1], n[2], n[3], n[4], conv, yuan, blocked});
    free(blocked);
}

static void s_pay_print_table(const s_pay_row_t *rows, size_t n, const s_pay_row_t *total)
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
static json_t *s_pay_json_row(const s_pay_row_t *row)
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
    json_object_set_new(o, "blocked", s_counts_json(&row->blocked));
    return o;
}

static void s_pay_print_json(const s_pay_row_t *rows, size_t n, const s_pay_row_t *total)
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
    s_pay_row_t *rows = NULL, total = {0};
    int rc = KEFUCTL_FAIL;
    if (s_scan(c, o, &keys, err, sizeof(err)) != KF_OK)
        goto fail;
    rows = kf_xcalloc(keys.n + 1, sizeof(*rows));
    if (s_read_hashes(c, &keys, s_pay_fill, rows, err, sizeof(err)) != KF_OK)
        goto fail;
    size_t n = 0;
    for (size_t i = 0; i < keys.n; i++) { /* keep the rows with data, in key order */
        if (rows[i].seen) {
            s_pay_sum(&total, &rows[i]);
            rows[n++] = rows[i];
        } else {
            s_counts_free(&rows[i].blocked);
        }
    }
    s_counts_sort(&total.blocked);
    if (o->json)
        s_pay_print_json(rows, n, &total);
    else if (n == 0)
        puts("no payment data");
    else
        s_pay_print_table(rows, n, &total);
    for (size_t i = 0; i < n; i++)
        s_counts_free(&rows[i].blocked);
    rc = KEFUCTL_OK;
    goto done;
fail:
    fprintf(stderr, "kefuctl: report %s: redis: %s\n", o->kind, err);
    for (size_t i = 0; rows && i < keys.n; i++)
        s_counts_free(&rows[i].blocked);
done:
    s_counts_free(&total.blocked);
    free(rows);
    s_keys_free(&keys);
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
    {"logistics", NULL},
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
            "    KIND: payments (kefu-pay-reminder); logistics, reviews, care: not built yet.\n"
            "    --shop S           only shop S\n"
            "    --from, --to DAY   only days in [from, to], shop-local, e.g. 2026-11-11\n"
            "    --json             one JSON document: {\"kind\", \"rows\": [...], \"totals\"}",
};
