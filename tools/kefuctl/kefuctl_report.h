/* kefuctl report: what kefuctl_report.c and the kinds share (private to the report verb).
 * Each kind reads one worker's keys and lives in that worker's folder, linked into kefuctl:
 * workers/<worker>/<worker>_kefuctl.c. */
#ifndef KEFUCTL_REPORT_H
#define KEFUCTL_REPORT_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define REPORT_MAX_COUNTER 1000000000000000LL /* 10^15: above any real count or fen sum */

typedef struct {
    const char *kind;
    const char *shop; /* --shop, or NULL for every shop */
    int from, to;     /* yyyymmdd, inclusive */
    bool json;
    bool all_days;    /* --all-days: also the days without activity */
} kefuctl_report_opts_t;

/* One shop-day hash found by SCAN. */
typedef struct {
    char *key;
    char *shop;
    int day; /* yyyymmdd */
} kefuctl_report_key_t;

typedef struct {
    const char *prefix; /* "kefu:stats:pay:" */
    bool per_shop;      /* keys <prefix>{<shop>}, without a day (day 0) */
    kefuctl_report_key_t *v;
    size_t n, cap;
    size_t malformed;
    char *example; /* the first malformed key, made printable */
} kefuctl_report_keys_t;

/* Called once per key with its HGETALL reply (an array of field, value strings). */
typedef void(kefuctl_report_hash_fn)(void *arg, size_t i, const kefuctl_report_key_t *key,
                                     const redisReply *fields);

typedef struct {
    char *name;
    long long n;
} kefuctl_report_count_t;

typedef struct {
    kefuctl_report_count_t *v;
    size_t n;
} kefuctl_report_counts_t;

#define REPORT_MAX_FIELDS 16

/* The counters of a kind's shop-day hashes: named fields, and fields <count_prefix><name>
 * counted by name. Fields this version does not know (a newer worker's) are ignored. */
typedef struct {
    const char *const *fields; /* in the order --json prints them */
    size_t n;
    const char *count_prefix;  /* "blocked:" */
    uint32_t activity;         /* bits of the fields that make a day worth a row (with any
                                * counted field); 0: every day with data */
} kefuctl_report_schema_t;

typedef struct {
    const char *shop; /* borrowed from the key; NULL for the totals */
    int day;
    long long v[REPORT_MAX_FIELDS];
    kefuctl_report_counts_t counts;
    bool seen; /* the hash had fields */
} kefuctl_report_row_t;

/* kefuctl_report.c: days, keys, hashes, counters and rows */
const char *kefuctl_report_fmt_day(int day, char *buf, size_t len);
char *kefuctl_report_printable(const char *s, size_t n);
bool kefuctl_report_clean(const char *s, size_t n);
void kefuctl_report_keys_free(kefuctl_report_keys_t *k);
int kefuctl_report_scan(redisContext *c, const kefuctl_report_opts_t *o, kefuctl_report_keys_t *k,
                        char *err, size_t errlen);
int kefuctl_report_read_hashes(redisContext *c, const kefuctl_report_keys_t *k,
                               kefuctl_report_hash_fn *fn, void *arg, char *err, size_t errlen);
int kefuctl_report_counter(const kefuctl_report_key_t *key, const redisReply *f,
                           const redisReply *v, long long *out);
long long kefuctl_report_add(long long a, long long b);
void kefuctl_report_counts_add(kefuctl_report_counts_t *c, const char *name, size_t len,
                               long long n);
void kefuctl_report_counts_sort(kefuctl_report_counts_t *c);
void kefuctl_report_counts_free(kefuctl_report_counts_t *c);
char *kefuctl_report_counts_text(const kefuctl_report_counts_t *c);
json_t *kefuctl_report_counts_json(const kefuctl_report_counts_t *c);
void kefuctl_report_rows_free(kefuctl_report_row_t *rows, size_t n);
int kefuctl_report_read_rows(redisContext *c, const kefuctl_report_opts_t *o,
                             const kefuctl_report_schema_t *sc, kefuctl_report_keys_t *keys,
                             kefuctl_report_row_t **rows, size_t *n, kefuctl_report_row_t *total,
                             char *err, size_t errlen);

/* The last ':' of s[0..n), or NULL. */
const char *kefuctl_report_last_colon(const char *s, size_t n);
/* To one decimal, halves away from zero (the table and the JSON agree). */
double kefuctl_report_round1(double x);
/* The median of a capped LIST of ms values (key); *n = how many values counted (0: no median,
 * e.g. a missing key). Bad values and a key that is not a list are noted on stderr and skipped.
 * KF_ERR (err) only when Redis is gone. */
int kefuctl_report_list_median(redisContext *c, const char *key, double *median_ms, size_t *n,
                               char *err, size_t errlen);

/* workers/pay-reminder/pay_reminder_kefuctl.c: the payments kind */
int kefuctl_report_payments(redisContext *c, const kefuctl_report_opts_t *o);

/* workers/logistics/logistics_kefuctl.c: the logistics kind */
int kefuctl_report_logistics(redisContext *c, const kefuctl_report_opts_t *o);

/* workers/review-repair/review_repair_kefuctl.c: the reviews kind */
int kefuctl_report_reviews(redisContext *c, const kefuctl_report_opts_t *o);

/* workers/crm-care/crm_care_kefuctl.c: the care kind (its --json document is described there) */
int kefuctl_report_care(redisContext *c, const kefuctl_report_opts_t *o);

#endif
