/* kefu-dispatch: the retry schedule, Retry-After, stream entries and the state JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"
#include "kf_util.h"

static void test_schedule(void **state)
{
    int64_t s[DISPATCH_MAX_SCHEDULE];
    size_t n;
    char err[256];
    assert_int_equal(dispatch_parse_schedule("0,5s,5m,30m,2h,5h,10h,10h", s, 16, &n, err,
                                             sizeof(err)), KF_OK);
    assert_int_equal(n, 8);
    assert_int_equal(s[0], 0);
    assert_int_equal(s[1], 5000);
    assert_int_equal(s[2], 300000);
    assert_int_equal(s[4], 7200000);
    assert_int_equal(s[7], 36000000);
    assert_int_equal(dispatch_parse_schedule("0, 200ms ,1d", s, 16, &n, err, sizeof(err)), KF_OK);
    assert_int_equal(n, 3);
    assert_int_equal(s[1], 200);
    assert_int_equal(s[2], 86400000);
    assert_int_equal(dispatch_parse_schedule("7", s, 16, &n, err, sizeof(err)), KF_OK);
    assert_int_equal(s[0], 7000); /* bare numbers are seconds */
    assert_int_equal(dispatch_parse_schedule("", s, 16, &n, err, sizeof(err)), KF_ERR);
    assert_int_equal(dispatch_parse_schedule("0,5x", s, 16, &n, err, sizeof(err)), KF_ERR);
    assert_non_null(strstr(err, "bad unit"));
    assert_int_equal(dispatch_parse_schedule("0,-5s", s, 16, &n, err, sizeof(err)), KF_ERR);
    assert_int_equal(dispatch_parse_schedule("31d", s, 16, &n, err, sizeof(err)), KF_ERR);
    assert_int_equal(dispatch_parse_schedule("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", s, 16,
                                             &n, err, sizeof(err)), KF_ERR);
}

static void test_retry_after(void **state)
{
    int64_t now = INT64_C(784111777000); /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(dispatch_parse_retry_after(" 120\r\n", now), 120000);
    assert_int_equal(dispatch_parse_retry_after("0", now), 0);
    assert_int_equal(dispatch_parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT\r\n", now), 60000);
    assert_int_equal(dispatch_parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);
    assert_int_equal(dispatch_parse_retry_after("soon", now), -1);
    assert_int_equal(dispatch_parse_retry_after("99999999", now), -1);
    assert_int_equal(dispatch_parse_retry_after(NULL, now), -1);
}

static item_t *s_item(const char *j, const char *x)
{
    char *fv[8] = {"t", "action.contact", "id", "a-1", "j", (char *)j, "x", (char *)x};
    size_t fl[8];
    for (int i = 0; i < 8; i++)
        fl[i] = fv[i] ? strlen(fv[i]) : 0;
    char err[256];
    return dispatch_item_new("1794362400000-0", fv, fl, x ? 8 : 6, err, sizeof(err));
}

static void test_item(void **state)
{
    item_t *it = s_item("{\"topic\":\"action.contact\",\"event_id\":\"a-1\",\"action_id\":\"a-1\","
                        "\"shop_id\":\"s1\",\"buyer_id\":\"b9\",\"channel\":\"sms\","
                        "\"occurred_at\":1794362400000,\"not_before\":1794362400000}",
                        "1794366000000");
    assert_non_null(it);
    assert_string_equal(it->shop, "s1");
    assert_string_equal(it->buyer, "b9");
    assert_string_equal(it->channel, "sms");
    assert_int_equal(it->x, INT64_C(1794366000000));
    char err[256];
    assert_int_equal(dispatch_item_body(it, 480, err, sizeof(err)), KF_OK);
    assert_non_null(strstr(it->body, "\"not_before\":\"2026-11-11T10:00:00+08:00\""));
    dispatch_item_log(it, 1, 500, 12, "oops");
    it->n = 1, it->code = 500, it->next = 99;
    char *s = dispatch_item_state(it, "http://h/x");
    item_t *back = s_item("{\"shop_id\":\"s1\"}", NULL);
    assert_string_equal(dispatch_item_restore(back, s, strlen(s)), "pending");
    assert_int_equal(back->n, 1);
    assert_int_equal(back->code, 500);
    assert_int_equal(back->next, 99);
    assert_int_equal(json_array_size(back->log), 1);
    for (int i = 0; i < 15; i++)
        dispatch_item_log(back, i, 500, 1, "\xe4\xb8\xad");
    assert_int_equal(json_array_size(back->log), DISPATCH_LOG_MAX);
    assert_null(dispatch_item_restore(back, "{\"s\":\"what\"}", 12));
    assert_null(dispatch_item_restore(back, "not json", 8));
    free(s);
    char key[40];
    dispatch_state_key(it->sid, key, sizeof(key));
    assert_string_equal(key, "kefu:dlv:20261111");
    dispatch_item_free(it);
    dispatch_item_free(back);
    assert_null(s_item("[1,2]", NULL));
    assert_null(s_item("{\"buyer_id\":\"b\"}", NULL)); /* no shop */
    char *bad[6] = {"t", "order.paid", "id", "x", "j", "{}"};
    size_t bl[6] = {1, 10, 2, 1, 1, 2};
    assert_null(dispatch_item_new("1-0", bad, bl, 6, err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
