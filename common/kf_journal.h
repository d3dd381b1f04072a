/* kf_journal: the one reader of kefu:journal's entry layout (DESIGN §3.4: the layout is the
 * broker's choice, read only through libkefu).
 *
 * An entry is a run of consecutive events, keyed by the first one's seq: id "<first>-0",
 * fields n (how many, 1..KF_JOURNAL_ENTRY_MAX) and b (the events one after another, each a
 * varint topic length, the topic, a varint envelope length and the envelope as the publisher
 * sent it, with published_at set by the broker). Event k (from 0) has seq first + k. An
 * older journal has one event per entry, fields t (topic) and e (envelope); both are read.
 * The stored envelope need not carry its seq: the entry's position gives it. */
#ifndef KF_JOURNAL_H
#define KF_JOURNAL_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define KF_JOURNAL_KEY "kefu:journal"
#define KF_JOURNAL_ENTRY_MAX 256 /* events per entry, at most */

typedef struct {
    uint64_t seq;
    const char *topic; /* borrowed from the reply, topic_len bytes (not NUL-terminated) */
    size_t topic_len;
    const uint8_t *bytes; /* the envelope, borrowed; NULL when absent */
    size_t len;
} kf_journal_entry_t;

typedef struct {
    uint64_t first, last; /* the seqs the entry holds */
    uint64_t next;        /* the seq kf_journal_next gives next */
    const uint8_t *p, *end; /* the records not read yet (one event per entry: NULL) */
    kf_journal_entry_t one; /* one event per entry: that event */
} kf_journal_iter_t;

/* Opens one element of an XRANGE/XREVRANGE reply of kefu:journal. KF_ERR when it is not an
 * entry (an id that is not "<seq>-0", n outside 1..KF_JOURNAL_ENTRY_MAX, or neither layout's
 * fields); KF_OK with it->first..it->last the seqs it holds. */
int kf_journal_open(const redisReply *e, kf_journal_iter_t *it);

/* The next event of an opened entry: 1 with *out set, 0 when every event was read, -1 when
 * the rest of the entry is unreadable (out->seq: the first event lost; it->last the last). */
int kf_journal_next(kf_journal_iter_t *it, kf_journal_entry_t *out);

/* The last seq an XRANGE/XREVRANGE element holds (0 when it is not an entry). */
uint64_t kf_journal_last(const redisReply *e);

#endif
