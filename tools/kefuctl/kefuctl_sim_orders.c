/* kefuctl sim: the shops, their buyers, orders and payments (DOMAIN §1), the random
 * streams everything is drawn from, and the rendering of those events. See kefuctl_sim.c. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kefuctl_sim.h"
#include "kf_clock.h"
#include "kf_util.h"

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

/* Regular products first (each under S_LARGE_FEN), then S_NPREMIUM premium ones, then the
 * SIM_NCONSUMABLES consumables of the repeat buyers (kefuctl_sim_care.c), which no other
 * order draws: the other orders stayed what they were when they were added. */
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
    {"k1201", "花王纸尿裤L码54片婴儿尿不湿超薄透气", 13900},
    {"k1202", "全价冻干双拼成猫粮5.4kg", 32900},
    {"k1203", "云南小粒咖啡豆中深烘焙454g", 6800},
    {"k1204", "超浓缩洗衣液4kg家庭装持久留香", 5990},
    {"k1205", "原木抽纸24包整箱家用", 4590},
    {"k1206", "豆腐猫砂除臭低尘10kg", 4990},
};
#define S_NCATALOG KF_ARRAY_LEN(s_catalog)
#define S_NREGULAR (S_NCATALOG - S_NPREMIUM - SIM_NCONSUMABLES)

const kefuctl_sim_place_t kefuctl_sim_places[] = {
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

const char *const kefuctl_sim_surnames[] = {
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

/* ------------------------------------------------------------------ random numbers */

/* splitmix64: a step of the stream and the finaliser used to key streams. */
static uint64_t s_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t kefuctl_sim_next(kefuctl_sim_rng_t *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return s_mix(r->s);
}

/* A stream keyed by (seed, tag, a, b): independent of every other key. */
kefuctl_sim_rng_t kefuctl_sim_stream(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b)
{
    uint64_t h = s_mix(seed + 0x9e3779b97f4a7c15ULL);
    h = s_mix(h ^ (tag * 0xd6e8feb86659fd93ULL));
    h = s_mix(h ^ (a + 0x632be59bd9b4e019ULL));
    h = s_mix(h ^ (b * 0xa0761d6478bd642fULL + 1));
    return (kefuctl_sim_rng_t){h};
}

double kefuctl_sim_unit(kefuctl_sim_rng_t *r) /* [0, 1) */
{
    return (double)(kefuctl_sim_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t kefuctl_sim_below(kefuctl_sim_rng_t *r, uint64_t n) /* [0, n), n > 0 */
{
    return (uint64_t)(kefuctl_sim_unit(r) * (double)n);
}

int64_t kefuctl_sim_range(kefuctl_sim_rng_t *r, int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)kefuctl_sim_below(r, (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------ orders and payments */

kefuctl_sim_order_t *kefuctl_sim_order_new(kefuctl_sim_t *sim)
{
    if (sim->norders == sim->ocap) {
        sim->ocap = sim->ocap ? sim->ocap * 2 : 4096;
        sim->orders = kf_xrealloc(sim->orders, sim->ocap * sizeof(*sim->orders));
    }
    kefuctl_sim_order_t *o = &sim->orders[sim->norders++];
    memset(o, 0, sizeof(*o));
    return o;
}

/* A time of the day that starts at midnight: the hour on the traffic curve, then a whole
 * second within it. */
int64_t kefuctl_sim_pick_time(kefuctl_sim_rng_t *r, int64_t midnight)
{
    unsigned sum = 0, h = 0;
    for (unsigned i = 0; i < 24; i++)
        sum += s_hour_weight[i];
    unsigned x = (unsigned)kefuctl_sim_below(r, sum);
    while (x >= s_hour_weight[h])
        x -= s_hour_weight[h++];
    return midnight + h * SIM_HOUR_MS + kefuctl_sim_range(r, 0, 3599) * 1000;
}

int64_t kefuctl_sim_order_total(const kefuctl_sim_order_t *o)
{
    int64_t t = 0;
    for (unsigned i = 0; i < o->nitems; i++)
        t += o->qty[i] * s_catalog[o->sku[i]].price_fen;
    return t;
}

/* 1-3 distinct items; a large order has a premium item first, any other stays under
 * S_LARGE_FEN (quantities, then items, are taken back until it does). */
static void s_gen_items(kefuctl_sim_rng_t *r, kefuctl_sim_order_t *o, bool large)
{
    unsigned u = (unsigned)kefuctl_sim_below(r, 100);
    o->nitems = u < 60 ? 1 : u < 88 ? 2 : 3;
    for (unsigned i = 0; i < o->nitems; i++) {
        bool dup;
        do {
            o->sku[i] = (uint8_t)(large && i == 0 ? S_NREGULAR + kefuctl_sim_below(r, S_NPREMIUM)
                                                  : kefuctl_sim_below(r, S_NREGULAR));
            dup = false;
            for (unsigned k = 0; k < i; k++)
                dup = dup || o->sku[k] == o->sku[i];
        } while (dup);
        u = (unsigned)kefuctl_sim_below(r, 100);
        o->qty[i] = u < 75 ? 1 : u < 93 ? 2 : 3;
    }
    while (!large && kefuctl_sim_order_total(o) >= S_LARGE_FEN) {
        unsigned big = 0;
        for (unsigned i = 1; i < o->nitems; i++)
            if (o->qty[i] > o->qty[big])
                big = i;
        if (o->qty[big] > 1)
            o->qty[big]--;
        else
            o->nitems--;
    }
    o->total_fen = kefuctl_sim_order_total(o);
}

/* DOMAIN §1: 9% (12% in a promotion) of normal orders are never paid, 1 point of them
 * closed by the buyer; 10% pay late; flash sales close after 30 min. */
static void s_gen_payment(kefuctl_sim_rng_t *r, kefuctl_sim_order_t *o)
{
    double u = kefuctl_sim_unit(r);
    int64_t c = o->created;
    o->outcome = SIM_PAID;
    if (o->flash) {
        if (u < 0.70)
            o->end = c + kefuctl_sim_range(r, 60, 540) * 1000;
        else if (u < 0.85)
            o->end = c + kefuctl_sim_range(r, 660, 1680) * 1000;
        else {
            o->outcome = SIM_CLOSED_TIMEOUT;
            o->end = c + 30 * SIM_MIN_MS;
        }
        return;
    }
    double unpaid = o->promo ? 0.12 : 0.09;
    if (u < 0.01) {
        o->outcome = SIM_CLOSED_BUYER;
        o->end = c + kefuctl_sim_range(r, 600, 7200) * 1000;
    } else if (u < unpaid) {
        o->outcome = SIM_CLOSED_TIMEOUT;
        o->end = c + 72 * SIM_HOUR_MS;
    } else if (u < unpaid + 0.10) {
        o->end = c + kefuctl_sim_range(r, 40 * 60, 60 * 3600) * 1000;
    } else {
        o->end = c + kefuctl_sim_range(r, 60, 1200) * 1000;
    }
}

/* order.created then its order.paid / order.closed */
void kefuctl_sim_push_order(kefuctl_sim_t *sim, const kefuctl_sim_order_t *o)
{
    uint32_t idx = (uint32_t)(o - sim->orders);
    kefuctl_sim_push(sim, SIM_EV_CREATED, o->created, o->shop, idx);
    kefuctl_sim_push(sim, o->outcome == SIM_PAID ? SIM_EV_PAID : SIM_EV_CLOSED, o->end, o->shop,
                     idx);
}

/* Every loyal buyer: 2 orders created and paid during the 30 days before the start. */
static void s_gen_history(kefuctl_sim_t *sim, uint16_t shop)
{
    kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_HISTORY, shop, 0);
    uint32_t n = 0;
    for (uint32_t b = 0; b < sim->nloyal; b++) {
        for (int k = 0; k < 2; k++) {
            kefuctl_sim_order_t *o = kefuctl_sim_order_new(sim);
            /* at least a week back: delivered and confirmed (5 days on) before the start */
            int64_t day = sim->o.start - kefuctl_sim_range(&r, 7, SIM_HISTORY_DAYS) * SIM_DAY_MS;
            o->created = kefuctl_sim_pick_time(&r, day);
            o->buyer = b;
            o->n = ++n;
            o->shop = shop;
            o->history = 1;
            s_gen_items(&r, o, kefuctl_sim_unit(&r) < 0.06);
            o->outcome = SIM_PAID;
            o->end = o->created + kefuctl_sim_range(&r, 60, 1200) * 1000;
            kefuctl_sim_push_order(sim, o);
        }
    }
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One shop-day: --orders +-10% orders, numbered in creation order. */
static void s_gen_day(kefuctl_sim_t *sim, uint16_t shop, int day)
{
    kefuctl_sim_rng_t r =
        kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_DAY, shop, (uint64_t)day);
    int64_t midnight = sim->o.start + (int64_t)day * SIM_DAY_MS;
    long long n = llround((double)sim->o.orders * (0.9 + 0.2 * kefuctl_sim_unit(&r)));
    if (n < 1)
        n = 1;
    int64_t *times = kf_xmalloc((size_t)n * sizeof(*times));
    for (long long i = 0; i < n; i++)
        times[i] = kefuctl_sim_pick_time(&r, midnight);
    qsort(times, (size_t)n, sizeof(*times), s_cmp_i64);
    for (long long i = 1; i <= n; i++) {
        kefuctl_sim_order_t *o = kefuctl_sim_order_new(sim);
        o->created = times[i - 1];
        if (kefuctl_sim_unit(&r) < 0.20) /* a repeat buyer */
            o->buyer = (uint32_t)kefuctl_sim_below(&r, sim->nloyal);
        else
            o->buyer = sim->nloyal + (uint32_t)kefuctl_sim_below(&r, sim->npool - sim->nloyal);
        o->n = (uint32_t)i;
        o->shop = shop;
        o->promo = sim->o.promo[day + 1];
        o->flash = kefuctl_sim_unit(&r) < 0.05;
        s_gen_items(&r, o, kefuctl_sim_unit(&r) < 0.06);
        s_gen_payment(&r, o);
        kefuctl_sim_push_order(sim, o);
    }
    free(times);
}

/* 1% of the buyers who ordered opt out of sms, on the day of one of their orders. */
static void s_gen_optouts(kefuctl_sim_t *sim, uint16_t shop, size_t first)
{
    uint32_t *pick = kf_xcalloc(sim->npool, sizeof(*pick)); /* orders seen, then countdown+1 */
    for (size_t i = first; i < sim->norders; i++)
        if (!sim->orders[i].history)
            pick[sim->orders[i].buyer]++;
    for (uint32_t b = 0; b < sim->npool; b++) {
        kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_OPTOUT, shop, b);
        pick[b] = pick[b] && kefuctl_sim_unit(&r) < 0.01
                      ? 1 + (uint32_t)kefuctl_sim_below(&r, pick[b])
                      : 0;
    }
    for (size_t i = first; i < sim->norders; i++) {
        const kefuctl_sim_order_t *o = &sim->orders[i];
        if (o->history || pick[o->buyer] == 0 || --pick[o->buyer] != 0)
            continue;
        kefuctl_sim_rng_t r =
            kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_OPTOUT, shop, o->buyer);
        kefuctl_sim_next(&r); /* past the two draws above */
        kefuctl_sim_next(&r);
        int64_t t =
            kf_local_midnight(o->created, SIM_OFFSET) + kefuctl_sim_range(&r, 0, 86399) * 1000;
        kefuctl_sim_push(sim, SIM_EV_OPTOUT, t, shop, o->buyer);
    }
    free(pick);
}

void kefuctl_sim_buyer_id(uint16_t shop, uint32_t b, char *buf, size_t len)
{
    snprintf(buf, len, "s%u-b%06u", (unsigned)shop + 1, (unsigned)b);
}

void kefuctl_sim_buyer_gen(const kefuctl_sim_t *sim, uint16_t shop, uint32_t b,
                           kefuctl_sim_buyer_t *by)
{
    kefuctl_sim_rng_t r = kefuctl_sim_stream((uint64_t)sim->o.seed, SIM_TAG_BUYER, shop, b);
    kefuctl_sim_buyer_id(shop, b, by->id, sizeof(by->id));
    if (kefuctl_sim_unit(&r) < 0.3) {
        snprintf(by->nick, sizeof(by->nick), "tb%010llu",
                 (unsigned long long)kefuctl_sim_below(&r, 10000000000ULL));
    } else { /* the draws in the order GCC evaluated the first version's snprintf arguments:
              * the seeds keep their buyers */
        unsigned num = (unsigned)kefuctl_sim_range(&r, 1, 9999);
        const char *b2 = SIM_PICK(&r, s_nick_b);
        const char *a = SIM_PICK(&r, s_nick_a);
        snprintf(by->nick, sizeof(by->nick), "%s%s%u", a, b2, num);
    }
    const char *surname = SIM_PICK(&r, kefuctl_sim_surnames);
    const char *g1 = SIM_PICK(&r, s_given);
    const char *g2 = kefuctl_sim_unit(&r) < 0.7 ? SIM_PICK(&r, s_given) : "";
    snprintf(by->name, sizeof(by->name), "%s%s%s", surname, g1, g2);
    unsigned long long digits = kefuctl_sim_below(&r, 1000000000ULL);
    char second = "358"[kefuctl_sim_below(&r, 3)];
    snprintf(by->phone, sizeof(by->phone), "1%c%09llu", second, digits);
    unsigned sum = 0, i = 0;
    for (size_t k = 0; k < KF_ARRAY_LEN(kefuctl_sim_places); k++)
        sum += kefuctl_sim_places[k].weight;
    unsigned x = (unsigned)kefuctl_sim_below(&r, sum);
    while (x >= kefuctl_sim_places[i].weight)
        x -= kefuctl_sim_places[i++].weight;
    by->place = i;
}

void kefuctl_sim_gen_shop(kefuctl_sim_t *sim, uint16_t shop)
{
    sim->counter = 0;
    int64_t config_at = sim->o.start - SIM_HOUR_MS;
    if (sim->o.history) /* before the history block: the shop exists before its orders */
        config_at -= (sim->o.care ? SIM_CARE_HISTORY_DAYS : SIM_HISTORY_DAYS) * SIM_DAY_MS;
    kefuctl_sim_push(sim, SIM_EV_CONFIG, config_at, shop, shop);
    size_t first = sim->norders;
    if (sim->o.history)
        s_gen_history(sim, shop);
    for (int d = 0; d < sim->o.days; d++)
        s_gen_day(sim, shop, d);
    s_gen_optouts(sim, shop, first);
    size_t first_ship = sim->nships;
    if (sim->o.logistics)
        kefuctl_sim_gen_logistics(sim, shop, first);
    if (sim->o.reviews) /* last: their event numbers come after all the others */
        kefuctl_sim_gen_reviews(sim, shop, first_ship);
    if (sim->o.care) /* numbered apart, so after the reviews or not changes nothing */
        kefuctl_sim_gen_care(sim, shop, config_at);
}

/* ------------------------------------------------------------------ rendering */

/* The sku_id of an order's item (and its title). */
const char *kefuctl_sim_sku(const kefuctl_sim_order_t *o, unsigned item, const char **title)
{
    const s_product_t *p = &s_catalog[o->sku[item < o->nitems ? item : 0]];
    *title = p->title;
    return p->sku_id;
}

/* s1-20261110-00001, s1-h20261012-00004 (the loyal buyers' history), s1-r20260801-00012
 * (a repeat buyer's order, past or not) */
void kefuctl_sim_order_id(const kefuctl_sim_order_t *o, char *buf, size_t len)
{
    snprintf(buf, len, "s%u-%s%08d-%05u", (unsigned)o->shop + 1,
             o->care ? "r" : o->history ? "h" : "", kf_local_yyyymmdd(o->created, SIM_OFFSET),
             (unsigned)o->n);
}

/* What an order's own streams (shipment, review) are keyed by: its day and number; the
 * repeat buyers' orders, numbered per shop, in days of their own. */
uint64_t kefuctl_sim_order_key(const kefuctl_sim_t *sim, const kefuctl_sim_order_t *o)
{
    uint64_t day = (uint64_t)((o->created - sim->o.start) / SIM_DAY_MS);
    if (o->care)
        day += 1u << 20;
    return day << 32 | o->n;
}

uint8_t kefuctl_sim_consumable(unsigned i)
{
    return (uint8_t)(S_NCATALOG - SIM_NCONSUMABLES + i % SIM_NCONSUMABLES);
}

static json_t *s_buyer_json(const kefuctl_sim_t *sim, uint16_t shop, uint32_t b)
{
    kefuctl_sim_buyer_t by;
    kefuctl_sim_buyer_gen(sim, shop, b, &by);
    json_t *o = json_object();
    kefuctl_sim_set_str(o, "buyer_id", by.id);
    kefuctl_sim_set_str(o, "nick", by.nick);
    kefuctl_sim_set_str(o, "name", by.name);
    kefuctl_sim_set_str(o, "phone", by.phone);
    kefuctl_sim_set_str(o, "city", kefuctl_sim_places[by.place].city);
    kefuctl_sim_set_str(o, "province", kefuctl_sim_places[by.place].province);
    return o;
}

void kefuctl_sim_render_config(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    size_t n = KF_ARRAY_LEN(s_shop_names);
    const char *name = s_shop_names[ev->shop % n];
    if (ev->shop < n) {
        kefuctl_sim_set_str(o, "name", name);
    } else {
        char buf[128];
        snprintf(buf, sizeof(buf), "%s%u号店", name, (unsigned)(ev->shop / n + 1));
        kefuctl_sim_set_str(o, "name", buf);
    }
    kefuctl_sim_set_int(o, "utc_offset_minutes", SIM_OFFSET);
    if (sim->o.reviews) {
        json_t *agents = json_array();
        unsigned nagents = kefuctl_sim_agents(sim, ev->shop);
        for (unsigned i = 1; i <= nagents; i++) {
            char id[16];
            snprintf(id, sizeof(id), "a%u", i);
            json_array_append_new(agents, json_string(id));
        }
        json_object_set_new(o, "agents", agents);
    }
    if (sim->o.care)
        kefuctl_sim_render_festivals(sim, o);
}

void kefuctl_sim_render_created(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    const kefuctl_sim_order_t *ord = &sim->orders[ev->ref];
    char buf[64];
    kefuctl_sim_order_id(ord, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "order_id", buf);
    json_object_set_new(o, "buyer", s_buyer_json(sim, ord->shop, ord->buyer));
    json_t *items = json_array();
    for (unsigned i = 0; i < ord->nitems; i++) {
        const s_product_t *p = &s_catalog[ord->sku[i]];
        json_t *it = json_object();
        kefuctl_sim_set_str(it, "sku_id", p->sku_id);
        kefuctl_sim_set_str(it, "title", p->title);
        kefuctl_sim_set_int(it, "qty", ord->qty[i]);
        kefuctl_sim_set_int(it, "price_fen", p->price_fen);
        json_array_append_new(items, it);
    }
    json_object_set_new(o, "items", items);
    kefuctl_sim_set_int(o, "total_fen", ord->total_fen);
    kefuctl_sim_set_str(o, "kind", ord->flash ? "flash_sale" : "normal");
    kefuctl_sim_set_time(o, "created_at", ord->created);
    if (ord->promo)
        kefuctl_sim_set_str(o, "promotion", "双11");
}

/* order.paid and order.closed */
void kefuctl_sim_render_status(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    const kefuctl_sim_order_t *ord = &sim->orders[ev->ref];
    char buf[64];
    kefuctl_sim_order_id(ord, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "order_id", buf);
    kefuctl_sim_set_time(o, "at", ord->end);
    if (ev->type == SIM_EV_CLOSED)
        kefuctl_sim_set_str(o, "reason", ord->outcome == SIM_CLOSED_BUYER ? "buyer" : "timeout");
    kefuctl_sim_buyer_id(ord->shop, ord->buyer, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "buyer_id", buf);
    if (ev->type == SIM_EV_PAID)
        kefuctl_sim_set_int(o, "amount_fen", ord->total_fen);
}

void kefuctl_sim_render_optout(const kefuctl_sim_t *sim, const kefuctl_sim_ev_t *ev, json_t *o)
{
    char buf[64];
    kefuctl_sim_buyer_id(ev->shop, ev->ref, buf, sizeof(buf));
    kefuctl_sim_set_str(o, "buyer_id", buf);
    json_t *ch = json_array();
    json_array_append_new(ch, json_string("sms"));
    json_object_set_new(o, "channels", ch);
}
