/* kf_stats: see kf_stats.h. */
#include "kf_stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_util.h"

void kf_text_printf(kf_text_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->buf = kf_xrealloc(t->buf, t->cap);
    }
}

char *kf_text_take(kf_text_t *t)
{
    char *s = t->buf ? t->buf : kf_xstrdup("");
    t->buf = NULL;
    t->len = t->cap = 0;
    return s;
}

void kf_stats_family(kf_text_t *t, const char *name, const char *type, const char *help)
{
    kf_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

const char *kf_stats_escape(const char *value, char *buf, size_t len)
{
    size_t o = 0;
    for (const char *p = value; *p && o + 3 < len; p++) {
        if (*p == '\\' || *p == '"') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void s_labels(kf_text_t *t, const char *name, const char *const *labels)
{
    kf_text_printf(t, "%s", name);
    if (!labels || !labels[0])
        return;
    char esc[256];
    for (size_t i = 0; labels[i] && labels[i + 1]; i += 2)
        kf_text_printf(t, "%s%s=\"%s\"", i ? "," : "{", labels[i],
                       kf_stats_escape(labels[i + 1], esc, sizeof(esc)));
    kf_text_printf(t, "}");
}

void kf_stats_sample(kf_text_t *t, const char *name, const char *const *labels, double value)
{
    s_labels(t, name, labels);
    kf_text_printf(t, " %.17g\n", value);
}

void kf_stats_sample_u64(kf_text_t *t, const char *name, const char *const *labels, uint64_t v)
{
    s_labels(t, name, labels);
    kf_text_printf(t, " %llu\n", (unsigned long long)v);
}
