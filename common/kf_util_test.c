/* Unit tests for kf_util: RFC 3339 time text, UTF-8 validation, integer parsing, masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kf_util.h"

/* 2026-11-11T10:00:00+08:00 */
static const int64_t s_t = INT64_C(1794362400000);

static void s_assert_parse(const char *text, int64_t want)
{
    int64_t ms = -1;
    if (kf_time_parse(text, &ms) != KF_OK)
        fail_msg("kf_time_parse(\"%s\") failed", text);
    assert_int_equal(ms, want);
}

static void test_time_format(void **state)
{
    char buf[40];
    assert_int_equal(kf_time_format(s_t, 480, buf, sizeof(buf)), KF_OK);
    assert_string_equal(buf, "2026-11-11T10:00:00+08:00");
    assert_int_equal(kf_time_format(s_t + 123, 0, buf, sizeof(buf)), KF_OK);
    assert_string_equal(buf, "2026-11-11T02:00:00.123+00:00");
    assert_int_equal(kf_time_format(s_t + 7, -330, buf, sizeof(buf)), KF_OK);
    assert_string_equal(buf, "2026-11-10T20:30:00.007-05:30");
    assert_int_equal(kf_time_format(-1, 0, buf, sizeof(buf)), KF_OK);
    assert_string_equal(buf, "1969-12-31T23:59:59.999+00:00");
    /* too small a buffer fails instead of truncating silently */
    assert_int_equal(kf_time_format(s_t, 480, buf, 20), KF_ERR);
}

static void test_time_parse(void **state)
{
    s_assert_parse("2026-11-11T10:00:00+08:00", s_t);
    s_assert_parse("2026-11-11T02:00:00Z", s_t);
    s_assert_parse("2026-11-11t02:00:00z", s_t);
    s_assert_parse("2026-11-11 02:00:00Z", s_t);
    s_assert_parse("2026-11-11T02:00:00.123Z", s_t + 123);
    s_assert_parse("2026-11-11T10:00:00.5+08:00", s_t + 500);
    s_assert_parse("2026-11-11T10:00:00.123456+08:00", s_t + 123);
    s_assert_parse("2026-11-10T20:30:00-05:30", s_t);
    s_assert_parse("2024-02-29T00:00:00Z", INT64_C(1709164800000));
}

static void test_time_round_trip(void **state)
{
    static const int offsets[] = {480, 0, -300, 345, -720, 840};
    static const int64_t deltas[] = {0, 1, 999, 123, 86399999, -86400000 * INT64_C(400)};
    char buf[40];
    for (size_t i = 0; i < KF_ARRAY_LEN(offsets); i++) {
        for (size_t k = 0; k < KF_ARRAY_LEN(deltas); k++) {
            int64_t ms = s_t + deltas[k], back = 0;
            assert_int_equal(kf_time_format(ms, offsets[i], buf, sizeof(buf)), KF_OK);
            if (kf_time_parse(buf, &back) != KF_OK || back != ms)
                fail_msg("round trip of %lld at %+d: '%s' -> %lld", (long long)ms, offsets[i],
                         buf, (long long)back);
        }
    }
}

static void test_time_reject(void **state)
{
    static const char *const bad[] = {
        "2026-02-30T00:00:00Z",      /* no such day */
        "2026-02-29T00:00:00Z",      /* not a leap year */
        "2100-02-29T00:00:00Z",      /* century, not a leap year */
        "2026-11-11T10:00:00",       /* missing offset */
        "2026-11-11",                /* date only */
        "2026-13-01T00:00:00Z",      /* month */
        "2026-00-10T00:00:00Z",      /* month */
        "2026-11-00T00:00:00Z",      /* day */
        "2026-11-11T24:00:00Z",      /* hour */
        "2026-11-11T10:60:00Z",      /* minute */
        "2026-11-11T10:00:00.Z",     /* empty fraction */
        "2026-11-11T10:00:00+0800",  /* offset without colon */
        "2026-11-11T10:00:00+24:00", /* offset hour */
        "2026-11-11T10:00:00Zjunk",  /* trailing garbage */
        "2026-11-11X10:00:00Z",      /* separator */
        "26-11-11T10:00:00Z",        /* short year */
        "",
    };
    int64_t ms = 42;
    for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++)
        if (kf_time_parse(bad[i], &ms) != KF_ERR)
            fail_msg("kf_time_parse accepted \"%s\"", bad[i]);
    assert_int_equal(ms, 42); /* untouched on error */
}

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"你好，世界", true},                   /* 3-byte sequences */
        {"\xc2\xa9 caf\xc3\xa9", true},         /* 2-byte sequences */
        {"\xf0\x9f\x98\x80", true},             /* U+1F600, 4 bytes */
        {"\xf4\x8f\xbf\xbf", true},             /* U+10FFFF, the last code point */
        {"\xed\x9f\xbf", true},                 /* U+D7FF, just below the surrogates */
        {"\xc0\xaf", false},                    /* overlong '/' */
        {"\xc1\xbf", false},                    /* overlong */
        {"\xe0\x80\xaf", false},                /* overlong 3-byte */
        {"\xf0\x80\x80\xaf", false},            /* overlong 4-byte */
        {"\xed\xa0\x80", false},                /* U+D800 surrogate */
        {"\xed\xbf\xbf", false},                /* U+DFFF surrogate */
        {"\xf4\x90\x80\x80", false},            /* U+110000 */
        {"\xf5\x80\x80\x80", false},            /* bad lead byte */
        {"\xe4\xbd", false},                    /* truncated 3-byte */
        {"ok \xe4", false},                     /* truncated at the end */
        {"\xf0\x9f\x98", false},                /* truncated 4-byte */
        {"\x80", false},                        /* lone continuation */
        {"\xe4\x41\xa0", false},                /* non-continuation inside */
        {"\xff", false},
    };
    for (size_t i = 0; i < KF_ARRAY_LEN(cases); i++)
        if (kf_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("kf_utf8_valid case %zu should be %s", i, cases[i].ok ? "valid" : "invalid");
    /* the length bound is respected: a valid prefix of a longer buffer */
    assert_true(kf_utf8_valid("\xe4\xbd\xa0\xe5\xa5\xbd", 3));
    assert_false(kf_utf8_valid("\xe4\xbd\xa0\xe5\xa5\xbd", 4));
    assert_true(kf_utf8_valid("a\0b", 3));
    assert_int_equal(kf_utf8_len("你好 ok"), 5);
}

static void test_parse_ll(void **state)
{
    long long v = 7;
    assert_int_equal(kf_parse_ll("42", 1, 100, &v), KF_OK);
    assert_int_equal(v, 42);
    assert_int_equal(kf_parse_ll("-5", -10, 10, &v), KF_OK);
    assert_int_equal(v, -5);
    static const char *const bad[] = {"", "abc", "12abc", "101", "0", " 5", "5 ", "0x10",
                                      "99999999999999999999"};
    for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++)
        if (kf_parse_ll(bad[i], 1, 100, &v) != KF_ERR)
            fail_msg("kf_parse_ll accepted \"%s\"", bad[i]);
    assert_int_equal(kf_parse_ll(NULL, 1, 100, &v), KF_ERR);
    assert_int_equal(v, -5);
}

static void test_mask(void **state)
{
    char buf[32];
    assert_string_equal(kf_mask_phone("13800001234", buf, sizeof(buf)), "138****1234");
    assert_string_equal(kf_mask_phone("123", buf, sizeof(buf)), "****");
    assert_string_equal(kf_mask_phone("", buf, sizeof(buf)), "");
    assert_string_equal(kf_mask_phone(NULL, buf, sizeof(buf)), "");
    /* a small buffer truncates, never overflows, and never shows the full number */
    kf_mask_phone("13800001234", buf, 6);
    assert_string_equal(buf, "138**");
    assert_string_equal(kf_mask_name("张三丰", buf, sizeof(buf)), "张**");
    assert_string_equal(kf_mask_name("Bob", buf, sizeof(buf)), "B**");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_format),   cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_round_trip), cmocka_unit_test(test_time_reject),
        cmocka_unit_test(test_utf8),          cmocka_unit_test(test_parse_ll),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
