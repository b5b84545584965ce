/* swarmadm's request/response over the local Unix sockets (see rpc.h). */
#include "rpc.h"
#include "client.h"
#include "frame.h"
#include "pb.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void rpc_socket_path(const char *name, char *out, size_t outlen)
{
	const char *dir = getenv("SWARM_RUN_DIR");

	snprintf(out, outlen, "%s/%s", dir && *dir ? dir : "/run/swarm", name);
}

bool rpc_socket_exists(const char *name)
{
	char path[512];

	rpc_socket_path(name, path, sizeof(path));
	return access(path, F_OK) == 0;
}

static uint64_t rpc_next_id(void)
{
	static uint64_t id;

	if (!id)
		id = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	return ++id;
}

/* Connects, sends the packed request, receives the raw answer. who names
 * the daemon in messages. */
static int rpc_roundtrip(const char *sock, const char *who, const ProtobufCMessage *req,
			 int timeout_ms, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	char path[256];
	uint8_t *payload;
	size_t len;
	int fd, rc;

	rpc_socket_path(sock, path, sizeof(path));
	fd = client_connect_unix(path);
	if (fd < 0) {
		if (fd == -ENOENT || fd == -ECONNREFUSED)
			snprintf(err, errlen, "cannot reach the %s at %s: %s (is swarm-%s running on this node%s?)",
				 who, path, strerror(-fd), who,
				 strcmp(who, "manager") == 0 ? ", and is this node a manager" : "");
		else if (fd == -EACCES || fd == -EPERM)
			snprintf(err, errlen, "cannot reach the %s at %s: %s (run as root)", who, path, strerror(-fd));
		else
			snprintf(err, errlen, "cannot reach the %s at %s: %s", who, path, strerror(-fd));
		return fd;
	}
	payload = pb_pack(req, &len);
	rc = client_send(fd, payload, len);
	free(payload);
	if (rc < 0) {
		snprintf(err, errlen, "sending to the %s: %s", who, strerror(-rc));
		goto out;
	}
	rc = client_recv(fd, FRAME_MAX_DEFAULT, timeout_ms, out, outlen);
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		snprintf(err, errlen, "no answer from the %s within %d s", who, timeout_ms / 1000);
	else if (rc == -ECONNRESET)
		snprintf(err, errlen, "the %s closed the connection without answering", who);
	else if (rc < 0)
		snprintf(err, errlen, "reading the %s's answer: %s", who, strerror(-rc));
out:
	close(fd);
	return rc;
}

/* Sends req (id already set) and decodes the answer as a desc message; who
 * names the daemon in messages. 0, or -errno with err set and *resp NULL.
 * resp_id: the id field of the decoded answer (a function, since the two
 * answer types differ). */
static int rpc_exchange(const char *sock, const char *who, const ProtobufCMessage *req, uint64_t id,
			const ProtobufCMessageDescriptor *desc, uint64_t (*resp_id)(const ProtobufCMessage *),
			int timeout_ms, ProtobufCMessage **resp, char *err, size_t errlen)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc;

	*resp = NULL;
	rc = rpc_roundtrip(sock, who, req, timeout_ms, &raw, &len, err, errlen);
	if (rc < 0)
		return rc;
	*resp = protobuf_c_message_unpack(desc, NULL, len, raw);
	free(raw);
	if (!*resp) {
		snprintf(err, errlen, "the %s's answer could not be decoded", who);
		return -EPROTO;
	}
	if (resp_id(*resp) && resp_id(*resp) != id) {
		pb_free(*resp);
		*resp = NULL;
		snprintf(err, errlen, "the %s answered another request", who);
		return -EPROTO;
	}
	return 0;
}

static uint64_t rpc_admin_id(const ProtobufCMessage *m)
{
	return ((const Swarm__AdminResponse *)m)->id;
}

static uint64_t rpc_local_id(const ProtobufCMessage *m)
{
	return ((const Swarm__LocalResponse *)m)->id;
}

static uint64_t rpc_netd_id(const ProtobufCMessage *m)
{
	return ((const Swarm__NetdResponse *)m)->id;
}

int rpc_netd(Swarm__NetdRequest *req, int timeout_ms, Swarm__NetdResponse **resp,
	     char *err, size_t errlen)
{
	ProtobufCMessage *m;
	int rc;

	req->id = rpc_next_id();
	rc = rpc_exchange("netd.sock", "netd", &req->base, req->id, &swarm__netd_response__descriptor,
			  rpc_netd_id, timeout_ms, &m, err, errlen);
	*resp = (Swarm__NetdResponse *)m;
	return rc;
}

int rpc_admin(Swarm__AdminRequest *req, int timeout_ms, Swarm__AdminResponse **resp,
	      char *err, size_t errlen)
{
	ProtobufCMessage *m;
	int rc;

	req->id = rpc_next_id();
	rc = rpc_exchange("manager.sock", "manager", &req->base, req->id, &swarm__admin_response__descriptor,
			  rpc_admin_id, timeout_ms, &m, err, errlen);
	*resp = (Swarm__AdminResponse *)m;
	return rc;
}

int rpc_local(Swarm__LocalRequest *req, int timeout_ms, Swarm__LocalResponse **resp,
	      char *err, size_t errlen)
{
	ProtobufCMessage *m;
	int rc;

	req->id = rpc_next_id();
	rc = rpc_exchange("agent.sock", "agent", &req->base, req->id, &swarm__local_response__descriptor,
			  rpc_local_id, timeout_ms, &m, err, errlen);
	*resp = (Swarm__LocalResponse *)m;
	return rc;
}

/* The *_call helpers' check: false after printing why there is no usable
 * answer (rc < 0: err; else the daemon's refusal, freeing resp). */
static bool rpc_call_ok(int rc, const char *err, ProtobufCMessage *resp, const char *refusal)
{
	if (rc < 0) {
		fprintf(stderr, "swarmadm: %s\n", err);
		return false;
	}
	if (refusal && *refusal) {
		fprintf(stderr, "swarmadm: %s\n", refusal);
		pb_free(resp);
		return false;
	}
	return true;
}

Swarm__AdminResponse *rpc_admin_call(Swarm__AdminRequest *req)
{
	Swarm__AdminResponse *resp = NULL;
	char err[512];
	int rc = rpc_admin(req, RPC_TIMEOUT_MS, &resp, err, sizeof(err));

	return rpc_call_ok(rc, err, rc < 0 ? NULL : &resp->base, rc < 0 ? NULL : resp->error) ? resp : NULL;
}

Swarm__LocalResponse *rpc_local_call(Swarm__LocalRequest *req)
{
	Swarm__LocalResponse *resp = NULL;
	char err[512];
	int rc = rpc_local(req, RPC_TIMEOUT_MS, &resp, err, sizeof(err));

	return rpc_call_ok(rc, err, rc < 0 ? NULL : &resp->base, rc < 0 ? NULL : resp->error) ? resp : NULL;
}
