/* kf_stats: the Prometheus text a scraper reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kf_stats.h"

static void test_family_and_samples(void **state)
{
    kf_text_t t = {0};
    kf_stats_family(&t, "kefu_x_total", "counter", "things");
    const char *labels[] = {"topic", "order.paid", "reason", "bad_json", NULL};
    kf_stats_sample_u64(&t, "kefu_x_total", labels, 42);
    kf_stats_sample(&t, "kefu_y", NULL, 1.5);
    char *s = kf_text_take(&t);
    assert_string_equal(s, "# HELP kefu_x_total things\n# TYPE kefu_x_total counter\n"
                           "kefu_x_total{topic=\"order.paid\",reason=\"bad_json\"} 42\n"
                           "kefu_y 1.5\n");
    free(s);
    assert_null(t.buf);
}

static void test_label_values_from_the_network_are_escaped(void **state)
{
    kf_text_t t = {0};
    const char *labels[] = {"daemon", "evil\"}\nkefu_fake 1\\", NULL};
    kf_stats_sample_u64(&t, "kefu_fleet_up", labels, 1);
    char *s = kf_text_take(&t);
    assert_string_equal(s, "kefu_fleet_up{daemon=\"evil\\\"}\\nkefu_fake 1\\\\\"} 1\n");
    assert_null(strchr(s, '\n') == s + strlen(s) - 1 ? NULL : "one line only");
    free(s);
}

static void test_long_text_grows(void **state)
{
    kf_text_t t = {0};
    for (int i = 0; i < 10000; i++)
        kf_text_printf(&t, "line %d\n", i);
    char *s = kf_text_take(&t);
    assert_non_null(strstr(s, "line 9999\n"));
    assert_int_equal(strncmp(s, "line 0\nline 1\n", 14), 0);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_samples),
        cmocka_unit_test(test_label_values_from_the_network_are_escaped),
        cmocka_unit_test(test_long_text_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
