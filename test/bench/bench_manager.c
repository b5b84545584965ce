/* Scheduling throughput of the whole manager core, store on disk:
 * 1,000 nodes registered in the store (plain node records: they stand in
 * for 1,000 agents, no container runs), one `service create` of 100,000
 * replicas through the admin API, then reconcile passes until every task is
 * assigned, then each node's assignment set encoded as the dispatcher would
 * send it. Prints where the time goes and the manager's RSS.
 * Usage: bench_manager [NODES] [TASKS] [DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatcher.pb-c.h"
#include "log.h"
#include "manager.h"
#include "pb.h"
#include "strmap.h"
#include "util.h"

static long rss_kib(void)
{
	char *text = NULL;
	long kib = -1;
	if (file_read_all("/proc/self/status", 1 << 16, &text, NULL) == 0) {
		char *p = strstr(text, "VmRSS:");
		if (p)
			kib = strtol(p + 6, NULL, 10);
		free(text);
	}
	return kib;
}

static double secs(int64_t a, int64_t b)
{
	return (double)(b - a) / 1e9;
}

int main(int argc, char **argv)
{
	long nodes = argc > 1 ? atol(argv[1]) : 1000;
	long tasks = argc > 2 ? atol(argv[2]) : 100000;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", argc > 3 ? argv[3] : "/var/tmp/bench-manager.XXXXXX");
	if (argc <= 3 && !mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	log_init("bench", LOG_LVL_WARN, 0);
	printf("bench_manager: %ld nodes (store records standing in for agents; no containers run), "
	       "%ld replicas, store in %s\n", nodes, tasks, dir);
	long rss0 = rss_kib();
	char path[300];
	snprintf(path, sizeof(path), "%s/store.db", dir);
	struct store *st;
	if (store_open(path, &st) < 0)
		return 1;
	struct mgr *m = mgr_new(NULL, st, dir, dir);

	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__InitRequest ir = SWARM__INIT_REQUEST__INIT;
	char *pool[] = { "198.18.0.0/15" };
	ir.advertise_addr = "192.0.2.11";
	ir.default_addr_pool = pool;
	ir.n_default_addr_pool = 1;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_INIT;
	req.init = &ir;
	Swarm__AdminResponse *resp = xcalloc(1, sizeof(*resp));
	swarm__admin_response__init(resp);
	admin_handle(m, &req, resp);
	pb_free(resp);

	int64_t t0 = now_mono_ns();
	struct store_tx *tx = store_tx_begin(st);
	for (long i = 0; i < nodes; i++) {
		Swarm__Node *n = xmalloc(sizeof(*n));
		swarm__node__init(n);
		char id[26];
		id_random(id);
		pb_set_str(&n->id, id);
		char *h = xasprintf("node%ld", i + 1);
		pb_set_str(&n->hostname, h);
		free(h);
		pb_set_str(&n->role, "worker");
		pb_set_str(&n->availability, "active");
		n->state = SWARM__NODE_STATE__NODE_READY;
		n->resources = xmalloc(sizeof(*n->resources));
		swarm__resources__init(n->resources);
		n->resources->nano_cpus = 8000000000LL;
		n->resources->memory_bytes = 32LL << 30;
		store_tx_put_node(tx, n);
	}
	store_tx_commit(tx);
	int64_t t1 = now_mono_ns();
	long rss_idle = rss_kib();

	Swarm__ServiceSpec spec = SWARM__SERVICE_SPEC__INIT;
	Swarm__ContainerSpec cs = SWARM__CONTAINER_SPEC__INIT;
	cs.image = "nginx";
	spec.name = "big";
	spec.replicas = (uint64_t)tasks;
	spec.container = &cs;
	Swarm__AdminRequest cr = SWARM__ADMIN_REQUEST__INIT;
	cr.body_case = SWARM__ADMIN_REQUEST__BODY_SERVICE_CREATE;
	cr.service_create = &spec;
	resp = xcalloc(1, sizeof(*resp));
	swarm__admin_response__init(resp);
	admin_handle(m, &cr, resp);
	if (resp->error[0]) {
		fprintf(stderr, "create: %s\n", resp->error);
		return 1;
	}
	pb_free(resp);

	int64_t t2 = now_mono_ns();
	int passes = 0, actions = 0;
	int64_t phase[4] = { 0 };
	for (; passes < 5; passes++) {
		int r = mgr_tick(m, now_wall_ns());
		if (r <= 0)
			break;
		actions += r;
		for (int k = 0; k < 4; k++)
			phase[k] += m->tick_ns[k];
	}
	int64_t t3 = now_mono_ns();
	const Swarm__Task *const *all;
	size_t nt = store_tasks(st, &all), assigned = 0;
	for (size_t i = 0; i < nt; i++)
		if (all[i]->node_id[0] && all[i]->status->state == SWARM__TASK_STATE__TASK_ASSIGNED)
			assigned++;

	/* The dispatcher's work: one Assignments message per node. */
	struct strmap *per = strmap_new();
	size_t *counts = xcalloc((size_t)nodes + 1, sizeof(*counts));
	const Swarm__Task ***lists = xcalloc((size_t)nodes + 1, sizeof(*lists));
	const Swarm__Node *const *nv;
	size_t nn = store_nodes(st, &nv);
	for (size_t i = 0; i < nn; i++)
		strmap_put(per, nv[i]->id, (void *)(uintptr_t)(i + 1));
	for (size_t i = 0; i < nt; i++) {
		size_t k = (size_t)(uintptr_t)strmap_get(per, all[i]->node_id);
		if (!k--)
			continue;
		lists[k] = xrealloc(lists[k], (counts[k] + 1) * sizeof(*lists[k]));
		lists[k][counts[k]++] = all[i];
	}
	size_t bytes = 0;
	for (size_t k = 0; k < nn; k++) {
		Swarm__Assignments a = SWARM__ASSIGNMENTS__INIT;
		a.tasks = (Swarm__Task **)lists[k];
		a.n_tasks = counts[k];
		size_t len;
		uint8_t *buf = pb_pack(&a, &len);
		bytes += len;
		free(buf);
		free(lists[k]);
	}
	int64_t t4 = now_mono_ns();
	long rss_full = rss_kib();

	printf("nodes registered:          %.3f s\n", secs(t0, t1));
	printf("reconcile (orchestrate + allocate + schedule + commit), %d pass(es), %d actions: %.3f s\n",
	       passes, actions, secs(t2, t3));
	printf("  orchestrate (create task objects): %.3f s\n", phase[0] / 1e9);
	printf("  allocate:                          %.3f s\n", phase[1] / 1e9);
	printf("  schedule:                          %.3f s\n", phase[2] / 1e9);
	printf("  encode + SQLite commit + memory:   %.3f s\n", phase[3] / 1e9);
	printf("tasks assigned:            %zu of %ld\n", assigned, tasks);
	printf("placement throughput:      %.0f tasks/s (time until every task assigned: %.3f s)\n",
	       (double)assigned / secs(t2, t3), secs(t2, t3));
	printf("assignment sets encoded:   %zu nodes, %.1f MiB, %.3f s\n", nn, bytes / 1048576.0, secs(t3, t4));
	printf("end to end incl. dispatch: %.0f tasks/s\n", (double)assigned / secs(t2, t4));
	printf("RSS: start %ld KiB, with %ld nodes %ld KiB, with %zu tasks %ld KiB\n", rss0, nodes,
	       rss_idle, nt, rss_full);
	printf("reference: swarmkit's benchmark 100,000 tasks on 1,000 nodes in 22.6 s (4,425 tasks/s); "
	       "Nomad C2M ~3,700 containers/s; goal >= 20,000 tasks/s\n");
	strmap_free(per);
	free(counts);
	free(lists);
	mgr_free(m);
	store_close(st);
	if (argc <= 3)
		rm_rf(dir);
	return 0;
}
