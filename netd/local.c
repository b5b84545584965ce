/* netd's node-local socket <run>/netd.sock: NetdRequest in, NetdResponse
 * out (proto/netd.proto), one answer per request in order; a subscribe
 * turns the connection into an endpoint-event stream. Peers are checked
 * with SO_PEERCRED by the listener (root or our own uid only). */
#include "netd.h"

#include "conn.h"
#include "log.h"
#include "pb.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NETD_LOCAL_MAX_FRAME (1u << 20)

static struct listener *local_l;
static struct netd *local_n;

static void reply(struct conn *c, uint64_t id, const char *err, const char *json)
{
	Swarm__NetdResponse r = SWARM__NETD_RESPONSE__INIT;
	r.id = id;
	r.error = (char *)(err ? err : "");
	r.json = (char *)(json ? json : "");
	conn_send_msg(c, &r.base);
}

static int local_frame(struct conn *c, const uint8_t *p, size_t len)
{
	struct netd *n = local_n;
	Swarm__NetdRequest *q = swarm__netd_request__unpack(NULL, len, p);
	if (!q) {
		log_warn("netd, undecodable request from %s: closing", conn_peer_name(c));
		reply(c, 0, "malformed request", NULL);
		return -EBADMSG;
	}
	const char *err = NULL;
	char *js = NULL;
	int r = 0;
	switch (q->body_case) {
	case SWARM__NETD_REQUEST__BODY_CONFIGURE:
		r = netd_configure(n, q->configure, &err);
		break;
	case SWARM__NETD_REQUEST__BODY_ATTACH:
		r = netd_attach(n, q->attach, &err);
		break;
	case SWARM__NETD_REQUEST__BODY_DETACH:
		netd_detach(n, q->detach->task_id); /* unknown: already gone, fine */
		break;
	case SWARM__NETD_REQUEST__BODY_MEMBERS:
		js = netd_members_json(n);
		break;
	case SWARM__NETD_REQUEST__BODY_NETWORK:
		js = netd_network_json(n, q->network);
		if (!js) {
			err = "no such network on this node";
			r = -ENOENT;
		}
		break;
	case SWARM__NETD_REQUEST__BODY_STATUS:
		js = netd_status_json(n);
		break;
	case SWARM__NETD_REQUEST__BODY_SUBSCRIBE:
		conn_set_data(c, n);
		reply(c, q->id, NULL, NULL);
		netd_subscribe(n, c);
		swarm__netd_request__free_unpacked(q, NULL);
		return 0;
	default:
		err = "unknown request";
		r = -EINVAL;
		break;
	}
	if (r < 0 && !err)
		err = strerror(-r);
	reply(c, q->id, r < 0 ? err : NULL, js);
	free(js);
	swarm__netd_request__free_unpacked(q, NULL);
	return 0;
}

static void local_close(struct conn *c, int err)
{
	(void)err;
	if (conn_data(c))
		netd_unsubscribe(local_n, c);
}

static const struct conn_ops local_ops = {
	.on_frame = local_frame,
	.on_close = local_close,
};

int netd_local_listen(struct netd *n, const char *path)
{
	local_n = n;
	local_l = listener_unix(n->loop, path, NETD_LOCAL_MAX_FRAME, &local_ops, NULL, NULL);
	if (!local_l) {
		log_err("netd, cannot listen on %s", path);
		return -EADDRINUSE;
	}
	return 0;
}

void netd_local_stop(void)
{
	listener_free(local_l);
	local_l = NULL;
}
