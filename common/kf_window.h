/* kf_window: the time rules of the contact policy (DOMAIN §0 "Quiet hours").
 *
 * A window is a daily span of shop-local minutes [start_min, end_min): end < start runs over
 * midnight (quiet hours 22:00-08:00 = {1320, 480}), end == 1440 runs to midnight, start ==
 * end is empty. Times are epoch ms; the shop's UTC offset is in minutes (480 = +08:00).
 * A moment is inside a window when its local minute of day is (windows are minute-aligned,
 * so 11:29:59.999 is inside 10:00-11:30 and 11:30:00 is not). Pure functions. */
#ifndef KF_WINDOW_H
#define KF_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int start_min, end_min; /* start in [0, 1439], end in [0, 1440] */
} kf_window_t;

/* Per-shop defaults (DOMAIN §0, §3); the _INIT forms are for static initializers. */
#define KF_WINDOW_QUIET_INIT {22 * 60, 8 * 60}
#define KF_WINDOW_WORKING_INIT {9 * 60, 22 * 60}
#define KF_WINDOW_PHONE_INIT                                                                   \
    {{10 * 60, 11 * 60 + 30}, {15 * 60, 16 * 60 + 30}, {19 * 60 + 30, 20 * 60 + 30}}
#define KF_WINDOW_PHONE_N 3

extern const kf_window_t kf_window_quiet;                     /* 22:00-08:00 no sms/phone */
extern const kf_window_t kf_window_working;                   /* 09:00-22:00 */
extern const kf_window_t kf_window_phone[KF_WINDOW_PHONE_N];  /* 10:00-11:30 15:00-16:30
                                                               * 19:30-20:30 */

/* start and end within range (see kf_window_t). */
bool kf_window_valid(const kf_window_t *w);
/* minute_of_day in [0, 1439] lies in w; false for an invalid window or minute. */
bool kf_window_contains(const kf_window_t *w, int minute_of_day);
/* The complement: allowed hours from quiet hours ({1320, 480} -> {480, 1320}). */
kf_window_t kf_window_invert(const kf_window_t *w);
/* "HH:MM" (00:00-24:00; "24:00" only as the end) -> out. KF_OK or KF_ERR (out untouched). */
int kf_window_parse(const char *start_hhmm, const char *end_hhmm, kf_window_t *out);

/* The first moment >= from_ms inside any of the n allowed windows, searching up to 8 days
 * ahead; -1 when there is none (n == 0, or all empty). */
int64_t kf_window_next_open(const kf_window_t *allowed, size_t n, int64_t from_ms,
                            int offset_min);
/* The first moment >= from_ms outside quiet (from_ms itself when not quiet; 07:30 -> 08:00
 * with quiet 22:00-08:00); -1 when quiet is the whole day. */
int64_t kf_window_next_outside(const kf_window_t *quiet, int64_t from_ms, int offset_min);

typedef enum {
    KF_HOLD_NOW,   /* want_ms is allowed: contact now (*at_ms = want_ms) */
    KF_HOLD_LATER, /* held: contact at *at_ms, the next allowed moment */
    KF_HOLD_DROP,  /* dropped: the allowed moment *at_ms passes deadline_ms (reason
                    * "deadline"), or *at_ms == -1: no allowed moment within 8 days */
} kf_hold_t;

/* A contact wanted at want_ms is held to the next allowed moment, unless that moment is
 * after deadline_ms (deadline_ms 0 = none; the deadline itself is still allowed). at_ms
 * may be NULL. */
kf_hold_t kf_window_hold(int64_t want_ms, int64_t deadline_ms, const kf_window_t *allowed,
                         size_t n, int64_t *at_ms, int offset_min);

#endif
