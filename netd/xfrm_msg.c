/* The kernel ESP data path's messages (xfrm_msg.h). */
#include "xfrm_msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xm_buf {
	uint8_t *p;
	size_t cap, len;
	int err;
};

static void *xm_put(struct xm_buf *b, size_t n)
{
	size_t al = NLMSG_ALIGN(n);
	if (b->err || b->len + al > b->cap) {
		b->err = -ENOSPC;
		return NULL;
	}
	void *r = b->p + b->len;
	memset(r, 0, al);
	b->len += al;
	return r;
}

static void *xm_attr(struct xm_buf *b, uint16_t type, size_t n)
{
	struct nlattr *a = xm_put(b, NLA_HDRLEN + n);
	if (!a)
		return NULL;
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + n);
	return (uint8_t *)a + NLA_HDRLEN;
}

static struct nlmsghdr *xm_start(struct xm_buf *b, uint16_t type, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *h = xm_put(b, NLMSG_HDRLEN);
	if (h) {
		h->nlmsg_type = type;
		h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
		h->nlmsg_seq = seq;
	}
	return h;
}

static int xm_end(struct xm_buf *b)
{
	if (b->err)
		return b->err;
	((struct nlmsghdr *)b->p)->nlmsg_len = (uint32_t)b->len;
	return (int)b->len;
}

/* The VXLAN packets from src to dst: UDP to dport, host addresses. */
static void xm_selector(struct xfrm_selector *s, uint32_t src, uint32_t dst, uint16_t dport)
{
	s->family = AF_INET;
	s->saddr.a4 = htonl(src);
	s->daddr.a4 = htonl(dst);
	s->prefixlen_s = 32;
	s->prefixlen_d = 32;
	s->proto = IPPROTO_UDP;
	s->dport = htons(dport);
	s->dport_mask = 0xffff;
}

static void xm_mark(struct xm_buf *b)
{
	struct xfrm_mark *m = xm_attr(b, XFRMA_MARK, sizeof(*m));
	if (m) {
		m->v = XM_MARK;
		m->m = XM_MARK_MASK;
	}
}

int xm_sa_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq)
{
	if (sa->keylen != 20 && sa->keylen != 28 && sa->keylen != 36)
		return -EINVAL;
	struct xm_buf b = { buf, cap, 0, 0 };
	if (del) {
		xm_start(&b, XFRM_MSG_DELSA, 0, seq);
		struct xfrm_usersa_id *id = xm_put(&b, sizeof(*id));
		if (id) {
			id->daddr.a4 = htonl(sa->dst);
			id->spi = htonl(sa->spi);
			id->family = AF_INET;
			id->proto = IPPROTO_ESP;
		}
		xm_mark(&b);
		return xm_end(&b);
	}
	xm_start(&b, XFRM_MSG_NEWSA, NLM_F_CREATE | NLM_F_EXCL, seq);
	struct xfrm_usersa_info *u = xm_put(&b, sizeof(*u));
	if (u) {
		xm_selector(&u->sel, sa->src, sa->dst, sa->dport);
		u->id.daddr.a4 = htonl(sa->dst);
		u->id.spi = htonl(sa->spi);
		u->id.proto = IPPROTO_ESP;
		u->saddr.a4 = htonl(sa->src);
		u->family = AF_INET;
		u->mode = XFRM_MODE_TRANSPORT;
		u->reqid = XM_REQID;
		u->replay_window = 64;
		u->lft.soft_byte_limit = u->lft.hard_byte_limit = XFRM_INF;
		u->lft.soft_packet_limit = u->lft.hard_packet_limit = XFRM_INF;
	}
	struct xfrm_algo_aead *a = xm_attr(&b, XFRMA_ALG_AEAD, sizeof(*a) + sa->keylen);
	if (a) {
		snprintf(a->alg_name, sizeof(a->alg_name), "rfc4106(gcm(aes))");
		a->alg_key_len = (unsigned)(sa->keylen * 8);
		a->alg_icv_len = 128;
		memcpy(a->alg_key, sa->key, sa->keylen);
	}
	xm_mark(&b);
	return xm_end(&b);
}

int xm_policy_msg(uint8_t *buf, size_t cap, const struct xm_sa *sa, int del, uint32_t seq)
{
	struct xm_buf b = { buf, cap, 0, 0 };
	if (del) {
		xm_start(&b, XFRM_MSG_DELPOLICY, 0, seq);
		struct xfrm_userpolicy_id *id = xm_put(&b, sizeof(*id));
		if (id) {
			xm_selector(&id->sel, sa->src, sa->dst, sa->dport);
			id->dir = XFRM_POLICY_OUT;
		}
		xm_mark(&b);
		return xm_end(&b);
	}
	xm_start(&b, XFRM_MSG_NEWPOLICY, NLM_F_CREATE | NLM_F_EXCL, seq);
	struct xfrm_userpolicy_info *p = xm_put(&b, sizeof(*p));
	if (p) {
		xm_selector(&p->sel, sa->src, sa->dst, sa->dport);
		p->priority = XM_PRIORITY;
		p->dir = XFRM_POLICY_OUT;
		p->action = XFRM_POLICY_ALLOW;
		p->share = XFRM_SHARE_ANY;
		p->lft.soft_byte_limit = p->lft.hard_byte_limit = XFRM_INF;
		p->lft.soft_packet_limit = p->lft.hard_packet_limit = XFRM_INF;
	}
	struct xfrm_user_tmpl *t = xm_attr(&b, XFRMA_TMPL, sizeof(*t));
	if (t) {
		t->id.daddr.a4 = htonl(sa->dst);
		t->id.proto = IPPROTO_ESP;
		t->saddr.a4 = htonl(sa->src);
		t->family = AF_INET;
		t->reqid = XM_REQID;
		t->mode = XFRM_MODE_TRANSPORT;
		t->aalgos = t->ealgos = t->calgos = ~0u;
	}
	xm_mark(&b);
	return xm_end(&b);
}

char *xm_nft_rules(const char *t, uint16_t dport, const uint32_t *vnis, size_t n)
{
	size_t tl = strlen(t);
	if (!tl || tl > 32 || strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_") != tl)
		return NULL;
	size_t cap = 1024 + n * 12;
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
	if (n)
		snprintf(s + k, cap - k,
			 "add rule ip %s out udp dport %u @th,96,24 { %s } meta mark set mark or 0x%08x\n"
			 "add rule ip %s in udp dport %u @th,96,24 { %s } meta ipsec missing drop\n",
			 t, dport, set, XM_MARK, t, dport, set);
	free(set);
	return s;
}
