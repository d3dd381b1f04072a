/* kefu-logistics: its topics and its Lua script; the rest is the worker runtime's. */
#include "kf_util.h"
#include "kf_worker.h"
#include "logistics.h"

extern const char kf_lua_logistics[];

static const kf_worker_route_t s_routes[] = {
    {"order.created", lg_on_created},     {"order.paid", lg_on_paid},
    {"order.shipped", lg_on_shipped},     {"logistics.scan", lg_on_scan},
    {"order.confirmed", lg_on_ended},     {"order.closed", lg_on_ended},
    {"logistics.area_delay", lg_on_area_delay}, {"buyer.optout", kf_worker_optout},
};

int main(int argc, char **argv)
{
    const kf_worker_def_t def = {.group = "logistics", .lua = kf_lua_logistics, .routes = s_routes,
                                 .nroutes = KF_ARRAY_LEN(s_routes)};
    return kf_worker_main("kefu-logistics", &def, argc, argv);
}
