/* Unit tests for kf_shop: a shop without a config has kefu.proto's defaults (DOMAIN §0, §2,
 * §3), a config overrides what it sets and keeps the defaults of what it leaves out, and bad
 * values fall back to the defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kf_shop.h"
#include "kf_util.h"

static void s_set(kf_shops_t *shops, const char *id, const Kefu__V1__ShopConfig *c)
{
    size_t len = kefu__v1__shop_config__get_packed_size(c);
    uint8_t *buf = malloc(len ? len : 1);
    kefu__v1__shop_config__pack(c, buf);
    char err[256];
    assert_int_equal(kf_shops_set(shops, id, buf, len, err, sizeof(err)), KF_OK);
    free(buf);
}

static void test_defaults_without_a_config(void **state)
{
    kf_shops_t *shops = kf_shops_new();
    const kf_shop_t *s = kf_shops_get(shops, "s1");
    assert_string_equal(s->name, "s1");
    assert_int_equal(s->offset, 480);
    assert_int_equal(s->cutoff_hour, 15);
    assert_int_equal(s->promised_ship_hours, 48);
    assert_int_equal(s->large_order_fen, 50000);
    assert_int_equal(s->compensation_neutral_fen, 500);
    assert_int_equal(s->compensation_bad_fen, 1000);
    assert_int_equal(s->cap_daily, 3);
    assert_int_equal(s->cap_sms_daily, 1);
    assert_int_equal(s->cap_sms_weekly, 2);
    assert_int_equal(s->cap_phone_daily, 1);
    assert_int_equal(s->quiet.start_min, 22 * 60);
    assert_int_equal(s->quiet.end_min, 8 * 60);
    assert_int_equal(s->nphone, 3);
    kf_shops_destroy(&shops);
}

static void test_a_config_overrides_what_it_sets(void **state)
{
    kf_shops_t *shops = kf_shops_new();
    Kefu__V1__ShopConfig c = KEFU__V1__SHOP_CONFIG__INIT;
    c.has_promised_ship_hours = 1;
    c.promised_ship_hours = 72;
    c.has_compensation_bad_fen = 1;
    c.compensation_bad_fen = 0; /* no compensation at all: allowed */
    c.has_daily_contact_cap = 1;
    c.daily_contact_cap = 5;
    s_set(shops, "s2", &c);
    const kf_shop_t *s = kf_shops_get(shops, "s2");
    assert_int_equal(s->promised_ship_hours, 72);
    assert_int_equal(s->compensation_bad_fen, 0);
    assert_int_equal(s->compensation_neutral_fen, 500); /* left out: the default */
    assert_int_equal(s->cap_daily, 5);
    assert_int_equal(s->cutoff_hour, 15);
    kf_shops_destroy(&shops);
}

static void test_bad_values_fall_back_to_the_defaults(void **state)
{
    kf_shops_t *shops = kf_shops_new();
    Kefu__V1__ShopConfig c = KEFU__V1__SHOP_CONFIG__INIT;
    c.has_promised_ship_hours = 1;
    c.promised_ship_hours = -4;
    c.has_ship_cutoff_hour = 1;
    c.ship_cutoff_hour = 31;
    c.has_compensation_neutral_fen = 1;
    c.compensation_neutral_fen = -1;
    s_set(shops, "s3", &c);
    const kf_shop_t *s = kf_shops_get(shops, "s3");
    assert_int_equal(s->promised_ship_hours, 48);
    assert_int_equal(s->cutoff_hour, 15);
    assert_int_equal(s->compensation_neutral_fen, 500);
    kf_shops_destroy(&shops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_without_a_config),
        cmocka_unit_test(test_a_config_overrides_what_it_sets),
        cmocka_unit_test(test_bad_values_fall_back_to_the_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
