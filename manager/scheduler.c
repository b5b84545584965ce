/* The scheduler: swarmkit's filter pipeline and spread order.
 *
 * Cost: sched_place runs the filters that only depend on the node and the
 * spec (ready, availability, constraints) once per group, then keeps the
 * feasible nodes in a binary min-heap keyed by (tasks of this service, tasks
 * in total, node id rank). Each placement pops the best node, re-checks the
 * filters a placement can change (resources, host ports), accounts the task
 * and pushes the node back with its new key: O(log nodes) per task. */
#include "manager/scheduler.h"
#include "manager/constraint.h"
#include "manager/ipam.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why a node was passed over, in pipeline order (the first failing filter
 * is the one counted, as in swarmkit). */
enum sched_fail {
	FAIL_AVAIL,             /* not READY, or availability pause/drain */
	FAIL_RESOURCES,         /* reservations do not fit */
	FAIL_CONSTRAINT,        /* a constraint does not match */
	FAIL_HOSTPORT,          /* host-mode published port already used there */
	FAIL_REJECTED,          /* the task was rejected by this node before */
	FAIL_COUNT
};

struct snode {
	const Swarm__Node *n;   /* borrowed; outlives the scheduler */
	size_t idx;             /* position in scheduler.nodes */
	uint32_t rank;          /* position in node id order (tie-break) */
	uint32_t total;         /* tasks on the node, all services */
	int64_t cpu_free;       /* resources minus what placed tasks reserve */
	int64_t mem_free;
	uint32_t *ports;        /* host-mode published ports: proto << 16 | port */
	size_t n_ports, cap_ports;
};

struct ssvc {
	uint32_t *count;        /* active tasks of this service per node idx */
	size_t cap;             /* entries in count */
};

struct scheduler {
	struct snode **nodes;   /* in the order they were added */
	size_t n_nodes, cap_nodes;
	struct ipam_idmap node_by_id;   /* id -> struct snode * */
	struct ipam_idmap svc_by_id;    /* service id -> struct ssvc * */
	bool ranks_dirty;       /* a node was added since ranks were computed */
};

struct scheduler *sched_new(void)
{
	return xcalloc(1, sizeof(struct scheduler));
}

void sched_free(struct scheduler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_nodes; i++) {
		free(s->nodes[i]->ports);
		free(s->nodes[i]);
	}
	free(s->nodes);
	for (size_t i = 0; i < s->svc_by_id.cap; i++) {
		struct ssvc *v = s->svc_by_id.slots[i].val;

		if (s->svc_by_id.slots[i].key) {
			free(v->count);
			free(v);
		}
	}
	ipam_idmap_destroy(&s->node_by_id);
	ipam_idmap_destroy(&s->svc_by_id);
	free(s);
}

void sched_add_node(struct scheduler *s, const Swarm__Node *n)
{
	struct snode *sn = ipam_idmap_get(&s->node_by_id, n->id);

	if (sn) {
		/* Same node again: newer object, accounting kept. */
		sn->n = n;
		return;
	}
	sn = xcalloc(1, sizeof(*sn));
	sn->n = n;
	sn->idx = s->n_nodes;
	if (n->resources) {
		sn->cpu_free = n->resources->nano_cpus;
		sn->mem_free = n->resources->memory_bytes;
	}
	if (s->n_nodes == s->cap_nodes) {
		s->cap_nodes = s->cap_nodes ? s->cap_nodes * 2 : 16;
		s->nodes = xrealloc(s->nodes, s->cap_nodes * sizeof(*s->nodes));
	}
	s->nodes[s->n_nodes++] = sn;
	ipam_idmap_put(&s->node_by_id, n->id, sn);
	s->ranks_dirty = true;
}

/* The per-node counters of a service, grown to cover every node. */
static struct ssvc *svc_get(struct scheduler *s, const char *service_id)
{
	struct ssvc *v = ipam_idmap_get(&s->svc_by_id, service_id);

	if (!v) {
		v = xcalloc(1, sizeof(*v));
		ipam_idmap_put(&s->svc_by_id, service_id, v);
	}
	if (v->cap < s->n_nodes) {
		size_t cap = s->cap_nodes;

		v->count = xrealloc(v->count, cap * sizeof(*v->count));
		memset(v->count + v->cap, 0, (cap - v->cap) * sizeof(*v->count));
		v->cap = cap;
	}
	return v;
}

static uint32_t proto_code(const char *proto)
{
	if (!proto || !*proto || strcmp(proto, "tcp") == 0)
		return 0;
	if (strcmp(proto, "udp") == 0)
		return 1;
	return 2;               /* sctp or anything else: a class of its own */
}

/* proto << 16 | port for a host-mode port with a fixed published number,
 * 0 for anything else (ingress ports and dynamic host ports never clash). */
static uint32_t host_port_key(const Swarm__PortConfig *p)
{
	if (!p || strcmp(p->mode, "host") != 0 || p->published == 0 || p->published > 65535)
		return 0;
	return proto_code(p->protocol) << 16 | p->published;
}

static bool node_has_port(const struct snode *sn, uint32_t key)
{
	for (size_t i = 0; i < sn->n_ports; i++)
		if (sn->ports[i] == key)
			return true;
	return false;
}

static void node_add_port(struct snode *sn, uint32_t key)
{
	if (node_has_port(sn, key))
		return;
	if (sn->n_ports == sn->cap_ports) {
		sn->cap_ports = sn->cap_ports ? sn->cap_ports * 2 : 4;
		sn->ports = xrealloc(sn->ports, sn->cap_ports * sizeof(*sn->ports));
	}
	sn->ports[sn->n_ports++] = key;
}

/* Collects a task's host-mode ports (its allocated ones and its spec's),
 * deduplicated, into a malloc'd array; *n set. NULL when none. */
static uint32_t *task_host_ports(const Swarm__Task *t, size_t *n)
{
	size_t max = t->n_ports + (t->spec ? t->spec->n_ports : 0);
	uint32_t *keys;

	*n = 0;
	if (max == 0)
		return NULL;
	keys = xmalloc(max * sizeof(*keys));
	for (size_t i = 0; i < max; i++) {
		const Swarm__PortConfig *p = i < t->n_ports ? t->ports[i] : t->spec->ports[i - t->n_ports];
		uint32_t k = host_port_key(p);
		size_t j;

		if (!k)
			continue;
		for (j = 0; j < *n; j++)
			if (keys[j] == k)
				break;
		if (j == *n)
			keys[(*n)++] = k;
	}
	if (*n == 0) {
		free(keys);
		return NULL;
	}
	return keys;
}

/* Records that t runs on sn (counts, reservations, host ports). */
static void account(struct snode *sn, struct ssvc *v, const Swarm__Task *t,
		    const uint32_t *ports, size_t n_ports)
{
	sn->total++;
	if (t->desired_state <= SWARM__TASK_STATE__TASK_RUNNING)
		v->count[sn->idx]++;
	if (t->spec && t->spec->reservations) {
		sn->cpu_free -= t->spec->reservations->nano_cpus;
		sn->mem_free -= t->spec->reservations->memory_bytes;
	}
	for (size_t i = 0; i < n_ports; i++)
		node_add_port(sn, ports[i]);
}

void sched_add_task(struct scheduler *s, const Swarm__Task *t)
{
	struct snode *sn;
	uint32_t *ports;
	size_t n_ports;

	if (!t->node_id[0] || !(sn = ipam_idmap_get(&s->node_by_id, t->node_id)))
		return;
	/* A task that has stopped no longer occupies its node. */
	if (t->status && t->status->state > SWARM__TASK_STATE__TASK_RUNNING)
		return;
	ports = task_host_ports(t, &n_ports);
	account(sn, svc_get(s, t->service_id), t, ports, n_ports);
	free(ports);
}

/* ---- one group ---- */

struct group {
	struct ssvc *svc;
	int64_t cpu, mem;               /* reservations of one task */
	struct constraint *cons;
	size_t n_cons;
	uint32_t *ports;                /* host-mode ports one task needs */
	size_t n_ports;
	size_t fails[FAIL_COUNT];       /* nodes passed over, by reason */
};

static int cmp_node_id(const void *a, const void *b)
{
	const struct snode *x = *(const struct snode *const *)a;
	const struct snode *y = *(const struct snode *const *)b;

	return strcmp(x->n->id, y->n->id);
}

static void compute_ranks(struct scheduler *s)
{
	struct snode **v;

	if (!s->ranks_dirty)
		return;
	v = xmalloc((s->n_nodes ? s->n_nodes : 1) * sizeof(*v));
	memcpy(v, s->nodes, s->n_nodes * sizeof(*v));
	qsort(v, s->n_nodes, sizeof(*v), cmp_node_id);
	for (size_t i = 0; i < s->n_nodes; i++)
		v[i]->rank = (uint32_t)i;
	free(v);
	s->ranks_dirty = false;
}

/* Filters that a placement cannot change. -1 when the node passes. */
static int static_filter(const struct group *g, const struct snode *sn)
{
	const Swarm__Node *n = sn->n;

	if (n->state != SWARM__NODE_STATE__NODE_READY)
		return FAIL_AVAIL;
	/* "" counts as active: a node object made before it was set. */
	if (n->availability[0] && strcmp(n->availability, "active") != 0)
		return FAIL_AVAIL;
	for (size_t i = 0; i < g->n_cons; i++)
		if (!constraint_match(&g->cons[i], n))
			return FAIL_CONSTRAINT;
	return -1;
}

/* Filters that placements change: resources and host ports. */
static int dynamic_filter(const struct group *g, const struct snode *sn)
{
	if ((g->cpu > 0 && g->cpu > sn->cpu_free) || (g->mem > 0 && g->mem > sn->mem_free))
		return FAIL_RESOURCES;
	for (size_t i = 0; i < g->n_ports; i++)
		if (node_has_port(sn, g->ports[i]))
			return FAIL_HOSTPORT;
	return -1;
}

/* The whole pipeline in swarmkit's order (ready, resources, constraints,
 * host ports), for a task that comes with its node. */
static int full_filter(const struct group *g, const struct snode *sn)
{
	int f = static_filter(g, sn);

	if (f == FAIL_AVAIL)
		return f;
	if (dynamic_filter(g, sn) == FAIL_RESOURCES)
		return FAIL_RESOURCES;
	if (f >= 0)
		return f;
	return dynamic_filter(g, sn);
}

static bool task_rejected(const Swarm__Task *t, const char *node_id)
{
	for (size_t i = 0; i < t->n_rejected_nodes; i++)
		if (strcmp(t->rejected_nodes[i], node_id) == 0)
			return true;
	return false;
}

/* "no suitable node (insufficient resources on 2 nodes; ...)": reasons by
 * count, most first as swarmkit's Pipeline.Explain does; equal counts in a
 * fixed order, the task-specific reasons before plain unavailability. */
static void explain(const size_t fails[FAIL_COUNT], char *why, size_t whylen)
{
	static const enum sched_fail order[] = {
		FAIL_RESOURCES, FAIL_CONSTRAINT, FAIL_HOSTPORT, FAIL_AVAIL, FAIL_REJECTED,
	};
	bool done[FAIL_COUNT] = { false };
	size_t off;
	int first = 1;

	if (!whylen)
		return;
	off = (size_t)snprintf(why, whylen, "no suitable node");
	for (size_t round = 0; round < FAIL_COUNT; round++) {
		int best = -1;
		size_t n;
		const char *s;

		for (size_t i = 0; i < FAIL_COUNT; i++) {
			enum sched_fail f = order[i];

			if (!done[f] && fails[f] && (best < 0 || fails[f] > fails[best]))
				best = (int)f;
		}
		if (best < 0)
			break;
		done[best] = true;
		n = fails[best];
		s = n == 1 ? "" : "s";
		if (off >= whylen)
			break;
		off += (size_t)snprintf(why + off, whylen - off, "%s", first ? " (" : "; ");
		first = 0;
		if (off >= whylen)
			break;
		switch ((enum sched_fail)best) {
		case FAIL_AVAIL:
			off += (size_t)snprintf(why + off, whylen - off,
						"%zu node%s not available for new tasks", n, s);
			break;
		case FAIL_RESOURCES:
			off += (size_t)snprintf(why + off, whylen - off,
						"insufficient resources on %zu node%s", n, s);
			break;
		case FAIL_CONSTRAINT:
			off += (size_t)snprintf(why + off, whylen - off,
						"scheduling constraints not satisfied on %zu node%s", n, s);
			break;
		case FAIL_HOSTPORT:
			off += (size_t)snprintf(why + off, whylen - off,
						"host-mode port already in use on %zu node%s", n, s);
			break;
		case FAIL_REJECTED:
			off += (size_t)snprintf(why + off, whylen - off,
						"%zu node%s rejected the task", n, s);
			break;
		case FAIL_COUNT:
			break;
		}
	}
	if (!first && off < whylen)
		snprintf(why + off, whylen - off, ")");
}

/* ---- the heap: min by (service count, total, rank) ---- */

struct heap {
	struct snode **v;
	size_t n;
	const uint32_t *count;  /* the group's service counts by node idx */
};

static bool heap_less(const struct heap *h, const struct snode *a, const struct snode *b)
{
	uint32_t ca = h->count[a->idx], cb = h->count[b->idx];

	if (ca != cb)
		return ca < cb;
	if (a->total != b->total)
		return a->total < b->total;
	return a->rank < b->rank;
}

static void heap_push(struct heap *h, struct snode *sn)
{
	size_t i = h->n++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!heap_less(h, sn, h->v[parent]))
			break;
		h->v[i] = h->v[parent];
		i = parent;
	}
	h->v[i] = sn;
}

static struct snode *heap_pop(struct heap *h)
{
	struct snode *top, *last;
	size_t i = 0;

	if (h->n == 0)
		return NULL;
	top = h->v[0];
	last = h->v[--h->n];
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && heap_less(h, h->v[c + 1], h->v[c]))
			c++;
		if (!heap_less(h, h->v[c], last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n > 0)
		h->v[i] = last;
	return top;
}

static int group_init(struct scheduler *s, struct group *g, const Swarm__Task *t0,
		      char *why, size_t whylen)
{
	const Swarm__ServiceSpec *spec = t0->spec;
	char err[256];

	memset(g, 0, sizeof(*g));
	g->svc = svc_get(s, t0->service_id);
	if (spec && spec->reservations) {
		g->cpu = spec->reservations->nano_cpus;
		g->mem = spec->reservations->memory_bytes;
	}
	if (spec && spec->n_constraints) {
		g->cons = xcalloc(spec->n_constraints, sizeof(*g->cons));
		for (size_t i = 0; i < spec->n_constraints; i++) {
			if (constraint_parse(spec->constraints[i], &g->cons[i], err, sizeof(err)) < 0) {
				snprintf(why, whylen, "%s", err);
				return -EINVAL;
			}
		}
		g->n_cons = spec->n_constraints;
	}
	g->ports = task_host_ports(t0, &g->n_ports);
	return 0;
}

static void group_destroy(struct group *g)
{
	free(g->cons);
	free(g->ports);
}

size_t sched_place(struct scheduler *s, const Swarm__Task *const *tasks, size_t n,
		   const char **out, char *why, size_t whylen)
{
	struct group g;
	struct heap h = { 0 };
	struct snode **aside = NULL;    /* nodes the current task rejected */
	size_t n_aside = 0, placed = 0, n_unassigned = 0;
	bool explained = false;

	if (whylen)
		why[0] = '\0';
	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (n == 0)
		return 0;
	compute_ranks(s);
	if (group_init(s, &g, tasks[0], why, whylen) < 0) {
		group_destroy(&g);
		return 0;
	}

	/* Pass 1: tasks that come with their node (global mode) only go
	 * through the pipeline on that node. */
	for (size_t i = 0; i < n; i++) {
		const Swarm__Task *t = tasks[i];
		struct snode *sn;
		size_t fails[FAIL_COUNT] = { 0 };
		int f;

		if (!t->node_id[0]) {
			n_unassigned++;
			continue;
		}
		sn = ipam_idmap_get(&s->node_by_id, t->node_id);
		f = sn ? full_filter(&g, sn) : FAIL_AVAIL;
		if (f < 0 && task_rejected(t, t->node_id))
			f = FAIL_REJECTED;
		if (f >= 0) {
			fails[f] = 1;
			if (!explained)
				explain(fails, why, whylen);
			explained = true;
			continue;
		}
		account(sn, g.svc, t, g.ports, g.n_ports);
		out[i] = sn->n->id;
		placed++;
	}
	if (n_unassigned == 0)
		goto out;

	/* Pass 2: filter every node once, heap the feasible ones. */
	h.v = xmalloc((s->n_nodes ? s->n_nodes : 1) * sizeof(*h.v));
	h.count = g.svc->count;
	for (size_t i = 0; i < s->n_nodes; i++) {
		struct snode *sn = s->nodes[i];
		int f = static_filter(&g, sn);

		if (f < 0)
			f = dynamic_filter(&g, sn);
		else if (f != FAIL_AVAIL && dynamic_filter(&g, sn) == FAIL_RESOURCES)
			f = FAIL_RESOURCES;     /* pipeline order: resources first */
		if (f >= 0)
			g.fails[f]++;
		else
			heap_push(&h, sn);
	}
	aside = xmalloc((s->n_nodes ? s->n_nodes : 1) * sizeof(*aside));

	for (size_t i = 0; i < n; i++) {
		const Swarm__Task *t = tasks[i];
		struct snode *sn;
		int f;

		if (t->node_id[0])
			continue;
		n_aside = 0;
		while ((sn = heap_pop(&h)) && t->n_rejected_nodes && task_rejected(t, sn->n->id))
			aside[n_aside++] = sn;
		if (sn) {
			account(sn, g.svc, t, g.ports, g.n_ports);
			out[i] = sn->n->id;
			placed++;
			f = dynamic_filter(&g, sn);
			if (f >= 0)
				g.fails[f]++;   /* full now: out for the rest of the group */
			else
				heap_push(&h, sn);
		} else if (!explained) {
			size_t fails[FAIL_COUNT];

			memcpy(fails, g.fails, sizeof(fails));
			fails[FAIL_REJECTED] += n_aside;
			explain(fails, why, whylen);
			explained = true;
		}
		for (size_t j = 0; j < n_aside; j++)
			heap_push(&h, aside[j]);
	}

out:
	free(aside);
	free(h.v);
	group_destroy(&g);
	return placed;
}
