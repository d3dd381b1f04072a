/* kefuctl pub: confirmed publish (DESIGN §3.1) of one event or an NDJSON stream.
 *
 * Requests go out on a DEALER socket to [bus] confirm as [topic][Envelope]; the broker
 * answers each with one frame, in order: "ok <seq>", "duplicate <seq>",
 * "rejected <reason>: <detail>" or "error <detail>". Up to S_WINDOW requests are in
 * flight; results are printed in input order (a line that is not valid JSON takes its
 * place in the queue with its bad_json answer). --fire publishes on a PUB socket to
 * [bus] publish instead, without confirmation. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "kefuctl.h"
#include "kf_json.h"
#include "kf_proto.h"
#include "kf_util.h"

#define S_WINDOW 1000          /* requests in flight */
#define S_HWM (S_WINDOW * 4)   /* socket high-water marks: never the limit */
#define S_READ_CHUNK 65536
#define S_MAX_LINE (16u << 20) /* a longer NDJSON line is an input error */
#define S_SLOW_JOINER_MS 200   /* --fire: let the connection come up before sending */
#define S_FIRE_LINGER_MS 2000  /* --fire: time to flush at exit (at least) */

typedef enum { S_PENDING, S_OK, S_DUP, S_REJ, S_ERR } s_status_t;

typedef struct {
    s_status_t status;
    char *text; /* the line to print once known (NULL: nothing to print) */
} s_slot_t;

/* NDJSON input read in chunks, so that the socket can be served while input is slow. */
typedef struct {
    int fd;
    const char *name;
    char *buf;
    size_t len, cap, pos;
    unsigned lineno;
    bool eof, failed;
} s_reader_t;

typedef struct {
    const char *topic, *json, *file; /* arguments */
    int64_t timeout_ms;
    bool quiet, fire, backfill;
    const char *endpoint;
    void *zctx, *sock;
    s_slot_t ring[S_WINDOW];         /* in input order: head is the oldest */
    size_t head, count, inflight;
    int64_t wait_since;              /* last reply, or when the window stopped being empty */
    bool stopped;                    /* timed out or interrupted: send nothing more */
    unsigned long n, ok, dup, rej, err;
} s_pub_t;

/* ------------------------------------------------------------------ results, in order */

static void s_count(s_pub_t *p, s_status_t st)
{
    switch (st) {
    case S_OK: p->ok++; break;
    case S_DUP: p->dup++; break;
    case S_REJ: p->rej++; break;
    default: p->err++; break;
    }
}

/* Prints the answered requests at the head of the queue. */
static void s_flush(s_pub_t *p)
{
    bool printed = false;
    while (p->count > 0 && p->ring[p->head].status != S_PENDING) {
        s_slot_t *s = &p->ring[p->head];
        if (s->text && (!p->quiet || s->status == S_REJ || s->status == S_ERR)) {
            fputs(s->text, stdout);
            fputc('\n', stdout);
            printed = true;
        }
        free(s->text);
        s->text = NULL;
        p->head = (p->head + 1) % S_WINDOW;
        p->count--;
    }
    if (printed)
        fflush(stdout);
}

/* Queues a result (S_PENDING: waiting for the broker, text NULL). */
static void s_push(s_pub_t *p, s_status_t st, char *text)
{
    s_slot_t *s = &p->ring[(p->head + p->count) % S_WINDOW];
    s->status = st;
    s->text = text;
    p->count++;
    if (st == S_PENDING) {
        if (p->inflight++ == 0)
            p->wait_since = kf_mono_ms();
    } else {
        s_count(p, st);
    }
    s_flush(p);
}

/* Answers the oldest pending request. */
static void s_answer(s_pub_t *p, s_status_t st, char *text)
{
    for (size_t i = 0; i < p->count; i++) {
        s_slot_t *s = &p->ring[(p->head + i) % S_WINDOW];
        if (s->status == S_PENDING) {
            s->status = st;
            s->text = text;
            p->inflight--;
            s_count(p, st);
            s_flush(p);
            return;
        }
    }
    fprintf(stderr, "kefuctl: unexpected reply from the broker: %s\n", text);
    free(text);
}

/* Every request still waiting gets "error not confirmed: <why>"; nothing more is sent. */
static void s_fail_pending(s_pub_t *p, const char *why)
{
    while (p->inflight > 0)
        s_answer(p, S_ERR, kf_xasprintf("error not confirmed: %s", why));
    p->stopped = true;
}

/* ------------------------------------------------------------------ the broker */

static bool s_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    return strncmp(text, word, n) == 0 && (text[n] == ' ' || text[n] == '\0');
}

static s_status_t s_classify(const char *text)
{
    if (s_word(text, "ok"))
        return S_OK;
    if (s_word(text, "duplicate"))
        return S_DUP;
    if (s_word(text, "rejected"))
        return S_REJ;
    return S_ERR; /* "error ..." and anything this version does not know */
}

/* Reads one reply: its first non-empty frame (the broker sends exactly one frame; an
 * empty REQ-style delimiter in front of it is tolerated). */
static int s_recv_reply(s_pub_t *p, int flags)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, p->sock, flags) < 0) {
        zmq_msg_close(&msg);
        return KF_ERR;
    }
    char *text = NULL;
    for (;;) {
        if (!text && zmq_msg_size(&msg) > 0)
            text = kf_xstrndup(zmq_msg_data(&msg), zmq_msg_size(&msg));
        if (!zmq_msg_more(&msg) || zmq_msg_recv(&msg, p->sock, 0) < 0)
            break;
    }
    zmq_msg_close(&msg);
    if (!text)
        text = kf_xstrdup("error empty reply from the broker");
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    s_answer(p, s_classify(text), text);
    return KF_OK;
}

static void s_drain(s_pub_t *p)
{
    while (p->inflight > 0 && s_recv_reply(p, ZMQ_DONTWAIT) == KF_OK)
        ;
}

/* Waits for replies (and for input on fd when fd >= 0). Returns 1 when fd is readable,
 * 0 otherwise, -1 when the wait failed (timeout, signal): pending requests are failed. */
static int s_wait(s_pub_t *p, int fd)
{
    zmq_pollitem_t items[2] = {{p->sock, 0, ZMQ_POLLIN, 0}, {NULL, fd, ZMQ_POLLIN, 0}};
    long timeout = -1;
    if (p->inflight > 0) {
        int64_t left = p->wait_since + p->timeout_ms - kf_mono_ms();
        if (left <= 0) {
            char why[300];
            snprintf(why, sizeof(why), "no reply from broker at %s", p->endpoint);
            s_fail_pending(p, why);
            return -1;
        }
        timeout = (long)left;
    } else if (fd < 0) {
        return 0;
    }
    int rc = zmq_poll(items, fd >= 0 ? 2 : 1, timeout);
    if (rc < 0 && (errno != EINTR || kefuctl_interrupted())) {
        s_fail_pending(p, errno == EINTR ? "interrupted" : zmq_strerror(errno));
        return -1;
    }
    if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
        s_drain(p);
    return fd >= 0 && items[1].revents ? 1 : 0;
}

/* ------------------------------------------------------------------ one event */

/* Sends [topic][envelope]; KF_ERR with errno. */
static int s_send(s_pub_t *p, kf_env_t *env)
{
    /* the publisher's part of the envelope, when the JSON left it out */
    char *source = env->source;
    if (!env->has_published_at) {
        env->has_published_at = 1;
        env->published_at = kf_wall_ms();
    }
    if (!source)
        env->source = "kefuctl";
    if (p->backfill) {
        env->has_backfill = 1;
        env->backfill = 1;
    }
    size_t len = 0;
    uint8_t *buf = kf_env_pack(env, &len);
    env->source = source; /* the envelope owns only its own strings */
    int rc = KF_ERR;
    if (zmq_send(p->sock, env->topic, strlen(env->topic), ZMQ_SNDMORE) >= 0 &&
        zmq_send(p->sock, buf, len, 0) >= 0)
        rc = KF_OK;
    free(buf);
    return rc;
}

/* --fire has no broker answer: check the event here, so that a bad one is not silent. */
static char *s_fire_check(kf_env_t *env)
{
    char err[512];
    kf_reject_t why = kf_proto_validate(env, env->topic, err, sizeof(err));
    return why == KF_REJ_NONE ? NULL : kf_xasprintf("rejected %s: %s", kf_reject_name(why), err);
}

/* Parses and sends one event; its result joins the queue. lineno 0: not in --file mode. */
static void s_submit(s_pub_t *p, const char *text, size_t len, unsigned lineno)
{
    char err[512], where[32] = "";
    if (lineno)
        snprintf(where, sizeof(where), "line %u: ", lineno);
    p->n++;
    kf_env_t *env = kf_json_parse_event(text, len, p->file ? NULL : p->topic, err, sizeof(err));
    if (env && (!env->topic || !*env->topic)) {
        snprintf(err, sizeof(err), "missing key 'topic'");
        kf_env_free(env);
        env = NULL;
    }
    if (!env) {
        s_push(p, S_REJ, kf_xasprintf("%srejected bad_json: %s", where, err));
        return;
    }
    char *bad = p->fire ? s_fire_check(env) : NULL;
    if (bad) {
        s_push(p, S_REJ, kf_xasprintf("%s%s", where, bad));
        free(bad);
    } else if (s_send(p, env) != KF_OK) {
        s_push(p, S_ERR, kf_xasprintf("%serror not confirmed: cannot send to %s: %s", where,
                                      p->endpoint, zmq_strerror(errno)));
    } else {
        s_push(p, p->fire ? S_OK : S_PENDING, NULL); /* --fire: nothing to print */
    }
    kf_env_free(env);
}

/* ------------------------------------------------------------------ NDJSON input */

/* Reads once more from the input (may block for --fire). */
static void s_reader_fill(s_reader_t *r)
{
    if (r->cap - r->len < S_READ_CHUNK + 1) {
        r->cap = r->cap ? r->cap * 2 : 2 * S_READ_CHUNK;
        r->buf = kf_xrealloc(r->buf, r->cap);
    }
    ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len - 1);
    if (n < 0 && errno == EINTR)
        return; /* the caller looks at kefuctl_interrupted() */
    if (n < 0 || r->len - r->pos > S_MAX_LINE) {
        if (n < 0)
            fprintf(stderr, "kefuctl: cannot read %s: %s\n", r->name, strerror(errno));
        else
            fprintf(stderr, "kefuctl: %s: line %u is longer than %u bytes\n", r->name,
                    r->lineno + 1, S_MAX_LINE);
        r->eof = r->failed = true;
        r->pos = r->len;
        return;
    }
    r->len += (size_t)n;
    r->buf[r->len] = '\0';
    r->eof = n == 0;
}

static bool s_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* The next non-blank line: 1 with *line (NUL-terminated, valid until the next call),
 * 0 when more input is needed, -1 at the end of the input. */
static int s_reader_line(s_reader_t *r, char **line, size_t *len)
{
    for (;;) {
        char *start = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (!nl && !r->eof) {
            if (r->pos > 0) { /* keep the partial line at the front */
                memmove(r->buf, start, avail);
                r->len = avail;
                r->pos = 0;
            }
            return 0;
        }
        if (!nl && avail == 0)
            return -1;
        size_t n = nl ? (size_t)(nl - start) : avail;
        r->pos += n + (nl ? 1 : 0);
        r->lineno++;
        start[n] = '\0';
        if (n > 0 && start[n - 1] == '\r')
            start[--n] = '\0';
        if (s_blank(start, n))
            continue;
        *line = start;
        *len = n;
        return 1;
    }
}

static int s_reader_open(s_reader_t *r, const char *path)
{
    memset(r, 0, sizeof(*r));
    r->name = strcmp(path, "-") == 0 ? "stdin" : path;
    r->fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        fprintf(stderr, "kefuctl: cannot open %s: %s\n", path, strerror(errno));
        return KF_ERR;
    }
    r->cap = 2 * S_READ_CHUNK;
    r->buf = kf_xmalloc(r->cap);
    return KF_OK;
}

static void s_reader_close(s_reader_t *r)
{
    if (r->fd > STDIN_FILENO)
        close(r->fd);
    free(r->buf);
}

/* ------------------------------------------------------------------ the runs */

/* --file: submit while the window has room, serve replies while input is slow. */
static void s_run_stream(s_pub_t *p, s_reader_t *r)
{
    while (!p->stopped) {
        char *line;
        size_t len;
        int more = 0;
        while (p->count < S_WINDOW && (more = s_reader_line(r, &line, &len)) == 1)
            s_submit(p, line, len, r->lineno);
        if (more < 0 && p->count == 0)
            return;
        bool want_input = p->count < S_WINDOW && more == 0;
        if (p->fire) {
            s_reader_fill(r); /* no replies to serve: just block on input */
            p->stopped = kefuctl_interrupted();
            continue;
        }
        int ready = s_wait(p, want_input ? r->fd : -1);
        if (ready > 0)
            s_reader_fill(r);
    }
}

/* One event (TOPIC JSON): JSON is the text itself, @file, or - for stdin. */
static int s_run_single(s_pub_t *p)
{
    const char *text = p->json;
    char *owned = NULL;
    size_t len = strlen(text);
    if (text[0] == '@' || strcmp(text, "-") == 0) {
        char err[512];
        owned = kefuctl_read_file(text[0] == '@' ? text + 1 : text, &len, err, sizeof(err));
        if (!owned) {
            fprintf(stderr, "kefuctl: %s\n", err);
            return KF_ERR;
        }
        text = owned;
    }
    s_submit(p, text, len, 0);
    free(owned);
    while (p->count > 0 && s_wait(p, -1) >= 0)
        ;
    return KF_OK;
}

static int s_sockopt(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof(value));
}

static int s_open(s_pub_t *p, const kf_conf_t *conf)
{
    p->endpoint = p->fire ? conf->bus_publish : conf->bus_confirm;
    p->zctx = zmq_ctx_new();
    p->sock = p->zctx ? zmq_socket(p->zctx, p->fire ? ZMQ_PUB : ZMQ_DEALER) : NULL;
    if (!p->sock)
        goto fail;
    int linger = p->fire ? (int)(p->timeout_ms > S_FIRE_LINGER_MS ? p->timeout_ms
                                                                  : S_FIRE_LINGER_MS) : 0;
    if (s_sockopt(p->sock, ZMQ_LINGER, linger) < 0 ||
        s_sockopt(p->sock, ZMQ_SNDHWM, p->fire ? 0 : S_HWM) < 0 || /* PUB: never drop */
        s_sockopt(p->sock, ZMQ_RCVHWM, S_HWM) < 0 ||
        s_sockopt(p->sock, ZMQ_SNDTIMEO, (int)p->timeout_ms) < 0 ||
        zmq_connect(p->sock, p->endpoint) < 0)
        goto fail;
    if (p->fire)
        kefuctl_sleep_ms(S_SLOW_JOINER_MS);
    return KF_OK;
fail:
    fprintf(stderr, "kefuctl: cannot connect to %s: %s\n", p->endpoint, zmq_strerror(errno));
    return KF_ERR;
}

static void s_close(s_pub_t *p)
{
    if (p->sock)
        zmq_close(p->sock);
    if (p->zctx)
        zmq_ctx_term(p->zctx);
    for (size_t i = 0; i < p->count; i++)
        free(p->ring[(p->head + i) % S_WINDOW].text);
}

/* ------------------------------------------------------------------ the verb */

static int s_parse_args(s_pub_t *p, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"file", required_argument, NULL, 'f'},
        {"timeout", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"fire", no_argument, NULL, 'F'},
        {"backfill", no_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const kefuctl_verb_t *v = &kefuctl_verb_pub;
    int c;
    while ((c = getopt_long(argc, argv, ":f:t:qh", s_long, NULL)) != -1) {
        switch (c) {
        case 'f':
            p->file = optarg;
            break;
        case 't':
            if (kefuctl_parse_seconds(optarg, 0.001, 86400, &p->timeout_ms) != KF_OK)
                return kefuctl_usage_error(v, "--timeout: '%s' is not a number of seconds",
                                           optarg);
            break;
        case 'q':
            p->quiet = true;
            break;
        case 'F':
            p->fire = true;
            break;
        case 'B':
            p->backfill = true;
            break;
        case 'h':
            kefuctl_print_usage(stdout, v, true);
            return KEFUCTL_OK;
        default:
            return kefuctl_getopt_error(v, c, argv);
        }
    }
    int npos = argc - optind;
    if (p->file && npos > 0)
        return kefuctl_usage_error(v, "--file takes no TOPIC or JSON arguments");
    if (!p->file && npos != 2)
        return kefuctl_usage_error(v, npos < 2 ? "expected TOPIC and JSON (or --file F)"
                                               : "too many arguments (quote the JSON)");
    if (!p->file) {
        p->topic = argv[optind];
        p->json = argv[optind + 1];
    }
    return -1;
}

static int s_pub(kefuctl_t *ctl, int argc, char **argv)
{
    s_pub_t *p = kf_xcalloc(1, sizeof(*p));
    s_reader_t r = {.fd = -1};
    p->timeout_ms = 5000;
    int rc = s_parse_args(p, argc, argv);
    if (rc >= 0)
        goto done;
    const kf_conf_t *conf = kefuctl_conf(ctl);
    rc = KEFUCTL_USAGE;
    if (!conf)
        goto done;
    rc = KEFUCTL_FAIL;
    if ((p->file && s_reader_open(&r, p->file) != KF_OK) || s_open(p, conf) != KF_OK)
        goto done;
    if (p->file)
        s_run_stream(p, &r);
    else if (s_run_single(p) != KF_OK)
        goto done;
    if (p->quiet && p->fire)
        fprintf(stderr, "published %lu (fire-and-forget, not confirmed): sent %lu, rejected %lu, "
                        "error %lu\n", p->n, p->ok, p->rej, p->err);
    else if (p->quiet)
        fprintf(stderr, "published %lu: ok %lu, duplicate %lu, rejected %lu, error %lu\n", p->n,
                p->ok, p->dup, p->rej, p->err);
    rc = p->rej || p->err || p->count || r.failed ? KEFUCTL_FAIL : KEFUCTL_OK;
done:
    s_close(p);
    if (r.fd >= 0)
        s_reader_close(&r);
    free(p);
    return rc;
}

const kefuctl_verb_t kefuctl_verb_pub = {
    .name = "pub",
    .fn = s_pub,
    .synopsis = "pub [--timeout S] [--quiet] [--fire] [--backfill] TOPIC JSON\n"
                "pub [--timeout S] [--quiet] [--fire] [--backfill] --file F",
    .help = "    Confirmed publish: prints the broker's answer per event, in input order:\n"
            "    'ok SEQ', 'duplicate SEQ', 'rejected REASON: DETAIL' or 'error DETAIL'.\n"
            "    JSON is one flat event object, '@FILE' or '-' (stdin); its \"topic\" may be\n"
            "    left out (TOPIC is used). --file F (F may be '-') reads NDJSON: one event per\n"
            "    line, each with its \"topic\"; blank lines are skipped.\n"
            "    --timeout S  give up when the broker has not answered for S seconds (default 5)\n"
            "    --quiet      print only failures, then a summary line on stderr\n"
            "    --fire       fire-and-forget on [bus] publish: nothing is confirmed\n"
            "    --backfill   history being imported: the events build the workers' state and\n"
            "                 emit nothing at once (what they plan fires later while fresh)\n"
            "    Exit 1 if any event was rejected, failed or not confirmed.",
};
