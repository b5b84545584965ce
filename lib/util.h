/* Small shared helpers: time, ids, strings, files. */
#ifndef SWARM_UTIL_H
#define SWARM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Wall clock and monotonic clock in nanoseconds. */
int64_t now_wall_ns(void);
int64_t now_mono_ns(void);

/* A random 25-character lower-case base-36 id (Docker's shape), into out
 * (at least 26 bytes). */
void id_random(char *out);
/* n random bytes from the kernel; 0 or -errno. */
int random_bytes(void *buf, size_t n);

/* Parses a Go-style duration ("10s", "1m30s", "500ms", "2h", plain number
 * = seconds) into ns; -EINVAL on garbage or overflow. */
int duration_parse(const char *s, int64_t *ns);
/* Parses a byte size ("512m", "1g", "100k", "1024"), -EINVAL on garbage. */
int bytes_parse(const char *s, int64_t *out);
/* Docker's units.HumanDuration: "Less than a second", "1 second",
 * "18 seconds", "About a minute", "5 minutes", "About an hour", "3 hours",
 * "2 days", "3 weeks", "4 months", "2 years". */
void human_duration(int64_t ns, char *out, size_t outlen);
/* Go's RFC3339Nano in UTC ("2026-11-25T17:21:43.123456789Z", trailing
 * zeros of the fraction dropped); ns <= 0 is Go's zero time. */
void time_rfc3339(int64_t ns, char *out, size_t outlen);

/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated
 * buffer; 0 or -errno. */
int file_read_all(const char *path, size_t max, char **out, size_t *len);
/* Writes data to path atomically (tmp file + fsync + rename) with mode. */
int file_write_atomic(const char *path, const void *data, size_t len, int mode);
/* mkdir -p with mode; 0 or -errno. */
int mkdir_p(const char *path, int mode);
/* rm -rf; 0 or -errno. Refuses "/" and "". */
int rm_rf(const char *path);

/* Parses "IP" or "IP:PORT" (IPv4); fills ip (16 bytes) and *port (left
 * unchanged when absent). -EINVAL on garbage. */
int hostport_parse(const char *s, char ip[16], uint16_t *port);

bool str_has_prefix(const char *s, const char *prefix);
/* strdup that aborts on ENOMEM. */
char *xstrdup(const char *s);
/* Copy of at most n bytes of s, NUL-terminated; aborts on ENOMEM. */
char *xstrndup(const char *s, size_t n);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
/* asprintf that aborts on ENOMEM. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
