/* kf_window: see kf_window.h. All calendar work goes through kf_clock's shop-local helpers
 * (a fixed UTC offset, no time-zone database). */
#include "kf_window.h"

#include "kf_clock.h"
#include "kf_util.h"

#define S_DAY_MIN 1440
#define S_SEARCH_DAYS 8

const kf_window_t kf_window_quiet = KF_WINDOW_QUIET_INIT;
const kf_window_t kf_window_working = KF_WINDOW_WORKING_INIT;
const kf_window_t kf_window_phone[KF_WINDOW_PHONE_N] = KF_WINDOW_PHONE_INIT;

bool kf_window_valid(const kf_window_t *w)
{
    return w && w->start_min >= 0 && w->start_min < S_DAY_MIN && w->end_min >= 0 &&
           w->end_min <= S_DAY_MIN;
}

static bool s_empty(const kf_window_t *w)
{
    return w->start_min == w->end_min;
}

bool kf_window_contains(const kf_window_t *w, int minute_of_day)
{
    if (!kf_window_valid(w) || minute_of_day < 0 || minute_of_day >= S_DAY_MIN)
        return false;
    if (w->start_min <= w->end_min)
        return minute_of_day >= w->start_min && minute_of_day < w->end_min;
    return minute_of_day >= w->start_min || minute_of_day < w->end_min; /* over midnight */
}

kf_window_t kf_window_invert(const kf_window_t *w)
{
    if (s_empty(w))
        return (kf_window_t){0, S_DAY_MIN};
    if (w->start_min == 0 && w->end_min == S_DAY_MIN)
        return (kf_window_t){0, 0};
    return (kf_window_t){w->end_min % S_DAY_MIN, w->start_min};
}

int kf_window_parse(const char *start_hhmm, const char *end_hhmm, kf_window_t *out)
{
    int start = kf_parse_hhmm(start_hhmm);
    int end = kf_parse_hhmm(end_hhmm);
    if (start < 0 || start >= S_DAY_MIN || end < 0)
        return KF_ERR;
    out->start_min = start;
    out->end_min = end;
    return KF_OK;
}

static int s_minute_of_day(int64_t ms, int offset_min)
{
    kf_local_t t;
    kf_local(ms, offset_min, &t);
    return t.minute_of_day;
}

int64_t kf_window_next_open(const kf_window_t *allowed, size_t n, int64_t from_ms,
                            int offset_min)
{
    if (!allowed)
        return -1;
    int mod = s_minute_of_day(from_ms, offset_min);
    for (size_t i = 0; i < n; i++)
        if (kf_window_contains(&allowed[i], mod))
            return from_ms;
    /* not inside any: the next opening is the earliest window start still to come */
    for (int day = 0; day <= S_SEARCH_DAYS; day++) {
        bool found = false;
        int64_t best = 0;
        for (size_t i = 0; i < n; i++) {
            const kf_window_t *w = &allowed[i];
            if (!kf_window_valid(w) || s_empty(w))
                continue;
            int64_t t = kf_local_at(from_ms, offset_min, day, 0, w->start_min);
            if (t >= from_ms && (!found || t < best)) {
                best = t;
                found = true;
            }
        }
        if (found)
            return best;
    }
    return -1;
}

int64_t kf_window_next_outside(const kf_window_t *quiet, int64_t from_ms, int offset_min)
{
    if (!kf_window_valid(quiet))
        return from_ms;
    int mod = s_minute_of_day(from_ms, offset_min);
    if (!kf_window_contains(quiet, mod))
        return from_ms;
    if (quiet->start_min == 0 && quiet->end_min == S_DAY_MIN)
        return -1;
    /* inside: quiet ends at end_min today, or tomorrow when we are before midnight of an
     * over-midnight window */
    bool tomorrow = quiet->end_min < quiet->start_min && mod >= quiet->start_min;
    return kf_local_at(from_ms, offset_min, tomorrow ? 1 : 0, 0, quiet->end_min);
}

kf_hold_t kf_window_hold(int64_t want_ms, int64_t deadline_ms, const kf_window_t *allowed,
                         size_t n, int64_t *at_ms, int offset_min)
{
    int64_t at = kf_window_next_open(allowed, n, want_ms, offset_min);
    if (at_ms)
        *at_ms = at;
    if (at < 0 || (deadline_ms != 0 && at > deadline_ms))
        return KF_HOLD_DROP;
    return at == want_ms ? KF_HOLD_NOW : KF_HOLD_LATER;
}
