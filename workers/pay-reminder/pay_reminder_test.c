/* Unit tests of the plan (DOMAIN §1): the timing table, channels, second reminders,
 * holding and techniques, on a default shop at +08:00. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kf_shop.h"
#include "kf_util.h"
#include "pay_reminder.h"

static kf_shops_t *s_shops;

static int64_t T(const char *rfc3339)
{
    int64_t ms = 0;
    assert_int_equal(kf_time_parse(rfc3339, &ms), KF_OK);
    return ms;
}

static pr_plan_t s_plan(const char *created, int64_t total, bool flash, bool repeat,
                        const char *deadline)
{
    const kf_shop_t *shop = kf_shops_get(s_shops, "s1");
    pr_order_t o = {.shop_id = "s1", .order_id = "o1", .buyer_id = "b1", .buyer_name = "张三",
                    .item = "真丝四件套", .total_fen = total, .flash = flash};
    o.created = T(created);
    o.deadline = deadline ? T(deadline) : o.created + (flash ? 30 * 60000LL : 72 * 3600000LL);
    pr_plan_t plan;
    pr_plan(shop, &o, repeat, &plan);
    return plan;
}

static void s_expect(const pr_step_t *st, const char *ch, const char *due, const char *drop)
{
    assert_string_equal(st->channel, ch);
    if (due)
        assert_int_equal(st->due, T(due));
    if (drop)
        assert_non_null(st->drop), assert_string_equal(st->drop, drop);
    else
        assert_null(st->drop);
}

static void test_timing_table(void **state)
{
    static const struct {
        const char *created, *first, *technique;
    } rows[] = {
        {"2026-11-10T03:00:00+08:00", "2026-11-10T10:00:00+08:00", "urgency"},
        {"2026-11-10T07:59:00+08:00", "2026-11-10T10:00:00+08:00", "urgency"},
        {"2026-11-10T08:00:00+08:00", "2026-11-10T14:00:00+08:00", "urgency"},
        {"2026-11-10T10:59:00+08:00", "2026-11-10T14:00:00+08:00", "urgency"},
        {"2026-11-10T11:00:00+08:00", "2026-11-10T11:30:00+08:00", "urgency"},
        {"2026-11-10T14:40:00+08:00", "2026-11-10T15:10:00+08:00", "privilege"},
        {"2026-11-10T15:00:00+08:00", "2026-11-11T10:00:00+08:00", "privilege"},
        {"2026-11-10T21:59:00+08:00", "2026-11-11T10:00:00+08:00", "privilege"},
        {"2026-11-10T23:30:00+08:00", "2026-11-11T10:00:00+08:00", "privilege"},
    };
    for (size_t i = 0; i < KF_ARRAY_LEN(rows); i++) {
        pr_plan_t p = s_plan(rows[i].created, 5900, false, false, NULL);
        assert_int_equal(p.n, 2);
        s_expect(&p.step[0], "im", rows[i].first, NULL);
        assert_string_equal(p.step[0].technique, rows[i].technique);
    }
}

static void test_second_reminder_is_sms_four_hours_later_held_by_quiet_hours(void **state)
{
    pr_plan_t p = s_plan("2026-11-10T09:00:00+08:00", 5900, false, false, NULL);
    s_expect(&p.step[0], "im", "2026-11-10T14:00:00+08:00", NULL);
    s_expect(&p.step[1], "sms", "2026-11-10T18:00:00+08:00", NULL);
    assert_string_equal(p.step[1].technique, "privilege"); /* after the cutoff */
    /* first at 20:00 next day -> +4 h = 00:00, quiet -> held to 08:00 */
    p = s_plan("2026-11-10T23:00:00+08:00", 5900, false, false, NULL);
    s_expect(&p.step[0], "im", "2026-11-11T10:00:00+08:00", NULL);
    s_expect(&p.step[1], "sms", "2026-11-11T14:00:00+08:00", NULL);
    /* 12:30 + 4 h = 16:30, still before deadline - 2 h = 18:00 */
    p = s_plan("2026-11-10T12:00:00+08:00", 5900, false, false, "2026-11-10T20:00:00+08:00");
    s_expect(&p.step[0], "im", "2026-11-10T12:30:00+08:00", NULL);
    s_expect(&p.step[1], "sms", "2026-11-10T16:30:00+08:00", NULL);
}

static void test_second_reminder_held_past_its_limit_is_dropped(void **state)
{
    /* first 12:30, second wanted 16:30, limit = deadline - 2 h = 16:00 -> dropped */
    pr_plan_t p = s_plan("2026-11-10T12:00:00+08:00", 5900, false, false,
                         "2026-11-10T18:00:00+08:00");
    s_expect(&p.step[1], "sms", NULL, "deadline");
    /* repeat buyer: phone 19:30; sms wanted 23:30 is held to 08:00, past its limit 07:00,
     * so the second reminder falls back to im at 23:30 */
    p = s_plan("2026-11-10T18:30:00+08:00", 5900, false, true, "2026-11-11T09:00:00+08:00");
    s_expect(&p.step[0], "phone", "2026-11-10T19:30:00+08:00", NULL);
    s_expect(&p.step[1], "im", "2026-11-10T23:30:00+08:00", NULL);
    /* an ordinary buyer: the table says 10:00 the next day, after the deadline: dropped */
    p = s_plan("2026-11-10T18:30:00+08:00", 5900, false, false, "2026-11-11T09:00:00+08:00");
    s_expect(&p.step[0], "im", "2026-11-11T10:00:00+08:00", "deadline");
}

static void test_flash_sale(void **state)
{
    pr_plan_t p = s_plan("2026-11-10T10:00:00+08:00", 9900, true, false, NULL);
    s_expect(&p.step[0], "im", "2026-11-10T10:10:00+08:00", NULL);
    s_expect(&p.step[1], "sms", "2026-11-10T10:20:00+08:00", NULL);
    assert_string_equal(p.step[0].technique, "flash"); /* it closes soon: not "ships today" */
    assert_string_equal(p.step[1].technique, "flash");
    /* 21:50: im at 22:00 (im has no quiet hours), the sms held to 08:00 > deadline 22:20 */
    p = s_plan("2026-11-10T21:50:00+08:00", 9900, true, false, NULL);
    s_expect(&p.step[0], "im", "2026-11-10T22:00:00+08:00", NULL);
    s_expect(&p.step[1], "sms", NULL, "deadline");
}

static void test_large_order_goes_to_phone_in_a_window(void **state)
{
    /* 09:00 -> table 14:00 -> first phone window 15:00 */
    pr_plan_t p = s_plan("2026-11-10T09:00:00+08:00", 60000, false, false, NULL);
    s_expect(&p.step[0], "phone", "2026-11-10T15:00:00+08:00", NULL);
    s_expect(&p.step[1], "sms", "2026-11-10T19:00:00+08:00", NULL);
    assert_string_equal(p.step[0].technique, "verification");
    /* 03:00 -> 10:00 is inside 10:00-11:30 */
    p = s_plan("2026-11-10T03:00:00+08:00", 50000, false, false, NULL);
    s_expect(&p.step[0], "phone", "2026-11-10T10:00:00+08:00", NULL);
    /* no phone window before the deadline -> sms */
    p = s_plan("2026-11-10T11:40:00+08:00", 80000, false, false, "2026-11-10T14:00:00+08:00");
    s_expect(&p.step[0], "sms", "2026-11-10T12:10:00+08:00", NULL);
    s_expect(&p.step[1], "im", NULL, "deadline");
}

static void test_repeat_buyer_last_day_phone_window(void **state)
{
    /* deadline 11-13 09:00 -> last 24 h start 11-12 09:00 -> phone window 10:00 */
    pr_plan_t p = s_plan("2026-11-10T09:00:00+08:00", 5900, false, true, NULL);
    s_expect(&p.step[0], "phone", "2026-11-12T10:00:00+08:00", NULL);
    assert_string_equal(p.step[0].technique, "repeat");
    s_expect(&p.step[1], "sms", "2026-11-12T14:00:00+08:00", NULL);
    assert_string_equal(p.step[1].technique, "repeat");
}

static void test_shop_settings_change_the_plan(void **state)
{
    Kefu__V1__ShopConfig c = KEFU__V1__SHOP_CONFIG__INIT;
    c.has_ship_cutoff_hour = 1;
    c.ship_cutoff_hour = 17;
    c.has_utc_offset_minutes = 1;
    c.utc_offset_minutes = 480;
    c.has_large_order_fen = 1;
    c.large_order_fen = 1000;
    uint8_t buf[256];
    size_t len = kefu__v1__shop_config__pack(&c, buf);
    assert_int_equal(kf_shops_set(s_shops, "s1", buf, len, NULL, 0), KF_OK);
    pr_plan_t p = s_plan("2026-11-10T09:00:00+08:00", 5900, false, false, NULL);
    s_expect(&p.step[0], "phone", "2026-11-10T16:00:00+08:00", NULL); /* 16:00, in 15:00-16:30 */
    assert_int_equal(kf_shops_set(s_shops, "s1", (const uint8_t *)"\xff", 1, NULL, 0), KF_ERR);
    Kefu__V1__ShopConfig d = KEFU__V1__SHOP_CONFIG__INIT;
    len = kefu__v1__shop_config__pack(&d, buf);
    assert_int_equal(kf_shops_set(s_shops, "s1", buf, len, NULL, 0), KF_OK);
}

static void test_plan_json_has_rendered_sms(void **state)
{
    const kf_shop_t *shop = kf_shops_get(s_shops, "s1");
    pr_order_t o = {.shop_id = "s1", .order_id = "o1", .buyer_id = "b1", .buyer_name = "张三",
                    .item = "2026新款真丝四件套100支长绒棉床单被套家用全棉刺绣款",
                    .okey = "k", .skey = "s", .total_fen = 5900};
    o.created = T("2026-11-10T09:05:00+08:00");
    o.deadline = o.created + 72 * 3600000LL;
    char *json = pr_plan_json(shop, &o, false);
    assert_non_null(strstr(json, "\"action_id\":\"pay:s1:o1:2\""));
    assert_non_null(strstr(json, "拒收请回复R"));
    assert_non_null(strstr(json, "…"));
    assert_null(strstr(json, "\"drop\""));
    free(json);
}

int main(void)
{
    s_shops = kf_shops_new();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timing_table),
        cmocka_unit_test(test_second_reminder_is_sms_four_hours_later_held_by_quiet_hours),
        cmocka_unit_test(test_second_reminder_held_past_its_limit_is_dropped),
        cmocka_unit_test(test_flash_sale),
        cmocka_unit_test(test_large_order_goes_to_phone_in_a_window),
        cmocka_unit_test(test_repeat_buyer_last_day_phone_window),
        cmocka_unit_test(test_shop_settings_change_the_plan),
        cmocka_unit_test(test_plan_json_has_rendered_sms),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_shops_destroy(&s_shops);
    return rc;
}
