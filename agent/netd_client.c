/* The agent's side of netd's local socket (proto/netd.proto): it hands
 * netd the node's membership config (from the session and assignments)
 * and attaches/detaches task sandboxes on taskmgr's sandbox hook.
 *
 * One connection, re-made every second while down. What netd must know
 * is kept here (the last config, every attachment) and sent again whole
 * after a reconnect, so a restarted netd is brought up to date even
 * without its state file. An attach waits for netd's answer before the
 * container starts; one that cannot be delivered within NETDC_TIMEOUT
 * fails the task ("swarm-netd is not reachable"). */
#include "agent.h"
#include "netns.h"
#include "netkeys.h"

#include "conn.h"
#include "log.h"
#include "netd.pb-c.h"
#include "pb.h"
#include "strmap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NETDC_MAX_FRAME (16u << 20)
#define NETDC_RETRY 1.0
#define NETDC_TIMEOUT_NS (30 * 1000000000LL)

/* One attachment as netd knows it, plus whether netd has confirmed it. */
struct netdc_att {
	Swarm__NetdAttach *msg;
	uint64_t req_id;          /* outstanding attach, 0 = none */
	bool waiting;             /* taskmgr waits for the answer */
	bool stopping;            /* told to stop: serves no more */
	int64_t since;            /* when the wait started */
};

static struct {
	struct agent *a;
	char *path;
	struct conn *c;
	ev_timer retry;
	Swarm__NetdConfig *conf;
	Swarm__Assignments *asg;    /* the last assignments' .services and .networks only */
	struct strmap *atts;      /* task id -> struct netdc_att* */
	struct strmap *detaches;  /* task ids to detach once netd is back */
	uint64_t next_id;
} D;

static void netdc_send_attach(struct netdc_att *t);
static void att_free(struct netdc_att *t);
static void send_detach(const char *task_id);
static Swarm__NetdAttach *attach_from_task(const Swarm__Task *t, const char *netns);

static void send_req(Swarm__NetdRequest *q)
{
	if (!D.c)
		return;
	q->id = ++D.next_id;
	conn_send_msg(D.c, &q->base);
}

static void send_detach(const char *task_id)
{
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	Swarm__NetdDetach d = SWARM__NETD_DETACH__INIT;
	d.task_id = (char *)task_id;
	q.body_case = SWARM__NETD_REQUEST__BODY_DETACH;
	q.detach = &d;
	send_req(&q);
}

static void send_config(void)
{
	if (!D.conf || !D.c)
		return;
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	q.body_case = SWARM__NETD_REQUEST__BODY_CONFIGURE;
	q.configure = D.conf;
	send_req(&q);
}

static void netdc_send_attach(struct netdc_att *t)
{
	if (!D.c)
		return;
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	q.body_case = SWARM__NETD_REQUEST__BODY_ATTACH;
	q.attach = t->msg;
	send_req(&q);
	t->req_id = q.id;
}

/* The task is told the outcome once. */
static void att_answer(struct netdc_att *t, int err, const char *why)
{
	if (!t->waiting)
		return;
	t->waiting = false;
	if (err)
		log_warn("agent, sandbox of task %s not attached: %s", t->msg->task_id, why);
	taskmgr_sandbox_ready(D.a->tm, t->msg->task_id, err);
}

static int on_frame(struct conn *c, const uint8_t *p, size_t len)
{
	(void)c;
	Swarm__NetdResponse *r = swarm__netd_response__unpack(NULL, len, p);
	if (!r) {
		log_warn("agent, undecodable answer from swarm-netd");
		return -EBADMSG;
	}
	size_t pos = 0;
	const char *k;
	void *v;
	while (r->id && strmap_next(D.atts, &pos, &k, &v)) {
		struct netdc_att *t = v;
		if (t->req_id != r->id)
			continue;
		t->req_id = 0;
		att_answer(t, r->error[0] ? -EINVAL : 0, r->error);
		break;
	}
	if (r->id && r->error[0] && !pos)
		log_warn("agent, swarm-netd refused a request: %s", r->error);
	swarm__netd_response__free_unpacked(r, NULL);
	return 0;
}

static void on_close(struct conn *c, int err)
{
	(void)err;
	if (D.c != c)
		return;
	D.c = NULL;
	log_warn("agent, lost swarm-netd; reconnecting");
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(D.atts, &pos, &k, &v))
		((struct netdc_att *)v)->req_id = 0;
}

static const struct conn_ops netdc_ops = { .on_frame = on_frame, .on_close = on_close };

static int netdc_connect(void)
{
	D.c = conn_connect_unix(D.a->loop, D.path, NETDC_MAX_FRAME, &netdc_ops, NULL);
	if (!D.c)
		return -ENOTCONN;
	conn_set_peer_name(D.c, "swarm-netd");
	log_info("agent, connected to swarm-netd");
	/* everything netd must know, again */
	send_config();
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(D.atts, &pos, &k, &v))
		netdc_send_attach(v);
	pos = 0;
	while (strmap_next(D.detaches, &pos, &k, &v))
		send_detach(k);
	strmap_free(D.detaches);
	D.detaches = strmap_new();
	return 0;
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (!D.c)
		netdc_connect();
	int64_t now = now_mono_ns();
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(D.atts, &pos, &k, &v)) {
		struct netdc_att *t = v;
		if (t->waiting && now - t->since > NETDC_TIMEOUT_NS)
			att_answer(t, -EHOSTUNREACH, "swarm-netd is not reachable");
	}
}

void netdc_init(struct agent *a, const char *socket_path)
{
	D.a = a;
	D.path = xstrdup(socket_path);
	D.atts = strmap_new();
	D.detaches = strmap_new();
	ev_timer_init(&D.retry, retry_cb, NETDC_RETRY, NETDC_RETRY);
	ev_timer_start(a->loop, &D.retry);
	netdc_connect();
}

static void att_free(struct netdc_att *t)
{
	if (!t)
		return;
	pb_free(t->msg);
	free(t);
}

void netdc_stop(void)
{
	if (!D.a)
		return;
	ev_timer_stop(D.a->loop, &D.retry);
	if (D.c) {
		struct conn *c = D.c;
		D.c = NULL;
		conn_close(c, 0);
	}
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(D.atts, &pos, &k, &v))
		att_free(v);
	strmap_free(D.atts);
	D.atts = NULL;
	strmap_free(D.detaches);
	D.detaches = NULL;
	pb_free(D.conf);
	D.conf = NULL;
	pb_free(D.asg);
	D.asg = NULL;
	free(D.path);
	D.path = NULL;
	D.a = NULL;
}

/* The VIP ("IP", no prefix) of service_id on network_id, or NULL. */
static const char *vip_of(const char *service_id, const char *network_id)
{
	for (size_t i = 0; D.asg && i < D.asg->n_services; i++) {
		const Swarm__ServiceEndpoint *se = D.asg->services[i];
		if (strcmp(se->service_id, service_id))
			continue;
		for (size_t j = 0; j < se->n_vips; j++)
			if (!strcmp(se->vips[j]->network_id, network_id))
				return se->vips[j]->addr;
	}
	return NULL;
}

/* The node's ingress sandbox: a namespace of the agent's own, attached by
 * netd to ingress with the node's address there (the allocator's node
 * attachment) and to the gateway bridge like a container. lbd forwards
 * the routing mesh's published ports through it (see lbd/lbd.h). It is
 * an attachment like a task's, re-sent on reconnect, but nothing waits
 * for it. */
static void netdc_ingress(struct agent *a, const Swarm__Assignments *as)
{
	const Swarm__NetworkAttachment *na = NULL;
	for (size_t i = 0; i < as->n_networks && !na; i++) {
		const Swarm__Network *net = as->networks[i];
		if (!net->spec || !net->spec->ingress)
			continue;
		for (size_t j = 0; j < as->n_node_attachments && !na; j++)
			if (!strcmp(as->node_attachments[j]->network_id, net->id))
				na = as->node_attachments[j];
	}
	char *task_id = xasprintf("ingress-sbox-%s", a->id.node_id);
	struct netdc_att *old = strmap_get(D.atts, task_id);
	if (!na || !na->vni || !na->addr[0]) {
		if (old) {
			att_free(strmap_del(D.atts, task_id));
			send_detach(task_id);
		}
		free(task_id);
		return;
	}
	char *netns = xasprintf("%s/ingress_sbox", a->run_dir);
	int r = netns_create(netns);
	if (r < 0) {
		log_err("agent, ingress sandbox %s: %s", netns, strerror(-r));
		goto out;
	}
	Swarm__Task t = SWARM__TASK__INIT;
	Swarm__NetworkAttachment nac = *na;
	Swarm__NetworkAttachment *nets[1] = { &nac };
	t.id = task_id;
	t.name = "ingress-endpoint";
	t.networks = nets;
	t.n_networks = 1;
	if (!nac.network_name[0])
		nac.network_name = "ingress";
	Swarm__NetdAttach *m = attach_from_task(&t, netns);
	m->endpoints[0]->lb_endpoint = true;
	m->endpoints[0]->serving = true;
	if (old && pb_equal(old->msg, m)) {
		pb_free(m);
		goto out;
	}
	struct netdc_att *n = xcalloc(1, sizeof(*n));
	n->msg = m;
	att_free(strmap_put(D.atts, task_id, n));
	log_info("agent, ingress sandbox %s on %s", netns, na->addr);
	netdc_send_attach(n);
out:
	free(netns);
	free(task_id);
}

void netdc_configure(struct agent *a, const Swarm__Assignments *as)
{
	if (!D.a || !a->id.node_id)
		return;
	/* A task told to stop serves no more from now on (DNS, VIPs), not
	 * from when its container has ended, which may take a grace period. */
	for (size_t i = 0; i < as->n_tasks; i++) {
		struct netdc_att *t = strmap_get(D.atts, as->tasks[i]->id);
		if (!t || as->tasks[i]->desired_state <= SWARM__TASK_STATE__TASK_RUNNING)
			continue;
		t->stopping = true;
		bool changed = t->msg->local && t->msg->local->serving;
		if (t->msg->local)
			t->msg->local->serving = false;
		for (size_t j = 0; j < t->msg->n_endpoints; j++) {
			changed = changed || t->msg->endpoints[j]->serving;
			t->msg->endpoints[j]->serving = false;
		}
		if (changed && !t->waiting)
			netdc_send_attach(t);
	}
	Swarm__Assignments only = SWARM__ASSIGNMENTS__INIT;
	only.services = as->services;
	only.n_services = as->n_services;
	only.networks = as->networks;
	only.n_networks = as->n_networks;
	pb_free(D.asg);
	D.asg = pb_dup(&only);
	Swarm__NetdConfig *c = xmalloc(sizeof(*c));
	swarm__netd_config__init(c);
	pb_set_str(&c->node_id, a->id.node_id);
	pb_set_str(&c->advertise_addr, a->id.advertise_addr ? a->id.advertise_addr : "");
	pb_set_str(&c->data_path_addr, a->id.data_path_addr ? a->id.data_path_addr : "");
	c->data_path_port = as->data_path_port;
	for (size_t i = 0; i < as->n_peers; i++)
		PB_STRV_ADD(c, peers, as->peers[i]);
	c->gossip_keys = xcalloc(as->n_gossip_keys + 1, sizeof(*c->gossip_keys));
	for (size_t i = 0; i < as->n_gossip_keys; i++) {
		c->gossip_keys[i].len = as->gossip_keys[i].len;
		c->gossip_keys[i].data = xmalloc(as->gossip_keys[i].len + 1);
		memcpy(c->gossip_keys[i].data, as->gossip_keys[i].data, as->gossip_keys[i].len);
	}
	c->n_gossip_keys = as->n_gossip_keys;
	const Swarm__NetworkKey *dp[8];
	size_t ndp = netkeys_order(as->network_keys, as->n_network_keys, "datapath", dp, 8);
	for (size_t i = 0; i < ndp; i++)
		PB_PTRV_ADD(c, datapath_keys, pb_dup(dp[i]));
	if (D.conf && pb_equal(D.conf, c)) {
		pb_free(c);
	} else {
		pb_free(D.conf);
		D.conf = c;
		send_config();
	}
	netdc_ingress(a, as);
}

/* Whether network_id is an encrypted network, from the last assignments. */
static bool netdc_encrypted(const char *network_id)
{
	for (size_t i = 0; D.asg && i < D.asg->n_networks; i++)
		if (!strcmp(D.asg->networks[i]->id, network_id))
			return D.asg->networks[i]->spec && D.asg->networks[i]->spec->encrypted;
	return false;
}

/* "198.18.0.5/24" -> "198.18.0.5" */
static char *addr_only(const char *cidr)
{
	const char *s = strchr(cidr, '/');
	return s ? xstrndup(cidr, (size_t)(s - cidr)) : xstrdup(cidr);
}

/* The task's published ports into e. */
static void add_ports(Swarm__EndpointRecord *e, const Swarm__Task *t)
{
	for (size_t k = 0; k < t->n_ports; k++) {
		Swarm__EndpointPort *p = xmalloc(sizeof(*p));
		swarm__endpoint_port__init(p);
		p->published = t->ports[k]->published;
		p->target = t->ports[k]->target;
		pb_set_str(&p->protocol, t->ports[k]->protocol);
		pb_set_str(&p->mode, t->ports[k]->mode);
		PB_PTRV_ADD(e, ports, p);
	}
}

static Swarm__NetdAttach *attach_from_task(const Swarm__Task *t, const char *netns)
{
	Swarm__NetdAttach *m = xmalloc(sizeof(*m));
	swarm__netd_attach__init(m);
	pb_set_str(&m->task_id, t->id);
	pb_set_str(&m->netns, netns);
	const Swarm__ServiceSpec *sp = t->spec;
	for (size_t i = 0; i < t->n_networks; i++) {
		const Swarm__NetworkAttachment *na = t->networks[i];
		Swarm__NetdNetwork *nw = xmalloc(sizeof(*nw));
		swarm__netd_network__init(nw);
		pb_set_str(&nw->id, na->network_id);
		pb_set_str(&nw->name, na->network_name);
		nw->vni = na->vni;
		pb_set_str(&nw->subnet, na->subnet);
		pb_set_str(&nw->gateway, na->gateway);
		nw->encrypted = netdc_encrypted(na->network_id);
		PB_PTRV_ADD(m, networks, nw);

		Swarm__EndpointRecord *e = xmalloc(sizeof(*e));
		swarm__endpoint_record__init(e);
		pb_set_str(&e->network_id, na->network_id);
		pb_set_str(&e->network_name, na->network_name);
		pb_set_str(&e->service_id, t->service_id);
		pb_set_str(&e->service_name, t->service_name);
		pb_set_str(&e->endpoint_mode, sp && sp->endpoint_mode[0] ? sp->endpoint_mode : "vip");
		const char *vip = vip_of(t->service_id, na->network_id);
		if (vip) {
			char *v = addr_only(vip);
			pb_set_str(&e->vip, v);
			free(v);
		}
		pb_set_str(&e->task_id, t->id);
		e->slot = t->slot;
		pb_set_str(&e->container_name, t->name);
		char *ip = addr_only(na->addr);
		pb_set_str(&e->ipv4, ip);
		free(ip);
		pb_set_str(&e->mac, na->mac);
		for (size_t j = 0; sp && j < sp->n_networks; j++) {
			const Swarm__NetworkAttachmentConfig *nc = sp->networks[j];
			if (strcmp(nc->target, na->network_id) && strcmp(nc->target, na->network_name))
				continue;
			for (size_t k = 0; k < nc->n_aliases; k++)
				PB_STRV_ADD(e, service_aliases, nc->aliases[k]);
		}
		for (size_t k = 0; k < na->n_aliases; k++)
			PB_STRV_ADD(e, task_aliases, na->aliases[k]);
		add_ports(e, t);
		PB_PTRV_ADD(m, endpoints, e);
	}
	/* On no network, the task itself, for its mode=host ports. */
	if (!t->n_networks && t->n_ports) {
		Swarm__EndpointRecord *e = xmalloc(sizeof(*e));
		swarm__endpoint_record__init(e);
		pb_set_str(&e->service_id, t->service_id);
		pb_set_str(&e->service_name, t->service_name);
		pb_set_str(&e->container_name, t->name);
		e->slot = t->slot;
		add_ports(e, t);
		m->local = e;
	}
	return m;
}

void netdc_sandbox(const Swarm__Task *t, const char *netns_path, int up, void *arg)
{
	struct agent *a = arg;
	(void)a;
	if (!D.a)
		return;
	if (!up) {
		att_free(strmap_del(D.atts, t->id));
		if (D.c)
			send_detach(t->id);
		else
			strmap_put(D.detaches, t->id, D.detaches); /* sent on reconnect */
		return;
	}
	struct netdc_att *n = xcalloc(1, sizeof(*n));
	n->msg = attach_from_task(t, netns_path);
	n->waiting = true;
	n->since = now_mono_ns();
	att_free(strmap_put(D.atts, t->id, n));
	strmap_del(D.detaches, t->id);
	netdc_send_attach(n);
}

void netdc_task_state(const char *task_id, const Swarm__TaskStatus *st)
{
	if (!D.a)
		return;
	struct netdc_att *t = strmap_get(D.atts, task_id);
	if (!t)
		return;
	bool serving = !t->stopping && st->state == SWARM__TASK_STATE__TASK_RUNNING &&
		       strcmp(st->health, "unhealthy") != 0 && strcmp(st->health, "starting") != 0;
	bool changed = false;
	if (t->msg->local) {
		changed = t->msg->local->serving != serving;
		t->msg->local->serving = serving;
	}
	for (size_t i = 0; i < t->msg->n_endpoints; i++) {
		if (t->msg->endpoints[i]->serving != serving)
			changed = true;
		t->msg->endpoints[i]->serving = serving;
	}
	if (changed && !t->waiting)
		netdc_send_attach(t);
}
