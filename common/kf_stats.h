/* kf_stats: building the Prometheus text exposition format (counters typed as counters),
 * shared by every daemon that serves or reports metrics. Label values are escaped: they may
 * come from the network (a heartbeat's daemon name). */
#ifndef KF_STATS_H
#define KF_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t len, cap;
} kf_text_t;

/* Appends printf-style text (the buffer grows as needed). */
void kf_text_printf(kf_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the malloc'd, NUL-terminated text and empties t. */
char *kf_text_take(kf_text_t *t);

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge). */
void kf_stats_family(kf_text_t *t, const char *name, const char *type, const char *help);
/* One sample: name{k1="v1",k2="v2"} value — labels as NULL-terminated key, value pairs. */
void kf_stats_sample(kf_text_t *t, const char *name, const char *const *labels, double value);
void kf_stats_sample_u64(kf_text_t *t, const char *name, const char *const *labels, uint64_t v);
/* Escapes a label value (\\, \", \n) into buf; returns buf. */
const char *kf_stats_escape(const char *value, char *buf, size_t len);

#endif
