/* kf_cfg: see kf_cfg.h. */
#include "kf_cfg.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "kf_util.h"

/* ---- the shared table ------------------------------------------------------------------ */

static const char *const s_clock_modes[] = {"real", "simulated", NULL};
/* Indexed by syslog priority, so the stored index is the LOG_* value; min/max admit
 * only LOG_ERR..LOG_DEBUG. */
static const char *const s_log_levels[] = {"emerg",   "alert",  "crit", "err", "warning",
                                           "notice",  "info",   "debug", NULL};

#define S_OPT(sec, key, typ, lo, hi, dflt, field, en, text)                                    \
    {.section = (sec), .name = (key), .type = (typ), .min = (lo), .max = (hi), .def = (dflt),  \
     .offset = offsetof(kf_conf_t, field), .enums = (en), .help = (text)}

const kf_cfg_opt_t kf_conf_opts[] = {
    S_OPT("redis", "url", KF_CFG_STR, 0, 1024, "redis://127.0.0.1:6379/0", redis_url, NULL,
          "Redis server: redis://[:password@]host:port/db or unix:///path/redis.sock"),
    S_OPT("redis", "password_file", KF_CFG_STR, 0, 4096, "", redis_password_file, NULL,
          "File whose first line is the Redis password (empty: none, or in the url)"),
    S_OPT("redis", "connect_timeout_ms", KF_CFG_INT, 100, 60000, "2000", redis_timeout_ms, NULL,
          "Timeout for connecting to Redis, in milliseconds"),
    S_OPT("bus", "publish", KF_CFG_STR, 0, 1024, "tcp://127.0.0.1:5570", bus_publish, NULL,
          "Broker XSUB endpoint: fire-and-forget publishers connect here"),
    S_OPT("bus", "confirm", KF_CFG_STR, 0, 1024, "tcp://127.0.0.1:5571", bus_confirm, NULL,
          "Broker ROUTER endpoint: confirmed publish"),
    S_OPT("bus", "subscribe", KF_CFG_STR, 0, 1024, "tcp://127.0.0.1:5572", bus_subscribe, NULL,
          "Broker XPUB endpoint: workers and kefuctl tail connect here"),
    S_OPT("bus", "hwm", KF_CFG_INT, 1, 10000000, "100000", bus_hwm, NULL,
          "ZeroMQ high-water mark: messages queued per socket"),
    S_OPT("http", "listen", KF_CFG_STR, 0, 256, "127.0.0.1:8570", http_listen, NULL,
          "Broker HTTP address (stats, metrics, dashboard, ingest): host:port"),
    S_OPT("clock", "mode", KF_CFG_ENUM, 0, 0, "real", clock_mode, s_clock_modes,
          "real: wall-clock time; simulated: time moves only with sys.clock events"),
    S_OPT("log", "level", KF_CFG_ENUM, LOG_ERR, LOG_DEBUG, "info", log_level, s_log_levels,
          "Lowest priority written to stderr"),
    S_OPT("log", "heartbeat_ms", KF_CFG_INT, 100, 600000, "5000", heartbeat_ms, NULL,
          "Interval of the sys.heartbeat every daemon publishes, in milliseconds"),
};
const size_t kf_conf_nopts = KF_ARRAY_LEN(kf_conf_opts);

const char *const kf_cfg_known_sections[] = {
    "redis",     "bus",      "http",          "clock",    "log",      "broker", "pay-reminder",
    "logistics", "review-repair", "crm-care", "dispatch", "kefuctl",  NULL};

/* ---- values ---------------------------------------------------------------------------- */

static void *s_field(const kf_cfg_table_t *t, const kf_cfg_opt_t *o)
{
    return (char *)t->dst + o->offset;
}

static bool s_enum_allowed(const kf_cfg_opt_t *o, long long i)
{
    return o->max <= 0 || (i >= o->min && i <= o->max);
}

static int s_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < KF_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return KF_OK;
        }
    }
    return KF_ERR;
}

/* Writes "a, b, c" (the admissible names of an enum) into buf. */
static void s_enum_list(const kf_cfg_opt_t *o, const char *sep, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (long long i = 0; o->enums && o->enums[i] && n < len; i++) {
        if (!s_enum_allowed(o, i))
            continue;
        int w = snprintf(buf + n, len - n, "%s%s", n ? sep : "", o->enums[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static int s_set_str(const kf_cfg_table_t *t, const kf_cfg_opt_t *o, const char *v, char *why,
                     size_t whylen)
{
    size_t n = strlen(v);
    if (o->max > 0 && n > (size_t)o->max) {
        snprintf(why, whylen, "value too long (%zu bytes, at most %lld)", n, o->max);
        return KF_ERR;
    }
    if (!kf_utf8_valid(v, n)) {
        snprintf(why, whylen, "value is not valid UTF-8");
        return KF_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            snprintf(why, whylen, "value contains a control character");
            return KF_ERR;
        }
    }
    char **p = s_field(t, o);
    free(*p);
    *p = kf_xstrdup(v);
    return KF_OK;
}

/* Parses v for option o into t->dst; on error writes the reason into why. */
static int s_apply(const kf_cfg_table_t *t, const kf_cfg_opt_t *o, const char *v, char *why,
                   size_t whylen)
{
    char list[256];
    switch (o->type) {
    case KF_CFG_INT: {
        long long x;
        if (kf_parse_ll(v, o->min, o->max, &x) == KF_OK) {
            *(long long *)s_field(t, o) = x;
            return KF_OK;
        }
        snprintf(why, whylen, "expected an integer in %lld..%lld, got '%s'", o->min, o->max, v);
        return KF_ERR;
    }
    case KF_CFG_BOOL:
        if (s_parse_bool(v, s_field(t, o)) == KF_OK)
            return KF_OK;
        snprintf(why, whylen, "expected yes/no/true/false/on/off/1/0, got '%s'", v);
        return KF_ERR;
    case KF_CFG_STR:
        return s_set_str(t, o, v, why, whylen);
    case KF_CFG_ENUM:
        for (int i = 0; o->enums && o->enums[i]; i++) {
            if (s_enum_allowed(o, i) && strcasecmp(v, o->enums[i]) == 0) {
                *(int *)s_field(t, o) = i;
                return KF_OK;
            }
        }
        s_enum_list(o, ", ", list, sizeof(list));
        snprintf(why, whylen, "expected one of %s, got '%s'", list, v);
        return KF_ERR;
    }
    snprintf(why, whylen, "bad option type %d", (int)o->type);
    return KF_ERR;
}

/* ---- lookup ---------------------------------------------------------------------------- */

static bool s_owns_section(const kf_cfg_table_t *tables, size_t n, const char *section)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < tables[i].nopts; k++)
            if (strcmp(tables[i].opts[k].section, section) == 0)
                return true;
    return false;
}

static bool s_known_section(const char *section)
{
    for (size_t i = 0; kf_cfg_known_sections[i]; i++)
        if (strcmp(kf_cfg_known_sections[i], section) == 0)
            return true;
    return false;
}

static const kf_cfg_opt_t *s_find(const kf_cfg_table_t *tables, size_t n, const char *section,
                                  const char *name, const kf_cfg_table_t **table)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < tables[i].nopts; k++) {
            const kf_cfg_opt_t *o = &tables[i].opts[k];
            if (strcmp(o->section, section) == 0 && strcmp(o->name, name) == 0) {
                *table = &tables[i];
                return o;
            }
        }
    }
    return NULL;
}


int kf_cfg_defaults(const kf_cfg_table_t *tables, size_t ntables, char *err, size_t errlen)
{
    char why[512];
    for (size_t i = 0; i < ntables; i++) {
        for (size_t k = 0; k < tables[i].nopts; k++) {
            const kf_cfg_opt_t *o = &tables[i].opts[k];
            if (s_apply(&tables[i], o, o->def ? o->def : "", why, sizeof(why)) != KF_OK) {
                kf_err(err, errlen, "built-in default of [%s] %s: %s", o->section, o->name, why);
                return KF_ERR;
            }
        }
    }
    return KF_OK;
}

/* ---- the file -------------------------------------------------------------------------- */

typedef struct {
    const kf_cfg_table_t *tables;
    size_t ntables;
    const char *path;
    FILE *fp;
    int line;          /* lines read so far: the line inih is working on */
    int err_line;      /* line of the first error, 0 when none */
    char *err;
    size_t errlen;
} s_parse_t;

static void s_parse_fail(s_parse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_parse_fail(s_parse_t *p, const char *fmt, ...)
{
    if (p->err_line)
        return; /* keep the first error */
    p->err_line = p->line;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kf_err(p->err, p->errlen, "%s:%d: %s", p->path, p->line, msg);
}

/* A section header line: unknown sections are fatal even when they hold no key. */
static void s_check_header(s_parse_t *p, const char *line)
{
    const char *end = strchr(line, ']');
    if (line[0] != '[' || !end)
        return;
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)(end - line - 1), line + 1);
    if (!s_owns_section(p->tables, p->ntables, name) && !s_known_section(name))
        s_parse_fail(p, "unknown section [%s]", name);
}

/* fgets-style reader for inih that counts lines, rejects over-long lines and strips
 * leading blanks (so an indented line is never taken as a multi-line continuation). */
static char *s_reader(char *str, int num, void *stream)
{
    s_parse_t *p = stream;
    if (p->err_line || !fgets(str, num, p->fp))
        return NULL;
    p->line++;
    size_t n = strlen(str);
    if (n > 0 && str[n - 1] != '\n' && !feof(p->fp)) {
        s_parse_fail(p, "line too long (at most %d bytes)", num - 2);
        return NULL;
    }
    size_t skip = strspn(str, " \t");
    memmove(str, str + skip, n - skip + 1);
    s_check_header(p, str);
    return p->err_line ? NULL : str;
}

static int s_handler(void *user, const char *section, const char *name, const char *value)
{
    s_parse_t *p = user;
    char why[512];
    if (!*section) {
        s_parse_fail(p, "key '%s' outside any [section]", name);
        return 0;
    }
    if (!s_owns_section(p->tables, p->ntables, section))
        return 1; /* another daemon's section: s_check_header let it through */
    const kf_cfg_table_t *t = NULL;
    const kf_cfg_opt_t *o = s_find(p->tables, p->ntables, section, name, &t);
    if (!o) {
        s_parse_fail(p, "unknown key '%s' in [%s]", name, section);
        return 0;
    }
    if (s_apply(t, o, value, why, sizeof(why)) != KF_OK) {
        s_parse_fail(p, "[%s] %s: %s", section, name, why);
        return 0;
    }
    return 1;
}

static int s_load_file(const kf_cfg_table_t *tables, size_t ntables, const char *path,
                       bool must_exist, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT && !must_exist)
            return KF_OK;
        kf_err(err, errlen, "%s: %s", path, strerror(errno));
        return KF_ERR;
    }
    s_parse_t p = {.tables = tables, .ntables = ntables, .path = path, .fp = fp,
                   .err = err, .errlen = errlen};
    int rc = ini_parse_stream(s_reader, &p, s_handler, &p);
    bool io_error = ferror(fp);
    fclose(fp);
    if (rc > 0 && (p.err_line == 0 || rc < p.err_line)) {
        kf_err(err, errlen, "%s:%d: syntax error (expected [section], key = value or a comment)",
              path, rc);
        return KF_ERR;
    }
    if (p.err_line)
        return KF_ERR;
    if (rc < 0 || io_error) {
        kf_err(err, errlen, "%s: read error", path);
        return KF_ERR;
    }
    return KF_OK;
}

/* ---- environment and overrides --------------------------------------------------------- */

/* KEFU_<SECTION>_<KEY>: upper case, '-' and '.' -> '_'. */
static void s_env_name(const kf_cfg_opt_t *o, char *buf, size_t len)
{
    snprintf(buf, len, "KEFU_%s_%s", o->section, o->name);
    for (char *c = buf; *c; c++)
        *c = (*c == '-' || *c == '.') ? '_' : (char)toupper((unsigned char)*c);
}

static int s_load_env(const kf_cfg_table_t *tables, size_t ntables, char *err, size_t errlen)
{
    char var[256], why[512];
    for (size_t i = 0; i < ntables; i++) {
        for (size_t k = 0; k < tables[i].nopts; k++) {
            const kf_cfg_opt_t *o = &tables[i].opts[k];
            s_env_name(o, var, sizeof(var));
            const char *v = getenv(var);
            if (v && s_apply(&tables[i], o, v, why, sizeof(why)) != KF_OK) {
                kf_err(err, errlen, "environment %s: [%s] %s: %s", var, o->section, o->name, why);
                return KF_ERR;
            }
        }
    }
    return KF_OK;
}

int kf_cfg_load(const kf_cfg_table_t *tables, size_t ntables, const char *path, bool must_exist,
                char *err, size_t errlen)
{
    if (kf_cfg_defaults(tables, ntables, err, errlen) != KF_OK)
        return KF_ERR;
    if (path && s_load_file(tables, ntables, path, must_exist, err, errlen) != KF_OK)
        return KF_ERR;
    return s_load_env(tables, ntables, err, errlen);
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int kf_cfg_set(const kf_cfg_table_t *tables, size_t ntables, const char *assignment, char *err,
               size_t errlen)
{
    char *copy = kf_xstrdup(assignment);
    char *eq = strchr(copy, '=');
    char *dot = eq ? memchr(copy, '.', (size_t)(eq - copy)) : NULL;
    char why[512];
    int rc = KF_ERR;
    if (!eq || !dot) {
        kf_err(err, errlen, "override '%s': expected section.key=value", assignment);
        goto done;
    }
    *eq = *dot = '\0';
    char *section = s_trim(copy), *name = s_trim(dot + 1), *value = s_trim(eq + 1);
    const kf_cfg_table_t *t = NULL;
    const kf_cfg_opt_t *o = s_find(tables, ntables, section, name, &t);
    if (!o) {
        kf_err(err, errlen, "override '%s': unknown key '%s' in [%s]", assignment, name, section);
        goto done;
    }
    if (s_apply(t, o, value, why, sizeof(why)) != KF_OK) {
        kf_err(err, errlen, "override '%s': [%s] %s: %s", assignment, section, name, why);
        goto done;
    }
    rc = KF_OK;
done:
    free(copy);
    return rc;
}

void kf_cfg_free(const kf_cfg_table_t *tables, size_t ntables)
{
    for (size_t i = 0; i < ntables; i++) {
        for (size_t k = 0; k < tables[i].nopts; k++) {
            const kf_cfg_opt_t *o = &tables[i].opts[k];
            if (o->type == KF_CFG_STR) {
                char **p = s_field(&tables[i], o);
                free(*p);
                *p = NULL;
            }
        }
    }
}

/* ---- example file ---------------------------------------------------------------------- */

static void s_print_opt(FILE *out, const kf_cfg_opt_t *o)
{
    char list[256];
    fprintf(out, "; %s", o->help ? o->help : "");
    switch (o->type) {
    case KF_CFG_INT:
        fprintf(out, " (%lld..%lld)", o->min, o->max);
        break;
    case KF_CFG_BOOL:
        fprintf(out, " (yes or no)");
        break;
    case KF_CFG_ENUM:
        s_enum_list(o, " | ", list, sizeof(list));
        fprintf(out, " (%s)", list);
        break;
    case KF_CFG_STR:
        break;
    }
    const char *def = o->def ? o->def : "";
    fprintf(out, "\n%s =%s%s\n", o->name, *def ? " " : "", def);
}

/* true when section already appeared before opt (ti, ki) in the tables */
static bool s_section_seen(const kf_cfg_table_t *tables, size_t ti, size_t ki)
{
    const char *section = tables[ti].opts[ki].section;
    for (size_t i = 0; i <= ti; i++)
        for (size_t k = 0; k < (i == ti ? ki : tables[i].nopts); k++)
            if (strcmp(tables[i].opts[k].section, section) == 0)
                return true;
    return false;
}

void kf_cfg_print_example(const kf_cfg_table_t *tables, size_t ntables, void *FILE_stream)
{
    FILE *out = FILE_stream;
    bool first = true;
    for (size_t i = 0; i < ntables; i++) {
        for (size_t k = 0; k < tables[i].nopts; k++) {
            if (s_section_seen(tables, i, k))
                continue;
            const char *section = tables[i].opts[k].section;
            fprintf(out, "%s[%s]\n", first ? "" : "\n", section);
            first = false;
            for (size_t j = i; j < ntables; j++)
                for (size_t m = (j == i ? k : 0); m < tables[j].nopts; m++)
                    if (strcmp(tables[j].opts[m].section, section) == 0)
                        s_print_opt(out, &tables[j].opts[m]);
        }
    }
}

/* ---- secrets --------------------------------------------------------------------------- */

char *kf_cfg_read_secret(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        kf_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, fp);
    bool failed = n < 0 && ferror(fp);
    fclose(fp);
    if (failed) {
        kf_err(err, errlen, "%s: read error", path);
        free(line);
        return NULL;
    }
    size_t len = n > 0 ? (size_t)n : 0;
    while (len > 0 && isspace((unsigned char)line[len - 1]))
        len--;
    if (len == 0) {
        kf_err(err, errlen, "%s: the first line is empty", path);
        free(line);
        return NULL;
    }
    line[len] = '\0';
    return line;
}
