/* kefu-review-repair: its topics and its Lua script; the rest is the worker runtime's. */
#include "kf_util.h"
#include "kf_worker.h"
#include "review_repair.h"

extern const char kf_lua_review_repair[];

static const kf_worker_route_t s_routes[] = {
    {"review.posted", rr_on_posted},   {"review.modified", rr_on_modified},
    {"review.deleted", rr_on_deleted}, {"case.updated", rr_on_case},
    {"buyer.optout", kf_worker_optout}, {"shop.config", rr_on_config},
};

int main(int argc, char **argv)
{
    const kf_worker_def_t def = {.group = "review-repair", .lua = kf_lua_review_repair,
                                 .routes = s_routes, .nroutes = KF_ARRAY_LEN(s_routes)};
    return kf_worker_main("kefu-review-repair", &def, argc, argv);
}
