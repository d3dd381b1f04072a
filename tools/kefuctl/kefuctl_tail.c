/* kefuctl tail: events as flat JSON lines, live from [bus] subscribe, optionally replaying
 * the journal first (--from-seq).
 *
 * Replay is the ZeroMQ Guide's Clone pattern with Redis as the snapshot store: subscribe
 * first (live messages queue up in the socket), then read kefu:journal from seq N
 * (kf_journal.h), then go live, skipping journaled events (seq != 0) already printed. If the first
 * live journaled event leaves a gap behind what was replayed (it was published before the
 * subscription took effect), the gap is read from the journal once, too. Events with seq
 * 0 (action.*, sys.heartbeat) are not journaled and are always printed live. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "kefuctl.h"
#include "kf_journal.h"
#include "kf_json.h"
#include "kf_proto.h"
#include "kf_util.h"

#define S_BATCH 100 /* entries per read: up to KF_JOURNAL_ENTRY_MAX events each */
#define S_MAX_TOPIC 256

typedef struct {
    char **prefixes;       /* borrowed from argv; none: everything */
    size_t nprefixes;
    bool from_set;
    uint64_t from_seq;
    long long count;       /* stop after this many events (0: no limit) */
    int64_t idle_ms;       /* stop after this long without an event (< 0: never) */
    const kf_conf_t *conf;
    void *zctx, *sock;
    redisContext *redis;   /* --from-seq: until the live stream is known to cover the rest */
    uint64_t high;         /* the highest journaled seq seen: replayed or live */
    bool covered;          /* live messages are known to follow the replay without a gap */
    uint64_t printed;
    int64_t last_print;    /* kf_mono_ms() of the last event printed (or the start) */
    bool done;
} s_tail_t;

/* ------------------------------------------------------------------ printing */

/* Prefix match on the topic, like a ZeroMQ subscription. */
static bool s_match(const s_tail_t *t, const char *topic, size_t len)
{
    if (t->nprefixes == 0)
        return true;
    for (size_t i = 0; i < t->nprefixes; i++) {
        size_t n = strlen(t->prefixes[i]);
        if (n <= len && memcmp(topic, t->prefixes[i], n) == 0)
            return true;
    }
    return false;
}

static void s_emit(s_tail_t *t, const kf_env_t *env)
{
    char *line = kf_json_dump_event(env);
    if (!line) {
        fprintf(stderr, "kefuctl: cannot show event seq %" PRIu64 " on topic %s as JSON\n",
                (uint64_t)env->seq, env->topic ? env->topic : "?");
        return;
    }
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(line);
    t->printed++;
    t->last_print = kf_mono_ms();
    if (t->count > 0 && t->printed >= (uint64_t)t->count)
        t->done = true;
}

/* Decodes [topic][envelope]; reports and returns NULL when it does not decode. */
static kf_env_t *s_decode(const char *topic, const void *data, size_t len, const char *where)
{
    char err[512];
    kf_reject_t why;
    kf_env_t *env = kf_proto_decode(data, len, topic, 0, &why, err, sizeof(err));
    if (!env)
        fprintf(stderr, "kefuctl: undecodable message on topic %.*s%s: %s\n", S_MAX_TOPIC,
                topic, where, err);
    return env;
}

/* ------------------------------------------------------------------ the journal */

/* Prints the events of one journal entry with start <= seq <= end (end 0: no end). Sets
 * *first to the entry's first seq; returns its last seq, 0 when it is not an entry. */
static uint64_t s_entry(s_tail_t *t, const redisReply *e, uint64_t start, uint64_t end,
                        uint64_t *first)
{
    kf_journal_iter_t it;
    if (kf_journal_open(e, &it) != KF_OK) {
        fprintf(stderr, "kefuctl: malformed entry in %s: skipped\n", KF_JOURNAL_KEY);
        return 0;
    }
    *first = it.first;
    kf_journal_entry_t je;
    int rc;
    while (!t->done && (rc = kf_journal_next(&it, &je)) == 1) {
        uint64_t seq = je.seq;
        if (seq < start || (end && seq > end))
            continue;
        if (seq > t->high)
            t->high = seq;
        if (!je.topic || !je.bytes || je.topic_len > S_MAX_TOPIC) {
            fprintf(stderr, "kefuctl: journal event %" PRIu64 " has no topic or envelope: "
                            "skipped\n", seq);
            continue;
        }
        if (!s_match(t, je.topic, je.topic_len))
            continue;
        char topic[S_MAX_TOPIC + 1], where[64];
        memcpy(topic, je.topic, je.topic_len);
        topic[je.topic_len] = '\0';
        snprintf(where, sizeof(where), " (journal seq %" PRIu64 ")", seq);
        kf_env_t *env = s_decode(topic, (const char *)je.bytes, je.len, where);
        if (env) {
            env->has_seq = 1; /* the entry's (the stored bytes need not carry it) */
            env->seq = seq;
            s_emit(t, env);
        }
        kf_env_free(env);
    }
    if (rc < 0)
        fprintf(stderr, "kefuctl: journal entry %" PRIu64 ": events %" PRIu64 "..%" PRIu64
                        " are unreadable: skipped\n", it.first, je.seq, it.last);
    return it.last;
}

/* One read of the journal: XRANGE of the entries from `from` (to `to`, 0: the end), at most
 * S_BATCH, or (back) the one entry at or before `from`. Prints their events in
 * [start, end]; sets *first to the first entry's first seq and *next past the last seq
 * read; returns the number of entries or -1. */
static long s_read(s_tail_t *t, bool back, uint64_t from, uint64_t to, uint64_t start,
                   uint64_t end, uint64_t *first, uint64_t *next)
{
    char a[32], b[32], count[16];
    snprintf(a, sizeof(a), "%" PRIu64 "-0", from);
    snprintf(b, sizeof(b), to ? "%" PRIu64 "-0" : "+", to);
    snprintf(count, sizeof(count), "%d", back ? 1 : S_BATCH);
    const char *argv[] = {back ? "XREVRANGE" : "XRANGE", KF_JOURNAL_KEY, a, back ? "-" : b,
                          "COUNT", count};
    redisReply *r = redisCommandArgv(t->redis, 6, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "kefuctl: cannot read the journal: %s %s: %s\n", argv[0],
                KF_JOURNAL_KEY,
                !r ? t->redis->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        freeReplyObject(r);
        return -1;
    }
    long n = (long)r->elements;
    for (size_t i = 0; i < r->elements && !t->done; i++) {
        uint64_t f = 0, last = s_entry(t, r->element[i], start, end, &f);
        if (i == 0)
            *first = f;
        if (last >= *next)
            *next = last + 1;
    }
    freeReplyObject(r);
    return n;
}

/* Prints the journaled events with start <= seq <= end (end 0: to the end). */
static int s_replay(s_tail_t *t, uint64_t start, uint64_t end, bool warn_trimmed)
{
    uint64_t next = start, first = 0;
    /* the entry holding start may begin before it (an entry is a run of events) */
    if (s_read(t, true, start, 0, start, end, &first, &next) < 0)
        return KF_ERR;
    bool held = next > start;
    for (bool first_read = true; !t->done && !kefuctl_interrupted(); first_read = false) {
        uint64_t from = next;
        if (end && from > end)
            break;
        long n = s_read(t, false, from, end, start, end, &first, &next);
        if (n < 0)
            return KF_ERR;
        if (first_read && !held && warn_trimmed && n > 0 && first > (start ? start : 1))
            fprintf(stderr, "kefuctl: the journal starts at seq %" PRIu64 ": events %" PRIu64
                            "..%" PRIu64 " are no longer kept\n",
                    first, start ? start : 1, first - 1);
        if (n < S_BATCH || next <= from)
            break;
    }
    return KF_OK;
}

/* ------------------------------------------------------------------ live */

/* The first live journaled event after the replay: fetch what it leaves behind. */
static void s_cover(s_tail_t *t, uint64_t seq)
{
    if (seq > t->high + 1 && t->redis &&
        s_replay(t, t->high + 1, seq - 1, false) != KF_OK)
        fprintf(stderr, "kefuctl: events %" PRIu64 "..%" PRIu64 " may be missing\n",
                t->high + 1, seq - 1);
    t->covered = true;
    if (t->redis) {
        redisFree(t->redis);
        t->redis = NULL;
    }
}

static void s_live(s_tail_t *t, const char *topic, zmq_msg_t *body)
{
    kf_env_t *env = s_decode(topic, zmq_msg_data(body), zmq_msg_size(body), "");
    if (!env)
        return;
    uint64_t seq = env->seq;
    if (t->from_set && seq != 0) {
        if (seq <= t->high) { /* already replayed */
            t->covered = true;
            kf_env_free(env);
            return;
        }
        if (!t->covered)
            s_cover(t, seq);
        t->high = seq;
    }
    if (!t->done)
        s_emit(t, env);
    kf_env_free(env);
}

/* Receives one message without waiting: [topic][envelope]. KF_ERR when there is none. */
static int s_recv(s_tail_t *t)
{
    zmq_msg_t topic, body, extra;
    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    zmq_msg_init(&extra);
    int rc = KF_ERR;
    if (zmq_msg_recv(&topic, t->sock, ZMQ_DONTWAIT) < 0)
        goto done;
    rc = KF_OK;
    size_t total = 1;
    if (zmq_msg_more(&topic) && zmq_msg_recv(&body, t->sock, 0) >= 0)
        total++;
    bool more = total == 2 && zmq_msg_more(&body);
    for (; more && zmq_msg_recv(&extra, t->sock, 0) >= 0; total++)
        more = zmq_msg_more(&extra);
    if (total != 2) {
        fprintf(stderr, "kefuctl: message with %zu frame%s (expected [topic][envelope]): skipped\n",
                total, total == 1 ? "" : "s");
        goto done;
    }
    char name[S_MAX_TOPIC + 1];
    size_t n = zmq_msg_size(&topic) < S_MAX_TOPIC ? zmq_msg_size(&topic) : S_MAX_TOPIC;
    memcpy(name, zmq_msg_data(&topic), n);
    name[n] = '\0';
    s_live(t, name, &body);
done:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    zmq_msg_close(&extra);
    return rc;
}

/* Until --count, --idle-exit, or a signal. */
static int s_loop(s_tail_t *t)
{
    while (!t->done) {
        long timeout = -1;
        if (t->idle_ms >= 0) {
            int64_t left = t->last_print + t->idle_ms - kf_mono_ms();
            if (left <= 0)
                return KEFUCTL_OK;
            timeout = (long)left;
        }
        zmq_pollitem_t item = {t->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, timeout);
        if (kefuctl_interrupted())
            return KEFUCTL_OK;
        if (rc < 0 && errno != EINTR) {
            fprintf(stderr, "kefuctl: %s: %s\n", t->conf->bus_subscribe, zmq_strerror(errno));
            return KEFUCTL_FAIL;
        }
        while (rc > 0 && !t->done && s_recv(t) == KF_OK)
            ;
    }
    return KEFUCTL_OK;
}

/* ------------------------------------------------------------------ the verb */

static int s_open(s_tail_t *t)
{
    const char *ep = t->conf->bus_subscribe;
    int zero = 0, hwm = (int)(t->conf->bus_hwm > 0 ? t->conf->bus_hwm : 100000);
    t->zctx = zmq_ctx_new();
    t->sock = t->zctx ? zmq_socket(t->zctx, ZMQ_SUB) : NULL;
    if (!t->sock || zmq_setsockopt(t->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
        zmq_setsockopt(t->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0)
        goto fail;
    for (size_t i = 0; i < t->nprefixes; i++)
        if (zmq_setsockopt(t->sock, ZMQ_SUBSCRIBE, t->prefixes[i], strlen(t->prefixes[i])) < 0)
            goto fail;
    if ((t->nprefixes == 0 && zmq_setsockopt(t->sock, ZMQ_SUBSCRIBE, "", 0) < 0) ||
        zmq_connect(t->sock, ep) < 0)
        goto fail;
    return KF_OK;
fail:
    fprintf(stderr, "kefuctl: cannot subscribe to %s: %s\n", ep, zmq_strerror(errno));
    return KF_ERR;
}

/* --from-seq: the journal from N, after subscribing (live messages wait in the socket). */
static int s_replay_start(s_tail_t *t)
{
    char err[512];
    t->redis = kefuctl_redis_connect(t->conf, err, sizeof(err));
    if (!t->redis) {
        fprintf(stderr, "kefuctl: cannot read the journal: %s\n", err);
        return KF_ERR;
    }
    t->high = t->from_seq > 0 ? t->from_seq - 1 : 0;
    return s_replay(t, t->from_seq, 0, true);
}

static int s_parse_args(s_tail_t *t, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"from-seq", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {"idle-exit", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const kefuctl_verb_t *v = &kefuctl_verb_tail;
    long long ll;
    int c;
    while ((c = getopt_long(argc, argv, ":n:h", s_long, NULL)) != -1) {
        switch (c) {
        case 's':
            if (kf_parse_ll(optarg, 0, INT64_MAX, &ll) != KF_OK)
                return kefuctl_usage_error(v, "--from-seq: '%s' is not a sequence number",
                                           optarg);
            t->from_set = true;
            t->from_seq = (uint64_t)ll;
            break;
        case 'n':
            if (kf_parse_ll(optarg, 1, INT64_MAX, &t->count) != KF_OK)
                return kefuctl_usage_error(v, "--count: '%s' is not a positive number", optarg);
            break;
        case 'i':
            if (kefuctl_parse_seconds(optarg, 0, 31536000, &t->idle_ms) != KF_OK)
                return kefuctl_usage_error(v, "--idle-exit: '%s' is not a number of seconds",
                                           optarg);
            break;
        case 'h':
            kefuctl_print_usage(stdout, v, true);
            return KEFUCTL_OK;
        default:
            return kefuctl_getopt_error(v, c, argv);
        }
    }
    t->prefixes = argv + optind;
    t->nprefixes = (size_t)(argc - optind);
    return -1;
}

static int s_tail(kefuctl_t *ctl, int argc, char **argv)
{
    s_tail_t t = {.idle_ms = -1};
    int rc = s_parse_args(&t, argc, argv);
    if (rc >= 0)
        return rc;
    t.conf = kefuctl_conf(ctl);
    if (!t.conf)
        return KEFUCTL_USAGE;
    t.last_print = kf_mono_ms();
    for (size_t i = 0; t.from_set && i < t.nprefixes; i++)
        if (!strncmp(t.prefixes[i], "action", 6)) { /* the journal holds events only */
            fprintf(stderr, "kefuctl tail: actions are not journaled, --from-seq replays events "
                            "only (actions emitted so far: kefuctl actions); %s is shown live\n",
                    t.prefixes[i]);
            break;
        }
    rc = KEFUCTL_FAIL;
    if (s_open(&t) != KF_OK || (t.from_set && s_replay_start(&t) != KF_OK))
        goto done;
    rc = t.done || kefuctl_interrupted() ? KEFUCTL_OK : s_loop(&t);
done:
    if (t.redis)
        redisFree(t.redis);
    if (t.sock)
        zmq_close(t.sock);
    if (t.zctx)
        zmq_ctx_term(t.zctx);
    return rc;
}

const kefuctl_verb_t kefuctl_verb_tail = {
    .name = "tail",
    .fn = s_tail,
    .synopsis = "tail [PREFIX...] [--from-seq N] [--count N] [--idle-exit SECONDS]",
    .help = "    Prints events as flat JSON lines, one per line, live from [bus] subscribe.\n"
            "    PREFIX        only topics starting with it (e.g. order. action.contact);\n"
            "                  none: every topic\n"
            "    --from-seq N  first replay the journal ([redis] url) from seq N, then go live\n"
            "    --count N     exit after N events (replayed ones count)\n"
            "    --idle-exit S exit after S seconds (may be fractional) without an event\n"
            "    Runs until interrupted otherwise.",
};
