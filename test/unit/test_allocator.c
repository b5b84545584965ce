/* Allocator: subnets, gateways, VNIs, VIPs, task and node addresses,
 * published ports, restart. Pools: the lab's 198.18.0.0/16 and small pieces
 * of 198.51.100.0/24 for exhaustion. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/allocator.h"
#include "manager/ipam.h"
#include "pb.h"
#include "util.h"

static const char *const lab_pool[] = { "198.18.0.0/16" };
static const char *const tiny_pool[] = { "198.51.100.0/28" };

static Swarm__Network *net_make(const char *id, const char *name, const char *subnet,
				const char *gateway)
{
	Swarm__Network *n = xmalloc(sizeof(*n));

	swarm__network__init(n);
	pb_set_str(&n->id, id);
	n->spec = xmalloc(sizeof(*n->spec));
	swarm__network_spec__init(n->spec);
	pb_set_str(&n->spec->name, name);
	pb_set_str(&n->spec->driver, "overlay");
	pb_set_str(&n->spec->subnet, subnet);
	pb_set_str(&n->spec->gateway, gateway);
	return n;
}

static Swarm__Task *task_make(const char *id)
{
	Swarm__Task *t = xmalloc(sizeof(*t));

	swarm__task__init(t);
	pb_set_str(&t->id, id);
	return t;
}

static Swarm__Service *svc_make(const char *id, const char *endpoint_mode)
{
	Swarm__Service *s = xmalloc(sizeof(*s));

	swarm__service__init(s);
	pb_set_str(&s->id, id);
	s->spec = xmalloc(sizeof(*s->spec));
	swarm__service_spec__init(s->spec);
	pb_set_str(&s->spec->name, id);
	pb_set_str(&s->spec->endpoint_mode, endpoint_mode);
	return s;
}

static void svc_port(Swarm__Service *s, uint32_t published, uint32_t target,
		     const char *proto, const char *mode)
{
	Swarm__PortConfig *p = xmalloc(sizeof(*p));

	swarm__port_config__init(p);
	pb_set_str(&p->protocol, proto);
	p->published = published;
	p->target = target;
	pb_set_str(&p->mode, mode);
	PB_PTRV_ADD(s->spec, ports, p);
}

static Swarm__Node *node_make(const char *id)
{
	Swarm__Node *n = xmalloc(sizeof(*n));

	swarm__node__init(n);
	pb_set_str(&n->id, id);
	pb_set_str(&n->hostname, id);
	return n;
}

static void test_ipam_helpers(void **state)
{
	struct ipam_prefix p;
	uint32_t a;
	unsigned len;
	char buf[32];

	assert_int_equal(ipam_prefix_parse("198.18.0.0/16", &p), 0);
	assert_int_equal(p.len, 16);
	assert_int_equal(ipam_prefix_parse("198.18.0.1/16", &p), -EINVAL);
	assert_int_equal(ipam_cidr_parse("198.18.0.1/16", &a, &len), 0);
	assert_int_equal(ipam_cidr_parse("198.18.0.1/33", &a, &len), -EINVAL);
	assert_int_equal(ipam_cidr_parse("198.18.0.1/", &a, &len), -EINVAL);
	assert_int_equal(ipam_cidr_parse("198.18.0.1", &a, &len), -EINVAL);
	assert_int_equal(ipam_cidr_parse("198.18.0/8", &a, &len), -EINVAL);
	assert_int_equal(ipam_cidr_parse("198.18.0.1/1x", &a, &len), -EINVAL);
	/* The default pool parses (never used for traffic here). */
	assert_int_equal(ipam_prefix_parse("10.0.0.0/8", &p), 0);
	assert_int_equal(ipam_addr_parse("198.19.10.94", &a), 0);
	ipam_mac_format(a, buf, sizeof(buf));
	assert_string_equal(buf, "02:42:c6:13:0a:5e");
	ipam_cidr_format(a, 24, buf, sizeof(buf));
	assert_string_equal(buf, "198.19.10.94/24");
}

static void test_bitmap(void **state)
{
	struct ipam_bitmap b;

	assert_int_equal(ipam_bitmap_init(&b, 70), 0);
	for (int i = 0; i < 70; i++)
		assert_int_equal(ipam_bitmap_alloc_first(&b), i);
	assert_int_equal(ipam_bitmap_alloc_first(&b), -1);
	ipam_bitmap_clear(&b, 65);
	ipam_bitmap_clear(&b, 3);
	assert_int_equal(ipam_bitmap_alloc_first(&b), 3);
	assert_int_equal(ipam_bitmap_alloc_first(&b), 65);
	assert_int_equal(b.used, 70);
	ipam_bitmap_destroy(&b);

	/* Serial: a released integer comes back only after a full turn. */
	assert_int_equal(ipam_bitmap_init(&b, 5), 0);
	assert_int_equal(ipam_bitmap_alloc_next(&b), 0);
	assert_int_equal(ipam_bitmap_alloc_next(&b), 1);
	ipam_bitmap_clear(&b, 0);
	assert_int_equal(ipam_bitmap_alloc_next(&b), 2);
	assert_int_equal(ipam_bitmap_alloc_next(&b), 3);
	assert_int_equal(ipam_bitmap_alloc_next(&b), 4);
	assert_int_equal(ipam_bitmap_alloc_next(&b), 0);
	assert_int_equal(ipam_bitmap_alloc_next(&b), -1);
	assert_int_equal(ipam_bitmap_find_free(&b, 0, 5), -1);
	ipam_bitmap_destroy(&b);
}

static void test_idmap(void **state)
{
	struct ipam_idmap m = { 0 };
	char key[32];
	int vals[200];

	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ipam_idmap_put(&m, key, &vals[i]);
	}
	assert_int_equal(m.n, 200);
	for (int i = 0; i < 200; i += 2) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_ptr_equal(ipam_idmap_del(&m, key), &vals[i]);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		if (i % 2)
			assert_ptr_equal(ipam_idmap_get(&m, key), &vals[i]);
		else
			assert_null(ipam_idmap_get(&m, key));
	}
	assert_null(ipam_idmap_del(&m, "nope"));
	ipam_idmap_destroy(&m);
}

static void test_new_pools(void **state)
{
	static const char *const bad[] = { "198.18.0.1/16" };
	static const char *const small[] = { "198.51.100.0/28" };
	struct allocator *a;
	Swarm__Network *n = net_make("net1", "one", "", "");
	char err[256];

	assert_null(allocator_new(bad, 1, 24));
	assert_null(allocator_new(small, 1, 24));       /* pool smaller than /24 */
	assert_null(allocator_new(lab_pool, 1, 31));
	/* Default pool 10.0.0.0/8 in /24s (bookkeeping only). */
	a = allocator_new(NULL, 0, 0);
	assert_non_null(a);
	assert_int_equal(allocator_network(a, n, err, sizeof(err)), 0);
	assert_string_equal(n->subnet, "10.0.0.0/24");
	assert_string_equal(n->gateway, "10.0.0.1");
	allocator_free(a);
	allocator_free(NULL);
	pb_free(n);
}

static void test_subnets(void **state)
{
	static const char *const pool[] = { "198.18.0.0/22" };
	struct allocator *a = allocator_new(pool, 1, 24);
	Swarm__Network *n[6];
	char err[256];

	assert_non_null(a);
	n[0] = net_make("n0", "explicit", "198.18.1.0/24", "");
	n[1] = net_make("n1", "auto1", "", "");
	n[2] = net_make("n2", "auto2", "", "");
	n[3] = net_make("n3", "auto3", "", "");
	n[4] = net_make("n4", "auto4", "", "");
	n[5] = net_make("n5", "overlap", "198.18.1.128/25", "");

	/* Explicit: exactly that subnet, gateway the first host. */
	assert_int_equal(allocator_network(a, n[0], err, sizeof(err)), 0);
	assert_string_equal(n[0]->subnet, "198.18.1.0/24");
	assert_string_equal(n[0]->gateway, "198.18.1.1");
	assert_int_equal(n[0]->vni, 4096);
	/* Automatic ones go around it. */
	assert_int_equal(allocator_network(a, n[1], err, sizeof(err)), 0);
	assert_string_equal(n[1]->subnet, "198.18.0.0/24");
	assert_int_equal(n[1]->vni, 4097);
	assert_int_equal(allocator_network(a, n[2], err, sizeof(err)), 0);
	assert_string_equal(n[2]->subnet, "198.18.2.0/24");
	assert_int_equal(allocator_network(a, n[3], err, sizeof(err)), 0);
	assert_string_equal(n[3]->subnet, "198.18.3.0/24");
	/* Pool exhausted. */
	assert_int_equal(allocator_network(a, n[4], err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "no available subnet"));
	assert_string_equal(n[4]->subnet, "");
	/* Overlap with an existing network. */
	assert_int_equal(allocator_network(a, n[5], err, sizeof(err)), -EEXIST);
	assert_string_equal(err, "subnet 198.18.1.128/25 overlaps with an existing network");
	/* Idempotent for a network already allocated. */
	assert_int_equal(allocator_network(a, n[1], err, sizeof(err)), 0);
	assert_string_equal(n[1]->subnet, "198.18.0.0/24");

	/* Release: the subnet and the VNI come back. */
	allocator_release_network(a, n[2]);
	assert_int_equal(allocator_network(a, n[4], err, sizeof(err)), 0);
	assert_string_equal(n[4]->subnet, "198.18.2.0/24");
	assert_int_equal(n[4]->vni, 4098);

	/* A subnet outside the pools is fine when explicit. */
	pb_set_str(&n[5]->spec->subnet, "198.19.7.0/24");
	assert_int_equal(allocator_network(a, n[5], err, sizeof(err)), 0);
	assert_string_equal(n[5]->subnet, "198.19.7.0/24");
	assert_int_equal(n[5]->vni, 4100);

	for (int i = 0; i < 6; i++)
		pb_free(n[i]);
	allocator_free(a);
}

static void test_subnet_errors(void **state)
{
	struct allocator *a = allocator_new(lab_pool, 1, 24);
	Swarm__Network *n = net_make("x", "x", "198.18.9.5/24", "");
	char err[256];

	assert_int_equal(allocator_network(a, n, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid subnet 198.18.9.5/24: it should be 198.18.9.0/24");
	pb_set_str(&n->spec->subnet, "198.18.9.0/31");
	assert_int_equal(allocator_network(a, n, err, sizeof(err)), -EINVAL);
	pb_set_str(&n->spec->subnet, "garbage");
	assert_int_equal(allocator_network(a, n, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid subnet 'garbage'");
	pb_set_str(&n->id, "");
	assert_int_equal(allocator_network(a, n, err, sizeof(err)), -EINVAL);
	pb_free(n);
	allocator_free(a);
}

static void test_gateway(void **state)
{
	struct allocator *a = allocator_new(lab_pool, 1, 24);
	Swarm__Network *n = net_make("g1", "gw", "198.18.9.0/24", "198.18.9.254");
	Swarm__Network *bad = net_make("g2", "gwbad", "198.18.10.0/24", "198.18.9.1");
	Swarm__Task *t = task_make("t1");
	const Swarm__Network *nets[1];
	char err[256];

	assert_int_equal(allocator_network(a, n, err, sizeof(err)), 0);
	assert_string_equal(n->gateway, "198.18.9.254");
	/* The first host is handed out then, the gateway never. */
	nets[0] = n;
	assert_int_equal(allocator_task(a, t, nets, 1, err, sizeof(err)), 0);
	assert_string_equal(t->networks[0]->addr, "198.18.9.1/24");
	assert_string_equal(t->networks[0]->gateway, "198.18.9.254");

	/* Outside the subnet, network address, broadcast: refused, nothing held. */
	assert_int_equal(allocator_network(a, bad, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "gateway 198.18.9.1 is not a host address of subnet 198.18.10.0/24");
	pb_set_str(&bad->spec->gateway, "198.18.10.0");
	assert_int_equal(allocator_network(a, bad, err, sizeof(err)), -EINVAL);
	pb_set_str(&bad->spec->gateway, "198.18.10.255");
	assert_int_equal(allocator_network(a, bad, err, sizeof(err)), -EINVAL);
	pb_set_str(&bad->spec->gateway, "nonsense");
	assert_int_equal(allocator_network(a, bad, err, sizeof(err)), -EINVAL);
	pb_set_str(&bad->spec->gateway, "");
	assert_int_equal(allocator_network(a, bad, err, sizeof(err)), 0);
	assert_string_equal(bad->subnet, "198.18.10.0/24");
	assert_string_equal(bad->gateway, "198.18.10.1");
	assert_int_equal(bad->vni, 4097);       /* failed calls took no VNI */

	pb_free(t);
	pb_free(n);
	pb_free(bad);
	allocator_free(a);
}

static void test_task_exhaustion(void **state)
{
	/* Two /29s: network, gateway and broadcast leave 5 addresses each. */
	struct allocator *a = allocator_new(tiny_pool, 1, 29);
	Swarm__Network *na = net_make("na", "small-a", "", "");
	Swarm__Network *nb = net_make("nb", "small-b", "", "");
	Swarm__Network *nc = net_make("nc", "small-c", "", "");
	Swarm__Task *t[7];
	const Swarm__Network *nets[2];
	char err[256];

	assert_non_null(a);
	assert_int_equal(allocator_network(a, na, err, sizeof(err)), 0);
	assert_int_equal(allocator_network(a, nb, err, sizeof(err)), 0);
	assert_string_equal(na->subnet, "198.51.100.0/29");
	assert_string_equal(nb->subnet, "198.51.100.8/29");
	assert_int_equal(allocator_network(a, nc, err, sizeof(err)), -ENOSPC);

	nets[0] = nb;
	nets[1] = na;
	for (int i = 0; i < 7; i++)
		t[i] = task_make("t");
	for (int i = 0; i < 5; i++) {
		char want[32];

		assert_int_equal(allocator_task(a, t[i], &nets[1], 1, err, sizeof(err)), 0);
		snprintf(want, sizeof(want), "198.51.100.%d/29", i + 2);
		assert_string_equal(t[i]->networks[0]->addr, want);
	}
	/* Every field filled, aliases left to the caller. */
	assert_string_equal(t[0]->networks[0]->network_id, "na");
	assert_string_equal(t[0]->networks[0]->network_name, "small-a");
	assert_string_equal(t[0]->networks[0]->mac, "02:42:c6:33:64:02");
	assert_int_equal(t[0]->networks[0]->vni, 4096);
	assert_string_equal(t[0]->networks[0]->subnet, "198.51.100.0/29");
	assert_string_equal(t[0]->networks[0]->gateway, "198.51.100.1");
	assert_int_equal(t[0]->networks[0]->n_aliases, 0);

	/* Full: a clear error, and the address taken on nb is given back. */
	assert_int_equal(allocator_task(a, t[5], nets, 2, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "no IP address left on network small-a (subnet 198.51.100.0/29 is full)");
	assert_int_equal(t[5]->n_networks, 0);
	assert_int_equal(allocator_task(a, t[6], nets, 1, err, sizeof(err)), 0);
	assert_string_equal(t[6]->networks[0]->addr, "198.51.100.10/29");

	/* Release one, and it is reused. */
	allocator_release_task(a, t[2]);
	assert_int_equal(allocator_task(a, t[5], nets, 2, err, sizeof(err)), 0);
	assert_int_equal(t[5]->n_networks, 2);
	assert_string_equal(t[5]->networks[0]->addr, "198.51.100.11/29");
	assert_string_equal(t[5]->networks[1]->addr, "198.51.100.4/29");

	/* Again on the same task: idempotent, same addresses. */
	assert_int_equal(allocator_task(a, t[5], nets, 2, err, sizeof(err)), 0);
	assert_int_equal(t[5]->n_networks, 2);
	assert_string_equal(t[5]->networks[0]->addr, "198.51.100.11/29");
	assert_string_equal(t[5]->networks[1]->addr, "198.51.100.4/29");
	/* Dropping a network from the list releases that address. */
	assert_int_equal(allocator_task(a, t[5], nets, 1, err, sizeof(err)), 0);
	assert_int_equal(t[5]->n_networks, 1);
	assert_int_equal(allocator_task(a, t[2], &nets[1], 1, err, sizeof(err)), 0);
	assert_string_equal(t[2]->networks[0]->addr, "198.51.100.4/29");

	/* An unknown network is an error, not a crash. */
	assert_int_equal(allocator_task(a, t[4], (const Swarm__Network *const *)&nc, 1, err, sizeof(err)), -EINVAL);

	for (int i = 0; i < 7; i++)
		pb_free(t[i]);
	pb_free(na);
	pb_free(nb);
	pb_free(nc);
	allocator_free(a);
}

static void test_vips(void **state)
{
	struct allocator *a = allocator_new(lab_pool, 1, 24);
	Swarm__Network *ingress = net_make("ing", "ingress", "", "");
	Swarm__Network *web = net_make("web", "web", "", "");
	Swarm__Service *s1 = svc_make("s1", "vip");
	Swarm__Service *s2 = svc_make("s2", "vip");
	Swarm__Service *s3 = svc_make("s3", "dnsrr");
	const Swarm__Network *nets[1];
	char err[256];

	ingress->spec->ingress = true;
	assert_int_equal(allocator_network(a, ingress, err, sizeof(err)), 0);
	assert_int_equal(allocator_network(a, web, err, sizeof(err)), 0);
	nets[0] = web;

	/* Ingress port: VIP on ingress (listed first, as Docker does) and on web. */
	svc_port(s1, 80, 80, "tcp", "ingress");
	assert_int_equal(allocator_service(a, s1, nets, 1, ingress, err, sizeof(err)), 0);
	assert_int_equal(s1->n_vips, 2);
	assert_string_equal(s1->vips[0]->network_id, "ing");
	assert_string_equal(s1->vips[0]->addr, "198.18.0.2/24");
	assert_string_equal(s1->vips[1]->network_id, "web");
	assert_string_equal(s1->vips[1]->addr, "198.18.1.2/24");
	assert_int_equal(s1->n_ports, 1);
	assert_int_equal(s1->ports[0]->published, 80);

	/* Host-mode ports only: no ingress VIP, no port reserved. */
	svc_port(s2, 80, 80, "tcp", "host");
	assert_int_equal(allocator_service(a, s2, nets, 1, ingress, err, sizeof(err)), 0);
	assert_int_equal(s2->n_vips, 1);
	assert_string_equal(s2->vips[0]->network_id, "web");
	assert_int_equal(s2->n_ports, 1);
	assert_string_equal(s2->ports[0]->mode, "host");
	/* No ports at all: no ingress VIP either. */
	pb_free(s2->spec->ports[0]);
	s2->spec->n_ports = 0;
	assert_int_equal(allocator_service(a, s2, nets, 1, ingress, err, sizeof(err)), 0);
	assert_int_equal(s2->n_vips, 1);
	assert_int_equal(s2->n_ports, 0);

	/* dnsrr: no VIPs; ingress ports refused, host ones fine. */
	assert_int_equal(allocator_service(a, s3, nets, 1, ingress, err, sizeof(err)), 0);
	assert_int_equal(s3->n_vips, 0);
	svc_port(s3, 8080, 80, "tcp", "ingress");
	assert_int_equal(allocator_service(a, s3, nets, 1, ingress, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "port published with ingress mode can't be used with dnsrr mode");
	pb_set_str(&s3->spec->ports[0]->mode, "host");
	assert_int_equal(allocator_service(a, s3, nets, 1, ingress, err, sizeof(err)), 0);
	assert_int_equal(s3->n_vips, 0);

	/* Switching s1 to dnsrr (and host ports) frees its VIPs. */
	pb_set_str(&s1->spec->endpoint_mode, "dnsrr");
	pb_set_str(&s1->spec->ports[0]->mode, "host");
	assert_int_equal(allocator_service(a, s1, nets, 1, ingress, err, sizeof(err)), 0);
	assert_int_equal(s1->n_vips, 0);
	/* Port 80/tcp is free again: s2 takes it, keeps its VIP on web and
	 * gains one on ingress. */
	svc_port(s2, 80, 80, "tcp", "ingress");
	assert_int_equal(allocator_service(a, s2, nets, 1, ingress, err, sizeof(err)), 0);
	assert_int_equal(s2->n_vips, 2);
	assert_string_equal(s2->vips[1]->addr, "198.18.1.3/24");      /* kept, after ingress */

	pb_free(s1);
	pb_free(s2);
	pb_free(s3);
	pb_free(ingress);
	pb_free(web);
	allocator_free(a);
}

static void test_ports(void **state)
{
	struct allocator *a = allocator_new(lab_pool, 1, 24);
	Swarm__Service *s1 = svc_make("s1", "vip");
	Swarm__Service *s2 = svc_make("s2", "vip");
	Swarm__Service *s3 = svc_make("s3", "vip");
	char err[256];
	uint32_t auto_port;

	svc_port(s1, 80, 80, "tcp", "ingress");
	svc_port(s1, 0, 443, "tcp", "");        /* mode defaults to ingress */
	assert_int_equal(allocator_service(a, s1, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(s1->ports[0]->published, 80);
	assert_int_equal(s1->ports[1]->published, 30000);
	assert_string_equal(s1->ports[1]->mode, "ingress");
	assert_string_equal(s1->ports[1]->protocol, "tcp");

	/* 80/tcp taken: refused, and s2's automatic port is not held. */
	svc_port(s2, 0, 8080, "tcp", "ingress");
	svc_port(s2, 80, 80, "tcp", "ingress");
	assert_int_equal(allocator_service(a, s2, NULL, 0, NULL, err, sizeof(err)), -EADDRINUSE);
	assert_string_equal(err, "published port 80/tcp is already in use");
	assert_int_equal(s2->n_ports, 0);
	/* 80/udp is another port. */
	pb_set_str(&s2->spec->ports[1]->protocol, "udp");
	assert_int_equal(allocator_service(a, s2, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(s2->ports[0]->published, 30001);
	assert_int_equal(s2->ports[1]->published, 80);

	/* Re-allocating keeps what the service has, also automatic ones. */
	assert_int_equal(allocator_service(a, s1, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(s1->ports[0]->published, 80);
	assert_int_equal(s1->ports[1]->published, 30000);
	/* An update that moves 80 to 8000 frees 80. */
	s1->spec->ports[0]->published = 8000;
	assert_int_equal(allocator_service(a, s1, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(s1->ports[0]->published, 8000);
	assert_int_equal(s1->ports[1]->published, 30000);
	svc_port(s3, 80, 80, "tcp", "ingress");
	assert_int_equal(allocator_service(a, s3, NULL, 0, NULL, err, sizeof(err)), 0);

	/* Twice the same port in one spec, bad protocol, bad number. */
	svc_port(s3, 80, 81, "tcp", "ingress");
	assert_int_equal(allocator_service(a, s3, NULL, 0, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "published port 80/tcp is given twice");
	s3->spec->ports[1]->published = 81;
	pb_set_str(&s3->spec->ports[1]->protocol, "icmp");
	assert_int_equal(allocator_service(a, s3, NULL, 0, NULL, err, sizeof(err)), -EINVAL);
	pb_set_str(&s3->spec->ports[1]->protocol, "tcp");
	s3->spec->ports[1]->published = 70000;
	assert_int_equal(allocator_service(a, s3, NULL, 0, NULL, err, sizeof(err)), -EINVAL);
	/* The failures left s3's port 80 alone. */
	assert_int_equal(s3->n_ports, 1);
	assert_int_equal(s3->ports[0]->published, 80);

	/* Releasing a service frees its ports. */
	allocator_release_service(a, s3);
	s3->spec->ports[1]->published = 81;
	assert_int_equal(allocator_service(a, s2, NULL, 0, NULL, err, sizeof(err)), 0);
	auto_port = s2->ports[0]->published;
	assert_int_equal(auto_port, 30001);

	pb_free(s1);
	pb_free(s2);
	pb_free(s3);
	allocator_free(a);
}

static void test_port_range_exhaustion(void **state)
{
	struct allocator *a = allocator_new(lab_pool, 1, 24);
	enum { N = 32767 - 30000 + 1 };
	Swarm__Service **s = xcalloc(N + 1, sizeof(*s));
	char err[256];

	assert_int_equal(N, 2768);
	for (int i = 0; i <= N; i++) {
		s[i] = svc_make("s", "vip");
		svc_port(s[i], 0, 80, "tcp", "ingress");
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(allocator_service(a, s[i], NULL, 0, NULL, err, sizeof(err)), 0);
		assert_int_equal(s[i]->ports[0]->published, 30000 + i);
	}
	assert_int_equal(allocator_service(a, s[N], NULL, 0, NULL, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "no free port left in 30000-32767 for 80/tcp");
	assert_int_equal(s[N]->n_ports, 0);
	/* The udp range is separate. */
	pb_set_str(&s[N]->spec->ports[0]->protocol, "udp");
	assert_int_equal(allocator_service(a, s[N], NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(s[N]->ports[0]->published, 30000);
	/* Freeing one makes it available again. */
	pb_set_str(&s[N]->spec->ports[0]->protocol, "tcp");
	allocator_release_service(a, s[1000]);
	assert_int_equal(allocator_service(a, s[N], NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(s[N]->ports[0]->published, 31000);

	for (int i = 0; i <= N; i++)
		pb_free(s[i]);
	free(s);
	allocator_free(a);
}

static void test_nodes(void **state)
{
	struct allocator *a = allocator_new(lab_pool, 1, 24);
	Swarm__Network *ingress = net_make("ing", "ingress", "", "");
	Swarm__Node *n = node_make("node1");
	char err[256];

	assert_int_equal(allocator_network(a, ingress, err, sizeof(err)), 0);
	assert_int_equal(allocator_node_attach(a, n, ingress, err, sizeof(err)), 1);
	assert_int_equal(allocator_node_attach(a, n, ingress, err, sizeof(err)), 0);
	assert_int_equal(n->n_attachments, 1);
	assert_string_equal(n->attachments[0]->addr, "198.18.0.2/24");
	assert_string_equal(n->attachments[0]->mac, "02:42:c6:12:00:02");
	assert_string_equal(n->attachments[0]->network_name, "ingress");
	allocator_node_detach(a, n, "ing");
	assert_int_equal(n->n_attachments, 0);
	allocator_node_detach(a, n, "ing");
	assert_int_equal(allocator_node_attach(a, n, ingress, err, sizeof(err)), 1);
	assert_string_equal(n->attachments[0]->addr, "198.18.0.3/24");
	pb_free(n);
	pb_free(ingress);
	allocator_free(a);
}

static void test_node_exhaustion(void **state)
{
	struct allocator *a = allocator_new(tiny_pool, 1, 29);
	Swarm__Network *net = net_make("na", "small", "", "");
	Swarm__Node *n[6];
	char err[256];

	assert_int_equal(allocator_network(a, net, err, sizeof(err)), 0);
	for (int i = 0; i < 6; i++)
		n[i] = node_make("w");
	for (int i = 0; i < 5; i++)
		assert_int_equal(allocator_node_attach(a, n[i], net, err, sizeof(err)), 1);
	assert_int_equal(allocator_node_attach(a, n[5], net, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "for node w"));
	assert_int_equal(n[5]->n_attachments, 0);
	allocator_release_node(a, n[0]);
	assert_int_equal(allocator_node_attach(a, n[5], net, err, sizeof(err)), 1);
	assert_string_equal(n[5]->attachments[0]->addr, "198.51.100.2/29");
	for (int i = 0; i < 6; i++)
		pb_free(n[i]);
	pb_free(net);
	allocator_free(a);
}

/* Everything a first allocator handed out is restored into a second one,
 * which then hands out nothing twice. */
static void test_restore(void **state)
{
	struct allocator *a = allocator_new(lab_pool, 1, 24), *b;
	Swarm__Network *ingress = net_make("ing", "ingress", "", "");
	Swarm__Network *web = net_make("web", "web", "", "");
	Swarm__Network *more = net_make("more", "more", "", "");
	Swarm__Network *dup = net_make("dup", "dup", "", "");
	Swarm__Service *s = svc_make("s1", "vip"), *s2 = svc_make("s2", "vip");
	Swarm__Task *t[4];
	Swarm__Node *n = node_make("node1");
	const Swarm__Network *nets[2] = { web, ingress };
	char err[256];

	assert_int_equal(allocator_network(a, ingress, err, sizeof(err)), 0);
	assert_int_equal(allocator_network(a, web, err, sizeof(err)), 0);
	svc_port(s, 80, 80, "tcp", "ingress");
	svc_port(s, 0, 81, "tcp", "ingress");
	assert_int_equal(allocator_service(a, s, nets, 1, ingress, err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++)
		t[i] = task_make("t");
	for (int i = 0; i < 3; i++)
		assert_int_equal(allocator_task(a, t[i], nets, 2, err, sizeof(err)), 0);
	assert_int_equal(allocator_node_attach(a, n, ingress, err, sizeof(err)), 1);
	allocator_free(a);

	/* "Restart". */
	b = allocator_new(lab_pool, 1, 24);
	assert_int_equal(allocator_restore_network(b, ingress), 0);
	assert_int_equal(allocator_restore_network(b, web), 0);
	assert_int_equal(allocator_restore_network(b, more), 0);       /* never allocated */
	allocator_restore_service(b, s);
	for (int i = 0; i < 3; i++)
		allocator_restore_task(b, t[i]);
	allocator_restore_node(b, n);

	/* New things do not collide with restored ones. */
	assert_int_equal(allocator_network(b, more, err, sizeof(err)), 0);
	assert_string_equal(more->subnet, "198.18.2.0/24");
	assert_int_equal(more->vni, 4098);
	assert_int_equal(allocator_task(b, t[3], nets, 2, err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++) {
		assert_string_not_equal(t[3]->networks[0]->addr, t[i]->networks[0]->addr);
		assert_string_not_equal(t[3]->networks[1]->addr, t[i]->networks[1]->addr);
	}
	assert_string_not_equal(t[3]->networks[0]->addr, s->vips[0]->addr);
	assert_string_not_equal(t[3]->networks[1]->addr, s->vips[1]->addr);
	assert_string_not_equal(t[3]->networks[1]->addr, n->attachments[0]->addr);
	svc_port(s2, 80, 80, "tcp", "ingress");
	assert_int_equal(allocator_service(b, s2, NULL, 0, NULL, err, sizeof(err)), -EADDRINUSE);
	s2->spec->ports[0]->published = 0;
	assert_int_equal(allocator_service(b, s2, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(s2->ports[0]->published, 30001);      /* 30000 restored */

	/* A subnet or VNI held twice in the store is reported. */
	pb_set_str(&dup->subnet, web->subnet);
	assert_int_equal(allocator_restore_network(b, dup), -EEXIST);
	pb_set_str(&dup->subnet, "198.18.77.0/24");
	dup->vni = web->vni;
	assert_int_equal(allocator_restore_network(b, dup), -EEXIST);
	pb_set_str(&dup->subnet, "junk");
	assert_int_equal(allocator_restore_network(b, dup), -EINVAL);

	for (int i = 0; i < 4; i++)
		pb_free(t[i]);
	pb_free(n);
	pb_free(s);
	pb_free(s2);
	pb_free(ingress);
	pb_free(web);
	pb_free(more);
	pb_free(dup);
	allocator_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipam_helpers),
		cmocka_unit_test(test_bitmap),
		cmocka_unit_test(test_idmap),
		cmocka_unit_test(test_new_pools),
		cmocka_unit_test(test_subnets),
		cmocka_unit_test(test_subnet_errors),
		cmocka_unit_test(test_gateway),
		cmocka_unit_test(test_task_exhaustion),
		cmocka_unit_test(test_vips),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_port_range_exhaustion),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_node_exhaustion),
		cmocka_unit_test(test_restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
