/* kefuctl webhook-listen: a reference Standard Webhooks receiver (DESIGN §3.9, §10).
 *
 * libevent's evhttp (HTTP/1.1 keep-alive, many connections: kefu-dispatch keeps several
 * open). Each POST is verified with the shop's secret (kf_webhook_verify), printed, and
 * answered with the chosen status. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kefuctl.h"
#include "kf_util.h"
#include "kf_webhook.h"

#define S_MAX_STATUS 32

typedef struct {
    struct event_base *base;
    const char *secret;
    kf_secrets_t *secrets;
    int status[S_MAX_STATUS];
    size_t nstatus;
    long long retry_after, delay_ms, count;
    bool json, quiet;
    unsigned long long n, answered, verified, invalid, unverified;
} s_listen_t;

typedef struct {
    s_listen_t *l;
    struct evhttp_request *req;
    int status;
} s_reply_t;

static const kefuctl_verb_t *s_self(void);

/* The text of a delivery, for a line: the text or the summary, UTF-8-safely cut. */
static void s_excerpt(json_t *body, char *out, size_t len)
{
    const char *t = json_string_value(json_object_get(body, "text"));
    if (!t)
        t = json_string_value(json_object_get(body, "summary"));
    if (!t)
        t = "";
    size_t n = 0, chars = 0;
    while (t[n] && chars < 40 && n + 4 < len) {
        size_t k = 1;
        while ((t[n + k] & 0xC0) == 0x80)
            k++;
        n += k;
        chars++;
    }
    memcpy(out, t, n);
    out[n] = '\0';
    if (t[n])
        snprintf(out + n, len - n, "…");
}

static const char *s_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void s_print(s_listen_t *l, const char *id, const char *ts, const char *sig, json_t *body,
                    const char *verdict, int status)
{
    if (l->quiet)
        return;
    if (l->json) {
        json_t *o = json_pack("{s:s?, s:s?, s:s?, s:b, s:s, s:i, s:I, s:O?}", "id", id,
                              "timestamp", ts, "signature", sig, "verified",
                              !strcmp(verdict, "verified"), "verdict", verdict, "status", status,
                              "n", (json_int_t)l->n, "body", body);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        char when[16], text[200];
        time_t now = time(NULL);
        strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
        s_excerpt(body, text, sizeof(text));
        const char *who = json_string_value(json_object_get(body, "buyer_id"));
        printf("%s %s %s %s %s %s %s %s %s → %d\n", when, verdict, id ? id : "-",
               s_str(body, "topic"), s_str(body, "shop_id"), s_str(body, "reason"),
               json_object_get(body, "channel") ? s_str(body, "channel") : "-",
               who ? who : s_str(body, "order_id"), text, status);
    }
    fflush(stdout);
}

static void s_answer(s_reply_t *r)
{
    s_listen_t *l = r->l;
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(out, "Content-Type", "application/json");
    char ra[24];
    if ((r->status == 429 || r->status == 503) && l->retry_after >= 0) {
        snprintf(ra, sizeof(ra), "%lld", l->retry_after);
        evhttp_add_header(out, "Retry-After", ra);
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"status\":%d}", r->status);
    evhttp_send_reply(r->req, r->status, r->status < 300 ? "OK" : "Chosen", b);
    evbuffer_free(b);
    free(r);
    if (l->count > 0 && (long long)++l->answered >= l->count) {
        struct timeval tv = {0, 200000}; /* the last response is written first */
        event_base_loopexit(l->base, &tv);
    }
}

static void s_on_delay(evutil_socket_t fd, short what, void *arg) { s_answer(arg); }

static const char *s_verdict(s_listen_t *l, json_t *body, const char *id, const char *ts,
                             const char *sig, const void *data, size_t len)
{
    const char *secret = l->secret;
    if (l->secrets) {
        size_t n;
        const char *const *v = kf_secrets_get(l->secrets, s_str(body, "shop_id"), &n);
        secret = v ? v[0] : NULL;
    }
    if (!secret)
        return "unverified";
    long long t;
    if (!ts || kf_parse_ll(ts, 0, 99999999999LL, &t) != KF_OK || llabs(t - time(NULL)) > 300)
        return "INVALID";
    if (l->secrets) {
        size_t n;
        const char *const *v = kf_secrets_get(l->secrets, s_str(body, "shop_id"), &n);
        for (size_t i = 0; i < n; i++)
            if (kf_webhook_verify(v[i], id, ts, data, len, sig))
                return "verified";
        return "INVALID";
    }
    return kf_webhook_verify(secret, id, ts, data, len, sig) ? "verified" : "INVALID";
}

static void s_on_request(struct evhttp_request *req, void *arg)
{
    s_listen_t *l = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, "POST only");
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *id = evhttp_find_header(in, "webhook-id");
    const char *ts = evhttp_find_header(in, "webhook-timestamp");
    const char *sig = evhttp_find_header(in, "webhook-signature");
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    const char *data = (const char *)evbuffer_pullup(buf, -1);
    json_t *body = json_loadb(data ? data : "", len, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();
    }
    l->n++;
    const char *verdict = s_verdict(l, body, id, ts, sig, data ? data : "", len);
    int status = l->nstatus ? l->status[l->n - 1 < l->nstatus ? l->n - 1 : l->nstatus - 1] : 200;
    if (!strcmp(verdict, "INVALID")) {
        status = 401;
        l->invalid++;
    } else if (!strcmp(verdict, "verified")) {
        l->verified++;
    } else {
        l->unverified++;
    }
    s_print(l, id, ts, sig, body, verdict, status);
    json_decref(body);
    s_reply_t *r = kf_xmalloc(sizeof(*r));
    *r = (s_reply_t){l, req, status};
    if (l->delay_ms > 0) {
        struct timeval tv = {(time_t)(l->delay_ms / 1000), (suseconds_t)(l->delay_ms % 1000) * 1000};
        event_base_once(l->base, -1, EV_TIMEOUT, s_on_delay, r, &tv);
    } else {
        s_answer(r);
    }
}

static void s_on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(arg, NULL);
}

static int s_parse_statuses(s_listen_t *l, const char *arg)
{
    char *copy = kf_xstrdup(arg), *save = NULL;
    l->nstatus = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long long v;
        if (l->nstatus == S_MAX_STATUS || kf_parse_ll(t, 100, 599, &v) != KF_OK) {
            free(copy);
            return KF_ERR;
        }
        l->status[l->nstatus++] = (int)v;
    }
    free(copy);
    return l->nstatus ? KF_OK : KF_ERR;
}

static int s_parse(s_listen_t *l, int argc, char **argv, const char **bind, long long *port,
                   const char **secrets_file)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},  {"bind", required_argument, NULL, 'b'},
        {"secret", required_argument, NULL, 's'}, {"secrets-file", required_argument, NULL, 'f'},
        {"status", required_argument, NULL, 'S'}, {"retry-after", required_argument, NULL, 'r'},
        {"delay-ms", required_argument, NULL, 'd'}, {"count", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},         {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0}};
    kefuctl_getopt_reset();
    opterr = 0;
    unsigned char key[64];
    for (int c; (c = getopt_long(argc, argv, ":", opts, NULL)) != -1;) {
        switch (c) {
        case 'p':
            if (kf_parse_ll(optarg, 1, 65535, port) != KF_OK)
                return kefuctl_usage_error(s_self(), "--port: 1..65535");
            break;
        case 'b': *bind = optarg; break;
        case 's':
            if (kf_webhook_key(optarg, key) < 0)
                return kefuctl_usage_error(s_self(), "--secret: expected whsec_<base64>");
            l->secret = optarg;
            break;
        case 'f': *secrets_file = optarg; break;
        case 'S':
            if (s_parse_statuses(l, optarg) != KF_OK)
                return kefuctl_usage_error(s_self(), "--status: codes 100..599, comma separated");
            break;
        case 'r':
            if (kf_parse_ll(optarg, 0, 86400, &l->retry_after) != KF_OK)
                return kefuctl_usage_error(s_self(), "--retry-after: seconds 0..86400");
            break;
        case 'd':
            if (kf_parse_ll(optarg, 0, 600000, &l->delay_ms) != KF_OK)
                return kefuctl_usage_error(s_self(), "--delay-ms: 0..600000");
            break;
        case 'n':
            if (kf_parse_ll(optarg, 1, 1000000000, &l->count) != KF_OK)
                return kefuctl_usage_error(s_self(), "--count: a positive number");
            break;
        case 'j': l->json = true; break;
        case 'q': l->quiet = true; break;
        default: return kefuctl_getopt_error(s_self(), c, argv);
        }
    }
    if (optind < argc)
        return kefuctl_usage_error(s_self(), "unexpected argument '%s'", argv[optind]);
    if (!*port)
        return kefuctl_usage_error(s_self(), "--port is required");
    return -1;
}

static int s_run(kefuctl_t *ctl, int argc, char **argv)
{
    s_listen_t l = {.retry_after = -1};
    const char *bind = "127.0.0.1", *secrets_file = NULL;
    long long port = 0;
    int rc = s_parse(&l, argc, argv, &bind, &port, &secrets_file);
    if (rc >= 0)
        return rc;
    char err[512];
    if (secrets_file && !(l.secrets = kf_secrets_load(secrets_file, err, sizeof(err)))) {
        fprintf(stderr, "kefuctl: webhook-listen: %s\n", err);
        return KEFUCTL_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    l.base = event_base_new();
    struct evhttp *http = evhttp_new(l.base);
    evhttp_set_gencb(http, s_on_request, &l);
    evhttp_set_max_body_size(http, 1 << 20);
    if (evhttp_bind_socket(http, bind, (ev_uint16_t)port) != 0) {
        fprintf(stderr, "kefuctl: webhook-listen: cannot listen on %s:%lld\n", bind, port);
        rc = KEFUCTL_FAIL;
    } else {
        struct event *si = evsignal_new(l.base, SIGINT, s_on_signal, l.base);
        struct event *st = evsignal_new(l.base, SIGTERM, s_on_signal, l.base);
        evsignal_add(si, NULL);
        evsignal_add(st, NULL);
        fprintf(stderr, "webhook-listen: listening on http://%s:%lld (%s)\n", bind, port,
                l.secrets ? "verifying with the secrets file"
                : l.secret ? "verifying with --secret" : "no secret: not verifying");
        event_base_dispatch(l.base);
        event_free(si);
        event_free(st);
        fprintf(stderr, "webhook-listen: %llu deliveries, %llu verified, %llu invalid\n", l.n,
                l.verified, l.invalid);
        rc = KEFUCTL_OK;
    }
    evhttp_free(http);
    event_base_free(l.base);
    kf_secrets_destroy(&l.secrets);
    return rc;
}

const kefuctl_verb_t kefuctl_verb_webhook_listen = {
    "webhook-listen", s_run,
    "webhook-listen --port P [--bind ADDR] [--secret whsec_... | --secrets-file F]\n"
    "    [--status CODE[,CODE...]] [--retry-after S] [--delay-ms MS] [--count N] [--json|--quiet]",
    "    A reference webhook receiver: verifies each delivery's Standard Webhooks signature\n"
    "    (webhook-id, webhook-timestamp, webhook-signature; a timestamp more than 5 minutes\n"
    "    off is refused), prints it as one line (--json: one JSON object) and answers it.\n"
    "    A bad or missing signature is answered 401 and printed INVALID; without a secret\n"
    "    deliveries are printed unverified.\n"
    "    --status 500,500,200  the 1st delivery gets 500, the 2nd 500, the rest 200 (default 200)\n"
    "    --retry-after S       with a 429 or 503: the Retry-After header\n"
    "    --delay-ms MS         answer each delivery MS later (a slow endpoint)\n"
    "    --count N             exit after N answered deliveries\n"
    "    On exit: 'webhook-listen: N deliveries, V verified, I invalid' on stderr.",
};

static const kefuctl_verb_t *s_self(void) { return &kefuctl_verb_webhook_listen; }
