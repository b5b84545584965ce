/* Service load balancing in one network namespace: the set of services lbd
 * wants balanced there (VIP -> backends, published ports -> backends'
 * target ports for the routing mesh) and the reconcile that converges the
 * kernel to it through a small ops table.
 *
 * Providers, chosen at start by lb_probe():
 *   - lb_ipvs.c: IPVS fwmark services through generic netlink (libnl-genl-3),
 *     the marks set by a small nftables table; used when the kernel has
 *     ip_vs;
 *   - lb_nft.c: nftables NAT through libnftables: one chain per service
 *     holding `dnat to numgen inc mod N map { ... }`, reached through
 *     verdict maps keyed by VIP and by (protocol, published port), each
 *     service replaced in one atomic batch;
 *   - lb_fake.c: in memory, records every operation, for unit tests.
 *
 * Reconcile reads the actual services back from the provider (only the
 * kernel objects lbd owns), then deletes the stale ones and creates or
 * replaces the missing and changed ones, so that running it again, or after
 * an lbd restart, changes nothing.
 *
 * A service without backends refuses new connections at once (nftables:
 * TCP reset or ICMP port unreachable; IPVS: ICMP port unreachable) rather
 * than letting them time out.
 *
 * Connections already established keep their backend through a backend
 * change (the kernel's conntrack, or IPVS's connection table, holds the
 * translation); lb_conntrack_flush() drops them once a removed backend is
 * gone, so that their next packet is answered (reset) instead of hanging. */
#ifndef SWARM_LB_H
#define SWARM_LB_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LB_ID_MAX 65        /* service id: 1..64 characters and the NUL */
#define LB_PREFIX_MAX 6     /* longest name prefix of a provider's kernel objects */

/* A published port of the routing mesh: connections to any address of the
 * namespace on (proto, published) go to a backend's target port. */
struct lb_port {
	uint8_t proto;          /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t published;     /* port on the namespace's addresses, host order, 1..65535 */
	uint16_t target;        /* port on the backends, host order; 0 in actual state = unknown */
};

/* One balanced service. In a state, backends are sorted (by address, host
 * order) and unique, ports are sorted by (proto, published) and unique:
 * comparing two services is comparing their arrays. */
struct lb_service {
	char id[LB_ID_MAX];         /* [A-Za-z0-9_.-], names the kernel objects */
	struct in_addr vip;         /* virtual IP; 0.0.0.0 = none: published ports only */
	struct in_addr *backends;   /* malloc-owned in a state; may be empty */
	size_t n_backends;
	struct lb_port *ports;      /* malloc-owned in a state; may be empty */
	size_t n_ports;
	bool complete;              /* actual state only: the kernel objects agree with each other */
};

/* A set of services: the desired state lbd builds or the actual state a
 * provider dumps. Unique by id, by VIP and by (proto, published port). */
struct lb_state {
	struct lb_service *svcs;    /* malloc-owned, each with its own arrays */
	size_t n_svcs, cap_svcs;
};

void lb_state_init(struct lb_state *st);
/* Frees everything and leaves st empty (reusable). NULL is a no-op. */
void lb_state_clear(struct lb_state *st);

/* Adds a deep copy of *svc to st, its backends sorted and deduplicated
 * and its ports sorted. 0; -EINVAL on a bad id (empty, too long, a
 * character outside [A-Za-z0-9_.-]), neither a VIP nor a port, a backend
 * of 0.0.0.0, a port
 * with another protocol or a zero port, or one published port given twice
 * with different targets; -EEXIST when the id, the VIP or a (proto,
 * published) pair is already in st (st unchanged). svc->complete is
 * ignored (set true). */
int lb_state_add(struct lb_state *st, const struct lb_service *svc);

const struct lb_service *lb_state_find(const struct lb_state *st, const char *id);

/* Whether a and b balance the same way: same VIP, backend set and ports
 * (both normalised as in a state); without backends, the ports' targets
 * are not compared (they lead nowhere). id and complete are not compared. */
bool lb_service_same(const struct lb_service *a, const struct lb_service *b);

/* Whether id can name a service (see lb_state_add). */
bool lb_id_valid(const char *id);

/* Kernel operations. Every function returns 0 or -errno and logs the
 * reason on failure. ctx is the provider's own state. */
struct lb_ops {
	const char *name;
	/* Whether the provider can work in its namespace: 0, or -errno with a
	 * one-line reason in why (always NUL-terminated). Changes nothing
	 * that lbd owns. */
	int (*probe)(void *ctx, char *why, size_t whylen);
	/* Fills *actual (initialised and empty on entry) with the services
	 * the provider's own kernel objects hold, and nothing else. A service
	 * whose objects are half there or disagree has complete = false. */
	int (*dump)(void *ctx, struct lb_state *actual);
	/* Creates svc, or replaces old (the same id as dumped; NULL when the
	 * service is absent) with svc. The nftables provider does it in one
	 * atomic batch; IPVS in several messages ordered so that no new
	 * connection is refused on the way. The caller makes sure that no
	 * other service holds svc's VIP or published ports. */
	int (*svc_set)(void *ctx, const struct lb_service *old, const struct lb_service *svc);
	/* Deletes the service as dumped (its id names it; its VIP and ports
	 * name the map entries to remove). Absent: 0. */
	int (*svc_del)(void *ctx, const struct lb_service *svc);
	void (*free)(void *ctx);
};

/* A provider: its ops and its state. */
struct lb_provider {
	const struct lb_ops *ops;
	void *ctx;
};

/* Frees a provider made by any *_new below or by lb_probe. NULL: no-op. */
void lb_provider_free(struct lb_provider *p);

/* What one reconcile did. */
struct lb_stats {
	unsigned applied;   /* kernel operations that succeeded */
	unsigned failed;    /* kernel operations that failed */
};

/* Converges the provider to *desired (which must satisfy lb_state_add's
 * uniqueness): dumps the actual services, deletes those not desired, and
 * those whose VIP or published ports another desired service takes over;
 * then sets every desired service that is missing, incomplete or different
 * (backends compared as sets), passing the actual one as old. Services
 * equal to the desired ones are not touched. One failed operation does not
 * stop the others. Returns 0, or the first error (a failed dump aborts
 * before anything changes). stats may be NULL. */
int lb_reconcile(struct lb_provider *p, const struct lb_state *desired, struct lb_stats *stats);

/* The same without the dump: *actual is what the caller knows the kernel
 * holds (the desired state of its last fully applied run). lbd applies
 * every change this way, so that an update costs one batch whatever the
 * number of services, and dumps only at start and on its periodic
 * resync. */
int lb_apply(struct lb_provider *p, const struct lb_state *actual, const struct lb_state *desired,
	     struct lb_stats *stats);

/* Deep copy of src into dst (initialised, emptied first). */
void lb_state_copy(struct lb_state *dst, const struct lb_state *src);

/* Where a real provider works. */
struct lb_config {
	const char *netns;    /* netns file of the namespace to balance in; NULL = the caller's */
	/* Prefix of the provider's nftables table ("<prefix>swarm_lb" for
	 * nftables, "<prefix>swarm_lbm" for IPVS's marks): <= 6 characters of
	 * [A-Za-z0-9_.-] starting with a letter or '_'. NULL = "". */
	const char *prefix;
	/* Connections from outside that are translated here keep their
	 * source address (no masquerade): right where the backends' answers
	 * come back through this namespace anyway (the node's own namespace,
	 * whose gateway bridge is every container's default route). false:
	 * masquerade them to this namespace's address (a load-balancer
	 * namespace whose backends would answer the client directly). */
	bool keep_source;
};

/* Picks the data path for cfg's namespace: IPVS when its generic netlink
 * family resolves (and nftables works for its marks), else nftables when a
 * scratch table can be made and deleted there, else -EOPNOTSUPP. The
 * reasons of the providers not taken are logged (info) and, when none
 * works, left in why. 0 with *out set, or -errno. */
int lb_probe(const struct lb_config *cfg, struct lb_provider **out, char *why, size_t whylen);

/* The choice itself: the first of cands[0..n) (in order of preference;
 * NULL entries are skipped) whose probe succeeds goes to *out, every other
 * one is freed. 0, or the last probe's error (-EOPNOTSUPP when there was
 * none) with the reasons, "; "-separated, in why. */
int lb_probe_choose(struct lb_provider **cands, size_t n, struct lb_provider **out,
		    char *why, size_t whylen);

/* ---- nftables provider (lb_nft.c) ---- */

/* Makes the nftables provider for cfg (its nftables context is created
 * inside cfg->netns, so every later command runs there). Nothing in the
 * kernel changes until the first svc_set. 0 or -errno. */
int lb_nft_new(const struct lb_config *cfg, struct lb_provider **out);

/* The table's name for prefix into buf: 0, -EINVAL, -ENAMETOOLONG. */
int lb_nft_table_name(const char *prefix, char *buf, size_t len);

/* The nft command buffers the provider runs, exposed for unit tests; each
 * is malloc'd, NUL-terminated, one command a line. */
/* Table, maps and base chains; idempotent (base chains are flushed and
 * refilled, the table never is). masq: the postrouting masquerade rule
 * (see lb_config.keep_source). */
char *lb_nft_skeleton_cmd(const char *table, bool masq);
/* svc_set's batch: old's map entries svc no longer has are deleted, the
 * service chain "svc_<id>" is created if missing, flushed and refilled,
 * svc's map entries are added. skeleton: the skeleton goes first. */
char *lb_nft_set_cmd(const char *table, const struct lb_service *old,
		     const struct lb_service *svc, bool skeleton, bool masq);
/* svc_del's batch: the service's map entries, then its chain. */
char *lb_nft_del_cmd(const char *table, const struct lb_service *svc);
/* Parses `nft -j list table ip <table>` output into *actual (services of
 * chains "svc_*" only); *skeleton_ok tells whether maps and base chains
 * are as lb_nft_skeleton_cmd(table, masq) makes them; *strays (malloc'd,
 * NULL when none) deletes the entries of our maps that lead to no service
 * chain (someone else's: the table is ours whole, and such an entry may
 * hold a VIP or port a service needs). 0 or -EINVAL (not nft JSON). */
int lb_nft_parse(const char *json, const char *table, bool masq, struct lb_state *actual,
		 bool *skeleton_ok, char **strays);

/* ---- IPVS provider (lb_ipvs.c) ---- */

/* fwmarks lbd gives IPVS services: LB_IPVS_MARK_BASE | 1..0xffff. */
#define LB_IPVS_MARK_BASE 0x53570000u
#define LB_IPVS_MARK_MASK 0xffff0000u
/* IPVS's idle timeout for established TCP connections, seconds: the
 * conntrack default (5 days) instead of IPVS's 900 s, which cut idle
 * connections after 15 minutes. */
#define LB_IPVS_TCP_TIMEOUT 432000u

/* Makes the IPVS provider for cfg: a generic netlink socket and an
 * nftables context inside cfg->netns. The IPVS family is resolved by probe
 * (and on first use); making the provider succeeds without ip_vs. */
int lb_ipvs_new(const struct lb_config *cfg, struct lb_provider **out);

/* Message builders, exposed for unit tests. family: the resolved IPVS
 * generic netlink family id. 0 with a new message in *out, or -ENOMEM. */
struct nl_msg;
/* IPVS_CMD_{NEW,SET,DEL}_SERVICE of the fwmark service mark (AF_INET,
 * scheduler rr, no flags, no persistence), or GET_SERVICE as a dump
 * (mark ignored). */
int lb_ipvs_msg_service(int family, uint8_t cmd, uint32_t mark, struct nl_msg **out);
/* IPVS_CMD_{NEW,SET,DEL}_DEST of backend ip:port (port 0 keeps the
 * client's port) in service mark: masquerading, weight 1; or GET_DEST as a
 * dump of mark's destinations (ip, port ignored). */
int lb_ipvs_msg_dest(int family, uint8_t cmd, uint32_t mark, struct in_addr ip, uint16_t port,
		     struct nl_msg **out);
/* IPVS_CMD_SET_CONFIG with the TCP established timeout only. */
int lb_ipvs_msg_timeout(int family, uint32_t tcp_seconds, struct nl_msg **out);
/* Parses one reply of a GET_SERVICE dump: 0 with *mark (0 for a service
 * that is not a fwmark one) and the scheduler's name, or -EINVAL. */
int lb_ipvs_parse_service(struct nl_msg *msg, uint32_t *mark, char *sched, size_t schedlen);
/* Parses one reply of a GET_DEST dump: 0 with address and port (host
 * order), or -EINVAL (also for non-IPv4). */
int lb_ipvs_parse_dest(struct nl_msg *msg, struct in_addr *ip, uint16_t *port);

/* The marks table's command buffers (see lb_nft_*_cmd): skeleton, and
 * the batch that points svc's VIP and ports at their marks (removing
 * old's entries svc no longer has). vip_mark and port_marks[i] (for
 * svc->ports[i]) are the fwmarks; old_* likewise for old. */
char *lb_ipvs_marks_skeleton_cmd(const char *table, bool masq);
char *lb_ipvs_marks_set_cmd(const char *table, const struct lb_service *old,
			    const struct lb_service *svc, uint32_t vip_mark,
			    const uint32_t *port_marks);
char *lb_ipvs_marks_del_cmd(const char *table, const struct lb_service *svc);

/* ---- fake provider (lb_fake.c) ---- */

/* An in-memory provider named name whose probe returns probe_err (0 =
 * usable, with why "fake <name> unusable" otherwise). It holds an
 * lb_state as "the kernel" and records one line per successful mutating
 * operation: "svc_set web 198.18.0.100 198.51.100.11,198.51.100.12
 * tcp:8080:80" (a "-" for no backends; ports omitted when none; "replace"
 * instead of "svc_set" when old was given) and "svc_del web". */
int lb_fake_new(const char *name, int probe_err, struct lb_provider **out);
/* The fake's "kernel", to preload (a restart) or inspect. */
struct lb_state *lb_fake_state(struct lb_provider *p);
size_t lb_fake_nops(struct lb_provider *p);
const char *lb_fake_op(struct lb_provider *p, size_t i);
/* Number of recorded lines starting with prefix. */
size_t lb_fake_count(struct lb_provider *p, const char *prefix);
void lb_fake_clear_ops(struct lb_provider *p);
/* The next operation whose line would start with prefix fails with err
 * (once); the dump fails with prefix "dump". */
void lb_fake_fail(struct lb_provider *p, const char *prefix, int err);
/* Whether the provider was freed: the fake counts frees of its kind in a
 * global so that lb_probe_choose's frees can be checked. */
unsigned lb_fake_frees(void);

/* ---- conntrack (lb_conntrack.c) ---- */

/* Deletes, in netns (NULL = the caller's), the conntrack entries of
 * connections balanced to backend: destination-NATed, reply source
 * backend and, unless vip is 0.0.0.0, original destination vip (0.0.0.0
 * also catches the mesh's connections to published ports). lbd calls it
 * once a removed backend's task has exited: the connections' next packets
 * then start over on a live backend, which resets them, instead of
 * hanging on the dead one. *deleted (may be NULL) counts the entries.
 * 0 or -errno. */
int lb_conntrack_flush(const char *netns, struct in_addr vip, struct in_addr backend,
		       unsigned *deleted);

#endif
