/* kefu-pay-reminder: its topics and its Lua script; the rest is the worker runtime's. */
#include "kf_util.h"
#include "kf_worker.h"
#include "pay_reminder.h"

extern const char kf_lua_pay_reminder[];

static const kf_worker_route_t s_routes[] = {
    {"order.created", pr_on_created},
    {"order.paid", pr_on_paid},
    {"order.closed", pr_on_closed},
    {"buyer.optout", kf_worker_optout},
};

int main(int argc, char **argv)
{
    const kf_worker_def_t def = {.group = "pay-reminder", .lua = kf_lua_pay_reminder, .routes = s_routes,
                                 .nroutes = KF_ARRAY_LEN(s_routes)};
    return kf_worker_main("kefu-pay-reminder", &def, argc, argv);
}
