/* The allocator: subnets, gateways and VNIs for networks, VIPs for services,
 * addresses for tasks and nodes, published ports. See allocator.h.
 *
 * Bookkeeping: one record per allocated network (its subnet and a bitmap of
 * its addresses), one bitmap of VNIs and one bitmap of ports per protocol.
 * Who holds what is not recorded here: the objects are the record (a VIP in
 * svc->vips, an address in t->networks), which is why restart is just the
 * restore_* calls replaying them and releases take the objects.
 *
 * Every call that takes several things notes each one it took and gives
 * them all back when a later step fails, so an error never leaves a partial
 * allocation behind. */
#include "manager/allocator.h"
#include "manager/ipam.h"
#include "log.h"
#include "pb.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define VNI_MIN 4096u
#define VNI_MAX 16777215u
#define PORT_DYN_MIN 30000u
#define PORT_DYN_MAX 32767u
/* Subnets handed to networks: a /30 is the smallest with a usable address
 * past network, gateway and broadcast; a /8 bitmap is 2 MiB, the largest we
 * accept. */
#define SUBNET_LEN_MIN 8u
#define SUBNET_LEN_MAX 30u

enum { PROTO_TCP, PROTO_UDP, PROTO_SCTP, PROTO_COUNT };
static const char *const proto_names[PROTO_COUNT] = { "tcp", "udp", "sctp" };

struct anet {
	char *id;               /* network id (key in allocator.nets too) */
	struct ipam_prefix subnet;
	uint32_t gateway;
	uint32_t vni;           /* 0 = none recorded */
	struct ipam_bitmap addrs; /* bit i = subnet.addr + i taken */
};

struct allocator {
	struct ipam_prefix *pools;      /* where automatic subnets come from */
	size_t n_pools;
	unsigned mask_len;              /* size of automatic subnets */
	struct ipam_idmap nets;         /* network id -> struct anet * */
	struct ipam_bitmap vnis;        /* bit i = VNI 4096 + i taken */
	struct ipam_bitmap ports[PROTO_COUNT]; /* bit p = port p published */
};

/* One thing taken during a call, to give back if the call fails. */
struct undo {
	struct anet *net;       /* an address in net (port undo: NULL) */
	uint32_t idx;           /* address index, or port */
	int proto;              /* port protocol when net is NULL */
};

struct undo_log {
	struct undo *v;
	size_t n, cap;
};

static void undo_add(struct undo_log *u, struct anet *net, uint32_t idx, int proto)
{
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 8;
		u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
	}
	u->v[u->n].net = net;
	u->v[u->n].idx = idx;
	u->v[u->n].proto = proto;
	u->n++;
}

static void undo_run(struct allocator *a, struct undo_log *u)
{
	for (size_t i = u->n; i-- > 0;) {
		if (u->v[i].net) {
			/* Put the serial cursor back too, so a failed call
			 * leaves no trace at all. */
			ipam_bitmap_clear(&u->v[i].net->addrs, u->v[i].idx);
			u->v[i].net->addrs.cursor = u->v[i].idx;
		} else
			ipam_bitmap_clear(&a->ports[u->v[i].proto], u->v[i].idx);
	}
	u->n = 0;
}

/* Appends to a message already in err. */
static void err_append(char *err, size_t errlen, const char *what)
{
	size_t len;

	if (!errlen)
		return;
	len = strlen(err);
	snprintf(err + len, errlen - len, "%s", what);
}

/* ---- lifecycle ---- */

struct allocator *allocator_new(const char *const *pools, size_t n_pools, unsigned mask_len)
{
	static const char *const default_pool[] = { "10.0.0.0/8" };
	struct allocator *a = xcalloc(1, sizeof(*a));

	if (n_pools == 0) {
		pools = default_pool;
		n_pools = 1;
	}
	a->mask_len = mask_len ? mask_len : 24;
	if (a->mask_len < SUBNET_LEN_MIN || a->mask_len > SUBNET_LEN_MAX) {
		log_err("allocator, pool mask length /%u outside /%u-/%u", a->mask_len,
			SUBNET_LEN_MIN, SUBNET_LEN_MAX);
		goto fail;
	}
	a->pools = xcalloc(n_pools, sizeof(*a->pools));
	for (size_t i = 0; i < n_pools; i++) {
		if (ipam_prefix_parse(pools[i], &a->pools[i]) < 0) {
			log_err("allocator, invalid address pool '%s'", pools[i]);
			goto fail;
		}
		if (a->pools[i].len > a->mask_len) {
			log_err("allocator, address pool %s is smaller than the subnet size /%u",
				pools[i], a->mask_len);
			goto fail;
		}
	}
	a->n_pools = n_pools;
	if (ipam_bitmap_init(&a->vnis, VNI_MAX - VNI_MIN + 1) < 0)
		goto fail;
	for (int p = 0; p < PROTO_COUNT; p++) {
		if (ipam_bitmap_init(&a->ports[p], 65536) < 0)
			goto fail;
		ipam_bitmap_set(&a->ports[p], 0);       /* port 0 is never published */
	}
	return a;
fail:
	allocator_free(a);
	return NULL;
}

static void anet_free(struct anet *an)
{
	if (!an)
		return;
	ipam_bitmap_destroy(&an->addrs);
	free(an->id);
	free(an);
}

void allocator_free(struct allocator *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nets.cap; i++)
		if (a->nets.slots[i].key)
			anet_free(a->nets.slots[i].val);
	ipam_idmap_destroy(&a->nets);
	ipam_bitmap_destroy(&a->vnis);
	for (int p = 0; p < PROTO_COUNT; p++)
		ipam_bitmap_destroy(&a->ports[p]);
	free(a->pools);
	free(a);
}

/* ---- helpers ---- */

/* The network that overlaps p, or NULL. */
static struct anet *find_overlap(const struct allocator *a, const struct ipam_prefix *p)
{
	for (size_t i = 0; i < a->nets.cap; i++) {
		struct anet *an = a->nets.slots[i].val;

		if (a->nets.slots[i].key && ipam_prefix_overlap(&an->subnet, p))
			return an;
	}
	return NULL;
}

/* Carves the first free subnet of mask_len out of the pools, in order.
 * A candidate that overlaps a network skips past the end of that network,
 * so the walk costs O(networks) steps per network, not per candidate. */
static int carve_subnet(const struct allocator *a, struct ipam_prefix *out)
{
	uint64_t step = ipam_prefix_size(a->mask_len);

	for (size_t i = 0; i < a->n_pools; i++) {
		const struct ipam_prefix *pool = &a->pools[i];
		uint64_t cand = pool->addr;
		uint64_t end = (uint64_t)pool->addr + ipam_prefix_size(pool->len);

		while (cand + step <= end) {
			struct ipam_prefix p = { (uint32_t)cand, a->mask_len };
			struct anet *hit = find_overlap(a, &p);
			uint64_t hit_end;

			if (!hit) {
				*out = p;
				return 0;
			}
			hit_end = (uint64_t)hit->subnet.addr + ipam_prefix_size(hit->subnet.len);
			cand = hit_end > cand + step ? hit_end : cand + step;
			/* Realign: a small network may end mid-candidate. */
			cand = (cand + step - 1) / step * step;
		}
	}
	return -ENOSPC;
}

/* A new record with network, broadcast and gateway addresses taken. */
static struct anet *anet_new(const char *id, const struct ipam_prefix *subnet, uint32_t gateway)
{
	struct anet *an = xcalloc(1, sizeof(*an));
	uint32_t size = (uint32_t)ipam_prefix_size(subnet->len);

	if (ipam_bitmap_init(&an->addrs, size) < 0) {
		free(an);
		return NULL;
	}
	an->id = xstrdup(id);
	an->subnet = *subnet;
	an->gateway = gateway;
	ipam_bitmap_set(&an->addrs, 0);
	ipam_bitmap_set(&an->addrs, size - 1);
	ipam_bitmap_set(&an->addrs, gateway - subnet->addr);
	return an;
}

static int proto_index(const char *proto)
{
	if (!proto || !*proto)
		return PROTO_TCP;
	for (int p = 0; p < PROTO_COUNT; p++)
		if (strcmp(proto, proto_names[p]) == 0)
			return p;
	return -1;
}

static bool port_is_ingress(const Swarm__PortConfig *p)
{
	return !p->mode[0] || strcmp(p->mode, "ingress") == 0;
}

/* Index of "A.B.C.D/len" inside an's subnet when it is a host address that
 * can be handed out (not network, broadcast or gateway); -1 otherwise. */
static int64_t addr_index(const struct anet *an, const char *cidr)
{
	uint32_t addr, idx;
	unsigned len;

	if (ipam_cidr_parse(cidr, &addr, &len) < 0 || !ipam_prefix_contains(&an->subnet, addr))
		return -1;
	idx = addr - an->subnet.addr;
	if (idx == 0 || idx == an->addrs.size - 1 || addr == an->gateway)
		return -1;
	return idx;
}

static void release_addr(struct allocator *a, const char *network_id, const char *cidr)
{
	struct anet *an = ipam_idmap_get(&a->nets, network_id);
	int64_t idx;

	if (!an || (idx = addr_index(an, cidr)) < 0)
		return;
	ipam_bitmap_clear(&an->addrs, (uint32_t)idx);
}

/* Restart: marks an address held; a duplicate is logged, not fatal (two
 * objects already share it in the store, nothing we can undo here). */
static void restore_addr(struct allocator *a, const char *network_id, const char *cidr,
			 const char *what)
{
	struct anet *an = ipam_idmap_get(&a->nets, network_id);
	int64_t idx;

	if (!an || !cidr[0])
		return;
	if ((idx = addr_index(an, cidr)) < 0) {
		log_warn("allocator, %s address %s is not a host address of network %s",
			 what, cidr, network_id);
		return;
	}
	if (!ipam_bitmap_set(&an->addrs, (uint32_t)idx))
		log_warn("allocator, %s address %s on network %s is held twice", what, cidr, network_id);
}

/* Takes the next address on an (noted in u); "A.B.C.D/len" into out. */
static int take_addr(struct anet *an, struct undo_log *u, uint32_t *addr_out,
		     char *out, size_t outlen)
{
	int64_t idx = ipam_bitmap_alloc_next(&an->addrs);

	if (idx < 0)
		return -ENOSPC;
	undo_add(u, an, (uint32_t)idx, 0);
	*addr_out = an->subnet.addr + (uint32_t)idx;
	ipam_cidr_format(*addr_out, an->subnet.len, out, outlen);
	return 0;
}

static void net_full_msg(const Swarm__Network *net, const struct anet *an, char *err, size_t errlen)
{
	char sub[32];

	ipam_cidr_format(an->subnet.addr, an->subnet.len, sub, sizeof(sub));
	snprintf(err, errlen, "no IP address left on network %s (subnet %s is full)",
		 net->spec && net->spec->name[0] ? net->spec->name : net->id, sub);
}

static struct anet *net_lookup(struct allocator *a, const Swarm__Network *net, char *err, size_t errlen)
{
	struct anet *an = ipam_idmap_get(&a->nets, net->id);

	if (!an)
		snprintf(err, errlen, "network %s has no allocated subnet",
			 net->spec && net->spec->name[0] ? net->spec->name : net->id);
	return an;
}

/* A filled attachment for addr on net. */
static Swarm__NetworkAttachment *attachment_new(const Swarm__Network *net, const char *addr,
						uint32_t ip)
{
	Swarm__NetworkAttachment *na = xmalloc(sizeof(*na));
	char mac[24];

	swarm__network_attachment__init(na);
	ipam_mac_format(ip, mac, sizeof(mac));
	pb_set_str(&na->network_id, net->id);
	pb_set_str(&na->network_name, net->spec ? net->spec->name : "");
	pb_set_str(&na->addr, addr);
	pb_set_str(&na->mac, mac);
	na->vni = net->vni;
	pb_set_str(&na->subnet, net->subnet);
	pb_set_str(&na->gateway, net->gateway);
	return na;
}

/* ---- networks ---- */

int allocator_restore_network(struct allocator *a, const Swarm__Network *n)
{
	struct ipam_prefix p;
	struct anet *an, *other;
	uint32_t gw;

	if (!n->subnet[0])
		return 0;       /* never allocated: allocator_network will do it */
	if (ipam_idmap_get(&a->nets, n->id))
		return 0;
	if (ipam_prefix_parse(n->subnet, &p) < 0 || p.len < SUBNET_LEN_MIN || p.len > SUBNET_LEN_MAX) {
		log_err("allocator, network %s has an invalid subnet '%s'", n->id, n->subnet);
		return -EINVAL;
	}
	if (n->gateway[0]) {
		if (ipam_addr_parse(n->gateway, &gw) < 0 || !ipam_prefix_contains(&p, gw)) {
			log_err("allocator, network %s has an invalid gateway '%s'", n->id, n->gateway);
			return -EINVAL;
		}
	} else {
		gw = p.addr + 1;
	}
	if ((other = find_overlap(a, &p))) {
		log_err("allocator, network %s subnet %s overlaps network %s", n->id, n->subnet, other->id);
		return -EEXIST;
	}
	if (n->vni) {
		if (n->vni < VNI_MIN || n->vni > VNI_MAX) {
			log_err("allocator, network %s has VNI %u outside %u-%u", n->id, n->vni,
				VNI_MIN, VNI_MAX);
			return -EINVAL;
		}
		if (!ipam_bitmap_set(&a->vnis, n->vni - VNI_MIN)) {
			log_err("allocator, network %s has VNI %u held by another network", n->id, n->vni);
			return -EEXIST;
		}
	}
	if (!(an = anet_new(n->id, &p, gw))) {
		if (n->vni)
			ipam_bitmap_clear(&a->vnis, n->vni - VNI_MIN);
		return -ENOMEM;
	}
	an->vni = n->vni;
	ipam_idmap_put(&a->nets, n->id, an);
	return 0;
}

int allocator_network(struct allocator *a, Swarm__Network *n, char *err, size_t errlen)
{
	const Swarm__NetworkSpec *spec = n->spec;
	struct ipam_prefix p;
	struct anet *an, *other;
	char buf[32];
	uint32_t gw;
	int64_t vni;

	if (errlen)
		err[0] = '\0';
	if (!n->id[0]) {
		snprintf(err, errlen, "network has no id");
		return -EINVAL;
	}
	if (ipam_idmap_get(&a->nets, n->id))
		return 0;       /* already allocated */

	if (spec && spec->subnet[0]) {
		uint32_t addr;
		unsigned len;

		if (ipam_cidr_parse(spec->subnet, &addr, &len) < 0) {
			snprintf(err, errlen, "invalid subnet '%s'", spec->subnet);
			return -EINVAL;
		}
		if (addr & ~ipam_mask(len)) {
			ipam_cidr_format(addr & ipam_mask(len), len, buf, sizeof(buf));
			snprintf(err, errlen, "invalid subnet %s: it should be %s", spec->subnet, buf);
			return -EINVAL;
		}
		if (len < SUBNET_LEN_MIN || len > SUBNET_LEN_MAX) {
			snprintf(err, errlen, "invalid subnet %s: prefix length must be between /%u and /%u",
				 spec->subnet, SUBNET_LEN_MIN, SUBNET_LEN_MAX);
			return -EINVAL;
		}
		p.addr = addr;
		p.len = len;
		if ((other = find_overlap(a, &p))) {
			snprintf(err, errlen, "subnet %s overlaps with an existing network", spec->subnet);
			return -EEXIST;
		}
	} else if (carve_subnet(a, &p) < 0) {
		snprintf(err, errlen, "no available subnet of size /%u left in the address pool%s",
			 a->mask_len, a->n_pools > 1 ? "s" : "");
		return -ENOSPC;
	}

	ipam_cidr_format(p.addr, p.len, buf, sizeof(buf));
	if (spec && spec->gateway[0]) {
		if (ipam_addr_parse(spec->gateway, &gw) < 0) {
			snprintf(err, errlen, "invalid gateway '%s'", spec->gateway);
			return -EINVAL;
		}
		if (!ipam_prefix_contains(&p, gw) || gw == p.addr ||
		    gw == p.addr + (uint32_t)(ipam_prefix_size(p.len) - 1)) {
			snprintf(err, errlen, "gateway %s is not a host address of subnet %s",
				 spec->gateway, buf);
			return -EINVAL;
		}
	} else {
		gw = p.addr + 1;
	}

	if ((vni = ipam_bitmap_alloc_first(&a->vnis)) < 0) {
		snprintf(err, errlen, "no VXLAN ID left (%u-%u all in use)", VNI_MIN, VNI_MAX);
		return -ENOSPC;
	}
	if (!(an = anet_new(n->id, &p, gw))) {
		ipam_bitmap_clear(&a->vnis, (uint32_t)vni);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	an->vni = (uint32_t)vni + VNI_MIN;
	ipam_idmap_put(&a->nets, n->id, an);

	pb_set_str(&n->subnet, buf);
	ipam_addr_format(gw, buf, sizeof(buf));
	pb_set_str(&n->gateway, buf);
	n->vni = an->vni;
	return 0;
}

void allocator_release_network(struct allocator *a, const Swarm__Network *n)
{
	struct anet *an = ipam_idmap_del(&a->nets, n->id);

	if (!an)
		return;
	if (an->vni)
		ipam_bitmap_clear(&a->vnis, an->vni - VNI_MIN);
	anet_free(an);
}

/* ---- services ---- */

void allocator_restore_service(struct allocator *a, const Swarm__Service *svc)
{
	for (size_t i = 0; i < svc->n_vips; i++)
		restore_addr(a, svc->vips[i]->network_id, svc->vips[i]->addr, "VIP");
	for (size_t i = 0; i < svc->n_ports; i++) {
		const Swarm__PortConfig *p = svc->ports[i];
		int proto = proto_index(p->protocol);

		if (!port_is_ingress(p) || p->published == 0 || p->published > 65535 || proto < 0)
			continue;
		if (!ipam_bitmap_set(&a->ports[proto], p->published))
			log_warn("allocator, published port %u/%s of service %s is held twice",
				 p->published, proto_names[proto], svc->id);
	}
}

void allocator_release_service(struct allocator *a, const Swarm__Service *svc)
{
	for (size_t i = 0; i < svc->n_vips; i++)
		release_addr(a, svc->vips[i]->network_id, svc->vips[i]->addr);
	for (size_t i = 0; i < svc->n_ports; i++) {
		const Swarm__PortConfig *p = svc->ports[i];
		int proto = proto_index(p->protocol);

		if (port_is_ingress(p) && p->published && p->published <= 65535 && proto >= 0)
			ipam_bitmap_clear(&a->ports[proto], p->published);
	}
}

/* A VIP the service should have after this call. */
struct vip_plan {
	const Swarm__Network *net;
	ssize_t keep;           /* index in svc->vips to keep, or -1: new */
	char addr[32];          /* new address */
};

static bool plan_has_net(const struct vip_plan *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].net->id, id) == 0)
			return true;
	return false;
}

int allocator_service(struct allocator *a, Swarm__Service *svc,
		      const Swarm__Network *const *nets, size_t n_nets,
		      const Swarm__Network *ingress, char *err, size_t errlen)
{
	const Swarm__ServiceSpec *spec = svc->spec;
	struct undo_log u = { 0 };
	struct vip_plan *plan = NULL;
	size_t n_plan = 0;
	bool *vip_kept = NULL, *port_kept = NULL;
	Swarm__PortConfig **ports = NULL;
	size_t n_spec_ports = spec ? spec->n_ports : 0;
	bool dnsrr, has_ingress_port = false;
	int ret = 0;

	if (errlen)
		err[0] = '\0';
	if (!spec) {
		snprintf(err, errlen, "service %s has no spec", svc->id);
		return -EINVAL;
	}
	dnsrr = strcmp(spec->endpoint_mode, "dnsrr") == 0;

	/* Validate the ports before taking anything. */
	for (size_t i = 0; i < n_spec_ports; i++) {
		const Swarm__PortConfig *p = spec->ports[i];
		int proto = proto_index(p->protocol);

		if (proto < 0) {
			snprintf(err, errlen, "invalid protocol '%s' for port %u", p->protocol, p->target);
			return -EINVAL;
		}
		if (!port_is_ingress(p) && strcmp(p->mode, "host") != 0) {
			snprintf(err, errlen, "invalid publish mode '%s'", p->mode);
			return -EINVAL;
		}
		if (p->published > 65535 || p->target == 0 || p->target > 65535) {
			snprintf(err, errlen, "invalid port %u:%u/%s", p->published, p->target,
				 proto_names[proto]);
			return -EINVAL;
		}
		if (!port_is_ingress(p))
			continue;
		has_ingress_port = true;
		for (size_t j = 0; j < i && p->published; j++) {
			const Swarm__PortConfig *q = spec->ports[j];

			if (port_is_ingress(q) && q->published == p->published &&
			    proto_index(q->protocol) == proto) {
				snprintf(err, errlen, "published port %u/%s is given twice",
					 p->published, proto_names[proto]);
				return -EINVAL;
			}
		}
	}
	if (dnsrr && has_ingress_port) {
		/* swarmkit's controlapi says the same. */
		snprintf(err, errlen, "port published with ingress mode can't be used with dnsrr mode");
		return -EINVAL;
	}

	/* VIPs: ingress first (as Docker lists them), then one per attached
	 * network; none with dnsrr. */
	plan = xcalloc(n_nets + 1, sizeof(*plan));
	vip_kept = xcalloc(svc->n_vips + 1, sizeof(*vip_kept));
	for (size_t i = 0; !dnsrr && i <= n_nets; i++) {
		const Swarm__Network *net = i == 0 ? (has_ingress_port ? ingress : NULL) : nets[i - 1];
		struct vip_plan *v;
		struct anet *an;
		uint32_t ip;

		if (!net || plan_has_net(plan, n_plan, net->id))
			continue;
		if (!(an = net_lookup(a, net, err, errlen))) {
			ret = -EINVAL;
			goto fail;
		}
		v = &plan[n_plan++];
		v->net = net;
		v->keep = -1;
		for (size_t j = 0; j < svc->n_vips; j++) {
			if (!vip_kept[j] && strcmp(svc->vips[j]->network_id, net->id) == 0 &&
			    addr_index(an, svc->vips[j]->addr) >= 0) {
				v->keep = (ssize_t)j;
				vip_kept[j] = true;
				break;
			}
		}
		if (v->keep < 0 && take_addr(an, &u, &ip, v->addr, sizeof(v->addr)) < 0) {
			net_full_msg(net, an, err, errlen);
			err_append(err, errlen, " for the service's VIP");
			ret = -ENOSPC;
			goto fail;
		}
	}

	/* Ports: explicit ones first (they may reuse what this service holds),
	 * then the automatic ones, which keep their earlier number when the
	 * service had one for the same target. */
	port_kept = xcalloc(svc->n_ports + 1, sizeof(*port_kept));
	ports = xcalloc(n_spec_ports + 1, sizeof(*ports));
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n_spec_ports; i++) {
			const Swarm__PortConfig *p = spec->ports[i];
			int proto = proto_index(p->protocol);
			uint32_t published = p->published;
			bool found = false;

			if (!port_is_ingress(p) || (pass == 0) != (published != 0))
				continue;
			for (size_t j = 0; j < svc->n_ports && !found; j++) {
				const Swarm__PortConfig *q = svc->ports[j];

				if (port_kept[j] || !port_is_ingress(q) || q->published == 0 ||
				    proto_index(q->protocol) != proto)
					continue;
				if (pass == 0 ? q->published == published :
				    (q->target == p->target && q->published >= PORT_DYN_MIN &&
				     q->published <= PORT_DYN_MAX)) {
					port_kept[j] = found = true;
					published = q->published;
				}
			}
			if (!found && pass == 0) {
				if (!ipam_bitmap_set(&a->ports[proto], published)) {
					snprintf(err, errlen, "published port %u/%s is already in use",
						 published, proto_names[proto]);
					ret = -EADDRINUSE;
					goto fail;
				}
				undo_add(&u, NULL, published, proto);
			} else if (!found) {
				int64_t port = ipam_bitmap_find_free(&a->ports[proto], PORT_DYN_MIN,
								     PORT_DYN_MAX + 1);

				if (port < 0) {
					snprintf(err, errlen, "no free port left in %u-%u for %u/%s",
						 PORT_DYN_MIN, PORT_DYN_MAX, p->target, proto_names[proto]);
					ret = -ENOSPC;
					goto fail;
				}
				ipam_bitmap_set(&a->ports[proto], (uint32_t)port);
				undo_add(&u, NULL, (uint32_t)port, proto);
				published = (uint32_t)port;
			}
			ports[i] = xmalloc(sizeof(*ports[i]));
			swarm__port_config__init(ports[i]);
			pb_set_str(&ports[i]->protocol, proto_names[proto]);
			ports[i]->target = p->target;
			ports[i]->published = published;
			pb_set_str(&ports[i]->mode, "ingress");
		}
	}
	/* Host-mode ports are bound per node, not reserved here. */
	for (size_t i = 0; i < n_spec_ports; i++) {
		if (ports[i])
			continue;
		ports[i] = xmalloc(sizeof(*ports[i]));
		swarm__port_config__init(ports[i]);
		pb_set_str(&ports[i]->protocol, proto_names[proto_index(spec->ports[i]->protocol)]);
		ports[i]->target = spec->ports[i]->target;
		ports[i]->published = spec->ports[i]->published;
		pb_set_str(&ports[i]->mode, "host");
	}

	/* Success: commit. Free what the new spec no longer needs, keep or
	 * add the rest. */
	{
		Swarm__VirtualIP **vips = xcalloc(n_plan + 1, sizeof(*vips));

		for (size_t i = 0; i < n_plan; i++) {
			if (plan[i].keep >= 0) {
				vips[i] = svc->vips[plan[i].keep];
				svc->vips[plan[i].keep] = NULL;
				continue;
			}
			vips[i] = xmalloc(sizeof(*vips[i]));
			swarm__virtual_ip__init(vips[i]);
			pb_set_str(&vips[i]->network_id, plan[i].net->id);
			pb_set_str(&vips[i]->addr, plan[i].addr);
		}
		for (size_t j = 0; j < svc->n_vips; j++) {
			if (!svc->vips[j])
				continue;
			release_addr(a, svc->vips[j]->network_id, svc->vips[j]->addr);
			pb_free(svc->vips[j]);
		}
		free(svc->vips);
		svc->vips = vips;
		svc->n_vips = n_plan;
	}
	for (size_t j = 0; j < svc->n_ports; j++) {
		const Swarm__PortConfig *q = svc->ports[j];
		int proto = proto_index(q->protocol);

		if (!port_kept[j] && port_is_ingress(q) && q->published && q->published <= 65535 &&
		    proto >= 0)
			ipam_bitmap_clear(&a->ports[proto], q->published);
		pb_free(svc->ports[j]);
	}
	free(svc->ports);
	svc->ports = ports;
	svc->n_ports = n_spec_ports;
	ports = NULL;
	goto out;

fail:
	undo_run(a, &u);
	for (size_t i = 0; ports && i < n_spec_ports; i++)
		pb_free(ports[i]);
out:
	free(ports);
	free(port_kept);
	free(vip_kept);
	free(plan);
	free(u.v);
	return ret;
}

/* ---- tasks ---- */

void allocator_restore_task(struct allocator *a, const Swarm__Task *t)
{
	for (size_t i = 0; i < t->n_networks; i++)
		restore_addr(a, t->networks[i]->network_id, t->networks[i]->addr, "task");
}

void allocator_release_task(struct allocator *a, const Swarm__Task *t)
{
	for (size_t i = 0; i < t->n_networks; i++)
		release_addr(a, t->networks[i]->network_id, t->networks[i]->addr);
}

int allocator_task(struct allocator *a, Swarm__Task *t,
		   const Swarm__Network *const *nets, size_t n_nets, char *err, size_t errlen)
{
	struct undo_log u = { 0 };
	Swarm__NetworkAttachment **att = xcalloc(n_nets + 1, sizeof(*att));
	size_t n_att = 0;
	int ret = 0;

	if (errlen)
		err[0] = '\0';
	for (size_t i = 0; i < n_nets; i++) {
		const Swarm__Network *net = nets[i];
		struct anet *an;
		char addr[32];
		uint32_t ip;
		bool dup = false;

		for (size_t j = 0; j < n_att; j++)
			dup = dup || strcmp(att[j]->network_id, net->id) == 0;
		if (dup)
			continue;
		if (!(an = net_lookup(a, net, err, errlen))) {
			ret = -EINVAL;
			goto fail;
		}
		/* An attachment the task already holds on this network stays
		 * (re-allocation is idempotent); it moves over at commit. */
		for (size_t j = 0; j < t->n_networks; j++) {
			Swarm__NetworkAttachment *old = t->networks[j];

			if (old && strcmp(old->network_id, net->id) == 0 && addr_index(an, old->addr) >= 0) {
				att[n_att++] = old;
				dup = true;
				break;
			}
		}
		if (dup)
			continue;
		if (take_addr(an, &u, &ip, addr, sizeof(addr)) < 0) {
			net_full_msg(net, an, err, errlen);
			ret = -ENOSPC;
			goto fail;
		}
		att[n_att++] = attachment_new(net, addr, ip);
	}

	/* Commit: old attachments not carried over are released. */
	for (size_t j = 0; j < t->n_networks; j++) {
		bool kept = false;

		for (size_t k = 0; k < n_att && !kept; k++)
			kept = att[k] == t->networks[j];
		if (kept)
			continue;
		release_addr(a, t->networks[j]->network_id, t->networks[j]->addr);
		pb_free(t->networks[j]);
	}
	free(t->networks);
	t->networks = att;
	t->n_networks = n_att;
	free(u.v);
	return 0;

fail:
	undo_run(a, &u);
	for (size_t k = 0; k < n_att; k++) {
		bool old = false;

		for (size_t j = 0; j < t->n_networks && !old; j++)
			old = att[k] == t->networks[j];
		if (!old)
			pb_free(att[k]);
	}
	free(att);
	free(u.v);
	return ret;
}

/* ---- nodes ---- */

void allocator_restore_node(struct allocator *a, const Swarm__Node *n)
{
	for (size_t i = 0; i < n->n_attachments; i++)
		restore_addr(a, n->attachments[i]->network_id, n->attachments[i]->addr, "node");
}

void allocator_release_node(struct allocator *a, const Swarm__Node *n)
{
	for (size_t i = 0; i < n->n_attachments; i++)
		release_addr(a, n->attachments[i]->network_id, n->attachments[i]->addr);
}

int allocator_node_attach(struct allocator *a, Swarm__Node *n, const Swarm__Network *net,
			  char *err, size_t errlen)
{
	struct undo_log u = { 0 };
	struct anet *an;
	char addr[32];
	uint32_t ip;

	if (errlen)
		err[0] = '\0';
	for (size_t i = 0; i < n->n_attachments; i++)
		if (strcmp(n->attachments[i]->network_id, net->id) == 0)
			return 0;
	if (!(an = net_lookup(a, net, err, errlen)))
		return -EINVAL;
	if (take_addr(an, &u, &ip, addr, sizeof(addr)) < 0) {
		char who[160];

		net_full_msg(net, an, err, errlen);
		snprintf(who, sizeof(who), " for node %s", n->hostname[0] ? n->hostname : n->id);
		err_append(err, errlen, who);
		return -ENOSPC;
	}
	free(u.v);
	PB_PTRV_ADD(n, attachments, attachment_new(net, addr, ip));
	return 1;
}

void allocator_node_detach(struct allocator *a, Swarm__Node *n, const char *network_id)
{
	size_t i, j = 0;

	for (i = 0; i < n->n_attachments; i++) {
		Swarm__NetworkAttachment *na = n->attachments[i];

		if (strcmp(na->network_id, network_id) == 0) {
			release_addr(a, na->network_id, na->addr);
			pb_free(na);
			continue;
		}
		n->attachments[j++] = na;
	}
	n->n_attachments = j;
}
