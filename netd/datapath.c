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

int dp_state_add_network(struct dp_state *st, const struct dp_network *net)
{
	if (!dp_vni_ok(net->vni) || net->prefixlen > 30)
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

static bool dp_net_same(const struct dp_network *a, const struct dp_network *b)
{
	return a->gateway.s_addr == b->gateway.s_addr &&
	       a->subnet.s_addr == b->subnet.s_addr && a->prefixlen == b->prefixlen;
}

/* The actual network of vni when it is kept as it is (complete, same
 * addressing, desired); NULL when it is absent or will be remade. */
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

/* Networks not desired, incomplete, or with other addressing. */
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

static void dp_add_eps(struct dp_run *run, const bool *ready)
{
	const struct dp_ops *ops = run->p->ops;
	for (size_t i = 0; i < run->desired->n_eps; i++) {
		const struct dp_local_ep *d = &run->desired->eps[i];
		if (!dp_net_ready(run, ready, d->vni))
			continue;
		if (dp_kept_net(run, d->vni)) {
			const struct dp_local_ep *a = dp_find_ep(run->actual, d->vni, d->task_id);
			if (a && dp_ep_same(a, d))
				continue;
		}
		const struct dp_network *net = dp_state_find_network(run->desired, d->vni);
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

	ready = xcalloc(desired->n_nets ? desired->n_nets : 1, sizeof(*ready));
	dp_add_nets(&run, ready);
	dp_add_eps(&run, ready);
	dp_add_fdbs(&run, ready);
	dp_add_neighs(&run, ready);

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
