/* dnsd's name index: service names, tasks., dnsrr, container names,
 * aliases, <name>.<network>, PTR, serving flag, network scoping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "names.h"
#include "pb.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const char *const ids_a[] = { "neta" };
static const char *const names_a[] = { "ol_a" };
static const struct names_scope scope_a = { ids_a, names_a, 1 };
static const char *const ids_b[] = { "netb" };
static const char *const names_b[] = { "ol_b" };
static const struct names_scope scope_b = { ids_b, names_b, 1 };

static void put(struct names *nm, const char *ep, const char *net, const char *netname,
		const char *svc, const char *mode, const char *vip, const char *task,
		unsigned slot, const char *ip, int serving)
{
	Swarm__EndpointRecord r = SWARM__ENDPOINT_RECORD__INIT;
	char cname[128];
	snprintf(cname, sizeof(cname), "%s.%u.%s", svc, slot, task);
	r.endpoint_id = (char *)ep;
	r.network_id = (char *)net;
	r.network_name = (char *)netname;
	r.service_name = (char *)svc;
	r.service_id = (char *)svc;
	r.endpoint_mode = (char *)mode;
	r.vip = (char *)vip;
	r.task_id = (char *)task;
	r.slot = slot;
	r.container_name = cname;
	r.ipv4 = (char *)ip;
	r.serving = serving;
	assert_int_equal(names_put(nm, &r), 0);
}

static bool has(const struct names_answer *a, const char *ip)
{
	struct in_addr x;
	inet_pton(AF_INET, ip, &x);
	for (size_t i = 0; i < a->n; i++)
		if (a->addrs[i].s_addr == x.s_addr)
			return true;
	return false;
}

static struct names *fixture(void)
{
	struct names *nm = names_new();
	put(nm, "e1", "neta", "ol_a", "my-nginx", "vip", "198.18.10.2", "t1", 1, "198.18.10.3", 1);
	put(nm, "e2", "neta", "ol_a", "my-nginx", "vip", "198.18.10.2", "t2", 2, "198.18.10.4", 1);
	put(nm, "e3", "neta", "ol_a", "my-nginx", "vip", "198.18.10.2", "t3", 3, "198.18.10.5", 0);
	put(nm, "e4", "neta", "ol_a", "web-test", "dnsrr", "", "t4", 1, "198.18.10.6", 1);
	put(nm, "e5", "neta", "ol_a", "web-test", "dnsrr", "", "t5", 2, "198.18.10.7", 1);
	put(nm, "e6", "netb", "ol_b", "other", "vip", "198.18.20.2", "t6", 1, "198.18.20.3", 1);
	return nm;
}

static void test_vip_and_tasks(void **state)
{
	(void)state;
	struct names *nm = fixture();
	struct names_answer a;
	names_lookup(nm, &scope_a, "my-nginx", 1, &a);
	assert_int_equal(a.kind, NAMES_VIP);
	assert_int_equal(a.n, 1);
	assert_true(has(&a, "198.18.10.2"));
	names_lookup(nm, &scope_a, "tasks.my-nginx", 1, &a);
	assert_int_equal(a.kind, NAMES_TASKS);
	assert_int_equal(a.n, 2); /* t3 does not serve */
	assert_true(has(&a, "198.18.10.3") && has(&a, "198.18.10.4"));
	names_lookup(nm, &scope_a, "my-nginx.ol_a", 1, &a);
	assert_int_equal(a.kind, NAMES_VIP);
	names_lookup(nm, &scope_a, "tasks.my-nginx.ol_a", 1, &a);
	assert_int_equal(a.n, 2);
	names_free(nm);
}

static void test_dnsrr_and_containers(void **state)
{
	(void)state;
	struct names *nm = fixture();
	struct names_answer a;
	names_lookup(nm, &scope_a, "web-test", 1, &a);
	assert_int_equal(a.kind, NAMES_TASKS);
	assert_int_equal(a.n, 2);
	names_lookup(nm, &scope_a, "my-nginx.1.t1", 1, &a);
	assert_int_equal(a.n, 1);
	assert_true(has(&a, "198.18.10.3"));
	names_lookup(nm, &scope_a, "my-nginx.2", 1, &a);
	assert_true(has(&a, "198.18.10.4"));
	/* known but not serving: known, no address (never forwarded) */
	names_lookup(nm, &scope_a, "my-nginx.3", 1, &a);
	assert_int_equal(a.kind, NAMES_TASKS);
	assert_int_equal(a.n, 0);
	names_free(nm);
}

static void test_scoping(void **state)
{
	(void)state;
	struct names *nm = fixture();
	struct names_answer a;
	names_lookup(nm, &scope_b, "my-nginx", 1, &a);
	assert_int_equal(a.kind, NAMES_UNKNOWN);
	names_lookup(nm, &scope_a, "other", 1, &a);
	assert_int_equal(a.kind, NAMES_UNKNOWN);
	names_lookup(nm, &scope_a, "my-nginx.ol_b", 1, &a);
	assert_int_equal(a.kind, NAMES_UNKNOWN);
	names_lookup(nm, &scope_b, "other", 1, &a);
	assert_true(has(&a, "198.18.20.2"));
	names_free(nm);
}

static void test_ptr_update_delete(void **state)
{
	(void)state;
	struct names *nm = fixture();
	char buf[256];
	struct in_addr ip;
	inet_pton(AF_INET, "198.18.10.6", &ip);
	assert_true(names_ptr(nm, &scope_a, ip, buf, sizeof(buf)));
	assert_string_equal(buf, "web-test.1.t4.ol_a");
	assert_false(names_ptr(nm, &scope_b, ip, buf, sizeof(buf)));
	/* update: t3 serves now; delete t1 */
	put(nm, "e3", "neta", "ol_a", "my-nginx", "vip", "198.18.10.2", "t3", 3, "198.18.10.5", 1);
	names_del(nm, "e1");
	struct names_answer a;
	names_lookup(nm, &scope_a, "tasks.my-nginx", 7, &a);
	assert_int_equal(a.n, 2);
	assert_true(has(&a, "198.18.10.4") && has(&a, "198.18.10.5"));
	assert_false(has(&a, "198.18.10.3"));
	assert_int_equal(names_count(nm), 5);
	names_clear(nm);
	assert_int_equal(names_count(nm), 0);
	names_lookup(nm, &scope_a, "my-nginx", 1, &a);
	assert_int_equal(a.kind, NAMES_UNKNOWN);
	names_free(nm);
}

static void test_shuffle(void **state)
{
	(void)state;
	struct names *nm = names_new();
	char ep[16], task[16], ip[32];
	for (int i = 0; i < 20; i++) {
		snprintf(ep, sizeof(ep), "e%d", i);
		snprintf(task, sizeof(task), "t%d", i);
		snprintf(ip, sizeof(ip), "198.18.10.%d", 10 + i);
		put(nm, ep, "neta", "ol_a", "big", "dnsrr", "", task, (unsigned)i + 1, ip, 1);
	}
	struct names_answer a, b;
	names_lookup(nm, &scope_a, "big", 1, &a);
	names_lookup(nm, &scope_a, "big", 2, &b);
	assert_int_equal(a.n, 20);
	assert_int_equal(b.n, 20);
	assert_memory_not_equal(a.addrs, b.addrs, 20 * sizeof(a.addrs[0]));
	names_free(nm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vip_and_tasks),
		cmocka_unit_test(test_dnsrr_and_containers),
		cmocka_unit_test(test_scoping),
		cmocka_unit_test(test_ptr_update_delete),
		cmocka_unit_test(test_shuffle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
