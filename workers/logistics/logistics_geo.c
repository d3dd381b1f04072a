/* kefu-logistics: the province of a destination city (DOMAIN §2: remote provinces get 72 h
 * before a parcel counts as stalled). Every prefecture-level city of the seven remote
 * provinces (and their best-known county-level cities), and the big cities elsewhere. */
#include <string.h>

#include "kf_util.h"
#include "logistics.h"

static const struct {
    const char *province;
    const char *cities; /* space separated, without 市 */
} s_geo[] = {
    {"新疆", "乌鲁木齐 克拉玛依 吐鲁番 哈密 昌吉 博尔塔拉 博乐 巴音郭楞 库尔勒 阿克苏 克孜勒苏 "
             "阿图什 喀什 和田 伊犁 伊宁 塔城 阿勒泰 石河子 奎屯 阿拉尔 五家渠 图木舒克 北屯"},
    {"西藏", "拉萨 日喀则 昌都 林芝 山南 那曲 阿里"},
    {"青海", "西宁 海东 海北 黄南 海南州 海南藏族自治州 果洛 玉树 海西 格尔木 德令哈"},
    {"内蒙古", "呼和浩特 包头 乌海 赤峰 通辽 鄂尔多斯 呼伦贝尔 巴彦淖尔 乌兰察布 兴安盟 "
               "锡林郭勒 阿拉善 满洲里 二连浩特 乌兰浩特 锡林浩特 海拉尔"},
    {"甘肃", "兰州 嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南 临夏 甘南 敦煌"},
    {"宁夏", "银川 石嘴山 吴忠 固原 中卫"},
    {"海南", "海口 三亚 三沙 儋州 琼海 文昌 万宁 五指山 东方"},
    {"北京", "北京"},
    {"上海", "上海"},
    {"天津", "天津"},
    {"重庆", "重庆"},
    {"广东", "广州 深圳 东莞 佛山 珠海 中山 惠州 汕头"},
    {"浙江", "杭州 宁波 温州 绍兴 嘉兴 金华 义乌 台州 湖州"},
    {"江苏", "南京 苏州 无锡 常州 南通 徐州 扬州"},
    {"山东", "济南 青岛 烟台 潍坊 临沂"},
    {"四川", "成都 绵阳"},
    {"湖北", "武汉 宜昌 襄阳"},
    {"湖南", "长沙 株洲"},
    {"河南", "郑州 洛阳"},
    {"河北", "石家庄 保定 唐山"},
    {"陕西", "西安"},
    {"辽宁", "沈阳 大连"},
    {"吉林", "长春"},
    {"黑龙江", "哈尔滨"},
    {"山西", "太原"},
    {"安徽", "合肥 芜湖"},
    {"福建", "福州 厦门 泉州"},
    {"江西", "南昌"},
    {"广西", "南宁 桂林 柳州"},
    {"云南", "昆明 大理 丽江"},
    {"贵州", "贵阳 遵义"},
};

/* city is known when it equals a listed name, or is that name followed by 市, 州, 地区 or 盟. */
static bool s_match(const char *city, const char *name, size_t n)
{
    if (strncmp(city, name, n) != 0)
        return false;
    const char *rest = city + n;
    return !*rest || strcmp(rest, "市") == 0 || strcmp(rest, "地区") == 0 ||
           strcmp(rest, "州") == 0 || strcmp(rest, "盟") == 0;
}

const char *lg_province(const char *city)
{
    if (!city || !*city)
        return NULL;
    for (size_t i = 0; i < KF_ARRAY_LEN(s_geo); i++) {
        /* a province named as the city (新疆, 内蒙古自治区...) */
        if (strncmp(city, s_geo[i].province, strlen(s_geo[i].province)) == 0)
            return s_geo[i].province;
        for (const char *p = s_geo[i].cities; *p;) {
            const char *sp = strchr(p, ' ');
            size_t n = sp ? (size_t)(sp - p) : strlen(p);
            if (s_match(city, p, n))
                return s_geo[i].province;
            p += n;
            while (*p == ' ')
                p++;
        }
    }
    return NULL;
}
