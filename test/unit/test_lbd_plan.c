/* lbd's plan: endpoint records -> namespaces and their services. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netd.pb-c.h"
#include "pb.h"
#include "plan.h"
#include "strmap.h"
#include "util.h"

#define NET "net0000000000000000000001"
#define INGRESS "ing0000000000000000000001"

/* A record set: endpoint id -> record. */
static struct strmap *recs;

static Swarm__EndpointRecord *rec(const char *task, const char *svc, const char *net,
				  const char *ip, const char *vip, bool serving)
{
	Swarm__EndpointRecord *r = xmalloc(sizeof(*r));
	swarm__endpoint_record__init(r);
	char *id = xasprintf("%s-%s", task, net);
	pb_set_str(&r->endpoint_id, id);
	free(id);
	pb_set_str(&r->task_id, task);
	pb_set_str(&r->service_id, svc);
	pb_set_str(&r->network_id, net);
	pb_set_str(&r->ipv4, ip);
	pb_set_str(&r->vip, vip);
	pb_set_str(&r->endpoint_mode, vip[0] ? "vip" : "dnsrr");
	r->serving = serving;
	pb_free(strmap_put(recs, r->endpoint_id, r));
	return r;
}

static void port(Swarm__EndpointRecord *r, uint32_t published, uint32_t target, const char *proto,
		 const char *mode)
{
	Swarm__EndpointPort *p = xmalloc(sizeof(*p));
	swarm__endpoint_port__init(p);
	p->published = published;
	p->target = target;
	pb_set_str(&p->protocol, proto);
	pb_set_str(&p->mode, mode);
	PB_PTRV_ADD(r, ports, p);
}

/* This node's sandbox: the stream adds netns and the gateway address. */
static void local(Swarm__EndpointRecord *r, const char *netns, const char *gw)
{
	pb_set_str(&r->netns, netns);
	pb_set_str(&r->gateway_ip, gw);
}

static int setup(void **unused)
{
	(void)unused;
	recs = strmap_new();
	return 0;
}

static int teardown(void **unused)
{
	(void)unused;
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(recs, &pos, &k, &v))
		pb_free(v);
	strmap_free(recs);
	return 0;
}

static const struct lbd_plan_ns *find_ns(const struct lbd_plan *p, const char *netns)
{
	for (size_t i = 0; i < p->n; i++)
		if ((!netns && !p->ns[i].netns) || (netns && p->ns[i].netns && !strcmp(netns, p->ns[i].netns)))
			return &p->ns[i];
	return NULL;
}

static const struct lb_service *svc_with_vip(const struct lbd_plan_ns *ns, const char *vip)
{
	struct in_addr a;
	inet_pton(AF_INET, vip, &a);
	for (size_t i = 0; i < ns->want.n_svcs; i++)
		if (ns->want.svcs[i].vip.s_addr == a.s_addr)
			return &ns->want.svcs[i];
	return NULL;
}

static bool has_backend(const struct lb_service *s, const char *ip)
{
	struct in_addr a;
	inet_pton(AF_INET, ip, &a);
	for (size_t i = 0; i < s->n_backends; i++)
		if (s->backends[i].s_addr == a.s_addr)
			return true;
	return false;
}

/* A sandbox on NET balances every VIP of NET over the serving tasks only;
 * dnsrr services get nothing; other nodes' tasks count as backends. */
static void test_sandbox_vips(void **unused)
{
	(void)unused;
	local(rec("client1", "svcclient", NET, "198.18.10.20", "198.18.10.3", true), "/run/ns/c1", "198.19.255.2");
	rec("web1", "svcweb", NET, "198.18.10.11", "198.18.10.2", true);
	rec("web2", "svcweb", NET, "198.18.10.12", "198.18.10.2", true);
	rec("web3", "svcweb", NET, "198.18.10.13", "198.18.10.2", false); /* told to stop */
	rec("rr1", "svcrr", NET, "198.18.10.30", "", true);
	rec("other", "svcother", "othernet0000000000000001", "198.18.20.5", "198.18.20.2", true);
	struct lbd_plan p;
	lbd_plan_build(recs, &p);
	assert_int_equal(p.n, 2);
	assert_null(p.ns[0].netns);
	assert_int_equal(p.ns[0].want.n_svcs, 0);   /* nothing published */
	const struct lbd_plan_ns *ns = find_ns(&p, "/run/ns/c1");
	assert_non_null(ns);
	assert_false(ns->keep_source);
	assert_int_equal(ns->want.n_svcs, 2);       /* svcweb and svcclient, not svcrr/svcother */
	const struct lb_service *web = svc_with_vip(ns, "198.18.10.2");
	assert_non_null(web);
	assert_int_equal(web->n_backends, 2);
	assert_true(has_backend(web, "198.18.10.11"));
	assert_true(has_backend(web, "198.18.10.12"));
	assert_false(has_backend(web, "198.18.10.13"));
	assert_int_equal(web->n_ports, 0);          /* a VIP takes every port */
	assert_null(svc_with_vip(ns, "198.18.20.2"));
	assert_int_equal(p.conflicts, 0);
	lbd_plan_free(&p);
}

/* The routing mesh: the ingress sandbox balances each service's ingress
 * ports over its tasks on ingress; the node's namespace sends every such
 * port to the ingress sandbox's gateway address, keeping the source. */
static void test_mesh(void **unused)
{
	(void)unused;
	Swarm__EndpointRecord *lb = rec("ingress-sbox-node1", "", INGRESS, "198.18.0.2", "", true);
	lb->lb_endpoint = true;
	local(lb, "/run/ingress_sbox", "198.19.255.9");
	Swarm__EndpointRecord *a = rec("web1", "svcweb", INGRESS, "198.18.0.11", "198.18.0.5", true);
	Swarm__EndpointRecord *b = rec("web2", "svcweb", INGRESS, "198.18.0.12", "198.18.0.5", true);
	port(a, 80, 8080, "tcp", "ingress");
	port(b, 80, 8080, "tcp", "ingress");
	Swarm__EndpointRecord *u = rec("dns1", "svcdns", INGRESS, "198.18.0.21", "198.18.0.6", true);
	port(u, 5353, 53, "udp", "ingress");
	struct lbd_plan p;
	lbd_plan_build(recs, &p);
	const struct lbd_plan_ns *ing = find_ns(&p, "/run/ingress_sbox");
	assert_non_null(ing);
	assert_true(ing->ingress);
	assert_false(ing->keep_source);             /* the tasks answer through it */
	assert_int_equal(ing->want.n_svcs, 2);
	const struct lb_service *web = lb_state_find(&ing->want, "svcweb");
	assert_non_null(web);
	assert_int_equal(web->n_backends, 2);
	assert_int_equal(web->n_ports, 1);
	assert_int_equal(web->ports[0].published, 80);
	assert_int_equal(web->ports[0].target, 8080);
	const struct lbd_plan_ns *node = find_ns(&p, NULL);
	assert_true(node->keep_source);
	const struct lb_service *mesh = lb_state_find(&node->want, LBD_MESH_ID);
	assert_non_null(mesh);
	assert_int_equal(mesh->vip.s_addr, 0);
	assert_int_equal(mesh->n_backends, 1);
	assert_true(has_backend(mesh, "198.19.255.9"));
	assert_int_equal(mesh->n_ports, 2);         /* 80/tcp and 5353/udp, to the same port */
	for (size_t i = 0; i < mesh->n_ports; i++)
		assert_int_equal(mesh->ports[i].target, mesh->ports[i].published);
	lbd_plan_free(&p);

	/* no ingress sandbox (yet, or any more): nothing is published, and
	 * nothing is left pointing at a sandbox that is not there */
	pb_free(strmap_del(recs, lb->endpoint_id));
	lbd_plan_build(recs, &p);
	assert_null(lb_state_find(&find_ns(&p, NULL)->want, LBD_MESH_ID));
	assert_null(find_ns(&p, "/run/ingress_sbox"));
	lbd_plan_free(&p);
}

/* mode=host ports: to the task's gateway address, only for this node's
 * tasks; also for a task on no network (its "-local" record). */
static void test_host_ports(void **unused)
{
	(void)unused;
	Swarm__EndpointRecord *h = rec("host1", "svchost", NET, "198.18.10.40", "198.18.10.4", true);
	port(h, 8080, 80, "tcp", "host");
	local(h, "/run/ns/h1", "198.19.255.4");
	Swarm__EndpointRecord *far = rec("host2", "svchost", NET, "198.18.10.41", "198.18.10.4", true);
	port(far, 8080, 80, "tcp", "host");          /* another node's: not here */
	Swarm__EndpointRecord *bare = xmalloc(sizeof(*bare));
	swarm__endpoint_record__init(bare);
	pb_set_str(&bare->endpoint_id, "host3-local");
	pb_set_str(&bare->task_id, "host3");
	pb_set_str(&bare->service_id, "svcbare");
	port(bare, 5454, 5454, "udp", "host");
	local(bare, "/run/ns/h3", "198.19.255.6");
	strmap_put(recs, bare->endpoint_id, bare);
	struct lbd_plan p;
	lbd_plan_build(recs, &p);
	const struct lbd_plan_ns *node = find_ns(&p, NULL);
	assert_int_equal(node->want.n_svcs, 2);
	const struct lb_service *s = lb_state_find(&node->want, LBD_HOST_PREFIX "host1");
	assert_non_null(s);
	assert_true(has_backend(s, "198.19.255.4"));
	assert_int_equal(s->ports[0].published, 8080);
	assert_int_equal(s->ports[0].target, 80);
	s = lb_state_find(&node->want, LBD_HOST_PREFIX "host3");
	assert_non_null(s);
	assert_true(has_backend(s, "198.19.255.6"));
	assert_int_equal(s->ports[0].proto, IPPROTO_UDP);
	/* the bare task's sandbox has no VIP to balance */
	const struct lbd_plan_ns *ns = find_ns(&p, "/run/ns/h3");
	assert_non_null(ns);
	assert_int_equal(ns->want.n_svcs, 0);
	lbd_plan_free(&p);
}

/* A host port that the mesh already publishes is left out and counted. */
static void test_conflict(void **unused)
{
	(void)unused;
	Swarm__EndpointRecord *lb = rec("ingress-sbox-node1", "", INGRESS, "198.18.0.2", "", true);
	lb->lb_endpoint = true;
	local(lb, "/run/ingress_sbox", "198.19.255.9");
	port(rec("web1", "svcweb", INGRESS, "198.18.0.11", "198.18.0.5", true), 80, 80, "tcp", "ingress");
	Swarm__EndpointRecord *h = rec("host1", "svchost", NET, "198.18.10.40", "198.18.10.4", true);
	port(h, 80, 8080, "tcp", "host");
	local(h, "/run/ns/h1", "198.19.255.4");
	struct lbd_plan p;
	lbd_plan_build(recs, &p);
	assert_int_equal(p.conflicts, 1);
	const struct lbd_plan_ns *node = find_ns(&p, NULL);
	assert_non_null(lb_state_find(&node->want, LBD_MESH_ID));
	assert_null(lb_state_find(&node->want, LBD_HOST_PREFIX "host1"));
	lbd_plan_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sandbox_vips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mesh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
