/* kefuctl pub: confirmed publish (DESIGN §3.1) of one event or an NDJSON stream.
 *
 * Requests go out on a DEALER socket to [bus] confirm as [topic][Envelope]; the broker
 * answers each with one frame that names the event: "ok <seq> <event_id>", "duplicate <seq>
 * <event_id>", "rejected <reason> <event_id>: <detail>" or "error <event_id>: <detail>".
 * Answers are matched to requests by event_id (an answer without one, from an older broker,
 * goes to the oldest request waiting). Up to S_WINDOW requests are in flight; results are
 * printed in input order (a line that is not valid JSON takes its place in the queue with
 * its bad_json answer), as "ok <seq>", "duplicate <seq>", "rejected <reason>: <detail>".
 *
 * Nothing is given up while the broker makes progress:
 *   - "error" (the broker could not journal the event: Redis unavailable) is not final: the
 *     event is sent again, under the same event_id, after a backoff (S_RETRY_MS, doubling);
 *   - when the connection to the broker is lost (a restart, or its heartbeats unanswered for
 *     S_HB_TIMEOUT_MS), the socket is replaced by a new one, with nothing queued in it, and
 *     every event still waiting is sent again, in input order, before any new one: the
 *     events are journaled in input order, once each (the door answers "duplicate" for
 *     those the first send journaled; such an answer to an event sent again is printed ok);
 *   - only when no event has been answered for --timeout are the waiting ones failed,
 *     "error not confirmed: ...".
 * --fire publishes on a PUB socket to [bus] publish instead, without confirmation. */
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
#define S_BUCKETS 2048         /* the waiting requests' index by event_id */
#define S_HWM (S_WINDOW * 4)   /* socket high-water marks: never the limit */
#define S_READ_CHUNK 65536
#define S_MAX_LINE (16u << 20) /* a longer NDJSON line is an input error */
#define S_SLOW_JOINER_MS 200   /* --fire: let the connection come up before sending */
#define S_FIRE_LINGER_MS 2000  /* --fire: time to flush at exit (at least) */
#define S_RETRY_MS 200         /* the first re-send after an "error" answer */
#define S_RETRY_MAX_MS 3000
#define S_HB_IVL_MS 1000       /* ZMTP heartbeats: a broker that does not answer them for */
#define S_HB_TIMEOUT_MS 4000   /* this long is taken as gone (the connection is replaced) */
#define S_DEFAULT_TIMEOUT_MS 30000

typedef enum { S_PENDING, S_OK, S_DUP, S_REJ, S_ERR } s_status_t;

typedef struct {
    s_status_t status;
    char *text;          /* the line to print once known (NULL: nothing to print) */
    /* S_PENDING: the request, to send again */
    char *event_id, *topic;
    uint8_t *msg;
    size_t msglen;
    int sends;           /* times sent */
    int64_t retry_at;    /* > 0: to be sent again then (it was answered "error") */
    int64_t retry_ms;
    char *last_error;    /* the last "error" answer's detail */
    int hnext;           /* the next slot of its index bucket, -1 at the end */
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
    void *zctx, *sock, *mon;         /* mon: the socket's monitor (confirmed publish) */
    unsigned nsock;                  /* sockets opened: their monitors' names */
    bool connected, was_connected;
    s_slot_t ring[S_WINDOW];         /* in input order: head is the oldest */
    int bucket[S_BUCKETS];           /* event_id -> the first waiting slot, -1: none */
    size_t head, count, inflight;
    int64_t progress_at;             /* the last answer, or when the window stopped being empty */
    bool stopped;                    /* timed out or interrupted: send nothing more */
    unsigned long n, ok, dup, rej, err, resent;
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

/* ------------------------------------------------------------------ waiting requests by id */

static size_t s_bucket_of(const char *id, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)id[i]) * 16777619u;
    return h % S_BUCKETS;
}

static void s_index_add(s_pub_t *p, size_t i)
{
    s_slot_t *s = &p->ring[i];
    int *b = &p->bucket[s_bucket_of(s->event_id, strlen(s->event_id))];
    s->hnext = *b;
    *b = (int)i;
}

static void s_index_del(s_pub_t *p, size_t i)
{
    s_slot_t *s = &p->ring[i];
    int *link = &p->bucket[s_bucket_of(s->event_id, strlen(s->event_id))];
    while (*link >= 0 && *link != (int)i)
        link = &p->ring[*link].hnext;
    if (*link == (int)i)
        *link = s->hnext;
    s->hnext = -1;
}

/* The oldest waiting slot for event_id id[0..len), or -1; len 0: the oldest waiting one. */
static int s_find(const s_pub_t *p, const char *id, size_t len)
{
    if (len == 0) {
        for (size_t k = 0; k < p->count; k++) {
            size_t i = (p->head + k) % S_WINDOW;
            if (p->ring[i].status == S_PENDING)
                return (int)i;
        }
        return -1;
    }
    int best = -1;
    size_t best_age = S_WINDOW;
    for (int i = p->bucket[s_bucket_of(id, len)]; i >= 0; i = p->ring[i].hnext) {
        const s_slot_t *s = &p->ring[i];
        if (strlen(s->event_id) != len || memcmp(s->event_id, id, len) != 0)
            continue;
        size_t age = ((size_t)i + S_WINDOW - p->head) % S_WINDOW;
        if (age < best_age)
            best = i, best_age = age;
    }
    return best;
}

static void s_slot_release(s_slot_t *s)
{
    free(s->event_id);
    free(s->topic);
    free(s->msg);
    free(s->last_error);
    s->event_id = s->topic = s->last_error = NULL;
    s->msg = NULL;
}

/* Queues a result (S_PENDING: waiting for the broker; the slot's request is given). */
static void s_push(s_pub_t *p, s_status_t st, char *text)
{
    s_slot_t *s = &p->ring[(p->head + p->count) % S_WINDOW];
    s->status = st;
    s->text = text;
    p->count++;
    if (st != S_PENDING)
        s_count(p, st);
    s_flush(p);
}

/* The final answer of waiting slot i. */
static void s_settle(s_pub_t *p, size_t i, s_status_t st, char *text)
{
    s_slot_t *s = &p->ring[i];
    s_index_del(p, i);
    s_slot_release(s);
    s->status = st;
    s->text = text;
    p->inflight--;
    p->progress_at = kf_mono_ms();
    s_count(p, st);
    s_flush(p);
}

/* Every request still waiting gets "error not confirmed: <why>"; nothing more is sent. */
static void s_fail_pending(s_pub_t *p, const char *why)
{
    int i;
    while ((i = s_find(p, NULL, 0)) >= 0) {
        s_slot_t *s = &p->ring[i];
        char *text = s->last_error ? kf_xasprintf("error not confirmed: %s (last answer: %s)", why,
                                                  s->last_error)
                                   : kf_xasprintf("error not confirmed: %s", why);
        s_settle(p, (size_t)i, S_ERR, text);
    }
    p->stopped = true;
}

/* ------------------------------------------------------------------ the broker */

/* Sends slot s's request; KF_ERR with errno. */
static int s_send_slot(s_pub_t *p, s_slot_t *s)
{
    if (zmq_send(p->sock, s->topic, strlen(s->topic), ZMQ_SNDMORE) < 0 ||
        zmq_send(p->sock, s->msg, s->msglen, 0) < 0)
        return KF_ERR;
    s->sends++;
    s->retry_at = 0;
    return KF_OK;
}

/* Sends every waiting request again, in input order (a new connection). */
static void s_resend_all(s_pub_t *p)
{
    for (size_t k = 0; k < p->count && !p->stopped; k++) {
        s_slot_t *s = &p->ring[(p->head + k) % S_WINDOW];
        if (s->status != S_PENDING)
            continue;
        if (s_send_slot(p, s) != KF_OK) {
            char why[300];
            snprintf(why, sizeof(why), "cannot send to %s: %s", p->endpoint, zmq_strerror(errno));
            s_fail_pending(p, why);
            return;
        }
        p->resent++;
    }
}

/* Sends again the requests answered "error" whose backoff is over; returns the earliest
 * backoff still running (0: none). */
static int64_t s_retry_due(s_pub_t *p)
{
    int64_t now = kf_mono_ms(), next = 0;
    for (size_t k = 0; k < p->count && !p->stopped; k++) {
        s_slot_t *s = &p->ring[(p->head + k) % S_WINDOW];
        if (s->status != S_PENDING || s->retry_at == 0)
            continue;
        if (s->retry_at > now || !p->connected) {
            if (next == 0 || s->retry_at < next)
                next = s->retry_at;
            continue;
        }
        if (s_send_slot(p, s) == KF_OK)
            p->resent++;
        else
            s->retry_at = now + s->retry_ms;
    }
    return next;
}

static bool s_word(const char *text, const char *word, const char **rest)
{
    size_t n = strlen(word);
    if (strncmp(text, word, n) != 0 || (text[n] != ' ' && text[n] != '\0'))
        return false;
    *rest = text[n] ? text + n + 1 : text + n;
    return true;
}

/* "rejected <reason> <event_id>: <detail>": the waiting slot it names (the event_id may hold
 * ": " itself: each split is tried), *detail after it; an older broker's "rejected
 * <reason>: <detail>" goes to the oldest waiting slot. */
static int s_find_rejected(const s_pub_t *p, const char *rest, const char **reason_end,
                           const char **detail)
{
    const char *sp = strchr(rest, ' ');
    const char *colon = strstr(rest, ": ");
    if (!sp || (colon && colon < sp)) { /* no event_id */
        *reason_end = colon ? colon : rest + strlen(rest);
        *detail = colon ? colon + 2 : "";
        return s_find(p, NULL, 0);
    }
    *reason_end = sp;
    const char *id = sp + 1;
    for (const char *c = strstr(id, ": "); c; c = strstr(c + 1, ": ")) {
        int i = s_find(p, id, (size_t)(c - id));
        if (i >= 0) {
            *detail = c + 2;
            return i;
        }
    }
    *detail = strstr(id, ": ") ? strstr(id, ": ") + 2 : "";
    return s_find(p, NULL, 0); /* "-": an event the broker could not read */
}

/* One answer from the broker. */
static void s_on_answer(s_pub_t *p, const char *text)
{
    const char *rest;
    s_status_t st;
    if (s_word(text, "ok", &rest))
        st = S_OK;
    else if (s_word(text, "duplicate", &rest))
        st = S_DUP;
    else if (s_word(text, "rejected", &rest))
        st = S_REJ;
    else if (s_word(text, "error", &rest))
        st = S_ERR;
    else {
        fprintf(stderr, "kefuctl: unexpected answer from the broker: %s\n", text);
        return;
    }
    int i;
    if (st == S_OK || st == S_DUP) {
        const char *sp = strchr(rest, ' ');
        unsigned long long seq = strtoull(rest, NULL, 10);
        i = sp ? s_find(p, sp + 1, strlen(sp + 1)) : s_find(p, NULL, 0);
        if (i < 0)
            return; /* an answer to an event sent twice, or already failed */
        /* an event sent again and answered duplicate was journaled by an earlier send */
        if (st == S_DUP && p->ring[i].sends > 1)
            st = S_OK;
        s_settle(p, (size_t)i, st, kf_xasprintf("%s %llu", st == S_OK ? "ok" : "duplicate", seq));
    } else if (st == S_REJ) {
        const char *reason_end, *detail;
        i = s_find_rejected(p, rest, &reason_end, &detail);
        if (i >= 0)
            s_settle(p, (size_t)i, S_REJ, kf_xasprintf("rejected %.*s: %s",
                                                       (int)(reason_end - rest), rest, detail));
    } else { /* not journaled: sent again after a backoff */
        const char *colon = strstr(rest, ": ");
        i = colon ? s_find(p, rest, (size_t)(colon - rest)) : -1;
        if (i < 0)
            i = s_find(p, NULL, 0);
        if (i < 0)
            return;
        s_slot_t *s = &p->ring[i];
        free(s->last_error);
        s->last_error = kf_xstrdup(colon ? colon + 2 : rest);
        s->retry_ms = s->retry_ms ? (s->retry_ms * 2 > S_RETRY_MAX_MS ? S_RETRY_MAX_MS
                                                                       : s->retry_ms * 2)
                                  : S_RETRY_MS;
        s->retry_at = kf_mono_ms() + s->retry_ms;
    }
}

/* Reads one answer: its first non-empty frame (the broker sends exactly one frame; an
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
        return KF_OK;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    s_on_answer(p, text);
    free(text);
    return KF_OK;
}

static void s_drain(s_pub_t *p)
{
    while (p->inflight > 0 && s_recv_reply(p, ZMQ_DONTWAIT) == KF_OK)
        ;
}

static int s_sockopt(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof(value));
}

/* The confirm socket and its monitor (connected, disconnected). */
static int s_open_confirm(s_pub_t *p)
{
    char mon[64];
    snprintf(mon, sizeof(mon), "inproc://kefuctl-pub-mon-%u", p->nsock++);
    p->sock = zmq_socket(p->zctx, ZMQ_DEALER);
    if (!p->sock || s_sockopt(p->sock, ZMQ_LINGER, 0) < 0 ||
        s_sockopt(p->sock, ZMQ_SNDHWM, S_HWM) < 0 || s_sockopt(p->sock, ZMQ_RCVHWM, S_HWM) < 0 ||
        s_sockopt(p->sock, ZMQ_SNDTIMEO, (int)p->timeout_ms) < 0 ||
        s_sockopt(p->sock, ZMQ_HEARTBEAT_IVL, S_HB_IVL_MS) < 0 ||
        s_sockopt(p->sock, ZMQ_HEARTBEAT_TIMEOUT, S_HB_TIMEOUT_MS) < 0 ||
        zmq_socket_monitor(p->sock, mon, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) <
            0)
        return KF_ERR;
    p->mon = zmq_socket(p->zctx, ZMQ_PAIR);
    if (!p->mon || s_sockopt(p->mon, ZMQ_LINGER, 0) < 0 || zmq_connect(p->mon, mon) < 0)
        return KF_ERR;
    p->connected = false;
    return zmq_connect(p->sock, p->endpoint) < 0 ? KF_ERR : KF_OK;
}

static void s_close_confirm(s_pub_t *p)
{
    if (p->sock) {
        zmq_socket_monitor(p->sock, NULL, 0);
        zmq_close(p->sock);
    }
    if (p->mon)
        zmq_close(p->mon);
    p->sock = p->mon = NULL;
}

/* The monitor's events: a lost connection replaces the socket (libzmq would deliver what it
 * still queues after what the broker lost) and sends every waiting event again. */
static void s_on_monitor(s_pub_t *p)
{
    bool lost = false;
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, p->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&event, zmq_msg_data(&ev), 2);
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&ev);
            if (zmq_msg_recv(&ev, p->mon, 0) < 0)
                more = false;
            else
                more = zmq_msg_more(&ev);
            zmq_msg_close(&ev);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            p->connected = p->was_connected = true;
        else if (event == ZMQ_EVENT_DISCONNECTED && p->connected)
            lost = true;
    }
    if (!lost || p->stopped)
        return;
    fprintf(stderr, "kefuctl: lost the connection to the broker at %s: sending the %zu "
                    "unanswered event%s again\n", p->endpoint, p->inflight,
            p->inflight == 1 ? "" : "s");
    s_close_confirm(p);
    if (s_open_confirm(p) != KF_OK) {
        char why[300];
        snprintf(why, sizeof(why), "cannot reconnect to %s: %s", p->endpoint, zmq_strerror(errno));
        s_fail_pending(p, why);
        return;
    }
    s_resend_all(p);
}

/* Waits for answers (and for input on fd when fd >= 0). Returns 1 when fd is readable,
 * 0 otherwise, -1 when the wait failed (no progress for --timeout, a signal): the waiting
 * requests are failed. */
static int s_wait(s_pub_t *p, int fd)
{
    zmq_pollitem_t items[3] = {{p->sock, 0, ZMQ_POLLIN, 0}, {p->mon, 0, ZMQ_POLLIN, 0},
                               {NULL, fd, ZMQ_POLLIN, 0}};
    long timeout = -1;
    if (p->inflight > 0) {
        int64_t now = kf_mono_ms();
        int64_t left = p->progress_at + p->timeout_ms - now;
        if (left <= 0) {
            char why[300];
            snprintf(why, sizeof(why), "no answer from the broker at %s for %.1f s%s",
                     p->endpoint, (double)p->timeout_ms / 1000.0,
                     p->connected ? "" : p->was_connected ? " (connection lost)"
                                                          : " (never connected)");
            s_fail_pending(p, why);
            return -1;
        }
        int64_t retry = s_retry_due(p);
        if (retry > 0 && retry - now < left)
            left = retry - now > 0 ? retry - now : 1;
        timeout = (long)left;
    } else if (fd < 0) {
        return 0;
    }
    int rc = zmq_poll(items, fd >= 0 ? 3 : 2, timeout);
    if (rc < 0 && (errno != EINTR || kefuctl_interrupted())) {
        s_fail_pending(p, errno == EINTR ? "interrupted" : zmq_strerror(errno));
        return -1;
    }
    if (rc > 0 && (items[1].revents & ZMQ_POLLIN))
        s_on_monitor(p);
    if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
        s_drain(p);
    return fd >= 0 && items[2].revents ? 1 : 0;
}

/* ------------------------------------------------------------------ one event */

/* The request of env into slot s ([topic][envelope]). */
static void s_pack(s_pub_t *p, kf_env_t *env, s_slot_t *s)
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
    s->msg = kf_env_pack(env, &s->msglen);
    env->source = source; /* the envelope owns only its own strings */
    s->topic = kf_xstrdup(env->topic);
    s->event_id = kf_xstrdup(env->event_id ? env->event_id : "");
    s->sends = 0;
    s->retry_at = s->retry_ms = 0;
    s->last_error = NULL;
    s->hnext = -1;
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
        kf_env_free(env);
        return;
    }
    size_t i = (p->head + p->count) % S_WINDOW;
    s_slot_t *s = &p->ring[i];
    s_pack(p, env, s);
    kf_env_free(env);
    if (s_send_slot(p, s) != KF_OK) {
        s_slot_release(s);
        s_push(p, S_ERR, kf_xasprintf("%serror not confirmed: cannot send to %s: %s", where,
                                      p->endpoint, zmq_strerror(errno)));
    } else if (p->fire) {
        s_slot_release(s);
        s_push(p, S_OK, NULL); /* nothing to print */
    } else {
        s_index_add(p, i);
        if (p->inflight++ == 0)
            p->progress_at = kf_mono_ms();
        s_push(p, S_PENDING, NULL);
    }
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

static int s_open(s_pub_t *p, const kf_conf_t *conf)
{
    p->endpoint = p->fire ? conf->bus_publish : conf->bus_confirm;
    for (size_t i = 0; i < S_BUCKETS; i++)
        p->bucket[i] = -1;
    p->zctx = zmq_ctx_new();
    if (!p->zctx)
        goto fail;
    if (!p->fire) {
        if (s_open_confirm(p) != KF_OK)
            goto fail;
        return KF_OK;
    }
    p->sock = zmq_socket(p->zctx, ZMQ_PUB);
    int linger = (int)(p->timeout_ms > S_FIRE_LINGER_MS ? p->timeout_ms : S_FIRE_LINGER_MS);
    if (!p->sock || s_sockopt(p->sock, ZMQ_LINGER, linger) < 0 ||
        s_sockopt(p->sock, ZMQ_SNDHWM, 0) < 0 || /* PUB: never drop */
        s_sockopt(p->sock, ZMQ_SNDTIMEO, (int)p->timeout_ms) < 0 ||
        zmq_connect(p->sock, p->endpoint) < 0)
        goto fail;
    kefuctl_sleep_ms(S_SLOW_JOINER_MS);
    return KF_OK;
fail:
    fprintf(stderr, "kefuctl: cannot connect to %s: %s\n", p->endpoint, zmq_strerror(errno));
    return KF_ERR;
}

static void s_close(s_pub_t *p)
{
    if (p->fire) {
        if (p->sock)
            zmq_close(p->sock);
        p->sock = NULL;
    } else {
        s_close_confirm(p);
    }
    if (p->zctx)
        zmq_ctx_term(p->zctx);
    for (size_t i = 0; i < p->count; i++) {
        s_slot_t *s = &p->ring[(p->head + i) % S_WINDOW];
        free(s->text);
        s_slot_release(s);
    }
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
    p->timeout_ms = S_DEFAULT_TIMEOUT_MS;
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
            "    Answers are matched by event_id. An event the broker could not journal yet\n"
            "    (Redis unavailable) is sent again after a backoff, and after a lost connection\n"
            "    (a broker restart) every unanswered event is sent again, in order, under the\n"
            "    same event_id: an event sent again and answered duplicate is printed ok.\n"
            "    JSON is one flat event object, '@FILE' or '-' (stdin); its \"topic\" may be\n"
            "    left out (TOPIC is used). --file F (F may be '-') reads NDJSON: one event per\n"
            "    line, each with its \"topic\"; blank lines are skipped.\n"
            "    --timeout S  give up when no event has been answered for S seconds (default 30)\n"
            "    --quiet      print only failures, then a summary line on stderr\n"
            "    --fire       fire-and-forget on [bus] publish: nothing is confirmed\n"
            "    --backfill   history being imported: the events build the workers' state and\n"
            "                 emit nothing at once (what they plan fires later while fresh)\n"
            "    Exit 1 if any event was rejected, failed or not confirmed.",
};
