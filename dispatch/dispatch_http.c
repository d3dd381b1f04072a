/* kefu-dispatch: libcurl's multi interface on the libevent loop (the hiperfifo pattern).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION); we run curl_multi_socket_action from libevent callbacks and
 * collect finished transfers with curl_multi_info_read. Connections stay in the multi's
 * cache (keep-alive); DNS goes through curl's threaded resolver (AsynchDNS), never on the
 * loop. Easy handles are pooled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kf_log.h"
#include "kf_util.h"

#define S_EXCERPT 120
#define S_POOL_MAX 256

typedef struct s_xfer_s s_xfer_t;
struct s_xfer_s {
    dhttp_t *h;
    CURL *easy;
    struct curl_slist *headers;
    dhttp_done_fn *done;
    void *arg;
    char excerpt[S_EXCERPT + 1];
    size_t nex;
    int64_t retry_after_ms;
    int64_t started;
    s_xfer_t *next; /* the pool */
    s_xfer_t *aprev, *anext; /* the active list */
};

struct dhttp_s {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    long timeout_ms;
    size_t active;
    s_xfer_t *alist;
    s_xfer_t *pool;
    size_t npool;
};

typedef struct {
    struct event *ev;
} s_sock_t;

static void s_check_done(dhttp_t *h);

static void s_on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    dhttp_t *h = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    s_check_done(h);
}

static void s_on_timer(evutil_socket_t fd, short what, void *arg)
{
    dhttp_t *h = arg;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_check_done(h);
}

static int s_socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    dhttp_t *h = userp;
    s_sock_t *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            event_free(sk->ev);
            free(sk);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                 (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!sk) {
        sk = kf_xcalloc(1, sizeof(*sk));
        curl_multi_assign(h->multi, s, sk);
    } else {
        event_free(sk->ev);
    }
    sk->ev = event_new(h->base, s, kind, s_on_socket_event, h);
    event_add(sk->ev, NULL);
    return 0;
}

static int s_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    dhttp_t *h = userp;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(h->timer, &tv);
    return 0;
}

dhttp_t *dhttp_new(struct event_base *base, long timeout_ms, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        kf_err(err, errlen, "curl_global_init failed");
        return NULL;
    }
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!(v->features & CURL_VERSION_ASYNCHDNS))
        kf_log_warn("libcurl %s resolves names synchronously: DNS may stall the loop; use IP "
                    "addresses in webhook URLs", v->version);
    dhttp_t *h = kf_xcalloc(1, sizeof(*h));
    h->base = base;
    h->timeout_ms = timeout_ms;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(base, s_on_timer, h);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, s_socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 1024L);
    return h;
}

void dhttp_destroy(dhttp_t **self_p)
{
    dhttp_t *h = self_p ? *self_p : NULL;
    if (!h)
        return;
    for (s_xfer_t *x = h->alist, *nx; x; x = nx) { /* abandoned at exit: redelivered */
        nx = x->anext;
        curl_multi_remove_handle(h->multi, x->easy);
        curl_easy_cleanup(x->easy);
        curl_slist_free_all(x->headers);
        free(x);
    }
    for (s_xfer_t *x = h->pool, *nx; x; x = nx) {
        nx = x->next;
        curl_easy_cleanup(x->easy);
        free(x);
    }
    curl_multi_cleanup(h->multi);
    event_free(h->timer);
    free(h);
    *self_p = NULL;
}

size_t dhttp_active(dhttp_t *self) { return self->active; }

static size_t s_on_body(char *p, size_t size, size_t n, void *arg)
{
    s_xfer_t *x = arg;
    size_t len = size * n, room = S_EXCERPT - x->nex;
    size_t k = len < room ? len : room;
    memcpy(x->excerpt + x->nex, p, k);
    x->nex += k;
    return len;
}

static size_t s_on_header(char *p, size_t size, size_t n, void *arg)
{
    s_xfer_t *x = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        char v[64];
        size_t k = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
        memcpy(v, p + 12, k);
        v[k] = '\0';
        x->retry_after_ms = dispatch_parse_retry_after(v, kf_wall_ms());
    }
    return len;
}

/* The excerpt as printable UTF-8 text (controls become spaces; invalid bytes '?'). */
static void s_clean_excerpt(s_xfer_t *x)
{
    size_t n = x->nex;
    while (n > 0 && ((unsigned char)x->excerpt[n - 1] & 0xC0) == 0x80)
        n--; /* a cut character */
    if (n > 0 && (unsigned char)x->excerpt[n - 1] >= 0xC0)
        n--;
    x->excerpt[n] = '\0';
    bool ok = kf_utf8_valid(x->excerpt, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)x->excerpt[i];
        if (c < 0x20 || c == 0x7f)
            x->excerpt[i] = ' ';
        else if (c >= 0x80 && !ok)
            x->excerpt[i] = '?';
    }
}

static const char *s_err_word(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_COULDNT_RESOLVE_HOST: return "dns";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION: return "tls";
    case CURLE_SEND_ERROR: return "send";
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: return "recv";
    default: return "other";
    }
}

static void s_check_done(dhttp_t *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        s_xfer_t *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(h->multi, x->easy);
        curl_slist_free_all(x->headers);
        x->headers = NULL;
        h->active--;
        if (x->aprev)
            x->aprev->anext = x->anext;
        else
            h->alist = x->anext;
        if (x->anext)
            x->anext->aprev = x->aprev;
        s_clean_excerpt(x);
        dhttp_result_t r = {.status = rc == CURLE_OK ? status : 0,
                            .err = rc == CURLE_OK ? NULL : s_err_word(rc),
                            .ms = kf_mono_ms() - x->started,
                            .retry_after_ms = x->retry_after_ms,
                            .excerpt = rc == CURLE_OK ? x->excerpt : curl_easy_strerror(rc)};
        dhttp_done_fn *done = x->done;
        void *arg = x->arg;
        if (h->npool < S_POOL_MAX) {
            curl_easy_reset(x->easy);
            x->next = h->pool;
            h->pool = x;
            h->npool++;
        } else {
            curl_easy_cleanup(x->easy);
            x->easy = NULL;
        }
        done(arg, &r); /* may start new transfers */
        if (!x->easy)
            free(x);
    }
}

int dhttp_post(dhttp_t *h, const char *url, struct curl_slist *headers, const char *body,
               size_t len, dhttp_done_fn *done, void *arg)
{
    s_xfer_t *x = h->pool;
    if (x) {
        h->pool = x->next;
        h->npool--;
    } else {
        x = kf_xcalloc(1, sizeof(*x));
        x->easy = curl_easy_init();
    }
    x->h = h;
    x->headers = headers;
    x->done = done;
    x->arg = arg;
    x->nex = 0;
    x->retry_after_ms = -1;
    x->started = kf_mono_ms();
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms < 10000 ? h->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kefu-dispatch/" KEFU_VERSION);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_slist_free_all(headers);
        x->headers = NULL;
        x->next = h->pool;
        h->pool = x;
        h->npool++;
        return KF_ERR;
    }
    h->active++;
    x->aprev = NULL;
    x->anext = h->alist;
    if (h->alist)
        h->alist->aprev = x;
    h->alist = x;
    return KF_OK;
}
