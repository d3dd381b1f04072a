/* kf_log: one line per event on stderr with a syslog "<N>" priority prefix for journald.
 * The _errno variants append strerror(errno) and keep errno. */
#ifndef KF_LOG_H
#define KF_LOG_H

#include <syslog.h>

extern int kf_log_level; /* LOG_ERR .. LOG_DEBUG; default LOG_INFO */

void kf_log_init(const char *ident, int level);
/* "err", "warning"/"warn", "notice", "info", "debug" -> LOG_*; -1 if unknown. */
int kf_log_level_parse(const char *name);
void kf_log_write(int prio, int with_errno, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define KF_LOG_(prio, e, ...) do { if ((prio) <= kf_log_level) kf_log_write((prio), (e), __VA_ARGS__); } while (0)
#define kf_log_err(...)          KF_LOG_(LOG_ERR, 0, __VA_ARGS__)
#define kf_log_warn(...)         KF_LOG_(LOG_WARNING, 0, __VA_ARGS__)
#define kf_log_notice(...)       KF_LOG_(LOG_NOTICE, 0, __VA_ARGS__)
#define kf_log_info(...)         KF_LOG_(LOG_INFO, 0, __VA_ARGS__)
#define kf_log_debug(...)        KF_LOG_(LOG_DEBUG, 0, __VA_ARGS__)
#define kf_log_err_errno(...)    KF_LOG_(LOG_ERR, 1, __VA_ARGS__)
#define kf_log_warn_errno(...)   KF_LOG_(LOG_WARNING, 1, __VA_ARGS__)

#endif
