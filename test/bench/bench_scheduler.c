/* Scheduling benchmark: one service of 100,000 replicas on 1,000 nodes.
 *
 * Times, each on its own and then together: making the task objects (as
 * the orchestrator does: id, name, a copy of the spec), allocating them
 * (without networks, and on one overlay with a /15 subnet so that 100,000
 * addresses fit), and placing them with the scheduler. No container runs:
 * the 1,000 Node objects stand in for 1,000 agents. The store commit is
 * not part of it yet.
 *
 * Usage: bench_scheduler [TASKS [NODES]] */
#include "manager/allocator.h"
#include "manager/scheduler.h"
#include "pb.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TASKS 100000
#define DEFAULT_NODES 1000
/* Sanity bounds so a typo does not eat the machine. */
#define MAX_TASKS 1000000
#define MAX_NODES 100000

static double secs(int64_t ns)
{
	return (double)ns / 1e9;
}

static void report(const char *phase, size_t n, int64_t ns)
{
	printf("  %-46s %8.3f s  %12.0f tasks/s\n", phase, secs(ns),
	       ns > 0 ? (double)n / secs(ns) : 0.0);
}

static Swarm__Node **nodes_make(size_t n)
{
	Swarm__Node **v = xcalloc(n, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		char id[32], host[32];

		snprintf(id, sizeof(id), "bench%020zu", i);
		snprintf(host, sizeof(host), "node-%zu", i);
		v[i] = xmalloc(sizeof(*v[i]));
		swarm__node__init(v[i]);
		pb_set_str(&v[i]->id, id);
		pb_set_str(&v[i]->hostname, host);
		pb_set_str(&v[i]->role, i < 3 ? "manager" : "worker");
		pb_set_str(&v[i]->availability, "active");
		v[i]->state = SWARM__NODE_STATE__NODE_READY;
		v[i]->resources = xmalloc(sizeof(*v[i]->resources));
		swarm__resources__init(v[i]->resources);
		v[i]->resources->nano_cpus = 64000000000LL;
		v[i]->resources->memory_bytes = 256LL << 30;
	}
	return v;
}

static Swarm__Service *service_make(size_t replicas)
{
	Swarm__Service *s = xmalloc(sizeof(*s));
	Swarm__ServiceSpec *spec;
	Swarm__NetworkAttachmentConfig *na;
	char id[26];

	swarm__service__init(s);
	id_random(id);
	pb_set_str(&s->id, id);
	spec = s->spec = xmalloc(sizeof(*spec));
	swarm__service_spec__init(spec);
	pb_set_str(&spec->name, "bench");
	pb_set_str(&spec->mode, "replicated");
	spec->replicas = replicas;
	pb_set_str(&spec->endpoint_mode, "vip");
	spec->container = xmalloc(sizeof(*spec->container));
	swarm__container_spec__init(spec->container);
	pb_set_str(&spec->container->image, "busybox");
	PB_STRV_ADD(spec->container, env, "BENCH=1");
	na = xmalloc(sizeof(*na));
	swarm__network_attachment_config__init(na);
	pb_set_str(&na->target, "bench-net");
	PB_PTRV_ADD(spec, networks, na);
	/* A small reservation, so the resource filter does real work. */
	spec->reservations = xmalloc(sizeof(*spec->reservations));
	swarm__resources__init(spec->reservations);
	spec->reservations->nano_cpus = 10000000;      /* 0.01 CPU */
	spec->reservations->memory_bytes = 16LL << 20;
	s->spec_version = 1;
	return s;
}

/* What the orchestrator makes for one slot. */
static Swarm__Task *task_make(const Swarm__Service *svc, uint64_t slot, int64_t now)
{
	Swarm__Task *t = xmalloc(sizeof(*t));
	char id[26], name[128];

	swarm__task__init(t);
	id_random(id);
	pb_set_str(&t->id, id);
	pb_set_str(&t->service_id, svc->id);
	pb_set_str(&t->service_name, svc->spec->name);
	t->slot = slot;
	t->spec = pb_dup(svc->spec);
	t->spec_version = svc->spec_version;
	t->desired_state = SWARM__TASK_STATE__TASK_RUNNING;
	t->status = xmalloc(sizeof(*t->status));
	swarm__task_status__init(t->status);
	t->status->state = SWARM__TASK_STATE__TASK_NEW;
	t->status->timestamp = now;
	snprintf(name, sizeof(name), "%s.%llu.%s", svc->spec->name, (unsigned long long)slot, id);
	pb_set_str(&t->name, name);
	t->created_at = now;
	t->updated_at = now;
	return t;
}

static size_t parse_count(const char *s, size_t max, size_t dflt)
{
	char *end;
	unsigned long long v;

	if (!s)
		return dflt;
	v = strtoull(s, &end, 10);
	if (*end || v == 0 || v > max) {
		fprintf(stderr, "bench_scheduler: bad count '%s' (1-%zu)\n", s, max);
		exit(2);
	}
	return (size_t)v;
}

int main(int argc, char **argv)
{
	static const char *const pool[] = { "198.18.0.0/15" };
	size_t n_tasks = parse_count(argc > 1 ? argv[1] : NULL, MAX_TASKS, DEFAULT_TASKS);
	size_t n_nodes = parse_count(argc > 2 ? argv[2] : NULL, MAX_NODES, DEFAULT_NODES);
	Swarm__Node **nodes = nodes_make(n_nodes);
	Swarm__Service *svc = service_make(n_tasks);
	Swarm__Task **tasks = xcalloc(n_tasks, sizeof(*tasks));
	const char **out = xcalloc(n_tasks, sizeof(*out));
	uint32_t *per_node;
	struct allocator *a;
	struct scheduler *s;
	Swarm__Network *net;
	const Swarm__Network *nets[1];
	char err[256], why[256];
	int64_t t0, t_create, t_alloc0, t_alloc1, t_sched, t_rebuild, t_sched_only;
	size_t placed, min = SIZE_MAX, max = 0;
	int ret = 0;

	printf("bench_scheduler: %zu tasks of one service on %zu nodes\n", n_tasks, n_nodes);
	printf("  no containers run: the node objects stand in for %zu agents; "
	       "the store commit is not included\n", n_nodes);

	/* 1. Task objects. */
	t0 = now_mono_ns();
	for (size_t i = 0; i < n_tasks; i++)
		tasks[i] = task_make(svc, i + 1, now_wall_ns());
	t_create = now_mono_ns() - t0;

	/* 2a. Allocation without networks. */
	a = allocator_new(pool, 1, 15);
	if (!a) {
		fprintf(stderr, "bench_scheduler: allocator_new failed\n");
		return 1;
	}
	t0 = now_mono_ns();
	for (size_t i = 0; i < n_tasks; i++) {
		if (allocator_task(a, tasks[i], NULL, 0, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_scheduler: %s\n", err);
			return 1;
		}
	}
	t_alloc0 = now_mono_ns() - t0;

	/* 2b. Allocation on one overlay (/15: 131,069 addresses), with the
	 * network and the service VIP. */
	net = xmalloc(sizeof(*net));
	swarm__network__init(net);
	pb_set_str(&net->id, "benchnet000000000000000000");
	net->spec = xmalloc(sizeof(*net->spec));
	swarm__network_spec__init(net->spec);
	pb_set_str(&net->spec->name, "bench-net");
	pb_set_str(&net->spec->driver, "overlay");
	nets[0] = net;
	t0 = now_mono_ns();
	if (allocator_network(a, net, err, sizeof(err)) < 0 ||
	    allocator_service(a, svc, nets, 1, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_scheduler: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < n_tasks; i++) {
		if (allocator_task(a, tasks[i], nets, 1, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_scheduler: task %zu: %s\n", i, err);
			return 1;
		}
	}
	t_alloc1 = now_mono_ns() - t0;
	printf("  overlay %s (%s), VIP %s, last task address %s\n", net->subnet,
	       net->spec->name, svc->vips[0]->addr, tasks[n_tasks - 1]->networks[0]->addr);

	/* 3. Scheduling: build the scheduler from the nodes, place the whole
	 * group. */
	t0 = now_mono_ns();
	s = sched_new();
	for (size_t i = 0; i < n_nodes; i++)
		sched_add_node(s, nodes[i]);
	t_sched_only = now_mono_ns();
	placed = sched_place(s, (const Swarm__Task *const *)tasks, n_tasks, out, why, sizeof(why));
	t_sched_only = now_mono_ns() - t_sched_only;
	for (size_t i = 0; i < n_tasks; i++) {
		if (out[i]) {
			pb_set_str(&tasks[i]->node_id, out[i]);
			tasks[i]->status->state = SWARM__TASK_STATE__TASK_ASSIGNED;
		}
	}
	t_sched = now_mono_ns() - t0;
	sched_free(s);

	/* Check the spread. */
	per_node = xcalloc(n_nodes, sizeof(*per_node));
	for (size_t i = 0; i < n_tasks; i++) {
		if (!out[i])
			continue;
		/* Ids are "bench" + the zero-padded index. */
		per_node[strtoull(out[i] + 5, NULL, 10)]++;
	}
	for (size_t i = 0; i < n_nodes; i++) {
		if (per_node[i] < min)
			min = per_node[i];
		if (per_node[i] > max)
			max = per_node[i];
	}

	/* 4. A scheduler rebuilt from the placed tasks (what each scheduling
	 * pass of a leader that just started costs). */
	t0 = now_mono_ns();
	s = sched_new();
	for (size_t i = 0; i < n_nodes; i++)
		sched_add_node(s, nodes[i]);
	for (size_t i = 0; i < n_tasks; i++)
		sched_add_task(s, tasks[i]);
	t_rebuild = now_mono_ns() - t0;
	sched_free(s);

	printf("  placed %zu of %zu; per node min %zu max %zu%s%s\n", placed, n_tasks, min, max,
	       why[0] ? "; " : "", why);
	report("create task objects", n_tasks, t_create);
	report("allocate (no network)", n_tasks, t_alloc0);
	report("allocate (one overlay, /15)", n_tasks, t_alloc1);
	report("schedule (sched_place alone)", n_tasks, t_sched_only);
	report("schedule (with setup and node_id set)", n_tasks, t_sched);
	report("rebuild scheduler from placed tasks", n_tasks, t_rebuild);
	report("total: create + allocate (overlay) + schedule", n_tasks,
	       t_create + t_alloc1 + t_sched);
	if (placed != n_tasks || max - min > 1) {
		fprintf(stderr, "bench_scheduler: bad placement\n");
		ret = 1;
	}

	for (size_t i = 0; i < n_tasks; i++)
		pb_free(tasks[i]);
	for (size_t i = 0; i < n_nodes; i++)
		pb_free(nodes[i]);
	free(nodes);
	allocator_release_service(a, svc);
	allocator_free(a);
	pb_free(net);
	pb_free(svc);
	free(per_node);
	free(tasks);
	free(out);
	return ret;
}
