/* kf_proto: see kf_proto.h. */
#include "kf_proto.h"

#include <stdio.h>
#include <string.h>

#include "kf_util.h"

const char *const kf_proto_topics[] = {
    "shop.config", "order.created", "order.paid", "order.closed", "order.confirmed",
    "order.shipped", "logistics.scan", "logistics.area_delay", "review.posted",
    "review.modified", "review.deleted", "case.updated", "buyer.profile", "buyer.optout",
    "campaign.launch", "sys.clock", "action.contact", "action.task", "action.alert",
    "sys.heartbeat", NULL,
};

static const char *const s_reject_names[KF_REJ__COUNT] = {
    [KF_REJ_NONE] = "none",
    [KF_REJ_FRAMES] = "frames",
    [KF_REJ_OVERSIZED] = "oversized",
    [KF_REJ_MALFORMED] = "malformed",
    [KF_REJ_UNKNOWN_TOPIC] = "unknown_topic",
    [KF_REJ_TOPIC_MISMATCH] = "topic_mismatch",
    [KF_REJ_MISSING_FIELD] = "missing_field",
    [KF_REJ_INVALID_FIELD] = "invalid_field",
    [KF_REJ_INVALID_UTF8] = "invalid_utf8",
    [KF_REJ_BAD_JSON] = "bad_json",
};

const char *kf_reject_name(kf_reject_t r)
{
    return (r >= 0 && r < KF_REJ__COUNT) ? s_reject_names[r] : "unknown";
}

/* A topic as it may be shown in a reply or a log: printable ASCII only, else a placeholder. */
static const char *s_show_topic(const char *topic, char *buf, size_t len)
{
    size_t n = 0;
    for (; topic[n] && n + 1 < len && n < 64; n++) {
        unsigned char c = (unsigned char)topic[n];
        if (c < 0x20 || c > 0x7e)
            return "(not a printable topic name)";
        buf[n] = (char)c;
    }
    buf[n] = '\0';
    return buf;
}

/* "order.paid" -> "order_paid": the first dot becomes an underscore. */
const ProtobufCFieldDescriptor *kf_proto_topic_field(const char *topic)
{
    char name[64];
    size_t n = strlen(topic);
    if (n == 0 || n >= sizeof(name))
        return NULL;
    const char *dot = strchr(topic, '.');
    if (!dot || strchr(dot + 1, '.') || strchr(topic, '_') == topic)
        return NULL;
    memcpy(name, topic, n + 1);
    name[dot - topic] = '_';
    if (strchr(name, '_') != name + (dot - topic))
        return NULL; /* "a_b.c" must not alias "a.b_c" */
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&kefu__v1__envelope__descriptor, name);
    if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return NULL;
    return f;
}

const char *kf_proto_case_topic(Kefu__V1__Envelope__PayloadCase c, char *buf, size_t len)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&kefu__v1__envelope__descriptor, (unsigned)c);
    if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || strlen(f->name) >= len)
        return NULL;
    strcpy(buf, f->name);
    char *u = strchr(buf, '_');
    if (u)
        *u = '.';
    return buf;
}

bool kf_proto_topic_is_out(const char *topic)
{
    return strncmp(topic, "action.", 7) == 0 || strcmp(topic, "sys.heartbeat") == 0;
}

/* ------------------------------------------------------------------ validation */

/* Fields that must be present, per topic, as dotted paths into the payload. */
typedef struct {
    const char *topic;
    const char *fields[4];
} s_required_t;

static const s_required_t s_required[] = {
    {"order.created", {"order_id", "buyer.buyer_id", "total_fen"}},
    {"order.paid", {"order_id"}},
    {"order.closed", {"order_id"}},
    {"order.confirmed", {"order_id"}},
    {"order.shipped", {"order_id", "tracking_no"}},
    {"logistics.scan", {"tracking_no", "state"}},
    {"logistics.area_delay", {"cities", "until"}},
    {"review.posted", {"review_id", "order_id", "rating"}},
    {"review.modified", {"review_id", "rating"}},
    {"review.deleted", {"review_id"}},
    {"case.updated", {"case_id", "status"}},
    {"buyer.profile", {"buyer_id"}},
    {"buyer.optout", {"buyer_id", "channels"}},
    {"campaign.launch", {"campaign_id"}},
    {"sys.clock", {"now"}},
    {"action.contact", {"action_id", "channel", "reason"}},
    {"action.task", {"task_id", "kind"}},
    {"action.alert", {"alert_id", "kind"}},
    {"sys.heartbeat", {"daemon"}},
};


static bool s_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    /* oneof members share one union slot: only the member named by the case is present */
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        return false;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)(base + f->offset);
        return s && *s;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)(base + f->offset) != NULL;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    return true;
}

static bool s_path_present(const ProtobufCMessage *m, const char *path)
{
    char part[64];
    while (m) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(part))
            return false;
        memcpy(part, path, n);
        part[n] = '\0';
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(m->descriptor, part);
        if (!f || !s_present(m, f))
            return false;
        if (!dot)
            return true;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
            return false;
        m = *(ProtobufCMessage *const *)((const char *)m + f->offset);
        path = dot + 1;
    }
    return false;
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static kf_reject_t s_check_value(const ProtobufCFieldDescriptor *f, const void *p, char *err,
                                 size_t errlen)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        if (s && !kf_utf8_valid(s, strlen(s))) {
            snprintf(err, errlen, "field '%s' is not valid UTF-8", f->name);
            return KF_REJ_INVALID_UTF8;
        }
        if (s && *s && (strcmp(f->name, "url") == 0 || strcmp(f->name, "webhook_url") == 0) &&
            ((strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) ||
             strlen(s) > 2048 || strpbrk(s, " \t\r\n"))) {
            snprintf(err, errlen, "field '%s' must be an http:// or https:// URL", f->name);
            return KF_REJ_INVALID_FIELD;
        }
        break;
    }
    case PROTOBUF_C_TYPE_INT64: {
        int64_t v = *(const int64_t *)p;
        if (v < 0 && (s_ends_with(f->name, "_fen") || s_ends_with(f->name, "_at") ||
                      s_ends_with(f->name, "_by") || strcmp(f->name, "now") == 0 ||
                      strcmp(f->name, "at") == 0 || strcmp(f->name, "not_before") == 0 ||
                      strcmp(f->name, "until") == 0)) {
            snprintf(err, errlen, "field '%s' must not be negative (got %lld)", f->name,
                     (long long)v);
            return KF_REJ_INVALID_FIELD;
        }
        break;
    }
    case PROTOBUF_C_TYPE_INT32: {
        int32_t v = *(const int32_t *)p;
        if (strcmp(f->name, "qty") == 0 && v <= 0) {
            snprintf(err, errlen, "field 'qty' must be positive (got %d)", v);
            return KF_REJ_INVALID_FIELD;
        }
        if ((strcmp(f->name, "utc_offset_minutes") == 0 && (v < -840 || v > 840)) ||
            (strcmp(f->name, "ship_cutoff_hour") == 0 && (v < 0 || v > 23)) ||
            ((s_ends_with(f->name, "_cap") || s_ends_with(f->name, "_hours")) && v < 0) ||
            (strcmp(f->name, "minutes") == 0 && v <= 0)) {
            snprintf(err, errlen, "field '%s' out of range (got %d)", f->name, v);
            return KF_REJ_INVALID_FIELD;
        }
        break;
    }
    default:
        break;
    }
    return KF_REJ_NONE;
}

static kf_reject_t s_check_message(const ProtobufCMessage *m, int depth, char *err,
                                   size_t errlen);

static kf_reject_t s_check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                                 int depth, char *err, size_t errlen)
{
    const char *base = (const char *)m;
    if (!s_present(m, f))
        return KF_REJ_NONE;
    size_t count = 1;
    const char *elems = base + f->offset;
    size_t esize = 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        count = *(const size_t *)(base + f->quantifier_offset);
        elems = *(char *const *)(base + f->offset);
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE: esize = sizeof(void *); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        esize = 8; break;
    case PROTOBUF_C_TYPE_BOOL: esize = sizeof(protobuf_c_boolean); break;
    case PROTOBUF_C_TYPE_BYTES: esize = sizeof(ProtobufCBinaryData); break;
    default: esize = 4; break;
    }
    for (size_t i = 0; i < count; i++) {
        const void *p = elems + i * esize;
        kf_reject_t r;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            r = s_check_message(*(ProtobufCMessage *const *)p, depth + 1, err, errlen);
        else
            r = s_check_value(f, p, err, errlen);
        if (r != KF_REJ_NONE)
            return r;
    }
    return KF_REJ_NONE;
}

static kf_reject_t s_check_message(const ProtobufCMessage *m, int depth, char *err,
                                   size_t errlen)
{
    if (!m || depth > 8)
        return KF_REJ_NONE;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        kf_reject_t r = s_check_field(m, &d->fields[i], depth, err, errlen);
        if (r != KF_REJ_NONE)
            return r;
    }
    return KF_REJ_NONE;
}

/* kuaidi100 state codes of DOMAIN.md §2: the TrackState enum of the contract. */
static bool s_scan_code_known(int code)
{
    return protobuf_c_enum_descriptor_get_value(&kefu__v1__track_state__descriptor, code) != NULL;
}

static kf_reject_t s_check_required(const kf_env_t *env, const ProtobufCMessage *payload,
                                    char *err, size_t errlen)
{
    if (!env->event_id || !*env->event_id) {
        snprintf(err, errlen, "missing field 'event_id'");
        return KF_REJ_MISSING_FIELD;
    }
    if (strncmp(env->topic, "sys.", 4) != 0 && (!env->shop_id || !*env->shop_id)) {
        snprintf(err, errlen, "missing field 'shop_id'");
        return KF_REJ_MISSING_FIELD;
    }
    for (size_t i = 0; i < KF_ARRAY_LEN(s_required); i++) {
        if (strcmp(s_required[i].topic, env->topic) != 0)
            continue;
        for (size_t k = 0; k < 4 && s_required[i].fields[k]; k++) {
            if (!s_path_present(payload, s_required[i].fields[k])) {
                snprintf(err, errlen, "missing field '%s'", s_required[i].fields[k]);
                return KF_REJ_MISSING_FIELD;
            }
        }
    }
    return KF_REJ_NONE;
}

kf_reject_t kf_proto_validate(const kf_env_t *env, const char *frame_topic, char *err,
                              size_t errlen)
{
    if (!env->topic || !*env->topic) {
        snprintf(err, errlen, "missing field 'topic'");
        return KF_REJ_MISSING_FIELD;
    }
    char shown[72];
    if (!kf_utf8_valid(env->topic, strlen(env->topic)) || !kf_proto_topic_field(env->topic)) {
        snprintf(err, errlen, "unknown topic '%s'", s_show_topic(env->topic, shown, sizeof(shown)));
        return KF_REJ_UNKNOWN_TOPIC;
    }
    if (frame_topic && strcmp(frame_topic, env->topic) != 0) {
        snprintf(err, errlen, "topic frame '%s' differs from envelope topic '%s'",
                 s_show_topic(frame_topic, shown, sizeof(shown)), env->topic);
        return KF_REJ_TOPIC_MISMATCH;
    }
    const ProtobufCFieldDescriptor *pf = kf_proto_topic_field(env->topic);
    if (env->payload_case == KEFU__V1__ENVELOPE__PAYLOAD__NOT_SET) {
        snprintf(err, errlen, "missing payload for topic '%s'", env->topic);
        return KF_REJ_MISSING_FIELD;
    }
    if ((unsigned)env->payload_case != pf->id) {
        snprintf(err, errlen, "payload does not match topic '%s'", env->topic);
        return KF_REJ_TOPIC_MISMATCH;
    }
    kf_reject_t r = s_check_message(&env->base, 0, err, errlen);
    if (r != KF_REJ_NONE)
        return r;
    const ProtobufCMessage *payload = *(ProtobufCMessage *const *)((const char *)env + pf->offset);
    r = s_check_required(env, payload, err, errlen);
    if (r != KF_REJ_NONE)
        return r;
    if (env->payload_case == KEFU__V1__ENVELOPE__PAYLOAD_LOGISTICS_SCAN &&
        !s_scan_code_known(env->logistics_scan->state)) {
        snprintf(err, errlen, "field 'state': unknown tracking state code %d",
                 env->logistics_scan->state);
        return KF_REJ_INVALID_FIELD;
    }
    return KF_REJ_NONE;
}

kf_env_t *kf_proto_decode(const void *data, size_t len, const char *frame_topic, size_t max_size,
                          kf_reject_t *why, char *err, size_t errlen)
{
    if (max_size && len > max_size) {
        snprintf(err, errlen, "message of %zu bytes is over the %zu-byte limit", len, max_size);
        *why = KF_REJ_OVERSIZED;
        return NULL;
    }
    if (frame_topic && !kf_proto_topic_field(frame_topic)) {
        char shown[72];
        snprintf(err, errlen, "unknown topic '%s'", s_show_topic(frame_topic, shown, sizeof(shown)));
        *why = KF_REJ_UNKNOWN_TOPIC;
        return NULL;
    }
    kf_env_t *env = kefu__v1__envelope__unpack(NULL, len, data);
    if (!env) {
        snprintf(err, errlen, "not a decodable kefu.v1.Envelope (%zu bytes)", len);
        *why = KF_REJ_MALFORMED;
        return NULL;
    }
    *why = kf_proto_validate(env, frame_topic, err, errlen);
    if (*why != KF_REJ_NONE) {
        kf_env_free(env);
        return NULL;
    }
    return env;
}

void kf_env_free(kf_env_t *env)
{
    if (env)
        kefu__v1__envelope__free_unpacked(env, NULL);
}

uint8_t *kf_env_pack(const kf_env_t *env, size_t *len)
{
    size_t n = kefu__v1__envelope__get_packed_size(env);
    uint8_t *buf = kf_xmalloc(n);
    *len = kefu__v1__envelope__pack(env, buf);
    return buf;
}

/* Walks the top-level fields only: no allocation, no decoding of the payload. */
uint64_t kf_proto_peek_seq(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t seq = 0;
    size_t i = 0;
    while (i < len) {
        uint64_t key = 0, v = 0;
        for (int sh = 0; i < len && sh < 64; sh += 7) {
            key |= (uint64_t)(p[i] & 0x7f) << sh;
            if (!(p[i++] & 0x80))
                break;
        }
        switch (key & 7) {
        case 0:
            for (int sh = 0; i < len && sh < 64; sh += 7) {
                v |= (uint64_t)(p[i] & 0x7f) << sh;
                if (!(p[i++] & 0x80))
                    break;
            }
            if (key >> 3 == 6)
                seq = v;
            break;
        case 1: i += 8; break;
        case 5: i += 4; break;
        case 2:
            for (int sh = 0; i < len && sh < 64; sh += 7) {
                v |= (uint64_t)(p[i] & 0x7f) << sh;
                if (!(p[i++] & 0x80))
                    break;
            }
            if (v > len - (i < len ? i : len))
                return 0;
            i += (size_t)v;
            break;
        default: return 0;
        }
    }
    return seq;
}

bool kf_proto_peek_event_id(const void *data, size_t len, char *out, size_t outlen)
{
    const uint8_t *p = data, *end = p + len, *id = NULL;
    size_t idlen = 0;
    while (p < end) {
        uint64_t tag, n;
        if (kf_varint_get(&p, end, &tag) != KF_OK)
            break;
        switch (tag & 7) {
        case 0:
            if (kf_varint_get(&p, end, &n) != KF_OK)
                p = end + 1;
            break;
        case 1:
            p = (size_t)(end - p) >= 8 ? p + 8 : end + 1;
            break;
        case 5:
            p = (size_t)(end - p) >= 4 ? p + 4 : end + 1;
            break;
        case 2:
            if (kf_varint_get(&p, end, &n) != KF_OK || n > (uint64_t)(end - p)) {
                p = end + 1;
                break;
            }
            if (tag >> 3 == 1) {
                id = p;
                idlen = (size_t)n;
            }
            p += n;
            break;
        default:
            p = end + 1;
        }
        if (p > end)
            break;
    }
    if (!id || idlen == 0 || idlen >= outlen || !kf_utf8_valid((const char *)id, idlen))
        return false;
    for (size_t i = 0; i < idlen; i++)
        if (id[i] <= ' ' || id[i] == 0x7f)
            return false;
    memcpy(out, id, idlen);
    out[idlen] = '\0';
    return true;
}
