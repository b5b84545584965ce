/* lbd's kernel layer without a kernel: service sets, the reconcile against
 * the fake provider (create, update, delete, VIP and port moves, restart,
 * failures), lb_apply without a dump, services with published ports
 * only, the nftables command text for add/remove/update (with and
 * without the masquerade of keep_source) and the parse of captured
 * `nft -j list table` outputs, the IPVS generic netlink
 * messages (built, then read back attribute by attribute) and marks
 * commands, and the provider choice with fakes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "lbd/lb.h"
#include "log.h"

#define FAMILY 0x1d   /* a made-up IPVS family id */

static struct in_addr ip4(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

/* A service from text: backends "a,b" ("" for none), ports
 * "tcp:8080:80,udp:53:5353" ("" for none). Arrays point into static
 * storage: use it at once (lb_state_add copies). */
static struct lb_service svc(const char *id, const char *vip, const char *backends,
			     const char *ports)
{
	static struct in_addr b[16];
	static struct lb_port p[8];
	struct lb_service s = { .vip = ip4(vip), .backends = b, .ports = p };
	snprintf(s.id, sizeof(s.id), "%s", id);
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", backends);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		b[s.n_backends++] = ip4(t);
	snprintf(buf, sizeof(buf), "%s", ports);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char proto[8];
		unsigned pub, tgt;
		assert_int_equal(sscanf(t, "%7[a-z]:%u:%u", proto, &pub, &tgt), 3);
		p[s.n_ports++] = (struct lb_port){ strcmp(proto, "tcp") == 0 ? IPPROTO_TCP : IPPROTO_UDP,
						   (uint16_t)pub, (uint16_t)tgt };
	}
	return s;
}

static void add(struct lb_state *st, const char *id, const char *vip, const char *backends,
		const char *ports)
{
	struct lb_service s = svc(id, vip, backends, ports);
	assert_int_equal(lb_state_add(st, &s), 0);
}

static bool has_op(struct lb_provider *p, const char *line)
{
	for (size_t i = 0; i < lb_fake_nops(p); i++)
		if (strcmp(lb_fake_op(p, i), line) == 0)
			return true;
	return false;
}

static void dump_ops(struct lb_provider *p)
{
	for (size_t i = 0; i < lb_fake_nops(p); i++)
		print_message("  op: %s\n", lb_fake_op(p, i));
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- states ---- */

static void test_state(void **unused)
{
	(void)unused;
	struct lb_state st;
	lb_state_init(&st);
	/* Backends sorted and deduplicated, ports sorted. */
	add(&st, "web", "198.18.0.100", "198.51.100.12,198.51.100.11,198.51.100.12",
	    "udp:53:53,tcp:8080:80");
	const struct lb_service *w = lb_state_find(&st, "web");
	assert_non_null(w);
	assert_true(w->complete);
	assert_int_equal(w->n_backends, 2);
	assert_int_equal(w->backends[0].s_addr, ip4("198.51.100.11").s_addr);
	assert_int_equal(w->backends[1].s_addr, ip4("198.51.100.12").s_addr);
	assert_int_equal(w->n_ports, 2);
	assert_int_equal(w->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(w->ports[1].proto, IPPROTO_UDP);

	/* Unique by id, VIP and published port. */
	struct lb_service s = svc("web", "198.18.0.101", "", "");
	assert_int_equal(lb_state_add(&st, &s), -EEXIST);
	s = svc("api", "198.18.0.100", "", "");
	assert_int_equal(lb_state_add(&st, &s), -EEXIST);
	s = svc("api", "198.18.0.101", "", "tcp:8080:81");
	assert_int_equal(lb_state_add(&st, &s), -EEXIST);
	s = svc("api", "198.18.0.101", "", "udp:8080:81"); /* another protocol is fine */
	assert_int_equal(lb_state_add(&st, &s), 0);

	/* Malformed. */
	s = svc("bad id", "198.18.0.102", "", "");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	s = svc("", "198.18.0.102", "", "");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	s = svc("x", "0.0.0.0", "", "");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	s = svc("x", "198.18.0.102", "0.0.0.0", "");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	s = svc("x", "198.18.0.102", "", "tcp:0:80");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	s = svc("x", "198.18.0.102", "", "tcp:81:80,tcp:81:82");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	char longid[80];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_false(lb_id_valid(longid));
	assert_true(lb_id_valid("2x9kq0c3u1yb4a6e8d5f7g0h1-web.1_x"));
	assert_int_equal(st.n_svcs, 2);

	/* Same: backend order does not matter; without backends, targets do not. */
	struct lb_state t, u;
	lb_state_init(&t);
	lb_state_init(&u);
	add(&t, "web", "198.18.0.100", "198.51.100.11,198.51.100.12", "tcp:8080:80,udp:53:53");
	assert_true(lb_service_same(lb_state_find(&t, "web"), w));
	add(&t, "e", "198.18.0.110", "", "tcp:9000:1");
	add(&u, "e", "198.18.0.110", "", "tcp:9000:2");
	assert_true(lb_service_same(lb_state_find(&t, "e"), lb_state_find(&u, "e")));
	add(&t, "f", "198.18.0.111", "198.51.100.11", "tcp:9001:1");
	add(&u, "f", "198.18.0.111", "198.51.100.11", "tcp:9001:2");
	assert_false(lb_service_same(lb_state_find(&t, "f"), lb_state_find(&u, "f")));
	lb_state_clear(&t);
	lb_state_clear(&u);
	lb_state_clear(&st);
	lb_state_clear(NULL);
}

/* A service without a VIP (published ports only); neither VIP nor ports
 * is refused. Several such services share VIP 0.0.0.0 without clashing. */
static void test_state_ports_only(void **unused)
{
	(void)unused;
	struct lb_state st;
	lb_state_init(&st);
	struct lb_service s = svc("mesh", "0.0.0.0", "198.51.100.12,198.51.100.11", "tcp:30080:80");
	assert_int_equal(lb_state_add(&st, &s), 0);
	const struct lb_service *m = lb_state_find(&st, "mesh");
	assert_non_null(m);
	assert_int_equal(m->vip.s_addr, 0);
	assert_int_equal(m->n_backends, 2);
	assert_int_equal(m->n_ports, 1);
	assert_true(m->complete);
	/* No backends yet is fine too. */
	s = svc("mesh2", "0.0.0.0", "", "udp:30053:53,tcp:30053:53");
	assert_int_equal(lb_state_add(&st, &s), 0);
	/* A VIP service beside them. */
	s = svc("web", "198.18.0.100", "198.51.100.11", "");
	assert_int_equal(lb_state_add(&st, &s), 0);
	assert_int_equal(st.n_svcs, 3);

	/* Neither a VIP nor a port: nothing to balance. */
	s = svc("none", "0.0.0.0", "198.51.100.11", "");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	s = svc("none", "0.0.0.0", "", "");
	assert_int_equal(lb_state_add(&st, &s), -EINVAL);
	/* Ports-only services are still unique by id and by published port. */
	s = svc("mesh", "0.0.0.0", "", "tcp:30081:80");
	assert_int_equal(lb_state_add(&st, &s), -EEXIST);
	s = svc("mesh3", "0.0.0.0", "", "tcp:30080:80");
	assert_int_equal(lb_state_add(&st, &s), -EEXIST);
	assert_int_equal(st.n_svcs, 3);

	/* Same: a VIP and no VIP differ. */
	struct lb_state t;
	lb_state_init(&t);
	add(&t, "mesh", "198.18.0.101", "198.51.100.11,198.51.100.12", "tcp:30080:80");
	assert_false(lb_service_same(lb_state_find(&t, "mesh"), m));
	lb_state_clear(&t);
	lb_state_init(&t);
	add(&t, "mesh", "0.0.0.0", "198.51.100.11,198.51.100.12", "tcp:30080:80");
	assert_true(lb_service_same(lb_state_find(&t, "mesh"), m));

	/* lb_state_copy: a deep copy, complete flags kept, dst emptied first. */
	struct lb_state c;
	lb_state_init(&c);
	add(&c, "junk", "198.18.0.200", "", "");
	st.svcs[2].complete = false;
	lb_state_copy(&c, &st);
	assert_int_equal(c.n_svcs, 3);
	assert_null(lb_state_find(&c, "junk"));
	for (size_t i = 0; i < st.n_svcs; i++) {
		const struct lb_service *x = lb_state_find(&c, st.svcs[i].id);
		assert_non_null(x);
		assert_true(lb_service_same(x, &st.svcs[i]));
		assert_int_equal(x->complete, st.svcs[i].complete);
		assert_true(!x->n_backends || x->backends != st.svcs[i].backends);
		assert_true(!x->n_ports || x->ports != st.svcs[i].ports);
	}
	lb_state_clear(&st); /* the copy outlives its source */
	assert_true(lb_service_same(lb_state_find(&c, "mesh"), lb_state_find(&t, "mesh")));
	lb_state_copy(&c, &st); /* from an empty state */
	assert_int_equal(c.n_svcs, 0);
	lb_state_clear(&c);
	lb_state_clear(&t);
}

/* ---- reconcile on the fake ---- */

static void desired_two(struct lb_state *d)
{
	lb_state_init(d);
	add(d, "web", "198.18.0.100", "198.51.100.11,198.51.100.12", "tcp:8080:80");
	add(d, "db", "198.18.0.101", "198.51.100.21", "");
}

static void test_reconcile_create_idempotent(void **unused)
{
	(void)unused;
	struct lb_provider *p;
	struct lb_state d;
	struct lb_stats st;
	assert_int_equal(lb_fake_new("fake", 0, &p), 0);
	desired_two(&d);
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 2);
	assert_int_equal(st.failed, 0);
	assert_true(has_op(p, "svc_set web 198.18.0.100 198.51.100.11,198.51.100.12 tcp:8080:80"));
	assert_true(has_op(p, "svc_set db 198.18.0.101 198.51.100.21"));

	/* Again, and with the backends listed in another order: nothing. */
	lb_fake_clear_ops(p);
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 0);
	lb_state_clear(&d);
	lb_state_init(&d);
	add(&d, "db", "198.18.0.101", "198.51.100.21", "");
	add(&d, "web", "198.18.0.100", "198.51.100.12,198.51.100.11", "tcp:8080:80");
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 0);
	assert_int_equal(lb_fake_nops(p), 0);
	lb_state_clear(&d);
	lb_provider_free(p);
}

static void test_reconcile_update_delete(void **unused)
{
	(void)unused;
	struct lb_provider *p;
	struct lb_state d;
	struct lb_stats st;
	assert_int_equal(lb_fake_new("fake", 0, &p), 0);
	desired_two(&d);
	assert_int_equal(lb_reconcile(p, &d, NULL), 0);
	lb_fake_clear_ops(p);
	lb_state_clear(&d);

	/* web: one backend replaced and a port added; db: gone; cache: new. */
	lb_state_init(&d);
	add(&d, "web", "198.18.0.100", "198.51.100.12,198.51.100.13", "tcp:8080:80,udp:5353:53");
	add(&d, "cache", "198.18.0.102", "", "");
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	dump_ops(p);
	assert_int_equal(st.applied, 3);
	assert_string_equal(lb_fake_op(p, 0), "svc_del db"); /* deletions first */
	assert_true(has_op(p, "replace web 198.18.0.100 198.51.100.12,198.51.100.13 tcp:8080:80 udp:5353:53"));
	assert_true(has_op(p, "svc_set cache 198.18.0.102 -"));
	assert_int_equal(lb_fake_state(p)->n_svcs, 2);

	/* Everything away. */
	lb_fake_clear_ops(p);
	lb_state_clear(&d);
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 2);
	assert_int_equal(lb_fake_count(p, "svc_del "), 2);
	assert_int_equal(lb_fake_state(p)->n_svcs, 0);
	lb_provider_free(p);
}

/* A VIP and a published port change hands: the old holders go first. */
static void test_reconcile_key_moves(void **unused)
{
	(void)unused;
	struct lb_provider *p;
	struct lb_state d;
	struct lb_stats st;
	assert_int_equal(lb_fake_new("fake", 0, &p), 0);
	lb_state_init(&d);
	add(&d, "a", "198.18.0.1", "198.51.100.11", "tcp:80:80");
	add(&d, "b", "198.18.0.2", "198.51.100.12", "");
	assert_int_equal(lb_reconcile(p, &d, NULL), 0);
	lb_state_clear(&d);
	lb_fake_clear_ops(p);

	/* Swap the VIPs; b also takes a's port. */
	lb_state_init(&d);
	add(&d, "a", "198.18.0.2", "198.51.100.11", "");
	add(&d, "b", "198.18.0.1", "198.51.100.12", "tcp:80:80");
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	dump_ops(p);
	assert_int_equal(st.failed, 0);
	assert_int_equal(lb_fake_count(p, "svc_del "), 2);
	assert_true(has_op(p, "svc_set a 198.18.0.2 198.51.100.11"));
	assert_true(has_op(p, "svc_set b 198.18.0.1 198.51.100.12 tcp:80:80"));

	/* A VIP change that frees a key nobody else wants: replaced in place. */
	lb_fake_clear_ops(p);
	lb_state_clear(&d);
	lb_state_init(&d);
	add(&d, "a", "198.18.0.3", "198.51.100.11", "");
	add(&d, "b", "198.18.0.1", "198.51.100.12", "tcp:80:80");
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 1);
	assert_true(has_op(p, "replace a 198.18.0.3 198.51.100.11"));
	lb_state_clear(&d);
	lb_provider_free(p);
}

/* lbd restarts: the kernel already holds a previous run's services. */
static void test_reconcile_restart(void **unused)
{
	(void)unused;
	struct lb_provider *p;
	struct lb_state d;
	struct lb_stats st;
	assert_int_equal(lb_fake_new("fake", 0, &p), 0);
	desired_two(&d);
	for (size_t i = 0; i < d.n_svcs; i++)
		assert_int_equal(lb_state_add(lb_fake_state(p), &d.svcs[i]), 0);
	/* A stale one and a half-made one. */
	struct lb_service s = svc("old", "198.18.0.200", "198.51.100.99", "");
	assert_int_equal(lb_state_add(lb_fake_state(p), &s), 0);
	lb_fake_state(p)->svcs[0].complete = false; /* web */

	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	dump_ops(p);
	assert_int_equal(st.applied, 2);
	assert_true(has_op(p, "svc_del old"));
	assert_true(has_op(p, "replace web 198.18.0.100 198.51.100.11,198.51.100.12 tcp:8080:80"));
	lb_fake_clear_ops(p);
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 0);
	lb_state_clear(&d);
	lb_provider_free(p);
}

static void test_reconcile_failures(void **unused)
{
	(void)unused;
	struct lb_provider *p;
	struct lb_state d;
	struct lb_stats st;
	assert_int_equal(lb_fake_new("fake", 0, &p), 0);
	desired_two(&d);

	/* A failed dump changes nothing. */
	lb_fake_fail(p, "dump", -EIO);
	assert_int_equal(lb_reconcile(p, &d, &st), -EIO);
	assert_int_equal(lb_fake_nops(p), 0);

	/* One failed set: the other goes on; the next run retries. */
	lb_fake_fail(p, "svc_set web", -ENOMEM);
	assert_int_equal(lb_reconcile(p, &d, &st), -ENOMEM);
	assert_int_equal(st.applied, 1);
	assert_int_equal(st.failed, 1);
	assert_true(has_op(p, "svc_set db 198.18.0.101 198.51.100.21"));
	lb_fake_clear_ops(p);
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 1);
	assert_int_equal(lb_fake_count(p, "svc_set web"), 1);
	lb_state_clear(&d);
	lb_provider_free(p);
}

/* Ports-only services on the fake: two of them (both "VIP 0.0.0.0") and a
 * VIP service become ports-only; all converge and stay put. */
static void test_reconcile_ports_only(void **unused)
{
	(void)unused;
	struct lb_provider *p;
	struct lb_state d;
	struct lb_stats st;
	assert_int_equal(lb_fake_new("fake", 0, &p), 0);
	lb_state_init(&d);
	add(&d, "mesh", "0.0.0.0", "198.51.100.11", "tcp:30080:80");
	add(&d, "mesh2", "0.0.0.0", "", "udp:30053:53");
	add(&d, "web", "198.18.0.100", "198.51.100.12", "tcp:30081:80");
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	dump_ops(p);
	assert_int_equal(st.applied, 3);
	assert_int_equal(st.failed, 0);
	assert_true(has_op(p, "svc_set mesh 0.0.0.0 198.51.100.11 tcp:30080:80"));
	assert_true(has_op(p, "svc_set mesh2 0.0.0.0 - udp:30053:53"));
	lb_fake_clear_ops(p);
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 0);

	/* web loses its VIP: replaced in place, now ports-only as well. */
	lb_state_clear(&d);
	lb_state_init(&d);
	add(&d, "mesh", "0.0.0.0", "198.51.100.11", "tcp:30080:80");
	add(&d, "mesh2", "0.0.0.0", "", "udp:30053:53");
	add(&d, "web", "0.0.0.0", "198.51.100.12", "tcp:30081:80");
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	dump_ops(p);
	assert_int_equal(st.applied, 1);
	assert_int_equal(st.failed, 0);
	assert_true(has_op(p, "replace web 0.0.0.0 198.51.100.12 tcp:30081:80"));
	lb_fake_clear_ops(p);
	assert_int_equal(lb_reconcile(p, &d, &st), 0);
	assert_int_equal(st.applied, 0);
	lb_state_clear(&d);
	lb_provider_free(p);
}

/* lb_apply: the caller's actual state instead of a dump; only the
 * differences are applied. */
static void test_apply(void **unused)
{
	(void)unused;
	struct lb_provider *p;
	struct lb_state d, actual;
	struct lb_stats st;
	assert_int_equal(lb_fake_new("fake", 0, &p), 0);
	desired_two(&d);
	add(&d, "mesh", "0.0.0.0", "198.51.100.31", "tcp:30080:80");
	for (size_t i = 0; i < d.n_svcs; i++)
		assert_int_equal(lb_state_add(lb_fake_state(p), &d.svcs[i]), 0);
	lb_state_init(&actual);
	lb_state_copy(&actual, &d);
	/* Any dump from here on would fail: apply must not need one. */
	lb_fake_fail(p, "dump", -EIO);

	/* Nothing differs: nothing done. */
	assert_int_equal(lb_apply(p, &actual, &d, &st), 0);
	assert_int_equal(st.applied, 0);
	assert_int_equal(st.failed, 0);
	assert_int_equal(lb_fake_nops(p), 0);

	/* One backend more for web, db gone, cache new, mesh untouched. */
	struct lb_state d2;
	lb_state_init(&d2);
	add(&d2, "web", "198.18.0.100", "198.51.100.13,198.51.100.11,198.51.100.12", "tcp:8080:80");
	add(&d2, "cache", "198.18.0.102", "198.51.100.41", "");
	add(&d2, "mesh", "0.0.0.0", "198.51.100.31", "tcp:30080:80");
	assert_int_equal(lb_apply(p, &actual, &d2, &st), 0);
	dump_ops(p);
	assert_int_equal(st.applied, 3);
	assert_int_equal(st.failed, 0);
	assert_int_equal(lb_fake_nops(p), 3);
	assert_string_equal(lb_fake_op(p, 0), "svc_del db");
	assert_true(has_op(p, "replace web 198.18.0.100 198.51.100.11,198.51.100.12,198.51.100.13 tcp:8080:80"));
	assert_true(has_op(p, "svc_set cache 198.18.0.102 198.51.100.41"));
	assert_int_equal(lb_fake_count(p, "replace mesh"), 0);

	/* The armed dump failure is still there: no dump happened. */
	lb_fake_clear_ops(p);
	assert_int_equal(lb_reconcile(p, &d2, &st), -EIO);
	assert_int_equal(lb_fake_nops(p), 0);
	/* And the fake's kernel is what a reconcile would have made. */
	assert_int_equal(lb_reconcile(p, &d2, &st), 0);
	assert_int_equal(st.applied, 0);

	/* apply trusts its actual state: a service lost behind its back is
	 * not seen (lbd's periodic resync is what finds it). */
	lb_state_copy(&actual, &d2);
	assert_int_equal(p->ops->svc_del(p->ctx, lb_state_find(&d2, "cache")), 0);
	lb_fake_clear_ops(p);
	assert_int_equal(lb_apply(p, &actual, &d2, &st), 0);
	assert_int_equal(st.applied, 0);
	assert_int_equal(lb_reconcile(p, &d2, &st), 0);
	assert_int_equal(st.applied, 1);
	assert_true(has_op(p, "svc_set cache 198.18.0.102 198.51.100.41"));

	/* A failed op is counted and the others go on, as in reconcile. */
	lb_state_copy(&actual, &d2);
	lb_state_clear(&d);
	lb_state_init(&d);
	add(&d, "web", "198.18.0.100", "198.51.100.11", "tcp:8080:80");
	add(&d, "cache", "198.18.0.102", "198.51.100.42", "");
	lb_fake_clear_ops(p);
	lb_fake_fail(p, "replace web", -ENOMEM);
	assert_int_equal(lb_apply(p, &actual, &d, &st), -ENOMEM);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.applied, 2); /* mesh deleted, cache replaced */
	assert_int_equal(lb_fake_count(p, "svc_del mesh"), 1);
	assert_int_equal(lb_fake_count(p, "replace cache"), 1);

	lb_state_clear(&d);
	lb_state_clear(&d2);
	lb_state_clear(&actual);
	lb_provider_free(p);
}

/* ---- nftables text ---- */

static void test_nft_table_name(void **unused)
{
	(void)unused;
	char t[32];
	assert_int_equal(lb_nft_table_name(NULL, t, sizeof(t)), 0);
	assert_string_equal(t, "swarm_lb");
	assert_int_equal(lb_nft_table_name("lbt-", t, sizeof(t)), 0);
	assert_string_equal(t, "lbt-swarm_lb");
	assert_int_equal(lb_nft_table_name("1ab", t, sizeof(t)), -EINVAL);
	assert_int_equal(lb_nft_table_name("a b", t, sizeof(t)), -EINVAL);
	assert_int_equal(lb_nft_table_name("toolong", t, sizeof(t)), -EINVAL);
	assert_int_equal(lb_nft_table_name("ab", t, 8), -ENAMETOOLONG);
}

static void test_nft_add(void **unused)
{
	(void)unused;
	struct lb_state st;
	lb_state_init(&st);
	add(&st, "web", "198.18.0.100", "198.51.100.12,198.51.100.11", "tcp:8080:80,udp:8053:53");
	char *cmd = lb_nft_set_cmd("swarm_lb", NULL, &st.svcs[0], false, true);
	assert_string_equal(cmd,
		"add chain ip swarm_lb svc_web\n"
		"flush chain ip swarm_lb svc_web\n"
		"add rule ip swarm_lb svc_web ip daddr 198.18.0.100 dnat to numgen inc mod 2 "
			"map { 0 : 198.51.100.11, 1 : 198.51.100.12 }\n"
		"add rule ip swarm_lb svc_web ip daddr 198.18.0.100 dnat to 198.51.100.11\n"
		"add rule ip swarm_lb svc_web tcp dport 8080 dnat to numgen inc mod 2 "
			"map { 0 : 198.51.100.11, 1 : 198.51.100.12 } : 80\n"
		"add rule ip swarm_lb svc_web tcp dport 8080 dnat to 198.51.100.11 : 80\n"
		"add rule ip swarm_lb svc_web udp dport 8053 dnat to numgen inc mod 2 "
			"map { 0 : 198.51.100.11, 1 : 198.51.100.12 } : 53\n"
		"add rule ip swarm_lb svc_web udp dport 8053 dnat to 198.51.100.11 : 53\n"
		"add element ip swarm_lb vips { 198.18.0.100 : goto svc_web }\n"
		"add element ip swarm_lb ports { tcp . 8080 : goto svc_web }\n"
		"add element ip swarm_lb ports { udp . 8053 : goto svc_web }\n");
	free(cmd);

	/* With the skeleton first: idempotent (base chains flushed and
	 * refilled), and never a flush of the table. */
	cmd = lb_nft_set_cmd("swarm_lb", NULL, &st.svcs[0], true, true);
	char *sk = lb_nft_skeleton_cmd("swarm_lb", true);
	assert_true(strncmp(cmd, sk, strlen(sk)) == 0);
	assert_non_null(strstr(sk, "add table ip swarm_lb\n"));
	assert_non_null(strstr(sk, "add map ip swarm_lb vips { type ipv4_addr : verdict; }\n"));
	assert_non_null(strstr(sk, "type nat hook output priority -100;"));
	assert_non_null(strstr(sk, "add rule ip swarm_lb output ip daddr vmap @vips\n"));
	assert_non_null(strstr(sk, "flush chain ip swarm_lb prerouting\n"));
	assert_non_null(strstr(sk, "meta l4proto . th dport vmap @ports\n"));
	assert_null(strstr(sk, "flush table"));
	assert_null(strstr(sk, "flush ruleset"));
	free(sk);
	free(cmd);
	lb_state_clear(&st);
}

static void test_nft_update_remove(void **unused)
{
	(void)unused;
	struct lb_state st;
	lb_state_init(&st);
	struct lb_state nst;
	lb_state_init(&nst);
	add(&st, "web", "198.18.0.100", "198.51.100.11,198.51.100.12", "tcp:8080:80,udp:8053:53");
	add(&nst, "web", "198.18.0.101", "198.51.100.12,198.51.100.13,198.51.100.14", "tcp:8080:8080");
	add(&st, "web3", "198.18.0.102", "", "tcp:9090:90");

	/* Backends change, the VIP moves, udp 8053 goes, tcp 8080 stays:
	 * old entries not kept are deleted in the same batch, the chain is
	 * flushed and refilled (N changed), the new VIP's entry is added and
	 * the kept port's entry is left alone (not added again). */
	char *cmd = lb_nft_set_cmd("swarm_lb", &st.svcs[0], &nst.svcs[0], false, true);
	assert_string_equal(cmd,
		"delete element ip swarm_lb vips { 198.18.0.100 }\n"
		"delete element ip swarm_lb ports { udp . 8053 }\n"
		"add chain ip swarm_lb svc_web\n"
		"flush chain ip swarm_lb svc_web\n"
		"add rule ip swarm_lb svc_web ip daddr 198.18.0.101 dnat to numgen inc mod 3 "
			"map { 0 : 198.51.100.12, 1 : 198.51.100.13, 2 : 198.51.100.14 }\n"
		"add rule ip swarm_lb svc_web ip daddr 198.18.0.101 dnat to 198.51.100.12\n"
		"add rule ip swarm_lb svc_web tcp dport 8080 dnat to numgen inc mod 3 "
			"map { 0 : 198.51.100.12, 1 : 198.51.100.13, 2 : 198.51.100.14 } : 8080\n"
		"add rule ip swarm_lb svc_web tcp dport 8080 dnat to 198.51.100.12 : 8080\n"
		"add element ip swarm_lb vips { 198.18.0.101 : goto svc_web }\n");
	free(cmd);

	/* No backends: rejects, and the map entries still lead here. */
	cmd = lb_nft_set_cmd("t", NULL, &st.svcs[1], false, true);
	assert_string_equal(cmd,
		"add chain ip t svc_web3\n"
		"flush chain ip t svc_web3\n"
		"add rule ip t svc_web3 meta l4proto tcp reject with tcp reset\n"
		"add rule ip t svc_web3 reject\n"
		"add element ip t vips { 198.18.0.102 : goto svc_web3 }\n"
		"add element ip t ports { tcp . 9090 : goto svc_web3 }\n");
	free(cmd);

	cmd = lb_nft_del_cmd("swarm_lb", &st.svcs[0]);
	assert_string_equal(cmd,
		"delete element ip swarm_lb vips { 198.18.0.100 }\n"
		"delete element ip swarm_lb ports { tcp . 8080 }\n"
		"delete element ip swarm_lb ports { udp . 8053 }\n"
		"flush chain ip swarm_lb svc_web\n"
		"delete chain ip swarm_lb svc_web\n");
	free(cmd);

	/* A chain found without its map entries (VIP 0.0.0.0): the chain only. */
	struct lb_service bare = { .id = "web" };
	cmd = lb_nft_del_cmd("swarm_lb", &bare);
	assert_string_equal(cmd, "flush chain ip swarm_lb svc_web\ndelete chain ip swarm_lb svc_web\n");
	free(cmd);
	lb_state_clear(&st);
	lb_state_clear(&nst);
}

/* A service with published ports only: no vips element, no VIP rule; a
 * service that loses its VIP drops its vips element. */
static void test_nft_ports_only(void **unused)
{
	(void)unused;
	struct lb_state st;
	lb_state_init(&st);
	add(&st, "mesh", "0.0.0.0", "198.51.100.12,198.51.100.11", "tcp:30080:80,udp:30053:53");
	add(&st, "idle", "0.0.0.0", "", "tcp:30090:90");
	struct lb_state old;
	lb_state_init(&old);
	add(&old, "mesh", "198.18.0.100", "198.51.100.11", "tcp:30080:80");

	char *cmd = lb_nft_set_cmd("swarm_lb", NULL, &st.svcs[0], false, true);
	assert_string_equal(cmd,
		"add chain ip swarm_lb svc_mesh\n"
		"flush chain ip swarm_lb svc_mesh\n"
		"add rule ip swarm_lb svc_mesh tcp dport 30080 dnat to numgen inc mod 2 "
			"map { 0 : 198.51.100.11, 1 : 198.51.100.12 } : 80\n"
		"add rule ip swarm_lb svc_mesh tcp dport 30080 dnat to 198.51.100.11 : 80\n"
		"add rule ip swarm_lb svc_mesh udp dport 30053 dnat to numgen inc mod 2 "
			"map { 0 : 198.51.100.11, 1 : 198.51.100.12 } : 53\n"
		"add rule ip swarm_lb svc_mesh udp dport 30053 dnat to 198.51.100.11 : 53\n"
		"add element ip swarm_lb ports { tcp . 30080 : goto svc_mesh }\n"
		"add element ip swarm_lb ports { udp . 30053 : goto svc_mesh }\n");
	assert_null(strstr(cmd, "vips"));
	assert_null(strstr(cmd, "ip daddr"));
	assert_null(strstr(cmd, "0.0.0.0"));
	free(cmd);

	/* No backends: the rejects and the port entries. */
	cmd = lb_nft_set_cmd("t", NULL, &st.svcs[1], false, false);
	assert_string_equal(cmd,
		"add chain ip t svc_idle\n"
		"flush chain ip t svc_idle\n"
		"add rule ip t svc_idle meta l4proto tcp reject with tcp reset\n"
		"add rule ip t svc_idle reject\n"
		"add element ip t ports { tcp . 30090 : goto svc_idle }\n");
	free(cmd);

	/* From a VIP service: its vips element goes in the same batch. */
	cmd = lb_nft_set_cmd("t", &old.svcs[0], &st.svcs[0], false, true);
	assert_true(starts_with(cmd, "delete element ip t vips { 198.18.0.100 }\n"
				     "add chain ip t svc_mesh\n"));
	assert_null(strstr(cmd, "add element ip t vips"));
	assert_null(strstr(cmd, "ip daddr"));
	free(cmd);
	/* And back: the VIP comes (only the udp port goes). */
	cmd = lb_nft_set_cmd("t", &st.svcs[0], &old.svcs[0], false, true);
	assert_true(starts_with(cmd, "delete element ip t ports { udp . 30053 }\n"
				     "add chain ip t svc_mesh\n"));
	assert_non_null(strstr(cmd, "add rule ip t svc_mesh ip daddr 198.18.0.100 dnat to "));
	assert_non_null(strstr(cmd, "add element ip t vips { 198.18.0.100 : goto svc_mesh }\n"));
	free(cmd);

	cmd = lb_nft_del_cmd("t", &st.svcs[0]);
	assert_string_equal(cmd,
		"delete element ip t ports { tcp . 30080 }\n"
		"delete element ip t ports { udp . 30053 }\n"
		"flush chain ip t svc_mesh\n"
		"delete chain ip t svc_mesh\n");
	free(cmd);
	lb_state_clear(&st);
	lb_state_clear(&old);
}

/* keep_source: the same skeleton without the masquerade rule (its chain
 * still made and flushed, so that switching either way is one batch). */
static void test_nft_keep_source(void **unused)
{
	(void)unused;
	char *masq = lb_nft_skeleton_cmd("swarm_lb", true);
	char *keep = lb_nft_skeleton_cmd("swarm_lb", false);
	assert_non_null(strstr(masq, "masquerade"));
	assert_null(strstr(keep, "masquerade"));
	assert_non_null(strstr(keep, "add chain ip swarm_lb postrouting { type nat hook postrouting "
				     "priority 100; policy accept; }\n"));
	assert_non_null(strstr(keep, "flush chain ip swarm_lb postrouting\n"));
	assert_non_null(strstr(keep, "add rule ip swarm_lb output ip daddr vmap @vips\n"));
	assert_non_null(strstr(keep, "add rule ip swarm_lb prerouting fib daddr type local "
				     "meta l4proto . th dport vmap @ports\n"));
	/* Everything else is the same text: masq = keep + the one rule. */
	assert_true(starts_with(masq, keep));
	assert_string_equal(masq + strlen(keep),
		"add rule ip swarm_lb postrouting ct status dnat fib saddr type != local masquerade\n");

	struct lb_state st;
	lb_state_init(&st);
	add(&st, "mesh", "0.0.0.0", "198.51.100.11", "tcp:30080:80");
	char *cmd = lb_nft_set_cmd("swarm_lb", NULL, &st.svcs[0], true, false);
	assert_true(starts_with(cmd, keep));
	assert_null(strstr(cmd, "masquerade"));
	free(cmd);
	/* skeleton = false: masq does not matter. */
	cmd = lb_nft_set_cmd("swarm_lb", NULL, &st.svcs[0], false, false);
	char *cmd2 = lb_nft_set_cmd("swarm_lb", NULL, &st.svcs[0], false, true);
	assert_string_equal(cmd, cmd2);
	free(cmd);
	free(cmd2);
	free(masq);
	free(keep);

	/* The IPVS marks table likewise; a ports-only service has no vips
	 * element there either. */
	masq = lb_ipvs_marks_skeleton_cmd("swarm_lbm", true);
	keep = lb_ipvs_marks_skeleton_cmd("swarm_lbm", false);
	assert_non_null(strstr(masq, "masquerade"));
	assert_null(strstr(keep, "masquerade"));
	assert_non_null(strstr(keep, "flush chain ip swarm_lbm postrouting\n"));
	assert_true(starts_with(masq, keep));
	free(masq);
	free(keep);
	uint32_t marks[1] = { LB_IPVS_MARK_BASE | 2 };
	cmd = lb_ipvs_marks_set_cmd("swarm_lbm", NULL, &st.svcs[0], LB_IPVS_MARK_BASE | 1, marks);
	assert_string_equal(cmd,
		"add element ip swarm_lbm ports { tcp . 30080 comment \"mesh\" : 0x53570002 }\n");
	free(cmd);
	lb_state_clear(&st);
}

/* ---- nftables parse ---- */

/* `nft -j list table ip swarm_lb` (nftables 1.0.6) after programming
 * web (198.18.0.100 -> .11,.12; tcp 8080:80, udp 8053:53), empty
 * (198.18.0.101, no backends, tcp 9090) and one (198.18.0.102 -> .12),
 * each balancing rule followed by its backstop. */
static const char fixture[] =
	"{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"release_name\": \"Lester Gooch #5\", "
	"\"json_schema_version\": 1}}, {\"table\": {\"family\": \"ip\", \"name\": \"swarm_lb\", \"handle"
	"\": 1}}, {\"map\": {\"family\": \"ip\", \"name\": \"vips\", \"table\": \"swarm_lb\", \"type\": "
	"\"ipv4_addr\", \"handle\": 1, \"map\": \"verdict\", \"elem\": [[\"198.18.0.100\", {\"goto\": {\""
	"target\": \"svc_web\"}}], [\"198.18.0.101\", {\"goto\": {\"target\": \"svc_empty\"}}], [\"198.18"
	".0.102\", {\"goto\": {\"target\": \"svc_one\"}}]]}}, {\"map\": {\"family\": \"ip\", \"name\": \""
	"ports\", \"table\": \"swarm_lb\", \"type\": [\"inet_proto\", \"inet_service\"], \"handle\": 2, "
	"\"map\": \"verdict\", \"elem\": [[{\"concat\": [\"udp\", 8053]}, {\"goto\": {\"target\": \"svc_w"
	"eb\"}}], [{\"concat\": [\"tcp\", 9090]}, {\"goto\": {\"target\": \"svc_empty\"}}], [{\"concat\":"
	" [\"tcp\", 8080]}, {\"goto\": {\"target\": \"svc_web\"}}]]}}, {\"chain\": {\"family\": \"ip\", "
	"\"table\": \"swarm_lb\", \"name\": \"output\", \"handle\": 3, \"type\": \"nat\", \"hook\": \"out"
	"put\", \"prio\": -100, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"s"
	"warm_lb\", \"name\": \"prerouting\", \"handle\": 6, \"type\": \"nat\", \"hook\": \"prerouting\","
	" \"prio\": -100, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"swarm_l"
	"b\", \"name\": \"postrouting\", \"handle\": 9, \"type\": \"nat\", \"hook\": \"postrouting\", \"p"
	"rio\": 100, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"swarm_lb\", "
	"\"name\": \"svc_web\", \"handle\": 11}}, {\"chain\": {\"family\": \"ip\", \"table\": \"swarm_lb"
	"\", \"name\": \"svc_empty\", \"handle\": 21}}, {\"chain\": {\"family\": \"ip\", \"table\": \"swa"
	"rm_lb\", \"name\": \"svc_one\", \"handle\": 24}}, {\"rule\": {\"family\": \"ip\", \"table\": \"s"
	"warm_lb\", \"chain\": \"output\", \"handle\": 4, \"expr\": [{\"vmap\": {\"key\": {\"payload\": {"
	"\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"data\": \"@vips\"}}]}}, {\"rule\": {\"family\": "
	"\"ip\", \"table\": \"swarm_lb\", \"chain\": \"output\", \"handle\": 5, \"expr\": [{\"match\": {"
	"\"op\": \"!=\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\""
	": {\"prefix\": {\"addr\": \"127.0.0.0\", \"len\": 8}}}}, {\"match\": {\"op\": \"==\", \"left\": "
	"{\"fib\": {\"result\": \"type\", \"flags\": [\"daddr\"]}}, \"right\": \"local\"}}, {\"vmap\": {"
	"\"key\": {\"concat\": [{\"meta\": {\"key\": \"l4proto\"}}, {\"payload\": {\"protocol\": \"th\", "
	"\"field\": \"dport\"}}]}, \"data\": \"@ports\"}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": "
	"\"swarm_lb\", \"chain\": \"prerouting\", \"handle\": 7, \"expr\": [{\"vmap\": {\"key\": {\"paylo"
	"ad\": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"data\": \"@vips\"}}]}}, {\"rule\": {\"fam"
	"ily\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"prerouting\", \"handle\": 8, \"expr\": [{\""
	"match\": {\"op\": \"==\", \"left\": {\"fib\": {\"result\": \"type\", \"flags\": [\"daddr\"]}}, "
	"\"right\": \"local\"}}, {\"vmap\": {\"key\": {\"concat\": [{\"meta\": {\"key\": \"l4proto\"}}, {"
	"\"payload\": {\"protocol\": \"th\", \"field\": \"dport\"}}]}, \"data\": \"@ports\"}}]}}, {\"rule"
	"\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"postrouting\", \"handle\": 10, \""
	"expr\": [{\"match\": {\"op\": \"in\", \"left\": {\"ct\": {\"key\": \"status\"}}, \"right\": \"dn"
	"at\"}}, {\"match\": {\"op\": \"!=\", \"left\": {\"fib\": {\"result\": \"type\", \"flags\": [\"sa"
	"ddr\"]}}, \"right\": \"local\"}}, {\"masquerade\": null}]}}, {\"rule\": {\"family\": \"ip\", \"t"
	"able\": \"swarm_lb\", \"chain\": \"svc_web\", \"handle\": 13, \"expr\": [{\"match\": {\"op\": \""
	"==\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": \"198.18"
	".0.100\"}}, {\"dnat\": {\"addr\": {\"map\": {\"key\": {\"numgen\": {\"mode\": \"inc\", \"mod\": "
	"2, \"offset\": 0}}, \"data\": {\"set\": [[0, \"198.51.100.11\"], [1, \"198.51.100.12\"]]}}}}}]}}"
	", {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_web\", \"handle\": 1"
	"4, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"fiel"
	"d\": \"daddr\"}}, \"right\": \"198.18.0.100\"}}, {\"dnat\": {\"addr\": \"198.51.100.11\"}}]}}, {"
	"\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_web\", \"handle\": 16, "
	"\"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"tcp\", \"field"
	"\": \"dport\"}}, \"right\": 8080}}, {\"dnat\": {\"addr\": {\"map\": {\"key\": {\"numgen\": {\"mo"
	"de\": \"inc\", \"mod\": 2, \"offset\": 0}}, \"data\": {\"set\": [[0, \"198.51.100.11\"], [1, \"1"
	"98.51.100.12\"]]}}}, \"port\": 80}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\","
	" \"chain\": \"svc_web\", \"handle\": 17, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"pa"
	"yload\": {\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\": 8080}}, {\"dnat\": {\"addr\""
	": \"198.51.100.11\", \"port\": 80}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\","
	" \"chain\": \"svc_web\", \"handle\": 19, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"pa"
	"yload\": {\"protocol\": \"udp\", \"field\": \"dport\"}}, \"right\": 8053}}, {\"dnat\": {\"addr\""
	": {\"map\": {\"key\": {\"numgen\": {\"mode\": \"inc\", \"mod\": 2, \"offset\": 0}}, \"data\": {"
	"\"set\": [[0, \"198.51.100.11\"], [1, \"198.51.100.12\"]]}}}, \"port\": 53}}]}}, {\"rule\": {\"f"
	"amily\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_web\", \"handle\": 20, \"expr\": [{\""
	"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"udp\", \"field\": \"dport\"}}"
	", \"right\": 8053}}, {\"dnat\": {\"addr\": \"198.51.100.11\", \"port\": 53}}]}}, {\"rule\": {\"f"
	"amily\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_empty\", \"handle\": 22, \"expr\": [{"
	"\"reject\": {\"type\": \"tcp reset\"}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb"
	"\", \"chain\": \"svc_empty\", \"handle\": 23, \"expr\": [{\"reject\": {\"type\": \"icmp\", \"exp"
	"r\": \"port-unreachable\"}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain"
	"\": \"svc_one\", \"handle\": 26, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\":"
	" {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": \"198.18.0.102\"}}, {\"dnat\": {\"add"
	"r\": {\"map\": {\"key\": {\"numgen\": {\"mode\": \"inc\", \"mod\": 1, \"offset\": 0}}, \"data\":"
	" {\"set\": [[0, \"198.51.100.12\"]]}}}}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_"
	"lb\", \"chain\": \"svc_one\", \"handle\": 27, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": "
	"{\"payload\": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": \"198.18.0.102\"}}, {\"d"
	"nat\": {\"addr\": \"198.51.100.12\"}}]}}]}";

/* What lb_nft_parse says to delete: none in the fixtures (checked by
 * test_nft_parse_strays, which frees it). */
static char *strays;

/* A copy of s with the first occurrence of from replaced by to. */
static char *replaced(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	assert_non_null(at);
	size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
	return out;
}

static void test_nft_parse(void **unused)
{
	(void)unused;
	struct lb_state a;
	bool sk;
	lb_state_init(&a);
	assert_int_equal(lb_nft_parse(fixture, "swarm_lb", true, &a, &sk, &strays), 0);
	assert_true(sk);
	assert_int_equal(a.n_svcs, 3);

	struct lb_state d;
	lb_state_init(&d);
	add(&d, "web", "198.18.0.100", "198.51.100.11,198.51.100.12", "tcp:8080:80,udp:8053:53");
	add(&d, "empty", "198.18.0.101", "", "tcp:9090:90");
	add(&d, "one", "198.18.0.102", "198.51.100.12", "");
	for (size_t i = 0; i < d.n_svcs; i++) {
		const struct lb_service *s = lb_state_find(&a, d.svcs[i].id);
		assert_non_null(s);
		assert_true(s->complete);
		assert_true(lb_service_same(s, &d.svcs[i]));
	}
	lb_state_clear(&a);

	/* Another table's name: nothing is ours. */
	assert_int_equal(lb_nft_parse(fixture, "other", true, &a, &sk, &strays), 0);
	assert_int_equal(a.n_svcs, 0);
	assert_false(sk);

	/* The chain's VIP disagrees with the map's: incomplete. */
	char *j = replaced(fixture, "\"right\": \"198.18.0.102\"", "\"right\": \"198.18.0.109\"");
	assert_int_equal(lb_nft_parse(j, "swarm_lb", true, &a, &sk, &strays), 0);
	assert_false(lb_state_find(&a, "one")->complete);
	assert_true(lb_state_find(&a, "web")->complete);
	assert_true(sk);
	free(j);
	lb_state_clear(&a);

	/* Backstops: one missing (a table of an earlier lbd), one sending
	 * elsewhere than a backend, one to another port: each makes its
	 * chain incomplete, to be rewritten; the others stay complete. */
	static const char *const bad_backstops[][3] = {
		{ ", {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_one\", "
		  "\"handle\": 27, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": "
		  "{\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": \"198.18.0.102\"}}, "
		  "{\"dnat\": {\"addr\": \"198.51.100.12\"}}]}}", "", "one" },
		{ "{\"dnat\": {\"addr\": \"198.51.100.11\", \"port\": 80}}",
		  "{\"dnat\": {\"addr\": \"198.51.100.13\", \"port\": 80}}", "web" },
		{ "{\"dnat\": {\"addr\": \"198.51.100.11\", \"port\": 80}}",
		  "{\"dnat\": {\"addr\": \"198.51.100.11\", \"port\": 81}}", "web" },
	};
	for (size_t i = 0; i < sizeof(bad_backstops) / sizeof(bad_backstops[0]); i++) {
		j = replaced(fixture, bad_backstops[i][0], bad_backstops[i][1]);
		assert_int_equal(lb_nft_parse(j, "swarm_lb", true, &a, &sk, &strays), 0);
		for (size_t k = 0; k < d.n_svcs; k++)
			assert_int_equal(lb_state_find(&a, d.svcs[k].id)->complete,
					 strcmp(d.svcs[k].id, bad_backstops[i][2]) != 0);
		free(j);
		lb_state_clear(&a);
	}

	/* A base chain rule missing its masquerade: the skeleton is redone. */
	j = replaced(fixture, "{\"masquerade\": null}", "{\"counter\": null}");
	assert_int_equal(lb_nft_parse(j, "swarm_lb", true, &a, &sk, &strays), 0);
	assert_false(sk);
	assert_int_equal(a.n_svcs, 3);
	free(j);
	lb_state_clear(&a);

	/* A port entry without its rule: incomplete. */
	j = replaced(fixture, "\"field\": \"dport\"}}, \"right\": 8053", "\"field\": \"dport\"}}, \"right\": 8054");
	assert_int_equal(lb_nft_parse(j, "swarm_lb", true, &a, &sk, &strays), 0);
	assert_false(lb_state_find(&a, "web")->complete);
	free(j);
	lb_state_clear(&a);

	assert_int_equal(lb_nft_parse("not json", "swarm_lb", true, &a, &sk, &strays), -EINVAL);
	assert_int_equal(lb_nft_parse("{\"x\": 1}", "swarm_lb", true, &a, &sk, &strays), -EINVAL);
	lb_state_clear(&d);
}

/* `nft -j list table ip swarm_lb` (nftables 1.0.6) after a keep_source
 * provider's batches: skeleton without the masquerade rule, mesh
 * (published ports only: tcp 30080 is 8080 here, udp 5353 -> 53, backends
 * .11,.12) and idle (tcp 9090 -> 90, no backends); no vips element. */
static const char fixture_keep[] =
	"{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"release_name\": \"Lester Gooch #5\", "
	"\"json_schema_version\": 1}}, {\"table\": {\"family\": \"ip\", \"name\": \"swarm_lb\", \"handle"
	"\": 1}}, {\"map\": {\"family\": \"ip\", \"name\": \"vips\", \"table\": \"swarm_lb\", \"type\": "
	"\"ipv4_addr\", \"handle\": 1, \"map\": \"verdict\"}}, {\"map\": {\"family\": \"ip\", \"name\": "
	"\"ports\", \"table\": \"swarm_lb\", \"type\": [\"inet_proto\", \"inet_service\"], \"handle\": 2,"
	" \"map\": \"verdict\", \"elem\": [[{\"concat\": [\"tcp\", 9090]}, {\"goto\": {\"target\": \"svc_"
	"idle\"}}], [{\"concat\": [\"tcp\", 8080]}, {\"goto\": {\"target\": \"svc_mesh\"}}], [{\"concat\""
	": [\"udp\", 5353]}, {\"goto\": {\"target\": \"svc_mesh\"}}]]}}, {\"chain\": {\"family\": \"ip\","
	" \"table\": \"swarm_lb\", \"name\": \"output\", \"handle\": 3, \"type\": \"nat\", \"hook\": \"ou"
	"tput\", \"prio\": -100, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \""
	"swarm_lb\", \"name\": \"prerouting\", \"handle\": 6, \"type\": \"nat\", \"hook\": \"prerouting\""
	", \"prio\": -100, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"swarm_"
	"lb\", \"name\": \"postrouting\", \"handle\": 9, \"type\": \"nat\", \"hook\": \"postrouting\", \""
	"prio\": 100, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"swarm_lb\","
	" \"name\": \"svc_mesh\", \"handle\": 10}}, {\"chain\": {\"family\": \"ip\", \"table\": \"swarm_l"
	"b\", \"name\": \"svc_idle\", \"handle\": 17}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swar"
	"m_lb\", \"chain\": \"output\", \"handle\": 4, \"expr\": [{\"vmap\": {\"key\": {\"payload\": {\"p"
	"rotocol\": \"ip\", \"field\": \"daddr\"}}, \"data\": \"@vips\"}}]}}, {\"rule\": {\"family\": \"i"
	"p\", \"table\": \"swarm_lb\", \"chain\": \"output\", \"handle\": 5, \"expr\": [{\"match\": {\"op"
	"\": \"!=\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": {"
	"\"prefix\": {\"addr\": \"127.0.0.0\", \"len\": 8}}}}, {\"match\": {\"op\": \"==\", \"left\": {\""
	"fib\": {\"result\": \"type\", \"flags\": [\"daddr\"]}}, \"right\": \"local\"}}, {\"vmap\": {\"ke"
	"y\": {\"concat\": [{\"meta\": {\"key\": \"l4proto\"}}, {\"payload\": {\"protocol\": \"th\", \"fi"
	"eld\": \"dport\"}}]}, \"data\": \"@ports\"}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"sw"
	"arm_lb\", \"chain\": \"prerouting\", \"handle\": 7, \"expr\": [{\"vmap\": {\"key\": {\"payload\""
	": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"data\": \"@vips\"}}]}}, {\"rule\": {\"family"
	"\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"prerouting\", \"handle\": 8, \"expr\": [{\"mat"
	"ch\": {\"op\": \"==\", \"left\": {\"fib\": {\"result\": \"type\", \"flags\": [\"daddr\"]}}, \"ri"
	"ght\": \"local\"}}, {\"vmap\": {\"key\": {\"concat\": [{\"meta\": {\"key\": \"l4proto\"}}, {\"pa"
	"yload\": {\"protocol\": \"th\", \"field\": \"dport\"}}]}, \"data\": \"@ports\"}}]}}, {\"rule\": "
	"{\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_mesh\", \"handle\": 12, \"expr\":"
	" [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"tcp\", \"field\": \"dpor"
	"t\"}}, \"right\": 8080}}, {\"dnat\": {\"addr\": {\"map\": {\"key\": {\"numgen\": {\"mode\": \"in"
	"c\", \"mod\": 2, \"offset\": 0}}, \"data\": {\"set\": [[0, \"198.51.100.11\"], [1, \"198.51.100."
	"12\"]]}}}, \"port\": 80}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain\""
	": \"svc_mesh\", \"handle\": 13, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": "
	"{\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\": 8080}}, {\"dnat\": {\"addr\": \"198.5"
	"1.100.11\", \"port\": 80}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"chain"
	"\": \"svc_mesh\", \"handle\": 15, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\""
	": {\"protocol\": \"udp\", \"field\": \"dport\"}}, \"right\": 5353}}, {\"dnat\": {\"addr\": {\"ma"
	"p\": {\"key\": {\"numgen\": {\"mode\": \"inc\", \"mod\": 2, \"offset\": 0}}, \"data\": {\"set\":"
	" [[0, \"198.51.100.11\"], [1, \"198.51.100.12\"]]}}}, \"port\": 53}}]}}, {\"rule\": {\"family\":"
	" \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_mesh\", \"handle\": 16, \"expr\": [{\"match\""
	": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"udp\", \"field\": \"dport\"}}, \"rig"
	"ht\": 5353}}, {\"dnat\": {\"addr\": \"198.51.100.11\", \"port\": 53}}]}}, {\"rule\": {\"family\""
	": \"ip\", \"table\": \"swarm_lb\", \"chain\": \"svc_idle\", \"handle\": 18, \"expr\": [{\"reject"
	"\": {\"type\": \"tcp reset\"}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"swarm_lb\", \"ch"
	"ain\": \"svc_idle\", \"handle\": 19, \"expr\": [{\"reject\": {\"type\": \"icmp\", \"expr\": \"po"
	"rt-unreachable\"}}]}}]}";

/* Entries of our maps that lead to no service chain (a hand-made chain
 * holding a port and a VIP): deleted by the next batch, nothing else. */
static void test_nft_parse_strays(void **unused)
{
	(void)unused;
	struct lb_state a;
	bool sk;
	lb_state_init(&a);
	assert_int_equal(lb_nft_parse(fixture, "swarm_lb", true, &a, &sk, &strays), 0);
	assert_null(strays);
	lb_state_clear(&a);
	char *j = replaced(fixture, "[{\"concat\": [\"tcp\", 9090]}, {\"goto\": {\"target\": \"svc_empty\"}}]",
			   "[{\"concat\": [\"tcp\", 9090]}, {\"goto\": {\"target\": \"blocker\"}}]");
	char *j2 = replaced(j, "[\"198.18.0.102\", {\"goto\": {\"target\": \"svc_one\"}}]",
			    "[\"198.18.0.102\", {\"jump\": {\"target\": \"svc_gone\"}}]");
	assert_int_equal(lb_nft_parse(j2, "swarm_lb", true, &a, &sk, &strays), 0);
	assert_non_null(strays);
	assert_string_equal(strays, "delete element ip swarm_lb vips { 198.18.0.102 }\n"
				    "delete element ip swarm_lb ports { tcp . 9090 }\n");
	assert_true(sk);
	assert_true(lb_state_find(&a, "web")->complete);
	free(strays);
	strays = NULL;
	free(j);
	free(j2);
	lb_state_clear(&a);
}

static void test_nft_parse_keep_source(void **unused)
{
	(void)unused;
	struct lb_state a, d;
	bool sk;
	lb_state_init(&a);
	lb_state_init(&d);
	add(&d, "mesh", "0.0.0.0", "198.51.100.11,198.51.100.12", "tcp:8080:80,udp:5353:53");
	add(&d, "idle", "0.0.0.0", "", "tcp:9090:90");

	/* Without masquerade expected: the skeleton is right, and both
	 * ports-only services are complete and as desired. */
	assert_int_equal(lb_nft_parse(fixture_keep, "swarm_lb", false, &a, &sk, &strays), 0);
	assert_true(sk);
	assert_int_equal(a.n_svcs, 2);
	for (size_t i = 0; i < d.n_svcs; i++) {
		const struct lb_service *s = lb_state_find(&a, d.svcs[i].id);
		assert_non_null(s);
		assert_true(s->complete);
		assert_int_equal(s->vip.s_addr, 0);
		assert_true(lb_service_same(s, &d.svcs[i]));
	}
	lb_state_clear(&a);

	/* A masquerading provider reads the same services but wants its
	 * skeleton redone (the masquerade rule is missing). */
	assert_int_equal(lb_nft_parse(fixture_keep, "swarm_lb", true, &a, &sk, &strays), 0);
	assert_false(sk);
	assert_int_equal(a.n_svcs, 2);
	assert_true(lb_state_find(&a, "mesh")->complete);
	lb_state_clear(&a);

	/* And the other way: a masquerade rule where none should be. */
	assert_int_equal(lb_nft_parse(fixture, "swarm_lb", false, &a, &sk, &strays), 0);
	assert_false(sk);
	assert_int_equal(a.n_svcs, 3);
	lb_state_clear(&a);

	/* A ports-only chain whose map entries are gone: incomplete. */
	char *j = replaced(fixture_keep, "[{\"concat\": [\"tcp\", 9090]}, {\"goto\": {\"target\": \"svc_idle\"}}], ", "");
	assert_int_equal(lb_nft_parse(j, "swarm_lb", false, &a, &sk, &strays), 0);
	assert_true(sk);
	assert_false(lb_state_find(&a, "idle")->complete);
	assert_true(lb_state_find(&a, "mesh")->complete);
	free(j);
	lb_state_clear(&a);

	/* A VIP rule in a chain without a vips element: incomplete. */
	j = replaced(fixture_keep, "{\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\": 8080}}",
		     "{\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": \"198.18.0.100\"}}");
	char *j2 = replaced(j, "}}}, \"port\": 80}}", "}}}}}");
	free(j);
	j = j2;
	assert_int_equal(lb_nft_parse(j, "swarm_lb", false, &a, &sk, &strays), 0);
	assert_false(lb_state_find(&a, "mesh")->complete);
	free(j);
	lb_state_clear(&a);
	lb_state_clear(&d);
}

/* ---- IPVS messages ---- */

/* Parses a built message: header checks, top-level attributes into top. */
static void parse_top(struct nl_msg *m, uint8_t cmd, bool dump, struct nlattr **top)
{
	struct nlmsghdr *h = nlmsg_hdr(m);
	struct genlmsghdr *g = nlmsg_data(h);
	assert_int_equal(h->nlmsg_type, FAMILY);
	assert_int_equal(!!(h->nlmsg_flags & NLM_F_DUMP), dump);
	assert_int_equal(g->cmd, cmd);
	assert_int_equal(g->version, IPVS_GENL_VERSION);
	assert_int_equal(genlmsg_parse(h, 0, top, IPVS_CMD_ATTR_MAX, NULL), 0);
}

static void test_ipvs_service_msgs(void **unused)
{
	(void)unused;
	struct nl_msg *m;
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1], *sv[IPVS_SVC_ATTR_MAX + 1];
	uint32_t mark = LB_IPVS_MARK_BASE | 7;

	assert_int_equal(lb_ipvs_msg_service(FAMILY, IPVS_CMD_NEW_SERVICE, mark, &m), 0);
	parse_top(m, IPVS_CMD_NEW_SERVICE, false, top);
	assert_non_null(top[IPVS_CMD_ATTR_SERVICE]);
	assert_null(top[IPVS_CMD_ATTR_DEST]);
	assert_int_equal(nla_parse_nested(sv, IPVS_SVC_ATTR_MAX, top[IPVS_CMD_ATTR_SERVICE], NULL), 0);
	assert_int_equal(nla_get_u16(sv[IPVS_SVC_ATTR_AF]), AF_INET);
	assert_int_equal(nla_get_u32(sv[IPVS_SVC_ATTR_FWMARK]), mark);
	assert_string_equal(nla_get_string(sv[IPVS_SVC_ATTR_SCHED_NAME]), "rr");
	assert_int_equal(nla_len(sv[IPVS_SVC_ATTR_FLAGS]), sizeof(struct ip_vs_flags));
	struct ip_vs_flags fl;
	memcpy(&fl, nla_data(sv[IPVS_SVC_ATTR_FLAGS]), sizeof(fl));
	assert_int_equal(fl.flags, 0);                     /* no persistence */
	assert_int_equal(nla_get_u32(sv[IPVS_SVC_ATTR_TIMEOUT]), 0);
	assert_int_equal(nla_get_u32(sv[IPVS_SVC_ATTR_NETMASK]), 0xffffffffu);
	assert_null(sv[IPVS_SVC_ATTR_ADDR]);                /* a fwmark service */
	assert_null(sv[IPVS_SVC_ATTR_PORT]);
	/* The reply parser reads what a dump of it would say. */
	uint32_t got;
	char sched[16];
	assert_int_equal(lb_ipvs_parse_service(m, &got, sched, sizeof(sched)), 0);
	assert_int_equal(got, mark);
	assert_string_equal(sched, "rr");
	nlmsg_free(m);

	/* Delete: identity only. */
	assert_int_equal(lb_ipvs_msg_service(FAMILY, IPVS_CMD_DEL_SERVICE, mark, &m), 0);
	parse_top(m, IPVS_CMD_DEL_SERVICE, false, top);
	assert_int_equal(nla_parse_nested(sv, IPVS_SVC_ATTR_MAX, top[IPVS_CMD_ATTR_SERVICE], NULL), 0);
	assert_int_equal(nla_get_u16(sv[IPVS_SVC_ATTR_AF]), AF_INET);
	assert_int_equal(nla_get_u32(sv[IPVS_SVC_ATTR_FWMARK]), mark);
	assert_null(sv[IPVS_SVC_ATTR_SCHED_NAME]);
	nlmsg_free(m);

	/* Dump: no attributes. */
	assert_int_equal(lb_ipvs_msg_service(FAMILY, IPVS_CMD_GET_SERVICE, 0, &m), 0);
	parse_top(m, IPVS_CMD_GET_SERVICE, true, top);
	assert_null(top[IPVS_CMD_ATTR_SERVICE]);
	nlmsg_free(m);

	/* TCP timeout. */
	assert_int_equal(lb_ipvs_msg_timeout(FAMILY, LB_IPVS_TCP_TIMEOUT, &m), 0);
	parse_top(m, IPVS_CMD_SET_CONFIG, false, top);
	assert_int_equal(nla_get_u32(top[IPVS_CMD_ATTR_TIMEOUT_TCP]), 432000);
	assert_null(top[IPVS_CMD_ATTR_TIMEOUT_UDP]);
	nlmsg_free(m);
}

static void test_ipvs_dest_msgs(void **unused)
{
	(void)unused;
	struct nl_msg *m;
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1], *sv[IPVS_SVC_ATTR_MAX + 1];
	struct nlattr *de[IPVS_DEST_ATTR_MAX + 1];
	uint32_t mark = LB_IPVS_MARK_BASE | 8;
	struct in_addr b = ip4("198.51.100.11");

	assert_int_equal(lb_ipvs_msg_dest(FAMILY, IPVS_CMD_NEW_DEST, mark, b, 8080, &m), 0);
	parse_top(m, IPVS_CMD_NEW_DEST, false, top);
	assert_int_equal(nla_parse_nested(sv, IPVS_SVC_ATTR_MAX, top[IPVS_CMD_ATTR_SERVICE], NULL), 0);
	assert_int_equal(nla_get_u32(sv[IPVS_SVC_ATTR_FWMARK]), mark);
	assert_int_equal(nla_get_u16(sv[IPVS_SVC_ATTR_AF]), AF_INET);
	assert_int_equal(nla_parse_nested(de, IPVS_DEST_ATTR_MAX, top[IPVS_CMD_ATTR_DEST], NULL), 0);
	assert_int_equal(nla_len(de[IPVS_DEST_ATTR_ADDR]), 16);
	assert_memory_equal(nla_data(de[IPVS_DEST_ATTR_ADDR]), &b, 4);
	assert_int_equal(nla_get_u16(de[IPVS_DEST_ATTR_PORT]), htons(8080));
	assert_int_equal(nla_get_u32(de[IPVS_DEST_ATTR_FWD_METHOD]), IP_VS_CONN_F_MASQ);
	assert_int_equal(nla_get_u32(de[IPVS_DEST_ATTR_WEIGHT]), 1);
	assert_int_equal(nla_get_u32(de[IPVS_DEST_ATTR_U_THRESH]), 0);
	assert_int_equal(nla_get_u32(de[IPVS_DEST_ATTR_L_THRESH]), 0);
	assert_int_equal(nla_get_u16(de[IPVS_DEST_ATTR_ADDR_FAMILY]), AF_INET);
	struct in_addr got;
	uint16_t port;
	assert_int_equal(lb_ipvs_parse_dest(m, &got, &port), 0);
	assert_int_equal(got.s_addr, b.s_addr);
	assert_int_equal(port, 8080);
	nlmsg_free(m);

	/* The VIP's service: port 0 keeps the client's port. */
	assert_int_equal(lb_ipvs_msg_dest(FAMILY, IPVS_CMD_NEW_DEST, mark, b, 0, &m), 0);
	parse_top(m, IPVS_CMD_NEW_DEST, false, top);
	assert_int_equal(nla_parse_nested(de, IPVS_DEST_ATTR_MAX, top[IPVS_CMD_ATTR_DEST], NULL), 0);
	assert_int_equal(nla_get_u16(de[IPVS_DEST_ATTR_PORT]), 0);
	nlmsg_free(m);

	/* Delete: address and port only. */
	assert_int_equal(lb_ipvs_msg_dest(FAMILY, IPVS_CMD_DEL_DEST, mark, b, 8080, &m), 0);
	parse_top(m, IPVS_CMD_DEL_DEST, false, top);
	assert_int_equal(nla_parse_nested(de, IPVS_DEST_ATTR_MAX, top[IPVS_CMD_ATTR_DEST], NULL), 0);
	assert_non_null(de[IPVS_DEST_ATTR_ADDR]);
	assert_non_null(de[IPVS_DEST_ATTR_PORT]);
	assert_null(de[IPVS_DEST_ATTR_WEIGHT]);
	assert_null(de[IPVS_DEST_ATTR_FWD_METHOD]);
	nlmsg_free(m);

	/* Dump of one service's destinations. */
	assert_int_equal(lb_ipvs_msg_dest(FAMILY, IPVS_CMD_GET_DEST, mark, b, 0, &m), 0);
	parse_top(m, IPVS_CMD_GET_DEST, true, top);
	assert_non_null(top[IPVS_CMD_ATTR_SERVICE]);
	assert_null(top[IPVS_CMD_ATTR_DEST]);
	nlmsg_free(m);

	/* Replies the parsers refuse: an IPv6 destination, a non-IPv4 service,
	 * a message without the nested attribute. */
	m = nlmsg_alloc();
	genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, FAMILY, 0, 0, IPVS_CMD_NEW_DEST, IPVS_GENL_VERSION);
	struct nlattr *n = nla_nest_start(m, IPVS_CMD_ATTR_DEST);
	uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	nla_put(m, IPVS_DEST_ATTR_ADDR, 16, a6);
	nla_put_u16(m, IPVS_DEST_ATTR_PORT, htons(80));
	nla_put_u16(m, IPVS_DEST_ATTR_ADDR_FAMILY, AF_INET6);
	nla_nest_end(m, n);
	assert_int_equal(lb_ipvs_parse_dest(m, &got, &port), -EINVAL);
	uint32_t mk;
	char sched[16];
	assert_int_equal(lb_ipvs_parse_service(m, &mk, sched, sizeof(sched)), -EINVAL);
	nlmsg_free(m);
	m = nlmsg_alloc();
	genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, FAMILY, 0, 0, IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION);
	n = nla_nest_start(m, IPVS_CMD_ATTR_SERVICE);
	nla_put_u16(m, IPVS_SVC_ATTR_AF, AF_INET);
	nla_put_u16(m, IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP); /* a VIP:port service, not ours */
	nla_put_string(m, IPVS_SVC_ATTR_SCHED_NAME, "wlc");
	nla_nest_end(m, n);
	assert_int_equal(lb_ipvs_parse_service(m, &mk, sched, sizeof(sched)), 0);
	assert_int_equal(mk, 0);
	assert_string_equal(sched, "wlc");
	nlmsg_free(m);
}

static void test_ipvs_marks_cmds(void **unused)
{
	(void)unused;
	struct lb_state st, nst;
	lb_state_init(&st);
	lb_state_init(&nst);
	add(&st, "web", "198.18.0.100", "198.51.100.11", "tcp:8080:80,udp:8053:53");
	add(&nst, "web", "198.18.0.101", "198.51.100.11", "tcp:8080:80");
	uint32_t marks[2] = { LB_IPVS_MARK_BASE | 2, LB_IPVS_MARK_BASE | 3 };
	char *cmd = lb_ipvs_marks_set_cmd("swarm_lbm", NULL, &st.svcs[0], LB_IPVS_MARK_BASE | 1, marks);
	assert_string_equal(cmd,
		"add element ip swarm_lbm vips { 198.18.0.100 comment \"web\" : 0x53570001 }\n"
		"add element ip swarm_lbm ports { tcp . 8080 comment \"web\" : 0x53570002 }\n"
		"add element ip swarm_lbm ports { udp . 8053 comment \"web\" : 0x53570003 }\n");
	free(cmd);
	cmd = lb_ipvs_marks_set_cmd("swarm_lbm", &st.svcs[0], &nst.svcs[0], LB_IPVS_MARK_BASE | 1, marks);
	assert_string_equal(cmd,
		"delete element ip swarm_lbm vips { 198.18.0.100 }\n"
		"delete element ip swarm_lbm ports { udp . 8053 }\n"
		"add element ip swarm_lbm vips { 198.18.0.101 comment \"web\" : 0x53570001 }\n"
		"add element ip swarm_lbm ports { tcp . 8080 comment \"web\" : 0x53570002 }\n");
	free(cmd);
	cmd = lb_ipvs_marks_del_cmd("swarm_lbm", &nst.svcs[0]);
	assert_string_equal(cmd,
		"delete element ip swarm_lbm vips { 198.18.0.101 }\n"
		"delete element ip swarm_lbm ports { tcp . 8080 }\n");
	free(cmd);
	char *sk = lb_ipvs_marks_skeleton_cmd("swarm_lbm", true);
	assert_non_null(strstr(sk, "add map ip swarm_lbm vips { type ipv4_addr : mark; }\n"));
	assert_non_null(strstr(sk, "add rule ip swarm_lbm output meta mark set ip daddr map @vips\n"));
	assert_non_null(strstr(sk, "meta mark & 0xffff0000 == 0x53570000 fib saddr type != local masquerade"));
	assert_null(strstr(sk, "flush table"));
	free(sk);
	lb_state_clear(&st);
	lb_state_clear(&nst);
}

/* ---- provider choice ---- */

static void test_probe_choose(void **unused)
{
	(void)unused;
	struct lb_provider *c[3], *out;
	char why[256];
	unsigned frees = lb_fake_frees();

	/* The first usable one in order; the others are freed. */
	lb_fake_new("ipvs", -EOPNOTSUPP, &c[0]);
	lb_fake_new("nftables", 0, &c[1]);
	assert_int_equal(lb_probe_choose(c, 2, &out, why, sizeof(why)), 0);
	assert_ptr_equal(out, c[1]);
	assert_string_equal(out->ops->name, "nftables");
	assert_string_equal(why, "");
	assert_int_equal(lb_fake_frees(), frees + 1);
	lb_provider_free(out);

	/* Both usable: the preferred one, the second freed unprobed. */
	lb_fake_new("ipvs", 0, &c[0]);
	lb_fake_new("nftables", 0, &c[1]);
	frees = lb_fake_frees();
	assert_int_equal(lb_probe_choose(c, 2, &out, why, sizeof(why)), 0);
	assert_string_equal(out->ops->name, "ipvs");
	assert_int_equal(lb_fake_frees(), frees + 1);
	lb_provider_free(out);

	/* None: the last error and every reason; all freed; NULL skipped. */
	lb_fake_new("ipvs", -EOPNOTSUPP, &c[0]);
	c[1] = NULL;
	lb_fake_new("nftables", -EPERM, &c[2]);
	frees = lb_fake_frees();
	assert_int_equal(lb_probe_choose(c, 3, &out, why, sizeof(why)), -EPERM);
	assert_null(out);
	assert_string_equal(why, "ipvs: fake ipvs unusable; nftables: fake nftables unusable");
	assert_int_equal(lb_fake_frees(), frees + 2);

	/* Nothing at all. */
	c[0] = NULL;
	assert_int_equal(lb_probe_choose(c, 1, &out, why, sizeof(why)), -EOPNOTSUPP);
	assert_null(out);
}

int main(void)
{
	log_set_level(LOG_LVL_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_state_ports_only),
		cmocka_unit_test(test_reconcile_create_idempotent),
		cmocka_unit_test(test_reconcile_update_delete),
		cmocka_unit_test(test_reconcile_key_moves),
		cmocka_unit_test(test_reconcile_restart),
		cmocka_unit_test(test_reconcile_failures),
		cmocka_unit_test(test_reconcile_ports_only),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_nft_table_name),
		cmocka_unit_test(test_nft_add),
		cmocka_unit_test(test_nft_update_remove),
		cmocka_unit_test(test_nft_ports_only),
		cmocka_unit_test(test_nft_keep_source),
		cmocka_unit_test(test_nft_parse),
		cmocka_unit_test(test_nft_parse_strays),
		cmocka_unit_test(test_nft_parse_keep_source),
		cmocka_unit_test(test_ipvs_service_msgs),
		cmocka_unit_test(test_ipvs_dest_msgs),
		cmocka_unit_test(test_ipvs_marks_cmds),
		cmocka_unit_test(test_probe_choose),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
