/* The real data-path provider: libnl-route-3 (see datapath.h).
 *
 * Per overlay network: a network namespace bind-mounted at
 * "<run_dir>/<prefix>ov-<vni>" holding
 *   - br0 with the gateway address,
 *   - vxlan0 (id = VNI, nolearning, proxy, local = the node's data-path
 *     address, dstport), created in the underlay namespace under a
 *     temporary name and then moved in, so that its UDP socket stays on the
 *     underlay; MTU = the underlay interface's MTU - 50,
 *   - for a kernel ESP network the same vxlan0 with the alias "swarm-esp"
 *     and MTU = underlay - 90, room for ESP (esp.h encrypts its packets),
 *   - or, for an encrypted network, no vxlan0: br0 carries the alias
 *     "swarm-encrypted" and MTU = underlay - 78, and swarm-sealer puts its
 *     TAP on br0 (sealer.h),
 *   - one veth end per attached container, "ve<IP in hex>", enslaved to
 *     br0; its alias "swarm <task> <ip> <mac> <ifname>" is written last and
 *     is what a dump reads back (a veth without it is a half-made leftover),
 *   - permanent FDB entries (MAC -> VTEP, self) and permanent neighbour
 *     entries (IP -> MAC) on vxlan0.
 *
 * The gateway, in the node's own (underlay) namespace:
 *   - the bridge "<prefix><bridge>" with the gateway address, up, marked by
 *     its alias "swarm-gateway" (written right after creation, so that a
 *     half-made bridge is found and replaced),
 *   - IPv4 forwarding on in that namespace,
 *   - the nftables table "ip <prefix>swarm_gw" with one postrouting nat
 *     chain: `ip saddr SUBNET oifname != "BRIDGE" masquerade`,
 *   - one veth end per leg, "<prefix>g<IP in hex>", on the bridge as an
 *     isolated port (legs do not reach each other: Docker's
 *     enable_icc=false), with the same alias as an overlay veth end,
 *     written last; the sandbox end holds the default route via the
 *     gateway address.
 *
 * Namespaces: a libnl socket belongs to the namespace it was opened in, so
 * the thread enters a namespace only to open a socket (and to create one),
 * to run one nftables command or to read or write one sysctl file, and
 * returns at once. */
#include "datapath.h"
#include "sealer_gro.h"
#include "sealer_link.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <nftables/libnftables.h>

#include "log.h"
#include "util.h"

_Static_assert(DP_SEALED_HOST_GSO == GRO_MAX_LEN, "host ends pass what the sealer coalesces");

#define DPN_NSFS_MAGIC 0x6e736673
#define DPN_BRIDGE "br0"
#define DPN_VXLAN "vxlan0"
#define DPN_ALIAS_TAG "swarm"
#define DPN_GW_ALIAS "swarm-gateway"
#define DPN_SEALED_ALIAS "swarm-encrypted"
#define DPN_ESP_ALIAS "swarm-esp"
#define DPN_GW_TABLE "swarm_gw"
#define DPN_FORWARD "/proc/sys/net/ipv4/ip_forward"

/* Provider state. */
struct dp_nl {
	char run_dir[DP_PATH_MAX];   /* where namespace files live */
	char prefix[8];              /* name prefix, <= 6 chars */
	int underlay_fd;             /* the node's own netns */
	struct nl_sock *under;       /* rtnl socket in the underlay netns */
	struct in_addr local;        /* data-path address */
	uint16_t port;               /* VXLAN UDP port */
};

/* ---- errors ---- */

/* libnl error (negative NLE_*) to -errno. */
static int dpn_errno(int nlerr)
{
	static const struct { int nle, err; } map[] = {
		{ NLE_EXIST, EEXIST }, { NLE_OBJ_NOTFOUND, ENOENT },
		{ NLE_NODEV, ENODEV }, { NLE_PERM, EPERM },
		{ NLE_NOACCESS, EACCES }, { NLE_BUSY, EBUSY },
		{ NLE_INVAL, EINVAL }, { NLE_NOMEM, ENOMEM },
		{ NLE_OPNOTSUPP, EOPNOTSUPP }, { NLE_NOADDR, EADDRNOTAVAIL },
		{ NLE_RANGE, ERANGE }, { NLE_MSGSIZE, EMSGSIZE },
		{ NLE_AF_NOSUPPORT, EAFNOSUPPORT }, { NLE_AGAIN, EAGAIN },
		{ NLE_MISSING_ATTR, EINVAL }, { NLE_AF_MISMATCH, EINVAL },
	};
	int e = nlerr < 0 ? -nlerr : nlerr;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i].nle == e)
			return -map[i].err;
	return -EIO;
}

static bool dpn_absent(int err)
{
	return err == -ENOENT || err == -ENODEV || err == -ESRCH;
}

/* ---- namespaces ---- */

static int ns_self_fd(void)
{
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Puts the thread back into orig; a thread left in a foreign namespace
 * would send every later netlink request to the wrong place. */
static void ns_return(int orig)
{
	if (setns(orig, CLONE_NEWNET) < 0)
		fatal("datapath, cannot return to own netns: %s", strerror(errno));
	close(orig);
}

/* Opens an rtnl socket inside the namespace nsfd. */
static int dpn_open_in(int nsfd, struct nl_sock **out)
{
	int orig = ns_self_fd();
	if (orig < 0)
		return orig;
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		int err = -errno;
		close(orig);
		return err;
	}
	struct nl_sock *sk = nl_socket_alloc();
	int r = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	ns_return(orig);
	if (r < 0) {
		nl_socket_free(sk);
		return dpn_errno(r);
	}
	*out = sk;
	return 0;
}

static int dpn_open_path(const char *path, struct nl_sock **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = dpn_open_in(fd, out);
	close(fd);
	return r;
}

static bool ns_is_mounted(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == DPN_NSFS_MAGIC;
}

/* Unshares a fresh netns in this thread, bind-mounts it on path (which
 * exists), and returns to orig. */
static int ns_mount_new(const char *path, int orig)
{
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	int err = 0;
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
		err = -errno;
	if (setns(orig, CLONE_NEWNET) < 0)
		fatal("datapath, cannot return to own netns: %s", strerror(errno));
	return err;
}

/* Creates a netns file at path. 0 or -errno (nothing left behind). */
static int ns_create(const char *path)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	close(fd);
	int orig = ns_self_fd();
	int err = orig < 0 ? orig : ns_mount_new(path, orig);
	if (orig >= 0)
		close(orig);
	if (err < 0)
		unlink(path);
	return err;
}

static void ns_remove(const char *path)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("datapath, umount %s: %s", path, strerror(errno));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("datapath, unlink %s: %s", path, strerror(errno));
}

static int dpn_ns_path(const struct dp_nl *nl, uint32_t vni, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%sov-%u", nl->run_dir, nl->prefix, vni);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Opens a socket in the overlay namespace of vni; -ENOENT when absent. */
static int dpn_open_overlay(const struct dp_nl *nl, uint32_t vni, struct nl_sock **out)
{
	char path[DP_PATH_MAX];
	int r = dpn_ns_path(nl, vni, path, sizeof(path));
	if (r < 0)
		return r;
	if (!ns_is_mounted(path))
		return -ENOENT;
	return dpn_open_path(path, out);
}

/* ---- links ---- */

static int link_get(struct nl_sock *sk, const char *name, struct rtnl_link **out)
{
	int r = rtnl_link_get_kernel(sk, 0, name, out);
	return r < 0 ? dpn_errno(r) : 0;
}

static int link_ifindex(struct nl_sock *sk, const char *name)
{
	struct rtnl_link *l;
	int r = link_get(sk, name, &l);
	if (r < 0)
		return r;
	int idx = rtnl_link_get_ifindex(l);
	rtnl_link_put(l);
	return idx;
}

/* Deletes link name; absent is fine. */
static int link_del(struct nl_sock *sk, const char *name)
{
	struct rtnl_link *l;
	int r = link_get(sk, name, &l);
	if (r < 0)
		return dpn_absent(r) ? 0 : r;
	r = rtnl_link_delete(sk, l);
	rtnl_link_put(l);
	r = r < 0 ? dpn_errno(r) : 0;
	return dpn_absent(r) ? 0 : r;
}

/* Applies change to the existing link name. */
static int link_change(struct nl_sock *sk, const char *name, struct rtnl_link *change)
{
	struct rtnl_link *l;
	int r = link_get(sk, name, &l);
	if (r < 0)
		return r;
	r = rtnl_link_change(sk, l, change, 0);
	rtnl_link_put(l);
	return r < 0 ? dpn_errno(r) : 0;
}

/* Caps the TCP super-frames sent through link name at max bytes: attr
 * IFLA_GSO_MAX_SIZE, or GRO_IFLA_GSO_IPV4_MAX_SIZE (IPv4 only, Linux 6.3;
 * older kernels ignore it). libnl has no setter for either. */
static int link_set_gso_max(struct nl_sock *sk, const char *name, int attr, uint32_t max)
{
	int idx = link_ifindex(sk, name);
	if (idx < 0)
		return idx;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = idx };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST);
	int r = !m ? -NLE_NOMEM : nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (r >= 0)
		r = nla_put_u32(m, attr, max);
	if (r >= 0)
		r = nl_send_sync(sk, m);   /* frees m */
	else
		nlmsg_free(m);
	return r < 0 ? dpn_errno(r) : 0;
}

static int link_up(struct nl_sock *sk, const char *name)
{
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_flags(c, IFF_UP);
	int r = link_change(sk, name, c);
	rtnl_link_put(c);
	return r;
}

static int addr_add(struct nl_sock *sk, int ifindex, struct in_addr ip, uint8_t plen)
{
	struct nl_addr *a = nl_addr_build(AF_INET, &ip, sizeof(ip));
	struct rtnl_addr *ra = rtnl_addr_alloc();
	nl_addr_set_prefixlen(a, plen);
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_local(ra, a);
	int r = rtnl_addr_add(sk, ra, 0);
	rtnl_addr_put(ra);
	nl_addr_put(a);
	return r < 0 ? dpn_errno(r) : 0;
}

/* MTU of the underlay interface that holds the data-path address. */
static int dpn_underlay_mtu(struct dp_nl *nl, uint32_t *mtu)
{
	struct nl_cache *cache;
	int r = rtnl_addr_alloc_cache(nl->under, &cache);
	if (r < 0)
		return dpn_errno(r);
	int ifindex = 0;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *l = rtnl_addr_get_local(a);
		if (rtnl_addr_get_family(a) == AF_INET && l && nl_addr_get_len(l) == 4 &&
		    memcmp(nl_addr_get_binary_addr(l), &nl->local, 4) == 0)
			ifindex = rtnl_addr_get_ifindex(a);
	}
	nl_cache_free(cache);
	if (!ifindex)
		return -EADDRNOTAVAIL;
	struct rtnl_link *link;
	r = rtnl_link_get_kernel(nl->under, ifindex, NULL, &link);
	if (r < 0)
		return dpn_errno(r);
	*mtu = rtnl_link_get_mtu(link);
	rtnl_link_put(link);
	return 0;
}

static void dpn_tmp_vxlan_name(const struct dp_nl *nl, uint32_t vni, char name[IFNAMSIZ])
{
	snprintf(name, IFNAMSIZ, "%svx%06x", nl->prefix, vni);
}

static void dpn_host_veth_name(struct in_addr ip, char name[IFNAMSIZ])
{
	snprintf(name, IFNAMSIZ, "ve%08x", ntohl(ip.s_addr));
}

/* ---- networks ---- */

static int dpn_make_bridge(struct nl_sock *ov, const struct dp_network *net, uint32_t mtu)
{
	struct rtnl_link *br = rtnl_link_alloc();
	rtnl_link_set_type(br, "bridge");
	rtnl_link_set_name(br, DPN_BRIDGE);
	rtnl_link_set_mtu(br, mtu);
	int r = rtnl_link_add(ov, br, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(br);
	if (r < 0)
		return dpn_errno(r);
	int idx = link_ifindex(ov, DPN_BRIDGE);
	if (idx < 0)
		return idx;
	/* The MTU once more, as a change: the kernel then keeps it instead of
	 * following its ports' (the sealer's TAP has 1500). */
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_mtu(c, mtu);
	if (net->encrypted)
		rtnl_link_set_ifalias(c, DPN_SEALED_ALIAS);
	r = link_change(ov, DPN_BRIDGE, c);
	rtnl_link_put(c);
	if (r < 0)
		return r;
	r = addr_add(ov, idx, net->gateway, net->prefixlen);
	return r < 0 ? r : link_up(ov, DPN_BRIDGE);
}

/* Creates the vxlan device in the underlay namespace under a temporary name. */
static int dpn_make_vxlan(struct dp_nl *nl, const char *tmp, uint32_t vni, uint32_t mtu)
{
	struct rtnl_link *vx = rtnl_link_vxlan_alloc();
	struct nl_addr *local = nl_addr_build(AF_INET, &nl->local, sizeof(nl->local));
	rtnl_link_set_name(vx, tmp);
	rtnl_link_set_mtu(vx, mtu);
	rtnl_link_vxlan_set_id(vx, vni);
	rtnl_link_vxlan_set_local(vx, local);
	rtnl_link_vxlan_set_port(vx, nl->port);
	rtnl_link_vxlan_set_learning(vx, 0);
	rtnl_link_vxlan_set_proxy(vx, 1);
	int r = rtnl_link_add(nl->under, vx, NLM_F_CREATE | NLM_F_EXCL);
	nl_addr_put(local);
	rtnl_link_put(vx);
	return r < 0 ? dpn_errno(r) : 0;
}

/* Moves the temporary vxlan into the overlay namespace, then names it
 * vxlan0, enslaves it to br0, marks it when esp (the alias is written in
 * the overlay namespace, in the same change as the name that makes it
 * vxlan0) and brings it up. Its MTU stays the one it was made with:
 * neither the move nor the enslaving changes a port's MTU. */
static int dpn_move_vxlan(struct dp_nl *nl, struct nl_sock *ov, const char *tmp, int ovfd,
			  bool esp)
{
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_ns_fd(c, ovfd);
	int r = link_change(nl->under, tmp, c);
	rtnl_link_put(c);
	if (r < 0)
		return r;
	int br = link_ifindex(ov, DPN_BRIDGE);
	if (br < 0)
		return br;
	c = rtnl_link_alloc();
	rtnl_link_set_name(c, DPN_VXLAN);
	rtnl_link_set_master(c, br);
	if (esp)
		rtnl_link_set_ifalias(c, DPN_ESP_ALIAS);
	r = link_change(ov, tmp, c);
	rtnl_link_put(c);
	return r < 0 ? r : link_up(ov, DPN_VXLAN);
}

static int dpn_net_del(void *ctx, uint32_t vni);

/* The body of net_add once the namespace file exists. */
static int dpn_net_fill(struct dp_nl *nl, const struct dp_network *net, const char *path,
		       uint32_t mtu)
{
	char tmp[IFNAMSIZ];
	struct nl_sock *ov = NULL;
	int ovfd = open(path, O_RDONLY | O_CLOEXEC);
	int r = ovfd < 0 ? -errno : dpn_open_in(ovfd, &ov);
	if (r < 0)
		goto out;
	if ((r = dpn_make_bridge(ov, net, mtu)) < 0) {
		log_err("datapath, vni %u: bridge: %s", net->vni, strerror(-r));
		goto out;
	}
	if (net->encrypted)
		goto out; /* the sealer's TAP is the bridge's port out */
	dpn_tmp_vxlan_name(nl, net->vni, tmp);
	if ((r = dpn_make_vxlan(nl, tmp, net->vni, mtu)) < 0) {
		log_err("datapath, vni %u: vxlan %s: %s", net->vni, tmp, strerror(-r));
		goto out;
	}
	if ((r = dpn_move_vxlan(nl, ov, tmp, ovfd, net->esp)) < 0)
		log_err("datapath, vni %u: moving vxlan into %s: %s", net->vni, path, strerror(-r));
out:
	if (ovfd >= 0)
		close(ovfd);
	nl_socket_free(ov);
	return r;
}

static int dpn_net_add(void *ctx, const struct dp_network *net)
{
	struct dp_nl *nl = ctx;
	char path[DP_PATH_MAX];
	uint32_t mtu = 0;
	int r = dpn_ns_path(nl, net->vni, path, sizeof(path));
	if (r < 0)
		return r;
	if ((r = dpn_underlay_mtu(nl, &mtu)) < 0) {
		log_err("datapath, vni %u: no underlay interface holds %s: %s", net->vni,
			inet_ntoa(nl->local), strerror(-r));
		return r;
	}
	mtu -= net->encrypted ? DP_SEALED_OVERHEAD :
	       net->esp ? DP_ESP_OVERHEAD : DP_VXLAN_OVERHEAD;
	dpn_net_del(nl, net->vni); /* a leftover of the same VNI */
	if ((r = ns_create(path)) < 0) {
		log_err("datapath, vni %u: netns %s: %s", net->vni, path, strerror(-r));
		return r;
	}
	r = dpn_net_fill(nl, net, path, mtu);
	if (r < 0) {
		dpn_net_del(nl, net->vni);
		return r;
	}
	log_info("datapath, vni %u: overlay namespace %s up, mtu %u%s", net->vni, path, mtu,
		 net->encrypted ? ", encrypted (swarm-sealer)" :
		 net->esp ? ", encrypted (kernel ESP)" : "");
	return 0;
}

/* Deletes every link but lo in the namespace of sk: vxlan0 first, so its
 * VNI and socket are released now rather than when the namespace dies. */
static void dpn_flush_links(struct nl_sock *sk)
{
	link_del(sk, DPN_VXLAN);
	struct nl_cache *cache;
	if (rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) < 0)
		return;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		if (rtnl_link_get_flags(l) & IFF_LOOPBACK)
			continue;
		rtnl_link_delete(sk, l); /* a veth may already be gone with its peer */
	}
	nl_cache_free(cache);
}

static int dpn_net_del(void *ctx, uint32_t vni)
{
	struct dp_nl *nl = ctx;
	char path[DP_PATH_MAX], tmp[IFNAMSIZ];
	int r = dpn_ns_path(nl, vni, path, sizeof(path));
	if (r < 0)
		return r;
	dpn_tmp_vxlan_name(nl, vni, tmp);
	link_del(nl->under, tmp);
	struct nl_sock *ov;
	if (ns_is_mounted(path) && dpn_open_path(path, &ov) == 0) {
		dpn_flush_links(ov);
		nl_socket_free(ov);
	}
	ns_remove(path);
	return 0;
}

/* ---- attachments ---- */

/* Deletes a leftover veth named name in the sandbox (a previous attach cut
 * short); any other kind of link with that name is an error. */
static int dpn_sandbox_clear(struct nl_sock *sb, const char *name)
{
	struct rtnl_link *l;
	int r = link_get(sb, name, &l);
	if (r < 0)
		return dpn_absent(r) ? 0 : r;
	bool veth = rtnl_link_is_veth(l);
	rtnl_link_put(l);
	return veth ? link_del(sb, name) : -EEXIST;
}

/* Creates a pair: host end in the namespace of sk on bridge br, peer
 * ifname with mac in the sandbox sbfd; mtu 0 leaves the kernel's. */
static int dpn_make_veth(struct nl_sock *sk, int br, const char *host, const char *ifname,
			const uint8_t macb[6], int sbfd, uint32_t mtu)
{
	struct rtnl_link *l = rtnl_link_veth_alloc();
	struct rtnl_link *peer = rtnl_link_veth_get_peer(l);
	struct nl_addr *mac = nl_addr_build(AF_LLC, macb, 6);
	rtnl_link_set_name(l, host);
	rtnl_link_set_master(l, br);
	rtnl_link_set_name(peer, ifname);
	rtnl_link_set_addr(peer, mac);
	rtnl_link_set_ns_fd(peer, sbfd);
	if (mtu) {
		rtnl_link_set_mtu(l, mtu);
		rtnl_link_set_mtu(peer, mtu);
	}
	int r = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	nl_addr_put(mac);
	rtnl_link_put(peer);
	rtnl_link_veth_release(l);
	return r < 0 ? dpn_errno(r) : 0;
}

/* Address ip/plen on ifname in the sandbox, and up. */
static int dpn_sandbox_config(struct nl_sock *sb, const char *ifname, struct in_addr ip,
			     uint8_t plen)
{
	int idx = link_ifindex(sb, ifname);
	if (idx < 0)
		return idx;
	int r = addr_add(sb, idx, ip, plen);
	return r < 0 ? r : link_up(sb, ifname);
}

/* What a host veth end's alias says about its sandbox end. */
struct dpn_alias {
	char task_id[DP_TASK_ID_MAX];
	struct in_addr ip;
	uint8_t mac[6];
	char ifname[IFNAMSIZ];
};

/* Parses "swarm <task> <ip> <mac> <ifname>"; false when it is not one. */
static bool dpn_alias_parse(const char *alias, struct dpn_alias *out)
{
	char task[DP_TASK_ID_MAX], ip[INET_ADDRSTRLEN], ifname[IFNAMSIZ];
	unsigned m[6];
	if (!alias || sscanf(alias, DPN_ALIAS_TAG " %63s %15s %x:%x:%x:%x:%x:%x %15s", task, ip,
			     &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], ifname) != 9 ||
	    inet_pton(AF_INET, ip, &out->ip) != 1)
		return false;
	snprintf(out->task_id, sizeof(out->task_id), "%s", task);
	snprintf(out->ifname, sizeof(out->ifname), "%s", ifname);
	for (int i = 0; i < 6; i++)
		out->mac[i] = (uint8_t)m[i];
	return true;
}

/* Brings the host end up and writes the alias that marks it complete. */
static int dpn_host_commit(struct nl_sock *sk, const char *host, const char *task_id,
			   struct in_addr ipa, const uint8_t m[6], const char *ifname)
{
	char alias[160], ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ipa, ip, sizeof(ip));
	snprintf(alias, sizeof(alias), DPN_ALIAS_TAG " %s %s %02x:%02x:%02x:%02x:%02x:%02x %s",
		 task_id, ip, m[0], m[1], m[2], m[3], m[4], m[5], ifname);
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_flags(c, IFF_UP);
	rtnl_link_set_ifalias(c, alias);
	int r = link_change(sk, host, c);
	rtnl_link_put(c);
	return r;
}

/* MTU of vxlan0 (encrypted: of br0), which the veth ends follow. */
static int dpn_overlay_mtu(struct nl_sock *ov, const struct dp_network *net, uint32_t *mtu)
{
	struct rtnl_link *l;
	int r = link_get(ov, net->encrypted ? DPN_BRIDGE : DPN_VXLAN, &l);
	if (r < 0)
		return r;
	*mtu = rtnl_link_get_mtu(l);
	rtnl_link_put(l);
	return 0;
}

/* The IPv4 super-frame sizes of an attachment on an encrypted network
 * (older kernels ignore the attribute): its host end passes the sealer's
 * coalesced frames whole, and its sandbox end ifname (in sb, when given)
 * sends BIG TCP frames, which the sealer reads whole, where the network's
 * MTU allows (dp_sealed_gso4). *end (when set) names the end that failed. */
static int dpn_sealed_sizes(struct nl_sock *ov, const char *host, struct nl_sock *sb,
			    const char *ifname, uint32_t mtu, const char **end)
{
	const char *unused;
	if (!end)
		end = &unused;
	*end = "host end";
	int r = link_set_gso_max(ov, host, GRO_IFLA_GSO_IPV4_MAX_SIZE, DP_SEALED_HOST_GSO);
	if (r >= 0 && sb && dp_sealed_gso4(mtu)) {
		*end = "sandbox end";
		r = link_set_gso_max(sb, ifname, GRO_IFLA_GSO_IPV4_MAX_SIZE, dp_sealed_gso4(mtu));
	}
	return r;
}

static int dpn_ep_attach(void *ctx, const struct dp_network *net, const struct dp_local_ep *ep)
{
	struct dp_nl *nl = ctx;
	struct nl_sock *ov = NULL, *sb = NULL;
	char host[IFNAMSIZ];
	uint32_t mtu = 0;
	int sbfd = open(ep->netns, O_RDONLY | O_CLOEXEC);
	int r = sbfd < 0 ? -errno : dpn_open_in(sbfd, &sb);
	const char *step = "sandbox netns";
	if (r < 0)
		goto out;
	step = "overlay netns";
	if ((r = dpn_open_overlay(nl, net->vni, &ov)) < 0 || (r = dpn_overlay_mtu(ov, net, &mtu)) < 0)
		goto out;
	dpn_host_veth_name(ep->ip, host);
	link_del(ov, host);
	step = "leftover in sandbox";
	if ((r = dpn_sandbox_clear(sb, ep->ifname)) < 0)
		goto out;
	step = "veth pair";
	int br = link_ifindex(ov, DPN_BRIDGE);
	if ((r = br) < 0 || (r = dpn_make_veth(ov, br, host, ep->ifname, ep->mac, sbfd, mtu)) < 0)
		goto out;
	step = "super-frame size";
	if (net->encrypted && (r = link_set_gso_max(sb, ep->ifname, IFLA_GSO_MAX_SIZE, DP_SEALED_GSO_MAX)) < 0)
		goto out;
	if (net->encrypted && (r = dpn_sealed_sizes(ov, host, sb, ep->ifname, mtu, NULL)) < 0)
		goto out;
	step = "sandbox address";
	if ((r = dpn_sandbox_config(sb, ep->ifname, ep->ip, net->prefixlen)) < 0)
		goto out;
	step = "host end";
	r = dpn_host_commit(ov, host, ep->task_id, ep->ip, ep->mac, ep->ifname);
out:
	if (r < 0) {
		log_err("datapath, vni %u: attach of task %s (%s in %s): %s: %s", net->vni,
			ep->task_id, ep->ifname, ep->netns, step, strerror(-r));
		if (ov)
			link_del(ov, host);
	}
	if (sbfd >= 0)
		close(sbfd);
	nl_socket_free(ov);
	nl_socket_free(sb);
	return r;
}

static int dpn_ep_detach(void *ctx, const struct dp_local_ep *ep)
{
	struct dp_nl *nl = ctx;
	struct nl_sock *ov;
	char host[IFNAMSIZ];
	int r = dpn_open_overlay(nl, ep->vni, &ov);
	if (r < 0)
		return dpn_absent(r) ? 0 : r;
	if (ep->host_ifname[0])
		snprintf(host, sizeof(host), "%s", ep->host_ifname);
	else
		dpn_host_veth_name(ep->ip, host);
	r = link_del(ov, host);
	nl_socket_free(ov);
	if (r < 0)
		log_err("datapath, vni %u: detach of task %s (%s): %s", ep->vni, ep->task_id,
			host, strerror(-r));
	return r;
}

static int dpn_ep_tune(void *ctx, const struct dp_network *net, const struct dp_local_ep *ep)
{
	struct dp_nl *nl = ctx;
	struct nl_sock *ov, *sb = NULL;
	uint32_t mtu = 0;
	const char *end;
	int r = dpn_open_overlay(nl, net->vni, &ov);
	if (r < 0)
		return r;
	/* the sandbox only where its end's size is to be set; the host end's
	 * is set whether or not it opens */
	int sr = 0;
	if (ep->netns[0] && dpn_overlay_mtu(ov, net, &mtu) == 0 && dp_sealed_gso4(mtu)) {
		int sbfd = open(ep->netns, O_RDONLY | O_CLOEXEC);
		sr = sbfd < 0 ? -errno : dpn_open_in(sbfd, &sb);
		if (sbfd >= 0)
			close(sbfd);
	}
	r = dpn_sealed_sizes(ov, ep->host_ifname, sr < 0 ? NULL : sb, ep->ifname, mtu, &end);
	if (r >= 0 && sr < 0) {
		r = sr;
		end = "sandbox end";
	}
	if (sb)
		nl_socket_free(sb);
	nl_socket_free(ov);
	if (r < 0)
		log_err("datapath, vni %u: %s of %s (task %s): super-frame size: %s", net->vni, end,
			ep->host_ifname, ep->task_id, strerror(-r));
	return r;
}

/* ---- gateway ---- */

/* Runs one nftables command buffer in the node's namespace. The context
 * lives inside the namespace because its netlink socket is opened there.
 * *out, when given, gets the command's output (malloc'd). 0, -ENOENT when
 * nft says an object is missing, or -EIO (nft's message logged unless
 * quiet). */
static int dpn_nft(struct dp_nl *nl, const char *cmd, bool quiet, char **out)
{
	int orig = ns_self_fd();
	if (orig < 0)
		return orig;
	if (setns(nl->underlay_fd, CLONE_NEWNET) < 0) {
		int err = -errno;
		close(orig);
		return err;
	}
	int r = -ENOMEM;
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (nft && nft_ctx_buffer_output(nft) == 0 && nft_ctx_buffer_error(nft) == 0) {
		r = nft_run_cmd_from_buffer(nft, cmd) == 0 ? 0 : -EIO;
		const char *msg = nft_ctx_get_error_buffer(nft);
		if (r < 0 && msg && strstr(msg, "No such file or directory"))
			r = -ENOENT;
		else if (r < 0 && !quiet)
			log_err("datapath, nft: %s", msg ? msg : "(no message)");
		if (r == 0 && out) {
			const char *o = nft_ctx_get_output_buffer(nft);
			*out = xstrdup(o ? o : "");
		}
	}
	if (nft)
		nft_ctx_free(nft);
	ns_return(orig);
	return r;
}

/* Reads or writes (when val) the node namespace's IPv4 forwarding switch;
 * the file is opened inside the namespace, as /proc/sys/net follows the
 * opener's namespace. Reading: 0 or 1, or -errno. */
static int dpn_forwarding(struct dp_nl *nl, const char *val)
{
	int orig = ns_self_fd();
	if (orig < 0)
		return orig;
	if (setns(nl->underlay_fd, CLONE_NEWNET) < 0) {
		int err = -errno;
		close(orig);
		return err;
	}
	int fd = open(DPN_FORWARD, (val ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	ns_return(orig);
	if (fd < 0)
		return -errno;
	int r = 0;
	char c = 0;
	if (val)
		r = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
	else
		r = read(fd, &c, 1) == 1 ? c == '1' : -EIO;
	close(fd);
	return r;
}

/* Kernel name of the gateway bridge: "<prefix><bridge>". */
static int dpn_gw_bridge_name(const struct dp_nl *nl, const char *bridge, char name[IFNAMSIZ])
{
	int n = snprintf(name, IFNAMSIZ, "%s%s", nl->prefix, bridge);
	return n < 0 || n >= IFNAMSIZ ? -ENAMETOOLONG : 0;
}

static void dpn_gw_table(const struct dp_nl *nl, char *buf, size_t len)
{
	snprintf(buf, len, "%s" DPN_GW_TABLE, nl->prefix);
}

/* Host end of a leg: "<prefix>g<IP in hex>" (prefix <= 6: fits). */
static void dpn_gw_veth_name(const struct dp_nl *nl, struct in_addr ip, char name[IFNAMSIZ])
{
	snprintf(name, IFNAMSIZ, "%.6sg%08x", nl->prefix, ntohl(ip.s_addr));
}

static bool dpn_is_gw_veth_name(const struct dp_nl *nl, const char *name)
{
	size_t pl = strlen(nl->prefix);
	if (strncmp(name, nl->prefix, pl) != 0 || name[pl] != 'g' || strlen(name + pl + 1) != 8)
		return false;
	for (const char *c = name + pl + 1; *c; c++)
		if (!strchr("0123456789abcdef", *c))
			return false;
	return true;
}

/* Names that go into nft's grammar unquoted (the table) or quoted (the
 * bridge): letters, digits, '_', '-', '.', first a letter or '_'. */
static bool dpn_nft_word(const char *s)
{
	static const char first[] = "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	if (!s[0] || !strchr(first, s[0]))
		return false;
	for (; *s; s++)
		if (!strchr(first, *s) && !strchr("0123456789-.", *s))
			return false;
	return true;
}

/* The one rule of the NAT chain, as `nft list` prints it. */
static void dpn_gw_rule(const char *bridge, struct in_addr subnet, uint8_t plen, char *buf,
			size_t len)
{
	char net[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &subnet, net, sizeof(net));
	snprintf(buf, len, "ip saddr %s/%u oifname != \"%s\" masquerade", net, plen, bridge);
}

static bool dpn_link_is_bridge(struct rtnl_link *l)
{
	const char *t = rtnl_link_get_type(l);
	return t && strcmp(t, "bridge") == 0;
}

/* Whether l is a gateway bridge of this provider: a bridge whose name
 * carries the prefix and whose alias is the gateway mark. */
static bool dpn_is_gw_bridge(const struct dp_nl *nl, struct rtnl_link *l)
{
	const char *alias = rtnl_link_get_ifalias(l);
	return dpn_link_is_bridge(l) && alias && strcmp(alias, DPN_GW_ALIAS) == 0 &&
	       strncmp(rtnl_link_get_name(l), nl->prefix, strlen(nl->prefix)) == 0;
}

/* Removes every gateway object of this provider in the node's namespace:
 * leg veths (on a gateway bridge, or named like one), the gateway bridges
 * and the bridge named name (if it is a bridge), the NAT table. Absent
 * objects are fine; the first other error is returned. */
static int dpn_gw_clear(struct dp_nl *nl, const char *name)
{
	struct nl_cache *cache;
	int r = rtnl_link_alloc_cache(nl->under, AF_UNSPEC, &cache);
	if (r < 0)
		return dpn_errno(r);
	int err = 0;
	/* Legs first: a bridge that goes releases its ports, it does not
	 * delete them. */
	for (int pass = 0; pass < 2; pass++) {
		for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
			struct rtnl_link *l = (struct rtnl_link *)o;
			bool del;
			if (pass == 0) {
				struct rtnl_link *m = rtnl_link_get(cache, rtnl_link_get_master(l));
				del = rtnl_link_is_veth(l) &&
				      (dpn_is_gw_veth_name(nl, rtnl_link_get_name(l)) ||
				       (m && (dpn_is_gw_bridge(nl, m) ||
					      (name && !strcmp(rtnl_link_get_name(m), name)))));
				rtnl_link_put(m);
			} else {
				del = dpn_is_gw_bridge(nl, l) ||
				      (name && !strcmp(rtnl_link_get_name(l), name) &&
				       dpn_link_is_bridge(l));
			}
			if (!del)
				continue;
			r = link_del(nl->under, rtnl_link_get_name(l));
			if (r < 0 && err == 0)
				err = r;
		}
	}
	nl_cache_free(cache);
	char table[32], cmd[96];
	dpn_gw_table(nl, table, sizeof(table));
	/* Declaring the table first makes the delete succeed when it is absent. */
	snprintf(cmd, sizeof(cmd), "table ip %s\ndelete table ip %s\n", table, table);
	r = dpn_nft_word(table) ? dpn_nft(nl, cmd, false, NULL) : 0;
	return err ? err : r;
}

static int dpn_gw_del(void *ctx, const struct dp_gateway *gw)
{
	struct dp_nl *nl = ctx;
	char name[IFNAMSIZ];
	bool named = gw->bridge[0] && dpn_gw_bridge_name(nl, gw->bridge, name) == 0;
	int r = dpn_gw_clear(nl, named ? name : NULL);
	if (r < 0)
		log_err("datapath, gateway %s: removal: %s", named ? name : "(leftover)", strerror(-r));
	else
		log_info("datapath, gateway %s removed", named ? name : "(leftover)");
	return r;
}

/* The bridge: made, marked, addressed, up. */
static int dpn_gw_make_bridge(struct dp_nl *nl, const char *name, const struct dp_gateway *gw)
{
	struct rtnl_link *br = rtnl_link_alloc();
	rtnl_link_set_type(br, "bridge");
	rtnl_link_set_name(br, name);
	int r = rtnl_link_add(nl->under, br, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(br);
	if (r < 0)
		return dpn_errno(r);
	struct rtnl_link *c = rtnl_link_alloc();
	rtnl_link_set_ifalias(c, DPN_GW_ALIAS);
	r = link_change(nl->under, name, c);
	rtnl_link_put(c);
	int idx = r < 0 ? r : link_ifindex(nl->under, name);
	if (idx < 0)
		return idx;
	r = addr_add(nl->under, idx, gw->addr, gw->prefixlen);
	return r < 0 ? r : link_up(nl->under, name);
}

/* The NAT table, replaced as a whole in one transaction. */
static int dpn_gw_nat(struct dp_nl *nl, const char *name, const struct dp_gateway *gw)
{
	char table[32], rule[128], cmd[512];
	dpn_gw_table(nl, table, sizeof(table));
	dpn_gw_rule(name, gw->subnet, gw->prefixlen, rule, sizeof(rule));
	snprintf(cmd, sizeof(cmd),
		 "table ip %s\n"
		 "delete table ip %s\n"
		 "table ip %s {\n"
		 "\tchain postrouting {\n"
		 "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		 "\t\t%s\n"
		 "\t}\n"
		 "}\n", table, table, table, rule);
	return dpn_nft(nl, cmd, false, NULL);
}

static int dpn_gw_add(void *ctx, const struct dp_gateway *gw)
{
	struct dp_nl *nl = ctx;
	char name[IFNAMSIZ], table[32];
	const char *step = "name";
	int r = dpn_gw_bridge_name(nl, gw->bridge, name);
	dpn_gw_table(nl, table, sizeof(table));
	if (r == 0 && (!dpn_nft_word(name) || !dpn_nft_word(table)))
		r = -EINVAL;
	if (r < 0) {
		log_err("datapath, gateway bridge %s%s / table %s: unusable name: %s", nl->prefix,
			gw->bridge, table, strerror(-r));
		return r;
	}
	/* A link of that name that is not a bridge is not ours to delete. */
	struct rtnl_link *l;
	if (link_get(nl->under, name, &l) == 0) {
		bool bridge = dpn_link_is_bridge(l);
		rtnl_link_put(l);
		if (!bridge) {
			log_err("datapath, gateway bridge %s: a link of another kind has the name", name);
			return -EEXIST;
		}
	}
	step = "leftover";
	if ((r = dpn_gw_clear(nl, name)) < 0)
		goto out;
	step = "bridge";
	if ((r = dpn_gw_make_bridge(nl, name, gw)) < 0)
		goto out;
	step = "forwarding";
	/* Written only when off: /proc/sys may be read-only where it is on. */
	if ((r = dpn_forwarding(nl, NULL)) == 0)
		r = dpn_forwarding(nl, "1\n");
	if (r < 0)
		goto out;
	step = "nat table";
	r = dpn_gw_nat(nl, name, gw);
out:
	if (r < 0) {
		log_err("datapath, gateway %s: %s: %s", name, step, strerror(-r));
		dpn_gw_clear(nl, name);
		return r;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &gw->addr, ip, sizeof(ip));
	log_info("datapath, gateway %s up, %s/%u, masquerade in table ip %s", name, ip,
		 gw->prefixlen, table);
	return 0;
}

/* Isolates bridge port ifindex: isolated ports reach the bridge's own
 * address (and through it the outside) but not each other, which is
 * Docker's enable_icc=false on docker_gwbridge. Built by hand: libnl 3.7
 * has no setter for IFLA_BRPORT_ISOLATED; the kernel wants the
 * IFLA_PROTINFO nest flagged NLA_F_NESTED. */
static int dpn_port_isolate(struct nl_sock *sk, int ifindex)
{
	struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = ifindex };
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_SETLINK, 0);
	if (!msg)
		return -ENOMEM;
	struct nlattr *pi = NULL;
	int r = nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (r == 0 && !(pi = nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED)))
		r = -NLE_NOMEM;
	if (r == 0)
		r = nla_put_u8(msg, IFLA_BRPORT_ISOLATED, 1);
	if (r == 0) {
		nla_nest_end(msg, pi);
		r = nl_send_sync(sk, msg); /* frees msg */
	} else {
		nlmsg_free(msg);
	}
	return r < 0 ? dpn_errno(r) : 0;
}

/* The sandbox's default route: via gw on ifindex, replacing one there. */
static int dpn_default_route(struct nl_sock *sb, int ifindex, struct in_addr gw)
{
	static const struct in_addr any;
	struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *dst = nl_addr_build(AF_INET, &any, 4);
	struct nl_addr *via = nl_addr_build(AF_INET, &gw, 4);
	nl_addr_set_prefixlen(dst, 0);
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_scope(rt, RT_SCOPE_UNIVERSE);
	rtnl_route_set_protocol(rt, RTPROT_STATIC);
	rtnl_route_set_dst(rt, dst);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_add_nexthop(rt, nh); /* rt owns nh now */
	int r = rtnl_route_add(sb, rt, NLM_F_CREATE | NLM_F_REPLACE);
	nl_addr_put(dst);
	nl_addr_put(via);
	rtnl_route_put(rt);
	return r < 0 ? dpn_errno(r) : 0;
}

static int dpn_gw_ep_attach(void *ctx, const struct dp_gateway *gw, const struct dp_gw_ep *ep)
{
	struct dp_nl *nl = ctx;
	struct nl_sock *sb = NULL;
	char bridge[IFNAMSIZ], host[IFNAMSIZ];
	int sbfd = open(ep->netns, O_RDONLY | O_CLOEXEC);
	int r = sbfd < 0 ? -errno : dpn_open_in(sbfd, &sb);
	const char *step = "sandbox netns";
	dpn_gw_veth_name(nl, ep->ip, host);
	if (r < 0)
		goto out;
	step = "gateway bridge";
	int br = 0;
	if ((r = dpn_gw_bridge_name(nl, gw->bridge, bridge)) < 0 ||
	    (r = br = link_ifindex(nl->under, bridge)) < 0)
		goto out;
	link_del(nl->under, host);
	step = "leftover in sandbox";
	if ((r = dpn_sandbox_clear(sb, ep->ifname)) < 0)
		goto out;
	step = "veth pair";
	if ((r = dpn_make_veth(nl->under, br, host, ep->ifname, ep->mac, sbfd, 0)) < 0)
		goto out;
	step = "port isolation";
	int hidx = link_ifindex(nl->under, host);
	if ((r = hidx) < 0 || (r = dpn_port_isolate(nl->under, hidx)) < 0)
		goto out;
	step = "sandbox address";
	if ((r = dpn_sandbox_config(sb, ep->ifname, ep->ip, gw->prefixlen)) < 0)
		goto out;
	step = "default route";
	int idx = link_ifindex(sb, ep->ifname);
	if ((r = idx) < 0 || (r = dpn_default_route(sb, idx, gw->addr)) < 0)
		goto out;
	step = "host end";
	r = dpn_host_commit(nl->under, host, ep->task_id, ep->ip, ep->mac, ep->ifname);
out:
	if (r < 0) {
		log_err("datapath, gateway: attach of task %s (%s in %s): %s: %s", ep->task_id,
			ep->ifname, ep->netns, step, strerror(-r));
		if (sb)
			link_del(nl->under, host);
	}
	if (sbfd >= 0)
		close(sbfd);
	nl_socket_free(sb);
	return r;
}

static int dpn_gw_ep_detach(void *ctx, const struct dp_gw_ep *ep)
{
	struct dp_nl *nl = ctx;
	char host[IFNAMSIZ];
	if (ep->host_ifname[0])
		snprintf(host, sizeof(host), "%s", ep->host_ifname);
	else
		dpn_gw_veth_name(nl, ep->ip, host);
	int r = link_del(nl->under, host);
	if (r < 0)
		log_err("datapath, gateway: detach of task %s (%s): %s", ep->task_id, host,
			strerror(-r));
	return r;
}

/* ---- FDB and neighbour entries ---- */

/* Opens the overlay namespace of vni and finds vxlan0 in it. */
static int dpn_open_vxlan(struct dp_nl *nl, uint32_t vni, struct nl_sock **ov, int *ifindex)
{
	int r = dpn_open_overlay(nl, vni, ov);
	if (r < 0)
		return r;
	*ifindex = link_ifindex(*ov, DPN_VXLAN);
	if (*ifindex < 0) {
		r = *ifindex;
		nl_socket_free(*ov);
		*ov = NULL;
	}
	return r;
}

/* Sends one neighbour add/delete on vxlan0 of vni. */
static int dpn_neigh_send(struct dp_nl *nl, uint32_t vni, struct rtnl_neigh *n, bool add)
{
	struct nl_sock *ov;
	int idx;
	int r = dpn_open_vxlan(nl, vni, &ov, &idx);
	if (r < 0)
		return r;
	rtnl_neigh_set_ifindex(n, idx);
	rtnl_neigh_set_state(n, NUD_PERMANENT);
	r = add ? rtnl_neigh_add(ov, n, NLM_F_CREATE | NLM_F_REPLACE) : rtnl_neigh_delete(ov, n, 0);
	nl_socket_free(ov);
	r = r < 0 ? dpn_errno(r) : 0;
	return !add && dpn_absent(r) ? 0 : r;
}

/* FDB entries are built by hand: libnl 3.7 (Debian 12) takes the message
 * family from NDA_DST (AF_INET) even for AF_BRIDGE entries, which the
 * kernel rejects. Same as `bridge fdb add MAC dev vxlan0 dst VTEP self
 * permanent` (replace, so that a MAC that moved gets its new VTEP). */
static int dpn_fdb_send(struct nl_sock *sk, int ifindex, const struct dp_fdb *f, bool add)
{
	struct ndmsg nd = {
		.ndm_family = AF_BRIDGE, .ndm_ifindex = ifindex,
		.ndm_state = NUD_PERMANENT, .ndm_flags = NTF_SELF,
	};
	struct nl_msg *msg = nlmsg_alloc_simple(add ? RTM_NEWNEIGH : RTM_DELNEIGH,
						add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	if (!msg)
		return -ENOMEM;
	int r = nlmsg_append(msg, &nd, sizeof(nd), NLMSG_ALIGNTO);
	if (r == 0)
		r = nla_put(msg, NDA_LLADDR, 6, f->mac);
	if (r == 0)
		r = nla_put(msg, NDA_DST, 4, &f->vtep);
	if (r == 0)
		r = nl_send_sync(sk, msg); /* frees msg */
	else
		nlmsg_free(msg);
	return r < 0 ? dpn_errno(r) : 0;
}

static int dpn_fdb_op(struct dp_nl *nl, const struct dp_fdb *f, bool add)
{
	struct nl_sock *ov;
	int idx;
	int r = dpn_open_vxlan(nl, f->vni, &ov, &idx);
	if (r == 0) {
		r = dpn_fdb_send(ov, idx, f, add);
		nl_socket_free(ov);
	}
	if (!add && dpn_absent(r))
		r = 0;
	if (r < 0)
		log_err("datapath, vni %u: fdb %s %02x:%02x:%02x:%02x:%02x:%02x dst %s: %s", f->vni,
			add ? "add" : "del", f->mac[0], f->mac[1], f->mac[2], f->mac[3],
			f->mac[4], f->mac[5], inet_ntoa(f->vtep), strerror(-r));
	return r;
}

static int dpn_fdb_add(void *ctx, const struct dp_fdb *f) { return dpn_fdb_op(ctx, f, true); }
static int dpn_fdb_del(void *ctx, const struct dp_fdb *f) { return dpn_fdb_op(ctx, f, false); }

static int dpn_neigh_op(struct dp_nl *nl, const struct dp_neigh *ne, bool add)
{
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *mac = nl_addr_build(AF_LLC, ne->mac, 6);
	struct nl_addr *dst = nl_addr_build(AF_INET, &ne->ip, 4);
	rtnl_neigh_set_lladdr(n, mac);
	rtnl_neigh_set_dst(n, dst);
	int r = dpn_neigh_send(nl, ne->vni, n, add);
	if (r < 0)
		log_err("datapath, vni %u: neighbour %s %s: %s", ne->vni, add ? "add" : "del",
			inet_ntoa(ne->ip), strerror(-r));
	nl_addr_put(mac);
	nl_addr_put(dst);
	rtnl_neigh_put(n);
	return r;
}

static int dpn_neigh_add(void *ctx, const struct dp_neigh *n) { return dpn_neigh_op(ctx, n, true); }
static int dpn_neigh_del(void *ctx, const struct dp_neigh *n) { return dpn_neigh_op(ctx, n, false); }

/* ---- dump ---- */

static bool dpn_addr_is(struct nl_addr *a, int family, const void *bin, size_t len)
{
	return a && nl_addr_get_family(a) == family && nl_addr_get_len(a) == len &&
	       memcmp(nl_addr_get_binary_addr(a), bin, len) == 0;
}

static void dpn_copy_mac(struct nl_addr *a, uint8_t mac[6])
{
	memset(mac, 0, 6);
	if (a && nl_addr_get_len(a) == 6)
		memcpy(mac, nl_addr_get_binary_addr(a), 6);
}

/* The first IPv4 address of link ifindex (as seen through sock): address,
 * prefix length and the subnet they make. Untouched when it has none. */
static void dpn_dump_ipv4(struct nl_sock *sock, int ifindex, struct in_addr *addr,
			  uint8_t *prefixlen, struct in_addr *subnet)
{
	struct nl_cache *cache;
	if (rtnl_addr_alloc_cache(sock, &cache) < 0)
		return;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *l = rtnl_addr_get_local(a);
		if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != AF_INET ||
		    !l || nl_addr_get_len(l) != 4)
			continue;
		memcpy(addr, nl_addr_get_binary_addr(l), 4);
		*prefixlen = rtnl_addr_get_prefixlen(a);
		uint32_t mask = *prefixlen ? htonl(~0u << (32 - *prefixlen)) : 0;
		subnet->s_addr = addr->s_addr & mask;
		break;
	}
	nl_cache_free(cache);
}

/* Gateway and prefix from br0's IPv4 address. */
static void dpn_dump_bridge_addr(struct nl_sock *ov, int br, struct dp_network *net)
{
	dpn_dump_ipv4(ov, br, &net->gateway, &net->prefixlen, &net->subnet);
}

/* Whether vxlan0 is what net_add makes: our VNI, local address and port,
 * enslaved to br0. */
static bool dpn_vxlan_right(const struct dp_nl *nl, struct rtnl_link *vx, uint32_t vni, int br)
{
	uint32_t id = 0, port = 0;
	struct nl_addr *local = NULL;
	if (!vx || !rtnl_link_is_vxlan(vx) || rtnl_link_get_master(vx) != br)
		return false;
	rtnl_link_vxlan_get_id(vx, &id);
	rtnl_link_vxlan_get_port(vx, &port);
	rtnl_link_vxlan_get_local(vx, &local);
	bool ok = id == vni && port == nl->port && dpn_addr_is(local, AF_INET, &nl->local, 4);
	nl_addr_put(local);
	return ok;
}

/* One attachment from a host veth end; a missing or foreign alias gives an
 * empty task id (a leftover the reconcile removes). */
static void dpn_dump_veth(struct rtnl_link *l, uint32_t vni, struct dp_state *st)
{
	struct dp_local_ep ep = { .vni = vni };
	struct dpn_alias al;
	snprintf(ep.host_ifname, sizeof(ep.host_ifname), "%s", rtnl_link_get_name(l));
	if (dpn_alias_parse(rtnl_link_get_ifalias(l), &al)) {
		snprintf(ep.task_id, sizeof(ep.task_id), "%s", al.task_id);
		snprintf(ep.ifname, sizeof(ep.ifname), "%s", al.ifname);
		ep.ip = al.ip;
		memcpy(ep.mac, al.mac, 6);
	}
	/* dp_state_add_local wants a task id and ifname; leftovers bypass it. */
	if (ep.task_id[0] && dp_state_add_local(st, &ep) == 0)
		return;
	ep.task_id[0] = '\0';
	st->eps = xrealloc(st->eps, (st->n_eps + 1) * sizeof(*st->eps));
	st->cap_eps = st->n_eps + 1;
	st->eps[st->n_eps++] = ep;
}

static void dpn_dump_veths(struct nl_cache *links, uint32_t vni, struct dp_state *st)
{
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		/* not the sealer's pair (sealer_link.h) */
		const char *alias = rtnl_link_get_ifalias(l);
		if (rtnl_link_is_veth(l) && !(alias && !strcmp(alias, SEALER_LINK_ALIAS)))
			dpn_dump_veth(l, vni, st);
	}
}

/* Our neighbour entries (permanent, IPv4) on vxlan0. */
static void dpn_dump_neighs(struct nl_sock *ov, int vx, uint32_t vni, struct dp_state *st)
{
	struct nl_cache *cache;
	if (rtnl_neigh_alloc_cache(ov, &cache) < 0)
		return;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_neigh *n = (struct rtnl_neigh *)o;
		struct nl_addr *dst = rtnl_neigh_get_dst(n);
		if (rtnl_neigh_get_ifindex(n) != vx || rtnl_neigh_get_family(n) != AF_INET ||
		    !(rtnl_neigh_get_state(n) & NUD_PERMANENT) || !dst || nl_addr_get_len(dst) != 4)
			continue;
		struct dp_neigh ne = { .vni = vni };
		dpn_copy_mac(rtnl_neigh_get_lladdr(n), ne.mac);
		memcpy(&ne.ip, nl_addr_get_binary_addr(dst), 4);
		dp_state_add_neigh(st, &ne);
	}
	nl_cache_free(cache);
}

/* Where one FDB dump collects into. */
struct dpn_fdb_walk {
	int ifindex;
	uint32_t vni;
	struct dp_state *st;
};

/* One RTM_NEWNEIGH of an AF_BRIDGE dump: ours are on vxlan0, self,
 * permanent, with an IPv4 dst. */
static int dpn_fdb_msg(struct nl_msg *msg, void *arg)
{
	struct dpn_fdb_walk *w = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[NDA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWNEIGH || nlmsg_parse(h, sizeof(struct ndmsg), tb, NDA_MAX, NULL) < 0)
		return NL_OK;
	const struct ndmsg *nd = nlmsg_data(h);
	if (nd->ndm_family != AF_BRIDGE || nd->ndm_ifindex != w->ifindex ||
	    !(nd->ndm_state & NUD_PERMANENT) || !(nd->ndm_flags & NTF_SELF) ||
	    !tb[NDA_DST] || nla_len(tb[NDA_DST]) != 4 ||
	    !tb[NDA_LLADDR] || nla_len(tb[NDA_LLADDR]) != 6)
		return NL_OK;
	struct dp_fdb f = { .vni = w->vni };
	memcpy(f.mac, nla_data(tb[NDA_LLADDR]), 6);
	memcpy(&f.vtep, nla_data(tb[NDA_DST]), 4);
	dp_state_add_fdb(w->st, &f);
	return NL_OK;
}

/* One dump request of type (family header hdr[len]) on sk, each answer
 * through cb(arg): for what libnl's caches leave out. 0 or -errno. */
static int dpn_dump_raw(struct nl_sock *sk, int type, void *hdr, size_t len,
			nl_recvmsg_msg_cb_t cb, void *arg)
{
	int r = nl_send_simple(sk, type, NLM_F_DUMP, hdr, len);
	if (r >= 0)
		r = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, cb, arg);
	if (r >= 0)
		r = nl_recvmsgs_default(sk);
	return r < 0 ? dpn_errno(r) : 0;
}

/* FDB entries on vxlan0: an AF_BRIDGE dump (an AF_UNSPEC neighbour dump,
 * which is what libnl's cache asks for, leaves them out). */
static int dpn_dump_fdbs(struct nl_sock *ov, int vx, uint32_t vni, struct dp_state *st)
{
	struct dpn_fdb_walk w = { .ifindex = vx, .vni = vni, .st = st };
	struct ndmsg nd = { .ndm_family = AF_BRIDGE };
	return dpn_dump_raw(ov, RTM_GETNEIGH, &nd, sizeof(nd), dpn_fdb_msg, &w);
}

/* Where one link dump for gso_ipv4_max_size collects into: per
 * attachment (st->eps[i]) the sandbox end, as the overlay namespace sees
 * it (its ifindex, in the namespace of that id; -1: unknown). */
struct dpn_gso_walk {
	uint32_t vni;
	struct dp_state *st;
	int *peer_index, *peer_nsid;
};

/* One RTM_NEWLINK: its gso_ipv4_max_size (which libnl does not parse)
 * onto our attachment with that host end, if any. */
static int dpn_gso_msg(struct nl_msg *msg, void *arg)
{
	struct dpn_gso_walk *w = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[GRO_IFLA_GSO_IPV4_MAX_SIZE + 1];
	if (h->nlmsg_type != RTM_NEWLINK ||
	    nlmsg_parse(h, sizeof(struct ifinfomsg), tb, GRO_IFLA_GSO_IPV4_MAX_SIZE, NULL) < 0 ||
	    !tb[IFLA_IFNAME] || !tb[GRO_IFLA_GSO_IPV4_MAX_SIZE] ||
	    nla_len(tb[GRO_IFLA_GSO_IPV4_MAX_SIZE]) < (int)sizeof(uint32_t))
		return NL_OK;
	const char *name = nla_get_string(tb[IFLA_IFNAME]);
	for (size_t i = 0; i < w->st->n_eps; i++) {
		struct dp_local_ep *e = &w->st->eps[i];
		if (e->vni != w->vni || strncmp(e->host_ifname, name, IFNAMSIZ) != 0)
			continue;
		e->host_gso4 = nla_get_u32(tb[GRO_IFLA_GSO_IPV4_MAX_SIZE]);
		if (w->peer_index && tb[IFLA_LINK] && tb[IFLA_LINK_NETNSID] &&
		    nla_len(tb[IFLA_LINK]) >= 4 && nla_len(tb[IFLA_LINK_NETNSID]) >= 4) {
			w->peer_index[i] = (int)nla_get_u32(tb[IFLA_LINK]);
			w->peer_nsid[i] = (int)nla_get_s32(tb[IFLA_LINK_NETNSID]);
		}
	}
	return NL_OK;
}

/* One RTM_NEWLINK answer: its gso_ipv4_max_size into *arg. */
static int dpn_peer_gso_msg(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[GRO_IFLA_GSO_IPV4_MAX_SIZE + 1];
	if (h->nlmsg_type == RTM_NEWLINK &&
	    nlmsg_parse(h, sizeof(struct ifinfomsg), tb, GRO_IFLA_GSO_IPV4_MAX_SIZE, NULL) == 0 &&
	    tb[GRO_IFLA_GSO_IPV4_MAX_SIZE] && nla_len(tb[GRO_IFLA_GSO_IPV4_MAX_SIZE]) >= 4)
		*(uint32_t *)arg = nla_get_u32(tb[GRO_IFLA_GSO_IPV4_MAX_SIZE]);
	return NL_OK;
}

/* gso_ipv4_max_size of link index in the namespace the overlay namespace
 * calls nsid (IFLA_TARGET_NETNSID, Linux 4.20); 0 when unknown. The
 * answer is read with a callback of its own, then the ACK, so the socket
 * stays in step for the requests that follow. */
static uint32_t dpn_peer_gso4(struct nl_sock *ov, int nsid, int index)
{
	uint32_t v = 0;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_REQUEST);
	int r = !m ? -NLE_NOMEM : nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (r >= 0)
		r = nla_put_s32(m, IFLA_TARGET_NETNSID, nsid);
	if (r >= 0)
		r = nl_send_auto(ov, m);   /* with NLM_F_ACK */
	nlmsg_free(m);
	struct nl_cb *sc = r >= 0 ? nl_socket_get_cb(ov) : NULL;   /* a reference */
	struct nl_cb *cb = sc ? nl_cb_clone(sc) : NULL;
	nl_cb_put(sc);
	if (!cb)
		return 0;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, dpn_peer_gso_msg, &v);
	/* the link, then its ACK; an error answer is both */
	if (nl_recvmsgs(ov, cb) >= 0)
		nl_wait_for_ack(ov);
	nl_cb_put(cb);
	return v;
}

/* The host ends' gso_ipv4_max_size, and their sandbox ends' (both left 0
 * by a kernel before 6.3). */
static int dpn_dump_gso4(struct nl_sock *ov, uint32_t vni, struct dp_state *st)
{
	size_t n = st->n_eps;
	struct dpn_gso_walk w = { .vni = vni, .st = st };
	w.peer_index = n ? xcalloc(n, sizeof(int)) : NULL;
	w.peer_nsid = n ? xcalloc(n, sizeof(int)) : NULL;
	for (size_t i = 0; i < n; i++)
		w.peer_index[i] = -1;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	int r = dpn_dump_raw(ov, RTM_GETLINK, &ifi, sizeof(ifi), dpn_gso_msg, &w);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (w.peer_index[i] > 0 && w.peer_nsid[i] >= 0)
			st->eps[i].ct_gso4 = dpn_peer_gso4(ov, w.peer_nsid[i], w.peer_index[i]);
	free(w.peer_index);
	free(w.peer_nsid);
	return r;
}

/* Everything in the overlay namespace of vni. */
static int dpn_dump_net(struct dp_nl *nl, uint32_t vni, struct dp_state *st)
{
	struct nl_sock *ov;
	struct nl_cache *links = NULL;
	struct dp_network net = { .vni = vni };
	int r = dpn_open_overlay(nl, vni, &ov);
	if (r < 0)
		return r;
	if ((r = rtnl_link_alloc_cache(ov, AF_UNSPEC, &links)) < 0) {
		r = dpn_errno(r);
		goto out;
	}
	struct rtnl_link *br = rtnl_link_get_by_name(links, DPN_BRIDGE);
	struct rtnl_link *vx = rtnl_link_get_by_name(links, DPN_VXLAN);
	int bri = br ? rtnl_link_get_ifindex(br) : -1;
	const char *alias = br ? rtnl_link_get_ifalias(br) : NULL;
	net.encrypted = alias && strcmp(alias, DPN_SEALED_ALIAS) == 0;
	/* Never both: an encrypted network's vxlan0 is a leftover anyway. */
	alias = vx && !net.encrypted ? rtnl_link_get_ifalias(vx) : NULL;
	net.esp = alias && strcmp(alias, DPN_ESP_ALIAS) == 0;
	if (br)
		dpn_dump_bridge_addr(ov, bri, &net);
	net.complete = br && net.gateway.s_addr &&
		       (net.encrypted ? !vx : dpn_vxlan_right(nl, vx, vni, bri));
	net.mtu = net.encrypted ? rtnl_link_get_mtu(br) : vx ? rtnl_link_get_mtu(vx) : 0;
	dp_state_add_network(st, &net);
	dpn_dump_veths(links, vni, st);
	/* not fatal: an attachment of unknown size is left as it is */
	if (net.encrypted && (r = dpn_dump_gso4(ov, vni, st)) < 0)
		log_warn("datapath, vni %u: reading the host ends' super-frame sizes: %s", vni,
			 strerror(-r));
	r = 0;
	if (vx) {
		dpn_dump_neighs(ov, rtnl_link_get_ifindex(vx), vni, st);
		r = dpn_dump_fdbs(ov, rtnl_link_get_ifindex(vx), vni, st);
	}
	rtnl_link_put(br);
	rtnl_link_put(vx);
out:
	nl_cache_free(links);
	nl_socket_free(ov);
	return r;
}

/* The gateway legs: veths on the gateway bridge gw_idx (0: none) or named
 * like a leg. Only a complete leg on the bridge has a task id; the rest are
 * leftovers for the reconcile to remove. */
static void dpn_dump_gw_eps(const struct dp_nl *nl, struct nl_cache *links, int gw_idx,
			    struct dp_state *st)
{
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		bool on_gw = gw_idx && rtnl_link_get_master(l) == gw_idx;
		if (!rtnl_link_is_veth(l) || (!on_gw && !dpn_is_gw_veth_name(nl, rtnl_link_get_name(l))))
			continue;
		struct dp_gw_ep ep = { .task_id = "" };
		struct dpn_alias al;
		snprintf(ep.host_ifname, sizeof(ep.host_ifname), "%s", rtnl_link_get_name(l));
		if (on_gw && dpn_alias_parse(rtnl_link_get_ifalias(l), &al)) {
			snprintf(ep.task_id, sizeof(ep.task_id), "%s", al.task_id);
			snprintf(ep.ifname, sizeof(ep.ifname), "%s", al.ifname);
			ep.ip = al.ip;
			memcpy(ep.mac, al.mac, 6);
			if (dp_state_add_gw_ep(st, &ep) == 0)
				continue;
			ep.task_id[0] = '\0';
		}
		/* Leftovers bypass dp_state_add_gw_ep, which wants a task id. */
		st->gw_eps = xrealloc(st->gw_eps, (st->n_gw_eps + 1) * sizeof(*st->gw_eps));
		st->cap_gw_eps = st->n_gw_eps + 1;
		st->gw_eps[st->n_gw_eps++] = ep;
	}
}

/* IPv4 address and prefix of link ifindex in the node's namespace. */
static void dpn_dump_gw_addr(struct dp_nl *nl, int ifindex, struct dp_gateway *gw)
{
	dpn_dump_ipv4(nl->under, ifindex, &gw->addr, &gw->prefixlen, &gw->subnet);
}

/* The gateway in the node's namespace: present when a gateway bridge or
 * the NAT table is there; complete when there is exactly one bridge, up,
 * with an address, forwarding is on and the table holds the masquerade of
 * that bridge's subnet. A table without a bridge shows as a gateway with
 * no bridge name, for the reconcile to remove. */
static int dpn_dump_gw(struct dp_nl *nl, struct dp_state *st)
{
	struct nl_cache *links;
	int r = rtnl_link_alloc_cache(nl->under, AF_UNSPEC, &links);
	if (r < 0)
		return dpn_errno(r);
	struct dp_gateway gw = { .complete = false };
	struct rtnl_link *br = NULL;
	int nbr = 0;
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		if (dpn_is_gw_bridge(nl, l) && nbr++ == 0)
			br = l;
	}
	char table[32], cmd[64], *listing = NULL;
	dpn_gw_table(nl, table, sizeof(table));
	snprintf(cmd, sizeof(cmd), "list table ip %s", table);
	bool has_table = dpn_nft_word(table) && dpn_nft(nl, cmd, true, &listing) == 0;
	if (br) {
		const char *name = rtnl_link_get_name(br);
		snprintf(gw.bridge, sizeof(gw.bridge), "%s", name + strlen(nl->prefix));
		dpn_dump_gw_addr(nl, rtnl_link_get_ifindex(br), &gw);
		char rule[128];
		dpn_gw_rule(name, gw.subnet, gw.prefixlen, rule, sizeof(rule));
		gw.complete = nbr == 1 && gw.bridge[0] && gw.addr.s_addr &&
			      (rtnl_link_get_flags(br) & IFF_UP) && has_table &&
			      strstr(listing, rule) && dpn_forwarding(nl, NULL) == 1;
	}
	if (br || has_table) {
		st->gw = gw;
		st->has_gw = true;
	}
	dpn_dump_gw_eps(nl, links, br ? rtnl_link_get_ifindex(br) : 0, st);
	free(listing);
	nl_cache_free(links);
	return 0;
}

/* VNI from a namespace file name "<prefix>ov-<vni>"; 0 when not ours. */
static uint32_t dpn_parse_ns_name(const struct dp_nl *nl, const char *name)
{
	size_t pl = strlen(nl->prefix);
	if (strncmp(name, nl->prefix, pl) != 0 || strncmp(name + pl, "ov-", 3) != 0)
		return 0;
	const char *num = name + pl + 3;
	char *end;
	errno = 0;
	unsigned long v = strtoul(num, &end, 10);
	if (errno || *num < '1' || *num > '9' || *end || v > 0xffffff)
		return 0;
	return (uint32_t)v;
}

static int dpn_dump(void *ctx, struct dp_state *st)
{
	struct dp_nl *nl = ctx;
	DIR *d = opendir(nl->run_dir);
	if (!d) {
		int err = -errno;
		log_err("datapath, cannot read run dir %s: %s", nl->run_dir, strerror(-err));
		return err;
	}
	int err = 0;
	for (struct dirent *e; (e = readdir(d));) {
		uint32_t vni = dpn_parse_ns_name(nl, e->d_name);
		if (!vni)
			continue;
		int r = dpn_dump_net(nl, vni, st);
		if (r == -ENOENT) {
			/* A file without a namespace behind it: report it as an
			 * incomplete network so that it is cleaned up. */
			struct dp_network net = { .vni = vni };
			dp_state_add_network(st, &net);
		} else if (r < 0) {
			log_err("datapath, vni %u: dump: %s", vni, strerror(-r));
			err = r;
			break;
		}
	}
	closedir(d);
	if (err == 0 && (err = dpn_dump_gw(nl, st)) < 0)
		log_err("datapath, gateway: dump: %s", strerror(-err));
	return err;
}

/* ---- provider ---- */

static void dpn_free(void *ctx)
{
	struct dp_nl *nl = ctx;
	if (!nl)
		return;
	nl_socket_free(nl->under);
	if (nl->underlay_fd >= 0)
		close(nl->underlay_fd);
	free(nl);
}

static const struct dp_ops dp_netlink_ops = {
	.name = "netlink",
	.dump = dpn_dump,
	.net_add = dpn_net_add,
	.net_del = dpn_net_del,
	.ep_attach = dpn_ep_attach,
	.ep_detach = dpn_ep_detach,
	.ep_tune = dpn_ep_tune,
	.fdb_add = dpn_fdb_add,
	.fdb_del = dpn_fdb_del,
	.neigh_add = dpn_neigh_add,
	.neigh_del = dpn_neigh_del,
	.gw_add = dpn_gw_add,
	.gw_del = dpn_gw_del,
	.gw_ep_attach = dpn_gw_ep_attach,
	.gw_ep_detach = dpn_gw_ep_detach,
	.free = dpn_free,
};

int dp_netlink_new(const struct dp_netlink_config *cfg, struct dp_provider **out)
{
	const char *prefix = cfg->prefix ? cfg->prefix : "";
	if (!cfg->run_dir || strlen(cfg->run_dir) + 32 >= DP_PATH_MAX || strlen(prefix) > 6)
		return -EINVAL;
	struct dp_nl *nl = xcalloc(1, sizeof(*nl));
	snprintf(nl->run_dir, sizeof(nl->run_dir), "%s", cfg->run_dir);
	snprintf(nl->prefix, sizeof(nl->prefix), "%s", prefix);
	nl->local = cfg->local_addr;
	nl->port = cfg->dstport ? cfg->dstport : DP_VXLAN_PORT;
	nl->underlay_fd = cfg->underlay_netns ?
		open(cfg->underlay_netns, O_RDONLY | O_CLOEXEC) : ns_self_fd();
	int r = nl->underlay_fd < 0 ? -errno : dpn_open_in(nl->underlay_fd, &nl->under);
	if (r < 0) {
		log_err("datapath, underlay netns %s: %s",
			cfg->underlay_netns ? cfg->underlay_netns : "(own)", strerror(-r));
		dpn_free(nl);
		return r;
	}
	struct dp_provider *p = xcalloc(1, sizeof(*p));
	p->ops = &dp_netlink_ops;
	p->ctx = nl;
	*out = p;
	return 0;
}

int dp_netlink_ns_path(struct dp_provider *p, uint32_t vni, char *buf, size_t len)
{
	return dpn_ns_path(p->ctx, vni, buf, len);
}
