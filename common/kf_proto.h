/* kf_proto: the contract helpers over the generated kefu.pb-c.h: topic <-> payload,
 * decoding with limits, and validation of an envelope (DESIGN §2, §3.2). */
#ifndef KF_PROTO_H
#define KF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kefu.pb-c.h"

typedef Kefu__V1__Envelope kf_env_t;

/* The payload field of the envelope for a topic ("order.paid" -> field "order_paid"),
 * or NULL for an unknown topic. */
const ProtobufCFieldDescriptor *kf_proto_topic_field(const char *topic);
/* The topic of a payload case ("order_paid" -> "order.paid"), written into buf. */
const char *kf_proto_case_topic(Kefu__V1__Envelope__PayloadCase c, char *buf, size_t len);
/* Every topic of the contract, NULL-terminated. */
extern const char *const kf_proto_topics[];
/* true for topics that daemons emit (action.*, sys.heartbeat): not journaled. */
bool kf_proto_topic_is_out(const char *topic);

/* Reject reasons, counted by the broker, named in replies and /stats. */
typedef enum {
    KF_REJ_NONE = 0,
    KF_REJ_FRAMES,         /* wrong frame count */
    KF_REJ_OVERSIZED,      /* over the size limit */
    KF_REJ_MALFORMED,      /* not a decodable Envelope */
    KF_REJ_UNKNOWN_TOPIC,  /* topic not in the contract */
    KF_REJ_TOPIC_MISMATCH, /* topic frame, envelope topic and payload disagree */
    KF_REJ_MISSING_FIELD,  /* a required field is absent */
    KF_REJ_INVALID_FIELD,  /* a value out of range (negative money, bad code...) */
    KF_REJ_INVALID_UTF8,   /* a string that is not UTF-8 */
    KF_REJ_BAD_JSON,       /* HTTP ingest: JSON that does not map to an event */
    KF_REJ__COUNT
} kf_reject_t;

const char *kf_reject_name(kf_reject_t r);

#define KF_EVENT_ID_PEEK_MAX 256 /* bytes kf_proto_peek_event_id copies at most, with the NUL */

/* The event_id of an envelope that may not decode or validate (so that an answer can name
 * the event it rejects): the last top-level field 1 read before the end or before the first
 * bytes that are not protobuf, copied into out when it is printable UTF-8 without spaces of
 * at most outlen - 1 bytes; false when there is none such. Reads only data[0..len). */
bool kf_proto_peek_event_id(const void *data, size_t len, char *out, size_t outlen);

/* Decodes and validates one envelope. frame_topic may be NULL (HTTP ingest).
 * Returns the envelope (free with kf_env_free) or NULL with *why and a detail in err. */
kf_env_t *kf_proto_decode(const void *data, size_t len, const char *frame_topic, size_t max_size,
                          kf_reject_t *why, char *err, size_t errlen);
/* Validates a decoded envelope (also used for JSON input). */
kf_reject_t kf_proto_validate(const kf_env_t *env, const char *frame_topic, char *err,
                              size_t errlen);
void kf_env_free(kf_env_t *env);
/* The seq of an encoded envelope without decoding it: the last top-level field 6 (the broker
 * appends it to the bytes it journals). 0 when absent or when the bytes are malformed. */
uint64_t kf_proto_peek_seq(const void *data, size_t len);
/* Packs into a malloc'd buffer; *len gets the size. */
uint8_t *kf_env_pack(const kf_env_t *env, size_t *len);

#endif
