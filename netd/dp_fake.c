/* In-memory data-path provider for unit tests (see datapath.h). Its "kernel"
 * is a dp_state; every successful mutating operation is recorded as one
 * text line so that tests can assert exactly what a reconcile did. It
 * behaves like the kernel where tests depend on it: adding what exists
 * fails with -EEXIST, so a reconcile that repeats itself is caught. */
#include "datapath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The fake's state. */
struct dp_fake {
	struct dp_state kernel;   /* what "exists" */
	char **ops;               /* recorded lines, malloc'd */
	size_t n_ops, cap_ops;
	char fail_prefix[32];     /* next op starting with this fails */
	int fail_err;             /* with this error (0 = none armed) */
};

static void fake_mac(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* Consumes an armed failure matching line. */
static int fake_should_fail(struct dp_fake *f, const char *line)
{
	if (!f->fail_err || strncmp(line, f->fail_prefix, strlen(f->fail_prefix)) != 0)
		return 0;
	int err = f->fail_err;
	f->fail_err = 0;
	return err;
}

static void fake_record(struct dp_fake *f, const char *line)
{
	if (f->n_ops == f->cap_ops) {
		f->cap_ops = f->cap_ops ? f->cap_ops * 2 : 16;
		f->ops = xrealloc(f->ops, f->cap_ops * sizeof(*f->ops));
	}
	f->ops[f->n_ops++] = xstrdup(line);
}

/* Copies the array part arr[0..n) out to a fresh malloc'd array. */
static void *fake_dup(const void *arr, size_t n, size_t sz, size_t *cap)
{
	*cap = n;
	if (!n)
		return NULL;
	void *p = xmalloc(n * sz);
	memcpy(p, arr, n * sz);
	return p;
}

static int fake_dump(void *ctx, struct dp_state *out)
{
	struct dp_fake *f = ctx;
	int err = fake_should_fail(f, "dump");
	if (err)
		return err;
	const struct dp_state *k = &f->kernel;
	out->nets = fake_dup(k->nets, k->n_nets, sizeof(*k->nets), &out->cap_nets);
	out->n_nets = k->n_nets;
	out->eps = fake_dup(k->eps, k->n_eps, sizeof(*k->eps), &out->cap_eps);
	out->n_eps = k->n_eps;
	out->fdbs = fake_dup(k->fdbs, k->n_fdbs, sizeof(*k->fdbs), &out->cap_fdbs);
	out->n_fdbs = k->n_fdbs;
	out->neighs = fake_dup(k->neighs, k->n_neighs, sizeof(*k->neighs), &out->cap_neighs);
	out->n_neighs = k->n_neighs;
	for (size_t i = 0; i < out->n_eps; i++)
		out->eps[i].netns[0] = '\0'; /* the kernel does not tell */
	out->has_gw = k->has_gw;
	out->gw = k->gw;
	out->gw_eps = fake_dup(k->gw_eps, k->n_gw_eps, sizeof(*k->gw_eps), &out->cap_gw_eps);
	out->n_gw_eps = k->n_gw_eps;
	for (size_t i = 0; i < out->n_gw_eps; i++)
		out->gw_eps[i].netns[0] = '\0';
	return 0;
}

/* Removes element i of an array of n elements of size sz. */
static void fake_remove_at(void *arr, size_t *n, size_t i, size_t sz)
{
	char *base = arr;
	memmove(base + i * sz, base + (i + 1) * sz, (*n - i - 1) * sz);
	(*n)--;
}

/* Removes every attachment, FDB and neighbour entry of vni. */
static void fake_drop_contents(struct dp_state *k, uint32_t vni)
{
	for (size_t i = k->n_eps; i-- > 0;)
		if (k->eps[i].vni == vni)
			fake_remove_at(k->eps, &k->n_eps, i, sizeof(*k->eps));
	for (size_t i = k->n_fdbs; i-- > 0;)
		if (k->fdbs[i].vni == vni)
			fake_remove_at(k->fdbs, &k->n_fdbs, i, sizeof(*k->fdbs));
	for (size_t i = k->n_neighs; i-- > 0;)
		if (k->neighs[i].vni == vni)
			fake_remove_at(k->neighs, &k->n_neighs, i, sizeof(*k->neighs));
}

static int fake_net_add(void *ctx, const struct dp_network *net)
{
	struct dp_fake *f = ctx;
	char line[64];
	snprintf(line, sizeof(line), "net_add %u%s", net->vni,
		 net->encrypted ? " encrypted" : net->esp ? " esp" : "");
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_network n = *net;
	n.complete = true;
	/* As dp_netlink over a 1500-byte underlay. */
	n.mtu = 1500 - (net->encrypted ? DP_SEALED_OVERHEAD :
			net->esp ? DP_ESP_OVERHEAD : DP_VXLAN_OVERHEAD);
	if (dp_state_find_network(&f->kernel, net->vni))
		return -EEXIST;
	err = dp_state_add_network(&f->kernel, &n);
	if (err)
		return err;
	fake_record(f, line);
	return 0;
}

static int fake_net_del(void *ctx, uint32_t vni)
{
	struct dp_fake *f = ctx;
	char line[64];
	snprintf(line, sizeof(line), "net_del %u", vni);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	for (size_t i = 0; i < k->n_nets; i++) {
		if (k->nets[i].vni != vni)
			continue;
		fake_remove_at(k->nets, &k->n_nets, i, sizeof(*k->nets));
		fake_drop_contents(k, vni);
		break;
	}
	fake_record(f, line);
	return 0;
}

static int fake_ep_attach(void *ctx, const struct dp_network *net, const struct dp_local_ep *ep)
{
	struct dp_fake *f = ctx;
	char line[160], ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
	snprintf(line, sizeof(line), "ep_attach %u %s %s %s", net->vni, ep->task_id, ep->ifname, ip);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	const struct dp_network *kn = dp_state_find_network(&f->kernel, net->vni);
	if (!kn)
		return -ENOENT;
	struct dp_local_ep e = *ep;
	snprintf(e.host_ifname, sizeof(e.host_ifname), "ve%08x", ntohl(ep->ip.s_addr));
	e.host_gso4 = net->encrypted ? DP_SEALED_HOST_GSO : 65536;
	uint32_t ct = net->encrypted ? dp_sealed_gso4(kn->mtu) : 0;
	e.ct_gso4 = ct ? ct : 65536;
	err = dp_state_add_local(&f->kernel, &e);
	if (err)
		return err;
	fake_record(f, line);
	return 0;
}

static int fake_ep_detach(void *ctx, const struct dp_local_ep *ep)
{
	struct dp_fake *f = ctx;
	char line[160], ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
	snprintf(line, sizeof(line), "ep_detach %u %s %s", ep->vni, ep->task_id, ip);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	for (size_t i = 0; i < k->n_eps; i++)
		if (k->eps[i].vni == ep->vni && strcmp(k->eps[i].task_id, ep->task_id) == 0 &&
		    k->eps[i].ip.s_addr == ep->ip.s_addr) {
			fake_remove_at(k->eps, &k->n_eps, i, sizeof(*k->eps));
			break;
		}
	fake_record(f, line);
	return 0;
}

static int fake_ep_tune(void *ctx, const struct dp_network *net, const struct dp_local_ep *ep)
{
	struct dp_fake *f = ctx;
	char line[160];
	snprintf(line, sizeof(line), "ep_tune %u %s %s", net->vni, ep->task_id, ep->host_ifname);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	for (size_t i = 0; i < k->n_eps; i++)
		if (k->eps[i].vni == ep->vni && strcmp(k->eps[i].host_ifname, ep->host_ifname) == 0) {
			k->eps[i].host_gso4 = DP_SEALED_HOST_GSO;
			const struct dp_network *kn = dp_state_find_network(k, ep->vni);
			uint32_t ct = kn ? dp_sealed_gso4(kn->mtu) : 0;
			if (ct)
				k->eps[i].ct_gso4 = ct;
		}
	fake_record(f, line);
	return 0;
}

static int fake_fdb_op(struct dp_fake *f, const struct dp_fdb *fd, bool add)
{
	char line[96], mac[18], vtep[INET_ADDRSTRLEN];
	fake_mac(fd->mac, mac);
	inet_ntop(AF_INET, &fd->vtep, vtep, sizeof(vtep));
	snprintf(line, sizeof(line), "fdb_%s %u %s %s", add ? "add" : "del", fd->vni, mac, vtep);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	if (add) {
		if (!dp_state_find_network(k, fd->vni))
			return -ENOENT;
		err = dp_state_add_fdb(k, fd);
		if (err)
			return err;
	} else {
		for (size_t i = 0; i < k->n_fdbs; i++)
			if (k->fdbs[i].vni == fd->vni && memcmp(k->fdbs[i].mac, fd->mac, 6) == 0) {
				fake_remove_at(k->fdbs, &k->n_fdbs, i, sizeof(*k->fdbs));
				break;
			}
	}
	fake_record(f, line);
	return 0;
}

static int fake_fdb_add(void *ctx, const struct dp_fdb *fd) { return fake_fdb_op(ctx, fd, true); }
static int fake_fdb_del(void *ctx, const struct dp_fdb *fd) { return fake_fdb_op(ctx, fd, false); }

static int fake_neigh_op(struct dp_fake *f, const struct dp_neigh *n, bool add)
{
	char line[96], mac[18], ip[INET_ADDRSTRLEN];
	fake_mac(n->mac, mac);
	inet_ntop(AF_INET, &n->ip, ip, sizeof(ip));
	if (add)
		snprintf(line, sizeof(line), "neigh_add %u %s %s", n->vni, ip, mac);
	else
		snprintf(line, sizeof(line), "neigh_del %u %s", n->vni, ip);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	if (add) {
		if (!dp_state_find_network(k, n->vni))
			return -ENOENT;
		err = dp_state_add_neigh(k, n);
		if (err)
			return err;
	} else {
		for (size_t i = 0; i < k->n_neighs; i++)
			if (k->neighs[i].vni == n->vni && k->neighs[i].ip.s_addr == n->ip.s_addr) {
				fake_remove_at(k->neighs, &k->n_neighs, i, sizeof(*k->neighs));
				break;
			}
	}
	fake_record(f, line);
	return 0;
}

static int fake_neigh_add(void *ctx, const struct dp_neigh *n) { return fake_neigh_op(ctx, n, true); }
static int fake_neigh_del(void *ctx, const struct dp_neigh *n) { return fake_neigh_op(ctx, n, false); }

static int fake_gw_add(void *ctx, const struct dp_gateway *gw)
{
	struct dp_fake *f = ctx;
	char line[96], ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &gw->addr, ip, sizeof(ip));
	snprintf(line, sizeof(line), "gw_add %s %s/%u", gw->bridge, ip, gw->prefixlen);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	if (k->has_gw)
		return -EEXIST; /* the reconcile deletes a gateway before remaking it */
	struct dp_gateway g = *gw;
	g.complete = true;
	err = dp_state_set_gateway(k, &g);
	if (err)
		return err;
	fake_record(f, line);
	return 0;
}

static int fake_gw_del(void *ctx, const struct dp_gateway *gw)
{
	struct dp_fake *f = ctx;
	char line[64];
	snprintf(line, sizeof(line), "gw_del %s", gw->bridge);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	k->has_gw = false;
	memset(&k->gw, 0, sizeof(k->gw));
	k->n_gw_eps = 0; /* the legs go with the bridge */
	fake_record(f, line);
	return 0;
}

static int fake_gw_ep_attach(void *ctx, const struct dp_gateway *gw, const struct dp_gw_ep *ep)
{
	struct dp_fake *f = ctx;
	char line[160], ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
	snprintf(line, sizeof(line), "gw_ep_attach %s %s %s", ep->task_id, ep->ifname, ip);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	if (!f->kernel.has_gw || strcmp(f->kernel.gw.bridge, gw->bridge) != 0)
		return -ENOENT;
	struct dp_gw_ep e = *ep;
	snprintf(e.host_ifname, sizeof(e.host_ifname), "g%08x", ntohl(ep->ip.s_addr));
	err = dp_state_add_gw_ep(&f->kernel, &e);
	if (err)
		return err;
	fake_record(f, line);
	return 0;
}

static int fake_gw_ep_detach(void *ctx, const struct dp_gw_ep *ep)
{
	struct dp_fake *f = ctx;
	char line[160], ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
	snprintf(line, sizeof(line), "gw_ep_detach %s %s", ep->task_id, ip);
	int err = fake_should_fail(f, line);
	if (err)
		return err;
	struct dp_state *k = &f->kernel;
	for (size_t i = 0; i < k->n_gw_eps; i++)
		if (strcmp(k->gw_eps[i].task_id, ep->task_id) == 0 &&
		    k->gw_eps[i].ip.s_addr == ep->ip.s_addr) {
			fake_remove_at(k->gw_eps, &k->n_gw_eps, i, sizeof(*k->gw_eps));
			break;
		}
	fake_record(f, line);
	return 0;
}

static void fake_clear_lines(struct dp_fake *f)
{
	for (size_t i = 0; i < f->n_ops; i++)
		free(f->ops[i]);
	f->n_ops = 0;
}

static void fake_free(void *ctx)
{
	struct dp_fake *f = ctx;
	if (!f)
		return;
	fake_clear_lines(f);
	free(f->ops);
	dp_state_clear(&f->kernel);
	free(f);
}

static const struct dp_ops dp_fake_ops = {
	.name = "fake",
	.dump = fake_dump,
	.net_add = fake_net_add,
	.net_del = fake_net_del,
	.ep_attach = fake_ep_attach,
	.ep_detach = fake_ep_detach,
	.ep_tune = fake_ep_tune,
	.fdb_add = fake_fdb_add,
	.fdb_del = fake_fdb_del,
	.neigh_add = fake_neigh_add,
	.neigh_del = fake_neigh_del,
	.gw_add = fake_gw_add,
	.gw_del = fake_gw_del,
	.gw_ep_attach = fake_gw_ep_attach,
	.gw_ep_detach = fake_gw_ep_detach,
	.free = fake_free,
};

int dp_fake_new(struct dp_provider **out)
{
	struct dp_fake *f = xcalloc(1, sizeof(*f));
	dp_state_init(&f->kernel);
	struct dp_provider *p = xcalloc(1, sizeof(*p));
	p->ops = &dp_fake_ops;
	p->ctx = f;
	*out = p;
	return 0;
}

struct dp_state *dp_fake_state(struct dp_provider *p)
{
	return &((struct dp_fake *)p->ctx)->kernel;
}

size_t dp_fake_nops(struct dp_provider *p)
{
	return ((struct dp_fake *)p->ctx)->n_ops;
}

const char *dp_fake_op(struct dp_provider *p, size_t i)
{
	struct dp_fake *f = p->ctx;
	return i < f->n_ops ? f->ops[i] : NULL;
}

size_t dp_fake_count(struct dp_provider *p, const char *prefix)
{
	struct dp_fake *f = p->ctx;
	size_t n = 0;
	for (size_t i = 0; i < f->n_ops; i++)
		if (strncmp(f->ops[i], prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

void dp_fake_clear_ops(struct dp_provider *p)
{
	fake_clear_lines(p->ctx);
}

void dp_fake_fail(struct dp_provider *p, const char *prefix, int err)
{
	struct dp_fake *f = p->ctx;
	snprintf(f->fail_prefix, sizeof(f->fail_prefix), "%s", prefix);
	f->fail_err = err;
}
