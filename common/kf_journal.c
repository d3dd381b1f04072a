/* kf_journal: see kf_journal.h. */
#include "kf_journal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kf_util.h"

static bool s_is(const redisReply *r, const char *name)
{
    return r->type == REDIS_REPLY_STRING && r->len == strlen(name) && !memcmp(r->str, name, r->len);
}

int kf_journal_open(const redisReply *e, kf_journal_iter_t *it)
{
    memset(it, 0, sizeof(*it));
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return KF_ERR;
    const char *id = e->element[0]->str;
    char *end = NULL;
    errno = 0;
    unsigned long long seq = strtoull(id, &end, 10);
    if (end == id || *id < '0' || *id > '9' || !seq || strcmp(end, "-0") || errno ||
        seq > UINT64_MAX - KF_JOURNAL_ENTRY_MAX)
        return KF_ERR;
    const redisReply *f = e->element[1];
    const redisReply *n = NULL, *b = NULL, *t = NULL, *env = NULL;
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        const redisReply *name = f->element[k], *v = f->element[k + 1];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        if (s_is(name, "n"))
            n = v;
        else if (s_is(name, "b"))
            b = v;
        else if (s_is(name, "t"))
            t = v;
        else if (s_is(name, "e"))
            env = v;
    }
    it->first = it->next = seq;
    if (n && b) {
        long long count;
        if (kf_parse_ll(n->str, 1, KF_JOURNAL_ENTRY_MAX, &count) != KF_OK)
            return KF_ERR;
        it->last = seq + (uint64_t)count - 1;
        it->p = (const uint8_t *)b->str;
        it->end = it->p + b->len;
        return KF_OK;
    }
    if (!t && !env)
        return KF_ERR;
    it->last = seq;
    it->one.seq = seq;
    if (t) {
        it->one.topic = t->str;
        it->one.topic_len = t->len;
    }
    if (env) {
        it->one.bytes = (const uint8_t *)env->str;
        it->one.len = env->len;
    }
    return KF_OK;
}

int kf_journal_next(kf_journal_iter_t *it, kf_journal_entry_t *out)
{
    memset(out, 0, sizeof(*out));
    if (it->next > it->last)
        return 0;
    out->seq = it->next;
    if (!it->p) {
        *out = it->one;
        it->next++;
        return 1;
    }
    uint64_t tl, el;
    const uint8_t *p = it->p;
    if (kf_varint_get(&p, it->end, &tl) != KF_OK || tl > (uint64_t)(it->end - p))
        goto bad;
    const uint8_t *topic = p;
    p += tl;
    if (kf_varint_get(&p, it->end, &el) != KF_OK || el > (uint64_t)(it->end - p))
        goto bad;
    out->topic = (const char *)topic;
    out->topic_len = (size_t)tl;
    out->bytes = p;
    out->len = (size_t)el;
    it->p = p + el;
    it->next++;
    return 1;
bad:
    it->next = it->last + 1; /* the rest is lost */
    it->p = it->end;
    return -1;
}

uint64_t kf_journal_last(const redisReply *e)
{
    kf_journal_iter_t it;
    return kf_journal_open(e, &it) == KF_OK ? it.last : 0;
}
