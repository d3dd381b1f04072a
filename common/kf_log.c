/* kf_log: see kf_log.h. */
#include "kf_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int kf_log_level = LOG_INFO;
static const char *s_ident = "kefu";

void kf_log_init(const char *ident, int level)
{
    if (ident)
        s_ident = ident;
    if (level >= LOG_EMERG && level <= LOG_DEBUG)
        kf_log_level = level;
}

int kf_log_level_parse(const char *name)
{
    static const struct { const char *name; int level; } s_levels[] = {
        {"err", LOG_ERR}, {"error", LOG_ERR}, {"warning", LOG_WARNING}, {"warn", LOG_WARNING},
        {"notice", LOG_NOTICE}, {"info", LOG_INFO}, {"debug", LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(s_levels) / sizeof(s_levels[0]); i++)
        if (strcasecmp(name, s_levels[i].name) == 0)
            return s_levels[i].level;
    return -1;
}

void kf_log_write(int prio, int with_errno, const char *fmt, ...)
{
    int saved = errno;
    char line[2048];
    int n = snprintf(line, sizeof(line), "<%d>%s: ", prio, s_ident);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(line))
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (with_errno && (size_t)n < sizeof(line) - 1)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(saved));
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    /* one event, one line: fold embedded newlines */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n] = '\n';
    fwrite(line, 1, (size_t)n + 1, stderr);
    errno = saved;
}
