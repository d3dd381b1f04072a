/* Unit tests for kf_journal: XRANGE entries of kefu:journal (a run of events, or one event in
 * the older layout) read into seq, topic and bytes; what is not an entry is refused, a cut
 * or short run is reported, a missing field is NULL. */
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

static redisReply s_bin(const char *s, size_t len)
{
    return (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)s, .len = len};
}

/* An XRANGE element [id, [k1, v1, k2, v2]] made of the caller's replies (changing one of
 * them changes the entry). */
typedef struct {
    redisReply *fv[4], *parts[2];
    redisReply fields, e;
} s_entry_t;

static redisReply *s_entry(s_entry_t *x, redisReply *id, redisReply *k1, redisReply *v1,
                           redisReply *k2, redisReply *v2)
{
    *x = (s_entry_t){.fv = {k1, v1, k2, v2}};
    x->parts[0] = id;
    x->parts[1] = &x->fields;
    x->fields = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 4, .element = x->fv};
    x->e = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 2, .element = x->parts};
    return &x->e;
}

static void test_an_entry_of_one_event(void **state)
{
    redisReply id = s_str("42-0"), k1 = s_str("t"), v1 = s_str("order.paid"), k2 = s_str("e"),
               v2 = s_bin("\x0a\x00z", 3);
    s_entry_t x;
    redisReply *e = s_entry(&x, &id, &k1, &v1, &k2, &v2);
    kf_journal_iter_t it;
    kf_journal_entry_t je;
    assert_int_equal(kf_journal_open(e, &it), KF_OK);
    assert_int_equal(it.first, 42);
    assert_int_equal(it.last, 42);
    assert_int_equal(kf_journal_next(&it, &je), 1);
    assert_int_equal(je.seq, 42);
    assert_int_equal(je.topic_len, 10);
    assert_memory_equal(je.topic, "order.paid", 10);
    assert_int_equal(je.len, 3); /* bytes with a NUL inside, whole */
    assert_memory_equal(je.bytes, "\x0a\x00z", 3);
    assert_int_equal(kf_journal_next(&it, &je), 0);
    x.fields.elements = 2; /* no e */
    assert_int_equal(kf_journal_open(e, &it), KF_OK);
    assert_int_equal(kf_journal_next(&it, &je), 1);
    assert_null(je.bytes);
    assert_non_null(je.topic);
    assert_int_equal(kf_journal_last(e), 42);
}

/* One record of a run: varint topic length, topic, varint envelope length, envelope. */
static size_t s_record(uint8_t *p, const char *topic, const char *env, size_t envlen)
{
    size_t n = kf_varint_put(p, strlen(topic));
    memcpy(p + n, topic, strlen(topic));
    n += strlen(topic);
    n += kf_varint_put(p + n, envlen);
    memcpy(p + n, env, envlen);
    return n + envlen;
}

static void test_an_entry_of_a_run_of_events(void **state)
{
    static uint8_t blob[1024];
    static char big[300];
    memset(big, 'x', sizeof(big)); /* a length of two varint bytes */
    size_t len = s_record(blob, "order.paid", "\x0a\x01" "a", 3);
    len += s_record(blob + len, "logistics.scan", big, sizeof(big));
    len += s_record(blob + len, "sys.clock", "", 0);
    redisReply id = s_str("100-0"), kn = s_str("n"), vn = s_str("3"), kb = s_str("b"),
               vb = s_bin((const char *)blob, len);
    s_entry_t x;
    redisReply *e = s_entry(&x, &id, &kn, &vn, &kb, &vb);
    kf_journal_iter_t it;
    kf_journal_entry_t je;
    assert_int_equal(kf_journal_open(e, &it), KF_OK);
    assert_int_equal(it.first, 100);
    assert_int_equal(it.last, 102);
    assert_int_equal(kf_journal_next(&it, &je), 1);
    assert_int_equal(je.seq, 100);
    assert_int_equal(je.topic_len, 10);
    assert_memory_equal(je.topic, "order.paid", 10);
    assert_int_equal(je.len, 3);
    assert_int_equal(kf_journal_next(&it, &je), 1);
    assert_int_equal(je.seq, 101);
    assert_memory_equal(je.topic, "logistics.scan", 14);
    assert_int_equal(je.len, sizeof(big));
    assert_int_equal(kf_journal_next(&it, &je), 1);
    assert_int_equal(je.seq, 102);
    assert_int_equal(je.len, 0);
    assert_int_equal(kf_journal_next(&it, &je), 0);

    /* n says 4: the fourth is unreadable, and so reported */
    vn = s_str("4");
    assert_int_equal(kf_journal_open(e, &it), KF_OK);
    assert_int_equal(it.last, 103);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kf_journal_next(&it, &je), 1);
    assert_int_equal(kf_journal_next(&it, &je), -1);
    assert_int_equal(je.seq, 103);
    assert_int_equal(kf_journal_next(&it, &je), 0);

    /* cut inside the second record: the second and third are lost */
    vn = s_str("3");
    vb.len = 20;
    assert_int_equal(kf_journal_open(e, &it), KF_OK);
    assert_int_equal(kf_journal_next(&it, &je), 1);
    assert_int_equal(kf_journal_next(&it, &je), -1);
    assert_int_equal(je.seq, 101);
    assert_int_equal(kf_journal_next(&it, &je), 0);

    /* n out of range or not a number: not an entry */
    vb.len = len;
    const char *bad[] = {"0", "257", "-1", "x", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        vn = s_str(bad[i]);
        assert_int_equal(kf_journal_open(e, &it), KF_ERR);
        assert_int_equal(kf_journal_last(e), 0);
    }
}

static void test_not_an_entry(void **state)
{
    kf_journal_iter_t it;
    redisReply id = s_str("x-0"), empty = {.type = REDIS_REPLY_ARRAY};
    redisReply *parts[] = {&id, &empty};
    redisReply e = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = parts};
    assert_int_equal(kf_journal_open(&e, &it), KF_ERR);
    id = s_str("42-0"); /* neither layout's fields */
    assert_int_equal(kf_journal_open(&e, &it), KF_ERR);
    id = s_str("42-1");
    assert_int_equal(kf_journal_open(&e, &it), KF_ERR);
    id = s_str("-42-0");
    assert_int_equal(kf_journal_open(&e, &it), KF_ERR);
    id = s_str("99999999999999999999999-0"); /* out of range */
    assert_int_equal(kf_journal_open(&e, &it), KF_ERR);
    id = s_str("18446744073709551615-0"); /* its run would overflow */
    assert_int_equal(kf_journal_open(&e, &it), KF_ERR);
    redisReply s = s_str("42-0");
    assert_int_equal(kf_journal_open(&s, &it), KF_ERR);
    assert_int_equal(kf_journal_open(NULL, &it), KF_ERR);
    e.elements = 1;
    assert_int_equal(kf_journal_open(&e, &it), KF_ERR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_entry_of_one_event),
        cmocka_unit_test(test_an_entry_of_a_run_of_events),
        cmocka_unit_test(test_not_an_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
