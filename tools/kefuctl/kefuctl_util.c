/* kefuctl_util: usage messages, option helpers, files, signals. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kefuctl.h"
#include "kf_util.h"

static volatile sig_atomic_t s_interrupted;

void kefuctl_print_lines(FILE *f, const char *prefix, const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        fprintf(f, "%s%.*s\n", prefix, (int)n, text);
        text += n + (nl ? 1 : 0);
    }
}

void kefuctl_print_usage(FILE *f, const kefuctl_verb_t *verb, bool full)
{
    kefuctl_print_lines(f, "usage: kefuctl ", verb->synopsis);
    if (full)
        kefuctl_print_lines(f, "", verb->help);
}

int kefuctl_usage_error(const kefuctl_verb_t *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kefuctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (verb) {
        kefuctl_print_usage(stderr, verb, false);
        fprintf(stderr, "(kefuctl help %s for details)\n", verb->name);
    }
    return KEFUCTL_USAGE;
}

int kefuctl_getopt_error(const kefuctl_verb_t *verb, int c, char **argv)
{
    const char *arg = argv[optind - 1];
    if (c == ':') {
        if (optopt && strncmp(arg, "--", 2) != 0)
            return kefuctl_usage_error(verb, "option '-%c' needs a value", optopt);
        return kefuctl_usage_error(verb, "option '%s' needs a value", arg);
    }
    if (optopt && strncmp(arg, "--", 2) != 0)
        return kefuctl_usage_error(verb, "unknown option '-%c'", optopt);
    return kefuctl_usage_error(verb, "unknown option '%s'", arg);
}

void kefuctl_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises completely (argv changed) */
    opterr = 0;
}

int kefuctl_parse_seconds(const char *s, double min, double max, int64_t *ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return KF_ERR;
    *ms = (int64_t)llround(v * 1000.0);
    return KF_OK;
}

char *kefuctl_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = kf_xmalloc(cap);
    for (;;) {
        if (cap - n < 4096)
            buf = kf_xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR && !s_interrupted)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", is_stdin ? "stdin" : path,
                     strerror(errno));
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (!is_stdin)
        close(fd);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static void s_on_signal(int sig)
{
    (void)sig;
    s_interrupted = 1;
}

void kefuctl_signals_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: poll/read/sleep return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool kefuctl_interrupted(void)
{
    return s_interrupted != 0;
}

void kefuctl_sleep_ms(int64_t ms)
{
    if (ms <= 0 || s_interrupted)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* EINTR ends the sleep early: the caller checks the flag */
}
