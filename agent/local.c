/* The agent's local socket: node-local commands from swarmadm (join,
 * leave, containers, images). Answers that take time (join, image load)
 * are sent when done, if the client is still there. */
#include "agent.h"
#include "admin.pb-c.h"
#include "conn.h"
#include "log.h"
#include "pb.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_MAX_FRAME (1u << 20)
#define LOG_MAX (16u << 20)

/* A client connection, kept alive (refcounted) while an answer is owed. */
struct client {
	struct conn *c;          /* NULL once closed */
	int refs;
};

/* One owed answer. */
struct pending {
	struct client *cl;
	uint64_t id;
	struct agent *a;
	bool images;             /* an image load: the image list changed */
};

static struct listener *local_l;
static struct agent *local_agent;   /* one agent per process */

static void client_unref(struct client *cl)
{
	if (--cl->refs == 0)
		free(cl);
}

static void reply(struct conn *c, Swarm__LocalResponse *r)
{
	conn_send_msg(c, &r->base);
}

static void reply_error(struct conn *c, uint64_t id, const char *msg)
{
	Swarm__LocalResponse r = SWARM__LOCAL_RESPONSE__INIT;
	r.id = id;
	r.error = (char *)msg;
	reply(c, &r);
}

static void reply_json(struct conn *c, uint64_t id, const char *json)
{
	Swarm__LocalResponse r = SWARM__LOCAL_RESPONSE__INIT;
	r.id = id;
	r.json = (char *)(json ? json : "");
	reply(c, &r);
}

static void pending_done(int err, const char *msg, void *arg)
{
	struct pending *p = arg;
	if (p->images && !err)
		session_images_changed(p->a);
	if (p->cl->c) {
		if (err)
			reply_error(p->cl->c, p->id, msg ? msg : strerror(-err));
		else
			reply_json(p->cl->c, p->id, msg);
	}
	client_unref(p->cl);
	free(p);
}

static struct pending *pending_new(struct agent *a, struct conn *c, uint64_t id)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	p->cl = conn_data(c);
	p->cl->refs++;
	p->id = id;
	p->a = a;
	return p;
}

static char *status_json(struct agent *a)
{
	struct json_object *j = json_object_new_object();
	json_object_object_add(j, "NodeID", json_object_new_string(a->id.node_id ? a->id.node_id : ""));
	json_object_object_add(j, "Role", json_object_new_string(a->id.role ? a->id.role : ""));
	json_object_object_add(j, "Hostname", json_object_new_string(a->hostname));
	json_object_object_add(j, "Connected", json_object_new_boolean(a->session_open));
	struct json_object *m = json_object_new_array();
	for (size_t i = 0; i < a->id.n_managers; i++)
		json_object_array_add(m, json_object_new_string(a->id.managers[i]));
	json_object_object_add(j, "Managers", m);
	char *s = xstrdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
	return s;
}

static void do_leave(struct agent *a, struct conn *c, uint64_t id, bool force)
{
	if (!a->id.node_id) {
		reply_error(c, id, "this node is not part of a swarm");
		return;
	}
	session_stop(a);
	taskmgr_assign(a->tm, NULL, 0); /* stop and remove every task */
	char *p = xasprintf("%s/identity.json", a->node_dir);
	unlink(p);
	free(p);
	identity_clear(a);
	log_info("agent, left the swarm");
	reply_json(c, id, "{}");
}

static int local_frame(struct conn *c, const uint8_t *buf, size_t len)
{
	struct agent *a = local_agent;
	Swarm__LocalRequest *req = swarm__local_request__unpack(NULL, len, buf);
	if (!req) {
		log_warn("local, undecodable request from %s; closing", conn_peer_name(c));
		return -EPROTO;
	}
	char *json = NULL;
	int r;
	switch (req->body_case) {
	case SWARM__LOCAL_REQUEST__BODY_JOIN: {
		struct pending *p = pending_new(a, c, req->id);
		session_join(a, req->join->token, req->join->manager, req->join->advertise_addr,
			     req->join->data_path_addr, pending_done, p);
		break;
	}
	case SWARM__LOCAL_REQUEST__BODY_LEAVE:
		do_leave(a, c, req->id, req->leave->force);
		break;
	case SWARM__LOCAL_REQUEST__BODY_STATUS:
		json = status_json(a);
		reply_json(c, req->id, json);
		break;
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_LS:
		json = taskmgr_container_ls_json(a->tm);
		reply_json(c, req->id, json);
		break;
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_INSPECT:
		r = taskmgr_container_inspect_json(a->tm, req->container_inspect->name, &json);
		if (r == -ENOENT)
			reply_error(c, req->id, "no such container");
		else if (r == -EEXIST)
			reply_error(c, req->id, "container name is ambiguous");
		else if (r < 0)
			reply_error(c, req->id, strerror(-r));
		else
			reply_json(c, req->id, json);
		break;
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_EXEC: {
		char *cid = NULL;
		r = taskmgr_container_lookup(a->tm, req->container_exec->name, &cid);
		if (r < 0) {
			reply_error(c, req->id, r == -EEXIST ? "container name is ambiguous" : "no such container");
			break;
		}
		struct json_object *j = json_object_new_object();
		json_object_object_add(j, "ContainerID", json_object_new_string(cid));
		json_object_object_add(j, "RuncRoot", json_object_new_string(a->runc_root));
		json_object_object_add(j, "Runc", json_object_new_string(a->runc_path));
		reply_json(c, req->id, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		free(cid);
		break;
	}
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_LOGS: {
		char *path = NULL, *text = NULL;
		size_t n = 0;
		r = taskmgr_container_log_path(a->tm, req->container_logs->name, &path);
		if (r == 0) {
			r = file_read_all(path, LOG_MAX, &text, &n);
			if (r == -EFBIG)
				r = 0; /* too big: say so rather than fail */
		}
		if (r < 0) {
			reply_error(c, req->id, r == -ENOENT ? "no such container" : strerror(-r));
		} else {
			Swarm__LocalResponse resp = SWARM__LOCAL_RESPONSE__INIT;
			resp.id = req->id;
			resp.text = text ? text : "(log larger than 16 MiB; read the file)\n";
			reply(c, &resp);
		}
		free(path);
		free(text);
		break;
	}
	case SWARM__LOCAL_REQUEST__BODY_IMAGE_LOAD: {
		struct pending *p = pending_new(a, c, req->id);
		p->images = true;
		const char *name = req->image_load->name[0] ? req->image_load->name : NULL;
		r = images_load(a->images, req->image_load->path, name, pending_done, p);
		if (r < 0) {
			p->images = false;
			pending_done(r, "cannot load the image", p);
		}
		break;
	}
	case SWARM__LOCAL_REQUEST__BODY_IMAGE_LS:
		json = images_list_json(a->images);
		reply_json(c, req->id, json);
		break;
	default:
		reply_error(c, req->id, "unknown request");
	}
	free(json);
	swarm__local_request__free_unpacked(req, NULL);
	return 0;
}

static void local_close(struct conn *c, int err)
{
	struct client *cl = conn_data(c);
	cl->c = NULL;
	client_unref(cl);
}

static const struct conn_ops local_ops = { .on_frame = local_frame, .on_close = local_close };

static void local_accept(struct listener *l, struct conn *c, void *data)
{
	struct client *cl = xcalloc(1, sizeof(*cl));
	cl->c = c;
	cl->refs = 1;
	conn_set_data(c, cl);
}

int local_listen(struct agent *a)
{
	char path[PATH_MAX];
	local_agent = a;
	snprintf(path, sizeof(path), "%s/agent.sock", a->run_dir);
	local_l = listener_unix(a->loop, path, LOCAL_MAX_FRAME, &local_ops, local_accept, a);
	return local_l ? 0 : -EADDRINUSE;
}

void local_stop(struct agent *a)
{
	listener_free(local_l);
	local_l = NULL;
}
