/* kefu-dispatch: argv, config, signals, systemd and the loop — nothing else. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kf_log.h"
#include "kf_util.h"

#define INT(name, min, max, def, field, help) \
    {"dispatch", name, KF_CFG_INT, min, max, def, offsetof(dispatch_conf_t, field), NULL, help}
#define STR(name, max, def, field, help) \
    {"dispatch", name, KF_CFG_STR, 0, max, def, offsetof(dispatch_conf_t, field), NULL, help}

const kf_cfg_opt_t dispatch_opts[] = {
    STR("secrets_file", 4096, "", secrets_file,
        "lines '<shop_id> whsec_<base64> [whsec_...]' ('*' = every other shop); SIGHUP reloads"),
    STR("retry_schedule", 1024, "0,5s,5m,30m,2h,5h,10h,10h", retry_schedule,
        "delay before each attempt (ms, s, m, h, d); after the last one an action is dead"),
    INT("timeout_ms", 100, 120000, "15000", timeout_ms,
        "an attempt without a complete response in this time fails (timeout)"),
    STR("default_url", 2048, "", default_url,
        "where actions of shops without webhook_url go (empty: nowhere, counted no_endpoint)"),
    STR("consumer", 200, "", consumer,
        "consumer name in the kefu:actions group (empty: dispatch-<instance>)"),
    STR("disable_after", 64, "5d", disable_after,
        "an endpoint whose every attempt failed for this long is disabled (0: never)"),
    INT("concurrency", 1, 256, "4", concurrency, "attempts in flight per endpoint"),
    INT("rate", 0, 100000, "200", rate, "attempts per second per endpoint (0: no limit)"),
    INT("queue_max", 100, 10000000, "20000", queue_max,
        "actions held in memory per endpoint; beyond, new ones are dead (queue_full)"),
    INT("max_queued", 1000, 10000000, "200000", max_queued,
        "actions held in memory in all; reading kefu:actions pauses above it"),
    INT("read_batch", 1, 10000, "256", read_batch, "entries per XREADGROUP"),
    INT("claim_idle_ms", 1000, 86400000, "60000", claim_idle_ms,
        "pending entries of another consumer idle this long are taken over (XAUTOCLAIM)"),
    INT("dead_maxlen", 100, 100000000, "100000", dead_maxlen, "approximate cap on kefu:dead"),
    INT("state_ttl_s", 3600, 31536000, "259200", state_ttl_s,
        "how long delivery states (kefu:dlv:<day>) are kept"),
};
const size_t dispatch_nopts = KF_ARRAY_LEN(dispatch_opts);

static int s_parse_disable_after(const dispatch_conf_t *dc, int64_t *out, size_t *n, char *err,
                                 size_t errlen)
{
    char e[256];
    if (dispatch_parse_schedule(dc->disable_after, out, 1, n, e, sizeof(e)) != KF_OK || *n != 1) {
        kf_err(err, errlen, "[dispatch] disable_after '%s': one duration (5d, 36h, 0)",
               dc->disable_after);
        return KF_ERR;
    }
    return KF_OK;
}

static int s_load_secrets(dispatch_t *d, char *err, size_t errlen)
{
    if (!*d->dc->secrets_file) {
        kf_log_warn("[dispatch] secrets_file is not set: every action with an endpoint is dead "
                    "(no_secret)");
        return KF_OK;
    }
    kf_secrets_t *s = kf_secrets_load(d->dc->secrets_file, err, errlen);
    if (!s)
        return KF_ERR;
    kf_secrets_destroy(&d->secrets);
    d->secrets = s;
    kf_log_notice("secrets: %zu shops from %s", kf_secrets_count(s), d->dc->secrets_file);
    return KF_OK;
}

static void s_on_reload(kf_daemon_t *kd, void *arg)
{
    char err[512];
    if (s_load_secrets(arg, err, sizeof(err)) != KF_OK)
        kf_log_err("SIGHUP: secrets not reloaded (the old ones stay): %s", err);
}

static void s_on_stop(kf_daemon_t *kd, void *arg) { dispatch_redis_stop(arg); }

int main(int argc, char **argv)
{
    kf_conf_t conf = {0};
    dispatch_conf_t dc = {0};
    kf_cfg_table_t extra[] = {{dispatch_opts, dispatch_nopts, &dc}};
    int code = 0;
    kf_daemon_t *kd = kf_daemon_new("kefu-dispatch", argc, argv, &conf, extra, 1, &code);
    if (!kd)
        return code;
    dispatch_t *d = kf_xcalloc(1, sizeof(*d));
    *d = (dispatch_t){.daemon = kd, .conf = &conf, .dc = &dc, .base = kf_daemon_base(kd)};
    d->shops = kf_shops_new();
    d->pending_writes = json_object();
    d->disabled_writes = json_object();
    d->failing_writes = json_object();
    d->shop_misses = json_object();
    char err[512];
    if (*dc.consumer)
        snprintf(d->consumer, sizeof(d->consumer), "%s", dc.consumer);
    else
        snprintf(d->consumer, sizeof(d->consumer), "dispatch-%s", kf_daemon_instance(kd));
    size_t nda = 0;
    if (dispatch_parse_schedule(dc.retry_schedule, d->schedule, DISPATCH_MAX_SCHEDULE,
                                &d->nschedule, err, sizeof(err)) != KF_OK ||
        s_parse_disable_after(&dc, &d->disable_after, &nda, err, sizeof(err)) != KF_OK ||
        s_load_secrets(d, err, sizeof(err)) != KF_OK ||
        !(d->http = dhttp_new(d->base, (long)dc.timeout_ms, err, sizeof(err))) ||
        dispatch_redis_start(d, err, sizeof(err)) != KF_OK)
        goto fail;
    kf_daemon_on_stop(kd, s_on_stop, d);
    kf_daemon_on_reload(kd, s_on_reload, d);
    kf_daemon_heartbeat(kd, dispatch_beat, d);
    kf_log_notice("consumer %s, %zu attempts per action, timeout %lld ms", d->consumer,
                  d->nschedule, dc.timeout_ms);
    code = kf_daemon_run(kd);
    goto done;
fail:
    kf_log_err("cannot start: %s", err);
    code = 1;
done:
    d->stopping = true;
    /* Redis first: its pending callbacks fire (with NULL) while their items still exist */
    kf_redis_destroy(&d->reader);
    kf_redis_destroy(&d->redis);
    dispatch_eps_free(d);
    dhttp_destroy(&d->http);
    kf_bus_destroy(&d->sub);
    kf_bus_destroy(&d->pub);
    if (d->flush_ev)
        event_free(d->flush_ev);
    if (d->claim_ev)
        event_free(d->claim_ev);
    json_decref(d->pending_writes);
    json_decref(d->disabled_writes);
    json_decref(d->failing_writes);
    json_decref(d->shop_misses);
    json_decref(d->shop_seqs);
    kf_secrets_destroy(&d->secrets);
    kf_shops_destroy(&d->shops);
    free(d);
    kf_daemon_destroy(&kd);
    curl_global_cleanup();
    return code;
}
