/* kf_clock: the one clock every rule reads (DESIGN §6).
 *
 * mode real: wall-clock time. mode simulated: time only moves when kf_clock_set() is
 * called (a worker calls it when a sys.clock event arrives); it never goes backwards.
 * Process-wide: one clock per process. Also the shop-local calendar helpers. */
#ifndef KF_CLOCK_H
#define KF_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void kf_clock_init(bool simulated, int64_t start_ms); /* start_ms used when simulated */
bool kf_clock_simulated(void);
int64_t kf_clock_now(void);           /* epoch ms */
/* Simulated: moves to now_ms if later, returns KF_OK; earlier times are ignored (KF_ERR). */
int kf_clock_set(int64_t now_ms);

/* Shop-local calendar at a UTC offset in minutes (e.g. 480 for +08:00). */
typedef struct {
    int year, month, day;     /* calendar date */
    int hour, minute, second;
    int wday;                 /* 0 = Sunday */
    int minute_of_day;        /* hour * 60 + minute */
} kf_local_t;

void kf_local(int64_t ms, int offset_minutes, kf_local_t *out);
/* The local date as texts name it, "11月5日", or with the time, "11月5日09:05" (with_time);
 * the one C writer of that form (kf_worker.lua's K.md is the Lua one). Returns buf. */
const char *kf_local_md(int64_t ms, int offset_minutes, int with_time, char *buf, size_t len);
/* yyyymmdd of the local date */
int kf_local_yyyymmdd(int64_t ms, int offset_minutes);
/* epoch ms of local midnight of the day containing ms */
int64_t kf_local_midnight(int64_t ms, int offset_minutes);
/* epoch ms of the local time hh:mm on the day containing ms, plus add_days days */
int64_t kf_local_at(int64_t ms, int offset_minutes, int add_days, int hour, int minute);
/* "HH:MM" -> minute of day; -1 when invalid */
int kf_parse_hhmm(const char *s);

#endif
