/* kf_clock: see kf_clock.h. Calendar arithmetic is pure integer math on epoch ms plus a
 * fixed UTC offset (no time-zone database): shops run on one offset, default +08:00. */
#include "kf_clock.h"

#include <ctype.h>
#include <stdio.h>

#include "kf_util.h"

#define S_DAY_MS INT64_C(86400000)

static bool s_simulated;
static int64_t s_now_ms; /* simulated mode only */

void kf_clock_init(bool simulated, int64_t start_ms)
{
    s_simulated = simulated;
    s_now_ms = simulated ? start_ms : 0;
}

bool kf_clock_simulated(void)
{
    return s_simulated;
}

int64_t kf_clock_now(void)
{
    return s_simulated ? s_now_ms : kf_wall_ms();
}

int kf_clock_set(int64_t now_ms)
{
    if (!s_simulated || now_ms < s_now_ms)
        return KF_ERR;
    s_now_ms = now_ms;
    return KF_OK;
}

/* ---- shop-local calendar --------------------------------------------------------------- */

static int64_t s_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Local day number (days since 1970-01-01 local) and ms into that day. */
static int64_t s_local_day(int64_t ms, int offset_minutes, int64_t *ms_of_day)
{
    int64_t local = ms + (int64_t)offset_minutes * 60000;
    int64_t day = s_floor_div(local, S_DAY_MS);
    if (ms_of_day)
        *ms_of_day = local - day * S_DAY_MS;
    return day;
}

/* Days since 1970-01-01 -> proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void s_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = s_floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                    /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                  /* [0, 11] */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

void kf_local(int64_t ms, int offset_minutes, kf_local_t *out)
{
    int64_t msod;
    int64_t day = s_local_day(ms, offset_minutes, &msod);
    s_civil_from_days(day, &out->year, &out->month, &out->day);
    int64_t sec = msod / 1000;
    out->hour = (int)(sec / 3600);
    out->minute = (int)(sec / 60 % 60);
    out->second = (int)(sec % 60);
    out->minute_of_day = out->hour * 60 + out->minute;
    out->wday = (int)(day + 4 - s_floor_div(day + 4, 7) * 7); /* 1970-01-01 was a Thursday */
}

int kf_local_yyyymmdd(int64_t ms, int offset_minutes)
{
    kf_local_t t;
    kf_local(ms, offset_minutes, &t);
    return t.year * 10000 + t.month * 100 + t.day;
}

int64_t kf_local_midnight(int64_t ms, int offset_minutes)
{
    int64_t day = s_local_day(ms, offset_minutes, NULL);
    return day * S_DAY_MS - (int64_t)offset_minutes * 60000;
}

int64_t kf_local_at(int64_t ms, int offset_minutes, int add_days, int hour, int minute)
{
    return kf_local_midnight(ms, offset_minutes) + (int64_t)add_days * S_DAY_MS +
           ((int64_t)hour * 60 + minute) * 60000;
}

int kf_parse_hhmm(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < 5; i++)
        if (i == 2 ? s[i] != ':' : !isdigit((unsigned char)s[i]))
            return -1;
    if (s[5] != '\0')
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

const char *kf_local_md(int64_t ms, int offset_minutes, int with_time, char *buf, size_t len)
{
    kf_local_t lt;
    kf_local(ms, offset_minutes, &lt);
    if (with_time)
        snprintf(buf, len, "%d月%d日%02d:%02d", lt.month, lt.day, lt.hour, lt.minute);
    else
        snprintf(buf, len, "%d月%d日", lt.month, lt.day);
    return buf;
}
