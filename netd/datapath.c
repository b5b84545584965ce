/* Data-path state sets and the reconcile (see datapath.h). Pure logic: every
 * kernel effect goes through the provider's ops table. */
#include "datapath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define DP_VNI_MAX 0xffffffu

void dp_state_init(struct dp_state *st)
{
	memset(st, 0, sizeof(*st));
}

void dp_state_clear(struct dp_state *st)
{
	if (!st)
		return;
	free(st->nets);
	free(st->eps);
	free(st->fdbs);
	free(st->neighs);
	free(st->gw_eps);
	dp_state_init(st);
}

/* Makes room for one more element of size sz in *arr. */
static void dp_grow(void **arr, size_t n, size_t *cap, size_t sz)
{
	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 8;
	*arr = xrealloc(*arr, *cap * sz);
}

static bool dp_vni_ok(uint32_t vni)
{
	return vni != 0 && vni <= DP_VNI_MAX;
}

static bool dp_mac_zero(const uint8_t mac[6])
{
	static const uint8_t zero[6];
	return memcmp(mac, zero, 6) == 0;
}

const struct dp_network *dp_state_find_network(const struct dp_state *st, uint32_t vni)
{
	for (size_t i = 0; i < st->n_nets; i++)
		if (st->nets[i].vni == vni)
			return &st->nets[i];
	return NULL;
}

static struct dp_local_ep *dp_find_ep(const struct dp_state *st, uint32_t vni,
				      const char *task_id)
{
	for (size_t i = 0; i < st->n_eps; i++)
		if (st->eps[i].vni == vni && strcmp(st->eps[i].task_id, task_id) == 0)
			return &st->eps[i];
	return NULL;
}

static struct dp_fdb *dp_find_fdb(const struct dp_state *st, uint32_t vni, const uint8_t mac[6])
{
	for (size_t i = 0; i < st->n_fdbs; i++)
		if (st->fdbs[i].vni == vni && memcmp(st->fdbs[i].mac, mac, 6) == 0)
			return &st->fdbs[i];
	return NULL;
}

static struct dp_neigh *dp_find_neigh(const struct dp_state *st, uint32_t vni, struct in_addr ip)
{
	for (size_t i = 0; i < st->n_neighs; i++)
		if (st->neighs[i].vni == vni && st->neighs[i].ip.s_addr == ip.s_addr)
			return &st->neighs[i];
	return NULL;
}

static uint32_t dp_mask(uint8_t prefixlen)
{
	return prefixlen ? htonl(~0u << (32 - prefixlen)) : 0;
}

int dp_state_set_gateway(struct dp_state *st, const struct dp_gateway *gw)
{
	uint32_t mask = dp_mask(gw->prefixlen);
	if (!memchr(gw->bridge, 0, sizeof(gw->bridge)) || gw->bridge[0] == '\0' ||
	    gw->prefixlen < 1 || gw->prefixlen > 30 ||
	    (gw->addr.s_addr & mask) != (gw->subnet.s_addr & mask) ||
	    (gw->addr.s_addr & ~mask) == 0)
		return -EINVAL;
	if (st->has_gw)
		return -EEXIST;
	st->gw = *gw;
	st->gw.subnet.s_addr &= mask;
	st->has_gw = true;
	return 0;
}

const struct dp_gw_ep *dp_state_find_gw_ep(const struct dp_state *st, const char *task_id)
{
	for (size_t i = 0; i < st->n_gw_eps; i++)
		if (strcmp(st->gw_eps[i].task_id, task_id) == 0)
			return &st->gw_eps[i];
	return NULL;
}

int dp_state_add_gw_ep(struct dp_state *st, const struct dp_gw_ep *ep)
{
	if (!memchr(ep->task_id, 0, sizeof(ep->task_id)) || ep->task_id[0] == '\0' ||
	    !memchr(ep->netns, 0, sizeof(ep->netns)) ||
	    !memchr(ep->ifname, 0, sizeof(ep->ifname)) || ep->ifname[0] == '\0' ||
	    !memchr(ep->host_ifname, 0, sizeof(ep->host_ifname)) ||
	    ep->ip.s_addr == 0 || dp_mac_zero(ep->mac))
		return -EINVAL;
	if (dp_state_find_gw_ep(st, ep->task_id))
		return -EEXIST;
	for (size_t i = 0; i < st->n_gw_eps; i++)
		if (st->gw_eps[i].ip.s_addr == ep->ip.s_addr)
			return -EEXIST;
	dp_grow((void **)&st->gw_eps, st->n_gw_eps, &st->cap_gw_eps, sizeof(*st->gw_eps));
	st->gw_eps[st->n_gw_eps++] = *ep;
	return 0;
}

int dp_state_add_network(struct dp_state *st, const struct dp_network *net)
{
	if (!dp_vni_ok(net->vni) || net->prefixlen > 30 || (net->encrypted && net->esp))
		return -EINVAL;
	if (dp_state_find_network(st, net->vni))
		return -EEXIST;
	dp_grow((void **)&st->nets, st->n_nets, &st->cap_nets, sizeof(*st->nets));
	st->nets[st->n_nets++] = *net;
	return 0;
}

int dp_state_add_local(struct dp_state *st, const struct dp_local_ep *ep)
{
	if (!dp_vni_ok(ep->vni) || !memchr(ep->task_id, 0, sizeof(ep->task_id)) ||
	    !memchr(ep->netns, 0, sizeof(ep->netns)) ||
	    !memchr(ep->ifname, 0, sizeof(ep->ifname)) || ep->ifname[0] == '\0')
		return -EINVAL;
	if (dp_find_ep(st, ep->vni, ep->task_id))
		return -EEXIST;
	dp_grow((void **)&st->eps, st->n_eps, &st->cap_eps, sizeof(*st->eps));
	st->eps[st->n_eps++] = *ep;
	return 0;
}

int dp_state_add_fdb(struct dp_state *st, const struct dp_fdb *f)
{
	if (!dp_vni_ok(f->vni) || dp_mac_zero(f->mac))
		return -EINVAL;
	if (dp_find_fdb(st, f->vni, f->mac))
		return -EEXIST;
	dp_grow((void **)&st->fdbs, st->n_fdbs, &st->cap_fdbs, sizeof(*st->fdbs));
	st->fdbs[st->n_fdbs++] = *f;
	return 0;
}

int dp_state_add_neigh(struct dp_state *st, const struct dp_neigh *n)
{
	if (!dp_vni_ok(n->vni) || dp_mac_zero(n->mac))
		return -EINVAL;
	if (dp_find_neigh(st, n->vni, n->ip))
		return -EEXIST;
	dp_grow((void **)&st->neighs, st->n_neighs, &st->cap_neighs, sizeof(*st->neighs));
	st->neighs[st->n_neighs++] = *n;
	return 0;
}

int dp_state_add_remote(struct dp_state *st, uint32_t vni, struct in_addr ip,
			const uint8_t mac[6], struct in_addr vtep)
{
	struct dp_fdb f = { .vni = vni, .vtep = vtep };
	struct dp_neigh n = { .vni = vni, .ip = ip };
	memcpy(f.mac, mac, 6);
	memcpy(n.mac, mac, 6);
	int r1 = dp_state_add_fdb(st, &f);
	if (r1 == -EINVAL)
		return r1;
	int r2 = dp_state_add_neigh(st, &n);
	if (r2 == -EINVAL)
		return r2;
	return (r1 == 0 || r2 == 0) ? 0 : -EEXIST;
}

void dp_provider_free(struct dp_provider *p)
{
	if (!p)
		return;
	if (p->ops && p->ops->free)
		p->ops->free(p->ctx);
	free(p);
}

/* ---- reconcile ---- */

/* One reconcile run: the provider, the counters and the first error. */
struct dp_run {
	struct dp_provider *p;
	struct dp_stats stats;
	int err;
	const struct dp_state *desired;
	const struct dp_state *actual;
};

/* Counts the result of one operation and keeps the first error. */
static void dp_count(struct dp_run *run, int r)
{
	if (r == 0) {
		run->stats.applied++;
		return;
	}
	run->stats.failed++;
	if (run->err == 0)
		run->err = r;
}

/* Same addressing and kind. A kind change remakes the network: plain <->
 * encrypted swaps vxlan0 for the sealer's TAP, and plain <-> esp changes
 * the MTU that every attached veth copied when it was made. */
static bool dp_net_same(const struct dp_network *a, const struct dp_network *b)
{
	return a->gateway.s_addr == b->gateway.s_addr && a->encrypted == b->encrypted &&
	       a->esp == b->esp && a->subnet.s_addr == b->subnet.s_addr &&
	       a->prefixlen == b->prefixlen;
}

/* The actual network of vni when it is kept as it is (complete, same
 * addressing and kind, desired); NULL when it is absent or will be remade. */
static const struct dp_network *dp_kept_net(const struct dp_run *run, uint32_t vni)
{
	const struct dp_network *a = dp_state_find_network(run->actual, vni);
	const struct dp_network *d = dp_state_find_network(run->desired, vni);
	if (!a || !d || !a->complete || !dp_net_same(a, d))
		return NULL;
	return a;
}

static bool dp_ep_same(const struct dp_local_ep *a, const struct dp_local_ep *d)
{
	return a->ip.s_addr == d->ip.s_addr && memcmp(a->mac, d->mac, 6) == 0 &&
	       strcmp(a->ifname, d->ifname) == 0;
}

/* Stale attachments of kept networks: not desired, or different. */
static void dp_remove_eps(struct dp_run *run)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->actual->n_eps; i++) {
		const struct dp_local_ep *a = &run->actual->eps[i];
		if (!dp_kept_net(run, a->vni))
			continue; /* goes with its network */
		const struct dp_local_ep *d = a->task_id[0] ?
			dp_find_ep(run->desired, a->vni, a->task_id) : NULL;
		if (d && dp_ep_same(a, d))
			continue;
		dp_count(run, ops->ep_detach(run->p->ctx, a));
	}
}

static void dp_remove_neighs(struct dp_run *run)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->actual->n_neighs; i++) {
		const struct dp_neigh *a = &run->actual->neighs[i];
		if (!dp_kept_net(run, a->vni))
			continue;
		const struct dp_neigh *d = dp_find_neigh(run->desired, a->vni, a->ip);
		if (d && memcmp(d->mac, a->mac, 6) == 0)
			continue;
		dp_count(run, ops->neigh_del(run->p->ctx, a));
	}
}

static void dp_remove_fdbs(struct dp_run *run)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->actual->n_fdbs; i++) {
		const struct dp_fdb *a = &run->actual->fdbs[i];
		if (!dp_kept_net(run, a->vni))
			continue;
		const struct dp_fdb *d = dp_find_fdb(run->desired, a->vni, a->mac);
		if (d && d->vtep.s_addr == a->vtep.s_addr)
			continue;
		dp_count(run, ops->fdb_del(run->p->ctx, a));
	}
}

/* Networks not desired, incomplete, or with other addressing or kind. */
static void dp_remove_nets(struct dp_run *run)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->actual->n_nets; i++) {
		const struct dp_network *a = &run->actual->nets[i];
		if (dp_kept_net(run, a->vni))
			continue;
		dp_count(run, ops->net_del(run->p->ctx, a->vni));
	}
}

/* ---- gateway ---- */

static bool dp_gw_same(const struct dp_gateway *a, const struct dp_gateway *b)
{
	return strcmp(a->bridge, b->bridge) == 0 && a->addr.s_addr == b->addr.s_addr &&
	       a->subnet.s_addr == b->subnet.s_addr && a->prefixlen == b->prefixlen;
}

/* Whether the actual gateway is kept as it is (complete, same, desired). */
static bool dp_gw_kept(const struct dp_run *run)
{
	return run->actual->has_gw && run->desired->has_gw && run->actual->gw.complete &&
	       dp_gw_same(&run->actual->gw, &run->desired->gw);
}

static bool dp_gw_ep_same(const struct dp_gw_ep *a, const struct dp_gw_ep *d)
{
	return a->ip.s_addr == d->ip.s_addr && memcmp(a->mac, d->mac, 6) == 0 &&
	       strcmp(a->ifname, d->ifname) == 0;
}

/* Stale legs: on a kept gateway, those not desired or different; without
 * any gateway, every leg (a leftover). On a gateway that goes, they go
 * with it. */
static void dp_remove_gw_eps(struct dp_run *run)
{
	const struct dp_ops *ops = run->p->ops;
	bool kept = dp_gw_kept(run);
	if (!kept && run->actual->has_gw)
		return;
	for (size_t i = 0; i < run->actual->n_gw_eps; i++) {
		const struct dp_gw_ep *a = &run->actual->gw_eps[i];
		const struct dp_gw_ep *d = kept && a->task_id[0] ?
			dp_state_find_gw_ep(run->desired, a->task_id) : NULL;
		if (d && dp_gw_ep_same(a, d))
			continue;
		dp_count(run, ops->gw_ep_detach(run->p->ctx, a));
	}
}

static void dp_remove_gw(struct dp_run *run)
{
	if (run->actual->has_gw && !dp_gw_kept(run))
		dp_count(run, run->p->ops->gw_del(run->p->ctx, &run->actual->gw));
}

/* Adds the gateway when missing, then its missing legs. */
static void dp_add_gw(struct dp_run *run)
{
	const struct dp_ops *ops = run->p->ops;
	if (!run->desired->has_gw)
		return;
	bool kept = dp_gw_kept(run);
	if (!kept) {
		int r = ops->gw_add(run->p->ctx, &run->desired->gw);
		dp_count(run, r);
		if (r < 0)
			return; /* its legs wait for the next run */
	}
	for (size_t i = 0; i < run->desired->n_gw_eps; i++) {
		const struct dp_gw_ep *d = &run->desired->gw_eps[i];
		if (kept) {
			const struct dp_gw_ep *a = dp_state_find_gw_ep(run->actual, d->task_id);
			if (a && dp_gw_ep_same(a, d))
				continue;
		}
		dp_count(run, ops->gw_ep_attach(run->p->ctx, &run->desired->gw, d));
	}
}

/* Adds missing networks; returns nothing, failures are counted and the
 * network's contents are then skipped by dp_net_ready. */
static void dp_add_nets(struct dp_run *run, bool *ready)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->desired->n_nets; i++) {
		const struct dp_network *d = &run->desired->nets[i];
		ready[i] = true;
		if (dp_kept_net(run, d->vni))
			continue;
		int r = ops->net_add(run->p->ctx, d);
		dp_count(run, r);
		ready[i] = r == 0;
	}
}

/* Whether network vni exists now (kept or just made). */
static bool dp_net_ready(const struct dp_run *run, const bool *ready, uint32_t vni)
{
	for (size_t i = 0; i < run->desired->n_nets; i++)
		if (run->desired->nets[i].vni == vni)
			return ready[i];
	return false;
}

/* An attachment on an encrypted network, kept, whose host end or (where
 * the network's MTU allows BIG TCP frames) sandbox end has a smaller
 * super-frame size than ep_attach sets now. */
static bool dp_ep_untuned(const struct dp_run *run, const struct dp_local_ep *a)
{
	const struct dp_network *an = dp_state_find_network(run->actual, a->vni);
	uint32_t ct = an ? dp_sealed_gso4(an->mtu) : 0;
	return (a->host_gso4 && a->host_gso4 < DP_SEALED_HOST_GSO) ||
	       (ct && a->ct_gso4 && a->ct_gso4 < ct);
}

static void dp_add_eps(struct dp_run *run, const bool *ready)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->desired->n_eps; i++) {
		const struct dp_local_ep *d = &run->desired->eps[i];
		if (!dp_net_ready(run, ready, d->vni))
			continue;
		const struct dp_network *net = dp_state_find_network(run->desired, d->vni);
		if (dp_kept_net(run, d->vni)) {
			const struct dp_local_ep *a = dp_find_ep(run->actual, d->vni, d->task_id);
			if (a && dp_ep_same(a, d)) {
				/* kept: only its super-frame sizes, if an earlier
				 * netd made it (0: the kernel does not say) */
				if (net->encrypted && dp_ep_untuned(run, a)) {
					struct dp_local_ep t = *a;
					snprintf(t.netns, sizeof(t.netns), "%s", d->netns);
					dp_count(run, ops->ep_tune(run->p->ctx, net, &t));
				}
				continue;
			}
		}
		dp_count(run, ops->ep_attach(run->p->ctx, net, d));
	}
}

static void dp_add_fdbs(struct dp_run *run, const bool *ready)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->desired->n_fdbs; i++) {
		const struct dp_fdb *d = &run->desired->fdbs[i];
		if (!dp_net_ready(run, ready, d->vni))
			continue;
		if (dp_kept_net(run, d->vni)) {
			const struct dp_fdb *a = dp_find_fdb(run->actual, d->vni, d->mac);
			if (a && a->vtep.s_addr == d->vtep.s_addr)
				continue;
		}
		dp_count(run, ops->fdb_add(run->p->ctx, d));
	}
}

static void dp_add_neighs(struct dp_run *run, const bool *ready)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->desired->n_neighs; i++) {
		const struct dp_neigh *d = &run->desired->neighs[i];
		if (!dp_net_ready(run, ready, d->vni))
			continue;
		if (dp_kept_net(run, d->vni)) {
			const struct dp_neigh *a = dp_find_neigh(run->actual, d->vni, d->ip);
			if (a && memcmp(a->mac, d->mac, 6) == 0)
				continue;
		}
		dp_count(run, ops->neigh_add(run->p->ctx, d));
	}
}

int dp_reconcile(struct dp_provider *p, const struct dp_state *desired,
		 struct dp_stats *stats)
{
	struct dp_state actual;
	struct dp_run run = { .p = p, .desired = desired, .actual = &actual };
	bool *ready = NULL;

	dp_state_init(&actual);
	int r = p->ops->dump(p->ctx, &actual);
	if (r < 0) {
		log_err("datapath, dump of actual state failed: %s", strerror(-r));
		run.err = r;
		goto out;
	}
	/* Removals first: they free names, addresses and MACs that the
	 * additions may reuse. */
	dp_remove_eps(&run);
	dp_remove_neighs(&run);
	dp_remove_fdbs(&run);
	dp_remove_nets(&run);
	dp_remove_gw_eps(&run);
	dp_remove_gw(&run);

	ready = xcalloc(desired->n_nets ? desired->n_nets : 1, sizeof(*ready));
	dp_add_nets(&run, ready);
	dp_add_eps(&run, ready);
	dp_add_fdbs(&run, ready);
	dp_add_neighs(&run, ready);
	dp_add_gw(&run);

	if (run.stats.applied || run.stats.failed)
		log_info("datapath, reconcile via %s: %u applied, %u failed",
			 p->ops->name, run.stats.applied, run.stats.failed);
out:
	free(ready);
	dp_state_clear(&actual);
	if (stats)
		*stats = run.stats;
	return run.err;
}
