/* kefu-logistics: argv, config, signals, systemd and the loop — nothing else. */
#include <stddef.h>
#include <stdio.h>

#include "kf_daemon.h"
#include "kf_log.h"
#include "kf_util.h"
#include "kf_worker.h"
#include "logistics.h"

extern const char kf_lua_logistics[];

typedef struct {
    kf_worker_conf_t worker;
} lg_conf_t;

static const kf_worker_route_t s_routes[] = {
    {"order.created", lg_on_created},     {"order.paid", lg_on_paid},
    {"order.shipped", lg_on_shipped},     {"logistics.scan", lg_on_scan},
    {"order.confirmed", lg_on_ended},     {"order.closed", lg_on_ended},
    {"logistics.area_delay", lg_on_area_delay}, {"buyer.optout", kf_worker_optout},
};

int main(int argc, char **argv)
{
    kf_conf_t conf = {0};
    lg_conf_t lgconf = {0};
    kf_cfg_opt_t opts[KF_WORKER_NOPTS];
    kf_worker_opts("logistics", offsetof(lg_conf_t, worker), opts);
    kf_cfg_table_t extra[] = {{opts, KF_WORKER_NOPTS, &lgconf}};
    int code = 0;
    kf_daemon_t *d = kf_daemon_new("kefu-logistics", argc, argv, &conf, extra, 1, &code);
    if (!d)
        return code;
    kf_worker_def_t def = {.group = "logistics", .lua = kf_lua_logistics,
                           .routes = s_routes, .nroutes = KF_ARRAY_LEN(s_routes)};
    char err[512];
    kf_worker_t *w = kf_worker_new(d, &conf, &lgconf.worker, &def, err, sizeof(err));
    if (!w) {
        kf_log_err("cannot start: %s", err);
        code = 1;
    } else {
        code = kf_daemon_run(d);
    }
    kf_worker_destroy(&w);
    kf_daemon_destroy(&d);
    return code;
}
