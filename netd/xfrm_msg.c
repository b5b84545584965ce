/* The kernel ESP data path's messages (xfrm_msg.h). */
#include "xfrm_msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <netlink/addr.h>
#include <netlink/msg.h>
#include <netlink/xfrm/lifetime.h>
#include <netlink/xfrm/sa.h>
#include <netlink/xfrm/selector.h>
#include <netlink/xfrm/sp.h>
#include <netlink/xfrm/template.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An IPv4 host address (host order) as a libnl address, /prefix. */
static struct nl_addr *xm_addr(uint32_t a, unsigned prefix)
{
	uint32_t be = htonl(a);
	struct nl_addr *n = nl_addr_build(AF_INET, &be, sizeof(be));
	if (n)
		nl_addr_set_prefixlen(n, (int)prefix);
	return n;
}

/* The VXLAN packets from src to dst (dst 0: to anywhere): UDP to dport. */
static struct xfrmnl_sel *xm_selector(const struct xm_sa *sa)
{
	unsigned dlen = sa->dst ? 32 : 0;
	struct xfrmnl_sel *s = xfrmnl_sel_alloc();
	struct nl_addr *src = xm_addr(sa->src, 32), *dst = xm_addr(sa->dst, dlen);
	if (!s || !src || !dst) {
		if (s)
			xfrmnl_sel_put(s);
		s = NULL;
		goto out;
	}
	xfrmnl_sel_set_family(s, AF_INET);
	xfrmnl_sel_set_saddr(s, src);
	xfrmnl_sel_set_daddr(s, dst);
	xfrmnl_sel_set_prefixlen_s(s, 32);
	xfrmnl_sel_set_prefixlen_d(s, dlen);
	xfrmnl_sel_set_proto(s, IPPROTO_UDP);
	xfrmnl_sel_set_dport(s, sa->dport);
	xfrmnl_sel_set_dportmask(s, 0xffff);
out:
	nl_addr_put(src);
	nl_addr_put(dst);
	return s;
}

/* No limits: without them the kernel would expire the object at once. */
static struct xfrmnl_ltime_cfg *xm_forever(void)
{
	struct xfrmnl_ltime_cfg *l = xfrmnl_ltime_cfg_alloc();
	if (l) {
		xfrmnl_ltime_cfg_set_soft_bytelimit(l, XFRM_INF);
		xfrmnl_ltime_cfg_set_hard_bytelimit(l, XFRM_INF);
		xfrmnl_ltime_cfg_set_soft_packetlimit(l, XFRM_INF);
		xfrmnl_ltime_cfg_set_hard_packetlimit(l, XFRM_INF);
	}
	return l;
}

/* What a state and a policy for sa both hold. */
struct xm_parts {
	struct xfrmnl_sel *sel;
	struct xfrmnl_ltime_cfg *lft;
	struct nl_addr *src, *dst;
};

static bool xm_parts_get(const struct xm_sa *sa, struct xm_parts *p)
{
	p->sel = xm_selector(sa);
	p->lft = xm_forever();
	p->src = xm_addr(sa->src, 32);
	p->dst = xm_addr(sa->dst, 32);
	return p->sel && p->lft && p->src && p->dst;
}

static void xm_parts_put(struct xm_parts *p)
{
	if (p->sel)
		xfrmnl_sel_put(p->sel);
	if (p->lft)
		xfrmnl_ltime_cfg_put(p->lft);
	nl_addr_put(p->src);
	nl_addr_put(p->dst);
}

/* The libnl-xfrm state for sa; NULL on a bad key length or no memory.
 * Beware: libnl frees the copy of the key it holds without wiping it. */
static struct xfrmnl_sa *xm_sa_obj(const struct xm_sa *sa)
{
	if (sa->keylen != 20 && sa->keylen != 28 && sa->keylen != 36)
		return NULL;
	struct xm_parts p;
	struct xfrmnl_sa *o = xfrmnl_sa_alloc();
	bool ok = xm_parts_get(sa, &p) && o;
	if (ok) {
		xfrmnl_sa_set_family(o, AF_INET);
		ok = xfrmnl_sa_set_daddr(o, p.dst) == 0 && xfrmnl_sa_set_saddr(o, p.src) == 0 &&
		     xfrmnl_sa_set_aead_params(o, "rfc4106(gcm(aes))", (unsigned)sa->keylen * 8, 128,
					       (const char *)sa->key) == 0;
	}
	if (ok) {
		xfrmnl_sa_set_spi(o, sa->spi);
		xfrmnl_sa_set_proto(o, IPPROTO_ESP);
		xfrmnl_sa_set_mode(o, XFRM_MODE_TRANSPORT);
		xfrmnl_sa_set_reqid(o, XM_REQID);
		/* 64-bit sequence numbers: a 32-bit one runs out after 2^32
		 * packets (about an hour at 1 Mpps) and the state goes dead
		 * until the next rotation. With ESN the window lives in the
		 * ESN attribute and the state's own must stay 0. */
		uint32_t bmp[XM_REPLAY_WINDOW / 32] = { 0 };
		xfrmnl_sa_set_flags(o, XFRM_STATE_ESN);
		ok = xfrmnl_sa_set_replay_state_esn(o, 0, 0, 0, 0, XM_REPLAY_WINDOW,
						    XM_REPLAY_WINDOW / 32, bmp) == 0;
		xfrmnl_sa_set_sel(o, p.sel);
		xfrmnl_sa_set_lifetime_cfg(o, p.lft);
		if (!sa->in)
			xfrmnl_sa_set_mark(o, XM_MARK, XM_MARK_MASK);
	}
	xm_parts_put(&p);
	if (!ok && o) {
		xfrmnl_sa_put(o);
		o = NULL;
	}
	return o;
}

/* The libnl-xfrm outbound policy for sa (see xm_policy_request). */
static struct xfrmnl_sp *xm_policy_obj(const struct xm_sa *sa)
{
	struct xm_parts p;
	struct xfrmnl_sp *o = xfrmnl_sp_alloc();
	struct xfrmnl_user_tmpl *t = xfrmnl_user_tmpl_alloc();
	bool ok = xm_parts_get(sa, &p) && o && t;
	if (ok) {
		xfrmnl_sp_set_sel(o, p.sel);
		xfrmnl_sp_set_lifetime_cfg(o, p.lft);
		/* lower numbers win: a pair's policy before the catch-all */
		xfrmnl_sp_set_priority(o, sa->dst ? XM_PRIORITY : XM_PRIORITY + 1);
		xfrmnl_sp_set_dir(o, XFRM_POLICY_OUT);
		xfrmnl_sp_set_action(o, sa->dst ? XFRM_POLICY_ALLOW : XFRM_POLICY_BLOCK);
		xfrmnl_sp_set_share(o, XFRM_SHARE_ANY);
		xfrmnl_sp_set_mark(o, XM_MARK, XM_MARK_MASK);
		xfrmnl_user_tmpl_set_family(t, AF_INET);
		ok = xfrmnl_user_tmpl_set_daddr(t, p.dst) == 0 && xfrmnl_user_tmpl_set_saddr(t, p.src) == 0;
		xfrmnl_user_tmpl_set_proto(t, IPPROTO_ESP);
		xfrmnl_user_tmpl_set_reqid(t, XM_REQID);
		xfrmnl_user_tmpl_set_mode(t, XFRM_MODE_TRANSPORT);
		xfrmnl_user_tmpl_set_aalgos(t, ~0u);
		xfrmnl_user_tmpl_set_ealgos(t, ~0u);
		xfrmnl_user_tmpl_set_calgos(t, ~0u);
	}
	if (ok && sa->dst) {
		xfrmnl_sp_add_usertemplate(o, t);   /* the policy owns it now */
		t = NULL;
	}
	if (t)
		xfrmnl_user_tmpl_free(t);
	xm_parts_put(&p);
	if (!ok && o) {
		xfrmnl_sp_put(o);
		o = NULL;
	}
	return o;
}

void xm_msg_free(struct nl_msg *msg)
{
	if (!msg)
		return;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	OPENSSL_cleanse(h, h->nlmsg_len);
	nlmsg_free(msg);
}

/* 0 with *msg set, or -errno for libnl's build result err. */
static int xm_built(int err, struct nl_msg **msg)
{
	if (err >= 0 && *msg)
		return 0;
	xm_msg_free(*msg);
	*msg = NULL;
	return err == -NLE_NOMEM ? -ENOMEM : -EINVAL;
}

int xm_sa_request(const struct xm_sa *sa, int del, struct nl_msg **msg)
{
	*msg = NULL;
	struct xfrmnl_sa *o = xm_sa_obj(sa);
	if (!o)
		return -EINVAL;
	int err = del ? xfrmnl_sa_build_delete_request(o, 0, msg)
		      : xfrmnl_sa_build_add_request(o, NLM_F_CREATE | NLM_F_EXCL, msg);
	xfrmnl_sa_put(o);
	return xm_built(err, msg);
}

int xm_policy_request(const struct xm_sa *sa, int del, struct nl_msg **msg)
{
	*msg = NULL;
	struct xfrmnl_sp *o = xm_policy_obj(sa);
	if (!o)
		return -ENOMEM;
	int err = del ? xfrmnl_sp_build_delete_request(o, 0, msg)
		      : xfrmnl_sp_build_add_request(o, NLM_F_CREATE | NLM_F_EXCL, msg);
	xfrmnl_sp_put(o);
	return xm_built(err, msg);
}

/* Copies a built request (r: its result) into buf[cap] and frees it. */
static int xm_copy(int r, struct nl_msg *msg, uint8_t *buf, size_t cap, uint32_t seq)
{
	if (r < 0)
		return r;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	h->nlmsg_seq = seq;
	h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	r = h->nlmsg_len <= cap ? (int)h->nlmsg_len : -ENOSPC;
	if (r > 0)
		memcpy(buf, h, h->nlmsg_len);
	xm_msg_free(msg);
	return r;
}

int xm_sa_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq)
{
	struct nl_msg *msg;
	int r = xm_sa_request(sa, del, &msg);
	return xm_copy(r, msg, buf, cap, seq);
}

int xm_policy_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq)
{
	struct nl_msg *msg;
	int r = xm_policy_request(sa, del, &msg);
	return xm_copy(r, msg, buf, cap, seq);
}

char *xm_nft_rules(const char *t, uint16_t dport, const uint32_t *vnis, size_t n)
{
	size_t tl = strlen(t);
	if (!tl || tl > 32 || strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_") != tl)
		return NULL;
	size_t cap = 1024 + n * 2 * 12;   /* the set goes into both rules */
	char *s = malloc(cap), *set = malloc(n * 12 + 1);
	if (!s || !set) {
		free(s);
		free(set);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(set + k, n * 12 + 1 - k, "%s%u", i ? ", " : "", vnis[i] & 0xffffffu);
	set[k] = 0;
	/* the VNI: UDP payload (th + 8 bytes) + 4 bytes, 24 bits. "out" is a
	 * route chain: a mark set there re-routes the packet, and the
	 * re-route looks the XFRM policy up with the mark. */
	k = (size_t)snprintf(s, cap,
		"add table ip %s\n"
		"add chain ip %s out { type route hook output priority mangle; policy accept; }\n"
		"add chain ip %s in { type filter hook input priority filter; policy accept; }\n"
		"flush chain ip %s out\n"
		"flush chain ip %s in\n", t, t, t, t, t);
	if (n && k < cap)
		k += (size_t)snprintf(s + k, cap - k,
			 "add rule ip %s out udp dport %u @th,96,24 { %s } meta mark set mark or 0x%08x\n"
			 "add rule ip %s in udp dport %u @th,96,24 { %s } meta ipsec missing drop\n",
			 t, dport, set, XM_MARK, t, dport, set);
	free(set);
	if (k >= cap) {   /* cut short: never hand nft half a rule set */
		free(s);
		return NULL;
	}
	return s;
}
