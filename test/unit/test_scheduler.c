/* Scheduler: filters, spread order, explanations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "manager/scheduler.h"
#include "pb.h"
#include "util.h"

#define MAXN 16
#define MAXT 64

/* Objects a test made; freed in teardown. */
struct fixture {
	Swarm__Node *nodes[MAXN];
	size_t n_nodes;
	Swarm__Task *tasks[MAXT];
	size_t n_tasks;
	struct scheduler *s;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->s = sched_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sched_free(f->s);
	for (size_t i = 0; i < f->n_nodes; i++)
		pb_free(f->nodes[i]);
	for (size_t i = 0; i < f->n_tasks; i++)
		pb_free(f->tasks[i]);
	free(f);
	return 0;
}

/* A ready, active worker with 4 CPUs and 4 GiB. */
static Swarm__Node *node_make(struct fixture *f, const char *id)
{
	Swarm__Node *n = xmalloc(sizeof(*n));

	swarm__node__init(n);
	pb_set_str(&n->id, id);
	pb_set_str(&n->hostname, id);
	pb_set_str(&n->role, "worker");
	pb_set_str(&n->availability, "active");
	n->state = SWARM__NODE_STATE__NODE_READY;
	n->resources = xmalloc(sizeof(*n->resources));
	swarm__resources__init(n->resources);
	n->resources->nano_cpus = 4000000000LL;
	n->resources->memory_bytes = 4LL << 30;
	f->nodes[f->n_nodes++] = n;
	return n;
}

static void nodes_add(struct fixture *f)
{
	for (size_t i = 0; i < f->n_nodes; i++)
		sched_add_node(f->s, f->nodes[i]);
}

static void add_label(Swarm__Node *n, const char *k, const char *v)
{
	Swarm__KeyValue *kv = xmalloc(sizeof(*kv));

	swarm__key_value__init(kv);
	pb_set_str(&kv->key, k);
	pb_set_str(&kv->value, v);
	PB_PTRV_ADD(n, labels, kv);
}

static Swarm__Task *task_make(struct fixture *f, const char *service_id, const char *node_id)
{
	Swarm__Task *t = xmalloc(sizeof(*t));

	swarm__task__init(t);
	pb_set_str(&t->service_id, service_id);
	pb_set_str(&t->node_id, node_id);
	t->spec = xmalloc(sizeof(*t->spec));
	swarm__service_spec__init(t->spec);
	pb_set_str(&t->spec->name, service_id);
	t->desired_state = SWARM__TASK_STATE__TASK_RUNNING;
	t->status = xmalloc(sizeof(*t->status));
	swarm__task_status__init(t->status);
	t->status->state = node_id ? SWARM__TASK_STATE__TASK_RUNNING : SWARM__TASK_STATE__TASK_PENDING;
	f->tasks[f->n_tasks++] = t;
	return t;
}

static void task_reserve(Swarm__Task *t, int64_t cpus, int64_t mem)
{
	t->spec->reservations = xmalloc(sizeof(*t->spec->reservations));
	swarm__resources__init(t->spec->reservations);
	t->spec->reservations->nano_cpus = cpus;
	t->spec->reservations->memory_bytes = mem;
}

static void task_host_port(Swarm__Task *t, uint32_t port, const char *proto)
{
	Swarm__PortConfig *p = xmalloc(sizeof(*p));

	swarm__port_config__init(p);
	pb_set_str(&p->protocol, proto);
	p->target = 80;
	p->published = port;
	pb_set_str(&p->mode, "host");
	PB_PTRV_ADD(t->spec, ports, p);
}

/* n pending tasks of service svc, built like the first one (spec copied). */
static void group_make(struct fixture *f, const Swarm__Task *proto, size_t n,
		       const Swarm__Task **group)
{
	group[0] = proto;
	for (size_t i = 1; i < n; i++) {
		Swarm__Task *t = pb_dup(proto);

		f->tasks[f->n_tasks++] = t;
		group[i] = t;
	}
}

static size_t count_on(const char **out, size_t n, const char *node_id)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (out[i] && strcmp(out[i], node_id) == 0)
			c++;
	return c;
}

static void test_spread_5_over_3(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[5];
	const char *out[5];
	char why[256];

	node_make(f, "n3");
	node_make(f, "n1");
	node_make(f, "n2");
	nodes_add(f);
	group_make(f, task_make(f, "svcA", NULL), 5, g);
	assert_int_equal(sched_place(f->s, g, 5, out, why, sizeof(why)), 5);
	assert_int_equal(count_on(out, 5, "n1"), 2);
	assert_int_equal(count_on(out, 5, "n2"), 2);
	assert_int_equal(count_on(out, 5, "n3"), 1);
	/* Round robin in id order, deterministic. */
	assert_string_equal(out[0], "n1");
	assert_string_equal(out[1], "n2");
	assert_string_equal(out[2], "n3");
	assert_string_equal(why, "");
}

static void test_spread_other_services(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[3];
	const char *out[3];
	char why[256];

	node_make(f, "n1");
	node_make(f, "n2");
	node_make(f, "n3");
	nodes_add(f);
	/* n1 runs two tasks of another service, n2 one. */
	sched_add_task(f->s, task_make(f, "other", "n1"));
	sched_add_task(f->s, task_make(f, "other", "n1"));
	sched_add_task(f->s, task_make(f, "other", "n2"));
	group_make(f, task_make(f, "svcA", NULL), 3, g);
	assert_int_equal(sched_place(f->s, g, 3, out, why, sizeof(why)), 3);
	/* No node has a task of svcA, so totals decide: n3 (0), then n2 (1)
	 * over n3 (now 1 of svcA), then n1, the only node left without svcA. */
	assert_string_equal(out[0], "n3");
	assert_string_equal(out[1], "n2");
	assert_string_equal(out[2], "n1");
}

static void test_spread_same_service_first(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[1];
	const char *out[1];
	char why[256];

	node_make(f, "n1");
	node_make(f, "n2");
	nodes_add(f);
	/* n1: one task of svcA; n2: three of another service. The service
	 * count wins over the total. */
	sched_add_task(f->s, task_make(f, "svcA", "n1"));
	for (int i = 0; i < 3; i++)
		sched_add_task(f->s, task_make(f, "other", "n2"));
	g[0] = task_make(f, "svcA", NULL);
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 1);
	assert_string_equal(out[0], "n2");
}

static void test_unavailable_nodes(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[4];
	const char *out[4];
	char why[256];
	Swarm__Node *ok = node_make(f, "n1");

	pb_set_str(&node_make(f, "n2")->availability, "drain");
	pb_set_str(&node_make(f, "n3")->availability, "pause");
	node_make(f, "n4")->state = SWARM__NODE_STATE__NODE_DOWN;
	node_make(f, "n5")->state = SWARM__NODE_STATE__NODE_DISCONNECTED;
	nodes_add(f);
	group_make(f, task_make(f, "svcA", NULL), 4, g);
	assert_int_equal(sched_place(f->s, g, 4, out, why, sizeof(why)), 4);
	assert_int_equal(count_on(out, 4, "n1"), 4);

	/* Without n1: nothing placed, and why says so. */
	pb_set_str(&ok->availability, "drain");
	assert_int_equal(sched_place(f->s, g, 4, out, why, sizeof(why)), 0);
	for (int i = 0; i < 4; i++)
		assert_null(out[i]);
	assert_string_equal(why, "no suitable node (5 nodes not available for new tasks)");
}

static void test_no_nodes(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[1] = { task_make(f, "svcA", NULL) };
	const char *out[1];
	char why[256];

	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 0);
	assert_null(out[0]);
	assert_string_equal(why, "no suitable node");
}

static void test_constraints(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[3];
	const char *out[3];
	char why[256];
	Swarm__Task *t;

	pb_set_str(&node_make(f, "n1")->role, "manager");
	add_label(node_make(f, "n2"), "zone", "a");
	add_label(node_make(f, "n3"), "zone", "b");
	pb_set_str(&f->nodes[2]->hostname, "host-three");
	nodes_add(f);

	t = task_make(f, "svcA", NULL);
	PB_STRV_ADD(t->spec, constraints, "node.role==manager");
	group_make(f, t, 3, g);
	assert_int_equal(sched_place(f->s, g, 3, out, why, sizeof(why)), 3);
	assert_int_equal(count_on(out, 3, "n1"), 3);

	t = task_make(f, "svcB", NULL);
	PB_STRV_ADD(t->spec, constraints, "node.labels.zone != a");
	PB_STRV_ADD(t->spec, constraints, "node.role==worker");
	group_make(f, t, 2, g);
	assert_int_equal(sched_place(f->s, g, 2, out, why, sizeof(why)), 2);
	assert_int_equal(count_on(out, 2, "n3"), 2);

	t = task_make(f, "svcC", NULL);
	PB_STRV_ADD(t->spec, constraints, "node.hostname==host-three");
	g[0] = t;
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 1);
	assert_string_equal(out[0], "n3");

	t = task_make(f, "svcD", NULL);
	PB_STRV_ADD(t->spec, constraints, "node.id==n2");
	g[0] = t;
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 1);
	assert_string_equal(out[0], "n2");

	t = task_make(f, "svcE", NULL);
	PB_STRV_ADD(t->spec, constraints, "node.labels.zone==c");
	g[0] = t;
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 0);
	assert_string_equal(why, "no suitable node (scheduling constraints not satisfied on 3 nodes)");

	/* A broken constraint places nothing and says why. */
	t = task_make(f, "svcF", NULL);
	PB_STRV_ADD(t->spec, constraints, "node.foo==x");
	g[0] = t;
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 0);
	assert_null(out[0]);
	assert_non_null(strstr(why, "node.foo"));
}

static void test_resources(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[8];
	const char *out[8];
	char why[256];
	Swarm__Task *t, *running;

	node_make(f, "n1");
	node_make(f, "n2");
	node_make(f, "n3");
	nodes_add(f);
	/* n3 already has a task reserving 3 of its 4 CPUs. */
	running = task_make(f, "other", "n3");
	task_reserve(running, 3000000000LL, 0);
	sched_add_task(f->s, running);

	t = task_make(f, "svcA", NULL);
	task_reserve(t, 2000000000LL, 1LL << 30);
	group_make(f, t, 6, g);
	/* n1 and n2 take two each, n3 none: 4 placed. */
	assert_int_equal(sched_place(f->s, g, 6, out, why, sizeof(why)), 4);
	assert_int_equal(count_on(out, 6, "n1"), 2);
	assert_int_equal(count_on(out, 6, "n2"), 2);
	assert_null(out[4]);
	assert_null(out[5]);
	assert_string_equal(why, "no suitable node (insufficient resources on 3 nodes)");

	/* Memory alone exhausts too. */
	t = task_make(f, "svcB", NULL);
	task_reserve(t, 0, 5LL << 30);
	g[0] = t;
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 0);
	assert_string_equal(why, "no suitable node (insufficient resources on 3 nodes)");

	/* No reservation: always fits. */
	g[0] = task_make(f, "svcC", NULL);
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 1);
}

static void test_host_ports(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[4];
	const char *out[4];
	char why[256];
	Swarm__Task *t, *running;

	node_make(f, "n1");
	node_make(f, "n2");
	node_make(f, "n3");
	nodes_add(f);
	running = task_make(f, "other", "n1");
	task_host_port(running, 8080, "tcp");
	sched_add_task(f->s, running);

	t = task_make(f, "svcA", NULL);
	task_host_port(t, 8080, "tcp");
	group_make(f, t, 3, g);
	assert_int_equal(sched_place(f->s, g, 3, out, why, sizeof(why)), 2);
	assert_int_equal(count_on(out, 3, "n1"), 0);
	assert_int_equal(count_on(out, 3, "n2"), 1);
	assert_int_equal(count_on(out, 3, "n3"), 1);
	assert_null(out[2]);
	assert_string_equal(why, "no suitable node (host-mode port already in use on 3 nodes)");

	/* Same number over udp does not clash; neither does a dynamic one. */
	t = task_make(f, "svcB", NULL);
	task_host_port(t, 8080, "udp");
	group_make(f, t, 3, g);
	assert_int_equal(sched_place(f->s, g, 3, out, why, sizeof(why)), 3);
	t = task_make(f, "svcC", NULL);
	task_host_port(t, 0, "tcp");
	group_make(f, t, 4, g);
	assert_int_equal(sched_place(f->s, g, 4, out, why, sizeof(why)), 4);
}

static void test_rejected_nodes(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[2];
	const char *out[2];
	char why[256];
	Swarm__Task *t;

	node_make(f, "n1");
	node_make(f, "n2");
	nodes_add(f);
	t = task_make(f, "svcA", NULL);
	PB_STRV_ADD(t, rejected_nodes, "n1");
	g[0] = t;
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 1);
	assert_string_equal(out[0], "n2");

	/* Rejected everywhere: not placed, and the other task of the group
	 * still is (n1 was only set aside). */
	t = task_make(f, "svcB", NULL);
	PB_STRV_ADD(t, rejected_nodes, "n1");
	PB_STRV_ADD(t, rejected_nodes, "n2");
	g[0] = t;
	g[1] = task_make(f, "svcB", NULL);
	assert_int_equal(sched_place(f->s, g, 2, out, why, sizeof(why)), 1);
	assert_null(out[0]);
	assert_string_equal(out[1], "n1");
	assert_string_equal(why, "no suitable node (2 nodes rejected the task)");
}

static void test_why_mixed(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[1];
	const char *out[1];
	char why[512], small[20];
	Swarm__Task *t;

	/* Two too small, one with the wrong label, one drained. */
	node_make(f, "n1")->resources->nano_cpus = 1000000000LL;
	node_make(f, "n2")->resources->nano_cpus = 1000000000LL;
	add_label(node_make(f, "n3"), "zone", "b");
	pb_set_str(&node_make(f, "n4")->availability, "drain");
	add_label(f->nodes[0], "zone", "a");
	add_label(f->nodes[1], "zone", "a");
	nodes_add(f);
	t = task_make(f, "svcA", NULL);
	task_reserve(t, 2000000000LL, 0);
	PB_STRV_ADD(t->spec, constraints, "node.labels.zone==a");
	g[0] = t;
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 0);
	assert_string_equal(why, "no suitable node (insufficient resources on 2 nodes; "
			    "scheduling constraints not satisfied on 1 node; "
			    "1 node not available for new tasks)");
	/* Truncated safely. */
	assert_int_equal(sched_place(f->s, g, 1, out, small, sizeof(small)), 0);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_global_preassigned(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[3];
	const char *out[3];
	char why[256];
	const Swarm__Task *more[1];

	node_make(f, "n1");
	node_make(f, "n2");
	pb_set_str(&node_make(f, "n3")->availability, "drain");
	nodes_add(f);
	/* Global tasks come with their node; on a drained node it stays. */
	g[0] = task_make(f, "glob", "n1");
	g[1] = task_make(f, "glob", "n2");
	g[2] = task_make(f, "glob", "n3");
	assert_int_equal(sched_place(f->s, g, 3, out, why, sizeof(why)), 2);
	assert_string_equal(out[0], "n1");
	assert_string_equal(out[1], "n2");
	assert_null(out[2]);
	assert_string_equal(why, "no suitable node (1 node not available for new tasks)");

	/* sched_add_task counts global tasks for spread: with two more on
	 * n1 it has three tasks, n2 one, so a new service goes to n2. */
	sched_add_task(f->s, task_make(f, "glob2", "n1"));
	sched_add_task(f->s, task_make(f, "glob2", "n1"));
	more[0] = task_make(f, "svcA", NULL);
	assert_int_equal(sched_place(f->s, more, 1, out, why, sizeof(why)), 1);
	assert_string_equal(out[0], "n2");
}

static void test_terminated_ignored(void **state)
{
	struct fixture *f = *state;
	const Swarm__Task *g[1];
	const char *out[1];
	char why[256];
	Swarm__Task *dead;

	node_make(f, "n1");
	node_make(f, "n2");
	nodes_add(f);
	dead = task_make(f, "svcA", "n1");
	dead->status->state = SWARM__TASK_STATE__TASK_FAILED;
	sched_add_task(f->s, dead);
	sched_add_task(f->s, task_make(f, "svcA", "n2"));
	/* A task on an unknown node is ignored. */
	sched_add_task(f->s, task_make(f, "svcA", "n9"));
	g[0] = task_make(f, "svcA", NULL);
	assert_int_equal(sched_place(f->s, g, 1, out, why, sizeof(why)), 1);
	assert_string_equal(out[0], "n1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spread_5_over_3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spread_other_services, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spread_same_service_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unavailable_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_constraints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_why_mixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_global_preassigned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_terminated_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
