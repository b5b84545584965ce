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

#include <protobuf-c/protobuf-c.h>

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

const char *client_run_dir(int argc, char **argv)
{
	const char *run = getenv("SWARM_RUN_DIR") ? getenv("SWARM_RUN_DIR") : "/run/swarm";
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--run-dir") && i + 1 < argc)
			run = argv[++i];
	return run;
}

/* A singular string field of m by name, or NULL. */
static const char *client_field(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(const char *const *)((const char *)m + f->offset);
}

int client_json(const char *prog, const char *path, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp, int timeout_ms)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = xmalloc(len + 1), *p = NULL;
	protobuf_c_message_pack(req, buf);
	int rc = 1, fd = client_connect_unix(path), r = fd;
	if (fd >= 0 && (r = client_send(fd, buf, len)) == 0)
		r = client_recv(fd, 16u << 20, timeout_ms, &p, &len);
	if (r < 0) {
		fprintf(stderr, "%s: cannot ask %s: %s\n", prog, path, strerror(-r));
	} else {
		ProtobufCMessage *a = protobuf_c_message_unpack(resp, NULL, len, p);
		const char *err = a ? client_field(a, "error") : "undecodable answer";
		const char *js = a ? client_field(a, "json") : NULL;
		if (err && *err) {
			fprintf(stderr, "%s: %s\n", prog, err);
		} else {
			printf("%s\n", js ? js : "");
			rc = 0;
		}
		if (a)
			protobuf_c_message_free_unpacked(a, NULL);
	}
	free(buf);
	free(p);
	if (fd >= 0)
		close(fd);
	return rc;
}
