/* Unit tests for kf_clock: real vs simulated time, and the shop-local calendar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "kf_clock.h"
#include "kf_util.h"

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define CST 480 /* +08:00 */

/* 2026-11-10T16:30:00Z = 2026-11-11 00:30 at +08:00, a Wednesday */
static const int64_t s_t0 = INT64_C(1794328200000);
/* 2026-11-11T00:00:00+08:00 */
static const int64_t s_mid = INT64_C(1794326400000);

static void test_real(void **state)
{
    kf_clock_init(false, s_t0);
    assert_false(kf_clock_simulated());
    int64_t before = kf_wall_ms();
    int64_t now = kf_clock_now();
    int64_t after = kf_wall_ms();
    assert_true(now >= before && now <= after);
    assert_int_equal(kf_clock_set(s_t0), KF_ERR); /* real time cannot be set */
    assert_true(kf_clock_now() >= now);
}

static void test_local_md(void **state)
{
    char buf[32];
    assert_string_equal(kf_local_md(s_t0, CST, 1, buf, sizeof(buf)), "11月11日00:30");
    assert_string_equal(kf_local_md(s_t0, CST, 0, buf, sizeof(buf)), "11月11日");
    assert_string_equal(kf_local_md(s_t0, 0, 1, buf, sizeof(buf)), "11月10日16:30");
    assert_string_equal(kf_local_md(s_t0 + INT64_C(86400000) * 60, CST, 1, buf, sizeof(buf)),
                        "1月10日00:30");
}

static void test_simulated(void **state)
{
    kf_clock_init(true, s_t0);
    assert_true(kf_clock_simulated());
    assert_int_equal(kf_clock_now(), s_t0);
    assert_int_equal(kf_clock_now(), s_t0); /* does not move on its own */
    assert_int_equal(kf_clock_set(s_t0 + HOUR_MS), KF_OK);
    assert_int_equal(kf_clock_now(), s_t0 + HOUR_MS);
    assert_int_equal(kf_clock_set(s_t0 + HOUR_MS), KF_OK); /* same time: no-op */
    assert_int_equal(kf_clock_set(s_t0), KF_ERR);          /* never backwards */
    assert_int_equal(kf_clock_now(), s_t0 + HOUR_MS);
    assert_int_equal(kf_clock_set(s_t0 + 3 * DAY_MS), KF_OK);
    assert_int_equal(kf_clock_now(), s_t0 + 3 * DAY_MS);
    kf_clock_init(false, 0);
}

static void test_local_around_midnight(void **state)
{
    kf_local_t t;
    kf_local(s_t0, CST, &t);
    assert_int_equal(t.year, 2026);
    assert_int_equal(t.month, 11);
    assert_int_equal(t.day, 11);
    assert_int_equal(t.hour, 0);
    assert_int_equal(t.minute, 30);
    assert_int_equal(t.second, 0);
    assert_int_equal(t.minute_of_day, 30);
    assert_int_equal(t.wday, 3);
    /* the same instant in UTC is still the 10th */
    assert_int_equal(kf_local_yyyymmdd(s_t0, 0), 20261110);
    assert_int_equal(kf_local_yyyymmdd(s_t0, CST), 20261111);
    /* one ms before local midnight is the previous local day */
    kf_local(s_mid - 1, CST, &t);
    assert_int_equal(t.day, 10);
    assert_int_equal(t.hour, 23);
    assert_int_equal(t.minute, 59);
    assert_int_equal(t.second, 59);
    assert_int_equal(t.minute_of_day, 1439);
    assert_int_equal(t.wday, 2);
    assert_int_equal(kf_local_midnight(s_t0, CST), s_mid);
    assert_int_equal(kf_local_midnight(s_mid, CST), s_mid);
    assert_int_equal(kf_local_midnight(s_mid - 1, CST), s_mid - DAY_MS);
    /* UTC midnight of the 10th */
    assert_int_equal(kf_local_midnight(s_t0, 0), s_mid + 8 * HOUR_MS - DAY_MS);
}

static void test_local_other_dates(void **state)
{
    kf_local_t t;
    /* 2024-02-29T12:00:00Z = 20:00 at +08:00, a Thursday; leap day */
    kf_local(INT64_C(1709208000000), CST, &t);
    assert_int_equal(kf_local_yyyymmdd(INT64_C(1709208000000), CST), 20240229);
    assert_int_equal(t.hour, 20);
    assert_int_equal(t.wday, 4);
    /* before the epoch: 1969-12-31T23:59:59Z = 1970-01-01 07:59:59 at +08:00 */
    kf_local(-1000, CST, &t);
    assert_int_equal(kf_local_yyyymmdd(-1000, CST), 19700101);
    assert_int_equal(t.second, 59);
    assert_int_equal(kf_local_yyyymmdd(-1000, 0), 19691231);
    kf_local(-1000, 0, &t);
    assert_int_equal(t.wday, 3);
    /* a negative offset: -05:00 */
    assert_int_equal(kf_local_yyyymmdd(s_t0, -300), 20261110);
    kf_local(s_t0, -300, &t);
    assert_int_equal(t.hour, 11);
    assert_int_equal(t.minute, 30);
    /* the calendar agrees with kf_time_format over many days and years */
    char buf[40], want[16];
    for (int64_t ms = -INT64_C(86400000) * 400; ms < INT64_C(4102444800000);
         ms += 13 * DAY_MS + 3 * HOUR_MS + 7 * MIN_MS) {
        assert_int_equal(kf_time_format(ms, CST, buf, sizeof(buf)), KF_OK);
        int ymd = kf_local_yyyymmdd(ms, CST);
        snprintf(want, sizeof(want), "%04d-%02d-%02d", ymd / 10000, ymd / 100 % 100, ymd % 100);
        assert_memory_equal(buf, want, 10);
    }
}

static void test_local_at(void **state)
{
    /* 00:30 local on the 11th: 19:30 today is later the same local day */
    assert_int_equal(kf_local_at(s_t0, CST, 0, 19, 30), s_mid + 19 * HOUR_MS + 30 * MIN_MS);
    assert_int_equal(kf_local_at(s_t0, CST, 1, 9, 0), s_mid + DAY_MS + 9 * HOUR_MS);
    assert_int_equal(kf_local_at(s_t0, CST, -1, 23, 0), s_mid - HOUR_MS);
    assert_int_equal(kf_local_at(s_t0, CST, 0, 0, 0), s_mid);
    assert_int_equal(kf_local_at(s_t0, CST, 0, 24, 0), s_mid + DAY_MS);
    /* 23:59:59.999 on the 10th belongs to the 10th */
    assert_int_equal(kf_local_at(s_mid - 1, CST, 0, 8, 0), s_mid - DAY_MS + 8 * HOUR_MS);
    assert_int_equal(kf_local_at(s_mid - 1, CST, 3, 8, 0), s_mid + 2 * DAY_MS + 8 * HOUR_MS);
    /* check against the text form: 2026-11-12T09:15:00+08:00 */
    char buf[40];
    assert_int_equal(kf_time_format(kf_local_at(s_t0, CST, 1, 9, 15), CST, buf, sizeof(buf)),
                     KF_OK);
    assert_string_equal(buf, "2026-11-12T09:15:00+08:00");
}

static void test_parse_hhmm(void **state)
{
    assert_int_equal(kf_parse_hhmm("19:30"), 1170);
    assert_int_equal(kf_parse_hhmm("00:00"), 0);
    assert_int_equal(kf_parse_hhmm("09:05"), 545);
    assert_int_equal(kf_parse_hhmm("23:59"), 1439);
    assert_int_equal(kf_parse_hhmm("24:00"), 1440);
    static const char *const bad[] = {"24:01", "25:00", "12:60", "9:30",  "12:3", "12:300",
                                      "1230",  "12-30", "",      " 12:30", "12:30 ", "ab:cd",
                                      "-1:00", "12:",   ":30"};
    for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++)
        if (kf_parse_hhmm(bad[i]) != -1)
            fail_msg("kf_parse_hhmm(\"%s\") accepted", bad[i]);
    assert_int_equal(kf_parse_hhmm(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real),
        cmocka_unit_test(test_simulated),
        cmocka_unit_test(test_local_md),
        cmocka_unit_test(test_local_around_midnight),
        cmocka_unit_test(test_local_other_dates),
        cmocka_unit_test(test_local_at),
        cmocka_unit_test(test_parse_hhmm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
