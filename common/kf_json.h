/* kf_json: the flat JSON <-> protobuf mapping of DESIGN §2, written once over protobuf-c
 * descriptors (never per message).
 *
 * One flat object per event: the envelope fields (topic, event_id, shop_id, occurred_at,
 * published_at, seq, source) side by side with the payload's fields. Keys are the proto
 * field names. Time fields (int64 named *_at, *_by, now, not_before, until) are RFC 3339
 * strings with offset on output and RFC 3339 or epoch ms on input. Enums are the lower-case
 * value name without the enum prefix (ORDER_KIND_FLASH_SALE -> "flash_sale"). Nested
 * messages are objects, repeated fields arrays. Unknown keys are errors. On input a missing
 * event_id becomes a UUID v4 and a missing occurred_at becomes kf_wall_ms(). */
#ifndef KF_JSON_H
#define KF_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "kf_proto.h"

/* The UTC offset used for times on output (default 480 = +08:00). */
void kf_json_set_offset(int offset_minutes);

/* Parses text (one JSON object) into a new envelope. topic_hint, when not NULL, is the
 * topic to use when the object has no "topic" key (and must match when it has one).
 * Returns NULL with a clear message in err ("key 'total_fen': expected integer, got string").
 * Free the result with kf_env_free(). The result is not validated beyond types. */
kf_env_t *kf_json_parse_event(const char *text, size_t len, const char *topic_hint, char *err,
                              size_t errlen);
kf_env_t *kf_json_to_event(json_t *obj, const char *topic_hint, char *err, size_t errlen);

/* The JSON name of an enum value ("sms" for CHANNEL_SMS) in buf; NULL when ed has no such value. */
const char *kf_json_enum_name(const ProtobufCEnumDescriptor *ed, int value, char *buf,
                              size_t len);

/* The flat JSON object of an envelope (new reference). */
json_t *kf_json_from_event(const kf_env_t *env);
/* The same as one compact line (malloc'd, no newline). */
char *kf_json_dump_event(const kf_env_t *env);

#endif
