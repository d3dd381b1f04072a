/* kefuctl actions | dead | redeliver: what kefu-dispatch did with the actions (DESIGN §10;
 * the keys are in docs/dispatch.md): kefu:actions with each entry's delivery state
 * (kefu:dlv:<yyyymmdd>), the dead letters (kefu:dead), and redelivery of dead letters. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kefuctl.h"
#include "kf_util.h"

#define S_OFFSET 480
#define S_PAGE 500
#define S_SCAN_MAX 100000

typedef struct {
    const char *shop, *order, *buyer, *reason;
    long long count;
    bool json, all;
    char **ids;
    int nids;
} s_opts_t;

static const char *s_js(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static bool s_match(const char *want, const char *have)
{
    return !want || !strcmp(want, have);
}

/* "MM-DD HH:MM:SS" at +08:00 of epoch ms */
static void s_when(long long ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000 + S_OFFSET * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%m-%d %H:%M:%S", &tm);
}

static const char *s_field(const redisReply *f, const char *name)
{
    for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->str && !strcmp(f->element[i]->str, name))
            return f->element[i + 1]->str;
    return NULL;
}

static json_t *s_parse(const char *s)
{
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    if (!o)
        o = json_null();
    return o;
}

static int s_opts(const kefuctl_verb_t *v, s_opts_t *o, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"shop", required_argument, NULL, 's'},  {"order", required_argument, NULL, 'o'},
        {"buyer", required_argument, NULL, 'b'}, {"reason", required_argument, NULL, 'r'},
        {"count", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'a'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", s_long, NULL)) != -1) {
        switch (c) {
        case 's': o->shop = optarg; break;
        case 'o': o->order = optarg; break;
        case 'b': o->buyer = optarg; break;
        case 'r': o->reason = optarg; break;
        case 'j': o->json = true; break;
        case 'a': o->all = true; break;
        case 'n':
            if (kf_parse_ll(optarg, 1, 1000000, &o->count) != KF_OK)
                return kefuctl_usage_error(v, "--count: 1..1000000");
            break;
        case 'h': kefuctl_print_usage(stdout, v, true); return KEFUCTL_OK;
        default: return kefuctl_getopt_error(v, c, argv);
        }
    }
    o->ids = argv + optind;
    o->nids = argc - optind;
    return -1;
}

static redisContext *s_connect(kefuctl_t *ctl, const char *verb)
{
    const kf_conf_t *conf = kefuctl_conf(ctl);
    if (!conf)
        return NULL;
    char err[512];
    redisContext *c = kefuctl_redis_connect(conf, err, sizeof(err));
    if (!c)
        fprintf(stderr, "kefuctl: %s: redis: %s\n", verb, err);
    return c;
}

/* ------------------------------------------------------------------ actions */

static json_t *s_state(redisContext *c, const char *sid)
{
    long long ms = strtoll(sid, NULL, 10);
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char key[40];
    strftime(key, sizeof(key), "kefu:dlv:%Y%m%d", &tm);
    redisReply *r = redisCommand(c, "HGET %s %s", key, sid);
    json_t *st = r && r->type == REDIS_REPLY_STRING ? s_parse(r->str) : json_null();
    freeReplyObject(r);
    return st;
}

static void s_action_row(kefuctl_table_t *t, const char *sid, json_t *a, json_t *st)
{
    char when[24], n[16], last[24], detail[40];
    s_when(json_integer_value(json_object_get(a, "occurred_at")), when, sizeof(when));
    const char *state = json_is_object(st) ? s_js(st, "s") : "undispatched";
    snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(json_object_get(st, "n")));
    long long code = json_integer_value(json_object_get(st, "code"));
    snprintf(last, sizeof(last), "%s", code ? "" : s_js(st, "err"));
    if (code)
        snprintf(last, sizeof(last), "%lld", code);
    detail[0] = '\0';
    if (!strcmp(state, "delivered"))
        s_when(json_integer_value(json_object_get(st, "done")), detail, sizeof(detail));
    else if (!strcmp(state, "pending")) {
        char nx[24];
        s_when(json_integer_value(json_object_get(st, "next")), nx, sizeof(nx));
        snprintf(detail, sizeof(detail), "next %s", nx);
    } else if (!strcmp(state, "dead"))
        snprintf(detail, sizeof(detail), "%s", s_js(st, "why"));
    const char *id = s_js(a, "event_id");
    kefuctl_table_add(t, (const char *const[]){when, s_js(a, "topic"), id, s_js(a, "shop_id"),
                                               s_js(a, "reason"), s_js(a, "channel"), state,
                                               json_is_object(st) ? n : "-",
                                               *last ? last : "-", *detail ? detail : "-"});
    (void)sid;
}

static int s_actions(kefuctl_t *ctl, int argc, char **argv)
{
    s_opts_t o = {.count = 20};
    int rc = s_opts(&kefuctl_verb_actions, &o, argc, argv);
    if (rc >= 0)
        return rc;
    if (o.nids)
        return kefuctl_usage_error(&kefuctl_verb_actions, "unexpected argument '%s'", o.ids[0]);
    redisContext *c = s_connect(ctl, "actions");
    if (!c)
        return KEFUCTL_FAIL;
    json_t *out = json_array();
    kefuctl_table_t t = {.ncols = 10, .align = "llllllllll"};
    kefuctl_table_add(&t, (const char *const[]){"TIME", "TOPIC", "ID", "SHOP", "REASON", "CHANNEL",
                                                "STATE", "ATTEMPTS", "LAST", "DETAIL"});
    char end[48] = "+";
    long long scanned = 0, found = 0;
    while (found < o.count && scanned < S_SCAN_MAX) {
        redisReply *r = redisCommand(c, "XREVRANGE kefu:actions %s - COUNT %d", end, S_PAGE);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            break;
        }
        for (size_t i = 0; i < r->elements && found < o.count; i++) {
            const redisReply *e = r->element[i];
            const char *sid = e->element[0]->str;
            json_t *a = s_parse(s_field(e->element[1], "j"));
            if (json_is_object(a) && s_match(o.shop, s_js(a, "shop_id")) &&
                s_match(o.order, s_js(a, "order_id")) && s_match(o.buyer, s_js(a, "buyer_id")) &&
                s_match(o.reason, s_js(a, "reason"))) {
                json_t *st = s_state(c, sid);
                found++;
                if (o.json)
                    json_array_append_new(out, json_pack("{s:s, s:s?, s:s?, s:O, s:O}", "stream_id",
                                                         sid, "topic", s_field(e->element[1], "t"),
                                                         "id", s_field(e->element[1], "id"),
                                                         "action", a, "state", st));
                else
                    s_action_row(&t, sid, a, st);
                json_decref(st);
            }
            json_decref(a);
        }
        scanned += (long long)r->elements;
        snprintf(end, sizeof(end), "(%s", r->element[r->elements - 1]->element[0]->str);
        freeReplyObject(r);
    }
    if (o.json) {
        char *s = json_dumps(out, JSON_INDENT(2));
        puts(s);
        free(s);
    } else if (found == 0) {
        puts("no actions");
    } else {
        kefuctl_table_print(&t, stdout);
    }
    kefuctl_table_free(&t);
    json_decref(out);
    redisFree(c);
    return KEFUCTL_OK;
}

/* ------------------------------------------------------------------ dead */

static int s_dead(kefuctl_t *ctl, int argc, char **argv)
{
    s_opts_t o = {.count = 50};
    int rc = s_opts(&kefuctl_verb_dead, &o, argc, argv);
    if (rc >= 0)
        return rc;
    redisContext *c = s_connect(ctl, "dead");
    if (!c)
        return KEFUCTL_FAIL;
    redisReply *r = redisCommand(c, "XREVRANGE kefu:dead + - COUNT %d", S_SCAN_MAX);
    json_t *out = json_array();
    kefuctl_table_t t = {.ncols = 8, .align = "lllllrll"};
    kefuctl_table_add(&t, (const char *const[]){"TIME", "ID", "SHOP", "TOPIC", "WHY", "ATTEMPTS",
                                                "LAST", "URL"});
    long long found = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && found < o.count;
         i++) {
        const redisReply *e = r->element[i], *f = e->element[1];
        const char *shop = s_field(f, "shop");
        if (!s_match(o.shop, shop ? shop : ""))
            continue;
        found++;
        json_t *log = s_parse(s_field(f, "log"));
        if (o.json) {
            json_array_append_new(out, json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, s:O}",
                                                 "dead_id", e->element[0]->str, "id",
                                                 s_field(f, "id"), "topic", s_field(f, "t"),
                                                 "shop", shop, "why", s_field(f, "why"), "url",
                                                 s_field(f, "url"), "src", s_field(f, "src"),
                                                 "action", s_parse(s_field(f, "j")), "log", log));
        } else {
            char when[24], n[16], last[16] = "-";
            s_when(strtoll(e->element[0]->str, NULL, 10), when, sizeof(when));
            size_t k = json_array_size(log);
            snprintf(n, sizeof(n), "%zu", k);
            if (k)
                snprintf(last, sizeof(last), "%lld",
                         (long long)json_integer_value(json_array_get(json_array_get(log, k - 1), 1)));
            const char *cells[] = {when, s_field(f, "id"), shop, s_field(f, "t"), s_field(f, "why"),
                                   n, last, s_field(f, "url")};
            kefuctl_table_add(&t, cells);
        }
        json_decref(log);
    }
    if (o.json) {
        char *s = json_dumps(out, JSON_INDENT(2));
        puts(s);
        free(s);
    } else {
        if (found)
            kefuctl_table_print(&t, stdout);
        redisReply *len = redisCommand(c, "XLEN kefu:dead");
        printf("%lld dead\n", len && len->type == REDIS_REPLY_INTEGER ? len->integer : 0);
        freeReplyObject(len);
    }
    kefuctl_table_free(&t);
    json_decref(out);
    freeReplyObject(r);
    redisFree(c);
    return KEFUCTL_OK;
}

/* ------------------------------------------------------------------ redeliver */

static void s_enable(redisContext *c, const char *shop)
{
    redisReply *r = redisCommand(c, "HGETALL kefu:dispatch:disabled");
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        json_t *v = s_parse(r->element[i + 1]->str);
        if (!shop || !strcmp(s_js(v, "shop"), shop)) {
            freeReplyObject(redisCommand(c, "HDEL kefu:dispatch:disabled %s", r->element[i]->str));
            printf("enabled %s\n", r->element[i]->str);
        }
        json_decref(v);
    }
    freeReplyObject(r);
}

static bool s_chosen(const s_opts_t *o, const char *did, const redisReply *f, bool *hit)
{
    if (o->all || (o->shop && s_match(o->shop, s_field(f, "shop") ? s_field(f, "shop") : "")))
        return true;
    const char *id = s_field(f, "id");
    for (int k = 0; k < o->nids; k++)
        if (!strcmp(o->ids[k], did) || (id && !strcmp(o->ids[k], id))) {
            hit[k] = true;
            return true;
        }
    return false;
}

static bool s_requeue(redisContext *c, const char *did, const redisReply *f)
{
    /* the same action again, marked a manual redelivery (tr) and carrying its attempt log */
    const char *x = s_field(f, "x"), *log = s_field(f, "log");
    if (!s_field(f, "t") || !s_field(f, "id") || !s_field(f, "j"))
        return false; /* not a dead letter of dispatch */
    const char *argv[18] = {"XADD", "kefu:actions", "MAXLEN", "~", "1000000", "*",
                            "t", s_field(f, "t"), "id", s_field(f, "id"), "j", s_field(f, "j"),
                            "tr", "manual"};
    int n = 14;
    if (x)
        argv[n++] = "x", argv[n++] = x;
    if (log)
        argv[n++] = "log", argv[n++] = log;
    redisAppendCommand(c, "MULTI");
    redisAppendCommandArgv(c, n, argv, NULL);
    redisAppendCommand(c, "XDEL kefu:dead %s", did);
    redisAppendCommand(c, "EXEC");
    bool ok = true;
    for (int k = 0; k < 4; k++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR)
            ok = false;
        if (k == 3 && r && r->type != REDIS_REPLY_ARRAY)
            ok = false;
        freeReplyObject(r);
    }
    return ok;
}

static int s_redeliver(kefuctl_t *ctl, int argc, char **argv)
{
    s_opts_t o = {0};
    const kefuctl_verb_t *v = &kefuctl_verb_redeliver;
    int rc = s_opts(v, &o, argc, argv);
    if (rc >= 0)
        return rc;
    if ((o.nids > 0) + (o.shop != NULL) + o.all != 1)
        return kefuctl_usage_error(v, "give action ids, --shop S or --all (one of them)");
    redisContext *c = s_connect(ctl, "redeliver");
    if (!c)
        return KEFUCTL_FAIL;
    if (o.shop || o.all)
        s_enable(c, o.all ? NULL : o.shop);
    bool *hit = kf_xcalloc((size_t)o.nids + 1, sizeof(bool));
    redisReply *r = redisCommand(c, "XRANGE kefu:dead - +");
    long long n = 0, failed = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (!s_chosen(&o, e->element[0]->str, e->element[1], hit))
            continue;
        if (s_requeue(c, e->element[0]->str, e->element[1]))
            n++;
        else
            failed++;
    }
    freeReplyObject(r);
    printf("redelivered %lld\n", n);
    rc = failed ? KEFUCTL_FAIL : KEFUCTL_OK;
    for (int k = 0; k < o.nids; k++)
        if (!hit[k]) {
            fprintf(stderr, "kefuctl: redeliver: %s is not in kefu:dead\n", o.ids[k]);
            rc = KEFUCTL_FAIL;
        }
    free(hit);
    redisFree(c);
    return rc;
}

const kefuctl_verb_t kefuctl_verb_actions = {
    .name = "actions",
    .fn = s_actions,
    .synopsis = "actions [--shop S] [--order O] [--buyer B] [--reason R] [--count N] [--json]",
    .help = "    Recent actions (kefu:actions, newest first) with their delivery state from\n"
            "    kefu-dispatch: pending (with the next attempt), delivered (when), dead (why),\n"
            "    optout, stale, no_endpoint, or undispatched; attempts and the last HTTP status.\n"
            "    --count N   at most N actions (default 20)",
};

const kefuctl_verb_t kefuctl_verb_dead = {
    .name = "dead",
    .fn = s_dead,
    .synopsis = "dead [--shop S] [--count N] [--json]",
    .help = "    Dead letters (kefu:dead, newest first): actions kefu-dispatch gave up on, why\n"
            "    (retries_exhausted, endpoint_disabled, queue_full, no_secret, bad_action), the\n"
            "    attempts made and the last status; --json adds the action and its attempt log.",
};

const kefuctl_verb_t kefuctl_verb_redeliver = {
    .name = "redeliver",
    .fn = s_redeliver,
    .synopsis = "redeliver ID... | --shop S | --all",
    .help = "    Sends dead letters again: each is appended to kefu:actions (same action id, so the\n"
            "    same webhook-id) and removed from kefu:dead. ID is an action id or a kefu:dead\n"
            "    entry id. --shop S (--all) also enables the shop's (every) disabled endpoint.\n"
            "    A contact past its freshness is still not delivered (stale).",
};
