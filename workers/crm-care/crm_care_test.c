/* Unit tests of what C decides for kefu-crm-care: dates (birthdays, festivals) and the
 * built-in care texts. The profiles and care themselves are tested through the real
 * processes (tests/integration/test_crm_care.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crm_care.h"
#include "kf_clock.h"
#include "kf_tmpl.h"
#include "kf_util.h"

#define CST 480
#define HOUR_MS (3600 * 1000LL)

/* 2026-11-10 00:00 +08:00 */
static const int64_t s_day0 = 1794240000000LL;

static void test_parse_date(void **state)
{
    int y, m, d;
    assert_int_equal(cc_parse_date("03-01", &y, &m, &d), KF_OK);
    assert_int_equal(y * 10000 + m * 100 + d, 301);
    assert_int_equal(cc_parse_date("02-29", &y, &m, &d), KF_OK);
    assert_int_equal(cc_parse_date("2027-01-01", &y, &m, &d), KF_OK);
    assert_int_equal(y * 10000 + m * 100 + d, 20270101);
    static const char *const bad[] = {"", "3-1", "13-01", "02-30", "00-10", "2027-02-29",
                                      "1-2-3", "ab-cd", "03-01x", "12/25", "04-31", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (cc_parse_date(bad[i], &y, &m, &d) == KF_OK)
            fail_msg("'%s' parsed as a date", bad[i]);
    assert_int_equal(cc_parse_date(NULL, &y, &m, &d), KF_ERR);
}

static void test_next_date(void **state)
{
    /* today before 10:00 -> today 10:00; at 10:00 -> now; after -> next year */
    int64_t ten = s_day0 + 10 * HOUR_MS;
    assert_int_equal(cc_next_date(s_day0, CST, 0, 11, 10), ten);
    assert_int_equal(cc_next_date(ten, CST, 0, 11, 10), ten);
    int64_t next = cc_next_date(ten + 1, CST, 0, 11, 10);
    assert_int_equal(kf_local_yyyymmdd(next, CST), 20271110);
    assert_int_equal(next - ten, 365 * 24 * HOUR_MS);
    /* a 02-29 birthday waits for 2028 */
    assert_int_equal(kf_local_yyyymmdd(cc_next_date(s_day0, CST, 0, 2, 29), CST), 20280229);
    /* one-off dates: that year only */
    assert_int_equal(kf_local_yyyymmdd(cc_next_date(s_day0, CST, 2026, 12, 12), CST), 20261212);
    assert_int_equal(cc_next_date(s_day0, CST, 2026, 1, 1), -1);
    /* the shop's offset: 10:00 local at UTC-5 */
    kf_local_t lt;
    kf_local(cc_next_date(s_day0, -300, 0, 12, 25), -300, &lt);
    assert_int_equal(lt.hour * 100 + lt.minute, 1000);
    assert_int_equal(lt.month * 100 + lt.day, 1225);
}

/* Every built-in care text renders; the sms ones fit in 70 characters with the opt-out
 * suffix for any name of up to 6 characters and a long shop name. */
static void test_builtin_texts(void **state)
{
    kf_shops_t *shops = kf_shops_new();
    const kf_shop_t *shop = kf_shops_get(shops, "s1");
    static const char *const kinds[] = {"shipped", "same_city", "out_for_delivery", "signed",
                                        "usage", "replenish", "birthday", "festival",
                                        "winback", "campaign", NULL};
    static const char *const chans[] = {"im", "sms", NULL};
    char err[256];
    size_t nsms = 0;
    for (size_t k = 0; kinds[k]; k++) {
        for (size_t c = 0; chans[c]; c++) {
            const char *t = cc_template(shop, kinds[k], chans[c]);
            if (!*t)
                continue;
            bool marketing = k >= 5; /* replenish and after */
            char *text = cc_prerender(shop, t, chans[c], marketing, "中秋节", "双十一返场", err,
                                      sizeof(err));
            if (!text)
                fail_msg("care_%s/%s: %s", kinds[k], chans[c], err);
            if (strcmp(chans[c], "sms") == 0) {
                nsms++;
                assert_true(kf_utf8_len(text) <= KF_TMPL_SMS_MAX);
                assert_true(!marketing || strstr(text, KF_TMPL_OPTOUT));
                assert_ptr_equal(strstr(text, "{buyer}"), text); /* the name comes first */
            }
            free(text);
        }
        assert_true(*cc_template(shop, kinds[k], "im") || *cc_template(shop, kinds[k], "sms"));
    }
    assert_true(nsms >= 4);
    kf_shops_destroy(&shops);
}

/* A campaign template that cannot fit in an sms is refused, not cut. */
static void test_sms_too_long(void **state)
{
    kf_shops_t *shops = kf_shops_new();
    const kf_shop_t *shop = kf_shops_get(shops, "s1");
    char err[256] = "";
    char *text = cc_prerender(shop,
                              "{buyer}亲，这是一条非常非常长的短信，用来检查超过七十个字符的活动模板会"
                              "被拒绝而不是被截断，因为截断会让顾客看到半句话，{shop}{campaign}",
                              "sms", true, NULL, "一个名字也很长的活动", err, sizeof(err));
    assert_null(text);
    assert_true(strlen(err) > 0);
    text = cc_prerender(shop, "{buyer}亲，{nope}", "im", true, NULL, "x", err, sizeof(err));
    assert_null(text);
    assert_non_null(strstr(err, "nope"));
    kf_shops_destroy(&shops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_date),
        cmocka_unit_test(test_next_date),
        cmocka_unit_test(test_builtin_texts),
        cmocka_unit_test(test_sms_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
