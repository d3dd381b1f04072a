/* kf_journal: the one reader of kefu:journal's entry layout (DESIGN §3.4: the layout is the
 * broker's choice, read only through libkefu).
 *
 * Today an entry is one event: id "<seq>-0", fields t (topic) and e (the envelope as the
 * publisher sent it, with published_at set by the broker). The seq is the entry id's: the
 * stored bytes need not carry it (older journals do; the id wins either way). */
#ifndef KF_JOURNAL_H
#define KF_JOURNAL_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define KF_JOURNAL_KEY "kefu:journal"

typedef struct {
    uint64_t seq;
    const char *topic; /* borrowed from the reply, NUL-terminated; NULL when absent */
    size_t topic_len;
    const uint8_t *bytes; /* the envelope; NULL when absent */
    size_t len;
} kf_journal_entry_t;

/* One element of an XRANGE reply of kefu:journal. KF_ERR when it is not an entry with a
 * "<seq>-0" id (out->seq 0); KF_OK otherwise, topic or bytes NULL when missing. */
int kf_journal_entry(const redisReply *e, kf_journal_entry_t *out);

#endif
