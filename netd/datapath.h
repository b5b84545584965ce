/* The overlay data path of one node: what netd wants the kernel to hold
 * (networks, local container attachments, remote peers, and the gateway
 * bridge with its container legs that gives containers a NATed default
 * route out of the cluster, Docker's docker_gwbridge) and the reconcile
 * that converges the kernel to it through a small ops table.
 *
 * Providers: dp_netlink.c (the real one: network namespaces, br0, vxlan0,
 * veths, FDB and neighbour entries through libnl-route-3, the gateway's
 * masquerade through libnftables) and dp_fake.c (an in-memory one that
 * records every operation, for unit tests).
 *
 * Reconcile reads the actual state back from the provider first and then
 * applies only the differences, removals before additions, so running it
 * again, or after a netd restart, adds nothing twice and drops what is
 * stale. */
#ifndef SWARM_DATAPATH_H
#define SWARM_DATAPATH_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_VXLAN_PORT 4789
/* Inner Ethernet 14 + outer IPv4 20 + UDP 8 + VXLAN 8. */
#define DP_VXLAN_OVERHEAD 50
/* The sealed userspace path (sealer.h SEALER_OVERHEAD): outer IPv4 20 +
 * UDP 8 + seal header 16 + VNI 4 + inner Ethernet 14 + tag 16. */
#define DP_SEALED_OVERHEAD 78
/* Kernel ESP (esp.h): VXLAN's 50 + ESP transport over IPv4 with rfc4106
 * AES-GCM: ESP header 8 + IV 8 + trailer (pad to 4 bytes + pad length +
 * next header, at most 5) + ICV 16 = 37, rounded up to 40. */
#define DP_ESP_OVERHEAD 90
/* gso_max_size of containers' legs on encrypted networks: a TCP
 * super-frame's train (sealer.h) then fits one UDP_SEGMENT send of
 * 65507 bytes with its per-datagram headers. */
#define DP_SEALED_GSO_MAX 62000
/* Their gso_ipv4_max_size (IPv4 TCP; BIG TCP, Linux 6.3): a super-frame
 * of up to 256 KB, read whole by swarm-sealer through its veth pair
 * (sealer_link.h) and sealed as a train of several UDP_SEGMENT sends. Only
 * where the network's MTU is at least DP_SEALED_GSO4_MIN_MTU: a train has
 * at most SEAL_TRAIN_MAX (255) datagrams, which at that MTU carry
 * 255 * (1202 + 78 - 28 - 16) bytes, enough; below it frames stay at
 * DP_SEALED_GSO_MAX. Kept below the sealer pair's own size (256 KB) by
 * the kernel's TCP header reserve. */
#define DP_SEALED_GSO4_MAX (256u * 1024)
#define DP_SEALED_GSO4_MIN_MTU 1202
/* That size for a network of this MTU, or 0: left as the kernel has it. */
static inline uint32_t dp_sealed_gso4(uint32_t mtu)
{
	return mtu >= DP_SEALED_GSO4_MIN_MTU ? DP_SEALED_GSO4_MAX : 0;
}
/* gso_ipv4_max_size of their host ends: swarm-sealer's coalesced frames
 * (sealer_gro.h GRO_MAX_LEN) cross them whole. */
#define DP_SEALED_HOST_GSO (256u * 1024)
#define DP_TASK_ID_MAX 64
#define DP_PATH_MAX 256

/* One overlay network on this node. */
struct dp_network {
	uint32_t vni;              /* VXLAN id, 1..2^24-1 */
	struct in_addr subnet;     /* network address of the subnet */
	uint8_t prefixlen;         /* subnet prefix length */
	struct in_addr gateway;    /* address put on br0 */
	/* Encrypted: no vxlan0; swarm-sealer's TAP is br0's port to the other
	 * nodes (sealer.h), MTU = underlay - DP_SEALED_OVERHEAD, and no FDB or
	 * neighbour entries (the sealer holds the peers). br0's alias marks it. */
	bool encrypted;
	/* Kernel ESP (encrypted where the kernel has ESP): vxlan0 and FDB/
	 * neighbour entries as for a plain network, MTU = underlay -
	 * DP_ESP_OVERHEAD; vxlan0's alias "swarm-esp" marks it. Never together
	 * with encrypted. */
	bool esp;
	uint32_t mtu;              /* actual state only: vxlan0's (encrypted: br0's) MTU */
	bool complete;             /* actual state only: ns, br0 and vxlan0 (none if encrypted) right */
};

/* One local container attached to one overlay network. */
struct dp_local_ep {
	uint32_t vni;                      /* network it is attached to */
	char task_id[DP_TASK_ID_MAX];      /* owner; "" in actual state = half-made leftover */
	char netns[DP_PATH_MAX];           /* sandbox netns file; "" in actual state (not read back) */
	char ifname[IFNAMSIZ];             /* name inside the sandbox ("eth0") */
	char host_ifname[IFNAMSIZ];        /* actual state only: the veth end in the overlay ns */
	uint32_t host_gso4;                /* actual state only: its gso_ipv4_max_size (0: unknown) */
	uint32_t ct_gso4;                  /* actual state only: the sandbox end's (0: unknown) */
	struct in_addr ip;                 /* address inside the subnet */
	uint8_t mac[6];                    /* MAC of the sandbox end */
};

/* A static FDB entry on vxlan0: frames for mac go to the VTEP. */
struct dp_fdb {
	uint32_t vni;
	uint8_t mac[6];
	struct in_addr vtep;
};

/* A permanent neighbour entry on vxlan0 (proxy ARP answers from it). */
struct dp_neigh {
	uint32_t vni;
	struct in_addr ip;
	uint8_t mac[6];
};

/* The node's gateway bridge, in the node's own namespace: address addr/
 * prefixlen on it, IPv4 forwarding on, and traffic from subnet that leaves
 * through any other interface masqueraded. */
struct dp_gateway {
	char bridge[IFNAMSIZ];     /* bridge name; a provider may prefix it (see dp_netlink_config) */
	struct in_addr subnet;     /* network address of the subnet */
	uint8_t prefixlen;         /* subnet prefix length, 1..30 */
	struct in_addr addr;       /* the bridge's address: the legs' default gateway */
	bool complete;             /* actual state only: bridge, address, forwarding and NAT all right */
};

/* One local container's leg on the gateway bridge: a veth whose sandbox
 * end carries the default route via the gateway's address. */
struct dp_gw_ep {
	char task_id[DP_TASK_ID_MAX];      /* owner; "" in actual state = half-made leftover */
	char netns[DP_PATH_MAX];           /* sandbox netns file; "" in actual state (not read back) */
	char ifname[IFNAMSIZ];             /* name inside the sandbox ("eth1") */
	char host_ifname[IFNAMSIZ];        /* actual state only: the veth end on the bridge */
	struct in_addr ip;                 /* address inside the gateway subnet */
	uint8_t mac[6];                    /* MAC of the sandbox end */
};

/* A set of data-path objects: the desired state netd builds, or the actual
 * state a provider dumps. Arrays are malloc-owned and grow on add. */
struct dp_state {
	struct dp_network *nets;     /* networks, unique by vni */
	size_t n_nets, cap_nets;
	struct dp_local_ep *eps;     /* local attachments, unique by (vni, task_id) */
	size_t n_eps, cap_eps;
	struct dp_fdb *fdbs;         /* unique by (vni, mac) */
	size_t n_fdbs, cap_fdbs;
	struct dp_neigh *neighs;     /* unique by (vni, ip) */
	size_t n_neighs, cap_neighs;
	bool has_gw;                 /* gw is set */
	struct dp_gateway gw;        /* at most one gateway */
	struct dp_gw_ep *gw_eps;     /* gateway legs, unique by task_id and by ip */
	size_t n_gw_eps, cap_gw_eps;
};

void dp_state_init(struct dp_state *st);
/* Frees the arrays and leaves st empty (reusable). NULL is a no-op. */
void dp_state_clear(struct dp_state *st);

/* Adders copy *x into st. They return 0, -EEXIST when the key is already
 * there (the first one wins and is kept: a caller with several records for
 * one IP or MAC, as while an address is reused, lists the preferred first),
 * or -EINVAL on a malformed record (VNI 0 or over 24 bits, prefix > 30,
 * a network both encrypted and esp, empty task id or ifname). */
int dp_state_add_network(struct dp_state *st, const struct dp_network *net);
int dp_state_add_local(struct dp_state *st, const struct dp_local_ep *ep);
int dp_state_add_fdb(struct dp_state *st, const struct dp_fdb *f);
int dp_state_add_neigh(struct dp_state *st, const struct dp_neigh *n);
/* A remote endpoint: one FDB entry (mac -> vtep) and one neighbour entry
 * (ip -> mac). A key already present is kept (first wins); 0 when at
 * least one of the two was added, -EEXIST when neither, -EINVAL. */
int dp_state_add_remote(struct dp_state *st, uint32_t vni, struct in_addr ip,
			const uint8_t mac[6], struct in_addr vtep);

/* Sets the gateway: 0, -EEXIST when one is set already (kept), -EINVAL on
 * an empty or unterminated bridge name, a prefix outside 1..30, or an
 * address outside the subnet or equal to its network address. */
int dp_state_set_gateway(struct dp_state *st, const struct dp_gateway *gw);
/* Adds a gateway leg: 0, -EEXIST when its task id or its IP is there
 * already (first wins), -EINVAL on an empty task id or ifname, a zero IP
 * or MAC, or an unterminated string. Legs are kept even without a
 * gateway; the reconcile ignores them then. */
int dp_state_add_gw_ep(struct dp_state *st, const struct dp_gw_ep *ep);

const struct dp_network *dp_state_find_network(const struct dp_state *st, uint32_t vni);
const struct dp_gw_ep *dp_state_find_gw_ep(const struct dp_state *st, const char *task_id);

/* Kernel operations. Every function returns 0 or -errno and logs the
 * reason on failure. ctx is the provider's own state. */
struct dp_ops {
	const char *name;
	/* Fills *actual (initialised and empty on entry) with what exists. */
	int (*dump)(void *ctx, struct dp_state *actual);
	/* Creates the overlay namespace with br0 (gateway address) and vxlan0
	 * (none when net->encrypted; marked and with the smaller MTU when
	 * net->esp). A leftover of the same VNI is removed first. */
	int (*net_add)(void *ctx, const struct dp_network *net);
	/* Removes the namespace of vni and everything in it. Absent: 0. */
	int (*net_del)(void *ctx, uint32_t vni);
	/* Attaches a sandbox: veth pair, ep->ifname in ep->netns with the IP
	 * (net's prefix), MAC and MTU; the other end on net's br0. */
	int (*ep_attach)(void *ctx, const struct dp_network *net, const struct dp_local_ep *ep);
	/* Removes the veth pair of ep (as dumped or as desired). Absent: 0. */
	int (*ep_detach)(void *ctx, const struct dp_local_ep *ep);
	/* Puts right, in place, the super-frame sizes ep_attach sets on an
	 * attachment on encrypted net where an earlier netd did not: the
	 * host end's (DP_SEALED_HOST_GSO) and, where net's MTU allows, the
	 * sandbox end's (DP_SEALED_GSO4_MAX); ep as dumped, with the desired
	 * netns. The attachment is untouched. */
	int (*ep_tune)(void *ctx, const struct dp_network *net, const struct dp_local_ep *ep);
	int (*fdb_add)(void *ctx, const struct dp_fdb *f);
	int (*fdb_del)(void *ctx, const struct dp_fdb *f);
	int (*neigh_add)(void *ctx, const struct dp_neigh *n);
	int (*neigh_del)(void *ctx, const struct dp_neigh *n);
	/* Creates the gateway bridge in the node's namespace with gw->addr/
	 * prefixlen, up; turns IPv4 forwarding on there; installs the
	 * masquerade of gw->subnet out of every other interface. A leftover
	 * of the same bridge name and the NAT table are replaced. */
	int (*gw_add)(void *ctx, const struct dp_gateway *gw);
	/* Removes the gateway (as dumped or as desired): its legs, the bridge
	 * and the NAT table. Forwarding is left on. Absent: 0. */
	int (*gw_del)(void *ctx, const struct dp_gateway *gw);
	/* Attaches a sandbox to the gateway: veth pair, ep->ifname in
	 * ep->netns with ep->ip/gw->prefixlen, the MAC, up, and the default
	 * route via gw->addr (replacing one already there); the host end on
	 * the bridge, up, isolated from the other legs (Docker's
	 * enable_icc=false: legs reach the gateway, not each other).
	 * ep->ifname must differ from the sandbox's overlay interfaces. */
	int (*gw_ep_attach)(void *ctx, const struct dp_gateway *gw, const struct dp_gw_ep *ep);
	/* Removes the veth pair of ep (as dumped or as desired). Absent: 0. */
	int (*gw_ep_detach)(void *ctx, const struct dp_gw_ep *ep);
	void (*free)(void *ctx);
};

/* A provider: its ops and its state. */
struct dp_provider {
	const struct dp_ops *ops;
	void *ctx;
};

/* Frees a provider made by dp_netlink_new or dp_fake_new. NULL: no-op. */
void dp_provider_free(struct dp_provider *p);

/* What one reconcile did. */
struct dp_stats {
	unsigned applied;   /* kernel operations that succeeded */
	unsigned failed;    /* kernel operations that failed */
};

/* Converges the provider to *desired: dumps the actual state, then removes
 * stale attachments, neighbour and FDB entries and networks (a network whose
 * gateway, subnet or kind (plain, encrypted, esp) changed, or which is
 * incomplete, is removed and made again), then adds missing networks,
 * attachments, FDB and neighbour entries. Attachments and peers of
 * networks not in *desired are ignored. The gateway goes the same way:
 * stale legs are detached, a gateway not desired, changed (bridge, subnet,
 * address) or incomplete is removed with its legs (and then made again),
 * then the gateway and missing legs are added; legs without a desired
 * gateway are ignored. One failed operation does not stop the others.
 * Returns 0, or the first error (the dump's error aborts before anything
 * is changed). stats may be NULL. */
int dp_reconcile(struct dp_provider *p, const struct dp_state *desired,
		 struct dp_stats *stats);

/* ---- real provider (dp_netlink.c) ---- */

struct dp_netlink_config {
	const char *run_dir;        /* directory of the namespace files (required) */
	/* Prefix of namespace files, of every link made in the node's
	 * namespace (temporary vxlan, gateway bridge "<prefix><bridge>",
	 * gateway legs "<prefix>g<IP in hex>") and of the NAT table
	 * "<prefix>swarm_gw": <= 6 chars (""). The gateway needs prefix and
	 * bridge name to fit together in 15 chars, and both to be letters,
	 * digits, '_', '-' or '.' starting with a letter or '_' (nft's
	 * grammar); gw_add fails with -ENAMETOOLONG or -EINVAL otherwise. */
	const char *prefix;
	const char *underlay_netns; /* netns file of the node's own namespace; NULL = the caller's */
	struct in_addr local_addr;  /* the node's data-path address (vxlan local, MTU source) */
	uint16_t dstport;           /* VXLAN UDP port; 0 = DP_VXLAN_PORT */
};

/* Makes the netlink provider. Namespace files are "<run_dir>/<prefix>ov-<vni>".
 * 0 or -errno. */
int dp_netlink_new(const struct dp_netlink_config *cfg, struct dp_provider **out);
/* Path of the overlay namespace file of vni, into buf. 0 or -ENAMETOOLONG. */
int dp_netlink_ns_path(struct dp_provider *p, uint32_t vni, char *buf, size_t len);

/* ---- fake provider (dp_fake.c) ---- */

/* An in-memory provider: it holds a dp_state as "the kernel" and records
 * one text line per successful mutating operation, e.g.
 * "net_add 4242" ("net_add 4242 encrypted", "net_add 4242 esp"),
 * "ep_attach 4242 task1 eth0 198.19.42.11",
 * "fdb_add 4242 02:42:c6:13:2a:0c 192.0.2.202",
 * "neigh_del 4242 198.19.42.12", "gw_add br-gw 198.19.255.1/24",
 * "gw_del br-gw", "gw_ep_attach task1 eth1 198.19.255.2",
 * "gw_ep_detach task1 198.19.255.2". */
int dp_fake_new(struct dp_provider **out);
/* The fake's "kernel" state, to preload (a restart) or inspect. */
struct dp_state *dp_fake_state(struct dp_provider *p);
size_t dp_fake_nops(struct dp_provider *p);
const char *dp_fake_op(struct dp_provider *p, size_t i);
/* Number of recorded lines starting with prefix. */
size_t dp_fake_count(struct dp_provider *p, const char *prefix);
void dp_fake_clear_ops(struct dp_provider *p);
/* The next operation whose line would start with prefix fails with err
 * (once); the dump fails with prefix "dump". */
void dp_fake_fail(struct dp_provider *p, const char *prefix, int err);

#endif
