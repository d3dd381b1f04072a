/* kefuctl sim: a seeded, deterministic shop simulator (DESIGN §6, DOMAIN §1).
 *
 * Prints NDJSON, one flat event per line (the JSON mapping of DESIGN §2), for one or more
 * shops over one or more shop-local days: shop.config, buyer profiles, a history of loyal
 * and repeat buyers' paid orders, the day's orders on a Taobao-like hour-of-day curve with
 * their payment or closing, a few buyer.optout, the shipments of the paid orders with their
 * tracking scans and confirmations (DOMAIN §2), the reviews and the agents' case updates
 * (DOMAIN §3), the repeat buyers' orders on their purchase cycles and a campaign per shop
 * (DOMAIN §4), and the sys.clock ticks that drive a simulated clock. Meant for
 * `kefuctl sim ... | kefuctl pub --file -`.
 *
 * Everything comes from the seed through keyed splitmix64 streams (one per shop-day, one per
 * buyer, one per shipment, ...): a run is reproducible byte for byte, and a shop's first day
 * does not change when --days or --shops grows. The logistics draw only from their own
 * streams and take their event numbers after the shop's other events: the orders and
 * payments are the same with or without them (--no-logistics). The reviews, in turn, come
 * after the logistics (kefuctl_sim_reviews.c, --no-reviews). The care (kefuctl_sim_care.c,
 * --no-care) draws from its own streams too and numbers its events in a series of their
 * own (sim<seed>-s<shop>-c<n>): every other event but shop.config is the same without it.
 * Events are generated as small records (the text is rendered only at output), sorted by
 * time (at equal times business events before the clock tick, then generation order), cut
 * at the last tick and printed.
 *
 * This file: the options, the event list and its order, the clock, the rendering and the
 * output. The orders and payments are made in kefuctl_sim_orders.c, the logistics in
 * kefuctl_sim_logistics.c, the reviews in kefuctl_sim_reviews.c, the care in
 * kefuctl_sim_care.c; kefuctl_sim.h is what they share. */
#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_sim.h"
#include "kf_clock.h"
#include "kf_util.h"

#define S_MAX_ORDERS 5000000LL         /* shops x days x orders */

/* ------------------------------------------------------------------ the events */

kefuctl_sim_ev_t *kefuctl_sim_push(kefuctl_sim_t *sim, kefuctl_sim_type_t type, int64_t t,
                                   uint16_t shop, uint32_t ref)
{
    if (sim->nevs == sim->ecap) {
        sim->ecap = sim->ecap ? sim->ecap * 2 : 4096;
        sim->evs = kf_xrealloc(sim->evs, sim->ecap * sizeof(*sim->evs));
    }
    kefuctl_sim_ev_t *ev = &sim->evs[sim->nevs];
    *ev = (kefuctl_sim_ev_t){.t = t, .gen = (uint32_t)sim->nevs, .ref = ref, .shop = shop,
                             .type = type};
    ev->n = type == SIM_EV_CLOCK ? ref : sim->counter++;
    sim->nevs++;
    return ev;
}

/* Ticks from local 00:00 of the first day to the end of the last day + --tail, inclusive. */
static void s_gen_clock(kefuctl_sim_t *sim)
{
    int64_t step = sim->o.tick * SIM_MIN_MS;
    int64_t end = sim->o.start + sim->o.days * SIM_DAY_MS + sim->o.tail * SIM_HOUR_MS;
    uint32_t k = 0;
    int64_t t = sim->o.start;
    for (; t <= end; t += step)
        kefuctl_sim_push(sim, SIM_EV_CLOCK, t, 0, k++);
    if (t - step < end) /* a tick interval that does not divide the span: end on the end */
        kefuctl_sim_push(sim, SIM_EV_CLOCK, end, 0, k++);
    sim->cutoff = end;
}

static int s_cmp_ev(const void *a, const void *b)
{
    const kefuctl_sim_ev_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    int cx = x->type == SIM_EV_CLOCK, cy = y->type == SIM_EV_CLOCK;
    if (cx != cy)
        return cx - cy;
    return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* ------------------------------------------------------------------ rendering */

void kefuctl_sim_set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, json_string(value));
}

void kefuctl_sim_set_int(json_t *o, const char *key, int64_t value)
{
    json_object_set_new(o, key, json_integer((json_int_t)value));
}

void kefuctl_sim_set_time(json_t *o, const char *key, int64_t ms)
{
    char buf[40];
    kf_time_format(ms, SIM_OFFSET, buf, sizeof(buf));
    kefuctl_sim_set_str(o, key, buf);
}

static void s_render_clock(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    kefuctl_sim_set_time(o, "now", ev->t);
}

typedef void(s_render_fn)(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o);

static const struct {
    const char *topic;
    s_render_fn *fn;
} s_types[] = {
    [SIM_EV_CONFIG] = {"shop.config", kefuctl_sim_render_config},
    [SIM_EV_CREATED] = {"order.created", kefuctl_sim_render_created},
    [SIM_EV_PAID] = {"order.paid", kefuctl_sim_render_status},
    [SIM_EV_CLOSED] = {"order.closed", kefuctl_sim_render_status},
    [SIM_EV_OPTOUT] = {"buyer.optout", kefuctl_sim_render_optout},
    [SIM_EV_SHIPPED] = {"order.shipped", kefuctl_sim_render_shipped},
    [SIM_EV_SCAN] = {"logistics.scan", kefuctl_sim_render_scan},
    [SIM_EV_CONFIRMED] = {"order.confirmed", kefuctl_sim_render_confirmed},
    [SIM_EV_HISTORY_CONFIRMED] = {"order.confirmed", kefuctl_sim_render_history_confirmed},
    [SIM_EV_AREA_DELAY] = {"logistics.area_delay", kefuctl_sim_render_area_delay},
    [SIM_EV_REVIEW_POSTED] = {"review.posted", kefuctl_sim_render_review},
    [SIM_EV_REVIEW_MODIFIED] = {"review.modified", kefuctl_sim_render_review},
    [SIM_EV_REVIEW_DELETED] = {"review.deleted", kefuctl_sim_render_review},
    [SIM_EV_CASE_UPDATED] = {"case.updated", kefuctl_sim_render_case},
    [SIM_EV_PROFILE] = {"buyer.profile", kefuctl_sim_render_profile},
    [SIM_EV_CAMPAIGN] = {"campaign.launch", kefuctl_sim_render_campaign},
    [SIM_EV_CLOCK] = {"sys.clock", s_render_clock},
};

/* One event as a flat JSON line: the envelope, then the payload's fields. */
static char *s_render(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev)
{
    json_t *o = json_object();
    char buf[80];
    kefuctl_sim_set_str(o, "topic", s_types[ev->type].topic);
    if (ev->type == SIM_EV_CLOCK)
        snprintf(buf, sizeof(buf), "sim%lld-clock-%u", sim->o.seed, (unsigned)ev->n);
    else if (ev->flags & SIM_EV_CARE)
        snprintf(buf, sizeof(buf), "sim%lld-s%u-c%u", sim->o.seed, (unsigned)ev->shop + 1,
                 (unsigned)ev->n);
    else
        snprintf(buf, sizeof(buf), "sim%lld-s%u-%u", sim->o.seed, (unsigned)ev->shop + 1,
                 (unsigned)ev->n);
    kefuctl_sim_set_str(o, "event_id", buf);
    if (ev->type != SIM_EV_CLOCK) {
        snprintf(buf, sizeof(buf), "s%u", (unsigned)ev->shop + 1);
        kefuctl_sim_set_str(o, "shop_id", buf);
    }
    kefuctl_sim_set_time(o, "occurred_at", ev->t);
    s_types[ev->type].fn(sim, ev, o);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* Prints the sorted events up to the last tick. */
static int s_output(kefuctl_sim_t *sim)
{
    for (size_t i = 0; i < sim->nevs && sim->evs[i].t <= sim->cutoff; i++) {
        if (kefuctl_interrupted() || ferror(stdout))
            break;
        char *text = s_render(sim, &sim->evs[i]);
        if (!text) {
            fprintf(stderr, "kefuctl: sim: cannot render event %zu\n", i);
            return KEFUCTL_FAIL;
        }
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
        sim->out++;
        sim->out_type[sim->evs[i].type]++;
        if (sim->evs[i].type == SIM_EV_REVIEW_POSTED &&
            sim->reviews[sim->evs[i].ref].rating != SIM_GOOD)
            sim->out_bad++;
        if (sim->evs[i].type == SIM_EV_PROFILE && sim->bday_in_run[sim->evs[i].state % 1232])
            sim->out_bday++;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "kefuctl: sim: cannot write the output\n");
        return KEFUCTL_FAIL;
    }
    return kefuctl_interrupted() ? KEFUCTL_FAIL : KEFUCTL_OK;
}

/* ------------------------------------------------------------------ options */

/* "YYYY-MM-DD" as local 00:00 at +08:00; a date that does not exist is refused. */
static int s_parse_start(const char *s, int64_t *ms)
{
    if (strlen(s) != 10)
        return KF_ERR;
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return KF_ERR;
    char buf[40];
    snprintf(buf, sizeof(buf), "%sT00:00:00+08:00", s);
    if (kf_time_parse(buf, ms) != KF_OK)
        return KF_ERR;
    kf_local_t t;
    kf_local(*ms, SIM_OFFSET, &t);
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    return t.year == y && t.month == m && t.day == d && y >= 2000 && y <= 2099 ? KF_OK : KF_ERR;
}

/* "1,3": 1-based day numbers within --days. */
static int s_parse_promo(kefuctl_sim_opts_t *o, const char *list)
{
    char *copy = kf_xstrdup(list), *save = NULL;
    int rc = *list ? KF_OK : KF_ERR;
    size_t n = strlen(list);
    if (n > 0 && (list[0] == ',' || list[n - 1] == ',' || strstr(list, ",,")))
        rc = KF_ERR;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == KF_OK;
         tok = strtok_r(NULL, ",", &save)) {
        long long d;
        if (kf_parse_ll(tok, 1, o->days, &d) != KF_OK)
            rc = KF_ERR;
        else
            o->promo[d] = true;
    }
    free(copy);
    return rc;
}

typedef struct {
    int key;
    const char *name;
    long long min, max;
    size_t off;
} s_num_opt_t;

static const s_num_opt_t s_nums[] = {
    {'S', "--shops", 1, SIM_MAX_SHOPS, offsetof(kefuctl_sim_opts_t, shops)},
    {'D', "--days", 1, SIM_MAX_DAYS, offsetof(kefuctl_sim_opts_t, days)},
    {'s', "--seed", 0, 9223372036854775807LL, offsetof(kefuctl_sim_opts_t, seed)},
    {'O', "--orders", 1, S_MAX_ORDERS, offsetof(kefuctl_sim_opts_t, orders)},
    {'T', "--tick", 1, 1440, offsetof(kefuctl_sim_opts_t, tick)},
    {'L', "--tail", 0, 720, offsetof(kefuctl_sim_opts_t, tail)},
};

static const struct option s_long[] = {
    {"shops", required_argument, NULL, 'S'},   {"days", required_argument, NULL, 'D'},
    {"seed", required_argument, NULL, 's'},    {"orders", required_argument, NULL, 'O'},
    {"tick", required_argument, NULL, 'T'},    {"tail", required_argument, NULL, 'L'},
    {"start", required_argument, NULL, 'a'},   {"promo-days", required_argument, NULL, 'p'},
    {"no-history", no_argument, NULL, 'H'},    {"no-logistics", no_argument, NULL, 'G'},
    {"no-reviews", no_argument, NULL, 'R'},    {"no-care", no_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
};

/* A numeric option: KF_OK when c is one (the usage error, if any, in *rc). */
static int s_parse_num(kefuctl_sim_opts_t *o, int c, const char *arg, int *rc)
{
    for (size_t i = 0; i < KF_ARRAY_LEN(s_nums); i++) {
        const s_num_opt_t *n = &s_nums[i];
        if (n->key != c)
            continue;
        if (kf_parse_ll(arg, n->min, n->max, (long long *)((char *)o + n->off)) != KF_OK)
            *rc = kefuctl_usage_error(&kefuctl_verb_sim, "%s: '%s' is not a whole number in "
                                      "%lld..%lld", n->name, arg, n->min, n->max);
        return KF_OK;
    }
    return KF_ERR;
}

static int s_parse_args(kefuctl_sim_opts_t *o, int argc, char **argv)
{
    const kefuctl_verb_t *v = &kefuctl_verb_sim;
    const char *start = "2026-11-10", *promo = NULL;
    *o = (kefuctl_sim_opts_t){.shops = 1,
                              .days = 1,
                              .seed = 1,
                              .orders = 400,
                              .tick = 5,
                              .tail = 72,
                              .history = true,
                              .logistics = true,
                              .reviews = true,
                              .care = true};
    int c, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, ":h", s_long, NULL)) != -1) {
        if (s_parse_num(o, c, optarg, &rc) == KF_OK)
            continue;
        if (c == 'a')
            start = optarg;
        else if (c == 'p')
            promo = optarg;
        else if (c == 'H')
            o->history = false;
        else if (c == 'G')
            o->logistics = false;
        else if (c == 'R')
            o->reviews = false;
        else if (c == 'C')
            o->care = false;
        else if (c == 'h') {
            kefuctl_print_usage(stdout, v, true);
            return KEFUCTL_OK;
        } else
            return kefuctl_getopt_error(v, c, argv);
    }
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return kefuctl_usage_error(v, "unexpected argument '%s'", argv[optind]);
    if (s_parse_start(start, &o->start) != KF_OK)
        return kefuctl_usage_error(v, "--start: '%s' is not a date YYYY-MM-DD (2000..2099)",
                                   start);
    if (promo && s_parse_promo(o, promo) != KF_OK)
        return kefuctl_usage_error(v, "--promo-days: '%s' is not a comma-separated list of "
                                   "day numbers in 1..%lld", promo, o->days);
    if (o->shops * o->days * o->orders > S_MAX_ORDERS)
        return kefuctl_usage_error(v, "--shops x --days x --orders is %lld, at most %lld",
                                   o->shops * o->days * o->orders, S_MAX_ORDERS);
    return -1;
}

/* ------------------------------------------------------------------ the verb */

static int s_sim(kefuctl_t *ctl, int argc, char **argv)
{
    kefuctl_sim_t *sim = kf_xcalloc(1, sizeof(*sim));
    int rc = s_parse_args(&sim->o, argc, argv);
    if (rc >= 0)
        goto done;
    /* buyer pool per shop: 1.5 x orders ordinary buyers, and 5% of the pool loyal */
    uint32_t ordinary = (uint32_t)((sim->o.orders * 3 + 1) / 2);
    sim->nloyal = (ordinary + 10) / 19 ? (ordinary + 10) / 19 : 1;
    sim->npool = sim->nloyal + ordinary;
    sim->ncare = sim->o.care ? kefuctl_sim_care_buyers(&sim->o) : 0;
    sim->cutoff = sim->o.start + sim->o.days * SIM_DAY_MS + sim->o.tail * SIM_HOUR_MS;
    kefuctl_sim_care_prepare(sim);
    for (long long s = 0; s < sim->o.shops; s++)
        kefuctl_sim_gen_shop(sim, (uint16_t)s);
    s_gen_clock(sim);
    qsort(sim->evs, sim->nevs, sizeof(*sim->evs), s_cmp_ev);
    rc = s_output(sim);
    fprintf(stderr, "sim: %llu events (%llu orders, %llu paid, %llu closed, %llu shipped, "
                    "%llu scans, %llu clock ticks, %llu reviews (%llu neutral/bad), %llu "
                    "profiles (%llu birthdays in the run), %llu campaigns) for %lld shop(s) over "
                    "%lld day(s), seed %lld\n",
            sim->out, sim->out_type[SIM_EV_CREATED], sim->out_type[SIM_EV_PAID],
            sim->out_type[SIM_EV_CLOSED], sim->out_type[SIM_EV_SHIPPED], sim->out_type[SIM_EV_SCAN],
            sim->out_type[SIM_EV_CLOCK], sim->out_type[SIM_EV_REVIEW_POSTED], sim->out_bad,
            sim->out_type[SIM_EV_PROFILE], sim->out_bday, sim->out_type[SIM_EV_CAMPAIGN],
            sim->o.shops, sim->o.days, sim->o.seed);
done:
    free(sim->orders);
    free(sim->evs);
    free(sim->ships);
    free(sim->reviews);
    free(sim);
    return rc;
}

const kefuctl_verb_t kefuctl_verb_sim = {
    .name = "sim",
    .fn = s_sim,
    .synopsis = "sim [--shops N] [--days N] [--start YYYY-MM-DD] [--seed N] [--orders N] "
                "[--promo-days LIST] [--tick MINUTES] [--tail HOURS] [--no-history] "
                "[--no-logistics] [--no-reviews] [--no-care]",
    .help = "    Prints a deterministic simulation as NDJSON for `kefuctl pub --file -`:\n"
            "    per shop (s1..sN) a shop.config (with festivals: 01-01, 06-18, 11-11, 12-12\n"
            "    and a 店庆 3 days after the start), buyer.profile for 60% of the buyers (85%\n"
            "    with a birthday MM-DD, 2% of those steered into the run's days and the 10\n"
            "    after them; a few manual tags: VIP, 母婴, 学生, 铲屎官, 企业采购), the history:\n"
            "    loyal buyers' paid orders of the 30 days before and repeat buyers' (one per\n"
            "    8 orders, order ids s<N>-r...) who buy a consumable every 14-45 days +-2,\n"
            "    still (since 90-130 days before; for half of them the replenishment is due\n"
            "    early in the run, and they go on buying) or no longer (stopped 60-200 days\n"
            "    before: at risk, hibernating, lost), the orders of each shop-local (+08:00)\n"
            "    day on an hour-of-day traffic curve with their order.paid / order.closed, a\n"
            "    few buyer.optout, the paid orders' order.shipped (7 carriers; 3% late), their\n"
            "    logistics.scan (kuaidi100 states: pickup, transit, delivery; about 7% with an\n"
            "    anomaly: no pickup, stalled, difficult, signed by someone else, uncollected,\n"
            "    refused, out of area, damaged; 1% sent twice, 1% late, 20% without order_id)\n"
            "    and order.confirmed, a logistics.area_delay per shop on day 1, the reviews of\n"
            "    the confirmed orders (review.posted 0-3 days after: 2.5% neutral/bad, 30% of\n"
            "    the good ones; for the neutral/bad ones the agents' case.updated, the\n"
            "    buyers' review.modified / review.deleted), a campaign.launch per shop on day\n"
            "    2 from 10:00 to 20:00 (at_risk by sms, champions by im, or 母婴 + silver by\n"
            "    im), and sys.clock ticks from 00:00 of the first day to the end of the last\n"
            "    day + the tail, sorted by time. Events after the last tick are left out. The\n"
            "    same options give the same bytes; a summary goes to stderr.\n"
            "    --shops N           shops s1..sN (default 1, at most 1000)\n"
            "    --days N            days (default 1, at most 366)\n"
            "    --start YYYY-MM-DD  the first day (default 2026-11-10)\n"
            "    --seed N            the random seed (default 1); event ids are sim<N>-...\n"
            "    --orders N          orders per shop per day, +-10% (default 400);\n"
            "                        shops x days x orders at most 5000000\n"
            "    --promo-days LIST   promotion days, e.g. 1,2 (orders say \"promotion\":\"双11\";\n"
            "                        12% instead of 9% of normal orders are never paid)\n"
            "    --tick MINUTES      sys.clock interval (default 5)\n"
            "    --tail HOURS        ticks after the last day (default 72, may be 0)\n"
            "    --no-history        no history block (the loyal and the repeat buyers' past\n"
            "                        orders)\n"
            "    --no-logistics      no shipments, scans, confirmations or area delays (the\n"
            "                        orders and payments are the same either way)\n"
            "    --no-reviews        no reviews, case updates or shop.config agents (the other\n"
            "                        events are the same either way)\n"
            "    --no-care           no buyer.profile, repeat buyers, festivals or\n"
            "                        campaign.launch (the other events are the same either\n"
            "                        way but shop.config: no festivals, and with a history it\n"
            "                        comes 30 days before the start instead of 240)",
};
