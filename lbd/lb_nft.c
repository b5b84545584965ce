/* The nftables load-balancing provider (see lb.h).
 *
 * One table per namespace, "ip <prefix>swarm_lb", that lbd owns whole and
 * never flushes:
 *
 *   map vips  { type ipv4_addr : verdict; }                  VIP -> goto svc_<id>
 *   map ports { type inet_proto . inet_service : verdict; }  (proto, port) -> goto svc_<id>
 *   chain output      nat output -100:     ip daddr vmap @vips
 *                                          ip daddr != 127.0.0.0/8 fib daddr type local
 *                                              meta l4proto . th dport vmap @ports
 *   chain prerouting  nat prerouting -100: ip daddr vmap @vips
 *                                          fib daddr type local meta l4proto . th dport vmap @ports
 *   chain postrouting nat postrouting 100: ct status dnat fib saddr type != local masquerade
 *                                          (absent with keep_source)
 *   chain svc_<id>:   ip daddr VIP dnat to numgen inc mod N map { 0 : B0, 1 : B1, ... }
 *                     ip daddr VIP dnat to B0                      (backstop)
 *                     tcp dport P dnat to numgen inc mod N map { ... } : T   (per port)
 *                     tcp dport P dnat to B0 : T                   (backstop)
 *
 * A service without a VIP (published ports only: the node namespace's
 * routing-mesh and mode=host entries) has no vips element and no VIP
 * rule.
 *
 * - Output catches connections made inside the namespace (a sandbox
 *   talking to a VIP); prerouting catches connections routed into it (the
 *   routing mesh's published ports, or a VIP routed to a load-balancer
 *   namespace). Connections that came from outside are masqueraded to this
 *   namespace's address so that the backend's answer comes back through
 *   here (as Docker's ingress sandbox does; the client's address is lost).
 * - dnat without a port keeps the port, so a VIP takes every port and
 *   protocol: TCP, UDP and ICMP (ping VIP reaches a backend).
 * - A service with no backends rejects: `meta l4proto tcp reject with tcp
 *   reset` and `reject` (ICMP port unreachable). A client is told at once
 *   instead of waiting for a timeout, as with Docker, whose VIP answers
 *   with a reset when its IPVS service has gone.
 * - `numgen inc mod N` carries N, so a backend change replaces the chain's
 *   rules: flush chain + add rules in one batch, one kernel transaction.
 * - The backstop after each balancing rule: a packet that entered the
 *   chain just before such a transaction commits runs the old rule, but
 *   the kernel looks its anonymous map up in the new generation, where
 *   the old map's elements are already inactive. The lookup misses, the
 *   rule does not match, and without the backstop the connection's first
 *   packet would leave un-NATed (a SYN to a VIP answered with "network
 *   unreachable"). The backstop, of the same old generation and with no
 *   lookup, sends it to the old first backend, as if it had come a moment
 *   earlier. Otherwise it is never reached: dnat ends the chain.
 *   The verdict maps make adding a service an element insertion: no other
 *   service's rules are touched, so one update costs the same with 10 or
 *   10,000 services.
 * - NAT chains see only a connection's first packet: established
 *   connections keep their backend through any change (conntrack holds the
 *   translation), which is how a removed backend drains.
 *
 * The nftables context is created inside the namespace (its netlink socket
 * stays there); the thread never enters the namespace again. */
#include "lb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <nftables/libnftables.h>

#include "lb_int.h"
#include "log.h"
#include "util.h"

#define LBN_TABLE "swarm_lb"
#define LBN_CHAIN_PREFIX "svc_"
#define LBN_TABLE_MAX 32

/* Provider state. */
struct lb_nft {
	char table[LBN_TABLE_MAX];   /* "<prefix>swarm_lb" */
	struct nft_ctx *nft;         /* context opened in the namespace */
	bool skeleton_ok;            /* maps and base chains known to be right */
	bool masq;                   /* postrouting masquerade (not keep_source) */
	char *strays;                /* from the last read-back: deletes of map entries
				      * that lead nowhere of ours, for the next batch */
};

int lb_nft_table_name(const char *prefix, char *buf, size_t len)
{
	prefix = prefix ? prefix : "";
	if (strlen(prefix) > LB_PREFIX_MAX)
		return -EINVAL;
	int n = snprintf(buf, len, "%s%s", prefix, LBN_TABLE);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return lb_nft_word(buf) ? 0 : -EINVAL;
}

/* ---- command text ---- */

static const char *lbn_ip(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

char *lb_nft_skeleton_cmd(const char *t, bool masq)
{
	struct lb_buf b = { 0 };
	lb_buf_printf(&b,
		"add table ip %s\n"
		"add map ip %s vips { type ipv4_addr : verdict; }\n"
		"add map ip %s ports { type inet_proto . inet_service : verdict; }\n"
		"add chain ip %s output { type nat hook output priority -100; policy accept; }\n"
		"flush chain ip %s output\n"
		"add rule ip %s output ip daddr vmap @vips\n"
		"add rule ip %s output ip daddr != 127.0.0.0/8 fib daddr type local "
			"meta l4proto . th dport vmap @ports\n"
		"add chain ip %s prerouting { type nat hook prerouting priority -100; policy accept; }\n"
		"flush chain ip %s prerouting\n"
		"add rule ip %s prerouting ip daddr vmap @vips\n"
		"add rule ip %s prerouting fib daddr type local meta l4proto . th dport vmap @ports\n"
		"add chain ip %s postrouting { type nat hook postrouting priority 100; policy accept; }\n"
		"flush chain ip %s postrouting\n",
		t, t, t, t, t, t, t, t, t, t, t, t, t);
	if (masq)
		lb_buf_printf(&b, "add rule ip %s postrouting ct status dnat fib saddr type != local "
			      "masquerade\n", t);
	return lb_buf_take(&b);
}

/* "numgen inc mod N map { 0 : B0, 1 : B1 }" for svc's backends (N > 0). */
static void lbn_numgen(struct lb_buf *b, const struct lb_service *svc)
{
	char ip[INET_ADDRSTRLEN];
	lb_buf_printf(b, "numgen inc mod %zu map { ", svc->n_backends);
	for (size_t i = 0; i < svc->n_backends; i++)
		lb_buf_printf(b, "%s%zu : %s", i ? ", " : "", i, lbn_ip(svc->backends[i], ip));
	lb_buf_printf(b, " }");
}

/* The rules of svc's chain. */
static void lbn_rules(struct lb_buf *b, const char *t, const struct lb_service *svc)
{
	char ip[INET_ADDRSTRLEN];
	if (svc->n_backends == 0) {
		lb_buf_printf(b, "add rule ip %s " LBN_CHAIN_PREFIX "%s meta l4proto tcp reject with tcp reset\n",
			      t, svc->id);
		lb_buf_printf(b, "add rule ip %s " LBN_CHAIN_PREFIX "%s reject\n", t, svc->id);
		return;
	}
	char b0[INET_ADDRSTRLEN];
	lbn_ip(svc->backends[0], b0);
	if (svc->vip.s_addr) {
		lbn_ip(svc->vip, ip);
		lb_buf_printf(b, "add rule ip %s " LBN_CHAIN_PREFIX "%s ip daddr %s dnat to ", t, svc->id, ip);
		lbn_numgen(b, svc);
		lb_buf_printf(b, "\nadd rule ip %s " LBN_CHAIN_PREFIX "%s ip daddr %s dnat to %s\n", t,
			      svc->id, ip, b0);
	}
	for (size_t i = 0; i < svc->n_ports; i++) {
		const struct lb_port *p = &svc->ports[i];
		const char *proto = lb_proto_name(p->proto);
		lb_buf_printf(b, "add rule ip %s " LBN_CHAIN_PREFIX "%s %s dport %u dnat to ", t,
			      svc->id, proto, p->published);
		lbn_numgen(b, svc);
		lb_buf_printf(b, " : %u\nadd rule ip %s " LBN_CHAIN_PREFIX "%s %s dport %u dnat to %s : %u\n",
			      p->target, t, svc->id, proto, p->published, b0, p->target);
	}
}

char *lb_nft_set_cmd(const char *t, const struct lb_service *old, const struct lb_service *svc,
		     bool skeleton, bool masq)
{
	struct lb_buf b = { 0 };
	char ip[INET_ADDRSTRLEN];
	if (skeleton) {
		char *sk = lb_nft_skeleton_cmd(t, masq);
		lb_buf_printf(&b, "%s", sk);
		free(sk);
	}
	/* old's entries that svc does not keep go; only entries old lacks
	 * are added. Re-adding a kept element is not a no-op in every
	 * kernel: under load a packet racing the transaction could miss the
	 * map and leave un-NATed (seen as ENETUNREACH to a VIP). */
	if (old && old->vip.s_addr && old->vip.s_addr != svc->vip.s_addr)
		lb_buf_printf(&b, "delete element ip %s vips { %s }\n", t, lbn_ip(old->vip, ip));
	for (size_t i = 0; old && i < old->n_ports; i++) {
		const struct lb_port *p = &old->ports[i];
		if (!lb_service_port(svc, p->proto, p->published))
			lb_buf_printf(&b, "delete element ip %s ports { %s . %u }\n", t,
				      lb_proto_name(p->proto), p->published);
	}
	lb_buf_printf(&b, "add chain ip %s " LBN_CHAIN_PREFIX "%s\n", t, svc->id);
	lb_buf_printf(&b, "flush chain ip %s " LBN_CHAIN_PREFIX "%s\n", t, svc->id);
	lbn_rules(&b, t, svc);
	if (svc->vip.s_addr && !(old && old->vip.s_addr == svc->vip.s_addr))
		lb_buf_printf(&b, "add element ip %s vips { %s : goto " LBN_CHAIN_PREFIX "%s }\n", t,
			      lbn_ip(svc->vip, ip), svc->id);
	for (size_t i = 0; i < svc->n_ports; i++)
		if (!(old && lb_service_port(old, svc->ports[i].proto, svc->ports[i].published)))
			lb_buf_printf(&b, "add element ip %s ports { %s . %u : goto " LBN_CHAIN_PREFIX "%s }\n",
				      t, lb_proto_name(svc->ports[i].proto), svc->ports[i].published, svc->id);
	return lb_buf_take(&b);
}

char *lb_nft_del_cmd(const char *t, const struct lb_service *svc)
{
	struct lb_buf b = { 0 };
	char ip[INET_ADDRSTRLEN];
	if (svc->vip.s_addr)
		lb_buf_printf(&b, "delete element ip %s vips { %s }\n", t, lbn_ip(svc->vip, ip));
	for (size_t i = 0; i < svc->n_ports; i++)
		lb_buf_printf(&b, "delete element ip %s ports { %s . %u }\n", t,
			      lb_proto_name(svc->ports[i].proto), svc->ports[i].published);
	lb_buf_printf(&b, "flush chain ip %s " LBN_CHAIN_PREFIX "%s\n", t, svc->id);
	lb_buf_printf(&b, "delete chain ip %s " LBN_CHAIN_PREFIX "%s\n", t, svc->id);
	return lb_buf_take(&b);
}

/* ---- parsing `nft -j list table` ---- */

/* One rule of a service chain, as understood. */
enum lbn_rule_kind { LBN_R_OTHER, LBN_R_VIP, LBN_R_PORT, LBN_R_REJECT };

/* What a service chain holds. */
struct lbn_chain {
	char id[LB_ID_MAX];
	struct lb_service svc;      /* vip, ports, backends being collected */
	struct in_addr rule_vip;    /* daddr of the VIP rule */
	int vip_rules, port_rules, rejects, others;
	int backstops;              /* each right after its balancing rule */
	bool last_balancing;        /* the previous rule balanced: a backstop may follow */
	struct in_addr last_match;  /* its VIP (dport rules: 0) */
	int64_t last_dport, last_port;
	int vip_elems;              /* vips entries pointing here */
	bool mismatch;              /* a port rule's backends differ from the VIP rule's */
};

/* Everything parsed from the table. */
struct lbn_parse {
	const char *table;
	struct lbn_chain *chains;
	size_t n_chains;
	/* skeleton checks */
	bool has_vips, has_ports;
	int base_ok;                /* base chains with the right type and hook */
	int out_rules, pre_rules, post_rules;   /* rules seen per base chain */
	int out_good, pre_good, post_good;      /* of which as the skeleton makes them */
	struct lb_buf strays;       /* deletes of map entries leading to no service chain */
};

static json_object *lbn_get(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static const char *lbn_str(json_object *o, const char *key)
{
	json_object *v = lbn_get(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool lbn_int(json_object *o, int64_t *out)
{
	if (!o || !json_object_is_type(o, json_type_int))
		return false;
	*out = json_object_get_int64(o);
	return true;
}

static bool lbn_ipv4(json_object *o, struct in_addr *a)
{
	return o && json_object_is_type(o, json_type_string) &&
	       inet_pton(AF_INET, json_object_get_string(o), a) == 1;
}

static struct lbn_chain *lbn_chain_find(struct lbn_parse *ps, const char *name)
{
	if (!name || strncmp(name, LBN_CHAIN_PREFIX, strlen(LBN_CHAIN_PREFIX)) != 0)
		return NULL;
	const char *id = name + strlen(LBN_CHAIN_PREFIX);
	for (size_t i = 0; i < ps->n_chains; i++)
		if (strcmp(ps->chains[i].id, id) == 0)
			return &ps->chains[i];
	return NULL;
}

/* The target chain of a verdict {"goto": {"target": X}} (or jump). */
static const char *lbn_verdict_target(json_object *v)
{
	json_object *g = lbn_get(v, "goto");
	if (!g)
		g = lbn_get(v, "jump");
	return lbn_str(g, "target");
}

static void lbn_add_port(struct lb_service *s, uint8_t proto, uint16_t published, uint16_t target)
{
	s->ports = xrealloc(s->ports, (s->n_ports + 1) * sizeof(*s->ports));
	s->ports[s->n_ports++] = (struct lb_port){ .proto = proto, .published = published, .target = target };
}

/* An element of vips: ["198.18.0.100", {"goto": {"target": "svc_x"}}]. */
static void lbn_vips_elem(struct lbn_parse *ps, json_object *e)
{
	struct in_addr a;
	if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 2)
		return;
	struct lbn_chain *c = lbn_chain_find(ps, lbn_verdict_target(json_object_array_get_idx(e, 1)));
	if (!lbn_ipv4(json_object_array_get_idx(e, 0), &a))
		return;
	if (!c) {
		char ip[INET_ADDRSTRLEN];
		lb_buf_printf(&ps->strays, "delete element ip %s vips { %s }\n", ps->table, lbn_ip(a, ip));
		return;
	}
	if (c->vip_elems++ == 0)
		c->svc.vip = a;
}

/* An element of ports: [{"concat": ["tcp", 8080]}, {"goto": ...}]. */
static void lbn_ports_elem(struct lbn_parse *ps, json_object *e)
{
	if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 2)
		return;
	struct lbn_chain *c = lbn_chain_find(ps, lbn_verdict_target(json_object_array_get_idx(e, 1)));
	json_object *cc = lbn_get(json_object_array_get_idx(e, 0), "concat");
	if (!cc || !json_object_is_type(cc, json_type_array) || json_object_array_length(cc) != 2)
		return;
	json_object *po = json_object_array_get_idx(cc, 0);
	uint8_t proto = 0;
	int64_t port;
	if (json_object_is_type(po, json_type_string))
		proto = lb_proto_parse(json_object_get_string(po));
	else if (lbn_int(po, &port))
		proto = port == IPPROTO_TCP || port == IPPROTO_UDP ? (uint8_t)port : 0;
	if (!proto || !lbn_int(json_object_array_get_idx(cc, 1), &port) || port < 1 || port > 65535)
		return;
	if (!c) {
		lb_buf_printf(&ps->strays, "delete element ip %s ports { %s . %u }\n", ps->table,
			      lb_proto_name(proto), (unsigned)port);
		return;
	}
	lbn_add_port(&c->svc, proto, (uint16_t)port, 0);
}

/* {"dnat": {"addr": {"map": {"key": {"numgen": {"mode": "inc", "mod": N,
 * "offset": 0}}, "data": {"set": [[0, "IP"], ...]}}}, "port": T}}: the
 * backends into *b (malloc'd), *port = T or 0. false when not that shape. */
static bool lbn_dnat(json_object *d, struct in_addr **b, size_t *n, int64_t *port)
{
	json_object *map = lbn_get(lbn_get(d, "addr"), "map");
	json_object *ng = lbn_get(lbn_get(map, "key"), "numgen");
	json_object *set = lbn_get(lbn_get(map, "data"), "set");
	int64_t mod, off = 0;
	const char *mode = lbn_str(ng, "mode");
	if (!mode || strcmp(mode, "inc") != 0 || !lbn_int(lbn_get(ng, "mod"), &mod) ||
	    (lbn_get(ng, "offset") && !lbn_int(lbn_get(ng, "offset"), &off)) || off != 0 ||
	    !set || !json_object_is_type(set, json_type_array) ||
	    (int64_t)json_object_array_length(set) != mod || mod < 1)
		return false;
	*port = 0;
	if (lbn_get(d, "port") && (!lbn_int(lbn_get(d, "port"), port) || *port < 1 || *port > 65535))
		return false;
	struct in_addr *a = xcalloc((size_t)mod, sizeof(*a));
	bool *seen = xcalloc((size_t)mod, sizeof(*seen));
	bool ok = true;
	for (size_t i = 0; ok && i < (size_t)mod; i++) {
		json_object *e = json_object_array_get_idx(set, i);
		int64_t k;
		struct in_addr ip;
		ok = json_object_is_type(e, json_type_array) && json_object_array_length(e) == 2 &&
		     lbn_int(json_object_array_get_idx(e, 0), &k) && k >= 0 && k < mod && !seen[k] &&
		     lbn_ipv4(json_object_array_get_idx(e, 1), &ip);
		if (ok) {
			seen[k] = true;
			a[k] = ip;
		}
	}
	free(seen);
	if (!ok) {
		free(a);
		return false;
	}
	*n = lb_backends_normalize(a, (size_t)mod);
	*b = a;
	return true;
}

/* {"dnat": {"addr": "IP"[, "port": T]}}: a backstop's target. */
static bool lbn_dnat_literal(json_object *d, struct in_addr *a, int64_t *port)
{
	*port = 0;
	return lbn_ipv4(lbn_get(d, "addr"), a) &&
	       (!lbn_get(d, "port") || (lbn_int(lbn_get(d, "port"), port) && *port >= 1 && *port <= 65535));
}

static bool lbn_has_backend(const struct lb_service *s, struct in_addr a)
{
	for (size_t i = 0; i < s->n_backends; i++)
		if (s->backends[i].s_addr == a.s_addr)
			return true;
	return false;
}

/* {"match": {"op": "==", "left": {"payload": {"protocol": P, "field": F}},
 * "right": R}}: protocol and field, right side in *right. */
static bool lbn_match(json_object *m, const char **proto, const char **field, json_object **right)
{
	json_object *mm = lbn_get(m, "match");
	const char *op = lbn_str(mm, "op");
	json_object *pl = lbn_get(lbn_get(mm, "left"), "payload");
	*proto = lbn_str(pl, "protocol");
	*field = lbn_str(pl, "field");
	*right = lbn_get(mm, "right");
	return op && strcmp(op, "==") == 0 && *proto && *field && *right;
}

static bool lbn_same_backends(const struct in_addr *a, size_t na, const struct lb_service *s)
{
	return na == s->n_backends && (!na || memcmp(a, s->backends, na * sizeof(*a)) == 0);
}

/* One rule of a service chain. */
static void lbn_svc_rule(struct lbn_chain *c, json_object *expr)
{
	size_t n = json_object_array_length(expr);
	json_object *e0 = json_object_array_get_idx(expr, 0);
	if (n == 1 && lbn_get(e0, "reject")) {
		c->rejects++;
		return;
	}
	const char *proto, *field;
	json_object *right, *dnat = n == 2 ? lbn_get(json_object_array_get_idx(expr, 1), "dnat") : NULL;
	struct in_addr *b = NULL, lit;
	size_t nb = 0;
	int64_t port = 0;
	bool last = c->last_balancing;
	c->last_balancing = false;
	if (!dnat || !lbn_match(e0, &proto, &field, &right)) {
		c->others++;
		return;
	}
	struct in_addr vip = { 0 };
	int64_t dport = 0;
	bool is_vip = strcmp(proto, "ip") == 0 && strcmp(field, "daddr") == 0 && lbn_ipv4(right, &vip);
	uint8_t p = is_vip ? 0 : lb_proto_parse(proto);
	bool is_port = p && strcmp(field, "dport") == 0 && lbn_int(right, &dport) && dport >= 1 &&
		       dport <= 65535;
	if (!lbn_dnat(dnat, &b, &nb, &port)) {
		/* The backstop of the rule just before: same match, same
		 * target port, one of its backends. */
		if (last && (is_vip || is_port) && lbn_dnat_literal(dnat, &lit, &port) &&
		    vip.s_addr == c->last_match.s_addr && dport == c->last_dport &&
		    port == c->last_port && lbn_has_backend(&c->svc, lit))
			c->backstops++;
		else
			c->others++;
		return;
	}
	c->last_balancing = true;
	c->last_match = vip;
	c->last_dport = dport;
	c->last_port = port;
	if (is_vip && !port && c->vip_rules == 0 && c->port_rules == 0) {
		c->vip_rules++;
		c->rule_vip = vip;
		c->svc.backends = b;
		c->svc.n_backends = nb;
		return;
	}
	if (is_port && port) {
		/* Every dnat rule has the same backends: the first one (the
		 * VIP rule when there is one) sets them. */
		if (!c->vip_rules && !c->port_rules) {
			c->svc.backends = b;
			c->svc.n_backends = nb;
			b = NULL;
		} else if (!lbn_same_backends(b, nb, &c->svc)) {
			c->mismatch = true;
		}
		c->port_rules++;
		struct lb_port *lp = NULL;
		for (size_t i = 0; i < c->svc.n_ports; i++)
			if (c->svc.ports[i].proto == p && c->svc.ports[i].published == dport)
				lp = &c->svc.ports[i];
		if (lp && !lp->target)
			lp->target = (uint16_t)port;
		else
			c->mismatch = true; /* a rule without its map entry, or twice */
		free(b);
		return;
	}
	free(b);
	c->others++;
}

/* Which vmap a base chain rule applies ("@vips", "@ports"), or whether it
 * masquerades; NULL for anything else. */
static const char *lbn_base_rule(json_object *expr)
{
	size_t n = json_object_array_length(expr);
	json_object *last = json_object_array_get_idx(expr, n - 1);
	if (lbn_get(last, "vmap"))
		return lbn_str(lbn_get(last, "vmap"), "data");
	if (json_object_object_get_ex(last, "masquerade", NULL))
		return "masquerade";
	return NULL;
}

static void lbn_rule(struct lbn_parse *ps, json_object *r)
{
	const char *chain = lbn_str(r, "chain");
	json_object *expr = lbn_get(r, "expr");
	if (!chain || !expr || !json_object_is_type(expr, json_type_array) ||
	    json_object_array_length(expr) == 0)
		return;
	struct lbn_chain *c = lbn_chain_find(ps, chain);
	if (c) {
		lbn_svc_rule(c, expr);
		return;
	}
	const char *what = lbn_base_rule(expr);
	/* Expected rules in order: output and prerouting @vips then @ports,
	 * postrouting masquerade. */
	if (strcmp(chain, "output") == 0) {
		ps->out_good += what && strcmp(what, ps->out_rules == 0 ? "@vips" : "@ports") == 0;
		ps->out_rules++;
	} else if (strcmp(chain, "prerouting") == 0) {
		ps->pre_good += what && strcmp(what, ps->pre_rules == 0 ? "@vips" : "@ports") == 0;
		ps->pre_rules++;
	} else if (strcmp(chain, "postrouting") == 0) {
		ps->post_good += what && strcmp(what, "masquerade") == 0;
		ps->post_rules++;
	}
}

static void lbn_chain(struct lbn_parse *ps, json_object *c)
{
	const char *name = lbn_str(c, "name");
	const char *type = lbn_str(c, "type"), *hook = lbn_str(c, "hook");
	int64_t prio = 0;
	if (!name)
		return;
	if (strncmp(name, LBN_CHAIN_PREFIX, strlen(LBN_CHAIN_PREFIX)) == 0) {
		const char *id = name + strlen(LBN_CHAIN_PREFIX);
		if (!lb_id_valid(id) || hook || lbn_chain_find(ps, name))
			return; /* not a name lbd makes */
		ps->chains = xrealloc(ps->chains, (ps->n_chains + 1) * sizeof(*ps->chains));
		struct lbn_chain *ch = &ps->chains[ps->n_chains++];
		memset(ch, 0, sizeof(*ch));
		snprintf(ch->id, sizeof(ch->id), "%s", id);
		snprintf(ch->svc.id, sizeof(ch->svc.id), "%s", id);
		return;
	}
	if (!type || !hook || strcmp(type, "nat") != 0 || !lbn_int(lbn_get(c, "prio"), &prio))
		return;
	if ((strcmp(name, "output") == 0 && strcmp(hook, "output") == 0 && prio == -100) ||
	    (strcmp(name, "prerouting") == 0 && strcmp(hook, "prerouting") == 0 && prio == -100) ||
	    (strcmp(name, "postrouting") == 0 && strcmp(hook, "postrouting") == 0 && prio == 100))
		ps->base_ok++;
}

static void lbn_map(struct lbn_parse *ps, json_object *m, int pass)
{
	const char *name = lbn_str(m, "name"), *data = lbn_str(m, "map");
	json_object *type = lbn_get(m, "type");
	if (!name || !data || strcmp(data, "verdict") != 0 || !type)
		return;
	bool vips = strcmp(name, "vips") == 0 && json_object_is_type(type, json_type_string) &&
		    strcmp(json_object_get_string(type), "ipv4_addr") == 0;
	bool ports = strcmp(name, "ports") == 0 && json_object_is_type(type, json_type_array) &&
		     json_object_array_length(type) == 2;
	if (pass == 0) {
		ps->has_vips |= vips;
		ps->has_ports |= ports;
		return;
	}
	json_object *elems = lbn_get(m, "elem");
	if ((!vips && !ports) || !elems || !json_object_is_type(elems, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(elems); i++) {
		json_object *e = json_object_array_get_idx(elems, i);
		if (vips)
			lbn_vips_elem(ps, e);
		else
			lbn_ports_elem(ps, e);
	}
}

/* The service of one chain, with complete set when everything agrees. */
static void lbn_finish(struct lbn_chain *c, struct lb_state *actual)
{
	struct lb_service *s = &c->svc;
	/* A VIP (one element) or published ports only (no element). */
	bool ok = (c->vip_elems == 1 || (c->vip_elems == 0 && s->n_ports)) && !c->others &&
		  !c->mismatch;
	bool dnat = c->vip_rules || c->port_rules;
	if (dnat) {
		ok = ok && !c->rejects && c->rule_vip.s_addr == s->vip.s_addr &&
		     c->vip_rules == (c->vip_elems ? 1 : 0) && (size_t)c->port_rules == s->n_ports &&
		     c->backstops == c->vip_rules + c->port_rules;
	} else {
		/* No backends: the two rejects and nothing else. */
		ok = ok && c->rejects == 2 && !c->backstops;
	}
	for (size_t i = 0; ok && dnat && i < s->n_ports; i++)
		ok = s->ports[i].target != 0;
	s->complete = ok;
	lb_state_add_actual(actual, s);
}

int lb_nft_parse(const char *json, const char *table, bool masq, struct lb_state *actual,
		 bool *skeleton_ok, char **strays)
{
	json_object *root = json_tokener_parse(json);
	json_object *items = lbn_get(root, "nftables");
	*skeleton_ok = false;
	*strays = NULL;
	if (!items || !json_object_is_type(items, json_type_array)) {
		json_object_put(root);
		return -EINVAL;
	}
	struct lbn_parse ps = { .table = table };
	size_t n = json_object_array_length(items);
	/* Chains first (maps and rules refer to them), then maps, then rules. */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < n; i++) {
			json_object *it = json_object_array_get_idx(items, i), *o;
			if (pass == 0 && (o = lbn_get(it, "chain")) && lbn_str(o, "table") &&
			    strcmp(lbn_str(o, "table"), table) == 0)
				lbn_chain(&ps, o);
			else if (pass == 0 && (o = lbn_get(it, "map")) && lbn_str(o, "table") &&
				 strcmp(lbn_str(o, "table"), table) == 0)
				lbn_map(&ps, o, 0);
			else if (pass == 1 && (o = lbn_get(it, "map")) && lbn_str(o, "table") &&
				 strcmp(lbn_str(o, "table"), table) == 0)
				lbn_map(&ps, o, 1);
			else if (pass == 2 && (o = lbn_get(it, "rule")) && lbn_str(o, "table") &&
				 strcmp(lbn_str(o, "table"), table) == 0)
				lbn_rule(&ps, o);
		}
	}
	for (size_t i = 0; i < ps.n_chains; i++) {
		lbn_finish(&ps.chains[i], actual);
		free(ps.chains[i].svc.backends);
		free(ps.chains[i].svc.ports);
	}
	free(ps.chains);
	*skeleton_ok = ps.has_vips && ps.has_ports && ps.base_ok == 3 && ps.out_rules == 2 &&
		       ps.out_good == 2 && ps.pre_rules == 2 && ps.pre_good == 2 &&
		       ps.post_rules == (masq ? 1 : 0) && ps.post_good == ps.post_rules;
	if (ps.strays.len)
		*strays = lb_buf_take(&ps.strays);
	json_object_put(root);
	return 0;
}

/* ---- ops ---- */

static int lbn_probe(void *ctx, char *why, size_t whylen)
{
	struct lb_nft *nl = ctx;
	char scratch[LBN_TABLE_MAX + 8];
	snprintf(scratch, sizeof(scratch), "%s_probe", nl->table);
	return lb_nft_probe(nl->nft, scratch, why, whylen);
}

static int lbn_dump(void *ctx, struct lb_state *actual)
{
	struct lb_nft *nl = ctx;
	char cmd[64], *out = NULL;
	snprintf(cmd, sizeof(cmd), "list table ip %s", nl->table);
	int r = lb_nft_run(nl->nft, cmd, true, true, &out);
	if (r == -ENOENT) {
		nl->skeleton_ok = false;
		return 0; /* nothing made yet */
	}
	if (r < 0) {
		log_err("lb, nft: listing table %s failed: %s", nl->table, strerror(-r));
		return r;
	}
	free(nl->strays);
	r = lb_nft_parse(out, nl->table, nl->masq, actual, &nl->skeleton_ok, &nl->strays);
	if (nl->strays)
		log_warn("lb, nft: table %s has map entries leading to no service of ours; "
			 "they go with the next batch:\n%s", nl->table, nl->strays);
	if (r < 0)
		log_err("lb, nft: cannot parse the listing of table %s", nl->table);
	free(out);
	return r;
}

static int lbn_svc_set(void *ctx, const struct lb_service *old, const struct lb_service *svc)
{
	struct lb_nft *nl = ctx;
	if (!lb_id_valid(svc->id))
		return -EINVAL;
	char *cmd = lb_nft_set_cmd(nl->table, old, svc, !nl->skeleton_ok, nl->masq);
	if (nl->strays) {
		/* first, in the same transaction: a stray may hold a key svc needs */
		char *both = xasprintf("%s%s", nl->strays, cmd);
		free(cmd);
		cmd = both;
	}
	int r = lb_nft_run(nl->nft, cmd, false, false, NULL);
	free(cmd);
	if (r == 0) {
		free(nl->strays);
		nl->strays = NULL;
	}
	char ip[INET_ADDRSTRLEN];
	if (r < 0) {
		/* Retry the skeleton with the next batch, in case it is what broke. */
		nl->skeleton_ok = false;
		log_err("lb, nft: service %s (%s, %zu backends): %s", svc->id, lbn_ip(svc->vip, ip),
			svc->n_backends, strerror(-r));
		return r;
	}
	nl->skeleton_ok = true;
	log_debug("lb, nft: service %s %s: %zu backends, %zu ports", svc->id, lbn_ip(svc->vip, ip),
		  svc->n_backends, svc->n_ports);
	return 0;
}

static int lbn_svc_del(void *ctx, const struct lb_service *svc)
{
	struct lb_nft *nl = ctx;
	if (!lb_id_valid(svc->id))
		return -EINVAL;
	char *cmd = lb_nft_del_cmd(nl->table, svc);
	int r = lb_nft_run(nl->nft, cmd, false, true, NULL);
	free(cmd);
	if (r == -ENOENT)
		return 0; /* gone already */
	if (r < 0)
		log_err("lb, nft: deleting service %s: %s", svc->id, strerror(-r));
	return r;
}

static void lbn_free(void *ctx)
{
	struct lb_nft *nl = ctx;
	if (!nl)
		return;
	if (nl->nft)
		nft_ctx_free(nl->nft);
	free(nl->strays);
	free(nl);
}

static const struct lb_ops lb_nft_ops = {
	.name = "nftables",
	.probe = lbn_probe,
	.dump = lbn_dump,
	.svc_set = lbn_svc_set,
	.svc_del = lbn_svc_del,
	.free = lbn_free,
};

int lb_nft_new(const struct lb_config *cfg, struct lb_provider **out)
{
	struct lb_nft *nl = xcalloc(1, sizeof(*nl));
	nl->masq = !cfg->keep_source;
	int r = lb_nft_table_name(cfg->prefix, nl->table, sizeof(nl->table));
	if (r < 0) {
		free(nl);
		return r;
	}
	int nsfd = lb_ns_open(cfg->netns);
	r = nsfd < 0 ? nsfd : lb_nft_ctx_new(nsfd, &nl->nft);
	if (nsfd >= 0)
		close(nsfd);
	if (r < 0) {
		log_err("lb, nft: namespace %s: %s", cfg->netns ? cfg->netns : "(own)", strerror(-r));
		lbn_free(nl);
		return r;
	}
	struct lb_provider *p = xcalloc(1, sizeof(*p));
	p->ops = &lb_nft_ops;
	p->ctx = nl;
	*out = p;
	return 0;
}
