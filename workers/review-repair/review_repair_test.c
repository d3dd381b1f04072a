/* Unit tests of the cause classifier (DOMAIN §3) on real-style review texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "kf_shop.h"
#include "kf_util.h"
#include "review_repair.h"

static void test_causes_of_real_style_texts(void **state)
{
    static const struct {
        const char *text, *causes;
        bool money;
    } rows[] = {
        {"收到就发现有瑕疵，边上还开线了", "product", false},
        {"洗了一次就起球掉色，质量太差", "product", false},
        {"尺码偏小，穿着不合适", "subjective", false},
        {"一般般吧，感觉不值这个价", "subjective", false},
        {"客服态度很差，问了半天不理人", "service", false},
        {"申请退款三天了没人处理", "service", false},
        {"快递太慢了，等了一个星期", "logistics", false},
        {"包装压坏了，盒子都扁了", "product,logistics", false},
        {"颜色有色差，客服也不回复", "product,service", false},
        {"不给我返现20元就不改差评", "malicious", true},
        {"再不赔钱就曝光你们", "malicious", true},
        {"东西有异味，不赔偿的话我就一直差评", "product,malicious", true},
        {"还行", "other", false},
        {"", "other", false},
    };
    for (size_t i = 0; i < KF_ARRAY_LEN(rows); i++) {
        char out[128];
        bool money = !rows[i].money;
        rr_classify(NULL, rows[i].text, out, sizeof(out), &money);
        assert_string_equal(out, rows[i].causes);
        assert_int_equal(money, rows[i].money);
    }
}

static void test_shop_keywords_extend_a_cause(void **state)
{
    kf_shops_t *shops = kf_shops_new();
    Kefu__V1__CauseKeywords ck = KEFU__V1__CAUSE_KEYWORDS__INIT;
    char *words[] = {"缩水"};
    ck.cause = "product";
    ck.n_words = 1;
    ck.words = words;
    Kefu__V1__CauseKeywords *cks[] = {&ck};
    Kefu__V1__ShopConfig c = KEFU__V1__SHOP_CONFIG__INIT;
    c.n_cause_keywords = 1;
    c.cause_keywords = cks;
    uint8_t buf[256];
    size_t len = kefu__v1__shop_config__pack(&c, buf);
    assert_int_equal(kf_shops_set(shops, "s1", buf, len, NULL, 0), KF_OK);
    char out[128];
    bool money;
    rr_classify(kf_shops_get(shops, "s1"), "洗完缩水了", out, sizeof(out), &money);
    assert_string_equal(out, "product");
    rr_classify(kf_shops_get(shops, "s2"), "洗完缩水了", out, sizeof(out), &money);
    assert_string_equal(out, "other");
    kf_shops_destroy(&shops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_causes_of_real_style_texts),
        cmocka_unit_test(test_shop_keywords_extend_a_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
