/* kefuctl sim: a seeded, deterministic shop simulator (DESIGN §6, DOMAIN §1).
 *
 * Prints NDJSON, one flat event per line (the JSON mapping of DESIGN §2), for one or more
 * shops over one or more shop-local days: shop.config, a history of loyal buyers' paid
 * orders, the day's orders on a Taobao-like hour-of-day curve with their payment or
 * closing, a few buyer.optout, the shipments of the paid orders with their tracking scans
 * and confirmations (DOMAIN §2), and the sys.clock ticks that drive a simulated clock. Meant
 * for `kefuctl sim ... | kefuctl pub --file -`.
 *
 * Everything comes from the seed through keyed splitmix64 streams (one per shop-day, one per
 * buyer, one per shipment, ...): a run is reproducible byte for byte, and a shop's first day
 * does not change when --days or --shops grows. The logistics draw only from their own
 * streams and take their event numbers after the shop's other events: the orders and
 * payments are the same with or without them (--no-logistics). Events are generated as
 * small records (the text is rendered only at output), sorted by time (at equal times
 * business events before the clock tick, then generation order), cut at the last tick and
 * printed. */
#include <assert.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kf_clock.h"
#include "kf_util.h"

#define S_OFFSET 480                   /* +08:00: every simulated shop */
#define S_MAX_SHOPS 1000
#define S_MAX_DAYS 366
#define S_MAX_ORDERS 5000000LL         /* shops x days x orders */
#define S_MIN_MS 60000LL
#define S_HOUR_MS 3600000LL
#define S_DAY_MS 86400000LL
#define S_HISTORY_DAYS 30
#define S_LARGE_FEN 50000              /* DOMAIN §1: large order */

/* ------------------------------------------------------------------ the data */

static const char *const s_shop_names[] = {
    "小美家居旗舰店", "暖阳家纺专营店", "山野茶仓", "拾光母婴生活馆", "青禾数码配件店",
    "云裳女装旗舰店", "木子厨具专营店", "北纬三十度零食铺", "简约宅家日用百货", "元气运动户外店",
    "花间美妆集合店", "晨光文具旗舰店",
};

typedef struct {
    const char *sku_id, *title;
    int64_t price_fen;
} s_product_t;

/* Regular products first (each under S_LARGE_FEN), then S_NPREMIUM premium ones. */
#define S_NPREMIUM 6
static const s_product_t s_catalog[] = {
    {"k1001", "纯棉加厚毛巾浴巾套装A类婴儿可用吸水速干不掉毛家用成人男女情侣款", 5990},
    {"k1002", "北欧风陶瓷马克杯大容量办公室家用情侣水杯带盖勺创意个性早餐牛奶咖啡杯", 3900},
    {"k1003", "记忆棉护颈枕头单人慢回弹颈椎枕成人睡眠专用", 12900},
    {"k1004", "316不锈钢保温杯男女大容量便携户外车载水杯1000ml", 8900},
    {"k1005", "日式收纳盒抽屉式衣柜收纳箱塑料储物整理箱三件套", 6990},
    {"k1006", "冬季加厚珊瑚绒睡衣女款法兰绒家居服套装可外穿秋冬季保暖加绒长袖", 12800},
    {"k1007", "真无线蓝牙耳机主动降噪超长续航入耳式运动游戏耳机适用苹果华为小米", 19900},
    {"k1008", "云南勐海古树普洱茶熟茶357g茶饼", 16800},
    {"k1009", "新疆阿克苏冰糖心苹果5斤装当季新鲜水果", 4990},
    {"k1010", "五常大米稻花香10斤装当季新米", 8990},
    {"k1011", "手工红糖姜茶独立小包装", 2990},
    {"k1012", "儿童益智木质拼图3-6岁早教玩具", 3990},
    {"k1013", "婴儿纸尿裤L码超薄透气拉拉裤4包装", 23900},
    {"k1014", "防滑硅藻泥地垫卫生间吸水脚垫", 3590},
    {"k1015", "家用电动牙刷成人声波全自动软毛充电式", 15900},
    {"k1016", "麦饭石不粘锅炒锅家用炒菜锅电磁炉燃气灶通用少油烟平底锅32cm带锅盖", 16900},
    {"k1017", "多功能破壁机家用加热全自动豆浆机料理机", 29900},
    {"k1018", "LED护眼台灯学生宿舍卧室床头阅读灯", 9900},
    {"k1019", "羊毛混纺围巾女冬季百搭保暖加厚披肩", 8800},
    {"k1020", "男士纯棉短袖T恤宽松夏季3件装", 9900},
    {"k1021", "运动跑步鞋男款透气减震轻便网面休闲鞋", 25900},
    {"k1022", "玻尿酸补水保湿面膜20片", 6900},
    {"k1023", "香薰蜡烛礼盒无烟卧室助眠", 7900},
    {"k1024", "全价成猫幼猫通用型猫粮10kg", 19900},
    {"k1025", "透明防摔手机壳", 2900},
    {"k1101", "2026新款真丝四件套100支长绒棉床单被套家用全棉刺绣款床上用品", 59900},
    {"k1102", "澳洲进口羊毛被冬被加厚保暖双人被芯200x230cm", 69900},
    {"k1103", "天然乳胶床垫泰国进口5cm家用榻榻米软垫1.8m床双人加厚款", 129900},
    {"k1104", "扫地机器人全自动扫拖一体机智能家用自动集尘洗拖布烘干激光导航", 199900},
    {"k1105", "空气净化器家用除甲醛卧室除烟味负离子", 89900},
    {"k1106", "实木茶盘家用功夫茶具套装整套", 56800},
};
#define S_NCATALOG KF_ARRAY_LEN(s_catalog)
#define S_NREGULAR (S_NCATALOG - S_NPREMIUM)

typedef struct {
    const char *city, *province;
    unsigned weight;
} s_place_t;

static const s_place_t s_places[] = {
    {"杭州", "浙江", 6}, {"宁波", "浙江", 3}, {"温州", "浙江", 2}, {"上海", "上海", 8},
    {"北京", "北京", 7}, {"天津", "天津", 2}, {"重庆", "重庆", 3}, {"广州", "广东", 6},
    {"深圳", "广东", 6}, {"东莞", "广东", 2}, {"南京", "江苏", 4}, {"苏州", "江苏", 4},
    {"无锡", "江苏", 2}, {"合肥", "安徽", 2}, {"福州", "福建", 2}, {"厦门", "福建", 2},
    {"南昌", "江西", 2}, {"济南", "山东", 2}, {"青岛", "山东", 2}, {"郑州", "河南", 3},
    {"武汉", "湖北", 4}, {"长沙", "湖南", 3}, {"成都", "四川", 5}, {"贵阳", "贵州", 1},
    {"昆明", "云南", 2}, {"西安", "陕西", 3}, {"石家庄", "河北", 2}, {"太原", "山西", 1},
    {"沈阳", "辽宁", 2}, {"大连", "辽宁", 1}, {"长春", "吉林", 1}, {"哈尔滨", "黑龙江", 1},
    {"南宁", "广西", 1}, {"海口", "海南", 1}, {"兰州", "甘肃", 1}, {"银川", "宁夏", 1},
    {"西宁", "青海", 1}, {"呼和浩特", "内蒙古", 1}, {"乌鲁木齐", "新疆", 1}, {"拉萨", "西藏", 1},
};

static const char *const s_surnames[] = {
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
    "郭", "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "韩", "冯", "邓", "曹", "彭",
    "欧阳", "诸葛",
};
static const char *const s_given[] = {
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    "明", "超", "秀", "霞", "平", "刚", "英", "华", "玉", "萍", "红", "文", "婷", "雪", "琳",
    "晨", "浩", "宇", "欣", "然", "思", "雨", "子", "涵", "佳", "怡", "梓", "轩", "诺",
};
static const char *const s_nick_a[] = {
    "快乐的", "爱吃鱼的", "睡不醒的", "会飞的", "安静的", "奔跑的", "甜甜的", "小小",
    "阳光", "温柔的", "追风的", "爱旅行的",
};
static const char *const s_nick_b[] = {
    "小猫", "熊猫", "兔子", "星星", "柠檬", "小鹿", "橘子", "云朵", "蜗牛", "大白", "向日葵", "咸鱼",
};

/* Taobao traffic by local hour 0..23, in half units (3, 1.5, 1, 0.5, ...). */
static const unsigned s_hour_weight[24] = {6,  3,  2,  1,  1,  1,  2,  4,  6,  10, 14, 12,
                                           10, 12, 14, 14, 12, 10, 10, 14, 18, 20, 18, 12};

/* Logistics (DOMAIN §2): carriers with their share of the parcels (percent) and the letters
 * their tracking numbers start with. */
typedef struct {
    const char *name, *prefix;
    unsigned weight;
} s_carrier_t;

static const s_carrier_t s_carriers[] = {
    {"中通", "ZT", 25}, {"圆通", "YT", 20}, {"韵达", "YD", 15}, {"申通", "ST", 10},
    {"极兔", "JT", 10}, {"顺丰", "SF", 12}, {"邮政", "EMS", 8},
};

/* Remote provinces: transit takes 3-5 days instead of 1-2. */
static const char *const s_remote[] = {"新疆", "西藏", "青海", "内蒙古", "甘肃", "宁夏", "海南"};
/* Where a shop ships from (by shop), the trunk hubs in between, where weather strikes. */
static const char *const s_origins[] = {"杭州", "广州", "上海", "苏州", "深圳", "宁波",
                                        "成都", "武汉", "南京", "东莞", "厦门", "郑州"};
static const char *const s_hubs[] = {"郑州", "武汉", "西安", "成都", "长沙", "南京",
                                     "上海", "广州", "北京", "沈阳", "兰州"};
static const char *const s_big_cities[] = {"上海", "北京", "广州", "深圳", "杭州", "成都",
                                           "武汉"};
/* Scan description words, chosen by the shipment's `words`. */
static const char *const s_outlets[] = {"城东", "城西", "城南", "城北", "高新", "经开",
                                        "新区", "中心"};
static const char *const s_signers[] = {"门卫", "家人", "前台", "物业", "同事", "邻居",
                                        "门卫", "家人"};

/* ------------------------------------------------------------------ random numbers */

typedef struct {
    uint64_t s;
} s_rng_t;

/* splitmix64: a step of the stream and the finaliser used to key streams. */
static uint64_t s_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t s_next(s_rng_t *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return s_mix(r->s);
}

/* A stream keyed by (seed, tag, a, b): independent of every other key. */
static s_rng_t s_stream(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b)
{
    uint64_t h = s_mix(seed + 0x9e3779b97f4a7c15ULL);
    h = s_mix(h ^ (tag * 0xd6e8feb86659fd93ULL));
    h = s_mix(h ^ (a + 0x632be59bd9b4e019ULL));
    h = s_mix(h ^ (b * 0xa0761d6478bd642fULL + 1));
    return (s_rng_t){h};
}

enum { S_TAG_DAY = 1, S_TAG_HISTORY, S_TAG_BUYER, S_TAG_OPTOUT, S_TAG_SHIP, S_TAG_ORIGIN,
       S_TAG_AREA, S_TAG_TRACKING };

static double s_unit(s_rng_t *r) /* [0, 1) */
{
    return (double)(s_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t s_below(s_rng_t *r, uint64_t n) /* [0, n), n > 0 */
{
    return (uint64_t)(s_unit(r) * (double)n);
}

static int64_t s_range(s_rng_t *r, int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)s_below(r, (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------ the model */

typedef enum { S_PAID, S_CLOSED_TIMEOUT, S_CLOSED_BUYER } s_outcome_t;

typedef struct {
    int64_t created, end;  /* creation; payment or closing */
    int64_t total_fen;
    uint32_t buyer;        /* index in the shop's buyer pool, loyal buyers first */
    uint32_t n;            /* order number: per shop-day, or per shop in the history */
    uint16_t shop;         /* 0-based */
    uint8_t history, promo, flash, outcome;
    uint8_t nitems, sku[3], qty[3];
} s_order_t;

/* A shipment of a paid order. */
typedef struct {
    int64_t shipped_at;
    uint32_t order;        /* index in orders */
    uint8_t carrier;       /* index in s_carriers */
    uint8_t dest;          /* the buyer's place: index in s_places */
    uint16_t words;        /* picks the outlet, courier, locker... of the descriptions */
} s_ship_t;

typedef enum {
    S_EV_CONFIG, S_EV_CREATED, S_EV_PAID, S_EV_CLOSED, S_EV_OPTOUT, S_EV_SHIPPED, S_EV_SCAN,
    S_EV_CONFIRMED, S_EV_AREA_DELAY, S_EV_HISTORY_CONFIRMED, S_EV_CLOCK
} s_type_t;

#define S_SCAN_NO_ORDER 0x01 /* flags: the scan leaves order_id out */

typedef struct {
    int64_t t;             /* business time (a late scan: when it is published), epoch ms */
    uint32_t gen;          /* generation order: the sort's last key */
    uint32_t ref;          /* order, buyer or shipment index, tick number or place */
    uint32_t n;            /* per-shop (or clock) counter: the event_id */
    uint16_t shop;
    uint8_t type;
    uint8_t flags;         /* scans: S_SCAN_NO_ORDER */
    uint16_t state;        /* scans: the kuaidi100 code */
    uint8_t city, next;    /* scans: where (index in s_places), the next stop */
    uint32_t early;        /* scans: ms between the scan's `at` and t */
} s_ev_t;

typedef struct {
    long long shops, days, seed, orders, tick, tail;
    int64_t start;         /* local 00:00 of the first day */
    bool history, logistics;
    bool promo[S_MAX_DAYS + 1]; /* 1-based day numbers */
} s_opts_t;

typedef struct {
    s_opts_t o;
    uint32_t nloyal, npool;  /* buyer pool per shop: loyal [0, nloyal), then ordinary */
    s_order_t *orders;
    size_t norders, ocap;
    s_ev_t *evs;
    size_t nevs, ecap;
    s_ship_t *ships;
    size_t nships, scap;
    uint32_t counter;        /* the current shop's event counter */
    int64_t cutoff;          /* the last tick: nothing later is printed */
    unsigned long long out, out_type[S_EV_CLOCK + 1]; /* events printed, by type */
} s_sim_t;

static s_ev_t *s_push(s_sim_t *sim, s_type_t type, int64_t t, uint16_t shop, uint32_t ref)
{
    if (sim->nevs == sim->ecap) {
        sim->ecap = sim->ecap ? sim->ecap * 2 : 4096;
        sim->evs = kf_xrealloc(sim->evs, sim->ecap * sizeof(*sim->evs));
    }
    s_ev_t *ev = &sim->evs[sim->nevs];
    *ev = (s_ev_t){.t = t, .gen = (uint32_t)sim->nevs, .ref = ref, .shop = shop, .type = type};
    ev->n = type == S_EV_CLOCK ? ref : sim->counter++;
    sim->nevs++;
    return ev;
}

static s_order_t *s_order_new(s_sim_t *sim)
{
    if (sim->norders == sim->ocap) {
        sim->ocap = sim->ocap ? sim->ocap * 2 : 4096;
        sim->orders = kf_xrealloc(sim->orders, sim->ocap * sizeof(*sim->orders));
    }
    s_order_t *o = &sim->orders[sim->norders++];
    memset(o, 0, sizeof(*o));
    return o;
}

/* A time of the day that starts at midnight: the hour on the traffic curve, then a whole
 * second within it. */
static int64_t s_pick_time(s_rng_t *r, int64_t midnight)
{
    unsigned sum = 0, h = 0;
    for (unsigned i = 0; i < 24; i++)
        sum += s_hour_weight[i];
    unsigned x = (unsigned)s_below(r, sum);
    while (x >= s_hour_weight[h])
        x -= s_hour_weight[h++];
    return midnight + h * S_HOUR_MS + s_range(r, 0, 3599) * 1000;
}

static int64_t s_total(const s_order_t *o)
{
    int64_t t = 0;
    for (unsigned i = 0; i < o->nitems; i++)
        t += o->qty[i] * s_catalog[o->sku[i]].price_fen;
    return t;
}

/* 1-3 distinct items; a large order has a premium item first, any other stays under
 * S_LARGE_FEN (quantities, then items, are taken back until it does). */
static void s_gen_items(s_rng_t *r, s_order_t *o, bool large)
{
    unsigned u = (unsigned)s_below(r, 100);
    o->nitems = u < 60 ? 1 : u < 88 ? 2 : 3;
    for (unsigned i = 0; i < o->nitems; i++) {
        bool dup;
        do {
            o->sku[i] = (uint8_t)(large && i == 0 ? S_NREGULAR + s_below(r, S_NPREMIUM)
                                                  : s_below(r, S_NREGULAR));
            dup = false;
            for (unsigned k = 0; k < i; k++)
                dup = dup || o->sku[k] == o->sku[i];
        } while (dup);
        u = (unsigned)s_below(r, 100);
        o->qty[i] = u < 75 ? 1 : u < 93 ? 2 : 3;
    }
    while (!large && s_total(o) >= S_LARGE_FEN) {
        unsigned big = 0;
        for (unsigned i = 1; i < o->nitems; i++)
            if (o->qty[i] > o->qty[big])
                big = i;
        if (o->qty[big] > 1)
            o->qty[big]--;
        else
            o->nitems--;
    }
    o->total_fen = s_total(o);
}

/* DOMAIN §1: 9% (12% in a promotion) of normal orders are never paid, 1 point of them
 * closed by the buyer; 10% pay late; flash sales close after 30 min. */
static void s_gen_payment(s_rng_t *r, s_order_t *o)
{
    double u = s_unit(r);
    int64_t c = o->created;
    o->outcome = S_PAID;
    if (o->flash) {
        if (u < 0.70)
            o->end = c + s_range(r, 60, 540) * 1000;
        else if (u < 0.85)
            o->end = c + s_range(r, 660, 1680) * 1000;
        else {
            o->outcome = S_CLOSED_TIMEOUT;
            o->end = c + 30 * S_MIN_MS;
        }
        return;
    }
    double unpaid = o->promo ? 0.12 : 0.09;
    if (u < 0.01) {
        o->outcome = S_CLOSED_BUYER;
        o->end = c + s_range(r, 600, 7200) * 1000;
    } else if (u < unpaid) {
        o->outcome = S_CLOSED_TIMEOUT;
        o->end = c + 72 * S_HOUR_MS;
    } else if (u < unpaid + 0.10) {
        o->end = c + s_range(r, 40 * 60, 60 * 3600) * 1000;
    } else {
        o->end = c + s_range(r, 60, 1200) * 1000;
    }
}

/* order.created then its order.paid / order.closed */
static void s_push_order(s_sim_t *sim, const s_order_t *o)
{
    uint32_t idx = (uint32_t)(o - sim->orders);
    s_push(sim, S_EV_CREATED, o->created, o->shop, idx);
    s_push(sim, o->outcome == S_PAID ? S_EV_PAID : S_EV_CLOSED, o->end, o->shop, idx);
}

/* Every loyal buyer: 2 orders created and paid during the 30 days before the start. */
static void s_gen_history(s_sim_t *sim, uint16_t shop)
{
    s_rng_t r = s_stream((uint64_t)sim->o.seed, S_TAG_HISTORY, shop, 0);
    uint32_t n = 0;
    for (uint32_t b = 0; b < sim->nloyal; b++) {
        for (int k = 0; k < 2; k++) {
            s_order_t *o = s_order_new(sim);
            int64_t day = sim->o.start - s_range(&r, 2, S_HISTORY_DAYS) * S_DAY_MS;
            o->created = s_pick_time(&r, day);
            o->buyer = b;
            o->n = ++n;
            o->shop = shop;
            o->history = 1;
            s_gen_items(&r, o, s_unit(&r) < 0.06);
            o->outcome = S_PAID;
            o->end = o->created + s_range(&r, 60, 1200) * 1000;
            s_push_order(sim, o);
        }
    }
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One shop-day: --orders +-10% orders, numbered in creation order. */
static void s_gen_day(s_sim_t *sim, uint16_t shop, int day)
{
    s_rng_t r = s_stream((uint64_t)sim->o.seed, S_TAG_DAY, shop, (uint64_t)day);
    int64_t midnight = sim->o.start + (int64_t)day * S_DAY_MS;
    long long n = llround((double)sim->o.orders * (0.9 + 0.2 * s_unit(&r)));
    if (n < 1)
        n = 1;
    int64_t *times = kf_xmalloc((size_t)n * sizeof(*times));
    for (long long i = 0; i < n; i++)
        times[i] = s_pick_time(&r, midnight);
    qsort(times, (size_t)n, sizeof(*times), s_cmp_i64);
    for (long long i = 1; i <= n; i++) {
        s_order_t *o = s_order_new(sim);
        o->created = times[i - 1];
        if (s_unit(&r) < 0.20) /* a repeat buyer */
            o->buyer = (uint32_t)s_below(&r, sim->nloyal);
        else
            o->buyer = sim->nloyal + (uint32_t)s_below(&r, sim->npool - sim->nloyal);
        o->n = (uint32_t)i;
        o->shop = shop;
        o->promo = sim->o.promo[day + 1];
        o->flash = s_unit(&r) < 0.05;
        s_gen_items(&r, o, s_unit(&r) < 0.06);
        s_gen_payment(&r, o);
        s_push_order(sim, o);
    }
    free(times);
}

/* 1% of the buyers who ordered opt out of sms, on the day of one of their orders. */
static void s_gen_optouts(s_sim_t *sim, uint16_t shop, size_t first)
{
    uint32_t *pick = kf_xcalloc(sim->npool, sizeof(*pick)); /* orders seen, then countdown+1 */
    for (size_t i = first; i < sim->norders; i++)
        if (!sim->orders[i].history)
            pick[sim->orders[i].buyer]++;
    for (uint32_t b = 0; b < sim->npool; b++) {
        s_rng_t r = s_stream((uint64_t)sim->o.seed, S_TAG_OPTOUT, shop, b);
        pick[b] = pick[b] && s_unit(&r) < 0.01 ? 1 + (uint32_t)s_below(&r, pick[b]) : 0;
    }
    for (size_t i = first; i < sim->norders; i++) {
        const s_order_t *o = &sim->orders[i];
        if (o->history || pick[o->buyer] == 0 || --pick[o->buyer] != 0)
            continue;
        s_rng_t r = s_stream((uint64_t)sim->o.seed, S_TAG_OPTOUT, shop, o->buyer);
        s_next(&r); /* past the two draws above */
        s_next(&r);
        int64_t t = kf_local_midnight(o->created, S_OFFSET) + s_range(&r, 0, 86399) * 1000;
        s_push(sim, S_EV_OPTOUT, t, shop, o->buyer);
    }
    free(pick);
}

static void s_buyer_id(uint16_t shop, uint32_t b, char *buf, size_t len)
{
    snprintf(buf, len, "s%u-b%06u", (unsigned)shop + 1, (unsigned)b);
}

#define S_PICK(r, arr) (arr[s_below(r, KF_ARRAY_LEN(arr))])

/* A buyer's identity, the same every time: from the (seed, shop, buyer) stream. */
typedef struct {
    char id[24], nick[64], name[32], phone[16];
    unsigned place; /* index in s_places */
} s_buyer_t;

static void s_buyer_gen(const s_sim_t *sim, uint16_t shop, uint32_t b, s_buyer_t *by)
{
    s_rng_t r = s_stream((uint64_t)sim->o.seed, S_TAG_BUYER, shop, b);
    s_buyer_id(shop, b, by->id, sizeof(by->id));
    if (s_unit(&r) < 0.3) {
        snprintf(by->nick, sizeof(by->nick), "tb%010llu",
                 (unsigned long long)s_below(&r, 10000000000ULL));
    } else { /* the draws in the order GCC evaluated the first version's snprintf arguments:
              * the seeds keep their buyers */
        unsigned num = (unsigned)s_range(&r, 1, 9999);
        const char *b2 = S_PICK(&r, s_nick_b);
        const char *a = S_PICK(&r, s_nick_a);
        snprintf(by->nick, sizeof(by->nick), "%s%s%u", a, b2, num);
    }
    const char *surname = S_PICK(&r, s_surnames);
    const char *g1 = S_PICK(&r, s_given);
    const char *g2 = s_unit(&r) < 0.7 ? S_PICK(&r, s_given) : "";
    snprintf(by->name, sizeof(by->name), "%s%s%s", surname, g1, g2);
    unsigned long long digits = s_below(&r, 1000000000ULL);
    char second = "358"[s_below(&r, 3)];
    snprintf(by->phone, sizeof(by->phone), "1%c%09llu", second, digits);
    unsigned sum = 0, i = 0;
    for (size_t k = 0; k < KF_ARRAY_LEN(s_places); k++)
        sum += s_places[k].weight;
    unsigned x = (unsigned)s_below(&r, sum);
    while (x >= s_places[i].weight)
        x -= s_places[i++].weight;
    by->place = i;
}

/* ------------------------------------------------------------------ logistics */

#define S_MAX_SCANS 24
#define S_PROMISED_SHIP_MS (48 * S_HOUR_MS)

typedef enum {
    S_LG_NORMAL, S_LG_NO_PICKUP, S_LG_STALLED, S_LG_DIFFICULT, S_LG_SIGNED_BY_OTHER,
    S_LG_UNCOLLECTED, S_LG_REFUSED, S_LG_OUT_OF_AREA, S_LG_DAMAGED
} s_lg_kind_t;

typedef struct {
    int64_t at;
    uint16_t state;
    uint8_t city, next; /* indexes in s_places */
} s_scan_t;

/* One shipment's scans as they happen, before they are pushed. */
typedef struct {
    s_rng_t r;           /* the shipment's stream */
    s_scan_t v[S_MAX_SCANS];
    unsigned n;
    unsigned origin, dest;
} s_track_t;

static int64_t s_hours(s_rng_t *r, int lo, int hi) /* [lo, hi] hours, whole seconds, in ms */
{
    return s_range(r, (int64_t)lo * 3600, (int64_t)hi * 3600) * 1000;
}

static int64_t s_scan_add(s_track_t *k, int64_t at, int state, unsigned city, unsigned next)
{
    assert(k->n < S_MAX_SCANS);
    k->v[k->n++] = (s_scan_t){at, (uint16_t)state, (uint8_t)city, (uint8_t)next};
    return at;
}

static unsigned s_place_find(const char *city)
{
    for (unsigned i = 0; i < KF_ARRAY_LEN(s_places); i++)
        if (strcmp(s_places[i].city, city) == 0)
            return i;
    assert(!"a logistics city is not in s_places");
    return 0;
}

static bool s_remote_place(unsigned place)
{
    for (size_t i = 0; i < KF_ARRAY_LEN(s_remote); i++)
        if (strcmp(s_places[place].province, s_remote[i]) == 0)
            return true;
    return false;
}

/* The first delivery attempt: the next daytime (08:00-20:00 local) 2-14 h after arrival. */
static int64_t s_daytime(s_rng_t *r, int64_t t)
{
    int64_t midnight = kf_local_midnight(t, S_OFFSET), hour = (t - midnight) / S_HOUR_MS;
    if (hour >= 8 && hour < 20)
        return t;
    if (hour >= 20)
        midnight += S_DAY_MS;
    return midnight + 8 * S_HOUR_MS + s_hours(r, 0, 3);
}

/* The trunk route of a parcel: the origin's hub, for a long way a trunk hub, and the
 * destination's hub (1-3 hubs; within one city only its hub). */
static unsigned s_route(s_track_t *k, int64_t span, unsigned path[3])
{
    s_rng_t *r = &k->r;
    unsigned np = 0;
    path[np++] = k->origin;
    if (k->origin == k->dest)
        return np;
    int64_t lo = (span + 40 * S_HOUR_MS - 1) / (40 * S_HOUR_MS), hi = span / (12 * S_HOUR_MS);
    int64_t hubs = s_range(r, lo < 1 ? 1 : lo, hi > 3 ? 3 : hi);
    if (hubs == 3) {
        unsigned h;
        do
            h = s_place_find(S_PICK(r, s_hubs));
        while (h == k->origin || h == k->dest);
        path[np++] = h;
    }
    if (hubs >= 2)
        path[np++] = k->dest;
    return np;
}

/* Pickup to arrival in the destination city (1001): a 1002 leaving every hub, a 1003
 * reaching every hub after the first, at even intervals (+-25%) over 1-2 days, 3-5 to a
 * remote province; a stalled parcel waits 50-80 h once between two transit scans. Returns
 * the arrival time. */
static int64_t s_gen_transit(s_track_t *k, int64_t t, bool stalled)
{
    s_rng_t *r = &k->r;
    int64_t span = k->origin == k->dest   ? s_hours(r, 12, 30)
                   : s_remote_place(k->dest) ? s_hours(r, 72, 120)
                                             : s_hours(r, 24, 48);
    unsigned path[3], np = s_route(k, span, path), ng = 2 * np;
    double w[6], sum = 0;
    for (unsigned i = 0; i < ng; i++)
        sum += w[i] = 0.75 + 0.5 * s_unit(r);
    int64_t gap[6];
    for (unsigned i = 0; i < ng; i++)
        gap[i] = llround((double)span * w[i] / sum / 1000.0) * 1000;
    if (stalled) {
        unsigned g = 1 + (unsigned)s_below(r, ng - 1);
        gap[g] = s_hours(r, 50, 80);
    }
    t = s_scan_add(k, t + gap[0], 1002, path[0], np > 1 ? path[1] : k->dest);
    for (unsigned i = 1; i < np; i++) {
        t = s_scan_add(k, t + gap[2 * i - 1], 1003, path[i], path[i]);
        t = s_scan_add(k, t + gap[2 * i], 1002, path[i], i + 1 < np ? path[i + 1] : k->dest);
    }
    return s_scan_add(k, t + gap[ng - 1], 1001, k->dest, k->dest);
}

/* The last mile after arrival at t. Each returns when the parcel was signed, 0 if never. */
typedef int64_t(s_mile_fn)(s_track_t *k, int64_t t, s_lg_kind_t kind);

/* By courier (5, then 301 or 303 by someone else) or, 30%, into a locker or station (501,
 * then 304 when the buyer collects it). */
static int64_t s_mile_normal(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    s_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    if (kind != S_LG_SIGNED_BY_OTHER && s_unit(r) < 0.3) {
        s_scan_add(k, d, 501, k->dest, k->dest);
        return s_scan_add(k, d + s_hours(r, 1, 30), 304, k->dest, k->dest);
    }
    s_scan_add(k, d, 5, k->dest, k->dest);
    int64_t at = d + s_range(r, 1800, 5 * 3600) * 1000;
    return s_scan_add(k, at, kind == S_LG_SIGNED_BY_OTHER ? 303 : 301, k->dest, k->dest);
}

/* 204 or 206 on the first attempt; 1-2 days later signed (70%) or returning. */
static int64_t s_mile_difficult(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    s_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    s_scan_add(k, d, 5, k->dest, k->dest);
    int state = s_unit(r) < 0.5 ? 204 : 206;
    int64_t f = s_scan_add(k, d + s_hours(r, 1, 4), state, k->dest, k->dest);
    int64_t x = f + s_hours(r, 24, 48);
    if (s_unit(r) < 0.3) {
        s_scan_add(k, x, 6, k->dest, k->origin);
        return 0;
    }
    return s_scan_add(k, x, 301, k->dest, k->dest);
}

/* In a locker, 205 after a day, collected (304) 2-4 days later. */
static int64_t s_mile_uncollected(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    s_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    s_scan_add(k, d, 501, k->dest, k->dest);
    int64_t x = s_scan_add(k, d + s_hours(r, 20, 30), 205, k->dest, k->dest);
    return s_scan_add(k, x + s_hours(r, 48, 96), 304, k->dest, k->dest);
}

/* Out for delivery, refused (14), returning (6). */
static int64_t s_mile_refused(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    s_rng_t *r = &k->r;
    int64_t d = s_daytime(r, t + s_hours(r, 2, 14));
    s_scan_add(k, d, 5, k->dest, k->dest);
    int64_t x = s_scan_add(k, d + s_hours(r, 1, 4), 14, k->dest, k->dest);
    s_scan_add(k, x + s_hours(r, 2, 12), 6, k->dest, k->origin);
    return 0;
}

/* 207 out of area; 1-2 days later transferred (7) and delivered, or returning. */
static int64_t s_mile_out_of_area(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    s_rng_t *r = &k->r;
    int64_t x = s_scan_add(k, t + s_hours(r, 2, 10), 207, k->dest, k->dest);
    int64_t y = x + s_hours(r, 24, 48);
    if (s_unit(r) < 0.5) {
        s_scan_add(k, y, 6, k->dest, k->origin);
        return 0;
    }
    s_scan_add(k, y, 7, k->dest, k->dest);
    int64_t d = s_daytime(r, y + s_hours(r, 12, 30));
    s_scan_add(k, d, 5, k->dest, k->dest);
    return s_scan_add(k, d + s_hours(r, 1, 5), 301, k->dest, k->dest);
}

/* 209 damaged at the destination, then returning. */
static int64_t s_mile_damaged(s_track_t *k, int64_t t, s_lg_kind_t kind)
{
    s_rng_t *r = &k->r;
    int64_t x = s_scan_add(k, t + s_hours(r, 1, 6), 209, k->dest, k->dest);
    s_scan_add(k, x + s_hours(r, 12, 36), 6, k->dest, k->origin);
    return 0;
}

/* What happens to a shipment, by share (the last one takes the rest). */
static const struct {
    s_lg_kind_t kind;
    double share;
    s_mile_fn *mile; /* NULL: no scan at all */
} s_lg_kinds[] = {
    {S_LG_NO_PICKUP, 0.010, NULL},
    {S_LG_STALLED, 0.030, s_mile_normal},
    {S_LG_DIFFICULT, 0.010, s_mile_difficult},
    {S_LG_SIGNED_BY_OTHER, 0.010, s_mile_normal},
    {S_LG_UNCOLLECTED, 0.005, s_mile_uncollected},
    {S_LG_REFUSED, 0.005, s_mile_refused},
    {S_LG_OUT_OF_AREA, 0.003, s_mile_out_of_area},
    {S_LG_DAMAGED, 0.002, s_mile_damaged},
    {S_LG_NORMAL, 1.0, s_mile_normal},
};

/* A logistics event; one after the last tick is never printed: only its number is used, so
 * that event ids do not depend on --tail. */
static s_ev_t *s_push_lg(s_sim_t *sim, s_type_t type, int64_t t, uint16_t shop, uint32_t ref)
{
    if (t <= sim->cutoff)
        return s_push(sim, type, t, shop, ref);
    sim->counter++;
    return NULL;
}

static void s_push_scan(s_sim_t *sim, const s_scan_t *sc, int64_t t, uint16_t shop,
                        uint32_t ship, uint8_t flags, bool twice)
{
    for (int c = 0; c < 1 + twice; c++) {
        s_ev_t *ev = s_push_lg(sim, S_EV_SCAN, t, shop, ship);
        if (!ev)
            continue;
        ev->flags = flags;
        ev->state = sc->state;
        ev->city = sc->city;
        ev->next = sc->next;
        ev->early = (uint32_t)(t - sc->at);
    }
}

/* The scans as published: 20% without order_id, 1% twice (same content, a new event id),
 * 1% late (published right after the next scan, with its own `at`). */
static void s_push_scans(s_sim_t *sim, s_track_t *k, uint16_t shop, uint32_t ship)
{
    uint8_t flags[S_MAX_SCANS];
    bool twice[S_MAX_SCANS], late[S_MAX_SCANS];
    for (unsigned i = 0; i < k->n; i++) {
        flags[i] = s_unit(&k->r) < 0.2 ? S_SCAN_NO_ORDER : 0;
        twice[i] = s_unit(&k->r) < 0.01;
        late[i] = s_unit(&k->r) < 0.01 && i + 1 < k->n;
    }
    unsigned held = 0; /* the late scans are in [held, i) */
    for (unsigned i = 0; i < k->n; i++) {
        if (late[i])
            continue;
        s_push_scan(sim, &k->v[i], k->v[i].at, shop, ship, flags[i], twice[i]);
        for (; held < i; held++)
            if (late[held])
                s_push_scan(sim, &k->v[held], k->v[i].at, shop, ship, flags[held],
                            twice[held]);
        held = i + 1;
    }
}

/* A paid order's shipment: order.shipped 4-40 h after payment (3%: 50-70 h, after the
 * promised time), its scans, order.confirmed 1-7 days after signing. */
static void s_gen_shipment(s_sim_t *sim, const s_order_t *o, unsigned origin)
{
    uint64_t day = (uint64_t)((o->created - sim->o.start) / S_DAY_MS);
    s_track_t k = {.r = s_stream((uint64_t)sim->o.seed, S_TAG_SHIP, o->shop, day << 32 | o->n),
                   .origin = origin};
    s_rng_t *r = &k.r;
    s_buyer_t by;
    s_buyer_gen(sim, o->shop, o->buyer, &by);
    k.dest = by.place;
    if (sim->nships == sim->scap) {
        sim->scap = sim->scap ? sim->scap * 2 : 1024;
        sim->ships = kf_xrealloc(sim->ships, sim->scap * sizeof(*sim->ships));
    }
    uint32_t idx = (uint32_t)sim->nships++;
    s_ship_t *sh = &sim->ships[idx];
    unsigned sum = 0, c = 0;
    for (size_t i = 0; i < KF_ARRAY_LEN(s_carriers); i++)
        sum += s_carriers[i].weight;
    unsigned x = (unsigned)s_below(r, sum);
    while (x >= s_carriers[c].weight)
        x -= s_carriers[c++].weight;
    bool late = s_unit(r) < 0.03;
    int64_t shipped = o->end + (late ? s_hours(r, 50, 70) : s_hours(r, 4, 40));
    *sh = (s_ship_t){.shipped_at = shipped, .order = (uint32_t)(o - sim->orders),
                     .carrier = (uint8_t)c, .dest = (uint8_t)k.dest,
                     .words = (uint16_t)s_below(r, 65536)};
    s_push_lg(sim, S_EV_SHIPPED, shipped, o->shop, idx);
    double u = s_unit(r);
    size_t kind = 0;
    while (u >= s_lg_kinds[kind].share && kind + 1 < KF_ARRAY_LEN(s_lg_kinds))
        u -= s_lg_kinds[kind++].share;
    if (!s_lg_kinds[kind].mile)
        return;
    int64_t t = s_scan_add(&k, shipped + s_hours(r, 1, 8), 103, origin, origin);
    t = s_gen_transit(&k, t, s_lg_kinds[kind].kind == S_LG_STALLED);
    int64_t signed_at = s_lg_kinds[kind].mile(&k, t, s_lg_kinds[kind].kind);
    s_push_scans(sim, &k, o->shop, idx);
    if (signed_at)
        s_push_lg(sim, S_EV_CONFIRMED, signed_at + s_range(r, 86400, 7 * 86400) * 1000, o->shop,
                  idx);
}

/* The shop's shipments (its warehouse city from the seed), and a weather delay in one big
 * city (the same for every shop) from 12:00 of the first day for 2 days. */
static void s_gen_logistics(s_sim_t *sim, uint16_t shop, size_t first)
{
    s_rng_t r = s_stream((uint64_t)sim->o.seed, S_TAG_ORIGIN, shop, 0);
    unsigned origin = s_place_find(S_PICK(&r, s_origins));
    for (size_t i = first; i < sim->norders; i++) {
        s_order_t *o = &sim->orders[i];
        if (o->history) /* the history's orders were delivered and confirmed long ago */
            s_push_lg(sim, S_EV_HISTORY_CONFIRMED, o->end + 5 * S_DAY_MS, o->shop, (uint32_t)i);
        else if (o->outcome == S_PAID)
            s_gen_shipment(sim, o, origin);
    }
    r = s_stream((uint64_t)sim->o.seed, S_TAG_AREA, 0, 0);
    s_push_lg(sim, S_EV_AREA_DELAY, sim->o.start + 12 * S_HOUR_MS, shop,
              s_place_find(S_PICK(&r, s_big_cities)));
}

static void s_gen_shop(s_sim_t *sim, uint16_t shop)
{
    sim->counter = 0;
    int64_t config_at = sim->o.start - S_HOUR_MS;
    if (sim->o.history) /* before the history block: the shop exists before its orders */
        config_at -= S_HISTORY_DAYS * S_DAY_MS;
    s_push(sim, S_EV_CONFIG, config_at, shop, shop);
    size_t first = sim->norders;
    if (sim->o.history)
        s_gen_history(sim, shop);
    for (int d = 0; d < sim->o.days; d++)
        s_gen_day(sim, shop, d);
    s_gen_optouts(sim, shop, first);
    if (sim->o.logistics)
        s_gen_logistics(sim, shop, first);
}

/* Ticks from local 00:00 of the first day to the end of the last day + --tail, inclusive. */
static void s_gen_clock(s_sim_t *sim)
{
    int64_t step = sim->o.tick * S_MIN_MS;
    int64_t end = sim->o.start + sim->o.days * S_DAY_MS + sim->o.tail * S_HOUR_MS;
    uint32_t k = 0;
    int64_t t = sim->o.start;
    for (; t <= end; t += step)
        s_push(sim, S_EV_CLOCK, t, 0, k++);
    if (t - step < end) /* a tick interval that does not divide the span: end on the end */
        s_push(sim, S_EV_CLOCK, end, 0, k++);
    sim->cutoff = end;
}

static int s_cmp_ev(const void *a, const void *b)
{
    const s_ev_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    int cx = x->type == S_EV_CLOCK, cy = y->type == S_EV_CLOCK;
    if (cx != cy)
        return cx - cy;
    return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* ------------------------------------------------------------------ rendering */

static void s_set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, json_string(value));
}

static void s_set_int(json_t *o, const char *key, int64_t value)
{
    json_object_set_new(o, key, json_integer((json_int_t)value));
}

static void s_set_time(json_t *o, const char *key, int64_t ms)
{
    char buf[40];
    kf_time_format(ms, S_OFFSET, buf, sizeof(buf));
    s_set_str(o, key, buf);
}

static void s_order_id(const s_order_t *o, char *buf, size_t len)
{
    snprintf(buf, len, "s%u-%s%08d-%05u", (unsigned)o->shop + 1, o->history ? "h" : "",
             kf_local_yyyymmdd(o->created, S_OFFSET), (unsigned)o->n);
}

static json_t *s_buyer_json(const s_sim_t *sim, uint16_t shop, uint32_t b)
{
    s_buyer_t by;
    s_buyer_gen(sim, shop, b, &by);
    json_t *o = json_object();
    s_set_str(o, "buyer_id", by.id);
    s_set_str(o, "nick", by.nick);
    s_set_str(o, "name", by.name);
    s_set_str(o, "phone", by.phone);
    s_set_str(o, "city", s_places[by.place].city);
    s_set_str(o, "province", s_places[by.place].province);
    return o;
}

static void s_render_config(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    size_t n = KF_ARRAY_LEN(s_shop_names);
    const char *name = s_shop_names[ev->shop % n];
    if (ev->shop < n) {
        s_set_str(o, "name", name);
    } else {
        char buf[128];
        snprintf(buf, sizeof(buf), "%s%u号店", name, (unsigned)(ev->shop / n + 1));
        s_set_str(o, "name", buf);
    }
    s_set_int(o, "utc_offset_minutes", S_OFFSET);
}

static void s_render_created(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    const s_order_t *ord = &sim->orders[ev->ref];
    char buf[64];
    s_order_id(ord, buf, sizeof(buf));
    s_set_str(o, "order_id", buf);
    json_object_set_new(o, "buyer", s_buyer_json(sim, ord->shop, ord->buyer));
    json_t *items = json_array();
    for (unsigned i = 0; i < ord->nitems; i++) {
        const s_product_t *p = &s_catalog[ord->sku[i]];
        json_t *it = json_object();
        s_set_str(it, "sku_id", p->sku_id);
        s_set_str(it, "title", p->title);
        s_set_int(it, "qty", ord->qty[i]);
        s_set_int(it, "price_fen", p->price_fen);
        json_array_append_new(items, it);
    }
    json_object_set_new(o, "items", items);
    s_set_int(o, "total_fen", ord->total_fen);
    s_set_str(o, "kind", ord->flash ? "flash_sale" : "normal");
    s_set_time(o, "created_at", ord->created);
    if (ord->promo)
        s_set_str(o, "promotion", "双11");
}

/* order.paid and order.closed */
static void s_render_status(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    const s_order_t *ord = &sim->orders[ev->ref];
    char buf[64];
    s_order_id(ord, buf, sizeof(buf));
    s_set_str(o, "order_id", buf);
    s_set_time(o, "at", ord->end);
    if (ev->type == S_EV_CLOSED)
        s_set_str(o, "reason", ord->outcome == S_CLOSED_BUYER ? "buyer" : "timeout");
    s_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    s_set_str(o, "buyer_id", buf);
    if (ev->type == S_EV_PAID)
        s_set_int(o, "amount_fen", ord->total_fen);
}

static void s_render_optout(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    char buf[64];
    s_buyer_id(ev->shop, ev->ref, buf, sizeof(buf));
    s_set_str(o, "buyer_id", buf);
    json_t *ch = json_array();
    json_array_append_new(ch, json_string("sms"));
    json_object_set_new(o, "channels", ch);
}

static void s_render_clock(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    s_set_time(o, "now", ev->t);
}

/* "ZT" + 13 digits: (shop, day, order number) through a bijection of the 13-digit numbers
 * keyed by the seed, so no two shipments of a run share one. */
static void s_tracking_no(const s_sim_t *sim, const s_ship_t *sh, char *buf, size_t len)
{
    const uint64_t mod = 10000000000000ULL, mul = 7394638417319ULL; /* mul: prime to 10 */
    const s_order_t *o = &sim->orders[sh->order];
    uint64_t day = (uint64_t)((o->created - sim->o.start) / S_DAY_MS);
    uint64_t key = ((uint64_t)o->shop * (S_MAX_DAYS + 1) + day) * 10000000ULL + o->n;
    s_rng_t r = s_stream((uint64_t)sim->o.seed, S_TAG_TRACKING, 0, 0);
    uint64_t add = s_next(&r) % mod;
    uint64_t digits = (uint64_t)(((unsigned __int128)key * mul + add) % mod);
    snprintf(buf, len, "%s%013llu", s_carriers[sh->carrier].prefix, (unsigned long long)digits);
}

/* order.shipped */
static void s_render_shipped(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    const s_ship_t *sh = &sim->ships[ev->ref];
    const s_order_t *ord = &sim->orders[sh->order];
    char buf[64];
    s_order_id(ord, buf, sizeof(buf));
    s_set_str(o, "order_id", buf);
    s_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    s_set_str(o, "buyer_id", buf);
    s_set_str(o, "carrier", s_carriers[sh->carrier].name);
    s_tracking_no(sim, sh, buf, sizeof(buf));
    s_set_str(o, "tracking_no", buf);
    s_set_time(o, "shipped_at", sh->shipped_at);
    s_set_time(o, "promised_ship_by", ord->end + S_PROMISED_SHIP_MS);
    s_set_str(o, "to_city", s_places[sh->dest].city);
    s_set_str(o, "to_province", s_places[sh->dest].province);
}

/* Scan descriptions: {city} {next} {outlet} {courier} {locker} {signer} {carrier}. The
 * state S_LOCAL_1002 is a 1002 leaving the destination's hub for the outlet. */
#define S_LOCAL_1002 11002
static const struct {
    uint16_t state;
    const char *text;
} s_scan_texts[] = {
    {103, "【{city}市】{city}{outlet}营业部已揽收，揽投员：{courier}师傅"},
    {1002, "快件已在【{city}转运中心】装车，准备发往【{next}】"},
    {S_LOCAL_1002, "快件已从【{city}转运中心】发出，正发往【{city}{outlet}营业部】"},
    {1003, "快件已到达【{city}转运中心】"},
    {1001, "快件已到达【{city}{outlet}营业部】"},
    {5, "【{city}市】{city}{outlet}营业部快递员{courier}师傅正在派件，请保持电话畅通"},
    {501, "快件已放入【{city}{outlet}{locker}】，请凭取件码及时取件"},
    {301, "快件已签收，签收人：本人，感谢使用{carrier}快递"},
    {303, "快件已签收，签收人：{signer}代签，如有疑问请联系快递员"},
    {304, "快件已从【{city}{outlet}{locker}】取出，已签收"},
    {204, "快件派送不成功，原因：收件地址不详，将再次派送"},
    {206, "快件派送不成功，原因：收件人电话无法接通"},
    {205, "快件在【{city}{outlet}{locker}】滞留超过24小时未取，请尽快取件"},
    {14, "收件人拒收，快件将退回寄件人"},
    {6, "快件退回中，正发往寄件人所在地【{next}】"},
    {207, "收件地址超出派送范围（超区），请联系商家改派或自提"},
    {7, "快件已转投中国邮政，由邮政继续派送"},
    {209, "快件在【{city}】派送前发现外包装破损，已联系寄件人处理"},
};

/* The description of a scan: its template with the words of the shipment filled in (the
 * pickup's outlet and courier are the origin's). */
static void s_describe(const s_ev_t *ev, const s_ship_t *sh, char *buf, size_t len)
{
    unsigned w = sh->words, o = ev->state == 103 ? w >> 8 : w;
    const char *names[] = {"city", "next", "outlet", "courier", "locker", "signer", "carrier"};
    const char *values[] = {s_places[ev->city].city, s_places[ev->next].city,
                            s_outlets[o & 7], s_surnames[(o >> 3) & 15],
                            w & 0x80 ? "菜鸟驿站" : "丰巢快递柜", s_signers[(w >> 12) & 7],
                            s_carriers[sh->carrier].name};
    const char *tmpl = "";
    unsigned state = ev->state == 1002 && ev->city == ev->next ? S_LOCAL_1002 : ev->state;
    for (size_t i = 0; i < KF_ARRAY_LEN(s_scan_texts); i++)
        if (s_scan_texts[i].state == state)
            tmpl = s_scan_texts[i].text;
    size_t n = 0;
    buf[0] = '\0';
    for (const char *p = tmpl; *p && n + 1 < len;) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        size_t k = 0;
        while (end && k < KF_ARRAY_LEN(names) &&
               (strlen(names[k]) != (size_t)(end - p - 1) || strncmp(names[k], p + 1, end - p - 1)))
            k++;
        if (end && k < KF_ARRAY_LEN(names)) {
            n += (size_t)snprintf(buf + n, len - n, "%s", values[k]);
            p = end + 1;
        } else {
            buf[n++] = *p++;
            buf[n] = '\0';
        }
    }
}

/* logistics.scan: `at` is when the scan happened, occurred_at when it was published */
static void s_render_scan(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    const s_ship_t *sh = &sim->ships[ev->ref];
    char buf[256];
    s_tracking_no(sim, sh, buf, sizeof(buf));
    s_set_str(o, "tracking_no", buf);
    if (!(ev->flags & S_SCAN_NO_ORDER)) {
        s_order_id(&sim->orders[sh->order], buf, sizeof(buf));
        s_set_str(o, "order_id", buf);
    }
    s_set_str(o, "carrier", s_carriers[sh->carrier].name);
    s_set_int(o, "state", ev->state);
    s_set_str(o, "city", s_places[ev->city].city);
    s_describe(ev, sh, buf, sizeof(buf));
    s_set_str(o, "description", buf);
    s_set_time(o, "at", ev->t - ev->early);
}

static void s_render_confirmed(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    const s_order_t *ord = &sim->orders[sim->ships[ev->ref].order];
    char buf[64];
    s_order_id(ord, buf, sizeof(buf));
    s_set_str(o, "order_id", buf);
    s_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    s_set_str(o, "buyer_id", buf);
    s_set_time(o, "at", ev->t);
}

/* A history order's confirmation: ref is the order itself (it has no shipment here). */
static void s_render_history_confirmed(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    const s_order_t *ord = &sim->orders[ev->ref];
    char buf[64];
    s_order_id(ord, buf, sizeof(buf));
    s_set_str(o, "order_id", buf);
    s_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    s_set_str(o, "buyer_id", buf);
    s_set_time(o, "at", ev->t);
}

static void s_render_area_delay(const s_sim_t *sim, const s_ev_t *ev, json_t *o)
{
    json_t *cities = json_array();
    json_array_append_new(cities, json_string(s_places[ev->ref].city));
    json_object_set_new(o, "cities", cities);
    s_set_time(o, "until", ev->t + 2 * S_DAY_MS);
    s_set_str(o, "reason", "weather");
    s_set_str(o, "note", "暴雨红色预警，部分快件派送延误");
}

typedef void(s_render_fn)(const s_sim_t *sim, const s_ev_t *ev, json_t *o);

static const struct {
    const char *topic;
    s_render_fn *fn;
} s_types[] = {
    [S_EV_CONFIG] = {"shop.config", s_render_config},
    [S_EV_CREATED] = {"order.created", s_render_created},
    [S_EV_PAID] = {"order.paid", s_render_status},
    [S_EV_CLOSED] = {"order.closed", s_render_status},
    [S_EV_OPTOUT] = {"buyer.optout", s_render_optout},
    [S_EV_SHIPPED] = {"order.shipped", s_render_shipped},
    [S_EV_SCAN] = {"logistics.scan", s_render_scan},
    [S_EV_CONFIRMED] = {"order.confirmed", s_render_confirmed},
    [S_EV_HISTORY_CONFIRMED] = {"order.confirmed", s_render_history_confirmed},
    [S_EV_AREA_DELAY] = {"logistics.area_delay", s_render_area_delay},
    [S_EV_CLOCK] = {"sys.clock", s_render_clock},
};

/* One event as a flat JSON line: the envelope, then the payload's fields. */
static char *s_render(const s_sim_t *sim, const s_ev_t *ev)
{
    json_t *o = json_object();
    char buf[80];
    s_set_str(o, "topic", s_types[ev->type].topic);
    if (ev->type == S_EV_CLOCK)
        snprintf(buf, sizeof(buf), "sim%lld-clock-%u", sim->o.seed, (unsigned)ev->n);
    else
        snprintf(buf, sizeof(buf), "sim%lld-s%u-%u", sim->o.seed, (unsigned)ev->shop + 1,
                 (unsigned)ev->n);
    s_set_str(o, "event_id", buf);
    if (ev->type != S_EV_CLOCK) {
        snprintf(buf, sizeof(buf), "s%u", (unsigned)ev->shop + 1);
        s_set_str(o, "shop_id", buf);
    }
    s_set_time(o, "occurred_at", ev->t);
    s_types[ev->type].fn(sim, ev, o);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* Prints the sorted events up to the last tick. */
static int s_output(s_sim_t *sim)
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
    kf_local(*ms, S_OFFSET, &t);
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    return t.year == y && t.month == m && t.day == d && y >= 2000 && y <= 2099 ? KF_OK : KF_ERR;
}

/* "1,3": 1-based day numbers within --days. */
static int s_parse_promo(s_opts_t *o, const char *list)
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
    {'S', "--shops", 1, S_MAX_SHOPS, offsetof(s_opts_t, shops)},
    {'D', "--days", 1, S_MAX_DAYS, offsetof(s_opts_t, days)},
    {'s', "--seed", 0, 9223372036854775807LL, offsetof(s_opts_t, seed)},
    {'O', "--orders", 1, S_MAX_ORDERS, offsetof(s_opts_t, orders)},
    {'T', "--tick", 1, 1440, offsetof(s_opts_t, tick)},
    {'L', "--tail", 0, 720, offsetof(s_opts_t, tail)},
};

static const struct option s_long[] = {
    {"shops", required_argument, NULL, 'S'},   {"days", required_argument, NULL, 'D'},
    {"seed", required_argument, NULL, 's'},    {"orders", required_argument, NULL, 'O'},
    {"tick", required_argument, NULL, 'T'},    {"tail", required_argument, NULL, 'L'},
    {"start", required_argument, NULL, 'a'},   {"promo-days", required_argument, NULL, 'p'},
    {"no-history", no_argument, NULL, 'H'},    {"no-logistics", no_argument, NULL, 'G'},
    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
};

/* A numeric option: KF_OK when c is one (the usage error, if any, in *rc). */
static int s_parse_num(s_opts_t *o, int c, const char *arg, int *rc)
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

static int s_parse_args(s_opts_t *o, int argc, char **argv)
{
    const kefuctl_verb_t *v = &kefuctl_verb_sim;
    const char *start = "2026-11-10", *promo = NULL;
    *o = (s_opts_t){.shops = 1, .days = 1, .seed = 1, .orders = 400, .tick = 5, .tail = 72,
                    .history = true, .logistics = true};
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
    s_sim_t *sim = kf_xcalloc(1, sizeof(*sim));
    int rc = s_parse_args(&sim->o, argc, argv);
    if (rc >= 0)
        goto done;
    /* buyer pool per shop: 1.5 x orders ordinary buyers, and 5% of the pool loyal */
    uint32_t ordinary = (uint32_t)((sim->o.orders * 3 + 1) / 2);
    sim->nloyal = (ordinary + 10) / 19 ? (ordinary + 10) / 19 : 1;
    sim->npool = sim->nloyal + ordinary;
    sim->cutoff = sim->o.start + sim->o.days * S_DAY_MS + sim->o.tail * S_HOUR_MS;
    for (long long s = 0; s < sim->o.shops; s++)
        s_gen_shop(sim, (uint16_t)s);
    s_gen_clock(sim);
    qsort(sim->evs, sim->nevs, sizeof(*sim->evs), s_cmp_ev);
    rc = s_output(sim);
    fprintf(stderr, "sim: %llu events (%llu orders, %llu paid, %llu closed, %llu shipped, "
                    "%llu scans, %llu clock ticks) for %lld shop(s) over %lld day(s), seed %lld\n",
            sim->out, sim->out_type[S_EV_CREATED], sim->out_type[S_EV_PAID],
            sim->out_type[S_EV_CLOSED], sim->out_type[S_EV_SHIPPED], sim->out_type[S_EV_SCAN],
            sim->out_type[S_EV_CLOCK],
            sim->o.shops, sim->o.days, sim->o.seed);
done:
    free(sim->orders);
    free(sim->evs);
    free(sim->ships);
    free(sim);
    return rc;
}

const kefuctl_verb_t kefuctl_verb_sim = {
    .name = "sim",
    .fn = s_sim,
    .synopsis = "sim [--shops N] [--days N] [--start YYYY-MM-DD] [--seed N] [--orders N] "
                "[--promo-days LIST] [--tick MINUTES] [--tail HOURS] [--no-history] "
                "[--no-logistics]",
    .help = "    Prints a deterministic simulation as NDJSON for `kefuctl pub --file -`:\n"
            "    per shop (s1..sN) a shop.config, loyal buyers' paid orders of the 30 days\n"
            "    before (the history), the orders of each shop-local (+08:00) day on an\n"
            "    hour-of-day traffic curve with their order.paid / order.closed, a few\n"
            "    buyer.optout, the paid orders' order.shipped (7 carriers; 3% late), their\n"
            "    logistics.scan (kuaidi100 states: pickup, transit, delivery; about 7% with an\n"
            "    anomaly: no pickup, stalled, difficult, signed by someone else, uncollected,\n"
            "    refused, out of area, damaged; 1% sent twice, 1% late, 20% without order_id)\n"
            "    and order.confirmed, a logistics.area_delay per shop on day 1, and sys.clock\n"
            "    ticks from 00:00 of the first day to the end of the last day + the tail,\n"
            "    sorted by time. Events after the last tick are left out. The same options\n"
            "    give the same bytes; a summary goes to stderr.\n"
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
            "    --no-history        no history block\n"
            "    --no-logistics      no shipments, scans, confirmations or area delays (the\n"
            "                        orders and payments are the same either way)",
};
