/* Reconcile of the overlay data path against the fake provider: networks,
 * local attachments and remote peers come and go; a second run does
 * nothing; a restart over pre-existing state adds no duplicates and removes
 * what is stale. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "netd/datapath.h"

static struct in_addr ip4(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static struct dp_network mknet(uint32_t vni, const char *subnet, uint8_t plen, const char *gw)
{
	struct dp_network n = { .vni = vni, .prefixlen = plen };
	n.subnet = ip4(subnet);
	n.gateway = ip4(gw);
	return n;
}

static void mac_for(struct in_addr ip, uint8_t mac[6])
{
	/* Docker's shape: 02:42 followed by the IPv4 address. */
	mac[0] = 0x02;
	mac[1] = 0x42;
	memcpy(mac + 2, &ip, 4);
}

static void add_local(struct dp_state *st, uint32_t vni, const char *task, const char *ip,
		      const char *ifname)
{
	struct dp_local_ep ep = { .vni = vni };
	snprintf(ep.task_id, sizeof(ep.task_id), "%s", task);
	snprintf(ep.netns, sizeof(ep.netns), "/run/test/netns/%s", task);
	snprintf(ep.ifname, sizeof(ep.ifname), "%s", ifname);
	ep.ip = ip4(ip);
	mac_for(ep.ip, ep.mac);
	assert_int_equal(dp_state_add_local(st, &ep), 0);
}

static void add_remote(struct dp_state *st, uint32_t vni, const char *ip, const char *vtep)
{
	uint8_t mac[6];
	struct in_addr a = ip4(ip);
	mac_for(a, mac);
	assert_int_equal(dp_state_add_remote(st, vni, a, mac, ip4(vtep)), 0);
}

/* desired: net 4242 with one local task and two remote peers on two VTEPs. */
static void base_state(struct dp_state *st)
{
	dp_state_init(st);
	struct dp_network n = mknet(4242, "198.19.42.0", 24, "198.19.42.1");
	assert_int_equal(dp_state_add_network(st, &n), 0);
	add_local(st, 4242, "task1", "198.19.42.11", "eth0");
	add_remote(st, 4242, "198.19.42.12", "192.0.2.202");
	add_remote(st, 4242, "198.19.42.13", "192.0.2.203");
}

static bool has_op(struct dp_provider *p, const char *line)
{
	for (size_t i = 0; i < dp_fake_nops(p); i++)
		if (strcmp(dp_fake_op(p, i), line) == 0)
			return true;
	return false;
}

static void print_ops(struct dp_provider *p)
{
	for (size_t i = 0; i < dp_fake_nops(p); i++)
		print_message("  op %s\n", dp_fake_op(p, i));
}

static void test_state_keys(void **unused)
{
	(void)unused;
	struct dp_state st;
	dp_state_init(&st);
	struct dp_network n = mknet(4242, "198.19.42.0", 24, "198.19.42.1");
	assert_int_equal(dp_state_add_network(&st, &n), 0);
	assert_int_equal(dp_state_add_network(&st, &n), -EEXIST);
	n.vni = 0;
	assert_int_equal(dp_state_add_network(&st, &n), -EINVAL);
	n.vni = 1u << 24;
	assert_int_equal(dp_state_add_network(&st, &n), -EINVAL);

	uint8_t mac[6] = { 2, 0x42, 1, 2, 3, 4 }, zero[6] = { 0 };
	assert_int_equal(dp_state_add_remote(&st, 4242, ip4("198.19.42.5"), mac, ip4("192.0.2.202")), 0);
	/* Same IP and MAC again, other VTEP: first wins. */
	assert_int_equal(dp_state_add_remote(&st, 4242, ip4("198.19.42.5"), mac, ip4("192.0.2.203")), -EEXIST);
	assert_int_equal(st.n_fdbs, 1);
	assert_int_equal(st.fdbs[0].vtep.s_addr, ip4("192.0.2.202").s_addr);
	assert_int_equal(dp_state_add_remote(&st, 4242, ip4("198.19.42.6"), zero, ip4("192.0.2.202")), -EINVAL);

	struct dp_local_ep ep = { .vni = 4242 };
	assert_int_equal(dp_state_add_local(&st, &ep), -EINVAL); /* no ifname */
	dp_state_clear(&st);
	dp_state_clear(&st);
	dp_state_clear(NULL);
}

static void test_fresh_and_idempotent(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);
	base_state(&want);

	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(stats.applied, 6);
	assert_int_equal(stats.failed, 0);
	assert_string_equal(dp_fake_op(p, 0), "net_add 4242");
	assert_true(has_op(p, "ep_attach 4242 task1 eth0 198.19.42.11"));
	assert_true(has_op(p, "fdb_add 4242 02:42:c6:13:2a:0c 192.0.2.202"));
	assert_true(has_op(p, "fdb_add 4242 02:42:c6:13:2a:0d 192.0.2.203"));
	assert_true(has_op(p, "neigh_add 4242 198.19.42.12 02:42:c6:13:2a:0c"));
	assert_true(has_op(p, "neigh_add 4242 198.19.42.13 02:42:c6:13:2a:0d"));

	/* Nothing to do the second and third time. */
	for (int i = 0; i < 2; i++) {
		dp_fake_clear_ops(p);
		assert_int_equal(dp_reconcile(p, &want, &stats), 0);
		assert_int_equal(dp_fake_nops(p), 0);
		assert_int_equal(stats.applied, 0);
	}
	dp_state_clear(&want);
	dp_provider_free(p);
}

static void test_peer_changes(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	assert_int_equal(dp_fake_new(&p), 0);
	base_state(&want);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);

	/* .13 leaves, .14 joins, .12 moves to another VTEP. */
	dp_state_clear(&want);
	dp_state_init(&want);
	struct dp_network n = mknet(4242, "198.19.42.0", 24, "198.19.42.1");
	dp_state_add_network(&want, &n);
	add_local(&want, 4242, "task1", "198.19.42.11", "eth0");
	add_remote(&want, 4242, "198.19.42.12", "192.0.2.204");
	add_remote(&want, 4242, "198.19.42.14", "192.0.2.203");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	print_ops(p);
	assert_int_equal(dp_fake_nops(p), 6);
	assert_true(has_op(p, "neigh_del 4242 198.19.42.13"));
	assert_true(has_op(p, "fdb_del 4242 02:42:c6:13:2a:0d 192.0.2.203"));
	assert_true(has_op(p, "fdb_del 4242 02:42:c6:13:2a:0c 192.0.2.202"));
	assert_true(has_op(p, "fdb_add 4242 02:42:c6:13:2a:0c 192.0.2.204"));
	assert_true(has_op(p, "fdb_add 4242 02:42:c6:13:2a:0e 192.0.2.203"));
	assert_true(has_op(p, "neigh_add 4242 198.19.42.14 02:42:c6:13:2a:0e"));
	/* Removals come before additions. */
	assert_int_equal(strncmp(dp_fake_op(p, 0), "neigh_del", 9), 0);
	assert_int_equal(strncmp(dp_fake_op(p, 5), "neigh_add", 9), 0);
	assert_int_equal(dp_fake_state(p)->n_fdbs, 2);
	assert_int_equal(dp_fake_state(p)->n_neighs, 2);

	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	assert_int_equal(dp_fake_nops(p), 0);
	dp_state_clear(&want);
	dp_provider_free(p);
}

static void test_endpoints_and_networks(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	assert_int_equal(dp_fake_new(&p), 0);
	base_state(&want);
	struct dp_network n2 = mknet(4243, "198.19.43.0", 24, "198.19.43.1");
	dp_state_add_network(&want, &n2);
	add_local(&want, 4243, "task1", "198.19.43.11", "eth1");
	add_local(&want, 4242, "task2", "198.19.42.21", "eth0");
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	assert_int_equal(dp_fake_count(p, "net_add"), 2);
	assert_int_equal(dp_fake_count(p, "ep_attach"), 3);

	/* task2 stops, task1 gets a new address on 4242 (detach + attach),
	 * network 4243 goes away with its attachment. */
	dp_state_clear(&want);
	dp_state_init(&want);
	struct dp_network n = mknet(4242, "198.19.42.0", 24, "198.19.42.1");
	dp_state_add_network(&want, &n);
	add_local(&want, 4242, "task1", "198.19.42.31", "eth0");
	add_remote(&want, 4242, "198.19.42.12", "192.0.2.202");
	add_remote(&want, 4242, "198.19.42.13", "192.0.2.203");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	print_ops(p);
	assert_true(has_op(p, "ep_detach 4242 task2 198.19.42.21"));
	assert_true(has_op(p, "ep_detach 4242 task1 198.19.42.11"));
	assert_true(has_op(p, "ep_attach 4242 task1 eth0 198.19.42.31"));
	assert_true(has_op(p, "net_del 4243"));
	/* The attachment on 4243 goes with its namespace, not separately. */
	assert_int_equal(dp_fake_count(p, "ep_detach 4243"), 0);
	assert_int_equal(dp_fake_nops(p), 4);

	/* A gateway change remakes the network and everything in it. */
	dp_state_clear(&want);
	dp_state_init(&want);
	n.gateway = ip4("198.19.42.254");
	dp_state_add_network(&want, &n);
	add_local(&want, 4242, "task1", "198.19.42.31", "eth0");
	add_remote(&want, 4242, "198.19.42.12", "192.0.2.202");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	print_ops(p);
	assert_string_equal(dp_fake_op(p, 0), "net_del 4242");
	assert_string_equal(dp_fake_op(p, 1), "net_add 4242");
	assert_int_equal(dp_fake_nops(p), 5); /* del, add, attach, fdb, neigh */

	/* Everything goes. */
	dp_state_clear(&want);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	assert_int_equal(dp_fake_nops(p), 1);
	assert_string_equal(dp_fake_op(p, 0), "net_del 4242");
	assert_int_equal(dp_fake_state(p)->n_nets, 0);
	assert_int_equal(dp_fake_state(p)->n_eps, 0);
	dp_provider_free(p);
}

/* A restarted netd finds the kernel as the last run left it, plus stale
 * entries from endpoints that left while it was down, plus leftovers. */
static void test_restart_preexisting(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	assert_int_equal(dp_fake_new(&p), 0);
	struct dp_state *k = dp_fake_state(p);
	base_state(&want);
	/* Preload the "kernel": what we want, as a dump would show it... */
	for (size_t i = 0; i < want.n_nets; i++) {
		struct dp_network n = want.nets[i];
		n.complete = true;
		dp_state_add_network(k, &n);
	}
	for (size_t i = 0; i < want.n_eps; i++)
		dp_state_add_local(k, &want.eps[i]);
	for (size_t i = 0; i < want.n_fdbs; i++)
		dp_state_add_fdb(k, &want.fdbs[i]);
	for (size_t i = 0; i < want.n_neighs; i++)
		dp_state_add_neigh(k, &want.neighs[i]);
	/* ...plus a peer that left, a half-made network, and a dead task. */
	add_remote(k, 4242, "198.19.42.99", "192.0.2.209");
	struct dp_network half = mknet(4299, "198.19.99.0", 24, "198.19.99.1");
	dp_state_add_network(k, &half); /* complete = false */
	add_local(k, 4242, "gone", "198.19.42.50", "eth0");

	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	print_ops(p);
	assert_int_equal(dp_fake_nops(p), 4);
	assert_true(has_op(p, "ep_detach 4242 gone 198.19.42.50"));
	assert_true(has_op(p, "neigh_del 4242 198.19.42.99"));
	assert_true(has_op(p, "fdb_del 4242 02:42:c6:13:2a:63 192.0.2.209"));
	assert_true(has_op(p, "net_del 4299"));
	assert_int_equal(dp_fake_count(p, "net_add"), 0);
	assert_int_equal(dp_fake_count(p, "fdb_add"), 0);

	/* An incomplete network that is desired is remade. */
	k->nets[0].complete = false;
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	assert_string_equal(dp_fake_op(p, 0), "net_del 4242");
	assert_string_equal(dp_fake_op(p, 1), "net_add 4242");
	assert_int_equal(dp_fake_nops(p), 7);
	dp_state_clear(&want);
	dp_provider_free(p);
}

static void test_failures(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);
	base_state(&want);

	/* A failed dump changes nothing. */
	dp_fake_fail(p, "dump", -EIO);
	assert_int_equal(dp_reconcile(p, &want, &stats), -EIO);
	assert_int_equal(dp_fake_nops(p), 0);

	/* A failed network add skips its contents; the next run completes. */
	dp_fake_fail(p, "net_add 4242", -ENOMEM);
	assert_int_equal(dp_reconcile(p, &want, &stats), -ENOMEM);
	assert_int_equal(stats.failed, 1);
	assert_int_equal(dp_fake_nops(p), 0);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(stats.applied, 6);

	/* One failed peer does not stop the others, and is retried. */
	dp_state_clear(&want);
	base_state(&want);
	add_remote(&want, 4242, "198.19.42.14", "192.0.2.204");
	add_remote(&want, 4242, "198.19.42.15", "192.0.2.205");
	dp_fake_clear_ops(p);
	dp_fake_fail(p, "fdb_add 4242 02:42:c6:13:2a:0e", -EBUSY);
	assert_int_equal(dp_reconcile(p, &want, &stats), -EBUSY);
	assert_int_equal(stats.failed, 1);
	assert_int_equal(stats.applied, 3);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 1);
	assert_string_equal(dp_fake_op(p, 0), "fdb_add 4242 02:42:c6:13:2a:0e 192.0.2.204");

	/* Peers of networks not desired are ignored. */
	add_remote(&want, 5000, "198.19.50.2", "192.0.2.205");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 0);
	dp_state_clear(&want);
	dp_provider_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_keys),
		cmocka_unit_test(test_fresh_and_idempotent),
		cmocka_unit_test(test_peer_changes),
		cmocka_unit_test(test_endpoints_and_networks),
		cmocka_unit_test(test_restart_preexisting),
		cmocka_unit_test(test_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
