/* The netlink data-path provider on a real kernel. Two "nodes" are network
 * namespaces joined by a veth pair (underlay 192.0.2.201/24 and .202/24,
 * MTU 1400); each runs the provider for overlay VNI 4242 (198.19.42.0/24)
 * with one "container" namespace attached (.11 on node A, .12 on node B),
 * and each has the other's container as a remote peer. Checks: ping over
 * VXLAN, MTU = underlay - 50, removing the peer entries breaks the ping,
 * repeated reconciles add no duplicate FDB entries, a restarted provider
 * changes nothing and removes a stale entry.
 *
 * The gateway: node A gets the gateway bridge (198.19.255.1/24) and
 * container A a leg (eth1, 198.19.255.2) with its default route; an
 * "outside" namespace hangs off node A on 198.51.100.0/24 (node A .1, outside
 * .2) with no route back to 198.19.255.0/24, so container A's ping to it
 * gets an answer only through node A's masquerade (also checked in node A's
 * conntrack table, and by removing the NAT table by hand). A restarted
 * provider finds the gateway complete, changes nothing, and removes a
 * half-made leg.
 *
 * An encrypted network (VNI 4343) on node B next to the plain one: br0 with
 * the gateway address and the alias "swarm-encrypted", no vxlan0, MTU =
 * underlay - 78 on br0 and on the attached veth; the dump reads it back
 * encrypted and complete, a second reconcile does nothing, and turning
 * encryption off remakes it with vxlan0.
 *
 * Kernel ESP: VNI 4242 switched from plain to ESP on node A, then on node
 * B, and back: remade each time with vxlan0 marked by the alias
 * "swarm-esp" and MTU = underlay - 90 (and back to no alias and - 50),
 * followed by br0, the veth and the container's end; a restarted provider
 * dumps it back as ESP, complete, and changes nothing; the peer entries
 * are re-added and the ping goes through (in clear: the XFRM states are
 * esp.h's, not made here).
 *
 * Every namespace, link, file and nftables table is made by the test (names
 * start with "dpt-"), inside namespaces the test made, and removed in
 * teardown. Needs root; exits 77 with a reason otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>
#include <nftables/libnftables.h>

#include "netd/datapath.h"
#include "netd/sealer_gro.h"
#include "netd/sealer_link.h"
#include "util.h"
#include "netns_util.h"

#define VNI 4242
#define GW_BRIDGE "dpt-br-gw"       /* prefix "dpt-" + "br-gw" */
#define GW_TABLE "dpt-swarm_gw"
#define GW_LEG "dpt-gc613ff02"      /* host end of 198.19.255.2 */
#define NFT "/usr/sbin/nft"
#define CONNTRACK "/usr/sbin/conntrack"

/* Everything the test made, for teardown. */
struct fixture {
	char dir[64];            /* mkdtemp root */
	char ns_a[128], ns_b[128];   /* node namespaces */
	char ct_a[128], ct_b[128];   /* container namespaces */
	char out[128];               /* outside namespace behind node A */
	char run_a[128], run_b[128]; /* provider run dirs */
	struct dp_provider *pa, *pb;
	const char *ping;        /* ping binary */
	bool ping_busybox;       /* run it as "busybox ping" */
	const char *no_gw;       /* why the gateway tests cannot run, or NULL */
};

static struct fixture fx;

/* ---- helpers: namespaces and links (test side) ---- */


static struct nl_sock *sock_in(const char *nspath)
{
	int fd = open(nspath, O_RDONLY | O_CLOEXEC);
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || orig < 0 || setns(fd, CLONE_NEWNET) < 0)
		abort();
	struct nl_sock *sk = nl_socket_alloc();
	if (nl_connect(sk, NETLINK_ROUTE) < 0)
		abort();
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(fd);
	close(orig);
	return sk;
}

static int link_up_addr(struct nl_sock *sk, const char *name, const char *cidr)
{
	struct rtnl_link *l;
	int r = rtnl_link_get_kernel(sk, 0, name, &l);
	if (r < 0)
		return r;
	struct nl_addr *a;
	nl_addr_parse(cidr, AF_INET, &a);
	struct rtnl_addr *ra = rtnl_addr_alloc();
	rtnl_addr_set_ifindex(ra, rtnl_link_get_ifindex(l));
	rtnl_addr_set_local(ra, a);
	r = rtnl_addr_add(sk, ra, 0);
	rtnl_addr_put(ra);
	nl_addr_put(a);
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_flags(c, IFF_UP);
	if (r == 0)
		r = rtnl_link_change(sk, l, c, 0);
	rtnl_link_put(c);
	rtnl_link_put(l);
	return r;
}

/* Underlay: veth dpt-u0 in node A, dpt-u1 in node B, MTU 1400. */
static int make_underlay(void)
{
	struct nl_sock *a = sock_in(fx.ns_a), *b = sock_in(fx.ns_b);
	int bfd = open(fx.ns_b, O_RDONLY | O_CLOEXEC);
	struct rtnl_link *l = rtnl_link_veth_alloc();
	struct rtnl_link *peer = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(l, "dpt-u0");
	rtnl_link_set_mtu(l, 1400);
	rtnl_link_set_name(peer, "dpt-u1");
	rtnl_link_set_mtu(peer, 1400);
	rtnl_link_set_ns_fd(peer, bfd);
	int r = rtnl_link_add(a, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(peer);
	rtnl_link_veth_release(l);
	close(bfd);
	if (r == 0)
		r = link_up_addr(a, "dpt-u0", "192.0.2.201/24");
	if (r == 0)
		r = link_up_addr(b, "dpt-u1", "192.0.2.202/24");
	if (r < 0)
		fprintf(stderr, "underlay: %s\n", nl_geterror(r));
	nl_socket_free(a);
	nl_socket_free(b);
	return r;
}

/* Outside: veth dpt-o0 in node A (198.51.100.1/24), dpt-o1 in the outside
 * namespace (198.51.100.2/24); the outside has no other route. */
static int make_outside(void)
{
	struct nl_sock *a = sock_in(fx.ns_a), *o = sock_in(fx.out);
	int ofd = open(fx.out, O_RDONLY | O_CLOEXEC);
	struct rtnl_link *l = rtnl_link_veth_alloc();
	struct rtnl_link *peer = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(l, "dpt-o0");
	rtnl_link_set_name(peer, "dpt-o1");
	rtnl_link_set_ns_fd(peer, ofd);
	int r = rtnl_link_add(a, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(peer);
	rtnl_link_veth_release(l);
	close(ofd);
	if (r == 0)
		r = link_up_addr(a, "dpt-o0", "198.51.100.1/24");
	if (r == 0)
		r = link_up_addr(o, "dpt-o1", "198.51.100.2/24");
	if (r < 0)
		fprintf(stderr, "outside: %s\n", nl_geterror(r));
	nl_socket_free(a);
	nl_socket_free(o);
	return r;
}

static uint32_t link_mtu(const char *nspath, const char *name)
{
	struct nl_sock *sk = sock_in(nspath);
	struct rtnl_link *l;
	uint32_t mtu = 0;
	if (rtnl_link_get_kernel(sk, 0, name, &l) == 0) {
		mtu = rtnl_link_get_mtu(l);
		rtnl_link_put(l);
	}
	nl_socket_free(sk);
	return mtu;
}

/* ifindex of link name in nspath (0: absent). */
static uint32_t link_index(const char *nspath, const char *name)
{
	struct nl_sock *sk = sock_in(nspath);
	struct rtnl_link *l;
	uint32_t idx = 0;
	if (rtnl_link_get_kernel(sk, 0, name, &l) == 0) {
		idx = (uint32_t)rtnl_link_get_ifindex(l);
		rtnl_link_put(l);
	}
	nl_socket_free(sk);
	return idx;
}

static int gso4_cb(struct nl_msg *m, void *arg)
{
	struct nlattr *tb[GRO_IFLA_GSO_IPV4_MAX_SIZE + 1];
	if (nlmsg_parse(nlmsg_hdr(m), sizeof(struct ifinfomsg), tb, GRO_IFLA_GSO_IPV4_MAX_SIZE,
			NULL) == 0 && tb[GRO_IFLA_GSO_IPV4_MAX_SIZE])
		*(uint32_t *)arg = nla_get_u32(tb[GRO_IFLA_GSO_IPV4_MAX_SIZE]);
	return NL_OK;
}

/* gso_ipv4_max_size of link name in nspath (0: absent, or a kernel before
 * 6.3), which libnl does not parse. */
static uint32_t link_gso_ipv4_max(const char *nspath, const char *name)
{
	struct nl_sock *sk = sock_in(nspath);
	uint32_t v = 0;
	struct rtnl_link *l;
	if (rtnl_link_get_kernel(sk, 0, name, &l) == 0) {
		struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = rtnl_link_get_ifindex(l) };
		rtnl_link_put(l);
		nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, gso4_cb, &v);
		if (nl_send_simple(sk, RTM_GETLINK, 0, &ifi, sizeof(ifi)) >= 0)
			nl_recvmsgs_default(sk);
	}
	nl_socket_free(sk);
	return v;
}

/* Whether link name in nspath has alias (false when the link is absent). */
static bool link_alias_is(const char *nspath, const char *name, const char *alias)
{
	struct nl_sock *sk = sock_in(nspath);
	struct rtnl_link *l;
	bool same = false;
	if (rtnl_link_get_kernel(sk, 0, name, &l) == 0) {
		const char *a = rtnl_link_get_ifalias(l);
		same = a && strcmp(a, alias) == 0;
		rtnl_link_put(l);
	}
	nl_socket_free(sk);
	return same;
}

/* Number of IPv4 addresses cidr ("a.b.c.d/n") on link name in nspath. */
static int link_has_addr(const char *nspath, const char *name, const char *cidr)
{
	struct nl_sock *sk = sock_in(nspath);
	struct nl_cache *cache;
	struct nl_addr *want;
	int n = 0, idx = 0;
	struct rtnl_link *l;
	if (rtnl_link_get_kernel(sk, 0, name, &l) == 0) {
		idx = rtnl_link_get_ifindex(l);
		rtnl_link_put(l);
	}
	assert_int_equal(nl_addr_parse(cidr, AF_INET, &want), 0);
	if (idx && rtnl_addr_alloc_cache(sk, &cache) == 0) {
		for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
			struct rtnl_addr *a = (struct rtnl_addr *)o;
			struct nl_addr *loc = rtnl_addr_get_local(a);
			if (rtnl_addr_get_family(a) == AF_INET && rtnl_addr_get_ifindex(a) == idx &&
			    loc && nl_addr_get_len(loc) == 4 &&
			    memcmp(nl_addr_get_binary_addr(loc), nl_addr_get_binary_addr(want), 4) == 0 &&
			    rtnl_addr_get_prefixlen(a) == (int)nl_addr_get_prefixlen(want))
				n++;
		}
		nl_cache_free(cache);
	}
	nl_addr_put(want);
	nl_socket_free(sk);
	return n;
}

/* Runs argv with its network namespace set to nspath; returns the exit
 * status (or -1), and the number of stdout lines containing match when
 * match is given (then *count is set). */
static int run_in(const char *nspath, char *const argv[], const char *match, int *count)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(nspath, O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(126);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (match && strstr(line, match))
			n++;
		if (!match)
			fputs(line, stderr);
	}
	fclose(f);
	int status;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (count)
		*count = n;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* 0 when one ping from namespace ns to ip gets an answer. */
static int ping_from(const char *ns, const char *ip, const char *wait)
{
	char *bb[] = { (char *)fx.ping, "ping", "-c1", "-W", (char *)wait, (char *)ip, NULL };
	char *pl[] = { (char *)fx.ping, "-c1", "-W", (char *)wait, (char *)ip, NULL };
	return run_in(ns, fx.ping_busybox ? bb : pl, NULL, NULL);
}

/* 0 when one ping from container A to container B's overlay IP gets an answer. */
static int ping_b_from_a(void)
{
	return ping_from(fx.ct_a, "198.19.42.12", "2");
}

/* Number of output lines of argv run in ns that contain match; -1 when
 * the command fails. */
static int count_in(const char *ns, char *const argv[], const char *match)
{
	int n = 0;
	return run_in(ns, argv, match, &n) == 0 ? n : -1;
}

/* Number of FDB entries with a dst on vxlan0 in node A's overlay namespace,
 * counted by iproute2's bridge tool (independent of the provider's dump). */
static int fdb_count_a(void)
{
	char ov[DP_PATH_MAX];
	int n = -1;
	assert_int_equal(dp_netlink_ns_path(fx.pa, VNI, ov, sizeof(ov)), 0);
	char *argv[] = { "/usr/sbin/bridge", "fdb", "show", "dev", "vxlan0", NULL };
	assert_int_equal(run_in(ov, argv, " dst ", &n), 0);
	return n;
}

/* ---- desired states ---- */

static struct in_addr ip4(const char *s)
{
	struct in_addr a;
	inet_pton(AF_INET, s, &a);
	return a;
}

static void mac_for(struct in_addr ip, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x42;
	memcpy(mac + 2, &ip, 4);
}

/* Node with container ip in ctns; peer_ip behind peer_vtep (NULL: none). */
static void desired(struct dp_state *st, const char *task, const char *ctns, const char *ip,
		    const char *peer_ip, const char *peer_vtep)
{
	dp_state_init(st);
	struct dp_network n = { .vni = VNI, .prefixlen = 24 };
	n.subnet = ip4("198.19.42.0");
	n.gateway = ip4("198.19.42.1");
	assert_int_equal(dp_state_add_network(st, &n), 0);
	struct dp_local_ep ep = { .vni = VNI };
	snprintf(ep.task_id, sizeof(ep.task_id), "%s", task);
	snprintf(ep.netns, sizeof(ep.netns), "%s", ctns);
	snprintf(ep.ifname, sizeof(ep.ifname), "eth0");
	ep.ip = ip4(ip);
	mac_for(ep.ip, ep.mac);
	assert_int_equal(dp_state_add_local(st, &ep), 0);
	if (peer_ip) {
		uint8_t mac[6];
		mac_for(ip4(peer_ip), mac);
		assert_int_equal(dp_state_add_remote(st, VNI, ip4(peer_ip), mac, ip4(peer_vtep)), 0);
	}
}

static void desired_a(struct dp_state *st, bool with_peer)
{
	desired(st, "dpt-task-a", fx.ct_a, "198.19.42.11", with_peer ? "198.19.42.12" : NULL,
		"192.0.2.202");
}

/* desired_a with the gateway and container A's leg on it. */
static void desired_a_gw(struct dp_state *st)
{
	desired_a(st, true);
	struct dp_gateway g = { .bridge = "br-gw", .prefixlen = 24 };
	g.subnet = ip4("198.19.255.0");
	g.addr = ip4("198.19.255.1");
	assert_int_equal(dp_state_set_gateway(st, &g), 0);
	struct dp_gw_ep ep = { .task_id = "dpt-task-a", .ifname = "eth1" };
	snprintf(ep.netns, sizeof(ep.netns), "%s", fx.ct_a);
	ep.ip = ip4("198.19.255.2");
	mac_for(ep.ip, ep.mac);
	assert_int_equal(dp_state_add_gw_ep(st, &ep), 0);
}

static void desired_b(struct dp_state *st)
{
	desired(st, "dpt-task-b", fx.ct_b, "198.19.42.12", "198.19.42.11", "192.0.2.201");
}

static int new_provider(const char *run, const char *node, const char *local,
			struct dp_provider **out)
{
	struct dp_netlink_config cfg = {
		.run_dir = run, .prefix = "dpt-", .underlay_netns = node,
		.local_addr = ip4(local),
	};
	return dp_netlink_new(&cfg, out);
}

/* ---- fixture ---- */

static int teardown(void **unused)
{
	(void)unused;
	struct dp_state none;
	dp_state_init(&none);
	if (fx.pa)
		dp_reconcile(fx.pa, &none, NULL);
	if (fx.pb)
		dp_reconcile(fx.pb, &none, NULL);
	dp_provider_free(fx.pa);
	dp_provider_free(fx.pb);
	fx.pa = fx.pb = NULL;
	drop_netns(fx.ct_a);
	drop_netns(fx.ct_b);
	drop_netns(fx.out);
	drop_netns(fx.ns_a); /* takes the underlay veth pair with it */
	drop_netns(fx.ns_b);
	if (fx.dir[0])
		rm_rf(fx.dir);
	return 0;
}

static int setup(void **unused)
{
	(void)unused;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/dpt-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.ns_a, sizeof(fx.ns_a), "%s/dpt-node-a", fx.dir);
	snprintf(fx.ns_b, sizeof(fx.ns_b), "%s/dpt-node-b", fx.dir);
	snprintf(fx.ct_a, sizeof(fx.ct_a), "%s/dpt-ct-a", fx.dir);
	snprintf(fx.ct_b, sizeof(fx.ct_b), "%s/dpt-ct-b", fx.dir);
	snprintf(fx.out, sizeof(fx.out), "%s/dpt-out", fx.dir);
	snprintf(fx.run_a, sizeof(fx.run_a), "%s/run-a", fx.dir);
	snprintf(fx.run_b, sizeof(fx.run_b), "%s/run-b", fx.dir);
	if (mkdir(fx.run_a, 0700) < 0 || mkdir(fx.run_b, 0700) < 0)
		goto fail;
	if (make_netns(fx.ns_a) < 0 || make_netns(fx.ns_b) < 0 ||
	    make_netns(fx.ct_a) < 0 || make_netns(fx.ct_b) < 0 || make_netns(fx.out) < 0)
		goto fail;
	if (make_underlay() < 0 || make_outside() < 0)
		goto fail;
	if (new_provider(fx.run_a, fx.ns_a, "192.0.2.201", &fx.pa) < 0 ||
	    new_provider(fx.run_b, fx.ns_b, "192.0.2.202", &fx.pb) < 0)
		goto fail;
	return 0;
fail:
	teardown(NULL);
	return -1;
}

/* ---- tests ---- */

static void test_overlay_ping(void **unused)
{
	(void)unused;
	struct dp_state a, b;
	struct dp_stats st;
	desired_a(&a, true);
	desired_b(&b);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 4); /* net, attach, fdb, neigh */
	assert_int_equal(dp_reconcile(fx.pb, &b, NULL), 0);

	/* MTU: underlay 1400 - 50 on vxlan0 and on both veth ends. */
	char ov[DP_PATH_MAX];
	assert_int_equal(dp_netlink_ns_path(fx.pa, VNI, ov, sizeof(ov)), 0);
	assert_int_equal(link_mtu(ov, "vxlan0"), 1350);
	assert_int_equal(link_mtu(ov, "vec6132a0b"), 1350);
	if (link_gso_ipv4_max(ov, "lo"))   /* plain networks keep the default */
		assert_int_equal(link_gso_ipv4_max(ov, "vec6132a0b"), 65536);
	assert_int_equal(link_mtu(fx.ct_a, "eth0"), 1350);
	assert_int_equal(link_mtu(fx.ct_b, "eth0"), 1350);

	assert_int_equal(ping_b_from_a(), 0);

	/* Reconcile twice more: nothing applied, one FDB entry. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
		assert_int_equal(st.applied, 0);
		assert_int_equal(st.failed, 0);
	}
	assert_int_equal(fdb_count_a(), 1);

	/* Without the peer entries on A the request has nowhere to go. */
	dp_state_clear(&a);
	desired_a(&a, false);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 2); /* fdb del, neigh del */
	assert_int_equal(fdb_count_a(), 0);
	assert_int_not_equal(ping_b_from_a(), 0);

	/* Back again. */
	dp_state_clear(&a);
	desired_a(&a, true);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 2);
	assert_int_equal(fdb_count_a(), 1);
	assert_int_equal(ping_b_from_a(), 0);
	dp_state_clear(&a);
	dp_state_clear(&b);
}

static void test_restart(void **unused)
{
	(void)unused;
	struct dp_state a, dumped;
	struct dp_stats st;
	desired_a(&a, true);

	/* A stale peer programmed by "the previous run". */
	struct dp_fdb stale = { .vni = VNI, .vtep = ip4("192.0.2.209") };
	mac_for(ip4("198.19.42.99"), stale.mac);
	assert_int_equal(fx.pa->ops->fdb_add(fx.pa->ctx, &stale), 0);
	assert_int_equal(fdb_count_a(), 2);
	/* And a half-made attachment: a veth on the overlay side without the
	 * alias that marks it complete. */
	char ov[DP_PATH_MAX];
	assert_int_equal(dp_netlink_ns_path(fx.pa, VNI, ov, sizeof(ov)), 0);
	struct nl_sock *sk = sock_in(ov);
	struct rtnl_link *l = rtnl_link_veth_alloc();
	struct rtnl_link *peer = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(l, "ve0000beef");
	rtnl_link_set_name(peer, "dpt-x0"); /* stays in the overlay ns too */
	assert_int_equal(rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL), 0);
	rtnl_link_put(peer);
	rtnl_link_veth_release(l);
	nl_socket_free(sk);

	/* A new provider instance: the dump shows what the last one made. */
	dp_provider_free(fx.pa);
	fx.pa = NULL;
	assert_int_equal(new_provider(fx.run_a, fx.ns_a, "192.0.2.201", &fx.pa), 0);
	dp_state_init(&dumped);
	assert_int_equal(fx.pa->ops->dump(fx.pa->ctx, &dumped), 0);
	assert_int_equal(dumped.n_nets, 1);
	assert_true(dumped.nets[0].complete);
	assert_int_equal(dumped.nets[0].mtu, 1350);
	assert_int_equal(dumped.n_eps, 3); /* ours, and both ends of the leftover */
	int ours = 0, leftovers = 0;
	for (size_t i = 0; i < dumped.n_eps; i++) {
		if (strcmp(dumped.eps[i].task_id, "dpt-task-a") == 0 &&
		    strcmp(dumped.eps[i].ifname, "eth0") == 0)
			ours++;
		else if (dumped.eps[i].task_id[0] == '\0')
			leftovers++;
	}
	assert_int_equal(ours, 1);
	assert_int_equal(leftovers, 2);
	assert_int_equal(dumped.n_fdbs, 2);
	assert_int_equal(dumped.n_neighs, 1);
	dp_state_clear(&dumped);

	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	/* The stale FDB entry; the leftover pair (the second delete finds
	 * its end already gone with the first, which counts as done). */
	assert_int_equal(st.applied, 3);
	assert_int_equal(fdb_count_a(), 1);
	assert_int_equal(link_mtu(ov, "ve0000beef"), 0);
	assert_int_equal(ping_b_from_a(), 0);
	dp_state_clear(&a);
}

/* 0 when node A's NAT table exists (nft's own view). */
static int nft_table_a(void)
{
	char *argv[] = { NFT, "list", "table", "ip", GW_TABLE, NULL };
	return count_in(fx.ns_a, argv, "masquerade");
}

/* Conntrack entries in node A of pings from container A's leg whose reply
 * goes to node A's outside address, i.e. that were masqueraded. */
static int masqueraded_pings(void)
{
	char *argv[] = { CONNTRACK, "-L", "-p", "icmp", "-s", "198.19.255.2", NULL };
	return count_in(fx.ns_a, argv, " dst=198.51.100.1 ");
}

static void test_gateway(void **unused)
{
	(void)unused;
	if (fx.no_gw) {
		print_message("skipped: %s\n", fx.no_gw);
		skip();
	}
	struct dp_state a;
	struct dp_stats st;
	desired_a_gw(&a);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 2); /* gateway, leg; the overlay is kept */
	assert_int_equal(st.failed, 0);

	/* What the kernel holds, seen by the tools rather than the dump. */
	assert_int_not_equal(link_mtu(fx.ns_a, GW_BRIDGE), 0);
	assert_int_not_equal(link_mtu(fx.ns_a, GW_LEG), 0);
	assert_int_not_equal(link_mtu(fx.ct_a, "eth1"), 0);
	assert_int_not_equal(link_mtu(fx.ct_a, "eth0"), 0); /* overlay leg still there */
	char *route[] = { "/usr/sbin/ip", "-4", "route", "show", "default", NULL };
	assert_int_equal(count_in(fx.ct_a, route, "via 198.19.255.1 dev eth1"), 1);
	char *fwd[] = { "/bin/cat", "/proc/sys/net/ipv4/ip_forward", NULL };
	assert_int_equal(count_in(fx.ns_a, fwd, "1"), 1);
	assert_int_equal(nft_table_a(), 1);
	char *master[] = { "/usr/sbin/ip", "-o", "link", "show", "master", GW_BRIDGE, NULL };
	assert_int_equal(count_in(fx.ns_a, master, GW_LEG "@"), 1);
	char *isolated[] = { "/usr/sbin/ip", "-d", "link", "show", GW_LEG, NULL };
	assert_int_equal(count_in(fx.ns_a, isolated, "isolated on"), 1);

	/* Out through node A: the outside has no route back to
	 * 198.19.255.0/24, so an answer means the source was rewritten. */
	assert_int_equal(ping_from(fx.ct_a, "198.51.100.2", "2"), 0);
	if (access(CONNTRACK, X_OK) == 0)
		assert_true(masqueraded_pings() >= 1);
	/* The overlay still works next to it. */
	assert_int_equal(ping_b_from_a(), 0);

	for (int i = 0; i < 2; i++) {
		assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
		assert_int_equal(st.applied, 0);
		assert_int_equal(st.failed, 0);
	}

	/* Without the NAT table the outside cannot answer; the reconcile sees
	 * the gateway incomplete and remakes it with its leg. */
	char *del[] = { NFT, "delete", "table", "ip", GW_TABLE, NULL };
	assert_int_equal(run_in(fx.ns_a, del, NULL, NULL), 0);
	assert_int_equal(nft_table_a(), -1);
	assert_int_not_equal(ping_from(fx.ct_a, "198.51.100.2", "1"), 0);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 3); /* gw_del, gw_add, leg */
	assert_int_equal(nft_table_a(), 1);
	assert_int_equal(ping_from(fx.ct_a, "198.51.100.2", "2"), 0);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 0);
	dp_state_clear(&a);
}

static void test_gateway_restart(void **unused)
{
	(void)unused;
	if (fx.no_gw)
		skip();
	struct dp_state a, dumped;
	struct dp_stats st;
	desired_a_gw(&a);

	/* A half-made leg: a veth on the bridge without the alias. */
	struct nl_sock *sk = sock_in(fx.ns_a);
	struct rtnl_link *br;
	assert_int_equal(rtnl_link_get_kernel(sk, 0, GW_BRIDGE, &br), 0);
	struct rtnl_link *l = rtnl_link_veth_alloc();
	struct rtnl_link *peer = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(l, "dpt-gdeadbeef");
	rtnl_link_set_master(l, rtnl_link_get_ifindex(br));
	rtnl_link_set_name(peer, "dpt-y0"); /* stays in node A, not on the bridge */
	assert_int_equal(rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL), 0);
	rtnl_link_put(peer);
	rtnl_link_veth_release(l);
	rtnl_link_put(br);
	nl_socket_free(sk);

	/* netd restarts: a new provider reads the gateway back. */
	dp_provider_free(fx.pa);
	fx.pa = NULL;
	assert_int_equal(new_provider(fx.run_a, fx.ns_a, "192.0.2.201", &fx.pa), 0);
	dp_state_init(&dumped);
	assert_int_equal(fx.pa->ops->dump(fx.pa->ctx, &dumped), 0);
	assert_true(dumped.has_gw);
	assert_true(dumped.gw.complete);
	assert_string_equal(dumped.gw.bridge, "br-gw");
	assert_int_equal(dumped.gw.addr.s_addr, ip4("198.19.255.1").s_addr);
	assert_int_equal(dumped.gw.subnet.s_addr, ip4("198.19.255.0").s_addr);
	assert_int_equal(dumped.gw.prefixlen, 24);
	assert_int_equal(dumped.n_gw_eps, 2);
	int ours = 0, leftovers = 0;
	for (size_t i = 0; i < dumped.n_gw_eps; i++) {
		const struct dp_gw_ep *e = &dumped.gw_eps[i];
		if (strcmp(e->task_id, "dpt-task-a") == 0 && strcmp(e->ifname, "eth1") == 0 &&
		    strcmp(e->host_ifname, GW_LEG) == 0 && e->ip.s_addr == ip4("198.19.255.2").s_addr &&
		    memcmp(e->mac, a.gw_eps[0].mac, 6) == 0)
			ours++;
		else if (e->task_id[0] == '\0' && strcmp(e->host_ifname, "dpt-gdeadbeef") == 0)
			leftovers++;
	}
	assert_int_equal(ours, 1);
	assert_int_equal(leftovers, 1);
	dp_state_clear(&dumped);

	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 1); /* the leftover leg */
	assert_int_equal(st.failed, 0);
	assert_int_equal(link_mtu(fx.ns_a, "dpt-gdeadbeef"), 0);
	assert_int_equal(link_mtu(fx.ns_a, "dpt-y0"), 0);
	assert_int_equal(ping_from(fx.ct_a, "198.51.100.2", "2"), 0);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 0);
	dp_state_clear(&a);
}

/* An encrypted network next to the plain one, on node B: VNI 4343,
 * 198.19.43.0/24, container B attached as eth1 (.12). No vxlan0; br0 has the
 * gateway address, the alias and MTU 1400 - 78, which the veth follows. */
#define ENC_VNI 4343
#define ENC_MTU (1400 - DP_SEALED_OVERHEAD)

static void desired_b_enc(struct dp_state *st, bool encrypted)
{
	desired_b(st);
	struct dp_network n = { .vni = ENC_VNI, .prefixlen = 24, .encrypted = encrypted };
	n.subnet = ip4("198.19.43.0");
	n.gateway = ip4("198.19.43.1");
	assert_int_equal(dp_state_add_network(st, &n), 0);
	struct dp_local_ep ep = { .vni = ENC_VNI, .task_id = "dpt-task-b", .ifname = "eth1" };
	snprintf(ep.netns, sizeof(ep.netns), "%s", fx.ct_b);
	ep.ip = ip4("198.19.43.12");
	mac_for(ep.ip, ep.mac);
	assert_int_equal(dp_state_add_local(st, &ep), 0);
}

static void test_encrypted_network(void **unused)
{
	(void)unused;
	struct dp_state b, dumped;
	struct dp_stats st;
	char ov[DP_PATH_MAX];
	assert_int_equal(dp_netlink_ns_path(fx.pb, ENC_VNI, ov, sizeof(ov)), 0);
	desired_b_enc(&b, true);
	assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
	assert_int_equal(st.applied, 2); /* net, attach; VNI 4242 is kept */
	assert_int_equal(st.failed, 0);

	/* What the kernel holds, read directly. */
	assert_int_equal(access(ov, F_OK), 0);
	assert_int_equal(link_mtu(ov, "br0"), ENC_MTU);
	assert_true(link_alias_is(ov, "br0", "swarm-encrypted"));
	assert_int_equal(link_has_addr(ov, "br0", "198.19.43.1/24"), 1);
	assert_int_equal(link_mtu(ov, "vxlan0"), 0);       /* none */
	assert_int_equal(link_mtu(ov, "vec6132b0c"), ENC_MTU); /* host end of .12 */
	/* it passes the sealer's coalesced frames whole (on 6.3+ kernels) */
	if (link_gso_ipv4_max(ov, "lo")) {
		assert_int_equal(link_gso_ipv4_max(ov, "vec6132b0c"), GRO_MAX_LEN);
		/* as an earlier netd left it: the reconcile puts it right in
		 * place (the same link, not a new attachment) */
		uint32_t idx = link_index(ov, "vec6132b0c");
		assert_int_equal(netns_link_set_u32(ov, "vec6132b0c", GRO_IFLA_GSO_IPV4_MAX_SIZE, 65536), 0);
		assert_int_equal(link_gso_ipv4_max(ov, "vec6132b0c"), 65536);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 1);
		assert_int_equal(st.failed, 0);
		assert_int_equal(link_gso_ipv4_max(ov, "vec6132b0c"), GRO_MAX_LEN);
		assert_int_equal(link_index(ov, "vec6132b0c"), idx);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 0);
	}
	assert_int_equal(link_mtu(fx.ct_b, "eth1"), ENC_MTU);
	/* the container sends IPv4 TCP in BIG TCP super-frames; as an
	 * earlier netd left it (62,000), the reconcile raises it in place */
	if (link_gso_ipv4_max(ov, "lo")) {
		assert_int_equal(link_gso_ipv4_max(fx.ct_b, "eth1"), DP_SEALED_GSO4_MAX);
		uint32_t idx = link_index(fx.ct_b, "eth1");
		assert_int_equal(netns_link_set_u32(fx.ct_b, "eth1", GRO_IFLA_GSO_IPV4_MAX_SIZE,
						    DP_SEALED_GSO_MAX), 0);
		assert_int_equal(link_gso_ipv4_max(fx.ct_b, "eth1"), DP_SEALED_GSO_MAX);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 1);
		assert_int_equal(st.failed, 0);
		assert_int_equal(link_gso_ipv4_max(fx.ct_b, "eth1"), DP_SEALED_GSO4_MAX);
		assert_int_equal(link_index(fx.ct_b, "eth1"), idx);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 0);
	}
	assert_int_equal(link_has_addr(fx.ct_b, "eth1", "198.19.43.12/24"), 1);
	assert_int_equal(link_mtu(fx.ct_b, "eth0"), 1350); /* the plain network's leg */

	/* The dump reads it back as encrypted and complete. */
	dp_state_init(&dumped);
	assert_int_equal(fx.pb->ops->dump(fx.pb->ctx, &dumped), 0);
	const struct dp_network *n = dp_state_find_network(&dumped, ENC_VNI);
	assert_non_null(n);
	assert_true(n->encrypted);
	assert_true(n->complete);
	assert_int_equal(n->mtu, ENC_MTU);
	assert_int_equal(n->gateway.s_addr, ip4("198.19.43.1").s_addr);
	assert_int_equal(n->subnet.s_addr, ip4("198.19.43.0").s_addr);
	assert_int_equal(n->prefixlen, 24);
	const struct dp_network *plain = dp_state_find_network(&dumped, VNI);
	assert_non_null(plain);
	assert_false(plain->encrypted);
	assert_true(plain->complete);
	int eps = 0;
	for (size_t i = 0; i < dumped.n_eps; i++)
		if (dumped.eps[i].vni == ENC_VNI) {
			assert_string_equal(dumped.eps[i].task_id, "dpt-task-b");
			assert_string_equal(dumped.eps[i].ifname, "eth1");
			assert_int_equal(dumped.eps[i].ip.s_addr, ip4("198.19.43.12").s_addr);
			eps++;
		}
	assert_int_equal(eps, 1);
	for (size_t i = 0; i < dumped.n_fdbs; i++)
		assert_int_not_equal(dumped.fdbs[i].vni, ENC_VNI);
	dp_state_clear(&dumped);

	/* Reconciling again changes nothing. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 0);
		assert_int_equal(st.failed, 0);
	}

	/* The sealer's veth pair on br0 (made here with iproute2 as
	 * swarm-sealer does, sealer_link.h) is not an attachment: the
	 * reconcile leaves it alone by its alias. */
	if (access("/usr/sbin/ip", X_OK) == 0) {
		char *add[] = { "/usr/sbin/ip", "link", "add", "sealer0", "type", "veth", "peer", "name",
				"sealer0p", NULL };
		char *al0[] = { "/usr/sbin/ip", "link", "set", "sealer0", "alias", SEALER_LINK_ALIAS, NULL };
		char *al1[] = { "/usr/sbin/ip", "link", "set", "sealer0p", "alias", SEALER_LINK_ALIAS, NULL };
		char *up[] = { "/usr/sbin/ip", "link", "set", "sealer0", "master", "br0", "up", NULL };
		assert_int_equal(run_in(ov, add, NULL, NULL), 0);
		assert_int_equal(run_in(ov, al0, NULL, NULL), 0);
		assert_int_equal(run_in(ov, al1, NULL, NULL), 0);
		assert_int_equal(run_in(ov, up, NULL, NULL), 0);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 0);
		assert_int_equal(st.failed, 0);
		assert_int_equal(link_mtu(ov, "sealer0"), 1500);  /* untouched, there */
		assert_int_equal(link_mtu(ov, "sealer0p"), 1500);
		assert_int_equal(link_mtu(ov, "br0"), ENC_MTU);   /* the veth keeps it down */
	}

	/* Two attachments made by an earlier netd: both raised in one
	 * reconcile (the dump reads every sandbox end, not the first only). */
	if (link_gso_ipv4_max(ov, "lo")) {
		struct dp_local_ep ep2 = { .vni = ENC_VNI, .task_id = "dpt-task-b2", .ifname = "eth2" };
		snprintf(ep2.netns, sizeof(ep2.netns), "%s", fx.ct_b);
		ep2.ip = ip4("198.19.43.13");
		mac_for(ep2.ip, ep2.mac);
		assert_int_equal(dp_state_add_local(&b, &ep2), 0);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 1);
		const char *legs[] = { "eth1", "eth2" };
		for (int i = 0; i < 2; i++)
			assert_int_equal(netns_link_set_u32(fx.ct_b, legs[i], GRO_IFLA_GSO_IPV4_MAX_SIZE,
							    DP_SEALED_GSO_MAX), 0);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 2);
		assert_int_equal(st.failed, 0);
		for (int i = 0; i < 2; i++)
			assert_int_equal(link_gso_ipv4_max(fx.ct_b, legs[i]), DP_SEALED_GSO4_MAX);
		dp_state_clear(&b);
		desired_b_enc(&b, true);
		assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
		assert_int_equal(st.applied, 1);   /* eth2 detached */
		assert_int_equal(link_mtu(fx.ct_b, "eth2"), 0);
	}

	/* Encryption off: remade with vxlan0 and the plain MTU. */
	dp_state_clear(&b);
	desired_b_enc(&b, false);
	assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
	assert_int_equal(st.applied, 3); /* net del, net add, attach */
	assert_int_equal(st.failed, 0);
	assert_int_equal(link_mtu(ov, "vxlan0"), 1350);
	assert_false(link_alias_is(ov, "br0", "swarm-encrypted"));
	assert_int_equal(link_mtu(fx.ct_b, "eth1"), 1350);
	assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
	assert_int_equal(st.applied, 0);

	/* Gone again, with container B's leg; the plain network stays. */
	dp_state_clear(&b);
	desired_b(&b);
	assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
	assert_int_equal(st.applied, 1);
	assert_int_equal(access(ov, F_OK), -1);
	assert_int_equal(link_mtu(fx.ct_b, "eth1"), 0);
	assert_int_equal(link_mtu(fx.ct_b, "eth0"), 1350);
	dp_state_clear(&b);
}

/* Kernel ESP on VNI 4242, which both nodes hold plain by now. */
#define ESP_MTU (1400 - DP_ESP_OVERHEAD)

/* Node A's desired state as the earlier tests left it (with the gateway
 * when those ran), VNI 4242 plain or ESP. */
static void desired_a_kind(struct dp_state *st, bool esp)
{
	if (fx.no_gw)
		desired_a(st, true);
	else
		desired_a_gw(st);
	st->nets[0].esp = esp;
}

static void desired_b_kind(struct dp_state *st, bool esp)
{
	desired_b(st);
	st->nets[0].esp = esp;
}

/* The network vni of a fresh dump of p (asserted present), copied out. */
static struct dp_network dumped_net(struct dp_provider *p, uint32_t vni, size_t *n_fdbs)
{
	struct dp_state d;
	dp_state_init(&d);
	assert_int_equal(p->ops->dump(p->ctx, &d), 0);
	const struct dp_network *n = dp_state_find_network(&d, vni);
	assert_non_null(n);
	struct dp_network out = *n;
	*n_fdbs = 0;
	for (size_t i = 0; i < d.n_fdbs; i++)
		*n_fdbs += d.fdbs[i].vni == vni;
	dp_state_clear(&d);
	return out;
}

/* Reconciles p to st twice more: nothing to do. */
static void assert_settled(struct dp_provider *p, const struct dp_state *st)
{
	struct dp_stats stats;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(dp_reconcile(p, st, &stats), 0);
		assert_int_equal(stats.applied, 0);
		assert_int_equal(stats.failed, 0);
	}
}

static void test_esp_network(void **unused)
{
	(void)unused;
	struct dp_state a, b;
	struct dp_stats st;
	struct dp_network n;
	size_t fdbs;
	char ova[DP_PATH_MAX], ovb[DP_PATH_MAX];
	assert_int_equal(dp_netlink_ns_path(fx.pa, VNI, ova, sizeof(ova)), 0);
	assert_int_equal(dp_netlink_ns_path(fx.pb, VNI, ovb, sizeof(ovb)), 0);
	assert_int_equal(link_mtu(ova, "vxlan0"), 1350);

	/* Plain -> ESP on node A: remade (the veth goes with the namespace),
	 * the task re-attached, the peer re-added; the gateway is kept. */
	desired_a_kind(&a, true);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 5); /* net del, net add, attach, fdb, neigh */
	assert_int_equal(st.failed, 0);
	assert_true(link_alias_is(ova, "vxlan0", "swarm-esp"));
	assert_false(link_alias_is(ova, "br0", "swarm-encrypted"));
	assert_int_equal(link_mtu(ova, "vxlan0"), ESP_MTU);
	assert_int_equal(link_mtu(ova, "br0"), ESP_MTU);
	assert_int_equal(link_mtu(ova, "vec6132a0b"), ESP_MTU); /* host end of .11 */
	assert_int_equal(link_mtu(fx.ct_a, "eth0"), ESP_MTU);
	assert_int_equal(link_has_addr(fx.ct_a, "eth0", "198.19.42.11/24"), 1);
	assert_int_equal(fdb_count_a(), 1);
	if (!fx.no_gw)
		assert_int_not_equal(link_mtu(fx.ct_a, "eth1"), 0); /* the leg stays */

	/* netd restarts: a new provider reads the kind back and keeps it. */
	dp_provider_free(fx.pa);
	fx.pa = NULL;
	assert_int_equal(new_provider(fx.run_a, fx.ns_a, "192.0.2.201", &fx.pa), 0);
	n = dumped_net(fx.pa, VNI, &fdbs);
	assert_true(n.esp);
	assert_false(n.encrypted);
	assert_true(n.complete);
	assert_int_equal(n.mtu, ESP_MTU);
	assert_int_equal(n.gateway.s_addr, ip4("198.19.42.1").s_addr);
	assert_int_equal(fdbs, 1);
	assert_settled(fx.pa, &a);

	/* Node B plain, node A ESP: a small ping fits either MTU. */
	assert_int_equal(ping_b_from_a(), 0);

	/* Node B too; the dump of node B reads it back. */
	desired_b_kind(&b, true);
	assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
	assert_int_equal(st.applied, 5);
	assert_int_equal(st.failed, 0);
	assert_true(link_alias_is(ovb, "vxlan0", "swarm-esp"));
	assert_int_equal(link_mtu(ovb, "vxlan0"), ESP_MTU);
	assert_int_equal(link_mtu(fx.ct_b, "eth0"), ESP_MTU);
	n = dumped_net(fx.pb, VNI, &fdbs);
	assert_true(n.esp);
	assert_true(n.complete);
	assert_int_equal(n.mtu, ESP_MTU);
	assert_settled(fx.pb, &b);
	assert_int_equal(ping_b_from_a(), 0);

	/* ESP -> plain on both: remade without the alias, at underlay - 50. */
	dp_state_clear(&a);
	desired_a_kind(&a, false);
	assert_int_equal(dp_reconcile(fx.pa, &a, &st), 0);
	assert_int_equal(st.applied, 5);
	assert_int_equal(st.failed, 0);
	dp_state_clear(&b);
	desired_b_kind(&b, false);
	assert_int_equal(dp_reconcile(fx.pb, &b, &st), 0);
	assert_int_equal(st.applied, 5);
	assert_int_equal(st.failed, 0);
	assert_false(link_alias_is(ova, "vxlan0", "swarm-esp"));
	assert_false(link_alias_is(ovb, "vxlan0", "swarm-esp"));
	assert_int_equal(link_mtu(ova, "vxlan0"), 1350);
	assert_int_equal(link_mtu(ova, "br0"), 1350);
	assert_int_equal(link_mtu(fx.ct_a, "eth0"), 1350);
	assert_int_equal(link_mtu(ovb, "vxlan0"), 1350);
	assert_int_equal(link_mtu(fx.ct_b, "eth0"), 1350);
	n = dumped_net(fx.pa, VNI, &fdbs);
	assert_false(n.esp);
	assert_true(n.complete);
	assert_int_equal(n.mtu, 1350);
	assert_int_equal(fdbs, 1);
	assert_settled(fx.pa, &a);
	assert_settled(fx.pb, &b);
	assert_int_equal(ping_b_from_a(), 0);
	dp_state_clear(&a);
	dp_state_clear(&b);
}

static void test_remove_all(void **unused)
{
	(void)unused;
	struct dp_state none;
	char ov[DP_PATH_MAX];
	dp_state_init(&none);
	assert_int_equal(dp_netlink_ns_path(fx.pa, VNI, ov, sizeof(ov)), 0);
	assert_int_equal(dp_reconcile(fx.pa, &none, NULL), 0);
	assert_int_equal(access(ov, F_OK), -1);
	assert_int_equal(link_mtu(fx.ct_a, "eth0"), 0); /* veth went with it */
	/* The gateway, its leg (both ends) and the NAT table are gone. */
	assert_int_equal(link_mtu(fx.ns_a, GW_BRIDGE), 0);
	assert_int_equal(link_mtu(fx.ns_a, GW_LEG), 0);
	assert_int_equal(link_mtu(fx.ct_a, "eth1"), 0);
	if (!fx.no_gw)
		assert_int_equal(nft_table_a(), -1);
	struct dp_state dumped;
	dp_state_init(&dumped);
	assert_int_equal(fx.pa->ops->dump(fx.pa->ctx, &dumped), 0);
	assert_int_equal(dumped.n_nets, 0);
	assert_false(dumped.has_gw);
	assert_int_equal(dumped.n_gw_eps, 0);
	struct dp_stats st;
	assert_int_equal(dp_reconcile(fx.pa, &none, &st), 0);
	assert_int_equal(st.applied, 0);
}

/* Why the test cannot run here, or NULL. */
static const char *skip_reason(void)
{
	static char why[160];
	if (geteuid() != 0)
		return "needs root (network namespaces, vxlan)";
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0 || unshare(CLONE_NEWNET) < 0) {
		snprintf(why, sizeof(why), "cannot unshare a network namespace: %s", strerror(errno));
		return why;
	}
	struct nl_sock *sk = nl_socket_alloc();
	int r = nl_connect(sk, NETLINK_ROUTE);
	struct rtnl_link *l = rtnl_link_vxlan_alloc();
	rtnl_link_set_name(l, "dpt-probe");
	rtnl_link_vxlan_set_id(l, VNI);
	if (r == 0)
		r = rtnl_link_add(sk, l, NLM_F_CREATE);
	rtnl_link_put(l);
	nl_socket_free(sk);
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(orig);
	if (r < 0) {
		snprintf(why, sizeof(why), "kernel cannot make a vxlan device: %s", nl_geterror(r));
		return why;
	}
	if (access("/usr/sbin/bridge", X_OK) < 0)
		return "iproute2's bridge tool is missing (used to count FDB entries)";
	return NULL;
}

/* Why the gateway tests cannot run here, or NULL: they need nft and ip
 * for independent checks, and a kernel with nftables NAT (probed in a
 * throwaway namespace). */
static const char *gw_skip_reason(void)
{
	if (access(NFT, X_OK) < 0 || access("/usr/sbin/ip", X_OK) < 0)
		return "nft or ip (iproute2) is missing";
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0 || unshare(CLONE_NEWNET) < 0)
		return "cannot unshare a network namespace";
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int r = -1;
	if (nft) {
		nft_ctx_buffer_error(nft);
		r = nft_run_cmd_from_buffer(nft, "table ip dpt-probe { chain p { type nat hook "
					    "postrouting priority srcnat; masquerade; }; }");
		nft_ctx_free(nft);
	}
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(orig);
	return r == 0 ? NULL : "kernel has no nftables NAT";
}

static void find_ping(void)
{
	static const char *plain[] = { "/usr/bin/ping", "/bin/ping", "/usr/sbin/ping" };
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
		if (access(plain[i], X_OK) == 0) {
			fx.ping = plain[i];
			return;
		}
	static const char *bb[] = { "/usr/bin/busybox", "/bin/busybox" };
	for (size_t i = 0; i < ARRAY_SIZE(bb); i++)
		if (access(bb[i], X_OK) == 0) {
			fx.ping = bb[i];
			fx.ping_busybox = true;
			return;
		}
}

int main(void)
{
	const char *why = skip_reason();
	find_ping();
	if (!why)
		fx.no_gw = gw_skip_reason();
	if (!why && !fx.ping)
		why = "no ping (iputils or busybox)";
	if (why) {
		printf("SKIP: test_dp_netlink: %s\n", why);
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlay_ping),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_gateway),
		cmocka_unit_test(test_gateway_restart),
		cmocka_unit_test(test_encrypted_network),
		cmocka_unit_test(test_esp_network),
		cmocka_unit_test(test_remove_all),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
