/* kf_json: see kf_json.h. One generic walk over protobuf-c descriptors in each direction:
 * JSON -> message builds the structs exactly as protobuf-c's unpacker would (malloc'd
 * strings, submessages and arrays, message_init defaults, has_ flags, n_ counts, oneof
 * case), so kf_env_free() frees them, also half-built on an error path. */
#include "kf_json.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_util.h"

#define S_MAX_DEPTH 8     /* nested messages below the top-level object */
#define S_MAX_ARRAY 10000 /* elements of one repeated field */
#define S_CLIP 64         /* bytes of input echoed in an error message */
#define S_MAX_OFFSET (23 * 60 + 59)

static int s_offset = 480;

typedef struct {
    char *err;
    size_t errlen;
    const char *topic;
    int depth;
    size_t plen;
    char path[256]; /* "items[1].qty": the key path, for error messages */
} s_ctx_t;

void kf_json_set_offset(int offset_minutes)
{
    if (offset_minutes > S_MAX_OFFSET)
        offset_minutes = S_MAX_OFFSET;
    if (offset_minutes < -S_MAX_OFFSET)
        offset_minutes = -S_MAX_OFFSET;
    s_offset = offset_minutes;
}

/* ------------------------------------------------------------------ UTF-8 and errors */

/* Length of the well-formed UTF-8 sequence at s (at most left bytes), 0 if there is none. */
static size_t s_utf8_seq(const char *s, size_t left)
{
    for (size_t n = 1; n <= 4 && n <= left; n++)
        if (kf_utf8_valid(s, n))
            return n;
    return 0;
}

/* Copies at most max bytes of s into buf for an error message: whole characters only,
 * invalid bytes as '?', "..." when cut. buf holds max + 4 bytes. */
static const char *s_clip(const char *s, size_t len, char *buf, size_t max)
{
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = s_utf8_seq(s + i, len - i);
        if (o + (n ? n : 1) > max) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (n == 0 || s[i] == '\0') {
            buf[o++] = '?';
            i++;
            continue;
        }
        memcpy(buf + o, s + i, n);
        o += n;
        i += n;
    }
    buf[o] = '\0';
    return buf;
}

/* Drops a UTF-8 sequence cut short at the end of s (after snprintf truncation). */
static void s_trim_utf8(char *s)
{
    size_t n = strlen(s), k = 0;
    while (k < 4 && k < n && ((unsigned char)s[n - 1 - k] & 0xC0) == 0x80)
        k++;
    if (k < n && !kf_utf8_valid(s + n - 1 - k, k + 1))
        s[n - 1 - k] = '\0';
}

__attribute__((format(printf, 3, 0)))
static void s_verr(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (!err || errlen == 0)
        return;
    int n = vsnprintf(err, errlen, fmt, ap);
    if (n >= 0 && (size_t)n >= errlen)
        s_trim_utf8(err);
}

__attribute__((format(printf, 3, 4)))
static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_verr(err, errlen, fmt, ap);
    va_end(ap);
}

/* "key 'items[1].qty': <message>"; returns KF_ERR. */
__attribute__((format(printf, 2, 3)))
static int s_fail(s_ctx_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    s_verr(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s_err(c->err, c->errlen, "key '%s': %s", c->path, msg);
    return KF_ERR;
}

static int s_unknown_key(s_ctx_t *c, const char *key, size_t len)
{
    char clip[S_CLIP + 4];
    s_err(c->err, c->errlen, "unknown key '%s%s%s' for topic %s", c->path, c->plen ? "." : "",
          s_clip(key, len, clip, S_CLIP), c->topic);
    return KF_ERR;
}

/* Appends ".key" (key != NULL) or "[index]" to the key path; returns the old length. */
static size_t s_push(s_ctx_t *c, const char *key, size_t index)
{
    size_t old = c->plen, room = sizeof(c->path) - old;
    int n = key ? snprintf(c->path + old, room, "%s%s", old ? "." : "", key)
                : snprintf(c->path + old, room, "[%zu]", index);
    c->plen = (n < 0 || (size_t)n >= room) ? sizeof(c->path) - 1 : old + (size_t)n;
    return old;
}

static void s_pop(s_ctx_t *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

static const char *s_jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE: case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

/* ------------------------------------------------------------------ descriptors */

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Time fields: int64 named *_at, *_by, now, not_before, until (epoch ms; RFC 3339 in JSON),
 * and plain `at` (OrderStatus, LogisticsScan, Review, CaseUpdated): "*_at" with an empty
 * stem. */
static bool s_is_time(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_INT64 && f->type != PROTOBUF_C_TYPE_SINT64 &&
        f->type != PROTOBUF_C_TYPE_SFIXED64)
        return false;
    return s_ends_with(f->name, "_at") || s_ends_with(f->name, "_by") ||
           strcmp(f->name, "at") == 0 || strcmp(f->name, "now") == 0 ||
           strcmp(f->name, "not_before") == 0 || strcmp(f->name, "until") == 0;
}

static size_t s_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4; /* 32-bit integers, enums, float */
    }
}

static bool s_has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
           f->quantifier_offset != 0;
}

/* proto2 presence: has_ flag, non-NULL pointer, n_ > 0, or the selected oneof member. */
static bool s_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const void *p = *(void *const *)(base + f->offset);
        return p && p != f->default_value;
    }
    if (s_has_flag(f))
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    return true; /* required, or proto3 without presence */
}

static void s_mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char *base = (char *)m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    else if (s_has_flag(f))
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
}

static ProtobufCMessage *s_new_msg(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = kf_xmalloc(d->sizeof_message);
    d->message_init(m);
    return m;
}

/* ------------------------------------------------------------------ enums */

/* "OrderKind" -> "ORDER_KIND_": the prefix of the enum's value names. */
static void s_enum_prefix(const ProtobufCEnumDescriptor *ed, char *buf, size_t len)
{
    const char *s = ed->short_name;
    size_t o = 0;
    for (size_t i = 0; s[i] && o + 3 < len; i++) {
        unsigned char ch = (unsigned char)s[i], prev = i ? (unsigned char)s[i - 1] : 0;
        if (i && isupper(ch) &&
            (islower(prev) || isdigit(prev) || (isupper(prev) && islower((unsigned char)s[i + 1]))))
            buf[o++] = '_';
        buf[o++] = (char)toupper(ch);
    }
    buf[o++] = '_';
    buf[o] = '\0';
}

/* ORDER_KIND_FLASH_SALE -> "flash_sale" */
static const char *s_enum_name(const ProtobufCEnumDescriptor *ed, const ProtobufCEnumValue *ev,
                               char *buf, size_t len)
{
    char prefix[128];
    s_enum_prefix(ed, prefix, sizeof(prefix));
    const char *s = ev->name;
    if (strncmp(s, prefix, strlen(prefix)) == 0 && s[strlen(prefix)])
        s += strlen(prefix);
    size_t o = 0;
    for (; *s && o + 1 < len; s++)
        buf[o++] = (char)tolower((unsigned char)*s);
    buf[o] = '\0';
    return buf;
}

const char *kf_json_enum_name(const ProtobufCEnumDescriptor *ed, int value, char *buf,
                              size_t len)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, value);
    return ev ? s_enum_name(ed, ev, buf, len) : NULL;
}

static bool s_enum_unspecified(const ProtobufCEnumDescriptor *ed, const ProtobufCEnumValue *ev)
{
    char name[128];
    return strcmp(s_enum_name(ed, ev, name, sizeof(name)), "unspecified") == 0;
}

static int s_enum_fail(s_ctx_t *c, const ProtobufCEnumDescriptor *ed, const char *what)
{
    char list[512] = "", name[128];
    size_t o = 0;
    for (unsigned i = 0; i < ed->n_values; i++) {
        if (s_enum_unspecified(ed, &ed->values[i]))
            continue;
        int n = snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "",
                         s_enum_name(ed, &ed->values[i], name, sizeof(name)));
        if (n < 0 || (size_t)n >= sizeof(list) - o)
            break;
        o += (size_t)n;
    }
    return s_fail(c, "%s (one of: %s)", what, list);
}

static int s_get_enum(s_ctx_t *c, const ProtobufCEnumDescriptor *ed, const json_t *v,
                      int32_t *out)
{
    char what[S_CLIP + 64], name[128], clip[S_CLIP + 4];
    const ProtobufCEnumValue *ev = NULL;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (unsigned i = 0; !ev && strlen(s) == json_string_length(v) && i < ed->n_values; i++)
            if (strcmp(s_enum_name(ed, &ed->values[i], name, sizeof(name)), s) == 0)
                ev = &ed->values[i];
        snprintf(what, sizeof(what), "unknown value '%s'",
                 s_clip(s, json_string_length(v), clip, S_CLIP));
    } else if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x >= INT32_MIN && x <= INT32_MAX)
            ev = protobuf_c_enum_descriptor_get_value(ed, (int)x);
        snprintf(what, sizeof(what), "unknown value %lld", (long long)x);
    } else {
        snprintf(what, sizeof(what), "expected a name, got %s", s_jtype(v));
    }
    if (!ev || s_enum_unspecified(ed, ev))
        return s_enum_fail(c, ed, what);
    *out = ev->value;
    return KF_OK;
}

/* ------------------------------------------------------------------ JSON -> message */

static bool s_signed(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_SINT32 ||
           t == PROTOBUF_C_TYPE_SFIXED32 || t == PROTOBUF_C_TYPE_INT64 ||
           t == PROTOBUF_C_TYPE_SINT64 || t == PROTOBUF_C_TYPE_SFIXED64;
}

/* An integer (or an integral real) in the range of type t, as two's complement bits. */
static int s_get_int(s_ctx_t *c, const json_t *v, ProtobufCType t, uint64_t *out)
{
    bool sig = s_signed(t), wide = s_elem_size(t) == 8;
    int64_t lo = !sig ? 0 : wide ? INT64_MIN : INT32_MIN;
    uint64_t hi = sig ? (wide ? INT64_MAX : INT32_MAX) : (wide ? UINT64_MAX : UINT32_MAX);
    const char *tname = sig ? (wide ? "int64" : "int32") : (wide ? "uint64" : "uint32");
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < lo || (x > 0 && (uint64_t)x > hi))
            return s_fail(c, "integer %lld out of range for %s", (long long)x, tname);
        *out = (uint64_t)x;
        return KF_OK;
    }
    if (!json_is_real(v))
        return s_fail(c, "expected integer, got %s", s_jtype(v));
    double d = json_real_value(v);
    if (!isfinite(d) || d != trunc(d))
        return s_fail(c, "expected integer, got real %.17g", d);
    bool ok = sig ? d >= -9223372036854775808.0 && d < 9223372036854775808.0
                  : d >= 0 && d < 18446744073709551616.0;
    if (ok && sig)
        ok = (int64_t)d >= lo && (int64_t)d <= (int64_t)hi;
    else if (ok)
        ok = (uint64_t)d <= hi;
    if (!ok)
        return s_fail(c, "integer %.17g out of range for %s", d, tname);
    *out = sig ? (uint64_t)(int64_t)d : (uint64_t)d;
    return KF_OK;
}

static void s_store_int(ProtobufCType t, void *dst, uint64_t u)
{
    uint32_t w = (uint32_t)u;
    if (s_elem_size(t) == 8)
        memcpy(dst, &u, 8);
    else
        memcpy(dst, &w, 4);
}

static int s_get_time(s_ctx_t *c, const json_t *v, int64_t *out)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        char clip[S_CLIP + 4];
        if (strlen(s) == len && kf_time_parse(s, out) == KF_OK)
            return KF_OK;
        return s_fail(c, "not an RFC 3339 time or epoch ms: '%s'", s_clip(s, len, clip, S_CLIP));
    }
    if (!json_is_integer(v) && !json_is_real(v))
        return s_fail(c, "expected RFC 3339 time or epoch ms, got %s", s_jtype(v));
    uint64_t u;
    if (s_get_int(c, v, PROTOBUF_C_TYPE_INT64, &u) != KF_OK)
        return KF_ERR;
    *out = (int64_t)u;
    return KF_OK;
}

static int s_get_string(s_ctx_t *c, const json_t *v, char **dst)
{
    if (!json_is_string(v))
        return s_fail(c, "expected string, got %s", s_jtype(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (memchr(s, '\0', len))
        return s_fail(c, "string contains a NUL character");
    if (!kf_utf8_valid(s, len))
        return s_fail(c, "string is not valid UTF-8");
    *dst = kf_xstrndup(s, len);
    return KF_OK;
}

static int s_get_double(s_ctx_t *c, const json_t *v, ProtobufCType t, void *dst)
{
    if (!json_is_number(v))
        return s_fail(c, "expected number, got %s", s_jtype(v));
    double d = json_number_value(v);
    if (t == PROTOBUF_C_TYPE_FLOAT) {
        float x = (float)d;
        memcpy(dst, &x, sizeof(x));
    } else {
        memcpy(dst, &d, sizeof(d));
    }
    return KF_OK;
}

static int s_fill(s_ctx_t *c, ProtobufCMessage *m, const json_t *obj);

/* A nested message: allocated and hung on dst first, so that a failure half-way through
 * leaves it to the owner's free_unpacked. */
static int s_get_message(s_ctx_t *c, const ProtobufCMessageDescriptor *d, const json_t *v,
                         ProtobufCMessage **dst)
{
    if (!json_is_object(v))
        return s_fail(c, "expected object, got %s", s_jtype(v));
    if (c->depth >= S_MAX_DEPTH)
        return s_fail(c, "nested deeper than %d levels", S_MAX_DEPTH);
    *dst = s_new_msg(d);
    c->depth++;
    int rc = s_fill(c, *dst, v);
    c->depth--;
    return rc;
}

/* One value of field f from v into dst (the field itself or one array slot). */
static int s_get_value(s_ctx_t *c, const ProtobufCFieldDescriptor *f, const json_t *v, void *dst)
{
    uint64_t u;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return s_get_string(c, v, (char **)dst);
    case PROTOBUF_C_TYPE_MESSAGE:
        return s_get_message(c, f->descriptor, v, (ProtobufCMessage **)dst);
    case PROTOBUF_C_TYPE_ENUM:
        return s_get_enum(c, f->descriptor, v, (int32_t *)dst);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return s_fail(c, "expected boolean, got %s", s_jtype(v));
        *(protobuf_c_boolean *)dst = json_is_true(v);
        return KF_OK;
    case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE:
        return s_get_double(c, v, f->type, dst);
    case PROTOBUF_C_TYPE_BYTES:
        return s_fail(c, "bytes fields have no JSON mapping");
    default:
        if (s_is_time(f))
            return s_get_time(c, v, (int64_t *)dst);
        if (s_get_int(c, v, f->type, &u) != KF_OK)
            return KF_ERR;
        s_store_int(f->type, dst, u);
        return KF_OK;
    }
}

static int s_get_repeated(s_ctx_t *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                          const json_t *v)
{
    if (!json_is_array(v))
        return s_fail(c, "expected array, got %s", s_jtype(v));
    size_t n = json_array_size(v), es = s_elem_size(f->type);
    if (n > S_MAX_ARRAY)
        return s_fail(c, "array of %zu elements is over the limit of %d", n, S_MAX_ARRAY);
    if (n == 0)
        return KF_OK;
    char *arr = kf_xcalloc(n, es);
    size_t *count = (size_t *)((char *)m + f->quantifier_offset);
    *(char **)((char *)m + f->offset) = arr;
    *count = 0;
    bool ptr = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
    for (size_t i = 0; i < n; i++) {
        size_t old = s_push(c, NULL, i);
        int rc = s_get_value(c, f, json_array_get(v, i), arr + i * es);
        s_pop(c, old);
        if (rc == KF_OK || (ptr && *(void **)(arr + i * es)))
            (*count)++; /* a half-built submessage is owned (and freed) with the array */
        if (rc != KF_OK)
            return KF_ERR;
    }
    return KF_OK;
}

/* Sets field f of m from v (JSON null = absent). */
static int s_set_field(s_ctx_t *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                       const json_t *v)
{
    if (json_is_null(v))
        return KF_OK;
    size_t old = s_push(c, f->name, 0);
    int rc;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        rc = s_get_repeated(c, m, f, v);
    } else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
               *(uint32_t *)((char *)m + f->quantifier_offset) != 0) {
        rc = s_fail(c, "another field of the same oneof is already set");
    } else {
        s_mark_present(m, f); /* first: a oneof's case must own a half-built submessage */
        rc = s_get_value(c, f, v, (char *)m + f->offset);
    }
    s_pop(c, old);
    return rc;
}

static int s_fill(s_ctx_t *c, ProtobufCMessage *m, const json_t *obj)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)obj, key, klen, v) {
        const ProtobufCFieldDescriptor *f = NULL;
        if (strlen(key) == klen)
            f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, key);
        if (!f)
            return s_unknown_key(c, key, klen);
        if (s_set_field(c, m, f, v) != KF_OK)
            return KF_ERR;
    }
    return KF_OK;
}

/* The top level: envelope fields (not its oneof) and the payload's fields side by side. */
static int s_fill_top(s_ctx_t *c, kf_env_t *env, ProtobufCMessage *payload, const json_t *obj)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)obj, key, klen, v) {
        if (strlen(key) != klen)
            return s_unknown_key(c, key, klen);
        if (strcmp(key, "topic") == 0)
            continue;
        ProtobufCMessage *m = &env->base;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(m->descriptor, key);
        if (!f || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            m = payload;
            f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, key);
        }
        if (!f)
            return s_unknown_key(c, key, klen);
        if (s_set_field(c, m, f, v) != KF_OK)
            return KF_ERR;
    }
    return KF_OK;
}

/* The topic: the object's "topic", else the hint; both given must agree. */
static const char *s_topic(s_ctx_t *c, const json_t *obj, const char *hint)
{
    const json_t *t = json_object_get(obj, "topic");
    char clip[S_CLIP + 4], clip2[S_CLIP + 4];
    if (!t || json_is_null(t)) {
        if (!hint)
            s_err(c->err, c->errlen, "missing key 'topic'");
        return hint;
    }
    s_push(c, "topic", 0);
    if (!json_is_string(t)) {
        s_fail(c, "expected string, got %s", s_jtype(t));
        return NULL;
    }
    const char *s = json_string_value(t);
    if (hint && (strlen(s) != json_string_length(t) || strcmp(s, hint) != 0)) {
        s_fail(c, "'%s' differs from the expected topic '%s'",
               s_clip(s, json_string_length(t), clip, S_CLIP),
               s_clip(hint, strlen(hint), clip2, S_CLIP));
        return NULL;
    }
    s_pop(c, 0);
    return strlen(s) == json_string_length(t) ? s : "";
}

kf_env_t *kf_json_to_event(json_t *obj, const char *topic_hint, char *err, size_t errlen)
{
    s_ctx_t c = {.err = err, .errlen = errlen};
    char clip[S_CLIP + 4];
    if (!obj || !json_is_object(obj)) {
        s_err(err, errlen, "expected a JSON object, got %s", obj ? s_jtype(obj) : "nothing");
        return NULL;
    }
    const char *topic = s_topic(&c, obj, topic_hint);
    if (!topic)
        return NULL;
    const ProtobufCFieldDescriptor *pf = kf_proto_topic_field(topic);
    if (!pf || pf->type != PROTOBUF_C_TYPE_MESSAGE) {
        s_err(err, errlen, "unknown topic '%s'", s_clip(topic, strlen(topic), clip, S_CLIP));
        return NULL;
    }
    c.topic = topic;
    kf_env_t *env = (kf_env_t *)s_new_msg(&kefu__v1__envelope__descriptor);
    env->topic = kf_xstrdup(topic);
    ProtobufCMessage *payload = s_new_msg(pf->descriptor);
    *(ProtobufCMessage **)((char *)env + pf->offset) = payload;
    *(uint32_t *)((char *)env + pf->quantifier_offset) = pf->id;
    if (s_fill_top(&c, env, payload, obj) != KF_OK) {
        kf_env_free(env);
        return NULL;
    }
    if (!env->event_id) {
        env->event_id = kf_xmalloc(37);
        kf_uuid4(env->event_id);
    }
    if (!env->has_occurred_at) {
        env->has_occurred_at = 1;
        env->occurred_at = kf_wall_ms();
    }
    return env;
}

kf_env_t *kf_json_parse_event(const char *text, size_t len, const char *topic_hint, char *err,
                              size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char clip[sizeof(je.text) + 4];
        bool utf8 = json_error_code(&je) == json_error_invalid_utf8;
        s_err(err, errlen, "invalid JSON: %s at line %d column %d%s",
              s_clip(je.text, strlen(je.text), clip, sizeof(je.text) - 1), je.line, je.column,
              utf8 ? " (invalid UTF-8)" : "");
        return NULL;
    }
    kf_env_t *env = kf_json_to_event(root, topic_hint, err, errlen);
    json_decref(root);
    return env;
}

/* ------------------------------------------------------------------ message -> JSON */

/* A JSON string; bytes that are not UTF-8 (only from a caller that skipped validation)
 * become U+FFFD so that the output stays valid JSON. */
static json_t *s_json_str(const char *s)
{
    size_t len = strlen(s);
    if (kf_utf8_valid(s, len))
        return json_stringn(s, len);
    char *buf = kf_xmalloc(len * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = s_utf8_seq(s + i, len - i);
        if (n == 0) {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(buf + o, s + i, n);
            o += n;
            i += n;
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* RFC 3339 in the output offset, or the epoch ms when that text would not parse back. */
static json_t *s_json_time(int64_t ms)
{
    char buf[48];
    int64_t back;
    const int64_t lo = -62167219200000LL, hi = 253402300799999LL; /* years 0000..9999 */
    if (ms >= lo && ms <= hi && kf_time_format(ms, s_offset, buf, sizeof(buf)) == KF_OK &&
        kf_time_parse(buf, &back) == KF_OK && back == ms)
        return json_string(buf);
    return json_integer(ms);
}

static json_t *s_json_enum(const ProtobufCEnumDescriptor *ed, int32_t v)
{
    char name[128];
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
    if (!ev)
        return json_integer(v); /* a value from a newer contract */
    if (s_enum_unspecified(ed, ev))
        return NULL;
    return json_string(s_enum_name(ed, ev, name, sizeof(name)));
}

static void s_put_fields(json_t *o, const ProtobufCMessage *m, int depth);

static json_t *s_json_value(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return *(char *const *)p ? s_json_str(*(char *const *)p) : NULL;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (!sub || depth >= S_MAX_DEPTH)
            return NULL;
        json_t *o = json_object();
        s_put_fields(o, sub, depth + 1);
        return o;
    }
    case PROTOBUF_C_TYPE_ENUM:
        memcpy(&i32, p, 4);
        return s_json_enum(f->descriptor, i32);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return isfinite(*(const float *)p) ? json_real(*(const float *)p) : NULL;
    case PROTOBUF_C_TYPE_DOUBLE:
        return isfinite(*(const double *)p) ? json_real(*(const double *)p) : NULL;
    case PROTOBUF_C_TYPE_BYTES:
        return NULL;
    default:
        break;
    }
    bool sig = s_signed(f->type);
    if (s_elem_size(f->type) == 4) {
        memcpy(&u32, p, 4);
        memcpy(&i32, p, 4);
        return sig ? json_integer(i32) : json_integer(u32);
    }
    memcpy(&u64, p, 8);
    memcpy(&i64, p, 8);
    if (sig)
        return s_is_time(f) ? s_json_time(i64) : json_integer(i64);
    /* jansson integers are signed 64-bit: a larger uint64 can only be shown as a real */
    return u64 > INT64_MAX ? json_real((double)u64) : json_integer((json_int_t)u64);
}

static json_t *s_json_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                            int depth)
{
    const char *base = (const char *)m;
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return s_json_value(f, base + f->offset, depth);
    size_t n = *(const size_t *)(base + f->quantifier_offset), es = s_elem_size(f->type);
    const char *arr = *(char *const *)(base + f->offset);
    json_t *a = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *v = s_json_value(f, arr + i * es, depth);
        if (v)
            json_array_append_new(a, v);
    }
    if (json_array_size(a) == 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static void s_put_field(json_t *o, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        int depth)
{
    if (!s_present(m, f))
        return;
    json_t *v = s_json_field(m, f, depth);
    if (v)
        json_object_set_new(o, f->name, v);
}

/* Fields in declaration order (protobuf-c keeps them by number, which the contract
 * declares in order). */
static void s_put_fields(json_t *o, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        s_put_field(o, m, &d->fields[i], depth);
}

json_t *kf_json_from_event(const kf_env_t *env)
{
    const ProtobufCMessageDescriptor *d = &kefu__v1__envelope__descriptor;
    json_t *o = json_object();
    if (env->topic)
        json_object_set_new(o, "topic", s_json_str(env->topic));
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && strcmp(f->name, "topic") != 0)
            s_put_field(o, &env->base, f, 0);
    }
    const ProtobufCFieldDescriptor *pf =
        protobuf_c_message_descriptor_get_field(d, (unsigned)env->payload_case);
    if (pf && (pf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && pf->type == PROTOBUF_C_TYPE_MESSAGE) {
        const char *slot = (const char *)env + pf->offset;
        const ProtobufCMessage *payload = *(ProtobufCMessage *const *)slot;
        if (payload)
            s_put_fields(o, payload, 0);
    }
    return o;
}

char *kf_json_dump_event(const kf_env_t *env)
{
    json_t *o = kf_json_from_event(env);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        abort(); /* out of memory: allocation failure aborts (STYLE) */
    return s;
}
