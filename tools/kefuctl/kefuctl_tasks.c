/* kefuctl tasks: the open tasks of every worker (DESIGN §10), oldest due first.
 *
 * The workers keep them in Redis (common/kf_worker.lua, K.task_open / K.task_done): the ZSET
 * kefu:tasks scores each task id by its due time (epoch ms) and kefu:task:<task_id> holds the
 * task's flat JSON (the action.task as emitted, times in epoch ms). A member whose JSON is
 * gone (expired, or closed between the two reads) is skipped; one whose JSON is not an
 * object is skipped with a note. Times are shown at +08:00, the shops' default offset. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kf_clock.h"
#include "kf_tmpl.h"
#include "kf_util.h"

#define S_OFFSET 480         /* +08:00 */
#define S_BATCH 256          /* GETs per pipeline round trip */
#define S_SUMMARY_CHARS 40
#define S_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

typedef struct {
    const char *agent; /* --agent, or NULL */
    bool json;
} s_opts_t;

typedef struct {
    json_t *task;      /* the JSON object */
    long long due;     /* the ZSET score */
} s_task_t;

typedef struct {
    s_task_t *v;
    size_t n;
} s_tasks_t;

/* ------------------------------------------------------------------ reading */

/* A member's score: a whole number of ms (Redis prints scores as doubles). */
static bool s_score(const redisReply *r, long long *ms)
{
    if (r->type != REDIS_REPLY_STRING)
        return false;
    char *end;
    double d = strtod(r->str, &end);
    if (*end || !(d >= 0 && d <= (double)S_MAX_MS))
        return false;
    *ms = (long long)d;
    return true;
}

/* The task's JSON from one GET reply (NULL reply: gone). */
static void s_add(s_tasks_t *t, const s_opts_t *o, const redisReply *member,
                  const redisReply *r, long long due)
{
    if (r->type == REDIS_REPLY_NIL)
        return;
    json_error_t jerr;
    json_t *j = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, &jerr) : NULL;
    if (!json_is_object(j)) {
        char *p = kf_xstrndup(member->str, member->len);
        for (char *s = p; *s; s++)
            if ((unsigned char)*s < 0x20)
                *s = '?';
        fprintf(stderr, "kefuctl: tasks: skipped kefu:task:%.80s: %s\n", p,
                r->type == REDIS_REPLY_ERROR ? r->str : "not a JSON object");
        free(p);
        json_decref(j);
        return;
    }
    const char *agent = json_string_value(json_object_get(j, "agent_id"));
    if (o->agent && (!agent || strcmp(agent, o->agent) != 0)) {
        json_decref(j);
        return;
    }
    t->v = kf_xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
    t->v[t->n++] = (s_task_t){j, due};
}

/* GET kefu:task:<id> of members [b, end) of z (pairs id, score), pipelined. */
static int s_read_batch(redisContext *c, const redisReply *z, size_t b, size_t end,
                        s_tasks_t *t, const s_opts_t *o, char *err, size_t errlen)
{
    for (size_t i = b; i < end; i++)
        redisAppendCommand(c, "GET kefu:task:%b", z->element[2 * i]->str,
                           z->element[2 * i]->len);
    for (size_t i = b; i < end; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            snprintf(err, errlen, "GET: %s", c->errstr[0] ? c->errstr : "connection lost");
            return KF_ERR;
        }
        long long due;
        if (s_score(z->element[2 * i + 1], &due))
            s_add(t, o, z->element[2 * i], r, due);
        freeReplyObject(r);
    }
    return KF_OK;
}

static int s_read(redisContext *c, const s_opts_t *o, s_tasks_t *t, char *err, size_t errlen)
{
    redisReply *z = redisCommand(c, "ZRANGE kefu:tasks 0 -1 WITHSCORES");
    if (!z || z->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "ZRANGE kefu:tasks: %s",
                 !z ? (c->errstr[0] ? c->errstr : "connection lost") : z->str);
        if (z)
            freeReplyObject(z);
        return KF_ERR;
    }
    int rc = KF_OK;
    if (z->type != REDIS_REPLY_ARRAY || z->elements % 2) {
        snprintf(err, errlen, "kefu:tasks is not a sorted set");
        rc = KF_ERR;
    }
    for (size_t i = 0; rc == KF_OK && i < z->elements; i++)
        if (z->element[i]->type != REDIS_REPLY_STRING) {
            snprintf(err, errlen, "ZRANGE kefu:tasks: unexpected reply");
            rc = KF_ERR;
        }
    size_t n = rc == KF_OK ? z->elements / 2 : 0;
    for (size_t b = 0; rc == KF_OK && b < n; b += S_BATCH)
        rc = s_read_batch(c, z, b, b + S_BATCH < n ? b + S_BATCH : n, t, o, err, errlen);
    freeReplyObject(z);
    return rc;
}

/* ------------------------------------------------------------------ output */

static const char *s_str(const json_t *task, const char *key)
{
    const char *s = json_string_value(json_object_get(task, key));
    return s && *s ? s : NULL;
}

/* A table cell: control characters as spaces, at most max characters. */
static char *s_cell(const char *s, size_t max)
{
    if (!s)
        return NULL;
    char *clean = kf_xstrdup(s);
    for (char *p = clean; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    size_t cap = strlen(clean) + 8;
    char *out = kf_xmalloc(cap);
    kf_utf8_truncate(clean, max, out, cap);
    free(clean);
    return out;
}

static void s_print_table(const s_tasks_t *t)
{
    kefuctl_table_t tab = {.ncols = 7, .align = "lllllll"};
    kefuctl_table_add(&tab, (const char *const[]){"DUE", "AGENT", "KIND", "SEVERITY", "ORDER",
                                                  "CASE", "SUMMARY"});
    for (size_t i = 0; i < t->n; i++) {
        const json_t *j = t->v[i].task;
        kf_local_t lt;
        char due[32];
        kf_local(t->v[i].due, S_OFFSET, &lt);
        snprintf(due, sizeof(due), "%02d-%02d %02d:%02d", lt.month, lt.day, lt.hour, lt.minute);
        static const char *const keys[] = {"agent_id", "kind", "severity", "order_id",
                                           "case_id", "summary"};
        char *cells[KF_ARRAY_LEN(keys)];
        for (size_t k = 0; k < KF_ARRAY_LEN(keys); k++)
            cells[k] = s_cell(s_str(j, keys[k]), k == 5 ? S_SUMMARY_CHARS : 200);
        kefuctl_table_add(&tab, (const char *const[]){due, cells[0], cells[1], cells[2],
                                                      cells[3], cells[4], cells[5]});
        for (size_t k = 0; k < KF_ARRAY_LEN(keys); k++)
            free(cells[k]);
    }
    kefuctl_table_print(&tab, stdout);
    kefuctl_table_free(&tab);
}

static bool s_is_time_key(const char *key)
{
    size_t n = strlen(key);
    return strcmp(key, "now") == 0 || (n > 3 && (strcmp(key + n - 3, "_at") == 0 ||
                                                 strcmp(key + n - 3, "_by") == 0));
}

/* The task with its times (epoch ms) as RFC 3339 at +08:00; due_at from the score if absent. */
static void s_json_times(json_t *task, long long due)
{
    const char *key;
    json_t *v;
    char buf[40];
    if (!json_object_get(task, "due_at"))
        json_object_set_new(task, "due_at", json_integer(due));
    json_object_foreach(task, key, v) {
        json_int_t ms = json_is_integer(v) ? json_integer_value(v)
                        : json_is_real(v) ? (json_int_t)json_real_value(v) : -1;
        if (!s_is_time_key(key) || ms < 0 || ms > S_MAX_MS ||
            kf_time_format(ms, S_OFFSET, buf, sizeof(buf)) != KF_OK)
            continue;
        json_object_set_new(task, key, json_string(buf));
    }
}

static void s_print_json(const s_tasks_t *t)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < t->n; i++) {
        s_json_times(t->v[i].task, t->v[i].due);
        json_array_append(arr, t->v[i].task);
    }
    json_dumpf(arr, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(arr);
}

/* ------------------------------------------------------------------ the verb */

static int s_parse_args(s_opts_t *o, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"agent", required_argument, NULL, 'a'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const kefuctl_verb_t *v = &kefuctl_verb_tasks;
    int c;
    while ((c = getopt_long(argc, argv, ":h", s_long, NULL)) != -1) {
        if (c == 'a')
            o->agent = optarg;
        else if (c == 'j')
            o->json = true;
        else if (c == 'h') {
            kefuctl_print_usage(stdout, v, true);
            return KEFUCTL_OK;
        } else
            return kefuctl_getopt_error(v, c, argv);
    }
    if (optind < argc)
        return kefuctl_usage_error(v, "unexpected argument '%s'", argv[optind]);
    if (o->agent && !*o->agent)
        return kefuctl_usage_error(v, "--agent: empty agent id");
    return -1;
}

static int s_tasks(kefuctl_t *ctl, int argc, char **argv)
{
    s_opts_t o = {0};
    int rc = s_parse_args(&o, argc, argv);
    if (rc >= 0)
        return rc;
    const kf_conf_t *conf = kefuctl_conf(ctl);
    if (!conf)
        return KEFUCTL_USAGE;
    char err[512];
    redisContext *c = kefuctl_redis_connect(conf, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "kefuctl: tasks: cannot read the tasks: %s\n", err);
        return KEFUCTL_FAIL;
    }
    s_tasks_t t = {0};
    rc = KEFUCTL_FAIL;
    if (s_read(c, &o, &t, err, sizeof(err)) != KF_OK) {
        fprintf(stderr, "kefuctl: tasks: redis: %s\n", err);
    } else {
        if (o.json)
            s_print_json(&t);
        else if (t.n == 0)
            puts("no open tasks");
        else
            s_print_table(&t);
        rc = KEFUCTL_OK;
    }
    for (size_t i = 0; i < t.n; i++)
        json_decref(t.v[i].task);
    free(t.v);
    redisFree(c);
    fflush(stdout);
    return rc;
}

const kefuctl_verb_t kefuctl_verb_tasks = {
    .name = "tasks",
    .fn = s_tasks,
    .synopsis = "tasks [--agent A] [--json]",
    .help = "    The open tasks of every worker ([redis] url: kefu:tasks, kefu:task:<id>), the\n"
            "    oldest due first: DUE (+08:00, MM-DD HH:MM), AGENT, KIND, SEVERITY, ORDER,\n"
            "    CASE and SUMMARY (its first 40 characters).\n"
            "    --agent A   only the tasks assigned to agent A\n"
            "    --json      a JSON array of the tasks as the workers emitted them, with their\n"
            "                times as RFC 3339 (+08:00)",
};
