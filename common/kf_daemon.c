/* kf_daemon: see kf_daemon.h. */
#include "kf_daemon.h"

#include <event2/event.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <zmq.h>

#include "kf_clock.h"
#include "kf_log.h"
#include "kf_proto.h"
#include "kf_util.h"

#define KF_MAX_TABLES 8
#define KF_MAX_OVERRIDES 32

struct kf_daemon_s {
    char *name;
    char *instance;
    char *config_path;
    kf_conf_t *conf;
    kf_cfg_table_t tables[KF_MAX_TABLES];
    size_t ntables;
    struct event_base *base;
    void *zctx;
    struct event *sig_term, *sig_int, *sig_hup, *force_ev, *watchdog_ev, *beat_ev;
    kf_daemon_fn *stop_fn, *reload_fn;
    void *stop_arg, *reload_arg;
    kf_daemon_beat_fn *beat_fn;
    void *beat_arg;
    void *beat_sock;
    uint64_t beats;
    int64_t started_ms;
    bool stopping;
    int exit_code;
};

static void s_usage(const char *name, FILE *out)
{
    fprintf(out,
            "usage: %s [-c FILE] [-o section.key=value]... [-i INSTANCE] [-h] [-V]\n"
            "  -c FILE      configuration file (default $KEFU_CONF or /etc/kefu/kefu.conf)\n"
            "  -o S.K=V     override one configuration key (repeatable)\n"
            "  -i INSTANCE  instance name of this worker (systemd %%i), default 0\n"
            "  -t           check the configuration, print the keys read (with defaults), exit\n"
            "  -h           this help;  -V  print the version\n",
            name);
}

typedef struct {
    const char *config;
    const char *instance;
    const char *overrides[KF_MAX_OVERRIDES];
    int noverrides;
    bool check;
} s_args_t;

/* Returns -1 to continue, or an exit code. */
static int s_parse_argv(const char *name, int argc, char **argv, s_args_t *a)
{
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "c:o:i:thV")) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'i': a->instance = optarg; break;
        case 'o':
            if (a->noverrides >= KF_MAX_OVERRIDES) {
                fprintf(stderr, "%s: too many -o options\n", name);
                return 2;
            }
            a->overrides[a->noverrides++] = optarg;
            break;
        case 't': a->check = true; break;
        case 'h': s_usage(name, stdout); return 0;
        case 'V': printf("%s %s\n", name, KEFU_VERSION); return 0;
        default: s_usage(name, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", name, argv[optind]);
        s_usage(name, stderr);
        return 2;
    }
    return -1;
}

static int s_load_config(kf_daemon_t *self, const s_args_t *a)
{
    char err[512];
    const char *env = getenv("KEFU_CONF");
    const char *path = a->config ? a->config : (env && *env ? env : "/etc/kefu/kefu.conf");
    bool must = a->config || (env && *env);
    self->config_path = kf_xstrdup(path);
    if (kf_cfg_load(self->tables, self->ntables, path, must, err, sizeof(err)) != KF_OK)
        goto fail;
    for (int i = 0; i < a->noverrides; i++)
        if (kf_cfg_set(self->tables, self->ntables, a->overrides[i], err, sizeof(err)) != KF_OK)
            goto fail;
    return KF_OK;
fail:
    fprintf(stderr, "<3>%s: config: %s\n", self->name, err);
    return KF_ERR;
}

static void s_on_signal(evutil_socket_t sig, short what, void *arg);
static void s_on_force(evutil_socket_t fd, short what, void *arg);

static void s_setup_loop(kf_daemon_t *self)
{
    self->base = event_base_new();
    self->zctx = zmq_ctx_new();
    if (self->base)
        event_base_priority_init(self->base, 3); /* 1 = default, 2 = end-of-pass work */
    if (!self->base || !self->zctx) {
        fprintf(stderr, "%s: cannot create the event loop or ZeroMQ context\n", self->name);
        abort();
    }
    signal(SIGPIPE, SIG_IGN);
    self->sig_term = evsignal_new(self->base, SIGTERM, s_on_signal, self);
    self->sig_int = evsignal_new(self->base, SIGINT, s_on_signal, self);
    self->sig_hup = evsignal_new(self->base, SIGHUP, s_on_signal, self);
    self->force_ev = evtimer_new(self->base, s_on_force, self);
    evsignal_add(self->sig_term, NULL);
    evsignal_add(self->sig_int, NULL);
    evsignal_add(self->sig_hup, NULL);
}

kf_daemon_t *kf_daemon_new(const char *name, int argc, char **argv, kf_conf_t *conf,
                           const kf_cfg_table_t *extra, size_t nextra, int *exit_code)
{
    s_args_t a = {0};
    int rc = s_parse_argv(name, argc, argv, &a);
    if (rc >= 0) {
        *exit_code = rc;
        return NULL;
    }
    kf_daemon_t *self = kf_xcalloc(1, sizeof(*self));
    self->name = kf_xstrdup(name);
    self->instance = kf_xstrdup(a.instance ? a.instance : "0");
    self->conf = conf;
    self->tables[0] = (kf_cfg_table_t){kf_conf_opts, kf_conf_nopts, conf};
    self->ntables = 1;
    for (size_t i = 0; i < nextra && self->ntables < KF_MAX_TABLES; i++)
        self->tables[self->ntables++] = extra[i];
    if (s_load_config(self, &a) != KF_OK) {
        *exit_code = 2;
        kf_daemon_destroy(&self);
        return NULL;
    }
    if (a.check) {
        kf_cfg_print_example(self->tables, self->ntables, stdout);
        printf("; %s: configuration %s is valid\n", name, self->config_path);
        *exit_code = 0;
        kf_daemon_destroy(&self);
        return NULL;
    }
    kf_log_init(self->name, conf->log_level);
    kf_clock_init(conf->clock_mode == 1, 0);
    self->started_ms = kf_mono_ms();
    s_setup_loop(self);
    return self;
}

void kf_daemon_destroy(kf_daemon_t **self_p)
{
    kf_daemon_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    struct event *evs[] = {self->sig_term, self->sig_int, self->sig_hup, self->force_ev,
                           self->watchdog_ev, self->beat_ev};
    for (size_t i = 0; i < KF_ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    if (self->beat_sock)
        zmq_close(self->beat_sock);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    if (self->base)
        event_base_free(self->base);
    kf_cfg_free(self->tables, self->ntables);
    free(self->config_path);
    free(self->instance);
    free(self->name);
    free(self);
    *self_p = NULL;
}

struct event_base *kf_daemon_base(kf_daemon_t *self) { return self->base; }
void *kf_daemon_zctx(kf_daemon_t *self) { return self->zctx; }
const char *kf_daemon_name(kf_daemon_t *self) { return self->name; }
const char *kf_daemon_instance(kf_daemon_t *self) { return self->instance; }
const char *kf_daemon_config_path(kf_daemon_t *self) { return self->config_path; }
bool kf_daemon_stopping(kf_daemon_t *self) { return self->stopping; }

void kf_daemon_on_stop(kf_daemon_t *self, kf_daemon_fn *fn, void *arg)
{
    self->stop_fn = fn;
    self->stop_arg = arg;
}

void kf_daemon_on_reload(kf_daemon_t *self, kf_daemon_fn *fn, void *arg)
{
    self->reload_fn = fn;
    self->reload_arg = arg;
}

void kf_daemon_exit(kf_daemon_t *self, int code)
{
    self->exit_code = code;
    event_base_loopbreak(self->base);
}

static void s_on_force(evutil_socket_t fd, short what, void *arg)
{
    kf_daemon_t *self = arg;
    kf_log_warn("in-flight work did not finish in time; exiting anyway");
    kf_daemon_exit(self, 0);
}

static void s_on_signal(evutil_socket_t sig, short what, void *arg)
{
    kf_daemon_t *self = arg;
    if (sig == SIGHUP) {
        kf_log_notice("SIGHUP: reloading");
        if (self->reload_fn)
            self->reload_fn(self, self->reload_arg);
        return;
    }
    if (self->stopping) {
        kf_log_notice("second signal: exiting now");
        kf_daemon_exit(self, 0);
        return;
    }
    self->stopping = true;
    kf_log_notice("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1");
    struct timeval tv = {4, 500000};
    evtimer_add(self->force_ev, &tv);
    if (self->beat_ev)
        evtimer_del(self->beat_ev);
    if (self->stop_fn)
        self->stop_fn(self, self->stop_arg);
    else
        kf_daemon_exit(self, 0);
}

static void s_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    sd_notify(0, "WATCHDOG=1");
}

void kf_daemon_ready(kf_daemon_t *self, const char *status)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status ? status : "running");
    sd_notify(0, msg);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0 && !self->watchdog_ev) {
        self->watchdog_ev = event_new(self->base, -1, EV_PERSIST, s_on_watchdog, self);
        struct timeval tv = {(time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000)};
        event_add(self->watchdog_ev, &tv);
    }
    kf_log_notice("ready: %s", status ? status : "running");
}

static void s_send_beat(kf_daemon_t *self)
{
    kf_beat_t b = {0};
    if (self->beat_fn)
        self->beat_fn(self, &b, self->beat_arg);
    Kefu__V1__Heartbeat hb = KEFU__V1__HEARTBEAT__INIT;
    hb.daemon = self->name;
    hb.instance = self->instance;
    hb.has_pid = hb.has_uptime_s = hb.has_processed = hb.has_errors = 1;
    hb.has_lag = hb.has_timers_pending = hb.has_applied_seq = 1;
    hb.pid = (int32_t)getpid();
    hb.version = (char *)KEFU_VERSION;
    hb.uptime_s = (kf_mono_ms() - self->started_ms) / 1000;
    hb.processed = b.processed;
    hb.errors = b.errors;
    hb.lag = b.lag;
    hb.timers_pending = b.timers_pending;
    hb.applied_seq = b.applied_seq;
    Kefu__V1__ReasonCount rc[16], *rcp[16];
    size_t nr = b.nreasons < 16 ? b.nreasons : 16;
    for (size_t i = 0; i < nr; i++) {
        kefu__v1__reason_count__init(&rc[i]);
        rc[i].reason = (char *)b.reason[i];
        rc[i].has_n = 1;
        rc[i].n = b.reason_n[i];
        rcp[i] = &rc[i];
    }
    hb.dispatch = (Kefu__V1__DispatchStats *)b.dispatch;
    hb.n_error_reasons = nr;
    hb.error_reasons = nr ? rcp : NULL;
    char id[96];
    snprintf(id, sizeof(id), "hb-%s-%s-%d-%llu", self->name, self->instance, (int)getpid(),
             (unsigned long long)++self->beats);
    Kefu__V1__Envelope env = KEFU__V1__ENVELOPE__INIT;
    env.event_id = id;
    env.topic = (char *)"sys.heartbeat";
    env.source = self->name;
    env.has_occurred_at = 1;
    env.occurred_at = kf_wall_ms();
    env.payload_case = KEFU__V1__ENVELOPE__PAYLOAD_SYS_HEARTBEAT;
    env.sys_heartbeat = &hb;
    size_t len;
    uint8_t *buf = kf_env_pack(&env, &len);
    zmq_send(self->beat_sock, "sys.heartbeat", 13, ZMQ_DONTWAIT | ZMQ_SNDMORE);
    zmq_send(self->beat_sock, buf, len, ZMQ_DONTWAIT);
    free(buf);
}

static void s_on_beat(evutil_socket_t fd, short what, void *arg)
{
    s_send_beat(arg);
}

int kf_daemon_heartbeat(kf_daemon_t *self, kf_daemon_beat_fn *fn, void *arg)
{
    self->beat_fn = fn;
    self->beat_arg = arg;
    if (self->beat_sock)
        return KF_OK;
    self->beat_sock = zmq_socket(self->zctx, ZMQ_PUB);
    int linger = 0, hwm = 16;
    zmq_setsockopt(self->beat_sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(self->beat_sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    if (zmq_connect(self->beat_sock, self->conf->bus_publish) != 0) {
        kf_log_err("heartbeat: connect %s: %s", self->conf->bus_publish, zmq_strerror(errno));
        return KF_ERR;
    }
    self->beat_ev = event_new(self->base, -1, EV_PERSIST, s_on_beat, self);
    long long ms = self->conf->heartbeat_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(self->beat_ev, &tv);
    return KF_OK;
}

int kf_daemon_run(kf_daemon_t *self)
{
    event_base_dispatch(self->base);
    kf_log_notice("exiting with status %d", self->exit_code);
    return self->exit_code;
}
