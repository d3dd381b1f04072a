/* Unit tests for kf_journal: an XRANGE entry of kefu:journal read into seq, topic and bytes;
 * what is not an entry is refused, a missing field is NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kf_journal.h"
#include "kf_util.h"

static redisReply s_str(const char *s)
{
    return (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s)};
}

static void test_an_entry(void **state)
{
    redisReply id = s_str("42-0"), k1 = s_str("t"), v1 = s_str("order.paid"), k2 = s_str("e"),
               v2 = {.type = REDIS_REPLY_STRING, .str = "\x0a\x00z", .len = 3};
    redisReply *fv[] = {&k1, &v1, &k2, &v2};
    redisReply fields = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = fv};
    redisReply *parts[] = {&id, &fields};
    redisReply e = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = parts};
    kf_journal_entry_t je;
    assert_int_equal(kf_journal_entry(&e, &je), KF_OK);
    assert_int_equal(je.seq, 42);
    assert_string_equal(je.topic, "order.paid");
    assert_int_equal(je.len, 3); /* bytes with a NUL inside, whole */
    assert_memory_equal(je.bytes, "\x0a\x00z", 3);
    fields.elements = 2; /* no e */
    assert_int_equal(kf_journal_entry(&e, &je), KF_OK);
    assert_null(je.bytes);
    assert_non_null(je.topic);
}

static void test_not_an_entry(void **state)
{
    kf_journal_entry_t je;
    redisReply id = s_str("x-0"), empty = {.type = REDIS_REPLY_ARRAY};
    redisReply *parts[] = {&id, &empty};
    redisReply e = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = parts};
    assert_int_equal(kf_journal_entry(&e, &je), KF_ERR);
    assert_int_equal(je.seq, 0);
    redisReply s = s_str("42-0");
    assert_int_equal(kf_journal_entry(&s, &je), KF_ERR);
    assert_int_equal(kf_journal_entry(NULL, &je), KF_ERR);
    e.elements = 1;
    assert_int_equal(kf_journal_entry(&e, &je), KF_ERR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_entry),
        cmocka_unit_test(test_not_an_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
