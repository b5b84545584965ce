#include "client.h"
#include "frame.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int client_connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int client_send(int fd, const void *payload, size_t len)
{
	uint8_t hdr[FRAME_HDR];
	frame_put_header(hdr, (uint32_t)len);
	int r = write_all(fd, hdr, sizeof(hdr));
	return r ? r : write_all(fd, payload, len);
}

static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;
	while (len > 0) {
		if (timeout_ms >= 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int pr = poll(&pfd, 1, timeout_ms);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0)
				return -ETIMEDOUT;
			if (pr < 0)
				return -errno;
		}
		ssize_t r = read(fd, p, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ECONNRESET;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int client_recv(int fd, size_t max, int timeout_ms, uint8_t **payload, size_t *len)
{
	uint8_t hdr[FRAME_HDR];
	int r = read_full(fd, hdr, sizeof(hdr), timeout_ms);
	if (r)
		return r;
	size_t n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
	if (n > max)
		return -EMSGSIZE;
	uint8_t *buf = xmalloc(n ? n : 1);
	r = read_full(fd, buf, n, timeout_ms);
	if (r) {
		free(buf);
		return r;
	}
	*payload = buf;
	*len = n;
	return 0;
}
