#include "dispatcher.h"
#include "ca.h"
#include "conn.h"
#include "dispatcher.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "pb.h"
#include "strmap.h"
#include "tls.h"
#include "token.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#define NS_PER_S 1000000000LL
#define DISPATCH_MAX_FRAME (64u << 20)

struct session {
	struct dispatcher *d;
	struct conn *c;
	char node_id[64];
	char role[32];
	bool authenticated;         /* presented a valid cluster certificate */
	bool open;                  /* SessionOpen done */
	struct session *prev, *next;
};

/* What the dispatcher knows of a node's liveness (memory only). */
struct liveness {
	struct session *s;          /* open session or NULL */
	int64_t last_hb;            /* monotonic ns */
	int64_t lost_at;            /* monotonic ns the session closed */
};

struct dispatcher {
	struct mgr *m;
	struct listener *l;
	struct session *sessions;
	struct strmap *live;        /* node id -> struct liveness */
	ev_timer check;
	int64_t started;
	struct metric *m_sessions, *m_joins, *m_refused, *m_down, *m_bad_frames;
};

static const struct conn_ops dispatch_ops;

static struct liveness *live_get(struct dispatcher *d, const char *node_id)
{
	struct liveness *l = strmap_get(d->live, node_id);
	if (!l) {
		l = xcalloc(1, sizeof(*l));
		l->lost_at = d->started;
		strmap_put(d->live, node_id, l);
	}
	return l;
}

static int send_error(struct conn *c, uint64_t id, const char *msg)
{
	Swarm__ManagerMessage out = SWARM__MANAGER_MESSAGE__INIT;
	out.id = id;
	out.error = (char *)msg;
	return conn_send_msg(c, &out.base);
}

static int set_node_state(struct mgr *m, const char *node_id, Swarm__NodeState st, const char *msg)
{
	const Swarm__Node *n = store_node(m->store, node_id);
	if (!n || (n->state == st && !strcmp(n->state_message, msg)))
		return 0;
	Swarm__Node *c = pb_dup(n);
	c->state = st;
	pb_set_str(&c->state_message, msg);
	c->updated_at = now_wall_ns();
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_node(tx, c);
	int r = store_tx_commit(tx);
	mgr_schedule_tick(m);
	return r;
}

int dispatcher_admit(struct mgr *m, const Swarm__JoinRequest *req, int64_t now,
		     Swarm__JoinResponse *resp, char *err, size_t errlen)
{
	const Swarm__Cluster *cl = store_cluster(m->store);
	char digest[TOKEN_DIGEST_LEN + 1], secret[TOKEN_SECRET_LEN + 1];
	if (!cl) {
		snprintf(err, errlen, "this manager is not part of a swarm");
		return -EINVAL;
	}
	if (token_parse(req->token, digest, secret) < 0) {
		snprintf(err, errlen, "invalid join token");
		return -EINVAL;
	}
	if (!token_ca_matches(digest, (const char *)cl->ca_cert.data, cl->ca_cert.len)) {
		snprintf(err, errlen, "join token does not match this cluster's CA");
		return -EACCES;
	}
	const char *role;
	if (strlen(cl->worker_secret) == TOKEN_SECRET_LEN &&
	    CRYPTO_memcmp(secret, cl->worker_secret, TOKEN_SECRET_LEN) == 0)
		role = "worker";
	else if (strlen(cl->manager_secret) == TOKEN_SECRET_LEN &&
		 CRYPTO_memcmp(secret, cl->manager_secret, TOKEN_SECRET_LEN) == 0)
		role = "manager";
	else {
		snprintf(err, errlen, "invalid join token (rotated or wrong)");
		return -EACCES;
	}
	if (!req->hostname[0] || strlen(req->hostname) > 253) {
		snprintf(err, errlen, "a hostname is required");
		return -EINVAL;
	}
	char id[26];
	id_random(id);
	char *cert = NULL;
	int64_t life = cl->cert_lifetime_ns ? cl->cert_lifetime_ns : CA_NODE_LIFETIME_NS;
	int r = ca_issue((const char *)cl->ca_cert.data, (const char *)cl->ca_key.data,
			 (const char *)req->csr.data, id,
			 !strcmp(role, "manager") ? "swarm-manager" : "swarm-worker", cl->id,
			 now, life, &cert);
	if (r < 0) {
		snprintf(err, errlen, "invalid certificate request");
		return -EINVAL;
	}
	Swarm__Node *n = xmalloc(sizeof(*n));
	swarm__node__init(n);
	pb_set_str(&n->id, id);
	pb_set_str(&n->hostname, req->hostname);
	pb_set_str(&n->role, role);
	pb_set_str(&n->availability, "active");
	pb_set_str(&n->addr, req->addr);
	pb_set_str(&n->data_path_addr, req->data_path_addr[0] ? req->data_path_addr : req->addr);
	n->state = SWARM__NODE_STATE__NODE_UNKNOWN;
	n->created_at = n->updated_at = now;
	char serial[80];
	if (ca_cert_serial(cert, serial, sizeof(serial)) == 0)
		pb_set_str(&n->cert_serial, serial);
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_node(tx, n);
	r = store_tx_commit(tx);
	if (r < 0) {
		free(cert);
		snprintf(err, errlen, "cannot record the node: %s", strerror(-r));
		return r;
	}
	pb_set_str(&resp->node_id, id);
	pb_set_str(&resp->role, role);
	resp->cert.data = (uint8_t *)cert;
	resp->cert.len = strlen(cert) + 1;
	resp->ca_cert.data = xmalloc(cl->ca_cert.len);
	memcpy(resp->ca_cert.data, cl->ca_cert.data, cl->ca_cert.len);
	resp->ca_cert.len = cl->ca_cert.len;
	pb_set_str(&resp->cluster_id, cl->id);
	log_info("dispatcher, node %s (%s) joined as %s", id, req->hostname, role);
	return 0;
}

/* Applies reported task states: only for the node's own tasks, only
 * forward (health may change within RUNNING). */
static void apply_statuses(struct dispatcher *d, const char *node_id,
			   Swarm__TaskStatusUpdate *const *u, size_t n)
{
	struct mgr *m = d->m;
	struct store_tx *tx = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!u[i]->status || !u[i]->task_id)
			continue;
		const Swarm__Task *t = store_task(m->store, u[i]->task_id);
		if (!t || strcmp(t->node_id, node_id) != 0)
			continue;
		int old = t->status ? t->status->state : 0;
		int st = u[i]->status->state;
		if (st < old || (st == old && !strcmp(t->status->health, u[i]->status->health) &&
				 t->status->pid == u[i]->status->pid))
			continue;
		if (old > SWARM__TASK_STATE__TASK_RUNNING)
			continue; /* ended is final */
		Swarm__Task *c = pb_dup(t);
		pb_free(c->status);
		c->status = pb_dup(u[i]->status);
		if (!c->status->timestamp)
			c->status->timestamp = now_wall_ns();
		c->updated_at = now_wall_ns();
		if (!tx)
			tx = store_tx_begin(m->store);
		store_tx_put_task(tx, c);
	}
	if (tx) {
		int r = store_tx_commit(tx);
		if (r < 0)
			log_err("dispatcher, status commit failed: %s", strerror(-r));
		mgr_schedule_tick(m);
	}
}

static void send_session_info(struct session *s, uint64_t id)
{
	struct mgr *m = s->d->m;
	const Swarm__Cluster *cl = store_cluster(m->store);
	Swarm__SessionInfo si = SWARM__SESSION_INFO__INIT;
	char sid[26];
	id_random(sid);
	si.session_id = sid;
	si.node_id = s->node_id;
	si.cluster_id = cl->id;
	si.heartbeat_period_ms = (uint32_t)(m->heartbeat_period_ns / 1000000);
	char *mgrs[1] = { cl->listen_addr };
	char buf[64];
	if (cl->advertise_addr[0] && strchr(cl->listen_addr, ':')) {
		snprintf(buf, sizeof(buf), "%s:%s", cl->advertise_addr, strchr(cl->listen_addr, ':') + 1);
		mgrs[0] = buf;
	}
	si.managers = mgrs;
	si.n_managers = 1;
	si.gossip_keys = cl->gossip_keys;
	si.n_gossip_keys = cl->n_gossip_keys;
	Swarm__ManagerMessage out = SWARM__MANAGER_MESSAGE__INIT;
	out.id = id;
	out.body_case = SWARM__MANAGER_MESSAGE__BODY_SESSION;
	out.session = &si;
	conn_send_msg(s->c, &out.base);
}

static void on_session_open(struct session *s, uint64_t id, const Swarm__SessionOpen *so)
{
	struct dispatcher *d = s->d;
	struct mgr *m = d->m;
	const Swarm__Node *n = store_node(m->store, s->node_id);
	if (!n) {
		send_error(s->c, id, "node is not a member of this swarm (removed?)");
		conn_close(s->c, -EACCES);
		return;
	}
	struct liveness *l = live_get(d, s->node_id);
	if (l->s && l->s != s) {
		/* A newer session replaces an older one. */
		struct session *old = l->s;
		l->s = NULL;
		old->open = false;
		conn_close(old->c, 0);
	}
	l->s = s;
	l->last_hb = now_mono_ns();
	s->open = true;

	Swarm__Node *c = pb_dup(n);
	if (so->hostname[0])
		pb_set_str(&c->hostname, so->hostname);
	if (so->addr[0])
		pb_set_str(&c->addr, so->addr);
	if (so->data_path_addr[0])
		pb_set_str(&c->data_path_addr, so->data_path_addr);
	if (so->resources) {
		pb_free(c->resources);
		c->resources = pb_dup(so->resources);
	}
	pb_strv_clear(&c->images, &c->n_images);
	for (size_t i = 0; i < so->n_images; i++)
		PB_STRV_ADD(c, images, so->images[i]);
	c->state = SWARM__NODE_STATE__NODE_READY;
	pb_set_str(&c->state_message, "");
	c->updated_at = now_wall_ns();
	const Swarm__Network *ing = mgr_ingress(m);
	char err[256];
	if (ing && allocator_node_attach(m->alloc, c, ing, err, sizeof(err)) < 0)
		log_warn("allocator, node %s on ingress: %s", c->hostname, err);
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_node(tx, c);
	int r = store_tx_commit(tx);
	if (r < 0) {
		send_error(s->c, id, "cannot record the session");
		conn_close(s->c, r);
		return;
	}
	log_info("dispatcher, node %s (%s) session open from %s", s->node_id,
		 store_node(m->store, s->node_id)->hostname, conn_peer_name(s->c));
	apply_statuses(d, s->node_id, so->tasks, so->n_tasks);
	send_session_info(s, id);
	mgr_node_dirty(m, s->node_id);
	mgr_schedule_tick(m);
	dispatcher_push(d);
}

static void on_heartbeat(struct session *s, uint64_t id, const Swarm__Heartbeat *hb)
{
	struct mgr *m = s->d->m;
	struct liveness *l = live_get(s->d, s->node_id);
	l->last_hb = now_mono_ns();
	const Swarm__Node *n = store_node(m->store, s->node_id);
	if (n && (hb->images_changed || n->state != SWARM__NODE_STATE__NODE_READY)) {
		Swarm__Node *c = pb_dup(n);
		if (hb->images_changed) {
			pb_strv_clear(&c->images, &c->n_images);
			for (size_t i = 0; i < hb->n_images; i++)
				PB_STRV_ADD(c, images, hb->images[i]);
		}
		c->state = SWARM__NODE_STATE__NODE_READY;
		pb_set_str(&c->state_message, "");
		struct store_tx *tx = store_tx_begin(m->store);
		store_tx_put_node(tx, c);
		store_tx_commit(tx);
		mgr_schedule_tick(m);
	}
	Swarm__HeartbeatAck ack = SWARM__HEARTBEAT_ACK__INIT;
	ack.period_ms = (uint32_t)(m->heartbeat_period_ns / 1000000);
	Swarm__ManagerMessage out = SWARM__MANAGER_MESSAGE__INIT;
	out.id = id;
	out.body_case = SWARM__MANAGER_MESSAGE__BODY_HEARTBEAT;
	out.heartbeat = &ack;
	conn_send_msg(s->c, &out.base);
}

static void on_renew(struct session *s, uint64_t id, const Swarm__RenewRequest *rr)
{
	struct mgr *m = s->d->m;
	const Swarm__Cluster *cl = store_cluster(m->store);
	char *cert = NULL;
	int64_t life = cl->cert_lifetime_ns ? cl->cert_lifetime_ns : CA_NODE_LIFETIME_NS;
	const char *ou = !strcmp(s->role, "swarm-manager") ? "swarm-manager" : "swarm-worker";
	if (!rr->csr.data || ca_issue((const char *)cl->ca_cert.data, (const char *)cl->ca_key.data,
				      (const char *)rr->csr.data, s->node_id, ou, cl->id,
				      now_wall_ns(), life, &cert) < 0) {
		send_error(s->c, id, "invalid certificate request");
		return;
	}
	Swarm__RenewResponse resp = SWARM__RENEW_RESPONSE__INIT;
	resp.cert.data = (uint8_t *)cert;
	resp.cert.len = strlen(cert) + 1;
	Swarm__ManagerMessage out = SWARM__MANAGER_MESSAGE__INIT;
	out.id = id;
	out.body_case = SWARM__MANAGER_MESSAGE__BODY_RENEW;
	out.renew = &resp;
	conn_send_msg(s->c, &out.base);
	free(cert);
	log_info("dispatcher, renewed the certificate of node %s", s->node_id);
}

static int dispatch_frame(struct conn *c, const uint8_t *buf, size_t len)
{
	struct session *s = conn_data(c);
	struct dispatcher *d = s->d;
	Swarm__AgentMessage *msg = swarm__agent_message__unpack(NULL, len, buf);
	if (!msg) {
		metric_inc(d->m_bad_frames);
		log_warn("dispatcher, undecodable message from %s; closing", conn_peer_name(c));
		return -EPROTO;
	}
	int r = 0;
	if (msg->body_case == SWARM__AGENT_MESSAGE__BODY_JOIN) {
		Swarm__JoinResponse jr = SWARM__JOIN_RESPONSE__INIT;
		char err[256] = "";
		if (dispatcher_admit(d->m, msg->join, now_wall_ns(), &jr, err, sizeof(err)) < 0) {
			metric_inc(d->m_refused);
			log_warn("dispatcher, join from %s refused: %s", conn_peer_name(c), err);
			send_error(c, msg->id, err);
			conn_close(c, 0);
		} else {
			metric_inc(d->m_joins);
			Swarm__ManagerMessage out = SWARM__MANAGER_MESSAGE__INIT;
			out.id = msg->id;
			out.body_case = SWARM__MANAGER_MESSAGE__BODY_JOIN;
			out.join = &jr;
			conn_send_msg(c, &out.base);
			free(jr.cert.data);
			free(jr.ca_cert.data);
			pb_set_str(&jr.node_id, NULL);
			pb_set_str(&jr.role, NULL);
			pb_set_str(&jr.cluster_id, NULL);
		}
		goto out;
	}
	/* Any message on an open session shows the node is alive, not only
	 * heartbeats: a busy agent's reports must not get it declared Down. */
	if (s->open)
		live_get(d, s->node_id)->last_hb = now_mono_ns();
	if (!s->authenticated) {
		metric_inc(d->m_refused);
		log_warn("dispatcher, %s has no cluster certificate; refused", conn_peer_name(c));
		send_error(c, msg->id, "a cluster certificate is required");
		r = -EACCES;
		goto out;
	}
	switch (msg->body_case) {
	case SWARM__AGENT_MESSAGE__BODY_SESSION:
		on_session_open(s, msg->id, msg->session);
		break;
	case SWARM__AGENT_MESSAGE__BODY_HEARTBEAT:
		if (!s->open) {
			r = -EPROTO;
			break;
		}
		on_heartbeat(s, msg->id, msg->heartbeat);
		break;
	case SWARM__AGENT_MESSAGE__BODY_STATUS:
		if (!s->open) {
			r = -EPROTO;
			break;
		}
		apply_statuses(d, s->node_id, msg->status->updates, msg->status->n_updates);
		break;
	case SWARM__AGENT_MESSAGE__BODY_RENEW:
		on_renew(s, msg->id, msg->renew);
		break;
	default:
		metric_inc(d->m_bad_frames);
		log_warn("dispatcher, empty or unknown message from %s; closing", conn_peer_name(c));
		r = -EPROTO;
	}
out:
	swarm__agent_message__free_unpacked(msg, NULL);
	return r;
}

static int dispatch_ready(struct conn *c)
{
	struct session *s = conn_data(c);
	const Swarm__Cluster *cl = store_cluster(s->d->m->store);
	char cn[64], ou[32], o[64];
	if (tls_peer_identity(conn_ssl(c), cn, sizeof(cn), ou, sizeof(ou), o, sizeof(o)) == 0 &&
	    cl && !strcmp(o, cl->id)) {
		s->authenticated = true;
		snprintf(s->node_id, sizeof(s->node_id), "%s", cn);
		snprintf(s->role, sizeof(s->role), "%s", ou);
	}
	return 0;
}

static void dispatch_close(struct conn *c, int err)
{
	struct session *s = conn_data(c);
	struct dispatcher *d = s->d;
	if (s->open) {
		struct liveness *l = live_get(d, s->node_id);
		if (l->s == s) {
			l->s = NULL;
			l->lost_at = now_mono_ns();
			log_info("dispatcher, node %s session closed", s->node_id);
		}
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
	metric_set(d->m_sessions, (double)dispatcher_sessions(d));
}

static const struct conn_ops dispatch_ops = {
	.on_frame = dispatch_frame,
	.on_ready = dispatch_ready,
	.on_close = dispatch_close,
};

static void dispatch_accept(struct listener *l, struct conn *c, void *data)
{
	struct dispatcher *d = data;
	struct session *s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->c = c;
	s->next = d->sessions;
	if (d->sessions)
		d->sessions->prev = s;
	d->sessions = s;
	conn_set_data(c, s);
}

/* Every second: nodes whose heartbeats stopped, or whose session closed
 * and did not come back within the grace, are Down. */
static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dispatcher *d = w->data;
	struct mgr *m = d->m;
	int64_t now = now_mono_ns();
	const Swarm__Node *const *nodes;
	size_t n = store_nodes(m->store, &nodes);
	char **down = NULL;
	size_t n_down = 0;
	for (size_t i = 0; i < n; i++) {
		if (nodes[i]->state == SWARM__NODE_STATE__NODE_DOWN)
			continue;
		struct liveness *l = live_get(d, nodes[i]->id);
		bool dead;
		if (l->s)
			dead = now - l->last_hb > 3 * m->heartbeat_period_ns;
		else if (l->lost_at == d->started)
			dead = now - l->lost_at > 3 * m->heartbeat_period_ns; /* manager restart */
		else
			dead = now - l->lost_at > m->down_grace_ns;
		if (dead && nodes[i]->state != SWARM__NODE_STATE__NODE_UNKNOWN) {
			down = xrealloc(down, (n_down + 1) * sizeof(*down));
			down[n_down++] = xstrdup(nodes[i]->id);
		}
	}
	for (size_t i = 0; i < n_down; i++) {
		log_warn("dispatcher, node %s is down (%s)", down[i],
			 live_get(d, down[i])->s ? "heartbeat failure" : "session lost");
		metric_inc(d->m_down);
		set_node_state(m, down[i], SWARM__NODE_STATE__NODE_DOWN, "heartbeat failure");
		free(down[i]);
	}
	free(down);
}

struct dispatcher *dispatcher_new(struct mgr *m)
{
	struct dispatcher *d = xcalloc(1, sizeof(*d));
	d->m = m;
	d->live = strmap_new();
	d->started = now_mono_ns();
	d->m_sessions = metric_gauge("swarm_dispatcher_sessions", "Agent sessions open", NULL);
	d->m_joins = metric_counter("swarm_dispatcher_joins_total", "Nodes admitted", NULL);
	d->m_refused = metric_counter("swarm_dispatcher_refused_total", "Requests refused (token, certificate)", NULL);
	d->m_down = metric_counter("swarm_dispatcher_nodes_down_total", "Nodes declared down", NULL);
	d->m_bad_frames = metric_counter("swarm_dispatcher_bad_messages_total", "Undecodable messages", NULL);
	if (m->loop) {
		ev_timer_init(&d->check, check_cb, 1.0, 1.0);
		d->check.data = d;
		ev_timer_start(m->loop, &d->check);
	}
	m->disp = d;
	return d;
}

void dispatcher_free(struct dispatcher *d)
{
	if (!d)
		return;
	if (d->m->loop)
		ev_timer_stop(d->m->loop, &d->check);
	listener_free(d->l);
	while (d->sessions)
		conn_close(d->sessions->c, 0); /* dispatch_close unlinks */
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(d->live, &pos, &k, &v))
		free(v);
	strmap_free(d->live);
	d->m->disp = NULL;
	free(d);
}

int dispatcher_listen(struct dispatcher *d, const char *addr, SSL_CTX *ctx)
{
	listener_free(d->l);
	d->l = listener_tcp(d->m->loop, addr, ctx, DISPATCH_MAX_FRAME, &dispatch_ops, dispatch_accept, d);
	if (!d->l)
		return -EADDRNOTAVAIL;
	log_info("dispatcher, listening on %s", addr);
	return 0;
}

void dispatcher_set_ctx(struct dispatcher *d, SSL_CTX *ctx)
{
	if (d->l)
		listener_set_ctx(d->l, ctx);
}

size_t dispatcher_sessions(const struct dispatcher *d)
{
	size_t n = 0;
	for (struct session *s = d->sessions; s; s = s->next)
		if (s->open)
			n++;
	return n;
}

/* A task belongs in its node's assignment set while it should run or has
 * not yet stopped. */
static bool assigned(const Swarm__Task *t)
{
	return t->node_id[0] && (t->desired_state <= SWARM__TASK_STATE__TASK_RUNNING || !task_terminal(t)) &&
	       t->status && t->status->state >= SWARM__TASK_STATE__TASK_ASSIGNED;
}

struct nodeset {
	const Swarm__Task **tasks;
	size_t n, cap;
};

static void send_assignments(struct dispatcher *d, struct session *s, struct nodeset *ns)
{
	struct mgr *m = d->m;
	Swarm__Assignments a = SWARM__ASSIGNMENTS__INIT;
	a.version = store_version(m->store);
	a.tasks = (Swarm__Task **)ns->tasks;
	a.n_tasks = ns->n;
	/* Networks of those tasks, plus ingress: at most every network once. */
	const Swarm__Network *const *all_nets;
	size_t cap = store_networks(m->store, &all_nets) + 1;
	const Swarm__Network **nets = xcalloc(cap, sizeof(*nets));
	size_t nn = 0;
	const Swarm__Network *ing = mgr_ingress(m);
	if (ing)
		nets[nn++] = ing;
	for (size_t i = 0; i < ns->n; i++)
		for (size_t j = 0; j < ns->tasks[i]->n_networks && nn < cap; j++) {
			const Swarm__Network *net = store_network(m->store, ns->tasks[i]->networks[j]->network_id);
			bool dup = false;
			for (size_t k = 0; k < nn && !dup; k++)
				dup = nets[k] == net;
			if (net && !dup)
				nets[nn++] = net;
		}
	a.networks = (Swarm__Network **)nets;
	a.n_networks = nn;
	/* The VIPs of those tasks' services, each service once. */
	Swarm__ServiceEndpoint *eps = xcalloc(ns->n + 1, sizeof(*eps));
	Swarm__ServiceEndpoint **epp = xcalloc(ns->n + 1, sizeof(*epp));
	size_t ne = 0;
	for (size_t i = 0; i < ns->n; i++) {
		const Swarm__Service *svc = store_service(m->store, ns->tasks[i]->service_id);
		bool dup = false;
		for (size_t k = 0; k < ne && !dup; k++)
			dup = !strcmp(eps[k].service_id, ns->tasks[i]->service_id);
		if (!svc || !svc->n_vips || dup)
			continue;
		swarm__service_endpoint__init(&eps[ne]);
		eps[ne].service_id = svc->id;
		eps[ne].vips = svc->vips;
		eps[ne].n_vips = svc->n_vips;
		epp[ne] = &eps[ne];
		ne++;
	}
	a.services = epp;
	a.n_services = ne;
	const Swarm__Cluster *cl = store_cluster(m->store);
	if (cl) {
		a.gossip_keys = cl->gossip_keys;
		a.n_gossip_keys = cl->n_gossip_keys;
		a.data_path_port = cl->data_path_port;
		a.network_keys = cl->network_keys;
		a.n_network_keys = cl->n_network_keys;
	}
	const Swarm__Node *self = store_node(m->store, s->node_id);
	if (self) {
		a.node_attachments = self->attachments;
		a.n_node_attachments = self->n_attachments;
	}
	const Swarm__Node *const *nodes;
	size_t n_nodes = store_nodes(m->store, &nodes);
	char **peers = xcalloc(n_nodes + 1, sizeof(*peers));
	size_t np = 0;
	for (size_t i = 0; i < n_nodes; i++)
		if (strcmp(nodes[i]->id, s->node_id) && nodes[i]->addr[0] &&
		    nodes[i]->state != SWARM__NODE_STATE__NODE_DOWN)
			peers[np++] = nodes[i]->addr;
	a.peers = peers;
	a.n_peers = np;
	Swarm__ManagerMessage out = SWARM__MANAGER_MESSAGE__INIT;
	out.body_case = SWARM__MANAGER_MESSAGE__BODY_ASSIGNMENTS;
	out.assignments = &a;
	conn_send_msg(s->c, &out.base);
	free(nets);
	free(peers);
	free(eps);
	free(epp);
}

void dispatcher_push(struct dispatcher *d)
{
	struct mgr *m = d->m;
	if (strmap_count(m->dirty) == 0)
		return;
	struct strmap *want = strmap_new();
	for (struct session *s = d->sessions; s; s = s->next) {
		if (!s->open)
			continue;
		if (mgr_node_is_dirty(m, s->node_id))
			strmap_put(want, s->node_id, xcalloc(1, sizeof(struct nodeset)));
	}
	if (strmap_count(want)) {
		const Swarm__Task *const *tasks;
		size_t nt = store_tasks(m->store, &tasks);
		for (size_t i = 0; i < nt; i++) {
			if (!assigned(tasks[i]))
				continue;
			struct nodeset *ns = strmap_get(want, tasks[i]->node_id);
			if (!ns)
				continue;
			if (ns->n == ns->cap) {
				ns->cap = ns->cap ? ns->cap * 2 : 16;
				ns->tasks = xrealloc(ns->tasks, ns->cap * sizeof(*ns->tasks));
			}
			ns->tasks[ns->n++] = tasks[i];
		}
		for (struct session *s = d->sessions; s; s = s->next) {
			struct nodeset *ns = s->open ? strmap_get(want, s->node_id) : NULL;
			if (ns)
				send_assignments(d, s, ns);
		}
	}
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(want, &pos, &k, &v)) {
		free(((struct nodeset *)v)->tasks);
		free(v);
	}
	strmap_free(want);
	mgr_dirty_clear(m);
}
