/* The kernel ESP provider's real ops (esp.h): XFRM states and policies
 * through libnl-xfrm on a NETLINK_XFRM socket, the marking and dropping
 * rules through libnftables (table ip swarm_esp), in the network
 * namespace of the caller. */
#include "esp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/xfrm/sa.h>
#include <netlink/xfrm/sp.h>
#include <nftables/libnftables.h>

#include "log.h"
#include "util.h"

#define ESP_NFT_TABLE "swarm_esp"

struct esp_kernel {
	struct nl_sock *sk;
	struct nft_ctx *nft;
};

/* -errno for a libnl error (libnl has its own codes). */
static int nl_errno(int e)
{
	switch (e < 0 ? -e : e) {
	case 0: return 0;
	case NLE_EXIST: return -EEXIST;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM: return -EPERM;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
	case NLE_INVAL: return -EINVAL;
	default: return -EIO;
	}
}

void *esp_kernel_ctx_new(void)
{
	struct esp_kernel *k = xcalloc(1, sizeof(*k));
	k->sk = nl_socket_alloc();
	if (!k->sk || nl_connect(k->sk, NETLINK_XFRM) < 0) {
		esp_kernel_ctx_free(k);
		return NULL;
	}
	k->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!k->nft || nft_ctx_buffer_output(k->nft) != 0 || nft_ctx_buffer_error(k->nft) != 0) {
		esp_kernel_ctx_free(k);
		return NULL;
	}
	return k;
}

void esp_kernel_ctx_free(void *ctx)
{
	struct esp_kernel *k = ctx;
	if (!k)
		return;
	if (k->sk)
		nl_socket_free(k->sk);
	if (k->nft)
		nft_ctx_free(k->nft);
	free(k);
}

static int k_sa(void *ctx, const struct xm_sa *sa, int del)
{
	struct esp_kernel *k = ctx;
	struct xfrmnl_sa *o = xm_sa_obj(sa);
	if (!o)
		return -EINVAL;
	int r = del ? xfrmnl_sa_delete(k->sk, o, 0) : xfrmnl_sa_add(k->sk, o, NLM_F_CREATE | NLM_F_EXCL);
	xfrmnl_sa_put(o);
	if (r < 0)
		log_debug("esp, %s the state %08x -> %08x spi %08x: %s", del ? "deleting" : "adding",
			  sa->src, sa->dst, sa->spi, nl_geterror(r));
	return nl_errno(r);
}

static int k_policy(void *ctx, const struct xm_sa *sa, int del)
{
	struct esp_kernel *k = ctx;
	struct xfrmnl_sp *o = xm_policy_obj(sa);
	if (!o)
		return -ENOMEM;
	int r = del ? xfrmnl_sp_delete(k->sk, o, 0) : xfrmnl_sp_add(k->sk, o, NLM_F_CREATE | NLM_F_EXCL);
	xfrmnl_sp_put(o);
	if (r < 0)
		log_debug("esp, %s the policy %08x -> %08x: %s", del ? "deleting" : "adding", sa->src,
			  sa->dst, nl_geterror(r));
	return nl_errno(r);
}

struct flush_walk {
	struct esp_kernel *k;
	int err;
	unsigned n;
};

static void flush_sa(struct nl_object *obj, void *arg)
{
	struct flush_walk *f = arg;
	struct xfrmnl_sa *sa = (struct xfrmnl_sa *)obj;
	if (xfrmnl_sa_get_reqid(sa) != XM_REQID)
		return;
	int r = nl_errno(xfrmnl_sa_delete(f->k->sk, sa, 0));
	if (r < 0 && r != -ENOENT && !f->err)
		f->err = r;
	f->n += r == 0;
}

static void flush_sp(struct nl_object *obj, void *arg)
{
	struct flush_walk *f = arg;
	struct xfrmnl_sp *sp = (struct xfrmnl_sp *)obj;
	unsigned v = 0, m = 0;
	if (xfrmnl_sp_get_mark(sp, &m, &v) != 0 || v != XM_MARK || m != XM_MARK_MASK)   /* mask first */
		return;
	int r = nl_errno(xfrmnl_sp_delete(f->k->sk, sp, 0));
	if (r < 0 && r != -ENOENT && !f->err)
		f->err = r;
	f->n += r == 0;
}

/* Ours: states with our reqid (inbound ones have no mark), policies with
 * our mark. Read from a dump, deleted one by one. */
static int k_flush(void *ctx)
{
	struct esp_kernel *k = ctx;
	struct flush_walk f = { k, 0, 0 };
	struct nl_cache *c = NULL;
	int r = xfrmnl_sp_alloc_cache(k->sk, &c);
	if (r < 0)
		return nl_errno(r);
	nl_cache_foreach(c, flush_sp, &f);
	nl_cache_free(c);
	c = NULL;
	r = xfrmnl_sa_alloc_cache(k->sk, &c);
	if (r < 0)
		return nl_errno(r);
	nl_cache_foreach(c, flush_sa, &f);
	nl_cache_free(c);
	if (f.n)
		log_info("esp, removed %u of our states and policies left by an earlier run", f.n);
	return f.err;
}

static int k_rules(void *ctx, uint16_t dport, const uint32_t *vnis, size_t n)
{
	struct esp_kernel *k = ctx;
	char *cmds = xm_nft_rules(ESP_NFT_TABLE, dport, vnis, n);
	if (!cmds)
		return -ENOMEM;
	int r = nft_run_cmd_from_buffer(k->nft, cmds) == 0 ? 0 : -EIO;
	if (r < 0)
		log_err("esp, nftables refused the rules: %s", nft_ctx_get_error_buffer(k->nft));
	free(cmds);
	return r;
}

const struct esp_ops esp_kernel_ops = {
	.sa = k_sa,
	.policy = k_policy,
	.flush = k_flush,
	.rules = k_rules,
};
