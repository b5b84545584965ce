/* The IPVS load-balancing provider (see lb.h), for kernels with ip_vs.
 *
 * Per service, IPVS fwmark services (AF_INET, scheduler rr, masquerading,
 * weight 1), as Docker programs them:
 *   - the VIP's mark: destinations backend:0 (port 0 keeps the client's
 *     port, so the VIP takes every port and protocol);
 *   - one mark per published port: destinations backend:target.
 * Marks are LB_IPVS_MARK_BASE | 1..0xffff, node-local, chosen by the
 * provider. They are set by a small nftables table lbd owns,
 * "ip <prefix>swarm_lbm":
 *
 *   map vips  { type ipv4_addr : mark; }                   VIP comment "<id>" : mark
 *   map ports { type inet_proto . inet_service : mark; }   tcp . 8080 comment "<id>" : mark
 *   chain output      route output -150:      meta mark set ip daddr map @vips
 *                                             ip daddr != 127.0.0.0/8 fib daddr type local
 *                                                 meta mark set meta l4proto . th dport map @ports
 *   chain prerouting  filter prerouting -150: the same two for routed-in traffic
 *   chain postrouting nat postrouting 100:    meta mark & 0xffff0000 == 0x53570000
 *                                                 fib saddr type != local masquerade
 *
 * The elements' comments carry the service ids: they are how a restarted
 * lbd maps the kernel's IPVS services back to its own (IPVS has no name
 * field). The namespace gets net.ipv4.vs.conntrack=1 (so IPVS traffic
 * passes nftables NAT, for the mesh's masquerade) and an established TCP
 * timeout of LB_IPVS_TCP_TIMEOUT (IPVS's 900 s cut idle connections).
 *
 * A service with no backends keeps its IPVS services without
 * destinations: IPVS answers new connections with ICMP port unreachable.
 * A removed backend's destination is deleted; IPVS keeps its established
 * connections going (expire_nodest_conn stays 0) until they end or time
 * out: that is the drain. Updates take several messages, ordered so that
 * destinations are added before others are removed.
 *
 * Without ip_vs the generic netlink family "IPVS" does not resolve: probe
 * says so and the provider is not used. */
#include "lb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <linux/ip_vs.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <nftables/libnftables.h>

#include "lb_int.h"
#include "log.h"
#include "util.h"

#define LBI_TABLE "swarm_lbm"
#define LBI_TABLE_MAX 32
#define LBI_SCHED "rr"
#define LBI_MARK_MAX 0xffffu
#define LBI_SYSCTL_CONNTRACK "/proc/sys/net/ipv4/vs/conntrack"

/* The marks of one published port. */
struct lbi_port_mark {
	uint8_t proto;
	uint16_t port;
	uint32_t mark;
};

/* The marks of one service, as the provider knows them. */
struct lbi_entry {
	char id[LB_ID_MAX];
	uint32_t vip_mark;
	struct lbi_port_mark *ports;   /* malloc'd */
	size_t n_ports;
};

/* Provider state. */
struct lb_ipvs {
	char table[LBI_TABLE_MAX];     /* "<prefix>swarm_lbm" */
	int nsfd;                      /* the namespace, for sysctls */
	struct nl_sock *sk;            /* generic netlink socket opened there */
	int family;                    /* IPVS family id, 0 until resolved */
	struct nft_ctx *nft;           /* nftables context opened there */
	bool skeleton_ok;              /* marks table known to be right */
	bool masq;                     /* postrouting masquerade (not keep_source) */
	bool tuned;                    /* sysctl and timeout done */
	bool known;                    /* entries reflect the kernel (a dump ran) */
	struct lbi_entry *ents;
	size_t n_ents;
	uint8_t used[(LBI_MARK_MAX + 1) / 8];   /* marks in use, by low 16 bits */
};

/* ---- messages ---- */

static struct nl_msg *lbi_msg(int family, uint8_t cmd, int flags)
{
	struct nl_msg *m = nlmsg_alloc();
	if (m && !genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, flags, cmd, IPVS_GENL_VERSION)) {
		nlmsg_free(m);
		m = NULL;
	}
	return m;
}

/* The nested service attribute: AF and fwmark identify it; full adds what
 * creating it needs. */
static int lbi_put_service(struct nl_msg *m, uint32_t mark, bool full)
{
	struct nlattr *n = nla_nest_start(m, IPVS_CMD_ATTR_SERVICE);
	if (!n)
		return -ENOMEM;
	int r = nla_put_u16(m, IPVS_SVC_ATTR_AF, AF_INET);
	if (r == 0)
		r = nla_put_u32(m, IPVS_SVC_ATTR_FWMARK, mark);
	if (r == 0 && full) {
		struct ip_vs_flags fl = { .flags = 0, .mask = ~0u };
		r = nla_put_string(m, IPVS_SVC_ATTR_SCHED_NAME, LBI_SCHED);
		if (r == 0)
			r = nla_put(m, IPVS_SVC_ATTR_FLAGS, sizeof(fl), &fl);
		if (r == 0)
			r = nla_put_u32(m, IPVS_SVC_ATTR_TIMEOUT, 0);
		if (r == 0)
			r = nla_put_u32(m, IPVS_SVC_ATTR_NETMASK, 0xffffffffu);
	}
	nla_nest_end(m, n);
	return r < 0 ? -ENOMEM : 0;
}

int lb_ipvs_msg_service(int family, uint8_t cmd, uint32_t mark, struct nl_msg **out)
{
	bool dump = cmd == IPVS_CMD_GET_SERVICE;
	struct nl_msg *m = lbi_msg(family, cmd, dump ? NLM_F_DUMP : 0);
	if (!m)
		return -ENOMEM;
	if (!dump && lbi_put_service(m, mark, cmd != IPVS_CMD_DEL_SERVICE) < 0) {
		nlmsg_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

int lb_ipvs_msg_dest(int family, uint8_t cmd, uint32_t mark, struct in_addr ip, uint16_t port,
		     struct nl_msg **out)
{
	bool dump = cmd == IPVS_CMD_GET_DEST;
	struct nl_msg *m = lbi_msg(family, cmd, dump ? NLM_F_DUMP : 0);
	if (!m)
		return -ENOMEM;
	int r = lbi_put_service(m, mark, false);
	if (r == 0 && !dump) {
		/* union nf_inet_addr: 16 bytes, IPv4 in the first 4. */
		uint8_t addr[16] = { 0 };
		memcpy(addr, &ip, sizeof(ip));
		struct nlattr *n = nla_nest_start(m, IPVS_CMD_ATTR_DEST);
		r = n ? 0 : -ENOMEM;
		if (r == 0)
			r = nla_put(m, IPVS_DEST_ATTR_ADDR, sizeof(addr), addr);
		if (r == 0)
			r = nla_put_u16(m, IPVS_DEST_ATTR_PORT, htons(port));
		if (r == 0 && cmd != IPVS_CMD_DEL_DEST) {
			r = nla_put_u32(m, IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_MASQ);
			if (r == 0)
				r = nla_put_u32(m, IPVS_DEST_ATTR_WEIGHT, 1);
			if (r == 0)
				r = nla_put_u32(m, IPVS_DEST_ATTR_U_THRESH, 0);
			if (r == 0)
				r = nla_put_u32(m, IPVS_DEST_ATTR_L_THRESH, 0);
			if (r == 0)
				r = nla_put_u16(m, IPVS_DEST_ATTR_ADDR_FAMILY, AF_INET);
		}
		if (n)
			nla_nest_end(m, n);
	}
	if (r < 0) {
		nlmsg_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

int lb_ipvs_msg_timeout(int family, uint32_t tcp_seconds, struct nl_msg **out)
{
	struct nl_msg *m = lbi_msg(family, IPVS_CMD_SET_CONFIG, 0);
	if (!m)
		return -ENOMEM;
	if (nla_put_u32(m, IPVS_CMD_ATTR_TIMEOUT_TCP, tcp_seconds) < 0) {
		nlmsg_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

/* The nested attribute type of a reply, parsed into tb (max entries). */
static int lbi_parse_nested(struct nl_msg *msg, int type, struct nlattr **tb, int max)
{
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1];
	struct nlmsghdr *h = nlmsg_hdr(msg);
	if (genlmsg_parse(h, 0, top, IPVS_CMD_ATTR_MAX, NULL) < 0 || !top[type])
		return -EINVAL;
	return nla_parse_nested(tb, max, top[type], NULL) < 0 ? -EINVAL : 0;
}

int lb_ipvs_parse_service(struct nl_msg *msg, uint32_t *mark, char *sched, size_t schedlen)
{
	struct nlattr *tb[IPVS_SVC_ATTR_MAX + 1];
	if (lbi_parse_nested(msg, IPVS_CMD_ATTR_SERVICE, tb, IPVS_SVC_ATTR_MAX) < 0 ||
	    !tb[IPVS_SVC_ATTR_AF] || nla_len(tb[IPVS_SVC_ATTR_AF]) < 2)
		return -EINVAL;
	if (nla_get_u16(tb[IPVS_SVC_ATTR_AF]) != AF_INET)
		return -EINVAL;
	*mark = tb[IPVS_SVC_ATTR_FWMARK] && nla_len(tb[IPVS_SVC_ATTR_FWMARK]) >= 4 ?
		nla_get_u32(tb[IPVS_SVC_ATTR_FWMARK]) : 0;
	if (schedlen)
		sched[0] = '\0';
	if (tb[IPVS_SVC_ATTR_SCHED_NAME] && schedlen)
		nla_strlcpy(sched, tb[IPVS_SVC_ATTR_SCHED_NAME], schedlen);
	return 0;
}

int lb_ipvs_parse_dest(struct nl_msg *msg, struct in_addr *ip, uint16_t *port)
{
	struct nlattr *tb[IPVS_DEST_ATTR_MAX + 1];
	if (lbi_parse_nested(msg, IPVS_CMD_ATTR_DEST, tb, IPVS_DEST_ATTR_MAX) < 0 ||
	    !tb[IPVS_DEST_ATTR_ADDR] || nla_len(tb[IPVS_DEST_ATTR_ADDR]) < 4 ||
	    !tb[IPVS_DEST_ATTR_PORT] || nla_len(tb[IPVS_DEST_ATTR_PORT]) < 2)
		return -EINVAL;
	if (tb[IPVS_DEST_ATTR_ADDR_FAMILY] && nla_len(tb[IPVS_DEST_ATTR_ADDR_FAMILY]) >= 2 &&
	    nla_get_u16(tb[IPVS_DEST_ATTR_ADDR_FAMILY]) != AF_INET)
		return -EINVAL;
	memcpy(ip, nla_data(tb[IPVS_DEST_ATTR_ADDR]), 4);
	*port = ntohs(nla_get_u16(tb[IPVS_DEST_ATTR_PORT]));
	return 0;
}

/* ---- marks table text ---- */

char *lb_ipvs_marks_skeleton_cmd(const char *t, bool masq)
{
	struct lb_buf b = { 0 };
	lb_buf_printf(&b,
		"add table ip %s\n"
		"add map ip %s vips { type ipv4_addr : mark; }\n"
		"add map ip %s ports { type inet_proto . inet_service : mark; }\n"
		"add chain ip %s output { type route hook output priority -150; policy accept; }\n"
		"flush chain ip %s output\n"
		"add rule ip %s output meta mark set ip daddr map @vips\n"
		"add rule ip %s output ip daddr != 127.0.0.0/8 fib daddr type local "
			"meta mark set meta l4proto . th dport map @ports\n"
		"add chain ip %s prerouting { type filter hook prerouting priority -150; policy accept; }\n"
		"flush chain ip %s prerouting\n"
		"add rule ip %s prerouting meta mark set ip daddr map @vips\n"
		"add rule ip %s prerouting fib daddr type local "
			"meta mark set meta l4proto . th dport map @ports\n"
		"add chain ip %s postrouting { type nat hook postrouting priority 100; policy accept; }\n"
		"flush chain ip %s postrouting\n",
		t, t, t, t, t, t, t, t, t, t, t, t, t);
	if (masq)
		lb_buf_printf(&b, "add rule ip %s postrouting meta mark & 0x%08x == 0x%08x "
			      "fib saddr type != local masquerade\n",
			      t, LB_IPVS_MARK_MASK, LB_IPVS_MARK_BASE);
	return lb_buf_take(&b);
}

char *lb_ipvs_marks_set_cmd(const char *t, const struct lb_service *old,
			    const struct lb_service *svc, uint32_t vip_mark,
			    const uint32_t *port_marks)
{
	struct lb_buf b = { 0 };
	char ip[INET_ADDRSTRLEN];
	if (old && old->vip.s_addr && old->vip.s_addr != svc->vip.s_addr)
		lb_buf_printf(&b, "delete element ip %s vips { %s }\n", t,
			      inet_ntop(AF_INET, &old->vip, ip, sizeof(ip)));
	for (size_t i = 0; old && i < old->n_ports; i++) {
		const struct lb_port *p = &old->ports[i];
		if (!lb_service_port(svc, p->proto, p->published))
			lb_buf_printf(&b, "delete element ip %s ports { %s . %u }\n", t,
				      lb_proto_name(p->proto), p->published);
	}
	if (svc->vip.s_addr)
		lb_buf_printf(&b, "add element ip %s vips { %s comment \"%s\" : 0x%08x }\n", t,
			      inet_ntop(AF_INET, &svc->vip, ip, sizeof(ip)), svc->id, vip_mark);
	for (size_t i = 0; i < svc->n_ports; i++)
		lb_buf_printf(&b, "add element ip %s ports { %s . %u comment \"%s\" : 0x%08x }\n", t,
			      lb_proto_name(svc->ports[i].proto), svc->ports[i].published, svc->id,
			      port_marks[i]);
	return lb_buf_take(&b);
}

char *lb_ipvs_marks_del_cmd(const char *t, const struct lb_service *svc)
{
	struct lb_buf b = { 0 };
	char ip[INET_ADDRSTRLEN];
	if (svc->vip.s_addr)
		lb_buf_printf(&b, "delete element ip %s vips { %s }\n", t,
			      inet_ntop(AF_INET, &svc->vip, ip, sizeof(ip)));
	for (size_t i = 0; i < svc->n_ports; i++)
		lb_buf_printf(&b, "delete element ip %s ports { %s . %u }\n", t,
			      lb_proto_name(svc->ports[i].proto), svc->ports[i].published);
	return lb_buf_take(&b);
}

/* ---- talking to IPVS ---- */

/* libnl error to -errno (the kernel's own errno where libnl keeps it). */
static int lbi_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_EXIST: return -EEXIST;
	case NLE_OBJ_NOTFOUND: case NLE_NOADDR: return -ENOENT;
	case NLE_PERM: return -EPERM;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_INVAL: return -EINVAL;
	case NLE_BUSY: return -EBUSY;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	default: return -EIO;
	}
}

/* Resolves the IPVS family; 0 or -EOPNOTSUPP (no ip_vs). */
static int lbi_resolve(struct lb_ipvs *v)
{
	if (v->family > 0)
		return 0;
	int id = genl_ctrl_resolve(v->sk, IPVS_GENL_NAME);
	if (id < 0)
		return -EOPNOTSUPP;
	v->family = id;
	return 0;
}

/* Sends m (consumed) and waits for the ack. */
static int lbi_send(struct lb_ipvs *v, struct nl_msg *m)
{
	int r = nl_send_sync(v->sk, m);
	return r < 0 ? lbi_errno(r) : 0;
}

/* Sends one of the builders' messages; exists/absent are fine when ok_err
 * says so. */
static int lbi_do(struct lb_ipvs *v, int built, struct nl_msg *m, int ok_err)
{
	if (built < 0)
		return built;
	int r = lbi_send(v, m);
	return r == ok_err ? 0 : r;
}

static int lbi_service(struct lb_ipvs *v, uint8_t cmd, uint32_t mark)
{
	struct nl_msg *m = NULL;
	int built = lb_ipvs_msg_service(v->family, cmd, mark, &m);
	int r = lbi_do(v, built, m, cmd == IPVS_CMD_NEW_SERVICE ? -EEXIST : -ENOENT);
	if (r < 0)
		log_err("lb, ipvs: %s service fwmark 0x%08x: %s",
			cmd == IPVS_CMD_NEW_SERVICE ? "adding" : "deleting", mark, strerror(-r));
	return r;
}

static int lbi_dest(struct lb_ipvs *v, uint8_t cmd, uint32_t mark, struct in_addr ip, uint16_t port)
{
	struct nl_msg *m = NULL;
	int built = lb_ipvs_msg_dest(v->family, cmd, mark, ip, port, &m);
	int r = lbi_do(v, built, m, cmd == IPVS_CMD_NEW_DEST ? -EEXIST : -ENOENT);
	char s[INET_ADDRSTRLEN];
	if (r < 0)
		log_err("lb, ipvs: %s %s:%u in fwmark 0x%08x: %s",
			cmd == IPVS_CMD_NEW_DEST ? "adding" : "deleting",
			inet_ntop(AF_INET, &ip, s, sizeof(s)), port, mark, strerror(-r));
	return r;
}

/* A dump: sends m and calls fn on every reply. */
static int lbi_dump(struct lb_ipvs *v, struct nl_msg *m, nl_recvmsg_msg_cb_t fn, void *arg)
{
	int r = nl_send_auto(v->sk, m);
	nlmsg_free(m);
	if (r < 0)
		return lbi_errno(r);
	struct nl_cb *cb = nl_cb_clone(nl_socket_get_cb(v->sk));
	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, fn, arg);
	r = nl_recvmsgs(v->sk, cb);
	nl_cb_put(cb);
	return r < 0 ? lbi_errno(r) : 0;
}

/* One fwmark service of ours, as dumped. */
struct lbi_ksvc {
	uint32_t mark;
	bool rr;                      /* scheduler is ours */
	struct in_addr *ips;          /* destinations, malloc'd */
	uint16_t *ports;
	size_t n;
};

/* The IPVS services in our mark range. */
struct lbi_kset {
	struct lbi_ksvc *s;
	size_t n;
};

static int lbi_svc_cb(struct nl_msg *msg, void *arg)
{
	struct lbi_kset *ks = arg;
	uint32_t mark;
	char sched[IP_VS_SCHEDNAME_MAXLEN];
	if (lb_ipvs_parse_service(msg, &mark, sched, sizeof(sched)) < 0 ||
	    (mark & LB_IPVS_MARK_MASK) != LB_IPVS_MARK_BASE || !(mark & ~LB_IPVS_MARK_MASK))
		return NL_OK;
	ks->s = xrealloc(ks->s, (ks->n + 1) * sizeof(*ks->s));
	ks->s[ks->n++] = (struct lbi_ksvc){ .mark = mark, .rr = strcmp(sched, LBI_SCHED) == 0 };
	return NL_OK;
}

static int lbi_dest_cb(struct nl_msg *msg, void *arg)
{
	struct lbi_ksvc *s = arg;
	struct in_addr ip;
	uint16_t port;
	if (lb_ipvs_parse_dest(msg, &ip, &port) < 0)
		return NL_OK;
	s->ips = xrealloc(s->ips, (s->n + 1) * sizeof(*s->ips));
	s->ports = xrealloc(s->ports, (s->n + 1) * sizeof(*s->ports));
	s->ips[s->n] = ip;
	s->ports[s->n++] = port;
	return NL_OK;
}

static void lbi_kset_free(struct lbi_kset *ks)
{
	for (size_t i = 0; i < ks->n; i++) {
		free(ks->s[i].ips);
		free(ks->s[i].ports);
	}
	free(ks->s);
}

static struct lbi_ksvc *lbi_kfind(struct lbi_kset *ks, uint32_t mark)
{
	for (size_t i = 0; i < ks->n; i++)
		if (ks->s[i].mark == mark)
			return &ks->s[i];
	return NULL;
}

static int lbi_kdump(struct lb_ipvs *v, struct lbi_kset *ks)
{
	struct nl_msg *m = NULL;
	int r = lb_ipvs_msg_service(v->family, IPVS_CMD_GET_SERVICE, 0, &m);
	if (r == 0)
		r = lbi_dump(v, m, lbi_svc_cb, ks);
	for (size_t i = 0; r == 0 && i < ks->n; i++) {
		r = lb_ipvs_msg_dest(v->family, IPVS_CMD_GET_DEST, ks->s[i].mark, (struct in_addr){ 0 },
				     0, &m);
		if (r == 0)
			r = lbi_dump(v, m, lbi_dest_cb, &ks->s[i]);
	}
	return r;
}

/* ---- marks ---- */

static bool lbi_used(const struct lb_ipvs *v, uint32_t mark)
{
	uint32_t i = mark & LBI_MARK_MAX;
	return v->used[i / 8] & (1u << (i % 8));
}

static void lbi_use(struct lb_ipvs *v, uint32_t mark, bool on)
{
	uint32_t i = mark & LBI_MARK_MAX;
	if (on)
		v->used[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		v->used[i / 8] &= (uint8_t)~(1u << (i % 8));
}

/* A free mark, now taken; 0 when all 65535 are in use. */
static uint32_t lbi_alloc(struct lb_ipvs *v)
{
	for (uint32_t i = 1; i <= LBI_MARK_MAX; i++) {
		uint32_t mark = LB_IPVS_MARK_BASE | i;
		if (!lbi_used(v, mark)) {
			lbi_use(v, mark, true);
			return mark;
		}
	}
	return 0;
}

static struct lbi_entry *lbi_entry(struct lb_ipvs *v, const char *id)
{
	for (size_t i = 0; i < v->n_ents; i++)
		if (strcmp(v->ents[i].id, id) == 0)
			return &v->ents[i];
	return NULL;
}

static struct lbi_port_mark *lbi_entry_port(struct lbi_entry *e, uint8_t proto, uint16_t port)
{
	for (size_t i = 0; i < e->n_ports; i++)
		if (e->ports[i].proto == proto && e->ports[i].port == port)
			return &e->ports[i];
	return NULL;
}

static struct lbi_entry *lbi_entry_add(struct lb_ipvs *v, const char *id)
{
	v->ents = xrealloc(v->ents, (v->n_ents + 1) * sizeof(*v->ents));
	struct lbi_entry *e = &v->ents[v->n_ents++];
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	return e;
}

static void lbi_entries_clear(struct lb_ipvs *v)
{
	for (size_t i = 0; i < v->n_ents; i++)
		free(v->ents[i].ports);
	free(v->ents);
	v->ents = NULL;
	v->n_ents = 0;
	memset(v->used, 0, sizeof(v->used));
}

static void lbi_entry_remove(struct lb_ipvs *v, struct lbi_entry *e)
{
	lbi_use(v, e->vip_mark, false);
	for (size_t i = 0; i < e->n_ports; i++)
		lbi_use(v, e->ports[i].mark, false);
	free(e->ports);
	size_t i = (size_t)(e - v->ents);
	memmove(e, e + 1, (v->n_ents - i - 1) * sizeof(*e));
	v->n_ents--;
}

/* ---- reading the marks table ---- */

static json_object *lbi_get(json_object *o, const char *key)
{
	json_object *x = NULL;
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &x))
		return NULL;
	return x;
}

/* One element [{"elem": {"val": V, "comment": ID}}, MARK] (or [V, MARK]):
 * V, the id ("" without a comment) and the mark. */
static bool lbi_elem(json_object *e, json_object **val, const char **id, uint32_t *mark)
{
	if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 2)
		return false;
	json_object *k = json_object_array_get_idx(e, 0), *d = json_object_array_get_idx(e, 1);
	json_object *inner = lbi_get(k, "elem");
	json_object *c = lbi_get(inner, "comment");
	*val = inner ? lbi_get(inner, "val") : k;
	*id = c && json_object_is_type(c, json_type_string) ? json_object_get_string(c) : "";
	if (!*val || !json_object_is_type(d, json_type_int))
		return false;
	*mark = (uint32_t)json_object_get_int64(d);
	return true;
}

/* What the marks table says about one id, collected into an lb_service
 * and the provider's entry. */
static struct lbi_entry *lbi_entry_get(struct lb_ipvs *v, struct lb_state *found, const char *id)
{
	struct lbi_entry *e = lbi_entry(v, id);
	if (e)
		return e;
	struct lb_service s = { .complete = true };
	snprintf(s.id, sizeof(s.id), "%s", id);
	lb_state_add_actual(found, &s);
	return lbi_entry_add(v, id);
}

static struct lb_service *lbi_found(struct lb_state *found, const char *id)
{
	return (struct lb_service *)lb_state_find(found, id);
}

/* Parses the marks table listing: entries and the services' VIPs and
 * ports (targets still 0), *skeleton set. Elements without a valid id
 * become orphans "#<mark>". */
static int lbi_parse_marks(struct lb_ipvs *v, const char *json, struct lb_state *found)
{
	json_object *root = json_tokener_parse(json);
	json_object *items = lbi_get(root, "nftables");
	if (!items || !json_object_is_type(items, json_type_array)) {
		json_object_put(root);
		return -EINVAL;
	}
	int maps = 0, chains = 0, rules = 0;
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		json_object *it = json_object_array_get_idx(items, i);
		json_object *m = lbi_get(it, "map"), *c = lbi_get(it, "chain"), *r = lbi_get(it, "rule");
		if (c) {
			const char *n = json_object_get_string(lbi_get(c, "name"));
			chains += n && (strcmp(n, "output") == 0 || strcmp(n, "prerouting") == 0 ||
					strcmp(n, "postrouting") == 0) && lbi_get(c, "hook");
			continue;
		}
		if (r) {
			rules++;
			continue;
		}
		const char *name = m ? json_object_get_string(lbi_get(m, "name")) : NULL;
		json_object *data = lbi_get(m, "map");
		if (!name || !data || strcmp(json_object_get_string(data), "mark") != 0)
			continue;
		bool vips = strcmp(name, "vips") == 0, ports = strcmp(name, "ports") == 0;
		if (!vips && !ports)
			continue;
		maps++;
		json_object *elems = lbi_get(m, "elem");
		for (size_t j = 0; elems && j < json_object_array_length(elems); j++) {
			json_object *val;
			const char *id;
			uint32_t mark;
			char orphan[LB_ID_MAX];
			if (!lbi_elem(json_object_array_get_idx(elems, j), &val, &id, &mark) ||
			    (mark & LB_IPVS_MARK_MASK) != LB_IPVS_MARK_BASE)
				continue;
			if (!lb_id_valid(id)) {
				snprintf(orphan, sizeof(orphan), "#%08x", mark);
				id = orphan;
			}
			struct lbi_entry *e = lbi_entry_get(v, found, id);
			struct lb_service *s = lbi_found(found, id);
			lbi_use(v, mark, true);
			if (vips) {
				struct in_addr a;
				if (!json_object_is_type(val, json_type_string) ||
				    inet_pton(AF_INET, json_object_get_string(val), &a) != 1)
					continue;
				if (e->vip_mark || s->vip.s_addr)
					s->complete = false; /* two VIPs for one id */
				e->vip_mark = mark;
				s->vip = a;
				continue;
			}
			json_object *cc = lbi_get(val, "concat");
			if (!cc || json_object_array_length(cc) != 2)
				continue;
			json_object *po = json_object_array_get_idx(cc, 0);
			uint8_t proto = json_object_is_type(po, json_type_string) ?
				lb_proto_parse(json_object_get_string(po)) : (uint8_t)json_object_get_int(po);
			int port = json_object_get_int(json_object_array_get_idx(cc, 1));
			if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || port < 1 || port > 65535)
				continue;
			e->ports = xrealloc(e->ports, (e->n_ports + 1) * sizeof(*e->ports));
			e->ports[e->n_ports++] = (struct lbi_port_mark){ proto, (uint16_t)port, mark };
			s->ports = xrealloc(s->ports, (s->n_ports + 1) * sizeof(*s->ports));
			s->ports[s->n_ports++] = (struct lb_port){ proto, (uint16_t)port, 0 };
		}
	}
	v->skeleton_ok = maps == 2 && chains == 3 && rules == (v->masq ? 5 : 4);
	json_object_put(root);
	return 0;
}

/* Whether the destinations of k are exactly backends b[0..n) on port. */
static bool lbi_dests_are(const struct lbi_ksvc *k, const struct in_addr *b, size_t n, uint16_t port)
{
	if (!k || k->n != n)
		return false;
	for (size_t i = 0; i < k->n; i++) {
		bool in = false;
		for (size_t j = 0; j < n && !in; j++)
			in = k->ips[i].s_addr == b[j].s_addr;
		if (!in || k->ports[i] != port)
			return false;
	}
	return true;
}

/* Completes one found service from the IPVS services: backends from the
 * VIP's mark, targets from each port's mark; complete when all agree. */
static void lbi_complete(struct lb_service *s, const struct lbi_entry *e, struct lbi_kset *ks)
{
	struct lbi_ksvc *k = e->vip_mark ? lbi_kfind(ks, e->vip_mark) : NULL;
	bool ok = s->complete && k && k->rr && (s->vip.s_addr || s->n_ports);
	if (k && k->n) {
		s->backends = xmalloc(k->n * sizeof(*s->backends));
		memcpy(s->backends, k->ips, k->n * sizeof(*s->backends));
		s->n_backends = lb_backends_normalize(s->backends, k->n);
		ok = ok && s->n_backends == k->n && lbi_dests_are(k, s->backends, s->n_backends, 0);
	}
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct lbi_port_mark *pm = NULL;
		for (size_t j = 0; j < e->n_ports; j++)
			if (e->ports[j].proto == s->ports[i].proto && e->ports[j].port == s->ports[i].published)
				pm = &e->ports[j];
		struct lbi_ksvc *pk = pm ? lbi_kfind(ks, pm->mark) : NULL;
		if (pk && pk->n)
			s->ports[i].target = pk->ports[0];
		ok = ok && pk && pk->rr &&
		     lbi_dests_are(pk, s->backends, s->n_backends, s->ports[i].target);
	}
	lb_ports_sort(s->ports, s->n_ports);
	s->complete = ok;
}

static int lbi_resolve_logged(struct lb_ipvs *v)
{
	int r = lbi_resolve(v);
	if (r < 0)
		log_err("lb, ipvs: generic netlink family %s not found (no ip_vs)", IPVS_GENL_NAME);
	return r;
}

static int lbi_dump_ops(void *ctx, struct lb_state *actual)
{
	struct lb_ipvs *v = ctx;
	int r = lbi_resolve_logged(v);
	if (r < 0)
		return r;
	char cmd[64], *out = NULL;
	struct lbi_kset ks = { 0 };
	lbi_entries_clear(v);
	v->known = false;
	snprintf(cmd, sizeof(cmd), "list table ip %s", v->table);
	r = lb_nft_run(v->nft, cmd, true, true, &out);
	if (r == -ENOENT) {
		v->skeleton_ok = false;
		r = 0;
	} else if (r == 0) {
		r = lbi_parse_marks(v, out, actual);
	}
	free(out);
	if (r == 0)
		r = lbi_kdump(v, &ks);
	if (r < 0) {
		log_err("lb, ipvs: dump: %s", strerror(-r));
		lbi_kset_free(&ks);
		lbi_entries_clear(v);
		return r;
	}
	for (size_t i = 0; i < v->n_ents; i++)
		lbi_complete((struct lb_service *)lb_state_find(actual, v->ents[i].id), &v->ents[i], &ks);
	/* IPVS services in our range that no element names: orphans, so the
	 * reconcile deletes them. */
	for (size_t i = 0; i < ks.n; i++) {
		if (lbi_used(v, ks.s[i].mark))
			continue;
		struct lb_service s = { .complete = false };
		snprintf(s.id, sizeof(s.id), "#%08x", ks.s[i].mark);
		struct lbi_entry *e = lbi_entry_add(v, s.id);
		e->vip_mark = ks.s[i].mark;
		lbi_use(v, ks.s[i].mark, true);
		lb_state_add_actual(actual, &s);
	}
	lbi_kset_free(&ks);
	v->known = true;
	return 0;
}

/* Makes sure the entries reflect the kernel (a svc_set before any dump). */
static int lbi_know(struct lb_ipvs *v)
{
	if (v->known)
		return 0;
	struct lb_state tmp;
	lb_state_init(&tmp);
	int r = lbi_dump_ops(v, &tmp);
	lb_state_clear(&tmp);
	return r;
}

/* Writes val to a sysctl file of the provider's namespace. */
static int lbi_sysctl(struct lb_ipvs *v, const char *path, const char *val)
{
	int orig;
	int r = lb_ns_enter(v->nsfd, &orig);
	if (r < 0)
		return r;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	lb_ns_leave(orig);
	if (fd >= 0) {
		if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
			r = -errno;
		close(fd);
	}
	return r;
}

/* Once per provider: conntrack for IPVS traffic, the TCP timeout. */
static int lbi_tune(struct lb_ipvs *v)
{
	if (v->tuned)
		return 0;
	int r = lbi_sysctl(v, LBI_SYSCTL_CONNTRACK, "1");
	if (r < 0) {
		log_err("lb, ipvs: %s: %s", LBI_SYSCTL_CONNTRACK, strerror(-r));
		return r;
	}
	struct nl_msg *m = NULL;
	int built = lb_ipvs_msg_timeout(v->family, LB_IPVS_TCP_TIMEOUT, &m);
	if ((r = lbi_do(v, built, m, 1)) < 0) {
		log_err("lb, ipvs: setting the TCP timeout: %s", strerror(-r));
		return r;
	}
	v->tuned = true;
	return 0;
}

static bool lbi_has(const struct in_addr *b, size_t n, struct in_addr ip)
{
	for (size_t i = 0; i < n; i++)
		if (b[i].s_addr == ip.s_addr)
			return true;
	return false;
}

/* Makes the destinations of mark svc's backends on port, from those of
 * old (old_n backends on old_port; old_port < 0: none): additions first. */
static int lbi_sync_dests(struct lb_ipvs *v, uint32_t mark, const struct lb_service *svc,
			  uint16_t port, const struct in_addr *old_b, size_t old_n, int old_port)
{
	int err = lbi_service(v, IPVS_CMD_NEW_SERVICE, mark);
	bool same_port = old_port == port;
	for (size_t i = 0; !err && i < svc->n_backends; i++)
		if (!same_port || !lbi_has(old_b, old_n, svc->backends[i]))
			err = lbi_dest(v, IPVS_CMD_NEW_DEST, mark, svc->backends[i], port);
	for (size_t i = 0; !err && old_port >= 0 && i < old_n; i++)
		if (!same_port || !lbi_has(svc->backends, svc->n_backends, old_b[i]))
			err = lbi_dest(v, IPVS_CMD_DEL_DEST, mark, old_b[i], (uint16_t)old_port);
	return err;
}

static int lbi_svc_del(void *ctx, const struct lb_service *svc);

static int lbi_svc_set(void *ctx, const struct lb_service *old, const struct lb_service *svc)
{
	struct lb_ipvs *v = ctx;
	if (!lb_id_valid(svc->id))
		return -EINVAL;
	int r = lbi_resolve_logged(v);
	if (r == 0)
		r = lbi_know(v);
	if (r == 0)
		r = lbi_tune(v);
	if (r < 0)
		return r;
	/* What an incomplete service's IPVS services hold is not known well
	 * enough to diff against: it is removed and made again. */
	if (old && !old->complete) {
		if ((r = lbi_svc_del(v, old)) < 0)
			return r;
		old = NULL;
	}
	struct lbi_entry *e = lbi_entry(v, svc->id);
	if (!e)
		e = lbi_entry_add(v, svc->id);
	if (!e->vip_mark && !(e->vip_mark = lbi_alloc(v)))
		return -ENOSPC;
	const struct in_addr *ob = old ? old->backends : NULL;
	size_t on = old ? old->n_backends : 0;
	r = lbi_sync_dests(v, e->vip_mark, svc, 0, ob, on, old ? 0 : -1);
	uint32_t *marks = xcalloc(svc->n_ports ? svc->n_ports : 1, sizeof(*marks));
	for (size_t i = 0; r == 0 && i < svc->n_ports; i++) {
		const struct lb_port *p = &svc->ports[i];
		struct lbi_port_mark *pm = lbi_entry_port(e, p->proto, p->published);
		if (!pm) {
			uint32_t mark = lbi_alloc(v);
			if (!mark) {
				r = -ENOSPC;
				break;
			}
			e->ports = xrealloc(e->ports, (e->n_ports + 1) * sizeof(*e->ports));
			e->ports[e->n_ports] = (struct lbi_port_mark){ p->proto, p->published, mark };
			pm = &e->ports[e->n_ports++];
		}
		marks[i] = pm->mark;
		const struct lb_port *op = old ? lb_service_port(old, p->proto, p->published) : NULL;
		/* An unknown old target (0) means its destinations are unknown too. */
		int old_port = op && op->target ? op->target : -1;
		r = lbi_sync_dests(v, pm->mark, svc, p->target, ob, op && op->target ? on : 0, old_port);
	}
	if (r == 0) {
		char *cmd = lb_ipvs_marks_set_cmd(v->table, old, svc, e->vip_mark, marks);
		if (!v->skeleton_ok) {
			char *sk = lb_ipvs_marks_skeleton_cmd(v->table, v->masq);
			char *both = xasprintf("%s%s", sk, cmd);
			free(sk);
			free(cmd);
			cmd = both;
		}
		r = lb_nft_run(v->nft, cmd, false, false, NULL);
		free(cmd);
		v->skeleton_ok = r == 0;
	}
	/* Ports svc no longer has: their IPVS services and marks go. */
	for (size_t i = e->n_ports; r == 0 && i-- > 0;) {
		if (lb_service_port(svc, e->ports[i].proto, e->ports[i].port))
			continue;
		lbi_service(v, IPVS_CMD_DEL_SERVICE, e->ports[i].mark);
		lbi_use(v, e->ports[i].mark, false);
		e->ports[i] = e->ports[--e->n_ports];
	}
	free(marks);
	char ip[INET_ADDRSTRLEN];
	if (r < 0)
		log_err("lb, ipvs: service %s (%s): %s", svc->id,
			inet_ntop(AF_INET, &svc->vip, ip, sizeof(ip)), strerror(-r));
	return r;
}

static int lbi_svc_del(void *ctx, const struct lb_service *svc)
{
	struct lb_ipvs *v = ctx;
	int r = lbi_resolve_logged(v);
	if (r == 0)
		r = lbi_know(v);
	if (r < 0)
		return r;
	struct lbi_entry *e = lbi_entry(v, svc->id);
	if (svc->vip.s_addr || svc->n_ports) {
		char *cmd = lb_ipvs_marks_del_cmd(v->table, svc);
		r = lb_nft_run(v->nft, cmd, false, true, NULL);
		free(cmd);
		if (r < 0 && r != -ENOENT) {
			log_err("lb, ipvs: deleting the marks of %s: %s", svc->id, strerror(-r));
			return r;
		}
		r = 0;
	}
	if (!e)
		return 0;
	if (e->vip_mark)
		r = lbi_service(v, IPVS_CMD_DEL_SERVICE, e->vip_mark);
	for (size_t i = 0; i < e->n_ports; i++) {
		int r2 = lbi_service(v, IPVS_CMD_DEL_SERVICE, e->ports[i].mark);
		r = r ? r : r2;
	}
	if (r == 0)
		lbi_entry_remove(v, e);
	return r;
}

static int lbi_probe(void *ctx, char *why, size_t whylen)
{
	struct lb_ipvs *v = ctx;
	if (lbi_resolve(v) < 0) {
		snprintf(why, whylen, "generic netlink family %s not found (kernel without ip_vs)",
			 IPVS_GENL_NAME);
		return -EOPNOTSUPP;
	}
	char scratch[LBI_TABLE_MAX + 8];
	snprintf(scratch, sizeof(scratch), "%s_probe", v->table);
	return lb_nft_probe(v->nft, scratch, why, whylen);
}

static void lbi_free(void *ctx)
{
	struct lb_ipvs *v = ctx;
	if (!v)
		return;
	lbi_entries_clear(v);
	nl_socket_free(v->sk);
	if (v->nft)
		nft_ctx_free(v->nft);
	if (v->nsfd >= 0)
		close(v->nsfd);
	free(v);
}

static const struct lb_ops lb_ipvs_ops = {
	.name = "ipvs",
	.probe = lbi_probe,
	.dump = lbi_dump_ops,
	.svc_set = lbi_svc_set,
	.svc_del = lbi_svc_del,
	.free = lbi_free,
};

/* Opens the generic netlink socket inside nsfd. */
static int lbi_open(int nsfd, struct nl_sock **out)
{
	int orig;
	int r = lb_ns_enter(nsfd, &orig);
	if (r < 0)
		return r;
	struct nl_sock *sk = nl_socket_alloc();
	r = sk ? genl_connect(sk) : -NLE_NOMEM;
	lb_ns_leave(orig);
	if (r < 0) {
		nl_socket_free(sk);
		return lbi_errno(r);
	}
	*out = sk;
	return 0;
}

int lb_ipvs_new(const struct lb_config *cfg, struct lb_provider **out)
{
	const char *prefix = cfg->prefix ? cfg->prefix : "";
	struct lb_ipvs *v = xcalloc(1, sizeof(*v));
	v->nsfd = -1;
	v->masq = !cfg->keep_source;
	int n = snprintf(v->table, sizeof(v->table), "%s%s", prefix, LBI_TABLE);
	if (strlen(prefix) > LB_PREFIX_MAX || n < 0 || (size_t)n >= sizeof(v->table) ||
	    !lb_nft_word(v->table)) {
		free(v);
		return -EINVAL;
	}
	v->nsfd = lb_ns_open(cfg->netns);
	int r = v->nsfd < 0 ? v->nsfd : lbi_open(v->nsfd, &v->sk);
	if (r == 0)
		r = lb_nft_ctx_new(v->nsfd, &v->nft);
	if (r < 0) {
		log_err("lb, ipvs: namespace %s: %s", cfg->netns ? cfg->netns : "(own)", strerror(-r));
		lbi_free(v);
		return r;
	}
	struct lb_provider *p = xcalloc(1, sizeof(*p));
	p->ops = &lb_ipvs_ops;
	p->ctx = v;
	*out = p;
	return 0;
}
