/* kefuctl stat: the broker's GET /stats (DESIGN §7) as a table or JSON, once or --watch. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kf_util.h"

#define S_HTTP_TIMEOUT_MS 3000

typedef struct {
    bool json;
    bool watch;
    int64_t interval_ms;
    const char *listen;
    char url[300];
} s_stat_t;

/* ------------------------------------------------------------------ values, "-" when missing */

/* A scalar member as text (buf must hold 32 bytes), or "-" when missing. */
static const char *s_val(const json_t *obj, const char *key, char *buf)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        snprintf(buf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, 32, "%g", json_real_value(v));
    else if (json_is_string(v))
        snprintf(buf, 32, "%.31s", json_string_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, 32, "%s", json_is_true(v) ? "yes" : "no");
    else
        return "-";
    return buf;
}

/* A duration in ms as "850ms", "12.3s", "4m05s", "3h07m", "2d04h". */
static const char *s_dur(const json_t *v, double scale_ms, char *buf)
{
    if (!json_is_number(v))
        return "-";
    double ms = json_number_value(v) * scale_ms;
    long long s = (long long)(ms / 1000);
    if (ms < 1000)
        snprintf(buf, 32, "%.0fms", ms);
    else if (s < 60)
        snprintf(buf, 32, "%.1fs", ms / 1000);
    else if (s < 3600)
        snprintf(buf, 32, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, 32, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, 32, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    return buf;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------------ the sections */

static void s_print_header(const json_t *st, FILE *f)
{
    char a[32], b[32], c[32], d[32], e[32], g[32], h[32];
    const json_t *redis = json_object_get(st, "redis");
    const json_t *conn = json_object_get(redis, "connected");
    fprintf(f, "%s %s  pid %s  up %s  now %s\n", s_val(st, "daemon", a), s_val(st, "version", b),
            s_val(st, "pid", c), s_dur(json_object_get(st, "uptime_s"), 1000, d),
            s_val(st, "now", e));
    fprintf(f, "redis      %s  reconnects %s  inflight %s\n",
            !json_is_boolean(conn) ? "-" : json_is_true(conn) ? "connected" : "DISCONNECTED",
            s_val(redis, "reconnects", a), s_val(redis, "inflight", b));
    const json_t *j = json_object_get(st, "journal");
    fprintf(f, "journal    seq %s  length %s  maxlen %s\n", s_val(j, "seq", a),
            s_val(j, "length", b), s_val(j, "maxlen", c));
    fprintf(f, "clients    subscribers %s  publishers %s\n", s_val(st, "subscribers", a),
            s_val(st, "publishers", b));
    const json_t *t = json_object_get(st, "totals");
    fprintf(f, "totals     in %s  accepted %s  out %s  bytes_in %s  duplicates %s  rejected %s"
               "  dropped %s\n",
            s_val(t, "in", a), s_val(t, "accepted", b), s_val(t, "out", c),
            s_val(t, "bytes_in", d), s_val(t, "duplicates", e), s_val(t, "rejected", g),
            s_val(t, "dropped", h));
}

/* true when every counter of a topic is 0 (the broker lists every topic of the contract) */
static bool s_idle(const json_t *o)
{
    const char *key;
    json_t *v;
    if (!json_is_object(o))
        return false;
    json_object_foreach((json_t *)o, key, v) {
        if (!json_is_number(v) || json_number_value(v) != 0)
            return false;
    }
    return true;
}

/* The topics with traffic, sorted by name; *nidle gets the number left out. */
static const char **s_topic_names(const json_t *topics, size_t *n, size_t *nidle)
{
    const char **keys = kf_xcalloc(json_object_size(topics) + 1, sizeof(*keys));
    const char *key;
    json_t *v;
    *n = *nidle = 0;
    json_object_foreach((json_t *)topics, key, v) {
        if (s_idle(v))
            (*nidle)++;
        else
            keys[(*n)++] = key;
    }
    qsort(keys, *n, sizeof(*keys), s_cmp_str);
    return keys;
}

static void s_print_topics(const json_t *st, FILE *f)
{
    const json_t *topics = json_object_get(st, "topics");
    size_t n, nidle;
    const char **keys = s_topic_names(topics, &n, &nidle);
    fputc('\n', f);
    if (n == 0)
        fputs("topics: no traffic yet\n", f);
    kefuctl_table_t t = {.ncols = 7, .align = "lrrrrrr"};
    kefuctl_table_add(&t, (const char *const[]){"TOPIC", "IN", "ACCEPTED", "OUT", "DUP", "REJ", "BYTES"});
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_object_get(topics, keys[i]);
        char a[32], b[32], c[32], d[32], e[32], g[32];
        kefuctl_table_add(&t, (const char *const[]){keys[i], s_val(o, "in", a), s_val(o, "accepted", b),
                                              s_val(o, "out", c), s_val(o, "duplicates", d),
                                              s_val(o, "rejected", e), s_val(o, "bytes", g)});
    }
    if (n > 0)
        kefuctl_table_print(&t, f);
    if (n > 0 && nidle > 0)
        fprintf(f, "(%zu topic%s without traffic not shown)\n", nidle, nidle == 1 ? "" : "s");
    kefuctl_table_free(&t);
    free(keys);
}

static void s_print_rejects(const json_t *st, FILE *f)
{
    const json_t *rej = json_object_get(st, "rejects");
    const char *key;
    json_t *v;
    bool any = false;
    fputs("\nrejects:", f);
    json_object_foreach((json_t *)rej, key, v) {
        if (json_is_number(v) && json_number_value(v) != 0) {
            char buf[32];
            fprintf(f, "%s %s %s", any ? "," : "", key, s_val(rej, key, buf));
            any = true;
        }
    }
    fputs(any ? "\n" : json_is_object(rej) ? " none\n" : " -\n", f);
}

/* Fleet rows sort by daemon, then instance. */
static int s_cmp_fleet(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    const char *dx = json_string_value(json_object_get(x, "daemon"));
    const char *dy = json_string_value(json_object_get(y, "daemon"));
    int c = strcmp(dx ? dx : "", dy ? dy : "");
    if (c)
        return c;
    const char *ix = json_string_value(json_object_get(x, "instance"));
    const char *iy = json_string_value(json_object_get(y, "instance"));
    return strcmp(ix ? ix : "", iy ? iy : "");
}

static void s_fleet_row(kefuctl_table_t *t, const json_t *d)
{
    char a[32], b[32], c[32], e[32], g[32], h[32], i[32], j[32];
    const json_t *alive = json_object_get(d, "alive");
    const char *state = !json_is_boolean(alive) ? "-" : json_is_true(alive) ? "alive" : "DEAD";
    kefuctl_table_add(t, (const char *const[]){s_val(d, "daemon", a), s_val(d, "instance", b),
                                         s_val(d, "pid", c), state,
                                         s_dur(json_object_get(d, "age_ms"), 1, e),
                                         s_val(d, "processed", g), s_val(d, "errors", h),
                                         s_val(d, "lag", i), s_val(d, "timers_pending", j)});
}

static char *s_reasons(const json_t *by);
static const char *s_str(const json_t *obj, const char *key);

static void s_print_fleet(const json_t *st, FILE *f)
{
    const json_t *fleet = json_object_get(st, "fleet");
    size_t n = json_is_array(fleet) ? json_array_size(fleet) : 0;
    fputc('\n', f);
    if (n == 0) {
        fputs("fleet: no heartbeats yet\n", f);
        return;
    }
    const json_t **rows = kf_xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++)
        rows[i] = json_array_get(fleet, i);
    qsort(rows, n, sizeof(*rows), s_cmp_fleet);
    kefuctl_table_t t = {.ncols = 9, .align = "llrlrrrrr"};
    kefuctl_table_add(&t, (const char *const[]){"DAEMON", "INSTANCE", "PID", "STATE", "AGE",
                                          "PROCESSED", "ERRORS", "LAG", "TIMERS"});
    for (size_t i = 0; i < n; i++)
        s_fleet_row(&t, rows[i]);
    kefuctl_table_print(&t, f);
    kefuctl_table_free(&t);
    /* what the ERRORS were: by reason, per daemon that has any */
    for (size_t i = 0; i < n; i++) {
        const json_t *by = json_object_get(rows[i], "errors_by_reason");
        if (!json_is_object(by) || json_object_size(by) == 0)
            continue;
        char *text = s_reasons(by);
        fprintf(f, "errors %s/%s: %s\n", s_str(rows[i], "daemon"), s_str(rows[i], "instance"),
                text);
        free(text);
    }
    free(rows);
}

/* A string member as is (any length), "-" when missing or empty. */
static const char *s_str(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v && *v ? v : "-";
}

/* "cap_daily=2 optout=1" from {"cap_daily": 2, "optout": 1}, "-" when none (malloc'd). */
static char *s_reasons(const json_t *by)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort(); /* allocation failure aborts */
    const char *key;
    json_t *v;
    bool any = false;
    json_object_foreach((json_t *)by, key, v) {
        if (json_is_integer(v) && json_integer_value(v) != 0) {
            fprintf(f, "%s%s=%" JSON_INTEGER_FORMAT, any ? " " : "", key, json_integer_value(v));
            any = true;
        }
    }
    if (!any)
        fputc('-', f);
    fclose(f);
    return text;
}

/* The newest campaigns (workers/crm-care/README.md "Campaigns"), when there are any. */
static void s_print_campaigns(const json_t *st, FILE *f)
{
    const json_t *camps = json_object_get(st, "campaigns");
    size_t n = json_is_array(camps) ? json_array_size(camps) : 0;
    if (n == 0)
        return;
    fputs("\ncampaigns:\n", f);
    kefuctl_table_t t = {.ncols = 11, .align = "lllllrrrrrl"};
    kefuctl_table_add(&t, (const char *const[]){"SHOP", "CAMPAIGN", "NAME", "STATE", "CHANNEL",
                                                "PARTS", "MATCHED", "SENT", "BLOCKED", "EXPIRED",
                                                "BLOCKED_BY"});
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(camps, i);
        char a[32], b[32], d[32], e[32], g[32], parts[48];
        snprintf(parts, sizeof(parts), "%s/64", s_val(c, "parts_done", a));
        char *by = s_reasons(json_object_get(c, "blocked_by"));
        kefuctl_table_add(&t, (const char *const[]){s_str(c, "shop_id"), s_str(c, "campaign_id"),
                                                    s_str(c, "name"), s_str(c, "state"),
                                                    s_str(c, "channel"), parts,
                                                    s_val(c, "matched", b), s_val(c, "sent", d),
                                                    s_val(c, "blocked", e),
                                                    s_val(c, "expired", g), by});
        free(by);
    }
    kefuctl_table_print(&t, f);
    kefuctl_table_free(&t);
}

/* ------------------------------------------------------------------ delivery (kefu-dispatch) */

/* "3 ms", or "-" when not a number (no attempts yet). */
static const char *s_ms(const json_t *v, char *buf)
{
    if (!json_is_integer(v))
        return "-";
    snprintf(buf, 32, "%" JSON_INTEGER_FORMAT " ms", json_integer_value(v));
    return buf;
}

/* An endpoint that is not ok: "  endpoint s1 http://x/y disabled (410)",
 * "  endpoint s2 http://z/ failing: 5 failed, last timeout, 4 queued". */
static void s_print_endpoint(const json_t *ep, FILE *f)
{
    const char *state = s_str(ep, "state");
    const json_t *status = json_object_get(ep, "last_status");
    char last[40], a[32], b[32];
    if (json_is_integer(status) && json_integer_value(status) != 0)
        snprintf(last, sizeof(last), "%" JSON_INTEGER_FORMAT, json_integer_value(status));
    else
        snprintf(last, sizeof(last), "%.39s", s_str(ep, "last_error"));
    fprintf(f, "  endpoint %s %s ", s_str(ep, "shop_id"), s_str(ep, "url"));
    if (!strcmp(state, "disabled"))
        fprintf(f, strcmp(last, "-") ? "disabled (%s)" : "disabled", last);
    else
        fprintf(f, "%s: %s failed, last %s", state, s_val(ep, "failed", a), last);
    const json_t *queued = json_object_get(ep, "queued");
    if (json_is_integer(queued) && json_integer_value(queued) > 0)
        fprintf(f, ", %s queued", s_val(ep, "queued", b));
    fputc('\n', f);
}

/* The endpoints that are not ok, one a line, then how many are. */
static void s_print_endpoints(const json_t *d, FILE *f)
{
    const json_t *eps = json_object_get(d, "endpoints");
    size_t n = json_is_array(eps) ? json_array_size(eps) : 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *ep = json_array_get(eps, i);
        if (!strcmp(s_str(ep, "state"), "ok"))
            ok++;
        else
            s_print_endpoint(ep, f);
    }
    const json_t *total = json_object_get(d, "endpoints_total");
    fprintf(f, "  endpoints: %zu ok", ok);
    if (json_is_integer(total) && json_integer_value(total) > (json_int_t)n)
        fprintf(f, " (%zu of %" JSON_INTEGER_FORMAT " shown)", n, json_integer_value(total));
    fputc('\n', f);
}

/* docs/dispatch.md "Observability": the "dispatch" object of /stats, or "not running". */
static void s_print_dispatch(const json_t *st, FILE *f)
{
    const json_t *d = json_object_get(st, "dispatch");
    fputc('\n', f);
    if (!json_is_object(d)) {
        fputs("dispatch: not running\n", f);
        return;
    }
    char a[32], b[32], c[32], e[32], g[32], h[32], i[32], j[32];
    const json_t *lat = json_object_get(d, "latency_ms");
    const json_t *old = json_object_get(d, "oldest_ms");
    fprintf(f, "dispatch: delivered %s  queued %s  in flight %s  waiting %s  dead %s  oldest %s"
               "  p50 %s p99 %s",
            s_val(d, "delivered", a), s_val(d, "queued", b), s_val(d, "inflight", c),
            s_val(d, "waiting", e), s_val(d, "dead", g),
            json_is_number(old) && json_number_value(old) > 0 ? s_dur(old, 1, h) : "-",
            s_ms(json_object_get(lat, "p50"), i), s_ms(json_object_get(lat, "p99"), j));
    const json_t *inst = json_object_get(d, "instances");
    if (json_is_integer(inst) && json_integer_value(inst) > 1)
        fprintf(f, "  (%" JSON_INTEGER_FORMAT " instances)", json_integer_value(inst));
    fputc('\n', f);
    char *text = s_reasons(json_object_get(d, "attempts"));
    fprintf(f, "  attempts: %s\n", text);
    free(text);
    text = s_reasons(json_object_get(d, "outcomes"));
    if (strcmp(text, "-"))
        fprintf(f, "  outcomes: %s\n", text);
    free(text);
    s_print_endpoints(d, f);
}

/* ------------------------------------------------------------------ fetch and show */

/* Fetches /stats: the body, or NULL after printing why (stderr, or f in watch mode). */
static char *s_fetch(s_stat_t *s, size_t *len, FILE *f)
{
    char err[256];
    char *body = NULL;
    int status = 0;
    if (kefuctl_http_get(s->listen, "/stats", S_HTTP_TIMEOUT_MS, &status, &body, len, err,
                         sizeof(err)) != KF_OK) {
        fprintf(f, "kefuctl: broker stats unreachable at %s: %s\n", s->url, err);
        return NULL;
    }
    if (status != 200) {
        fprintf(f, "kefuctl: broker stats at %s: HTTP %d\n", s->url, status);
        free(body);
        return NULL;
    }
    return body;
}

/* One JSON document, newline-terminated: as sent, or one line per refresh in watch mode. */
static int s_show_json(s_stat_t *s, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        fprintf(stderr, "kefuctl: broker stats at %s: bad JSON: %s\n", s->url, jerr.text);
        return KEFUCTL_FAIL;
    }
    if (s->watch) {
        json_dumpf(root, stdout, JSON_COMPACT);
        fputc('\n', stdout);
    } else {
        fwrite(body, 1, len, stdout);
        if (len == 0 || body[len - 1] != '\n')
            fputc('\n', stdout);
    }
    json_decref(root);
    return KEFUCTL_OK;
}

static int s_show_table(s_stat_t *s, const char *body, size_t len, FILE *f)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root)) {
        fprintf(f, "kefuctl: broker stats at %s: bad JSON: %s\n", s->url,
                root ? "not an object" : jerr.text);
        json_decref(root);
        return KEFUCTL_FAIL;
    }
    s_print_header(root, f);
    s_print_topics(root, f);
    s_print_rejects(root, f);
    s_print_fleet(root, f);
    s_print_dispatch(root, f);
    s_print_campaigns(root, f);
    json_decref(root);
    return KEFUCTL_OK;
}

/* One refresh. In table watch mode the screen is composed in memory, then written at once. */
static int s_once(s_stat_t *s)
{
    char *screen = NULL;
    size_t slen = 0, len = 0;
    bool compose = s->watch && !s->json;
    FILE *f = compose ? open_memstream(&screen, &slen) : stderr;
    if (!f)
        f = stderr;
    if (compose)
        fputs("\033[H\033[2J", f);
    int rc = KEFUCTL_FAIL;
    char *body = s_fetch(s, &len, f);
    if (body && s->json)
        rc = s_show_json(s, body, len);
    else if (body)
        rc = s_show_table(s, body, len, compose ? f : stdout);
    if (compose && f != stderr) {
        fprintf(f, "\n(every %.3g s; Ctrl-C to stop)\n", (double)s->interval_ms / 1000);
        fclose(f);
        fwrite(screen, 1, slen, stdout);
        free(screen);
    }
    fflush(stdout);
    free(body);
    return rc;
}

static int s_parse_args(s_stat_t *s, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"json", no_argument, NULL, 'j'},
        {"watch", optional_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *interval = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":jwh", s_long, NULL)) != -1) {
        if (c == 'j') {
            s->json = true;
        } else if (c == 'w') {
            s->watch = true;
            interval = optarg;
        } else if (c == 'h') {
            kefuctl_print_usage(stdout, &kefuctl_verb_stat, true);
            return KEFUCTL_OK;
        } else {
            return kefuctl_getopt_error(&kefuctl_verb_stat, c, argv);
        }
    }
    if (s->watch && !interval && optind < argc) /* --watch 5 */
        interval = argv[optind++];
    if (optind < argc)
        return kefuctl_usage_error(&kefuctl_verb_stat, "unexpected argument '%s'", argv[optind]);
    s->interval_ms = 2000;
    if (interval && kefuctl_parse_seconds(interval, 0.1, 86400, &s->interval_ms) != KF_OK)
        return kefuctl_usage_error(&kefuctl_verb_stat, "--watch: '%s' is not a number of "
                                                       "seconds (0.1 .. 86400)", interval);
    return -1;
}

static int s_stat(kefuctl_t *ctl, int argc, char **argv)
{
    s_stat_t s = {0};
    int rc = s_parse_args(&s, argc, argv);
    if (rc >= 0)
        return rc;
    const kf_conf_t *conf = kefuctl_conf(ctl);
    if (!conf)
        return KEFUCTL_USAGE;
    s.listen = conf->http_listen;
    kefuctl_http_url(s.listen, "/stats", s.url, sizeof(s.url));
    for (;;) {
        rc = s_once(&s);
        if (!s.watch)
            return rc;
        kefuctl_sleep_ms(s.interval_ms);
        if (kefuctl_interrupted())
            return KEFUCTL_OK;
    }
}

const kefuctl_verb_t kefuctl_verb_stat = {
    .name = "stat",
    .fn = s_stat,
    .synopsis = "stat [--json] [--watch [SECONDS]]",
    .help = "    The broker's statistics, the fleet view, webhook delivery (kefu-dispatch) and\n"
            "    the progress of the newest CRM campaigns, when there are any\n"
            "    (GET http://<[http] listen>/stats).\n"
            "    --json             print the JSON document as the broker sent it\n"
            "    --watch [SECONDS]  redraw every SECONDS (default 2) until interrupted;\n"
            "                       with --json, one JSON line per refresh",
};
