/* kefu-crm-care: its topics and its Lua script; the rest is the worker runtime's. */
#include "crm_care.h"
#include "kf_util.h"
#include "kf_worker.h"

extern const char kf_lua_crm_care[];

static const kf_worker_route_t s_routes[] = {
    {"order.created", cc_on_created},     {"order.paid", cc_on_paid},
    {"order.closed", cc_on_closed},       {"order.confirmed", cc_on_confirmed},
    {"order.shipped", cc_on_shipped},     {"logistics.scan", cc_on_scan},
    {"buyer.profile", cc_on_profile},     {"buyer.optout", kf_worker_optout},
    {"campaign.launch", cc_on_campaign},  {"shop.config", cc_on_config},
};

int main(int argc, char **argv)
{
    const kf_worker_def_t def = {.group = "crm-care", .lua = kf_lua_crm_care,
                                 .routes = s_routes, .nroutes = KF_ARRAY_LEN(s_routes)};
    return kf_worker_main("kefu-crm-care", &def, argc, argv);
}
