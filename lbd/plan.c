/* swarm-lbd's plan: endpoint records -> namespaces and their services
 * (see plan.h). */
#include "plan.h"

#include "log.h"
#include "netd.pb-c.h"
#include "strmap.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A service on one network, gathered from its tasks' records. */
struct psvc {
	char id[LB_ID_MAX];
	const char *service_id, *network_id;
	struct in_addr vip;         /* 0 = none (dnsrr, or not known yet) */
	struct in_addr *backends;
	size_t nb, capb;
	struct lb_port *ports;      /* ingress-mode published ports */
	size_t np;
};

/* One of this node's sandboxes. */
struct psbx {
	const char *task_id, *netns;
	struct in_addr gw;          /* gateway-bridge leg; 0 = none */
	bool lb;                    /* the ingress sandbox */
	const char **nets;
	size_t nn;
	struct lb_port *host;       /* mode=host ports */
	size_t nh;
};

/* Pointers to the psvcs of one network. */
struct pvec {
	struct psvc **v;
	size_t n;
};

struct pctx {
	struct strmap *svcs;        /* "<service id>/<network id>" -> psvc */
	struct strmap *bynet;       /* network id -> pvec */
	struct strmap *sbx;         /* task id -> psbx */
	const char *ingress_net;    /* network of the local ingress sandbox */
	struct lbd_plan *out;
};

static uint8_t plan_proto(const char *s)
{
	return !strcmp(s, "udp") ? IPPROTO_UDP : !strcmp(s, "tcp") || !*s ? IPPROTO_TCP : 0;
}

/* The record's ports of one mode, valid ones only. */
static size_t plan_ports(const Swarm__EndpointRecord *r, bool host, struct lb_port **out)
{
	struct lb_port *p = xcalloc(r->n_ports + 1, sizeof(*p));
	size_t n = 0;
	for (size_t i = 0; i < r->n_ports; i++) {
		const Swarm__EndpointPort *e = r->ports[i];
		bool is_host = !strcmp(e->mode, "host");
		uint8_t proto = plan_proto(e->protocol);
		if (is_host != host || !proto || !e->published || e->published > 65535 ||
		    !e->target || e->target > 65535)
			continue;
		p[n++] = (struct lb_port){ proto, (uint16_t)e->published, (uint16_t)e->target };
	}
	*out = p;
	return n;
}

static void plan_service(struct pctx *x, const Swarm__EndpointRecord *r)
{
	if (!r->service_id[0] || !r->network_id[0] || r->lb_endpoint)
		return;
	char *key = xasprintf("%s/%s", r->service_id, r->network_id);
	struct psvc *s = strmap_get(x->svcs, key);
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->service_id = r->service_id;
		s->network_id = r->network_id;
		strmap_put(x->svcs, key, s);
		struct pvec *pv = strmap_get(x->bynet, r->network_id);
		if (!pv) {
			pv = xcalloc(1, sizeof(*pv));
			strmap_put(x->bynet, r->network_id, pv);
		}
		pv->v = xrealloc(pv->v, (pv->n + 1) * sizeof(*pv->v));
		pv->v[pv->n++] = s;
	}
	free(key);
	if (!s->vip.s_addr && strcmp(r->endpoint_mode, "dnsrr") != 0)
		inet_pton(AF_INET, r->vip, &s->vip);
	if (!s->np)
		s->np = plan_ports(r, false, &s->ports);
	struct in_addr ip;
	if (!r->serving || inet_pton(AF_INET, r->ipv4, &ip) != 1 || !ip.s_addr)
		return;
	if (s->nb == s->capb) {
		s->capb = s->capb ? s->capb * 2 : 4;
		s->backends = xrealloc(s->backends, s->capb * sizeof(*s->backends));
	}
	s->backends[s->nb++] = ip;
}

static void plan_sandbox(struct pctx *x, const Swarm__EndpointRecord *r)
{
	if (!r->netns[0])
		return;   /* another node's */
	struct psbx *b = strmap_get(x->sbx, r->task_id);
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		b->task_id = r->task_id;
		b->netns = r->netns;
		inet_pton(AF_INET, r->gateway_ip, &b->gw);
		b->lb = r->lb_endpoint;
		b->nh = plan_ports(r, true, &b->host);
		strmap_put(x->sbx, r->task_id, b);
	}
	b->nets = xrealloc(b->nets, (b->nn + 1) * sizeof(*b->nets));
	b->nets[b->nn++] = r->network_id;
	if (r->lb_endpoint)
		x->ingress_net = r->network_id;
}

static struct lbd_plan_ns *plan_ns(struct lbd_plan *p, const char *netns, bool keep_source)
{
	p->ns = xrealloc(p->ns, (p->n + 1) * sizeof(*p->ns));
	struct lbd_plan_ns *ns = &p->ns[p->n++];
	memset(ns, 0, sizeof(*ns));
	ns->netns = netns ? xstrdup(netns) : NULL;
	ns->keep_source = keep_source;
	lb_state_init(&ns->want);
	return ns;
}

/* Adds svc to ns; a VIP or port another service already holds there is a
 * conflict (the manager does not allow it; a stale record might). */
static void plan_add(struct lbd_plan *p, struct lbd_plan_ns *ns, const struct lb_service *svc)
{
	int r = lb_state_add(&ns->want, svc);
	if (r == 0)
		return;
	p->conflicts++;
	log_warn("lbd, service %s left out in %s: %s", svc->id, ns->netns ? ns->netns : "the node",
		 r == -EEXIST ? "its VIP or a published port is held by another" : "invalid");
}

/* A task sandbox: the VIPs of every service on its networks (but
 * ingress, whose VIPs only the mesh uses). */
static void plan_task(struct pctx *x, const struct psbx *b)
{
	struct lbd_plan_ns *ns = plan_ns(x->out, b->netns, false);
	for (size_t i = 0; i < b->nn; i++) {
		if (x->ingress_net && !strcmp(b->nets[i], x->ingress_net))
			continue;
		const struct pvec *pv = strmap_get(x->bynet, b->nets[i]);
		for (size_t j = 0; pv && j < pv->n; j++) {
			const struct psvc *s = pv->v[j];
			if (!s->vip.s_addr)
				continue;
			struct lb_service svc = { .vip = s->vip, .backends = s->backends,
						  .n_backends = s->nb };
			snprintf(svc.id, sizeof(svc.id), "%.25s-%.12s", s->service_id, s->network_id);
			plan_add(x->out, ns, &svc);
		}
	}
}

/* The ingress sandbox: each service's ingress-mode ports to its tasks. */
static void plan_ingress(struct pctx *x, const struct psbx *b)
{
	struct lbd_plan_ns *ns = plan_ns(x->out, b->netns, false);
	ns->ingress = true;
	const struct pvec *pv = strmap_get(x->bynet, x->ingress_net);
	for (size_t j = 0; pv && j < pv->n; j++) {
		const struct psvc *s = pv->v[j];
		if (!s->np)
			continue;
		struct lb_service svc = { .vip = s->vip, .backends = s->backends, .n_backends = s->nb,
					  .ports = s->ports, .n_ports = s->np };
		snprintf(svc.id, sizeof(svc.id), "%.25s", s->service_id);
		plan_add(x->out, ns, &svc);
	}
}

/* The node's namespace: every ingress published port to the ingress
 * sandbox, and the mode=host ports of this node's tasks to them. */
static void plan_node(struct pctx *x, const struct psbx *lb)
{
	struct lbd_plan_ns *ns = &x->out->ns[0];
	struct lb_service mesh = { .id = LBD_MESH_ID };
	const struct pvec *pv = x->ingress_net ? strmap_get(x->bynet, x->ingress_net) : NULL;
	for (size_t j = 0; pv && j < pv->n; j++) {
		const struct psvc *s = pv->v[j];
		mesh.ports = xrealloc(mesh.ports, (mesh.n_ports + s->np + 1) * sizeof(*mesh.ports));
		for (size_t k = 0; k < s->np; k++) {
			mesh.ports[mesh.n_ports] = s->ports[k];
			mesh.ports[mesh.n_ports++].target = s->ports[k].published;
		}
	}
	if (mesh.n_ports) {
		/* the ingress sandbox without its gateway leg (none configured):
		 * the ports refuse rather than hang */
		if (lb && lb->gw.s_addr) {
			mesh.backends = (struct in_addr *)&lb->gw;
			mesh.n_backends = 1;
		}
		plan_add(x->out, ns, &mesh);
	}
	free(mesh.ports);
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(x->sbx, &pos, &k, &v)) {
		const struct psbx *b = v;
		if (b->lb || !b->nh || !b->gw.s_addr)
			continue;
		struct lb_service h = { .backends = (struct in_addr *)&b->gw, .n_backends = 1,
					.ports = b->host, .n_ports = b->nh };
		snprintf(h.id, sizeof(h.id), LBD_HOST_PREFIX "%.50s", b->task_id);
		plan_add(x->out, ns, &h);
	}
}

void lbd_plan_build(const struct strmap *recs, struct lbd_plan *out)
{
	struct pctx x = { .svcs = strmap_new(), .bynet = strmap_new(), .sbx = strmap_new(),
			  .out = out };
	memset(out, 0, sizeof(*out));
	plan_ns(out, NULL, true);
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(recs, &pos, &k, &v)) {
		plan_service(&x, v);
		plan_sandbox(&x, v);
	}
	const struct psbx *lb = NULL;
	pos = 0;
	while (strmap_next(x.sbx, &pos, &k, &v)) {
		const struct psbx *b = v;
		if (b->lb) {
			lb = b;
			plan_ingress(&x, b);
		} else {
			plan_task(&x, b);
		}
	}
	plan_node(&x, lb);

	pos = 0;
	while (strmap_next(x.svcs, &pos, &k, &v)) {
		struct psvc *s = v;
		free(s->backends);
		free(s->ports);
		free(s);
	}
	pos = 0;
	while (strmap_next(x.bynet, &pos, &k, &v)) {
		free(((struct pvec *)v)->v);
		free(v);
	}
	pos = 0;
	while (strmap_next(x.sbx, &pos, &k, &v)) {
		struct psbx *b = v;
		free(b->nets);
		free(b->host);
		free(b);
	}
	strmap_free(x.svcs);
	strmap_free(x.bynet);
	strmap_free(x.sbx);
}

void lbd_plan_free(struct lbd_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->ns[i].netns);
		lb_state_clear(&p->ns[i].want);
	}
	free(p->ns);
	memset(p, 0, sizeof(*p));
}
