/* kefu-pay-reminder: argv, config, signals, systemd and the loop — nothing else. */
#include <stddef.h>
#include <stdio.h>

#include "kf_daemon.h"
#include "kf_log.h"
#include "kf_util.h"
#include "kf_worker.h"
#include "pay_reminder.h"

extern const char kf_lua_pay_reminder[];

typedef struct {
    kf_worker_conf_t worker;
} pr_conf_t;

static const kf_worker_route_t s_routes[] = {
    {"order.created", pr_on_created},
    {"order.paid", pr_on_paid},
    {"order.closed", pr_on_closed},
    {"buyer.optout", kf_worker_optout},
};

int main(int argc, char **argv)
{
    kf_conf_t conf = {0};
    pr_conf_t prconf = {0};
    kf_cfg_opt_t opts[KF_WORKER_NOPTS];
    kf_worker_opts("pay-reminder", offsetof(pr_conf_t, worker), opts);
    kf_cfg_table_t extra[] = {{opts, KF_WORKER_NOPTS, &prconf}};
    int code = 0;
    kf_daemon_t *d = kf_daemon_new("kefu-pay-reminder", argc, argv, &conf, extra, 1, &code);
    if (!d)
        return code;
    kf_worker_def_t def = {.group = "pay-reminder", .lua = kf_lua_pay_reminder,
                           .routes = s_routes, .nroutes = KF_ARRAY_LEN(s_routes)};
    char err[512];
    kf_worker_t *w = kf_worker_new(d, &conf, &prconf.worker, &def, err, sizeof(err));
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
