/* The reconcile pass without a network: a real store in a temp dir, nodes
 * written directly, agents' reports simulated by editing task states, time
 * passed in. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "manager.h"
#include "pb.h"
#include "util.h"

#define S 1000000000LL

struct fx {
	char dir[64];
	struct store *st;
	struct mgr *m;
	int64_t now;
};

static void add_node(struct fx *f, const char *id, const char *host)
{
	Swarm__Node *n = xmalloc(sizeof(*n));
	swarm__node__init(n);
	pb_set_str(&n->id, id);
	pb_set_str(&n->hostname, host);
	pb_set_str(&n->role, "worker");
	pb_set_str(&n->availability, "active");
	n->state = SWARM__NODE_STATE__NODE_READY;
	struct store_tx *tx = store_tx_begin(f->st);
	store_tx_put_node(tx, n);
	assert_int_equal(store_tx_commit(tx), 0);
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-orch.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/store.db", f->dir);
	assert_int_equal(store_open(path, &f->st), 0);
	f->m = mgr_new(NULL, f->st, f->dir, f->dir);
	assert_non_null(f->m);
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__InitRequest ir = SWARM__INIT_REQUEST__INIT;
	char *pool[] = { "198.18.0.0/16" };
	ir.advertise_addr = "192.0.2.11";
	ir.default_addr_pool = pool;
	ir.n_default_addr_pool = 1;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_INIT;
	req.init = &ir;
	Swarm__AdminResponse *resp = xmalloc(sizeof(*resp));
	swarm__admin_response__init(resp);
	admin_handle(f->m, &req, resp);
	assert_string_equal(resp->error, "");
	pb_free(resp);
	add_node(f, "n1", "node1");
	add_node(f, "n2", "node2");
	add_node(f, "n3", "node3");
	f->now = now_wall_ns();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	mgr_free(f->m);
	store_close(f->st);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* Sends an admin request; returns the error text ("" on success) in a
 * static buffer. */
static const char *admin(struct fx *f, Swarm__AdminRequest *req)
{
	static char err[512];
	Swarm__AdminResponse *resp = xmalloc(sizeof(*resp));
	swarm__admin_response__init(resp);
	admin_handle(f->m, req, resp);
	snprintf(err, sizeof(err), "%s", resp->error);
	pb_free(resp);
	return err;
}

static Swarm__ServiceSpec *spec_new(const char *name, uint64_t replicas)
{
	Swarm__ServiceSpec *s = xmalloc(sizeof(*s));
	swarm__service_spec__init(s);
	pb_set_str(&s->name, name);
	s->replicas = replicas;
	s->container = xmalloc(sizeof(*s->container));
	swarm__container_spec__init(s->container);
	pb_set_str(&s->container->image, "busybox");
	s->restart = xmalloc(sizeof(*s->restart));
	swarm__restart_policy__init(s->restart);
	pb_set_str(&s->restart->condition, "any");
	s->restart->delay_ns = -1; /* restart at once */
	return s;
}

static const char *create(struct fx *f, Swarm__ServiceSpec *s)
{
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_SERVICE_CREATE;
	req.service_create = s;
	const char *e = admin(f, &req);
	pb_free(s);
	return e;
}

static void tick(struct fx *f)
{
	for (int i = 0; i < 10 && mgr_tick(f->m, f->now) > 0; i++)
		;
}

/* Agents: every assigned task desired RUNNING starts running; tasks desired
 * SHUTDOWN stop. */
static void agents_run(struct fx *f)
{
	const Swarm__Task *const *t;
	size_t n = store_tasks(f->st, &t);
	struct store_tx *tx = store_tx_begin(f->st);
	for (size_t i = 0; i < n; i++) {
		int st = t[i]->status->state;
		int want = st;
		if (t[i]->desired_state == SWARM__TASK_STATE__TASK_RUNNING && st >= SWARM__TASK_STATE__TASK_ASSIGNED &&
		    st < SWARM__TASK_STATE__TASK_RUNNING)
			want = SWARM__TASK_STATE__TASK_RUNNING;
		if (t[i]->desired_state > SWARM__TASK_STATE__TASK_RUNNING && st <= SWARM__TASK_STATE__TASK_RUNNING) {
			const Swarm__Node *nd = store_node(f->st, t[i]->node_id);
			if (nd && nd->state == SWARM__NODE_STATE__NODE_READY)
				want = SWARM__TASK_STATE__TASK_SHUTDOWN;
		}
		if (want != st) {
			Swarm__Task *c = pb_dup(t[i]);
			c->status->state = want;
			c->status->timestamp = f->now;
			store_tx_put_task(tx, c);
		}
	}
	assert_int_equal(store_tx_commit(tx), 0);
}

static void converge(struct fx *f)
{
	for (int i = 0; i < 6; i++) {
		tick(f);
		agents_run(f);
		f->now += S;
	}
	tick(f);
}

static size_t running_on(struct fx *f, const char *node, const char *svcname)
{
	const Swarm__Task *const *t;
	size_t n = store_tasks(f->st, &t), k = 0;
	for (size_t i = 0; i < n; i++)
		if ((!node || !strcmp(t[i]->node_id, node)) && !strcmp(t[i]->service_name, svcname) &&
		    t[i]->desired_state == SWARM__TASK_STATE__TASK_RUNNING &&
		    t[i]->status->state == SWARM__TASK_STATE__TASK_RUNNING)
			k++;
	return k;
}

static void set_node(struct fx *f, const char *id, int state, const char *avail)
{
	Swarm__Node *n = pb_dup(store_node(f->st, id));
	if (state >= 0)
		n->state = state;
	if (avail)
		pb_set_str(&n->availability, avail);
	struct store_tx *tx = store_tx_begin(f->st);
	store_tx_put_node(tx, n);
	assert_int_equal(store_tx_commit(tx), 0);
}

static void test_spread_and_scale(void **state)
{
	struct fx *f = *state;
	assert_string_equal(create(f, spec_new("web", 5)), "");
	converge(f);
	assert_int_equal(running_on(f, NULL, "web"), 5);
	size_t a = running_on(f, "n1", "web"), b = running_on(f, "n2", "web"), c = running_on(f, "n3", "web");
	assert_true(a <= 2 && b <= 2 && c <= 2 && a >= 1 && b >= 1 && c >= 1);

	/* Scale down to 2, then up to 7. */
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__ServiceUpdateRequest up = SWARM__SERVICE_UPDATE_REQUEST__INIT;
	Swarm__ServiceSpec *s = spec_new("web", 2);
	up.service = "web";
	up.spec = s;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_SERVICE_UPDATE;
	req.service_update = &up;
	assert_string_equal(admin(f, &req), "");
	converge(f);
	assert_int_equal(running_on(f, NULL, "web"), 2);
	s->replicas = 7;
	assert_string_equal(admin(f, &req), "");
	pb_free(s);
	converge(f);
	assert_int_equal(running_on(f, NULL, "web"), 7);
	/* Scaling is not an update: no task carries a newer spec version. */
	const Swarm__Service *svc = mgr_find_service(f->m, "web", (char[64]){0}, 64);
	assert_int_equal(svc->spec_version, 1);
}

static void test_global_and_drain(void **state)
{
	struct fx *f = *state;
	Swarm__ServiceSpec *s = spec_new("mon", 0);
	pb_set_str(&s->mode, "global");
	assert_string_equal(create(f, s), "");
	assert_string_equal(create(f, spec_new("app", 6)), "");
	converge(f);
	for (const char *const *n = (const char *const[]){ "n1", "n2", "n3", NULL }; *n; n++)
		assert_int_equal(running_on(f, *n, "mon"), 1);
	set_node(f, "n2", -1, "drain");
	converge(f);
	assert_int_equal(running_on(f, "n2", "mon"), 0);
	assert_int_equal(running_on(f, "n2", "app"), 0);
	assert_int_equal(running_on(f, NULL, "app"), 6);
	assert_int_equal(running_on(f, "n1", "app"), 3);
}

static void test_node_down_reschedules(void **state)
{
	struct fx *f = *state;
	assert_string_equal(create(f, spec_new("web", 6)), "");
	converge(f);
	assert_int_equal(running_on(f, "n3", "web"), 2);
	set_node(f, "n3", SWARM__NODE_STATE__NODE_DOWN, NULL);
	converge(f);
	/* The down node's tasks still look running (nobody reports), but
	 * they are no longer desired; replacements run elsewhere. */
	size_t live = running_on(f, "n1", "web") + running_on(f, "n2", "web");
	assert_int_equal(live, 6);
}

static void fail_one(struct fx *f, const char *svcname, int state)
{
	const Swarm__Task *const *t;
	size_t n = store_tasks(f->st, &t);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i]->service_name, svcname) && t[i]->status->state == SWARM__TASK_STATE__TASK_RUNNING) {
			Swarm__Task *c = pb_dup(t[i]);
			c->status->state = state;
			c->status->exit_code = 137;
			c->status->timestamp = f->now;
			struct store_tx *tx = store_tx_begin(f->st);
			store_tx_put_task(tx, c);
			assert_int_equal(store_tx_commit(tx), 0);
			return;
		}
	fail();
}

static void test_restart_policy(void **state)
{
	struct fx *f = *state;
	assert_string_equal(create(f, spec_new("any", 1)), "");
	Swarm__ServiceSpec *s = spec_new("none", 1);
	pb_set_str(&s->restart->condition, "none");
	assert_string_equal(create(f, s), "");
	s = spec_new("delayed", 1);
	s->restart->delay_ns = 30 * S;
	assert_string_equal(create(f, s), "");
	converge(f);
	fail_one(f, "any", SWARM__TASK_STATE__TASK_FAILED);
	fail_one(f, "none", SWARM__TASK_STATE__TASK_FAILED);
	fail_one(f, "delayed", SWARM__TASK_STATE__TASK_FAILED);
	converge(f); /* 6 s pass */
	assert_int_equal(running_on(f, NULL, "any"), 1);
	assert_int_equal(running_on(f, NULL, "none"), 0);
	assert_int_equal(running_on(f, NULL, "delayed"), 0);
	f->now += 30 * S;
	converge(f);
	assert_int_equal(running_on(f, NULL, "delayed"), 1);
}

static void test_rejected_goes_elsewhere(void **state)
{
	struct fx *f = *state;
	assert_string_equal(create(f, spec_new("img", 1)), "");
	converge(f);
	const Swarm__Task *const *t;
	size_t n = store_tasks(f->st, &t);
	char first[64] = "";
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i]->service_name, "img"))
			snprintf(first, sizeof(first), "%s", t[i]->node_id);
	fail_one(f, "img", SWARM__TASK_STATE__TASK_REJECTED);
	converge(f);
	assert_int_equal(running_on(f, NULL, "img"), 1);
	assert_int_equal(running_on(f, first, "img"), 0);
}

static void test_start_first_update(void **state)
{
	struct fx *f = *state;
	Swarm__ServiceSpec *s = spec_new("roll", 4);
	assert_string_equal(create(f, pb_dup(s)), "");
	converge(f);
	pb_set_str(&s->container->image, "nginx");
	s->update = xmalloc(sizeof(*s->update));
	swarm__update_config__init(s->update);
	s->update->parallelism = 1;
	pb_set_str(&s->update->order, "start-first");
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__ServiceUpdateRequest up = SWARM__SERVICE_UPDATE_REQUEST__INIT;
	up.service = "roll";
	up.spec = s;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_SERVICE_UPDATE;
	req.service_update = &up;
	assert_string_equal(admin(f, &req), "");
	for (int i = 0; i < 20; i++) {
		tick(f);
		assert_true(running_on(f, NULL, "roll") >= 4);
		agents_run(f);
		assert_true(running_on(f, NULL, "roll") >= 4);
		f->now += S;
	}
	const Swarm__Task *const *t;
	size_t n = store_tasks(f->st, &t), nginx = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i]->service_name, "roll") && t[i]->status->state == SWARM__TASK_STATE__TASK_RUNNING &&
		    t[i]->desired_state == SWARM__TASK_STATE__TASK_RUNNING)
			nginx += !strcmp(t[i]->spec->container->image, "nginx");
	assert_int_equal(nginx, 4);
	const Swarm__Service *svc = mgr_find_service(f->m, "roll", (char[64]){0}, 64);
	assert_string_equal(svc->update_state, "completed");
	pb_free(s);
}

static void test_refusals_change_nothing(void **state)
{
	struct fx *f = *state;
	uint64_t v = store_version(f->st);
	Swarm__ServiceSpec *s = spec_new("bad", 1);
	Swarm__PortConfig *p = xmalloc(sizeof(*p));
	swarm__port_config__init(p);
	p->target = 80;
	p->published = 80;
	PB_PTRV_ADD(s, ports, p);
	pb_set_str(&s->endpoint_mode, "dnsrr");
	assert_string_equal(create(f, s), "port published with ingress mode can't be used with dnsrr mode");
	s = spec_new("bad", 1);
	Swarm__NetworkAttachmentConfig *na = xmalloc(sizeof(*na));
	swarm__network_attachment_config__init(na);
	pb_set_str(&na->target, "nope");
	PB_PTRV_ADD(s, networks, na);
	assert_string_equal(create(f, s), "network nope not found");
	s = spec_new("bad", 1);
	PB_STRV_ADD(s, constraints, "node.colour==red");
	assert_true(strlen(create(f, s)) > 0);
	assert_int_equal(store_version(f->st), v);
}

static void test_allocation(void **state)
{
	struct fx *f = *state;
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__NetworkSpec ns = SWARM__NETWORK_SPEC__INIT;
	ns.name = "small";
	ns.subnet = "198.19.10.0/29";
	req.body_case = SWARM__ADMIN_REQUEST__BODY_NETWORK_CREATE;
	req.network_create = &ns;
	assert_string_equal(admin(f, &req), "");
	/* /29: 6 hosts, one gateway, one VIP: 4 left for tasks and node LB
	 * addresses. 6 replicas cannot all get addresses. */
	Swarm__ServiceSpec *s = spec_new("crowd", 6);
	Swarm__NetworkAttachmentConfig *na = xmalloc(sizeof(*na));
	swarm__network_attachment_config__init(na);
	pb_set_str(&na->target, "small");
	PB_PTRV_ADD(s, networks, na);
	assert_string_equal(create(f, s), "");
	converge(f);
	const Swarm__Task *const *t;
	size_t n = store_tasks(f->st, &t), errs = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i]->service_name, "crowd") && t[i]->alloc_error[0])
			errs++;
	assert_true(errs > 0);
	assert_true(running_on(f, NULL, "crowd") < 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spread_and_scale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_global_and_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_down_reschedules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_goes_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_first_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocation, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
