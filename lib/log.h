/* Logging: one API for every daemon. Lines start with the subsystem
 * ("dispatcher, node abc down"). Foreground daemons log to stderr, others to
 * syslog. */
#ifndef SWARM_LOG_H
#define SWARM_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* ident: program name; to_syslog: 0 = stderr. */
void log_init(const char *ident, enum log_level level, int to_syslog);
void log_set_level(enum log_level level);
/* Parses "error|warn|info|debug"; returns -EINVAL on anything else. */
int log_level_parse(const char *s, enum log_level *out);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Broken invariant: log and abort. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
