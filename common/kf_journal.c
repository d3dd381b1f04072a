/* kf_journal: see kf_journal.h. */
#include "kf_journal.h"

#include <stdlib.h>
#include <string.h>

#include "kf_util.h"

int kf_journal_entry(const redisReply *e, kf_journal_entry_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return KF_ERR;
    char *end = NULL;
    unsigned long long seq = strtoull(e->element[0]->str, &end, 10);
    if (end == e->element[0]->str || !seq)
        return KF_ERR;
    out->seq = seq;
    const redisReply *f = e->element[1];
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        const redisReply *name = f->element[k], *v = f->element[k + 1];
        if (name->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (!strcmp(name->str, "t")) {
            out->topic = v->str;
            out->topic_len = v->len;
        } else if (!strcmp(name->str, "e")) {
            out->bytes = (const uint8_t *)v->str;
            out->len = v->len;
        }
    }
    return KF_OK;
}
