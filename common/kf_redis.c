/* kf_redis: see kf_redis.h. */
#include "kf_redis.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_log.h"
#include "kf_util.h"

#define KF_REDIS_MAX_SCRIPTS 32

/* A Redis Functions library: FUNCTION LOAD REPLACE on every (re)connect, FCALL fname. */
typedef struct {
    char *name;
    char *code;      /* the library's text, with its "#!lua name=" line */
    char fname[128]; /* the library's and its function's name: <name>_<12 hex of its SHA-1> */
} s_script_t;

struct kf_redis_s {
    struct event_base *base;
    redisAsyncContext *ac;
    char *host, *path, *user, *password;
    int port, db;
    long long connect_timeout_ms;
    bool ready, connecting, stopping;
    int backoff_ms;
    struct event *retry_ev;
    struct event *timeout_ev;
    struct event *touch_ev; /* the libraries' use marks in kefu:functions, and the prune */
    unsigned long reconnects;
    size_t inflight;
    kf_redis_state_fn *state_fn;
    void *state_arg;
    s_script_t scripts[KF_REDIS_MAX_SCRIPTS];
    int nscripts;
};

/* One request in flight: the user's callback, and what a retry needs (a Redis that lost its
 * functions: FLUSHALL/FUNCTION FLUSH, or a restart without persistence). */
typedef struct {
    kf_redis_t *self;
    kf_redis_fn *fn;
    void *arg;
    int script; /* -1 for plain commands */
    int nkeys, argc;
    const char **argv;
    const size_t *argvlen;
    bool retried;
} s_req_t;

static void s_connect(kf_redis_t *self);
static void s_schedule_retry(kf_redis_t *self);

/* ------------------------------------------------------------------ url */

static int s_parse_userinfo(kf_redis_t *self, const char *ui, size_t n)
{
    const char *colon = memchr(ui, ':', n);
    if (!colon)
        return KF_OK; /* "user@" without password: ignore */
    if (colon > ui)
        self->user = kf_xstrndup(ui, (size_t)(colon - ui));
    self->password = kf_xstrndup(colon + 1, n - (size_t)(colon - ui) - 1);
    return KF_OK;
}

static int s_parse_url(kf_redis_t *self, const char *url, char *err, size_t errlen)
{
    long long v;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *q = strchr(url + 7, '?');
        self->path = q ? kf_xstrndup(url + 7, (size_t)(q - url - 7)) : kf_xstrdup(url + 7);
        if (q && (strncmp(q, "?db=", 4) || kf_parse_ll(q + 4, 0, 1000, &v)))
            goto bad;
        self->db = q ? (int)v : 0;
        return *self->path ? KF_OK : KF_ERR;
    }
    if (strncmp(url, "redis://", 8) != 0)
        goto bad;
    const char *p = url + 8, *at = strchr(p, '@');
    if (at) {
        s_parse_userinfo(self, p, (size_t)(at - p));
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hostport);
    size_t hostlen = colon ? (size_t)(colon - p) : hostport;
    self->host = hostlen ? kf_xstrndup(p, hostlen) : kf_xstrdup("127.0.0.1");
    self->port = 6379;
    if (colon) {
        char port[8];
        size_t pl = hostport - hostlen - 1;
        if (pl == 0 || pl >= sizeof(port))
            goto bad;
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
        if (kf_parse_ll(port, 1, 65535, &v))
            goto bad;
        self->port = (int)v;
    }
    if (slash && slash[1]) {
        if (kf_parse_ll(slash + 1, 0, 1000, &v))
            goto bad;
        self->db = (int)v;
    }
    return KF_OK;
bad:
    snprintf(err, errlen, "bad redis url '%s' (want redis://[:password@]host:port[/db] or "
             "unix:///path[?db=N])", url);
    return KF_ERR;
}

/* ------------------------------------------------------------------ connection */

static void s_set_ready(kf_redis_t *self, bool up)
{
    if (self->ready == up)
        return;
    self->ready = up;
    if (up)
        self->backoff_ms = 100;
    if (self->state_fn)
        self->state_fn(self, up, self->state_arg);
}

static void s_on_script_loaded(redisAsyncContext *ac, void *r, void *priv)
{
    kf_redis_t *self = ac->data;
    redisReply *reply = r;
    intptr_t i = (intptr_t)priv;
    if (!self || !reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR)
        kf_log_err("redis: FUNCTION LOAD %s failed: %s", self->scripts[i].fname, reply->str);
}

static void s_load(redisAsyncContext *ac, kf_redis_t *self, intptr_t i)
{
    redisAsyncCommand(ac, s_on_script_loaded, (void *)i, "FUNCTION LOAD REPLACE %s",
                      self->scripts[i].code);
}

/* Old library versions (each code change loads a new <name>_<hash> library, and Redis keeps
 * them all, across restarts too): every daemon marks the versions it runs in kefu:functions
 * (library -> wall ms) when it connects and every S_FN_TOUCH_MS; when it connects and then
 * every S_FN_TOUCH_MS it deletes the other versions of its own libraries that nothing marked
 * for S_FN_IDLE_MS (a version first seen unmarked is marked then, so it gets that long too),
 * and forgets marks of libraries that are gone. A running older daemon (a rolling upgrade)
 * keeps marking its version; a daemon whose library was deleted anyway loads it again (the
 * FCALL retry). */
#define S_FN_KEY "kefu:functions"
#define S_FN_TOUCH_MS 600000
#define S_FN_IDLE_MS 3600000

typedef struct {
    kf_redis_t *self;
    char **libs; /* FUNCTION LIST's library names */
    size_t nlibs;
    bool failed;
} s_prune_t;

static void s_prune_free(s_prune_t *pr)
{
    for (size_t i = 0; i < pr->nlibs; i++)
        free(pr->libs[i]);
    free(pr->libs);
    free(pr);
}

/* The index of our script whose other version lib is, or -1: lib is "<name>_<12 hex>" (the
 * name as s_fname writes it), not the version we run. */
static int s_old_version(kf_redis_t *self, const char *lib)
{
    for (int i = 0; i < self->nscripts; i++) {
        size_t n = strlen(self->scripts[i].fname) - 13; /* "_" and 12 hex */
        if (strncmp(lib, self->scripts[i].fname, n) || lib[n] != '_' || strlen(lib + n + 1) != 12 ||
            strspn(lib + n + 1, "0123456789abcdef") != 12)
            continue;
        return strcmp(lib, self->scripts[i].fname) ? i : -1;
    }
    return -1;
}

static void s_on_ignore(redisAsyncContext *ac, void *r, void *priv) {}

static void s_on_fn_list(redisAsyncContext *ac, void *r, void *priv)
{
    s_prune_t *pr = priv;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        pr->failed = true;
        return;
    }
    pr->libs = kf_xcalloc(reply->elements + 1, sizeof(char *));
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *lib = reply->element[i];
        if (lib->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t k = 0; k + 1 < lib->elements; k += 2)
            if (lib->element[k]->type == REDIS_REPLY_STRING &&
                !strcmp(lib->element[k]->str, "library_name") &&
                lib->element[k + 1]->type == REDIS_REPLY_STRING)
                pr->libs[pr->nlibs++] = kf_xstrdup(lib->element[k + 1]->str);
    }
}

static void s_on_fn_marks(redisAsyncContext *ac, void *r, void *priv)
{
    s_prune_t *pr = priv;
    redisReply *reply = r;
    kf_redis_t *self = pr->self;
    if (!reply || pr->failed || reply->type != REDIS_REPLY_ARRAY || !self->ac) {
        s_prune_free(pr);
        return;
    }
    long long now = (long long)kf_wall_ms();
    for (size_t i = 0; i < pr->nlibs; i++) { /* versions present: mark or delete */
        const char *lib = pr->libs[i];
        if (s_old_version(self, lib) < 0)
            continue;
        const redisReply *mark = NULL;
        for (size_t k = 0; k + 1 < reply->elements; k += 2)
            if (reply->element[k]->type == REDIS_REPLY_STRING && !strcmp(reply->element[k]->str, lib))
                mark = reply->element[k + 1];
        long long at = 0;
        if (!mark || mark->type != REDIS_REPLY_STRING ||
            kf_parse_ll(mark->str, 0, INT64_MAX, &at) != KF_OK) {
            redisAsyncCommand(self->ac, s_on_ignore, NULL, "HSET %s %s %lld", S_FN_KEY, lib, now);
        } else if (at < now - S_FN_IDLE_MS) {
            kf_log_notice("redis: deleting library %s (unused for %lld min)", lib,
                          (now - at) / 60000);
            redisAsyncCommand(self->ac, s_on_ignore, NULL, "FUNCTION DELETE %s", lib);
            redisAsyncCommand(self->ac, s_on_ignore, NULL, "HDEL %s %s", S_FN_KEY, lib);
        }
    }
    for (size_t k = 0; k + 1 < reply->elements; k += 2) { /* marks of versions gone */
        const redisReply *name = reply->element[k];
        if (name->type != REDIS_REPLY_STRING || s_old_version(self, name->str) < 0)
            continue;
        bool present = false;
        for (size_t i = 0; i < pr->nlibs && !present; i++)
            present = !strcmp(pr->libs[i], name->str);
        if (!present)
            redisAsyncCommand(self->ac, s_on_ignore, NULL, "HDEL %s %s", S_FN_KEY, name->str);
    }
    s_prune_free(pr);
}

/* Marks the versions this daemon runs, then prunes (see above). */
static void s_touch(kf_redis_t *self)
{
    if (!self->ac || !self->nscripts)
        return;
    long long now = (long long)kf_wall_ms();
    for (int i = 0; i < self->nscripts; i++)
        redisAsyncCommand(self->ac, s_on_ignore, NULL, "HSET %s %s %lld", S_FN_KEY,
                          self->scripts[i].fname, now);
    s_prune_t *pr = kf_xcalloc(1, sizeof(*pr));
    pr->self = self;
    redisAsyncCommand(self->ac, s_on_fn_list, pr, "FUNCTION LIST");
    redisAsyncCommand(self->ac, s_on_fn_marks, pr, "HGETALL %s", S_FN_KEY);
}

static void s_on_touch(evutil_socket_t fd, short what, void *arg)
{
    kf_redis_t *self = arg;
    if (self->ready)
        s_touch(self);
}

static void s_on_handshake(redisAsyncContext *ac, void *r, void *priv)
{
    kf_redis_t *self = ac->data;
    redisReply *reply = r;
    if (!self || !reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        kf_log_err("redis: connection setup failed: %s", reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (priv) { /* the final PING */
        s_set_ready(self, true);
        s_touch(self);
    }
}

static void s_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    kf_redis_t *self = ac->data;
    if (!self)
        return;
    self->connecting = false;
    evtimer_del(self->timeout_ev);
    if (status != REDIS_OK) {
        kf_log_warn("redis: connect to %s failed: %s", self->path ? self->path : self->host,
                    ac->errstr);
        self->ac = NULL; /* hiredis frees it */
        s_schedule_retry(self);
        return;
    }
    kf_log_info("redis: connected to %s", self->path ? self->path : self->host);
    if (self->password) {
        if (self->user)
            redisAsyncCommand(ac, s_on_handshake, NULL, "AUTH %s %s", self->user, self->password);
        else
            redisAsyncCommand(ac, s_on_handshake, NULL, "AUTH %s", self->password);
    }
    if (self->db)
        redisAsyncCommand(ac, s_on_handshake, NULL, "SELECT %d", self->db);
    for (intptr_t i = 0; i < self->nscripts; i++)
        s_load(ac, self, i);
    redisAsyncCommand(ac, s_on_handshake, (void *)1, "PING");
}

static void s_on_disconnect(const redisAsyncContext *ac, int status)
{
    kf_redis_t *self = ac->data;
    if (!self)
        return;
    self->ac = NULL; /* hiredis frees the context after this callback */
    self->connecting = false;
    if (status != REDIS_OK)
        kf_log_warn("redis: connection lost: %s", ac->errstr);
    s_set_ready(self, false);
    if (!self->stopping)
        s_schedule_retry(self);
}

static void s_on_retry(evutil_socket_t fd, short what, void *arg)
{
    kf_redis_t *self = arg;
    self->reconnects++;
    s_connect(self);
}

static void s_on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    kf_redis_t *self = arg;
    if (self->connecting && self->ac) {
        kf_log_warn("redis: connect timed out");
        redisAsyncContext *ac = self->ac;
        self->ac = NULL;
        self->connecting = false;
        ac->data = NULL; /* not connected yet: hiredis frees it without callbacks */
        redisAsyncDisconnect(ac);
        s_schedule_retry(self);
    }
}

static void s_schedule_retry(kf_redis_t *self)
{
    if (self->stopping)
        return;
    struct timeval tv = {self->backoff_ms / 1000, (self->backoff_ms % 1000) * 1000};
    evtimer_add(self->retry_ev, &tv);
    self->backoff_ms = self->backoff_ms * 2 > 5000 ? 5000 : self->backoff_ms * 2;
}

static void s_connect(kf_redis_t *self)
{
    redisAsyncContext *ac = self->path ? redisAsyncConnectUnix(self->path)
                                       : redisAsyncConnect(self->host, self->port);
    if (!ac || ac->err) {
        kf_log_warn("redis: cannot connect: %s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        s_schedule_retry(self);
        return;
    }
    ac->data = self;
    self->ac = ac;
    self->connecting = true;
    redisLibeventAttach(ac, self->base);
    redisAsyncSetConnectCallback(ac, s_on_connect);
    redisAsyncSetDisconnectCallback(ac, s_on_disconnect);
    long long ms = self->connect_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(self->timeout_ev, &tv);
}

kf_redis_t *kf_redis_new(struct event_base *base, const char *url, const char *password,
                         char *err, size_t errlen)
{
    kf_redis_t *self = kf_xcalloc(1, sizeof(*self));
    self->base = base;
    self->backoff_ms = 100;
    self->connect_timeout_ms = 2000;
    if (s_parse_url(self, url, err, errlen) != KF_OK) {
        kf_redis_destroy(&self);
        return NULL;
    }
    if (password && *password) {
        free(self->password);
        self->password = kf_xstrdup(password);
    }
    self->retry_ev = evtimer_new(base, s_on_retry, self);
    self->timeout_ev = evtimer_new(base, s_on_connect_timeout, self);
    self->touch_ev = event_new(base, -1, EV_PERSIST, s_on_touch, self);
    struct timeval tv = {S_FN_TOUCH_MS / 1000, 0};
    evtimer_add(self->touch_ev, &tv);
    s_connect(self);
    return self;
}

void kf_redis_destroy(kf_redis_t **self_p)
{
    kf_redis_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    self->stopping = true;
    self->state_fn = NULL;
    if (self->ac) {
        redisAsyncContext *ac = self->ac;
        self->ac = NULL;
        redisAsyncFree(ac); /* pending callbacks fire with NULL */
    }
    if (self->retry_ev)
        event_free(self->retry_ev);
    if (self->timeout_ev)
        event_free(self->timeout_ev);
    if (self->touch_ev)
        event_free(self->touch_ev);
    for (int i = 0; i < self->nscripts; i++) {
        free(self->scripts[i].name);
        free(self->scripts[i].code);
    }
    free(self->host);
    free(self->path);
    free(self->user);
    free(self->password);
    free(self);
    *self_p = NULL;
}

void kf_redis_on_state(kf_redis_t *self, kf_redis_state_fn *fn, void *arg)
{
    self->state_fn = fn;
    self->state_arg = arg;
}

void kf_redis_set_connect_timeout(kf_redis_t *self, long long ms)
{
    self->connect_timeout_ms = ms > 0 ? ms : 2000;
    if (self->connecting) { /* the attempt under way gets the new limit too */
        struct timeval tv = {(time_t)(self->connect_timeout_ms / 1000),
                             (suseconds_t)(self->connect_timeout_ms % 1000) * 1000};
        evtimer_add(self->timeout_ev, &tv);
    }
}

bool kf_redis_ready(kf_redis_t *self)
{
    return self->ready && self->ac;
}

unsigned long kf_redis_reconnects(kf_redis_t *self)
{
    return self->reconnects;
}

size_t kf_redis_inflight(kf_redis_t *self)
{
    return self->inflight;
}

/* ------------------------------------------------------------------ commands */

/* <name>_<12 hex of SHA-1(body)>, name reduced to [A-Za-z0-9_] */
static void s_fname(const char *name, const char *body, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(body, strlen(body), md, &mdlen, EVP_sha1(), NULL);
    size_t o = 0;
    for (const char *p = name; *p && o + 14 < len; p++) {
        char c = *p;
        out[o++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                       ? c
                       : '_';
    }
    out[o++] = '_';
    for (unsigned k = 0; k < 6 && o + 2 < len; k++, o += 2)
        snprintf(out + o, len - o, "%02x", md[k]);
    out[o] = '\0';
}

static int s_add(kf_redis_t *self, const char *name, const char *body, bool wrap)
{
    if (self->nscripts >= KF_REDIS_MAX_SCRIPTS)
        return KF_ERR;
    int i = self->nscripts++;
    s_script_t *sc = &self->scripts[i];
    sc->name = kf_xstrdup(name);
    s_fname(name, body, sc->fname, sizeof(sc->fname));
    if (wrap)
        sc->code = kf_xasprintf("#!lua name=%s\nredis.register_function('%s', "
                                "function(KEYS, ARGV)\n%s\nend)\n",
                                sc->fname, sc->fname, body);
    else
        sc->code = kf_xasprintf("#!lua name=%s\nlocal FNAME = '%s'\n%s\n", sc->fname,
                                sc->fname, body);
    if (self->ready && self->ac)
        s_load(self->ac, self, i);
    return i;
}

int kf_redis_script(kf_redis_t *self, const char *name, const char *lua)
{
    return s_add(self, name, lua, true);
}

int kf_redis_library(kf_redis_t *self, const char *name, const char *lua)
{
    return s_add(self, name, lua, false);
}

const char *kf_redis_function_name(kf_redis_t *self, int script)
{
    return script >= 0 && script < self->nscripts ? self->scripts[script].fname : NULL;
}

static int s_send_fcall(kf_redis_t *self, s_req_t *req);

static void s_on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    s_req_t *req = priv;
    kf_redis_t *self = req->self;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR && req->script >= 0 && !req->retried &&
        strstr(reply->str, "Function not found") && self->ac && !self->stopping) {
        kf_log_warn("redis: function %s was gone: loaded again",
                    self->scripts[req->script].fname);
        s_load(self->ac, self, req->script);
        req->retried = true;
        if (s_send_fcall(self, req) == KF_OK)
            return; /* the retry now owns req */
    }
    self->inflight--;
    if (req->fn) /* fire-and-forget commands (counters) have no callback */
        req->fn(self, reply, req->arg);
    free(req);
}

static int s_send_fcall(kf_redis_t *self, s_req_t *req)
{
    s_script_t *sc = &self->scripts[req->script];
    const char *small[64];
    size_t smalllen[64];
    int n = req->argc + 3;
    const char **av = n <= 64 ? small : kf_xmalloc(sizeof(char *) * (size_t)n);
    size_t *avlen = n <= 64 ? smalllen : kf_xmalloc(sizeof(size_t) * (size_t)n);
    char nkeys[16];
    snprintf(nkeys, sizeof(nkeys), "%d", req->nkeys);
    av[0] = "FCALL";
    av[1] = sc->fname;
    av[2] = nkeys;
    avlen[0] = 5;
    avlen[1] = strlen(av[1]);
    avlen[2] = strlen(nkeys);
    for (int i = 0; i < req->argc; i++) {
        av[i + 3] = req->argv[i];
        avlen[i + 3] = req->argvlen ? req->argvlen[i] : strlen(req->argv[i]);
    }
    int rc = redisAsyncCommandArgv(self->ac, s_on_reply, req, n, av, avlen);
    if (av != small) {
        free(av);
        free(avlen);
    }
    return rc == REDIS_OK ? KF_OK : KF_ERR;
}

int kf_redis_eval(kf_redis_t *self, int script, int nkeys, int argc, const char **argv,
                  const size_t *argvlen, kf_redis_fn *fn, void *arg)
{
    if (!kf_redis_ready(self) || script < 0 || script >= self->nscripts)
        return KF_ERR;
    s_req_t *req = kf_xmalloc(sizeof(*req));
    *req = (s_req_t){self, fn, arg, script, nkeys, argc, argv, argvlen, false};
    if (s_send_fcall(self, req) != KF_OK) {
        free(req);
        return KF_ERR;
    }
    self->inflight++;
    return KF_OK;
}

int kf_redis_cmdv(kf_redis_t *self, kf_redis_fn *fn, void *arg, int argc, const char **argv,
                  const size_t *argvlen)
{
    if (!kf_redis_ready(self))
        return KF_ERR;
    s_req_t *req = kf_xmalloc(sizeof(*req));
    *req = (s_req_t){self, fn, arg, -1, 0, 0, NULL, NULL, false};
    if (redisAsyncCommandArgv(self->ac, s_on_reply, req, argc, argv, argvlen) != REDIS_OK) {
        free(req);
        return KF_ERR;
    }
    self->inflight++;
    return KF_OK;
}

int kf_redis_cmd(kf_redis_t *self, kf_redis_fn *fn, void *arg, const char *fmt, ...)
{
    if (!kf_redis_ready(self))
        return KF_ERR;
    s_req_t *req = kf_xmalloc(sizeof(*req));
    *req = (s_req_t){self, fn, arg, -1, 0, 0, NULL, NULL, false};
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(self->ac, s_on_reply, req, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(req);
        return KF_ERR;
    }
    self->inflight++;
    return KF_OK;
}
