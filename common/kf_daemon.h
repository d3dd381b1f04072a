/* kf_daemon: what every daemon's main() shares: argv, config, the libevent loop, signals,
 * sd_notify (READY=1, WATCHDOG=1 from the loop, STOPPING=1) and the sys.heartbeat.
 *
 * argv: -c FILE (default $KEFU_CONF or /etc/kefu/kefu.conf), -o section.key=value
 * (repeatable), -i INSTANCE (worker instance, e.g. "0"), -h, -V. */
#ifndef KF_DAEMON_H
#define KF_DAEMON_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "kf_cfg.h"

typedef struct kf_daemon_s kf_daemon_t;
typedef void(kf_daemon_fn)(kf_daemon_t *d, void *arg);

/* Counters a daemon reports in its heartbeat. */
typedef struct {
    uint64_t processed, errors, applied_seq;
    int64_t lag, timers_pending;
    size_t nreasons;               /* errors by reason: names borrowed until the beat is sent */
    const char *reason[16];
    uint64_t reason_n[16];
    const void *dispatch;          /* kefu-dispatch: a Kefu__V1__DispatchStats (borrowed) */
} kf_beat_t;
typedef void(kf_daemon_beat_fn)(kf_daemon_t *d, kf_beat_t *beat, void *arg);

/* Parses argv and the config (shared sections into *conf, plus extra tables).
 * On -h/-V prints and sets *exit_code (0); on error prints to stderr and sets *exit_code 2.
 * Returns NULL in both cases. */
kf_daemon_t *kf_daemon_new(const char *name, int argc, char **argv, kf_conf_t *conf,
                           const kf_cfg_table_t *extra, size_t nextra, int *exit_code);
void kf_daemon_destroy(kf_daemon_t **self_p);

struct event_base *kf_daemon_base(kf_daemon_t *self);
void *kf_daemon_zctx(kf_daemon_t *self);
const char *kf_daemon_name(kf_daemon_t *self);
const char *kf_daemon_instance(kf_daemon_t *self);
const char *kf_daemon_config_path(kf_daemon_t *self);

/* SIGTERM/SIGINT: stop_fn is called once; it must stop taking work and call
 * kf_daemon_exit() when in-flight work is done. A second signal, or 4.5 s, forces exit. */
void kf_daemon_on_stop(kf_daemon_t *self, kf_daemon_fn *fn, void *arg);
/* SIGHUP */
void kf_daemon_on_reload(kf_daemon_t *self, kf_daemon_fn *fn, void *arg);
/* Publishes sys.heartbeat every [log] heartbeat_ms to [bus] publish (fn fills counters). */
int kf_daemon_heartbeat(kf_daemon_t *self, kf_daemon_beat_fn *fn, void *arg);
/* sd_notify READY=1 (and starts WATCHDOG=1 pings when systemd asks for them). */
void kf_daemon_ready(kf_daemon_t *self, const char *status);
/* Ends the loop; kf_daemon_run returns code. */
void kf_daemon_exit(kf_daemon_t *self, int code);
int kf_daemon_run(kf_daemon_t *self);
bool kf_daemon_stopping(kf_daemon_t *self);

#endif
