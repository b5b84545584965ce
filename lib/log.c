#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static struct {
	const char *ident;
	enum log_level level;
	int to_syslog;
} lg = { "swarm", LOG_LVL_INFO, 0 };

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_init(const char *ident, enum log_level level, int to_syslog)
{
	lg.ident = ident;
	lg.level = level;
	lg.to_syslog = to_syslog;
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
	lg.level = level;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return 0;
	}
	return -EINVAL;
}

int log_enabled(enum log_level level)
{
	return level <= lg.level;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (lg.to_syslog) {
		syslog(prio[level], "%s", buf);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char tbuf[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%s] %s\n", tbuf, ts.tv_nsec / 1000000, lg.ident,
		level_names[level], buf);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > lg.level)
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	abort();
}
