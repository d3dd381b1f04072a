/* Unit tests for kf_window: quiet hours over midnight, the next allowed moment across day
 * boundaries, hold/drop against a deadline, and shop-local time from UTC instants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kf_util.h"
#include "kf_window.h"

#define CST 480 /* +08:00 */
#define MIN_MS INT64_C(60000)

static int64_t s_t(const char *rfc3339)
{
    int64_t ms = 0;
    if (kf_time_parse(rfc3339, &ms) != KF_OK)
        fail_msg("bad time in test: %s", rfc3339);
    return ms;
}

static void s_assert_time(int64_t got, const char *want)
{
    char buf[40];
    if (got != s_t(want)) {
        kf_time_format(got, CST, buf, sizeof(buf));
        fail_msg("got %s (%lld), want %s", buf, (long long)got, want);
    }
}

static const kf_window_t s_phone[] = KF_WINDOW_PHONE_INIT;

static void test_contains(void **state)
{
    const kf_window_t quiet = KF_WINDOW_QUIET_INIT; /* 22:00-08:00, over midnight */
    assert_true(kf_window_contains(&quiet, 22 * 60));
    assert_true(kf_window_contains(&quiet, 23 * 60 + 59));
    assert_true(kf_window_contains(&quiet, 0));
    assert_true(kf_window_contains(&quiet, 7 * 60 + 59));
    assert_false(kf_window_contains(&quiet, 8 * 60));
    assert_false(kf_window_contains(&quiet, 12 * 60));
    assert_false(kf_window_contains(&quiet, 21 * 60 + 59));
    assert_false(kf_window_contains(&quiet, -1));
    assert_false(kf_window_contains(&quiet, 1440));

    assert_true(kf_window_contains(&s_phone[0], 10 * 60));
    assert_true(kf_window_contains(&s_phone[0], 11 * 60 + 29));
    assert_false(kf_window_contains(&s_phone[0], 11 * 60 + 30)); /* end is exclusive */
    assert_false(kf_window_contains(&s_phone[0], 9 * 60 + 59));

    const kf_window_t empty = {600, 600}, all = {0, 1440}, late = {1320, 1440};
    assert_false(kf_window_contains(&empty, 600));
    assert_true(kf_window_contains(&all, 0) && kf_window_contains(&all, 1439));
    assert_true(kf_window_contains(&late, 1439));
    assert_false(kf_window_contains(&late, 0));
    const kf_window_t bad = {-5, 100};
    assert_false(kf_window_valid(&bad));
    assert_false(kf_window_contains(&bad, 50));
}

static void test_parse_and_defaults(void **state)
{
    kf_window_t w = {1, 2};
    assert_int_equal(kf_window_parse("22:00", "08:00", &w), KF_OK);
    assert_int_equal(w.start_min, kf_window_quiet.start_min);
    assert_int_equal(w.end_min, kf_window_quiet.end_min);
    assert_int_equal(w.start_min, 1320);
    assert_int_equal(w.end_min, 480);
    assert_int_equal(kf_window_parse("19:30", "24:00", &w), KF_OK);
    assert_int_equal(w.start_min, 1170);
    assert_int_equal(w.end_min, 1440);
    w = (kf_window_t){1, 2};
    assert_int_equal(kf_window_parse("24:00", "08:00", &w), KF_ERR);
    assert_int_equal(kf_window_parse("8:00", "09:00", &w), KF_ERR);
    assert_int_equal(kf_window_parse("08:00", "09:60", &w), KF_ERR);
    assert_int_equal(kf_window_parse(NULL, "09:00", &w), KF_ERR);
    assert_int_equal(w.start_min, 1); /* untouched on error */

    assert_int_equal(kf_window_working.start_min, 9 * 60);
    assert_int_equal(kf_window_working.end_min, 22 * 60);
    assert_int_equal(kf_window_phone[1].start_min, 15 * 60);
    assert_int_equal(kf_window_phone[2].end_min, 20 * 60 + 30);

    kf_window_t allowed = kf_window_invert(&kf_window_quiet);
    assert_int_equal(allowed.start_min, 480);
    assert_int_equal(allowed.end_min, 1320);
    kf_window_t inv = kf_window_invert(&(kf_window_t){0, 0});
    assert_true(inv.start_min == 0 && inv.end_min == 1440);
    inv = kf_window_invert(&(kf_window_t){1320, 1440});
    assert_true(inv.start_min == 0 && inv.end_min == 1320);
}

static void test_next_open_phone(void **state)
{
    size_t n = KF_ARRAY_LEN(s_phone);
    const char *at_1000 = "2026-11-11T10:00:00+08:00";
    s_assert_time(kf_window_next_open(s_phone, n, s_t("2026-11-11T09:00:00+08:00"), CST), at_1000);
    s_assert_time(kf_window_next_open(s_phone, n, s_t("2026-11-11T10:45:00+08:00"), CST),
                  "2026-11-11T10:45:00+08:00"); /* already inside */
    s_assert_time(kf_window_next_open(s_phone, n, s_t("2026-11-11T11:29:59.999+08:00"), CST),
                  "2026-11-11T11:29:59.999+08:00");
    s_assert_time(kf_window_next_open(s_phone, n, s_t("2026-11-11T11:30:00+08:00"), CST),
                  "2026-11-11T15:00:00+08:00");
    s_assert_time(kf_window_next_open(s_phone, n, s_t("2026-11-11T16:30:00+08:00"), CST),
                  "2026-11-11T19:30:00+08:00");
    /* after the last window: the first one of the next day */
    s_assert_time(kf_window_next_open(s_phone, n, s_t("2026-11-11T20:30:00+08:00"), CST),
                  "2026-11-12T10:00:00+08:00");
    s_assert_time(kf_window_next_open(s_phone, n, s_t("2026-11-11T23:59:59+08:00"), CST),
                  "2026-11-12T10:00:00+08:00");
    /* across the month and year boundary, the windows given in any order */
    const kf_window_t rev[] = {s_phone[2], s_phone[1], s_phone[0]};
    s_assert_time(kf_window_next_open(rev, 3, s_t("2026-12-31T21:00:00+08:00"), CST),
                  "2027-01-01T10:00:00+08:00");
    s_assert_time(kf_window_next_open(rev, 3, s_t("2026-12-31T12:00:00+08:00"), CST),
                  "2026-12-31T15:00:00+08:00");
    /* nothing allowed */
    assert_int_equal(kf_window_next_open(s_phone, 0, s_t(at_1000), CST), -1);
    const kf_window_t empty = {600, 600};
    assert_int_equal(kf_window_next_open(&empty, 1, s_t(at_1000), CST), -1);
}

static void test_next_open_over_midnight(void **state)
{
    const kf_window_t night = {22 * 60, 2 * 60}; /* 22:00-02:00 */
    s_assert_time(kf_window_next_open(&night, 1, s_t("2026-11-11T21:00:00+08:00"), CST),
                  "2026-11-11T22:00:00+08:00");
    s_assert_time(kf_window_next_open(&night, 1, s_t("2026-11-12T01:00:00+08:00"), CST),
                  "2026-11-12T01:00:00+08:00");
    s_assert_time(kf_window_next_open(&night, 1, s_t("2026-11-12T02:00:00+08:00"), CST),
                  "2026-11-12T22:00:00+08:00");
    /* the local day differs from the UTC day: 20:45 local is 12:45Z */
    s_assert_time(kf_window_next_open(s_phone, 3, s_t("2026-11-11T12:45:00Z"), CST),
                  "2026-11-12T02:00:00Z");
}

static void test_next_outside(void **state)
{
    const kf_window_t *q = &kf_window_quiet;
    s_assert_time(kf_window_next_outside(q, s_t("2026-11-11T07:30:00+08:00"), CST),
                  "2026-11-11T08:00:00+08:00");
    s_assert_time(kf_window_next_outside(q, s_t("2026-11-11T22:00:00+08:00"), CST),
                  "2026-11-12T08:00:00+08:00");
    s_assert_time(kf_window_next_outside(q, s_t("2026-11-11T23:59:00+08:00"), CST),
                  "2026-11-12T08:00:00+08:00");
    s_assert_time(kf_window_next_outside(q, s_t("2026-11-11T08:00:00+08:00"), CST),
                  "2026-11-11T08:00:00+08:00");
    s_assert_time(kf_window_next_outside(q, s_t("2026-11-11T21:59:59+08:00"), CST),
                  "2026-11-11T21:59:59+08:00");
    /* the same instant at another offset: 23:30Z is quiet in London, not in New York */
    s_assert_time(kf_window_next_outside(q, s_t("2026-11-10T23:30:00Z"), 0),
                  "2026-11-11T08:00:00Z");
    s_assert_time(kf_window_next_outside(q, s_t("2026-11-10T23:30:00Z"), -300),
                  "2026-11-10T23:30:00Z");
    const kf_window_t all = {0, 1440}, none = {0, 0};
    assert_int_equal(kf_window_next_outside(&all, s_t("2026-11-11T12:00:00Z"), CST), -1);
    s_assert_time(kf_window_next_outside(&none, s_t("2026-11-11T12:00:00Z"), CST),
                  "2026-11-11T12:00:00Z");
}

static void test_hold_utc_input(void **state)
{
    /* 2026-11-10T23:30:00Z is 07:30 at +08:00: quiet, so held to 08:00 local = 00:00Z */
    kf_window_t sms = kf_window_invert(&kf_window_quiet);
    int64_t at = 0, want = s_t("2026-11-10T23:30:00Z");
    assert_int_equal(kf_window_hold(want, 0, &sms, 1, &at, CST), KF_HOLD_LATER);
    s_assert_time(at, "2026-11-11T00:00:00Z");
    /* the deadline itself is still allowed */
    assert_int_equal(kf_window_hold(want, s_t("2026-11-11T00:00:00Z"), &sms, 1, &at, CST),
                     KF_HOLD_LATER);
    s_assert_time(at, "2026-11-11T08:00:00+08:00");
    /* inside the allowed hours: now */
    want = s_t("2026-11-11T02:00:00Z"); /* 10:00 local */
    assert_int_equal(kf_window_hold(want, 0, &sms, 1, &at, CST), KF_HOLD_NOW);
    assert_int_equal(at, want);
    assert_int_equal(kf_window_hold(want, 0, &sms, 1, NULL, CST), KF_HOLD_NOW);
}

static void test_hold_drop_deadline(void **state)
{
    kf_window_t sms = kf_window_invert(&kf_window_quiet);
    int64_t at = 0;
    /* 07:30 local, deadline 07:50: holding to 08:00 passes it */
    int64_t want = s_t("2026-11-11T07:30:00+08:00");
    assert_int_equal(kf_window_hold(want, want + 20 * MIN_MS, &sms, 1, &at, CST), KF_HOLD_DROP);
    s_assert_time(at, "2026-11-11T08:00:00+08:00");
    /* a flash-sale order at 23:10: the 30-minute close passes long before morning */
    want = s_t("2026-11-11T23:10:00+08:00");
    assert_int_equal(kf_window_hold(want, want + 30 * MIN_MS, &sms, 1, &at, CST), KF_HOLD_DROP);
    /* a phone call wanted at 12:00 with a 14:00 deadline: the next window is 15:00 */
    want = s_t("2026-11-11T12:00:00+08:00");
    assert_int_equal(kf_window_hold(want, s_t("2026-11-11T14:00:00+08:00"), s_phone, 3, &at,
                                    CST),
                     KF_HOLD_DROP);
    s_assert_time(at, "2026-11-11T15:00:00+08:00");
    /* the same call with the 72 h deadline is held */
    assert_int_equal(kf_window_hold(want, want + 72 * 60 * MIN_MS, s_phone, 3, &at, CST),
                     KF_HOLD_LATER);
    s_assert_time(at, "2026-11-11T15:00:00+08:00");
    /* already past the deadline even though the time is allowed */
    assert_int_equal(kf_window_hold(want, want - 1, &sms, 1, &at, CST), KF_HOLD_DROP);
    /* no window at all */
    assert_int_equal(kf_window_hold(want, 0, s_phone, 0, &at, CST), KF_HOLD_DROP);
    assert_int_equal(at, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_parse_and_defaults),
        cmocka_unit_test(test_next_open_phone),
        cmocka_unit_test(test_next_open_over_midnight),
        cmocka_unit_test(test_next_outside),
        cmocka_unit_test(test_hold_utc_input),
        cmocka_unit_test(test_hold_drop_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
