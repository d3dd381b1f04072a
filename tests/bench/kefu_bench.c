/* kefu-bench: the load tools of tests/bench/run (never a unit test, never in CTest).
 *
 *   kefu-bench proxy XSUB_EP XPUB_EP            the reference: a bare zmq_proxy, forever
 *   kefu-bench pub EP N [--rate R] [--run ID] [--nodrop]
 *                                                PUB: N order.paid events, [topic][Envelope]
 *   kefu-bench sub EP N [--idle-ms MS] [--first-ms MS]
 *                                                SUB: counts order.paid events until N or idle
 *   kefu-bench confirm EP N [--window W] [--run ID]
 *                                                DEALER: confirmed publish, W in flight
 *   kefu-bench http URL N INFLIGHT BODYFILE [--secret whsec_...]
 *                                                libcurl multi: N POSTs of BODYFILE, INFLIGHT
 *                                                at a time, keep-alive (no Redis)
 *
 * Every event is a valid, unique kefu.v1.Envelope of about 200 bytes, built once with the
 * generated protobuf-c structs; per message only the fixed-width digits of its event_id
 * change ("bench-<run>-<i, 10 digits>").
 *
 * A ZMQ_PUB drops messages when its pipe is full, however blocking its sends. With --nodrop the
 * publisher is a ZMQ_XPUB with ZMQ_XPUB_NODROP instead: the same frames on the wire, but a full
 * pipe blocks the sender, so all N events go through at the rate the receiver sustains.
 *
 * http is the reference of `tests/bench/run dispatch`: what kefu-dispatch does per delivery
 * minus Redis, its queues and its bookkeeping. Every request carries the headers dispatch
 * sends (Content-Type, an empty Expect, webhook-id "bench-<i>", webhook-timestamp, a
 * webhook-signature made with kf_webhook_header from --secret, else a dummy of the same size,
 * and user-agent kefu-dispatch/<version>), the same libcurl options, a fresh header list per
 * request, and INFLIGHT easy handles that keep their connections (HTTP/1.1 keep-alive, one
 * request per connection at a time, as dispatch's per-endpoint concurrency). It blocks in
 * curl_multi_poll. Results are printed as one line of words and numbers on stdout, e.g.
 * "received 1000000 seconds 1.234 eps 810372". */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <zmq.h>

#include "kf_proto.h"
#include "kf_webhook.h"

#define BENCH_HWM 100000 /* what the broker uses ([bus] hwm default) */
#define BENCH_TOPIC "order.paid"
#define BENCH_ENV_BYTES 200
#define ID_DIGITS 10

static void s_die(const char *what)
{
    fprintf(stderr, "kefu-bench: %s: %s\n", what, zmq_strerror(errno));
    exit(1);
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long long s_num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "kefu-bench: %s must be a non-negative integer, got '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void s_opt_int(void *sock, int opt, int v)
{
    if (zmq_setsockopt(sock, opt, &v, sizeof(v)) != 0)
        s_die("zmq_setsockopt");
}

static void s_hwm(void *sock)
{
    s_opt_int(sock, ZMQ_SNDHWM, BENCH_HWM);
    s_opt_int(sock, ZMQ_RCVHWM, BENCH_HWM);
}

/* ------------------------------------------------------------------ the events */

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t id_at; /* offset of the ID_DIGITS digits of the event_id inside buf */
} template_t;

/* Packs one realistic order.paid envelope whose reason is padded so that the whole envelope
 * is BENCH_ENV_BYTES long; the event_id ends in ID_DIGITS zeros to be overwritten. */
static template_t s_template(const char *run)
{
    char event_id[96], pad[BENCH_ENV_BYTES + 1];
    snprintf(event_id, sizeof(event_id), "bench-%s-%0*d", run, ID_DIGITS, 0);
    int64_t now = s_wall_ms();
    Kefu__V1__OrderStatus paid = KEFU__V1__ORDER_STATUS__INIT;
    paid.order_id = "T20261111093000123456789";
    paid.buyer_id = "tb-buyer-7f3a9c2e41";
    paid.has_amount_fen = 1;
    paid.amount_fen = 59900;
    paid.has_at = 1;
    paid.at = now;
    paid.reason = pad;
    Kefu__V1__Envelope env = KEFU__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.topic = BENCH_TOPIC;
    env.shop_id = "shop-hz-0001";
    env.has_occurred_at = 1;
    env.occurred_at = now;
    env.source = "kefu-bench";
    env.payload_case = KEFU__V1__ENVELOPE__PAYLOAD_ORDER_PAID;
    env.order_paid = &paid;
    static const char fill[] = "paid via alipay; bench padding to a realistic event size ";
    size_t n = 0;
    pad[0] = '\0';
    for (;;) {
        size_t size = kefu__v1__envelope__get_packed_size(&env);
        if (size >= BENCH_ENV_BYTES || n >= BENCH_ENV_BYTES)
            break;
        pad[n] = fill[n % (sizeof(fill) - 1)];
        pad[++n] = '\0';
    }
    template_t t;
    t.buf = kf_env_pack(&env, &t.len);
    size_t idlen = strlen(event_id);
    uint8_t *at = memmem(t.buf, t.len, event_id, idlen);
    if (!at) {
        fprintf(stderr, "kefu-bench: event_id not found in the packed template\n");
        exit(1);
    }
    t.id_at = (size_t)(at - t.buf) + idlen - ID_DIGITS;
    return t;
}

static void s_set_id(template_t *t, unsigned long long i)
{
    uint8_t *p = t->buf + t->id_at;
    for (int k = ID_DIGITS - 1; k >= 0; k--) {
        p[k] = (uint8_t)('0' + i % 10);
        i /= 10;
    }
}

static void s_default_run(char *run, size_t len)
{
    snprintf(run, len, "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());
}

/* ------------------------------------------------------------------ sub-commands */

static int s_proxy(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kefu-bench proxy XSUB_EP XPUB_EP\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *xsub = zmq_socket(ctx, ZMQ_XSUB);
    void *xpub = zmq_socket(ctx, ZMQ_XPUB);
    s_hwm(xsub);
    s_hwm(xpub);
    s_opt_int(xsub, ZMQ_LINGER, 0);
    s_opt_int(xpub, ZMQ_LINGER, 0);
    if (zmq_bind(xsub, argv[0]) != 0)
        s_die(argv[0]);
    if (zmq_bind(xpub, argv[1]) != 0)
        s_die(argv[1]);
    printf("proxy %s -> %s\n", argv[0], argv[1]);
    fflush(stdout);
    zmq_proxy(xsub, xpub, NULL); /* returns only when the context ends */
    return 0;
}

static int s_pub(int argc, char **argv)
{
    double rate = 0;
    bool nodrop = false;
    char run[64];
    s_default_run(run, sizeof(run));
    if (argc < 2)
        goto usage;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            rate = (double)s_num(argv[++i], "--rate");
        else if (strcmp(argv[i], "--nodrop") == 0)
            nodrop = true;
        else if (strcmp(argv[i], "--run") == 0 && i + 1 < argc)
            snprintf(run, sizeof(run), "%s", argv[++i]);
        else
            goto usage;
    }
    unsigned long long n = (unsigned long long)s_num(argv[1], "N");
    template_t t = s_template(run);
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, nodrop ? ZMQ_XPUB : ZMQ_PUB);
    s_opt_int(pub, ZMQ_SNDHWM, BENCH_HWM);
    s_opt_int(pub, ZMQ_LINGER, 10000); /* flush what is queued before exiting */
    if (nodrop)
        s_opt_int(pub, ZMQ_XPUB_NODROP, 1);
    if (zmq_connect(pub, argv[0]) != 0)
        s_die(argv[0]);
    s_sleep_ms(300); /* slow joiner: let the connection and subscriptions arrive */
    if (nodrop) { /* an XPUB sees the subscriptions: wait for one (10 s at most) */
        char sub[256];
        zmq_pollitem_t item = {pub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 10000) <= 0 || zmq_recv(pub, sub, sizeof(sub), 0) < 0) {
            fprintf(stderr, "kefu-bench: no subscription arrived at the publisher in 10 s\n");
            return 1;
        }
    }
    size_t tlen = strlen(BENCH_TOPIC);
    double t0 = s_now();
    for (unsigned long long i = 0; i < n; i++) {
        s_set_id(&t, i);
        if (zmq_send(pub, BENCH_TOPIC, tlen, ZMQ_SNDMORE) < 0 || zmq_send(pub, t.buf, t.len, 0) < 0)
            s_die("zmq_send");
        if (rate > 0 && (i & 255) == 255) {
            double ahead = (double)(i + 1) / rate - (s_now() - t0);
            if (ahead > 0.0005)
                s_sleep_ms((long)(ahead * 1000));
        }
    }
    double secs = s_now() - t0;
    printf("sent %llu bytes %zu seconds %.3f eps %.0f%s\n", n, t.len, secs,
           secs > 0 ? (double)n / secs : 0.0, nodrop ? " nodrop" : "");
    fflush(stdout);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    free(t.buf);
    return 0;
usage:
    fprintf(stderr, "usage: kefu-bench pub EP N [--rate R] [--run ID] [--nodrop]\n");
    return 2;
}

static int s_sub(int argc, char **argv)
{
    long idle_ms = 2000, first_ms = 30000;
    if (argc < 2)
        goto usage;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc)
            idle_ms = (long)s_num(argv[++i], "--idle-ms");
        else if (strcmp(argv[i], "--first-ms") == 0 && i + 1 < argc)
            first_ms = (long)s_num(argv[++i], "--first-ms");
        else
            goto usage;
    }
    unsigned long long n = (unsigned long long)s_num(argv[1], "N");
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    s_opt_int(sub, ZMQ_RCVHWM, BENCH_HWM);
    s_opt_int(sub, ZMQ_LINGER, 0);
    if (zmq_connect(sub, argv[0]) != 0)
        s_die(argv[0]);
    if (zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0) != 0)
        s_die("ZMQ_SUBSCRIBE");
    printf("ready\n");
    fflush(stdout);
    /* Counts BENCH_TOPIC events only: a broker also forwards heartbeats and such. */
    unsigned long long count = 0, other = 0;
    double first = 0, last = 0;
    size_t tlen = strlen(BENCH_TOPIC);
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (count < n) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, count ? idle_ms : first_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            s_die("zmq_poll");
        if (rc == 0)
            break; /* idle: nothing more is coming */
        while (count < n) {
            if (zmq_msg_recv(&m, sub, ZMQ_DONTWAIT) < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                s_die("zmq_msg_recv");
            }
            bool ours = zmq_msg_size(&m) == tlen && memcmp(zmq_msg_data(&m), BENCH_TOPIC, tlen) == 0;
            while (zmq_msg_more(&m))
                if (zmq_msg_recv(&m, sub, 0) < 0)
                    s_die("zmq_msg_recv");
            if (!ours) {
                other++;
                continue;
            }
            last = s_now();
            if (count++ == 0)
                first = last;
        }
    }
    zmq_msg_close(&m);
    double secs = last - first;
    printf("received %llu seconds %.3f eps %.0f other %llu\n", count, secs,
           secs > 0 ? (double)count / secs : 0.0, other);
    fflush(stdout);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return 0;
usage:
    fprintf(stderr, "usage: kefu-bench sub EP N [--idle-ms MS] [--first-ms MS]\n");
    return 2;
}

static int s_confirm(int argc, char **argv)
{
    long long window = 1000;
    char run[64];
    s_default_run(run, sizeof(run));
    if (argc < 2)
        goto usage;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            window = s_num(argv[++i], "--window");
        else if (strcmp(argv[i], "--run") == 0 && i + 1 < argc)
            snprintf(run, sizeof(run), "%s", argv[++i]);
        else
            goto usage;
    }
    if (window < 1)
        window = 1;
    unsigned long long n = (unsigned long long)s_num(argv[1], "N");
    template_t t = s_template(run);
    void *ctx = zmq_ctx_new();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    s_hwm(dealer);
    s_opt_int(dealer, ZMQ_LINGER, 0);
    if (zmq_connect(dealer, argv[0]) != 0)
        s_die(argv[0]);
    size_t tlen = strlen(BENCH_TOPIC);
    unsigned long long sent = 0, got = 0, ok = 0, dup = 0, rej = 0, err = 0;
    char reply[256], first_problem[256] = "";
    double t0 = s_now(), tlast = t0;
    while (got < n) {
        while (sent < n && (long long)(sent - got) < window) {
            s_set_id(&t, sent);
            if (zmq_send(dealer, BENCH_TOPIC, tlen, ZMQ_SNDMORE) < 0 ||
                zmq_send(dealer, t.buf, t.len, 0) < 0)
                s_die("zmq_send");
            sent++;
        }
        zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, 30000);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            s_die("zmq_poll");
        if (rc == 0) {
            fprintf(stderr, "kefu-bench: no reply for 30 s (%llu of %llu answered)\n", got, n);
            break;
        }
        while (got < n) {
            int len = zmq_recv(dealer, reply, sizeof(reply) - 1, ZMQ_DONTWAIT);
            if (len < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                s_die("zmq_recv");
            }
            if (len > (int)sizeof(reply) - 1)
                len = (int)sizeof(reply) - 1;
            reply[len] = '\0';
            got++;
            if (strncmp(reply, "ok ", 3) == 0) {
                ok++;
            } else {
                if (strncmp(reply, "duplicate ", 10) == 0)
                    dup++;
                else if (strncmp(reply, "rejected", 8) == 0)
                    rej++;
                else
                    err++;
                if (!first_problem[0])
                    snprintf(first_problem, sizeof(first_problem), "%s", reply);
            }
        }
        tlast = s_now();
    }
    double secs = tlast - t0;
    printf("confirmed %llu seconds %.3f eps %.0f\n", ok, secs, secs > 0 ? (double)ok / secs : 0.0);
    printf("replies %llu ok %llu duplicate %llu rejected %llu error %llu unanswered %llu\n", got,
           ok, dup, rej, err, n - got);
    if (first_problem[0])
        printf("first non-ok reply: %s\n", first_problem);
    fflush(stdout);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
    free(t.buf);
    return ok == n ? 0 : 1;
usage:
    fprintf(stderr, "usage: kefu-bench confirm EP N [--window W] [--run ID]\n");
    return 2;
}

/* ------------------------------------------------------------------ http (the dispatch reference) */

typedef struct {
    CURL *easy;
    struct curl_slist *headers;
    double started;
} s_req_t;

static size_t s_discard(char *p, size_t size, size_t n, void *arg) { return size * n; }

static char *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kefu-bench: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "kefu-bench: out of memory\n");
        exit(1);
    }
    *len = n;
    return buf;
}

/* Starts request i on r: the headers and options kefu-dispatch's s_send and dhttp_post set. */
static void s_http_start(CURLM *multi, s_req_t *r, const char *url, const char *secret,
                         const char *body, size_t blen, unsigned long long i)
{
    char id[64], h[3][600];
    snprintf(id, sizeof(id), "bench-%010llu", i);
    long long ts = s_wall_ms() / 1000;
    char *sig = NULL;
    if (secret) {
        const char *secs[1] = {secret};
        sig = kf_webhook_header(secs, 1, id, ts, body, blen);
    }
    snprintf(h[0], sizeof(h[0]), "webhook-id: %s", id);
    snprintf(h[1], sizeof(h[1]), "webhook-timestamp: %lld", ts);
    snprintf(h[2], sizeof(h[2]), "webhook-signature: %s",
             sig ? sig : "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    free(sig);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Expect:");
    for (int k = 0; k < 3; k++)
        hs = curl_slist_append(hs, h[k]);
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kefu-dispatch/" KEFU_VERSION);
    r->headers = hs;
    r->started = s_now();
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
        fprintf(stderr, "kefu-bench: curl_multi_add_handle failed\n");
        exit(1);
    }
}

static int s_http(int argc, char **argv)
{
    const char *secret = NULL;
    if (argc < 4)
        goto usage;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc)
            secret = argv[++i];
        else
            goto usage;
    }
    unsigned char key[64];
    if (secret && kf_webhook_key(secret, key) < 0) {
        fprintf(stderr, "kefu-bench: --secret: expected whsec_<base64>\n");
        return 2;
    }
    const char *url = argv[0];
    unsigned long long n = (unsigned long long)s_num(argv[1], "N");
    long long inflight = s_num(argv[2], "INFLIGHT");
    if (inflight < 1)
        inflight = 1;
    if ((unsigned long long)inflight > n)
        inflight = n ? (long long)n : 1;
    size_t blen;
    char *body = s_read_file(argv[3], &blen);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "kefu-bench: curl_global_init failed\n");
        return 1;
    }
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L); /* as dispatch */
    s_req_t *reqs = calloc((size_t)inflight, sizeof(*reqs));
    if (!reqs) {
        fprintf(stderr, "kefu-bench: out of memory\n");
        return 1;
    }
    for (long long k = 0; k < inflight; k++)
        reqs[k].easy = curl_easy_init();
    unsigned long long started = 0, done = 0, ok = 0, bad = 0, failed = 0;
    double lat_sum = 0, lat_max = 0;
    char first_problem[256] = "";
    double t0 = s_now();
    for (long long k = 0; k < inflight; k++)
        s_http_start(multi, &reqs[k], url, secret, body, blen, started++);
    while (done < n) {
        int running;
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            fprintf(stderr, "kefu-bench: curl_multi_perform failed\n");
            break;
        }
        CURLMsg *m;
        int left;
        bool finished = false;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            finished = true;
            s_req_t *r = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            long status = 0;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            CURLcode rc = m->data.result;
            curl_multi_remove_handle(multi, r->easy);
            curl_slist_free_all(r->headers);
            r->headers = NULL;
            double lat = s_now() - r->started;
            lat_sum += lat;
            if (lat > lat_max)
                lat_max = lat;
            done++;
            if (rc != CURLE_OK) {
                failed++;
                if (!first_problem[0])
                    snprintf(first_problem, sizeof(first_problem), "%s", curl_easy_strerror(rc));
            } else if (status >= 200 && status < 300) {
                ok++;
            } else {
                bad++;
                if (!first_problem[0])
                    snprintf(first_problem, sizeof(first_problem), "HTTP %ld", status);
            }
            if (started < n)
                s_http_start(multi, r, url, secret, body, blen, started++);
        }
        if (finished)
            continue; /* new transfers: perform them before waiting */
        if (curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            fprintf(stderr, "kefu-bench: curl_multi_poll failed\n");
            break;
        }
    }
    double secs = s_now() - t0;
    printf("http %llu ok %llu non2xx %llu failed %llu bytes %zu inflight %lld seconds %.3f eps %.0f "
           "mean_ms %.2f max_ms %.1f\n",
           done, ok, bad, failed, blen, inflight, secs, secs > 0 ? (double)ok / secs : 0.0,
           done ? lat_sum * 1000 / (double)done : 0.0, lat_max * 1000);
    if (first_problem[0])
        printf("first problem: %s\n", first_problem);
    fflush(stdout);
    for (long long k = 0; k < inflight; k++) {
        curl_multi_remove_handle(multi, reqs[k].easy);
        curl_slist_free_all(reqs[k].headers);
        curl_easy_cleanup(reqs[k].easy);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(reqs);
    free(body);
    return ok == n ? 0 : 1;
usage:
    fprintf(stderr, "usage: kefu-bench http URL N INFLIGHT BODYFILE [--secret whsec_...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 2) {
        if (strcmp(argv[1], "proxy") == 0)
            return s_proxy(argc - 2, argv + 2);
        if (strcmp(argv[1], "pub") == 0)
            return s_pub(argc - 2, argv + 2);
        if (strcmp(argv[1], "sub") == 0)
            return s_sub(argc - 2, argv + 2);
        if (strcmp(argv[1], "confirm") == 0)
            return s_confirm(argc - 2, argv + 2);
        if (strcmp(argv[1], "http") == 0)
            return s_http(argc - 2, argv + 2);
    }
    fprintf(stderr, "usage: kefu-bench proxy XSUB_EP XPUB_EP\n"
                    "       kefu-bench pub EP N [--rate R] [--run ID] [--nodrop]\n"
                    "       kefu-bench sub EP N [--idle-ms MS] [--first-ms MS]\n"
                    "       kefu-bench confirm EP N [--window W] [--run ID]\n"
                    "       kefu-bench http URL N INFLIGHT BODYFILE [--secret whsec_...]\n");
    return 2;
}
