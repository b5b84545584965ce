#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t now_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void id_random(char *out)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	uint8_t raw[25];
	if (random_bytes(raw, sizeof(raw)) < 0)
		abort();
	/* 252 = 7 * 36: reject nothing, bias below 1% is irrelevant for ids
	 * but keep it uniform anyway by folding with modulo on a multiple. */
	for (size_t i = 0; i < sizeof(raw); i++)
		out[i] = digits[raw[i] % 36];
	out[25] = '\0';
}

int duration_parse(const char *s, int64_t *ns)
{
	if (!s || !*s)
		return -EINVAL;
	const char *p = s;
	int64_t total = 0;
	int any = 0;
	while (*p) {
		char *end;
		errno = 0;
		/* Plain decimal numbers only: strtod would also take "nan",
		 * "inf" and hex floats. */
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return -EINVAL;
		double v = strtod(p, &end);
		if (end == p || errno || !isfinite(v) || v < 0)
			return -EINVAL;
		p = end;
		double mult;
		if (*p == '\0') {
			if (any)
				return -EINVAL;
			mult = 1e9; /* a bare number: seconds */
		} else if (strncmp(p, "ns", 2) == 0) {
			mult = 1; p += 2;
		} else if (strncmp(p, "us", 2) == 0) {
			mult = 1e3; p += 2;
		} else if (strncmp(p, "ms", 2) == 0) {
			mult = 1e6; p += 2;
		} else if (*p == 's') {
			mult = 1e9; p += 1;
		} else if (*p == 'm') {
			mult = 60e9; p += 1;
		} else if (*p == 'h') {
			mult = 3600e9; p += 1;
		} else {
			return -EINVAL;
		}
		double add = v * mult;
		if (add > 9e18 || (double)total + add > 9e18)
			return -EINVAL;
		total += (int64_t)add;
		any = 1;
	}
	*ns = total;
	return 0;
}

int bytes_parse(const char *s, int64_t *out)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	errno = 0;
	if (!((*s >= '0' && *s <= '9') || *s == '.'))
		return -EINVAL;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return -EINVAL;
	double mult = 1;
	switch (*end) {
	case '\0': break;
	case 'b': case 'B': mult = 1; end++; break;
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'b' || *end == 'B' || *end == 'i')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	if (v * mult > 9e18)
		return -EINVAL;
	*out = (int64_t)(v * mult);
	return 0;
}

void human_duration(int64_t ns, char *out, size_t outlen)
{
	int64_t seconds = ns / 1000000000LL;
	int64_t minutes = seconds / 60;
	int64_t hours = (int64_t)((double)ns / 3.6e12 + 0.5);

	if (seconds < 1)
		snprintf(out, outlen, "Less than a second");
	else if (seconds == 1)
		snprintf(out, outlen, "1 second");
	else if (seconds < 60)
		snprintf(out, outlen, "%lld seconds", (long long)seconds);
	else if (minutes == 1)
		snprintf(out, outlen, "About a minute");
	else if (minutes < 60)
		snprintf(out, outlen, "%lld minutes", (long long)minutes);
	else if (hours == 1)
		snprintf(out, outlen, "About an hour");
	else if (hours < 48)
		snprintf(out, outlen, "%lld hours", (long long)hours);
	else if (hours < 24 * 7 * 2)
		snprintf(out, outlen, "%lld days", (long long)(hours / 24));
	else if (hours < 24 * 30 * 2)
		snprintf(out, outlen, "%lld weeks", (long long)(hours / 24 / 7));
	else if (hours < 24 * 365 * 2)
		snprintf(out, outlen, "%lld months", (long long)(hours / 24 / 30));
	else
		snprintf(out, outlen, "%lld years", (long long)(ns / 3600000000000LL / 24 / 365));
}

void time_rfc3339(int64_t ns, char *out, size_t outlen)
{
	char frac[16] = "";
	struct tm tm;

	if (ns <= 0) {
		snprintf(out, outlen, "0001-01-01T00:00:00Z");
		return;
	}
	time_t sec = (time_t)(ns / 1000000000LL);
	int64_t rem = ns % 1000000000LL;
	gmtime_r(&sec, &tm);
	if (rem) {
		snprintf(frac, sizeof(frac), ".%09lld", (long long)rem);
		for (size_t l = strlen(frac); l > 1 && frac[l - 1] == '0'; l--)
			frac[l - 1] = '\0';
	}
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

int file_read_all(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			cap *= 2;
			if (cap > max)
				cap = max;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int err = -errno;
			free(buf);
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, int mode)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	const char *p = data;
	size_t left = len;
	int err = 0;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int mkdir_p(const char *path, int mode)
{
	char buf[PATH_MAX];
	if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int rm_rf_at(int parent, const char *name)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int err = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int r = rm_rf_at(dirfd(d), de->d_name);
		if (r && !err)
			err = r;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !err)
		err = -errno;
	return err;
}

int rm_rf(const char *path)
{
	if (!path || !*path || strcmp(path, "/") == 0)
		return -EINVAL;
	return rm_rf_at(AT_FDCWD, path);
}

int hostport_parse(const char *s, char ip[16], uint16_t *port)
{
	char buf[64];
	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	char *colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		char *end;
		errno = 0;
		long p = strtol(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
			return -EINVAL;
		*port = (uint16_t)p;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	/* inet_pton accepted it, so it fits in 15 characters. */
	memcpy(ip, buf, strlen(buf) + 1);
	return 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		abort();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s ? s : "", n);
	if (!p)
		abort();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	return s;
}
