/* kf_util: small things every module needs: allocation that aborts, strings, UTF-8, time text. */
#ifndef KF_UTIL_H
#define KF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KF_OK 0
#define KF_ERR (-1)
#define KF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation failure aborts: systemd restarts the daemon. */
void *kf_xmalloc(size_t n);
void *kf_xcalloc(size_t n, size_t size);
void *kf_xrealloc(void *p, size_t n);
char *kf_xstrdup(const char *s);
char *kf_xstrndup(const char *s, size_t n);
char *kf_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fills a setup function's (err, errlen) pair; NULL or 0 means the caller wants no text. */
void kf_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* true when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool kf_utf8_valid(const char *s, size_t len);
/* Number of Unicode characters in a valid UTF-8 string. */
size_t kf_utf8_len(const char *s);

/* Wall-clock time in epoch milliseconds (CLOCK_REALTIME) and a monotonic ms counter. */
int64_t kf_wall_ms(void);
int64_t kf_mono_ms(void);

/* RFC 3339 with a fixed offset, e.g. 2026-11-11T10:00:00+08:00 (".123" when ms != 0).
 * Returns KF_OK, or KF_ERR when buf is too small (>= 32 bytes is enough). */
int kf_time_format(int64_t ms, int offset_minutes, char *buf, size_t len);
/* Parses RFC 3339 ("2026-11-11T10:00:00+08:00", "...Z", fractional seconds, 'T' or ' ')
 * into epoch ms. Returns KF_OK or KF_ERR. */
int kf_time_parse(const char *s, int64_t *ms);

/* Parses a whole decimal integer in [min, max]; KF_ERR on garbage or out of range. */
int kf_parse_ll(const char *s, long long min, long long max, long long *out);

/* Masks personal data for logs: "13800001234" -> "138****1234", "张三丰" -> "张**".
 * Writes at most len-1 bytes into buf; returns buf. */
const char *kf_mask_phone(const char *phone, char *buf, size_t len);
const char *kf_mask_name(const char *name, char *buf, size_t len);

/* FNV-1a (32 bit) of a string; NULL hashes as "". */
uint32_t kf_fnv1a(const char *s);
/* An event_id's 8-byte fingerprint (FNV-1a 64, big-endian), the field of the compact event_id
 * guards in Redis (the broker's door, the workers'; docs/redis-keys.md). */
void kf_fingerprint(const char *s, char out[8]);
/* A random UUID v4 string into buf (>= 37 bytes). */
void kf_uuid4(char *buf);

/* The protobuf base-128 varint: writes v at p (room for 10 bytes), returns its length. */
size_t kf_varint_put(uint8_t *p, uint64_t v);
/* Reads one from [*p, end): advances *p; KF_ERR (and *p unchanged) when it is cut short or
 * longer than 10 bytes. */
int kf_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v);

#endif
