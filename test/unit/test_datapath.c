/* Reconcile of the overlay data path against the fake provider: networks,
 * local attachments, remote peers, the gateway bridge and its legs come and
 * go; a second run does nothing; a restart over pre-existing state adds no
 * duplicates and removes what is stale; an encrypted network is made as
 * such, and turning encryption on or off remakes the network; a kernel
 * ESP network is a plain one with the smaller MTU, and switching it to or
 * from plain (or sealed) remakes it too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
	/* Sealed and kernel ESP at once is no network. */
	n = mknet(4243, "198.19.43.0", 24, "198.19.43.1");
	n.encrypted = n.esp = true;
	assert_int_equal(dp_state_add_network(&st, &n), -EINVAL);
	n.encrypted = false;
	assert_int_equal(dp_state_add_network(&st, &n), 0);
	assert_true(dp_state_find_network(&st, 4243)->esp);

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

/* ---- gateway ---- */

static struct dp_gateway mkgw(const char *bridge, const char *subnet, uint8_t plen,
			      const char *addr)
{
	struct dp_gateway g = { .prefixlen = plen };
	snprintf(g.bridge, sizeof(g.bridge), "%s", bridge);
	g.subnet = ip4(subnet);
	g.addr = ip4(addr);
	return g;
}

static void add_gw_ep(struct dp_state *st, const char *task, const char *ip, const char *ifname)
{
	struct dp_gw_ep ep = { .ip = ip4(ip) };
	snprintf(ep.task_id, sizeof(ep.task_id), "%s", task);
	snprintf(ep.netns, sizeof(ep.netns), "/run/test/netns/%s", task);
	snprintf(ep.ifname, sizeof(ep.ifname), "%s", ifname);
	mac_for(ep.ip, ep.mac);
	assert_int_equal(dp_state_add_gw_ep(st, &ep), 0);
}

/* desired: the overlay base state, plus the gateway with legs for task1
 * (which is also on the overlay) and task2. */
static void gw_state(struct dp_state *st, const char *subnet, const char *addr,
		     const char *ip1, const char *ip2)
{
	base_state(st);
	struct dp_gateway g = mkgw("br-gw", subnet, 24, addr);
	assert_int_equal(dp_state_set_gateway(st, &g), 0);
	add_gw_ep(st, "task1", ip1, "eth1");
	if (ip2)
		add_gw_ep(st, "task2", ip2, "eth0");
}

static void test_gw_keys(void **unused)
{
	(void)unused;
	struct dp_state st;
	dp_state_init(&st);
	struct dp_gateway g = mkgw("br-gw", "198.19.255.0", 24, "198.19.255.1");
	struct dp_gateway bad = g;
	bad.prefixlen = 31;
	assert_int_equal(dp_state_set_gateway(&st, &bad), -EINVAL);
	bad = mkgw("br-gw", "198.19.255.0", 24, "198.19.254.1"); /* outside */
	assert_int_equal(dp_state_set_gateway(&st, &bad), -EINVAL);
	bad = mkgw("br-gw", "198.19.255.0", 24, "198.19.255.0"); /* network address */
	assert_int_equal(dp_state_set_gateway(&st, &bad), -EINVAL);
	bad = mkgw("", "198.19.255.0", 24, "198.19.255.1");
	assert_int_equal(dp_state_set_gateway(&st, &bad), -EINVAL);
	assert_false(st.has_gw);
	/* Host bits in the subnet are dropped. */
	struct dp_gateway g2 = mkgw("br-gw", "198.19.255.7", 24, "198.19.255.1");
	assert_int_equal(dp_state_set_gateway(&st, &g2), 0);
	assert_int_equal(st.gw.subnet.s_addr, ip4("198.19.255.0").s_addr);
	assert_int_equal(dp_state_set_gateway(&st, &g), -EEXIST);

	add_gw_ep(&st, "task1", "198.19.255.2", "eth1");
	struct dp_gw_ep ep = st.gw_eps[0];
	assert_int_equal(dp_state_add_gw_ep(&st, &ep), -EEXIST);  /* same task */
	snprintf(ep.task_id, sizeof(ep.task_id), "task9");
	assert_int_equal(dp_state_add_gw_ep(&st, &ep), -EEXIST);  /* same IP */
	ep.ip = ip4("198.19.255.9");
	ep.ifname[0] = '\0';
	assert_int_equal(dp_state_add_gw_ep(&st, &ep), -EINVAL);
	snprintf(ep.ifname, sizeof(ep.ifname), "eth1");
	ep.task_id[0] = '\0';
	assert_int_equal(dp_state_add_gw_ep(&st, &ep), -EINVAL);
	snprintf(ep.task_id, sizeof(ep.task_id), "task9");
	memset(ep.mac, 0, 6);
	assert_int_equal(dp_state_add_gw_ep(&st, &ep), -EINVAL);
	mac_for(ep.ip, ep.mac);
	assert_int_equal(dp_state_add_gw_ep(&st, &ep), 0);
	assert_non_null(dp_state_find_gw_ep(&st, "task9"));
	assert_null(dp_state_find_gw_ep(&st, "task8"));
	dp_state_clear(&st);
	assert_false(st.has_gw);
	assert_int_equal(st.n_gw_eps, 0);
}

static void test_gw_add_idempotent_remove(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);
	gw_state(&want, "198.19.255.0", "198.19.255.1", "198.19.255.2", "198.19.255.3");

	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(stats.applied, 9); /* 6 overlay + gateway + 2 legs */
	assert_int_equal(stats.failed, 0);
	assert_true(has_op(p, "gw_add br-gw 198.19.255.1/24"));
	assert_true(has_op(p, "gw_ep_attach task1 eth1 198.19.255.2"));
	assert_true(has_op(p, "gw_ep_attach task2 eth0 198.19.255.3"));
	/* The gateway comes before its legs. */
	assert_string_equal(dp_fake_op(p, 6), "gw_add br-gw 198.19.255.1/24");
	assert_true(dp_fake_state(p)->has_gw);
	assert_int_equal(dp_fake_state(p)->n_gw_eps, 2);

	for (int i = 0; i < 2; i++) {
		dp_fake_clear_ops(p);
		assert_int_equal(dp_reconcile(p, &want, &stats), 0);
		assert_int_equal(dp_fake_nops(p), 0);
		assert_int_equal(stats.applied, 0);
	}

	/* task2 stops; task1's leg moves to another address. */
	dp_state_clear(&want);
	gw_state(&want, "198.19.255.0", "198.19.255.1", "198.19.255.4", NULL);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(dp_fake_nops(p), 3);
	assert_true(has_op(p, "gw_ep_detach task2 198.19.255.3"));
	assert_true(has_op(p, "gw_ep_detach task1 198.19.255.2"));
	assert_string_equal(dp_fake_op(p, 2), "gw_ep_attach task1 eth1 198.19.255.4");
	assert_int_equal(dp_fake_count(p, "gw_add"), 0);

	/* The gateway goes, the overlay stays: one gw_del takes the legs. */
	dp_state_clear(&want);
	base_state(&want);
	add_gw_ep(&want, "task1", "198.19.255.4", "eth1"); /* no gateway: ignored */
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(dp_fake_nops(p), 1);
	assert_string_equal(dp_fake_op(p, 0), "gw_del br-gw");
	assert_false(dp_fake_state(p)->has_gw);
	assert_int_equal(dp_fake_state(p)->n_gw_eps, 0);
	assert_int_equal(dp_fake_state(p)->n_nets, 1);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 0);
	dp_state_clear(&want);
	dp_provider_free(p);
}

static void test_gw_changed(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	assert_int_equal(dp_fake_new(&p), 0);
	gw_state(&want, "198.19.255.0", "198.19.255.1", "198.19.255.2", "198.19.255.3");
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);

	/* A new subnet: the gateway is remade and both legs re-attached; the
	 * overlay is left alone. */
	dp_state_clear(&want);
	gw_state(&want, "198.19.254.0", "198.19.254.1", "198.19.254.2", "198.19.254.3");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	print_ops(p);
	assert_int_equal(dp_fake_nops(p), 4);
	assert_string_equal(dp_fake_op(p, 0), "gw_del br-gw");
	assert_string_equal(dp_fake_op(p, 1), "gw_add br-gw 198.19.254.1/24");
	assert_true(has_op(p, "gw_ep_attach task1 eth1 198.19.254.2"));
	assert_true(has_op(p, "gw_ep_attach task2 eth0 198.19.254.3"));
	assert_int_equal(dp_fake_count(p, "gw_ep_detach"), 0); /* they went with the bridge */
	assert_int_equal(dp_fake_state(p)->n_gw_eps, 2);

	/* Another gateway address in the same subnet, and another bridge
	 * name: remade each time. */
	struct dp_gateway g = mkgw("br-gw", "198.19.254.0", 24, "198.19.254.254");
	dp_state_clear(&want);
	base_state(&want);
	dp_state_set_gateway(&want, &g);
	add_gw_ep(&want, "task1", "198.19.254.2", "eth1");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	print_ops(p);
	assert_int_equal(dp_fake_nops(p), 3);
	assert_string_equal(dp_fake_op(p, 1), "gw_add br-gw 198.19.254.254/24");
	snprintf(want.gw.bridge, sizeof(want.gw.bridge), "gwbridge");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	assert_int_equal(dp_fake_nops(p), 3);
	assert_string_equal(dp_fake_op(p, 0), "gw_del br-gw");
	assert_string_equal(dp_fake_op(p, 1), "gw_add gwbridge 198.19.254.254/24");

	/* An incomplete gateway (say its NAT table was flushed) is remade. */
	dp_fake_state(p)->gw.complete = false;
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	assert_int_equal(dp_fake_nops(p), 3);
	assert_string_equal(dp_fake_op(p, 0), "gw_del gwbridge");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);
	assert_int_equal(dp_fake_nops(p), 0);
	dp_state_clear(&want);
	dp_provider_free(p);
}

/* Appends a leg to the fake kernel as a dump would show a half-made one. */
static void kernel_leftover_leg(struct dp_state *k, const char *host, const char *ip)
{
	k->gw_eps = realloc(k->gw_eps, (k->n_gw_eps + 1) * sizeof(*k->gw_eps));
	assert_non_null(k->gw_eps);
	struct dp_gw_ep e = { .ip = ip4(ip) };
	snprintf(e.host_ifname, sizeof(e.host_ifname), "%s", host);
	k->gw_eps[k->n_gw_eps++] = e;
	k->cap_gw_eps = k->n_gw_eps;
}

static void test_gw_restart(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);
	gw_state(&want, "198.19.255.0", "198.19.255.1", "198.19.255.2", "198.19.255.3");
	assert_int_equal(dp_reconcile(p, &want, NULL), 0);

	/* netd restarts: a new provider over the kernel as the last run left
	 * it (as a dump shows it), plus a leg of a task that stopped
	 * meanwhile and a half-made leg. */
	struct dp_provider *old = p;
	assert_int_equal(dp_fake_new(&p), 0);
	struct dp_state *k = dp_fake_state(p);
	assert_int_equal(old->ops->dump(old->ctx, k), 0);
	dp_provider_free(old);
	assert_true(k->has_gw && k->gw.complete);
	assert_int_equal(k->n_gw_eps, 2);
	struct dp_gw_ep gone = k->gw_eps[0];
	snprintf(gone.task_id, sizeof(gone.task_id), "gone");
	gone.ip = ip4("198.19.255.50");
	assert_int_equal(dp_state_add_gw_ep(k, &gone), 0);
	kernel_leftover_leg(k, "gc613ff33", "198.19.255.51");

	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(stats.applied, 2);
	assert_true(has_op(p, "gw_ep_detach gone 198.19.255.50"));
	assert_true(has_op(p, "gw_ep_detach  198.19.255.51"));
	assert_int_equal(dp_fake_count(p, "gw_add"), 0);
	assert_int_equal(dp_fake_count(p, "gw_ep_attach"), 0);
	assert_int_equal(k->n_gw_eps, 2);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 0);

	/* Leftover legs without any gateway are detached one by one. */
	struct dp_state none;
	dp_state_init(&none);
	assert_int_equal(dp_reconcile(p, &none, NULL), 0);
	kernel_leftover_leg(k, "gc613ff34", "198.19.255.52");
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &none, NULL), 0);
	assert_int_equal(dp_fake_nops(p), 1);
	assert_string_equal(dp_fake_op(p, 0), "gw_ep_detach  198.19.255.52");
	dp_state_clear(&want);
	dp_provider_free(p);
}

static void test_gw_failures(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);
	gw_state(&want, "198.19.255.0", "198.19.255.1", "198.19.255.2", "198.19.255.3");

	/* A failed gateway skips its legs, not the overlay; next run completes. */
	dp_fake_fail(p, "gw_add", -EPERM);
	assert_int_equal(dp_reconcile(p, &want, &stats), -EPERM);
	assert_int_equal(stats.failed, 1);
	assert_int_equal(stats.applied, 6);
	assert_int_equal(dp_fake_count(p, "gw_ep_attach"), 0);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(stats.applied, 3);

	/* One failed leg does not stop the other, and is retried. */
	dp_state_clear(&want);
	gw_state(&want, "198.19.255.0", "198.19.255.1", "198.19.255.4", "198.19.255.5");
	dp_fake_fail(p, "gw_ep_attach task1", -EBUSY);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), -EBUSY);
	assert_int_equal(stats.failed, 1);
	assert_int_equal(stats.applied, 3); /* two detaches, task2's attach */
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 1);
	assert_string_equal(dp_fake_op(p, 0), "gw_ep_attach task1 eth1 198.19.255.4");
	dp_state_clear(&want);
	dp_provider_free(p);
}

/* ---- encrypted networks ---- */

/* desired: net 4343, encrypted or not, with task1 attached; plain ones also
 * get a remote peer (netd hands an encrypted network's peers to the sealer,
 * never to the data path). */
static void enc_state(struct dp_state *st, bool encrypted)
{
	dp_state_init(st);
	struct dp_network n = mknet(4343, "198.19.43.0", 24, "198.19.43.1");
	n.encrypted = encrypted;
	assert_int_equal(dp_state_add_network(st, &n), 0);
	add_local(st, 4343, "task1", "198.19.43.11", "eth0");
	if (!encrypted)
		add_remote(st, 4343, "198.19.43.12", "192.0.2.202");
}


/* Two reconciles of want: the first tunes task1's attachment in place
 * (one ep_tune), the second finds nothing to do. */
static void assert_tuned_once(struct dp_provider *p, const struct dp_state *want)
{
	struct dp_stats stats;
	for (int i = 0; i < 2; i++) {
		dp_fake_clear_ops(p);
		assert_int_equal(dp_reconcile(p, want, &stats), 0);
		print_ops(p);
		assert_int_equal(dp_fake_nops(p), i == 0 ? 1 : 0);
		if (i == 0)
			assert_string_equal(dp_fake_op(p, 0), "ep_tune 4343 task1 vec6132b0b");
	}
}
static void test_encrypted_network(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);
	enc_state(&want, true);

	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(stats.applied, 2);
	assert_int_equal(stats.failed, 0);
	assert_int_equal(dp_fake_nops(p), 2);
	assert_string_equal(dp_fake_op(p, 0), "net_add 4343 encrypted");
	assert_string_equal(dp_fake_op(p, 1), "ep_attach 4343 task1 eth0 198.19.43.11");
	const struct dp_network *k = dp_state_find_network(dp_fake_state(p), 4343);
	assert_non_null(k);
	assert_true(k->encrypted);
	assert_true(k->complete);
	assert_int_equal(k->mtu, 1500 - DP_SEALED_OVERHEAD);

	/* Nothing to do the second and third time. */
	for (int i = 0; i < 2; i++) {
		dp_fake_clear_ops(p);
		assert_int_equal(dp_reconcile(p, &want, &stats), 0);
		print_ops(p);
		assert_int_equal(dp_fake_nops(p), 0);
		assert_int_equal(stats.applied, 0);
		assert_int_equal(stats.failed, 0);
	}

	/* An attachment an earlier netd made (its host end passes 64 KB, or
	 * its sandbox end sends 62,000-byte frames): tuned in place, once;
	 * one of unknown sizes (a kernel before 6.3) is left alone. */
	assert_int_equal(dp_fake_state(p)->n_eps, 1);
	dp_fake_state(p)->eps[0].host_gso4 = 65536;
	assert_tuned_once(p, &want);
	assert_int_equal(dp_fake_state(p)->eps[0].host_gso4, DP_SEALED_HOST_GSO);
	/* the same for a sandbox end at 62,000 (BIG TCP off) */
	assert_int_equal(dp_fake_state(p)->eps[0].ct_gso4, DP_SEALED_GSO4_MAX);
	dp_fake_state(p)->eps[0].ct_gso4 = DP_SEALED_GSO_MAX;
	assert_tuned_once(p, &want);
	assert_int_equal(dp_fake_state(p)->eps[0].ct_gso4, DP_SEALED_GSO4_MAX);
	dp_fake_state(p)->eps[0].host_gso4 = 0;
	dp_fake_state(p)->eps[0].ct_gso4 = 0;
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 0);

	/* Not desired any more: one net_del takes the attachment with it. */
	struct dp_state none;
	dp_state_init(&none);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &none, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 1);
	assert_string_equal(dp_fake_op(p, 0), "net_del 4343");
	assert_int_equal(dp_fake_state(p)->n_nets, 0);
	assert_int_equal(dp_fake_state(p)->n_eps, 0);
	dp_state_clear(&want);
	dp_provider_free(p);
}

static void test_encrypted_toggle(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);
	enc_state(&want, false);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_string_equal(dp_fake_op(p, 0), "net_add 4343");
	assert_int_equal(stats.applied, 4); /* net, attach, fdb, neigh */

	/* Same VNI, subnet and gateway, now encrypted: removed (with its
	 * attachment and peer entries) and made again, the task re-attached. */
	dp_state_clear(&want);
	enc_state(&want, true);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(stats.failed, 0);
	assert_int_equal(dp_fake_nops(p), 3);
	assert_string_equal(dp_fake_op(p, 0), "net_del 4343");
	assert_string_equal(dp_fake_op(p, 1), "net_add 4343 encrypted");
	assert_string_equal(dp_fake_op(p, 2), "ep_attach 4343 task1 eth0 198.19.43.11");
	assert_int_equal(dp_fake_count(p, "ep_detach"), 0); /* went with the namespace */
	assert_int_equal(dp_fake_count(p, "fdb_del"), 0);
	assert_int_equal(dp_fake_count(p, "neigh_del"), 0);
	const struct dp_state *k = dp_fake_state(p);
	assert_int_equal(k->n_nets, 1);
	assert_true(k->nets[0].encrypted);
	assert_int_equal(k->n_eps, 1);
	assert_int_equal(k->n_fdbs, 0);
	assert_int_equal(k->n_neighs, 0);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 0);

	/* And back to plain: remade with its peer entries. */
	dp_state_clear(&want);
	enc_state(&want, false);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(dp_fake_nops(p), 5);
	assert_string_equal(dp_fake_op(p, 0), "net_del 4343");
	assert_string_equal(dp_fake_op(p, 1), "net_add 4343");
	assert_false(dp_fake_state(p)->nets[0].encrypted);
	assert_int_equal(dp_fake_state(p)->n_fdbs, 1);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 0);
	dp_state_clear(&want);
	dp_provider_free(p);
}

/* ---- kernel ESP networks ---- */

enum kind { PLAIN, SEALED, ESP };

/* desired: net 4343 of kind k with task1 attached; plain and ESP ones also
 * get a remote peer (an ESP network's peers are on vxlan0 as a plain
 * one's). */
static void kind_state(struct dp_state *st, enum kind k)
{
	enc_state(st, k == SEALED);
	if (k == ESP) {
		st->nets[0].esp = true;
		assert_true(dp_state_find_network(st, 4343)->esp);
	}
}

static void test_esp_toggle(void **unused)
{
	(void)unused;
	struct dp_provider *p;
	struct dp_state want;
	struct dp_stats stats;
	assert_int_equal(dp_fake_new(&p), 0);

	/* Made fresh as ESP: the plain set of operations, marked. */
	kind_state(&want, ESP);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	print_ops(p);
	assert_int_equal(stats.applied, 4); /* net, attach, fdb, neigh */
	assert_int_equal(stats.failed, 0);
	assert_string_equal(dp_fake_op(p, 0), "net_add 4343 esp");
	const struct dp_state *k = dp_fake_state(p);
	assert_true(k->nets[0].esp);
	assert_false(k->nets[0].encrypted);
	assert_int_equal(k->nets[0].mtu, 1500 - DP_ESP_OVERHEAD);
	assert_int_equal(k->n_fdbs, 1);
	assert_int_equal(k->n_neighs, 1);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(dp_fake_nops(p), 0);

	/* ESP -> plain -> ESP -> sealed -> ESP: every switch is a change; the
	 * network is removed (its contents with it) and made again as the new
	 * kind, the task re-attached and, on vxlan0, its peer re-added. */
	static const enum kind seq[] = { PLAIN, ESP, SEALED, ESP };
	static const char *const add[] = { "net_add 4343", "net_add 4343 esp",
					   "net_add 4343 encrypted", "net_add 4343 esp" };
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		dp_state_clear(&want);
		kind_state(&want, seq[i]);
		dp_fake_clear_ops(p);
		assert_int_equal(dp_reconcile(p, &want, &stats), 0);
		print_ops(p);
		assert_int_equal(stats.failed, 0);
		assert_int_equal(dp_fake_nops(p), seq[i] == SEALED ? 3 : 5);
		assert_string_equal(dp_fake_op(p, 0), "net_del 4343");
		assert_string_equal(dp_fake_op(p, 1), add[i]);
		assert_string_equal(dp_fake_op(p, 2), "ep_attach 4343 task1 eth0 198.19.43.11");
		assert_int_equal(dp_fake_count(p, "ep_detach"), 0);
		k = dp_fake_state(p);
		assert_int_equal(k->n_nets, 1);
		assert_int_equal(k->nets[0].esp, seq[i] == ESP);
		assert_int_equal(k->nets[0].encrypted, seq[i] == SEALED);
		assert_int_equal(k->nets[0].mtu, 1500 - (seq[i] == ESP ? DP_ESP_OVERHEAD :
							 seq[i] == SEALED ? DP_SEALED_OVERHEAD :
							 DP_VXLAN_OVERHEAD));
		assert_int_equal(k->n_fdbs, seq[i] == SEALED ? 0 : 1);
		dp_fake_clear_ops(p);
		assert_int_equal(dp_reconcile(p, &want, &stats), 0);
		assert_int_equal(dp_fake_nops(p), 0);
	}

	/* A restart over an ESP network dumped as plain (its mark lost):
	 * remade as ESP, not kept. */
	dp_fake_state(p)->nets[0].esp = false;
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_string_equal(dp_fake_op(p, 0), "net_del 4343");
	assert_string_equal(dp_fake_op(p, 1), "net_add 4343 esp");
	assert_true(dp_fake_state(p)->nets[0].esp);

	/* A failed remake leaves it for the next run, which finishes it. */
	dp_state_clear(&want);
	kind_state(&want, PLAIN);
	dp_fake_fail(p, "net_add 4343", -EIO);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), -EIO);
	assert_int_equal(stats.failed, 1);
	assert_int_equal(dp_fake_state(p)->n_nets, 0);
	assert_int_equal(dp_fake_count(p, "ep_attach"), 0);
	dp_fake_clear_ops(p);
	assert_int_equal(dp_reconcile(p, &want, &stats), 0);
	assert_int_equal(stats.applied, 4);
	assert_string_equal(dp_fake_op(p, 0), "net_add 4343");
	assert_false(dp_fake_state(p)->nets[0].esp);
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
		cmocka_unit_test(test_gw_keys),
		cmocka_unit_test(test_gw_add_idempotent_remove),
		cmocka_unit_test(test_gw_changed),
		cmocka_unit_test(test_gw_restart),
		cmocka_unit_test(test_gw_failures),
		cmocka_unit_test(test_encrypted_network),
		cmocka_unit_test(test_encrypted_toggle),
		cmocka_unit_test(test_esp_toggle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
