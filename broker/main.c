/* kefu-broker: argv, config, signals, systemd and the loop — nothing else. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "kf_log.h"
#include "kf_util.h"

#define OPT(name, min, max, def, field, help) \
    {"broker", name, KF_CFG_INT, min, max, def, offsetof(broker_conf_t, field), NULL, help}

const kf_cfg_opt_t broker_opts[] = {
    OPT("max_event_bytes", 256, 16777216, "65536", max_event_bytes,
        "events larger than this are rejected (oversized)"),
    OPT("dedup_window_s", 1, 2592000, "86400", dedup_window_s,
        "a repeated event_id within this window is answered duplicate"),
    OPT("journal_maxlen", 1000, 1000000000, "1000000", journal_maxlen,
        "approximate cap on the events kefu:journal keeps"),
    OPT("max_inflight", 100, 10000000, "10000", max_inflight,
        "events awaiting Redis before the broker stops reading (back-pressure)"),
    OPT("batch", 1, 100000, "1000", batch, "most events journaled in one Redis step"),
    OPT("stats_refresh_ms", 100, 60000, "1000", stats_refresh_ms,
        "how often journal seq/length and campaign progress are read for /stats"),
    OPT("dead_after_beats", 1, 100, "3", dead_after_beats,
        "missed heartbeats after which a daemon is shown dead"),
    OPT("http_max_body", 1024, 67108864, "1048576", http_max_body,
        "largest HTTP ingest body accepted"),
};
const size_t broker_nopts = KF_ARRAY_LEN(broker_opts);

static void s_on_stop(kf_daemon_t *d, void *arg)
{
    broker_t *b = arg;
    broker_http_stop(b);
    broker_ingest_stop(b);
}

static void s_on_redis(kf_redis_t *r, bool up, void *arg)
{
    broker_t *b = arg;
    if (up && !b->ready_sent) { /* systemd: READY=1 once sockets and Redis are up */
        b->ready_sent = true;
        kf_daemon_ready(b->daemon, "accepting events");
    }
    if (up)
        kf_log_notice("redis is up: journaling");
    else
        kf_log_warn("redis is down: confirmed publishes answer errors until it returns");
}

int main(int argc, char **argv)
{
    kf_conf_t conf = {0};
    broker_conf_t bconf = {0};
    kf_cfg_table_t extra[] = {{broker_opts, broker_nopts, &bconf}};
    int code = 0;
    kf_daemon_t *d = kf_daemon_new("kefu-broker", argc, argv, &conf, extra, 1, &code);
    if (!d)
        return code;
    broker_t b = {.daemon = d, .conf = &conf, .bconf = &bconf, .base = kf_daemon_base(d),
                  .started_mono = kf_mono_ms()};
    char err[512];
    char *password = NULL;
    if (conf.redis_password_file && *conf.redis_password_file &&
        !(password = kf_cfg_read_secret(conf.redis_password_file, err, sizeof(err))))
        goto fail;
    b.redis = kf_redis_new(b.base, conf.redis_url, password, err, sizeof(err));
    free(password);
    if (!b.redis)
        goto fail;
    kf_redis_set_connect_timeout(b.redis, conf.redis_timeout_ms);
    kf_redis_on_state(b.redis, s_on_redis, &b);
    if (broker_ingest_start(&b, err, sizeof(err)) || broker_monitor_start(&b, err, sizeof(err)) ||
        broker_campaigns_start(&b, err, sizeof(err)) || broker_http_start(&b, err, sizeof(err)))
        goto fail;
    kf_daemon_on_stop(d, s_on_stop, &b);
    kf_daemon_heartbeat(d, NULL, NULL);
    code = kf_daemon_run(d);
    goto done;
fail:
    kf_log_err("cannot start: %s", err);
    code = 1;
done:
    broker_http_stop(&b);
    kf_bus_destroy(&b.mon_xpub);
    kf_bus_destroy(&b.mon_xsub);
    kf_bus_destroy(&b.mon_router);
    kf_bus_destroy(&b.xsub);
    kf_bus_destroy(&b.router);
    kf_bus_destroy(&b.xpub);
    kf_redis_destroy(&b.redis);
    broker_campaigns_destroy(&b);
    if (b.flush_ev)
        event_free(b.flush_ev);
    if (b.refresh_ev)
        event_free(b.refresh_ev);
    free(b.batch);
    broker_fleet_free(&b);
    kf_daemon_destroy(&d);
    return code;
}
