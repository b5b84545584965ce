/* The kernel ESP provider's real ops (esp.h): XFRM states and policies
 * through libnl-xfrm on a NETLINK_XFRM socket, the marking and dropping
 * rules through libnftables (table ip swarm_esp), in the network
 * namespace of the caller. */
#include "esp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/xfrm/sa.h>
#include <netlink/xfrm/selector.h>
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

static int k_err_cb(struct sockaddr_nl *from, struct nlmsgerr *e, void *arg)
{
	(void)from;
	*(int *)arg = e->error;
	return NL_STOP;
}

static int k_ack_cb(struct nl_msg *msg, void *arg)
{
	(void)msg;
	*(int *)arg = 0;
	return NL_STOP;
}

/* Sends a built request (r: the build's result, 0 or -errno) and waits
 * for the kernel's answer: 0 or the kernel's -errno itself (libnl's own
 * ack wait folds errnos it does not know, as ENOSYS, into one code). */
static int k_request(struct esp_kernel *k, int r, struct nl_msg *msg)
{
	if (r < 0)
		return r;
	int answer = 1;
	r = nl_send_auto(k->sk, msg);
	xm_msg_free(msg);
	if (r < 0)
		return nl_errno(r);
	struct nl_cb *sc = nl_socket_get_cb(k->sk);   /* a reference */
	struct nl_cb *cb = sc ? nl_cb_clone(sc) : NULL;
	nl_cb_put(sc);
	if (!cb)
		return -ENOMEM;
	nl_cb_err(cb, NL_CB_CUSTOM, k_err_cb, &answer);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, k_ack_cb, &answer);
	while (answer == 1 && (r = nl_recvmsgs(k->sk, cb)) >= 0)
		;
	nl_cb_put(cb);
	return answer == 1 ? nl_errno(r) : answer;
}

/* Adds or deletes sa's state, or its policy. */
static int k_apply(void *ctx, const struct xm_sa *sa, int del, bool policy)
{
	struct nl_msg *msg;
	int r = policy ? xm_policy_request(sa, del, &msg) : xm_sa_request(sa, del, &msg);
	r = k_request(ctx, r, msg);
	if (r < 0)
		log_debug("esp, %s the %s %08x -> %08x (spi %08x): %s", del ? "deleting" : "adding",
			  policy ? "policy" : "state", sa->src, sa->dst, sa->spi, strerror(-r));
	return r;
}

static int k_sa(void *ctx, const struct xm_sa *sa, int del)
{
	return k_apply(ctx, sa, del, false);
}

static int k_policy(void *ctx, const struct xm_sa *sa, int del)
{
	return k_apply(ctx, sa, del, true);
}

/* Ours: a state with our reqid (*in: it has no mark, an inbound one), a
 * policy with our mark. */
static bool sa_ours(struct xfrmnl_sa *sa, bool *in)
{
	unsigned m = 0, v = 0;
	*in = !(xfrmnl_sa_get_mark(sa, &m, &v) == 0 && v == XM_MARK);   /* mask first */
	return xfrmnl_sa_get_reqid(sa) == XM_REQID;
}

static bool sp_ours(struct xfrmnl_sp *sp)
{
	unsigned m = 0, v = 0;
	return xfrmnl_sp_get_sel(sp) && xfrmnl_sp_get_mark(sp, &m, &v) == 0 && v == XM_MARK &&
	       m == XM_MARK_MASK;
}

/* Walks the kernel's policies, then its states. */
static int k_walk(struct esp_kernel *k, void (*on_sp)(struct nl_object *, void *),
		  void (*on_sa)(struct nl_object *, void *), void *arg)
{
	struct nl_cache *c = NULL;
	int r = xfrmnl_sp_alloc_cache(k->sk, &c);
	if (r < 0)
		return nl_errno(r);
	nl_cache_foreach(c, on_sp, arg);
	nl_cache_free(c);
	c = NULL;
	if ((r = xfrmnl_sa_alloc_cache(k->sk, &c)) < 0)
		return nl_errno(r);
	nl_cache_foreach(c, on_sa, arg);
	nl_cache_free(c);   /* held every state's key: libnl frees it unwiped */
	return 0;
}

struct flush_walk {
	struct esp_kernel *k;
	int err;
	unsigned n;
};

/* Sends one built delete (b: libnl's build result) of the flush. */
static void flush_del(struct flush_walk *f, int b, struct nl_msg *msg)
{
	int r = k_request(f->k, b < 0 ? nl_errno(b) : msg ? 0 : -ENOMEM, msg);
	if (r < 0 && r != -ENOENT && !f->err)
		f->err = r;
	f->n += r == 0;
}

static void flush_sa(struct nl_object *obj, void *arg)
{
	struct xfrmnl_sa *sa = (struct xfrmnl_sa *)obj;
	struct nl_msg *msg = NULL;
	bool in;
	if (!sa_ours(sa, &in))
		return;
	int b = xfrmnl_sa_build_delete_request(sa, 0, &msg);
	flush_del(arg, b, msg);
}

static void flush_sp(struct nl_object *obj, void *arg)
{
	struct xfrmnl_sp *sp = (struct xfrmnl_sp *)obj;
	struct nl_msg *msg = NULL;
	if (!sp_ours(sp))
		return;
	int b = xfrmnl_sp_build_delete_request(sp, 0, &msg);
	flush_del(arg, b, msg);
}

/* An IPv4 nl_addr in host order (0 when absent). */
static uint32_t k_addr(struct nl_addr *a)
{
	uint32_t be = 0;
	if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == sizeof(be))
		memcpy(&be, nl_addr_get_binary_addr(a), sizeof(be));
	return ntohl(be);
}

struct list_walk {
	struct xm_sa *v[2];          /* states, policies */
	size_t n[2];
};

static void list_push(struct list_walk *l, int which, const struct xm_sa *x)
{
	l->v[which] = xrealloc(l->v[which], (l->n[which] + 1) * sizeof(*x));   /* no keys in these */
	l->v[which][l->n[which]++] = *x;
}

static void list_sa(struct nl_object *obj, void *arg)
{
	struct xfrmnl_sa *sa = (struct xfrmnl_sa *)obj;
	struct xm_sa x = { 0 };
	if (!sa_ours(sa, &x.in))
		return;
	x.src = k_addr(xfrmnl_sa_get_saddr(sa));
	x.dst = k_addr(xfrmnl_sa_get_daddr(sa));
	x.spi = (uint32_t)xfrmnl_sa_get_spi(sa);
	list_push(arg, 0, &x);
}

static void list_sp(struct nl_object *obj, void *arg)
{
	struct xfrmnl_sp *sp = (struct xfrmnl_sp *)obj;
	if (!sp_ours(sp))
		return;
	struct xfrmnl_sel *sel = xfrmnl_sp_get_sel(sp);
	struct xm_sa x = {
		.src = k_addr(xfrmnl_sel_get_saddr(sel)),
		.dst = xfrmnl_sel_get_prefixlen_d(sel) ? k_addr(xfrmnl_sel_get_daddr(sel)) : 0,
		.dport = (uint16_t)xfrmnl_sel_get_dport(sel),
	};
	list_push(arg, 1, &x);
}

static int k_list(void *ctx, struct xm_sa **sas, size_t *nsas, struct xm_sa **pols, size_t *npols)
{
	struct list_walk l = { { NULL, NULL }, { 0, 0 } };
	int r = k_walk(ctx, list_sp, list_sa, &l);
	if (r < 0) {
		free(l.v[0]);
		free(l.v[1]);
		return r;
	}
	*sas = l.v[0];
	*nsas = l.n[0];
	*pols = l.v[1];
	*npols = l.n[1];
	if (l.n[0] || l.n[1])
		log_info("esp, adopted %zu states and %zu policies of an earlier run", l.n[0], l.n[1]);
	return 0;
}

/* Ours (sa_ours, sp_ours), read from a dump and deleted one by one; then
 * the table. */
static int k_flush(void *ctx)
{
	struct esp_kernel *k = ctx;
	struct flush_walk f = { k, 0, 0 };
	int r = k_walk(k, flush_sp, flush_sa, &f);
	if (r < 0)
		return r;
	if (f.n)
		log_info("esp, removed %u of our states and policies (kernel ESP is not used)", f.n);
	/* the table: its input rule would drop cleartext VXLAN of VNIs that
	 * may now be plain or sealed networks */
	nft_run_cmd_from_buffer(k->nft, "add table ip " ESP_NFT_TABLE "\n"
					"delete table ip " ESP_NFT_TABLE "\n");
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
	.list = k_list,
	.rules = k_rules,
};
