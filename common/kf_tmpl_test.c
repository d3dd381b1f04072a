/* Unit tests for kf_tmpl: placeholders, braces, sms length in characters, item shortening
 * on a character boundary, the opt-out suffix, the four elements and the default table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_tmpl.h"
#include "kf_util.h"

#define BUYER "王丽"
#define SHOP "小美家居旗舰店"
#define ITEM "真丝四件套"
#define ORDER_TIME "11月11日09:05"

/* a real-looking Taobao title: 40 characters, all three-byte sequences */
static const char s_long_item[] =
    "正品真丝四件套纯色桑蚕丝床单被套夏季冰丝床上用品婚庆大红色双人床一点八米加厚新款";

static const kf_tmpl_var_t s_vars[] = {
    {"buyer", BUYER},
    {"shop", SHOP},
    {"item", ITEM},
    {"order_time", ORDER_TIME},
    {"review_time", ORDER_TIME},
    {"cutoff", "15"},
    {"deadline", "11月14日09:05"},
    {"carrier", "中通快递"},
    {"tracking_no", "773123456789"},
};

static char *s_render(const char *tmpl, char *err, size_t errlen)
{
    return kf_tmpl_render(tmpl, s_vars, KF_ARRAY_LEN(s_vars), err, errlen);
}

/* a string of n copies of a one-character UTF-8 sequence */
static char *s_repeat(const char *ch, size_t n)
{
    size_t len = strlen(ch);
    char *s = kf_xmalloc(n * len + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, ch, len);
    s[n * len] = '\0';
    return s;
}

static void s_assert_utf8_chars(const char *s, size_t want)
{
    assert_true(kf_utf8_valid(s, strlen(s)));
    assert_int_equal(kf_utf8_len(s), want);
}

static void test_render_all_placeholders(void **state)
{
    char err[128] = "";
    char *out = s_render("{buyer}|{shop}|{item}|{order_time}|{deadline}|{carrier}|{tracking_no}",
                         err, sizeof(err));
    assert_non_null(out);
    assert_string_equal(out, BUYER "|" SHOP "|" ITEM "|" ORDER_TIME
                             "|11月14日09:05|中通快递|773123456789");
    free(out);

    /* any key given; the same placeholder twice; the first of two equal keys wins */
    kf_tmpl_var_t v[] = {{"coupon_fen", "500"}, {"x", "甲"}, {"x", "乙"}};
    out = kf_tmpl_render("送您{coupon_fen}分券{x}{x}", v, KF_ARRAY_LEN(v), err, sizeof(err));
    assert_non_null(out);
    assert_string_equal(out, "送您500分券甲甲");
    free(out);

    out = kf_tmpl_render("", NULL, 0, err, sizeof(err));
    assert_non_null(out);
    assert_string_equal(out, "");
    free(out);
}

static void test_render_errors(void **state)
{
    char err[128] = "";
    assert_null(s_render("{buyer}亲，您的{coupon}到了", err, sizeof(err)));
    assert_non_null(strstr(err, "unknown placeholder {coupon}"));

    assert_null(s_render("亲{buyer", err, sizeof(err)));
    assert_non_null(strstr(err, "unterminated"));
    assert_null(s_render("亲{bu yer}", err, sizeof(err)));
    assert_non_null(strstr(err, "bad placeholder"));
    assert_null(s_render("亲{}", err, sizeof(err)));
    assert_non_null(strstr(err, "empty placeholder"));
    assert_null(s_render("亲}", err, sizeof(err)));
    assert_non_null(strstr(err, "single '}' at byte 3"));

    kf_tmpl_var_t nulls[] = {{"item", NULL}};
    assert_null(kf_tmpl_render("{item}", nulls, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "{item} has no value"));
    kf_tmpl_var_t bad[] = {{"item", "\xE7\x9C"}}; /* a cut three-byte sequence */
    assert_null(kf_tmpl_render("{item}", bad, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "not valid UTF-8"));
    assert_null(kf_tmpl_render("\xFF{item}", bad, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "template is not valid UTF-8"));
    /* no err buffer is fine */
    assert_null(s_render("{nope}", NULL, 0));
}

static void test_render_braces(void **state)
{
    char err[128] = "";
    char *out = s_render("{{buyer}} = {buyer}, }}{{ {{{item}}}", err, sizeof(err));
    assert_non_null(out);
    assert_string_equal(out, "{buyer} = " BUYER ", }{ {" ITEM "}");
    free(out);
}

static void test_utf8_truncate(void **state)
{
    char out[64];
    assert_int_equal(kf_utf8_truncate("真丝四件套", 5, out, sizeof(out)), 5);
    assert_string_equal(out, "真丝四件套");
    assert_int_equal(kf_utf8_truncate("真丝四件套", 4, out, sizeof(out)), 4);
    assert_string_equal(out, "真丝四…");
    assert_int_equal(kf_utf8_truncate("真丝四件套", 1, out, sizeof(out)), 1);
    assert_string_equal(out, "…");
    assert_int_equal(kf_utf8_truncate("真丝四件套", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(kf_utf8_truncate("ab真", 2, out, sizeof(out)), 2);
    assert_string_equal(out, "a…");
    /* a small buffer cuts on a character boundary too: 7 bytes hold "真" + "…" */
    assert_int_equal(kf_utf8_truncate("真丝四件套", 5, out, 7), 2);
    assert_string_equal(out, "真…");
    s_assert_utf8_chars(out, 2);
    assert_int_equal(kf_utf8_truncate("真丝", 5, out, 3), 0);
    assert_string_equal(out, "");
}

static void test_sms_exactly_70(void **state)
{
    /* "{buyer}亲，{pad}" with 2 + 2 + 66 = 70 characters: sent as is */
    char err[128] = "";
    char *pad = s_repeat("好", 66);
    kf_tmpl_var_t v[] = {{"buyer", BUYER}, {"pad", pad}, {"item", ITEM}};
    char *sms = kf_tmpl_sms("{buyer}亲，{pad}", v, 3, false, KF_TMPL_SMS_MAX, err, sizeof(err));
    assert_non_null(sms);
    s_assert_utf8_chars(sms, 70);
    assert_null(strstr(sms, KF_TMPL_ELLIPSIS));
    free(sms);
    free(pad);
}

static void test_sms_71_is_shortened(void **state)
{
    /* 60 fixed characters + a 11-character item = 71: the item loses one character */
    char err[128] = "";
    char *pad = s_repeat("好", 60);
    kf_tmpl_var_t v[] = {{"pad", pad}, {"item", "ABCDEFGHIJK"}};
    char *sms = kf_tmpl_sms("{pad}{item}", v, 2, false, KF_TMPL_SMS_MAX, err, sizeof(err));
    assert_non_null(sms);
    s_assert_utf8_chars(sms, 70);
    assert_non_null(strstr(sms, "ABCDEFGHI…"));
    assert_null(strstr(sms, "ABCDEFGHIJ"));
    free(sms);
    free(pad);
}

static void test_sms_long_chinese_item(void **state)
{
    char err[128] = "";
    assert_int_equal(kf_utf8_len(s_long_item), 40);
    kf_tmpl_var_t v[] = {{"buyer", BUYER},
                         {"shop", SHOP},
                         {"item", s_long_item},
                         {"order_time", ORDER_TIME},
                         {"cutoff", "15"}};
    const char *tmpl = kf_tmpl_default("payment_reminder", "sms", "urgency");
    char *sms = kf_tmpl_sms(tmpl, v, 5, true, KF_TMPL_SMS_MAX, err, sizeof(err));
    assert_non_null(sms);
    s_assert_utf8_chars(sms, 70); /* shortened to the longest item that fits, not less */
    /* the kept part is the title's beginning, cut between characters, then "…" */
    assert_non_null(strstr(sms, "拍下的正品真丝四件套纯色桑蚕丝床单被套夏…还未付款"));
    assert_non_null(strstr(sms, KF_TMPL_OPTOUT));
    assert_true(kf_tmpl_sms_has_elements(sms, BUYER, SHOP, s_long_item, ORDER_TIME));
    free(sms);

    /* {item} twice: both shortened alike, still within the limit */
    sms = kf_tmpl_sms("{item}和{item}", v, 4, false, 20, err, sizeof(err));
    assert_non_null(sms);
    s_assert_utf8_chars(sms, 19);
    assert_string_equal(sms, "正品真丝四件套纯…和正品真丝四件套纯…");
    free(sms);
}

static void test_sms_too_long(void **state)
{
    char err[128] = "";
    char *pad = s_repeat("好", 66);
    /* 66 + 2-character item + 6 suffix = 74: over by 4 even at the shortest item */
    kf_tmpl_var_t v[] = {{"pad", pad}, {"item", s_long_item}};
    assert_null(kf_tmpl_sms("{pad}{item}", v, 2, true, KF_TMPL_SMS_MAX, err, sizeof(err)));
    assert_non_null(strstr(err, "4 characters over the limit of 70"));
    /* no {item} to shorten: 66 + 6 = 72 */
    assert_null(kf_tmpl_sms("{pad}", v, 2, true, KF_TMPL_SMS_MAX, err, sizeof(err)));
    assert_non_null(strstr(err, "2 characters over"));
    /* exactly the shortest item fits: 62 + 2 + 6 = 70 */
    pad[62 * 3] = '\0';
    char *sms = kf_tmpl_sms("{pad}{item}", v, 2, true, KF_TMPL_SMS_MAX, err, sizeof(err));
    assert_non_null(sms);
    s_assert_utf8_chars(sms, 70);
    assert_non_null(strstr(sms, "正…" KF_TMPL_OPTOUT));
    free(sms);
    free(pad);
}

static void test_sms_optout_marketing_only(void **state)
{
    char err[128] = "";
    const char *tmpl = kf_tmpl_default("payment_reminder", "sms", "urgency");
    char *plain = kf_tmpl_sms(tmpl, s_vars, KF_ARRAY_LEN(s_vars), false, KF_TMPL_SMS_MAX, err,
                              sizeof(err));
    char *mkt = kf_tmpl_sms(tmpl, s_vars, KF_ARRAY_LEN(s_vars), true, KF_TMPL_SMS_MAX, err,
                            sizeof(err));
    assert_non_null(plain);
    assert_non_null(mkt);
    assert_null(strstr(plain, KF_TMPL_OPTOUT));
    size_t n = strlen(mkt), k = strlen(KF_TMPL_OPTOUT);
    assert_true(n > k);
    assert_string_equal(mkt + n - k, KF_TMPL_OPTOUT); /* at the very end */
    assert_int_equal(kf_utf8_len(mkt), kf_utf8_len(plain) + 6);
    assert_string_equal(plain, "王丽亲，您在小美家居旗舰店11月11日09:05拍下的真丝四件套还未"
                               "付款，今天15点前付款当天发货哦~");
    free(plain);
    free(mkt);
}

static void test_has_elements(void **state)
{
    const char *sms = "王丽亲，您在小美家居旗舰店11月11日09:05拍下的真丝四件套还未付款~";
    assert_true(kf_tmpl_sms_has_elements(sms, BUYER, SHOP, ITEM, ORDER_TIME));
    assert_true(kf_tmpl_sms_has_elements(sms, BUYER, SHOP, "真丝", ORDER_TIME)); /* a prefix */
    assert_false(kf_tmpl_sms_has_elements(sms, "张三", SHOP, ITEM, ORDER_TIME));
    assert_false(kf_tmpl_sms_has_elements(sms, BUYER, "大美家居", ITEM, ORDER_TIME));
    assert_false(kf_tmpl_sms_has_elements(sms, BUYER, SHOP, "羊毛被", ORDER_TIME));
    assert_false(kf_tmpl_sms_has_elements(sms, BUYER, SHOP, ITEM, "11月12日"));
    assert_false(kf_tmpl_sms_has_elements(sms, BUYER, SHOP, ITEM, ""));
    assert_false(kf_tmpl_sms_has_elements(NULL, BUYER, SHOP, ITEM, ORDER_TIME));
    assert_false(kf_tmpl_sms_has_elements("\xE7王丽", BUYER, SHOP, ITEM, ORDER_TIME));

    /* the buyer's name must end within the first 7 characters */
    assert_false(kf_tmpl_sms_has_elements("您好，亲爱的王丽，小美家居旗舰店11月11日09:05真丝四件套",
                                          BUYER, SHOP, ITEM, ORDER_TIME));
    assert_true(kf_tmpl_sms_has_elements("您好，亲王丽，小美家居旗舰店11月11日09:05真丝四件套",
                                         BUYER, SHOP, ITEM, ORDER_TIME));

    /* a shortened item counts when what is kept is the title's beginning */
    const char *cut = "王丽亲，小美家居旗舰店11月11日09:05的正品真丝…未付款";
    assert_true(kf_tmpl_sms_has_elements(cut, BUYER, SHOP, s_long_item, ORDER_TIME));
    assert_false(kf_tmpl_sms_has_elements(cut, BUYER, SHOP, "羊毛被", ORDER_TIME));
    assert_false(kf_tmpl_sms_has_elements("王丽亲，小美家居旗舰店11月11日09:05…未付款", BUYER,
                                          SHOP, s_long_item, ORDER_TIME));
}

/* every default renders with the usual variables; every sms one keeps the four elements */
static void test_defaults(void **state)
{
    const char *kind, *channel, *technique, *text;
    char err[128] = "";
    size_t n = 0, nsms = 0;
    for (size_t i = 0; kf_tmpl_default_at(i, &kind, &channel, &technique, &text); i++, n++) {
        assert_ptr_equal(kf_tmpl_default(kind, channel, technique), text);
        char *out = s_render(text, err, sizeof(err));
        if (!out)
            fail_msg("%s/%s/%s: %s", kind, channel, technique, err);
        assert_true(kf_utf8_valid(out, strlen(out)));
        free(out);
        if (strcmp(channel, "sms") != 0)
            continue;
        nsms++;
        bool marketing = strcmp(kind, "payment_reminder") == 0;
        char *sms = kf_tmpl_sms(text, s_vars, KF_ARRAY_LEN(s_vars), marketing, KF_TMPL_SMS_MAX,
                                err, sizeof(err));
        if (!sms)
            fail_msg("%s/%s/%s: %s", kind, channel, technique, err);
        if (!kf_tmpl_sms_has_elements(sms, BUYER, SHOP, ITEM, ORDER_TIME) ||
            strstr(sms, KF_TMPL_ELLIPSIS))
            fail_msg("%s/%s/%s lacks an element or was shortened: %s", kind, channel, technique,
                     sms);
        free(sms);
    }
    assert_true(n >= 12);
    assert_true(nsms >= 4);
    static const char *const techs[] = {"urgency", "privilege", "verification", "repeat"};
    static const char *const chans[] = {"im", "sms", "phone"};
    for (size_t t = 0; t < KF_ARRAY_LEN(techs); t++)
        for (size_t c = 0; c < KF_ARRAY_LEN(chans); c++)
            assert_non_null(kf_tmpl_default("payment_reminder", chans[c], techs[t]));
    assert_ptr_equal(kf_tmpl_default("payment_reminder", "sms", NULL),
                     kf_tmpl_default("payment_reminder", "sms", "urgency"));
    assert_null(kf_tmpl_default("payment_reminder", "sms", "bribery"));
    assert_null(kf_tmpl_default("payment_reminder", "fax", "urgency"));
    assert_null(kf_tmpl_default("nope", "sms", NULL));
    assert_non_null(strstr(kf_tmpl_default("payment_reminder", "im", "repeat"), "上次"));
}

/* the default sms keep their elements when a long title has to be shortened */
static void test_defaults_long_item(void **state)
{
    const char *kind, *channel, *technique, *text;
    char err[128] = "";
    kf_tmpl_var_t v[KF_ARRAY_LEN(s_vars)];
    memcpy(v, s_vars, sizeof(v));
    v[2].value = s_long_item;
    for (size_t i = 0; kf_tmpl_default_at(i, &kind, &channel, &technique, &text); i++) {
        if (strcmp(channel, "sms") != 0)
            continue;
        bool marketing = strcmp(kind, "payment_reminder") == 0;
        char *sms = kf_tmpl_sms(text, v, KF_ARRAY_LEN(v), marketing, KF_TMPL_SMS_MAX, err,
                                sizeof(err));
        if (!sms)
            fail_msg("%s/%s: %s", kind, technique, err);
        assert_true(kf_utf8_valid(sms, strlen(sms)));
        assert_true(kf_utf8_len(sms) <= KF_TMPL_SMS_MAX);
        assert_non_null(strstr(sms, KF_TMPL_ELLIPSIS));
        assert_true(kf_tmpl_sms_has_elements(sms, BUYER, SHOP, s_long_item, ORDER_TIME));
        free(sms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_all_placeholders),
        cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_render_braces),
        cmocka_unit_test(test_utf8_truncate),
        cmocka_unit_test(test_sms_exactly_70),
        cmocka_unit_test(test_sms_71_is_shortened),
        cmocka_unit_test(test_sms_long_chinese_item),
        cmocka_unit_test(test_sms_too_long),
        cmocka_unit_test(test_sms_optout_marketing_only),
        cmocka_unit_test(test_has_elements),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_long_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
