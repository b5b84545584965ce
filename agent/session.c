/* The agent's side of the dispatcher protocol: joining with a token (CA
 * pinned by the token's digest), the mutual-TLS session, heartbeats, status
 * reports, assignments and certificate renewal. */
#include "agent.h"
#include "ca.h"
#include "conn.h"
#include "dispatcher.pb-c.h"
#include "log.h"
#include "pb.h"
#include "tls.h"
#include "token.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define SESSION_MAX_FRAME (64u << 20)

/* ---- join ---- */

struct join_op {
	struct agent *a;
	struct conn *c;
	SSL_CTX *ctx;
	char *token, *manager, *advertise, *data_path;
	char *key, *csr, *ca;
	char digest[TOKEN_DIGEST_LEN + 1];
	join_done_fn done;
	void *arg;
	bool finished;
};

static void join_finish(struct join_op *op, int err, const char *msg)
{
	if (op->finished)
		return;
	op->finished = true;
	op->done(err, msg, op->arg);
}

static int match_digest(const char *pem, size_t len, void *arg)
{
	struct join_op *op = arg;
	return token_ca_matches(op->digest, pem, len);
}

static void local_addr_of(struct conn *c, char *out, size_t len)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	out[0] = '\0';
	if (getsockname(conn_fd(c), (struct sockaddr *)&sin, &sl) == 0)
		inet_ntop(AF_INET, &sin.sin_addr, out, (socklen_t)len);
}

static int join_ready(struct conn *c)
{
	struct join_op *op = conn_data(c);
	op->ca = tls_peer_find_ca(conn_ssl(c), match_digest, op);
	if (!op->ca) {
		join_finish(op, -EACCES, "the manager's CA does not match the join token");
		return -EACCES;
	}
	char local[64];
	if (!op->advertise[0]) {
		/* The address we reach the manager from is the one it can
		 * reach us on. */
		local_addr_of(c, local, sizeof(local));
		free(op->advertise);
		op->advertise = xstrdup(local);
	}
	Swarm__JoinRequest jr = SWARM__JOIN_REQUEST__INIT;
	jr.token = op->token;
	jr.hostname = op->a->hostname;
	jr.addr = op->advertise;
	jr.data_path_addr = op->data_path[0] ? op->data_path : op->advertise;
	jr.csr.data = (uint8_t *)op->csr;
	jr.csr.len = strlen(op->csr) + 1;
	Swarm__AgentMessage msg = SWARM__AGENT_MESSAGE__INIT;
	msg.id = 1;
	msg.body_case = SWARM__AGENT_MESSAGE__BODY_JOIN;
	msg.join = &jr;
	return conn_send_msg(c, &msg.base);
}

static int join_frame(struct conn *c, const uint8_t *buf, size_t len)
{
	struct join_op *op = conn_data(c);
	struct agent *a = op->a;
	Swarm__ManagerMessage *msg = swarm__manager_message__unpack(NULL, len, buf);
	if (!msg) {
		join_finish(op, -EPROTO, "the manager sent an undecodable answer");
		return -EPROTO;
	}
	if (msg->error[0]) {
		join_finish(op, -EACCES, msg->error);
	} else if (msg->body_case == SWARM__MANAGER_MESSAGE__BODY_JOIN && msg->join->cert.data) {
		Swarm__JoinResponse *jr = msg->join;
		identity_clear(a);
		a->id.node_id = xstrdup(jr->node_id);
		a->id.role = xstrdup(jr->role);
		a->id.cluster_id = xstrdup(jr->cluster_id);
		a->id.cert = xstrndup((const char *)jr->cert.data, jr->cert.len);
		a->id.key = op->key;
		op->key = NULL;
		a->id.ca = op->ca;
		op->ca = NULL;
		a->id.managers = xcalloc(2, sizeof(char *));
		a->id.managers[0] = xstrdup(op->manager);
		a->id.n_managers = 1;
		a->id.advertise_addr = xstrdup(op->advertise);
		a->id.data_path_addr = xstrdup(op->data_path[0] ? op->data_path : op->advertise);
		int r = identity_save(a);
		if (r < 0) {
			join_finish(op, r, "cannot save the node identity");
		} else {
			char *json = xasprintf("{\"NodeID\":\"%s\",\"Role\":\"%s\"}", jr->node_id, jr->role);
			log_info("agent, joined the swarm as node %s (%s)", jr->node_id, jr->role);
			join_finish(op, 0, json);
			free(json);
			session_start(a);
		}
	} else {
		join_finish(op, -EPROTO, "unexpected answer to the join request");
	}
	swarm__manager_message__free_unpacked(msg, NULL);
	return -ECONNRESET; /* the join connection is done */
}

/* Frees a join operation and everything it holds; NULL is a no-op. */
static void join_op_free(struct join_op *op)
{
	if (!op)
		return;
	SSL_CTX_free(op->ctx);
	free(op->token);
	free(op->manager);
	free(op->advertise);
	free(op->data_path);
	free(op->key);
	free(op->csr);
	free(op->ca);
	free(op);
}

static void join_close(struct conn *c, int err)
{
	struct join_op *op = conn_data(c);
	join_finish(op, err ? err : -ECONNRESET,
		    err == -EPROTO ? "TLS handshake with the manager failed"
				   : "could not reach the manager");
	join_op_free(op);
}

static const struct conn_ops join_ops = {
	.on_frame = join_frame,
	.on_ready = join_ready,
	.on_close = join_close,
};

int session_join(struct agent *a, const char *token, const char *manager,
		 const char *advertise, const char *data_path, join_done_fn done, void *arg)
{
	char ip[16];
	uint16_t port = 2377;
	if (a->id.node_id) {
		done(-EEXIST, "this node is already part of a swarm", arg);
		return 0;
	}
	struct join_op *op = xcalloc(1, sizeof(*op));
	char secret[TOKEN_SECRET_LEN + 1];
	if (token_parse(token, op->digest, secret) < 0) {
		free(op);
		done(-EINVAL, "invalid join token", arg);
		return 0;
	}
	if (hostport_parse(manager, ip, &port) < 0) {
		free(op);
		done(-EINVAL, "invalid manager address (want IP[:PORT])", arg);
		return 0;
	}
	op->a = a;
	op->done = done;
	op->arg = arg;
	op->token = xstrdup(token);
	op->manager = xasprintf("%s:%u", ip, port);
	op->advertise = xstrdup(advertise ? advertise : "");
	op->data_path = xstrdup(data_path ? data_path : "");
	if (ca_make_key_csr(&op->key, &op->csr) < 0 ||
	    !(op->ctx = tls_client_ctx(NULL, 0, NULL, 0, NULL, 0))) {
		done(-ENOMEM, "cannot make a key", arg);
		join_op_free(op);
		return 0;
	}
	op->c = conn_connect_tcp(a->loop, op->manager, op->ctx, SESSION_MAX_FRAME, &join_ops, op);
	if (!op->c) {
		op->finished = true;
		done(-ECONNREFUSED, "could not connect to the manager", arg);
		join_op_free(op);
	}
	return 0;
}

/* ---- session ---- */

static void flush_statuses(struct agent *a)
{
	if (!a->session || !a->session_open || strmap_count(a->pending) == 0)
		return;
	size_t n = strmap_count(a->pending), i = 0, pos = 0;
	Swarm__TaskStatusUpdate **v = xcalloc(n, sizeof(*v));
	const char *k;
	void *val;
	while (strmap_next(a->pending, &pos, &k, &val))
		v[i++] = val;
	Swarm__TaskStatusBatch b = SWARM__TASK_STATUS_BATCH__INIT;
	b.updates = v;
	b.n_updates = n;
	Swarm__AgentMessage msg = SWARM__AGENT_MESSAGE__INIT;
	msg.body_case = SWARM__AGENT_MESSAGE__BODY_STATUS;
	msg.status = &b;
	if (conn_send_msg(a->session, &msg.base) == 0) {
		for (i = 0; i < n; i++) {
			strmap_del(a->pending, v[i]->task_id);
			pb_free(v[i]);
		}
	}
	free(v);
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	flush_statuses(w->data);
}

void session_report(struct agent *a, const char *task_id, const Swarm__TaskStatus *st)
{
	Swarm__TaskStatusUpdate *u = xmalloc(sizeof(*u));
	swarm__task_status_update__init(u);
	pb_set_str(&u->task_id, task_id);
	u->status = pb_dup(st);
	pb_free(strmap_put(a->pending, task_id, u));
	/* Coalesce a burst of changes into one message. */
	if (!ev_is_active(&a->flush)) {
		ev_timer_set(&a->flush, 0.01, 0);
		ev_timer_start(a->loop, &a->flush);
	}
}

void session_images_changed(struct agent *a)
{
	a->images_gen++;
}

static void send_heartbeat(struct agent *a)
{
	Swarm__Heartbeat hb = SWARM__HEARTBEAT__INIT;
	char **imgs = NULL;
	size_t n = 0;
	if (a->images_gen != a->images_sent_gen) {
		n = images_list(a->images, &imgs);
		hb.images = imgs;
		hb.n_images = n;
		hb.images_changed = true;
	}
	Swarm__AgentMessage msg = SWARM__AGENT_MESSAGE__INIT;
	msg.body_case = SWARM__AGENT_MESSAGE__BODY_HEARTBEAT;
	msg.heartbeat = &hb;
	if (conn_send_msg(a->session, &msg.base) == 0)
		a->images_sent_gen = a->images_gen;
	for (size_t i = 0; i < n; i++)
		free(imgs[i]);
	free(imgs);
}

static void heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent *a = w->data;
	if (a->session && a->session_open)
		send_heartbeat(a);
}

static void renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent *a = w->data;
	if (!a->session || !a->session_open)
		return;
	char *key = NULL, *csr = NULL;
	if (ca_make_key_csr(&key, &csr) < 0)
		return;
	/* The new key is kept aside until the certificate for it arrives. */
	char *p = xasprintf("%s/key.pem.next", a->node_dir);
	file_write_atomic(p, key, strlen(key), 0600);
	free(p);
	Swarm__RenewRequest rr = SWARM__RENEW_REQUEST__INIT;
	rr.csr.data = (uint8_t *)csr;
	rr.csr.len = strlen(csr) + 1;
	Swarm__AgentMessage msg = SWARM__AGENT_MESSAGE__INIT;
	msg.body_case = SWARM__AGENT_MESSAGE__BODY_RENEW;
	msg.renew = &rr;
	conn_send_msg(a->session, &msg.base);
	free(key);
	free(csr);
	/* Try again in an hour if no answer comes. */
	ev_timer_set(&a->renew, 3600.0, 0);
	ev_timer_start(a->loop, &a->renew);
}

static void schedule_renewal(struct agent *a)
{
	int64_t nb, na;
	if (ca_cert_validity(a->id.cert, &nb, &na) < 0)
		return;
	uint32_t r;
	random_bytes(&r, sizeof(r));
	int64_t at = ca_renew_at(nb, na, (double)r / 4294967296.0);
	double in = (double)(at - now_wall_ns()) / 1e9;
	if (in < 1)
		in = 1;
	ev_timer_stop(a->loop, &a->renew);
	ev_timer_set(&a->renew, in, 0);
	ev_timer_start(a->loop, &a->renew);
}

static void node_resources(Swarm__Resources *r)
{
	struct sysinfo si;
	r->nano_cpus = sysconf(_SC_NPROCESSORS_ONLN) * 1000000000LL;
	if (sysinfo(&si) == 0)
		r->memory_bytes = (int64_t)si.totalram * si.mem_unit;
}

static int session_ready(struct conn *c)
{
	struct agent *a = conn_data(c);
	Swarm__SessionOpen so = SWARM__SESSION_OPEN__INIT;
	Swarm__Resources res = SWARM__RESOURCES__INIT;
	node_resources(&res);
	so.hostname = a->hostname;
	so.addr = a->id.advertise_addr;
	so.data_path_addr = a->id.data_path_addr;
	so.resources = &res;
	char **imgs;
	so.n_images = images_list(a->images, &imgs);
	so.images = imgs;
	Swarm__TaskStatusUpdate **st;
	so.n_tasks = taskmgr_statuses(a->tm, &st);
	so.tasks = st;
	Swarm__AgentMessage msg = SWARM__AGENT_MESSAGE__INIT;
	msg.id = 1;
	msg.body_case = SWARM__AGENT_MESSAGE__BODY_SESSION;
	msg.session = &so;
	int r = conn_send_msg(c, &msg.base);
	for (size_t i = 0; i < so.n_images; i++)
		free(imgs[i]);
	free(imgs);
	for (size_t i = 0; i < so.n_tasks; i++)
		pb_free(st[i]);
	free(st);
	a->images_sent_gen = a->images_gen;
	/* What the session carried supersedes pending reports. */
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(a->pending, &pos, &k, &v))
		pb_free(v);
	strmap_free(a->pending);
	a->pending = strmap_new();
	return r;
}

static void on_renewed(struct agent *a, const Swarm__RenewResponse *rr)
{
	char *p = xasprintf("%s/key.pem.next", a->node_dir);
	char *key = NULL;
	if (file_read_all(p, 1 << 20, &key, NULL) < 0 || !rr->cert.data) {
		free(p);
		return;
	}
	unlink(p);
	free(p);
	free(a->id.cert);
	free(a->id.key);
	a->id.cert = xstrndup((const char *)rr->cert.data, rr->cert.len);
	a->id.key = key;
	identity_save(a);
	SSL_CTX *ctx = tls_client_ctx(a->id.cert, strlen(a->id.cert), a->id.key, strlen(a->id.key),
				      a->id.ca, strlen(a->id.ca));
	if (ctx) {
		SSL_CTX_free(a->ctx);
		a->ctx = ctx;
	}
	log_info("agent, certificate renewed");
	schedule_renewal(a);
}

static int session_frame(struct conn *c, const uint8_t *buf, size_t len)
{
	struct agent *a = conn_data(c);
	Swarm__ManagerMessage *msg = swarm__manager_message__unpack(NULL, len, buf);
	if (!msg) {
		log_warn("agent, undecodable message from the manager; reconnecting");
		return -EPROTO;
	}
	int r = 0;
	if (msg->error[0]) {
		log_warn("agent, manager refused: %s", msg->error);
		if (msg->id == 1)
			r = -EACCES;
		goto out;
	}
	switch (msg->body_case) {
	case SWARM__MANAGER_MESSAGE__BODY_SESSION: {
		Swarm__SessionInfo *si = msg->session;
		a->session_open = true;
		a->backoff = 0.5;
		a->hb_period_ms = si->heartbeat_period_ms ? si->heartbeat_period_ms : 5000;
		ev_timer_stop(a->loop, &a->heartbeat);
		ev_timer_set(&a->heartbeat, a->hb_period_ms / 1000.0, a->hb_period_ms / 1000.0);
		ev_timer_start(a->loop, &a->heartbeat);
		if (si->n_managers) {
			bool same = si->n_managers == a->id.n_managers;
			for (size_t i = 0; same && i < si->n_managers; i++)
				same = !strcmp(si->managers[i], a->id.managers[i]);
			if (!same) {
				for (size_t i = 0; i < a->id.n_managers; i++)
					free(a->id.managers[i]);
				free(a->id.managers);
				a->id.managers = xcalloc(si->n_managers + 1, sizeof(char *));
				for (size_t i = 0; i < si->n_managers; i++)
					a->id.managers[i] = xstrdup(si->managers[i]);
				a->id.n_managers = si->n_managers;
				a->mgr_index = 0;
				identity_save(a);
			}
		}
		log_info("agent, session open with %s", conn_peer_name(c));
		schedule_renewal(a);
		flush_statuses(a);
		break;
	}
	case SWARM__MANAGER_MESSAGE__BODY_ASSIGNMENTS:
		a->last_assign_version = (int64_t)msg->assignments->version;
		netdc_configure(a, msg->assignments);
		taskmgr_assign(a->tm, msg->assignments->tasks, msg->assignments->n_tasks);
		break;
	case SWARM__MANAGER_MESSAGE__BODY_HEARTBEAT:
		break;
	case SWARM__MANAGER_MESSAGE__BODY_RENEW:
		on_renewed(a, msg->renew);
		break;
	default:
		log_warn("agent, unexpected message from the manager");
	}
out:
	swarm__manager_message__free_unpacked(msg, NULL);
	return r;
}

static void session_close(struct conn *c, int err)
{
	struct agent *a = conn_data(c);
	if (a->session != c)
		return;
	a->session = NULL;
	a->session_open = false;
	ev_timer_stop(a->loop, &a->heartbeat);
	if (!a->id.node_id)
		return;
	log_info("agent, session with the manager closed; retrying in %.1fs", a->backoff);
	ev_timer_stop(a->loop, &a->reconnect);
	ev_timer_set(&a->reconnect, a->backoff, 0);
	ev_timer_start(a->loop, &a->reconnect);
	a->backoff = a->backoff * 2 > 5 ? 5 : a->backoff * 2;
}

static const struct conn_ops session_ops = {
	.on_frame = session_frame,
	.on_ready = session_ready,
	.on_close = session_close,
};

static void connect_now(struct agent *a)
{
	if (a->session || !a->id.node_id || a->id.n_managers == 0)
		return;
	if (!a->ctx)
		a->ctx = tls_client_ctx(a->id.cert, strlen(a->id.cert), a->id.key, strlen(a->id.key),
					a->id.ca, strlen(a->id.ca));
	if (!a->ctx) {
		log_err("agent, the node certificate cannot be used");
		return;
	}
	const char *addr = a->id.managers[a->mgr_index++ % a->id.n_managers];
	a->session = conn_connect_tcp(a->loop, addr, a->ctx, SESSION_MAX_FRAME, &session_ops, a);
	if (!a->session) {
		ev_timer_stop(a->loop, &a->reconnect);
		ev_timer_set(&a->reconnect, a->backoff, 0);
		ev_timer_start(a->loop, &a->reconnect);
	}
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	connect_now(w->data);
}

void session_init(struct agent *a)
{
	ev_init(&a->reconnect, reconnect_cb);
	ev_init(&a->heartbeat, heartbeat_cb);
	ev_init(&a->renew, renew_cb);
	ev_init(&a->flush, flush_cb);
	a->reconnect.data = a->heartbeat.data = a->renew.data = a->flush.data = a;
	if (!a->pending)
		a->pending = strmap_new();
	a->backoff = 0.5;
}

void session_start(struct agent *a)
{
	a->backoff = 0.5;
	connect_now(a);
}

void session_stop(struct agent *a)
{
	ev_timer_stop(a->loop, &a->reconnect);
	ev_timer_stop(a->loop, &a->heartbeat);
	ev_timer_stop(a->loop, &a->renew);
	ev_timer_stop(a->loop, &a->flush);
	if (a->session) {
		struct conn *c = a->session;
		a->session = NULL;
		a->session_open = false;
		conn_close(c, 0);
	}
	SSL_CTX_free(a->ctx);
	a->ctx = NULL;
}
