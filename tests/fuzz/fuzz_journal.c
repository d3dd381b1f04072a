/* libFuzzer target: an untrusted kefu:journal entry as the workers and kefuctl tail read it
 * (kf_journal). The input is "<id>\n<n>\n<b>" (the batch layout; an empty n gives the
 * older one-event layout with t = "order.paid", e = <b>). An entry that opens must hold at
 * most KF_JOURNAL_ENTRY_MAX seqs; its events must come in seq order from the first, every
 * topic and envelope inside the stored bytes, never more than it holds, and after the end
 * (or an unreadable rest) nothing more. Any violated property aborts. */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kf_journal.h"
#include "kf_util.h"

static void s_check(int ok)
{
    if (!ok)
        abort();
}

static int s_inside(const void *p, size_t len, const char *buf, size_t blen)
{
    const char *q = p;
    return q >= buf && len <= blen && q - buf <= (ptrdiff_t)(blen - len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = kf_xmalloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    char *n = memchr(in, '\n', size), *b = NULL;
    if (n) {
        *n++ = '\0';
        b = memchr(n, '\n', size - (size_t)(n - in));
        if (b)
            *b++ = '\0';
    }
    if (!b) {
        free(in);
        return 0;
    }
    size_t blen = size - (size_t)(b - in);
    int old = *n == '\0';
    redisReply id = {.type = REDIS_REPLY_STRING, .str = in, .len = strlen(in)};
    redisReply k1 = {.type = REDIS_REPLY_STRING, .str = old ? "t" : "n", .len = 1};
    redisReply v1 = {.type = REDIS_REPLY_STRING, .str = old ? "order.paid" : n,
                     .len = old ? 10 : strlen(n)};
    redisReply k2 = {.type = REDIS_REPLY_STRING, .str = old ? "e" : "b", .len = 1};
    redisReply v2 = {.type = REDIS_REPLY_STRING, .str = b, .len = blen};
    redisReply *fv[] = {&k1, &v1, &k2, &v2};
    redisReply fields = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = fv};
    redisReply *parts[] = {&id, &fields};
    redisReply e = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = parts};
    kf_journal_iter_t it;
    if (kf_journal_open(&e, &it) != KF_OK) {
        s_check(kf_journal_last(&e) == 0);
        free(in);
        return 0;
    }
    s_check(it.first >= 1 && it.last >= it.first && it.last - it.first < KF_JOURNAL_ENTRY_MAX);
    s_check(kf_journal_last(&e) == it.last);
    kf_journal_entry_t je;
    uint64_t want = it.first;
    int rc;
    while ((rc = kf_journal_next(&it, &je)) == 1) {
        s_check(je.seq == want++);
        s_check(je.seq <= it.last);
        if (!old) {
            s_check(s_inside(je.topic, je.topic_len, b, blen));
            s_check(s_inside(je.bytes, je.len, b, blen));
        }
    }
    if (rc < 0)
        s_check(je.seq == want && je.seq <= it.last);
    s_check(kf_journal_next(&it, &je) == 0);
    free(in);
    return 0;
}
